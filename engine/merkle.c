/* merkle.c - RFC 6962 / RFC 9162 Merkle tree: incremental append, roots and
 * proofs from stored complete-subtree hashes, and proof verification. */
#include <string.h>

#include "docket/crypto.h"
#include "docket/error.h"
#include "docket/merkle.h"
#include "engine_int.h"

static void node_hash(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    uint8_t buf[65];
    buf[0] = 0x01;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    dk_sha256(buf, sizeof buf, out);
}

static uint64_t largest_pow2_below(uint64_t n) /* n >= 2 */
{
    uint64_t k = 1;
    while (k < n - k)
        k <<= 1;
    return k;
}

static unsigned log2_exact(uint64_t n) /* n a power of two */
{
    unsigned l = 0;
    while (n > 1) {
        n >>= 1;
        l++;
    }
    return l;
}

/* MTH(D[start, start+n)) for n >= 1. Every range the RFC's recursions reach
 * starts at a multiple of a power of two >= n, so its left parts are stored
 * complete subtrees and only the right edge needs hashing: O(log n). */
static int range_hash(dk_merkle_get_fn get, void *ctx, uint64_t start, uint64_t n, uint8_t out[32])
{
    if ((n & (n - 1)) == 0) {
        unsigned level = log2_exact(n);
        return get(ctx, level, start >> level, out);
    }
    uint64_t k = largest_pow2_below(n);
    uint8_t left[32], right[32];
    int rc = range_hash(get, ctx, start, k, left);
    if (rc == 0)
        rc = range_hash(get, ctx, start + k, n - k, right);
    if (rc == 0)
        node_hash(left, right, out);
    return rc;
}

void dk__frontier_push(dk__frontier *f, const uint8_t leaf[32])
{
    memcpy(f->h[f->n], leaf, 32);
    memcpy(f->formed[0], leaf, 32);
    f->nformed = 1;
    f->size[f->n++] = 1;
    while (f->n >= 2 && f->size[f->n - 1] == f->size[f->n - 2]) {
        node_hash(f->h[f->n - 2], f->h[f->n - 1], f->h[f->n - 2]);
        memcpy(f->formed[f->nformed++], f->h[f->n - 2], 32);
        f->size[f->n - 2] *= 2;
        f->n--;
    }
}

void dk__frontier_root(const dk__frontier *f, uint8_t root[32])
{
    if (f->n == 0) {
        dk_sha256("", 0, root);
        return;
    }
    memcpy(root, f->h[f->n - 1], 32);
    for (int i = f->n - 2; i >= 0; i--)
        node_hash(f->h[i], root, root);
}

int dk_merkle_append(dk_merkle_get_fn get, dk_merkle_put_fn put, void *ctx, uint64_t index,
                     const uint8_t leaf_hash[32])
{
    uint8_t h[32], left[32];
    memcpy(h, leaf_hash, 32);
    int rc = put(ctx, 0, index, h);
    for (unsigned level = 0; rc == 0 && (index & 1); level++) {
        rc = get(ctx, level, index - 1, left);
        if (rc == 0) {
            node_hash(left, h, h);
            index >>= 1;
            rc = put(ctx, level + 1, index, h);
        }
    }
    return rc;
}

int dk_merkle_root(dk_merkle_get_fn get, void *ctx, uint64_t size, uint8_t root[32])
{
    if (size == 0) {
        dk_sha256("", 0, root);
        return 0;
    }
    return range_hash(get, ctx, 0, size, root);
}

int dk_merkle_inclusion_proof(dk_merkle_get_fn get, void *ctx, uint64_t index, uint64_t size,
                              uint8_t proof[][32], size_t *n)
{
    *n = 0;
    if (index >= size)
        return dk__fail(DK_EINVAL, "leaf %llu is not in a tree of %llu leaves",
                        (unsigned long long)index, (unsigned long long)size);
    /* PATH(m, D[start, start+len)) walks down from the root; the siblings it
     * meets are emitted deepest first, so fill from the far end. */
    uint8_t tmp[DK_MERKLE_MAX_PROOF][32];
    size_t cnt = 0;
    uint64_t start = 0, len = size, m = index;
    while (len > 1) {
        uint64_t k = largest_pow2_below(len);
        int rc;
        if (m < k) {
            rc = range_hash(get, ctx, start + k, len - k, tmp[cnt]);
            len = k;
        } else {
            rc = range_hash(get, ctx, start, k, tmp[cnt]);
            start += k;
            m -= k;
            len -= k;
        }
        if (rc)
            return rc;
        cnt++;
    }
    for (size_t i = 0; i < cnt; i++)
        memcpy(proof[i], tmp[cnt - 1 - i], 32);
    *n = cnt;
    return 0;
}

int dk_merkle_consistency_proof(dk_merkle_get_fn get, void *ctx, uint64_t old_size,
                                uint64_t new_size, uint8_t proof[][32], size_t *n)
{
    *n = 0;
    if (old_size == 0 || old_size > new_size)
        return dk__fail(DK_EINVAL, "no consistency proof from size %llu to size %llu",
                        (unsigned long long)old_size, (unsigned long long)new_size);
    /* SUBPROOF(m, D[start, start+len), b), walked iteratively. */
    uint8_t tmp[DK_MERKLE_MAX_PROOF][32];
    size_t cnt = 0;
    uint64_t start = 0, len = new_size, m = old_size;
    int whole = 1; /* b: is D[start, ...) the old tree itself so far? */
    int rc = 0;
    while (m != len) {
        uint64_t k = largest_pow2_below(len);
        if (m <= k) {
            rc = range_hash(get, ctx, start + k, len - k, tmp[cnt]);
            len = k;
        } else {
            rc = range_hash(get, ctx, start, k, tmp[cnt]);
            start += k;
            m -= k;
            len -= k;
            whole = 0;
        }
        if (rc)
            return rc;
        cnt++;
    }
    if (!whole) {
        rc = range_hash(get, ctx, start, len, tmp[cnt]);
        if (rc)
            return rc;
        cnt++;
    }
    for (size_t i = 0; i < cnt; i++)
        memcpy(proof[i], tmp[cnt - 1 - i], 32);
    *n = cnt;
    return 0;
}

int dk_merkle_verify_inclusion(const uint8_t leaf_hash[32], uint64_t index, uint64_t size,
                               const uint8_t proof[][32], size_t n, const uint8_t root[32])
{
    if (index >= size)
        return dk__fail(DK_EPROOF, "leaf index %llu is not below the tree size %llu",
                        (unsigned long long)index, (unsigned long long)size);
    if (n > DK_MERKLE_MAX_PROOF)
        return dk__fail(DK_EPROOF, "inclusion proof has %zu hashes, more than any tree needs", n);
    uint64_t fn = index, sn = size - 1;
    uint8_t r[32];
    memcpy(r, leaf_hash, 32);
    for (size_t i = 0; i < n; i++) {
        if (sn == 0)
            return dk__fail(DK_EPROOF,
                            "inclusion proof is longer than the tree is deep (%zu hashes)", n);
        if ((fn & 1) || fn == sn) {
            node_hash(proof[i], r, r);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return dk__fail(DK_EPROOF, "inclusion proof is too short for a tree of %llu leaves",
                        (unsigned long long)size);
    if (memcmp(r, root, 32) != 0)
        return dk__fail(DK_EPROOF, "inclusion proof of leaf %llu does not lead to the root",
                        (unsigned long long)index);
    return 0;
}

int dk_merkle_verify_consistency(uint64_t old_size, uint64_t new_size, const uint8_t old_root[32],
                                 const uint8_t new_root[32], const uint8_t proof[][32], size_t n)
{
    if (old_size > new_size)
        return dk__fail(DK_EPROOF, "old size %llu is larger than new size %llu",
                        (unsigned long long)old_size, (unsigned long long)new_size);
    if (n > DK_MERKLE_MAX_PROOF)
        return dk__fail(DK_EPROOF, "consistency proof has %zu hashes, more than any tree needs", n);
    if (old_size == new_size) {
        if (n != 0)
            return dk__fail(DK_EPROOF, "equal sizes need an empty consistency proof");
        if (memcmp(old_root, new_root, 32) != 0)
            return dk__fail(DK_EPROOF, "trees of equal size %llu have different roots",
                            (unsigned long long)old_size);
        return 0;
    }
    if (old_size == 0) {
        uint8_t empty[32];
        dk_sha256("", 0, empty);
        if (n != 0)
            return dk__fail(DK_EPROOF, "consistency with the empty tree needs an empty proof");
        if (memcmp(old_root, empty, 32) != 0)
            return dk__fail(DK_EPROOF, "the root of the empty tree is not SHA-256(\"\")");
        return 0;
    }
    if (n == 0)
        return dk__fail(DK_EPROOF, "consistency proof from %llu to %llu is empty",
                        (unsigned long long)old_size, (unsigned long long)new_size);
    /* RFC 9162 2.1.4.2; a power-of-two old tree is its own first node. */
    int pow2 = (old_size & (old_size - 1)) == 0;
    size_t i = 0;
    uint8_t fr[32], sr[32];
    memcpy(fr, pow2 ? old_root : proof[0], 32);
    memcpy(sr, fr, 32);
    if (!pow2)
        i = 1;
    uint64_t fn = old_size - 1, sn = new_size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    for (; i < n; i++) {
        if (sn == 0)
            return dk__fail(DK_EPROOF, "consistency proof is longer than the tree is deep");
        if ((fn & 1) || fn == sn) {
            node_hash(proof[i], fr, fr);
            node_hash(proof[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            node_hash(sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return dk__fail(DK_EPROOF, "consistency proof is too short for a tree of %llu leaves",
                        (unsigned long long)new_size);
    if (memcmp(fr, old_root, 32) != 0)
        return dk__fail(DK_EPROOF, "consistency proof does not lead to the old root (size %llu)",
                        (unsigned long long)old_size);
    if (memcmp(sr, new_root, 32) != 0)
        return dk__fail(DK_EPROOF, "consistency proof does not lead to the new root (size %llu)",
                        (unsigned long long)new_size);
    return 0;
}
