/* bulk.c - a long rebuild's first phase: a scanner thread checks the hash chain and finds
 * the cases, a folder thread folds each case once, the caller writes them in transactions. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "views_int.h"

#define QUEUE_CASES    8192
#define CASES_PER_STEP 4096
#define STEP_SECONDS   0.5   /* a step waits this long at most for its cases */
#define SCAN_SNAPSHOT  65536 /* records per ledger snapshot, so no read is held for long */

typedef struct result {
    uint8_t *blob;
    size_t len;
} result;

struct bulk {
    pthread_t th, folder;
    int folder_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dk_ledger *lg;
    uint64_t head; /* the scan's end: cases are folded up to here */
    uint8_t hash[DK_HASH_BYTES];
    char (*q)[DK_CASE_MAX + 1]; /* cases found, to fold */
    size_t qhead, qn;
    result *r; /* cases folded, to write */
    size_t rhead, rn;
    int done, folded, stop, err;
    char errmsg[256];
};

static void fail_scan(bulk *k, int err)
{
    pthread_mutex_lock(&k->mu);
    k->err = err;
    snprintf(k->errmsg, sizeof k->errmsg, "%s", dk_errmsg());
    pthread_mutex_unlock(&k->mu);
}

static int push(bulk *k, const char *case_id)
{
    pthread_mutex_lock(&k->mu);
    while (k->qn == QUEUE_CASES && !k->stop)
        pthread_cond_wait(&k->cv, &k->mu);
    int stop = k->stop;
    if (!stop) {
        snprintf(k->q[(k->qhead + k->qn) % QUEUE_CASES], DK_CASE_MAX + 1, "%s", case_id);
        k->qn++;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return stop;
}

/* A msgpack string at *p (fixstr or str8); its bytes and length. */
static int mp_str(const uint8_t **p, const uint8_t *end, const uint8_t **s, size_t *n)
{
    if (*p >= end)
        return -1;
    uint8_t c = **p;
    if ((c & 0xe0) == 0xa0) {
        *n = c & 0x1f;
        (*p)++;
    } else if (c == 0xd9 && *p + 1 < end) {
        *n = (*p)[1];
        *p += 2;
    } else {
        return -1;
    }
    if (*p + *n > end)
        return -1;
    *s = *p;
    *p += *n;
    return 0;
}

/* The type and case of a body, read straight from its canonical encoding (keys v,
 * type, case first). The folder decodes every case event in full. -1 if the body does
 * not start as a canonical one does. */
static int type_and_case(const uint8_t *b, size_t len, char type[DK_TYPE_MAX + 1],
                         char case_id[DK_CASE_MAX + 1])
{
    const uint8_t *p = b, *end = b + len, *s;
    size_t n;
    if (len < 4 || (p[0] & 0xf0) != 0x80 || p[1] != 0xa1 || p[2] != 'v' || p[3] > 0x7f)
        return -1;
    p += 4;
    if (mp_str(&p, end, &s, &n) || n != 4 || memcmp(s, "type", 4) != 0 || mp_str(&p, end, &s, &n) ||
        n > DK_TYPE_MAX)
        return -1;
    memcpy(type, s, n);
    type[n] = 0;
    if (mp_str(&p, end, &s, &n) || n != 4 || memcmp(s, "case", 4) != 0 || mp_str(&p, end, &s, &n) ||
        n > DK_CASE_MAX)
        return -1;
    memcpy(case_id, s, n);
    case_id[n] = 0;
    return 0;
}

/* Is `seq` the case's first record? (A case's first record is its case.opened.) */
static int first_of_case(dk_ledger *lg, const char *case_id, uint64_t seq, int *first)
{
    dk_iter *it;
    dk_record r;
    int rc = dk_iter_open(lg, 1, case_id, &it);
    if (rc)
        return rc;
    rc = dk_iter_next(it, &r);
    *first = rc == 0 && r.seq == seq;
    dk_iter_close(it);
    return rc == DK_ENOTFOUND ? 0 : rc;
}

static void *scan(void *p)
{
    bulk *k = p;
    pthread_setname_np(pthread_self(), "dk-views-scan");
    uint8_t prev[DK_HASH_BYTES];
    memset(prev, 0, sizeof prev);
    uint64_t seq = 1;
    int rc = 0;
    while (rc == 0 && seq <= k->head && !k->stop) {
        dk_iter *it;
        if ((rc = dk_iter_open(k->lg, seq, NULL, &it)) != 0)
            break;
        for (unsigned n = 0; rc == 0 && n < SCAN_SNAPSHOT && seq <= k->head; n++) {
            dk_record rec;
            dk_event ev;
            if ((rc = dk_iter_next(it, &rec)) != 0) {
                if (rc == DK_ENOTFOUND)
                    rc = dk_fail(DK_ECORRUPT, "views: the ledger ends before record %llu",
                                 (unsigned long long)seq);
                break;
            }
            if (rec.seq != seq)
                rc = dk_fail(DK_ECORRUPT, "views: expected record %llu, the ledger gave %llu",
                             (unsigned long long)seq, (unsigned long long)rec.seq);
            else if (memcmp(rec.prev, prev, DK_HASH_BYTES) != 0)
                rc = dk_fail(DK_ECORRUPT,
                             "views: record %llu does not chain: its prev is not the hash of "
                             "record %llu",
                             (unsigned long long)seq, (unsigned long long)seq - 1);
            else if (type_and_case(rec.body, rec.body_len, ev.type, ev.case_id) != 0 &&
                     dk_event_decode_stored(rec.body, rec.body_len, &ev) != 0)
                rc = dk_fail(DK_ECORRUPT, "views: record %llu's body does not decode: %s",
                             (unsigned long long)seq, dk_errmsg());
            if (rc)
                break;
            dk_leaf_hash(rec.raw, rec.raw_len, prev);
            if (strcmp(ev.type, "case.opened") == 0) {
                int first = 0;
                if ((rc = first_of_case(k->lg, ev.case_id, seq, &first)) != 0)
                    break;
                if (first && push(k, ev.case_id))
                    break; /* stopped */
            }
            seq++;
        }
        dk_iter_close(it);
    }
    if (rc)
        fail_scan(k, rc);
    pthread_mutex_lock(&k->mu);
    memcpy(k->hash, prev, DK_HASH_BYTES);
    k->done = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* The folder thread: cases found -> their entries. */
static void *fold_cases(void *p)
{
    bulk *k = p;
    pthread_setname_np(pthread_self(), "dk-views-fold");
    char id[DK_CASE_MAX + 1];
    for (;;) {
        pthread_mutex_lock(&k->mu);
        while (k->qn == 0 && !k->done && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop || k->qn == 0) {
            pthread_mutex_unlock(&k->mu);
            break;
        }
        memcpy(id, k->q[k->qhead], DK_CASE_MAX + 1);
        k->qhead = (k->qhead + 1) % QUEUE_CASES;
        k->qn--;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        result res = {NULL, 0};
        int rc = dk__bulk_compute(k->lg, id, k->head, &res.blob, &res.len);
        if (rc) {
            fail_scan(k, rc);
            break;
        }
        pthread_mutex_lock(&k->mu);
        while (k->rn == QUEUE_CASES && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->stop) {
            pthread_mutex_unlock(&k->mu);
            free(res.blob);
            break;
        }
        k->r[(k->rhead + k->rn) % QUEUE_CASES] = res;
        k->rn++;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
    }
    pthread_mutex_lock(&k->mu);
    k->folded = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int dk__bulk_start(dk_views *vw, uint64_t head)
{
    bulk *k = calloc(1, sizeof *k);
    if (k == NULL || (k->q = malloc(QUEUE_CASES * sizeof *k->q)) == NULL ||
        (k->r = malloc(QUEUE_CASES * sizeof *k->r)) == NULL) {
        if (k)
            free(k->q);
        free(k);
        return dk_fail(DK_ENOMEM, "out of memory");
    }
    k->lg = vw->lg;
    k->head = head;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    if (pthread_create(&k->th, NULL, scan, k) != 0) {
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        free(k->q);
        free(k->r);
        free(k);
        return dk_fail(DK_EIO, "views: cannot start the rebuild's scanner thread");
    }
    vw->bulk = k;
    if (pthread_create(&k->folder, NULL, fold_cases, k) != 0) {
        dk__bulk_stop(vw);
        return dk_fail(DK_EIO, "views: cannot start the rebuild's folder thread");
    }
    k->folder_started = 1;
    return 0;
}

void dk__bulk_stop(dk_views *vw)
{
    bulk *k = vw->bulk;
    if (k == NULL)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->th, NULL);
    if (k->folder_started)
        pthread_join(k->folder, NULL);
    for (size_t i = 0; i < k->rn; i++)
        free(k->r[(k->rhead + i) % QUEUE_CASES].blob);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k->q);
    free(k->r);
    free(k);
    vw->bulk = NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Has the folder finished, or failed, or been stopped? */
static int folder_done(bulk *k)
{
    pthread_mutex_lock(&k->mu);
    int done = k->folded || k->err || k->stop;
    pthread_mutex_unlock(&k->mu);
    return done;
}

/* Take the next folded case; 0 if there is none yet (or any more). */
static int pop(bulk *k, result *out, int wait)
{
    int got = 0;
    pthread_mutex_lock(&k->mu);
    if (k->rn == 0 && !k->folded && wait) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    }
    if (k->rn > 0) {
        *out = k->r[k->rhead];
        k->rhead = (k->rhead + 1) % QUEUE_CASES;
        k->rn--;
        got = 1;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return got;
}

int dk__bulk_step(dk_views *vw, MDB_txn *txn, vset *bs, int *finished)
{
    bulk *k = vw->bulk;
    result res;
    int rc = 0;
    *finished = 0;
    dk__ov_reset(&vw->ov);
    /* Fill the step before writing it: a step is a transaction, and each rewrites the
     * pages it touches in the views keyed by status, caseworker, day or month. */
    double t0 = now_s();
    for (size_t n = 0; rc == 0 && n < CASES_PER_STEP && now_s() - t0 < STEP_SECONDS;) {
        if (pop(k, &res, 1)) {
            rc = dk__bulk_merge(&vw->ov, res.blob, res.len);
            free(res.blob);
            n++;
        } else if (folder_done(k)) {
            break;
        }
    }
    if (rc == 0)
        rc = dk__flush(vw, txn, bs, &vw->ov);
    dk__ov_reset(&vw->ov);
    if (rc)
        return rc;
    pthread_mutex_lock(&k->mu);
    if (k->err) {
        rc = dk_fail(k->err, "%s", k->errmsg);
    } else if (k->done && k->folded && k->qn == 0 && k->rn == 0) {
        *finished = 1;
        bs->seq = k->head;
        memcpy(bs->hash, k->hash, DK_HASH_BYTES);
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}
