/* verify.c - whole-ledger verification: layout, dense seq, time order, the
 * hash chain, canonical bodies, signatures (in parallel) against each actor's
 * key as of that record, indexes, head, Merkle tree, checkpoints, rules. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"
#include "sigpool.h"

/* The actor table as it stood at the record being checked. */
typedef struct actor_slot {
    char id[DK_ACTOR_MAX + 1];
    uint8_t pubkey[DK_PUBKEY_BYTES];
    unsigned roles;
    int revoked;
    uint64_t enrolled_seq; /* the record that enrolled it */
    int used;
} actor_slot;

typedef struct actor_map {
    actor_slot *slots;
    size_t cap, n;
} actor_map;

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
            size_t j = dk__fnv1a(m->slots[i].id) & (ncap - 1);
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
    size_t j = dk__fnv1a(id) & (m->cap - 1);
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

/* Stored checkpoints, checked as the walk reaches their sizes. */
typedef struct ckpt {
    uint64_t size;
    uint8_t root[32];
} ckpt;

int dk__verify_bad(dk_verify_report *rep, uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->reason, sizeof rep->reason, fmt, ap);
    va_end(ap);
    rep->ok = 0;
    rep->seq = seq;
    return 1;
}

/* Compare the nodes completed by leaf `index` with the stored tree: a node
 * off the current frontier never reaches the root, but proofs use it. */
static int check_nodes(dk_ledger *lg, MDB_txn *txn, const dk__frontier *f, uint64_t index,
                       dk_verify_report *rep)
{
    for (int l = 0; l < f->nformed; l++) {
        uint8_t got[32];
        uint64_t at = index >> l;
        if (dk__tree_node(lg, txn, (unsigned)l, at, got) != 0 || memcmp(got, f->formed[l], 32) != 0)
            return dk__verify_bad(
                rep, index + 1,
                "the stored Merkle tree node (level %d, index %llu) over records %llu..%llu "
                "does not match them",
                l, (unsigned long long)at, (unsigned long long)((at << l) + 1),
                (unsigned long long)((at + 1) << l));
    }
    return 0;
}

/* Every row of the `actors` table (which the writer checks each append's signers and
 * roles against) equals the actor's state after the whole history: the same key, roles
 * and revocation, and no row for an actor the history never enrolled. 1 if not. */
static int check_actor_table(dk_ledger *lg, MDB_txn *txn, actor_map *m, uint64_t head,
                             dk_verify_report *rep)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, lg->actors, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot read the actor table");
    MDB_val k, v;
    size_t rows = 0;
    int r = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && r == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        dk_actor_info a;
        rows++;
        if (dk__actor_row_decode(&k, &v, &a) != 0) {
            r = dk__verify_bad(rep, head, "the actor table is damaged: %s", dk_errmsg());
            break;
        }
        const actor_slot *s = map_find(m, a.id, 0);
        if (s == NULL) {
            r = dk__verify_bad(rep, head,
                               "the actor table has a row for '%s', whom no record enrolled", a.id);
            break;
        }
        dk_actor_info hist = {
            .roles = s->roles, .revoked = s->revoked, .enrolled_seq = s->enrolled_seq};
        memcpy(hist.id, s->id, sizeof hist.id);
        memcpy(hist.pubkey, s->pubkey, DK_PUBKEY_BYTES);
        if (!dk__actor_same_grant(&hist, &a))
            r = dk__verify_bad(rep, head,
                               "the actor table's row for '%s' is not what its history made it "
                               "(key, roles, revocation or enrolment): the writer would check "
                               "appends against it",
                               a.id);
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND && r == 0)
        return dk__mdb_err(rc, "cannot read the actor table");
    if (r == 0 && rows != m->n)
        r = dk__verify_bad(
            rep, head, "the actor table holds %zu actors but the history enrolled %zu", rows, m->n);
    return r;
}

/* The walk's cursors and counters beside the actor table. */
typedef struct walk {
    actor_map actors;
    dk__sigpool *pool;
    uint64_t case_events;  /* case events seen, against the index's size */
    int actor_log;         /* 1 if the actor history is there (filled) to be checked */
    uint64_t actor_events; /* system events seen, against the actor history's size */
} walk;

/* Check one record's body and signatures against the actor table, then
 * apply its actor change. Returns 1 if the record is bad, <0 on error. */
static int check_body(dk_ledger *lg, MDB_txn *txn, walk *w, const dk_record *rec,
                      dk_verify_report *rep)
{
    actor_map *actors = &w->actors;
    dk__sigpool *pool = w->pool;
    dk_event ev;
    dk__actor_change ac;
    if (dk_event_decode(rec->body, rec->body_len, &ev) != 0)
        return dk__verify_bad(rep, rec->seq, "event body does not decode: %s", dk_errmsg());
    if (strcmp(rec->sigs[0].actor, ev.actor) != 0)
        return dk__verify_bad(rep, rec->seq, "first signature is by '%s', not the author '%s'",
                              rec->sigs[0].actor, ev.actor);
    if (dk__actor_change_parse(&ev, &ac) != 0)
        return dk__verify_bad(rep, rec->seq, "%s", dk_errmsg());
    if ((ac.kind == DK__ACT_GENESIS) != (rec->seq == 1))
        return dk__verify_bad(rep, rec->seq, "%s",
                              rec->seq == 1 ? "the first record is not ledger.genesis"
                                            : "ledger.genesis after the first record");
    if (ac.kind == DK__ACT_GENESIS) {
        /* the ledger's id (its checkpoints' origin) and name, as meta keeps them for
         * readers, are the genesis record's (helper-55: a changed id went unnoticed) */
        static const char *const fields[] = {"ledger_id", "name"};
        for (int f = 0; f < 2; f++) {
            const char *s;
            size_t sl;
            MDB_val mk = {strlen(fields[f]), (void *)fields[f]}, mv;
            int g = mdb_get(txn, lg->meta, &mk, &mv);
            if (g != 0 && g != MDB_NOTFOUND)
                return dk__mdb_err(g, "cannot read the ledger's identity");
            if (dk__data_str(ev.data, ev.data_len, fields[f], &s, &sl) != 0 || g != 0 ||
                mv.mv_size != sl || memcmp(mv.mv_data, s, sl) != 0)
                return dk__verify_bad(rep, rec->seq,
                                      "the ledger's stored %s is not the one its genesis record "
                                      "gives",
                                      fields[f]);
        }
    }
    for (size_t i = 0; i < rec->nsigs; i++) {
        const uint8_t *key;
        unsigned roles;
        if (ac.kind == DK__ACT_GENESIS) {
            key = ac.pubkey;
            roles = DK_ROLE_ADMIN;
        } else {
            actor_slot *a = map_find(actors, rec->sigs[i].actor, 0);
            if (a == NULL)
                return dk__verify_bad(rep, rec->seq, "signer '%s' was not enrolled at that point",
                                      rec->sigs[i].actor);
            if (a->revoked)
                return dk__verify_bad(rep, rec->seq, "signer '%s' had been revoked",
                                      rec->sigs[i].actor);
            key = a->pubkey;
            roles = a->roles;
        }
        /* checked in parallel; the lowest failing seq is reported */
        int rc = dk__sigpool_add(pool, rec->seq, key, rec->body, rec->body_len, rec->sigs[i].sig,
                                 rec->sigs[i].actor);
        if (rc)
            return rc;
        if (i == 0 && ac.kind >= DK__ACT_ENROLL && !(roles & DK_ROLE_ADMIN))
            return dk__verify_bad(rep, rec->seq, "%s signed by '%s', who was not an admin", ev.type,
                                  ev.actor);
    }
    /* The command index must point back here; a case event must be in its
     * case's index (the rules pass reads cases through it). */
    MDB_val ck = {DK_CMD_BYTES, ev.cmd}, cv;
    if (mdb_get(txn, lg->cmd, &ck, &cv) != 0 || cv.mv_size != 8 ||
        dk_get_be64(cv.mv_data) != rec->seq)
        return dk__verify_bad(rep, rec->seq, "the command index does not point at this record");
    if (ac.kind == DK__ACT_NONE) {
        uint8_t ik[DK__CASE_KEY_MAX];
        MDB_val bk = {dk__case_seq_key(ik, ev.case_id, strlen(ev.case_id), rec->seq), ik}, bv;
        if (mdb_get(txn, lg->cases, &bk, &bv) != 0)
            return dk__verify_bad(rep, rec->seq, "the index of case '%s' does not list this record",
                                  ev.case_id);
        w->case_events++;
    } else if (w->actor_log) {
        /* a system event must be in its actor's history (rebuilds read them through it) */
        MDB_cursor *ac_cur;
        uint8_t sk[8];
        dk_put_be64(sk, rec->seq);
        MDB_val ak = {strlen(ac.id), ac.id}, av = {8, sk};
        int rc = mdb_cursor_open(txn, lg->actor_log, &ac_cur);
        if (rc)
            return dk__mdb_err(rc, "cannot open a cursor");
        rc = mdb_cursor_get(ac_cur, &ak, &av, MDB_GET_BOTH);
        mdb_cursor_close(ac_cur);
        if (rc)
            return dk__verify_bad(rep, rec->seq,
                                  "the actor history of '%s' does not list this record", ac.id);
        w->actor_events++;
    }
    /* The writer's rules for actor events, as it applied them. */
    actor_slot *old = ac.kind == DK__ACT_NONE ? NULL : map_find(actors, ac.id, 0);
    if (ac.kind == DK__ACT_GENESIS && strcmp(ev.actor, ac.id) != 0)
        return dk__verify_bad(rep, rec->seq, "ledger.genesis is not signed by the admin it enrols");
    if (ac.kind == DK__ACT_ENROLL && old != NULL)
        return dk__verify_bad(rep, rec->seq, "actor.enrolled for '%s', who was already enrolled",
                              ac.id);
    if ((ac.kind == DK__ACT_ROTATE || ac.kind == DK__ACT_REVOKE) && old != NULL && old->revoked)
        return dk__verify_bad(rep, rec->seq, "%s for '%s', who was already revoked", ev.type,
                              ac.id);
    if (ac.kind != DK__ACT_NONE) {
        actor_slot *a =
            map_find(actors, ac.id, ac.kind == DK__ACT_GENESIS || ac.kind == DK__ACT_ENROLL);
        if (a == NULL)
            return ac.kind >= DK__ACT_ROTATE
                       ? dk__verify_bad(rep, rec->seq, "%s names unknown actor '%s'", ev.type,
                                        ac.id)
                       : dk__fail(DK_ENOMEM, "out of memory");
        if (ac.kind == DK__ACT_GENESIS || ac.kind == DK__ACT_ENROLL) {
            memcpy(a->pubkey, ac.pubkey, DK_PUBKEY_BYTES);
            a->roles = ac.roles;
            a->revoked = 0;
            a->enrolled_seq = rec->seq;
        } else if (ac.kind == DK__ACT_ROTATE) {
            memcpy(a->pubkey, ac.pubkey, DK_PUBKEY_BYTES);
        } else {
            a->revoked = 1;
        }
    }
    return 0;
}

/* The case index keys in the cases database, counted against the case events the walk
 * saw; a key that is neither a state row's nor an index key is damage. 0, 1 or <0. */
static int count_index(dk_ledger *lg, MDB_txn *txn, uint64_t case_events, uint64_t head,
                       dk_verify_report *rep)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t listed = 0;
    int rc = mdb_cursor_open(txn, lg->cases, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    int g, r = 0;
    for (g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0 && r == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t idn;
        uint64_t seq;
        if (dk__case_key_parse(&k, &idn, &seq) != 0)
            r = dk__verify_bad(rep, head, "the cases database holds a malformed key of %zu bytes",
                               k.mv_size);
        listed += seq != 0;
    }
    mdb_cursor_close(cur);
    if (r == 0 && g != MDB_NOTFOUND)
        return dk__mdb_err(g, "cannot read the case index");
    if (r == 0 && listed != case_events)
        r = dk__verify_bad(rep, head,
                           "the case index lists %llu records but the log holds %llu case events",
                           (unsigned long long)listed, (unsigned long long)case_events);
    return r;
}

static int load_checkpoints(dk_ledger *lg, MDB_txn *txn, ckpt **out, size_t *n,
                            dk_verify_report *rep)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cap = 0;
    uint8_t pk[DK_PUBKEY_BYTES] = {0};
    char b64[64];
    *out = NULL;
    *n = 0;
    if (lg->checkpoints == 0) /* a read-only open of a ledger made before checkpoints */
        return 0;
    MDB_val nk = {11, (void *)"node_pubkey"}, nv;
    int g = mdb_get(txn, lg->meta, &nk, &nv);
    if (g != 0 && g != MDB_NOTFOUND) /* a broken page: this transaction is spent */
        return dk__mdb_err(g, "cannot read the node key");
    int have_key = g == 0 && nv.mv_size == DK_PUBKEY_BYTES;
    if (have_key)
        memcpy(pk, nv.mv_data, DK_PUBKEY_BYTES);
    /* every checkpoint names this ledger: its origin is docket/<ledger id> (the id is
     * checked against the genesis record) */
    char origin[DK_ORIGIN_MAX + 1] = "";
    if ((g = dk__ledger_origin_in(lg, txn, origin)) != 0 && g != DK_ECORRUPT)
        return g; /* LMDB's error; no id (DK_ECORRUPT) leaves "" for no checkpoint to match */
    dk_b64_encode(pk, DK_PUBKEY_BYTES, b64);
    if ((g = mdb_cursor_open(txn, lg->checkpoints, &cur)) != 0)
        return dk__mdb_err(g, "cannot read the checkpoints");
    int r = 0;
    for (g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0 && r == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t size = k.mv_size == 8 ? dk_get_be64(k.mv_data) : 0;
        char *note = strndup(v.mv_data, v.mv_size);
        dk_checkpoint cp;
        if (note == NULL) {
            r = dk__fail(DK_ENOMEM, "out of memory");
        } else if (!have_key) {
            r = dk__verify_bad(rep, size,
                               "a checkpoint is stored but the ledger records no node key");
        } else if (dk_note_open(note, b64, &cp) != 0) {
            r = dk__verify_bad(rep, size,
                               "the stored checkpoint of size %llu is not validly signed: %s",
                               (unsigned long long)size, dk_errmsg());
        } else if (cp.size != size) {
            r = dk__verify_bad(rep, size, "the checkpoint stored under size %llu says size %llu",
                               (unsigned long long)size, (unsigned long long)cp.size);
        } else if (strcmp(cp.origin, origin) != 0) {
            r = dk__verify_bad(rep, size,
                               "the checkpoint of size %llu names origin '%s', not this "
                               "ledger's '%s'",
                               (unsigned long long)size, cp.origin, origin);
        } else {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                ckpt *more = realloc(*out, cap * sizeof *more);
                if (more == NULL) {
                    free(note);
                    r = dk__fail(DK_ENOMEM, "out of memory");
                    break;
                }
                *out = more;
            }
            (*out)[*n].size = size;
            memcpy((*out)[*n].root, cp.root, 32);
            (*n)++;
        }
        free(note);
    }
    mdb_cursor_close(cur);
    if (r == 0 && g != 0 && g != MDB_NOTFOUND)
        r = dk__mdb_err(g, "cannot read the checkpoints");
    return r;
}

/* The state before record `from`: the actor table (from the actor history),
 * the previous record's hash and time, and the Merkle frontier of the first
 * from-1 leaves (from the stored tree). The prefix is trusted. */
static int resume_at(dk_ledger *lg, MDB_txn *txn, uint64_t from, actor_map *actors,
                     uint8_t prev[DK_HASH_BYTES], int64_t *last_time, dk__frontier *fr)
{
    uint8_t sk[8];
    dk_put_be64(sk, from - 1);
    MDB_val k = {8, sk}, v;
    dk_record rec;
    if (mdb_get(txn, lg->log, &k, &v) != 0 || dk_record_decode(v.mv_data, v.mv_size, &rec) != 0)
        return dk__fail(DK_EINVAL, "cannot start at seq %llu: record %llu is not there",
                        (unsigned long long)from, (unsigned long long)(from - 1));
    dk_leaf_hash(rec.raw, rec.raw_len, prev);
    *last_time = rec.recorded_at;
    if (lg->actor_log == 0 || lg->tree == 0)
        return dk__fail(DK_EINVAL, "this ledger has no actor history or tree yet: verify it "
                                   "whole, or open it for writing once");
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, lg->actor_log, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    for (int g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0 && rc == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 8) {
            rc = dk__fail(DK_ECORRUPT, "the actor history holds a value of %zu bytes", v.mv_size);
            break;
        }
        uint64_t at = dk_get_be64(v.mv_data);
        if (at >= from)
            continue;
        dk_put_be64(sk, at);
        MDB_val ak = {8, sk}, av;
        dk_event ev;
        dk__actor_change c;
        if (mdb_get(txn, lg->log, &ak, &av) != 0 ||
            dk_record_decode(av.mv_data, av.mv_size, &rec) != 0 ||
            dk_event_decode(rec.body, rec.body_len, &ev) != 0 ||
            dk__actor_change_parse(&ev, &c) != 0) {
            rc = dk__fail(DK_ECORRUPT, "actor event %llu does not decode", (unsigned long long)at);
            break;
        }
        actor_slot *a = map_find(actors, c.id, 1);
        if (a == NULL) {
            rc = dk__fail(DK_ENOMEM, "out of memory");
            break;
        }
        dk_actor_info info;
        memset(&info, 0, sizeof info);
        memcpy(info.pubkey, a->pubkey, DK_PUBKEY_BYTES);
        info.roles = a->roles;
        info.revoked = a->revoked;
        info.enrolled_seq = a->enrolled_seq;
        dk__actor_apply(&info, &c, at);
        memcpy(a->pubkey, info.pubkey, DK_PUBKEY_BYTES);
        a->roles = info.roles;
        a->revoked = info.revoked;
        a->enrolled_seq = info.enrolled_seq;
    }
    mdb_cursor_close(cur);
    return rc ? rc : dk__tree_frontier(lg, txn, from - 1, fr);
}

int dk_ledger_verify(dk_ledger *lg, dk_verify_report *rep)
{
    return dk_ledger_verify_opts(lg, NULL, rep);
}

int dk_ledger_verify_opts(dk_ledger *lg, const dk_verify_opts *opts, dk_verify_report *rep)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    walk w;
    memset(&w, 0, sizeof w);
    uint8_t prev[DK_HASH_BYTES] = {0};
    int64_t last_time = INT64_MIN;
    uint64_t from = opts && opts->from > 1 ? opts->from : 1, expect = from;
    int jobs = opts && opts->jobs > 0 ? opts->jobs : lg->cores;
    memset(rep, 0, sizeof *rep);
    rep->ok = 1;
    rep->tree_checked = lg->tree != 0;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    MDB_stat alog;
    /* an actor history not there yet, or created but not yet filled: a write open fills it */
    int st = lg->actor_log ? mdb_stat(txn, lg->actor_log, &alog) : MDB_NOTFOUND;
    if (st != 0 && st != MDB_NOTFOUND) { /* a broken page: this transaction is spent */
        dk__read_end(lg, txn);
        return dk__mdb_err(st, "cannot read the actor history");
    }
    w.actor_log = st == 0 && alog.ms_entries;
    if ((rc = mdb_cursor_open(txn, lg->log, &cur)) != 0) {
        dk__read_end(lg, txn);
        return dk__mdb_err(rc, "cannot open a cursor");
    }
    dk__frontier fr;
    fr.n = 0;
    ckpt *cps = NULL;
    size_t ncps = 0, next_cp = 0;
    int r = dk__sigpool_open(jobs, &w.pool);
    if (r == 0 && from > 1)
        r = resume_at(lg, txn, from, &w.actors, prev, &last_time, &fr);
    /* Every stored checkpoint must be signed by the node key. */
    if (r == 0)
        r = load_checkpoints(lg, txn, &cps, &ncps, rep);
    while (next_cp < ncps && cps[next_cp].size < from)
        next_cp++;
    MDB_val start = {8, NULL};
    uint8_t sk[8];
    dk_put_be64(sk, from);
    start.mv_data = sk;
    k = start;
    int op = MDB_SET_RANGE;
    while (r == 0 && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        dk_record rec;
        uint64_t kseq = k.mv_size == 8 ? dk_get_be64(k.mv_data) : 0;
        if (kseq != expect) {
            r = dk__verify_bad(rep, expect, "record %llu is missing (next stored key is %llu)",
                               (unsigned long long)expect, (unsigned long long)kseq);
            break;
        }
        if (dk_record_decode(v.mv_data, v.mv_size, &rec) != 0) {
            r = dk__verify_bad(rep, kseq, "record does not decode: %s", dk_errmsg());
            break;
        }
        if (rec.seq != kseq)
            r = dk__verify_bad(rep, kseq, "record says seq %llu", (unsigned long long)rec.seq);
        else if (rec.recorded_at <= last_time)
            r = dk__verify_bad(rep, kseq, "recorded_at does not increase");
        else if (memcmp(rec.prev, prev, DK_HASH_BYTES) != 0)
            r = dk__verify_bad(rep, kseq, "prev hash does not match the previous record");
        else
            r = check_body(lg, txn, &w, &rec, rep);
        dk_leaf_hash(rec.raw, rec.raw_len, prev);
        dk__frontier_push(&fr, prev);
        if (r == 0 && lg->tree != 0)
            r = check_nodes(lg, txn, &fr, kseq - 1, rep);
        while (r == 0 && next_cp < ncps && cps[next_cp].size == kseq) {
            uint8_t root[32];
            dk__frontier_root(&fr, root);
            if (memcmp(root, cps[next_cp].root, 32) != 0)
                r = dk__verify_bad(
                    rep, kseq,
                    "the first %llu records do not hash to the root of the signed checkpoint "
                    "of that size: history was rewritten",
                    (unsigned long long)kseq);
            next_cp++;
        }
        last_time = rec.recorded_at;
        rep->checked++;
        expect++;
    }
    if (rc != 0 && rc != MDB_NOTFOUND && r == 0)
        r = dk__verify_bad(rep, expect, "cannot read the ledger: %s", mdb_strerror(rc));
    if (r == 0) {
        MDB_val hk = {4, (void *)"head"}, hv;
        if (mdb_get(txn, lg->meta, &hk, &hv) != 0 || hv.mv_size != 48)
            r = dk__verify_bad(rep, 0, "the stored head is missing");
        else if (dk_get_be64(hv.mv_data) != expect - 1 ||
                 memcmp((uint8_t *)hv.mv_data + 8, prev, DK_HASH_BYTES) != 0 ||
                 (int64_t)dk_get_be64((uint8_t *)hv.mv_data + 40) != last_time)
            r = dk__verify_bad(rep, expect - 1,
                               "the stored head (seq %llu) does not match the chain",
                               (unsigned long long)dk_get_be64(hv.mv_data));
    }
    /* every entry of the case index is a case event seen in the walk */
    if (r == 0 && from == 1)
        r = count_index(lg, txn, w.case_events, expect - 1, rep);
    /* and every entry of the actor history a system event seen in it */
    if (r == 0 && from == 1 && w.actor_log && alog.ms_entries != w.actor_events)
        r = dk__verify_bad(rep, expect - 1,
                           "the actor history lists %llu records but the log holds %llu system "
                           "events",
                           (unsigned long long)alog.ms_entries, (unsigned long long)w.actor_events);
    /* the actor table the writer checks appends against is what the history made it */
    if (r == 0 && from == 1)
        r = check_actor_table(lg, txn, &w.actors, expect - 1, rep);
    if (r == 0 && next_cp < ncps)
        r = dk__verify_bad(
            rep, cps[next_cp].size,
            "a signed checkpoint covers %llu records but the ledger has only %llu: records "
            "were removed",
            (unsigned long long)cps[next_cp].size, (unsigned long long)(expect - 1));
    if (r == 0 && expect > 1 && lg->tree != 0) {
        uint8_t want[32], got[32];
        dk__frontier_root(&fr, want);
        if (dk__tree_root(lg, txn, expect - 1, got) != 0 || memcmp(want, got, 32) != 0)
            r = dk__verify_bad(rep, expect - 1,
                               "the stored Merkle tree does not match the records");
    }
    /* The signatures queued so far: a failure before the first other one wins. */
    if (w.pool) {
        char who[DK_ACTOR_MAX + 1];
        uint64_t bad_sig = dk__sigpool_finish(w.pool, who, &rep->signatures);
        if (bad_sig && r >= 0 && (rep->ok || bad_sig <= rep->seq)) {
            dk__verify_bad(rep, bad_sig, "signature by '%s' does not verify",
                           who); /* the earlier one */
            r = 1;
        }
        dk__sigpool_close(w.pool);
    }
    if (r == 0 && rep->ok && !(opts && opts->skip_rules))
        r = dk__verify_rules(lg, txn, from, jobs, opts, rep);
    mdb_cursor_close(cur);
    dk__read_end(lg, txn);
    free(w.actors.slots);
    free(cps);
    return r < 0 ? r : 0;
}
