/* projector.c - the projector runtime on libuv: woken by this process's writer
 * (commit hook -> uv_async_send), by the ledger file changing, or by a timer. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "views_int.h"

#define DEFAULT_POLL_MS 500

/* What the writer thread touches: only this, under its mutex. */
typedef struct waker {
    pthread_mutex_t mu;
    uv_async_t *async;
} waker;

struct dk_projector {
    uv_loop_t *loop;
    dk_views *vw;
    dk_ledger *lg;
    dk_projector_opts o;
    uv_async_t async;
    uv_timer_t timer;
    uv_fs_event_t fsev;
    uv_idle_t idle;
    int watching, idling, stopping, open_handles;
    int moved; /* the views store was moved aside or replaced: nothing more is written */
    uint64_t lag, seq, batches, records;
    uint64_t readers_cleared; /* uv_now when dead readers' slots were last freed */
    dk__lagstat lags;
    waker wk;
    void (*done)(void *);
    void *done_ud;
};

/* On the ledger's writer thread, after each durable commit: never blocks. */
static void on_commit(void *udata, uint64_t head_seq)
{
    (void)head_seq;
    waker *w = udata;
    pthread_mutex_lock(&w->mu);
    if (w->async)
        uv_async_send(w->async);
    pthread_mutex_unlock(&w->mu);
}

static void on_idle(uv_idle_t *h);

static void wake(dk_projector *pj)
{
    if (pj->stopping || pj->idling || pj->moved)
        return;
    pj->idling = 1;
    uv_idle_start(&pj->idle, on_idle);
}

/* After a step that failed: the views' seq and lag as they stand (a follower that never
 * got a batch through, on a full disk say, reported seq 0 and nothing behind). */
static void where_stuck(dk_projector *pj)
{
    dk_view_status st[DK_VIEW_COUNT];
    dk_head head;
    if (dk_views_status(pj->vw, st) != 0 || dk_ledger_head(pj->lg, &head) != 0)
        return;
    pj->seq = st[DK_VIEW_CASES].seq;
    pj->lag = head.seq > pj->seq ? head.seq - pj->seq : 0;
}

static void on_idle(uv_idle_t *h)
{
    dk_projector *pj = h->data;
    /* Another process's `views rebuild` may have moved the store aside (damage) and made a
     * new one, which this handle does not write, or a restored ledger may have been moved
     * into place: say so once and step no more (the timer wakes this even with no appends,
     * so it is seen within poll_ms). */
    if (dk__views_store_current(pj->vw) != 0) {
        pj->moved = 1;
        pj->idling = 0;
        uv_idle_stop(&pj->idle);
        if (pj->o.on_error)
            pj->o.on_error(pj->o.udata, DK_ECLOSED, dk_errmsg());
        return;
    }
    dk_views_batch b;
    int rc = dk_views_step(pj->vw, &b);
    if (rc) {
        pj->idling = 0;
        uv_idle_stop(&pj->idle);
        char msg[DK_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", dk_errmsg());
        where_stuck(pj);
        if (pj->o.on_error)
            pj->o.on_error(pj->o.udata, rc, msg);
        return; /* the timer tries again */
    }
    dk_head head;
    /* from 1 to 0 with more to do: the step was redone before it read the views' seq */
    int known = b.from_seq > 1 || b.to_seq >= b.from_seq || !b.more;
    if (known && dk_ledger_head(pj->lg, &head) == 0)
        pj->lag = head.seq > b.to_seq ? head.seq - b.to_seq : 0;
    if (known)
        pj->seq = b.to_seq;
    if (b.to_seq >= b.from_seq) {
        pj->batches++;
        pj->records += b.to_seq - b.from_seq + 1;
        for (uint64_t i = 0; i <= b.to_seq - b.from_seq; i++)
            dk__lag_add(&pj->lags, b.committed_at - b.recorded_at[i]);
    }
    if ((b.to_seq >= b.from_seq || b.rebuilt) && pj->o.on_batch)
        pj->o.on_batch(pj->o.udata, &b);
    if (!b.more) {
        pj->idling = 0;
        uv_idle_stop(&pj->idle);
    }
}

static void on_async(uv_async_t *h)
{
    wake(h->data);
}

/* How often a follower frees the reader slots of processes that died reading (a killed
 * query): a long-lived follower keeps both files open, and what such a slot pins is kept
 * until then (helper-71: 13 -> 120 MB over eight rebuilds). */
#define READERS_CLEAR_MS 10000

static void on_timer(uv_timer_t *h)
{
    dk_projector *pj = h->data;
    uint64_t now = uv_now(pj->loop);
    if (now - pj->readers_cleared >= READERS_CLEAR_MS) {
        pj->readers_cleared = now;
        (void)dk_ledger_readers_clear(pj->lg);
        (void)dk__views_readers_clear(pj->vw);
    }
    wake(pj);
}

static void on_fs(uv_fs_event_t *h, const char *file, int events, int status)
{
    (void)file;
    (void)events;
    if (status == 0)
        wake(h->data);
}

int dk_projector_start(uv_loop_t *loop, dk_views *vw, dk_ledger *lg, const char *ledger_dir,
                       const dk_projector_opts *opts, dk_projector **out)
{
    *out = NULL;
    if (loop == NULL || vw == NULL || lg == NULL)
        return dk_fail(DK_EINVAL, "projector: loop, views and ledger are required");
    dk_projector *pj = calloc(1, sizeof *pj);
    if (pj == NULL)
        return dk_fail(DK_ENOMEM, "out of memory");
    pj->loop = loop;
    pj->vw = vw;
    pj->lg = lg;
    if (opts)
        pj->o = *opts;
    if (pj->o.poll_ms == 0)
        pj->o.poll_ms = DEFAULT_POLL_MS;
    pthread_mutex_init(&pj->wk.mu, NULL);
    int rc = uv_async_init(loop, &pj->async, on_async);
    if (rc) {
        pthread_mutex_destroy(&pj->wk.mu);
        free(pj);
        return dk_fail(DK_EIO, "projector: uv_async_init: %s", uv_strerror(rc));
    }
    pj->async.data = pj;
    uv_timer_init(loop, &pj->timer);
    pj->timer.data = pj;
    uv_idle_init(loop, &pj->idle);
    pj->idle.data = pj;
    uv_fs_event_init(loop, &pj->fsev);
    pj->fsev.data = pj;
    pj->open_handles = 4;
    uv_timer_start(&pj->timer, on_timer, pj->o.poll_ms, pj->o.poll_ms);
    if (pj->o.watch_file && ledger_dir) {
        char path[4200];
        snprintf(path, sizeof path, "%s/data.mdb", ledger_dir);
        /* the timer is the fallback where file watching is unavailable */
        pj->watching = uv_fs_event_start(&pj->fsev, on_fs, path, 0) == 0;
    }
    pthread_mutex_lock(&pj->wk.mu);
    pj->wk.async = &pj->async;
    pthread_mutex_unlock(&pj->wk.mu);
    dk_ledger_on_commit(lg, on_commit, &pj->wk);
    wake(pj); /* catch up with whatever is already there */
    *out = pj;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    dk_projector *pj = h->data;
    if (--pj->open_handles > 0)
        return;
    void (*done)(void *) = pj->done;
    void *ud = pj->done_ud;
    pthread_mutex_destroy(&pj->wk.mu);
    free(pj);
    if (done)
        done(ud);
}

void dk_projector_stop(dk_projector *pj, void (*done)(void *udata), void *udata)
{
    if (pj == NULL || pj->stopping)
        return;
    pj->stopping = 1;
    pj->done = done;
    pj->done_ud = udata;
    dk_ledger_on_commit(pj->lg, NULL, NULL);
    pthread_mutex_lock(&pj->wk.mu);
    pj->wk.async = NULL;
    pthread_mutex_unlock(&pj->wk.mu);
    uv_idle_stop(&pj->idle);
    uv_timer_stop(&pj->timer);
    if (pj->watching)
        uv_fs_event_stop(&pj->fsev);
    uv_close((uv_handle_t *)&pj->async, on_closed);
    uv_close((uv_handle_t *)&pj->timer, on_closed);
    uv_close((uv_handle_t *)&pj->idle, on_closed);
    uv_close((uv_handle_t *)&pj->fsev, on_closed);
}

uint64_t dk_projector_lag(const dk_projector *pj)
{
    return pj->lag;
}

void dk_projector_stats_get(const dk_projector *pj, dk_projector_stats *out)
{
    out->batches = pj->batches;
    out->records = pj->records;
    out->seq = pj->seq;
    out->lag = pj->lag;
    out->lag_p50_us = dk__lag_quantile(&pj->lags, 0.50);
    out->lag_p99_us = dk__lag_quantile(&pj->lags, 0.99);
    out->lag_max_us = pj->lags.max_us;
}
