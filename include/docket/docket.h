/* docket.h - the whole public contract of libdocket (the engine).
 * Include this one header; it pulls in each engine module's interface. */
#ifndef DOCKET_DOCKET_H
#define DOCKET_DOCKET_H

#include "docket/bytes.h"
#include "docket/case.h"
#include "docket/crypto.h"
#include "docket/error.h"
#include "docket/event.h"
#include "docket/ledger.h"
#include "docket/merkle.h"
#include "docket/note.h"
#include "docket/time.h"

/* Initialise the library (libsodium) once per process; safe to call again.
 * Returns 0 or DK_EIO if the crypto library cannot start. */
int dk_init(void);

#endif
