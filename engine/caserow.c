/* caserow.c - a case state as compact canonical bytes: no stale bytes after strings,
 * runs of zero bytes squeezed. The writer's case_state rows and the views' _cases rows. */
#include <string.h>

#include "docket/case.h"
#include "docket/error.h"

_Static_assert(sizeof(dk_case_state) == 1456,
               "dk_case_state changed: update canon() and STATE_LAYOUT here, and list the old "
               "STATE_LAYOUT in older_layout() in engine/casestore.c");
#define STATE_LAYOUT ((uint32_t)(0xd5000000u | sizeof(dk_case_state)))

/* n bytes from s to d, a word at a time, the last word overlapping the one before: for the
 * strings of a few bytes canon() copies and the literals the packer copies. Inline, it beat
 * GCC's `rep movsq` expansion of memcpy (most of dk_case_state_pack's time, perf of a 1M
 * rebuild), and, with -mstringop-strategy=libcall, glibc's memcpy too: 0.175 -> 0.128 of
 * SHA-256's samples for the packer, 0.275 -> 0.215 for memmove. The empty asm keeps GCC
 * from turning the loop back into a memcpy. */
static void copy_bytes(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n >= 8) {
        for (size_t k = 0; k + 8 < n; k += 8) {
            __asm__("" : "+r"(k));
            memcpy(d + k, s + k, 8);
        }
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        for (size_t k = 0; k < n; k++)
            d[k] = s[k];
    }
}

/* a string field: its bytes up to its NUL, no further (the copy's words stay inside a field
 * of 8 bytes or more; a shorter one is copied a byte at a time) */
#define CPY(f)                                                                                     \
    do {                                                                                           \
        size_t n_ = strnlen(in->f, sizeof in->f - 1);                                              \
        if (sizeof in->f >= 8)                                                                     \
            copy_bytes((uint8_t *)out->f, (const uint8_t *)in->f, n_);                             \
        else                                                                                       \
            for (size_t k_ = 0; k_ < n_; k_++)                                                     \
                out->f[k_] = in->f[k_];                                                            \
    } while (0)

/* The state with no padding or stale bytes after strings, so equal states
 * have equal bytes (and digests). */
static void canon(const dk_case_state *in, dk_case_state *out)
{
    memset(out, 0, sizeof *out);
    out->version = in->version;
    out->last_seq = in->last_seq;
    out->status = in->status;
    CPY(case_type);
    CPY(channel);
    CPY(received_on);
    CPY(applicant_ref);
    CPY(applicant_name);
    CPY(date_of_birth);
    CPY(nationality);
    CPY(assignee);
    out->decision.has = in->decision.has;
    CPY(decision.outcome);
    CPY(decision.product_type);
    CPY(decision.immigration_status);
    out->decision.no_recourse_to_public_funds = in->decision.no_recourse_to_public_funds;
    CPY(decision.conditions);
    CPY(decision.valid_from);
    CPY(decision.valid_until);
    CPY(decision.rules_version);
    out->decision.seq = in->decision.seq;
    out->leave.grant_seq = in->leave.grant_seq;
    out->leave.cancelled_seq = in->leave.cancelled_seq;
    out->interview.active = in->interview.active;
    out->interview.slot_start = in->interview.slot_start;
    out->interview.slot_end = in->interview.slot_end;
    CPY(interview.interviewer);
    CPY(interview.location);
    out->interview.seq = in->interview.seq;
    out->interview.attended = in->interview.attended;
    out->interview.no_shows = in->interview.no_shows;
    out->interview.cancelled = in->interview.cancelled;
    out->open_errors = in->open_errors;
    for (uint32_t i = 0; i < in->open_errors && i < DK_OPEN_ERRORS_MAX; i++)
        out->error_seqs[i] = in->error_seqs[i];
    CPY(email);
    CPY(postal_address);
    out->appeal_open = in->appeal_open;
    CPY(appeal_outcome);
    out->voided = in->voided;
}

/* A word's bytes that are zero, as the high bit of each (exact: no carries between
 * bytes). */
static uint64_t zero_bytes(uint64_t w)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
    return ~(((w & low7) + low7) | w | low7);
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* The index of the first byte in memory order whose bits m marks (m != 0). */
static size_t first_byte(uint64_t m)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(m) / 8;
#else
    return (size_t)__builtin_clzll(m) / 8;
#endif
}

/* Zero bytes at p[i..n), at most max: eight at a time (the struct is mostly the zero
 * padding of its string fields), the word's first non-zero byte found by its bits. */
static size_t zero_run(const uint8_t *p, size_t i, size_t n, size_t max)
{
    size_t run = 0;
    while (run + 8 <= max && i + run + 8 <= n) {
        uint64_t w = load64(p + i + run);
        if (w != 0)
            return run + first_byte(w);
        run += 8;
    }
    while (run < max && i + run < n && p[i + run] == 0)
        run++;
    return run;
}

/* Bytes at p[i..n), at most max, before the first pair of zero bytes (a zero at n - 1
 * pairs with nothing): eight start positions at a time, each word against the next
 * byte's word. */
static size_t literal_run(const uint8_t *p, size_t i, size_t n, size_t max)
{
    size_t lit = 0;
    while (lit + 8 <= max && i + lit + 9 <= n) {
        uint64_t pairs = zero_bytes(load64(p + i + lit)) & zero_bytes(load64(p + i + lit + 1));
        if (pairs != 0)
            return lit + first_byte(pairs);
        lit += 8;
    }
    while (i + lit < n && lit < max && !(p[i + lit] == 0 && i + lit + 1 < n && p[i + lit + 1] == 0))
        lit++;
    return lit;
}

size_t dk_case_state_pack(const dk_case_state *st, uint8_t *out, size_t cap)
{
    dk_case_state c;
    canon(st, &c);
    const uint8_t *p = (const uint8_t *)&c;
    size_t n = sizeof c, o = 4, i = 0;
    if (cap < 4 + n + n / 127 + 2)
        return 0;
    out[0] = (uint8_t)(STATE_LAYOUT >> 24);
    out[1] = (uint8_t)(STATE_LAYOUT >> 16);
    out[2] = (uint8_t)(STATE_LAYOUT >> 8);
    out[3] = (uint8_t)STATE_LAYOUT;
    while (i < n) {
        size_t run = zero_run(p, i, n, 127);
        if (run >= 2 || (run == 1 && i + 1 == n)) {
            out[o++] = (uint8_t)(0x80 | run);
            i += run;
            continue;
        }
        size_t lit = literal_run(p, i, n, 127);
        out[o++] = (uint8_t)lit;
        copy_bytes(out + o, p + i, lit);
        o += lit;
        i += lit;
    }
    return o;
}

int dk_case_state_unpack(const uint8_t *in, size_t len, dk_case_state *st)
{
    uint8_t *p = (uint8_t *)st;
    size_t n = sizeof *st, o = 0, i = 4;
    if (len < 4 || ((uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3]) !=
                       STATE_LAYOUT)
        return DK_EINVAL; /* not this layout */
    while (i < len) {
        uint8_t c = in[i++];
        size_t run = c & 0x7f;
        if (run == 0 || o + run > n)
            return DK_ECORRUPT;
        if (c & 0x80) {
            memset(p + o, 0, run);
        } else {
            if (i + run > len)
                return DK_ECORRUPT;
            copy_bytes(p + o, in + i, run);
            i += run;
        }
        o += run;
    }
    if (o != n)
        return DK_ECORRUPT;
    /* Whatever the bytes said, every string ends inside its field: a damaged or forged
     * row may be refused by verify, but never makes a reader run off a string. */
    dk_case_state c;
    canon(st, &c);
    *st = c;
    /* nor index past an array or shift past a word: such a row is damage (re-folded) */
    if (st->status < 0 || st->status >= DK_ST_COUNT || st->open_errors > DK_OPEN_ERRORS_MAX ||
        (st->interview.active != 0 && st->interview.active != 1))
        return DK_ECORRUPT;
    return 0;
}
