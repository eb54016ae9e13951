/* casefix.h - test fixtures for casework events: canonical data maps built
 * field by field, valid data for every case event type, and a small world. */
#ifndef DOCKET_TEST_CASEFIX_H
#define DOCKET_TEST_CASEFIX_H

#include "fixture.h"
#include "harness.h"

#ifndef ACTOR_N
#define ACTOR_N(k) ((1ull << 40) + (k)) /* command-id seeds for fx_enroll */
#endif

/* ---- data maps, packed with their keys in canonical (bytewise) order ---- */

enum { V_STR, V_BOOL, V_U64, V_LIST, V_MAP };

typedef struct dval {
    char key[32];
    int kind;
    char s[600]; /* V_STR; V_LIST: comma-separated items */
    uint64_t u;  /* V_U64, V_BOOL */
} dval;

#define DMAP_MAX 12

typedef struct dmap {
    size_t n, nsub;
    dval v[DMAP_MAX];
    dval sub[DMAP_MAX]; /* the one nested map (a V_MAP entry), e.g. case.opened's applicant */
} dmap;

static inline dval *d_slot(dval *v, size_t *n, const char *key)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i].key, key) == 0)
            return &v[i];
    ASSERT(*n < DMAP_MAX);
    dval *e = &v[(*n)++];
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    return e;
}

static inline void d_put(dval *v, size_t *n, const char *key, int kind, const char *s, uint64_t u)
{
    dval *e = d_slot(v, n, key);
    e->kind = kind;
    snprintf(e->s, sizeof e->s, "%s", s ? s : "");
    e->u = u;
}

static inline void d_str(dmap *d, const char *key, const char *s)
{
    d_put(d->v, &d->n, key, V_STR, s, 0);
}

static inline void d_u64(dmap *d, const char *key, uint64_t u)
{
    d_put(d->v, &d->n, key, V_U64, NULL, u);
}

static inline void d_bool(dmap *d, const char *key, int b)
{
    d_put(d->v, &d->n, key, V_BOOL, NULL, (uint64_t)(b != 0));
}

static inline void d_list(dmap *d, const char *key, const char *csv)
{
    d_put(d->v, &d->n, key, V_LIST, csv, 0);
}

static inline void d_sub_str(dmap *d, const char *key, const char *s)
{
    d_put(d->sub, &d->nsub, key, V_STR, s, 0);
}

static inline void d_remove(dval *v, size_t *n, const char *key)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i].key, key) == 0) {
            v[i] = v[--*n];
            return;
        }
    TH_FAIL("no key %s to remove", key);
}

static inline void d_del(dmap *d, const char *key)
{
    d_remove(d->v, &d->n, key);
}

static inline int cmp_dval(const void *a, const void *b)
{
    return strcmp((*(const dval *const *)a)->key, (*(const dval *const *)b)->key);
}

static inline void pack_vals(msgpack_packer *pk, const dval *v, size_t n, const dmap *d)
{
    const dval *order[DMAP_MAX];
    for (size_t i = 0; i < n; i++)
        order[i] = &v[i];
    qsort(order, n, sizeof *order, cmp_dval);
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < n; i++) {
        const dval *e = order[i];
        fx_pack_str(pk, e->key);
        switch (e->kind) {
        case V_STR:
            fx_pack_str(pk, e->s);
            break;
        case V_BOOL:
            if (e->u)
                msgpack_pack_true(pk);
            else
                msgpack_pack_false(pk);
            break;
        case V_U64:
            msgpack_pack_uint64(pk, e->u);
            break;
        case V_LIST: {
            char buf[sizeof e->s];
            size_t count = e->s[0] ? 1 : 0;
            for (const char *c = e->s; *c; c++)
                count += *c == ',';
            msgpack_pack_array(pk, count);
            snprintf(buf, sizeof buf, "%s", e->s);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                fx_pack_str(pk, t);
            break;
        }
        case V_MAP:
            pack_vals(pk, d->sub, d->nsub, d);
            break;
        }
    }
}

/* ---- events: encoded, decoded, signed ---- */

typedef struct tev {
    uint8_t *body;
    size_t len;
    dk_event ev; /* decoded from body */
} tev;

static uint64_t next_cmd = 1;

static inline void tev_make(tev *t, const char *type, const char *case_id, const char *actor,
                            const dmap *d, const uint64_t *expect)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_vals(&pk, d->v, d->n, d);
    dk_event ev;
    memset(&ev, 0, sizeof ev);
    ev.v = DK_EVENT_VERSION;
    snprintf(ev.type, sizeof ev.type, "%s", type);
    snprintf(ev.case_id, sizeof ev.case_id, "%s", case_id);
    snprintf(ev.actor, sizeof ev.actor, "%s", actor);
    uint64_t n = next_cmd++;
    ev.at = 1795514400000000 + (int64_t)n;
    for (int i = 0; i < 8; i++)
        ev.cmd[i] = (uint8_t)(n >> (8 * i));
    memcpy(ev.cmd + 8, "casetest", 8);
    if (expect) {
        ev.has_expect = 1;
        ev.expect = *expect;
    }
    ev.data = (const uint8_t *)sb.data;
    ev.data_len = sb.size;
    ASSERT_OK(dk_event_encode(&ev, &t->body, &t->len));
    msgpack_sbuffer_destroy(&sb);
    ASSERT_OK(dk_event_decode(t->body, t->len, &t->ev));
}

static inline void tev_free(tev *t)
{
    free(t->body);
    t->body = NULL;
}

/* Sign with the author and, if `co`, a co-signer; append; the append's code. */
static inline int tev_append(dk_ledger *lg, const tev *t, const dk_key *author, const dk_key *co,
                             dk_append_res *res)
{
    dk_sig sigs[2];
    const dk_key *keys[2] = {author, co};
    size_t n = 0;
    memset(sigs, 0, sizeof sigs);
    for (int i = 0; i < 2; i++)
        if (keys[i]) {
            snprintf(sigs[n].actor, sizeof sigs[n].actor, "%s", dk_key_id(keys[i]));
            ASSERT_OK(dk_sign(keys[i], t->body, t->len, sigs[n].sig));
            n++;
        }
    dk_append_req req = {t->body, t->len, sigs, n};
    memset(res, 0, sizeof *res);
    return dk_ledger_append(lg, &req, res);
}

/* ---- the expected domain, written from the lifecycle as specified ---- */

static inline int is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Valid data for each case event type. */
static inline void fill_valid(dmap *d, const char *type)
{
    memset(d, 0, sizeof *d);
    if (is(type, "case.opened")) {
        d_put(d->v, &d->n, "applicant", V_MAP, NULL, 0);
        d_sub_str(d, "date_of_birth", "1990-01-31");
        d_sub_str(d, "name", "Test Applicant");
        d_sub_str(d, "nationality", "FRA");
        d_sub_str(d, "ref", "P-1");
        d_str(d, "case_type", "visa");
        d_str(d, "channel", "online");
        d_str(d, "received_on", "2026-10-01");
    } else if (is(type, "case.assigned")) {
        d_str(d, "caseworker", "carol");
    } else if (is(type, "case.status_changed")) {
        d_str(d, "reason", "documents checked");
        d_str(d, "to", "validated");
    } else if (is(type, "case.withdrawn") || is(type, "case.closed") ||
               is(type, "interview.cancelled")) {
        d_str(d, "reason", "applicant asked");
    } else if (is(type, "decision.recorded")) {
        d_list(d, "conditions", "permission_to_work,no_recourse_to_public_funds");
        d_list(d, "evidence", HEX_B);
        d_str(d, "immigration_status", "LTR");
        d_bool(d, "no_recourse_to_public_funds", 1);
        d_str(d, "outcome", "granted");
        d_str(d, "product_type", "WORK");
        d_str(d, "rationale", "meets the rules");
        d_str(d, "rules_version", "HC395-2026-10");
        d_str(d, "valid_from", "2026-11-01");
        d_str(d, "valid_until", "2028-11-01");
    } else if (is(type, "leave.cancelled")) {
        d_str(d, "notice_sent_to", "applicant@example.org");
        d_str(d, "reason", "deception");
    } else if (is(type, "note.added")) {
        d_str(d, "text", "called the applicant");
    } else if (is(type, "document.attached")) {
        d_str(d, "kind", "passport");
        d_str(d, "sha256", HEX_B);
        d_str(d, "title", "Passport scan");
    } else if (is(type, "interview.booked")) {
        d_str(d, "interviewer", "ivan");
        d_str(d, "location", "Croydon");
        d_str(d, "slot_end", "2026-11-24T11:00:00Z");
        d_str(d, "slot_start", "2026-11-24T10:00:00Z");
    } else if (is(type, "interview.rescheduled")) {
        d_str(d, "reason", "interviewer ill");
        d_str(d, "slot_end", "2026-11-25T11:00:00Z");
        d_str(d, "slot_start", "2026-11-25T10:00:00Z");
    } else if (is(type, "interview.attended")) {
        d_str(d, "notes", "credible");
    } else if (is(type, "interview.no_show")) {
        /* every field optional */
    } else if (is(type, "error.reported")) {
        d_str(d, "by", "carol");
        d_str(d, "description", "wrong status");
    } else if (is(type, "status.corrected")) {
        d_u64(d, "error_ref", 3);
        d_str(d, "field", "status");
        d_str(d, "from", "received");
        d_str(d, "reason", "keyed wrongly");
        d_str(d, "to", "validated");
    } else if (is(type, "contact.updated")) {
        d_str(d, "email", "new@example.org");
    } else if (is(type, "appeal.lodged")) {
        d_str(d, "grounds", "article 8");
    } else if (is(type, "appeal.decided")) {
        d_str(d, "outcome", "dismissed");
        d_str(d, "reason", "no error of law");
    } else if (is(type, "event.reverted")) {
        d_str(d, "reason", "entered in error");
        d_str(d, "reason_code", "caseworker_error");
        d_str(d, "target_hash", HEX_A);
        d_u64(d, "target_seq", 2);
    } else if (is(type, "case.rolled_back")) {
        d_str(d, "reason", "batch keyed against the wrong case");
        d_str(d, "reason_code", "wrong_case");
        d_str(d, "to_time", "2026-11-24T10:00:00Z");
    } else {
        TH_FAIL("no valid data for %s", type);
    }
}

typedef struct world {
    dk_ledger *lg;
    dk_key *admin, *carol, *sam, *sue;
} world;

/* Interviews are held by enrolled caseworkers: enroll `id` as one (its key unused). */
static inline void enroll_interviewer(dk_ledger *lg, const dk_key *admin, const char *id,
                                      uint64_t n)
{
    ASSERT_OK(fx_enroll_named(lg, admin, id, "caseworker", n));
}

/* A ledger with carol (caseworker), sam (caseworker and senior) and sue (senior). */
static inline void world_open(world *w, const char *dir)
{
    memset(w, 0, sizeof *w);
    ASSERT_OK(dk_key_generate("admin", &w->admin));
    ASSERT_OK(dk_ledger_init(dir, "case-tests", w->admin, NULL, &w->lg));
    ASSERT_OK(fx_enroll(w->lg, w->admin, "carol", "caseworker", ACTOR_N(1), &w->carol));
    ASSERT_OK(
        fx_enroll(w->lg, w->admin, "sam", "caseworker,senior_caseworker", ACTOR_N(2), &w->sam));
    ASSERT_OK(fx_enroll(w->lg, w->admin, "sue", "senior_caseworker", ACTOR_N(3), &w->sue));
}

/* The interviewers the tests book enrolled, after world_open. */
static inline void world_interviewers(world *w)
{
    static const char *const ids[] = {"ivan", "iris", "ivo", "olga"};
    for (uint64_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        enroll_interviewer(w->lg, w->admin, ids[i], ACTOR_N(4 + i));
}

static inline void world_close(world *w)
{
    dk_ledger_close(w->lg);
    dk_key_free(w->admin);
    dk_key_free(w->carol);
    dk_key_free(w->sam);
    dk_key_free(w->sue);
}

static inline uint64_t head_seq(dk_ledger *lg)
{
    dk_head h;
    ASSERT_OK(dk_ledger_head(lg, &h));
    return h.seq;
}

/* Append; the code (res filled). */
static inline int try_put(world *w, const char *case_id, const char *type, const dk_key *author,
                          const dk_key *co, const dmap *d, dk_append_res *res)
{
    tev e;
    tev_make(&e, type, case_id, dk_key_id(author), d, NULL);
    int rc = tev_append(w->lg, &e, author, co, res);
    tev_free(&e);
    return rc;
}

/* Append and insist it is accepted; its seq. */
static inline uint64_t put_at(int line, world *w, const char *case_id, const char *type,
                              const dk_key *author, const dk_key *co, const dmap *d, int64_t *at)
{
    dk_append_res res;
    int rc = try_put(w, case_id, type, author, co, d, &res);
    if (rc != 0)
        TH_FAIL("(line %d) %s on %s by %s: %s: %s", line, type, case_id, dk_key_id(author),
                dk_err_name(rc), res.errmsg);
    if (at)
        *at = res.recorded_at;
    return res.seq;
}
#define PUT(w, c, type, author, co, d) put_at(__LINE__, w, c, type, author, co, d, NULL)

/* Append with valid default data. */
static inline uint64_t put_default(int line, world *w, const char *case_id, const char *type,
                                   const dk_key *author)
{
    dmap d;
    fill_valid(&d, type);
    return put_at(line, w, case_id, type, author, NULL, &d, NULL);
}
#define PUT_DEFAULT(w, c, type, author) put_default(__LINE__, w, c, type, author)

static inline void to_status(dmap *d, const char *to)
{
    fill_valid(d, "case.status_changed");
    d_str(d, "to", to);
}

/* Open a case and move it to validated. */
static inline void open_validated(world *w, const char *case_id, const dk_key *by)
{
    dmap d;
    PUT_DEFAULT(w, case_id, "case.opened", by);
    to_status(&d, "validated");
    PUT(w, case_id, "case.status_changed", by, NULL, &d);
}

/* The hex leaf hash of record `seq`, as a revert names it. */
static inline void record_hash_hex(dk_ledger *lg, uint64_t seq, char hex[2 * DK_HASH_BYTES + 1])
{
    uint8_t *raw, h[DK_HASH_BYTES];
    size_t len;
    dk_record rec;
    ASSERT_OK(dk_ledger_get(lg, seq, &raw, &len));
    ASSERT_OK(dk_record_decode(raw, len, &rec));
    dk_leaf_hash(rec.raw, rec.raw_len, h);
    dk_hex_encode(h, DK_HASH_BYTES, hex);
    free(raw);
}

static inline void revert_data(dmap *d, dk_ledger *lg, uint64_t target)
{
    char hex[2 * DK_HASH_BYTES + 1];
    record_hash_hex(lg, target, hex);
    fill_valid(d, "event.reverted");
    d_str(d, "target_hash", hex);
    d_u64(d, "target_seq", target);
}

static inline void rollback_data(dmap *d, int64_t to_time)
{
    char t[DK_TIME_LEN];
    dk_time_format(to_time, t);
    fill_valid(d, "case.rolled_back");
    d_str(d, "to_time", t);
}

static inline void slot_data(dmap *d, const char *type, const char *interviewer, const char *start,
                             const char *end)
{
    fill_valid(d, type);
    d_str(d, "interviewer", interviewer);
    d_str(d, "slot_start", start);
    d_str(d, "slot_end", end);
}

#endif
