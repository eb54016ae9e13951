/* util.c - helpers shared by the docket CLI's commands: errors and exit codes,
 * ledger and key options, passphrases, signing an append, record JSON. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

/* An error is one line: control bytes from the input it quotes (a newline in a date, an
 * escape sequence in a name) are written \xNN, not passed to the terminal or log. */
static size_t utf8_seq(const unsigned char *p, size_t n);

__attribute__((format(printf, 2, 0))) static int vfail(int code, const char *fmt, va_list ap)
{
    char msg[4 * DK_ERRMSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* the line is built whole and written at once: stderr is unbuffered, and processes
     * sharing a log would interleave mid-line (helper-71: a write a character) */
    char line[16 * DK_ERRMSG_MAX + 16];
    size_t o = (size_t)snprintf(line, sizeof line, "docket: ");
    /* control characters (C0, DEL and C1) and bytes that are not UTF-8 as \xNN: a message
     * quoting input never drives the terminal */
    size_t n = strlen(msg);
    for (size_t i = 0; i < n;) {
        const unsigned char *p = (const unsigned char *)msg + i;
        size_t k = p[0] < 0x80 ? 1 : utf8_seq(p, n - i);
        int control = p[0] < 0x20 || p[0] == 0x7f || (k == 2 && p[0] == 0xc2 && p[1] < 0xa0);
        if (k == 0 || control) {
            for (size_t j = 0; j < (k ? k : 1); j++)
                o += (size_t)snprintf(line + o, sizeof line - o, "\\x%02x", p[j]);
        } else {
            memcpy(line + o, p, k);
            o += k;
        }
        i += k ? k : 1;
    }
    line[o++] = '\n';
    fwrite(line, 1, o, stderr);
    return code;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(EXIT_USAGE, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(EXIT_FAIL, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_damage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(EXIT_DAMAGE, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_dk_fail(int err, const char *what)
{
    const char *msg = dk_errmsg();
    cli_fail("%s: %s (%s)", what, msg[0] ? msg : dk_strerror(err), dk_err_name(err));
    return cli_exit_code(err);
}

int cli_exit_code(int err)
{
    return err == DK_ECORRUPT ? EXIT_DAMAGE : EXIT_FAIL; /* damage met on the way is exit 3 */
}

const char *cli_ledger_dir(const char *opt)
{
    if (opt && opt[0])
        return opt;
    if (opt) {
        cli_usage_error("--ledger is empty");
        return NULL;
    }
    const char *env = getenv("DOCKET_LEDGER");
    if (env && env[0])
        return env;
    cli_usage_error("no ledger given: pass --ledger DIR or set DOCKET_LEDGER");
    return NULL;
}

int cli_open_ledger(const char *opt, int read_only, dk_ledger **out)
{
    const char *dir = cli_ledger_dir(opt);
    if (dir == NULL)
        return EXIT_USAGE;
    dk_ledger_opts o = {0, 0, read_only, 0};
    int rc = dk_ledger_open(dir, &o, out);
    return rc ? cli_dk_fail(rc, "cannot open the ledger") : EXIT_OK; /* damage: exit 3 */
}

static char *read_tty_line(const char *prompt)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct termios old, quiet;
    int have_term = tcgetattr(fd, &old) == 0;
    if (have_term) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* the prompt is a courtesy; reading still works */
    }
    char buf[1024];
    size_t n = 0;
    char c;
    while (n + 1 < sizeof buf && read(fd, &c, 1) == 1 && c != '\n')
        buf[n++] = c;
    buf[n] = 0;
    if (have_term)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* as above */
    }
    close(fd);
    char *s = strdup(buf);
    explicit_bzero(buf, sizeof buf);
    return s;
}

char *cli_passphrase(const char *prompt, int confirm)
{
    const char *env = getenv("DOCKET_PASSPHRASE");
    if (env && env[0])
        return strdup(env);
    char *p = read_tty_line(prompt);
    if (p == NULL) {
        cli_usage_error("no passphrase: set DOCKET_PASSPHRASE or run on a terminal");
        return NULL;
    }
    if (confirm) {
        char *again = read_tty_line("Repeat passphrase: ");
        int same = again && strcmp(p, again) == 0;
        cli_passphrase_free(again);
        if (!same) {
            cli_passphrase_free(p);
            cli_usage_error("the passphrases differ");
            return NULL;
        }
    }
    return p;
}

void cli_passphrase_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

static int load_key_with(const char *path, const char *env, const char *prompt, dk_key **out)
{
    *out = NULL;
    char *pass;
    const char *alt = env ? getenv(env) : NULL;
    pass = alt && alt[0] ? strdup(alt) : cli_passphrase(prompt, 0);
    if (pass == NULL)
        return EXIT_USAGE;
    int rc = dk_key_load(path, pass, out);
    cli_passphrase_free(pass);
    if (rc)
        return cli_dk_fail(rc, "cannot load the key");
    return EXIT_OK;
}

int cli_load_key(const char *path, dk_key **out)
{
    if (path == NULL) {
        *out = NULL;
        return cli_usage_error("no key given: pass --key KEYFILE");
    }
    return load_key_with(path, NULL, "Passphrase for key: ", out);
}

int cli_load_cosign_key(const char *path, dk_key **out)
{
    return load_key_with(path, "DOCKET_COSIGN_PASSPHRASE", "Passphrase for co-signer key: ", out);
}

/* Options naming files and directories: a path is bytes, and is not recorded. Positional
 * arguments are ids (checked by the engine when recorded), numbers or paths. */
static int is_path_option(const char *name)
{
    static const char *const paths[] = {"ledger",      "key",        "cosign", "key-out",
                                        "out",         "checkpoint", "record", "inclusion",
                                        "consistency", "old",        NULL};
    for (int i = 0; paths[i]; i++)
        if (strcmp(name, paths[i]) == 0)
            return 1;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0x80             ? 1
                 : (p[0] & 0xe0) == 0xc0 ? 2
                 : (p[0] & 0xf0) == 0xe0 ? 3
                 : (p[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    char one[5] = {0}; /* overlong forms, surrogates, > U+10FFFF: jansson's judgement */
    memcpy(one, p, len);
    json_t *j = json_string(one);
    json_decref(j);
    return j ? len : 0;
}

json_t *cli_json_text(const char *path)
{
    if (path == NULL)
        return NULL;
    json_t *j = json_string(path);
    if (j)
        return j;
    /* bytes that are not UTF-8 (a path's, or a damaged view's) shown as U+FFFD, never left
     * out: json_string() refuses them, and json_object_set_new() then drops the key */
    size_t n = strlen(path), o = 0;
    char *out = malloc(3 * n + 1);
    if (out == NULL)
        return json_null();
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)path + i, n - i);
        if (k) {
            memcpy(out + o, path + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = 0;
    j = json_string(out);
    free(out);
    return j ? j : json_null();
}

/* Is s valid UTF-8 (jansson's check)? Everything docket records is JSON-compatible text. */
static int utf8_ok(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* 1 if `a` is one of `opts`, given as --name or --name=value: the value an option before
 * it was meant to have is missing (`--max --ledger L`), not "--ledger". */
static int names_option(const cli_opt *opts, const char *a)
{
    if (strncmp(a, "--", 2) != 0)
        return 0;
    size_t n = strcspn(a + 2, "=");
    for (const cli_opt *o = opts; o->name; o++)
        if (strlen(o->name) == n && strncmp(o->name, a + 2, n) == 0)
            return 1;
    return 0;
}

int cli_parse(int argc, char **argv, const cli_opt *opts, const char *usage, int *npos, char **pos,
              int maxpos)
{
    *npos = 0;
    /* Each option may be given once: with two, which one was meant is a guess. */
    unsigned char seen[64] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { /* the end of the options: the rest are arguments */
            for (i++; i < argc; i++) {
                if (*npos == maxpos)
                    return cli_usage_error("too many arguments (from '%s' on; see --help)",
                                           argv[i]);
                pos[(*npos)++] = argv[i];
            }
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (*npos == maxpos)
                return cli_usage_error("too many arguments (from '%s' on; see --help)", argv[i]);
            pos[(*npos)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = opts;
        while (o->name && !(strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0))
            o++;
        if (o->name == NULL)
            return cli_usage_error("unknown option '--%.*s' (see --help)", (int)nlen, name);
        size_t which = (size_t)(o - opts);
        if (which < sizeof seen && seen[which]++)
            return cli_usage_error("--%s is given twice", o->name);
        if (o->flag) {
            if (eq)
                return cli_usage_error("--%s takes no value", o->name);
            *o->flag = 1;
        } else if (eq) {
            *o->str = eq + 1;
        } else if (i + 1 < argc) {
            if (names_option(opts, argv[i + 1]))
                return cli_usage_error("--%s needs a value before %s", o->name, argv[i + 1]);
            *o->str = argv[++i];
        } else {
            return cli_usage_error("--%s needs a value", o->name);
        }
        if (!o->flag && !is_path_option(o->name) && !utf8_ok(*o->str))
            return cli_usage_error("--%s is not valid UTF-8", o->name);
    }
    return CLI_CONTINUE;
}

int cli_split_list(const char *opt, const char *csv, json_t *arr)
{
    if (csv[0] == 0)
        return EXIT_OK;      /* "" is the empty list */
    char *buf = strdup(csv); /* any length: a list is never cut short */
    if (buf == NULL)
        return cli_fail("out of memory");
    int rc = EXIT_OK;
    const char *p = buf;
    for (char *t = buf;; t++) {
        if (*t != ',' && *t != 0)
            continue;
        int end = *t == 0;
        *t = 0;
        if (*p == 0) {
            rc = cli_usage_error("--%s has an empty element (a stray or doubled comma)", opt);
            break;
        }
        for (size_t i = 0; i < json_array_size(arr); i++)
            if (strcmp(json_string_value(json_array_get(arr, i)), p) == 0)
                rc = cli_usage_error("--%s lists '%s' twice", opt, p);
        if (rc)
            break;
        json_array_append_new(arr, json_string(p));
        if (end)
            break;
        p = t + 1;
    }
    free(buf);
    return rc;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return cli_usage_error("%s wants a whole number, not '%s'", opt, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return cli_usage_error("%s wants a whole number, not '%s'", opt, s);
    *out = v;
    return EXIT_OK;
}

/* The event's type, case and command id as given: checked before any ledger is opened or
 * passphrase asked. cmd gets the decoded id when cmd_hex is given. */
static int event_args(const char *type, const char *case_id, const char *cmd_hex,
                      uint8_t cmd[DK_CMD_BYTES])
{
    if (strlen(type) > DK_TYPE_MAX)
        return cli_usage_error("the event type is longer than %d bytes", DK_TYPE_MAX);
    if (strlen(case_id) > DK_CASE_MAX)
        return cli_usage_error("the case id is longer than %d bytes", DK_CASE_MAX);
    size_t n = 0;
    if (cmd_hex && (dk_hex_decode(cmd_hex, cmd, DK_CMD_BYTES, &n) != 0 || n != DK_CMD_BYTES))
        return cli_usage_error("--cmd wants %d hex digits, not '%s'", 2 * DK_CMD_BYTES, cmd_hex);
    return EXIT_OK;
}

int cli_append_event(dk_ledger *lg, const dk_key *key, const cli_event *ce, int json)
{
    dk_event ev;
    memset(&ev, 0, sizeof ev);
    ev.v = DK_EVENT_VERSION;
    int rc = event_args(ce->type, ce->case_id, ce->cmd_hex, ev.cmd);
    if (rc != EXIT_OK)
        return rc;
    snprintf(ev.type, sizeof ev.type, "%s", ce->type);
    snprintf(ev.case_id, sizeof ev.case_id, "%s", ce->case_id);
    snprintf(ev.actor, sizeof ev.actor, "%s", dk_key_id(key));
    ev.at = dk_time_now();
    ev.has_eff = ce->has_eff;
    ev.eff = ce->eff;
    ev.has_expect = ce->has_expect;
    ev.expect = ce->expect;
    ev.data = ce->data;
    ev.data_len = ce->data_len;
    if (ce->cmd_hex == NULL)
        dk_cmd_new(ev.cmd);
    uint8_t *body;
    size_t body_len;
    rc = dk_event_encode(&ev, &body, &body_len);
    if (rc)
        return cli_dk_fail(rc, "invalid event");
    dk_sig sigs[2];
    const dk_key *signers[2] = {key, ce->cosign};
    size_t nsigs = ce->cosign ? 2 : 1;
    memset(sigs, 0, sizeof sigs);
    for (size_t i = 0; i < nsigs && rc == 0; i++) {
        snprintf(sigs[i].actor, sizeof sigs[i].actor, "%s", dk_key_id(signers[i]));
        rc = dk_sign(signers[i], body, body_len, sigs[i].sig);
    }
    dk_append_res res;
    if (rc == 0) {
        dk_append_req req = {body, body_len, sigs, nsigs};
        rc = dk_ledger_append(lg, &req, &res);
    }
    free(body);
    if (rc)
        return cli_dk_fail(rc, "append rejected");
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)res.seq));
        json_object_set_new(o, "duplicate", json_boolean(res.duplicate));
        cli_print_json(o);
    } else {
        printf("%s seq %llu\n", res.duplicate ? "already appended as" : "appended",
               (unsigned long long)res.seq);
    }
    return EXIT_OK;
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
    char buf[2 * 64 + 1];
    dk_hex_encode(b, n, buf);
    return json_string(buf);
}

static json_t *time_json(int64_t us)
{
    char buf[DK_TIME_LEN];
    dk_time_format(us, buf);
    return json_string(buf);
}

json_t *cli_record_json(const dk_record *rec)
{
    dk_event ev;
    if (dk_event_decode(rec->body, rec->body_len, &ev) != 0)
        return NULL;
    json_t *data = dk_json_from_data(ev.data, ev.data_len);
    if (data == NULL)
        return NULL;
    uint8_t hash[DK_HASH_BYTES];
    dk_leaf_hash(rec->raw, rec->raw_len, hash);
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)rec->seq));
    json_object_set_new(o, "recorded_at", time_json(rec->recorded_at));
    json_object_set_new(o, "hash", hex_json(hash, sizeof hash));
    json_object_set_new(o, "prev", hex_json(rec->prev, sizeof rec->prev));
    json_object_set_new(o, "type", cli_json_text(ev.type));
    json_object_set_new(o, "case", cli_json_text(ev.case_id));
    json_object_set_new(o, "actor", cli_json_text(ev.actor));
    json_object_set_new(o, "at", time_json(ev.at));
    if (ev.has_eff)
        json_object_set_new(o, "eff", time_json(ev.eff));
    json_object_set_new(o, "cmd", hex_json(ev.cmd, sizeof ev.cmd));
    if (ev.has_expect)
        json_object_set_new(o, "expect", json_integer((json_int_t)ev.expect));
    json_object_set_new(o, "data", data);
    json_t *sigs = json_array();
    for (size_t i = 0; i < rec->nsigs; i++) {
        char b64[128];
        dk_b64_encode(rec->sigs[i].sig, DK_SIG_BYTES, b64);
        json_t *s = json_object();
        json_object_set_new(s, "actor", cli_json_text(rec->sigs[i].actor));
        json_object_set_new(s, "sig", json_string(b64));
        json_array_append_new(sigs, s);
    }
    json_object_set_new(o, "sigs", sigs);
    return o;
}

void cli_print_json(json_t *v)
{
    json_dumpf(v, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(v);
}

int cli_append_json(const char *ledger, const char *keyfile, const char *cosignfile,
                    const char *type, const char *case_id, json_t *data, const cli_event *extra,
                    int json)
{
    uint8_t *mp = NULL, cmd[DK_CMD_BYTES];
    size_t mp_len = 0;
    char err[256];
    int rc = event_args(type, case_id, extra ? extra->cmd_hex : NULL, cmd);
    if (rc != EXIT_OK) {
        json_decref(data);
        return rc;
    }
    if (dk_json_to_data(data, &mp, &mp_len, err, sizeof err) != 0) {
        json_decref(data);
        return cli_usage_error("%s", err);
    }
    json_decref(data);
    dk_ledger *lg = NULL;
    dk_key *key = NULL, *cosign = NULL;
    rc = cli_open_ledger(ledger, 0, &lg);
    if (rc == EXIT_OK)
        rc = cli_load_key(keyfile, &key);
    if (rc == EXIT_OK && cosignfile)
        rc = cli_load_cosign_key(cosignfile, &cosign);
    if (rc == EXIT_OK) {
        cli_event ce = {type, case_id, mp, mp_len, 0, 0, 0, 0, NULL, cosign};
        if (extra) {
            ce.has_expect = extra->has_expect;
            ce.expect = extra->expect;
            ce.has_eff = extra->has_eff;
            ce.eff = extra->eff;
            ce.cmd_hex = extra->cmd_hex;
        }
        rc = cli_append_event(lg, key, &ce, json);
    }
    dk_key_free(cosign);
    dk_key_free(key);
    dk_ledger_close(lg);
    free(mp);
    return rc;
}

int cli_parse_time(const char *opt, const char *s, int end_of_day, int64_t *t)
{
    if (strcmp(s, "now") == 0) {
        *t = INT64_MAX;
        return EXIT_OK;
    }
    char full[48];
    if (dk_date_valid(s, (int)strlen(s))) {
        snprintf(full, sizeof full, "%sT%s", s, end_of_day ? "23:59:59.999999Z" : "00:00:00Z");
        s = full;
    }
    if (dk_time_parse(s, t) != 0)
        return cli_usage_error("%s: '%s' is not a time (RFC 3339), a date (YYYY-MM-DD) or now", opt,
                               s);
    return EXIT_OK;
}

json_t *cli_csv_json(const char *csv)
{
    json_t *arr = json_array();
    char *buf = strdup(csv);
    for (char *save = NULL, *c = buf ? strtok_r(buf, ",", &save) : NULL; c;
         c = strtok_r(NULL, ",", &save))
        json_array_append_new(arr, cli_json_text(c));
    free(buf);
    return arr;
}
