/* backup.c - hot backups: a consistent, compacted copy of the whole LMDB
 * environment from one read snapshot while the writer keeps appending. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

int dk_ledger_backup(dk_ledger *lg, const char *dest_dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dest_dir);
    if (mkdir(dest_dir, 0700) != 0) {
        if (errno != EEXIST)
            return dk__fail(DK_EIO, "cannot create '%s': %s", dest_dir, strerror(errno));
        DIR *d = opendir(dest_dir); /* an existing directory must be empty */
        struct dirent *e;
        int empty = d != NULL;
        while (d && empty && (e = readdir(d)) != NULL)
            empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
        if (d)
            closedir(d);
        if (!empty)
            return dk__fail(DK_EEXIST, "'%s' is not a new or empty directory; back up into one",
                            dest_dir);
    }
    /* mdb_env_copy2 runs its own read transaction: hold the resize lock
     * shared like any other transaction of this process. */
    pthread_rwlock_rdlock(&lg->txn_lock);
    int rc = mdb_env_copy2(lg->env, dest_dir, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&lg->txn_lock);
    if (rc) {
        unlink(path);
        return dk__mdb_err(rc, "cannot copy the ledger");
    }
    /* the copy is made with the umask's mode; the ledger's own file is 0600 */
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return dk__fail(DK_EIO, "cannot sync the backup '%s': %s", path, strerror(errno));
    }
    close(fd);
    /* and the directory entry, so the copy survives a power cut */
    fd = open(dest_dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return dk__fail(DK_EIO, "cannot sync the directory '%s': %s", dest_dir, strerror(errno));
    }
    close(fd);
    return 0;
}
