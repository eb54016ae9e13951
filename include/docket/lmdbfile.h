/* lmdbfile.h - whether an LMDB environment's data file still holds every page its newest
 * meta page counts: a truncated file would otherwise fault (SIGBUS) at the first read past its end.
 */
#ifndef DOCKET_LMDBFILE_H
#define DOCKET_LMDBFILE_H

#include <lmdb.h>

/* 0, or DK_ECORRUPT naming `what` ("the ledger", "the views store") and both sizes; DK_EIO
 * if the file cannot be examined. Call it after mdb_env_open, before any transaction. */
int dk_lmdb_file_check(MDB_env *env, const char *what);

#endif
