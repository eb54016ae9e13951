/* json.c - JSON (jansson) <-> canonical docket data maps (msgpack-c), so the
 * CLI and HTTP adapters take and show event data as JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "common.h"
#include "docket/docket.h"

typedef struct key_ref {
    const char *key;
    size_t len;
    json_t *val;
} key_ref;

static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int pack_json(msgpack_packer *pk, const json_t *v, char *path, size_t plen, size_t pcap,
                     int depth, char *err, size_t errcap)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (depth > DK_DEPTH_MAX) {
            snprintf(err, errcap, "%s: nested deeper than %d levels", path, DK_DEPTH_MAX);
            return DK_EINVAL;
        }
        size_t n = json_object_size(v), i = 0;
        key_ref *keys = calloc(n ? n : 1, sizeof *keys);
        if (keys == NULL) {
            snprintf(err, errcap, "out of memory");
            return DK_ENOMEM;
        }
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)v, k, val)
        {
            keys[i].key = k;
            keys[i].len = strlen(k);
            keys[i].val = val;
            i++;
        }
        qsort(keys, n, sizeof *keys, key_ref_cmp);
        msgpack_pack_map(pk, n);
        int rc = 0;
        for (i = 0; i < n && rc == 0; i++) {
            msgpack_pack_str(pk, keys[i].len);
            msgpack_pack_str_body(pk, keys[i].key, keys[i].len);
            int w = snprintf(path + plen, pcap - plen, ".%s", keys[i].key);
            size_t np = w < 0 ? plen : plen + (size_t)w;
            if (np >= pcap)
                np = pcap - 1;
            rc = pack_json(pk, keys[i].val, path, np, pcap, depth + 1, err, errcap);
            path[plen] = 0;
        }
        free(keys);
        return rc;
    }
    case JSON_ARRAY: {
        if (depth > DK_DEPTH_MAX) {
            snprintf(err, errcap, "%s: nested deeper than %d levels", path, DK_DEPTH_MAX);
            return DK_EINVAL;
        }
        size_t n = json_array_size(v);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++) {
            int w = snprintf(path + plen, pcap - plen, "[%zu]", i);
            size_t np = w < 0 ? plen : plen + (size_t)w;
            if (np >= pcap)
                np = pcap - 1;
            int rc = pack_json(pk, json_array_get(v, i), path, np, pcap, depth + 1, err, errcap);
            path[plen] = 0;
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
        return 0;
    case JSON_REAL:
        snprintf(err, errcap, "%s: numbers must be integers (got %g)", path, json_real_value(v));
        return DK_EINVAL;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        return 0;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        return 0;
    case JSON_NULL:
        msgpack_pack_nil(pk);
        return 0;
    }
    snprintf(err, errcap, "%s: unsupported JSON value", path);
    return DK_EINVAL;
}

int dk_json_to_data(const json_t *obj, uint8_t **out, size_t *out_len, char *err, size_t errcap)
{
    *out = NULL;
    *out_len = 0;
    if (obj == NULL || !json_is_object(obj)) {
        snprintf(err, errcap, "data must be a JSON object");
        return DK_EINVAL;
    }
    char path[512] = "data";
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = pack_json(&pk, obj, path, strlen(path), sizeof path, 1, err, errcap);
    if (rc == 0 && sb.size > DK_DATA_MAX) {
        snprintf(err, errcap, "data is %zu bytes encoded; the limit is %d", sb.size, DK_DATA_MAX);
        rc = DK_EINVAL;
    }
    if (rc == 0 && dk_data_check((const uint8_t *)sb.data, sb.size) != 0) {
        snprintf(err, errcap, "data: %s", dk_errmsg());
        rc = DK_EINVAL;
    }
    if (rc) {
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    *out_len = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
    if (*out == NULL) { /* an empty map still has one byte, so this is OOM */
        snprintf(err, errcap, "out of memory");
        return DK_ENOMEM;
    }
    return 0;
}

int dk_json_text_to_data(const char *text, uint8_t **out, size_t *out_len, char *err, size_t errcap)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    *out = NULL;
    *out_len = 0;
    if (v == NULL) {
        snprintf(err, errcap, "data is not valid JSON: %s at line %d column %d", je.text, je.line,
                 je.column);
        return DK_EINVAL;
    }
    int rc = dk_json_to_data(v, out, out_len, err, errcap);
    json_decref(v);
    return rc;
}

static json_t *to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) /* json_int_t is long long */
            return NULL;
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        char *b64 = malloc(dk_b64_len(o->via.bin.size));
        if (b64 == NULL)
            return NULL;
        dk_b64_encode((const uint8_t *)o->via.bin.ptr, o->via.bin.size, b64);
        json_t *s = json_string(b64);
        free(b64);
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *e = to_json(&o->via.array.ptr[i]);
            if (e == NULL || json_array_append_new(a, e) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *e = kv->key.type == MSGPACK_OBJECT_STR ? to_json(&kv->val) : NULL;
            char *k = e ? strndup(kv->key.via.str.ptr, kv->key.via.str.size) : NULL;
            if (k == NULL || json_object_set_new(m, k, e) != 0) {
                if (k == NULL)
                    json_decref(e);
                free(k);
                json_decref(m);
                return NULL;
            }
            free(k);
        }
        return m;
    }
    default:
        return NULL;
    }
}

json_t *dk_json_from_data(const uint8_t *data, size_t len)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    if (dk_msgpack_bounded(data, len, "data") != 0 || !msgpack_zone_init(&z, 1024))
        return NULL;
    json_t *v = NULL;
    if (msgpack_unpack((const char *)data, len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
        off == len)
        v = to_json(&o);
    msgpack_zone_destroy(&z);
    return v;
}
