/* append.c - benchmark of the append path: raw LMDB batched appends and
 * single durable commits, the machine's Ed25519 verify rate on all cores, and
 * docket's durable signed appends with 1, 8 and 64 concurrent clients.
 * Events are notes on 1,000 opened cases, pre-signed by 50 caseworkers.
 * Prints `name value unit` lines. `--quick` keeps it under a minute. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "benchlib.h"
#include "fixture.h"
#include "harness.h"

/* ---- raw LMDB ---- */

static MDB_env *lmdb_open(const char *dir, MDB_dbi *dbi)
{
    MDB_env *env;
    MDB_txn *txn;
    mkdir(dir, 0700);
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)4 << 30);
    if (mdb_env_open(env, dir, 0, 0600) != 0)
        TH_FAIL("cannot open %s", dir);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, dbi);
    mdb_txn_commit(txn);
    return env;
}

static void bench_lmdb(const char *base, size_t n, size_t value_len)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/raw", base);
    MDB_dbi dbi;
    MDB_env *env = lmdb_open(dir, &dbi);
    uint8_t *val = malloc(value_len), key[8];
    memset(val, 0xab, value_len);
    uint64_t seq = 0;
    enum { BATCH = 1000 };
    double t0 = now_s();
    for (size_t done = 0; done < n; done += BATCH) {
        MDB_txn *txn;
        mdb_txn_begin(env, NULL, 0, &txn);
        for (int i = 0; i < BATCH; i++) {
            seq++;
            for (int b = 0; b < 8; b++)
                key[b] = (uint8_t)(seq >> (56 - 8 * b));
            MDB_val k = {8, key}, v = {value_len, val};
            mdb_put(txn, dbi, &k, &v, MDB_APPEND);
        }
        mdb_txn_commit(txn);
    }
    line("lmdb_batched_append_eps", (double)n / (now_s() - t0), "events/s");
    size_t singles = 300;
    double *lat = malloc(singles * sizeof *lat);
    for (size_t i = 0; i < singles; i++) {
        double s = now_s();
        MDB_txn *txn;
        mdb_txn_begin(env, NULL, 0, &txn);
        seq++;
        for (int b = 0; b < 8; b++)
            key[b] = (uint8_t)(seq >> (56 - 8 * b));
        MDB_val k = {8, key}, v = {value_len, val};
        mdb_put(txn, dbi, &k, &v, MDB_APPEND);
        mdb_txn_commit(txn);
        lat[i] = (now_s() - s) * 1e6;
    }
    line("lmdb_single_commit_p50_us", pct(lat, singles, 0.5), "us");
    free(lat);
    free(val);
    mdb_env_close(env);
}

/* ---- Ed25519 verify rate on all cores ---- */

/* ---- docket appends ---- */

typedef struct client_arg {
    dk_ledger *lg;
    fx_event *events;
    atomic_size_t *next;
    size_t n;
    double *lat;
    int failed;
} client_arg;

static void *client(void *p)
{
    client_arg *a = p;
    for (;;) {
        size_t i = atomic_fetch_add(a->next, 1);
        if (i >= a->n)
            return NULL;
        dk_append_res res;
        double s = now_s();
        if (dk_ledger_append(a->lg, &a->events[i].req, &res) != 0 ||
            (res.duplicate && !getenv("BENCH_C256")))
            a->failed = 1;
        a->lat[i] = (now_s() - s) * 1e6;
    }
}

static void bench_clients(dk_ledger *lg, fx_event *events, size_t n, int clients)
{
    atomic_size_t next = 0;
    double *lat = calloc(n, sizeof *lat);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    client_arg *args = calloc((size_t)clients, sizeof *args);
    double t0 = now_s(), c0 = cpu_s(), w0 = written_bytes();
    for (int i = 0; i < clients; i++) {
        args[i] = (client_arg){lg, events, &next, n, lat, 0};
        pthread_create(&th[i], NULL, client, &args[i]);
    }
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        if (args[i].failed)
            TH_FAIL("an append failed: %s", dk_errmsg());
    }
    double el = now_s() - t0;
    printf("# %d clients: %.2f cores busy on average\n", clients, (cpu_s() - c0) / el);
    char name[64];
    snprintf(name, sizeof name, "append_c%d_written_bytes_per_event", clients);
    line(name, (written_bytes() - w0) / (double)n, "bytes");
    snprintf(name, sizeof name, "append_c%d_eps", clients);
    line(name, (double)n / el, "events/s");
    if (clients == 1 || clients == 64) {
        snprintf(name, sizeof name, "append_c%d_p50_us", clients);
        line(name, pct(lat, n, 0.50), "us");
        snprintf(name, sizeof name, "append_c%d_p99_us", clients);
        line(name, pct(lat, n, 0.99), "us");
    }
    free(args);
    free(th);
    free(lat);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    size_t n1 = quick ? 1000 : 3000, n8 = quick ? 10000 : 40000, n64 = quick ? 30000 : 120000;
    const char *base = th_tmpdir();
    atexit(th_cleanup);
    if (dk_init() != 0)
        return 1;
    printf("# docket bench/append%s on %ld cores, ledger in %s\n", quick ? " --quick" : "",
           sysconf(_SC_NPROCESSORS_ONLN), base);

    /* A realistic note (~190 bytes of text) on one of 1,000 opened cases. */
    static const char note[] = "identity and residence evidence checked against HMRC records; "
                               "applicant attended in person; passport P-5521 verified against "
                               "the issuing authority's record";
    msgpack_sbuffer sb;
    fx_text_data(&sb, note);
    enum { CASES = 1000 };

    dk_key *admin, *actors[50];
    dk_ledger *lg;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/ledger", base);
    if (dk_key_generate("admin", &admin) || dk_ledger_init(dir, "bench", admin, NULL, &lg))
        TH_FAIL("init: %s", dk_errmsg());
    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof id, "cw.%02d", i);
        if (fx_enroll(lg, admin, id, "caseworker", (1ull << 50) + (uint64_t)i, &actors[i]))
            TH_FAIL("enroll: %s", dk_errmsg());
    }

    for (uint64_t c = 0; c < CASES; c++) {
        char case_id[32];
        dk_append_res res;
        snprintf(case_id, sizeof case_id, "HO-%06llu", (unsigned long long)c);
        if (fx_open_case(lg, actors[c % 50], case_id, (1ull << 51) + c, NULL, &res))
            TH_FAIL("open: %s", dk_errmsg());
    }
    size_t total = n1 + n8 + n64;
    int random_cmd = getenv("BENCH_RANDOM_CMD") != NULL;
    if (random_cmd)
        printf("# command ids: random (BENCH_RANDOM_CMD)\n");
    fx_event *events = calloc(total, sizeof *events);
    double t0 = now_s();
    for (size_t i = 0; i < total; i++) {
        char case_id[32];
        snprintf(case_id, sizeof case_id, "HO-%06zu", i % CASES);
        /* command ids in time order, as dk_cmd_new makes them; BENCH_RANDOM_CMD=1 scatters
         * them (what clients that make random ids cost) */
        uint64_t n = random_cmd ? (uint64_t)(uint32_t)(i * 2654435761u) : (uint64_t)i;
        if (fx_make(&events[i], actors[i % 50], "note.added", case_id, n, (const uint8_t *)sb.data,
                    sb.size, NULL))
            TH_FAIL("make: %s", dk_errmsg());
    }
    printf("# pre-signed %zu events (%zu-byte bodies) in %.1f s\n", total, events[0].body_len,
           now_s() - t0);

    const char *only = getenv("BENCH_ONLY"); /* e.g. "c64", to profile one phase */
    if (only == NULL) {
        bench_lmdb(base, quick ? 100000 : 300000, events[0].body_len + 100);
        line("ed25519_verify_all_cores_per_s",
             ed25519_rate(dk_key_public(actors[0]), events[0].body, events[0].body_len,
                          events[0].sig.sig, quick ? 2.0 : 4.0),
             "verifies/s");
    }
    if (only == NULL || strcmp(only, "c1") == 0)
        bench_clients(lg, events, n1, 1);
    if (only == NULL || strcmp(only, "c8") == 0)
        bench_clients(lg, events + n1, n8, 8);
    if (only == NULL || strcmp(only, "c64") == 0)
        bench_clients(lg, events + n1 + n8, n64, 64);
    if (getenv("BENCH_C256"))
        bench_clients(lg, events, n64, 256);

    dk_verify_report rep;
    t0 = now_s();
    if (dk_ledger_verify(lg, &rep) != 0 || !rep.ok)
        TH_FAIL("ledger does not verify after the benchmark: %s", rep.reason);
    line("verify_eps", (double)rep.checked / (now_s() - t0), "records/s");

    for (size_t i = 0; i < total; i++)
        fx_free(&events[i]);
    free(events);
    for (int i = 0; i < 50; i++)
        dk_key_free(actors[i]);
    dk_key_free(admin);
    dk_ledger_close(lg);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
