#!/usr/bin/env bash
# cli_proofs.sh - integration test of Merkle checkpoints and proofs through
# the real binary: checkpoints signed by the node key, inclusion and
# consistency proofs verified offline, tampering and truncation caught.
. "$(dirname "$0")/lib.sh"

D=$DOCKET
expect_exit 0 "$D" init --admin admin --key-out "$T/admin.key"
[ -f "$DOCKET_LEDGER/node.key" ] && ok || fail "init made no node key"
pub=$("$D" keygen --id cw.one --out "$T/cw.key")
expect_exit 0 "$D" actor enroll --key "$T/admin.key" --id cw.one --pubkey "$pub" --roles caseworker
expect_exit 0 "$D" case open C-1 --key "$T/cw.key" --type visa --channel online \
  --received-on 2026-10-01 --ref P-1 --name "A Person" --dob 1990-01-01 --nationality FRA
expect_exit 0 "$D" checkpoint --json
cp "$T/out" "$T/cp3.json"
equals "$(jget "$OUT" 'd["size"]')" 3 "checkpoint at the head"
contains "$(jget "$OUT" 'd["note"]')" "docket/" "origin in the note"
VKEY=$("$D" checkpoint --vkey)
equals "$("$D" checkpoint --vkey --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vkey"])')" "$VKEY" "checkpoint --vkey --json"
contains "$VKEY" "docket/" "verifier key names the origin"

for i in 1 2 3 4 5 6; do
  expect_exit 0 "$D" note C-1 --key "$T/cw.key" --text "note $i"
done
expect_exit 0 "$D" checkpoint --json
cp "$T/out" "$T/cp9.json"
equals "$(jget "$OUT" 'd["size"]')" 9 "second checkpoint"
expect_exit 0 "$D" checkpoint --size 3 --json
equals "$(jget "$OUT" 'd["root"]')" "$(jget "$(cat "$T/cp3.json")" 'd["root"]')" "old checkpoint fetched by size"

# inclusion of record 5 in the tree of 9, verified with public data only
expect_exit 0 "$D" prove inclusion 5 --size 9
cp "$T/out" "$T/incl.json"
equals "$(jget "$OUT" 'd["leaf_index"]')" 4 "leaf index is seq - 1"
"$D" show 5 --raw >"$T/rec5.bin"
expect_exit 0 "$D" proof verify --checkpoint "$T/cp9.json" --pubkey "$VKEY" --inclusion "$T/incl.json" --record "$T/rec5.bin"
contains "$OUT" "ok: inclusion" "inclusion verifies"
# the same from pipes (process substitution): files need not be regular
expect_exit 0 "$D" proof verify --checkpoint <(cat "$T/cp9.json") --pubkey "$VKEY" \
  --inclusion <(cat "$T/incl.json") --record <(cat "$T/rec5.bin")
contains "$OUT" "ok: inclusion" "inclusion verifies from pipes"
# the wrong record, a flipped proof hash, another key: all fail
"$D" show 6 --raw >"$T/rec6.bin"
expect_exit 1 "$D" proof verify --checkpoint "$T/cp9.json" --pubkey "$VKEY" --inclusion "$T/incl.json" --record "$T/rec6.bin"
python3 - "$T/incl.json" <<'PY'
import json, sys, base64
p = sys.argv[1]; d = json.load(open(p))
h = bytearray(base64.b64decode(d["hashes"][0])); h[0] ^= 1
d["hashes"][0] = base64.b64encode(bytes(h)).decode(); json.dump(d, open(p + ".bad", "w"))
PY
expect_exit 3 "$D" proof verify --checkpoint "$T/cp9.json" --pubkey "$VKEY" --inclusion "$T/incl.json.bad" --record "$T/rec5.bin"
otherpub=$("$D" keygen --id other --out "$T/other.key")
expect_exit 1 "$D" proof verify --checkpoint "$T/cp9.json" --pubkey "$otherpub" --inclusion "$T/incl.json" --record "$T/rec5.bin"
contains "$ERR" "signature" "checkpoint by another key refused"
# the note itself (not the JSON) as the checkpoint; with text after it, or a NUL, refused
jget "$(cat "$T/cp9.json")" 'd["note"]' | head -c -1 >"$T/cp9.note"
expect_exit 0 "$D" proof verify --checkpoint "$T/cp9.note" --pubkey "$VKEY" --inclusion "$T/incl.json" --record "$T/rec5.bin"
{ cat "$T/cp9.note"; printf 'appended\n'; } >"$T/cp9.more"
expect_exit 1 "$D" proof verify --checkpoint "$T/cp9.more" --pubkey "$VKEY" --inclusion "$T/incl.json" --record "$T/rec5.bin"
contains "$ERR" "malformed signature line" "text after the signatures refused"
{ cat "$T/cp9.note"; printf '\0ignored\n'; } >"$T/cp9.nul"
expect_exit 1 "$D" proof verify --checkpoint "$T/cp9.nul" --pubkey "$VKEY" --inclusion "$T/incl.json" --record "$T/rec5.bin"
contains "$ERR" "holds a NUL byte" "a NUL in a checkpoint file refused"

# consistency 3 -> 9
expect_exit 0 "$D" prove consistency 3 9
cp "$T/out" "$T/cons.json"
expect_exit 0 "$D" proof verify --checkpoint "$T/cp9.json" --pubkey "$VKEY" --consistency "$T/cons.json" --old "$T/cp3.json"
contains "$OUT" "ok: consistency" "consistency verifies"
expect_exit 1 "$D" proof verify --checkpoint "$T/cp3.json" --pubkey "$VKEY" --consistency "$T/cons.json" --old "$T/cp9.json"

# verify checks the checkpoints; a rewritten record is caught by the chain and the tree
expect_exit 0 "$D" verify --json
equals "$(jget "$OUT" 'd["ok"]')" True "verify with checkpoints"
# against a checkpoint held outside the ledger: a copy cut short is caught even
# though its own (stored) checkpoints say nothing about the later records
expect_exit 0 "$D" verify --checkpoint "$T/cp9.json" --pubkey "$VKEY"
expect_exit 0 "$D" backup "$T/short"
expect_exit 0 "$D" note C-1 --key "$T/cw.key" --text "after the copy"
expect_exit 0 "$D" checkpoint --json
cp "$T/out" "$T/cp10.json"
DOCKET_LEDGER="$T/short" expect_exit 3 "$D" verify --checkpoint "$T/cp10.json" --pubkey "$VKEY"
contains "$ERR" "does not match this ledger, which holds only 9 records" "a shorter ledger than the auditor's checkpoint"
contains "$ERR" "records were removed from this one" "a shorter ledger: what it may mean"
# a checkpoint of a copy that went another way, and one of another ledger: the ledger is
# intact, the checkpoint does not match it; no damage at a seq is claimed
expect_exit 0 "$D" note C-1 --key "$T/cw.key" --text "the copy's own" --ledger "$T/short"
expect_exit 0 "$D" checkpoint --json --ledger "$T/short"
cp "$T/out" "$T/fork10.json"
expect_exit 3 "$D" verify --checkpoint "$T/fork10.json" --pubkey "$VKEY"
contains "$ERR" "does not match this ledger's tree at size 10 (root " "a forked checkpoint: roots named"
contains "$ERR" "either the checkpoint is from another ledger or this ledger was rewritten" \
  "a forked checkpoint: what it may mean"
case "$ERR$OUT" in *damaged*|*"FAILED at seq"*) fail "a checkpoint mismatch called damage: $ERR" ;; *) ok ;; esac
expect_exit 3 "$D" verify --checkpoint "$T/fork10.json" --pubkey "$VKEY" --json
equals "$(jget "$OUT" 'd["ok"]')" False "a forked checkpoint: ok false"
contains "$(jget "$OUT" 'd["reason"]')" "does not match this ledger's tree" "a forked checkpoint: json reason"
expect_exit 0 "$D" init --admin admin --key-out "$T/admin2.key" --ledger "$T/other"
expect_exit 0 "$D" checkpoint --json --ledger "$T/other"
cp "$T/out" "$T/other.json"
expect_exit 3 "$D" verify --checkpoint "$T/other.json" --pubkey "$("$D" checkpoint --vkey --ledger "$T/other")"
contains "$ERR" "names another ledger than this one" "another ledger's checkpoint"
case "$ERR" in *damaged*) fail "another ledger's checkpoint called damage: $ERR" ;; *) ok ;; esac
expect_exit 2 "$D" verify --checkpoint "$T/cp10.json"
contains "$ERR" "go together" "--checkpoint needs --pubkey"
expect_exit 1 "$D" verify --checkpoint "$T/cp10.json" --pubkey "$otherpub"
contains "$ERR" "does not verify" "a checkpoint by another key refused"
# a record file that is not the leaf the proof names
expect_exit 1 "$D" proof verify --checkpoint "$T/cp9.json" --pubkey "$VKEY" --inclusion "$T/incl.json" --record "$T/rec6.bin"
contains "$ERR" "not the record at seq 5" "the record's own seq is checked"
expect_exit 2 "$D" prove inclusion
expect_exit 1 "$D" prove inclusion 99
contains "$ERR" "not in a tree" "proof of a missing record refused"
finish
