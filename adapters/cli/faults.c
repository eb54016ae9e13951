/* faults.c - a fault reported instead of a bare crash: LMDB trusts its pages, so a damaged
 * one can fault a read (SIGSEGV, SIGBUS) or fail an LMDB assertion (SIGABRT). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "docket/lmdbfile.h"

static void say(const char *s)
{
    ssize_t n = write(STDERR_FILENO, s, strlen(s));
    (void)n; /* nothing more can be done about a lost message here */
}

static void on_fault(int sig)
{
    if (sig == SIGABRT && !dk_lmdb_asserted())
        return; /* not LMDB's: abort() goes on to its default action (core, status 134) */
    say("docket: stopped by ");
    say(sig == SIGSEGV  ? "SIGSEGV (a memory fault)"
        : sig == SIGBUS ? "SIGBUS (a fault reading a mapped file)"
        : sig == SIGFPE ? "SIGFPE (an arithmetic fault)"
                        : "a failed LMDB assertion");
    say(". The likely cause is a damaged page in the ledger or in the views store (LMDB does "
        "not checksum its pages); otherwise a bug in docket. What this command had not "
        "committed was not written. `docket verify` checks the ledger; `docket views rebuild "
        "--fresh` rebuilds every view from it.\n");
    _exit(EXIT_DAMAGE);
}

void cli_guard_faults(void)
{
    const char *off = getenv("DOCKET_NO_FAULT_GUARD");
    if (off && *off)
        return;                   /* for a debugger's or a sanitizer's own report */
    static char stack[64 * 1024]; /* the handler's, should the fault be the stack's own */
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = sigaltstack(&ss, NULL) == 0 ? SA_ONSTACK : 0;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}
