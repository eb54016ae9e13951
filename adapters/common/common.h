/* common.h - helpers every adapter shares: JSON <-> canonical msgpack data
 * maps (jansson, msgpack-c) and RFC 3339 times. Adapters only; never the engine. */
#ifndef DOCKET_ADAPTERS_COMMON_H
#define DOCKET_ADAPTERS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Encode a JSON object as a canonical docket data map (keys sorted bytewise,
 * shortest integers). Rejects floats, non-objects at the top level, nesting
 * deeper than DK_DEPTH_MAX and results over DK_DATA_MAX with DK_EINVAL and a
 * message in err naming the JSON path ("data.applicant.age: ..."). *out is
 * malloc'd; the caller frees it. */
int dk_json_to_data(const json_t *obj, uint8_t **out, size_t *out_len, char *err, size_t errcap);
/* Parse JSON text then encode as above. */
int dk_json_text_to_data(const char *text, uint8_t **out, size_t *out_len, char *err,
                         size_t errcap);
/* Decode a data map (or any msgpack value docket stores) into a new JSON
 * value; NULL if malformed. */
json_t *dk_json_from_data(const uint8_t *data, size_t len);

/* Parse an RFC 3339 timestamp ("2026-11-24T10:00:00Z", "...+01:00", with
 * optional fraction up to microseconds) or a plain date "2026-11-24" (midnight
 * UTC) into microseconds since the epoch. DK_EINVAL if malformed. */
int dk_time_parse(const char *s, int64_t *us);
/* Format microseconds since the epoch as "2026-11-24T10:00:00.000000Z". */
#define DK_TIME_LEN 48 /* room for any int64 time, formatted */
void dk_time_format(int64_t us, char out[DK_TIME_LEN]);
/* Wall clock, microseconds since the epoch. */
int64_t dk_time_now(void);

#endif
