#!/usr/bin/env bash
# cli_backup.sh - integration test of hot backup and restore through the real
# binary: a backup taken while another process appends, restored and verified.
. "$(dirname "$0")/lib.sh"

D=$DOCKET
expect_exit 0 "$D" init --admin admin --key-out "$T/admin.key"
pub=$("$D" keygen --id cw.one --out "$T/cw.key")
expect_exit 0 "$D" actor enroll --key "$T/admin.key" --id cw.one --pubkey "$pub" --roles caseworker
expect_exit 0 "$D" case open C-1 --key "$T/cw.key" --type visa --channel online \
  --received-on 2026-10-01 --ref P-1 --name "A Person" --dob 1990-01-01 --nationality FRA
expect_exit 0 "$D" checkpoint

# A writer appends notes in the background while backups are taken.
(for i in $(seq 1 15); do
  "$D" note C-1 --key "$T/cw.key" --text "note $i" >/dev/null 2>>"$T/writer.err" || echo "note $i failed" >>"$T/writer.err"
done) &
writer=$!
n=0
for b in 1 2 3; do
  expect_exit 0 "$D" backup "$T/bk$b" --json
  seqs[$b]=$(jget "$OUT" 'd["seq"]')
  n=$((n + 1))
done
wait "$writer"
[ ! -s "$T/writer.err" ] && ok || fail "the writer failed during backups: $(cat "$T/writer.err")"
final=$("$D" head --json)
equals "$(jget "$final" 'd["seq"]')" 18 "every note landed (3 + 15)"

for b in 1 2 3; do
  # each backup is a consistent prefix: it verifies, and its head is a record of the live log
  DOCKET_LEDGER="$T/bk$b" expect_exit 0 "$D" verify --json
  equals "$(jget "$OUT" 'd["ok"]')" True "backup $b verifies"
  bh=$(DOCKET_LEDGER="$T/bk$b" "$D" head --json)
  s=$(jget "$bh" 'd["seq"]')
  equals "$s" "${seqs[$b]}" "backup $b reports the head it copied"
  live=$("$D" show "$s" --json)
  equals "$(jget "$bh" 'd["hash"]')" "$(jget "$live" 'd["hash"]')" "backup $b head is the live record $s"
  [ "$(stat -c %a "$T/bk$b/node.key")" = 600 ] && ok || fail "backup $b node key mode"
done
[ "${seqs[1]}" -le "${seqs[3]}" ] && ok || fail "backups go forward"

# the live ledger proves the backup's tree is a prefix of its own
bs=${seqs[1]}
expect_exit 0 "$D" checkpoint --json
cp "$T/out" "$T/live.json"
DOCKET_LEDGER="$T/bk1" expect_exit 0 "$D" checkpoint --size 3 --json
cp "$T/out" "$T/old.json"
expect_exit 0 "$D" prove consistency 3 "$(jget "$(cat "$T/live.json")" 'd["size"]')"
cp "$T/out" "$T/cons.json"
VKEY=$("$D" checkpoint --vkey)
expect_exit 0 "$D" proof verify --checkpoint "$T/live.json" --pubkey "$VKEY" --consistency "$T/cons.json" --old "$T/old.json"

# restore: verified first, into a new directory only
expect_exit 0 "$D" restore "$T/bk3" "$T/restored" --json
equals "$(jget "$OUT" 'd["verified_records"] > 0')" True "restore --json reports what it checked"
DOCKET_LEDGER="$T/restored" expect_exit 0 "$D" verify
equals "$(DOCKET_LEDGER="$T/restored" "$D" head --json)" "$(DOCKET_LEDGER="$T/bk3" "$D" head --json)" "restored head = backup head"
# the restored ledger takes appends, signed checkpoints included
DOCKET_LEDGER="$T/restored" expect_exit 0 "$D" note C-1 --key "$T/cw.key" --text "after restore"
DOCKET_LEDGER="$T/restored" expect_exit 0 "$D" checkpoint
expect_exit 1 "$D" restore "$T/bk3" "$T/restored"
contains "$ERR" "already holds a ledger" "restore over a ledger refused"
expect_exit 1 "$D" backup "$T/bk1"
contains "$ERR" "already holds a ledger" "backup over a backup refused"
equals "$(stat -c %a "$T/bk1/data.mdb")" 600 "a backup's data file is 0600 whatever the umask"
# a path is bytes: a directory name that is not UTF-8 works
expect_exit 0 "$D" backup "$T/caf"$'\xe9' --json
equals "$(jget "$OUT" 'd["dest"].endswith("caf\ufffd")')" True "a non-UTF-8 path is shown, with U+FFFD"
DOCKET_LEDGER= expect_exit 0 "$D" head --ledger "$T/caf"$'\xe9'
expect_exit 0 "$D" backup "$T/emptydir-ok" && mkdir "$T/pre" && expect_exit 0 "$D" backup "$T/pre"
mkdir "$T/half" && touch "$T/half/node.key"
expect_exit 1 "$D" backup "$T/half"
[ ! -e "$T/half/data.mdb" ] && ok || fail "a refused backup left data.mdb behind"
# init never takes over another LMDB store (the views') or a directory with a node key
expect_exit 1 "$D" init --ledger "$T/bk1" --admin a --key-out "$T/a9.key"
contains "$ERR" "already holds an LMDB store" "init over a store refused"
mkdir "$T/nk" && touch "$T/nk/node.key"
expect_exit 1 "$D" init --ledger "$T/nk" --admin a --key-out "$T/a8.key"
contains "$ERR" "node.key" "init over a node key refused"
[ ! -e "$T/nk/data.mdb" ] && [ ! -e "$T/a8.key" ] && ok || fail "a refused init left files behind"
# a name init refuses leaves nothing behind, so init with a good one then works
expect_exit 1 "$D" init --ledger "$T/ni" --admin a --key-out "$T/a7.key" --name $'bad\rname'
contains "$ERR" "control character" "a ledger name with a control character refused"
[ ! -e "$T/ni" ] && [ ! -e "$T/a7.key" ] && ok || fail "a refused init left files behind"
mkdir "$T/ni2"
expect_exit 1 "$D" init --ledger "$T/ni2" --admin a --key-out "$T/a6.key" --name $'bad\x1bname'
[ -d "$T/ni2" ] && [ -z "$(ls -A "$T/ni2")" ] && ok || fail "init emptied but kept a directory it did not make"
expect_exit 0 "$D" init --ledger "$T/ni2" --admin a --key-out "$T/a6.key" --name good

# a backup or restore killed part way leaves only its stage (never a data.mdb that is not
# whole); the same command run again clears it and completes (test_crash kills them)
mkdir -p "$T/stopped/backup.partial" && echo "half a copy" >"$T/stopped/backup.partial/data.mdb"
expect_exit 1 "$D" restore "$T/stopped" "$T/from-stopped"
contains "$ERR" "only what a backup stopped part way left" "restore from a stopped backup says what it is"
[ ! -e "$T/from-stopped" ] && ok || fail "a refused restore made its directory"
expect_exit 0 "$D" backup "$T/stopped"
[ ! -e "$T/stopped/backup.partial" ] && [ -s "$T/stopped/node.key" ] && ok || fail "a stopped backup's stage was not cleared: $(ls -A "$T/stopped")"
DOCKET_LEDGER="$T/stopped" expect_exit 0 "$D" verify
mkdir -p "$T/rstopped/restore.partial" && echo "half a copy" >"$T/rstopped/restore.partial/data.mdb"
expect_exit 0 "$D" restore "$T/stopped" "$T/rstopped"
[ "$(ls -A "$T/rstopped")" = "$(printf 'data.mdb\nnode.key')" ] && ok || fail "restore left $(ls -A "$T/rstopped")"
mkdir -p "$T/foreign/backup.partial" && touch "$T/foreign/backup.partial/mine"
expect_exit 1 "$D" backup "$T/foreign"
contains "$ERR" "did not put there" "a stage holding someone's file is refused"
[ -e "$T/foreign/backup.partial/mine" ] && ok || fail "a refused backup removed someone's file"

# a tampered backup is refused, and nothing is installed
expect_exit 0 "$D" backup "$T/bk4"
[ ! -e "$T/bk4/lock.mdb" ] && ok || fail "checking the backup left a lock.mdb in it"
cp -r "$T/bk4" "$T/bad"
python3 - "$T/bad/data.mdb" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
i = b.find(b"note 3")
assert i > 0, "record text not found"
b[i + 5] = ord("8")
open(p, "wb").write(bytes(b))
PY
expect_exit 3 "$D" restore "$T/bad" "$T/from-bad"
contains "$ERR" "damaged" "tampered backup named damaged"
[ ! -e "$T/from-bad/data.mdb" ] && ok || fail "a damaged backup was installed"
expect_exit 1 "$D" restore "$T/nonexistent" "$T/x"

# a ledger whose stored head is damaged (its seq raised past the log's end) is still
# backed up, faithfully, for its repair; the command says so and exits 3
cp -r "$DOCKET_LEDGER" "$T/dmg"
raise_head "$T/dmg/data.mdb"
expect_exit 3 "$D" backup "$T/bk-dmg" --ledger "$T/dmg"
contains "$ERR" "backed up to $T/bk-dmg, but the ledger is damaged" "backup of a damaged head says both"
contains "$ERR" "but its log ends at record" "and names the damage"
[ -s "$T/bk-dmg/data.mdb" ] && ok || fail "the damaged ledger's backup was not kept"
finish
