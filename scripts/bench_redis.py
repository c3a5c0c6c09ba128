#!/usr/bin/env python3
"""Side-by-side benchmark: tenderly-exporter vs Debian's prometheus-redis-exporter
(oliver006/redis_exporter) scraping the SAME private Redis. Python 3 stdlib only.

Normally run through scripts/bench-redis.sh, which checks the tools and builds the
exporter first.

Setup
  * a private redis-server on a free loopback port, in a temp dir, requirepass with a
    random password, no persistence, maxmemory 256mb allkeys-lru,
    latency-monitor-threshold 1 (the Tenderly redis.conf, with room for the data);
  * --keys (default 100000) Tenderly-shaped keys loaded with `redis-cli --pipe`, in
    the proportions of the real capture (per 310: 200 tenderly:session EX 3600,
    50 tenderly:jwt EX 900, 30 tenderly:ratelimit INCR+EXPIRE 60, 20 tenderly:user
    hashes without TTL, 10 tenderly:otp EX 300); all values synthetic;
  * both exporters with their default collectors, both given the password through
    the REDIS_PASSWORD environment variable (never argv), each on a free port.

Method
  Every scrape is an HTTP/1.1 request on a kept-alive connection (as Prometheus
  scrapes), with Prometheus' Accept header and X-Prometheus-Scrape-Timeout-Seconds: 10,
  timed from the first request byte to the last body byte by a minimal raw-socket
  client (so the client's own cost is small and the same for both exporters).
  Ours runs like for like by default: what redis_exporter 1.45 does not collect is
  off (the Tenderly key scan and posture checks, LATENCY HISTOGRAM, CLIENT LIST by
  name); --all-collectors keeps our defaults.
  The floor is what any exporter must spend: one `INFO ALL` round trip on a
  persistent, authenticated connection, timed the same way.
  Before measuring, both must return `redis_up 1`, and each gets --warmup scrapes.
  The solo measurements run in batches of 50 requests, interleaved: ours, theirs,
  the floor, ours with gzip, theirs with gzip, repeated N/50 times, so that all of
  them see the same machine state; within a batch only one of them is active, so
  the deltas of that batch are attributable to it:
    * exporter CPU per scrape = (utime+stime from /proc/PID/stat) delta / N;
    * Redis server time per scrape = sum of usec over all `INFO commandstats`
      entries, delta / N, minus the cost of the benchmark's own snapshot
      (AUTH + INFO commandstats, measured once by two back-to-back snapshots);
    * Redis commands per scrape = sum of calls, delta / N, same correction.
  The gzip batches send `Accept-Encoding: gzip` (CPU per gzip scrape); the floor
  batches give the floor's Redis server time.
  Phase C interleaves ours, theirs and the floor (rotating the order) N times each:
  median and p99 (nearest rank) wall latency come from this phase, so all three see
  the same machine state.
  Peak RSS is VmHWM from /proc/PID/status after all phases.
  Ratios are ours/theirs: below 1 means ours is cheaper. With --runs R the phases
  repeat R times on the same servers and every figure is the median over the runs.
  The report ends with the five targets of issue 10 and whether each held.

Results are printed as markdown and written to --out.
"""

import argparse
import datetime
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
          "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


# --- a tiny RESP client for INFO / PING ------------------------------------------------

class Resp:
    def __init__(self, port, password, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        if password:
            self.call("AUTH", password)

    def close(self):
        self.file.close()
        self.sock.close()

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))

    def call(self, *args):
        self.send(*args)
        reply = self.read()
        if isinstance(reply, RespErr):
            raise BenchError(f"redis {args[0]}: {reply}")
        return reply

    def read(self):
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise BenchError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespErr(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise BenchError(f"unexpected RESP line {line!r}")


class RespErr(str):
    pass


def info_fields(text):
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v
    return fields


def commandstats(port, password):
    """{command: (calls, usec)} from INFO commandstats."""
    conn = Resp(port, password)
    try:
        text = conn.call("INFO", "commandstats")
    finally:
        conn.close()
    stats = {}
    for key, value in info_fields(text).items():
        if not key.startswith("cmdstat_"):
            continue
        kv = dict(item.split("=", 1) for item in value.split(","))
        stats[key[len("cmdstat_"):]] = (int(kv.get("calls", 0)), int(kv.get("usec", 0)))
    return stats


def subtract(delta, overhead):
    out = {}
    for cmd, (calls, usec) in delta.items():
        c0, u0 = overhead.get(cmd, (0, 0))
        calls, usec = max(calls - c0, 0), max(usec - u0, 0)
        if calls:
            out[cmd] = (calls, usec)
    return out


def stats_delta(before, after):
    delta = {}
    for cmd, (calls, usec) in after.items():
        c0, u0 = before.get(cmd, (0, 0))
        if calls - c0 or usec - u0:
            delta[cmd] = (calls - c0, usec - u0)
    return delta


# --- processes ----------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces; fields after ')' are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"{field} not in /proc/{pid}/status")


def wait_for(what, timeout, check, proc=None, log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: process exited with {proc.returncode}{log_tail(log_path)}")
        try:
            if check():
                return
        except (OSError, BenchError):
            pass
        time.sleep(0.05)
    raise BenchError(f"timed out after {timeout}s waiting for {what}{log_tail(log_path)}")


def log_tail(path, lines=15):
    if not path or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        tail = f.read().splitlines()[-lines:]
    return f"\n--- {path} ---\n" + "\n".join(tail)


# --- data --------------------------------------------------------------------------------

def resp_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def tenderly_data(n, seed=310):
    """RESP for n Tenderly-shaped keys; synthetic values only (test-user ids, tokens that
    say they are fake, RFC 5737/3849 documentation addresses)."""
    rng = random.Random(seed)
    jwt, rl, user, otp = n * 50 // 310, n * 30 // 310, n * 20 // 310, n * 10 // 310
    session = n - jwt - rl - user - otp
    users = max(user, 1)
    chunks = []
    for i in range(session):
        sid = "%016x" % rng.getrandbits(64)
        value = ('{"userId":"test-user-%06d","role":"patient","device":"bench",'
                 '"createdAt":1700000000}' % (i % users))
        chunks.append(resp_command("SET", f"tenderly:session:{sid}", value, "EX", 3600))
    for _ in range(jwt):
        jid = "%016x" % rng.getrandbits(64)
        chunks.append(resp_command("SET", f"tenderly:jwt:{jid}", f"fake.bench-jwt.{jid}", "EX", 900))
    for i in range(otp):
        chunks.append(resp_command("SET", "tenderly:otp:test-user-%06d" % i,
                                   "%06d" % rng.randrange(1_000_000), "EX", 300))
    nets = ("192.0.2", "198.51.100", "203.0.113")
    for i in range(rl):
        ip = f"{nets[i // 254]}.{i % 254 + 1}" if i < 762 else f"2001:db8::{i:x}"
        key = f"tenderly:ratelimit:{ip}"
        chunks.append(resp_command("INCR", key))
        chunks.append(resp_command("EXPIRE", key, 60))
    for i in range(user):
        chunks.append(resp_command(
            "HSET", "tenderly:user:test-user-%06d" % i,
            "role", "doctor" if i % 10 == 0 else "patient",
            "displayName", f"Bench User {i}",
            "mfa", "pending" if i % 3 == 0 else "enabled",
            "failedLogins", i % 4))
    return b"".join(chunks)


# --- HTTP scraping ---------------------------------------------------------------------------

class Http:
    """A minimal HTTP/1.1 keep-alive client on a raw socket: requests a path, reads
    the status line, headers and a Content-Length or chunked body. Reconnects when
    the server closed the connection."""

    def __init__(self, port, timeout=30.0):
        self.port, self.timeout, self.sock, self.buf = port, timeout, None, b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def get(self, path, headers):
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            start = time.perf_counter()
            try:
                self.sock.sendall(request.encode())
                status = int(self._line().split()[1])
                fields = {}
                while True:
                    line = self._line()
                    if not line:
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    fields[k.strip().lower()] = v.strip()
                if "content-length" in fields:
                    body = self._exact(int(fields["content-length"]))
                elif fields.get("transfer-encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self._line().split(b";")[0], 16)
                        body += self._exact(size)
                        self._exact(2)
                        if size == 0:
                            break
                else:
                    raise BenchError("response without Content-Length or chunked body")
                elapsed = time.perf_counter() - start
                if fields.get("connection", "").lower() == "close":
                    self.close()
                return elapsed, status, body, fields
            except (ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        raise BenchError("unreachable")


def redis_up(body):
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("redis_up ") or line.startswith("redis_up{"):
            return line.rsplit(" ", 1)[-1].strip() in ("1", "1.0")
    return False


def samples(body):
    return sum(1 for line in body.decode(errors="replace").splitlines() if line and not line.startswith("#"))


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # nearest rank, ceil
    return ordered[int(rank) - 1]


# --- the run -----------------------------------------------------------------------------------

class Exporter:
    def __init__(self, name, label, cmd, port, env, log_path):
        self.name, self.label, self.cmd, self.port, self.env, self.log_path = name, label, cmd, port, env, log_path
        self.proc = None
        self.http = Http(port)
        self.result = {}

    def start(self):
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def checked_scrape(self, gzip=False):
        headers = {"Accept": ACCEPT, "X-Prometheus-Scrape-Timeout-Seconds": "10",
                   "User-Agent": "tenderly-bench/1"}
        if gzip:
            headers["Accept-Encoding"] = "gzip"
        seconds, status, body, fields = self.http.get("/metrics", headers)
        if status != 200:
            raise BenchError(f"{self.label} answered HTTP {status}{log_tail(self.log_path)}")
        if gzip:
            if fields.get("content-encoding") != "gzip":
                raise BenchError(f"{self.label} ignored Accept-Encoding: gzip")
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        return seconds, body


def version_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def run(args, workdir, cleanup):
    password = secrets.token_hex(16)
    redis_port = free_port()
    conf = os.path.join(workdir, "redis.conf")
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"""bind 127.0.0.1
port {redis_port}
protected-mode yes
daemonize no
dir {workdir}
logfile {workdir}/redis.log
requirepass {password}
save ""
appendonly no
maxmemory 256mb
maxmemory-policy allkeys-lru
latency-monitor-threshold 1
""")
    log(f"starting redis-server on 127.0.0.1:{redis_port}")
    redis = subprocess.Popen([args.redis_server, conf], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cleanup.append(lambda: (redis.terminate(), redis.wait(timeout=10)))

    def ping():
        conn = Resp(redis_port, password, timeout=1)
        try:
            return conn.call("PING") == "PONG"
        finally:
            conn.close()
    wait_for("redis-server PING", 10, ping, redis, f"{workdir}/redis.log")

    log(f"loading {args.keys} Tenderly-shaped keys with redis-cli --pipe")
    env = dict(os.environ, REDISCLI_AUTH=password)
    t0 = time.monotonic()
    pipe = subprocess.run([args.redis_cli, "-h", "127.0.0.1", "-p", str(redis_port), "--pipe"],
                          input=tenderly_data(args.keys), env=env, capture_output=True, timeout=120)
    out = pipe.stdout.decode(errors="replace")
    if pipe.returncode != 0 or "errors: 0," not in out:
        raise BenchError(f"redis-cli --pipe failed:\n{out}{pipe.stderr.decode(errors='replace')}")
    conn = Resp(redis_port, password)
    try:
        dbsize = conn.call("DBSIZE")
        server_info = info_fields(conn.call("INFO", "server"))
        memory = info_fields(conn.call("INFO", "memory"))
    finally:
        conn.close()
    log(f"loaded {dbsize} keys in {time.monotonic() - t0:.1f}s, used_memory {memory.get('used_memory_human')}")

    exporter_env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS")}
    exporter_env["REDIS_PASSWORD"] = password
    ours_port, theirs_port = free_port(), free_port()
    ours = Exporter("ours", "tenderly-exporter",
                    [args.ours, "--web.listen-address", f"127.0.0.1:{ours_port}",
                     "--redis.addr", f"redis://127.0.0.1:{redis_port}", "--log.level", "warn"]
                    + args.ours_arg,
                    ours_port, exporter_env, f"{workdir}/ours.log")
    theirs = Exporter("theirs", "redis_exporter",
                      [args.theirs, "-web.listen-address", f"127.0.0.1:{theirs_port}",
                       "-redis.addr", f"redis://127.0.0.1:{redis_port}"],
                      theirs_port, exporter_env, f"{workdir}/theirs.log")
    for exp in (ours, theirs):
        log(f"starting {exp.label} on 127.0.0.1:{exp.port}")
        exp.start()
        cleanup.append(exp.stop)
    for exp in (ours, theirs):
        wait_for(f"{exp.label} to serve /metrics with redis_up 1", 20,
                 lambda exp=exp: redis_up(exp.checked_scrape()[1]), exp.proc, exp.log_path)

    log(f"warming up: {args.warmup} scrapes each")
    for _ in range(args.warmup):
        for exp in (ours, theirs):
            exp.checked_scrape()

    # What one snapshot costs the server itself (AUTH + INFO commandstats): two
    # snapshots with nothing in between. Subtracted from each phase's delta.
    probe_a = commandstats(redis_port, password)
    probe_overhead = stats_delta(probe_a, commandstats(redis_port, password))

    floor = Resp(redis_port, password)
    cleanup.append(floor.close)

    def floor_call():
        start = time.perf_counter()
        floor.call("INFO", "ALL")
        return time.perf_counter() - start

    # The solo measurements run in interleaved batches (ours, theirs, floor, ours
    # gzip, theirs gzip, BATCH requests each, repeated): each is alone while it
    # is measured, and all see the same machine state over the run.
    BATCH = 50

    def snapshot(pid):
        return commandstats(redis_port, password), (cpu_seconds(pid) if pid else 0.0)

    def measure(kind, pid, take, acc):
        stats0, cpu0 = snapshot(pid)
        body = b""
        for _ in range(BATCH):
            body = take()
        stats1, cpu1 = snapshot(pid)
        acc.setdefault(kind, {"cpu": 0.0, "n": 0, "delta": {}})
        a = acc[kind]
        a["cpu"] += cpu1 - cpu0
        a["n"] += BATCH
        for cmd, (c, u) in subtract(stats_delta(stats0, stats1), probe_overhead).items():
            c0, u0 = a["delta"].get(cmd, (0, 0))
            a["delta"][cmd] = (c0 + c, u0 + u)
        a["body"] = body

    runs = []
    for run_no in range(1, args.runs + 1):
        result = {"ours": {}, "theirs": {}, "floor": {}}
        batches = max(1, args.scrapes // BATCH)
        log(f"run {run_no}/{args.runs} solo phases: {batches} rounds of {BATCH} requests each for ours, theirs, "
            "the floor, ours with gzip and theirs with gzip")
        acc = {}
        for _ in range(batches):
            measure("ours", ours.proc.pid, lambda: ours.checked_scrape()[1], acc)
            measure("theirs", theirs.proc.pid, lambda: theirs.checked_scrape()[1], acc)
            measure("floor", None, lambda: (floor_call(), b"")[1], acc)
            if not args.no_gzip:
                measure("ours_gz", ours.proc.pid, lambda: ours.checked_scrape(True)[1], acc)
                measure("theirs_gz", theirs.proc.pid, lambda: theirs.checked_scrape(True)[1], acc)
        for name in ("ours", "theirs"):
            a, g = acc[name], acc.get(name + "_gz")
            n = a["n"]
            result[name].update(
                cpu_ms=a["cpu"] * 1000 / n,
                gzip_cpu_ms=g["cpu"] * 1000 / g["n"] if g else float("nan"),
                server_usec=sum(u for _, u in a["delta"].values()) / n,
                server_calls=sum(c for c, _ in a["delta"].values()) / n,
                per_command={cmd: (c / n, u / n) for cmd, (c, u) in a["delta"].items()},
                bytes=len(a["body"]), samples=samples(a["body"]), up=redis_up(a["body"]))
        f = acc["floor"]
        result["floor"]["server_usec"] = sum(u for _, u in f["delta"].values()) / f["n"]
        result["floor"]["server_calls"] = sum(c for c, _ in f["delta"].values()) / f["n"]

        log(f"run {run_no}/{args.runs} phase C: {args.scrapes} interleaved scrapes of each and of the floor")
        latencies = {"ours": [], "theirs": [], "floor": []}
        takers = [("ours", lambda: ours.checked_scrape()[0]), ("theirs", lambda: theirs.checked_scrape()[0]),
                  ("floor", floor_call)]
        for i in range(args.scrapes):
            for name, take in takers[i % 3:] + takers[:i % 3]:
                latencies[name].append(take())
        for name, values in latencies.items():
            result[name]["median_ms"] = percentile(values, 50) * 1000
            result[name]["p99_ms"] = percentile(values, 99) * 1000
        runs.append(result)

    for exp in (ours, theirs):
        runs[-1][exp.name].update(
            hwm_mib=status_kib(exp.proc.pid, "VmHWM") / 1024,
            rss_mib=status_kib(exp.proc.pid, "VmRSS") / 1024)
    return render(args, runs, dbsize, server_info, memory)


def theirs_version(path):
    match = re.search(r"Redis Metrics Exporter (\S+)", version_of([path, "-version"]))
    return match.group(1) if match else "unknown version"


def fmt(value, digits):
    return f"{value:.{digits}f}"


def ratio(a, b):
    return "n/a" if not b else f"{a / b:.2f}"


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


# The targets of issue 10 (like for like: see the method at the top).
TARGETS = [
    ("CPU per scrape, ours / redis_exporter", "cpu", 0.15),
    ("peak RSS, ours / redis_exporter", "rss", 0.5),
    ("median latency, ours / floor (INFO ALL round trip)", "latency", 3.0),
    ("Redis server time, ours / floor", "server", 1.3),
    ("CPU per gzip scrape, ours / redis_exporter with gzip", "gzip", 0.3),
]


def target_ratios(run, last):
    o, t, f = run["ours"], run["theirs"], run["floor"]
    return {
        "cpu": o["cpu_ms"] / t["cpu_ms"] if t["cpu_ms"] else float("nan"),
        "rss": last["ours"]["hwm_mib"] / last["theirs"]["hwm_mib"],
        "latency": o["median_ms"] / f["median_ms"],
        "server": o["server_usec"] / f["server_usec"] if f["server_usec"] else float("nan"),
        "gzip": o["gzip_cpu_ms"] / t["gzip_cpu_ms"] if t["gzip_cpu_ms"] == t["gzip_cpu_ms"] and t["gzip_cpu_ms"] else float("nan"),
    }


def render(args, runs, dbsize, server_info, memory):
    last = runs[-1]
    # Medians over the runs for every per-run figure; RSS is read once, after the last run.
    o, t, f = ({k: (median([r[who][k] for r in runs if k in r[who]]) if isinstance(v, (int, float)) else v)
                for k, v in last[who].items()} for who in ("ours", "theirs", "floor"))
    rows = [
        ("median scrape latency (ms)", "median_ms", 3),
        ("p99 scrape latency (ms)", "p99_ms", 3),
        ("exporter CPU per scrape (ms)", "cpu_ms", 3),
        ("exporter CPU per gzip scrape (ms)", "gzip_cpu_ms", 3),
        ("peak RSS, VmHWM (MiB)", "hwm_mib", 1),
        ("RSS after the run (MiB)", "rss_mib", 1),
        ("Redis server time per scrape (µs)", "server_usec", 1),
        ("Redis commands per scrape", "server_calls", 1),
        ("response size (bytes)", "bytes", 0),
        ("samples per scrape", "samples", 0),
    ]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flags = " ".join(args.ours_arg) or "(none)"
    lines = [
        "## Redis exporter benchmark: tenderly-exporter vs redis_exporter",
        "",
        f"- date: {now}; host: {os.uname().nodename}, {os.cpu_count()} CPUs, {os.uname().release}",
        f"- Redis {server_info.get('redis_version', '?')} on loopback, {dbsize} Tenderly-shaped keys, "
        f"used_memory {memory.get('used_memory_human', '?')}",
        f"- ours: `{version_of([args.ours, '--version'])}` with {flags}; theirs: "
        f"`redis_exporter {theirs_version(args.theirs)}` (Debian prometheus-redis-exporter), "
        "default collectors",
        f"- {args.runs} run(s) of {args.scrapes} scrapes per phase after {args.warmup} warm-up scrapes each; "
        "figures are medians over the runs; latency from the interleaved phase, CPU and Redis cost from each "
        "exporter's solo phase (method in scripts/bench_redis.py)",
        "",
        "| measure | tenderly-exporter | redis_exporter | ours/theirs | floor (INFO ALL) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, key, digits in rows:
        floor_cell = fmt(f[key], digits) if key in f else ""
        lines.append(f"| {label} | {fmt(o[key], digits)} | {fmt(t[key], digits)} | {ratio(o[key], t[key])} "
                     f"| {floor_cell} |")
    lines += ["", "Redis commands per scrape, by command (calls, µs; last run):", "",
              "| command | tenderly-exporter | redis_exporter |", "| --- | ---: | ---: |"]
    cmds = set(o["per_command"]) | set(t["per_command"])
    by_cost = sorted(cmds, key=lambda c: -(o["per_command"].get(c, (0, 0))[1] + t["per_command"].get(c, (0, 0))[1]))

    def cell(r, c):
        calls, usec = r["per_command"].get(c, (0, 0))
        return "-" if not calls else f"{calls:.2f} calls, {usec:.1f} µs"
    for c in by_cost:
        # Subcommand stats are named `config|get`; a bare | would split the table cell.
        name = c.replace("|", "\\|")
        lines.append(f"| `{name}` | {cell(o, c)} | {cell(t, c)} |")
    per_run = [target_ratios(r, last) for r in runs]
    lines += ["", "Targets (issue 10), per run and median:", "",
              "| target | limit | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " | median | held |",
              "| --- | ---: | " + " | ".join("---:" for _ in runs) + " | ---: | --- |"]
    for label, key, limit in TARGETS:
        values = [r[key] for r in per_run]
        m = median(values)
        lines.append(f"| {label} | {limit} | " + " | ".join(f"{v:.2f}" for v in values)
                     + f" | {m:.2f} | {'yes' if m <= limit else ('n/a' if m != m else 'NO')} |")
    tick_ms = 1000 / CLK_TCK / args.scrapes
    lines += ["", f"CPU comes from /proc clock ticks ({1000 / CLK_TCK:.0f} ms), so CPU per scrape is "
              f"resolved to about ±{tick_ms:.3f} ms at {args.scrapes} scrapes.",
              "", "Server-side figures exclude the benchmark's own `AUTH` + `INFO commandstats` snapshot, "
              "measured separately and subtracted."]
    return "\n".join(lines) + "\n"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scrapes", type=int, default=1000, help="scrapes per phase (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of all phases; figures are medians (default 3)")
    parser.add_argument("--all-collectors", action="store_true",
                        help="keep all our default collectors on (default: like for like, see the method above)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up scrapes per exporter (default 20)")
    parser.add_argument("--keys", type=int, default=100_000, help="keys to load (default 100000)")
    parser.add_argument("--out", default=None, help="also write the markdown report to this file")
    parser.add_argument("--ours", default=os.path.join(root, "target/release/tenderly-exporter"))
    parser.add_argument("--ours-arg", action="append", default=[],
                   help="extra flag for tenderly-exporter (repeatable), e.g. --ours-arg=--no-collector.tenderly.keys")
    parser.add_argument("--theirs", default=shutil.which("prometheus-redis-exporter")
                        or "/usr/bin/prometheus-redis-exporter")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    parser.add_argument("--redis-cli", default=shutil.which("redis-cli") or "/usr/bin/redis-cli")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) for inspection")
    parser.add_argument("--no-gzip", action="store_true",
                        help="skip the gzip batches (for a build of ours that predates gzip)")
    args = parser.parse_args()
    if args.scrapes < 1 or args.keys < 310 or args.warmup < 0 or args.runs < 1:
        parser.error("--scrapes must be >= 1, --keys >= 310, --warmup >= 0, --runs >= 1")
    if not args.all_collectors:
        # Like for like: what Debian's redis_exporter 1.45 does not collect is off
        # (the Tenderly key scan and posture checks, LATENCY HISTOGRAM, CLIENT LIST).
        args.ours_arg = ["--no-collector.tenderly.keys", "--no-collector.tenderly.posture",
                         "--no-collector.redis.latency-histogram", "--no-collector.redis.clients-by-name"] + args.ours_arg
    for name in ("ours", "theirs", "redis_server", "redis_cli"):
        path = getattr(args, name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            parser.error(f"--{name.replace('_', '-')}: {path} is not an executable file")

    # SIGTERM/SIGHUP unwind through `finally` like Ctrl-C does, so processes get stopped.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    workdir = tempfile.mkdtemp(prefix="tenderly-bench-")
    cleanup = []
    status = 0
    try:
        report = run(args, workdir, cleanup)
        sys.stdout.write(report)
        if args.out:
            with open(args.out, "w") as f:
                f.write(report)
            log(f"report written to {args.out}")
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        status = 130
    finally:
        for action in reversed(cleanup):
            try:
                action()
            except Exception as e:  # cleanup must go on for the other processes
                print(f"bench: cleanup: {e}", file=sys.stderr)
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
