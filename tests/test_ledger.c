/* test_ledger.c - unit tests of the LMDB ledger: init, reopen, idempotency,
 * optimistic concurrency, actor keys and revocation, concurrent appends, map
 * growth, reads by case and time, and tamper detection by verify. */
#define _GNU_SOURCE /* unshare, CLONE_NEWNS */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "docket/lmdbfile.h"
#include "fixture.h"
#include "harness.h"
#include "rawlmdb.h"

#define ACTOR_N(k) ((1ull << 40) + (k)) /* command-id seeds for actor events */

typedef struct world {
    dk_ledger *lg;
    dk_key *admin, *alice, *bob;
    const char *dir;
} world;

static void world_open(world *w, const dk_ledger_opts *opts)
{
    memset(w, 0, sizeof *w);
    w->dir = th_tmpdir();
    ASSERT_OK(dk_key_generate("admin", &w->admin));
    ASSERT_OK(dk_ledger_init(w->dir, "test", w->admin, opts, &w->lg));
    ASSERT_OK(fx_enroll(w->lg, w->admin, "alice", "caseworker", ACTOR_N(1), &w->alice));
    ASSERT_OK(
        fx_enroll(w->lg, w->admin, "bob", "caseworker,senior_caseworker", ACTOR_N(2), &w->bob));
    dk_append_res res;
    ASSERT_OK(fx_open_case(w->lg, w->alice, "HO-1", ACTOR_N(3), NULL, &res));
    ASSERT_EQ(res.seq, 4);
}

static void world_close(world *w)
{
    dk_ledger_close(w->lg);
    dk_key_free(w->admin);
    dk_key_free(w->alice);
    dk_key_free(w->bob);
}

static void assert_verifies(dk_ledger *lg, uint64_t records)
{
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(lg, &rep));
    if (!rep.ok)
        TH_FAIL("verify failed at seq %llu: %s", (unsigned long long)rep.seq, rep.reason);
    ASSERT_EQ(rep.checked, records);
}

TEST(init_append_reopen)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    for (uint64_t i = 1; i <= 10; i++) {
        ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", i, NULL, &res));
        ASSERT_EQ(res.seq, 4 + i);
        ASSERT_EQ(res.duplicate, 0);
    }
    dk_head before, after;
    ASSERT_OK(dk_ledger_head(w.lg, &before));
    ASSERT_EQ(before.seq, 14);
    char id[33], name[65];
    ASSERT_OK(dk_ledger_info(w.lg, id, name));
    ASSERT_STR_EQ(name, "test");
    ASSERT_EQ(strlen(id), 32);
    dk_ledger_close(w.lg);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    ASSERT_OK(dk_ledger_head(w.lg, &after));
    ASSERT_EQ(after.seq, before.seq);
    ASSERT_MEM_EQ(after.hash, before.hash, DK_HASH_BYTES);
    ASSERT_EQ(after.recorded_at, before.recorded_at);
    assert_verifies(w.lg, 14);
    /* The chain continues after reopening. */
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 11, NULL, &res));
    ASSERT_EQ(res.seq, 15);
    uint8_t *raw;
    size_t len;
    dk_record rec;
    ASSERT_OK(dk_ledger_get(w.lg, 15, &raw, &len));
    ASSERT_OK(dk_record_decode(raw, len, &rec));
    ASSERT_MEM_EQ(rec.prev, before.hash, DK_HASH_BYTES);
    ASSERT(rec.recorded_at > before.recorded_at);
    free(raw);
    assert_verifies(w.lg, 15);
    world_close(&w);
}

TEST(init_refuses_existing_and_open_refuses_missing)
{
    world w;
    world_open(&w, NULL);
    dk_ledger *again;
    ASSERT_ERR(dk_ledger_init(w.dir, "again", w.admin, NULL, &again), DK_EEXIST);
    ASSERT(again == NULL);
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope", w.dir);
    ASSERT_ERR(dk_ledger_open(missing, NULL, &again), DK_ENOTFOUND);
    ASSERT(again == NULL);
    world_close(&w);
}

TEST(idempotent_retry)
{
    world w;
    world_open(&w, NULL);
    fx_event fe;
    dk_append_res r1, r2;
    ASSERT_OK(fx_make(&fe, w.alice, "note.added", "HO-1", 7, NULL, 0, NULL));
    ASSERT_OK(dk_ledger_append(w.lg, &fe.req, &r1));
    ASSERT_OK(dk_ledger_append(w.lg, &fe.req, &r2));
    ASSERT_EQ(r1.duplicate, 0);
    ASSERT_EQ(r2.duplicate, 1);
    ASSERT_EQ(r2.seq, r1.seq);
    fx_free(&fe);
    /* The same command id with another body is refused, naming the seq. */
    uint8_t data[] = {0x81, 0xa4, 't', 'e', 'x', 't', 0xa1, 'x'};
    ASSERT_OK(fx_make(&fe, w.alice, "note.added", "HO-1", 7, data, sizeof data, NULL));
    ASSERT_ERR(dk_ledger_append(w.lg, &fe.req, &r2), DK_ECMDREUSE);
    ASSERT_CONTAINS(r2.errmsg, "already used by seq 5");
    fx_free(&fe);
    dk_head h;
    ASSERT_OK(dk_ledger_head(w.lg, &h));
    ASSERT_EQ(h.seq, r1.seq);
    uint64_t v;
    ASSERT_OK(dk_ledger_case_version(w.lg, "HO-1", &v));
    ASSERT_EQ(v, 2);
    world_close(&w);
}

/* The ledger's data.mdb in `dir`, whole, into a new buffer (*n bytes). */
static uint8_t *file_bytes(const char *dir, size_t *n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    ASSERT(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    ASSERT(len > 0);
    rewind(f);
    uint8_t *b = malloc((size_t)len);
    ASSERT(b != NULL);
    ASSERT(fread(b, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

TEST(expected_version_conflict)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    uint64_t zero = 0, one = 1, five = 5;
    ASSERT_OK(fx_open_case(w.lg, w.alice, "HO-9", 1, &zero, &res));
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-9", 2, &one, &res));
    /* a refused append writes nothing: the file is byte for byte as it was (helper-70:
     * the batch's empty commit rewrote the meta page) */
    size_t n0, n1;
    uint8_t *before = file_bytes(w.dir, &n0);
    ASSERT_ERR(fx_append(w.lg, w.alice, "note.added", "HO-9", 3, &five, &res), DK_ECONFLICT);
    ASSERT_CONTAINS(res.errmsg, "version 2");
    ASSERT_CONTAINS(res.errmsg, "expected 5");
    ASSERT_ERR(fx_append(w.lg, w.alice, "note.added", "HO-9", 4, &one, &res), DK_ECONFLICT);
    uint8_t *after = file_bytes(w.dir, &n1);
    ASSERT_EQ(n1, n0);
    ASSERT(memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    uint64_t v;
    ASSERT_OK(dk_ledger_case_version(w.lg, "HO-9", &v));
    ASSERT_EQ(v, 2);
    assert_verifies(w.lg, 6);
    world_close(&w);
}

TEST(signature_checks)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    /* Signed by alice's key but claiming to be bob. */
    fx_event fe;
    ASSERT_OK(fx_make(&fe, w.alice, "note.added", "HO-1", 1, NULL, 0, NULL));
    dk_event ev;
    ASSERT_OK(dk_event_decode(fe.body, fe.body_len, &ev));
    strcpy(fe.sig.actor, "bob");
    ASSERT_ERR(dk_ledger_append(w.lg, &fe.req, &res), DK_EBADSIG);
    ASSERT_CONTAINS(res.errmsg, "author");
    /* bob's body with alice's signature. */
    fx_free(&fe);
    fx_event fb, fa;
    ASSERT_OK(fx_make(&fb, w.bob, "note.added", "HO-1", 2, NULL, 0, NULL));
    ASSERT_OK(fx_make(&fa, w.alice, "note.added", "HO-1", 3, NULL, 0, NULL));
    memcpy(fb.sig.sig, fa.sig.sig, DK_SIG_BYTES);
    ASSERT_ERR(dk_ledger_append(w.lg, &fb.req, &res), DK_EBADSIG);
    ASSERT_CONTAINS(res.errmsg, "bob");
    /* one flipped bit in the body */
    fa.body[fa.body_len - 1] ^= 1;
    ASSERT_ERR(dk_ledger_append(w.lg, &fa.req, &res), DK_EBADSIG);
    fx_free(&fa);
    fx_free(&fb);
    /* an actor that was never enrolled */
    dk_key *mallory;
    ASSERT_OK(dk_key_generate("mallory", &mallory));
    ASSERT_ERR(fx_append(w.lg, mallory, "note.added", "HO-1", 4, NULL, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "mallory");
    dk_key_free(mallory);
    dk_head h;
    ASSERT_OK(dk_ledger_head(w.lg, &h));
    ASSERT_EQ(h.seq, 4);
    world_close(&w);
}

TEST(revocation_and_rotation)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 1, NULL, &res));
    /* Only an admin changes actors. */
    ASSERT_ERR(fx_actor_event(w.lg, w.bob, "actor.revoked", "alice", NULL, NULL, ACTOR_N(10), &res),
               DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "admin");
    /* Rotate alice's key: the old one stops working, the new one works. */
    dk_key *alice2;
    ASSERT_OK(dk_key_generate("alice", &alice2));
    ASSERT_OK(fx_actor_event(w.lg, w.admin, "actor.key_rotated", "alice", dk_key_public(alice2),
                             NULL, ACTOR_N(11), &res));
    ASSERT_ERR(fx_append(w.lg, w.alice, "note.added", "HO-1", 2, NULL, &res), DK_EBADSIG);
    ASSERT_OK(fx_append(w.lg, alice2, "note.added", "HO-1", 3, NULL, &res));
    /* Revoke: nothing more from alice. */
    ASSERT_OK(
        fx_actor_event(w.lg, w.admin, "actor.revoked", "alice", NULL, NULL, ACTOR_N(12), &res));
    ASSERT_ERR(fx_append(w.lg, alice2, "note.added", "HO-1", 4, NULL, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "revoked");
    dk_actor_info info;
    ASSERT_OK(dk_ledger_actor(w.lg, "alice", &info));
    ASSERT_EQ(info.revoked, 1);
    ASSERT_MEM_EQ(info.pubkey, dk_key_public(alice2), DK_PUBKEY_BYTES);
    /* Enrolling an existing id is refused; unknown roles are refused. */
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.enrolled", "bob", dk_key_public(w.bob),
                              "caseworker", ACTOR_N(13), &res),
               DK_EEXIST);
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.enrolled", "carol", dk_key_public(w.bob),
                              "wizard", ACTOR_N(14), &res),
               DK_ESCHEMA);
    ASSERT_CONTAINS(res.errmsg, "wizard");
    /* verify replays keys as they were: the old signatures still check. */
    assert_verifies(w.lg, 8);
    /* the actor as it stood before each record: 2 enrolled, 6 rotated, 8 revoked */
    ASSERT_ERR(dk_ledger_actor_at(w.lg, "alice", 2, &info), DK_ENOTFOUND);
    ASSERT_OK(dk_ledger_actor_at(w.lg, "alice", 3, &info));
    ASSERT_MEM_EQ(info.pubkey, dk_key_public(w.alice), DK_PUBKEY_BYTES);
    ASSERT_EQ(info.roles, DK_ROLE_CASEWORKER);
    ASSERT_EQ(info.enrolled_seq, 2);
    ASSERT_OK(dk_ledger_actor_at(w.lg, "alice", 6, &info));
    ASSERT_MEM_EQ(info.pubkey, dk_key_public(w.alice), DK_PUBKEY_BYTES);
    ASSERT_OK(dk_ledger_actor_at(w.lg, "alice", 7, &info));
    ASSERT_MEM_EQ(info.pubkey, dk_key_public(alice2), DK_PUBKEY_BYTES);
    ASSERT_EQ(info.revoked, 0);
    ASSERT_OK(dk_ledger_actor_at(w.lg, "alice", 9, &info));
    ASSERT_EQ(info.revoked, 1);
    ASSERT_OK(dk_ledger_actor_at(w.lg, "admin", 2, &info));
    ASSERT_EQ(info.roles, DK_ROLE_ADMIN);
    ASSERT_ERR(dk_ledger_actor_at(w.lg, "nobody", 9, &info), DK_ENOTFOUND);
    /* a ledger made before the history gets it built on its next write open */
    dk_ledger_close(w.lg);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    ASSERT_EQ(mdb_env_open(env, w.dir, 0, 0600), 0);
    ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ASSERT_EQ(mdb_dbi_open(txn, "actor_log", 0, &dbi), 0);
    ASSERT_EQ(mdb_drop(txn, dbi, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    ASSERT_OK(dk_ledger_actor_at(w.lg, "alice", 7, &info));
    ASSERT_MEM_EQ(info.pubkey, dk_key_public(alice2), DK_PUBKEY_BYTES);
    ASSERT_OK(dk_ledger_actor_at(w.lg, "alice", 9, &info));
    ASSERT_EQ(info.revoked, 1);
    dk_key_free(alice2);
    world_close(&w);
}

TEST(auditors_append_nothing_to_cases)
{
    world w;
    world_open(&w, NULL);
    dk_key *aud;
    dk_append_res res;
    ASSERT_OK(fx_enroll(w.lg, w.admin, "audrey", "auditor", ACTOR_N(5), &aud));
    ASSERT_ERR(fx_append(w.lg, aud, "note.added", "HO-1", 1, NULL, &res), DK_EDENIED);
    ASSERT_CONTAINS(res.errmsg, "audrey");
    dk_key_free(aud);
    world_close(&w);
}

TEST(system_event_rules)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    /* a case event needs a case id; a system event must not have one */
    ASSERT_ERR(fx_append(w.lg, w.alice, "note.added", "", 1, NULL, &res), DK_ESCHEMA);
    ASSERT_ERR(fx_append(w.lg, w.admin, "actor.revoked", "HO-1", 2, NULL, &res), DK_ESCHEMA);
    ASSERT_ERR(fx_append(w.lg, w.admin, "ledger.genesis", "", 3, NULL, &res), DK_ESCHEMA);
    ASSERT_ERR(fx_append(w.lg, w.admin, "actor.promoted", "", 4, NULL, &res), DK_ESCHEMA);
    dk_head h;
    ASSERT_OK(dk_ledger_head(w.lg, &h));
    ASSERT_EQ(h.seq, 4);
    world_close(&w);
}

/* One key, one actor: a key another actor holds (revoked or not) is refused at enrolment
 * and at rotation, or whoever holds it signs as two people and passes four eyes alone
 * (helper-68: a senior enrolled a second id with their own key and co-signed). */
TEST(a_key_belongs_to_one_actor)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    const uint8_t *bobs = dk_key_public(w.bob);
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.enrolled", "bob2", bobs,
                              "caseworker,senior_caseworker", 10, &res),
               DK_EEXIST);
    ASSERT_CONTAINS(res.errmsg, "that public key was given to actor 'bob'");
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.key_rotated", "alice", bobs, NULL, 11, &res),
               DK_EEXIST);
    ASSERT_CONTAINS(res.errmsg, "actor.key_rotated: that public key was given to actor 'bob'");
    /* the admin's own key, and a revoked actor's, are held too */
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.enrolled", "carl", dk_key_public(w.admin),
                              "caseworker", 12, &res),
               DK_EEXIST);
    ASSERT_OK(fx_actor_event(w.lg, w.admin, "actor.revoked", "bob", NULL, NULL, 13, &res));
    ASSERT_ERR(
        fx_actor_event(w.lg, w.admin, "actor.enrolled", "bob2", bobs, "caseworker", 14, &res),
        DK_EEXIST);
    /* a key of its own is taken; a rotation that keeps it changes nothing (helper-70) */
    dk_key *k;
    ASSERT_OK(dk_key_generate("bob2", &k));
    ASSERT_OK(fx_actor_event(w.lg, w.admin, "actor.enrolled", "bob2", dk_key_public(k),
                             "caseworker", 15, &res));
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.key_rotated", "bob2", dk_key_public(k), NULL,
                              16, &res),
               DK_EEXIST);
    ASSERT_STR_EQ(res.errmsg, "actor.key_rotated: actor 'bob2' holds that public key now; a "
                              "rotation gives it a new one (docket keygen makes one)");
    /* a key rotated away is retired, not free (helper-69): perhaps it was stolen; nor does
     * its own actor take it back (helper-70) */
    dk_key *k2;
    ASSERT_OK(dk_key_generate("bob2", &k2));
    ASSERT_OK(fx_actor_event(w.lg, w.admin, "actor.key_rotated", "bob2", dk_key_public(k2), NULL,
                             17, &res));
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.enrolled", "carl", dk_key_public(k),
                              "caseworker", 18, &res),
               DK_EEXIST);
    ASSERT_CONTAINS(res.errmsg, "that public key was given to actor 'bob2'");
    ASSERT_ERR(fx_actor_event(w.lg, w.admin, "actor.key_rotated", "bob2", dk_key_public(k), NULL,
                              19, &res),
               DK_EEXIST);
    ASSERT_STR_EQ(res.errmsg, "actor.key_rotated: actor 'bob2' held that public key before and "
                              "retired it; a retired key is not taken back (docket keygen makes "
                              "a new one)");
    dk_key_free(k2);
    dk_key_free(k);
    assert_verifies(w.lg, 7);
    world_close(&w);
}

/* A lock file removed under an open ledger (a clean-up taking it for a leftover) and made
 * anew by another process no longer excludes that process's writer: this one refuses to
 * write, naming it, instead of corrupting the ledger beside another writer (helper-71). */
TEST(a_writer_whose_lock_file_was_removed_writes_nothing)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 1, NULL, &res));
    dk_head before, after;
    ASSERT_OK(dk_ledger_head(w.lg, &before));
    char lock[600];
    snprintf(lock, sizeof lock, "%s/lock.mdb", w.dir);
    ASSERT(unlink(lock) == 0);
    FILE *f = fopen(lock, "w"); /* another process's open made a new one */
    ASSERT(f != NULL);
    fclose(f);
    ASSERT_ERR(fx_append(w.lg, w.alice, "note.added", "HO-1", 2, NULL, &res), DK_ECLOSED);
    ASSERT_CONTAINS(res.errmsg, "lock.mdb' was removed or replaced while this process had the "
                                "ledger open");
    ASSERT_OK(dk_ledger_head(w.lg, &after));
    ASSERT_EQ(after.seq, before.seq);
    world_close(&w);
}

/* A commit that fails for want of space says where and how much is free, and keeps
 * nothing: LMDB reports a write the disk cut short as EIO, which read as "Input/output
 * error" with no hint (helper-71). */
TEST(a_full_disk_is_named)
{
    const char *dir = th_tmpdir();
    MDB_env *env;
    char note[512];
    struct statvfs fs;
    ASSERT_EQ(mdb_env_create(&env), 0);
    ASSERT_EQ(mdb_env_open(env, dir, 0, 0600), 0);
    ASSERT(statvfs(dir, &fs) == 0);
    if ((uint64_t)fs.f_bavail * fs.f_frsize > ((uint64_t)64 << 20))
        ASSERT_STR_EQ(dk_lmdb_space_note(env, EIO, note, sizeof note), ""); /* room: not it */
    ASSERT_STR_EQ(dk_lmdb_space_note(env, EINVAL, note, sizeof note), "");
    ASSERT_CONTAINS(dk_lmdb_space_note(env, ENOSPC, note, sizeof note), " KiB free");
    ASSERT_CONTAINS(note, dir);
    mdb_env_close(env);

    /* a real full disk, where this process may mount one: in a mount namespace of its
     * own, so that the mount goes with the process however the test ends */
    const char *small = th_tmpdir();
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", small, "tmpfs", 0, "size=2m") != 0) {
        printf("# no tmpfs mount here (%s): the full-disk append is not tried\n", strerror(errno));
        return;
    }
    dk_key *admin, *alice;
    dk_ledger *lg;
    dk_append_res res;
    ASSERT_OK(dk_key_generate("admin", &admin));
    ASSERT_OK(dk_ledger_init(small, "test", admin, NULL, &lg));
    ASSERT_OK(fx_enroll(lg, admin, "alice", "caseworker", ACTOR_N(1), &alice));
    ASSERT_OK(fx_open_case(lg, alice, "HO-1", ACTOR_N(3), NULL, &res));
    char filler[600];
    snprintf(filler, sizeof filler, "%s/filler", small);
    FILE *f = fopen(filler, "w");
    ASSERT(f != NULL);
    static char block[4096];
    while (fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0)
        ;
    fclose(f);
    dk_head before, after;
    int rc = 0;
    uint64_t n = 10;
    for (; n < 100000 && rc == 0; n++) { /* the file's free pages first */
        ASSERT_OK(dk_ledger_head(lg, &before));
        rc = fx_append(lg, alice, "note.added", "HO-1", n, NULL, &res);
    }
    ASSERT_EQ(rc, DK_EIO);
    ASSERT_CONTAINS(res.errmsg, "cannot commit the batch: ");
    ASSERT_CONTAINS(res.errmsg, " KiB free");
    ASSERT_CONTAINS(res.errmsg, "nothing of this transaction was kept: free space, then retry");
    ASSERT_OK(dk_ledger_head(lg, &after));
    ASSERT_EQ(after.seq, before.seq);
    ASSERT(unlink(filler) == 0);
    ASSERT_OK(fx_append(lg, alice, "note.added", "HO-1", n, NULL, &res));
    ASSERT_EQ(res.seq, before.seq + 1);
    assert_verifies(lg, before.seq + 1);
    dk_ledger_close(lg);
    /* opened on a full disk with no lock file (a clean-up, a restore): LMDB writes its lock
     * file through a map, and a page the disk had no room for killed the process (SIGBUS) */
    char lock[600];
    snprintf(lock, sizeof lock, "%s/lock.mdb", small);
    ASSERT(unlink(lock) == 0);
    f = fopen(filler, "w");
    ASSERT(f != NULL);
    while (fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0)
        ;
    fclose(f);
    ASSERT_ERR(dk_ledger_open(small, NULL, &lg), DK_EIO);
    ASSERT_CONTAINS(dk_errmsg(), "no space for the lock file of the ledger");
    ASSERT(unlink(filler) == 0);
    ASSERT_OK(dk_ledger_open(small, NULL, &lg));
    assert_verifies(lg, before.seq + 1);
    dk_ledger_close(lg);
    dk_key_free(admin);
    dk_key_free(alice);
    ASSERT(umount(small) == 0);
}

/* A ledger whose lock file an older docket made (LMDB's own size, its reader slots never
 * allocated) on a disk since filled: reading it (head, verify, backup to another disk) is
 * what a full disk leaves to do, and it was refused, as the lock file could not be given
 * the blocks of 64 KiB. LMDB writes its header and the first reader slots on the first
 * page, which is on disk. */
TEST(a_full_disk_still_opens_a_ledger_with_its_old_lock_file)
{
    const char *small = th_tmpdir();
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", small, "tmpfs", 0, "size=2m") != 0) {
        printf("# no tmpfs mount here (%s): not tried\n", strerror(errno));
        return;
    }
    dk_key *admin;
    dk_ledger *lg;
    ASSERT_OK(dk_key_generate("admin", &admin));
    ASSERT_OK(dk_ledger_init(small, "test", admin, NULL, &lg));
    dk_ledger_close(lg);
    char lock[600], filler[600];
    snprintf(lock, sizeof lock, "%s/lock.mdb", small);
    snprintf(filler, sizeof filler, "%s/filler", small);
    /* as LMDB alone makes it, for 512 readers: 32896 bytes, only the first page written */
    ASSERT(unlink(lock) == 0);
    int fd = open(lock, O_RDWR | O_CREAT, 0600);
    static char block[4096];
    ASSERT(fd >= 0 && ftruncate(fd, 32896) == 0 && pwrite(fd, block, sizeof block, 0) == 4096);
    close(fd);
    FILE *f = fopen(filler, "w");
    ASSERT(f != NULL);
    while (fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0)
        ;
    fclose(f);
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(small, &ro, &lg));
    assert_verifies(lg, 1);
    dk_ledger_close(lg);
    dk_key_free(admin);
    ASSERT(unlink(filler) == 0);
    ASSERT(umount(small) == 0);
}

/* A process that died holding a read snapshot leaves its reader slot; LMDB keeps every page
 * that snapshot could see until the slot is freed, and the file grows (helper-71). */
TEST(a_dead_readers_slot_is_freed)
{
    world w;
    world_open(&w, NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        dk_ledger *ro;
        dk_ledger_opts o = {0, 0, 1, 0};
        dk_iter *it;
        if (dk_ledger_open(w.dir, &o, &ro) != 0 || dk_iter_open(ro, 1, NULL, &it) != 0)
            _exit(1);
        kill(getpid(), SIGKILL); /* dies with the snapshot open */
        _exit(2);
    }
    int status;
    ASSERT(waitpid(pid, &status, 0) == pid);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ASSERT_EQ(dk_ledger_readers_clear(w.lg), 1);
    ASSERT_EQ(dk_ledger_readers_clear(w.lg), 0);
    world_close(&w);
}

TEST(bad_bodies_leave_ledger_unchanged)
{
    world w;
    world_open(&w, NULL);
    dk_head before, after;
    ASSERT_OK(dk_ledger_head(w.lg, &before));
    dk_append_res res;
    uint8_t junk[] = {0x81, 0xa1, 'v', 0x01};
    dk_sig sig;
    memset(&sig, 0, sizeof sig);
    strcpy(sig.actor, "alice");
    dk_append_req req = {junk, sizeof junk, &sig, 1};
    ASSERT_ERR(dk_ledger_append(w.lg, &req, &res), DK_EDECODE);
    req.nsigs = 0;
    ASSERT_ERR(dk_ledger_append(w.lg, &req, &res), DK_EINVAL);
    ASSERT_OK(dk_ledger_head(w.lg, &after));
    ASSERT_EQ(after.seq, before.seq);
    ASSERT_MEM_EQ(after.hash, before.hash, DK_HASH_BYTES);
    world_close(&w);
}

typedef struct thread_arg {
    world *w;
    int id;
    int count;
    uint64_t *seqs;
} thread_arg;

static void *appender(void *p)
{
    thread_arg *a = p;
    dk_key *key = a->id % 2 ? a->w->alice : a->w->bob;
    char case_id[32];
    for (int i = 0; i < a->count; i++) {
        dk_append_res res;
        snprintf(case_id, sizeof case_id, "HO-%d-%d", a->id, i % 5);
        uint64_t n = (uint64_t)a->id * 100000 + (uint64_t)i;
        if (fx_append(a->w->lg, key, "note.added", case_id, n, NULL, &res) != 0)
            return (void *)1;
        a->seqs[i] = res.seq;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

TEST(eight_threads_dense_seq)
{
    world w;
    world_open(&w, NULL);
    enum { T = 8, N = 150 };
    dk_append_res res;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < 5; c++) {
            char case_id[32];
            snprintf(case_id, sizeof case_id, "HO-%d-%d", t, c);
            ASSERT_OK(fx_open_case(w.lg, w.bob, case_id, ACTOR_N(100 + t * 5 + c), NULL, &res));
        }
    pthread_t th[T];
    thread_arg args[T];
    uint64_t *all = calloc(T * N, sizeof *all);
    for (int t = 0; t < T; t++) {
        args[t] = (thread_arg){&w, t, N, all + t * N};
        pthread_create(&th[t], NULL, appender, &args[t]);
    }
    for (int t = 0; t < T; t++) {
        void *rv;
        pthread_join(th[t], &rv);
        ASSERT(rv == NULL);
    }
    qsort(all, T * N, sizeof *all, cmp_u64);
    for (int i = 0; i < T * N; i++)
        ASSERT_EQ(all[i], 45 + i); /* seqs 45.. with no gap and no duplicate */
    free(all);
    dk_head h;
    ASSERT_OK(dk_ledger_head(w.lg, &h));
    ASSERT_EQ(h.seq, 44 + T * N);
    uint64_t v;
    ASSERT_OK(dk_ledger_case_version(w.lg, "HO-3-1", &v));
    ASSERT_EQ(v, 1 + N / 5);
    assert_verifies(w.lg, 44 + T * N);
    world_close(&w);
}

/* dk_ledger_append's caller may commit its own append in its own thread; closing the
 * ledger meanwhile waits for that commit to end (it once hung, or freed the ledger under
 * the commit). The commit hook holds the commit open while main closes. */
typedef struct closing {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_hook, hook_done, rc;
    world *w;
} closing;

static void slow_hook(void *ud, uint64_t head_seq)
{
    closing *c = ud;
    (void)head_seq;
    pthread_mutex_lock(&c->mu);
    c->in_hook = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    usleep(100000); /* the commit is still running while main closes the ledger */
    pthread_mutex_lock(&c->mu);
    c->hook_done = 1;
    pthread_mutex_unlock(&c->mu);
}

/* Wait until the writer is inside slow_hook, holding its batch. */
static void wait_in_hook(closing *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->in_hook)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void *one_append(void *arg)
{
    closing *c = arg;
    dk_append_res res;
    c->rc = fx_append(c->w->lg, c->w->alice, "note.added", "HO-1", 77, NULL, &res);
    return NULL;
}

TEST(close_waits_for_a_caller_committing_its_own_append)
{
    world w;
    world_open(&w, NULL);
    closing c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, -1, &w};
    dk_ledger_on_commit(w.lg, slow_hook, &c);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, one_append, &c), 0);
    wait_in_hook(&c);
    dk_ledger_close(w.lg);
    pthread_mutex_lock(&c.mu);
    int done = c.hook_done;
    pthread_mutex_unlock(&c.mu);
    ASSERT_EQ(done, 1); /* close returned only after the commit had ended */
    pthread_join(t, NULL);
    ASSERT_OK(c.rc);
    /* the append is in the ledger */
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    dk_head h;
    ASSERT_OK(dk_ledger_head(w.lg, &h));
    ASSERT_EQ(h.seq, 5);
    world_close(&w);
}

/* dk_ledger_close frees the writer's trusted-row cache (lg->trusted) before the writer
 * has drained its queue: a batch still queued when close begins is checked against
 * freed memory (trust_row). The hook holds the first batch while more queue up. */
static void note_cb(void *ud, const dk_append_res *res)
{
    (void)ud;
    (void)res;
}

static void *closer(void *arg)
{
    dk_ledger_close(arg);
    return NULL;
}

TEST(close_keeps_the_trusted_rows_until_the_writer_drains)
{
    world w;
    world_open(&w, NULL);
    closing c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, -1, &w};
    dk_ledger_on_commit(w.lg, slow_hook, &c);
    fx_event fe[4];
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(fx_make(&fe[i], w.alice, "note.added", "HO-1", 900 + i, NULL, 0, NULL));
        ASSERT_OK(dk_ledger_submit(w.lg, &fe[i].req, note_cb, NULL));
        if (i == 0)
            wait_in_hook(&c); /* the writer is in the first batch's hook: the rest queue */
    }
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, closer, w.lg), 0); /* frees lg->trusted, then waits */
    pthread_join(t, NULL);
    for (int i = 0; i < 4; i++)
        fx_free(&fe[i]);
    w.lg = NULL;
    world_close(&w);
}

/* The writer's trusted-row cache outlives a change of the actor's history: alice's row,
 * trusted while she was enrolled, is revoked by an admin; a damaged row that puts her
 * back as she was (written here by another process while the ledger stays open, as an
 * attacker or a bad disk would) equals the cached one and is trusted without a fold. */
TEST(a_row_put_back_after_a_revocation_is_not_trusted_from_the_cache)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", 1, NULL, &res)); /* cached */
    ASSERT_OK(
        fx_actor_event(w.lg, w.admin, "actor.revoked", "alice", NULL, NULL, ACTOR_N(12), &res));
    pid_t pid = fork();
    if (pid == 0) { /* another process flips the revoked flag back */
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 32) ||
            mdb_env_open(env, w.dir, 0, 0600) || mdb_txn_begin(env, NULL, 0, &txn) ||
            mdb_dbi_open(txn, "actors", 0, &dbi))
            _exit(2);
        MDB_val k = {5, (void *)"alice"}, v;
        uint8_t row[64];
        if (mdb_get(txn, dbi, &k, &v) || v.mv_size != 45)
            _exit(3);
        memcpy(row, v.mv_data, 45);
        row[36] = 0;
        MDB_val nv = {45, row};
        if (mdb_put(txn, dbi, &k, &nv, 0) || mdb_txn_commit(txn))
            _exit(4);
        _exit(0);
    }
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_EQ(WEXITSTATUS(st), 0);
    /* the row is not what the history made it: refused as damage, as on a fresh open */
    ASSERT_ERR(fx_append(w.lg, w.alice, "note.added", "HO-1", 3, NULL, &res), DK_ECORRUPT);
    world_close(&w);
}

TEST(map_grows_by_itself)
{
    world w;
    dk_ledger_opts opts = {256 * 1024, 0, 0, 0}; /* far too small on purpose */
    world_open(&w, &opts);
    dk_append_res res;
    /* ~1.6 MB of notes: several doublings of the map. */
    static uint8_t data[16 + 8000];
    size_t k = 0;
    data[k++] = 0x81;
    data[k++] = 0xa4;
    memcpy(data + k, "text", 4);
    k += 4;
    data[k++] = 0xda;
    data[k++] = (uint8_t)(8000 >> 8);
    data[k++] = (uint8_t)(8000 & 0xff);
    memset(data + k, 'x', 8000);
    for (uint64_t i = 1; i <= 200; i++) {
        fx_event fe;
        ASSERT_OK(fx_make(&fe, w.alice, "note.added", "HO-1", i, data, k + 8000, NULL));
        ASSERT_OK(dk_ledger_append(w.lg, &fe.req, &res));
        fx_free(&fe);
    }
    assert_verifies(w.lg, 204);
    world_close(&w);
}

TEST(reads_by_case_and_time)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    ASSERT_OK(fx_open_case(w.lg, w.alice, "HO-even", ACTOR_N(20), NULL, &res)); /* seq 5 */
    ASSERT_OK(fx_open_case(w.lg, w.alice, "HO-odd", ACTOR_N(21), NULL, &res));  /* seq 6 */
    int64_t times[20];
    for (uint64_t i = 0; i < 20; i++) { /* note i is seq 7 + i */
        ASSERT_OK(
            fx_append(w.lg, w.alice, "note.added", i % 2 ? "HO-odd" : "HO-even", i, NULL, &res));
        ASSERT_EQ(res.seq, 7 + i);
        times[i] = res.recorded_at;
    }
    /* by case: HO-odd's records are 6, then 8, 10, ... 26 */
    dk_iter *it;
    dk_record rec;
    ASSERT_OK(dk_iter_open(w.lg, 1, "HO-odd", &it));
    uint64_t expect = 6, n = 0;
    while (dk_iter_next(it, &rec) == 0) {
        ASSERT_EQ(rec.seq, expect);
        expect += 2;
        n++;
    }
    dk_iter_close(it);
    ASSERT_EQ(n, 11);
    ASSERT_OK(dk_iter_open(w.lg, 11, "HO-odd", &it));
    ASSERT_OK(dk_iter_next(it, &rec));
    ASSERT_EQ(rec.seq, 12);
    dk_iter_close(it);
    ASSERT_OK(dk_iter_open(w.lg, 1, "HO-none", &it));
    ASSERT_ERR(dk_iter_next(it, &rec), DK_ENOTFOUND);
    dk_iter_close(it);
    /* whole log from a seq; the raw read gives the same records' bytes */
    ASSERT_OK(dk_iter_open(w.lg, 20, NULL, &it));
    dk_iter *raw_it;
    ASSERT_OK(dk_iter_open(w.lg, 20, NULL, &raw_it));
    n = 0;
    while (dk_iter_next(it, &rec) == 0) {
        dk_raw raw;
        ASSERT_OK(dk_iter_next_raw(raw_it, &raw));
        ASSERT_EQ(raw.len, rec.raw_len);
        ASSERT_MEM_EQ(raw.p, rec.raw, rec.raw_len);
        n++;
    }
    dk_raw end;
    ASSERT_ERR(dk_iter_next_raw(raw_it, &end), DK_ENOTFOUND);
    dk_iter_close(raw_it);
    dk_iter_close(it);
    ASSERT_EQ(n, 7);
    /* seq at or before a time */
    uint64_t seq;
    for (int i = 0; i < 20; i++) {
        ASSERT_OK(dk_ledger_seq_at(w.lg, times[i], &seq));
        ASSERT_EQ(seq, 7 + i);
        ASSERT_OK(dk_ledger_seq_at(w.lg, times[i] - 1, &seq));
        ASSERT_EQ(seq, 6 + i);
    }
    ASSERT_OK(dk_ledger_seq_at(w.lg, 0, &seq));
    ASSERT_EQ(seq, 0);
    ASSERT_OK(dk_ledger_seq_at(w.lg, INT64_MAX, &seq));
    ASSERT_EQ(seq, 26);
    uint8_t *raw;
    size_t len;
    ASSERT_ERR(dk_ledger_get(w.lg, 27, &raw, &len), DK_ENOTFOUND);
    world_close(&w);
}

/* A write transaction on the ledger's `log` database, through LMDB directly. */
static void open_log(const char *dir, MDB_env **env, MDB_txn **txn, MDB_dbi *log)
{
    ASSERT_EQ(mdb_env_create(env), 0);
    mdb_env_set_maxdbs(*env, 32);
    ASSERT_EQ(mdb_env_open(*env, dir, 0, 0600), 0);
    ASSERT_EQ(mdb_txn_begin(*env, NULL, 0, txn), 0);
    ASSERT_EQ(mdb_dbi_open(*txn, "log", 0, log), 0);
}

/* Case i's records from a gather equal what reading the case through an iterator gives,
 * up to `upto`. */
static void assert_gathered_case(dk_ledger *lg, const dk_gather *g, size_t i, uint64_t upto)
{
    const dk_raw *raw;
    size_t n, j = 0;
    dk_gather_records(g, i, &raw, &n);
    const uint64_t *seqs = dk_gather_seqs(g, i);
    ASSERT(n > 0);
    dk_iter *it;
    dk_record want, got;
    ASSERT_OK(dk_iter_open(lg, 1, dk_gather_case(g, i), &it));
    while (dk_iter_next(it, &want) == 0 && want.seq <= upto) {
        ASSERT(j < n);
        ASSERT_OK(dk_record_decode(raw[j].p, raw[j].len, &got));
        ASSERT_EQ(got.seq, want.seq);
        ASSERT_EQ(seqs[j], want.seq);
        ASSERT_EQ(raw[j].len, want.raw_len);
        ASSERT_MEM_EQ(raw[j].p, want.raw, want.raw_len);
        j++;
    }
    dk_iter_close(it);
    ASSERT_EQ(j, n);
}

/* Gathers hand out every case once, in id order, in runs bounded by cases and records,
 * with each case's records (up to the gather's end) in seq order. */
/* A ledger file cut short: refused with its sizes on open (writable or read-only), not
 * mapped and read past its end (SIGBUS). */
TEST(truncated_file_is_named_not_read)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    char id[16];
    for (int c = 0; c < 60; c++) {
        snprintf(id, sizeof id, "T-%d", c);
        ASSERT_OK(fx_open_case(w.lg, w.alice, id, ACTOR_N(100 + (uint64_t)c), NULL, &res));
    }
    world_close(&w);
    char data[600];
    snprintf(data, sizeof data, "%s/data.mdb", w.dir);
    struct stat st;
    ASSERT_EQ(stat(data, &st), 0);
    ASSERT(st.st_size > 8 * 4096);
    ASSERT_EQ(truncate(data, st.st_size - 4096), 0);
    dk_ledger *lg;
    ASSERT_ERR(dk_ledger_open(w.dir, NULL, &lg), DK_ECORRUPT);
    ASSERT_CONTAINS(dk_errmsg(), "the ledger is truncated");
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_ERR(dk_ledger_open(w.dir, &ro, &lg), DK_ECORRUPT);
    ASSERT_CONTAINS(dk_errmsg(), "restore it from a backup");
}

TEST(gather_reads_runs_of_cases)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    char id[16];
    for (int c = 0; c < 10; c++) { /* G-0..G-9 opened at seqs 5..14 */
        snprintf(id, sizeof id, "G-%d", c);
        ASSERT_OK(fx_open_case(w.lg, w.alice, id, ACTOR_N(100 + (uint64_t)c), NULL, &res));
    }
    /* notes round-robin: cases' records interleave, and pass seq 2048 (the read's radix
     * sort by seq then takes two passes of 11 bits; a key lost in either fails below) */
    for (uint64_t i = 0; i < 2100; i++) {
        snprintf(id, sizeof id, "G-%d", (int)(i * 7 % 10));
        ASSERT_OK(fx_append(w.lg, w.alice, "note.added", id, 200 + i, NULL, &res));
    }
    uint64_t head = res.seq;
    /* everything at once: G-0..G-9, then HO-1 */
    dk_gather *g;
    ASSERT_OK(dk_gather_open(w.lg, "", 100, 10000, head, &g));
    ASSERT_OK(dk_gather_read(g));
    ASSERT_EQ(dk_gather_count(g), 11);
    ASSERT_EQ(dk_gather_more(g), 0);
    ASSERT_STR_EQ(dk_gather_case(g, 0), "G-0");
    ASSERT_STR_EQ(dk_gather_case(g, 10), "HO-1");
    for (size_t i = 0; i < 11; i++)
        assert_gathered_case(w.lg, g, i, head);
    ASSERT_EQ(dk_gather_records_count(g), head - 3); /* all but the three system records */
    dk_gather_close(g);
    /* runs of 3 cases, then of one case each (a case's records are never split) */
    for (int limit = 0; limit < 2; limit++) {
        char after[DK_CASE_MAX + 1] = "";
        size_t seen = 0;
        for (;;) {
            ASSERT_OK(dk_gather_open(w.lg, after, limit ? 100 : 3, limit ? 1 : 10000, head, &g));
            ASSERT_OK(dk_gather_read(g));
            size_t n = dk_gather_count(g);
            ASSERT(n <= (limit ? 1u : 3u));
            for (size_t i = 0; i < n; i++) {
                ASSERT(strcmp(dk_gather_case(g, i), after) > 0);
                snprintf(after, sizeof after, "%s", dk_gather_case(g, i));
                assert_gathered_case(w.lg, g, i, head);
            }
            seen += n;
            int more = dk_gather_more(g);
            dk_gather_close(g);
            if (!more)
                break;
            ASSERT(n > 0);
        }
        ASSERT_EQ(seen, 11);
    }
    /* up to seq 9: HO-1 (4) and G-0..G-4 (5..9), each with its records up to 9 only */
    ASSERT_OK(dk_gather_open(w.lg, "", 100, 1000, 9, &g));
    ASSERT_OK(dk_gather_read(g));
    ASSERT_EQ(dk_gather_count(g), 6);
    for (size_t i = 0; i < 6; i++)
        assert_gathered_case(w.lg, g, i, 9);
    ASSERT_STR_EQ(dk_gather_case(g, 4), "G-4");
    ASSERT_STR_EQ(dk_gather_case(g, 5), "HO-1"); /* after G-5..G-9, dropped: none up to 9 */
    dk_gather_close(g);
    char long_id[DK_CASE_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    ASSERT_ERR(dk_gather_open(w.lg, long_id, 1, 1, head, &g), DK_EINVAL);
    ASSERT_ERR(dk_gather_open(w.lg, "", 0, 1, head, &g), DK_EINVAL); /* would never end */
    char ids[1][DK_CASE_MAX + 1];
    size_t nids = 7;
    ASSERT_OK(dk_ledger_cases(w.lg, "", ids, 0, &nids));
    ASSERT_EQ(nids, 0);
    world_close(&w);
    /* a record the case index points at is missing: named, not skipped */
    const char *dir = w.dir;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log;
    open_log(dir, &env, &txn, &log);
    uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 7};
    MDB_val k = {8, key};
    ASSERT_EQ(mdb_del(txn, log, &k, NULL), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    dk_ledger *lg;
    ASSERT_OK(dk_ledger_open(dir, NULL, &lg));
    ASSERT_OK(dk_gather_open(lg, "", 100, 1000, head, &g));
    ASSERT_ERR(dk_gather_read(g), DK_ECORRUPT);
    ASSERT_CONTAINS(dk_errmsg(), "missing record 7");
    dk_gather_close(g);
    dk_ledger_close(lg);
}

/* Case ids of 3 to DK_CASE_MAX bytes, opened out of id order, gathered up to seqs that
 * leave cases with no record between ones that have some (dropped from the run's packed
 * ids), in runs of every size. */
TEST(gather_keeps_ids_of_every_length)
{
    enum { NC = 120 };
    static char ids[NC][DK_CASE_MAX + 1], want[NC + 1][DK_CASE_MAX + 1];
    uint64_t opened_at[NC];
    world w;
    world_open(&w, NULL); /* HO-1 at seq 4: after every id below ("000..".."119..") */
    dk_append_res res;
    for (int k = 0; k < NC; k++) {
        int i = k * 7 % NC;
        size_t len = 3 + (size_t)(i * 37 % (DK_CASE_MAX - 2)); /* 3..DK_CASE_MAX bytes */
        snprintf(ids[i], sizeof ids[i], "%03d", i);
        memset(ids[i] + 3, 'x' + i % 3, len - 3);
        ids[i][len] = 0;
        ASSERT_OK(fx_open_case(w.lg, w.alice, ids[i], ACTOR_N(100 + (uint64_t)k), NULL, &res));
        opened_at[i] = res.seq;
    }
    uint64_t head = res.seq, uptos[] = {head / 2, head / 3 + 1, head};
    for (size_t u = 0; u < sizeof uptos / sizeof *uptos; u++) {
        size_t want_n = 0;
        for (int i = 0; i < NC; i++)
            if (opened_at[i] <= uptos[u])
                strcpy(want[want_n++], ids[i]);
        strcpy(want[want_n++], "HO-1");
        for (size_t limit = 1; limit <= 9; limit += 4) {
            char after[DK_CASE_MAX + 1] = "";
            size_t seen = 0;
            for (int more = 1; more;) {
                dk_gather *g;
                ASSERT_OK(dk_gather_open(w.lg, after, limit, 1000, uptos[u], &g));
                ASSERT_OK(dk_gather_read(g));
                for (size_t i = 0; i < dk_gather_count(g); i++, seen++) {
                    ASSERT(seen < want_n);
                    ASSERT_STR_EQ(dk_gather_case(g, i), want[seen]);
                    assert_gathered_case(w.lg, g, i, uptos[u]);
                    snprintf(after, sizeof after, "%s", dk_gather_case(g, i));
                }
                more = dk_gather_more(g);
                dk_gather_close(g);
            }
            ASSERT_EQ(seen, want_n);
        }
    }
    /* dk_ledger_cases into exactly `max` slots (on the heap: ASan sees an overrun) */
    for (size_t max = 1; max <= NC + 1; max += 17) {
        char(*out)[DK_CASE_MAX + 1] = malloc(max * sizeof *out);
        size_t n;
        ASSERT(out != NULL);
        ASSERT_OK(dk_ledger_cases(w.lg, "", out, max, &n));
        ASSERT_EQ(n, max);
        for (size_t i = 0; i < n; i++)
            ASSERT_STR_EQ(out[i], i < NC ? ids[i] : "HO-1");
        free(out);
    }
    world_close(&w);
}

/* The system records' gather: every record no case holds (genesis, actor changes), in seq
 * order, up to its end: with the case gathers, each record of the ledger once. */
TEST(gather_lists_the_system_records)
{
    world w;
    world_open(&w, NULL);
    dk_key *carol, *dave;
    ASSERT_OK(fx_enroll(w.lg, w.admin, "carol", "caseworker", ACTOR_N(9), &carol)); /* 5 */
    dk_append_res res;
    ASSERT_OK(fx_open_case(w.lg, w.alice, "HO-2", ACTOR_N(10), NULL, &res));       /* 6 */
    ASSERT_OK(fx_enroll(w.lg, w.admin, "dave", "caseworker", ACTOR_N(11), &dave)); /* 7 */
    const uint64_t want[] = {1, 2, 3, 5, 7};
    for (int upto = 0; upto < 2; upto++) {
        size_t n = upto ? 4 : 5;
        dk_gather *g;
        ASSERT_OK(dk_gather_open_system(w.lg, upto ? 6 : 7, &g));
        ASSERT_OK(dk_gather_read(g));
        ASSERT_EQ(dk_gather_count(g), 1);
        ASSERT_STR_EQ(dk_gather_case(g, 0), "");
        ASSERT_EQ(dk_gather_records_count(g), n);
        const dk_raw *raw;
        size_t got;
        dk_gather_records(g, 0, &raw, &got);
        ASSERT_EQ(got, n);
        for (size_t j = 0; j < n; j++) {
            dk_record rec;
            ASSERT_OK(dk_record_decode(raw[j].p, raw[j].len, &rec));
            ASSERT_EQ(rec.seq, want[j]);
            ASSERT_EQ(dk_gather_seqs(g, 0)[j], want[j]);
        }
        dk_gather_close(g);
    }
    dk_gather *g;
    ASSERT_OK(dk_gather_open_system(w.lg, 0, &g)); /* nothing up to seq 0 */
    ASSERT_EQ(dk_gather_count(g), 0);
    dk_gather_close(g);
    dk_key_free(carol);
    dk_key_free(dave);
    world_close(&w);
}

/* Put the ledger back in the layout dockets wrote before the `cases` database: the
 * case index in `by_case` (case id -> seqs, dupsort) and state rows in `case_state`.
 * With `partial`, `cases` stays, holding a stray entry, as an upgrade a crash
 * stopped would leave it. */
static void downgrade(const char *dir, int partial)
{
    raw_env r;
    MDB_dbi cases = raw_open(&r, dir, "cases"), bc, cs, main_db, meta;
    /* no layout mark, no tombstone: as an older docket left it */
    MDB_val tomb = {7, (void *)"by_case"}, mark = {12, (void *)"cases_layout"};
    ASSERT_EQ(mdb_dbi_open(r.txn, NULL, 0, &main_db), 0);
    ASSERT_EQ(mdb_del(r.txn, main_db, &tomb, NULL), 0);
    ASSERT_EQ(mdb_dbi_open(r.txn, "meta", 0, &meta), 0);
    ASSERT_EQ(mdb_del(r.txn, meta, &mark, NULL), 0);
    ASSERT_EQ(mdb_dbi_open(r.txn, "by_case", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &bc), 0);
    ASSERT_EQ(mdb_dbi_open(r.txn, "case_state", MDB_CREATE, &cs), 0);
    MDB_cursor *cur;
    MDB_val k, v;
    ASSERT_EQ(mdb_cursor_open(r.txn, cases, &cur), 0);
    for (int g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0;
         g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t n = strlen(k.mv_data); /* the id, up to its NUL */
        MDB_val id = {n, k.mv_data};
        static const uint8_t state[8] = {255, 255, 255, 255, 255, 255, 255, 255};
        if (memcmp((uint8_t *)k.mv_data + n + 1, state, 8) == 0) {
            ASSERT_EQ(mdb_put(r.txn, cs, &id, &v, 0), 0);
        } else {
            MDB_val seq = {8, (uint8_t *)k.mv_data + n + 1};
            ASSERT_EQ(mdb_put(r.txn, bc, &id, &seq, 0), 0);
        }
    }
    mdb_cursor_close(cur);
    ASSERT_EQ(mdb_drop(r.txn, cases, 1), 0);
    if (partial) {
        ASSERT_EQ(mdb_dbi_open(r.txn, "cases", MDB_CREATE, &cases), 0);
        uint8_t key[32];
        MDB_val sk = {raw_case_key(key, "HO-stray", 3), key}, sv = {0, key};
        ASSERT_EQ(mdb_put(r.txn, cases, &sk, &sv, 0), 0);
    }
    raw_commit(&r);
}

/* Every case's records by seq, as one string, to compare layouts. */
static void case_listing(dk_ledger *lg, char *out, size_t cap)
{
    char ids[8][DK_CASE_MAX + 1];
    size_t n, len = 0;
    ASSERT_OK(dk_ledger_cases(lg, "", ids, 8, &n));
    for (size_t i = 0; i < n; i++) {
        dk_iter *it;
        dk_record rec;
        uint64_t version;
        ASSERT_OK(dk_ledger_case_version(lg, ids[i], &version));
        len += (size_t)snprintf(out + len, cap - len, "%s v%llu:", ids[i],
                                (unsigned long long)version);
        ASSERT_OK(dk_iter_open(lg, 1, ids[i], &it));
        while (dk_iter_next(it, &rec) == 0)
            len += (size_t)snprintf(out + len, cap - len, " %llu", (unsigned long long)rec.seq);
        dk_iter_close(it);
        len += (size_t)snprintf(out + len, cap - len, ";");
    }
}

/* A ledger written before the cases database: a read-only open refuses it by name, a
 * write open upgrades it (also over what a crashed attempt left in `cases`), and it
 * then reads, verifies and appends as before; an older docket can no longer open it. */
TEST(upgrade_from_the_separate_case_index)
{
    for (int partial = 0; partial < 2; partial++) {
        world w;
        world_open(&w, NULL);
        dk_append_res res;
        const char *cases[] = {"HO-2", "HO-10", "A", "HO-1x"};
        for (uint64_t i = 0; i < 4; i++)
            ASSERT_OK(fx_open_case(w.lg, w.alice, cases[i], ACTOR_N(10 + i), NULL, &res));
        for (uint64_t i = 0; i < 30; i++)
            ASSERT_OK(fx_append(w.lg, w.alice, "note.added", cases[i % 4], i, NULL, &res));
        char before[4096], after[4096];
        case_listing(w.lg, before, sizeof before);
        dk_ledger_close(w.lg);
        if (partial == 0) { /* a new ledger is marked too: an older docket cannot open it */
            raw_env r;
            MDB_dbi old;
            raw_open(&r, w.dir, "cases");
            ASSERT_EQ(mdb_dbi_open(r.txn, "by_case", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &old),
                      MDB_INCOMPATIBLE);
            mdb_txn_abort(r.txn);
            mdb_env_close(r.env);
        }
        downgrade(w.dir, partial);
        dk_ledger_opts ro = {0, 0, 1, 0};
        ASSERT_ERR(dk_ledger_open(w.dir, &ro, &w.lg), DK_EINVAL);
        ASSERT_CONTAINS(dk_errmsg(), "older docket");
        /* two processes open it for writing at once: one upgrades, the other waits */
        pid_t child = fork();
        ASSERT(child >= 0);
        if (child == 0) {
            dk_ledger *lg;
            _exit(dk_ledger_open(w.dir, NULL, &lg) == 0 ? (dk_ledger_close(lg), 0) : 1);
        }
        ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
        int status;
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        case_listing(w.lg, after, sizeof after);
        ASSERT_STR_EQ(after, before);
        assert_verifies(w.lg, 38);
        ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-10", 99, NULL, &res));
        ASSERT_EQ(res.seq, 39);
        dk_ledger_close(w.lg);
        ASSERT_OK(dk_ledger_open(w.dir, &ro, &w.lg));
        assert_verifies(w.lg, 39);
        raw_env r; /* the old databases are gone; an older docket cannot open by_case */
        raw_open(&r, w.dir, "cases");
        MDB_dbi gone;
        ASSERT_EQ(mdb_dbi_open(r.txn, "by_case", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &gone),
                  MDB_INCOMPATIBLE);
        ASSERT_EQ(mdb_dbi_open(r.txn, "case_state", 0, &gone), MDB_NOTFOUND);
        mdb_txn_abort(r.txn);
        mdb_env_close(r.env);
        world_close(&w);
    }
}

/* The upgrade holds the old index and the new one at once: with a map that cannot take
 * both, it grows the map and starts again instead of failing every write open. */
TEST(upgrade_grows_a_full_map)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    for (uint64_t i = 0; i < 1500; i++) {
        char id[16];
        snprintf(id, sizeof id, "MF-%04llu", (unsigned long long)i);
        ASSERT_OK(fx_open_case(w.lg, w.alice, id, ACTOR_N(100 + i), NULL, &res));
    }
    dk_ledger_close(w.lg);
    downgrade(w.dir, 0);
    dk_ledger_opts small = {256 * 1024, 0, 0, 0}; /* smaller than the file: LMDB maps the file */
    ASSERT_OK(dk_ledger_open(w.dir, &small, &w.lg));
    assert_verifies(w.lg, 1504);
    uint64_t v;
    ASSERT_OK(dk_ledger_case_version(w.lg, "MF-1499", &v));
    ASSERT_EQ(v, 1);
    world_close(&w);
}

/* Rewrite record `seq` through LMDB with `mutate` applied. */
static void rewrite_record(const char *dir, uint64_t seq, void (*mutate)(uint8_t *, size_t *))
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log;
    open_log(dir, &env, &txn, &log);
    uint8_t key[8];
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(seq >> (56 - 8 * i));
    MDB_val k = {8, key}, v;
    ASSERT_EQ(mdb_get(txn, log, &k, &v), 0);
    uint8_t buf[4096];
    size_t len = v.mv_size;
    ASSERT(len < sizeof buf);
    memcpy(buf, v.mv_data, len);
    mutate(buf, &len);
    MDB_val nv = {len, buf};
    ASSERT_EQ(mdb_put(txn, log, &k, &nv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void flip_last_byte(uint8_t *b, size_t *len)
{
    b[*len - 70] ^= 0x01; /* inside the last signature */
}

static void flip_body_byte(uint8_t *b, size_t *len)
{
    /* the note's text, "note 6": flip its digit */
    for (size_t i = 0; i + 6 < *len; i++)
        if (memcmp(b + i, "note 6", 6) == 0) {
            b[i + 5] ^= 0x01;
            return;
        }
    TH_FAIL("no note text to flip");
}

static void tamper_and_expect(void (*mutate)(uint8_t *, size_t *), const char *needle)
{
    world w;
    world_open(&w, NULL);
    dk_append_res res;
    for (uint64_t i = 1; i <= 6; i++)
        ASSERT_OK(fx_append(w.lg, w.alice, "note.added", "HO-1", i, NULL, &res));
    dk_ledger_close(w.lg);
    rewrite_record(w.dir, 10, mutate);
    ASSERT_OK(dk_ledger_open(w.dir, NULL, &w.lg));
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(w.lg, &rep));
    ASSERT_EQ(rep.ok, 0);
    ASSERT_EQ(rep.seq, 10);
    ASSERT_CONTAINS(rep.reason, needle);
    world_close(&w);
}

TEST(verify_catches_rewritten_signature)
{
    tamper_and_expect(flip_last_byte, "signature");
}

TEST(verify_catches_rewritten_body)
{
    tamper_and_expect(flip_body_byte, "signature");
}

TH_MAIN(
    TH_ENTRY(init_append_reopen) TH_ENTRY(init_refuses_existing_and_open_refuses_missing) TH_ENTRY(
        idempotent_retry) TH_ENTRY(expected_version_conflict) TH_ENTRY(signature_checks)
        TH_ENTRY(revocation_and_rotation) TH_ENTRY(auditors_append_nothing_to_cases)
            TH_ENTRY(system_event_rules) TH_ENTRY(a_key_belongs_to_one_actor) TH_ENTRY(
                a_writer_whose_lock_file_was_removed_writes_nothing) TH_ENTRY(a_full_disk_is_named) TH_ENTRY(a_full_disk_still_opens_a_ledger_with_its_old_lock_file)
                TH_ENTRY(a_dead_readers_slot_is_freed) TH_ENTRY(bad_bodies_leave_ledger_unchanged)
                    TH_ENTRY(eight_threads_dense_seq)
                        TH_ENTRY(close_waits_for_a_caller_committing_its_own_append)
                            TH_ENTRY(close_keeps_the_trusted_rows_until_the_writer_drains) TH_ENTRY(
                                a_row_put_back_after_a_revocation_is_not_trusted_from_the_cache)
                                TH_ENTRY(map_grows_by_itself) TH_ENTRY(reads_by_case_and_time)
                                    TH_ENTRY(truncated_file_is_named_not_read)
                                        TH_ENTRY(gather_reads_runs_of_cases)
                                            TH_ENTRY(gather_keeps_ids_of_every_length)
                                                TH_ENTRY(gather_lists_the_system_records)
                                                    TH_ENTRY(upgrade_from_the_separate_case_index)
                                                        TH_ENTRY(upgrade_grows_a_full_map) TH_ENTRY(
                                                            verify_catches_rewritten_signature)
                                                            TH_ENTRY(verify_catches_rewritten_body))
