/* append_rules.c - the casework rules an append is held to that a ledger written before them
 * may break: the writer refuses by them, and verify lists the records that break them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

int dk__staff_at(const dk__lookup *lk, const char *id, uint64_t seq, const char *job, int *code)
{
    dk_actor_info who;
    int rc = lk->actor(lk->ctx, id, seq, &who);
    if (rc && rc != DK_ENOTFOUND)
        return rc;
    if ((rc = dk__assignable(id, rc ? NULL : &who, job)) == 0)
        return 0;
    *code = rc;
    return 1;
}

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
    int rc = dk__staff_at(lk, after->interview.interviewer, seq, DK__INTERVIEWER_JOB, code);
    if (rc == 1 && kept) {
        char why[DK_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dk_errmsg());
        dk__fail(*code,
                 "%s keeps the booking's interviewer, and %s; name another in data.interviewer",
                 ev->type, why);
    }
    return rc;
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

/* An interview's outcome is recorded once the interview has begun: an attendance or a
 * no-show recorded (or dated, by its effective time) before the booked slot's start is a
 * guess, not a record (helper-70: a no-show taken four days ahead). */
static int outcome_after_start(int64_t recorded_at, const dk_event *ev, const dk_case_state *before,
                               int *code)
{
    if ((strcmp(ev->type, "interview.attended") != 0 &&
         strcmp(ev->type, "interview.no_show") != 0) ||
        !before->interview.active)
        return 0; /* the fold names an outcome with no booking */
    int64_t when = ev->has_eff && ev->eff < recorded_at ? ev->eff : recorded_at;
    if (when >= before->interview.slot_start)
        return 0;
    char t1[DK_TIME_LEN], t2[DK_TIME_LEN];
    dk_time_format(when, t1);
    dk_time_format(before->interview.slot_start, t2);
    *code = DK_ETRANSITION;
    dk__fail(DK_ETRANSITION,
             "%s at %s, before the interview booked with '%s' begins at %s: an interview's "
             "outcome is recorded once it has begun",
             ev->type, t1, before->interview.interviewer, t2);
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
    if ((rc = outcome_after_start(recorded_at, ev, before, code)) != 0)
        return rc;
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

/* ---- undo ---- */

int dk__breaks_add(dk__breaks *b, uint64_t seq)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        uint64_t *more = realloc(b->seq, cap * sizeof *more);
        if (more == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        b->seq = more;
        b->cap = cap;
    }
    b->seq[b->n++] = seq;
    return 0;
}

static int in_list(const dk__breaks *b, uint64_t seq)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b->seq[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->n && b->seq[lo] == seq;
}

/* Would the case as it stood before `ev` (`before`) have let its author append it? A
 * caseworker's decision rests on the case being assigned to them: one an undo leaves in
 * force on a case it makes assigned to another was made without the right to (helper-68).
 * 0, 1 (no: the message says why) or <0. */
static int permitted(const dk__lookup *lk, const dk_record *rec, const dk_event *ev,
                     const dk_case_state *before)
{
    if (strcmp(ev->type, "decision.recorded") != 0)
        return 0; /* the only rule the case's state decides */
    dk_actor_info who;
    int rc = lk->actor(lk->ctx, ev->actor, rec->seq, &who);
    if (rc)
        return rc == DK_ENOTFOUND ? 0 : rc; /* verify names an author never enrolled */
    return dk__permit_state(ev, who.roles, before) != 0;
}

/* dk__append_rules, then the author's right to the event `rec` holds as the case stood
 * before it (a caseworker decides only a case assigned to them: an undo could take the
 * assignment from under the decision). 0, 1 (broken: *code and the message say why) or
 * <0. */
static int rules_broken(const dk__lookup *lk, const dk_record *rec, const dk_event *ev,
                        const dk_case_state *before, const dk_case_state *after, int *code)
{
    int r = dk__append_rules(lk, rec->seq, rec->recorded_at, ev, before, after, code);
    if (r == 0 && (r = permitted(lk, rec, ev, before)) == 1)
        *code = DK_EDENIED;
    return r;
}

int dk__undo_observe(void *arg, const dk_record *rec, const dk_event *ev,
                     const dk_case_state *before, const dk_case_state *after)
{
    dk__undo_pass *p = arg;
    int code = 0;
    int r = rules_broken(p->lk, rec, ev, before, after, &code);
    if (r <= 0)
        return r;
    if (p->now && dk__breaks_add(p->now, rec->seq) != 0)
        return DK_ENOMEM;
    if (p->had == NULL || p->seq != 0 || in_list(p->had, rec->seq))
        return 0;
    p->seq = rec->seq;
    snprintf(p->type, sizeof p->type, "%s", ev->type);
    snprintf(p->why, sizeof p->why, "%s", dk_errmsg());
    return 0;
}

/* May the actor an undo brings back into a role (`job`) take it now, at the undo's seq?
 * `instead`: what to do if not. */
static int brought_back(const dk__lookup *lk, uint64_t seq, const dk_event *undo, const char *id,
                        const char *what, const char *job, const char *instead, int *code)
{
    int rc = dk__staff_at(lk, id, seq, job, code);
    if (rc == 1) {
        char why[DK_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dk_errmsg());
        dk__fail(*code, "%s would bring back %s, and %s; %s", undo->type, what, why, instead);
    }
    return rc;
}

int dk__undo_verdict(const dk__undo_pass *p, uint64_t seq, int64_t recorded_at,
                     const dk_event *undo, const dk_case_state *before, const dk_case_state *after,
                     int *code)
{
    if (p->seq) {
        *code = DK_ETRANSITION;
        dk__fail(DK_ETRANSITION,
                 "%s would leave %s seq %llu in force against the case's rules: %s; undo seq %llu "
                 "first",
                 undo->type, p->type, (unsigned long long)p->seq, p->why,
                 (unsigned long long)p->seq);
        return 1;
    }
    /* What it brings back is judged as of now: an actor revoked since takes no interview
     * still to come, and no case by a revert, again (helper-68). A booking whose slot has
     * ended is the record of a past interview: its outcome may be corrected whoever held
     * it (helper-69: an attendance recorded by mistake could not be undone once its
     * interviewer left). A rollback, four eyes going back to a time, may restore an
     * assignee revoked since; a senior then assigns the case anew. */
    int rc;
    if (after->interview.active && after->interview.slot_end > recorded_at &&
        !dk__same_slot(before, after) &&
        (rc = brought_back(p->lk, seq, undo, after->interview.interviewer, "an interview booking",
                           DK__INTERVIEWER_JOB,
                           "book the interview anew, with an enrolled interviewer", code)) != 0)
        return rc;
    if (strcmp(undo->type, "event.reverted") == 0 && after->assignee[0] &&
        strcmp(before->assignee, after->assignee) != 0 &&
        (rc = brought_back(p->lk, seq, undo, after->assignee, "an assignment", DK__ASSIGNEE_JOB,
                           "assign the case anew instead", code)) != 0)
        return rc;
    return 0;
}

int dk__undo_judge(const dk__lookup *lk, const dk_event *undo, const dk_record *recs, size_t n,
                   const dk_case_state *before, dk_case_state *st, uint64_t *bad_seq, int *code)
{
    *bad_seq = 0;
    if (n == 0)
        return dk__fail(DK_EINVAL, "an undo with no records");
    dk_event *evs = malloc(n * sizeof *evs);
    if (evs == NULL)
        return dk__fail(DK_ENOMEM, "out of memory folding a case");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((rc = dk_event_decode_stored(recs[i].body, recs[i].body_len, &evs[i])) != 0)
            *bad_seq = recs[i].seq;
    /* the fold without the undo keeps its breaks (had); the fold with it keeps the first
     * break `had` does not list */
    dk__breaks had = {NULL, 0, 0};
    dk__undo_pass first = {lk, NULL, &had, 0, "", ""}, second = {lk, &had, NULL, 0, "", ""};
    dk_case_state without;
    dk_void *vb = NULL, *va = NULL;
    size_t nb = 0, na = 0;
    if (rc == 0)
        rc = dk__case_fold_decoded(recs, evs, n - 1, &without, &vb, &nb, bad_seq, dk__undo_observe,
                                   &first);
    if (rc == 0)
        rc = dk__case_fold_decoded(recs, evs, n, st, &va, &na, bad_seq, dk__undo_observe, &second);
    if (rc == 0 && (rc = dk__undo_allowed_given(undo, recs, n, vb, nb, va, na)) == DK_ETRANSITION) {
        *code = rc;
        rc = 1;
    }
    if (rc == 0)
        rc = dk__undo_verdict(&second, recs[n - 1].seq, recs[n - 1].recorded_at, undo, before, st,
                              code);
    free(had.seq);
    free(vb);
    free(va);
    free(evs);
    return rc;
}
