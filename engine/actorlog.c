/* actorlog.c - each actor's history: an index of the events that enrolled,
 * re-keyed or revoked it, and the actor as it stood at any seq. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

int dk__actorlog_add(dk_ledger *lg, MDB_txn *txn, const char *id, uint64_t seq)
{
    uint8_t sk[8];
    dk_put_be64(sk, seq);
    MDB_val k = {strlen(id), (void *)id}, v = {8, sk};
    int rc = mdb_put(txn, lg->actor_log, &k, &v, 0);
    if (rc == MDB_MAP_FULL)
        return rc;
    return rc ? dk__mdb_err(rc, "cannot write the actor history") : 0;
}

/* The actor change recorded at `seq`. */
static int change_at(dk_ledger *lg, MDB_txn *txn, uint64_t seq, dk__actor_change *c)
{
    uint8_t sk[8];
    dk_put_be64(sk, seq);
    MDB_val k = {8, sk}, v;
    dk_record rec;
    dk_event ev;
    int rc = mdb_get(txn, lg->log, &k, &v);
    if (rc)
        return dk__mdb_err(rc, "cannot read an actor event");
    if (dk_record_decode(v.mv_data, v.mv_size, &rec) != 0 ||
        dk_event_decode_stored(rec.body, rec.body_len, &ev) != 0 ||
        dk__actor_change_parse(&ev, c) != 0)
        return dk__fail(DK_ECORRUPT, "actor event %llu does not decode", (unsigned long long)seq);
    return 0;
}

int dk__actor_fold(dk_ledger *lg, MDB_txn *txn, const char *id, uint64_t before, dk_actor_info *out)
{
    MDB_cursor *cur;
    memset(out, 0, sizeof *out);
    size_t n = strlen(id);
    int rc = mdb_cursor_open(txn, lg->actor_log, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    MDB_val k = {n, (void *)id}, v;
    int found = 0;
    for (int g = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); g == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != 8) {
            rc = dk__fail(DK_ECORRUPT, "the history of actor '%s' is damaged", id);
            break;
        }
        uint64_t at = dk_get_be64(v.mv_data);
        if (at >= before)
            break;
        dk__actor_change c;
        if ((rc = change_at(lg, txn, at, &c)) != 0)
            break;
        dk__actor_apply(out, &c, at);
        found = 1;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && !found)
        rc = dk__fail(DK_ENOTFOUND, "actor '%s' was not enrolled before seq %llu", id,
                      (unsigned long long)before);
    return rc;
}

int dk__key_holder(dk_ledger *lg, MDB_txn *txn, const uint8_t *pubkey, char who[DK_ACTOR_MAX + 1])
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, lg->actor_log, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    int g;
    for (g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size > DK_ACTOR_MAX)
            continue;
        dk__actor_change c;
        if (v.mv_size != 8) {
            rc = dk__fail(DK_ECORRUPT, "the history of actor '%.*s' is damaged", (int)k.mv_size,
                          (const char *)k.mv_data);
            break;
        }
        if ((rc = change_at(lg, txn, dk_get_be64(v.mv_data), &c)) != 0)
            break;
        if (c.kind != DK__ACT_REVOKE && c.kind != DK__ACT_NONE &&
            memcmp(c.pubkey, pubkey, DK_PUBKEY_BYTES) == 0) {
            memcpy(who, k.mv_data, k.mv_size);
            who[k.mv_size] = 0;
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    if (g == MDB_NOTFOUND)
        return DK_ENOTFOUND;
    return g ? dk__mdb_err(g, "cannot read the actor history") : 0;
}

int dk_ledger_actor_at(dk_ledger *lg, const char *id, uint64_t seq, dk_actor_info *out)
{
    MDB_txn *txn;
    memset(out, 0, sizeof *out);
    size_t n = strlen(id);
    if (n == 0 || n > DK_ACTOR_MAX)
        return dk__fail(DK_EINVAL, "'%s' is not an actor id", id);
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    if (lg->actor_log == 0) {
        dk__read_end(lg, txn);
        return dk__fail(DK_ENOTFOUND, "this ledger has no actor history yet (open it for "
                                      "writing once to build it)");
    }
    rc = dk__actor_fold(lg, txn, id, seq, out);
    dk__read_end(lg, txn);
    return rc;
}

static int backfill_in(dk_ledger *lg, MDB_txn *txn, void *arg)
{
    (void)arg;
    int rc = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    if ((rc = mdb_cursor_open(txn, lg->log, &cur)) != 0)
        return dk__mdb_err(rc, "cannot open a cursor");
    for (int g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && g == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        dk_record rec;
        dk_event ev;
        dk__actor_change c;
        if (dk_record_decode(v.mv_data, v.mv_size, &rec) != 0 ||
            dk_event_decode_stored(rec.body, rec.body_len, &ev) != 0) {
            rc = dk__fail(DK_ECORRUPT, "record %llu does not decode",
                          (unsigned long long)dk_get_be64(k.mv_data));
            break;
        }
        if (ev.case_id[0] == 0 && dk__actor_change_parse(&ev, &c) == 0 && c.kind != DK__ACT_NONE)
            rc = dk__actorlog_add(lg, txn, c.id, rec.seq);
    }
    mdb_cursor_close(cur);
    return rc;
}

int dk__actorlog_backfill(dk_ledger *lg)
{
    MDB_txn *txn;
    MDB_stat st;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    rc = mdb_stat(txn, lg->actor_log, &st);
    dk__read_end(lg, txn);
    if (rc)
        return dk__mdb_err(rc, "cannot read the actor history");
    if (st.ms_entries > 0)
        return 0;
    /* One pass over the log, in one write transaction: actor events are few,
     * so it writes little however long the log. */
    rc = dk__write_txn(lg, backfill_in, NULL);
    if (rc == MDB_MAP_FULL)
        rc = dk__fail(DK_EIO, "the map is full building the actor history");
    return rc;
}
