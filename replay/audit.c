/* audit.c - the audit trail: each event with its signers' roles and keys as
 * they stood when it was appended, its signature checks, and what voided it. */
#include <stdio.h>
#include <string.h>

#include "docket/docket.h"
#include "docket/replay.h"

/* A ledger.genesis record is signed by the admin it enrols. */
static int genesis_key(const dk_event *ev, const char *actor, dk_actor_info *a)
{
    const char *s;
    size_t n, got = 0;
    char b64[64];
    if (strcmp(ev->type, "ledger.genesis") != 0 ||
        dk_data_str(ev->data, ev->data_len, "admin", &s, &n) != 0 || n != strlen(actor) ||
        memcmp(s, actor, n) != 0 ||
        dk_data_str(ev->data, ev->data_len, "admin_pubkey", &s, &n) != 0 || n >= sizeof b64)
        return DK_ENOTFOUND;
    memcpy(b64, s, n);
    b64[n] = 0;
    memset(a, 0, sizeof *a);
    if (dk_b64_decode(b64, a->pubkey, sizeof a->pubkey, &got) != 0 || got != sizeof a->pubkey)
        return DK_ENOTFOUND;
    snprintf(a->id, sizeof a->id, "%s", actor);
    a->roles = DK_ROLE_ADMIN;
    return 0;
}

/* Decode the record and check each signer against the ledger's history. */
static int entry_of(dk_ledger *lg, const dk_record *rec, dk_audit_entry *e)
{
    memset(e, 0, sizeof *e);
    e->rec = rec;
    e->seq = rec->seq;
    e->recorded_at = rec->recorded_at;
    if (dk_event_decode_stored(rec->body, rec->body_len, &e->ev) != 0)
        return dk_fail(DK_ECORRUPT, "record %llu does not decode", (unsigned long long)rec->seq);
    e->nsigners = rec->nsigs;
    for (size_t i = 0; i < rec->nsigs; i++) {
        dk_audit_signer *s = &e->signers[i];
        dk_actor_info a;
        snprintf(s->actor, sizeof s->actor, "%s", rec->sigs[i].actor);
        int rc = dk_ledger_actor_at(lg, s->actor, rec->seq, &a);
        if (rc == DK_ENOTFOUND)
            rc = genesis_key(&e->ev, s->actor, &a);
        if (rc == DK_ENOTFOUND)
            continue; /* not enrolled then: enrolled = valid = 0 */
        if (rc)
            return rc;
        s->roles = a.roles;
        s->enrolled = !a.revoked;
        s->valid = dk_verify(a.pubkey, rec->body, rec->body_len, rec->sigs[i].sig) == 0;
    }
    return 0;
}

/* Fill the voiding event's reason for a voided entry. */
static void void_reason(const dk_case_view *cv, dk_audit_entry *e)
{
    e->voided_by = dk_case_voided_by(cv, e->rec->seq);
    for (size_t i = 0; e->voided_by && i < cv->n; i++) {
        if (cv->recs[i].seq != e->voided_by)
            continue;
        dk_event v;
        const char *s;
        size_t n;
        if (dk_event_decode_stored(cv->recs[i].body, cv->recs[i].body_len, &v) != 0)
            return;
        if (dk_data_str(v.data, v.data_len, "reason_code", &s, &n) == 0)
            snprintf(e->void_reason_code, sizeof e->void_reason_code, "%.*s", (int)n, s);
        if (dk_data_str(v.data, v.data_len, "reason", &s, &n) == 0)
            snprintf(e->void_reason, sizeof e->void_reason, "%.*s", (int)n, s);
    }
}

int dk_audit_case(dk_ledger *lg, const char *case_id, dk_audit_fn fn, void *udata)
{
    dk_case_view cv;
    int rc = dk_case_read(lg, case_id, DK_TIME_MAX, &cv);
    for (size_t i = 0; rc == 0 && i < cv.n; i++) {
        dk_audit_entry e;
        if ((rc = entry_of(lg, &cv.recs[i], &e)) == 0) {
            void_reason(&cv, &e);
            rc = fn(udata, &e);
        }
    }
    dk_case_view_close(&cv);
    return rc;
}

/* Is the record the actor's doing, or an event about the actor? */
static int involves(const dk_record *rec, const dk_event *ev, const char *actor)
{
    for (size_t i = 0; i < rec->nsigs; i++)
        if (strcmp(rec->sigs[i].actor, actor) == 0)
            return 1;
    const char *s;
    size_t n;
    if (ev->case_id[0] == 0 && (dk_data_str(ev->data, ev->data_len, "id", &s, &n) == 0 ||
                                dk_data_str(ev->data, ev->data_len, "admin", &s, &n) == 0))
        return n == strlen(actor) && memcmp(s, actor, n) == 0;
    return 0;
}

int dk_audit_actor(dk_ledger *lg, const char *actor, int64_t from, int64_t to, dk_audit_fn fn,
                   void *udata)
{
    if (from > to)
        return dk_fail(DK_EINVAL, "the audit window ends before it starts");
    /* a mistyped id would list nothing, which reads as "did nothing" (helper-70) */
    dk_actor_info who;
    int rc = dk_ledger_actor(lg, actor, &who);
    if (rc == DK_ENOTFOUND)
        return dk_fail(DK_ENOTFOUND, "no actor '%s' was ever enrolled in this ledger", actor);
    if (rc)
        return rc;
    uint64_t first = 0;
    rc = from > INT64_MIN ? dk_ledger_seq_at(lg, from - 1, &first) : 0;
    if (rc != 0 && rc != DK_ENOTFOUND)
        return rc;
    dk_iter *it;
    if ((rc = dk_iter_open(lg, first + 1, NULL, &it)) != 0)
        return rc;
    dk_record rec;
    while ((rc = dk_iter_next(it, &rec)) == 0 && rec.recorded_at <= to) {
        dk_event ev;
        if (dk_event_decode_stored(rec.body, rec.body_len, &ev) != 0) {
            rc = dk_fail(DK_ECORRUPT, "record %llu does not decode", (unsigned long long)rec.seq);
            break;
        }
        if (!involves(&rec, &ev, actor))
            continue;
        dk_audit_entry e;
        if ((rc = entry_of(lg, &rec, &e)) != 0)
            break;
        if (ev.case_id[0]) { /* what voided it: from the case's own history */
            dk_case_view cv;
            if ((rc = dk_case_read(lg, ev.case_id, DK_TIME_MAX, &cv)) == 0)
                void_reason(&cv, &e);
            dk_case_view_close(&cv);
            if (rc)
                break;
        }
        if ((rc = fn(udata, &e)) != 0)
            break;
    }
    dk_iter_close(it);
    return rc == DK_ENOTFOUND ? 0 : rc;
}
