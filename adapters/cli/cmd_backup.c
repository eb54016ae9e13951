/* cmd_backup.c - `docket backup DEST` (hot, consistent copy, page for page, while
 * appends continue) and `docket restore SRC DIR` (install, verify the copy). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* Copy one file, creating dst with `mode` (refusing to overwrite), fsynced. */
static int copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY);
    if (in < 0)
        return cli_fail("cannot read '%s': %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (out < 0) {
        close(in);
        return cli_fail("cannot create '%s': %s", dst, strerror(errno));
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
    ok = ok && r == 0 && fsync(out) == 0;
    close(in);
    if (close(out) != 0 || !ok) {
        unlink(dst);
        return cli_fail("cannot copy '%s' to '%s'", src, dst);
    }
    return EXIT_OK;
}

static int dir_empty(const char *dir);

/* What a backup writes into DEST, and a restore into DIR: all of it goes again if the
 * command fails, or a fault stops it (cli_on_fault_remove). */
static const char *const backup_files[] = {"data.mdb", "node.key"};
static const char *const restore_files[] = {"data.mdb", "lock.mdb", "node.key"};
#define NFILES(a) (sizeof(a) / sizeof(a)[0])

/* Remove names[0..n) from `dir`, and `dir` too if the command made it. */
static void remove_made(const char *dir, const char *const *names, size_t n, int made)
{
    char path[4200];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    if (made)
        rmdir(dir);
}

int cmd_backup(int argc, char **argv)
{
    const char *ledger = NULL;
    int json = 0, npos;
    char *pos[8];
    const cli_opt opts[] = {{"ledger", &ledger, NULL}, {"json", NULL, &json}, {NULL, NULL, NULL}};
    const char *usage = "usage: docket backup DEST [--ledger DIR] [--json]\n"
                        "A hot, consistent copy of the ledger, page for page (and its node key),\n"
                        "into the new directory DEST, while appends continue.\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 1)
        return cli_usage_error("backup needs one DEST directory");
    const char *dir = cli_ledger_dir(ledger);
    if (dir == NULL)
        return EXIT_USAGE;
    dk_ledger *lg;
    if ((rc = cli_open_ledger(dir, 1, &lg)) != EXIT_OK)
        return rc;
    int made = access(pos[0], F_OK) != 0; /* the backup makes the directory */
    if (made || dir_empty(pos[0]))        /* else the backup refuses DEST: nothing of it is ours */
        cli_on_fault_remove(pos[0], backup_files, NFILES(backup_files), made);
    int err = dk_ledger_backup(lg, pos[0]);
    dk_ledger_close(lg);
    if (err) {
        cli_on_fault_keep();
        return cli_dk_fail(err, "backup failed");
    }
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/node.key", dir);
    snprintf(dst, sizeof dst, "%s/node.key", pos[0]);
    if (access(src, F_OK) == 0 && (rc = copy_file(src, dst, 0600)) != EXIT_OK) {
        cli_on_fault_keep();
        remove_made(pos[0], backup_files, NFILES(backup_files), made); /* no half a backup */
        return rc;
    }
    dk_ledger_opts o = {0, 0, 1, 1}; /* the copy, which nothing writes: no lock file */
    dk_head h;
    if ((err = dk_ledger_open(pos[0], &o, &lg)) != 0) {
        cli_on_fault_keep();
        rc = cli_dk_fail(err, "the backup does not open");
        remove_made(pos[0], backup_files, NFILES(backup_files), made);
        return rc;
    }
    err = dk_ledger_head(lg, &h);
    dk_ledger_close(lg);
    cli_on_fault_keep(); /* read back: a faithful copy, even of a damaged ledger, is kept */
    if (err) { /* the copy is faithful: the damage is the ledger's own, kept for its repair */
        char what[4200];
        snprintf(what, sizeof what, "backed up to %s, but the ledger is damaged", pos[0]);
        return cli_dk_fail(err, what);
    }
    char hash[65];
    dk_hex_encode(h.hash, 32, hash);
    if (json) {
        json_t *o2 = json_object();
        json_object_set_new(o2, "dest", cli_json_path(pos[0]));
        json_object_set_new(o2, "seq", json_integer((json_int_t)h.seq));
        json_object_set_new(o2, "hash", json_string(hash));
        cli_print_json(o2);
    } else {
        printf("backed up to %s: head seq %llu hash %s\n", pos[0], (unsigned long long)h.seq, hash);
    }
    return EXIT_OK;
}

/* 1 if `dir` does not exist or holds nothing. */
static int dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Remove a restore that did not verify: the files it made, and DIR if the
 * restore created it. */
static int made_dir;

static void unrestore(const char *dir)
{
    remove_made(dir, restore_files, NFILES(restore_files), made_dir);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    return ok ? EXIT_OK : cli_fail("cannot sync the directory '%s': %s", dir, strerror(errno));
}

int cmd_restore(int argc, char **argv)
{
    int npos, json = 0;
    char *pos[8];
    const cli_opt opts[] = {{"json", NULL, &json}, {NULL, NULL, NULL}};
    const char *usage = "usage: docket restore SRC DIR [--json]\n"
                        "Copies the backup in SRC into DIR (new or empty), then\n"
                        "verifies the copy (the whole chain, signatures, checkpoints, rules); a\n"
                        "copy that does not verify is removed again (exit 3).\n";
    int rc = cli_parse(argc, argv, opts, usage, &npos, pos, CLI_NPOS(pos));
    if (rc != CLI_CONTINUE)
        return rc;
    if (npos != 2)
        return cli_usage_error("restore needs SRC and DIR");
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/data.mdb", pos[0]);
    snprintf(dst, sizeof dst, "%s/data.mdb", pos[1]);
    if (access(src, R_OK) != 0)
        return cli_fail("'%s' holds no backup: %s", pos[0], strerror(errno));
    if (access(dst, F_OK) == 0)
        return cli_fail("'%s' already holds a ledger; restore into a new directory", pos[1]);
    if (!dir_empty(pos[1]))
        return cli_fail("'%s' is not empty; restore into a new or empty directory", pos[1]);
    made_dir = mkdir(pos[1], 0700) == 0;
    if (!made_dir && errno != EEXIST)
        return cli_fail("cannot create '%s': %s", pos[1], strerror(errno));
    /* until the copy verifies: a page of it faulting the verify must not leave it behind */
    cli_on_fault_remove(pos[1], restore_files, NFILES(restore_files), made_dir);
    /* Copy first and verify the copy: what is installed is what was checked. */
    if ((rc = copy_file(src, dst, 0600)) != EXIT_OK) {
        unrestore(pos[1]);
        return rc;
    }
    snprintf(src, sizeof src, "%s/node.key", pos[0]);
    char key[4096];
    snprintf(key, sizeof key, "%s/node.key", pos[1]);
    if ((access(src, F_OK) == 0 && (rc = copy_file(src, key, 0600)) != EXIT_OK) ||
        (rc = sync_dir(pos[1])) != EXIT_OK) {
        unrestore(pos[1]);
        return rc;
    }
    dk_ledger *lg;
    dk_ledger_opts o = {0, 0, 1, 0};
    dk_verify_report rep;
    int err = dk_ledger_open(pos[1], &o, &lg);
    if (err == 0) {
        err = dk_ledger_verify(lg, &rep);
        dk_ledger_close(lg);
    }
    if (err) {
        rc = cli_dk_fail(err, "the backup does not open or cannot be verified");
        unrestore(pos[1]);
        return rc;
    }
    cli_on_fault_keep(); /* unrestore() below, if need be, removes the copy itself */
    if (!rep.ok) {
        fprintf(stderr, "docket: restore: the backup is damaged at seq %llu: %s\n",
                (unsigned long long)rep.seq, rep.reason);
        unrestore(pos[1]);
        return EXIT_DAMAGE;
    }
    if (json) {
        json_t *o2 = json_object();
        json_object_set_new(o2, "dest", cli_json_path(pos[1]));
        json_object_set_new(o2, "verified_records", json_integer((json_int_t)rep.checked));
        cli_print_json(o2);
    } else {
        printf("restored %llu verified records into %s\n", (unsigned long long)rep.checked, pos[1]);
    }
    return EXIT_OK;
}
