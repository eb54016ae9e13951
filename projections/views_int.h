/* views_int.h - what the projections module's files share: the views
 * environment, view sets, the write overlay and state cache, entry encodings. */
#ifndef DOCKET_VIEWS_INT_H
#define DOCKET_VIEWS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lmdb.h>

#include "docket/bytes.h"
#include "docket/docket.h"
#include "docket/lmdbfile.h"
#include "docket/views.h"

#define NV           DK_VIEW_COUNT
#define ALL_VIEWS    ((1u << NV) - 1)
#define BIT(v)       (1u << (v))
#define KEY_MAX      480 /* LMDB's default maximum key size is 511 */
#define FORMAT_TAG   "docket-views/1"
#define DK__VMAPFULL (-1000) /* internal: the map is full; grow it and redo the batch */

/* ---- the write overlay: one batch's changes, merged per key, flushed sorted ---- */

enum { OV_PUT, OV_DEL, OV_COUNT };

typedef struct ov_entry {
    uint8_t view, kind, used;
    uint16_t klen;
    uint32_t vlen;
    int64_t delta; /* OV_COUNT */
    uint64_t hash;
    uint8_t *key, *val; /* in the overlay's arena */
} ov_entry;

typedef struct arena_block arena_block;

typedef struct overlay {
    ov_entry *tab;
    size_t cap, n;
    arena_block *blocks; /* in use, the newest first */
    arena_block *spare;  /* kept for the next batch */
} overlay;

void dk__ov_init(overlay *ov);
void dk__ov_free(overlay *ov);
void dk__ov_reset(overlay *ov);
int dk__ov_put(overlay *ov, int view, const void *k, size_t klen, const void *v, size_t vlen);
int dk__ov_del(overlay *ov, int view, const void *k, size_t klen);
int dk__ov_count(overlay *ov, int view, const void *k, size_t klen, int64_t delta);

/* ---- the state cache: cases touched by this batch (and recent ones) ---- */

typedef struct centry {
    uint8_t dirty, loaded;
    uint64_t hash;
    char case_id[DK_CASE_MAX + 1];
    dk_case_state orig; /* as stored when the batch started */
    dk_case_state st;   /* now */
} centry;

typedef struct scache {
    uint32_t *idx; /* open addressing: 0 empty, else pool index + 1 */
    centry *pool;  /* malloc'd once; only the entries used are touched */
    size_t cap, n, max;
} scache;

/* ---- a set of views being written: the live ones, or a rebuild's ---- */

typedef struct vset {
    int build;     /* 0: the live views; 1: a rebuild or check in progress */
    uint64_t bgen; /* a build's generation */
    unsigned mask; /* views in the set */
    uint32_t version[NV];
    uint64_t gen[NV];
    MDB_dbi dbi[NV];
    uint8_t digest[NV][DK_VIEW_DIGEST_BYTES];
    uint64_t count[NV];
    uint64_t seq;
    uint8_t hash[DK_HASH_BYTES];
} vset;

/* A running rebuild or check started by this handle. */
typedef struct build_run {
    int active;
    int check;
    uint64_t gen;
    unsigned mask;
    int bulk; /* 0 not used, 1 its first phase (bulk.c) is running, 2 done */
} build_run;

/* A build record's flags. */
#define BUILD_CHECK 1u /* a check: compared, then dropped */
#define BUILD_BULK  2u /* in its first phase: not resumable */

typedef struct bulk bulk;

struct dk_views {
    dk_ledger *lg;
    char dir[4096];
    MDB_env *env;
    MDB_dbi meta, checkpoints;
    unsigned batch, rebuild_batch, rebuild_chunk;
    size_t map_size;      /* 0: the default */
    int redo;             /* the last step met a full map, which grew: do it again */
    unsigned full;        /* full maps met since the last commit */
    unsigned restarts;    /* rebuilds or checks whose first phase started again (tests) */
    size_t scatter_max;   /* 0, or (tests) fewer held entries than bulk.c's SCATTER_MAX */
    size_t held_part;     /* 0, or (tests) the entries of a part of the held set's flush */
    unsigned step_chunks; /* 0, or (tests) fewer chunks per step than bulk.c's STEP_CHUNKS */
    size_t queue_bytes;   /* 0, or (tests) fewer queued bytes than bulk.c's QUEUE_BYTES */
    size_t queue_drift;   /* (tests) queued bytes counted but not queued, at the last stop */
    unsigned folders;     /* 0, or (tests) this many folder threads instead of one a core */
    size_t stolen;        /* (tests) chunks the last first phase folded from another's run */
    int adopting;         /* the open transaction takes over a dead process's build */
    uint64_t upto;        /* 0, or the last seq these views may apply */
    /* the last checkpoint (seq, record hash) found to be this ledger's: its records never
     * change, so the match need not read the ledger again (views, status, every read) */
    uint64_t known_seq;
    uint8_t known_hash[DK_HASH_BYTES];
    build_run run;
    unsigned requested;  /* views a caller asked to rebuild, not yet started */
    int check_done;      /* set when a check build has compared */
    unsigned check_mask; /* the views the caller asked to check */
    dk_views_check_report check_rep;
    size_t check_max;
    dk_views_diff_fn check_fn;
    void *check_ud;
    /* the state cache of the live set: valid while the live checkpoint is the one we wrote */
    scache live_cache;
    uint64_t live_cache_seq;
    uint64_t live_cache_gen;
    scache build_cache;
    overlay ov;
    bulk *bulk;     /* a rebuild's folders, while its first phase runs */
    int64_t *times; /* recorded_at of the last batch */
    size_t ntimes, times_cap;
    dk_file_id store; /* the views store file this handle opened */
    dk_file_id lock;  /* and its lock file */
};

/* Free the views env's reader slots of dead processes (dk_lmdb_readers_clear). */
int dk__views_readers_clear(dk_views *vw);
/* 0 while LEDGER_DIR/views/data.mdb is still the file these views opened, and the
 * ledger's data.mdb the file its handle opened; DK_ECLOSED (message set) once either was
 * moved aside or replaced (another process's rebuild, a restore moved into place), or
 * removed: whatever is written through these handles is then lost, or wrong. */
int dk__views_store_current(const dk_views *vw);

/* The ledger's head as these views see it: capped at `upto`. */
int dk__views_head(dk_views *vw, dk_head *head);
/* Were views checkpointed at (seq, hash) built from this ledger, whose head is `head`?
 * 0 if so (or seq is 0). DK_ECORRUPT, saying so and how to repair it, if the ledger is
 * shorter or holds another record at seq: it was replaced or restored, or the views
 * were copied from another ledger. DK_EINVAL if they are this ledger's but past `upto`,
 * the seq the handle was opened to show. */
int dk__views_match(dk_views *vw, const dk_head *head, uint64_t seq,
                    const uint8_t hash[DK_HASH_BYTES]);

/* ---- lagstat.c: per-record lag in bounded memory ---- */

#define DK__LAG_RATIO   1.05 /* each bucket ends 5% above the one before */
#define DK__LAG_BUCKETS 640  /* the last one holds everything past ~3.5e13 µs (a year) */
typedef struct dk__lagstat {
    uint64_t n;
    int64_t max_us;
    uint64_t bucket[DK__LAG_BUCKETS]; /* bucket b > 0: lags in (1.05^(b-1), 1.05^b] µs */
} dk__lagstat;
void dk__lag_add(dk__lagstat *s, int64_t us);
/* The q-quantile (0 < q <= 1), to within 5% above: its bucket's upper end, capped at the
 * largest lag seen; 0 if there are none. */
int64_t dk__lag_quantile(const dk__lagstat *s, double q);

/* ---- chainsum.c: the hash chain checked with records met in any order ---- */

#define DK__CHAIN_KEY_BYTES 96
typedef struct dk__chainsum {
    uint8_t key[DK__CHAIN_KEY_BYTES]; /* the rebuild's random key: six elements mod 2^127 - 1 */
    uint64_t links[2], prevs[2];      /* the two sides' products mod 2^127 - 1 (low word first) */
    uint64_t records;
} dk__chainsum;
void dk__chain_new_key(uint8_t key[DK__CHAIN_KEY_BYTES]);
void dk__chain_init(dk__chainsum *c, const uint8_t key[DK__CHAIN_KEY_BYTES]);
/* Record `seq` (seq >= 1), whose leaf hash is `hash` and whose prev field is `prev`. */
void dk__chain_add(dk__chainsum *c, uint64_t seq, const uint8_t hash[DK_HASH_BYTES],
                   const uint8_t prev[DK_HASH_BYTES]);
/* Add c's records to into's (same key). */
void dk__chain_merge(dk__chainsum *into, const dk__chainsum *c);
/* 1 if the records added are exactly 1..head, each chained to the one before (the first
 * to zeros), `last` being record head's hash; 0 if not (almost surely: see chainsum.c). */
int dk__chain_closes(const dk__chainsum *c, uint64_t head, const uint8_t last[DK_HASH_BYTES]);
/* (tests) a * b mod 2^127 - 1, the field the fingerprints are computed in, and the image
 * of a pair (seq, h) under the key's coefficients. */
void dk__chain_field_mul(const uint64_t a[2], const uint64_t b[2], uint64_t out[2]);
void dk__chain_image(const uint8_t key[DK__CHAIN_KEY_BYTES], uint64_t seq,
                     const uint8_t h[DK_HASH_BYTES], uint64_t out[2]);

/* ---- store.c: environment, checkpoints, generations, flush ---- */

int dk__mdb_fail(int rc, const char *what);
/* DK_EINVAL naming `name` and the views there are (`all`: "or all" is taken too). */
int dk__unknown_view(const char *name, int all);
/* A view's checkpoint (hash may be NULL); MDB_NOTFOUND if it has none. */
/* A view's checkpoint: 0, MDB_NOTFOUND, DK__CP_MALFORMED (a row is there that is no
 * checkpoint: the view is to be rebuilt; the transaction is still good), or an LMDB code. */
#define DK__CP_MALFORMED (-29999) /* outside LMDB's codes and errno values */
int dk__cp_read(dk_views *vw, MDB_txn *txn, int view, uint32_t *version, uint64_t *gen,
                uint64_t *seq, uint64_t *count, uint8_t digest[DK_VIEW_DIGEST_BYTES],
                uint8_t hash[DK_HASH_BYTES]);
int dk__env_open(dk_views *vw);
int dk__txn_begin(dk_views *vw, unsigned flags, MDB_txn **txn);
/* Grow the map before a write if it is more than half used. No txn open. */
int dk__ensure_map(dk_views *vw);
int dk__grow_map(dk_views *vw);
/* "<name>@<gen>" */
void dk__db_name(char *out, size_t cap, int view, uint64_t gen);
int dk__db_open(MDB_txn *txn, int view, uint64_t gen, int create, MDB_dbi *dbi);

/* Load the live set: views with a checkpoint of this code's version at the
 * same seq as _cases. stale gets the views needing a rebuild. */
int dk__live_load(dk_views *vw, MDB_txn *txn, vset *vs, unsigned *stale);
int dk__live_save(dk_views *vw, MDB_txn *txn, const vset *vs);
/* A process's start time (clock ticks since boot, from /proc/PID/stat), 0 if unknown:
 * with its pid, what names the owner of a build record (pids are reused). */
uint64_t dk__proc_start(uint64_t pid);
int dk__build_load(dk_views *vw, MDB_txn *txn, uint64_t gen, vset *vs, uint64_t *pid,
                   unsigned *flags);
int dk__build_save(dk_views *vw, MDB_txn *txn, const vset *vs, unsigned flags);
int dk__build_start(dk_views *vw, MDB_txn *txn, unsigned mask, int check, uint64_t *gen);
/* Drop a build's databases and record. */
int dk__build_drop(dk_views *vw, MDB_txn *txn, uint64_t gen, unsigned mask);
/* The same, unless another living process has taken the build over. */
int dk__build_drop_own(dk_views *vw, MDB_txn *txn, uint64_t gen, unsigned mask);
/* Give up this process's rebuild without losing its progress: its record names no process,
 * so that the next sweep (here or elsewhere) takes it over; one that cannot be resumed (a
 * check, or in its first phase) is dropped. */
int dk__build_release(dk_views *vw, MDB_txn *txn, uint64_t gen, unsigned mask);
/* *mask: the views that running processes (this one included) are rebuilding: not checks,
 * nor rebuilds handed back or whose process died (they wait for a sweep to take them over).
 * pids (NULL, or one per view): each such view's rebuilding process. */
int dk__builds_running(dk_views *vw, MDB_txn *txn, unsigned *mask, uint64_t pids[DK_VIEW_COUNT]);
/* Is process pid stopped (by a signal or a tracer)? 0 if not, or not known. */
int dk__proc_stopped(uint64_t pid);
/* Drop builds whose process is gone. *others gets the views being rebuilt by live processes. */
int dk__builds_sweep(dk_views *vw, MDB_txn *txn, const dk_head *head, unsigned *others);
/* Install a build's databases as the live ones (same seq), dropping the old. */
int dk__build_swap(dk_views *vw, MDB_txn *txn, vset *live, const vset *b);

/* Write the overlay into the set's databases, keeping digests and counts. */
int dk__flush(dk_views *vw, MDB_txn *txn, vset *vs, overlay *ov);
/* The same in parts: the overlay's entries in LMDB's order (a malloc'd array pointing into
 * the overlay, which must not change until the last part is written), then any run of
 * them. */
typedef struct flush_item {
    uint64_t pfx; /* key bytes [off, off + 8) at the current level, big-endian, 0-padded */
    ov_entry *e;
} flush_item;
int dk__flush_order(const overlay *ov, flush_item **out, size_t *n);
int dk__flush_items(MDB_txn *txn, vset *vs, const flush_item *order, size_t n);
/* Put one entry into a set's view, keeping its digest and count; through `cur` (a cursor
 * on that view's database) if not NULL. `hash` is the entry's dk__entry_hash, or NULL to
 * compute it. */
int dk__view_put(MDB_txn *txn, MDB_cursor *cur, vset *vs, int view, const void *key, size_t klen,
                 const void *v, size_t vlen, const uint8_t *hash);
void dk__entry_hash(const void *k, size_t klen, const void *v, size_t vlen,
                    uint8_t out[DK_VIEW_DIGEST_BYTES]);
void dk__digest_xor(uint8_t d[DK_VIEW_DIGEST_BYTES], const uint8_t h[DK_VIEW_DIGEST_BYTES]);

/* ---- derive.c: what each view holds for a case ---- */

/* Tuples: the value encoding, u8 count then (u16 length, bytes) per field. */
typedef struct tuple {
    uint8_t buf[2048];
    size_t len;
    unsigned n;
} tuple;
void dk__tup_init(tuple *t);
void dk__tup_str(tuple *t, const char *s);
void dk__tup_i64(tuple *t, int64_t v);
/* Field i of an encoded tuple into out (NUL-terminated, truncated); "" if absent. */
void dk__tup_get(const uint8_t *v, size_t vlen, unsigned i, char *out, size_t cap);

/* Entries derived from a case's state: case_status, by_status, queue. */
typedef struct sentry {
    int view;
    uint8_t key[KEY_MAX];
    size_t klen;
    tuple val;
} sentry;
size_t dk__state_entries(const char *case_id, const dk_case_state *st, sentry out[3]);

/* Entries added by one step of a case's history (diary, stats, errors):
 * emit(ctx, view, key, klen, val, vlen, sign) with sign +1 add, -1 remove
 * (a stats entry is a counter: +1/-1 to it). `report_time` gives the
 * effective time of an earlier record of the case (an error report). */
typedef int (*emit_fn)(void *ctx, int view, const uint8_t *k, size_t klen, const uint8_t *v,
                       size_t vlen, int sign);
typedef int (*time_fn)(void *ctx, uint64_t seq, int64_t *t);
/* What dk__step_entries reads of the state before a step: a rebuild's walk keeps this much
 * of it per record (~400 bytes) instead of a copy of the whole 1,440-byte state. */
typedef struct step_prev {
    struct dk_interview interview;
    uint32_t open_errors;
    uint64_t error_seqs[DK_OPEN_ERRORS_MAX];
    uint64_t decision_seq;
} step_prev;
void dk__step_prev(step_prev *p, const dk_case_state *st);
int dk__step_entries(const char *case_id, const step_prev *prev, const dk_case_state *next,
                     const dk_event *ev, const dk_record *rec, time_fn tf, void *tctx, emit_fn emit,
                     void *ectx);
int64_t dk__when(const dk_record *rec, const dk_event *ev);
int dk__is_meta(const char *type);

/* ---- apply.c: applying records to a set ---- */

int dk__apply_batch(dk_views *vw, MDB_txn *txn, vset *vs, scache *cache, uint64_t end, unsigned max,
                    int record_times);
/* A rebuild's first phase: fold one case (thread-safe) from its records recs[0..n), in seq
 * order, appending its entries to a growing blob; merge blobs. */
int dk__bulk_compute(const char *case_id, const dk_record *recs, size_t n, uint8_t **blob,
                     size_t *blen, size_t *bcap);
/* Merge blobs: the held views' entries (diary, stats, errors, queue) into `scatter`, the
 * rest into `ov`. */
int dk__bulk_merge(overlay *ov, overlay *scatter, const uint8_t *blob, size_t len);
/* Split a chunk's blob: the entries of the views keyed by the case first (no two chunks
 * share those keys) go to `own`, sorted by view and key with their digest hashes, for
 * dk__bulk_put to write in order with no merging; the rest stay in `blob`. */
int dk__bulk_sort(uint8_t *blob, size_t *len, uint8_t **own, size_t *olen, size_t *ocap);
int dk__bulk_put(MDB_txn *txn, vset *vs, const uint8_t *own, size_t len);

/* ---- bulk.c: a rebuild's first phase, case by case ---- */

int dk__bulk_start(dk_views *vw, uint64_t head);
/* Fold the cases found so far (one transaction); *finished once every case up to the
 * scan's head is done, with bs->seq and bs->hash set to the head. */
int dk__bulk_step(dk_views *vw, MDB_txn *txn, vset *bs, int *finished);
void dk__bulk_stop(dk_views *vw);
void dk__cache_init(scache *c, size_t cap);
void dk__cache_free(scache *c);
void dk__cache_clear(scache *c);

/* ---- render.c: entries as text ---- */

void dk__render_key(int view, const uint8_t *k, size_t klen, char *out, size_t cap);
void dk__render_val(int view, const uint8_t *v, size_t vlen, char *out, size_t cap);
int dk__compare(dk_views *vw, MDB_txn *txn, const vset *live, const vset *b);

#endif
