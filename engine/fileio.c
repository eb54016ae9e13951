/* fileio.c - small file helpers the engine's writers share: write a whole buffer, and
 * name the directory that holds a path (to sync its entry). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine_int.h"

int dk__write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO; /* a write of nothing: the disk is full, say */
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int dk__parent_dir(const char *path, char *out, size_t cap)
{
    if (snprintf(out, cap, "%s", path) >= (int)cap)
        return -1;
    char *slash = strrchr(out, '/');
    while (slash && slash > out && slash[1] == 0) { /* "a/b/": the slash ending it */
        *slash = 0;
        slash = strrchr(out, '/');
    }
    if (slash == NULL)
        snprintf(out, cap, ".");
    else
        slash[slash == out] = 0; /* "/b": the root */
    return 0;
}
