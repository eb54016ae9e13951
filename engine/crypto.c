/* crypto.c - Ed25519 keys and domain-separated signatures, random bytes and base64/hex on
 * libsodium; SHA-256 and RFC 6962 hashes on nettle (which uses the CPU's SHA extensions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/sha2.h>
#include <sodium.h>

#include "crypto_int.h"
#include "docket/docket.h"
#include "engine_int.h"

struct dk_key {
    char id[DK_ACTOR_MAX + 1];
    uint8_t pk[DK_PUBKEY_BYTES];
    uint8_t *sk; /* sodium_malloc'd, DK_SECKEY_BYTES */
};

int dk_init(void)
{
    if (sodium_init() < 0)
        return dk__fail(DK_EIO, "libsodium failed to initialise");
    return 0;
}

static int actor_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '-';
}

int dk__actor_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > DK_ACTOR_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!actor_char(id[i]))
            return 0;
    return 1;
}

int dk_actor_id_check(const char *id)
{
    if (id == NULL || id[0] == 0)
        return dk__fail(DK_EINVAL, "actor id '' is empty; it needs 1..%d characters", DK_ACTOR_MAX);
    size_t n = strlen(id);
    if (n > DK_ACTOR_MAX)
        return dk__fail(DK_EINVAL, "actor id '%.*s...' is %zu bytes long; the limit is %d",
                        DK_ACTOR_MAX, id, n, DK_ACTOR_MAX);
    int printable = 1; /* else the id is shown up to its first bad byte only */
    for (size_t i = 0; i < n; i++)
        printable &= id[i] >= 0x20 && id[i] < 0x7f;
    for (size_t i = 0; i < n; i++)
        if (!actor_char(id[i]))
            return dk__fail(DK_EINVAL,
                            "actor id '%.*s%s' has byte 0x%02x at position %zu; only "
                            "[A-Za-z0-9._@-] are allowed",
                            printable ? (int)n : (int)i, id, printable ? "" : "...",
                            (unsigned)(unsigned char)id[i], i);
    return 0;
}

static int key_alloc(const char *id, dk_key **out)
{
    *out = NULL;
    int rc = dk_actor_id_check(id);
    if (rc)
        return rc;
    if ((rc = dk_init()) != 0)
        return rc;
    dk_key *k = calloc(1, sizeof *k);
    if (k == NULL)
        return dk__fail(DK_ENOMEM, "out of memory for a key");
    if ((k->sk = sodium_malloc(DK_SECKEY_BYTES)) == NULL) {
        free(k);
        return dk__fail(DK_ENOMEM, "out of secure memory for a key");
    }
    memcpy(k->id, id, strlen(id) + 1);
    *out = k;
    return 0;
}

int dk_key_generate(const char *id, dk_key **out)
{
    int rc = key_alloc(id, out);
    if (rc)
        return rc;
    crypto_sign_keypair((*out)->pk, (*out)->sk);
    return 0;
}

int dk__key_from_secret(const char *id, const uint8_t sk[DK_SECKEY_BYTES], dk_key **out)
{
    int rc = key_alloc(id, out);
    if (rc)
        return rc;
    memcpy((*out)->sk, sk, DK_SECKEY_BYTES);
    crypto_sign_ed25519_sk_to_pk((*out)->pk, (*out)->sk);
    return 0;
}

const uint8_t *dk__key_secret(const dk_key *k)
{
    return k->sk;
}

void dk_key_free(dk_key *k)
{
    if (k == NULL)
        return;
    sodium_free(k->sk); /* wipes before freeing */
    sodium_memzero(k, sizeof *k);
    free(k);
}

const char *dk_key_id(const dk_key *k)
{
    return k->id;
}

const uint8_t *dk_key_public(const dk_key *k)
{
    return k->pk;
}

/* Bodies up to this size are signed and verified from a stack buffer. */
#define SMALL_BODY 4096

/* DK_SIGN_DOMAIN || body, in `stack` when small, else malloc'd; NULL if out of memory. */
static uint8_t *domain_message(const uint8_t *body, size_t len,
                               uint8_t stack[DK_SIGN_DOMAIN_LEN + SMALL_BODY], size_t *mlen)
{
    if (len > SIZE_MAX - DK_SIGN_DOMAIN_LEN)
        return NULL;
    *mlen = DK_SIGN_DOMAIN_LEN + len;
    uint8_t *m = len <= SMALL_BODY ? stack : malloc(*mlen);
    if (m == NULL)
        return NULL;
    memcpy(m, DK_SIGN_DOMAIN, DK_SIGN_DOMAIN_LEN);
    if (len > 0)
        memcpy(m + DK_SIGN_DOMAIN_LEN, body, len);
    return m;
}

int dk_sign(const dk_key *k, const uint8_t *body, size_t len, uint8_t sig[64])
{
    uint8_t stack[DK_SIGN_DOMAIN_LEN + SMALL_BODY];
    size_t mlen = 0;
    uint8_t *m = domain_message(body, len, stack, &mlen);
    if (m == NULL)
        return dk__fail(DK_ENOMEM, "out of memory signing a %zu-byte body", len);
    crypto_sign_detached(sig, NULL, m, mlen, k->sk);
    if (m != stack)
        free(m);
    return 0;
}

int dk_verify(const uint8_t pk[DK_PUBKEY_BYTES], const uint8_t *body, size_t len,
              const uint8_t sig[64])
{
    int rc = dk_init();
    if (rc)
        return rc;
    uint8_t stack[DK_SIGN_DOMAIN_LEN + SMALL_BODY];
    size_t mlen = 0;
    uint8_t *m = domain_message(body, len, stack, &mlen);
    if (m == NULL)
        return dk__fail(DK_ENOMEM, "out of memory verifying a %zu-byte body", len);
    int bad = crypto_sign_verify_detached(sig, m, mlen, pk);
    if (m != stack)
        free(m);
    return bad ? dk__fail(DK_EBADSIG, "signature does not verify") : 0;
}

int dk_sign_raw(const dk_key *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    crypto_sign_detached(sig, NULL, msg, len, k->sk);
    return 0;
}

int dk_verify_raw(const uint8_t pk[DK_PUBKEY_BYTES], const uint8_t *msg, size_t len,
                  const uint8_t sig[64])
{
    if (dk_init() != 0)
        return DK_EIO;
    if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
        return dk__fail(DK_EBADSIG, "signature does not verify");
    return 0;
}

/* libsodium 1.0.18's SHA-256 is portable C: 1.69 us for 512 bytes on the bench machine,
 * nettle 3.8's 0.38 us (SHA-NI). The chain, the tree and every rebuild hash each record. */
void dk_sha256(const void *data, size_t len, uint8_t out[32])
{
    struct sha256_ctx st;
    sha256_init(&st);
    sha256_update(&st, len, data);
    sha256_digest(&st, 32, out);
}

void dk_leaf_hash(const void *data, size_t len, uint8_t out[32])
{
    struct sha256_ctx st;
    const uint8_t prefix = 0x00;
    sha256_init(&st);
    sha256_update(&st, 1, &prefix);
    sha256_update(&st, len, data);
    sha256_digest(&st, 32, out);
}

void dk_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
    struct sha256_ctx st;
    const uint8_t prefix = 0x01;
    sha256_init(&st);
    sha256_update(&st, 1, &prefix);
    sha256_update(&st, 32, left);
    sha256_update(&st, 32, right);
    sha256_digest(&st, 32, out);
}

void dk_random(void *buf, size_t len)
{
    /* randombytes_buf never returns without filling buf (libsodium aborts
     * rather than hand back predictable bytes), even if sodium_init failed. */
    (void)dk_init();
    randombytes_buf(buf, len);
}

void dk_cmd_new(uint8_t cmd[16])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        cmd[i] = (uint8_t)(ms >> (40 - 8 * i));
    dk_random(cmd + 6, 10);
}

size_t dk_b64_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
}

void dk_b64_encode(const uint8_t *in, size_t n, char *out)
{
    sodium_bin2base64(out, dk_b64_len(n), in, n, sodium_base64_VARIANT_ORIGINAL);
}

int dk_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len)
{
    const char *end = NULL;
    size_t n = 0, inlen = strlen(in);
    /* No ignored characters; padding is required; all input must be used. */
    if (sodium_base642bin(out, cap, in, inlen, NULL, &n, &end, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        end != in + inlen)
        return dk__fail(DK_EDECODE, "not padded base64 of at most %zu bytes", cap);
    /* and canonical: the bytes encode back to exactly the input. libsodium 1.0.18 reads
     * any byte from 0x80 up as '/', and lets unused low bits before the padding be set,
     * so a damaged note or key could still decode (helper-55's review) */
    if (dk_b64_len(n) != inlen + 1)
        return dk__fail(DK_EDECODE, "not canonical base64");
    char *again = malloc(inlen + 1);
    if (again == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    dk_b64_encode(out, n, again);
    int same = memcmp(again, in, inlen) == 0;
    free(again);
    if (!same)
        return dk__fail(DK_EDECODE, "not canonical base64 (a character outside its alphabet, "
                                    "or bits set past the data)");
    *out_len = n;
    return 0;
}

void dk_hex_encode(const uint8_t *in, size_t n, char *out)
{
    sodium_bin2hex(out, 2 * n + 1, in, n);
}

int dk_hex_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len)
{
    const char *end = NULL;
    size_t n = 0, inlen = strlen(in);
    if (inlen % 2 != 0 || sodium_hex2bin(out, cap, in, inlen, NULL, &n, &end) != 0 ||
        end != in + inlen)
        return dk__fail(DK_EDECODE, "not hex of at most %zu bytes", cap);
    *out_len = n;
    return 0;
}
