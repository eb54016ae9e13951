/* lagstat.c - a projector's lag, record by record, in bounded memory: a histogram of
 * buckets 5% wide on a log scale, from which quantiles are read to within 5%. */
#include <math.h>

#include "views_int.h"

static int bucket_of(int64_t us)
{
    if (us <= 1)
        return 0;
    int b = 1 + (int)(log((double)us) / log(DK__LAG_RATIO));
    return b < DK__LAG_BUCKETS ? b : DK__LAG_BUCKETS - 1;
}

void dk__lag_add(dk__lagstat *s, int64_t us)
{
    if (us < 0)
        us = 0; /* the clocks of two processes: a record cannot be applied before it exists */
    s->n++;
    if (us > s->max_us)
        s->max_us = us;
    s->bucket[bucket_of(us)]++;
}

int64_t dk__lag_quantile(const dk__lagstat *s, double q)
{
    if (s->n == 0)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)s->n), seen = 0;
    if (want == 0)
        want = 1;
    for (int b = 0; b < DK__LAG_BUCKETS; b++) {
        seen += s->bucket[b];
        if (seen >= want) {
            /* the bucket's upper end; never past the largest seen (the last has none) */
            if (b == DK__LAG_BUCKETS - 1)
                return s->max_us;
            int64_t hi = b == 0 ? 1 : (int64_t)ceil(pow(DK__LAG_RATIO, b));
            return hi < s->max_us ? hi : s->max_us;
        }
    }
    return s->max_us;
}
