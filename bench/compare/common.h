/* common.h - shared by the bench/compare programs (issue 5): the workload file
 * every driver reads, timing, result lines, the query plan and the case fold. */
#ifndef DOCKET_BENCH_COMPARE_COMMON_H
#define DOCKET_BENCH_COMPARE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "docket/docket.h"

/* ---- the workload file ----
 *
 *   header (cmp_file_header), nactors x cmp_actor, then nevents records:
 *   cmp_ev_head, body bytes, zero padding to a multiple of 8.
 * Events are in the order every driver ingests them; a case's events come in
 * case order, each carrying expect = the case's version before it. */

#define CMP_MAGIC     "DKCMPWL3"
#define CMP_ACTOR_MAX 32
/* Interviewers the workload books, iv.000 ... (the docket driver enrolls them: interviews
 * are held by enrolled caseworkers). */
#define CMP_NINTERVIEWERS 300

typedef struct cmp_file_header {
    char magic[8];
    uint64_t nevents;
    uint64_t ncases;
    uint64_t seed;
    uint32_t nactors;
    uint32_t reserved;
} cmp_file_header;

typedef struct cmp_actor {
    char id[CMP_ACTOR_MAX];
    uint8_t pk[DK_PUBKEY_BYTES];
    uint32_t roles; /* DK_ROLE_* bits */
    uint32_t reserved;
} cmp_actor;

typedef struct cmp_ev_head {
    uint32_t case_no;  /* 0 .. ncases-1 */
    uint32_t version;  /* the case's version before this event (the body's expect) */
    uint32_t body_len; /* bytes of body after this head */
    uint8_t actor;     /* the signer: index into the actor table */
    uint8_t type;      /* cmp_type, for statistics only */
    uint16_t reserved;
    uint8_t sig[DK_SIG_BYTES];
} cmp_ev_head;

/* Event types the generator writes (cmp_type_name gives the docket type). */
enum {
    CT_OPENED,
    CT_ASSIGNED,
    CT_STATUS,
    CT_WITHDRAWN,
    CT_CLOSED,
    CT_DECISION,
    CT_LEAVE_CANCELLED,
    CT_NOTE,
    CT_DOCUMENT,
    CT_BOOKED,
    CT_RESCHEDULED,
    CT_IV_CANCELLED,
    CT_ATTENDED,
    CT_NO_SHOW,
    CT_ERROR,
    CT_CONTACT,
    CT_APPEAL_LODGED,
    CT_APPEAL_DECIDED,
    CT_COUNT
};
const char *cmp_type_name(int type);

/* One event as the drivers see it: pointers into the mapped file. */
typedef struct cmp_event {
    uint32_t case_no;
    uint32_t version;
    uint8_t actor;
    uint8_t type;
    const uint8_t *body;
    size_t body_len;
    const uint8_t *sig;
} cmp_event;

typedef struct cmp_workload {
    void *map;
    size_t map_len;
    uint64_t nevents, ncases, seed;
    uint32_t nactors;
    const cmp_actor *actors;
    cmp_event *ev;        /* nevents, in ingest order */
    uint32_t *case_count; /* ncases: events of each case in the whole workload */
} cmp_workload;

/* Map the workload file and index it. Exits with a message on any error. */
void cmp_workload_open(const char *path, cmp_workload *w);
void cmp_workload_close(cmp_workload *w);

/* The case id of case number n ("HO-2026-0000042"); out holds 32 bytes. */
void cmp_case_id(uint64_t n, char out[32]);

/* ---- errors, time, results ---- */

/* Print "prog: message" to stderr and exit(1). */
void cmp_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Remember the program's name for messages. */
void cmp_set_prog(const char *name);

double cmp_now(void);   /* monotonic seconds */
double cmp_cpu_s(void); /* this process's CPU seconds (user + system) */
int cmp_cores(void);    /* online cores */
/* The p-quantile (0..1) of v[0..n) (sorts v). 0 if n is 0. */
double cmp_pct(double *v, size_t n, double p);
/* One result line: "name value unit". */
void cmp_line(const char *name, double value, const char *unit);
/* One exact integer line (digests that every driver must agree on). */
void cmp_line_u64(const char *name, uint64_t value, const char *unit);
/* Bytes allocated on disk by the regular files under dir (recursively). */
uint64_t cmp_dir_bytes(const char *dir);

/* xorshift64*: the same seed gives the same sequence on every driver. */
typedef struct cmp_rng {
    uint64_t s;
} cmp_rng;
void cmp_rng_seed(cmp_rng *r, uint64_t seed);
uint64_t cmp_rng_next(cmp_rng *r);
/* Uniform in [0, n). */
uint64_t cmp_rng_below(cmp_rng *r, uint64_t n);

/* ---- command line shared by the drivers ---- */

typedef struct cmp_opts {
    const char *workload; /* --workload FILE */
    const char *dir;      /* --dir DIR: where the system keeps its data (docket, SQLite) */
    const char *conninfo; /* --conninfo STR (PostgreSQL) */
    size_t n_c1;          /* --c1 N: events ingested by one client */
    size_t n_cn;          /* --cn N: events ingested by --clients clients */
    int clients;          /* --clients N (32) */
    size_t queries;       /* --queries N: history and as-of queries (10,000) */
    size_t batch;         /* --batch N: events per transaction in the bulk load (1,000) */
    int reads_only;       /* --reads-only 1: reuse the data a previous run left (profiling) */
    const char *only;     /* --only history|asof|rebuild: run that read phase alone (profiling) */
} cmp_opts;

void cmp_opts_parse(int argc, char **argv, cmp_opts *o);
/* Whether the read phase `name` runs (all of them unless --only names another). */
int cmp_phase(const cmp_opts *o, const char *name);

/* ---- ingest: the verification every SQL-side client does ---- */

/* Verify an event the way docket's ingest does, before any insert: decode the
 * body canonically, demand that the signer is the author and the body carries
 * its expected version, and check the Ed25519 signature (libsodium
 * crypto_sign_verify_detached over DK_SIGN_DOMAIN || body) against the
 * author's key in `actors` (the client's copy of the actor table, loaded
 * from its database). 0, or -1 with a message in err. */
int cmp_verify_event(const cmp_actor *actors, size_t nactors, const cmp_workload *w,
                     const cmp_event *e, dk_event *ev, char *err, size_t errcap);

/* The chain hash the SQL-side ingesters store: SHA-256(0x00 || seq || recorded_at
 * || prev || signer || sig || body), big-endian integers, as docket's leaf
 * hash covers its whole record. */
void cmp_chain_hash(uint64_t seq, int64_t recorded_at, const uint8_t prev[32], const char *signer,
                    const uint8_t sig[64], const uint8_t *body, size_t body_len, uint8_t out[32]);

/* Wall clock in microseconds, for recorded_at. */
int64_t cmp_wall_us(void);

void cmp_put_be64(uint8_t *p, uint64_t v);
uint64_t cmp_get_be64(const uint8_t *p);

/* Run events [from, to) through `nclients` threads. Client k appends, one
 * at a time and in file order, the events of the cases with
 * case_no % nclients == k, so a case's events arrive in order while
 * different cases race. fn returns 0 once the event is durably acknowledged,
 * or -1 with a message in err (which stops the run). */
typedef int (*cmp_append_fn)(void *client, const cmp_event *e, char *err, size_t errcap);

typedef struct cmp_ingest_stats {
    size_t n;
    double seconds, eps, p50_us, p99_us, cores_busy;
} cmp_ingest_stats;

/* 0, or -1 with the first client's message in err. */
int cmp_run_clients(const cmp_workload *w, size_t from, size_t to, int nclients, void **clients,
                    cmp_append_fn fn, cmp_ingest_stats *st, char *err, size_t errcap);
/* Print the phase's lines as ingest_<tag>_eps / _p50_us / _p99_us. */
void cmp_print_ingest(const char *tag, const cmp_ingest_stats *st);

/* Verify events [from, to) on all cores into ev[0 .. to-from) (the bulk
 * loaders' parallel verification). 0, or -1 with a message in err. */
int cmp_verify_range(const cmp_actor *actors, size_t nactors, const cmp_workload *w, size_t from,
                     size_t to, dk_event *ev, char *err, size_t errcap);

/* ---- reads ---- */

/* The cases the history queries read, and the (case, k) pairs of the as-of
 * queries (the state as of the moment the case's k-th event, 0-based, was
 * recorded), drawn from the workload's seed: the same on every driver. */
void cmp_plan_history(const cmp_workload *w, size_t nq, uint32_t *case_no);
void cmp_plan_asof(const cmp_workload *w, size_t nq, uint32_t *case_no, uint32_t *k);

/* Print a read phase's lines: <tag>_qps, _p50_us, _p99_us and check_<tag>. */
void cmp_report_reads(const char *tag, size_t nq, double seconds, double *lat, uint64_t check);

/* A digest of a case's state that does not depend on seq numbers, which
 * differ between the systems: the same states give the same digest. */
uint64_t cmp_state_digest(const char *case_id, const dk_case_state *st);

/* ---- rebuild: fold every event into a case-status table ---- */

typedef struct cmp_table cmp_table;
cmp_table *cmp_table_new(size_t ncases_hint);
void cmp_table_free(cmp_table *t);
/* Fold one record into its case's row, in seq order: decode the body and
 * apply it with dk_case_apply (what dk_case_fold does for a case with no
 * reverts). System events (no case id) are skipped. A revert or rollback
 * would need the case re-folded; the workload has none, so it is refused. */
int cmp_table_apply(cmp_table *t, uint64_t seq, int64_t recorded_at, const uint8_t *body,
                    size_t len, char *err, size_t errcap);
/* Number of cases, and the sum of their cmp_state_digest. */
size_t cmp_table_cases(const cmp_table *t);
uint64_t cmp_table_digest(const cmp_table *t);
/* Print the rebuild's lines: rebuild_s, rebuild_eps, check_rebuild. */
void cmp_report_rebuild(const cmp_workload *w, const cmp_table *t, double seconds);

#endif
