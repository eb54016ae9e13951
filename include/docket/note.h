/* note.h - checkpoints as C2SP signed notes (tlog-checkpoint body, Ed25519
 * note signature), so transparency-log tooling can read and verify them. */
#ifndef DOCKET_NOTE_H
#define DOCKET_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "docket/crypto.h"

#define DK_ORIGIN_MAX 128

typedef struct dk_checkpoint {
    char origin[DK_ORIGIN_MAX + 1];
    uint64_t size;
    uint8_t root[32];
} dk_checkpoint;

/* Sign a checkpoint with `key` under the key name `origin`:
 *   "<origin>\n<size>\n<base64 root>\n\n\u2014 <origin> <base64(key id || sig)>\n"
 * *note is malloc'd text; the caller frees it. */
int dk_note_sign(const dk_checkpoint *cp, const dk_key *key, char **note);

/* The C2SP verifier key "<name>+<hex key id>+<base64(0x01 || pubkey)>". */
int dk_note_vkey(const char *name, const uint8_t pk[DK_PUBKEY_BYTES], char *out, size_t cap);

/* Verify `note` against `vkey` (a verifier key as above, or a bare base64
 * Ed25519 public key, whose name is then the note's origin) and parse its
 * checkpoint. DK_EPROOF (with dk_errmsg()) if malformed, not signed by that
 * key, or the signature does not verify. */
int dk_note_open(const char *note, const char *vkey, dk_checkpoint *cp);

#endif
