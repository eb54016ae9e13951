/* render.c - view entries as one line of text (dumps, golden tests, views check),
 * and the entry-by-entry comparison of a stored view with a fresh replay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "views_int.h"

/* Bytes in the well-formed UTF-8 sequence at s[0..n) (Unicode's table 3-7), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c < 0xc2 || c > 0xf4 || len > n)
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Append s to out, quoted JSON-style unless it is a plain word; a byte that is not part of
 * well-formed UTF-8 (a damaged entry) is written \xNN, so that the line is valid text. */
static void put_word(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    int plain = n > 0;
    for (size_t i = 0; i < n && plain; i++) {
        unsigned char c = (unsigned char)s[i];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                strchr("._@:+-/,*", c) != NULL;
    }
    if (plain) {
        *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "%.*s", (int)n, s);
    } else {
        *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "\"");
        for (size_t i = 0, u; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\')
                *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "\\%c", c);
            else if (c < 0x20 || c == 0x7f)
                *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "\\u%04x", c);
            else if (c < 0x80)
                *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "%c", c);
            else if ((u = utf8_len((const unsigned char *)s + i, n - i)) == 0)
                *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "\\x%02x", c);
            else if (u == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0) { /* C1 control */
                *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "\\u%04x",
                                       (unsigned char)s[i + 1]);
                i++;
            } else if (*o + u < cap) { /* whole, or not at all: never half a character */
                memcpy(out + *o, s + i, u);
                *o += u;
                out[*o] = 0;
                i += u - 1;
            } else {
                *o = cap;
                break;
            }
        }
        *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "\"");
    }
    if (*o >= cap)
        *o = cap - 1;
}

static void put_sep(char *out, size_t cap, size_t *o)
{
    if (*o > 0 && *o + 1 < cap) {
        out[(*o)++] = ' ';
        out[*o] = 0;
    }
}

static void put_field(char *out, size_t cap, size_t *o, const char *name, const char *v)
{
    if (v[0] == 0)
        return;
    put_sep(out, cap, o);
    *o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, "%s=", name);
    if (*o >= cap)
        *o = cap - 1;
    put_word(out, cap, o, v, strlen(v));
}

static void time_field(char *out, size_t cap, size_t *o, const char *name, const char *us)
{
    char t[DK_TIME_LEN];
    if (us[0] == 0)
        return;
    dk_time_format(strtoll(us, NULL, 10), t);
    put_field(out, cap, o, name, t);
}

void dk__render_key(int view, const uint8_t *k, size_t klen, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    uint64_t booked_at = 0; /* a diary key ends NUL, then the booking's seq */
    if (view == DK_VIEW_DIARY && klen >= 19 + 9 && k[klen - 9] == 0) {
        char t[DK_TIME_LEN];
        put_word(out, cap, &o, (const char *)k, 10);
        dk_time_format((int64_t)(dk_get_be64(k + 11) ^ (1ull << 63)), t);
        put_sep(out, cap, &o);
        put_word(out, cap, &o, t, strlen(t));
        booked_at = dk_get_be64(k + klen - 8);
        k += 19;
        klen -= 19 + 9;
    } else if (view == DK_VIEW_ERRORS && klen == 9) {
        snprintf(out, cap, "%s %llu", k[0] == 'o' ? "open" : "resolved",
                 (unsigned long long)dk_get_be64(k + 1));
        return;
    }
    /* NUL-separated parts */
    while (klen > 0 || o == 0) {
        const uint8_t *z = memchr(k, 0, klen);
        size_t n = z ? (size_t)(z - k) : klen;
        put_sep(out, cap, &o);
        put_word(out, cap, &o, (const char *)k, n);
        if (z == NULL)
            break;
        k += n + 1;
        klen -= n + 1;
    }
    if (booked_at && o < cap)
        snprintf(out + o, cap - o, " booked_at=%llu", (unsigned long long)booked_at);
}

static const char *const status_fields[] = {"status",
                                            "type",
                                            "channel",
                                            "received_on",
                                            "assignee",
                                            "version",
                                            "last_seq",
                                            "voided",
                                            "outcome",
                                            "immigration_status",
                                            "conditions",
                                            "valid_until",
                                            "interview",
                                            "interviewer",
                                            "open_errors",
                                            "appeal",
                                            "leave_cancelled_seq",
                                            "leave_grant_seq"};

void dk__render_val(int view, const uint8_t *v, size_t vlen, char *out, size_t cap)
{
    size_t o = 0;
    char f[512];
    out[0] = 0;
    switch (view) {
    case DK_VIEW_CASES: {
        dk_case_state st;
        if (dk_case_state_unpack(v, vlen, &st) != 0) {
            snprintf(out, cap, "(unreadable state row of %zu bytes)", vlen);
            return;
        }
        o = (size_t)snprintf(out, cap,
                             "status=%s version=%llu last_seq=%llu voided=%llu decision_seq=%llu "
                             "interview_seq=%llu open_errors=%u",
                             dk_status_name(st.status), (unsigned long long)st.version,
                             (unsigned long long)st.last_seq, (unsigned long long)st.voided,
                             (unsigned long long)st.decision.seq,
                             (unsigned long long)st.interview.seq, st.open_errors);
        if (o >= cap)
            o = cap - 1;
        put_field(out, cap, &o, "assignee", st.assignee);
        return;
    }
    case DK_VIEW_CASE_STATUS:
        for (unsigned i = 0; i < sizeof status_fields / sizeof status_fields[0]; i++) {
            dk__tup_get(v, vlen, i, f, sizeof f);
            if (!(i == 7 || i == 14 || i >= 16) || strcmp(f, "0") != 0)
                put_field(out, cap, &o, status_fields[i], f);
        }
        return;
    case DK_VIEW_BY_STATUS:
        return;
    case DK_VIEW_QUEUE:
        dk__tup_get(v, vlen, 0, f, sizeof f);
        put_field(out, cap, &o, "status", f);
        return;
    case DK_VIEW_DIARY:
        dk__tup_get(v, vlen, 1, f, sizeof f);
        put_field(out, cap, &o, "until", f);
        dk__tup_get(v, vlen, 2, f, sizeof f);
        put_field(out, cap, &o, "location", f);
        dk__tup_get(v, vlen, 3, f, sizeof f);
        put_field(out, cap, &o, "state", f);
        return;
    case DK_VIEW_STATS:
        snprintf(out, cap, "count=%llu",
                 vlen == 8 ? (unsigned long long)dk_get_be64(v) : (unsigned long long)0);
        return;
    case DK_VIEW_ERRORS:
        dk__tup_get(v, vlen, 0, f, sizeof f);
        put_field(out, cap, &o, "case", f);
        dk__tup_get(v, vlen, 1, f, sizeof f);
        time_field(out, cap, &o, "reported", f);
        dk__tup_get(v, vlen, 2, f, sizeof f);
        time_field(out, cap, &o, "resolved", f);
        dk__tup_get(v, vlen, 3, f, sizeof f);
        put_field(out, cap, &o, "by_seq", f);
        dk__tup_get(v, vlen, 4, f, sizeof f);
        if (f[0]) {
            char s[40];
            snprintf(s, sizeof s, "%lld", strtoll(f, NULL, 10) / 1000000);
            put_field(out, cap, &o, "took_s", s);
        }
        return;
    }
}

/* ---- comparing a stored view with a fresh replay ---- */

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void diff(dk_views *vw, int view, const char *key, const char *stored, const char *fresh)
{
    dk_views_check_report *r = &vw->check_rep;
    r->ok = 0;
    r->damaged |= BIT(view);
    if (vw->check_fn && (vw->check_max == 0 || r->differences < vw->check_max))
        vw->check_fn(vw->check_ud, dk_view_name(view), key, stored, fresh);
    r->differences++;
}

static int compare_view(dk_views *vw, MDB_txn *txn, int view, MDB_dbi sdb, MDB_dbi fdb,
                        uint8_t sdig[DK_VIEW_DIGEST_BYTES])
{
    MDB_cursor *sc, *fc;
    int rc = mdb_cursor_open(txn, sdb, &sc);
    if (rc)
        return dk__mdb_fail(rc, "cannot open a cursor");
    if ((rc = mdb_cursor_open(txn, fdb, &fc)) != 0) {
        mdb_cursor_close(sc);
        return dk__mdb_fail(rc, "cannot open a cursor");
    }
    char kt[2048], a[4096], b[4096];
    uint8_t h[DK_VIEW_DIGEST_BYTES];
    memset(sdig, 0, DK_VIEW_DIGEST_BYTES);
    MDB_val sk, sv, fk, fv;
    int srv = mdb_cursor_get(sc, &sk, &sv, MDB_FIRST);
    int frv = mdb_cursor_get(fc, &fk, &fv, MDB_FIRST);
    while (srv == 0 || frv == 0) {
        int c;
        if (srv != 0)
            c = 1;
        else if (frv != 0)
            c = -1;
        else {
            size_t n = sk.mv_size < fk.mv_size ? sk.mv_size : fk.mv_size;
            c = memcmp(sk.mv_data, fk.mv_data, n);
            if (c == 0)
                c = sk.mv_size < fk.mv_size ? -1 : sk.mv_size > fk.mv_size;
        }
        if (c <= 0) {
            dk__entry_hash(sk.mv_data, sk.mv_size, sv.mv_data, sv.mv_size, h);
            dk__digest_xor(sdig, h);
        }
        if (c < 0) {
            dk__render_key(view, sk.mv_data, sk.mv_size, kt, sizeof kt);
            dk__render_val(view, sv.mv_data, sv.mv_size, a, sizeof a);
            diff(vw, view, kt, a, NULL);
            srv = mdb_cursor_get(sc, &sk, &sv, MDB_NEXT);
        } else if (c > 0) {
            dk__render_key(view, fk.mv_data, fk.mv_size, kt, sizeof kt);
            dk__render_val(view, fv.mv_data, fv.mv_size, b, sizeof b);
            diff(vw, view, kt, NULL, b);
            frv = mdb_cursor_get(fc, &fk, &fv, MDB_NEXT);
        } else {
            if (sv.mv_size != fv.mv_size || memcmp(sv.mv_data, fv.mv_data, sv.mv_size) != 0) {
                dk__render_key(view, sk.mv_data, sk.mv_size, kt, sizeof kt);
                dk__render_val(view, sv.mv_data, sv.mv_size, a, sizeof a);
                dk__render_val(view, fv.mv_data, fv.mv_size, b, sizeof b);
                if (strcmp(a, b) == 0) /* same rendering, different bytes */
                    snprintf(b + strlen(b), sizeof b - strlen(b), " (bytes differ)");
                diff(vw, view, kt, a, b);
            }
            srv = mdb_cursor_get(sc, &sk, &sv, MDB_NEXT);
            frv = mdb_cursor_get(fc, &fk, &fv, MDB_NEXT);
        }
    }
    mdb_cursor_close(sc);
    mdb_cursor_close(fc);
    if ((srv && srv != MDB_NOTFOUND) || (frv && frv != MDB_NOTFOUND))
        return dk__mdb_fail(srv && srv != MDB_NOTFOUND ? srv : frv, "cannot read a view");
    return 0;
}

int dk__compare(dk_views *vw, MDB_txn *txn, const vset *live, const vset *b)
{
    dk_views_check_report *r = &vw->check_rep;
    r->seq = b->seq;
    for (int v = 0; v < NV; v++) {
        if (!(vw->check_mask & BIT(v)) || !(b->mask & BIT(v)))
            continue;
        r->views_checked++;
        if (!(live->mask & BIT(v))) {
            diff(vw, v, "(checkpoint)", "missing, stale or of another version", "built");
            continue;
        }
        /* the checkpoint names the record it was applied up to: it must be this ledger's */
        if (memcmp(live->hash, b->hash, DK_HASH_BYTES) != 0) {
            char x[80], y[80];
            hex(live->hash, 16, x);
            hex(b->hash, 16, y);
            strcat(x, "... (not this ledger's record)");
            strcat(y, "...");
            diff(vw, v, "(checkpoint hash)", x, y);
        }
        uint8_t sdig[DK_VIEW_DIGEST_BYTES];
        int rc = compare_view(vw, txn, v, live->dbi[v], b->dbi[v], sdig);
        if (rc)
            return rc;
        char x[160], y[160];
        if (memcmp(live->digest[v], b->digest[v], DK_VIEW_DIGEST_BYTES) != 0 ||
            memcmp(sdig, live->digest[v], DK_VIEW_DIGEST_BYTES) != 0) {
            hex(live->digest[v], DK_VIEW_DIGEST_BYTES, x);
            if (memcmp(sdig, live->digest[v], DK_VIEW_DIGEST_BYTES) != 0) {
                strcat(x, " (entries give ");
                hex(sdig, DK_VIEW_DIGEST_BYTES, x + strlen(x));
                strcat(x, ")");
            }
            hex(b->digest[v], DK_VIEW_DIGEST_BYTES, y);
            diff(vw, v, "(digest)", x, y);
        }
        if (live->count[v] != b->count[v]) {
            snprintf(x, sizeof x, "%llu", (unsigned long long)live->count[v]);
            snprintf(y, sizeof y, "%llu", (unsigned long long)b->count[v]);
            diff(vw, v, "(entries)", x, y);
        }
    }
    return 0;
}
