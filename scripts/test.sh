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
trap 'rm -f "$log"' EXIT
status=0
cargo test --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
# Sum every harness's "test result:" line into one closing line.
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
