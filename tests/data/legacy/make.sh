#!/usr/bin/env bash
# make.sh - how tests/data/legacy/ledger was written: by docket at commit 1ad852a (before
# the seventeenth session's append rules and its case-state layout), with this script:
#   git worktree add /tmp/old 1ad852a && cmake -S /tmp/old -B /tmp/old/build && \
#   cmake --build /tmp/old/build --target docket && \
#   bash tests/data/legacy/make.sh /tmp/old/build/adapters/cli/docket tests/data/legacy
# It holds what that docket took and today's refuses, so that cli_legacy.sh can check
# that a ledger written before still verifies, reads right, and takes appends. Test keys
# only (passphrase "legacy"). LMDB files are of this machine's word size and byte order (x86-64).
set -euo pipefail
D=$1 OUT=$2
export DOCKET_PASSPHRASE=legacy DOCKET_LEDGER=$OUT/ledger
rm -rf "$OUT/ledger" "$OUT/keys" && mkdir -p "$OUT/keys"
$D init --admin admin --key-out "$OUT/keys/admin.key" >/dev/null
for who in cw.ana sc.ben; do
  pub=$($D keygen --id "$who" --out "$OUT/keys/$who.key")
  case $who in cw.*) roles=caseworker ;; sc.*) roles=caseworker,senior_caseworker ;; esac
  $D actor enroll --key "$OUT/keys/admin.key" --id "$who" --pubkey "$pub" --roles "$roles" >/dev/null
done
K() { echo "--key=$OUT/keys/$1.key"; }
open_uc() { # a case opened and under consideration
  $D case open "$1" $(K cw.ana) --type asylum --channel online --received-on 2026-01-05 \
    --ref "P-$1" --name "Applicant $1" --dob 1990-01-01 --nationality ERI >/dev/null
  $D case status-change "$1" $(K cw.ana) --to validated --reason ok >/dev/null
  $D case status-change "$1" $(K cw.ana) --to under_consideration --reason ok >/dev/null
}
seq_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])'; }
grant() {
  $D decide "$1" $(K sc.ben) --grant --product PROTECTION --status ILR --valid-from 2026-02-01 \
    --no-nrpf --rationale credible --rules-version v >/dev/null
}
correct_status() { # case from to
  local rep
  rep=$($D error report "$1" $(K cw.ana) --by cw.ana --description "status wrong" --json | seq_of)
  $D error correct "$1" $(K sc.ben) --error-ref "$rep" --field status --from "$2" --to "$3" \
    --reason "keyed wrongly" >/dev/null
}
# L-1: a grant, its leave cancelled, a correction back to decided, cancelled again
open_uc L-1 && grant L-1
$D leave cancel L-1 $(K sc.ben) --reason deception --notice-to "last address" >/dev/null
correct_status L-1 leave_cancelled decided
$D leave cancel L-1 $(K sc.ben) --reason "deception, again" --notice-to "last address" >/dev/null
# L-2: received, corrected to appealed, the appeal dismissed: decided with no decision
$D case open L-2 $(K cw.ana) --type asylum --channel online --received-on 2026-01-05 \
  --ref P-L-2 --name "Applicant L-2" --dob 1990-01-01 --nationality ERI >/dev/null
correct_status L-2 received appealed
$D appeal decide L-2 $(K sc.ben) --dismissed >/dev/null
# L-3: an interview booked with an interviewer nobody enrolled
$D case open L-3 $(K cw.ana) --type asylum --channel online --received-on 2026-01-05 \
  --ref P-L-3 --name "Applicant L-3" --dob 1990-01-01 --nationality ERI >/dev/null
$D case status-change L-3 $(K cw.ana) --to validated --reason ok >/dev/null
$D interview book L-3 $(K cw.ana) --start 2026-12-01T10:00:00Z --end 2026-12-01T11:00:00Z \
  --location "room 4" --interviewer iv.nobody >/dev/null
# L-4: a grant listing study_restriction nine times, then no_permission_to_work
open_uc L-4
R='"study_restriction"'
$D append $(K sc.ben) --type decision.recorded --case L-4 --data "{\"outcome\":\"granted\",\
\"product_type\":\"STUDY\",\"immigration_status\":\"LTR\",\"valid_from\":\"2026-01-01\",\
\"valid_until\":\"2099-01-01\",\"no_recourse_to_public_funds\":false,\"conditions\":[$R,$R,$R,$R,\
$R,$R,$R,$R,$R,\"no_permission_to_work\"],\"rationale\":\"r\",\"rules_version\":\"v\"}" >/dev/null
# L-5: a grant, then the case closed (today's docket cancels leave after a closure too)
open_uc L-5 && grant L-5
$D case close L-5 $(K cw.ana) --reason "file closed" >/dev/null
# L-6: a correction into closed, undone, and the undo undone: the correction back in force
open_uc L-6
rep=$($D error report L-6 $(K cw.ana) --by cw.ana --description "status wrong" --json | seq_of)
corr=$($D error correct L-6 $(K sc.ben) --error-ref "$rep" --field status --from under_consideration \
  --to closed --reason "keyed wrongly" --json | seq_of)
undo=$($D undo "$corr" $(K sc.ben) --reason "not closed after all" --json | seq_of)
$D undo "$undo" $(K sc.ben) --reason "closed after all" >/dev/null
# L-7: a grant, its leave cancelled with an effective time decades before the grant
open_uc L-7 && grant L-7
$D leave cancel L-7 $(K sc.ben) --reason deception --notice-to "last address" \
  --eff 1999-01-01T00:00:00Z >/dev/null
# a second id enrolled with sc.ben's own key (one person, two signatures for four eyes)
$D actor enroll --key "$OUT/keys/admin.key" --id sc.ben2 \
  --pubkey "$(sed -n 's/^public: //p' "$OUT/keys/sc.ben.key")" \
  --roles caseworker,senior_caseworker >/dev/null
# L-9: a booking cancelled, its interviewer revoked, then the cancellation undone
$D case open L-9 $(K cw.ana) --type asylum --channel online --received-on 2026-01-05 \
  --ref P-L-9 --name "Applicant L-9" --dob 1990-01-01 --nationality ERI >/dev/null
$D case status-change L-9 $(K cw.ana) --to validated --reason ok >/dev/null
$D interview book L-9 $(K cw.ana) --start 2026-12-03T10:00:00Z --end 2026-12-03T11:00:00Z \
  --location "room 2" --interviewer sc.ben2 >/dev/null
ic=$($D interview cancel L-9 $(K cw.ana) --reason "room lost" --json | seq_of)
$D actor revoke --key "$OUT/keys/admin.key" --id sc.ben2 >/dev/null
$D undo "$ic" $(K cw.ana) --reason "room found" >/dev/null
# L-10: a case assigned to cw.ana, her refusal, then her assignment undone under it
open_uc L-10
asg=$($D case assign L-10 $(K sc.ben) --to cw.ana --json | seq_of)
$D decide L-10 $(K cw.ana) --refuse --product PROTECTION --rationale "not credible" \
  --rules-version v >/dev/null
$D undo "$asg" $(K sc.ben) --reason "assigned by mistake" >/dev/null
# cw.ana rotated to her own key (a no-op), then to a new key and back to the retired one
ana=$(sed -n 's/^public: //p' "$OUT/keys/cw.ana.key")
$D actor rotate --key "$OUT/keys/admin.key" --id cw.ana --pubkey "$ana" >/dev/null
new=$($D keygen --id cw.ana --out "$OUT/keys/cw.ana.new.key")
$D actor rotate --key "$OUT/keys/admin.key" --id cw.ana --pubkey "$new" >/dev/null
$D actor rotate --key "$OUT/keys/admin.key" --id cw.ana --pubkey "$ana" >/dev/null
rm -f "$OUT/keys/cw.ana.new.key"
# L-11: a no-show recorded before the interview's slot begins
$D case open L-11 $(K cw.ana) --type asylum --channel online --received-on 2026-01-05 \
  --ref P-L-11 --name "Applicant L-11" --dob 1990-01-01 --nationality ERI >/dev/null
$D case status-change L-11 $(K cw.ana) --to validated --reason ok >/dev/null
$D interview book L-11 $(K cw.ana) --start 2099-12-01T10:00:00Z --end 2099-12-01T11:00:00Z \
  --location "room 3" --interviewer cw.ana >/dev/null
$D interview no-show L-11 $(K cw.ana) --notes "did not come" >/dev/null
# L-12: withdrawn with an interview booked, then corrected back to under_consideration: the
# slot held in a status no interview event is taken in (helper-77)
open_uc L-12
$D interview book L-12 $(K cw.ana) --start 2099-12-02T10:00:00Z --end 2099-12-02T11:00:00Z \
  --location "room 5" --interviewer cw.ana >/dev/null
$D case withdraw L-12 $(K cw.ana) --reason "applicant withdrew" >/dev/null
correct_status L-12 withdrawn under_consideration
$D project >/dev/null # the views as that docket kept them (version 2)
rm -f "$OUT/ledger/lock.mdb" "$OUT/ledger/views/lock.mdb"
