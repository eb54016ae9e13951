/* error.c - names and messages for docket's error codes, and the per-thread
 * detailed message of the last failing call (dk_errmsg). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "docket/error.h"
#include "engine_int.h"

static _Thread_local char errbuf[DK_ERRMSG_MAX];

const char *dk_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XX(name, value, msg)                                                                       \
    case DK_##name:                                                                                \
        return msg;
        DK_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *dk_err_name(int err)
{
    switch (err) {
    case 0:
        return "DK_OK";
#define XX(name, value, msg)                                                                       \
    case DK_##name:                                                                                \
        return "DK_" #name;
        DK_ERRNO_MAP(XX)
#undef XX
    }
    return "DK_UNKNOWN";
}

const char *dk_errmsg(void)
{
    return errbuf;
}

int dk__fail(int err, const char *fmt, ...)
{
    /* into a buffer of its own first: an argument may be dk_errmsg(), errbuf itself */
    char msg[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(errbuf, msg, sizeof errbuf);
    return err;
}

int dk_fail(int err, const char *fmt, ...)
{
    /* into a buffer of its own first: an argument may be dk_errmsg(), errbuf itself */
    char msg[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(errbuf, msg, sizeof errbuf);
    return err;
}

void dk__set_errmsg(const char *msg)
{
    if (msg != errbuf)
        snprintf(errbuf, sizeof errbuf, "%s", msg);
}
