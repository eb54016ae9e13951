/* tree.c - the ledger's Merkle tree (RFC 6962) kept in LMDB beside the log:
 * complete-subtree hashes written at append, roots, proofs and checkpoints. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

typedef struct tree_ctx {
    dk_ledger *lg;
    MDB_txn *txn;
    int mdb_rc; /* the last LMDB failure, so MAP_FULL can be told apart */
} tree_ctx;

/* A node's key: the last leaf it covers, then its level. Every node that
 * leaf i completes ends at i, so an append's nodes sort after all others and
 * are written with MDB_APPEND into full pages. */
static void node_key(uint8_t key[9], unsigned level, uint64_t index)
{
    dk_put_be64(key, ((index + 1) << level) - 1);
    key[8] = (uint8_t)level;
}

#define TREE_FORMAT "2" /* meta "tree_format": keys by last leaf, then level */

static int get_node(void *p, unsigned level, uint64_t index, uint8_t out[32])
{
    tree_ctx *c = p;
    uint8_t key[9];
    node_key(key, level, index);
    MDB_val k = {9, key}, v;
    int rc = mdb_get(c->txn, c->lg->tree, &k, &v);
    if (rc == 0 && v.mv_size == 32) {
        memcpy(out, v.mv_data, 32);
        return 0;
    }
    c->mdb_rc = rc;
    if (rc == MDB_NOTFOUND || rc == 0)
        return dk__fail(DK_ECORRUPT, "Merkle node (%u, %llu) is missing", level,
                        (unsigned long long)index);
    return dk__mdb_err(rc, "cannot read the Merkle tree");
}

static int put_node(void *p, unsigned level, uint64_t index, const uint8_t h[32])
{
    tree_ctx *c = p;
    uint8_t key[9];
    node_key(key, level, index);
    MDB_val k = {9, key}, v = {32, (void *)h};
    int rc = mdb_put(c->txn, c->lg->tree, &k, &v, MDB_APPEND);
    c->mdb_rc = rc;
    return rc ? dk__mdb_err(rc, "cannot write the Merkle tree") : 0;
}

int dk__tree_append(dk_ledger *lg, MDB_txn *txn, uint64_t seq, const uint8_t leaf[32])
{
    tree_ctx c = {lg, txn, 0};
    int rc = dk_merkle_append(get_node, put_node, &c, seq - 1, leaf);
    return rc && c.mdb_rc == MDB_MAP_FULL ? DK__MAPFULL : rc;
}

int dk__tree_node(dk_ledger *lg, MDB_txn *txn, unsigned level, uint64_t index, uint8_t out[32])
{
    tree_ctx c = {lg, txn, 0};
    return get_node(&c, level, index, out);
}

int dk__tree_root(dk_ledger *lg, MDB_txn *txn, uint64_t size, uint8_t root[32])
{
    tree_ctx c = {lg, txn, 0};
    return dk_merkle_root(get_node, &c, size, root);
}

static int head_seq(dk_ledger *lg, MDB_txn *txn, uint64_t *seq)
{
    MDB_val k = {4, (void *)"head"}, v;
    int rc = mdb_get(txn, lg->meta, &k, &v);
    *seq = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc || v.mv_size != 48)
        return dk__mdb_err(rc ? rc : MDB_CORRUPTED, "cannot read the ledger head");
    *seq = dk_get_be64(v.mv_data);
    return 0;
}

/* A tree kept by an older docket (another key order) is dropped, to be
 * built again from the log; an empty one is marked with this format. */
static int tree_migrate_in(dk_ledger *lg, MDB_txn *txn, void *arg)
{
    (void)arg;
    int rc = dk__meta_is(lg, txn, "tree_format", TREE_FORMAT);
    if (rc)
        return rc < 0 ? rc : 0;
    if ((rc = mdb_drop(txn, lg->tree, 0)) == 0)
        rc = dk__meta_set(lg, txn, "tree_format", TREE_FORMAT);
    return rc ? dk__mdb_err(rc, "cannot reset the Merkle tree") : 0;
}

static int tree_migrate(dk_ledger *lg)
{
    return dk__write_txn(lg, tree_migrate_in, NULL);
}

int dk__tree_check_format(dk_ledger *lg)
{
    MDB_txn *txn;
    if (lg->tree == 0)
        return 0;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    if (dk__meta_is(lg, txn, "tree_format", TREE_FORMAT) != 1)
        lg->tree = 0;
    dk__read_end(lg, txn);
    return 0;
}

/* Leaves the tree holds, read inside `txn`: the last key's last leaf plus
 * one. A last key that cannot be this format's (or covers leaves beyond the
 * head) means the tree is not ours: it is dropped, to be built again. */
static int tree_have(dk_ledger *lg, MDB_txn *txn, uint64_t head, uint64_t *have)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *have = 0;
    int rc = mdb_cursor_open(txn, lg->tree, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot open a cursor");
    int g = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (g == MDB_NOTFOUND)
        return 0;
    if (g)
        return dk__mdb_err(g, "cannot read the Merkle tree");
    const uint8_t *kp = k.mv_data;
    if (k.mv_size == 9 && kp[8] < 64 && dk_get_be64(kp) < head) {
        *have = dk_get_be64(kp) + 1;
        return 0;
    }
    rc = mdb_drop(txn, lg->tree, 0);
    return rc ? dk__mdb_err(rc, "cannot reset the Merkle tree") : 0;
}

int dk__tree_backfill(dk_ledger *lg)
{
    int rc = tree_migrate(lg);
    /* Add the missing leaves in batches of one transaction each; each batch
     * reads where the tree ends in its own transaction, so another process
     * building at the same time is simply followed. */
    for (int more = 1; rc == 0 && more;) {
        MDB_txn *txn;
        uint64_t head, have;
        pthread_rwlock_rdlock(&lg->txn_lock);
        if ((rc = mdb_txn_begin(lg->env, NULL, 0, &txn)) != 0) {
            pthread_rwlock_unlock(&lg->txn_lock);
            return dk__mdb_err(rc, "cannot begin a transaction to build the Merkle tree");
        }
        rc = head_seq(lg, txn, &head);
        if (rc == 0)
            rc = tree_have(lg, txn, head, &have);
        for (uint64_t n = 0; rc == 0 && have < head && n < 10000; n++, have++) {
            uint8_t sk[8], leaf[32];
            dk_put_be64(sk, have + 1);
            MDB_val k = {8, sk}, v;
            if ((rc = mdb_get(txn, lg->log, &k, &v)) == MDB_NOTFOUND) {
                rc = dk__fail(DK_ECORRUPT,
                              "the ledger's head is record %llu, but its log has no record %llu",
                              (unsigned long long)head, (unsigned long long)have + 1);
                break;
            }
            if (rc != 0) {
                rc = dk__mdb_err(rc, "cannot read the log to build the Merkle tree");
                break;
            }
            dk_leaf_hash(v.mv_data, v.mv_size, leaf);
            rc = dk__tree_append(lg, txn, have + 1, leaf);
        }
        more = rc == 0 && have < head;
        if (rc == 0 && (rc = mdb_txn_commit(txn)) != 0)
            rc = dk__commit_err(lg->env, rc, "cannot commit the Merkle tree");
        else if (rc)
            mdb_txn_abort(txn);
        pthread_rwlock_unlock(&lg->txn_lock);
        if (rc == DK__MAPFULL)
            rc = dk__fail(DK_EIO, "the map is full building the tree");
    }
    return rc;
}

/* ---- public: roots and proofs ---- */

static int with_read(dk_ledger *lg, MDB_txn **txn, uint64_t *head)
{
    *head = 0;
    if (lg->tree == 0)
        return dk__fail(DK_ENOTFOUND, "this ledger has no Merkle tree yet (open it for writing "
                                      "once to build it)");
    int rc = dk__read_begin(lg, txn);
    if (rc == 0 && (rc = head_seq(lg, *txn, head)) != 0)
        dk__read_end(lg, *txn);
    return rc;
}

int dk_ledger_root(dk_ledger *lg, uint64_t size, uint8_t root[32])
{
    MDB_txn *txn;
    uint64_t head;
    int rc = with_read(lg, &txn, &head);
    if (rc)
        return rc;
    if (size > head)
        rc = dk__fail(DK_EINVAL, "tree size %llu is beyond the head (%llu)",
                      (unsigned long long)size, (unsigned long long)head);
    else
        rc = dk__tree_root(lg, txn, size, root);
    dk__read_end(lg, txn);
    return rc;
}

int dk_ledger_prove_inclusion(dk_ledger *lg, uint64_t seq, uint64_t size, uint8_t proof[][32],
                              size_t *n)
{
    MDB_txn *txn;
    uint64_t head;
    int rc = with_read(lg, &txn, &head);
    if (rc)
        return rc;
    tree_ctx c = {lg, txn, 0};
    if (size > head || seq == 0 || seq > size)
        rc = dk__fail(DK_EINVAL, "record %llu is not in a tree of size %llu (head %llu)",
                      (unsigned long long)seq, (unsigned long long)size, (unsigned long long)head);
    else
        rc = dk_merkle_inclusion_proof(get_node, &c, seq - 1, size, proof, n);
    dk__read_end(lg, txn);
    return rc;
}

int dk_ledger_prove_consistency(dk_ledger *lg, uint64_t old_size, uint64_t new_size,
                                uint8_t proof[][32], size_t *n)
{
    MDB_txn *txn;
    uint64_t head;
    int rc = with_read(lg, &txn, &head);
    if (rc)
        return rc;
    tree_ctx c = {lg, txn, 0};
    if (new_size > head || old_size == 0 || old_size > new_size)
        rc = dk__fail(DK_EINVAL, "need 0 < old size <= new size <= head (%llu); got %llu, %llu",
                      (unsigned long long)head, (unsigned long long)old_size,
                      (unsigned long long)new_size);
    else
        rc = dk_merkle_consistency_proof(get_node, &c, old_size, new_size, proof, n);
    dk__read_end(lg, txn);
    return rc;
}

/* ---- the node key and checkpoints ---- */

int dk_ledger_origin(dk_ledger *lg, char origin[64])
{
    char id[33], name[65];
    int rc = dk_ledger_info(lg, id, name);
    if (rc == 0)
        snprintf(origin, 64, "docket/%s", id);
    return rc;
}

int dk_ledger_node_key(dk_ledger *lg, uint8_t pk[DK_PUBKEY_BYTES])
{
    MDB_txn *txn;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    MDB_val k = {11, (void *)"node_pubkey"}, v;
    rc = mdb_get(txn, lg->meta, &k, &v);
    if (rc == 0 && v.mv_size == DK_PUBKEY_BYTES)
        memcpy(pk, v.mv_data, DK_PUBKEY_BYTES);
    dk__read_end(lg, txn);
    if (rc == MDB_NOTFOUND)
        return dk__fail(DK_ENOTFOUND, "this ledger has no node key yet");
    return dk__mdb_err(rc, "cannot read the node key");
}

static int set_node_key(dk_ledger *lg, MDB_txn *txn, void *arg)
{
    MDB_val k = {11, (void *)"node_pubkey"}, v = {DK_PUBKEY_BYTES, arg};
    int rc = mdb_put(txn, lg->meta, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return dk__fail(DK_EEXIST, "this ledger already has a node key");
    return dk__mdb_err(rc, "cannot record the node key");
}

int dk_ledger_set_node_key(dk_ledger *lg, const uint8_t pk[DK_PUBKEY_BYTES])
{
    return dk__write_txn(lg, set_node_key, (void *)pk);
}

typedef struct ckpt_arg {
    const dk_key *node;
    char *note;
} ckpt_arg;

int dk__tree_frontier(dk_ledger *lg, MDB_txn *txn, uint64_t size, dk__frontier *f)
{
    f->n = 0;
    f->nformed = 0;
    uint64_t start = 0;
    for (int l = 63; l >= 0; l--) {
        if (!(size >> l & 1))
            continue;
        int rc = dk__tree_node(lg, txn, (unsigned)l, start >> l, f->h[f->n]);
        if (rc)
            return rc;
        f->size[f->n++] = 1ull << l;
        start += 1ull << l;
    }
    return 0;
}

int dk__ledger_origin_in(dk_ledger *lg, MDB_txn *txn, char origin[DK_ORIGIN_MAX + 1])
{
    MDB_val ik = {9, (void *)"ledger_id"}, iv;
    int rc = mdb_get(txn, lg->meta, &ik, &iv);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return dk__mdb_err(rc, "cannot read the ledger id");
    if (rc != 0 || iv.mv_size != 32)
        return dk__fail(DK_ECORRUPT, "the ledger has no id");
    snprintf(origin, DK_ORIGIN_MAX + 1, "docket/%.32s", (const char *)iv.mv_data);
    return 0;
}

/* The latest checkpoint below `size`, verified against the node key `pk` under `origin`:
 * its size, or 0 (and its root) if there is none. */
static int last_checkpoint(dk_ledger *lg, MDB_txn *txn, uint64_t size, const char *origin,
                           const uint8_t pk[DK_PUBKEY_BYTES], uint64_t *at, uint8_t root[32])
{
    *at = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, lg->checkpoints, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot read the checkpoints");
    uint8_t key[8];
    dk_put_be64(key, size);
    MDB_val k = {8, key}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = mdb_cursor_get(cur, &k, &v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    char *note = rc == 0 ? strndup(v.mv_data, v.mv_size) : NULL;
    uint64_t cp_size = rc == 0 && k.mv_size == 8 ? dk_get_be64(k.mv_data) : 0;
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return dk__mdb_err(rc, "cannot read the checkpoints");
    if (note == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    char vkey[DK_ORIGIN_MAX + 128];
    dk_checkpoint cp;
    rc = dk_note_vkey(origin, pk, vkey, sizeof vkey);
    if (rc == 0)
        rc = dk_note_open(note, vkey, &cp);
    if (rc == 0 && cp.size != cp_size)
        rc = DK_EPROOF;
    free(note);
    if (rc)
        return dk__fail(DK_ECORRUPT,
                        "the stored checkpoint at size %llu does not verify against this "
                        "ledger's node key and origin: refusing to sign another (docket verify "
                        "names the damage)",
                        (unsigned long long)cp_size);
    *at = cp_size;
    memcpy(root, cp.root, 32);
    return 0;
}

/* Before the node key signs the stored tree at `size`: it must be the tree of the records.
 * The stored nodes covering the leaves of the last checkpoint must hash to that
 * checkpoint's root, and the records after it, hashed afresh, must extend them to
 * `root` (which the stored nodes gave). Without this a damaged node, or a history
 * rewritten under old checkpoints, was signed as it was: a fork of the node's own log. */
static int tree_matches_records(dk_ledger *lg, MDB_txn *txn, uint64_t size, const char *origin,
                                const uint8_t pk[DK_PUBKEY_BYTES], const uint8_t root[32])
{
    uint64_t m;
    uint8_t signed_root[32], got[32];
    int rc = last_checkpoint(lg, txn, size, origin, pk, &m, signed_root);
    if (rc)
        return rc;
    dk__frontier f;
    if ((rc = dk__tree_frontier(lg, txn, m, &f)) != 0)
        return rc;
    if (m > 0) {
        dk__frontier_root(&f, got);
        if (memcmp(got, signed_root, 32) != 0)
            return dk__fail(DK_ECORRUPT,
                            "the stored Merkle tree does not hash to the root the checkpoint at "
                            "size %llu signed: refusing to sign (docket verify names the damage)",
                            (unsigned long long)m);
    }
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, lg->log, &cur)) != 0)
        return dk__mdb_err(rc, "cannot read the ledger");
    uint8_t key[8];
    dk_put_be64(key, m + 1);
    MDB_val k = {8, key}, v;
    uint64_t seq = m;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0 && seq < size;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || dk_get_be64(k.mv_data) != seq + 1)
            break;
        uint8_t leaf[32];
        dk_leaf_hash(v.mv_data, v.mv_size, leaf);
        dk__frontier_push(&f, leaf);
        seq++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return dk__mdb_err(rc, "cannot read the ledger");
    if (seq != size)
        return dk__fail(DK_ECORRUPT, "the log lacks record %llu below its head %llu",
                        (unsigned long long)seq + 1, (unsigned long long)size);
    dk__frontier_root(&f, got);
    if (memcmp(got, root, 32) != 0)
        return dk__fail(DK_ECORRUPT,
                        "the stored Merkle tree's root at size %llu is not the tree of the "
                        "records after the checkpoint at size %llu: refusing to sign (docket "
                        "verify names the damage)",
                        (unsigned long long)size, (unsigned long long)m);
    return 0;
}

static int add_checkpoint(dk_ledger *lg, MDB_txn *txn, void *p)
{
    ckpt_arg *a = p;
    dk_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    int rc = head_seq(lg, txn, &cp.size);
    if (rc)
        return rc;
    if (cp.size == 0)
        return dk__fail(DK_EINVAL, "the ledger is empty");
    uint8_t key[8];
    dk_put_be64(key, cp.size);
    MDB_val k = {8, key}, v;
    if ((rc = mdb_get(txn, lg->checkpoints, &k, &v)) == 0) { /* already there */
        if ((a->note = strndup(v.mv_data, v.mv_size)) == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        return 0;
    }
    if (rc != MDB_NOTFOUND) /* a broken page: this transaction is spent */
        return dk__mdb_err(rc, "cannot read the checkpoints");
    /* the signing key is the node key (dk_ledger_checkpoint compared them) */
    if ((rc = dk__ledger_origin_in(lg, txn, cp.origin)) != 0 ||
        (rc = dk__tree_root(lg, txn, cp.size, cp.root)) != 0 ||
        (rc = tree_matches_records(lg, txn, cp.size, cp.origin, dk_key_public(a->node), cp.root)) !=
            0)
        return rc;
    if ((rc = dk_note_sign(&cp, a->node, &a->note)) != 0)
        return rc;
    v.mv_size = strlen(a->note);
    v.mv_data = a->note;
    if ((rc = mdb_put(txn, lg->checkpoints, &k, &v, 0)) != 0) {
        free(a->note);
        a->note = NULL;
        return dk__mdb_err(rc, "cannot store the checkpoint");
    }
    return 0;
}

int dk_ledger_checkpoint(dk_ledger *lg, const dk_key *node, char **note)
{
    uint8_t pk[DK_PUBKEY_BYTES];
    *note = NULL;
    int rc = dk_ledger_node_key(lg, pk);
    if (rc)
        return rc;
    if (memcmp(pk, dk_key_public(node), DK_PUBKEY_BYTES) != 0)
        return dk__fail(DK_EDENIED, "key '%s' is not this ledger's node key", dk_key_id(node));
    ckpt_arg a = {node, NULL};
    rc = dk__write_txn(lg, add_checkpoint, &a);
    *note = a.note;
    return rc;
}

int dk_ledger_checkpoint_get(dk_ledger *lg, uint64_t size, char **note)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    *note = NULL;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    uint8_t key[8];
    dk_put_be64(key, size);
    MDB_val k = {8, key}, v;
    if ((rc = mdb_cursor_open(txn, lg->checkpoints, &cur)) == 0) {
        rc = mdb_cursor_get(cur, &k, &v, size ? MDB_SET_KEY : MDB_LAST);
        mdb_cursor_close(cur);
    }
    if (rc == 0 && (*note = strndup(v.mv_data, v.mv_size)) == NULL)
        rc = ENOMEM;
    dk__read_end(lg, txn);
    if (rc == MDB_NOTFOUND) {
        if (size)
            return dk__fail(DK_ENOTFOUND, "no checkpoint of tree size %llu is stored",
                            (unsigned long long)size);
        return dk__fail(DK_ENOTFOUND, "no checkpoint is stored yet (docket checkpoint makes one)");
    }
    return dk__mdb_err(rc, "cannot read the checkpoints");
}
