/* replay.h - history questions answered from the ledger: a case as of any
 * time, a person's status in effect on a date, and the audit trail. */
#ifndef DOCKET_REPLAY_H
#define DOCKET_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "docket/case.h"
#include "docket/event.h"
#include "docket/ledger.h"

#define DK_TIME_MAX INT64_MAX /* "as of now": every record */

/* A case read as of a time: its records with recorded_at <= asof, borrowed
 * from one ledger snapshot held until dk_case_view_close, and their fold
 * (reverts and rollbacks recorded after asof do not apply). */
typedef struct dk_case_view {
    dk_iter *it;
    dk_record *recs;
    size_t n;
    dk_case_state st;
    dk_void *voids;
    size_t nvoids;
} dk_case_view;

/* Read and fold case_id as of `asof` (DK_TIME_MAX: now). Uses the case's
 * index: O(events of the case), whatever the ledger's length. DK_ENOTFOUND
 * if the case had no events by then; DK_ECORRUPT if its events no longer
 * fold (the message names the seq). Close the view even on failure. */
int dk_case_read(dk_ledger *lg, const char *case_id, int64_t asof, dk_case_view *cv);
void dk_case_view_close(dk_case_view *cv);

/* Is record `seq` voided in the view? Its voiding seq, or 0. */
uint64_t dk_case_voided_by(const dk_case_view *cv, uint64_t seq);

/* A person's leave as in effect on a date, from a case's non-voided events. */
typedef struct dk_effective {
    int in_effect;         /* leave granted and in effect on the date */
    uint64_t decision_seq; /* the grant that speaks for the date; 0 if none */
    char product_type[24]; /* of that grant */
    char immigration_status[24];
    char valid_from[11];
    char valid_until[11]; /* "" for indefinite leave */
    char conditions[160]; /* comma-separated */
    int no_recourse_to_public_funds;
    uint64_t ended_seq; /* a leave.cancelled or void decision that ended it, or 0 */
    char ended_on[11];  /* its effective date */
    uint64_t ends_seq;  /* one recorded to end the grant in effect after the date, or 0 */
    char ends_on[11];   /* its effective date */
    char why[160];      /* one line: why the answer is what it is */
} dk_effective;

/* The status in effect on `date` (YYYY-MM-DD) as the view knows it: the
 * latest non-voided grant whose valid_from <= date, unless a later leave
 * cancellation or void decision took effect on or before the date (its eff,
 * else the day it was recorded); in effect if date <= valid_until. */
int dk_case_effective(const dk_case_view *cv, const char *date, dk_effective *out);

/* ---- audit ---- */

typedef struct dk_audit_signer {
    char actor[DK_ACTOR_MAX + 1];
    unsigned roles; /* as enrolled when the record was appended */
    int enrolled;   /* the actor existed (and was not revoked) then */
    int valid;      /* the signature verifies against the key it had then */
} dk_audit_signer;

typedef struct dk_audit_entry {
    uint64_t seq;
    int64_t recorded_at;
    const dk_record *rec; /* borrowed: valid during the callback only */
    dk_event ev;
    size_t nsigners;
    dk_audit_signer signers[DK_SIGS_MAX]; /* author first, then co-signers */
    uint64_t voided_by;                   /* 0 if not voided (case audits only) */
    char void_reason_code[32];            /* of the voiding event */
    char void_reason[256];
} dk_audit_entry;

/* Called once per entry, in seq order; a non-zero return stops the walk and
 * is returned. */
typedef int (*dk_audit_fn)(void *udata, const dk_audit_entry *e);

/* Every event of a case, with its signers as they stood then and what voided
 * it. DK_ENOTFOUND if the case has no events. */
int dk_audit_case(dk_ledger *lg, const char *case_id, dk_audit_fn fn, void *udata);

/* Every record an actor authored or co-signed with from <= recorded_at <= to
 * (and the records that enrolled, re-keyed or revoked it). Scans that range
 * of the log. DK_ENOTFOUND if the actor was never enrolled. */
int dk_audit_actor(dk_ledger *lg, const char *actor, int64_t from, int64_t to, dk_audit_fn fn,
                   void *udata);

#endif
