/* rawlmdb.h - tests' direct access to a ledger's LMDB files, as an attacker
 * or a failing disk would change them: no docket code in between. */
#ifndef DOCKET_TEST_RAWLMDB_H
#define DOCKET_TEST_RAWLMDB_H

#include <lmdb.h>
#include <stdint.h>

#include "harness.h"

typedef struct raw_env {
    MDB_env *env;
    MDB_txn *txn;
} raw_env;

/* Open DIR for writing and the named database `db`. */
static inline MDB_dbi raw_open(raw_env *r, const char *dir, const char *db)
{
    MDB_dbi dbi;
    ASSERT_EQ(mdb_env_create(&r->env), 0);
    mdb_env_set_maxdbs(r->env, 32);
    ASSERT_EQ(mdb_env_open(r->env, dir, 0, 0600), 0);
    ASSERT_EQ(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    ASSERT_EQ(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
    return dbi;
}

static inline MDB_dbi raw_dbi(raw_env *r, const char *db)
{
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
    return dbi;
}

static inline void raw_commit(raw_env *r)
{
    ASSERT_EQ(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

static inline void raw_seq_key(uint8_t key[8], uint64_t seq)
{
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(seq >> (56 - 8 * i));
}

/* A key of the `cases` database: with seq > 0 the case index's ("id NUL be64 seq"),
 * with 0 the state row's ("id NUL" and eight 0xff bytes). Its length. */
static inline size_t raw_case_key(uint8_t *key, const char *case_id, uint64_t seq)
{
    size_t n = strlen(case_id);
    memcpy(key, case_id, n);
    key[n] = 0;
    raw_seq_key(key + n + 1, seq ? seq : UINT64_MAX);
    return n + 9;
}

/* A copy of the log's record `seq` (malloc'd). */
static inline uint8_t *raw_get_record(raw_env *r, MDB_dbi log, uint64_t seq, size_t *len)
{
    uint8_t key[8];
    raw_seq_key(key, seq);
    MDB_val k = {8, key}, v;
    ASSERT_EQ(mdb_get(r->txn, log, &k, &v), 0);
    uint8_t *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    *len = v.mv_size;
    return copy;
}

static inline void raw_put_record(raw_env *r, MDB_dbi log, uint64_t seq, const uint8_t *b,
                                  size_t len)
{
    uint8_t key[8];
    raw_seq_key(key, seq);
    MDB_val k = {8, key}, v = {len, (void *)b};
    ASSERT_EQ(mdb_put(r->txn, log, &k, &v, 0), 0);
}

/* The value under the string `key` in database `db` of the closed environment `dir`,
 * copied into out (at most cap bytes); its length. */
static inline size_t raw_copy_value(const char *dir, const char *db, const char *key, uint8_t *out,
                                    size_t cap)
{
    raw_env r;
    MDB_dbi dbi = raw_open(&r, dir, db);
    MDB_val k = {strlen(key), (void *)key}, v;
    ASSERT_EQ(mdb_get(r.txn, dbi, &k, &v), 0);
    ASSERT(v.mv_size <= cap);
    memcpy(out, v.mv_data, v.mv_size);
    raw_commit(&r);
    return v.mv_size;
}

/* Put `len` bytes under the string `key` in database `db` of the closed environment. */
static inline void raw_put_value(const char *dir, const char *db, const char *key, const uint8_t *b,
                                 size_t len)
{
    raw_env r;
    MDB_dbi dbi = raw_open(&r, dir, db);
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)b};
    ASSERT_EQ(mdb_put(r.txn, dbi, &k, &v, 0), 0);
    raw_commit(&r);
}

#endif
