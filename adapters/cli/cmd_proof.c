/* cmd_proof.c - Merkle checkpoints and proofs: `docket checkpoint`, `docket
 * prove inclusion|consistency`, and `docket proof verify`, which needs no
 * ledger at all: what an auditor outside the operator runs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* DIR/node.key: the key that signs this ledger's checkpoints. */
static void node_key_path(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/node.key", dir);
}

char *cli_node_passphrase(void)
{
    /* asked twice: a mistyped one could never sign a checkpoint again */
    return cli_passphrase("Passphrase for the node key: ", 1);
}

int cli_create_node_key(dk_ledger *lg, const char *dir, const char *pass)
{
    char *asked = NULL;
    if (pass == NULL && (pass = asked = cli_node_passphrase()) == NULL)
        return EXIT_USAGE; /* cli_passphrase said why */
    char path[4096];
    dk_key *node = NULL;
    node_key_path(dir, path, sizeof path);
    int rc = dk_key_generate("node", &node);
    if (rc == 0)
        rc = dk_key_save(node, path, pass);
    if (rc == 0)
        rc = dk_ledger_set_node_key(lg, dk_key_public(node));
    cli_passphrase_free(asked);
    dk_key_free(node);
    return rc ? cli_dk_fail(rc, "cannot create the node key") : EXIT_OK;
}

static json_t *checkpoint_json(const char *note, const uint8_t pk[32])
{
    dk_checkpoint cp;
    char b64[64], vkey[256];
    dk_b64_encode(pk, 32, b64);
    if (dk_note_open(note, b64, &cp) != 0)
        return NULL;
    dk_b64_encode(cp.root, 32, b64);
    json_t *o = json_object();
    json_object_set_new(o, "origin", cli_json_text(cp.origin));
    json_object_set_new(o, "size", json_integer((json_int_t)cp.size));
    json_object_set_new(o, "root", cli_json_text(b64));
    json_object_set_new(o, "note", cli_json_text(note));
    if (dk_note_vkey(cp.origin, pk, vkey, sizeof vkey) == 0)
        json_object_set_new(o, "vkey", cli_json_text(vkey));
    return o;
}

int cmd_checkpoint(int argc, char **argv)
{
    const char *ledger = NULL, *size_s = NULL;
    int json = 0, vkey_only = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},
                            {"size", &size_s, NULL},
                            {"json", NULL, &json},
                            {"vkey", NULL, &vkey_only},
                            {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket checkpoint [--size N] [--json] [--vkey] [--ledger DIR]\n"
        "Without --size: signs a checkpoint of the current head with the node key\n"
        "(DIR/node.key; its passphrase from $DOCKET_PASSPHRASE), stores it, prints it.\n"
        "With --size N: prints the stored checkpoint of that tree size.\n"
        "--vkey prints the node's verifier key (C2SP), for auditors to pin.\n"
        "The checkpoint is a C2SP signed note (tlog-checkpoint); --json prints\n"
        "{\"origin\", \"size\", \"root\", \"note\", \"vkey\"}.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    uint64_t size = 0;
    if (npos)
        return cli_usage_error("checkpoint takes no positional arguments");
    if (size_s && (rc = cli_parse_u64("--size", size_s, &size)) != EXIT_OK)
        return rc;
    const char *dir = cli_ledger_dir(ledger);
    if (dir == NULL)
        return EXIT_USAGE;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(dir, size_s != NULL || vkey_only, &lg)) != EXIT_OK)
        return rc;
    uint8_t pk[32];
    int err = dk_ledger_node_key(lg, pk);
    if (err == DK_ENOTFOUND && !size_s && !vkey_only) { /* a ledger made before node keys */
        if ((rc = cli_create_node_key(lg, dir, NULL)) != EXIT_OK) {
            dk_ledger_close(lg);
            return rc;
        }
        err = dk_ledger_node_key(lg, pk);
    }
    char *note = NULL;
    if (err == 0 && vkey_only) {
        char origin[64], vkey[256];
        if ((err = dk_ledger_origin(lg, origin)) == 0 &&
            (err = dk_note_vkey(origin, pk, vkey, sizeof vkey)) == 0) {
            if (json) {
                json_t *o = json_object();
                json_object_set_new(o, "vkey", cli_json_text(vkey));
                cli_print_json(o);
            } else {
                printf("%s\n", vkey);
            }
        }
        dk_ledger_close(lg);
        return err ? cli_dk_fail(err, "cannot show the verifier key") : EXIT_OK;
    }
    if (err == 0 && size_s) {
        err = dk_ledger_checkpoint_get(lg, size, &note);
    } else if (err == 0) {
        char path[4096];
        dk_key *node = NULL;
        node_key_path(dir, path, sizeof path);
        if ((rc = cli_load_key(path, &node)) != EXIT_OK) {
            dk_ledger_close(lg);
            return rc;
        }
        err = dk_ledger_checkpoint(lg, node, &note);
        dk_key_free(node);
    }
    dk_ledger_close(lg);
    if (err)
        return cli_dk_fail(err, "no checkpoint");
    if (json) {
        json_t *o = checkpoint_json(note, pk);
        if (o == NULL) {
            free(note);
            return cli_fail("the stored checkpoint does not verify: %s", dk_errmsg());
        }
        cli_print_json(o);
    } else {
        fputs(note, stdout);
    }
    free(note);
    return EXIT_OK;
}

static json_t *hashes_json(uint8_t proof[][32], size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char b64[64];
        dk_b64_encode(proof[i], 32, b64);
        json_array_append_new(arr, cli_json_text(b64));
    }
    return arr;
}

int cmd_prove(int argc, char **argv)
{
    const char *ledger = NULL, *size_s = NULL;
    int npos, json = 1;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},
                            {"size", &size_s, NULL},
                            {"json", NULL, &json},
                            {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket prove inclusion SEQ [--size N] [--ledger DIR]\n"
        "       docket prove consistency OLD_SIZE NEW_SIZE [--ledger DIR]\n"
        "Prints a proof as JSON, hashes in base64 (RFC 6962):\n"
        "  {\"leaf_index\": SEQ-1, \"tree_size\": N, \"leaf_hash\": ..., \"hashes\": [...]}\n"
        "  {\"old_size\": M, \"new_size\": N, \"hashes\": [...]}\n"
        "N defaults to the latest stored checkpoint's size, else the head.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    int incl = npos == 2 && strcmp(pos[0], "inclusion") == 0;
    int cons = npos == 3 && strcmp(pos[0], "consistency") == 0;
    if (!incl && !cons)
        return cli_usage_error("prove needs 'inclusion SEQ' or 'consistency OLD NEW' (see --help)");
    uint64_t a, b = 0;
    if ((rc = cli_parse_u64(incl ? "SEQ" : "OLD_SIZE", pos[1], &a)) != EXIT_OK)
        return rc;
    if (cons && (rc = cli_parse_u64("NEW_SIZE", pos[2], &b)) != EXIT_OK)
        return rc;
    if (incl && size_s && (rc = cli_parse_u64("--size", size_s, &b)) != EXIT_OK)
        return rc;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(ledger, 1, &lg)) != EXIT_OK)
        return rc;
    int err = 0;
    if (incl && !size_s) { /* the latest checkpoint's size, else the head */
        char *note = NULL;
        uint8_t pk[32];
        char b64[64];
        dk_checkpoint cp;
        if (dk_ledger_checkpoint_get(lg, 0, &note) == 0 && dk_ledger_node_key(lg, pk) == 0) {
            dk_b64_encode(pk, 32, b64);
            if (dk_note_open(note, b64, &cp) == 0 && cp.size >= a)
                b = cp.size;
        }
        free(note);
        dk_head h;
        if (b == 0 && (err = dk_ledger_head(lg, &h)) == 0)
            b = h.seq;
    }
    uint8_t proof[DK_MERKLE_MAX_PROOF][32];
    size_t n = 0;
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    if (err == 0 && incl && (err = dk_ledger_prove_inclusion(lg, a, b, proof, &n)) == 0)
        err = dk_ledger_get(lg, a, &raw, &raw_len);
    if (err == 0 && cons)
        err = dk_ledger_prove_consistency(lg, a, b, proof, &n);
    dk_ledger_close(lg);
    if (err) {
        free(raw);
        return cli_dk_fail(err, "cannot prove");
    }
    json_t *o = json_object();
    if (incl) {
        uint8_t leaf[32];
        char b64[64];
        dk_leaf_hash(raw, raw_len, leaf);
        dk_b64_encode(leaf, 32, b64);
        json_object_set_new(o, "leaf_index", json_integer((json_int_t)(a - 1)));
        json_object_set_new(o, "tree_size", json_integer((json_int_t)b));
        json_object_set_new(o, "leaf_hash", cli_json_text(b64));
    } else {
        json_object_set_new(o, "old_size", json_integer((json_int_t)a));
        json_object_set_new(o, "new_size", json_integer((json_int_t)b));
    }
    json_object_set_new(o, "hashes", hashes_json(proof, n));
    free(raw);
    cli_print_json(o);
    return EXIT_OK;
}

/* ---- offline verification ---- */

static char *slurp(const char *path, size_t *len)
{
    /* Opened without blocking (a FIFO with no writer must not hang the command), then read
     * blocking: a pipe (`<(docket prove ...)`) gives its data, an idle FIFO gives none. */
    struct stat st;
    int fifo = stat(path, &st) == 0 && S_ISFIFO(st.st_mode); /* not blocking only for a FIFO */
    int fd = open(path, O_RDONLY | O_CLOEXEC | (fifo ? O_NONBLOCK : 0));
    if (fd < 0 || fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) ||
        (fifo && fcntl(fd, F_SETFL, 0) != 0)) {
        int e = fd >= 0 && S_ISDIR(st.st_mode) ? EISDIR : errno;
        if (fd >= 0)
            close(fd);
        errno = e; /* the caller says why */
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        close(fd);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *more = cap < (64u << 20) ? realloc(buf, 2 * cap + 1) : NULL;
            if (more == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = more;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

/* A checkpoint file: the JSON from `docket checkpoint --json`, or the note. */
int cli_load_checkpoint(const char *path, const char *pubkey, dk_checkpoint *cp)
{
    size_t len;
    char *text = slurp(path, &len);
    if (text == NULL)
        return cli_fail("cannot read checkpoint file '%s': %s", path, strerror(errno));
    if (strlen(text) != len) { /* the note would end at the NUL, and the rest go unread */
        free(text);
        return cli_fail("checkpoint file '%s' holds a NUL byte: it is not a note", path);
    }
    const char *note = text;
    json_t *j = json_loads(text, 0, NULL);
    if (j && json_is_string(json_object_get(j, "note")))
        note = json_string_value(json_object_get(j, "note"));
    int err = dk_note_open(note, pubkey, cp);
    json_decref(j);
    free(text);
    if (err)
        return cli_fail("checkpoint '%s' does not verify: %s", path, dk_errmsg());
    return EXIT_OK;
}

static int load_hashes(json_t *arr, uint8_t proof[][32], size_t *n)
{
    *n = 0;
    if (arr != NULL && !json_is_array(arr))
        return -1;
    for (size_t i = 0; arr && i < json_array_size(arr); i++) {
        size_t got;
        const char *s = json_string_value(json_array_get(arr, i));
        if (i >= DK_MERKLE_MAX_PROOF || s == NULL || dk_b64_decode(s, proof[i], 32, &got) != 0 ||
            got != 32)
            return -1;
        (*n)++;
    }
    return 0;
}

int cmd_proof(int argc, char **argv)
{
    const char *ckpt = NULL, *pubkey = NULL, *incl = NULL, *record = NULL, *cons = NULL,
               *old = NULL;
    int npos, json = 0;
    char *pos[8];
    const cli_opt opts[] = {{"checkpoint", &ckpt, NULL},  {"pubkey", &pubkey, NULL},
                            {"inclusion", &incl, NULL},   {"record", &record, NULL},
                            {"consistency", &cons, NULL}, {"old", &old, NULL},
                            {"json", NULL, &json},        {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket proof verify --checkpoint FILE --pubkey KEY\n"
        "         (--inclusion FILE --record FILE | --consistency FILE --old CHECKPOINT)\n"
        "Verifies with public data alone, no ledger: the checkpoint's signature by KEY\n"
        "(a C2SP verifier key from `docket checkpoint --vkey`, or a base64 Ed25519 key),\n"
        "then that the record (exact bytes from `docket show SEQ --raw`) is in the\n"
        "checkpointed tree, or that the older checkpoint's tree is a prefix of it.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 1 || strcmp(pos[0], "verify") != 0 || !ckpt || !pubkey ||
        !((incl && record && !cons) || (cons && old && !incl)))
        return cli_usage_error(
            "proof verify needs --checkpoint and --pubkey, and either --inclusion "
            "with --record or --consistency with --old (see --help)");
    dk_checkpoint cp, oldcp;
    if ((rc = cli_load_checkpoint(ckpt, pubkey, &cp)) != EXIT_OK)
        return rc;
    size_t len;
    char *text = slurp(incl ? incl : cons, &len);
    json_t *p = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (p == NULL)
        return cli_fail("cannot read proof file '%s' as JSON", incl ? incl : cons);
    uint8_t proof[DK_MERKLE_MAX_PROOF][32];
    size_t n;
    int err;
    if (load_hashes(json_object_get(p, "hashes"), proof, &n) != 0) {
        json_decref(p);
        return cli_fail("proof file: 'hashes' must be a list of base64 SHA-256 hashes");
    }
    const char *what;
    if (incl) {
        int have_idx = json_is_integer(json_object_get(p, "leaf_index"));
        json_int_t idx = json_integer_value(json_object_get(p, "leaf_index"));
        json_int_t size = json_integer_value(json_object_get(p, "tree_size"));
        json_decref(p);
        if (!have_idx || idx < 0)
            return cli_fail("proof file: 'leaf_index' must be a non-negative integer");
        if (size <= 0 || (uint64_t)size != cp.size)
            return cli_fail("the proof is for a tree of %lld records, the checkpoint for %llu",
                            (long long)size, (unsigned long long)cp.size);
        char *rec = slurp(record, &len);
        if (rec == NULL)
            return cli_fail("cannot read record file '%s': %s", record, strerror(errno));
        /* the record names its own seq: it must be the leaf the proof is for */
        dk_record r;
        if (dk_record_decode((const uint8_t *)rec, len, &r) != 0 || r.seq != (uint64_t)idx + 1) {
            free(rec);
            return cli_fail("record file '%s' is not the record at seq %llu", record,
                            (unsigned long long)idx + 1);
        }
        uint8_t leaf[32];
        dk_leaf_hash(rec, len, leaf);
        free(rec);
        err = dk_merkle_verify_inclusion(leaf, (uint64_t)idx, cp.size, proof, n, cp.root);
        what = "inclusion";
    } else {
        json_int_t a = json_integer_value(json_object_get(p, "old_size"));
        json_int_t b = json_integer_value(json_object_get(p, "new_size"));
        json_decref(p);
        if ((rc = cli_load_checkpoint(old, pubkey, &oldcp)) != EXIT_OK)
            return rc;
        if ((uint64_t)a != oldcp.size || (uint64_t)b != cp.size)
            return cli_fail("the proof is between sizes %lld and %lld, the checkpoints are %llu "
                            "and %llu",
                            (long long)a, (long long)b, (unsigned long long)oldcp.size,
                            (unsigned long long)cp.size);
        if (strcmp(oldcp.origin, cp.origin) != 0)
            return cli_fail("the checkpoints are of different logs ('%s', '%s')", oldcp.origin,
                            cp.origin);
        err = dk_merkle_verify_consistency(oldcp.size, cp.size, oldcp.root, cp.root, proof, n);
        what = "consistency";
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(err == 0));
        json_object_set_new(o, "proof", cli_json_text(what));
        json_object_set_new(o, "origin", cli_json_text(cp.origin));
        json_object_set_new(o, "size", json_integer((json_int_t)cp.size));
        if (err)
            json_object_set_new(o, "reason", cli_json_text(dk_errmsg()));
        cli_print_json(o);
    } else if (err == 0) {
        printf("ok: %s proof verifies against %s at size %llu\n", what, cp.origin,
               (unsigned long long)cp.size);
    }
    if (err) {
        fprintf(stderr, "docket: proof verify: %s proof does not verify: %s\n", what, dk_errmsg());
        return EXIT_DAMAGE;
    }
    return EXIT_OK;
}
