/* backup.c - hot backups (a consistent copy, page for page, of one LMDB read snapshot
 * while the writer keeps appending) and restores (a copy installed only once verified). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

#define PATH_CAP 4200

/* A directory being filled: the copy is staged in dir/stage and moved into dir by
 * rename, data.mdb last, so a stop at any moment (a fault, SIGKILL, a power cut) leaves
 * either no data.mdb or a whole, synced one. Every step inside dir goes through the
 * directories' descriptors and follows no symbolic link: a stage that someone replaced
 * with a link never takes a removal or a copy elsewhere. */
typedef struct fill {
    const char *dir, *stage, *verb; /* verb: "back up", "restore" (for messages) */
    const char *const *also;        /* files that travel with the ledger; NULL-terminated, < 64 */
    int made;                       /* this call created dir */
    int dir_fd;                     /* dir, flock'd: one backup or restore into it at a time */
    int stage_fd;                   /* the stage, once made; else -1 */
    uint64_t moved;                 /* bit i: also[i] was moved into dir */
    int installed;                  /* data.mdb moved into dir */
} fill;

static void path_in(char out[PATH_CAP], const char *dir, const char *a, const char *b)
{
    snprintf(out, PATH_CAP, b ? "%s/%s/%s" : "%s/%s", dir, a, b);
}

static int is_also(const fill *f, const char *name)
{
    for (const char *const *a = f->also; a && *a; a++)
        if (strcmp(*a, name) == 0)
            return 1;
    return 0;
}

/* Remove the stage and what it holds (only names a fill puts there): 0, or -1 if it is
 * not a directory (a link, say) or holds something else. */
static int clear_stage(fill *f)
{
    int fd = f->stage_fd >= 0
                 ? f->stage_fd
                 : openat(f->dir_fd, f->stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    static const char *const own[] = {"data.mdb", "lock.mdb", NULL};
    for (const char *const *n = own; *n; n++)
        unlinkat(fd, *n, 0);
    for (const char *const *a = f->also; a && *a; a++)
        unlinkat(fd, *a, 0);
    close(fd);
    f->stage_fd = -1;
    return unlinkat(f->dir_fd, f->stage, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* What dir holds: a new or empty directory takes the copy, and so does one holding only
 * what a stopped fill left (its stage, and files of `also` already moved). */
static int check_dir(fill *f)
{
    int fd = dup(f->dir_fd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return dk__fail(DK_EIO, "cannot read '%s': %s", f->dir, strerror(errno));
    }
    int ledger = 0, other = 0, stage = 0, moved = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        ledger |= strcmp(e->d_name, "data.mdb") == 0;
        stage |= strcmp(e->d_name, f->stage) == 0;
        moved |= is_also(f, e->d_name);
        other |= strcmp(e->d_name, f->stage) != 0 && !is_also(f, e->d_name);
    }
    closedir(d);
    if (ledger)
        return dk__fail(DK_EEXIST, "'%s' already holds a ledger; %s into a new directory", f->dir,
                        f->verb);
    if (other || (moved && !stage)) /* a node key alone is someone's, not a stopped fill's */
        return dk__fail(DK_EEXIST, "'%s' is not a new or empty directory; %s into one", f->dir,
                        f->verb);
    if (!stage)
        return 0;
    /* a stopped backup or restore into dir (the lock says none is running): start again */
    if (clear_stage(f) != 0)
        return dk__fail(DK_EEXIST,
                        "'%s/%s' is not a directory docket made, or holds files docket did not "
                        "put there; remove it",
                        f->dir, f->stage);
    for (const char *const *a = f->also; a && *a; a++)
        unlinkat(f->dir_fd, *a, 0);
    return 0;
}

static int sync_fd(int fd, const char *what)
{
    return fsync(fd) == 0
               ? 0
               : dk__fail(DK_EIO, "cannot sync the directory '%s': %s", what, strerror(errno));
}

/* Create dir if need be, take it (flock: a second backup or restore into it is
 * refused), check what it holds and make the stage. */
static int begin_fill(fill *f)
{
    f->dir_fd = f->stage_fd = -1;
    size_t n = 0;
    while (f->also && f->also[n])
        if (++n == 64)
            return dk__fail(DK_EINVAL, "a backup takes at most 63 files beside the ledger");
    f->made = mkdir(f->dir, 0700) == 0;
    if (!f->made && errno != EEXIST)
        return dk__fail(DK_EIO, "cannot create '%s': %s", f->dir, strerror(errno));
    int rc = 0;
    f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd < 0)
        rc = dk__fail(DK_EIO, "cannot open '%s': %s", f->dir, strerror(errno));
    else if (flock(f->dir_fd, LOCK_EX | LOCK_NB) != 0)
        rc = errno == EWOULDBLOCK
                 ? dk__fail(DK_EEXIST, "another backup or restore into '%s' is under way", f->dir)
                 : dk__fail(DK_EIO, "cannot lock '%s': %s", f->dir, strerror(errno));
    if (rc == 0)
        rc = check_dir(f);
    if (rc == 0 && (mkdirat(f->dir_fd, f->stage, 0700) != 0 ||
                    (f->stage_fd = openat(f->dir_fd, f->stage,
                                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0))
        rc = dk__fail(DK_EIO, "cannot create '%s/%s': %s", f->dir, f->stage, strerror(errno));
    if (rc == 0)
        return 0;
    if (f->dir_fd >= 0)
        close(f->dir_fd);
    if (f->made)
        rmdir(f->dir);
    return rc;
}

/* Undo a fill that did not finish: nothing of it stays, and dir only if it was there. */
static void abort_fill(fill *f)
{
    clear_stage(f);
    for (size_t i = 0; i < 64 && f->also && f->also[i]; i++)
        if (f->moved >> i & 1)
            unlinkat(f->dir_fd, f->also[i], 0);
    if (f->installed)
        unlinkat(f->dir_fd, "data.mdb", 0);
    close(f->dir_fd);
    if (f->made)
        rmdir(f->dir);
}

/* Move the staged copy into dir: the files of `also` first, then data.mdb, each step
 * synced, so a data.mdb in dir always comes with everything else. */
static int finish_fill(fill *f)
{
    for (size_t i = 0; f->also && f->also[i]; i++) {
        if (renameat(f->stage_fd, f->also[i], f->dir_fd, f->also[i]) == 0)
            f->moved |= (uint64_t)1 << i;
        else if (errno != ENOENT) /* ENOENT: a file the source did not hold */
            return dk__fail(DK_EIO, "cannot move '%s/%s/%s' into place: %s", f->dir, f->stage,
                            f->also[i], strerror(errno));
    }
    int rc = sync_fd(f->dir_fd, f->dir);
    if (rc == 0 && renameat(f->stage_fd, "data.mdb", f->dir_fd, "data.mdb") != 0)
        rc = dk__fail(DK_EIO, "cannot move '%s/%s/data.mdb' into place: %s", f->dir, f->stage,
                      strerror(errno));
    f->installed = rc == 0;
    if (rc == 0 && clear_stage(f) != 0)
        rc = dk__fail(DK_EIO, "cannot remove '%s/%s': %s", f->dir, f->stage, strerror(errno));
    if (rc == 0)
        rc = sync_fd(f->dir_fd, f->dir);
    if (rc == 0)
        close(f->dir_fd);
    return rc;
}

/* Copy src into the stage as `name`: created 0600 (never over another), fsynced. */
static int copy_in(const fill *f, const char *src, const char *name)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return dk__fail(DK_EIO, "cannot read '%s': %s", src, strerror(errno));
    int out = openat(f->stage_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return dk__fail(DK_EIO, "cannot create '%s/%s/%s': %s", f->dir, f->stage, name,
                        strerror(e));
    }
    char buf[1 << 16];
    ssize_t r;
    int ok = 1;
    while (ok && (r = read(in, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; ok && off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            ok = w > 0;
            off += w > 0 ? w : 0;
        }
    int e = errno;
    ok = ok && r == 0 && fsync(out) == 0;
    close(in);
    if (close(out) != 0 || !ok)
        return dk__fail(DK_EIO, "cannot copy '%s' into '%s/%s': %s", src, f->dir, f->stage,
                        strerror(e));
    return 0;
}

/* Copy each file of `also` that src_dir holds into the stage. */
static int copy_also(const fill *f, const char *src_dir)
{
    char src[PATH_CAP];
    for (const char *const *a = f->also; a && *a; a++) {
        path_in(src, src_dir, *a, NULL);
        if (access(src, F_OK) != 0)
            continue;
        int rc = copy_in(f, src, *a);
        if (rc)
            return rc;
    }
    return 0;
}

int dk_ledger_backup(dk_ledger *lg, const char *dest_dir, const char *const *also)
{
    const char *src_dir;
    if (mdb_env_get_path(lg->env, &src_dir) != 0)
        return dk__fail(DK_EINVAL, "the ledger has no path");
    fill f = {dest_dir, DK_BACKUP_STAGE, "back up", also, 0, -1, -1, 0, 0};
    int rc = begin_fill(&f);
    if (rc)
        return rc;
    /* The copy's file is made here, 0600 like the ledger's own whatever the umask (a
     * chmod afterwards can fail on some filesystems); mdb_env_copyfd2 runs its own read
     * transaction: hold the resize lock shared like any other transaction. */
    int fd =
        openat(f.stage_fd, "data.mdb", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = dk__fail(DK_EIO, "cannot create '%s/%s/data.mdb': %s", dest_dir, f.stage,
                      strerror(errno));
        goto fail;
    }
    pthread_rwlock_rdlock(&lg->txn_lock);
    /* Page for page, not MDB_CP_COMPACT: compacting walks every tree and trusts each node's
     * size, so a damaged page made it overflow a heap buffer (ASan) and fault; a copy of
     * the pages keeps damage as it is, for verify to name. It costs 0.49-0.57 -> 0.65-0.80 s
     * and 0.04% more bytes at 1M events (bench ledger, three runs each). */
    int mrc = (rc = dk__map_lost(lg)) != 0 ? 0 : mdb_env_copyfd2(lg->env, fd, 0);
    pthread_rwlock_unlock(&lg->txn_lock);
    if (mrc)
        rc = dk__mdb_err(mrc, "cannot copy the ledger");
    else if (rc == 0 && fsync(fd) != 0)
        rc = dk__fail(DK_EIO, "cannot sync the backup in '%s': %s", dest_dir, strerror(errno));
    close(fd);
    if (rc == 0)
        rc = copy_also(&f, src_dir);
    if (rc == 0)
        rc = finish_fill(&f);
    if (rc == 0)
        return 0;
fail:
    abort_fill(&f);
    return rc;
}

int dk_ledger_restore(const char *src_dir, const char *dest_dir, const char *const *also,
                      dk_verify_report *rep)
{
    char src[PATH_CAP], path[PATH_CAP];
    path_in(src, src_dir, "data.mdb", NULL);
    if (access(src, R_OK) != 0) {
        int e = errno;
        path_in(path, src_dir, DK_BACKUP_STAGE, NULL);
        return dk__fail(DK_ENOTFOUND, "'%s' holds no backup: %s%s", src_dir, strerror(e),
                        access(path, F_OK) == 0
                            ? " (only what a backup stopped part way left: take it again)"
                            : "");
    }
    fill f = {dest_dir, DK_RESTORE_STAGE, "restore", also, 0, -1, -1, 0, 0};
    int rc = begin_fill(&f);
    if (rc)
        return rc;
    /* Copy first and verify the copy: what is installed is exactly what was checked. */
    if ((rc = copy_in(&f, src, "data.mdb")) == 0)
        rc = copy_also(&f, src_dir);
    dk_ledger *lg = NULL;
    path_in(path, dest_dir, f.stage, NULL);
    dk_ledger_opts o = {0, 0, 1, 1}; /* the staged copy, which nothing writes: no lock file */
    if (rc == 0 && (rc = dk_ledger_open(path, &o, &lg)) == 0) {
        rc = dk_ledger_verify(lg, rep);
        dk_ledger_close(lg);
    }
    if (rc == 0 && rep->ok)
        rc = finish_fill(&f);
    if (rc == 0 && rep->ok)
        return 0;
    abort_fill(&f); /* a copy that does not verify is not installed */
    return rc;
}
