/* test_replay.c - unit tests of replay/: cases as of a time (reverts and
 * rollbacks before and after it), status in effect on a date, audit trails. */
#include "casefix.h"
#include "docket/replay.h"

/* Append with an effective time (eff) set on the event. */
static uint64_t put_eff(world *w, const char *case_id, const char *type, const dk_key *author,
                        const dmap *d, const char *eff)
{
    tev t;
    tev_make(&t, type, case_id, dk_key_id(author), d, NULL);
    t.ev.has_eff = 1;
    ASSERT_OK(dk_time_parse(eff, &t.ev.eff));
    uint8_t *body;
    size_t len;
    ASSERT_OK(dk_event_encode(&t.ev, &body, &len));
    free(t.body);
    t.body = body;
    t.len = len;
    ASSERT_OK(dk_event_decode(t.body, t.len, &t.ev));
    dk_append_res res;
    int rc = tev_append(w->lg, &t, author, NULL, &res);
    if (rc)
        TH_FAIL("%s: %s: %s", type, dk_err_name(rc), res.errmsg);
    tev_free(&t);
    return res.seq;
}

static int64_t time_of_seq(dk_ledger *lg, uint64_t seq)
{
    uint8_t *raw;
    size_t len;
    dk_record rec;
    ASSERT_OK(dk_ledger_get(lg, seq, &raw, &len));
    ASSERT_OK(dk_record_decode(raw, len, &rec));
    free(raw);
    return rec.recorded_at;
}

static void decide(dmap *d, const char *status, const char *from, const char *until)
{
    fill_valid(d, "decision.recorded");
    d_str(d, "immigration_status", status);
    d_str(d, "valid_from", from);
    if (until)
        d_str(d, "valid_until", until);
    else
        d_del(d, "valid_until");
}

typedef struct story {
    world w;
    uint64_t open, grant1, revert, grant2, cancel;
} story;

/* opened, under consideration, granted LTR (2026-11-01..2028-11-01),
 * the grant reverted (four eyes), granted ILR from 2027-01-01, leave
 * cancelled with effect from 2027-06-01. */
static void tell(story *s)
{
    memset(s, 0, sizeof *s);
    world_open(&s->w, th_tmpdir());
    world *w = &s->w;
    dmap d;
    s->open = PUT_DEFAULT(w, "R-1", "case.opened", w->carol);
    to_status(&d, "validated");
    PUT(w, "R-1", "case.status_changed", w->carol, NULL, &d);
    to_status(&d, "under_consideration");
    PUT(w, "R-1", "case.status_changed", w->carol, NULL, &d);
    decide(&d, "LTR", "2026-11-01", "2028-11-01");
    s->grant1 = PUT(w, "R-1", "decision.recorded", w->sam, NULL, &d);
    revert_data(&d, w->lg, s->grant1);
    s->revert = PUT(w, "R-1", "event.reverted", w->sam, w->sue, &d);
    decide(&d, "ILR", "2027-01-01", NULL);
    s->grant2 = PUT(w, "R-1", "decision.recorded", w->sam, NULL, &d);
    fill_valid(&d, "leave.cancelled");
    s->cancel = put_eff(w, "R-1", "leave.cancelled", w->sue, &d, "2027-06-01T00:00:00Z");
}

TEST(asof_honours_only_what_was_recorded_by_then)
{
    story s;
    tell(&s);
    dk_ledger *lg = s.w.lg;
    dk_case_view cv;
    /* just before the first grant: under consideration, no decision */
    ASSERT_OK(dk_case_read(lg, "R-1", time_of_seq(lg, s.grant1) - 1, &cv));
    ASSERT_EQ(cv.st.status, DK_ST_UNDER_CONSIDERATION);
    ASSERT_EQ(cv.st.decision.has, 0);
    ASSERT_EQ(cv.n, 3);
    dk_case_view_close(&cv);
    /* at the grant: decided, LTR; the revert recorded later does not apply */
    ASSERT_OK(dk_case_read(lg, "R-1", time_of_seq(lg, s.grant1), &cv));
    ASSERT_EQ(cv.st.status, DK_ST_DECIDED);
    ASSERT_STR_EQ(cv.st.decision.immigration_status, "LTR");
    ASSERT_EQ(cv.nvoids, 0);
    dk_case_view_close(&cv);
    /* at the revert: the grant is voided, back under consideration */
    ASSERT_OK(dk_case_read(lg, "R-1", time_of_seq(lg, s.revert), &cv));
    ASSERT_EQ(cv.st.status, DK_ST_UNDER_CONSIDERATION);
    ASSERT_EQ(cv.st.decision.has, 0);
    ASSERT_EQ(cv.nvoids, 1);
    ASSERT_EQ(dk_case_voided_by(&cv, s.grant1), s.revert);
    dk_case_view_close(&cv);
    /* now: ILR, then leave cancelled */
    ASSERT_OK(dk_case_read(lg, "R-1", DK_TIME_MAX, &cv));
    ASSERT_EQ(cv.st.status, DK_ST_LEAVE_CANCELLED);
    ASSERT_STR_EQ(cv.st.decision.immigration_status, "ILR");
    ASSERT_EQ(cv.st.version, 7);
    dk_case_view_close(&cv);
    /* before the case existed */
    ASSERT_ERR(dk_case_read(lg, "R-1", time_of_seq(lg, s.open) - 1, &cv), DK_ENOTFOUND);
    dk_case_view_close(&cv);
    ASSERT_ERR(dk_case_read(lg, "NO-SUCH", DK_TIME_MAX, &cv), DK_ENOTFOUND);
    dk_case_view_close(&cv);
    world_close(&s.w);
}

static void effective_is(dk_ledger *lg, int64_t asof, const char *date, int in_effect,
                         const char *status, uint64_t decision_seq, uint64_t ended_seq)
{
    dk_case_view cv;
    dk_effective e;
    ASSERT_OK(dk_case_read(lg, "R-1", asof, &cv));
    ASSERT_OK(dk_case_effective(&cv, date, &e));
    if (e.in_effect != in_effect || e.decision_seq != decision_seq || e.ended_seq != ended_seq)
        TH_FAIL("on %s: in_effect %d decision %llu ended %llu (%s); wanted %d %llu %llu", date,
                e.in_effect, (unsigned long long)e.decision_seq, (unsigned long long)e.ended_seq,
                e.why, in_effect, (unsigned long long)decision_seq, (unsigned long long)ended_seq);
    ASSERT_STR_EQ(e.immigration_status, status);
    dk_case_view_close(&cv);
}

TEST(status_in_effect_on_a_date)
{
    story s;
    tell(&s);
    dk_ledger *lg = s.w.lg;
    int64_t at_grant = time_of_seq(lg, s.grant1);
    /* what the ledger knew right after the first grant: LTR from 2026-11-01 */
    effective_is(lg, at_grant, "2026-10-31", 0, "", 0, 0);
    effective_is(lg, at_grant, "2026-11-01", 1, "LTR", s.grant1, 0);
    effective_is(lg, at_grant, "2028-11-01", 1, "LTR", s.grant1, 0);
    dk_case_view cv;
    dk_effective e;
    ASSERT_OK(dk_case_read(lg, "R-1", at_grant, &cv));
    ASSERT_OK(dk_case_effective(&cv, "2028-11-02", &e)); /* expired */
    ASSERT_EQ(e.in_effect, 0);
    ASSERT_EQ(e.decision_seq, s.grant1);
    ASSERT_CONTAINS(e.why, "expired on 2028-11-01");
    ASSERT_STR_EQ(e.conditions, "permission_to_work,no_recourse_to_public_funds");
    ASSERT_EQ(e.no_recourse_to_public_funds, 1);
    ASSERT_ERR(dk_case_effective(&cv, "2027-13", &e), DK_EINVAL);
    dk_case_view_close(&cv);
    /* as known now: the LTR grant was voided; ILR from 2027-01-01 until the
     * cancellation took effect on 2027-06-01 */
    effective_is(lg, DK_TIME_MAX, "2026-12-01", 0, "", 0, 0);
    effective_is(lg, DK_TIME_MAX, "2027-01-01", 1, "ILR", s.grant2, 0);
    effective_is(lg, DK_TIME_MAX, "2027-05-31", 1, "ILR", s.grant2, 0);
    /* ...and says the cancellation recorded to end it on 2027-06-01 (it said nothing) */
    dk_case_view cv2;
    ASSERT_OK(dk_case_read(lg, "R-1", DK_TIME_MAX, &cv2));
    ASSERT_OK(dk_case_effective(&cv2, "2027-05-31", &e));
    ASSERT_EQ(e.ends_seq, s.cancel);
    ASSERT_STR_EQ(e.ends_on, "2027-06-01");
    ASSERT_CONTAINS(e.why, "; ends on 2027-06-01 by seq");
    ASSERT_OK(dk_case_effective(&cv2, "2027-06-01", &e));
    ASSERT_EQ(e.ends_seq, 0);
    dk_case_view_close(&cv2);
    effective_is(lg, DK_TIME_MAX, "2027-06-01", 0, "", 0, s.cancel);
    effective_is(lg, DK_TIME_MAX, "2030-01-01", 0, "", 0, s.cancel);
    /* as known just before the cancellation was recorded: ILR on and on */
    effective_is(lg, time_of_seq(lg, s.cancel) - 1, "2030-01-01", 1, "ILR", s.grant2, 0);
    world_close(&s.w);
}

/* A grant that lists a condition more than once (the append refuses that now; a ledger
 * written before may hold one): the leave in effect lists each condition once, in the
 * vocabulary's order, as the fold does. Copied as given, nine repeats filled the field and
 * cut off the work prohibition after them (helper-65). */
TEST(effective_conditions_are_each_listed_once)
{
    dmap d;
    tev e[2];
    fill_valid(&d, "case.opened");
    tev_make(&e[0], "case.opened", "DUP-1", "sue", &d, NULL);
    fill_valid(&d, "decision.recorded");
    d_list(&d, "conditions",
           "study_restriction,study_restriction,study_restriction,study_restriction,"
           "study_restriction,study_restriction,study_restriction,study_restriction,"
           "study_restriction,no_permission_to_work");
    d_bool(&d, "no_recourse_to_public_funds", 0);
    tev_make(&e[1], "decision.recorded", "DUP-1", "sue", &d, NULL);
    dk_case_view cv;
    memset(&cv, 0, sizeof cv);
    dk_record recs[2];
    memset(recs, 0, sizeof recs);
    for (int i = 0; i < 2; i++) {
        recs[i].seq = (uint64_t)i + 1;
        recs[i].recorded_at = 1795514400000000 + i;
        recs[i].body = e[i].body;
        recs[i].body_len = e[i].len;
    }
    cv.recs = recs;
    cv.n = 2;
    dk_effective eff;
    ASSERT_OK(dk_case_effective(&cv, "2027-01-01", &eff));
    ASSERT_EQ(eff.decision_seq, 2);
    ASSERT_STR_EQ(eff.conditions, "no_permission_to_work,study_restriction");
    size_t words = 0; /* effective.c notes conditions in a table of 64 */
    for (const char *const *w = dk_case_vocabulary("conditions"); *w; w++)
        words++;
    ASSERT(words < 64);
    dk_case_state st; /* the fold's step lists them the same */
    memset(&st, 0, sizeof st);
    st.status = DK_ST_UNDER_CONSIDERATION;
    ASSERT_OK(dk_case_apply(&st, 2, &e[1].ev));
    ASSERT_STR_EQ(st.decision.conditions, eff.conditions);
    tev_free(&e[0]);
    tev_free(&e[1]);
}

TEST(asof_rollback_before_and_after)
{
    world w;
    world_open(&w, th_tmpdir());
    dmap d;
    PUT_DEFAULT(&w, "RB-1", "case.opened", w.carol);
    fill_valid(&d, "note.added");
    uint64_t n1 = PUT(&w, "RB-1", "note.added", w.carol, NULL, &d);
    uint64_t n2 = PUT(&w, "RB-1", "note.added", w.carol, NULL, &d);
    uint64_t n3 = PUT(&w, "RB-1", "note.added", w.carol, NULL, &d);
    rollback_data(&d, time_of_seq(w.lg, n1));
    uint64_t rb = PUT(&w, "RB-1", "case.rolled_back", w.sam, w.sue, &d);
    dk_case_view cv;
    ASSERT_OK(dk_case_read(w.lg, "RB-1", time_of_seq(w.lg, rb) - 1, &cv));
    ASSERT_EQ(cv.nvoids, 0); /* the rollback is not yet recorded */
    ASSERT_EQ(cv.st.version, 4);
    dk_case_view_close(&cv);
    ASSERT_OK(dk_case_read(w.lg, "RB-1", DK_TIME_MAX, &cv));
    ASSERT_EQ(cv.nvoids, 2);
    ASSERT_EQ(dk_case_voided_by(&cv, n1), 0);
    ASSERT_EQ(dk_case_voided_by(&cv, n2), rb);
    ASSERT_EQ(dk_case_voided_by(&cv, n3), rb);
    ASSERT_EQ(cv.st.version, 5);
    dk_case_view_close(&cv);
    world_close(&w);
}

typedef struct seen {
    size_t n;
    dk_audit_entry e[32];
} seen;

static int collect(void *ud, const dk_audit_entry *e)
{
    seen *s = ud;
    if (s->n < 32)
        s->e[s->n] = *e;
    s->n++;
    return 0;
}

static const dk_audit_entry *entry(const seen *s, uint64_t seq)
{
    for (size_t i = 0; i < s->n && i < 32; i++)
        if (s->e[i].seq == seq)
            return &s->e[i];
    TH_FAIL("no audit entry for seq %llu", (unsigned long long)seq);
}

TEST(audit_case_names_signers_roles_and_voids)
{
    story s;
    tell(&s);
    seen got;
    memset(&got, 0, sizeof got);
    /* entries' record pointers are borrowed for the callback: check copies */
    ASSERT_OK(dk_audit_case(s.w.lg, "R-1", collect, &got));
    ASSERT_EQ(got.n, 7);
    const dk_audit_entry *g1 = entry(&got, s.grant1), *rv = entry(&got, s.revert);
    ASSERT_STR_EQ(g1->ev.type, "decision.recorded");
    ASSERT_EQ(g1->nsigners, 1);
    ASSERT_STR_EQ(g1->signers[0].actor, "sam");
    ASSERT_EQ(g1->signers[0].roles, DK_ROLE_CASEWORKER | DK_ROLE_SENIOR_CASEWORKER);
    ASSERT_EQ(g1->signers[0].enrolled, 1);
    ASSERT_EQ(g1->signers[0].valid, 1);
    ASSERT_EQ(g1->voided_by, s.revert);
    ASSERT_STR_EQ(g1->void_reason_code, "caseworker_error");
    ASSERT_STR_EQ(g1->void_reason, "entered in error");
    ASSERT_EQ(rv->nsigners, 2); /* four eyes: requester and co-signer */
    ASSERT_STR_EQ(rv->signers[1].actor, "sue");
    ASSERT_EQ(rv->signers[1].roles, DK_ROLE_SENIOR_CASEWORKER);
    ASSERT_EQ(rv->signers[1].valid, 1);
    ASSERT_EQ(rv->voided_by, 0);
    ASSERT_ERR(dk_audit_case(s.w.lg, "NO-SUCH", collect, &got), DK_ENOTFOUND);
    world_close(&s.w);
}

TEST(audit_actor_uses_the_key_and_roles_of_the_time)
{
    world w;
    world_open(&w, th_tmpdir());
    dmap d;
    dk_append_res res;
    PUT_DEFAULT(&w, "A-1", "case.opened", w.carol);
    fill_valid(&d, "note.added");
    uint64_t before = PUT(&w, "A-1", "note.added", w.carol, NULL, &d);
    /* carol's key is rotated; her old signatures still check against the old key */
    dk_key *carol2;
    ASSERT_OK(dk_key_generate("carol", &carol2));
    ASSERT_OK(fx_actor_event(w.lg, w.admin, "actor.key_rotated", "carol", dk_key_public(carol2),
                             NULL, ACTOR_N(50), &res));
    uint64_t rotated = res.seq;
    uint64_t after = PUT(&w, "A-1", "note.added", carol2, NULL, &d);
    seen got;
    memset(&got, 0, sizeof got);
    ASSERT_OK(dk_audit_actor(w.lg, "carol", INT64_MIN, INT64_MAX, collect, &got));
    /* enrolment, case.opened, two notes, and the rotation (an event about her) */
    ASSERT_EQ(got.n, 5);
    ASSERT_EQ(entry(&got, before)->signers[0].valid, 1);
    ASSERT_EQ(entry(&got, after)->signers[0].valid, 1);
    ASSERT_STR_EQ(entry(&got, rotated)->signers[0].actor, "admin");
    /* a window: only what she did from the rotation on */
    memset(&got, 0, sizeof got);
    ASSERT_OK(dk_audit_actor(w.lg, "carol", time_of_seq(w.lg, rotated), INT64_MAX, collect, &got));
    ASSERT_EQ(got.n, 2);
    ASSERT_EQ(got.e[0].seq, rotated);
    ASSERT_EQ(got.e[1].seq, after);
    /* the genesis record is the first admin's, signed by the key it enrols */
    memset(&got, 0, sizeof got);
    ASSERT_OK(dk_audit_actor(w.lg, "admin", INT64_MIN, time_of_seq(w.lg, 1), collect, &got));
    ASSERT_EQ(got.n, 1);
    ASSERT_STR_EQ(got.e[0].ev.type, "ledger.genesis");
    ASSERT_EQ(got.e[0].signers[0].valid, 1);
    ASSERT_EQ(got.e[0].signers[0].roles, DK_ROLE_ADMIN);
    ASSERT_ERR(dk_audit_actor(w.lg, "carol", 10, 5, collect, &got), DK_EINVAL);
    dk_key_free(carol2);
    world_close(&w);
}

TH_MAIN(TH_ENTRY(asof_honours_only_what_was_recorded_by_then) TH_ENTRY(status_in_effect_on_a_date)
            TH_ENTRY(effective_conditions_are_each_listed_once)
                TH_ENTRY(asof_rollback_before_and_after)
                    TH_ENTRY(audit_case_names_signers_roles_and_voids)
                        TH_ENTRY(audit_actor_uses_the_key_and_roles_of_the_time))
