/* keyfile.c - actor key files: the Ed25519 secret key sealed at rest with a
 * passphrase (Argon2id + XSalsa20-Poly1305), in a small strict text format. */
#include <errno.h>
#include <fcntl.h>
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
 * salt: <base64, 16 bytes>
 * nonce: <base64, 24 bytes>
 * sealed: <base64 of the secretbox of the 64-byte secret key>
 */
#define MAGIC      "docket-key v1"
#define FILE_MAX   4096
#define SEALED_LEN (crypto_secretbox_MACBYTES + DK_SECKEY_BYTES)

/* Derive the sealing key into sodium_malloc'd memory. */
static int derive(const char *pass, const uint8_t *salt, unsigned long long ops, size_t mem,
                  uint8_t **key)
{
    *key = sodium_malloc(crypto_secretbox_KEYBYTES);
    if (*key == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    if (crypto_pwhash(*key, crypto_secretbox_KEYBYTES, pass, strlen(pass), salt, ops, mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_free(*key);
        *key = NULL;
        return dk__fail(DK_ENOMEM, "not enough memory to derive the key-file key");
    }
    return 0;
}

int dk_key_save(const dk_key *k, const char *path, const char *passphrase)
{
    if (passphrase == NULL || passphrase[0] == 0)
        return dk__fail(DK_EINVAL, "empty passphrase: a key file must be sealed with one");
    int rc = dk_init();
    if (rc)
        return rc;
    uint8_t salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
    uint8_t sealed[SEALED_LEN];
    uint8_t *key;
    unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    randombytes_buf(salt, sizeof salt);
    randombytes_buf(nonce, sizeof nonce);
    if ((rc = derive(passphrase, salt, ops, mem, &key)) != 0)
        return rc;
    crypto_secretbox_easy(sealed, dk__key_secret(k), DK_SECKEY_BYTES, nonce, key);
    sodium_free(key);

    char pub64[64], salt64[64], nonce64[64], sealed64[256];
    dk_b64_encode(dk_key_public(k), DK_PUBKEY_BYTES, pub64);
    dk_b64_encode(salt, sizeof salt, salt64);
    dk_b64_encode(nonce, sizeof nonce, nonce64);
    dk_b64_encode(sealed, sizeof sealed, sealed64);
    char text[FILE_MAX];
    int n = snprintf(text, sizeof text,
                     MAGIC "\nid: %s\npublic: %s\nkdf: argon2id13 ops=%llu mem=%zu\nsalt: %s\n"
                           "nonce: %s\nsealed: %s\n",
                     dk_key_id(k), pub64, ops, mem, salt64, nonce64, sealed64);

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return dk__fail(errno == EEXIST ? DK_EEXIST : DK_EIO, "cannot create key file '%s': %s",
                        path, strerror(errno));
    ssize_t w = write(fd, text, (size_t)n);
    int ok = w == n && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(path);
        return dk__fail(DK_EIO, "cannot write key file '%s': %s", path, strerror(saved));
    }
    return 0;
}

/* Take the line "<name>: <value>" at *p into val (NUL-terminated). */
static int take_line(const char *path, char **p, const char *name, char *val, size_t cap)
{
    size_t nl = strlen(name);
    char *line = *p, *end = strchr(line, '\n');
    if (*line == 0)
        return dk__fail(DK_EKEYFILE, "key file '%s' is truncated: '%s' is missing", path, name);
    if (end == NULL || strncmp(line, name, nl) != 0 || line[nl] != ':' || line[nl + 1] != ' ')
        return dk__fail(DK_EKEYFILE, "key file '%s': expected a '%s:' line", path, name);
    size_t vlen = (size_t)(end - (line + nl + 2));
    if (vlen == 0 || vlen >= cap)
        return dk__fail(DK_EKEYFILE, "key file '%s': '%s' has a bad length", path, name);
    memcpy(val, line + nl + 2, vlen);
    val[vlen] = 0;
    *p = end + 1;
    return 0;
}

static int take_b64(const char *path, const char *name, const char *val, uint8_t *out, size_t n)
{
    size_t got = 0;
    if (dk_b64_decode(val, out, n, &got) != 0 || got != n)
        return dk__fail(DK_EKEYFILE, "key file '%s': '%s' is not %zu bytes of base64", path, name,
                        n);
    return 0;
}

static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return dk__fail(DK_EKEYFILE, "cannot open key file '%s': %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = dk__fail(DK_EKEYFILE, "key file '%s' is not a regular file", path);
    else if (st.st_mode & 077)
        rc = dk__fail(DK_EKEYFILE,
                      "key file '%s' is readable by group or others (mode %03o); run chmod 600 %s",
                      path, (unsigned)(st.st_mode & 0777), path);
    size_t n = 0;
    while (rc == 0 && n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0)
            rc = dk__fail(DK_EKEYFILE, "cannot read key file '%s': %s", path, strerror(errno));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (rc == 0 && n == cap - 1)
        rc = dk__fail(DK_EKEYFILE, "key file '%s' is too large to be a key file", path);
    buf[n] = 0;
    close(fd);
    return rc;
}

int dk_key_load(const char *path, const char *passphrase, dk_key **out)
{
    *out = NULL;
    if (passphrase == NULL || passphrase[0] == 0)
        return dk__fail(DK_EINVAL, "empty passphrase");
    int rc = dk_init();
    if (rc)
        return rc;
    char text[FILE_MAX], id[DK_ACTOR_MAX + 1], pub64[128], kdf[128], salt64[128], nonce64[128],
        sealed64[256];
    uint8_t pub[DK_PUBKEY_BYTES], salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES],
        sealed[SEALED_LEN];
    if ((rc = read_file(path, text, sizeof text)) != 0)
        return rc;
    char *p = text;
    if (strncmp(p, MAGIC "\n", strlen(MAGIC) + 1) != 0)
        return dk__fail(DK_EKEYFILE, "'%s' is not a docket key file (first line is not '%s')", path,
                        MAGIC);
    p += strlen(MAGIC) + 1;
    if ((rc = take_line(path, &p, "id", id, sizeof id)) != 0 ||
        (rc = take_line(path, &p, "public", pub64, sizeof pub64)) != 0 ||
        (rc = take_line(path, &p, "kdf", kdf, sizeof kdf)) != 0 ||
        (rc = take_line(path, &p, "salt", salt64, sizeof salt64)) != 0 ||
        (rc = take_line(path, &p, "nonce", nonce64, sizeof nonce64)) != 0 ||
        (rc = take_line(path, &p, "sealed", sealed64, sizeof sealed64)) != 0)
        return rc;
    if (*p != 0)
        return dk__fail(DK_EKEYFILE, "key file '%s' has unexpected lines after 'sealed'", path);
    if ((rc = take_b64(path, "public", pub64, pub, sizeof pub)) != 0 ||
        (rc = take_b64(path, "salt", salt64, salt, sizeof salt)) != 0 ||
        (rc = take_b64(path, "nonce", nonce64, nonce, sizeof nonce)) != 0 ||
        (rc = take_b64(path, "sealed", sealed64, sealed, sizeof sealed)) != 0)
        return rc;
    unsigned long long ops;
    size_t mem;
    char tail;
    if (sscanf(kdf, "argon2id13 ops=%llu mem=%zu%c", &ops, &mem, &tail) != 2 ||
        ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_SENSITIVE ||
        mem < crypto_pwhash_MEMLIMIT_MIN || mem > crypto_pwhash_MEMLIMIT_SENSITIVE)
        return dk__fail(DK_EKEYFILE, "key file '%s': unsupported kdf line '%s'", path, kdf);

    uint8_t *key, *sk = sodium_malloc(DK_SECKEY_BYTES);
    if (sk == NULL)
        return dk__fail(DK_ENOMEM, "out of memory");
    if ((rc = derive(passphrase, salt, ops, mem, &key)) != 0) {
        sodium_free(sk);
        return rc;
    }
    int opened = crypto_secretbox_open_easy(sk, sealed, sizeof sealed, nonce, key) == 0;
    sodium_free(key);
    if (!opened) {
        sodium_free(sk);
        return dk__fail(DK_EPASSPHRASE,
                        "wrong passphrase for key file '%s' (or the file was altered)", path);
    }
    rc = dk__key_from_secret(id, sk, out);
    sodium_free(sk);
    if (rc)
        return dk__fail(DK_EKEYFILE, "key file '%s': %s", path, dk_errmsg());
    if (sodium_memcmp(dk_key_public(*out), pub, DK_PUBKEY_BYTES) != 0) {
        dk_key_free(*out);
        *out = NULL;
        return dk__fail(DK_EKEYFILE, "key file '%s': the public key does not match the secret key",
                        path);
    }
    return 0;
}
