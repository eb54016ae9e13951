/* asof.c - a case as of any time: its records up to that time, read through
 * the case's index from one snapshot, and their fold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "docket/replay.h"

void dk_case_view_close(dk_case_view *cv)
{
    free(cv->recs);
    free(cv->voids);
    dk_iter_close(cv->it);
    memset(cv, 0, sizeof *cv);
}

int dk_case_read(dk_ledger *lg, const char *case_id, int64_t asof, dk_case_view *cv)
{
    memset(cv, 0, sizeof *cv);
    int rc = dk_iter_open(lg, 1, case_id, &cv->it);
    size_t cap = 0;
    dk_record rec;
    /* recorded_at grows with seq, so the case's records up to asof are a
     * prefix of its index. */
    while (rc == 0 && (rc = dk_iter_next(cv->it, &rec)) == 0 && rec.recorded_at <= asof) {
        if (cv->n == cap) {
            cap = cap ? 2 * cap : 16;
            dk_record *more = realloc(cv->recs, cap * sizeof *more);
            if (more == NULL)
                return dk_fail(DK_ENOMEM, "out of memory reading case '%s'", case_id);
            cv->recs = more;
        }
        cv->recs[cv->n++] = rec;
    }
    if (rc != 0 && rc != DK_ENOTFOUND)
        return rc;
    if (cv->n == 0)
        return dk_fail(DK_ENOTFOUND, "case '%s' has no events%s", case_id,
                       asof == DK_TIME_MAX ? "" : " by then");
    uint64_t bad = 0;
    rc = dk_case_fold(cv->recs, cv->n, &cv->st, &cv->voids, &cv->nvoids, &bad);
    if (rc) {
        char why[200];
        snprintf(why, sizeof why, "%s", dk_errmsg());
        return dk_fail(DK_ECORRUPT, "case '%s' does not fold at seq %llu: %s", case_id,
                       (unsigned long long)bad, why);
    }
    return 0;
}

uint64_t dk_case_voided_by(const dk_case_view *cv, uint64_t seq)
{
    for (size_t i = 0; i < cv->nvoids; i++)
        if (cv->voids[i].seq == seq)
            return cv->voids[i].by_seq;
    return 0;
}
