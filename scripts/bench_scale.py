#!/usr/bin/env python3
"""Scale benchmark: one tenderly-exporter holding --targets Redis targets (1,000 by
default) spread over --servers real redis-server processes on loopback, every target
probed through /probe?target=NAME. Python 3 stdlib only.

Normally run through scripts/bench-scale.sh, which checks the tools and builds the
release binary first.

Setup
  * --servers private redis-servers (requirepass with a random password, no
    persistence, free loopback ports, temp dir), each loaded with --keys
    Tenderly-shaped keys so the key-family scan has something to walk;
  * a --config.file with --targets Redis targets r0000, r0001, ... assigned to the
    servers round-robin (several targets per server, as several names for one
    database would be), each with password_file: (the exporter's default
    collectors: Redis INFO & co., Tenderly key families, Tenderly posture);
  * the exporter started with that file and --web.max-requests (default 40).

Method
  A round probes every target once, in a random order, from --concurrency client
  threads; each probe is a fresh HTTP/1.1 connection with Prometheus' Accept header
  and X-Prometheus-Scrape-Timeout-Seconds: 10, timed from connect to the last body
  byte, and must answer 200 with `redis_up 1` (any other answer is counted and
  reported as a failure). Round 1 is cold (every target connects, and the posture
  check, cached for 5 minutes, runs once per target); rounds 2..--rounds are steady.
  Measured:
    * exporter CPU per probe = (utime+stime from /proc/PID/stat) delta over the
      steady rounds / their probes (the client threads run in this process and
      are not counted);
    * RSS (VmRSS) after each round and at the end, peak RSS (VmHWM);
    * open file descriptors: entries of /proc/PID/fd after each round;
    * connections per target: connected clients summed over the servers' CLIENT
      LIST (minus this script's own connection), split by name: the collection
      connection names itself tenderly-exporter; the key-scan connection is
      unnamed; the posture check's two connections exist only while it runs;
    * probe latency p50/p99/max (nearest rank) for the cold round and the steady
      rounds separately.
  Everything is bounded: each wait has a timeout and the whole run stops after
  --max-seconds with whatever it measured.

Results are printed as markdown and written to --out.
"""

import argparse
import concurrent.futures
import datetime
import http.client
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# The Redis client, process and wait helpers are bench_redis.py's (same directory).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_redis import (  # noqa: E402
    BenchError, Resp, RespErr, free_port, log, log_tail, status_kib, wait_for,
)

ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
          "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


# --- a tiny RESP client ------------------------------------------------------------------


def client_counts(port, password):
    """(named tenderly-exporter, other) connected clients, this connection excluded."""
    conn = Resp(port, password)
    try:
        conn.call("CLIENT", "SETNAME", "bench-scale")
        text = conn.call("CLIENT", "LIST")
    finally:
        conn.close()
    named = other = 0
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("name") == "bench-scale":
            continue
        if fields.get("name") == "tenderly-exporter":
            named += 1
        else:
            other += 1
    return named, other


def load_keys(port, password, n, seed):
    rng = random.Random(seed)
    conn = Resp(port, password)
    try:
        for i in range(n):
            kind = ("session", "jwt", "otp", "ratelimit")[i % 4]
            conn.send("SET", f"tenderly:{kind}:{rng.getrandbits(64):016x}", "bench", "EX", 3600)
        for _ in range(n):
            if isinstance(conn.read(), RespErr):
                raise BenchError("loading keys failed")
    finally:
        conn.close()


# --- processes ---------------------------------------------------------------------------


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid):
    return status_kib(pid, "Threads")


def get(port, path, timeout=30.0):
    """(seconds, status, body) for one request on a fresh connection."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": ACCEPT, "X-Prometheus-Scrape-Timeout-Seconds": "10"})
        resp = conn.getresponse()
        body = resp.read()
        return time.perf_counter() - start, resp.status, body
    finally:
        conn.close()


def redis_up(body):
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("redis_up "):
            return line.split()[1]
    return None


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


# --- the benchmark -------------------------------------------------------------------------

def probe_round(port, names, concurrency, deadline):
    """Latencies and failures of probing every name once."""
    order = list(names)
    random.shuffle(order)
    latencies, failures = [], []
    lock = threading.Lock()

    def one(name):
        if time.monotonic() > deadline:
            return
        try:
            seconds, status, body = get(port, f"/probe?target={name}")
            up = redis_up(body) if status == 200 else None
            with lock:
                latencies.append(seconds)
                if status != 200 or up != "1":
                    failures.append(f"{name}: HTTP {status}, redis_up {up}")
        except (OSError, http.client.HTTPException) as e:
            with lock:
                failures.append(f"{name}: {e}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, order))
    return latencies, failures


def run(args, tmp):
    exporter = os.path.abspath(args.exporter)
    if not os.access(exporter, os.X_OK):
        raise BenchError(f"{exporter} is not executable")
    redis_server = shutil.which("redis-server")
    if not redis_server:
        raise BenchError("redis-server is not installed")
    password = secrets.token_hex(16)
    password_file = os.path.join(tmp, "redis-password")
    with open(os.open(password_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(password + "\n")

    procs = []
    ports = []
    try:
        for i in range(args.servers):
            port = free_port()
            d = os.path.join(tmp, f"redis-{i}")
            os.mkdir(d)
            logf = open(os.path.join(d, "redis.log"), "w")
            p = subprocess.Popen(
                [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", d, "--requirepass", password, "--maxclients", "10000", "--protected-mode", "yes"],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            procs.append(p)
            ports.append(port)
            wait_for(f"redis-server on {port}", 10, lambda port=port: Resp(port, password).close() or True, p)
            load_keys(port, password, args.keys, seed=i)
        log(f"{args.servers} redis-servers up on ports {ports}, {args.keys} keys each")

        names = [f"r{i:04d}" for i in range(args.targets)]
        config = os.path.join(tmp, "targets.yml")
        with open(config, "w") as f:
            f.write("targets:\n")
            for i, name in enumerate(names):
                f.write(f"  - name: {name}\n    kind: redis\n    address: 127.0.0.1:{ports[i % len(ports)]}\n"
                        f"    password_file: {password_file}\n")
                if args.target_settings:
                    f.write(f"    {args.target_settings}\n")
        http_port = free_port()
        exporter_log = os.path.join(tmp, "exporter.log")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("REDIS_", "MONGODB_", "TENDERLY_"))}
        env["TENDERLY_EXPORTER_LOG_LEVEL"] = "warn"
        with open(exporter_log, "w") as logf:
            exp = subprocess.Popen(
                [exporter, "--config.file", config, "--web.listen-address", f"127.0.0.1:{http_port}",
                 "--web.max-requests", str(args.max_requests), *args.exporter_arg],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        procs.append(exp)
        wait_for("exporter /-/ready", 30, lambda: get(http_port, "/-/ready", 2)[1] == 200, exp, exporter_log)
        idle = {"rss_kib": status_kib(exp.pid, "VmRSS"), "fds": open_fds(exp.pid), "threads": threads(exp.pid)}
        log(f"exporter ready with {args.targets} targets: RSS {idle['rss_kib'] / 1024:.1f} MiB, "
            f"{idle['fds']} fds")

        deadline = time.monotonic() + args.max_seconds
        rounds = []
        for r in range(args.rounds):
            if time.monotonic() > deadline:
                log("time budget spent; stopping early")
                break
            cpu0, t0 = cpu_seconds(exp.pid), time.monotonic()
            latencies, failures = probe_round(http_port, names, args.concurrency, deadline)
            cpu1, t1 = cpu_seconds(exp.pid), time.monotonic()
            named = other = 0
            for port in ports:
                n, o = client_counts(port, password)
                named, other = named + n, other + o
            rounds.append({
                "round": r + 1, "probes": len(latencies), "failures": failures, "latencies": latencies,
                "cpu": cpu1 - cpu0, "wall": t1 - t0,
                "rss_kib": status_kib(exp.pid, "VmRSS"), "fds": open_fds(exp.pid),
                "threads": threads(exp.pid), "named": named, "other": other,
            })
            log(f"round {r + 1}: {len(latencies)} probes in {t1 - t0:.1f}s, {len(failures)} failed, "
                f"p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
                f"CPU {cpu1 - cpu0:.2f}s, RSS {rounds[-1]['rss_kib'] / 1024:.1f} MiB, fds {rounds[-1]['fds']}, "
                f"server connections {named} named + {other} other")
            for f in failures[:5]:
                log(f"  failed: {f}")
        hwm = status_kib(exp.pid, "VmHWM")
        final_rss = status_kib(exp.pid, "VmRSS")
        # /metrics: the exporter's own view (process_open_fds, resident memory).
        _, _, self_metrics = get(http_port, "/metrics")
        if exp.poll() is not None:
            raise BenchError(f"the exporter exited with {exp.returncode}{log_tail(exporter_log)}")
        return report(args, ports, idle, rounds, hwm, final_rss, self_metrics)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def report(args, ports, idle, rounds, hwm, final_rss, self_metrics):
    if not rounds:
        raise BenchError("no round finished")
    cold, steady = rounds[0], rounds[1:]
    steady_lat = [x for r in steady for x in r["latencies"]]
    steady_probes = sum(r["probes"] for r in steady)
    steady_cpu = sum(r["cpu"] for r in steady)
    failures = sum(len(r["failures"]) for r in rounds)
    last = rounds[-1]
    n = args.targets
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    lines = [
        f"# tenderly-exporter scale benchmark ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"{n} Redis targets over {len(ports)} redis-server processes ({args.keys} keys each), "
        f"{len(rounds)} rounds of {n} probes from {args.concurrency} client threads, "
        f"--web.max-requests {args.max_requests}{''.join(' ' + a for a in args.exporter_arg)}"
        f"{'; every target with `' + args.target_settings + '`' if args.target_settings else ''}; "
        f"{os.cpu_count()} CPUs (shared).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| probes answering `redis_up 1` | {sum(r['probes'] for r in rounds) - failures} of "
        f"{sum(r['probes'] for r in rounds)} ({failures} failed) |",
        f"| RSS at start, targets configured, none probed | {idle['rss_kib'] / 1024:.1f} MiB |",
        f"| RSS after the last round | {final_rss / 1024:.1f} MiB |",
        f"| peak RSS (VmHWM) | {hwm / 1024:.1f} MiB |",
        f"| RSS per target (last round minus start) / targets | "
        f"{(last['rss_kib'] - idle['rss_kib']) / n:.1f} KiB |",
        f"| open fds at start / after the last round | {idle['fds']} / {last['fds']} |",
        f"| fds per target | {(last['fds'] - idle['fds']) / n:.2f} |",
        f"| server connections per target (collection, named) | {last['named'] / n:.2f} |",
        f"| server connections per target (other: key scan) | {last['other'] / n:.2f} |",
        f"| threads | {last['threads']} |",
        f"| cold round (connect + posture): p50 / p99 / max | {ms(percentile(cold['latencies'], 50))} / "
        f"{ms(percentile(cold['latencies'], 99))} / {ms(max(cold['latencies'], default=0))} |",
        f"| cold round: wall time, exporter CPU per probe | {cold['wall']:.1f} s, "
        f"{cold['cpu'] / max(cold['probes'], 1) * 1000:.2f} ms |",
    ]
    if steady:
        lines += [
            f"| steady rounds: p50 / p99 / max | {ms(percentile(steady_lat, 50))} / {ms(percentile(steady_lat, 99))}"
            f" / {ms(max(steady_lat, default=0))} |",
            f"| steady rounds: exporter CPU per probe | {steady_cpu / max(steady_probes, 1) * 1000:.2f} ms |",
            f"| steady rounds: probes per second (this machine) | "
            f"{steady_probes / max(sum(r['wall'] for r in steady), 1e-9):.0f} |",
        ]
    lines += ["", "Per round:", "",
              "| round | probes | failed | wall s | p50 ms | p99 ms | CPU s | RSS MiB | fds | conns named+other |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rounds:
        lines.append(
            f"| {r['round']} | {r['probes']} | {len(r['failures'])} | {r['wall']:.1f} | "
            f"{percentile(r['latencies'], 50) * 1000:.1f} | {percentile(r['latencies'], 99) * 1000:.1f} | "
            f"{r['cpu']:.2f} | {r['rss_kib'] / 1024:.1f} | {r['fds']} | {r['named']}+{r['other']} |")
    for name in ("process_open_fds", "process_resident_memory_bytes"):
        for line in self_metrics.decode(errors="replace").splitlines():
            if line.startswith(name + " "):
                lines.append(f"\nExporter's own {name} at the end: {line.split()[1]}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exporter", default=os.path.join(os.path.dirname(__file__), "..", "target", "release",
                                                           "tenderly-exporter"))
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--keys", type=int, default=1000, help="keys loaded into each server")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of probing every target (first is cold)")
    parser.add_argument("--concurrency", type=int, default=32, help="client threads (keep below --max-requests)")
    parser.add_argument("--max-requests", type=int, default=40, help="the exporter's --web.max-requests")
    parser.add_argument("--max-seconds", type=float, default=240, help="stop probing after this long")
    parser.add_argument("--exporter-arg", action="append", default=[],
                        help="an extra exporter flag, e.g. --exporter-arg=--no-collector.tenderly.keys (repeatable)")
    parser.add_argument("--target-settings", help="one more line for every target, e.g. "
                        "'collectors: {keys: false, posture: false}'")
    parser.add_argument("--out", help="also write the markdown report here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, config)")
    args = parser.parse_args()
    if args.targets < 1 or args.servers < 1 or args.rounds < 1 or args.concurrency < 1:
        parser.error("--targets, --servers, --rounds and --concurrency must be positive")
    tmp = tempfile.mkdtemp(prefix="tenderly-bench-scale-")
    try:
        return run(args, tmp)
    except BenchError as e:
        print(f"bench-scale: {e}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
