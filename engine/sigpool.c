/* sigpool.c - verify's parallel signature checks: the walk queues batches of
 * (key, body, signature) jobs, worker threads check them, the lowest failing seq wins. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "sigpool.h"

#define BATCH 512

typedef struct sig_job {
    uint64_t seq;
    uint8_t key[DK_PUBKEY_BYTES];
    const uint8_t *body; /* borrowed from the walk's read snapshot */
    size_t len;
    uint8_t sig[64];
    char actor[DK_ACTOR_MAX + 1];
} sig_job;

typedef struct sig_batch {
    struct sig_batch *next;
    size_t n;
    sig_job jobs[BATCH];
} sig_batch;

struct dk__sigpool {
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    sig_batch *head, *tail, *filling;
    int queued, busy, stop, nthreads;
    pthread_t *threads;
    uint64_t bad_seq; /* lowest failing seq, 0 if none */
    char bad_actor[DK_ACTOR_MAX + 1];
    uint64_t checked;
};

static void run(dk__sigpool *p, sig_batch *b)
{
    uint64_t bad = 0;
    const char *who = NULL;
    for (size_t i = 0; i < b->n; i++) {
        const sig_job *j = &b->jobs[i];
        if ((bad == 0 || j->seq < bad) && dk_verify(j->key, j->body, j->len, j->sig) != 0) {
            bad = j->seq;
            who = j->actor;
        }
    }
    pthread_mutex_lock(&p->mu);
    p->checked += b->n;
    if (bad && (p->bad_seq == 0 || bad < p->bad_seq)) {
        p->bad_seq = bad;
        snprintf(p->bad_actor, sizeof p->bad_actor, "%s", who);
    }
    pthread_mutex_unlock(&p->mu);
    free(b);
}

static void *worker(void *arg)
{
    dk__sigpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->head == NULL)
            break;
        sig_batch *b = p->head;
        p->head = b->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        run(p, b);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (p->head == NULL && p->busy == 0)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int dk__sigpool_open(int jobs, dk__sigpool **out)
{
    dk__sigpool *p = calloc(1, sizeof *p);
    *out = NULL;
    if (p == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    /* The walking thread checks batches too when the queue is long, so
     * jobs - 1 workers keep `jobs` cores busy. */
    int n = jobs > 1 ? jobs - 1 : 0;
    p->threads = n ? calloc((size_t)n, sizeof *p->threads) : NULL;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break;
        p->nthreads++;
    }
    *out = p;
    return 0;
}

static void submit(dk__sigpool *p, sig_batch *b)
{
    pthread_mutex_lock(&p->mu);
    if (p->nthreads == 0 || p->queued >= 2 * p->nthreads) {
        pthread_mutex_unlock(&p->mu);
        run(p, b); /* the queue is long enough: check it here */
        return;
    }
    b->next = NULL;
    if (p->tail)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

int dk__sigpool_add(dk__sigpool *p, uint64_t seq, const uint8_t key[DK_PUBKEY_BYTES],
                    const uint8_t *body, size_t len, const uint8_t *sig, const char *actor)
{
    if (p->filling == NULL) {
        if ((p->filling = malloc(sizeof *p->filling)) == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        p->filling->n = 0;
        p->filling->next = NULL;
    }
    sig_batch *b = p->filling;
    sig_job *j = &b->jobs[b->n++];
    j->seq = seq;
    memcpy(j->key, key, DK_PUBKEY_BYTES);
    j->body = body;
    j->len = len;
    memcpy(j->sig, sig, 64);
    snprintf(j->actor, sizeof j->actor, "%s", actor);
    if (b->n == BATCH) {
        p->filling = NULL;
        submit(p, b);
    }
    return 0;
}

uint64_t dk__sigpool_finish(dk__sigpool *p, char actor[DK_ACTOR_MAX + 1], uint64_t *checked)
{
    if (p->filling) {
        sig_batch *b = p->filling;
        p->filling = NULL;
        if (b->n)
            submit(p, b);
        else
            free(b);
    }
    pthread_mutex_lock(&p->mu);
    while (p->head != NULL || p->busy > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    uint64_t bad = p->bad_seq;
    snprintf(actor, DK_ACTOR_MAX + 1, "%s", p->bad_actor);
    *checked = p->checked;
    pthread_mutex_unlock(&p->mu);
    return bad;
}

void dk__sigpool_close(dk__sigpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    for (sig_batch *b = p->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(p->filling);
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
