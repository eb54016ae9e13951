/* main.c - the docket command-line tool: finds the subcommand and runs it.
 * Each command lives in a cmd_*.c file and is a thin client of libdocket. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_cmd commands[] = {
    {"init", cmd_init, "create a ledger and its first administrator's key"},
    {"keygen", cmd_keygen, "create an actor key file"},
    {"actor", cmd_actor, "enroll, rotate or revoke an actor (admin)"},
    {"append", cmd_append, "sign and append one event"},
    {"log", cmd_log, "list records"},
    {"show", cmd_show, "show one record"},
    {"head", cmd_head, "show the ledger head"},
    {"verify", cmd_verify, "verify the whole chain and every signature"},
    {"case", cmd_casework, "open, assign, status-change, withdraw or close a case"},
    {"decide", cmd_casework, "record a decision (grant, refuse, void) with its rationale"},
    {"leave", cmd_casework, "cancel leave (leave cancel)"},
    {"interview", cmd_casework, "book, reschedule, cancel, attended, no-show"},
    {"error", cmd_casework, "report an error, or correct one (error report|correct)"},
    {"note", cmd_casework, "add a note to a case"},
    {"attach", cmd_casework, "attach a document's hash to a case"},
    {"contact", cmd_casework, "update a case's contact details"},
    {"appeal", cmd_casework, "lodge or decide an appeal"},
    {"undo", cmd_undo, "void one event (event.reverted), with its reason"},
    {"rollback", cmd_rollback, "void a case's events after a time (case.rolled_back)"},
    {"status", cmd_status, "a case's current state"},
    {"history", cmd_history, "a case's events, with who voided what"},
    {"asof", cmd_asof, "a case as the ledger said at a time (asof TIME status CASE)"},
    {"audit", cmd_audit, "audit trail of a case or an actor: signers, roles then, voids"},
    {"checkpoint", cmd_checkpoint, "sign or show a Merkle checkpoint (C2SP signed note)"},
    {"prove", cmd_prove, "inclusion or consistency proof (RFC 6962), as JSON"},
    {"proof", cmd_proof, "verify a proof offline: proof verify --checkpoint ... --pubkey ..."},
    {"backup", cmd_backup, "hot, consistent copy of the ledger while appends continue"},
    {"restore", cmd_restore, "verify a backup, then install it into a new directory"},
    {"views", cmd_views, "views status | rebuild [NAME] | check [NAME] | dump NAME"},
    {"project", cmd_project, "bring the views up to date; --follow keeps following the ledger"},
    {"query", cmd_query, "query status STATUS: cases in a status (by_status view)"},
    {"queue", cmd_queue, "a caseworker's open assigned cases, oldest received first"},
    {"diary", cmd_diary, "a day's interview slots"},
    {"report", cmd_report, "decision counts by case type, outcome, condition and dates"},
    {"errors", cmd_errors, "error reports, open and resolved, with the time to resolve"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: docket COMMAND [OPTIONS]   (docket COMMAND --help for its options)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nThe ledger is --ledger DIR or $DOCKET_LEDGER; key passphrases come from\n"
                 "$DOCKET_PASSPHRASE or the terminal. Exit codes: 0 ok, 1 failed, 2 usage,\n"
                 "3 ledger damaged.\n");
}

int main(int argc, char **argv)
{
    cli_guard_faults();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("docket 0.1.0\n");
        return EXIT_OK;
    }
    if (dk_init() != 0)
        return cli_fail("cannot initialise the crypto library");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    cli_usage_error("unknown command '%s' (docket --help lists them)", argv[1]);
    return EXIT_USAGE;
}
