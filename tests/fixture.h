/* fixture.h - builders shared by tests and benchmarks: ledgers with enrolled
 * actors, and signed event bodies made without the CLI. */
#ifndef DOCKET_TEST_FIXTURE_H
#define DOCKET_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "docket/docket.h"

/* A signed append ready for dk_ledger_append: owns its body. */
typedef struct fx_event {
    uint8_t *body;
    size_t body_len;
    dk_sig sig;
    dk_append_req req;
} fx_event;

static inline void fx_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* Sign a body made of the given fields. `n` seeds the command id (the same
 * n gives the same cmd). data: canonical msgpack map, or NULL for a note's
 * {"text": "note <n>"}. */
static inline int fx_make(fx_event *fe, const dk_key *key, const char *type, const char *case_id,
                          uint64_t n, const uint8_t *data, size_t data_len, const uint64_t *expect)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    if (data == NULL) { /* {"text": "note <n>"}: a note.added */
        char text[40];
        snprintf(text, sizeof text, "note %llu", (unsigned long long)n);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        fx_pack_str(&pk, "text");
        fx_pack_str(&pk, text);
        data = (const uint8_t *)sb.data;
        data_len = sb.size;
    }
    dk_event ev;
    memset(&ev, 0, sizeof ev);
    ev.v = DK_EVENT_VERSION;
    snprintf(ev.type, sizeof ev.type, "%s", type);
    snprintf(ev.case_id, sizeof ev.case_id, "%s", case_id);
    snprintf(ev.actor, sizeof ev.actor, "%s", dk_key_id(key));
    ev.at = 1795514400000000 + (int64_t)n;
    for (int i = 0; i < 8; i++)
        ev.cmd[i] = (uint8_t)(n >> (56 - 8 * i)); /* in order, as dk_cmd_new's are */
    memcpy(ev.cmd + 8, "fixture!", 8);
    if (expect) {
        ev.has_expect = 1;
        ev.expect = *expect;
    }
    ev.data = data;
    ev.data_len = data_len;
    memset(fe, 0, sizeof *fe);
    int rc = dk_event_encode(&ev, &fe->body, &fe->body_len);
    msgpack_sbuffer_destroy(&sb);
    if (rc)
        return rc;
    snprintf(fe->sig.actor, sizeof fe->sig.actor, "%s", dk_key_id(key));
    rc = dk_sign(key, fe->body, fe->body_len, fe->sig.sig);
    fe->req.body = fe->body;
    fe->req.body_len = fe->body_len;
    fe->req.sigs = &fe->sig;
    fe->req.nsigs = 1;
    return rc;
}

static inline void fx_free(fx_event *fe)
{
    free(fe->body);
    fe->body = NULL;
}

/* Make, append and free; returns the append's code, result in *res. */
static inline int fx_append(dk_ledger *lg, const dk_key *key, const char *type, const char *case_id,
                            uint64_t n, const uint64_t *expect, dk_append_res *res)
{
    fx_event fe;
    int rc = fx_make(&fe, key, type, case_id, n, NULL, 0, expect);
    if (rc == 0)
        rc = dk_ledger_append(lg, &fe.req, res);
    fx_free(&fe);
    return rc;
}

/* A data map {"text": text} (note.added), into a fresh sbuffer the caller destroys. */
static inline void fx_text_data(msgpack_sbuffer *sb, const char *text)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    fx_pack_str(&pk, "text");
    fx_pack_str(&pk, text);
}

/* case.opened for `case_id` with a complete applicant; n seeds the command id. */
static inline int fx_open_case(dk_ledger *lg, const dk_key *key, const char *case_id, uint64_t n,
                               const uint64_t *expect, dk_append_res *res)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    fx_pack_str(&pk, "applicant");
    msgpack_pack_map(&pk, 4);
    fx_pack_str(&pk, "date_of_birth");
    fx_pack_str(&pk, "1990-01-31");
    fx_pack_str(&pk, "name");
    fx_pack_str(&pk, "Test Applicant");
    fx_pack_str(&pk, "nationality");
    fx_pack_str(&pk, "FRA");
    fx_pack_str(&pk, "ref");
    fx_pack_str(&pk, "P-1");
    fx_pack_str(&pk, "case_type");
    fx_pack_str(&pk, "visa");
    fx_pack_str(&pk, "channel");
    fx_pack_str(&pk, "online");
    fx_pack_str(&pk, "received_on");
    fx_pack_str(&pk, "2026-10-01");
    fx_event fe;
    int rc =
        fx_make(&fe, key, "case.opened", case_id, n, (const uint8_t *)sb.data, sb.size, expect);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0)
        rc = dk_ledger_append(lg, &fe.req, res);
    fx_free(&fe);
    return rc;
}

/* Data for actor.enrolled / actor.key_rotated / actor.revoked. */
static inline void fx_actor_data(msgpack_sbuffer *sb, const char *id, const uint8_t *pubkey,
                                 const char *roles_csv)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (pubkey != NULL) + (roles_csv != NULL));
    fx_pack_str(&pk, "id");
    fx_pack_str(&pk, id);
    if (pubkey) {
        char b64[64];
        dk_b64_encode(pubkey, DK_PUBKEY_BYTES, b64);
        fx_pack_str(&pk, "pubkey");
        fx_pack_str(&pk, b64);
    }
    if (roles_csv) {
        char buf[256];
        size_t count = 1;
        snprintf(buf, sizeof buf, "%s", roles_csv);
        for (char *c = buf; *c; c++)
            count += *c == ',';
        fx_pack_str(&pk, "roles");
        msgpack_pack_array(&pk, count);
        for (char *save = NULL, *r = strtok_r(buf, ",", &save); r; r = strtok_r(NULL, ",", &save))
            fx_pack_str(&pk, r);
    }
}

/* An actor event signed by `admin` about `id`; n seeds the command id. */
static inline int fx_actor_event(dk_ledger *lg, const dk_key *admin, const char *type,
                                 const char *id, const uint8_t *pubkey, const char *roles,
                                 uint64_t n, dk_append_res *res)
{
    msgpack_sbuffer sb;
    fx_actor_data(&sb, id, pubkey, roles);
    fx_event fe;
    int rc = fx_make(&fe, admin, type, "", n, (const uint8_t *)sb.data, sb.size, NULL);
    msgpack_sbuffer_destroy(&sb);
    if (rc == 0)
        rc = dk_ledger_append(lg, &fe.req, res);
    fx_free(&fe);
    return rc;
}

/* A new key for `id`, enrolled with `roles` by `admin`. */
static inline int fx_enroll(dk_ledger *lg, const dk_key *admin, const char *id, const char *roles,
                            uint64_t n, dk_key **out)
{
    dk_append_res res;
    int rc = dk_key_generate(id, out);
    if (rc == 0)
        rc = fx_actor_event(lg, admin, "actor.enrolled", id, dk_key_public(*out), roles, n, &res);
    return rc;
}

/* fx_enroll for an actor that is named but never signs (an interviewer): its key is not
 * kept. */
static inline int fx_enroll_named(dk_ledger *lg, const dk_key *admin, const char *id,
                                  const char *roles, uint64_t n)
{
    dk_key *k = NULL;
    int rc = fx_enroll(lg, admin, id, roles, n, &k);
    dk_key_free(k);
    return rc;
}

/* A new ledger in `dir` named `name`: its genesis by a new key "admin", then "alice"
 * enrolled as a caseworker (command n 2^50). */
static inline int fx_ledger_with_alice(const char *dir, const char *name, dk_ledger **lg,
                                       dk_key **admin, dk_key **alice)
{
    int rc = dk_key_generate("admin", admin);
    if (rc == 0 && (rc = dk_ledger_init(dir, name, *admin, NULL, lg)) == 0 &&
        (rc = fx_enroll(*lg, *admin, "alice", "caseworker", 1ull << 50, alice)) != 0)
        dk_ledger_close(*lg);
    return rc;
}

#endif
