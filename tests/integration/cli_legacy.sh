#!/usr/bin/env bash
# cli_legacy.sh - a ledger docket wrote before the seventeenth session's append rules and
# case-state layout (tests/data/legacy, made by its make.sh): today's docket verifies it,
# reads it right, rebuilds its views of an older version, and appends to its cases.
. "$(dirname "$0")/lib.sh"
D=$DOCKET
# copies: a clone's files are 0644, and docket takes a key file only at 0600
cp -r "$(dirname "$0")/../data/legacy/ledger" "$T/ledger" && chmod -R u+w "$T/ledger"
cp -r "$(dirname "$0")/../data/legacy/keys" "$T/keys" && chmod 600 "$T"/keys/*.key
export DOCKET_PASSPHRASE=legacy
K() { echo "--key=$T/keys/$1.key"; }

# what that docket took, today's still verifies (the rules it broke are append rules),
# and lists each record that breaks one as a notice
expect_exit 0 "$D" verify --json
equals "$(jget "$OUT" '(d["ok"], d["cases"])')" "(True, 11)" "the older ledger verifies, every case re-checked"
equals "$(jget "$OUT" '[n["seq"] for n in d["notices"]]')" "[10, 11, 14, 15, 18, 22, 32, 34, 39, 40, 46, 52, 53, 55, 59, 66]" \
  "one notice for each record today's append refuses"
equals "$(jget "$OUT" '[n["reason"].split(" ")[0] for n in d["notices"]][:4]')" \
  "['status.corrected', 'leave.cancelled:', 'status.corrected', 'appeal.decided:']" "each notice says why"
contains "$(jget "$OUT" 'd["notices"][7]["reason"]')" "would bring back status.corrected seq 32" \
  "an undo that brings back an older correction"
contains "$(jget "$OUT" 'd["notices"][8]["reason"]')" "before the grant it cancels (seq 38" \
  "a cancellation dated before its grant"
contains "$(jget "$OUT" 'd["notices"][9]["reason"]')" "actor.enrolled: that public key was given to actor 'sc.ben'" \
  "a second actor enrolled with another's key"
contains "$(jget "$OUT" 'd["notices"][10]["reason"]')" "would bring back an interview booking, and 'sc.ben2' is revoked" \
  "an undo that brought back a booking with an interviewer revoked since"
contains "$(jget "$OUT" 'd["notices"][11]["reason"]')" "would leave decision.recorded seq 51 in force" \
  "an undo of an assignment under the assignee's decision"
contains "$(jget "$OUT" 'd["notices"][13]["reason"]')" "actor 'cw.ana' held that public key before and retired it" \
  "an actor rotated back to its retired key"
contains "$(jget "$OUT" 'd["notices"][14]["reason"]')" "an interview's outcome is recorded once it has begun" \
  "a no-show recorded before the interview"
contains "$(jget "$OUT" 'd["notices"][15]["reason"]')" "case 'L-12' has an interview booked with 'cw.ana'; cancel it first" \
  "a status correction out of withdrawn with an interview booked"
expect_exit 0 "$D" verify --from 30
contains "$OUT" "10 records accepted by an older docket break rules added since" "verify --from: its part"
contains "$OUT" "  notice: seq 32: status.corrected cannot move case 'L-6' from 'under_consideration' to 'closed'" \
  "a notice in text"
case "$OUT" in *"seq 18"*) fail "verify --from 30 listed seq 18" ;; *) ok ;; esac

# its views were version 2: brought to this docket's and equal to a fresh replay
expect_exit 0 "$D" project
expect_exit 0 "$D" views check
contains "$OUT" "7 views equal a fresh replay" "the older views rebuilt"

# read right: the leave in effect lists each condition once (the work prohibition kept)
expect_exit 0 "$D" status L-4 --json
equals "$(jget "$OUT" 'd["effective"]["conditions"]')" "['no_permission_to_work', 'study_restriction']" \
  "nine repeats do not push the work prohibition out"
# the second cancellation, after a correction back to decided, folds: no leave held
expect_exit 0 "$D" status L-1 --json
equals "$(jget "$OUT" '(d["status"], d["leave"]["grant_seq"], d["effective"]["in_effect"])')" \
  "('leave_cancelled', None, False)" "a twice-cancelled grant holds no leave"

# appends: a grant's leave cancelled after the closure (its state row, of the retired
# layout, is re-folded); a move that keeps an interviewer nobody enrolled is refused
expect_exit 0 "$D" leave cancel L-5 $(K sc.ben) --reason "deception found" --notice-to "last address" --json
CANCEL=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" status L-5 --json
equals "$(jget "$OUT" '(d["status"], d["leave"]["cancelled_seq"])')" "('leave_cancelled', $CANCEL)" \
  "cancelled after the closure"
expect_exit 1 "$D" interview reschedule L-3 $(K cw.ana) --start 2026-12-02T10:00:00Z \
  --end 2026-12-02T11:00:00Z --reason "room taken"
contains "$ERR" "keeps the booking's interviewer, and 'iv.nobody' is not an enrolled actor" \
  "a move names an enrolled interviewer"
expect_exit 1 "$D" leave cancel L-1 $(K sc.ben) --reason "a third time" --notice-to x
contains "$ERR" "is 'leave_cancelled'" "nothing left to cancel"
# L-12's slot, held in under_consideration, is released as cli.md says: the correction
# undone (back to withdrawn), then the interview cancelled
expect_exit 1 "$D" interview cancel L-12 $(K cw.ana) --reason "applicant withdrew"
contains "$ERR" "is 'under_consideration'" "no interview event is taken where the correction left it"
expect_exit 0 "$D" undo 66 $(K sc.ben) --reason "the correction left a slot booked"
expect_exit 0 "$D" interview cancel L-12 $(K cw.ana) --reason "applicant withdrew" --json
expect_exit 0 "$D" status L-12 --json
equals "$(jget "$OUT" '(d["status"], d["interview"]["active"], d["interview"]["cancelled"])')" "('withdrawn', False, 1)" "the slot released, the case withdrawn"

expect_exit 0 "$D" project
expect_exit 0 "$D" views check
expect_exit 0 "$D" verify --json
equals "$(jget "$OUT" '(d["ok"], len(d["notices"]))')" "(True, 16)" "verify after the appends: none of them a notice"
finish
