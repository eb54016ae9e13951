#!/usr/bin/env bash
# cli_ledger.sh - integration test of the real docket binary: init, keys,
# actors, append (idempotency, conflicts, bad input), log/show/head, verify
# and tamper detection, exit codes.
. "$(dirname "$0")/lib.sh"

# init and keys
expect_exit 0 "$DOCKET" init --admin admin --key-out "$T/admin.key" --name itest --json
equals "$(jget "$OUT" 'd["seq"]')" 1 "genesis is seq 1"
equals "$(stat -c %a "$T/admin.key")" 600 "key file mode"
expect_exit 1 "$DOCKET" init --admin admin --key-out "$T/admin2.key"
contains "$ERR" "already holds an LMDB store" "second init refused"
[ ! -e "$T/admin2.key" ] && ok || fail "refused init left a key file behind"

expect_exit 0 "$DOCKET" keygen --id cw.one --out "$T/cw1.key"
PUB1=$OUT
expect_exit 0 "$DOCKET" keygen --id aud.one --out "$T/aud.key"
PUBA=$OUT
expect_exit 0 "$DOCKET" actor enroll --key "$T/admin.key" --id cw.one --pubkey "$PUB1" --roles caseworker --json
equals "$(jget "$OUT" 'd["seq"]')" 2 "enrol is seq 2"
expect_exit 0 "$DOCKET" actor enroll --key "$T/admin.key" --id aud.one --pubkey "$PUBA" --roles auditor
expect_exit 2 "$DOCKET" actor enroll --key "$T/admin.key" --id x --pubkey "$PUB1" --roles wizard
contains "$ERR" "unknown role 'wizard'" "bad role named"
# an option the action does not take is refused, not dropped
expect_exit 2 "$DOCKET" actor revoke --key "$T/admin.key" --id aud.one --roles caseworker
contains "$ERR" "actor revoke takes no --roles" "revoke --roles refused"
expect_exit 2 "$DOCKET" actor rotate --key "$T/admin.key" --id aud.one --pubkey "$PUB1" --roles auditor
expect_exit 1 "$DOCKET" actor enroll --key "$T/cw1.key" --id cw.two --pubkey "$PUB1" --roles caseworker
contains "$ERR" "admin" "non-admin cannot enrol"

# append, idempotency, expected version
expect_exit 0 "$DOCKET" append --key "$T/cw1.key" --type case.opened --case HO-1 \
  --data '{"case_type":"visa","channel":"online","received_on":"2026-10-01","applicant":{"name":"A. Person","ref":"P-1","date_of_birth":"1990-01-31","nationality":"FRA"}}' --expect 0 \
  --cmd 00112233445566778899aabbccddeeff --json
equals "$(jget "$OUT" 'd["seq"]')" 4 "first case event"
equals "$(jget "$OUT" 'd["duplicate"]')" False "not a duplicate"
expect_exit 0 "$DOCKET" append --key "$T/cw1.key" --type case.opened --case HO-1 \
  --data '{"case_type":"visa","channel":"online","received_on":"2026-10-01","applicant":{"name":"A. Person","ref":"P-1","date_of_birth":"1990-01-31","nationality":"FRA"}}' --expect 0 \
  --cmd 00112233445566778899aabbccddeeff --json
equals "$(jget "$OUT" 'd["duplicate"]')" True "retry is a duplicate"
equals "$(jget "$OUT" 'd["seq"]')" 4 "retry answers the original seq"
expect_exit 1 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{"text":"x"}' --expect 7
contains "$ERR" "version 1" "conflict names the current version"
contains "$ERR" "expected 7" "conflict names the expected version"
expect_exit 1 "$DOCKET" append --key "$T/aud.key" --type note.added --case HO-1 --data '{"text":"x"}'
contains "$ERR" "aud.one" "auditor refused"

# bad input: clear error, non-zero exit, ledger unchanged
HEAD_BEFORE=$("$DOCKET" head --json)
expect_exit 2 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{"a":'
contains "$ERR" "not valid JSON" "bad JSON"
expect_exit 2 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{"a":1.5}'
contains "$ERR" "data.a" "float named by path"
expect_exit 1 "$DOCKET" append --key "$T/cw1.key" --type Bad.Type --case HO-1 --data '{}'
contains "$ERR" "event type" "bad type"
expect_exit 2 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{}' --expect x
expect_exit 2 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{}' --cmd zz
expect_exit 2 "$DOCKET" append --key "$T/no-such.key" --type note.added --case HO-1 --data '{}' --cmd zz
contains "$ERR" "--cmd" "a bad --cmd is named before the key is opened"
expect_exit 2 "$DOCKET" append --type note.added --case HO-1 --data '{}'
contains "$ERR" "--key" "missing key named"
expect_exit 2 "$DOCKET" append --bogus
contains "$ERR" "unknown option '--bogus'" "unknown option"
DOCKET_PASSPHRASE=wrong expect_exit 1 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{}'
contains "$ERR" "wrong passphrase" "wrong passphrase"
head -n 3 "$T/cw1.key" >"$T/trunc.key"; chmod 600 "$T/trunc.key"
expect_exit 1 "$DOCKET" append --key "$T/trunc.key" --type note.added --case HO-1 --data '{}'
contains "$ERR" "trunc.key" "truncated key named"
cp "$T/cw1.key" "$T/open.key"; chmod 644 "$T/open.key"
expect_exit 1 "$DOCKET" append --key "$T/open.key" --type note.added --case HO-1 --data '{}'
contains "$ERR" "chmod" "readable key refused"
cp "$T/cw1.key" "$T/x.key"; chmod 700 "$T/x.key"
expect_exit 1 "$DOCKET" append --key "$T/x.key" --type note.added --case HO-1 --data '{}'
contains "$ERR" "0600 or stricter" "key with mode 0700 refused"
mkfifo "$T/fifo.key"; chmod 600 "$T/fifo.key"
expect_exit 1 timeout 10 "$DOCKET" append --key "$T/fifo.key" --type note.added --case HO-1 --data '{}'
contains "$ERR" "not a regular file" "a FIFO key file is refused, not waited on"
mkdir -m 700 "$T/dir.key"
expect_exit 1 "$DOCKET" append --key "$T/dir.key" --type note.added --case HO-1 --data '{}'
contains "$ERR" "not a regular file" "a directory as key file is refused"
# argv: too many arguments, values that are not UTF-8, an option twice
expect_exit 2 "$DOCKET" head $(seq 1 20)
contains "$ERR" "too many arguments" "extra arguments refused"
expect_exit 2 "$DOCKET" append --key "$T/cw1.key" --type note.added --case $'HO-\xff' --data '{}'
contains "$ERR" "--case is not valid UTF-8" "non-UTF-8 value refused"
expect_exit 2 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{}' --expect 1 --expect 9
contains "$ERR" "--expect is given twice" "repeated option refused"
expect_exit 2 "$DOCKET" actor enroll --key "$T/admin.key" --id x --pubkey "$PUB1" --roles caseworker,,auditor
contains "$ERR" "empty element" "empty list element refused"
expect_exit 2 "$DOCKET" actor enroll --key "$T/admin.key" --id x --pubkey "$PUB1" --roles auditor,auditor
contains "$ERR" "lists 'auditor' twice" "repeated list element refused"
expect_exit 2 "$DOCKET" actor enroll --key "$T/admin.key" --id x --pubkey "$PUB1" --roles ''
contains "$ERR" "at least one role" "an empty role list is named"
expect_exit 2 "$DOCKET" append --key "$T/cw1.key" --type note.added --case HO-1 --data '{"text":"x"}' --eff 9999-12-31T23:59:59-23:59
contains "$ERR" "--eff" "a time past year 9999 in UTC refused"
equals "$("$DOCKET" head --json)" "$HEAD_BEFORE" "bad input left the ledger as it was"

# reads
expect_exit 0 "$DOCKET" log --json
equals "$(jget "$OUT" 'len(d)')" 4 "log has 4 records"
equals "$(jget "$OUT" 'd[3]["data"]["applicant"]["name"]')" "A. Person" "data round trip"
equals "$(jget "$OUT" 'd[3]["prev"] == d[2]["hash"]')" True "chain links"
expect_exit 0 "$DOCKET" log --case HO-1 --json
equals "$(jget "$OUT" 'len(d)')" 1 "log by case"
expect_exit 0 "$DOCKET" log --case HO-1 --from 99 --json
equals "$(jget "$OUT" 'len(d)')" 0 "a case with no records from --from on lists none"
expect_exit 1 "$DOCKET" log --case HO-9 --json
contains "$ERR" "case 'HO-9' has no events (DK_ENOTFOUND)" "a case with no records is refused, as history does"
equals "$OUT" "" "and nothing is listed"
# `--` ends the options: what follows is an argument even if it looks like one
expect_exit 2 "$DOCKET" show -- --json
contains "$ERR" "SEQ wants a whole number, not '--json'" "after --, '--json' is an argument"
expect_exit 2 "$DOCKET" show -- 4 5
contains "$ERR" "show needs one SEQ" "after --, extra arguments are still counted"
expect_exit 0 "$DOCKET" show --json -- 4
equals "$(jget "$OUT" 'd["type"]')" case.opened "show after --"
expect_exit 0 "$DOCKET" show 4 --json
equals "$(jget "$OUT" 'd["type"]')" case.opened "show"
HASH4=$(jget "$OUT" 'd["hash"]')
"$DOCKET" show 4 --raw >"$T/rec4.bin" && ok || fail "show --raw"
equals "$(python3 -c 'import hashlib,sys; print(hashlib.sha256(b"\0"+open(sys.argv[1],"rb").read()).hexdigest())' "$T/rec4.bin")" \
  "$HASH4" "leaf hash of the raw record bytes"
expect_exit 2 "$DOCKET" show 4 --json --raw
contains "$ERR" "give one" "show --json --raw refused"
expect_exit 1 "$DOCKET" show 99
contains "$ERR" "no record with seq 99" "missing record"
expect_exit 0 "$DOCKET" head --json
equals "$(jget "$OUT" 'd["seq"]')" 4 "head seq"
expect_exit 0 "$DOCKET" verify --json
equals "$(jget "$OUT" 'd["ok"]')" True "verify ok"
equals "$(jget "$OUT" '(d["checked"], d["signatures"], d["cases"], d["tree_checked"])')" "(4, 4, 1, True)" "verify counts, the tree checked"
# the tree's format mark gone (an older docket's tree, or damage): verify says it did not
# check the tree, rather than a bare "ok"
cp -a "$DOCKET_LEDGER" "$T/untree"
python3 - "$T/untree/data.mdb" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
assert b.find(b'tree_format') >= 0, 'tree_format not found'
b = b.replace(b'tree_format', b'tree_formaX')  # every copy: the key is no longer found
open(p, 'wb').write(bytes(b))
PY
expect_exit 0 "$DOCKET" verify --ledger "$T/untree" --json
equals "$(jget "$OUT" 'd["tree_checked"]')" False "verify reports the tree unchecked"
contains "$ERR" "the stored Merkle tree was not checked" "and says so on stderr"
expect_exit 0 "$DOCKET" verify --jobs 1 --from 3 --json
equals "$(jget "$OUT" 'd["checked"]')" 2 "verify --from checks the rest"
expect_exit 0 "$DOCKET" verify --no-rules --json
equals "$(jget "$OUT" 'd["cases"]')" 0 "--no-rules skips the rules pass"
expect_exit 2 "$DOCKET" verify --jobs 0
contains "$ERR" "--jobs" "bad --jobs named"
expect_exit 2 "$DOCKET" verify --from x
expect_exit 1 "$DOCKET" verify --from 99
contains "$ERR" "99" "verify from beyond the head named"
expect_exit 2 "$DOCKET" head --ledger ""
DOCKET_LEDGER= expect_exit 2 "$DOCKET" head
contains "$ERR" "DOCKET_LEDGER" "missing ledger named"
expect_exit 1 "$DOCKET" head --ledger "$T/nowhere"

# tamper: flip one byte of a stored record in the data file
python3 - "$DOCKET_LEDGER/data.mdb" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.find(b'\xa9A. Person')  # msgpack fixstr: the record, not the case-state row
assert i > 0, 'record text not found in data.mdb'
b[i + 1] ^= 0x20
open(p, 'wb').write(bytes(b))
PY
expect_exit 3 "$DOCKET" verify --json
equals "$(jget "$OUT" 'd["ok"]')" False "tampered ledger fails verify"
equals "$(jget "$OUT" 'd["seq"]')" 4 "verify names the tampered seq"

# damage that leaves the record undecodable (the string's header made an integer): every
# reader names it and exits 3; none lists the case's history without it
python3 - "$DOCKET_LEDGER/data.mdb" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.find(b'\xa9a. Person')  # as flipped above
assert i > 0, 'record text not found in data.mdb'
b[i] = 0x09
open(p, 'wb').write(bytes(b))
PY
expect_exit 3 "$DOCKET" log
contains "$OUT" "4  (damaged record" "log marks the damaged record"
contains "$ERR" "record 4 does not decode" "log names it"
expect_exit 3 "$DOCKET" log --json
equals "$OUT" "" "no half JSON document"
expect_exit 3 "$DOCKET" show 4 --json
contains "$ERR" "record 4 does not decode" "show names it"
expect_exit 3 "$DOCKET" history HO-1
equals "$OUT" "" "no history with an event left out"
contains "$ERR" "seq 4" "history names it"

# a stored head past the log's end (raise_head: its seq raised by 1000): what reads the
# head names both ends and exits 3, and verify still opens the ledger to name it
raise_head "$DOCKET_LEDGER/data.mdb"
expect_exit 3 "$DOCKET" head
contains "$ERR" "but its log ends at record" "head names a head past the log's end"
expect_exit 3 "$DOCKET" views status
contains "$ERR" "but its log ends at record" "views status names it"
expect_exit 3 "$DOCKET" verify
contains "$ERR" "ledger damaged at seq" "verify still opens the ledger and reports"

# init interrupted (Ctrl-C) at either passphrase prompt leaves nothing behind: every
# passphrase is asked before anything is written (helper-70)
for at in node admin; do
  equals "$(timeout 60 python3 "$(dirname "$0")/pty_init.py" "$DOCKET" "$T/int-$at" "$T/int-$at.key" $at)" \
    "clean" "init interrupted at the $at key's prompt"
done

finish
