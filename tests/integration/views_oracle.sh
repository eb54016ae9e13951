#!/usr/bin/env bash
# views_oracle.sh - differential test of the views: seeded-random casework through the real
# docket binary, then every view and query recomputed from the log by views_oracle.py.
. "$(dirname "$0")/lib.sh"

D=$DOCKET
ORACLE="$(dirname "$0")/views_oracle.py"
SEED=${VIEWS_ORACLE_SEED:-20191105}
STEPS=${VIEWS_ORACLE_STEPS:-420}

expect_exit 0 "$D" init --admin admin --key-out "$T/admin.key"
for who in cw.ana cw.bo cw.cy sc.dan sc.eva mig.fay; do
  pub=$("$D" keygen --id "$who" --out "$T/$who.key") || fail "keygen $who"
  case $who in
    cw.*) roles=caseworker ;;
    sc.*) roles=caseworker,senior_caseworker ;;
    mig.*) roles=migration ;;
  esac
  expect_exit 0 "$D" actor enroll --key "$T/admin.key" --id "$who" --pubkey "$pub" --roles "$roles"
done
# Hundreds of appends each unsealing a key at Argon2id's interactive cost would take minutes:
# reseal the keys at libsodium's minimum (the parameters are in the file). Slow but right
# without libsodium.
python3 "$ORACLE" reseal "$T"/*.key || echo "note: keys not resealed (no libsodium); slower"

# the casework: a fixed sequence for a given seed; refusals by the rules are expected
python3 "$ORACLE" drive "$D" "$T" "$SEED" "$STEPS" >"$T/drive.json" || fail "the driver stopped"
cat "$T/drive.json"
DRIVE=$(cat "$T/drive.json")
[ "$(jget "$DRIVE" 'd["accepted"]')" -ge 300 ] && ok || fail "fewer than 300 events accepted"
[ "$(jget "$DRIVE" 'd["cases"]')" -ge 20 ] && ok || fail "fewer than 20 cases"
equals "$(jget "$DRIVE" 'd["scripted_refused"]')" 0 "every scripted edge case accepted"
equals "$(jget "$DRIVE" 'd["mid_run_differences"]')" 0 \
  "the live views agree with the oracle on the way"
# each kind of undo the docs describe happened at least once
equals "$(jget "$DRIVE" 'all(d["undone_by_target_type"].get(t, 0) > 0 for t in ("event.reverted",
  "case.rolled_back", "case.opened", "decision.recorded", "status.corrected"))')" True \
  "undos of an undo, a rollback, an opening, a decision and a correction"
[ "$(jget "$DRIVE" 'd["accepted_by_type"]["case.rolled_back"]')" -ge 2 ] && ok ||
  fail "fewer than 2 rollbacks"

expect_exit 0 "$D" project --json
expect_exit 0 "$D" views check
expect_exit 0 "$D" log --json
printf '%s\n' "$OUT" >"$T/log.json"
# every view dumped and every query asked, against the oracle's reading of the log
expect_exit 0 python3 "$ORACLE" check "$D" "$T/log.json"
printf '%s\n' "$OUT"
[ -n "$ERR" ] && printf '%s\n' "$ERR" >&2
finish
