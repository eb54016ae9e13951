/* casestore.c - the writer's casework checks inside its transaction: each
 * case's folded state kept inline, revert targets, re-folds for undo and
 * rollback, and the interviewer slot index that forbids double-booking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

/* A state row: version(8) last_seq(8) then the state packed (dk_case_state_pack, its
 * layout tag first): ~100 bytes for a typical case where the struct is 1,456, so a
 * commit dirties fewer pages. Rows written by earlier dockets hold the raw struct after a tag of
 * their own (RAW_LAYOUT) and are still read; a row of any other layout is re-folded. */
#define ROW_HEAD   16
#define RAW_LAYOUT ((uint32_t)(0xdc000000u | sizeof(dk_case_state)))
#define RAW_BYTES  (ROW_HEAD + 4 + sizeof(dk_case_state))

/* An LMDB failure as a DK code; MAP_FULL stays distinct so the batch retries. */
static int storage(int mdb_rc, const char *what)
{
    return mdb_rc == MDB_MAP_FULL ? DK__MAPFULL : dk__mdb_err(mdb_rc, what);
}

/* ---- keys of the cases database ---- */

size_t dk__case_key(uint8_t *key, const char *case_id, size_t n)
{
    return dk__case_seq_key(key, case_id, n, UINT64_MAX);
}

size_t dk__case_seq_key(uint8_t *key, const char *case_id, size_t n, uint64_t seq)
{
    memcpy(key, case_id, n);
    key[n] = 0;
    dk_put_be64(key + n + 1, seq);
    return n + 9;
}

int dk__case_key_parse(const MDB_val *k, size_t *id_len, uint64_t *seq)
{
    const uint8_t *nul = k->mv_size ? memchr(k->mv_data, 0, k->mv_size) : NULL;
    if (nul == NULL)
        return -1;
    size_t n = (size_t)(nul - (const uint8_t *)k->mv_data);
    if (n > DK_CASE_MAX || k->mv_size != n + 9)
        return -1;
    *id_len = n;
    *seq = dk_get_be64(nul + 1);
    if (*seq == 0)
        return -1;
    if (*seq == UINT64_MAX)
        *seq = 0; /* the state row */
    return 0;
}

int dk__case_key_of(const MDB_val *k, const void *case_id, size_t n, uint64_t *seq)
{
    size_t idn;
    return dk__case_key_parse(k, &idn, seq) == 0 && idn == n && memcmp(k->mv_data, case_id, n) == 0;
}

static int get_row(dk_ledger *lg, MDB_txn *txn, const char *case_id, MDB_val *v)
{
    uint8_t key[DK__CASE_KEY_MAX];
    MDB_val k = {dk__case_key(key, case_id, strlen(case_id)), key};
    return mdb_get(txn, lg->cases, &k, v);
}

int dk__case_version(dk_ledger *lg, MDB_txn *txn, const char *case_id, uint64_t *version)
{
    MDB_val v;
    *version = 0;
    int rc = get_row(lg, txn, case_id, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return dk__mdb_err(rc, "cannot read case state");
    if (v.mv_size < 8)
        return dk__fail(DK_ECORRUPT, "case state of '%s' is truncated", case_id);
    *version = dk_get_be64(v.mv_data);
    return 0;
}

/* The case's records, in seq order, borrowed from txn; *recs is malloc'd with
 * room for one more (the append being checked). */
static int case_records(dk_ledger *lg, MDB_txn *txn, const char *case_id, dk_record **recs,
                        size_t *n)
{
    MDB_cursor *cur;
    uint8_t key[DK__CASE_KEY_MAX];
    size_t idn = strlen(case_id);
    MDB_val k = {dk__case_seq_key(key, case_id, idn, 1), key}, v;
    uint64_t seq;
    size_t cap = 16;
    *n = 0;
    *recs = malloc(cap * sizeof **recs);
    if (*recs == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    int rc = mdb_cursor_open(txn, lg->cases, &cur);
    if (rc) {
        free(*recs);
        return dk__mdb_err(rc, "cannot open a cursor");
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!dk__case_key_of(&k, case_id, idn, &seq) || seq == 0) {
            rc = MDB_NOTFOUND; /* past the case's index: its state row, or another case */
            break;
        }
        MDB_val lk = {8, (uint8_t *)k.mv_data + idn + 1}, lv;
        if ((rc = mdb_get(txn, lg->log, &lk, &lv)) != 0)
            break;
        if (*n + 2 > cap) {
            dk_record *more = realloc(*recs, 2 * cap * sizeof **recs);
            if (more == NULL) {
                rc = MDB_PANIC;
                break;
            }
            *recs = more;
            cap *= 2;
        }
        if (dk_record_decode(lv.mv_data, lv.mv_size, &(*recs)[*n]) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    free(*recs);
    *recs = NULL;
    return dk__mdb_err(rc, "cannot read the case's records");
}

/* The undo's judge (refold): the rules, the lookups and the case before the undo. */
typedef struct undo_check {
    const dk_event *ev;
    const dk__lookup *lk;
    const dk_case_state *old;
} undo_check;

/* Fold the case's stored records plus, if `extra`, one more. With `undo` (the revert or
 * rollback `extra` holds), one its rules refuse (dk__undo_judge) sets *refused and returns
 * its code. */
static int refold(dk_ledger *lg, MDB_txn *txn, const char *case_id, const dk_record *extra,
                  dk_case_state *st, uint64_t *bad_seq, int *in_storage, const undo_check *undo,
                  int *refused)
{
    dk_record *recs;
    size_t n;
    *in_storage = 0;
    int rc = case_records(lg, txn, case_id, &recs, &n);
    if (rc) {
        *in_storage = 1;
        return rc;
    }
    if (extra)
        recs[n++] = *extra;
    int code = 0;
    if (undo == NULL) {
        rc = dk_case_fold(recs, n, st, NULL, NULL, bad_seq);
    } else if ((rc = dk__undo_judge(undo->lk, undo->ev, recs, n, undo->old, st, bad_seq, &code)) ==
               1) {
        *refused = 1;
        rc = code;
    } else if (rc < 0 && *bad_seq == 0) {
        *in_storage = rc != DK_ENOMEM; /* a lookup's */
    }
    free(recs);
    return rc;
}

static int load_state(dk_ledger *lg, MDB_txn *txn, const char *case_id, dk_case_state *st)
{
    MDB_val v;
    memset(st, 0, sizeof *st);
    int rc = get_row(lg, txn, case_id, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return storage(rc, "cannot read case state");
    uint64_t version, last;
    if (dk__case_row_decode(v.mv_data, v.mv_size, &version, &last, st) == 1)
        return 0;
    /* Another layout (an older docket): rebuild the state from the events. */
    uint64_t bad = 0;
    int in_storage;
    rc = refold(lg, txn, case_id, NULL, st, &bad, &in_storage, NULL, NULL);
    if (rc && !in_storage)
        return dk__fail(DK_ECORRUPT, "case '%s' does not fold (seq %llu): %s", case_id,
                        (unsigned long long)bad, dk_errmsg());
    return rc;
}

static int store_state(dk_ledger *lg, MDB_txn *txn, const char *case_id, const dk_case_state *st)
{
    uint8_t row[ROW_HEAD + DK_CASE_STATE_PACKED_MAX];
    dk_put_be64(row, st->version);
    dk_put_be64(row + 8, st->last_seq);
    size_t n = dk_case_state_pack(st, row + ROW_HEAD, sizeof row - ROW_HEAD);
    uint8_t key[DK__CASE_KEY_MAX];
    MDB_val k = {dk__case_key(key, case_id, strlen(case_id)), key}, v = {ROW_HEAD + n, row};
    return mdb_put(txn, lg->cases, &k, &v, 0);
}

/* ---- interviewer slots ---- */

size_t dk__slot_key(uint8_t *key, const char *interviewer, int64_t start)
{
    size_t n = strlen(interviewer);
    memcpy(key, interviewer, n);
    key[n] = 0;
    dk_put_be64(key + n + 1, (uint64_t)start ^ (1ull << 63)); /* sortable signed */
    return n + 9;
}

/* Is [start, end) free for the interviewer? 0 free, 1 taken, 2 the index is damaged
 * (message set), <0 error.
 * The writer never lets an interviewer's bookings overlap, so in start order their ends
 * ascend too: only the last bookings starting before `end` can reach past `start`. From
 * there the search walks back, past the case's own booking (which a move gives up), to
 * the first other one: it overlaps or nothing does. O(log n) in the interviewer's
 * bookings, where a forward scan from the first was O(n) per booking. */
static int slot_taken(dk_ledger *lg, MDB_txn *txn, const dk_case_state *st, const char *case_id)
{
    MDB_cursor *cur;
    uint8_t key[DK_ACTOR_MAX + 9];
    size_t plen = strlen(st->interview.interviewer) + 1, clen = strlen(case_id);
    MDB_val k = {dk__slot_key(key, st->interview.interviewer, st->interview.slot_end), key}, v;
    int rc = mdb_cursor_open(txn, lg->slots, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    /* the first key at or after (interviewer, end); the bookings before it start earlier */
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    int taken = 0;
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        if (k.mv_size != plen + 8 || memcmp(k.mv_data, key, plen) != 0)
            break; /* before this interviewer's first booking */
        /* the value is an end time and a case id: shorter is damage */
        if (v.mv_size < 8) {
            dk__fail(DK_ECORRUPT,
                     "the slot index's entry for interviewer '%s' is damaged (%zu bytes); "
                     "'docket verify' names what else is",
                     st->interview.interviewer, v.mv_size);
            taken = 2;
            break;
        }
        if (v.mv_size - 8 == clen && memcmp((const char *)v.mv_data + 8, case_id, clen) == 0)
            continue; /* the case's own current slot */
        int64_t s = (int64_t)(dk_get_be64((uint8_t *)k.mv_data + plen) ^ (1ull << 63));
        int64_t e = (int64_t)dk_get_be64(v.mv_data);
        if (e > st->interview.slot_start) {
            char a[DK_TIME_LEN], b[DK_TIME_LEN];
            dk_time_format(s, a);
            dk_time_format(e, b);
            dk__fail(DK_ECONFLICT,
                     "interviewer '%s' is already booked from %s to %s on case '%.*s' (case '%s' "
                     "asked for an overlapping slot)",
                     st->interview.interviewer, a, b, (int)(v.mv_size - 8),
                     (const char *)v.mv_data + 8, case_id);
            taken = 1;
        }
        break;
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return dk__mdb_err(rc, "cannot read the slot index");
    return taken;
}

int dk__same_slot(const dk_case_state *a, const dk_case_state *b)
{
    return a->interview.active == b->interview.active &&
           (!a->interview.active ||
            (a->interview.slot_start == b->interview.slot_start &&
             a->interview.slot_end == b->interview.slot_end &&
             strcmp(a->interview.interviewer, b->interview.interviewer) == 0));
}

int dk__slot_put(dk_ledger *lg, MDB_txn *txn, const dk_case_state *st, const char *case_id,
                 size_t n)
{
    uint8_t key[DK_ACTOR_MAX + 9], val[8 + DK_CASE_MAX];
    dk_put_be64(val, (uint64_t)st->interview.slot_end);
    memcpy(val + 8, case_id, n);
    MDB_val k = {dk__slot_key(key, st->interview.interviewer, st->interview.slot_start), key},
            v = {8 + n, val};
    return mdb_put(txn, lg->slots, &k, &v, 0);
}

/* Move the case's entry in the slot index from old's slot to st's. */
static int update_slots(dk_ledger *lg, MDB_txn *txn, const dk_case_state *old,
                        const dk_case_state *st, const char *case_id, int *code)
{
    if (dk__same_slot(old, st))
        return 0;
    uint8_t key[DK_ACTOR_MAX + 9];
    int rc;
    /* Check before touching the index: a refused move keeps the old slot. */
    if (st->interview.active && (rc = slot_taken(lg, txn, st, case_id)) != 0) {
        if (rc != 1 && rc != 2)
            return rc;
        *code = rc == 2 ? DK_ECORRUPT : DK_ECONFLICT;
        return 1; /* refused, its message set */
    }
    if (old->interview.active) {
        MDB_val k = {dk__slot_key(key, old->interview.interviewer, old->interview.slot_start), key};
        rc = mdb_del(txn, lg->slots, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return storage(rc, "cannot update the slot index");
    }
    if (!st->interview.active)
        return 0;
    rc = dk__slot_put(lg, txn, st, case_id, strlen(case_id));
    return rc ? storage(rc, "cannot update the slot index") : 0;
}

/* The record at `seq` and its event, decoded in place. 0, MDB_NOTFOUND, or <0. */
static int read_event(dk_ledger *lg, MDB_txn *txn, uint64_t seq, dk_record *rec, dk_event *ev)
{
    uint8_t key[8];
    dk_put_be64(key, seq);
    MDB_val k = {8, key}, v;
    int rc = mdb_get(txn, lg->log, &k, &v);
    if (rc == MDB_NOTFOUND)
        return rc;
    if (rc)
        return storage(rc, "cannot read a record");
    if (dk_record_decode(v.mv_data, v.mv_size, rec) != 0 ||
        dk_event_decode_stored(rec->body, rec->body_len, ev) != 0)
        return dk__fail(DK_ECORRUPT, "record %llu does not decode", (unsigned long long)seq);
    return 0;
}

/* ---- reverts ---- */

/* The type of the event a revert targets, after checking it is on this case,
 * earlier, and has the hash the revert names. 0, 1 (rejected) or <0. */
static int revert_target(dk_ledger *lg, MDB_txn *txn, const dk__case_append *a, char *type,
                         size_t cap, int *code)
{
    const char *s;
    size_t n;
    uint8_t want[DK_HASH_BYTES], got[DK_HASH_BYTES];
    char hex[2 * DK_HASH_BYTES + 1];
    /* target_seq is a positive integer: the schema check passed */

    uint64_t target = 0;
    int rc = dk__data_u64(a->ev->data, a->ev->data_len, "target_seq", &target);
    if (rc == 0)
        rc = dk__data_str(a->ev->data, a->ev->data_len, "target_hash", &s, &n);
    if (rc || n != 2 * DK_HASH_BYTES) {
        *code = DK_ESCHEMA;
        dk__fail(DK_ESCHEMA, "event.reverted needs data.target_seq and data.target_hash");
        return 1;
    }
    memcpy(hex, s, n);
    hex[n] = 0;
    size_t hl;
    dk_hex_decode(hex, want, sizeof want, &hl);
    dk_record rec;
    dk_event ev;
    *code = DK_ENOTFOUND;
    rc = target < a->seq ? read_event(lg, txn, target, &rec, &ev) : MDB_NOTFOUND;
    if (rc == MDB_NOTFOUND) {
        dk__fail(DK_ENOTFOUND, "event.reverted: there is no earlier record with seq %llu",
                 (unsigned long long)target);
        return 1;
    }
    if (rc)
        return rc;
    if (strcmp(ev.case_id, a->ev->case_id) != 0) {
        *code = DK_EINVAL;
        dk__fail(DK_EINVAL, "event.reverted: seq %llu is not an event of case '%s'",
                 (unsigned long long)target, a->ev->case_id);
        return 1;
    }
    dk_leaf_hash(rec.raw, rec.raw_len, got);
    if (memcmp(got, want, DK_HASH_BYTES) != 0) {
        *code = DK_EINVAL;
        dk__fail(DK_EINVAL, "event.reverted: target_hash is not the hash of seq %llu",
                 (unsigned long long)target);
        return 1;
    }
    /* an undo of an undo acts on what that one undid: follow the chain to its end (each
     * link was checked when it was appended: same case, earlier, its hash) */
    while (strcmp(ev.type, "event.reverted") == 0) {
        uint64_t next = 0;
        if (dk__data_u64(ev.data, ev.data_len, "target_seq", &next) != 0 || next >= target)
            return dk__fail(DK_ECORRUPT, "record %llu, an undo, names no earlier target",
                            (unsigned long long)target);
        target = next;
        if ((rc = read_event(lg, txn, target, &rec, &ev)) != 0)
            return rc == MDB_NOTFOUND ? dk__fail(DK_ECORRUPT,
                                                 "the undo chain names missing "
                                                 "record %llu",
                                                 (unsigned long long)target)
                                      : rc;
    }
    snprintf(type, cap, "%s", ev.type);
    return 0;
}

/* ---- assignees ---- */

int dk__new_assignee(const dk_event *ev, char out[DK_ACTOR_MAX + 1])
{
    const char *s = NULL, *f = NULL;
    size_t n = 0, fl = 0;
    if (strcmp(ev->type, "case.assigned") == 0)
        dk__data_str(ev->data, ev->data_len, "caseworker", &s, &n);
    else if (strcmp(ev->type, "status.corrected") == 0 &&
             dk__data_str(ev->data, ev->data_len, "field", &f, &fl) == 0 && fl == 8 &&
             memcmp(f, "assignee", 8) == 0)
        dk__data_str(ev->data, ev->data_len, "to", &s, &n);
    if (s == NULL || n == 0 || n > DK_ACTOR_MAX)
        return 0; /* the schema refuses those */
    memcpy(out, s, n);
    out[n] = 0;
    return 1;
}

int dk__assignable(const char *id, const dk_actor_info *a, const char *job)
{
    if (a == NULL || a->revoked)
        return dk__fail(DK_EDENIED, "'%s' is %s: %s an enrolled caseworker", id,
                        a ? "revoked" : "not an enrolled actor", job);
    if (!(a->roles & (DK_ROLE_CASEWORKER | DK_ROLE_SENIOR_CASEWORKER)))
        return dk__fail(DK_EDENIED, "'%s' is not a caseworker: %s one", id, job);
    return 0;
}

/* Is the event's new assignee, if it names one, an actor who may be given cases? 0, 1
 * (rejected) or <0. (helper-54's review: any well-formed id was taken, `admin`, an
 * auditor, or no one enrolled, and the case could then not be decided by its assignee.) */
static int check_assignee(const dk__lookup *lk, const dk__case_append *a, int *code)
{
    char id[DK_ACTOR_MAX + 1];
    if (!dk__new_assignee(a->ev, id))
        return 0;
    return dk__staff_at(lk, id, a->seq, DK__ASSIGNEE_JOB, code);
}

/* ---- the append rules' lookups, in the writer's transaction ---- */

typedef struct in_txn {
    dk_ledger *lg;
    MDB_txn *txn;
} in_txn;

static int txn_actor(void *ctx, const char *id, uint64_t seq, dk_actor_info *out)
{
    in_txn *t = ctx;
    return dk__actor_fold(t->lg, t->txn, id, seq, out);
}

static int txn_event(void *ctx, uint64_t seq, dk_event *ev, int64_t *recorded_at)
{
    in_txn *t = ctx;
    dk_record rec;
    int rc = read_event(t->lg, t->txn, seq, &rec, ev);
    if (rc == MDB_NOTFOUND)
        return DK_ENOTFOUND;
    *recorded_at = rec.recorded_at;
    return rc;
}

/* ---- the check ---- */

int dk__case_check_apply(dk_ledger *lg, MDB_txn *txn, const dk__case_append *a, uint64_t *version,
                         int *code)
{
    dk_case_state old, st;
    char target_type[DK_TYPE_MAX + 1] = "";
    const dk_event *ev = a->ev;
    int rc = load_state(lg, txn, ev->case_id, &old);
    if (rc)
        return rc;
    *version = old.version;
    int revert = strcmp(ev->type, "event.reverted") == 0;
    int rollback = strcmp(ev->type, "case.rolled_back") == 0;
    if (revert && (rc = revert_target(lg, txn, a, target_type, sizeof target_type, code)) != 0)
        return rc;
    if (ev->has_expect && ev->expect != old.version) {
        *code = DK_ECONFLICT;
        dk__fail(DK_ECONFLICT, "case '%s' is at version %llu; the event expected %llu", ev->case_id,
                 (unsigned long long)old.version, (unsigned long long)ev->expect);
        return 1;
    }
    if ((rc = dk_case_permit(ev, a->author_roles, &old, a->cosigners, a->cosigner_roles, a->ncos,
                             revert ? target_type : NULL)) != 0) {
        *code = rc;
        return 1;
    }
    st = old;
    in_txn t = {lg, txn}; /* what the append rules read */
    dk__lookup lk = {&t, txn_actor, txn_event};
    if (revert || rollback) {
        if (old.version == 0) { /* a case rolled back to nothing still has events */
            *code = DK_ETRANSITION;
            dk__fail(DK_ETRANSITION, "case '%s' does not exist", ev->case_id);
            return 1;
        }
        /* Undo: the case must still fold without the voided events. */
        dk_record self;
        memset(&self, 0, sizeof self);
        self.seq = a->seq;
        self.recorded_at = a->recorded_at;
        self.body = a->body;
        self.body_len = a->body_len;
        uint64_t bad = 0;
        int in_storage;
        int refused = 0;
        undo_check uc = {ev, &lk, &old};
        rc = refold(lg, txn, ev->case_id, &self, &st, &bad, &in_storage, &uc, &refused);
        if (rc && in_storage)
            return rc;
        if (refused || rc == DK_ENOMEM) { /* refused, with what the rule or fold said */
            *code = rc;
            return 1;
        }
        if (rc) {
            char why[DK_ERRMSG_MAX];
            snprintf(why, sizeof why, "%s", dk_errmsg());
            *code = DK_ETRANSITION;
            dk__fail(DK_ETRANSITION,
                     "%s would leave later events invalid: seq %llu depends on what it voids "
                     "(%s)",
                     ev->type, (unsigned long long)bad, why);
            return 1;
        }
    } else if ((rc = dk_case_apply(&st, a->seq, ev)) != 0) {
        *code = rc;
        return 1;
    } else if ((rc = dk__append_rules(&lk, a->seq, a->recorded_at, ev, &old, &st, code)) != 0 ||
               (rc = check_assignee(&lk, a, code)) != 0) {
        return rc;
    }
    if ((rc = update_slots(lg, txn, &old, &st, ev->case_id, code)) != 0)
        return rc;
    rc = store_state(lg, txn, ev->case_id, &st);
    return rc ? storage(rc, "cannot store the case state") : 0;
}

/* Row layouts that earlier dockets wrote and this one does not read: the writer re-folds
 * such a row, and verify does not call it damage. Any other tag that does not unpack is
 * damage (a flipped bit in a tag must not pass for an old layout). When dk_case_state
 * changes, add the layouts being retired here: packed (0xd5000000 | its old size) and raw
 * (RAW_LAYOUT, 0xdc000000 | its old size; the raw layout of the current size is still
 * read). */
static int older_layout(uint32_t tag)
{
    /* 1440 bytes, packed and raw: before the state's leave (2026-11-27) */
    return tag == (0xd5000000u | 1440) || tag == (0xdc000000u | 1440);
}

int dk__case_row_decode(const void *row, size_t len, uint64_t *version, uint64_t *last_seq,
                        dk_case_state *st)
{
    memset(st, 0, sizeof *st);
    *version = *last_seq = 0;
    if (len == 0)
        return 0; /* no row: a case with no events */
    if (len < ROW_HEAD + 4)
        return -1;
    const uint8_t *b = row;
    *version = dk_get_be64(b);
    *last_seq = dk_get_be64(b + 8);
    if (len == RAW_BYTES && dk_get_be32(b + ROW_HEAD) == RAW_LAYOUT) {
        /* Through pack and unpack, so that what is used is what verify compares: no
         * string without its NUL, nothing in the padding. */
        dk_case_state raw;
        uint8_t packed[DK_CASE_STATE_PACKED_MAX];
        memcpy(&raw, b + ROW_HEAD + 4, sizeof raw);
        if (raw.open_errors > DK_OPEN_ERRORS_MAX)
            return -1; /* canon() would index past error_seqs */
        size_t n = dk_case_state_pack(&raw, packed, sizeof packed);
        return n && dk_case_state_unpack(packed, n, st) == 0 ? 1 : -1;
    }
    if (dk_case_state_unpack(b + ROW_HEAD, len - ROW_HEAD, st) == 0)
        return 1;
    memset(st, 0, sizeof *st);
    return older_layout(dk_get_be32(b + ROW_HEAD)) ? 0 : -1;
}
