/* event.h - the event body and the ledger record, and their canonical msgpack codec.
 * One encoding per value: decode(encode(x)) == x and encode(decode(b)) == b. */
#ifndef DOCKET_EVENT_H
#define DOCKET_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define DK_EVENT_VERSION  1     /* body schema version written today */
#define DK_RECORD_VERSION 1     /* record layout version */
#define DK_TYPE_MAX       64    /* bytes in an event type */
#define DK_CASE_MAX       64    /* bytes in a case id */
#define DK_ACTOR_MAX      64    /* bytes in an actor id */
#define DK_DATA_MAX       65536 /* bytes of the encoded data map */
#define DK_DEPTH_MAX      16    /* nesting depth inside data */
#define DK_CMD_BYTES      16    /* command id */
#define DK_SIG_BYTES      64    /* Ed25519 signature */
#define DK_HASH_BYTES     32    /* SHA-256 */
#define DK_SIGS_MAX       4     /* signatures on one record: author + co-signers */
#define DK_BODY_MAX       (DK_DATA_MAX + 1024)

/* A decoded event body. Strings are NUL-terminated copies; `data` is the
 * canonical msgpack map borrowed from the buffer that was decoded (or, for
 * encoding, supplied by the caller). System events (ledger.*, actor.*) have
 * an empty case id. */
typedef struct dk_event {
    uint32_t v;
    char type[DK_TYPE_MAX + 1];
    char case_id[DK_CASE_MAX + 1];
    char actor[DK_ACTOR_MAX + 1];
    int64_t at; /* actor's clock, microseconds since the epoch */
    int has_eff;
    int64_t eff; /* effective time, microseconds since the epoch */
    uint8_t cmd[DK_CMD_BYTES];
    int has_expect;
    uint64_t expect; /* expected case version before this event */
    const uint8_t *data;
    size_t data_len;
} dk_event;

/* Encode `ev` canonically into a malloc'd buffer (*out, *out_len); the caller
 * frees it with free(). Validates every field and bound, as decode does. */
int dk_event_encode(const dk_event *ev, uint8_t **out, size_t *out_len);

/* Decode and validate a body. Rejects (DK_EDECODE, with dk_errmsg() naming
 * the problem) anything truncated, non-canonical, with trailing bytes, an
 * unknown version, wrong field types or oversize fields. ev->data points
 * into `buf`. */
int dk_event_decode(const uint8_t *buf, size_t len, dk_event *ev);

/* Decode a body read back from a ledger that accepted it (and so checked it
 * with dk_event_decode): the fields and their types, but not the canonical
 * re-encoding or the data map's contents, which is several times faster.
 * Never use it on bytes from outside the ledger. */
int dk_event_decode_stored(const uint8_t *buf, size_t len, dk_event *ev);
/* dk_event_decode_stored without the walk through the data map (data is the rest of
 * the body, its last value, checked only to begin as a map) and without the checks of
 * the characters of type, case id and actor id (each string still fits its field and
 * holds no NUL; the version and a non-negative `at` are still checked). For a reader
 * that checks the hash chain over these very bytes before it keeps what it made of
 * them (a rebuild's first phase): a body the ledger accepted passed all of that at its
 * append, and its data ends where the body does. Readers of ev->data stay bounded by
 * data_len, and must not trust its contents. */
int dk_event_decode_chained(const uint8_t *buf, size_t len, dk_event *ev);

/* Check that `data` is one canonical data map: string keys in strictly
 * increasing byte order, values nil/bool/integer/string/array/map only,
 * valid UTF-8, depth <= DK_DEPTH_MAX, size <= DK_DATA_MAX. */
int dk_data_check(const uint8_t *data, size_t len);

/* 0 if no array or map in the one msgpack value at buf declares more entries than the
 * bytes after its header could hold, and none is nested inside 32 others (msgpack-c's
 * limit, which it reports as out of memory); else DK_EDECODE naming `what` and the header.
 * msgpack-c reserves a container's entries from its header before reading them (a
 * 5-byte map32 header asks for 128 GiB), so bytes not yet known good pass here first. */
int dk_msgpack_bounded(const uint8_t *buf, size_t len, const char *what);

/* Look up a top-level key in a canonical data map (every decoded event's data is one).
 * Out-params borrow `data`. 0, DK_ENOTFOUND if absent, DK_ESCHEMA if the value has
 * another type. The map is read only as far as the key: it is not checked again. */
int dk_data_str(const uint8_t *data, size_t len, const char *key, const char **s, size_t *slen);
int dk_data_u64(const uint8_t *data, size_t len, const char *key, uint64_t *v);
int dk_data_bool(const uint8_t *data, size_t len, const char *key, int *v);
/* Call `each` for every string of the array at `key`. */
int dk_data_strlist(const uint8_t *data, size_t len, const char *key,
                    int (*each)(void *ctx, const char *s, size_t slen), void *ctx);

/* One signature on a record. */
typedef struct dk_sig {
    char actor[DK_ACTOR_MAX + 1];
    uint8_t sig[DK_SIG_BYTES];
} dk_sig;

/* A ledger record: what the ledger stores for each accepted body. The leaf
 * hash covers exactly raw[0..raw_len). Pointers borrow the decoded buffer. */
typedef struct dk_record {
    uint64_t seq;
    int64_t recorded_at; /* ledger clock, microseconds, strictly increasing */
    uint8_t prev[DK_HASH_BYTES];
    const uint8_t *body;
    size_t body_len;
    size_t nsigs;
    dk_sig sigs[DK_SIGS_MAX];
    const uint8_t *raw;
    size_t raw_len;
} dk_record;

/* Encode a record (from seq, recorded_at, prev, body, sigs) into a malloc'd
 * buffer. raw/raw_len of `rec` are ignored. */
int dk_record_encode(const dk_record *rec, uint8_t **out, size_t *out_len);

/* Decode and validate a record's layout (not its body or signatures). */
int dk_record_decode(const uint8_t *raw, size_t len, dk_record *rec);
/* The same, with the signatures' shapes checked but none kept (nsigs is 0): for readers that
 * check the hash chain, which covers them, and not the signatures (a rebuild of the views).
 * It accepts exactly the records dk_record_decode accepts. */
int dk_record_decode_unsigned(const uint8_t *raw, size_t len, dk_record *rec);
/* The fields up to the body only: the signatures, the record's last field, are not read
 * (nsigs is 0, and sigs is not set). For a reader that checks the hash chain over these
 * very bytes before it keeps what it made of them (a rebuild's first phase): what follows
 * the body is then what the append wrote. */
int dk_record_decode_chained(const uint8_t *raw, size_t len, dk_record *rec);
/* A record's seq and prev, reading only the fields before its body: enough to walk the
 * hash chain (the leaf hash covers all of raw); the rest is not checked. */
int dk_record_head(const uint8_t *raw, size_t len, uint64_t *seq, uint8_t prev[DK_HASH_BYTES]);

#endif
