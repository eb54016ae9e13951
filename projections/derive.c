/* derive.c - what each view holds for a case: pure functions of its folded state
 * (case_status, by_status, queue) and of each step of its history (diary, stats, errors). */
#include <stdlib.h>
#include <string.h>

#include "views_int.h"

/* ---- tuples ---- */

void dk__tup_init(tuple *t)
{
    t->buf[0] = 0;
    t->len = 1;
    t->n = 0;
}

static void tup_bytes(tuple *t, const char *s, size_t n)
{
    if (t->len + 2 + n > sizeof t->buf || t->n == 255)
        n = 0; /* cannot happen with docket's bounded fields; keep the tuple well formed */
    t->buf[t->len] = (uint8_t)(n >> 8);
    t->buf[t->len + 1] = (uint8_t)n;
    memcpy(t->buf + t->len + 2, s, n);
    t->len += 2 + n;
    t->buf[0] = (uint8_t)++t->n;
}

void dk__tup_str(tuple *t, const char *s)
{
    tup_bytes(t, s, strlen(s));
}

void dk__tup_i64(tuple *t, int64_t v)
{
    /* the decimal digits, as "%lld" gives them, without printf's machinery (a rebuild
     * writes a few per entry) */
    char b[24], *e = b + sizeof b, *p = e;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    tup_bytes(t, p, (size_t)(e - p));
}

void dk__tup_get(const uint8_t *v, size_t vlen, unsigned i, char *out, size_t cap)
{
    out[0] = 0;
    if (vlen < 1 || i >= v[0])
        return;
    size_t off = 1;
    for (unsigned k = 0; k <= i; k++) {
        if (off + 2 > vlen)
            return;
        size_t n = (size_t)v[off] << 8 | v[off + 1];
        if (off + 2 + n > vlen)
            return;
        if (k == i) {
            size_t m = n < cap - 1 ? n : cap - 1;
            memcpy(out, v + off + 2, m);
            out[m] = 0;
            return;
        }
        off += 2 + n;
    }
}

/* ---- entries from a case's state ---- */

static int is_live(int status)
{
    return status >= DK_ST_RECEIVED && status <= DK_ST_APPEALED;
}

static size_t key_join(uint8_t *k, const char *const *parts, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);
        if (o + l + 1 > KEY_MAX)
            l = KEY_MAX - o - 1;
        memcpy(k + o, parts[i], l);
        o += l;
        if (i + 1 < n)
            k[o++] = 0;
    }
    return o;
}

static void time_str(int64_t us, char out[DK_TIME_LEN])
{
    dk_time_format(us, out);
}

size_t dk__state_entries(const char *case_id, const dk_case_state *st, sentry out[3])
{
    if (st->status == DK_ST_NONE)
        return 0;
    size_t n = 0;
    sentry *e = &out[n++];
    const char *status = dk_status_name(st->status);
    e->view = DK_VIEW_CASE_STATUS;
    e->klen = key_join(e->key, &case_id, 1);
    dk__tup_init(&e->val);
    dk__tup_str(&e->val, status);
    dk__tup_str(&e->val, st->case_type);
    dk__tup_str(&e->val, st->channel);
    dk__tup_str(&e->val, st->received_on);
    dk__tup_str(&e->val, st->assignee);
    dk__tup_i64(&e->val, (int64_t)st->version);
    dk__tup_i64(&e->val, (int64_t)st->last_seq);
    dk__tup_i64(&e->val, (int64_t)st->voided);
    dk__tup_str(&e->val, st->decision.has ? st->decision.outcome : "");
    dk__tup_str(&e->val, st->decision.has ? st->decision.immigration_status : "");
    dk__tup_str(&e->val, st->decision.has ? st->decision.conditions : "");
    dk__tup_str(&e->val, st->decision.has ? st->decision.valid_until : "");
    char t[DK_TIME_LEN] = "";
    if (st->interview.active)
        time_str(st->interview.slot_start, t);
    dk__tup_str(&e->val, t);
    dk__tup_str(&e->val, st->interview.active ? st->interview.interviewer : "");
    dk__tup_i64(&e->val, st->open_errors);
    dk__tup_str(&e->val, st->appeal_open ? "open" : st->appeal_outcome);
    dk__tup_i64(&e->val, (int64_t)st->leave.cancelled_seq);
    dk__tup_i64(&e->val, (int64_t)st->leave.grant_seq);

    e = &out[n++];
    e->view = DK_VIEW_BY_STATUS;
    const char *bs[2] = {status, case_id};
    e->klen = key_join(e->key, bs, 2);
    dk__tup_init(&e->val);

    if (is_live(st->status) && st->assignee[0]) {
        e = &out[n++];
        e->view = DK_VIEW_QUEUE;
        const char *q[3] = {st->assignee, st->received_on, case_id};
        e->klen = key_join(e->key, q, 3);
        dk__tup_init(&e->val);
        dk__tup_str(&e->val, status);
    }
    return n;
}

/* ---- entries from each step of a case's history ---- */

int64_t dk__when(const dk_record *rec, const dk_event *ev)
{
    return ev->has_eff ? ev->eff : rec->recorded_at;
}

int dk__is_meta(const char *type)
{
    /* called twice per record in a rebuild: the first byte settles most */
    return type[0] == 'e'   ? strcmp(type, "event.reverted") == 0
           : type[0] == 'c' ? strcmp(type, "case.rolled_back") == 0
                            : 0;
}

static void day_of(int64_t us, char day[11])
{
    char t[DK_TIME_LEN];
    time_str(us, t);
    memcpy(day, t, 10);
    day[10] = 0;
}

/* day NUL start(8) interviewer NUL case NUL booking seq(8): the booking's seq keeps two
 * bookings of one slot apart (the same slot booked again after an attended interview
 * used to overwrite it, and its cancellation then dropped both). */
static size_t diary_key(uint8_t *k, const char *case_id, const struct dk_interview *iv)
{
    char day[11];
    day_of(iv->slot_start, day);
    size_t o = 0;
    memcpy(k, day, 10);
    o = 10;
    k[o++] = 0;
    dk_put_be64(k + o, (uint64_t)iv->slot_start ^ (1ull << 63));
    o += 8;
    size_t l = strlen(iv->interviewer);
    memcpy(k + o, iv->interviewer, l);
    o += l;
    k[o++] = 0;
    l = strlen(case_id);
    memcpy(k + o, case_id, l);
    o += l;
    k[o++] = 0;
    dk_put_be64(k + o, iv->seq);
    return o + 8;
}

static void diary_val(tuple *t, const struct dk_interview *iv, const char *state)
{
    char a[DK_TIME_LEN], b[DK_TIME_LEN];
    time_str(iv->slot_start, a);
    time_str(iv->slot_end, b);
    dk__tup_init(t);
    dk__tup_str(t, a);
    dk__tup_str(t, b);
    dk__tup_str(t, iv->location);
    dk__tup_str(t, state);
}

static int has_seq(const uint64_t *seqs, uint32_t n, uint64_t seq)
{
    for (uint32_t i = 0; i < n && i < DK_OPEN_ERRORS_MAX; i++)
        if (seqs[i] == seq)
            return 1;
    return 0;
}

void dk__step_prev(step_prev *p, const dk_case_state *st)
{
    p->interview = st->interview;
    p->open_errors = st->open_errors;
    memcpy(p->error_seqs, st->error_seqs, sizeof p->error_seqs);
    p->decision_seq = st->decision.seq;
}

static size_t error_key(uint8_t *k, int open, uint64_t seq)
{
    k[0] = open ? 'o' : 'r';
    dk_put_be64(k + 1, seq);
    return 9;
}

int dk__step_entries(const char *case_id, const step_prev *p, const dk_case_state *q,
                     const dk_event *ev, const dk_record *rec, time_fn tf, void *tctx, emit_fn emit,
                     void *ectx)
{
    uint8_t k[KEY_MAX];
    tuple t;
    size_t kl;
    int rc = 0;
    /* diary: a booking or move adds the new slot and drops the one moved away from;
     * a cancellation drops it; attendance or a no-show marks it */
    if (q->interview.seq != p->interview.seq && q->interview.active) {
        if (p->interview.active) {
            kl = diary_key(k, case_id, &p->interview);
            diary_val(&t, &p->interview, "booked");
            if ((rc = emit(ectx, DK_VIEW_DIARY, k, kl, t.buf, t.len, -1)) != 0)
                return rc;
        }
        kl = diary_key(k, case_id, &q->interview);
        diary_val(&t, &q->interview, "booked");
        if ((rc = emit(ectx, DK_VIEW_DIARY, k, kl, t.buf, t.len, +1)) != 0)
            return rc;
    } else if (p->interview.active && !q->interview.active) {
        const char *now = q->interview.attended > p->interview.attended   ? "attended"
                          : q->interview.no_shows > p->interview.no_shows ? "no_show"
                                                                          : NULL;
        kl = diary_key(k, case_id, &p->interview);
        diary_val(&t, &p->interview, "booked");
        if ((rc = emit(ectx, DK_VIEW_DIARY, k, kl, t.buf, t.len, -1)) != 0)
            return rc;
        if (now) {
            diary_val(&t, &p->interview, now);
            if ((rc = emit(ectx, DK_VIEW_DIARY, k, kl, t.buf, t.len, +1)) != 0)
                return rc;
        }
    }
    /* errors: reports opened and resolved at this step */
    for (uint32_t i = 0; i < q->open_errors && i < DK_OPEN_ERRORS_MAX; i++) {
        uint64_t s = q->error_seqs[i];
        if (has_seq(p->error_seqs, p->open_errors, s))
            continue;
        kl = error_key(k, 1, s);
        dk__tup_init(&t);
        dk__tup_str(&t, case_id);
        dk__tup_i64(&t, dk__when(rec, ev));
        if ((rc = emit(ectx, DK_VIEW_ERRORS, k, kl, t.buf, t.len, +1)) != 0)
            return rc;
    }
    for (uint32_t i = 0; i < p->open_errors && i < DK_OPEN_ERRORS_MAX; i++) {
        uint64_t s = p->error_seqs[i];
        if (has_seq(q->error_seqs, q->open_errors, s))
            continue;
        int64_t reported = 0, resolved = dk__when(rec, ev);
        if ((rc = tf(tctx, s, &reported)) != 0)
            return rc;
        kl = error_key(k, 1, s);
        dk__tup_init(&t);
        dk__tup_str(&t, case_id);
        dk__tup_i64(&t, reported);
        if ((rc = emit(ectx, DK_VIEW_ERRORS, k, kl, t.buf, t.len, -1)) != 0)
            return rc;
        kl = error_key(k, 0, s);
        dk__tup_i64(&t, resolved);
        dk__tup_i64(&t, (int64_t)rec->seq);
        int64_t took; /* times are bounded at append; a stored one past the bounds saturates */
        if (__builtin_sub_overflow(resolved, reported, &took))
            took = resolved > reported ? INT64_MAX : INT64_MIN;
        dk__tup_i64(&t, took);
        if ((rc = emit(ectx, DK_VIEW_ERRORS, k, kl, t.buf, t.len, +1)) != 0)
            return rc;
    }
    /* stats: a decision recorded at this step counts once per period x condition */
    if (q->decision.has && q->decision.seq == rec->seq && p->decision_seq != rec->seq) {
        /* the year, the month and the day: a day's first 4, 7 and 10 characters (copied,
         * not printed: snprintf was 1.6% of a rebuild's instructions outside SHA-256) */
        char periods[3][11], conds[sizeof q->decision.conditions];
        day_of(dk__when(rec, ev), periods[2]);
        memcpy(periods[0], periods[2], 4);
        periods[0][4] = 0;
        memcpy(periods[1], periods[2], 7);
        periods[1][7] = 0;
        for (int pi = 0; pi < 3 && rc == 0; pi++) {
            const char *parts[4] = {periods[pi], q->case_type, q->decision.outcome, "*"};
            kl = key_join(k, parts, 4);
            rc = emit(ectx, DK_VIEW_STATS, k, kl, NULL, 0, +1);
            memcpy(conds, q->decision.conditions, sizeof conds);
            conds[sizeof conds - 1] = 0;
            for (char *save = NULL, *c = strtok_r(conds, ",", &save); c && rc == 0;
                 c = strtok_r(NULL, ",", &save)) {
                parts[3] = c;
                kl = key_join(k, parts, 4);
                rc = emit(ectx, DK_VIEW_STATS, k, kl, NULL, 0, +1);
            }
        }
    }
    return rc;
}
