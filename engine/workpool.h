/* workpool.h - a small pool of threads running submitted work items (used by
 * verify for signatures and for the casework rules pass). */
#ifndef DOCKET_WORKPOOL_H
#define DOCKET_WORKPOOL_H

/* Every item starts with this link; the pool owns an item from submit until
 * it has run, and the run function frees it. */
typedef struct dk__work {
    struct dk__work *next;
} dk__work;

typedef void (*dk__work_fn)(void *ctx, dk__work *item);
typedef struct dk__workpool dk__workpool;

/* A pool for `jobs` cores: jobs-1 threads, and the submitting thread runs an
 * item itself when enough are already queued. */
int dk__workpool_open(int jobs, dk__work_fn fn, void *ctx, dk__workpool **out);
void dk__workpool_submit(dk__workpool *p, dk__work *item);
/* Wait until every submitted item has run. */
void dk__workpool_wait(dk__workpool *p);
/* Stop the threads (items still queued are run first). NULL is a no-op. */
void dk__workpool_close(dk__workpool *p);

#endif
