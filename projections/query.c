/* query.c - reading the views: case summaries, cases by status, queues, diaries,
 * decision statistics over date ranges, error reports and dumps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "views_int.h"

static const uint32_t code_versions[] = {
#define XX(id, name, version) version,
    DK_VIEW_MAP(XX)
#undef XX
};

/* A read snapshot of one view. */
typedef struct reader {
    MDB_txn *txn;
    MDB_dbi dbi;
    uint64_t seq;
} reader;

/* What a reader is told of a view it cannot be served yet: which process is rebuilding it,
 * if a living one is (and if that process is stopped), else `otherwise`. */
static void build_hint(dk_views *vw, MDB_txn *txn, int view, const char *otherwise, char *out,
                       size_t cap)
{
    unsigned mask = 0;
    uint64_t pids[NV] = {0};
    if (dk__builds_running(vw, txn, &mask, pids) != 0 || !(mask >> view & 1))
        snprintf(out, cap, "%s", otherwise);
    else if (dk__proc_stopped(pids[view]))
        snprintf(out, cap,
                 "process %llu holds its rebuild and is stopped: the rebuild goes on when that "
                 "process is continued; once it has ended, docket project or docket views "
                 "rebuild %s takes the rebuild over",
                 (unsigned long long)pids[view], dk_view_name(view));
    else
        snprintf(out, cap, "process %llu is rebuilding it (docket views status shows how far)",
                 (unsigned long long)pids[view]);
}

/* One view in a read snapshot, served only if built by this code, and from this ledger
 * (`head`, read after the snapshot began): views left from a ledger that was since
 * replaced or restored would show records it does not hold. Its seq and database. */
static int view_open(dk_views *vw, MDB_txn *txn, const dk_head *head, int view, uint64_t *seq,
                     MDB_dbi *dbi)
{
    uint32_t version;
    uint64_t gen, count;
    uint8_t digest[DK_VIEW_DIGEST_BYTES], hash[DK_HASH_BYTES];
    char hint[320];
    int rc = dk__cp_read(vw, txn, view, &version, &gen, seq, &count, digest, hash);
    if (rc == MDB_NOTFOUND) {
        build_hint(vw, txn, view, "docket project or docket views rebuild builds it", hint,
                   sizeof hint);
        rc = dk_fail(DK_ENOTFOUND, "view '%s' is not built yet: %s", dk_view_name(view), hint);
    } else if (rc == 0 && version != code_versions[view]) {
        build_hint(vw, txn, view,
                   "it is rebuilt by the next docket project (or docket views rebuild)", hint,
                   sizeof hint);
        rc = dk_fail(DK_ENOTFOUND,
                     "view '%s' is stored at version %u and this docket reads version %u: %s",
                     dk_view_name(view), version, code_versions[view], hint);
    } else if (rc == DK__CP_MALFORMED)
        rc = dk_fail(DK_ECORRUPT,
                     "view '%s' is damaged: its checkpoint row is malformed (docket views "
                     "rebuild %s repairs it)",
                     dk_view_name(view), dk_view_name(view));
    else if (rc)
        rc = dk__mdb_fail(rc, "cannot read a checkpoint");
    if (rc == 0)
        rc = dk__views_match(vw, head, *seq, hash);
    if (rc == 0 && (rc = dk__db_open(txn, view, gen, 0, dbi)) != 0)
        rc = rc != MDB_NOTFOUND
                 ? dk__mdb_fail(rc, "cannot open the view")
                 : dk_fail(DK_ECORRUPT,
                           "view '%s' is damaged: its database (generation %llu) is missing "
                           "(docket views rebuild %s repairs it)",
                           dk_view_name(view), (unsigned long long)gen, dk_view_name(view));
    return rc;
}

static int reader_open_head(dk_views *vw, int view, reader *r, dk_head *head)
{
    int rc = dk__txn_begin(vw, MDB_RDONLY, &r->txn);
    if (rc)
        return rc;
    /* the head after the views' snapshot: read before it, another process could append
     * and step the views past it in between, and they would look ahead of the ledger */
    if ((rc = dk__views_head(vw, head)) == 0)
        rc = view_open(vw, r->txn, head, view, &r->seq, &r->dbi);
    if (rc)
        mdb_txn_abort(r->txn);
    return rc;
}

static int reader_open(dk_views *vw, int view, reader *r)
{
    dk_head head;
    return reader_open_head(vw, view, r, &head);
}

static void reader_close(reader *r)
{
    mdb_txn_commit(r->txn); /* a read txn: commit keeps the dbi handle for later txns */
}

/* Walk the entries whose key starts with prefix (plen bytes). */
typedef int (*entry_fn)(void *ctx, const MDB_val *k, const MDB_val *v);
static int scan(reader *r, const void *prefix, size_t plen, entry_fn fn, void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, r->dbi, &cur);
    if (rc)
        return dk__mdb_fail(rc, "cannot open a cursor");
    MDB_val k = {plen, (void *)prefix}, v;
    int op = plen ? MDB_SET_RANGE : MDB_FIRST;
    int stop = 0;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
            break;
        if ((stop = fn(ctx, &k, &v)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (stop)
        return stop;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : dk__mdb_fail(rc, "cannot read the view");
}

/* ---- dump ---- */

typedef struct dump_ctx {
    int view;
    dk_views_row_fn fn;
    void *ud;
    char k[2048], v[4096];
} dump_ctx;

static int dump_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    dump_ctx *d = ctx;
    dk__render_key(d->view, k->mv_data, k->mv_size, d->k, sizeof d->k);
    dk__render_val(d->view, v->mv_data, v->mv_size, d->v, sizeof d->v);
    return d->fn(d->ud, d->k, d->v);
}

int dk_views_dump(dk_views *vw, const char *name, dk_views_row_fn fn, void *udata, uint64_t *as_of)
{
    int view = dk_view_id(name);
    if (view < 0)
        return dk__unknown_view(name, 0);
    reader r;
    int rc = reader_open(vw, view, &r);
    if (rc)
        return rc;
    dump_ctx *d = malloc(sizeof *d);
    if (d == NULL) {
        mdb_txn_abort(r.txn);
        return dk_fail(DK_ENOMEM, "out of memory");
    }
    d->view = view;
    d->fn = fn;
    d->ud = udata;
    rc = scan(&r, NULL, 0, dump_one, d);
    free(d);
    if (as_of)
        *as_of = r.seq;
    reader_close(&r);
    return rc;
}

/* ---- case_status ---- */

static void summary_of(const char *case_id, size_t idlen, const MDB_val *v, dk_case_summary *s)
{
    char f[32];
    memset(s, 0, sizeof *s);
    size_t n = idlen < DK_CASE_MAX ? idlen : DK_CASE_MAX;
    memcpy(s->case_id, case_id, n);
    const uint8_t *b = v->mv_data;
    size_t len = v->mv_size;
    dk__tup_get(b, len, 0, s->status, sizeof s->status);
    dk__tup_get(b, len, 1, s->case_type, sizeof s->case_type);
    dk__tup_get(b, len, 2, s->channel, sizeof s->channel);
    dk__tup_get(b, len, 3, s->received_on, sizeof s->received_on);
    dk__tup_get(b, len, 4, s->assignee, sizeof s->assignee);
    dk__tup_get(b, len, 5, f, sizeof f);
    s->version = strtoull(f, NULL, 10);
    dk__tup_get(b, len, 6, f, sizeof f);
    s->last_seq = strtoull(f, NULL, 10);
    dk__tup_get(b, len, 7, f, sizeof f);
    s->voided = strtoull(f, NULL, 10);
    dk__tup_get(b, len, 8, s->outcome, sizeof s->outcome);
    dk__tup_get(b, len, 9, s->immigration_status, sizeof s->immigration_status);
    dk__tup_get(b, len, 10, s->conditions, sizeof s->conditions);
    dk__tup_get(b, len, 11, s->valid_until, sizeof s->valid_until);
    dk__tup_get(b, len, 12, s->interview_at, sizeof s->interview_at);
    dk__tup_get(b, len, 13, s->interviewer, sizeof s->interviewer);
    dk__tup_get(b, len, 14, f, sizeof f);
    s->open_errors = (uint32_t)strtoul(f, NULL, 10);
    dk__tup_get(b, len, 15, s->appeal, sizeof s->appeal);
    dk__tup_get(b, len, 16, f, sizeof f);
    s->leave_cancelled_seq = strtoull(f, NULL, 10);
    dk__tup_get(b, len, 17, f, sizeof f);
    s->leave_grant_seq = strtoull(f, NULL, 10);
}

static int check_case_id(const char *case_id)
{
    if (case_id == NULL || case_id[0] == 0)
        return dk_fail(DK_EINVAL, "no case id given");
    if (strlen(case_id) > DK_CASE_MAX)
        return dk_fail(DK_EINVAL, "case id is longer than %d bytes", DK_CASE_MAX);
    return 0;
}

int dk_views_case(dk_views *vw, const char *case_id, dk_case_summary *out, uint64_t *as_of)
{
    int rc = check_case_id(case_id);
    if (rc)
        return rc;
    reader r;
    if ((rc = reader_open(vw, DK_VIEW_CASE_STATUS, &r)) != 0)
        return rc;
    MDB_val k = {strlen(case_id), (void *)case_id}, v;
    int g = mdb_get(r.txn, r.dbi, &k, &v);
    if (g == 0)
        summary_of(case_id, strlen(case_id), &v, out);
    else if (g == MDB_NOTFOUND)
        rc = dk_fail(DK_ENOTFOUND, "no case '%s' in the case_status view (at seq %llu)", case_id,
                     (unsigned long long)r.seq);
    else
        rc = dk__mdb_fail(g, "cannot read the view");
    if (as_of)
        *as_of = r.seq;
    reader_close(&r);
    return rc;
}

/* ---- by_status ---- */

typedef struct bs_ctx {
    size_t plen;
    MDB_txn *txn;
    MDB_dbi cs;
    dk_views_case_fn fn;
    void *ud;
} bs_ctx;

static int bs_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    (void)v;
    bs_ctx *b = ctx;
    const char *id = (const char *)k->mv_data + b->plen;
    size_t idlen = k->mv_size - b->plen;
    dk_case_summary s;
    MDB_val ck = {idlen, (void *)id}, cv;
    int g = mdb_get(b->txn, b->cs, &ck, &cv);
    if (g == MDB_NOTFOUND)
        return dk_fail(DK_ECORRUPT,
                       "case '%.*s' is in the by_status view but not in case_status (docket "
                       "views check names the difference; docket views rebuild repairs it)",
                       (int)idlen, id);
    if (g != 0) /* a broken page: the transaction is spent */
        return dk__mdb_fail(g, "cannot read the case_status view");
    summary_of(id, idlen, &cv, &s);
    return b->fn(b->ud, &s);
}

int dk_views_by_status(dk_views *vw, const char *status, dk_views_case_fn fn, void *udata,
                       uint64_t *as_of)
{
    if (status == NULL || dk_status_parse(status, strlen(status)) < 0) {
        char list[256];
        size_t n = 0;
        for (int i = 1; i < DK_ST_COUNT; i++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "",
                                  dk_status_name(i));
        return dk_fail(DK_EINVAL, "'%s' is not a case status (statuses: %s)", status ? status : "",
                       list);
    }
    reader r;
    dk_head head;
    int rc = reader_open_head(vw, DK_VIEW_BY_STATUS, &r, &head);
    if (rc)
        return rc;
    /* each case's summary comes from case_status, which must stand where by_status does:
     * blank fields would read as "unassigned" (helper-71: while another process rebuilt
     * case_status after an upgrade, every case came out with no assignee and version 0) */
    bs_ctx b = {strlen(status) + 1, r.txn, 0, fn, udata};
    uint64_t cs_seq = 0;
    rc = view_open(vw, r.txn, &head, DK_VIEW_CASE_STATUS, &cs_seq, &b.cs);
    if (rc) {
        char why[DK_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dk_errmsg());
        rc = dk_fail(rc, "query status takes each case's summary from case_status: %s", why);
    } else if (cs_seq != r.seq) {
        rc = dk_fail(DK_ENOTFOUND,
                     "query status takes each case's summary from case_status, which stands at "
                     "seq %llu where by_status stands at %llu (one of them is being rebuilt); "
                     "try again, or run docket project first",
                     (unsigned long long)cs_seq, (unsigned long long)r.seq);
    } else {
        char prefix[32];
        memcpy(prefix, status, b.plen); /* includes the NUL separator */
        rc = scan(&r, prefix, b.plen, bs_one, &b);
    }
    if (as_of)
        *as_of = r.seq;
    reader_close(&r);
    return rc;
}

/* ---- queue ---- */

typedef struct q_ctx {
    size_t plen;
    dk_views_queue_fn fn;
    void *ud;
} q_ctx;

static int q_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    q_ctx *q = ctx;
    dk_queue_item it;
    memset(&it, 0, sizeof it);
    const char *p = (const char *)k->mv_data + q->plen;
    size_t n = k->mv_size - q->plen;
    if (n < 11)
        return 0;
    memcpy(it.received_on, p, 10);
    size_t idlen = n - 11 < DK_CASE_MAX ? n - 11 : DK_CASE_MAX;
    memcpy(it.case_id, p + 11, idlen);
    dk__tup_get(v->mv_data, v->mv_size, 0, it.status, sizeof it.status);
    return q->fn(q->ud, &it);
}

int dk_queue_caseworker_check(const char *caseworker)
{
    if (dk_actor_id_check(caseworker) != 0) {
        char why[DK_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", dk_errmsg());
        return dk_fail(DK_EINVAL, "a caseworker is an actor id: %s", why);
    }
    return 0;
}

int dk_views_queue(dk_views *vw, const char *caseworker, dk_views_queue_fn fn, void *udata,
                   uint64_t *as_of)
{
    int rc = dk_queue_caseworker_check(caseworker);
    if (rc)
        return rc;
    reader r;
    rc = reader_open(vw, DK_VIEW_QUEUE, &r);
    if (rc)
        return rc;
    q_ctx q = {strlen(caseworker) + 1, fn, udata};
    rc = scan(&r, caseworker, q.plen, q_one, &q);
    if (as_of)
        *as_of = r.seq;
    reader_close(&r);
    return rc;
}

/* ---- diary ---- */

typedef struct d_ctx {
    dk_views_diary_fn fn;
    void *ud;
} d_ctx;

static int d_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    d_ctx *d = ctx;
    dk_diary_slot s;
    char f[64];
    memset(&s, 0, sizeof s);
    const uint8_t *p = k->mv_data;
    if (k->mv_size < 20)
        return 0;
    memcpy(s.day, p, 10);
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[11 + i];
    s.start = (int64_t)(u ^ (1ull << 63));
    const char *rest = (const char *)p + 19;
    size_t n = k->mv_size - 19;
    const char *z = memchr(rest, 0, n);
    if (z == NULL)
        return 0;
    size_t il = (size_t)(z - rest);
    memcpy(s.interviewer, rest, il < DK_ACTOR_MAX ? il : DK_ACTOR_MAX);
    size_t cl = n - il - 1; /* the case, NUL, the booking's seq */
    if (cl < 9 || z[cl - 8] != 0)
        return 0;
    cl -= 9;
    memcpy(s.case_id, z + 1, cl < DK_CASE_MAX ? cl : DK_CASE_MAX);
    s.booked_at = dk_get_be64((const uint8_t *)z + 1 + cl + 1);
    dk__tup_get(v->mv_data, v->mv_size, 1, f, sizeof f);
    if (dk_time_parse(f, &s.end) != 0)
        s.end = 0;
    dk__tup_get(v->mv_data, v->mv_size, 2, s.location, sizeof s.location);
    dk__tup_get(v->mv_data, v->mv_size, 3, s.state, sizeof s.state);
    return d->fn(d->ud, &s);
}

int dk_views_diary(dk_views *vw, const char *day, dk_views_diary_fn fn, void *udata,
                   uint64_t *as_of)
{
    if (day == NULL || strlen(day) != 10 || !dk_date_valid(day, 10))
        return dk_fail(DK_EINVAL, "'%s' is not a date YYYY-MM-DD", day ? day : "");
    reader r;
    int rc = reader_open(vw, DK_VIEW_DIARY, &r);
    if (rc)
        return rc;
    d_ctx d = {fn, udata};
    rc = scan(&r, day, 11, d_one, &d); /* the day and its NUL separator */
    if (as_of)
        *as_of = r.seq;
    reader_close(&r);
    return rc;
}

/* ---- errors ---- */

typedef struct e_ctx {
    dk_views_error_fn fn;
    void *ud;
} e_ctx;

static int e_one(void *ctx, const MDB_val *k, const MDB_val *v)
{
    e_ctx *e = ctx;
    dk_error_item it;
    char f[40];
    memset(&it, 0, sizeof it);
    const uint8_t *p = k->mv_data;
    if (k->mv_size != 9)
        return 0;
    it.open = p[0] == 'o';
    for (int i = 0; i < 8; i++)
        it.report_seq = it.report_seq << 8 | p[1 + i];
    dk__tup_get(v->mv_data, v->mv_size, 0, it.case_id, sizeof it.case_id);
    dk__tup_get(v->mv_data, v->mv_size, 1, f, sizeof f);
    it.reported_at = strtoll(f, NULL, 10);
    dk__tup_get(v->mv_data, v->mv_size, 2, f, sizeof f);
    it.resolved_at = strtoll(f, NULL, 10);
    dk__tup_get(v->mv_data, v->mv_size, 3, f, sizeof f);
    it.resolved_by = strtoull(f, NULL, 10);
    dk__tup_get(v->mv_data, v->mv_size, 4, f, sizeof f);
    it.resolve_us = strtoll(f, NULL, 10);
    return e->fn(e->ud, &it);
}

int dk_views_errors(dk_views *vw, int open_only, dk_views_error_fn fn, void *udata, uint64_t *as_of)
{
    reader r;
    int rc = reader_open(vw, DK_VIEW_ERRORS, &r);
    if (rc)
        return rc;
    e_ctx e = {fn, udata};
    rc = scan(&r, "o", 1, e_one, &e);
    if (rc == 0 && !open_only)
        rc = scan(&r, "r", 1, e_one, &e);
    if (as_of)
        *as_of = r.seq;
    reader_close(&r);
    return rc;
}

/* ---- stats report ---- */

static int in_list(const char *s, const char *const *list, const char *what)
{
    char all[512];
    size_t n = 0;
    for (const char *const *p = list; *p; p++) {
        if (s && strcmp(s, *p) == 0)
            return 0;
        n += (size_t)snprintf(all + n, sizeof all - n, "%s%s", n ? ", " : "", *p);
    }
    return dk_fail(DK_EINVAL, "%s '%s' is not one of: %s", what, s ? s : "", all);
}

static int days_in(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : d[m - 1];
}

typedef struct ymd {
    int y, m, d;
} ymd;

static int ymd_cmp(ymd a, ymd b)
{
    if (a.y != b.y)
        return a.y < b.y ? -1 : 1;
    if (a.m != b.m)
        return a.m < b.m ? -1 : 1;
    return a.d < b.d ? -1 : a.d > b.d;
}

static ymd next_day(ymd a)
{
    if (++a.d > days_in(a.y, a.m)) {
        a.d = 1;
        if (++a.m > 12) {
            a.m = 1;
            a.y++;
        }
    }
    return a;
}

/* The query's fields, and its dates as r[0] (from) and r[1] (to). */
static int report_parse(const dk_report_query *q, ymd r[2])
{
    int rc;
    if ((rc = in_list(q->case_type, dk_case_vocabulary("case_type"), "case type")) != 0 ||
        (rc = in_list(q->outcome, dk_case_vocabulary("outcome"), "outcome")) != 0 ||
        (q->condition &&
         (rc = in_list(q->condition, dk_case_vocabulary("conditions"), "condition")) != 0))
        return rc;
    const char *dates[2] = {q->from, q->to}, *names[2] = {"from", "to"};
    for (int i = 0; i < 2; i++) {
        if (dates[i] == NULL || strlen(dates[i]) != 10 || !dk_date_valid(dates[i], 10))
            return dk_fail(DK_EINVAL, "--%s '%s' is not a date YYYY-MM-DD", names[i],
                           dates[i] ? dates[i] : "");
        sscanf(dates[i], "%4d-%2d-%2d", &r[i].y, &r[i].m, &r[i].d);
    }
    if (ymd_cmp(r[0], r[1]) > 0)
        return dk_fail(DK_EINVAL, "--from %s is after --to %s", q->from, q->to);
    return 0;
}

int dk_report_query_check(const dk_report_query *q)
{
    ymd r[2];
    return report_parse(q, r);
}

int dk_views_report(dk_views *vw, const dk_report_query *q, dk_report_result *out, uint64_t *as_of)
{
    memset(out, 0, sizeof *out);
    ymd r[2];
    int rc = report_parse(q, r);
    if (rc)
        return rc;
    reader rd;
    if ((rc = reader_open(vw, DK_VIEW_STATS, &rd)) != 0)
        return rc;
    const char *cond = q->condition ? q->condition : "*";
    for (ymd d = r[0]; rc == 0 && ymd_cmp(d, r[1]) <= 0;) {
        char period[16];
        ymd end_year = {d.y, 12, 31}, end_month = {d.y, d.m, days_in(d.y, d.m)};
        ymd next;
        if (d.m == 1 && d.d == 1 && ymd_cmp(end_year, r[1]) <= 0) {
            snprintf(period, sizeof period, "%04d", d.y);
            next = (ymd){d.y + 1, 1, 1};
        } else if (d.d == 1 && ymd_cmp(end_month, r[1]) <= 0) {
            snprintf(period, sizeof period, "%04d-%02d", d.y, d.m);
            next = next_day(end_month);
        } else {
            snprintf(period, sizeof period, "%04d-%02d-%02d", d.y, d.m, d.d);
            next = next_day(d);
        }
        char key[KEY_MAX];
        int kl = snprintf(key, sizeof key, "%s%c%s%c%s%c%s", period, 0, q->case_type, 0, q->outcome,
                          0, cond);
        MDB_val k = {(size_t)kl, key}, v;
        int g = mdb_get(rd.txn, rd.dbi, &k, &v);
        out->lookups++;
        if (g == 0 && v.mv_size == 8) {
            uint64_t c = 0;
            for (int i = 0; i < 8; i++)
                c = c << 8 | ((const uint8_t *)v.mv_data)[i];
            out->count += c;
        } else if (g && g != MDB_NOTFOUND) {
            rc = dk__mdb_fail(g, "cannot read the stats view");
        }
        d = next;
    }
    if (as_of)
        *as_of = rd.seq;
    reader_close(&rd);
    return rc;
}
