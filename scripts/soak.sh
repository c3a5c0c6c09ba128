#!/usr/bin/env bash
# Load and soak benchmark: 64 concurrent scrapers against the exporter for several
# minutes, on a Tenderly-shaped Redis (~100k keys) and the MongoDB replay server.
#
#   scripts/soak.sh [--seconds 300] [--warmup 10] [--concurrency 64] [--keys 100000]
#                   [--max-requests N] [--fresh] [--out FILE] [--keep] [--no-build]
#
# Reports errors (must be 0), 503s, p50/p99 latency, requests per second, RSS at
# start and end (growth must stay under 10 %), open fds, and Redis INFO calls and
# the exporter's scrapes_total vs http_requests_total (single-flight at work).
# The exporter runs with --web.max-requests = --concurrency so 64 scrapers are not
# refused by the default cap of 40. Method: the header of scripts/soak.py (Python 3
# stdlib only). A benchmark, not a test; exits 1 on errors or RSS growth >= 10 %.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
PASS_THROUGH=()
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        -h | --help)
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
            echo
            exec python3 "$ROOT/scripts/soak.py" --help
            ;;
        *) PASS_THROUGH+=("$arg") ;;
    esac
done

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if ((${#missing[@]})); then
    echo "soak: missing tools; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

if ((BUILD)); then
    echo "==> cargo build --release --bin tenderly-exporter --example mongo_replay" >&2
    (cd "$ROOT" && cargo build --release --bin tenderly-exporter --example mongo_replay)
fi
for bin in target/release/tenderly-exporter target/release/examples/mongo_replay; do
    if [[ ! -x "$ROOT/$bin" ]]; then
        echo "soak: $ROOT/$bin is missing; run without --no-build" >&2
        exit 1
    fi
done

# Python owns every process it starts and stops them in `finally` (errors, Ctrl-C,
# SIGTERM), so exec keeps signal delivery direct.
exec python3 "$ROOT/scripts/soak.py" ${PASS_THROUGH[@]+"${PASS_THROUGH[@]}"}
