/* error.h - docket's error codes, one table for the enum, names and messages.
 * Every fallible docket function returns 0 or a negative DK_E* code from here. */
#ifndef DOCKET_ERROR_H
#define DOCKET_ERROR_H

/* XX(name, value, message). New codes go last; never renumber. */
#define DK_ERRNO_MAP(XX)                                                                           \
    XX(EINVAL, -1, "invalid argument")                                                             \
    XX(ENOMEM, -2, "out of memory")                                                                \
    XX(EIO, -3, "input/output error")                                                              \
    XX(ECORRUPT, -4, "ledger is corrupt")                                                          \
    XX(ENOTFOUND, -5, "not found")                                                                 \
    XX(EDENIED, -6, "permission denied")                                                           \
    XX(EBADSIG, -7, "signature does not verify")                                                   \
    XX(ECONFLICT, -8, "expected version differs")                                                  \
    XX(ETRANSITION, -9, "transition not allowed")                                                  \
    XX(EDECODE, -10, "malformed encoding")                                                         \
    XX(EEXIST, -11, "already exists")                                                              \
    XX(EPASSPHRASE, -12, "wrong passphrase")                                                       \
    XX(EKEYFILE, -13, "unusable key file")                                                         \
    XX(ECMDREUSE, -14, "command id reused with a different event")                                 \
    XX(ECLOSED, -15, "ledger is closed")                                                           \
    XX(ETOOBIG, -16, "value too large")                                                            \
    XX(ESCHEMA, -17, "event data does not match its type's schema")                                \
    XX(EPROOF, -18, "proof does not verify")

typedef enum {
    DK_OK = 0,
#define DK__ERR_ENUM(name, value, msg) DK_##name = value,
    DK_ERRNO_MAP(DK__ERR_ENUM)
#undef DK__ERR_ENUM
} dk_err;

/* Short message for a code ("signature does not verify"); never NULL. */
const char *dk_strerror(int err);
/* The code's name ("DK_EBADSIG"); never NULL. */
const char *dk_err_name(int err);

/* The longest detail message kept (with its NUL): longer ones are cut. */
#define DK_ERRMSG_MAX 1024

/* The detailed message of the last failing docket call on this thread
 * ("case HO-1 is at version 3, the event expected 2"), or "" if none. */
const char *dk_errmsg(void);

/* For modules built on libdocket (replay, projections, adapters): record a
 * detailed message for dk_errmsg() and return `err`. */
int dk_fail(int err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
