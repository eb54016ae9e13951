/* test_verify.c - unit tests of verify against tampering: every byte of a
 * record, dropped, reordered, re-signed and spliced records, --from, --jobs. */
#include "casefix.h"
#include "rawlmdb.h"

/* A ledger of 14 records: 4 actor records, a case with 10 events. */
static void build(world *w, const char *dir)
{
    world_open(w, dir);
    dmap d;
    PUT_DEFAULT(w, "V-1", "case.opened", w->carol);
    to_status(&d, "validated");
    PUT(w, "V-1", "case.status_changed", w->carol, NULL, &d);
    fill_valid(&d, "note.added");
    for (int i = 0; i < 8; i++)
        PUT(w, "V-1", "note.added", i % 2 ? w->sam : w->carol, NULL, &d);
}

static dk_verify_report verify_with(dk_ledger *lg, uint64_t from, int jobs)
{
    dk_verify_report rep;
    dk_verify_opts o = {.from = from, .jobs = jobs};
    ASSERT_OK(dk_ledger_verify_opts(lg, &o, &rep));
    return rep;
}

/* Open the closed ledger at `dir` read-only and verify it on every core. */
static dk_verify_report reverify(const char *dir)
{
    dk_ledger *lg;
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(dir, &ro, &lg));
    dk_verify_report rep = verify_with(lg, 0, 0);
    dk_ledger_close(lg);
    return rep;
}

/* Damage the closed ledger at `dir` with `fn`, then verify it. */
static dk_verify_report damaged(const char *dir, void (*fn)(raw_env *, MDB_dbi, void *), void *arg)
{
    raw_env r;
    MDB_dbi log = raw_open(&r, dir, "log");
    fn(&r, log, arg);
    raw_commit(&r);
    return reverify(dir);
}

static void expect_bad(const dk_verify_report *rep, uint64_t seq, const char *needle)
{
    if (rep->ok)
        TH_FAIL("verify passed a damaged ledger (wanted seq %llu, '%s')", (unsigned long long)seq,
                needle);
    if (rep->seq != seq)
        TH_FAIL("verify named seq %llu (%s), wanted %llu", (unsigned long long)rep->seq,
                rep->reason, (unsigned long long)seq);
    ASSERT_CONTAINS(rep->reason, needle);
}

TEST(intact_ledger_verifies_on_any_number_of_cores)
{
    world w;
    build(&w, th_tmpdir());
    for (int jobs = 1; jobs <= 4; jobs++) {
        dk_verify_report rep = verify_with(w.lg, 0, jobs);
        ASSERT_EQ(rep.ok, 1);
        ASSERT_EQ(rep.checked, 14);
        ASSERT_EQ(rep.signatures, 14);
        ASSERT_EQ(rep.cases, 1);
    }
    /* from a later seq: only the rest is checked */
    dk_verify_report rep = verify_with(w.lg, 9, 2);
    ASSERT_EQ(rep.ok, 1);
    ASSERT_EQ(rep.checked, 6);
    world_close(&w);
}

typedef struct flip {
    uint64_t seq;
    size_t at;
} flip;

static void flip_byte(raw_env *r, MDB_dbi log, void *arg)
{
    flip *f = arg;
    size_t len;
    uint8_t *b = raw_get_record(r, log, f->seq, &len);
    b[f->at % len] ^= 0x20;
    raw_put_record(r, log, f->seq, b, len);
    free(b);
}

TEST(every_byte_of_a_record_is_covered)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_close(&w);
    /* one pristine copy of the files, restored before each flip */
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s.orig'", dir, dir);
    ASSERT_EQ(system(cmd), 0);
    raw_env r;
    MDB_dbi log = raw_open(&r, dir, "log");
    size_t len;
    free(raw_get_record(&r, log, 9, &len));
    raw_commit(&r);
    for (size_t at = 0; at < len; at++) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s.orig' '%s'", dir, dir, dir);
        ASSERT_EQ(system(cmd), 0);
        flip f = {9, at};
        dk_verify_report rep = damaged(dir, flip_byte, &f);
        if (rep.ok || rep.seq != 9)
            TH_FAIL("a flipped byte %zu of record 9 (of %zu) gave ok=%d seq %llu: %s", at, len,
                    rep.ok, (unsigned long long)rep.seq, rep.reason);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s.orig'", dir);
    ASSERT_EQ(system(cmd), 0);
}

static void drop_record(raw_env *r, MDB_dbi log, void *arg)
{
    uint8_t key[8];
    raw_seq_key(key, *(uint64_t *)arg);
    MDB_val k = {8, key};
    ASSERT_EQ(mdb_del(r->txn, log, &k, NULL), 0);
}

TEST(a_dropped_record_is_named)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_close(&w);
    uint64_t seq = 8;
    dk_verify_report rep = damaged(dir, drop_record, &seq);
    expect_bad(&rep, 8, "missing");
}

static void swap_records(raw_env *r, MDB_dbi log, void *arg)
{
    uint64_t a = *(uint64_t *)arg, b = a + 1;
    size_t la, lb;
    uint8_t *ra = raw_get_record(r, log, a, &la), *rb = raw_get_record(r, log, b, &lb);
    raw_put_record(r, log, a, rb, lb);
    raw_put_record(r, log, b, ra, la);
    free(ra);
    free(rb);
}

TEST(reordered_records_are_named)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_close(&w);
    uint64_t seq = 10;
    dk_verify_report rep = damaged(dir, swap_records, &seq);
    expect_bad(&rep, 10, "record says seq 11");
}

typedef struct resign {
    uint64_t seq;
    dk_key *key;
} resign;

/* Replace the author's signature with a valid one by another key. */
static void resign_record(raw_env *r, MDB_dbi log, void *arg)
{
    resign *rs = arg;
    size_t len;
    uint8_t *b = raw_get_record(r, log, rs->seq, &len), *out;
    dk_record rec;
    ASSERT_OK(dk_record_decode(b, len, &rec));
    ASSERT_OK(dk_sign(rs->key, rec.body, rec.body_len, rec.sigs[0].sig));
    size_t olen;
    ASSERT_OK(dk_record_encode(&rec, &out, &olen));
    raw_put_record(r, log, rs->seq, out, olen);
    free(out);
    free(b);
}

TEST(a_replaced_signature_is_named)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    resign rs = {12, NULL};
    ASSERT_OK(dk_key_generate("sam", &rs.key)); /* sam's name, another key */
    world_close(&w);
    dk_verify_report rep = damaged(dir, resign_record, &rs);
    expect_bad(&rep, 12, "signature by 'sam' does not verify");
    dk_key_free(rs.key);
}

typedef struct splice {
    const char *other;
    uint64_t seq;
} splice;

static void splice_record(raw_env *r, MDB_dbi log, void *arg)
{
    splice *sp = arg;
    raw_env o;
    MDB_dbi olog = raw_open(&o, sp->other, "log");
    size_t len;
    uint8_t *b = raw_get_record(&o, olog, sp->seq, &len);
    mdb_txn_abort(o.txn);
    mdb_env_close(o.env);
    raw_put_record(r, log, sp->seq, b, len);
    free(b);
}

TEST(a_record_spliced_from_another_ledger_is_named)
{
    const char *dir = th_tmpdir();
    char other[1100];
    snprintf(other, sizeof other, "%s/other", dir);
    char mine[1100];
    snprintf(mine, sizeof mine, "%s/mine", dir);
    world w;
    build(&w, mine);
    world_close(&w);
    build(&w, other); /* later: its records' times are later too */
    world_close(&w);
    splice sp = {other, 7};
    dk_verify_report rep = damaged(mine, splice_record, &sp);
    expect_bad(&rep, 7, "prev hash");
}

TEST(a_later_signature_failure_does_not_hide_an_earlier_one)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    resign rs = {5, NULL};
    ASSERT_OK(dk_key_generate("carol", &rs.key));
    world_close(&w);
    raw_env r;
    MDB_dbi log = raw_open(&r, dir, "log");
    resign_record(&r, log, &rs);
    uint64_t later = 13;
    drop_record(&r, log, &later);
    raw_commit(&r);
    dk_ledger *lg;
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(dir, &ro, &lg));
    for (int jobs = 1; jobs <= 3; jobs++) {
        dk_verify_report rep = verify_with(lg, 0, jobs);
        expect_bad(&rep, 5, "signature by 'carol'");
    }
    /* from just after the damage: the link from the trusted prefix breaks */
    dk_verify_report rep = verify_with(lg, 6, 2);
    expect_bad(&rep, 6, "prev hash");
    /* from later: the prefix is trusted and not re-read */
    rep = verify_with(lg, 7, 2);
    expect_bad(&rep, 13, "missing");
    dk_ledger_close(lg);
    dk_key_free(rs.key);
}

/* Flip one bit of case V-1's state row; returns the row's length. */
static size_t damage_case_row(const char *dir, size_t at)
{
    raw_env r;
    MDB_dbi cs = raw_open(&r, dir, "cases");
    uint8_t key[16];
    MDB_val k = {raw_case_key(key, "V-1", 0), key}, v;
    ASSERT_EQ(mdb_get(r.txn, cs, &k, &v), 0);
    size_t len = v.mv_size;
    uint8_t *row = malloc(len);
    memcpy(row, v.mv_data, len);
    if (at < len)
        row[at] ^= 1;
    MDB_val nv = {len, row};
    ASSERT_EQ(mdb_put(r.txn, cs, &k, &nv, 0), 0);
    free(row);
    raw_commit(&r);
    return len;
}

/* Every bit flipped in every byte of a case's state row -- its header (version,
 * last seq) or its packed state -- is named by the rules pass. */
TEST(a_stale_case_state_row_is_named)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_close(&w);
    size_t len = damage_case_row(dir, SIZE_MAX); /* no change: its length */
    ASSERT(len > 16 && len < 600);               /* packed, not the 1,440-byte struct */
    for (size_t at = 0; at < len; at++) {
        damage_case_row(dir, at);
        dk_ledger *lg;
        dk_ledger_opts ro = {0, 0, 1, 0};
        ASSERT_OK(dk_ledger_open(dir, &ro, &lg));
        dk_verify_report rep = verify_with(lg, 0, 0);
        if (rep.ok)
            TH_FAIL("a flipped bit at byte %zu of %zu of the row went unnoticed", at, len);
        expect_bad(&rep, 14, "stored state of case 'V-1'");
        if (at == 0) {
            dk_verify_opts o = {.skip_rules = 1}; /* without the rules pass it is not looked at */
            ASSERT_OK(dk_ledger_verify_opts(lg, &o, &rep));
            ASSERT_EQ(rep.ok, 1);
        }
        dk_ledger_close(lg);
        damage_case_row(dir, at); /* flipped back */
    }
}

/* A row an earlier docket wrote (version, last seq, a 0xdc layout tag, the raw struct)
 * is still read: verify accepts it, and the writer appends on top of it. A row of a
 * retired layout (older_layout) is not damage to verify, and the writer re-folds it. A
 * row of a layout no docket wrote (raw or packed, another struct size) is damage to
 * verify, and the writer re-folds the case from its events instead of trusting it. */
TEST(an_earlier_raw_state_row_is_still_read)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    dk_ledger_close(w.lg); /* the keys stay, to append again */
    for (int pass = 0; pass < 5; pass++) {
        raw_env r;
        MDB_dbi cs = raw_open(&r, dir, "cases");
        uint8_t key[16];
        MDB_val k = {raw_case_key(key, "V-1", 0), key}, v;
        ASSERT_EQ(mdb_get(r.txn, cs, &k, &v), 0);
        dk_case_state st;
        ASSERT_OK(dk_case_state_unpack((const uint8_t *)v.mv_data + 16, v.mv_size - 16, &st));
        uint8_t row[16 + 4 + sizeof st];
        memcpy(row, v.mv_data, 16);
        /* pass 0: this struct, raw; 1: a raw struct of a size no docket had; 2: a packed
         * state of such a size (a later build's); 3 and 4: the layouts retired when the
         * state's leave was added (1,440 bytes), raw and packed */
        static const uint32_t tags[] = {0xdc000000u | sizeof(dk_case_state), 0xdc000000u | 1432,
                                        0xd5000000u | 1432, 0xdc000000u | 1440, 0xd5000000u | 1440};
        uint32_t tag = tags[pass];
        for (int i = 0; i < 4; i++)
            row[16 + i] = (uint8_t)(tag >> (24 - 8 * i));
        memcpy(row + 20, &st, sizeof st);
        MDB_val nv = {sizeof row, row};
        ASSERT_EQ(mdb_put(r.txn, cs, &k, &nv, 0), 0);
        raw_commit(&r);
        dk_verify_report rep = reverify(dir);
        int damage = pass == 1 || pass == 2;
        if (!damage && !rep.ok)
            TH_FAIL("an earlier docket's row (pass %d) was refused: %s", pass, rep.reason);
        if (damage) /* a layout no docket wrote: damage to verify, re-folded by the writer */
            expect_bad(&rep, 14 + (uint64_t)pass, "stored state of case 'V-1'");
        ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
        dmap d;
        fill_valid(&d, "note.added");
        PUT(&w, "V-1", "note.added", w.carol, NULL, &d);
        dk_ledger_close(w.lg);
        rep = reverify(dir);
        ASSERT_EQ(rep.ok, 1); /* the append rewrote the row in this build's layout */
    }
    w.lg = NULL;
    world_close(&w);
}

/* Delete interviewer `who`'s booking starting at `start` from the slot index. */
static void drop_slot(const char *dir, const char *who, const char *start)
{
    int64_t us;
    ASSERT_OK(dk_time_parse(start, &us));
    uint8_t key[DK_ACTOR_MAX + 9];
    size_t n = strlen(who);
    memcpy(key, who, n);
    key[n] = 0;
    raw_seq_key(key + n + 1, (uint64_t)us ^ (1ull << 63));
    raw_env r;
    MDB_dbi slots = raw_open(&r, dir, "slots");
    MDB_val k = {n + 9, key};
    ASSERT_EQ(mdb_del(r.txn, slots, &k, NULL), 0);
    raw_commit(&r);
}

/* V-1 books ivan from 10:00 to 11:00 (the default slot); the booking's seq. */
static uint64_t book_v1(world *w)
{
    dmap d;
    fill_valid(&d, "interview.booked");
    return PUT(w, "V-1", "interview.booked", w->carol, NULL, &d);
}

/* Case V-2, opened and validated. */
static void open_v2(world *w)
{
    dmap d;
    PUT_DEFAULT(w, "V-2", "case.opened", w->carol);
    to_status(&d, "validated");
    PUT(w, "V-2", "case.status_changed", w->carol, NULL, &d);
}

/* A booking of ivan from 10:30 to 11:30: it overlaps V-1's default 10:00 to 11:00. */
static void overlapping_slot(dmap *d)
{
    fill_valid(d, "interview.booked");
    d_str(d, "slot_start", "2026-11-24T10:30:00Z");
    d_str(d, "slot_end", "2026-11-24T11:30:00Z");
}

/* The writer refuses a booking that overlaps another case's by the slot index. verify
 * replays every case's slot changes together: a damaged index is named at the booking
 * it lost, and a double booking it then let through at that booking's seq. */
TEST(double_bookings_and_a_stale_slot_index_are_named)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_interviewers(&w);
    dmap d;
    uint64_t first = book_v1(&w);
    open_v2(&w);
    overlapping_slot(&d);
    dk_append_res res;
    ASSERT_ERR(try_put(&w, "V-2", "interview.booked", w.carol, NULL, &d, &res), DK_ECONFLICT);
    dk_ledger_close(w.lg);
    dk_verify_report rep = reverify(dir);
    ASSERT_EQ(rep.ok, 1);
    /* a booking in the index that no case holds */
    raw_env r;
    MDB_dbi slots = raw_open(&r, dir, "slots");
    uint8_t key[13] = {'z', 'e', 'd', 0}, val[8 + 3] = {0, 0, 0, 0, 0, 0, 0, 1, 'V', '-', '9'};
    MDB_val k = {sizeof key, key}, v = {sizeof val, val};
    ASSERT_EQ(mdb_put(r.txn, slots, &k, &v, 0), 0);
    raw_commit(&r);
    rep = reverify(dir);
    expect_bad(&rep, first + 2, "the slot index holds 2 bookings; the cases' events leave 1");
    slots = raw_open(&r, dir, "slots");
    ASSERT_EQ(mdb_del(r.txn, slots, &k, NULL), 0);
    raw_commit(&r);
    drop_slot(dir, "ivan", "2026-11-24T10:00:00Z");
    rep = reverify(dir);
    expect_bad(&rep, first, "the slot index does not hold case 'V-1''s booking");
    /* the damaged index lets the overlapping booking in */
    ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
    uint64_t second = PUT(&w, "V-2", "interview.booked", w.carol, NULL, &d);
    dk_ledger_close(w.lg);
    rep = reverify(dir);
    expect_bad(&rep, second, "interviewer 'ivan' double-booked: case 'V-2' took a slot");
    ASSERT_CONTAINS(rep.reason, "case 'V-1''s");
    w.lg = NULL;
    world_close(&w);
}

/* A ledger whose slot index an older docket kept (or never kept) is rebuilt from the
 * state rows on its next write open; a current ledger's index is left as it is, so
 * damage to it stays for verify to name. */
TEST(an_older_dockets_slot_index_is_rebuilt)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_interviewers(&w);
    dmap d;
    uint64_t booked = book_v1(&w);
    dk_ledger_close(w.lg);
    drop_slot(dir, "ivan", "2026-11-24T10:00:00Z");
    for (int older = 0; older < 2; older++) {
        if (older) { /* as a docket before the mark left it */
            raw_env r;
            MDB_dbi meta = raw_open(&r, dir, "meta");
            MDB_val k = {11, (void *)"slots_index"};
            ASSERT_EQ(mdb_del(r.txn, meta, &k, NULL), 0);
            raw_commit(&r);
        }
        ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
        dk_ledger_close(w.lg);
        dk_verify_report rep = reverify(dir);
        if (older) {
            ASSERT_EQ(rep.ok, 1);
        } else {
            expect_bad(&rep, booked, "the slot index does not hold case 'V-1''s booking");
        }
    }
    /* and the rebuilt index is the writer's again: an overlapping booking is refused */
    ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
    open_v2(&w);
    overlapping_slot(&d);
    dk_append_res res;
    ASSERT_ERR(try_put(&w, "V-2", "interview.booked", w.carol, NULL, &d, &res), DK_ECONFLICT);
    world_close(&w);
}

/* A case whose replay fails still took the slots its events gave before the failure:
 * a double booking at a lower seq is the one named. V-2 double-books ivan (the index was
 * damaged, then mended), and later V-2's stored state row is damaged. */
TEST(a_double_booking_below_a_failing_case_is_named_first)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_interviewers(&w);
    dmap d;
    book_v1(&w);
    open_v2(&w);
    dk_ledger_close(w.lg);
    /* take V-1's booking out of the index, keep it to put back */
    raw_env r;
    MDB_dbi slots = raw_open(&r, dir, "slots");
    MDB_cursor *cur;
    MDB_val k, v;
    ASSERT_EQ(mdb_cursor_open(r.txn, slots, &cur), 0);
    ASSERT_EQ(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    uint8_t key[128], val[128];
    size_t klen = k.mv_size, vlen = v.mv_size;
    ASSERT(klen <= sizeof key && vlen <= sizeof val);
    memcpy(key, k.mv_data, klen);
    memcpy(val, v.mv_data, vlen);
    mdb_cursor_close(cur);
    raw_commit(&r);
    drop_slot(dir, "ivan", "2026-11-24T10:00:00Z");
    ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
    overlapping_slot(&d);
    uint64_t twice = PUT(&w, "V-2", "interview.booked", w.carol, NULL, &d);
    fill_valid(&d, "note.added");
    uint64_t last = PUT(&w, "V-2", "note.added", w.carol, NULL, &d);
    dk_ledger_close(w.lg);
    w.lg = NULL;
    slots = raw_open(&r, dir, "slots"); /* the index mended: it holds both bookings */
    MDB_val mk = {klen, key}, mv = {vlen, val};
    ASSERT_EQ(mdb_put(r.txn, slots, &mk, &mv, 0), 0);
    raw_commit(&r);
    dk_verify_report rep = reverify(dir);
    expect_bad(&rep, twice, "interviewer 'ivan' double-booked: case 'V-2'");
    /* V-2's state row damaged: that fails at its last seq, above the double booking */
    MDB_dbi cases = raw_open(&r, dir, "cases");
    uint8_t ck[32];
    MDB_val rk = {raw_case_key(ck, "V-2", 0), ck}, rv;
    ASSERT_EQ(mdb_get(r.txn, cases, &rk, &rv), 0);
    uint8_t row[600];
    ASSERT(rv.mv_size <= sizeof row);
    memcpy(row, rv.mv_data, rv.mv_size);
    row[7] ^= 1; /* the version */
    MDB_val nv = {rv.mv_size, row};
    ASSERT_EQ(mdb_put(r.txn, cases, &rk, &nv, 0), 0);
    raw_commit(&r);
    rep = reverify(dir);
    expect_bad(&rep, twice, "interviewer 'ivan' double-booked: case 'V-2'");
    ASSERT(last > twice);
    world_close(&w);
}

/* Many interviewers (more than verify's name table starts with): each booking is checked
 * against the index under its own interviewer's name. */
TEST(many_interviewers_are_told_apart)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    dmap d;
    uint64_t booked[40];
    for (int i = 0; i < 40; i++) {
        char id[16], who[16];
        snprintf(id, sizeof id, "MI-%02d", i);
        snprintf(who, sizeof who, "iv-%02d", i);
        enroll_interviewer(w.lg, w.admin, who, ACTOR_N(100 + i));
        open_validated(&w, id, w.carol);
        slot_data(&d, "interview.booked", who, "2026-11-24T10:00:00Z", "2026-11-24T11:00:00Z");
        booked[i] = PUT(&w, id, "interview.booked", w.carol, NULL, &d);
    }
    dk_ledger_close(w.lg);
    w.lg = NULL;
    dk_verify_report rep = reverify(dir);
    ASSERT_EQ(rep.ok, 1);
    drop_slot(dir, "iv-33", "2026-11-24T10:00:00Z");
    rep = reverify(dir);
    expect_bad(&rep, booked[33], "does not hold case 'MI-33''s booking of interviewer 'iv-33'");
    world_close(&w);
}

/* Records hidden from the case index would escape the rules pass. */
TEST(the_case_index_must_list_exactly_the_case_events)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    world_close(&w);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s.orig'", dir, dir);
    ASSERT_EQ(system(cmd), 0);
    raw_env r;
    MDB_dbi bc = raw_open(&r, dir, "cases");
    uint8_t key[16];
    MDB_val k = {raw_case_key(key, "V-1", 8), key}, v = {0, key};
    ASSERT_EQ(mdb_del(r.txn, bc, &k, NULL), 0);
    raw_commit(&r);
    dk_verify_report rep = reverify(dir);
    expect_bad(&rep, 8, "index of case 'V-1' does not list this record");
    /* an extra entry, pointing at an actor record */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s.orig' '%s'", dir, dir, dir);
    ASSERT_EQ(system(cmd), 0);
    bc = raw_open(&r, dir, "cases");
    k.mv_size = raw_case_key(key, "V-1", 2);
    ASSERT_EQ(mdb_put(r.txn, bc, &k, &v, 0), 0);
    raw_commit(&r);
    rep = reverify(dir);
    ASSERT_EQ(rep.ok, 0);
    ASSERT_CONTAINS(rep.reason, "case");
    /* a state row for a case with no records; a key that is neither kind */
    const char *odd[][2] = {{"GHOST-1", "has a state row but no records in its index"},
                            {NULL, "malformed key"}};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s.orig' '%s'", dir, dir, dir);
        ASSERT_EQ(system(cmd), 0);
        bc = raw_open(&r, dir, "cases");
        if (odd[i][0]) {
            MDB_val rk = {raw_case_key(key, "V-1", 0), key}, rv;
            ASSERT_EQ(mdb_get(r.txn, bc, &rk, &rv), 0);
            MDB_val gk = {raw_case_key(key, odd[i][0], 0), key};
            ASSERT_EQ(mdb_put(r.txn, bc, &gk, &rv, 0), 0);
        } else {
            MDB_val mk = {4, (void *)"V-1x"}, mv = {0, key};
            ASSERT_EQ(mdb_put(r.txn, bc, &mk, &mv, 0), 0);
        }
        raw_commit(&r);
        rep = reverify(dir);
        ASSERT_EQ(rep.ok, 0);
        ASSERT_CONTAINS(rep.reason, odd[i][1]);
    }
}

/* A head dated in the future would push every later record's time forward. */
TEST(a_head_with_another_time_is_named_and_stops_appends)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    dk_ledger_close(w.lg);
    raw_env r;
    MDB_dbi meta = raw_open(&r, dir, "meta");
    MDB_val k = {4, (void *)"head"}, v;
    ASSERT_EQ(mdb_get(r.txn, meta, &k, &v), 0);
    uint8_t head[48];
    memcpy(head, v.mv_data, 48);
    head[40] = 0x7f; /* recorded_at near INT64_MAX */
    MDB_val nv = {48, head};
    ASSERT_EQ(mdb_put(r.txn, meta, &k, &nv, 0), 0);
    raw_commit(&r);
    dk_verify_report rep = reverify(dir);
    expect_bad(&rep, 14, "stored head");
    ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
    dmap d;
    dk_append_res res;
    fill_valid(&d, "note.added");
    ASSERT_ERR(try_put(&w, "V-1", "note.added", w.carol, NULL, &d, &res), DK_ECORRUPT);
    ASSERT_CONTAINS(res.errmsg, "stored ledger head");
    world_close(&w);
}

/* The ledger's id (its checkpoints' origin) and name in meta are the genesis record's
 * (helper-55's review: a changed id or name went unnoticed, and the next checkpoint was
 * signed under the changed origin). */
TEST(a_stored_id_or_name_unlike_the_genesis_is_named)
{
    static const char *const fields[] = {"ledger_id", "name"};
    for (int f = 0; f < 2; f++) {
        const char *dir = th_tmpdir();
        world w;
        build(&w, dir);
        dk_ledger_close(w.lg);
        w.lg = NULL;
        raw_env r;
        MDB_dbi meta = raw_open(&r, dir, "meta");
        MDB_val k = {strlen(fields[f]), (void *)fields[f]}, v;
        ASSERT_EQ(mdb_get(r.txn, meta, &k, &v), 0);
        char changed[64];
        ASSERT(v.mv_size <= sizeof changed);
        memcpy(changed, v.mv_data, v.mv_size);
        changed[0] = changed[0] == 'a' ? 'b' : 'a';
        MDB_val nv = {v.mv_size, changed};
        ASSERT_EQ(mdb_put(r.txn, meta, &k, &nv, 0), 0);
        raw_commit(&r);
        dk_verify_report rep = reverify(dir);
        char needle[64];
        snprintf(needle, sizeof needle, "the ledger's stored %s is not the one its genesis",
                 fields[f]);
        expect_bad(&rep, 1, needle);
        world_close(&w);
    }
}

/* Change the actor history: drop (how 0) or add (how 1) carol's entry for *seq. */
static void touch_actor_history(raw_env *r, MDB_dbi log, void *arg)
{
    (void)log;
    const uint64_t *a = arg; /* how, seq */
    uint8_t sk[8];
    raw_seq_key(sk, a[1]);
    char carol[] = "carol";
    MDB_val k = {5, carol}, v = {8, sk};
    MDB_dbi hist = raw_dbi(r, "actor_log");
    if (a[0] == 0)
        ASSERT_EQ(mdb_del(r->txn, hist, &k, &v), 0);
    else
        ASSERT_EQ(mdb_put(r->txn, hist, &k, &v, 0), 0);
}

/* Rebuilds read the system records through the actor history: verify checks it lists each
 * of them, and nothing else. */
TEST(the_actor_history_lists_every_system_record_and_no_other)
{
    for (uint64_t how = 0; how < 2; how++) {
        world w;
        const char *dir = th_tmpdir();
        build(&w, dir);
        dk_head h;
        ASSERT_OK(dk_ledger_head(w.lg, &h));
        world_close(&w);
        uint64_t arg[2] = {how, how ? h.seq : 2}; /* carol's enrolment; a case's note */
        dk_verify_report rep = damaged(dir, touch_actor_history, arg);
        if (how == 0)
            expect_bad(&rep, 2, "the actor history of 'carol' does not list this record");
        else
            expect_bad(&rep, h.seq, "the actor history lists");
    }
}

/* The actor table (which the writer checks each append's signers and roles against)
 * must be what the actor history made it: a row given another actor's roles, another key,
 * a flag of revocation or another enrolling record, a row for someone never enrolled, a
 * row cut short, or a missing row is named, and the writer refuses the actor's appends as damage;
 * the table put back verifies again (helper-42: a caseworker's row given every role passed verify,
 * and the writer then let her enrol an admin). */
static void actor_row(const char *dir, const char *id, int how, const uint8_t *newkey)
{
    raw_env r;
    MDB_dbi actors = raw_open(&r, dir, "actors");
    MDB_val k = {strlen(id), (void *)id}, v;
    uint8_t row[64] = {0};
    if (how != 4) {
        ASSERT_EQ(mdb_get(r.txn, actors, &k, &v), 0);
        ASSERT_EQ(v.mv_size, 45);
        memcpy(row, v.mv_data, 45);
    }
    size_t len = 45;
    switch (how) {
    case 0:
        row[35] ^= 0xff;
        break; /* roles */
    case 1:    /* key: an impostor's */
        memcpy(row, newkey, DK_PUBKEY_BYTES);
        break; /* key */
    case 2:
        row[36] = 1;
        break; /* revoked */
    case 3:
        len = 7;
        break; /* cut short */
    case 4:
        k.mv_data = (void *)"mallory";
        k.mv_size = 7;
        break; /* never enrolled */
    case 6:
        row[7] ^= 0x10;
        break; /* one bit of the key flipped: her own signatures no longer verify against it */
    case 7:
        row[44] ^= 0x01;
        break; /* the record that enrolled her */
    }
    if (how == 5) {
        ASSERT_EQ(mdb_del(r.txn, actors, &k, NULL), 0);
    } else {
        MDB_val nv = {len, row};
        ASSERT_EQ(mdb_put(r.txn, actors, &k, &nv, 0), 0);
    }
    raw_commit(&r);
}

TEST(the_actor_table_must_be_what_the_history_made_it)
{
    const char *dir = th_tmpdir();
    world w;
    build(&w, dir);
    dk_ledger_close(w.lg); /* the keys kept, for appends below */
    w.lg = NULL;
    uint8_t keep[45];
    ASSERT_EQ(raw_copy_value(dir, "actors", "carol", keep, sizeof keep), 45);
    static const char *const said[] = {
        "row for 'carol' is not what its history",    "row for 'carol' is not what its history",
        "row for 'carol' is not what its history",    "actor row for 'carol' is 7 bytes",
        "row for 'mallory', whom no record enrolled", "holds 3 actors but the history enrolled 4",
        "row for 'carol' is not what its history",    "row for 'carol' is not what its history"};
    uint64_t head = 14; /* the ledger's head: it grows by the appends each round accepts */
    for (int how = 0; how < 8; how++) {
        dk_key *impostor; /* signs as 'carol' with a key no admin enrolled */
        ASSERT_OK(dk_key_generate("carol", &impostor));
        actor_row(dir, "carol", how, dk_key_public(impostor));
        dk_verify_report rep = reverify(dir);
        expect_bad(&rep, head, said[how]);
        /* the writer does not trust the row either: carol's append is refused, as damage
         * (or, her row gone, as not enrolled), and sam's in the same ledger goes on */
        ASSERT_OK(dk_ledger_open(dir, NULL, &w.lg));
        dmap d;
        fill_valid(&d, "note.added");
        dk_append_res res;
        int rc = try_put(&w, "V-1", "note.added", how == 1 ? impostor : w.carol, NULL, &d, &res);
        dk_key_free(impostor);
        if (how == 4)
            ASSERT_OK(rc); /* a stranger's row takes nothing from carol */
        else
            ASSERT_ERR(rc, how == 5 ? DK_EDENIED : DK_ECORRUPT);
        if (how < 4 || how >= 6) /* 6: refused before the writer, as damage, not EBADSIG */
            ASSERT_CONTAINS(res.errmsg, how == 3 ? "7 bytes" : "not what its history made it");
        ASSERT_OK(try_put(&w, "V-1", "note.added", w.sam, NULL, &d, &res));
        head += 1 + (how == 4);
        ASSERT_EQ(head_seq(w.lg), head);
        dk_ledger_close(w.lg);
        w.lg = NULL;
        /* put back */
        raw_put_value(dir, "actors", "carol", keep, sizeof keep);
        raw_env r;
        MDB_dbi actors = raw_open(&r, dir, "actors");
        MDB_val mk = {7, (void *)"mallory"};
        int del = mdb_del(r.txn, actors, &mk, NULL);
        ASSERT(del == 0 || del == MDB_NOTFOUND);
        raw_commit(&r);
        rep = reverify(dir);
        ASSERT_EQ(rep.ok, 1);
    }
    world_close(&w);
}

/* ---- notices: what an older docket took and today's append refuses ---- */

typedef struct seen {
    uint64_t seq[32];
    int n;
} seen;

static void saw(void *arg, uint64_t seq, const char *why)
{
    seen *s = arg;
    ASSERT(why[0] != 0);
    if (s->n < 32)
        s->seq[s->n] = seq;
    s->n++;
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* tests/data/legacy: a ledger docket wrote at 1ad852a (its make.sh says how), holding
 * one record for each rule added to the append since. verify lists each, once, and
 * still passes the ledger. */
TEST(an_older_dockets_rule_breaks_are_notices_not_damage)
{
    const char *root = getenv("DOCKET_TEST_DATA");
    if (root == NULL)
        TH_FAIL("DOCKET_TEST_DATA is not set (ctest sets it to tests/data)");
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/legacy/ledger/data.mdb", root);
    const char *dir = th_tmpdir();
    snprintf(dst, sizeof dst, "%s/data.mdb", dir);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    ASSERT(in != NULL && out != NULL);
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        ASSERT(fwrite(buf, 1, got, out) == got);
    fclose(in);
    ASSERT(fclose(out) == 0);
    dk_ledger *lg;
    dk_ledger_opts ro = {0, 0, 1, 0};
    ASSERT_OK(dk_ledger_open(dir, &ro, &lg));
    /* L-1: a correction out of leave_cancelled (10), a second cancellation (11); L-2: a
     * correction into appealed (14) and the appeal decided (15); L-3: an interviewer nobody
     * enrolled (18); L-4: a condition listed nine times (22); L-6: a correction into closed
     * (32) and the revert of its undo (34); L-7: a cancellation dated before its grant (39);
     * sc.ben2 enrolled with sc.ben's own key (40); L-9: an undo bringing back a booking
     * with sc.ben2, revoked since (46); L-10: an undo of cw.ana's assignment, leaving her
     * decision in force (52); cw.ana rotated to the key she held (53), and back to her
     * retired key (55); L-11: a no-show before its slot began (59); L-12: a status correction
     * out of withdrawn with an interview booked (66) */
    const uint64_t want[] = {10, 11, 14, 15, 18, 22, 32, 34, 39, 40, 46, 52, 53, 55, 59, 66};
    const size_t nwant = sizeof want / sizeof want[0];
    for (int jobs = 1; jobs <= 2; jobs++) {
        seen s = {{0}, 0};
        dk_verify_opts o = {.jobs = jobs, .notice = saw, .notice_arg = &s};
        dk_verify_report rep;
        ASSERT_OK(dk_ledger_verify_opts(lg, &o, &rep));
        ASSERT(rep.ok);
        ASSERT_EQ(rep.notices, nwant);
        ASSERT_EQ((uint64_t)s.n, nwant);
        qsort(s.seq, (size_t)s.n, sizeof s.seq[0], by_seq);
        for (size_t i = 0; i < nwant; i++)
            ASSERT_EQ(s.seq[i], want[i]);
    }
    /* --from: only the records from it on */
    seen s = {{0}, 0};
    dk_verify_opts o = {.from = 30, .notice = saw, .notice_arg = &s};
    dk_verify_report rep;
    ASSERT_OK(dk_ledger_verify_opts(lg, &o, &rep));
    ASSERT(rep.ok);
    ASSERT_EQ(rep.notices, 10);
    qsort(s.seq, (size_t)s.n, sizeof s.seq[0], by_seq);
    ASSERT(s.n == 10 && s.seq[9] == 66 && s.seq[0] == 32 && s.seq[1] == 34 && s.seq[2] == 39 &&
           s.seq[3] == 40 && s.seq[4] == 46 && s.seq[5] == 52 && s.seq[6] == 53 && s.seq[7] == 55 &&
           s.seq[8] == 59);
    /* no callback: counted all the same */
    o = (dk_verify_opts){.jobs = 1};
    ASSERT_OK(dk_ledger_verify_opts(lg, &o, &rep));
    ASSERT(rep.ok);
    ASSERT_EQ(rep.notices, nwant);
    dk_ledger_close(lg);
}

TH_MAIN(
    TH_ENTRY(the_actor_history_lists_every_system_record_and_no_other) TH_ENTRY(
        intact_ledger_verifies_on_any_number_of_cores) TH_ENTRY(every_byte_of_a_record_is_covered)
        TH_ENTRY(a_dropped_record_is_named) TH_ENTRY(reordered_records_are_named) TH_ENTRY(
            a_replaced_signature_is_named) TH_ENTRY(a_record_spliced_from_another_ledger_is_named)
            TH_ENTRY(a_later_signature_failure_does_not_hide_an_earlier_one) TH_ENTRY(
                a_stale_case_state_row_is_named) TH_ENTRY(an_earlier_raw_state_row_is_still_read)
                TH_ENTRY(double_bookings_and_a_stale_slot_index_are_named)
                    TH_ENTRY(many_interviewers_are_told_apart)
                        TH_ENTRY(an_older_dockets_slot_index_is_rebuilt) TH_ENTRY(
                            a_double_booking_below_a_failing_case_is_named_first)
                            TH_ENTRY(the_case_index_must_list_exactly_the_case_events) TH_ENTRY(
                                a_head_with_another_time_is_named_and_stops_appends)
                                TH_ENTRY(a_stored_id_or_name_unlike_the_genesis_is_named) TH_ENTRY(
                                    the_actor_table_must_be_what_the_history_made_it)
                                    TH_ENTRY(an_older_dockets_rule_breaks_are_notices_not_damage))
