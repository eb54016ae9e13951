/* chainsum.c - the ledger's hash chain checked with its records met in any order: a keyed
 * multiset sum of (seq, hash of record seq) against one of (seq - 1, prev of record seq). */
#include <string.h>

#include <sodium.h>

#include "views_int.h"

/* Record s links to record s - 1 when its prev is that record's hash. Over records 1..head
 * the chain holds iff the multiset {(0, zeros)} + {(s, hash_s)} equals {(s - 1, prev_s)} +
 * {(head, hash_head)}: each side then holds every seq 0..head exactly once, so the two agree
 * pair by pair. Each pair is mapped through SipHash-2-4 (128 bits) under a key drawn at
 * random for this rebuild and the images are added mod 2^128: a ledger made to fool the
 * sums would have to predict a keyed PRF (Clarke et al., incremental multiset hashes). A
 * record missing or met twice moves both sides off their seqs and shows the same way. */

void dk__chain_init(dk__chainsum *c, const uint8_t key[DK__CHAIN_KEY_BYTES])
{
    memset(c, 0, sizeof *c);
    memcpy(c->key, key, DK__CHAIN_KEY_BYTES);
}

void dk__chain_new_key(uint8_t key[DK__CHAIN_KEY_BYTES])
{
    randombytes_buf(key, DK__CHAIN_KEY_BYTES);
}

static void add_pair(uint64_t sum[2], const uint8_t *key, uint64_t seq, const uint8_t h[32])
{
    uint8_t in[8 + DK_HASH_BYTES], out[crypto_shorthash_siphashx24_BYTES];
    for (int i = 0; i < 8; i++)
        in[i] = (uint8_t)(seq >> (56 - 8 * i));
    memcpy(in + 8, h, DK_HASH_BYTES);
    crypto_shorthash_siphashx24(out, in, sizeof in, key);
    uint64_t lo, hi;
    memcpy(&lo, out, 8);
    memcpy(&hi, out + 8, 8);
    sum[0] += lo;
    sum[1] += hi + (sum[0] < lo);
}

void dk__chain_add(dk__chainsum *c, uint64_t seq, const uint8_t hash[DK_HASH_BYTES],
                   const uint8_t prev[DK_HASH_BYTES])
{
    add_pair(c->links, c->key, seq, hash);
    add_pair(c->prevs, c->key, seq - 1, prev);
    c->records++;
}

void dk__chain_merge(dk__chainsum *into, const dk__chainsum *c)
{
    into->links[0] += c->links[0];
    into->links[1] += c->links[1] + (into->links[0] < c->links[0]);
    into->prevs[0] += c->prevs[0];
    into->prevs[1] += c->prevs[1] + (into->prevs[0] < c->prevs[0]);
    into->records += c->records;
}

int dk__chain_closes(const dk__chainsum *c, uint64_t head, const uint8_t last[DK_HASH_BYTES])
{
    static const uint8_t zeros[DK_HASH_BYTES];
    uint64_t links[2] = {c->links[0], c->links[1]}, prevs[2] = {c->prevs[0], c->prevs[1]};
    add_pair(links, c->key, 0, zeros);
    add_pair(prevs, c->key, head, last);
    return c->records == head && links[0] == prevs[0] && links[1] == prevs[1];
}
