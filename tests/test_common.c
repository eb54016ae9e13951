/* test_common.c - unit tests of the adapters' shared helpers: JSON to
 * canonical data maps and back, and RFC 3339 parsing and formatting. */
#include <time.h>

#include "common.h"
#include "docket/docket.h"
#include "harness.h"

static void to_data(const char *json, uint8_t **out, size_t *len)
{
    char err[256];
    if (dk_json_text_to_data(json, out, len, err, sizeof err) != 0)
        TH_FAIL("%s: %s", json, err);
}

static void expect_bytes(const char *json, const uint8_t *want, size_t n)
{
    uint8_t *out;
    size_t len;
    to_data(json, &out, &len);
    ASSERT_EQ(len, n);
    ASSERT_MEM_EQ(out, want, n);
    free(out);
}

static void expect_error(const char *json, const char *needle)
{
    uint8_t *out;
    size_t len;
    char err[256] = "";
    ASSERT_ERR(dk_json_text_to_data(json, &out, &len, err, sizeof err), DK_EINVAL);
    ASSERT(out == NULL);
    ASSERT_CONTAINS(err, needle);
}

TEST(keys_sorted_bytewise)
{
    const uint8_t want[] = {0x83, 0xa1, 'a', 0x02, 0xa2, 'a', 'a', 0x03, 0xa1, 'b', 0x01};
    expect_bytes("{\"b\":1,\"a\":2,\"aa\":3}", want, sizeof want);
    const uint8_t nested[] = {0x81, 0xa1, 'x', 0x82, 0xa1, 'p', 0xc3, 0xa1, 'q', 0xc0};
    expect_bytes("{\"x\":{\"q\":null,\"p\":true}}", nested, sizeof nested);
}

TEST(shortest_integers)
{
    const uint8_t one[] = {0x81, 0xa1, 'n', 0x01};
    expect_bytes("{\"n\":1}", one, sizeof one);
    const uint8_t big[] = {0x81, 0xa1, 'n', 0xcd, 0x01, 0x2c};
    expect_bytes("{\"n\":300}", big, sizeof big);
    const uint8_t neg[] = {0x81, 0xa1, 'n', 0xff};
    expect_bytes("{\"n\":-1}", neg, sizeof neg);
    const uint8_t neg200[] = {0x81, 0xa1, 'n', 0xd1, 0xff, 0x38};
    expect_bytes("{\"n\":-200}", neg200, sizeof neg200);
}

TEST(rejections_name_the_path)
{
    expect_error("{\"a\":1.5}", "data.a: numbers must be integers");
    expect_error("{\"a\":{\"b\":[1,2.5]}}", "data.a.b[1]");
    expect_error("[1,2]", "JSON object");
    expect_error("{\"a\":1,\"a\":2}", "not valid JSON");
    expect_error("{\"a\":", "line 1");
}

TEST(depth_and_size_limits)
{
    char json[256] = "";
    for (int i = 0; i < DK_DEPTH_MAX - 1; i++)
        strcat(json, "{\"a\":");
    strcat(json, "{}");
    for (int i = 0; i < DK_DEPTH_MAX - 1; i++)
        strcat(json, "}");
    uint8_t *out;
    size_t len;
    to_data(json, &out, &len); /* 16 levels: accepted */
    free(out);
    char deeper[300];
    snprintf(deeper, sizeof deeper, "{\"a\":%s}", json);
    expect_error(deeper, "deeper");
    size_t n = DK_DATA_MAX + 10;
    char *huge = malloc(n + 16);
    strcpy(huge, "{\"a\":\"");
    memset(huge + 6, 'x', n);
    strcpy(huge + 6 + n, "\"}");
    expect_error(huge, "limit");
    free(huge);
}

TEST(round_trip_to_json)
{
    const char *text = "{\"applicant\":{\"name\":\"Ana Popescu\",\"ref\":\"P-1\"},\"conditions\":"
                       "[\"permission_to_work\"],\"n\":-7,\"ok\":false,\"x\":null}";
    uint8_t *out;
    size_t len;
    to_data(text, &out, &len);
    ASSERT_OK(dk_data_check(out, len));
    json_t *back = dk_json_from_data(out, len);
    json_t *orig = json_loads(text, 0, NULL);
    ASSERT(back != NULL && json_equal(back, orig));
    ASSERT(dk_json_from_data(out, len - 1) == NULL); /* truncated */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, out, len);
    longer[len] = 0xc0;
    ASSERT(dk_json_from_data(longer, len + 1) == NULL); /* trailing byte */
    free(longer);
    /* a count no byte string of this length can hold: refused before msgpack-c reserves it */
    const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01};
    ASSERT(dk_json_from_data(map32, sizeof map32) == NULL);
    json_decref(back);
    json_decref(orig);
    free(out);
}

/* Days since the epoch by counting, to check the parser without trusting it. */
static int64_t days_by_counting(int y, int m, int d)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += ((yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0) ? 366 : 365;
    for (int mm = 1; mm < m; mm++)
        days += dim[mm - 1] + (mm == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return days + d - 1;
}

TEST(time_parse)
{
    int64_t us;
    ASSERT_OK(dk_time_parse("2026-11-24T10:00:00Z", &us));
    ASSERT_EQ(us, (days_by_counting(2026, 11, 24) * 86400 + 36000) * 1000000);
    int64_t plus1;
    ASSERT_OK(dk_time_parse("2026-11-24T11:00:00+01:00", &plus1));
    ASSERT_EQ(plus1, us);
    ASSERT_OK(dk_time_parse("2026-11-24t09:30:00-00:30", &plus1));
    ASSERT_EQ(plus1, us);
    ASSERT_OK(dk_time_parse("2026-11-24T10:00:00.5Z", &plus1));
    ASSERT_EQ(plus1, us + 500000);
    ASSERT_OK(dk_time_parse("2026-11-24T10:00:00.123456789Z", &plus1));
    ASSERT_EQ(plus1, us + 123456);
    ASSERT_OK(dk_time_parse("2026-11-24", &plus1));
    ASSERT_EQ(plus1, days_by_counting(2026, 11, 24) * 86400 * 1000000);
    ASSERT_OK(dk_time_parse("2024-02-29", &plus1));
    ASSERT_OK(dk_time_parse("1969-12-31T23:59:59Z", &plus1));
    ASSERT_EQ(plus1, -1000000);
    const char *bad[] = {"2023-02-29",
                         "2026-13-01",
                         "2026-00-10",
                         "2026-11-31",
                         "2026-11-24T24:00:00Z",
                         "2026-11-24T10:00:00",
                         "2026-11-24T10:00Z",
                         "2026-11-24T10:00:00.Z",
                         "2026-11-24T10:00:00Zx",
                         "yesterday",
                         "",
                         "2026-11-24T10:00:60Z",
                         "2026-11-24T10:00:00+1:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (dk_time_parse(bad[i], &us) != DK_EINVAL)
            TH_FAIL("'%s' was accepted", bad[i]);
}

TEST(time_format)
{
    char buf[DK_TIME_LEN];
    dk_time_format(0, buf);
    ASSERT_STR_EQ(buf, "1970-01-01T00:00:00.000000Z");
    dk_time_format(-1, buf);
    ASSERT_STR_EQ(buf, "1969-12-31T23:59:59.999999Z");
    int64_t vals[] = {1,
                      999999,
                      1000000,
                      1795514400123456,
                      -86400000000LL * 365 * 100,
                      951782400000000 /* 2000-02-29 */,
                      253402300799999999 /* 9999-12-31 */};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        int64_t back;
        dk_time_format(vals[i], buf);
        ASSERT_OK(dk_time_parse(buf, &back));
        ASSERT_EQ(back, vals[i]);
    }
    dk_time_format(951782400000000, buf);
    ASSERT_STR_EQ(buf, "2000-02-29T00:00:00.000000Z");
    /* the digits written by hand equal printf's, on times spread over years 0000-9999 and
     * beyond (which only events stored before the 0001-9999 rule can hold) */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t us = (int64_t)(x % 700000000000000000ull) - 350000000000000000LL;
        dk_time_format(us, buf);
        int64_t secs = us / 1000000, rem = us % 1000000;
        if (rem < 0) {
            rem += 1000000;
            secs--;
        }
        time_t t = (time_t)secs;
        struct tm tm;
        ASSERT(gmtime_r(&t, &tm) != NULL);
        char want[DK_TIME_LEN];
        snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02d.%06dZ",
                 (long long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, (int)rem);
        ASSERT_STR_EQ(buf, want);
    }
    ASSERT(dk_time_now() > 1795514400000000 - 86400000000LL * 365);
}

TH_MAIN(TH_ENTRY(keys_sorted_bytewise) TH_ENTRY(shortest_integers)
            TH_ENTRY(rejections_name_the_path) TH_ENTRY(depth_and_size_limits)
                TH_ENTRY(round_trip_to_json) TH_ENTRY(time_parse) TH_ENTRY(time_format))
