/* gen.h - synthetic ledgers for the read benchmarks: cases of 5..20 events
 * (opened, validated, notes, under consideration, a senior's grant), signed
 * by 50 enrolled actors and appended through the ordinary path. */
#ifndef DOCKET_BENCH_GEN_H
#define DOCKET_BENCH_GEN_H

#include <stdatomic.h>

#include "benchlib.h"
#include "casefix.h"

#define GEN_CW 40 /* caseworkers cw.00.. */
#define GEN_SC 10 /* senior caseworkers sc.00.. */

typedef struct gen {
    dk_ledger *lg;
    dk_key *admin, *cw[GEN_CW], *sc[GEN_SC];
    size_t cases, events;
    int64_t first_at, last_at; /* when every case had been opened; the last event */
    const char *dir;
} gen;

static inline unsigned gen_len(size_t c) /* events of case c: 5..20 */
{
    uint64_t h = (uint64_t)c * 0x9E3779B97F4A7C15ull;
    return 5 + (unsigned)((h >> 40) % 16);
}

static inline void gen_case_id(size_t c, char out[32])
{
    snprintf(out, 32, "HO-%08zu", c);
}

typedef struct gen_job {
    tev t;
    const dk_key *key;
    dk_sig sig;
} gen_job;

typedef struct gen_sign_arg {
    gen_job *jobs;
    size_t from, to;
} gen_sign_arg;

static inline void *gen_sign(void *p)
{
    gen_sign_arg *a = p;
    for (size_t i = a->from; i < a->to; i++) {
        gen_job *j = &a->jobs[i];
        snprintf(j->sig.actor, sizeof j->sig.actor, "%s", dk_key_id(j->key));
        if (dk_sign(j->key, j->t.body, j->t.len, j->sig.sig) != 0)
            abort();
    }
    return NULL;
}

typedef struct gen_wait {
    atomic_size_t left;
    atomic_int failed;
    int64_t last_at;
} gen_wait;

static inline void gen_done(void *ud, const dk_append_res *res)
{
    gen_wait *w = ud;
    if (res->err) {
        fprintf(stderr, "gen: append rejected: %s\n", res->errmsg);
        atomic_store(&w->failed, 1);
    } else if (res->recorded_at > w->last_at) {
        w->last_at = res->recorded_at; /* the writer thread calls back in order */
    }
    atomic_fetch_sub(&w->left, 1);
}

/* Sign jobs[0..n) on every core, submit them all, wait for every answer. */
static inline void gen_round(gen *g, gen_job *jobs, size_t n)
{
    int cores = online_cores();
    pthread_t th[64];
    gen_sign_arg args[64];
    for (int i = 0; i < cores; i++) {
        args[i] = (gen_sign_arg){jobs, n * (size_t)i / (size_t)cores,
                                 n * (size_t)(i + 1) / (size_t)cores};
        pthread_create(&th[i], NULL, gen_sign, &args[i]);
    }
    for (int i = 0; i < cores; i++)
        pthread_join(th[i], NULL);
    gen_wait w;
    atomic_init(&w.left, n);
    atomic_init(&w.failed, 0);
    w.last_at = 0;
    for (size_t i = 0; i < n; i++) {
        dk_append_req req = {jobs[i].t.body, jobs[i].t.len, &jobs[i].sig, 1};
        int rc = dk_ledger_submit(g->lg, &req, gen_done, &w);
        if (rc)
            TH_FAIL("gen: submit: %s", dk_errmsg());
    }
    while (atomic_load(&w.left) > 0)
        usleep(200);
    if (atomic_load(&w.failed))
        TH_FAIL("gen: an append was rejected");
    g->last_at = w.last_at;
}

/* A new ledger in `dir` with about `events` case events. */
static inline void gen_ledger(gen *g, const char *dir, size_t events)
{
    memset(g, 0, sizeof *g);
    dk_ledger_opts o = {(size_t)4 << 30, 4096, 0, 0};
    if (dk_key_generate("admin", &g->admin) || dk_ledger_init(dir, "bench", g->admin, &o, &g->lg))
        TH_FAIL("init: %s", dk_errmsg());
    for (int i = 0; i < GEN_CW + GEN_SC; i++) {
        char id[16];
        int senior = i >= GEN_CW;
        snprintf(id, sizeof id, "%s.%02d", senior ? "sc" : "cw", senior ? i - GEN_CW : i);
        dk_key **k = senior ? &g->sc[i - GEN_CW] : &g->cw[i];
        if (fx_enroll(g->lg, g->admin, id, senior ? "caseworker,senior_caseworker" : "caseworker",
                      (1ull << 50) + (uint64_t)i, k))
            TH_FAIL("enroll: %s", dk_errmsg());
    }
    g->cases = events * 2 / 25; /* 12.5 events a case on average */
    if (g->cases == 0)
        g->cases = 1;
    gen_job *jobs = calloc(g->cases, sizeof *jobs);
    dmap d;
    for (unsigned r = 0; r < 20; r++) {
        size_t n = 0;
        for (size_t c = 0; c < g->cases; c++) {
            unsigned len = gen_len(c);
            if (r >= len)
                continue;
            const char *type = r == 0         ? "case.opened"
                               : r == 1       ? "case.status_changed"
                               : r == len - 2 ? "case.status_changed"
                               : r == len - 1 ? "decision.recorded"
                                              : "note.added";
            fill_valid(&d, type);
            if (r == 1)
                d_str(&d, "to", "validated");
            else if (r == len - 2)
                d_str(&d, "to", "under_consideration");
            const dk_key *key = r == len - 1 ? g->sc[c % GEN_SC] : g->cw[c % GEN_CW];
            char case_id[32];
            gen_case_id(c, case_id);
            tev_make(&jobs[n].t, type, case_id, dk_key_id(key), &d, NULL);
            jobs[n].key = key;
            n++;
        }
        if (n == 0)
            break;
        gen_round(g, jobs, n);
        if (r == 0) {
            dk_head h;
            dk_ledger_head(g->lg, &h);
            g->first_at = h.recorded_at;
        }
        for (size_t i = 0; i < n; i++)
            tev_free(&jobs[i].t);
        g->events += n;
    }
    free(jobs);
}

/* [--quick] [--events N]: the number of case events wanted; exits on a bad
 * argument. */
static inline size_t gen_args(int argc, char **argv, size_t dflt, size_t quick, const char *prog)
{
    size_t events = dflt;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            events = quick;
        } else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc) {
            events = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--events N]\n", prog);
            exit(2);
        }
    }
    return events;
}

/* dk_init, a temporary directory removed at exit, and a ledger of about
 * `events` case events in it. */
static inline void gen_start(gen *g, const char *prog, size_t events)
{
    if (dk_init() != 0)
        TH_FAIL("dk_init failed");
    const char *base = th_tmpdir();
    atexit(th_cleanup);
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/ledger", base);
    printf("# docket %s on %d cores, %zu case events wanted, ledger in %s\n", prog, online_cores(),
           events, dir);
    double t0 = now_s();
    gen_ledger(g, dir, events);
    printf("# built %zu events over %zu cases in %.1f s\n", g->events, g->cases, now_s() - t0);
    g->dir = dir;
}

static inline void gen_free(gen *g)
{
    dk_ledger_close(g->lg);
    dk_key_free(g->admin);
    for (int i = 0; i < GEN_CW; i++)
        dk_key_free(g->cw[i]);
    for (int i = 0; i < GEN_SC; i++)
        dk_key_free(g->sc[i]);
}

#endif
