/* upgrade.c - brings a ledger written by an older docket up to this one on a write open:
 * its case index and state rows into one `cases` database, its slot index rebuilt. */
#include <stdio.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

#define CASES_LAYOUT "1" /* meta "cases_layout": the case index and state rows in `cases` */

/* Has the layout mark? 1 yes, 0 no, <0 an error. */
static int marked(dk_ledger *lg, MDB_txn *txn)
{
    return dk__meta_is(lg, txn, "cases_layout", CASES_LAYOUT);
}

int dk__cases_mark(dk_ledger *lg, MDB_txn *txn)
{
    MDB_dbi main_db;
    /* The tombstone: a plain record named "by_case" in LMDB's main database, where named
     * databases keep theirs. An older docket opening its `by_case` database fails on it
     * (MDB_INCOMPATIBLE) rather than write a case index this docket does not read. */
    MDB_val tk = {7, (void *)"by_case"}, tv = {22, (void *)"docket: moved to cases"};
    int rc = dk__meta_set(lg, txn, "cases_layout", CASES_LAYOUT);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &main_db);
    return rc ? rc : mdb_put(txn, main_db, &tk, &tv, 0);
}

static const char older_msg[] = "this ledger was written by an older docket (its case index "
                                "is in 'by_case'): open it once for writing, with any command "
                                "that appends, to upgrade it";

int dk__older_case_layout(dk_ledger *lg, MDB_txn *txn)
{
    MDB_txn *own = NULL;
    MDB_dbi dbi;
    if (txn == NULL && dk__read_begin(lg, &own) != 0)
        return 0;
    /* only a by_case that opens: an error other than MDB_NOTFOUND is damage, which the
     * reads after this meet and report, not a reason to ask for a write */
    int old =
        marked(lg, txn ? txn : own) == 0 && mdb_dbi_open(txn ? txn : own, "by_case", 0, &dbi) == 0;
    if (own)
        dk__read_end(lg, own);
    if (old)
        dk__fail(DK_EINVAL, "%s", older_msg);
    return old;
}

/* Copy every entry of `from` into `cases`: a by_case entry (id, seq) as the index key
 * "id NUL seq", a case_state row (id, row) as "id NUL be64(UINT64_MAX)" -> row.
 * 0, or an LMDB code (MDB_MAP_FULL: grow and start again), or a DK_E* code. */
static int copy_all(dk_ledger *lg, MDB_txn *txn, MDB_dbi from, int index)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, from, &cur);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t key[DK__CASE_KEY_MAX];
        if (k.mv_size == 0 || k.mv_size > DK_CASE_MAX || memchr(k.mv_data, 0, k.mv_size) ||
            (index && v.mv_size != 8)) {
            mdb_cursor_close(cur);
            return dk__fail(DK_ECORRUPT, "the old case index holds a malformed entry (%zu bytes)",
                            k.mv_size);
        }
        MDB_val nk = {0, key}, nv = v;
        if (index) {
            nk.mv_size = dk__case_seq_key(key, k.mv_data, k.mv_size, dk_get_be64(v.mv_data));
            nv.mv_size = 0;
            nv.mv_data = key;
        } else {
            nk.mv_size = dk__case_key(key, k.mv_data, k.mv_size);
        }
        if ((rc = mdb_put(txn, lg->cases, &nk, &nv, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* One attempt: 0 done (or nothing to do), an LMDB code, or a DK_E* code. */
static int upgrade_once(dk_ledger *lg, MDB_txn *txn, void *arg)
{
    (void)arg;
    MDB_dbi by_case, case_state;
    int rc = marked(lg, txn);
    if (rc < 0)
        return rc;
    if (rc == 1) /* this layout; an older docket's open fails on the tombstone */
        return 0;
    rc = mdb_dbi_open(txn, "by_case", MDB_DUPSORT | MDB_DUPFIXED, &by_case);
    if (rc == MDB_NOTFOUND) /* made by this docket before the mark */
        return dk__cases_mark(lg, txn);
    if (rc == 0)
        rc = mdb_set_dupsort(txn, by_case, dk__cmp_be64);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "case_state", MDB_CREATE, &case_state);
    if (rc == 0)
        rc = mdb_drop(txn, lg->cases, 0); /* whatever is there is not from the old index */
    if (rc == 0)
        rc = copy_all(lg, txn, by_case, 1);
    if (rc == 0)
        rc = copy_all(lg, txn, case_state, 0);
    if (rc == 0 && (rc = mdb_drop(txn, by_case, 1)) == 0 &&
        (rc = mdb_drop(txn, case_state, 1)) == 0)
        rc = dk__cases_mark(lg, txn);
    return rc;
}

int dk__upgrade_cases(dk_ledger *lg)
{
    for (;;) {
        int rc = dk__write_txn(lg, upgrade_once, NULL);
        if (rc == MDB_MAP_FULL && (rc = dk__ledger_grow_map(lg)) == 0)
            continue; /* the old index and the new one at once: grow, start again */
        if (rc > 0 || (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE)) /* LMDB's or errno */
            return dk__mdb_err(rc, "cannot upgrade the case index");
        return rc; /* 0 or a DK_E* code */
    }
}

/* ---- the slot index, rebuilt once from the state rows ---- */

#define SLOTS_FORMAT "2" /* meta "slots_index": rebuilt from the state rows, or made empty */

int dk__slots_mark(dk_ledger *lg, MDB_txn *txn)
{
    return dk__meta_set(lg, txn, "slots_index", SLOTS_FORMAT);
}

/* Put every booking a state row holds into the emptied slot index. */
static int slots_fill(dk_ledger *lg, MDB_txn *txn)
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
        if ((g = dk__slot_put(lg, txn, &st, k.mv_data, idn)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return g == MDB_NOTFOUND ? 0 : dk__mdb_err(g, "cannot rebuild the slot index");
}

static int slots_rebuild(dk_ledger *lg, MDB_txn *txn, void *arg)
{
    (void)arg;
    int rc = dk__meta_is(lg, txn, "slots_index", SLOTS_FORMAT);
    if (rc)
        return rc < 0 ? rc : 0;
    /* Made by a docket that kept no slot index, or one whose refused reschedules could
     * drop a booking from it (before 11a71f9): the state rows say who holds what. */
    if ((rc = mdb_drop(txn, lg->slots, 0)) != 0)
        return dk__mdb_err(rc, "cannot empty the slot index");
    if ((rc = slots_fill(lg, txn)) != 0)
        return rc;
    if ((rc = dk__slots_mark(lg, txn)) != 0)
        return dk__mdb_err(rc, "cannot mark the slot index");
    return 0;
}

int dk__upgrade_slots(dk_ledger *lg)
{
    return dk__write_txn(lg, slots_rebuild, NULL);
}
