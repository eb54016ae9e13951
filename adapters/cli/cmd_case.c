/* cmd_case.c - the casework commands: case, decide, interview, error, note,
 * attach, contact, appeal, leave (one table maps options to event data), and
 * undo, rollback, status and history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* How an option becomes a data field. */
typedef enum {
    K_STR,       /* --opt VALUE -> "field": "VALUE" */
    K_LIST,      /* --opt a,b   -> "field": ["a", "b"] */
    K_SEQ,       /* --opt 12    -> "field": 12 */
    K_FLAG_STR,  /* --opt       -> "field": "<value>" */
    K_FLAG_TRUE, /* --opt       -> "field": true */
    K_FLAG_FALSE /* --opt       -> "field": false */
} kind;

typedef struct fmap {
    const char *opt;
    const char *field; /* may be dotted: "applicant.name" */
    kind k;
    const char *value; /* for K_FLAG_STR */
} fmap;

typedef struct verb {
    const char *group; /* "case", "interview", ... or NULL for a one-word command */
    const char *name;
    const char *type; /* event type */
    const fmap *map;
    const char *help;
} verb;

#define FEND                                                                                       \
    {                                                                                              \
        NULL, NULL, K_STR, NULL                                                                    \
    }

static const fmap m_open[] = {{"type", "case_type", K_STR, NULL},
                              {"channel", "channel", K_STR, NULL},
                              {"received-on", "received_on", K_STR, NULL},
                              {"ref", "applicant.ref", K_STR, NULL},
                              {"name", "applicant.name", K_STR, NULL},
                              {"dob", "applicant.date_of_birth", K_STR, NULL},
                              {"nationality", "applicant.nationality", K_STR, NULL},
                              FEND};
static const fmap m_assign[] = {{"to", "caseworker", K_STR, NULL}, FEND};
static const fmap m_status[] = {{"to", "to", K_STR, NULL}, {"reason", "reason", K_STR, NULL}, FEND};
static const fmap m_reason[] = {{"reason", "reason", K_STR, NULL}, FEND};
static const fmap m_decide[] = {{"grant", "outcome", K_FLAG_STR, "granted"},
                                {"refuse", "outcome", K_FLAG_STR, "refused"},
                                {"void", "outcome", K_FLAG_STR, "void"},
                                {"product", "product_type", K_STR, NULL},
                                {"status", "immigration_status", K_STR, NULL},
                                {"nrpf", "no_recourse_to_public_funds", K_FLAG_TRUE, NULL},
                                {"no-nrpf", "no_recourse_to_public_funds", K_FLAG_FALSE, NULL},
                                {"conditions", "conditions", K_LIST, NULL},
                                {"valid-from", "valid_from", K_STR, NULL},
                                {"valid-until", "valid_until", K_STR, NULL},
                                {"rationale", "rationale", K_STR, NULL},
                                {"rules-version", "rules_version", K_STR, NULL},
                                {"evidence", "evidence", K_LIST, NULL},
                                FEND};
static const fmap m_cancel_leave[] = {
    {"reason", "reason", K_STR, NULL}, {"notice-to", "notice_sent_to", K_STR, NULL}, FEND};
static const fmap m_book[] = {{"start", "slot_start", K_STR, NULL},
                              {"end", "slot_end", K_STR, NULL},
                              {"location", "location", K_STR, NULL},
                              {"interviewer", "interviewer", K_STR, NULL},
                              FEND};
static const fmap m_resched[] = {
    {"start", "slot_start", K_STR, NULL},  {"end", "slot_end", K_STR, NULL},
    {"location", "location", K_STR, NULL}, {"interviewer", "interviewer", K_STR, NULL},
    {"reason", "reason", K_STR, NULL},     FEND};
static const fmap m_notes[] = {{"notes", "notes", K_STR, NULL}, FEND};
static const fmap m_err_report[] = {
    {"by", "by", K_STR, NULL}, {"description", "description", K_STR, NULL}, FEND};
static const fmap m_err_correct[] = {
    {"error-ref", "error_ref", K_SEQ, NULL}, {"field", "field", K_STR, NULL},
    {"from", "from", K_STR, NULL},           {"to", "to", K_STR, NULL},
    {"reason", "reason", K_STR, NULL},       FEND};
static const fmap m_note[] = {{"text", "text", K_STR, NULL}, FEND};
static const fmap m_attach[] = {{"sha256", "sha256", K_STR, NULL},
                                {"kind", "kind", K_STR, NULL},
                                {"title", "title", K_STR, NULL},
                                FEND};
static const fmap m_contact[] = {
    {"email", "email", K_STR, NULL}, {"address", "postal_address", K_STR, NULL}, FEND};
static const fmap m_lodge[] = {{"grounds", "grounds", K_STR, NULL}, FEND};
static const fmap m_appeal_decide[] = {{"allowed", "outcome", K_FLAG_STR, "allowed"},
                                       {"dismissed", "outcome", K_FLAG_STR, "dismissed"},
                                       {"reason", "reason", K_STR, NULL},
                                       FEND};

static const verb verbs[] = {
    {"case", "open", "case.opened", m_open,
     "--type visa|euss|asylum|citizenship|family|work|study --channel online|assisted_digital|"
     "paper --received-on DATE --ref REF --name NAME --dob DATE --nationality ISO3"},
    {"case", "assign", "case.assigned", m_assign, "--to CASEWORKER"},
    {"case", "status-change", "case.status_changed", m_status, "--to STATUS --reason TEXT"},
    {"case", "withdraw", "case.withdrawn", m_reason, "--reason TEXT"},
    {"case", "close", "case.closed", m_reason, "--reason TEXT"},
    {NULL, "decide", "decision.recorded", m_decide,
     "--grant|--refuse|--void --product P [--status ILR|ILE|LTR|LTE|PERMIT|COA_IN_TIME_GRANT] "
     "[--nrpf|--no-nrpf] [--conditions c1,c2] [--valid-from DATE] [--valid-until DATE] "
     "--rationale TEXT --rules-version V [--evidence SHA256,...]"},
    {"leave", "cancel", "leave.cancelled", m_cancel_leave, "--reason TEXT --notice-to ADDRESS"},
    {"interview", "book", "interview.booked", m_book,
     "--start TIME --end TIME --location PLACE --interviewer ACTOR"},
    {"interview", "reschedule", "interview.rescheduled", m_resched,
     "--start TIME --end TIME [--location PLACE] [--interviewer ACTOR] [--reason TEXT]"},
    {"interview", "cancel", "interview.cancelled", m_reason, "--reason TEXT"},
    {"interview", "attended", "interview.attended", m_notes, "[--notes TEXT]"},
    {"interview", "no-show", "interview.no_show", m_notes, "[--notes TEXT]"},
    {"error", "report", "error.reported", m_err_report, "--by WHO --description TEXT"},
    {"error", "correct", "status.corrected", m_err_correct,
     "--error-ref SEQ --field status|assignee|applicant_name|date_of_birth|nationality --from X "
     "--to Y --reason TEXT"},
    {NULL, "note", "note.added", m_note, "--text TEXT"},
    {NULL, "attach", "document.attached", m_attach, "--sha256 HEX --kind KIND --title TITLE"},
    {NULL, "contact", "contact.updated", m_contact, "[--email EMAIL] [--address ADDRESS]"},
    {"appeal", "lodge", "appeal.lodged", m_lodge, "--grounds TEXT"},
    {"appeal", "decide", "appeal.decided", m_appeal_decide,
     "--allowed|--dismissed [--reason TEXT]"},
};
#define NVERBS   (sizeof verbs / sizeof verbs[0])
#define MAX_OPTS 24

static const char *common_help =
    "  common: --key KEYFILE [--cosign KEYFILE] [--expect N] [--cmd HEX32] [--eff TIME]\n"
    "          [--ledger DIR] [--json]\n";

/* Set a (dotted) field in obj. */
static void set_path(json_t *obj, const char *path, json_t *val)
{
    const char *dot = strchr(path, '.');
    if (dot == NULL) {
        json_object_set_new(obj, path, val);
        return;
    }
    char head[64];
    snprintf(head, sizeof head, "%.*s", (int)(dot - path), path);
    json_t *sub = json_object_get(obj, head);
    if (sub == NULL) {
        sub = json_object();
        json_object_set_new(obj, head, sub);
    }
    set_path(sub, dot + 1, val);
}

static void usage_of(const verb *v, char *out, size_t cap)
{
    snprintf(out, cap, "usage: docket %s%s%s CASE %s\n%s(appends %s)\n", v->group ? v->group : "",
             v->group ? " " : "", v->name, v->help, common_help, v->type);
}

static int run_verb(const verb *v, int argc, char **argv)
{
    const char *ledger = NULL, *key = NULL, *cosign = NULL, *expect = NULL, *cmd = NULL,
               *eff = NULL;
    int json = 0, npos;
    const char *vals[MAX_OPTS] = {0};
    int flags[MAX_OPTS] = {0};
    cli_opt opts[MAX_OPTS + 8];
    size_t n = 0;
    for (const fmap *f = v->map; f->opt; f++, n++) {
        int is_flag = f->k == K_FLAG_STR || f->k == K_FLAG_TRUE || f->k == K_FLAG_FALSE;
        opts[n] = (cli_opt){f->opt, is_flag ? NULL : &vals[n], is_flag ? &flags[n] : NULL};
    }
    opts[n++] = (cli_opt){"ledger", &ledger, NULL};
    opts[n++] = (cli_opt){"key", &key, NULL};
    opts[n++] = (cli_opt){"cosign", &cosign, NULL};
    opts[n++] = (cli_opt){"expect", &expect, NULL};
    opts[n++] = (cli_opt){"cmd", &cmd, NULL};
    opts[n++] = (cli_opt){"eff", &eff, NULL};
    opts[n++] = (cli_opt){"json", NULL, &json};
    opts[n] = (cli_opt){NULL, NULL, NULL};
    char usage[1024];
    usage_of(v, usage, sizeof usage);
    char *pos[8];
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 1)
        return cli_usage_error("%s needs one CASE (see --help)", v->type);
    cli_event extra = {0};
    if (expect) {
        if ((rc = cli_parse_u64("--expect", expect, &extra.expect)) != EXIT_OK)
            return rc;
        extra.has_expect = 1;
    }
    if (eff) {
        if (dk_time_parse(eff, &extra.eff) != 0)
            return cli_usage_error("--eff wants an RFC 3339 time, not '%s'", eff);
        extra.has_eff = 1;
    }
    extra.cmd_hex = cmd;
    json_t *data = json_object();
    size_t i = 0;
    for (const fmap *f = v->map; f->opt; f++, i++) {
        uint64_t seq;
        switch (f->k) {
        case K_STR:
            if (vals[i])
                set_path(data, f->field, json_string(vals[i]));
            break;
        case K_LIST:
            if (vals[i]) {
                json_t *arr = json_array();
                if ((rc = cli_split_list(f->opt, vals[i], arr)) != EXIT_OK) {
                    json_decref(arr);
                    json_decref(data);
                    return rc;
                }
                set_path(data, f->field, arr);
            }
            break;
        case K_SEQ:
            if (vals[i]) {
                if ((rc = cli_parse_u64(f->opt, vals[i], &seq)) != EXIT_OK) {
                    json_decref(data);
                    return rc;
                }
                set_path(data, f->field, json_integer((json_int_t)seq));
            }
            break;
        case K_FLAG_STR:
        case K_FLAG_TRUE:
        case K_FLAG_FALSE:
            if (!flags[i])
                break;
            if (json_object_get(data, f->field)) {
                json_decref(data);
                return cli_usage_error("--%s conflicts with another option setting %s", f->opt,
                                       f->field);
            }
            set_path(data, f->field,
                     f->k == K_FLAG_STR ? json_string(f->value)
                                        : json_boolean(f->k == K_FLAG_TRUE));
            break;
        }
    }
    return cli_append_json(ledger, key, cosign, v->type, pos[0], data, &extra, json);
}

int cmd_casework(int argc, char **argv)
{
    /* argv[0] is the group ("case") or the one-word command ("decide"). */
    for (size_t i = 0; i < NVERBS; i++) {
        const verb *v = &verbs[i];
        if (v->group == NULL && strcmp(argv[0], v->name) == 0)
            return run_verb(v, argc, argv);
        if (v->group && strcmp(argv[0], v->group) == 0 && argc > 1 && strcmp(argv[1], v->name) == 0)
            return run_verb(v, argc - 1, argv + 1);
    }
    char list[1024];
    size_t n = 0;
    list[0] = 0;
    for (size_t i = 0; i < NVERBS && n < sizeof list; i++)
        if (verbs[i].group && strcmp(verbs[i].group, argv[0]) == 0)
            n += (size_t)snprintf(list + n, sizeof list - n, " %s", verbs[i].name);
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: docket %s {%s } CASE ...   (docket %s VERB --help)\n", argv[0], list,
               argv[0]);
        return EXIT_OK;
    }
    return cli_usage_error("docket %s needs one of:%s", argv[0], list);
}

/* The canonical RFC 3339 form of a time option. */
static int norm_time(const char *opt, const char *in, char out[DK_TIME_LEN])
{
    int64_t us;
    if (in == NULL)
        return cli_usage_error("%s is required: an RFC 3339 time", opt);
    if (dk_time_parse(in, &us) != 0)
        return cli_usage_error("%s wants an RFC 3339 time, not '%s'", opt, in);
    dk_time_format(us, out);
    return EXIT_OK;
}

int cmd_undo(int argc, char **argv)
{
    const char *ledger = NULL, *key = NULL, *cosign = NULL, *reason = NULL,
               *code = "caseworker_error", *cmd = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},    {"key", &key, NULL},
                            {"cosign", &cosign, NULL},    {"reason", &reason, NULL},
                            {"reason-code", &code, NULL}, {"cmd", &cmd, NULL},
                            {"json", NULL, &json},        {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket undo SEQ --reason TEXT --key KEYFILE [--cosign KEYFILE]\n"
        "                   [--reason-code caseworker_error|duplicate|wrong_case|data_entry|fraud|"
        "court_order|other] [--ledger DIR] [--json]\n"
        "Appends event.reverted, which voids event SEQ (undoing an undo restores it).\n"
        "Voiding a decision or a leave cancellation needs --cosign by a senior caseworker.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    uint64_t seq;
    if (npos != 1)
        return cli_usage_error("undo needs one SEQ (docket undo --help)");
    if ((rc = cli_parse_u64("SEQ", pos[0], &seq)) != EXIT_OK)
        return rc;
    if (reason == NULL)
        return cli_usage_error("undo needs --reason: every change keeps why");
    dk_ledger *lg;
    if ((rc = cli_open_ledger(ledger, 1, &lg)) != EXIT_OK)
        return rc;
    uint8_t *raw;
    size_t len;
    int err = dk_ledger_get(lg, seq, &raw, &len);
    dk_ledger_close(lg);
    if (err)
        return cli_dk_fail(err, "cannot undo");
    dk_record rec;
    dk_event ev;
    if (dk_record_decode(raw, len, &rec) != 0 || dk_event_decode(rec.body, rec.body_len, &ev)) {
        int bad =
            cli_damage("record %llu does not decode: %s", (unsigned long long)seq, dk_errmsg());
        free(raw);
        return bad;
    }
    uint8_t hash[DK_HASH_BYTES];
    char hex[2 * DK_HASH_BYTES + 1];
    dk_leaf_hash(raw, len, hash);
    dk_hex_encode(hash, sizeof hash, hex);
    char case_id[DK_CASE_MAX + 1];
    snprintf(case_id, sizeof case_id, "%s", ev.case_id);
    free(raw);
    if (case_id[0] == 0)
        return cli_fail("record %llu is a system event (%s), not casework; actor changes are "
                        "undone with `docket actor`",
                        (unsigned long long)seq, ev.type);
    json_t *data = json_object();
    json_object_set_new(data, "target_seq", json_integer((json_int_t)seq));
    json_object_set_new(data, "target_hash", json_string(hex));
    json_object_set_new(data, "reason_code", json_string(code));
    json_object_set_new(data, "reason", json_string(reason));
    cli_event extra = {0};
    extra.cmd_hex = cmd;
    return cli_append_json(ledger, key, cosign, "event.reverted", case_id, data, &extra, json);
}

int cmd_rollback(int argc, char **argv)
{
    const char *ledger = NULL, *key = NULL, *cosign = NULL, *reason = NULL, *to = NULL,
               *code = "caseworker_error", *cmd = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {
        {"ledger", &ledger, NULL}, {"key", &key, NULL},   {"cosign", &cosign, NULL},
        {"reason", &reason, NULL}, {"to", &to, NULL},     {"reason-code", &code, NULL},
        {"cmd", &cmd, NULL},       {"json", NULL, &json}, {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket rollback CASE --to TIME --reason TEXT --key KEYFILE --cosign KEYFILE\n"
        "                       [--reason-code CODE] [--ledger DIR] [--json]\n"
        "Appends case.rolled_back, which voids every event of CASE recorded after TIME.\n"
        "Always needs --cosign by a senior caseworker other than the author.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 1)
        return cli_usage_error("rollback needs one CASE (docket rollback --help)");
    if (reason == NULL)
        return cli_usage_error("rollback needs --reason: every change keeps why");
    char t[DK_TIME_LEN];
    if ((rc = norm_time("--to", to, t)) != EXIT_OK)
        return rc;
    json_t *data = json_object();
    json_object_set_new(data, "to_time", json_string(t));
    json_object_set_new(data, "reason_code", json_string(code));
    json_object_set_new(data, "reason", json_string(reason));
    cli_event extra = {0};
    extra.cmd_hex = cmd;
    return cli_append_json(ledger, key, cosign, "case.rolled_back", pos[0], data, &extra, json);
}
