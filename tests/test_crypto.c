/* test_crypto.c - unit tests of keys, domain-separated signatures, hashes,
 * text encodings and sealed key files (passphrase, mode, truncation). */
#include <ctype.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>

#include "crypto_int.h"
#include "docket/docket.h"
#include "engine_int.h"
#include "harness.h"

static const uint8_t body[] = "an event body";

TEST(sign_verify_round_trip)
{
    dk_key *k, *other, *again;
    uint8_t sig[64];
    ASSERT_OK(dk_init());
    ASSERT_OK(dk_key_generate("alice", &k));
    ASSERT_OK(dk_key_generate("bob", &other));
    ASSERT_STR_EQ(dk_key_id(k), "alice");
    ASSERT_OK(dk_sign(k, body, sizeof body, sig));
    ASSERT_OK(dk_verify(dk_key_public(k), body, sizeof body, sig));
    /* another key */
    ASSERT_ERR(dk_verify(dk_key_public(other), body, sizeof body, sig), DK_EBADSIG);
    ASSERT_STR_EQ(dk_errmsg(), "signature does not verify");
    /* a flipped bit in the body */
    uint8_t copy[sizeof body];
    memcpy(copy, body, sizeof body);
    copy[3] ^= 1;
    ASSERT_ERR(dk_verify(dk_key_public(k), copy, sizeof copy, sig), DK_EBADSIG);
    /* a shorter body */
    ASSERT_ERR(dk_verify(dk_key_public(k), body, sizeof body - 1, sig), DK_EBADSIG);
    /* a flipped bit in the signature */
    uint8_t bad[64];
    memcpy(bad, sig, 64);
    bad[10] ^= 0x80;
    ASSERT_ERR(dk_verify(dk_key_public(k), body, sizeof body, bad), DK_EBADSIG);
    /* the same secret key rebuilt gives the same public key and signatures */
    ASSERT_OK(dk__key_from_secret("alice", dk__key_secret(k), &again));
    ASSERT_MEM_EQ(dk_key_public(again), dk_key_public(k), DK_PUBKEY_BYTES);
    ASSERT_OK(dk_sign(again, body, sizeof body, bad));
    ASSERT_MEM_EQ(bad, sig, 64); /* Ed25519 is deterministic */
    /* an empty body signs too */
    ASSERT_OK(dk_sign(k, NULL, 0, sig));
    ASSERT_OK(dk_verify(dk_key_public(k), NULL, 0, sig));
    dk_key_free(again);
    dk_key_free(k);
    dk_key_free(other);
    dk_key_free(NULL);
}

TEST(large_bodies_sign_too)
{
    /* 4096 is the largest body verified from the stack; around and past it. */
    size_t sizes[] = {4095, 4096, 4097, 100000};
    dk_key *k;
    ASSERT_OK(dk_key_generate("alice", &k));
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *big = malloc(n), sig[64];
        ASSERT(big != NULL);
        memset(big, 7, n);
        ASSERT_OK(dk_sign(k, big, n, sig));
        ASSERT_OK(dk_verify(dk_key_public(k), big, n, sig));
        big[n - 1] = 8;
        ASSERT_ERR(dk_verify(dk_key_public(k), big, n, sig), DK_EBADSIG);
        free(big);
    }
    dk_key_free(k);
}

TEST(domain_separation)
{
    /* A plain Ed25519 signature over the body alone must not pass. */
    dk_key *k;
    uint8_t sig[64];
    ASSERT_OK(dk_key_generate("alice", &k));
    crypto_sign_detached(sig, NULL, body, sizeof body, dk__key_secret(k));
    ASSERT_EQ(crypto_sign_verify_detached(sig, body, sizeof body, dk_key_public(k)), 0);
    ASSERT_ERR(dk_verify(dk_key_public(k), body, sizeof body, sig), DK_EBADSIG);
    /* ... and ours is exactly Ed25519 over "docket/event/v1\0" || body. */
    uint8_t msg[DK_SIGN_DOMAIN_LEN + sizeof body];
    memcpy(msg, "docket/event/v1", 16);
    memcpy(msg + 16, body, sizeof body);
    ASSERT_OK(dk_sign(k, body, sizeof body, sig));
    ASSERT_EQ(crypto_sign_verify_detached(sig, msg, sizeof msg, dk_key_public(k)), 0);
    ASSERT(crypto_sign_verify_detached(sig, body, sizeof body, dk_key_public(k)) != 0);
    dk_key_free(k);
}

TEST(hash_vectors)
{
    uint8_t h[32];
    char hex[65];
    /* FIPS 180-2 */
    dk_sha256("abc", 3, h);
    dk_hex_encode(h, 32, hex);
    ASSERT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 6962: the hash of an empty leaf */
    dk_leaf_hash("", 0, h);
    dk_hex_encode(h, 32, hex);
    ASSERT_STR_EQ(hex, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    /* leaf = SHA-256(0x00 || data) */
    uint8_t leafbuf[4] = {0, 'a', 'b', 'c'}, want[32];
    dk_sha256(leafbuf, sizeof leafbuf, want);
    dk_leaf_hash("abc", 3, h);
    ASSERT_MEM_EQ(h, want, 32);
    /* node = SHA-256(0x01 || l || r), and order matters */
    uint8_t l[32], r[32], buf[65], swapped[32];
    memset(l, 1, 32);
    memset(r, 2, 32);
    buf[0] = 1;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    dk_sha256(buf, sizeof buf, want);
    dk_node_hash(l, r, h);
    ASSERT_MEM_EQ(h, want, 32);
    dk_node_hash(r, l, swapped);
    ASSERT(memcmp(h, swapped, 32) != 0);
}

TEST(random_bytes)
{
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    dk_random(a, sizeof a);
    dk_random(b, sizeof b);
    ASSERT(memcmp(a, zero, 32) != 0);
    ASSERT(memcmp(a, b, 32) != 0);
}

TEST(base64)
{
    const uint8_t in[] = {0x00, 0xff, 0x10, 0x80, 0x7f};
    char b64[16];
    uint8_t out[8];
    size_t n = 99;
    ASSERT_EQ(dk_b64_len(sizeof in), 9); /* 8 characters and the NUL */
    dk_b64_encode(in, sizeof in, b64);
    ASSERT_STR_EQ(b64, "AP8QgH8=");
    ASSERT_OK(dk_b64_decode(b64, out, sizeof out, &n));
    ASSERT_EQ(n, sizeof in);
    ASSERT_MEM_EQ(out, in, sizeof in);
    dk_b64_encode(in, 0, b64);
    ASSERT_STR_EQ(b64, "");
    ASSERT_OK(dk_b64_decode("", out, sizeof out, &n));
    ASSERT_EQ(n, 0);
    /* every 0..255 byte survives the trip */
    uint8_t all[256], back[256];
    char all64[400];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    dk_b64_encode(all, sizeof all, all64);
    ASSERT_OK(dk_b64_decode(all64, back, sizeof back, &n));
    ASSERT_EQ(n, 256);
    ASSERT_MEM_EQ(back, all, 256);

    ASSERT_ERR(dk_b64_decode("AP8QgH8", out, sizeof out, &n), DK_EDECODE);   /* no padding */
    ASSERT_ERR(dk_b64_decode("AP8QgH8=x", out, sizeof out, &n), DK_EDECODE); /* trailing */
    ASSERT_ERR(dk_b64_decode("AP8QgH8= ", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_b64_decode("AP8Q\ngH8=", out, sizeof out, &n), DK_EDECODE); /* nothing ignored */
    ASSERT_ERR(dk_b64_decode("AP8QgH9=", out, sizeof out, &n), DK_EDECODE);   /* stray bits */
    ASSERT_ERR(dk_b64_decode("AP8QgH8-", out, sizeof out, &n), DK_EDECODE);   /* URL alphabet */
    ASSERT_ERR(dk_b64_decode("!!!!", out, sizeof out, &n), DK_EDECODE);
    /* every byte outside the alphabet, where a '/' stands (libsodium 1.0.18 read any byte
     * from 0x80 up as '/': a damaged signed note still verified) */
    for (int c = 1; c < 256; c++) {
        if (isalnum(c) || c == '+' || c == '/')
            continue;
        char bad[] = "AP8Q/H8=";
        bad[4] = (char)c;
        if (dk_b64_decode(bad, out, sizeof out, &n) != DK_EDECODE)
            TH_FAIL("base64 with byte 0x%02x decoded", c);
    }
    ASSERT_ERR(dk_b64_decode("AAAAAAAAAAAAAAAA", out, 4, &n), DK_EDECODE); /* over cap */
    ASSERT_CONTAINS(dk_errmsg(), "base64");
}

TEST(hex)
{
    const uint8_t in[] = {0x00, 0xff, 0x10, 0x80, 0x7f};
    char hex[16];
    uint8_t out[8];
    size_t n = 99;
    dk_hex_encode(in, sizeof in, hex);
    ASSERT_STR_EQ(hex, "00ff10807f"); /* lowercase */
    ASSERT_OK(dk_hex_decode(hex, out, sizeof out, &n));
    ASSERT_EQ(n, sizeof in);
    ASSERT_MEM_EQ(out, in, sizeof in);
    ASSERT_OK(dk_hex_decode("", out, sizeof out, &n));
    ASSERT_EQ(n, 0);
    ASSERT_ERR(dk_hex_decode("abc", out, sizeof out, &n), DK_EDECODE); /* odd length */
    ASSERT_ERR(dk_hex_decode("zz", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_hex_decode("00ff ", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_hex_decode(" 00f", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_hex_decode("00:ff", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_hex_decode("00112233445566778899", out, 4, &n), DK_EDECODE); /* over cap */
    ASSERT_CONTAINS(dk_errmsg(), "hex");
}

TEST(actor_ids)
{
    dk_key *k = (dk_key *)1;
    ASSERT_ERR(dk_key_generate("", &k), DK_EINVAL);
    ASSERT(k == NULL);
    ASSERT_CONTAINS(dk_errmsg(), "empty");
    ASSERT_ERR(dk_key_generate("has space", &k), DK_EINVAL);
    ASSERT_CONTAINS(dk_errmsg(), "'has space'");
    ASSERT_CONTAINS(dk_errmsg(), "0x20");
    ASSERT_ERR(dk_key_generate("slash/no", &k), DK_EINVAL);
    ASSERT_ERR(dk_key_generate("caf\xc3\xa9", &k), DK_EINVAL);
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    ASSERT_ERR(dk_key_generate(long_id, &k), DK_EINVAL);
    ASSERT_CONTAINS(dk_errmsg(), "65 bytes");
    uint8_t sk[DK_SECKEY_BYTES] = {0};
    ASSERT_ERR(dk__key_from_secret("no way", sk, &k), DK_EINVAL);
    ASSERT(k == NULL);
    long_id[64] = 0;
    ASSERT_OK(dk_key_generate(long_id, &k));
    ASSERT_STR_EQ(dk_key_id(k), long_id);
    dk_key_free(k);
    ASSERT_OK(dk_key_generate("cw.o-k_1@HO", &k));
    dk_key_free(k);
    ASSERT_EQ(dk__actor_id_valid("abc", 3), 1);
    ASSERT_EQ(dk__actor_id_valid("a\0c", 3), 0);
}

/* ---- key files ---- */

static char path_buf[512];
static const char *key_path(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", th_dir, name);
    return path_buf;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
    ASSERT_EQ(close(fd), 0);
    ASSERT_EQ(chmod(path, mode), 0);
}

static void read_text(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    ASSERT(n > 0);
    buf[n] = 0;
    close(fd);
}

/* A fresh directory holding alice.key sealed with "pass"; its text in `text`. */
static dk_key *saved_key(char path[512], char text[4096])
{
    dk_key *k;
    th_tmpdir();
    ASSERT_OK(dk_key_generate("alice", &k));
    snprintf(path, 512, "%s", key_path("alice.key"));
    ASSERT_OK(dk_key_save(k, path, "pass"));
    read_text(path, text, 4096);
    return k;
}

/* Load `text` written as `name` with mode 0600; expect `code`. */
static void load_expect(const char *name, const char *text, int code)
{
    dk_key *back = (dk_key *)1;
    write_text(key_path(name), text, 0600);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), code);
    ASSERT(back == NULL);
    ASSERT_CONTAINS(dk_errmsg(), path_buf);
}

TEST(key_file_round_trip)
{
    char path[512], text[4096];
    umask(0); /* the file's mode must not depend on the umask */
    dk_key *k = saved_key(path, text), *back;
    uint8_t sig[64];
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT(S_ISREG(st.st_mode));
    ASSERT_EQ(st.st_mode & 07777, 0600);
    ASSERT_CONTAINS(text, "docket-key v1\nid: alice\npublic: ");
    ASSERT_CONTAINS(text, "\nkdf: argon2id13 ops=");
    ASSERT(strstr(text, "sealed: ") != NULL);
    ASSERT_OK(dk_key_load(path, "pass", &back));
    ASSERT_STR_EQ(dk_key_id(back), "alice");
    ASSERT_MEM_EQ(dk_key_public(back), dk_key_public(k), DK_PUBKEY_BYTES);
    ASSERT_MEM_EQ(dk__key_secret(back), dk__key_secret(k), DK_SECKEY_BYTES);
    ASSERT_OK(dk_sign(back, body, sizeof body, sig));
    ASSERT_OK(dk_verify(dk_key_public(k), body, sizeof body, sig));
    dk_key_free(back);
    dk_key_free(k);
}

TEST(key_file_never_overwritten)
{
    char path[512], text[4096], after[4096];
    dk_key *k = saved_key(path, text), *other;
    ASSERT_OK(dk_key_generate("bob", &other));
    ASSERT_ERR(dk_key_save(other, path, "other"), DK_EEXIST);
    ASSERT_CONTAINS(dk_errmsg(), path);
    read_text(path, after, sizeof after);
    ASSERT_STR_EQ(after, text);
    dk_key_free(other);
    dk_key_free(k);
}

TEST(key_file_empty_passphrase)
{
    char path[512], text[4096];
    dk_key *k = saved_key(path, text), *back = (dk_key *)1;
    ASSERT_ERR(dk_key_save(k, key_path("x.key"), ""), DK_EINVAL);
    ASSERT_CONTAINS(dk_errmsg(), "empty passphrase");
    ASSERT(access(path_buf, F_OK) != 0); /* nothing was created */
    ASSERT_ERR(dk_key_load(path, "", &back), DK_EINVAL);
    ASSERT_CONTAINS(dk_errmsg(), "empty passphrase");
    ASSERT(back == NULL);
    dk_key_free(k);
}

TEST(key_file_wrong_passphrase)
{
    char path[512], text[4096];
    dk_key *k = saved_key(path, text), *back = (dk_key *)1;
    ASSERT_ERR(dk_key_load(path, "Pass", &back), DK_EPASSPHRASE);
    ASSERT_CONTAINS(dk_errmsg(), "wrong passphrase");
    ASSERT_CONTAINS(dk_errmsg(), path);
    ASSERT(back == NULL);
    dk_key_free(k);
}

TEST(key_file_altered)
{
    char path[512], text[4096];
    dk_key *k = saved_key(path, text);
    char *sealed = strstr(text, "sealed: ") + 8;
    sealed[5] = sealed[5] == 'A' ? 'B' : 'A';
    load_expect("altered.key", text, DK_EPASSPHRASE);
    ASSERT_CONTAINS(dk_errmsg(), "altered");
    dk_key_free(k);
}

TEST(key_file_truncated)
{
    char path[512], text[4096];
    dk_key *k = saved_key(path, text);
    /* only the first three lines */
    char *third = strchr(strchr(strchr(text, '\n') + 1, '\n') + 1, '\n');
    third[1] = 0;
    load_expect("trunc.key", text, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "truncated");
    ASSERT_CONTAINS(dk_errmsg(), "kdf");
    /* cut inside the last line */
    read_text(path, text, sizeof text);
    text[strlen(text) - 10] = 0;
    load_expect("cut.key", text, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "sealed");
    load_expect("empty.key", "", DK_EKEYFILE);
    dk_key_free(k);
}

TEST(key_file_readable_by_others)
{
    char path[512], text[4096];
    dk_key *k = saved_key(path, text), *back = (dk_key *)1;
    write_text(key_path("open.key"), text, 0644);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), DK_EKEYFILE);
    ASSERT(back == NULL);
    ASSERT_CONTAINS(dk_errmsg(), "chmod 600");
    ASSERT_CONTAINS(dk_errmsg(), "0644");
    ASSERT_CONTAINS(dk_errmsg(), path_buf);
    ASSERT_EQ(chmod(path_buf, 0640), 0);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), DK_EKEYFILE);
    ASSERT_EQ(chmod(path_buf, 0600), 0);
    ASSERT_OK(dk_key_load(path_buf, "pass", &back));
    dk_key_free(back);
    dk_key_free(k);
}

TEST(key_file_not_a_key_file)
{
    char path[512], text[4096];
    dk_key *k = saved_key(path, text), *back = (dk_key *)1;
    ASSERT_ERR(dk_key_load(key_path("missing.key"), "pass", &back), DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "missing.key");
    ASSERT(back == NULL);
    ASSERT_ERR(dk_key_load(th_dir, "pass", &back), DK_EKEYFILE); /* a directory */
    ASSERT_CONTAINS(dk_errmsg(), "regular file");
    load_expect("junk.key", "hello\n", DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "not a docket key file");
    dk_key_free(k);
}

/* Replace the first occurrence of `from` in `text` by `to`. */
static void replace(char *text, const char *from, const char *to)
{
    char *at = strstr(text, from), rest[4096];
    ASSERT(at != NULL);
    snprintf(rest, sizeof rest, "%s", at + strlen(from));
    snprintf(at, 4096 - (size_t)(at - text), "%s%s", to, rest);
}

TEST(key_file_strict_fields)
{
    char path[512], text[4096], t[4096];
    dk_key *k = saved_key(path, text), *other;

    snprintf(t, sizeof t, "%s", text);
    replace(t, "docket-key v1", "docket-key v2");
    load_expect("v2.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "docket-key v2");

    snprintf(t, sizeof t, "%s", text);
    replace(t, "\nkdf: argon2id13", "\nkdf: scrypt");
    load_expect("scrypt.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "kdf");

    snprintf(t, sizeof t, "%s", text);
    replace(t, "ops=", "ops=99");
    load_expect("ops.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "ops=99");

    snprintf(t, sizeof t, "%s", text);
    replace(t, "mem=", "mem= ");
    load_expect("mem.key", t, DK_EKEYFILE);

    snprintf(t, sizeof t, "%s", text);
    replace(t, "\nsalt: ", "\nnonce: ");
    load_expect("order.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "line 5");
    ASSERT_CONTAINS(dk_errmsg(), "salt");

    snprintf(t, sizeof t, "%s", text);
    replace(t, "id: alice", "id: al ice");
    load_expect("id.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "al ice");

    snprintf(t, sizeof t, "%s", text);
    replace(t, "\nnonce: ", "\nnonce: AAAA");
    load_expect("nonce.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "nonce");

    snprintf(t, sizeof t, "%s", text);
    strcat(t, "extra: 1\n");
    load_expect("extra.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "after 'sealed'");

    /* a public key that is not the secret key's */
    char pub64[64];
    ASSERT_OK(dk_key_generate("other", &other));
    dk_b64_encode(dk_key_public(other), DK_PUBKEY_BYTES, pub64);
    snprintf(t, sizeof t, "%s", text);
    memcpy(strstr(t, "public: ") + 8, pub64, strlen(pub64));
    load_expect("swapped.key", t, DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "does not match");
    dk_key_free(other);
    dk_key_free(k);
}

TH_MAIN(TH_ENTRY(sign_verify_round_trip) TH_ENTRY(large_bodies_sign_too) TH_ENTRY(domain_separation)
            TH_ENTRY(hash_vectors) TH_ENTRY(random_bytes) TH_ENTRY(base64) TH_ENTRY(hex)
                TH_ENTRY(actor_ids) TH_ENTRY(key_file_round_trip)
                    TH_ENTRY(key_file_never_overwritten) TH_ENTRY(key_file_empty_passphrase)
                        TH_ENTRY(key_file_wrong_passphrase) TH_ENTRY(key_file_altered)
                            TH_ENTRY(key_file_truncated) TH_ENTRY(key_file_readable_by_others)
                                TH_ENTRY(key_file_not_a_key_file) TH_ENTRY(key_file_strict_fields))
