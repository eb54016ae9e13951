/* merkle.h - RFC 6962 / RFC 9162 Merkle tree hashing and proofs, as pure
 * functions over a node store the caller provides (the ledger's `tree` db). */
#ifndef DOCKET_MERKLE_H
#define DOCKET_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define DK_MERKLE_MAX_PROOF 64 /* hashes in any proof of a tree of < 2^64 leaves */

/* Node (level, index): the root of the complete subtree of 2^level leaves
 * that starts at leaf index * 2^level. Level 0 holds the leaf hashes
 * (SHA-256(0x00 || leaf)). Only complete subtrees are ever asked for. The
 * callback returns 0, or a DK_E* code that the caller passes back. */
typedef int (*dk_merkle_get_fn)(void *ctx, unsigned level, uint64_t index, uint8_t out[32]);
typedef int (*dk_merkle_put_fn)(void *ctx, unsigned level, uint64_t index, const uint8_t h[32]);

/* Append leaf number `index` (0-based; the tree holds `index` leaves before
 * it): store its leaf hash and every subtree it completes, via put (reading
 * the left siblings via get). O(log n) calls. */
int dk_merkle_append(dk_merkle_get_fn get, dk_merkle_put_fn put, void *ctx, uint64_t index,
                     const uint8_t leaf_hash[32]);

/* Root of the first `size` leaves (size >= 1); the empty tree's root is
 * SHA-256(""). Uses only complete-subtree nodes: O(log n) calls. */
int dk_merkle_root(dk_merkle_get_fn get, void *ctx, uint64_t size, uint8_t root[32]);

/* Audit path for leaf `index` in the tree of `size` leaves (RFC 9162 2.1.3),
 * into proof[0..*n). DK_EINVAL if index >= size. */
int dk_merkle_inclusion_proof(dk_merkle_get_fn get, void *ctx, uint64_t index, uint64_t size,
                              uint8_t proof[][32], size_t *n);

/* Consistency proof between sizes old_size <= new_size (RFC 9162 2.1.4),
 * into proof[0..*n). DK_EINVAL unless 0 < old_size <= new_size. */
int dk_merkle_consistency_proof(dk_merkle_get_fn get, void *ctx, uint64_t old_size,
                                uint64_t new_size, uint8_t proof[][32], size_t *n);

/* Verify with public data only (RFC 9162 2.1.3.2 and 2.1.4.2). 0, or
 * DK_EPROOF with dk_errmsg() saying why. */
int dk_merkle_verify_inclusion(const uint8_t leaf_hash[32], uint64_t index, uint64_t size,
                               const uint8_t proof[][32], size_t n, const uint8_t root[32]);
int dk_merkle_verify_consistency(uint64_t old_size, uint64_t new_size, const uint8_t old_root[32],
                                 const uint8_t new_root[32], const uint8_t proof[][32], size_t n);

#endif
