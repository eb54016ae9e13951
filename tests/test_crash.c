/* test_crash.c - crash safety: a child appends with several threads and
 * reports each acknowledged seq; the parent SIGKILLs it at random moments,
 * then checks that the ledger verifies and holds every acknowledged event. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "fixture.h"
#include "harness.h"

enum { ROUNDS = 24, THREADS = 4, MAX_ACKS = 200000 };

typedef struct ack {
    uint64_t seq;
    uint64_t n;
} ack;

typedef struct child_ctx {
    dk_ledger *lg;
    dk_key *key;
    int fd;
    uint64_t base;
    pthread_mutex_t mu;
} child_ctx;

static const char *case_for(uint64_t n)
{
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "HO-%llu", (unsigned long long)(n % 97));
    return buf;
}

static void *child_thread(void *p)
{
    child_ctx *c = p;
    for (uint64_t i = 0;; i++) {
        uint64_t n = c->base + i;
        dk_append_res res;
        if (fx_append(c->lg, c->key, "note.added", case_for(n), n, NULL, &res) != 0)
            _exit(3);
        ack a = {res.seq, n};
        pthread_mutex_lock(&c->mu);
        if (write(c->fd, &a, sizeof a) != (ssize_t)sizeof a)
            _exit(4);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

static void run_child(const char *dir, dk_key *key, int fd, uint64_t base)
{
    child_ctx c = {NULL, key, fd, 0, PTHREAD_MUTEX_INITIALIZER};
    if (dk_ledger_open(dir, NULL, &c.lg) != 0)
        _exit(2);
    pthread_t th[THREADS];
    child_ctx per[THREADS];
    for (int t = 0; t < THREADS; t++) {
        per[t] = c;
        per[t].base = base + (uint64_t)t * 1000000;
        pthread_create(&th[t], NULL, child_thread, &per[t]);
    }
    pause(); /* until SIGKILL */
    _exit(5);
}

TEST(sigkill_loses_nothing_acknowledged)
{
    const char *dir = th_tmpdir();
    dk_key *admin, *alice;
    dk_ledger *lg;
    ASSERT_OK(dk_key_generate("admin", &admin));
    ASSERT_OK(dk_ledger_init(dir, "crash", admin, NULL, &lg));
    ASSERT_OK(fx_enroll(lg, admin, "alice", "caseworker", 1ull << 50, &alice));
    for (uint64_t c = 0; c < 97; c++) {
        dk_append_res res;
        ASSERT_OK(fx_open_case(lg, alice, case_for(c), (1ull << 51) + c, NULL, &res));
    }
    dk_ledger_close(lg);

    ack *acks = malloc(MAX_ACKS * sizeof *acks);
    size_t nacks = 0;
    unsigned seed = (unsigned)time(NULL);
    printf("seed %u\n", seed);
    srand(seed);
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            run_child(dir, alice, fds[1], (uint64_t)(round + 1) * 100000000);
        }
        close(fds[1]);
        /* Let it run 5..150 ms, reading acks, then kill it mid-flight. */
        int run_ms = 5 + rand() % 146;
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        int killed = 0;
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (!killed && el >= run_ms) {
                kill(pid, SIGKILL);
                killed = 1;
            }
            struct pollfd pfd = {fds[0], POLLIN, 0};
            if (poll(&pfd, 1, killed ? 1000 : 5) <= 0 && killed)
                break;
            if (!(pfd.revents & (POLLIN | POLLHUP)))
                continue;
            ack a;
            ssize_t r = read(fds[0], &a, sizeof a);
            if (r == 0)
                break;
            if (r == (ssize_t)sizeof a && nacks < MAX_ACKS)
                acks[nacks++] = a;
        }
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

        /* After each kill: the ledger opens, verifies, and has every ack. */
        ASSERT_OK(dk_ledger_open(dir, NULL, &lg));
        dk_verify_report rep;
        ASSERT_OK(dk_ledger_verify(lg, &rep));
        if (!rep.ok)
            TH_FAIL("round %d: verify failed at %llu: %s", round, (unsigned long long)rep.seq,
                    rep.reason);
        for (size_t i = 0; i < nacks; i++) {
            uint8_t *raw;
            size_t len;
            dk_record rec;
            fx_event want;
            ASSERT_OK(dk_ledger_get(lg, acks[i].seq, &raw, &len));
            ASSERT_OK(dk_record_decode(raw, len, &rec));
            ASSERT_OK(
                fx_make(&want, alice, "note.added", case_for(acks[i].n), acks[i].n, NULL, 0, NULL));
            ASSERT_EQ(rec.body_len, want.body_len);
            ASSERT_MEM_EQ(rec.body, want.body, want.body_len);
            ASSERT_MEM_EQ(rec.sigs[0].sig, want.sig.sig, DK_SIG_BYTES);
            fx_free(&want);
            free(raw);
        }
        dk_head h;
        ASSERT_OK(dk_ledger_head(lg, &h));
        printf("round %2d: killed after %3d ms, %zu acks so far, head %llu\n", round, run_ms, nacks,
               (unsigned long long)h.seq);
        dk_ledger_close(lg);
    }
    ASSERT(nacks > 0);
    free(acks);
    dk_key_free(alice);
    dk_key_free(admin);
}

TH_MAIN(TH_ENTRY(sigkill_loses_nothing_acknowledged))
