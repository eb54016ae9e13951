/* common.h - helpers every adapter shares: JSON <-> canonical msgpack data
 * maps (jansson, msgpack-c). Adapters only; never the engine. */
#ifndef DOCKET_ADAPTERS_COMMON_H
#define DOCKET_ADAPTERS_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "docket/time.h"

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

#endif
