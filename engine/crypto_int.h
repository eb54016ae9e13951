/* crypto_int.h - engine-private access to a key's secret half, for the key
 * file code that seals and unseals it. Nothing outside engine/ sees this. */
#ifndef DOCKET_CRYPTO_INT_H
#define DOCKET_CRYPTO_INT_H

#include "docket/crypto.h"

/* A key for `id` from a 64-byte Ed25519 secret key (copied into sodium_malloc memory). */
int dk__key_from_secret(const char *id, const uint8_t sk[DK_SECKEY_BYTES], dk_key **out);
/* The secret key (DK_SECKEY_BYTES), borrowed from `k`. */
const uint8_t *dk__key_secret(const dk_key *k);

#endif
