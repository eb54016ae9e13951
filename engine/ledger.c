/* ledger.c - the append-only ledger: LMDB environment, the group-commit
 * writer thread that checks and appends signed events, and snapshot reads. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "docket/docket.h"
#include "docket/lmdbfile.h"
#include "engine_int.h"
#include "ledger_int.h"

/* Address space only: data.mdb grows as it is written. 64 GiB on 64-bit machines;
 * 1 GiB if the process may not map that much (ulimit -v) or on 32-bit ones. */
#define DEFAULT_MAP_SIZE  ((size_t)1 << (sizeof(size_t) >= 8 ? 36 : 30))
#define FALLBACK_MAP_SIZE ((size_t)1 << 30)
#define DEFAULT_MAX_BATCH 1024

/* actors row: pubkey(32) roles(be32) revoked(1) enrolled_seq(be64) */
#define ACTOR_ROW 45

struct dk__pending {
    dk__pending *next;
    uint8_t *body;
    size_t body_len;
    dk_event ev;
    size_t nsigs;
    dk_sig sigs[DK_SIGS_MAX];
    /* The key each signature was verified against before queueing; all
     * zero if the signer was not yet enrolled then (the writer verifies). */
    uint8_t verified_key[DK_SIGS_MAX][DK_PUBKEY_BYTES];
    int verified[DK_SIGS_MAX];
    dk_append_cb cb;
    void *udata;
    dk_append_res res;
};

typedef struct head_state {
    uint64_t seq;
    uint8_t hash[DK_HASH_BYTES];
    int64_t recorded_at;
} head_state;

/* ---- errors and transactions ---- */

int dk__mdb_err(int rc, const char *what)
{
    if (rc == 0)
        return 0;
    int code = dk_lmdb_code(rc);
    return dk__fail(code, "%s: %s", what, mdb_strerror(rc));
}

int dk__commit_err(MDB_env *env, int rc, const char *what)
{
    char note[512];
    return dk__fail(dk_lmdb_code(rc), "%s: %s%s", what, mdb_strerror(rc),
                    dk_lmdb_space_note(env, rc, note, sizeof note));
}

/* Resize the map (grow: double it; else adopt the size another process gave it) with no
 * transaction of this process open: txn_lock held exclusively, and the wait counted, so
 * that threads holding long snapshots end them (dk_ledger_resize_wanted). */
static int resize_map(dk_ledger *lg, int grow)
{
    MDB_envinfo info;
    atomic_fetch_add(&lg->resize_wanted, 1);
    pthread_rwlock_wrlock(&lg->txn_lock);
    int rc = ENOMEM; /* a resize that failed before left no map to read or resize */
    if (!atomic_load(&lg->map_lost)) {
        mdb_env_info(lg->env, &info);
        rc = mdb_env_set_mapsize(lg->env, grow ? info.me_mapsize * 2 : 0);
    }
    if (rc)
        atomic_store(&lg->map_lost, 1); /* LMDB unmapped the environment for good */
    pthread_rwlock_unlock(&lg->txn_lock);
    atomic_fetch_sub(&lg->resize_wanted, 1);
    return rc;
}

int dk__map_lost(dk_ledger *lg)
{
    if (atomic_load(&lg->map_lost))
        return dk__fail(DK_EIO, "the ledger's map could not be resized (out of address "
                                "space?); close the ledger and open it again");
    return 0;
}

/* Every transaction starts here, txn_lock held shared: refused once a failed resize has
 * left LMDB with no map (any call would read unmapped memory). */
static int txn_begin(dk_ledger *lg, unsigned flags, MDB_txn **txn)
{
    int lost = dk__map_lost(lg);
    if (lost)
        return lost;
    int rc = mdb_txn_begin(lg->env, NULL, flags, txn);
    return rc == MDB_MAP_RESIZED ? rc : rc ? dk__mdb_err(rc, "cannot begin a transaction") : 0;
}

int dk__read_begin(dk_ledger *lg, MDB_txn **txn)
{
    for (;;) {
        pthread_rwlock_rdlock(&lg->txn_lock);
        int rc = txn_begin(lg, MDB_RDONLY, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&lg->txn_lock);
        if (rc != MDB_MAP_RESIZED)
            return rc;
        /* Another process grew the map: adopt its size, then retry. */
        resize_map(lg, 0);
    }
}

void dk__read_end(dk_ledger *lg, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&lg->txn_lock);
}

int dk_ledger_resize_wanted(dk_ledger *lg)
{
    return atomic_load(&lg->resize_wanted) > 0;
}

int dk__write_txn(dk_ledger *lg, int (*fn)(dk_ledger *, MDB_txn *, void *), void *arg)
{
    MDB_txn *txn;
    if (lg->read_only)
        return dk__fail(DK_EINVAL, "the ledger was opened read-only");
    pthread_rwlock_rdlock(&lg->txn_lock);
    int rc = txn_begin(lg, 0, &txn);
    if (rc) {
        pthread_rwlock_unlock(&lg->txn_lock);
        return rc == MDB_MAP_RESIZED ? dk__mdb_err(rc, "cannot begin a transaction") : rc;
    }
    rc = fn(lg, txn, arg);
    if (rc == 0 && (rc = mdb_txn_commit(txn)) != 0)
        rc = dk__commit_err(lg->env, rc, "cannot commit");
    else if (rc)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&lg->txn_lock);
    return rc;
}

int dk__meta_is(dk_ledger *lg, MDB_txn *txn, const char *key, const char *value)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, lg->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return dk__mdb_err(rc, "cannot read the ledger's meta data");
    return v.mv_size == strlen(value) && memcmp(v.mv_data, value, v.mv_size) == 0;
}

int dk__meta_set(dk_ledger *lg, MDB_txn *txn, const char *key, const char *value)
{
    MDB_val k = {strlen(key), (void *)key}, v = {strlen(value), (void *)value};
    return mdb_put(txn, lg->meta, &k, &v, 0);
}

/* Double the map after MDB_MAP_FULL. Caller holds no transaction. */
int dk__ledger_grow_map(dk_ledger *lg)
{
    return dk__mdb_err(resize_map(lg, 1), "cannot grow the ledger map");
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- roles ---- */

unsigned dk_role_parse(const char *name, size_t len)
{
#define XX(n, bit, str)                                                                            \
    if (len == sizeof(str) - 1 && memcmp(name, str, len) == 0)                                     \
        return bit;
    DK_ROLE_MAP(XX)
#undef XX
    return 0;
}

void dk_roles_format(unsigned roles, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
#define XX(name, bit, str)                                                                         \
    if ((roles & (bit)) && n < cap)                                                                \
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", str);
    DK_ROLE_MAP(XX)
#undef XX
}

/* ---- open / close ---- */

/* LMDB's default order (memcmp, then the shorter first) with 8-byte keys compared as
 * big-endian integers in registers: the same order, so the files are unchanged and any
 * LMDB tool reads them, but a seq lookup no longer calls memcmp at every step of the
 * B-tree search (7-10% off random record reads through the case index). */
int dk__cmp_be64(const MDB_val *a, const MDB_val *b)
{
    if (a->mv_size == 8 && b->mv_size == 8) {
        uint64_t x = dk_get_be64(a->mv_data), y = dk_get_be64(b->mv_data);
        return x < y ? -1 : x > y;
    }
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int d = memcmp(a->mv_data, b->mv_data, n);
    return d ? d : a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

static int open_dbs(dk_ledger *lg, MDB_txn *txn, unsigned flags)
{
    struct {
        const char *name;
        MDB_dbi *dbi;
        unsigned extra;
        int seq_keys, seq_values; /* keys / duplicate values are be64 seqs */
    } dbs[] = {
        {"log", &lg->log, 0, 1, 0},
        {"cmd", &lg->cmd, 0, 0, 0},
        {"meta", &lg->meta, 0, 0, 0},
        {"actors", &lg->actors, 0, 0, 0},
        {"cases", &lg->cases, 0, 0, 0},
        {"slots", &lg->slots, 0, 0, 0},
        {"tree", &lg->tree, 0, 0, 0},
        {"checkpoints", &lg->checkpoints, 0, 0, 0},
        {"actor_log", &lg->actor_log, MDB_DUPSORT | MDB_DUPFIXED, 0, 1},
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        /* Databases added after a ledger was made are created on a write open. */
        unsigned create = (flags & MDB_CREATE) || (!lg->read_only && i > 0) ? MDB_CREATE : 0;
        int rc = mdb_dbi_open(txn, dbs[i].name, create | dbs[i].extra, dbs[i].dbi);
        if (rc == MDB_NOTFOUND && lg->read_only && i >= 5)
            continue; /* added later; the next write open creates it */
        if (rc == MDB_NOTFOUND && lg->read_only && dbs[i].dbi == &lg->cases &&
            dk__older_case_layout(lg, txn))
            return DK_EINVAL; /* not upgraded yet: no case index this build reads */
        if (rc == MDB_NOTFOUND)
            return dk__fail(DK_ENOTFOUND, "no docket ledger here (database '%s' is missing)",
                            dbs[i].name);
        if (rc == 0 && dbs[i].seq_keys)
            rc = mdb_set_compare(txn, *dbs[i].dbi, dk__cmp_be64);
        if (rc == 0 && dbs[i].seq_values)
            rc = mdb_set_dupsort(txn, *dbs[i].dbi, dk__cmp_be64);
        if (rc)
            return dk__mdb_err(rc, "cannot open the ledger's databases");
    }
    return 0;
}

static int env_open(const char *dir, const dk_ledger_opts *opts, int create, dk_ledger **out)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (!create)
            return dk__fail(DK_ENOTFOUND, "no ledger at '%s': %s", dir, strerror(errno));
        if (mkdir(dir, 0700) != 0)
            return dk__fail(DK_EIO, "cannot create ledger directory '%s': %s", dir,
                            strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return dk__fail(DK_EINVAL, "'%s' is not a directory", dir);
    }
    if (!create) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(path, &st) != 0)
            return dk__fail(DK_ENOTFOUND, "no ledger at '%s' (no data.mdb)", dir);
    }
    int rc = dk_init();
    if (rc)
        return rc;
    dk_ledger *lg = calloc(1, sizeof *lg);
    if (lg == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    lg->read_only = opts && opts->read_only;
    lg->max_batch = opts && opts->max_batch ? opts->max_batch : DEFAULT_MAX_BATCH;
    pthread_rwlock_init(&lg->txn_lock, NULL);
    pthread_mutex_init(&lg->mu, NULL);
    pthread_mutex_init(&lg->hook_mu, NULL);
    pthread_cond_init(&lg->cv, NULL);
    pthread_cond_init(&lg->vcv, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    lg->cores = cores > 0 ? (int)cores : 1;
    size_t map = opts && opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    MDB_txn *txn = NULL;
    for (;;) {
        if ((rc = mdb_env_create(&lg->env)) != 0 || (rc = mdb_env_set_maxdbs(lg->env, 32)) != 0 ||
            (rc = mdb_env_set_maxreaders(lg->env, 512)) != 0 ||
            (rc = mdb_env_set_mapsize(lg->env, map)) != 0) {
            rc = dk__mdb_err(rc, "cannot set up LMDB");
            goto fail;
        }
        dk_lmdb_watch_asserts(lg->env);
        unsigned eflags = MDB_NOTLS | (lg->read_only ? MDB_RDONLY : 0) |
                          (lg->read_only && opts && opts->no_lock ? MDB_NOLOCK : 0);
        if (!(eflags & MDB_NOLOCK) && (rc = dk_lmdb_lock_reserve(dir, "the ledger")) != 0)
            goto fail;
        rc = mdb_env_open(lg->env, dir, eflags, 0600);
        if (rc == ENOMEM && map > FALLBACK_MAP_SIZE && !(opts && opts->map_size)) {
            /* not allowed that much address space: start smaller, grow as needed */
            mdb_env_close(lg->env);
            lg->env = NULL;
            map = FALLBACK_MAP_SIZE;
            continue;
        }
        if (rc) {
            char what[240];
            snprintf(what, sizeof what, "LMDB cannot open '%.200s'", dir);
            rc = dk__mdb_err(rc, what);
            goto fail;
        }
        break;
    }
    lg->file = dk_lmdb_file_id(lg->env); /* for dk_ledger_file_current */
    unsigned envflags = 0;
    if (mdb_env_get_flags(lg->env, &envflags) == 0 && !(envflags & MDB_NOLOCK)) {
        lg->lock = dk_lmdb_lock_id(lg->env);  /* for the writer's check_lock */
        (void)dk_lmdb_readers_clear(lg->env); /* dead readers pin pages: the file grows */
    }
    if ((rc = dk_lmdb_file_check(lg->env, "the ledger")) != 0) {
        char msg[DK_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", dk_errmsg());
        rc = dk__fail(rc, "%s; restore it from a backup (`docket restore`)", msg);
        goto fail;
    }
    if (lg->read_only) {
        if ((rc = dk__read_begin(lg, &txn)) != 0)
            goto fail;
        rc = open_dbs(lg, txn, 0);
        /* DBI handles opened in a read transaction live on only if it commits. */
        mdb_txn_commit(txn);
        pthread_rwlock_unlock(&lg->txn_lock);
    } else {
        if ((rc = mdb_txn_begin(lg->env, NULL, 0, &txn)) != 0) {
            rc = dk__mdb_err(rc, "cannot begin a transaction");
            goto fail;
        }
        rc = open_dbs(lg, txn, create ? MDB_CREATE : 0);
        if (rc == 0 && (rc = mdb_txn_commit(txn)) != 0)
            rc = dk__commit_err(lg->env, rc, "cannot commit");
        else if (rc)
            mdb_txn_abort(txn);
    }
    if (rc)
        goto fail;
    *out = lg;
    return 0;
fail:
    if (lg->env)
        mdb_env_close(lg->env);
    pthread_rwlock_destroy(&lg->txn_lock);
    pthread_mutex_destroy(&lg->mu);
    pthread_mutex_destroy(&lg->hook_mu);
    pthread_cond_destroy(&lg->cv);
    pthread_cond_destroy(&lg->vcv);
    free(lg);
    return rc;
}

static int read_head(dk_ledger *lg, dk_head *out, int checked);

int dk_ledger_open(const char *dir, const dk_ledger_opts *opts, dk_ledger **out)
{
    int rc = env_open(dir, opts, 0, out);
    if (rc)
        return rc;
    dk_head h;
    rc = read_head(*out, &h, 0); /* a damaged head is named by what reads it (verify) */
    if (rc == 0 && h.seq == 0)   /* no head: records in the log say the meta table is damaged */
        rc = read_head(*out, &h, 1);
    if (rc == 0 && h.seq == 0)
        rc = dk__fail(DK_ENOTFOUND, "the ledger at '%s' was never initialised", dir);
    if (rc == 0 && !(*out)->read_only)
        rc = dk__upgrade_cases(*out); /* a case index from before the cases database */
    if (rc == 0 && !(*out)->read_only)
        rc = dk__upgrade_slots(*out); /* a slot index never built, or built by a buggy docket */
    if (rc == 0 && (*out)->read_only) /* an upgrade under way in another process */
        rc = dk__older_case_layout(*out, NULL) ? DK_EINVAL : 0;
    if (rc == 0 && !(*out)->read_only)
        rc = dk__tree_backfill(*out); /* a ledger made before the Merkle tree */
    if (rc == 0 && (*out)->read_only)
        rc = dk__tree_check_format(*out); /* an older tree is not read */
    if (rc == 0 && !(*out)->read_only)
        rc = dk__actorlog_backfill(*out); /* ... or before the actor history */
    if (rc) {
        dk_ledger_close(*out);
        *out = NULL;
    }
    return rc;
}

void dk_ledger_close(dk_ledger *lg)
{
    if (lg == NULL)
        return;
    /* The pool drains its queue into the writer's, then the writer drains. */
    pthread_mutex_lock(&lg->mu);
    lg->stopping = 1;
    int pool = lg->pool_running;
    pthread_cond_broadcast(&lg->vcv);
    pthread_mutex_unlock(&lg->mu);
    for (int i = 0; pool && i < lg->cores; i++)
        pthread_join(lg->pool[i], NULL);
    free(lg->pool);
    pthread_mutex_lock(&lg->mu);
    lg->stopping = 2;
    pthread_cond_broadcast(&lg->cv);
    /* A caller still checking its append inline, or committing its own append
     * (dk_ledger_append), finishes before the environment goes. */
    while (lg->verifying > 0 || lg->committing)
        pthread_cond_wait(&lg->cv, &lg->mu);
    int running = lg->writer_running;
    pthread_mutex_unlock(&lg->mu);
    if (running)
        pthread_join(lg->writer, NULL);
    free(lg->trusted); /* the writer and any leading caller are done */
    mdb_env_close(lg->env);
    pthread_rwlock_destroy(&lg->txn_lock);
    pthread_mutex_destroy(&lg->mu);
    pthread_mutex_destroy(&lg->hook_mu);
    pthread_cond_destroy(&lg->cv);
    pthread_cond_destroy(&lg->vcv);
    free(lg);
}

/* ---- small LMDB helpers used inside the writer's transaction ---- */

static int get_head(MDB_txn *txn, MDB_dbi meta, head_state *h)
{
    MDB_val k = {4, (void *)"head"}, v;
    memset(h, 0, sizeof *h);
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return dk__mdb_err(rc, "cannot read the ledger head");
    if (v.mv_size != 8 + DK_HASH_BYTES + 8)
        return dk__fail(DK_ECORRUPT, "the stored ledger head is %zu bytes, not 48", v.mv_size);
    const uint8_t *p = v.mv_data;
    h->seq = dk_get_be64(p);
    memcpy(h->hash, p + 8, DK_HASH_BYTES);
    h->recorded_at = (int64_t)dk_get_be64(p + 8 + DK_HASH_BYTES);
    return 0;
}

/* The head must describe the last record exactly: the writer dates and
 * chains new records from it, so a head altered on disk would otherwise
 * push every later time forward or fork the chain. */
static int check_head(dk_ledger *lg, MDB_txn *txn, const head_state *h)
{
    /* The head this writer committed last needs no check: only a head written
     * by someone else (another process, or the disk) costs a read and a hash. */
    if (h->seq == 0 || (h->seq == lg->written.seq && h->recorded_at == lg->written.recorded_at &&
                        memcmp(h->hash, lg->written.hash, DK_HASH_BYTES) == 0))
        return 0;
    uint8_t key[8], leaf[DK_HASH_BYTES];
    dk_put_be64(key, h->seq);
    MDB_val k = {8, key}, v;
    dk_record rec;
    int rc = mdb_get(txn, lg->log, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) /* not an answer about the head: LMDB's own error */
        return dk__mdb_err(rc, "cannot read the record the stored head names");
    if (rc == 0 && (rc = dk_record_decode(v.mv_data, v.mv_size, &rec)) == 0) {
        dk_leaf_hash(v.mv_data, v.mv_size, leaf);
        if (rec.recorded_at == h->recorded_at && memcmp(leaf, h->hash, DK_HASH_BYTES) == 0)
            return 0;
    }
    return dk__fail(DK_ECORRUPT,
                    "the stored ledger head (seq %llu) does not describe the last record: "
                    "nothing is appended until the ledger is checked (docket verify)",
                    (unsigned long long)h->seq);
}

static int put_head(MDB_txn *txn, MDB_dbi meta, const head_state *h)
{
    uint8_t buf[48];
    dk_put_be64(buf, h->seq);
    memcpy(buf + 8, h->hash, DK_HASH_BYTES);
    dk_put_be64(buf + 40, (uint64_t)h->recorded_at);
    MDB_val k = {4, (void *)"head"}, v = {sizeof buf, buf};
    return mdb_put(txn, meta, &k, &v, 0);
}

int dk__actor_row_decode(const MDB_val *k, const MDB_val *v, dk_actor_info *a)
{
    memset(a, 0, sizeof *a);
    size_t idlen = k->mv_size < DK_ACTOR_MAX ? k->mv_size : DK_ACTOR_MAX;
    memcpy(a->id, k->mv_data, idlen);
    if (k->mv_size < 1 || k->mv_size > DK_ACTOR_MAX || !dk__actor_id_valid(a->id, idlen))
        return dk__fail(DK_ECORRUPT, "the actor table has a row under a key that is no actor id");
    if (v->mv_size != ACTOR_ROW)
        return dk__fail(DK_ECORRUPT, "actor row for '%s' is %zu bytes", a->id, v->mv_size);
    const uint8_t *p = v->mv_data;
    memcpy(a->pubkey, p, DK_PUBKEY_BYTES);
    a->roles = (unsigned)p[32] << 24 | (unsigned)p[33] << 16 | (unsigned)p[34] << 8 | p[35];
    a->revoked = p[36];
    a->enrolled_seq = dk_get_be64(p + 37);
    if (p[36] > 1)
        return dk__fail(DK_ECORRUPT, "actor row for '%s' has a revoked flag of %u", a->id, p[36]);
    return 0;
}

static int get_actor(MDB_txn *txn, MDB_dbi actors, const char *id, dk_actor_info *a)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc = mdb_get(txn, actors, &k, &v);
    if (rc == MDB_NOTFOUND)
        return DK_ENOTFOUND;
    if (rc)
        return dk__mdb_err(rc, "cannot read actor");
    return dk__actor_row_decode(&k, &v, a);
}

static int put_actor(MDB_txn *txn, MDB_dbi actors, const dk_actor_info *a)
{
    uint8_t row[ACTOR_ROW];
    memcpy(row, a->pubkey, DK_PUBKEY_BYTES);
    row[32] = (uint8_t)(a->roles >> 24);
    row[33] = (uint8_t)(a->roles >> 16);
    row[34] = (uint8_t)(a->roles >> 8);
    row[35] = (uint8_t)a->roles;
    row[36] = (uint8_t)(a->revoked != 0);
    dk_put_be64(row + 37, a->enrolled_seq);
    MDB_val k = {strlen(a->id), (void *)a->id}, v = {sizeof row, row};
    return mdb_put(txn, actors, &k, &v, 0);
}

/* ---- the writer: check and apply one queued append inside the batch txn ---- */

/* A rejection of one append: the batch goes on without it. */
static int reject(dk__pending *p, int err, const char *fmt, ...) DK__PRINTF(3, 4);
static int reject(dk__pending *p, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->res.errmsg, sizeof p->res.errmsg, fmt, ap);
    va_end(ap);
    p->res.err = err;
    return 0;
}

static int reject_msg(dk__pending *p, int err)
{
    return reject(p, err, "%s", dk_errmsg());
}

/* The writer checks signers against the `actors` table, but trusts a row only once it
 * equals the actor's history folded (the admin-signed events that enrolled, re-keyed or
 * revoked it): a damaged row must not grant a role or a key no admin gave. Rows already
 * matched are kept by id (TRUSTED_SLOTS, direct-mapped), so an actor's history is read
 * once per change of its row. 0 trusted, else DK_ECORRUPT (message set) or an error. */
#define TRUSTED_SLOTS 256

int dk__actor_same_grant(const dk_actor_info *a, const dk_actor_info *b)
{
    return strcmp(a->id, b->id) == 0 && memcmp(a->pubkey, b->pubkey, DK_PUBKEY_BYTES) == 0 &&
           a->roles == b->roles && (a->revoked != 0) == (b->revoked != 0) &&
           a->enrolled_seq == b->enrolled_seq;
}

/* 0 if `row` is the actor's history folded (*hist), DK_ECORRUPT (message set) if not. */
static int row_is_history(dk_ledger *lg, MDB_txn *txn, const dk_actor_info *row,
                          dk_actor_info *hist)
{
    int rc = dk__actor_fold(lg, txn, row->id, UINT64_MAX, hist);
    if (rc == DK_ENOTFOUND || (rc == 0 && !dk__actor_same_grant(hist, row)))
        return dk__fail(DK_ECORRUPT,
                        "the actor table's row for '%s' is not what its history made it (key, "
                        "roles, revocation or enrolment); 'docket verify' names the damage",
                        row->id);
    return rc;
}

static int trust_row(dk_ledger *lg, MDB_txn *txn, const dk_actor_info *row)
{
    if (lg->actor_log == 0)
        return 0; /* a ledger from before the history, opened before its backfill */
    if (lg->trusted == NULL && (lg->trusted = calloc(TRUSTED_SLOTS, sizeof *lg->trusted)) == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    dk_actor_info *slot = &lg->trusted[dk__fnv1a(row->id) % TRUSTED_SLOTS];
    if (dk__actor_same_grant(slot, row))
        return 0;
    dk_actor_info hist;
    int rc = row_is_history(lg, txn, row, &hist);
    if (rc == 0)
        *slot = hist;
    return rc;
}

/* The cache holds rows equal to the history as this writer last saw it: forget them when
 * the history may have changed (an actor event, a batch aborted, another process's commit). */
static void forget_trusted(dk_ledger *lg)
{
    if (lg->trusted)
        memset(lg->trusted, 0, TRUSTED_SLOTS * sizeof *lg->trusted);
}

/* Signature checks inside the transaction: each signer enrolled, not revoked,
 * and its current key the one the signature verifies against. */
static int check_signers(dk_ledger *lg, MDB_txn *txn, dk__pending *p, const dk__actor_change *ac,
                         dk_actor_info *author, dk__case_append *ca)
{
    for (size_t i = 0; i < p->nsigs; i++) {
        dk_actor_info a;
        const uint8_t *key;
        if (ac->kind == DK__ACT_GENESIS) {
            key = ac->pubkey; /* genesis is signed by the admin it enrols */
            memset(&a, 0, sizeof a);
            a.roles = DK_ROLE_ADMIN;
        } else {
            int rc = get_actor(txn, lg->actors, p->sigs[i].actor, &a);
            if (rc == DK_ENOTFOUND)
                return reject(p, DK_EDENIED, "actor '%s' is not enrolled in this ledger",
                              p->sigs[i].actor);
            if (rc == 0)
                rc = trust_row(lg, txn, &a);
            if (rc == DK_ECORRUPT)
                return reject_msg(p, DK_ECORRUPT); /* this append only: the batch goes on */
            if (rc)
                return rc;
            if (a.revoked)
                return reject(p, DK_EDENIED, "actor '%s' has been revoked", p->sigs[i].actor);
            key = a.pubkey;
        }
        if (!p->verified[i] || memcmp(p->verified_key[i], key, DK_PUBKEY_BYTES) != 0) {
            /* Not verified before queueing, or the key changed since. */
            if (dk_verify(key, p->body, p->body_len, p->sigs[i].sig) != 0)
                return reject(p, DK_EBADSIG,
                              "signature by '%s' does not verify against that actor's current key",
                              p->sigs[i].actor);
        }
        if (i == 0) {
            *author = a;
        } else {
            ca->cosigners[ca->ncos] = p->sigs[i].actor;
            ca->cosigner_roles[ca->ncos++] = a.roles;
        }
    }
    return 0;
}

/* Rules for system events: genesis only first, actor changes only by an admin. */
static int check_system(dk_ledger *lg, MDB_txn *txn, dk__pending *p, const head_state *h,
                        const dk__actor_change *ac, const dk_actor_info *author)
{
    if (ac->kind == DK__ACT_GENESIS) {
        if (h->seq != 0)
            return reject(p, DK_EDENIED, "ledger.genesis can only be the first record");
        if (strcmp(ac->id, p->ev.actor) != 0)
            return reject(p, DK_EDENIED, "ledger.genesis must be signed by the admin it enrols");
        return 0;
    }
    if (h->seq == 0)
        return reject(p, DK_EDENIED, "the ledger has no genesis record yet");
    if (ac->kind == DK__ACT_NONE)
        return 0; /* case events: the permission table in case.c decides */
    if (!(author->roles & DK_ROLE_ADMIN))
        return reject(p, DK_EDENIED, "%s needs an admin; actor '%s' is not one", p->ev.type,
                      p->ev.actor);
    dk_actor_info target;
    int rc = get_actor(txn, lg->actors, ac->id, &target);
    if (rc && rc != DK_ENOTFOUND)
        return rc;
    int exists = rc == 0;
    if (ac->kind == DK__ACT_ENROLL && exists)
        return reject(p, DK_EEXIST, "actor '%s' is already enrolled (rotate its key instead)",
                      ac->id);
    if (ac->kind != DK__ACT_ENROLL && !exists)
        return reject(p, DK_ENOTFOUND, "actor '%s' is not enrolled", ac->id);
    if (ac->kind != DK__ACT_ENROLL && target.revoked)
        return reject(p, DK_EDENIED, "actor '%s' is already revoked", ac->id);
    if (ac->kind == DK__ACT_ROTATE && memcmp(target.pubkey, ac->pubkey, DK_PUBKEY_BYTES) == 0)
        return reject(p, DK_EEXIST,
                      "actor.key_rotated: actor '%s' holds that public key now; a rotation "
                      "gives it a new one (docket keygen makes one)",
                      ac->id);
    if (ac->kind == DK__ACT_ENROLL || ac->kind == DK__ACT_ROTATE) {
        /* one key, one actor, once: else whoever holds it signs as both, and four eyes are
         * two ids of one person (helper-68); a retired key too, which may be why it was
         * retired (helper-69), whoever held it (helper-70: an actor rotated back to its
         * own retired key, and that key signed again) */
        char who[DK_ACTOR_MAX + 1];
        rc = dk__key_holder(lg, txn, ac->pubkey, who);
        if (rc == 0 && strcmp(who, ac->id) == 0)
            return reject(p, DK_EEXIST,
                          "%s: actor '%s' held that public key before and retired it; a "
                          "retired key is not taken back (docket keygen makes a new one)",
                          p->ev.type, ac->id);
        if (rc == 0)
            return reject(p, DK_EEXIST,
                          "%s: that public key was given to actor '%s'; each actor has a key of "
                          "its own (docket keygen makes one)",
                          p->ev.type, who);
        if (rc != DK_ENOTFOUND)
            return rc;
    }
    return 0;
}

static int apply_actor(dk_ledger *lg, MDB_txn *txn, const dk__actor_change *ac, uint64_t seq)
{
    dk_actor_info a;
    memset(&a, 0, sizeof a);
    if (ac->kind == DK__ACT_NONE)
        return 0;
    if (ac->kind == DK__ACT_ROTATE || ac->kind == DK__ACT_REVOKE) {
        int rc = get_actor(txn, lg->actors, ac->id, &a);
        if (rc)
            return rc;
    }
    dk__actor_apply(&a, ac, seq);
    forget_trusted(lg);
    int rc = put_actor(txn, lg->actors, &a);
    if (rc == MDB_MAP_FULL)
        return rc;
    if (rc)
        return dk__mdb_err(rc, "cannot write the actor table");
    return dk__actorlog_add(lg, txn, ac->id, seq);
}

/* Is the stored body the same command as `ev`? Everything but the author's
 * clock must match: a client that retries may sign again at a later `at`. */
static int same_command(const uint8_t *body, size_t len, const dk_event *ev)
{
    dk_event old;
    if (dk_event_decode(body, len, &old) != 0)
        return 0;
    return strcmp(old.type, ev->type) == 0 && strcmp(old.case_id, ev->case_id) == 0 &&
           strcmp(old.actor, ev->actor) == 0 && old.has_eff == ev->has_eff && old.eff == ev->eff &&
           old.has_expect == ev->has_expect && old.expect == ev->expect &&
           old.data_len == ev->data_len && memcmp(old.data, ev->data, ev->data_len) == 0;
}

/* Idempotency: a known command id answers with its original seq. Returns 1
 * if handled (duplicate or reuse), 0 to go on, <0 on a storage error. */
static int check_cmd(dk_ledger *lg, MDB_txn *txn, dk__pending *p)
{
    MDB_val k = {DK_CMD_BYTES, p->ev.cmd}, v;
    int rc = mdb_get(txn, lg->cmd, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return dk__mdb_err(rc, "cannot read the command index");
    uint64_t seq = dk_get_be64(v.mv_data);
    uint8_t key[8];
    dk_put_be64(key, seq);
    MDB_val lk = {8, key}, lv;
    dk_record rec;
    if ((rc = mdb_get(txn, lg->log, &lk, &lv)) != 0)
        return dk__mdb_err(rc, "command index points at a missing record");
    if (dk_record_decode(lv.mv_data, lv.mv_size, &rec) != 0)
        return dk__fail(DK_ECORRUPT, "record %llu does not decode: %s", (unsigned long long)seq,
                        dk_errmsg());
    if (!same_command(rec.body, rec.body_len, &p->ev)) {
        char hex[2 * DK_CMD_BYTES + 1];
        dk_hex_encode(p->ev.cmd, DK_CMD_BYTES, hex);
        reject(p, DK_ECMDREUSE, "command id %s was already used by seq %llu for another event", hex,
               (unsigned long long)seq);
        return 1;
    }
    p->res.seq = seq;
    p->res.duplicate = 1;
    p->res.recorded_at = rec.recorded_at;
    return 1;
}

/* Check one append against the state left by those before it; if it passes,
 * write it. Returns <0 only for storage errors that doom the whole batch. */
static int apply_one(dk_ledger *lg, MDB_txn *txn, dk__pending *p, head_state *h, int64_t now)
{
    dk__actor_change ac;
    dk_actor_info author = {0};
    dk__case_append ca;
    int rc;
    memset(&p->res, 0, sizeof p->res);
    memset(&ca, 0, sizeof ca);
    if (dk__actor_change_parse(&p->ev, &ac) != 0)
        return reject_msg(p, DK_ESCHEMA);
    if ((rc = check_cmd(lg, txn, p)) != 0)
        return rc < 0 ? rc : 0;
    if ((rc = check_signers(lg, txn, p, &ac, &author, &ca)) != 0 || p->res.err)
        return rc;
    if ((rc = check_system(lg, txn, p, h, &ac, &author)) != 0 || p->res.err)
        return rc;

    dk_record rec;
    memset(&rec, 0, sizeof rec);
    rec.seq = h->seq + 1;
    rec.recorded_at = now > h->recorded_at ? now : h->recorded_at + 1;
    if (ac.kind == DK__ACT_NONE) {
        /* A case event: the domain rules, then the case's state and slots. */
        uint64_t version;
        int code = 0;
        ca.ev = &p->ev;
        ca.seq = rec.seq;
        ca.recorded_at = rec.recorded_at;
        ca.body = p->body;
        ca.body_len = p->body_len;
        ca.author_roles = author.roles;
        rc = dk__case_check_apply(lg, txn, &ca, &version, &code);
        if (rc == 1)
            return reject_msg(p, code);
        if (rc == DK__MAPFULL)
            return MDB_MAP_FULL;
        if (rc)
            return rc;
    } else if (p->ev.has_expect) {
        return reject(p, DK_EINVAL, "%s has no case, so no expected version", p->ev.type);
    }

    /* Every check passed: build the record and write it. */
    memcpy(rec.prev, h->hash, DK_HASH_BYTES);
    rec.body = p->body;
    rec.body_len = p->body_len;
    rec.nsigs = p->nsigs;
    memcpy(rec.sigs, p->sigs, sizeof p->sigs);
    uint8_t *raw;
    size_t raw_len;
    if ((rc = dk_record_encode(&rec, &raw, &raw_len)) != 0)
        return rc;
    uint8_t seqkey[8];
    dk_put_be64(seqkey, rec.seq);
    MDB_val k = {8, seqkey}, v = {raw_len, raw};
    rc = mdb_put(txn, lg->log, &k, &v, MDB_APPEND);
    if (rc == 0) {
        MDB_val ck = {DK_CMD_BYTES, p->ev.cmd}, cv = {8, seqkey};
        rc = mdb_put(txn, lg->cmd, &ck, &cv, MDB_NOOVERWRITE);
    }
    if (rc == 0 && p->ev.case_id[0]) {
        uint8_t ik[DK__CASE_KEY_MAX];
        MDB_val kk = {dk__case_seq_key(ik, p->ev.case_id, strlen(p->ev.case_id), rec.seq), ik},
                ev = {0, ik}; /* an index key has no value */
        rc = mdb_put(txn, lg->cases, &kk, &ev, 0);
    }
    if (rc == 0)
        dk_leaf_hash(raw, raw_len, h->hash);
    free(raw);
    if (rc == MDB_MAP_FULL)
        return rc; /* the caller grows the map and retries the batch */
    if (rc)
        return dk__mdb_err(rc, "cannot write the record");
    if ((rc = apply_actor(lg, txn, &ac, rec.seq)) != 0)
        return rc; /* MDB_MAP_FULL (retry) or a DK_E* code */
    if ((rc = dk__tree_append(lg, txn, rec.seq, h->hash)) != 0)
        return rc == DK__MAPFULL ? MDB_MAP_FULL : rc;
    h->seq = rec.seq;
    h->recorded_at = rec.recorded_at;
    p->res.seq = rec.seq;
    p->res.recorded_at = rec.recorded_at;
    return 0;
}

/* Run one batch in one transaction. Returns 0, MDB_MAP_FULL to retry after
 * growing the map, or a DK_E* code that fails every append in the batch. */
/* Is this process's lock file still the ledger's? One removed (a clean-up that took it
 * for a leftover) and made anew by another process's open leaves two writers that do not
 * exclude each other, and they corrupt the ledger (helper-71 did this to the views). */
static int check_lock(dk_ledger *lg)
{
    if (lg->lock.ino == 0 || dk_lmdb_lock_current(lg->env, lg->lock))
        return 0;
    const char *dir = "";
    (void)mdb_env_get_path(lg->env, &dir);
    return dk__fail(DK_ECLOSED,
                    "the ledger's lock file '%s/lock.mdb' was removed or replaced while this "
                    "process had the ledger open: it no longer shares LMDB's write lock, and two "
                    "writers would corrupt the ledger, so nothing was written (end every docket "
                    "process on this ledger, then open it again)",
                    dir);
}

static int run_batch(dk_ledger *lg, dk__pending *batch, uint64_t *head_seq)
{
    MDB_txn *txn;
    head_state h;
    int rc;
    if ((rc = check_lock(lg)) != 0)
        return rc;
    pthread_rwlock_rdlock(&lg->txn_lock);
    rc = txn_begin(lg, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
        pthread_rwlock_unlock(&lg->txn_lock);
        resize_map(lg, 0);
        pthread_rwlock_rdlock(&lg->txn_lock);
        rc = txn_begin(lg, 0, &txn);
    }
    if (rc) {
        pthread_rwlock_unlock(&lg->txn_lock);
        return rc == MDB_MAP_RESIZED ? dk__mdb_err(rc, "cannot begin the write transaction") : rc;
    }
    rc = get_head(txn, lg->meta, &h);
    if (rc == 0 && (h.seq != lg->written.seq || memcmp(h.hash, lg->written.hash, DK_HASH_BYTES)))
        forget_trusted(lg); /* another process appended: its actor events are unseen */
    if (rc == 0)
        rc = check_head(lg, txn, &h);
    int64_t now = now_us();
    uint64_t start = h.seq;
    for (dk__pending *p = batch; rc == 0 && p; p = p->next)
        rc = apply_one(lg, txn, p, &h, now);
    /* A batch that appended nothing (every append refused) writes nothing: the file stays
     * byte for byte as it was, and no commit is paid for (helper-70: a refused append
     * rewrote the meta page). */
    int appended = rc == 0 && h.seq != start;
    if (appended && (rc = put_head(txn, lg->meta, &h)) != 0 && rc != MDB_MAP_FULL)
        rc = dk__mdb_err(rc, "cannot write the ledger head");
    if (rc == 0 && !appended) {
        mdb_txn_abort(txn);
        forget_trusted(lg); /* what the refused appends read or wrote is gone with it */
        *head_seq = h.seq;
    } else if (rc == 0) {
        rc = mdb_txn_commit(txn); /* durable: LMDB syncs on commit */
        if (rc && rc != MDB_MAP_FULL)
            rc = dk__commit_err(lg->env, rc, "cannot commit the batch");
        if (rc == 0) {
            *head_seq = h.seq;
            lg->written.seq = h.seq;
            lg->written.recorded_at = h.recorded_at;
            memcpy(lg->written.hash, h.hash, DK_HASH_BYTES);
        }
    } else {
        mdb_txn_abort(txn);
    }
    if (rc)
        forget_trusted(lg); /* rows trusted from this batch's writes are gone with it */
    pthread_rwlock_unlock(&lg->txn_lock);
    return rc;
}

/* Run one batch to its end: commit (growing the map as needed), answer every append
 * in it, call the commit hook. The caller holds the right to commit (lg->committing). */
static void commit_batch(dk_ledger *lg, dk__pending *batch)
{
    int rc;
    uint64_t head_seq = 0;
    while ((rc = run_batch(lg, batch, &head_seq)) == MDB_MAP_FULL) {
        if ((rc = dk__ledger_grow_map(lg)) != 0)
            break;
    }
    for (dk__pending *p = batch, *next; p; p = next) {
        next = p->next;
        if (rc) {
            p->res.err = rc;
            p->res.seq = 0;
            p->res.duplicate = 0;
            snprintf(p->res.errmsg, sizeof p->res.errmsg, "%s", dk_errmsg());
        }
        p->cb(p->udata, &p->res);
        free(p->body);
        free(p);
    }
    if (rc == 0) { /* under hook_mu: a caller that unhooks waits for this call */
        pthread_mutex_lock(&lg->hook_mu);
        if (lg->on_commit)
            lg->on_commit(lg->on_commit_ud, head_seq);
        pthread_mutex_unlock(&lg->hook_mu);
    }
}

static void *writer_main(void *arg)
{
    dk_ledger *lg = arg;
    pthread_setname_np(pthread_self(), "dk-writer");
    for (;;) {
        pthread_mutex_lock(&lg->mu);
        while ((lg->qhead == NULL && lg->stopping < 2) || lg->committing)
            pthread_cond_wait(&lg->cv, &lg->mu);
        if (lg->qhead == NULL) {
            pthread_mutex_unlock(&lg->mu);
            return NULL;
        }
        dk__pending *batch = lg->qhead, *last = batch;
        for (unsigned n = 1; n < lg->max_batch && last->next; n++)
            last = last->next;
        lg->qhead = last->next;
        if (lg->qhead == NULL)
            lg->qtail = NULL;
        last->next = NULL;
        lg->committing = 1;
        pthread_mutex_unlock(&lg->mu);
        commit_batch(lg, batch);
        pthread_mutex_lock(&lg->mu);
        lg->committing = 0;
        pthread_cond_broadcast(&lg->cv); /* dk_ledger_close may wait for this */
        pthread_mutex_unlock(&lg->mu);
    }
}

void dk_ledger_on_commit(dk_ledger *lg, dk_commit_fn fn, void *udata)
{
    pthread_mutex_lock(&lg->hook_mu);
    lg->on_commit = fn;
    lg->on_commit_ud = udata;
    pthread_mutex_unlock(&lg->hook_mu);
}

/* ---- submit: decode and verify in the caller's thread, then queue ---- */

static int preverify(dk_ledger *lg, dk__pending *p)
{
    MDB_txn *txn;
    dk__actor_change ac;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    int genesis = strcmp(p->ev.type, "ledger.genesis") == 0;
    if (genesis && (rc = dk__actor_change_parse(&p->ev, &ac)) != 0) {
        dk__read_end(lg, txn);
        return rc;
    }
    for (size_t i = 0; i < p->nsigs && rc == 0; i++) {
        dk_actor_info a;
        const uint8_t *key = NULL;
        if (genesis) {
            key = ac.pubkey;
        } else if ((rc = get_actor(txn, lg->actors, p->sigs[i].actor, &a)) == 0) {
            key = a.pubkey;
        } else if (rc == DK_ENOTFOUND) {
            rc = 0; /* maybe enrolled by an append still queued: the writer decides */
            continue;
        }
        if (key && dk_verify(key, p->body, p->body_len, p->sigs[i].sig) != 0) {
            /* against a row that is not what the actor's history made it, the failure is
             * the table's damage, not the signer's (the writer's trust_row says the same) */
            dk_actor_info hist;
            rc = genesis || lg->actor_log == 0 ? 0 : row_is_history(lg, txn, &a, &hist);
            if (rc == 0)
                rc = dk__fail(DK_EBADSIG,
                              "signature by '%s' does not verify against that actor's key",
                              p->sigs[i].actor);
        } else if (key) {
            memcpy(p->verified_key[i], key, DK_PUBKEY_BYTES);
            p->verified[i] = 1;
        }
    }
    dk__read_end(lg, txn);
    return rc;
}

/* Decode the body and verify its signatures (no lock held). */
static int check_pending(dk_ledger *lg, dk__pending *p)
{
    int rc = dk__event_decode_new(p->body, p->body_len, &p->ev);
    if (rc == 0 && strcmp(p->sigs[0].actor, p->ev.actor) != 0)
        rc = dk__fail(DK_EBADSIG, "the first signature must be the author's ('%s'), not '%s''s",
                      p->ev.actor, p->sigs[0].actor);
    for (size_t i = 0; rc == 0 && i < p->nsigs; i++)
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(p->sigs[i].actor, p->sigs[j].actor) == 0)
                rc = dk__fail(DK_EBADSIG, "actor '%s' signed the event twice", p->sigs[i].actor);
    if (rc == 0 && p->ev.case_id[0] && strncmp(p->ev.type, "actor.", 6) != 0 &&
        strncmp(p->ev.type, "ledger.", 7) != 0)
        rc = dk_case_check_schema(&p->ev);
    if (rc == 0)
        rc = preverify(lg, p);
    return rc;
}

/* Hand a checked append to the writer (caller holds mu). */
static int enqueue_writer(dk_ledger *lg, dk__pending *p)
{
    if (!lg->writer_running) {
        if (pthread_create(&lg->writer, NULL, writer_main, lg) != 0)
            return dk__fail(DK_ENOMEM, "cannot start the writer thread");
        lg->writer_running = 1;
    }
    if (lg->qtail)
        lg->qtail->next = p;
    else
        lg->qhead = p;
    lg->qtail = p;
    pthread_cond_signal(&lg->cv);
    return 0;
}

static void free_pending(dk__pending *p)
{
    free(p->body);
    free(p);
}

/* Answer an append that failed its checks, on the thread that checked it. */
static void answer_rejected(dk__pending *p, int rc)
{
    p->res.err = rc;
    snprintf(p->res.errmsg, sizeof p->res.errmsg, "%s", dk_errmsg());
    p->cb(p->udata, &p->res);
    free_pending(p);
}

static void *pool_main(void *arg)
{
    dk_ledger *lg = arg;
    pthread_setname_np(pthread_self(), "dk-verify");
    pthread_mutex_lock(&lg->mu);
    for (;;) {
        while (lg->vhead == NULL && !lg->stopping)
            pthread_cond_wait(&lg->vcv, &lg->mu);
        dk__pending *p = lg->vhead;
        if (p == NULL)
            break;
        lg->vhead = p->next;
        if (lg->vhead == NULL)
            lg->vtail = NULL;
        p->next = NULL;
        lg->verifying++;
        pthread_mutex_unlock(&lg->mu);
        int rc = check_pending(lg, p);
        pthread_mutex_lock(&lg->mu);
        lg->verifying--;
        if (rc == 0)
            rc = enqueue_writer(lg, p);
        if (rc) {
            pthread_mutex_unlock(&lg->mu);
            answer_rejected(p, rc);
            pthread_mutex_lock(&lg->mu);
        }
    }
    pthread_mutex_unlock(&lg->mu);
    return NULL;
}

/* Queue an append for the pool (caller holds mu). */
static int enqueue_pool(dk_ledger *lg, dk__pending *p)
{
    if (!lg->pool_running) {
        lg->pool = calloc((size_t)lg->cores, sizeof *lg->pool);
        if (lg->pool == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        for (int i = 0; i < lg->cores; i++) {
            if (pthread_create(&lg->pool[i], NULL, pool_main, lg) != 0) {
                /* Run with the threads we have; none means we cannot queue. */
                if (i == 0) {
                    free(lg->pool);
                    lg->pool = NULL;
                    return dk__fail(DK_ENOMEM, "cannot start the verification threads");
                }
                lg->cores = i;
                break;
            }
        }
        lg->pool_running = 1;
    }
    if (lg->vtail)
        lg->vtail->next = p;
    else
        lg->vhead = p;
    lg->vtail = p;
    pthread_cond_signal(&lg->vcv);
    return 0;
}

/* lead: the caller waits for the answer anyway (dk_ledger_append), so when no batch is
 * being committed and none is queued it commits its append itself, in its own thread:
 * one append alone is answered without waking the writer thread and then being woken. */
static int submit(dk_ledger *lg, const dk_append_req *req, dk_append_cb cb, void *udata, int lead)
{
    if (lg->read_only)
        return dk__fail(DK_EINVAL, "the ledger was opened read-only");
    if (req->nsigs < 1 || req->nsigs > DK_SIGS_MAX)
        return dk__fail(DK_EINVAL, "an event carries 1..%d signatures, not %zu", DK_SIGS_MAX,
                        req->nsigs);
    if (req->body_len > DK_BODY_MAX)
        return dk__fail(DK_ETOOBIG, "event body is %zu bytes; the limit is %d", req->body_len,
                        DK_BODY_MAX);
    dk__pending *p = calloc(1, sizeof *p);
    if (p == NULL || (p->body = malloc(req->body_len ? req->body_len : 1)) == NULL) {
        free(p);
        return dk__fail(DK_ENOMEM, "out of memory");
    }
    memcpy(p->body, req->body, req->body_len);
    p->body_len = req->body_len;
    p->nsigs = req->nsigs;
    memcpy(p->sigs, req->sigs, req->nsigs * sizeof *req->sigs);
    p->cb = cb;
    p->udata = udata;

    pthread_mutex_lock(&lg->mu);
    int rc = lg->stopping ? dk__fail(DK_ECLOSED, "the ledger is closing") : 0;
    int inline_check = rc == 0 && lg->verifying < lg->cores && lg->vhead == NULL;
    if (inline_check)
        lg->verifying++;
    else if (rc == 0)
        rc = enqueue_pool(lg, p);
    pthread_mutex_unlock(&lg->mu);
    if (rc || !inline_check) {
        if (rc)
            free_pending(p);
        return rc;
    }
    /* Verify here, in the caller's thread: no hand-off while cores are free. */
    rc = check_pending(lg, p);
    pthread_mutex_lock(&lg->mu);
    lg->verifying--;
    if (lg->stopping)
        pthread_cond_broadcast(&lg->cv); /* dk_ledger_close waits for inline checks */
    if (rc == 0 && lead && !lg->stopping && lg->qhead == NULL && !lg->committing) {
        lg->committing = 1;
        pthread_mutex_unlock(&lg->mu);
        commit_batch(lg, p);
        pthread_mutex_lock(&lg->mu);
        lg->committing = 0;
        /* the writer takes what queued meanwhile; dk_ledger_close may wait for this */
        pthread_cond_broadcast(&lg->cv);
        pthread_mutex_unlock(&lg->mu);
        return 0;
    }
    if (rc == 0)
        rc = lg->stopping > 1 ? dk__fail(DK_ECLOSED, "the ledger is closing")
                              : enqueue_writer(lg, p);
    pthread_mutex_unlock(&lg->mu);
    if (rc)
        free_pending(p);
    return rc;
}

int dk_ledger_submit(dk_ledger *lg, const dk_append_req *req, dk_append_cb cb, void *udata)
{
    return submit(lg, req, cb, udata, 0);
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    dk_append_res *res;
} waiter;

static void wake_waiter(void *udata, const dk_append_res *res)
{
    waiter *w = udata;
    pthread_mutex_lock(&w->mu);
    *w->res = *res;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int dk_ledger_append(dk_ledger *lg, const dk_append_req *req, dk_append_res *res)
{
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, res};
    memset(res, 0, sizeof *res);
    int rc = submit(lg, req, wake_waiter, &w, 1);
    if (rc) {
        res->err = rc;
        snprintf(res->errmsg, sizeof res->errmsg, "%s", dk_errmsg());
        return rc;
    }
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (res->err)
        dk__set_errmsg(res->errmsg);
    return res->err;
}

/* ---- init: the genesis record goes through the ordinary append path ---- */

static void pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
    size_t kn = strlen(k), vn = strlen(v);
    msgpack_pack_str(pk, kn);
    msgpack_pack_str_body(pk, k, kn);
    msgpack_pack_str(pk, vn);
    msgpack_pack_str_body(pk, v, vn);
}

int dk_ledger_init(const char *dir, const char *name, const dk_key *admin,
                   const dk_ledger_opts *opts, dk_ledger **out)
{
    *out = NULL;
    if (name == NULL || strlen(name) == 0 || strlen(name) > 64 ||
        !dk__utf8_valid(name, strlen(name)))
        return dk__fail(DK_EINVAL, "ledger name must be 1..64 bytes of UTF-8");
    for (const char *c = name; *c; c++) /* before anything is created: as the genesis's text */
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return dk__fail(DK_EINVAL, "ledger name holds a control character");
    dk_ledger *lg;
    int rc = env_open(dir, opts, 1, &lg);
    if (rc)
        return rc;
    dk_head h;
    if ((rc = dk_ledger_head(lg, &h)) != 0)
        goto fail;
    if (h.seq != 0) {
        rc = dk__fail(DK_EEXIST, "'%s' already holds a ledger (head seq %llu)", dir,
                      (unsigned long long)h.seq);
        goto fail;
    }
    if ((rc = dk__tree_backfill(lg)) != 0) /* marks the empty tree with its format */
        goto fail;
    uint8_t id[16];
    char id_hex[33], pk_b64[64];
    dk_random(id, sizeof id);
    dk_hex_encode(id, sizeof id, id_hex);
    dk_b64_encode(dk_key_public(admin), DK_PUBKEY_BYTES, pk_b64);

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4); /* keys in canonical (bytewise) order */
    pack_kv(&pk, "admin", dk_key_id(admin));
    pack_kv(&pk, "admin_pubkey", pk_b64);
    pack_kv(&pk, "ledger_id", id_hex);
    pack_kv(&pk, "name", name);

    dk_event ev;
    memset(&ev, 0, sizeof ev);
    ev.v = DK_EVENT_VERSION;
    snprintf(ev.type, sizeof ev.type, "ledger.genesis");
    snprintf(ev.actor, sizeof ev.actor, "%s", dk_key_id(admin));
    ev.at = now_us();
    dk_cmd_new(ev.cmd);
    ev.data = (const uint8_t *)sb.data;
    ev.data_len = sb.size;
    uint8_t *body = NULL;
    size_t body_len = 0;
    rc = dk_event_encode(&ev, &body, &body_len);
    msgpack_sbuffer_destroy(&sb);
    if (rc)
        goto fail;
    dk_sig sig;
    memset(&sig, 0, sizeof sig);
    snprintf(sig.actor, sizeof sig.actor, "%s", dk_key_id(admin));
    rc = dk_sign(admin, body, body_len, sig.sig);
    if (rc == 0) {
        dk_append_req req = {body, body_len, &sig, 1};
        dk_append_res res;
        rc = dk_ledger_append(lg, &req, &res);
    }
    free(body);
    if (rc)
        goto fail;
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(lg->env, NULL, 0, &txn)) != 0) {
        rc = dk__mdb_err(rc, "cannot begin a transaction");
        goto fail;
    }
    MDB_val fk = {6, (void *)"format"}, fv = {strlen(DK__FORMAT), (void *)DK__FORMAT};
    MDB_val ik = {9, (void *)"ledger_id"}, iv = {32, id_hex};
    MDB_val nk = {4, (void *)"name"}, nv = {strlen(name), (void *)name};
    if ((rc = mdb_put(txn, lg->meta, &fk, &fv, 0)) != 0 ||
        (rc = mdb_put(txn, lg->meta, &ik, &iv, 0)) != 0 ||
        (rc = mdb_put(txn, lg->meta, &nk, &nv, 0)) != 0 || (rc = dk__slots_mark(lg, txn)) != 0 ||
        (rc = dk__cases_mark(lg, txn)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        rc = dk__mdb_err(rc, "cannot record the ledger's identity");
        goto fail;
    }
    *out = lg;
    return 0;
fail:
    dk_ledger_close(lg);
    return rc;
}

/* ---- reads ---- */

/* A stored head names the log's last record: one past it would have readers step toward
 * records that do not exist, one short of it would hide the records after it. (The writer
 * checks the head's hash and time too, before it appends: check_head.) */
static int head_is_last(dk_ledger *lg, MDB_txn *txn, const head_state *h)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, lg->log, &cur);
    if (rc)
        return dk__mdb_err(rc, "cannot read the ledger");
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    uint64_t last = 0;
    if (rc == 0 && k.mv_size == 8)
        last = dk_get_be64(k.mv_data);
    else if (rc == 0)
        return dk__fail(DK_ECORRUPT, "the ledger's log ends with a key of %zu bytes", k.mv_size);
    else if (rc != MDB_NOTFOUND)
        return dk__mdb_err(rc, "cannot read the ledger");
    if (last != h->seq)
        return dk__fail(DK_ECORRUPT,
                        "the ledger's head is record %llu, but its log ends at record %llu: "
                        "check it with docket verify",
                        (unsigned long long)h->seq, (unsigned long long)last);
    return 0;
}

/* The stored head; with `checked`, only if it names the log's last record. */
static int read_head(dk_ledger *lg, dk_head *out, int checked)
{
    MDB_txn *txn;
    head_state h;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    rc = get_head(txn, lg->meta, &h);
    if (rc == 0 && checked)
        rc = head_is_last(lg, txn, &h);
    dk__read_end(lg, txn);
    if (rc == 0) {
        out->seq = h.seq;
        memcpy(out->hash, h.hash, DK_HASH_BYTES);
        out->recorded_at = h.recorded_at;
    }
    return rc;
}

int dk_ledger_file_current(dk_ledger *lg)
{
    const char *dir = NULL;
    if (mdb_env_get_path(lg->env, &dir) != 0)
        return dk__fail(DK_EIO, "cannot tell which directory this ledger handle opened");
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (dk_file_is(path, lg->file))
        return 0;
    return dk__fail(DK_ECLOSED,
                    "'%s' is no longer the ledger file this handle opened (moved, removed, or "
                    "replaced by a restore): open the ledger again to follow it",
                    path);
}

int dk_ledger_readers_clear(dk_ledger *lg)
{
    return lg->lock.ino ? dk_lmdb_readers_clear(lg->env) : 0;
}

int dk_ledger_head(dk_ledger *lg, dk_head *out)
{
    return read_head(lg, out, 1);
}

int dk_ledger_info(dk_ledger *lg, char id_hex[33], char name[65])
{
    MDB_txn *txn;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    MDB_val ik = {9, (void *)"ledger_id"}, nk = {4, (void *)"name"}, iv, nv;
    rc = mdb_get(txn, lg->meta, &ik, &iv);
    if (rc == 0)
        rc = mdb_get(txn, lg->meta, &nk, &nv);
    if (rc == 0 && (iv.mv_size != 32 || nv.mv_size > 64))
        rc = MDB_CORRUPTED;
    if (rc == 0) {
        memcpy(id_hex, iv.mv_data, 32);
        id_hex[32] = 0;
        memcpy(name, nv.mv_data, nv.mv_size);
        name[nv.mv_size] = 0;
    }
    dk__read_end(lg, txn);
    return dk__mdb_err(rc, "cannot read the ledger's identity");
}

int dk_ledger_get(dk_ledger *lg, uint64_t seq, uint8_t **raw, size_t *len)
{
    MDB_txn *txn;
    *raw = NULL;
    *len = 0;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    uint8_t key[8];
    dk_put_be64(key, seq);
    MDB_val k = {8, key}, v;
    rc = mdb_get(txn, lg->log, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = dk__fail(DK_ENOTFOUND, "there is no record with seq %llu", (unsigned long long)seq);
    } else if (rc) {
        rc = dk__mdb_err(rc, "cannot read the record");
    } else if ((*raw = malloc(v.mv_size ? v.mv_size : 1)) == NULL) {
        rc = dk__fail(DK_ENOMEM, "out of memory");
    } else {
        memcpy(*raw, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
    dk__read_end(lg, txn);
    return rc;
}

int dk_ledger_case_version(dk_ledger *lg, const char *case_id, uint64_t *version)
{
    MDB_txn *txn;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    rc = dk__case_version(lg, txn, case_id, version);
    dk__read_end(lg, txn);
    return rc;
}

int dk_ledger_actor(dk_ledger *lg, const char *id, dk_actor_info *out)
{
    MDB_txn *txn;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    rc = get_actor(txn, lg->actors, id, out);
    dk__read_end(lg, txn);
    if (rc == DK_ENOTFOUND)
        return dk__fail(DK_ENOTFOUND, "actor '%s' is not enrolled", id);
    return rc;
}

/* recorded_at of the record at `seq` within txn. */
static int time_at(dk_ledger *lg, MDB_txn *txn, uint64_t seq, int64_t *t)
{
    uint8_t key[8];
    dk_put_be64(key, seq);
    MDB_val k = {8, key}, v;
    dk_record rec;
    int rc = mdb_get(txn, lg->log, &k, &v);
    if (rc)
        return dk__mdb_err(rc, "cannot read a record");
    if ((rc = dk_record_decode(v.mv_data, v.mv_size, &rec)) != 0)
        return dk__fail(DK_ECORRUPT, "record %llu does not decode", (unsigned long long)seq);
    *t = rec.recorded_at;
    return 0;
}

int dk_ledger_seq_at(dk_ledger *lg, int64_t t, uint64_t *seq)
{
    MDB_txn *txn;
    head_state h;
    *seq = 0;
    int rc = dk__read_begin(lg, &txn);
    if (rc)
        return rc;
    rc = get_head(txn, lg->meta, &h);
    uint64_t lo = 1, hi = h.seq, found = 0; /* recorded_at grows with seq */
    while (rc == 0 && lo <= hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t mt;
        if ((rc = time_at(lg, txn, mid, &mt)) != 0)
            break;
        if (mt <= t) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    dk__read_end(lg, txn);
    if (rc == 0)
        *seq = found;
    return rc;
}

struct dk_iter {
    dk_ledger *lg;
    MDB_txn *txn;
    MDB_cursor *cur;
    int by_case;
    int started;
    uint64_t from;
    char case_id[DK_CASE_MAX + 1];
};

int dk_iter_open(dk_ledger *lg, uint64_t from_seq, const char *case_id, dk_iter **out)
{
    *out = NULL;
    if (case_id && strlen(case_id) > DK_CASE_MAX)
        return dk__fail(DK_EINVAL, "case id is longer than %d bytes", DK_CASE_MAX);
    dk_iter *it = calloc(1, sizeof *it);
    if (it == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    it->lg = lg;
    it->from = from_seq ? from_seq : 1;
    it->by_case = case_id != NULL;
    if (case_id)
        snprintf(it->case_id, sizeof it->case_id, "%s", case_id);
    int rc = dk__read_begin(lg, &it->txn);
    if (rc) {
        free(it);
        return rc;
    }
    rc = mdb_cursor_open(it->txn, it->by_case ? lg->cases : lg->log, &it->cur);
    if (rc) {
        dk__read_end(lg, it->txn);
        free(it);
        return dk__mdb_err(rc, "cannot open a cursor");
    }
    *out = it;
    return 0;
}

/* The next record's stored bytes in *v; 0, DK_ENOTFOUND at the end. */
static int iter_step(dk_iter *it, MDB_val *v)
{
    uint8_t key[8];
    MDB_val k;
    int rc;
    if (it->by_case) {
        /* the case's index keys, from `from` on: case id NUL be64(seq) */
        uint8_t ik[DK__CASE_KEY_MAX];
        size_t idn = strlen(it->case_id);
        uint64_t seq;
        k.mv_size = dk__case_seq_key(ik, it->case_id, idn, it->from);
        k.mv_data = ik;
        rc = mdb_cursor_get(it->cur, &k, v, it->started ? MDB_NEXT : MDB_SET_RANGE);
        if (rc == 0 && (!dk__case_key_of(&k, it->case_id, idn, &seq) || seq == 0))
            rc = MDB_NOTFOUND; /* past the case's index: its state row, or another case */
        if (rc == 0) {
            dk_put_be64(key, seq);
            k.mv_size = 8;
            k.mv_data = key;
            rc = mdb_get(it->txn, it->lg->log, &k, v);
            if (rc == MDB_NOTFOUND)
                return dk__fail(DK_ECORRUPT, "case index points at missing record %llu",
                                (unsigned long long)dk_get_be64(key));
        }
    } else {
        dk_put_be64(key, it->from);
        k.mv_size = 8;
        k.mv_data = key;
        rc = mdb_cursor_get(it->cur, &k, v, it->started ? MDB_NEXT : MDB_SET_RANGE);
    }
    it->started = 1;
    if (rc == MDB_NOTFOUND)
        return DK_ENOTFOUND;
    if (rc)
        return dk__mdb_err(rc, "cannot read the ledger");
    return 0;
}

int dk_iter_next(dk_iter *it, dk_record *rec)
{
    MDB_val v;
    int rc = iter_step(it, &v);
    if (rc)
        return rc;
    rc = dk_record_decode(v.mv_data, v.mv_size, rec);
    if (rc)
        return dk__fail(DK_ECORRUPT, "a stored record does not decode: %s", dk_errmsg());
    return 0;
}

int dk_iter_next_raw(dk_iter *it, dk_raw *raw)
{
    MDB_val v;
    int rc = iter_step(it, &v);
    if (rc == 0) {
        raw->p = v.mv_data;
        raw->len = v.mv_size;
    }
    return rc;
}

int dk_iter_case(dk_iter *it, const char *case_id)
{
    if (!it->by_case)
        return dk__fail(DK_EINVAL, "the iterator does not read a case");
    if (strlen(case_id) > DK_CASE_MAX)
        return dk__fail(DK_EINVAL, "case id is longer than %d bytes", DK_CASE_MAX);
    snprintf(it->case_id, sizeof it->case_id, "%s", case_id);
    it->from = 1;
    it->started = 0;
    return 0;
}

void dk_iter_close(dk_iter *it)
{
    if (it == NULL)
        return;
    mdb_cursor_close(it->cur);
    dk__read_end(it->lg, it->txn);
    free(it);
}
