/* keyfile.c - actor key files: the Ed25519 secret key sealed at rest with a
 * passphrase (Argon2id + XSalsa20-Poly1305), in a small strict text format. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto_int.h"
#include "docket/docket.h"
#include "engine_int.h"

/*
 * docket-key v1
 * id: <actor id>
 * public: <base64 public key>
 * kdf: argon2id13 ops=<opslimit> mem=<memlimit bytes>
 * salt: <base64, crypto_pwhash_SALTBYTES>
 * nonce: <base64, crypto_secretbox_NONCEBYTES>
 * sealed: <base64 of crypto_secretbox_easy(64-byte secret key)>
 */
#define MAGIC      "docket-key v1"
#define FILE_MAX   4096 /* bytes; a real key file is about 330 */
#define SEALED_LEN (crypto_secretbox_MACBYTES + DK_SECKEY_BYTES)
#define SHOW_MAX   40 /* characters of a bad line quoted in a message */

/* What a key file says, before unsealing. */
typedef struct {
    char id[DK_ACTOR_MAX + 1];
    uint8_t pub[DK_PUBKEY_BYTES];
    unsigned long long ops;
    size_t mem;
    uint8_t salt[crypto_pwhash_SALTBYTES];
    uint8_t nonce[crypto_secretbox_NONCEBYTES];
    uint8_t sealed[SEALED_LEN];
} keyfile;

/* Derive the sealing key into sodium_malloc'd memory (*key is NULL on failure). */
static int derive(const char *pass, const uint8_t *salt, unsigned long long ops, size_t mem,
                  uint8_t **key)
{
    *key = sodium_malloc(crypto_secretbox_KEYBYTES);
    if (*key == NULL)
        return dk__fail(DK_ENOMEM, "out of secure memory for the key-file key");
    if (crypto_pwhash(*key, crypto_secretbox_KEYBYTES, pass, strlen(pass), salt, ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_free(*key);
        *key = NULL;
        return dk__fail(DK_ENOMEM, "not enough memory (%zu bytes) to derive the key-file key", mem);
    }
    return 0;
}

/* Best effort: make the new directory entry durable too. */
static void fsync_parent(const char *path)
{
    char dir[4096];
    if (dk__parent_dir(path, dir, sizeof dir) != 0)
        return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int dk_key_save(const dk_key *k, const char *path, const char *passphrase)
{
    if (k == NULL || path == NULL || path[0] == 0)
        return dk__fail(DK_EINVAL, "dk_key_save needs a key and a path");
    if (passphrase == NULL || passphrase[0] == 0)
        return dk__fail(DK_EINVAL, "empty passphrase: a key file must be sealed with one");
    int rc = dk_init();
    if (rc)
        return rc;

    uint8_t salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
    uint8_t sealed[SEALED_LEN], *key;
    unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    randombytes_buf(salt, sizeof salt);
    randombytes_buf(nonce, sizeof nonce);
    if ((rc = derive(passphrase, salt, ops, mem, &key)) != 0)
        return rc;
    crypto_secretbox_easy(sealed, dk__key_secret(k), DK_SECKEY_BYTES, nonce, key);
    sodium_free(key); /* wipes */

    char pub64[64], salt64[64], nonce64[64], sealed64[160], text[FILE_MAX];
    dk_b64_encode(dk_key_public(k), DK_PUBKEY_BYTES, pub64);
    dk_b64_encode(salt, sizeof salt, salt64);
    dk_b64_encode(nonce, sizeof nonce, nonce64);
    dk_b64_encode(sealed, sizeof sealed, sealed64);
    int n = snprintf(text, sizeof text,
                     MAGIC "\nid: %s\npublic: %s\nkdf: argon2id13 ops=%llu mem=%zu\nsalt: %s\n"
                           "nonce: %s\nsealed: %s\n",
                     dk_key_id(k), pub64, ops, mem, salt64, nonce64, sealed64);
    if (n < 0 || (size_t)n >= sizeof text)
        return dk__fail(DK_EINVAL, "key file text for '%s' does not fit", dk_key_id(k));

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return dk__fail(DK_EEXIST, "key file %s already exists; refusing to overwrite it",
                            path);
        return dk__fail(DK_EIO, "cannot create key file %s: %s", path, strerror(errno));
    }
    int ok = dk__write_all(fd, text, (size_t)n) == 0 && fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok) {
        unlink(path);
        return dk__fail(DK_EIO, "cannot write key file %s: %s", path, strerror(err));
    }
    fsync_parent(path);
    return 0;
}

/* Read the whole file into buf (FILE_MAX + 2 bytes), NUL-terminated, after
 * checking that it is a regular file that only its owner can read. */
static int read_file(const char *path, char *buf)
{
    /* O_NONBLOCK: a FIFO or device in the key's place must not hang the open; what was
     * opened is then checked to be a regular file (fstat, so it cannot be swapped after the
     * check). Reads from a regular file ignore the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return dk__fail(DK_EKEYFILE, "key file %s does not exist", path);
        return dk__fail(DK_EKEYFILE, "cannot open key file %s: %s", path, strerror(errno));
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = dk__fail(DK_EKEYFILE, "cannot stat key file %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = dk__fail(DK_EKEYFILE, "key file %s is not a regular file", path);
    else if ((st.st_mode & 0177) != 0)
        rc = dk__fail(DK_EKEYFILE,
                      "key file %s has mode %04o: only 0600 or stricter is accepted; run chmod "
                      "600 %s",
                      path, (unsigned)(st.st_mode & 07777), path);

    size_t n = 0;
    while (rc == 0 && n <= FILE_MAX) {
        ssize_t r = read(fd, buf + n, FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = dk__fail(DK_EKEYFILE, "cannot read key file %s: %s", path, strerror(errno));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    if (rc)
        return rc;
    if (n > FILE_MAX)
        return dk__fail(DK_EKEYFILE, "%s is larger than %d bytes; it is not a key file", path,
                        FILE_MAX);
    if (memchr(buf, 0, n) != NULL)
        return dk__fail(DK_EKEYFILE, "%s contains a NUL byte; it is not a key file", path);
    return 0;
}

/* The value of line `lineno`, which must be "<name>: <value>"; advances *p. */
static int field(const char *path, const char **p, int lineno, const char *name, const char **val,
                 size_t *vlen)
{
    const char *line = *p, *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line), namelen = strlen(name);
    if (len == 0 && nl == NULL)
        return dk__fail(DK_EKEYFILE, "key file %s is truncated: missing '%s' (line %d)", path, name,
                        lineno);
    if (len < namelen + 2 || memcmp(line, name, namelen) != 0 || line[namelen] != ':' ||
        line[namelen + 1] != ' ')
        return dk__fail(DK_EKEYFILE, "key file %s, line %d: expected '%s: ...', found '%.*s%s'",
                        path, lineno, name, (int)(len < SHOW_MAX ? len : SHOW_MAX), line,
                        len > SHOW_MAX ? "..." : "");
    *val = line + namelen + 2;
    *vlen = len - namelen - 2;
    if (*vlen == 0)
        return dk__fail(DK_EKEYFILE, "key file %s, line %d: '%s' is empty", path, lineno, name);
    *p = nl ? nl + 1 : line + len;
    return 0;
}

/* Exactly `n` bytes of base64 from the value of line `lineno`. */
static int field_b64(const char *path, int lineno, const char *name, const char *val, size_t vlen,
                     uint8_t *out, size_t n)
{
    char tmp[160];
    size_t got = 0;
    if (vlen >= sizeof tmp)
        goto bad;
    memcpy(tmp, val, vlen);
    tmp[vlen] = 0;
    if (dk_b64_decode(tmp, out, n, &got) != 0 || got != n)
        goto bad;
    return 0;
bad:
    return dk__fail(DK_EKEYFILE, "key file %s, line %d: '%s' is not %zu bytes of base64", path,
                    lineno, name, n);
}

/* A decimal number without sign, spaces or leading zeros; advances *s. */
static int take_uint(const char **s, const char *end, unsigned long long *v)
{
    const char *q = *s;
    *v = 0;
    if (q == end || *q < '0' || *q > '9' ||
        (*q == '0' && q + 1 < end && q[1] >= '0' && q[1] <= '9'))
        return -1;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (*v > (ULLONG_MAX - d) / 10)
            return -1;
        *v = *v * 10 + d;
    }
    *s = q;
    return 0;
}

static int skip(const char **s, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *s) < n || memcmp(*s, lit, n) != 0)
        return -1;
    *s += n;
    return 0;
}

/* "argon2id13 ops=<ops> mem=<bytes>", within libsodium's accepted range. */
static int field_kdf(const char *path, const char *val, size_t vlen, keyfile *kf)
{
    const char *s = val, *end = val + vlen;
    unsigned long long ops, mem;
    if (skip(&s, end, "argon2id13 ") != 0)
        return dk__fail(DK_EKEYFILE,
                        "key file %s, line 4: unsupported kdf '%.*s'; expected argon2id13", path,
                        (int)(vlen < SHOW_MAX ? vlen : SHOW_MAX), val);
    if (skip(&s, end, "ops=") != 0 || take_uint(&s, end, &ops) != 0 ||
        skip(&s, end, " mem=") != 0 || take_uint(&s, end, &mem) != 0 || s != end)
        return dk__fail(DK_EKEYFILE,
                        "key file %s, line 4: kdf parameters are not 'ops=<n> mem=<bytes>'", path);
    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_SENSITIVE)
        return dk__fail(DK_EKEYFILE, "key file %s, line 4: kdf ops=%llu is outside %llu..%llu",
                        path, ops, (unsigned long long)crypto_pwhash_OPSLIMIT_MIN,
                        (unsigned long long)crypto_pwhash_OPSLIMIT_SENSITIVE);
    if (mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_SENSITIVE)
        return dk__fail(DK_EKEYFILE, "key file %s, line 4: kdf mem=%llu is outside %zu..%zu", path,
                        mem, (size_t)crypto_pwhash_MEMLIMIT_MIN,
                        (size_t)crypto_pwhash_MEMLIMIT_SENSITIVE);
    kf->ops = ops;
    kf->mem = (size_t)mem;
    return 0;
}

/* Every line, in order, and nothing after them. */
static int parse(const char *path, const char *text, keyfile *kf)
{
    const char *p = text, *nl = strchr(p, '\n'), *v;
    size_t len = nl ? (size_t)(nl - p) : strlen(p), vlen;
    int rc;
    if (len == 0 && nl == NULL)
        return dk__fail(DK_EKEYFILE, "key file %s is empty", path);
    if (len != strlen(MAGIC) || memcmp(p, MAGIC, len) != 0) {
        int shown = (int)(len < SHOW_MAX ? len : SHOW_MAX);
        if (strncmp(p, "docket-key ", strlen("docket-key ")) == 0)
            return dk__fail(DK_EKEYFILE,
                            "key file %s has unsupported version '%.*s' (line 1); this docket "
                            "reads '" MAGIC "'",
                            path, shown, p);
        return dk__fail(DK_EKEYFILE,
                        "%s is not a docket key file (line 1 is '%.*s%s', not '" MAGIC "')", path,
                        shown, p, len > SHOW_MAX ? "..." : "");
    }
    p = nl ? nl + 1 : p + len;

    if ((rc = field(path, &p, 2, "id", &v, &vlen)) != 0)
        return rc;
    if (!dk__actor_id_valid(v, vlen))
        return dk__fail(DK_EKEYFILE,
                        "key file %s, line 2: actor id '%.*s' is not 1..%d characters of "
                        "[A-Za-z0-9._@-]",
                        path, (int)(vlen < SHOW_MAX ? vlen : SHOW_MAX), v, DK_ACTOR_MAX);
    memcpy(kf->id, v, vlen);
    kf->id[vlen] = 0;
    if ((rc = field(path, &p, 3, "public", &v, &vlen)) != 0 ||
        (rc = field_b64(path, 3, "public", v, vlen, kf->pub, sizeof kf->pub)) != 0 ||
        (rc = field(path, &p, 4, "kdf", &v, &vlen)) != 0 ||
        (rc = field_kdf(path, v, vlen, kf)) != 0 ||
        (rc = field(path, &p, 5, "salt", &v, &vlen)) != 0 ||
        (rc = field_b64(path, 5, "salt", v, vlen, kf->salt, sizeof kf->salt)) != 0 ||
        (rc = field(path, &p, 6, "nonce", &v, &vlen)) != 0 ||
        (rc = field_b64(path, 6, "nonce", v, vlen, kf->nonce, sizeof kf->nonce)) != 0 ||
        (rc = field(path, &p, 7, "sealed", &v, &vlen)) != 0 ||
        (rc = field_b64(path, 7, "sealed", v, vlen, kf->sealed, sizeof kf->sealed)) != 0)
        return rc;
    if (*p != 0)
        return dk__fail(DK_EKEYFILE, "key file %s has unexpected text after 'sealed' (line 8)",
                        path);
    return 0;
}

int dk_key_load(const char *path, const char *passphrase, dk_key **out)
{
    *out = NULL;
    if (path == NULL || path[0] == 0)
        return dk__fail(DK_EINVAL, "no key file named (the path is empty)");
    if (passphrase == NULL || passphrase[0] == 0)
        return dk__fail(DK_EINVAL, "empty passphrase");
    int rc = dk_init();
    if (rc)
        return rc;
    char text[FILE_MAX + 2];
    keyfile kf;
    if ((rc = read_file(path, text)) != 0 || (rc = parse(path, text, &kf)) != 0)
        return rc;

    uint8_t *key = NULL, *sk = sodium_malloc(DK_SECKEY_BYTES), pk[DK_PUBKEY_BYTES];
    if (sk == NULL)
        return dk__fail(DK_ENOMEM, "out of secure memory for a secret key");
    rc = derive(passphrase, kf.salt, kf.ops, kf.mem, &key);
    if (rc == 0 && crypto_secretbox_open_easy(sk, kf.sealed, sizeof kf.sealed, kf.nonce, key) != 0)
        rc = dk__fail(DK_EPASSPHRASE, "wrong passphrase for key file %s (or the file was altered)",
                      path);
    if (rc == 0) {
        crypto_sign_ed25519_sk_to_pk(pk, sk);
        if (sodium_memcmp(pk, kf.pub, DK_PUBKEY_BYTES) != 0)
            rc = dk__fail(DK_EKEYFILE,
                          "key file %s, line 3: the public key does not match the sealed "
                          "secret key",
                          path);
    }
    if (rc == 0)
        rc = dk__key_from_secret(kf.id, sk, out);
    sodium_free(key); /* both wipe; NULL is a no-op */
    sodium_free(sk);
    return rc;
}
