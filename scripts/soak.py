#!/usr/bin/env python3
"""Load and soak benchmark for tenderly-exporter. Python 3 stdlib only.

Normally run through scripts/soak.sh, which builds the release binaries first.

Setup
  * a private redis-server on a free loopback port (requirepass with a random
    password, no persistence, maxmemory 256mb), loaded with --keys (default
    100000) Tenderly-shaped keys through `redis-cli --pipe` (the data generator of
    scripts/bench_redis.py, imported from it);
  * the MongoDB wire-protocol replay server
    (`target/release/examples/mongo_replay --scenario primary`);
  * the exporter with both as default targets (`--redis.addr`, `--mongodb.uri`),
    the Redis password in REDIS_PASSWORD, `--web.max-requests` = --concurrency (64)
    so the cap does not turn load into 503s (any 503 is still counted and reported
    separately), `--log.level warn`.

Load
  --concurrency (64) threads scrape `/metrics` for --seconds (default 300). Each
  thread keeps ONE HTTP/1.1 keep-alive connection (`--fresh` opens a new connection
  per request instead) and sends Prometheus' Accept and
  X-Prometheus-Scrape-Timeout-Seconds: 10 headers; a request is timed from send to
  the last body byte. An error is anything but a 200 whose body ends in `# EOF`
  and carries `redis_up 1` and `mongodb_up 1`; a failed connection is reopened.
  The first --warmup seconds (default 10) of load are not measured, so RSS and fd
  "start" figures include the steady-state allocations of 64 concurrent requests.

Report (markdown on stdout, and --out FILE)
  errors (must be 0), 503s, p50/p99 (nearest rank) latency, requests per second,
  RSS (VmRSS) at start and end and growth %, VmHWM, open fds (/proc/PID/fd) at
  start and end, Redis `cmdstat_info` calls delta vs requests, and
  `tenderly_exporter_scrapes_total` vs `tenderly_exporter_http_requests_total`
  deltas from the exporter's own counters (single-flight keeps collections far
  below requests). The Python client runs on the same machine and competes with
  the exporter for CPU: RPS is a floor, not the exporter's ceiling.
"""

import argparse
import http.client
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_redis import (ACCEPT, BenchError, Resp, free_port, info_fields, log, log_tail,  # noqa: E402
                         percentile, status_kib, tenderly_data, wait_for)


def http_get(port, path, timeout=30.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": ACCEPT, "X-Prometheus-Scrape-Timeout-Seconds": "10"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def sample_value(body, name, labels=()):
    """Sum of the samples named `name` carrying every label pair in `labels`."""
    total, found = 0.0, False
    for line in body.splitlines():
        if line.startswith("#") or not line:
            continue
        series, _, value = line.rpartition(" ")
        metric = series.split("{", 1)[0]
        if metric != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels):
            total += float(value)
            found = True
    return total if found else None


def info_calls(port, password):
    conn = Resp(port, password)
    try:
        stats = info_fields(conn.call("INFO", "commandstats"))
    finally:
        conn.close()
    value = stats.get("cmdstat_info", "")
    kv = dict(item.split("=", 1) for item in value.split(",") if "=" in item)
    return int(kv.get("calls", 0))


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def healthy_body(status, body):
    return (status == 200 and body.endswith("# EOF\n")
            and sample_value(body, "redis_up") == 1.0 and sample_value(body, "mongodb_up") == 1.0)


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.ok = 0
        self.errors = 0
        self.unavailable = 0
        self.error_kinds = {}

    def add(self, seconds, outcome):
        with self.lock:
            if outcome == "ok":
                self.ok += 1
                self.latencies.append(seconds)
            elif outcome == "503":
                self.unavailable += 1
            else:
                self.errors += 1
                self.error_kinds[outcome] = self.error_kinds.get(outcome, 0) + 1


def scraper(port, stop_at, measure_from, counters, fresh):
    conn = None
    while True:
        now = time.monotonic()
        if now >= stop_at:
            break
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start = time.perf_counter()
        outcome = "ok"
        try:
            conn.request("GET", "/metrics", headers={
                "Accept": ACCEPT, "X-Prometheus-Scrape-Timeout-Seconds": "10",
                "Connection": "close" if fresh else "keep-alive"})
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace")
            if resp.status == 503:
                outcome = "503"
            elif not healthy_body(resp.status, body):
                outcome = f"HTTP {resp.status} unhealthy body"
            if fresh or resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            outcome = type(e).__name__
            conn.close()
            conn = None
        seconds = time.perf_counter() - start
        if now >= measure_from:
            counters.add(seconds, outcome)
    if conn is not None:
        conn.close()


def exporter_counters(port):
    # During the load all --web.max-requests slots may be taken: retry a 503 (bounded).
    deadline = time.monotonic() + 20
    while True:
        status, body = http_get(port, "/metrics")
        if status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if status != 200:
        raise BenchError(f"exporter answered HTTP {status}")
    return {
        # The redis / mongodb collector only (the target also has key-scan,
        # posture and mongodb_* sub-collectors, each with its own count).
        "scrapes_redis": sample_value(body, "tenderly_exporter_scrapes_total",
                                      [("target", "redis"), ("collector", "redis")]) or 0.0,
        "scrapes_mongodb": sample_value(body, "tenderly_exporter_scrapes_total",
                                        [("target", "mongodb"), ("collector", "mongodb")]) or 0.0,
        "http_metrics": sample_value(body, "tenderly_exporter_http_requests_total", [("handler", "metrics")]) or 0.0,
    }


def run(args, workdir, cleanup):
    password = secrets.token_hex(16)
    redis_port = free_port()
    conf = os.path.join(workdir, "redis.conf")
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"bind 127.0.0.1\nport {redis_port}\nprotected-mode yes\ndaemonize no\ndir {workdir}\n"
                f"logfile {workdir}/redis.log\nrequirepass {password}\nsave \"\"\nappendonly no\n"
                "maxmemory 256mb\nmaxmemory-policy allkeys-lru\nlatency-monitor-threshold 1\n")
    log(f"starting redis-server on 127.0.0.1:{redis_port}")
    redis = subprocess.Popen([args.redis_server, conf], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cleanup.append(lambda: stop_process(redis))

    def ping():
        conn = Resp(redis_port, password, timeout=1)
        try:
            return conn.call("PING") == "PONG"
        finally:
            conn.close()
    wait_for("redis-server PING", 10, ping, redis, f"{workdir}/redis.log")

    log(f"loading {args.keys} Tenderly-shaped keys with redis-cli --pipe")
    env = dict(os.environ, REDISCLI_AUTH=password)
    pipe = subprocess.run([args.redis_cli, "-h", "127.0.0.1", "-p", str(redis_port), "--pipe"],
                          input=tenderly_data(args.keys), env=env, capture_output=True, timeout=120)
    out = pipe.stdout.decode(errors="replace")
    if pipe.returncode != 0 or "errors: 0," not in out:
        raise BenchError(f"redis-cli --pipe failed:\n{out}{pipe.stderr.decode(errors='replace')}")
    conn = Resp(redis_port, password)
    try:
        dbsize = conn.call("DBSIZE")
    finally:
        conn.close()

    mongo_port = free_port()
    log(f"starting the MongoDB replay server (primary) on 127.0.0.1:{mongo_port}")
    replay_log = f"{workdir}/replay.log"
    with open(replay_log, "ab") as logf:
        replay = subprocess.Popen([args.replay, "--scenario", "primary", "--listen", f"127.0.0.1:{mongo_port}"],
                                  stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    cleanup.append(lambda: stop_process(replay))

    exporter_port = free_port()
    exporter_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("REDIS", "MONGODB", "TENDERLY_EXPORTER"))}
    exporter_env["REDIS_PASSWORD"] = password
    cmd = [args.exporter, "--web.listen-address", f"127.0.0.1:{exporter_port}",
           "--redis.addr", f"redis://127.0.0.1:{redis_port}",
           "--mongodb.uri", f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true",
           "--web.max-requests", str(args.max_requests), "--log.level", "warn"]
    exporter_log = f"{workdir}/exporter.log"
    log(f"starting tenderly-exporter on 127.0.0.1:{exporter_port} (--web.max-requests {args.max_requests})")
    with open(exporter_log, "ab") as logf:
        exporter = subprocess.Popen(cmd, env=exporter_env, stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=subprocess.STDOUT)
    cleanup.append(lambda: stop_process(exporter))
    wait_for("the exporter to report redis_up 1 and mongodb_up 1", 30,
             lambda: healthy_body(*http_get(exporter_port, "/metrics")), exporter, exporter_log)
    pid = exporter.pid
    rss_idle = status_kib(pid, "VmRSS")
    fds_idle = open_fds(pid)

    counters = Counters()
    t_start = time.monotonic()
    measure_from = t_start + args.warmup
    stop_at = measure_from + args.seconds
    log(f"{args.concurrency} scrapers, {'fresh connections' if args.fresh else 'keep-alive'}: "
        f"{args.warmup}s warm-up, then {args.seconds}s measured")
    threads = [threading.Thread(target=scraper, args=(exporter_port, stop_at, measure_from, counters, args.fresh),
                                daemon=True) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, measure_from - time.monotonic()))
    rss_start, fds_start = status_kib(pid, "VmRSS"), open_fds(pid)
    info_start, ctr_start = info_calls(redis_port, password), exporter_counters(exporter_port)
    t_measure = time.monotonic()
    rss_samples, fds_samples = [rss_start], [fds_start]
    # Sample every 5 s while the load runs; "end" is the last sample under load,
    # taken about a second before the scrapers stop (so it compares with "start").
    while time.monotonic() < stop_at - 1.0:
        time.sleep(min(5.0, max(0.0, stop_at - 1.0 - time.monotonic())))
        if exporter.poll() is not None:
            raise BenchError(f"the exporter exited with {exporter.returncode}{log_tail(exporter_log)}")
        rss_samples.append(status_kib(pid, "VmRSS"))
        fds_samples.append(open_fds(pid))
    rss_end, fds_end = rss_samples[-1], fds_samples[-1]
    for t in threads:
        t.join(timeout=60)
    if any(t.is_alive() for t in threads):
        raise BenchError("a scraper thread did not finish within 60 s of the end")
    measured = time.monotonic() - t_measure
    hwm, fds_after = status_kib(pid, "VmHWM"), open_fds(pid)
    info_end, ctr_end = info_calls(redis_port, password), exporter_counters(exporter_port)

    requests = counters.ok + counters.errors + counters.unavailable
    lat = counters.latencies or [float("nan")]
    # The counter snapshots are /metrics requests too: the end snapshot counts the
    # start one; the INFO snapshots are INFO calls themselves (one each).
    http_delta = ctr_end["http_metrics"] - ctr_start["http_metrics"] - 1
    rows = [
        ("duration measured", f"{measured:.0f} s (after {args.warmup} s warm-up)"),
        ("scrapers", f"{args.concurrency} threads, {'fresh connection per request' if args.fresh else 'HTTP/1.1 keep-alive'}"),
        ("--web.max-requests", str(args.max_requests)),
        ("Redis keys", str(dbsize)),
        ("requests", str(requests)),
        ("errors", f"{counters.errors}" + (f" {counters.error_kinds}" if counters.error_kinds else "")),
        ("503 (over --web.max-requests; the counter snapshots take a slot too)", str(counters.unavailable)),
        ("requests per second", f"{requests / measured:.1f}"),
        ("latency p50", f"{percentile(lat, 50) * 1000:.2f} ms"),
        ("latency p99", f"{percentile(lat, 99) * 1000:.2f} ms"),
        ("latency max", f"{max(lat) * 1000:.2f} ms"),
        ("RSS idle (before load)", f"{rss_idle / 1024:.1f} MiB"),
        ("RSS start (after warm-up)", f"{rss_start / 1024:.1f} MiB"),
        ("RSS end", f"{rss_end / 1024:.1f} MiB"),
        ("RSS growth start→end", f"{(rss_end - rss_start) * 100 / rss_start:+.1f} %"),
        ("RSS min/max during run", f"{min(rss_samples) / 1024:.1f} / {max(rss_samples) / 1024:.1f} MiB"),
        ("VmHWM", f"{hwm / 1024:.1f} MiB"),
        ("open fds idle / start / end (under load) / after load", f"{fds_idle} / {fds_start} / {fds_end} / {fds_after}"),
        ("open fds min/max during run", f"{min(fds_samples)} / {max(fds_samples)}"),
        ("Redis INFO calls (cmdstat_info delta)", f"{info_end - info_start - 1}"),
        ("INFO calls per request", f"{(info_end - info_start - 1) / max(requests, 1):.4f}"),
        ("exporter http_requests_total{handler=metrics} delta", f"{http_delta:.0f}"),
        ("exporter scrapes_total{target=redis,collector=redis} delta", f"{ctr_end['scrapes_redis'] - ctr_start['scrapes_redis']:.0f}"),
        ("exporter scrapes_total{target=mongodb,collector=mongodb} delta",
         f"{ctr_end['scrapes_mongodb'] - ctr_start['scrapes_mongodb']:.0f}"),
    ]
    lines = ["| measure | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    verdict = []
    if counters.errors:
        verdict.append(f"FAIL: {counters.errors} errors")
    if rss_end > rss_start * 1.10:
        verdict.append("FAIL: RSS grew more than 10 %")
    if abs(fds_end - fds_start) > args.concurrency:
        verdict.append("WARN: open fds moved by more than the number of scrapers")
    return "\n".join(lines) + "\n\n" + ("; ".join(verdict) if verdict else "OK: 0 errors, RSS growth < 10 %") + "\n"


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=300, help="measured duration (default 300)")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured load before measuring (default 10)")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--max-requests", type=int, default=None, help="--web.max-requests (default: --concurrency)")
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--fresh", action="store_true", help="a new TCP connection per request (default keep-alive)")
    p.add_argument("--exporter", default=os.path.join(root, "target/release/tenderly-exporter"))
    p.add_argument("--replay", default=os.path.join(root, "target/release/examples/mongo_replay"))
    p.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    p.add_argument("--redis-cli", default=shutil.which("redis-cli") or "/usr/bin/redis-cli")
    p.add_argument("--out", help="also write the report to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = p.parse_args()
    if args.max_requests is None:
        args.max_requests = args.concurrency
    for path in (args.exporter, args.replay, args.redis_server, args.redis_cli):
        if not os.access(path, os.X_OK):
            print(f"soak: {path} is missing or not executable", file=sys.stderr)
            return 1
    workdir = tempfile.mkdtemp(prefix="tenderly-soak-")
    os.chmod(workdir, 0o700)
    cleanup = []

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        report = run(args, workdir, cleanup)
        print(report)
        if args.out:
            with open(args.out, "w") as f:
                f.write(report)
        return 0 if "FAIL" not in report else 1
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        print(f"soak: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    finally:
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as e:  # keep cleaning up the rest
                print(f"soak: cleanup: {e}", file=sys.stderr)
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
