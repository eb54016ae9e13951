/* verify_rules.c - verify's casework pass: each case's events re-checked in
 * order against the rules, with each signer's roles as enrolled at that seq. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"
#include "workpool.h"

/* Every actor's states over time, from the actor_log index: sorted by id
 * (the index's order), then by seq. */
typedef struct actor_step {
    char id[DK_ACTOR_MAX + 1];
    uint64_t seq; /* the state holds from seq + 1 on */
    dk_actor_info a;
} actor_step;

typedef struct history {
    actor_step *v;
    size_t n, cap;
} history;

static int load_history(dk_ledger *lg, MDB_txn *txn, history *h)
{
    MDB_cursor *cur;
    MDB_val k, v;
    memset(h, 0, sizeof *h);
    if (lg->actor_log == 0)
        return dk__fail(DK_ENOTFOUND, "the ledger has no actor history yet (open it for "
                                      "writing once to build it)");
    int rc = mdb_cursor_open(txn, lg->actor_log, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    dk_actor_info cur_a;
    for (int g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 8) {
            rc = dk__fail(DK_ECORRUPT, "the actor history holds a value of %zu bytes", v.mv_size);
            break;
        }
        uint64_t seq = dk_get_be64(v.mv_data);
        uint8_t sk[8];
        dk_put_be64(sk, seq);
        MDB_val lk = {8, sk}, lv;
        dk_record rec;
        dk_event ev;
        dk__actor_change c;
        if ((rc = mdb_get(txn, lg->log, &lk, &lv)) != 0 ||
            dk_record_decode(lv.mv_data, lv.mv_size, &rec) != 0 ||
            dk_event_decode_stored(rec.body, rec.body_len, &ev) != 0 ||
            dk__actor_change_parse(&ev, &c) != 0 || c.kind == DK__ACT_NONE ||
            k.mv_size != strlen(c.id) || memcmp(k.mv_data, c.id, k.mv_size) != 0) {
            rc = dk__fail(DK_ECORRUPT,
                          "the actor history points at seq %llu, which is not an "
                          "event about '%.*s'",
                          (unsigned long long)seq, (int)k.mv_size, (const char *)k.mv_data);
            break;
        }
        if (h->n == 0 || strcmp(h->v[h->n - 1].id, c.id) != 0)
            memset(&cur_a, 0, sizeof cur_a);
        dk__actor_apply(&cur_a, &c, seq);
        if (h->n == h->cap) {
            size_t ncap = h->cap ? 2 * h->cap : 64;
            actor_step *more = realloc(h->v, ncap * sizeof *more);
            if (more == NULL) {
                rc = dk__fail(DK_ENOMEM, "out of memory");
                break;
            }
            h->v = more;
            h->cap = ncap;
        }
        actor_step *s = &h->v[h->n++];
        snprintf(s->id, sizeof s->id, "%s", c.id);
        s->seq = seq;
        s->a = cur_a;
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* A key given to an actor by the record at `from` (its enrolment, or a rotation). */
typedef struct holding {
    const actor_step *step;
    uint64_t from;
    int rotated; /* given by a rotation, not the enrolment */
} holding;

static int by_key_then_seq(const void *pa, const void *pb)
{
    const holding *a = pa, *b = pb;
    int c = memcmp(a->step->a.pubkey, b->step->a.pubkey, DK_PUBKEY_BYTES);
    return c ? c : (a->from > b->from) - (a->from < b->from);
}

/* One key, one actor, once: the writer refuses an enrolment or rotation to a key an actor
 * was given before (helper-68: a second id with one's own key passed four eyes alone;
 * helper-69: a retired key given to a new id; helper-70: an actor rotated back to its own
 * retired key), and a rotation to the key held. Each such record from `from` on that an
 * older docket took is passed to `say`. 0 or DK_ENOMEM. */
static int shared_keys(const history *h, uint64_t from, void (*say)(void *, uint64_t, const char *),
                       void *arg)
{
    holding *v = malloc((h->n ? h->n : 1) * sizeof *v);
    if (v == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    size_t n = 0;
    char why[DK_NOTICE_MAX];
    for (size_t i = 0; i < h->n; i++) {
        const actor_step *s = &h->v[i];
        int first = i == 0 || strcmp(s->id, h->v[i - 1].id) != 0;
        if (!first && memcmp(s->a.pubkey, h->v[i - 1].a.pubkey, DK_PUBKEY_BYTES) == 0) {
            /* a revocation keeps the key; a rotation to the key held changes nothing */
            if (!s->a.revoked && s->seq >= from) {
                snprintf(why, sizeof why,
                         "actor.key_rotated: actor '%s' holds that public key already; a "
                         "rotation gives it a new one",
                         s->id);
                say(arg, s->seq, why);
            }
            continue;
        }
        v[n++] = (holding){s, s->seq, !first};
    }
    qsort(v, n, sizeof *v, by_key_then_seq);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i;
             j-- > 0 && memcmp(v[j].step->a.pubkey, v[i].step->a.pubkey, DK_PUBKEY_BYTES) == 0;)
            if (v[i].from >= from && v[j].from < v[i].from) {
                const char *type = v[i].rotated ? "actor.key_rotated" : "actor.enrolled";
                if (strcmp(v[j].step->id, v[i].step->id) == 0)
                    snprintf(why, sizeof why,
                             "%s: actor '%s' held that public key before and retired it; a "
                             "retired key is not taken back",
                             type, v[i].step->id);
                else
                    snprintf(why, sizeof why,
                             "%s: that public key was given to actor '%s'; each actor has a key "
                             "of its own",
                             type, v[j].step->id);
                say(arg, v[i].from, why);
                break;
            }
    free(v);
    return 0;
}

/* The actor as it stood before `seq`, or NULL. */
static const dk_actor_info *actor_at(const history *h, const char *id, uint64_t seq)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) { /* first step with id >= `id` */
        size_t mid = (lo + hi) / 2;
        if (strcmp(h->v[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const dk_actor_info *found = NULL;
    for (size_t i = lo; i < h->n && strcmp(h->v[i].id, id) == 0 && h->v[i].seq < seq; i++)
        found = &h->v[i].a;
    return found;
}

/* A record that today's append would refuse by a rule added since (a notice). */
typedef struct notice {
    uint64_t seq;
    char why[DK_NOTICE_MAX];
} notice;

typedef struct case_buf {
    dk_record *recs;
    dk_event *evs;
    size_t n, cap;
    dk__slot_move *moves; /* the case's interview slot changes, in seq order */
    size_t nmoves, mcap;
    notice *notes; /* its notices, in seq order */
    size_t nnotes, ncap;
    /* the fold so far: what breaks the append rules (dk__breaks) and what is voided;
     * an undo's fold fills `next`, which becomes `breaks` */
    dk__breaks breaks, next;
    dk_void *voids;
    size_t nvoids;
} case_buf;

/* Keep a notice: the record at seq, of event `type`, breaks a rule an append is held to
 * now, and what dk_errmsg() says is why (the type put first where it does not say it). 0
 * or DK_ENOMEM. */
static int note(case_buf *b, uint64_t seq, const char *type)
{
    if (b->nnotes == b->ncap) {
        size_t cap = b->ncap ? 2 * b->ncap : 2;
        notice *more = realloc(b->notes, cap * sizeof *more);
        if (more == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        b->notes = more;
        b->ncap = cap;
    }
    const char *why = dk_errmsg();
    int says = strncmp(why, type, strlen(type)) == 0;
    b->notes[b->nnotes].seq = seq;
    snprintf(b->notes[b->nnotes++].why, DK_NOTICE_MAX, "%s%s%s", says ? "" : type, says ? "" : ": ",
             why);
    return 0;
}

/* The append rules' lookups (dk__lookup) in verify: actors from the snapshot's history,
 * events from the case's own records before the one checked. */
typedef struct in_case {
    const history *h;
    const case_buf *b;
    size_t upto;
} in_case;

static int case_actor(void *ctx, const char *id, uint64_t seq, dk_actor_info *out)
{
    const dk_actor_info *a = actor_at(((const in_case *)ctx)->h, id, seq);
    if (a == NULL)
        return DK_ENOTFOUND;
    *out = *a;
    return 0;
}

static int case_event(void *ctx, uint64_t seq, dk_event *ev, int64_t *recorded_at)
{
    const in_case *c = ctx;
    size_t lo = 0, hi = c->upto;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->b->recs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->upto || c->b->recs[lo].seq != seq)
        return DK_ENOTFOUND;
    *ev = c->b->evs[lo];
    *recorded_at = c->b->recs[lo].recorded_at;
    return 0;
}

static int slot_push(case_buf *b, const dk__slot_move *m)
{
    if (b->nmoves == b->mcap) {
        size_t cap = b->mcap ? 2 * b->mcap : 4;
        dk__slot_move *more = realloc(b->moves, cap * sizeof *more);
        if (more == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        b->moves = more;
        b->mcap = cap;
    }
    b->moves[b->nmoves++] = *m;
    return 0;
}

/* Record that the event at seq left the case holding st's slot (or none). */
static int slot_moved(case_buf *b, uint64_t seq, const dk_case_state *st)
{
    dk__slot_move m;
    m.seq = seq;
    m.active = st->interview.active != 0;
    snprintf(m.interviewer, sizeof m.interviewer, "%s", st->interview.interviewer);
    m.start = st->interview.slot_start;
    m.end = st->interview.slot_end;
    return slot_push(b, &m);
}

static int push(case_buf *b, const MDB_val *v)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 32;
        dk_record *r = realloc(b->recs, ncap * sizeof *r);
        if (r == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        b->recs = r;
        dk_event *e = realloc(b->evs, ncap * sizeof *e);
        if (e == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        b->evs = e;
        b->cap = ncap;
    }
    if (dk_record_decode(v->mv_data, v->mv_size, &b->recs[b->n]) != 0 ||
        dk_event_decode_stored(b->recs[b->n].body, b->recs[b->n].body_len, &b->evs[b->n]) != 0)
        return 1;
    b->n++;
    return 0;
}

/* The type of the earlier event of this case that revert i names, after
 * checking its hash; NULL (and rep set) if it names none. */
static const char *revert_target(const case_buf *b, size_t i, dk_verify_report *rep)
{
    const dk_event *ev = &b->evs[i];
    uint64_t target = 0;
    const char *s;
    size_t n;
    uint8_t want[DK_HASH_BYTES], got[DK_HASH_BYTES];
    char hex[2 * DK_HASH_BYTES + 1];
    size_t hl = 0;
    if (dk__data_u64(ev->data, ev->data_len, "target_seq", &target) != 0 ||
        dk__data_str(ev->data, ev->data_len, "target_hash", &s, &n) != 0 ||
        n != 2 * DK_HASH_BYTES) {
        dk__verify_bad(rep, b->recs[i].seq, "event.reverted without target_seq and target_hash");
        return NULL;
    }
    memcpy(hex, s, n);
    hex[n] = 0;
    dk_hex_decode(hex, want, sizeof want, &hl);
    for (size_t j = 0; j < i; j++) {
        if (b->recs[j].seq != target)
            continue;
        dk_leaf_hash(b->recs[j].raw, b->recs[j].raw_len, got);
        if (hl != DK_HASH_BYTES || memcmp(got, want, DK_HASH_BYTES) != 0) {
            dk__verify_bad(rep, b->recs[i].seq, "event.reverted names seq %llu with another hash",
                           (unsigned long long)target);
            return NULL;
        }
        /* an undo of an undo acts on what that one undid: the chain's end (each earlier
         * link was checked when verify met it) */
        while (strcmp(b->evs[j].type, "event.reverted") == 0) {
            uint64_t next = 0;
            size_t k = j;
            if (dk__data_u64(b->evs[j].data, b->evs[j].data_len, "target_seq", &next) == 0)
                for (k = 0; k < j && b->recs[k].seq != next; k++)
                    ;
            if (k >= j) {
                dk__verify_bad(rep, b->recs[i].seq,
                               "event.reverted names seq %llu, an undo whose own target is not "
                               "an earlier event of case '%s'",
                               (unsigned long long)target, ev->case_id);
                return NULL;
            }
            j = k;
        }
        return b->evs[j].type;
    }
    dk__verify_bad(rep, b->recs[i].seq,
                   "event.reverted names seq %llu, not an earlier event of case '%s'",
                   (unsigned long long)target, ev->case_id);
    return NULL;
}

/* Replay one case as the writer did, then compare the stored row (`row`,
 * borrowed). 0, or 1 (bad, rep says why). Pure: no LMDB, so any thread. */

/* Is the stored row exactly what the writer stores for `st`? A packed row's bytes must
 * be pack(st) byte for byte (so no flipped bit, even in padding, goes unseen); a row of
 * an earlier docket's raw layout (tag 0xdc) must hold an equal state, as the writer
 * reads it (packed and unpacked again). */
static int row_holds(const MDB_val *row, const dk_case_state *stored, const dk_case_state *st)
{
    uint8_t p[DK_CASE_STATE_PACKED_MAX];
    size_t n = dk_case_state_pack(st, p, sizeof p);
    const uint8_t *b = row->mv_data;
    if (row->mv_size == 16 + n && memcmp(b + 16, p, n) == 0)
        return 1;
    if (row->mv_size < 17 || b[16] != 0xdc)
        return 0;
    uint8_t q[DK_CASE_STATE_PACKED_MAX];
    size_t m = dk_case_state_pack(stored, q, sizeof q);
    return m == n && memcmp(p, q, n) == 0;
}

/* Replay the case's events against the rules and its stored row: 0, 1 (bad: rep says
 * where) or <0. Records from `from` on that only today's append rules refuse are kept as
 * notices in b. */
static int check_case(const history *h, case_buf *b, const MDB_val *row, uint64_t from,
                      dk_verify_report *rep)
{
    dk_case_state st, before;
    memset(&st, 0, sizeof st);
    for (size_t i = 0; i < b->n; i++) {
        before = st;
        const dk_record *rec = &b->recs[i];
        const dk_event *ev = &b->evs[i];
        if (dk_case_check_schema(ev) != 0)
            return dk__verify_bad(rep, rec->seq, "%s", dk_errmsg());
        if (ev->has_expect && ev->expect != st.version)
            return dk__verify_bad(rep, rec->seq,
                                  "the event expected version %llu of case '%s', which was "
                                  "at %llu",
                                  (unsigned long long)ev->expect, ev->case_id,
                                  (unsigned long long)st.version);
        const dk_actor_info *author = actor_at(h, ev->actor, rec->seq);
        if (author == NULL || author->revoked)
            return dk__verify_bad(rep, rec->seq, "author '%s' was not an enrolled actor then",
                                  ev->actor);
        const char *cos[DK_SIGS_MAX];
        unsigned cos_roles[DK_SIGS_MAX];
        size_t ncos = 0;
        for (size_t s = 1; s < rec->nsigs; s++) {
            const dk_actor_info *a = actor_at(h, rec->sigs[s].actor, rec->seq);
            if (a == NULL || a->revoked)
                return dk__verify_bad(rep, rec->seq,
                                      "co-signer '%s' was not an enrolled actor then",
                                      rec->sigs[s].actor);
            cos[ncos] = rec->sigs[s].actor;
            cos_roles[ncos++] = a->roles;
        }
        int revert = strcmp(ev->type, "event.reverted") == 0;
        int rollback = strcmp(ev->type, "case.rolled_back") == 0;
        const char *target = NULL;
        if (revert && (target = revert_target(b, i, rep)) == NULL)
            return 1;
        if (dk_case_permit(ev, author->roles, &st, cos, cos_roles, ncos, target) != 0)
            return dk__verify_bad(rep, rec->seq, "not permitted then: %s", dk_errmsg());
        int rc, code = 0;
        /* the codec's rules for new input first: one notice a record */
        dk_event fresh;
        int noted = rec->seq >= from && dk__event_decode_new(rec->body, rec->body_len, &fresh) != 0;
        if (noted && (rc = note(b, rec->seq, ev->type)) != 0)
            return rc;
        in_case c = {h, b, i};
        dk__lookup lk = {&c, case_actor, case_event};
        if (revert || rollback) {
            uint64_t bad_seq = 0;
            if (st.version == 0)
                return dk__verify_bad(rep, rec->seq, "%s on a case with no events", ev->type);
            /* one fold with the undo, against the fold so far without it (b->breaks,
             * b->voids): what it voids, and what it leaves in force breaking a rule */
            dk_void *voids = NULL;
            size_t nvoids = 0;
            b->next.n = 0;
            dk__undo_pass up = {&lk, &b->breaks, &b->next, 0, "", ""};
            rc = dk__case_fold_observed(b->recs, i + 1, &st, &voids, &nvoids, &bad_seq,
                                        dk__undo_observe, &up);
            if (rc == 0 && rec->seq >= from && !noted)
                code =
                    dk__undo_allowed_given(ev, b->recs, i + 1, b->voids, b->nvoids, voids, nvoids);
            if (rc == 0 && rec->seq >= from && !noted && code == 0) {
                int u = dk__undo_verdict(&up, rec->seq, rec->recorded_at, ev, &before, &st, &code);
                code = u == 1 ? code : u;
            }
            free(b->voids);
            b->voids = voids;
            b->nvoids = nvoids;
            dk__breaks t = b->breaks;
            b->breaks = b->next;
            b->next = t;
            if (rc == DK_ENOMEM || code == DK_ENOMEM)
                return DK_ENOMEM; /* not the ledger's fault */
            if (rc)
                return dk__verify_bad(rep, rec->seq, "%s left seq %llu invalid: %s", ev->type,
                                      (unsigned long long)bad_seq, dk_errmsg());
            if (code && (rc = note(b, rec->seq, ev->type)) != 0)
                return rc;
        } else if (dk_case_apply(&st, rec->seq, ev) != 0) {
            return dk__verify_bad(rep, rec->seq, "breaks the case rules as they stood: %s",
                                  dk_errmsg());
        } else {
            /* kept for the case's undos; a notice from `from` on. dk__append_rules alone:
             * what the undo fold adds, the author's right as the case stood, is
             * dk_case_permit's above on the same state, which passed */
            rc = dk__append_rules(&lk, rec->seq, rec->recorded_at, ev, &before, &st, &code);
            if (rc > 0 && dk__breaks_add(&b->breaks, rec->seq) != 0)
                return DK_ENOMEM;
            if (rc < 0 ||
                (rc > 0 && rec->seq >= from && !noted && (rc = note(b, rec->seq, ev->type)) != 0))
                return rc;
        }
        char assignee[DK_ACTOR_MAX + 1];
        if (!revert && !rollback && dk__new_assignee(ev, assignee) &&
            dk__assignable(assignee, actor_at(h, assignee, rec->seq), DK__ASSIGNEE_JOB) != 0)
            return dk__verify_bad(rep, rec->seq, "not permitted then: %s", dk_errmsg());
        if (!dk__same_slot(&before, &st) && (rc = slot_moved(b, rec->seq, &st)) != 0)
            return rc;
    }
    /* The writer checks appends against the stored state: it must be the fold. */
    dk_case_state stored;
    uint64_t head_version, head_last;
    int full = dk__case_row_decode(row->mv_data, row->mv_size, &head_version, &head_last, &stored);
    if (full < 0 || head_version != st.version || head_last != st.last_seq ||
        (full && (stored.version != st.version || stored.last_seq != st.last_seq ||
                  stored.status != st.status || stored.voided != st.voided ||
                  !row_holds(row, &stored, &st))))
        return dk__verify_bad(
            rep, st.last_seq,
            "the stored state of case '%s' (version %llu/%llu, %s) differs from the fold "
            "of its events (version %llu, %s)",
            b->evs[0].case_id, (unsigned long long)head_version, (unsigned long long)stored.version,
            dk_status_name(stored.status), (unsigned long long)st.version,
            dk_status_name(st.status));
    return 0;
}

/* ---- the pass: the walking thread reads, the pool checks ---- */

typedef struct case_item {
    dk__work link;
    MDB_val key; /* the case id, borrowed from the snapshot */
    MDB_val row; /* the stored state row, borrowed from the snapshot */
    size_t n;
    MDB_val recs[]; /* the case's records, in seq order, borrowed */
} case_item;

typedef struct rules_ctx {
    const history *h;
    pthread_mutex_t mu;
    dk_verify_report worst; /* the lowest failing seq so far */
    int err;                /* an out-of-memory while checking */
    uint64_t cases;
    dk__slots *slots; /* NULL when only part of the ledger is checked (--from) */
    uint64_t from;
    const dk_verify_opts *o; /* its notice callback, called under mu */
    uint64_t notices;
} rules_ctx;

/* A notice of the whole ledger's (not a case's): counted and passed on, before the
 * pool's threads start. */
static void count_notice(void *ctx, uint64_t seq, const char *why)
{
    rules_ctx *c = ctx;
    c->notices++;
    if (c->o && c->o->notice)
        c->o->notice(c->o->notice_arg, seq, why);
}

static void run_case(void *ctx, dk__work *w)
{
    rules_ctx *c = ctx;
    case_item *it = (case_item *)w;
    case_buf b;
    memset(&b, 0, sizeof b);
    dk_verify_report rep;
    memset(&rep, 0, sizeof rep);
    rep.ok = 1;
    int r = 0;
    for (size_t i = 0; r == 0 && i < it->n; i++)
        if ((r = push(&b, &it->recs[i])) > 0) /* the walk decoded it: cannot happen */
            dk__verify_bad(&rep, 0, "a record of the case does not decode");
    if (r == 0)
        r = check_case(c->h, &b, &it->row, c->from, &rep);
    /* A case whose replay failed at rep.seq still took the slots its events gave before
     * it: they count in the double-booking sweep, which may fail lower (the lowest seq
     * is reported). What it held is let go at the failure, so the end-of-ledger index
     * check does not count on a replay that stopped. */
    dk__slot_move end = {rep.seq, 0, "", 0, 0};
    if (r > 0 && c->slots && b.nmoves && slot_push(&b, &end) != 0)
        r = DK_ENOMEM;
    pthread_mutex_lock(&c->mu);
    if (r >= 0 && c->slots && b.nmoves) {
        int s = dk__slots_add(c->slots, b.moves, b.nmoves, it->key.mv_data, it->key.mv_size);
        if (s)
            r = s;
    }
    if (r < 0 && c->err == 0)
        c->err = r;
    else if (r > 0 && (c->worst.ok || rep.seq < c->worst.seq))
        c->worst = rep;
    c->cases += r == 0;
    c->notices += b.nnotes;
    for (size_t i = 0; c->o && c->o->notice && i < b.nnotes; i++)
        c->o->notice(c->o->notice_arg, b.notes[i].seq, b.notes[i].why);
    pthread_mutex_unlock(&c->mu);
    free(b.notes);
    free(b.recs);
    free(b.evs);
    free(b.moves);
    free(b.breaks.seq);
    free(b.next.seq);
    free(b.voids);
    free(it);
}

int dk__verify_rules(dk_ledger *lg, MDB_txn *txn, uint64_t from, int jobs, const dk_verify_opts *o,
                     dk_verify_report *rep)
{
    history h;
    int rc = load_history(lg, txn, &h);
    if (rc) {
        free(h.v);
        return rc;
    }
    rules_ctx c;
    memset(&c, 0, sizeof c);
    c.h = &h;
    c.worst.ok = 1;
    c.from = from;
    c.o = o;
    if ((rc = shared_keys(&h, from > 1 ? from : 1, count_notice, &c)) != 0) {
        free(h.v);
        return rc;
    }
    pthread_mutex_init(&c.mu, NULL);
    dk__workpool *pool = NULL;
    MDB_cursor *cur = NULL;
    if (from <= 1 && (rc = dk__slots_open(&c.slots)) != 0) {
        free(h.v);
        pthread_mutex_destroy(&c.mu);
        return rc;
    }
    if ((rc = dk__workpool_open(jobs, run_case, &c, &pool)) == 0 &&
        (rc = mdb_cursor_open(txn, lg->cases, &cur)) != 0)
        rc = dk__mdb_err(rc, "cannot open a cursor");
    MDB_val k, v;
    int r = 0;
    size_t cap = 64;
    MDB_val *recs = rc == 0 ? malloc(cap * sizeof *recs) : NULL;
    if (rc == 0 && recs == NULL)
        rc = dk__fail(DK_ENOMEM, "out of memory");
    /* Each case: its index keys ("id NUL seq") in order, then its state row. */
    int g = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (g == 0 && r == 0) {
        size_t idn;
        uint64_t seq, s;
        if (dk__case_key_parse(&k, &idn, &seq) != 0) {
            r = dk__verify_bad(rep, 0, "the cases database holds a malformed key of %zu bytes",
                               k.mv_size);
            break;
        }
        MDB_val id = {idn, k.mv_data}, row = {0, NULL};
        size_t n = 0;
        uint64_t last = 0;
        for (; g == 0 && dk__case_key_of(&k, id.mv_data, idn, &s);
             g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (s == 0) { /* the state row ends the case */
                row = v;
                g = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
                break;
            }
            if (n == cap) {
                MDB_val *more = realloc(recs, 2 * cap * sizeof *recs);
                if (more == NULL) {
                    r = dk__fail(DK_ENOMEM, "out of memory");
                    break;
                }
                recs = more;
                cap *= 2;
            }
            /* the seq's key for now; the record once the case is known to be wanted */
            recs[n].mv_size = 8;
            recs[n++].mv_data = (uint8_t *)k.mv_data + idn + 1;
            last = s;
        }
        if (r)
            break;
        if (g != 0 && g != MDB_NOTFOUND) {
            r = dk__mdb_err(g, "cannot read the case index");
            break;
        }
        if (n == 0) {
            r = dk__verify_bad(rep, 0, "case '%.*s' has a state row but no records in its index",
                               (int)idn, (const char *)id.mv_data);
            break;
        }
        if (from > 1 && last < from)
            continue; /* untouched since `from` */
        for (size_t i = 0; i < n && r == 0; i++) {
            MDB_val sk = recs[i];
            if (mdb_get(txn, lg->log, &sk, &recs[i]) != 0)
                r = dk__verify_bad(rep, dk_get_be64(sk.mv_data),
                                   "the case index of '%.*s' points at missing record %llu",
                                   (int)idn, (const char *)id.mv_data,
                                   (unsigned long long)dk_get_be64(sk.mv_data));
        }
        if (r)
            break;
        case_item *it = malloc(sizeof *it + n * sizeof it->recs[0]);
        if (it == NULL) {
            r = dk__fail(DK_ENOMEM, "out of memory");
            break;
        }
        it->n = n;
        it->key = id;
        memcpy(it->recs, recs, n * sizeof *recs);
        it->row = row;
        dk__workpool_submit(pool, &it->link);
    }
    if (r == 0 && g != 0 && g != MDB_NOTFOUND)
        r = dk__mdb_err(g, "cannot read the case index");
    if (pool)
        dk__workpool_wait(pool);
    dk__workpool_close(pool);
    if (cur)
        mdb_cursor_close(cur);
    free(recs);
    free(h.v);
    pthread_mutex_destroy(&c.mu);
    rep->cases = c.cases;
    rep->notices = c.notices;
    if (r == 0 && c.err)
        r = c.err;
    if (rc == 0 && r == 0 && c.slots) {
        /* across cases: double bookings, and the slot index against the bookings */
        dk_verify_report srep;
        memset(&srep, 0, sizeof srep);
        srep.ok = 1;
        MDB_val hk = {4, (void *)"head"}, hv;
        /* the same snapshot's head, which the walk found to match the chain */
        int got = mdb_get(txn, lg->meta, &hk, &hv), s;
        if (got == 0 && hv.mv_size >= 8)
            s = dk__slots_check(lg, txn, c.slots, dk_get_be64(hv.mv_data), &srep);
        else
            s = got ? dk__mdb_err(got, "cannot read the head")
                    : dk__fail(DK_ECORRUPT, "the stored head is malformed");
        if (s < 0)
            r = s;
        else if (s > 0 && (c.worst.ok || srep.seq < c.worst.seq))
            c.worst = srep;
    }
    dk__slots_close(c.slots);
    if (rc)
        return rc;
    if (r >= 0 && !c.worst.ok && (rep->ok || c.worst.seq < rep->seq)) {
        rep->ok = 0;
        rep->seq = c.worst.seq;
        snprintf(rep->reason, sizeof rep->reason, "%s", c.worst.reason);
        r = 1;
    }
    return r < 0 ? r : 0;
}
