/* crypto.h - keys, signatures and hashes (libsodium), and sealed key files.
 * Secret keys live only in sodium_malloc memory and are wiped on every path. */
#ifndef DOCKET_CRYPTO_H
#define DOCKET_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define DK_PUBKEY_BYTES 32
#define DK_SECKEY_BYTES 64
/* Signatures cover this prefix (16 bytes, including its NUL) then the body. */
#define DK_SIGN_DOMAIN     "docket/event/v1"
#define DK_SIGN_DOMAIN_LEN 16

#if defined(__GNUC__)
#define DK_MUST_CHECK __attribute__((warn_unused_result))
#else
#define DK_MUST_CHECK
#endif

typedef struct dk_key dk_key; /* an actor's id and Ed25519 keypair */

/* New random keypair for actor `id` (1..64 bytes of [A-Za-z0-9._@-]). */
int dk_key_generate(const char *id, dk_key **out);
/* 0 if `id` can name an actor (1..DK_ACTOR_MAX characters of [A-Za-z0-9._@-]); else
 * DK_EINVAL with a message naming what is wrong (and no byte of it that is not allowed). */
int dk_actor_id_check(const char *id);
/* Wipe and free; NULL is a no-op. */
void dk_key_free(dk_key *k);
const char *dk_key_id(const dk_key *k);
const uint8_t *dk_key_public(const dk_key *k); /* DK_PUBKEY_BYTES */

/* Write `k` to a new file `path` (mode 0600, refusing to overwrite), its
 * secret key sealed with `passphrase` (Argon2id + XSalsa20-Poly1305). */
int dk_key_save(const dk_key *k, const char *path, const char *passphrase);
/* Load and unseal a key file. DK_EKEYFILE for a missing, truncated,
 * malformed or group/world-readable file; DK_EPASSPHRASE if the passphrase
 * is wrong or the sealed part was altered. dk_errmsg() names the file. */
int dk_key_load(const char *path, const char *passphrase, dk_key **out);

/* Sign DK_SIGN_DOMAIN || body. */
int dk_sign(const dk_key *k, const uint8_t *body, size_t len, uint8_t sig[64]);
/* 0 if `sig` is `pk`'s signature over DK_SIGN_DOMAIN || body, else DK_EBADSIG. */
DK_MUST_CHECK int dk_verify(const uint8_t pk[DK_PUBKEY_BYTES], const uint8_t *body, size_t len,
                            const uint8_t sig[64]);

/* Plain Ed25519 over `msg`, no domain prefix: for formats that define their
 * own signed bytes (C2SP signed notes). Never use it for event bodies. */
int dk_sign_raw(const dk_key *k, const uint8_t *msg, size_t len, uint8_t sig[64]);
DK_MUST_CHECK int dk_verify_raw(const uint8_t pk[DK_PUBKEY_BYTES], const uint8_t *msg, size_t len,
                                const uint8_t sig[64]);

void dk_sha256(const void *data, size_t len, uint8_t out[32]);
/* RFC 6962 leaf hash: SHA-256(0x00 || data). */
void dk_leaf_hash(const void *data, size_t len, uint8_t out[32]);
/* RFC 6962 interior node hash: SHA-256(0x01 || left || right). */
void dk_node_hash(const uint8_t left[32], const uint8_t right[32], uint8_t out[32]);

/* Fill `buf` with random bytes. */
void dk_random(void *buf, size_t len);
/* A new command id (16 bytes): the time in milliseconds since 1970 (48 bits, big-endian)
 * then 80 random bits, as UUIDv7 lays them out. Ids made one after another sort one
 * after another, so the ledger's command index grows at its end instead of touching a
 * random page per append; clients that make their own ids should make them so too. */
void dk_cmd_new(uint8_t cmd[16]);

/* Text encodings. Encoders write a NUL-terminated string into `out`, which
 * must hold dk_b64_len(n) / 2*n+1 bytes. Decoders return the decoded length
 * in *out_len and DK_EDECODE on malformed input or if it exceeds `cap`. */
size_t dk_b64_len(size_t n);
void dk_b64_encode(const uint8_t *in, size_t n, char *out);
int dk_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len);
void dk_hex_encode(const uint8_t *in, size_t n, char *out);
int dk_hex_decode(const char *in, uint8_t *out, size_t cap, size_t *out_len);

#endif
