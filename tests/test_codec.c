/* test_codec.c - unit tests of the canonical event and record codec: round
 * trips, and a named rejection for every class of bad input. */
#include <msgpack.h>

#include "docket/docket.h"
#include "engine_int.h"
#include "harness.h"

/* {"a": 1, "b": "x"} as canonical msgpack. */
static const uint8_t data_ab[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xa1, 'x'};

static dk_event sample(void)
{
    dk_event ev;
    memset(&ev, 0, sizeof ev);
    ev.v = DK_EVENT_VERSION;
    strcpy(ev.type, "case.opened");
    strcpy(ev.case_id, "HO-1");
    strcpy(ev.actor, "alice");
    ev.at = 1795514400000000;
    for (int i = 0; i < DK_CMD_BYTES; i++)
        ev.cmd[i] = (uint8_t)i;
    ev.data = data_ab;
    ev.data_len = sizeof data_ab;
    return ev;
}

static void assert_same_event(const dk_event *a, const dk_event *b)
{
    ASSERT_EQ(a->v, b->v);
    ASSERT_STR_EQ(a->type, b->type);
    ASSERT_STR_EQ(a->case_id, b->case_id);
    ASSERT_STR_EQ(a->actor, b->actor);
    ASSERT_EQ(a->at, b->at);
    ASSERT_EQ(a->has_eff, b->has_eff);
    ASSERT_EQ(a->eff, b->eff);
    ASSERT_MEM_EQ(a->cmd, b->cmd, DK_CMD_BYTES);
    ASSERT_EQ(a->has_expect, b->has_expect);
    ASSERT_EQ(a->expect, b->expect);
    ASSERT_EQ(a->data_len, b->data_len);
    ASSERT_MEM_EQ(a->data, b->data, a->data_len);
}

TEST(round_trip)
{
    dk_event ev = sample(), back;
    uint8_t *buf;
    size_t len;
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    ASSERT_OK(dk_event_decode(buf, len, &back));
    assert_same_event(&ev, &back);
    /* encode(decode(b)) == b */
    uint8_t *again;
    size_t again_len;
    ASSERT_OK(dk_event_encode(&back, &again, &again_len));
    ASSERT_EQ(again_len, len);
    ASSERT_MEM_EQ(again, buf, len);
    free(again);
    free(buf);
}

TEST(round_trip_optional_fields)
{
    /* any int64: a stored record is read as it was accepted (the ledger bounds new ones) */
    int64_t effs[] = {0, -1, -86400000000LL * 365 * 60, INT64_MAX, INT64_MIN};
    uint64_t expects[] = {0, 1, 127, 128, 255, 256, 65535, 65536, UINT64_MAX};
    for (size_t i = 0; i < sizeof effs / sizeof effs[0]; i++) {
        for (size_t j = 0; j < sizeof expects / sizeof expects[0]; j++) {
            dk_event ev = sample(), back;
            ev.has_eff = 1;
            ev.eff = effs[i];
            ev.has_expect = 1;
            ev.expect = expects[j];
            ev.at = (int64_t)expects[j] & INT64_MAX;
            uint8_t *buf;
            size_t len;
            ASSERT_OK(dk_event_encode(&ev, &buf, &len));
            ASSERT_OK(dk_event_decode(buf, len, &back));
            assert_same_event(&ev, &back);
            free(buf);
        }
    }
}

TEST(empty_case_and_limits)
{
    dk_event ev = sample(), back;
    ev.case_id[0] = 0;
    memset(ev.type, 'a', DK_TYPE_MAX);
    ev.type[DK_TYPE_MAX] = 0;
    memset(ev.actor, 'b', DK_ACTOR_MAX);
    ev.actor[DK_ACTOR_MAX] = 0;
    uint8_t *buf;
    size_t len;
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    ASSERT_OK(dk_event_decode(buf, len, &back));
    assert_same_event(&ev, &back);
    free(buf);
}

TEST(encode_rejects_bad_fields)
{
    uint8_t *buf;
    size_t len;
    dk_event ev = sample();
    strcpy(ev.type, "Case.Opened");
    ASSERT_ERR(dk_event_encode(&ev, &buf, &len), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "event type");
    ev = sample();
    strcpy(ev.actor, "bad actor");
    ASSERT_ERR(dk_event_encode(&ev, &buf, &len), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "actor id");
    ev = sample();
    strcpy(ev.case_id, "HO\x01");
    ASSERT_ERR(dk_event_encode(&ev, &buf, &len), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "case id");
    ev = sample();
    strcpy(ev.case_id, "C1\xc2\x9b"
                       "31mRED"); /* U+009B, the 8-bit CSI */
    ASSERT_ERR(dk_event_encode(&ev, &buf, &len), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "case id");
    ev = sample();
    strcpy(ev.case_id, "HO-\xc2\xa0"
                       "1"); /* U+00A0, past the C1 block: printable */
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    free(buf);
    ev = sample();
    ev.v = 2;
    ASSERT_ERR(dk_event_encode(&ev, &buf, &len), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "version 2");
    ev = sample();
    ev.at = -5;
    ASSERT_ERR(dk_event_encode(&ev, &buf, &len), DK_EDECODE);
}

/* Build a body by hand so that we can make it wrong in one way at a time. */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp;

static void mp_init(mp *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_str(mp *m, const char *s)
{
    msgpack_pack_str(&m->pk, strlen(s));
    msgpack_pack_str_body(&m->pk, s, strlen(s));
}

/* The fields in canonical order; `skip` omits one, `extra` adds a key. */
static void body_fields(mp *m, const char *skip, int swap)
{
    int n = 7 - (skip != NULL);
    msgpack_pack_map(&m->pk, (size_t)n);
    if (!skip || strcmp(skip, "v")) {
        mp_str(m, "v");
        msgpack_pack_uint32(&m->pk, 1);
    }
    if (swap) {
        mp_str(m, "case");
        mp_str(m, "HO-1");
        mp_str(m, "type");
        mp_str(m, "case.opened");
    } else {
        if (!skip || strcmp(skip, "type")) {
            mp_str(m, "type");
            mp_str(m, "case.opened");
        }
        if (!skip || strcmp(skip, "case")) {
            mp_str(m, "case");
            mp_str(m, "HO-1");
        }
    }
    if (!skip || strcmp(skip, "actor")) {
        mp_str(m, "actor");
        mp_str(m, "alice");
    }
    if (!skip || strcmp(skip, "at")) {
        mp_str(m, "at");
        msgpack_pack_int64(&m->pk, 1000);
    }
    if (!skip || strcmp(skip, "cmd")) {
        uint8_t cmd[16] = {0};
        mp_str(m, "cmd");
        msgpack_pack_bin(&m->pk, 16);
        msgpack_pack_bin_body(&m->pk, cmd, 16);
    }
    if (!skip || strcmp(skip, "data")) {
        mp_str(m, "data");
        msgpack_sbuffer_write(&m->sb, (const char *)data_ab, sizeof data_ab);
    }
}

static void expect_reject(const uint8_t *buf, size_t len, int code, const char *needle)
{
    dk_event ev;
    ASSERT_ERR(dk_event_decode(buf, len, &ev), code);
    ASSERT_CONTAINS(dk_errmsg(), needle);
}

TEST(decode_hand_built_is_canonical)
{
    mp m;
    mp_init(&m);
    body_fields(&m, NULL, 0);
    dk_event ev;
    ASSERT_OK(dk_event_decode((uint8_t *)m.sb.data, m.sb.size, &ev));
    ASSERT_STR_EQ(ev.type, "case.opened");
    msgpack_sbuffer_destroy(&m.sb);
}

TEST(decode_rejects_missing_and_misordered_fields)
{
    const char *fields[] = {"v", "type", "case", "actor", "at", "cmd", "data"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        mp m;
        mp_init(&m);
        body_fields(&m, fields[i], 0);
        dk_event ev;
        int rc = dk_event_decode((uint8_t *)m.sb.data, m.sb.size, &ev);
        if (rc != DK_EDECODE)
            TH_FAIL("missing '%s' gave %s", fields[i], dk_err_name(rc));
        ASSERT_CONTAINS(dk_errmsg(), fields[i]);
        msgpack_sbuffer_destroy(&m.sb);
    }
    mp m;
    mp_init(&m);
    body_fields(&m, NULL, 1);
    expect_reject((uint8_t *)m.sb.data, m.sb.size, DK_EDECODE, "out of order");
    ASSERT_CONTAINS(dk_errmsg(), "'type'");
    msgpack_sbuffer_destroy(&m.sb);
}

TEST(decode_rejects_truncation_and_trailing_bytes)
{
    dk_event ev = sample();
    uint8_t *buf;
    size_t len;
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    for (size_t cut = 0; cut < len; cut++) {
        dk_event out;
        ASSERT_ERR(dk_event_decode(buf, cut, &out), DK_EDECODE);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0xc0;
    expect_reject(longer, len + 1, DK_EDECODE, "trailing");
    free(longer);
    free(buf);
}

TEST(decode_rejects_non_canonical_integers)
{
    /* "at": 1000 written as uint64 instead of uint16. */
    mp m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 7);
    mp_str(&m, "v");
    msgpack_pack_uint32(&m.pk, 1);
    mp_str(&m, "type");
    mp_str(&m, "case.opened");
    mp_str(&m, "case");
    mp_str(&m, "HO-1");
    mp_str(&m, "actor");
    mp_str(&m, "alice");
    mp_str(&m, "at");
    msgpack_pack_fix_uint64(&m.pk, 1000);
    uint8_t cmd[16] = {0};
    mp_str(&m, "cmd");
    msgpack_pack_bin(&m.pk, 16);
    msgpack_pack_bin_body(&m.pk, cmd, 16);
    mp_str(&m, "data");
    msgpack_sbuffer_write(&m.sb, (const char *)data_ab, sizeof data_ab);
    expect_reject((uint8_t *)m.sb.data, m.sb.size, DK_EDECODE, "canonical");
    msgpack_sbuffer_destroy(&m.sb);
}

TEST(decode_rejects_wrong_types_and_versions)
{
    /* Replace the first field (v: 1) with v: 2, then with v: "1". */
    dk_event ev = sample();
    uint8_t *buf;
    size_t len;
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    ASSERT_EQ(buf[0], 0x87); /* fixmap of 7 */
    ASSERT_EQ(buf[1], 0xa1); /* "v" */
    ASSERT_EQ(buf[3], 0x01);
    buf[3] = 0x02;
    expect_reject(buf, len, DK_EDECODE, "version 2");
    buf[3] = 0xc3; /* true */
    expect_reject(buf, len, DK_EDECODE, "'v'");
    free(buf);
}

TEST(data_checks)
{
    /* keys out of order */
    const uint8_t unordered[] = {0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02};
    ASSERT_ERR(dk_data_check(unordered, sizeof unordered), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "order");
    /* repeated key */
    const uint8_t repeated[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
    ASSERT_ERR(dk_data_check(repeated, sizeof repeated), DK_EDECODE);
    /* a float */
    const uint8_t flt[] = {0x81, 0xa1, 'a', 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    ASSERT_ERR(dk_data_check(flt, sizeof flt), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "float");
    /* binary */
    const uint8_t bin[] = {0x81, 0xa1, 'a', 0xc4, 0x01, 0x00};
    ASSERT_ERR(dk_data_check(bin, sizeof bin), DK_EDECODE);
    /* non-string key */
    const uint8_t intkey[] = {0x81, 0x01, 0x01};
    ASSERT_ERR(dk_data_check(intkey, sizeof intkey), DK_EDECODE);
    /* invalid UTF-8 */
    const uint8_t badutf[] = {0x81, 0xa1, 'a', 0xa2, 0xc3, 0x28};
    ASSERT_ERR(dk_data_check(badutf, sizeof badutf), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "UTF-8");
    /* not a map */
    const uint8_t arr[] = {0x91, 0x01};
    ASSERT_ERR(dk_data_check(arr, sizeof arr), DK_EDECODE);
    /* non-canonical length: str8 for a 1-byte string */
    const uint8_t str8[] = {0x81, 0xa1, 'a', 0xd9, 0x01, 'x'};
    ASSERT_ERR(dk_data_check(str8, sizeof str8), DK_EDECODE);
    /* accepted */
    ASSERT_OK(dk_data_check(data_ab, sizeof data_ab));
}

static size_t nested(uint8_t *buf, int depth)
{
    /* {"a": {"a": ... {}}} with `depth` maps */
    size_t n = 0;
    for (int i = 0; i < depth - 1; i++) {
        buf[n++] = 0x81;
        buf[n++] = 0xa1;
        buf[n++] = 'a';
    }
    buf[n++] = 0x80;
    return n;
}

TEST(data_depth_and_size)
{
    uint8_t buf[256];
    size_t n = nested(buf, DK_DEPTH_MAX);
    ASSERT_OK(dk_data_check(buf, n));
    n = nested(buf, DK_DEPTH_MAX + 1);
    ASSERT_ERR(dk_data_check(buf, n), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "deeper");
    /* {"a": "<65536 bytes>"} is over DK_DATA_MAX */
    size_t big = DK_DATA_MAX;
    uint8_t *b = malloc(big + 16);
    size_t k = 0;
    b[k++] = 0x81;
    b[k++] = 0xa1;
    b[k++] = 'a';
    b[k++] = 0xdb;
    b[k++] = (uint8_t)(big >> 24);
    b[k++] = (uint8_t)(big >> 16);
    b[k++] = (uint8_t)(big >> 8);
    b[k++] = (uint8_t)big;
    memset(b + k, 'x', big);
    ASSERT_ERR(dk_data_check(b, k + big), DK_ETOOBIG);
    free(b);
}

/* A random msgpack value of every type and width msgpack-c packs: containers up to
 * array32/map32 (in their short forms and, by count, their long ones), str, bin, ext,
 * floats, integers of every width. */
static void pack_random(msgpack_packer *pk, uint64_t *rs, int depth)
{
    uint64_t r = th_xorshift(rs);
    switch (r % (depth < 4 ? 12 : 9)) {
    case 0:
        msgpack_pack_nil(pk);
        return;
    case 1:
        msgpack_pack_int64(pk, (int64_t)(th_xorshift(rs) >> (r >> 8 & 63)) * ((r & 16) ? -1 : 1));
        return;
    case 2:
        msgpack_pack_double(pk, (double)r);
        return;
    case 3:
        msgpack_pack_float(pk, 1.5f);
        return;
    case 4:
    case 5: {
        static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
        size_t n = lens[th_xorshift(rs) % 8];
        static char body[65536];
        memset(body, 'q', n);
        if (r & 16) {
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, body, n);
        } else {
            msgpack_pack_bin(pk, n);
            msgpack_pack_bin_body(pk, body, n);
        }
        return;
    }
    case 6:
    case 7: {
        static const size_t lens[] = {1, 2, 4, 8, 16, 0, 3, 300};
        size_t n = lens[th_xorshift(rs) % 8];
        msgpack_pack_ext(pk, n, 5);
        msgpack_pack_ext_body(pk, "0123456789abcdef0123456789abcdef", n > 32 ? 0 : n);
        if (n > 32) {
            static const char zeros[300];
            msgpack_pack_ext_body(pk, zeros, n);
        }
        return;
    }
    case 8:
        msgpack_pack_true(pk);
        return;
    default: {
        static const uint32_t counts[] = {0, 1, 3, 15, 16, 17};
        uint32_t n = counts[th_xorshift(rs) % 6];
        if (r & 16) {
            msgpack_pack_array(pk, n);
            for (uint32_t i = 0; i < n; i++)
                pack_random(pk, rs, depth + 1);
        } else {
            msgpack_pack_map(pk, n);
            for (uint32_t i = 0; i < 2 * n; i++)
                pack_random(pk, rs, depth + 1);
        }
        return;
    }
    }
}

/* The walk never refuses a whole value (hundreds of random ones, of every type and
 * length form), and a prefix it passes msgpack-c may unpack without asking for more than
 * the prefix could hold. */
TEST(msgpack_bounded_passes_every_whole_value)
{
    uint64_t rs = 0x9e3779b97f4a7c15ull;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (int i = 0; i < 400; i++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_random(&pk, &rs, 0);
        const uint8_t *b = (const uint8_t *)sb.data;
        if (dk_msgpack_bounded(b, sb.size, "value") != 0)
            TH_FAIL("value %d (%zu bytes) refused: %s", i, sb.size, dk_errmsg());
        msgpack_zone z;
        msgpack_object o;
        size_t off = 0;
        ASSERT(msgpack_zone_init(&z, 1024));
        ASSERT_EQ(msgpack_unpack(sb.data, sb.size, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
        ASSERT_EQ(off, sb.size);
        msgpack_zone_destroy(&z);
        for (size_t cut = 0; cut < sb.size; cut += 1 + sb.size / 64) {
            if (dk_msgpack_bounded(b, cut, "value") != 0) {
                ASSERT_CONTAINS(dk_errmsg(), "value is damaged or truncated: a");
                continue;
            }
            off = 0;
            ASSERT(msgpack_zone_init(&z, 1024));
            ASSERT(msgpack_unpack(sb.data, cut, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS);
            msgpack_zone_destroy(&z);
        }
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A header whose count the bytes after it cannot hold is named, by every decoder that
 * unpacks with msgpack-c, before msgpack-c reserves its entries (a map32 of 2^32-1
 * entries asked for 128 GiB: a release build said "out of memory", ASan aborted). */
TEST(msgpack_bounded_names_a_count_the_bytes_cannot_hold)
{
    const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01};
    ASSERT_ERR(dk_data_check(map32, sizeof map32), DK_EDECODE);
    ASSERT_STR_EQ(dk_errmsg(), "data is damaged or truncated: a map at byte 0 declares "
                               "4294967295 entries, and only 3 bytes follow");
    /* {"a": array32 of 2^27 items} */
    const uint8_t arr32[] = {0x81, 0xa1, 'a', 0xdd, 0x08, 0x00, 0x00, 0x00, 0x01};
    ASSERT_ERR(dk_data_check(arr32, sizeof arr32), DK_EDECODE);
    ASSERT_STR_EQ(dk_errmsg(), "data is damaged or truncated: an array at byte 3 declares "
                               "134217728 items, and only 1 byte follows");
    /* a count that fits alone, not with the value owed after it: [[1, 2], <missing>] */
    const uint8_t owed[] = {0x92, 0x92, 0x01, 0x02};
    ASSERT_ERR(dk_msgpack_bounded(owed, sizeof owed, "x"), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(),
                    "x is damaged or truncated: an array at byte 1 and the 1 value after it "
                    "need more than the 2 bytes that follow");
    const uint8_t cut_str[] = {0x91, 0xd9, 0x05, 'a'}; /* a string cut short: msgpack-c names it */
    ASSERT_OK(dk_msgpack_bounded(cut_str, sizeof cut_str, "x"));
    const uint8_t fits[] = {0x92, 0x92, 0x01, 0x02, 0xc0};
    ASSERT_OK(dk_msgpack_bounded(fits, sizeof fits, "x"));
    /* map16 of 2 entries with 3 bytes: each entry is two values */
    const uint8_t map16[] = {0xde, 0x00, 0x02, 0x01, 0x02, 0x03};
    ASSERT_ERR(dk_msgpack_bounded(map16, sizeof map16, "x"), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "declares 2 entries, and only 3 bytes follow");
    /* nesting: msgpack-c reads 32 open containers and calls a 33rd "out of memory" */
    uint8_t deep[3 * 40 + 1];
    size_t n = nested(deep, 32); /* 31 holding a value, and an empty one */
    ASSERT_OK(dk_msgpack_bounded(deep, n, "x"));
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    ASSERT(msgpack_zone_init(&z, 1024));
    ASSERT_EQ(msgpack_unpack((const char *)deep, n, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
    off = 0;
    n = nested(deep, 33);
    ASSERT_EQ(msgpack_unpack((const char *)deep, n, &off, &z, &o), MSGPACK_UNPACK_NOMEM_ERROR);
    msgpack_zone_destroy(&z);
    ASSERT_ERR(dk_msgpack_bounded(deep, n, "x"), DK_EDECODE);
    ASSERT_STR_EQ(dk_errmsg(), "x is nested deeper than 32 levels at byte 96");
    n = nested(deep, 40);
    ASSERT_ERR(dk_data_check(deep, n), DK_EDECODE); /* was DK_ENOMEM */
    ASSERT_CONTAINS(dk_errmsg(), "data is nested deeper than 32 levels");
    const uint8_t arrays[] = {0x92, 0x91, 0x91, 0x01, 0x92, 0x91, 0x02, 0x03}; /* [[[1]],[[2],3]] */
    ASSERT_OK(dk_msgpack_bounded(arrays, sizeof arrays, "x"));
    /* an event body's data (its last value) with that header: the input decoder */
    dk_event ev = sample();
    uint8_t *buf;
    size_t len;
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    uint8_t body[512];
    ASSERT(len - sizeof data_ab + sizeof map32 <= sizeof body);
    memcpy(body, buf, len - sizeof data_ab);
    memcpy(body + len - sizeof data_ab, map32, sizeof map32);
    dk_event out;
    ASSERT_ERR(dk_event_decode(body, len - sizeof data_ab + sizeof map32, &out), DK_EDECODE);
    ASSERT_CONTAINS(dk_errmsg(), "event body is damaged or truncated: a map at byte");
    free(buf);
}

TEST(record_round_trip_and_rejections)
{
    dk_event ev = sample();
    uint8_t *body;
    size_t body_len;
    ASSERT_OK(dk_event_encode(&ev, &body, &body_len));
    dk_record rec, back;
    memset(&rec, 0, sizeof rec);
    rec.seq = 42;
    rec.recorded_at = 1795514400000001;
    memset(rec.prev, 0xab, sizeof rec.prev);
    rec.body = body;
    rec.body_len = body_len;
    rec.nsigs = 2;
    strcpy(rec.sigs[0].actor, "alice");
    memset(rec.sigs[0].sig, 1, DK_SIG_BYTES);
    strcpy(rec.sigs[1].actor, "bob");
    memset(rec.sigs[1].sig, 2, DK_SIG_BYTES);
    uint8_t *raw;
    size_t raw_len;
    ASSERT_OK(dk_record_encode(&rec, &raw, &raw_len));
    ASSERT_OK(dk_record_decode(raw, raw_len, &back));
    ASSERT_EQ(back.seq, 42);
    ASSERT_EQ(back.recorded_at, rec.recorded_at);
    ASSERT_MEM_EQ(back.prev, rec.prev, DK_HASH_BYTES);
    ASSERT_EQ(back.body_len, body_len);
    ASSERT_MEM_EQ(back.body, body, body_len);
    ASSERT_EQ(back.nsigs, 2);
    ASSERT_STR_EQ(back.sigs[1].actor, "bob");
    ASSERT_MEM_EQ(back.sigs[1].sig, rec.sigs[1].sig, DK_SIG_BYTES);
    ASSERT(back.raw == raw && back.raw_len == raw_len);
    for (size_t cut = 0; cut < raw_len; cut++)
        ASSERT_ERR(dk_record_decode(raw, cut, &back), DK_EDECODE);
    rec.nsigs = 0;
    uint8_t *none;
    size_t none_len;
    ASSERT_ERR(dk_record_encode(&rec, &none, &none_len), DK_EINVAL);
    free(raw);
    free(body);
}

/* Every single-byte corruption of a valid body is either rejected or decodes
 * to something that re-encodes to exactly the corrupted bytes. */
TEST(mutations_never_half_accept)
{
    dk_event ev = sample();
    uint8_t *buf;
    size_t len;
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    int rejected = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            dk_event out;
            if (dk_event_decode(buf, len, &out) == 0) {
                uint8_t *again;
                size_t again_len;
                ASSERT_OK(dk_event_encode(&out, &again, &again_len));
                ASSERT_EQ(again_len, len);
                ASSERT_MEM_EQ(again, buf, len);
                free(again);
            } else {
                rejected++;
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    ASSERT(rejected > 0);
    free(buf);
}

/* Data maps of every encoding width: fix/8/16/32-bit strings, arrays and
 * maps over 15 entries, negative and wide integers, nil and booleans. */
static void pack_wide_data(msgpack_sbuffer *sb, size_t strlen_)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    char *big = malloc(strlen_ + 1);
    memset(big, 'x', strlen_);
    big[strlen_] = 0;
    msgpack_pack_map(&pk, 7);
    const char *keys[] = {"a", "b", "c", "d", "e", "f", "g"};
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, keys[0], 1);
    msgpack_pack_array(&pk, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int64(&pk, i % 2 ? -(int64_t)i * 1000003 : (int64_t)i << (i * 2));
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, keys[1], 1);
    msgpack_pack_str(&pk, strlen_);
    msgpack_pack_str_body(&pk, big, strlen_);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, keys[2], 1);
    msgpack_pack_true(&pk);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, keys[3], 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, keys[4], 1);
    msgpack_pack_map(&pk, 17);
    for (int i = 0; i < 17; i++) {
        char k[4];
        snprintf(k, sizeof k, "k%02d", i);
        msgpack_pack_str(&pk, 3);
        msgpack_pack_str_body(&pk, k, 3);
        msgpack_pack_uint64(&pk, (uint64_t)1 << (i * 3));
    }
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, keys[5], 1);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, keys[6], 1);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    free(big);
}

/* The fast decode of stored bodies agrees with the full one on every body
 * the full one accepts, and never crashes on bytes it rejects. */
TEST(stored_decode_agrees_with_full_decode)
{
    size_t sizes[] = {0, 5, 31, 32, 255, 256, 65535 - 1000, 65536 - 1000};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_wide_data(&sb, sizes[si]);
        dk_event ev = sample(), full, fast;
        ev.data = (const uint8_t *)sb.data;
        ev.data_len = sb.size;
        ev.has_eff = si % 2;
        ev.eff = -5;
        ev.has_expect = si % 3 == 0;
        ev.expect = (uint64_t)si << 40;
        uint8_t *buf;
        size_t len;
        ASSERT_OK(dk_event_encode(&ev, &buf, &len));
        ASSERT_OK(dk_event_decode(buf, len, &full));
        ASSERT_OK(dk_event_decode_stored(buf, len, &fast));
        assert_same_event(&full, &fast);
        ASSERT(fast.data == full.data);
        free(buf);
        msgpack_sbuffer_destroy(&sb);
    }
    dk_event ev = sample(), full, fast;
    uint8_t *buf;
    size_t len;
    /* a float where data's last value was: valid msgpack, never canonical */
    static const uint8_t one[] = {0x81, 0xa1, 'a', 0x01};
    ev.data = one;
    ev.data_len = sizeof one;
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    uint8_t *fl = malloc(len + 4);
    memcpy(fl, buf, len - 1);
    const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; /* 1.5 */
    memcpy(fl + len - 1, f32, sizeof f32);
    ASSERT_ERR(dk_event_decode(fl, len + 4, &full), DK_EDECODE);
    ASSERT_ERR(dk_event_decode_stored(fl, len + 4, &fast), DK_EDECODE);
    free(fl);
    free(buf);
    ev = sample();
    ASSERT_OK(dk_event_encode(&ev, &buf, &len));
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc_fast = dk_event_decode_stored(buf, len, &fast);
            if (dk_event_decode(buf, len, &full) == 0) {
                ASSERT_OK(rc_fast);
                assert_same_event(&full, &fast);
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    free(buf);
}

/* Does every array or map header in b announce no more elements than bytes remain?
 * msgpack-c allocates for the announced count first; a mutated header may claim 2^32. */
static int counts_fit(const uint8_t *b, size_t len)
{
    static const uint8_t fixed[256] = {
        [0xc0] = 1, [0xc2] = 1, [0xc3] = 1, [0xca] = 5, [0xcb] = 9,  [0xcc] = 2,
        [0xcd] = 3, [0xce] = 5, [0xcf] = 9, [0xd0] = 2, [0xd1] = 3,  [0xd2] = 5,
        [0xd3] = 9, [0xd4] = 3, [0xd5] = 4, [0xd6] = 6, [0xd7] = 10, [0xd8] = 18};
    size_t i = 0;
    while (i < len) {
        uint8_t c = b[i];
        uint64_t n = 0, hl = 1, items = 0;
        if (c <= 0x7f || c >= 0xe0 || fixed[c]) {
            i += c <= 0x7f || c >= 0xe0 ? 1 : fixed[c];
            continue;
        }
        if ((c & 0xe0) == 0xa0) {
            n = c & 0x1f;
        } else if ((c & 0xf0) == 0x90 || (c & 0xf0) == 0x80) {
            items = (c & 0x0f) * ((c & 0xf0) == 0x80 ? 2u : 1u);
        } else {
            static const uint8_t lenw[256] = {
                [0xc4] = 1, [0xc5] = 2, [0xc6] = 4, [0xc7] = 1, [0xc8] = 2, [0xc9] = 4, [0xd9] = 1,
                [0xda] = 2, [0xdb] = 4, [0xdc] = 2, [0xdd] = 4, [0xde] = 2, [0xdf] = 4};
            hl = 1 + lenw[c];
            if (lenw[c] == 0 || i + hl > len)
                return 1; /* invalid or truncated: msgpack-c fails without allocating */
            uint64_t v = 0;
            for (uint64_t k = 1; k < hl; k++)
                v = v << 8 | b[i + k];
            if (c >= 0xdc)
                items = v * (c >= 0xde ? 2u : 1u);
            else
                n = v + (c >= 0xc7 && c <= 0xc9 ? 1u : 0u);
        }
        if (items > len - i)
            return 0;
        i += hl + n;
    }
    return 1;
}

/* The reference for dk_record_decode: msgpack-c unpacks the bytes into an array of
 * six typed fields and dk_record_encode of those fields gives the same bytes back.
 * 1 if the bytes are a canonical record (then *out holds it), 0 if not. */
static int record_oracle(const uint8_t *b, size_t len, dk_record *out)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    int ok = 0;
    memset(out, 0, sizeof *out);
    if (!counts_fit(b, len))
        return 0; /* no record: its only containers announce 6, 1..4 and 2 elements */
    msgpack_zone_init(&z, 1024);
    if (msgpack_unpack((const char *)b, len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS ||
        off != len || o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 6)
        goto done;
    const msgpack_object *f = o.via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[0].via.u64 != DK_RECORD_VERSION ||
        f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[1].via.u64 == 0 ||
        !((f[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[2].via.u64 <= INT64_MAX) ||
          f[2].type == MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
        f[3].type != MSGPACK_OBJECT_BIN || f[3].via.bin.size != DK_HASH_BYTES ||
        f[4].type != MSGPACK_OBJECT_BIN || f[4].via.bin.size > DK_BODY_MAX ||
        f[5].type != MSGPACK_OBJECT_ARRAY || f[5].via.array.size < 1 ||
        f[5].via.array.size > DK_SIGS_MAX)
        goto done;
    out->seq = f[1].via.u64;
    out->recorded_at = f[2].via.i64;
    memcpy(out->prev, f[3].via.bin.ptr, DK_HASH_BYTES);
    out->body = (const uint8_t *)f[4].via.bin.ptr;
    out->body_len = f[4].via.bin.size;
    out->nsigs = f[5].via.array.size;
    for (size_t i = 0; i < out->nsigs; i++) {
        const msgpack_object *s = &f[5].via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_ARRAY || s->via.array.size != 2)
            goto done;
        const msgpack_object *a = &s->via.array.ptr[0], *g = &s->via.array.ptr[1];
        if (a->type != MSGPACK_OBJECT_STR || a->via.str.size > DK_ACTOR_MAX ||
            memchr(a->via.str.ptr, 0, a->via.str.size) || g->type != MSGPACK_OBJECT_BIN ||
            g->via.bin.size != DK_SIG_BYTES)
            goto done;
        memcpy(out->sigs[i].actor, a->via.str.ptr, a->via.str.size);
        memcpy(out->sigs[i].sig, g->via.bin.ptr, DK_SIG_BYTES);
    }
    uint8_t *again;
    size_t again_len;
    if (dk_record_encode(out, &again, &again_len) == 0) {
        ok = again_len == len && memcmp(again, b, len) == 0;
        free(again);
    }
done:
    msgpack_zone_destroy(&z);
    return ok;
}

/* Does a data value hold only what a body may store (no float or extension), nested no
 * deeper than DK_DEPTH_MAX? */
static int oracle_plain(const msgpack_object *o, int depth)
{
    if (depth > DK_DEPTH_MAX)
        return 0;
    switch (o->type) {
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!oracle_plain(&o->via.array.ptr[i], depth + 1))
                return 0;
        return 1;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (!oracle_plain(&o->via.map.ptr[i].key, depth + 1) ||
                !oracle_plain(&o->via.map.ptr[i].val, depth + 1))
                return 0;
        return 1;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
    case MSGPACK_OBJECT_EXT:
        return 0;
    default:
        return 1;
    }
}

static int oracle_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap ||
        memchr(o->via.str.ptr, 0, o->via.str.size))
        return 0;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return 1;
}

static int oracle_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
        (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)) {
        *v = o->via.i64;
        return 1;
    }
    return 0;
}

/* The reference for dk_event_decode_stored: msgpack-c unpacks one map whose keys are the
 * body's fields in their order, with their types, and packing it again gives the same
 * bytes (so every length and integer is in its shortest form). 1 if accepted. */
static int stored_oracle(const uint8_t *b, size_t len, dk_event *out)
{
    static const char *const keys[] = {"v",   "type", "case",   "actor", "at",
                                       "eff", "cmd",  "expect", "data"};
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    int ok = 0;
    memset(out, 0, sizeof *out);
    if (len > DK_BODY_MAX || !counts_fit(b, len))
        return 0;
    msgpack_zone_init(&z, 1024);
    if (msgpack_unpack((const char *)b, len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS ||
        off != len || o.type != MSGPACK_OBJECT_MAP)
        goto done;
    int want = 0;
    for (uint32_t i = 0; i < o.via.map.size; i++) {
        const msgpack_object *k = &o.via.map.ptr[i].key, *v = &o.via.map.ptr[i].val;
        int idx = -1;
        for (int j = want; j < 9 && k->type == MSGPACK_OBJECT_STR; j++)
            if (strlen(keys[j]) == k->via.str.size &&
                memcmp(keys[j], k->via.str.ptr, k->via.str.size) == 0) {
                idx = j;
                break;
            }
        if (idx < 0)
            goto done;
        for (int j = want; j < idx; j++)
            if (j != 5 && j != 7)
                goto done; /* a required field is missing */
        want = idx + 1;
        int good = 0;
        switch (idx) {
        case 0:
            good = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= UINT32_MAX;
            out->v = (uint32_t)v->via.u64;
            break;
        case 1:
            good = oracle_str(v, out->type, sizeof out->type);
            break;
        case 2:
            good = oracle_str(v, out->case_id, sizeof out->case_id);
            break;
        case 3:
            good = oracle_str(v, out->actor, sizeof out->actor);
            break;
        case 4:
            good = oracle_i64(v, &out->at);
            break;
        case 5:
            good = out->has_eff = oracle_i64(v, &out->eff);
            break;
        case 6:
            good = v->type == MSGPACK_OBJECT_BIN && v->via.bin.size == DK_CMD_BYTES;
            if (good)
                memcpy(out->cmd, v->via.bin.ptr, DK_CMD_BYTES);
            break;
        case 7:
            good = out->has_expect = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
            out->expect = v->via.u64;
            break;
        default:
            good = v->type == MSGPACK_OBJECT_MAP && oracle_plain(v, 1);
        }
        if (!good)
            goto done;
    }
    if (want != 9)
        goto done;
    msgpack_sbuffer sb, tail;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&tail);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, o);
    msgpack_packer_init(&pk, &tail, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, o.via.map.ptr[o.via.map.size - 1].val);
    out->data_len = tail.size;
    out->data = b + len - tail.size;
    ok = sb.size == len && memcmp(sb.data, b, len) == 0 && out->data_len <= DK_DATA_MAX &&
         dk__event_check_fields(out) == 0;
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&tail);
done:
    msgpack_zone_destroy(&z);
    return ok;
}

/* Mutate b (len bytes, room for one more) in place: a bit flip, a replaced byte, an
 * inserted or a deleted byte, within the first or last `span` bytes. The new length. */
static uint64_t rnd(void);
static size_t mutate(uint8_t *m, size_t len, size_t span, int tail)
{
    size_t at = rnd() % (len < span ? len : span);
    if (tail)
        at = len - 1 - at;
    switch (rnd() % 4) {
    case 0:
        m[at] ^= (uint8_t)(1u << (rnd() % 8));
        return len;
    case 1:
        m[at] = (uint8_t)rnd();
        return len;
    case 2:
        memmove(m + at + 1, m + at, len - at);
        m[at] = (uint8_t)rnd();
        return len + 1;
    default:
        memmove(m + at, m + at + 1, len - at - 1);
        return len - 1;
    }
}

static int count_str(void *ctx, const char *s, size_t n)
{
    (void)s;
    *(size_t *)ctx += n + 1;
    return 0;
}

/* The data lookups against msgpack-c: the same value, or the same refusal, for every
 * key of a data map (and one it lacks). */
static void check_lookups(const uint8_t *data, size_t len)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_init(&z, 1024);
    ASSERT(msgpack_unpack((const char *)data, len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS);
    ASSERT(o.type == MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i <= o.via.map.size; i++) {
        char key[300] = "no such key";
        const msgpack_object *v = NULL;
        if (i < o.via.map.size) {
            const msgpack_object *k = &o.via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR || k->via.str.size >= sizeof key ||
                memchr(k->via.str.ptr, 0, k->via.str.size))
                continue;
            memcpy(key, k->via.str.ptr, k->via.str.size);
            key[k->via.str.size] = 0;
            v = &o.via.map.ptr[i].val;
        }
        const char *s;
        size_t sl, total = 0;
        uint64_t u;
        int bv;
        int rc = dk_data_str(data, len, key, &s, &sl);
        if (v == NULL)
            ASSERT_ERR(rc, DK_ENOTFOUND);
        else if (v->type == MSGPACK_OBJECT_STR) {
            ASSERT_OK(rc);
            ASSERT_EQ(sl, v->via.str.size);
            ASSERT(s >= (const char *)data && s + sl <= (const char *)data + len);
            ASSERT_MEM_EQ(s, v->via.str.ptr, sl);
        } else
            ASSERT_ERR(rc, DK_ESCHEMA);
        rc = dk_data_u64(data, len, key, &u);
        if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            ASSERT_OK(rc);
            ASSERT_EQ(u, v->via.u64);
        } else
            ASSERT_ERR(rc, v ? DK_ESCHEMA : DK_ENOTFOUND);
        rc = dk_data_bool(data, len, key, &bv);
        if (v && v->type == MSGPACK_OBJECT_BOOLEAN) {
            ASSERT_OK(rc);
            ASSERT_EQ(bv, v->via.boolean);
        } else
            ASSERT_ERR(rc, v ? DK_ESCHEMA : DK_ENOTFOUND);
        rc = dk_data_strlist(data, len, key, count_str, &total);
        int list = v && v->type == MSGPACK_OBJECT_ARRAY;
        size_t want = 0;
        for (uint32_t j = 0; list && j < v->via.array.size; j++) {
            list = v->via.array.ptr[j].type == MSGPACK_OBJECT_STR;
            want += v->via.array.ptr[j].via.str.size + 1;
        }
        if (list) {
            ASSERT_OK(rc);
            ASSERT_EQ(total, want);
        } else
            ASSERT_ERR(rc, v ? DK_ESCHEMA : DK_ENOTFOUND);
    }
    msgpack_zone_destroy(&z);
}

/* dk_event_decode_stored parses bodies directly; on bodies with data of every width and
 * on thousands of mutations of them, it accepts exactly what the msgpack-c reference
 * accepts and reads the same fields. The data lookups agree with msgpack-c too. */
TEST(stored_decode_agrees_with_msgpack_reference)
{
    size_t sizes[] = {0, 5, 31, 32, 255, 256, 65535 - 1000, 65536 - 1000};
    size_t accepted = 0, rejected = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0] * 4; si++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_wide_data(&sb, sizes[si % 8]);
        check_lookups((const uint8_t *)sb.data, sb.size);
        dk_event ev = sample(), got, want;
        ev.data = (const uint8_t *)sb.data;
        ev.data_len = sb.size;
        ev.has_eff = si % 2;
        ev.eff = -5 - (int64_t)si * 100000;
        ev.has_expect = si % 3 == 0;
        ev.expect = (uint64_t)si << (si % 60);
        uint8_t *buf;
        size_t len;
        ASSERT_OK(dk_event_encode(&ev, &buf, &len));
        ASSERT_OK(dk_event_decode_stored(buf, len, &got));
        ASSERT(stored_oracle(buf, len, &want));
        assert_same_event(&got, &want);
        uint8_t *m = malloc(len + 1);
        for (int t = 0; t < 300; t++) {
            memcpy(m, buf, len);
            /* the fields and data's first entries live in the first 120 bytes */
            size_t ml = mutate(m, len, t % 3 ? 120 : len, 0);
            int ok = dk_event_decode_stored(m, ml, &got) == 0;
            int ref = stored_oracle(m, ml, &want);
            if (ok != ref)
                fprintf(stderr, "size %zu mutation %d: decode %d (%s), reference %d\n", si, t, ok,
                        ok ? "" : dk_errmsg(), ref);
            ASSERT_EQ(ok, ref);
            if (!ok) {
                rejected++;
                continue;
            }
            accepted++;
            assert_same_event(&got, &want);
            ASSERT(got.data == want.data);
        }
        free(m);
        free(buf);
        msgpack_sbuffer_destroy(&sb);
    }
    /* both outcomes were exercised */
    ASSERT(accepted > 500 && rejected > 500);
    /* every header one size wider than it needs to be is refused, by both */
    static const struct {
        uint8_t b[8];
        size_t n;
        int ok;
    } widths[] = {
        {{0x81, 0xa1, 'a', 0xa1, 'x'}, 5, 1},              /* {"a": "x"} */
        {{0x81, 0xa1, 'a', 0xd9, 0x01, 'x'}, 6, 0},        /* str8 for a short string */
        {{0x81, 0xd9, 0x01, 'a', 0x01}, 5, 0},             /* str8 key */
        {{0xde, 0x00, 0x01, 0xa1, 'a', 0x01}, 6, 0},       /* map16 for one pair */
        {{0x81, 0xa1, 'a', 0xdc, 0x00, 0x01, 0x01}, 7, 0}, /* array16 for one element */
        {{0x81, 0xa1, 'a', 0xc4, 0x01, 0x00}, 6, 1},       /* bin8 */
        {{0x81, 0xa1, 'a', 0xc5, 0x00, 0x01, 0x00}, 7, 0}, /* bin16 for one byte */
        {{0x81, 0xa1, 'a', 0xcc, 0x05}, 5, 0},             /* uint8 for 5 */
        {{0x81, 0xa1, 'a', 0xd0, 0x05}, 5, 0},             /* int8 for 5 */
        {{0x81, 0xa1, 'a', 0xca, 0, 0, 0, 0}, 8, 0},       /* a float */
    };
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        dk_event ev = sample(), got, want;
        uint8_t *buf;
        size_t len;
        ASSERT_OK(dk_event_encode(&ev, &buf, &len));
        uint8_t *m = malloc(len + 16);
        memcpy(m, buf, len - sizeof data_ab);
        memcpy(m + len - sizeof data_ab, widths[w].b, widths[w].n);
        size_t ml = len - sizeof data_ab + widths[w].n;
        ASSERT_EQ(dk_event_decode_stored(m, ml, &got) == 0, widths[w].ok);
        ASSERT_EQ(stored_oracle(m, ml, &want), widths[w].ok);
        free(m);
        free(buf);
    }
    /* data nested DK_DEPTH_MAX deep is read; one level more is refused */
    uint8_t deep[64];
    for (int extra = 0; extra < 2; extra++) {
        size_t n = 0;
        for (int d = 1; d < DK_DEPTH_MAX + extra; d++) {
            deep[n++] = 0x81; /* {"a": ... */
            deep[n++] = 0xa1;
            deep[n++] = 'a';
        }
        deep[n++] = 0x80; /* {} */
        if (!extra)
            check_lookups(deep, n);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        dk_event ev = sample(), got, want;
        ev.data = deep;
        ev.data_len = n;
        /* the body by hand: encode checks data depth itself */
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        uint8_t *buf;
        size_t len;
        ev.data = data_ab;
        ev.data_len = sizeof data_ab;
        ASSERT_OK(dk_event_encode(&ev, &buf, &len));
        msgpack_sbuffer_write(&sb, (const char *)buf, len - sizeof data_ab);
        msgpack_sbuffer_write(&sb, (const char *)deep, n);
        int ok = dk_event_decode_stored((const uint8_t *)sb.data, sb.size, &got) == 0;
        ASSERT_EQ(ok, !extra);
        ASSERT_EQ(stored_oracle((const uint8_t *)sb.data, sb.size, &want), !extra);
        free(buf);
        msgpack_sbuffer_destroy(&sb);
    }
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    return th_xorshift(&rnd_state);
}

/* dk_record_decode parses records directly; on records of every integer and length
 * width, and on thousands of mutations of them (byte flips, replaced header bytes,
 * insertions, deletions), it accepts exactly what the msgpack-c reference accepts and
 * reads the same fields. */
TEST(record_decode_agrees_with_msgpack_reference)
{
    static const int64_t times[] = {
        0,         1,  127, 128, 255,  256,  65535,  65536,  4294967295ll,  4294967296ll,
        INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, -2147483648ll, -2147483649ll,
        INT64_MIN};
    static const uint64_t seqs[] = {1,     127,   128,           255,           256,
                                    65535, 65536, 4294967295ull, 4294967296ull, UINT64_MAX};
    static const size_t bodies[] = {0, 1, 255, 256, 65535, 65536, DK_BODY_MAX};
    static const size_t actors[] = {0, 1, 31, 32, DK_ACTOR_MAX};
    uint8_t *body = calloc(1, DK_BODY_MAX + 1);
    size_t accepted = 0, rejected = 0;
    for (int round = 0; round < 120; round++) {
        dk_record rec, got, want;
        memset(&rec, 0, sizeof rec);
        rec.seq = seqs[round % 10];
        rec.recorded_at = times[round % 21];
        memset(rec.prev, round, DK_HASH_BYTES);
        rec.body = body;
        rec.body_len = bodies[round % 7];
        rec.nsigs = 1 + (size_t)round % DK_SIGS_MAX;
        for (size_t i = 0; i < rec.nsigs; i++) {
            size_t al = actors[(round + i) % 5];
            memset(rec.sigs[i].actor, 'a' + (int)i, al);
            memset(rec.sigs[i].sig, (int)(round + i), DK_SIG_BYTES);
        }
        uint8_t *raw;
        size_t len;
        ASSERT_OK(dk_record_encode(&rec, &raw, &len));
        ASSERT_OK(dk_record_decode(raw, len, &got));
        ASSERT(record_oracle(raw, len, &want));
        ASSERT_EQ(got.seq, rec.seq);
        ASSERT_EQ(got.recorded_at, rec.recorded_at);
        ASSERT_EQ(got.nsigs, rec.nsigs);
        /* mutate only the first 200 and last 200 bytes: the headers live there */
        uint8_t *m = malloc(len + 2);
        for (int t = 0; t < 400; t++) {
            size_t ml = len;
            memcpy(m, raw, len);
            size_t at = rnd() % (len < 200 ? len : 200);
            if (t % 2)
                at = len - 1 - at;
            switch (rnd() % 4) {
            case 0:
                m[at] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1:
                m[at] = (uint8_t)rnd();
                break;
            case 2: /* insert a byte */
                memmove(m + at + 1, m + at, len - at);
                m[at] = (uint8_t)rnd();
                ml++;
                break;
            default: /* delete a byte */
                memmove(m + at, m + at + 1, len - at - 1);
                ml--;
            }
            int ok = dk_record_decode(m, ml, &got) == 0;
            int ref = record_oracle(m, ml, &want);
            /* the rebuild's read, which keeps no signature, accepts exactly what the full
             * decode accepts: it checks each signature's shape as it steps over it */
            dk_record u;
            ASSERT_EQ(dk_record_decode_unsigned(m, ml, &u) == 0, ok);
            /* the chain walk's head read agrees with the full decode wherever it accepts */
            uint64_t hseq;
            uint8_t hprev[DK_HASH_BYTES];
            if (ok) {
                ASSERT_OK(dk_record_head(m, ml, &hseq, hprev));
                ASSERT_EQ(hseq, got.seq);
                ASSERT_MEM_EQ(hprev, got.prev, DK_HASH_BYTES);
                /* so do the rebuild's read's fields */
                ASSERT_EQ(u.seq, got.seq);
                ASSERT_EQ(u.recorded_at, got.recorded_at);
                ASSERT_MEM_EQ(u.prev, got.prev, DK_HASH_BYTES);
                ASSERT(u.body == got.body && u.body_len == got.body_len);
                ASSERT(u.raw == m && u.raw_len == ml && u.nsigs == 0);
            }
            /* the rebuild's read of chained records, which stops at the body, never refuses
             * what the full decode accepts, reads the same fields, and whatever it accepts
             * has its body inside the bytes */
            dk_record c;
            int c_ok = dk_record_decode_chained(m, ml, &c) == 0;
            if (ok) {
                ASSERT(c_ok);
                ASSERT_EQ(c.seq, got.seq);
                ASSERT_EQ(c.recorded_at, got.recorded_at);
                ASSERT_MEM_EQ(c.prev, got.prev, DK_HASH_BYTES);
                ASSERT(c.body == got.body && c.body_len == got.body_len);
            }
            if (c_ok) {
                ASSERT(c.body >= m && c.body + c.body_len <= m + ml);
                ASSERT(c.raw == m && c.raw_len == ml && c.nsigs == 0);
            }
            if (ok != ref)
                fprintf(stderr, "round %d mutation %d at %zu: decode %d, reference %d\n", round, t,
                        at, ok, ref);
            ASSERT_EQ(ok, ref);
            if (!ok) {
                rejected++;
                continue;
            }
            accepted++;
            ASSERT_EQ(got.seq, want.seq);
            ASSERT_EQ(got.recorded_at, want.recorded_at);
            ASSERT_MEM_EQ(got.prev, want.prev, DK_HASH_BYTES);
            ASSERT_EQ(got.body_len, want.body_len);
            ASSERT_MEM_EQ(got.body, want.body, got.body_len);
            ASSERT(got.body >= m && got.body + got.body_len <= m + ml);
            ASSERT_EQ(got.nsigs, want.nsigs);
            for (size_t i = 0; i < got.nsigs; i++) {
                ASSERT_STR_EQ(got.sigs[i].actor, want.sigs[i].actor);
                ASSERT_MEM_EQ(got.sigs[i].sig, want.sigs[i].sig, DK_SIG_BYTES);
            }
        }
        free(m);
        free(raw);
    }
    /* both outcomes were exercised */
    ASSERT(accepted > 1000 && rejected > 1000);
    free(body);
    /* the head read refuses a damaged head: layout, version, seq, time, prev */
    static const uint8_t heads[][8] = {
        {0x95, 0x01, 0x01, 0x00, 0xc4, 0x20}, /* an array of 5 */
        {0x96, 0x02, 0x01, 0x00, 0xc4, 0x20}, /* version 2 */
        {0x96, 0x01, 0x00, 0x00, 0xc4, 0x20}, /* seq 0 */
        {0x96, 0x01, 0xff, 0x00, 0xc4, 0x20}, /* seq -1 */
        {0x96, 0x01, 0x01, 0xc0, 0xc4, 0x20}, /* recorded_at nil */
        {0x96, 0x01, 0x01, 0x00, 0xc4, 0x1f}, /* prev of 31 bytes */
        {0x96, 0x01, 0x01, 0x00, 0xa0, 0x20}, /* prev not binary */
    };
    uint8_t rec[64];
    uint64_t hseq;
    uint8_t hprev[DK_HASH_BYTES];
    for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
        memset(rec, 7, sizeof rec);
        memcpy(rec, heads[h], 6);
        ASSERT_ERR(dk_record_head(rec, sizeof rec, &hseq, hprev), DK_EDECODE);
    }
    memcpy(rec, (const uint8_t[]){0x96, 0x01, 0x05, 0x00, 0xc4, 0x20}, 6);
    ASSERT_OK(dk_record_head(rec, sizeof rec, &hseq, hprev));
    ASSERT_EQ(hseq, 5);
    ASSERT_ERR(dk_record_head(rec, 37, &hseq, hprev), DK_EDECODE); /* truncated prev */
}

/* dk_event_decode_chained is dk_event_decode_stored without the walk through the data
 * map and the character checks of the ids: on every body stored decode accepts, and on
 * thousands of mutations, it reads the same fields; where it accepts a body stored decode
 * refuses, data is still the body's rest, beginning as a map, and the version is right. */
TEST(chained_decode_reads_what_stored_decode_reads)
{
    size_t same = 0, only_chained = 0;
    for (int round = 0; round < 8; round++) {
        dk_event ev = sample(), stored, chained;
        ev.has_eff = round % 2;
        ev.has_expect = round % 3 == 0;
        ev.expect = 7;
        uint8_t *buf;
        size_t len;
        ASSERT_OK(dk_event_encode(&ev, &buf, &len));
        ASSERT_OK(dk_event_decode_chained(buf, len, &chained));
        ASSERT_OK(dk_event_decode_stored(buf, len, &stored));
        assert_same_event(&stored, &chained);
        ASSERT(chained.data + chained.data_len == buf + len);
        uint8_t *m = malloc(len + 1);
        for (int t = 0; t < 2000; t++) {
            memcpy(m, buf, len);
            size_t ml = mutate(m, len, len, t % 2);
            int s_ok = dk_event_decode_stored(m, ml, &stored) == 0;
            int c_ok = dk_event_decode_chained(m, ml, &chained) == 0;
            if (s_ok) {
                ASSERT(c_ok); /* never refuses what stored decode reads */
                assert_same_event(&stored, &chained);
                same++;
            } else if (c_ok) {
                /* the fields before data are all there and right; data is the rest */
                ASSERT(chained.data + chained.data_len == m + ml);
                ASSERT((chained.data[0] & 0xf0) == 0x80 || chained.data[0] == 0xde ||
                       chained.data[0] == 0xdf);
                ASSERT_EQ(chained.v, DK_EVENT_VERSION);
                ASSERT(chained.at >= 0);
                only_chained++;
            }
        }
        free(m);
        free(buf);
    }
    /* both kinds of body were met */
    ASSERT(same > 1000 && only_chained > 100);
}

/* An error message built from the one before (dk_errmsg() as an argument, the buffer the
 * new message is written to) keeps both. */
TEST(an_error_message_can_wrap_the_one_before)
{
    ASSERT_EQ(dk_fail(DK_EINVAL, "inner %d", 42), DK_EINVAL);
    ASSERT_EQ(dk_fail(DK_ECORRUPT, "outer: %s (%s)", dk_errmsg(), dk_errmsg()), DK_ECORRUPT);
    ASSERT_STR_EQ(dk_errmsg(), "outer: inner 42 (inner 42)");
}

TH_MAIN(
    TH_ENTRY(an_error_message_can_wrap_the_one_before) TH_ENTRY(round_trip)
        TH_ENTRY(round_trip_optional_fields) TH_ENTRY(empty_case_and_limits) TH_ENTRY(
            encode_rejects_bad_fields) TH_ENTRY(decode_hand_built_is_canonical)
            TH_ENTRY(decode_rejects_missing_and_misordered_fields) TH_ENTRY(
                decode_rejects_truncation_and_trailing_bytes)
                TH_ENTRY(decode_rejects_non_canonical_integers) TH_ENTRY(
                    decode_rejects_wrong_types_and_versions) TH_ENTRY(data_checks)
                    TH_ENTRY(data_depth_and_size) TH_ENTRY(msgpack_bounded_passes_every_whole_value)
                        TH_ENTRY(msgpack_bounded_names_a_count_the_bytes_cannot_hold) TH_ENTRY(
                            record_round_trip_and_rejections) TH_ENTRY(mutations_never_half_accept)
                            TH_ENTRY(stored_decode_agrees_with_full_decode)
                                TH_ENTRY(record_decode_agrees_with_msgpack_reference)
                                    TH_ENTRY(stored_decode_agrees_with_msgpack_reference)
                                        TH_ENTRY(chained_decode_reads_what_stored_decode_reads))
