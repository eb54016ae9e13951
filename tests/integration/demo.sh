#!/usr/bin/env bash
# demo.sh - the README's main job (scripts/demo.sh) against the built binary:
# it fills a fresh ledger, runs again without appending anything, and verifies.
. "$(dirname "$0")/lib.sh"

DEMO=$(dirname "$0")/../../scripts/demo.sh
expect_exit 0 bash "$DEMO" "$DOCKET" "$T/demo-ledger" "$T/demo-keys"
contains "$OUT" "leave in effect" "the demo shows the leave in effect"
contains "$OUT" "sig-ok" "the demo shows an audit trail"
contains "$OUT" "10:00-12:00  cw.lindqvist     HO-2026-000102       attended" "the demo shows a diary"
contains "$OUT" "ok: 7 views equal a fresh replay" "the demo's views check"
contains "$OUT" "ok: 18 records" "the demo ledger verifies"
HEAD1=$(DOCKET_LEDGER=$T/demo-ledger "$DOCKET" head --json)
expect_exit 0 bash "$DEMO" "$DOCKET" "$T/demo-ledger" "$T/demo-keys"
contains "$OUT" "already exists" "a second run says so"
equals "$(DOCKET_LEDGER=$T/demo-ledger "$DOCKET" head --json)" "$HEAD1" "a second run appends nothing"
finish
