/* lmdbfile.c - refuses an LMDB data file shorter than its newest meta page says (the pages
 * past its end are mapped but unbacked: a read faults), and notes LMDB's failed assertions. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

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
