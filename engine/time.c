/* time.c - RFC 3339 timestamps <-> microseconds since the epoch, computed
 * with civil-calendar arithmetic (no timegm, no TZ dependence). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "docket/error.h"
#include "docket/time.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Read exactly n digits. */
static int digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int dk_time_parse(const char *s, int64_t *us)
{
    const char *p = s;
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (s == NULL || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return DK_EINVAL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return DK_EINVAL;
    int64_t offset = 0;
    if (*p != 0) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return DK_EINVAL;
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
            digits(&p, 2, &sec))
            return DK_EINVAL;
        if (h > 23 || mi > 59 || sec > 59)
            return DK_EINVAL;
        if (*p == '.') {
            p++;
            int n = 0;
            while (*p >= '0' && *p <= '9') {
                if (n < 6)
                    frac = frac * 10 + (unsigned)(*p - '0');
                n++;
                p++;
            }
            if (n == 0 || n > 9)
                return DK_EINVAL;
            for (; n < 6; n++)
                frac *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            unsigned oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return DK_EINVAL;
            offset = sign * (int64_t)(oh * 3600 + om * 60);
        } else {
            return DK_EINVAL;
        }
        if (*p != 0)
            return DK_EINVAL;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    /* An offset may carry a time past the years 0001-9999 that it prints in (UTC). */
    int64_t t = secs * 1000000 + frac;
    if (t < DK_TIME_EARLIEST || t > DK_TIME_LATEST)
        return DK_EINVAL;
    *us = t;
    return 0;
}

void dk_time_format(int64_t us, char out[DK_TIME_LEN])
{
    int64_t secs = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        secs -= 1;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) { /* only a stored event from before the 0001-9999 rule */
        snprintf(out, DK_TIME_LEN, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", (long long)y, m, d,
                 (unsigned)(sod / 3600), (unsigned)(sod / 60 % 60), (unsigned)(sod % 60),
                 (unsigned)rem);
        return;
    }
    /* the digits by hand, two at a time from a table: views format a time for most
     * entries they write */
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
#define TWO(at, v) memcpy(out + (at), pairs + 2 * (v), 2)
    unsigned s = (unsigned)sod, r = (unsigned)rem;
    TWO(0, (unsigned)y / 100);
    TWO(2, (unsigned)y % 100);
    out[4] = '-';
    TWO(5, m);
    out[7] = '-';
    TWO(8, d);
    out[10] = 'T';
    TWO(11, s / 3600);
    out[13] = ':';
    TWO(14, s / 60 % 60);
    out[16] = ':';
    TWO(17, s % 60);
    out[19] = '.';
    TWO(20, r / 10000);
    TWO(22, r / 100 % 100);
    TWO(24, r % 100);
    out[26] = 'Z';
    out[27] = 0;
#undef TWO
}

int dk_date_valid(const char *s, int len)
{
    char buf[11];
    int64_t us;
    if (len != 10)
        return 0;
    memcpy(buf, s, 10);
    buf[10] = 0;
    return dk_time_parse(buf, &us) == 0;
}

int64_t dk_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
