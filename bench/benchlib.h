/* benchlib.h - what docket's benchmark programs share: clocks, percentiles,
 * `name value unit` output, peak RSS and the machine's Ed25519 verify rate. */
#ifndef DOCKET_BENCHLIB_H
#define DOCKET_BENCHLIB_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "docket/docket.h"

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) used by this process so far. */
static inline double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static inline double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* Bytes this process has written with write(2)-like calls so far (/proc/self/io wchar):
 * how many pages LMDB's commits wrote, a figure the machine's noise does not move. */
static inline double written_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char name[32];
    unsigned long long v;
    double out = 0;
    while (f && fscanf(f, "%31[^:]: %llu\n", name, &v) == 2)
        if (strcmp(name, "wchar") == 0)
            out = (double)v;
    if (f)
        fclose(f);
    return out;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile (0..1) of v[0..n); sorts v. */
static inline double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static inline void line(const char *name, double value, const char *unit)
{
    printf("%s %.1f %s\n", name, value, unit);
    fflush(stdout);
}

static inline int online_cores(void)
{
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : c > 64 ? 64 : (int)c;
}

typedef struct ed_arg {
    const uint8_t *pk, *body, *sig;
    size_t len;
    double seconds;
    uint64_t count;
} ed_arg;

static inline void *ed_loop(void *p)
{
    ed_arg *a = p;
    double end = now_s() + a->seconds;
    while (now_s() < end) {
        for (int i = 0; i < 64; i++)
            if (dk_verify(a->pk, a->body, a->len, a->sig) != 0)
                abort();
        a->count += 64;
    }
    return NULL;
}

/* Ed25519 verifications per second on every core: the ceiling for any
 * system that verifies each signature. */
static inline double ed25519_rate(const uint8_t *pk, const uint8_t *body, size_t len,
                                  const uint8_t *sig, double seconds)
{
    int cores = online_cores();
    pthread_t th[64];
    ed_arg args[64];
    for (int i = 0; i < cores; i++) {
        args[i] = (ed_arg){pk, body, sig, len, seconds, 0};
        pthread_create(&th[i], NULL, ed_loop, &args[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < cores; i++) {
        pthread_join(th[i], NULL);
        total += args[i].count;
    }
    return (double)total / seconds;
}

#endif
