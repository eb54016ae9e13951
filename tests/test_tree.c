/* test_tree.c - unit tests of the ledger's Merkle tree (tree.c), checkpoints
 * and hot backups (backup.c): roots and proofs of the real log, and tampering. */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <sys/file.h>

#include "docket/merkle.h"
#include "fixture.h"
#include "harness.h"
#include "rawlmdb.h"

#define ACTOR_N(k) ((1ull << 40) + (k))

typedef struct world {
    dk_ledger *lg;
    dk_key *admin, *alice, *node;
    const char *dir;
} world;

/* genesis, alice enrolled, HO-1 opened, then `notes` notes: 3 + notes records */
static void world_open(world *w, int notes)
{
    memset(w, 0, sizeof *w);
    w->dir = th_tmpdir();
    ASSERT_OK(dk_key_generate("admin", &w->admin));
    ASSERT_OK(dk_key_generate("node", &w->node));
    ASSERT_OK(dk_ledger_init(w->dir, "test", w->admin, NULL, &w->lg));
    ASSERT_OK(fx_enroll(w->lg, w->admin, "alice", "caseworker", ACTOR_N(1), &w->alice));
    dk_append_res res;
    ASSERT_OK(fx_open_case(w->lg, w->alice, "HO-1", ACTOR_N(2), NULL, &res));
    for (int i = 1; i <= notes; i++)
        ASSERT_OK(fx_append(w->lg, w->alice, "note.added", "HO-1", (uint64_t)i, NULL, &res));
    ASSERT_OK(dk_ledger_set_node_key(w->lg, dk_key_public(w->node)));
}

static void world_close(world *w)
{
    dk_ledger_close(w->lg);
    dk_key_free(w->admin);
    dk_key_free(w->alice);
    dk_key_free(w->node);
}

static void leaf_of(dk_ledger *lg, uint64_t seq, uint8_t out[32])
{
    uint8_t *raw;
    size_t len;
    ASSERT_OK(dk_ledger_get(lg, seq, &raw, &len));
    dk_leaf_hash(raw, len, out);
    free(raw);
}

/* MTH straight from RFC 9162 2.1.1, over the log's leaf hashes. */
static void naive_root(uint8_t (*leaves)[32], uint64_t n, uint8_t out[32])
{
    if (n == 1) {
        memcpy(out, leaves[0], 32);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    uint8_t buf[65] = {0x01};
    naive_root(leaves, k, buf + 1);
    naive_root(leaves + k, n - k, buf + 33);
    dk_sha256(buf, 65, out);
}

static void assert_verifies(dk_ledger *lg)
{
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(lg, &rep));
    if (!rep.ok)
        TH_FAIL("verify failed at seq %llu: %s", (unsigned long long)rep.seq, rep.reason);
}

static void expect_damage(dk_ledger *lg, const char *needle)
{
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(lg, &rep));
    if (rep.ok)
        TH_FAIL("verify passed a damaged ledger (wanted a reason naming '%s')", needle);
    ASSERT_CONTAINS(rep.reason, needle);
}

TEST(roots_and_proofs_of_the_log)
{
    world w;
    world_open(&w, 34);
    uint64_t n = 37;
    uint8_t leaves[37][32], root[32], want[32], proof[DK_MERKLE_MAX_PROOF][32];
    const uint8_t(*p)[32] = (const uint8_t(*)[32])proof;
    for (uint64_t s = 1; s <= n; s++)
        leaf_of(w.lg, s, leaves[s - 1]);
    for (uint64_t size = 1; size <= n; size++) {
        naive_root(leaves, size, want);
        ASSERT_OK(dk_ledger_root(w.lg, size, root));
        ASSERT_MEM_EQ(root, want, 32);
        for (uint64_t seq = 1; seq <= size; seq++) {
            size_t cnt;
            ASSERT_OK(dk_ledger_prove_inclusion(w.lg, seq, size, proof, &cnt));
            ASSERT_OK(dk_merkle_verify_inclusion(leaves[seq - 1], seq - 1, size, p, cnt, root));
        }
        for (uint64_t old = 1; old <= size; old++) {
            uint8_t old_root[32];
            size_t cnt;
            naive_root(leaves, old, old_root);
            ASSERT_OK(dk_ledger_prove_consistency(w.lg, old, size, proof, &cnt));
            ASSERT_OK(dk_merkle_verify_consistency(old, size, old_root, root, p, cnt));
        }
    }
    size_t cnt;
    ASSERT_ERR(dk_ledger_root(w.lg, n + 1, root), DK_EINVAL);
    ASSERT_ERR(dk_ledger_prove_inclusion(w.lg, 0, n, proof, &cnt), DK_EINVAL);
    ASSERT_ERR(dk_ledger_prove_inclusion(w.lg, 5, 4, proof, &cnt), DK_EINVAL);
    ASSERT_ERR(dk_ledger_prove_consistency(w.lg, 3, n + 1, proof, &cnt), DK_EINVAL);
    assert_verifies(w.lg);
    world_close(&w);
}

TEST(checkpoints_signed_stored_fetched)
{
    world w;
    world_open(&w, 2);
    char *note1, *note2, *again, *got, vkey[256], origin[64];
    ASSERT_OK(dk_ledger_origin(w.lg, origin));
    ASSERT_OK(dk_note_vkey(origin, dk_key_public(w.node), vkey, sizeof vkey));
    ASSERT_OK(dk_ledger_checkpoint(w.lg, w.node, &note1));
    dk_checkpoint cp;
    ASSERT_OK(dk_note_open(note1, vkey, &cp));
    ASSERT_EQ(cp.size, 5);
    ASSERT_STR_EQ(cp.origin, origin);
    uint8_t root[32];
    ASSERT_OK(dk_ledger_root(w.lg, 5, root));
    ASSERT_MEM_EQ(cp.root, root, 32);
    /* no new records: the same checkpoint comes back */
    ASSERT_OK(dk_ledger_checkpoint(w.lg, w.node, &again));
    ASSERT_STR_EQ(again, note1);
    dk_append_res res;
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 99, NULL, &res));
    ASSERT_OK(dk_ledger_checkpoint(w.lg, w.node, &note2));
    ASSERT_OK(dk_note_open(note2, vkey, &cp));
    ASSERT_EQ(cp.size, 6);
    ASSERT_OK(dk_ledger_checkpoint_get(w.lg, 5, &got));
    ASSERT_STR_EQ(got, note1);
    free(got);
    ASSERT_OK(dk_ledger_checkpoint_get(w.lg, 0, &got));
    ASSERT_STR_EQ(got, note2);
    free(got);
    ASSERT_ERR(dk_ledger_checkpoint_get(w.lg, 4, &got), DK_ENOTFOUND);
    /* only the node key signs; the node key is set once */
    ASSERT_ERR(dk_ledger_checkpoint(w.lg, w.alice, &got), DK_EDENIED);
    ASSERT_CONTAINS(dk_errmsg(), "alice");
    ASSERT_ERR(dk_ledger_set_node_key(w.lg, dk_key_public(w.alice)), DK_EEXIST);
    assert_verifies(w.lg);
    free(note1);
    free(note2);
    free(again);
    world_close(&w);
}

TEST(verify_catches_a_rewritten_tree_node)
{
    world w;
    world_open(&w, 10);
    dk_ledger_close(w.lg);
    raw_env r;
    MDB_dbi tree = raw_open(&r, w.dir, "tree");
    /* node (level 2, index 1) covers leaves 4..7: keyed by its last leaf, then level */
    uint8_t key[9] = {0, 0, 0, 0, 0, 0, 0, 7, 2}, val[32];
    memset(val, 0xAB, 32);
    MDB_val k = {9, key}, v = {32, val}, old;
    ASSERT_EQ(mdb_get(r.txn, tree, &k, &old), 0); /* it is there: overwrite it */
    ASSERT_EQ(mdb_put(r.txn, tree, &k, &v, 0), 0);
    raw_commit(&r);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    expect_damage(w.lg, "Merkle");
    world_close(&w);
}

/* Overwrite the stored Merkle node (level, index) of the closed ledger in dir. */
static void smash_node(const char *dir, unsigned level, uint64_t index)
{
    raw_env r;
    MDB_dbi tree = raw_open(&r, dir, "tree");
    uint8_t key[9], val[32];
    dk_put_be64(key, ((index + 1) << level) - 1); /* keyed by its last leaf, then level */
    key[8] = (uint8_t)level;
    memset(val, 0xAB, 32);
    MDB_val k = {9, key}, v = {32, val}, old;
    ASSERT_EQ(mdb_get(r.txn, tree, &k, &old), 0);
    ASSERT_EQ(mdb_put(r.txn, tree, &k, &v, 0), 0);
    raw_commit(&r);
}

/* A world of 13 records, checkpointed first if `first`, then `more` notes; the stored
 * node (level, index) smashed; the next checkpoint must be refused, naming `needle`. */
static void checkpoint_refused(int first, int more, unsigned level, uint64_t index,
                               const char *needle)
{
    world w;
    char *note;
    dk_append_res res;
    world_open(&w, 10);
    if (first) {
        ASSERT_OK(dk_ledger_checkpoint(w.lg, w.node, &note));
        free(note);
    }
    for (int i = 0; i < more; i++)
        ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 100 + (uint64_t)i, NULL, &res));
    dk_ledger_close(w.lg);
    smash_node(w.dir, level, index);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    ASSERT_ERR(dk_ledger_checkpoint(w.lg, w.node, &note), DK_ECORRUPT);
    ASSERT_CONTAINS(dk_errmsg(), needle);
    if (first) { /* nothing new was signed: the latest is still the first, of 13 */
        ASSERT_OK(dk_ledger_checkpoint_get(w.lg, 0, &note));
        ASSERT(strstr(note, "\n13\n") != NULL);
        free(note);
    } else {
        ASSERT_ERR(dk_ledger_checkpoint_get(w.lg, 0, &note), DK_ENOTFOUND);
    }
    world_close(&w);
}

/* helper-55's review: the node key signed whatever tree was stored, so one damaged node
 * (or a history rewritten under old checkpoints) became a signed fork of its own log. */
TEST(checkpoint_signs_only_the_tree_of_the_records)
{
    /* 13 records: the root is (3,0), (2,2), leaf 12; 16: the root is node (4,0) */
    checkpoint_refused(0, 0, 3, 0, "refusing to sign"); /* no checkpoint: all hashed afresh */
    checkpoint_refused(1, 1, 3, 0, "the checkpoint at size 13 signed"); /* under it */
    checkpoint_refused(1, 3, 4, 0, /* over the records after it */
                       "is not the tree of the records after the checkpoint at size 13");
}

/* A checkpoint signed by the node key, but under another origin than this ledger's. */
TEST(verify_names_a_checkpoint_of_another_origin)
{
    world w;
    world_open(&w, 2); /* 5 records */
    dk_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    snprintf(cp.origin, sizeof cp.origin, "docket/%032d", 7);
    cp.size = 5;
    ASSERT_OK(dk_ledger_root(w.lg, 5, cp.root));
    char *note;
    ASSERT_OK(dk_note_sign(&cp, w.node, &note));
    dk_ledger_close(w.lg);
    raw_env r;
    MDB_dbi cps = raw_open(&r, w.dir, "checkpoints");
    uint8_t key[8];
    dk_put_be64(key, 5);
    MDB_val k = {8, key}, v = {strlen(note), note};
    ASSERT_EQ(mdb_put(r.txn, cps, &k, &v, 0), 0);
    raw_commit(&r);
    free(note);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    expect_damage(w.lg, "names origin 'docket/00000000000000000000000000000007'");
    world_close(&w);
}

TEST(verify_catches_a_truncated_log_by_its_checkpoint)
{
    world w;
    world_open(&w, 6);
    char *note;
    ASSERT_OK(dk_ledger_checkpoint(w.lg, w.node, &note));
    free(note);
    dk_head h8;
    ASSERT_OK(dk_ledger_head(w.lg, &h8));
    ASSERT_EQ(h8.seq, 9);
    dk_ledger_close(w.lg);
    /* Remove the last record and set the head back to seq 8, consistently:
     * the chain alone cannot tell. The checkpoint of size 9 can. */
    uint8_t rec8[32];
    int64_t t8;
    {
        dk_ledger *lg;
        dk_ledger_opts ro = {0, 0, 1, 0};
        ASSERT_OK(dk_ledger_open(w.dir, &ro, &lg));
        leaf_of(lg, 8, rec8);
        uint8_t *raw;
        size_t len;
        dk_record rec;
        ASSERT_OK(dk_ledger_get(lg, 8, &raw, &len));
        ASSERT_OK(dk_record_decode(raw, len, &rec));
        t8 = rec.recorded_at;
        free(raw);
        dk_ledger_close(lg);
    }
    raw_env r;
    MDB_dbi log = raw_open(&r, w.dir, "log"), meta;
    ASSERT_EQ(mdb_dbi_open(r.txn, "meta", 0, &meta), 0);
    uint8_t sk[8] = {0, 0, 0, 0, 0, 0, 0, 9};
    MDB_val k = {8, sk};
    ASSERT_EQ(mdb_del(r.txn, log, &k, NULL), 0);
    uint8_t ik[16]; /* and its case index entry */
    MDB_val ck = {raw_case_key(ik, "HO-1", 9), ik};
    ASSERT_EQ(mdb_del(r.txn, raw_dbi(&r, "cases"), &ck, NULL), 0);
    MDB_val hk = {4, (void *)"head"}, hv;
    ASSERT_EQ(mdb_get(r.txn, meta, &hk, &hv), 0);
    ASSERT_EQ(hv.mv_size, 48);
    uint8_t head[48];
    memcpy(head, hv.mv_data, 48);
    head[7] = 8;
    memcpy(head + 8, rec8, 32);
    for (int i = 0; i < 8; i++)
        head[40 + i] = (uint8_t)((uint64_t)t8 >> (56 - 8 * i));
    MDB_val nv = {48, head};
    ASSERT_EQ(mdb_put(r.txn, meta, &hk, &nv, 0), 0);
    raw_commit(&r);
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(w.dir, &ro, &w.lg));
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(w.lg, &rep));
    ASSERT_EQ(rep.ok, 0);
    printf("truncation found: seq %llu: %s\n", (unsigned long long)rep.seq, rep.reason);
    ASSERT_CONTAINS(rep.reason, "checkpoint");
    world_close(&w);
}

TEST(tree_is_rebuilt_when_missing)
{
    world w;
    world_open(&w, 20);
    uint8_t before[32], after[32];
    ASSERT_OK(dk_ledger_root(w.lg, 23, before));
    dk_ledger_close(w.lg);
    raw_env r;
    MDB_dbi tree = raw_open(&r, w.dir, "tree");
    ASSERT_EQ(mdb_drop(r.txn, tree, 0), 0); /* as a ledger made before the tree */
    raw_commit(&r);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    ASSERT_OK(dk_ledger_root(w.lg, 23, after));
    ASSERT_MEM_EQ(after, before, 32);
    dk_append_res res;
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 500, NULL, &res));
    assert_verifies(w.lg);
    world_close(&w);
}

/* A tree kept by an older docket (no format mark): read-only opens do not use
 * it; the next write open builds it again from the log, with the same root. */
TEST(a_tree_of_an_older_format_is_rebuilt)
{
    world w;
    world_open(&w, 9);
    uint8_t before[32], after[32];
    ASSERT_OK(dk_ledger_root(w.lg, 12, before));
    dk_ledger_close(w.lg);
    raw_env r;
    MDB_dbi meta = raw_open(&r, w.dir, "meta"), tree = raw_dbi(&r, "tree");
    MDB_val fk = {11, (void *)"tree_format"};
    ASSERT_EQ(mdb_del(r.txn, meta, &fk, NULL), 0);
    uint8_t key[9] = {1}, val[32] = {0}; /* an old-style key: level first */
    MDB_val k = {9, key}, v = {32, val};
    ASSERT_EQ(mdb_put(r.txn, tree, &k, &v, 0), 0);
    raw_commit(&r);
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(w.dir, &ro, &w.lg));
    ASSERT_ERR(dk_ledger_root(w.lg, 12, after), DK_ENOTFOUND);
    dk_verify_report rep; /* a read-only verify says it did not check the tree */
    ASSERT_OK(dk_ledger_verify(w.lg, &rep));
    ASSERT(rep.ok);
    ASSERT_EQ(rep.tree_checked, 0);
    dk_ledger_close(w.lg);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    ASSERT_OK(dk_ledger_root(w.lg, 12, after));
    ASSERT_MEM_EQ(after, before, 32);
    assert_verifies(w.lg);
    ASSERT_OK(dk_ledger_verify(w.lg, &rep));
    ASSERT_EQ(rep.tree_checked, 1);
    world_close(&w);
}

TEST(hot_backup_is_a_verified_copy)
{
    world w;
    world_open(&w, 8);
    char dest[1100];
    snprintf(dest, sizeof dest, "%s/backup", w.dir);
    ASSERT_OK(dk_ledger_backup(w.lg, dest, NULL));
    ASSERT_ERR(dk_ledger_backup(w.lg, dest, NULL), DK_EEXIST);
    dk_append_res res;
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 77, NULL, &res)); /* after */
    dk_ledger *bk;
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(dest, &ro, &bk));
    dk_head hb;
    ASSERT_OK(dk_ledger_head(bk, &hb));
    ASSERT_EQ(hb.seq, 11);
    uint8_t a[32], b[32];
    ASSERT_OK(dk_ledger_root(bk, 11, a));
    ASSERT_OK(dk_ledger_root(w.lg, 11, b));
    ASSERT_MEM_EQ(a, b, 32);
    assert_verifies(bk);
    dk_ledger_close(bk);
    world_close(&w);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ASSERT(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0);
}

static void assert_file(const char *dir, const char *name, const char *text)
{
    char p[1300], buf[128] = {0};
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (f == NULL)
        TH_FAIL("%s is missing", p);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    ASSERT_STR_EQ(buf, text);
}

static int exists(const char *dir, const char *name)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static const char *const with_key[] = {"node.key", NULL};

/* A backup or restore goes only into a new or empty directory, or one a stopped backup or
 * restore left (its stage is cleared); never over anything else, nor beside another. */
TEST(backup_and_restore_fill_only_new_empty_or_stopped_directories)
{
    world w;
    world_open(&w, 3);
    write_file(w.dir, "node.key", "the node key");
    char d[8][1100];
    const char *names[8] = {"bk", "half", "stopped", "foreign", "busy", "r1", "r2", "r3"};
    for (int i = 0; i < 8; i++)
        snprintf(d[i], sizeof d[i], "%s/%s", w.dir, names[i]);
    ASSERT_OK(dk_ledger_backup(w.lg, d[0], with_key));
    assert_file(d[0], "node.key", "the node key");
    ASSERT(!exists(d[0], DK_BACKUP_STAGE));

    ASSERT_EQ(mkdir(d[1], 0700), 0); /* a node key alone is someone's: left as it is */
    write_file(d[1], "node.key", "theirs");
    ASSERT_ERR(dk_ledger_backup(w.lg, d[1], with_key), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), "not a new or empty directory");
    assert_file(d[1], "node.key", "theirs");

    ASSERT_EQ(mkdir(d[2], 0700), 0); /* what a backup killed part way leaves */
    ASSERT_EQ(mkdir(strcat(strcat(strcpy(d[7], d[2]), "/"), DK_BACKUP_STAGE), 0700), 0);
    write_file(d[7], "data.mdb", "half a copy");
    write_file(d[2], "node.key", "a stale key");
    ASSERT_OK(dk_ledger_backup(w.lg, d[2], with_key));
    assert_file(d[2], "node.key", "the node key");
    ASSERT(!exists(d[2], DK_BACKUP_STAGE));
    snprintf(d[7], sizeof d[7], "%s/r3", w.dir);

    ASSERT_EQ(mkdir(d[3], 0700), 0); /* a stage holding what docket does not put there */
    char stage[1200];
    snprintf(stage, sizeof stage, "%s/%s", d[3], DK_BACKUP_STAGE);
    ASSERT_EQ(mkdir(stage, 0700), 0);
    write_file(stage, "notes.txt", "someone's");
    ASSERT_ERR(dk_ledger_backup(w.lg, d[3], with_key), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), "did not put there");
    assert_file(stage, "notes.txt", "someone's");

    /* a stage replaced by a link to another directory: nothing there is touched */
    char victim[1100], linked[1100];
    snprintf(victim, sizeof victim, "%s/victim", w.dir);
    snprintf(linked, sizeof linked, "%s/linked", w.dir);
    ASSERT(mkdir(victim, 0700) == 0 && mkdir(linked, 0700) == 0);
    write_file(victim, "data.mdb", "precious");
    snprintf(stage, sizeof stage, "%s/%s", linked, DK_BACKUP_STAGE);
    ASSERT_EQ(symlink(victim, stage), 0);
    ASSERT_ERR(dk_ledger_backup(w.lg, linked, with_key), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), "not a directory docket made");
    assert_file(victim, "data.mdb", "precious");

    ASSERT_EQ(mkdir(d[4], 0700), 0); /* another backup or restore holds it */
    int fd = open(d[4], O_RDONLY | O_DIRECTORY);
    ASSERT(fd >= 0 && flock(fd, LOCK_EX) == 0);
    ASSERT_ERR(dk_ledger_backup(w.lg, d[4], with_key), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), "under way");
    dk_verify_report rep;
    ASSERT_ERR(dk_ledger_restore(d[0], d[4], with_key, &rep), DK_EEXIST);
    close(fd);
    ASSERT(!exists(d[4], "data.mdb") && !exists(d[4], DK_RESTORE_STAGE));

    ASSERT_OK(dk_ledger_restore(d[0], d[5], with_key, &rep)); /* verified, then installed */
    ASSERT(rep.ok && rep.checked == 6);
    assert_file(d[5], "node.key", "the node key");
    ASSERT(!exists(d[5], DK_RESTORE_STAGE) && !exists(d[5], "lock.mdb"));
    ASSERT_ERR(dk_ledger_restore(d[0], d[5], with_key, &rep), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), "already holds a ledger");
    ASSERT_ERR(dk_ledger_restore(d[6], d[7], with_key, &rep), DK_ENOTFOUND);
    ASSERT(!exists(d[7], "."));

    /* a backup whose record was altered does not verify: nothing is installed, and a
     * directory the restore made goes too */
    char p[1200];
    snprintf(p, sizeof p, "%s/data.mdb", d[2]);
    FILE *f = fopen(p, "r+b");
    ASSERT(f != NULL);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    int altered = 0; /* every copy of it: LMDB's free pages may hold older ones */
    for (char *at = buf; (at = memmem(at, n - (size_t)(at - buf), "note 2", 6)) != NULL; at++) {
        ASSERT(fseek(f, at - buf + 5, SEEK_SET) == 0 && fputc('8', f) == '8');
        altered++;
    }
    ASSERT(altered > 0 && fclose(f) == 0);
    ASSERT_OK(dk_ledger_restore(d[2], d[6], with_key, &rep));
    ASSERT(!rep.ok);
    ASSERT(!exists(d[6], "."));
    ASSERT_EQ(mkdir(d[7], 0700), 0);
    ASSERT_OK(dk_ledger_restore(d[2], d[7], with_key, &rep));
    ASSERT(!rep.ok);
    ASSERT(exists(d[7], ".") && !exists(d[7], "data.mdb") && !exists(d[7], "node.key") &&
           !exists(d[7], DK_RESTORE_STAGE));
    world_close(&w);
}

/* What a stopped backup did not leave is refused and left as it is, even beside what it
 * would have left; `also` names only plain files; a source key that cannot be read fails
 * the backup instead of leaving it out. */
TEST(backup_touches_nothing_a_stopped_one_did_not_leave)
{
    world w;
    world_open(&w, 1);
    char d[1100], stage[1200];
    snprintf(d, sizeof d, "%s/mixed", w.dir);
    snprintf(stage, sizeof stage, "%s/%s", d, DK_BACKUP_STAGE);
    ASSERT(mkdir(d, 0700) == 0 && mkdir(stage, 0700) == 0);
    write_file(stage, "data.mdb", "half a copy");
    write_file(stage, "node.key", "a staged key");
    write_file(stage, "notes.txt", "someone's");
    ASSERT_ERR(dk_ledger_backup(w.lg, d, with_key), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), "did not put there");
    assert_file(stage, "data.mdb", "half a copy"); /* nothing removed, ours or not */
    assert_file(stage, "node.key", "a staged key");
    assert_file(stage, "notes.txt", "someone's");

    snprintf(d, sizeof d, "%s/dirstage", w.dir); /* a stage's data.mdb that is a directory */
    snprintf(stage, sizeof stage, "%s/%s", d, DK_BACKUP_STAGE);
    ASSERT(mkdir(d, 0700) == 0 && mkdir(stage, 0700) == 0);
    write_file(d, "node.key", "theirs");
    write_file(stage, "node.key", "theirs too");
    char sub[1300];
    snprintf(sub, sizeof sub, "%s/data.mdb", stage);
    ASSERT_EQ(mkdir(sub, 0700), 0);
    ASSERT_ERR(dk_ledger_backup(w.lg, d, with_key), DK_EEXIST);
    assert_file(d, "node.key", "theirs");
    assert_file(stage, "node.key", "theirs too");

    snprintf(d, sizeof d, "%s/emptystage", w.dir); /* no copy staged: the key is someone's */
    snprintf(stage, sizeof stage, "%s/%s", d, DK_BACKUP_STAGE);
    ASSERT(mkdir(d, 0700) == 0 && mkdir(stage, 0700) == 0);
    write_file(d, "node.key", "theirs");
    ASSERT_ERR(dk_ledger_backup(w.lg, d, with_key), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), "not a new or empty directory");
    assert_file(d, "node.key", "theirs");

    snprintf(d, sizeof d, "%s/names", w.dir);
    const char *const bad[][2] = {
        {"../x", NULL}, {"data.mdb", NULL}, {"", NULL}, {DK_RESTORE_STAGE, NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_ERR(dk_ledger_backup(w.lg, d, bad[i]), DK_EINVAL);
        ASSERT(access(d, F_OK) != 0);
    }

    char key[1100];
    snprintf(key, sizeof key, "%s/node.key", w.dir);
    ASSERT_EQ(symlink("/nonexistent/node.key", key), 0); /* there, but unreadable */
    snprintf(d, sizeof d, "%s/nokey", w.dir);
    ASSERT_ERR(dk_ledger_backup(w.lg, d, with_key), DK_EIO);
    ASSERT_CONTAINS(dk_errmsg(), "node.key");
    ASSERT(access(d, F_OK) != 0);                       /* made, and removed again */
    ASSERT(unlink(key) == 0 && mkfifo(key, 0600) == 0); /* read, it would never end */
    ASSERT_ERR(dk_ledger_backup(w.lg, d, with_key), DK_EINVAL);
    ASSERT_CONTAINS(dk_errmsg(), "not a regular file");
    ASSERT(access(d, F_OK) != 0);
    world_close(&w);
}

TH_MAIN(TH_ENTRY(roots_and_proofs_of_the_log) TH_ENTRY(checkpoints_signed_stored_fetched) TH_ENTRY(
    verify_catches_a_rewritten_tree_node) TH_ENTRY(checkpoint_signs_only_the_tree_of_the_records)
            TH_ENTRY(verify_names_a_checkpoint_of_another_origin)
                TH_ENTRY(verify_catches_a_truncated_log_by_its_checkpoint) TH_ENTRY(
                    tree_is_rebuilt_when_missing) TH_ENTRY(a_tree_of_an_older_format_is_rebuilt)
                    TH_ENTRY(hot_backup_is_a_verified_copy)
                        TH_ENTRY(backup_and_restore_fill_only_new_empty_or_stopped_directories)
                            TH_ENTRY(backup_touches_nothing_a_stopped_one_did_not_leave))
