/* views.h - projections: live views of the ledger kept in LMDB beside it
 * (LEDGER_DIR/views/), their checkpoints, rebuild, check, queries, and the libuv projector. */
#ifndef DOCKET_VIEWS_H
#define DOCKET_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "docket/ledger.h"

/* The views, in order: XX(ID, name, version). A view's version changes when
 * what it stores or how its digest is computed changes (2: XXH3 digests, not
 * SipHash); a stored view of another version is rebuilt automatically
 * (dk_views_step). "_cases" is internal: each case's folded
 * state, the input the other views are derived from. */
#define DK_VIEW_MAP(XX)                                                                            \
    XX(CASES, "_cases", 3)                                                                         \
    XX(CASE_STATUS, "case_status", 3)                                                              \
    XX(BY_STATUS, "by_status", 2)                                                                  \
    XX(QUEUE, "queue", 2)                                                                          \
    XX(DIARY, "diary", 3)                                                                          \
    XX(STATS, "stats", 2)                                                                          \
    XX(ERRORS, "errors", 2)

enum {
#define DK__VIEW_ENUM(id, name, version) DK_VIEW_##id,
    DK_VIEW_MAP(DK__VIEW_ENUM)
#undef DK__VIEW_ENUM
        DK_VIEW_COUNT
};

#define DK_VIEW_DIGEST_BYTES 16

/* View name -> DK_VIEW_*; -1 if unknown. */
int dk_view_id(const char *name);
const char *dk_view_name(int id); /* "unknown" if out of range */

typedef struct dk_views dk_views;

typedef struct dk_views_opts {
    unsigned batch;         /* records per live transaction; 0 = 1024 */
    unsigned rebuild_batch; /* records per rebuild transaction; 0 = 32768 */
    uint64_t upto;          /* 0: follow the ledger's head; else stop at this seq (views
                               of the ledger as it was then, e.g. in a scratch directory) */
    unsigned rebuild_chunk; /* cases a rebuild's folder hands the writer at once (it reads
                               512 times as many in one dk_gather); 0 = 128 */
    size_t map_size;        /* the views environment's map to start with; 0 = 1 GiB, or
                               twice the file. It doubles whenever it is half used. */
} dk_views_opts;

/* Open (creating if needed) the views of the ledger `lg` stored in
 * `ledger_dir`/views. The handle borrows lg, which must stay open until
 * dk_views_close. A handle is used by one thread at a time, and a process
 * opens one handle per ledger (LMDB's rule for environments). */
int dk_views_open(dk_ledger *lg, const char *ledger_dir, const dk_views_opts *opts, dk_views **out);
/* Abandon any rebuild this handle started, and close. NULL is a no-op. */
void dk_views_close(dk_views *vw);

/* What one step did. */
typedef struct dk_views_batch {
    uint64_t from_seq, to_seq;  /* records applied to the live views: from..to; to < from if none */
    const int64_t *recorded_at; /* recorded_at of each of them (to - from + 1), valid until the
                                   next step */
    int64_t committed_at;       /* wall clock (µs) when the batch committed */
    int rebuilt;                /* a rebuild advanced, or was swapped in */
    int swapped;                /* a rebuild was swapped in */
    int more;                   /* more work is waiting (behind the head, or a rebuild running) */
} dk_views_batch;

/* One unit of work in one LMDB transaction: advance a rebuild this handle
 * runs by one batch, or swap it in; else advance the live views by one batch
 * toward the ledger's head. Views whose stored version differs from the
 * code's (or that are missing) are rebuilt. `b` may be NULL. */
int dk_views_step(dk_views *vw, dk_views_batch *b);
/* Step until the live views are at the head seen at the start (and any
 * rebuild of this handle is swapped in). */
int dk_views_sync(dk_views *vw);

/* Rebuild `name` (NULL or "all": every view) into fresh databases, catching
 * up with the head in batches, then swap them in in one transaction: readers
 * see the old view until the swap, never a half-built one. */
int dk_views_rebuild(dk_views *vw, const char *name);
/* What a views call's message ends with when LMDB met damage inside the views store (a
 * broken page or node; LMDB does not checksum pages), as against damage in the ledger:
 * the store is derived data, to be set aside and built anew. */
#define DK_VIEWS_STORE_DAMAGED                                                                     \
    "the views store is damaged (docket views rebuild --fresh sets it aside and builds the "       \
    "views anew)"
/* Ask for that rebuild without waiting: the following dk_views_step calls
 * (a projector's) carry it out batch by batch and swap it in. */
int dk_views_request_rebuild(dk_views *vw, const char *name);

typedef struct dk_view_status {
    char name[24];
    int live;              /* built, current version, at the group's seq */
    uint32_t version;      /* stored version (0 if none) */
    uint32_t code_version; /* this build's version */
    uint64_t gen;          /* database generation */
    uint64_t seq;          /* checkpoint: last record applied */
    uint64_t head;         /* the ledger's head */
    uint64_t lag;          /* head - seq */
    int64_t lag_us;        /* head's recorded_at - checkpoint record's recorded_at */
    int64_t wait_us;       /* now - recorded_at of the first record not applied (0: none):
                              how long the oldest waiting record has waited */
    uint64_t entries;
    uint8_t digest[DK_VIEW_DIGEST_BYTES];
    int building;          /* a rebuild of it is in progress (by some process) */
    uint64_t building_pid; /* that process (0 if not building) */
    int building_stopped;  /* that process is stopped (a signal or a debugger holds it) */
    int foreign;           /* built from records this ledger does not hold (it was replaced or
                              restored, or the views were copied from another ledger): not served */
    char damage[96];       /* what is broken where the view's store is damaged ("" if nothing):
                              its checkpoint row is malformed, or the database its checkpoint
                              names is gone; not served, and the next project rebuilds it */
} dk_view_status;

/* Status of every view (DK_VIEW_COUNT entries, "_cases" first). */
int dk_views_status(dk_views *vw, dk_view_status out[DK_VIEW_COUNT]);
/* Without opening (so without creating) the views store: 1 if LEDGER_DIR has none yet (or
 * only an empty data file), with every view's status "missing" in out; 0 if it has one
 * (dk_views_status reads it); or a DK_E* code. */
int dk_views_absent(dk_ledger *lg, const char *ledger_dir, dk_view_status out[DK_VIEW_COUNT]);

/* ---- check ---- */

/* One difference: key and values rendered as text; stored or fresh is NULL
 * when the key is absent on that side. For a digest difference key is
 * "(digest)". */
typedef void (*dk_views_diff_fn)(void *udata, const char *view, const char *key, const char *stored,
                                 const char *fresh);

typedef struct dk_views_check_report {
    int ok;       /* every checked view equals a fresh replay */
    uint64_t seq; /* the seq both were compared at */
    size_t views_checked;
    size_t differences; /* keys that differ (plus digest mismatches) */
    unsigned damaged;   /* bit set of DK_VIEW_* ids that differ */
} dk_views_check_report;

/* Recompute `name` (NULL or "all": every view, "_cases" included) from the
 * ledger into scratch databases up to the stored views' checkpoint, then
 * compare entry by entry and digest by digest; fn is called for each
 * difference (at most `max_report`, 0 = all). Returns 0 when it could run
 * (rep->ok tells whether the views are intact). */
int dk_views_check(dk_views *vw, const char *name, size_t max_report, dk_views_diff_fn fn,
                   void *udata, dk_views_check_report *rep);

/* ---- reading views (each call reads one snapshot; *as_of is its checkpoint seq) ---- */

/* Every entry of a view as text, in key order. A non-zero return from fn stops
 * the walk and is returned. */
typedef int (*dk_views_row_fn)(void *udata, const char *key, const char *value);
int dk_views_dump(dk_views *vw, const char *name, dk_views_row_fn fn, void *udata, uint64_t *as_of);

typedef struct dk_case_summary {
    char case_id[DK_CASE_MAX + 1];
    char status[24];
    char case_type[16];
    char channel[20];
    char received_on[11];
    char assignee[DK_ACTOR_MAX + 1];
    uint64_t version, last_seq, voided;
    char outcome[9]; /* of the current decision, "" if none */
    char immigration_status[24];
    char conditions[160];
    char valid_until[11];
    char interview_at[40]; /* active interview slot start, RFC 3339, "" if none */
    char interviewer[DK_ACTOR_MAX + 1];
    uint32_t open_errors;
    char appeal[16];              /* "open", an outcome, or "" */
    uint64_t leave_cancelled_seq; /* the leave.cancelled that ended the last grant, or 0 */
    uint64_t leave_grant_seq;     /* the grant whose leave the case holds, or 0 */
} dk_case_summary;

/* One case from case_status. DK_ENOTFOUND if the view has no such case. */
int dk_views_case(dk_views *vw, const char *case_id, dk_case_summary *out, uint64_t *as_of);

typedef int (*dk_views_case_fn)(void *udata, const dk_case_summary *c);
/* Cases in `status` (by_status), in case-id order. DK_EINVAL for an unknown status. */
int dk_views_by_status(dk_views *vw, const char *status, dk_views_case_fn fn, void *udata,
                       uint64_t *as_of);

typedef struct dk_queue_item {
    char case_id[DK_CASE_MAX + 1];
    char received_on[11];
    char status[24];
} dk_queue_item;
typedef int (*dk_views_queue_fn)(void *udata, const dk_queue_item *q);
/* A caseworker's open assigned cases (status received .. appealed), oldest
 * received first (then by case id). */
int dk_views_queue(dk_views *vw, const char *caseworker, dk_views_queue_fn fn, void *udata,
                   uint64_t *as_of);

typedef struct dk_diary_slot {
    char day[11];
    int64_t start, end; /* µs since the epoch */
    char interviewer[DK_ACTOR_MAX + 1];
    char case_id[DK_CASE_MAX + 1];
    char location[129];
    char state[12];     /* booked, attended, no_show */
    uint64_t booked_at; /* seq of the booking (or move) that made the slot */
} dk_diary_slot;
typedef int (*dk_views_diary_fn)(void *udata, const dk_diary_slot *s);
/* Interview slots starting on `day` (YYYY-MM-DD, UTC), by start time: booked,
 * attended or no-show; cancelled and rescheduled-away slots are not there. */
int dk_views_diary(dk_views *vw, const char *day, dk_views_diary_fn fn, void *udata,
                   uint64_t *as_of);

typedef struct dk_report_query {
    const char *case_type; /* required */
    const char *outcome;   /* required: granted, refused, void */
    const char *condition; /* NULL: any */
    const char *from, *to; /* dates YYYY-MM-DD, inclusive */
} dk_report_query;

typedef struct dk_report_result {
    uint64_t count; /* decisions recorded (dated by effective time) */
    size_t lookups; /* stats entries read: whole years, months, then days */
} dk_report_result;

/* Count decisions of case_type with outcome (and condition) dated from..to:
 * a sum over whole years, months and days of the range, so a calendar year
 * is one lookup. DK_EINVAL naming the bad field. */
int dk_views_report(dk_views *vw, const dk_report_query *q, dk_report_result *out, uint64_t *as_of);
/* What dk_views_report checks of its query, and dk_views_queue of its caseworker, without
 * the views: a caller can refuse bad input before opening (or syncing) anything. */
int dk_report_query_check(const dk_report_query *q);
int dk_queue_caseworker_check(const char *caseworker);

typedef struct dk_error_item {
    uint64_t report_seq;
    char case_id[DK_CASE_MAX + 1];
    int open;
    int64_t reported_at;  /* effective time of the report */
    int64_t resolved_at;  /* of the correction; 0 if open */
    uint64_t resolved_by; /* the correction's seq; 0 if open */
    int64_t resolve_us;   /* resolved_at - reported_at */
} dk_error_item;
typedef int (*dk_views_error_fn)(void *udata, const dk_error_item *e);
/* Error reports: the open ones, then the resolved ones, each in ledger order. */
int dk_views_errors(dk_views *vw, int open_only, dk_views_error_fn fn, void *udata,
                    uint64_t *as_of);

/* ---- the projector: keeps the views live on a libuv loop ---- */

typedef struct dk_projector dk_projector;

typedef struct dk_projector_opts {
    unsigned poll_ms; /* fallback timer; 0 = 500 ms */
    int watch_file;   /* watch LEDGER_DIR/data.mdb for other processes' appends */
    /* Called on the loop thread after each step that did something, and on an error:
     * DK_ECLOSED once (and no step after it) when LEDGER_DIR/views/data.mdb is no longer
     * the store these views opened, moved aside or replaced by another process. */
    void (*on_batch)(void *udata, const dk_views_batch *b);
    void (*on_error)(void *udata, int err, const char *msg);
    void *udata;
} dk_projector_opts;

/* Start projecting on `loop`: woken after each commit of this process's
 * writer (dk_ledger_on_commit -> uv_async_send, never blocking the writer),
 * by changes to the ledger's data file, and by a timer; it then steps once
 * per loop iteration until caught up, so the loop stays responsive. */
int dk_projector_start(uv_loop_t *loop, dk_views *vw, dk_ledger *lg, const char *ledger_dir,
                       const dk_projector_opts *opts, dk_projector **out);
/* Stop: unhook from the ledger and close the handles; `done` (may be NULL)
 * is called on the loop once they are closed and the projector is freed. */
void dk_projector_stop(dk_projector *pj, void (*done)(void *udata), void *udata);
/* Records the projector is behind the ledger (head - checkpoint). */
uint64_t dk_projector_lag(const dk_projector *pj);

/* What a projector has done since it started, and how far behind the ledger it ran. A
 * record's lag is from its commit to the ledger (recorded_at) to the commit of the batch
 * that applied it to the views; records applied while catching up count with their age. */
typedef struct dk_projector_stats {
    uint64_t batches, records;      /* live batches that applied records, and those records */
    uint64_t seq;                   /* the views' checkpoint after the last step */
    uint64_t lag;                   /* records behind the head after the last step */
    int64_t lag_p50_us, lag_p99_us; /* per record, to within 5% above (a histogram) */
    int64_t lag_max_us;
} dk_projector_stats;
void dk_projector_stats_get(const dk_projector *pj, dk_projector_stats *out);

#endif
