/* codec_read.c - reading what the ledger stored: records, event bodies and data fields,
 * parsed directly from their one canonical msgpack form, with no zone and no re-encode. */
#include <stddef.h>
#include <string.h>

#include "docket/error.h"
#include "docket/event.h"
#include "engine_int.h"

/* ---- a reader of canonical msgpack (the shortest forms msgpack-c packs) ----
 * Accepts exactly the bytes codec.c's packers write. test_codec checks every reader here
 * against msgpack-c with a re-encode, on valid bytes and thousands of mutations. */

typedef struct rd {
    const uint8_t *p, *end;
    const char *why; /* the first failure */
} rd;

static int rd_fail(rd *r, const char *why)
{
    if (r->why == NULL)
        r->why = why;
    return -1;
}

static int rd_take(rd *r, size_t n, const uint8_t **out)
{
    if ((size_t)(r->end - r->p) < n)
        return rd_fail(r, "is truncated");
    *out = r->p;
    r->p += n;
    return 0;
}

/* The next byte, not consumed; -1 at the end. */
static int rd_peek(const rd *r)
{
    return r->p < r->end ? r->p[0] : -1;
}

static uint64_t rd_be(const uint8_t *b, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | b[i];
    return x;
}

/* An integer in msgpack-c's shortest form: -2^63 .. 2^64-1 in *u (or *i if negative). */
static int rd_int(rd *r, uint64_t *u, int64_t *i, int *neg)
{
    const uint8_t *b;
    if (rd_take(r, 1, &b))
        return -1;
    uint8_t c = b[0];
    *neg = 0;
    if (c <= 0x7f) {
        *u = c;
        return 0;
    }
    if (c >= 0xe0) {
        *neg = 1;
        *i = (int8_t)c;
        return 0;
    }
    /* 0xcc-0xcf: uint 8-64; 0xd0-0xd3: int 8-64. `lo` is the smallest magnitude each
     * form may carry canonically (a smaller one fits a shorter form). */
    static const uint64_t lo[8] = {0x80, 0x100, 0x10000, 0x100000000, 33, 129, 32769, 2147483649u};
    if (c < 0xcc || c > 0xd3)
        return rd_fail(r, "has a field that is not an integer where one is expected");
    unsigned f = c - 0xcc, len = 1u << (f & 3);
    if (rd_take(r, len, &b))
        return -1;
    /* a constant width per case: each becomes a load and a byte swap */
    uint64_t x = len == 1 ? b[0] : len == 2 ? rd_be(b, 2) : len == 4 ? rd_be(b, 4) : rd_be(b, 8);
    if (f < 4) {
        if (x < lo[f])
            return rd_fail(r, "is not in canonical form (integer encoding)");
        *u = x;
        return 0;
    }
    /* sign-extend, then demand the value did not fit a shorter form */
    unsigned bits = 8u * len;
    int64_t v = bits == 64 ? (int64_t)x
                           : (int64_t)(x ^ (1ull << (bits - 1))) - (int64_t)(1ull << (bits - 1));
    if (v >= 0 || (uint64_t)(-(v + 1)) + 1 < lo[f])
        return rd_fail(r, "is not in canonical form (integer encoding)");
    *neg = 1;
    *i = v;
    return 0;
}

/* A length after a header byte: hl bytes, at least `lo` (else a shorter form fits). */
static int rd_len(rd *r, size_t hl, uint64_t lo, size_t *len)
{
    const uint8_t *b;
    if (rd_take(r, hl, &b))
        return -1;
    *len = (size_t)rd_be(b, hl);
    if (*len < lo)
        return rd_fail(r, "is not in canonical form (length encoding)");
    return 0;
}

/* A binary string in its shortest header; its bytes stay in the input. */
static int rd_bin(rd *r, const uint8_t **data, size_t *len)
{
    const uint8_t *b;
    if (rd_take(r, 1, &b))
        return -1;
    size_t hl = b[0] == 0xc4 ? 1 : b[0] == 0xc5 ? 2 : b[0] == 0xc6 ? 4 : 0;
    if (hl == 0)
        return rd_fail(r, "has a field that is not binary where binary is expected");
    if (rd_len(r, hl, hl == 1 ? 0 : hl == 2 ? 256 : 65536, len))
        return -1;
    return rd_take(r, *len, data);
}

/* A text string in its shortest header; its bytes stay in the input. */
static int rd_str(rd *r, const char **s, size_t *len)
{
    const uint8_t *b;
    if (rd_take(r, 1, &b))
        return -1;
    uint8_t c = b[0];
    if ((c & 0xe0) == 0xa0)
        *len = c & 0x1f;
    else if (c == 0xd9 || c == 0xda || c == 0xdb) {
        size_t hl = c == 0xd9 ? 1 : c == 0xda ? 2 : 4;
        if (rd_len(r, hl, hl == 1 ? 32 : hl == 2 ? 256 : 65536, len))
            return -1;
    } else
        return rd_fail(r, "has a field that is not a string where one is expected");
    if (rd_take(r, *len, &b))
        return -1;
    *s = (const char *)b;
    return 0;
}

/* An array (map) header in its shortest form: its count of elements (pairs). */
static int rd_container(rd *r, int map, size_t *n)
{
    const uint8_t *b;
    if (rd_take(r, 1, &b))
        return -1;
    uint8_t c = b[0], fix = map ? 0x80 : 0x90, w16 = map ? 0xde : 0xdc;
    if ((c & 0xf0) == fix) {
        *n = c & 0x0f;
        return 0;
    }
    if (c == w16 || c == w16 + 1)
        return rd_len(r, c == w16 ? 2 : 4, c == w16 ? 16 : 65536, n);
    return rd_fail(r, map ? "has a field that is not a map where one is expected"
                          : "has a field that is not an array where one is expected");
}

/* An array header that must announce exactly n (< 16) elements. */
static int rd_fixarray(rd *r, unsigned lo, unsigned hi, unsigned *n, const char *what)
{
    const uint8_t *b;
    if (rd_take(r, 1, &b))
        return -1;
    if ((b[0] & 0xf0) != 0x90 || (b[0] & 0x0f) < lo || (b[0] & 0x0f) > hi)
        return rd_fail(r, what);
    *n = b[0] & 0x0f;
    return 0;
}

/* Step over one value of the kinds a body may hold (nil, booleans, integers, strings,
 * binary, arrays and maps), `depth` levels deep; DK_DEPTH_MAX levels at most. */
static int rd_skip(rd *r, int depth)
{
    if (depth > DK_DEPTH_MAX)
        return rd_fail(r, "is nested too deeply");
    int c = rd_peek(r);
    uint64_t u;
    int64_t i;
    int neg;
    const char *s;
    const uint8_t *b;
    size_t n;
    if (c < 0)
        return rd_fail(r, "is truncated");
    if (c == 0xc0 || c == 0xc2 || c == 0xc3)
        return rd_take(r, 1, &b);
    if (c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3))
        return rd_int(r, &u, &i, &neg);
    if ((c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb)
        return rd_str(r, &s, &n);
    if (c >= 0xc4 && c <= 0xc6)
        return rd_bin(r, &b, &n);
    int map = (c & 0xf0) == 0x80 || c == 0xde || c == 0xdf;
    if (!map && (c & 0xf0) != 0x90 && c != 0xdc && c != 0xdd)
        return rd_fail(r, "holds a float or an extension, which docket never stores");
    if (rd_container(r, map, &n))
        return -1;
    for (size_t k = 0; k < n * (map ? 2u : 1u); k++)
        if (rd_skip(r, depth + 1))
            return -1;
    return 0;
}

/* ---- records: [version, seq, recorded_at, prev, body, [[actor, sig], ...]] ---- */

/* How much of a record record_decode reads. */
enum { REC_CHAINED, REC_UNSIGNED, REC_SIGNED };

/* A record; its signatures too if REC_SIGNED (with REC_UNSIGNED they are stepped over,
 * checked; with REC_CHAINED not read at all: nsigs is 0 with either). */
static int record_decode(const uint8_t *raw, size_t len, dk_record *rec, int how)
{
    int sigs = how == REC_SIGNED;
    /* the fields before the signatures, and each signature as it is read: a whole
     * dk_record is 600 bytes, most of them room for four signers (1M rebuild: this
     * function 3.7% -> 3.2% of the CPU) */
    memset(rec, 0, offsetof(dk_record, sigs));
    rd r = {raw, raw + len, NULL};
    unsigned n;
    uint64_t u = 0;
    int64_t i = 0;
    int neg;
    const uint8_t *b;
    size_t bl;
    if (rd_fixarray(&r, 6, 6, &n, "must be an array of 6 fields"))
        goto bad;
    if (rd_int(&r, &u, &i, &neg))
        goto bad;
    if (neg || u != DK_RECORD_VERSION) {
        rd_fail(&r, "has an unknown layout version");
        goto bad;
    }
    if (rd_int(&r, &u, &i, &neg))
        goto bad;
    if (neg || u == 0) {
        rd_fail(&r, "seq must be a positive integer");
        goto bad;
    }
    rec->seq = u;
    if (rd_int(&r, &u, &i, &neg))
        goto bad;
    if (!neg && u > INT64_MAX) {
        rd_fail(&r, "recorded_at must be a 64-bit signed integer");
        goto bad;
    }
    rec->recorded_at = neg ? i : (int64_t)u;
    if (rd_bin(&r, &b, &bl))
        goto bad;
    if (bl != DK_HASH_BYTES) {
        rd_fail(&r, "prev must be a 32-byte hash");
        goto bad;
    }
    memcpy(rec->prev, b, DK_HASH_BYTES);
    if (rd_bin(&r, &rec->body, &rec->body_len))
        goto bad;
    if (rec->body_len > DK_BODY_MAX) {
        rd_fail(&r, "body is over the size limit");
        goto bad;
    }
    if (how == REC_CHAINED) {
        rec->raw = raw;
        rec->raw_len = len;
        return 0;
    }
    if (rd_fixarray(&r, 1, DK_SIGS_MAX, &n, "must carry 1..4 signatures"))
        goto bad;
    /* Without `sigs` each signature is checked the same but not kept: stepping over it
     * with rd_skip took 245 instructions a record, more than reading it (200k events, the
     * rebuild's instructions outside SHA-256: 1,696.2M -> 1,659.6M). */
    for (size_t s = 0; s < n; s++) {
        unsigned two;
        const char *a;
        size_t al;
        if (rd_fixarray(&r, 2, 2, &two, "has a signature that is not [actor, signature]"))
            goto bad;
        int c = rd_peek(&r);
        if (c != 0xd9 && (c & 0xe0) != 0xa0) {
            rd_fail(&r, "has a signer that is not a short string");
            goto bad;
        }
        if (rd_str(&r, &a, &al))
            goto bad;
        if (al > DK_ACTOR_MAX || memchr(a, 0, al) != NULL) {
            rd_fail(&r, "has a signer id that is too long or contains a NUL byte");
            goto bad;
        }
        if (rd_bin(&r, &b, &bl))
            goto bad;
        if (bl != DK_SIG_BYTES) {
            rd_fail(&r, "has a signature that is not 64 bytes");
            goto bad;
        }
        if (sigs) {
            memcpy(rec->sigs[s].actor, a, al);
            rec->sigs[s].actor[al] = 0;
            memcpy(rec->sigs[s].sig, b, DK_SIG_BYTES);
        }
    }
    rec->nsigs = sigs ? n : 0;
    for (size_t s = rec->nsigs; s < DK_SIGS_MAX; s++)
        rec->sigs[s].actor[0] = 0; /* unused: no signer (their signature bytes are not set) */
    if (r.p != r.end) {
        rd_fail(&r, "has trailing bytes");
        goto bad;
    }
    rec->raw = raw;
    rec->raw_len = len;
    return 0;
bad:
    memset(rec, 0, sizeof *rec);
    return dk__fail(DK_EDECODE, "record %s", r.why);
}

int dk_record_decode(const uint8_t *raw, size_t len, dk_record *rec)
{
    return record_decode(raw, len, rec, REC_SIGNED);
}

int dk_record_decode_unsigned(const uint8_t *raw, size_t len, dk_record *rec)
{
    return record_decode(raw, len, rec, REC_UNSIGNED);
}

int dk_record_decode_chained(const uint8_t *raw, size_t len, dk_record *rec)
{
    return record_decode(raw, len, rec, REC_CHAINED);
}

int dk_record_head(const uint8_t *raw, size_t len, uint64_t *seq, uint8_t prev[DK_HASH_BYTES])
{
    rd r = {raw, raw + len, NULL};
    unsigned n;
    uint64_t u = 0, s = 0;
    int64_t i = 0;
    int neg = 0;
    const uint8_t *b;
    size_t bl = 0;
    if (rd_fixarray(&r, 6, 6, &n, "must be an array of 6 fields") == 0 &&
        rd_int(&r, &u, &i, &neg) == 0 && (neg || u != DK_RECORD_VERSION))
        rd_fail(&r, "has an unknown layout version");
    if (r.why == NULL && rd_int(&r, &s, &i, &neg) == 0 && (neg || s == 0))
        rd_fail(&r, "seq must be a positive integer");
    if (r.why == NULL && rd_int(&r, &u, &i, &neg) == 0 && !neg && u > INT64_MAX)
        rd_fail(&r, "recorded_at must be a 64-bit signed integer");
    if (r.why == NULL && rd_bin(&r, &b, &bl) == 0 && bl != DK_HASH_BYTES)
        rd_fail(&r, "prev must be a 32-byte hash");
    if (r.why)
        return dk__fail(DK_EDECODE, "record %s", r.why);
    *seq = s;
    memcpy(prev, b, DK_HASH_BYTES);
    return 0;
}

/* ---- event bodies read back ---- */

/* Body keys, in their one canonical order (as codec.c writes them). decode_fast spells each
 * out again as the bytes packed: a key renamed here and not there sends every body to the
 * general reader, which is still right, only slower. */
static const struct body_key {
    const char *name;
    size_t len;
    int optional;
} body_keys[] = {{"v", 1, 0},   {"type", 4, 0}, {"case", 4, 0},   {"actor", 5, 0}, {"at", 2, 0},
                 {"eff", 3, 1}, {"cmd", 3, 0},  {"expect", 6, 1}, {"data", 4, 0}};
enum { K_V, K_TYPE, K_CASE, K_ACTOR, K_AT, K_EFF, K_CMD, K_EXPECT, K_DATA, K_COUNT };

/* A string field into a fixed buffer: shorter than cap, no NUL. */
static int take_str(rd *r, char *dst, size_t cap)
{
    const char *s;
    size_t n;
    if (rd_str(r, &s, &n))
        return -1;
    if (n >= cap || memchr(s, 0, n) != NULL)
        return rd_fail(r, "has a string field that is too long or contains a NUL byte");
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

static int take_i64(rd *r, int64_t *v)
{
    uint64_t u = 0;
    int64_t i = 0;
    int neg;
    if (rd_int(r, &u, &i, &neg))
        return -1;
    if (!neg && u > INT64_MAX)
        return rd_fail(r, "has a time that is not a 64-bit signed integer");
    *v = neg ? i : (int64_t)u;
    return 0;
}

static int body_field(rd *r, int idx, dk_event *ev, int data_rest)
{
    uint64_t u = 0;
    int64_t i = 0;
    int neg;
    const uint8_t *b;
    size_t n;
    switch (idx) {
    case K_V:
        if (rd_int(r, &u, &i, &neg))
            return -1;
        if (neg || u > UINT32_MAX)
            return rd_fail(r, "has a version that is not a small unsigned integer");
        ev->v = (uint32_t)u;
        return 0;
    case K_TYPE:
        return take_str(r, ev->type, sizeof ev->type);
    case K_CASE:
        return take_str(r, ev->case_id, sizeof ev->case_id);
    case K_ACTOR:
        return take_str(r, ev->actor, sizeof ev->actor);
    case K_AT:
        return take_i64(r, &ev->at);
    case K_EFF:
        ev->has_eff = 1;
        return take_i64(r, &ev->eff);
    case K_CMD:
        if (rd_bin(r, &b, &n))
            return -1;
        if (n != DK_CMD_BYTES)
            return rd_fail(r, "has a command id that is not 16 bytes");
        memcpy(ev->cmd, b, DK_CMD_BYTES);
        return 0;
    case K_EXPECT:
        if (rd_int(r, &u, &i, &neg))
            return -1;
        if (neg)
            return rd_fail(r, "has an 'expect' that is negative");
        ev->expect = u;
        ev->has_expect = 1;
        return 0;
    default: /* K_DATA: a map, which is the body's last value */
        if ((rd_peek(r) & 0xf0) != 0x80 && rd_peek(r) != 0xde && rd_peek(r) != 0xdf)
            return rd_fail(r, "has a data field that is not a map");
        ev->data = r->p;
        if (data_rest)
            r->p = r->end;
        else if (rd_skip(r, 1))
            return -1;
        ev->data_len = (size_t)(r->p - ev->data);
        return 0;
    }
}

/* Is k the body key `bk`? (Keys are 1-6 bytes: a loop, where a call to memcmp per key was
 * 1.4% of a rebuild's CPU.) */
static int key_is(const struct body_key *bk, const char *k, size_t kl)
{
    if (bk->len != kl)
        return 0;
    for (size_t i = 0; i < kl; i++)
        if (bk->name[i] != k[i])
            return 0;
    return 1;
}

/* Is the next key `k` (its fixstr header, then its name)? Then it is consumed. With `k` a
 * literal, the compare is a load or two. */
#define RD_KEY(r, k)                                                                               \
    ((size_t)((r)->end - (r)->p) >= sizeof(k) - 1 && memcmp((r)->p, k, sizeof(k) - 1) == 0         \
         ? ((r)->p += sizeof(k) - 1, 1)                                                            \
         : 0)

/* The body's fields, each key matched as the bytes the canonical packer writes: 0 if every
 * one was there, in order, and read; else -1, and the general reader below says what is
 * wrong. A key read as a string and looked up in body_keys cost more than its value
 * (200k rebuild: about 250 instructions a body). */
static int decode_fast(rd *r, dk_event *ev, int data_rest)
{
    size_t n, got = 7;
    if (rd_container(r, 1, &n) != 0)
        return -1;
    /* each key: its fixstr header, 0xa0 | its length (in octal, so that no hex digit of
     * the name is read as part of the escape), then its name */
    if (!RD_KEY(r, "\241v") || body_field(r, K_V, ev, 0))
        return -1;
    if (!RD_KEY(r, "\244type") || body_field(r, K_TYPE, ev, 0))
        return -1;
    if (!RD_KEY(r, "\244case") || body_field(r, K_CASE, ev, 0))
        return -1;
    if (!RD_KEY(r, "\245actor") || body_field(r, K_ACTOR, ev, 0))
        return -1;
    if (!RD_KEY(r, "\242at") || body_field(r, K_AT, ev, 0))
        return -1;
    if (RD_KEY(r, "\243eff") && (got++, body_field(r, K_EFF, ev, 0)))
        return -1;
    if (!RD_KEY(r, "\243cmd") || body_field(r, K_CMD, ev, 0))
        return -1;
    if (RD_KEY(r, "\246expect") && (got++, body_field(r, K_EXPECT, ev, 0)))
        return -1;
    if (!RD_KEY(r, "\244data") || body_field(r, K_DATA, ev, data_rest))
        return -1;
    return got == n && r->p == r->end ? 0 : -1;
}

/* The body's fields read key by key, each looked up in body_keys: what names a body's
 * fault. */
static void decode_general(rd *r, dk_event *ev, int data_rest)
{
    size_t n;
    int want = K_V;
    if (rd_container(r, 1, &n) != 0)
        return;
    for (size_t f = 0; f < n && r->why == NULL; f++) {
        const char *k;
        size_t kl;
        if (rd_str(r, &k, &kl))
            return;
        int idx = want;
        while (idx < K_COUNT && !key_is(&body_keys[idx], k, kl)) {
            if (!body_keys[idx].optional)
                idx = K_COUNT; /* a required field was skipped */
            else
                idx++;
        }
        if (idx == K_COUNT) {
            rd_fail(r, "has a key that is unknown, repeated or out of order, or lacks a "
                       "required field");
            return;
        }
        want = idx + 1;
        body_field(r, idx, ev, data_rest);
    }
    if (r->why == NULL && want != K_COUNT)
        rd_fail(r, "lacks a required field");
    if (r->why == NULL && r->p != r->end)
        rd_fail(r, "has trailing bytes");
}

static int decode_stored(const uint8_t *buf, size_t len, dk_event *ev, int data_rest)
{
    memset(ev, 0, sizeof *ev);
    rd r = {buf, buf + len, NULL};
    if (len > DK_BODY_MAX) {
        rd_fail(&r, "is over the size limit");
    } else if (decode_fast(&r, ev, data_rest) != 0) {
        memset(ev, 0, sizeof *ev);
        r = (rd){buf, buf + len, NULL};
        decode_general(&r, ev, data_rest);
    }
    if (r.why == NULL && ev->data_len > DK_DATA_MAX)
        rd_fail(&r, "has data over the size limit");
    int rc = r.why       ? dk__fail(DK_EDECODE, "stored event body %s", r.why)
             : data_rest ? dk__event_check_version_at(ev)
                         : dk__event_check_fields(ev);
    if (rc)
        memset(ev, 0, sizeof *ev);
    return rc;
}

int dk_event_decode_stored(const uint8_t *buf, size_t len, dk_event *ev)
{
    return decode_stored(buf, len, ev, 0);
}

int dk_event_decode_chained(const uint8_t *buf, size_t len, dk_event *ev)
{
    return decode_stored(buf, len, ev, 1);
}

/* ---- reading fields of a data map (engine-private) ---- */

/* Position *val at the value of `key` in a data map. */
static int data_find(const uint8_t *data, size_t len, const char *key, rd *val)
{
    rd r = {data, data + len, NULL};
    size_t n, klen = strlen(key);
    if (rd_container(&r, 1, &n))
        return dk__fail(DK_ESCHEMA, "data is not a map");
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int c = rd_peek(&r);
        int is_str = (c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb;
        if (is_str ? rd_str(&r, &k, &kl) : rd_skip(&r, 2))
            break;
        if (is_str && kl == klen && memcmp(k, key, klen) == 0) {
            *val = r;
            return 0;
        }
        if (rd_skip(&r, 2))
            break;
    }
    if (r.why)
        return dk__fail(DK_ESCHEMA, "data %s", r.why);
    return dk__fail(DK_ENOTFOUND, "data has no field '%s'", key);
}

int dk__data_str(const uint8_t *data, size_t len, const char *key, const char **s, size_t *slen)
{
    rd v;
    int rc = data_find(data, len, key, &v);
    if (rc == 0 && rd_str(&v, s, slen))
        rc = dk__fail(DK_ESCHEMA, "data field '%s' must be a string", key);
    return rc;
}

int dk__data_strlist(const uint8_t *data, size_t len, const char *key,
                     int (*each)(void *ctx, const char *s, size_t slen), void *ctx)
{
    rd v;
    size_t n;
    int rc = data_find(data, len, key, &v);
    if (rc == 0 && rd_container(&v, 0, &n))
        rc = dk__fail(DK_ESCHEMA, "data field '%s' must be a list of strings", key);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *s;
        size_t sl;
        if (rd_str(&v, &s, &sl))
            rc = dk__fail(DK_ESCHEMA, "data field '%s' must be a list of strings", key);
        else
            rc = each(ctx, s, sl);
    }
    return rc;
}

int dk__data_u64(const uint8_t *data, size_t len, const char *key, uint64_t *out)
{
    rd v;
    uint64_t u = 0;
    int64_t i = 0;
    int neg = 1;
    int rc = data_find(data, len, key, &v);
    if (rc == 0 && (rd_int(&v, &u, &i, &neg) || neg))
        rc = dk__fail(DK_ESCHEMA, "data field '%s' must be an unsigned integer", key);
    if (rc == 0)
        *out = u;
    return rc;
}

int dk_data_bool(const uint8_t *data, size_t len, const char *key, int *out)
{
    rd v;
    int rc = data_find(data, len, key, &v);
    int c = rc == 0 ? rd_peek(&v) : -1;
    if (rc == 0 && c != 0xc2 && c != 0xc3)
        rc = dk__fail(DK_ESCHEMA, "data field '%s' must be true or false", key);
    if (rc == 0)
        *out = c == 0xc3;
    return rc;
}

/* The public names of the data lookups. */
int dk_data_str(const uint8_t *data, size_t len, const char *key, const char **s, size_t *slen)
{
    return dk__data_str(data, len, key, s, slen);
}

int dk_data_u64(const uint8_t *data, size_t len, const char *key, uint64_t *v)
{
    return dk__data_u64(data, len, key, v);
}

int dk_data_strlist(const uint8_t *data, size_t len, const char *key,
                    int (*each)(void *ctx, const char *s, size_t slen), void *ctx)
{
    return dk__data_strlist(data, len, key, each, ctx);
}
