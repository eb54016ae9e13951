/* faults.c - a fault reported instead of a bare crash: LMDB trusts its pages, so a damaged
 * one can fault a read (SIGSEGV, SIGBUS) or fail an LMDB assertion (SIGABRT). */
#define _GNU_SOURCE /* REG_RIP, REG_EIP */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "cli.h"
#include "docket/lmdbfile.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "dk_lmdb_asserted must be lock-free in a handler");

/* Each message is one write(): two threads faulting at once do not interleave them. */
#define ADVICE                                                                                     \
    ". The likely cause is a damaged page in the ledger or in the views store (LMDB does "         \
    "not checksum its pages). The ledger and the views keep what was last committed; a file "      \
    "this command was writing (a backup) may be incomplete. `docket verify` checks the "           \
    "ledger; `docket views rebuild --fresh` rebuilds every view from it.\n"
static const char msg_segv[] = "docket: stopped by SIGSEGV reading an LMDB file" ADVICE;
static const char msg_bus[] = "docket: stopped by SIGBUS reading an LMDB file" ADVICE;
static const char msg_abrt[] = "docket: stopped by a failed LMDB assertion" ADVICE;

static struct sigaction previous[3]; /* SIGSEGV, SIGBUS, SIGABRT: a sanitizer's, or default */
static const int guarded[3] = {SIGSEGV, SIGBUS, SIGABRT};

static int slot_of(int sig)
{
    return sig == SIGSEGV ? 0 : sig == SIGBUS ? 1 : 2;
}

/* Parse hex digits at *p; moves *p past them. */
static uintptr_t hex(const char **p, const char *end)
{
    uintptr_t v = 0;
    for (; *p < end; (*p)++) {
        char c = **p;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            break;
        v = v << 4 | (uintptr_t)d;
    }
    return v;
}

/* Does s..end hold `name` (a part of a path: "/data.mdb", "/liblmdb.so")? */
static int has(const char *s, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = s; p + n <= end; p++)
        if (memcmp(p, name, n) == 0)
            return 1;
    return 0;
}

/* One line of /proc/self/maps: "lo-hi perms offset dev inode   path". Does it show LMDB
 * at work: the fault's data address `a` in an LMDB data file's mapping (or up to 64 KiB
 * past its end: an offset read off a damaged page), or the faulting instruction `ip` in
 * liblmdb's code (which faults only on pages that break its invariants: a NULL sub-cursor
 * from a damaged node's flags, say)? */
static int line_shows_lmdb(const char *s, const char *end, uintptr_t a, uintptr_t ip)
{
    const char *p = s;
    uintptr_t lo = hex(&p, end);
    if (p >= end || *p != '-')
        return 0;
    p++;
    uintptr_t hi = hex(&p, end);
    if (a >= lo && a < hi + 65536 && has(s, end, "/data.mdb"))
        return 1;
    return ip >= lo && ip < hi && has(s, end, "/liblmdb.so");
}

/* Does the fault show LMDB at work (line_shows_lmdb)? /proc/self/maps is read with open and
 * read only (both async-signal-safe), a line at a time through a fixed buffer. */
static int lmdb_fault(uintptr_t a, uintptr_t ip)
{
    static char buf[8192];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t have = 0;
    int found = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have && !found; i++)
            if (buf[i] == '\n') {
                found = line_shows_lmdb(buf + start, buf + i, a, ip);
                start = i + 1;
            }
        if (found)
            break;
        if (start == 0 && have == sizeof buf)
            have = 0; /* a line longer than the buffer: not one of ours */
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    close(fd);
    return found;
}

/* Not damage: the action that was there before (a sanitizer's report, or the default:
 * a core) takes the signal. A fault happens again when the handler returns; a signal that
 * was sent (kill, raise, abort) is sent again. */
static void pass_on(int sig, const siginfo_t *si)
{
    sigaction(sig, &previous[slot_of(sig)], NULL);
    if (sig == SIGABRT || si->si_code <= 0)
        raise(sig);
}

/* The faulting instruction's address, where this target's context says it; else 0. */
static uintptr_t fault_ip(const void *ctx)
{
    const ucontext_t *uc = ctx;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__i386__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_EIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    const char *msg = NULL;
    size_t len = 0;
    if (sig == SIGABRT && dk_lmdb_asserted()) {
        msg = msg_abrt;
        len = sizeof msg_abrt - 1;
    } else if (sig != SIGABRT && si->si_code > 0 &&
               lmdb_fault((uintptr_t)si->si_addr, fault_ip(uc))) {
        msg = sig == SIGBUS ? msg_bus : msg_segv;
        len = sig == SIGBUS ? sizeof msg_bus - 1 : sizeof msg_segv - 1;
    }
    if (msg == NULL) {
        pass_on(sig, si);
        return;
    }
    ssize_t n = write(STDERR_FILENO, msg, len);
    (void)n; /* nothing more can be done about a lost message here */
    _exit(EXIT_DAMAGE);
}

void cli_guard_faults(void)
{
    const char *off = getenv("DOCKET_NO_FAULT_GUARD");
    if (off && *off)
        return;                   /* for a debugger's own view of the fault */
    static char stack[64 * 1024]; /* the handler's, should the fault be the stack's own */
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | (sigaltstack(&ss, NULL) == 0 ? SA_ONSTACK : 0);
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        sigaction(guarded[i], &sa, &previous[i]);
}
