/* disk.c - what a durable commit costs on this disk, with no database: n 4 KiB pages
 * written then fdatasync'd, plus one page rewritten and synced (as LMDB's meta page).
 * Prints the p50 per commit for pages side by side, spread apart, and at random. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>

#include "benchlib.h"
#include "harness.h"

#define FILE_PAGES (256 * 1024) /* a 1 GiB file */
#define COMMITS    400

static double commit_p50(int fd, int pages, long stride, uint64_t *rng)
{
    static char page[4096];
    double lat[COMMITS];
    memset(page, 7, sizeof page);
    for (int i = 0; i < COMMITS; i++) {
        double s = now_s();
        th_xorshift(rng);
        long span = stride > 0 ? stride * pages : 0;
        long base = 1 + (long)(*rng % (uint64_t)(FILE_PAGES - span - 1));
        for (int p = 0; p < pages; p++) {
            long at = base + p * stride;
            if (stride == 0) { /* anywhere in the file */
                th_xorshift(rng);
                at = 1 + (long)(*rng % (FILE_PAGES - 1));
            }
            if (pwrite(fd, page, sizeof page, (off_t)at * 4096) != (ssize_t)sizeof page)
                TH_FAIL("pwrite failed");
        }
        if (fdatasync(fd) != 0 || pwrite(fd, page, sizeof page, 0) != (ssize_t)sizeof page ||
            fdatasync(fd) != 0)
            TH_FAIL("write or fdatasync failed");
        lat[i] = (now_s() - s) * 1e6;
    }
    return pct(lat, COMMITS, 0.5);
}

int main(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/disk.dat", th_tmpdir());
    atexit(th_cleanup);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        TH_FAIL("cannot create %s", path);
    static char chunk[1 << 20];
    for (int i = 0; i < FILE_PAGES / 256; i++) /* written, not sparse */
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
            TH_FAIL("cannot fill %s", path);
    fdatasync(fd);
    printf("# %s: 1 GiB; each commit writes n pages, fdatasync, one more page, fdatasync\n", path);
    uint64_t rng = 88172645463325252ull;
    static const struct {
        int pages;
        long stride;
        const char *name;
    } runs[] = {
        {1, 1, "disk_commit_1_page_p50_us"},
        {14, 1, "disk_commit_14_adjacent_pages_p50_us"},
        {14, 2, "disk_commit_14_pages_2_apart_p50_us"},
        {14, 8, "disk_commit_14_pages_8_apart_p50_us"},
        {14, 64, "disk_commit_14_pages_64_apart_p50_us"},
        {14, 0, "disk_commit_14_random_pages_p50_us"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++)
        line(runs[i].name, commit_p50(fd, runs[i].pages, runs[i].stride, &rng), "us");
    close(fd);
    return 0;
}
