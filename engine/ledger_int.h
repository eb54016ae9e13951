/* ledger_int.h - the ledger's private state and LMDB layout, shared by
 * ledger.c (open, append, reads) and verify.c (whole-chain verification). */
#ifndef DOCKET_LEDGER_INT_H
#define DOCKET_LEDGER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <lmdb.h>

#include "docket/case.h"
#include "docket/ledger.h"
#include "docket/lmdbfile.h"
#include "docket/note.h"
#include "engine_int.h"

/* Named databases:
 *   log        seq (be64) -> record bytes               (MDB_APPEND)
 *   cmd        command id (16 bytes) -> seq (be64)
 *   meta       "head" -> seq(8) hash(32) recorded_at(8); "ledger_id"; "name"; "format"
 *   actors     actor id -> struct actor_row (see ledger.c)
 *   cases      case id NUL seq(be64) -> empty (the case's index, one key per record);
 *              case id NUL be64(UINT64_MAX) -> version(8) last_seq(8) packed
 *              dk_case_state (the state row), right after the case's newest record,
 *              so an append dirties one page for both. Case ids hold no NUL
 *              (codec.c), so the keys of two cases cannot interleave.
 *              Ledgers written before this kept them in `by_case` (case id -> seqs,
 *              dupsort) and `case_state`; upgrade.c moves them on a write open.
 *   slots      interviewer NUL slot_start(be64) -> slot_end(be64) case id
 *   tree       level(1) index(be64) -> hash of that complete Merkle subtree
 *   checkpoints tree size(be64) -> the signed checkpoint note
 */
#define DK__FORMAT "docket-ledger/1"

typedef struct dk__pending dk__pending;

struct dk_ledger {
    MDB_env *env;
    dk_file_id file; /* data.mdb as opened (dk_ledger_file_current) */
    dk_file_id lock; /* lock.mdb as opened (all zero without a lock: read-only, no_lock) */
    MDB_dbi log, cmd, meta, actors, cases, slots, tree, checkpoints, actor_log;
    int read_only;
    unsigned max_batch;
    /* Held shared by every transaction in this process and exclusively while
     * the map is resized (LMDB requires no live transaction then). */
    pthread_rwlock_t txn_lock;
    atomic_int resize_wanted; /* threads waiting for txn_lock to resize the map */
    atomic_int map_lost;      /* a resize failed: LMDB has no map, so no transaction */
    /* Signature verification: a caller verifies in its own thread while fewer
     * than `cores` verifications run; beyond that its append goes to a pool of
     * `cores` threads that drain the queue without sleeping between events. */
    int cores;
    int verifying; /* verifications running, inline or in the pool (under mu) */
    dk__pending *vhead, *vtail;
    pthread_cond_t vcv;
    pthread_t *pool;
    int pool_running;
    /* The writer's queue. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dk__pending *qhead, *qtail;
    int stopping;
    /* A thread is committing a batch: the writer thread, or a caller of
     * dk_ledger_append committing its own append while nothing else waits. */
    int committing;
    int writer_running;
    pthread_t writer;
    struct {
        uint64_t seq;
        int64_t recorded_at;
        uint8_t hash[DK_HASH_BYTES];
    } written; /* the head the writer committed last (writer thread only) */
    /* `actors` rows the writer found equal to their actor's history, by id (writer only:
     * one batch commits at a time); a row is trusted only while its fields are these. */
    dk_actor_info *trusted;
    pthread_mutex_t hook_mu; /* held while the hook is set and while it runs */
    dk_commit_fn on_commit;  /* called by the writer after each commit */
    void *on_commit_ud;
};

/* Translate an LMDB return code into a DK_E* code with a message. */
int dk__mdb_err(int rc, const char *what);
/* The same for a failed commit in `env`, with dk_lmdb_space_note's word on a full disk. */
int dk__commit_err(MDB_env *env, int rc, const char *what);
/* Run fn in a write transaction (not the writer thread's: LMDB serialises them) under
 * txn_lock: committed if it returns 0, else aborted and its code returned as it is. */
int dk__write_txn(dk_ledger *lg, int (*fn)(dk_ledger *, MDB_txn *, void *), void *arg);
/* A format mark in meta: 1 if `key` holds exactly `value`, 0 if not or absent, or a
 * DK_E* code; and setting one (an LMDB code). */
int dk__meta_is(dk_ledger *lg, MDB_txn *txn, const char *key, const char *value);
int dk__meta_set(dk_ledger *lg, MDB_txn *txn, const char *key, const char *value);
/* DK_EIO once a failed resize has left LMDB with no map (then no LMDB call may be made on
 * the environment), else 0. Check it with txn_lock held, before any LMDB call that does
 * not go through dk__read_begin or dk__write_txn. */
int dk__map_lost(dk_ledger *lg);
/* Begin/end a read transaction under txn_lock. */
int dk__read_begin(dk_ledger *lg, MDB_txn **txn);
void dk__read_end(dk_ledger *lg, MDB_txn *txn);

#endif

/* What an actor or genesis event changes in the actor table. */
enum { DK__ACT_NONE, DK__ACT_GENESIS, DK__ACT_ENROLL, DK__ACT_ROTATE, DK__ACT_REVOKE };
typedef struct dk__actor_change {
    int kind;
    char id[DK_ACTOR_MAX + 1];
    uint8_t pubkey[DK_PUBKEY_BYTES];
    unsigned roles;
} dk__actor_change;

/* Parse the actor-table effect of `ev` (kind DK__ACT_NONE for case events).
 * DK_ESCHEMA naming the field if an actor event's data is malformed. */
int dk__actor_change_parse(const dk_event *ev, dk__actor_change *c);
/* Apply a parsed change (of the record at `seq`) to the actor's row. */
void dk__actor_apply(dk_actor_info *a, const dk__actor_change *c, uint64_t seq);

/* ---- actorlog.c: each actor's history (the seqs of the events about it) ---- */

/* Index the actor event at `seq` about `id`, inside the writer's txn. */
int dk__actorlog_add(dk_ledger *lg, MDB_txn *txn, const char *id, uint64_t seq);
/* Build the index from the log if it is empty (a ledger made before it). */
int dk__actorlog_backfill(dk_ledger *lg);

/* ---- casestore.c: keys of the cases database ---- */

#define DK__CASE_KEY_MAX (DK_CASE_MAX + 9)
/* The state row's key (case id NUL be64(UINT64_MAX)), and a record's index key (case
 * id NUL be64 seq); their lengths. */
size_t dk__case_key(uint8_t *key, const char *case_id, size_t n);
size_t dk__case_seq_key(uint8_t *key, const char *case_id, size_t n, uint64_t seq);
/* Split a cases key: the id's length, and *seq (an index key) or 0 (a state row).
 * -1 if the key is neither. */
int dk__case_key_parse(const MDB_val *k, size_t *id_len, uint64_t *seq);
/* 1 if k is a key of case (case_id, n bytes): *seq is then its record's seq, or 0 for the
 * state row; 0 if it is another case's key or malformed. */
int dk__case_key_of(const MDB_val *k, const void *case_id, size_t n, uint64_t *seq);
/* LMDB's default order with 8-byte keys compared as integers (ledger.c). */
int dk__cmp_be64(const MDB_val *a, const MDB_val *b);
/* Double the map after MDB_MAP_FULL; the caller holds no transaction (ledger.c). */
int dk__ledger_grow_map(dk_ledger *lg);

/* ---- upgrade.c: a ledger written by an older docket, moved to this layout ---- */

/* On a write open: move `by_case` and `case_state` into `cases` in one transaction
 * (LMDB spills a large one to disk; the map grows if it fills), which also marks the
 * layout (meta "cases_layout") and leaves a plain record named `by_case` in LMDB's main
 * database, so an older docket's open fails instead of writing to the old layout.
 * Another process opening meanwhile waits for it. 0 or a DK_E* code. */
int dk__upgrade_cases(dk_ledger *lg);
/* The layout mark and the `by_case` tombstone, inside `txn` (a new ledger's). LMDB code. */
int dk__cases_mark(dk_ledger *lg, MDB_txn *txn);
/* On a write open of a ledger whose slot index is not marked as rebuilt (meta
 * "slots_index"): rebuild it from the state rows and mark it, in one transaction. */
int dk__upgrade_slots(dk_ledger *lg);
/* Mark the slot index as complete (a new ledger's, inside `txn`). LMDB code. */
int dk__slots_mark(dk_ledger *lg, MDB_txn *txn);
/* 1 if the ledger still has the layout before `cases` (a read-only open refuses it). */
int dk__older_case_layout(dk_ledger *lg, MDB_txn *txn);

/* ---- casestore.c: the writer's casework checks, inside its transaction ---- */

/* Everything the case rules need about one append. */
typedef struct dk__case_append {
    const dk_event *ev;
    uint64_t seq;
    int64_t recorded_at;
    const uint8_t *body;
    size_t body_len;
    unsigned author_roles;
    size_t ncos;                          /* co-signers */
    const char *cosigners[DK_SIGS_MAX];   /* their ids */
    unsigned cosigner_roles[DK_SIGS_MAX]; /* their roles now */
} dk__case_append;

#define DK__MAPFULL (-1000) /* internal: LMDB's map is full; grow it and retry */

/* Check a case event against its case (permissions, four eyes, lifecycle,
 * revert targets, interviewer double-booking) and, if it passes, write the
 * new case state and slot index. Returns 0; or 1 if the event is rejected,
 * with *code and dk_errmsg() saying why; or a DK_E* code (or DK__MAPFULL) for
 * a storage failure, which fails (or retries) the whole batch.
 * *version receives the case's version before this event. */
int dk__case_check_apply(dk_ledger *lg, MDB_txn *txn, const dk__case_append *a, uint64_t *version,
                         int *code);
/* Parse a stored case_state row (len 0: none): its header version and last seq, and 1
 * if it holds a state this build reads (into *st), 0 if another layout (an older
 * docket's: re-folded), -1 if it is malformed. */
int dk__case_row_decode(const void *row, size_t len, uint64_t *version, uint64_t *last_seq,
                        dk_case_state *st);
/* Which actor was ever given `pubkey` (enrolled or rotated to it, revoked or re-keyed
 * since or not), by the actor history: 0 with its id in `who`, DK_ENOTFOUND, or <0. One
 * key, one actor, once: else whoever holds it signs as two, or a retired key signs again. */
int dk__key_holder(dk_ledger *lg, MDB_txn *txn, const uint8_t *pubkey, char who[DK_ACTOR_MAX + 1]);
/* Fold actor `id`'s history (its events listed in actor_log) before record `before`, in
 * `txn`: the key, roles and revocation its signed events gave it. DK_ENOTFOUND if none. */
int dk__actor_fold(dk_ledger *lg, MDB_txn *txn, const char *id, uint64_t before,
                   dk_actor_info *out);
/* An `actors` row (key: the id; value: pubkey, roles, revoked, enrolled seq) into *a;
 * DK_ECORRUPT naming what is wrong if the key is no actor id or the row is damaged. */
int dk__actor_row_decode(const MDB_val *k, const MDB_val *v, dk_actor_info *a);
/* What an `actors` row is held to, by the writer (trusting it) and by verify: the same id,
 * key, roles, revocation and enrolling record as the actor's history gives. 1 if a and b
 * agree on them. */
int dk__actor_same_grant(const dk_actor_info *a, const dk_actor_info *b);
/* casestore.c: the actor an event makes its case's assignee (case.assigned's caseworker,
 * or the new value of a correction of the assignee): 1 and its id in `out`; else 0. */
int dk__new_assignee(const dk_event *ev, char out[DK_ACTOR_MAX + 1]);
/* May the actor `id`, as it stood (`a`; NULL if it was not enrolled), do `job` (named in
 * the message, as DK__ASSIGNEE_JOB): is it an enrolled, unrevoked caseworker or senior
 * caseworker? 0, or DK_EDENIED naming it. The writer's rule for assignees and
 * interviewers, and verify's for assignees. */
int dk__assignable(const char *id, const dk_actor_info *a, const char *job);
#define DK__ASSIGNEE_JOB    "a case is assigned to"
#define DK__INTERVIEWER_JOB "an interview is held by"
/* append_rules.c: what the rules an append is held to read beside the case. The writer
 * reads its transaction, verify its snapshot's actor history and the case's records.
 * actor: `id` as it stood before record `seq` (0, DK_ENOTFOUND if never enrolled, or <0);
 * event: record `seq` of the case being checked, its event and recorded time (0,
 * DK_ENOTFOUND, or <0). */
typedef struct dk__lookup {
    void *ctx;
    int (*actor)(void *ctx, const char *id, uint64_t seq, dk_actor_info *out);
    int (*event)(void *ctx, uint64_t seq, dk_event *ev, int64_t *recorded_at);
} dk__lookup;
/* dk__assignable for actor `id` as it stood before record `seq`, read through `lk`: 0, 1
 * (not: *code and the message say why) or <0. */
int dk__staff_at(const dk__lookup *lk, const char *id, uint64_t seq, const char *job, int *code);
/* The rules a new event (not an undo: dk__undo_judge) is held to at append that a
 * ledger written before them may break, so that the fold and verify's rules pass do not
 * apply them: dk__case_check_new; the interviewer a booking or a move leaves (`after`) is
 * an enrolled, unrevoked caseworker as of `seq`; and an event acting on an earlier one (a
 * correction on its error report, a cancellation on the grant whose leave `before` holds)
 * takes effect no earlier. The writer refuses by them; verify lists what breaks them.
 * 0, 1 (broken: *code and the message say why) or <0. */
int dk__append_rules(const dk__lookup *lk, uint64_t seq, int64_t recorded_at, const dk_event *ev,
                     const dk_case_state *before, const dk_case_state *after, int *code);
/* The events a case's fold leaves in force that break dk__append_rules, or their author's
 * right to them as the case then stood, in seq order (verify keeps them as it walks). */
typedef struct dk__breaks {
    uint64_t *seq;
    size_t n, cap;
} dk__breaks;
int dk__breaks_add(dk__breaks *b, uint64_t seq); /* 0 or DK_ENOMEM */
/* An undo's fold, observed (dk__undo_observe as the fold's observer): `had` lists what
 * breaks those rules in the case's fold without the undo (NULL: this is that fold);
 * the first event this fold leaves in force that breaks a rule where `had` does not list
 * it is kept (seq, type, why). With `now`, this fold's breaks are collected there (verify
 * keeps them for the case's next undo). */
typedef struct dk__undo_pass {
    const dk__lookup *lk;
    const dk__breaks *had;
    dk__breaks *now;
    uint64_t seq;
    char type[DK_TYPE_MAX + 1];
    char why[DK_ERRMSG_MAX];
} dk__undo_pass;
int dk__undo_observe(void *arg, const dk_record *rec, const dk_event *ev,
                     const dk_case_state *before, const dk_case_state *after);
/* The rules an undo (a revert or rollback `undo` at `seq`; before/after: the case around
 * it; `p`: its fold observed) is held to: no event it leaves in force breaks
 * those rules where it did not without the undo (a cancellation it makes come after
 * a booking, or act on another grant; a caseworker's decision on a case it leaves assigned
 * to another), and an interview booking whose slot has not ended by `recorded_at`, or an
 * assignee a revert brings back, is an enrolled, unrevoked caseworker now. 0, 1 (broken:
 * *code and the message say why) or <0. */
int dk__undo_verdict(const dk__undo_pass *p, uint64_t seq, int64_t recorded_at,
                     const dk_event *undo, const dk_case_state *before, const dk_case_state *after,
                     int *code);
/* The writer's judge of an undo: recs are the case's records with the undo (`undo`) last,
 * `before` the case without it. The case is folded without the undo and with it, once
 * each (into *st), then dk__undo_allowed_given and dk__undo_verdict judge it. 0; 1
 * (refused: *code and the message say why); or <0: a fold that fails (*bad_seq: the event
 * it leaves invalid), or a lookup's or memory's error (*bad_seq 0). */
int dk__undo_judge(const dk__lookup *lk, const dk_event *undo, const dk_record *recs, size_t n,
                   const dk_case_state *before, dk_case_state *st, uint64_t *bad_seq, int *code);
/* verify.c: mark the report bad at `seq` with a reason; returns 1. */
int dk__verify_bad(dk_verify_report *rep, uint64_t seq, const char *fmt, ...) DK__PRINTF(3, 4);
/* verify_rules.c: re-check every case's events against the casework rules,
 * with each signer's roles as enrolled then, and compare the stored state
 * rows, on `jobs` cores. Cases whose last event is before `from` are
 * skipped. The lowest failing seq is reported; the records from `from` on
 * that break a rule added to the append since are counted in rep->notices
 * and passed to o->notice. 0 or 1 (bad, rep says why) or <0. */
int dk__verify_rules(dk_ledger *lg, MDB_txn *txn, uint64_t from, int jobs, const dk_verify_opts *o,
                     dk_verify_report *rep);
/* casestore.c: the slot index key (interviewer NUL be64(start, sign-flipped)), its
 * length; and whether two states hold the same slot (or both none). */
size_t dk__slot_key(uint8_t *key, const char *interviewer, int64_t start);
/* Put st's booking for case (case_id, n bytes) into the slot index: key as above, value
 * be64(slot end) then the case id. An LMDB code. */
int dk__slot_put(dk_ledger *lg, MDB_txn *txn, const dk_case_state *st, const char *case_id,
                 size_t n);
int dk__same_slot(const dk_case_state *a, const dk_case_state *b);
/* verify_slots.c: the interviewer double-booking check across cases. Each case's slot
 * changes, in seq order, as its events left them (active 0: it gave its slot up). */
typedef struct dk__slot_move {
    uint64_t seq;
    int active;
    char interviewer[DK_ACTOR_MAX + 1];
    int64_t start, end;
} dk__slot_move;
typedef struct dk__slots dk__slots;
int dk__slots_open(dk__slots **out);
void dk__slots_close(dk__slots *s);
/* Add one case's moves; case_id is borrowed (the verify's snapshot) until the check. */
int dk__slots_add(dk__slots *s, const dk__slot_move *moves, size_t n, const char *case_id,
                  size_t case_len);
/* No case took a slot overlapping another case's held one, and the slot index holds
 * exactly the bookings held at the end. 0, 1 (rep says where), or <0. */
int dk__slots_check(dk_ledger *lg, MDB_txn *txn, dk__slots *s, uint64_t head,
                    dk_verify_report *rep);
/* The case's version (events so far) from its state row; 0 if none. */
int dk__case_version(dk_ledger *lg, MDB_txn *txn, const char *case_id, uint64_t *version);

/* ---- tree.c: the Merkle tree over the log, inside transactions ---- */

/* Add the leaf for `seq` (its record's leaf hash) inside the writer's txn.
 * 0, DK__MAPFULL, or a DK_E* code. */
int dk__tree_append(dk_ledger *lg, MDB_txn *txn, uint64_t seq, const uint8_t leaf[32]);
/* Build any missing leaves (a ledger made before the tree existed), after
 * dropping a tree kept in an older key order. */
int dk__tree_backfill(dk_ledger *lg);
/* On a read-only open: ignore (lg->tree = 0) a tree in an older key order. */
int dk__tree_check_format(dk_ledger *lg);
/* Root of the first `size` leaves within txn. */
int dk__tree_root(dk_ledger *lg, MDB_txn *txn, uint64_t size, uint8_t root[32]);
/* One stored node (a complete subtree); DK_ECORRUPT if missing. */
int dk__tree_node(dk_ledger *lg, MDB_txn *txn, unsigned level, uint64_t index, uint8_t out[32]);
/* The origin every checkpoint names, "docket/<ledger id>", from meta inside txn;
 * DK_ECORRUPT if the ledger has no id. */
int dk__ledger_origin_in(dk_ledger *lg, MDB_txn *txn, char origin[DK_ORIGIN_MAX + 1]);
/* The frontier of the first `size` leaves, from the stored tree's nodes (verify --from,
 * and the check before a checkpoint is signed). */
int dk__tree_frontier(dk_ledger *lg, MDB_txn *txn, uint64_t size, dk__frontier *f);
