/* test_note.c - unit tests of checkpoints as C2SP signed notes: signing,
 * verifier keys, and every way a note can fail to verify. */
#include "docket/docket.h"
#include "harness.h"

static dk_checkpoint sample(void)
{
    dk_checkpoint cp;
    memset(&cp, 0, sizeof cp);
    strcpy(cp.origin, "docket/0123456789abcdef0123456789abcdef");
    cp.size = 12345;
    for (int i = 0; i < 32; i++)
        cp.root[i] = (uint8_t)i;
    return cp;
}

TEST(sign_and_open)
{
    dk_key *k;
    ASSERT_OK(dk_key_generate("node", &k));
    dk_checkpoint cp = sample(), back;
    char *note;
    ASSERT_OK(dk_note_sign(&cp, k, &note));
    /* the tlog-checkpoint body, a blank line, one signature line */
    ASSERT(
        strncmp(note,
                "docket/0123456789abcdef0123456789abcdef\n12345\n"
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n\xe2\x80\x94 docket/",
                strlen("docket/0123456789abcdef0123456789abcdef\n12345\n"
                       "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n\xe2\x80\x94 docket/")) ==
        0);
    char vkey[256], b64[64];
    ASSERT_OK(dk_note_vkey(cp.origin, dk_key_public(k), vkey, sizeof vkey));
    ASSERT_OK(dk_note_open(note, vkey, &back));
    ASSERT_STR_EQ(back.origin, cp.origin);
    ASSERT_EQ(back.size, cp.size);
    ASSERT_MEM_EQ(back.root, cp.root, 32);
    dk_b64_encode(dk_key_public(k), 32, b64);
    ASSERT_OK(dk_note_open(note, b64, &back)); /* a bare key: named by the origin */
    free(note);
    dk_key_free(k);
}

TEST(vkey_format)
{
    dk_key *k;
    ASSERT_OK(dk_key_generate("node", &k));
    char vkey[256];
    ASSERT_OK(dk_note_vkey("example.com/log", dk_key_public(k), vkey, sizeof vkey));
    /* name + 8 hex digits + base64 of 33 bytes (0x01 || key) */
    ASSERT(strncmp(vkey, "example.com/log+", 16) == 0);
    ASSERT_EQ(strlen(vkey), 16 + 8 + 1 + 44);
    ASSERT_EQ(vkey[24], '+');
    ASSERT(strncmp(vkey + 25, "A", 1) == 0); /* 0x01 then key bits: base64 starts with 'A' */
    ASSERT_ERR(dk_note_vkey("has space", dk_key_public(k), vkey, sizeof vkey), DK_EINVAL);
    dk_key_free(k);
}

TEST(rejections)
{
    dk_key *k, *other;
    ASSERT_OK(dk_key_generate("node", &k));
    ASSERT_OK(dk_key_generate("node", &other));
    dk_checkpoint cp = sample(), back;
    char *note, vkey[256], other_vkey[256];
    ASSERT_OK(dk_note_sign(&cp, k, &note));
    ASSERT_OK(dk_note_vkey(cp.origin, dk_key_public(k), vkey, sizeof vkey));
    ASSERT_OK(dk_note_vkey(cp.origin, dk_key_public(other), other_vkey, sizeof other_vkey));
    /* another key */
    ASSERT_ERR(dk_note_open(note, other_vkey, &back), DK_EPROOF);
    ASSERT_CONTAINS(dk_errmsg(), "no signature");
    /* each byte of the body altered */
    size_t body = strstr(note, "\n\n") - note;
    for (size_t i = 0; i < body; i++) {
        char saved = note[i];
        note[i] = note[i] == '1' ? '2' : '1';
        if (dk_note_open(note, vkey, &back) == 0)
            TH_FAIL("altering byte %zu of the body still verified", i);
        note[i] = saved;
    }
    /* after our valid signature: only well-formed signature lines, ours once (helper-55:
     * trailing text and a repeated line were read past) */
    char longer[2048];
    snprintf(longer, sizeof longer, "%strailing text\n", note);
    ASSERT_ERR(dk_note_open(longer, vkey, &back), DK_EPROOF);
    snprintf(longer, sizeof longer, "%sx", note); /* no final newline */
    ASSERT_ERR(dk_note_open(longer, vkey, &back), DK_EPROOF);
    snprintf(longer, sizeof longer, "%s%s", note, strstr(note, "\n\n") + 2); /* ours twice */
    ASSERT_ERR(dk_note_open(longer, vkey, &back), DK_EPROOF);
    ASSERT_CONTAINS(dk_errmsg(), "two signatures");
    snprintf(longer, sizeof longer, "%s\xe2\x80\x94 other AAAA\n", note); /* too short */
    ASSERT_ERR(dk_note_open(longer, vkey, &back), DK_EPROOF);
    char *other_note;
    ASSERT_OK(dk_note_sign(&cp, other, &other_note)); /* a second signer's line is fine */
    snprintf(longer, sizeof longer, "%s%s", note, strstr(other_note, "\n\n") + 2);
    ASSERT_OK(dk_note_open(longer, vkey, &back));
    free(other_note);
    /* the signature altered */
    char *sig = strrchr(note, ' ') + 10;
    *sig = *sig == 'A' ? 'B' : 'A';
    ASSERT_ERR(dk_note_open(note, vkey, &back), DK_EPROOF);
    /* malformed */
    ASSERT_ERR(dk_note_open("no blank line", vkey, &back), DK_EPROOF);
    ASSERT_ERR(dk_note_open("origin\nx12\nroot\n\n", vkey, &back), DK_EPROOF);
    ASSERT_ERR(
        dk_note_open("o\n18446744073709551616\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n",
                     vkey, &back),
        DK_EPROOF);
    ASSERT_CONTAINS(dk_errmsg(), "64 bits");
    ASSERT_ERR(dk_note_open(note, "not-a-key", &back), DK_EPROOF);
    /* a verifier key whose id does not match */
    char bad[256];
    strcpy(bad, vkey);
    char *id = strchr(bad, '+') + 1;
    id[0] = id[0] == '0' ? '1' : '0';
    ASSERT_ERR(dk_note_open(note, bad, &back), DK_EPROOF);
    free(note);
    dk_key_free(k);
    dk_key_free(other);
}

TH_MAIN(TH_ENTRY(sign_and_open) TH_ENTRY(vkey_format) TH_ENTRY(rejections))
