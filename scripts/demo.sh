#!/usr/bin/env bash
# Fills a demo ledger with realistic sample casework through the docket CLI:
# an administrator, two caseworkers, a few cases with decisions. Re-running it
# appends nothing new: each event's command id is a hash of the event (idempotency).
set -euo pipefail
docket=$1 ledger=$2 keys=$3
export DOCKET_LEDGER=$ledger
# Demo keys only: real keys take a passphrase from the terminal or a secret store.
export DOCKET_PASSPHRASE=${DOCKET_PASSPHRASE:-demo-passphrase}
mkdir -p "$keys"
chmod 700 "$keys"

if [ ! -f "$ledger/data.mdb" ]; then
  rm -f "$keys"/*.key
  "$docket" init --admin admin.rao --key-out "$keys/admin.key" --name "demo casework"
  for who in cw.okafor cw.lindqvist sc.mendes; do
    pub=$("$docket" keygen --id "$who" --out "$keys/$who.key")
    case $who in
      sc.*) roles=senior_caseworker,caseworker ;;
      *) roles=caseworker ;;
    esac
    "$docket" actor enroll --key "$keys/admin.key" --id "$who" --pubkey "$pub" --roles "$roles"
  done
else
  echo "demo ledger already exists in $ledger: re-appending the sample (idempotent)"
fi

ev() { # ev KEY TYPE CASE JSON: append with a command id derived from the event itself
  local cmd
  cmd=$(printf '%s\n' "$@" | sha256sum | cut -c1-32)
  "$docket" append --key "$keys/$1.key" --type "$2" --case "$3" --data "$4" --cmd "$cmd"
}

ev cw.okafor case.opened HO-2026-000101 '{"case_type":"euss","channel":"online","received_on":"2026-10-01","applicant":{"ref":"P-5521","name":"Ana Popescu","date_of_birth":"1991-04-12","nationality":"ROU"}}'
ev sc.mendes case.assigned HO-2026-000101 '{"caseworker":"cw.okafor"}'
ev cw.okafor case.status_changed HO-2026-000101 '{"to":"validated","reason":"identity and residence evidence checked"}'
ev cw.okafor case.status_changed HO-2026-000101 '{"to":"under_consideration","reason":"ready for decision"}'
ev cw.okafor decision.recorded HO-2026-000101 '{"outcome":"granted","product_type":"EUS","immigration_status":"ILR","no_recourse_to_public_funds":false,"conditions":["permission_to_work"],"valid_from":"2026-11-02","rationale":"five years continuous residence evidenced by HMRC records","rules_version":"Appendix EU 2026-09","evidence":["9f2c4b6e0d7a41c3b8e5f1a2d3c4b5a69788a1b2c3d4e5f60718293a4b5c6d7e"]}'

ev cw.lindqvist case.opened HO-2026-000102 '{"case_type":"asylum","channel":"assisted_digital","received_on":"2026-10-07","applicant":{"ref":"P-7710","name":"Samir Haddad","date_of_birth":"1988-09-30","nationality":"SYR"}}'
ev sc.mendes case.assigned HO-2026-000102 '{"caseworker":"cw.lindqvist"}'
ev cw.lindqvist case.status_changed HO-2026-000102 '{"to":"validated","reason":"identity documents verified"}'
ev cw.lindqvist interview.booked HO-2026-000102 '{"slot_start":"2026-11-03T10:00:00Z","slot_end":"2026-11-03T12:00:00Z","location":"Croydon IC room 4","interviewer":"cw.lindqvist"}'
ev cw.lindqvist interview.no_show HO-2026-000102 '{}'
ev cw.lindqvist interview.booked HO-2026-000102 '{"slot_start":"2026-11-17T10:00:00Z","slot_end":"2026-11-17T12:00:00Z","location":"Croydon IC room 2","interviewer":"cw.lindqvist"}'
ev cw.lindqvist interview.attended HO-2026-000102 '{}'

ev cw.okafor case.opened HO-2026-000103 '{"case_type":"study","channel":"paper","received_on":"2026-10-12","applicant":{"ref":"P-8803","name":"Mei Chen","date_of_birth":"2004-02-18","nationality":"CHN"}}'
ev cw.okafor case.withdrawn HO-2026-000103 '{"reason":"applicant withdrew in writing on 2026-10-20"}'

echo
echo "== HO-2026-000101 now, and the leave in effect today"
"$docket" asof now status HO-2026-000101 --effective "$(date -u +%F)"
echo
echo "== its audit trail: signers, their roles then, signature checks"
"$docket" audit case HO-2026-000101
echo
echo "== the views (kept by a projector; here brought up to date by the first query)"
echo "-- cw.lindqvist's queue"
"$docket" queue cw.lindqvist
echo "-- interviews on 2026-11-17"
"$docket" diary 2026-11-17
echo "-- EUSS applications granted in 2026"
"$docket" report --case-type euss --outcome granted --from 2026-01-01 --to 2026-12-31
echo "-- every view against a fresh replay of the ledger"
"$docket" views check
echo
echo "== ledger head and a signed checkpoint (C2SP signed note)"
"$docket" head
"$docket" checkpoint
echo
echo "== docket verify"
"$docket" verify
