/* case.c - the casework domain as data and pure functions: per-type schemas,
 * the lifecycle transition table, the role permission table, and the fold
 * that turns a case's events into its state. No I/O, no clock; its one piece of state is
 * each thread's msgpack zone, reused to unpack event data (data_open). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "docket/docket.h"
#include "engine_int.h"

/* ---- statuses ---- */

static const char *const status_names[] = {
#define XX(name, str) str,
    DK_STATUS_MAP(XX)
#undef XX
};

const char *dk_status_name(int st)
{
    return st >= 0 && st < DK_ST_COUNT ? status_names[st] : "unknown";
}

int dk_status_parse(const char *s, size_t len)
{
    for (int i = 1; i < DK_ST_COUNT; i++)
        if (strlen(status_names[i]) == len && memcmp(status_names[i], s, len) == 0)
            return i;
    return -1;
}

/* ---- vocabularies ---- */

static const char *const case_types[] = {"visa",   "euss", "asylum", "citizenship",
                                         "family", "work", "study",  NULL};
static const char *const channels[] = {"online", "assisted_digital", "paper", NULL};
static const char *const outcomes[] = {"granted", "refused", "void", NULL};
/* Product types and immigration statuses as status-check services name them. */
static const char *const product_types[] = {
    "EU",     "EUS",         "STUDY",      "DEPENDANT",   "WORK",       "FRONTIER_WORKER",
    "BNO",    "GRADUATE",    "SETTLEMENT", "TEMP_WORKER", "PROTECTION", "VISIT",
    "FAMILY", "CITIZENSHIP", NULL};
static const char *const immigration_statuses[] = {
    "ILR", "ILE", "LTR", "LTE", "PERMIT", "COA_IN_TIME_GRANT", NULL};
static const char *const conditions[] = {"permission_to_work",
                                         "no_permission_to_work",
                                         "work_restriction",
                                         "study_restriction",
                                         "reporting",
                                         "residence_restriction",
                                         "no_recourse_to_public_funds",
                                         NULL};
static const char *const reason_codes[] = {
    "caseworker_error", "duplicate", "wrong_case", "data_entry", "fraud",
    "court_order",      "other",     NULL};
static const char *const appeal_outcomes[] = {"allowed", "dismissed", NULL};
static const char *const correctable[] = {"status",        "assignee",    "applicant_name",
                                          "date_of_birth", "nationality", NULL};
static const char *const statuses_enum[] = {
    "received", "validated", "under_consideration", "interview_scheduled", "decided",
    "appealed", "closed",    "withdrawn",           "leave_cancelled",     NULL};

const char *const *dk_case_vocabulary(const char *field)
{
    static const struct {
        const char *field;
        const char *const *words;
    } vocab[] = {{"case_type", case_types},
                 {"channel", channels},
                 {"outcome", outcomes},
                 {"product_type", product_types},
                 {"immigration_status", immigration_statuses},
                 {"conditions", conditions},
                 {"reason_code", reason_codes}};
    for (size_t i = 0; i < sizeof vocab / sizeof vocab[0]; i++)
        if (strcmp(vocab[i].field, field) == 0)
            return vocab[i].words;
    return NULL;
}
/* ---- schemas ---- */

typedef enum {
    F_STR,
    F_ACTOR,
    F_DATE,
    F_TIME,
    F_BOOL,
    F_ENUM,
    F_ENUMLIST,
    F_SEQ,
    F_SHA256,
    F_SHA256LIST,
    F_OBJ,
    F_NATIONALITY
} fkind;

typedef struct field {
    const char *name;
    fkind kind;
    int required;
    size_t max; /* bytes, for strings */
    const char *const *vocab;
    const struct field *sub; /* for F_OBJ, NULL-name terminated */
} field;

#define END                                                                                        \
    {                                                                                              \
        NULL, F_STR, 0, 0, NULL, NULL                                                              \
    }

static const field f_applicant[] = {{"date_of_birth", F_DATE, 1, 10, NULL, NULL},
                                    {"name", F_STR, 1, 128, NULL, NULL},
                                    {"nationality", F_NATIONALITY, 1, 3, NULL, NULL},
                                    {"ref", F_STR, 1, 32, NULL, NULL},
                                    END};
static const field f_opened[] = {{"applicant", F_OBJ, 1, 0, NULL, f_applicant},
                                 {"case_type", F_ENUM, 1, 0, case_types, NULL},
                                 {"channel", F_ENUM, 1, 0, channels, NULL},
                                 {"received_on", F_DATE, 1, 10, NULL, NULL},
                                 END};
static const field f_assigned[] = {{"caseworker", F_ACTOR, 1, 64, NULL, NULL}, END};
static const field f_status_changed[] = {
    {"reason", F_STR, 1, 1024, NULL, NULL}, {"to", F_ENUM, 1, 0, statuses_enum, NULL}, END};
static const field f_reason[] = {{"reason", F_STR, 1, 1024, NULL, NULL}, END};
static const field f_decision[] = {{"conditions", F_ENUMLIST, 0, 0, conditions, NULL},
                                   {"evidence", F_SHA256LIST, 0, 0, NULL, NULL},
                                   {"immigration_status", F_ENUM, 0, 0, immigration_statuses, NULL},
                                   {"no_recourse_to_public_funds", F_BOOL, 0, 0, NULL, NULL},
                                   {"outcome", F_ENUM, 1, 0, outcomes, NULL},
                                   {"product_type", F_ENUM, 1, 0, product_types, NULL},
                                   {"rationale", F_STR, 1, 8192, NULL, NULL},
                                   {"rules_version", F_STR, 1, 64, NULL, NULL},
                                   {"valid_from", F_DATE, 0, 10, NULL, NULL},
                                   {"valid_until", F_DATE, 0, 10, NULL, NULL},
                                   END};
static const field f_leave_cancelled[] = {
    {"notice_sent_to", F_STR, 1, 256, NULL, NULL}, {"reason", F_STR, 1, 1024, NULL, NULL}, END};
static const field f_note[] = {{"text", F_STR, 1, 8192, NULL, NULL}, END};
static const field f_document[] = {{"kind", F_STR, 1, 32, NULL, NULL},
                                   {"sha256", F_SHA256, 1, 64, NULL, NULL},
                                   {"title", F_STR, 1, 256, NULL, NULL},
                                   END};
static const field f_booked[] = {{"interviewer", F_ACTOR, 1, 64, NULL, NULL},
                                 {"location", F_STR, 1, 128, NULL, NULL},
                                 {"slot_end", F_TIME, 1, 40, NULL, NULL},
                                 {"slot_start", F_TIME, 1, 40, NULL, NULL},
                                 END};
static const field f_rescheduled[] = {
    {"interviewer", F_ACTOR, 0, 64, NULL, NULL}, {"location", F_STR, 0, 128, NULL, NULL},
    {"reason", F_STR, 0, 1024, NULL, NULL},      {"slot_end", F_TIME, 1, 40, NULL, NULL},
    {"slot_start", F_TIME, 1, 40, NULL, NULL},   END};
static const field f_notes_opt[] = {{"notes", F_STR, 0, 8192, NULL, NULL}, END};
static const field f_error_reported[] = {
    {"by", F_STR, 1, 128, NULL, NULL}, {"description", F_STR, 1, 8192, NULL, NULL}, END};
static const field f_corrected[] = {
    {"error_ref", F_SEQ, 1, 0, NULL, NULL}, {"field", F_ENUM, 1, 0, correctable, NULL},
    {"from", F_STR, 1, 256, NULL, NULL},    {"reason", F_STR, 1, 1024, NULL, NULL},
    {"to", F_STR, 1, 256, NULL, NULL},      END};
static const field f_contact[] = {
    {"email", F_STR, 0, 128, NULL, NULL}, {"postal_address", F_STR, 0, 256, NULL, NULL}, END};
static const field f_appeal_lodged[] = {{"grounds", F_STR, 1, 8192, NULL, NULL}, END};
static const field f_appeal_decided[] = {
    {"outcome", F_ENUM, 1, 0, appeal_outcomes, NULL}, {"reason", F_STR, 0, 1024, NULL, NULL}, END};
static const field f_reverted[] = {{"reason", F_STR, 1, 1024, NULL, NULL},
                                   {"reason_code", F_ENUM, 1, 0, reason_codes, NULL},
                                   {"target_hash", F_SHA256, 1, 64, NULL, NULL},
                                   {"target_seq", F_SEQ, 1, 0, NULL, NULL},
                                   END};
static const field f_rolled_back[] = {{"reason", F_STR, 1, 1024, NULL, NULL},
                                      {"reason_code", F_ENUM, 1, 0, reason_codes, NULL},
                                      {"to_time", F_TIME, 1, 40, NULL, NULL},
                                      END};

/* ---- the rules, one row per event type ---- */

#define B(x) (1u << DK_ST_##x)
#define LIVE                                                                                       \
    (B(RECEIVED) | B(VALIDATED) | B(UNDER_CONSIDERATION) | B(INTERVIEW_SCHEDULED) | B(DECIDED) |   \
     B(APPEALED))
#define PRE_DECISION (B(RECEIVED) | B(VALIDATED) | B(UNDER_CONSIDERATION) | B(INTERVIEW_SCHEDULED))
#define EXISTS       (~B(NONE) & ((1u << DK_ST_COUNT) - 1))
#define SAME         (-1) /* the event leaves the status as it is */
#define COMPUTED     (-2) /* the event's data decides */

#define CW DK_ROLE_CASEWORKER
#define SC DK_ROLE_SENIOR_CASEWORKER
#define MG DK_ROLE_MIGRATION

/* What applying an event does besides setting the status (apply_in_place). */
enum op {
    OP_NONE,
    OP_OPENED,
    OP_ASSIGNED,
    OP_STATUS_CHANGED,
    OP_DECISION,
    OP_LEAVE_CANCELLED,
    OP_SLOT, /* booked or rescheduled */
    OP_ATTENDED,
    OP_NO_SHOW,
    OP_INTERVIEW_CANCELLED,
    OP_ERROR_REPORTED,
    OP_CORRECTED,
    OP_CONTACT,
    OP_APPEAL_LODGED,
    OP_APPEAL_DECIDED,
};

typedef struct rule {
    const char *type;
    const field *schema;
    unsigned from;  /* statuses it may be appended in */
    int to;         /* resulting status, SAME or COMPUTED */
    unsigned roles; /* roles that may author it */
    int data;       /* 1 if applying it reads its data (the others' data is not unpacked) */
    enum op op;
} rule;

static const rule rules[] = {
    {"case.opened", f_opened, B(NONE), DK_ST_RECEIVED, CW | SC | MG, 1, OP_OPENED},
    {"case.assigned", f_assigned, LIVE, SAME, SC | MG, 1, OP_ASSIGNED},
    {"case.status_changed", f_status_changed, B(RECEIVED) | B(VALIDATED) | B(UNDER_CONSIDERATION),
     COMPUTED, CW | SC | MG, 1, OP_STATUS_CHANGED},
    {"case.withdrawn", f_reason, PRE_DECISION, DK_ST_WITHDRAWN, CW | SC | MG, 0, OP_NONE},
    {"case.closed", f_reason, B(DECIDED) | B(WITHDRAWN) | B(LEAVE_CANCELLED), DK_ST_CLOSED,
     CW | SC | MG, 0, OP_NONE},
    {"decision.recorded", f_decision, B(UNDER_CONSIDERATION), DK_ST_DECIDED, CW | SC | MG, 1,
     OP_DECISION},
    /* wherever a grant's leave may still be held (apply_in_place checks it is): every
     * status but leave_cancelled (a correction may take a reconsideration to received) */
    {"leave.cancelled", f_leave_cancelled, EXISTS & ~B(LEAVE_CANCELLED), DK_ST_LEAVE_CANCELLED, SC,
     0, OP_LEAVE_CANCELLED},
    {"note.added", f_note, EXISTS, SAME, CW | SC | MG, 0, OP_NONE},
    {"document.attached", f_document, EXISTS, SAME, CW | SC | MG, 0, OP_NONE},
    {"interview.booked", f_booked, B(VALIDATED) | B(UNDER_CONSIDERATION), DK_ST_INTERVIEW_SCHEDULED,
     CW | SC | MG, 1, OP_SLOT},
    {"interview.rescheduled", f_rescheduled, B(INTERVIEW_SCHEDULED), SAME, CW | SC | MG, 1,
     OP_SLOT},
    /* also after a withdrawal or closure that left an interview booked, which the
     * cancellation releases (the status stays: apply_in_place) */
    {"interview.cancelled", f_reason, B(INTERVIEW_SCHEDULED) | B(WITHDRAWN) | B(CLOSED),
     DK_ST_UNDER_CONSIDERATION, CW | SC | MG, 0, OP_INTERVIEW_CANCELLED},
    {"interview.attended", f_notes_opt, B(INTERVIEW_SCHEDULED), DK_ST_UNDER_CONSIDERATION,
     CW | SC | MG, 0, OP_ATTENDED},
    {"interview.no_show", f_notes_opt, B(INTERVIEW_SCHEDULED), DK_ST_UNDER_CONSIDERATION,
     CW | SC | MG, 0, OP_NO_SHOW},
    {"error.reported", f_error_reported, EXISTS, SAME, CW | SC | MG, 0, OP_ERROR_REPORTED},
    {"status.corrected", f_corrected, EXISTS, COMPUTED, SC | MG, 1, OP_CORRECTED},
    {"contact.updated", f_contact, EXISTS, SAME, CW | SC | MG, 1, OP_CONTACT},
    {"appeal.lodged", f_appeal_lodged, B(DECIDED), DK_ST_APPEALED, CW | SC | MG, 0,
     OP_APPEAL_LODGED},
    /* also after a leave cancellation (and a closure) that left an appeal open, which the
     * decision closes (the status stays: apply_in_place; helper-78) */
    {"appeal.decided", f_appeal_decided, B(APPEALED) | B(LEAVE_CANCELLED) | B(CLOSED), COMPUTED,
     SC | MG, 1, OP_APPEAL_DECIDED},
    /* Undo is not applied through this table: the writer refolds the case without what
     * it voids, and refuses it only on a case with no events (casestore.c), so a case
     * whose opening was voided (status none) can have that void undone. */
    {"event.reverted", f_reverted, EXISTS, SAME, CW | SC, 0, OP_NONE},
    {"case.rolled_back", f_rolled_back, EXISTS, SAME, CW | SC, 0, OP_NONE},
};
#define NRULES (sizeof rules / sizeof rules[0])

/* status_changed may move only along these edges. */
static const struct {
    int from, to;
} status_edges[] = {
    {DK_ST_RECEIVED, DK_ST_VALIDATED},
    {DK_ST_VALIDATED, DK_ST_UNDER_CONSIDERATION},
    {DK_ST_UNDER_CONSIDERATION, DK_ST_VALIDATED}, /* returned for more evidence */
};

static const rule *find_rule(const char *type)
{
    for (size_t i = 0; i < NRULES; i++) /* the first byte rules out most */
        if (rules[i].type[0] == type[0] && strcmp(rules[i].type, type) == 0)
            return &rules[i];
    return NULL;
}

/* ---- checking data against a schema ---- */

/* o is the string s of length n. */
static int str_eq_n(const msgpack_object *o, const char *s, size_t n)
{
    return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static int str_eq(const msgpack_object *o, const char *s)
{
    return str_eq_n(o, s, strlen(s));
}

static int in_vocab(const msgpack_object *o, const char *const *vocab)
{
    for (; *vocab; vocab++)
        if (str_eq(o, *vocab))
            return 1;
    return 0;
}

static void vocab_list(const char *const *vocab, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (; *vocab && n < cap; vocab++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", *vocab);
}

static int is_hex64(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size != 64)
        return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = o->via.str.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static int time_of(const msgpack_object *o, int64_t *us)
{
    char buf[48];
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= sizeof buf)
        return DK_EINVAL;
    memcpy(buf, o->via.str.ptr, o->via.str.size);
    buf[o->via.str.size] = 0;
    return dk_time_parse(buf, us);
}

static int check_fields(const char *type, const char *prefix, const msgpack_object *map,
                        const field *fields);

static int check_field(const char *type, const char *path, const field *f, const msgpack_object *v)
{
    char list[512];
    int64_t t;
    switch (f->kind) {
    case F_STR:
    case F_ACTOR:
    case F_NATIONALITY:
        if (v->type != MSGPACK_OBJECT_STR)
            return dk__fail(DK_ESCHEMA, "%s: %s must be a string", type, path);
        if (v->via.str.size == 0 || v->via.str.size > f->max)
            return dk__fail(DK_ESCHEMA, "%s: %s must be 1..%zu bytes", type, path, f->max);
        if (f->kind == F_ACTOR && !dk__actor_id_valid(v->via.str.ptr, v->via.str.size))
            return dk__fail(DK_ESCHEMA, "%s: %s must be an actor id", type, path);
        if (f->kind == F_NATIONALITY) {
            for (size_t i = 0; i < v->via.str.size; i++)
                if (v->via.str.ptr[i] < 'A' || v->via.str.ptr[i] > 'Z' || v->via.str.size != 3)
                    return dk__fail(DK_ESCHEMA,
                                    "%s: %s must be a 3-letter ISO 3166 code such as 'GBR'", type,
                                    path);
        }
        return 0;
    case F_DATE:
        if (v->type != MSGPACK_OBJECT_STR || !dk_date_valid(v->via.str.ptr, (int)v->via.str.size))
            return dk__fail(DK_ESCHEMA, "%s: %s must be a date YYYY-MM-DD", type, path);
        return 0;
    case F_TIME:
        if (time_of(v, &t) != 0)
            return dk__fail(DK_ESCHEMA, "%s: %s must be an RFC 3339 time", type, path);
        return 0;
    case F_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return dk__fail(DK_ESCHEMA, "%s: %s must be true or false", type, path);
        return 0;
    case F_SEQ:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0)
            return dk__fail(DK_ESCHEMA, "%s: %s must be a record seq (a positive integer)", type,
                            path);
        return 0;
    case F_SHA256:
        if (!is_hex64(v))
            return dk__fail(DK_ESCHEMA, "%s: %s must be a SHA-256 in 64 lowercase hex digits", type,
                            path);
        return 0;
    case F_ENUM:
        if (!in_vocab(v, f->vocab)) {
            vocab_list(f->vocab, list, sizeof list);
            return dk__fail(DK_ESCHEMA, "%s: %s must be one of: %s", type, path, list);
        }
        return 0;
    case F_ENUMLIST:
    case F_SHA256LIST:
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > 64)
            return dk__fail(DK_ESCHEMA, "%s: %s must be a list of at most 64", type, path);
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *e = &v->via.array.ptr[i];
            if (f->kind == F_SHA256LIST && !is_hex64(e))
                return dk__fail(DK_ESCHEMA, "%s: %s[%u] must be a SHA-256 in 64 lowercase hex",
                                type, path, i);
            if (f->kind == F_ENUMLIST && !in_vocab(e, f->vocab)) {
                vocab_list(f->vocab, list, sizeof list);
                return dk__fail(DK_ESCHEMA, "%s: %s[%u] must be one of: %s", type, path, i, list);
            }
        }
        return 0;
    case F_OBJ:
        if (v->type != MSGPACK_OBJECT_MAP)
            return dk__fail(DK_ESCHEMA, "%s: %s must be an object", type, path);
        return check_fields(type, path, v, f->sub);
    }
    return dk__fail(DK_ESCHEMA, "%s: %s has an unknown kind", type, path);
}

static int check_fields(const char *type, const char *prefix, const msgpack_object *map,
                        const field *fields)
{
    char path[128];
    /* every key known */
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const field *f = fields;
        while (f->name && !str_eq(k, f->name))
            f++;
        if (f->name == NULL) {
            char names[512];
            size_t n = 0;
            names[0] = 0;
            for (const field *g = fields; g->name && n < sizeof names; g++)
                n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", g->name);
            return dk__fail(DK_ESCHEMA, "%s: unknown field %s.%.*s (fields: %s)", type, prefix,
                            (int)k->via.str.size, k->via.str.ptr, names);
        }
    }
    /* every required one present, each well-formed */
    for (const field *f = fields; f->name; f++) {
        const msgpack_object *v = NULL;
        for (uint32_t i = 0; i < map->via.map.size && !v; i++)
            if (str_eq(&map->via.map.ptr[i].key, f->name))
                v = &map->via.map.ptr[i].val;
        snprintf(path, sizeof path, "%s.%s", prefix, f->name);
        if (v == NULL) {
            if (f->required)
                return dk__fail(DK_ESCHEMA, "%s needs %s", type, path);
            continue;
        }
        int rc = check_field(type, path, f, v);
        if (rc)
            return rc;
    }
    return 0;
}

/* Unpacked data, valid until data_close. The objects live in a zone: the thread's own,
 * cleared for each use, so that folding an event allocates nothing (a zone made and
 * freed per event was 1.2% of a rebuild's instructions outside SHA-256); a second view
 * open on the thread at once gets a zone of its own. */
typedef struct data_view {
    msgpack_zone *z;
    int own; /* z is this view's, not the thread's */
    msgpack_object root;
} data_view;

static pthread_key_t zone_key;
static int zone_key_ok; /* else every view makes its own zone */
static pthread_once_t zone_once = PTHREAD_ONCE_INIT;
static _Thread_local int zone_busy; /* the thread's zone holds an open view's objects */

static void zone_free(void *z)
{
    msgpack_zone_free(z);
}

static void zone_key_make(void)
{
    zone_key_ok = pthread_key_create(&zone_key, zone_free) == 0;
}

/* The thread's zone, cleared; NULL if it has none to give (then the caller makes one). */
static msgpack_zone *thread_zone(void)
{
    pthread_once(&zone_once, zone_key_make);
    if (zone_busy || !zone_key_ok)
        return NULL;
    msgpack_zone *z = pthread_getspecific(zone_key);
    if (z == NULL) {
        if ((z = msgpack_zone_new(1024)) == NULL)
            return NULL;
        if (pthread_setspecific(zone_key, z) != 0) {
            msgpack_zone_free(z);
            return NULL;
        }
    } else {
        msgpack_zone_clear(z);
    }
    zone_busy = 1;
    return z;
}

static void data_close(data_view *d)
{
    if (d->own)
        msgpack_zone_free(d->z);
    else
        zone_busy = 0;
}

static int data_open(const dk_event *ev, data_view *d)
{
    size_t off = 0;
    if (dk__msgpack_counts_bounded(ev->data, ev->data_len, "data") != 0)
        return dk__fail(DK_ESCHEMA, "%s: %s", ev->type, dk_errmsg());
    d->z = thread_zone();
    d->own = d->z == NULL;
    if (d->own && (d->z = msgpack_zone_new(1024)) == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    if (msgpack_unpack((const char *)ev->data, ev->data_len, &off, d->z, &d->root) !=
            MSGPACK_UNPACK_SUCCESS ||
        d->root.type != MSGPACK_OBJECT_MAP) {
        data_close(d);
        return dk__fail(DK_ESCHEMA, "%s: data is not a map", ev->type);
    }
    return 0;
}

/* The value of `key` in a map; NULL if absent, or if `map` is none or not a map. The
 * lifecycle below reads data the schema checked at its append, but a stored body may
 * since have been damaged (a rebuild folds before its chain check decides): every
 * reader of a value checks it is there and of its type. */
static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key); /* once, not once a key compared */
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (str_eq_n(&map->via.map.ptr[i].key, key, kl))
            return &map->via.map.ptr[i].val;
    return NULL;
}

/* Copy a string field into dst (truncated to cap - 1); "" if absent. */
static void copy_str(const msgpack_object *map, const char *key, char *dst, size_t cap)
{
    const msgpack_object *v = get(map, key);
    dst[0] = 0;
    if (v && v->type == MSGPACK_OBJECT_STR) {
        size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
        memcpy(dst, v->via.str.ptr, n);
        dst[n] = 0;
    }
}

static int is_limited_leave(const msgpack_object *st)
{
    return st && !str_eq(st, "ILR") && !str_eq(st, "ILE");
}

/* Does the list `l` hold the string s? */
static int lists(const msgpack_object *l, const char *s)
{
    for (uint32_t i = 0; l && l->type == MSGPACK_OBJECT_ARRAY && i < l->via.array.size; i++)
        if (str_eq(&l->via.array.ptr[i], s))
            return 1;
    return 0;
}

/* Cross-field rules of a decision: provenance, what a grant must say, and nothing that
 * contradicts itself (helper-54's review: a grant "without" NRPF that listed the NRPF
 * condition, indefinite leave with an end date, a refusal carrying leave details). */
static int check_decision(const dk_event *ev, const msgpack_object *m)
{
    const msgpack_object *outcome = get(m, "outcome"), *status = get(m, "immigration_status");
    const msgpack_object *conds = get(m, "conditions");
    if (lists(conds, "permission_to_work") && lists(conds, "no_permission_to_work"))
        return dk__fail(DK_ESCHEMA,
                        "%s: data.conditions lists both permission_to_work and "
                        "no_permission_to_work",
                        ev->type);
    if (!str_eq(outcome, "granted")) {
        static const char *const leave[] = {"immigration_status", "valid_from", "valid_until",
                                            "no_recourse_to_public_funds", "conditions"};
        for (size_t i = 0; i < sizeof leave / sizeof leave[0]; i++)
            if (get(m, leave[i]))
                return dk__fail(DK_ESCHEMA,
                                "%s: a decision that is not a grant gives no leave, so has no "
                                "data.%s",
                                ev->type, leave[i]);
        return 0;
    }
    /* a grant */
    if (status == NULL)
        return dk__fail(DK_ESCHEMA, "%s: a grant needs data.immigration_status", ev->type);
    if (get(m, "valid_from") == NULL)
        return dk__fail(DK_ESCHEMA, "%s: a grant needs data.valid_from", ev->type);
    const msgpack_object *nrpf = get(m, "no_recourse_to_public_funds");
    if (nrpf == NULL)
        return dk__fail(DK_ESCHEMA, "%s: a grant needs data.no_recourse_to_public_funds", ev->type);
    if (is_limited_leave(status) && get(m, "valid_until") == NULL)
        return dk__fail(DK_ESCHEMA, "%s: a grant of limited leave (%.*s) needs data.valid_until",
                        ev->type, (int)status->via.str.size, status->via.str.ptr);
    const msgpack_object *from = get(m, "valid_from"), *until = get(m, "valid_until");
    if (until && from && memcmp(until->via.str.ptr, from->via.str.ptr, 10) < 0)
        return dk__fail(DK_ESCHEMA, "%s: valid_until is before valid_from", ev->type);
    if (!is_limited_leave(status) && until)
        return dk__fail(DK_ESCHEMA, "%s: indefinite leave (%.*s) has no valid_until", ev->type,
                        (int)status->via.str.size, status->via.str.ptr);
    int flag = nrpf->type == MSGPACK_OBJECT_BOOLEAN && nrpf->via.boolean;
    if (flag != lists(conds, "no_recourse_to_public_funds"))
        return dk__fail(DK_ESCHEMA,
                        "%s: data.no_recourse_to_public_funds is %s but data.conditions %s "
                        "no_recourse_to_public_funds",
                        ev->type, flag ? "true" : "false", flag ? "does not list" : "lists");
    return 0;
}

/* A correction's new value obeys the rule of the field it replaces, as at the case's
 * opening or assignment: an assignee is an actor id, a date of birth a date, and so on
 * (it used to be any string of up to 256 bytes, cut to the field's size). */
static int check_correction(const dk_event *ev, const msgpack_object *m)
{
    static const struct {
        const char *name;
        const field *rule;
    } rules_of[] = {{"assignee", &f_assigned[0]},
                    {"applicant_name", &f_applicant[1]},
                    {"date_of_birth", &f_applicant[0]},
                    {"nationality", &f_applicant[2]}};
    const msgpack_object *which = get(m, "field"), *to = get(m, "to");
    const field *f = &f_status_changed[1]; /* a status, as case.status_changed's "to" */
    for (size_t k = 0; k < sizeof rules_of / sizeof rules_of[0]; k++)
        if (str_eq(which, rules_of[k].name))
            f = rules_of[k].rule;
    return check_field(ev->type, "data.to", f, to);
}

int dk_case_check_schema(const dk_event *ev)
{
    const rule *r = find_rule(ev->type);
    if (r == NULL)
        return dk__fail(DK_EINVAL, "unknown case event type '%s'", ev->type);
    data_view d;
    int rc = data_open(ev, &d);
    if (rc)
        return rc;
    rc = check_fields(ev->type, "data", &d.root, r->schema);
    if (rc == 0 && strcmp(ev->type, "decision.recorded") == 0)
        rc = check_decision(ev, &d.root);
    if (rc == 0 && (strcmp(ev->type, "interview.booked") == 0 ||
                    strcmp(ev->type, "interview.rescheduled") == 0)) {
        int64_t s, e;
        time_of(get(&d.root, "slot_start"), &s);
        time_of(get(&d.root, "slot_end"), &e);
        if (e <= s)
            rc = dk__fail(DK_ESCHEMA, "%s: slot_end must be after slot_start", ev->type);
    }
    if (rc == 0 && strcmp(ev->type, "status.corrected") == 0)
        rc = check_correction(ev, &d.root);
    if (rc == 0 && strcmp(ev->type, "contact.updated") == 0 && d.root.via.map.size == 0)
        rc = dk__fail(DK_ESCHEMA, "%s needs data.email or data.postal_address", ev->type);
    data_close(&d);
    return rc;
}

/* ---- applying an event: the lifecycle ---- */

static int not_allowed(const dk_case_state *st, const dk_event *ev)
{
    char allowed[768];
    size_t n = 0;
    allowed[0] = 0;
    for (size_t i = 0; i < NRULES && n < sizeof allowed; i++)
        if (rules[i].from & (1u << st->status))
            n += (size_t)snprintf(allowed + n, sizeof allowed - n, "%s%s", n ? ", " : "",
                                  rules[i].type);
    if (st->status == DK_ST_NONE)
        return dk__fail(DK_ETRANSITION, "case '%s' does not exist yet; it must start with %s",
                        ev->case_id, allowed);
    return dk__fail(DK_ETRANSITION, "case '%s' is '%s'; '%s' is not allowed (allowed: %s)",
                    ev->case_id, dk_status_name(st->status), ev->type, allowed);
}

static int apply_status_changed(dk_case_state *st, const dk_event *ev, const msgpack_object *m)
{
    const msgpack_object *to = get(m, "to");
    if (to == NULL || to->type != MSGPACK_OBJECT_STR)
        return dk__fail(DK_ESCHEMA, "case.status_changed: data.to is missing or not a string");
    int target = dk_status_parse(to->via.str.ptr, to->via.str.size);
    for (size_t i = 0; i < sizeof status_edges / sizeof status_edges[0]; i++)
        if (status_edges[i].from == st->status && status_edges[i].to == target) {
            st->status = target;
            return 0;
        }
    return dk__fail(DK_ETRANSITION,
                    "case '%s' is '%s'; case.status_changed cannot move it to '%s' (edges: "
                    "received->validated, validated->under_consideration, "
                    "under_consideration->validated; other moves have their own events)",
                    ev->case_id, dk_status_name(st->status), dk_status_name(target));
}

static int apply_corrected(dk_case_state *st, const dk_event *ev, const msgpack_object *m)
{
    const msgpack_object *eref = get(m, "error_ref"), *which = get(m, "field"),
                         *from = get(m, "from"), *to = get(m, "to");
    if (eref == NULL || eref->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return dk__fail(DK_ESCHEMA, "status.corrected: data.error_ref is missing or not a seq");
    const msgpack_object *strs[] = {which, from, to};
    for (size_t k = 0; k < 3; k++)
        if (strs[k] == NULL || strs[k]->type != MSGPACK_OBJECT_STR)
            return dk__fail(DK_ESCHEMA,
                            "status.corrected: data.field, data.from and data.to must be strings");
    uint64_t ref = eref->via.u64;
    uint32_t i = 0;
    while (i < st->open_errors && st->error_seqs[i] != ref)
        i++;
    if (i == st->open_errors)
        return dk__fail(DK_ETRANSITION,
                        "status.corrected: seq %llu is not an open error report on case '%s'",
                        (unsigned long long)ref, ev->case_id);
    struct {
        const char *name;
        char *dst;
        size_t cap;
    } fields[] = {{"assignee", st->assignee, sizeof st->assignee},
                  {"applicant_name", st->applicant_name, sizeof st->applicant_name},
                  {"date_of_birth", st->date_of_birth, sizeof st->date_of_birth},
                  {"nationality", st->nationality, sizeof st->nationality}};
    char current[260];
    snprintf(current, sizeof current, "%s",
             str_eq(which, "status") ? dk_status_name(st->status) : "");
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
        if (str_eq(which, fields[k].name))
            snprintf(current, sizeof current, "%s", fields[k].dst);
    if (!str_eq(from, current))
        return dk__fail(DK_ETRANSITION, "status.corrected: %.*s is '%s', not '%.*s'",
                        (int)which->via.str.size, which->via.str.ptr, current,
                        (int)from->via.str.size, from->via.str.ptr);
    if (str_eq(which, "status")) {
        int target = dk_status_parse(to->via.str.ptr, to->via.str.size);
        if (target <= DK_ST_NONE)
            return dk__fail(DK_ESCHEMA, "status.corrected: '%.*s' is not a status",
                            (int)to->via.str.size, to->via.str.ptr);
        st->status = target;
    } else {
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
            if (str_eq(which, fields[k].name)) {
                size_t n =
                    to->via.str.size < fields[k].cap - 1 ? to->via.str.size : fields[k].cap - 1;
                memcpy(fields[k].dst, to->via.str.ptr, n);
                fields[k].dst[n] = 0;
            }
    }
    st->error_seqs[i] = st->error_seqs[--st->open_errors]; /* the report is resolved */
    return 0;
}

static void apply_decision(dk_case_state *st, uint64_t seq, const msgpack_object *m)
{
    memset(&st->decision, 0, sizeof st->decision);
    st->decision.has = 1;
    st->decision.seq = seq;
    /* a grant's leave is held until a void decision or leave.cancelled ends it; a refusal
     * (of more, after an upgrade appeal) leaves it, as the leave in effect does */
    if (str_eq(get(m, "outcome"), "granted"))
        st->leave.grant_seq = seq, st->leave.cancelled_seq = 0;
    else if (str_eq(get(m, "outcome"), "void"))
        st->leave.grant_seq = 0;
    copy_str(m, "outcome", st->decision.outcome, sizeof st->decision.outcome);
    copy_str(m, "product_type", st->decision.product_type, sizeof st->decision.product_type);
    copy_str(m, "immigration_status", st->decision.immigration_status,
             sizeof st->decision.immigration_status);
    copy_str(m, "valid_from", st->decision.valid_from, sizeof st->decision.valid_from);
    copy_str(m, "valid_until", st->decision.valid_until, sizeof st->decision.valid_until);
    copy_str(m, "rules_version", st->decision.rules_version, sizeof st->decision.rules_version);
    const msgpack_object *nrpf = get(m, "no_recourse_to_public_funds");
    st->decision.no_recourse_to_public_funds =
        nrpf && nrpf->type == MSGPACK_OBJECT_BOOLEAN && nrpf->via.boolean;
    /* Conditions are a set over a fixed vocabulary: listed once each, in the
     * vocabulary's order: all seven take 135 of the field's 160 bytes. */
    const msgpack_object *c = get(m, "conditions");
    if (c && c->type != MSGPACK_OBJECT_ARRAY)
        c = NULL;
    size_t n = 0;
    for (int k = 0; c && conditions[k] != NULL; k++) {
        int listed = 0;
        for (uint32_t i = 0; i < c->via.array.size && !listed; i++)
            listed = str_eq(&c->via.array.ptr[i], conditions[k]);
        if (listed && n < sizeof st->decision.conditions)
            n += (size_t)snprintf(st->decision.conditions + n, sizeof st->decision.conditions - n,
                                  "%s%s", n ? "," : "", conditions[k]);
    }
}

static void apply_slot(dk_case_state *st, uint64_t seq, const msgpack_object *m)
{
    time_of(get(m, "slot_start"), &st->interview.slot_start);
    time_of(get(m, "slot_end"), &st->interview.slot_end);
    if (get(m, "interviewer"))
        copy_str(m, "interviewer", st->interview.interviewer, sizeof st->interview.interviewer);
    if (get(m, "location"))
        copy_str(m, "location", st->interview.location, sizeof st->interview.location);
    st->interview.active = 1;
    st->interview.seq = seq;
}

/* The step itself, on *st in place: on failure *st may be left part-changed. */
static int apply_in_place(dk_case_state *st, uint64_t seq, const dk_event *ev)
{
    const rule *r = find_rule(ev->type);
    if (r == NULL)
        return dk__fail(DK_EINVAL, "unknown case event type '%s'", ev->type);
    if (!(r->from & (1u << st->status)))
        return not_allowed(st, ev);
    data_view d;
    const msgpack_object *m = NULL; /* the data, for the types that read it */
    int rc = r->data ? data_open(ev, &d) : 0;
    if (rc)
        return rc;
    /* the others' data is not unpacked, but must still be a map (its first byte says) */
    uint8_t h = !r->data && ev->data && ev->data_len ? ev->data[0] : 0;
    if (!r->data && (h & 0xf0) != 0x80 && h != 0xde && h != 0xdf)
        return dk__fail(DK_ESCHEMA, "%s: data is not a map", ev->type);
    if (r->data)
        m = &d.root;
    int before = st->status;
    if (r->to >= 0)
        st->status = r->to;
    switch (r->op) {
    case OP_OPENED: {
        const msgpack_object *a = get(m, "applicant");
        copy_str(m, "case_type", st->case_type, sizeof st->case_type);
        copy_str(m, "channel", st->channel, sizeof st->channel);
        copy_str(m, "received_on", st->received_on, sizeof st->received_on);
        copy_str(a, "ref", st->applicant_ref, sizeof st->applicant_ref);
        copy_str(a, "name", st->applicant_name, sizeof st->applicant_name);
        copy_str(a, "date_of_birth", st->date_of_birth, sizeof st->date_of_birth);
        copy_str(a, "nationality", st->nationality, sizeof st->nationality);
        break;
    }
    case OP_ASSIGNED:
        copy_str(m, "caseworker", st->assignee, sizeof st->assignee);
        break;
    case OP_STATUS_CHANGED:
        rc = apply_status_changed(st, ev, m);
        break;
    case OP_DECISION:
        apply_decision(st, seq, m);
        break;
    case OP_LEAVE_CANCELLED:
        /* the leave of the last grant, whatever came after it: a refusal of more (an
         * upgrade appeal allowed, then refused), a withdrawal or a closure (helper-65). The
         * fold also takes what it took before, a latest decision that is a grant (a ledger
         * may hold a second cancellation after a status correction back to decided:
         * helper-66); the writer refuses that now (dk__case_check_new). */
        if (st->leave.grant_seq == 0 &&
            (!st->decision.has || strcmp(st->decision.outcome, "granted") != 0))
            rc = dk__fail(DK_ETRANSITION, "case '%s' has no grant of leave to cancel", ev->case_id);
        st->leave.grant_seq = 0;
        st->leave.cancelled_seq = seq; /* kept when a closure hides the status */
        break;
    case OP_SLOT:
        /* a move needs a booking to move: a status corrected to interview_scheduled has
         * none, and the move used to invent one with no interviewer (helper-54) */
        if (!st->interview.active && strcmp(ev->type, "interview.rescheduled") == 0)
            rc = dk__fail(DK_ETRANSITION, "case '%s' has no interview booked to reschedule",
                          ev->case_id);
        else
            apply_slot(st, seq, m);
        break;
    case OP_INTERVIEW_CANCELLED:
        if (before == DK_ST_WITHDRAWN || before == DK_ST_CLOSED) {
            st->status = before; /* a case that has ended keeps its status */
            if (!st->interview.active) {
                rc = dk__fail(DK_ETRANSITION, "case '%s' is '%s' and has no interview booked",
                              ev->case_id, dk_status_name(before));
                break;
            }
        }
        /* fall through */
    case OP_ATTENDED:
    case OP_NO_SHOW:
        st->interview.active = 0;
        st->interview.attended += r->op == OP_ATTENDED;
        st->interview.no_shows += r->op == OP_NO_SHOW;
        st->interview.cancelled += r->op == OP_INTERVIEW_CANCELLED;
        break;
    case OP_ERROR_REPORTED:
        if (st->open_errors == DK_OPEN_ERRORS_MAX)
            rc = dk__fail(DK_ETRANSITION, "case '%s' already has %d open error reports",
                          ev->case_id, DK_OPEN_ERRORS_MAX);
        else
            st->error_seqs[st->open_errors++] = seq;
        break;
    case OP_CORRECTED:
        rc = apply_corrected(st, ev, m);
        break;
    case OP_CONTACT:
        if (get(m, "email"))
            copy_str(m, "email", st->email, sizeof st->email);
        if (get(m, "postal_address"))
            copy_str(m, "postal_address", st->postal_address, sizeof st->postal_address);
        break;
    case OP_APPEAL_LODGED:
        /* A refusal, or a grant of less than was sought (an upgrade appeal). */
        if (!st->decision.has || strcmp(st->decision.outcome, "void") == 0)
            rc = dk__fail(DK_ETRANSITION, "case '%s' has no decision to appeal", ev->case_id);
        st->appeal_open = 1;
        break;
    case OP_APPEAL_DECIDED:
        /* A leave cancellation is taken while an appeal is open (a tribunal's decision does
         * not wait on it, nor it on the tribunal): the appeal is then decided in
         * leave_cancelled or closed, and the case keeps that status (acting on an appeal
         * allowed is undoing the cancellation, four eyes). */
        if (before == DK_ST_LEAVE_CANCELLED || before == DK_ST_CLOSED) {
            if (!st->appeal_open) {
                rc = dk__fail(DK_ETRANSITION, "case '%s' is '%s' and has no appeal lodged",
                              ev->case_id, dk_status_name(before));
                break;
            }
        } else {
            st->status =
                str_eq(get(m, "outcome"), "allowed") ? DK_ST_UNDER_CONSIDERATION : DK_ST_DECIDED;
        }
        copy_str(m, "outcome", st->appeal_outcome, sizeof st->appeal_outcome);
        st->appeal_open = 0;
        break;
    case OP_NONE:
        break;
    }
    if (r->data)
        data_close(&d);
    if (rc)
        return rc;
    st->version++;
    st->last_seq = seq;
    return 0;
}

int dk_case_apply(dk_case_state *st, uint64_t seq, const dk_event *ev)
{
    dk_case_state next = *st;
    int rc = apply_in_place(&next, seq, ev);
    if (rc == 0)
        *st = next;
    return rc;
}

int dk_case_step(dk_case_state *st, uint64_t seq, const dk_event *ev)
{
    return apply_in_place(st, seq, ev);
}

/* ---- permissions ---- */

/* A rollback; an undo whose chain of targets ends at a decision, a leave cancellation or
 * a rollback (undoing the undo of a decision re-applies the decision, and undoing a
 * rollback re-applies all it voided: each as weighty as the first). */
static int needs_four_eyes(const dk_event *ev, const char *target_type)
{
    if (strcmp(ev->type, "case.rolled_back") == 0)
        return 1;
    return strcmp(ev->type, "event.reverted") == 0 && target_type &&
           (strcmp(target_type, "decision.recorded") == 0 ||
            strcmp(target_type, "leave.cancelled") == 0 ||
            strcmp(target_type, "case.rolled_back") == 0);
}

int dk__permit_state(const dk_event *ev, unsigned roles, const dk_case_state *st)
{
    if (strcmp(ev->type, "decision.recorded") != 0 || (roles & (SC | MG)) ||
        strcmp(st->assignee, ev->actor) == 0)
        return 0;
    char have[128];
    dk_roles_format(roles, have, sizeof have);
    return dk__fail(DK_EDENIED,
                    "actor '%s' (role %s) may not append decision.recorded on case '%s': it is "
                    "assigned to '%s', and only a senior caseworker may decide another's case",
                    ev->actor, have[0] ? have : "none", ev->case_id,
                    st->assignee[0] ? st->assignee : "nobody");
}

int dk_case_permit(const dk_event *ev, unsigned roles, const dk_case_state *st,
                   const char *const *cosigners, const unsigned *cosigner_roles, size_t ncos,
                   const char *target_type)
{
    const rule *r = find_rule(ev->type);
    char have[128];
    dk_roles_format(roles, have, sizeof have);
    if (r == NULL)
        return dk__fail(DK_EINVAL, "unknown case event type '%s'", ev->type);
    if (!(roles & r->roles)) {
        char need[128];
        dk_roles_format(r->roles, need, sizeof need);
        return dk__fail(DK_EDENIED, "actor '%s' (role %s) may not append %s (needs one of: %s)",
                        ev->actor, have[0] ? have : "none", ev->type, need);
    }
    if (dk__permit_state(ev, roles, st) != 0)
        return DK_EDENIED;
    int four_eyes = !needs_four_eyes(ev, target_type);
    for (size_t i = 0; !four_eyes && i < ncos; i++)
        four_eyes = (cosigner_roles[i] & SC) && strcmp(cosigners[i], ev->actor) != 0;
    if (!four_eyes)
        return dk__fail(DK_EDENIED,
                        "%s%s%s needs four eyes: a second signature by a senior caseworker other "
                        "than '%s'",
                        ev->type, target_type ? " of " : "", target_type ? target_type : "",
                        ev->actor);
    /* an undo undoes (or redoes) what its chain ends at: its author, or a co-signer, must
     * be one who may author that (a caseworker alone does not void a senior's assignment
     * or correction) */
    const rule *t =
        strcmp(ev->type, "event.reverted") == 0 && target_type ? find_rule(target_type) : NULL;
    unsigned signers = roles;
    for (size_t i = 0; t && i < ncos; i++)
        if (strcmp(cosigners[i], ev->actor) != 0)
            signers |= cosigner_roles[i];
    if (t && !(signers & t->roles)) {
        char need[128];
        dk_roles_format(t->roles, need, sizeof need);
        return dk__fail(DK_EDENIED,
                        "actor '%s' (role %s) may not undo %s on case '%s' without a co-signer "
                        "who may author it (one of: %s)",
                        ev->actor, have[0] ? have : "none", target_type, ev->case_id, need);
    }
    return 0;
}

/* ---- rules checked at append only ---- */

/* Statuses that only their own events set (decision.recorded, appeal.lodged and
 * appeal.decided, case.closed, leave.cancelled, interview.booked) and that only those
 * events or an undo leave. interview_scheduled since helper-68: a correction into it made
 * a case with no booking, whose interview was then recorded attended. */
#define OWN_EVENTS_ONLY                                                                            \
    (B(DECIDED) | B(APPEALED) | B(CLOSED) | B(LEAVE_CANCELLED) | B(INTERVIEW_SCHEDULED))

/* Is `ev` a status correction from one status to another? 1 with its two statuses, else
 * 0 (data that does not say is the fold's to name). */
static int status_move(const dk_event *ev, int *from, int *to)
{
    data_view d;
    *from = *to = DK_ST_NONE;
    if (strcmp(ev->type, "status.corrected") != 0 || data_open(ev, &d) != 0)
        return 0;
    const msgpack_object *f = get(&d.root, "from"), *t = get(&d.root, "to");
    if (str_eq(get(&d.root, "field"), "status") && f && f->type == MSGPACK_OBJECT_STR && t &&
        t->type == MSGPACK_OBJECT_STR) {
        *from = dk_status_parse(f->via.str.ptr, f->via.str.size);
        *to = dk_status_parse(t->via.str.ptr, t->via.str.size);
    }
    data_close(&d);
    return *from > DK_ST_NONE && *to > DK_ST_NONE && *from != *to;
}

/* Does a move (status_move) go into or out of OWN_EVENTS_ONLY? */
static int crossing(int from, int to)
{
    return (((1u << from) | (1u << to)) & OWN_EVENTS_ONLY) != 0;
}

#define CROSSING_RULE                                                                              \
    "a case enters and leaves decided, appealed, closed, leave_cancelled and interview_scheduled " \
    "only by their own events (decision.recorded, appeal.lodged, appeal.decided, case.closed, "    \
    "leave.cancelled, the interview events)"

/* A condition a decision lists twice: the first repeated one, else NULL. The fold keeps
 * each once; a reader that copies the list as given could lose those after the repeats
 * (helper-65). */
static const char *repeated_condition(const dk_event *ev)
{
    data_view d;
    if (strcmp(ev->type, "decision.recorded") != 0 || data_open(ev, &d) != 0)
        return NULL;
    const msgpack_object *c = get(&d.root, "conditions");
    const char *twice = NULL;
    for (int k = 0; conditions[k] && !twice && c && c->type == MSGPACK_OBJECT_ARRAY; k++) {
        int seen = 0;
        for (uint32_t i = 0; i < c->via.array.size; i++)
            seen += str_eq(&c->via.array.ptr[i], conditions[k]);
        twice = seen > 1 ? conditions[k] : NULL;
    }
    data_close(&d);
    return twice;
}

int dk__case_check_new(const dk_case_state *before, const dk_event *ev)
{
    int from, to;
    int moves = status_move(ev, &from, &to);
    const char *twice = repeated_condition(ev);
    if (twice)
        return dk__fail(DK_ESCHEMA, "decision.recorded: data.conditions lists '%s' more than once",
                        twice);
    if (moves && crossing(from, to))
        return dk__fail(DK_ETRANSITION,
                        "status.corrected cannot move case '%s' from '%s' to '%s': " CROSSING_RULE
                        ", or by undoing one of those",
                        ev->case_id, dk_status_name(from), dk_status_name(to));
    if (strcmp(ev->type, "leave.cancelled") == 0 && before->leave.grant_seq == 0)
        return dk__fail(DK_ETRANSITION, "case '%s' has no grant of leave to cancel%s", ev->case_id,
                        before->leave.cancelled_seq ? ": its leave was cancelled already" : "");
    if (strcmp(ev->type, "leave.cancelled") == 0 && before->interview.active)
        return dk__fail(DK_ETRANSITION,
                        "leave.cancelled: case '%s' has an interview booked; cancel it first "
                        "(interview.cancelled), as the case will be leave_cancelled",
                        ev->case_id);
    if (moves && before->interview.active)
        return dk__fail(DK_ETRANSITION,
                        "status.corrected: case '%s' has an interview booked with '%s'; cancel "
                        "it first (interview.cancelled): in the status corrected to, no "
                        "interview event could release it",
                        ev->case_id, before->interview.interviewer);
    if (strcmp(ev->type, "appeal.decided") == 0 && !before->appeal_open)
        return dk__fail(DK_ETRANSITION,
                        "appeal.decided: case '%s' has no appeal lodged (a status correction made "
                        "it 'appealed')",
                        ev->case_id);
    return 0;
}

/* ---- the fold ---- */

/* A revert or a rollback: an event that voids others instead of applying. */
static int is_meta(const dk_event *ev)
{
    return strcmp(ev->type, "event.reverted") == 0 || strcmp(ev->type, "case.rolled_back") == 0;
}

int dk_case_fold(const dk_record *recs, size_t n, dk_case_state *st, dk_void **voids,
                 size_t *nvoids, uint64_t *bad_seq)
{
    return dk__case_fold_observed(recs, n, st, voids, nvoids, bad_seq, NULL, NULL);
}

int dk_case_voids(const dk_record *recs, const dk_event *evs, size_t n, uint64_t *voided_by,
                  uint64_t *bad_seq)
{
    if (n)
        memset(voided_by, 0, n * sizeof *voided_by);
    /* Latest first: an event is voided by a later revert or rollback that is
     * not itself voided. Reverts only point back, so one backward pass decides. */
    int rc = 0;
    for (size_t k = n; rc == 0 && k-- > 0;) {
        if (voided_by[k])
            continue;
        int revert = strcmp(evs[k].type, "event.reverted") == 0;
        int rollback = strcmp(evs[k].type, "case.rolled_back") == 0;
        if (!revert && !rollback)
            continue;
        data_view d;
        if ((rc = data_open(&evs[k], &d)) != 0) {
            if (bad_seq)
                *bad_seq = recs[k].seq;
            break;
        }
        if (revert) {
            const msgpack_object *t = get(&d.root, "target_seq");
            if (t == NULL || t->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                rc =
                    dk__fail(DK_ESCHEMA, "event.reverted: data.target_seq is missing or not a seq");
            size_t lo = 0, hi = k; /* recs are in seq order */
            while (rc == 0 && lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (recs[mid].seq < t->via.u64)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (rc == 0 && lo < k && recs[lo].seq == t->via.u64 && !voided_by[lo])
                voided_by[lo] = recs[k].seq;
        } else {
            int64_t to = 0;
            if (time_of(get(&d.root, "to_time"), &to) != 0)
                rc =
                    dk__fail(DK_ESCHEMA, "case.rolled_back: data.to_time is missing or not a time");
            for (size_t j = 0; rc == 0 && j < k; j++)
                if (recs[j].recorded_at > to && !voided_by[j])
                    voided_by[j] = recs[k].seq;
        }
        if (rc && bad_seq)
            *bad_seq = recs[k].seq;
        data_close(&d);
    }
    return rc;
}

void dk_case_skip(dk_case_state *st, uint64_t seq, int voided)
{
    st->version++;
    st->voided += voided != 0;
    st->last_seq = seq;
}

/* A fold's outputs before it begins: an empty case, nothing voided, no bad seq. */
static void fold_start(dk_case_state *st, dk_void **voids, size_t *nvoids, uint64_t *bad_seq)
{
    memset(st, 0, sizeof *st);
    if (voids)
        *voids = NULL;
    if (nvoids)
        *nvoids = 0;
    if (bad_seq)
        *bad_seq = 0;
}

int dk__case_fold_observed(const dk_record *recs, size_t n, dk_case_state *st, dk_void **voids,
                           size_t *nvoids, uint64_t *bad_seq, dk__fold_observer obs, void *arg)
{
    fold_start(st, voids, nvoids, bad_seq);
    dk_event *evs = calloc(n ? n : 1, sizeof *evs);
    if (evs == NULL)
        return dk__fail(DK_ENOMEM, "out of memory folding a case");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((rc = dk_event_decode_stored(recs[i].body, recs[i].body_len, &evs[i])) != 0 && bad_seq)
            *bad_seq = recs[i].seq;
    if (rc == 0)
        rc = dk__case_fold_decoded(recs, evs, n, st, voids, nvoids, bad_seq, obs, arg);
    free(evs);
    return rc;
}

int dk__case_fold_decoded(const dk_record *recs, const dk_event *evs, size_t n, dk_case_state *st,
                          dk_void **voids, size_t *nvoids, uint64_t *bad_seq, dk__fold_observer obs,
                          void *arg)
{
    fold_start(st, voids, nvoids, bad_seq);
    uint64_t *voided_by = calloc(n ? n : 1, sizeof *voided_by);
    if (voided_by == NULL)
        return dk__fail(DK_ENOMEM, "out of memory folding a case");
    int rc = dk_case_voids(recs, evs, n, voided_by, bad_seq);
    size_t nv = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (voided_by[i] || is_meta(&evs[i])) {
            nv += voided_by[i] != 0;
            dk_case_skip(st, recs[i].seq, voided_by[i] != 0);
            continue;
        }
        dk_case_state before;
        if (obs)
            before = *st;
        rc = dk_case_apply(st, recs[i].seq, &evs[i]);
        if (rc && bad_seq)
            *bad_seq = recs[i].seq;
        if (rc == 0 && obs)
            rc = obs(arg, &recs[i], &evs[i], &before, st);
    }
    if (rc == 0 && voids && nv) {
        *voids = calloc(nv, sizeof **voids);
        if (*voids == NULL)
            rc = dk__fail(DK_ENOMEM, "out of memory folding a case");
        for (size_t i = 0, j = 0; rc == 0 && i < n; i++)
            if (voided_by[i])
                (*voids)[j++] = (dk_void){recs[i].seq, voided_by[i], is_meta(&evs[i])};
        if (rc == 0 && nvoids)
            *nvoids = nv;
    }
    free(voided_by);
    return rc;
}

/* Are the events in force (not voided, reverts and rollbacks aside) the same in two lists
 * of voids? Both are in seq order. */
static int same_in_force(const dk_void *a, size_t na, const dk_void *b, size_t nb)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < na && a[i].meta)
            i++;
        while (j < nb && b[j].meta)
            j++;
        if (i == na || j == nb)
            return i == na && j == nb;
        if (a[i].seq != b[j].seq)
            return 0;
        i++, j++;
    }
}

/* Does the undo bring back into force a status correction that crosses OWN_EVENTS_ONLY
 * (one written before that rule, and voided since)? Such an undo would apply it now,
 * with one signature. vb and va: the voids without and with the undo, in seq order. */
static int brings_back_crossing(const dk_event *undo, const dk_record *recs, size_t n,
                                const dk_void *vb, size_t nb, const dk_void *va, size_t na)
{
    size_t ib = 0, ia = 0;
    for (size_t i = 0; i < n; i++) {
        int was = ib < nb && vb[ib].seq == recs[i].seq, is = ia < na && va[ia].seq == recs[i].seq;
        ib += was;
        ia += is;
        dk_event ev;
        int from, to;
        if (was && !is && dk_event_decode_stored(recs[i].body, recs[i].body_len, &ev) == 0 &&
            status_move(&ev, &from, &to) && crossing(from, to))
            return dk__fail(
                DK_ETRANSITION,
                "%s would bring back status.corrected seq %llu of case '%s' (from "
                "'%s' to '%s'), a correction written before the rule that " CROSSING_RULE,
                undo->type, (unsigned long long)recs[i].seq, undo->case_id, dk_status_name(from),
                dk_status_name(to));
    }
    return 0;
}

int dk__undo_allowed_given(const dk_event *ev, const dk_record *recs, size_t n, const dk_void *vb,
                           size_t nb, const dk_void *after, size_t nafter)
{
    if (n == 0)
        return dk__fail(DK_EINVAL, "an undo with no records");
    int rc = 0;
    if (strcmp(ev->type, "case.rolled_back") == 0 && same_in_force(vb, nb, after, nafter)) {
        const char *to = "its to_time";
        size_t tn = strlen(to);
        (void)dk_data_str(ev->data, ev->data_len, "to_time", &to, &tn);
        rc = dk__fail(DK_ETRANSITION,
                      "case.rolled_back voids nothing: no event of case '%s' recorded after %.*s "
                      "is in force",
                      ev->case_id, (int)tn, to);
    }
    if (rc == 0)
        rc = brings_back_crossing(ev, recs, n - 1, vb, nb, after, nafter);
    return rc;
}
