/* append_rules.c - the casework rules an append is held to that a ledger written before them
 * may break: the writer refuses by them, and verify lists the records that break them. */
#include <stdio.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

/* Is the interviewer a booking or a move leaves in `after` (the one it names, or the one
 * the move keeps) an enrolled, unrevoked caseworker? Any well-formed name was booked, and
 * a misspelt one escaped the double-booking check and made a diary of its own. */
static int interviewer(const dk__lookup *lk, uint64_t seq, const dk_event *ev,
                       const dk_case_state *after, int *code)
{
    const char *s;
    size_t n;
    if (strcmp(ev->type, "interview.booked") != 0 && strcmp(ev->type, "interview.rescheduled") != 0)
        return 0;
    /* a move that names no interviewer keeps the booking's: a refusal says so, and what
     * to do (asked first: a missing field sets the message) */
    int kept = dk__data_str(ev->data, ev->data_len, "interviewer", &s, &n) != 0;
    const char *id = after->interview.interviewer;
    dk_actor_info who;
    int rc = lk->actor(lk->ctx, id, seq, &who);
    if (rc && rc != DK_ENOTFOUND)
        return rc;
    if ((rc = dk__assignable(id, rc ? NULL : &who, "an interview is held by")) == 0)
        return 0;
    *code = rc;
    if (kept) {
        char why[DK_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dk_errmsg());
        dk__fail(rc, "%s keeps the booking's interviewer, and %s; name another in data.interviewer",
                 ev->type, why);
    }
    return 1;
}

/* An event that acts on an earlier one (`ref`, `what` it is to the event) cannot take
 * effect before it did: a correction before the report it resolves (the errors view
 * would show a negative time to resolve), a cancellation of leave before the grant it
 * cancels (a mistyped year ended the whole grant backwards: helper-65). Times are the
 * effective ones, else the recorded ones, as the views and the leave in effect use. */
static int not_before(const dk__lookup *lk, int64_t recorded_at, const dk_event *ev, uint64_t ref,
                      const char *what, int *code)
{
    dk_event rev;
    int64_t ref_at;
    int rc = lk->event(lk->ctx, ref, &rev, &ref_at);
    if (rc == DK_ENOTFOUND)
        return 0; /* the fold names it */
    if (rc)
        return rc;
    int64_t then = rev.has_eff ? rev.eff : ref_at;
    int64_t now = ev->has_eff ? ev->eff : recorded_at;
    if (now >= then)
        return 0;
    char t1[DK_TIME_LEN], t2[DK_TIME_LEN];
    dk_time_format(now, t1);
    dk_time_format(then, t2);
    *code = DK_ETRANSITION;
    dk__fail(DK_ETRANSITION, "%s takes effect at %s, before %s (seq %llu, %s)", ev->type, t1, what,
             (unsigned long long)ref, t2);
    return 1;
}

int dk__append_rules(const dk__lookup *lk, uint64_t seq, int64_t recorded_at, const dk_event *ev,
                     const dk_case_state *before, const dk_case_state *after, int *code)
{
    int rc = dk__case_check_new(before, ev);
    if (rc) {
        *code = rc;
        return 1;
    }
    if ((rc = interviewer(lk, seq, ev, after, code)) != 0)
        return rc;
    uint64_t ref = 0;
    if (strcmp(ev->type, "leave.cancelled") == 0)
        return not_before(lk, recorded_at, ev, before->leave.grant_seq, "the grant it cancels",
                          code);
    if (strcmp(ev->type, "status.corrected") != 0 ||
        dk__data_u64(ev->data, ev->data_len, "error_ref", &ref) != 0)
        return 0; /* the schema check names a missing ref */
    return not_before(lk, recorded_at, ev, ref, "the error report it resolves", code);
}
