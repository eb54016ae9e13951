/* sigpool.c - verify's parallel signature checks: the walk queues batches of
 * (key, body, signature) jobs on a work pool; the lowest failing seq wins. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "sigpool.h"
#include "workpool.h"

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
    dk__work link;
    size_t n;
    sig_job jobs[BATCH];
} sig_batch;

struct dk__sigpool {
    dk__workpool *pool;
    sig_batch *filling;
    pthread_mutex_t mu; /* guards the results */
    uint64_t bad_seq;   /* lowest failing seq, 0 if none */
    char bad_actor[DK_ACTOR_MAX + 1];
    uint64_t checked;
};

static void run(void *ctx, dk__work *w)
{
    dk__sigpool *p = ctx;
    sig_batch *b = (sig_batch *)w;
    uint64_t bad = 0, checked = 0;
    const char *who = NULL;
    for (size_t i = 0; i < b->n; i++) {
        const sig_job *j = &b->jobs[i];
        if (bad != 0 && j->seq >= bad)
            continue; /* a lower seq already failed in this batch */
        checked++;
        if (dk_verify(j->key, j->body, j->len, j->sig) != 0) {
            bad = j->seq;
            who = j->actor;
        }
    }
    pthread_mutex_lock(&p->mu);
    p->checked += checked;
    if (bad && (p->bad_seq == 0 || bad < p->bad_seq)) {
        p->bad_seq = bad;
        snprintf(p->bad_actor, sizeof p->bad_actor, "%s", who);
    }
    pthread_mutex_unlock(&p->mu);
    free(b);
}

int dk__sigpool_open(int jobs, dk__sigpool **out)
{
    dk__sigpool *p = calloc(1, sizeof *p);
    *out = NULL;
    if (p == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    int rc = dk__workpool_open(jobs, run, p, &p->pool);
    if (rc) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int dk__sigpool_add(dk__sigpool *p, uint64_t seq, const uint8_t key[DK_PUBKEY_BYTES],
                    const uint8_t *body, size_t len, const uint8_t *sig, const char *actor)
{
    if (p->filling == NULL) {
        if ((p->filling = malloc(sizeof *p->filling)) == NULL)
            return dk__fail(DK_ENOMEM, "out of memory");
        p->filling->n = 0;
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
        dk__workpool_submit(p->pool, &b->link);
    }
    return 0;
}

uint64_t dk__sigpool_finish(dk__sigpool *p, char actor[DK_ACTOR_MAX + 1], uint64_t *checked)
{
    if (p->filling) {
        sig_batch *b = p->filling;
        p->filling = NULL;
        if (b->n)
            dk__workpool_submit(p->pool, &b->link);
        else
            free(b);
    }
    dk__workpool_wait(p->pool);
    pthread_mutex_lock(&p->mu);
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
    dk__workpool_close(p->pool);
    free(p->filling);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
