/* test_crypto.c - unit tests of keys, domain-separated signatures, hashes,
 * text encodings and sealed key files (passphrase, mode, truncation). */
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>

#include "crypto_int.h"
#include "docket/docket.h"
#include "harness.h"

static const uint8_t body[] = "an event body";

TEST(sign_verify_round_trip)
{
    dk_key *k, *other;
    uint8_t sig[64];
    ASSERT_OK(dk_key_generate("alice", &k));
    ASSERT_OK(dk_key_generate("bob", &other));
    ASSERT_STR_EQ(dk_key_id(k), "alice");
    ASSERT_OK(dk_sign(k, body, sizeof body, sig));
    ASSERT_OK(dk_verify(dk_key_public(k), body, sizeof body, sig));
    ASSERT_ERR(dk_verify(dk_key_public(other), body, sizeof body, sig), DK_EBADSIG);
    uint8_t copy[sizeof body];
    memcpy(copy, body, sizeof body);
    copy[3] ^= 1;
    ASSERT_ERR(dk_verify(dk_key_public(k), copy, sizeof copy, sig), DK_EBADSIG);
    sig[10] ^= 0x80;
    ASSERT_ERR(dk_verify(dk_key_public(k), body, sizeof body, sig), DK_EBADSIG);
    dk_key_free(k);
    dk_key_free(other);
    dk_key_free(NULL);
}

TEST(large_bodies_sign_too)
{
    dk_key *k;
    size_t n = 100000;
    uint8_t *big = malloc(n), sig[64];
    memset(big, 7, n);
    ASSERT_OK(dk_key_generate("alice", &k));
    ASSERT_OK(dk_sign(k, big, n, sig));
    ASSERT_OK(dk_verify(dk_key_public(k), big, n, sig));
    big[n - 1] = 8;
    ASSERT_ERR(dk_verify(dk_key_public(k), big, n, sig), DK_EBADSIG);
    free(big);
    dk_key_free(k);
}

TEST(domain_separation)
{
    /* A plain Ed25519 signature over the body alone must not pass. */
    dk_key *k;
    uint8_t sig[64];
    ASSERT_OK(dk_key_generate("alice", &k));
    crypto_sign_detached(sig, NULL, body, sizeof body, dk__key_secret(k));
    ASSERT_ERR(dk_verify(dk_key_public(k), body, sizeof body, sig), DK_EBADSIG);
    /* ... and ours is exactly Ed25519 over "docket/event/v1\0" || body. */
    uint8_t msg[16 + sizeof body];
    memcpy(msg, "docket/event/v1", 16);
    memcpy(msg + 16, body, sizeof body);
    ASSERT_OK(dk_sign(k, body, sizeof body, sig));
    ASSERT_EQ(crypto_sign_verify_detached(sig, msg, sizeof msg, dk_key_public(k)), 0);
    dk_key_free(k);
}

TEST(hash_vectors)
{
    uint8_t h[32];
    char hex[65];
    dk_sha256("abc", 3, h);
    dk_hex_encode(h, 32, hex);
    ASSERT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 6962: the hash of an empty leaf */
    dk_leaf_hash("", 0, h);
    dk_hex_encode(h, 32, hex);
    ASSERT_STR_EQ(hex, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    /* node hash = SHA-256(0x01 || l || r) */
    uint8_t l[32], r[32], buf[65], want[32];
    memset(l, 1, 32);
    memset(r, 2, 32);
    buf[0] = 1;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    dk_sha256(buf, sizeof buf, want);
    dk_node_hash(l, r, h);
    ASSERT_MEM_EQ(h, want, 32);
}

TEST(text_encodings)
{
    const uint8_t in[] = {0x00, 0xff, 0x10, 0x80, 0x7f};
    char b64[16], hex[16];
    uint8_t out[8];
    size_t n;
    dk_b64_encode(in, sizeof in, b64);
    ASSERT_STR_EQ(b64, "AP8QgH8=");
    ASSERT_OK(dk_b64_decode(b64, out, sizeof out, &n));
    ASSERT_EQ(n, sizeof in);
    ASSERT_MEM_EQ(out, in, sizeof in);
    dk_hex_encode(in, sizeof in, hex);
    ASSERT_STR_EQ(hex, "00ff10807f");
    ASSERT_OK(dk_hex_decode(hex, out, sizeof out, &n));
    ASSERT_EQ(n, sizeof in);
    ASSERT_MEM_EQ(out, in, sizeof in);
    ASSERT_ERR(dk_b64_decode("AP8QgH8", out, sizeof out, &n), DK_EDECODE); /* no padding */
    ASSERT_ERR(dk_b64_decode("AP8QgH8=x", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_b64_decode("!!!!", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_b64_decode("AAAAAAAAAAAAAAAA", out, 4, &n), DK_EDECODE); /* over cap */
    ASSERT_ERR(dk_hex_decode("abc", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_hex_decode("zz", out, sizeof out, &n), DK_EDECODE);
    ASSERT_ERR(dk_hex_decode("00112233445566778899", out, 4, &n), DK_EDECODE);
}

TEST(actor_ids)
{
    dk_key *k;
    ASSERT_ERR(dk_key_generate("", &k), DK_EINVAL);
    ASSERT(k == NULL);
    ASSERT_ERR(dk_key_generate("has space", &k), DK_EINVAL);
    ASSERT_CONTAINS(dk_errmsg(), "has space");
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = 0;
    ASSERT_ERR(dk_key_generate(long_id, &k), DK_EINVAL);
    long_id[64] = 0;
    ASSERT_OK(dk_key_generate(long_id, &k));
    dk_key_free(k);
    ASSERT_OK(dk_key_generate("cw.o-k_1@ho", &k));
    dk_key_free(k);
}

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
    close(fd);
    chmod(path, mode);
}

static char *read_text(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY);
    ASSERT(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    ASSERT(n > 0);
    buf[n] = 0;
    close(fd);
    return buf;
}

TEST(key_file_round_trip)
{
    th_tmpdir();
    dk_key *k, *back;
    uint8_t sig[64];
    ASSERT_OK(dk_key_generate("alice", &k));
    const char *p = key_path("alice.key");
    ASSERT_OK(dk_key_save(k, p, "correct horse"));
    struct stat st;
    ASSERT_EQ(stat(p, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_CONTAINS(read_text(p), "docket-key v1\nid: alice\n");
    ASSERT_OK(dk_key_load(p, "correct horse", &back));
    ASSERT_STR_EQ(dk_key_id(back), "alice");
    ASSERT_MEM_EQ(dk_key_public(back), dk_key_public(k), DK_PUBKEY_BYTES);
    ASSERT_OK(dk_sign(back, body, sizeof body, sig));
    ASSERT_OK(dk_verify(dk_key_public(k), body, sizeof body, sig));
    /* never overwritten */
    ASSERT_ERR(dk_key_save(k, p, "other"), DK_EEXIST);
    ASSERT_ERR(dk_key_save(k, key_path("x.key"), ""), DK_EINVAL);
    dk_key_free(back);
    dk_key_free(k);
}

TEST(key_file_rejections)
{
    th_tmpdir();
    dk_key *k, *back = NULL;
    ASSERT_OK(dk_key_generate("alice", &k));
    char good_path[512];
    snprintf(good_path, sizeof good_path, "%s", key_path("alice.key"));
    ASSERT_OK(dk_key_save(k, good_path, "pass"));
    char good[4096];
    snprintf(good, sizeof good, "%s", read_text(good_path));

    ASSERT_ERR(dk_key_load(good_path, "wrong", &back), DK_EPASSPHRASE);
    ASSERT_CONTAINS(dk_errmsg(), "alice.key");
    ASSERT(back == NULL);
    ASSERT_ERR(dk_key_load(key_path("missing.key"), "pass", &back), DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "missing.key");

    /* truncated: only the first three lines */
    char trunc[4096];
    snprintf(trunc, sizeof trunc, "%s", good);
    char *third = strchr(strchr(strchr(trunc, '\n') + 1, '\n') + 1, '\n');
    third[1] = 0;
    write_text(key_path("trunc.key"), trunc, 0600);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "trunc.key");
    ASSERT_CONTAINS(dk_errmsg(), "truncated");

    /* readable by others */
    write_text(key_path("open.key"), good, 0644);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "chmod 600");

    /* one altered character of the sealed key */
    char altered[4096];
    snprintf(altered, sizeof altered, "%s", good);
    char *sealed = strstr(altered, "sealed: ") + 8;
    sealed[5] = sealed[5] == 'A' ? 'B' : 'A';
    write_text(key_path("altered.key"), altered, 0600);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), DK_EPASSPHRASE);

    /* a public key that is not the secret key's */
    dk_key *other;
    ASSERT_OK(dk_key_generate("other", &other));
    char pub64[64], swapped[4096];
    dk_b64_encode(dk_key_public(other), 32, pub64);
    snprintf(swapped, sizeof swapped, "%s", good);
    memcpy(strstr(swapped, "public: ") + 8, pub64, strlen(pub64));
    write_text(key_path("swapped.key"), swapped, 0600);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "does not match");

    /* not a key file at all */
    write_text(key_path("junk.key"), "hello\n", 0600);
    ASSERT_ERR(dk_key_load(path_buf, "pass", &back), DK_EKEYFILE);
    ASSERT_CONTAINS(dk_errmsg(), "not a docket key file");
    ASSERT_ERR(dk_key_load(good_path, "", &back), DK_EINVAL);
    dk_key_free(other);
    dk_key_free(k);
}

TH_MAIN(TH_ENTRY(sign_verify_round_trip) TH_ENTRY(large_bodies_sign_too) TH_ENTRY(domain_separation)
            TH_ENTRY(hash_vectors) TH_ENTRY(text_encodings) TH_ENTRY(actor_ids)
                TH_ENTRY(key_file_round_trip) TH_ENTRY(key_file_rejections))
