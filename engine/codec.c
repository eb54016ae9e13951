/* codec.c - canonical msgpack encoding of event bodies and records, and decoding of new
 * input, which re-encodes what it read and demands identical bytes (codec_read.c reads
 * what the ledger stored). */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "docket/error.h"
#include "docket/event.h"
#include "docket/time.h"
#include "engine_int.h"

/* Body keys, in their one canonical order. */
static const char *const body_keys[] = {"v",   "type", "case",   "actor", "at",
                                        "eff", "cmd",  "expect", "data"};
enum { K_V, K_TYPE, K_CASE, K_ACTOR, K_AT, K_EFF, K_CMD, K_EXPECT, K_DATA, K_COUNT };

int dk__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p++;
        if (c == 0)
            return 0;
        if (c < 0x80)
            continue;
        size_t n;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) < n)
            return 0;
        for (size_t i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        p += n;
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    }
    return 1;
}

/* Canonical map key order: bytewise, a shorter prefix first. */
static int key_cmp(const msgpack_object_str *a, const msgpack_object_str *b)
{
    size_t n = a->size < b->size ? a->size : b->size;
    int c = memcmp(a->ptr, b->ptr, n);
    if (c != 0)
        return c;
    return a->size < b->size ? -1 : a->size > b->size;
}

/* How body_from_object checks data: as any input is checked, or also against the rules
 * for new events. */
enum { DATA_INPUT, DATA_NEW };

/* Text in a new event is printed to people's terminals: no control character but tab
 * and newline. A stored event is read as it was accepted. */
static int new_text_ok(const char *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
            return dk__fail(DK_ESCHEMA,
                            "data holds a control character (text may hold tabs and line "
                            "breaks, not terminal escapes or carriage returns)");
    }
    return 0;
}

/* Walk a data value: allowed types, string keys in order, UTF-8, depth; with DATA_NEW,
 * the text rule for new events too. */
static int check_value(const msgpack_object *o, int depth, int how)
{
    if (depth > DK_DEPTH_MAX)
        return dk__fail(DK_EDECODE, "data is nested deeper than %d levels", DK_DEPTH_MAX);
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_BOOLEAN:
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return 0;
    case MSGPACK_OBJECT_STR:
        if (!dk__utf8_valid(o->via.str.ptr, o->via.str.size))
            return dk__fail(DK_EDECODE, "data holds a string that is not valid UTF-8");
        return how == DATA_NEW ? new_text_ok(o->via.str.ptr, o->via.str.size) : 0;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int rc = check_value(&o->via.array.ptr[i], depth + 1, how);
            if (rc)
                return rc;
        }
        return 0;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                return dk__fail(DK_EDECODE, "data has a map key that is not a string");
            if (!dk__utf8_valid(kv->key.via.str.ptr, kv->key.via.str.size))
                return dk__fail(DK_EDECODE, "data has a map key that is not valid UTF-8");
            if (i > 0 && key_cmp(&o->via.map.ptr[i - 1].key.via.str, &kv->key.via.str) >= 0)
                return dk__fail(DK_EDECODE,
                                "data map key '%.*s' is out of canonical order or repeated",
                                (int)kv->key.via.str.size, kv->key.via.str.ptr);
            int rc = how == DATA_NEW ? new_text_ok(kv->key.via.str.ptr, kv->key.via.str.size) : 0;
            if (rc == 0)
                rc = check_value(&kv->val, depth + 1, how);
            if (rc)
                return rc;
        }
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return dk__fail(DK_EDECODE, "data holds a float; numbers must be integers");
    case MSGPACK_OBJECT_BIN:
        return dk__fail(DK_EDECODE, "data holds binary; use a base64 or hex string");
    default:
        return dk__fail(DK_EDECODE, "data holds an extension type, which docket does not use");
    }
}

/* Unpack exactly one msgpack value covering all of buf. */
static int unpack_one(const uint8_t *buf, size_t len, msgpack_zone *z, msgpack_object *o,
                      const char *what)
{
    size_t off = 0;
    int rc = dk_msgpack_bounded(buf, len, what);
    if (rc)
        return rc;
    msgpack_unpack_return r = msgpack_unpack((const char *)buf, len, &off, z, o);
    if (r == MSGPACK_UNPACK_SUCCESS && off == len)
        return 0;
    if (r == MSGPACK_UNPACK_EXTRA_BYTES || (r == MSGPACK_UNPACK_SUCCESS && off < len))
        return dk__fail(DK_EDECODE, "%s has %zu trailing bytes", what, len - off);
    if (r == MSGPACK_UNPACK_CONTINUE)
        return dk__fail(DK_EDECODE, "%s is truncated", what);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return dk__fail(DK_ENOMEM, "out of memory decoding %s", what);
    return dk__fail(DK_EDECODE, "%s is not valid msgpack", what);
}

/* Compare a canonical re-encoding with the input. */
static int same_bytes(const msgpack_sbuffer *sb, const uint8_t *buf, size_t len, const char *what)
{
    if (sb->size != len || memcmp(sb->data, buf, len) != 0)
        return dk__fail(DK_EDECODE,
                        "%s is not in canonical form (key order, integer or length encoding)",
                        what);
    return 0;
}

int dk_data_check(const uint8_t *data, size_t len)
{
    if (len > DK_DATA_MAX)
        return dk__fail(DK_ETOOBIG, "data is %zu bytes; the limit is %d", len, DK_DATA_MAX);
    msgpack_zone z;
    msgpack_object o;
    msgpack_sbuffer sb;
    if (!msgpack_zone_init(&z, 1024))
        return dk__fail(DK_ENOMEM, "out of memory");
    msgpack_sbuffer_init(&sb);
    int rc = unpack_one(data, len, &z, &o, "data");
    if (rc == 0 && o.type != MSGPACK_OBJECT_MAP)
        rc = dk__fail(DK_EDECODE, "data must be a map");
    if (rc == 0)
        rc = check_value(&o, 1, DATA_INPUT);
    if (rc == 0) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, o);
        rc = same_bytes(&sb, data, len, "data");
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&z);
    return rc;
}

static int valid_type(const char *s, size_t n)
{
    if (n == 0 || n > DK_TYPE_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int valid_case(const char *s, size_t n)
{
    if (n > DK_CASE_MAX || !dk__utf8_valid(s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
            ((unsigned char)s[i] == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0))
            return 0; /* C0, DEL, or a C1 control (U+0080..U+009F, UTF-8 c2 80..c2 9f) */
    return 1;
}

int dk__event_check_version_at(const dk_event *ev)
{
    if (ev->v != DK_EVENT_VERSION)
        return dk__fail(DK_EDECODE, "unknown body schema version %u (this docket reads %d)",
                        (unsigned)ev->v, DK_EVENT_VERSION);
    if (ev->at < 0)
        return dk__fail(DK_EDECODE, "'at' is negative");
    return 0;
}

int dk__event_check_fields(const dk_event *ev)
{
    int rc = dk__event_check_version_at(ev);
    if (rc)
        return rc;
    if (!valid_type(ev->type, strlen(ev->type)))
        return dk__fail(DK_EDECODE,
                        "event type '%s' is not 1..%d characters of [a-z0-9_.] starting "
                        "with a letter",
                        ev->type, DK_TYPE_MAX);
    if (!valid_case(ev->case_id, strlen(ev->case_id)))
        return dk__fail(DK_EDECODE,
                        "case id is not 0..%d bytes of printable UTF-8 without control characters",
                        DK_CASE_MAX);
    if (!dk__actor_id_valid(ev->actor, strlen(ev->actor)))
        return dk__fail(DK_EDECODE, "actor id '%s' is not 1..%d characters of [A-Za-z0-9._@-]",
                        ev->actor, DK_ACTOR_MAX);
    if (ev->data == NULL)
        return dk__fail(DK_EDECODE, "event has no data map");
    return 0;
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Pack the body; *data_off receives where the data map starts. */
static int pack_body(msgpack_sbuffer *sb, const dk_event *ev, const msgpack_object *data_obj)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7 + (ev->has_eff != 0) + (ev->has_expect != 0));
    pack_cstr(&pk, body_keys[K_V]);
    msgpack_pack_uint32(&pk, ev->v);
    pack_cstr(&pk, body_keys[K_TYPE]);
    pack_cstr(&pk, ev->type);
    pack_cstr(&pk, body_keys[K_CASE]);
    pack_cstr(&pk, ev->case_id);
    pack_cstr(&pk, body_keys[K_ACTOR]);
    pack_cstr(&pk, ev->actor);
    pack_cstr(&pk, body_keys[K_AT]);
    msgpack_pack_int64(&pk, ev->at);
    if (ev->has_eff) {
        pack_cstr(&pk, body_keys[K_EFF]);
        msgpack_pack_int64(&pk, ev->eff);
    }
    pack_cstr(&pk, body_keys[K_CMD]);
    msgpack_pack_bin(&pk, DK_CMD_BYTES);
    msgpack_pack_bin_body(&pk, ev->cmd, DK_CMD_BYTES);
    if (ev->has_expect) {
        pack_cstr(&pk, body_keys[K_EXPECT]);
        msgpack_pack_uint64(&pk, ev->expect);
    }
    pack_cstr(&pk, body_keys[K_DATA]);
    if (data_obj)
        return msgpack_pack_object(&pk, *data_obj);
    return msgpack_sbuffer_write(sb, (const char *)ev->data, ev->data_len);
}

int dk_event_encode(const dk_event *ev, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int rc = dk__event_check_fields(ev);
    if (rc == 0)
        rc = dk_data_check(ev->data, ev->data_len);
    if (rc)
        return rc;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (pack_body(&sb, ev, NULL) != 0 || sb.data == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return dk__fail(DK_ENOMEM, "out of memory encoding an event");
    }
    *out_len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
    return 0;
}

/* Copy a msgpack string field into a fixed buffer. */
static int take_str(const msgpack_object *o, char *dst, size_t cap, const char *field)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return dk__fail(DK_EDECODE, "field '%s' must be a string", field);
    if (o->via.str.size >= cap)
        return dk__fail(DK_ETOOBIG, "field '%s' is %u bytes; the limit is %zu", field,
                        (unsigned)o->via.str.size, cap - 1);
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    if (strlen(dst) != o->via.str.size)
        return dk__fail(DK_EDECODE, "field '%s' contains a NUL byte", field);
    return 0;
}

static int take_int(const msgpack_object *o, int64_t *v, const char *field)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return dk__fail(DK_EDECODE, "field '%s' must be a 64-bit signed integer", field);
}

static int body_from_object(const msgpack_object *root, dk_event *ev, const msgpack_object **data,
                            int how)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return dk__fail(DK_EDECODE, "event body must be a map");
    const msgpack_object_map *m = &root->via.map;
    int want = K_V, rc = 0;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *val = &m->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return dk__fail(DK_EDECODE, "event body has a non-string key");
        int idx = -1;
        for (int j = want; j < K_COUNT; j++) {
            if (strlen(body_keys[j]) == k->via.str.size &&
                memcmp(body_keys[j], k->via.str.ptr, k->via.str.size) == 0) {
                idx = j;
                break;
            }
        }
        if (idx < 0)
            return dk__fail(DK_EDECODE,
                            "event body key '%.*s' is unknown, repeated or out of order",
                            (int)k->via.str.size, k->via.str.ptr);
        for (int j = want; j < idx; j++)
            if (j != K_EFF && j != K_EXPECT)
                return dk__fail(DK_EDECODE,
                                "event body lacks required field '%s' before '%s' (or has it out "
                                "of order)",
                                body_keys[j], body_keys[idx]);
        want = idx + 1;
        switch (idx) {
        case K_V:
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER || val->via.u64 > UINT32_MAX)
                return dk__fail(DK_EDECODE, "field 'v' must be a small unsigned integer");
            ev->v = (uint32_t)val->via.u64;
            if (ev->v != DK_EVENT_VERSION)
                return dk__fail(DK_EDECODE, "unknown body schema version %u (this docket reads %d)",
                                (unsigned)ev->v, DK_EVENT_VERSION);
            break;
        case K_TYPE:
            rc = take_str(val, ev->type, sizeof ev->type, "type");
            break;
        case K_CASE:
            rc = take_str(val, ev->case_id, sizeof ev->case_id, "case");
            break;
        case K_ACTOR:
            rc = take_str(val, ev->actor, sizeof ev->actor, "actor");
            break;
        case K_AT:
            rc = take_int(val, &ev->at, "at");
            break;
        case K_EFF:
            rc = take_int(val, &ev->eff, "eff");
            ev->has_eff = 1;
            break;
        case K_CMD:
            if (val->type != MSGPACK_OBJECT_BIN || val->via.bin.size != DK_CMD_BYTES)
                return dk__fail(DK_EDECODE, "field 'cmd' must be %d bytes of binary", DK_CMD_BYTES);
            memcpy(ev->cmd, val->via.bin.ptr, DK_CMD_BYTES);
            break;
        case K_EXPECT:
            if (val->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return dk__fail(DK_EDECODE, "field 'expect' must be an unsigned integer");
            ev->expect = val->via.u64;
            ev->has_expect = 1;
            break;
        case K_DATA:
            if (val->type != MSGPACK_OBJECT_MAP)
                return dk__fail(DK_EDECODE, "field 'data' must be a map");
            rc = check_value(val, 1, how);
            *data = val;
            break;
        }
        if (rc)
            return rc;
    }
    for (int j = want; j < K_COUNT; j++)
        if (j != K_EFF && j != K_EXPECT)
            return dk__fail(DK_EDECODE, "event body lacks required field '%s'", body_keys[j]);
    return 0;
}

static int decode_input(const uint8_t *buf, size_t len, dk_event *ev, int how)
{
    memset(ev, 0, sizeof *ev);
    if (len > DK_BODY_MAX)
        return dk__fail(DK_ETOOBIG, "event body is %zu bytes; the limit is %d", len, DK_BODY_MAX);
    msgpack_zone z;
    msgpack_object root;
    const msgpack_object *data = NULL;
    msgpack_sbuffer sb;
    if (!msgpack_zone_init(&z, 2048))
        return dk__fail(DK_ENOMEM, "out of memory");
    msgpack_sbuffer_init(&sb);
    int rc = unpack_one(buf, len, &z, &root, "event body");
    if (rc == 0)
        rc = body_from_object(&root, ev, &data, how);
    if (rc == 0) {
        /* Re-encode everything before data, then data itself: the offset at
         * which data starts in the canonical form is where it is in buf. */
        rc = pack_body(&sb, ev, data) != 0 ? dk__fail(DK_ENOMEM, "out of memory") : 0;
    }
    if (rc == 0)
        rc = same_bytes(&sb, buf, len, "event body");
    if (rc == 0) {
        /* data is the last value, so it is the tail of the buffer. */
        msgpack_sbuffer tail;
        msgpack_sbuffer_init(&tail);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &tail, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *data);
        ev->data_len = tail.size;
        ev->data = buf + len - tail.size;
        msgpack_sbuffer_destroy(&tail);
        if (ev->data_len > DK_DATA_MAX)
            rc = dk__fail(DK_ETOOBIG, "data is %zu bytes; the limit is %d", ev->data_len,
                          DK_DATA_MAX);
    }
    if (rc == 0)
        rc = dk__event_check_fields(ev);
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&z);
    if (rc)
        memset(ev, 0, sizeof *ev);
    return rc;
}

int dk_event_decode(const uint8_t *buf, size_t len, dk_event *ev)
{
    return decode_input(buf, len, ev, DATA_INPUT);
}

int dk__event_decode_new(const uint8_t *buf, size_t len, dk_event *ev)
{
    int rc = decode_input(buf, len, ev, DATA_NEW);
    if (rc == 0 && ev->at > DK_TIME_LATEST)
        rc = dk__fail(DK_ESCHEMA, "'at' is past the year 9999");
    else if (rc == 0 && ev->has_eff && (ev->eff < DK_TIME_EARLIEST || ev->eff > DK_TIME_LATEST))
        rc = dk__fail(DK_ESCHEMA, "'eff' is not a time in the years 0001-9999 (UTC)");
    if (rc)
        memset(ev, 0, sizeof *ev);
    return rc;
}

/* ---- records: [version, seq, recorded_at, prev, body, [[actor, sig], ...]] ---- */

static int pack_record(msgpack_sbuffer *sb, const dk_record *rec)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint32(&pk, DK_RECORD_VERSION);
    msgpack_pack_uint64(&pk, rec->seq);
    msgpack_pack_int64(&pk, rec->recorded_at);
    msgpack_pack_bin(&pk, DK_HASH_BYTES);
    msgpack_pack_bin_body(&pk, rec->prev, DK_HASH_BYTES);
    msgpack_pack_bin(&pk, rec->body_len);
    msgpack_pack_bin_body(&pk, rec->body, rec->body_len);
    msgpack_pack_array(&pk, rec->nsigs);
    for (size_t i = 0; i < rec->nsigs; i++) {
        msgpack_pack_array(&pk, 2);
        pack_cstr(&pk, rec->sigs[i].actor);
        msgpack_pack_bin(&pk, DK_SIG_BYTES);
        if (msgpack_pack_bin_body(&pk, rec->sigs[i].sig, DK_SIG_BYTES) != 0)
            return -1;
    }
    return 0;
}

int dk_record_encode(const dk_record *rec, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (rec->nsigs < 1 || rec->nsigs > DK_SIGS_MAX)
        return dk__fail(DK_EINVAL, "a record carries 1..%d signatures, not %zu", DK_SIGS_MAX,
                        rec->nsigs);
    if (rec->body_len > DK_BODY_MAX)
        return dk__fail(DK_ETOOBIG, "event body is %zu bytes; the limit is %d", rec->body_len,
                        DK_BODY_MAX);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (pack_record(&sb, rec) != 0 || sb.data == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return dk__fail(DK_ENOMEM, "out of memory encoding a record");
    }
    *out_len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
    return 0;
}
