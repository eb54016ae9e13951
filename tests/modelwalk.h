/* modelwalk.h - the model walk (test_case, and test_views with live views): random valid
 * events and undos on five cases, each append's verdict predicted by a model of the lifecycle. */
#ifndef DOCKET_TEST_MODELWALK_H
#define DOCKET_TEST_MODELWALK_H

#include "casefix.h"

static const char *const status_names[] = {
    "none",    "received", "validated", "under_consideration", "interview_scheduled",
    "decided", "appealed", "closed",    "withdrawn",           "leave_cancelled"};

#define S(x) (1u << DK_ST_##x)
#define ALL_BUT_NONE                                                                               \
    (S(RECEIVED) | S(VALIDATED) | S(UNDER_CONSIDERATION) | S(INTERVIEW_SCHEDULED) | S(DECIDED) |   \
     S(APPEALED) | S(CLOSED) | S(WITHDRAWN) | S(LEAVE_CANCELLED))
#define OPEN_CASE                                                                                  \
    (S(RECEIVED) | S(VALIDATED) | S(UNDER_CONSIDERATION) | S(INTERVIEW_SCHEDULED) | S(DECIDED) |   \
     S(APPEALED))
#define BEFORE_DECISION                                                                            \
    (S(RECEIVED) | S(VALIDATED) | S(UNDER_CONSIDERATION) | S(INTERVIEW_SCHEDULED))

enum { TO_SAME = -1, TO_DATA = -2 };

#define R_CW DK_ROLE_CASEWORKER
#define R_SC DK_ROLE_SENIOR_CASEWORKER
#define R_MG DK_ROLE_MIGRATION

typedef struct xrow {
    const char *type;
    unsigned from; /* statuses it may be appended in */
    int to;        /* resulting status, TO_SAME, or TO_DATA (the event's data decides) */
    unsigned roles;
} xrow;

static const xrow expected[] = {
    {"case.opened", S(NONE), DK_ST_RECEIVED, R_CW | R_SC | R_MG},
    {"case.assigned", OPEN_CASE, TO_SAME, R_SC | R_MG},
    {"case.status_changed", S(RECEIVED) | S(VALIDATED) | S(UNDER_CONSIDERATION), TO_DATA,
     R_CW | R_SC | R_MG},
    {"case.withdrawn", BEFORE_DECISION, DK_ST_WITHDRAWN, R_CW | R_SC | R_MG},
    {"case.closed", S(DECIDED) | S(WITHDRAWN) | S(LEAVE_CANCELLED), DK_ST_CLOSED,
     R_CW | R_SC | R_MG},
    {"decision.recorded", S(UNDER_CONSIDERATION), DK_ST_DECIDED, R_CW | R_SC | R_MG},
    /* wherever a grant's leave may still be held: after an upgrade appeal allowed, a
     * withdrawal, a closure */
    {"leave.cancelled", ALL_BUT_NONE & ~S(LEAVE_CANCELLED), DK_ST_LEAVE_CANCELLED, R_SC},
    {"note.added", ALL_BUT_NONE, TO_SAME, R_CW | R_SC | R_MG},
    {"document.attached", ALL_BUT_NONE, TO_SAME, R_CW | R_SC | R_MG},
    {"interview.booked", S(VALIDATED) | S(UNDER_CONSIDERATION), DK_ST_INTERVIEW_SCHEDULED,
     R_CW | R_SC | R_MG},
    {"interview.rescheduled", S(INTERVIEW_SCHEDULED), TO_SAME, R_CW | R_SC | R_MG},
    {"interview.cancelled", S(INTERVIEW_SCHEDULED) | S(WITHDRAWN) | S(CLOSED),
     DK_ST_UNDER_CONSIDERATION, R_CW | R_SC | R_MG}, /* withdrawn, closed: status kept */
    {"interview.attended", S(INTERVIEW_SCHEDULED), DK_ST_UNDER_CONSIDERATION, R_CW | R_SC | R_MG},
    {"interview.no_show", S(INTERVIEW_SCHEDULED), DK_ST_UNDER_CONSIDERATION, R_CW | R_SC | R_MG},
    {"error.reported", ALL_BUT_NONE, TO_SAME, R_CW | R_SC | R_MG},
    {"status.corrected", ALL_BUT_NONE, TO_DATA, R_SC | R_MG},
    {"contact.updated", ALL_BUT_NONE, TO_SAME, R_CW | R_SC | R_MG},
    {"appeal.lodged", S(DECIDED), DK_ST_APPEALED, R_CW | R_SC | R_MG},
    {"appeal.decided", S(APPEALED) | S(LEAVE_CANCELLED) | S(CLOSED), TO_DATA,
     R_SC | R_MG}, /* leave_cancelled, closed: with an appeal open, status kept */
    {"event.reverted", ALL_BUT_NONE, TO_SAME, R_CW | R_SC},
    {"case.rolled_back", ALL_BUT_NONE, TO_SAME, R_CW | R_SC},
};
#define NTYPES (sizeof expected / sizeof expected[0])

/* ---- comparing states ---- */

#define SAME_NUM(what, a, b, f)                                                                    \
    do {                                                                                           \
        if ((a)->f != (b)->f)                                                                      \
            TH_FAIL("%s: %s differs: %lld != %lld", what, #f, (long long)(a)->f,                   \
                    (long long)(b)->f);                                                            \
    } while (0)
#define SAME_STR(what, a, b, f)                                                                    \
    do {                                                                                           \
        if (strcmp((a)->f, (b)->f) != 0)                                                           \
            TH_FAIL("%s: %s differs: \"%s\" != \"%s\"", what, #f, (a)->f, (b)->f);                 \
    } while (0)

/* Everything a case holds apart from its counters (version, last_seq, voided). */
static inline void same_content(const char *what, const dk_case_state *a, const dk_case_state *b)
{
    if (a->status != b->status)
        TH_FAIL("%s: status differs: %s != %s", what, dk_status_name(a->status),
                dk_status_name(b->status));
    SAME_STR(what, a, b, case_type);
    SAME_STR(what, a, b, applicant_name);
    SAME_STR(what, a, b, date_of_birth);
    SAME_STR(what, a, b, nationality);
    SAME_STR(what, a, b, assignee);
    SAME_NUM(what, a, b, decision.has);
    SAME_STR(what, a, b, decision.outcome);
    SAME_STR(what, a, b, decision.immigration_status);
    SAME_STR(what, a, b, decision.valid_until);
    SAME_STR(what, a, b, decision.conditions);
    SAME_NUM(what, a, b, decision.seq);
    SAME_NUM(what, a, b, interview.active);
    SAME_NUM(what, a, b, interview.slot_start);
    SAME_NUM(what, a, b, interview.slot_end);
    SAME_STR(what, a, b, interview.interviewer);
    SAME_NUM(what, a, b, interview.seq);
    SAME_NUM(what, a, b, interview.attended);
    SAME_NUM(what, a, b, interview.no_shows);
    SAME_NUM(what, a, b, interview.cancelled);
    SAME_NUM(what, a, b, open_errors);
    for (uint32_t i = 0; i < a->open_errors && i < DK_OPEN_ERRORS_MAX; i++)
        SAME_NUM(what, a, b, error_seqs[i]);
    SAME_STR(what, a, b, email);
    SAME_NUM(what, a, b, appeal_open);
    SAME_STR(what, a, b, appeal_outcome);
}

static inline void same_state(const char *what, const dk_case_state *a, const dk_case_state *b)
{
    same_content(what, a, b);
    SAME_NUM(what, a, b, version);
    SAME_NUM(what, a, b, last_seq);
    SAME_NUM(what, a, b, voided);
}

/* A case's records, copied out of the iterator. */
typedef struct caserecs {
    size_t n;
    dk_record *r;
    uint8_t **raw;
} caserecs;

static inline void read_case(dk_ledger *lg, const char *case_id, caserecs *cr)
{
    dk_iter *it;
    dk_record rec;
    size_t cap = 16;
    memset(cr, 0, sizeof *cr);
    cr->r = malloc(cap * sizeof *cr->r);
    cr->raw = malloc(cap * sizeof *cr->raw);
    ASSERT(cr->r && cr->raw);
    ASSERT_OK(dk_iter_open(lg, 1, case_id, &it));
    int rc;
    while ((rc = dk_iter_next(it, &rec)) == 0) {
        if (cr->n == cap) {
            cap *= 2;
            cr->r = realloc(cr->r, cap * sizeof *cr->r);
            cr->raw = realloc(cr->raw, cap * sizeof *cr->raw);
            ASSERT(cr->r && cr->raw);
        }
        cr->raw[cr->n] = malloc(rec.raw_len);
        ASSERT(cr->raw[cr->n]);
        memcpy(cr->raw[cr->n], rec.raw, rec.raw_len);
        ASSERT_OK(dk_record_decode(cr->raw[cr->n], rec.raw_len, &cr->r[cr->n]));
        cr->n++;
    }
    ASSERT_ERR(rc, DK_ENOTFOUND);
    dk_iter_close(it);
}

static inline void caserecs_free(caserecs *cr)
{
    for (size_t i = 0; i < cr->n; i++)
        free(cr->raw[i]);
    free(cr->raw);
    free(cr->r);
}

enum { NCASES = 5 };

/* What the random walk did, so the test can insist it covered the ground. */
enum {
    N_ACCEPTED,
    N_REFUSED,
    N_REVERTS,
    N_REDOS,
    N_ROLLBACKS,
    N_SLOT_CONFLICTS,
    N_DECISIONS,
    N_FOUR_EYES_REFUSED,
    N_DEPENDENT_REFUSED,
    N_UNCORRECTABLE,  /* status corrections the append rule refused */
    N_UNDO_RULES,     /* undos that would leave an event in force against an append rule */
    N_NO_INTERVIEWER, /* bookings of one never enrolled */
    N_COUNTS
};

typedef struct mrec {
    uint64_t seq;
    int64_t at;
    int meta; /* 0, 1 event.reverted, 2 case.rolled_back */
    uint64_t target;
    int64_t to_time;
    uint8_t *body;
    size_t len;
    char type[DK_TYPE_MAX + 1];
} mrec;

typedef struct mcase {
    char id[16];
    dk_case_state st;
    mrec *r;
    size_t n, cap;
} mcase;

typedef struct prop {
    world w;
    mcase c[NCASES];
    uint64_t head;
    uint64_t rng;
    unsigned n[N_COUNTS];
} prop;

static inline uint64_t rnd(prop *p)
{
    uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline unsigned rn(prop *p, unsigned n)
{
    return (unsigned)(rnd(p) % n);
}

/* The model's own fold: reverts void their target, rollbacks every earlier
 * record after to_time, each only if not voided itself (latest first); the
 * rest re-applied with dk_case_apply. `extra` is a record not yet appended. */
static inline unsigned roles_of(const char *id)
{
    return is(id, "carol") ? R_CW
           : is(id, "sam") ? R_CW | R_SC
           : is(id, "sue") ? R_SC
                           : DK_ROLE_ADMIN;
}

/* The rules checked at append only, as the model states them: the code a plain event
 * `type` taking the case from `before` to `after` is refused with (0: none), and in *rule
 * which count it adds to. */
static inline int model_append_rule(const char *type, const dk_case_state *before,
                                    const dk_case_state *after, int *rule)
{
    /* no status correction into or out of these, and no appeal decided that was not lodged */
    unsigned fixed = 1u << DK_ST_DECIDED | 1u << DK_ST_APPEALED | 1u << DK_ST_CLOSED |
                     1u << DK_ST_LEAVE_CANCELLED | 1u << DK_ST_INTERVIEW_SCHEDULED;
    if (is(type, "status.corrected") && after->status != before->status &&
        ((1u << after->status | 1u << before->status) & fixed))
        return *rule = N_UNCORRECTABLE, DK_ETRANSITION;
    if (is(type, "leave.cancelled") && before->leave.grant_seq == 0)
        return DK_ETRANSITION; /* the fold alone takes a latest grant, as it did before */
    if (is(type, "leave.cancelled") && before->interview.active)
        return DK_ETRANSITION; /* an interview is cancelled first */
    if (is(type, "status.corrected") && after->status != before->status && before->interview.active)
        return DK_ETRANSITION; /* and before the status is corrected */
    if (is(type, "appeal.decided") && !before->appeal_open)
        return DK_ETRANSITION;
    /* an interview is held by an enrolled caseworker: "ivy" was never enrolled */
    if ((is(type, "interview.booked") || is(type, "interview.rescheduled")) &&
        is(after->interview.interviewer, "ivy"))
        return *rule = N_NO_INTERVIEWER, DK_EDENIED;
    return 0;
}

/* The case's fold (plus `extra`, if any): voided_by[i] the seq that voids record i, and
 * breaks[i] whether record i, applied, breaks model_append_rule in the case as it then
 * stands (either may be NULL). */
static inline int model_fold(const mcase *c, const mrec *extra, dk_case_state *out, uint64_t *bad,
                             uint64_t *voided_by, uint8_t *breaks)
{
    size_t n = c->n + (extra != NULL);
    uint64_t *vb = calloc(n + 1, sizeof *vb);
    ASSERT(vb);
#define AT(i) ((i) < c->n ? &c->r[i] : extra)
    for (size_t k = n; k-- > 0;) {
        const mrec *m = AT(k);
        if (vb[k] || !m->meta)
            continue;
        for (size_t j = 0; j < k; j++)
            if (!vb[j] && ((m->meta == 1 && AT(j)->seq == m->target) ||
                           (m->meta == 2 && AT(j)->at > m->to_time)))
                vb[j] = m->seq;
    }
    memset(out, 0, sizeof *out);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const mrec *m = AT(i);
        if (vb[i] || m->meta) {
            out->version++;
            out->voided += vb[i] != 0;
            out->last_seq = m->seq;
            continue;
        }
        dk_event ev;
        ASSERT_OK(dk_event_decode(m->body, m->len, &ev));
        dk_case_state before = *out;
        int rule;
        if ((rc = dk_case_apply(out, m->seq, &ev)) != 0)
            *bad = m->seq;
        else if (breaks) /* or a caseworker's decision on a case not assigned to them */
            breaks[i] = model_append_rule(ev.type, &before, out, &rule) != 0 ||
                        (is(ev.type, "decision.recorded") && !(roles_of(ev.actor) & R_SC) &&
                         !is(before.assignee, ev.actor));
    }
#undef AT
    if (voided_by)
        memcpy(voided_by, vb, n * sizeof *vb);
    free(vb);
    return rc;
}

static inline int same_slot(const dk_case_state *a, const dk_case_state *b)
{
    if (a->interview.active != b->interview.active)
        return 0;
    return !a->interview.active || (a->interview.slot_start == b->interview.slot_start &&
                                    a->interview.slot_end == b->interview.slot_end &&
                                    is(a->interview.interviewer, b->interview.interviewer));
}

/* Would case c's new state hold an interviewer another case already holds? */
static inline int slot_conflict(const prop *p, const mcase *c, const dk_case_state *nw)
{
    if (same_slot(&c->st, nw) || !nw->interview.active)
        return 0;
    for (int i = 0; i < NCASES; i++) {
        const dk_case_state *o = &p->c[i].st;
        if (&p->c[i] == c || !o->interview.active ||
            !is(o->interview.interviewer, nw->interview.interviewer))
            continue;
        if (o->interview.slot_start < nw->interview.slot_end &&
            o->interview.slot_end > nw->interview.slot_start)
            return 1;
    }
    return 0;
}

static inline const char *pick_type(prop *p, const mcase *c)
{
    unsigned r = rn(p, 100);
    if (c->st.status == DK_ST_NONE && r < 70)
        return "case.opened";
    if (r < 8)
        return "event.reverted";
    if (r < 10)
        return "case.rolled_back";
    if (r < 80) { /* something the table allows now, lifecycle moves more often */
        const char *ok[8 * NTYPES];
        size_t n = 0;
        for (size_t i = 0; i < NTYPES; i++) {
            const char *t = expected[i].type;
            if (!((expected[i].from >> c->st.status) & 1) || is(t, "event.reverted") ||
                is(t, "case.rolled_back"))
                continue;
            int passive = is(t, "note.added") || is(t, "document.attached") ||
                          is(t, "error.reported") || is(t, "contact.updated") ||
                          is(t, "status.corrected") || is(t, "case.closed") ||
                          is(t, "case.withdrawn") ||
                          (is(t, "leave.cancelled") && c->st.status != DK_ST_DECIDED);
            /* bookings and moves often, so that the walk meets double bookings */
            int booking = is(t, "interview.booked") || is(t, "interview.rescheduled");
            for (int w = passive ? 1 : booking ? 8 : 4; w > 0; w--)
                ok[n++] = t;
        }
        if (n)
            return ok[rn(p, (unsigned)n)];
    }
    return expected[rn(p, NTYPES)].type;
}

static const char *const people[] = {"carol", "sam", "sue"};

static inline void slot_times(prop *p, dmap *d)
{
    const int64_t half_hour = 1800000000;
    int64_t base;
    ASSERT_OK(dk_time_parse("2026-11-24T09:00:00Z", &base));
    int64_t s = base + (int64_t)rn(p, 5) * half_hour;
    int64_t e = s + (1 + (int64_t)rn(p, 3)) * half_hour;
    char a[DK_TIME_LEN], b[DK_TIME_LEN];
    dk_time_format(s, a);
    dk_time_format(e, b);
    d_str(d, "slot_start", a);
    d_str(d, "slot_end", b);
}

/* Random but schema-valid data for `type` on case c. */
static inline void random_data(prop *p, const mcase *c, const char *type, dmap *d, int step)
{
    static const char *const case_types[] = {"visa", "euss", "asylum", "family"};
    static const char *const edge_to[DK_ST_COUNT] = {[DK_ST_RECEIVED] = "validated",
                                                     [DK_ST_VALIDATED] = "under_consideration",
                                                     [DK_ST_UNDER_CONSIDERATION] = "validated"};
    char buf[64];
    fill_valid(d, type);
    if (is(type, "case.opened")) {
        d_str(d, "case_type", case_types[rn(p, 4)]);
    } else if (is(type, "case.assigned")) {
        d_str(d, "caseworker", people[rn(p, 3)]);
    } else if (is(type, "case.status_changed")) {
        if (edge_to[c->st.status] && rn(p, 10) < 7)
            d_str(d, "to", edge_to[c->st.status]);
        else
            d_str(d, "to", status_names[1 + rn(p, DK_ST_COUNT - 1)]);
    } else if (is(type, "decision.recorded")) {
        unsigned o = rn(p, 10);
        d_str(d, "outcome", o < 5 ? "granted" : o < 8 ? "refused" : "void");
        if (o >= 5) { /* no leave in a refusal or a void decision */
            static const char *const leave[] = {"conditions", "immigration_status",
                                                "no_recourse_to_public_funds", "valid_from",
                                                "valid_until"};
            for (size_t i = 0; i < 5; i++)
                d_del(d, leave[i]);
        } else if (rn(p, 2)) {
            d_str(d, "immigration_status", "ILR");
            d_del(d, "valid_until");
        }
    } else if (is(type, "note.added")) {
        snprintf(buf, sizeof buf, "note at step %d", step);
        d_str(d, "text", buf);
    } else if (is(type, "interview.booked") || is(type, "interview.rescheduled")) {
        slot_times(p, d);
        if (is(type, "interview.booked") || rn(p, 2))
            d_str(d, "interviewer",
                  (const char *[]){"ivan", "ivan", "ivan", "ivan", "ivan", "iris", "iris",
                                   "ivy"}[rn(p, 8)]);
    } else if (is(type, "status.corrected")) {
        if (c->st.open_errors && rn(p, 10) < 8)
            d_u64(d, "error_ref", c->st.error_seqs[rn(p, c->st.open_errors)]);
        else
            d_u64(d, "error_ref", 1 + rn(p, (unsigned)(p->head + 1)));
        unsigned f = rn(p, 3);
        if (f == 0 && c->st.assignee[0]) {
            d_str(d, "field", "assignee");
            d_str(d, "from", rn(p, 10) < 8 ? c->st.assignee : "nobody");
            d_str(d, "to", people[rn(p, 3)]);
        } else if (f == 1 && c->st.applicant_name[0]) {
            d_str(d, "field", "applicant_name");
            d_str(d, "from", c->st.applicant_name);
            snprintf(buf, sizeof buf, "Renamed %d", step);
            d_str(d, "to", buf);
        } else {
            d_str(d, "field", "status");
            d_str(d, "from",
                  rn(p, 10) < 8 ? dk_status_name(c->st.status) : status_names[1 + rn(p, 9)]);
            d_str(d, "to", status_names[1 + rn(p, DK_ST_COUNT - 1)]);
        }
    } else if (is(type, "contact.updated")) {
        snprintf(buf, sizeof buf, "a%d@example.org", step);
        d_str(d, "email", buf);
    } else if (is(type, "appeal.decided")) {
        d_str(d, "outcome", rn(p, 2) ? "allowed" : "dismissed");
    }
}

static inline const dk_key *key_of(const prop *p, const char *id)
{
    return is(id, "carol") ? p->w.carol
           : is(id, "sam") ? p->w.sam
           : is(id, "sue") ? p->w.sue
                           : p->w.admin;
}

static inline void prop_step(prop *p, int step)
{
    mcase *c = &p->c[rn(p, NCASES)];
    const char *type = pick_type(p, c);
    unsigned a = rn(p, 100);
    const char *author = a < 35 ? "carol" : a < 70 ? "sam" : a < 92 ? "sue" : "admin";
    dmap d;
    mrec self;
    int target_err = 0;
    char target_buf[DK_TYPE_MAX + 1];
    const char *target_type = NULL;
    int redo = 0; /* an undo of an undo */
    memset(&self, 0, sizeof self);
    random_data(p, c, type, &d, step);

    if (is(type, "event.reverted")) {
        const mcase *tc = c;
        for (int i = 0; tc->n == 0 && i < NCASES; i++)
            tc = &p->c[i];
        if (tc->n == 0)
            return; /* nothing in the ledger to revert yet */
        size_t j = rn(p, 2) && tc->n > 3 ? tc->n - 1 - rn(p, 3) : rn(p, (unsigned)tc->n);
        char hex[2 * DK_HASH_BYTES + 1];
        record_hash_hex(p->w.lg, tc->r[j].seq, hex);
        if (rn(p, 25) == 0) {
            hex[7] = hex[7] == '0' ? '1' : '0';
            target_err = DK_EINVAL;
        }
        if (tc != c)
            target_err = DK_EINVAL;
        d_str(&d, "target_hash", hex);
        d_u64(&d, "target_seq", tc->r[j].seq);
        /* an undo of an undo acts on what that one undid: the chain's end */
        size_t root = j;
        redo = is(tc->r[j].type, "event.reverted");
        for (size_t k = 0; k < tc->n && is(tc->r[root].type, "event.reverted");)
            if (tc->r[k].seq == tc->r[root].target)
                root = k, k = 0;
            else
                k++;
        snprintf(target_buf, sizeof target_buf, "%s", tc->r[root].type);
        target_type = target_buf;
        self.meta = 1;
        self.target = tc->r[j].seq;
    } else if (is(type, "case.rolled_back")) {
        int64_t to = c->n ? c->r[rn(p, (unsigned)c->n)].at : 1795510800000000;
        if (rn(p, 6) == 0)
            to -= 1;
        rollback_data(&d, to);
        self.meta = 2;
        self.to_time = to;
    }

    /* co-signers: mostly a proper second senior for the undo events */
    const char *co = NULL;
    unsigned cr = rn(p, 100);
    if (self.meta || cr < 5) {
        if (cr < 60)
            co = is(author, "sam") ? "sue" : "sam";
        else if (cr < 80 && !is(author, "carol"))
            co = "carol";
    }
    uint64_t expect_v = 0, *expect = NULL;
    unsigned ex = rn(p, 100);
    if (ex < 10) {
        expect_v = c->st.version + (ex < 6 ? 0 : 1 + rn(p, 2));
        expect = &expect_v;
    }

    tev e;
    tev_make(&e, type, c->id, author, &d, expect);

    /* the model's verdict, in the writer's order of checks */
    dk_case_state nw = c->st;
    int want = target_err, slot = 0, rule = -1;
    uint64_t bad = 0;
    if (want == 0 && expect && expect_v != c->st.version)
        want = DK_ECONFLICT;
    if (want == 0) {
        const char *cos[1] = {co};
        unsigned cos_roles[1] = {co ? roles_of(co) : 0};
        want = dk_case_permit(&e.ev, roles_of(author), &c->st, cos, cos_roles, co ? 1 : 0,
                              target_type);
    }
    if (want == 0 && self.meta) {
        self.seq = p->head + 1;
        uint64_t *vb = calloc(c->n + 1, sizeof *vb), *v0 = calloc(c->n + 1, sizeof *v0);
        uint8_t *bw = calloc(c->n + 1, 1), *b0 = calloc(c->n + 1, 1);
        ASSERT(vb && v0 && bw && b0);
        dk_case_state now;
        if (c->st.version == 0) /* undo needs events; a case voided back to nothing has them */
            want = DK_ETRANSITION;
        else if (model_fold(c, &self, &nw, &bad, vb, bw) != 0)
            want = DK_ETRANSITION;
        /* a rollback must change which events (reverts and rollbacks aside) are voided */
        int changes = 0;
        if (want == 0)
            ASSERT_OK(model_fold(c, NULL, &now, &bad, v0, b0));
        if (want == 0 && self.meta == 2) {
            for (size_t j = 0; j < c->n; j++)
                changes |= !c->r[j].meta && (vb[j] != 0) != (v0[j] != 0);
            if (!changes)
                want = DK_ETRANSITION;
        }
        /* and no event it leaves in force breaks an append rule it did not without it */
        for (size_t j = 0; want == 0 && j < c->n; j++)
            if (bw[j] && !b0[j])
                want = DK_ETRANSITION, rule = N_UNDO_RULES;
        free(vb);
        free(v0);
        free(bw);
        free(b0);
    } else if (want == 0) {
        want = dk_case_apply(&nw, p->head + 1, &e.ev);
        if (want == 0)
            want = model_append_rule(type, &c->st, &nw, &rule);
    }
    if (want == 0 && slot_conflict(p, c, &nw))
        want = DK_ECONFLICT, slot = 1;

    dk_append_res res;
    int rc = tev_append(p->w.lg, &e, key_of(p, author), co ? key_of(p, co) : NULL, &res);
    if (rc != want) { /* say what the model believes about interviewer holds */
        for (int q = 0; q < NCASES; q++) {
            const dk_case_state *o = &p->c[q].st;
            char ts[DK_TIME_LEN], te[DK_TIME_LEN];
            dk_time_format(o->interview.slot_start, ts);
            dk_time_format(o->interview.slot_end, te);
            if (o->interview.active)
                fprintf(stderr, "  model: %s holds %s %s..%s\n", p->c[q].id,
                        o->interview.interviewer, ts, te);
        }
    }
    if (rc != want)
        TH_FAIL("step %d: %s on %s (%s) by %s%s%s: ledger says %s (%s), model says %s", step, type,
                c->id, dk_status_name(c->st.status), author, co ? " + " : "", co ? co : "",
                dk_err_name(rc), res.errmsg, dk_err_name(want));
    if (rc == 0) {
        ASSERT_EQ(res.seq, p->head + 1);
        p->head = res.seq;
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 16;
            c->r = realloc(c->r, c->cap * sizeof *c->r);
            ASSERT(c->r);
        }
        mrec *m = &c->r[c->n++];
        *m = self;
        m->seq = res.seq;
        m->at = res.recorded_at;
        m->body = malloc(e.len);
        ASSERT(m->body);
        memcpy(m->body, e.body, e.len);
        m->len = e.len;
        snprintf(m->type, sizeof m->type, "%s", type);
        c->st = nw;
        p->n[N_ACCEPTED]++;
        p->n[N_REVERTS] += self.meta == 1;
        p->n[N_REDOS] += self.meta == 1 && redo;
        p->n[N_ROLLBACKS] += self.meta == 2;
        p->n[N_DECISIONS] += is(type, "decision.recorded");
    } else {
        ASSERT_EQ(head_seq(p->w.lg), p->head);
        p->n[N_REFUSED]++;
        p->n[N_SLOT_CONFLICTS] += slot;
        if (rule >= 0)
            p->n[rule]++;
        p->n[N_FOUR_EYES_REFUSED] += rc == DK_EDENIED && strstr(res.errmsg, "four eyes") != NULL;
        p->n[N_DEPENDENT_REFUSED] += self.meta && rc == DK_ETRANSITION && bad != 0;
    }
    uint64_t v;
    ASSERT_OK(dk_ledger_case_version(p->w.lg, c->id, &v));
    ASSERT_EQ(v, c->st.version);
    tev_free(&e);
}

/* Fold every case from the ledger and compare with the model. */
static inline void prop_check(prop *p)
{
    for (int i = 0; i < NCASES; i++) {
        mcase *c = &p->c[i];
        caserecs cr;
        read_case(p->w.lg, c->id, &cr);
        ASSERT_EQ(cr.n, c->n);
        for (size_t j = 0; j < cr.n; j++)
            ASSERT_EQ(cr.r[j].seq, c->r[j].seq);
        dk_case_state st, again;
        dk_void *voids;
        size_t nv;
        uint64_t bad = 0;
        ASSERT_OK(dk_case_fold(cr.r, cr.n, &st, &voids, &nv, &bad));
        same_state(c->id, &st, &c->st);
        uint64_t *vb = calloc(c->n + 1, sizeof *vb);
        ASSERT(vb);
        ASSERT_OK(model_fold(c, NULL, &again, &bad, vb, NULL));
        same_state(c->id, &again, &c->st);
        size_t k = 0;
        for (size_t j = 0; j < c->n; j++)
            if (vb[j]) {
                ASSERT(k < nv);
                ASSERT_EQ(voids[k].seq, c->r[j].seq);
                ASSERT_EQ(voids[k].by_seq, vb[j]);
                k++;
            }
        ASSERT_EQ(k, nv);
        ASSERT_EQ(nv, c->st.voided);
        free(vb);
        free(voids);
        caserecs_free(&cr);
    }
}

/* A walk of `steps` steps from `seed` on a new ledger in dir. If `after` is given, it is
 * called (with ud) as step -1 before the first step, after each step, and as step `steps`
 * once the walk is done, the ledger still open: what a test adds to the walk. */
static inline void prop_run(const char *dir, uint64_t seed, int steps, prop *p,
                            void (*after)(prop *p, int step, void *ud), void *ud)
{
    memset(p, 0, sizeof *p);
    p->rng = seed;
    world_open(&p->w, dir);
    world_interviewers(&p->w);
    p->head = head_seq(p->w.lg);
    for (int i = 0; i < NCASES; i++)
        snprintf(p->c[i].id, sizeof p->c[i].id, "PROP-%d", i);
    if (after)
        after(p, -1, ud);
    for (int s = 0; s < steps; s++) {
        prop_step(p, s);
        if (after)
            after(p, s, ud);
        if (s % 250 == 249)
            prop_check(p);
    }
    if (after)
        after(p, steps, ud);
    prop_check(p);
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(p->w.lg, &rep));
    if (!rep.ok)
        TH_FAIL("verify failed at seq %llu: %s", (unsigned long long)rep.seq, rep.reason);
    /* what today's writer took breaks none of today's append rules */
    ASSERT_EQ(rep.notices, 0);
    world_close(&p->w);
    for (int i = 0; i < NCASES; i++) {
        for (size_t j = 0; j < p->c[i].n; j++)
            free(p->c[i].r[j].body);
        free(p->c[i].r);
    }
}

#endif
