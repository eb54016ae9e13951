/* case.h - the casework domain, pure: event schemas, the lifecycle transition
 * table, the role permission table, and the case fold. No I/O, no clock. */
#ifndef DOCKET_CASE_H
#define DOCKET_CASE_H

#include <stddef.h>
#include <stdint.h>

#include "docket/event.h"

/* Case statuses. New ones go last. */
#define DK_STATUS_MAP(XX)                                                                          \
    XX(NONE, "none")                                                                               \
    XX(RECEIVED, "received")                                                                       \
    XX(VALIDATED, "validated")                                                                     \
    XX(UNDER_CONSIDERATION, "under_consideration")                                                 \
    XX(INTERVIEW_SCHEDULED, "interview_scheduled")                                                 \
    XX(DECIDED, "decided")                                                                         \
    XX(APPEALED, "appealed")                                                                       \
    XX(CLOSED, "closed")                                                                           \
    XX(WITHDRAWN, "withdrawn")                                                                     \
    XX(LEAVE_CANCELLED, "leave_cancelled")

typedef enum {
#define DK__ST_ENUM(name, str) DK_ST_##name,
    DK_STATUS_MAP(DK__ST_ENUM)
#undef DK__ST_ENUM
        DK_ST_COUNT
} dk_status;

const char *dk_status_name(int status);

/* The words a field may take, NULL-terminated, as the schemas define them:
 * "case_type", "channel", "outcome", "product_type", "immigration_status",
 * "conditions", "reason_code". NULL for another field. */
const char *const *dk_case_vocabulary(const char *field);
/* Status name -> DK_ST_*; -1 if unknown. */
int dk_status_parse(const char *s, size_t len);

#define DK_OPEN_ERRORS_MAX 16

/* A case's folded state. Fixed size, no pointers: the writer keeps it inline
 * (case_state) and it is rebuilt from the case's events whenever in doubt. */
typedef struct dk_case_state {
    uint64_t version;  /* events on the case, voided ones and reverts included */
    uint64_t last_seq; /* last event on the case */
    int status;
    char case_type[16];
    char channel[20];
    char received_on[11];
    char applicant_ref[33];
    char applicant_name[129];
    char date_of_birth[11];
    char nationality[4];
    char assignee[DK_ACTOR_MAX + 1];
    struct {
        int has;
        char outcome[9];
        char product_type[24];
        char immigration_status[24];
        int no_recourse_to_public_funds;
        char conditions[160]; /* comma-separated */
        char valid_from[11];
        char valid_until[11];
        char rules_version[65];
        uint64_t seq;
    } decision; /* the latest decision */
    struct {
        uint64_t grant_seq;     /* the grant whose leave the case holds (a refusal after it
                                   leaves it; a void decision or leave.cancelled ends it) */
        uint64_t cancelled_seq; /* the leave.cancelled that ended the last grant's leave */
    } leave;
    struct dk_interview {
        int active;
        int64_t slot_start, slot_end;
        char interviewer[DK_ACTOR_MAX + 1];
        char location[129];
        uint64_t seq;
        uint32_t attended, no_shows, cancelled;
    } interview;
    uint32_t open_errors;
    uint64_t error_seqs[DK_OPEN_ERRORS_MAX]; /* open error.reported events */
    char email[129];
    char postal_address[257];
    int appeal_open;
    char appeal_outcome[16];
    uint64_t voided; /* events on the case voided by reverts or rollbacks */
} dk_case_state;

/* A state as compact canonical bytes (a layout tag, then the struct with nothing after
 * its strings' ends and zero runs squeezed): equal states give equal bytes. `out` needs
 * DK_CASE_STATE_PACKED_MAX bytes; returns the length, 0 if cap is too small. */
#define DK_CASE_STATE_PACKED_MAX (4 + sizeof(dk_case_state) + sizeof(dk_case_state) / 127 + 2)
size_t dk_case_state_pack(const dk_case_state *st, uint8_t *out, size_t cap);
/* The inverse: DK_EINVAL if `in` is not of this layout (another build's), DK_ECORRUPT if
 * it is but its bytes are damaged. */
int dk_case_state_unpack(const uint8_t *in, size_t len, dk_case_state *st);

/* Check an event's data against its type's schema: required fields, types,
 * bounds and enums. DK_ESCHEMA naming the field, or DK_EINVAL for an unknown
 * case event type. System events (ledger.*, actor.*) are not checked here. */
int dk_case_check_schema(const dk_event *ev);

/* Apply one (non-voided) event to a state: the lifecycle rules. DK_ETRANSITION
 * naming the current status and the events allowed from it, or DK_ESCHEMA.
 * On failure *st is unchanged. */
int dk_case_apply(dk_case_state *st, uint64_t seq, const dk_event *ev);
/* The same step without a copy of the state: on failure *st is left part-changed. For
 * folds that give the state up when a step fails (a rebuild's). */
int dk_case_step(dk_case_state *st, uint64_t seq, const dk_event *ev);

/* May an actor with `roles` author `ev` on a case in state `st`? Co-signers'
 * ids and roles are given for four-eyes events; for an event.reverted,
 * `target_type` is the type its chain of targets ends at (the target, or, when
 * that is itself an event.reverted, its target, and so on), else NULL: undoing
 * needs the roles that may author that type, and four eyes when it is a
 * decision, a leave cancellation or a rollback. DK_EDENIED naming actor, role
 * and event type. */
int dk_case_permit(const dk_event *ev, unsigned roles, const dk_case_state *st,
                   const char *const *cosigners, const unsigned *cosigner_roles, size_t ncos,
                   const char *target_type);

/* One voided event and the event that voided it. */
typedef struct dk_void {
    uint64_t seq;
    uint64_t by_seq;
    int meta; /* the voided event is itself a revert or a rollback */
} dk_void;

/* Fold a case's records, in seq order, into *st: reverts void their target
 * (reverting a revert restores it), a rollback voids every earlier event of
 * the case recorded after its to_time; then the rest are applied in order
 * with dk_case_apply. *voids (malloc'd, may be NULL) lists what was voided.
 * If an event no longer applies, returns its error and its seq in *bad_seq. */
int dk_case_fold(const dk_record *recs, size_t n, dk_case_state *st, dk_void **voids,
                 size_t *nvoids, uint64_t *bad_seq);

/* dk_case_fold in parts, for a caller that has decoded the bodies already (evs[i] is
 * recs[i]'s) or folds the same records more than once. dk_case_voids fills voided_by[0..n)
 * with the seq of the revert or rollback that voids each record, 0 if none (on a malformed
 * revert or rollback: DK_ESCHEMA and its seq in *bad_seq). The fold then takes the records
 * in order: dk_case_skip for each voided one and each revert or rollback left in force,
 * dk_case_apply for the rest. */
int dk_case_voids(const dk_record *recs, const dk_event *evs, size_t n, uint64_t *voided_by,
                  uint64_t *bad_seq);
void dk_case_skip(dk_case_state *st, uint64_t seq, int voided);

#endif
