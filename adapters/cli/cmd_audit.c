/* cmd_audit.c - `docket audit case|actor`: who did what, with which roles and
 * keys as they stood then, whether each signature verifies, and what voided it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "docket/replay.h"

typedef struct audit_out {
    int json;
    json_t *arr;
    size_t bad; /* signers not enrolled then or signatures that fail */
} audit_out;

static int emit(void *ud, const dk_audit_entry *e)
{
    audit_out *o = ud;
    char t[DK_TIME_LEN];
    dk_time_format(e->rec->recorded_at, t);
    json_t *signers = json_array();
    for (size_t i = 0; i < e->nsigners; i++) {
        const dk_audit_signer *s = &e->signers[i];
        char roles[128];
        dk_roles_format(s->roles, roles, sizeof roles);
        json_t *so = json_object();
        json_object_set_new(so, "actor", cli_json_text(s->actor));
        json_object_set_new(so, "roles", cli_json_text(roles));
        json_object_set_new(so, "enrolled", json_boolean(s->enrolled));
        json_object_set_new(so, "signature_valid", json_boolean(s->valid));
        json_array_append_new(signers, so);
        o->bad += !s->enrolled || !s->valid;
    }
    json_t *r = json_object();
    json_object_set_new(r, "seq", json_integer((json_int_t)e->rec->seq));
    json_object_set_new(r, "recorded_at", cli_json_text(t));
    json_object_set_new(r, "type", cli_json_text(e->ev.type));
    json_object_set_new(r, "case", e->ev.case_id[0] ? cli_json_text(e->ev.case_id) : json_null());
    json_object_set_new(r, "actor", cli_json_text(e->ev.actor));
    if (e->ev.has_eff) {
        dk_time_format(e->ev.eff, t);
        json_object_set_new(r, "eff", cli_json_text(t));
    }
    json_object_set_new(r, "signers", signers);
    json_object_set_new(r, "voided_by",
                        e->voided_by ? json_integer((json_int_t)e->voided_by) : json_null());
    if (e->voided_by) {
        json_object_set_new(r, "void_reason_code", cli_json_text(e->void_reason_code));
        json_object_set_new(r, "void_reason", cli_json_text(e->void_reason));
    }
    if (o->json) {
        json_array_append_new(o->arr, r);
        return 0;
    }
    printf("%-6llu %s  %-22s %-12s", (unsigned long long)e->rec->seq,
           json_string_value(json_object_get(r, "recorded_at")), e->ev.type,
           e->ev.case_id[0] ? e->ev.case_id : "-");
    for (size_t i = 0; i < json_array_size(signers); i++) {
        json_t *so = json_array_get(signers, i);
        printf(" %s%s(%s)%s", i ? "+" : "", json_string_value(json_object_get(so, "actor")),
               json_string_value(json_object_get(so, "roles")),
               !json_is_true(json_object_get(so, "enrolled"))          ? " NOT-ENROLLED"
               : !json_is_true(json_object_get(so, "signature_valid")) ? " BAD-SIGNATURE"
                                                                       : " sig-ok");
    }
    if (e->voided_by)
        printf("  [voided by seq %llu: %s: %s]", (unsigned long long)e->voided_by,
               e->void_reason_code, e->void_reason);
    putchar('\n');
    json_decref(r);
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    const char *ledger = NULL, *from = NULL, *to = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},
                            {"json", NULL, &json},
                            {"from", &from, NULL},
                            {"to", &to, NULL},
                            {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket audit case CASE [--json]\n"
        "       docket audit actor ACTOR [--from TIME] [--to TIME] [--json]\n"
        "Every event with its seq, time, signers and their roles as enrolled then, whether\n"
        "each signature verifies against the key the signer had then, and what voided it\n"
        "and why. Exit 3 if any signer was not enrolled or any signature fails.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 2)
        return cli_usage_error("audit needs 'case CASE' or 'actor ACTOR'");
    int is_case = strcmp(pos[0], "case") == 0;
    if (!is_case && strcmp(pos[0], "actor") != 0)
        return cli_usage_error("audit: unknown subject '%s' (case or actor; audits of status "
                               "checks come with the status API)",
                               pos[0]);
    if (is_case && (from || to))
        return cli_usage_error("audit case takes no --from/--to");
    int64_t t0 = INT64_MIN, t1 = INT64_MAX;
    if ((from && (rc = cli_parse_time("--from", from, 0, &t0)) != EXIT_OK) ||
        (to && (rc = cli_parse_time("--to", to, 1, &t1)) != EXIT_OK))
        return rc;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(ledger, 1, &lg)) != EXIT_OK)
        return rc;
    audit_out o = {json, json ? json_array() : NULL, 0};
    int err = is_case ? dk_audit_case(lg, pos[1], emit, &o)
                      : dk_audit_actor(lg, pos[1], t0, t1, emit, &o);
    dk_ledger_close(lg);
    if (err) {
        json_decref(o.arr);
        return cli_dk_fail(err, "audit failed");
    }
    if (json)
        cli_print_json(o.arr);
    if (o.bad) {
        fprintf(stderr, "docket: audit: %zu signer(s) not enrolled or signature(s) failing\n",
                o.bad);
        return EXIT_DAMAGE;
    }
    return EXIT_OK;
}
