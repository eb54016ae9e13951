/* crypto.c - Ed25519 keys and signatures, SHA-256 and RFC 6962 hashes, and
 * base64/hex, all on libsodium. Secret keys live in sodium_malloc memory. */
#include <stdlib.h>
#include <string.h>

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

int dk__actor_id_valid(const char *id, size_t n)
{
    if (n == 0 || n > DK_ACTOR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

static int key_alloc(const char *id, dk_key **out)
{
    *out = NULL;
    if (id == NULL || !dk__actor_id_valid(id, strlen(id)))
        return dk__fail(DK_EINVAL, "actor id '%s' is not 1..%d characters of [A-Za-z0-9._@-]",
                        id ? id : "", DK_ACTOR_MAX);
    int rc = dk_init();
    if (rc)
        return rc;
    dk_key *k = calloc(1, sizeof *k);
    if (k == NULL || (k->sk = sodium_malloc(DK_SECKEY_BYTES)) == NULL) {
        free(k);
        return dk__fail(DK_ENOMEM, "out of memory for a key");
    }
    snprintf(k->id, sizeof k->id, "%s", id);
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

/* DK_SIGN_DOMAIN || body, on the stack when small. */
#define SMALL_MSG 4096

static uint8_t *domain_message(const uint8_t *body, size_t len, uint8_t *stack, size_t *mlen)
{
    *mlen = DK_SIGN_DOMAIN_LEN + len;
    uint8_t *m = *mlen <= SMALL_MSG ? stack : malloc(*mlen);
    if (m == NULL)
        return NULL;
    memcpy(m, DK_SIGN_DOMAIN, DK_SIGN_DOMAIN_LEN);
    memcpy(m + DK_SIGN_DOMAIN_LEN, body, len);
    return m;
}

int dk_sign(const dk_key *k, const uint8_t *body, size_t len, uint8_t sig[64])
{
    uint8_t stack[SMALL_MSG];
    size_t mlen;
    uint8_t *m = domain_message(body, len, stack, &mlen);
    if (m == NULL)
        return dk__fail(DK_ENOMEM, "out of memory signing");
    crypto_sign_detached(sig, NULL, m, mlen, k->sk);
    if (m != stack)
        free(m);
    return 0;
}

int dk_verify(const uint8_t pk[DK_PUBKEY_BYTES], const uint8_t *body, size_t len,
              const uint8_t sig[64])
{
    uint8_t stack[SMALL_MSG];
    size_t mlen;
    uint8_t *m = domain_message(body, len, stack, &mlen);
    if (m == NULL)
        return dk__fail(DK_ENOMEM, "out of memory verifying");
    int bad = crypto_sign_verify_detached(sig, m, mlen, pk);
    if (m != stack)
        free(m);
    return bad ? dk__fail(DK_EBADSIG, "signature does not verify") : 0;
}

void dk_sha256(const void *data, size_t len, uint8_t out[32])
{
    crypto_hash_sha256(out, data, len);
}

void dk_leaf_hash(const void *data, size_t len, uint8_t out[32])
{
    crypto_hash_sha256_state st;
    const uint8_t prefix = 0x00;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
}

void dk_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32])
{
    crypto_hash_sha256_state st;
    const uint8_t prefix = 0x01;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    crypto_hash_sha256_update(&st, left, 32);
    crypto_hash_sha256_update(&st, right, 32);
    crypto_hash_sha256_final(&st, out);
}

void dk_random(void *buf, size_t len)
{
    if (dk_init() == 0)
        randombytes_buf(buf, len);
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
    size_t n = 0;
    size_t inlen = strlen(in);
    if (sodium_base642bin(out, cap, in, inlen, NULL, &n, &end, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        end != in + inlen)
        return dk__fail(DK_EDECODE, "not valid base64 (or longer than %zu bytes)", cap);
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
    size_t n = 0;
    size_t inlen = strlen(in);
    if (inlen % 2 != 0 || sodium_hex2bin(out, cap, in, inlen, NULL, &n, &end) != 0 ||
        end != in + inlen)
        return dk__fail(DK_EDECODE, "not valid hex (or longer than %zu bytes)", cap);
    *out_len = n;
    return 0;
}
