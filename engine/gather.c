/* gather.c - the records of a run of cases read at once, forward through the log in seq
 * order: what a rebuild's folders read instead of searching the log once per record. */
#include <stdlib.h>
#include <string.h>

#include "docket/error.h"
#include "engine_int.h"
#include "ledger_int.h"

/* Reading a record by searching the log is a chain of dependent cache misses, root to
 * leaf (about 1 µs on a 1M-record ledger); reading a run of cases' records sorted by seq
 * walks the log forward, and neighbouring records share leaf pages (bench_layout-style
 * measurement in docs/benchmarks.md). */

struct dk_gather {
    dk_ledger *lg;
    MDB_txn *txn;
    uint64_t upto;
    /* case i's id, NUL-ended, is names + name_at[i]: packed, ids are mostly far shorter
     * than DK_CASE_MAX (a run of 65,536 cases: 4.3 MiB as fixed slots) */
    char *names;
    uint32_t *name_at;
    size_t *start; /* case i's records are raw[start[i] .. start[i + 1]) */
    size_t ncases, names_len, names_cap, name_at_cap, start_cap;
    uint64_t *seq;
    dk_raw *raw;
    size_t nrec, seq_cap, raw_cap;
    int more;         /* stopped at a limit: cases may follow */
    const char *what; /* what listed the records: "case index" or "actor history" */
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *m = realloc(*p, c * size);
    if (m == NULL)
        return dk__fail(DK_ENOMEM, "out of memory gathering cases");
    *p = m;
    *cap = c;
    return 0;
}

/* A run stops at the first case begun past its max_records, so it holds that many records
 * and part of one case more: reserved at once, instead of doubled past it (a run of 2^19
 * records then took 2^20 slots, 12 MiB more per rebuild folder). */
#define RESERVE_SLACK 4096
#define RESERVE_MAX   ((size_t)1 << 22)

static int reserve(void **p, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    void *m = realloc(*p, n * size);
    if (m == NULL)
        return dk__fail(DK_ENOMEM, "out of memory gathering cases");
    *p = m;
    *cap = n;
    return 0;
}

/* Add a case's id (its records follow); a case with no record up to `upto` is dropped
 * when the next one starts. */
static int begin_case(dk_gather *g, const void *id, size_t n)
{
    if (g->ncases > 0 && g->start[g->ncases - 1] == g->nrec)
        g->names_len = g->name_at[--g->ncases]; /* it had no record up to upto */
    int rc = grow((void **)&g->name_at, &g->name_at_cap, g->ncases + 1, sizeof *g->name_at);
    if (rc == 0)
        rc = grow((void **)&g->names, &g->names_cap, g->names_len + n + 1, 1);
    if (rc == 0)
        rc = grow((void **)&g->start, &g->start_cap, g->ncases + 2, sizeof *g->start);
    if (rc == 0 && g->names_len + n + 1 > UINT32_MAX)
        rc = dk__fail(DK_ENOMEM, "a gather's case ids take over 4 GiB");
    if (rc)
        return rc;
    memcpy(g->names + g->names_len, id, n);
    g->names[g->names_len + n] = 0;
    g->name_at[g->ncases] = (uint32_t)g->names_len;
    g->names_len += n + 1;
    g->start[g->ncases++] = g->nrec;
    return 0;
}

/* A gather with its snapshot taken and nothing listed yet. */
static int gather_new(dk_ledger *lg, uint64_t upto, dk_gather **out)
{
    dk_gather *g = calloc(1, sizeof *g);
    if (g == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    g->lg = lg;
    g->upto = upto;
    g->what = "case index";
    int rc = dk__read_begin(lg, &g->txn);
    if (rc) {
        free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int dk_gather_open(dk_ledger *lg, const char *after, size_t max_cases, size_t max_records,
                   uint64_t upto, dk_gather **out)
{
    *out = NULL;
    size_t alen = strlen(after);
    if (alen > DK_CASE_MAX)
        return dk__fail(DK_EINVAL, "case id is longer than %d bytes", DK_CASE_MAX);
    if (max_cases == 0)
        return dk__fail(DK_EINVAL, "a gather holds at least one case");
    dk_gather *g = NULL;
    int rc = gather_new(lg, upto, &g);
    if (rc)
        return rc;
    if (max_records <= RESERVE_MAX &&
        ((rc = reserve((void **)&g->seq, &g->seq_cap, max_records + RESERVE_SLACK,
                       sizeof *g->seq)) != 0 ||
         (rc = reserve((void **)&g->raw, &g->raw_cap, max_records + RESERVE_SLACK,
                       sizeof *g->raw)) != 0)) {
        dk_gather_close(g);
        return rc;
    }
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(g->txn, lg->cases, &cur)) != 0) {
        dk_gather_close(g);
        return dk__mdb_err(rc, "cannot open a cursor");
    }
    /* Each case's keys start "id NUL"; the first key after all of them is at "id \1". */
    uint8_t key[DK__CASE_KEY_MAX];
    memcpy(key, after, alen);
    key[alen] = 1;
    MDB_val k = {alen + 1, key}, v;
    int m = mdb_cursor_get(cur, &k, &v, alen ? MDB_SET_RANGE : MDB_FIRST);
    const uint8_t *cur_id = NULL;
    size_t cur_len = 0;
    for (; m == 0 && rc == 0; m = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t idn;
        uint64_t seq;
        if (dk__case_key_parse(&k, &idn, &seq) != 0) {
            rc = dk__fail(DK_ECORRUPT, "the case index holds a malformed key of %zu bytes",
                          k.mv_size);
            break;
        }
        if (cur_id == NULL || idn != cur_len || memcmp(cur_id, k.mv_data, idn) != 0) {
            /* a new case: stop at the limits, once the previous case is complete */
            size_t done = g->ncases - (g->ncases > 0 && g->start[g->ncases - 1] == g->nrec);
            if (done >= max_cases || (done > 0 && g->nrec >= max_records)) {
                g->more = 1;
                break;
            }
            if ((rc = begin_case(g, k.mv_data, idn)) != 0)
                break;
            cur_id = k.mv_data;
            cur_len = idn;
        }
        if (seq == 0 || seq > upto)
            continue; /* the state row, or a record after the gather's end */
        if ((rc = grow((void **)&g->seq, &g->seq_cap, g->nrec + 1, sizeof *g->seq)) == 0)
            rc = grow((void **)&g->raw, &g->raw_cap, g->nrec + 1, sizeof *g->raw);
        if (rc == 0)
            g->seq[g->nrec++] = seq;
    }
    if (rc == 0 && m != 0 && m != MDB_NOTFOUND)
        rc = dk__mdb_err(m, "cannot read the case index");
    mdb_cursor_close(cur);
    if (rc == 0 && g->ncases > 0 && g->start[g->ncases - 1] == g->nrec)
        g->names_len = g->name_at[--g->ncases];
    if (rc == 0 && g->ncases > 0)
        g->start[g->ncases] = g->nrec;
    if (rc) {
        dk_gather_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int dk_gather_open_system(dk_ledger *lg, uint64_t upto, dk_gather **out)
{
    *out = NULL;
    dk_gather *g = NULL;
    int rc = lg->actor_log ? gather_new(lg, upto, &g) : DK_ENOTFOUND;
    /* created on the first write open and filled right after; empty, it is not filled
     * yet (every ledger's genesis enrols its admin) */
    MDB_stat st;
    if (rc == 0 && (mdb_stat(g->txn, lg->actor_log, &st) != 0 || st.ms_entries == 0)) {
        dk_gather_close(g);
        rc = DK_ENOTFOUND;
    }
    if (rc == DK_ENOTFOUND)
        return dk__fail(DK_ENOTFOUND, "this ledger has no actor history yet (open it for "
                                      "writing once to build it)");
    if (rc)
        return rc;
    g->what = "actor history";
    MDB_cursor *cur = NULL;
    if ((rc = begin_case(g, "", 0)) == 0 && (rc = mdb_cursor_open(g->txn, lg->actor_log, &cur)))
        rc = dk__mdb_err(rc, "cannot open a cursor");
    /* every actor's changes: its id, then the seq of each as a duplicate value */
    MDB_val k, v;
    int m = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; m == 0 && rc == 0; m = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t seq = v.mv_size == 8 ? dk_get_be64(v.mv_data) : 0;
        if (seq == 0)
            rc = dk__fail(DK_ECORRUPT, "the actor history holds a malformed entry");
        else if (seq <= upto &&
                 (rc = grow((void **)&g->seq, &g->seq_cap, g->nrec + 1, sizeof *g->seq)) == 0 &&
                 (rc = grow((void **)&g->raw, &g->raw_cap, g->nrec + 1, sizeof *g->raw)) == 0)
            g->seq[g->nrec++] = seq;
    }
    if (rc == 0 && m != MDB_NOTFOUND)
        rc = dk__mdb_err(m, "cannot read the actor history");
    if (cur)
        mdb_cursor_close(cur);
    if (rc) {
        dk_gather_close(g);
        return rc;
    }
    if (g->nrec == 0) {
        g->ncases = 0;
    } else {
        qsort(g->seq, g->nrec, sizeof *g->seq, cmp_u64);
        g->start[1] = g->nrec;
    }
    *out = g;
    return 0;
}

/* Bits needed to write x (0 for 0). */
static int bits_of(uint64_t x)
{
    return x ? 64 - __builtin_clzll(x) : 0;
}

/* Radix digits of 11 bits: two passes cover the seqs of a ledger of up to 4M records. */
#define DIGIT_BITS 11
#define DIGITS     (1u << DIGIT_BITS)

/* The positions 0..n-1 in the order of their seqs (at most `top`), each key `seq << *pbits |
 * pos`, in *keys; *keys = NULL if that would not fit in 64 bits (a ledger of over 2^40
 * records), and the records are then read in gather order. An LSD radix sort on the seq's
 * bits, all the passes' counts taken in one pass; `scratch` (n keys' room) is the
 * gather's record slots, unused until the read fills them, so a run's sort takes no more
 * memory than its 4 MiB of keys. Reading a run's records in seq order walks the log
 * forward; a key carries its seq, so that the read does not load seq[pos] at random (that
 * load was half of read_from's samples, and each pass of the sort by positions alone made
 * it too); an MSD sort in place moved each key to a bucket at random, and cost more. */
static int order_by_seq(const uint64_t *seq, size_t n, uint64_t top, void *scratch, uint64_t **keys,
                        int *pbits)
{
    *keys = NULL;
    *pbits = bits_of(n > 0 ? n - 1 : 0);
    if (n == 0 || bits_of(top) + *pbits > 64)
        return 0;
    uint64_t *a = malloc(n * sizeof *a), *b = scratch;
    if (a == NULL)
        return dk__fail(DK_ENOMEM, "out of memory gathering cases");
    int passes = (bits_of(top) + DIGIT_BITS - 1) / DIGIT_BITS;
    uint32_t(*count)[DIGITS] = calloc((size_t)(passes ? passes : 1), sizeof *count);
    if (count == NULL) {
        free(a);
        return dk__fail(DK_ENOMEM, "out of memory gathering cases");
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = seq[i] << *pbits | i;
        for (int d = 0; d < passes; d++)
            count[d][(seq[i] >> (DIGIT_BITS * d)) & (DIGITS - 1)]++;
    }
    for (int d = 0; d < passes; d++) {
        uint32_t sum = 0;
        for (unsigned v = 0; v < DIGITS; v++) {
            uint32_t c = count[d][v];
            count[d][v] = sum;
            sum += c;
        }
        int shift = *pbits + DIGIT_BITS * d;
        for (size_t i = 0; i < n; i++)
            b[count[d][(a[i] >> shift) & (DIGITS - 1)]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    free(count);
    if (passes % 2) { /* the sorted keys are in the scratch: back into the allocation */
        memcpy(b, a, n * sizeof *a);
        a = b;
    }
    *keys = a;
    return 0;
}

/* Forward steps taken with MDB_NEXT instead of a search: a record a few places on is
 * usually on the same leaf page. */
#define NEXT_STEPS 8

/* Read the records at positions first..nrec-1, in seq order. */
static int read_from(dk_gather *g, size_t first)
{
    if (g->nrec > UINT32_MAX)
        return dk__fail(DK_EINVAL, "a gather holds at most 2^32 records");
    uint64_t *order;
    int pbits;
    _Static_assert(sizeof *g->raw >= sizeof(uint64_t), "a record slot holds a sort key");
    int rc = order_by_seq(g->seq + first, g->nrec - first, g->upto, g->raw + first, &order, &pbits);
    if (rc)
        return rc;
    uint64_t low = pbits ? ~0ull >> (64 - pbits) : 0;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(g->txn, g->lg->log, &cur)) != 0) {
        free(order);
        return dk__mdb_err(rc, "cannot open a cursor");
    }
    uint64_t at = 0; /* the seq the cursor is on; 0 before the first read */
    for (size_t i = 0; i < g->nrec - first && rc == 0; i++) {
        size_t pos = first + (order ? (size_t)(order[i] & low) : i);
        uint64_t want = order ? order[i] >> pbits : g->seq[pos];
        uint8_t kb[8];
        MDB_val k = {8, kb}, v;
        int m = 0;
        if (at != 0 && want > at && want - at <= NEXT_STEPS) {
            while (m == 0 && at < want) {
                m = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
                at = m == 0 && k.mv_size == 8 ? dk_get_be64(k.mv_data) : UINT64_MAX;
            }
            if (m == 0 && at != want)
                m = MDB_NOTFOUND;
        } else {
            dk_put_be64(kb, want);
            m = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
            at = want;
        }
        if (m == MDB_NOTFOUND)
            rc = dk__fail(DK_ECORRUPT, "the %s points at missing record %llu", g->what,
                          (unsigned long long)want);
        else if (m)
            rc = dk__mdb_err(m, "cannot read the ledger");
        else {
            g->raw[pos].p = v.mv_data;
            g->raw[pos].len = v.mv_size;
        }
        if (m)
            at = 0;
    }
    mdb_cursor_close(cur);
    free(order);
    return rc;
}

int dk_gather_read(dk_gather *g)
{
    return read_from(g, 0);
}

void dk_gather_release(dk_gather *g)
{
    if (g->txn)
        dk__read_end(g->lg, g->txn);
    g->txn = NULL;
}

int dk_gather_reread(dk_gather *g, size_t from)
{
    dk_gather_release(g);
    int rc = dk__read_begin(g->lg, &g->txn);
    if (rc) {
        g->txn = NULL;
        return rc;
    }
    return from < g->ncases ? read_from(g, g->start[from]) : 0;
}

const uint64_t *dk_gather_seqs(const dk_gather *g, size_t i)
{
    return g->seq + g->start[i];
}

size_t dk_gather_records_count(const dk_gather *g)
{
    return g->nrec;
}

size_t dk_gather_count(const dk_gather *g)
{
    return g->ncases;
}

int dk_gather_more(const dk_gather *g)
{
    return g->more;
}

const char *dk_gather_case(const dk_gather *g, size_t i)
{
    return g->names + g->name_at[i];
}

void dk_gather_records(const dk_gather *g, size_t i, const dk_raw **recs, size_t *n)
{
    *recs = g->raw + g->start[i];
    *n = g->start[i + 1] - g->start[i];
}

int dk_ledger_cases(dk_ledger *lg, const char *after, char (*ids)[DK_CASE_MAX + 1], size_t max,
                    size_t *n)
{
    dk_gather *g = NULL;
    *n = 0;
    if (max == 0)
        return 0;
    int rc = dk_gather_open(lg, after, max, SIZE_MAX, UINT64_MAX, &g);
    if (rc)
        return rc;
    for (; *n < g->ncases; (*n)++)
        strcpy(ids[*n], dk_gather_case(g, *n));
    dk_gather_close(g);
    return 0;
}

void dk_gather_close(dk_gather *g)
{
    if (g == NULL)
        return;
    if (g->txn)
        dk__read_end(g->lg, g->txn);
    free(g->names);
    free(g->name_at);
    free(g->start);
    free(g->seq);
    free(g->raw);
    free(g);
}
