/* note.c - C2SP signed notes carrying tlog checkpoints: signing with the
 * node key, verifier keys, and verification with public data alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "docket/note.h"
#include "engine_int.h"

#define EM_DASH     "\xe2\x80\x94" /* U+2014, which starts every signature line */
#define ALG_ED25519 0x01

/* key id = SHA-256(name || "\n" || 0x01 || pubkey)[0:4] */
static void key_id(const char *name, const uint8_t pk[32], uint8_t id[4])
{
    size_t n = strlen(name);
    uint8_t buf[DK_ORIGIN_MAX + 2 + 32], h[32];
    memcpy(buf, name, n);
    buf[n] = '\n';
    buf[n + 1] = ALG_ED25519;
    memcpy(buf + n + 2, pk, 32);
    dk_sha256(buf, n + 34, h);
    memcpy(id, h, 4);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DK_ORIGIN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == '+' || s[i] == 0x7f)
            return 0;
    return 1;
}

int dk_note_vkey(const char *name, const uint8_t pk[DK_PUBKEY_BYTES], char *out, size_t cap)
{
    uint8_t id[4], typed[33];
    char idhex[9], b64[64];
    if (!valid_name(name))
        return dk__fail(DK_EINVAL, "key name '%s' is empty, too long or has spaces or '+'", name);
    key_id(name, pk, id);
    dk_hex_encode(id, 4, idhex);
    typed[0] = ALG_ED25519;
    memcpy(typed + 1, pk, 32);
    dk_b64_encode(typed, sizeof typed, b64);
    if ((size_t)snprintf(out, cap, "%s+%s+%s", name, idhex, b64) >= cap)
        return dk__fail(DK_EINVAL, "verifier key buffer too small");
    return 0;
}

int dk_note_sign(const dk_checkpoint *cp, const dk_key *key, char **note)
{
    *note = NULL;
    if (!valid_name(cp->origin))
        return dk__fail(DK_EINVAL, "origin '%s' is empty, too long or has spaces or '+'",
                        cp->origin);
    char root64[64], body[DK_ORIGIN_MAX + 96];
    dk_b64_encode(cp->root, 32, root64);
    int blen = snprintf(body, sizeof body, "%s\n%llu\n%s\n", cp->origin,
                        (unsigned long long)cp->size, root64);
    uint8_t sigblob[4 + 64];
    key_id(cp->origin, dk_key_public(key), sigblob);
    int rc = dk_sign_raw(key, (const uint8_t *)body, (size_t)blen, sigblob + 4);
    if (rc)
        return rc;
    char sig64[128];
    dk_b64_encode(sigblob, sizeof sigblob, sig64);
    size_t cap = (size_t)blen + strlen(cp->origin) + strlen(sig64) + 16;
    if ((*note = malloc(cap)) == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    snprintf(*note, cap, "%s\n" EM_DASH " %s %s\n", body, cp->origin, sig64);
    return 0;
}

/* Parse a verifier key or a bare base64 public key. */
static int parse_vkey(const char *vkey, const char *default_name, char *name, uint8_t pk[32],
                      uint8_t id[4])
{
    size_t got;
    /* A bare Ed25519 public key: 44 base64 characters (which may hold '+'). */
    if (strlen(vkey) == 44 && dk_b64_decode(vkey, pk, 32, &got) == 0 && got == 32) {
        snprintf(name, DK_ORIGIN_MAX + 1, "%s", default_name);
        key_id(name, pk, id);
        return 0;
    }
    const char *p1 = strchr(vkey, '+');
    if (p1 == NULL)
        return dk__fail(DK_EPROOF, "public key is neither a verifier key nor base64 Ed25519");
    const char *p2 = strchr(p1 + 1, '+');
    if (p2 == NULL || (size_t)(p1 - vkey) > DK_ORIGIN_MAX || p2 - p1 - 1 != 8)
        return dk__fail(DK_EPROOF, "verifier key is not name+keyid+key");
    snprintf(name, DK_ORIGIN_MAX + 1, "%.*s", (int)(p1 - vkey), vkey);
    char idhex[9];
    memcpy(idhex, p1 + 1, 8);
    idhex[8] = 0;
    uint8_t typed[33], want[4];
    if (dk_hex_decode(idhex, id, 4, &got) != 0 || got != 4 ||
        dk_b64_decode(p2 + 1, typed, sizeof typed, &got) != 0 || got != 33 ||
        typed[0] != ALG_ED25519)
        return dk__fail(DK_EPROOF, "verifier key is malformed or not Ed25519");
    memcpy(pk, typed + 1, 32);
    key_id(name, pk, want);
    if (memcmp(want, id, 4) != 0)
        return dk__fail(DK_EPROOF, "verifier key's id does not match its name and key");
    return 0;
}

int dk_note_open(const char *note, const char *vkey, dk_checkpoint *cp)
{
    memset(cp, 0, sizeof *cp);
    const char *sep = strstr(note, "\n\n");
    if (sep == NULL)
        return dk__fail(DK_EPROOF, "not a signed note: no blank line before the signatures");
    size_t blen = (size_t)(sep - note) + 1; /* the body ends with its newline */
    /* body: origin, size, root (extension lines may follow) */
    const char *l1 = note, *e1 = memchr(l1, '\n', blen);
    const char *l2 = e1 ? e1 + 1 : NULL,
               *e2 = l2 ? memchr(l2, '\n', blen - (size_t)(l2 - note)) : NULL;
    const char *l3 = e2 ? e2 + 1 : NULL,
               *e3 = l3 ? memchr(l3, '\n', blen - (size_t)(l3 - note)) : NULL;
    if (e3 == NULL || e1 - l1 == 0 || (size_t)(e1 - l1) > DK_ORIGIN_MAX)
        return dk__fail(DK_EPROOF, "checkpoint body needs origin, size and root lines");
    memcpy(cp->origin, l1, (size_t)(e1 - l1));
    cp->origin[e1 - l1] = 0;
    char num[24], root64[64];
    if (e2 - l2 < 1 || e2 - l2 > 20 || (e2 - l2 > 1 && l2[0] == '0') || e3 - l3 >= 64)
        return dk__fail(DK_EPROOF, "checkpoint size or root line is malformed");
    memcpy(num, l2, (size_t)(e2 - l2));
    num[e2 - l2] = 0;
    for (char *c = num; *c; c++)
        if (*c < '0' || *c > '9')
            return dk__fail(DK_EPROOF, "checkpoint size '%s' is not a decimal number", num);
    if (strlen(num) == 20 && strcmp(num, "18446744073709551615") > 0)
        return dk__fail(DK_EPROOF, "checkpoint size '%s' does not fit 64 bits", num);
    cp->size = strtoull(num, NULL, 10);
    memcpy(root64, l3, (size_t)(e3 - l3));
    root64[e3 - l3] = 0;
    size_t got;
    if (dk_b64_decode(root64, cp->root, 32, &got) != 0 || got != 32)
        return dk__fail(DK_EPROOF, "checkpoint root is not a base64 SHA-256");

    char name[DK_ORIGIN_MAX + 1];
    uint8_t pk[32], id[4];
    int rc = parse_vkey(vkey, cp->origin, name, pk, id);
    if (rc)
        return rc;
    /* Signature lines: "— <name> <base64(id || sig)>\n", each well formed, to the end of
     * the note (as C2SP's note.Open reads them); ours once, and valid. */
    size_t nlen = strlen(name);
    int found = 0;
    for (const char *line = sep + 2; *line;) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            return dk__fail(DK_EPROOF, "signature line without a final newline");
        size_t dl = strlen(EM_DASH " ");
        if (strncmp(line, EM_DASH " ", dl) != 0)
            return dk__fail(DK_EPROOF, "malformed signature line");
        const char *nm = line + dl, *sp = memchr(nm, ' ', (size_t)(end - nm));
        char b64[160];
        uint8_t blob[4 + 64];
        size_t sl = sp ? (size_t)(end - sp - 1) : 0;
        if (sp == NULL || sp == nm || sl == 0 || sl >= sizeof b64)
            return dk__fail(DK_EPROOF, "malformed signature line");
        memcpy(b64, sp + 1, sl);
        b64[sl] = 0;
        if (dk_b64_decode(b64, blob, sizeof blob, &got) != 0 || got < 5)
            return dk__fail(DK_EPROOF, "a signature line's signature is not base64 of a key id "
                                       "and a signature");
        if ((size_t)(sp - nm) == nlen && strncmp(nm, name, nlen) == 0 && got == sizeof blob &&
            memcmp(blob, id, 4) == 0) {
            if (found)
                return dk__fail(DK_EPROOF, "the checkpoint carries two signatures by key '%s'",
                                name);
            if (dk_verify_raw(pk, (const uint8_t *)note, blen, blob + 4) != 0)
                return dk__fail(DK_EPROOF,
                                "the checkpoint's signature by '%s' does not "
                                "verify: it was altered or signed by another key",
                                name);
            found = 1;
        }
        line = end + 1;
    }
    if (found)
        return 0;
    return dk__fail(DK_EPROOF, "the checkpoint carries no signature by key '%s'", name);
}
