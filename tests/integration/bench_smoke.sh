#!/usr/bin/env bash
# bench_smoke.sh - each benchmark program runs to the end on a small ledger and prints the
# figures its documentation names (no figure is judged: tests never assert on time).
# bench/compare's docket driver was broken for sessions before anything ran it.
. "$(dirname "$0")/lib.sh"
: "${BENCH_DIR:?set BENCH_DIR to the bench directory of the build}"
cd "$T"

# figures NAME...: each NAME is a `name value unit` line of $OUT
figures() {
  for f in "$@"; do
    if printf '%s\n' "$OUT" | grep -Eq "^$f [0-9.e+-]+ "; then ok; else fail "no figure '$f' in: $OUT"; fi
  done
}

expect_exit 0 "$BENCH_DIR/bench_rebuild" --events 20000 --lag-seconds 1 --ledger "$T/rb"
figures rebuild_eps rebuild_peak_rss_mb projector_lag_p99_ms view_diary_entries
equals "$(printf '%s\n' "$OUT" "$ERR" | grep -c refused)" 0 "the generator's appends are all taken"
figures ledger_events
equals "$(printf '%s\n' "$OUT" | awk '$1 == "ledger_events" {print $2}')" 20000.0 "the ledger holds what was asked"

expect_exit 0 "$BENCH_DIR/bench_asof" --events 5000
figures asof_now_p50_us asof_ledger_events
expect_exit 0 "$BENCH_DIR/bench_verify" --events 3000
figures verify_one_core_records_per_s verify_peak_rss_mb
expect_exit 0 "$BENCH_DIR/bench_layout" --events 5000
figures layout_cases_batched_eps

# bench/compare: one signed workload, through the docket driver
expect_exit 0 "$BENCH_DIR/compare/cmp_gen" --out "$T/wl.bin" --events 10000 --cases 1000
mkdir -p "$T/cmp"
expect_exit 0 "$BENCH_DIR/compare/cmp_docket" --workload "$T/wl.bin" --dir "$T/cmp" \
  --c1 300 --cn 1000 --queries 100
figures ingest_bulk_eps rebuild_eps disk_bytes_per_event
equals "$(printf '%s\n' "$OUT" | awk '/^guarantee_/ {print $1, $2}' | tr '\n' ' ')" \
  "guarantee_bad_signature_refused 1 guarantee_stale_version_refused 1 " "the driver's guarantees hold"

finish
