/* lmdbfile.c - what docket makes of LMDB's reports: a short data file is refused, error codes
 * become dk_err codes, failed asserts are noted, an env's open file is told by its identity. */
#define _GNU_SOURCE /* fallocate, FALLOC_FL_KEEP_SIZE */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "docket/error.h"
#include "docket/lmdbfile.h"
#include "engine_int.h"

int dk_lmdb_file_check(MDB_env *env, const char *what)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_filehandle_t fd;
    struct stat fs;
    int rc = mdb_env_info(env, &info);
    if (rc == 0)
        rc = mdb_env_stat(env, &st);
    if (rc == 0)
        rc = mdb_env_get_fd(env, &fd);
    if (rc)
        return dk__fail(DK_EIO, "cannot examine %s: %s", what, mdb_strerror(rc));
    if (fstat(fd, &fs) != 0)
        return dk__fail(DK_EIO, "cannot examine %s's file: %s", what, strerror(errno));
    unsigned long long need = ((unsigned long long)info.me_last_pgno + 1) * st.ms_psize;
    if ((unsigned long long)fs.st_size < need)
        return dk__fail(DK_ECORRUPT,
                        "%s is truncated: its data file holds %llu bytes, but its pages "
                        "reach %llu",
                        what, (unsigned long long)fs.st_size, need);
    return 0;
}

int dk_lmdb_code(int rc)
{
    switch (rc) {
    case ENOMEM:
        return DK_ENOMEM;
    case MDB_NOTFOUND:
        return DK_ENOTFOUND;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:          /* not an LMDB file */
    case MDB_VERSION_MISMATCH: /* another LMDB's format */
    case MDB_CURSOR_FULL:      /* a tree deeper than any real one */
    case MDB_INCOMPATIBLE:     /* a database's flags changed */
    case MDB_BAD_TXN: /* a broken page met by an earlier call that returned 0 (mdb_cursor_open
                       * ignores its page search's error) */
        return DK_ECORRUPT;
    default:
        return DK_EIO;
    }
}

/* Set by the assert callback, read by signal handlers: a lock-free atomic. */
static atomic_int lmdb_asserted;

static void on_assert(MDB_env *env, const char *msg)
{
    (void)env;
    (void)msg; /* LMDB prints it to stderr itself, then aborts */
    atomic_store(&lmdb_asserted, 1);
}

void dk_lmdb_watch_asserts(MDB_env *env)
{
    /* an liblmdb built with NDEBUG takes the callback and never calls it: nothing to watch */
    (void)mdb_env_set_assert(env, on_assert);
}

int dk_lmdb_asserted(void)
{
    return atomic_load(&lmdb_asserted);
}

dk_file_id dk_lmdb_file_id(MDB_env *env)
{
    dk_file_id id = {0, 0};
    mdb_filehandle_t fd;
    struct stat st;
    if (mdb_env_get_fd(env, &fd) == 0 && fstat(fd, &st) == 0)
        id = (dk_file_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    return id;
}

int dk_file_is(const char *path, dk_file_id id)
{
    struct stat st;
    return stat(path, &st) == 0 && (uint64_t)st.st_dev == id.dev && (uint64_t)st.st_ino == id.ino &&
           id.ino != 0;
}

/* The path of env's lock file into `path`: 0, or -1 if it cannot be told. */
static int lock_path(MDB_env *env, char *path, size_t n)
{
    const char *dir = NULL;
    if (mdb_env_get_path(env, &dir) != 0 || dir == NULL)
        return -1;
    snprintf(path, n, "%s/lock.mdb", dir);
    return 0;
}

dk_file_id dk_lmdb_lock_id(MDB_env *env)
{
    dk_file_id id = {0, 0};
    char path[4200];
    struct stat st;
    if (lock_path(env, path, sizeof path) == 0 && stat(path, &st) == 0)
        id = (dk_file_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino};
    return id;
}

int dk_lmdb_lock_current(MDB_env *env, dk_file_id lock)
{
    char path[4200];
    return lock_path(env, path, sizeof path) == 0 && dk_file_is(path, lock);
}

int dk_lmdb_readers_clear(MDB_env *env)
{
    int dead = 0;
    return mdb_reader_check(env, &dead) == 0 ? dead : 0;
}

/* Below this much free space a failed write is taken for a full disk. */
#define SPACE_LOW ((uint64_t)4 << 20)

const char *dk_lmdb_space_note(MDB_env *env, int rc, char *out, size_t cap)
{
    const char *dir = NULL;
    struct statvfs fs;
    out[0] = 0;
    if ((rc != EIO && rc != ENOSPC) || mdb_env_get_path(env, &dir) != 0 || dir == NULL ||
        statvfs(dir, &fs) != 0)
        return out;
    uint64_t free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
    if (rc == ENOSPC || free_bytes < SPACE_LOW)
        snprintf(out, cap,
                 " (the file system holding %s has %llu KiB free%s; nothing of this transaction "
                 "was kept: free space, then retry)",
                 dir, (unsigned long long)(free_bytes >> 10),
                 rc == EIO ? ": a write cut short by a full disk reads as an I/O error" : "");
    return out;
}

/* What a lock file of 512 readers takes (LMDB: 192 bytes of header, 64 a reader slot),
 * rounded up. */
#define LOCK_RESERVE ((off_t)64 << 10)
/* What LMDB itself sizes it at for 512 readers: it never grows a file this long. */
#define LOCK_LMDB ((off_t)192 + 511 * 64)

int dk_lmdb_lock_reserve(const char *dir, const char *what)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0; /* read-only media and the like: LMDB's open says what it makes of them */
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : errno;
    off_t len = rc == 0 && st.st_size > LOCK_RESERVE ? st.st_size : LOCK_RESERVE;
    if (rc == 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, len) != 0)
        rc = errno;
    if ((rc == ENOSPC || rc == EDQUOT) && st.st_size >= LOCK_LMDB) {
        /* a lock file LMDB made before (an older docket, another tool), at its full size:
         * LMDB will not grow it, and its first page (the header and the first 60 reader
         * slots, all a reader or the one writer touches but with more than 60 readers at
         * once) was written when it was made. Refusing it would leave a full disk's
         * ledger unreadable, backups included. */
        long page = sysconf(_SC_PAGESIZE);
        off_t hole = lseek(fd, 0, SEEK_HOLE);
        if (page > 0 && hole >= (off_t)page)
            rc = 0;
    }
    close(fd);
    if (rc != ENOSPC && rc != EDQUOT)
        return 0; /* done, or a file system that does not allocate ahead: as before */
    if (rc == EDQUOT)
        return dk__fail(DK_EIO,
                        "no space for the lock file of %s, '%s': the disk quota of its owner is "
                        "used up; raise it or free space, then retry",
                        what, path);
    struct statvfs fs;
    unsigned long long kib =
        statvfs(dir, &fs) == 0 ? (unsigned long long)fs.f_bavail * fs.f_frsize >> 10 : 0;
    return dk__fail(DK_EIO,
                    "no space for the lock file of %s, '%s' (the file system holding it has "
                    "%llu KiB free): free space, then retry",
                    what, path, kib);
}
