/* lmdbpoke.c - the integration tests' way to damage one entry of an LMDB database as a
 * stray tool would, bypassing docket: list, overwrite or delete a key (hex in and out). */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: lmdbpoke ENVDIR DB list | put HEXKEY HEXVALUE | del HEXKEY\n"
                    "  DB a named database; list prints each entry as HEXKEY HEXVALUE\n");
    exit(2);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "lmdbpoke: %s: %s\n", what, mdb_strerror(rc));
    exit(1);
}

/* `hex` decoded into a new buffer (the caller frees it); exits on bad hex. */
static MDB_val unhex(const char *hex)
{
    size_t n = strlen(hex);
    unsigned char *b = malloc(n / 2 + 1);
    if (n % 2 || b == NULL) {
        fprintf(stderr, "lmdbpoke: '%s' is not hex\n", hex);
        exit(2);
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            fprintf(stderr, "lmdbpoke: '%s' is not hex\n", hex);
            exit(2);
        }
        b[i] = (unsigned char)v;
    }
    return (MDB_val){n / 2, b};
}

static void puthex(const MDB_val *v)
{
    for (size_t i = 0; i < v->mv_size; i++)
        printf("%02x", ((const unsigned char *)v->mv_data)[i]);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        usage();
    const char *op = argv[3];
    int list = strcmp(op, "list") == 0, put = strcmp(op, "put") == 0, del = strcmp(op, "del") == 0;
    if (!(list && argc == 4) && !(put && argc == 6) && !(del && argc == 5))
        usage();
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc;
    /* as docket opens its stores (the map size is the file's own) */
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 256)) ||
        (rc = mdb_env_set_maxreaders(env, 512)) || (rc = mdb_env_open(env, argv[1], 0, 0600)))
        die("cannot open the environment", rc);
    if ((rc = mdb_txn_begin(env, NULL, list ? MDB_RDONLY : 0, &txn)) ||
        (rc = mdb_dbi_open(txn, argv[2], 0, &dbi)))
        die(argv[2], rc);
    if (list) {
        MDB_cursor *cur;
        MDB_val k, v;
        if ((rc = mdb_cursor_open(txn, dbi, &cur)))
            die("cursor", rc);
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            puthex(&k);
            putchar(' ');
            puthex(&v);
            putchar('\n');
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
    } else {
        MDB_val k = unhex(argv[4]);
        if (put) {
            MDB_val v = unhex(argv[5]);
            rc = mdb_put(txn, dbi, &k, &v, 0);
            free(v.mv_data);
        } else {
            rc = mdb_del(txn, dbi, &k, NULL);
        }
        free(k.mv_data);
        if (rc)
            die(op, rc);
        if ((rc = mdb_txn_commit(txn)))
            die("commit", rc);
    }
    mdb_env_close(env);
    return 0;
}
