/* gen.c - writes the bench/compare workload once: N case events over C cases, valid
 * under docket's casework rules, pre-signed by 50 actors, in the order drivers ingest. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "common.h"

#define NSENIOR  10 /* actors 0..9: sc.NN, senior caseworkers */
#define NACTORS  50 /* actors 10..49: cw.NN, caseworkers */
#define MAXSTEPS 48 /* events one case may have */
#define SLOT_MAX 2048
#define CHUNK    32768

/* ---- a case's script ---- */

enum { TO_VALIDATED, TO_UNDER_CONSIDERATION };
enum { DEC_WORK, DEC_EUS, DEC_STUDY, DEC_FAMILY, DEC_REFUSE_VISIT, DEC_REFUSE_WORK, DEC_COUNT };
enum { AP_DISMISSED, AP_ALLOWED };

typedef struct plan {
    uint8_t len;
    uint8_t assignee; /* actor index of the caseworker the case is assigned to */
    uint8_t type[MAXSTEPS], arg[MAXSTEPS], actor[MAXSTEPS];
} plan;

static void add(plan *p, int type, int actor, int arg)
{
    if (p->len == MAXSTEPS)
        return;
    p->type[p->len] = (uint8_t)type;
    p->actor[p->len] = (uint8_t)actor;
    p->arg[p->len] = (uint8_t)arg;
    p->len++;
}

static double unif(cmp_rng *r)
{
    return (double)(cmp_rng_next(r) >> 11) / 9007199254740992.0;
}

static int any_cw(cmp_rng *r)
{
    return NSENIOR + (int)cmp_rng_below(r, NACTORS - NSENIOR);
}

/* A realistic life for one case: opened, assigned, evidence, validation,
 * perhaps an interview, notes, a decision or a withdrawal, sometimes an
 * appeal, a cancellation of leave, closure. Every prefix is valid too. */
static void script(plan *p, cmp_rng *r)
{
    int x = any_cw(r), s = (int)cmp_rng_below(r, NSENIOR);
    memset(p, 0, sizeof *p);
    p->assignee = (uint8_t)x;
    add(p, CT_OPENED, any_cw(r), 0);
    add(p, CT_ASSIGNED, s, 0);
    for (int d = (int)cmp_rng_below(r, 3); d > 0; d--)
        add(p, CT_DOCUMENT, x, 0);
    if (unif(r) < 0.2)
        add(p, CT_CONTACT, x, 0);
    add(p, CT_STATUS, x, TO_VALIDATED);
    if (unif(r) < 0.5)
        add(p, CT_NOTE, any_cw(r), 0);
    if (unif(r) < 0.35) {
        add(p, CT_BOOKED, x, 0);
        if (unif(r) < 0.15)
            add(p, CT_RESCHEDULED, x, 0);
        double o = unif(r);
        add(p, o < 0.75 ? CT_ATTENDED : o < 0.9 ? CT_NO_SHOW : CT_IV_CANCELLED, x, 0);
    } else {
        add(p, CT_STATUS, x, TO_UNDER_CONSIDERATION);
    }
    if (unif(r) < 0.1) { /* returned for more evidence */
        add(p, CT_STATUS, x, TO_VALIDATED);
        add(p, CT_DOCUMENT, x, 0);
        add(p, CT_STATUS, x, TO_UNDER_CONSIDERATION);
    }
    for (int n = (int)cmp_rng_below(r, 4); n > 0; n--)
        add(p, CT_NOTE, any_cw(r), 0);
    if (unif(r) < 0.03)
        add(p, CT_ERROR, x, 0);
    if (unif(r) < 0.05) {
        add(p, CT_WITHDRAWN, x, 0);
        if (unif(r) < 0.7)
            add(p, CT_CLOSED, x, 0);
        return;
    }
    int dec =
        unif(r) < 0.75 ? (int)cmp_rng_below(r, 4) : DEC_REFUSE_VISIT + (int)cmp_rng_below(r, 2);
    add(p, CT_DECISION, x, dec);
    if (dec >= DEC_REFUSE_VISIT && unif(r) < 0.3) {
        add(p, CT_APPEAL_LODGED, x, 0);
        int allowed = unif(r) < 0.3;
        add(p, CT_APPEAL_DECIDED, s, allowed ? AP_ALLOWED : AP_DISMISSED);
        if (allowed)
            add(p, CT_DECISION, x, (int)cmp_rng_below(r, 4));
        else
            return; /* refused, appeal dismissed: stays decided */
    } else if (dec < DEC_REFUSE_VISIT && unif(r) < 0.02) {
        add(p, CT_LEAVE_CANCELLED, s, 0);
    }
    if (unif(r) < 0.5)
        add(p, CT_CLOSED, x, 0);
}

/* ---- canonical data maps: keys sorted bytewise before packing ---- */

enum { V_STR, V_BOOL, V_LIST, V_MAP };

typedef struct kv {
    const char *key;
    int kind;
    const char *s;           /* V_STR */
    int b;                   /* V_BOOL */
    const char *const *list; /* V_LIST, NULL-terminated */
    const struct kvmap *sub; /* V_MAP */
} kv;

typedef struct kvmap {
    kv v[12];
    size_t n;
} kvmap;

static void put_str(kvmap *m, const char *key, const char *s)
{
    m->v[m->n++] = (kv){key, V_STR, s, 0, NULL, NULL};
}

static void put_bool(kvmap *m, const char *key, int b)
{
    m->v[m->n++] = (kv){key, V_BOOL, NULL, b, NULL, NULL};
}

static void put_list(kvmap *m, const char *key, const char *const *list)
{
    m->v[m->n++] = (kv){key, V_LIST, NULL, 0, list, NULL};
}

static void put_map(kvmap *m, const char *key, const kvmap *sub)
{
    m->v[m->n++] = (kv){key, V_MAP, NULL, 0, NULL, sub};
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->key, ((const kv *)b)->key);
}

static void pack_s(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_map(msgpack_packer *pk, kvmap *m)
{
    qsort(m->v, m->n, sizeof m->v[0], cmp_kv);
    msgpack_pack_map(pk, m->n);
    for (size_t i = 0; i < m->n; i++) {
        const kv *e = &m->v[i];
        pack_s(pk, e->key);
        switch (e->kind) {
        case V_STR:
            pack_s(pk, e->s);
            break;
        case V_BOOL:
            if (e->b)
                msgpack_pack_true(pk);
            else
                msgpack_pack_false(pk);
            break;
        case V_LIST: {
            size_t n = 0;
            while (e->list[n])
                n++;
            msgpack_pack_array(pk, n);
            for (size_t j = 0; j < n; j++)
                pack_s(pk, e->list[j]);
            break;
        }
        case V_MAP:
            pack_map(pk, (kvmap *)e->sub);
            break;
        }
    }
}

/* ---- vocabularies for realistic data ---- */

static const char *const first_names[] = {
    "Ana",   "Samir", "Li",     "Grace",  "Oluwaseun", "Maria",  "Tomasz",  "Priya",
    "Ahmed", "Elena", "Kwame",  "Sofia",  "Mateo",     "Aisha",  "Dmitri",  "Fatima",
    "Jonas", "Mei",   "Rafael", "Amara",  "Yusuf",     "Ingrid", "Chinedu", "Lucia",
    "Omar",  "Hana",  "Pavel",  "Zainab", "Diego",     "Nadia",  "Kofi",    "Irina"};
static const char *const last_names[] = {
    "Popescu", "Haddad",  "Wei",   "Mensah", "Adeyemi", "Silva",     "Nowak",  "Sharma",
    "Hassan",  "Petrova", "Owusu", "Rossi",  "Garcia",  "Bello",     "Ivanov", "Khan",
    "Berg",    "Chen",    "Costa", "Okafor", "Yilmaz",  "Lindqvist", "Eze",    "Fernandez",
    "Farouk",  "Tanaka",  "Novak", "Abdi",   "Moreno",  "Rahman",    "Asante", "Volkova"};
static const char *const nationalities[] = {"ROU", "SYR", "CHN", "GHA", "NGA", "BRA", "POL",
                                            "IND", "EGY", "BGR", "ITA", "ESP", "PAK", "UKR",
                                            "TUR", "SWE", "PHL", "AFG", "ERI", "COL"};
static const char *const case_types[] = {"visa",   "euss", "asylum", "citizenship",
                                         "family", "work", "study"};
static const char *const channels[] = {"online", "online", "online", "assisted_digital", "paper"};
static const char *const doc_kinds[][2] = {
    {"passport", "Passport biodata page"},
    {"bank_statement", "Bank statements, last six months"},
    {"payslip", "Payslips from the sponsoring employer"},
    {"tenancy", "Tenancy agreement and council tax bill"},
    {"birth_cert", "Full birth certificate with certified translation"},
    {"english_test", "Secure English language test certificate"},
    {"tb_test", "Tuberculosis test certificate from an approved clinic"},
    {"sponsor_cos", "Certificate of sponsorship issued by the employer"}};
static const char *const notes[] = {
    "Called the applicant to confirm the address history; details match the tenancy "
    "agreement supplied.",
    "Identity and residence evidence checked against HMRC records; continuous residence "
    "evidenced for the qualifying period.",
    "Applicant attended the service point in person; passport verified against the issuing "
    "authority's record and biometrics enrolled.",
    "Sponsor licence checked on the register: A-rated, no compliance action outstanding. "
    "Salary meets the going rate for the occupation code.",
    "Requested further evidence of the relationship (joint bank statements and correspondence "
    "at the shared address); 28 days given to respond.",
    "Legal representative confirmed by letter; all future correspondence to be sent to the "
    "representative's address.",
    "Criminality checks returned no trace on PNC and the overseas records check is clear.",
    "English language requirement met by the degree taught in English; ECCTIS confirmation on "
    "file.",
    "Applicant reported a change of employer; new certificate of sponsorship requested before "
    "the case proceeds.",
    "Safeguarding referral considered and not needed after speaking to the applicant and the "
    "local authority."};
static const char *const rationales[] = {
    "The applicant meets the eligibility requirements of the route: sponsorship, salary and "
    "English language requirements are met and no suitability grounds apply.",
    "Five years' continuous residence is evidenced by HMRC and DWP records; the applicant is "
    "eligible for settled status and no suitability grounds apply.",
    "The confirmation of acceptance for studies is valid, maintenance funds were held for 28 "
    "consecutive days and the course is at an approved level.",
    "The relationship is genuine and subsisting, the financial requirement is met through the "
    "sponsor's employment and the accommodation is adequate."};
static const char *const refusals[] = {
    "The applicant has not shown that they intend to leave at the end of the visit: the "
    "financial circumstances described are not supported by the bank statements supplied.",
    "The certificate of sponsorship was withdrawn by the sponsor before the decision, so the "
    "application cannot meet the requirements of the route."};
static const char *const locations[] = {"Croydon", "Sheffield", "Liverpool", "Glasgow",
                                        "Belfast", "Solihull",  "Cardiff"};

static const char *const cond_work[] = {"permission_to_work", "no_recourse_to_public_funds", NULL};
static const char *const cond_settled[] = {"permission_to_work", NULL};
static const char *const cond_study[] = {"study_restriction", "work_restriction",
                                         "no_recourse_to_public_funds", "reporting", NULL};
static const char *const cond_family[] = {"permission_to_work", "no_recourse_to_public_funds",
                                          NULL};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *pick(cmp_rng *r, const char *const *list, size_t n)
{
    return list[cmp_rng_below(r, n)];
}

static void hex64(cmp_rng *r, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 64; i += 16) {
        uint64_t v = cmp_rng_next(r);
        for (int j = 0; j < 16; j++)
            out[i + j] = digits[(v >> (4 * j)) & 15];
    }
    out[64] = 0;
}

static void date_of(int64_t us, char out[11])
{
    char t[DK_TIME_LEN];
    dk_time_format(us, t);
    memcpy(out, t, 10);
    out[10] = 0;
}

/* ---- the generator's state ---- */

typedef struct order_ent {
    double t; /* seconds since the period's start */
    uint32_t case_no;
    uint8_t k;
} order_ent;

typedef struct gen {
    uint64_t seed;
    uint64_t nevents, ncases;
    dk_key *keys[NACTORS];
    unsigned roles[NACTORS];
    plan *plans;
    order_ent *order;      /* nevents, sorted by time */
    uint32_t *slot;        /* nevents: interview slot number of a booking/reschedule */
    dk_case_state *states; /* ncases: each case's state, to validate as we go */
} gen;

#define T0_US    1735689600000000ll /* 2025-01-01T00:00:00Z */
#define PERIOD_S (2.0 * 365 * 86400)
#define SLOT0_US 946684800000000ll /* 2000-01-01T00:00:00Z: before every outcome */

static int cmp_order(const void *a, const void *b)
{
    const order_ent *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->case_no != y->case_no)
        return x->case_no < y->case_no ? -1 : 1;
    return (int)x->k - (int)y->k;
}

/* Data for event i of the ordered stream, packed into sb. */
static void make_data(const gen *g, size_t i, int64_t at_us, msgpack_sbuffer *sb)
{
    const order_ent *o = &g->order[i];
    const plan *p = &g->plans[o->case_no];
    int type = p->type[o->k], arg = p->arg[o->k];
    cmp_rng r, rc;
    cmp_rng_seed(&r, g->seed ^ ((uint64_t)o->case_no << 8 | o->k) * 0x9e3779b97f4a7c15ull);
    cmp_rng_seed(&rc, g->seed ^ (uint64_t)o->case_no * 0xd1b54a32d192ed03ull);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    kvmap m = {0}, sub = {0};
    char b1[256], b2[256], b3[80], d1[11], d2[11], h1[65], h2[65];
    const char *list2[3] = {h1, h2, NULL};
    switch (type) {
    case CT_OPENED: {
        int64_t dob =
            -86400000000ll * (int64_t)(cmp_rng_below(&rc, 18000)) + 86400000000ll * 365 * 30;
        snprintf(b1, sizeof b1, "%s %s", pick(&rc, first_names, COUNT(first_names)),
                 pick(&rc, last_names, COUNT(last_names)));
        snprintf(b2, sizeof b2, "P-%07u", o->case_no);
        date_of(dob, d1);
        date_of(at_us - 86400000000ll * (int64_t)cmp_rng_below(&rc, 20), d2);
        put_str(&sub, "date_of_birth", d1);
        put_str(&sub, "name", b1);
        put_str(&sub, "nationality", pick(&rc, nationalities, COUNT(nationalities)));
        put_str(&sub, "ref", b2);
        put_map(&m, "applicant", &sub);
        put_str(&m, "case_type", pick(&rc, case_types, COUNT(case_types)));
        put_str(&m, "channel", pick(&rc, channels, COUNT(channels)));
        put_str(&m, "received_on", d2);
        break;
    }
    case CT_ASSIGNED:
        put_str(&m, "caseworker", dk_key_id(g->keys[p->assignee]));
        break;
    case CT_STATUS:
        put_str(&m, "reason",
                arg == TO_VALIDATED
                    ? "identity, nationality and residence evidence checked and complete"
                    : "all evidence received; ready for consideration by the caseworker");
        put_str(&m, "to", arg == TO_VALIDATED ? "validated" : "under_consideration");
        break;
    case CT_WITHDRAWN:
        put_str(&m, "reason", "applicant asked in writing to withdraw the application");
        break;
    case CT_CLOSED:
        put_str(&m, "reason", "decision served and the case file completed");
        break;
    case CT_IV_CANCELLED:
        put_str(&m, "reason", "interviewer unavailable; the applicant will be offered a new slot");
        break;
    case CT_DECISION: {
        static const char *const products[] = {"WORK", "EUS", "STUDY", "FAMILY", "VISIT", "WORK"};
        static const char *const *const conds[] = {cond_work, cond_settled, cond_study,
                                                   cond_family};
        static const char *const statuses[] = {"LTR", "ILR", "LTR", "LTR"};
        int granted = arg < DEC_REFUSE_VISIT;
        hex64(&r, h1);
        hex64(&r, h2);
        if (cmp_rng_below(&r, 2))
            list2[1] = NULL;
        put_list(&m, "evidence", list2);
        put_str(&m, "outcome", granted ? "granted" : "refused");
        put_str(&m, "product_type", products[arg]);
        put_str(&m, "rationale", granted ? rationales[arg] : refusals[arg - DEC_REFUSE_VISIT]);
        put_str(&m, "rules_version", "HC395-2026-10");
        if (granted) {
            put_list(&m, "conditions", conds[arg]);
            put_str(&m, "immigration_status", statuses[arg]);
            put_bool(&m, "no_recourse_to_public_funds", arg != DEC_EUS);
            date_of(at_us + 86400000000ll, d1);
            put_str(&m, "valid_from", d1);
            if (arg != DEC_EUS) {
                date_of(at_us + 86400000000ll * 365 * (2 + (int64_t)cmp_rng_below(&r, 4)), d2);
                put_str(&m, "valid_until", d2);
            }
        }
        break;
    }
    case CT_LEAVE_CANCELLED:
        put_str(&m, "notice_sent_to", "applicant@example.org");
        put_str(&m, "reason", "leave obtained by deception: the sponsorship was not genuine");
        break;
    case CT_NOTE:
        put_str(&m, "text", pick(&r, notes, COUNT(notes)));
        break;
    case CT_DOCUMENT: {
        size_t d = cmp_rng_below(&r, COUNT(doc_kinds));
        hex64(&r, h1);
        put_str(&m, "kind", doc_kinds[d][0]);
        put_str(&m, "sha256", h1);
        put_str(&m, "title", doc_kinds[d][1]);
        break;
    }
    case CT_BOOKED:
    case CT_RESCHEDULED: {
        uint32_t s = g->slot[i];
        int64_t start = SLOT0_US + (int64_t)(s / CMP_NINTERVIEWERS) * 3600000000ll;
        char ts[DK_TIME_LEN], te[DK_TIME_LEN];
        dk_time_format(start, ts);
        dk_time_format(start + 3000000000ll, te);
        snprintf(b3, sizeof b3, "iv.%03u", s % CMP_NINTERVIEWERS);
        snprintf(b1, sizeof b1, "%s", ts);
        snprintf(b2, sizeof b2, "%s", te);
        put_str(&m, "interviewer", b3);
        put_str(&m, "location", pick(&rc, locations, COUNT(locations)));
        if (type == CT_RESCHEDULED)
            put_str(&m, "reason", "applicant asked for a later slot");
        put_str(&m, "slot_end", b2);
        put_str(&m, "slot_start", b1);
        break;
    }
    case CT_ATTENDED:
        put_str(&m, "notes", "credible and consistent account; documents seen in original");
        break;
    case CT_NO_SHOW:
        break;
    case CT_ERROR:
        put_str(&m, "by", "quality assurance team");
        put_str(&m, "description", "date of birth keyed as on the visa vignette, not the passport");
        break;
    case CT_CONTACT:
        snprintf(b1, sizeof b1, "applicant.%u@example.org", o->case_no);
        put_str(&m, "email", b1);
        break;
    case CT_APPEAL_LODGED:
        put_str(&m, "grounds",
                "the decision is not in accordance with the law: article 8 ECHR "
                "and the best interests of the applicant's children");
        break;
    case CT_APPEAL_DECIDED:
        put_str(&m, "outcome", arg == AP_ALLOWED ? "allowed" : "dismissed");
        put_str(&m, "reason",
                arg == AP_ALLOWED ? "the tribunal found an error of law"
                                  : "no material error of law");
        break;
    }
    pack_map(&pk, &m);
}

/* ---- encode, sign and validate a chunk, in parallel by case ---- */

typedef struct job {
    gen *g;
    size_t from, to; /* events of the chunk */
    int part, nparts;
    uint8_t *slots; /* (to - from) x SLOT_MAX: cmp_ev_head + body */
    int failed;
    char err[512];
} job;

static int make_event(gen *g, size_t i, uint8_t *slot, char *err, size_t errcap)
{
    const order_ent *o = &g->order[i];
    const plan *p = &g->plans[o->case_no];
    int type = p->type[o->k], actor = p->actor[o->k];
    int64_t at = T0_US + (int64_t)(o->t * 1e6);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    make_data(g, i, at, &sb);
    dk_event ev;
    memset(&ev, 0, sizeof ev);
    ev.v = DK_EVENT_VERSION;
    snprintf(ev.type, sizeof ev.type, "%s", cmp_type_name(type));
    cmp_case_id(o->case_no, ev.case_id);
    snprintf(ev.actor, sizeof ev.actor, "%s", dk_key_id(g->keys[actor]));
    ev.at = at;
    for (int b = 0; b < 8; b++)
        ev.cmd[b] = (uint8_t)((uint64_t)i >> (56 - 8 * b)); /* in order, as dk_cmd_new makes them */
    memcpy(ev.cmd + 8, "cmpbench", 8);
    ev.has_expect = 1;
    ev.expect = o->k;
    ev.data = (const uint8_t *)sb.data;
    ev.data_len = sb.size;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = dk_event_encode(&ev, &body, &len);
    msgpack_sbuffer_destroy(&sb);
    if (rc) {
        snprintf(err, errcap, "event %zu (%s): %s", i, ev.type, dk_errmsg());
        return -1;
    }
    if (len + sizeof(cmp_ev_head) > SLOT_MAX) {
        free(body);
        snprintf(err, errcap, "event %zu is %zu bytes", i, len);
        return -1;
    }
    cmp_ev_head h;
    memset(&h, 0, sizeof h);
    h.case_no = o->case_no;
    h.version = o->k;
    h.body_len = (uint32_t)len;
    h.actor = (uint8_t)actor;
    h.type = (uint8_t)type;
    dk_sign(g->keys[actor], body, len, h.sig);
    memcpy(slot, &h, sizeof h);
    memcpy(slot + sizeof h, body, len);

    /* Validate as docket's writer will: schema, permission, lifecycle, version. */
    dk_event dec;
    dk_case_state *st = &g->states[o->case_no];
    if (dk_event_decode(body, len, &dec) != 0 || dk_case_check_schema(&dec) != 0 ||
        dk_case_permit(&dec, g->roles[actor], st, NULL, NULL, 0, NULL) != 0 ||
        dec.expect != st->version || dk_case_apply(st, i + 1, &dec) != 0) {
        snprintf(err, errcap, "event %zu (%s on %s, step %u) breaks the rules: %s", i, ev.type,
                 ev.case_id, o->k, dk_errmsg());
        free(body);
        return -1;
    }
    free(body);
    return 0;
}

static void *job_main(void *arg)
{
    job *j = arg;
    for (size_t i = j->from; i < j->to; i++) {
        if ((int)(j->g->order[i].case_no % (uint32_t)j->nparts) != j->part)
            continue;
        if (make_event(j->g, i, j->slots + (i - j->from) * SLOT_MAX, j->err, sizeof j->err)) {
            j->failed = 1;
            return NULL;
        }
    }
    return NULL;
}

static void write_all(FILE *f, const void *p, size_t n, const char *path)
{
    if (fwrite(p, 1, n, f) != n)
        cmp_die("cannot write %s: %s", path, strerror(errno));
}

static size_t arg_count(const char *name, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        cmp_die("%s needs a number, not '%s'", name, s);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    gen g;
    memset(&g, 0, sizeof g);
    const char *out = NULL;
    g.nevents = 1000000;
    g.ncases = 0;
    g.seed = 42;
    cmp_set_prog(argv[0]);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--events") == 0)
            g.nevents = arg_count(argv[i], argv[i + 1]);
        else if (strcmp(argv[i], "--cases") == 0)
            g.ncases = arg_count(argv[i], argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0)
            g.seed = arg_count(argv[i], argv[i + 1]);
        else
            cmp_die("unknown option %s (options: --out FILE --events N --cases N --seed N)",
                    argv[i]);
    }
    if (out == NULL || argc % 2 == 0)
        cmp_die("usage: cmp_gen --out FILE [--events N] [--cases N] [--seed N]");
    if (g.ncases == 0)
        g.ncases = g.nevents / 10 ? g.nevents / 10 : 1;
    if (g.nevents < g.ncases || g.nevents > (uint64_t)g.ncases * MAXSTEPS)
        cmp_die("need cases <= events <= %d x cases", MAXSTEPS);
    if (dk_init() != 0)
        cmp_die("cannot initialise libdocket");
    double t0 = cmp_now();

    /* Actors: 10 senior caseworkers, 40 caseworkers. */
    for (int a = 0; a < NACTORS; a++) {
        char id[16];
        if (a < NSENIOR)
            snprintf(id, sizeof id, "sc.%02d", a);
        else
            snprintf(id, sizeof id, "cw.%02d", a - NSENIOR);
        if (dk_key_generate(id, &g.keys[a]) != 0)
            cmp_die("cannot make a key: %s", dk_errmsg());
        g.roles[a] = a < NSENIOR ? DK_ROLE_SENIOR_CASEWORKER : DK_ROLE_CASEWORKER;
    }

    /* Scripts, then trimmed or extended to exactly nevents. */
    g.plans = calloc(g.ncases, sizeof *g.plans);
    g.states = calloc(g.ncases, sizeof *g.states);
    g.order = malloc(g.nevents * sizeof *g.order);
    g.slot = calloc(g.nevents, sizeof *g.slot);
    if (!g.plans || !g.states || !g.order || !g.slot)
        cmp_die("out of memory");
    cmp_rng r;
    uint64_t total = 0;
    for (uint64_t c = 0; c < g.ncases; c++) {
        cmp_rng_seed(&r, g.seed * 1000003 + c);
        script(&g.plans[c], &r);
        total += g.plans[c].len;
    }
    cmp_rng_seed(&r, g.seed + 7);
    while (total > g.nevents) {
        plan *p = &g.plans[cmp_rng_below(&r, g.ncases)];
        if (p->len > 1) {
            p->len--;
            total--;
        }
    }
    while (total < g.nevents) {
        plan *p = &g.plans[cmp_rng_below(&r, g.ncases)];
        if (p->len < MAXSTEPS) {
            add(p, cmp_rng_below(&r, 3) ? CT_NOTE : CT_DOCUMENT, p->assignee, 0);
            total++;
        }
    }

    /* Times: cases open across two years; about a week between a case's events. */
    size_t n = 0;
    for (uint64_t c = 0; c < g.ncases; c++) {
        cmp_rng_seed(&r, g.seed * 7919 + c);
        double t = unif(&r) * PERIOD_S;
        for (int k = 0; k < g.plans[c].len; k++) {
            g.order[n++] = (order_ent){t, (uint32_t)c, (uint8_t)k};
            t += 1.0 - log(1.0 - unif(&r)) * 7 * 86400;
        }
    }
    qsort(g.order, n, sizeof *g.order, cmp_order);
    /* Interview slots, globally unique per (interviewer, hour): never double-booked. */
    uint32_t nslots = 0;
    for (size_t i = 0; i < n; i++) {
        int type = g.plans[g.order[i].case_no].type[g.order[i].k];
        if (type == CT_BOOKED || type == CT_RESCHEDULED)
            g.slot[i] = nslots++;
    }

    /* Header and actors. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        cmp_die("cannot create %s: %s", tmp, strerror(errno));
    cmp_file_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CMP_MAGIC, 8);
    h.nevents = g.nevents;
    h.ncases = g.ncases;
    h.seed = g.seed;
    h.nactors = NACTORS;
    write_all(f, &h, sizeof h, tmp);
    for (int a = 0; a < NACTORS; a++) {
        cmp_actor ca;
        memset(&ca, 0, sizeof ca);
        snprintf(ca.id, sizeof ca.id, "%s", dk_key_id(g.keys[a]));
        memcpy(ca.pk, dk_key_public(g.keys[a]), DK_PUBKEY_BYTES);
        ca.roles = g.roles[a];
        write_all(f, &ca, sizeof ca, tmp);
    }

    /* Events, a chunk at a time, encoded and signed on all cores. */
    int nt = cmp_cores();
    if (nt > 16)
        nt = 16;
    uint8_t *slots = malloc((size_t)CHUNK * SLOT_MAX);
    if (slots == NULL)
        cmp_die("out of memory");
    uint64_t counts[CT_COUNT] = {0}, bytes = 0;
    static const uint8_t zero[8];
    for (size_t from = 0; from < n; from += CHUNK) {
        size_t to = from + CHUNK < n ? from + CHUNK : n;
        job jobs[16];
        pthread_t th[16];
        for (int t = 0; t < nt; t++) {
            jobs[t] = (job){&g, from, to, t, nt, slots, 0, ""};
            if (pthread_create(&th[t], NULL, job_main, &jobs[t]) != 0)
                cmp_die("cannot start a thread");
        }
        for (int t = 0; t < nt; t++)
            pthread_join(th[t], NULL);
        for (int t = 0; t < nt; t++)
            if (jobs[t].failed)
                cmp_die("%s", jobs[t].err);
        for (size_t i = from; i < to; i++) {
            const uint8_t *s = slots + (i - from) * SLOT_MAX;
            cmp_ev_head eh;
            memcpy(&eh, s, sizeof eh);
            size_t rec = sizeof eh + eh.body_len;
            write_all(f, s, rec, tmp);
            if (rec % 8)
                write_all(f, zero, 8 - rec % 8, tmp);
            counts[eh.type]++;
            bytes += eh.body_len;
        }
    }
    if (fclose(f) != 0)
        cmp_die("cannot write %s: %s", tmp, strerror(errno));
    if (rename(tmp, out) != 0)
        cmp_die("cannot rename %s to %s: %s", tmp, out, strerror(errno));

    size_t opened = 0;
    for (uint64_t c = 0; c < g.ncases; c++) {
        opened += g.states[c].status != DK_ST_NONE;
        if (g.states[c].version != g.plans[c].len)
            cmp_die("case %llu: %llu of %u events validated", (unsigned long long)c,
                    (unsigned long long)g.states[c].version, g.plans[c].len);
    }
    printf("# workload: %llu events over %zu cases by %d actors, %.0f-byte bodies on average, "
           "in %.1f s (signed and checked against the casework rules)\n",
           (unsigned long long)g.nevents, opened, NACTORS, (double)bytes / (double)n,
           cmp_now() - t0);
    printf("# mix:");
    for (int t = 0; t < CT_COUNT; t++)
        if (counts[t])
            printf(" %s %.1f%%", cmp_type_name(t), 100.0 * (double)counts[t] / (double)n);
    printf("\n");
    for (int a = 0; a < NACTORS; a++)
        dk_key_free(g.keys[a]);
    free(slots);
    free(g.plans);
    free(g.states);
    free(g.order);
    free(g.slot);
    return 0;
}
