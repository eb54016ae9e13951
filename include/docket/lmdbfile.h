/* lmdbfile.h - LMDB's reports as docket reads them: a data file shorter than its newest meta
 * page counts, which codes mean damage, a failed assertion, and which file an env has open. */
#ifndef DOCKET_LMDBFILE_H
#define DOCKET_LMDBFILE_H

#include <stdint.h>

#include <lmdb.h>

/* 0, or DK_ECORRUPT naming `what` ("the ledger", "the views store") and both sizes; DK_EIO
 * if the file cannot be examined. Call it after mdb_env_open, before any transaction. */
int dk_lmdb_file_check(MDB_env *env, const char *what);

/* Which file an environment has open, as (device, inode), and whether a path still names
 * it: a long-running reader learns that its file was moved, replaced or removed. */
typedef struct dk_file_id {
    uint64_t dev, ino;
} dk_file_id;
/* The data file `env` has open (all zero if it cannot be told: it then matches no path). */
dk_file_id dk_lmdb_file_id(MDB_env *env);
/* 1 if `path` is that file now; 0 if not, or if `path` is gone. */
int dk_file_is(const char *path, dk_file_id id);
/* The lock file of `env` (opened with a lock, as a directory), told right after
 * mdb_env_open. A process whose lock file was removed and made anew by another no longer
 * shares LMDB's locks with it: two writers then corrupt the store (helper-71). */
dk_file_id dk_lmdb_lock_id(MDB_env *env);
/* Is the lock file `env` opened still its directory's lock.mdb? 1 or 0 (also if gone). */
int dk_lmdb_lock_current(MDB_env *env, dk_file_id lock);
/* Free the reader slots of processes that died holding a read snapshot (mdb_reader_check):
 * until then LMDB keeps every page those snapshots could see, and the file grows with each
 * rebuild or batch (helper-71). The number freed, or 0. */
int dk_lmdb_readers_clear(MDB_env *env);

/* The dk_err code of an LMDB (or errno) return that is not 0: DK_ECORRUPT for what only
 * damage gives, DK_ENOMEM, DK_ENOTFOUND, else DK_EIO. The ledger's and the views' error
 * reports both classify by it. */
int dk_lmdb_code(int rc);
/* Before mdb_env_open of `dir` (not with MDB_NOLOCK): allocate the blocks of its lock file,
 * making the file if need be. LMDB maps lock.mdb and writes through the map, so a page the
 * disk has no room for kills the process with SIGBUS instead of returning an error. 0, or
 * DK_EIO naming `what` ("the ledger") and the space left when the disk is full. */
int dk_lmdb_lock_reserve(const char *dir, const char *what);
/* What to add to the report of a write (a commit) in `env` that failed with `rc`: for EIO
 * or ENOSPC on a file system nearly full, its free space and that a full disk is the
 * likely cause (LMDB reports a write cut short as EIO); else "". Returns out. */
const char *dk_lmdb_space_note(MDB_env *env, int rc, char *out, size_t cap);

/* Have `env` record it when LMDB fails one of its own assertions, which it does on a page
 * that breaks its invariants (LMDB does not checksum pages) and then calls abort(). With
 * an liblmdb built without assertions (NDEBUG) there is nothing to record. Call it after
 * mdb_env_create. */
void dk_lmdb_watch_asserts(MDB_env *env);
/* Non-zero once an LMDB assertion failed in this process. Async-signal-safe: a program's
 * SIGABRT handler can tell damage from other aborts with it. */
int dk_lmdb_asserted(void);

#endif
