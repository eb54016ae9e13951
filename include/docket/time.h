/* time.h - RFC 3339 timestamps and dates <-> microseconds since the epoch,
 * computed with civil-calendar arithmetic (no timegm, no TZ dependence). */
#ifndef DOCKET_TIME_H
#define DOCKET_TIME_H

#include <stdint.h>

/* The times docket records: 0001-01-01T00:00:00Z up to 9999-12-31T23:59:59.999999Z, the
 * years a four-digit RFC 3339 timestamp can say in UTC. */
#define DK_TIME_EARLIEST (-62135596800000000LL)
#define DK_TIME_LATEST   (253402300799999999LL)

/* Parse an RFC 3339 timestamp ("2026-11-24T10:00:00Z", "...+01:00", with an
 * optional fraction, truncated to microseconds) or a plain date "2026-11-24"
 * (midnight UTC) into microseconds since the epoch. DK_EINVAL if malformed or, in UTC,
 * outside DK_TIME_EARLIEST..DK_TIME_LATEST. */
int dk_time_parse(const char *s, int64_t *us);
/* 1 if `s` (len bytes) is exactly a valid date "YYYY-MM-DD". */
int dk_date_valid(const char *s, int len);
#define DK_TIME_LEN 48 /* room for any int64 time, formatted */
/* Format microseconds since the epoch as "2026-11-24T10:00:00.000000Z". */
void dk_time_format(int64_t us, char out[DK_TIME_LEN]);
/* Wall clock, microseconds since the epoch. */
int64_t dk_time_now(void);

#endif
