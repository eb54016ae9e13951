/* ledger.h - the append-only ledger in LMDB: init, group-committed appends,
 * reads by seq, by case and by time, and chain/signature verification. */
#ifndef DOCKET_LEDGER_H
#define DOCKET_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "docket/crypto.h"
#include "docket/error.h"
#include "docket/event.h"

/* Roles an actor may hold (a bit set). */
#define DK_ROLE_MAP(XX)                                                                            \
    XX(ADMIN, 1u << 0, "admin")                                                                    \
    XX(CASEWORKER, 1u << 1, "caseworker")                                                          \
    XX(SENIOR_CASEWORKER, 1u << 2, "senior_caseworker")                                            \
    XX(AUDITOR, 1u << 3, "auditor")                                                                \
    XX(CHECKER, 1u << 4, "checker")                                                                \
    XX(MIGRATION, 1u << 5, "migration")

enum {
#define DK__ROLE_ENUM(name, bit, str) DK_ROLE_##name = bit,
    DK_ROLE_MAP(DK__ROLE_ENUM)
#undef DK__ROLE_ENUM
};

/* Role name -> bit; 0 if unknown. */
unsigned dk_role_parse(const char *name, size_t len);
/* Write "admin,caseworker" for a bit set into out (cap bytes). */
void dk_roles_format(unsigned roles, char *out, size_t cap);

typedef struct dk_ledger dk_ledger;

typedef struct dk_ledger_opts {
    size_t map_size;    /* initial LMDB map size in bytes; 0 = 64 GiB. It grows by itself. */
    unsigned max_batch; /* appends per group commit; 0 = 1024 */
    int read_only;      /* open for reading only: no writer thread */
    int no_lock;        /* with read_only: use no lock file (MDB_NOLOCK), for a copy that no
                           process writes, such as a backup being checked */
} dk_ledger_opts;

/* Create a new ledger in `dir` (created if missing; refused with DK_EEXIST if
 * it already holds one) whose genesis record names `name` and enrols `admin`
 * as its first administrator, signed by that key. */
int dk_ledger_init(const char *dir, const char *name, const dk_key *admin,
                   const dk_ledger_opts *opts, dk_ledger **out);
/* Open an existing ledger. DK_ENOTFOUND if `dir` holds none. */
int dk_ledger_open(const char *dir, const dk_ledger_opts *opts, dk_ledger **out);
/* Stop the writer (answering every queued append first) and close. NULL is a no-op. */
void dk_ledger_close(dk_ledger *lg);

/* ---- appends ---- */

typedef struct dk_append_req {
    const uint8_t *body; /* encoded event body (dk_event_encode) */
    size_t body_len;
    const dk_sig *sigs; /* author first, then co-signers */
    size_t nsigs;
} dk_append_req;

typedef struct dk_append_res {
    int err;       /* 0 or a DK_E* code */
    uint64_t seq;  /* the event's seq (the original one for a duplicate) */
    int duplicate; /* 1 if the command id was already in the ledger */
    int64_t recorded_at;
    char errmsg[DK_ERRMSG_MAX]; /* why it was rejected, naming the field/actor/case */
} dk_append_res;

/* Called once per submitted append, after the transaction holding it is durably
 * committed (or it was rejected): on the ledger's writer thread, or on the thread of a
 * dk_ledger_append caller that committed its own append (see dk_ledger_append). */
typedef void (*dk_append_cb)(void *udata, const dk_append_res *res);

/* Asynchronous append: copies the request, decodes the body and verifies its
 * signatures (in the calling thread while fewer verifications than cores are
 * running, else on the ledger's verification threads), then queues it for the
 * writer. A rejection found in the calling thread is returned (and cb is never
 * called); one found later is answered through cb. */
int dk_ledger_submit(dk_ledger *lg, const dk_append_req *req, dk_append_cb cb, void *udata);

/* Blocking append over the same path: returns res->err once the event is
 * durably committed or rejected. Thread-safe; concurrent callers share
 * group commits. When no batch is being committed and none is queued, the caller
 * commits its own append in its own thread (no hand-off to the writer and back). */
int dk_ledger_append(dk_ledger *lg, const dk_append_req *req, dk_append_res *res);

/* Called after each durable commit with the new head seq (after the batch's
 * callbacks, on the thread that committed: the writer, or a dk_ledger_append caller). It must not
 * block and must not call dk_ledger_on_commit: wake a loop (uv_async_send) and return. One hook per
 * ledger; setting another (or NULL) replaces it, and returns only once no
 * call of the old one is running, so its udata may then be freed. */
typedef void (*dk_commit_fn)(void *udata, uint64_t head_seq);
void dk_ledger_on_commit(dk_ledger *lg, dk_commit_fn fn, void *udata);

/* ---- reads (each a consistent snapshot) ---- */

typedef struct dk_head {
    uint64_t seq; /* 0 for an empty ledger */
    uint8_t hash[DK_HASH_BYTES];
    int64_t recorded_at;
} dk_head;

int dk_ledger_head(dk_ledger *lg, dk_head *out);
/* 0 if the directory this handle opened still holds, as data.mdb, the file the handle
 * has open; DK_ECLOSED, naming it, if that file was moved, removed or replaced (a
 * restore moved into place): a long-running reader then opens the ledger again. */
int dk_ledger_file_current(dk_ledger *lg);
/* Free the reader slots of processes that died holding a read snapshot of the ledger
 * (until then its file grows, every page they could see kept): at open, and every so
 * often in a long-running process. The number freed. */
int dk_ledger_readers_clear(dk_ledger *lg);
/* The exact record bytes at `seq`, malloc'd (caller frees). DK_ENOTFOUND if absent. */
int dk_ledger_get(dk_ledger *lg, uint64_t seq, uint8_t **raw, size_t *len);
/* The last seq recorded at or before `t` (0 if none). Binary search. */
int dk_ledger_seq_at(dk_ledger *lg, int64_t t, uint64_t *seq);
/* Number of events on a case (its version); 0 for an unknown case. */
int dk_ledger_case_version(dk_ledger *lg, const char *case_id, uint64_t *version);
/* The ledger's id (hex) and name from its genesis record. */
int dk_ledger_info(dk_ledger *lg, char id_hex[33], char name[65]);

typedef struct dk_actor_info {
    char id[DK_ACTOR_MAX + 1];
    uint8_t pubkey[DK_PUBKEY_BYTES];
    unsigned roles;
    int revoked;
    uint64_t enrolled_seq;
} dk_actor_info;
/* An actor's current key and roles. DK_ENOTFOUND if never enrolled. */
int dk_ledger_actor(dk_ledger *lg, const char *id, dk_actor_info *out);
/* The actor as it stood just before record `seq`: the key and roles its
 * events up to seq-1 gave it (what the writer checked that record against).
 * DK_ENOTFOUND if it was not enrolled by then. */
int dk_ledger_actor_at(dk_ledger *lg, const char *id, uint64_t seq, dk_actor_info *out);

/* A record's stored bytes, borrowed from a read snapshot; decode with dk_record_decode. */
typedef struct dk_raw {
    const uint8_t *p;
    size_t len;
} dk_raw;

typedef struct dk_iter dk_iter;
/* Iterate records from `from_seq` (>= 1) in seq order; with `case_id`, only
 * that case's records. The iterator holds one read snapshot. */
int dk_iter_open(dk_ledger *lg, uint64_t from_seq, const char *case_id, dk_iter **out);
/* Next record into *rec. Its pointers are borrowed from the iterator's
 * snapshot: valid until dk_iter_close, so a caller may keep several.
 * 0, or DK_ENOTFOUND at the end. */
int dk_iter_next(dk_iter *it, dk_record *rec);
/* The next record's stored bytes, undecoded (borrowed like dk_iter_next's). */
int dk_iter_next_raw(dk_iter *it, dk_raw *raw);
/* Point an iterator opened on a case at another case, from its first record, in the
 * same snapshot (no new read transaction: for reading many cases in a row). */
int dk_iter_case(dk_iter *it, const char *case_id);
void dk_iter_close(dk_iter *it);

/* Up to `max` case ids, in byte order, after `after` ("" for the first): *n of them.
 * Fewer than `max` means there are no more. */
int dk_ledger_cases(dk_ledger *lg, const char *after, char (*ids)[DK_CASE_MAX + 1], size_t max,
                    size_t *n);

/* ---- many cases at once (a rebuild's folders) ---- */

/* 1 while a thread waits to resize the ledger's map. A resize waits for every read
 * snapshot of this process to end: a thread that holds one (an iterator, a gather) while
 * it waits on another thread must end it when this says so, or the two may wait for each
 * other for good. */
int dk_ledger_resize_wanted(dk_ledger *lg);

typedef struct dk_gather dk_gather;
/* The cases after `after` ("" for the first), in id order, and their records up to seq
 * `upto`: up to `max_cases` (at least 1) cases, and no case begun once `max_records` records are
 * held (a case's records are never split). Cases with no record up to `upto` are left out. One read
 * snapshot, held until dk_gather_close. This lists the cases (the caller may hold a lock while it
 * does, to hand out disjoint runs); dk_gather_read then reads their records, in seq order: forward
 * through the log instead of a search per record. */
int dk_gather_open(dk_ledger *lg, const char *after, size_t max_cases, size_t max_records,
                   uint64_t upto, dk_gather **out);
int dk_gather_read(dk_gather *g);
size_t dk_gather_count(const dk_gather *g);
/* The records of all its cases. */
size_t dk_gather_records_count(const dk_gather *g);
/* 1 if the gather stopped at a limit (more cases may follow its last), 0 at the end. */
int dk_gather_more(const dk_gather *g);
const char *dk_gather_case(const dk_gather *g, size_t i);
/* Case i's records in seq order (after dk_gather_read). */
void dk_gather_records(const dk_gather *g, size_t i, const dk_raw **recs, size_t *n);
/* The seqs of case i's records, in the same order. */
const uint64_t *dk_gather_seqs(const dk_gather *g, size_t i);
/* The system records (ledger.genesis, actor.*) up to `upto`, as one gather of one case
 * whose id is empty: with the case gathers, every record of the ledger. DK_ENOTFOUND if
 * the ledger has no actor history yet (made by an older docket, opened read-only). */
int dk_gather_open_system(dk_ledger *lg, uint64_t upto, dk_gather **out);
/* End the gather's snapshot (its records' pointers with it), keeping its cases; and read
 * the records of cases from..count-1 again in a new snapshot. */
void dk_gather_release(dk_gather *g);
int dk_gather_reread(dk_gather *g, size_t from);
void dk_gather_close(dk_gather *g);

/* ---- the Merkle tree, checkpoints and proofs (RFC 6962 / C2SP) ---- */

/* The checkpoint origin: "docket/<ledger id>". */
int dk_ledger_origin(dk_ledger *lg, char origin[64]);
/* Root of the tree of the first `size` records (size <= head seq). */
int dk_ledger_root(dk_ledger *lg, uint64_t size, uint8_t root[32]);
/* Inclusion proof of record `seq` in the tree of `size` records. */
int dk_ledger_prove_inclusion(dk_ledger *lg, uint64_t seq, uint64_t size, uint8_t proof[][32],
                              size_t *n);
/* Consistency proof between the trees of old_size and new_size records. */
int dk_ledger_prove_consistency(dk_ledger *lg, uint64_t old_size, uint64_t new_size,
                                uint8_t proof[][32], size_t *n);

/* The node key's public half, recorded once (dk_ledger_set_node_key); DK_ENOTFOUND if none. */
int dk_ledger_node_key(dk_ledger *lg, uint8_t pk[DK_PUBKEY_BYTES]);
int dk_ledger_set_node_key(dk_ledger *lg, const uint8_t pk[DK_PUBKEY_BYTES]);
/* Sign a checkpoint of the current head with `node` (which must be the
 * recorded node key) and store it; *note is a malloc'd copy. If the head is
 * already checkpointed, returns that one. */
int dk_ledger_checkpoint(dk_ledger *lg, const dk_key *node, char **note);
/* A stored checkpoint: of tree size `size`, or the latest if size is 0.
 * DK_ENOTFOUND if none. *note is malloc'd. */
int dk_ledger_checkpoint_get(dk_ledger *lg, uint64_t size, char **note);

/* ---- verification ---- */

typedef struct dk_verify_report {
    int ok;
    uint64_t seq;        /* the first bad record, when !ok */
    uint64_t checked;    /* records checked */
    uint64_t signatures; /* signatures checked */
    uint64_t cases;      /* cases whose events were re-checked against the rules */
    int tree_checked;    /* the stored Merkle tree was compared with the records (0: it is
                            not in this docket's format, an older docket's or its format key
                            damaged, and a write open rebuilds it) */
    char reason[256];    /* why it is bad */
    uint64_t notices;    /* records that break a rule added to the append after an older
                            docket accepted them (not damage: see dk_verify_opts.notice) */
} dk_verify_report;

/* A notice's text is at most this long, its NUL included. */
#define DK_NOTICE_MAX 512

typedef struct dk_verify_opts {
    uint64_t from;  /* first seq to check (0/1: all); the records before it are trusted */
    int jobs;       /* cores for signature checks; 0 = every online core */
    int skip_rules; /* 1: skip re-checking the casework rules */
    /* Called once for each record from `from` on that today's append would refuse by a
     * rule a ledger written before it may break (dk__append_rules, dk__undo_allowed_given):
     * its seq and why. Such records stay, fold as they did and are no damage; a person
     * decides whether to void or correct them by new events. Called from the rules
     * pass's threads, one call at a time, in no order. May be NULL. */
    void (*notice)(void *arg, uint64_t seq, const char *why);
    void *notice_arg;
} dk_verify_opts;

/* Walk the chain: record layout, dense seq, strictly increasing time, prev
 * hashes, canonical bodies, every signature against the key its actor held
 * at that point (on `jobs` cores), command-id uniqueness, the stored head,
 * every stored Merkle tree node, and every stored checkpoint (its signature
 * by the node key and its root against the recomputed tree). Then re-check
 * every case's events against the casework rules (schemas, expected
 * versions, permissions with the roles enrolled then, lifecycle, reverts and
 * rollbacks) and compare the stored case states with the folds, counting
 * (and passing to opts->notice) the records that break a rule added since.
 * The first bad record is reported. Returns 0 when it could run (rep->ok says
 * whether the ledger is intact). opts may be NULL. */
int dk_ledger_verify_opts(dk_ledger *lg, const dk_verify_opts *opts, dk_verify_report *rep);
int dk_ledger_verify(dk_ledger *lg, dk_verify_report *rep);

/* ---- backups and restores ---- */

/* The directory a backup or restore stages its copy in, inside the directory it fills;
 * the copy's files are moved out by rename, data.mdb last, each step synced. So a stop
 * at any moment (a fault, SIGKILL, a power cut) leaves either no data.mdb there or a
 * whole one; and the next backup or restore into that directory removes the stage. */
#define DK_BACKUP_STAGE  "backup.partial"
#define DK_RESTORE_STAGE "restore.partial"

/* A hot, consistent copy of the ledger into `dest_dir`, taken while appends go on: one
 * LMDB read snapshot, page for page (mdb_env_copyfd2 without MDB_CP_COMPACT), with the
 * files named in `also` (NULL-terminated, at most 63, may be NULL) that the ledger's directory
 * holds, such as its node key. dest_dir is created, or must be empty or hold only what a stopped
 * backup left; DK_EEXIST if not, or if another backup or restore is filling it. What a
 * failed call made is removed. */
int dk_ledger_backup(dk_ledger *lg, const char *dest_dir, const char *const *also);

/* Install the backup in src_dir (its data.mdb and the files of `also` it holds) into
 * dest_dir (as for a backup), verifying the copy (dk_ledger_verify) before it is moved
 * into place. Returns 0 when the copy could be verified: if rep->ok, it is installed;
 * if not, it is removed, as it is on any error. DK_ENOTFOUND if src_dir holds no backup. */
int dk_ledger_restore(const char *src_dir, const char *dest_dir, const char *const *also,
                      dk_verify_report *rep);

#endif
