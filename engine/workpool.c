/* workpool.c - a small pool of threads running submitted work items; the
 * submitter helps when the queue is long, so `jobs` cores stay busy. */
#include <pthread.h>
#include <stdlib.h>

#include "docket/error.h"
#include "engine_int.h"
#include "workpool.h"

struct dk__workpool {
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    dk__work *head, *tail;
    int queued, busy, stop, nthreads;
    pthread_t *threads;
    dk__work_fn fn;
    void *ctx;
};

static void *worker(void *arg)
{
    dk__workpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->head == NULL)
            break;
        dk__work *w = p->head;
        p->head = w->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, w);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (p->head == NULL && p->busy == 0)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int dk__workpool_open(int jobs, dk__work_fn fn, void *ctx, dk__workpool **out)
{
    dk__workpool *p = calloc(1, sizeof *p);
    *out = NULL;
    if (p == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->fn = fn;
    p->ctx = ctx;
    int n = jobs > 1 ? jobs - 1 : 0;
    p->threads = n ? calloc((size_t)n, sizeof *p->threads) : NULL;
    for (int i = 0; p->threads && i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            break; /* fewer threads: the submitter does more itself */
        p->nthreads++;
    }
    *out = p;
    return 0;
}

void dk__workpool_submit(dk__workpool *p, dk__work *item)
{
    pthread_mutex_lock(&p->mu);
    if (p->nthreads == 0 || p->queued >= 2 * p->nthreads) {
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, item); /* enough is queued: run it here */
        return;
    }
    item->next = NULL;
    if (p->tail)
        p->tail->next = item;
    else
        p->head = item;
    p->tail = item;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void dk__workpool_wait(dk__workpool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->head != NULL || p->busy > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void dk__workpool_close(dk__workpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    for (dk__work *w = p->head, *n; w; w = n) { /* no thread ran them: run them here */
        n = w->next;
        p->fn(p->ctx, w);
    }
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
