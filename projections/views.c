/* views.c - the projections' driver: open and close, one step of work per
 * transaction (live batch, rebuild batch, swap or check), sync, rebuild, status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "views_int.h"

#define DEFAULT_BATCH         1024
#define DEFAULT_REBUILD_BATCH 32768
#define DEFAULT_REBUILD_CHUNK 128

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int dk__views_head(dk_views *vw, dk_head *head)
{
    int rc = dk_ledger_head(vw->lg, head);
    if (rc || vw->upto == 0 || head->seq <= vw->upto)
        return rc;
    uint8_t *raw;
    size_t len;
    dk_record rec;
    if ((rc = dk_ledger_get(vw->lg, vw->upto, &raw, &len)) != 0)
        return rc;
    if ((rc = dk_record_decode(raw, len, &rec)) == 0) {
        head->seq = rec.seq;
        head->recorded_at = rec.recorded_at;
        dk_leaf_hash(rec.raw, rec.raw_len, head->hash);
    }
    free(raw);
    return rc;
}

static void known(dk_views *vw, uint64_t seq, const uint8_t hash[DK_HASH_BYTES])
{
    vw->known_seq = seq;
    memcpy(vw->known_hash, hash, DK_HASH_BYTES);
}

/* Is (seq, hash) the record of this ledger (whose head is `head`) at seq? */
static int match(dk_views *vw, const dk_head *head, uint64_t seq, const uint8_t hash[DK_HASH_BYTES])
{
    if (seq > head->seq)
        return dk_fail(DK_ECORRUPT,
                       "views: the views are at seq %llu but the ledger's head is %llu: the "
                       "ledger was replaced or restored; rebuild the views (docket views rebuild)",
                       (unsigned long long)seq, (unsigned long long)head->seq);
    uint8_t at[DK_HASH_BYTES];
    if (seq == head->seq) {
        memcpy(at, head->hash, DK_HASH_BYTES);
    } else {
        uint8_t *raw;
        size_t len;
        int rc = dk_ledger_get(vw->lg, seq, &raw, &len);
        if (rc)
            return rc;
        dk_leaf_hash(raw, len, at);
        free(raw);
    }
    if (memcmp(at, hash, DK_HASH_BYTES) != 0)
        return dk_fail(DK_ECORRUPT,
                       "views: the views were built up to a record %llu that is not this "
                       "ledger's: the ledger was replaced or restored, or the views come from "
                       "another ledger; rebuild the views (docket views rebuild)",
                       (unsigned long long)seq);
    return 0;
}

int dk__views_match(dk_views *vw, const dk_head *head, uint64_t seq,
                    const uint8_t hash[DK_HASH_BYTES])
{
    if (seq == 0 || (seq == vw->known_seq && memcmp(hash, vw->known_hash, DK_HASH_BYTES) == 0 &&
                     seq <= head->seq))
        return 0;
    if (seq > head->seq && vw->upto && head->seq == vw->upto) {
        /* past the seq these views were opened to show (`upto`): this ledger's, or not? */
        dk_head real;
        int rc = dk_ledger_head(vw->lg, &real);
        if (rc == 0 && (rc = match(vw, &real, seq, hash)) == 0)
            rc = dk_fail(DK_EINVAL,
                         "views: the views are at seq %llu, past seq %llu that they were "
                         "opened to show; they cannot show the ledger as it was then",
                         (unsigned long long)seq, (unsigned long long)head->seq);
        return rc;
    }
    int rc = match(vw, head, seq, hash);
    if (rc == 0)
        known(vw, seq, hash);
    return rc;
}

int dk_views_open(dk_ledger *lg, const char *ledger_dir, const dk_views_opts *opts, dk_views **out)
{
    *out = NULL;
    if (lg == NULL || ledger_dir == NULL || ledger_dir[0] == 0)
        return dk_fail(DK_EINVAL, "views: no ledger given");
    if (strlen(ledger_dir) > 4000)
        return dk_fail(DK_EINVAL, "views: ledger path is too long");
    dk_views *vw = calloc(1, sizeof *vw);
    if (vw == NULL)
        return dk_fail(DK_ENOMEM, "out of memory");
    vw->lg = lg;
    snprintf(vw->dir, sizeof vw->dir, "%s", ledger_dir);
    vw->batch = opts && opts->batch ? opts->batch : DEFAULT_BATCH;
    vw->rebuild_batch = opts && opts->rebuild_batch ? opts->rebuild_batch : DEFAULT_REBUILD_BATCH;
    vw->upto = opts ? opts->upto : 0;
    vw->map_size = opts ? opts->map_size : 0;
    vw->rebuild_chunk = opts && opts->rebuild_chunk ? opts->rebuild_chunk : DEFAULT_REBUILD_CHUNK;
    if (vw->rebuild_chunk > 65536) {
        free(vw);
        return dk_fail(DK_EINVAL, "views: a rebuild chunk is limited to 65536 cases");
    }
    if (vw->batch > 1u << 20 || vw->rebuild_batch > 1u << 20) {
        free(vw);
        return dk_fail(DK_EINVAL, "views: batch sizes are limited to 1048576 records");
    }
    dk__ov_init(&vw->ov);
    dk__cache_init(&vw->live_cache, 2 * (size_t)vw->batch);
    dk__cache_init(&vw->build_cache, (size_t)vw->rebuild_batch + vw->rebuild_batch / 2);
    int rc = 0;
    if (vw->live_cache.cap == 0 || vw->build_cache.cap == 0)
        rc = dk_fail(DK_ENOMEM, "out of memory");
    if (rc == 0)
        rc = dk__env_open(vw);
    if (rc) {
        dk_views_close(vw);
        return rc;
    }
    *out = vw;
    return 0;
}

static void end_run(dk_views *vw, int (*op)(dk_views *, MDB_txn *, uint64_t, unsigned));

void dk_views_close(dk_views *vw)
{
    if (vw == NULL)
        return;
    dk__bulk_stop(vw);
    if (vw->env && vw->run.active)
        end_run(vw, dk__build_release);
    if (vw->env)
        mdb_env_close(vw->env);
    dk__ov_free(&vw->ov);
    dk__cache_free(&vw->live_cache);
    dk__cache_free(&vw->build_cache);
    free(vw->times);
    free(vw);
}

static unsigned mask_of(const char *name, int *bad)
{
    *bad = 0;
    if (name == NULL || strcmp(name, "all") == 0)
        return ALL_VIEWS;
    int id = dk_view_id(name);
    if (id < 0) {
        *bad = 1;
        return 0;
    }
    return BIT(id);
}

int dk__unknown_view(const char *name, int all)
{
    char list[256];
    size_t n = 0;
    for (int i = 1; i <= NV; i++) /* _cases last: the views' own first */
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "",
                              dk_view_name(i % NV));
    return dk_fail(DK_EINVAL, "no view named '%s' (views: %s%s)", name ? name : "(null)", list,
                   all ? ", or all" : "");
}

/* Forget the cached live states (another process wrote, or our txn failed). */
static void drop_caches(dk_views *vw)
{
    dk__cache_clear(&vw->live_cache);
    dk__cache_clear(&vw->build_cache);
    vw->live_cache_seq = UINT64_MAX;
}

#define REDO 1 /* finish(): the map was full and has grown; redo the step */

/* A step that must be redone is not an error: more work waits. */
static int done(dk_views_batch *b, int rc)
{
    if (rc == REDO) {
        b->more = 1;
        return 0;
    }
    return rc;
}

/* The map doubles each time a step meets it full; this many times in a row with no
 * commit between means something else is wrong. */
#define FULL_MAX 16

/* Commit (rc == 0) or abort; 0, REDO (vw->redo set), or an error. */
static int finish(dk_views *vw, MDB_txn *txn, int rc)
{
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        char note[512] = "";
        if (rc && rc != MDB_MAP_FULL && vw->env)
            dk_lmdb_space_note(vw->env, rc, note, sizeof note);
        if (rc && (rc = dk__mdb_fail(rc, "cannot commit")) != 0 && note[0]) {
            char msg[DK_ERRMSG_MAX];
            snprintf(msg, sizeof msg, "%s", dk_errmsg());
            rc = dk_fail(rc, "%s%s", msg, note);
        }
    } else {
        mdb_txn_abort(txn);
    }
    if (rc == 0)
        vw->full = 0;
    if (rc && vw->adopting) {
        /* the record still names the dead process: the build is not ours to carry on */
        vw->run.active = 0;
        vw->run.bulk = 0;
    }
    vw->adopting = 0;
    if (rc) {
        drop_caches(vw);
        if (rc == DK__VMAPFULL && ++vw->full > FULL_MAX)
            rc = dk_fail(DK_EIO,
                         "views: the map was full %u times in a row, though it doubled "
                         "each time",
                         vw->full - 1);
        else if (rc == DK__VMAPFULL && (rc = dk__grow_map(vw)) == 0) {
            rc = REDO; /* nothing was committed: the caller does the step again */
            vw->redo = 1;
        }
    }
    return rc;
}

/* End this handle's run: stop its first phase, then `op` its build (dk__build_drop_own:
 * drop it; dk__build_release: hand it back, for a later sweep to carry on) in a
 * transaction of its own, once more if the map was full; failing that, a later sweep
 * deals with it. The run's other fields stay for the caller to read. */
static void end_run(dk_views *vw, int (*op)(dk_views *, MDB_txn *, uint64_t, unsigned))
{
    dk__bulk_stop(vw);
    for (int tries = 0; vw->run.active && tries < 2; tries++) {
        MDB_txn *txn;
        if (dk__txn_begin(vw, 0, &txn) != 0)
            break;
        if (finish(vw, txn, op(vw, txn, vw->run.gen, vw->run.mask)) != REDO)
            break;
    }
    vw->run.active = 0;
    vw->run.bulk = 0;
}

int dk_views_step(dk_views *vw, dk_views_batch *b)
{
    dk_views_batch dummy;
    if (b == NULL)
        b = &dummy;
    memset(b, 0, sizeof *b);
    b->from_seq = 1; /* none applied (to < from), also when the step stops before it knows
                        where the views are (a full map: REDO) */
    int rc = dk__ensure_map(vw);
    if (rc)
        return rc;
    /* The ledger's head is read once this step holds the views' write lock: read before
     * it, another process could append and step the views past it in between, and the
     * views would look ahead of a replaced ledger. */
    MDB_txn *txn;
    if ((rc = dk__txn_begin(vw, 0, &txn)) != 0)
        return rc;
    dk_head head;
    if ((rc = dk__views_head(vw, &head)) != 0)
        return done(b, finish(vw, txn, rc));
    vset live, bs;
    unsigned stale, others;
    if ((rc = dk__live_load(vw, txn, &live, &stale)) != 0 ||
        (rc = dk__builds_sweep(vw, txn, &head, &others)) != 0)
        return done(b, finish(vw, txn, rc));
    /* The ledger is shorter than the views, or holds another record at the views' seq: it
     * was replaced or restored, or the views were copied from another ledger. Past that
     * point a record that does not chain is the ledger's damage (apply.c). */
    if (live.mask && (rc = dk__views_match(vw, &head, live.seq, live.hash)) != 0) {
        if (rc != DK_ECORRUPT || (!vw->requested && !vw->run.active))
            return done(b, finish(vw, txn, rc));
        live.mask = 0;
        stale = ALL_VIEWS;
        rc = 0;
    }
    if (vw->live_cache_seq != live.seq || vw->live_cache_gen != live.gen[DK_VIEW_CASES])
        dk__cache_clear(&vw->live_cache);
    b->from_seq = live.seq + 1;
    b->to_seq = live.seq;
    int have_build = 0, check = 0;
    unsigned flags = 0;
    if (vw->run.active) {
        uint64_t pid;
        int r = dk__build_load(vw, txn, vw->run.gen, &bs, &pid, &flags);
        if (r == 0)
            have_build = 1;
        else if (r == MDB_NOTFOUND) {
            /* dropped by someone: start again below if still needed, once the first
             * phase's folders, if any, are stopped (the next would take their place) */
            dk__bulk_stop(vw);
            vw->run.active = 0;
            vw->run.bulk = 0;
        } else
            return done(b, finish(vw, txn, dk__mdb_fail(r, "cannot read the rebuild record")));
    }
    if (!vw->run.active) {
        unsigned need = (stale & ~others) | vw->requested;
        if (need) {
            uint64_t gen;
            unsigned mask = need | BIT(DK_VIEW_CASES);
            if ((rc = dk__build_start(vw, txn, mask, 0, &gen)) != 0)
                return done(b, finish(vw, txn, rc));
            uint64_t pid;
            if ((rc = dk__build_load(vw, txn, gen, &bs, &pid, &flags)) != 0)
                return done(b, finish(vw, txn, dk__mdb_fail(rc, "cannot read the new rebuild")));
            /* the build is started in a step of its own: a step that aborts then never
             * takes a build that was not committed with it */
            rc = finish(vw, txn, 0);
            if (rc)
                return done(b, rc);
            vw->run = (build_run){1, 0, gen, mask, 0};
            vw->requested = 0;
            dk__cache_clear(&vw->build_cache);
            b->rebuilt = 1;
            b->more = 1;
            return 0;
        }
    }
    check = (flags & BUILD_CHECK) != 0;
    if (have_build) {
        uint64_t target = live.mask ? live.seq : head.seq;
        if (vw->run.bulk == 0 && bs.seq == 0 && target > vw->rebuild_batch) {
            /* a long way to go: fold case by case first (bulk.c), then batches */
            if ((rc = dk__bulk_start(vw, target)) != 0)
                return done(b, finish(vw, txn, rc));
            vw->run.bulk = 1;
        }
        if (vw->run.bulk == 1) {
            int finished = 0;
            rc = dk__bulk_step(vw, txn, &bs, &finished);
            if (rc == 0)
                rc = dk__build_save(vw, txn, &bs,
                                    (flags & ~BUILD_BULK) | (finished ? 0 : BUILD_BULK));
            rc = finish(vw, txn, rc);
            if (rc || finished)
                dk__bulk_stop(vw);
            if (rc) {
                /* The cases taken off the scan are lost with the aborted step: the build
                 * is dropped and starts again. A rebuild asks for its views again; a
                 * check is started again by dk_views_check. */
                end_run(vw, dk__build_drop_own);
                if (rc == REDO) {
                    vw->restarts++;
                    if (!vw->run.check)
                        vw->requested |= vw->run.mask;
                }
                b->more = rc == REDO;
                return rc == REDO ? 0 : rc;
            }
            if (finished)
                vw->run.bulk = 2;
            b->rebuilt = 1;
            b->more = 1;
            return 0;
        }
        if (bs.seq < target) {
            rc = dk__apply_batch(vw, txn, &bs, &vw->build_cache, target, vw->rebuild_batch, 0);
            if (rc == 0)
                rc = dk__build_save(vw, txn, &bs, flags);
            rc = finish(vw, txn, rc);
            if (rc) {
                b->more = rc == REDO;
                return rc == REDO ? 0 : rc;
            }
            b->rebuilt = 1;
            b->more = 1;
            return 0;
        }
        if (bs.seq == target) {
            if (check) {
                /* The compare reports as it goes: it only reads, in a transaction that is
                 * then dropped, so nothing can make it run (and report) twice. The
                 * scratch databases are dropped after, in a transaction of their own. */
                rc = dk__compare(vw, txn, &live, &bs);
                mdb_txn_abort(txn);
                end_run(vw, dk__build_drop_own);
                if (rc == 0)
                    vw->check_done = 1;
                b->more = live.seq < head.seq;
                return rc;
            }
            rc = dk__build_swap(vw, txn, &live, &bs);
            rc = finish(vw, txn, rc);
            if (rc) {
                b->more = rc == REDO;
                return rc == REDO ? 0 : rc;
            }
            vw->run.active = 0;
            /* the rebuild's case states are now the live ones */
            scache t = vw->live_cache;
            vw->live_cache = vw->build_cache;
            vw->build_cache = t;
            dk__cache_clear(&vw->build_cache);
            vw->live_cache_seq = live.seq;
            vw->live_cache_gen = live.gen[DK_VIEW_CASES];
            b->rebuilt = b->swapped = 1;
            b->from_seq = live.seq + 1;
            b->to_seq = live.seq;
            b->more = live.seq < head.seq;
            return 0;
        }
        /* the rebuild is ahead of the live views: bring those up to it */
    }
    if (live.mask && live.seq < head.seq && !(have_build && check)) {
        uint64_t end = have_build && bs.seq > live.seq ? bs.seq : head.seq;
        rc = dk__apply_batch(vw, txn, &live, &vw->live_cache, end, vw->batch, 1);
        if (rc == 0)
            rc = dk__live_save(vw, txn, &live);
        rc = finish(vw, txn, rc);
        if (rc) {
            b->more = rc == REDO;
            return rc == REDO ? 0 : rc;
        }
        b->committed_at = wall_us();
        vw->live_cache_seq = live.seq;
        vw->live_cache_gen = live.gen[DK_VIEW_CASES];
        known(vw, live.seq, live.hash); /* applied from this ledger's records */
        b->to_seq = live.seq;
        b->recorded_at = vw->times;
        b->more = live.seq < head.seq || have_build;
        return 0;
    }
    /* nothing to apply; commit what the sweep may have dropped */
    if ((rc = finish(vw, txn, 0)) != 0)
        return done(b, rc);
    b->more = have_build && check; /* a check waits for the live views' writer */
    return 0;
}

int dk_views_sync(dk_views *vw)
{
    dk_views_batch b;
    do {
        int rc = dk_views_step(vw, &b);
        if (rc)
            return rc;
    } while (b.more);
    return 0;
}

int dk_views_request_rebuild(dk_views *vw, const char *name)
{
    int bad;
    unsigned mask = mask_of(name, &bad);
    if (bad)
        return dk__unknown_view(name, 1);
    vw->requested |= mask;
    return 0;
}

int dk_views_rebuild(dk_views *vw, const char *name)
{
    int bad;
    unsigned mask = mask_of(name, &bad);
    if (bad)
        return dk__unknown_view(name, 1);
    if (vw->run.active) {
        int rc = dk_views_sync(vw); /* finish what this handle started first */
        if (rc)
            return rc;
    }
    vw->requested = mask;
    dk_views_batch b;
    int swapped = 0;
    for (;;) {
        int rc = dk_views_step(vw, &b);
        if (rc) {
            vw->requested = 0;
            return rc;
        }
        /* Only a swap after a build took this request counts: a step may first finish a
         * rebuild taken over from a dead process, with the request still waiting. */
        if (vw->requested == 0)
            swapped |= b.swapped;
        if (swapped && !b.more)
            return 0;
        if (!b.rebuilt && !b.more && b.to_seq < b.from_seq)
            return dk_fail(DK_EIO, "views: the rebuild made no progress");
    }
}

/* Before a check, first part: drop a scratch build a failed check left (never finished),
 * and finish this handle's own rebuild. */
static int check_own_run(dk_views *vw)
{
    if (vw->run.active && vw->run.check)
        end_run(vw, dk__build_drop_own);
    if (!vw->run.active)
        return 0;
    uint64_t own = vw->run.gen;
    int rc = dk_views_sync(vw);
    if (rc && vw->run.active && !vw->run.check && vw->run.gen != own)
        end_run(vw,
                dk__build_release); /* taken over by the sync once its own was done: hand it back */
    return rc;
}

/* Second part: take over and finish a rebuild whose process died, so that the views are
 * as live as they will get. One that cannot be finished now is handed back, not kept. */
static int check_adopt(dk_views *vw)
{
    MDB_txn *txn;
    int rc;
    if ((rc = dk__ensure_map(vw)) != 0 || (rc = dk__txn_begin(vw, 0, &txn)) != 0)
        return rc;
    unsigned others;
    int before = vw->run.active;
    dk_head head;
    rc = dk__views_head(vw, &head);
    if (rc == 0)
        rc = dk__builds_sweep(vw, txn, &head, &others);
    int adopted = rc == 0 && !before && vw->run.active;
    if ((rc = finish(vw, txn, rc)) != 0)
        return rc == REDO ? dk_fail(DK_EIO, "views: the map was full; check again") : rc;
    if (adopted && ((rc = dk_views_sync(vw)) != 0 || vw->run.active))
        end_run(vw, dk__build_release);
    return rc;
}

static int check_prepare(dk_views *vw)
{
    int rc = check_own_run(vw);
    return rc ? rc : check_adopt(vw);
}

/* Start the check's scratch build of `mask` (and _cases) at the live views' seq. */
static int check_begin(dk_views *vw, unsigned mask)
{
    MDB_txn *txn;
    int rc;
    if ((rc = dk__ensure_map(vw)) != 0 || (rc = dk__txn_begin(vw, 0, &txn)) != 0)
        return rc;
    uint64_t gen;
    rc = dk__build_start(vw, txn, mask | BIT(DK_VIEW_CASES), 1, &gen);
    if ((rc = finish(vw, txn, rc)) != 0)
        return rc == REDO ? dk_fail(DK_EIO, "views: the map was full; check again") : rc;
    vw->run = (build_run){1, 1, gen, mask | BIT(DK_VIEW_CASES), 0};
    vw->check_done = 0;
    memset(&vw->check_rep, 0, sizeof vw->check_rep);
    vw->check_rep.ok = 1;
    dk__cache_clear(&vw->build_cache);
    vw->check_mask = mask;
    return 0;
}

/* Start a check's scratch build of `mask`, after finishing any rebuild this handle has or
 * adopts from a dead process (the check needs the handle's one run): a check's restart. */
static int check_start(dk_views *vw, unsigned mask)
{
    int rc = check_prepare(vw);
    return rc ? rc : check_begin(vw, mask);
}

/* A check compares live views with a replay: a view that is not live has nothing to
 * compare. Never built, another version or frozen behind the others is not damage (the
 * next project builds it); built from records this ledger does not hold is. With `all`
 * 0, only views that are not this ledger's or past `upto` are refused. */
static int checkable(dk_views *vw, unsigned mask, int all)
{
    dk_view_status st[NV];
    int rc = dk_views_status(vw, st);
    if (rc)
        return rc;
    for (int v = 0; v < NV; v++) {
        const dk_view_status *s = &st[v];
        int past_upto = vw->upto && s->seq > s->head;
        if (!(mask & BIT(v)) || s->live || (!all && !s->foreign && !past_upto && !s->damage[0]))
            continue;
        if (s->damage[0])
            return dk_fail(DK_ECORRUPT,
                           "views: view '%s' is damaged: %s (docket views rebuild %s repairs "
                           "it)",
                           s->name, s->damage, s->name);
        if (s->foreign)
            return dk_fail(DK_ECORRUPT,
                           "views: view '%s' was built from records this ledger does not hold "
                           "(seq %llu): the ledger was replaced or restored, or the views come "
                           "from another ledger; rebuild the views (docket views rebuild)",
                           s->name, (unsigned long long)s->seq);
        if (s->version == 0)
            return dk_fail(DK_ENOTFOUND,
                           "views: view '%s' is not built yet, so there is nothing to check "
                           "(docket project builds it)",
                           s->name);
        if (s->version != s->code_version)
            return dk_fail(DK_ENOTFOUND,
                           "views: view '%s' is stored at version %u and this docket's is %u, "
                           "so it cannot be checked (docket project rebuilds it)",
                           s->name, s->version, s->code_version);
        if (past_upto)
            return dk_fail(DK_EINVAL,
                           "views: view '%s' is at seq %llu, past seq %llu that these views "
                           "were opened to show",
                           s->name, (unsigned long long)s->seq, (unsigned long long)s->head);
        return dk_fail(DK_ENOTFOUND,
                       "views: view '%s' is at seq %llu, not with the others, so it cannot be "
                       "checked (docket project rebuilds it)",
                       s->name, (unsigned long long)s->seq);
    }
    return 0;
}

int dk_views_check(dk_views *vw, const char *name, size_t max_report, dk_views_diff_fn fn,
                   void *udata, dk_views_check_report *rep)
{
    int bad;
    unsigned mask = mask_of(name, &bad);
    memset(rep, 0, sizeof *rep);
    if (bad)
        return dk__unknown_view(name, 1);
    /* This handle's own rebuild is finished first; then views that are not this ledger's,
     * or past `upto`, are refused before a dead process's rebuild is taken over; then what
     * is still not live is named (_cases first: the others derive from it). */
    int rc = check_own_run(vw);
    if (rc == 0)
        rc = checkable(vw, mask | BIT(DK_VIEW_CASES), 0);
    if (rc == 0)
        rc = check_adopt(vw);
    if (rc == 0)
        rc = checkable(vw, mask | BIT(DK_VIEW_CASES), 1);
    if (rc)
        return rc;
    vw->check_max = max_report;
    vw->check_fn = fn;
    vw->check_ud = udata;
    rc = check_begin(vw, mask);
    while (rc == 0 && !vw->check_done) {
        dk_views_batch b;
        vw->redo = 0;
        if ((rc = dk_views_step(vw, &b)) != 0)
            break;
        if (vw->check_done)
            break;
        if (vw->redo) { /* the step met a full map, which has grown: do it again, or start
                           again if its first phase lost the build */
            if (!vw->run.active)
                rc = check_start(vw, mask);
        } else if (!b.rebuilt) {
            rc = dk_fail(DK_EIO, "views: the check made no progress (its scratch databases "
                                 "were dropped by another process?)");
        }
    }
    if (rc && vw->run.active && vw->run.check)
        end_run(vw,
                dk__build_drop_own); /* its scratch databases go now, not when the handle closes */
    vw->check_fn = NULL;
    vw->check_ud = NULL;
    if (rc == 0)
        *rep = vw->check_rep;
    return rc;
}

static const uint32_t code[] = {
#define XX(id, name, version) version,
    DK_VIEW_MAP(XX)
#undef XX
};

/* A view behind the head (s->seq, s->lag set): by the time from its last record (or, with
 * none, the ledger's first) to the head's, and how long the first record it has not
 * applied has waited (an idle ledger's lag_us counts the idle time between the last record
 * applied and the head; wait_us is what to alert on). */
static void lag_times(dk_ledger *lg, const dk_head *head, dk_view_status *s)
{
    if (s->lag == 0)
        return;
    uint8_t *raw;
    size_t len;
    dk_record rec;
    if (dk_ledger_get(lg, s->seq ? s->seq : 1, &raw, &len) == 0) {
        if (dk_record_decode(raw, len, &rec) == 0)
            s->lag_us = head->recorded_at - rec.recorded_at;
        free(raw);
    }
    if (dk_ledger_get(lg, s->seq + 1, &raw, &len) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        if (dk_record_decode(raw, len, &rec) == 0 && now > rec.recorded_at)
            s->wait_us = now - rec.recorded_at;
        free(raw);
    }
}

int dk_views_absent(dk_ledger *lg, const char *ledger_dir, dk_view_status out[DK_VIEW_COUNT])
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/views/data.mdb", ledger_dir);
    int found = stat(path, &st) == 0;
    /* an empty file holds no views either (opening it would make it a store) */
    if (found && !(S_ISREG(st.st_mode) && st.st_size == 0))
        return 0;
    if (!found && errno != ENOENT) /* there may be one we cannot see: not "missing" */
        return dk_fail(DK_EIO, "views: cannot look at %s: %s", path, strerror(errno));
    dk_head head;
    int rc = dk_ledger_head(lg, &head);
    if (rc)
        return rc;
    for (int i = 0; i < NV; i++) {
        dk_view_status *s = &out[i];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", dk_view_name(i));
        s->code_version = code[i];
        s->head = head.seq;
        s->lag = head.seq;
        lag_times(lg, &head, s); /* a ledger waiting for its first views waits all the same */
    }
    return 1;
}

int dk_views_status(dk_views *vw, dk_view_status out[DK_VIEW_COUNT])
{
    MDB_txn *txn;
    int rc = dk__txn_begin(vw, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    dk_head head; /* after the views' snapshot (as in reader_open) */
    if ((rc = dk__views_head(vw, &head)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    vset live;
    unsigned stale;
    uint8_t hashes[NV][DK_HASH_BYTES];
    rc = dk__live_load(vw, txn, &live, &stale);
    unsigned building = 0;
    uint64_t pids[NV] = {0};
    if (rc == 0)
        rc = dk__builds_running(vw, txn, &building, pids);
    for (int i = 0; rc == 0 && i < NV; i++) {
        dk_view_status *s = &out[i];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", dk_view_name(i));
        s->code_version = code[i];
        s->head = head.seq;
        s->building = (building >> i) & 1;
        s->building_pid = s->building ? pids[i] : 0;
        s->building_stopped = s->building && dk__proc_stopped(pids[i]);
        int r = dk__cp_read(vw, txn, i, &s->version, &s->gen, &s->seq, &s->entries, s->digest,
                            hashes[i]);
        MDB_dbi dbi;
        if (r == DK__CP_MALFORMED) {
            snprintf(s->damage, sizeof s->damage, "its checkpoint row is malformed");
            s->version = 0; /* not read */
        } else if (r && r != MDB_NOTFOUND) {
            rc = dk__mdb_fail(r, "cannot read a checkpoint");
        } else if (r == 0 && s->version == code[i] && !((live.mask >> i) & 1) &&
                   (r = dk__db_open(txn, i, s->gen, 0, &dbi)) != 0) {
            if (r == MDB_NOTFOUND)
                snprintf(s->damage, sizeof s->damage, "its database (generation %llu) is missing",
                         (unsigned long long)s->gen);
            else
                rc = dk__mdb_fail(r, "cannot open a view's database");
        }
        s->live = (live.mask >> i) & 1;
        s->lag = head.seq > s->seq ? head.seq - s->seq : 0;
    }
    mdb_txn_abort(txn);
    for (int i = 0; rc == 0 && i < NV; i++) {
        dk_view_status *s = &out[i];
        if (s->version != 0 && (rc = dk__views_match(vw, &head, s->seq, hashes[i])) != 0) {
            if (rc != DK_ECORRUPT && rc != DK_EINVAL)
                break;
            s->foreign = rc == DK_ECORRUPT; /* else past `upto`: not to be read as of then */
            s->live = 0;
            rc = 0;
            continue;
        }
        lag_times(vw->lg, &head, s);
    }
    return rc;
}
