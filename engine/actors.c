/* actors.c - how ledger.genesis and actor.* events change the actor table.
 * Shared by the writer (at append) and verify (when replaying history). */
#include <stdio.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

static int take_id(const dk_event *ev, const char *field, char out[DK_ACTOR_MAX + 1])
{
    const char *s;
    size_t n;
    int rc = dk__data_str(ev->data, ev->data_len, field, &s, &n);
    if (rc)
        return dk__fail(DK_ESCHEMA, "%s needs data.%s, an actor id", ev->type, field);
    if (!dk__actor_id_valid(s, n))
        return dk__fail(DK_ESCHEMA, "%s: data.%s '%.*s' is not 1..%d characters of [A-Za-z0-9._@-]",
                        ev->type, field, (int)(n > DK_ACTOR_MAX ? DK_ACTOR_MAX : n), s,
                        DK_ACTOR_MAX);
    memcpy(out, s, n);
    out[n] = 0;
    return 0;
}

static int take_pubkey(const dk_event *ev, const char *field, uint8_t pk[DK_PUBKEY_BYTES])
{
    const char *s;
    size_t n, got = 0;
    char b64[64];
    if (dk__data_str(ev->data, ev->data_len, field, &s, &n) != 0 || n >= sizeof b64)
        return dk__fail(DK_ESCHEMA, "%s needs data.%s, a base64 Ed25519 public key", ev->type,
                        field);
    memcpy(b64, s, n);
    b64[n] = 0;
    if (dk_b64_decode(b64, pk, DK_PUBKEY_BYTES, &got) != 0 || got != DK_PUBKEY_BYTES)
        return dk__fail(DK_ESCHEMA, "%s: data.%s is not a base64 32-byte public key", ev->type,
                        field);
    return 0;
}

typedef struct {
    unsigned roles;
    char bad[DK_ACTOR_MAX + 1];
} role_acc;

static int add_role(void *ctx, const char *s, size_t n)
{
    role_acc *acc = ctx;
    unsigned bit = dk_role_parse(s, n);
    if (bit == 0) {
        snprintf(acc->bad, sizeof acc->bad, "%.*s", (int)(n > 64 ? 64 : n), s);
        return DK_ESCHEMA;
    }
    acc->roles |= bit;
    return 0;
}

static int take_roles(const dk_event *ev, unsigned *roles)
{
    role_acc acc = {0, ""};
    int rc = dk__data_strlist(ev->data, ev->data_len, "roles", add_role, &acc);
    if (rc && acc.bad[0])
        return dk__fail(DK_ESCHEMA,
                        "%s: unknown role '%s' (roles: admin, caseworker, senior_caseworker, "
                        "auditor, checker, migration)",
                        ev->type, acc.bad);
    if (rc)
        return dk__fail(DK_ESCHEMA, "%s needs data.roles, a list of role names", ev->type);
    if (acc.roles == 0)
        return dk__fail(DK_ESCHEMA, "%s: data.roles must name at least one role", ev->type);
    *roles = acc.roles;
    return 0;
}

int dk__actor_change_parse(const dk_event *ev, dk__actor_change *c)
{
    memset(c, 0, sizeof *c);
    int rc = 0;
    if (strcmp(ev->type, "ledger.genesis") == 0) {
        c->kind = DK__ACT_GENESIS;
        c->roles = DK_ROLE_ADMIN;
        if ((rc = take_id(ev, "admin", c->id)) == 0)
            rc = take_pubkey(ev, "admin_pubkey", c->pubkey);
    } else if (strcmp(ev->type, "actor.enrolled") == 0) {
        c->kind = DK__ACT_ENROLL;
        if ((rc = take_id(ev, "id", c->id)) == 0 &&
            (rc = take_pubkey(ev, "pubkey", c->pubkey)) == 0)
            rc = take_roles(ev, &c->roles);
    } else if (strcmp(ev->type, "actor.key_rotated") == 0) {
        c->kind = DK__ACT_ROTATE;
        if ((rc = take_id(ev, "id", c->id)) == 0)
            rc = take_pubkey(ev, "pubkey", c->pubkey);
    } else if (strcmp(ev->type, "actor.revoked") == 0) {
        c->kind = DK__ACT_REVOKE;
        rc = take_id(ev, "id", c->id);
    } else if (strncmp(ev->type, "actor.", 6) == 0 || strncmp(ev->type, "ledger.", 7) == 0) {
        rc = dk__fail(DK_ESCHEMA, "unknown system event type '%s'", ev->type);
    }
    if (rc == 0 && c->kind != DK__ACT_NONE && ev->case_id[0] != 0)
        rc = dk__fail(DK_ESCHEMA, "%s is a system event and must have an empty case id", ev->type);
    if (rc == 0 && c->kind == DK__ACT_NONE && ev->case_id[0] == 0)
        rc = dk__fail(DK_ESCHEMA, "%s needs a case id", ev->type);
    return rc;
}

void dk__actor_apply(dk_actor_info *a, const dk__actor_change *c, uint64_t seq)
{
    if (c->kind == DK__ACT_GENESIS || c->kind == DK__ACT_ENROLL) {
        memset(a, 0, sizeof *a);
        snprintf(a->id, sizeof a->id, "%s", c->id);
        memcpy(a->pubkey, c->pubkey, DK_PUBKEY_BYTES);
        a->roles = c->roles;
        a->enrolled_seq = seq;
    } else if (c->kind == DK__ACT_ROTATE) {
        memcpy(a->pubkey, c->pubkey, DK_PUBKEY_BYTES);
    } else if (c->kind == DK__ACT_REVOKE) {
        a->revoked = 1;
    }
}
