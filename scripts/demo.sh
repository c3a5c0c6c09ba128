#!/usr/bin/env bash
# One-command demo of tenderly-exporter on a fresh machine: Redis, MongoDB, the
# exporter, Prometheus with the shipped alert rules, and Alertmanager.
#
#   scripts/demo.sh [--port 9879] [--no-build]
#
# What it does:
#   1. installs the missing Debian packages (redis-server, redis-tools, prometheus,
#      prometheus-alertmanager) with apt-get when run as root; otherwise prints the
#      exact apt-get command and stops;
#   2. builds the exporter and the MongoDB replay server (cargo build --release
#      --bin tenderly-exporter --example mongo_replay) unless --no-build;
#   3. starts a private redis-server on 127.0.0.1:16379 in ${TMPDIR:-/tmp}/tenderly-demo,
#      configured like the DBA guide's redis.conf (requirepass from a generated password
#      kept in a 0600 file, maxmemory 64mb allkeys-lru, latency-monitor-threshold 1);
#   4. loads ~2000 Tenderly-shaped keys (fake values) with redis-cli --pipe and keeps a
#      trickle of application-like traffic going so rates move;
#   5. starts MongoDB on 127.0.0.1:27117: a real mongod if one is on PATH (a
#      single-node replica set when mongosh is there to initiate it), otherwise the
#      wire-protocol replay server (examples/mongo_replay.rs, scenario "primary":
#      a replica set whose secondaries lag, so MongodbReplicationLagHigh fires);
#   6. starts the exporter with --redis.password-file and --mongodb.uri, waits for /-/ready;
#   7. starts Prometheus on 127.0.0.1:19090 (deploy/prometheus.yml with local addresses,
#      5 s scrapes, the rules in alerts/) and Alertmanager on 127.0.0.1:19093
#      (deploy/alertmanager.yml's routes and inhibitions, receivers that deliver nowhere),
#      waits until every scrape target is up and prints the URLs;
#   8. stays in the foreground until Ctrl-C, then stops everything it started and
#      removes the demo directory (it holds the password and Prometheus' data).
#
# Running it again is safe: leftovers of a previous run that was killed hard are
# stopped first; a demo that is still running is reported instead of disturbed.
set -euo pipefail

REDIS_PORT=16379
MONGO_PORT=27117
PROMETHEUS_PORT=19090
ALERTMANAGER_PORT=19093
SAMPLE_KEYS=2000
EXPORTER_PORT=9879
BUILD=1

usage() {
    sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --port)
            [[ $# -ge 2 ]] || { echo "demo: --port needs a value" >&2; exit 2; }
            EXPORTER_PORT="$2"
            shift 2
            ;;
        --port=*)
            EXPORTER_PORT="${1#--port=}"
            shift
            ;;
        --no-build)
            BUILD=0
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "demo: unknown argument '$1' (try --help)" >&2
            exit 2
            ;;
    esac
done
if ! [[ "$EXPORTER_PORT" =~ ^[0-9]+$ ]] || ((EXPORTER_PORT < 1 || EXPORTER_PORT > 65535)); then
    echo "demo: --port must be a TCP port number, got '$EXPORTER_PORT'" >&2
    exit 2
fi
for taken in "$REDIS_PORT:Redis" "$MONGO_PORT:MongoDB" "$PROMETHEUS_PORT:Prometheus" "$ALERTMANAGER_PORT:Alertmanager"; do
    if ((EXPORTER_PORT == ${taken%%:*})); then
        echo "demo: --port $EXPORTER_PORT is the demo ${taken#*:} port; pick another" >&2
        exit 2
    fi
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${TMPDIR:-/tmp}/tenderly-demo"
EXPORTER_BIN="$ROOT/target/release/tenderly-exporter"
REPLAY_BIN="$ROOT/target/release/examples/mongo_replay"

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}

# --- processes we own, stopped by the trap -------------------------------------------
REDIS_PID=""
EXPORTER_PID=""
MONGO_PID=""
PROMETHEUS_PID=""
ALERTMANAGER_PID=""
TRAFFIC_PID=""
KEEP_DIR=0

# shellcheck disable=SC2317 # only reached through the EXIT trap
stop_pid() { # pid
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # only reached through the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$EXPORTER_PID$REDIS_PID$TRAFFIC_PID$MONGO_PID$PROMETHEUS_PID$ALERTMANAGER_PID" ]]; then
        log "stopping the demo"
    fi
    stop_pid "$PROMETHEUS_PID"
    stop_pid "$ALERTMANAGER_PID"
    stop_pid "$TRAFFIC_PID"
    stop_pid "$EXPORTER_PID"
    stop_pid "$MONGO_PID"
    stop_pid "$REDIS_PID"
    # Show our logs when something failed, not after a plain Ctrl-C (130) or kill (143),
    # and never those of another demo's directory (KEEP_DIR).
    if ((status != 0 && status != 130 && status != 143 && KEEP_DIR == 0)) && [[ -d "$DEMO_DIR" ]]; then
        for f in exporter.log redis.log mongodb.log prometheus.log alertmanager.log; do
            if [[ -s "$DEMO_DIR/$f" ]]; then
                printf -- '--- last lines of %s ---\n' "$f" >&2
                tail -n 20 "$DEMO_DIR/$f" >&2
            fi
        done
    fi
    if ((KEEP_DIR == 0)); then
        rm -rf "$DEMO_DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { # port
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A process from an earlier run, if its pid file still names a live process whose
# command line contains the expected program name.
stale_pid() { # pidfile program
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(cat "$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
    echo "$pid"
}

http_status() { # port path -> prints the HTTP status code
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1$2" || true
        return 0
    fi
    # No curl on a minimal machine: speak just enough HTTP/1.0 through bash's /dev/tcp.
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
        printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
        line=""
        read -r -t 2 line <&3 || true
        line="${line#* }"
        echo "${line%% *}"
    ) 2>/dev/null || true
}

# --- 1. Debian packages --------------------------------------------------------------
# Debian names the Alertmanager binary prometheus-alertmanager; upstream tarballs alertmanager.
alertmanager_bin() {
    command -v prometheus-alertmanager 2>/dev/null || command -v alertmanager 2>/dev/null || true
}
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
[[ -n "$(alertmanager_bin)" ]] || missing+=(prometheus-alertmanager)
if ((${#missing[@]})); then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing ${missing[*]} with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        die "missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}"
    fi
fi
ALERTMANAGER_BIN="$(alertmanager_bin)"
MONGOD_BIN="$(command -v mongod 2>/dev/null || true)"

# --- 2. build -----------------------------------------------------------------------
if ((BUILD)); then
    command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust (https://rustup.rs) or pass --no-build with a prebuilt binary"
    if [[ -n "$MONGOD_BIN" ]]; then
        log "building the exporter (cargo build --release)"
        (cd "$ROOT" && cargo build --release --bin tenderly-exporter)
    else
        log "building the exporter and the MongoDB replay server (cargo build --release)"
        (cd "$ROOT" && cargo build --release --bin tenderly-exporter --example mongo_replay)
    fi
fi
[[ -x "$EXPORTER_BIN" ]] || die "$EXPORTER_BIN does not exist; run without --no-build"
if [[ -z "$MONGOD_BIN" && ! -x "$REPLAY_BIN" ]]; then
    die "no mongod on PATH and $REPLAY_BIN does not exist; run without --no-build"
fi

# --- 3. previous runs, ports, directory ---------------------------------------------
# One demo at a time. The lock lives next to the demo directory (which is removed on
# exit) and is released by the kernel when this shell dies, even on kill -9; children
# get fd 9 closed so leftovers of a killed run do not hold it.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DEMO_DIR.lock"
    if ! flock -n 9; then
        KEEP_DIR=1
        die "another demo is running (lock $DEMO_DIR.lock is held); stop it with Ctrl-C first"
    fi
fi
if pid="$(stale_pid "$DEMO_DIR/demo.pid" demo.sh)" && [[ "$pid" != "$$" ]]; then
    KEEP_DIR=1
    die "another demo is running (pid $pid); stop it with Ctrl-C first"
fi
for leftover in "redis.pid:redis-server" "exporter.pid:tenderly-exporter" "mongodb.pid:mongo" \
    "prometheus.pid:prometheus" "alertmanager.pid:alertmanager"; do
    if pid="$(stale_pid "$DEMO_DIR/${leftover%%:*}" "${leftover#*:}")"; then
        log "stopping ${leftover#*:} (pid $pid) left over from an earlier demo"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
done
if port_in_use "$REDIS_PORT"; then
    KEEP_DIR=1
    die "127.0.0.1:$REDIS_PORT is already in use by another program; the demo needs it for its Redis"
fi
if port_in_use "$EXPORTER_PORT"; then
    KEEP_DIR=1
    die "127.0.0.1:$EXPORTER_PORT is already in use; pick another exporter port with --port"
fi
for taken in "$MONGO_PORT:MongoDB" "$PROMETHEUS_PORT:Prometheus" "$ALERTMANAGER_PORT:Alertmanager"; do
    if port_in_use "${taken%%:*}"; then
        KEEP_DIR=1
        die "127.0.0.1:${taken%%:*} is already in use by another program; the demo needs it for its ${taken#*:}"
    fi
done

rm -rf "$DEMO_DIR"
mkdir -m 700 "$DEMO_DIR"
echo "$$" >"$DEMO_DIR/demo.pid"

PASSWORD_FILE="$DEMO_DIR/redis-password"
# 32 characters from [A-Za-z0-9]: safe unquoted in redis.conf and in URLs. (Reading a
# bounded amount of /dev/urandom avoids a SIGPIPE that set -o pipefail would catch.)
REDISCLI_AUTH="$(head -c 1024 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')"
REDISCLI_AUTH="${REDISCLI_AUTH:0:32}"
((${#REDISCLI_AUTH} == 32)) || die "could not generate a password from /dev/urandom"
(
    umask 077
    printf '%s' "$REDISCLI_AUTH" >"$PASSWORD_FILE"
)
export REDISCLI_AUTH # redis-cli reads the password from here, never from argv

# --- 4. redis-server ------------------------------------------------------------------
(
    umask 077
    cat >"$DEMO_DIR/redis.conf" <<EOF
# Tenderly demo Redis: the DBA guide's redis.conf, scaled down.
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize no
dir $DEMO_DIR
pidfile $DEMO_DIR/redis.pid
logfile $DEMO_DIR/redis.log
requirepass $REDISCLI_AUTH
maxmemory 64mb
maxmemory-policy allkeys-lru
latency-monitor-threshold 1
save 900 1
save 300 10
save 60 10000
appendonly no
rename-command FLUSHDB ""
rename-command FLUSHALL ""
rename-command KEYS ""
EOF
)
log "starting redis-server on 127.0.0.1:$REDIS_PORT (data in $DEMO_DIR)"
redis-server "$DEMO_DIR/redis.conf" </dev/null >/dev/null 2>>"$DEMO_DIR/redis.log" 9>&- &
REDIS_PID=$!

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

ready=0
for _ in $(seq 1 100); do
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited during startup"
    if [[ "$(rcli ping 2>/dev/null)" == "PONG" ]]; then
        ready=1
        break
    fi
    sleep 0.1
done
((ready)) || die "redis-server did not answer PING within 10 s"

# --- 5. sample data -------------------------------------------------------------------
# RESP for redis-cli --pipe, in the proportions of the real capture (per 310 keys:
# 200 session EX 3600, 50 jwt EX 900, 30 ratelimit INCR+EXPIRE 60, 20 user hashes
# without TTL, 10 otp EX 300). Every value is synthetic: test-user ids, tokens
# that say they are fake, documentation IP ranges (RFC 5737).
generate_sample_data() { # n
    awk -v n="$1" '
    function emit(argc,   i, out) {
        out = "*" argc "\r\n"
        for (i = 1; i <= argc; i++) out = out "$" length(a[i]) "\r\n" a[i] "\r\n"
        printf "%s", out
    }
    function hexid() {
        return sprintf("%04x%04x%04x%04x", int(rand() * 65536), int(rand() * 65536),
                       int(rand() * 65536), int(rand() * 65536))
    }
    BEGIN {
        srand(310)
        jwt = int(n * 50 / 310); rl = int(n * 30 / 310); user = int(n * 20 / 310); otp = int(n * 10 / 310)
        session = n - jwt - rl - user - otp
        for (i = 0; i < session; i++) {
            a[1] = "SET"; a[2] = "tenderly:session:" hexid()
            a[3] = sprintf("{\"userId\":\"test-user-%06d\",\"role\":\"patient\",\"device\":\"demo\"}", i % user)
            a[4] = "EX"; a[5] = 3600; emit(5)
        }
        for (i = 0; i < jwt; i++) {
            id = hexid()
            a[1] = "SET"; a[2] = "tenderly:jwt:" id; a[3] = "fake.demo-jwt." id; a[4] = "EX"; a[5] = 900; emit(5)
        }
        for (i = 0; i < otp; i++) {
            a[1] = "SET"; a[2] = sprintf("tenderly:otp:test-user-%06d", i)
            a[3] = sprintf("%06d", int(rand() * 1000000)); a[4] = "EX"; a[5] = 300; emit(5)
        }
        split("192.0.2 198.51.100 203.0.113", nets, " ")
        for (i = 0; i < rl; i++) {
            key = sprintf("tenderly:ratelimit:%s.%d", nets[int(i / 254) % 3 + 1], i % 254 + 1)
            a[1] = "INCR"; a[2] = key; emit(2)
            a[1] = "EXPIRE"; a[2] = key; a[3] = 60; emit(3)
        }
        for (i = 0; i < user; i++) {
            a[1] = "HSET"; a[2] = sprintf("tenderly:user:test-user-%06d", i)
            a[3] = "role"; a[4] = (i % 10 == 0) ? "doctor" : "patient"
            a[5] = "displayName"; a[6] = "Demo User " i
            a[7] = "mfa"; a[8] = (i % 3 == 0) ? "pending" : "enabled"
            a[9] = "failedLogins"; a[10] = i % 4
            emit(10)
        }
    }'
}

log "loading $SAMPLE_KEYS Tenderly-shaped sample keys (fake values)"
pipe_out="$(generate_sample_data "$SAMPLE_KEYS" | rcli --pipe 2>&1)" || die "loading sample data failed: $pipe_out"
grep -q 'errors: 0,' <<<"$pipe_out" || die "redis-cli --pipe reported errors: $pipe_out"
log "Redis now holds $(rcli dbsize) keys"

# A trickle of application-like traffic (session reads, misses, rate-limit hits, OTP
# checks) so command rates and hit ratios move while you watch.
DEMO_PID=$$
(
    exec 9>&-
    trap 'exit 0' TERM INT
    i=0
    # Stops by itself if the demo shell is killed hard and cannot run its trap.
    while kill -0 "$DEMO_PID" 2>/dev/null; do
        i=$((i + 1))
        {
            echo "GET tenderly:session:demo-miss-$((i % 7))"
            echo "INCR tenderly:ratelimit:203.0.113.$((i % 200 + 1))"
            echo "EXPIRE tenderly:ratelimit:203.0.113.$((i % 200 + 1)) 60"
            echo "HGETALL tenderly:user:test-user-$(printf '%06d' $((i % 64)))"
            echo "SET tenderly:otp:test-user-$(printf '%06d' $((i % 64))) $(printf '%06d' $((RANDOM % 1000000))) EX 300"
            echo "DBSIZE"
        } | rcli >/dev/null 2>&1 || true
        sleep 1
    done
) &
TRAFFIC_PID=$!

# --- 6. MongoDB ------------------------------------------------------------------------
MONGO_KIND=""
if [[ -n "$MONGOD_BIN" ]]; then
    mkdir -m 700 "$DEMO_DIR/mongodb"
    mongod_args=(--dbpath "$DEMO_DIR/mongodb" --bind_ip 127.0.0.1 --port "$MONGO_PORT"
        --oplogSize 64 --wiredTigerCacheSizeGB 0.25)
    MONGOSH_BIN="$(command -v mongosh 2>/dev/null || true)"
    # A replica set needs replSetInitiate; without mongosh run a standalone server.
    [[ -n "$MONGOSH_BIN" ]] && mongod_args+=(--replSet tenderly-demo)
    log "starting mongod on 127.0.0.1:$MONGO_PORT (data in $DEMO_DIR/mongodb)"
    "$MONGOD_BIN" "${mongod_args[@]}" </dev/null >>"$DEMO_DIR/mongodb.log" 2>&1 9>&- &
    MONGO_PID=$!
    # sed reads all of it (no SIGPIPE under pipefail); a failing --version is not fatal.
    MONGO_KIND="mongod $({ "$MONGOD_BIN" --version 2>/dev/null || true; } | sed -n '1s/^db version //p')"
else
    log "no mongod on PATH: starting the MongoDB replay server on 127.0.0.1:$MONGO_PORT (scenario primary)"
    "$REPLAY_BIN" --scenario primary --listen "127.0.0.1:$MONGO_PORT" \
        </dev/null >>"$DEMO_DIR/mongodb.log" 2>&1 9>&- &
    MONGO_PID=$!
    MONGO_KIND="replay server (examples/mongo_replay.rs, scenario primary: secondaries lag 1151 s)"
fi
echo "$MONGO_PID" >"$DEMO_DIR/mongodb.pid"
ready=0
for _ in $(seq 1 300); do
    kill -0 "$MONGO_PID" 2>/dev/null || die "MongoDB exited during startup"
    if port_in_use "$MONGO_PORT"; then
        ready=1
        break
    fi
    sleep 0.1
done
((ready)) || die "MongoDB did not accept connections on 127.0.0.1:$MONGO_PORT within 30 s"
if [[ -n "$MONGOD_BIN" && -n "${MONGOSH_BIN:-}" ]]; then
    "$MONGOSH_BIN" --quiet --port "$MONGO_PORT" --eval \
        "rs.initiate({_id: 'tenderly-demo', members: [{_id: 0, host: '127.0.0.1:$MONGO_PORT'}]})" \
        >>"$DEMO_DIR/mongodb.log" 2>&1 || die "rs.initiate failed"
fi
MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true"

# --- 7. the exporter ----------------------------------------------------------------
log "starting tenderly-exporter on 127.0.0.1:$EXPORTER_PORT"
"$EXPORTER_BIN" \
    --web.listen-address "127.0.0.1:$EXPORTER_PORT" \
    --redis.addr "redis://127.0.0.1:$REDIS_PORT" \
    --redis.password-file "$PASSWORD_FILE" \
    --mongodb.uri "$MONGO_URI" \
    </dev/null >>"$DEMO_DIR/exporter.log" 2>&1 9>&- &
EXPORTER_PID=$!
echo "$EXPORTER_PID" >"$DEMO_DIR/exporter.pid"

ready=0
for _ in $(seq 1 100); do
    kill -0 "$EXPORTER_PID" 2>/dev/null || die "tenderly-exporter exited during startup"
    if [[ "$(http_status "$EXPORTER_PORT" /-/ready)" == "200" ]]; then
        ready=1
        break
    fi
    sleep 0.1
done
((ready)) || die "tenderly-exporter did not report /-/ready within 10 s"

# --- 8. Alertmanager and Prometheus ----------------------------------------------------------
# deploy/alertmanager.yml's routes and inhibitions; its receivers (PagerDuty, Slack)
# need secrets, so the demo's receivers of the same names deliver nowhere. See the
# firing alerts in the Alertmanager UI.
{
    sed '/^receivers:/,$d' "$ROOT/deploy/alertmanager.yml"
    printf 'receivers:\n  - name: pager\n  - name: chat\n'
} >"$DEMO_DIR/alertmanager.yml"
mkdir -m 700 "$DEMO_DIR/alertmanager-data"
log "starting Alertmanager on 127.0.0.1:$ALERTMANAGER_PORT"
"$ALERTMANAGER_BIN" \
    --config.file="$DEMO_DIR/alertmanager.yml" \
    --storage.path="$DEMO_DIR/alertmanager-data" \
    --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address= \
    </dev/null >>"$DEMO_DIR/alertmanager.log" 2>&1 9>&- &
ALERTMANAGER_PID=$!
echo "$ALERTMANAGER_PID" >"$DEMO_DIR/alertmanager.pid"

# deploy/prometheus.yml pointed at this machine: the exporter's /metrics (the
# default targets "redis" and "mongodb" plus self-metrics) and the /probe jobs
# for the same two targets, whose `instance` is the database address.
sed -e "s#tenderly-exporter\.example\.internal:9879#127.0.0.1:$EXPORTER_PORT#g" \
    -e "s#alertmanager\.example\.internal:9093#127.0.0.1:$ALERTMANAGER_PORT#g" \
    -e "s#redis-sessions\.example\.internal:6379#127.0.0.1:$REDIS_PORT#g" \
    -e "s#mongodb-1\.example\.internal:27017#127.0.0.1:$MONGO_PORT#g" \
    -e "s#__param_target: sessions-redis#__param_target: redis#" \
    -e "s#__param_target: tenderly-mongodb#__param_target: mongodb#" \
    -e "s#\.\./alerts/\*\.rules\.yml#$ROOT/alerts/*.rules.yml#" \
    -e "s#scrape_interval: 15s#scrape_interval: 5s#" \
    -e "s#scrape_timeout: 10s#scrape_timeout: 4s#" \
    -e "s#evaluation_interval: 15s#evaluation_interval: 5s#" \
    "$ROOT/deploy/prometheus.yml" >"$DEMO_DIR/prometheus.yml"
if command -v promtool >/dev/null 2>&1; then
    promtool check config "$DEMO_DIR/prometheus.yml" >>"$DEMO_DIR/prometheus.log" 2>&1 ||
        die "promtool rejects the generated $DEMO_DIR/prometheus.yml"
fi
mkdir -m 700 "$DEMO_DIR/prometheus-data"
log "starting Prometheus on 127.0.0.1:$PROMETHEUS_PORT with the rules in alerts/"
prometheus \
    --config.file="$DEMO_DIR/prometheus.yml" \
    --storage.tsdb.path="$DEMO_DIR/prometheus-data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    </dev/null >>"$DEMO_DIR/prometheus.log" 2>&1 9>&- &
PROMETHEUS_PID=$!
echo "$PROMETHEUS_PID" >"$DEMO_DIR/prometheus.pid"

for svc in "ALERTMANAGER:Alertmanager" "PROMETHEUS:Prometheus"; do
    pid_var="${svc%%:*}_PID"
    port_var="${svc%%:*}_PORT"
    ready=0
    for _ in $(seq 1 300); do
        kill -0 "${!pid_var}" 2>/dev/null || die "${svc#*:} exited during startup"
        if [[ "$(http_status "${!port_var}" /-/ready)" == "200" ]]; then
            ready=1
            break
        fi
        sleep 0.1
    done
    ((ready)) || die "${svc#*:} did not report /-/ready within 30 s"
done

# Every scrape target up (three jobs); the first scrapes land within one interval.
targets_up() {
    command -v curl >/dev/null 2>&1 || return 0
    local body
    body="$(curl -s -m 2 "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets?state=active" || true)"
    [[ "$(grep -o '"health":"up"' <<<"$body" | wc -l)" -ge 3 ]] && ! grep -q '"health":"\(down\|unknown\)"' <<<"$body"
}
ready=0
for _ in $(seq 1 60); do
    if targets_up; then
        ready=1
        break
    fi
    sleep 0.5
done
((ready)) || log "warning: not every Prometheus target is up yet; see http://127.0.0.1:$PROMETHEUS_PORT/targets"

cat <<EOF

Tenderly exporter demo is running.

  metrics      http://127.0.0.1:$EXPORTER_PORT/metrics
  landing page http://127.0.0.1:$EXPORTER_PORT/
  health       http://127.0.0.1:$EXPORTER_PORT/-/healthy  and  /-/ready
  Prometheus   http://127.0.0.1:$PROMETHEUS_PORT/  (targets: /targets, alerts: /alerts)
  Alertmanager http://127.0.0.1:$ALERTMANAGER_PORT/

  Try:
    curl -s localhost:$EXPORTER_PORT/metrics | grep -E '^(redis|mongodb)_up'
    curl -s localhost:$EXPORTER_PORT/metrics | grep -E '^redis_(db_keys|memory_used_bytes|commands_total)'
    curl -s 'localhost:$PROMETHEUS_PORT/api/v1/query?query=mongodb_replset_member_replication_lag_seconds'

  Redis:        127.0.0.1:$REDIS_PORT, password in $PASSWORD_FILE
                REDISCLI_AUTH="\$(cat $PASSWORD_FILE)" redis-cli -p $REDIS_PORT info keyspace
  MongoDB:      $MONGO_URI
                $MONGO_KIND
  Dashboards:   import dashboards/*.json into Grafana 10+ with a Prometheus datasource
                pointing at http://127.0.0.1:$PROMETHEUS_PORT (see deploy/grafana/)
  Logs:         $DEMO_DIR/{exporter,redis,mongodb,prometheus,alertmanager}.log

Press Ctrl-C to stop the demo (this removes $DEMO_DIR).
EOF

# Foreground until Ctrl-C, or until one of the processes dies.
while true; do
    for svc in "REDIS:redis-server" "MONGO:MongoDB" "EXPORTER:tenderly-exporter" \
        "PROMETHEUS:Prometheus" "ALERTMANAGER:Alertmanager"; do
        pid_var="${svc%%:*}_PID"
        kill -0 "${!pid_var}" 2>/dev/null || die "${svc#*:} stopped unexpectedly"
    done
    sleep 1 &
    wait $! || true
done
