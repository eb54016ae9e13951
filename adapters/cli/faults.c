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

static const char msg_segv[] = "docket: stopped by SIGSEGV reading an LMDB file";
static const char msg_bus[] = "docket: stopped by SIGBUS reading an LMDB file";
static const char msg_abrt[] = "docket: stopped by a failed LMDB assertion";
static const char msg_cause[] =
    ". The likely cause is a damaged page in the ledger or in the views store (LMDB does not "
    "checksum its pages). The ledger and the views keep what was last committed.";
static const char msg_filling[] =
    " The backup or restore under way left only its stage (backup.partial or restore.partial), "
    "never a data.mdb that is not whole; the next backup or restore into that directory "
    "removes it.";
static const char msg_next[] = " `docket verify` checks the ledger; `docket views rebuild --fresh` "
                               "rebuilds every view from it (DOCKET_NO_FAULT_GUARD=1 leaves such "
                               "faults to a debugger).\n";

/* One thread at a time in the handler (its buffer is shared): a second faulting thread
 * waits for the first to end the process. */
static atomic_flag in_handler = ATOMIC_FLAG_INIT;

/* A backup or restore is under way: its message then says what a stop leaves. */
static volatile sig_atomic_t filling;

void cli_fill_under_way(int on)
{
    filling = on;
}

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

/* Where a fault was: its data address, its instruction, and the word on top of the stack
 * (a leaf function's return address, such as libc's memcpy's, on x86-64). */
typedef struct fault_at {
    uintptr_t addr, ip, sp, caller;
} fault_at;

/* What /proc/self/maps shows of a fault: bits of these. */
enum { IN_MDB = 1, IP_LMDB = 2, IP_LIBC = 4, CALLER_LMDB = 8, SP_READABLE = 16 };

/* One line of /proc/self/maps: "lo-hi perms offset dev inode   path". */
static unsigned line_shows(const char *s, const char *end, const fault_at *f)
{
    const char *p = s;
    uintptr_t lo = hex(&p, end);
    if (p >= end || *p != '-')
        return 0;
    p++;
    uintptr_t hi = hex(&p, end);
    unsigned bits = 0;
    /* up to 64 KiB past the mapping's end: an offset read off a damaged page */
    if (f->addr >= lo && f->addr < hi + 65536 && has(s, end, "/data.mdb"))
        bits |= IN_MDB;
    if (has(s, end, "/liblmdb.so"))
        bits |= (f->ip >= lo && f->ip < hi ? IP_LMDB : 0) |
                (f->caller >= lo && f->caller < hi ? CALLER_LMDB : 0);
    if (f->ip >= lo && f->ip < hi && has(s, end, "/libc.so"))
        bits |= IP_LIBC;
    /* the stack pointer's word, and the next, inside a mapping that can be read */
    if (f->sp >= lo && f->sp + 2 * sizeof(uintptr_t) <= hi && p + 1 < end && p[1] == 'r')
        bits |= SP_READABLE;
    return bits;
}

/* What /proc/self/maps shows of the fault (line_shows), read with open and read only (both
 * async-signal-safe), a line at a time through a fixed buffer. */
static unsigned scan_maps(const fault_at *f)
{
    static char buf[8192];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t have = 0;
    unsigned bits = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have; i++)
            if (buf[i] == '\n') {
                bits |= line_shows(buf + start, buf + i, f);
                start = i + 1;
            }
        if (start == 0 && have == sizeof buf)
            have = 0; /* a line longer than the buffer: not one of ours */
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    close(fd);
    return bits;
}

/* The word on top of the stack: a leaf function's return address (libc's memcpy's). Read
 * only once the maps showed it readable; not instrumented, as ASan has no say on it. */
#if defined(__x86_64__)
__attribute__((no_sanitize_address)) static uintptr_t top_word(uintptr_t sp)
{
    return *(const volatile uintptr_t *)sp;
}
#endif

/* Does the fault show LMDB at work? Its address in an LMDB data file's mapping; or its
 * instruction in liblmdb's code (which faults only on pages that break its invariants: a
 * NULL sub-cursor from a damaged node's flags, say); or in libc called by liblmdb (a
 * memcpy of a damaged node's size, as in a compacting copy). */
static int lmdb_fault(fault_at *f)
{
    unsigned bits = scan_maps(f);
    if (bits & (IN_MDB | IP_LMDB))
        return 1;
    if (!(bits & IP_LIBC))
        return 0;
    if (f->caller != 0) /* aarch64: the link register, seen by the scan */
        return (bits & CALLER_LMDB) != 0;
    if (!(bits & SP_READABLE))
        return 0;
#if defined(__x86_64__)
    f->caller = top_word(f->sp);
#endif
    return f->caller != 0 && (scan_maps(f) & CALLER_LMDB) != 0;
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

/* The faulting instruction's and the stack's addresses, where this target's context says
 * them (on aarch64 the link register is the caller); else 0. */
static void fault_where(const void *ctx, fault_at *f)
{
    const ucontext_t *uc = ctx;
#if defined(__x86_64__)
    f->ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    f->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    f->ip = (uintptr_t)uc->uc_mcontext.pc;
    f->caller = (uintptr_t)uc->uc_mcontext.regs[30];
#else
    (void)uc;
#endif
}

static void say(const char *s, size_t len)
{
    ssize_t n = write(STDERR_FILENO, s, len);
    (void)n; /* nothing more can be done about a lost message here */
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    while (atomic_flag_test_and_set(&in_handler))
        pause(); /* another thread is ending the process */
    const char *msg = NULL;
    size_t len = 0;
    if (sig == SIGABRT && dk_lmdb_asserted()) {
        msg = msg_abrt;
        len = sizeof msg_abrt - 1;
    } else if (sig != SIGABRT && si->si_code > 0) {
        fault_at f = {(uintptr_t)si->si_addr, 0, 0, 0};
        fault_where(uc, &f);
        if (lmdb_fault(&f)) {
            msg = sig == SIGBUS ? msg_bus : msg_segv;
            len = sig == SIGBUS ? sizeof msg_bus - 1 : sizeof msg_segv - 1;
        }
    }
    if (msg == NULL) {
        atomic_flag_clear(&in_handler);
        pass_on(sig, si);
        return;
    }
    say(msg, len);
    say(msg_cause, sizeof msg_cause - 1);
    if (filling)
        say(msg_filling, sizeof msg_filling - 1);
    say(msg_next, sizeof msg_next - 1);
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
