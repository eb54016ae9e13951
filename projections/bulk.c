/* bulk.c - a long rebuild's first phase: folder threads (one per core) fold runs of cases in
 * id order, sharing the last runs' chunks, and check the hash chain; the caller writes. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "views_int.h"

/* Folded chunks waiting for the writer: two steps' worth, so that the folders go on while
 * the writer spends a step on the held set and its commit waits for the disk (with one
 * step's worth they stalled then: 1M, CPU use fell to 0.6-0.7 of two cores for 50 ms at a
 * time; median 934k -> 975k events/s, own memory 50.5 -> 51.3 MiB, 10M the same 92-97). */
#define QUEUE_CHUNKS 256
/* ...and at most this many bytes of them. Chunks grow with the cases' histories and, in a
 * larger ledger, the writer (its views larger) is more often the slower side and the queue
 * stays full: 256 chunks held 5.2 MB at most on the 1M bench, 15.5 MB at 10M and 24.9 MB
 * at 20M. With this bound own memory at 20M fell from 85-91 to 67-69 MiB and at 10M from
 * 64-68 to 61-63 (1M never reaches it); CPU used per second of the rebuild at 10M, median
 * 1.94 -> 1.93. */
#define QUEUE_BYTES ((size_t)8 << 20)
/* Chunks written per transaction (16,384 cases by default). Each commit rewrites branch
 * pages and waits for its sync; from 64 chunks (and a queue of 128), 1M reused, six
 * alternating rounds: median 958k -> 996k events/s, CPU 1.88 -> 1.86 s, own memory the
 * same (54 MiB); 256 (queue 512) was no faster and took 73 MiB. */
#define STEP_CHUNKS   128
#define STEP_SECONDS  0.5   /* a step waits this long at most for its cases */
#define WALK_SNAPSHOT 65536 /* records per ledger snapshot of the chain's walk */
/* Entries of the views a case's history scatters (diary, stats, errors; queue) are kept across
 * steps, up to this many, and written together: each step would otherwise rewrite most
 * of those views' pages. */
#define SCATTER_MAX 32768
/* The held set is written in parts of at most an eighth of SCATTER_MAX, a transaction
 * each: LMDB keeps a transaction's dirty pages in memory (and the freed ones for reuse),
 * and the held entries' pages are distinct ones, more of them as the views grow, up to one
 * a held entry. Eighths instead of quarters: own memory at 10M 70.6-74.6 -> 62.4-65.1 MiB
 * (five rounds each), the same at 1M, written +1%, CPU within noise. */
#define HELD_PARTS  8
#define FOLDERS_MAX 8
/* A folder reads this many chunks' cases at once (dk_gather: their records in seq order,
 * forward through the log), but no case begun past GATHER_RECORDS records. A larger run
 * holds more of the log's records, so fewer are stepped over between two it wants. From
 * 32,768 cases / 2^18 records to 131,072 / 2^20: the 1M rebuild's read_from fell from 21%
 * to 17% of its CPU, CPU 5% (median 2.14 -> 2.03 s); but a run's seqs, pointers and sort
 * (32 bytes a record) took own memory at 10M from ~100 to 165-177 MiB. 65,536 / 2^19 (kept)
 * is as fast at 1M (median 1,056k vs 1,053k) and 2% slower at 10M, in 124-137 MiB. */
#define GATHER_CHUNKS  512
#define GATHER_RECORDS (1u << 19)
/* The folders' first runs are small, so that the writer does not wait for whole runs to
 * be read before its first step: FIRST_CHUNKS for the first, five times that for the
 * second, nine times for the third... Of different sizes, they end at different times:
 * listing a whole run holds the feed's lock for 30-45 ms (1M bench), and the two folders
 * back for their next run at once left one core idle for that long. 1M reused, ten
 * alternating rounds: CPU used per second of the rebuild, median 1.91 -> 1.92 (this host's
 * speed moved too much for events/s to show it). */
#define FIRST_CHUNKS 8

typedef struct chunk {
    uint8_t *blob; /* the chunk's cases' entries, end to end (dk__bulk_compute) */
    size_t len, cap;
    uint8_t *own; /* those of the views keyed by case, sorted (dk__bulk_sort) */
    size_t olen, ocap;
} chunk;

/* A run of cases a folder gathered: handed out a chunk of cases at a time, to its owner
 * and, once the feed is done, to any folder left without a run of its own (under mu). */
typedef struct run {
    dk_gather *g;
    size_t next;  /* the first case not handed out yet */
    int users;    /* folders folding a chunk of it now: its records must stay mapped */
    int released; /* its snapshot is given up while the ledger's map is resized */
} run;

/* A folder's own state: its buffers, and its share of the chain's fingerprints. */
typedef struct folder {
    bulk *k;
    int id;
    dk_record *recs;
    size_t recs_cap;
    chunk c;
    dk__chainsum chain;
} folder;

struct bulk {
    pthread_t folder[FOLDERS_MAX];
    folder fold[FOLDERS_MAX];
    run *runs[FOLDERS_MAX]; /* each folder's run, while others may fold its chunks */
    int folders, folders_started, folders_done;
    /* the case feed: the last case id handed to a folder (under feed_mu) */
    pthread_mutex_t feed_mu;
    char last[DK_CASE_MAX + 1];
    int feed_done, fed;     /* runs handed out */
    uint64_t records_fed;   /* their records */
    int system_fed, system; /* the system records handed out; 1 if the ledger lists them */
    int tail_flushed;       /* the held set was written once every run was handed out */
    pthread_mutex_t mu;
    pthread_cond_t to_writer, to_folder, run_idle;
    int writer_waits, folder_waits; /* threads waiting on each condition */
    size_t stolen;                  /* chunks folded from another folder's run */
    int runs_out; /* runs of cases handed out whose owners have not finished them */
    dk_ledger *lg;
    size_t chunk_cases;          /* cases folded and handed to the writer at once */
    uint64_t head;               /* the rebuild's end: cases are folded up to here */
    dk__chainsum chain;          /* the folders' records, once each has finished (its key
                                  * is the one each folder's fingerprints use) */
    uint8_t hash[DK_HASH_BYTES]; /* record head's */
    chunk *q;
    size_t qhead, qn;
    size_t qbytes, queue_bytes; /* the queued chunks' allocations, and their bound */
    int stop, err;
    char errmsg[DK_ERRMSG_MAX];
    overlay scatter;
    flush_item *held; /* the held set in LMDB's order, while it is written in parts */
    size_t held_n, held_at;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The CLOCK_REALTIME time `s` seconds from now, for pthread_cond_timedwait. */
static struct timespec in_seconds(double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(s * 1e9);
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    return ts;
}

/* Has the rebuild been stopped, or has a thread failed? */
static int halted(bulk *k)
{
    pthread_mutex_lock(&k->mu);
    int h = k->stop || k->err;
    pthread_mutex_unlock(&k->mu);
    return h;
}

/* Record a thread's failure (the first one wins) and wake everyone. */
static void fail(bulk *k, int err)
{
    pthread_mutex_lock(&k->mu);
    if (!k->err) {
        k->err = err;
        snprintf(k->errmsg, sizeof k->errmsg, "%s", dk_errmsg());
    }
    pthread_cond_broadcast(&k->to_writer);
    pthread_cond_broadcast(&k->to_folder);
    pthread_mutex_unlock(&k->mu);
}

/* Take no new snapshot while the ledger's map waits to be resized: the resize needs a
 * moment with none. */
static void yield_to_resize(bulk *k)
{
    while (dk_ledger_resize_wanted(k->lg) && !halted(k))
        usleep(1000);
}

/* The writer (the caller's thread) is the one stage that cannot be shared between cores.
 * Lowering the folders' CFS weight keeps the writer's queue drained, so that less of its
 * work is left for the end (1M reused, eight rounds each: median 742k events/s at equal
 * weights, 778k with this and a scanner thread at +8). A hint: failure is ignored. */
#define FOLD_NICE 4

static void lower_priority(int by)
{
    errno = 0;
    int now = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (errno == 0)
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), now + by);
}

/* Add record `seq` to the chain fingerprints if it is a system record (of no case). */
static int add_if_system(bulk *k, const dk_raw *raw, uint64_t seq, const uint8_t h[DK_HASH_BYTES],
                         const uint8_t prev[DK_HASH_BYTES])
{
    dk_record rec;
    dk_event ev;
    if (dk_record_decode_unsigned(raw->p, raw->len, &rec) != 0 ||
        dk_event_decode_stored(rec.body, rec.body_len, &ev) != 0)
        return dk_fail(DK_ECORRUPT, "views: record %llu does not decode: %s",
                       (unsigned long long)seq, dk_errmsg());
    if (ev.case_id[0] == 0)
        dk__chain_add(&k->chain, seq, h, prev);
    return 0;
}

/* The chain walked in seq order, record by record: what names the first record that does
 * not chain when the folders' fingerprints say one does not (chainsum.c). Sets *hash to the
 * head's, as the records give it (not k->hash: folders may still be writing it). With
 * `system`, the records of no case are added to k->chain: no actor history listed them. */
static int walk_chain(bulk *k, int system, uint8_t hash[DK_HASH_BYTES])
{
    uint8_t prev[DK_HASH_BYTES];
    memset(prev, 0, sizeof prev);
    uint64_t seq = 1;
    int rc = 0;
    while (rc == 0 && seq <= k->head) {
        dk_iter *it;
        yield_to_resize(k);
        if ((rc = dk_iter_open(k->lg, seq, NULL, &it)) != 0)
            break;
        for (unsigned n = 0; rc == 0 && n < WALK_SNAPSHOT && seq <= k->head; n++) {
            dk_raw raw;
            uint64_t rseq = 0;
            uint8_t rprev[DK_HASH_BYTES];
            if ((rc = dk_iter_next_raw(it, &raw)) != 0) {
                if (rc == DK_ENOTFOUND)
                    rc = dk_fail(DK_ECORRUPT, "views: the ledger ends before record %llu",
                                 (unsigned long long)seq);
            } else if (dk_record_head(raw.p, raw.len, &rseq, rprev) != 0) {
                rc = dk_fail(DK_ECORRUPT, "views: record %llu does not decode: %s",
                             (unsigned long long)seq, dk_errmsg());
            } else if (rseq != seq) {
                rc = dk_fail(DK_ECORRUPT, "views: expected record %llu, the ledger gave %llu",
                             (unsigned long long)seq, (unsigned long long)rseq);
            } else if (memcmp(rprev, prev, DK_HASH_BYTES) != 0) {
                rc = dk_fail(DK_ECORRUPT,
                             "views: record %llu does not chain: its prev is not the hash of "
                             "record %llu",
                             (unsigned long long)seq, (unsigned long long)seq - 1);
            } else {
                uint8_t h[DK_HASH_BYTES];
                dk_leaf_hash(raw.p, raw.len, h);
                if (system)
                    rc = add_if_system(k, &raw, seq, h, rprev);
                memcpy(prev, h, DK_HASH_BYTES);
                seq++;
            }
        }
        dk_iter_close(it);
    }
    if (rc == 0)
        memcpy(hash, prev, DK_HASH_BYTES);
    return rc;
}

/* Record head's hash, as the records give it, against what the ledger says it is: its
 * head's hash, or record head + 1's prev. No prev of the rebuild's own covers its last
 * record, so a change to that record would otherwise go unseen. */
static int anchor(bulk *k, const uint8_t hash[DK_HASH_BYTES])
{
    dk_head h;
    uint8_t want[DK_HASH_BYTES];
    int rc = dk_ledger_head(k->lg, &h);
    if (rc == 0 && h.seq == k->head) {
        memcpy(want, h.hash, DK_HASH_BYTES);
    } else if (rc == 0 && h.seq > k->head) {
        dk_iter *it;
        dk_raw raw;
        uint64_t next;
        if ((rc = dk_iter_open(k->lg, k->head + 1, NULL, &it)) != 0)
            return rc;
        if ((rc = dk_iter_next_raw(it, &raw)) == 0 &&
            (dk_record_head(raw.p, raw.len, &next, want) != 0 || next != k->head + 1))
            rc = dk_fail(DK_ECORRUPT, "views: record %llu does not decode",
                         (unsigned long long)k->head + 1);
        dk_iter_close(it);
        if (rc)
            return rc;
    } else if (rc == 0) {
        return dk_fail(DK_ECORRUPT, "views: the ledger ends at record %llu, before record %llu",
                       (unsigned long long)h.seq, (unsigned long long)k->head);
    }
    if (rc == 0 && memcmp(want, hash, DK_HASH_BYTES) != 0)
        rc = dk_fail(DK_ECORRUPT,
                     "views: record %llu is not the one the ledger's %s names: it was changed "
                     "after it was written",
                     (unsigned long long)k->head, h.seq == k->head ? "head" : "next record");
    return rc;
}

/* A folder's error, as the rebuild reports it. A record changed on disk can fold into an
 * error (a damaged data map, say) before the chain's verdict, so for damage the chain is
 * walked first: the record that does not chain is what was changed, and it is named first. */
static int folder_error(bulk *k, int err)
{
    const char *fold = k->errmsg;
    if (strncmp(fold, "views: ", 7) == 0)
        fold += 7;
    uint8_t hash[DK_HASH_BYTES];
    /* the last record is anchored too: no later prev covers it (helper-60) */
    if (err == DK_ECORRUPT &&
        (walk_chain(k, 0, hash) == DK_ECORRUPT || anchor(k, hash) == DK_ECORRUPT))
        return dk_fail(DK_ECORRUPT, "%s (folding, %s)", dk_errmsg(), fold);
    return dk_fail(err, "%s", k->errmsg);
}

/* Once every folder is done: does the chain hold over records 1..head? The folders' fingerprints
 * say so almost always; if they do not, the walk finds the record that breaks it. A chain
 * that holds although the fingerprints did not means the case index or the actor history left a
 * record out (or listed one twice), and its views would be wrong. */
static int chain_verdict(bulk *k)
{
    int rc = 0;
    if (!dk__chain_closes(&k->chain, k->head, k->hash)) {
        /* a ledger with no actor history (an older one, read-only): the walk adds the
         * records the folders could not list, and the fingerprints must close then */
        rc = walk_chain(k, !k->system, k->hash); /* every folder is done */
        if (rc == 0 && !dk__chain_closes(&k->chain, k->head, k->hash))
            rc = dk_fail(DK_ECORRUPT,
                         "views: every record chains, but the ledger's case index and actor "
                         "history do not list each of records 1..%llu once: its indexes are "
                         "damaged",
                         (unsigned long long)k->head);
    }
    return rc ? rc : anchor(k, k->hash);
}

/* Hand a folded chunk to the writer: 0, 1 if the rebuild stopped instead, or an error.
 * While the queue is full, the folder that owns the run `r` (NULL: another's) gives up its
 * snapshot if the ledger's map is to be resized (the resize waits for every snapshot of the
 * process, and the thread that resizes may be the one that would empty the queue), once
 * no folder is folding any of its cases, and then reads its cases not handed out again. */
static int push(bulk *k, chunk *c, run *r)
{
    /* The queue holds the chunk's entries at their size: the folder keeps its blob, grown to
     * a whole chunk's entries, and hands over a copy of the held ones dk__bulk_sort left in
     * it (the own ones are in `own`, allocated at their size). */
    chunk out = {NULL, c->len, c->len, c->own, c->olen, c->ocap};
    if (c->len) {
        if ((out.blob = malloc(c->len)) == NULL)
            return dk_fail(DK_ENOMEM, "out of memory folding a case");
        memcpy(out.blob, c->blob, c->len);
    }
    c->len = 0;
    c->own = NULL;
    c->olen = c->ocap = 0;
    pthread_mutex_lock(&k->mu);
    size_t bytes = out.len + out.ocap;
    while ((k->qn == QUEUE_CHUNKS || (k->qn > 0 && k->qbytes + bytes > k->queue_bytes)) &&
           !k->stop && !k->err) {
        if (r && !r->released && r->users == 0 && dk_ledger_resize_wanted(k->lg)) {
            r->released = 1; /* only its owner sets and clears it, here */
            pthread_mutex_unlock(&k->mu);
            dk_gather_release(r->g);
            pthread_mutex_lock(&k->mu);
            continue;
        }
        /* wake now and then to see whether a resize waits */
        struct timespec ts = in_seconds(0.010);
        k->folder_waits++;
        pthread_cond_timedwait(&k->to_folder, &k->mu, &ts);
        k->folder_waits--;
    }
    int stop = k->stop || k->err;
    if (!stop) {
        k->q[(k->qhead + k->qn++) % QUEUE_CHUNKS] = out;
        k->qbytes += bytes;
        if (k->writer_waits)
            pthread_cond_signal(&k->to_writer);
    }
    pthread_mutex_unlock(&k->mu);
    if (stop) {
        free(out.blob);
        free(out.own);
        return 1;
    }
    if (r == NULL || !r->released)
        return 0;
    yield_to_resize(k);
    int rc = dk_gather_reread(r->g, r->next);
    pthread_mutex_lock(&k->mu);
    r->released = rc != 0; /* on failure nothing more is handed out of it */
    pthread_cond_broadcast(&k->run_idle);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* Runs get shorter toward the end (guided self-scheduling): a run holds at most its
 * folder's share of the records not yet handed out, so that the folders finish together
 * instead of one folding a whole run alone at the end (1M reused, six alternating rounds:
 * median 836k -> 862k events/s; a quarter of the share instead: 842k -> 807k, with many
 * more, smaller runs costing 10% more CPU). */
#define RUN_MIN_RECORDS 16384

static size_t run_records(const bulk *k)
{
    uint64_t left = k->head > k->records_fed ? k->head - k->records_fed : 0;
    uint64_t share = left / (uint64_t)k->folders;
    return share >= GATHER_RECORDS   ? GATHER_RECORDS
           : share < RUN_MIN_RECORDS ? RUN_MIN_RECORDS
                                     : (size_t)share;
}

/* The next run of cases, after the last one handed out; *g = NULL at the end. Listing
 * them is cheap (the case index, in order); reading their records is left to the caller.
 * The first run is the system records' (*system = 1): they are not folded, only chained. */
static int feed(bulk *k, dk_gather **g, int *system)
{
    pthread_mutex_lock(&k->feed_mu);
    int rc = 0;
    *g = NULL;
    *system = 0;
    if (!k->system_fed) {
        k->system_fed = 1;
        rc = dk_gather_open_system(k->lg, k->head, g);
        k->system = rc == 0;
        if (rc == DK_ENOTFOUND)
            rc = 0; /* a ledger from before the actor history: the walk checks its chain */
        *system = rc == 0 && *g != NULL;
    }
    if (rc == 0 && *g == NULL && !k->feed_done) {
        yield_to_resize(k);
        size_t chunks =
            k->fed < k->folders ? FIRST_CHUNKS * (1 + 4 * (size_t)k->fed) : GATHER_CHUNKS;
        k->fed++;
        rc = dk_gather_open(k->lg, k->last, k->chunk_cases * chunks, run_records(k), k->head, g);
        if (rc == 0)
            k->records_fed += dk_gather_records_count(*g);
        if (rc || !dk_gather_more(*g))
            k->feed_done = 1;
        if (rc == 0 && dk_gather_count(*g))
            snprintf(k->last, sizeof k->last, "%s", dk_gather_case(*g, dk_gather_count(*g) - 1));
        if (rc == 0 && dk_gather_count(*g) == 0) {
            dk_gather_close(*g);
            *g = NULL;
        }
        if (*g != NULL) { /* its owner finishes it in fold_gather */
            pthread_mutex_lock(&k->mu);
            k->runs_out++;
            pthread_mutex_unlock(&k->mu);
        }
    }
    pthread_mutex_unlock(&k->feed_mu);
    return rc;
}

/* A run's records were read in seq order and are folded in case order: by then most have
 * left the CPU's caches, and each case's decode would wait for its records one at a time.
 * Asking for a later case's records first lets those loads overlap. */
#define PREFETCH_AHEAD 4

static void prefetch_case(const dk_gather *g, size_t i)
{
    if (i >= dk_gather_count(g))
        return;
    const dk_raw *raw;
    size_t n;
    dk_gather_records(g, i, &raw, &n);
    for (size_t j = 0; j < n; j++)
        for (size_t off = 0; off < raw[j].len; off += 64)
            __builtin_prefetch(raw[j].p + off);
}

/* Decode case i's records into recs, adding each to the folder's chain fingerprints. */
static int decode_case(bulk *k, dk_gather *g, size_t i, int system, dk_record **recs,
                       size_t *recs_cap, dk__chainsum *chain, size_t *n)
{
    const dk_raw *raw;
    dk_gather_records(g, i, &raw, n);
    const uint64_t *seqs = dk_gather_seqs(g, i);
    if (*n > *recs_cap) {
        dk_record *more = realloc(*recs, *n * sizeof *more);
        if (more == NULL)
            return dk_fail(DK_ENOMEM, "out of memory reading a case");
        *recs = more;
        *recs_cap = *n;
    }
    for (size_t j = 0; j < *n; j++) {
        dk_record *r = &(*recs)[j];
        uint8_t h[DK_HASH_BYTES];
        if (dk_record_decode_chained(raw[j].p, raw[j].len, r) != 0)
            return dk_fail(DK_ECORRUPT, "views: record %llu does not decode: %s",
                           (unsigned long long)seqs[j], dk_errmsg());
        if (r->seq != seqs[j])
            return dk_fail(DK_ECORRUPT, "views: expected record %llu, the ledger gave %llu",
                           (unsigned long long)seqs[j], (unsigned long long)r->seq);
        if (system) { /* listed by the actor history: it must be of no case */
            dk_event ev;
            if (dk_event_decode_stored(r->body, r->body_len, &ev) != 0)
                return dk_fail(DK_ECORRUPT, "views: record %llu's body does not decode: %s",
                               (unsigned long long)r->seq, dk_errmsg());
            if (ev.case_id[0])
                return dk_fail(DK_ECORRUPT,
                               "views: the actor history lists record %llu, but it is case "
                               "'%s''s",
                               (unsigned long long)r->seq, ev.case_id);
        }
        dk_leaf_hash(raw[j].p, raw[j].len, h);
        dk__chain_add(chain, r->seq, h, r->prev);
        if (r->seq == k->head) {
            pthread_mutex_lock(&k->mu);
            memcpy(k->hash, h, DK_HASH_BYTES);
            pthread_mutex_unlock(&k->mu);
        }
    }
    return 0;
}

/* Hand out the next chunk of cases of `r`: [*from, *to). 0 if none is left. Under mu. */
static int claim(bulk *k, run *r, size_t *from, size_t *to)
{
    size_t n = dk_gather_count(r->g);
    if (r->released || r->next >= n)
        return 0;
    *from = r->next;
    *to = n - r->next < k->chunk_cases ? n : r->next + k->chunk_cases;
    r->next = *to;
    r->users++;
    return 1;
}

/* Fold cases [from, to) of `r`, claimed, and hand them to the writer. */
static int fold_chunk(folder *f, run *r, size_t from, size_t to, int own)
{
    bulk *k = f->k;
    int rc = 0;
    size_t n;
    for (size_t i = from; rc == 0 && i < to; i++) {
        prefetch_case(r->g, i + PREFETCH_AHEAD);
        rc = decode_case(k, r->g, i, 0, &f->recs, &f->recs_cap, &f->chain, &n);
        if (rc == 0)
            rc = dk__bulk_compute(dk_gather_case(r->g, i), f->recs, n, &f->c.blob, &f->c.len,
                                  &f->c.cap);
    }
    if (rc == 0)
        rc = dk__bulk_sort(f->c.blob, &f->c.len, &f->c.own, &f->c.olen, &f->c.ocap);
    pthread_mutex_lock(&k->mu); /* done with the run's records */
    if (--r->users == 0)
        pthread_cond_broadcast(&k->run_idle);
    pthread_mutex_unlock(&k->mu);
    if (rc)
        f->c.len = 0;
    return rc ? rc : push(k, &f->c, own ? r : NULL);
}

/* Fold a gather's cases, handing them to the writer chunk by chunk; the system records'
 * gather (`system`) is only chained. Other folders may fold some of its chunks. */
static int fold_gather(folder *f, dk_gather *g, int system)
{
    bulk *k = f->k;
    int rc = dk_gather_read(g);
    if (system) {
        size_t n;
        for (size_t i = 0; rc == 0 && i < dk_gather_count(g); i++) {
            prefetch_case(g, i + PREFETCH_AHEAD);
            rc = decode_case(k, g, i, 1, &f->recs, &f->recs_cap, &f->chain, &n);
        }
        return rc;
    }
    run r = {g, 0, 0, 0};
    size_t from, to;
    pthread_mutex_lock(&k->mu);
    if (rc == 0) {
        k->runs[f->id] = &r;
        pthread_cond_broadcast(&k->run_idle); /* a folder with none may take some */
    }
    while (rc == 0 && claim(k, &r, &from, &to)) {
        pthread_mutex_unlock(&k->mu);
        rc = fold_chunk(f, &r, from, to, 1);
        pthread_mutex_lock(&k->mu);
    }
    /* its records stay mapped until no other folder is folding any of them */
    k->runs[f->id] = NULL;
    while (r.users > 0)
        pthread_cond_wait(&k->run_idle, &k->mu);
    k->runs_out--;
    pthread_cond_broadcast(&k->run_idle); /* one waiting for a run to help with looks again */
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* Once the feed is done: fold chunks of the other folders' runs while any is left, the
 * largest share first, so that no core waits while one folder finishes a run alone. A run
 * still being read, or whose snapshot is given up for a resize, is waited for, not given
 * up on (helper-58: a folder that left then let the other fold its last run alone). */
static int help_others(folder *f)
{
    bulk *k = f->k;
    int rc = 0;
    pthread_mutex_lock(&k->mu);
    while (rc == 0 && !k->stop && !k->err) {
        run *r = NULL;
        size_t from = 0, to = 0, most = 0;
        for (int i = 0; i < k->folders; i++) {
            run *o = k->runs[i];
            if (o && !o->released && dk_gather_count(o->g) - o->next > most) {
                most = dk_gather_count(o->g) - o->next;
                r = o;
            }
        }
        if (r && claim(k, r, &from, &to)) {
            k->stolen++;
            pthread_mutex_unlock(&k->mu);
            rc = fold_chunk(f, r, from, to, 0);
            pthread_mutex_lock(&k->mu);
        } else if (k->runs_out > 0) {
            struct timespec ts = in_seconds(0.010); /* and now and then, whatever wakes it */
            pthread_cond_timedwait(&k->run_idle, &k->mu, &ts);
        } else {
            break;
        }
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* A folder: gathers of the case index until it is exhausted, then what is left of the
 * others'. */
static void *fold_cases(void *p)
{
    folder *f = p;
    bulk *k = f->k;
    pthread_setname_np(pthread_self(), "dk-views-fold");
    lower_priority(FOLD_NICE);
    dk__chain_init(&f->chain, k->chain.key);
    int rc = 0;
    while (rc == 0 && !halted(k)) {
        dk_gather *g;
        int system;
        if ((rc = feed(k, &g, &system)) != 0 || g == NULL)
            break;
        rc = fold_gather(f, g, system);
        dk_gather_close(g);
    }
    if (rc == 0)
        rc = help_others(f);
    if (rc > 0)
        rc = 0; /* the rebuild was stopped */
    if (rc)
        fail(k, rc);
    free(f->c.blob);
    free(f->c.own);
    free(f->recs);
    pthread_mutex_lock(&k->mu);
    dk__chain_merge(&k->chain, &f->chain);
    k->folders_done++;
    pthread_cond_broadcast(&k->to_writer);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int dk__bulk_start(dk_views *vw, uint64_t head)
{
    bulk *k = calloc(1, sizeof *k);
    if (k == NULL || (k->q = calloc(QUEUE_CHUNKS, sizeof *k->q)) == NULL) {
        free(k);
        return dk_fail(DK_ENOMEM, "out of memory");
    }
    k->lg = vw->lg;
    k->chunk_cases = vw->rebuild_chunk;
    k->queue_bytes = vw->queue_bytes ? vw->queue_bytes : QUEUE_BYTES;
    k->head = head;
    uint8_t key[DK__CHAIN_KEY_BYTES];
    dk__chain_new_key(key);
    dk__chain_init(&k->chain, key);
    dk__ov_init(&k->scatter);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (vw->folders)
        cores = vw->folders;
    k->folders = cores < 1 ? 1 : cores > FOLDERS_MAX ? FOLDERS_MAX : (int)cores;
    pthread_mutex_init(&k->feed_mu, NULL);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->to_writer, NULL);
    pthread_cond_init(&k->to_folder, NULL);
    pthread_cond_init(&k->run_idle, NULL);
    vw->bulk = k;
    for (int i = 0; i < k->folders; i++) {
        k->fold[i].k = k;
        k->fold[i].id = i;
        if (pthread_create(&k->folder[i], NULL, fold_cases, &k->fold[i]) != 0) {
            if (i > 0)
                break; /* fold with the threads we have */
            dk__bulk_stop(vw);
            return dk_fail(DK_EIO, "views: cannot start the rebuild's folder thread");
        }
        k->folders_started++;
    }
    return 0;
}

void dk__bulk_stop(dk_views *vw)
{
    bulk *k = vw->bulk;
    if (k == NULL)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_broadcast(&k->to_writer);
    pthread_cond_broadcast(&k->to_folder);
    pthread_mutex_unlock(&k->mu);
    for (int i = 0; i < k->folders_started; i++)
        pthread_join(k->folder[i], NULL);
    vw->queue_drift = k->qbytes;
    vw->stolen = k->stolen;
    for (size_t i = 0; i < k->qn; i++) {
        chunk *c = &k->q[(k->qhead + i) % QUEUE_CHUNKS];
        vw->queue_drift -= c->len + c->ocap;
        free(c->blob);
        free(c->own);
    }
    dk__ov_free(&k->scatter);
    free(k->held);
    pthread_mutex_destroy(&k->feed_mu);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->to_writer);
    pthread_cond_destroy(&k->to_folder);
    pthread_cond_destroy(&k->run_idle);
    free(k->q);
    free(k);
    vw->bulk = NULL;
}

/* Take the next folded chunk, waiting until `deadline` for one; 0 if there is none. */
static int pop(bulk *k, chunk *out, double deadline)
{
    int got = 0;
    pthread_mutex_lock(&k->mu);
    while (k->qn == 0 && k->folders_done < k->folders_started && !k->err && !k->stop) {
        double left = deadline - now_s();
        if (left <= 0)
            break;
        struct timespec ts = in_seconds(left);
        k->writer_waits++;
        pthread_cond_timedwait(&k->to_writer, &k->mu, &ts);
        k->writer_waits--;
    }
    if (k->qn > 0) {
        *out = k->q[k->qhead];
        k->qbytes -= out->len + out->ocap;
        k->qhead = (k->qhead + 1) % QUEUE_CHUNKS;
        k->qn--;
        got = 1;
        if (k->folder_waits)
            pthread_cond_broadcast(&k->to_folder); /* every folder re-checks */
    }
    pthread_mutex_unlock(&k->mu);
    return got;
}

/* The held set is written: empty it for the next. */
static void held_done(bulk *k)
{
    free(k->held);
    k->held = NULL;
    k->held_n = k->held_at = 0;
    dk__ov_reset(&k->scatter);
}

int dk__bulk_step(dk_views *vw, MDB_txn *txn, vset *bs, int *finished)
{
    bulk *k = vw->bulk;
    chunk c;
    int rc = 0;
    *finished = 0;
    dk__ov_reset(&vw->ov);
    pthread_mutex_lock(&k->feed_mu);
    int last_runs = k->feed_done && !k->tail_flushed;
    k->tail_flushed |= last_runs;
    pthread_mutex_unlock(&k->feed_mu);
    size_t held_max = vw->scatter_max ? vw->scatter_max : SCATTER_MAX;
    size_t part = vw->held_part ? vw->held_part : (held_max + HELD_PARTS - 1) / HELD_PARTS;
    if (k->held == NULL && (k->scatter.n >= held_max || (last_runs && k->scatter.n > 0)) &&
        (rc = dk__flush_order(&k->scatter, &k->held, &k->held_n)) != 0)
        return rc;
    if (k->held) {
        /* the held entries are written in steps of their own: a transaction's dirty
         * pages are then those of a part of the held set or of one step's cases */
        size_t n = k->held_n - k->held_at < part ? k->held_n - k->held_at : part;
        rc = dk__flush_items(txn, bs, k->held + k->held_at, n);
        k->held_at += n;
        if (k->held_at == k->held_n)
            held_done(k);
        return rc;
    }
    /* Fill the step before writing it: a step is a transaction. */
    double deadline = now_s() + STEP_SECONDS;
    size_t step_chunks = vw->step_chunks ? vw->step_chunks : STEP_CHUNKS;
    for (size_t n = 0; rc == 0 && n < step_chunks && pop(k, &c, deadline); n++) {
        rc = dk__bulk_merge(&vw->ov, &k->scatter, c.blob, c.len);
        if (rc == 0)
            rc = dk__bulk_put(txn, bs, c.own, c.olen);
        free(c.blob);
        free(c.own);
    }
    pthread_mutex_lock(&k->mu);
    int err = rc == 0 ? k->err : 0; /* k->errmsg is written once, with k->err */
    int done = rc == 0 && !err && k->folders_done == k->folders_started && k->qn == 0;
    pthread_mutex_unlock(&k->mu);
    if (err) {
        dk__ov_reset(&vw->ov);
        return folder_error(k, err);
    }
    if (done && k->scatter.n > part) {
        /* the last of the held set goes in parts too, from the next step on */
        rc = dk__flush(vw, txn, bs, &vw->ov);
        dk__ov_reset(&vw->ov);
        return rc ? rc : dk__flush_order(&k->scatter, &k->held, &k->held_n);
    }
    if (done)
        rc = chain_verdict(k);
    if (rc == 0)
        rc = dk__flush(vw, txn, bs, &vw->ov);
    if (rc == 0 && done) {
        rc = dk__flush(vw, txn, bs, &k->scatter);
        dk__ov_reset(&k->scatter);
    }
    dk__ov_reset(&vw->ov);
    if (rc == 0 && done) {
        *finished = 1;
        bs->seq = k->head;
        memcpy(bs->hash, k->hash, DK_HASH_BYTES);
    }
    return rc;
}
