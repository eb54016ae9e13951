/* cmd_read.c - docket commands that only read records: log, show and head.
 * They open the ledger read-only and print text or one JSON document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* One line of `log`; 0, or DK_ECORRUPT (the line says so) if the record does not decode. */
static int print_record_line(const dk_record *rec)
{
    json_t *o = cli_record_json(rec);
    if (o == NULL) {
        printf("%llu  (damaged record: it does not decode)\n", (unsigned long long)rec->seq);
        return dk_fail(DK_ECORRUPT, "record %llu does not decode: %s", (unsigned long long)rec->seq,
                       dk_errmsg());
    }
    char *data = json_dumps(json_object_get(o, "data"), JSON_COMPACT);
    printf("%-6llu %s  %-14s %-24s %-12s %s\n", (unsigned long long)rec->seq,
           json_string_value(json_object_get(o, "recorded_at")),
           json_string_value(json_object_get(o, "actor")),
           json_string_value(json_object_get(o, "type")),
           json_string_value(json_object_get(o, "case"))[0]
               ? json_string_value(json_object_get(o, "case"))
               : "-",
           data ? data : "");
    free(data);
    json_decref(o);
    return 0;
}

/* 1 if the case has a record, 0 if none, else the error (a dk_err code, never 1). */
static int case_has_events(dk_ledger *lg, const char *case_id)
{
    dk_iter *it;
    dk_record rec;
    int rc = dk_iter_open(lg, 1, case_id, &it);
    if (rc)
        return rc;
    rc = dk_iter_next(it, &rec);
    dk_iter_close(it);
    return rc == 0 ? 1 : rc == DK_ENOTFOUND ? 0 : rc;
}

int cmd_log(int argc, char **argv)
{
    const char *ledger = NULL, *from = NULL, *case_id = NULL, *limit = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL}, {"from", &from, NULL},
                            {"case", &case_id, NULL},  {"limit", &limit, NULL},
                            {"json", NULL, &json},     {NULL, NULL, NULL}};
    const char *usage = "usage: docket log [--from SEQ] [--case C] [--limit N] [--ledger DIR] "
                        "[--json]\n"
                        "Lists records in seq order; --json prints one JSON array.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    uint64_t start = 1, max = UINT64_MAX;
    if (npos)
        return cli_usage_error("log takes no positional arguments");
    if (from && (rc = cli_parse_u64("--from", from, &start)) != EXIT_OK)
        return rc;
    if (limit && (rc = cli_parse_u64("--limit", limit, &max)) != EXIT_OK)
        return rc;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(ledger, 1, &lg)) != EXIT_OK)
        return rc;
    dk_iter *it;
    int err = dk_iter_open(lg, start, case_id, &it);
    if (err) {
        dk_ledger_close(lg);
        return cli_dk_fail(err, "cannot read the ledger");
    }
    json_t *arr = json ? json_array() : NULL;
    dk_record rec;
    uint64_t n = 0;
    int damaged = 0; /* the text listing goes on past a damaged record, then says so */
    char first_damage[DK_ERRMSG_MAX] = "";
    while (n < max && (err = dk_iter_next(it, &rec)) == 0) {
        n++;
        if (!json) {
            if (print_record_line(&rec) != 0 && damaged++ == 0)
                snprintf(first_damage, sizeof first_damage, "%s", dk_errmsg());
            continue;
        }
        json_t *o = cli_record_json(&rec);
        if (o == NULL) {
            err = dk_fail(DK_ECORRUPT, "record %llu does not decode: %s",
                          (unsigned long long)rec.seq, dk_errmsg());
            break;
        }
        json_array_append_new(arr, o);
    }
    dk_iter_close(it);
    /* a case with no events at all is most likely a mistyped id: say so, as history does,
     * rather than list nothing (one with none from --from on lists nothing) */
    int none = 0;
    if (err == DK_ENOTFOUND && n == 0 && case_id) {
        int has = case_has_events(lg, case_id);
        none = has == 0;
        err = has == 0   ? dk_fail(DK_ENOTFOUND, "case '%s' has no events", case_id)
              : has == 1 ? DK_ENOTFOUND
                         : has;
    }
    dk_ledger_close(lg);
    if (none || (err && err != DK_ENOTFOUND)) {
        json_decref(arr);
        return cli_dk_fail(err, none ? "cannot list the case" : "cannot read the ledger");
    }
    if (json)
        cli_print_json(arr);
    if (damaged)
        return cli_damage("%d damaged record%s listed; the first: %s ('docket verify' checks "
                          "the whole ledger)",
                          damaged, damaged > 1 ? "s" : "", first_damage);
    return EXIT_OK;
}

int cmd_show(int argc, char **argv)
{
    const char *ledger = NULL;
    int json = 0, raw = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {
        {"ledger", &ledger, NULL}, {"json", NULL, &json}, {"raw", NULL, &raw}, {NULL, NULL, NULL}};
    const char *usage = "usage: docket show SEQ [--json | --raw] [--ledger DIR]\n"
                        "Shows one record; --raw writes its exact bytes (what the leaf hash "
                        "covers).\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    uint64_t seq;
    if (npos != 1)
        return cli_usage_error("show needs one SEQ (docket show --help)");
    if (json && raw)
        return cli_usage_error("--json and --raw are two different outputs: give one");
    if ((rc = cli_parse_u64("SEQ", pos[0], &seq)) != EXIT_OK)
        return rc;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(ledger, 1, &lg)) != EXIT_OK)
        return rc;
    uint8_t *buf;
    size_t len;
    int err = dk_ledger_get(lg, seq, &buf, &len);
    dk_ledger_close(lg);
    if (err)
        return cli_dk_fail(err, "cannot show the record");
    dk_record rec;
    json_t *o = NULL;
    rc = EXIT_OK;
    if (raw) {
        if (fwrite(buf, 1, len, stdout) != len)
            rc = cli_fail("cannot write the record to stdout");
    } else if (dk_record_decode(buf, len, &rec) != 0 || (o = cli_record_json(&rec)) == NULL) {
        rc = cli_damage("record %llu does not decode: %s", (unsigned long long)seq, dk_errmsg());
    } else if (json) {
        cli_print_json(o);
    } else {
        char *text = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", text ? text : "");
        free(text);
        json_decref(o);
    }
    free(buf);
    return rc;
}

int cmd_head(int argc, char **argv)
{
    const char *ledger = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL}, {"json", NULL, &json}, {NULL, NULL, NULL}};
    const char *usage = "usage: docket head [--ledger DIR] [--json]\n"
                        "Prints the last record's seq, hash and recorded time.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos)
        return cli_usage_error("head takes no positional arguments");
    dk_ledger *lg;
    if ((rc = cli_open_ledger(ledger, 1, &lg)) != EXIT_OK)
        return rc;
    dk_head h;
    int err = dk_ledger_head(lg, &h);
    dk_ledger_close(lg);
    if (err)
        return cli_dk_fail(err, "cannot read the head");
    char hash[65], t[DK_TIME_LEN];
    dk_hex_encode(h.hash, sizeof h.hash, hash);
    dk_time_format(h.recorded_at, t);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)h.seq));
        json_object_set_new(o, "hash", cli_json_text(hash));
        json_object_set_new(o, "recorded_at", cli_json_text(t));
        cli_print_json(o);
    } else {
        printf("seq %llu\nhash %s\nrecorded_at %s\n", (unsigned long long)h.seq, hash, t);
    }
    return EXIT_OK;
}
