/* sigpool.h - verify's parallel signature checks (sigpool.c): queue jobs in
 * seq order, then ask for the lowest seq whose signature failed. */
#ifndef DOCKET_SIGPOOL_H
#define DOCKET_SIGPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "docket/crypto.h"
#include "docket/event.h"

typedef struct dk__sigpool dk__sigpool;

/* A pool using `jobs` cores (the caller's thread among them). */
int dk__sigpool_open(int jobs, dk__sigpool **out);
/* Queue one check (key and sig are copied); body must stay valid until finish. */
int dk__sigpool_add(dk__sigpool *p, uint64_t seq, const uint8_t key[DK_PUBKEY_BYTES],
                    const uint8_t *body, size_t len, const uint8_t *sig, const char *actor);
/* Wait for every queued check: the lowest failing seq (0 if none), its signer
 * in `actor`, and how many signatures were checked. */
uint64_t dk__sigpool_finish(dk__sigpool *p, char actor[DK_ACTOR_MAX + 1], uint64_t *checked);
void dk__sigpool_close(dk__sigpool *p);

#endif
