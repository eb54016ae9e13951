/* cmd_caseview.c - `docket status`, `docket asof` and `docket history`: a case's
 * folded state now or at any time, and its event history with who voided what. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "docket/replay.h"

/* A case as of `asof`, from a read-only ledger; lg and cv closed by case_close. */
typedef struct case_read {
    dk_ledger *lg;
    dk_case_view cv;
} case_read;

static void case_close(case_read *cr)
{
    dk_case_view_close(&cr->cv);
    dk_ledger_close(cr->lg);
}

static int case_open(const char *ledger, const char *case_id, int64_t asof, case_read *cr)
{
    memset(cr, 0, sizeof *cr);
    int rc = cli_open_ledger(ledger, 1, &cr->lg);
    if (rc != EXIT_OK)
        return rc;
    int err = dk_case_read(cr->lg, case_id, asof, &cr->cv);
    if (err) {
        rc = cli_dk_fail(err, "cannot read the case");
        case_close(cr);
        return rc;
    }
    return EXIT_OK;
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? cli_json_text(s) : json_null();
}

static json_t *state_json(const char *case_id, const dk_case_state *st, const dk_void *voids,
                          size_t nvoids)
{
    json_t *o = json_object();
    json_object_set_new(o, "case", cli_json_text(case_id));
    json_object_set_new(o, "status", cli_json_text(dk_status_name(st->status)));
    json_object_set_new(o, "version", json_integer((json_int_t)st->version));
    json_object_set_new(o, "last_seq", json_integer((json_int_t)st->last_seq));
    json_object_set_new(o, "case_type", cli_json_text(st->case_type));
    json_object_set_new(o, "channel", cli_json_text(st->channel));
    json_object_set_new(o, "received_on", cli_json_text(st->received_on));
    json_t *a = json_object();
    json_object_set_new(a, "ref", cli_json_text(st->applicant_ref));
    json_object_set_new(a, "name", cli_json_text(st->applicant_name));
    json_object_set_new(a, "date_of_birth", cli_json_text(st->date_of_birth));
    json_object_set_new(a, "nationality", cli_json_text(st->nationality));
    json_object_set_new(o, "applicant", a);
    json_object_set_new(o, "assignee", str_or_null(st->assignee));
    if (st->decision.has) {
        json_t *d = json_object();
        json_object_set_new(d, "seq", json_integer((json_int_t)st->decision.seq));
        json_object_set_new(d, "outcome", cli_json_text(st->decision.outcome));
        json_object_set_new(d, "product_type", cli_json_text(st->decision.product_type));
        json_object_set_new(d, "immigration_status", str_or_null(st->decision.immigration_status));
        json_object_set_new(d, "no_recourse_to_public_funds",
                            json_boolean(st->decision.no_recourse_to_public_funds));
        json_object_set_new(d, "conditions", cli_csv_json(st->decision.conditions));
        json_object_set_new(d, "valid_from", str_or_null(st->decision.valid_from));
        json_object_set_new(d, "valid_until", str_or_null(st->decision.valid_until));
        json_object_set_new(d, "rules_version", cli_json_text(st->decision.rules_version));
        json_object_set_new(o, "decision", d);
    } else {
        json_object_set_new(o, "decision", json_null());
    }
    json_t *lv = json_object();
    json_object_set_new(lv, "grant_seq",
                        st->leave.grant_seq ? json_integer((json_int_t)st->leave.grant_seq)
                                            : json_null());
    json_object_set_new(lv, "cancelled_seq",
                        st->leave.cancelled_seq ? json_integer((json_int_t)st->leave.cancelled_seq)
                                                : json_null());
    json_object_set_new(o, "leave", lv);
    json_t *iv = json_object();
    json_object_set_new(iv, "active", json_boolean(st->interview.active));
    if (st->interview.active) {
        char t[DK_TIME_LEN];
        dk_time_format(st->interview.slot_start, t);
        json_object_set_new(iv, "slot_start", cli_json_text(t));
        dk_time_format(st->interview.slot_end, t);
        json_object_set_new(iv, "slot_end", cli_json_text(t));
        json_object_set_new(iv, "interviewer", cli_json_text(st->interview.interviewer));
        json_object_set_new(iv, "location", cli_json_text(st->interview.location));
    }
    json_object_set_new(iv, "attended", json_integer(st->interview.attended));
    json_object_set_new(iv, "no_shows", json_integer(st->interview.no_shows));
    json_object_set_new(iv, "cancelled", json_integer(st->interview.cancelled));
    json_object_set_new(o, "interview", iv);
    json_t *errs = json_array();
    for (uint32_t i = 0; i < st->open_errors; i++)
        json_array_append_new(errs, json_integer((json_int_t)st->error_seqs[i]));
    json_object_set_new(o, "open_error_reports", errs);
    json_t *c = json_object();
    json_object_set_new(c, "email", str_or_null(st->email));
    json_object_set_new(c, "postal_address", str_or_null(st->postal_address));
    json_object_set_new(o, "contact", c);
    json_object_set_new(o, "appeal_open", json_boolean(st->appeal_open));
    json_object_set_new(o, "appeal_outcome", str_or_null(st->appeal_outcome));
    json_t *vs = json_array();
    for (size_t i = 0; i < nvoids; i++) {
        json_t *v = json_object();
        json_object_set_new(v, "seq", json_integer((json_int_t)voids[i].seq));
        json_object_set_new(v, "voided_by", json_integer((json_int_t)voids[i].by_seq));
        json_array_append_new(vs, v);
    }
    json_object_set_new(o, "voided", vs);
    return o;
}

static int one_case_arg(int argc, char **argv, const char *usage, const char **ledger, int *json,
                        const char **case_id)
{
    int npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", ledger, NULL}, {"json", NULL, json}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 1)
        return cli_usage_error("%s needs one CASE", argv[0]);
    *case_id = pos[0];
    return CLI_CONTINUE;
}

static json_t *effective_json(const char *date, const dk_effective *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "date", cli_json_text(date));
    json_object_set_new(o, "in_effect", json_boolean(e->in_effect));
    json_object_set_new(o, "decision_seq",
                        e->decision_seq ? json_integer((json_int_t)e->decision_seq) : json_null());
    json_object_set_new(o, "product_type", str_or_null(e->product_type));
    json_object_set_new(o, "immigration_status", str_or_null(e->immigration_status));
    json_object_set_new(o, "valid_from", str_or_null(e->valid_from));
    json_object_set_new(o, "valid_until", str_or_null(e->valid_until));
    json_object_set_new(o, "conditions", cli_csv_json(e->conditions));
    json_object_set_new(o, "no_recourse_to_public_funds",
                        json_boolean(e->no_recourse_to_public_funds));
    json_object_set_new(o, "ended_seq",
                        e->ended_seq ? json_integer((json_int_t)e->ended_seq) : json_null());
    json_object_set_new(o, "ended_on", str_or_null(e->ended_on));
    json_object_set_new(o, "ends_seq",
                        e->ends_seq ? json_integer((json_int_t)e->ends_seq) : json_null());
    json_object_set_new(o, "ends_on", str_or_null(e->ends_on));
    json_object_set_new(o, "why", cli_json_text(e->why));
    return o;
}

static void print_state(const char *case_id, const dk_case_view *cv)
{
    const dk_case_state *st = &cv->st;
    if (st->status == DK_ST_NONE) { /* its opening voided (helper-67: empty fields shown) */
        printf("case %s: no status: its opening is voided (version %llu; docket history %s "
               "lists its events)\n",
               case_id, (unsigned long long)st->version, case_id);
        for (size_t i = 0; i < cv->nvoids; i++)
            printf("  seq %llu voided by seq %llu\n", (unsigned long long)cv->voids[i].seq,
                   (unsigned long long)cv->voids[i].by_seq);
        return;
    }
    printf("case %s: %s (version %llu)\n", case_id, dk_status_name(st->status),
           (unsigned long long)st->version);
    printf("  %s case, %s, received %s\n", st->case_type, st->channel, st->received_on);
    printf("  applicant %s %s, born %s, %s\n", st->applicant_ref, st->applicant_name,
           st->date_of_birth, st->nationality);
    printf("  assigned to %s\n", st->assignee[0] ? st->assignee : "nobody");
    if (st->decision.has)
        printf("  decision (seq %llu): %s %s %s from %s%s%s; conditions: %s; NRPF: %s; "
               "rules %s\n",
               (unsigned long long)st->decision.seq, st->decision.outcome,
               st->decision.product_type, st->decision.immigration_status,
               st->decision.valid_from[0] ? st->decision.valid_from : "-",
               st->decision.valid_until[0] ? " until " : "", st->decision.valid_until,
               st->decision.conditions[0] ? st->decision.conditions : "none",
               st->decision.no_recourse_to_public_funds ? "yes" : "no", st->decision.rules_version);
    if (st->leave.grant_seq && st->leave.grant_seq != st->decision.seq)
        printf("  leave held from the grant at seq %llu\n",
               (unsigned long long)st->leave.grant_seq);
    if (st->leave.cancelled_seq)
        printf("  leave cancelled by seq %llu\n", (unsigned long long)st->leave.cancelled_seq);
    if (st->interview.active) {
        char a[DK_TIME_LEN];
        dk_time_format(st->interview.slot_start, a);
        printf("  interview booked %s with %s at %s\n", a, st->interview.interviewer,
               st->interview.location);
    }
    printf("  interviews: %u attended, %u no-show, %u cancelled\n", st->interview.attended,
           st->interview.no_shows, st->interview.cancelled);
    printf("  open error reports: %u\n", st->open_errors);
    for (size_t i = 0; i < cv->nvoids; i++)
        printf("  seq %llu voided by seq %llu\n", (unsigned long long)cv->voids[i].seq,
               (unsigned long long)cv->voids[i].by_seq);
}

/* The state of the case as of `asof`, and with `date` its status in effect then. */
static int show_case(const char *ledger, const char *case_id, int64_t asof, const char *date,
                     int json)
{
    case_read cr;
    int rc = case_open(ledger, case_id, asof, &cr);
    if (rc != EXIT_OK)
        return rc;
    /* A case with a decision shows the leave in effect on the view's day (today, or the
     * day of `asof`) unless --effective names another: the decision alone reads as a
     * grant after a leave cancellation, and still after a closure hides the cancelled
     * status (helper-63). */
    char day[DK_TIME_LEN];
    if (date == NULL && cr.cv.st.decision.has) {
        dk_time_format(asof == DK_TIME_MAX ? dk_time_now() : asof, day);
        day[10] = 0; /* YYYY-MM-DD */
        date = day;
    }
    dk_effective eff;
    int err = date ? dk_case_effective(&cr.cv, date, &eff) : 0;
    if (err) {
        case_close(&cr);
        return err == DK_EINVAL ? cli_usage_error("--effective: %s", dk_errmsg())
                                : cli_dk_fail(err, "cannot work out the status in effect");
    }
    if (json) {
        json_t *o = state_json(case_id, &cr.cv.st, cr.cv.voids, cr.cv.nvoids);
        if (asof != DK_TIME_MAX) {
            char t[DK_TIME_LEN];
            dk_time_format(asof, t);
            json_object_set_new(o, "as_of", cli_json_text(t));
        }
        if (date)
            json_object_set_new(o, "effective", effective_json(date, &eff));
        cli_print_json(o);
    } else {
        if (asof != DK_TIME_MAX) {
            char t[DK_TIME_LEN];
            dk_time_format(asof, t);
            printf("as of %s (records up to seq %llu):\n", t,
                   (unsigned long long)cr.cv.recs[cr.cv.n - 1].seq);
        }
        print_state(case_id, &cr.cv);
        if (date)
            printf("  on %s: %s (%s)\n", date, eff.in_effect ? "leave in effect" : "no leave",
                   eff.why);
    }
    case_close(&cr);
    return EXIT_OK;
}

int cmd_status(int argc, char **argv)
{
    const char *ledger = NULL, *case_id = NULL;
    int json = 0;
    int rc = one_case_arg(argc, argv,
                          "usage: docket status CASE [--ledger DIR] [--json]\n"
                          "The case's current state: the fold of its events, undo honoured.\n",
                          &ledger, &json, &case_id);
    if (rc != CLI_CONTINUE)
        return rc;
    return show_case(ledger, case_id, DK_TIME_MAX, NULL, json);
}

int cmd_asof(int argc, char **argv)
{
    /* asof TIME query|report ...: the view commands, on views as of TIME */
    if (argc >= 3 && argv[1][0] != '-' &&
        (strcmp(argv[2], "query") == 0 || strcmp(argv[2], "report") == 0)) {
        int64_t t;
        int rc = cli_parse_time("asof", argv[1], 1, &t);
        if (rc != EXIT_OK)
            return rc;
        cli_views_as_of(t);
        return strcmp(argv[2], "query") == 0 ? cmd_query(argc - 2, argv + 2)
                                             : cmd_report(argc - 2, argv + 2);
    }
    const char *ledger = NULL, *effective = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},
                            {"json", NULL, &json},
                            {"effective", &effective, NULL},
                            {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket asof TIME status CASE [--effective DATE] [--ledger DIR] [--json]\n"
        "       docket asof TIME query status S [--json]\n"
        "       docket asof TIME report --case-type T --outcome O ... [--json]\n"
        "What the ledger said about CASE at TIME: only records recorded by then, and only\n"
        "the reverts and rollbacks recorded by then. TIME is RFC 3339, YYYY-MM-DD (the\n"
        "end of that day, UTC) or now. --effective DATE adds the person's leave in effect on DATE\n"
        "as the ledger knew it at TIME.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos < 2)
        return cli_usage_error("asof needs TIME and a question (status CASE)");
    int64_t t;
    if ((rc = cli_parse_time("asof", pos[0], 1, &t)) != EXIT_OK)
        return rc;
    if (strcmp(pos[1], "status") == 0) {
        if (npos != 3)
            return cli_usage_error("asof TIME status needs one CASE");
        return show_case(ledger, pos[2], t, effective, json);
    }
    return cli_usage_error("asof: unknown question '%s' (status CASE, query status S, or "
                           "report ...)",
                           pos[1]);
}

int cmd_history(int argc, char **argv)
{
    const char *ledger = NULL, *case_id = NULL;
    int json = 0;
    int rc = one_case_arg(argc, argv,
                          "usage: docket history CASE [--ledger DIR] [--json]\n"
                          "Every event of the case: seq, time, actor, type, summary, voided by.\n",
                          &ledger, &json, &case_id);
    if (rc != CLI_CONTINUE)
        return rc;
    case_read cr;
    if ((rc = case_open(ledger, case_id, DK_TIME_MAX, &cr)) != EXIT_OK)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < cr.cv.n; i++) {
        json_t *r = cli_record_json(&cr.cv.recs[i]);
        if (r == NULL) { /* a history that leaves an event out would be silently wrong */
            rc = cli_damage("record %llu of case '%s' does not decode: %s",
                            (unsigned long long)cr.cv.recs[i].seq, case_id, dk_errmsg());
            break;
        }
        json_t *o = json_object();
        json_object_set(o, "seq", json_object_get(r, "seq"));
        json_object_set(o, "recorded_at", json_object_get(r, "recorded_at"));
        json_object_set(o, "actor", json_object_get(r, "actor"));
        json_object_set(o, "type", json_object_get(r, "type"));
        json_object_set(o, "data", json_object_get(r, "data"));
        json_t *signers = json_array();
        json_t *sigs = json_object_get(r, "sigs");
        for (size_t k = 0; k < json_array_size(sigs); k++)
            json_array_append(signers, json_object_get(json_array_get(sigs, k), "actor"));
        json_object_set_new(o, "signed_by", signers);
        uint64_t by_seq = dk_case_voided_by(&cr.cv, cr.cv.recs[i].seq);
        json_t *by = by_seq ? json_integer((json_int_t)by_seq) : json_null();
        json_object_set_new(o, "voided_by", by);
        json_array_append_new(arr, o);
        json_decref(r);
    }
    if (rc != EXIT_OK) { /* nothing printed: stdout stays empty on a failure */
        json_decref(arr);
        case_close(&cr);
        return rc;
    }
    if (json) {
        cli_print_json(arr);
    } else {
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *o = json_array_get(arr, i);
            char *summary = json_dumps(json_object_get(o, "data"), JSON_COMPACT);
            json_t *by = json_object_get(o, "voided_by");
            printf("%-6lld %s  %-14s %-22s %s",
                   (long long)json_integer_value(json_object_get(o, "seq")),
                   json_string_value(json_object_get(o, "recorded_at")),
                   json_string_value(json_object_get(o, "actor")),
                   json_string_value(json_object_get(o, "type")), summary ? summary : "");
            if (json_is_integer(by))
                printf("  [voided by seq %lld]", (long long)json_integer_value(by));
            putchar('\n');
            free(summary);
        }
        json_decref(arr);
    }
    case_close(&cr);
    return EXIT_OK;
}
