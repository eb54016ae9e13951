/* mpcheck.c - a walk of msgpack bytes before msgpack-c unpacks them: msgpack_unpack
 * reserves an array's or a map's entries from the count in its header, before it reads them. */
#include "docket/error.h"
#include "docket/event.h"
#include "engine_int.h"

/* Bytes that follow a type byte before its payload (lengths, ext types, fixed scalars),
 * and the width of the length or count those bytes hold, for every type byte from 0xc0.
 * 0xc1 is never used; msgpack-c names it. */
static const struct {
    uint8_t skip;  /* bytes after the type byte (fixed scalar payloads included) */
    uint8_t width; /* of them, the big-endian length or count at their start; 0: none */
} after[32] = {
    [0x00] = {0, 0}, [0x01] = {0, 0}, [0x02] = {0, 0}, [0x03] = {0, 0}, [0x04] = {1, 1},
    [0x05] = {2, 2}, [0x06] = {4, 4}, [0x07] = {2, 1}, [0x08] = {3, 2}, [0x09] = {5, 4},
    [0x0a] = {4, 0}, [0x0b] = {8, 0}, [0x0c] = {1, 0}, [0x0d] = {2, 0}, [0x0e] = {4, 0},
    [0x0f] = {8, 0}, [0x10] = {1, 0}, [0x11] = {2, 0}, [0x12] = {4, 0}, [0x13] = {8, 0},
    [0x14] = {2, 0}, [0x15] = {3, 0}, [0x16] = {5, 0}, [0x17] = {9, 0}, [0x18] = {17, 0},
    [0x19] = {1, 1}, [0x1a] = {2, 2}, [0x1b] = {4, 4}, [0x1c] = {2, 2}, [0x1d] = {4, 4},
    [0x1e] = {2, 2}, [0x1f] = {4, 4},
};

static uint32_t be_n(const uint8_t *p, int width)
{
    uint32_t v = 0;
    for (int i = 0; i < width; i++)
        v = v << 8 | p[i];
    return v;
}

/* msgpack-c's unpacker holds 32 open containers (MSGPACK_EMBED_STACK_SIZE) and answers a
 * container inside the 32nd, even an empty one, with MSGPACK_UNPACK_NOMEM_ERROR, which
 * would read as "out of memory". */
#define MP_DEPTH_MAX 32

/* Every value still to read takes at least one byte, so the values owed (`owed`) can
 * never exceed the bytes left: a header that would make them is refused before msgpack-c
 * sees it. With `nesting`, `left` holds the values left in each open container, to name
 * nesting deeper than msgpack-c reads. One pass, no memory. Inlined twice, so that the
 * fold's copy has no nesting branch at all. */
static inline __attribute__((always_inline)) int walk(const uint8_t *buf, size_t len,
                                                      const char *what, const int nesting)
{
    size_t pos = 0, owed = 1;
    uint64_t left[MP_DEPTH_MAX];
    int depth = 0;
    while (owed > 0 && pos < len) {
        owed--;
        size_t at = pos;
        uint8_t b = buf[pos++];
        uint64_t items = 0; /* values this one holds */
        const char *kind = NULL;
        if (b <= 0x7f || b >= 0xe0) {
            /* fixint */
        } else if (b <= 0x8f) {
            items = 2u * (b & 0x0fu), kind = "a map";
        } else if (b <= 0x9f) {
            items = b & 0x0fu, kind = "an array";
        } else if (b <= 0xbf) {
            pos += b & 0x1fu; /* fixstr */
        } else {
            int i = b - 0xc0;
            if (len - pos < after[i].skip)
                return 0; /* truncated within a header: msgpack-c names it */
            uint32_t n = be_n(buf + pos, after[i].width);
            pos += after[i].skip;
            if (b >= 0xdc && b <= 0xdd)
                items = n, kind = "an array";
            else if (b >= 0xde)
                items = 2u * (uint64_t)n, kind = "a map";
            else if (after[i].width > 0)
                pos += n; /* str, bin or ext payload */
            if (pos > len)
                return 0; /* a payload past the end: msgpack-c calls it truncated */
        }
        if (kind != NULL) {
            if (items > len - pos) {
                int map = kind[1] == ' '; /* "a map" */
                return dk__fail(DK_EDECODE,
                                "%s is damaged or truncated: %s at byte %zu declares %llu %s, "
                                "and only %zu byte%s",
                                what, kind, at, (unsigned long long)(map ? items / 2 : items),
                                map ? "entries" : "items", len - pos,
                                len - pos == 1 ? " follows" : "s follow");
            }
            if (owed + items > len - pos)
                return dk__fail(DK_EDECODE,
                                "%s is damaged or truncated: %s at byte %zu and the %zu value%s "
                                "after it need more than the %zu bytes that follow",
                                what, kind, at, owed, owed == 1 ? "" : "s", len - pos);
            owed += items;
        }
        if (!nesting)
            continue;
        if (kind != NULL && depth == MP_DEPTH_MAX) /* an empty one too */
            return dk__fail(DK_EDECODE, "%s is nested deeper than %d levels at byte %zu", what,
                            MP_DEPTH_MAX, at);
        if (items > 0) { /* its values follow */
            left[depth++] = items;
            continue;
        }
        while (depth > 0 && --left[depth - 1] == 0) /* this value ends its containers */
            depth--;
    }
    return 0;
}

int dk_msgpack_bounded(const uint8_t *buf, size_t len, const char *what)
{
    return walk(buf, len, what, 1);
}

/* The fold reads data the append checked, damaged only by a failing disk: the counts
 * must be bounded (else gigabytes are asked for), while nesting msgpack-c cannot read is
 * refused by msgpack-c, which the fold then reports, and the chain names the record. With
 * the nesting stack the walk cost the rebuild of the 200k ledger 42.0M instructions, without
 * it 26.2M (cachegrind; 1,405M outside SHA-256 in all). */
int dk__msgpack_counts_bounded(const uint8_t *buf, size_t len, const char *what)
{
    return walk(buf, len, what, 0);
}
