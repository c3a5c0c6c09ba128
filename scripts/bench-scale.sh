#!/usr/bin/env bash
# Scale benchmark: one exporter, 1,000 Redis targets over a few real redis-servers
# on loopback, every target probed through /probe?target=NAME.
#
#   scripts/bench-scale.sh [--targets 1000] [--servers 4] [--rounds 4] [--concurrency 32]
#                          [--max-requests 40] [--keys 1000] [--out FILE] [--no-build] [--keep]
#
# Reports (markdown, stdout and --out): probes answering redis_up 1, RSS (start, per
# round, peak), open fds, server connections per target (CLIENT LIST), probe latency
# p50/p99 for the cold and the steady rounds, exporter CPU per probe. The method is
# documented at the top of scripts/bench_scale.py (Python 3 stdlib only), which does
# the work; this wrapper checks the tools and builds first. Exits 1 when any probe
# failed to answer redis_up 1. Every wait is bounded; probing stops after
# --max-seconds (240 by default); a run at the defaults takes about 1-2 minutes.
# Results and how to read them: docs/scaling.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
PASS_THROUGH=()
for arg in "$@"; do
    case "$arg" in
        --no-build) BUILD=0 ;;
        -h | --help)
            sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
            echo
            exec python3 "$ROOT/scripts/bench_scale.py" --help
            ;;
        *) PASS_THROUGH+=("$arg") ;;
    esac
done

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ((${#missing[@]})); then
    echo "bench-scale: missing tools; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

if ((BUILD)); then
    echo "==> cargo build --release" >&2
    (cd "$ROOT" && cargo build --release --locked)
fi
if [[ ! -x "$ROOT/target/release/tenderly-exporter" ]]; then
    echo "bench-scale: $ROOT/target/release/tenderly-exporter is missing; run without --no-build" >&2
    exit 1
fi

# Each target holds about two connections (docs/scaling.md); make sure the
# soft limit on open files is not what fails first.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec python3 "$ROOT/scripts/bench_scale.py" --exporter "$ROOT/target/release/tenderly-exporter" \
    ${PASS_THROUGH[@]+"${PASS_THROUGH[@]}"}
