/* upgrade.c - brings a ledger written by an older docket up to this one on a write open:
 * its case index and state rows into one `cases` database, its slot index rebuilt. */
#include <stdio.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

size_t dk__upgrade_batch = 50000; /* keys written per transaction (tests lower it) */

int dk__older_case_layout(dk_ledger *lg, MDB_txn *txn)
{
    MDB_txn *own = NULL;
    MDB_dbi dbi;
    if (txn == NULL && dk__read_begin(lg, &own) != 0)
        return 0;
    int rc = mdb_dbi_open(txn ? txn : own, "by_case", 0, &dbi);
    if (own)
        dk__read_end(lg, own);
    if (rc == MDB_NOTFOUND)
        return 0;
    dk__fail(DK_EINVAL, "this ledger was written by an older docket (its case index is in "
                        "'by_case'): open it once for writing, with any command that appends, "
                        "to upgrade it");
    return 1;
}

/* Copy up to dk__upgrade_batch entries of `from`, starting after the position `at` (empty: the
 * start), into `cases`; *at gets the last one copied, *done 1 at the end. A by_case
 * entry (id, seq) becomes the index key "id NUL seq"; a case_state row (id, row)
 * becomes "id NUL" -> row. */
static int copy_batch(dk_ledger *lg, MDB_txn *txn, MDB_dbi from, int index, uint8_t *at,
                      size_t *at_len, uint64_t *at_seq, int *done)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, from, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    MDB_val k = {*at_len, at}, v;
    uint8_t sk[8];
    dk__put_be64(sk, *at_seq);
    if (*at_len == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    } else if (index) { /* the next seq of that case, or the next case */
        v.mv_size = 8;
        v.mv_data = sk;
        rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH);
        if (rc == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
        if (rc == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    size_t n = 0;
    for (; rc == 0 && n < dk__upgrade_batch; n++) {
        uint8_t key[DK__CASE_KEY_MAX];
        if (k.mv_size == 0 || k.mv_size > DK_CASE_MAX || memchr(k.mv_data, 0, k.mv_size) ||
            (index && v.mv_size != 8)) {
            mdb_cursor_close(cur);
            return dk__fail(DK_ECORRUPT, "the old case index holds a malformed entry (%zu bytes)",
                            k.mv_size);
        }
        uint64_t seq = index ? dk__get_be64(v.mv_data) : 0;
        MDB_val nk, nv;
        if (index) {
            nk.mv_size = dk__case_seq_key(key, k.mv_data, k.mv_size, seq);
            nv.mv_size = 0;
            nv.mv_data = key;
        } else {
            nk.mv_size = dk__case_key(key, k.mv_data, k.mv_size);
            nv = v;
        }
        nk.mv_data = key;
        if ((rc = mdb_put(txn, lg->cases, &nk, &nv, 0)) != 0)
            break;
        memcpy(at, k.mv_data, k.mv_size);
        *at_len = k.mv_size;
        *at_seq = seq;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    *done = rc == MDB_NOTFOUND;
    if (rc && rc != MDB_NOTFOUND)
        return dk__mdb_err(rc, "cannot move the case index");
    return 0;
}

int dk__upgrade_cases(dk_ledger *lg)
{
    MDB_txn *txn;
    MDB_dbi old[2];
    /* Any `cases` entries left by an upgrade a crash stopped are dropped first. */
    pthread_rwlock_rdlock(&lg->txn_lock);
    int rc = mdb_txn_begin(lg->env, NULL, 0, &txn);
    if (rc) {
        pthread_rwlock_unlock(&lg->txn_lock);
        return dk__mdb_err(rc, "cannot begin a transaction");
    }
    rc = mdb_dbi_open(txn, "by_case", MDB_DUPSORT | MDB_DUPFIXED, &old[0]);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn); /* nothing to upgrade */
        pthread_rwlock_unlock(&lg->txn_lock);
        return 0;
    }
    if (rc == 0)
        rc = mdb_set_dupsort(txn, old[0], dk__cmp_be64);
    if (rc == 0 && (rc = mdb_dbi_open(txn, "case_state", MDB_CREATE, &old[1])) == 0)
        rc = mdb_drop(txn, lg->cases, 0);
    if (rc == 0)
        rc = mdb_txn_commit(txn); /* keeps the handles */
    else
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&lg->txn_lock);
    if (rc)
        return dk__mdb_err(rc, "cannot start upgrading the case index");
    uint8_t at[DK_CASE_MAX + 1];
    for (int which = 0; which < 2 && rc == 0; which++) {
        size_t at_len = 0;
        uint64_t at_seq = 0;
        for (int done = 0; rc == 0 && !done;) {
            pthread_rwlock_rdlock(&lg->txn_lock);
            if ((rc = mdb_txn_begin(lg->env, NULL, 0, &txn)) != 0) {
                pthread_rwlock_unlock(&lg->txn_lock);
                return dk__mdb_err(rc, "cannot begin a transaction");
            }
            rc = copy_batch(lg, txn, old[which], which == 0, at, &at_len, &at_seq, &done);
            /* the last batch drops the old databases in the same transaction */
            if (rc == 0 && done && which == 1 &&
                ((rc = mdb_drop(txn, old[0], 1)) != 0 || (rc = mdb_drop(txn, old[1], 1)) != 0))
                rc = dk__mdb_err(rc, "cannot drop the old case index");
            if (rc == 0 && (rc = mdb_txn_commit(txn)) != 0)
                rc = dk__mdb_err(rc, "cannot commit the upgraded case index");
            else if (rc)
                mdb_txn_abort(txn);
            pthread_rwlock_unlock(&lg->txn_lock);
        }
    }
    return rc;
}

/* ---- the slot index, rebuilt once from the state rows ---- */

#define SLOTS_FORMAT "2" /* meta "slots_index": rebuilt from the state rows, or made empty */

int dk__slots_mark(dk_ledger *lg, MDB_txn *txn)
{
    MDB_val k = {11, (void *)"slots_index"}, v = {1, (void *)SLOTS_FORMAT};
    return mdb_put(txn, lg->meta, &k, &v, 0);
}

/* Put every booking a state row holds into the emptied slot index. */
static int slots_fill(dk_ledger *lg, MDB_txn *txn, size_t *booked)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, lg->cases, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    int g;
    for (g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t idn;
        uint64_t seq, version, last;
        dk_case_state st;
        if (dk__case_key_parse(&k, &idn, &seq) != 0 || seq != 0 ||
            dk__case_row_decode(v.mv_data, v.mv_size, &version, &last, &st) != 1 ||
            !st.interview.active)
            continue; /* not a state row holding a slot; verify names what is malformed */
        uint8_t key[DK_ACTOR_MAX + 9], val[8 + DK_CASE_MAX];
        dk__put_be64(val, (uint64_t)st.interview.slot_end);
        memcpy(val + 8, k.mv_data, idn);
        MDB_val sk = {dk__slot_key(key, st.interview.interviewer, st.interview.slot_start), key},
                sv = {8 + idn, val};
        if ((g = mdb_put(txn, lg->slots, &sk, &sv, 0)) != 0)
            break;
        (*booked)++;
    }
    mdb_cursor_close(cur);
    return g == MDB_NOTFOUND ? 0 : dk__mdb_err(g, "cannot rebuild the slot index");
}

int dk__upgrade_slots(dk_ledger *lg)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&lg->txn_lock);
    int rc = mdb_txn_begin(lg->env, NULL, 0, &txn);
    if (rc) {
        pthread_rwlock_unlock(&lg->txn_lock);
        return dk__mdb_err(rc, "cannot begin a transaction");
    }
    MDB_val fk = {11, (void *)"slots_index"}, fv;
    rc = mdb_get(txn, lg->meta, &fk, &fv);
    if (rc == 0 && fv.mv_size == 1 && memcmp(fv.mv_data, SLOTS_FORMAT, 1) == 0) {
        mdb_txn_abort(txn);
        pthread_rwlock_unlock(&lg->txn_lock);
        return 0;
    }
    /* Made by a docket that kept no slot index, or one whose refused reschedules could
     * drop a booking from it (before 11a71f9): the state rows say who holds what. */
    size_t booked = 0;
    if ((rc = mdb_drop(txn, lg->slots, 0)) != 0)
        rc = dk__mdb_err(rc, "cannot empty the slot index");
    if (rc == 0)
        rc = slots_fill(lg, txn, &booked);
    if (rc == 0 && (rc = dk__slots_mark(lg, txn)) != 0)
        rc = dk__mdb_err(rc, "cannot mark the slot index");
    if (rc == 0 && (rc = mdb_txn_commit(txn)) != 0)
        rc = dk__mdb_err(rc, "cannot commit the rebuilt slot index");
    else if (rc)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&lg->txn_lock);
    return rc;
}
