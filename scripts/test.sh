#!/usr/bin/env bash
# The test command: installs missing system packages (redis-server), then runs
# every test. Live tests start their own redis-server processes on free
# loopback ports; MongoDB tests use the replay server unless MONGODB_TEST_URI is set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo test --all-targets "$@"
