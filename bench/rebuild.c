/* rebuild.c - benchmark of the projections: a full rebuild of every view over a synthetic
 * casework ledger, and the projector's lag while 10,000 events/s are appended. */
/* Prints `name value unit` lines. Options: --quick (1,000,000 events, 5 s of lag),
 * --events N, --cases N, --ledger DIR (generate there, or reuse what is there),
 * --lag-seconds S, --no-lag, --no-rebuild. rebuild_peak_rss_mb is the rebuild process's
 * VmHWM, which counts the mapped pages of the ledger's and the views' files;
 * rebuild_peak_rss_anon_mb is the process's own memory, sampled every 10 ms. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "benchlib.h"
#include "docket/views.h"
#include "fixture.h"
#include "harness.h"

#define NCW      50  /* caseworkers */
#define NSC      5   /* senior caseworkers */
#define NIV      400 /* interviewers */
#define MAXSTEPS 24

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- data maps ---- */

enum { K_STR, K_BOOL, K_U64, K_LIST, K_APPLICANT };
typedef struct kv {
    const char *k;
    int kind;
    const char *s;
    uint64_t u;
} kv;

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->k, ((const kv *)b)->k);
}

static void pack_kvs(msgpack_packer *pk, kv *v, size_t n, const char *name)
{
    qsort(v, n, sizeof *v, cmp_kv);
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < n; i++) {
        fx_pack_str(pk, v[i].k);
        if (v[i].kind == K_STR) {
            fx_pack_str(pk, v[i].s);
        } else if (v[i].kind == K_BOOL) {
            if (v[i].u)
                msgpack_pack_true(pk);
            else
                msgpack_pack_false(pk);
        } else if (v[i].kind == K_U64) {
            msgpack_pack_uint64(pk, v[i].u);
        } else if (v[i].kind == K_LIST) {
            char buf[256];
            size_t count = v[i].s[0] ? 1 : 0;
            for (const char *c = v[i].s; *c; c++)
                count += *c == ',';
            msgpack_pack_array(pk, count);
            snprintf(buf, sizeof buf, "%s", v[i].s);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                fx_pack_str(pk, t);
        } else {
            kv a[4] = {{"date_of_birth", K_STR, "1990-01-31", 0},
                       {"name", K_STR, name, 0},
                       {"nationality", K_STR, "FRA", 0},
                       {"ref", K_STR, "P-1", 0}};
            pack_kvs(pk, a, 4, name);
        }
    }
}

/* ---- the generator: cases with scripted lifecycles, interleaved ---- */
/* Appends go through the real path: signed here, verified and casework-checked by the
 * ledger. BENCH_GEN_THREADS threads (default: one per core) each keep up to FLIGHT appends
 * of as many different cases in flight (dk_ledger_submit), a case's next event waiting for
 * its last one's commit. 128 threads each waiting on its own append (dk_ledger_append)
 * kept both cores busy only 70% of the time, spending a fifth of it in the kernel
 * switching between them. */
#define FLIGHT 512

enum {
    S_OPEN,
    S_ASSIGN,
    S_VALIDATE,
    S_NOTE,
    S_DOC,
    S_BOOK,
    S_RESCHEDULE,
    S_ATTEND,
    S_NOSHOW,
    S_UNDER,
    S_ERROR,
    S_CORRECT,
    S_DECIDE,
    S_CLOSE,
    S_REVERT_NOTE
};

struct gthread;

/* A case in its lifecycle. busy, pos and the seqs change under its thread's mu once its
 * first append is in flight. */
typedef struct gcase {
    uint64_t idx;
    uint8_t steps[MAXSTEPS];
    int n, pos;
    uint64_t error_seq, note_seq;
    int busy; /* an append of it is in flight */
    struct gthread *owner;
} gcase;

typedef struct gen {
    const char *dir;
    dk_ledger *lg;
    dk_key *cw[NCW], *sc[NSC];
    uint64_t events, cases;
    int threads;
    atomic_uint_fast64_t budget, slots, failed;
} gen;

static void script(gcase *c)
{
    uint64_t r = mix(c->idx);
    int len = 5 + (int)(r % 16); /* planned lifecycle: 5..20 events */
    int n = 0;
    c->steps[n++] = S_OPEN;
    c->steps[n++] = S_ASSIGN;
    c->steps[n++] = S_VALIDATE;
    int interview = (r >> 8) % 10 < 6, error = (r >> 12) % 10 == 0, close = (r >> 16) % 2;
    int revert = (r >> 20) % 50 == 0;
    int fixed = 3 + (interview ? 2 + ((r >> 24) % 5 == 0) : 1) + (error ? 2 : 0) + 1 + close +
                (revert ? 2 : 0);
    int extras = len > fixed ? len - fixed : 0;
    for (int i = 0; i < extras / 2; i++)
        c->steps[n++] = (mix(r + (uint64_t)i) & 1) ? S_NOTE : S_DOC;
    if (revert) {
        c->steps[n++] = S_NOTE;
        c->steps[n++] = S_REVERT_NOTE;
    }
    if (interview) {
        c->steps[n++] = S_BOOK;
        if ((r >> 24) % 5 == 0)
            c->steps[n++] = S_RESCHEDULE;
        c->steps[n++] = (r >> 28) % 8 ? S_ATTEND : S_NOSHOW;
    } else {
        c->steps[n++] = S_UNDER;
    }
    for (int i = extras / 2; i < extras; i++)
        c->steps[n++] = (mix(r + (uint64_t)i) & 1) ? S_NOTE : S_DOC;
    if (error) {
        c->steps[n++] = S_ERROR;
        c->steps[n++] = S_CORRECT;
    }
    c->steps[n++] = S_DECIDE;
    if (close)
        c->steps[n++] = S_CLOSE;
    c->n = n;
    c->pos = 0;
}

static void date_of(uint64_t idx, uint64_t salt, char out[16])
{
    uint64_t d = mix(idx * 31 + salt) % (6 * 365);
    int y = 2019 + (int)(d / 365), doy = (int)(d % 365);
    int m = doy / 31 + 1;
    if (m > 12)
        m = 12;
    snprintf(out, 16, "%04d-%02d-%02d", y, m, doy % 28 + 1);
}

typedef struct gthread {
    gen *g;
    int t;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an append of this thread's was answered */
    int inflight;
} gthread;

/* An append's answer (on the ledger's writer thread): the case's step is done. */
static void step_done(void *udata, const dk_append_res *res)
{
    gcase *c = udata;
    gthread *gt = c->owner;
    pthread_mutex_lock(&gt->mu);
    if (res->err) {
        fprintf(stderr, "# an append on C-%07llu was refused: %s\n", (unsigned long long)c->idx,
                res->errmsg);
        atomic_fetch_add(&gt->g->failed, 1);
    } else {
        if (c->steps[c->pos] == S_ERROR)
            c->error_seq = res->seq;
        if (c->steps[c->pos] == S_NOTE)
            c->note_seq = res->seq;
        c->pos++;
    }
    c->busy = 0;
    gt->inflight--;
    pthread_cond_signal(&gt->cv);
    pthread_mutex_unlock(&gt->mu);
}

static int do_step(gen *g, gcase *c, uint64_t *cmd)
{
    char id[24], name[40], to[40], date[16], until[24], eff[32], a[DK_TIME_LEN], b[DK_TIME_LEN],
        hex[65];
    snprintf(id, sizeof id, "C-%07llu", (unsigned long long)c->idx);
    snprintf(name, sizeof name, "Applicant %llu", (unsigned long long)c->idx);
    const dk_key *cw = g->cw[c->idx % NCW], *sc = g->sc[c->idx % NSC], *author = cw;
    const char *type = NULL, *effp = NULL;
    kv v[12];
    size_t n = 0;
    uint64_t r = mix(c->idx * 977 + (uint64_t)c->pos);
    int step = c->steps[c->pos];
    switch (step) {
    case S_OPEN:
        type = "case.opened";
        date_of(c->idx, 1, date);
        static const char *const types[] = {"asylum", "visa", "work",       "study",
                                            "family", "euss", "citizenship"};
        v[n++] = (kv){"applicant", K_APPLICANT, NULL, 0};
        v[n++] = (kv){"case_type", K_STR, types[r % 7], 0};
        v[n++] = (kv){"channel", K_STR, "online", 0};
        v[n++] = (kv){"received_on", K_STR, date, 0};
        break;
    case S_ASSIGN:
        type = "case.assigned";
        author = sc;
        v[n++] = (kv){"caseworker", K_STR, dk_key_id(cw), 0};
        break;
    case S_VALIDATE:
    case S_UNDER:
        type = "case.status_changed";
        v[n++] = (kv){"reason", K_STR, "checked", 0};
        v[n++] = (kv){"to", K_STR, step == S_VALIDATE ? "validated" : "under_consideration", 0};
        break;
    case S_NOTE:
        type = "note.added";
        v[n++] = (kv){"text", K_STR, "called the applicant about the documents", 0};
        break;
    case S_DOC:
        type = "document.attached";
        v[n++] = (kv){"kind", K_STR, "passport", 0};
        v[n++] = (kv){"sha256", K_STR,
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0};
        v[n++] = (kv){"title", K_STR, "Passport scan", 0};
        break;
    case S_BOOK:
    case S_RESCHEDULE: {
        type = step == S_BOOK ? "interview.booked" : "interview.rescheduled";
        uint64_t slot = atomic_fetch_add(&g->slots, 1);
        int64_t start = 1546300800000000LL + (int64_t)(slot / NIV) * 3600000000LL;
        dk_time_format(start, a);
        dk_time_format(start + 3000000000LL, b);
        char iv[16];
        snprintf(iv, sizeof iv, "iv-%llu", (unsigned long long)(slot % NIV));
        snprintf(to, sizeof to, "%s", iv);
        v[n++] = (kv){"interviewer", K_STR, to, 0}; /* a reschedule may move interviewer too */
        v[n++] = (kv){"location", K_STR, "Croydon", 0};
        v[n++] = (kv){"slot_end", K_STR, b, 0};
        v[n++] = (kv){"slot_start", K_STR, a, 0};
        if (step == S_RESCHEDULE)
            v[n++] = (kv){"reason", K_STR, "interviewer ill", 0};
        break;
    }
    case S_ATTEND:
    case S_NOSHOW:
        type = step == S_ATTEND ? "interview.attended" : "interview.no_show";
        break;
    case S_ERROR:
        type = "error.reported";
        v[n++] = (kv){"by", K_STR, "solicitor", 0};
        v[n++] = (kv){"description", K_STR, "name misspelt", 0};
        break;
    case S_CORRECT:
        type = "status.corrected";
        author = sc;
        snprintf(to, sizeof to, "Applicant %llu-b", (unsigned long long)c->idx);
        v[n++] = (kv){"error_ref", K_U64, NULL, c->error_seq};
        v[n++] = (kv){"field", K_STR, "applicant_name", 0};
        v[n++] = (kv){"from", K_STR, name, 0};
        v[n++] = (kv){"reason", K_STR, "passport", 0};
        v[n++] = (kv){"to", K_STR, to, 0};
        break;
    case S_DECIDE: {
        type = "decision.recorded";
        date_of(c->idx, 2, date);
        snprintf(eff, sizeof eff, "%sT12:00:00Z", date);
        effp = eff;
        snprintf(until, sizeof until, "%04d%s", atoi(date) + 5, date + 4);
        if (r % 10 < 7) {
            static const char *const conds[] = {"permission_to_work",
                                                "no_recourse_to_public_funds,permission_to_work",
                                                "no_permission_to_work", "reporting", ""};
            const char *cond = conds[(r >> 8) % 5];
            v[n++] = (kv){"conditions", K_LIST, cond, 0};
            v[n++] = (kv){"immigration_status", K_STR, "LTR", 0};
            v[n++] = (kv){"no_recourse_to_public_funds", K_BOOL, NULL,
                          strstr(cond, "no_recourse") != NULL}; /* as the conditions say */
            v[n++] = (kv){"outcome", K_STR, "granted", 0};
            v[n++] = (kv){"valid_from", K_STR, date, 0};
            v[n++] = (kv){"valid_until", K_STR, until, 0};
        } else {
            v[n++] = (kv){"outcome", K_STR, "refused", 0};
        }
        v[n++] = (kv){"product_type", K_STR, "WORK", 0};
        v[n++] = (kv){"rationale", K_STR, "assessed against the rules", 0};
        v[n++] = (kv){"rules_version", K_STR, "HC395-2019", 0};
        break;
    }
    case S_CLOSE:
        type = "case.closed";
        v[n++] = (kv){"reason", K_STR, "decision served", 0};
        break;
    case S_REVERT_NOTE: {
        type = "event.reverted";
        uint8_t *raw, h[32];
        size_t len;
        if (dk_ledger_get(g->lg, c->note_seq, &raw, &len) != 0)
            return -1;
        dk_leaf_hash(raw, len, h);
        free(raw);
        dk_hex_encode(h, 32, hex);
        v[n++] = (kv){"reason", K_STR, "wrong case", 0};
        v[n++] = (kv){"reason_code", K_STR, "caseworker_error", 0};
        v[n++] = (kv){"target_hash", K_STR, hex, 0};
        v[n++] = (kv){"target_seq", K_U64, NULL, c->note_seq};
        break;
    }
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_kvs(&pk, v, n, name);
    dk_event ev;
    memset(&ev, 0, sizeof ev);
    ev.v = DK_EVENT_VERSION;
    snprintf(ev.type, sizeof ev.type, "%s", type);
    snprintf(ev.case_id, sizeof ev.case_id, "%s", id);
    snprintf(ev.actor, sizeof ev.actor, "%s", dk_key_id(author));
    ev.at = 1795514400000000 + (int64_t)*cmd;
    for (int i = 0; i < 8; i++)
        ev.cmd[i] = (uint8_t)(*cmd >> (56 - 8 * i)); /* in order, as dk_cmd_new's are */
    memcpy(ev.cmd + 8, "bench-rb", 8);
    (*cmd)++;
    if (effp) {
        ev.has_eff = 1;
        dk_time_parse(effp, &ev.eff);
    }
    ev.data = (const uint8_t *)sb.data;
    ev.data_len = sb.size;
    uint8_t *body;
    size_t blen;
    int rc = dk_event_encode(&ev, &body, &blen);
    msgpack_sbuffer_destroy(&sb);
    if (rc)
        return rc;
    dk_sig sig;
    memset(&sig, 0, sizeof sig);
    snprintf(sig.actor, sizeof sig.actor, "%s", dk_key_id(author));
    dk_sign(author, body, blen, sig.sig);
    dk_append_req req = {body, blen, &sig, 1};
    rc = dk_ledger_submit(g->lg, &req, step_done, c); /* copies the request */
    free(body);
    if (rc)
        fprintf(stderr, "# append of %s on %s refused: %s\n", type, id, dk_errmsg());
    return rc;
}

/* A random one of the thread's active cases with no append in flight, the finished ones
 * dropped on the way; NULL if it met only cases in flight (caller holds gt->mu). With none
 * in flight, NULL means no case is left. */
static gcase *pick(gcase **act, size_t *nact, uint64_t r)
{
    size_t k = *nact ? (size_t)(r % *nact) : 0, seen = 0;
    while (seen < *nact) {
        if (k >= *nact)
            k = 0;
        gcase *c = act[k];
        if (c->busy) {
            k++;
            seen++;
        } else if (c->pos < c->n) {
            return c;
        } else {
            free(c); /* finished */
            act[k] = act[--*nact];
        }
    }
    return NULL;
}

/* Add this thread's case number n to its active cases (only this thread touches act);
 * -1, counted as a failure, if memory runs out. */
static int start_case(gthread *gt, gcase ***act, size_t *nact, size_t *cap, uint64_t n)
{
    gcase *c = NULL;
    if (*nact == *cap) {
        gcase **more = realloc(*act, 2 * *cap * sizeof **act);
        if (more) {
            *act = more;
            *cap *= 2;
        }
    }
    if (*nact == *cap || (c = calloc(1, sizeof *c)) == NULL) {
        atomic_fetch_add(&gt->g->failed, 1);
        return -1;
    }
    c->idx = (uint64_t)gt->t + n * (uint64_t)gt->g->threads;
    c->owner = gt;
    script(c);
    (*act)[(*nact)++] = c;
    return 0;
}

static void *gen_thread(void *p)
{
    gthread *gt = p;
    gen *g = gt->g;
    uint64_t mine = 0; /* cases of this thread: idx % threads == t */
    for (uint64_t i = (uint64_t)gt->t; i < g->cases; i += (uint64_t)g->threads)
        mine++;
    uint64_t per_case = g->events / (g->cases ? g->cases : 1);
    size_t cap = 1024, nact = 0;
    gcase **act = malloc(cap * sizeof *act);
    uint64_t started = 0, done = 0, cmd = ((uint64_t)gt->t << 40) + 1;
    uint64_t r = mix((uint64_t)gt->t + 7);
    while (act && !atomic_load(&g->failed)) {
        if (atomic_fetch_sub(&g->budget, 1) == 0 || atomic_load(&g->budget) > g->events) {
            atomic_store(&g->budget, 0);
            break;
        }
        /* start a case every `per_case` events of this thread, so every case starts */
        if (started < mine && (nact == 0 || done >= started * (per_case ? per_case : 1)) &&
            start_case(gt, &act, &nact, &cap, started++) != 0)
            break;
        r = mix(r);
        pthread_mutex_lock(&gt->mu);
        while (gt->inflight >= FLIGHT)
            pthread_cond_wait(&gt->cv, &gt->mu);
        gcase *c;
        while ((c = pick(act, &nact, r)) == NULL && gt->inflight > 0)
            pthread_cond_wait(&gt->cv, &gt->mu);
        /* none left in hand, each finished before the next was due: start the next now */
        if (c == NULL && started < mine && start_case(gt, &act, &nact, &cap, started++) == 0)
            c = act[nact - 1];
        if (c) {
            c->busy = 1;
            gt->inflight++;
        }
        pthread_mutex_unlock(&gt->mu);
        if (c == NULL)
            break; /* every case of this thread is finished (or memory ran out) */
        if (do_step(g, c, &cmd) != 0) {
            atomic_fetch_add(&g->failed, 1);
            pthread_mutex_lock(&gt->mu);
            c->busy = 0;
            gt->inflight--;
            pthread_mutex_unlock(&gt->mu);
            break;
        }
        done++;
    }
    /* the answers still to come use gt and the cases */
    pthread_mutex_lock(&gt->mu);
    while (gt->inflight > 0)
        pthread_cond_wait(&gt->cv, &gt->mu);
    pthread_mutex_unlock(&gt->mu);
    for (size_t i = 0; act && i < nact; i++)
        free(act[i]);
    free(act);
    return NULL;
}

static int generate(gen *g)
{
    dk_key *admin;
    if (dk_key_generate("admin", &admin) || dk_ledger_init(g->dir, "bench", admin, NULL, &g->lg))
        return -1;
    uint64_t n = 1;
    for (int i = 0; i < NCW; i++) {
        char id[16];
        snprintf(id, sizeof id, "cw-%d", i);
        if (fx_enroll(g->lg, admin, id, "caseworker", n++, &g->cw[i]))
            return -1;
    }
    for (int i = 0; i < NSC; i++) {
        char id[16];
        snprintf(id, sizeof id, "sc-%d", i);
        if (fx_enroll(g->lg, admin, id, "caseworker,senior_caseworker", n++, &g->sc[i]))
            return -1;
    }
    for (int i = 0; i < NIV; i++) { /* interviews are held by enrolled caseworkers */
        char id[16];
        snprintf(id, sizeof id, "iv-%d", i);
        if (fx_enroll_named(g->lg, admin, id, "caseworker", n++))
            return -1;
    }
    char kp[700];
    snprintf(kp, sizeof kp, "%s.admin.key", g->dir);
    if (dk_key_save(admin, kp, "bench") != 0)
        return -1;
    dk_key_free(admin);
    atomic_store(&g->budget, g->events - n);
    pthread_t th[1024];
    gthread gt[1024];
    for (int t = 0; t < g->threads; t++) {
        gt[t] = (gthread){.g = g, .t = t};
        pthread_mutex_init(&gt[t].mu, NULL);
        pthread_cond_init(&gt[t].cv, NULL);
        pthread_create(&th[t], NULL, gen_thread, &gt[t]);
    }
    for (int t = 0; t < g->threads; t++) {
        pthread_join(th[t], NULL);
        pthread_mutex_destroy(&gt[t].mu);
        pthread_cond_destroy(&gt[t].cv);
    }
    for (int i = 0; i < NCW; i++)
        dk_key_free(g->cw[i]);
    for (int i = 0; i < NSC; i++)
        dk_key_free(g->sc[i]);
    dk_ledger_close(g->lg);
    return atomic_load(&g->failed) ? -1 : 0;
}

/* ---- rebuild, in a child process so its peak RSS is its own ---- */

typedef struct rb_result {
    int ok;
    double seconds;
    double cpu_seconds; /* user + system time of the rebuild's threads */
    uint64_t events;
    long maxrss_kb;    /* VmHWM: the peak of this process image's resident set */
    long major_faults; /* pages the rebuild waited for the disk to read */
    long anon_kb, file_kb;
    long peak_anon_kb;
    char view[DK_VIEW_COUNT][24]; /* each view's name and entries after the rebuild */
    uint64_t entries[DK_VIEW_COUNT];
    double views_file_mb; /* the views' data.mdb */
    double written_mb;    /* bytes written by the rebuild (wchar) */
} rb_result;

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char buf[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(buf, sizeof buf, f))
        if (strncmp(buf, field, fl) == 0)
            v = strtol(buf + fl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Sample the process's anonymous RSS (its own memory, not mapped files) every 10 ms. */
static atomic_long peak_anon_kb;
static atomic_int sampling;
static void *sample_anon(void *p)
{
    (void)p;
    while (atomic_load(&sampling)) {
        long a = status_kb("RssAnon:");
        if (a > atomic_load(&peak_anon_kb))
            atomic_store(&peak_anon_kb, a);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void rebuild_child(const char *dir, int fd)
{
    rb_result r;
    memset(&r, 0, sizeof r);
    pthread_t sampler;
    atomic_store(&sampling, 1);
    pthread_create(&sampler, NULL, sample_anon, NULL);
    dk_ledger_opts lo = {0, 0, 1, 0};
    dk_ledger *lg;
    dk_views *vw;
    dk_head h;
    if (dk_ledger_open(dir, &lo, &lg) == 0 && dk_ledger_head(lg, &h) == 0 &&
        dk_views_open(lg, dir, NULL, &vw) == 0) {
        double t0 = now_s(), w0 = written_bytes(), c0 = cpu_s();
        int rc = dk_views_rebuild(vw, NULL);
        r.seconds = now_s() - t0;
        r.cpu_seconds = cpu_s() - c0;
        r.written_mb = (written_bytes() - w0) / (1024.0 * 1024.0);
        r.ok = rc == 0;
        if (rc)
            fprintf(stderr, "# rebuild failed: %s\n", dk_errmsg());
        r.events = h.seq;
        r.anon_kb = status_kb("RssAnon:");
        r.file_kb = status_kb("RssFile:");
        dk_view_status vs[DK_VIEW_COUNT];
        if (r.ok && dk_views_status(vw, vs) == 0)
            for (int i = 0; i < DK_VIEW_COUNT; i++) {
                memcpy(r.view[i], vs[i].name, sizeof r.view[i]);
                r.view[i][sizeof r.view[i] - 1] = 0;
                r.entries[i] = vs[i].entries;
            }
        char path[4200];
        struct stat st;
        snprintf(path, sizeof path, "%s/views/data.mdb", dir);
        if (stat(path, &st) == 0)
            r.views_file_mb = (double)st.st_size / (1024.0 * 1024.0);
        dk_views_close(vw);
        dk_ledger_close(lg);
    }
    atomic_store(&sampling, 0);
    pthread_join(sampler, NULL);
    r.peak_anon_kb = atomic_load(&peak_anon_kb);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it may count the
     * forked generator's pages. At 1M (fresh ledgers, one run each) they read alike:
     * ru_maxrss 634.2 MiB, VmHWM 647.9; but only VmHWM is this image's own. A kernel
     * without it: ru_maxrss. */
    r.maxrss_kb = status_kb("VmHWM:");
    if (r.maxrss_kb < 0)
        r.maxrss_kb = ru.ru_maxrss;
    r.major_faults = ru.ru_majflt;
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(2);
    _exit(0);
}

/* The rebuild runs in a new process image (this program again, `--rebuild-child DIR FD`):
 * a child that was only forked shares the parent's resident pages, and RssAnon counts
 * them, so after --quick's generation it read 53.2 MiB where a fresh process reads 48-49. */
static int run_rebuild(const char *dir, rb_result *r)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", p[1]);
        execl("/proc/self/exe", "bench_rebuild", "--rebuild-child", dir, fd, (char *)NULL);
        rebuild_child(dir, p[1]); /* no /proc: rebuild in the forked child */
    }
    close(p[1]);
    ssize_t got = read(p[0], r, sizeof *r);
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return got == (ssize_t)sizeof *r && r->ok ? 0 : -1;
}

/* ---- projector lag while appending ---- */

typedef struct lag_ctx {
    uv_loop_t loop;
    uv_async_t stop;
    dk_projector *pj;
    double *lags; /* ms, per event applied */
    size_t nlags, cap;
    uint64_t target;
    atomic_int done;
} lag_ctx;

static void on_batch(void *ud, const dk_views_batch *b)
{
    lag_ctx *l = ud;
    for (uint64_t s = b->from_seq; s <= b->to_seq && b->to_seq >= b->from_seq; s++) {
        if (l->nlags == l->cap)
            break;
        l->lags[l->nlags++] = (double)(b->committed_at - b->recorded_at[s - b->from_seq]) / 1000.0;
    }
}

static void on_stop(uv_async_t *h)
{
    lag_ctx *l = h->data;
    dk_projector_stop(l->pj, NULL, NULL);
    uv_close((uv_handle_t *)&l->stop, NULL);
}

static void *loop_thread(void *p)
{
    lag_ctx *l = p;
    uv_run(&l->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void submitted(void *ud, const dk_append_res *res)
{
    atomic_int *failed = ud;
    if (res->err)
        atomic_fetch_add(failed, 1);
}

/* The lag run's appends, paced: this sender submits events i = first, first + step, ...
 * at t0 + i / rate. One sender verifying each event in its own thread fell behind 10,000
 * a second once a verification took 100 µs (8,757 events/s on the second machine). */
#define LAG_SENDERS 2

typedef struct lag_sender {
    dk_ledger *lg;
    fx_event *ev;
    size_t n, first;
    int rate;
    double t0, end;
    atomic_int *failed;
} lag_sender;

static void *lag_send(void *p)
{
    lag_sender *s = p;
    for (size_t i = s->first; i < s->n; i += LAG_SENDERS) {
        double due = s->t0 + (double)i / s->rate;
        double now = now_s();
        if (due > now) {
            struct timespec ts = {0, (long)((due - now) * 1e9)};
            nanosleep(&ts, NULL);
        }
        if (dk_ledger_submit(s->lg, &s->ev[i].req, submitted, s->failed) != 0)
            atomic_fetch_add(s->failed, 1);
    }
    s->end = now_s();
    return NULL;
}

static int bench_lag(const char *dir, double seconds, int rate)
{
    dk_ledger *lg;
    dk_views *vw;
    dk_key *admin, *cw;
    char kp[700], id[32];
    snprintf(kp, sizeof kp, "%s.admin.key", dir);
    if (dk_key_load(kp, "bench", &admin) != 0 || dk_ledger_open(dir, NULL, &lg) != 0)
        return -1;
    dk_head h;
    dk_ledger_head(lg, &h);
    uint64_t base = h.seq * 16; /* command ids unused by earlier runs */
    snprintf(id, sizeof id, "lag-%llu", (unsigned long long)h.seq);
    dk_append_res res;
    if (fx_enroll(lg, admin, id, "caseworker", base++, &cw) != 0)
        return -1;
    enum { LAG_CASES = 100 };
    for (int c = 0; c < LAG_CASES; c++) {
        char cid[40];
        snprintf(cid, sizeof cid, "LAG-%llu-%d", (unsigned long long)h.seq, c);
        if (fx_open_case(lg, cw, cid, base++, NULL, &res) != 0)
            return -1;
    }
    size_t n = (size_t)(seconds * rate);
    fx_event *ev = calloc(n, sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        char cid[40];
        snprintf(cid, sizeof cid, "LAG-%llu-%d", (unsigned long long)h.seq, (int)(i % LAG_CASES));
        if (fx_make(&ev[i], cw, "note.added", cid, base++, NULL, 0, NULL) != 0)
            return -1;
    }
    if (dk_views_open(lg, dir, NULL, &vw) != 0 || dk_views_sync(vw) != 0)
        return -1;
    lag_ctx l;
    memset(&l, 0, sizeof l);
    l.cap = n + 1000;
    l.lags = malloc(l.cap * sizeof *l.lags);
    uv_loop_init(&l.loop);
    uv_async_init(&l.loop, &l.stop, on_stop);
    l.stop.data = &l;
    dk_projector_opts po = {100, 0, on_batch, NULL, &l};
    if (dk_projector_start(&l.loop, vw, lg, dir, &po, &l.pj) != 0)
        return -1;
    pthread_t th;
    pthread_create(&th, NULL, loop_thread, &l);
    atomic_int failed = 0;
    lag_sender snd[LAG_SENDERS];
    pthread_t sth[LAG_SENDERS];
    double t0 = now_s(), sent = 0;
    for (int j = 0; j < LAG_SENDERS; j++) {
        snd[j] = (lag_sender){lg, ev, n, (size_t)j, rate, t0, t0, &failed};
        pthread_create(&sth[j], NULL, lag_send, &snd[j]);
    }
    for (int j = 0; j < LAG_SENDERS; j++) {
        pthread_join(sth[j], NULL);
        if (snd[j].end - t0 > sent)
            sent = snd[j].end - t0;
    }
    dk_ledger_head(lg, &h);
    /* wait until the projector has applied everything (bounded) */
    for (int i = 0; i < 6000; i++) {
        dk_view_status vs[DK_VIEW_COUNT];
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        dk_ledger_head(lg, &h);
        if (l.nlags >= n)
            break;
        (void)vs;
    }
    uv_async_send(&l.stop);
    pthread_join(th, NULL);
    uv_loop_close(&l.loop);
    line("lag_append_rate_eps", (double)n / sent, "events/s");
    if (atomic_load(&failed))
        printf("# %d appends failed\n", atomic_load(&failed));
    qsort(l.lags, l.nlags, sizeof *l.lags, cmp_double);
    if (l.nlags) {
        line("projector_lag_p50_ms", l.lags[l.nlags / 2], "ms");
        printf("projector_lag_p99_ms %.2f ms\n", l.lags[(size_t)((double)(l.nlags - 1) * 0.99)]);
        line("projector_lag_max_ms", l.lags[l.nlags - 1], "ms");
        line("projector_lag_samples", (double)l.nlags, "events");
    }
    free(l.lags);
    for (size_t i = 0; i < n; i++)
        fx_free(&ev[i]);
    free(ev);
    dk_views_close(vw);
    dk_ledger_close(lg);
    dk_key_free(cw);
    dk_key_free(admin);
    return 0;
}

/* The ledger made in a temporary directory (no --ledger) is removed at exit, by the
 * process that made it: 670 MB a --quick run were left behind in $TMPDIR (helper-79). */
static char made_root[512];
static pid_t made_by;

static void remove_made(void)
{
    if (made_root[0] && getpid() == made_by)
        th_rm_tree(made_root);
}

int main(int argc, char **argv)
{
    uint64_t events = 1000000, cases = 200000;
    const char *keep = NULL;
    double lag_seconds = 10;
    int quick = 0, no_lag = 0, no_rebuild = 0;
    if (argc == 4 && strcmp(argv[1], "--rebuild-child") == 0)
        rebuild_child(argv[2], atoi(argv[3])); /* run_rebuild's child: does not return */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            events = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cases") == 0 && i + 1 < argc)
            cases = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--ledger") == 0 && i + 1 < argc)
            keep = argv[++i];
        else if (strcmp(argv[i], "--no-lag") == 0)
            no_lag = 1;
        else if (strcmp(argv[i], "--no-rebuild") == 0)
            no_rebuild = 1;
        else if (strcmp(argv[i], "--lag-seconds") == 0 && i + 1 < argc)
            lag_seconds = strtod(argv[++i], NULL);
        else {
            fprintf(stderr, "usage: bench_rebuild [--quick] [--events N] [--cases N] "
                            "[--ledger DIR] [--lag-seconds S] [--no-lag] [--no-rebuild]\n");
            return 2;
        }
    }
    if (quick) {
        events = 1000000;
        lag_seconds = 5;
    }
    if (dk_init() != 0)
        return 1;
    char tmp[512];
    const char *dir = keep;
    if (dir == NULL) {
        snprintf(tmp, sizeof tmp, "%s/docket-bench-rebuild-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (mkdtemp(tmp) == NULL)
            return 1;
        snprintf(made_root, sizeof made_root, "%s", tmp);
        made_by = getpid();
        atexit(remove_made);
        snprintf(tmp + strlen(tmp), sizeof tmp - strlen(tmp), "/ledger");
        dir = tmp;
    }
    printf("# docket bench/rebuild: %llu events over up to %llu cases, ledger in %s\n",
           (unsigned long long)events, (unsigned long long)cases, dir);
    struct stat st;
    char data[600];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    if (stat(data, &st) != 0) {
        gen g;
        memset(&g, 0, sizeof g);
        g.dir = dir;
        g.events = events;
        g.cases = cases;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        g.threads = getenv("BENCH_GEN_THREADS") ? atoi(getenv("BENCH_GEN_THREADS"))
                    : cores < 1                 ? 1
                                                : (int)cores;
        if (g.threads < 1 || g.threads > 1024) {
            fprintf(stderr, "BENCH_GEN_THREADS must be 1..1024\n");
            return 2;
        }
        double t0 = now_s();
        if (generate(&g) != 0) {
            fprintf(stderr, "# generating the ledger failed: %s\n", dk_errmsg());
            return 1;
        }
        line("generate_seconds", now_s() - t0, "s");
    } else {
        printf("# reusing the ledger in %s\n", dir);
    }
    rb_result r;
    if (no_rebuild) {
        /* only the lag run */
    } else if (run_rebuild(dir, &r) != 0) {
        fprintf(stderr, "# rebuild failed\n");
        return 1;
    }
    if (!no_rebuild) {
        line("ledger_events", (double)r.events, "events");
        line("rebuild_seconds", r.seconds, "s");
        line("rebuild_eps", (double)r.events / r.seconds, "events/s");
        line("rebuild_cpu_ms", r.cpu_seconds * 1000.0, "ms");
        line("rebuild_peak_rss_mb", (double)r.maxrss_kb / 1024.0, "MiB");
        line("rebuild_peak_rss_anon_mb", (double)r.peak_anon_kb / 1024.0, "MiB");
        line("rebuild_end_rss_anon_mb", (double)r.anon_kb / 1024.0, "MiB");
        line("rebuild_end_rss_file_mb", (double)r.file_kb / 1024.0, "MiB");
        line("rebuild_major_faults", (double)r.major_faults, "pages");
        for (int i = 0; i < DK_VIEW_COUNT; i++) {
            char name[64];
            snprintf(name, sizeof name, "view_%s_entries",
                     r.view[i][0] == '_' ? r.view[i] + 1 : r.view[i]);
            if (r.view[i][0])
                line(name, (double)r.entries[i], "entries");
        }
        line("views_file_mb", r.views_file_mb, "MiB");
        line("rebuild_written_mb", r.written_mb, "MiB");
    }
    if (!no_lag && bench_lag(dir, lag_seconds, 10000) != 0) {
        fprintf(stderr, "# the lag benchmark failed: %s\n", dk_errmsg());
        return 1;
    }
    return 0;
}
