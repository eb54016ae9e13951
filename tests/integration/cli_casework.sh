#!/usr/bin/env bash
# cli_casework.sh - integration test of casework through the real docket binary:
# a full asylum case (interview, no-show, rebooking, grant with permission to
# work, error report and correction, appeal), undo with four eyes, rollback,
# double-booking, permissions, and the rules' error messages.
. "$(dirname "$0")/lib.sh"

D=$DOCKET
expect_exit 0 "$D" init --admin admin --key-out "$T/admin.key"
for who in cw.ana cw.eve sc.ben sc.cho aud.dee; do
  pub=$("$D" keygen --id "$who" --out "$T/$who.key") || fail "keygen $who"
  case $who in
    cw.*) roles=caseworker ;;
    sc.*) roles=caseworker,senior_caseworker ;;
    aud.*) roles=auditor ;;
  esac
  expect_exit 0 "$D" actor enroll --key "$T/admin.key" --id "$who" --pubkey "$pub" --roles "$roles"
done
K() { echo "--key=$T/$1.key"; }
# open_validated WHO ID TYPE RECEIVED REF NAME DOB NATIONALITY: a case opened and validated
open_validated() {
  expect_exit 0 "$D" case open "$2" $(K "$1") --type "$3" --channel online --received-on "$4" \
    --ref "$5" --name "$6" --dob "$7" --nationality "$8"
  expect_exit 0 "$D" case status-change "$2" $(K "$1") --to validated --reason ok
}

# open, assign, validate
expect_exit 0 "$D" case open AS-1 $(K cw.ana) --type asylum --channel assisted_digital \
  --received-on 2026-09-14 --ref P-4410 --name "Yusuf Abdi" --dob 1985-03-02 --nationality SOM
expect_exit 1 "$D" case assign AS-1 $(K cw.ana) --to cw.ana
contains "$ERR" "may not append case.assigned" "caseworker cannot assign"
expect_exit 1 "$D" case assign AS-1 $(K sc.ben) --to ghost.nobody
contains "$ERR" "'ghost.nobody' is not an enrolled actor" "a case goes only to an enrolled caseworker"
expect_exit 0 "$D" case assign AS-1 $(K sc.ben) --to cw.ana
expect_exit 1 "$D" decide AS-1 $(K cw.ana) --grant --product PROTECTION --status LTR \
  --valid-from 2026-12-10 --valid-until 2031-12-10 --no-nrpf --rationale r --rules-version v
contains "$ERR" "is 'received'" "illegal transition names the status"
contains "$ERR" "case.status_changed" "illegal transition names what is allowed"
expect_exit 0 "$D" case status-change AS-1 $(K cw.ana) --to validated --reason "identity established"

# interview, no-show, rebooking; double-booking refused
expect_exit 0 "$D" interview book AS-1 $(K cw.ana) --start 2026-11-02T10:00:00Z \
  --end 2026-11-02T12:00:00Z --location "Croydon IC room 4" --interviewer cw.ana
open_validated cw.eve AS-2 asylum 2026-09-20 P-4411 "Amina Farah" 1990-07-01 ERI
expect_exit 1 "$D" interview book AS-2 $(K cw.eve) --start 2026-11-02T11:00:00Z \
  --end 2026-11-02T13:00:00Z --location "room 5" --interviewer cw.ana
contains "$ERR" "already booked" "double-booking refused"
contains "$ERR" "DK_ECONFLICT" "double-booking is a conflict"
# a misspelt interviewer is no one's: it would escape the double-booking check
HEAD=$("$D" head --json)
expect_exit 1 "$D" interview book AS-2 $(K cw.eve) --start 2026-11-02T11:00:00Z \
  --end 2026-11-02T13:00:00Z --location "room 5" --interviewer cw.anna
contains "$ERR" "'cw.anna' is not an enrolled actor: an interview is held by an enrolled caseworker" \
  "an interviewer no one was enrolled as is refused"
equals "$("$D" head --json)" "$HEAD" "the refused booking appended nothing"
expect_exit 0 "$D" interview no-show AS-1 $(K cw.ana) --notes "did not attend; letter sent"
expect_exit 0 "$D" interview book AS-2 $(K cw.eve) --start 2026-11-02T11:00:00Z \
  --end 2026-11-02T13:00:00Z --location "room 5" --interviewer cw.ana
expect_exit 0 "$D" interview book AS-1 $(K cw.ana) --start 2026-11-09T10:00:00Z \
  --end 2026-11-09T12:00:00Z --location "Croydon IC room 4" --interviewer cw.ana
# a refused event names every event allowed, in full (the list once ran past 255 bytes)
expect_exit 1 "$D" appeal lodge AS-1 $(K cw.ana) --grounds "too early"
contains "$ERR" "interview.no_show, error.reported, status.corrected, contact.updated, event.reverted, case.rolled_back)" "the allowed list is whole"
expect_exit 0 "$D" interview attended AS-1 $(K cw.ana)

# decision: provenance required; limited leave needs an end; only the assignee or a senior
expect_exit 1 "$D" decide AS-1 $(K cw.ana) --grant --product PROTECTION --status LTR \
  --valid-from 2026-12-10 --valid-until 2031-12-10 --no-nrpf --rules-version v
contains "$ERR" "rationale" "decision without rationale refused"
expect_exit 1 "$D" decide AS-1 $(K cw.ana) --grant --product PROTECTION --status LTR \
  --valid-from 2026-12-10 --no-nrpf --rationale "well-founded fear" --rules-version "Part 11"
contains "$ERR" "valid_until" "limited leave without an end refused"
expect_exit 1 "$D" decide AS-1 $(K cw.ana) --refuse --product PROTECTION --status LTR \
  --rationale "not credible" --rules-version "Part 11"
contains "$ERR" "not a grant gives no leave" "a refusal carrying a leave status refused"
expect_exit 1 "$D" decide AS-1 $(K cw.ana) --grant --product PROTECTION --status ILR \
  --valid-from 2026-12-10 --valid-until 2031-12-10 --no-nrpf --rationale r --rules-version v
contains "$ERR" "indefinite leave (ILR) has no valid_until" "indefinite leave with an end refused"
expect_exit 1 "$D" decide AS-1 $(K cw.ana) --grant --product PROTECTION --status LTR \
  --valid-from 2026-12-10 --valid-until 2031-12-10 --no-nrpf \
  --conditions no_recourse_to_public_funds --rationale r --rules-version v
contains "$ERR" "no_recourse_to_public_funds is false but data.conditions lists" "NRPF both ways refused"
expect_exit 1 "$D" decide AS-1 $(K cw.eve) --grant --product PROTECTION --status LTR \
  --valid-from 2026-12-10 --valid-until 2031-12-10 --no-nrpf --rationale x --rules-version y
contains "$ERR" "assigned to 'cw.ana'" "only the assignee decides"
expect_exit 0 "$D" decide AS-1 $(K cw.ana) --grant --product PROTECTION --status LTR \
  --valid-from 2026-12-10 --valid-until 2031-12-10 --no-nrpf --conditions permission_to_work \
  --rationale "credible account; country guidance supports a real risk on return" \
  --rules-version "Immigration Rules Part 11 (2026-10)" \
  --evidence 9f2c4b6e0d7a41c3b8e5f1a2d3c4b5a69788a1b2c3d4e5f60718293a4b5c6d7e --json
DECISION=$(jget "$OUT" 'd["seq"]')

# an error report and its correction (a senior's job)
expect_exit 0 "$D" error report AS-1 $(K cw.ana) --by "applicant's solicitor" \
  --description "date of birth recorded with day and month swapped" --json
ERRSEQ=$(jget "$OUT" 'd["seq"]')
expect_exit 1 "$D" error correct AS-1 $(K cw.ana) --error-ref "$ERRSEQ" --field date_of_birth \
  --from 1985-03-02 --to 1985-02-03 --reason "passport shows 3 February"
contains "$ERR" "status.corrected" "caseworker cannot correct"
expect_exit 1 "$D" error correct AS-1 $(K sc.ben) --error-ref "$ERRSEQ" --field date_of_birth \
  --from 1999-01-01 --to 1985-02-03 --reason "passport shows 3 February"
contains "$ERR" "is '1985-03-02'" "correction must name the current value"
expect_exit 1 "$D" error correct AS-1 $(K sc.ben) --error-ref "$ERRSEQ" --field date_of_birth \
  --from 1985-03-02 --to 1985-02-03 --reason "passport shows 3 February" --eff 2001-01-01T00:00:00Z
contains "$ERR" "before the error report it resolves (seq $ERRSEQ" "a correction cannot take effect before its report"
expect_exit 1 "$D" error correct AS-1 $(K sc.ben) --error-ref "$ERRSEQ" --field date_of_birth \
  --from 1985-03-02 --to "sometime in the 1980s" --reason "passport"
contains "$ERR" "data.to must be a date" "a corrected date of birth must be a date"
expect_exit 1 "$D" error correct AS-1 $(K sc.ben) --error-ref "$ERRSEQ" --field assignee \
  --from cw.ana --to "Not An Actor" --reason "passport"
contains "$ERR" "data.to must be an actor id" "a corrected assignee must be an actor id"
HEAD=$("$D" head --json)
expect_exit 1 "$D" error correct AS-1 $(K sc.ben) --error-ref "$ERRSEQ" --field status \
  --from decided --to under_consideration --reason "to decide it again"
contains "$ERR" "status.corrected cannot move case 'AS-1' from 'decided' to 'under_consideration'" \
  "a correction does not reopen a decision"
equals "$("$D" head --json)" "$HEAD" "the refused correction appended nothing"
expect_exit 0 "$D" error correct AS-1 $(K sc.ben) --error-ref "$ERRSEQ" --field date_of_birth \
  --from 1985-03-02 --to 1985-02-03 --reason "passport shows 3 February" --json
CORRSEQ=$(jget "$OUT" 'd["seq"]')

# an (upgrade) appeal
expect_exit 0 "$D" appeal lodge AS-1 $(K cw.ana) --grounds "seeks refugee status, not humanitarian protection"

expect_exit 0 "$D" status AS-1 --json
equals "$(jget "$OUT" 'd["status"]')" appealed "status after the appeal"
equals "$(jget "$OUT" 'd["decision"]["conditions"]')" "['permission_to_work']" "conditions kept"
equals "$(jget "$OUT" 'd["applicant"]["date_of_birth"]')" 1985-02-03 "correction applied"
equals "$(jget "$OUT" 'd["open_error_reports"]')" "[]" "error report resolved"
equals "$(jget "$OUT" 'd["interview"]["no_shows"]')" 1 "no-show counted"
equals "$(jget "$OUT" 'd["appeal_open"]')" True "appeal open"

# undo: a note needs no second pair of eyes; the decision does, and the appeal depends on it
expect_exit 0 "$D" note AS-1 $(K cw.ana) --text "typed in the wrong case" --json
NOTE=$(jget "$OUT" 'd["seq"]')
expect_exit 2 "$D" undo "$NOTE" $(K cw.ana)
contains "$ERR" "--reason" "undo needs a reason"
expect_exit 0 "$D" undo "$NOTE" $(K cw.ana) --reason "wrong case" --reason-code wrong_case --json
UNDO=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" history AS-1 --json
equals "$(jget "$OUT" "[e['voided_by'] for e in d if e['seq'] == $NOTE][0]")" "$UNDO" "history shows who voided"
HEAD=$("$D" head --json)
expect_exit 1 "$D" undo "$DECISION" $(K cw.ana) --reason "wrong product"
contains "$ERR" "four eyes" "decision undo needs four eyes"
expect_exit 1 "$D" undo "$DECISION" $(K cw.ana) --cosign "$T/cw.eve.key" --reason "wrong product"
contains "$ERR" "four eyes" "a caseworker is not a second pair of senior eyes"
expect_exit 1 "$D" undo "$DECISION" $(K cw.ana) --cosign "$T/sc.cho.key" --reason "wrong product"
contains "$ERR" "depends" "undo refused while later events depend on it"
equals "$("$D" head --json)" "$HEAD" "refused undos leave the ledger as it was"
# undo the undo: the note is back
expect_exit 0 "$D" undo "$UNDO" $(K cw.ana) --reason "it was the right case after all"
expect_exit 0 "$D" status AS-1 --json
equals "$(jget "$OUT" '[v["seq"] for v in d["voided"]]')" "[$UNDO]" "redo restores the note"

# rollback (always four eyes) of AS-2 to before it was validated
expect_exit 0 "$D" history AS-2 --json
T_OPEN=$(jget "$OUT" 'd[0]["recorded_at"]')
expect_exit 1 "$D" rollback AS-2 $(K cw.eve) --to "$T_OPEN" --reason "validated in error"
contains "$ERR" "four eyes" "rollback needs four eyes"
expect_exit 0 "$D" rollback AS-2 $(K cw.eve) --cosign "$T/sc.ben.key" --to "$T_OPEN" --reason "validated in error"
expect_exit 0 "$D" status AS-2 --json
equals "$(jget "$OUT" 'd["status"]')" received "rollback returns AS-2 to received"
equals "$(jget "$OUT" 'd["interview"]["active"]')" False "rollback cancels the voided booking"
equals "$(jget "$OUT" 'len(d["voided"])')" 2 "rollback voids the later events"
# a rollback into the future would void nothing: refused, naming why, nothing appended
expect_exit 0 "$D" head --json
HEAD_BEFORE=$OUT
expect_exit 1 "$D" rollback AS-2 $(K cw.eve) --cosign "$T/sc.ben.key" --to 2099-01-01 --reason "typo"
contains "$ERR" "case.rolled_back voids nothing: no event of case 'AS-2' recorded after 2099-01-01T00:00:00" "a rollback that voids nothing is refused"
expect_exit 0 "$D" head --json
equals "$OUT" "$HEAD_BEFORE" "the refused rollback appended nothing"
# the rolled-back booking freed cw.ana's slot
expect_exit 0 "$D" case status-change AS-2 $(K cw.eve) --to validated --reason "revalidated"
expect_exit 0 "$D" interview book AS-2 $(K cw.eve) --start 2026-11-02T11:00:00Z \
  --end 2026-11-02T13:00:00Z --location "room 5" --interviewer cw.ana

# auditors read but never write
expect_exit 1 "$D" note AS-1 $(K aud.dee) --text "looks fine"
contains "$ERR" "aud.dee" "auditor refused, named"
contains "$ERR" "auditor" "auditor refused, role named"

# as-of: what the ledger said before the rollback was recorded, and after
expect_exit 0 "$D" history AS-2 --json
H2=$OUT
BEFORE_RB=$(jget "$H2" '[d[i-1]["recorded_at"] for i in range(len(d)) if d[i]["type"]=="case.rolled_back"][0]')
AT_RB=$(jget "$H2" '[e["recorded_at"] for e in d if e["type"]=="case.rolled_back"][0]')
expect_exit 0 "$D" asof "$BEFORE_RB" status AS-2 --json
equals "$(jget "$OUT" 'd["status"]')" interview_scheduled "as of before the rollback: as it was then"
equals "$(jget "$OUT" 'len(d["voided"])')" 0 "as of before the rollback: nothing voided"
expect_exit 0 "$D" asof "$AT_RB" status AS-2 --json
equals "$(jget "$OUT" 'd["status"]')" received "as of the rollback: rolled back"
expect_exit 1 "$D" asof 2020-01-01 status AS-2
contains "$ERR" "no events by then" "a case before it existed"
expect_exit 2 "$D" asof yesterday status AS-2
contains "$ERR" "'yesterday' is not a time" "bad time named"
expect_exit 2 "$D" asof 2026-01-01 whatever
contains "$ERR" "unknown question 'whatever'" "unknown question named"
# whole-system views as of a time: replayed into scratch views, live views untouched
expect_exit 0 "$D" asof "$BEFORE_RB" query status interview_scheduled --json
equals "$(jget "$OUT" '[c["case"] for c in d["items"]]')" "['AS-2']" "as of before the rollback AS-2 awaited interview"
expect_exit 0 "$D" asof "$AT_RB" query status received --json
equals "$(jget "$OUT" '[c["case"] for c in d["items"]]')" "['AS-2']" "as of the rollback AS-2 is back to received"
expect_exit 0 "$D" asof now query status interview_scheduled --json
equals "$(jget "$OUT" '[c["case"] for c in d["items"]]')" "['AS-2']" "as of now AS-2 awaits its new interview"
equals "$(jget "$OUT" 'd["as_of_seq"]')" "$(jget "$("$D" head --json)" 'd["seq"]')" "as of now is the head"
YEAR=$(date -u +%Y)
expect_exit 0 "$D" asof "$BEFORE_RB" report --case-type asylum --outcome granted --condition permission_to_work --from "$YEAR-01-01" --to "$YEAR-12-31" --json
equals "$(jget "$OUT" 'd["count"]')" 0 "as of before AS-1's decision: no grant"
expect_exit 0 "$D" asof "$AT_RB" report --case-type asylum --outcome granted --condition permission_to_work --from "$YEAR-01-01" --to "$YEAR-12-31" --json
equals "$(jget "$OUT" 'd["count"]')" 1 "as of later: the grant with permission to work counted"
expect_exit 1 "$D" asof 2020-01-01 report --case-type asylum --outcome granted --from 2019-01-01 --to 2030-12-31 --json
contains "$ERR" "no records by then" "before the ledger began"
# an as-of read never syncs views: --no-sync is refused, not ignored
expect_exit 2 "$D" asof now query status received --no-sync
contains "$ERR" "asof TIME query takes no --no-sync" "asof query refuses --no-sync"
expect_exit 2 "$D" asof now report --case-type asylum --outcome granted --from 2019-01-01 --to 2030-12-31 --no-sync
contains "$ERR" "asof TIME report takes no --no-sync" "asof report refuses --no-sync"
[ ! -e "$DOCKET_LEDGER/views" ] && ok || fail "as-of queries touched the live views"
ls "${TMPDIR:-/tmp}" | grep -q docket-asof- && fail "a scratch directory was left behind" || ok
# the error report resolved above: its correction's seq, in text as in --json (this
# builds the live views, so it comes after the as-of checks above)
expect_exit 0 "$D" errors --json
equals "$(jget "$OUT" "[e['resolved_by_seq'] for e in d['items'] if e['report_seq'] == $ERRSEQ][0]")" \
  "$CORRSEQ" "errors --json names the correction"
SECS=$(jget "$OUT" "int([e['resolve_seconds'] for e in d['items'] if e['report_seq'] == $ERRSEQ][0])")
expect_exit 0 "$D" errors
contains "$OUT" "resolved $(jget "$("$D" show "$CORRSEQ" --json)" 'd["recorded_at"]') by seq $CORRSEQ ($SECS s)" \
  "errors names the correction's seq as --json does, and its whole seconds toward zero"
# the person's leave in effect on a date: LTR 2026-12-10..2031-12-10
NOW=$(jget "$("$D" head --json)" 'd["recorded_at"]')
expect_exit 0 "$D" asof "$NOW" status AS-1 --effective 2027-06-01 --json
equals "$(jget "$OUT" 'd["effective"]["in_effect"]')" True "leave in effect in 2027"
equals "$(jget "$OUT" 'd["effective"]["immigration_status"]')" LTR "LTR in effect"
equals "$(jget "$OUT" 'd["effective"]["conditions"]')" "['permission_to_work']" "conditions in effect"
expect_exit 0 "$D" asof "$NOW" status AS-1 --effective 2026-12-09 --json
equals "$(jget "$OUT" 'd["effective"]["in_effect"]')" False "not yet in effect the day before"
expect_exit 0 "$D" asof now status AS-1 --effective 2032-01-01
contains "$OUT" "expired on 2031-12-10" "expired leave said so"
expect_exit 2 "$D" asof "$NOW" status AS-1 --effective 2032-13-01
contains "$ERR" "not a date" "bad effective date named"

# audit: every event of the case with its signers' roles then and its voids
expect_exit 0 "$D" audit case AS-1 --json
AUD=$OUT
expect_exit 0 "$D" history AS-1 --json
equals "$(jget "$AUD" 'len(d)')" "$(jget "$OUT" 'len(d)')" "audit covers every event of the case"
equals "$(jget "$AUD" 'all(s["signature_valid"] and s["enrolled"] for e in d for s in e["signers"])')" True "every signature verifies"
equals "$(jget "$AUD" '[e["voided_by"] for e in d if e["seq"]=='"$NOTE"']')" "[None]" "the note's undo was undone"
equals "$(jget "$AUD" '[e["void_reason"] for e in d if e["seq"]=='"$UNDO"']')" "['it was the right case after all']" "why the undo was voided"
equals "$(jget "$AUD" '[e["signers"][0]["roles"] for e in d if e["type"]=="case.assigned"][0]')" "caseworker,senior_caseworker" "roles as enrolled"
expect_exit 0 "$D" audit case AS-1
contains "$OUT" "voided by seq" "text audit shows voids"
expect_exit 0 "$D" audit actor sc.ben --json
equals "$(jget "$OUT" 'sorted(set(e["type"] for e in d))')" "['actor.enrolled', 'case.assigned', 'case.rolled_back', 'status.corrected']" "what sc.ben did, and his enrolment"
expect_exit 0 "$D" audit actor sc.ben --from "$AT_RB" --json
equals "$(jget "$OUT" 'len(d)')" 1 "a window holds only the rollback"
expect_exit 2 "$D" audit actor sc.ben --from tomorrow
expect_exit 1 "$D" audit actor sc.bne
contains "$ERR" "no actor 'sc.bne' was ever enrolled" "a mistyped actor is named, not listed as idle"
expect_exit 2 "$D" audit person P-4410
contains "$ERR" "unknown subject" "unbuilt audit named"
expect_exit 1 "$D" audit case NOPE
contains "$ERR" "NOPE" "missing case named"

# a withdrawal leaves its interview booked: the slot stays taken until that interview is
# cancelled, which a withdrawn (or closed) case allows, keeping its status
open_validated cw.ana WD-1 visa 2026-10-01 P-5001 "Lena Berg" 1979-11-30 SWE
expect_exit 1 "$D" interview cancel WD-1 $(K cw.ana) --reason "none booked"
contains "$ERR" "is 'validated'; 'interview.cancelled' is not allowed" "no interview to cancel yet"
expect_exit 0 "$D" interview book WD-1 $(K cw.ana) --start 2027-01-05T10:00:00Z \
  --end 2027-01-05T11:00:00Z --location "room 6" --interviewer cw.ana
expect_exit 0 "$D" case withdraw WD-1 $(K cw.ana) --reason "applicant left the UK"
open_validated cw.ana WD-2 visa 2026-10-02 P-5002 "Omar Haddad" 1988-04-12 SYR
expect_exit 1 "$D" interview book WD-2 $(K cw.ana) --start 2027-01-05T10:00:00Z \
  --end 2027-01-05T11:00:00Z --location "room 6" --interviewer cw.ana
contains "$ERR" "already booked" "a withdrawn case's interview still holds its slot"
expect_exit 0 "$D" interview cancel WD-1 $(K cw.ana) --reason "case withdrawn"
expect_exit 0 "$D" status WD-1 --json
equals "$(jget "$OUT" '(d["status"], d["interview"]["active"])')" "('withdrawn', False)" \
  "cancelling a withdrawn case's interview keeps it withdrawn and frees the slot"
expect_exit 1 "$D" interview cancel WD-1 $(K cw.ana) --reason "again"
contains "$ERR" "has no interview booked" "a second cancellation is refused, saying why"
expect_exit 0 "$D" interview book WD-2 $(K cw.ana) --start 2027-01-05T10:00:00Z \
  --end 2027-01-05T11:00:00Z --location "room 6" --interviewer cw.ana

# undo acts on what its chain of targets ends at (helper-54's review): undoing the senior-
# approved undo of a decision re-applies the decision, so it needs four eyes too; and a
# caseworker alone does not undo a senior's assignment
expect_exit 0 "$D" interview cancel WD-2 $(K cw.ana) --reason "not needed"
expect_exit 0 "$D" case assign WD-2 $(K sc.ben) --to cw.ana --json
ASSIGN=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" decide WD-2 $(K cw.ana) --grant --product WORK --status LTR \
  --valid-from 2027-01-01 --valid-until 2028-12-31 --no-nrpf --rationale "meets the rules" \
  --rules-version v --json
DEC=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" undo "$DEC" $(K cw.ana) --cosign "$T/sc.ben.key" --reason "wrong product" --json
UNDO=$(jget "$OUT" 'd["seq"]')
expect_exit 1 "$D" undo "$UNDO" $(K cw.eve) --reason "put it back"
contains "$ERR" "needs four eyes" "undoing the undo of a decision needs four eyes"
contains "$ERR" "decision.recorded" "and names the decision it would re-apply"
expect_exit 1 "$D" undo "$ASSIGN" $(K cw.ana) --reason "mine"
contains "$ERR" "may not undo case.assigned" "a caseworker alone does not undo an assignment"
expect_exit 0 "$D" undo "$ASSIGN" $(K cw.ana) --cosign "$T/sc.ben.key" --reason "assigned in error"

# a grant whose leave is cancelled, then the case closed: status shows the leave in effect
# on the day, not the grant alone (the closure hides the cancelled status)
open_validated cw.ana LC-1 asylum 2026-01-05 P-4420 "Rahel Tesfaye" 1991-04-04 ERI
expect_exit 0 "$D" case status-change LC-1 $(K cw.ana) --to under_consideration --reason ok
expect_exit 0 "$D" decide LC-1 $(K sc.ben) --grant --product PROTECTION --status ILR \
  --valid-from 2026-02-01 --no-nrpf --rationale "credible" --rules-version v --json
GRANT=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" status LC-1 --json
equals "$(jget "$OUT" 'd["effective"]["in_effect"]')" True "an indefinite grant in effect today"
HEAD=$("$D" head --json)
expect_exit 1 "$D" leave cancel LC-1 $(K sc.ben) --reason "deception found" --notice-to "last address" \
  --eff 1999-06-01T00:00:00Z
contains "$ERR" "leave.cancelled takes effect at 1999-06-01T00:00:00.000000Z, before the grant it cancels (seq $GRANT" \
  "a cancellation cannot take effect before the grant (a mistyped year would end it backwards)"
equals "$("$D" head --json)" "$HEAD" "the refused cancellation appended nothing"
expect_exit 0 "$D" leave cancel LC-1 $(K sc.ben) --reason "deception found" --notice-to "last address" --json
CANCEL=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" case close LC-1 $(K cw.ana) --reason "file closed"
expect_exit 0 "$D" status LC-1 --json
equals "$(jget "$OUT" '(d["status"], d["decision"]["outcome"], d["effective"]["in_effect"], d["effective"]["ended_seq"])')" \
  "('closed', 'granted', False, $CANCEL)" "after cancellation and closure: no leave, ended by the cancellation"
expect_exit 0 "$D" status LC-1
contains "$OUT" "no leave (leave ended on" "the text says the leave ended"
contains "$OUT" "by seq $CANCEL)" "and by which event"
contains "$OUT" "leave cancelled by seq $CANCEL" "the state keeps the cancellation past the closure"
equals "$(jget "$("$D" status LC-1 --json)" '(d["leave"]["grant_seq"], d["leave"]["cancelled_seq"])')" \
  "(None, $CANCEL)" "and says so in JSON"
expect_exit 0 "$D" project
expect_exit 0 "$D" query status closed --json
equals "$(jget "$OUT" '[(i["outcome"], i["leave_cancelled_seq"]) for i in d["items"] if i["case"] == "LC-1"]')" \
  "[('granted', $CANCEL)]" "the case_status view keeps it too"

# a grant's leave is held through a closure, and through a refusal of more after an upgrade
# appeal allowed: it can be cancelled there (it could not: only in 'decided')
open_validated cw.ana LC-2 asylum 2026-01-06 P-4421 "Dawit Bekele" 1990-05-05 ERI
expect_exit 0 "$D" case status-change LC-2 $(K cw.ana) --to under_consideration --reason ok
expect_exit 0 "$D" decide LC-2 $(K sc.ben) --grant --product PROTECTION --status ILR \
  --valid-from 2026-02-01 --no-nrpf --rationale "credible" --rules-version v --json
GRANT2=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" appeal lodge LC-2 $(K cw.ana) --grounds "seeks refugee status"
expect_exit 0 "$D" appeal decide LC-2 $(K sc.ben) --allowed
expect_exit 0 "$D" decide LC-2 $(K sc.ben) --refuse --product PROTECTION --rationale "not a refugee" \
  --rules-version v
expect_exit 0 "$D" case close LC-2 $(K cw.ana) --reason "file closed"
expect_exit 0 "$D" status LC-2
contains "$OUT" "leave held from the grant at seq $GRANT2" "the refusal of more leaves the grant's leave"
contains "$OUT" "leave in effect (granted PROTECTION ILR at seq $GRANT2" "and it is in effect today"
# effective as of the grant itself (before the refusal): it is the grant that is cancelled
GRANT2_AT=$(jget "$("$D" show "$GRANT2" --json)" 'd["recorded_at"]')
expect_exit 0 "$D" leave cancel LC-2 $(K sc.ben) --reason "deception found" --notice-to "last address" \
  --eff "$GRANT2_AT" --json
CANCEL2=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" status LC-2 --json
equals "$(jget "$OUT" '(d["status"], d["leave"]["grant_seq"], d["leave"]["cancelled_seq"], d["effective"]["ended_seq"])')" \
  "('leave_cancelled', None, $CANCEL2, $CANCEL2)" "cancelled after closure: no leave held, and none in effect"
expect_exit 1 "$D" leave cancel LC-2 $(K sc.ben) --reason "again" --notice-to "x"
contains "$ERR" "is 'leave_cancelled'" "nothing left to cancel"

# a case whose opening is voided has no status: status says so, not empty fields
expect_exit 0 "$D" case open VO-1 $(K cw.ana) --type visa --channel online --received-on 2019-01-01 \
  --ref R-VO --name "Applicant VO" --dob 1985-03-02 --nationality SOM --json
VO=$(jget "$OUT" 'd["seq"]')
expect_exit 0 "$D" undo "$VO" $(K cw.ana) --reason "opened twice"
expect_exit 0 "$D" status VO-1
contains "$OUT" "case VO-1: no status: its opening is voided (version 2" "a voided opening"
contains "$OUT" "seq $VO voided by seq" "and what voided it"
case "$OUT" in *applicant*) fail "status of a voided opening shows applicant fields" ;; *) ok ;; esac

expect_exit 0 "$D" verify --json
equals "$(jget "$OUT" 'd["ok"]')" True "verify after casework"
finish
