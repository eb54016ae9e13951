/* common.c - what the bench/compare drivers share: the mapped workload, timing
 * and result lines, the client runner, SQL-side verification and chain hash, the fold. */
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

static const char *prog = "compare";

void cmp_set_prog(const char *name)
{
    const char *slash = strrchr(name, '/');
    prog = slash ? slash + 1 : name;
}

void cmp_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static const char *const type_names[CT_COUNT] = {
    "case.opened",        "case.assigned",     "case.status_changed",   "case.withdrawn",
    "case.closed",        "decision.recorded", "leave.cancelled",       "note.added",
    "document.attached",  "interview.booked",  "interview.rescheduled", "interview.cancelled",
    "interview.attended", "interview.no_show", "error.reported",        "contact.updated",
    "appeal.lodged",      "appeal.decided"};

const char *cmp_type_name(int type)
{
    return type >= 0 && type < CT_COUNT ? type_names[type] : "?";
}

void cmp_case_id(uint64_t n, char out[32])
{
    snprintf(out, 32, "HO-2026-%07llu", (unsigned long long)n);
}

/* ---- the workload file ---- */

void cmp_workload_open(const char *path, cmp_workload *w)
{
    memset(w, 0, sizeof *w);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        cmp_die("cannot open the workload %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0)
        cmp_die("cannot stat %s: %s", path, strerror(errno));
    if ((size_t)st.st_size < sizeof(cmp_file_header))
        cmp_die("%s is not a workload file (too short)", path);
    w->map_len = (size_t)st.st_size;
    w->map = mmap(NULL, w->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (w->map == MAP_FAILED)
        cmp_die("cannot map %s: %s", path, strerror(errno));
    const uint8_t *p = w->map, *end = p + w->map_len;
    cmp_file_header h;
    memcpy(&h, p, sizeof h);
    if (memcmp(h.magic, CMP_MAGIC, 8) != 0)
        cmp_die("%s is not a workload file of this version (magic differs)", path);
    w->nevents = h.nevents;
    w->ncases = h.ncases;
    w->seed = h.seed;
    w->nactors = h.nactors;
    p += sizeof h;
    if (h.nactors == 0 || h.nactors > 255 || (size_t)(end - p) < h.nactors * sizeof(cmp_actor))
        cmp_die("%s: bad actor table", path);
    w->actors = (const cmp_actor *)p;
    p += h.nactors * sizeof(cmp_actor);
    w->ev = calloc(w->nevents ? w->nevents : 1, sizeof *w->ev);
    w->case_count = calloc(w->ncases ? w->ncases : 1, sizeof *w->case_count);
    if (w->ev == NULL || w->case_count == NULL)
        cmp_die("out of memory indexing %s", path);
    for (uint64_t i = 0; i < w->nevents; i++) {
        cmp_ev_head eh;
        if ((size_t)(end - p) < sizeof eh)
            cmp_die("%s: truncated at event %llu", path, (unsigned long long)i);
        memcpy(&eh, p, sizeof eh);
        size_t rec = (sizeof eh + eh.body_len + 7) & ~(size_t)7;
        if ((size_t)(end - p) < rec || eh.case_no >= w->ncases || eh.actor >= w->nactors)
            cmp_die("%s: bad event %llu", path, (unsigned long long)i);
        const cmp_ev_head *hp = (const cmp_ev_head *)p;
        cmp_event *e = &w->ev[i];
        e->case_no = eh.case_no;
        e->version = eh.version;
        e->actor = eh.actor;
        e->type = eh.type;
        e->sig = hp->sig;
        e->body = p + sizeof eh;
        e->body_len = eh.body_len;
        if (eh.version != w->case_count[eh.case_no])
            cmp_die("%s: event %llu has version %u, case %u is at %u", path, (unsigned long long)i,
                    eh.version, eh.case_no, w->case_count[eh.case_no]);
        w->case_count[eh.case_no]++;
        p += rec;
    }
    if (p != end)
        cmp_die("%s: %zu trailing bytes", path, (size_t)(end - p));
}

void cmp_workload_close(cmp_workload *w)
{
    if (w->map)
        munmap(w->map, w->map_len);
    free(w->ev);
    free(w->case_count);
    memset(w, 0, sizeof *w);
}

/* ---- time, results ---- */

double cmp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double cmp_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int cmp_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int64_t cmp_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double cmp_pct(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

void cmp_line(const char *name, double value, const char *unit)
{
    printf("%s %.6g %s\n", name, value, unit);
    fflush(stdout);
}

void cmp_line_u64(const char *name, uint64_t value, const char *unit)
{
    printf("%s %llu %s\n", name, (unsigned long long)value, unit);
    fflush(stdout);
}

uint64_t cmp_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        cmp_die("cannot list %s: %s", dir, strerror(errno));
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0)
            cmp_die("cannot stat %s: %s", path, strerror(errno));
        if (S_ISDIR(st.st_mode))
            total += cmp_dir_bytes(path);
        else if (S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    return total;
}

void cmp_rng_seed(cmp_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x9e3779b97f4a7c15ull;
    if (r->s == 0)
        r->s = 1;
}

uint64_t cmp_rng_next(cmp_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

uint64_t cmp_rng_below(cmp_rng *r, uint64_t n)
{
    return n ? cmp_rng_next(r) % n : 0;
}

void cmp_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t cmp_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- options ---- */

static size_t parse_count(const char *name, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        cmp_die("%s needs a number, not '%s'", name, s);
    return (size_t)v;
}

void cmp_opts_parse(int argc, char **argv, cmp_opts *o)
{
    memset(o, 0, sizeof *o);
    o->clients = 32;
    o->queries = 10000;
    o->batch = 1000;
    o->n_c1 = 5000;
    o->n_cn = 100000;
    cmp_set_prog(argv[0]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            cmp_die("option %s needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--workload") == 0)
            o->workload = v;
        else if (strcmp(a, "--dir") == 0)
            o->dir = v;
        else if (strcmp(a, "--conninfo") == 0)
            o->conninfo = v;
        else if (strcmp(a, "--c1") == 0)
            o->n_c1 = parse_count(a, v);
        else if (strcmp(a, "--cn") == 0)
            o->n_cn = parse_count(a, v);
        else if (strcmp(a, "--clients") == 0)
            o->clients = (int)parse_count(a, v);
        else if (strcmp(a, "--queries") == 0)
            o->queries = parse_count(a, v);
        else if (strcmp(a, "--batch") == 0)
            o->batch = parse_count(a, v);
        else if (strcmp(a, "--reads-only") == 0)
            o->reads_only = parse_count(a, v) != 0;
        else if (strcmp(a, "--only") == 0)
            o->only = v;
        else
            cmp_die("unknown option %s (options: --workload --dir --conninfo --c1 --cn --clients "
                    "--queries --batch --reads-only --only)",
                    a);
    }
    if (o->workload == NULL)
        cmp_die("--workload FILE is required");
    if (o->clients < 1 || o->clients > 1024 || o->batch < 1)
        cmp_die("--clients must be 1..1024 and --batch at least 1");
}

int cmp_phase(const cmp_opts *o, const char *name)
{
    return o->only == NULL || strcmp(o->only, name) == 0;
}

/* ---- SQL-side verification and chain ---- */

int cmp_verify_event(const cmp_actor *actors, size_t nactors, const cmp_workload *w,
                     const cmp_event *e, dk_event *ev, char *err, size_t errcap)
{
    const char *signer = w->actors[e->actor].id;
    if (dk_event_decode(e->body, e->body_len, ev) != 0) {
        snprintf(err, errcap, "body does not decode: %s", dk_errmsg());
        return -1;
    }
    if (strcmp(signer, ev->actor) != 0) {
        snprintf(err, errcap, "signed by '%s' but written by '%s'", signer, ev->actor);
        return -1;
    }
    if (!ev->has_expect || ev->case_id[0] == 0) {
        snprintf(err, errcap, "a case event needs a case id and an expected version");
        return -1;
    }
    const cmp_actor *a = NULL;
    for (size_t i = 0; i < nactors && a == NULL; i++)
        if (strcmp(actors[i].id, ev->actor) == 0)
            a = &actors[i];
    if (a == NULL) {
        snprintf(err, errcap, "actor '%s' is not enrolled", ev->actor);
        return -1;
    }
    uint8_t stack[DK_SIGN_DOMAIN_LEN + 2048], *m = stack;
    size_t mlen = DK_SIGN_DOMAIN_LEN + e->body_len;
    if (mlen > sizeof stack && (m = malloc(mlen)) == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    memcpy(m, DK_SIGN_DOMAIN, DK_SIGN_DOMAIN_LEN);
    memcpy(m + DK_SIGN_DOMAIN_LEN, e->body, e->body_len);
    int bad = crypto_sign_verify_detached(e->sig, m, mlen, a->pk);
    if (m != stack)
        free(m);
    if (bad) {
        snprintf(err, errcap, "signature by '%s' does not verify", ev->actor);
        return -1;
    }
    return 0;
}

void cmp_chain_hash(uint64_t seq, int64_t recorded_at, const uint8_t prev[32], const char *signer,
                    const uint8_t sig[64], const uint8_t *body, size_t body_len, uint8_t out[32])
{
    crypto_hash_sha256_state st;
    uint8_t head[1 + 8 + 8];
    head[0] = 0x00;
    cmp_put_be64(head + 1, seq);
    cmp_put_be64(head + 9, (uint64_t)recorded_at);
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, head, sizeof head);
    crypto_hash_sha256_update(&st, prev, 32);
    crypto_hash_sha256_update(&st, (const uint8_t *)signer, strlen(signer) + 1);
    crypto_hash_sha256_update(&st, sig, 64);
    crypto_hash_sha256_update(&st, body, body_len);
    crypto_hash_sha256_final(&st, out);
}

/* ---- the client runner ---- */

typedef struct client_run {
    const cmp_workload *w;
    void *client;
    cmp_append_fn fn;
    const size_t *idx; /* event indices of this client, in file order */
    size_t n;
    size_t from;
    double *lat;
    atomic_int *stop;
    int failed;
    char err[512];
} client_run;

static void *client_main(void *p)
{
    client_run *c = p;
    for (size_t j = 0; j < c->n && !atomic_load(c->stop); j++) {
        size_t i = c->idx[j];
        double t0 = cmp_now();
        if (c->fn(c->client, &c->w->ev[i], c->err, sizeof c->err) != 0) {
            c->failed = 1;
            atomic_store(c->stop, 1);
            break;
        }
        c->lat[i - c->from] = (cmp_now() - t0) * 1e6;
    }
    return NULL;
}

int cmp_run_clients(const cmp_workload *w, size_t from, size_t to, int nclients, void **clients,
                    cmp_append_fn fn, cmp_ingest_stats *st, char *err, size_t errcap)
{
    memset(st, 0, sizeof *st);
    if (to > w->nevents)
        to = w->nevents;
    if (from >= to)
        return 0;
    size_t n = to - from;
    size_t *idx = malloc(n * sizeof *idx), *count = calloc((size_t)nclients, sizeof *count);
    size_t *start = calloc((size_t)nclients + 1, sizeof *start);
    double *lat = calloc(n, sizeof *lat);
    client_run *runs = calloc((size_t)nclients, sizeof *runs);
    pthread_t *th = calloc((size_t)nclients, sizeof *th);
    if (!idx || !count || !start || !lat || !runs || !th)
        cmp_die("out of memory");
    for (size_t i = from; i < to; i++)
        count[w->ev[i].case_no % (uint32_t)nclients]++;
    for (int k = 0; k < nclients; k++)
        start[k + 1] = start[k] + count[k];
    memset(count, 0, (size_t)nclients * sizeof *count);
    for (size_t i = from; i < to; i++) {
        size_t k = w->ev[i].case_no % (uint32_t)nclients;
        idx[start[k] + count[k]++] = i;
    }
    atomic_int stop = 0;
    double t0 = cmp_now(), c0 = cmp_cpu_s();
    int started = 0;
    for (int k = 0; k < nclients; k++) {
        runs[k] =
            (client_run){w, clients[k], fn, idx + start[k], count[k], from, lat, &stop, 0, ""};
        if (pthread_create(&th[k], NULL, client_main, &runs[k]) != 0) {
            atomic_store(&stop, 1);
            snprintf(err, errcap, "cannot start client thread %d", k);
            break;
        }
        started++;
    }
    for (int k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    double el = cmp_now() - t0;
    int rc = started == nclients ? 0 : -1;
    for (int k = 0; k < started && rc == 0; k++)
        if (runs[k].failed) {
            snprintf(err, errcap, "client %d: %s", k, runs[k].err);
            rc = -1;
        }
    if (rc == 0) {
        st->n = n;
        st->seconds = el;
        st->eps = (double)n / el;
        st->cores_busy = (cmp_cpu_s() - c0) / el;
        st->p50_us = cmp_pct(lat, n, 0.50);
        st->p99_us = cmp_pct(lat, n, 0.99);
    }
    free(idx);
    free(count);
    free(start);
    free(lat);
    free(runs);
    free(th);
    return rc;
}

void cmp_print_ingest(const char *tag, const cmp_ingest_stats *st)
{
    char name[64];
    printf("# %s: %zu events in %.2f s, this process used %.2f cores\n", tag, st->n, st->seconds,
           st->cores_busy);
    snprintf(name, sizeof name, "ingest_%s_eps", tag);
    cmp_line(name, st->eps, "events/s");
    snprintf(name, sizeof name, "ingest_%s_p50_us", tag);
    cmp_line(name, st->p50_us, "us");
    snprintf(name, sizeof name, "ingest_%s_p99_us", tag);
    cmp_line(name, st->p99_us, "us");
}

typedef struct verify_job {
    const cmp_actor *actors;
    size_t nactors;
    const cmp_workload *w;
    size_t from, to;
    dk_event *ev; /* ev[0] is event `base` */
    size_t base;
    int failed;
    char err[512];
} verify_job;

static void *verify_main(void *p)
{
    verify_job *j = p;
    for (size_t i = j->from; i < j->to; i++)
        if (cmp_verify_event(j->actors, j->nactors, j->w, &j->w->ev[i], &j->ev[i - j->base], j->err,
                             sizeof j->err) != 0) {
            j->failed = 1;
            return NULL;
        }
    return NULL;
}

int cmp_verify_range(const cmp_actor *actors, size_t nactors, const cmp_workload *w, size_t from,
                     size_t to, dk_event *ev, char *err, size_t errcap)
{
    enum { MAXT = 64 };
    int nt = cmp_cores();
    if (nt > MAXT)
        nt = MAXT;
    verify_job jobs[MAXT];
    pthread_t th[MAXT];
    size_t n = to - from;
    int started = 0, rc = 0;
    for (int t = 0; t < nt; t++) {
        jobs[t] = (verify_job){actors,
                               nactors,
                               w,
                               from + n * (size_t)t / (size_t)nt,
                               from + n * (size_t)(t + 1) / (size_t)nt,
                               ev,
                               from,
                               0,
                               ""};
        if (t == nt - 1) { /* the calling thread takes the last share */
            verify_main(&jobs[t]);
            break;
        }
        if (pthread_create(&th[t], NULL, verify_main, &jobs[t]) != 0) {
            snprintf(err, errcap, "cannot start a verification thread");
            rc = -1;
            break;
        }
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < nt && rc == 0; t++)
        if (jobs[t].failed) {
            snprintf(err, errcap, "event %zu..%zu: %s", jobs[t].from, jobs[t].to, jobs[t].err);
            rc = -1;
        }
    return rc;
}

/* ---- reads ---- */

void cmp_plan_history(const cmp_workload *w, size_t nq, uint32_t *case_no)
{
    cmp_rng r;
    cmp_rng_seed(&r, w->seed * 31 + 1);
    for (size_t i = 0; i < nq; i++) {
        uint32_t c;
        do
            c = (uint32_t)cmp_rng_below(&r, w->ncases);
        while (w->case_count[c] == 0);
        case_no[i] = c;
    }
}

void cmp_plan_asof(const cmp_workload *w, size_t nq, uint32_t *case_no, uint32_t *k)
{
    cmp_rng r;
    cmp_rng_seed(&r, w->seed * 31 + 2);
    for (size_t i = 0; i < nq; i++) {
        uint32_t c;
        do
            c = (uint32_t)cmp_rng_below(&r, w->ncases);
        while (w->case_count[c] == 0);
        case_no[i] = c;
        k[i] = (uint32_t)cmp_rng_below(&r, w->case_count[c]);
    }
}

void cmp_report_reads(const char *tag, size_t nq, double seconds, double *lat, uint64_t check)
{
    char name[64];
    printf("# %s: %zu queries in %.2f s\n", tag, nq, seconds);
    snprintf(name, sizeof name, "%s_qps", tag);
    cmp_line(name, (double)nq / seconds, "queries/s");
    snprintf(name, sizeof name, "%s_p50_us", tag);
    cmp_line(name, cmp_pct(lat, nq, 0.5), "us");
    snprintf(name, sizeof name, "%s_p99_us", tag);
    cmp_line(name, cmp_pct(lat, nq, 0.99), "us");
    snprintf(name, sizeof name, "check_%s", tag);
    cmp_line_u64(name, check, "digest");
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s, strlen(s) + 1);
}

uint64_t cmp_state_digest(const char *case_id, const dk_case_state *st)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint64_t nums[] = {st->version,
                       (uint64_t)st->status,
                       (uint64_t)st->decision.has,
                       (uint64_t)st->decision.no_recourse_to_public_funds,
                       (uint64_t)st->interview.active,
                       (uint64_t)st->interview.slot_start,
                       st->interview.attended,
                       st->interview.no_shows,
                       st->interview.cancelled,
                       st->open_errors,
                       (uint64_t)st->appeal_open,
                       st->voided};
    h = fnv_str(h, case_id);
    h = fnv(h, nums, sizeof nums);
    h = fnv_str(h, st->case_type);
    h = fnv_str(h, st->channel);
    h = fnv_str(h, st->applicant_name);
    h = fnv_str(h, st->assignee);
    h = fnv_str(h, st->decision.outcome);
    h = fnv_str(h, st->decision.product_type);
    h = fnv_str(h, st->decision.immigration_status);
    h = fnv_str(h, st->decision.conditions);
    h = fnv_str(h, st->decision.valid_until);
    h = fnv_str(h, st->interview.interviewer);
    h = fnv_str(h, st->email);
    h = fnv_str(h, st->appeal_outcome);
    /* finalise (splitmix64) so that sums of digests mix well */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

/* ---- the case-status table ---- */

typedef struct table_row {
    char case_id[DK_CASE_MAX + 1];
    dk_case_state st;
} table_row;

struct cmp_table {
    uint32_t *slots; /* 0 = empty, else row index + 1 */
    size_t nslots;   /* power of two */
    table_row *rows;
    size_t nrows, cap;
};

static uint64_t hash_str(const char *s)
{
    return fnv(0xcbf29ce484222325ull, s, strlen(s));
}

cmp_table *cmp_table_new(size_t hint)
{
    cmp_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->nslots = 1024;
    while (t->nslots < 2 * hint)
        t->nslots *= 2;
    t->cap = hint ? hint : 16;
    t->slots = calloc(t->nslots, sizeof *t->slots);
    t->rows = malloc(t->cap * sizeof *t->rows);
    if (t->slots == NULL || t->rows == NULL) {
        cmp_table_free(t);
        return NULL;
    }
    return t;
}

void cmp_table_free(cmp_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t->rows);
    free(t);
}

static int table_grow(cmp_table *t)
{
    size_t n = t->nslots * 2;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t r = 0; r < t->nrows; r++) {
        size_t s = hash_str(t->rows[r].case_id) & (n - 1);
        while (slots[s])
            s = (s + 1) & (n - 1);
        slots[s] = (uint32_t)(r + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

static table_row *table_row_of(cmp_table *t, const char *case_id)
{
    size_t s = hash_str(case_id) & (t->nslots - 1);
    while (t->slots[s]) {
        table_row *r = &t->rows[t->slots[s] - 1];
        if (strcmp(r->case_id, case_id) == 0)
            return r;
        s = (s + 1) & (t->nslots - 1);
    }
    if (2 * (t->nrows + 1) > t->nslots) {
        if (table_grow(t) != 0)
            return NULL;
        return table_row_of(t, case_id);
    }
    if (t->nrows == t->cap) {
        table_row *more = realloc(t->rows, 2 * t->cap * sizeof *more);
        if (more == NULL)
            return NULL;
        t->rows = more;
        t->cap *= 2;
    }
    table_row *r = &t->rows[t->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->case_id, sizeof r->case_id, "%s", case_id);
    t->slots[s] = (uint32_t)t->nrows;
    return r;
}

int cmp_table_apply(cmp_table *t, uint64_t seq, int64_t recorded_at, const uint8_t *body,
                    size_t len, char *err, size_t errcap)
{
    (void)recorded_at;
    dk_event ev;
    if (dk_event_decode(body, len, &ev) != 0) {
        snprintf(err, errcap, "record %llu: body does not decode: %s", (unsigned long long)seq,
                 dk_errmsg());
        return -1;
    }
    if (ev.case_id[0] == 0)
        return 0; /* ledger.* and actor.* events */
    if (strcmp(ev.type, "event.reverted") == 0 || strcmp(ev.type, "case.rolled_back") == 0) {
        snprintf(err, errcap, "record %llu is a %s: this rebuild handles no undo",
                 (unsigned long long)seq, ev.type);
        return -1;
    }
    table_row *r = table_row_of(t, ev.case_id);
    if (r == NULL) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (dk_case_apply(&r->st, seq, &ev) != 0) {
        snprintf(err, errcap, "record %llu (%s on %s) does not apply: %s", (unsigned long long)seq,
                 ev.type, ev.case_id, dk_errmsg());
        return -1;
    }
    return 0;
}

size_t cmp_table_cases(const cmp_table *t)
{
    return t->nrows;
}

uint64_t cmp_table_digest(const cmp_table *t)
{
    uint64_t sum = 0;
    for (size_t r = 0; r < t->nrows; r++)
        sum += cmp_state_digest(t->rows[r].case_id, &t->rows[r].st);
    return sum;
}

void cmp_report_rebuild(const cmp_workload *w, const cmp_table *t, double seconds)
{
    printf("# rebuild: %zu cases from %llu events in %.2f s\n", cmp_table_cases(t),
           (unsigned long long)w->nevents, seconds);
    cmp_line("rebuild_s", seconds, "s");
    cmp_line("rebuild_eps", (double)w->nevents / seconds, "events/s");
    cmp_line_u64("check_rebuild", cmp_table_digest(t), "digest");
}
