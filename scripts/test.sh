#!/usr/bin/env bash
# The test command: installs missing system packages (redis-server, prometheus,
# alertmanager, openssl, curl), then runs every test (unit tests and the one
# integration binary). Live tests start their own redis-server processes on free
# loopback ports; MongoDB tests use the wire-protocol replay server, and also a
# real server when MONGODB_TEST_URI is set. Ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp)
# Tests that could not run record themselves here (tests/it/support/process.rs,
# `skip`): they count as skipped, not passed. Under CI=true a missing required
# tool fails its test instead.
export TENDERLY_TEST_SKIP_LOG
TENDERLY_TEST_SKIP_LOG=$(mktemp)
trap 'rm -f "$log" "$TENDERLY_TEST_SKIP_LOG"' EXIT
status=0
cargo test --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
if [[ -s $TENDERLY_TEST_SKIP_LOG ]]; then
  echo "skipped at run time (counted as skipped, not passed):"
  sed 's/^/  /' "$TENDERLY_TEST_SKIP_LOG"
fi
# Sum every harness's "test result:" line into one closing line; tests that
# skipped themselves at run time move from passed to skipped.
awk -v runtime_skips="$(wc -l <"$TENDERLY_TEST_SKIP_LOG")" '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p - runtime_skips, f, s + runtime_skips }' "$log"
exit "$status"
