/* test_codec.c - unit tests of the canonical event and record codec: round
 * trips, and a named rejection for every class of bad input. */
#include <msgpack.h>

#include "docket/docket.h"
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

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
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
}

TH_MAIN(TH_ENTRY(round_trip) TH_ENTRY(round_trip_optional_fields) TH_ENTRY(empty_case_and_limits)
            TH_ENTRY(encode_rejects_bad_fields) TH_ENTRY(decode_hand_built_is_canonical)
                TH_ENTRY(decode_rejects_missing_and_misordered_fields)
                    TH_ENTRY(decode_rejects_truncation_and_trailing_bytes)
                        TH_ENTRY(decode_rejects_non_canonical_integers) TH_ENTRY(
                            decode_rejects_wrong_types_and_versions) TH_ENTRY(data_checks)
                            TH_ENTRY(data_depth_and_size) TH_ENTRY(record_round_trip_and_rejections)
                                TH_ENTRY(mutations_never_half_accept)
                                    TH_ENTRY(stored_decode_agrees_with_full_decode)
                                        TH_ENTRY(record_decode_agrees_with_msgpack_reference))
