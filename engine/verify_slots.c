/* verify_slots.c - verify's interviewer double-booking check: every case's slot changes
 * replayed together in seq order as the writer saw them, and the slot index compared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "ledger_int.h"

/* A case holding a slot from seq `from` (the event that gave it) until seq `to` (the
 * event that moved or freed it; UINT64_MAX if it still holds it). */
typedef struct holding {
    uint32_t who; /* index into the interviewer table */
    uint64_t from, to;
    int64_t start, end;
    const char *case_id; /* borrowed from the verify's snapshot */
    size_t case_len;
} holding;

struct dk__slots {
    holding *h;
    size_t n, cap;
    char (*names)[DK_ACTOR_MAX + 1]; /* interviewers, in first-seen order */
    size_t nnames, names_cap;
    uint32_t *slot; /* open addressing over names: 0 empty, else index + 1 */
    size_t nslots;  /* a power of two, at least twice nnames */
};

int dk__slots_open(dk__slots **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : dk__fail(DK_ENOMEM, "out of memory");
}

void dk__slots_close(dk__slots *s)
{
    if (s == NULL)
        return;
    free(s->h);
    free(s->names);
    free(s->slot);
    free(s);
}

static size_t name_hash(const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 1099511628211ull;
    return (size_t)h;
}

/* The interviewer's index, adding it if new: a hash lookup, not a scan of every name. */
static int intern(dk__slots *s, const char *name, uint32_t *idx)
{
    size_t mask = s->nslots - 1, i = s->nslots ? name_hash(name) & mask : 0;
    for (; s->nslots && s->slot[i]; i = (i + 1) & mask)
        if (strcmp(s->names[s->slot[i] - 1], name) == 0) {
            *idx = s->slot[i] - 1;
            return 0;
        }
    if (s->nnames == s->names_cap) {
        size_t cap = s->names_cap ? 2 * s->names_cap : 16;
        char(*more)[DK_ACTOR_MAX + 1] = realloc(s->names, cap * sizeof *more);
        uint32_t *slot = calloc(2 * cap, sizeof *slot);
        if (more)
            s->names = more;
        if (more == NULL || slot == NULL) {
            free(slot);
            return dk__fail(DK_ENOMEM, "out of memory");
        }
        s->names_cap = cap;
        free(s->slot);
        s->slot = slot;
        s->nslots = 2 * cap;
        mask = s->nslots - 1;
        for (size_t n = 0; n < s->nnames; n++) { /* rehash */
            size_t j = name_hash(s->names[n]) & mask;
            while (s->slot[j])
                j = (j + 1) & mask;
            s->slot[j] = (uint32_t)n + 1;
        }
        for (i = name_hash(name) & mask; s->slot[i]; i = (i + 1) & mask)
            ;
    }
    snprintf(s->names[s->nnames], sizeof s->names[0], "%s", name);
    s->slot[i] = (uint32_t)s->nnames + 1;
    *idx = (uint32_t)s->nnames++;
    return 0;
}

int dk__slots_add(dk__slots *s, const dk__slot_move *moves, size_t n, const char *case_id,
                  size_t case_len)
{
    for (size_t i = 0; i < n; i++) {
        if (!moves[i].active)
            continue;
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 256;
            holding *more = realloc(s->h, cap * sizeof *more);
            if (more == NULL)
                return dk__fail(DK_ENOMEM, "out of memory");
            s->h = more;
            s->cap = cap;
        }
        holding *h = &s->h[s->n];
        int rc = intern(s, moves[i].interviewer, &h->who);
        if (rc)
            return rc;
        h->from = moves[i].seq;
        h->to = i + 1 < n ? moves[i + 1].seq : UINT64_MAX;
        h->start = moves[i].start;
        h->end = moves[i].end;
        h->case_id = case_id;
        h->case_len = case_len;
        s->n++;
    }
    return 0;
}

static int by_who_then_from(const void *a, const void *b)
{
    const holding *x = a, *y = b;
    if (x->who != y->who)
        return x->who < y->who ? -1 : 1;
    return x->from < y->from ? -1 : x->from > y->from;
}

static int same_case(const holding *a, const holding *b)
{
    return a->case_len == b->case_len && memcmp(a->case_id, b->case_id, a->case_len) == 0;
}

/* The slot index as the bookings held at the end give it, compared entry by entry. */
static int check_index(dk_ledger *lg, MDB_txn *txn, dk__slots *s, uint64_t head,
                       dk_verify_report *rep)
{
    size_t held = 0;
    for (size_t i = 0; i < s->n; i++) {
        const holding *h = &s->h[i];
        if (h->to != UINT64_MAX)
            continue;
        held++;
        const char *who = s->names[h->who];
        uint8_t key[DK_ACTOR_MAX + 9];
        MDB_val k = {dk__slot_key(key, who, h->start), key}, v;
        int got = mdb_get(txn, lg->slots, &k, &v);
        if (got != 0 && got != MDB_NOTFOUND)
            return dk__mdb_err(got, "cannot read the slot index");
        if (got == MDB_NOTFOUND || v.mv_size != 8 + h->case_len ||
            (int64_t)dk_get_be64(v.mv_data) != h->end ||
            memcmp((const uint8_t *)v.mv_data + 8, h->case_id, h->case_len) != 0)
            return dk__verify_bad(rep, h->from,
                                  "the slot index does not hold case '%.*s''s booking of "
                                  "interviewer '%s' as its events leave it",
                                  (int)h->case_len, h->case_id, who);
    }
    MDB_stat st;
    int rc = mdb_stat(txn, lg->slots, &st);
    if (rc)
        return dk__mdb_err(rc, "cannot read the slot index");
    if (st.ms_entries != held)
        return dk__verify_bad(rep, head,
                              "the slot index holds %zu bookings; the cases' events leave %zu",
                              (size_t)st.ms_entries, held);
    return 0;
}

int dk__slots_check(dk_ledger *lg, MDB_txn *txn, dk__slots *s, uint64_t head, dk_verify_report *rep)
{
    if (s->n)
        qsort(s->h, s->n, sizeof *s->h, by_who_then_from);
    /* Per interviewer, in seq order: when a case took a slot, no other case may have held
     * an overlapping one (the writer refuses such a booking). */
    size_t *alive = malloc((s->n ? s->n : 1) * sizeof *alive);
    if (alive == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    int r = 0;
    uint64_t worst = UINT64_MAX;
    size_t wi = 0, wj = 0;
    for (size_t g = 0; g < s->n;) {
        size_t end = g, na = 0;
        while (end < s->n && s->h[end].who == s->h[g].who)
            end++;
        for (size_t i = g; i < end; i++) {
            const holding *h = &s->h[i];
            size_t keep = 0;
            for (size_t a = 0; a < na; a++) {
                const holding *o = &s->h[alive[a]];
                if (o->to <= h->from)
                    continue; /* released before this booking */
                alive[keep++] = alive[a];
                if (!same_case(o, h) && o->start < h->end && h->start < o->end && h->from < worst) {
                    worst = h->from;
                    wi = i;
                    wj = alive[a];
                }
            }
            na = keep;
            alive[na++] = i;
        }
        g = end;
    }
    free(alive);
    if (worst != UINT64_MAX) {
        const holding *h = &s->h[wi], *o = &s->h[wj];
        char a[DK_TIME_LEN], b[DK_TIME_LEN];
        dk_time_format(o->start, a);
        dk_time_format(o->end, b);
        r = dk__verify_bad(rep, worst,
                           "interviewer '%s' double-booked: case '%.*s' took a slot overlapping "
                           "case '%.*s''s, %s to %s",
                           s->names[h->who], (int)h->case_len, h->case_id, (int)o->case_len,
                           o->case_id, a, b);
    }
    if (r == 0)
        r = check_index(lg, txn, s, head, rep);
    return r;
}
