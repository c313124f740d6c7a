#!/usr/bin/env bash
# Tests of the set-up's failure behaviour, against the real apt and the real
# services (scripts/test.sh runs them): an install that fails stops the
# set-up naming the package, the private trixie apt configuration never
# reaches the rest of the set-up, and the closing checks exit non-zero naming
# what is missing.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1"; printf '     %s\n' "${@:2}"; }

# 1. apt_install of a package apt cannot find stops, naming it; nothing after it runs.
out=$(bash -c '
  set -euo pipefail
  . "$1/scripts/setup/lib.sh"
  APT_UPDATED=1 INSTALLED_RECORD=$(mktemp)
  apt_install vigil-no-such-package
  echo "went on after a failed install"
' _ "$ROOT" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q 'apt-get install failed for: vigil-no-such-package' <<<"$out" \
  && ! grep -q 'went on' <<<"$out"; then
  pass "a failed apt-get install stops the set-up and names the package"
else
  fail "a failed apt-get install stops the set-up and names the package" "exit $rc" "$out"
fi

# 2. The extension step (its real apt commands, with the compiles replaced by
#    marker files) leaves the environment alone: afterwards the set-up still
#    sees Debian's own lists (chromium has a candidate). It once exported the
#    private trixie configuration, and chromium could not be located.
out=$(bash -c '
  set -euo pipefail
  . "$1/scripts/setup/lib.sh"
  PG_MAJOR=15 PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config PG_BUILD_PKGS=()
  . "$1/scripts/setup/extensions.sh"
  WORK=$(mktemp -d)
  have_ext() { [ -f "$WORK/$1" ]; }
  build_pgvector() { apt-cache -c "$1" showsrc pgvector | grep -q "^Package: pgvector" && touch "$WORK/vector.so"; }
  build_timescaledb() { touch "$WORK/timescaledb.so"; }
  install_pg_extensions
  echo "APT_CONFIG=${APT_CONFIG:-unset}"
  apt-cache policy chromium | grep Candidate
  rm -rf "$WORK"
' _ "$ROOT" 2>&1)
if grep -q 'pgvector and TimescaleDB installed' <<<"$out" && grep -q 'APT_CONFIG=unset' <<<"$out" \
  && grep -q 'Candidate: [0-9]' <<<"$out"; then
  pass "the private apt configuration does not leak into the rest of the set-up"
else
  fail "the private apt configuration does not leak into the rest of the set-up" "$out"
fi

# 3. The closing checks exit non-zero and name what is missing.
out=$(VIGIL_MODEL_HOME=/nonexistent/vigil-models "$ROOT/scripts/setup/verify.sh" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q 'FAIL  embedding model .*missing: /nonexistent/vigil-models' <<<"$out" \
  && grep -q 'not ready, 3 check(s) failed' <<<"$out" && grep -q '^ok    CREATE EXTENSION vector' <<<"$out"; then
  pass "the closing checks exit non-zero naming each missing file"
else
  fail "the closing checks exit non-zero naming each missing file" "exit $rc" "$out"
fi

echo "setup: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
