/* drive_pg.c - bench/compare's PostgreSQL side: an event table with synchronous_commit=on,
 * each event verified, version-checked and hash-chained by its ingester (libpq, pipelined). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common.h"

/* Type OIDs (pg_type.h) of the parameters we send in binary. */
#define OID_BYTEA 17
#define OID_INT8  20
#define OID_INT4  23
#define OID_TEXT  25

static const char schema[] =
    "SET client_min_messages = warning;"
    "DROP TABLE IF EXISTS events, ledger_head, actors;"
    "CREATE TABLE actors (id text PRIMARY KEY, pubkey bytea NOT NULL, roles int NOT NULL);"
    "CREATE TABLE ledger_head (id int PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL,"
    " hash bytea NOT NULL, recorded_at bigint NOT NULL);"
    "INSERT INTO ledger_head VALUES (1, 0, '\\x0000000000000000000000000000000000000000000000000000"
    "000000000000', 0);"
    "CREATE TABLE events (seq bigint PRIMARY KEY, case_id text NOT NULL, version int NOT NULL,"
    " type text NOT NULL, actor text NOT NULL, at bigint NOT NULL, recorded_at bigint NOT NULL,"
    " prev bytea NOT NULL, body bytea NOT NULL, sig bytea NOT NULL, UNIQUE (case_id, version));";

typedef struct client {
    PGconn *conn;
    const cmp_workload *w;
    cmp_actor actors[256]; /* loaded from the actors table */
    size_t nactors;
} client;

static PGconn *connect_db(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        cmp_die("cannot connect to PostgreSQL (%s): %s", conninfo,
                conn ? PQerrorMessage(conn) : "out of memory");
    return conn;
}

static void exec_ok(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        cmp_die("PostgreSQL: %.80s: %s", sql, PQerrorMessage(conn));
    PQclear(r);
}

static void prepare(PGconn *conn, const char *name, const char *sql, int n, const Oid *types)
{
    PGresult *r = PQprepare(conn, name, sql, n, types);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        cmp_die("PostgreSQL: cannot prepare %s: %s", name, PQerrorMessage(conn));
    PQclear(r);
}

static char *show(PGconn *conn, const char *setting, char *out, size_t cap)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SHOW %s", setting);
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        cmp_die("PostgreSQL: %s: %s", sql, PQerrorMessage(conn));
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

/* A writer connection: actors loaded, statements prepared, then pipeline mode. */
static void client_open(client *c, const char *conninfo, const cmp_workload *w)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    c->conn = connect_db(conninfo);
    PGresult *r =
        PQexecParams(c->conn, "SELECT id, pubkey FROM actors", 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        cmp_die("PostgreSQL: loading the actors: %s", PQerrorMessage(c->conn));
    for (int i = 0; i < PQntuples(r) && c->nactors < 256; i++) {
        cmp_actor *a = &c->actors[c->nactors++];
        snprintf(a->id, sizeof a->id, "%.*s", PQgetlength(r, i, 0), PQgetvalue(r, i, 0));
        if (PQgetlength(r, i, 1) != DK_PUBKEY_BYTES)
            cmp_die("actor %s has a bad key", a->id);
        memcpy(a->pk, PQgetvalue(r, i, 1), DK_PUBKEY_BYTES);
    }
    PQclear(r);
    static const Oid ins_types[] = {OID_INT8, OID_TEXT, OID_INT4,  OID_TEXT,  OID_TEXT,
                                    OID_INT8, OID_INT8, OID_BYTEA, OID_BYTEA, OID_BYTEA};
    static const Oid head_types[] = {OID_INT8, OID_BYTEA, OID_INT8};
    prepare(c->conn, "head_lock",
            "SELECT seq, hash, recorded_at FROM ledger_head WHERE id = 1 FOR UPDATE", 0, NULL);
    prepare(c->conn, "ins",
            "INSERT INTO events (seq, case_id, version, type, actor, at, recorded_at, prev, body, "
            "sig) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            10, ins_types);
    prepare(c->conn, "head_set",
            "UPDATE ledger_head SET seq = $1, hash = $2, recorded_at = $3 WHERE id = 1", 3,
            head_types);
    if (PQenterPipelineMode(c->conn) != 1)
        cmp_die("PostgreSQL: cannot enter pipeline mode: %s", PQerrorMessage(c->conn));
}

static void client_close(client *c)
{
    if (PQexitPipelineMode(c->conn) != 1)
        cmp_die("PostgreSQL: cannot leave pipeline mode: %s", PQerrorMessage(c->conn));
    PQfinish(c->conn);
}

/* Read the results of `nq` queries and the sync that ends the pipeline.
 * The result of query `keep` (or -1) is returned in *kept. 0, or -1 with
 * the first error (and its SQLSTATE) in err. */
static int drain(client *c, int nq, int keep, PGresult **kept, char *err, size_t errcap)
{
    int q = 0, failed = 0, nulls = 0;
    if (kept)
        *kept = NULL;
    for (;;) {
        PGresult *r = PQgetResult(c->conn);
        if (r == NULL) {
            if (PQstatus(c->conn) != CONNECTION_OK || ++nulls > 4 * nq + 16) {
                snprintf(err, errcap, "pipeline lost: %s", PQerrorMessage(c->conn));
                return -1;
            }
            continue;
        }
        nulls = 0;
        ExecStatusType s = PQresultStatus(r);
        if (s == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (s == PGRES_FATAL_ERROR && !failed) {
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(err, errcap, "[SQLSTATE %s] %s", state ? state : "?", PQresultErrorMessage(r));
            failed = 1;
        } else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_FATAL_ERROR &&
                   s != PGRES_PIPELINE_ABORTED && !failed) {
            snprintf(err, errcap, "unexpected result %s", PQresStatus(s));
            failed = 1;
        }
        if (q == keep && kept && !failed)
            *kept = r;
        else
            PQclear(r);
        q++;
    }
    if (failed && kept && *kept) {
        PQclear(*kept);
        *kept = NULL;
    }
    return failed ? -1 : 0;
}

static int send_ok(client *c, int ok, char *err, size_t errcap)
{
    if (ok == 1)
        return 0;
    snprintf(err, errcap, "cannot send: %s", PQerrorMessage(c->conn));
    return -1;
}

/* After a failed pipeline the session is in an aborted transaction. */
static void rollback(client *c)
{
    char err[256];
    if (PQsendQueryParams(c->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) != 1 ||
        PQpipelineSync(c->conn) != 1 || drain(c, 1, -1, NULL, err, sizeof err) != 0)
        cmp_die("PostgreSQL: ROLLBACK failed: %s", PQerrorMessage(c->conn));
}

/* Parameters of one INSERT, kept alive until the pipeline is sent. */
typedef struct row {
    uint8_t seq[8], version[4], at[8], rec_at[8], prev[32];
    const char *values[10];
    int lengths[10], formats[10];
} row;

static void row_fill(row *rw, uint64_t seq, const dk_event *ev, int64_t rec_at,
                     const uint8_t prev[32], const cmp_event *e)
{
    uint32_t v = (uint32_t)ev->expect + 1;
    cmp_put_be64(rw->seq, seq);
    for (int i = 0; i < 4; i++)
        rw->version[i] = (uint8_t)(v >> (24 - 8 * i));
    cmp_put_be64(rw->at, (uint64_t)ev->at);
    cmp_put_be64(rw->rec_at, (uint64_t)rec_at);
    memcpy(rw->prev, prev, 32);
    const char *vals[10] = {(const char *)rw->seq,
                            ev->case_id,
                            (const char *)rw->version,
                            ev->type,
                            ev->actor,
                            (const char *)rw->at,
                            (const char *)rw->rec_at,
                            (const char *)rw->prev,
                            (const char *)e->body,
                            (const char *)e->sig};
    int lens[10] = {8,
                    (int)strlen(ev->case_id),
                    4,
                    (int)strlen(ev->type),
                    (int)strlen(ev->actor),
                    8,
                    8,
                    32,
                    (int)e->body_len,
                    DK_SIG_BYTES};
    for (int i = 0; i < 10; i++) {
        rw->values[i] = vals[i];
        rw->lengths[i] = lens[i];
        rw->formats[i] = 1;
    }
}

/* Insert n verified events in one transaction. Round trip 1: BEGIN and lock
 * the ledger head. Round trip 2: the chained INSERTs, the new head, COMMIT
 * (durable: synchronous_commit=on). The head's row lock serialises writers. */
static int write_events(client *c, const cmp_event *const *e, const dk_event *ev, size_t n,
                        row *rows, char *err, size_t errcap)
{
    PGresult *h;
    if (send_ok(c, PQsendQueryParams(c->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0), err,
                errcap) ||
        send_ok(c, PQsendQueryPrepared(c->conn, "head_lock", 0, NULL, NULL, NULL, 1), err,
                errcap) ||
        send_ok(c, PQpipelineSync(c->conn), err, errcap))
        return -1;
    if (drain(c, 2, 1, &h, err, errcap) != 0) {
        rollback(c);
        return -1;
    }
    if (PQntuples(h) != 1 || PQgetlength(h, 0, 0) != 8 || PQgetlength(h, 0, 1) != 32 ||
        PQgetlength(h, 0, 2) != 8) {
        PQclear(h);
        rollback(c);
        snprintf(err, errcap, "the ledger head row is malformed");
        return -1;
    }
    uint64_t seq = cmp_get_be64((const uint8_t *)PQgetvalue(h, 0, 0));
    uint8_t hash[32], prev[32];
    memcpy(hash, PQgetvalue(h, 0, 1), 32);
    int64_t last = (int64_t)cmp_get_be64((const uint8_t *)PQgetvalue(h, 0, 2));
    PQclear(h);
    int64_t now = cmp_wall_us();
    for (size_t i = 0; i < n; i++) {
        const char *signer = c->w->actors[e[i]->actor].id;
        int64_t rec_at = now > last ? now : last + 1;
        memcpy(prev, hash, 32);
        seq++;
        cmp_chain_hash(seq, rec_at, prev, signer, e[i]->sig, e[i]->body, e[i]->body_len, hash);
        row_fill(&rows[i], seq, &ev[i], rec_at, prev, e[i]);
        if (send_ok(c,
                    PQsendQueryPrepared(c->conn, "ins", 10, rows[i].values, rows[i].lengths,
                                        rows[i].formats, 0),
                    err, errcap))
            return -1;
        last = rec_at;
    }
    uint8_t hseq[8], hat[8];
    cmp_put_be64(hseq, seq);
    cmp_put_be64(hat, (uint64_t)last);
    const char *hv[3] = {(const char *)hseq, (const char *)hash, (const char *)hat};
    int hl[3] = {8, 32, 8}, hf[3] = {1, 1, 1};
    if (send_ok(c, PQsendQueryPrepared(c->conn, "head_set", 3, hv, hl, hf, 0), err, errcap) ||
        send_ok(c, PQsendQueryParams(c->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0), err,
                errcap) ||
        send_ok(c, PQpipelineSync(c->conn), err, errcap))
        return -1;
    if (drain(c, (int)n + 2, -1, NULL, err, errcap) != 0) {
        rollback(c);
        return -1;
    }
    return 0;
}

/* One event: verify in the client, then one durable transaction. */
static int append_one(void *p, const cmp_event *e, char *err, size_t errcap)
{
    client *c = p;
    dk_event ev;
    row rw;
    if (cmp_verify_event(c->actors, c->nactors, c->w, e, &ev, err, errcap) != 0)
        return -1;
    return write_events(c, &e, &ev, 1, &rw, err, errcap);
}

static void ingest(const char *tag, const cmp_workload *w, const char *conninfo, size_t from,
                   size_t to, int nclients)
{
    client *cs = calloc((size_t)nclients, sizeof *cs);
    void **cl = calloc((size_t)nclients, sizeof *cl);
    if (cs == NULL || cl == NULL)
        cmp_die("out of memory");
    for (int k = 0; k < nclients; k++) {
        client_open(&cs[k], conninfo, w);
        cl[k] = &cs[k];
    }
    cmp_ingest_stats st;
    char err[600];
    if (cmp_run_clients(w, from, to, nclients, cl, append_one, &st, err, sizeof err) != 0)
        cmp_die("ingest %s: %s", tag, err);
    if (st.n)
        cmp_print_ingest(tag, &st);
    for (int k = 0; k < nclients; k++)
        client_close(&cs[k]);
    free(cs);
    free(cl);
}

/* The rest in transactions of `batch` events, each batch verified on all
 * cores first, sent as one pipeline: every check still applies. */
static void bulk(const cmp_workload *w, const char *conninfo, size_t from, size_t batch)
{
    client c;
    client_open(&c, conninfo, w);
    dk_event *ev = malloc(batch * sizeof *ev);
    const cmp_event **e = malloc(batch * sizeof *e);
    row *rows = malloc(batch * sizeof *rows);
    if (ev == NULL || e == NULL || rows == NULL)
        cmp_die("out of memory");
    char err[600];
    double t0 = cmp_now(), c0 = cmp_cpu_s();
    for (size_t a = from; a < w->nevents; a += batch) {
        size_t b = a + batch < w->nevents ? a + batch : w->nevents;
        if (cmp_verify_range(c.actors, c.nactors, w, a, b, ev, err, sizeof err) != 0)
            cmp_die("bulk: %s", err);
        for (size_t i = a; i < b; i++)
            e[i - a] = &w->ev[i];
        if (write_events(&c, e, ev, b - a, rows, err, sizeof err) != 0)
            cmp_die("bulk at event %zu: %s", a, err);
    }
    double el = cmp_now() - t0;
    if (w->nevents > from) {
        printf("# bulk: %zu events in %.2f s, %zu per transaction, the client used %.2f cores\n",
               (size_t)(w->nevents - from), el, batch, (cmp_cpu_s() - c0) / el);
        cmp_line("ingest_bulk_eps", (double)(w->nevents - from) / el, "events/s");
    }
    free(ev);
    free(e);
    free(rows);
    client_close(&c);
}

/* The schema, the actors, then the ingest: one client, N clients, the rest in bulk. */
static void load(PGconn *db, const cmp_opts *o, const cmp_workload *w)
{
    exec_ok(db, schema);
    static const Oid actor_types[] = {OID_TEXT, OID_BYTEA, OID_TEXT};
    for (uint32_t a = 0; a < w->nactors; a++) {
        char roles[16];
        snprintf(roles, sizeof roles, "%u", w->actors[a].roles);
        const char *vals[3] = {w->actors[a].id, (const char *)w->actors[a].pk, roles};
        int lens[3] = {(int)strlen(w->actors[a].id), DK_PUBKEY_BYTES, (int)strlen(roles)};
        int fmts[3] = {0, 1, 0};
        PGresult *r = PQexecParams(db, "INSERT INTO actors VALUES ($1, $2, $3::int)", 3,
                                   actor_types, vals, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            cmp_die("PostgreSQL: inserting an actor: %s", PQerrorMessage(db));
        PQclear(r);
    }

    size_t n1 = o->n_c1 < w->nevents ? o->n_c1 : w->nevents;
    size_t n2 = n1 + o->n_cn < w->nevents ? n1 + o->n_cn : w->nevents;
    char tag[32];
    ingest("c1", w, o->conninfo, 0, n1, 1);
    snprintf(tag, sizeof tag, "c%d", o->clients);
    ingest(tag, w, o->conninfo, n1, n2, o->clients);
    bulk(w, o->conninfo, n2, o->batch);
    exec_ok(db, "VACUUM ANALYZE events"); /* what autovacuum would do after a load */
}

static PGresult *query(PGconn *conn, const char *name, int n, const char *const *vals,
                       const int *lens, const int *fmts)
{
    PGresult *r = PQexecPrepared(conn, name, n, vals, lens, fmts, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        cmp_die("PostgreSQL: %s: %s", name, PQerrorMessage(conn));
    return r;
}

/* History: every event of one case, oldest first. */
static void history(const cmp_workload *w, PGconn *db, size_t nq)
{
    uint32_t *qc = malloc(nq * sizeof *qc);
    double *lat = malloc(nq * sizeof *lat);
    if (!qc || !lat)
        cmp_die("out of memory");
    static const Oid types[] = {OID_TEXT};
    prepare(db, "hist",
            "SELECT seq, recorded_at, actor, prev, body, sig FROM events WHERE case_id = $1 "
            "ORDER BY version",
            1, types);
    cmp_plan_history(w, nq, qc);
    uint64_t records = 0, bytes = 0;
    double t0 = cmp_now();
    for (size_t q = 0; q < nq; q++) {
        char case_id[32];
        cmp_case_id(qc[q], case_id);
        const char *vals[1] = {case_id};
        int lens[1] = {(int)strlen(case_id)}, fmts[1] = {1};
        double s = cmp_now();
        PGresult *r = query(db, "hist", 1, vals, lens, fmts);
        size_t n = (size_t)PQntuples(r);
        for (size_t i = 0; i < n; i++)
            bytes += (uint64_t)PQgetlength(r, (int)i, 4);
        PQclear(r);
        lat[q] = (cmp_now() - s) * 1e6;
        if (n != w->case_count[qc[q]])
            cmp_die("history of %s: %zu records, expected %u", case_id, n, w->case_count[qc[q]]);
        records += n;
    }
    cmp_report_reads("history", nq, cmp_now() - t0, lat, records * 1000003 + bytes);
    free(qc);
    free(lat);
}

/* As-of: the events recorded by the time, folded client-side with dk_case_fold. */
static void asof(const cmp_workload *w, PGconn *db, size_t nq)
{
    uint32_t *qc = malloc(nq * sizeof *qc), *qk = malloc(nq * sizeof *qk);
    int64_t *qt = malloc(nq * sizeof *qt);
    double *lat = malloc(nq * sizeof *lat);
    size_t cap = 64;
    dk_record *recs = malloc(cap * sizeof *recs);
    if (!qc || !qk || !qt || !lat || !recs)
        cmp_die("out of memory");
    static const Oid t_at[] = {OID_TEXT, OID_INT4}, t_asof[] = {OID_TEXT, OID_INT8};
    prepare(db, "at", "SELECT recorded_at FROM events WHERE case_id = $1 AND version = $2", 2,
            t_at);
    prepare(db, "asof",
            "SELECT seq, recorded_at, body FROM events WHERE case_id = $1 AND recorded_at <= $2 "
            "ORDER BY version",
            2, t_asof);
    cmp_plan_asof(w, nq, qc, qk);
    for (size_t q = 0; q < nq; q++) { /* untimed: each query's time */
        char case_id[32];
        uint8_t v[4];
        uint32_t k = qk[q] + 1;
        cmp_case_id(qc[q], case_id);
        for (int i = 0; i < 4; i++)
            v[i] = (uint8_t)(k >> (24 - 8 * i));
        const char *vals[2] = {case_id, (const char *)v};
        int lens[2] = {(int)strlen(case_id), 4}, fmts[2] = {1, 1};
        PGresult *r = query(db, "at", 2, vals, lens, fmts);
        if (PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 8)
            cmp_die("as-of setup for %s: no version %u", case_id, k);
        qt[q] = (int64_t)cmp_get_be64((const uint8_t *)PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    uint64_t digest = 0;
    double t0 = cmp_now();
    for (size_t q = 0; q < nq; q++) {
        char case_id[32];
        uint8_t t[8];
        cmp_case_id(qc[q], case_id);
        cmp_put_be64(t, (uint64_t)qt[q]);
        const char *vals[2] = {case_id, (const char *)t};
        int lens[2] = {(int)strlen(case_id), 8}, fmts[2] = {1, 1};
        double s = cmp_now();
        PGresult *r = query(db, "asof", 2, vals, lens, fmts);
        size_t n = (size_t)PQntuples(r);
        if (n > cap) {
            cap = 2 * n;
            if ((recs = realloc(recs, cap * sizeof *recs)) == NULL)
                cmp_die("out of memory");
        }
        for (size_t i = 0; i < n; i++) { /* the rows live until PQclear */
            memset(&recs[i], 0, sizeof recs[i]);
            recs[i].seq = cmp_get_be64((const uint8_t *)PQgetvalue(r, (int)i, 0));
            recs[i].recorded_at = (int64_t)cmp_get_be64((const uint8_t *)PQgetvalue(r, (int)i, 1));
            recs[i].body = (const uint8_t *)PQgetvalue(r, (int)i, 2);
            recs[i].body_len = (size_t)PQgetlength(r, (int)i, 2);
        }
        dk_case_state cs;
        uint64_t bad = 0;
        if (dk_case_fold(recs, n, &cs, NULL, NULL, &bad) != 0)
            cmp_die("as-of %s: seq %llu: %s", case_id, (unsigned long long)bad, dk_errmsg());
        PQclear(r);
        lat[q] = (cmp_now() - s) * 1e6;
        if (cs.version != qk[q] + 1)
            cmp_die("as-of %s: version %llu, expected %u", case_id, (unsigned long long)cs.version,
                    qk[q] + 1);
        digest += cmp_state_digest(case_id, &cs);
    }
    cmp_report_reads("asof", nq, cmp_now() - t0, lat, digest);
    free(qc);
    free(qk);
    free(qt);
    free(lat);
    free(recs);
}

/* Rebuild: every event in seq order through a cursor, folded into a status table. */
static void rebuild(const cmp_workload *w, PGconn *db)
{
    cmp_table *tab = cmp_table_new(w->ncases);
    if (tab == NULL)
        cmp_die("out of memory");
    char err[600];
    double t0 = cmp_now();
    exec_ok(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    exec_ok(db, "DECLARE all_events NO SCROLL CURSOR FOR SELECT seq, recorded_at, body FROM "
                "events ORDER BY seq");
    for (;;) {
        PGresult *r = PQexecParams(db, "FETCH 10000 FROM all_events", 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            cmp_die("PostgreSQL: FETCH: %s", PQerrorMessage(db));
        int n = PQntuples(r);
        for (int i = 0; i < n; i++)
            if (cmp_table_apply(tab, cmp_get_be64((const uint8_t *)PQgetvalue(r, i, 0)),
                                (int64_t)cmp_get_be64((const uint8_t *)PQgetvalue(r, i, 1)),
                                (const uint8_t *)PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2),
                                err, sizeof err) != 0)
                cmp_die("rebuild: %s", err);
        PQclear(r);
        if (n == 0)
            break;
    }
    exec_ok(db, "COMMIT");
    cmp_report_rebuild(w, tab, cmp_now() - t0);
    cmp_table_free(tab);
}

int main(int argc, char **argv)
{
    cmp_opts o;
    cmp_workload w;
    cmp_opts_parse(argc, argv, &o);
    if (o.conninfo == NULL)
        cmp_die("--conninfo STR is required");
    cmp_workload_open(o.workload, &w);
    if (dk_init() != 0)
        cmp_die("cannot initialise libdocket");

    PGconn *db = connect_db(o.conninfo);
    char sc[64], fs[64], fpw[64], ver[128];
    printf("# postgresql %s: %llu events, %llu cases; synchronous_commit=%s fsync=%s "
           "full_page_writes=%s\n",
           show(db, "server_version", ver, sizeof ver), (unsigned long long)w.nevents,
           (unsigned long long)w.ncases, show(db, "synchronous_commit", sc, sizeof sc),
           show(db, "fsync", fs, sizeof fs), show(db, "full_page_writes", fpw, sizeof fpw));
    if (strcmp(sc, "on") != 0 || strcmp(fs, "on") != 0 || strcmp(fpw, "on") != 0)
        cmp_die("PostgreSQL must run with synchronous_commit, fsync and full_page_writes on");
    if (!o.reads_only) /* else profiling the reads: the tables a previous run left */
        load(db, &o, &w);

    if (cmp_phase(&o, "history"))
        history(&w, db, o.queries);
    if (cmp_phase(&o, "asof"))
        asof(&w, db, o.queries);
    if (cmp_phase(&o, "rebuild"))
        rebuild(&w, db);

    /* The guarantees are live: a forged signature and a stale version are refused. */
    client c;
    dk_event ev;
    char err[600];
    row rw;
    cmp_event forged = w.ev[0];
    uint8_t sig[DK_SIG_BYTES];
    memcpy(sig, w.ev[0].sig, DK_SIG_BYTES);
    sig[7] ^= 1;
    forged.sig = sig;
    client_open(&c, o.conninfo, &w);
    cmp_line("guarantee_bad_signature_refused",
             cmp_verify_event(c.actors, c.nactors, &w, &forged, &ev, err, sizeof err) != 0, "bool");
    const cmp_event *e0 = &w.ev[0];
    if (cmp_verify_event(c.actors, c.nactors, &w, e0, &ev, err, sizeof err) != 0)
        cmp_die("event 0 does not verify: %s", err);
    int rc = write_events(&c, &e0, &ev, 1, &rw, err, sizeof err); /* version 1 again */
    cmp_line("guarantee_stale_version_refused", rc != 0 && strstr(err, "23505") != NULL, "bool");
    client_close(&c);

    /* Disk: the tables with their indexes and TOAST, after a checkpoint. */
    exec_ok(db, "CHECKPOINT");
    PGresult *r =
        PQexec(db, "SELECT pg_total_relation_size('events') + "
                   "pg_total_relation_size('ledger_head') + "
                   "pg_total_relation_size('actors'), pg_database_size(current_database())");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        cmp_die("PostgreSQL: sizes: %s", PQerrorMessage(db));
    double bytes = strtod(PQgetvalue(r, 0, 0), NULL);
    printf("# disk: %s bytes in the tables and their indexes (database: %s bytes; WAL not "
           "counted)\n",
           PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
    cmp_line("disk_bytes_per_event", bytes / (double)w.nevents, "bytes");
    PQfinish(db);
    cmp_workload_close(&w);
    return 0;
}
