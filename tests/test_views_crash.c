/* test_views_crash.c - crash safety of the projections: a child runs the libuv projector
 * (often mid-rebuild) and is SIGKILLed at random moments; the views must equal a fresh replay. */
#include <signal.h>
#include <time.h>

#include <uv.h>

#include "docket/views.h"
#include "fixture.h"
#include "harness.h"

enum { ROUNDS = 10, CASES = 40, PER_ROUND = 300 };

static const char *case_for(uint64_t n)
{
    static char buf[32];
    snprintf(buf, sizeof buf, "CR-%llu", (unsigned long long)(n % CASES));
    return buf;
}

static void on_error(void *ud, int err, const char *msg)
{
    (void)ud;
    fprintf(stderr, "child projector: %s: %s\n", dk_err_name(err), msg);
    _exit(7);
}

/* The child: follow the ledger forever, in small batches (killed by the parent). */
static void run_child(const char *dir, int rebuild)
{
    dk_ledger_opts lo = {0, 0, 1, 0};
    dk_ledger *lg;
    dk_views *vw;
    dk_views_opts vo = {5, 16, 0, 0, 0};
    if (dk_ledger_open(dir, &lo, &lg) != 0 || dk_views_open(lg, dir, &vo, &vw) != 0)
        _exit(2);
    if (rebuild && dk_views_request_rebuild(vw, rebuild == 1 ? "all" : "diary") != 0)
        _exit(3);
    uv_loop_t loop;
    uv_loop_init(&loop);
    dk_projector *pj;
    dk_projector_opts po = {2, 1, NULL, on_error, NULL};
    if (dk_projector_start(&loop, vw, lg, dir, &po, &pj) != 0)
        _exit(4);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(5);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    return th_xorshift(&rng);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

TEST(sigkill_mid_batch_leaves_views_equal_to_a_rebuild)
{
    const char *dir = th_tmpdir();
    dk_key *admin, *alice;
    dk_ledger *lg;
    ASSERT_OK(fx_ledger_with_alice(dir, "crash", &lg, &admin, &alice));
    dk_append_res res;
    for (uint64_t c = 0; c < CASES; c++)
        ASSERT_OK(fx_open_case(lg, alice, case_for(c), (1ull << 51) + c, NULL, &res));
    rng ^= (uint64_t)time(NULL);
    /* views built once: the children then project incrementally, or rebuild */
    dk_views *vw0;
    ASSERT_OK(dk_views_open(lg, dir, NULL, &vw0));
    ASSERT_OK(dk_views_sync(vw0));
    dk_views_close(vw0);
    uint64_t n = 0, progressed = 0, last_seq = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < PER_ROUND; i++, n++)
            ASSERT_OK(fx_append(lg, alice, "note.added", case_for(n), n, NULL, &res));
        dk_ledger_close(lg); /* LMDB environments do not survive fork() */
        fflush(NULL);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0)
            run_child(dir, round % 3); /* every third round plain, the others mid-rebuild */
        sleep_ms(20 + (unsigned)(next_rand() % 250));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            TH_FAIL("round %d: the child exited by itself (status %d)", round, st);
        ASSERT_OK(dk_ledger_open(dir, NULL, &lg));
        /* read what the child left, as a new process would */
        dk_views *vw;
        ASSERT_OK(dk_views_open(lg, dir, NULL, &vw));
        dk_view_status s[DK_VIEW_COUNT];
        ASSERT_OK(dk_views_status(vw, s));
        if (s[DK_VIEW_CASE_STATUS].seq > last_seq)
            progressed++;
        last_seq = s[DK_VIEW_CASE_STATUS].seq;
        fprintf(stderr, "round %d: views at %llu, head %llu, building %d\n", round,
                (unsigned long long)last_seq, (unsigned long long)s[0].head, s[0].building);
        /* every view is whole at its checkpoint: a check compares it with a fresh replay */
        if (s[DK_VIEW_CASE_STATUS].live) {
            dk_views_check_report rep;
            ASSERT_OK(dk_views_check(vw, NULL, 5, NULL, NULL, &rep));
            if (!rep.ok)
                TH_FAIL("round %d: views at seq %llu differ from a fresh replay", round,
                        (unsigned long long)rep.seq);
        }
        dk_views_close(vw);
    }
    ASSERT(progressed >= 2); /* the kills did land while the projector was working */
    dk_views *vw;
    ASSERT_OK(dk_views_open(lg, dir, NULL, &vw));
    ASSERT_OK(dk_views_sync(vw));
    dk_view_status s[DK_VIEW_COUNT];
    ASSERT_OK(dk_views_status(vw, s));
    dk_head h;
    ASSERT_OK(dk_ledger_head(lg, &h));
    for (int v = 0; v < DK_VIEW_COUNT; v++) {
        ASSERT_EQ(s[v].live, 1);
        ASSERT_EQ(s[v].seq, h.seq);
        ASSERT_EQ(s[v].building, 0); /* the killed children's rebuilds were swept */
    }
    dk_views_check_report rep;
    ASSERT_OK(dk_views_check(vw, NULL, 5, NULL, NULL, &rep));
    ASSERT_EQ(rep.ok, 1);
    ASSERT_EQ(rep.seq, h.seq);
    dk_views_close(vw);
    dk_ledger_close(lg);
    dk_key_free(admin);
    dk_key_free(alice);
}

TH_MAIN(TH_ENTRY(sigkill_mid_batch_leaves_views_equal_to_a_rebuild))
