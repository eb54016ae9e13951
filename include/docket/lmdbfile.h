/* lmdbfile.h - LMDB's reports as docket reads them: a data file shorter than its newest meta
 * page counts, which codes mean damage, and a page that fails one of LMDB's assertions. */
#ifndef DOCKET_LMDBFILE_H
#define DOCKET_LMDBFILE_H

#include <lmdb.h>

/* 0, or DK_ECORRUPT naming `what` ("the ledger", "the views store") and both sizes; DK_EIO
 * if the file cannot be examined. Call it after mdb_env_open, before any transaction. */
int dk_lmdb_file_check(MDB_env *env, const char *what);

/* The dk_err code of an LMDB (or errno) return that is not 0: DK_ECORRUPT for what only
 * damage gives, DK_ENOMEM, DK_ENOTFOUND, else DK_EIO. The ledger's and the views' error
 * reports both classify by it. */
int dk_lmdb_code(int rc);

/* Have `env` record it when LMDB fails one of its own assertions, which it does on a page
 * that breaks its invariants (LMDB does not checksum pages) and then calls abort(). With
 * an liblmdb built without assertions (NDEBUG) there is nothing to record. Call it after
 * mdb_env_create. */
void dk_lmdb_watch_asserts(MDB_env *env);
/* Non-zero once an LMDB assertion failed in this process. Async-signal-safe: a program's
 * SIGABRT handler can tell damage from other aborts with it. */
int dk_lmdb_asserted(void);

#endif
