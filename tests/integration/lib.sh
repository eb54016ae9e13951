# lib.sh - helpers for docket's shell integration tests: a temp dir, the
# binary under test, and checks that print what was expected and what came.
set -u
DOCKET=${DOCKET:?set DOCKET to the docket binary}
T=$(mktemp -d "${TMPDIR:-/tmp}/docket-it-XXXXXX")
trap 'rm -rf "$T"' EXIT
export DOCKET_PASSPHRASE=integration-test-pass
export DOCKET_LEDGER=$T/ledger
PASSED=0 FAILED=0

fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
ok() { PASSED=$((PASSED + 1)); }

# expect_exit CODE CMD...: run CMD, check its exit code; output in $OUT, $ERR
expect_exit() {
  local want=$1; shift
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
  if [ "$got" -ne "$want" ]; then
    fail "'$*' exited $got, wanted $want; stderr: $ERR"
    return 1
  fi
  ok
}

# contains HAYSTACK NEEDLE WHAT
contains() {
  case "$1" in *"$2"*) ok ;; *) fail "$3: '$1' does not contain '$2'" ;; esac
}

equals() {
  [ "$1" = "$2" ] && ok || fail "$3: '$1' != '$2'"
}

# jget JSON EXPR: a field via python3's json (present on Debian) or jq
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2" <<<"$1"; }
# Damage a ledger's stored head: raise its seq by 1000 in every copy of the meta row in
# data.mdb FILE (a node of 48 data bytes, flags 0, the 4-byte key "head").
raise_head() {
  python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
pat = b'\x30\x00\x00\x00\x00\x00\x04\x00head'
i, n = b.find(pat), 0
while i >= 0:
    j = i + len(pat)
    b[j:j + 8] = (int.from_bytes(b[j:j + 8], 'big') + 1000).to_bytes(8, 'big')
    i, n = b.find(pat, j), n + 1
assert n > 0, 'head row not found in data.mdb'
open(p, 'wb').write(bytes(b))
PY
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
