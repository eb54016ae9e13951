/* layout.c - raw LMDB, no docket code: the writer's puts per append in the ledger's
 * layout before (by_case + case_state) and now (one cases database), and one put alone.
 * Usage: bench_layout [--events N] [--batch B] [--cases C] [--round-robin]
 * Prints `name value unit` lines: commit p50 at one append per commit (the c1 floor),
 * then batches of B appends over C cases: events/s and bytes written per event. */
#include <lmdb.h>
#include <stdint.h>
#include <sys/stat.h>

#include "benchlib.h"
#include "harness.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_) {                                                                                 \
            fprintf(stderr, "%s: %s\n", #x, mdb_strerror(rc_));                                    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

enum { ONE_PUT, OLD_LAYOUT, CASES_DB };
static const char *const layout_name[] = {"one_put", "old", "cases"};

typedef struct env {
    MDB_env *env;
    MDB_dbi log, tree, cmd, by_case, case_state, cases, meta;
} env;

static void be64(uint8_t *k, uint64_t v)
{
    for (int b = 0; b < 8; b++)
        k[b] = (uint8_t)(v >> (56 - 8 * b));
}

static void env_open(env *e, const char *dir)
{
    MDB_txn *t;
    mkdir(dir, 0700);
    CHECK(mdb_env_create(&e->env));
    mdb_env_set_maxdbs(e->env, 16);
    mdb_env_set_mapsize(e->env, (size_t)16 << 30);
    CHECK(mdb_env_open(e->env, dir, 0, 0600));
    CHECK(mdb_txn_begin(e->env, NULL, 0, &t));
    CHECK(mdb_dbi_open(t, "log", MDB_CREATE, &e->log));
    CHECK(mdb_dbi_open(t, "tree", MDB_CREATE, &e->tree));
    CHECK(mdb_dbi_open(t, "cmd", MDB_CREATE, &e->cmd));
    CHECK(mdb_dbi_open(t, "by_case", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &e->by_case));
    CHECK(mdb_dbi_open(t, "case_state", MDB_CREATE, &e->case_state));
    CHECK(mdb_dbi_open(t, "cases", MDB_CREATE, &e->cases));
    CHECK(mdb_dbi_open(t, "meta", MDB_CREATE, &e->meta));
    CHECK(mdb_txn_commit(t));
}

/* One append's puts: the ~450-byte record, its Merkle nodes, its command id, the case's
 * index entry and ~116-byte state row, the head. */
static void append(env *e, MDB_txn *t, int layout, uint64_t seq, unsigned case_no)
{
    static uint8_t rec[450], row[116], hash[48];
    uint8_t k8[8], key[64];
    be64(k8, seq);
    MDB_val k = {8, k8}, v = {sizeof rec, rec};
    CHECK(mdb_put(t, e->log, &k, &v, MDB_APPEND));
    if (layout == ONE_PUT)
        return;
    for (unsigned l = 0; l <= (unsigned)__builtin_ctzll(seq); l++) {
        be64(key, seq);
        key[8] = (uint8_t)l;
        MDB_val nk = {9, key}, nv = {32, hash};
        CHECK(mdb_put(t, e->tree, &nk, &nv, MDB_APPEND));
    }
    be64(key, seq); /* time-ordered command id */
    be64(key + 8, seq * 2654435761u);
    MDB_val ck = {16, key}, cv = {8, k8};
    CHECK(mdb_put(t, e->cmd, &ck, &cv, MDB_NOOVERWRITE));
    int n = snprintf((char *)key, 32, "C-%07u", case_no);
    MDB_val id = {(size_t)n, key}, sv = {sizeof row, row}, empty = {0, key};
    if (layout == OLD_LAYOUT) {
        CHECK(mdb_put(t, e->by_case, &id, &k, 0));
        CHECK(mdb_put(t, e->case_state, &id, &sv, 0));
    } else {
        key[n] = 0;
        be64(key + n + 1, seq);
        MDB_val ik = {(size_t)n + 9, key};
        CHECK(mdb_put(t, e->cases, &ik, &empty, 0));
        be64(key + n + 1, UINT64_MAX);
        CHECK(mdb_put(t, e->cases, &ik, &sv, 0));
    }
    MDB_val hk = {4, (void *)"head"}, hv = {48, hash};
    CHECK(mdb_put(t, e->meta, &hk, &hv, 0));
}

int main(int argc, char **argv)
{
    size_t events = 300000, batch = 114, cases = 200000;
    int round_robin = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            events = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cases") == 0 && i + 1 < argc)
            cases = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--round-robin") == 0)
            round_robin = 1;
        else {
            fprintf(stderr, "usage: bench_layout [--events N] [--batch B] [--cases C] "
                            "[--round-robin]\n");
            return 2;
        }
    }
    if (batch == 0 || cases == 0)
        return 2;
    const char *base = th_tmpdir();
    atexit(th_cleanup);
    printf("# raw LMDB in %s: %zu events, batches of %zu, %zu cases%s\n", base, events, batch,
           cases, round_robin ? " round-robin" : " at random");
    for (int layout = ONE_PUT; layout <= CASES_DB; layout++) {
        char dir[600];
        env e;
        snprintf(dir, sizeof dir, "%s/%s", base, layout_name[layout]);
        env_open(&e, dir);
        uint64_t seq = 0, rng = 88172645463325252ull;
        /* one append per commit, after 1,000 to warm the trees */
        enum { WARM = 1000, SINGLES = 2000 };
        double lat[SINGLES];
        for (int i = 0; i < WARM + SINGLES; i++) {
            MDB_txn *t;
            double s = now_s();
            CHECK(mdb_txn_begin(e.env, NULL, 0, &t));
            th_xorshift(&rng);
            append(&e, t, layout, ++seq, (unsigned)(rng % 1000));
            CHECK(mdb_txn_commit(t));
            if (i >= WARM)
                lat[i - WARM] = (now_s() - s) * 1e6;
        }
        char name[64];
        snprintf(name, sizeof name, "layout_%s_commit_p50_us", layout_name[layout]);
        line(name, pct(lat, SINGLES, 0.5), "us");
        if (layout == ONE_PUT) {
            mdb_env_close(e.env);
            continue;
        }
        double w0 = written_bytes(), t0 = now_s();
        for (size_t done = 0; done < events; done += batch) {
            MDB_txn *t;
            CHECK(mdb_txn_begin(e.env, NULL, 0, &t));
            for (size_t j = 0; j < batch; j++) {
                th_xorshift(&rng);
                seq++;
                append(&e, t, layout, seq, (unsigned)((round_robin ? seq : rng) % cases));
            }
            CHECK(mdb_txn_commit(t));
        }
        double secs = now_s() - t0, bytes = written_bytes() - w0;
        snprintf(name, sizeof name, "layout_%s_batched_eps", layout_name[layout]);
        line(name, (double)events / secs, "events/s");
        snprintf(name, sizeof name, "layout_%s_written_bytes_per_event", layout_name[layout]);
        line(name, bytes / (double)events, "bytes");
        mdb_env_close(e.env);
    }
    return 0;
}
