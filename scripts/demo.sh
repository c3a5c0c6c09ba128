#!/usr/bin/env bash
# One-command demo of tenderly-exporter on a fresh machine: Redis (a primary and a
# replica), MongoDB, the exporter, Prometheus with the shipped alert rules, and
# Alertmanager, configured like the shipped files (deploy/, examples/targets.yml).
#
#   scripts/demo.sh [--port 9879] [--no-build] [--mongodb-uri URI] [--fast-alerts]
#   scripts/demo.sh --print-config targets|prometheus    # the generated configs, then exit
#   scripts/demo.sh --print-alerts                       # the alerts it fires on purpose, then exit
#
# What it does:
#   1. installs the missing Debian packages (redis-server, redis-tools, prometheus,
#      prometheus-alertmanager) with apt-get when run as root; otherwise prints the
#      exact apt-get command and stops;
#   2. builds the exporter and the MongoDB replay server (cargo build --release
#      --bin tenderly-exporter --example mongo_replay) unless --no-build;
#   3. starts a private redis-server on 127.0.0.1:16379 and a replica on :16380 in
#      ${TMPDIR:-/tmp}/tenderly-demo, configured like the DBA guide's redis.conf
#      (requirepass from a generated password kept in a 0600 file, maxmemory 1gb
#      allkeys-lru, FLUSHDB/FLUSHALL/KEYS renamed away, CONFIG renamed to a secret name
#      the exporter is told in posture_options.config_command);
#   4. loads ~2000 Tenderly-shaped keys (fake values), every one with the TTL of its
#      data type as the guide asks (sessions 3600 s, JWTs 900 s, OTPs 300 s, rate
#      limits 60 s, user hashes 3600 s), and keeps a trickle of application traffic;
#   5. starts MongoDB on 127.0.0.1:27117: a real mongod if one is on PATH (a
#      single-node replica set when mongosh is there to initiate it), otherwise the
#      wire-protocol replay server (examples/mongo_replay.rs, scenario "primary");
#      --mongodb-uri uses a MongoDB that is already running instead;
#   6. starts the exporter with a --config.file naming the targets as
#      examples/targets.yml does (sessions-redis, sessions-redis-replica,
#      tenderly-mongodb), every one probed by Prometheus, none a default target;
#   7. starts Prometheus on 127.0.0.1:19090 (deploy/prometheus.yml with local
#      addresses, 5 s scrapes, the rules in alerts/) and Alertmanager on
#      127.0.0.1:19093 (deploy/alertmanager.yml's routes and inhibitions, receivers
#      that deliver nowhere), waits until every scrape target is up, prints the URLs
#      that work with the installed versions and the alerts that will fire on
#      purpose, each after its rule's `for:` (--fast-alerts: every `for:` cut to 1s);
#   8. stays in the foreground until Ctrl-C, then stops every process it started
#      (each in its own process group, so their children go too) and removes the
#      demo directory (it holds the password and Prometheus' data) and the lock file.
#
# Ports can be moved with DEMO_REDIS_PORT, DEMO_REPLICA_PORT, DEMO_MONGO_PORT,
# DEMO_PROMETHEUS_PORT, DEMO_ALERTMANAGER_PORT; DEMO_EXPORTER_BIN and DEMO_REPLAY_BIN run
# other builds (with --no-build).
# Running it again is safe: leftovers of a previous run that was killed hard are
# stopped first; a demo that is still running is reported instead of disturbed.
set -euo pipefail

REDIS_PORT="${DEMO_REDIS_PORT:-16379}"
REPLICA_PORT="${DEMO_REPLICA_PORT:-16380}"
MONGO_PORT="${DEMO_MONGO_PORT:-27117}"
PROMETHEUS_PORT="${DEMO_PROMETHEUS_PORT:-19090}"
ALERTMANAGER_PORT="${DEMO_ALERTMANAGER_PORT:-19093}"
SAMPLE_KEYS=2000
EXPORTER_PORT=9879
BUILD=1
EXTERNAL_MONGO_URI=""
FAST_ALERTS=0
PRINT_CONFIG=""
PRINT_ALERTS=0

usage() {
    sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//'
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
        --mongodb-uri)
            [[ $# -ge 2 ]] || { echo "demo: --mongodb-uri needs a value" >&2; exit 2; }
            EXTERNAL_MONGO_URI="$2"
            shift 2
            ;;
        --fast-alerts)
            FAST_ALERTS=1
            shift
            ;;
        --print-config)
            [[ $# -ge 2 && ("$2" == targets || "$2" == prometheus) ]] ||
                { echo "demo: --print-config takes targets or prometheus" >&2; exit 2; }
            PRINT_CONFIG="$2"
            shift 2
            ;;
        --print-alerts)
            PRINT_ALERTS=1
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
for taken in "$REDIS_PORT:Redis" "$REPLICA_PORT:Redis replica" "$MONGO_PORT:MongoDB" "$PROMETHEUS_PORT:Prometheus" "$ALERTMANAGER_PORT:Alertmanager"; do
    if ((EXPORTER_PORT == ${taken%%:*})); then
        echo "demo: --port $EXPORTER_PORT is the demo ${taken#*:} port; pick another" >&2
        exit 2
    fi
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${TMPDIR:-/tmp}/tenderly-demo"
EXPORTER_BIN="${DEMO_EXPORTER_BIN:-$ROOT/target/release/tenderly-exporter}"
REPLAY_BIN="${DEMO_REPLAY_BIN:-$ROOT/target/release/examples/mongo_replay}"

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'demo: error: %s\n' "$*" >&2
    exit 1
}

# --- the generated configuration (also printed by --print-config) ----------------------
PASSWORD_FILE="$DEMO_DIR/redis-password"
if [[ -n "$EXTERNAL_MONGO_URI" ]]; then
    MONGO_URI="$EXTERNAL_MONGO_URI"
else
    MONGO_URI="mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true"
fi
# host:port of the MongoDB (the probe's `instance`).
MONGO_HOSTPORT="${MONGO_URI#mongodb://}"
MONGO_HOSTPORT="${MONGO_HOSTPORT##*@}"
MONGO_HOSTPORT="${MONGO_HOSTPORT%%/*}"
MONGO_HOSTPORT="${MONGO_HOSTPORT%%\?*}"

# The exporter's --config.file: examples/targets.yml's names and shape, local
# addresses, no TLS (see the alerts on purpose below), every target probed by
# Prometheus and none a default target.
demo_targets_yml() { # config_command
    cat <<EOF
# Generated by scripts/demo.sh: examples/targets.yml's targets on this machine.
targets:
  - name: sessions-redis
    kind: redis
    address: redis://127.0.0.1:$REDIS_PORT
    password_file: $PASSWORD_FILE
    timeout: 3s
    key_families:
      budget: 50ms
      min_pass_interval: 30s
    posture_options:
      config_command: "$1"
  - name: sessions-redis-replica
    kind: redis
    address: redis://127.0.0.1:$REPLICA_PORT
    password_file: $PASSWORD_FILE
    timeout: 3s
    collectors:
      keys: false
    posture_options:
      config_command: "$1"
  - name: tenderly-mongodb
    kind: mongodb
    address: "$MONGO_URI"
    timeout: 3s
    currentop_threshold: 1s
    tenderly:
      app_database: tenderly
      # The replayed mongod profiles at level 1 (slowms 100) so the profiler
      # panels have data: the demo's policy says so, instead of the guide's 0.
      drift: {profile: 1}
EOF
}

# deploy/prometheus.yml pointed at this machine; job names, __param_target names
# and relabeling stay as shipped.
demo_prometheus_yml() { # rules_glob
    sed -e "s#tenderly-exporter\.example\.internal:9879#127.0.0.1:$EXPORTER_PORT#g" \
        -e "s#alertmanager\.example\.internal:9093#127.0.0.1:$ALERTMANAGER_PORT#g" \
        -e "s#redis-sessions-replica\.example\.internal:6379#127.0.0.1:$REPLICA_PORT#g" \
        -e "s#redis-sessions\.example\.internal:6380#127.0.0.1:$REDIS_PORT#g" \
        -e "s#mongodb-1\.example\.internal:27017#$MONGO_HOSTPORT#g" \
        -e "s#\.\./alerts/\*\.rules\.yml#$1#" \
        -e "s#scrape_interval: 15s#scrape_interval: 5s#" \
        -e "s#scrape_timeout: 10s#scrape_timeout: 4s#" \
        -e "s#evaluation_interval: 15s#evaluation_interval: 5s#" \
        "$ROOT/deploy/prometheus.yml"
}

# The alerts this demo fires on purpose, and why. README ("Quick start") lists
# the same, and tests/it/demo.rs checks that exactly these fire. (With a real
# mongod instead of the replay server, the MongoDB ones depend on that server.)
DEMO_ALERTS=(
    "MongodbReplicationLagHigh|tenderly-mongodb: the replay server's secondaries lag 1151 s behind the primary"
    "MongodbLongRunningOperations|tenderly-mongodb: the replay server's \$currentOp has operations running longer than 1 s"
    "TenderlySecurityCheckFailing|tenderly-mongodb: mongodb_authorization_enabled, mongodb_tls_required, mongodb_not_bound_to_all_interfaces (the replayed mongod runs with --bind_ip_all, no auth, no TLS); sessions-redis, sessions-redis-replica: redis_tls_required (the DBA guide's redis.conf leaves TLS commented out)"
)

# The `for:` of alert $1 in the shipped rules (how long it waits before it fires).
rule_for() { # alertname
    awk -v name="$1" '
        $1 == "-" && $2 == "alert:" { current = $3 }
        $1 == "for:" && current == name { print $2; exit }
    ' "$ROOT"/alerts/*.rules.yml
}

print_alerts() {
    local entry name
    for entry in "${DEMO_ALERTS[@]}"; do
        name="${entry%%|*}"
        printf '  %s (after for: %s)\n      %s\n' "$name" "$(rule_for "$name")" "${entry#*|}"
    done
}

if [[ -n "$PRINT_CONFIG" ]]; then
    case "$PRINT_CONFIG" in
        targets) demo_targets_yml "CONFIG-renamed-secret" ;;
        prometheus) demo_prometheus_yml "$ROOT/alerts/*.rules.yml" ;;
    esac
    exit 0
fi
if ((PRINT_ALERTS)); then
    print_alerts
    exit 0
fi

# --- processes we own, stopped by the trap -------------------------------------------
REDIS_PID=""
REPLICA_PID=""
EXPORTER_PID=""
MONGO_PID=""
PROMETHEUS_PID=""
ALERTMANAGER_PID=""
TRAFFIC_PID=""
KEEP_DIR=0
HOLD_LOCK=0
# Every server is started with job control on (`set -m` ... `set +m` around its
# `&`), so it gets a process group of its own: stopping the group stops whatever
# it started too, and a Ctrl-C at the terminal reaches only this shell (foreground
# commands stay in its group), whose trap stops everything in order.

# shellcheck disable=SC2317 # only reached through the EXIT trap
stop_pid() { # pid
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    # The whole process group (the child and anything it started), then the child.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # only reached through the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$EXPORTER_PID$REDIS_PID$REPLICA_PID$TRAFFIC_PID$MONGO_PID$PROMETHEUS_PID$ALERTMANAGER_PID" ]]; then
        log "stopping the demo"
    fi
    stop_pid "$PROMETHEUS_PID"
    stop_pid "$ALERTMANAGER_PID"
    stop_pid "$TRAFFIC_PID"
    stop_pid "$EXPORTER_PID"
    stop_pid "$MONGO_PID"
    stop_pid "$REPLICA_PID"
    stop_pid "$REDIS_PID"
    # Show our logs when something failed, not after a plain Ctrl-C (130) or kill (143),
    # and never those of another demo's directory (KEEP_DIR).
    if ((status != 0 && status != 130 && status != 143 && KEEP_DIR == 0)) && [[ -d "$DEMO_DIR" ]]; then
        for f in exporter.log redis.log replica.log mongodb.log prometheus.log alertmanager.log; do
            if [[ -s "$DEMO_DIR/$f" ]]; then
                printf -- '--- last lines of %s ---\n' "$f" >&2
                tail -n 20 "$DEMO_DIR/$f" >&2
            fi
        done
    fi
    if ((KEEP_DIR == 0)); then
        rm -rf "$DEMO_DIR"
    fi
    # The lock file is ours only while we hold the lock (another demo's stays).
    if ((HOLD_LOCK)); then
        rm -f "$DEMO_DIR.lock"
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
if [[ -z "$EXTERNAL_MONGO_URI" && -z "$MONGOD_BIN" && ! -x "$REPLAY_BIN" ]]; then
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
    HOLD_LOCK=1
fi
if pid="$(stale_pid "$DEMO_DIR/demo.pid" demo.sh)" && [[ "$pid" != "$$" ]]; then
    KEEP_DIR=1
    die "another demo is running (pid $pid); stop it with Ctrl-C first"
fi
for leftover in "redis.pid:redis-server" "replica.pid:redis-server" "exporter.pid:tenderly-exporter" "mongodb.pid:mongo" \
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
for taken in "$REDIS_PORT:Redis" "$REPLICA_PORT:Redis replica"; do
    if port_in_use "${taken%%:*}"; then
        KEEP_DIR=1
        die "127.0.0.1:${taken%%:*} is already in use by another program; the demo needs it for its ${taken#*:}"
    fi
done
if port_in_use "$EXPORTER_PORT"; then
    KEEP_DIR=1
    die "127.0.0.1:$EXPORTER_PORT is already in use; pick another exporter port with --port"
fi
for taken in "$MONGO_PORT:MongoDB" "$PROMETHEUS_PORT:Prometheus" "$ALERTMANAGER_PORT:Alertmanager"; do
    # With --mongodb-uri the MongoDB is someone else's and already listening.
    [[ -n "$EXTERNAL_MONGO_URI" && "${taken#*:}" == MongoDB ]] && continue
    if port_in_use "${taken%%:*}"; then
        KEEP_DIR=1
        die "127.0.0.1:${taken%%:*} is already in use by another program; the demo needs it for its ${taken#*:}"
    fi
done

rm -rf "$DEMO_DIR"
mkdir -m 700 "$DEMO_DIR"
echo "$$" >"$DEMO_DIR/demo.pid"

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
# CONFIG is renamed to a name only the exporter is told (posture_options.config_command
# in its 0600 config), so the dangerous-commands check passes and the CONFIG-based
# checks can still be evaluated.
CONFIG_COMMAND="$(head -c 1024 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')"
CONFIG_COMMAND="CONFIG-${CONFIG_COMMAND:0:16}"

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
maxmemory 1gb
maxmemory-policy allkeys-lru
latency-monitor-threshold 1
save 900 1
save 300 10
save 60 10000
appendonly no
rename-command FLUSHDB ""
rename-command FLUSHALL ""
rename-command KEYS ""
rename-command CONFIG $CONFIG_COMMAND
EOF
    # The replica: the same file's settings, its own port and files.
    sed -e "s#^port .*#port $REPLICA_PORT#" \
        -e "s#^pidfile .*#pidfile $DEMO_DIR/replica.pid#" \
        -e "s#^logfile .*#logfile $DEMO_DIR/replica.log#" \
        "$DEMO_DIR/redis.conf" >"$DEMO_DIR/replica.conf"
    printf 'dbfilename replica.rdb\nreplicaof 127.0.0.1 %s\nmasterauth %s\n' "$REDIS_PORT" "$REDISCLI_AUTH" \
        >>"$DEMO_DIR/replica.conf"
)
log "starting redis-server on 127.0.0.1:$REDIS_PORT (data in $DEMO_DIR)"
set -m
redis-server "$DEMO_DIR/redis.conf" </dev/null >/dev/null 2>>"$DEMO_DIR/redis.log" 9>&- &
REDIS_PID=$!
set +m

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
log "starting the Redis replica on 127.0.0.1:$REPLICA_PORT"
set -m
redis-server "$DEMO_DIR/replica.conf" </dev/null >/dev/null 2>>"$DEMO_DIR/replica.log" 9>&- &
REPLICA_PID=$!
set +m

# --- 5. sample data -------------------------------------------------------------------
# RESP for redis-cli --pipe, in the proportions of the real capture (per 310 keys:
# 200 session EX 3600, 50 jwt EX 900, 30 ratelimit INCR+EXPIRE 60, 20 user hashes
# with EXPIRE 3600, 10 otp EX 300): every key expires, as the DBA guide asks ("TTL
# configured per data type, default 3600 seconds"), so TenderlyKeysWithoutTtl stays quiet. Every value is synthetic: test-user ids, tokens
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
            a[1] = "EXPIRE"; a[3] = 3600; emit(3)
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
set -m
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
            echo "EXPIRE tenderly:user:test-user-$(printf '%06d' $((i % 64))) 3600"
            echo "SET tenderly:otp:test-user-$(printf '%06d' $((i % 64))) $(printf '%06d' $((RANDOM % 1000000))) EX 300"
            echo "DBSIZE"
        } | rcli >/dev/null 2>&1 || true
        sleep 1
    done
) &
TRAFFIC_PID=$!
set +m

# --- 6. MongoDB ------------------------------------------------------------------------
MONGO_KIND=""
if [[ -n "$EXTERNAL_MONGO_URI" ]]; then
    log "using the MongoDB at $MONGO_HOSTPORT (--mongodb-uri)"
    MONGO_KIND="external (--mongodb-uri)"
elif [[ -n "$MONGOD_BIN" ]]; then
    mkdir -m 700 "$DEMO_DIR/mongodb"
    mongod_args=(--dbpath "$DEMO_DIR/mongodb" --bind_ip 127.0.0.1 --port "$MONGO_PORT"
        --oplogSize 64 --wiredTigerCacheSizeGB 0.25)
    MONGOSH_BIN="$(command -v mongosh 2>/dev/null || true)"
    # A replica set needs replSetInitiate; without mongosh run a standalone server.
    [[ -n "$MONGOSH_BIN" ]] && mongod_args+=(--replSet tenderly-demo)
    log "starting mongod on 127.0.0.1:$MONGO_PORT (data in $DEMO_DIR/mongodb)"
    set -m
    "$MONGOD_BIN" "${mongod_args[@]}" </dev/null >>"$DEMO_DIR/mongodb.log" 2>&1 9>&- &
    MONGO_PID=$!
    set +m
    # sed reads all of it (no SIGPIPE under pipefail); a failing --version is not fatal.
    MONGO_KIND="mongod $({ "$MONGOD_BIN" --version 2>/dev/null || true; } | sed -n '1s/^db version //p')"
else
    log "no mongod on PATH: starting the MongoDB replay server on 127.0.0.1:$MONGO_PORT (scenario primary)"
    set -m
    "$REPLAY_BIN" --scenario primary --listen "127.0.0.1:$MONGO_PORT" \
        </dev/null >>"$DEMO_DIR/mongodb.log" 2>&1 9>&- &
    MONGO_PID=$!
    set +m
    MONGO_KIND="replay server (examples/mongo_replay.rs, scenario primary: secondaries lag 1151 s)"
fi
if [[ -n "$MONGO_PID" ]]; then
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
fi

# --- 7. the exporter ----------------------------------------------------------------
(
    umask 077
    demo_targets_yml "$CONFIG_COMMAND" >"$DEMO_DIR/targets.yml"
)
"$EXPORTER_BIN" --config.file "$DEMO_DIR/targets.yml" --check-config >>"$DEMO_DIR/exporter.log" 2>&1 ||
    die "the exporter rejects the generated $DEMO_DIR/targets.yml"
log "starting tenderly-exporter on 127.0.0.1:$EXPORTER_PORT (targets: sessions-redis, sessions-redis-replica, tenderly-mongodb)"
set -m
"$EXPORTER_BIN" \
    --web.listen-address "127.0.0.1:$EXPORTER_PORT" \
    --config.file "$DEMO_DIR/targets.yml" \
    </dev/null >>"$DEMO_DIR/exporter.log" 2>&1 9>&- &
EXPORTER_PID=$!
set +m
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
# (and the security mail) need secrets, so the demo's receivers of the same names deliver nowhere. See the
# firing alerts in the Alertmanager UI.
{
    sed '/^receivers:/,$d' "$ROOT/deploy/alertmanager.yml"
    printf 'receivers:\n  - name: security\n  - name: pager\n  - name: chat\n'
} >"$DEMO_DIR/alertmanager.yml"
mkdir -m 700 "$DEMO_DIR/alertmanager-data"
log "starting Alertmanager on 127.0.0.1:$ALERTMANAGER_PORT"
set -m
"$ALERTMANAGER_BIN" \
    --config.file="$DEMO_DIR/alertmanager.yml" \
    --storage.path="$DEMO_DIR/alertmanager-data" \
    --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address= \
    </dev/null >>"$DEMO_DIR/alertmanager.log" 2>&1 9>&- &
ALERTMANAGER_PID=$!
set +m
echo "$ALERTMANAGER_PID" >"$DEMO_DIR/alertmanager.pid"

# deploy/prometheus.yml pointed at this machine (demo_prometheus_yml). With
# --fast-alerts the rules are copies whose every `for:` is 1s (expressions unchanged).
RULES_GLOB="$ROOT/alerts/*.rules.yml"
if ((FAST_ALERTS)); then
    mkdir -m 700 "$DEMO_DIR/rules"
    for f in "$ROOT"/alerts/*.rules.yml; do
        sed -e 's/^\( *\)for: .*/\1for: 1s/' "$f" >"$DEMO_DIR/rules/$(basename "$f")"
    done
    RULES_GLOB="$DEMO_DIR/rules/*.rules.yml"
fi
demo_prometheus_yml "$RULES_GLOB" >"$DEMO_DIR/prometheus.yml"
if command -v promtool >/dev/null 2>&1; then
    promtool check config "$DEMO_DIR/prometheus.yml" >>"$DEMO_DIR/prometheus.log" 2>&1 ||
        die "promtool rejects the generated $DEMO_DIR/prometheus.yml"
fi
mkdir -m 700 "$DEMO_DIR/prometheus-data"
log "starting Prometheus on 127.0.0.1:$PROMETHEUS_PORT with the rules in alerts/"
set -m
prometheus \
    --config.file="$DEMO_DIR/prometheus.yml" \
    --storage.tsdb.path="$DEMO_DIR/prometheus-data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    </dev/null >>"$DEMO_DIR/prometheus.log" 2>&1 9>&- &
PROMETHEUS_PID=$!
set +m
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

# Every scrape target up (the exporter and three probes); the first scrapes land within one interval.
targets_up() {
    command -v curl >/dev/null 2>&1 || return 0
    local body
    body="$(curl -s -m 2 "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets?state=active" || true)"
    [[ "$(grep -o '"health":"up"' <<<"$body" | wc -l)" -ge 4 ]] && ! grep -q '"health":"\(down\|unknown\)"' <<<"$body"
}
ready=0
for _ in $(seq 1 60); do
    if targets_up; then
        ready=1
        break
    fi
    sleep 0.5
done
# UI paths that work with the installed versions: Debian's Prometheus serves its
# UI under /classic/ (no /targets), and Debian's Alertmanager has no UI at all.
prom_page() { # page
    if [[ "$(http_status "$PROMETHEUS_PORT" "/$1")" == "200" ]]; then
        echo "http://127.0.0.1:$PROMETHEUS_PORT/$1"
    elif [[ "$(http_status "$PROMETHEUS_PORT" "/classic/$1")" == "200" ]]; then
        echo "http://127.0.0.1:$PROMETHEUS_PORT/classic/$1"
    else
        echo "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/$1"
    fi
}
PROM_TARGETS_URL="$(prom_page targets)"
PROM_ALERTS_URL="$(prom_page alerts)"
if [[ "$(http_status "$ALERTMANAGER_PORT" /)" == "200" ]] &&
    ! curl -s -m 2 "http://127.0.0.1:$ALERTMANAGER_PORT/" 2>/dev/null | grep -qi 'not found\|no ui'; then
    AM_URL="http://127.0.0.1:$ALERTMANAGER_PORT/  (API: /api/v2/alerts)"
else
    AM_URL="http://127.0.0.1:$ALERTMANAGER_PORT/api/v2/alerts  (this Alertmanager has no web UI)"
fi
((ready)) || log "warning: not every Prometheus target is up yet; see $PROM_TARGETS_URL"
if ((FAST_ALERTS)); then
    FOR_NOTE="--fast-alerts: every for: is 1s here, so they fire within a minute"
else
    FOR_NOTE="each fires once its condition has held for the rule's for:"
fi

cat <<EOF

Tenderly exporter demo is running.

  probes       http://127.0.0.1:$EXPORTER_PORT/probe?target=sessions-redis
               (also sessions-redis-replica, tenderly-mongodb: every target is probed,
               as in deploy/prometheus.yml; /metrics has the exporter's own metrics)
  landing page http://127.0.0.1:$EXPORTER_PORT/
  health       http://127.0.0.1:$EXPORTER_PORT/-/healthy  and  /-/ready
  Prometheus   targets: $PROM_TARGETS_URL
               alerts:  $PROM_ALERTS_URL
  Alertmanager $AM_URL

  Alerts this demo fires on purpose ($FOR_NOTE):
$(print_alerts)
  Nothing else should fire. Security findings that do not fire: the dangerous commands
  are renamed as the DBA guide's redis.conf does (and CONFIG too, to a secret name the
  exporter is told), and every tenderly: key has a TTL.

  Try:
    curl -s 'localhost:$EXPORTER_PORT/probe?target=sessions-redis' | grep -E '^(redis_up|tenderly_redis_keys)'
    curl -s 'localhost:$EXPORTER_PORT/probe?target=tenderly-mongodb' | grep -E '^mongodb_up'
    curl -s 'localhost:$PROMETHEUS_PORT/api/v1/query?query=ALERTS'
    $EXPORTER_BIN doctor --config.file $DEMO_DIR/targets.yml

  Redis:        127.0.0.1:$REDIS_PORT (replica :$REPLICA_PORT), password in $PASSWORD_FILE
                REDISCLI_AUTH="\$(cat $PASSWORD_FILE)" redis-cli -p $REDIS_PORT info keyspace
  MongoDB:      $MONGO_URI
                $MONGO_KIND
  Dashboards:   import dashboards/*.json into Grafana 10+ with a Prometheus datasource
                pointing at http://127.0.0.1:$PROMETHEUS_PORT (see deploy/grafana/)
  Logs:         $DEMO_DIR/{exporter,redis,replica,mongodb,prometheus,alertmanager}.log

Press Ctrl-C to stop the demo (this removes $DEMO_DIR).
EOF

# Foreground until Ctrl-C, or until one of the processes dies.
while true; do
    for svc in "REDIS:redis-server" "REPLICA:Redis replica" "MONGO:MongoDB" "EXPORTER:tenderly-exporter" \
        "PROMETHEUS:Prometheus" "ALERTMANAGER:Alertmanager"; do
        pid_var="${svc%%:*}_PID"
        [[ -n "${!pid_var}" ]] || continue
        kill -0 "${!pid_var}" 2>/dev/null || die "${svc#*:} stopped unexpectedly"
    done
    sleep 1 &
    wait $! || true
done
