/* cmd_backup.c - `docket backup DEST` (hot, consistent copy, page for page, while
 * appends continue) and `docket restore SRC DIR` (verify the copy, then install it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The files that travel with a ledger: its node key. */
static const char *const also[] = {"node.key", NULL};

int cmd_backup(int argc, char **argv)
{
    const char *ledger = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL}, {"json", NULL, &json}, {NULL, NULL, NULL}};
    const char *usage = "usage: docket backup DEST [--ledger DIR] [--json]\n"
                        "A hot, consistent copy of the ledger, page for page (and its node key),\n"
                        "into the new directory DEST, while appends continue. A backup stopped\n"
                        "part way leaves no data.mdb in DEST; run it again.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 1)
        return cli_usage_error("backup needs one DEST directory");
    const char *dir = cli_ledger_dir(ledger);
    if (dir == NULL)
        return EXIT_USAGE;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(dir, 1, &lg)) != EXIT_OK)
        return rc;
    cli_fill_under_way(1);
    int err = dk_ledger_backup(lg, pos[0], also);
    cli_fill_under_way(0); /* from here on, a whole backup is in DEST (or nothing) */
    dk_ledger_close(lg);
    if (err)
        return cli_dk_fail(err, "backup failed");
    dk_ledger_opts o = {0, 0, 1, 1}; /* the copy, which nothing writes: no lock file */
    dk_head h;
    /* The copy is whole and synced (dk_ledger_backup): a read-back that fails keeps it */
    if ((err = dk_ledger_open(pos[0], &o, &lg)) != 0) {
        char what[4200];
        snprintf(what, sizeof what, "backed up to %s, but the copy does not open", pos[0]);
        return cli_dk_fail(err, what);
    }
    err = dk_ledger_head(lg, &h);
    dk_ledger_close(lg);
    if (err) { /* the copy is faithful: the damage is the ledger's own, kept for its repair */
        char what[4200];
        snprintf(what, sizeof what, "backed up to %s, but the ledger is damaged", pos[0]);
        return cli_dk_fail(err, what);
    }
    char hash[65];
    dk_hex_encode(h.hash, 32, hash);
    if (json) {
        json_t *o2 = json_object();
        json_object_set_new(o2, "dest", cli_json_text(pos[0]));
        json_object_set_new(o2, "seq", json_integer((json_int_t)h.seq));
        json_object_set_new(o2, "hash", cli_json_text(hash));
        cli_print_json(o2);
    } else {
        printf("backed up to %s: head seq %llu hash %s\n", pos[0], (unsigned long long)h.seq, hash);
    }
    return EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
    int npos, json = 0;
    char *pos[8];
    const cli_opt opts[] = {{"json", NULL, &json}, {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket restore SRC DIR [--json]\n"
        "Copies the backup in SRC into DIR (new or empty) and verifies the copy\n"
        "(the whole chain, signatures, checkpoints, rules) before it is moved into\n"
        "place; a copy that does not verify is removed again (exit 3).\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 2)
        return cli_usage_error("restore needs SRC and DIR");
    dk_verify_report rep;
    cli_fill_under_way(1);
    int err = dk_ledger_restore(pos[0], pos[1], also, &rep);
    cli_fill_under_way(0);
    if (err)
        return cli_dk_fail(err, "restore failed");
    if (!rep.ok) {
        fprintf(stderr,
                "docket: restore: the backup is damaged at seq %llu: %s (nothing installed)\n",
                (unsigned long long)rep.seq, rep.reason);
        return EXIT_DAMAGE;
    }
    if (json) {
        json_t *o2 = json_object();
        json_object_set_new(o2, "dest", cli_json_text(pos[1]));
        json_object_set_new(o2, "verified_records", json_integer((json_int_t)rep.checked));
        cli_print_json(o2);
    } else {
        printf("restored %llu verified records into %s\n", (unsigned long long)rep.checked, pos[1]);
    }
    return EXIT_OK;
}
