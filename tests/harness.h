/* harness.h - docket's small test harness: TEST() functions, ASSERT_* macros
 * that print both values and file:line, each test run in its own process. */
#ifndef DOCKET_TEST_HARNESS_H
#define DOCKET_TEST_HARNESS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "docket/error.h"

typedef struct {
    const char *name;
    void (*fn)(void);
} th_test;

/* xorshift64: a test's reproducible random numbers; *state starts non-zero. */
static inline uint64_t th_xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

#define TEST(name)     static void test_##name(void)
#define TH_ENTRY(name) {#name, test_##name},

#define TH_FAIL(...)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TH_FAIL("assertion failed: %s", #cond);                                                \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long th_a = (long long)(a), th_b = (long long)(b);                                    \
        if (th_a != th_b)                                                                          \
            TH_FAIL("%s == %s: %lld != %lld", #a, #b, th_a, th_b);                                 \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *th_a = (a), *th_b = (b);                                                       \
        if (strcmp(th_a, th_b) != 0)                                                               \
            TH_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, th_a, th_b);                             \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *th_h = (hay), *th_n = (needle);                                                \
        if (strstr(th_h, th_n) == NULL)                                                            \
            TH_FAIL("\"%s\" does not contain \"%s\"", th_h, th_n);                                 \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0)                                                            \
            TH_FAIL("%s and %s differ in their first %zu bytes", #a, #b, (size_t)(n));             \
    } while (0)

/* expr must return 0; on failure print the code and dk_errmsg(). */
#define ASSERT_OK(expr)                                                                            \
    do {                                                                                           \
        int th_rc = (expr);                                                                        \
        if (th_rc != 0)                                                                            \
            TH_FAIL("%s returned %s: %s", #expr, dk_err_name(th_rc), dk_errmsg());                 \
    } while (0)

/* expr must return exactly `code`. */
#define ASSERT_ERR(expr, code)                                                                     \
    do {                                                                                           \
        int th_rc = (expr);                                                                        \
        if (th_rc != (code))                                                                       \
            TH_FAIL("%s returned %s (%s), wanted %s", #expr, dk_err_name(th_rc), dk_errmsg(),      \
                    dk_err_name(code));                                                            \
    } while (0)

/* Remove a directory tree (what rm -r does). */
static inline void th_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[1024];
            if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                th_rm_tree(sub);
        }
        closedir(d);
    }
    remove(path);
}

/* A fresh empty directory for this test, removed by th_cleanup(). */
static char th_dir[256];
static inline const char *th_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(th_dir, sizeof th_dir, "%s/docket-test-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(th_dir) == NULL)
        TH_FAIL("mkdtemp failed");
    return th_dir;
}

static inline void th_cleanup(void)
{
    if (th_dir[0])
        th_rm_tree(th_dir);
}

/* Run every test (or the one named in argv[1]), each in a child process. */
static inline int th_main(const th_test *tests, size_t n, int argc, char **argv)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        ran++;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            atexit(th_cleanup);
            tests[i].fn();
            exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok && WIFSIGNALED(st))
            fprintf(stderr, "%s: killed by signal %d\n", tests[i].name, WTERMSIG(st));
        printf("%s %s\n", ok ? "ok  " : "FAIL", tests[i].name);
        failed += !ok;
    }
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(none)");
        return 1;
    }
    printf("%d passed, %d failed\n", ran - failed, failed);
    return failed ? 1 : 0;
}

#define TH_MAIN(...)                                                                               \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const th_test th_tests[] = {__VA_ARGS__};                                           \
        return th_main(th_tests, sizeof th_tests / sizeof th_tests[0], argc, argv);                \
    }

#endif
