/* asof.c - benchmark of per-case as-of reads: a random case's state as of a
 * random time (and as of now) through the case index, p50/p99 in µs, on a
 * synthetic ledger. Usage: bench_asof [--quick] [--events N]. */
#include <string.h>

#include "docket/replay.h"
#include "gen.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    return th_xorshift(&rng);
}

static void measure(gen *g, int now, size_t n, const char *name)
{
    double *lat = calloc(n, sizeof *lat);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        char case_id[32];
        gen_case_id(next_rand() % g->cases, case_id);
        int64_t span = g->last_at - g->first_at;
        int64_t t = now ? DK_TIME_MAX : g->first_at + (int64_t)(next_rand() % (uint64_t)span);
        dk_case_view cv;
        double s = now_s();
        int rc = dk_case_read(g->lg, case_id, t, &cv);
        lat[i] = (now_s() - s) * 1e6;
        if (rc == 0)
            found++;
        else if (rc != DK_ENOTFOUND)
            TH_FAIL("asof: %s", dk_errmsg());
        dk_case_view_close(&cv);
    }
    char k[96];
    printf("# %s: %zu reads, %zu cases existed at the time\n", name, n, found);
    snprintf(k, sizeof k, "%s_p50_us", name);
    line(k, pct(lat, n, 0.50), "us");
    snprintf(k, sizeof k, "%s_p99_us", name);
    line(k, pct(lat, n, 0.99), "us");
    free(lat);
}

int main(int argc, char **argv)
{
    size_t reads = 20000, events = gen_args(argc, argv, 1000000, 100000, "bench_asof");
    gen g;
    gen_start(&g, "bench/asof", events);
    dk_ledger_close(g.lg); /* read as an auditor would: a read-only open */
    dk_ledger_opts ro = {0, 0, 1, 0};
    if (dk_ledger_open(g.dir, &ro, &g.lg) != 0)
        TH_FAIL("open: %s", dk_errmsg());
    measure(&g, 0, reads, "asof_random_time");
    measure(&g, 1, reads, "asof_now");
    line("asof_ledger_events", (double)g.events, "events");
    gen_free(&g);
    return 0;
}
