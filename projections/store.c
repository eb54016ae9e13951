/* store.c - the views' LMDB environment (LEDGER_DIR/views): checkpoints, generations,
 * rebuild records and swaps, and the overlay flush that keeps digests. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "docket/lmdbfile.h"
#include "views_int.h"

#define INITIAL_MAP ((size_t)1 << 30)
#define CP_BYTES    76
/* A rebuild's record: owner pid, views, flags, seq, hash, each view's digest and count;
 * then the owner's start time and the version of each view's code that built it. Records
 * written before those two end at BUILD_OLD_BYTES. */
#define BUILD_OLD_BYTES (56 + NV * 24)
#define BUILD_START     BUILD_OLD_BYTES
#define BUILD_VERSIONS  (BUILD_START + 8)
#define BUILD_BYTES     (BUILD_VERSIONS + NV * 4)

static const char *const view_names[] = {
#define XX(id, name, version) name,
    DK_VIEW_MAP(XX)
#undef XX
};
static const uint32_t view_versions[] = {
#define XX(id, name, version) version,
    DK_VIEW_MAP(XX)
#undef XX
};

int dk_view_id(const char *name)
{
    for (int i = 0; name && i < NV; i++)
        if (strcmp(view_names[i], name) == 0)
            return i;
    return -1;
}

const char *dk_view_name(int id)
{
    return id >= 0 && id < NV ? view_names[id] : "unknown";
}

static uint32_t code_version(int v)
{
    return view_versions[v];
}

int dk__mdb_fail(int rc, const char *what)
{
    if (rc == MDB_MAP_FULL)
        return DK__VMAPFULL;
    int code = rc == EACCES || rc == EROFS ? DK_EDENIED : dk_lmdb_code(rc);
    /* LMDB's codes for a page or node it cannot use; a transaction spent at its first call
     * (MDB_BAD_TXN) is one whose named database's record was damaged (helper-67) */
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_BAD_TXN ||
        rc == MDB_INCOMPATIBLE)
        return dk_fail(DK_ECORRUPT, "views: %s: %s; " DK_VIEWS_STORE_DAMAGED, what,
                       mdb_strerror(rc));
    return dk_fail(code, "views: %s: %s", what, mdb_strerror(rc));
}

/* What every call says once a failed map growth has lost the environment. */
static int env_lost(void)
{
    return dk_fail(DK_EIO, "views: the environment was lost when its map could not grow; close "
                           "the views and open them again");
}

/* A remap that fails leaves LMDB's environment unmapped for good: open it anew (at `size`,
 * 0 for the usual first size; LMDB maps at least what the file holds), or leave vw->env
 * NULL so that every later call says it was lost. Returns `err`, with its message kept. */
static int reopen_env(dk_views *vw, size_t size, int err)
{
    char msg[DK_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", dk_errmsg());
    mdb_env_close(vw->env);
    vw->env = NULL;
    size_t keep = vw->map_size;
    vw->map_size = size;
    dk__env_open(vw); /* NULL again if it fails */
    vw->map_size = keep;
    return dk_fail(err, "%s", msg);
}

int dk__txn_begin(dk_views *vw, unsigned flags, MDB_txn **txn)
{
    if (vw->env == NULL)
        return env_lost();
    /* a writer whose lock file was removed and made anew by another process no longer
     * excludes it: two writers at once broke the store (helper-71) */
    if (!(flags & MDB_RDONLY) && vw->lock.ino && !dk_lmdb_lock_current(vw->env, vw->lock))
        return dk_fail(DK_ECLOSED,
                       "views: the store's lock file '%s/views/lock.mdb' was removed or "
                       "replaced while this process had the store open: it no longer shares "
                       "LMDB's write lock, so nothing was written (end every docket process on "
                       "this ledger, then open the views again)",
                       vw->dir);
    for (int tries = 0;; tries++) {
        int rc = mdb_txn_begin(vw->env, NULL, flags, txn);
        if (rc == 0)
            return 0;
        if (rc != MDB_MAP_RESIZED || tries > 3)
            return dk__mdb_fail(rc, "cannot begin a transaction");
        /* another process grew the map: adopt its size (no txn of ours is open) */
        if ((rc = mdb_env_set_mapsize(vw->env, 0)) != 0)
            return reopen_env(vw, 0,
                              dk__mdb_fail(rc, "views: cannot map what another process grew"));
    }
}

/* No views environment needs more address space than this (64 TiB). */
#define MAP_MAX ((size_t)1 << 46)

int dk__grow_map(dk_views *vw)
{
    MDB_envinfo info;
    mdb_env_info(vw->env, &info);
    if (info.me_mapsize > MAP_MAX / 2)
        return dk_fail(DK_EIO, "views: the map is full at %zu bytes and cannot grow further",
                       info.me_mapsize);
    int rc = mdb_env_set_mapsize(vw->env, info.me_mapsize * 2);
    if (rc)
        return reopen_env(vw, info.me_mapsize, dk__mdb_fail(rc, "cannot grow the map"));
    return 0;
}

int dk__ensure_map(dk_views *vw)
{
    if (vw->env == NULL)
        return env_lost();
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(vw->env, &info);
    mdb_env_stat(vw->env, &st);
    if ((info.me_last_pgno + 1) * (size_t)st.ms_psize > info.me_mapsize / 2)
        return dk__grow_map(vw);
    return 0;
}

static int put_str(MDB_txn *txn, MDB_dbi dbi, const char *k, const void *v, size_t vlen)
{
    MDB_val key = {strlen(k), (void *)k}, val = {vlen, (void *)v};
    return mdb_put(txn, dbi, &key, &val, 0);
}

int dk__views_readers_clear(dk_views *vw)
{
    return vw->env && vw->lock.ino ? dk_lmdb_readers_clear(vw->env) : 0;
}

int dk__views_store_current(const dk_views *vw)
{
    /* a ledger replaced under these views (a restore moved into place) is no more theirs:
     * stepping on would write the old file's records into views the new one's rebuild
     * repaired (the views' own check reads the head through this stale handle) */
    int rc = dk_ledger_file_current(vw->lg);
    if (rc)
        return rc;
    char data[4300];
    snprintf(data, sizeof data, "%s/views/data.mdb", vw->dir);
    if (dk_file_is(data, vw->store) &&
        (vw->lock.ino == 0 || dk_lmdb_lock_current(vw->env, vw->lock)))
        return 0;
    return dk_fail(DK_ECLOSED,
                   "views: '%s' (or its lock file) is no longer the store these views opened "
                   "(moved aside or replaced by a rebuild, or removed): open the views again to "
                   "follow it",
                   data);
}

/* LMDB's record of a named database (MDB_db: a pad, flags, depth, then five page counts,
 * entries and root, each a size_t here), which the main database holds under its name. */
#define DB_RECORD (8 + 5 * sizeof(size_t))

/* Every record in the main database is a named database's, of its size. LMDB reads a
 * damaged one (helper-67: its node said 49 bytes) and, writing the page back at the next
 * commit, copies past its buffer: such a store is refused at open as damage. */
static int records_check(MDB_txn *txn)
{
    MDB_dbi main;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (rc == 0)
        rc = mdb_cursor_open(txn, main, &cur);
    if (rc)
        return dk__mdb_fail(rc, "cannot read the views store's databases");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (v.mv_size != DB_RECORD)
            break;
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return dk__mdb_fail(rc, "cannot read the views store's databases");
    return dk_fail(
        DK_ECORRUPT,
        "views: the record of database '%.*s' is %zu bytes, not %zu; " DK_VIEWS_STORE_DAMAGED,
        (int)(k.mv_size < 64 ? k.mv_size : 64), (const char *)k.mv_data, v.mv_size,
        (size_t)DB_RECORD);
}

/* Open the store's own databases in `txn` and check its format; with `create`, make what
 * is missing. 0, MDB_NOTFOUND (not made yet, and not `create`), or a dk_err code. */
static int store_init(dk_views *vw, MDB_txn *txn, int create, const char *path)
{
    int rc = records_check(txn);
    if (rc)
        return rc;
    unsigned flags = create ? MDB_CREATE : 0;
    if ((rc = mdb_dbi_open(txn, "meta", flags, &vw->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "checkpoints", flags, &vw->checkpoints)) != 0)
        return rc == MDB_NOTFOUND && !create ? rc
                                             : dk__mdb_fail(rc, "cannot open the views databases");
    MDB_val k = {6, (void *)"format"}, v;
    rc = mdb_get(txn, vw->meta, &k, &v);
    if (rc == MDB_NOTFOUND && !create)
        return rc;
    if (rc == MDB_NOTFOUND)
        rc = put_str(txn, vw->meta, "format", FORMAT_TAG, strlen(FORMAT_TAG));
    else if (rc == 0 &&
             (v.mv_size != strlen(FORMAT_TAG) || memcmp(v.mv_data, FORMAT_TAG, v.mv_size)))
        return dk_fail(DK_ECORRUPT, "'%s' is not a docket views store (format '%.*s')", path,
                       (int)v.mv_size, (const char *)v.mv_data);
    return rc ? dk__mdb_fail(rc, "cannot initialise the views store") : 0;
}

int dk__env_open(dk_views *vw)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/views", vw->dir);
    /* another process (a rebuild that set a damaged store aside, or a follower) may make it
     * between the two calls */
    if (stat(path, &st) != 0 && mkdir(path, 0700) != 0 && errno != EEXIST)
        return dk_fail(DK_EIO, "cannot create the views directory '%s': %s", path, strerror(errno));
    size_t map = INITIAL_MAP;
    char data[4300];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    if (stat(data, &st) == 0 && (size_t)st.st_size * 2 > map)
        map = (size_t)st.st_size * 2;
    if (vw->map_size)
        map = vw->map_size; /* LMDB never maps less than the file holds */
    int rc;
    if ((rc = dk_lmdb_lock_reserve(path, "the views store")) != 0)
        return rc;
    if ((rc = mdb_env_create(&vw->env)) != 0)
        return dk__mdb_fail(rc, "cannot create the environment");
    dk_lmdb_watch_asserts(vw->env);
    if ((rc = mdb_env_set_maxdbs(vw->env, 256)) != 0 ||
        (rc = mdb_env_set_maxreaders(vw->env, 512)) != 0 ||
        (rc = mdb_env_set_mapsize(vw->env, map)) != 0 ||
        (rc = mdb_env_open(vw->env, path, MDB_NOTLS | MDB_NOMETASYNC, 0600)) != 0) {
        mdb_env_close(vw->env);
        vw->env = NULL;
        return dk__mdb_fail(rc, "cannot open the views environment");
    }
    if ((rc = dk_lmdb_file_check(vw->env, "the views store")) != 0)
        goto fail;
    vw->store = dk_lmdb_file_id(vw->env);
    vw->lock = dk_lmdb_lock_id(vw->env);
    (void)dk_lmdb_readers_clear(vw->env); /* dead readers pin pages: the file grows */
    /* A store already made needs no write to open: read first, so that a reader never
     * waits for another process's write transaction (helper-71: views status and every
     * --no-sync query hung behind a follower stopped inside its commit). */
    for (int create = 0; create < 2; create++) {
        MDB_txn *txn;
        if ((rc = dk__txn_begin(vw, create ? 0 : MDB_RDONLY, &txn)) != 0)
            goto fail;
        rc = store_init(vw, txn, create, path);
        if (rc == 0 && (rc = mdb_txn_commit(txn)) != 0) /* keeps the handles */
            rc = dk__mdb_fail(rc, "cannot initialise the views store");
        else if (rc)
            mdb_txn_abort(txn);
        if (rc != MDB_NOTFOUND)
            break;
    }
    if (rc)
        goto fail;
    return 0;
fail:
    mdb_env_close(vw->env);
    vw->env = NULL;
    return rc;
}

void dk__db_name(char *out, size_t cap, int view, uint64_t gen)
{
    snprintf(out, cap, "%s@%llu", dk_view_name(view), (unsigned long long)gen);
}

int dk__db_open(MDB_txn *txn, int view, uint64_t gen, int create, MDB_dbi *dbi)
{
    char name[64];
    dk__db_name(name, sizeof name, view, gen);
    return mdb_dbi_open(txn, name, create ? MDB_CREATE : 0, dbi);
}

/* ---- checkpoints ---- */

typedef struct cpoint {
    uint32_t version;
    uint64_t gen, seq, count;
    uint8_t hash[DK_HASH_BYTES];
    uint8_t digest[DK_VIEW_DIGEST_BYTES];
} cpoint;

/* cp_get's "a row is there, but it is not a checkpoint": a view to rebuild. Not
 * MDB_CORRUPTED, which LMDB returns for a broken page and which leaves the transaction
 * unusable (every later call: MDB_BAD_TXN), so that it is reported as damage instead. */
#define CP_MALFORMED DK__CP_MALFORMED

static int cp_get(dk_views *vw, MDB_txn *txn, int view, cpoint *cp)
{
    const char *name = dk_view_name(view);
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, vw->checkpoints, &k, &v);
    if (rc)
        return rc;
    if (v.mv_size != CP_BYTES)
        return CP_MALFORMED;
    const uint8_t *p = v.mv_data;
    cp->version = dk_get_be32(p);
    cp->gen = dk_get_be64(p + 4);
    cp->seq = dk_get_be64(p + 12);
    memcpy(cp->hash, p + 20, DK_HASH_BYTES);
    memcpy(cp->digest, p + 52, DK_VIEW_DIGEST_BYTES);
    cp->count = dk_get_be64(p + 68);
    return 0;
}

static int cp_put(dk_views *vw, MDB_txn *txn, int view, const cpoint *cp)
{
    uint8_t b[CP_BYTES];
    dk_put_be32(b, cp->version);
    dk_put_be64(b + 4, cp->gen);
    dk_put_be64(b + 12, cp->seq);
    memcpy(b + 20, cp->hash, DK_HASH_BYTES);
    memcpy(b + 52, cp->digest, DK_VIEW_DIGEST_BYTES);
    dk_put_be64(b + 68, cp->count);
    return put_str(txn, vw->checkpoints, dk_view_name(view), b, sizeof b);
}

/* Public status needs checkpoints too. */
int dk__cp_read(dk_views *vw, MDB_txn *txn, int view, uint32_t *version, uint64_t *gen,
                uint64_t *seq, uint64_t *count, uint8_t digest[DK_VIEW_DIGEST_BYTES],
                uint8_t hash[DK_HASH_BYTES])
{
    cpoint cp;
    int rc = cp_get(vw, txn, view, &cp);
    if (rc)
        return rc == CP_MALFORMED ? DK__CP_MALFORMED : rc;
    *version = cp.version;
    *gen = cp.gen;
    *seq = cp.seq;
    *count = cp.count;
    memcpy(digest, cp.digest, DK_VIEW_DIGEST_BYTES);
    if (hash)
        memcpy(hash, cp.hash, DK_HASH_BYTES);
    return 0;
}

int dk__live_load(dk_views *vw, MDB_txn *txn, vset *vs, unsigned *stale)
{
    memset(vs, 0, sizeof *vs);
    cpoint cp;
    for (int v = 0; v < NV; v++) {
        int rc = cp_get(vw, txn, v, &cp);
        if (rc == MDB_NOTFOUND || rc == CP_MALFORMED)
            continue;
        if (rc)
            return dk__mdb_fail(rc, "cannot read a checkpoint");
        if (cp.version != code_version(v))
            continue;
        if (v == DK_VIEW_CASES) {
            vs->seq = cp.seq;
            memcpy(vs->hash, cp.hash, DK_HASH_BYTES);
        } else if (!(vs->mask & BIT(DK_VIEW_CASES)) || cp.seq != vs->seq ||
                   memcmp(cp.hash, vs->hash, DK_HASH_BYTES) != 0) {
            continue;
        }
        rc = dk__db_open(txn, v, cp.gen, 0, &vs->dbi[v]);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            return dk__mdb_fail(rc, "cannot open a view");
        vs->mask |= BIT(v);
        vs->version[v] = cp.version;
        vs->gen[v] = cp.gen;
        vs->count[v] = cp.count;
        memcpy(vs->digest[v], cp.digest, DK_VIEW_DIGEST_BYTES);
    }
    if (!(vs->mask & BIT(DK_VIEW_CASES)))
        vs->mask = 0; /* without the case states no view can advance */
    *stale = ALL_VIEWS & ~vs->mask;
    return 0;
}

int dk__live_save(dk_views *vw, MDB_txn *txn, const vset *vs)
{
    for (int v = 0; v < NV; v++) {
        if (!(vs->mask & BIT(v)))
            continue;
        cpoint cp = {vs->version[v], vs->gen[v], vs->seq, vs->count[v], {0}, {0}};
        memcpy(cp.hash, vs->hash, DK_HASH_BYTES);
        memcpy(cp.digest, vs->digest[v], DK_VIEW_DIGEST_BYTES);
        int rc = cp_put(vw, txn, v, &cp);
        if (rc)
            return dk__mdb_fail(rc, "cannot write a checkpoint");
    }
    return 0;
}

/* ---- processes: who owns a build ---- */

/* This process's time namespace's boot-time offset, in clock ticks (0 outside one): 1 if
 * known. A process's start time in /proc is shown shifted by the offset of the process
 * that reads it, so two processes in different namespaces agree only once each takes its
 * own off. /proc/self/timens_offsets gives the namespace of the process's children, which
 * is its own unless it has called unshare(CLONE_NEWTIME) since: then it is unknown. */
static int read_offset(long hz, int64_t *out)
{
    struct stat own, children;
    int same = stat("/proc/self/ns/time", &own) == 0 &&
               stat("/proc/self/ns/time_for_children", &children) == 0 &&
               own.st_ino == children.st_ino && own.st_dev == children.st_dev;
    FILE *f = fopen("/proc/self/timens_offsets", "r");
    char line[128];
    *out = 0;
    while (f && fgets(line, sizeof line, f)) {
        long long sec, nsec;
        if (sscanf(line, "boottime %lld %lld", &sec, &nsec) == 2)
            *out = (int64_t)((long double)sec * hz + (long double)nsec * hz / 1e9);
    }
    if (f)
        fclose(f);
    return f ? same : errno == ENOENT; /* no time namespaces in this kernel: 0 */
}

/* Process pid's /proc/PID/stat into buf: "pid (comm) state ppid ...". comm may hold spaces
 * and parentheses, so the fields are counted from the last ')': returned, NULL if none. */
static const char *read_stat(uint64_t pid, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%llu/stat", (unsigned long long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return strrchr(buf, ')');
}

/* Process pid's start time as /proc shows it to this process, with `off` taken off; 0 if
 * it cannot be read. */
static uint64_t read_start(uint64_t pid, long hz, int64_t off)
{
    char buf[1024];
    /* starttime is field 22, the 20th after the ')' */
    const char *p = read_stat(pid, buf, sizeof buf);
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    uint64_t t = p ? strtoull(p + 1, NULL, 10) : 0;
    if (t == 0)
        return 0;
    /* the kernel adds the offset in nanoseconds, unsigned: a negative one larger than the
     * start wraps, to about 2^64 ns in ticks */
    uint64_t wrap = UINT64_MAX / (uint64_t)(1000000000 / hz);
    if (t > wrap / 2)
        t -= wrap;
    t -= (uint64_t)off;
    return t ? t : 1;
}

/* This process's clock tick, offset and start time, read once per pid (again after a
 * fork), and only once all are known: a process must know its own builds even when it
 * cannot open a file any more, and a failure to read may pass. 1 if known. */
static struct {
    pthread_mutex_t mu;
    uint64_t pid, start;
    int64_t off;
    long hz;
} self = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

static int self_known(long *hz, int64_t *off, uint64_t *start)
{
    uint64_t pid = (uint64_t)getpid();
    pthread_mutex_lock(&self.mu);
    int known = self.pid == pid;
    *hz = self.hz;
    *off = self.off;
    *start = self.start;
    pthread_mutex_unlock(&self.mu);
    if (known)
        return 1;
    *hz = sysconf(_SC_CLK_TCK);
    if (*hz <= 0 || *hz > 1000000000 || !read_offset(*hz, off) ||
        (*start = read_start(pid, *hz, *off)) == 0)
        return 0;
    pthread_mutex_lock(&self.mu);
    self.pid = pid;
    self.hz = *hz;
    self.off = *off;
    self.start = *start;
    pthread_mutex_unlock(&self.mu);
    return 1;
}

uint64_t dk__proc_start(uint64_t pid)
{
    long hz;
    int64_t off;
    uint64_t mine;
    if (!self_known(&hz, &off, &mine))
        return 0;
    return pid == (uint64_t)getpid() ? mine : read_start(pid, hz, off);
}

/* Process pid's state letter in /proc/PID/stat (R, S, D, T, t, Z, X...); 0 if not known. */
static char proc_state(uint64_t pid)
{
    char buf[1024];
    const char *p = read_stat(pid, buf, sizeof buf); /* the state follows the ')' */
    return p && p[1] == ' ' ? p[2] : 0;
}

int dk__proc_stopped(uint64_t pid)
{
    char s = proc_state(pid);
    return s == 'T' || s == 't';
}

/* This process's start time; 0 if not known (this time). */
static uint64_t own_start(void)
{
    return dk__proc_start((uint64_t)getpid());
}

/* Do two start times (dk__proc_start) name the same process start? Each was rounded down
 * to a tick after its reader's offset was added, so they may differ by one. */
static int same_start(uint64_t a, uint64_t b)
{
    return a == b || a + 1 == b || b + 1 == a;
}

/* ---- builds (rebuilds and checks) ---- */

static void build_key(uint8_t k[14], uint64_t gen)
{
    memcpy(k, "build:", 6);
    dk_put_be64(k + 6, gen);
}

int dk__build_load(dk_views *vw, MDB_txn *txn, uint64_t gen, vset *vs, uint64_t *pid,
                   unsigned *flags)
{
    uint8_t kb[14];
    build_key(kb, gen);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(txn, vw->meta, &k, &v);
    if (rc)
        return rc;
    if (v.mv_size != BUILD_BYTES && v.mv_size != BUILD_OLD_BYTES)
        return MDB_CORRUPTED;
    const uint8_t *p = v.mv_data;
    memset(vs, 0, sizeof *vs);
    vs->build = 1;
    vs->bgen = gen;
    *pid = dk_get_be64(p);
    vs->mask = dk_get_be32(p + 8);
    *flags = dk_get_be32(p + 12);
    vs->seq = dk_get_be64(p + 16);
    memcpy(vs->hash, p + 24, DK_HASH_BYTES);
    for (int i = 0; i < NV; i++) {
        memcpy(vs->digest[i], p + 56 + i * 24, DK_VIEW_DIGEST_BYTES);
        vs->count[i] = dk_get_be64(p + 56 + i * 24 + 16);
        if (!(vs->mask & BIT(i)))
            continue;
        vs->gen[i] = gen;
        vs->version[i] = code_version(i);
        if ((rc = dk__db_open(txn, i, gen, 0, &vs->dbi[i])) != 0)
            return rc;
    }
    return 0;
}

int dk__build_save(dk_views *vw, MDB_txn *txn, const vset *vs, unsigned flags)
{
    uint8_t kb[14], b[BUILD_BYTES];
    build_key(kb, vs->bgen);
    memset(b, 0, sizeof b);
    dk_put_be64(b, (uint64_t)getpid());
    dk_put_be64(b + BUILD_START, own_start());
    for (int i = 0; i < NV; i++)
        dk_put_be32(b + BUILD_VERSIONS + 4 * i, code_version(i));
    dk_put_be32(b + 8, vs->mask);
    dk_put_be32(b + 12, flags);
    dk_put_be64(b + 16, vs->seq);
    memcpy(b + 24, vs->hash, DK_HASH_BYTES);
    for (int i = 0; i < NV; i++) {
        memcpy(b + 56 + i * 24, vs->digest[i], DK_VIEW_DIGEST_BYTES);
        dk_put_be64(b + 56 + i * 24 + 16, vs->count[i]);
    }
    MDB_val k = {sizeof kb, kb}, v = {sizeof b, b};
    int rc = mdb_put(txn, vw->meta, &k, &v, 0);
    return rc ? dk__mdb_fail(rc, "cannot record the rebuild") : 0;
}

int dk__build_start(dk_views *vw, MDB_txn *txn, unsigned mask, int check, uint64_t *gen)
{
    MDB_val k = {8, (void *)"next_gen"}, v;
    uint8_t g[8];
    uint64_t next = 1;
    int rc = mdb_get(txn, vw->meta, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        next = dk_get_be64(v.mv_data);
    else if (rc && rc != MDB_NOTFOUND)
        return dk__mdb_fail(rc, "cannot read the generation counter");
    /* never a live view's generation, whatever the counter says: its database would be
     * emptied below (helper-71 set the counter back, and a rebuild emptied live stats) */
    for (int i = 0; i < NV; i++) {
        uint32_t version;
        uint64_t cgen, seq, count;
        uint8_t dg[DK_VIEW_DIGEST_BYTES];
        int r = dk__cp_read(vw, txn, i, &version, &cgen, &seq, &count, dg, NULL);
        if (r == 0 && cgen >= next)
            next = cgen + 1;
        else if (r && r != MDB_NOTFOUND && r != DK__CP_MALFORMED)
            return dk__mdb_fail(r, "cannot read a checkpoint");
    }
    dk_put_be64(g, next + 1);
    v.mv_size = 8;
    v.mv_data = g;
    if ((rc = mdb_put(txn, vw->meta, &k, &v, 0)) != 0)
        return dk__mdb_fail(rc, "cannot write the generation counter");
    vset vs;
    memset(&vs, 0, sizeof vs);
    vs.build = 1;
    vs.bgen = next;
    vs.mask = mask;
    for (int i = 0; i < NV; i++) {
        if (!(mask & BIT(i)))
            continue;
        MDB_dbi dbi;
        if ((rc = dk__db_open(txn, i, next, 1, &dbi)) != 0)
            return dk__mdb_fail(rc, "cannot create a view database");
        /* a database of this name left over from an aborted past must start empty */
        if ((rc = mdb_drop(txn, dbi, 0)) != 0)
            return dk__mdb_fail(rc, "cannot empty a view database");
    }
    *gen = next;
    return dk__build_save(vw, txn, &vs, check ? BUILD_CHECK : 0);
}

/* Does the process that recorded a build still run? Its pid alone is not enough: pids are
 * reused, and a build whose owner died would then look owned for as long as the
 * stranger runs. The owner's start time must match too (when both are known). */
static int owner_alive(uint64_t pid, uint64_t start)
{
    if (pid == 0 || pid > (uint64_t)INT32_MAX)
        return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return 0;
    /* a zombie (dead, its parent has not waited for it yet) answers kill and keeps its
     * start time, but holds nothing and never goes on */
    char state = proc_state(pid);
    if (state == 'Z' || state == 'X')
        return 0;
    uint64_t now = start ? dk__proc_start(pid) : 0;
    return start == 0 || now == 0 || same_start(now, start);
}

/* The start time a build record holds (0: unknown, a record from before it was kept). */
static uint64_t record_start(const MDB_val *v)
{
    return v->mv_size == BUILD_BYTES ? dk_get_be64((const uint8_t *)v->mv_data + BUILD_START) : 0;
}

/* Was the build's work done by this code, view for view? Only then can it be carried on:
 * a rebuild left by a docket of another version would mix two formats in one view. */
static int record_versions_ok(const MDB_val *v, unsigned mask)
{
    if (v->mv_size != BUILD_BYTES)
        return 0;
    for (int i = 0; i < NV; i++)
        if ((mask & BIT(i)) &&
            dk_get_be32((const uint8_t *)v->mv_data + BUILD_VERSIONS + 4 * i) != code_version(i))
            return 0;
    return 1;
}

int dk__build_drop(dk_views *vw, MDB_txn *txn, uint64_t gen, unsigned mask)
{
    for (int i = 0; i < NV; i++) {
        if (!(mask & BIT(i)))
            continue;
        MDB_dbi dbi;
        int rc = dk__db_open(txn, i, gen, 0, &dbi);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc == 0)
            rc = mdb_drop(txn, dbi, 1);
        if (rc)
            return dk__mdb_fail(rc, "cannot drop a rebuild's database");
    }
    uint8_t kb[14];
    build_key(kb, gen);
    MDB_val k = {sizeof kb, kb};
    int rc = mdb_del(txn, vw->meta, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return dk__mdb_fail(rc, "cannot delete a rebuild's record");
    return 0;
}

/* A build's record (left in *v), owner and flags: 0, MDB_NOTFOUND (no such build), or an
 * error. */
static int build_owner(dk_views *vw, MDB_txn *txn, uint64_t gen, MDB_val *v, uint64_t *pid,
                       unsigned *flags)
{
    uint8_t kb[14];
    build_key(kb, gen);
    MDB_val k = {sizeof kb, kb};
    *pid = 0;
    *flags = 0;
    int rc = mdb_get(txn, vw->meta, &k, v);
    if (rc == 0 && v->mv_size != BUILD_BYTES && v->mv_size != BUILD_OLD_BYTES)
        rc = MDB_CORRUPTED;
    if (rc == 0) {
        *pid = dk_get_be64(v->mv_data);
        *flags = dk_get_be32((const uint8_t *)v->mv_data + 12);
    }
    if (rc && rc != MDB_NOTFOUND)
        return dk__mdb_fail(rc, "cannot read a rebuild's record");
    return rc;
}

/* Is this process the build's owner? The pid alone could be another's, reused. */
static int own_record(uint64_t pid, const MDB_val *v)
{
    uint64_t start = record_start(v);
    uint64_t mine = own_start();
    return pid == (uint64_t)getpid() && (start == 0 || mine == 0 || same_start(start, mine));
}

int dk__build_drop_own(dk_views *vw, MDB_txn *txn, uint64_t gen, unsigned mask)
{
    uint64_t pid;
    unsigned flags;
    MDB_val v;
    int rc = build_owner(vw, txn, gen, &v, &pid, &flags);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : rc;
    if (!own_record(pid, &v) && owner_alive(pid, record_start(&v)))
        return 0; /* another process took it over meanwhile */
    return dk__build_drop(vw, txn, gen, mask);
}

int dk__build_release(dk_views *vw, MDB_txn *txn, uint64_t gen, unsigned mask)
{
    uint64_t pid;
    unsigned flags;
    MDB_val v;
    int rc = build_owner(vw, txn, gen, &v, &pid, &flags);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : rc;
    if (!own_record(pid, &v))
        return 0; /* not ours (any more) */
    if (flags & (BUILD_CHECK | BUILD_BULK))
        return dk__build_drop(vw, txn, gen, mask); /* not resumable */
    uint8_t kb[14], b[BUILD_BYTES];
    memset(b, 0, sizeof b);
    memcpy(b, v.mv_data, v.mv_size);
    dk_put_be64(b, 0); /* no process: the next sweep anywhere adopts it */
    dk_put_be64(b + BUILD_START, 0);
    build_key(kb, gen);
    MDB_val k = {sizeof kb, kb}, nv = {sizeof b, b};
    rc = mdb_put(txn, vw->meta, &k, &nv, 0);
    return rc ? dk__mdb_fail(rc, "cannot release a rebuild") : 0;
}

int dk__builds_running(dk_views *vw, MDB_txn *txn, unsigned *mask, uint64_t pids[DK_VIEW_COUNT])
{
    MDB_cursor *cur;
    uint8_t kb[14];
    build_key(kb, 0);
    *mask = 0;
    int rc = mdb_cursor_open(txn, vw->meta, &cur);
    if (rc)
        return dk__mdb_fail(rc, "cannot list rebuilds");
    MDB_val k = {6, kb}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 14 || memcmp(k.mv_data, "build:", 6) != 0)
            break;
        if (v.mv_size != BUILD_BYTES && v.mv_size != BUILD_OLD_BYTES)
            continue;
        uint64_t pid = dk_get_be64(v.mv_data);
        unsigned flags = dk_get_be32((const uint8_t *)v.mv_data + 12);
        unsigned views = dk_get_be32((const uint8_t *)v.mv_data + 8);
        if (flags & BUILD_CHECK || !(own_record(pid, &v) || owner_alive(pid, record_start(&v))))
            continue;
        *mask |= views;
        for (int i = 0; pids && i < DK_VIEW_COUNT; i++)
            if (views >> i & 1)
                pids[i] = pid;
    }
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? dk__mdb_fail(rc, "cannot list rebuilds") : 0;
}

int dk__builds_sweep(dk_views *vw, MDB_txn *txn, const dk_head *head, unsigned *others)
{
    MDB_cursor *cur;
    uint8_t kb[14];
    *others = 0;
    build_key(kb, 0);
    int rc = mdb_cursor_open(txn, vw->meta, &cur);
    if (rc)
        return dk__mdb_fail(rc, "cannot open a cursor");
    uint64_t dead[64];
    unsigned dead_mask[64];
    int dead_check[64];
    size_t ndead = 0;
    MDB_val k = {6, kb}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 14 || memcmp(k.mv_data, "build:", 6) != 0)
            break;
        uint64_t gen = dk_get_be64((const uint8_t *)k.mv_data + 6);
        int bad = v.mv_size != BUILD_BYTES && v.mv_size != BUILD_OLD_BYTES;
        uint64_t pid = bad ? 0 : dk_get_be64(v.mv_data);
        unsigned mask = bad ? ALL_VIEWS : dk_get_be32((const uint8_t *)v.mv_data + 8);
        unsigned flags = bad ? BUILD_CHECK : dk_get_be32((const uint8_t *)v.mv_data + 12);
        /* not resumable: a check, a first phase, or the work of another version's code */
        int check = (flags & (BUILD_CHECK | BUILD_BULK)) != 0 || !record_versions_ok(&v, mask);
        int mine = vw->run.active && vw->run.gen == gen;
        int alive = own_record(pid, &v) ? mine : owner_alive(pid, record_start(&v));
        if (!alive) {
            if (ndead < 64) {
                dead[ndead] = gen;
                dead_mask[ndead] = mask;
                dead_check[ndead++] = check;
            }
        } else if (!mine && !(flags & BUILD_CHECK)) {
            *others |= mask;
        }
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return dk__mdb_fail(rc, "cannot list rebuilds");
    for (size_t i = 0; i < ndead; i++) {
        if ((vw->upto || vw->run.active) && !dead_check[i])
            continue; /* capped or busy: a resumable rebuild is left to be taken over */
        if (!vw->run.active && !dead_check[i]) {
            /* a rebuild whose process died: carry on from its last batch */
            vset vs;
            uint64_t pid;
            unsigned flags;
            int r = dk__build_load(vw, txn, dead[i], &vs, &pid, &flags);
            /* only one built from this ledger's records: a rebuild left from before the
             * ledger was replaced or restored is of no use, and is dropped below */
            int ours = r == 0 ? dk__views_match(vw, head, vs.seq, vs.hash) : 0;
            if (r == 0 && ours != 0 && ours != DK_ECORRUPT)
                return ours;
            if (r == 0 && ours == 0 && dk__build_save(vw, txn, &vs, 0) == 0) {
                /* ours once this transaction commits (finish() undoes it if not) */
                vw->run = (build_run){1, 0, dead[i], dead_mask[i], 0};
                vw->adopting = 1;
                dk__cache_clear(&vw->build_cache);
                continue;
            }
        }
        if ((rc = dk__build_drop(vw, txn, dead[i], dead_mask[i])) != 0)
            return rc;
    }
    return 0;
}

int dk__build_swap(dk_views *vw, MDB_txn *txn, vset *live, const vset *b)
{
    for (int i = 0; i < NV; i++) {
        if (!(b->mask & BIT(i)))
            continue;
        cpoint old;
        int rc = cp_get(vw, txn, i, &old);
        if (rc == 0 && old.gen != b->bgen) {
            MDB_dbi dbi;
            rc = dk__db_open(txn, i, old.gen, 0, &dbi);
            if (rc == 0)
                rc = mdb_drop(txn, dbi, 1);
            if (rc && rc != MDB_NOTFOUND)
                return dk__mdb_fail(rc, "cannot drop the old view");
        } else if (rc && rc != MDB_NOTFOUND && rc != CP_MALFORMED) {
            return dk__mdb_fail(rc, "cannot read a checkpoint");
        }
        live->mask |= BIT(i);
        live->version[i] = code_version(i);
        live->gen[i] = b->bgen;
        live->dbi[i] = b->dbi[i];
        live->count[i] = b->count[i];
        memcpy(live->digest[i], b->digest[i], DK_VIEW_DIGEST_BYTES);
    }
    live->seq = b->seq;
    memcpy(live->hash, b->hash, DK_HASH_BYTES);
    int rc = dk__live_save(vw, txn, live);
    if (rc)
        return rc;
    uint8_t kb[14];
    build_key(kb, b->bgen);
    MDB_val k = {sizeof kb, kb};
    rc = mdb_del(txn, vw->meta, &k, NULL);
    return rc && rc != MDB_NOTFOUND ? dk__mdb_fail(rc, "cannot delete the rebuild record") : 0;
}

/* ---- digests and the flush ---- */

/* An entry's digest: XXH3's 128-bit hash of klen(2) key val. A view's digest (their XOR)
 * finds a view that differs from the one its ledger gives, after damage or a bug: it
 * guards against accident, not an adversary, who could rewrite the views and their
 * digests alike (views check recomputes them from the signed ledger instead). It was
 * SipHash-2-4 with a public key, which guards no better: the rebuild's instructions
 * outside SHA-256 for this hash fell from 4.3% to 0.9% (200k events, 1,788M -> 1,733M). */
void dk__entry_hash(const void *k, size_t klen, const void *v, size_t vlen,
                    uint8_t out[DK_VIEW_DIGEST_BYTES])
{
    uint8_t buf[KEY_MAX + 4096 + 2];
    if (klen > KEY_MAX || vlen > 4096) {
        memset(out, 0xee, DK_VIEW_DIGEST_BYTES);
        return;
    }
    buf[0] = (uint8_t)(klen >> 8);
    buf[1] = (uint8_t)klen;
    memcpy(buf + 2, k, klen);
    memcpy(buf + 2 + klen, v, vlen);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(buf, 2 + klen + vlen));
    _Static_assert(sizeof c.digest == DK_VIEW_DIGEST_BYTES, "a digest is 16 bytes");
    memcpy(out, c.digest, DK_VIEW_DIGEST_BYTES);
}

void dk__digest_xor(uint8_t d[DK_VIEW_DIGEST_BYTES], const uint8_t h[DK_VIEW_DIGEST_BYTES])
{
    for (int i = 0; i < DK_VIEW_DIGEST_BYTES; i++)
        d[i] ^= h[i];
}

static int cmp_entry(const void *a, const void *b)
{
    const ov_entry *x = *(const ov_entry *const *)a, *y = *(const ov_entry *const *)b;
    if (x->view != y->view)
        return x->view < y->view ? -1 : 1;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* ---- a flush's order: (view, key), LMDB's ----
 * By view, then radix-sorted on eight key bytes at a time, starting after the prefix all
 * of that view's keys share (a caseworker's name in `queue`, a year in `diary`); entries
 * that tie on their eight bytes are sorted on the next eight, and small groups compared
 * whole. A comparison sort chased two pointers into the arena and ran memcmp over the
 * shared prefix at each of its n log n steps (1M rebuild, perf share of all CPU: memcmp,
 * compare and merge sort 7.1% -> 4.1% with this, LMDB's own key compares included). */

#define RADIX_MIN 64 /* groups smaller than this are compared whole */

static uint64_t key_word(const ov_entry *e, size_t off)
{
    uint8_t b[8] = {0};
    if (off < e->klen)
        memcpy(b, e->key + off, e->klen - off < 8 ? e->klen - off : 8);
    return dk_get_be64(b);
}

/* Sort items by pfx: LSD radix, a byte a pass, skipping the bytes every item shares. */
static void radix_pfx(flush_item *a, flush_item *tmp, size_t n)
{
    for (unsigned shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((a[i].pfx >> shift) & 0xff) + 1]++;
        int uniform = 0;
        for (int d = 1; d <= 256; d++)
            uniform |= count[d] == n;
        if (uniform)
            continue;
        for (int d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i].pfx >> shift) & 0xff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

static int cmp_item_key(const void *a, const void *b)
{
    return cmp_entry(&((const flush_item *)a)->e, &((const flush_item *)b)->e);
}

/* Sort n items of one view whose keys agree (0-padded) on their first `off` bytes. */
static void sort_items(flush_item *a, flush_item *tmp, size_t n, size_t off)
{
    if (n < RADIX_MIN) {
        qsort(a, n, sizeof *a, cmp_item_key);
        return;
    }
    int longer = 0, same = 1; /* does any key go on past this level's eight bytes? */
    for (size_t i = 0; i < n; i++) {
        a[i].pfx = key_word(a[i].e, off);
        longer |= a[i].e->klen > off + 8;
        same &= a[i].pfx == a[0].pfx;
    }
    if (same && longer) {
        /* one run: skip the whole prefix the group shares, not eight bytes a level (each
         * level reads every key again through its pointer) */
        const ov_entry *f = a[0].e;
        size_t l = f->klen;
        for (size_t i = 1; i < n && l > off + 8; i++) {
            const ov_entry *e = a[i].e;
            size_t m = l < e->klen ? l : e->klen, k = off;
            while (k < m && e->key[k] == f->key[k])
                k++;
            l = k;
        }
        sort_items(a, tmp, n, l > off + 8 ? l : off + 8);
        return;
    }
    radix_pfx(a, tmp, n);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && a[j].pfx == a[i].pfx; j++)
            ;
        if (j - i < 2)
            continue;
        if (longer)
            sort_items(a + i, tmp, j - i, off + 8);
        else /* the keys end here: only their lengths differ */
            qsort(a + i, j - i, sizeof *a, cmp_item_key);
    }
}

/* The overlay's entries in (view, key) order: malloc'd, *n of them. */
int dk__flush_order(const overlay *ov, flush_item **out, size_t *n)
{
    flush_item *a = malloc(ov->n * sizeof *a), *tmp = malloc(ov->n * sizeof *tmp);
    if (a == NULL || tmp == NULL) {
        free(a);
        free(tmp);
        return dk_fail(DK_ENOMEM, "out of memory flushing a batch");
    }
    size_t start[NV + 1] = {0}, lcp[NV] = {0};
    const ov_entry *first[NV] = {0};
    for (size_t i = 0; i < ov->cap; i++) {
        const ov_entry *e = &ov->tab[i];
        if (!e->used)
            continue;
        if (e->view >= NV) {
            free(a);
            free(tmp);
            return dk_fail(DK_EINVAL, "views: a batch holds an entry of no view (%u)", e->view);
        }
        start[e->view + 1]++;
        if (first[e->view] == NULL) {
            first[e->view] = e;
            lcp[e->view] = e->klen;
        }
        size_t l = 0, m = lcp[e->view] < e->klen ? lcp[e->view] : e->klen;
        while (l < m && e->key[l] == first[e->view]->key[l])
            l++;
        lcp[e->view] = l;
    }
    for (int v = 0; v < NV; v++)
        start[v + 1] += start[v];
    size_t at[NV];
    memcpy(at, start, sizeof at);
    for (size_t i = 0; i < ov->cap; i++)
        if (ov->tab[i].used)
            a[at[ov->tab[i].view]++].e = &ov->tab[i];
    for (int v = 0; v < NV; v++)
        sort_items(a + start[v], tmp, start[v + 1] - start[v], lcp[v]);
    free(tmp);
    *out = a;
    *n = start[NV];
    return 0;
}

/* Replace or delete a key that holds `old` (have: it exists), keeping the digest and
 * count; nothing if the value is the same. Through `cur` if not NULL: it is then on the
 * key when `have`. */
static int change_entry(MDB_txn *txn, MDB_cursor *cur, vset *vs, int view, MDB_val *k, int have,
                        const MDB_val *old, const void *nv, size_t nvlen, int del)
{
    uint8_t h[DK_VIEW_DIGEST_BYTES];
    MDB_dbi dbi = vs->dbi[view];
    if (del && !have)
        return 0;
    if (!del && have && old->mv_size == nvlen && memcmp(old->mv_data, nv, nvlen) == 0)
        return 0;
    if (have) {
        dk__entry_hash(k->mv_data, k->mv_size, old->mv_data, old->mv_size, h);
        dk__digest_xor(vs->digest[view], h);
        vs->count[view]--;
    }
    int rc;
    if (del) {
        rc = cur ? mdb_cursor_del(cur, 0) : mdb_del(txn, dbi, k, NULL);
    } else {
        MDB_val val = {nvlen, (void *)nv};
        dk__entry_hash(k->mv_data, k->mv_size, nv, nvlen, h);
        dk__digest_xor(vs->digest[view], h);
        vs->count[view]++;
        rc = cur ? mdb_cursor_put(cur, k, &val, 0) : mdb_put(txn, dbi, k, &val, 0);
    }
    return rc ? dk__mdb_fail(rc, "cannot write a view entry") : 0;
}

int dk__view_put(MDB_txn *txn, MDB_cursor *cur, vset *vs, int view, const void *key, size_t klen,
                 const void *v, size_t vlen, const uint8_t *hash)
{
    /* Most puts add a key (all of them in a rebuild): try to add it, and LMDB hands back
     * the value already there if there is one. One B-tree descent for a new key instead
     * of a lookup and then a put (none, through a cursor already on the key's page). */
    MDB_val k = {klen, (void *)key}, old = {vlen, (void *)v};
    int rc = cur ? mdb_cursor_put(cur, &k, &old, MDB_NOOVERWRITE)
                 : mdb_put(txn, vs->dbi[view], &k, &old, MDB_NOOVERWRITE);
    if (rc == 0) {
        uint8_t h[DK_VIEW_DIGEST_BYTES];
        if (hash == NULL)
            dk__entry_hash(key, klen, v, vlen, h);
        dk__digest_xor(vs->digest[view], hash ? hash : h);
        vs->count[view]++;
        return 0;
    }
    if (rc != MDB_KEYEXIST)
        return dk__mdb_fail(rc, "cannot write a view entry");
    return change_entry(txn, cur, vs, view, &k, 1, &old, v, vlen, 0);
}

int dk__flush(dk_views *vw, MDB_txn *txn, vset *vs, overlay *ov)
{
    (void)vw;
    if (ov->n == 0)
        return 0;
    flush_item *order = NULL;
    size_t n = 0;
    int rc = dk__flush_order(ov, &order, &n);
    if (rc == 0)
        rc = dk__flush_items(txn, vs, order, n);
    free(order);
    return rc;
}

int dk__flush_items(MDB_txn *txn, vset *vs, const flush_item *order, size_t n)
{
    int rc = 0;
    /* in key order through one cursor per view: a cursor left on a leaf page finds the
     * next key there without a search from the root */
    MDB_cursor *cur[NV] = {0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        ov_entry *e = order[i].e;
        if (!(vs->mask & BIT(e->view)))
            continue;
        MDB_cursor **c = &cur[e->view];
        if (*c == NULL && (rc = mdb_cursor_open(txn, vs->dbi[e->view], c)) != 0) {
            rc = dk__mdb_fail(rc, "cannot open a cursor");
            break;
        }
        if (e->kind == OV_PUT) {
            rc = dk__view_put(txn, *c, vs, e->view, e->key, e->klen, e->val, e->vlen, NULL);
            continue;
        }
        MDB_val k = {e->klen, e->key}, at = k, old; /* MDB_SET_KEY points `at` into the page */
        int have = mdb_cursor_get(*c, &at, &old, MDB_SET_KEY);
        if (have && have != MDB_NOTFOUND) {
            rc = dk__mdb_fail(have, "cannot read a view entry");
            break;
        }
        have = have == 0;
        uint8_t cbuf[8];
        if (e->kind == OV_COUNT) {
            uint64_t c0 = have && old.mv_size == 8 ? dk_get_be64(old.mv_data) : 0;
            uint64_t cnt = c0 + (uint64_t)e->delta;
            if ((int64_t)cnt < 0)
                cnt = 0; /* a damaged counter; check will name it */
            dk_put_be64(cbuf, cnt);
            rc = change_entry(txn, *c, vs, e->view, &k, have, &old, cbuf, 8, cnt == 0);
        } else {
            rc = change_entry(txn, *c, vs, e->view, &k, have, &old, NULL, 0, 1);
        }
    }
    for (int v = 0; v < NV; v++)
        if (cur[v])
            mdb_cursor_close(cur[v]);
    return rc;
}
