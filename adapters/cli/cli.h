/* cli.h - what the docket CLI's command files share: exit codes, error
 * reporting, the ledger and key options, and record-to-JSON formatting. */
#ifndef DOCKET_CLI_H
#define DOCKET_CLI_H

#include <stdint.h>

#include <jansson.h>

#include "common.h"
#include "docket/docket.h"

/* Exit codes (docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,   /* the command ran and failed: rejected event, missing record, I/O */
    EXIT_USAGE = 2,  /* bad arguments or options */
    EXIT_DAMAGE = 3, /* verify found the ledger damaged or tampered with */
};

typedef struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_cmd;

/* Report a fault (SIGSEGV, SIGBUS) in liblmdb's code or on an LMDB file's mapping, and
 * LMDB's assertion aborts, as likely page damage (exit 3, with what to run) instead of
 * dying bare; any other fault or signal goes on as before (faults.c). Not when
 * $DOCKET_NO_FAULT_GUARD is set to any non-empty value. */
void cli_guard_faults(void);
/* A backup or restore is (on) or is no longer (0) under way: should LMDB damage stop it,
 * the message says what that leaves (only its stage, which the next run removes). */
void cli_fill_under_way(int on);

/* Print "docket: <msg>" to stderr and return EXIT_USAGE / EXIT_FAIL. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, returning EXIT_DAMAGE: the ledger or the views hold damage. */
int cli_damage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a failed library call: "docket: <what>: <dk_errmsg() or strerror>"; EXIT_DAMAGE
 * for DK_ECORRUPT, else EXIT_FAIL. */
int cli_dk_fail(int err, const char *what);
/* The exit code of a failed library call: EXIT_DAMAGE for DK_ECORRUPT, else EXIT_FAIL. */
int cli_exit_code(int err);

/* The ledger directory: the --ledger value, else $DOCKET_LEDGER, else NULL
 * after printing a usage error. */
const char *cli_ledger_dir(const char *opt);
int cli_open_ledger(const char *opt, int read_only, dk_ledger **out);
/* The passphrase: $DOCKET_PASSPHRASE, else asked on the terminal (twice if
 * `confirm`). Returns a malloc'd string or NULL after printing an error. */
char *cli_passphrase(const char *prompt, int confirm);
void cli_passphrase_free(char *p);
int cli_load_key(const char *path, dk_key **out);
/* A co-signer's key: passphrase from $DOCKET_COSIGN_PASSPHRASE or the terminal. */
int cli_load_cosign_key(const char *path, dk_key **out);

/* One option of a command: `--name VALUE` (str set) or a `--name` flag. */
typedef struct cli_opt {
    const char *name;
    const char **str;
    int *flag;
} cli_opt;
#define CLI_CONTINUE (-1)
/* Parse argv[1..] against opts (NULL-name terminated). Positional arguments
 * are left in pos[0..*npos). --help prints `usage` and returns EXIT_OK; a bad
 * option prints why and returns EXIT_USAGE; otherwise CLI_CONTINUE. */
int cli_parse(int argc, char **argv, const cli_opt *opts, const char *usage, int *npos, char **pos,
              int maxpos);
#define CLI_NPOS(pos) ((int)(sizeof(pos) / sizeof((pos)[0])))

/* Parse a time: RFC 3339, a date YYYY-MM-DD (its first or, with end_of_day,
 * its last microsecond, UTC) or "now" (INT64_MAX). Prints a usage error
 * naming `opt` and returns EXIT_USAGE if it is none of those. */
int cli_parse_time(const char *opt, const char *s, int end_of_day, int64_t *t);

/* Read a checkpoint (a signed note, or `checkpoint --json` output) and open
 * it with `pubkey` (verifier key or base64 Ed25519 key). Prints why not. */
int cli_load_checkpoint(const char *path, const char *pubkey, dk_checkpoint *cp);

/* Parse a decimal u64 option value; prints a usage error naming `opt`. */
int cli_parse_u64(const char *opt, const char *s, uint64_t *out);
/* Text (a path, or what a view or the ledger holds) as a JSON string that is never left
 * out: bytes that are not UTF-8 shown as U+FFFD. NULL for NULL, as json_string(). */
json_t *cli_json_text(const char *s);
/* "a,b,c" (a folded state's condition list) as a JSON array of strings. */
json_t *cli_csv_json(const char *csv);
/* Append the comma-separated elements of csv to arr as strings; a usage error (EXIT_USAGE)
 * names an empty or repeated element. */
int cli_split_list(const char *opt, const char *csv, json_t *arr);

/* Build, sign and append one event with `key` as author. data is a canonical
 * data map. Prints the result (text or JSON). Returns an exit code. */
typedef struct cli_event {
    const char *type;
    const char *case_id;
    const uint8_t *data;
    size_t data_len;
    int has_expect;
    uint64_t expect;
    int has_eff;
    int64_t eff;
    const char *cmd_hex;  /* NULL for a random command id */
    const dk_key *cosign; /* a second signer (four eyes), or NULL */
} cli_event;
int cli_append_event(dk_ledger *lg, const dk_key *key, const cli_event *ce, int json);

/* Open the ledger, load KEYFILE (and COSIGNFILE if not NULL), encode the JSON
 * object `data` (consumed) and append it as above. Returns an exit code. */
int cli_append_json(const char *ledger, const char *keyfile, const char *cosignfile,
                    const char *type, const char *case_id, json_t *data, const cli_event *extra,
                    int json);

/* A record as a JSON object (seq, recorded_at, hash, prev, type, case, actor,
 * at, eff, cmd, expect, data, sigs). NULL if it does not decode. */
json_t *cli_record_json(const dk_record *rec);
/* Print a JSON value to stdout, indented, with a newline; then free it. */
void cli_print_json(json_t *v);

/* Command entry points. */
int cmd_init(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_actor(int argc, char **argv);
int cmd_append(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_head(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_casework(int argc, char **argv); /* case, decide, interview, error, note, ... */
int cmd_undo(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_asof(int argc, char **argv);
/* Make the view commands (query, report) answer as of time t, from views
 * rebuilt in a scratch directory (cmd_views.c). */
void cli_views_as_of(int64_t t);
int cmd_audit(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_prove(int argc, char **argv);
int cmd_proof(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_views(int argc, char **argv);   /* views status|rebuild|check|dump */
int cmd_project(int argc, char **argv); /* project [--follow] */
int cmd_query(int argc, char **argv);   /* query status STATUS */
int cmd_queue(int argc, char **argv);
int cmd_diary(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_errors(int argc, char **argv);
/* The node key's passphrase, asked twice on a terminal (or DOCKET_PASSPHRASE); NULL, said
 * why, if none. */
char *cli_node_passphrase(void);
/* Create DIR/node.key sealed with `pass` (NULL: asked) and record its public key in the
 * ledger. */
int cli_create_node_key(dk_ledger *lg, const char *dir, const char *pass);

#endif
