#!/usr/bin/env bash
# Side-by-side benchmark of tenderly-exporter and Debian's prometheus-redis-exporter
# (oliver006/redis_exporter) against the same private Redis.
#
#   scripts/bench-redis.sh [--scrapes 1000] [--runs 3] [--warmup 20] [--keys 100000]
#                          [--all-collectors] [--out FILE] [--no-build] [--keep]
#
# Starts a private redis-server (requirepass, free loopback port, temp dir), loads
# ~100k Tenderly-shaped keys with redis-cli --pipe, starts both exporters with the
# password in REDIS_PASSWORD (ours like for like: the key scan, posture, LATENCY HISTOGRAM and
# CLIENT LIST off unless --all-collectors), and reports as a markdown table (stdout and --out): median and
# p99 scrape latency, exporter CPU per scrape (identity and gzip), peak RSS, Redis
# server time and commands per scrape (INFO commandstats), each with the ratio
# ours/theirs and the floor (one INFO ALL round trip on a persistent connection),
# then the five targets of issue 10 per run and as the median of the runs.
# The measuring method is documented at the top of scripts/bench_redis.py, which does
# the work (Python 3 stdlib only); this wrapper checks the tools and builds first.
# A benchmark, not a test: it passes or fails nothing. Runs in about 1-3 minutes at
# the defaults; every wait is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
PASS_THROUGH=()
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        -h | --help)
            sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
            echo
            exec python3 "$ROOT/scripts/bench_redis.py" --help
            ;;
        *) PASS_THROUGH+=("$arg") ;;
    esac
done

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if ! command -v prometheus-redis-exporter >/dev/null 2>&1 && [[ ! -x /usr/bin/prometheus-redis-exporter ]]; then
    missing+=(prometheus-redis-exporter)
fi
if ((${#missing[@]})); then
    echo "bench: missing tools; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

if ((BUILD)); then
    echo "==> cargo build --release" >&2
    (cd "$ROOT" && cargo build --release)
fi
if [[ ! -x "$ROOT/target/release/tenderly-exporter" ]]; then
    echo "bench: $ROOT/target/release/tenderly-exporter is missing; run without --no-build" >&2
    exit 1
fi

# Python owns every process it starts and stops them in `finally` on errors, Ctrl-C
# and SIGTERM, so exec keeps signal delivery direct and needs no second trap here.
exec python3 "$ROOT/scripts/bench_redis.py" ${PASS_THROUGH[@]+"${PASS_THROUGH[@]}"}
