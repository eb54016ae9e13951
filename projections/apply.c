/* apply.c - applying ledger records to a set of views: hash chain, case states via
 * dk_case_apply, undo by re-folding the case, and each batch's merged overlay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "views_int.h"

/* ---- hashing for the in-memory tables ---- */

/* Eight bytes at a time, each word multiplied in, then murmur3's finalizer (FNV-1a took a multiply
 * per byte: 1M rebuild, ov_slot's own share of all CPU fell from 2.5-2.8% to 1.4-1.8%). For
 * spreading keys over a table, not against an adversary. */
static uint64_t tab_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)b[i] << (8 * i);
    /* murmur3's fmix64: every input bit reaches the low bits a table's slot is taken from
     * (a multiply alone carries only upward) */
    h ^= w ^ ((uint64_t)n << 56);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

#define HASH0 0xcbf29ce484222325ull

/* ---- the overlay ---- */

struct arena_block {
    arena_block *next;
    size_t used, cap;
    uint8_t data[];
};

#define ARENA_BLOCK ((size_t)1 << 20)

/* Blocks are kept from batch to batch (ov->spare): a batch's entries then land in memory
 * the process already has, instead of pages it must be given and cleared again. */
static void *arena_alloc(overlay *ov, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    arena_block *b = ov->blocks;
    if (b == NULL || b->used + n > b->cap) {
        arena_block *nb = ov->spare;
        if (nb != NULL && nb->cap >= n) {
            ov->spare = nb->next;
        } else {
            size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
            if ((nb = malloc(sizeof *nb + cap)) == NULL)
                return NULL;
            nb->cap = cap;
        }
        nb->used = 0;
        nb->next = b;
        ov->blocks = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void dk__ov_init(overlay *ov)
{
    memset(ov, 0, sizeof *ov);
}

void dk__ov_reset(overlay *ov)
{
    if (ov->tab && ov->n)
        memset(ov->tab, 0, ov->cap * sizeof *ov->tab);
    ov->n = 0;
    while (ov->blocks) {
        arena_block *next = ov->blocks->next;
        ov->blocks->next = ov->spare;
        ov->spare = ov->blocks;
        ov->blocks = next;
    }
}

void dk__ov_free(overlay *ov)
{
    dk__ov_reset(ov);
    while (ov->spare) {
        arena_block *next = ov->spare->next;
        free(ov->spare);
        ov->spare = next;
    }
    free(ov->tab);
    memset(ov, 0, sizeof *ov);
}

static int ov_grow(overlay *ov)
{
    size_t cap = ov->cap ? ov->cap * 2 : 4096;
    /* Each slot is written before it is probed: calloc's fresh pages would be mapped to the
     * zero page by the first probe and copied at the first write, each copy flushing the
     * other cores' TLBs (1M rebuild: 1.8% of all CPU time, on the writer's thread). A
     * memset after malloc is turned back into calloc by the compiler; only `used` is read
     * before a slot is filled. */
    ov_entry *tab = malloc(cap * sizeof *tab);
    if (tab == NULL)
        return dk_fail(DK_ENOMEM, "out of memory in a batch");
    for (size_t i = 0; i < cap; i++)
        tab[i].used = 0;
    for (size_t i = 0; i < ov->cap; i++) {
        if (!ov->tab[i].used)
            continue;
        size_t j = ov->tab[i].hash & (cap - 1);
        while (tab[j].used)
            j = (j + 1) & (cap - 1);
        tab[j] = ov->tab[i];
    }
    free(ov->tab);
    ov->tab = tab;
    ov->cap = cap;
    return 0;
}

static int ov_slot(overlay *ov, int view, const void *k, size_t klen, ov_entry **out)
{
    if ((ov->n + 1) * 2 > ov->cap) {
        int rc = ov_grow(ov);
        if (rc)
            return rc;
    }
    uint8_t vb = (uint8_t)view;
    uint64_t h = tab_hash(tab_hash(HASH0, &vb, 1), k, klen);
    size_t j = h & (ov->cap - 1);
    for (;; j = (j + 1) & (ov->cap - 1)) {
        ov_entry *e = &ov->tab[j];
        if (!e->used) {
            e->key = arena_alloc(ov, klen ? klen : 1);
            if (e->key == NULL)
                return dk_fail(DK_ENOMEM, "out of memory in a batch");
            memcpy(e->key, k, klen);
            e->used = 1;
            e->view = vb;
            e->klen = (uint16_t)klen;
            e->hash = h;
            e->kind = OV_DEL;
            e->val = NULL;
            e->vlen = 0;
            e->delta = 0;
            ov->n++;
            *out = e;
            return 0;
        }
        if (e->hash == h && e->view == vb && e->klen == klen && memcmp(e->key, k, klen) == 0) {
            *out = e;
            return 0;
        }
    }
}

int dk__ov_put(overlay *ov, int view, const void *k, size_t klen, const void *v, size_t vlen)
{
    ov_entry *e;
    int rc = ov_slot(ov, view, k, klen, &e);
    if (rc)
        return rc;
    if (e->kind != OV_PUT || e->vlen < vlen) {
        e->val = arena_alloc(ov, vlen ? vlen : 1);
        if (e->val == NULL)
            return dk_fail(DK_ENOMEM, "out of memory in a batch");
    }
    memcpy(e->val, v, vlen);
    e->vlen = (uint32_t)vlen;
    e->kind = OV_PUT;
    return 0;
}

int dk__ov_del(overlay *ov, int view, const void *k, size_t klen)
{
    ov_entry *e;
    int rc = ov_slot(ov, view, k, klen, &e);
    if (rc == 0)
        e->kind = OV_DEL;
    return rc;
}

int dk__ov_count(overlay *ov, int view, const void *k, size_t klen, int64_t delta)
{
    ov_entry *e;
    int rc = ov_slot(ov, view, k, klen, &e);
    if (rc)
        return rc;
    if (e->kind != OV_COUNT) {
        e->kind = OV_COUNT;
        e->delta = 0;
    }
    e->delta += delta;
    return 0;
}

/* ---- the state cache ---- */

void dk__cache_init(scache *c, size_t max)
{
    size_t n = 16;
    while (n < max * 2)
        n *= 2;
    c->idx = calloc(n, sizeof *c->idx);
    c->pool = malloc(max * sizeof *c->pool);
    if (c->idx == NULL || c->pool == NULL) {
        free(c->idx);
        free(c->pool);
        memset(c, 0, sizeof *c);
        return;
    }
    c->cap = n;
    c->max = max;
    c->n = 0;
}

void dk__cache_free(scache *c)
{
    free(c->idx);
    free(c->pool);
    memset(c, 0, sizeof *c);
}

void dk__cache_clear(scache *c)
{
    if (c->n)
        memset(c->idx, 0, c->cap * sizeof *c->idx);
    c->n = 0;
}

/* ---- applying records ---- */

typedef struct applier {
    dk_views *vw;
    MDB_txn *txn;
    vset *vs;
    scache *cache;
    overlay *ov;
} applier;

static int cache_get(applier *a, const char *case_id, centry **out)
{
    scache *c = a->cache;
    size_t len = strlen(case_id);
    uint64_t h = tab_hash(HASH0, case_id, len);
    if (c->cap == 0)
        return dk_fail(DK_ENOMEM, "views: no case cache");
    size_t j = h & (c->cap - 1);
    for (;; j = (j + 1) & (c->cap - 1)) {
        if (c->idx[j] == 0)
            break;
        centry *e = &c->pool[c->idx[j] - 1];
        if (e->hash == h && strcmp(e->case_id, case_id) == 0) {
            *out = e;
            return 0;
        }
    }
    if (c->n == c->max)
        return dk_fail(DK_ENOMEM, "views: the case cache is full (batch larger than the cache)");
    centry *e = &c->pool[c->n];
    c->idx[j] = (uint32_t)++c->n;
    memset(e, 0, sizeof *e);
    e->hash = h;
    memcpy(e->case_id, case_id, len + 1);
    if (a->vs->mask & BIT(DK_VIEW_CASES)) {
        MDB_val k = {len, (void *)case_id}, v;
        int rc = mdb_get(a->txn, a->vs->dbi[DK_VIEW_CASES], &k, &v);
        if (rc == 0) {
            if (dk_case_state_unpack(v.mv_data, v.mv_size, &e->orig) != 0) {
                memset(&e->orig, 0, sizeof e->orig);
                e->loaded = 2; /* unreadable: the case is re-folded from the ledger */
            } else {
                e->loaded = 1;
            }
        } else if (rc != MDB_NOTFOUND) {
            return dk__mdb_fail(rc, "cannot read a case state");
        }
    }
    e->st = e->orig;
    *out = e;
    return 0;
}

static int emit_ov(void *ctx, int view, const uint8_t *k, size_t klen, const uint8_t *v,
                   size_t vlen, int sign)
{
    applier *a = ctx;
    if (view == DK_VIEW_STATS)
        return dk__ov_count(a->ov, view, k, klen, sign);
    if (sign > 0)
        return dk__ov_put(a->ov, view, k, klen, v, vlen);
    return dk__ov_del(a->ov, view, k, klen);
}

static int when_of_raw(const uint8_t *raw, size_t len, int64_t *t)
{
    dk_record rec;
    dk_event ev;
    if (dk_record_decode(raw, len, &rec) != 0 ||
        dk_event_decode_stored(rec.body, rec.body_len, &ev) != 0)
        return dk_fail(DK_ECORRUPT, "views: a record does not decode: %s", dk_errmsg());
    *t = dk__when(&rec, &ev);
    return 0;
}

static int time_from_ledger(void *ctx, uint64_t seq, int64_t *t)
{
    applier *a = ctx;
    uint8_t *raw;
    size_t len;
    int rc = dk_ledger_get(a->vw->lg, seq, &raw, &len);
    if (rc)
        return rc;
    rc = when_of_raw(raw, len, t);
    free(raw);
    return rc;
}

/* ---- a case's history, re-folded: the set of diary/stats/errors entries it gives ---- */

typedef struct witem {
    int view;
    size_t klen, vlen;
    int64_t count;
    uint8_t key[KEY_MAX];
    uint8_t val[512];
} witem;

typedef struct wset {
    witem *it;
    size_t n, cap;
} wset;

static int emit_set(void *ctx, int view, const uint8_t *k, size_t klen, const uint8_t *v,
                    size_t vlen, int sign)
{
    wset *s = ctx;
    size_t i = 0;
    while (i < s->n &&
           !(s->it[i].view == view && s->it[i].klen == klen && memcmp(s->it[i].key, k, klen) == 0))
        i++;
    if (i == s->n) {
        if (sign < 0)
            return 0;
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            witem *more = realloc(s->it, cap * sizeof *more);
            if (more == NULL)
                return dk_fail(DK_ENOMEM, "out of memory re-folding a case");
            s->it = more;
            s->cap = cap;
        }
        witem *w = &s->it[s->n++];
        w->view = view;
        w->klen = klen;
        memcpy(w->key, k, klen);
        w->count = 0;
        w->vlen = 0;
    }
    witem *w = &s->it[i];
    if (view == DK_VIEW_STATS) {
        w->count += sign;
    } else if (sign > 0) {
        w->vlen = vlen < sizeof w->val ? vlen : sizeof w->val;
        memcpy(w->val, v, w->vlen);
    } else {
        s->it[i] = s->it[--s->n];
    }
    return 0;
}

typedef struct walk_ctx {
    const dk_record *recs;
    const dk_event *evs; /* recs' bodies, as walk decoded them */
    size_t n;
} walk_ctx;

/* An earlier record of the case, from what walk has already read: not decoded again
 * (a second, full decode, which the first phase's chained read does not make, named a
 * damaged record "does not decode" before the chain could name it). */
static int time_from_recs(void *ctx, uint64_t seq, int64_t *t)
{
    walk_ctx *w = ctx;
    for (size_t i = 0; i < w->n; i++)
        if (w->recs[i].seq == seq) {
            *t = dk__when(&w->recs[i], &w->evs[i]);
            return 0;
        }
    return dk_fail(DK_ECORRUPT, "views: error report %llu is not on its case",
                   (unsigned long long)seq);
}

/* Decode recs[0..n) into evs (`chained`: the caller checks the hash chain over these
 * records before it keeps the result, a rebuild's first phase, so bodies are read with
 * dk_event_decode_chained). *meta: a revert or rollback is among them. */
static int decode_case(const char *case_id, const dk_record *recs, size_t n, int chained,
                       dk_event *evs, int *meta)
{
    *meta = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = chained ? dk_event_decode_chained(recs[i].body, recs[i].body_len, &evs[i])
                         : dk_event_decode_stored(recs[i].body, recs[i].body_len, &evs[i]);
        if (rc != 0)
            return dk_fail(DK_ECORRUPT, "views: record %llu's body does not decode: %s",
                           (unsigned long long)recs[i].seq, dk_errmsg());
        if (strcmp(evs[i].case_id, case_id) != 0)
            return dk_fail(DK_ECORRUPT,
                           "views: the case index lists record %llu under case '%s', but it is "
                           "case '%s''s",
                           (unsigned long long)recs[i].seq, case_id, evs[i].case_id);
        *meta |= dk__is_meta(evs[i].type);
    }
    return 0;
}

/* What the fold of recs[0..n) voids, into voided_by[0..n) (dk_case_voids). */
static int case_voids(const char *case_id, const dk_record *recs, const dk_event *evs, size_t n,
                      uint64_t *voided_by)
{
    uint64_t bad = 0;
    if (dk_case_voids(recs, evs, n, voided_by, &bad) != 0)
        return dk_fail(DK_ECORRUPT, "views: case '%s' does not fold at seq %llu: %s", case_id,
                       (unsigned long long)bad, dk_errmsg());
    return 0;
}

/* A fold in progress, and the entries the history it has taken gives. */
typedef struct walker {
    dk_case_state st;
    wset set;
} walker;

/* Take recs[from..to) into w: the fold's order (dk_case_voids, dk_case_skip, dk_case_step),
 * each applied event's entries into w->set. voided_by: what the fold voids; NULL: nothing
 * (no revert or rollback among the records). */
static int walk_range(const char *case_id, const dk_record *recs, const dk_event *evs,
                      const uint64_t *voided_by, size_t from, size_t to, walker *w)
{
    walk_ctx wc = {recs, evs, to};
    step_prev prev;
    int rc = 0;
    for (size_t i = from; i < to && rc == 0; i++) {
        int voided = voided_by && voided_by[i];
        if (voided || dk__is_meta(evs[i].type)) {
            dk_case_skip(&w->st, recs[i].seq, voided);
            continue;
        }
        dk__step_prev(&prev, &w->st);
        if ((rc = dk_case_step(&w->st, recs[i].seq, &evs[i])) != 0) /* st is given up */
            return dk_fail(DK_ECORRUPT, "views: case '%s' does not fold at seq %llu: %s", case_id,
                           (unsigned long long)recs[i].seq, dk_errmsg());
        rc = dk__step_entries(case_id, &prev, &w->st, &evs[i], &recs[i], time_from_recs, &wc,
                              emit_set, &w->set);
    }
    return rc;
}

/* Fold recs[0..n) into *st and collect the entries its history gives. */
static int walk(const char *case_id, const dk_record *recs, size_t n, int chained,
                dk_case_state *st, wset *set)
{
    int meta = 0;
    dk_event *evs = malloc((n ? n : 1) * sizeof *evs);
    uint64_t *voided_by = NULL;
    if (evs == NULL)
        return dk_fail(DK_ENOMEM, "out of memory folding a case");
    int rc = decode_case(case_id, recs, n, chained, evs, &meta);
    /* a case with no revert or rollback voids nothing */
    if (rc == 0 && meta && (voided_by = malloc(n * sizeof *voided_by)) == NULL)
        rc = dk_fail(DK_ENOMEM, "out of memory folding a case");
    if (rc == 0 && meta)
        rc = case_voids(case_id, recs, evs, n, voided_by);
    walker w;
    memset(&w.st, 0, sizeof w.st);
    w.set = *set;
    if (rc == 0)
        rc = walk_range(case_id, recs, evs, voided_by, 0, n, &w);
    *set = w.set;
    if (rc == 0)
        *st = w.st;
    free(evs);
    free(voided_by);
    return rc;
}

static int emit_items(applier *a, const wset *s, int sign)
{
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        const witem *w = &s->it[i];
        if (w->view == DK_VIEW_STATS)
            rc = w->count ? dk__ov_count(a->ov, w->view, w->key, w->klen, sign * w->count) : 0;
        else if (sign > 0)
            rc = dk__ov_put(a->ov, w->view, w->key, w->klen, w->val, w->vlen);
        else
            rc = dk__ov_del(a->ov, w->view, w->key, w->klen);
    }
    return rc;
}

/* A revert or rollback (or a state that no longer applies): the case's
 * entries are recomputed from the fold of its records up to `cur`. */
static int recompute(applier *a, centry *ce, const dk_record *cur)
{
    dk_iter *it;
    int rc = dk_iter_open(a->vw->lg, 1, ce->case_id, &it);
    if (rc)
        return rc;
    dk_record *recs = NULL;
    size_t n = 0, cap = 0;
    dk_record r;
    while ((rc = dk_iter_next(it, &r)) == 0 && r.seq <= cur->seq) {
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            dk_record *more = realloc(recs, cap * sizeof *recs);
            if (more == NULL) {
                rc = dk_fail(DK_ENOMEM, "out of memory re-folding a case");
                break;
            }
            recs = more;
        }
        recs[n++] = r;
    }
    if (rc == DK_ENOTFOUND || (rc == 0 && r.seq > cur->seq))
        rc = 0;
    if (rc == 0 && (n == 0 || recs[n - 1].seq != cur->seq))
        rc = dk_fail(DK_ECORRUPT, "views: record %llu is missing from case '%s''s index",
                     (unsigned long long)cur->seq, ce->case_id);
    /* The case before `cur` and with it: the two folds take the same events, voided or
     * not, up to the first that `cur` voids or brings back (for a revert, usually near the
     * end), so that part is walked once and its set copied. */
    walker old = {0}, cur_w = {0};
    dk_event *evs = NULL;
    uint64_t *vo = NULL, *vn = NULL;
    int meta = 0;
    if (rc == 0 && ((evs = malloc(n * sizeof *evs)) == NULL ||
                    (vo = calloc(n, sizeof *vo)) == NULL || (vn = calloc(n, sizeof *vn)) == NULL))
        rc = dk_fail(DK_ENOMEM, "out of memory re-folding a case");
    if (rc == 0)
        rc = decode_case(ce->case_id, recs, n, 0, evs, &meta);
    if (rc == 0 && meta)
        rc = case_voids(ce->case_id, recs, evs, n - 1, vo);
    if (rc == 0 && meta)
        rc = case_voids(ce->case_id, recs, evs, n, vn);
    size_t d = 0;
    while (rc == 0 && d < n - 1 && (vo[d] != 0) == (vn[d] != 0))
        d++;
    if (rc == 0)
        rc = walk_range(ce->case_id, recs, evs, vn, 0, d, &cur_w);
    if (rc == 0 && cur_w.set.n) {
        old.set.it = malloc(cur_w.set.n * sizeof *old.set.it);
        if (old.set.it == NULL)
            rc = dk_fail(DK_ENOMEM, "out of memory re-folding a case");
        else
            memcpy(old.set.it, cur_w.set.it, cur_w.set.n * sizeof *old.set.it);
        old.set.n = old.set.cap = cur_w.set.n;
    }
    old.st = cur_w.st;
    if (rc == 0)
        rc = walk_range(ce->case_id, recs, evs, vo, d, n - 1, &old);
    if (rc == 0)
        rc = walk_range(ce->case_id, recs, evs, vn, d, n, &cur_w);
    if (rc == 0)
        rc = emit_items(a, &old.set, -1);
    if (rc == 0)
        rc = emit_items(a, &cur_w.set, +1);
    if (rc == 0) {
        /* a row that did not unpack (loaded 2; its record is the case's first in this
         * batch) gave no old state: the fold without `cur` is that state, and stage_states
         * takes out the entries it gives */
        if (ce->loaded == 2)
            ce->orig = old.st;
        ce->st = cur_w.st;
        ce->dirty = 1;
        ce->loaded = 1;
    }
    free(old.set.it);
    free(cur_w.set.it);
    free(evs);
    free(vo);
    free(vn);
    free(recs);
    dk_iter_close(it);
    return rc;
}

static int apply_record(applier *a, const dk_record *rec)
{
    vset *vs = a->vs;
    if (rec->seq != vs->seq + 1)
        return dk_fail(DK_ECORRUPT, "views: expected record %llu, the ledger gave %llu",
                       (unsigned long long)vs->seq + 1, (unsigned long long)rec->seq);
    if (memcmp(rec->prev, vs->hash, DK_HASH_BYTES) != 0)
        return dk_fail(DK_ECORRUPT,
                       "views: record %llu does not chain: its prev is not the hash of record "
                       "%llu",
                       (unsigned long long)rec->seq, (unsigned long long)vs->seq);
    dk_leaf_hash(rec->raw, rec->raw_len, vs->hash);
    vs->seq = rec->seq;
    dk_event ev;
    if (dk_event_decode_stored(rec->body, rec->body_len, &ev) != 0)
        return dk_fail(DK_ECORRUPT, "views: record %llu's body does not decode: %s",
                       (unsigned long long)rec->seq, dk_errmsg());
    if (ev.case_id[0] == 0)
        return 0; /* ledger and actor events: no view holds them */
    centry *ce = NULL;
    int rc = cache_get(a, ev.case_id, &ce);
    if (rc)
        return rc;
    if (dk__is_meta(ev.type) || ce->loaded == 2)
        return recompute(a, ce, rec);
    dk_case_state next = ce->st;
    if (dk_case_apply(&next, rec->seq, &ev) != 0)
        return recompute(a, ce, rec); /* the stored state was not the fold: re-fold */
    step_prev before;
    dk__step_prev(&before, &ce->st);
    rc = dk__step_entries(ev.case_id, &before, &next, &ev, rec, time_from_ledger, a, emit_ov, a);
    if (rc == 0) {
        ce->st = next;
        ce->dirty = 1;
    }
    return rc;
}

static int same_entry(const sentry *a, const sentry *b)
{
    return a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
}

/* Dirty cases: their state rows and state-derived entries into the overlay. */
static int stage_states(applier *a)
{
    scache *c = a->cache;
    uint8_t row[DK_CASE_STATE_PACKED_MAX];
    sentry olde[3], newe[3];
    for (size_t i = 0; i < c->n; i++) {
        centry *e = &c->pool[i];
        if (!e->dirty)
            continue;
        size_t no = dk__state_entries(e->case_id, &e->orig, olde);
        size_t nn = dk__state_entries(e->case_id, &e->st, newe);
        int rc = 0;
        for (size_t x = 0; x < no && rc == 0; x++) {
            int kept = 0;
            for (size_t y = 0; y < nn; y++)
                kept |= olde[x].view == newe[y].view && same_entry(&olde[x], &newe[y]);
            if (!kept)
                rc = dk__ov_del(a->ov, olde[x].view, olde[x].key, olde[x].klen);
        }
        for (size_t y = 0; y < nn && rc == 0; y++) {
            int same = 0;
            for (size_t x = 0; x < no; x++)
                same |= olde[x].view == newe[y].view && same_entry(&olde[x], &newe[y]) &&
                        olde[x].val.len == newe[y].val.len &&
                        memcmp(olde[x].val.buf, newe[y].val.buf, newe[y].val.len) == 0;
            if (!same)
                rc = dk__ov_put(a->ov, newe[y].view, newe[y].key, newe[y].klen, newe[y].val.buf,
                                newe[y].val.len);
        }
        size_t len = dk_case_state_pack(&e->st, row, sizeof row);
        if (rc == 0)
            rc = dk__ov_put(a->ov, DK_VIEW_CASES, e->case_id, strlen(e->case_id), row, len);
        if (rc)
            return rc;
        e->orig = e->st;
        e->dirty = 0;
        e->loaded = 1;
    }
    return 0;
}

int dk__apply_batch(dk_views *vw, MDB_txn *txn, vset *vs, scache *cache, uint64_t end, unsigned max,
                    int record_times)
{
    applier a = {vw, txn, vs, cache, &vw->ov};
    if (cache->n + max > cache->max)
        dk__cache_clear(cache);
    if (max > cache->max)
        max = (unsigned)cache->max;
    dk__ov_reset(&vw->ov);
    vw->ntimes = 0;
    if (record_times && vw->times_cap < max) {
        int64_t *t = realloc(vw->times, max * sizeof *t);
        if (t == NULL)
            return dk_fail(DK_ENOMEM, "out of memory");
        vw->times = t;
        vw->times_cap = max;
    }
    dk_iter *it;
    int rc = dk_iter_open(vw->lg, vs->seq + 1, NULL, &it);
    if (rc)
        return rc;
    dk_record rec;
    for (unsigned n = 0; rc == 0 && n < max && vs->seq < end; n++) {
        if ((rc = dk_iter_next(it, &rec)) != 0)
            break;
        rc = apply_record(&a, &rec);
        if (rc == 0 && record_times)
            vw->times[vw->ntimes++] = rec.recorded_at;
    }
    /* `end` is at most a head read before this batch's snapshot (dk_ledger_head refuses
     * one past the log's end; a rebuild's target was such a head when it began), so every
     * record up to it is in the log: one missing is damage, not the end of the log, which
     * a step would otherwise take again and again */
    if (rc == DK_ENOTFOUND && vs->seq < end)
        rc = dk_fail(DK_ECORRUPT,
                     "views: the ledger's head is record %llu, but its log ends at record %llu",
                     (unsigned long long)end, (unsigned long long)vs->seq);
    if (rc == DK_ENOTFOUND)
        rc = 0;
    if (rc == 0)
        rc = stage_states(&a);
    if (rc == 0)
        rc = dk__flush(vw, txn, vs, &vw->ov);
    dk_iter_close(it);
    dk__ov_reset(&vw->ov);
    return rc;
}

/* A rebuild's first phase: one whole case, its records (up to the rebuild's end), folded once.
 * Thread-safe (reads the ledger only): the result is a blob of entries,
 * each view(1) kind(1) klen(2) vlen(2) count(8) key val, merged later. */
static int blob_add(uint8_t **b, size_t *len, size_t *cap, int view, int kind, const void *k,
                    size_t klen, const void *v, size_t vlen, int64_t count)
{
    size_t need = 14 + klen + vlen;
    if (*len + need > *cap) {
        size_t c = (*cap ? *cap * 2 : 1024) + need;
        uint8_t *m = realloc(*b, c);
        if (m == NULL)
            return dk_fail(DK_ENOMEM, "out of memory folding a case");
        *b = m;
        *cap = c;
    }
    uint8_t *p = *b + *len;
    p[0] = (uint8_t)view;
    p[1] = (uint8_t)kind;
    p[2] = (uint8_t)(klen >> 8);
    p[3] = (uint8_t)klen;
    p[4] = (uint8_t)(vlen >> 8);
    p[5] = (uint8_t)vlen;
    uint64_t c = (uint64_t)count;
    for (int i = 0; i < 8; i++)
        p[6 + i] = (uint8_t)(c >> (56 - 8 * i));
    memcpy(p + 14, k, klen);
    if (vlen)
        memcpy(p + 14 + klen, v, vlen);
    *len += need;
    return 0;
}

int dk__bulk_compute(const char *case_id, const dk_record *recs, size_t n, uint8_t **blob,
                     size_t *blen, size_t *bcap)
{
    int rc = 0;
    wset set = {0};
    dk_case_state st;
    memset(&st, 0, sizeof st);
    if (rc == 0 && n)
        rc = walk(case_id, recs, n, 1, &st, &set);
    for (size_t i = 0; i < set.n && rc == 0; i++) {
        const witem *w = &set.it[i];
        if (w->view == DK_VIEW_STATS)
            rc = w->count ? blob_add(blob, blen, bcap, w->view, OV_COUNT, w->key, w->klen, NULL, 0,
                                     w->count)
                          : 0;
        else
            rc = blob_add(blob, blen, bcap, w->view, OV_PUT, w->key, w->klen, w->val, w->vlen, 0);
    }
    sentry e[3];
    size_t ne = rc == 0 ? dk__state_entries(case_id, &st, e) : 0;
    for (size_t i = 0; i < ne && rc == 0; i++)
        rc = blob_add(blob, blen, bcap, e[i].view, OV_PUT, e[i].key, e[i].klen, e[i].val.buf,
                      e[i].val.len, 0);
    if (rc == 0 && n) {
        uint8_t row[DK_CASE_STATE_PACKED_MAX];
        size_t len = dk_case_state_pack(&st, row, sizeof row);
        rc = blob_add(blob, blen, bcap, DK_VIEW_CASES, OV_PUT, case_id, strlen(case_id), row, len,
                      0);
    }
    free(set.it);
    return rc;
}

/* The views whose entries a rebuild holds across its steps and writes together (bulk.c):
 * those a case's history scatters over days and months, and `queue`, whose keys put the
 * cases of a step all over each caseworker's list (by date received). Written step by
 * step, each step rewrote most of their pages (1M reused: 192 MiB written for 86 MiB of
 * views; with queue held too, 140 MiB). */
static int held_view(int view)
{
    return view == DK_VIEW_DIARY || view == DK_VIEW_STATS || view == DK_VIEW_ERRORS ||
           view == DK_VIEW_QUEUE;
}

/* The others, whose keys begin with the case id: written as each chunk comes, in order.
 * Their keys hold the case id, so chunks of distinct cases never share one. */
static int own_view(int view)
{
    return !held_view(view);
}

static size_t blob_entry_len(const uint8_t *p)
{
    return 14 + ((size_t)p[2] << 8 | p[3]) + ((size_t)p[4] << 8 | p[5]);
}

/* LMDB's order of (view, key): memcmp, a shorter key first. */
static int cmp_blob_entry(const void *a, const void *b)
{
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    size_t xl = (size_t)x[2] << 8 | x[3], yl = (size_t)y[2] << 8 | y[3];
    int c = memcmp(x + 14, y + 14, xl < yl ? xl : yl);
    return c ? c : (xl > yl) - (xl < yl);
}

int dk__bulk_sort(uint8_t *blob, size_t *len, uint8_t **own, size_t *olen, size_t *ocap)
{
    size_t n = 0, off, need = 0;
    for (off = 0; off + 14 <= *len; off += blob_entry_len(blob + off))
        if (own_view(blob[off])) {
            n++;
            need += blob_entry_len(blob + off) + DK_VIEW_DIGEST_BYTES;
        }
    *olen = 0;
    if (n == 0)
        return 0;
    const uint8_t **order = malloc(n * sizeof *order);
    if (order == NULL)
        return dk_fail(DK_ENOMEM, "out of memory folding a case");
    if (need > *ocap) {
        uint8_t *m = realloc(*own, need);
        if (m == NULL) {
            free(order);
            return dk_fail(DK_ENOMEM, "out of memory folding a case");
        }
        *own = m;
        *ocap = need;
    }
    /* Grouped by view, stably: a chunk's cases come in id order, so the views keyed by
     * the case id alone are then in order already, and only the others (by_status) are
     * sorted (200k events: 1,733.0M -> 1,723.2M instructions outside SHA-256). */
    size_t at[NV + 1] = {0};
    for (off = 0; off + 14 <= *len; off += blob_entry_len(blob + off))
        if (own_view(blob[off]) && blob[off] < NV)
            at[blob[off] + 1]++;
    for (int v = 0; v < NV; v++)
        at[v + 1] += at[v];
    size_t bad = at[NV]; /* a view byte out of range: last, for dk__bulk_put to skip */
    for (off = 0; off + 14 <= *len; off += blob_entry_len(blob + off))
        if (own_view(blob[off]))
            order[blob[off] < NV ? at[blob[off]]++ : bad++] = blob + off;
    for (size_t v = 0, from = 0; v < NV; from = at[v++]) {
        size_t i = from + 1;
        while (i < at[v] && cmp_blob_entry(&order[i - 1], &order[i]) < 0)
            i++;
        if (i < at[v])
            qsort(order + from, at[v] - from, sizeof *order, cmp_blob_entry);
    }
    /* own: the entries in order, each with its digest hash after its header */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = order[i];
        size_t klen = (size_t)p[2] << 8 | p[3], vlen = (size_t)p[4] << 8 | p[5];
        uint8_t *q = *own + *olen;
        memcpy(q, p, 14);
        dk__entry_hash(p + 14, klen, p + 14 + klen, vlen, q + 14);
        memcpy(q + 14 + DK_VIEW_DIGEST_BYTES, p + 14, klen + vlen);
        *olen += 14 + DK_VIEW_DIGEST_BYTES + klen + vlen;
    }
    free(order);
    /* blob keeps the rest, in place */
    size_t to = 0;
    for (off = 0; off + 14 <= *len;) {
        size_t el = blob_entry_len(blob + off);
        if (!own_view(blob[off])) {
            memmove(blob + to, blob + off, el);
            to += el;
        }
        off += el;
    }
    *len = to;
    return 0;
}

int dk__bulk_put(MDB_txn *txn, vset *vs, const uint8_t *own, size_t len)
{
    /* one cursor per view: the entries come sorted, and a cursor left on a leaf page
     * finds the next key there without a search from the root */
    MDB_cursor *cur[NV] = {0};
    int append[NV] = {0};
    int rc = 0;
    for (size_t off = 0; rc == 0 && off + 14 + DK_VIEW_DIGEST_BYTES <= len;) {
        const uint8_t *p = own + off;
        size_t klen = (size_t)p[2] << 8 | p[3], vlen = (size_t)p[4] << 8 | p[5];
        const uint8_t *key = p + 14 + DK_VIEW_DIGEST_BYTES;
        off += 14 + DK_VIEW_DIGEST_BYTES + klen + vlen;
        int v = p[0];
        if (v >= NV || !(vs->mask & BIT(v)))
            continue;
        if (cur[v] == NULL) {
            if ((rc = mdb_cursor_open(txn, vs->dbi[v], &cur[v])) != 0) {
                rc = dk__mdb_fail(rc, "cannot open a cursor");
                break;
            }
            /* past the view's last key: appended (no search, and a full page is left
             * full when the next is begun) */
            MDB_val lk, lv;
            int m = mdb_cursor_get(cur[v], &lk, &lv, MDB_LAST);
            if (m == MDB_NOTFOUND) {
                append[v] = 1;
            } else if (m == 0) {
                size_t l = lk.mv_size < klen ? lk.mv_size : klen;
                int c = memcmp(key, lk.mv_data, l);
                append[v] = c > 0 || (c == 0 && klen > lk.mv_size);
            } else {
                rc = dk__mdb_fail(m, "cannot read a view's last entry");
                break;
            }
        }
        if (append[v]) {
            MDB_val k = {klen, (void *)key}, d = {vlen, (void *)(key + klen)};
            int m = mdb_cursor_put(cur[v], &k, &d, MDB_APPEND);
            if (m == 0) {
                dk__digest_xor(vs->digest[v], p + 14);
                vs->count[v]++;
                continue;
            }
            if (m != MDB_KEYEXIST) {
                rc = dk__mdb_fail(m, "cannot write a view entry");
                break;
            }
            append[v] = 0;
        }
        rc = dk__view_put(txn, cur[v], vs, v, key, klen, key + klen, vlen, p + 14);
    }
    for (int v = 0; v < NV; v++)
        if (cur[v])
            mdb_cursor_close(cur[v]);
    return rc;
}

int dk__bulk_merge(overlay *ov, overlay *scatter, const uint8_t *b, size_t len)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0 && off + 14 <= len) {
        const uint8_t *p = b + off;
        size_t klen = (size_t)p[2] << 8 | p[3], vlen = (size_t)p[4] << 8 | p[5];
        uint64_t c = 0;
        for (int i = 0; i < 8; i++)
            c = c << 8 | p[6 + i];
        overlay *to = held_view(p[0]) ? scatter : ov;
        if (p[1] == OV_COUNT)
            rc = dk__ov_count(to, p[0], p + 14, klen, (int64_t)c);
        else
            rc = dk__ov_put(to, p[0], p + 14, klen, p + 14 + klen, vlen);
        off += 14 + klen + vlen;
    }
    return rc;
}
