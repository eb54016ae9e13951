/* drive_docket.c - bench/compare's docket side: ingests the workload (blocking appends, then
 * asynchronous submits), then reads histories, as-of states, and rebuilds every case. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fixture.h"

typedef struct client {
    dk_ledger *lg;
    const cmp_workload *w;
} client;

/* One durable, verified, checked append; returns once it is acknowledged. */
static int append_one(void *p, const cmp_event *e, char *err, size_t errcap)
{
    client *c = p;
    dk_sig sig;
    memset(&sig, 0, sizeof sig);
    snprintf(sig.actor, sizeof sig.actor, "%s", c->w->actors[e->actor].id);
    memcpy(sig.sig, e->sig, DK_SIG_BYTES);
    dk_append_req req = {e->body, e->body_len, &sig, 1};
    dk_append_res res;
    int rc = dk_ledger_append(c->lg, &req, &res);
    if (rc != 0 || res.duplicate) {
        snprintf(err, errcap, "append refused (%s): %s", rc ? dk_err_name(rc) : "duplicate",
                 res.errmsg);
        return -1;
    }
    return 0;
}

static void ingest(const char *tag, const cmp_workload *w, dk_ledger *lg, size_t from, size_t to,
                   int nclients)
{
    client c = {lg, w};
    void **cl = malloc((size_t)nclients * sizeof *cl);
    if (cl == NULL)
        cmp_die("out of memory");
    for (int k = 0; k < nclients; k++)
        cl[k] = &c;
    cmp_ingest_stats st;
    char err[DK_ERRMSG_MAX + 64];
    if (cmp_run_clients(w, from, to, nclients, cl, append_one, &st, err, sizeof err) != 0)
        cmp_die("ingest %s: %s", tag, err);
    free(cl);
    if (st.n)
        cmp_print_ingest(tag, &st);
}

/* The bulk load through docket's asynchronous API: `nsub` submitter threads
 * keep up to `window` appends in flight with dk_ledger_submit, and a case's
 * next event goes in once its previous one is acknowledged (from the writer's
 * callback), so every expected version holds while group commits fill up. */
typedef struct bulk {
    const cmp_workload *w;
    dk_ledger *lg;
    size_t from, n, window;
    size_t *next;   /* next[j]: the index (from `from`) of the case's next event, or SIZE_MAX */
    size_t *firsts; /* events that start their case within the range, in file order */
    size_t nfirsts, fi;
    size_t *ready; /* ring of events whose predecessor is acknowledged */
    size_t rhead, rn;
    size_t inflight, done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int failed;
    char err[DK_ERRMSG_MAX + 64];
} bulk;

typedef struct bulk_item {
    bulk *b;
    size_t j;
} bulk_item;

static void bulk_acked(void *udata, const dk_append_res *res)
{
    bulk_item *it = udata;
    bulk *b = it->b;
    pthread_mutex_lock(&b->mu);
    if ((res->err || res->duplicate) && !b->failed) {
        snprintf(b->err, sizeof b->err, "event %zu refused (%s): %s", b->from + it->j,
                 res->err ? dk_err_name(res->err) : "duplicate", res->errmsg);
        b->failed = 1;
    } else if (b->next[it->j] != SIZE_MAX) {
        b->ready[(b->rhead + b->rn++) % b->window] = b->next[it->j];
    }
    b->done++;
    b->inflight--;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void *bulk_submitter(void *p)
{
    bulk_item *items = p;
    bulk *b = items[0].b;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->failed && b->done < b->n &&
               (b->inflight >= b->window || (b->rn == 0 && b->fi == b->nfirsts)))
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->failed || b->done == b->n)
            break;
        size_t j;
        if (b->rn > 0) {
            j = b->ready[b->rhead];
            b->rhead = (b->rhead + 1) % b->window;
            b->rn--;
        } else {
            j = b->firsts[b->fi++];
        }
        b->inflight++;
        pthread_mutex_unlock(&b->mu);
        const cmp_event *e = &b->w->ev[b->from + j];
        dk_sig sig;
        memset(&sig, 0, sizeof sig);
        snprintf(sig.actor, sizeof sig.actor, "%s", b->w->actors[e->actor].id);
        memcpy(sig.sig, e->sig, DK_SIG_BYTES);
        dk_append_req req = {e->body, e->body_len, &sig, 1};
        int rc = dk_ledger_submit(b->lg, &req, bulk_acked, &items[j]);
        pthread_mutex_lock(&b->mu);
        if (rc != 0) { /* refused before queueing: the callback never runs */
            if (!b->failed)
                snprintf(b->err, sizeof b->err, "event %zu refused (%s): %s", b->from + j,
                         dk_err_name(rc), dk_errmsg());
            b->failed = 1;
            b->inflight--;
            pthread_cond_broadcast(&b->cv);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void bulk_load(const cmp_workload *w, dk_ledger *lg, size_t from, size_t to)
{
    if (from >= to)
        return;
    bulk b;
    memset(&b, 0, sizeof b);
    b.w = w;
    b.lg = lg;
    b.from = from;
    b.n = to - from;
    b.window = 4096;
    b.next = malloc(b.n * sizeof *b.next);
    b.firsts = malloc(b.n * sizeof *b.firsts);
    b.ready = malloc(b.window * sizeof *b.ready);
    size_t *last = malloc(w->ncases * sizeof *last);
    bulk_item *items = malloc(b.n * sizeof *items);
    if (!b.next || !b.firsts || !b.ready || !last || !items)
        cmp_die("out of memory");
    for (size_t c = 0; c < w->ncases; c++)
        last[c] = SIZE_MAX;
    for (size_t j = 0; j < b.n; j++) {
        uint32_t c = w->ev[from + j].case_no;
        b.next[j] = SIZE_MAX;
        if (last[c] == SIZE_MAX)
            b.firsts[b.nfirsts++] = j;
        else
            b.next[last[c]] = j;
        last[c] = j;
        items[j] = (bulk_item){&b, j};
    }
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    int nsub = cmp_cores();
    pthread_t th[64];
    if (nsub > 64)
        nsub = 64;
    double t0 = cmp_now(), c0 = cmp_cpu_s();
    for (int k = 0; k < nsub; k++)
        if (pthread_create(&th[k], NULL, bulk_submitter, items) != 0)
            cmp_die("cannot start a submitter thread");
    for (int k = 0; k < nsub; k++)
        pthread_join(th[k], NULL);
    pthread_mutex_lock(&b.mu); /* callbacks of refused appends may still be running */
    while (b.inflight > 0)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);
    double el = cmp_now() - t0;
    if (b.failed)
        cmp_die("bulk: %s", b.err);
    printf("# bulk: %zu events in %.2f s through dk_ledger_submit, %zu in flight at most, this "
           "process used %.2f cores\n",
           b.n, el, b.window, (cmp_cpu_s() - c0) / el);
    cmp_line("ingest_bulk_eps", (double)b.n / el, "events/s");
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    free(b.next);
    free(b.firsts);
    free(b.ready);
    free(last);
    free(items);
}

/* The case's records with recorded_at <= t, folded: the state "as of t".
 * The case index is in seq order and recorded_at grows with seq, so the scan
 * stops at the first later record. */
static int asof_state(dk_ledger *lg, const char *case_id, int64_t t, dk_record **buf, size_t *cap,
                      dk_case_state *st)
{
    dk_iter *it;
    dk_record rec;
    size_t n = 0;
    int rc = dk_iter_open(lg, 0, case_id, &it);
    if (rc)
        return rc;
    while ((rc = dk_iter_next(it, &rec)) == 0 && rec.recorded_at <= t) {
        if (n == *cap) {
            dk_record *more = realloc(*buf, 2 * *cap * sizeof *more);
            if (more == NULL) {
                dk_iter_close(it);
                return DK_ENOMEM;
            }
            *buf = more;
            *cap *= 2;
        }
        (*buf)[n++] = rec; /* borrowed from the iterator's snapshot until close */
    }
    if (rc == 0 || rc == DK_ENOTFOUND) {
        uint64_t bad = 0;
        rc = dk_case_fold(*buf, n, st, NULL, NULL, &bad);
    }
    dk_iter_close(it);
    return rc;
}

/* Command ids of the driver's own appends (fixture.h makes their `at` from it: the
 * fixture's epoch plus this many microseconds, well within the years a new event may
 * carry; 2^62 was past 9999 and every enrolment was refused). */
#define CMD_SEED (1ull << 40)

/* A new ledger, the workload's actors enrolled by its administrator, then the
 * ingest: one client, N clients, then the rest through the asynchronous API. */
static void ingest_all(const cmp_opts *o, const cmp_workload *w, const char *dir, dk_key **admin,
                       dk_ledger **lgp, dk_head *head)
{
    if (dk_key_generate("admin", admin) != 0 || dk_ledger_init(dir, "compare", *admin, NULL, lgp))
        cmp_die("cannot create the ledger in %s: %s", dir, dk_errmsg());
    dk_ledger *lg = *lgp;
    for (uint32_t a = 0; a < w->nactors; a++) {
        dk_append_res res;
        const char *roles =
            w->actors[a].roles & DK_ROLE_SENIOR_CASEWORKER ? "senior_caseworker" : "caseworker";
        if (fx_actor_event(lg, *admin, "actor.enrolled", w->actors[a].id, w->actors[a].pk, roles,
                           CMD_SEED + a, &res) != 0)
            cmp_die("cannot enrol %s: %s", w->actors[a].id, dk_errmsg());
    }
    for (uint32_t i = 0; i < CMP_NINTERVIEWERS; i++) { /* the interviewers the workload books */
        char id[16];
        snprintf(id, sizeof id, "iv.%03u", i);
        if (fx_enroll_named(lg, *admin, id, "caseworker", CMD_SEED + 2000 + i) != 0)
            cmp_die("cannot enrol %s: %s", id, dk_errmsg());
    }
    dk_head head0;
    if (dk_ledger_head(lg, &head0) != 0)
        cmp_die("cannot read the head: %s", dk_errmsg());

    /* Ingest: one client, N clients, then the rest in bulk. */
    size_t n1 = o->n_c1 < w->nevents ? o->n_c1 : w->nevents;
    size_t n2 = n1 + o->n_cn < w->nevents ? n1 + o->n_cn : w->nevents;
    char tag[32];
    ingest("c1", w, lg, 0, n1, 1);
    snprintf(tag, sizeof tag, "c%d", o->clients);
    ingest(tag, w, lg, n1, n2, o->clients);
    bulk_load(w, lg, n2, w->nevents);
    if (dk_ledger_head(lg, head) != 0)
        cmp_die("cannot read the head: %s", dk_errmsg());
    if (head->seq != head0.seq + w->nevents)
        cmp_die("the ledger holds %llu records, expected %llu", (unsigned long long)head->seq,
                (unsigned long long)(head0.seq + w->nevents));
}

/* After the run: a forged signature and a stale expected version are refused. */
static void guarantees(dk_ledger *lg, const cmp_workload *w, const dk_key *admin)
{
    dk_sig bad;
    dk_append_res res;
    memset(&bad, 0, sizeof bad);
    snprintf(bad.actor, sizeof bad.actor, "%s", w->actors[w->ev[0].actor].id);
    memcpy(bad.sig, w->ev[0].sig, DK_SIG_BYTES);
    bad.sig[7] ^= 1;
    dk_append_req req = {w->ev[0].body, w->ev[0].body_len, &bad, 1};
    int rc = dk_ledger_append(lg, &req, &res);
    cmp_line("guarantee_bad_signature_refused", rc == DK_EBADSIG, "bool");
    dk_key *probe = NULL;
    if (fx_enroll(lg, admin, "bench.probe", "caseworker", CMD_SEED + 1000, &probe) != 0)
        cmp_die("cannot enrol the probe: %s", dk_errmsg());
    char case0[32];
    cmp_case_id(w->ev[0].case_no, case0);
    uint64_t stale = 0;
    rc = fx_append(lg, probe, "note.added", case0, CMD_SEED + 1001, &stale, &res);
    cmp_line("guarantee_stale_version_refused", rc == DK_ECONFLICT, "bool");
    dk_key_free(probe);
}

/* History: every record of one case, oldest first. */
static void history(const cmp_workload *w, dk_ledger *lg, size_t nq)
{
    uint32_t *qc = malloc(nq * sizeof *qc);
    double *lat = malloc(nq * sizeof *lat);
    if (!qc || !lat)
        cmp_die("out of memory");
    cmp_plan_history(w, nq, qc);
    uint64_t records = 0, bytes = 0;
    double t0 = cmp_now();
    for (size_t q = 0; q < nq; q++) {
        char case_id[32];
        cmp_case_id(qc[q], case_id);
        double s = cmp_now();
        dk_iter *it;
        dk_record rec;
        size_t n = 0;
        int rc = dk_iter_open(lg, 0, case_id, &it);
        while (rc == 0 && (rc = dk_iter_next(it, &rec)) == 0) {
            n++;
            bytes += rec.body_len;
        }
        dk_iter_close(it);
        lat[q] = (cmp_now() - s) * 1e6;
        if (rc != DK_ENOTFOUND)
            cmp_die("history of %s: %s", case_id, dk_errmsg());
        if (n != w->case_count[qc[q]])
            cmp_die("history of %s: %zu records, expected %u", case_id, n, w->case_count[qc[q]]);
        records += n;
    }
    cmp_report_reads("history", nq, cmp_now() - t0, lat, records * 1000003 + bytes);
    free(qc);
    free(lat);
}

/* As-of: the state of a case as of the moment its k-th event was recorded. */
static void asof(const cmp_workload *w, dk_ledger *lg, size_t nq)
{
    uint32_t *qc = malloc(nq * sizeof *qc), *qk = malloc(nq * sizeof *qk);
    int64_t *qt = malloc(nq * sizeof *qt);
    double *lat = malloc(nq * sizeof *lat);
    size_t cap = 64;
    dk_record *buf = malloc(cap * sizeof *buf);
    if (!qc || !qk || !qt || !lat || !buf)
        cmp_die("out of memory");
    cmp_plan_asof(w, nq, qc, qk);
    for (size_t q = 0; q < nq; q++) { /* untimed: each query's time */
        char case_id[32];
        cmp_case_id(qc[q], case_id);
        dk_iter *it;
        dk_record rec;
        int rc = dk_iter_open(lg, 0, case_id, &it);
        for (uint32_t j = 0; rc == 0 && j <= qk[q]; j++)
            rc = dk_iter_next(it, &rec);
        if (rc)
            cmp_die("as-of setup for %s: %s", case_id, dk_errmsg());
        qt[q] = rec.recorded_at;
        dk_iter_close(it);
    }
    uint64_t digest = 0;
    double t0 = cmp_now();
    for (size_t q = 0; q < nq; q++) {
        char case_id[32];
        dk_case_state st;
        cmp_case_id(qc[q], case_id);
        double s = cmp_now();
        int rc = asof_state(lg, case_id, qt[q], &buf, &cap, &st);
        lat[q] = (cmp_now() - s) * 1e6;
        if (rc)
            cmp_die("as-of %s: %s", case_id, dk_errmsg());
        if (st.version != qk[q] + 1)
            cmp_die("as-of %s: version %llu, expected %u", case_id, (unsigned long long)st.version,
                    qk[q] + 1);
        digest += cmp_state_digest(case_id, &st);
    }
    cmp_report_reads("asof", nq, cmp_now() - t0, lat, digest);
    free(qc);
    free(qk);
    free(qt);
    free(lat);
    free(buf);
}

/* Rebuild: one pass over the log, every case folded into a status table. */
static void rebuild(const cmp_workload *w, dk_ledger *lg)
{
    cmp_table *tab = cmp_table_new(w->ncases);
    if (tab == NULL)
        cmp_die("out of memory");
    char err[DK_ERRMSG_MAX + 64];
    dk_iter *it;
    dk_record rec;
    double t0 = cmp_now();
    int rc = dk_iter_open(lg, 1, NULL, &it);
    while (rc == 0 && (rc = dk_iter_next(it, &rec)) == 0)
        if (cmp_table_apply(tab, rec.seq, rec.recorded_at, rec.body, rec.body_len, err,
                            sizeof err) != 0)
            cmp_die("rebuild: %s", err);
    dk_iter_close(it);
    double el = cmp_now() - t0;
    if (rc != DK_ENOTFOUND)
        cmp_die("rebuild: %s", dk_errmsg());
    cmp_report_rebuild(w, tab, el);
    cmp_table_free(tab);
}

int main(int argc, char **argv)
{
    cmp_opts o;
    cmp_workload w;
    cmp_opts_parse(argc, argv, &o);
    if (o.dir == NULL)
        cmp_die("--dir DIR is required");
    cmp_workload_open(o.workload, &w);
    if (dk_init() != 0)
        cmp_die("cannot initialise libdocket");
    printf("# docket: %llu events, %llu cases, ledger in %s/ledger\n",
           (unsigned long long)w.nevents, (unsigned long long)w.ncases, o.dir);

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ledger", o.dir);
    dk_key *admin = NULL;
    dk_ledger *lg = NULL;
    dk_head head;
    if (o.reads_only) { /* profiling the reads: the ledger a previous run left */
        if (dk_ledger_open(dir, NULL, &lg) != 0 || dk_ledger_head(lg, &head) != 0)
            cmp_die("cannot open the ledger in %s: %s", dir, dk_errmsg());
    } else {
        ingest_all(&o, &w, dir, &admin, &lg, &head);
    }
    if (cmp_phase(&o, "history"))
        history(&w, lg, o.queries);
    if (cmp_phase(&o, "asof"))
        asof(&w, lg, o.queries);
    if (cmp_phase(&o, "rebuild"))
        rebuild(&w, lg);

    /* The guarantees are live: a forged signature and a stale version are refused. */
    if (admin != NULL)
        guarantees(lg, &w, admin);
    dk_ledger_close(lg);
    dk_key_free(admin);
    uint64_t bytes = cmp_dir_bytes(dir);
    printf("# disk: %llu bytes in %s (data.mdb + lock.mdb)\n", (unsigned long long)bytes, dir);
    cmp_line("disk_bytes_per_event", (double)bytes / (double)w.nevents, "bytes");
    cmp_workload_close(&w);
    return 0;
}
