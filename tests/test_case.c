/* test_case.c - unit tests of the casework domain (case.c) and of the writer's case checks
 * (casestore.c): lifecycle table, the liveness of its reachable states, schemas,
 * permissions, four eyes, reverts, rollbacks, slots. */
#include <pthread.h>
#include <time.h>

#include "casefix.h"
#include "engine_int.h"
#include "modelwalk.h"
#include "rawlmdb.h"

static const xrow *row_of(const char *type)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (strcmp(expected[i].type, type) == 0)
            return &expected[i];
    TH_FAIL("no expected row for %s", type);
}

/* ======================================================================
 * 1. The transition table, pure
 * ====================================================================== */

/* A state in `status` holding what `type` needs to apply there. */
static void state_for(dk_case_state *st, int status, const char *type)
{
    memset(st, 0, sizeof *st);
    st->status = status;
    st->version = 5;
    st->last_seq = 9;
    snprintf(st->assignee, sizeof st->assignee, "carol");
    st->decision.has = 1;
    snprintf(st->decision.outcome, sizeof st->decision.outcome, "%s",
             is(type, "appeal.lodged") ? "refused" : "granted");
    st->leave.grant_seq = is(type, "appeal.lodged") ? 0 : 4; /* the grant's leave, held */
    st->interview.active = 1;
    st->interview.slot_start = 1795514400000000;
    st->interview.slot_end = 1795518000000000;
    snprintf(st->interview.interviewer, sizeof st->interview.interviewer, "ivan");
    st->open_errors = 1;
    st->error_seqs[0] = 3;
    st->appeal_open = is(type, "appeal.decided"); /* decided where it is open */
}

/* Data for `type` appended in `status`, and the status it should lead to. */
static int event_for(dmap *d, const char *type, int status)
{
    const xrow *r = row_of(type);
    fill_valid(d, type);
    if (is(type, "case.status_changed")) {
        int to = status == DK_ST_RECEIVED              ? DK_ST_VALIDATED
                 : status == DK_ST_VALIDATED           ? DK_ST_UNDER_CONSIDERATION
                 : status == DK_ST_UNDER_CONSIDERATION ? DK_ST_VALIDATED
                                                       : DK_ST_VALIDATED;
        d_str(d, "to", status_names[to]);
        return to;
    }
    if (is(type, "status.corrected")) {
        int to = status == DK_ST_WITHDRAWN ? DK_ST_RECEIVED : DK_ST_WITHDRAWN;
        d_str(d, "from", status_names[status]);
        d_str(d, "to", status_names[to]);
        return to;
    }
    if (is(type, "appeal.decided")) /* dismissed; after a leave cancellation, status kept */
        return status == DK_ST_LEAVE_CANCELLED || status == DK_ST_CLOSED ? status : DK_ST_DECIDED;
    if (is(type, "interview.cancelled") && (status == DK_ST_WITHDRAWN || status == DK_ST_CLOSED))
        return status; /* the slot a withdrawal or closure left booked is released */
    return r->to == TO_SAME ? status : r->to;
}

/* The "(allowed: a, b, c)" list of a refusal must be exactly the types our
 * table allows from `status`. */
static void check_allowed_list(const char *msg, int status)
{
    const char *p, *end;
    if (status == DK_ST_NONE) {
        ASSERT_CONTAINS(msg, "does not exist");
        p = strstr(msg, "must start with ");
        ASSERT(p != NULL);
        p += strlen("must start with ");
        end = p + strlen(p);
    } else {
        p = strstr(msg, "(allowed: ");
        if (p == NULL)
            TH_FAIL("no allowed list in \"%s\"", msg);
        p += strlen("(allowed: ");
        end = strchr(p, ')');
        ASSERT(end != NULL);
    }
    char list[600];
    snprintf(list, sizeof list, "%.*s", (int)(end - p), p);
    size_t listed = 0;
    for (char *save = NULL, *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        const xrow *r = row_of(t);
        if (!(r->from & (1u << status)))
            TH_FAIL("'%s' lists %s as allowed from %s", msg, t, status_names[status]);
        listed++;
    }
    size_t want = 0;
    for (size_t i = 0; i < NTYPES; i++)
        want += (expected[i].from >> status) & 1;
    if (listed != want)
        TH_FAIL("'%s' lists %zu types allowed from %s; the table has %zu", msg, listed,
                status_names[status], want);
}

TEST(transition_table)
{
    ASSERT_EQ(DK_ST_COUNT, 10);
    for (int s = 0; s < DK_ST_COUNT; s++)
        ASSERT_STR_EQ(dk_status_name(s), status_names[s]);
    for (int s = 1; s < DK_ST_COUNT; s++)
        ASSERT_EQ(dk_status_parse(status_names[s], strlen(status_names[s])), s);
    int allowed_pairs = 0;
    for (size_t t = 0; t < NTYPES; t++) {
        const char *type = expected[t].type;
        for (int s = 0; s < DK_ST_COUNT; s++) {
            dk_case_state st, before;
            dmap d;
            tev e;
            state_for(&st, s, type);
            int want_status = event_for(&d, type, s);
            tev_make(&e, type, "HO-7", "pat", &d, NULL);
            ASSERT_OK(dk_case_check_schema(&e.ev));
            before = st;
            int rc = dk_case_apply(&st, 42, &e.ev);
            /* the in-place step does the same (and only fails where apply does) */
            dk_case_state stepped = before;
            ASSERT_EQ(dk_case_step(&stepped, 42, &e.ev), rc);
            if (rc == 0 && memcmp(&stepped, &st, sizeof st) != 0)
                TH_FAIL("%s from '%s': dk_case_step and dk_case_apply disagree", type,
                        status_names[s]);
            if ((expected[t].from >> s) & 1) {
                allowed_pairs++;
                if (rc != 0)
                    TH_FAIL("%s from '%s' was refused: %s: %s", type, status_names[s],
                            dk_err_name(rc), dk_errmsg());
                if (st.status != want_status)
                    TH_FAIL("%s from '%s' led to '%s', wanted '%s'", type, status_names[s],
                            dk_status_name(st.status), status_names[want_status]);
                ASSERT_EQ(st.version, before.version + 1);
                ASSERT_EQ(st.last_seq, 42);
            } else {
                if (rc != DK_ETRANSITION)
                    TH_FAIL("%s from '%s' returned %s (%s), wanted DK_ETRANSITION", type,
                            status_names[s], dk_err_name(rc), dk_errmsg());
                if (memcmp(&st, &before, sizeof st) != 0)
                    TH_FAIL("%s from '%s' was refused but changed the state", type,
                            status_names[s]);
                const char *msg = dk_errmsg();
                ASSERT_CONTAINS(msg, "HO-7");
                if (s != DK_ST_NONE) {
                    char quoted[64];
                    snprintf(quoted, sizeof quoted, "'%s'", status_names[s]);
                    ASSERT_CONTAINS(msg, quoted);
                    ASSERT_CONTAINS(msg, type);
                }
                check_allowed_list(msg, s);
            }
            tev_free(&e);
        }
    }
    ASSERT_EQ(allowed_pairs, 101); /* the count of 1-bits in the table's from sets */
}

/* Data that is not a map is refused by every type, also those whose data the state does
 * not read (not unpacked), and the state is left as it was. */
TEST(apply_refuses_data_that_is_not_a_map)
{
    static const uint8_t nil = 0xc0, arr = 0x90;
    for (size_t t = 0; t < NTYPES; t++) {
        const char *type = expected[t].type;
        int s = 0;
        while (s < DK_ST_COUNT && !((expected[t].from >> s) & 1))
            s++;
        ASSERT(s < DK_ST_COUNT);
        for (int k = 0; k < 2; k++) {
            dk_case_state st, before;
            state_for(&st, s, type);
            before = st;
            dk_event ev;
            memset(&ev, 0, sizeof ev);
            ev.v = DK_EVENT_VERSION;
            snprintf(ev.type, sizeof ev.type, "%s", type);
            snprintf(ev.case_id, sizeof ev.case_id, "HO-7");
            snprintf(ev.actor, sizeof ev.actor, "pat");
            ev.data = k ? &arr : &nil;
            ev.data_len = 1;
            if (dk_case_apply(&st, 42, &ev) != DK_ESCHEMA)
                TH_FAIL("%s with data 0x%02x was not refused as not a map", type, ev.data[0]);
            ASSERT(memcmp(&st, &before, sizeof st) == 0);
        }
    }
}

TEST(status_changed_edges)
{
    /* case.status_changed moves only received->validated, validated->under_consideration
     * and under_consideration->validated; every other move has its own event. */
    static const int edges[][2] = {{DK_ST_RECEIVED, DK_ST_VALIDATED},
                                   {DK_ST_VALIDATED, DK_ST_UNDER_CONSIDERATION},
                                   {DK_ST_UNDER_CONSIDERATION, DK_ST_VALIDATED}};
    int from_set[] = {DK_ST_RECEIVED, DK_ST_VALIDATED, DK_ST_UNDER_CONSIDERATION};
    for (size_t i = 0; i < 3; i++)
        for (int to = 1; to < DK_ST_COUNT; to++) {
            int from = from_set[i], edge = 0;
            for (size_t k = 0; k < 3; k++)
                edge |= edges[k][0] == from && edges[k][1] == to;
            dk_case_state st;
            dmap d;
            tev e;
            state_for(&st, from, "case.status_changed");
            fill_valid(&d, "case.status_changed");
            d_str(&d, "to", status_names[to]);
            tev_make(&e, "case.status_changed", "HO-7", "pat", &d, NULL);
            ASSERT_OK(dk_case_check_schema(&e.ev));
            int rc = dk_case_apply(&st, 10, &e.ev);
            if (edge) {
                ASSERT_OK(rc);
                ASSERT_EQ(st.status, to);
            } else {
                if (rc != DK_ETRANSITION)
                    TH_FAIL("%s -> %s: %s, wanted DK_ETRANSITION", status_names[from],
                            status_names[to], dk_err_name(rc));
                ASSERT_EQ(st.status, from);
                ASSERT_CONTAINS(dk_errmsg(), status_names[from]);
                ASSERT_CONTAINS(dk_errmsg(), status_names[to]);
            }
            tev_free(&e);
        }
}

/* Apply `type` with data `d` to `st` (pure); the code. */
static int apply_pure(dk_case_state *st, uint64_t seq, const char *type, const dmap *d)
{
    tev e;
    tev_make(&e, type, "HO-7", "pat", d, NULL);
    ASSERT_OK(dk_case_check_schema(&e.ev));
    int rc = dk_case_apply(st, seq, &e.ev);
    tev_free(&e);
    return rc;
}

TEST(lifecycle_guards_and_effects)
{
    dk_case_state st;
    dmap d;
    /* case.opened copies the applicant */
    memset(&st, 0, sizeof st);
    fill_valid(&d, "case.opened");
    ASSERT_OK(apply_pure(&st, 4, "case.opened", &d));
    ASSERT_EQ(st.status, DK_ST_RECEIVED);
    ASSERT_STR_EQ(st.applicant_name, "Test Applicant");
    ASSERT_STR_EQ(st.nationality, "FRA");
    ASSERT_STR_EQ(st.case_type, "visa");
    ASSERT_EQ(st.version, 1);

    /* a decision is recorded in full */
    state_for(&st, DK_ST_UNDER_CONSIDERATION, "decision.recorded");
    memset(&st.decision, 0, sizeof st.decision);
    fill_valid(&d, "decision.recorded");
    ASSERT_OK(apply_pure(&st, 77, "decision.recorded", &d));
    ASSERT_EQ(st.decision.has, 1);
    ASSERT_EQ(st.decision.seq, 77);
    ASSERT_STR_EQ(st.decision.outcome, "granted");
    ASSERT_STR_EQ(st.decision.product_type, "WORK");
    ASSERT_STR_EQ(st.decision.immigration_status, "LTR");
    ASSERT_STR_EQ(st.decision.valid_until, "2028-11-01");
    ASSERT_STR_EQ(st.decision.rules_version, "HC395-2026-10");
    ASSERT_STR_EQ(st.decision.conditions, "permission_to_work,no_recourse_to_public_funds");
    ASSERT_EQ(st.decision.no_recourse_to_public_funds, 1);

    /* leave.cancelled needs a grant */
    const char *outcomes[] = {"refused", "void"};
    for (int i = 0; i < 2; i++) {
        state_for(&st, DK_ST_DECIDED, "leave.cancelled");
        snprintf(st.decision.outcome, sizeof st.decision.outcome, "%s", outcomes[i]);
        st.leave.grant_seq = 0; /* a refusal or a void decision holds no leave */
        fill_valid(&d, "leave.cancelled");
        ASSERT_ERR(apply_pure(&st, 10, "leave.cancelled", &d), DK_ETRANSITION);
        ASSERT_CONTAINS(dk_errmsg(), "no grant");
        ASSERT_EQ(st.status, DK_ST_DECIDED);
    }
    state_for(&st, DK_ST_DECIDED, "leave.cancelled");
    st.decision.has = 0;
    st.leave.grant_seq = 0;
    ASSERT_ERR(apply_pure(&st, 10, "leave.cancelled", &d), DK_ETRANSITION);
    /* a grant's cancellation is kept with the decision, past the closure that follows */
    state_for(&st, DK_ST_DECIDED, "leave.cancelled");
    ASSERT_OK(apply_pure(&st, 10, "leave.cancelled", &d));
    ASSERT_EQ(st.leave.cancelled_seq, 10);
    ASSERT_EQ(st.leave.grant_seq, 0);
    fill_valid(&d, "case.closed");
    ASSERT_OK(apply_pure(&st, 11, "case.closed", &d));
    ASSERT_EQ(st.status, DK_ST_CLOSED);
    ASSERT_EQ(st.leave.cancelled_seq, 10);
    ASSERT_STR_EQ(st.decision.outcome, "granted");
    /* cancelled once, nothing is left to cancel: the writer refuses a second; the fold
     * still takes one while the latest decision is a grant, as it did before the state
     * held the leave (older ledgers hold such: helper-66) */
    fill_valid(&d, "leave.cancelled");
    tev e2;
    tev_make(&e2, "leave.cancelled", "HO-7", "sue", &d, NULL);
    ASSERT_ERR(dk__case_check_new(&st, &e2.ev), DK_ETRANSITION);
    ASSERT_STR_EQ(dk_errmsg(),
                  "case 'HO-7' has no grant of leave to cancel: its leave was cancelled already");
    dk_case_state again = st;
    ASSERT_OK(dk_case_apply(&again, 12, &e2.ev));
    tev_free(&e2);
    st.decision.has = 0; /* and with neither, the fold refuses it too */
    ASSERT_ERR(apply_pure(&st, 12, "leave.cancelled", &d), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(), "no grant of leave to cancel");

    /* a grant's leave is held through a refusal of more (an upgrade appeal allowed, then
     * refused) and a closure, and may be cancelled there; a void decision ends it */
    state_for(&st, DK_ST_UNDER_CONSIDERATION, "decision.recorded");
    fill_valid(&d, "decision.recorded");
    ASSERT_OK(apply_pure(&st, 20, "decision.recorded", &d)); /* a grant */
    ASSERT_EQ(st.leave.grant_seq, 20);
    st.status = DK_ST_UNDER_CONSIDERATION; /* as after an upgrade appeal allowed */
    fill_valid(&d, "decision.recorded");
    d_str(&d, "outcome", "refused");
    static const char *const leave[] = {"conditions", "immigration_status",
                                        "no_recourse_to_public_funds", "valid_from", "valid_until"};
    for (size_t i = 0; i < 5; i++)
        d_del(&d, leave[i]);
    ASSERT_OK(apply_pure(&st, 21, "decision.recorded", &d));
    ASSERT_STR_EQ(st.decision.outcome, "refused");
    ASSERT_EQ(st.leave.grant_seq, 20);
    fill_valid(&d, "case.closed");
    ASSERT_OK(apply_pure(&st, 22, "case.closed", &d));
    fill_valid(&d, "leave.cancelled");
    ASSERT_OK(apply_pure(&st, 23, "leave.cancelled", &d));
    ASSERT_EQ(st.status, DK_ST_LEAVE_CANCELLED);
    ASSERT_EQ(st.leave.cancelled_seq, 23);
    state_for(&st, DK_ST_UNDER_CONSIDERATION, "decision.recorded");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "outcome", "void");
    for (size_t i = 0; i < 5; i++)
        d_del(&d, leave[i]);
    ASSERT_OK(apply_pure(&st, 24, "decision.recorded", &d));
    ASSERT_EQ(st.leave.grant_seq, 0);

    /* appeal.lodged needs a decision that is not void; a grant may be appealed (upgrade) */
    fill_valid(&d, "appeal.lodged");
    state_for(&st, DK_ST_DECIDED, "appeal.lodged");
    snprintf(st.decision.outcome, sizeof st.decision.outcome, "void");
    ASSERT_ERR(apply_pure(&st, 10, "appeal.lodged", &d), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(), "no decision to appeal");
    st.decision.has = 0;
    ASSERT_ERR(apply_pure(&st, 10, "appeal.lodged", &d), DK_ETRANSITION);
    state_for(&st, DK_ST_DECIDED, "note.added"); /* granted */
    ASSERT_OK(apply_pure(&st, 10, "appeal.lodged", &d));
    ASSERT_EQ(st.status, DK_ST_APPEALED);
    ASSERT_EQ(st.appeal_open, 1);

    /* appeal.decided: allowed goes back to consideration, dismissed to decided */
    fill_valid(&d, "appeal.decided");
    d_str(&d, "outcome", "allowed");
    ASSERT_OK(apply_pure(&st, 11, "appeal.decided", &d));
    ASSERT_EQ(st.status, DK_ST_UNDER_CONSIDERATION);
    ASSERT_EQ(st.appeal_open, 0);
    ASSERT_STR_EQ(st.appeal_outcome, "allowed");

    /* status.corrected: an open error report, and the current value as `from` */
    state_for(&st, DK_ST_VALIDATED, "status.corrected");
    fill_valid(&d, "status.corrected");
    d_u64(&d, "error_ref", 4);
    d_str(&d, "from", "validated");
    ASSERT_ERR(apply_pure(&st, 12, "status.corrected", &d), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(), "seq 4");
    d_u64(&d, "error_ref", 3);
    d_str(&d, "from", "received");
    ASSERT_ERR(apply_pure(&st, 12, "status.corrected", &d), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(), "validated");
    d_str(&d, "field", "assignee");
    d_str(&d, "from", "carol");
    d_str(&d, "to", "dave");
    ASSERT_OK(apply_pure(&st, 12, "status.corrected", &d));
    ASSERT_STR_EQ(st.assignee, "dave");
    ASSERT_EQ(st.status, DK_ST_VALIDATED);
    ASSERT_EQ(st.open_errors, 0); /* the report is resolved */
    ASSERT_ERR(apply_pure(&st, 13, "status.corrected", &d), DK_ETRANSITION); /* only once */

    /* interview.cancelled after a withdrawal or closure releases the slot it left booked,
     * and the case keeps its status; with no interview booked it is refused */
    static const int ended[] = {DK_ST_WITHDRAWN, DK_ST_CLOSED};
    for (size_t i = 0; i < 2; i++) {
        int s = ended[i];
        state_for(&st, s, "interview.cancelled");
        fill_valid(&d, "interview.cancelled");
        ASSERT_OK(apply_pure(&st, 14, "interview.cancelled", &d));
        ASSERT_EQ(st.status, s);
        ASSERT_EQ(st.interview.active, 0);
        ASSERT_EQ(st.interview.cancelled, 1);
        ASSERT_ERR(apply_pure(&st, 15, "interview.cancelled", &d), DK_ETRANSITION);
        ASSERT_CONTAINS(dk_errmsg(), "has no interview booked");
    }

    /* error reports: at most DK_OPEN_ERRORS_MAX open */
    state_for(&st, DK_ST_CLOSED, "error.reported");
    st.open_errors = 0;
    fill_valid(&d, "error.reported");
    for (uint64_t i = 0; i < DK_OPEN_ERRORS_MAX; i++) {
        ASSERT_OK(apply_pure(&st, 100 + i, "error.reported", &d));
        ASSERT_EQ(st.error_seqs[i], 100 + i);
    }
    ASSERT_ERR(apply_pure(&st, 200, "error.reported", &d), DK_ETRANSITION);
    ASSERT_EQ(st.open_errors, DK_OPEN_ERRORS_MAX);

    /* interviews: booking holds the slot, the outcome events release it and count */
    state_for(&st, DK_ST_VALIDATED, "interview.booked");
    st.interview.active = 0;
    fill_valid(&d, "interview.booked");
    ASSERT_OK(apply_pure(&st, 20, "interview.booked", &d));
    ASSERT_EQ(st.interview.active, 1);
    ASSERT_EQ(st.interview.seq, 20);
    ASSERT_STR_EQ(st.interview.interviewer, "ivan");
    int64_t t0;
    ASSERT_OK(dk_time_parse("2026-11-24T10:00:00Z", &t0));
    ASSERT_EQ(st.interview.slot_start, t0);
    ASSERT_EQ(st.interview.slot_end, t0 + 3600000000LL);
    fill_valid(&d, "interview.rescheduled");
    d_str(&d, "interviewer", "iris");
    ASSERT_OK(apply_pure(&st, 21, "interview.rescheduled", &d));
    ASSERT_STR_EQ(st.interview.interviewer, "iris");
    ASSERT_EQ(st.interview.slot_start, t0 + 86400000000LL);
    fill_valid(&d, "interview.no_show");
    ASSERT_OK(apply_pure(&st, 22, "interview.no_show", &d));
    ASSERT_EQ(st.interview.active, 0);
    ASSERT_EQ(st.interview.no_shows, 1);
    ASSERT_EQ(st.status, DK_ST_UNDER_CONSIDERATION);
    /* a move needs a booking: a status corrected to interview_scheduled has none */
    st.status = DK_ST_INTERVIEW_SCHEDULED;
    fill_valid(&d, "interview.rescheduled");
    ASSERT_ERR(apply_pure(&st, 23, "interview.rescheduled", &d), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(), "no interview booked to reschedule");
    st.status = DK_ST_UNDER_CONSIDERATION;

    /* unknown types */
    fill_valid(&d, "note.added");
    ASSERT_OK(apply_pure(&st, 23, "note.added", &d));
    tev e;
    tev_make(&e, "case.exploded", "HO-7", "pat", &d, NULL);
    ASSERT_ERR(dk_case_apply(&st, 24, &e.ev), DK_EINVAL);
    ASSERT_CONTAINS(dk_errmsg(), "case.exploded");
    ASSERT_ERR(dk_case_check_schema(&e.ev), DK_EINVAL);
    tev_free(&e);
}

/* ======================================================================
 * 2. Schemas
 * ====================================================================== */

static void expect_schema_at(int line, const char *type, const dmap *d, const char *needle)
{
    tev e;
    tev_make(&e, type, "HO-1", "pat", d, NULL);
    int rc = dk_case_check_schema(&e.ev);
    if (rc != DK_ESCHEMA)
        TH_FAIL("(line %d) %s: got %s (%s), wanted DK_ESCHEMA naming %s", line, type,
                dk_err_name(rc), dk_errmsg(), needle);
    if (strstr(dk_errmsg(), needle) == NULL)
        TH_FAIL("(line %d) %s: \"%s\" does not name %s", line, type, dk_errmsg(), needle);
    tev_free(&e);
}
#define EXPECT_SCHEMA(type, d, needle) expect_schema_at(__LINE__, type, d, needle)

static void expect_valid_at(int line, const char *type, const dmap *d)
{
    tev e;
    tev_make(&e, type, "HO-1", "pat", d, NULL);
    int rc = dk_case_check_schema(&e.ev);
    if (rc != 0)
        TH_FAIL("(line %d) %s: %s (%s), wanted valid", line, type, dk_err_name(rc), dk_errmsg());
    tev_free(&e);
}
#define EXPECT_VALID(type, d) expect_valid_at(__LINE__, type, d)

TEST(schemas)
{
    dmap d;
    for (size_t i = 0; i < NTYPES; i++) {
        fill_valid(&d, expected[i].type);
        EXPECT_VALID(expected[i].type, &d);
        /* an unknown field, in every type */
        d_str(&d, "zz_colour", "blue");
        EXPECT_SCHEMA(expected[i].type, &d, "zz_colour");
    }
    /* note.added: missing, wrong type, empty, too long */
    fill_valid(&d, "note.added");
    d_del(&d, "text");
    EXPECT_SCHEMA("note.added", &d, "data.text");
    d_u64(&d, "text", 5);
    EXPECT_SCHEMA("note.added", &d, "data.text");
    d_str(&d, "text", "");
    EXPECT_SCHEMA("note.added", &d, "data.text");

    /* case.opened */
    fill_valid(&d, "case.opened");
    d_str(&d, "case_type", "spaceship");
    EXPECT_SCHEMA("case.opened", &d, "data.case_type");
    fill_valid(&d, "case.opened");
    d_str(&d, "channel", "fax");
    EXPECT_SCHEMA("case.opened", &d, "data.channel");
    fill_valid(&d, "case.opened");
    d_str(&d, "received_on", "2026-02-30");
    EXPECT_SCHEMA("case.opened", &d, "data.received_on");
    fill_valid(&d, "case.opened");
    d_remove(d.sub, &d.nsub, "name");
    EXPECT_SCHEMA("case.opened", &d, "data.applicant.name");
    fill_valid(&d, "case.opened");
    d_sub_str(&d, "nationality", "fr");
    EXPECT_SCHEMA("case.opened", &d, "data.applicant.nationality");
    fill_valid(&d, "case.opened");
    d_sub_str(&d, "nickname", "Ted");
    EXPECT_SCHEMA("case.opened", &d, "nickname");
    fill_valid(&d, "case.opened");
    d_str(&d, "applicant", "Test Applicant");
    EXPECT_SCHEMA("case.opened", &d, "data.applicant");
    fill_valid(&d, "case.opened");
    d_del(&d, "applicant");
    EXPECT_SCHEMA("case.opened", &d, "data.applicant");

    /* case.assigned, case.status_changed */
    fill_valid(&d, "case.assigned");
    d_str(&d, "caseworker", "not an id!");
    EXPECT_SCHEMA("case.assigned", &d, "data.caseworker");
    fill_valid(&d, "case.status_changed");
    d_str(&d, "to", "limbo");
    EXPECT_SCHEMA("case.status_changed", &d, "data.to");
    d_str(&d, "to", "none");
    EXPECT_SCHEMA("case.status_changed", &d, "data.to");
    fill_valid(&d, "case.status_changed");
    d_del(&d, "reason");
    EXPECT_SCHEMA("case.status_changed", &d, "data.reason");

    /* decision.recorded */
    fill_valid(&d, "decision.recorded");
    d_del(&d, "rationale");
    EXPECT_SCHEMA("decision.recorded", &d, "data.rationale");
    fill_valid(&d, "decision.recorded");
    d_del(&d, "rules_version");
    EXPECT_SCHEMA("decision.recorded", &d, "data.rules_version");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "rules_version", HEX_A "x"); /* 65 bytes */
    EXPECT_SCHEMA("decision.recorded", &d, "data.rules_version");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "outcome", "maybe");
    EXPECT_SCHEMA("decision.recorded", &d, "data.outcome");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "product_type", "GOLD");
    EXPECT_SCHEMA("decision.recorded", &d, "data.product_type");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "immigration_status", "FOREVER");
    EXPECT_SCHEMA("decision.recorded", &d, "data.immigration_status");
    fill_valid(&d, "decision.recorded");
    d_del(&d, "valid_until"); /* LTR is limited leave */
    EXPECT_SCHEMA("decision.recorded", &d, "valid_until");
    d_str(&d, "immigration_status", "ILR"); /* indefinite leave needs no end */
    EXPECT_VALID("decision.recorded", &d);
    fill_valid(&d, "decision.recorded");
    d_del(&d, "immigration_status");
    EXPECT_SCHEMA("decision.recorded", &d, "immigration_status");
    fill_valid(&d, "decision.recorded");
    d_del(&d, "valid_from");
    EXPECT_SCHEMA("decision.recorded", &d, "valid_from");
    fill_valid(&d, "decision.recorded");
    d_del(&d, "no_recourse_to_public_funds");
    EXPECT_SCHEMA("decision.recorded", &d, "no_recourse_to_public_funds");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "no_recourse_to_public_funds", "yes");
    EXPECT_SCHEMA("decision.recorded", &d, "data.no_recourse_to_public_funds");
    fill_valid(&d, "decision.recorded");
    d_list(&d, "conditions", "permission_to_work,bogus");
    EXPECT_SCHEMA("decision.recorded", &d, "data.conditions[1]");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "conditions", "permission_to_work");
    EXPECT_SCHEMA("decision.recorded", &d, "data.conditions");
    fill_valid(&d, "decision.recorded");
    d_list(&d, "evidence", "ABCDEF");
    EXPECT_SCHEMA("decision.recorded", &d, "data.evidence[0]");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "valid_until", "2026-10-31");
    EXPECT_SCHEMA("decision.recorded", &d, "valid_until");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "valid_from", "2026-11-31");
    EXPECT_SCHEMA("decision.recorded", &d, "data.valid_from");
    /* a refusal or a void decision gives no leave: it needs none of its details, and
     * carries none (helper-54's review: a refusal printed a status and dates) */
    static const char *const leave[] = {"conditions", "immigration_status",
                                        "no_recourse_to_public_funds", "valid_from", "valid_until"};
    for (size_t o = 0; o < 2; o++)
        for (size_t keep = 0; keep <= 5; keep++) {
            fill_valid(&d, "decision.recorded");
            d_str(&d, "outcome", o ? "void" : "refused");
            for (size_t i = 0; i < 5; i++)
                if (i != keep)
                    d_del(&d, leave[i]);
            if (keep == 5) {
                EXPECT_VALID("decision.recorded", &d);
            } else {
                EXPECT_SCHEMA("decision.recorded", &d, leave[keep]);
                ASSERT_CONTAINS(dk_errmsg(), "not a grant");
            }
        }
    fill_valid(&d, "decision.recorded");
    d_str(&d, "outcome", "refused");
    for (size_t i = 0; i < 5; i++)
        d_del(&d, leave[i]);
    d_del(&d, "rationale");
    EXPECT_SCHEMA("decision.recorded", &d, "data.rationale");
    /* a grant that contradicts itself */
    fill_valid(&d, "decision.recorded"); /* NRPF true, and listed */
    d_bool(&d, "no_recourse_to_public_funds", 0);
    EXPECT_SCHEMA("decision.recorded", &d, "no_recourse_to_public_funds");
    ASSERT_CONTAINS(dk_errmsg(), "lists");
    d_list(&d, "conditions", "permission_to_work");
    EXPECT_VALID("decision.recorded", &d); /* false, and not listed */
    d_bool(&d, "no_recourse_to_public_funds", 1);
    EXPECT_SCHEMA("decision.recorded", &d, "does not list");
    fill_valid(&d, "decision.recorded");
    d_list(&d, "conditions",
           "permission_to_work,no_recourse_to_public_funds,no_permission_to_work");
    EXPECT_SCHEMA("decision.recorded", &d, "no_permission_to_work");
    fill_valid(&d, "decision.recorded");
    d_str(&d, "immigration_status", "ILE"); /* indefinite leave has no end */
    EXPECT_SCHEMA("decision.recorded", &d, "indefinite leave (ILE) has no valid_until");

    /* interviews */
    fill_valid(&d, "interview.booked");
    d_str(&d, "slot_start", "tomorrow");
    EXPECT_SCHEMA("interview.booked", &d, "data.slot_start");
    fill_valid(&d, "interview.booked");
    d_str(&d, "slot_end", "2026-11-24T10:00:00Z");
    EXPECT_SCHEMA("interview.booked", &d, "slot_end");
    fill_valid(&d, "interview.booked");
    d_str(&d, "interviewer", "x y");
    EXPECT_SCHEMA("interview.booked", &d, "data.interviewer");
    fill_valid(&d, "interview.booked");
    d_del(&d, "location");
    EXPECT_SCHEMA("interview.booked", &d, "data.location");
    fill_valid(&d, "interview.rescheduled");
    d_del(&d, "slot_start");
    EXPECT_SCHEMA("interview.rescheduled", &d, "data.slot_start");
    fill_valid(&d, "interview.attended");
    d_bool(&d, "notes", 1);
    EXPECT_SCHEMA("interview.attended", &d, "data.notes");

    /* reverts and rollbacks */
    fill_valid(&d, "event.reverted");
    d_u64(&d, "target_seq", 0);
    EXPECT_SCHEMA("event.reverted", &d, "data.target_seq");
    d_str(&d, "target_seq", "12");
    EXPECT_SCHEMA("event.reverted", &d, "data.target_seq");
    fill_valid(&d, "event.reverted");
    d_str(&d, "target_hash", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    EXPECT_SCHEMA("event.reverted", &d, "data.target_hash");
    fill_valid(&d, "event.reverted");
    d_str(&d, "reason_code", "oops");
    EXPECT_SCHEMA("event.reverted", &d, "data.reason_code");
    fill_valid(&d, "event.reverted");
    d_del(&d, "reason");
    EXPECT_SCHEMA("event.reverted", &d, "data.reason");
    fill_valid(&d, "case.rolled_back");
    d_str(&d, "to_time", "yesterday");
    EXPECT_SCHEMA("case.rolled_back", &d, "data.to_time");

    /* corrections, contact, appeals, documents */
    fill_valid(&d, "status.corrected");
    d_str(&d, "field", "case_type");
    EXPECT_SCHEMA("status.corrected", &d, "data.field");
    fill_valid(&d, "status.corrected");
    d_u64(&d, "error_ref", 0);
    EXPECT_SCHEMA("status.corrected", &d, "data.error_ref");
    /* a correction's new value obeys its field's own rule (it was any 256 bytes, cut to
     * the field's size: a name cut inside a character was then dropped from --json) */
    static const struct {
        const char *field, *to;
        int ok;
    } corrections[] = {
        {"status", "validated", 1},         {"status", "lost", 0},
        {"assignee", "cw.dave", 1},         {"assignee", "Not An Actor", 0},
        {"date_of_birth", "1990-02-28", 1}, {"date_of_birth", "sometime in the 1990s", 0},
        {"date_of_birth", "1990-02-30", 0}, {"nationality", "SOM", 1},
        {"nationality", "gbr", 0},          {"nationality", "GBRX", 0},
        {"applicant_name", "Ana Lopez", 1}, {"applicant_name", "", 0},
    };
    for (size_t i = 0; i < sizeof corrections / sizeof corrections[0]; i++) {
        fill_valid(&d, "status.corrected");
        d_str(&d, "field", corrections[i].field);
        d_str(&d, "to", corrections[i].to);
        if (corrections[i].ok)
            EXPECT_VALID("status.corrected", &d);
        else
            EXPECT_SCHEMA("status.corrected", &d, "data.to");
    }
    char long_name[131];
    memset(long_name, 'a', 127);
    memcpy(long_name + 127, "\xc3\xa9", 3); /* 129 bytes: over the name's 128 */
    fill_valid(&d, "status.corrected");
    d_str(&d, "field", "applicant_name");
    d_str(&d, "to", long_name);
    EXPECT_SCHEMA("status.corrected", &d, "data.to");
    fill_valid(&d, "contact.updated");
    d_del(&d, "email");
    EXPECT_SCHEMA("contact.updated", &d, "email");
    fill_valid(&d, "appeal.decided");
    d_str(&d, "outcome", "upheld");
    EXPECT_SCHEMA("appeal.decided", &d, "data.outcome");
    fill_valid(&d, "document.attached");
    d_str(&d, "sha256", "abc");
    EXPECT_SCHEMA("document.attached", &d, "data.sha256");
    fill_valid(&d, "leave.cancelled");
    d_del(&d, "notice_sent_to");
    EXPECT_SCHEMA("leave.cancelled", &d, "data.notice_sent_to");
}

/* interview.rescheduled carries a slot just as interview.booked does; a slot
 * that ends before it starts must be refused there too (else a reversed slot
 * slips past the interviewer's double-booking check). */
TEST(rescheduled_slot_must_end_after_it_starts)
{
    dmap d;
    fill_valid(&d, "interview.rescheduled");
    d_str(&d, "slot_start", "2026-11-25T11:00:00Z");
    d_str(&d, "slot_end", "2026-11-25T10:00:00Z");
    EXPECT_SCHEMA("interview.rescheduled", &d, "slot_end");
}

/* Conditions may repeat (the schema allows a list of 64); recording them
 * must neither overrun decision.conditions nor clobber the fields after it. */
TEST(decision_conditions_stay_in_their_field)
{
    dmap d;
    dk_case_state st;
    char many[600] = "";
    for (int i = 0; i < 8; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sno_recourse_to_public_funds",
                 i ? "," : "");
    fill_valid(&d, "decision.recorded");
    d_list(&d, "conditions", many);
    tev e;
    tev_make(&e, "decision.recorded", "HO-7", "pat", &d, NULL);
    int rc = dk_case_check_schema(&e.ev);
    if (rc == 0) {
        state_for(&st, DK_ST_UNDER_CONSIDERATION, "decision.recorded");
        ASSERT_OK(dk_case_apply(&st, 50, &e.ev));
        ASSERT(strlen(st.decision.conditions) < sizeof st.decision.conditions);
        ASSERT_STR_EQ(st.decision.valid_from, "2026-11-01");
        ASSERT_STR_EQ(st.decision.valid_until, "2028-11-01");
        ASSERT_STR_EQ(st.decision.rules_version, "HC395-2026-10");
        ASSERT_EQ(st.decision.seq, 50);
    } else {
        ASSERT_EQ(rc, DK_ESCHEMA); /* refusing repeats would do as well */
        ASSERT_CONTAINS(dk_errmsg(), "conditions");
    }
    tev_free(&e);
}

/* ======================================================================
 * 3. Permissions
 * ====================================================================== */

static const struct {
    unsigned bit;
    const char *name;
} roles[] = {{DK_ROLE_ADMIN, "admin"},
             {DK_ROLE_CASEWORKER, "caseworker"},
             {DK_ROLE_SENIOR_CASEWORKER, "senior_caseworker"},
             {DK_ROLE_AUDITOR, "auditor"},
             {DK_ROLE_CHECKER, "checker"},
             {DK_ROLE_MIGRATION, "migration"}};
#define NROLES (sizeof roles / sizeof roles[0])

static int permit(const char *type, const char *actor, unsigned author_roles, const char *assignee,
                  const char *const *cos, const unsigned *cos_roles, size_t ncos,
                  const char *target_type)
{
    dmap d;
    tev e;
    dk_case_state st;
    state_for(&st, DK_ST_UNDER_CONSIDERATION, type);
    snprintf(st.assignee, sizeof st.assignee, "%s", assignee);
    fill_valid(&d, type);
    tev_make(&e, type, "HO-3", actor, &d, NULL);
    int rc = dk_case_permit(&e.ev, author_roles, &st, cos, cos_roles, ncos, target_type);
    tev_free(&e);
    return rc;
}

TEST(permissions_by_role)
{
    const char *sam[] = {"sam"};
    unsigned senior[] = {DK_ROLE_SENIOR_CASEWORKER};
    ASSERT_EQ(dk_role_parse("senior_caseworker", 17), DK_ROLE_SENIOR_CASEWORKER);
    for (size_t r = 0; r < NROLES; r++)
        for (size_t t = 0; t < NTYPES; t++) {
            const char *type = expected[t].type;
            int want = (expected[t].roles & roles[r].bit) != 0;
            /* with a valid co-signer (four-eyes events need one) and the case assigned to pat */
            int rc = permit(type, "pat", roles[r].bit, "pat", sam, senior, 1,
                            is(type, "event.reverted") ? "note.added" : NULL);
            if (want && rc != 0)
                TH_FAIL("%s may not append %s: %s", roles[r].name, type, dk_errmsg());
            if (!want) {
                if (rc != DK_EDENIED)
                    TH_FAIL("%s appending %s: %s, wanted DK_EDENIED", roles[r].name, type,
                            dk_err_name(rc));
                ASSERT_CONTAINS(dk_errmsg(), "'pat'");
                ASSERT_CONTAINS(dk_errmsg(), roles[r].name);
                ASSERT_CONTAINS(dk_errmsg(), type);
            }
            /* without a co-signer only case.rolled_back changes */
            rc = permit(type, "pat", roles[r].bit, "pat", NULL, NULL, 0,
                        is(type, "event.reverted") ? "note.added" : NULL);
            if (want && is(type, "case.rolled_back")) {
                ASSERT_ERR(rc, DK_EDENIED);
                ASSERT_CONTAINS(dk_errmsg(), "four eyes");
            } else {
                ASSERT_EQ(rc, want ? 0 : DK_EDENIED);
            }
        }
    /* auditors and checkers: nothing at all, even with every other role's co-signature */
    for (size_t t = 0; t < NTYPES; t++) {
        ASSERT_ERR(
            permit(expected[t].type, "audrey", DK_ROLE_AUDITOR, "audrey", sam, senior, 1, NULL),
            DK_EDENIED);
        ASSERT_ERR(permit(expected[t].type, "chuck", DK_ROLE_CHECKER | DK_ROLE_AUDITOR, "chuck",
                          sam, senior, 1, NULL),
                   DK_EDENIED);
        ASSERT_CONTAINS(dk_errmsg(), "chuck");
        ASSERT_CONTAINS(dk_errmsg(), "checker");
    }
}

TEST(decision_needs_assignment_or_seniority)
{
    /* a caseworker decides only a case assigned to them */
    ASSERT_OK(permit("decision.recorded", "carol", R_CW, "carol", NULL, NULL, 0, NULL));
    ASSERT_ERR(permit("decision.recorded", "carol", R_CW, "dave", NULL, NULL, 0, NULL), DK_EDENIED);
    ASSERT_CONTAINS(dk_errmsg(), "carol");
    ASSERT_CONTAINS(dk_errmsg(), "dave");
    ASSERT_CONTAINS(dk_errmsg(), "HO-3");
    ASSERT_ERR(permit("decision.recorded", "carol", R_CW, "", NULL, NULL, 0, NULL), DK_EDENIED);
    ASSERT_CONTAINS(dk_errmsg(), "nobody");
    /* a senior caseworker (or migration) decides any case */
    ASSERT_OK(permit("decision.recorded", "sam", R_SC, "dave", NULL, NULL, 0, NULL));
    ASSERT_OK(permit("decision.recorded", "sam", R_CW | R_SC, "", NULL, NULL, 0, NULL));
    ASSERT_OK(permit("decision.recorded", "mig", R_MG, "dave", NULL, NULL, 0, NULL));
    /* assignment does not matter for other events */
    ASSERT_OK(permit("note.added", "carol", R_CW, "dave", NULL, NULL, 0, NULL));
}

TEST(four_eyes)
{
    const char *four_eyed[] = {"decision.recorded", "leave.cancelled", "case.rolled_back"};
    const char *other[] = {"note.added", "case.status_changed", "interview.booked"};
    const char *sam[] = {"sam"}, *carol_sam[] = {"carol", "sam"}, *pat[] = {"pat"},
               *carol[] = {"carol"};
    unsigned senior[] = {R_SC}, cw[] = {R_CW}, cw_senior[] = {R_CW, R_SC | R_CW};
    for (int i = 0; i < 3; i++) {
        const char *tt = four_eyed[i];
        /* no co-signer, a caseworker, the author again: refused */
        ASSERT_ERR(permit("event.reverted", "pat", R_CW, "pat", NULL, NULL, 0, tt), DK_EDENIED);
        ASSERT_CONTAINS(dk_errmsg(), "four eyes");
        ASSERT_CONTAINS(dk_errmsg(), tt);
        ASSERT_CONTAINS(dk_errmsg(), "'pat'");
        ASSERT_ERR(permit("event.reverted", "pat", R_CW, "pat", carol, cw, 1, tt), DK_EDENIED);
        ASSERT_ERR(permit("event.reverted", "pat", R_SC, "pat", pat, senior, 1, tt), DK_EDENIED);
        /* a senior other than the author: allowed, wherever it signs */
        ASSERT_OK(permit("event.reverted", "pat", R_CW, "pat", sam, senior, 1, tt));
        ASSERT_OK(permit("event.reverted", "pat", R_CW, "pat", carol_sam, cw_senior, 2, tt));
        ASSERT_OK(permit("event.reverted", "pat", R_SC, "pat", sam, senior, 1, tt));
    }
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        ASSERT_OK(permit("event.reverted", "pat", R_CW, "pat", NULL, NULL, 0, other[i]));
    /* every rollback */
    ASSERT_ERR(permit("case.rolled_back", "sam", R_SC, "pat", NULL, NULL, 0, NULL), DK_EDENIED);
    ASSERT_CONTAINS(dk_errmsg(), "case.rolled_back");
    ASSERT_ERR(permit("case.rolled_back", "sam", R_SC | R_CW, "pat", sam, senior, 1, NULL),
               DK_EDENIED);
    ASSERT_ERR(permit("case.rolled_back", "pat", R_CW, "pat", carol, cw, 1, NULL), DK_EDENIED);
    ASSERT_OK(permit("case.rolled_back", "pat", R_CW, "pat", sam, senior, 1, NULL));
    /* an undo needs, in its author or a co-signer, a role that may author what it undoes
     * (its chain's end): a caseworker alone does not void a senior's assignment,
     * correction or appeal decision */
    const char *senior_only[] = {"case.assigned", "status.corrected", "appeal.decided"};
    for (size_t i = 0; i < 3; i++) {
        const char *tt = senior_only[i];
        ASSERT_ERR(permit("event.reverted", "pat", R_CW, "pat", NULL, NULL, 0, tt), DK_EDENIED);
        ASSERT_CONTAINS(dk_errmsg(), "may not undo");
        ASSERT_CONTAINS(dk_errmsg(), tt);
        ASSERT_ERR(permit("event.reverted", "pat", R_CW, "pat", carol, cw, 1, tt), DK_EDENIED);
        ASSERT_ERR(permit("event.reverted", "pat", R_CW, "pat", pat, senior, 1, tt), DK_EDENIED);
        ASSERT_OK(permit("event.reverted", "pat", R_CW, "pat", sam, senior, 1, tt));
        ASSERT_OK(permit("event.reverted", "sam", R_SC, "pat", NULL, NULL, 0, tt));
    }
    /* a migration actor may not revert at all */
    ASSERT_ERR(permit("event.reverted", "mig", R_MG, "pat", sam, senior, 1, "note.added"),
               DK_EDENIED);
    ASSERT_CONTAINS(dk_errmsg(), "migration");
}

/* ======================================================================
 * Ledger helpers
 * ====================================================================== */

static void fold_n(const caserecs *cr, size_t n, dk_case_state *st)
{
    uint64_t bad = 0;
    int rc = dk_case_fold(cr->r, n, st, NULL, NULL, &bad);
    if (rc)
        TH_FAIL("fold failed at seq %llu: %s: %s", (unsigned long long)bad, dk_err_name(rc),
                dk_errmsg());
}

/* The case as the ledger now folds it. */
static void fold_case(dk_ledger *lg, const char *case_id, dk_case_state *st)
{
    caserecs cr;
    read_case(lg, case_id, &cr);
    fold_n(&cr, cr.n, st);
    caserecs_free(&cr);
}

TEST(permissions_at_the_ledger)
{
    world w;
    world_open(&w, th_tmpdir());
    dk_key *audrey, *chuck, *mig;
    dk_append_res res;
    dmap d;
    ASSERT_OK(fx_enroll(w.lg, w.admin, "audrey", "auditor", ACTOR_N(10), &audrey));
    ASSERT_OK(fx_enroll(w.lg, w.admin, "chuck", "checker", ACTOR_N(11), &chuck));
    ASSERT_OK(fx_enroll(w.lg, w.admin, "mig", "migration", ACTOR_N(12), &mig));
    open_validated(&w, "PL-1", w.carol);
    uint64_t head = head_seq(w.lg);
    fill_valid(&d, "note.added");
    ASSERT_ERR(try_put(&w, "PL-1", "note.added", audrey, NULL, &d, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "audrey");
    ASSERT_CONTAINS(res.errmsg, "auditor");
    ASSERT_ERR(try_put(&w, "PL-1", "note.added", chuck, NULL, &d, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "chuck");
    ASSERT_ERR(try_put(&w, "PL-1", "note.added", w.admin, NULL, &d, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "admin");
    /* a caseworker cannot assign; a senior can */
    fill_valid(&d, "case.assigned");
    d_str(&d, "caseworker", "sam");
    ASSERT_ERR(try_put(&w, "PL-1", "case.assigned", w.carol, NULL, &d, &res), DK_EDENIED);
    ASSERT_EQ(head_seq(w.lg), head);
    PUT(&w, "PL-1", "case.assigned", w.sue, NULL, &d);
    to_status(&d, "under_consideration");
    PUT(&w, "PL-1", "case.status_changed", mig, NULL, &d);
    /* carol decides only her own cases: this one is sam's */
    fill_valid(&d, "decision.recorded");
    head = head_seq(w.lg);
    ASSERT_ERR(try_put(&w, "PL-1", "decision.recorded", w.carol, NULL, &d, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "carol");
    ASSERT_CONTAINS(res.errmsg, "sam");
    ASSERT_EQ(head_seq(w.lg), head);
    fill_valid(&d, "case.assigned");
    PUT(&w, "PL-1", "case.assigned", w.sam, NULL, &d); /* to carol */
    fill_valid(&d, "decision.recorded");
    uint64_t dec = PUT(&w, "PL-1", "decision.recorded", w.carol, NULL, &d);
    /* reverting the decision takes a senior's second signature at the ledger too */
    revert_data(&d, w.lg, dec);
    head = head_seq(w.lg);
    ASSERT_ERR(try_put(&w, "PL-1", "event.reverted", w.carol, NULL, &d, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "four eyes");
    ASSERT_ERR(try_put(&w, "PL-1", "event.reverted", w.sam, NULL, &d, &res), DK_EDENIED);
    ASSERT_ERR(try_put(&w, "PL-1", "event.reverted", w.sam, w.carol, &d, &res), DK_EDENIED);
    ASSERT_ERR(try_put(&w, "PL-1", "event.reverted", mig, w.sam, &d, &res), DK_EDENIED);
    ASSERT_EQ(head_seq(w.lg), head);
    dk_case_state st;
    fold_case(w.lg, "PL-1", &st);
    ASSERT_EQ(st.status, DK_ST_DECIDED);
    PUT(&w, "PL-1", "event.reverted", w.carol, w.sue, &d);
    fold_case(w.lg, "PL-1", &st);
    ASSERT_EQ(st.status, DK_ST_UNDER_CONSIDERATION);
    ASSERT_EQ(st.decision.has, 0);
    /* a case goes only to an enrolled caseworker or senior (helper-54's review: any
     * well-formed id was taken), by assignment or by correction */
    static const char *const not_assignable[] = {"ghost.nobody", "audrey", "chuck", "admin"};
    head = head_seq(w.lg);
    for (size_t i = 0; i < 4; i++) {
        fill_valid(&d, "case.assigned");
        d_str(&d, "caseworker", not_assignable[i]);
        ASSERT_ERR(try_put(&w, "PL-1", "case.assigned", w.sue, NULL, &d, &res), DK_EDENIED);
        ASSERT_CONTAINS(res.errmsg, not_assignable[i]);
    }
    fill_valid(&d, "error.reported");
    uint64_t err = PUT(&w, "PL-1", "error.reported", w.carol, NULL, &d);
    fill_valid(&d, "status.corrected");
    d_u64(&d, "error_ref", err);
    d_str(&d, "field", "assignee");
    d_str(&d, "from", "carol");
    d_str(&d, "to", "ghost.nobody");
    ASSERT_ERR(try_put(&w, "PL-1", "status.corrected", w.sue, NULL, &d, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "not an enrolled actor");
    ASSERT_EQ(head_seq(w.lg), head + 1); /* the error report only */
    d_str(&d, "to", "sam");
    PUT(&w, "PL-1", "status.corrected", w.sue, NULL, &d);
    dk_key_free(audrey);
    dk_key_free(chuck);
    dk_key_free(mig);
    world_close(&w);
}

/* ======================================================================
 * 4. Property test: the ledger accepts exactly what the model accepts
 * ====================================================================== */

/* The model and its walk: modelwalk.h. */

/* DOCKET_PROP_SEEDS=N adds N seeds taken from the clock (a longer soak; each printed, up
 * to 60), and DOCKET_PROP_SEED=0x... one printed before (to replay a failure). */
TEST(ledger_agrees_with_model)
{
    /* the fifth: an undo that leaves a leave cancellation in force after a booking; the
     * sixth: one that leaves a caseworker's decision on a case no longer theirs */
    uint64_t seeds[64] = {0x5eed0001, 0xdecafbad,         0x0ddba11,
                          0xca5e5107, 0x18ec271cf9a84463, 0x18ec009eb865dbc6};
    size_t nseeds = 6;
    const size_t fixed = nseeds;
    const char *one = getenv("DOCKET_PROP_SEED");
    if (one)
        seeds[nseeds++] = strtoull(one, NULL, 0);
    const char *extra = getenv("DOCKET_PROP_SEEDS");
    for (long more = extra ? strtol(extra, NULL, 10) : 0; more > 0 && nseeds < 64; more--) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seeds[nseeds] = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ nseeds << 40;
        nseeds++;
    }
    unsigned totals[N_COUNTS] = {0};
    char dir[512];
    const char *base = th_tmpdir();
    for (size_t i = 0; i < nseeds; i++) {
        prop p;
        if (i >= fixed)
            fprintf(stderr, "# model walk with seed 0x%llx\n", (unsigned long long)seeds[i]);
        snprintf(dir, sizeof dir, "%s/seed%zu", base, i);
        prop_run(dir, seeds[i], 1500, &p, NULL, NULL);
        for (int k = 0; k < N_COUNTS; k++)
            totals[k] += p.n[k];
    }
    /* the walk must have exercised what it is for */
    static const char *const names[N_COUNTS] = {"accepted",
                                                "refused",
                                                "reverts",
                                                "redos",
                                                "rollbacks",
                                                "slot conflicts",
                                                "decisions",
                                                "four-eyes refusals",
                                                "dependent refusals",
                                                "uncorrectable statuses",
                                                "undos against the append rules",
                                                "unenrolled interviewers"};
    static const unsigned at_least[N_COUNTS] = {1000, 500, 50, 10, 10, 5, 10, 10, 5, 10, 1, 10};
    for (int k = 0; getenv("DOCKET_PROP_COUNTS") && k < N_COUNTS; k++) /* to tune the walk */
        fprintf(stderr, "# %u %s over %zu seeds\n", totals[k], names[k], nseeds);
    for (int k = 0; k < N_COUNTS; k++)
        if (totals[k] < at_least[k])
            TH_FAIL("only %u %s in the random walk (want %u)", totals[k], names[k], at_least[k]);
}

/* Voiding a case's opening leaves it with no status but with events: that void can
 * itself be undone (the writer refuses undo only on a case with no events at all). */
/* The packed row is what verify compares byte for byte, so its encoding is fixed: the
 * library's packer (which skips zeros eight bytes at a time) must give exactly what this
 * byte-at-a-time reference gives for the same canonical state, and unpack must give the
 * state back. */
static size_t ref_pack(const dk_case_state *canonical, uint8_t *out)
{
    const uint8_t *p = (const uint8_t *)canonical;
    size_t n = sizeof *canonical, o = 4, i = 0;
    uint32_t layout = 0xd5000000u | (uint32_t)sizeof *canonical;
    for (int b = 0; b < 4; b++)
        out[b] = (uint8_t)(layout >> (24 - 8 * b));
    while (i < n) {
        size_t run = 0;
        while (i + run < n && p[i + run] == 0 && run < 127)
            run++;
        if (run >= 2 || (run == 1 && i + 1 == n)) {
            out[o++] = (uint8_t)(0x80 | run);
            i += run;
            continue;
        }
        size_t lit = 0;
        while (i + lit < n && lit < 127 &&
               !(p[i + lit] == 0 && i + lit + 1 < n && p[i + lit + 1] == 0))
            lit++;
        out[o++] = (uint8_t)lit;
        memcpy(out + o, p + i, lit);
        o += lit;
        i += lit;
    }
    return o;
}

TEST(state_rows_pack_as_the_reference_does)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 4000; round++) {
        dk_case_state st, canonical, back;
        uint8_t *b = (uint8_t *)&st;
        memset(&st, 0, sizeof st);
        /* sparse random bytes, runs of them, or dense: every shape of zero run */
        int density = round % 4;
        for (size_t i = 0; i < sizeof st; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            if ((int)(rng % 16) < density * 5)
                b[i] = (uint8_t)(rng >> 32);
        }
        st.status = (int)(rng % DK_ST_COUNT);
        st.open_errors = (uint32_t)(rng % (DK_OPEN_ERRORS_MAX + 1));
        st.interview.active = (int)(rng >> 40) & 1;
        uint8_t got[DK_CASE_STATE_PACKED_MAX], want[DK_CASE_STATE_PACKED_MAX];
        size_t n = dk_case_state_pack(&st, got, sizeof got);
        ASSERT(n > 4);
        ASSERT_OK(dk_case_state_unpack(got, n, &canonical)); /* the canonical form */
        size_t m = ref_pack(&canonical, want);
        ASSERT_EQ(n, m);
        ASSERT(memcmp(got, want, n) == 0);
        ASSERT_OK(dk_case_state_unpack(want, m, &back));
        ASSERT(memcmp(&back, &canonical, sizeof back) == 0);
    }
}

/* Data of every wrong shape, as a damaged stored body could hold (a rebuild folds before
 * its chain check decides): each key the lifecycle reads missing, or a nil, an integer,
 * a negative, a boolean, an array or a map where a string, a seq or a list belongs, and
 * the data itself no map. Every case event type, from every status, applies or refuses
 * (the run under ASan in CI sees any read through a missing value); and the fold refuses
 * an undo or a rollback whose target it cannot read, naming it, instead of guessing. */
static const char *const lifecycle_keys[] = {"applicant",
                                             "case_type",
                                             "channel",
                                             "received_on",
                                             "caseworker",
                                             "to",
                                             "outcome",
                                             "product_type",
                                             "immigration_status",
                                             "valid_from",
                                             "valid_until",
                                             "rules_version",
                                             "no_recourse_to_public_funds",
                                             "conditions",
                                             "slot_start",
                                             "slot_end",
                                             "interviewer",
                                             "location",
                                             "error_ref",
                                             "field",
                                             "from",
                                             "email",
                                             "postal_address",
                                             "target_seq",
                                             "to_time"};
#define NLKEYS (sizeof lifecycle_keys / sizeof lifecycle_keys[0])

/* One value of shape `v` (0..8); shape 9 leaves the key out. */
static void pack_shape(msgpack_packer *pk, int v)
{
    switch (v) {
    case 0:
        msgpack_pack_nil(pk);
        break;
    case 1:
        msgpack_pack_uint64(pk, 7);
        break;
    case 2:
        msgpack_pack_int64(pk, -1);
        break;
    case 3:
        msgpack_pack_true(pk);
        break;
    case 4:
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, 1);
        msgpack_pack_nil(pk);
        break;
    case 5:
        msgpack_pack_map(pk, 1);
        msgpack_pack_str(pk, 1);
        msgpack_pack_str_body(pk, "a", 1);
        msgpack_pack_uint64(pk, 1);
        break;
    case 6:
        msgpack_pack_str(pk, 6);
        msgpack_pack_str_body(pk, "status", 6);
        break;
    case 7:
        msgpack_pack_str(pk, 1);
        msgpack_pack_str_body(pk, "x", 1);
        break;
    default:
        msgpack_pack_map(pk, 0);
        break;
    }
}

/* Data where key `odd` has shape `v` and every other key shape `rest`. */
static void shaped_data(msgpack_sbuffer *sb, size_t odd, int v, int rest)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, NLKEYS - (v == 9));
    for (size_t k = 0; k < NLKEYS; k++) {
        if (k == odd && v == 9)
            continue;
        msgpack_pack_str(&pk, strlen(lifecycle_keys[k]));
        msgpack_pack_str_body(&pk, lifecycle_keys[k], strlen(lifecycle_keys[k]));
        pack_shape(&pk, k == odd ? v : rest);
    }
}

/* A stored body's data is read by the fold before the chain is checked (a rebuild), so a
 * damaged count is refused before msgpack-c reserves its entries: a map32 header of
 * 2^32-1 entries made it ask for 128 GiB (ASan aborted; a release build said "data is
 * not a map", not what was wrong). */
TEST(the_lifecycle_names_a_damaged_count_before_unpacking)
{
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01};
    /* {"outcome": array32 of 2^28 items} */
    static const uint8_t inner[] = {0x81, 0xa7, 'o',  'u',  't',  'c',  'o', 'm',
                                    'e',  0xdd, 0x10, 0x00, 0x00, 0x00, 0xc0};
    const struct {
        const uint8_t *d;
        size_t n;
        const char *named;
    } cases[] = {{map32, sizeof map32, "a map at byte 0 declares 4294967295 entries"},
                 {inner, sizeof inner, "an array at byte 9 declares 268435456 items"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dk_case_state st, before;
        memset(&st, 0, sizeof st);
        st.status = DK_ST_UNDER_CONSIDERATION;
        before = st;
        dk_event ev;
        memset(&ev, 0, sizeof ev);
        ev.v = DK_EVENT_VERSION;
        strcpy(ev.type, "decision.recorded");
        strcpy(ev.case_id, "HO-9");
        strcpy(ev.actor, "pat");
        ev.data = cases[i].d;
        ev.data_len = cases[i].n;
        ASSERT_ERR(dk_case_apply(&st, 9, &ev), DK_ESCHEMA);
        ASSERT_CONTAINS(dk_errmsg(), "decision.recorded: data is damaged or truncated: ");
        ASSERT_CONTAINS(dk_errmsg(), cases[i].named);
        ASSERT(memcmp(&st, &before, sizeof st) == 0);
    }
}

TEST(the_lifecycle_reads_damaged_data_without_trusting_it)
{
    static const char *const types[] = {
        "case.opened",        "case.assigned",     "case.status_changed",   "case.withdrawn",
        "case.closed",        "decision.recorded", "leave.cancelled",       "note.added",
        "document.attached",  "interview.booked",  "interview.rescheduled", "interview.cancelled",
        "interview.attended", "interview.no_show", "error.reported",        "status.corrected",
        "contact.updated",    "appeal.lodged",     "appeal.decided"};
    static const uint8_t not_maps[][2] = {{0xc0, 0}, {0x90, 0}, {0xa1, 'x'}, {0x07, 0}};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    size_t applied = 0, refused = 0;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (int status = 0; status < DK_ST_COUNT; status++)
            for (size_t odd = 0; odd <= NLKEYS; odd++)
                for (int v = 0; v < 10 + 4; v++) {
                    dk_case_state st;
                    memset(&st, 0, sizeof st);
                    st.status = status;
                    st.open_errors = 1;
                    st.error_seqs[0] = 7;
                    st.decision.has = 1;
                    strcpy(st.decision.outcome, "granted");
                    dk_event ev;
                    memset(&ev, 0, sizeof ev);
                    ev.v = DK_EVENT_VERSION;
                    strcpy(ev.type, types[t]);
                    strcpy(ev.case_id, "HO-9");
                    strcpy(ev.actor, "pat");
                    if (v >= 10) { /* the data is no map at all */
                        if (odd > 0)
                            continue;
                        ev.data = not_maps[v - 10];
                        ev.data_len = not_maps[v - 10][0] == 0xa1 ? 2 : 1;
                    } else {
                        /* odd == NLKEYS: every key of shape v */
                        shaped_data(&sb, odd, v, odd == NLKEYS ? v : 6 + (int)(odd % 2));
                        ev.data = (const uint8_t *)sb.data;
                        ev.data_len = sb.size;
                    }
                    if (dk_case_apply(&st, 9, &ev) == 0)
                        applied++;
                    else
                        refused++;
                }
    ASSERT(applied > 1000 && refused > 1000);
    /* an undo whose target is no seq, a rollback with no time: refused, at its seq */
    for (int meta = 0; meta < 2; meta++)
        for (int v = 0; v < 10; v++) {
            dmap d;
            fill_valid(&d, "case.opened");
            tev open;
            tev_make(&open, "case.opened", "HO-9", "pat", &d, NULL);
            const char *key = meta ? "to_time" : "target_seq";
            msgpack_packer pk;
            msgpack_sbuffer_clear(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, v != 9);
            if (v != 9) { /* the key it reads, of shape v, or left out */
                msgpack_pack_str(&pk, strlen(key));
                msgpack_pack_str_body(&pk, key, strlen(key));
                pack_shape(&pk, v);
            }
            dk_event ev;
            memset(&ev, 0, sizeof ev);
            ev.v = DK_EVENT_VERSION;
            strcpy(ev.type, meta ? "case.rolled_back" : "event.reverted");
            strcpy(ev.case_id, "HO-9");
            strcpy(ev.actor, "pat");
            ev.data = (const uint8_t *)sb.data;
            ev.data_len = sb.size;
            uint8_t *body;
            size_t blen;
            ASSERT_OK(dk_event_encode(&ev, &body, &blen));
            dk_record recs[2];
            memset(recs, 0, sizeof recs);
            recs[0] =
                (dk_record){.seq = 1, .recorded_at = 1000, .body = open.body, .body_len = open.len};
            recs[1] = (dk_record){.seq = 2, .recorded_at = 1001, .body = body, .body_len = blen};
            dk_case_state st;
            memset(&st, 0, sizeof st);
            dk_void *voids = NULL;
            size_t nv = 0;
            uint64_t bad = 0;
            int rc = dk_case_fold(recs, 2, &st, &voids, &nv, &bad);
            if (!meta && v == 1) { /* a seq, 7, which is not on the case: nothing voided */
                ASSERT_OK(rc);
                ASSERT_EQ(st.status, DK_ST_RECEIVED);
                ASSERT_EQ(nv, 0);
            } else {
                ASSERT_ERR(rc, DK_ESCHEMA);
                ASSERT_EQ(bad, 2);
                ASSERT_CONTAINS(dk_errmsg(), meta ? "data.to_time" : "data.target_seq");
            }
            free(voids);
            free(body);
            tev_free(&open);
        }
    msgpack_sbuffer_destroy(&sb);
}

/* New events may not carry control characters in their text (terminal escapes, carriage
 * returns), nor times outside 0001-9999; tab and newline are text. Stored events are
 * read as they were accepted, so these are rules of the append, not of the schema. */
TEST(new_events_refuse_control_characters_and_far_times)
{
    world w;
    world_open(&w, th_tmpdir());
    dmap d;
    dk_append_res res;
    open_validated(&w, "CC-1", w.carol);
    uint64_t head = head_seq(w.lg);
    static const char *const controls[] = {"clear \x1b[2J", "over\rwrite", "del\x7f", "bell\x07"};
    for (size_t i = 0; i < 4; i++) {
        fill_valid(&d, "note.added");
        d_str(&d, "text", controls[i]);
        EXPECT_VALID("note.added", &d); /* the schema allows it: stored ones stay readable */
        ASSERT_ERR(try_put(&w, "CC-1", "note.added", w.carol, NULL, &d, &res), DK_ESCHEMA);
        ASSERT_CONTAINS(res.errmsg, "control character");
    }
    fill_valid(&d, "contact.updated");
    d_str(&d, "postal_address", "1 High St\x1b]0;pwned\x07");
    ASSERT_ERR(try_put(&w, "CC-1", "contact.updated", w.carol, NULL, &d, &res), DK_ESCHEMA);
    ASSERT_EQ(head_seq(w.lg), head);
    /* an effective time past 9999 (or before year 1) in UTC */
    static const int64_t far[] = {DK_TIME_LATEST + 1, DK_TIME_EARLIEST - 1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < 4; i++) {
        tev e;
        fill_valid(&d, "note.added");
        tev_make(&e, "note.added", "CC-1", "carol", &d, NULL);
        dk_event ev = e.ev;
        ev.has_eff = 1;
        ev.eff = far[i];
        uint8_t *body;
        size_t len;
        ASSERT_OK(dk_event_encode(&ev, &body, &len)); /* the codec takes any int64 */
        free(e.body);
        e.body = body;
        e.len = len;
        ASSERT_ERR(tev_append(w.lg, &e, w.carol, NULL, &res), DK_ESCHEMA);
        ASSERT_CONTAINS(res.errmsg, "'eff'");
        tev_free(&e);
    }
    ASSERT_EQ(head_seq(w.lg), head);
    fill_valid(&d, "note.added");
    d_str(&d, "text", "line one\n\tline two");
    PUT(&w, "CC-1", "note.added", w.carol, NULL, &d);
    world_close(&w);
}

TEST(undo_on_a_case_voided_to_nothing)
{
    world w;
    world_open(&w, th_tmpdir());
    dmap d;
    dk_case_state st;
    const char *V = "VOID-1";
    uint64_t opened = PUT_DEFAULT(&w, V, "case.opened", w.carol);
    revert_data(&d, w.lg, opened);
    uint64_t undo = PUT(&w, V, "event.reverted", w.carol, NULL, &d);
    fold_case(w.lg, V, &st);
    ASSERT_EQ(st.status, DK_ST_NONE);
    ASSERT_EQ(st.version, 2);
    /* a case event still needs an open case */
    dk_append_res res;
    fill_valid(&d, "note.added");
    ASSERT_ERR(try_put(&w, V, "note.added", w.carol, NULL, &d, &res), DK_ETRANSITION);
    /* the void is undone: the case is received again */
    revert_data(&d, w.lg, undo);
    PUT(&w, V, "event.reverted", w.carol, NULL, &d);
    fold_case(w.lg, V, &st);
    ASSERT_EQ(st.status, DK_ST_RECEIVED);
    ASSERT_EQ(st.version, 3);
    uint64_t v;
    ASSERT_OK(dk_ledger_case_version(w.lg, V, &v));
    ASSERT_EQ(v, 3);
    /* undo on a case with no events at all is refused */
    fill_valid(&d, "case.rolled_back");
    ASSERT_ERR(try_put(&w, "NEVER-1", "case.rolled_back", w.carol, w.sam, &d, &res),
               DK_ETRANSITION);
    ASSERT_CONTAINS(res.errmsg, "does not exist");
    world_close(&w);
}

TEST(revert_and_redo)
{
    world w;
    world_open(&w, th_tmpdir());
    dmap d;
    dk_case_state s0, s1, s2;
    const char *U = "UNDO-1";
    open_validated(&w, U, w.carol);
    PUT_DEFAULT(&w, U, "note.added", w.carol);
    uint64_t contact = PUT_DEFAULT(&w, U, "contact.updated", w.carol);
    fold_case(w.lg, U, &s0);
    ASSERT_STR_EQ(s0.email, "new@example.org");

    /* undo the contact update */
    revert_data(&d, w.lg, contact);
    uint64_t undo = PUT(&w, U, "event.reverted", w.carol, NULL, &d);
    fold_case(w.lg, U, &s1);
    ASSERT_STR_EQ(s1.email, "");
    ASSERT_EQ(s1.voided, 1);
    ASSERT_EQ(s1.version, s0.version + 1);
    /* redo: revert the revert; the fold is back where it was */
    revert_data(&d, w.lg, undo);
    uint64_t redo = PUT(&w, U, "event.reverted", w.carol, NULL, &d);
    fold_case(w.lg, U, &s2);
    same_content("after redo", &s2, &s0);
    ASSERT_EQ(s2.version, s0.version + 2);
    ASSERT_EQ(s2.voided, 1); /* the undo */
    caserecs cr;
    read_case(w.lg, U, &cr);
    dk_void *voids;
    size_t nv;
    dk_case_state st;
    ASSERT_OK(dk_case_fold(cr.r, cr.n, &st, &voids, &nv, NULL));
    ASSERT_EQ(nv, 1);
    ASSERT_EQ(voids[0].seq, undo);
    ASSERT_EQ(voids[0].by_seq, redo);
    free(voids);
    caserecs_free(&cr);
    /* and undo the redo */
    revert_data(&d, w.lg, redo);
    PUT(&w, U, "event.reverted", w.sam, NULL, &d);
    fold_case(w.lg, U, &st);
    same_content("after undoing the redo", &st, &s1);

    /* a status change, undone and redone; the writer's state follows */
    fill_valid(&d, "case.assigned");
    PUT(&w, U, "case.assigned", w.sue, NULL, &d);
    to_status(&d, "under_consideration");
    uint64_t uc = PUT(&w, U, "case.status_changed", w.carol, NULL, &d);
    fold_case(w.lg, U, &s0);
    revert_data(&d, w.lg, uc);
    undo = PUT(&w, U, "event.reverted", w.carol, NULL, &d);
    fold_case(w.lg, U, &s1);
    ASSERT_EQ(s1.status, DK_ST_VALIDATED);
    dk_append_res res;
    fill_valid(&d, "decision.recorded");
    ASSERT_ERR(try_put(&w, U, "decision.recorded", w.carol, NULL, &d, &res), DK_ETRANSITION);
    ASSERT_CONTAINS(res.errmsg, "'validated'");
    revert_data(&d, w.lg, undo);
    PUT(&w, U, "event.reverted", w.carol, NULL, &d);
    fold_case(w.lg, U, &s2);
    same_content("status redo", &s2, &s0);
    ASSERT_EQ(s2.status, DK_ST_UNDER_CONSIDERATION);

    /* a decision: undone with four eyes, redone, and the case goes on from it */
    fill_valid(&d, "decision.recorded");
    uint64_t dec = PUT(&w, U, "decision.recorded", w.carol, NULL, &d);
    fold_case(w.lg, U, &s0);
    ASSERT_EQ(s0.status, DK_ST_DECIDED);
    revert_data(&d, w.lg, dec);
    ASSERT_ERR(try_put(&w, U, "event.reverted", w.carol, NULL, &d, &res), DK_EDENIED);
    undo = PUT(&w, U, "event.reverted", w.carol, w.sam, &d);
    fold_case(w.lg, U, &s1);
    ASSERT_EQ(s1.status, DK_ST_UNDER_CONSIDERATION);
    ASSERT_EQ(s1.decision.has, 0);
    fill_valid(&d, "appeal.lodged");
    ASSERT_ERR(try_put(&w, U, "appeal.lodged", w.carol, NULL, &d, &res), DK_ETRANSITION);
    revert_data(&d, w.lg, undo);
    PUT(&w, U, "event.reverted", w.sam, w.sue, &d);
    fold_case(w.lg, U, &s2);
    same_content("decision redo", &s2, &s0);
    PUT_DEFAULT(&w, U, "appeal.lodged", w.carol);
    fold_case(w.lg, U, &st);
    ASSERT_EQ(st.status, DK_ST_APPEALED);
    ASSERT_EQ(st.decision.seq, dec);
    world_close(&w);
}

/* ======================================================================
 * 5. Rollback
 * ====================================================================== */

static void expect_prefix(dk_ledger *lg, const char *case_id, const caserecs *before, size_t keep,
                          const char *what)
{
    dk_case_state now, then;
    fold_case(lg, case_id, &now);
    fold_n(before, keep, &then);
    same_content(what, &now, &then);
}

TEST(rollback_restores_an_earlier_state)
{
    world w;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    dmap d;
    dk_append_res res;
    const char *R = "RB-1";
    open_validated(&w, R, w.carol); /* 0, 1 */
    fill_valid(&d, "case.assigned");
    PUT(&w, R, "case.assigned", w.sam, NULL, &d);      /* 2 */
    PUT_DEFAULT(&w, R, "note.added", w.carol);         /* 3 */
    PUT_DEFAULT(&w, R, "interview.booked", w.carol);   /* 4: ivan 10:00-11:00 */
    PUT_DEFAULT(&w, R, "note.added", w.carol);         /* 5 */
    PUT_DEFAULT(&w, R, "interview.attended", w.carol); /* 6 */
    PUT_DEFAULT(&w, R, "decision.recorded", w.carol);  /* 7 */
    caserecs before;
    read_case(w.lg, R, &before);
    ASSERT_EQ(before.n, 8);
    dk_case_state st;
    fold_case(w.lg, R, &st);
    ASSERT_EQ(st.status, DK_ST_DECIDED);

    /* four eyes: alone, or with a caseworker, is not enough */
    uint64_t head = head_seq(w.lg);
    rollback_data(&d, before.r[5].recorded_at);
    ASSERT_ERR(try_put(&w, R, "case.rolled_back", w.sam, NULL, &d, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "four eyes");
    ASSERT_ERR(try_put(&w, R, "case.rolled_back", w.sam, w.carol, &d, &res), DK_EDENIED);
    ASSERT_EQ(head_seq(w.lg), head);

    /* A: back to record 5 (the interview booked, not yet attended) */
    PUT(&w, R, "case.rolled_back", w.sam, w.sue, &d);
    expect_prefix(w.lg, R, &before, 6, "rollback A");
    fold_case(w.lg, R, &st);
    ASSERT_EQ(st.status, DK_ST_INTERVIEW_SCHEDULED);
    ASSERT_EQ(st.interview.active, 1);
    ASSERT_EQ(st.decision.has, 0);
    ASSERT_EQ(st.voided, 2);
    ASSERT_EQ(st.version, 9);
    /* the restored interview holds ivan's slot again */
    open_validated(&w, "RB-2", w.carol);
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T10:30:00Z", "2026-11-24T11:30:00Z");
    ASSERT_ERR(try_put(&w, "RB-2", "interview.booked", w.carol, NULL, &d, &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "ivan");

    /* B: back to record 3, by a caseworker co-signed by a senior; voids A too */
    rollback_data(&d, before.r[3].recorded_at);
    PUT(&w, R, "case.rolled_back", w.carol, w.sam, &d);
    expect_prefix(w.lg, R, &before, 4, "rollback B");
    fold_case(w.lg, R, &st);
    ASSERT_EQ(st.status, DK_ST_VALIDATED);
    ASSERT_STR_EQ(st.assignee, "carol");
    ASSERT_EQ(st.interview.active, 0);
    ASSERT_EQ(st.voided, 5); /* records 4..7 and rollback A */
    /* ivan is free again */
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T10:30:00Z", "2026-11-24T11:30:00Z");
    uint64_t rb2_booked = PUT(&w, "RB-2", "interview.booked", w.carol, NULL, &d);
    ASSERT(rb2_booked > 0);

    /* C: forward again to record 5; that needs ivan's slot, now RB-2's */
    rollback_data(&d, before.r[5].recorded_at);
    head = head_seq(w.lg);
    ASSERT_ERR(try_put(&w, R, "case.rolled_back", w.sam, w.sue, &d, &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "ivan");
    ASSERT_EQ(head_seq(w.lg), head);
    expect_prefix(w.lg, R, &before, 4, "after the refused rollback");
    PUT_DEFAULT(&w, "RB-2", "interview.cancelled", w.carol);
    PUT(&w, R, "case.rolled_back", w.sam, w.sue, &d);
    expect_prefix(w.lg, R, &before, 6, "rollback C");
    /* the writer's state is the folded one: the case goes on from there */
    PUT_DEFAULT(&w, R, "interview.attended", w.carol);
    PUT_DEFAULT(&w, R, "decision.recorded", w.carol);
    fold_case(w.lg, R, &st);
    ASSERT_EQ(st.status, DK_ST_DECIDED);
    ASSERT_EQ(st.interview.attended, 1);
    caserecs_free(&before);
    world_close(&w);
}

/* A rollback to the case's last event, or into the future, would void nothing: it is
 * refused, naming the case and the time, and the ledger is left as it was (it was taken
 * and recorded as a rollback that changed nothing). */
/* A new world with case R opened, validated and given a note; its records in *cr. */
static void noted_case(world *w, const char *R, caserecs *cr)
{
    world_open(w, th_tmpdir());
    open_validated(w, R, w->carol);
    PUT_DEFAULT(w, R, "note.added", w->carol);
    read_case(w->lg, R, cr);
    ASSERT_EQ(cr->n, 3);
}

/* A rollback of case R to `to`, by sam and sue, is refused as changing nothing: the
 * message is the rule's, with R and `to`, and nothing is appended. */
static void expect_rollback_changes_nothing(world *w, const char *R, int64_t to)
{
    dmap d;
    dk_append_res res;
    char t[DK_TIME_LEN], want[160];
    dk_time_format(to, t);
    snprintf(want, sizeof want,
             "case.rolled_back voids nothing: no event of case '%s' recorded after %s is in "
             "force",
             R, t);
    uint64_t head = head_seq(w->lg);
    rollback_data(&d, to);
    ASSERT_ERR(try_put(w, R, "case.rolled_back", w->sam, w->sue, &d, &res), DK_ETRANSITION);
    ASSERT_STR_EQ(res.errmsg, want);
    ASSERT_EQ(head_seq(w->lg), head);
}

TEST(a_rollback_that_voids_nothing_is_refused)
{
    world w;
    dmap d;
    const char *R = "RB-5";
    caserecs before;
    noted_case(&w, R, &before);
    expect_rollback_changes_nothing(&w, R, before.r[2].recorded_at); /* its last event */
    expect_rollback_changes_nothing(&w, R, before.r[2].recorded_at + 3600000000LL * 24);
    /* a microsecond earlier, the note is voided */
    rollback_data(&d, before.r[2].recorded_at - 1);
    PUT(&w, R, "case.rolled_back", w.sam, w.sue, &d);
    expect_prefix(w.lg, R, &before, 2, "rollback of the note");
    /* the same rollback again would void the first and the note, which it voided: nothing
     * in force would change (helper-60) */
    expect_rollback_changes_nothing(&w, R, before.r[2].recorded_at - 1);
    caserecs_free(&before);
    world_close(&w);
}

/* A rollback that voids only what a revert voided, with that revert, changes nothing in
 * force either; one that voids a revert alone brings its target back, and is taken. */
TEST(a_rollback_over_a_revert_must_change_what_is_in_force)
{
    world w;
    dmap d;
    const char *R = "RB-6";
    caserecs before;
    noted_case(&w, R, &before);
    revert_data(&d, w.lg, before.r[2].seq); /* the note undone */
    PUT(&w, R, "event.reverted", w.sam, NULL, &d);
    caserecs after;
    read_case(w.lg, R, &after);
    ASSERT_EQ(after.n, 4);
    expect_rollback_changes_nothing(&w, R, before.r[2].recorded_at - 1); /* the note, its undo */
    rollback_data(&d, after.r[3].recorded_at - 1); /* the undo alone: the note is back */
    PUT(&w, R, "case.rolled_back", w.sam, w.sue, &d);
    expect_prefix(w.lg, R, &before, 3, "the undo rolled back");
    caserecs_free(&after);
    caserecs_free(&before);
    world_close(&w);
}

/* An error report on case R, and a status correction of it from `from` to `to`, signed by
 * sue: the code, with the message in res. */
static int correct_status(world *w, const char *R, const char *from, const char *to,
                          dk_append_res *res)
{
    dmap d;
    uint64_t rep = PUT_DEFAULT(w, R, "error.reported", w->carol);
    fill_valid(&d, "status.corrected");
    d_u64(&d, "error_ref", rep);
    d_str(&d, "from", from);
    d_str(&d, "to", to);
    return try_put(w, R, "status.corrected", w->sue, NULL, &d, res);
}

/* The correction of R from `from` to `to` is refused by the append rule, naming both, and
 * nothing is appended but its error report. */
static void expect_uncorrectable(world *w, const char *R, const char *from, const char *to)
{
    dk_append_res res;
    char want[160];
    snprintf(want, sizeof want, "status.corrected cannot move case '%s' from '%s' to '%s'", R, from,
             to);
    uint64_t head = head_seq(w->lg);
    ASSERT_ERR(correct_status(w, R, from, to, &res), DK_ETRANSITION);
    ASSERT_CONTAINS(res.errmsg, want);
    ASSERT_EQ(head_seq(w->lg), head + 1); /* the report alone */
}

/* A status correction, which one senior signs, neither sets nor leaves decided, appealed,
 * closed or leave_cancelled. It did, and helper-62 showed one senior could then undo a
 * cancellation of leave without four eyes (cancelled, closed, corrected to appealed, the
 * appeal dismissed: decided, with the grant back in force), or make a case decided with
 * no decision (received, corrected to appealed, appeal decided). */
TEST(status_corrections_keep_out_of_decisions_and_appeals)
{
    world w;
    dmap d;
    dk_append_res res;
    world_open(&w, th_tmpdir());
    const char *R = "SC-1";
    open_validated(&w, R, w.carol);
    to_status(&d, "under_consideration");
    PUT(&w, R, "case.status_changed", w.carol, NULL, &d);
    PUT_DEFAULT(&w, R, "decision.recorded", w.sam);
    expect_uncorrectable(&w, R, "decided", "under_consideration");
    PUT_DEFAULT(&w, R, "leave.cancelled", w.sue);
    expect_uncorrectable(&w, R, "leave_cancelled", "decided");
    PUT_DEFAULT(&w, R, "case.closed", w.sue);
    expect_uncorrectable(&w, R, "closed", "appealed");
    dk_case_state st;
    fold_case(w.lg, R, &st);
    ASSERT_EQ(st.status, DK_ST_CLOSED);

    const char *N = "SC-2"; /* received */
    PUT_DEFAULT(&w, N, "case.opened", w.carol);
    expect_uncorrectable(&w, N, "received", "appealed");
    expect_uncorrectable(&w, N, "received", "decided");
    expect_uncorrectable(&w, N, "received", "closed");
    /* nor interview_scheduled, which a booking sets (helper-68: a correction into it made a
     * case with no booking, whose interview was then recorded attended) */
    expect_uncorrectable(&w, N, "received", "interview_scheduled");
    /* among the statuses before a decision, and to withdrawn, a correction is taken */
    ASSERT_OK(correct_status(&w, N, "received", "under_consideration", &res));
    ASSERT_OK(correct_status(&w, N, "under_consideration", "withdrawn", &res));
    fold_case(w.lg, N, &st);
    ASSERT_EQ(st.status, DK_ST_WITHDRAWN);
    ASSERT_EQ(st.open_errors, 4); /* the refused corrections left their reports open */
    world_close(&w);
}

/* appeal.decided needs an appeal lodged. Only a case a status correction made 'appealed'
 * lacks one, so a ledger written before that rule is the one place it can be seen: the
 * fold still takes such a correction (so that ledger verifies); the writer's rule does not
 * take the appeal's decision after it. */
TEST(an_appeal_is_decided_only_once_lodged)
{
    dk_case_state st, after;
    dmap d;
    state_for(&st, DK_ST_RECEIVED, "status.corrected");
    st.decision.has = 0;
    fill_valid(&d, "status.corrected");
    d_str(&d, "to", "appealed");
    ASSERT_OK(apply_pure(&st, 10, "status.corrected", &d));
    ASSERT_EQ(st.status, DK_ST_APPEALED);
    tev e;
    fill_valid(&d, "appeal.decided");
    tev_make(&e, "appeal.decided", "HO-7", "sue", &d, NULL);
    after = st;
    ASSERT_OK(dk_case_apply(&after, 11, &e.ev));
    ASSERT_EQ(after.status, DK_ST_DECIDED); /* what the fold alone would make of it */
    ASSERT_ERR(dk__case_check_new(&st, &e.ev), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(), "appeal.decided: case 'HO-7' has no appeal lodged");
    /* lodged on a decision, it is decided */
    state_for(&st, DK_ST_DECIDED, "appeal.lodged");
    fill_valid(&d, "appeal.lodged");
    ASSERT_OK(apply_pure(&st, 12, "appeal.lodged", &d));
    ASSERT_OK(dk__case_check_new(&st, &e.ev));
    tev_free(&e);
}

/* A case's records made from events of `type` and data `d[i]` (seq 1.., an hour apart). */
typedef struct legacy {
    tev e[12];
    dk_record r[12];
    size_t n;
} legacy;

static void legacy_add(legacy *l, const char *type, const dmap *d)
{
    ASSERT(l->n < 12);
    tev_make(&l->e[l->n], type, "LG-1", "sue", d, NULL);
    memset(&l->r[l->n], 0, sizeof l->r[l->n]);
    l->r[l->n].seq = l->n + 1;
    l->r[l->n].recorded_at = 1795514400000000 + (int64_t)l->n * 3600000000LL;
    l->r[l->n].body = l->e[l->n].body;
    l->r[l->n].body_len = l->e[l->n].len;
    l->n++;
}

static void legacy_add_default(legacy *l, const char *type)
{
    dmap d;
    fill_valid(&d, type);
    legacy_add(l, type, &d);
}

/* Does the last of l's records, an undo, pass dk__undo_allowed_given? The fold must take it. */
static int legacy_undo(const legacy *l)
{
    dk_case_state st;
    dk_void *vb = NULL, *va = NULL;
    size_t nb = 0, na = 0;
    ASSERT_OK(dk_case_fold(l->r, l->n - 1, &st, &vb, &nb, NULL));
    ASSERT_OK(dk_case_fold(l->r, l->n, &st, &va, &na, NULL));
    int rc = dk__undo_allowed_given(&l->e[l->n - 1].ev, l->r, l->n, vb, nb, va, na);
    free(vb);
    free(va);
    return rc;
}

/* A status correction that crossed into or out of decided, appealed, closed or
 * leave_cancelled could be written before that rule. The first undo of it is taken; an
 * undo that brings it back (a revert of that undo, or a rollback over it) would apply it
 * again with one signature, and is refused naming it (helper-63: a leave cancellation
 * corrected away, undone, then redone by one senior, and a new grant recorded). */
TEST(an_undo_does_not_bring_back_a_correction_the_rule_refuses)
{
    legacy l = {.n = 0};
    dmap d;
    legacy_add_default(&l, "case.opened");                                   /* 1 */
    legacy_add(&l, "case.status_changed", (to_status(&d, "validated"), &d)); /* 2 */
    legacy_add(&l, "case.status_changed", (to_status(&d, "under_consideration"), &d));
    legacy_add_default(&l, "decision.recorded"); /* 4, a grant */
    legacy_add_default(&l, "leave.cancelled");   /* 5 */
    legacy_add_default(&l, "error.reported");    /* 6 */
    fill_valid(&d, "status.corrected");          /* 7: cancelled leave corrected away */
    d_u64(&d, "error_ref", 6);
    d_str(&d, "from", "leave_cancelled");
    d_str(&d, "to", "under_consideration");
    legacy_add(&l, "status.corrected", &d);
    dk_case_state st;
    ASSERT_OK(dk_case_fold(l.r, l.n, &st, NULL, NULL, NULL)); /* the fold takes it */
    ASSERT_EQ(st.status, DK_ST_UNDER_CONSIDERATION);
    ASSERT_ERR(dk__case_check_new(&st, &l.e[6].ev), DK_ETRANSITION); /* not appended now */
    fill_valid(&d, "event.reverted");                                /* 8: the correction undone */
    d_u64(&d, "target_seq", 7);
    legacy_add(&l, "event.reverted", &d);
    ASSERT_OK(legacy_undo(&l));
    fill_valid(&d, "event.reverted"); /* 9: that undo undone, the correction back */
    d_u64(&d, "target_seq", 8);
    legacy_add(&l, "event.reverted", &d);
    ASSERT_ERR(legacy_undo(&l), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(),
                    "event.reverted would bring back status.corrected seq 7 of case 'LG-1' "
                    "(from 'leave_cancelled' to 'under_consideration')");
    l.n--; /* instead, a rollback to before the undo: the correction is back too */
    tev_free(&l.e[l.n]);
    rollback_data(&d, l.r[7].recorded_at - 1);
    legacy_add(&l, "case.rolled_back", &d);
    ASSERT_ERR(legacy_undo(&l), DK_ETRANSITION);
    ASSERT_CONTAINS(dk_errmsg(), "case.rolled_back would bring back status.corrected seq 7");
    l.n--; /* one to before the cancellation voids it, the correction and the undo: taken */
    tev_free(&l.e[l.n]);
    rollback_data(&d, l.r[4].recorded_at - 1);
    legacy_add(&l, "case.rolled_back", &d);
    ASSERT_OK(legacy_undo(&l));
    for (size_t i = 0; i < l.n; i++)
        tev_free(&l.e[i]);
}

/* A rollback to before the case was opened voids the whole case. Either the
 * ledger refuses it, or the rollback can itself be undone by a revert. */
TEST(rollback_to_before_opening_can_be_undone)
{
    world w;
    dmap d;
    dk_append_res res;
    const char *R = "RB-9";
    caserecs cr;
    noted_case(&w, R, &cr);
    dk_case_state before;
    fold_n(&cr, cr.n, &before);
    rollback_data(&d, cr.r[0].recorded_at - 1);
    int rc = try_put(&w, R, "case.rolled_back", w.sam, w.sue, &d, &res);
    if (rc != 0) {
        ASSERT_EQ(rc, DK_ETRANSITION);
    } else {
        dk_case_state st;
        fold_case(w.lg, R, &st);
        ASSERT_EQ(st.status, DK_ST_NONE);
        revert_data(&d, w.lg, res.seq);
        rc = try_put(&w, R, "event.reverted", w.sam, w.sue, &d, &res);
        if (rc != 0)
            TH_FAIL("the rollback that voided all of %s cannot be reverted: %s: %s", R,
                    dk_err_name(rc), res.errmsg);
        fold_case(w.lg, R, &st);
        same_content("rollback reverted", &st, &before);
    }
    caserecs_free(&cr);
    world_close(&w);
}

/* ======================================================================
 * 6. Reverts that would break later events
 * ====================================================================== */

TEST(revert_refused_when_later_events_depend_on_it)
{
    world w;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    dmap d;
    dk_append_res res;
    const char *C = "DEP-1";
    uint64_t opened = PUT_DEFAULT(&w, C, "case.opened", w.carol);
    to_status(&d, "validated");
    uint64_t validated = PUT(&w, C, "case.status_changed", w.carol, NULL, &d);
    uint64_t booked = PUT_DEFAULT(&w, C, "interview.booked", w.carol);
    uint64_t note = PUT_DEFAULT(&w, C, "note.added", w.carol);
    dk_head h0;
    uint64_t v0;
    ASSERT_OK(dk_ledger_head(w.lg, &h0));
    ASSERT_OK(dk_ledger_case_version(w.lg, C, &v0));

    /* the booking needed 'validated' */
    char want[64];
    revert_data(&d, w.lg, validated);
    ASSERT_ERR(try_put(&w, C, "event.reverted", w.carol, NULL, &d, &res), DK_ETRANSITION);
    snprintf(want, sizeof want, "seq %llu", (unsigned long long)booked);
    ASSERT_CONTAINS(res.errmsg, want);
    /* everything needed the case to be opened */
    revert_data(&d, w.lg, opened);
    ASSERT_ERR(try_put(&w, C, "event.reverted", w.sam, NULL, &d, &res), DK_ETRANSITION);
    snprintf(want, sizeof want, "seq %llu", (unsigned long long)validated);
    ASSERT_CONTAINS(res.errmsg, want);
    dk_head h1;
    uint64_t v1;
    ASSERT_OK(dk_ledger_head(w.lg, &h1));
    ASSERT_OK(dk_ledger_case_version(w.lg, C, &v1));
    ASSERT_EQ(h1.seq, h0.seq);
    ASSERT_MEM_EQ(h1.hash, h0.hash, DK_HASH_BYTES);
    ASSERT_EQ(v1, v0);

    /* a bad target: wrong hash, another case's record, no such record */
    revert_data(&d, w.lg, note);
    d_str(&d, "target_hash", HEX_A);
    ASSERT_ERR(try_put(&w, C, "event.reverted", w.carol, NULL, &d, &res), DK_EINVAL);
    ASSERT_CONTAINS(res.errmsg, "target_hash");
    PUT_DEFAULT(&w, "DEP-2", "case.opened", w.carol);
    uint64_t other = PUT_DEFAULT(&w, "DEP-2", "note.added", w.carol);
    revert_data(&d, w.lg, other);
    ASSERT_ERR(try_put(&w, C, "event.reverted", w.carol, NULL, &d, &res), DK_EINVAL);
    ASSERT_CONTAINS(res.errmsg, C);
    revert_data(&d, w.lg, note);
    d_u64(&d, "target_seq", h0.seq + 1000);
    ASSERT_ERR(try_put(&w, C, "event.reverted", w.carol, NULL, &d, &res), DK_ENOTFOUND);
    /* a system record is no case's event */
    revert_data(&d, w.lg, 2);
    ASSERT_ERR(try_put(&w, C, "event.reverted", w.carol, NULL, &d, &res), DK_EINVAL);

    /* control: the note can go, and the case is otherwise as it was */
    dk_case_state st0, st1;
    fold_case(w.lg, C, &st0);
    revert_data(&d, w.lg, note);
    PUT(&w, C, "event.reverted", w.carol, NULL, &d);
    fold_case(w.lg, C, &st1);
    same_content("after reverting a note", &st1, &st0);
    ASSERT_EQ(st1.voided, 1);
    /* and once the booking is cancelled, 'validated' can't go either: the
     * cancellation still needs the interview, which needs 'validated' */
    PUT_DEFAULT(&w, C, "interview.cancelled", w.carol);
    revert_data(&d, w.lg, validated);
    ASSERT_ERR(try_put(&w, C, "event.reverted", w.carol, NULL, &d, &res), DK_ETRANSITION);
    snprintf(want, sizeof want, "seq %llu", (unsigned long long)booked);
    ASSERT_CONTAINS(res.errmsg, want);
    world_close(&w);
}

/* ======================================================================
 * 7. Interviewer double-booking under concurrency
 * ====================================================================== */

enum { BOOKERS = 8 };

typedef struct booker {
    dk_ledger *lg;
    pthread_barrier_t *go;
    dk_append_req req;
    dk_append_res res;
    int rc;
} booker;

static void *book(void *arg)
{
    booker *b = arg;
    pthread_barrier_wait(b->go);
    b->rc = dk_ledger_append(b->lg, &b->req, &b->res);
    return NULL;
}

/* Book `interviewer` on cases prefix-0..7 at once, slot i from starts[i] to
 * ends[i]; the codes in rc[]. */
static void book_at_once(world *w, const char *prefix, const char *interviewer,
                         const char *const *starts, const char *const *ends, int *rc,
                         char errs[BOOKERS][DK_ERRMSG_MAX])
{
    tev e[BOOKERS];
    dk_sig sig[BOOKERS];
    booker b[BOOKERS];
    pthread_t th[BOOKERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, BOOKERS);
    for (int i = 0; i < BOOKERS; i++) {
        char case_id[32];
        dmap d;
        const dk_key *k = i % 2 ? w->carol : w->sam;
        snprintf(case_id, sizeof case_id, "%s-%d", prefix, i);
        slot_data(&d, "interview.booked", interviewer, starts[i], ends[i]);
        tev_make(&e[i], "interview.booked", case_id, dk_key_id(k), &d, NULL);
        memset(&sig[i], 0, sizeof sig[i]);
        snprintf(sig[i].actor, sizeof sig[i].actor, "%s", dk_key_id(k));
        ASSERT_OK(dk_sign(k, e[i].body, e[i].len, sig[i].sig));
        memset(&b[i], 0, sizeof b[i]);
        b[i].lg = w->lg;
        b[i].go = &go;
        b[i].req = (dk_append_req){e[i].body, e[i].len, &sig[i], 1};
    }
    for (int i = 0; i < BOOKERS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, book, &b[i]), 0);
    for (int i = 0; i < BOOKERS; i++) {
        pthread_join(th[i], NULL);
        rc[i] = b[i].rc;
        snprintf(errs[i], DK_ERRMSG_MAX, "%s", b[i].res.errmsg);
        tev_free(&e[i]);
    }
    pthread_barrier_destroy(&go);
}

TEST(concurrent_double_booking)
{
    world w;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    dmap d;
    dk_append_res res;
    char case_id[32];
    for (int i = 0; i < BOOKERS; i++) {
        snprintf(case_id, sizeof case_id, "DB-%d", i);
        open_validated(&w, case_id, w.carol);
        snprintf(case_id, sizeof case_id, "NB-%d", i);
        open_validated(&w, case_id, w.sam);
    }
    /* overlapping: every slot holds 10:30-10:31 */
    static const char *const starts[BOOKERS] = {"2026-11-24T10:00:00Z", "2026-11-24T10:05:00Z",
                                                "2026-11-24T10:10:00Z", "2026-11-24T10:15:00Z",
                                                "2026-11-24T10:20:00Z", "2026-11-24T10:25:00Z",
                                                "2026-11-24T10:29:00Z", "2026-11-24T09:00:00Z"};
    static const char *const ends[BOOKERS] = {"2026-11-24T11:00:00Z", "2026-11-24T11:05:00Z",
                                              "2026-11-24T11:10:00Z", "2026-11-24T11:15:00Z",
                                              "2026-11-24T11:20:00Z", "2026-11-24T11:25:00Z",
                                              "2026-11-24T12:00:00Z", "2026-11-24T10:31:00Z"};
    int rc[BOOKERS];
    char errs[BOOKERS][DK_ERRMSG_MAX];
    uint64_t head = head_seq(w.lg);
    book_at_once(&w, "DB", "ivan", starts, ends, rc, errs);
    int winner = -1, won = 0;
    for (int i = 0; i < BOOKERS; i++) {
        if (rc[i] == 0) {
            winner = i;
            won++;
        } else if (rc[i] != DK_ECONFLICT) {
            TH_FAIL("booker %d: %s (%s), wanted DK_ECONFLICT", i, dk_err_name(rc[i]), errs[i]);
        } else {
            ASSERT_CONTAINS(errs[i], "ivan");
        }
    }
    ASSERT_EQ(won, 1);
    ASSERT_EQ(head_seq(w.lg), head + 1);
    char wcase[32];
    snprintf(wcase, sizeof wcase, "DB-%d", winner);
    for (int i = 0; i < BOOKERS; i++) {
        dk_case_state st;
        snprintf(case_id, sizeof case_id, "DB-%d", i);
        fold_case(w.lg, case_id, &st);
        ASSERT_EQ(st.status, i == winner ? DK_ST_INTERVIEW_SCHEDULED : DK_ST_VALIDATED);
        ASSERT_EQ(st.interview.active, i == winner);
    }

    /* back-to-back slots [9+i h, 10+i h) for one interviewer all fit */
    static const char *const hs[BOOKERS + 1] = {
        "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z",
        "2026-11-25T12:00:00Z", "2026-11-25T13:00:00Z", "2026-11-25T14:00:00Z",
        "2026-11-25T15:00:00Z", "2026-11-25T16:00:00Z", "2026-11-25T17:00:00Z"};
    book_at_once(&w, "NB", "iris", hs, hs + 1, rc, errs);
    for (int i = 0; i < BOOKERS; i++)
        if (rc[i] != 0)
            TH_FAIL("iris slot %d: %s (%s)", i, dk_err_name(rc[i]), errs[i]);
    /* and a ninth one in the middle does not */
    PUT_DEFAULT(&w, "NB-X", "case.opened", w.sam);
    to_status(&d, "validated");
    PUT(&w, "NB-X", "case.status_changed", w.sam, NULL, &d);
    slot_data(&d, "interview.booked", "iris", "2026-11-25T12:59:59Z", "2026-11-25T13:00:01Z");
    ASSERT_ERR(try_put(&w, "NB-X", "interview.booked", w.sam, NULL, &d, &res), DK_ECONFLICT);
    /* other interviewers are not affected */
    slot_data(&d, "interview.booked", "ivo", "2026-11-25T12:00:00Z", "2026-11-25T14:00:00Z");
    PUT(&w, "NB-X", "interview.booked", w.sam, NULL, &d);

    /* rescheduling moves the hold; cancelling frees it */
    int l1 = (winner + 1) % BOOKERS, l2 = (winner + 2) % BOOKERS;
    char c1[32], c2[32];
    snprintf(c1, sizeof c1, "DB-%d", l1);
    snprintf(c2, sizeof c2, "DB-%d", l2);
    slot_data(&d, "interview.booked", "ivan", starts[winner], ends[winner]);
    ASSERT_ERR(try_put(&w, c1, "interview.booked", w.carol, NULL, &d, &res), DK_ECONFLICT);
    slot_data(&d, "interview.rescheduled", "ivan", "2026-11-24T14:00:00Z", "2026-11-24T15:00:00Z");
    PUT(&w, wcase, "interview.rescheduled", w.carol, NULL, &d);
    slot_data(&d, "interview.booked", "ivan", starts[winner], ends[winner]);
    PUT(&w, c1, "interview.booked", w.carol, NULL, &d);
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T14:30:00Z", "2026-11-24T15:30:00Z");
    ASSERT_ERR(try_put(&w, c2, "interview.booked", w.carol, NULL, &d, &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, wcase);
    PUT_DEFAULT(&w, wcase, "interview.cancelled", w.carol);
    PUT(&w, c2, "interview.booked", w.carol, NULL, &d);
    /* and a cancelled slot can be taken back by the case that gave it up */
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T14:00:00Z", "2026-11-24T15:00:00Z");
    ASSERT_ERR(try_put(&w, wcase, "interview.booked", w.carol, NULL, &d, &res), DK_ECONFLICT);
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T15:30:00Z", "2026-11-24T16:00:00Z");
    PUT(&w, wcase, "interview.booked", w.carol, NULL, &d);
    world_close(&w);
}

/* A move that is refused for a clash must leave the case holding the slot it
 * had: the refusal may not release it to others. */
/* The writer's double-booking search at its edges: slots that only touch are free, the
 * booking just before or just after the asked slot is found, a case's own slot is given
 * up by its move, and another interviewer's bookings do not count. */
static int try_slot(world *w, const char *case_id, const char *type, const char *who,
                    const char *from, const char *to, dk_append_res *res)
{
    dmap d;
    slot_data(&d, type, who, from, to);
    return try_put(w, case_id, type, w->carol, NULL, &d, res);
}

/* A leave cancellation is taken while an appeal is open, and the case is then
 * leave_cancelled, where no appeal event was taken: the appeal stayed open for good, its
 * outcome never recorded, "appeal=open" on a closed case (helper-78's search of the
 * lifecycle). It is decided there now, and the case keeps its status. */
TEST(an_appeal_open_when_leave_is_cancelled_is_still_decided)
{
    world w;
    dmap d;
    dk_append_res res;
    dk_case_state st;
    world_open(&w, th_tmpdir());
    const char *cases[] = {"AP-1", "AP-2"};
    for (int i = 0; i < 2; i++) {
        const char *R = cases[i];
        open_validated(&w, R, w.carol);
        to_status(&d, "under_consideration");
        PUT(&w, R, "case.status_changed", w.carol, NULL, &d);
        PUT_DEFAULT(&w, R, "decision.recorded", w.sam);
        PUT_DEFAULT(&w, R, "appeal.lodged", w.carol);
        PUT_DEFAULT(&w, R, "leave.cancelled", w.sue);
        if (i == 1) /* and closed */
            PUT_DEFAULT(&w, R, "case.closed", w.carol);
        fold_case(w.lg, R, &st);
        ASSERT_EQ(st.status, i ? DK_ST_CLOSED : DK_ST_LEAVE_CANCELLED);
        ASSERT_EQ(st.appeal_open, 1);
        fill_valid(&d, "appeal.decided");
        d_str(&d, "outcome", i ? "allowed" : "dismissed");
        PUT(&w, R, "appeal.decided", w.sam, NULL, &d);
        fold_case(w.lg, R, &st);
        ASSERT_EQ(st.status, i ? DK_ST_CLOSED : DK_ST_LEAVE_CANCELLED);
        ASSERT_EQ(st.appeal_open, 0);
        ASSERT_STR_EQ(st.appeal_outcome, i ? "allowed" : "dismissed");
        ASSERT_EQ(st.leave.grant_seq, 0);
        /* once: no appeal is open now */
        uint64_t head = head_seq(w.lg);
        ASSERT_ERR(try_put(&w, R, "appeal.decided", w.sam, NULL, &d, &res), DK_ETRANSITION);
        ASSERT_CONTAINS(res.errmsg, i ? "is 'closed' and has no appeal lodged"
                                      : "is 'leave_cancelled' and has no appeal lodged");
        ASSERT_EQ(head_seq(w.lg), head);
    }
    /* a closed case that never had an appeal takes none decided */
    const char *N = "AP-3";
    open_validated(&w, N, w.carol);
    PUT_DEFAULT(&w, N, "case.withdrawn", w.carol);
    PUT_DEFAULT(&w, N, "case.closed", w.carol);
    fill_valid(&d, "appeal.decided");
    ASSERT_ERR(try_put(&w, N, "appeal.decided", w.sam, NULL, &d, &res), DK_ETRANSITION);
    ASSERT_CONTAINS(res.errmsg, "is 'closed' and has no appeal lodged");
    world_close(&w);
}

/* A withdrawal keeps a booked interview until it is cancelled. A status correction out of
 * withdrawn with the slot still booked left it held in a status where no interview event
 * is taken: the case could be decided with it, and its leave never cancelled (helper-77).
 * The correction waits for the cancellation, and an undo of that cancellation which
 * would leave the correction in force is refused. */
TEST(a_status_correction_waits_for_a_booked_interview)
{
    world w;
    dmap d;
    dk_append_res res;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    const char *R = "WB-1";
    open_validated(&w, R, w.carol);
    ASSERT_OK(try_slot(&w, R, "interview.booked", "ivan", "2099-12-02T10:00:00Z",
                       "2099-12-02T12:00:00Z", &res));
    PUT_DEFAULT(&w, R, "case.withdrawn", w.carol);
    uint64_t head = head_seq(w.lg);
    ASSERT_ERR(correct_status(&w, R, "withdrawn", "under_consideration", &res), DK_ETRANSITION);
    ASSERT_CONTAINS(res.errmsg, "status.corrected: case 'WB-1' has an interview booked with "
                                "'ivan'; cancel it first (interview.cancelled)");
    ASSERT_EQ(head_seq(w.lg), head + 1); /* the error report alone */
    uint64_t cancel = PUT_DEFAULT(&w, R, "interview.cancelled", w.carol);
    ASSERT_OK(correct_status(&w, R, "withdrawn", "under_consideration", &res));
    uint64_t corrected = res.seq;
    dk_case_state st;
    fold_case(w.lg, R, &st);
    ASSERT_EQ(st.status, DK_ST_UNDER_CONSIDERATION);
    ASSERT_EQ(st.interview.active, 0);
    /* the cancellation is not undone from under the correction */
    head = head_seq(w.lg);
    revert_data(&d, w.lg, cancel);
    ASSERT_ERR(try_put(&w, R, "event.reverted", w.carol, NULL, &d, &res), DK_ETRANSITION);
    char want[160];
    snprintf(want, sizeof want,
             "event.reverted would leave status.corrected seq %llu in force against the case's "
             "rules: status.corrected: case 'WB-1' has an interview booked",
             (unsigned long long)corrected);
    ASSERT_CONTAINS(res.errmsg, want);
    ASSERT_EQ(head_seq(w.lg), head);
    /* other fields are corrected with the slot booked */
    const char *F = "WB-2";
    open_validated(&w, F, w.carol);
    ASSERT_OK(try_slot(&w, F, "interview.booked", "ivan", "2099-12-03T10:00:00Z",
                       "2099-12-03T12:00:00Z", &res));
    uint64_t rep = PUT_DEFAULT(&w, F, "error.reported", w.carol);
    fill_valid(&d, "status.corrected");
    d_u64(&d, "error_ref", rep);
    d_str(&d, "field", "applicant_name");
    fold_case(w.lg, F, &st);
    d_str(&d, "from", st.applicant_name);
    d_str(&d, "to", "A. N. Other");
    ASSERT_OK(try_put(&w, F, "status.corrected", w.sue, NULL, &d, &res));
    world_close(&w);
}

/* A decision that lists a condition more than once is refused at append, naming it (the
 * fold lists each once, but a reader copying the list as given lost those after the
 * repeats: helper-65); each listed once, it is taken. */
TEST(a_decision_lists_each_condition_once)
{
    world w;
    dmap d;
    dk_append_res res;
    world_open(&w, th_tmpdir());
    open_validated(&w, "DC-1", w.carol);
    to_status(&d, "under_consideration");
    PUT(&w, "DC-1", "case.status_changed", w.carol, NULL, &d);
    uint64_t head = head_seq(w.lg);
    fill_valid(&d, "decision.recorded");
    d_list(&d, "conditions", "study_restriction,no_permission_to_work,study_restriction");
    d_bool(&d, "no_recourse_to_public_funds", 0);
    ASSERT_ERR(try_put(&w, "DC-1", "decision.recorded", w.sam, NULL, &d, &res), DK_ESCHEMA);
    ASSERT_STR_EQ(res.errmsg,
                  "decision.recorded: data.conditions lists 'study_restriction' more than once");
    ASSERT_EQ(head_seq(w.lg), head);
    d_list(&d, "conditions", "study_restriction,no_permission_to_work");
    PUT(&w, "DC-1", "decision.recorded", w.sam, NULL, &d);
    world_close(&w);
}

/* Interviews are held by enrolled, unrevoked caseworkers or seniors, as the actor stands
 * at the booking: another name (a misspelt one escaped the double-booking check), an
 * administrator, or one revoked since is refused, and a move that keeps a revoked
 * interviewer says so. Nothing refused is appended. */
TEST(an_interview_is_held_by_an_enrolled_caseworker)
{
    world w;
    dmap d;
    dk_append_res res;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    open_validated(&w, "IV-1", w.carol);
    open_validated(&w, "IV-2", w.carol);
    uint64_t head = head_seq(w.lg);
    static const struct {
        const char *who, *says;
    } refused[] = {
        {"ivna", "'ivna' is not an enrolled actor: an interview is held by an enrolled caseworker"},
        {"admin", "'admin' is not a caseworker: an interview is held by one"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ASSERT_ERR(try_slot(&w, "IV-1", "interview.booked", refused[i].who, "2026-11-24T09:00:00Z",
                            "2026-11-24T10:00:00Z", &res),
                   DK_EDENIED);
        ASSERT_STR_EQ(res.errmsg, refused[i].says);
    }
    ASSERT_EQ(head_seq(w.lg), head);
    /* a senior caseworker may hold one */
    ASSERT_OK(try_slot(&w, "IV-2", "interview.booked", "sue", "2026-11-24T09:00:00Z",
                       "2026-11-24T10:00:00Z", &res));
    ASSERT_OK(try_slot(&w, "IV-1", "interview.booked", "ivan", "2026-11-24T09:00:00Z",
                       "2026-11-24T10:00:00Z", &res));
    ASSERT_OK(
        fx_actor_event(w.lg, w.admin, "actor.revoked", "ivan", NULL, NULL, ACTOR_N(30), &res));
    head = head_seq(w.lg);
    fill_valid(&d, "interview.rescheduled"); /* names no interviewer: keeps ivan */
    ASSERT_ERR(try_put(&w, "IV-1", "interview.rescheduled", w.carol, NULL, &d, &res), DK_EDENIED);
    ASSERT_STR_EQ(res.errmsg, "interview.rescheduled keeps the booking's interviewer, and 'ivan' "
                              "is revoked: an interview is held by an enrolled caseworker; name "
                              "another in data.interviewer");
    ASSERT_ERR(try_slot(&w, "IV-2", "interview.rescheduled", "ivan", "2026-11-25T09:00:00Z",
                        "2026-11-25T10:00:00Z", &res),
               DK_EDENIED);
    ASSERT_STR_EQ(res.errmsg, "'ivan' is revoked: an interview is held by an enrolled caseworker");
    ASSERT_EQ(head_seq(w.lg), head);
    /* the booking moves to another interviewer, and what ends it needs none */
    ASSERT_OK(try_slot(&w, "IV-1", "interview.rescheduled", "iris", "2026-11-25T09:00:00Z",
                       "2026-11-25T10:00:00Z", &res));
    dk_case_state st;
    fold_case(w.lg, "IV-1", &st);
    ASSERT_STR_EQ(st.interview.interviewer, "iris");
    PUT_DEFAULT(&w, "IV-1", "interview.attended", w.carol);
    world_close(&w);
}

/* An interview's outcome is recorded once the interview has begun (helper-70: a no-show
 * was taken four days before its slot); an effective time does not move it earlier. */
TEST(an_interviews_outcome_waits_for_the_interview)
{
    world w;
    dmap d;
    dk_append_res res;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    open_validated(&w, "IO-1", w.carol);
    ASSERT_OK(try_slot(&w, "IO-1", "interview.booked", "ivan", "2099-11-24T09:00:00Z",
                       "2099-11-24T10:00:00Z", &res));
    uint64_t head = head_seq(w.lg);
    fill_valid(&d, "interview.no_show");
    ASSERT_ERR(try_put(&w, "IO-1", "interview.no_show", w.carol, NULL, &d, &res), DK_ETRANSITION);
    ASSERT_CONTAINS(res.errmsg, "before the interview booked with 'ivan' begins at "
                                "2099-11-24T09:00:00.000000Z: an interview's outcome is "
                                "recorded once it has begun");
    fill_valid(&d, "interview.attended");
    ASSERT_ERR(try_put(&w, "IO-1", "interview.attended", w.carol, NULL, &d, &res), DK_ETRANSITION);
    ASSERT_EQ(head_seq(w.lg), head);
    /* moved to a slot that has begun, its outcome is taken */
    ASSERT_OK(try_slot(&w, "IO-1", "interview.rescheduled", "ivan", "2020-01-06T09:00:00Z",
                       "2020-01-06T10:00:00Z", &res));
    PUT_DEFAULT(&w, "IO-1", "interview.attended", w.carol);
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(w.lg, &rep));
    ASSERT(rep.ok);
    ASSERT_EQ(rep.notices, 0);
    world_close(&w);
}

/* An undo is held to what a fresh append is held to, on what it brings back and on the
 * events it leaves in force (helper-68): a booking or an assignment to an actor revoked
 * since, and a leave cancellation it would make follow a booking (which a cancellation
 * waits for), are refused, and nothing refused is appended. */
TEST(an_undo_brings_back_nothing_a_fresh_append_refuses)
{
    world w;
    dmap d;
    dk_append_res res;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    open_validated(&w, "UR-1", w.carol);
    ASSERT_OK(try_slot(&w, "UR-1", "interview.booked", "ivan", "2099-11-24T09:00:00Z",
                       "2099-11-24T10:00:00Z", &res));
    uint64_t cancel = PUT_DEFAULT(&w, "UR-1", "interview.cancelled", w.carol);
    open_validated(&w, "UR-2", w.carol);
    fill_valid(&d, "case.assigned");
    d_str(&d, "caseworker", "iris");
    PUT(&w, "UR-2", "case.assigned", w.sam, NULL, &d);
    d_str(&d, "caseworker", "carol");
    uint64_t reassign = PUT(&w, "UR-2", "case.assigned", w.sam, NULL, &d);
    ASSERT_OK(
        fx_actor_event(w.lg, w.admin, "actor.revoked", "ivan", NULL, NULL, ACTOR_N(30), &res));
    ASSERT_OK(
        fx_actor_event(w.lg, w.admin, "actor.revoked", "iris", NULL, NULL, ACTOR_N(31), &res));
    uint64_t head = head_seq(w.lg);
    revert_data(&d, w.lg, cancel);
    ASSERT_ERR(try_put(&w, "UR-1", "event.reverted", w.carol, NULL, &d, &res), DK_EDENIED);
    ASSERT_STR_EQ(res.errmsg, "event.reverted would bring back an interview booking, and 'ivan' "
                              "is revoked: an interview is held by an enrolled caseworker; book "
                              "the interview anew, with an enrolled interviewer");
    revert_data(&d, w.lg, reassign);
    ASSERT_ERR(try_put(&w, "UR-2", "event.reverted", w.sam, NULL, &d, &res), DK_EDENIED);
    ASSERT_STR_EQ(res.errmsg, "event.reverted would bring back an assignment, and 'iris' is "
                              "revoked: a case is assigned to an enrolled caseworker; assign the "
                              "case anew instead");
    ASSERT_EQ(head_seq(w.lg), head);
    /* a rollback (four eyes, back to a time) may restore her; a senior assigns anew */
    caserecs ur2;
    read_case(w.lg, "UR-2", &ur2);
    rollback_data(&d, ur2.r[ur2.n - 1].recorded_at - 1);
    PUT(&w, "UR-2", "case.rolled_back", w.sam, w.sue, &d);
    dk_case_state st2;
    fold_case(w.lg, "UR-2", &st2);
    ASSERT_STR_EQ(st2.assignee, "iris");
    caserecs_free(&ur2);

    /* a grant, an upgrade appeal allowed, a booking cancelled, then the leave cancelled */
    open_validated(&w, "UR-3", w.carol);
    to_status(&d, "under_consideration");
    PUT(&w, "UR-3", "case.status_changed", w.carol, NULL, &d);
    PUT_DEFAULT(&w, "UR-3", "decision.recorded", w.sam);
    PUT_DEFAULT(&w, "UR-3", "appeal.lodged", w.carol);
    fill_valid(&d, "appeal.decided");
    d_str(&d, "outcome", "allowed");
    PUT(&w, "UR-3", "appeal.decided", w.sam, NULL, &d);
    ASSERT_OK(try_slot(&w, "UR-3", "interview.booked", "olga", "2026-11-24T09:00:00Z",
                       "2026-11-24T10:00:00Z", &res));
    uint64_t c3 = PUT_DEFAULT(&w, "UR-3", "interview.cancelled", w.carol);
    uint64_t lc = PUT_DEFAULT(&w, "UR-3", "leave.cancelled", w.sam);
    head = head_seq(w.lg);
    revert_data(&d, w.lg, c3);
    ASSERT_ERR(try_put(&w, "UR-3", "event.reverted", w.carol, NULL, &d, &res), DK_ETRANSITION);
    char want[160];
    snprintf(want, sizeof want,
             "event.reverted would leave leave.cancelled seq %llu in force against the case's "
             "rules: leave.cancelled: case 'UR-3' has an interview booked",
             (unsigned long long)lc);
    ASSERT_CONTAINS(res.errmsg, want);
    ASSERT_EQ(head_seq(w.lg), head);

    /* a past interview's outcome is corrected whoever held it (helper-69: an attendance
     * recorded by mistake could not be undone once its interviewer left) */
    open_validated(&w, "UR-5", w.carol);
    ASSERT_OK(try_slot(&w, "UR-5", "interview.booked", "olga", "2020-01-06T09:00:00Z",
                       "2020-01-06T10:00:00Z", &res));
    uint64_t attended = PUT_DEFAULT(&w, "UR-5", "interview.attended", w.carol);
    ASSERT_OK(
        fx_actor_event(w.lg, w.admin, "actor.revoked", "olga", NULL, NULL, ACTOR_N(32), &res));
    revert_data(&d, w.lg, attended);
    PUT(&w, "UR-5", "event.reverted", w.carol, NULL, &d);
    PUT_DEFAULT(&w, "UR-5", "interview.no_show", w.carol);

    /* a caseworker's decision rests on the case being assigned to her: her assignment is
     * not voided from under it (helper-68); the decision is undone first */
    open_validated(&w, "UR-6", w.carol);
    fill_valid(&d, "case.assigned");
    d_str(&d, "caseworker", "carol");
    uint64_t assign = PUT(&w, "UR-6", "case.assigned", w.sam, NULL, &d);
    to_status(&d, "under_consideration");
    PUT(&w, "UR-6", "case.status_changed", w.carol, NULL, &d);
    uint64_t decided = PUT_DEFAULT(&w, "UR-6", "decision.recorded", w.carol);
    head = head_seq(w.lg);
    revert_data(&d, w.lg, assign);
    ASSERT_ERR(try_put(&w, "UR-6", "event.reverted", w.sam, NULL, &d, &res), DK_ETRANSITION);
    char want6[400];
    snprintf(want6, sizeof want6,
             "event.reverted would leave decision.recorded seq %llu in force against the case's "
             "rules: actor 'carol' (role caseworker) may not append decision.recorded on case "
             "'UR-6': it is assigned to 'nobody', and only a senior caseworker may decide "
             "another's case; undo seq %llu first",
             (unsigned long long)decided, (unsigned long long)decided);
    ASSERT_STR_EQ(res.errmsg, want6);
    ASSERT_EQ(head_seq(w.lg), head);
    revert_data(&d, w.lg, decided);
    PUT(&w, "UR-6", "event.reverted", w.sam, w.sue, &d);
    revert_data(&d, w.lg, assign);
    PUT(&w, "UR-6", "event.reverted", w.sam, NULL, &d);
    dk_case_state st6;
    fold_case(w.lg, "UR-6", &st6);
    ASSERT_STR_EQ(st6.assignee, "");

    /* an undo that brings back a booking with an enrolled interviewer is taken */
    open_validated(&w, "UR-4", w.carol);
    ASSERT_OK(try_slot(&w, "UR-4", "interview.booked", "ivo", "2026-11-25T09:00:00Z",
                       "2026-11-25T10:00:00Z", &res));
    revert_data(&d, w.lg, PUT_DEFAULT(&w, "UR-4", "interview.cancelled", w.carol));
    PUT(&w, "UR-4", "event.reverted", w.carol, NULL, &d);
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(w.lg, &rep));
    ASSERT(rep.ok);
    ASSERT_EQ(rep.notices, 0);
    world_close(&w);
}

/* A damaged entry in the slot index (a value too short to hold an end time): a booking
 * that meets it is refused as damage, naming the index, instead of reading past the
 * value (helper-42: a 7-byte value gave an end time from the bytes after it). */
TEST(a_damaged_slot_entry_is_named_not_read_past)
{
    world w;
    const char *dir = th_tmpdir();
    world_open(&w, dir);
    world_interviewers(&w);
    dk_append_res res;
    open_validated(&w, "SD-1", w.carol);
    open_validated(&w, "SD-2", w.carol);
    ASSERT_OK(try_slot(&w, "SD-1", "interview.booked", "ivan", "2026-11-24T09:00:00Z",
                       "2026-11-24T10:00:00Z", &res));
    dk_ledger_close(w.lg);
    for (size_t cut = 0; cut < 8; cut += 7) { /* nothing, or seven bytes */
        raw_env r;
        MDB_dbi slots = raw_open(&r, dir, "slots");
        MDB_cursor *c;
        MDB_val k, v;
        ASSERT_EQ(mdb_cursor_open(r.txn, slots, &c), 0);
        ASSERT_EQ(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
        uint8_t kb[DK_ACTOR_MAX + 9], vb[8] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
        memcpy(kb, k.mv_data, k.mv_size);
        MDB_val key = {k.mv_size, kb}, val = {cut, vb};
        mdb_cursor_close(c);
        ASSERT_EQ(mdb_put(r.txn, slots, &key, &val, 0), 0);
        raw_commit(&r);
        ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
        uint64_t head = head_seq(w.lg);
        ASSERT_ERR(try_slot(&w, "SD-2", "interview.booked", "ivan", "2026-11-24T09:30:00Z",
                            "2026-11-24T10:30:00Z", &res),
                   DK_ECORRUPT);
        ASSERT_CONTAINS(res.errmsg, "slot index");
        ASSERT_EQ(head_seq(w.lg), head);
        dk_ledger_close(w.lg);
    }
    w.lg = NULL;
    world_close(&w);
}

TEST(double_booking_edges)
{
    world w;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    dk_append_res res;
    const char *ids[] = {"SL-1", "SL-2", "SL-3", "SL-4", "SL-5", "SL-6", "SL-7"};
    for (size_t i = 0; i < 7; i++)
        open_validated(&w, ids[i], w.carol);
    const char *b = "interview.booked", *r = "interview.rescheduled";
#define T(h, m) "2026-11-24T" h ":" m ":00Z"
    /* ivan: 09-10 (SL-1), 10-11 (SL-2), 12-13 (SL-3); olga: 11-12 (SL-4) */
    ASSERT_OK(try_slot(&w, "SL-1", b, "ivan", T("09", "00"), T("10", "00"), &res));
    ASSERT_OK(try_slot(&w, "SL-3", b, "ivan", T("12", "00"), T("13", "00"), &res));
    ASSERT_OK(try_slot(&w, "SL-2", b, "ivan", T("10", "00"), T("11", "00"), &res));
    ASSERT_OK(try_slot(&w, "SL-4", b, "olga", T("11", "00"), T("12", "00"), &res));
    /* overlaps with the booking before, after, inside, around */
    ASSERT_ERR(try_slot(&w, "SL-5", b, "ivan", T("10", "30"), T("11", "30"), &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "'SL-2'");
    ASSERT_ERR(try_slot(&w, "SL-5", b, "ivan", T("11", "30"), T("12", "30"), &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "'SL-3'");
    ASSERT_ERR(try_slot(&w, "SL-5", b, "ivan", T("08", "00"), T("14", "00"), &res), DK_ECONFLICT);
    ASSERT_ERR(try_slot(&w, "SL-5", b, "ivan", T("12", "15"), T("12", "45"), &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "'SL-3'");
    ASSERT_ERR(try_slot(&w, "SL-5", b, "ivan", T("08", "30"), T("09", "30"), &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "'SL-1'");
    /* touching slots are free: 11-12 between SL-2 and SL-3, 08-09 and 13-14 at the ends */
    ASSERT_OK(try_slot(&w, "SL-5", b, "ivan", T("11", "00"), T("12", "00"), &res));
    ASSERT_OK(try_slot(&w, "SL-6", b, "ivan", T("08", "00"), T("09", "00"), &res));
    ASSERT_OK(try_slot(&w, "SL-7", b, "ivan", T("13", "00"), T("14", "00"), &res));
    /* a move within its own slot's time is free; into a neighbour's is not */
    ASSERT_OK(try_slot(&w, "SL-5", r, "ivan", T("11", "15"), T("11", "45"), &res));
    ASSERT_OK(try_slot(&w, "SL-5", r, "ivan", T("11", "00"), T("12", "00"), &res));
    ASSERT_ERR(try_slot(&w, "SL-5", r, "ivan", T("11", "00"), T("12", "15"), &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "'SL-3'");
    ASSERT_ERR(try_slot(&w, "SL-5", r, "ivan", T("10", "45"), T("12", "00"), &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "'SL-2'");
    /* olga's own 11-12 does not block ivan's 11-12 move, and ivan's do not block her */
    ASSERT_OK(try_slot(&w, "SL-4", r, "olga", T("09", "00"), T("13", "00"), &res));
    /* a freed slot is free again */
    PUT_DEFAULT(&w, "SL-2", "interview.cancelled", w.carol);
    ASSERT_OK(try_slot(&w, "SL-5", r, "ivan", T("10", "00"), T("12", "00"), &res));
#undef T
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(w.lg, &rep));
    ASSERT(rep.ok);
    world_close(&w);
}

TEST(refused_reschedule_keeps_the_old_slot)
{
    world w;
    world_open(&w, th_tmpdir());
    world_interviewers(&w);
    dmap d;
    dk_append_res res;
    open_validated(&w, "KS-A", w.carol);
    open_validated(&w, "KS-B", w.carol);
    open_validated(&w, "KS-C", w.carol);
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z");
    PUT(&w, "KS-A", "interview.booked", w.carol, NULL, &d);
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T12:00:00Z", "2026-11-24T13:00:00Z");
    PUT(&w, "KS-B", "interview.booked", w.carol, NULL, &d);
    /* A tries to move onto B's hour: refused, and A keeps 10:00-11:00 */
    slot_data(&d, "interview.rescheduled", "ivan", "2026-11-24T12:30:00Z", "2026-11-24T13:30:00Z");
    ASSERT_ERR(try_put(&w, "KS-A", "interview.rescheduled", w.carol, NULL, &d, &res), DK_ECONFLICT);
    dk_case_state st;
    fold_case(w.lg, "KS-A", &st);
    ASSERT_EQ(st.interview.active, 1);
    int64_t ten;
    ASSERT_OK(dk_time_parse("2026-11-24T10:00:00Z", &ten));
    ASSERT_EQ(st.interview.slot_start, ten);
    /* so C cannot have ivan at 10:15 */
    slot_data(&d, "interview.booked", "ivan", "2026-11-24T10:15:00Z", "2026-11-24T10:45:00Z");
    int rc = try_put(&w, "KS-C", "interview.booked", w.carol, NULL, &d, &res);
    if (rc != DK_ECONFLICT)
        TH_FAIL("ivan is double-booked at 10:15: KS-A holds 10:00-11:00, yet KS-C's booking got "
                "%s (%s)",
                dk_err_name(rc), res.errmsg);
    world_close(&w);
}

/* ======================================================================
 * The lifecycle's reachable states, explored
 * ====================================================================== */

/* A breadth-first search of the lifecycle from an empty case: every event type (undo and
 * rollback aside: they re-fold history) with a few data variants, each taken where
 * dk__case_check_new and dk_case_apply both take it. A state is abstracted to what the rules
 * read: the status, an interview booked, a grant's leave held, the latest decision's
 * outcome, an appeal open, the open error reports (0, 1, 2: more are not explored) and
 * whether the case is assigned (to the caseworker who acts, for the role check). Then the
 * liveness of the reachable graph: from every state the case can be closed, a booking
 * released, an error resolved, leave ended, an appeal decided. */

#define LX_ERR_CAP  2 /* open error reports explored */
#define LX_KEYS     (1u << 12)
#define LX_MAX_VARS 48
#define LX_ACTOR    "pat"

enum { LX_FIXED, LX_CORRECT_STATUS, LX_CORRECT_NAME, LX_CORRECT_ASSIGNEE };

typedef struct lx_var {
    const char *type;
    char label[96];
    int kind, to; /* LX_CORRECT_STATUS: the status corrected to */
    tev e;        /* LX_FIXED: built once */
} lx_var;

typedef struct lx_node {
    dk_case_state st; /* the first concrete state found with this key */
    uint32_t key;
    int parent, via, depth;
} lx_node;

typedef struct lx_edge {
    int from, to, var;
    unsigned rmask; /* the roles dk_case_permit lets author it there */
} lx_edge;

typedef struct lx_graph {
    lx_var vars[LX_MAX_VARS];
    size_t nvars;
    lx_node *nodes;
    int nnodes;
    int index[LX_KEYS]; /* key -> node + 1 */
    lx_edge *edges;
    size_t nedges, cap;
} lx_graph;

static int lx_outcome(const dk_case_state *st)
{
    if (!st->decision.has)
        return 0;
    if (is(st->decision.outcome, "granted"))
        return 1;
    if (is(st->decision.outcome, "refused"))
        return 2;
    if (is(st->decision.outcome, "void"))
        return 3;
    TH_FAIL("a decision with outcome '%s'", st->decision.outcome);
}

/* The key's fields: status 4 bits, then one bit each but the outcome's two and the open
 * error reports' two. */
#define LX_ERR_SHIFT   9
#define LX_STATUS(k)   ((int)((k)&15))
#define LX_BOOKED(k)   (((k) >> 4) & 1)
#define LX_LEAVE(k)    (((k) >> 5) & 1)
#define LX_OUTCOME(k)  (((k) >> 6) & 3)
#define LX_APPEAL(k)   (((k) >> 8) & 1)
#define LX_ERRORS(k)   (((k) >> LX_ERR_SHIFT) & 3)
#define LX_ASSIGNED(k) (((k) >> 11) & 1)

static uint32_t lx_key(const dk_case_state *st)
{
    ASSERT(st->status >= 0 && st->status < DK_ST_COUNT);
    ASSERT(st->open_errors <= LX_ERR_CAP);
    return (uint32_t)st->status | (uint32_t)(st->interview.active != 0) << 4 |
           (uint32_t)(st->leave.grant_seq != 0) << 5 | (uint32_t)lx_outcome(st) << 6 |
           (uint32_t)(st->appeal_open != 0) << 8 | st->open_errors << LX_ERR_SHIFT |
           (uint32_t)(st->assignee[0] != 0) << 11;
}

static void lx_describe(uint32_t k, char *out, size_t cap)
{
    static const char *const outcome[] = {"none", "granted", "refused", "void"};
    snprintf(out, cap, "{%s%s%s decision=%s%s errors=%u%s}", status_names[LX_STATUS(k)],
             LX_BOOKED(k) ? " booked" : "", LX_LEAVE(k) ? " leave-held" : "",
             outcome[LX_OUTCOME(k)], LX_APPEAL(k) ? " appeal-open" : "", LX_ERRORS(k),
             LX_ASSIGNED(k) ? " assigned" : "");
}

static lx_var *lx_add(lx_graph *g, const char *type, int kind, const char *label)
{
    ASSERT(g->nvars < LX_MAX_VARS);
    lx_var *v = &g->vars[g->nvars++];
    memset(v, 0, sizeof *v);
    v->type = type;
    v->kind = kind;
    snprintf(v->label, sizeof v->label, "%.40s%s%.40s", type, label[0] ? " " : "", label);
    return v;
}

static void lx_fixed(lx_graph *g, const char *type, const char *label, const dmap *d)
{
    lx_var *v = lx_add(g, type, LX_FIXED, label);
    tev_make(&v->e, type, "HO-7", LX_ACTOR, d, NULL);
    ASSERT_OK(dk_case_check_schema(&v->e.ev));
}

static void lx_plain(lx_graph *g, const char *type)
{
    dmap d;
    fill_valid(&d, type);
    lx_fixed(g, type, "", &d);
}

/* The variants in the order a case usually meets them, so that the first path the search
 * finds to a state (one of the shortest) reads as casework does: corrections last. */
static void lx_variants(lx_graph *g)
{
    static const char *const leave[] = {"conditions", "immigration_status",
                                        "no_recourse_to_public_funds", "valid_from", "valid_until"};
    static const char *const outcomes[] = {"granted", "refused", "void"};
    static const char *const appeal[] = {"allowed", "dismissed"};
    dmap d;
    lx_plain(g, "case.opened");
    for (int s = 1; s < DK_ST_COUNT; s++) {
        char label[48];
        fill_valid(&d, "case.status_changed");
        d_str(&d, "to", dk_status_name(s));
        snprintf(label, sizeof label, "to %s", dk_status_name(s));
        lx_fixed(g, "case.status_changed", label, &d);
    }
    lx_plain(g, "interview.booked");
    lx_plain(g, "interview.attended");
    lx_plain(g, "interview.no_show");
    lx_plain(g, "interview.rescheduled");
    lx_plain(g, "interview.cancelled");
    for (size_t i = 0; i < 3; i++) {
        fill_valid(&d, "decision.recorded");
        if (i > 0) {
            d_str(&d, "outcome", outcomes[i]);
            for (size_t k = 0; k < sizeof leave / sizeof leave[0]; k++)
                d_del(&d, leave[k]);
        }
        lx_fixed(g, "decision.recorded", outcomes[i], &d);
    }
    lx_plain(g, "appeal.lodged");
    for (size_t i = 0; i < 2; i++) {
        fill_valid(&d, "appeal.decided");
        d_str(&d, "outcome", appeal[i]);
        lx_fixed(g, "appeal.decided", appeal[i], &d);
    }
    lx_plain(g, "case.withdrawn");
    lx_plain(g, "case.closed");
    lx_plain(g, "leave.cancelled");
    fill_valid(&d, "case.assigned");
    d_str(&d, "caseworker", LX_ACTOR);
    lx_fixed(g, "case.assigned", "", &d);
    lx_plain(g, "note.added");
    lx_plain(g, "document.attached");
    lx_plain(g, "contact.updated");
    lx_plain(g, "error.reported");
    for (int s = 1; s < DK_ST_COUNT; s++) {
        char label[48];
        snprintf(label, sizeof label, "status to %s", dk_status_name(s));
        lx_add(g, "status.corrected", LX_CORRECT_STATUS, label)->to = s;
    }
    lx_add(g, "status.corrected", LX_CORRECT_NAME, "applicant_name");
    lx_add(g, "status.corrected", LX_CORRECT_ASSIGNEE, "assignee");
}

/* The event variant `v` is in state `st`: 0, or 1 if it cannot be formed there (a correction
 * with no error report open to name, or of an assignee the case does not have). */
static int lx_event(const lx_var *v, const dk_case_state *st, tev *out, int *made)
{
    *made = 0;
    if (v->kind == LX_FIXED) {
        *out = v->e;
        return 0;
    }
    if (st->open_errors == 0 || (v->kind == LX_CORRECT_ASSIGNEE && st->assignee[0] == 0))
        return 1;
    dmap d;
    fill_valid(&d, "status.corrected");
    d_u64(&d, "error_ref", st->error_seqs[0]);
    if (v->kind == LX_CORRECT_STATUS) {
        d_str(&d, "from", dk_status_name(st->status));
        d_str(&d, "to", dk_status_name(v->to));
    } else if (v->kind == LX_CORRECT_NAME) {
        d_str(&d, "field", "applicant_name");
        d_str(&d, "from", st->applicant_name);
        d_str(&d, "to", "A. N. Other");
    } else {
        d_str(&d, "field", "assignee");
        d_str(&d, "from", st->assignee);
        d_str(&d, "to", LX_ACTOR);
    }
    tev_make(out, v->type, "HO-7", LX_ACTOR, &d, NULL);
    ASSERT_OK(dk_case_check_schema(&out->ev));
    *made = 1;
    return 0;
}

/* Take variant `v` in `st`: 0 and the state after it in *next, or 1 if refused. */
static int lx_step(const lx_var *v, const dk_case_state *st, dk_case_state *next, unsigned *rmask)
{
    tev e;
    int made;
    if (lx_event(v, st, &e, &made) != 0)
        return 1;
    int refused = 1;
    /* more open error reports than LX_ERR_CAP are not explored */
    if (!(is(v->type, "error.reported") && st->open_errors >= LX_ERR_CAP) &&
        dk__case_check_new(st, &e.ev) == 0) {
        *next = *st;
        refused = dk_case_apply(next, st->last_seq + 1, &e.ev) != 0;
    }
    static const unsigned role[] = {DK_ROLE_CASEWORKER, DK_ROLE_SENIOR_CASEWORKER,
                                    DK_ROLE_MIGRATION};
    *rmask = 0;
    for (size_t i = 0; !refused && i < 3; i++)
        if (dk_case_permit(&e.ev, role[i], st, NULL, NULL, 0, NULL) == 0)
            *rmask |= role[i];
    if (made)
        tev_free(&e);
    return refused;
}

static int lx_node_of(lx_graph *g, const dk_case_state *st, int parent, int via)
{
    uint32_t k = lx_key(st);
    if (g->index[k])
        return g->index[k] - 1;
    ASSERT(g->nnodes < (int)LX_KEYS);
    lx_node *n = &g->nodes[g->nnodes];
    n->st = *st;
    n->key = k;
    n->parent = parent;
    n->via = via;
    n->depth = parent < 0 ? 0 : g->nodes[parent].depth + 1;
    g->index[k] = ++g->nnodes;
    return g->nnodes - 1;
}

/* The abstraction is sound if a second concrete state with the same key takes the same
 * variants to the same keys as the first one found. */
static void lx_check_same(lx_graph *g, const lx_node *n, const dk_case_state *other)
{
    for (size_t v = 0; v < g->nvars; v++) {
        dk_case_state a, b;
        unsigned ra, rb;
        int fa = lx_step(&g->vars[v], &n->st, &a, &ra), fb = lx_step(&g->vars[v], other, &b, &rb);
        if (fa != fb || ra != rb || (!fa && lx_key(&a) != lx_key(&b))) {
            char what[160];
            lx_describe(n->key, what, sizeof what);
            TH_FAIL("two concrete states of %s disagree on %s: the key misses what the rules "
                    "read",
                    what, g->vars[v].label);
        }
    }
}

static void lx_explore(lx_graph *g)
{
    memset(g, 0, sizeof *g);
    g->nodes = calloc(LX_KEYS, sizeof *g->nodes);
    ASSERT(g->nodes != NULL);
    lx_variants(g);
    dk_case_state empty;
    memset(&empty, 0, sizeof empty);
    lx_node_of(g, &empty, -1, -1);
    for (int i = 0; i < g->nnodes; i++) /* nodes are appended in breadth-first order */
        for (size_t v = 0; v < g->nvars; v++) {
            dk_case_state next;
            unsigned rmask;
            if (lx_step(&g->vars[v], &g->nodes[i].st, &next, &rmask) != 0)
                continue;
            int known = g->index[lx_key(&next)] != 0;
            int j = lx_node_of(g, &next, i, (int)v);
            if (known) /* every other concrete state found, against the first */
                lx_check_same(g, &g->nodes[j], &next);
            if (g->nedges == g->cap) {
                g->cap = g->cap ? 2 * g->cap : 1024;
                g->edges = realloc(g->edges, g->cap * sizeof *g->edges);
                ASSERT(g->edges != NULL);
            }
            g->edges[g->nedges++] = (lx_edge){i, j, (int)v, rmask};
        }
}

static void lx_free(lx_graph *g)
{
    for (size_t v = 0; v < g->nvars; v++)
        if (g->vars[v].kind == LX_FIXED)
            tev_free(&g->vars[v].e);
    free(g->nodes);
    free(g->edges);
}

/* The shortest path from the empty case to node i, as event labels. */
static void lx_path(const lx_graph *g, int i, char *out, size_t cap)
{
    int chain[64], n = 0;
    for (int k = i; k > 0 && n < 64; k = g->nodes[k].parent)
        chain[n++] = k;
    size_t len = 0;
    out[0] = 0;
    while (n-- > 0 && len < cap)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " -> " : "",
                                g->vars[g->nodes[chain[n]].via].label);
}

/* A liveness property: from every reachable state `applies` holds in, some path (of edges
 * one of the roles `rmask` may author, through states `through` allows) reaches one `goal` holds
 * in. The goal may depend on the state it starts from (a lower count of open errors). */
typedef struct lx_prop {
    const char *name;
    int (*applies)(uint32_t k);
    int (*goal)(uint32_t from, uint32_t k);
    int (*through)(uint32_t k); /* NULL: any */
} lx_prop;

/* can[i]: may node i reach, by edges one of the roles `rmask` may author and through states
 * `through` allows, a state the goal as seen from a state with `nerr` open errors holds
 * in? A backward fixpoint over the edges. */
static void lx_reach(const lx_graph *g, const lx_prop *p, uint32_t nerr, unsigned rmask,
                     uint8_t *can)
{
    for (int i = 0; i < g->nnodes; i++)
        can[i] = (uint8_t)p->goal(nerr << LX_ERR_SHIFT, g->nodes[i].key);
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t e = 0; e < g->nedges; e++) {
            const lx_edge *x = &g->edges[e];
            if (!can[x->from] && can[x->to] && (x->rmask & rmask) &&
                (p->through == NULL || p->through(g->nodes[x->from].key)))
                can[x->from] = 1, changed = 1;
        }
    }
}

/* The states that break `p` (the goals read of the state they start from only its count
 * of open errors: one fixpoint per count); printed with their shortest paths. */
static int lx_violations(const lx_graph *g, const lx_prop *p, unsigned rmask, int show)
{
    uint8_t *can[LX_ERR_CAP + 1] = {NULL};
    int bad = 0;
    for (int i = 0; i < g->nnodes; i++) {
        uint32_t k = g->nodes[i].key;
        if (!p->applies(k))
            continue;
        uint8_t **c = &can[LX_ERRORS(k)];
        if (*c == NULL) {
            ASSERT((*c = malloc((size_t)g->nnodes)) != NULL);
            lx_reach(g, p, LX_ERRORS(k), rmask, *c);
        }
        if ((*c)[i])
            continue;
        if (bad++ < show) {
            char what[160], path[1024];
            lx_describe(k, what, sizeof what);
            lx_path(g, i, path, sizeof path);
            printf("  %s: stuck in %s\n    path: %s\n", p->name, what, path);
        }
    }
    for (int e = 0; e <= LX_ERR_CAP; e++)
        free(can[e]);
    return bad;
}

static int lx_any(uint32_t k)
{
    (void)k;
    return 1;
}
static int lx_goal_closed(uint32_t from, uint32_t k)
{
    (void)from;
    return LX_STATUS(k) == DK_ST_CLOSED && !LX_BOOKED(k);
}
static int lx_goal_settled(uint32_t from, uint32_t k)
{
    (void)from;
    return LX_STATUS(k) == DK_ST_CLOSED && !LX_BOOKED(k) && !LX_ERRORS(k);
}
static int lx_booked(uint32_t k)
{
    return LX_BOOKED(k);
}
static int lx_goal_unbooked(uint32_t from, uint32_t k)
{
    (void)from;
    return !LX_BOOKED(k);
}
static int lx_errors(uint32_t k)
{
    return LX_ERRORS(k) > 0;
}
static int lx_goal_fewer_errors(uint32_t from, uint32_t k)
{
    return LX_ERRORS(k) < LX_ERRORS(from);
}
static int lx_leave(uint32_t k)
{
    return LX_LEAVE(k);
}
static int lx_leave_open_case(uint32_t k)
{
    return LX_LEAVE(k) && LX_STATUS(k) != DK_ST_CLOSED;
}
static int lx_goal_no_leave(uint32_t from, uint32_t k)
{
    (void)from;
    return !LX_LEAVE(k);
}
static int lx_not_closed(uint32_t k)
{
    return LX_STATUS(k) != DK_ST_CLOSED;
}
static int lx_appeal(uint32_t k)
{
    return LX_APPEAL(k);
}
static int lx_goal_no_appeal(uint32_t from, uint32_t k)
{
    (void)from;
    return !LX_APPEAL(k);
}

/* A safety property: every reachable state satisfies it. */
typedef struct lx_inv {
    const char *name;
    int (*holds)(uint32_t k);
} lx_inv;

static int lx_inv_booking_releasable(uint32_t k)
{
    int s = LX_STATUS(k);
    return !LX_BOOKED(k) || s == DK_ST_INTERVIEW_SCHEDULED || s == DK_ST_WITHDRAWN ||
           s == DK_ST_CLOSED;
}
static int lx_inv_scheduled_booked(uint32_t k)
{
    return LX_STATUS(k) != DK_ST_INTERVIEW_SCHEDULED || LX_BOOKED(k);
}
static int lx_inv_decided_has_decision(uint32_t k)
{
    int s = LX_STATUS(k);
    return (s != DK_ST_DECIDED && s != DK_ST_APPEALED) || LX_OUTCOME(k) != 0;
}
static int lx_inv_appeal_open_where_decided(uint32_t k)
{
    int s = LX_STATUS(k);
    return !LX_APPEAL(k) || s == DK_ST_APPEALED || s == DK_ST_LEAVE_CANCELLED || s == DK_ST_CLOSED;
}
static int lx_inv_cancelled_holds_no_leave(uint32_t k)
{
    return LX_STATUS(k) != DK_ST_LEAVE_CANCELLED || !LX_LEAVE(k);
}

TEST(lifecycle_reachable_states_stay_live)
{
    static lx_graph g;
    lx_explore(&g);
    /* every status reached, and enough combinations that the search cannot be vacuous */
    unsigned statuses = 0;
    for (int i = 0; i < g.nnodes; i++)
        statuses |= 1u << LX_STATUS(g.nodes[i].key);
    ASSERT_EQ(statuses, (1u << DK_ST_COUNT) - 1);
    if (g.nnodes < 250)
        TH_FAIL("only %d abstract states reached", g.nnodes);
    /* nothing is stuck for want of a role: a senior caseworker may author every event the
     * search took (so the liveness below, for any role, is a senior's) */
    for (size_t e = 0; e < g.nedges; e++)
        if (!(g.edges[e].rmask & DK_ROLE_SENIOR_CASEWORKER))
            TH_FAIL("a senior may not take %s", g.vars[g.edges[e].var].label);
    printf("  lifecycle: %d abstract states, %zu transitions, %zu event variants\n", g.nnodes,
           g.nedges, g.nvars);

    /* Requirements (cli.md, architecture.md: "Lifecycle"): a case can always be brought to
     * a close with its interviewer's slot free and its error reports resolved; a booking is
     * always released (interview.cancelled is taken in withdrawn and closed for that); a
     * grant's leave can be ended in every status but leave_cancelled, without closing the
     * case first (helper-65). An appeal lodged is decided: leave.cancelled is
     * taken in appealed, and the appeal was then open for good in leave_cancelled (and
     * closed), where appeal.decided was not taken, nor any correction out of them: case.opened,
     * to validated, to under_consideration, a grant, appeal.lodged (an upgrade appeal),
     * leave.cancelled. appeal.decided is taken there now, the status kept. */
    static const lx_prop props[] = {
        {"closable (closed, no interview booked)", lx_any, lx_goal_closed, NULL},
        {"settled (closed, no booking, no open error report)", lx_any, lx_goal_settled, NULL},
        {"a booked interview is released", lx_booked, lx_goal_unbooked, NULL},
        {"an open error report is resolved", lx_errors, lx_goal_fewer_errors, NULL},
        {"held leave is ended", lx_leave, lx_goal_no_leave, NULL},
        {"held leave is ended without closing the case", lx_leave_open_case, lx_goal_no_leave,
         lx_not_closed},
        {"an open appeal is decided", lx_appeal, lx_goal_no_appeal, NULL},
    };
    /* The first is the rule b189caa added (a status correction waits for a booked
     * interview): without it, a withdrawn case corrected to under_consideration held its
     * booking where no interview event releases it. The liveness above still holds then
     * (the case can book anew, or be withdrawn, and cancel), so this is what catches it. */
    static const lx_inv invs[] = {
        {"a booking is held only where an interview event releases it", lx_inv_booking_releasable},
        {"interview_scheduled has a booking", lx_inv_scheduled_booked},
        {"decided and appealed have a decision", lx_inv_decided_has_decision},
        {"an appeal is open only where appeal.decided is taken", lx_inv_appeal_open_where_decided},
        {"leave_cancelled holds no leave", lx_inv_cancelled_holds_no_leave},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        int bad = lx_violations(&g, &props[i], ~0u, 4);
        int nosenior = lx_violations(&g, &props[i], DK_ROLE_CASEWORKER | DK_ROLE_MIGRATION, 0);
        int cw = lx_violations(&g, &props[i], DK_ROLE_CASEWORKER, 0);
        printf("  %s: %d violations (without a senior caseworker %d, caseworkers alone %d)\n",
               props[i].name, bad, nosenior, cw);
        failed += bad != 0;
    }
    for (size_t i = 0; i < sizeof invs / sizeof invs[0]; i++) {
        int bad = 0;
        for (int n = 0; n < g.nnodes; n++) {
            if (invs[i].holds(g.nodes[n].key))
                continue;
            char what[160], path[1024];
            lx_describe(g.nodes[n].key, what, sizeof what);
            lx_path(&g, n, path, sizeof path);
            if (bad++ < 4)
                printf("  %s: broken in %s\n    path: %s\n", invs[i].name, what, path);
        }
        printf("  %s: %d violations\n", invs[i].name, bad);
        failed += bad != 0;
    }
    lx_free(&g);
    if (failed)
        TH_FAIL("%d lifecycle properties broken (above)", failed);
}

TH_MAIN(
    TH_ENTRY(transition_table) TH_ENTRY(apply_refuses_data_that_is_not_a_map) TH_ENTRY(
        status_changed_edges) TH_ENTRY(lifecycle_guards_and_effects) TH_ENTRY(schemas)
        TH_ENTRY(rescheduled_slot_must_end_after_it_starts) TH_ENTRY(
            decision_conditions_stay_in_their_field) TH_ENTRY(permissions_by_role)
            TH_ENTRY(decision_needs_assignment_or_seniority) TH_ENTRY(four_eyes) TH_ENTRY(
                permissions_at_the_ledger) TH_ENTRY(ledger_agrees_with_model)
                TH_ENTRY(state_rows_pack_as_the_reference_does) TH_ENTRY(
                    the_lifecycle_names_a_damaged_count_before_unpacking)
                    TH_ENTRY(the_lifecycle_reads_damaged_data_without_trusting_it) TH_ENTRY(
                        new_events_refuse_control_characters_and_far_times)
                        TH_ENTRY(undo_on_a_case_voided_to_nothing) TH_ENTRY(revert_and_redo) TH_ENTRY(
                            rollback_restores_an_earlier_state) TH_ENTRY(a_rollback_that_voids_nothing_is_refused)
                            TH_ENTRY(a_rollback_over_a_revert_must_change_what_is_in_force) TH_ENTRY(
                                status_corrections_keep_out_of_decisions_and_appeals)
                                TH_ENTRY(an_appeal_is_decided_only_once_lodged) TH_ENTRY(
                                    an_undo_does_not_bring_back_a_correction_the_rule_refuses)
                                    TH_ENTRY(rollback_to_before_opening_can_be_undone) TH_ENTRY(
                                        revert_refused_when_later_events_depend_on_it)
                                        TH_ENTRY(concurrent_double_booking) TH_ENTRY(
                                            an_appeal_open_when_leave_is_cancelled_is_still_decided)
                                            TH_ENTRY(
                                                a_status_correction_waits_for_a_booked_interview)
                                                TH_ENTRY(a_decision_lists_each_condition_once) TH_ENTRY(
                                                    an_interview_is_held_by_an_enrolled_caseworker)
                                                    TH_ENTRY(an_interviews_outcome_waits_for_the_interview) TH_ENTRY(
                                                        an_undo_brings_back_nothing_a_fresh_append_refuses)
                                                        TH_ENTRY(
                                                            a_damaged_slot_entry_is_named_not_read_past)
                                                            TH_ENTRY(double_booking_edges) TH_ENTRY(
                                                                refused_reschedule_keeps_the_old_slot)
                                                                TH_ENTRY(
                                                                    lifecycle_reachable_states_stay_live))
