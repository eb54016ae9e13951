/* backup.c - hot backups (a consistent copy, page for page, of one LMDB read snapshot
 * while the writer keeps appending) and restores (a copy installed only once verified). */
#define _GNU_SOURCE /* renameat2 */
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
#define ALSO_MAX 63

/* A directory being filled: the copy is staged in dir/stage and moved into dir by
 * rename, data.mdb last, so a stop at any moment (a fault, SIGKILL, a power cut) leaves
 * either no data.mdb or a whole, synced one with everything that goes with it. Every step
 * inside dir goes through the directories' descriptors and follows no symbolic link: a
 * stage that someone replaced with a link never takes a removal or a copy elsewhere. */
typedef struct fill {
    const char *dir, *stage, *verb; /* verb: "back up", "restore" (for messages) */
    const char *const *also;        /* files that travel with the ledger; NULL-terminated */
    int made;                       /* this call created dir */
    int dir_fd;                     /* dir, flock'd: one backup or restore into it at a time */
    int stage_fd;                   /* the stage, once made; else -1 */
    uint64_t staged;                /* bit i: also[i] was copied into the stage */
    uint64_t moved;                 /* bit i: also[i] was moved into dir */
    int installed;                  /* data.mdb moved into dir */
    int locked;                     /* dir_fd holds the flock */
    dev_t copy_dev;                 /* the staged data.mdb this call wrote: what is */
    ino_t copy_ino;                 /* verified and installed must be that file */
} fill;

static void path_in(char out[PATH_CAP], const char *dir, const char *name)
{
    snprintf(out, PATH_CAP, "%s/%s", dir, name);
}

static int is_also(const fill *f, const char *name)
{
    for (const char *const *a = f->also; a && *a; a++)
        if (strcmp(*a, name) == 0)
            return 1;
    return 0;
}

/* A name a fill puts in its stage. */
static int stage_name(const fill *f, const char *name)
{
    return strcmp(name, "data.mdb") == 0 || strcmp(name, "lock.mdb") == 0 || is_also(f, name);
}

/* The entries of the directory open as `fd` (not consumed), through `fn` with whether
 * each is a regular file (not followed if a link); 0 or errno. */
static int list_dir(int fd, void (*fn)(void *ctx, const char *name, int regular), void *ctx)
{
    int dfd = dup(fd);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (d == NULL) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        return e;
    }
    rewinddir(d); /* dup shares the offset with fd */
    struct dirent *e;
    for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        int regular =
            e->d_type == DT_REG ||
            (e->d_type == DT_UNKNOWN && fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
             S_ISREG(st.st_mode));
        fn(ctx, e->d_name, regular);
    }
    int err = errno; /* readdir's, if it ended on an error */
    closedir(d);
    return err;
}

typedef struct seen {
    const fill *f;
    int ledger, stage, moved, other; /* in dir: data.mdb, the stage, files of `also`, else */
} seen;

static void see_dir(void *ctx, const char *name, int regular)
{
    seen *s = ctx;
    int stage = strcmp(name, s->f->stage) == 0, also = regular && is_also(s->f, name);
    s->ledger |= strcmp(name, "data.mdb") == 0;
    s->stage |= stage;
    s->moved |= also;
    s->other |= !stage && !also;
}

static void see_stage(void *ctx, const char *name, int regular)
{
    seen *s = ctx;
    s->ledger |= regular && strcmp(name, "data.mdb") == 0;
    s->other |= !regular || !stage_name(s->f, name);
}

/* Remove the stage (open as fd, consumed) and what it holds, only names a fill puts
 * there; the caller checked there is nothing else. */
static int remove_stage(fill *f, int fd)
{
    static const char *const own[] = {"data.mdb", "lock.mdb", NULL};
    for (const char *const *n = own; *n; n++)
        unlinkat(fd, *n, 0);
    for (const char *const *a = f->also; a && *a; a++)
        unlinkat(fd, *a, 0);
    close(fd);
    if (fd == f->stage_fd)
        f->stage_fd = -1;
    return unlinkat(f->dir_fd, f->stage, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* What dir holds: a new or empty directory takes the copy, and so does one holding only
 * what a stopped fill left: its stage (a directory holding only names a fill puts there)
 * and, if the stage still holds data.mdb, files of `also` already moved out of it. Those
 * are removed; anything else refuses dir, and nothing in it is touched. */
static int check_dir(fill *f)
{
    seen d = {f, 0, 0, 0, 0}, st = {f, 0, 0, 0, 0};
    int e = list_dir(f->dir_fd, see_dir, &d), sfd = -1;
    if (e)
        return dk__fail(DK_EIO, "cannot read '%s': %s", f->dir, strerror(e));
    if (d.ledger)
        return dk__fail(DK_EEXIST, "'%s' already holds a ledger; %s into a new directory", f->dir,
                        f->verb);
    if (d.stage) {
        sfd = openat(f->dir_fd, f->stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int le = sfd < 0 ? (errno == ENOTDIR || errno == ELOOP ? 0 : errno)
                         : list_dir(sfd, see_stage, &st);
        if (sfd < 0 || le || st.other) {
            if (sfd >= 0)
                close(sfd);
            if (le)
                return dk__fail(DK_EIO, "cannot read '%s/%s': %s", f->dir, f->stage, strerror(le));
            return dk__fail(DK_EEXIST,
                            "'%s/%s' is not a directory docket made, or holds files docket did "
                            "not put there; remove it",
                            f->dir, f->stage);
        }
    }
    /* a node key beside no stage holding a copy is someone's, not a stopped fill's */
    if (d.other || (d.moved && !st.ledger)) {
        if (sfd >= 0)
            close(sfd);
        return dk__fail(DK_EEXIST, "'%s' is not a new or empty directory; %s into one", f->dir,
                        f->verb);
    }
    if (!d.stage)
        return 0;
    /* a stopped backup or restore into dir (the lock says none is running): start again */
    for (const char *const *a = f->also; a && *a; a++)
        unlinkat(f->dir_fd, *a, 0);
    if (remove_stage(f, sfd) != 0)
        return dk__fail(DK_EIO, "cannot remove '%s/%s': %s", f->dir, f->stage, strerror(errno));
    return 0;
}

static int sync_fd(int fd, const char *what)
{
    return fsync(fd) == 0
               ? 0
               : dk__fail(DK_EIO, "cannot sync the directory '%s': %s", what, strerror(errno));
}

/* The names of `also` are plain file names, none of a fill's own. */
static int check_also(const char *const *also)
{
    for (size_t n = 0; also && also[n]; n++) {
        const char *a = also[n];
        if (n == ALSO_MAX)
            return dk__fail(DK_EINVAL, "a backup takes at most %d files beside the ledger",
                            ALSO_MAX);
        if (!*a || strchr(a, '/') || strcmp(a, ".") == 0 || strcmp(a, "..") == 0 ||
            strcmp(a, "data.mdb") == 0 || strcmp(a, "lock.mdb") == 0 ||
            strcmp(a, DK_BACKUP_STAGE) == 0 || strcmp(a, DK_RESTORE_STAGE) == 0)
            return dk__fail(DK_EINVAL, "'%s' cannot be a file beside the ledger in a backup", a);
    }
    return 0;
}

/* Sync the directory that holds `dir` (its entry for dir may be new: made by this call,
 * or by a run that was stopped). */
static int sync_parent(const fill *f)
{
    char parent[PATH_CAP];
    if (dk__parent_dir(f->dir, parent, sizeof parent) != 0)
        return dk__fail(DK_EINVAL, "the path '%s' is too long", f->dir);
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return dk__fail(DK_EIO, "cannot open the directory '%s': %s", parent, strerror(errno));
    int rc = sync_fd(fd, parent);
    close(fd);
    return rc;
}

static void abort_fill(fill *f);

/* Create dir if need be, take it (flock: a second backup or restore into it is
 * refused), check what it holds, make the stage and sync dir's own entry. */
static int begin_fill(fill *f)
{
    f->dir_fd = f->stage_fd = -1;
    int rc = check_also(f->also);
    if (rc)
        return rc;
    f->made = mkdir(f->dir, 0700) == 0;
    if (!f->made && errno != EEXIST)
        return dk__fail(DK_EIO, "cannot create '%s': %s", f->dir, strerror(errno));
    f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dir_fd < 0)
        rc = dk__fail(DK_EIO, "cannot open '%s': %s", f->dir, strerror(errno));
    else if (flock(f->dir_fd, LOCK_EX | LOCK_NB) != 0)
        rc = errno == EWOULDBLOCK
                 ? dk__fail(DK_EEXIST, "another backup or restore into '%s' is under way", f->dir)
                 : dk__fail(DK_EIO, "cannot lock '%s': %s", f->dir, strerror(errno));
    else
        f->locked = 1;
    if (rc == 0)
        rc = check_dir(f);
    if (rc == 0 && mkdirat(f->dir_fd, f->stage, 0700) != 0)
        rc = dk__fail(DK_EIO, "cannot create '%s/%s': %s", f->dir, f->stage, strerror(errno));
    else if (rc == 0 &&
             (f->stage_fd = openat(f->dir_fd, f->stage,
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = dk__fail(DK_EIO, "cannot open '%s/%s': %s", f->dir, f->stage, strerror(errno));
        unlinkat(f->dir_fd, f->stage, AT_REMOVEDIR);
    }
    if (rc == 0)
        rc = sync_parent(f);
    if (rc)
        abort_fill(f);
    return rc;
}

/* Undo a fill that did not finish: nothing of it stays, and dir only if it was there.
 * An installed data.mdb goes first, and that is synced, so no stop in between leaves it
 * without what goes with it. */
static void abort_fill(fill *f)
{
    if (f->installed && unlinkat(f->dir_fd, "data.mdb", 0) == 0)
        (void)fsync(f->dir_fd); /* best effort: the call fails whatever this does */
    for (size_t i = 0; f->also && f->also[i]; i++)
        if (f->moved >> i & 1)
            unlinkat(f->dir_fd, f->also[i], 0);
    if (f->stage_fd >= 0)
        remove_stage(f, f->stage_fd);
    if (f->made && f->locked) /* while it is ours (before the lock goes): not one another
                                 run has taken */
        rmdir(f->dir);
    if (f->dir_fd >= 0)
        close(f->dir_fd);
}

/* Move one staged file into dir, never over a file already there (another process may
 * have put one in dir meanwhile: `docket init`, say). */
static int move_in(const fill *f, const char *name)
{
    if (renameat2(f->stage_fd, name, f->dir_fd, name, RENAME_NOREPLACE) == 0)
        return 0;
    int e = errno;
    if (e == EINVAL || e == ENOSYS) { /* a filesystem without it: link, then unlink */
        if (linkat(f->stage_fd, name, f->dir_fd, name, 0) == 0) {
            unlinkat(f->stage_fd, name, 0);
            return 0;
        }
        e = errno;
    }
    return dk__fail(e == EEXIST ? DK_EEXIST : DK_EIO, "cannot move '%s/%s/%s' into place: %s",
                    f->dir, f->stage, name,
                    e == EEXIST ? "another process put a file of that name there" : strerror(e));
}

/* The file at `fd`, or at `name` in the directory open as `at`, is the copy this call
 * wrote (not another one put in its place meanwhile). */
static int is_copy(const fill *f, int fd, int at, const char *name)
{
    struct stat st;
    if ((fd >= 0 ? fstat(fd, &st) : fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW)) != 0)
        return dk__fail(DK_EIO, "cannot check the copy in '%s': %s", f->dir, strerror(errno));
    if (st.st_dev != f->copy_dev || st.st_ino != f->copy_ino)
        return dk__fail(
            DK_EIO, "the copy in '%s' was replaced by another process while it was made", f->dir);
    return 0;
}

/* Move the staged copy into dir: the files of `also` first, then data.mdb, each step
 * synced, so a data.mdb in dir always comes with everything else. */
static int finish_fill(fill *f)
{
    for (size_t i = 0; f->also && f->also[i]; i++) {
        if (!(f->staged >> i & 1))
            continue; /* a file the source did not hold */
        int rc = move_in(f, f->also[i]);
        if (rc)
            return rc;
        f->moved |= (uint64_t)1 << i;
    }
    int rc = sync_fd(f->dir_fd, f->dir);
    if (rc == 0 && (rc = move_in(f, "data.mdb")) == 0) {
        f->installed = 1;
        rc = is_copy(f, -1, f->dir_fd, "data.mdb"); /* moved by name: the file checked? */
    }
    if (rc == 0 && remove_stage(f, f->stage_fd) != 0)
        rc = dk__fail(DK_EIO, "cannot remove '%s/%s': %s", f->dir, f->stage, strerror(errno));
    if (rc == 0)
        rc = sync_fd(f->dir_fd, f->dir);
    if (rc == 0)
        close(f->dir_fd);
    return rc;
}

/* Open a source file for reading: a regular file only (a FIFO would block the copy). */
static int open_source(const char *src, int *fd)
{
    struct stat st;
    *fd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0)
        return dk__fail(DK_EIO, "cannot read '%s': %s", src, strerror(errno));
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(*fd);
        return S_ISREG(st.st_mode) || e ? dk__fail(DK_EIO, "cannot read '%s': %s", src, strerror(e))
                                        : dk__fail(DK_EINVAL, "'%s' is not a regular file", src);
    }
    return 0;
}

/* Copy src into the stage as `name`: created 0600 (never over another), fsynced. With
 * `is_data`, the file is the copy whose identity is kept (copy_dev, copy_ino). */
static int copy_in(fill *f, const char *src, const char *name, int is_data)
{
    int in, rc = open_source(src, &in);
    if (rc)
        return rc;
    int out = openat(f->stage_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return dk__fail(DK_EIO, "cannot create '%s/%s/%s': %s", f->dir, f->stage, name,
                        strerror(e));
    }
    char buf[1 << 16];
    ssize_t r;
    int e = 0;
    while (e == 0 && (r = read(in, buf, sizeof buf)) > 0)
        if (dk__write_all(out, buf, (size_t)r) != 0)
            e = errno;
    if (e == 0 && r < 0)
        e = errno;
    if (e == 0 && fsync(out) != 0)
        e = errno;
    struct stat st;
    if (e == 0 && is_data && fstat(out, &st) != 0)
        e = errno;
    if (close(out) != 0 && e == 0)
        e = errno;
    close(in);
    if (e)
        return dk__fail(DK_EIO, "cannot copy '%s' into '%s/%s': %s", src, f->dir, f->stage,
                        strerror(e));
    if (is_data) {
        f->copy_dev = st.st_dev;
        f->copy_ino = st.st_ino;
    }
    return 0;
}

/* Copy each file of `also` that src_dir holds into the stage. */
static int copy_also(fill *f, const char *src_dir)
{
    char src[PATH_CAP];
    for (size_t i = 0; f->also && f->also[i]; i++) {
        path_in(src, src_dir, f->also[i]);
        struct stat st;
        if (lstat(src, &st) != 0) {
            if (errno == ENOENT)
                continue; /* the source has none */
            return dk__fail(DK_EIO, "cannot read '%s': %s", src, strerror(errno));
        }
        int rc = copy_in(f, src, f->also[i], 0);
        if (rc)
            return rc;
        f->staged |= (uint64_t)1 << i;
    }
    return 0;
}

int dk_ledger_backup(dk_ledger *lg, const char *dest_dir, const char *const *also)
{
    const char *src_dir;
    if (mdb_env_get_path(lg->env, &src_dir) != 0)
        return dk__fail(DK_EINVAL, "the ledger has no path");
    fill f = {.dir = dest_dir, .stage = DK_BACKUP_STAGE, .verb = "back up", .also = also};
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
    struct stat st;
    if (rc == 0 && fstat(fd, &st) != 0)
        rc = dk__fail(DK_EIO, "cannot check the backup in '%s': %s", dest_dir, strerror(errno));
    close(fd);
    f.copy_dev = rc == 0 ? st.st_dev : 0;
    f.copy_ino = rc == 0 ? st.st_ino : 0;
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
    path_in(src, src_dir, "data.mdb");
    if (access(src, R_OK) != 0) {
        int e = errno;
        path_in(path, src_dir, DK_BACKUP_STAGE);
        return dk__fail(DK_ENOTFOUND, "'%s' holds no backup: %s%s", src_dir, strerror(e),
                        access(path, F_OK) == 0
                            ? " (only what a backup stopped part way left: take it again)"
                            : "");
    }
    fill f = {.dir = dest_dir, .stage = DK_RESTORE_STAGE, .verb = "restore", .also = also};
    int rc = begin_fill(&f);
    if (rc)
        return rc;
    /* Copy first and verify the copy: what is installed is exactly what was checked. */
    if ((rc = copy_in(&f, src, "data.mdb", 1)) == 0)
        rc = copy_also(&f, src_dir);
    dk_ledger *lg = NULL;
    path_in(path, dest_dir, f.stage);
    dk_ledger_opts o = {0, 0, 1, 1}; /* the staged copy, which nothing writes: no lock file */
    if (rc == 0 && (rc = dk_ledger_open(path, &o, &lg)) == 0) {
        int lfd;
        if ((rc = dk_ledger_verify(lg, rep)) == 0 && (rc = mdb_env_get_fd(lg->env, &lfd)) != 0)
            rc = dk__mdb_err(rc, "cannot check the copy");
        else if (rc == 0)
            rc = is_copy(&f, lfd, -1, NULL); /* the file verified is the one copied */
        dk_ledger_close(lg);
    }
    if (rc == 0 && rep->ok)
        rc = finish_fill(&f);
    if (rc == 0 && rep->ok)
        return 0;
    abort_fill(&f); /* a copy that does not verify is not installed */
    return rc;
}
