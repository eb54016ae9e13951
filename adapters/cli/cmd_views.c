/* cmd_views.c - the views commands: views status|rebuild|check|dump, project [--follow],
 * and the queries query status, queue, diary, report and errors. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cli.h"
#include "docket/views.h"

/* The ledger (read-only) and its views, opened together; `scratch` is the
 * directory of views built as of a time, removed on close. */
typedef struct vopen {
    dk_ledger *lg;
    dk_views *vw;
    char scratch[4096];
    int replaced; /* the views store could not be opened, was set aside, and is new */
} vopen;

static void scratch_remove(const char *dir);

static void vclose(vopen *o)
{
    dk_views_close(o->vw);
    dk_ledger_close(o->lg);
    o->vw = NULL;
    o->lg = NULL;
    if (o->scratch[0])
        scratch_remove(o->scratch);
    o->scratch[0] = 0;
}

static int parse_batch(const char *s, unsigned *out)
{
    uint64_t v = 0;
    if (s == NULL)
        return EXIT_OK;
    int rc = cli_parse_u64("--batch", s, &v);
    if (rc != EXIT_OK)
        return rc;
    if (v == 0 || v > 1u << 20)
        return cli_usage_error("--batch must be 1..1048576 records");
    *out = (unsigned)v;
    return EXIT_OK;
}

/* Set by `docket asof TIME query|report`: the views are rebuilt from the
 * ledger's records up to TIME in a scratch directory, never the live ones. */
static int views_as_of_set;
static int64_t views_as_of;

void cli_views_as_of(int64_t t)
{
    views_as_of_set = 1;
    views_as_of = t;
}

static void scratch_remove(const char *dir)
{
    static const char *const files[] = {"views/data.mdb", "views/lock.mdb"};
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/views", dir);
    rmdir(path);
    rmdir(dir);
}

/* The scratch paths, ready for a signal handler (unlink and rmdir are
 * async-signal-safe; building paths is not). */
static char scratch_paths[4][4200];

static void on_interrupt(int sig)
{
    unlink(scratch_paths[0]);
    unlink(scratch_paths[1]);
    rmdir(scratch_paths[2]);
    rmdir(scratch_paths[3]);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Remove the scratch directory if the command is interrupted, or its output closed. */
static void scratch_guard(const char *dir)
{
    snprintf(scratch_paths[0], sizeof scratch_paths[0], "%s/views/data.mdb", dir);
    snprintf(scratch_paths[1], sizeof scratch_paths[1], "%s/views/lock.mdb", dir);
    snprintf(scratch_paths[2], sizeof scratch_paths[2], "%s/views", dir);
    snprintf(scratch_paths[3], sizeof scratch_paths[3], "%s", dir);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL); /* the reader went away: `| head`, quitting a pager */
}

/* The views as of views_as_of, built in a new scratch directory. */
static int vopen_as_of(vopen *o, dk_views_opts *vo)
{
    uint64_t upto = 0;
    int err = dk_ledger_seq_at(o->lg, views_as_of, &upto);
    if (err == 0 && upto == 0)
        err = dk_fail(DK_ENOTFOUND, "the ledger had no records by then");
    if (err)
        return cli_dk_fail(err, "as of");
    const char *tmp = getenv("TMPDIR");
    snprintf(o->scratch, sizeof o->scratch, "%s/docket-asof-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(o->scratch) == NULL) {
        o->scratch[0] = 0;
        return cli_fail("cannot create a scratch directory: %s", strerror(errno));
    }
    scratch_guard(o->scratch);
    vo->upto = upto;
    if ((err = dk_views_open(o->lg, o->scratch, vo, &o->vw)) != 0 ||
        (err = dk_views_sync(o->vw)) != 0)
        return cli_dk_fail(err, "cannot replay the ledger into scratch views");
    return EXIT_OK;
}

/* OPEN_REPLACE: a store that cannot be opened is set aside; OPEN_FRESH: the store is set
 * aside whatever its state (`views rebuild --fresh`, for damage LMDB meets only later). */
enum { OPEN_ONLY, OPEN_CREATE, OPEN_REPLACE, OPEN_FRESH };

static int errno_err(int e)
{
    return e == EACCES || e == EPERM ? DK_EDENIED : DK_EIO;
}

/* `views rebuild` given a views store that cannot be opened as one (cut short, or not a
 * views store): the store is derived data, so it is moved aside whole, for whoever wants
 * to look at it, and the views are built into a new one. 0, or a DK_E* code. */
static int set_aside(const char *dir, const char *why)
{
    char from[4200], to[4300];
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    snprintf(from, sizeof from, "%s/views", dir);
    snprintf(to, sizeof to, "%s/views.damaged-%s", dir, stamp);
    struct stat ls;
    if (lstat(from, &ls) == 0 && S_ISLNK(ls.st_mode))
        return dk_fail(DK_ECORRUPT,
                       "%s; '%s' is a symbolic link, so the damaged store is not moved: move "
                       "its files aside where it points, then run `docket views rebuild`",
                       why, from);
    struct stat st;
    for (int i = 2; stat(to, &st) == 0 && i < 100; i++) /* one already set aside this second */
        snprintf(to, sizeof to, "%s/views.damaged-%s-%d", dir, stamp, i);
    if (rename(from, to) != 0) {
        int e = errno;
        return dk_fail(errno_err(e), "%s; moving the store aside to '%s' failed: %s", why, to,
                       strerror(e));
    }
    fprintf(stderr, "docket: %s\ndocket: moved the views store to '%s'; building the views anew\n",
            why, to);
    return 0;
}

/* The views store of `dir` could not be opened as one (or, `fresh` saying why, is not to be
 * opened):
 * under a lock, since two rebuilds may meet the same damage, set it aside unless another
 * rebuild already has, then open a new one. 0 with o->vw open, or a DK_E* code. */
static int replace_store(vopen *o, const char *dir, const dk_views_opts *vo, const char *fresh)
{
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/views.setaside.lock", dir);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return dk_fail(errno_err(e), "cannot lock '%s' to set the damaged views store aside: %s",
                       lock, strerror(e));
    }
    char why[DK_ERRMSG_MAX];
    snprintf(why, sizeof why, "%s", fresh ? fresh : "");
    char views[4200];
    struct stat st;
    snprintf(views, sizeof views, "%s/views", dir);
    int err = 0;
    if (fresh) {
        if (lstat(views, &st) == 0)
            o->replaced = (err = set_aside(dir, why)) == 0;
    } else if ((err = dk_views_open(o->lg, dir, vo, &o->vw)) == DK_ECORRUPT) {
        snprintf(why, sizeof why, "%s", dk_errmsg()); /* still damaged: no one set it aside */
        o->replaced = (err = set_aside(dir, why)) == 0;
    }
    if (err == 0 && o->vw == NULL)
        err = dk_views_open(o->lg, dir, vo, &o->vw);
    close(fd); /* and the lock with it */
    return err;
}

/* Open the ledger and its views; `sync` brings them up to date first. With OPEN_ONLY, a
 * ledger with no views store yet is refused before the store is made: commands that
 * only read the views leave the ledger's directory as they found it. OPEN_REPLACE: a
 * store that cannot be opened is set aside (set_aside) and a new one made. */
static int vopen_all(const char *ledger, const char *batch, int sync, int create, vopen *o)
{
    memset(o, 0, sizeof *o);
    dk_views_opts vo = {0, 0, 0, 0, 0};
    int rc = parse_batch(batch, &vo.batch);
    if (rc != EXIT_OK)
        return rc;
    const char *dir = cli_ledger_dir(ledger);
    if (dir == NULL)
        return EXIT_USAGE;
    if ((rc = cli_open_ledger(ledger, 1, &o->lg)) != EXIT_OK)
        return rc;
    if (views_as_of_set) {
        if ((rc = vopen_as_of(o, &vo)) != EXIT_OK)
            vclose(o);
        return rc;
    }
    dk_view_status none[DK_VIEW_COUNT];
    int err = create != OPEN_ONLY ? 0 : dk_views_absent(o->lg, dir, none);
    if (err == 1)
        err = dk_fail(DK_ENOTFOUND, "the views are not built yet (docket project or docket "
                                    "views rebuild builds them)");
    if (err == 0 && create == OPEN_FRESH)
        err =
            replace_store(o, dir, &vo, "views rebuild --fresh: the old store is kept, not opened");
    else if (err == 0)
        err = dk_views_open(o->lg, dir, &vo, &o->vw);
    if (err == DK_ECORRUPT && create == OPEN_REPLACE)
        err = replace_store(o, dir, &vo, NULL);
    if (err) {
        dk_ledger_close(o->lg);
        o->lg = NULL;
        return cli_dk_fail(err, err == DK_ECORRUPT && create < OPEN_REPLACE
                                    ? "cannot open the views store (`docket views rebuild` sets a "
                                      "damaged one aside and builds the views anew)"
                                    : "cannot open the views");
    }
    if (sync && (err = dk_views_sync(o->vw)) != 0) {
        rc = cli_dk_fail(err, "cannot bring the views up to date");
        vclose(o);
        return rc;
    }
    return EXIT_OK;
}

static void digest_hex(const uint8_t *d, char out[2 * DK_VIEW_DIGEST_BYTES + 1])
{
    for (int i = 0; i < DK_VIEW_DIGEST_BYTES; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static int print_statuses(const dk_view_status *st, int json)
{
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-12s %-8s %7s %10s %10s %8s %10s %9s  %s\n", "view", "state", "version", "seq",
               "head", "lag", "lag_ms", "entries", "digest");
    for (int i = 0; i < DK_VIEW_COUNT; i++) {
        const dk_view_status *s = &st[i];
        char dg[2 * DK_VIEW_DIGEST_BYTES + 1];
        digest_hex(s->digest, dg);
        const char *state = s->building                     ? "building"
                            : s->damage[0]                  ? "damaged"
                            : s->foreign                    ? "foreign"
                            : s->live                       ? "live"
                            : s->version == 0               ? "missing"
                            : s->version != s->code_version ? "stale"
                                                            : "behind";
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "view", cli_json_text(s->name));
            json_object_set_new(o, "state", cli_json_text(state));
            json_object_set_new(o, "live", json_boolean(s->live));
            json_object_set_new(o, "version", json_integer(s->version));
            json_object_set_new(o, "code_version", json_integer(s->code_version));
            json_object_set_new(o, "generation", json_integer((json_int_t)s->gen));
            json_object_set_new(o, "checkpoint", json_integer((json_int_t)s->seq));
            json_object_set_new(o, "head", json_integer((json_int_t)s->head));
            json_object_set_new(o, "lag", json_integer((json_int_t)s->lag));
            json_object_set_new(o, "lag_ms", json_real((double)s->lag_us / 1000.0));
            json_object_set_new(o, "waiting_ms", json_real((double)s->wait_us / 1000.0));
            json_object_set_new(o, "entries", json_integer((json_int_t)s->entries));
            json_object_set_new(o, "digest", cli_json_text(dg));
            if (s->damage[0])
                json_object_set_new(o, "damage", cli_json_text(s->damage));
            if (s->building) {
                json_object_set_new(o, "building_pid", json_integer((json_int_t)s->building_pid));
                json_object_set_new(o, "building_stopped", json_boolean(s->building_stopped));
            }
            json_array_append_new(arr, o);
        } else {
            printf("%-12s %-8s %7u %10llu %10llu %8llu %10.1f %9llu  %s\n", s->name, state,
                   s->version, (unsigned long long)s->seq, (unsigned long long)s->head,
                   (unsigned long long)s->lag, (double)s->lag_us / 1000.0,
                   (unsigned long long)s->entries, dg);
        }
    }
    for (int i = 0; !json && i < DK_VIEW_COUNT; i++)
        if (st[i].damage[0])
            printf("%s is damaged: %s (docket views rebuild %s repairs it)\n", st[i].name,
                   st[i].damage, st[i].name);
        else if (st[i].building_stopped)
            printf("%s: its rebuild is held by process %llu, which is stopped: the rebuild goes "
                   "on when that process is continued\n",
                   st[i].name, (unsigned long long)st[i].building_pid);
    if (json)
        cli_print_json(arr);
    return EXIT_OK;
}

static int print_status(dk_views *vw, int json)
{
    dk_view_status st[DK_VIEW_COUNT];
    int err = dk_views_status(vw, st);
    if (err)
        return cli_dk_fail(err, "cannot read the views' status");
    return print_statuses(st, json);
}

/* `views status` reads and never writes: with no views store yet, every view is missing. */
static int status_without_store(const char *ledger, int json, int *shown)
{
    dk_ledger *lg;
    dk_view_status st[DK_VIEW_COUNT];
    *shown = 0;
    const char *dir = cli_ledger_dir(ledger);
    if (dir == NULL)
        return EXIT_USAGE;
    int rc = cli_open_ledger(ledger, 1, &lg);
    if (rc != EXIT_OK)
        return rc;
    int err = dk_views_absent(lg, dir, st);
    dk_ledger_close(lg);
    if (err < 0)
        return cli_dk_fail(err, "cannot read the views' status");
    if (err == 0)
        return EXIT_OK;
    *shown = 1;
    return print_statuses(st, json);
}

/* ---- views status | rebuild | check | dump ---- */

typedef struct diff_ctx {
    int json;
    json_t *arr;
} diff_ctx;

static void on_diff(void *ud, const char *view, const char *key, const char *stored,
                    const char *fresh)
{
    diff_ctx *d = ud;
    if (d->json) {
        json_t *o = json_object();
        json_object_set_new(o, "view", cli_json_text(view));
        json_object_set_new(o, "key", cli_json_text(key));
        json_object_set_new(o, "stored", stored ? cli_json_text(stored) : json_null());
        json_object_set_new(o, "fresh", fresh ? cli_json_text(fresh) : json_null());
        json_array_append_new(d->arr, o);
        return;
    }
    printf("%s: %s: stored %s%s%s, fresh %s%s%s\n", view, key, stored ? "'" : "",
           stored ? stored : "(absent)", stored ? "'" : "", fresh ? "'" : "",
           fresh ? fresh : "(absent)", fresh ? "'" : "");
}

typedef struct dump_ctx {
    int json;
    json_t *arr;
} dump_ctx;

static int on_row(void *ud, const char *key, const char *value)
{
    dump_ctx *d = ud;
    if (d->json) {
        json_t *o = json_object();
        json_object_set_new(o, "key", cli_json_text(key));
        json_object_set_new(o, "value", cli_json_text(value));
        json_array_append_new(d->arr, o);
    } else {
        printf("%s%s%s\n", key, value[0] ? "  " : "", value);
    }
    return 0;
}

static const char views_usage[] =
    "usage: docket views status [--json]\n"
    "       docket views rebuild [NAME|all] [--fresh] [--json]\n"
    "       docket views check [NAME|all] [--max N] [--json]\n"
    "       docket views dump NAME [--no-sync] [--json]\n"
    "  (all take --ledger DIR)\n"
    "Views: case_status, by_status, queue, diary, stats, errors (and _cases, the case states).\n"
    "status: each view's checkpoint, the ledger head and the lag. rebuild: rebuild into fresh\n"
    "databases, then swap them in atomically. check: recompute from the ledger and compare\n"
    "entry by entry and digest by digest; exit 3 if a view is damaged. rebuild sets a store\n"
    "that cannot be opened aside (views.damaged-TIME), and with --fresh any store, for damage\n"
    "LMDB meets only while reading.\n";

int cmd_views(int argc, char **argv)
{
    const char *ledger = NULL, *max = NULL;
    int json = 0, no_sync = 0, fresh = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL}, {"json", NULL, &json},
                            {"max", &max, NULL},       {"no-sync", NULL, &no_sync},
                            {"fresh", NULL, &fresh},   {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, views_usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos < 1)
        return cli_usage_error("views needs a subcommand: status, rebuild, check or dump");
    if (npos > 2)
        return cli_usage_error("views %s takes at most one view name; '%s' is one too many", pos[0],
                               pos[2]);
    const char *sub = pos[0], *name = npos > 1 ? pos[1] : NULL;
    int known = strcmp(sub, "status") == 0 || strcmp(sub, "rebuild") == 0 ||
                strcmp(sub, "check") == 0 || strcmp(sub, "dump") == 0;
    if (known && fresh && strcmp(sub, "rebuild") != 0)
        return cli_usage_error("--fresh is an option of views rebuild only");
    if (known && max && strcmp(sub, "check") != 0)
        return cli_usage_error("--max is an option of views check only");
    if (known && no_sync && strcmp(sub, "dump") != 0)
        return cli_usage_error("--no-sync is an option of views dump only (status, check and "
                               "rebuild never sync)");
    if (name && strcmp(sub, "status") == 0)
        return cli_usage_error("views status takes no view name");
    if (name && strcmp(name, "all") != 0 && dk_view_id(name) < 0) /* dump takes no "all" */
        return cli_usage_error("no view named '%s' (case_status, by_status, queue, diary, stats, "
                               "errors%s)",
                               name, strcmp(sub, "dump") == 0 ? " or _cases" : ", _cases or all");
    uint64_t maxn = 0;
    if (max && (rc = cli_parse_u64("--max", max, &maxn)) != EXIT_OK)
        return rc;
    vopen o;
    if (strcmp(sub, "status") == 0) {
        int shown;
        if ((rc = status_without_store(ledger, json, &shown)) != EXIT_OK || shown)
            return rc;
        if ((rc = vopen_all(ledger, NULL, 0, OPEN_ONLY, &o)) != EXIT_OK)
            return rc;
        rc = print_status(o.vw, json);
    } else if (strcmp(sub, "rebuild") == 0) {
        if ((rc = vopen_all(ledger, NULL, 0, fresh ? OPEN_FRESH : OPEN_REPLACE, &o)) != EXIT_OK)
            return rc;
        if (o.replaced && name && strcmp(name, "all") != 0)
            fprintf(stderr,
                    "docket: the new store holds no views yet: rebuilding all of them, "
                    "not only %s\n",
                    name);
        int err = dk_views_rebuild(o.vw, o.replaced ? NULL : name);
        if (err == DK_ECORRUPT && !o.replaced && strstr(dk_errmsg(), DK_VIEWS_STORE_DAMAGED)) {
            /* damage LMDB met inside the store, not the ledger's: as --fresh would */
            dk_views_close(o.vw);
            o.vw = NULL;
            dk_views_opts vo = {0, 0, 0, 0, 0};
            const char *dir = cli_ledger_dir(ledger);
            char why[DK_ERRMSG_MAX];
            snprintf(why, sizeof why, "%s", dk_errmsg());
            if ((err = replace_store(&o, dir, &vo, why)) == 0)
                err = dk_views_rebuild(o.vw, NULL);
        }
        if (err)
            rc = cli_dk_fail(err, "rebuild failed");
        else if (json)
            rc = print_status(o.vw, 1);
        else
            printf("rebuilt %s\n", name && !o.replaced ? name : "all views");
    } else if (strcmp(sub, "check") == 0) {
        if ((rc = vopen_all(ledger, NULL, 0, OPEN_ONLY, &o)) != EXIT_OK)
            return rc;
        diff_ctx d = {json, json ? json_array() : NULL};
        dk_views_check_report rep;
        int err = dk_views_check(o.vw, name, (size_t)maxn, on_diff, &d, &rep);
        if (err) {
            json_decref(d.arr);
            rc = cli_dk_fail(err, "check failed");
        } else {
            if (json) {
                json_t *r = json_object();
                json_object_set_new(r, "ok", json_boolean(rep.ok));
                json_object_set_new(r, "seq", json_integer((json_int_t)rep.seq));
                json_object_set_new(r, "views_checked",
                                    json_integer((json_int_t)rep.views_checked));
                json_object_set_new(r, "differences", json_integer((json_int_t)rep.differences));
                json_t *dmg = json_array();
                for (int i = 0; i < DK_VIEW_COUNT; i++)
                    if (rep.damaged & (1u << i))
                        json_array_append_new(dmg, cli_json_text(dk_view_name(i)));
                json_object_set_new(r, "damaged", dmg);
                json_object_set_new(r, "diffs", d.arr);
                cli_print_json(r);
            } else if (rep.ok) {
                printf("ok: %zu %s a fresh replay at seq %llu\n", rep.views_checked,
                       rep.views_checked == 1 ? "view equals" : "views equal",
                       (unsigned long long)rep.seq);
            } else {
                fprintf(stderr,
                        "docket: views damaged: %zu difference%s at seq %llu (docket "
                        "views rebuild repairs them)\n",
                        rep.differences, rep.differences == 1 ? "" : "s",
                        (unsigned long long)rep.seq);
            }
            rc = rep.ok ? EXIT_OK : EXIT_DAMAGE;
        }
    } else if (strcmp(sub, "dump") == 0) {
        if (name == NULL || strcmp(name, "all") == 0)
            return cli_usage_error("views dump needs one view name");
        if ((rc = vopen_all(ledger, NULL, !no_sync, no_sync ? OPEN_ONLY : OPEN_CREATE, &o)) !=
            EXIT_OK)
            return rc;
        dump_ctx d = {json, json ? json_array() : NULL};
        uint64_t as_of = 0;
        int err = dk_views_dump(o.vw, name, on_row, &d, &as_of);
        if (err) {
            json_decref(d.arr);
            rc = cli_dk_fail(err, "cannot read the view");
        } else if (json) {
            json_t *r = json_object();
            json_object_set_new(r, "view", cli_json_text(name));
            json_object_set_new(r, "as_of_seq", json_integer((json_int_t)as_of));
            json_object_set_new(r, "entries", d.arr);
            cli_print_json(r);
        }
    } else {
        return cli_usage_error("unknown views subcommand '%s' (status, rebuild, check, dump)", sub);
    }
    vclose(&o);
    return rc;
}

/* ---- project [--follow] ---- */

/* A follower: one loop and its signal handles for the whole run; the projector on it is
 * replaced when another process moves the views store aside (the handles stay, so a
 * signal during the reopen is kept, not left to the default action). */
typedef struct follow {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    dk_projector *pj;
    vopen *o;
    const char *ledger, *batch;
    unsigned poll_ms;
    int rc; /* the exit code of what stopped it: a projector error, a failed reopen */
    int verbose;
    int signalled;            /* SIGINT or SIGTERM: stop for good */
    int reopen;               /* the views store was replaced: follow the new one */
    dk_projector_stats stats; /* taken as it stops */
} follow;

static int start_projector(follow *f);

static void close_signals(follow *f)
{
    uv_close((uv_handle_t *)&f->sigint, NULL);
    uv_close((uv_handle_t *)&f->sigterm, NULL);
}

/* The projector has stopped: follow the new store, or end the loop. */
static void on_stopped(void *ud)
{
    follow *f = ud;
    if (f->reopen && !f->signalled) {
        f->reopen = 0;
        vclose(f->o);
        fprintf(stderr, "docket: the ledger or its views store was replaced; following the new "
                        "one\n");
        if ((f->rc = vopen_all(f->ledger, f->batch, 0, OPEN_CREATE, f->o)) == EXIT_OK &&
            (f->rc = start_projector(f)) == EXIT_OK)
            return;
    }
    close_signals(f);
}

static void stop_follow(follow *f)
{
    if (f->pj) {
        dk_projector *pj = f->pj;
        f->pj = NULL;
        dk_projector_stats_get(pj, &f->stats);
        dk_projector_stop(pj, on_stopped, f);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    follow *f = h->data;
    f->signalled = 1;
    stop_follow(f);
}

static void on_batch(void *ud, const dk_views_batch *b)
{
    follow *f = ud;
    if (f->verbose && b->to_seq >= b->from_seq) /* the batch's oldest record lags most */
        fprintf(stderr, "docket: views at seq %llu (+%llu), lag %.1f ms\n",
                (unsigned long long)b->to_seq, (unsigned long long)(b->to_seq - b->from_seq + 1),
                (double)(b->committed_at - b->recorded_at[0]) / 1000.0);
    if (f->verbose && b->swapped)
        fprintf(stderr, "docket: rebuilt views swapped in\n");
}

static void on_error(void *ud, int err, const char *msg)
{
    follow *f = ud;
    fprintf(stderr, "docket: projector: %s (%s)\n", msg[0] ? msg : dk_strerror(err),
            dk_err_name(err));
    if (err == DK_ECORRUPT || err == DK_EDENIED) { /* retrying cannot help */
        f->rc = cli_exit_code(err);
        stop_follow(f);
    } else if (err == DK_ECLOSED) { /* another process set the store aside: reopen */
        f->reopen = 1;
        stop_follow(f);
    }
}

/* What a follower did, printed once it has stopped cleanly. */
static void print_follow_stats(const dk_projector_stats *s, int json)
{
    if (!json) {
        double p50 = (double)s->lag_p50_us / 1000.0, p99 = (double)s->lag_p99_us / 1000.0,
               max = (double)s->lag_max_us / 1000.0;
        printf("projector stopped at seq %llu (%llu behind the head): %llu records in %llu "
               "batches; lag per record p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
               (unsigned long long)s->seq, (unsigned long long)s->lag,
               (unsigned long long)s->records, (unsigned long long)s->batches, p50, p99, max);
        return;
    }
    json_t *o = json_object(), *l = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)s->seq));
    json_object_set_new(o, "behind", json_integer((json_int_t)s->lag));
    json_object_set_new(o, "records", json_integer((json_int_t)s->records));
    json_object_set_new(o, "batches", json_integer((json_int_t)s->batches));
    json_object_set_new(l, "p50", json_integer((json_int_t)s->lag_p50_us));
    json_object_set_new(l, "p99", json_integer((json_int_t)s->lag_p99_us));
    json_object_set_new(l, "max", json_integer((json_int_t)s->lag_max_us));
    json_object_set_new(o, "lag_us", l);
    cli_print_json(o);
}

/* A projector on f->o's views, on f's loop. EXIT_OK, or the exit code of its failure. */
static int start_projector(follow *f)
{
    dk_projector_opts po = {f->poll_ms, 1, on_batch, on_error, f};
    int err =
        dk_projector_start(&f->loop, f->o->vw, f->o->lg, cli_ledger_dir(f->ledger), &po, &f->pj);
    return err ? cli_dk_fail(err, "cannot start the projector") : EXIT_OK;
}

/* SIGINT and SIGTERM blocked (held pending) or unblocked: a follower blocks them from its
 * start until its loop handles them, so that one sent while it opens the views stops it
 * cleanly instead of killing it, and unblocks them even if its parent left them blocked. */
static void stop_signals(int how)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(how, &s, NULL);
}

/* Follow until a signal or an error stops the projector, reopening the views whenever
 * another process replaces their store. EXIT_OK, or an exit code. */
static int follow_views(follow *f)
{
    uv_loop_init(&f->loop);
    uv_signal_init(&f->loop, &f->sigint);
    uv_signal_init(&f->loop, &f->sigterm);
    f->sigint.data = f->sigterm.data = f;
    uv_signal_start(&f->sigint, on_signal, SIGINT);
    uv_signal_start(&f->sigterm, on_signal, SIGTERM);
    stop_signals(SIG_UNBLOCK); /* one that came meanwhile is handled now */
    if ((f->rc = start_projector(f)) != EXIT_OK)
        close_signals(f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    return f->rc;
}

static const char project_usage[] =
    "usage: docket project [--follow] [--batch N] [--poll-ms N] [--verbose] [--json]\n"
    "                      [--ledger DIR]\n"
    "Bring every view up to the ledger's head (rebuilding views whose version changed).\n"
    "With --follow, keep following the ledger, woken by changes to its data file (and a\n"
    "timer every --poll-ms, default 500), until SIGINT or SIGTERM; then print what it did and\n"
    "each record's lag (p50, p99, max). --verbose prints each batch and its lag as it goes.\n";

int cmd_project(int argc, char **argv)
{
    const char *ledger = NULL, *batch = NULL, *poll = NULL;
    int json = 0, follow_flag = 0, verbose = 0, npos;
    char *pos[4];
    const cli_opt opts[] = {
        {"ledger", &ledger, NULL}, {"json", NULL, &json},    {"follow", NULL, &follow_flag},
        {"batch", &batch, NULL},   {"poll-ms", &poll, NULL}, {"verbose", NULL, &verbose},
        {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, project_usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 0)
        return cli_usage_error("project takes no arguments");
    if (!follow_flag && (poll || verbose)) /* they would do nothing: say so */
        return cli_usage_error("%s is an option of project --follow only",
                               poll ? "--poll-ms" : "--verbose");
    uint64_t poll_ms = 0;
    if (poll && (rc = cli_parse_u64("--poll-ms", poll, &poll_ms)) != EXIT_OK)
        return rc;
    if (poll && (poll_ms == 0 || poll_ms > 3600000))
        return cli_usage_error("--poll-ms must be 1..3600000");
    vopen o;
    if (follow_flag)
        stop_signals(SIG_BLOCK);
    if ((rc = vopen_all(ledger, batch, 0, OPEN_CREATE, &o)) != EXIT_OK)
        return rc;
    if (!follow_flag) {
        int err = dk_views_sync(o.vw);
        rc = err ? cli_dk_fail(err, "cannot bring the views up to date") : print_status(o.vw, json);
        vclose(&o);
        return rc;
    }
    follow f;
    memset(&f, 0, sizeof f);
    f.verbose = verbose;
    f.o = &o;
    f.ledger = ledger;
    f.batch = batch;
    f.poll_ms = (unsigned)poll_ms;
    rc = follow_views(&f);
    if (rc == EXIT_OK)
        print_follow_stats(&f.stats, json);
    vclose(&o);
    return rc;
}

/* ---- queries ---- */

static json_t *summary_json(const dk_case_summary *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "case", cli_json_text(c->case_id));
    json_object_set_new(o, "status", cli_json_text(c->status));
    json_object_set_new(o, "case_type", cli_json_text(c->case_type));
    json_object_set_new(o, "received_on", cli_json_text(c->received_on));
    json_object_set_new(o, "assignee", c->assignee[0] ? cli_json_text(c->assignee) : json_null());
    json_object_set_new(o, "version", json_integer((json_int_t)c->version));
    json_object_set_new(o, "outcome", c->outcome[0] ? cli_json_text(c->outcome) : json_null());
    json_object_set_new(o, "leave_cancelled_seq",
                        c->leave_cancelled_seq ? json_integer((json_int_t)c->leave_cancelled_seq)
                                               : json_null());
    json_object_set_new(o, "leave_grant_seq",
                        c->leave_grant_seq ? json_integer((json_int_t)c->leave_grant_seq)
                                           : json_null());
    json_object_set_new(o, "conditions", cli_csv_json(c->conditions)); /* as status gives them */
    json_object_set_new(o, "interview_at",
                        c->interview_at[0] ? cli_json_text(c->interview_at) : json_null());
    json_object_set_new(o, "open_errors", json_integer(c->open_errors));
    return o;
}

typedef struct qctx {
    int json;
    json_t *arr;
    size_t n;
    int bad_arg; /* the error is the argument's (an id never enrolled), not the view's */
} qctx;

static int on_case(void *ud, const dk_case_summary *c)
{
    qctx *q = ud;
    q->n++;
    if (q->json)
        json_array_append_new(q->arr, summary_json(c));
    else
        printf("%-20s %-20s %-12s %-10s %s\n", c->case_id, c->status, c->case_type, c->received_on,
               c->assignee[0] ? c->assignee : "-");
    return 0;
}

static int on_queue(void *ud, const dk_queue_item *it)
{
    qctx *q = ud;
    q->n++;
    if (q->json) {
        json_t *o = json_object();
        json_object_set_new(o, "case", cli_json_text(it->case_id));
        json_object_set_new(o, "received_on", cli_json_text(it->received_on));
        json_object_set_new(o, "status", cli_json_text(it->status));
        json_array_append_new(q->arr, o);
    } else {
        printf("%s  %-20s %s\n", it->received_on, it->case_id, it->status);
    }
    return 0;
}

static int on_slot(void *ud, const dk_diary_slot *s)
{
    qctx *q = ud;
    char a[DK_TIME_LEN], b[DK_TIME_LEN];
    dk_time_format(s->start, a);
    dk_time_format(s->end, b);
    q->n++;
    if (q->json) {
        json_t *o = json_object();
        json_object_set_new(o, "start", cli_json_text(a));
        json_object_set_new(o, "end", cli_json_text(b));
        json_object_set_new(o, "interviewer", cli_json_text(s->interviewer));
        json_object_set_new(o, "case", cli_json_text(s->case_id));
        json_object_set_new(o, "location", cli_json_text(s->location));
        json_object_set_new(o, "state", cli_json_text(s->state));
        json_object_set_new(o, "booked_at", json_integer((json_int_t)s->booked_at));
        json_array_append_new(q->arr, o);
    } else {
        printf("%.5s-%.5s  %-16s %-20s %-9s %s\n", a + 11, b + 11, s->interviewer, s->case_id,
               s->state, s->location);
    }
    return 0;
}

static int on_error_item(void *ud, const dk_error_item *e)
{
    qctx *q = ud;
    char a[DK_TIME_LEN], b[DK_TIME_LEN];
    dk_time_format(e->reported_at, a);
    dk_time_format(e->resolved_at, b);
    q->n++;
    if (q->json) {
        json_t *o = json_object();
        json_object_set_new(o, "report_seq", json_integer((json_int_t)e->report_seq));
        json_object_set_new(o, "case", cli_json_text(e->case_id));
        json_object_set_new(o, "open", json_boolean(e->open));
        json_object_set_new(o, "reported_at", cli_json_text(a));
        json_object_set_new(o, "resolved_at", e->open ? json_null() : cli_json_text(b));
        json_object_set_new(o, "resolved_by_seq",
                            e->open ? json_null() : json_integer((json_int_t)e->resolved_by));
        json_object_set_new(o, "resolve_seconds",
                            e->open ? json_null() : json_real((double)e->resolve_us / 1e6));
        json_array_append_new(q->arr, o);
    } else if (e->open) {
        printf("%-8llu %-20s open      reported %s\n", (unsigned long long)e->report_seq,
               e->case_id, a);
    } else {
        /* whole seconds toward zero, as the view's took_s (helper-77: 1.9 s read "2 s" here
         * and took_s=1 in views dump) */
        printf("%-8llu %-20s resolved  reported %s, resolved %s by seq %llu (%lld s)\n",
               (unsigned long long)e->report_seq, e->case_id, a, b,
               (unsigned long long)e->resolved_by, (long long)(e->resolve_us / 1000000));
    }
    return 0;
}

static void print_result(const char *what, const char *arg, qctx *q, uint64_t as_of)
{
    if (!q->json)
        return;
    json_t *r = json_object();
    json_object_set_new(r, what, cli_json_text(arg));
    json_object_set_new(r, "as_of_seq", json_integer((json_int_t)as_of));
    json_object_set_new(r, "count", json_integer((json_int_t)q->n));
    json_object_set_new(r, "items", q->arr);
    q->arr = NULL;
    cli_print_json(r);
}

/* Shared option parsing for the one-argument queries. */
static int one_arg(int argc, char **argv, const char *usage, const char **ledger, int *json,
                   int *no_sync, int *open_only, const char **arg)
{
    int npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", ledger, NULL},
                            {"json", NULL, json},
                            {"no-sync", NULL, no_sync},
                            {open_only ? "open" : NULL, NULL, open_only},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (arg == NULL) {
        if (npos != 0)
            return cli_usage_error("%s takes no arguments", argv[0]);
        return CLI_CONTINUE;
    }
    if (npos != 1)
        return cli_usage_error("%s needs one argument (see --help)", argv[0]);
    *arg = pos[0];
    return CLI_CONTINUE;
}

/* One list query: open (and sync) the views, call the view, print, close.
 * `key`/`arg` name the question in the JSON; DK_EINVAL from the view is a
 * usage error (a bad argument). */
typedef int (*list_fn)(const vopen *o, const char *arg, qctx *q, uint64_t *as_of);

static int run_list(const char *ledger, int no_sync, int json, const char *key, const char *arg,
                    const char *view, list_fn call)
{
    vopen o;
    int rc = vopen_all(ledger, NULL, !no_sync, no_sync ? OPEN_ONLY : OPEN_CREATE, &o);
    if (rc != EXIT_OK)
        return rc;
    qctx q = {json, json ? json_array() : NULL, 0, 0};
    uint64_t as_of = 0;
    int err = call(&o, arg, &q, &as_of);
    if (err) {
        json_decref(q.arr);
        char what[64];
        int bad = err == DK_EINVAL || q.bad_arg;
        snprintf(what, sizeof what, bad ? "bad %s" : "cannot read the %s view", bad ? key : view);
        rc = err == DK_EINVAL ? (cli_dk_fail(err, what), EXIT_USAGE) : cli_dk_fail(err, what);
    } else {
        print_result(key, arg, &q, as_of);
    }
    vclose(&o);
    return rc;
}

static int list_by_status(const vopen *o, const char *arg, qctx *q, uint64_t *as_of)
{
    return dk_views_by_status(o->vw, arg, on_case, q, as_of);
}

/* An id never enrolled can hold no case (an assignee must be an enrolled caseworker):
 * most likely a mistyped one, which an empty queue would hide. */
static int list_queue(const vopen *o, const char *arg, qctx *q, uint64_t *as_of)
{
    dk_actor_info who;
    int rc = dk_ledger_actor(o->lg, arg, &who);
    if (rc == DK_ENOTFOUND) {
        q->bad_arg = 1; /* "bad caseworker", where a view's own DK_ENOTFOUND is not */
        return dk_fail(DK_ENOTFOUND,
                       "no actor '%s' is enrolled in this ledger, so no case can be assigned "
                       "to it",
                       arg);
    }
    return rc ? rc : dk_views_queue(o->vw, arg, on_queue, q, as_of);
}

static int list_diary(const vopen *o, const char *arg, qctx *q, uint64_t *as_of)
{
    return dk_views_diary(o->vw, arg, on_slot, q, as_of);
}

static int list_errors(const vopen *o, const char *arg, qctx *q, uint64_t *as_of)
{
    return dk_views_errors(o->vw, strcmp(arg, "open") == 0, on_error_item, q, as_of);
}

/* asof TIME query|report builds its views from the ledger in a scratch directory and never
 * syncs the live ones: --no-sync is refused there, not dropped. */
static int as_of_takes_no_sync(int no_sync, const char *cmd)
{
    if (no_sync && views_as_of_set)
        return cli_usage_error("asof TIME %s takes no --no-sync (an as-of read builds its views "
                               "from the ledger and never syncs the live ones)",
                               cmd);
    return EXIT_OK;
}

int cmd_query(int argc, char **argv)
{
    static const char usage[] =
        "usage: docket query status STATUS [--no-sync] [--json] [--ledger DIR]\n"
        "Cases currently in STATUS (the by_status view), in case-id order.\n";
    const char *ledger = NULL;
    int json = 0, no_sync = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},
                            {"json", NULL, &json},
                            {"no-sync", NULL, &no_sync},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if ((rc = as_of_takes_no_sync(no_sync, "query")) != EXIT_OK)
        return rc;
    if (npos != 2 || strcmp(pos[0], "status") != 0)
        return cli_usage_error("usage: docket query status STATUS");
    const char *status = pos[1];
    if (dk_status_parse(status, strlen(status)) < 0)
        return cli_usage_error("'%s' is not a case status (received, validated, "
                               "under_consideration, interview_scheduled, decided, appealed, "
                               "closed, withdrawn, leave_cancelled)",
                               status);
    return run_list(ledger, no_sync, json, "status", status, "by_status", list_by_status);
}

int cmd_queue(int argc, char **argv)
{
    static const char usage[] =
        "usage: docket queue CASEWORKER [--no-sync] [--json] [--ledger DIR]\n"
        "The caseworker's open assigned cases (received .. appealed), oldest received first.\n";
    const char *ledger = NULL, *who = NULL;
    int json = 0, no_sync = 0;
    int rc = one_arg(argc, argv, usage, &ledger, &json, &no_sync, NULL, &who);
    if (rc != CLI_CONTINUE)
        return rc;
    if (dk_queue_caseworker_check(who) != 0) {
        cli_dk_fail(DK_EINVAL, "bad caseworker");
        return EXIT_USAGE;
    }
    return run_list(ledger, no_sync, json, "caseworker", who, "queue", list_queue);
}

int cmd_diary(int argc, char **argv)
{
    static const char usage[] =
        "usage: docket diary DAY [--no-sync] [--json] [--ledger DIR]\n"
        "Interview slots starting on DAY (YYYY-MM-DD, UTC): booked, attended or no-show.\n";
    const char *ledger = NULL, *day = NULL;
    int json = 0, no_sync = 0;
    int rc = one_arg(argc, argv, usage, &ledger, &json, &no_sync, NULL, &day);
    if (rc != CLI_CONTINUE)
        return rc;
    if (strlen(day) != 10 || !dk_date_valid(day, 10))
        return cli_usage_error("'%s' is not a date YYYY-MM-DD", day);
    return run_list(ledger, no_sync, json, "day", day, "diary", list_diary);
}

int cmd_errors(int argc, char **argv)
{
    static const char usage[] =
        "usage: docket errors [--open] [--no-sync] [--json] [--ledger DIR]\n"
        "Error reports: open ones, then resolved ones with the time each took.\n";
    const char *ledger = NULL;
    int json = 0, no_sync = 0, open_only = 0;
    int rc = one_arg(argc, argv, usage, &ledger, &json, &no_sync, &open_only, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    return run_list(ledger, no_sync, json, "errors", open_only ? "open" : "all", "errors",
                    list_errors);
}

int cmd_report(int argc, char **argv)
{
    static const char usage[] =
        "usage: docket report --case-type T --outcome O [--condition C] --from DATE --to DATE\n"
        "                     [--no-sync] [--json] [--ledger DIR]\n"
        "Decisions recorded (dated by effective time) from..to inclusive, from the stats view:\n"
        "one lookup per whole year, month or day of the range.\n";
    const char *ledger = NULL;
    dk_report_query rq = {NULL, NULL, NULL, NULL, NULL};
    int json = 0, no_sync = 0, npos;
    char *pos[4];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},
                            {"json", NULL, &json},
                            {"no-sync", NULL, &no_sync},
                            {"case-type", &rq.case_type, NULL},
                            {"outcome", &rq.outcome, NULL},
                            {"condition", &rq.condition, NULL},
                            {"from", &rq.from, NULL},
                            {"to", &rq.to, NULL},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if ((rc = as_of_takes_no_sync(no_sync, "report")) != EXIT_OK)
        return rc;
    if (npos != 0)
        return cli_usage_error("report takes options only (see --help)");
    const char *missing = !rq.case_type ? "--case-type"
                          : !rq.outcome ? "--outcome"
                          : !rq.from    ? "--from"
                          : !rq.to      ? "--to"
                                        : NULL;
    if (missing)
        return cli_usage_error("report needs %s", missing);
    if (dk_report_query_check(&rq) != 0) { /* before the views are opened, or synced */
        cli_dk_fail(DK_EINVAL, "bad report query");
        return EXIT_USAGE;
    }
    vopen o;
    if ((rc = vopen_all(ledger, NULL, !no_sync, no_sync ? OPEN_ONLY : OPEN_CREATE, &o)) != EXIT_OK)
        return rc;
    dk_report_result res;
    uint64_t as_of = 0;
    int err = dk_views_report(o.vw, &rq, &res, &as_of);
    if (err == DK_EINVAL) {
        cli_dk_fail(err, "bad report query");
        rc = EXIT_USAGE;
    } else if (err) {
        rc = cli_dk_fail(err, "cannot read the stats view");
    } else if (json) {
        json_t *r = json_object();
        json_object_set_new(r, "case_type", cli_json_text(rq.case_type));
        json_object_set_new(r, "outcome", cli_json_text(rq.outcome));
        json_object_set_new(r, "condition",
                            rq.condition ? cli_json_text(rq.condition) : json_null());
        json_object_set_new(r, "from", cli_json_text(rq.from));
        json_object_set_new(r, "to", cli_json_text(rq.to));
        json_object_set_new(r, "count", json_integer((json_int_t)res.count));
        json_object_set_new(r, "lookups", json_integer((json_int_t)res.lookups));
        json_object_set_new(r, "as_of_seq", json_integer((json_int_t)as_of));
        cli_print_json(r);
    } else {
        printf("%llu\n", (unsigned long long)res.count);
    }
    vclose(&o);
    return rc;
}
