/* effective.c - a person's leave in effect on a date (effective time), from
 * a case's non-voided grants, cancellations and void decisions. */
#include <stdio.h>
#include <string.h>

#include "docket/docket.h"
#include "docket/replay.h"

static void copy_field(const dk_event *ev, const char *key, char *out, size_t cap)
{
    const char *s;
    size_t n;
    out[0] = 0;
    if (dk_data_str(ev->data, ev->data_len, key, &s, &n) == 0)
        snprintf(out, cap, "%.*s", (int)n, s);
}

/* The grant's conditions, which the schema takes from a fixed vocabulary: noted by word,
 * then listed once each in the vocabulary's order, as the fold lists them. Copied as
 * given, a repeated condition filled the field and cut off those after it, a work
 * prohibition among them (helper-65). */
#define COND_WORDS 64 /* the vocabulary has 7; test_replay checks it stays under this */
typedef struct cond_acc {
    const char *const *vocab;
    int listed[COND_WORDS];
} cond_acc;

static int add_cond(void *ctx, const char *s, size_t n)
{
    cond_acc *a = ctx;
    for (int k = 0; a->vocab[k] && k < COND_WORDS; k++)
        if (strlen(a->vocab[k]) == n && memcmp(a->vocab[k], s, n) == 0)
            a->listed[k] = 1;
    return 0;
}

static void list_conds(const cond_acc *a, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (int k = 0; a->vocab[k] && k < COND_WORDS && n < cap; k++)
        if (a->listed[k])
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", a->vocab[k]);
}

/* The day an ending event takes effect: its eff, else the day it was recorded. */
static void effective_day(const dk_event *ev, const dk_record *rec, char day[11])
{
    char t[DK_TIME_LEN];
    dk_time_format(ev->has_eff ? ev->eff : rec->recorded_at, t);
    memcpy(day, t, 10);
    day[10] = 0;
}

int dk_case_effective(const dk_case_view *cv, const char *date, dk_effective *out)
{
    memset(out, 0, sizeof *out);
    if (!dk_date_valid(date, (int)strlen(date)))
        return dk_fail(DK_EINVAL, "'%s' is not a date (YYYY-MM-DD)", date);
    for (size_t i = 0; i < cv->n; i++) {
        const dk_record *rec = &cv->recs[i];
        dk_event ev;
        if (dk_case_voided_by(cv, rec->seq) != 0)
            continue;
        if (dk_event_decode_stored(rec->body, rec->body_len, &ev) != 0)
            return dk_fail(DK_ECORRUPT, "record %llu does not decode",
                           (unsigned long long)rec->seq);
        char outcome[16], from[11];
        int is_decision = strcmp(ev.type, "decision.recorded") == 0;
        if (is_decision)
            copy_field(&ev, "outcome", outcome, sizeof outcome);
        if (is_decision && strcmp(outcome, "granted") == 0) {
            copy_field(&ev, "valid_from", from, sizeof from);
            if (strcmp(from, date) > 0)
                continue; /* not yet in effect on the date */
            memset(out, 0, sizeof *out);
            out->decision_seq = rec->seq;
            snprintf(out->valid_from, sizeof out->valid_from, "%s", from);
            copy_field(&ev, "valid_until", out->valid_until, sizeof out->valid_until);
            copy_field(&ev, "product_type", out->product_type, sizeof out->product_type);
            copy_field(&ev, "immigration_status", out->immigration_status,
                       sizeof out->immigration_status);
            cond_acc acc = {dk_case_vocabulary("conditions"), {0}};
            dk_data_strlist(ev.data, ev.data_len, "conditions", add_cond, &acc);
            list_conds(&acc, out->conditions, sizeof out->conditions);
            int nrpf = 0;
            if (dk_data_bool(ev.data, ev.data_len, "no_recourse_to_public_funds", &nrpf) == 0)
                out->no_recourse_to_public_funds = nrpf;
        } else if ((is_decision && strcmp(outcome, "void") == 0) ||
                   strcmp(ev.type, "leave.cancelled") == 0) {
            char day[11];
            effective_day(&ev, rec, day);
            if (out->decision_seq == 0)
                continue;                /* ends nothing on the date */
            if (strcmp(day, date) > 0) { /* ends the grant later: the first such end */
                if (out->ends_seq == 0) {
                    out->ends_seq = rec->seq;
                    snprintf(out->ends_on, sizeof out->ends_on, "%s", day);
                }
                continue;
            }
            memset(out, 0, sizeof *out); /* the grant no longer speaks for the date */
            out->ended_seq = rec->seq;
            snprintf(out->ended_on, sizeof out->ended_on, "%s", day);
        }
    }
    if (out->decision_seq == 0) {
        if (out->ended_seq)
            snprintf(out->why, sizeof out->why, "leave ended on %s by seq %llu", out->ended_on,
                     (unsigned long long)out->ended_seq);
        else
            snprintf(out->why, sizeof out->why, "no grant in effect on %s", date);
        return 0;
    }
    if (out->valid_until[0] && strcmp(date, out->valid_until) > 0) {
        snprintf(out->why, sizeof out->why, "the grant at seq %llu expired on %s",
                 (unsigned long long)out->decision_seq, out->valid_until);
        return 0;
    }
    out->in_effect = 1;
    int n =
        snprintf(out->why, sizeof out->why, "granted %s %s at seq %llu, valid from %s%s%s",
                 out->product_type, out->immigration_status, (unsigned long long)out->decision_seq,
                 out->valid_from, out->valid_until[0] ? " until " : "", out->valid_until);
    if (out->ends_seq && n > 0 && (size_t)n < sizeof out->why)
        snprintf(out->why + n, sizeof out->why - (size_t)n, "; ends on %s by seq %llu",
                 out->ends_on, (unsigned long long)out->ends_seq);
    return 0;
}
