/* verify.c - whole-ledger verification: layout, dense seq, time order, the
 * hash chain, canonical bodies, every signature against its actor's key as
 * of that record, the command index and the stored head. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

/* The actor table as it stood at the record being checked. */
typedef struct actor_slot {
    char id[DK_ACTOR_MAX + 1];
    uint8_t pubkey[DK_PUBKEY_BYTES];
    unsigned roles;
    int revoked;
    int used;
} actor_slot;

typedef struct actor_map {
    actor_slot *slots;
    size_t cap, n;
} actor_map;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static actor_slot *map_find(actor_map *m, const char *id, int insert)
{
    if (insert && (m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        actor_slot *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return NULL;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].used)
                continue;
            size_t j = fnv1a(m->slots[i].id) & (ncap - 1);
            while (ns[j].used)
                j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    if (m->cap == 0)
        return NULL;
    size_t j = fnv1a(id) & (m->cap - 1);
    while (m->slots[j].used) {
        if (strcmp(m->slots[j].id, id) == 0)
            return &m->slots[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!insert)
        return NULL;
    m->slots[j].used = 1;
    snprintf(m->slots[j].id, sizeof m->slots[j].id, "%s", id);
    m->n++;
    return &m->slots[j];
}

static int bad(dk_verify_report *rep, uint64_t seq, const char *fmt, ...) DK__PRINTF(3, 4);
static int bad(dk_verify_report *rep, uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->reason, sizeof rep->reason, fmt, ap);
    va_end(ap);
    rep->ok = 0;
    rep->seq = seq;
    return 1;
}

/* Check one record's body and signatures against the actor table, then
 * apply its actor change. Returns 1 if the record is bad, <0 on error. */
static int check_body(dk_ledger *lg, MDB_txn *txn, actor_map *actors, const dk_record *rec,
                      dk_verify_report *rep)
{
    dk_event ev;
    dk__actor_change ac;
    if (dk_event_decode(rec->body, rec->body_len, &ev) != 0)
        return bad(rep, rec->seq, "event body does not decode: %s", dk_errmsg());
    if (strcmp(rec->sigs[0].actor, ev.actor) != 0)
        return bad(rep, rec->seq, "first signature is by '%s', not the author '%s'",
                   rec->sigs[0].actor, ev.actor);
    if (dk__actor_change_parse(&ev, &ac) != 0)
        return bad(rep, rec->seq, "%s", dk_errmsg());
    if ((ac.kind == DK__ACT_GENESIS) != (rec->seq == 1))
        return bad(rep, rec->seq, "%s",
                   rec->seq == 1 ? "the first record is not ledger.genesis"
                                 : "ledger.genesis after the first record");
    for (size_t i = 0; i < rec->nsigs; i++) {
        const uint8_t *key;
        unsigned roles;
        if (ac.kind == DK__ACT_GENESIS) {
            key = ac.pubkey;
            roles = DK_ROLE_ADMIN;
        } else {
            actor_slot *a = map_find(actors, rec->sigs[i].actor, 0);
            if (a == NULL)
                return bad(rep, rec->seq, "signer '%s' was not enrolled at that point",
                           rec->sigs[i].actor);
            if (a->revoked)
                return bad(rep, rec->seq, "signer '%s' had been revoked", rec->sigs[i].actor);
            key = a->pubkey;
            roles = a->roles;
        }
        if (dk_verify(key, rec->body, rec->body_len, rec->sigs[i].sig) != 0)
            return bad(rep, rec->seq, "signature by '%s' does not verify", rec->sigs[i].actor);
        if (i == 0 && ac.kind >= DK__ACT_ENROLL && !(roles & DK_ROLE_ADMIN))
            return bad(rep, rec->seq, "%s signed by '%s', who was not an admin", ev.type, ev.actor);
    }
    /* The command index must point back here. */
    MDB_val ck = {DK_CMD_BYTES, ev.cmd}, cv;
    if (mdb_get(txn, lg->cmd, &ck, &cv) != 0 || cv.mv_size != 8 ||
        dk__get_be64(cv.mv_data) != rec->seq)
        return bad(rep, rec->seq, "the command index does not point at this record");
    if (ac.kind != DK__ACT_NONE) {
        actor_slot *a =
            map_find(actors, ac.id, ac.kind == DK__ACT_GENESIS || ac.kind == DK__ACT_ENROLL);
        if (a == NULL)
            return ac.kind >= DK__ACT_ROTATE
                       ? bad(rep, rec->seq, "%s names unknown actor '%s'", ev.type, ac.id)
                       : dk__fail(DK_ENOMEM, "out of memory");
        if (ac.kind == DK__ACT_GENESIS || ac.kind == DK__ACT_ENROLL) {
            memcpy(a->pubkey, ac.pubkey, DK_PUBKEY_BYTES);
            a->roles = ac.roles;
            a->revoked = 0;
        } else if (ac.kind == DK__ACT_ROTATE) {
            memcpy(a->pubkey, ac.pubkey, DK_PUBKEY_BYTES);
        } else {
            a->revoked = 1;
        }
    }
    return 0;
}

int dk_ledger_verify(dk_ledger *lg, dk_verify_report *rep)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    actor_map actors = {NULL, 0, 0};
    uint8_t prev[DK_HASH_BYTES] = {0};
    int64_t last_time = INT64_MIN;
    uint64_t expect = 1;
    memset(rep, 0, sizeof *rep);
    rep->ok = 1;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, lg->log, &cur)) != 0) {
        dk__read_end(lg, txn);
        return dk__mdb_err(rc, "cannot open a cursor");
    }
    int op = MDB_FIRST, r = 0;
    while (r == 0 && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        dk_record rec;
        uint64_t kseq = k.mv_size == 8 ? dk__get_be64(k.mv_data) : 0;
        if (kseq != expect) {
            r = bad(rep, expect, "record %llu is missing (next stored key is %llu)",
                    (unsigned long long)expect, (unsigned long long)kseq);
            break;
        }
        if (dk_record_decode(v.mv_data, v.mv_size, &rec) != 0) {
            r = bad(rep, kseq, "record does not decode: %s", dk_errmsg());
            break;
        }
        if (rec.seq != kseq)
            r = bad(rep, kseq, "record says seq %llu", (unsigned long long)rec.seq);
        else if (rec.recorded_at <= last_time)
            r = bad(rep, kseq, "recorded_at does not increase");
        else if (memcmp(rec.prev, prev, DK_HASH_BYTES) != 0)
            r = bad(rep, kseq, "prev hash does not match the previous record");
        else
            r = check_body(lg, txn, &actors, &rec, rep);
        dk_leaf_hash(rec.raw, rec.raw_len, prev);
        last_time = rec.recorded_at;
        rep->checked++;
        expect++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND && r == 0)
        r = bad(rep, expect, "cannot read the ledger: %s", mdb_strerror(rc));
    if (r == 0) {
        MDB_val hk = {4, (void *)"head"}, hv;
        if (mdb_get(txn, lg->meta, &hk, &hv) != 0 || hv.mv_size != 48)
            r = bad(rep, 0, "the stored head is missing");
        else if (dk__get_be64(hv.mv_data) != expect - 1 ||
                 memcmp((uint8_t *)hv.mv_data + 8, prev, DK_HASH_BYTES) != 0)
            r = bad(rep, expect - 1, "the stored head (seq %llu) does not match the chain",
                    (unsigned long long)dk__get_be64(hv.mv_data));
    }
    mdb_cursor_close(cur);
    dk__read_end(lg, txn);
    free(actors.slots);
    return r < 0 ? r : 0;
}
