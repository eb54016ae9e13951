/* engine_int.h - helpers shared by the engine's files, not part of the public
 * contract (include/docket/ is). */
#ifndef DOCKET_ENGINE_INT_H
#define DOCKET_ENGINE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "docket/bytes.h"

#if defined(__GNUC__)
#define DK__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DK__PRINTF(a, b)
#endif

/* Record a detailed message for dk_errmsg() and return `err`. */
int dk__fail(int err, const char *fmt, ...) DK__PRINTF(2, 3);
void dk__set_errmsg(const char *msg);

/* 1 if `id` is 1..DK_ACTOR_MAX characters of [A-Za-z0-9._@-]. */
int dk__actor_id_valid(const char *id, size_t len);

/* Valid UTF-8 (no overlongs, no surrogates, no NUL)? */
int dk__utf8_valid(const char *s, size_t len);
/* dk_event_decode for an event to be appended now, with the rules a stored event is not
 * held to (it is read as it was accepted): times within DK_TIME_EARLIEST..DK_TIME_LATEST,
 * and no control character but tab and newline in its data. DK_ESCHEMA names the rule. */
struct dk_event;
int dk__event_decode_new(const uint8_t *buf, size_t len, struct dk_event *ev);
/* dk_msgpack_bounded without the nesting check (mpcheck.c), for the fold's stored data. */
int dk__msgpack_counts_bounded(const uint8_t *buf, size_t len, const char *what);
/* case.c: the lifecycle's rules checked at append only (through dk__append_rules). They
 * are not in the fold, so that a ledger written before them still folds and verifies;
 * verify lists what breaks them as notices. 0, or DK_ETRANSITION naming the case and the
 * rule.
 * dk__case_check_new, on a plain event and the case's state before it: a status
 * correction neither sets nor leaves decided, appealed, closed, leave_cancelled or
 * interview_scheduled (one senior could otherwise undo a leave cancellation, or make a
 * case decided with no decision, or one with no booking interviewed), nor moves a case
 * whose interview is still booked (a withdrawn one: the slot would be held in a status no
 * interview event is taken in; helper-77), appeal.decided needs an
 * appeal lodged, leave.cancelled needs a grant's leave held (the fold also takes a latest decision
 * that is a grant, as it did before) and waits for a booked interview to be cancelled, and a
 * decision lists each condition once (DK_ESCHEMA). */
struct dk_case_state;
struct dk_record;
struct dk_void;
int dk__case_check_new(const struct dk_case_state *before, const struct dk_event *ev);
/* The part of dk_case_permit that the case's state decides, for an actor with `roles`: a
 * caseworker decides only a case assigned to them. 0 or DK_EDENIED naming it. */
int dk__permit_state(const struct dk_event *ev, unsigned roles, const struct dk_case_state *st);
/* May the revert or rollback `ev` be appended? recs are the case's records with `ev` last;
 * before[] and after[] what their fold voids without `ev` and with it (as dk_case_fold
 * gives them). A rollback must change which events are in force: the fold without it
 * voids other events, reverts and rollbacks aside (one to the last event or later, or a
 * repeat of one in force, is refused). And no undo brings back into force a status
 * correction that the first rule refuses (one written before it, and voided since), which
 * would apply it with one signature. 0 or DK_ETRANSITION naming it. */
int dk__undo_allowed_given(const struct dk_event *ev, const struct dk_record *recs, size_t n,
                           const struct dk_void *before, size_t nbefore,
                           const struct dk_void *after, size_t nafter);
/* dk_case_fold, calling `obs` after each event it applies (voided ones, reverts and
 * rollbacks aside) with the case before and after it; a non-zero return ends the fold
 * with that value (*bad_seq: not set). */
typedef int (*dk__fold_observer)(void *arg, const struct dk_record *rec, const struct dk_event *ev,
                                 const struct dk_case_state *before,
                                 const struct dk_case_state *after);
int dk__case_fold_observed(const struct dk_record *recs, size_t n, struct dk_case_state *st,
                           struct dk_void **voids, size_t *nvoids, uint64_t *bad_seq,
                           dk__fold_observer obs, void *arg);
/* The same on bodies decoded already (evs[i] is recs[i]'s): for a caller that folds the
 * same records twice. */
int dk__case_fold_decoded(const struct dk_record *recs, const struct dk_event *evs, size_t n,
                          struct dk_case_state *st, struct dk_void **voids, size_t *nvoids,
                          uint64_t *bad_seq, dk__fold_observer obs, void *arg);
/* The checks of a decoded body's fields that both decoders share (codec.c, codec_read.c). */
int dk__event_check_fields(const struct dk_event *ev);
/* The part of those a chained decode keeps: the body's version, and `at` not negative. */
int dk__event_check_version_at(const struct dk_event *ev);

/* FNV-1a of a string: the hash of the small tables keyed by actor id. */
static inline uint64_t dk__fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* fileio.c: write all n bytes (retrying EINTR); 0, or -1 with errno set (EIO for a write
 * of nothing). */
int dk__write_all(int fd, const void *buf, size_t n);
/* The directory that holds `path` ("." for a bare name, "/" for "/x"; trailing slashes
 * ignored) into out; -1 if it does not fit. */
int dk__parent_dir(const char *path, char *out, size_t cap);

/* The Merkle frontier (merkle.c): the roots of the complete subtrees of the leaves so
 * far, largest first; after n leaves there is one per set bit of n. A push also keeps
 * the nodes it completed (levels 0..nformed-1), to be compared with a stored tree. */
typedef struct dk__frontier {
    uint8_t h[65][32]; /* one per set bit, and a pushed leaf before it merges */
    uint64_t size[65];
    int n;
    uint8_t formed[65][32];
    int nformed;
} dk__frontier;
void dk__frontier_push(dk__frontier *f, const uint8_t leaf[32]);
/* MTH of the leaves the frontier covers (of none: SHA-256 of nothing). */
void dk__frontier_root(const dk__frontier *f, uint8_t root[32]);

/* Look up a key in a canonical data map (msgpack bytes). The out-params
 * borrow `data`. Return 0, DK_ENOTFOUND if absent, DK_ESCHEMA if the value
 * has another type. */
int dk__data_str(const uint8_t *data, size_t len, const char *key, const char **s, size_t *slen);
int dk__data_u64(const uint8_t *data, size_t len, const char *key, uint64_t *v);
int dk__data_strlist(const uint8_t *data, size_t len, const char *key,
                     int (*each)(void *ctx, const char *s, size_t slen), void *ctx);

#endif
