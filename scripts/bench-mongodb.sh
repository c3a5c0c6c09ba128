#!/usr/bin/env bash
# MongoDB collector benchmark against the wire-protocol replay server (a
# benchmark, not a test). Measures, for a scrape of a replica-set primary
# (serverStatus 8.0.4 + replSetGetStatus + config + oplog + currentOp + dbStats
# + profiler):
#   * the exporter: median/p99 scrape latency over HTTP, CPU per scrape
#     (/proc/PID/stat utime+stime delta over N scrapes), peak RSS (VmHWM);
#   * the floor: the same commands sent by the same driver with the same
#     concurrency and no parsing/encoding/HTTP (examples/mongo_floor.rs).
# Exporter-added CPU per scrape = exporter CPU - floor CPU.
# The replay server runs in its own process; its CPU is not counted.
#
#   scripts/bench-mongodb.sh [--scrapes 300] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
scrapes=300
build=1
while (($#)); do
  case "$1" in
    --scrapes) scrapes="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if ((build)); then
  cargo build --release --quiet --bin tenderly-exporter --example mongo_replay --example mongo_floor
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port); eport=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
target/release/examples/mongo_replay --scenario primary --listen "127.0.0.1:$rport" >/dev/null &
pids+=($!)
uri="mongodb://127.0.0.1:$rport/?directConnection=true"
target/release/tenderly-exporter --web.listen-address "127.0.0.1:$eport" --mongodb.uri "$uri" --log.level warn &
epid=$!; pids+=("$epid")
for _ in $(seq 100); do
  curl -fs "127.0.0.1:$eport/-/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
python3 - "$eport" "$epid" "$scrapes" <<'PY'
import http.client, sys, time
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0
def scrape():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    t = time.perf_counter()
    c.request("GET", "/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    body = c.getresponse().read()
    c.close()
    assert b"mongodb_up 1" in body, "mongodb_up is not 1"
    return (time.perf_counter() - t) * 1000
for _ in range(20): scrape()
c0 = cpu(); lat = []
for _ in range(n):
    lat.append(scrape()); time.sleep(0.005)
c1 = cpu()
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, max(0, int(len(lat) * q + 0.999999) - 1))]
hwm = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM")][0].split()[1]
print(f"exporter {pick(0.5):.3f} {pick(0.99):.3f} {(c1 - c0) * 1000 / n:.3f} {int(hwm) / 1024:.1f}")
PY
floor=$(target/release/examples/mongo_floor "$uri" "$scrapes")
echo "floor $floor"
