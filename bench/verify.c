/* verify.c - benchmark of `docket verify`: records and signatures per second
 * on every core against the machine's raw Ed25519 verify rate measured in the
 * same run, with and without the casework rules pass, and on one core; and one
 * case of many undos, appended, verified and projected live. Usage: bench_verify [--quick]
 * [--events N], or bench_verify --undo-only for that case alone. Prints `name value unit`
 * lines. */
#include <string.h>

#include "docket/views.h"

#include "casefix.h"
#include "gen.h"

static void run(dk_ledger *lg, int jobs, int rules, const char *name, double raw)
{
    dk_verify_opts o = {.jobs = jobs, .skip_rules = !rules};
    dk_verify_report rep;
    double t0 = now_s(), c0 = cpu_s();
    if (dk_ledger_verify_opts(lg, &o, &rep) != 0 || !rep.ok)
        TH_FAIL("verify failed: %s %s", dk_errmsg(), rep.reason);
    double el = now_s() - t0;
    char n[96];
    printf("# %s: %llu records, %llu signatures, %llu cases in %.2f s, %.2f cores busy\n", name,
           (unsigned long long)rep.checked, (unsigned long long)rep.signatures,
           (unsigned long long)rep.cases, el, (cpu_s() - c0) / el);
    snprintf(n, sizeof n, "%s_records_per_s", name);
    line(n, (double)rep.checked / el, "records/s");
    if (raw > 0) {
        snprintf(n, sizeof n, "%s_vs_raw_ed25519_pct", name);
        line(n, 100.0 * (double)rep.signatures / el / raw, "%");
    }
}

/* One case of 3 x `rounds` records: two notes, then an undo of the first, `rounds` times.
 * Each undo is judged on the whole case before it, so its cost grows with the case; so
 * does the live views' re-fold of the case at each undo (the views are opened before the
 * case is written, then brought to the head record by record, as a projector does). */
static void undo_heavy(size_t rounds)
{
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/undo", th_tmpdir());
    world w;
    world_open(&w, dir);
    dk_views *vw;
    if (dk_views_open(w.lg, dir, NULL, &vw) != 0 || dk_views_sync(vw) != 0)
        TH_FAIL("views: %s", dk_errmsg());
    dmap d;
    dk_append_res res;
    double c0 = cpu_s();
    PUT_DEFAULT(&w, "UNDO-1", "case.opened", w.carol);
    for (size_t i = 0; i < rounds; i++) {
        uint64_t first = PUT_DEFAULT(&w, "UNDO-1", "note.added", w.carol);
        PUT_DEFAULT(&w, "UNDO-1", "note.added", w.carol);
        revert_data(&d, w.lg, first);
        if (try_put(&w, "UNDO-1", "event.reverted", w.carol, NULL, &d, &res) != 0)
            TH_FAIL("undo %zu: %s", i, res.errmsg);
    }
    /* the writer judges each undo on the case folded without it and with it */
    line("append_undo_heavy_case_cpu_s", cpu_s() - c0, "s");
    dk_verify_opts o = {.jobs = 1};
    dk_verify_report rep;
    double t0 = now_s();
    c0 = cpu_s();
    if (dk_ledger_verify_opts(w.lg, &o, &rep) != 0 || !rep.ok)
        TH_FAIL("verify failed: %s %s", dk_errmsg(), rep.reason);
    printf("# one case of %zu records, %zu of them undos: verified on one core in %.2f s\n",
           3 * rounds + 1, rounds, now_s() - t0);
    line("verify_undo_heavy_case_cpu_s", cpu_s() - c0, "s");
    t0 = now_s();
    c0 = cpu_s();
    if (dk_views_sync(vw) != 0)
        TH_FAIL("views sync: %s", dk_errmsg());
    printf("# the same case projected live: %.2f s\n", now_s() - t0);
    line("project_undo_heavy_case_cpu_s", cpu_s() - c0, "s");
    dk_views_close(vw);
    world_close(&w);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--undo-only") == 0) {
        undo_heavy(1000); /* the case of many undos alone, at the default size */
        return 0;
    }
    gen g;
    gen_start(&g, "bench/verify", gen_args(argc, argv, 200000, 40000, "bench_verify"));

    /* the machine's ceiling, on a record body of this ledger */
    uint8_t *raw;
    size_t len;
    dk_record rec;
    if (dk_ledger_get(g.lg, 100, &raw, &len) != 0 || dk_record_decode(raw, len, &rec) != 0)
        TH_FAIL("read: %s", dk_errmsg());
    dk_actor_info a;
    if (dk_ledger_actor(g.lg, rec.sigs[0].actor, &a) != 0)
        TH_FAIL("actor: %s", dk_errmsg());
    double rate = ed25519_rate(a.pubkey, rec.body, rec.body_len, rec.sigs[0].sig, 3.0);
    free(raw);
    line("ed25519_verify_all_cores_per_s", rate, "verifies/s");

    run(g.lg, 0, 0, "verify_all_cores_no_rules", rate);
    run(g.lg, 0, 1, "verify_all_cores", rate);
    run(g.lg, 1, 1, "verify_one_core", 0);
    line("verify_peak_rss_mb", peak_rss_mb(), "MiB");
    size_t rounds = g.events / 200 < 1000 ? g.events / 200 : 1000;
    gen_free(&g);
    undo_heavy(rounds ? rounds : 1);
    return 0;
}
