/* test_crash.c - crash safety: a child appends with several threads, or backs up, or
 * restores; the parent SIGKILLs it at random moments, then checks that nothing
 * acknowledged is lost and no half-made copy is left to be taken for a whole one. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
    ASSERT_OK(fx_ledger_with_alice(dir, "crash", &lg, &admin, &alice));
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

/* ---- backups and restores killed part way ---- */

static const char *const with_key[] = {"node.key", NULL};

static void on_appended(void *udata, const dk_append_res *res)
{
    if (res->err == 0)
        atomic_fetch_add((atomic_int *)udata, 1);
}

/* A ledger of `notes` notes of 8 KiB (a copy long enough to be stopped part way), and a
 * node.key file beside it. Returns the head. */
static dk_head big_ledger(const char *dir, int notes)
{
    dk_key *admin, *alice;
    dk_ledger *lg;
    ASSERT_OK(fx_ledger_with_alice(dir, "crash", &lg, &admin, &alice));
    dk_append_res res;
    ASSERT_OK(fx_open_case(lg, alice, "HO-1", 1ull << 51, NULL, &res));
    char text[8193];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = 0;
    msgpack_sbuffer sb;
    fx_text_data(&sb, text);
    atomic_int done = 0;
    for (int i = 0; i < notes; i++) {
        fx_event fe;
        ASSERT_OK(fx_make(&fe, alice, "note.added", "HO-1", (uint64_t)i, (uint8_t *)sb.data,
                          sb.size, NULL));
        ASSERT_OK(dk_ledger_submit(lg, &fe.req, on_appended, &done));
        fx_free(&fe);
    }
    msgpack_sbuffer_destroy(&sb);
    dk_ledger_close(lg); /* answers every queued append first */
    ASSERT_EQ(atomic_load(&done), notes);
    char key[1200];
    snprintf(key, sizeof key, "%s/node.key", dir);
    FILE *f = fopen(key, "w");
    ASSERT(f != NULL && fputs("the node key's bytes", f) >= 0 && fclose(f) == 0);
    dk_head h;
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(dir, &ro, &lg));
    ASSERT_OK(dk_ledger_head(lg, &h));
    dk_ledger_close(lg);
    dk_key_free(alice);
    dk_key_free(admin);
    return h;
}

/* `dir` holds a whole copy: it opens with no lock, verifies, ends at `want`, and has the
 * node key. */
static void assert_whole_copy(const char *dir, const dk_head *want)
{
    dk_ledger *lg;
    dk_ledger_opts o = {0, 0, 1, 1};
    ASSERT_OK(dk_ledger_open(dir, &o, &lg));
    dk_head h;
    ASSERT_OK(dk_ledger_head(lg, &h));
    ASSERT_EQ(h.seq, want->seq);
    ASSERT_MEM_EQ(h.hash, want->hash, DK_HASH_BYTES);
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify(lg, &rep));
    ASSERT(rep.ok);
    dk_ledger_close(lg);
    char p[1200], buf[64] = {0};
    snprintf(p, sizeof p, "%s/node.key", dir);
    FILE *f = fopen(p, "r");
    ASSERT(f != NULL);
    ASSERT(fgets(buf, sizeof buf, f) != NULL);
    fclose(f);
    ASSERT_STR_EQ(buf, "the node key's bytes");
    snprintf(p, sizeof p, "%s/%s", dir, DK_BACKUP_STAGE);
    ASSERT(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/%s", dir, DK_RESTORE_STAGE);
    ASSERT(access(p, F_OK) != 0);
}

static long elapsed_us(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000 + (t.tv_nsec - t0->tv_nsec) / 1000;
}

/* In a child: back `src` up into `dest` (restore: restore the backup `src` into
 * `dest`); exit 0 once it returned 0. */
static void fill_child(int restore, const char *src, const char *dest)
{
    if (restore) {
        dk_verify_report rep;
        _exit(dk_ledger_restore(src, dest, with_key, &rep) == 0 && rep.ok ? 0 : 2);
    }
    dk_ledger *lg;
    dk_ledger_opts ro = {0, 0, 1, 0};
    if (dk_ledger_open(src, &ro, &lg) != 0)
        _exit(3);
    _exit(dk_ledger_backup(lg, dest, with_key) == 0 ? 0 : 2);
}

/* Run fill_child, SIGKILLed after `us` microseconds (-1: let it end). Returns what the
 * child took, in microseconds, or -1 if the kill stopped it. */
static long run_fill(int restore, const char *src, const char *dest, long us)
{
    fflush(NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0)
        fill_child(restore, src, dest);
    int st;
    if (us >= 0) {
        while (elapsed_us(&t0) < us && waitpid(pid, &st, WNOHANG) == 0)
            usleep(50);
        kill(pid, SIGKILL); /* it may have ended already: then this does nothing */
    }
    waitpid(pid, &st, 0);
    long took = elapsed_us(&t0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        return -1;
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return took;
}

/* 1 if a stopped fill left its stage in `dest`. */
static int stage_left(const char *dest, const char *stage)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dest, stage);
    return access(p, F_OK) == 0;
}

TEST(sigkill_mid_backup_or_restore_leaves_no_half_copy)
{
    const char *dir = th_tmpdir();
    char src[1100], dest[1100], bk0[1100];
    snprintf(src, sizeof src, "%s/ledger", dir);
    snprintf(bk0, sizeof bk0, "%s/bk0", dir);
    dk_head want = big_ledger(src, 2500); /* about 21 MB */
    uint64_t rnd = (uint64_t)time(NULL) | 1;
    printf("seed %llu\n", (unsigned long long)rnd);
    for (int restore = 0; restore < 2; restore++) {
        const char *from = restore ? bk0 : src,
                   *stage = restore ? DK_RESTORE_STAGE : DK_BACKUP_STAGE;
        snprintf(dest, sizeof dest, "%s/%s0", dir, restore ? "r" : "bk");
        long whole = run_fill(restore, from, dest, -1);
        assert_whole_copy(dest, &want);
        int stopped = 0, staged = 0, round;
        /* kill at random moments over 1.2 times a whole run, until at least 4 kills
         * stopped a copy part way (at most 64 rounds) */
        for (round = 1; round <= 64 && staged < 4; round++) {
            snprintf(dest, sizeof dest, "%s/%s%d", dir, restore ? "r" : "bk", round);
            long at = (long)(th_xorshift(&rnd) % (uint64_t)(whole * 6 / 5 + 1));
            if (run_fill(restore, from, dest, at) >= 0) {
                assert_whole_copy(dest, &want); /* it ended before the kill */
                continue;
            }
            stopped++;
            char p[1200];
            snprintf(p, sizeof p, "%s/data.mdb", dest);
            if (access(p, F_OK) == 0) { /* stopped after the copy was in place */
                assert_whole_copy(dest, &want);
                continue;
            }
            staged += stage_left(dest, stage);
            /* no data.mdb: not a ledger; the same command run again completes */
            ASSERT(run_fill(restore, from, dest, -1) >= 0);
            assert_whole_copy(dest, &want);
        }
        printf("%s: a whole run %ld us; %d rounds, %d killed, %d left a stage\n",
               restore ? "restore" : "backup", whole, round - 1, stopped, staged);
        ASSERT(staged >= 4);
    }
}

TH_MAIN(TH_ENTRY(sigkill_loses_nothing_acknowledged)
            TH_ENTRY(sigkill_mid_backup_or_restore_leaves_no_half_copy))
