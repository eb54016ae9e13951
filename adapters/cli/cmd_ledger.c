/* cmd_ledger.c - docket commands that write: init, keygen, actor and append.
 * Each parses its options, loads a key, and appends through libdocket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int save_new_key(const char *id, const char *path, dk_key **out)
{
    *out = NULL;
    int rc = dk_key_generate(id, out);
    if (rc)
        return cli_dk_fail(rc, "cannot create the key");
    char *pass = cli_passphrase("New passphrase for the key: ", 1);
    if (pass == NULL) {
        dk_key_free(*out);
        *out = NULL;
        return EXIT_USAGE;
    }
    rc = dk_key_save(*out, path, pass);
    cli_passphrase_free(pass);
    if (rc) {
        dk_key_free(*out);
        *out = NULL;
        return cli_dk_fail(rc, "cannot save the key");
    }
    return EXIT_OK;
}

int cmd_init(int argc, char **argv)
{
    const char *ledger = NULL, *admin = NULL, *key_out = NULL, *name = "docket";
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL},   {"admin", &admin, NULL},
                            {"key-out", &key_out, NULL}, {"name", &name, NULL},
                            {"json", NULL, &json},       {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket init --ledger DIR --admin ID --key-out FILE [--name NAME] [--json]\n"
        "Creates a new ledger in DIR whose genesis record enrols administrator ID.\n"
        "The administrator's key is written to FILE (mode 0600), sealed with\n"
        "$DOCKET_PASSPHRASE or a passphrase asked on the terminal.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    const char *dir = cli_ledger_dir(ledger);
    if (dir == NULL)
        return EXIT_USAGE;
    if (npos || admin == NULL || key_out == NULL)
        return cli_usage_error("init needs --admin ID and --key-out FILE (docket init --help)");
    if (access(key_out, F_OK) == 0)
        return cli_fail("key file '%s' already exists; choose another --key-out", key_out);
    /* Only a directory with no LMDB store and no node key: never take over another store
     * (the views', a backup's) or half of one. */
    char data[4096], node[4096], lock[4096];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
    snprintf(node, sizeof node, "%s/node.key", dir);
    if (access(data, F_OK) == 0)
        return cli_fail("'%s' already holds an LMDB store (data.mdb); init needs a new or empty "
                        "directory",
                        dir);
    if (access(node, F_OK) == 0)
        return cli_fail("'%s' already holds a node.key; init needs a new or empty directory", dir);
    int had_lock = access(lock, F_OK) == 0; /* left by another store: not init's to remove */
    int had_dir = access(dir, F_OK) == 0;
    /* every passphrase is asked before anything is written: an interrupt at a prompt
     * (Ctrl-C) leaves no half-made ledger behind (helper-70) */
    char *node_pass = cli_node_passphrase();
    if (node_pass == NULL)
        return EXIT_USAGE;
    dk_ledger *lg = NULL;
    dk_key *key;
    if ((rc = save_new_key(admin, key_out, &key)) != EXIT_OK) {
        cli_passphrase_free(node_pass);
        return rc;
    }
    int err = dk_ledger_init(dir, name, key, NULL, &lg);
    if (err)
        rc = cli_dk_fail(err, "cannot create the ledger");
    else if ((rc = cli_create_node_key(lg, dir, node_pass)) != EXIT_OK)
        dk_ledger_close(lg);
    cli_passphrase_free(node_pass);
    if (rc != EXIT_OK) { /* no half-made ledger: what this init created goes */
        dk_key_free(key);
        unlink(node);
        unlink(data);
        if (!had_lock)
            unlink(lock);
        if (!had_dir)
            rmdir(dir);
        unlink(key_out);
        return rc;
    }
    dk_head h;
    char id[33], nm[65], hash[65];
    if (dk_ledger_head(lg, &h) == 0 && dk_ledger_info(lg, id, nm) == 0) {
        dk_hex_encode(h.hash, sizeof h.hash, hash);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "ledger_id", cli_json_text(id));
            json_object_set_new(o, "name", cli_json_text(nm));
            json_object_set_new(o, "admin", cli_json_text(admin));
            json_object_set_new(o, "seq", json_integer((json_int_t)h.seq));
            json_object_set_new(o, "hash", cli_json_text(hash));
            cli_print_json(o);
        } else {
            printf("created ledger '%s' (%s) in %s\nadministrator %s, key in %s\n", nm, id, dir,
                   admin, key_out);
        }
    }
    dk_ledger_close(lg);
    dk_key_free(key);
    return EXIT_OK;
}

int cmd_keygen(int argc, char **argv)
{
    const char *id = NULL, *out = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {
        {"id", &id, NULL}, {"out", &out, NULL}, {"json", NULL, &json}, {NULL, NULL, NULL}};
    const char *usage = "usage: docket keygen --id ID --out FILE [--json]\n"
                        "Creates a key file for actor ID (mode 0600, sealed with a passphrase)\n"
                        "and prints its public key in base64, for `docket actor enroll`.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos || id == NULL || out == NULL)
        return cli_usage_error("keygen needs --id ID and --out FILE (docket keygen --help)");
    dk_key *key;
    if ((rc = save_new_key(id, out, &key)) != EXIT_OK)
        return rc;
    char b64[64];
    dk_b64_encode(dk_key_public(key), DK_PUBKEY_BYTES, b64);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "id", cli_json_text(id));
        json_object_set_new(o, "pubkey", cli_json_text(b64));
        cli_print_json(o);
    } else {
        printf("%s\n", b64);
    }
    dk_key_free(key);
    return EXIT_OK;
}

static int split_roles(const char *roles, json_t *arr)
{
    int rc = cli_split_list("roles", roles, arr);
    if (rc == EXIT_OK && json_array_size(arr) == 0)
        return cli_usage_error("--roles needs at least one role");
    for (size_t i = 0; rc == EXIT_OK && i < json_array_size(arr); i++) {
        const char *r = json_string_value(json_array_get(arr, i));
        if (dk_role_parse(r, strlen(r)) == 0)
            return cli_usage_error("unknown role '%s' (roles: admin, caseworker, "
                                   "senior_caseworker, auditor, checker, migration)",
                                   r);
    }
    return rc;
}

int cmd_actor(int argc, char **argv)
{
    const char *ledger = NULL, *key = NULL, *id = NULL, *pubkey = NULL, *roles = NULL,
               *reason = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL}, {"key", &key, NULL},
                            {"id", &id, NULL},         {"pubkey", &pubkey, NULL},
                            {"roles", &roles, NULL},   {"reason", &reason, NULL},
                            {"json", NULL, &json},     {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket actor enroll --key ADMIN_KEYFILE --id ID --pubkey BASE64 --roles r1,r2\n"
        "       docket actor rotate --key ADMIN_KEYFILE --id ID --pubkey BASE64\n"
        "       docket actor revoke --key ADMIN_KEYFILE --id ID [--reason TEXT]\n"
        "  [--ledger DIR] [--json]\n"
        "Roles: admin, caseworker, senior_caseworker, auditor, checker, migration.\n"
        "Each change is an event signed by an administrator.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 1)
        return cli_usage_error("actor needs one of enroll, rotate, revoke (docket actor --help)");
    if (id == NULL)
        return cli_usage_error("actor %s needs --id ID", pos[0]);
    /* an option the action does not take is refused, not dropped (helper-70: revoke took
     * --roles and --pubkey and ignored them) */
    int enrolls = strcmp(pos[0], "enroll") == 0, rotates = strcmp(pos[0], "rotate") == 0;
    int revokes = strcmp(pos[0], "revoke") == 0;
    const char *extra = revokes && roles                 ? "--roles"
                        : revokes && pubkey              ? "--pubkey"
                        : rotates && roles               ? "--roles"
                        : (enrolls || rotates) && reason ? "--reason"
                                                         : NULL;
    if (extra)
        return cli_usage_error("actor %s takes no %s", pos[0], extra);
    json_t *data = json_object();
    json_object_set_new(data, "id", json_string(id));
    const char *type;
    if (enrolls || rotates) {
        int enroll = pos[0][0] == 'e';
        type = enroll ? "actor.enrolled" : "actor.key_rotated";
        if (pubkey == NULL || (enroll && roles == NULL)) {
            json_decref(data);
            return cli_usage_error("actor %s needs --pubkey BASE64%s", pos[0],
                                   enroll ? " and --roles r1,r2" : "");
        }
        json_object_set_new(data, "pubkey", json_string(pubkey));
        if (enroll) {
            json_t *arr = json_array();
            json_object_set_new(data, "roles", arr);
            if ((rc = split_roles(roles, arr)) != EXIT_OK) {
                json_decref(data);
                return rc;
            }
        }
    } else if (strcmp(pos[0], "revoke") == 0) {
        type = "actor.revoked";
        json_object_set_new(data, "reason", json_string(reason ? reason : ""));
    } else {
        json_decref(data);
        return cli_usage_error("unknown actor action '%s' (enroll, rotate, revoke)", pos[0]);
    }
    return cli_append_json(ledger, key, NULL, type, "", data, NULL, json);
}

int cmd_append(int argc, char **argv)
{
    const char *ledger = NULL, *key = NULL, *type = NULL, *case_id = NULL, *data = NULL,
               *expect = NULL, *cmd = NULL, *eff = NULL, *cosign = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {
        {"ledger", &ledger, NULL}, {"key", &key, NULL},   {"type", &type, NULL},
        {"case", &case_id, NULL},  {"data", &data, NULL}, {"expect", &expect, NULL},
        {"cmd", &cmd, NULL},       {"eff", &eff, NULL},   {"json", NULL, &json},
        {"cosign", &cosign, NULL}, {NULL, NULL, NULL}};
    const char *usage =
        "usage: docket append --key KEYFILE --type T --case C --data JSON\n"
        "                     [--expect N] [--cmd HEX32] [--eff TIME] [--ledger DIR] [--json]\n"
        "Signs one event with KEYFILE's actor and appends it.\n"
        "  --expect N   refuse unless the case has exactly N events (optimistic concurrency)\n"
        "  --cmd HEX32  command id: a retry with the same id appends once\n"
        "  --eff TIME   effective time (RFC 3339), for backdated facts\n"
        "  --cosign KEYFILE  a second signature (four eyes); its passphrase from\n"
        "               $DOCKET_COSIGN_PASSPHRASE or the terminal\n"
        "--json prints {\"seq\": N, \"duplicate\": true|false}.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos || type == NULL || case_id == NULL || data == NULL)
        return cli_usage_error("append needs --type, --case and --data (docket append --help)");
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
    json_error_t jerr;
    json_t *obj = json_loads(data, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL)
        return cli_usage_error("--data is not valid JSON: %s at line %d column %d", jerr.text,
                               jerr.line, jerr.column);
    return cli_append_json(ledger, key, cosign, type, case_id, obj, &extra, json);
}
