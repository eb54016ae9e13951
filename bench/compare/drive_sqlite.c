/* drive_sqlite.c - bench/compare's SQLite side: an event table in WAL mode with
 * synchronous=FULL, each event verified, version-checked and hash-chained by the ingester. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common.h"

static const char schema[] =
    "CREATE TABLE actors (id TEXT PRIMARY KEY, pubkey BLOB NOT NULL, roles INTEGER NOT NULL);"
    "CREATE TABLE ledger_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL, recorded_at INTEGER NOT NULL);"
    "INSERT INTO ledger_head VALUES (1, 0, zeroblob(32), 0);"
    "CREATE TABLE events (seq INTEGER PRIMARY KEY, case_id TEXT NOT NULL,"
    " version INTEGER NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, at INTEGER NOT NULL,"
    " recorded_at INTEGER NOT NULL, prev BLOB NOT NULL, body BLOB NOT NULL, sig BLOB NOT NULL,"
    " UNIQUE (case_id, version));";

/* One client: its own connection and statements. SQLite has one writer at a
 * time; the clients of this process take `write_mu` around their write
 * transaction instead of spinning in SQLite's busy handler. */
typedef struct client {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *rollback, *head, *ins, *head_set;
    const cmp_workload *w;
    cmp_actor actors[256]; /* loaded from the actors table */
    size_t nactors;
    pthread_mutex_t *write_mu;
} client;

static void check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        cmp_die("sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        cmp_die("sqlite: %s: %s", sql, msg ? msg : sqlite3_errmsg(db));
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        cmp_die("sqlite: cannot prepare %s: %s", sql, sqlite3_errmsg(db));
    return st;
}

/* A connection with the durability settings every client uses. */
static sqlite3 *db_open(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        cmp_die("sqlite: cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db, "PRAGMA synchronous=FULL");
    exec(db, "PRAGMA cache_size=-262144"); /* 256 MiB of page cache per connection */
    exec(db, "PRAGMA mmap_size=4294967296");
    sqlite3_busy_timeout(db, 60000);
    return db;
}

static void client_open(client *c, const char *path, const cmp_workload *w, pthread_mutex_t *mu)
{
    memset(c, 0, sizeof *c);
    c->w = w;
    c->write_mu = mu;
    c->db = db_open(path);
    c->begin = prep(c->db, "BEGIN IMMEDIATE");
    c->commit = prep(c->db, "COMMIT");
    c->rollback = prep(c->db, "ROLLBACK");
    c->head = prep(c->db, "SELECT seq, hash, recorded_at FROM ledger_head WHERE id = 1");
    c->ins = prep(c->db, "INSERT INTO events (seq, case_id, version, type, actor, at, "
                         "recorded_at, prev, body, sig) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                         "?9, ?10)");
    c->head_set =
        prep(c->db, "UPDATE ledger_head SET seq = ?1, hash = ?2, recorded_at = ?3 WHERE id = 1");
    sqlite3_stmt *st = prep(c->db, "SELECT id, pubkey FROM actors");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && c->nactors < 256) {
        cmp_actor *a = &c->actors[c->nactors++];
        snprintf(a->id, sizeof a->id, "%s", (const char *)sqlite3_column_text(st, 0));
        if (sqlite3_column_bytes(st, 1) != DK_PUBKEY_BYTES)
            cmp_die("actor %s has a bad key", a->id);
        memcpy(a->pk, sqlite3_column_blob(st, 1), DK_PUBKEY_BYTES);
    }
    check(c->db, rc, "loading the actors");
    sqlite3_finalize(st);
}

static void client_close(client *c)
{
    sqlite3_stmt *all[] = {c->begin, c->commit, c->rollback, c->head, c->ins, c->head_set};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    if (sqlite3_close(c->db) != SQLITE_OK)
        cmp_die("sqlite: cannot close: %s", sqlite3_errmsg(c->db));
}

static int step_done(client *c, sqlite3_stmt *st, const char *what, char *err, size_t errcap)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errcap, "%s: %s (%s)", what, sqlite3_errmsg(c->db),
                 rc == SQLITE_CONSTRAINT ? "constraint" : sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

/* Insert n verified events (ev[i] decoded from e[i]) in one write transaction:
 * read the head, chain each event to it, write the new head, commit. */
static int write_events(client *c, const cmp_event *const *e, const dk_event *ev, size_t n,
                        char *err, size_t errcap)
{
    if (step_done(c, c->begin, "BEGIN IMMEDIATE", err, errcap))
        return -1;
    int rc = sqlite3_step(c->head);
    if (rc != SQLITE_ROW || sqlite3_column_bytes(c->head, 1) != 32) {
        snprintf(err, errcap, "reading the head: %s", sqlite3_errmsg(c->db));
        sqlite3_reset(c->head);
        step_done(c, c->rollback, "ROLLBACK", err, errcap);
        return -1;
    }
    uint64_t seq = (uint64_t)sqlite3_column_int64(c->head, 0);
    uint8_t hash[32], prev[32];
    memcpy(hash, sqlite3_column_blob(c->head, 1), 32);
    int64_t last = sqlite3_column_int64(c->head, 2);
    sqlite3_reset(c->head);
    int64_t now = cmp_wall_us();
    for (size_t i = 0; i < n; i++) {
        const char *signer = c->w->actors[e[i]->actor].id;
        int64_t rec_at = now > last ? now : last + 1;
        memcpy(prev, hash, 32);
        seq++;
        cmp_chain_hash(seq, rec_at, prev, signer, e[i]->sig, e[i]->body, e[i]->body_len, hash);
        sqlite3_stmt *s = c->ins;
        sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
        sqlite3_bind_text(s, 2, ev[i].case_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)ev[i].expect + 1);
        sqlite3_bind_text(s, 4, ev[i].type, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, ev[i].actor, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, ev[i].at);
        sqlite3_bind_int64(s, 7, rec_at);
        sqlite3_bind_blob(s, 8, prev, 32, SQLITE_STATIC);
        sqlite3_bind_blob(s, 9, e[i]->body, (int)e[i]->body_len, SQLITE_STATIC);
        sqlite3_bind_blob(s, 10, e[i]->sig, DK_SIG_BYTES, SQLITE_STATIC);
        if (step_done(c, s, "INSERT", err, errcap)) {
            char why[600];
            snprintf(why, sizeof why, "%s", err);
            step_done(c, c->rollback, "ROLLBACK", err, errcap);
            snprintf(err, errcap, "%s", why);
            return -1;
        }
        last = rec_at;
    }
    sqlite3_bind_int64(c->head_set, 1, (sqlite3_int64)seq);
    sqlite3_bind_blob(c->head_set, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(c->head_set, 3, last);
    if (step_done(c, c->head_set, "UPDATE head", err, errcap)) {
        step_done(c, c->rollback, "ROLLBACK", err, errcap);
        return -1;
    }
    return step_done(c, c->commit, "COMMIT", err, errcap);
}

/* One event: verify in the client's thread, then one durable write transaction. */
static int append_one(void *p, const cmp_event *e, char *err, size_t errcap)
{
    client *c = p;
    dk_event ev;
    if (cmp_verify_event(c->actors, c->nactors, c->w, e, &ev, err, errcap) != 0)
        return -1;
    pthread_mutex_lock(c->write_mu);
    int rc = write_events(c, &e, &ev, 1, err, errcap);
    pthread_mutex_unlock(c->write_mu);
    return rc;
}

static void ingest(const char *tag, const cmp_workload *w, const char *path, pthread_mutex_t *mu,
                   size_t from, size_t to, int nclients)
{
    client *cs = calloc((size_t)nclients, sizeof *cs);
    void **cl = calloc((size_t)nclients, sizeof *cl);
    if (cs == NULL || cl == NULL)
        cmp_die("out of memory");
    for (int k = 0; k < nclients; k++) {
        client_open(&cs[k], path, w, mu);
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

/* The rest of the workload in transactions of `batch` events, each batch
 * verified on all cores first: every check still applies. */
static void bulk(const cmp_workload *w, const char *path, size_t from, size_t batch)
{
    client c;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    client_open(&c, path, w, &mu);
    dk_event *ev = malloc(batch * sizeof *ev);
    const cmp_event **e = malloc(batch * sizeof *e);
    if (ev == NULL || e == NULL)
        cmp_die("out of memory");
    char err[600];
    double t0 = cmp_now(), c0 = cmp_cpu_s();
    for (size_t a = from; a < w->nevents; a += batch) {
        size_t b = a + batch < w->nevents ? a + batch : w->nevents;
        if (cmp_verify_range(c.actors, c.nactors, w, a, b, ev, err, sizeof err) != 0)
            cmp_die("bulk: %s", err);
        for (size_t i = a; i < b; i++)
            e[i - a] = &w->ev[i];
        if (write_events(&c, e, ev, b - a, err, sizeof err) != 0)
            cmp_die("bulk at event %zu: %s", a, err);
    }
    double el = cmp_now() - t0;
    if (w->nevents > from) {
        printf("# bulk: %zu events in %.2f s, %zu per transaction, this process used %.2f cores\n",
               (size_t)(w->nevents - from), el, batch, (cmp_cpu_s() - c0) / el);
        cmp_line("ingest_bulk_eps", (double)(w->nevents - from) / el, "events/s");
    }
    free(ev);
    free(e);
    client_close(&c);
}

/* The schema, the actors, then the ingest: one client, N clients, the rest in bulk. */
static void load(sqlite3 *db, const cmp_opts *o, const cmp_workload *w, const char *path,
                 pthread_mutex_t *mu)
{
    exec(db, schema);
    sqlite3_stmt *st = prep(db, "INSERT INTO actors VALUES (?1, ?2, ?3)");
    for (uint32_t a = 0; a < w->nactors; a++) {
        sqlite3_bind_text(st, 1, w->actors[a].id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, w->actors[a].pk, DK_PUBKEY_BYTES, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, (int)w->actors[a].roles);
        check(db, sqlite3_step(st), "inserting an actor");
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = prep(db, "PRAGMA synchronous");
    check(db, sqlite3_step(st), "PRAGMA synchronous");
    int sync = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = prep(db, "PRAGMA journal_mode");
    check(db, sqlite3_step(st), "PRAGMA journal_mode");
    printf("# journal_mode=%s synchronous=%d (2 = FULL)\n", sqlite3_column_text(st, 0), sync);
    if (sync != 2 || strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
        cmp_die("not in WAL mode with synchronous=FULL");
    sqlite3_finalize(st);

    size_t n1 = o->n_c1 < w->nevents ? o->n_c1 : w->nevents;
    size_t n2 = n1 + o->n_cn < w->nevents ? n1 + o->n_cn : w->nevents;
    char tag[32];
    ingest("c1", w, path, mu, 0, n1, 1);
    snprintf(tag, sizeof tag, "c%d", o->clients);
    ingest(tag, w, path, mu, n1, n2, o->clients);
    bulk(w, path, n2, o->batch);
}

/* History: every event of one case, oldest first. */
static void history(const cmp_workload *w, sqlite3 *db, size_t nq)
{
    uint32_t *qc = malloc(nq * sizeof *qc);
    double *lat = malloc(nq * sizeof *lat);
    if (!qc || !lat)
        cmp_die("out of memory");
    sqlite3_stmt *st = prep(db, "SELECT seq, recorded_at, actor, prev, body, sig FROM events "
                                "WHERE case_id = ?1 ORDER BY version");
    cmp_plan_history(w, nq, qc);
    uint64_t records = 0, bytes = 0;
    double t0 = cmp_now();
    for (size_t q = 0; q < nq; q++) {
        char case_id[32];
        cmp_case_id(qc[q], case_id);
        double s = cmp_now();
        size_t n = 0;
        int rc;
        sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            n++;
            bytes += (uint64_t)sqlite3_column_bytes(st, 4);
        }
        sqlite3_reset(st);
        lat[q] = (cmp_now() - s) * 1e6;
        check(db, rc, "history");
        if (n != w->case_count[qc[q]])
            cmp_die("history of %s: %zu records, expected %u", case_id, n, w->case_count[qc[q]]);
        records += n;
    }
    cmp_report_reads("history", nq, cmp_now() - t0, lat, records * 1000003 + bytes);
    sqlite3_finalize(st);
    free(qc);
    free(lat);
}

/* Growable copies of the rows of one as-of query, as dk_record for dk_case_fold. */
typedef struct rows {
    dk_record *recs;
    size_t *offs;
    size_t cap, n;
    uint8_t *bodies;
    size_t bcap, used;
} rows;

static void rows_add(rows *r, uint64_t seq, int64_t recorded_at, const void *body, size_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->recs = realloc(r->recs, r->cap * sizeof *r->recs);
        r->offs = realloc(r->offs, r->cap * sizeof *r->offs);
        if (!r->recs || !r->offs)
            cmp_die("out of memory");
    }
    while (r->used + len > r->bcap) {
        r->bcap = r->bcap ? 2 * r->bcap : 1 << 16;
        if ((r->bodies = realloc(r->bodies, r->bcap)) == NULL)
            cmp_die("out of memory");
    }
    memcpy(r->bodies + r->used, body, len);
    memset(&r->recs[r->n], 0, sizeof r->recs[r->n]);
    r->recs[r->n].seq = seq;
    r->recs[r->n].recorded_at = recorded_at;
    r->recs[r->n].body_len = len;
    r->offs[r->n++] = r->used;
    r->used += len;
}

/* As-of: the events recorded by the time, folded client-side with dk_case_fold. */
static void asof(const cmp_workload *w, sqlite3 *db, size_t nq)
{
    uint32_t *qc = malloc(nq * sizeof *qc), *qk = malloc(nq * sizeof *qk);
    int64_t *qt = malloc(nq * sizeof *qt);
    double *lat = malloc(nq * sizeof *lat);
    if (!qc || !qk || !qt || !lat)
        cmp_die("out of memory");
    cmp_plan_asof(w, nq, qc, qk);
    sqlite3_stmt *at =
        prep(db, "SELECT recorded_at FROM events WHERE case_id = ?1 AND version = ?2");
    for (size_t q = 0; q < nq; q++) { /* untimed: each query's time */
        char case_id[32];
        cmp_case_id(qc[q], case_id);
        sqlite3_bind_text(at, 1, case_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(at, 2, (sqlite3_int64)qk[q] + 1);
        if (sqlite3_step(at) != SQLITE_ROW)
            cmp_die("as-of setup for %s: %s", case_id, sqlite3_errmsg(db));
        qt[q] = sqlite3_column_int64(at, 0);
        sqlite3_reset(at);
    }
    sqlite3_finalize(at);
    sqlite3_stmt *st = prep(db, "SELECT seq, recorded_at, body FROM events WHERE case_id = ?1 "
                                "AND recorded_at <= ?2 ORDER BY version");
    rows r = {0};
    uint64_t digest = 0;
    double t0 = cmp_now();
    for (size_t q = 0; q < nq; q++) {
        char case_id[32];
        cmp_case_id(qc[q], case_id);
        double s = cmp_now();
        int rc;
        r.n = r.used = 0;
        sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, qt[q]);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) /* a blob lasts until the next step */
            rows_add(&r, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                     sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
        sqlite3_reset(st);
        check(db, rc, "as-of");
        for (size_t i = 0; i < r.n; i++)
            r.recs[i].body = r.bodies + r.offs[i];
        dk_case_state cs;
        uint64_t bad = 0;
        if (dk_case_fold(r.recs, r.n, &cs, NULL, NULL, &bad) != 0)
            cmp_die("as-of %s: seq %llu: %s", case_id, (unsigned long long)bad, dk_errmsg());
        lat[q] = (cmp_now() - s) * 1e6;
        if (cs.version != qk[q] + 1)
            cmp_die("as-of %s: version %llu, expected %u", case_id, (unsigned long long)cs.version,
                    qk[q] + 1);
        digest += cmp_state_digest(case_id, &cs);
    }
    cmp_report_reads("asof", nq, cmp_now() - t0, lat, digest);
    sqlite3_finalize(st);
    free(r.recs);
    free(r.offs);
    free(r.bodies);
    free(qc);
    free(qk);
    free(qt);
    free(lat);
}

/* Rebuild: every event in seq order, folded into a status table. */
static void rebuild(const cmp_workload *w, sqlite3 *db)
{
    cmp_table *tab = cmp_table_new(w->ncases);
    if (tab == NULL)
        cmp_die("out of memory");
    char err[600];
    sqlite3_stmt *all = prep(db, "SELECT seq, recorded_at, body FROM events ORDER BY seq");
    double t0 = cmp_now();
    int rc;
    while ((rc = sqlite3_step(all)) == SQLITE_ROW)
        if (cmp_table_apply(tab, (uint64_t)sqlite3_column_int64(all, 0),
                            sqlite3_column_int64(all, 1), sqlite3_column_blob(all, 2),
                            (size_t)sqlite3_column_bytes(all, 2), err, sizeof err) != 0)
            cmp_die("rebuild: %s", err);
    double el = cmp_now() - t0;
    check(db, rc, "rebuild");
    sqlite3_finalize(all);
    cmp_report_rebuild(w, tab, el);
    cmp_table_free(tab);
}

int main(int argc, char **argv)
{
    cmp_opts o;
    cmp_workload w;
    cmp_opts_parse(argc, argv, &o);
    if (o.dir == NULL)
        cmp_die("--dir DIR is required");
    cmp_workload_open(o.workload, &w);
    if (dk_init() != 0)
        cmp_die("cannot initialise libdocket");
    char path[4096];
    snprintf(path, sizeof path, "%s/events.db", o.dir);
    printf("# sqlite %s: %llu events, %llu cases, database %s\n", sqlite3_libversion(),
           (unsigned long long)w.nevents, (unsigned long long)w.ncases, path);

    sqlite3 *db = db_open(path);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (!o.reads_only) /* else profiling the reads: the database a previous run left */
        load(db, &o, &w, path, &mu);
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
    cmp_event forged = w.ev[0];
    uint8_t sig[DK_SIG_BYTES];
    memcpy(sig, w.ev[0].sig, DK_SIG_BYTES);
    sig[7] ^= 1;
    forged.sig = sig;
    client_open(&c, path, &w, &mu);
    cmp_line("guarantee_bad_signature_refused",
             cmp_verify_event(c.actors, c.nactors, &w, &forged, &ev, err, sizeof err) != 0, "bool");
    const cmp_event *e0 = &w.ev[0];
    if (cmp_verify_event(c.actors, c.nactors, &w, e0, &ev, err, sizeof err) != 0)
        cmp_die("event 0 does not verify: %s", err);
    int rc = write_events(&c, &e0, &ev, 1, err, sizeof err); /* version 1 of its case again */
    cmp_line("guarantee_stale_version_refused", rc != 0 && strstr(err, "UNIQUE") != NULL, "bool");
    client_close(&c);

    exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    if (sqlite3_close(db) != SQLITE_OK)
        cmp_die("sqlite: cannot close");
    uint64_t bytes = cmp_dir_bytes(o.dir);
    printf("# disk: %llu bytes in %s (database, WAL checkpointed)\n", (unsigned long long)bytes,
           o.dir);
    cmp_line("disk_bytes_per_event", (double)bytes / (double)w.nevents, "bytes");
    cmp_workload_close(&w);
    return 0;
}
