#!/usr/bin/env bash
# Key-family scanner benchmark at 1M keys.
#
#   scripts/bench-keys.sh [--keys 1000000] [--passes 3] [--budget 50ms] [--interval 0ms] [--keep]
#   scripts/bench-keys.sh --keys 100000 --scrapes 40 [--scrape-interval 15s] [--compress 15] \
#       [--min-pass-interval 10m] [--debug]
#
# Starts a private redis-server (requirepass, free loopback port, temp dir), loads
# --keys Tenderly-shaped keys with redis-cli --pipe (sessions/JWTs/OTPs/rate limits
# with TTLs, user hashes without, some other-namespace keys), then runs
# examples/key_scan_bench.rs in release mode: advance() once per simulated scrape
# until --passes passes complete, and prints per-call latency (median/p99/max),
# calls and wall time per pass, and Redis' own time per SCAN/PTTL/MEMORY USAGE.
# With --scrapes: a scrape cadence (time compressed by --compress, the pacing
# interval too) printing the scan's Redis server time per scrape and share,
# exporter commands per second, pass duration and pass age; --min-pass-interval 0s
# is the unpaced behaviour. --debug builds the dev profile (no release build).
# A benchmark, not a test. Every wait is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEYS=1000000
PASSES=3
BUDGET=50ms
INTERVAL=0ms
KEEP=0
CADENCE=()
PROFILE=release
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keys) KEYS="$2"; shift 2 ;;
        --passes) PASSES="$2"; shift 2 ;;
        --budget) BUDGET="$2"; shift 2 ;;
        --interval) INTERVAL="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --scrapes | --scrape-interval | --compress | --min-pass-interval) CADENCE+=("$1" "$2"); shift 2 ;;
        --debug) PROFILE=debug; shift ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
for tool in redis-server redis-cli python3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench-keys: $tool is required" >&2; exit 1; }
done

DIR="$(mktemp -d -t tenderly-bench-keys.XXXXXX)"
chmod 700 "$DIR"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
PASSWORD="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
cat >"$DIR/redis.conf" <<CONF
bind 127.0.0.1
port $PORT
protected-mode yes
dir $DIR
logfile redis.log
save ""
appendonly no
requirepass $PASSWORD
CONF
redis-server "$DIR/redis.conf" --daemonize yes --pidfile "$DIR/redis.pid" >/dev/null
cleanup() {
    if [[ -f "$DIR/redis.pid" ]]; then kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true; fi
    if [[ "$KEEP" == 0 ]]; then rm -rf "$DIR"; else echo "kept $DIR"; fi
}
trap cleanup EXIT
export REDISCLI_AUTH="$PASSWORD"
for _ in $(seq 100); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

echo "loading $KEYS keys into 127.0.0.1:$PORT ..."
python3 - "$KEYS" >"$DIR/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
# Proportions of the real capture (200 session, 50 jwt, 30 ratelimit, 20 user, 10 otp per 310),
# plus 2% under tenderly: with no known prefix and 2% outside the namespace.
for i in range(n):
    r = i % 100
    if r < 60:
        cmd("SET", "tenderly:session:%016x" % i, '{"userId":"test-user-%06d","role":"patient"}' % (i % 1000), "EX", "3600")
    elif r < 75:
        cmd("SET", "tenderly:jwt:%016x" % i, "fake.test-jwt.%d" % i, "EX", "900")
    elif r < 78:
        cmd("SET", "tenderly:otp:test-user-%08d" % i, "%06d" % (i % 1000000), "EX", "300")
    elif r < 87:
        cmd("SET", "tenderly:ratelimit:198.51.100.%d:%d" % (i % 254, i), "1", "EX", "600")
    elif r < 96:
        cmd("HSET", "tenderly:user:test-user-%08d" % i, "role", "patient", "mfa", "enabled", "failedLogins", "0")
    elif r < 98:
        cmd("SET", "tenderly:audit:%d" % i, "x")
    else:
        cmd("SET", "cache:%d" % i, "y", "EX", "86400")
PY
redis-cli -p "$PORT" --pipe <"$DIR/load.resp" | tail -1
rm -f "$DIR/load.resp"
echo "dbsize: $(redis-cli -p "$PORT" dbsize)  used_memory: $(redis-cli -p "$PORT" info memory | grep '^used_memory_human' | tr -d '\r')"

cd "$ROOT"
if [[ "$PROFILE" == release ]]; then
    cargo build --release --example key_scan_bench -q
else
    cargo build --example key_scan_bench -q
fi
if [[ ${#CADENCE[@]} -gt 0 ]]; then
    REDIS_PASSWORD="$PASSWORD" "$ROOT/target/$PROFILE/examples/key_scan_bench" \
        --addr "127.0.0.1:$PORT" --budget "$BUDGET" "${CADENCE[@]}"
else
    REDIS_PASSWORD="$PASSWORD" "$ROOT/target/$PROFILE/examples/key_scan_bench" \
        --addr "127.0.0.1:$PORT" --passes "$PASSES" --budget "$BUDGET" --interval "$INTERVAL"
fi
