//! Redis I/O: one persistent authenticated connection per target, feature
//! detection once per connection, and one pipelined round trip per scrape.
//!
//! Why the care about error replies: every error reply increments the server's
//! `errorstat_*` counters, which operators alert on, and shows in its log. An
//! exporter that probes with commands the server lacks (CONFIG on managed
//! services, `CLIENT SETINFO` on Redis < 7.2, multi-argument `CONFIG GET` on
//! Redis 6) pollutes the very signals it exports. So:
//! - `COMMAND INFO` tells which commands exist under their own names (renamed or
//!   disabled commands come back nil) and whether `CONFIG GET` is variadic, without
//!   relying on `redis_version` (Valkey 8 reports 7.2.4).
//! - ACL denials cannot be seen in advance by an unprivileged user; a command that
//!   gets `NOPERM` once is dropped for the life of the process and logged once.
//! - The client library's `CLIENT SETINFO` handshake is switched off.
//! - A Sentinel (`redis_mode:sentinel`) gets only `INFO` and `SENTINEL ...`
//!   ([`super::sentinel`]); `LATENCY HISTOGRAM` goes only to servers that list
//!   it in `COMMAND INFO` (Redis 7+); `CLIENT LIST` runs at most once per
//!   interval on a connection of its own ([`super::clients`]).

use std::collections::BTreeSet;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Value};
use rustls::pki_types::ServerName;
use tokio::sync::Mutex;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;

use super::capped::{CapSignal, CappedStream, MAX_REPLY_BYTES};
use super::load::CommandLoad;
use super::RedisOptions;
use super::{clients, info, latency, sentinel, LatencyEvent, RedisSnapshot, Slowlog};

/// The `CONFIG GET` parameters are exactly those the encoder uses plus the
/// caller's `extra_config` (the drift policy's `save`): never `CONFIG GET *`,
/// which is most of redis_exporter's server-side cost. maxmemory and its
/// policy come from INFO memory, which every version has.
fn config_params(spec: &RedisOptions) -> impl Iterator<Item = &'static str> + '_ {
    super::encode::CONFIG_NUMBERS.iter().map(|(param, _)| *param).chain(spec.extra_config.iter().copied())
}

/// Longest pause between reconnect attempts after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why a scrape failed. Messages carry no credentials and no server-supplied text
/// beyond the error code (an `ERR` detail can echo command arguments).
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("reconnect backoff after {failures} consecutive failures, next attempt in {wait_ms} ms")]
    Backoff { failures: u32, wait_ms: u128 },
    #[error("connect failed: {0}")]
    Connect(String),
    /// The server's code (`WRONGPASS`, `NOAUTH`, `NOPERM`, `DENIED`) or
    /// `authentication rejected`; displayed in words ([`auth_words`]).
    #[error("{}", auth_words(.0).unwrap_or_else(|| .0.clone()))]
    Auth(String),
    #[error("deadline exceeded during {0}")]
    Timeout(&'static str),
    #[error("{command} failed: {reason}")]
    Command { command: &'static str, reason: String },
    #[error("unexpected reply to {0}")]
    Protocol(&'static str),
    #[error("reading TLS file {path}: {kind}")]
    TlsFile { path: String, kind: std::io::ErrorKind },
    /// The server sent more than the reply budget; the connection was dropped.
    #[error("reply from {target} exceeded {limit} bytes; connection dropped")]
    ReplyTooLarge { target: String, limit: usize },
}

impl RedisError {
    /// A stable name for what went wrong, without the details that change from
    /// one attempt to the next (a countdown, an I/O error kind): what log
    /// deduplication compares. [`RedisError::Backoff`] is `"backoff"`: not a new
    /// failure but the last one still in force.
    /// Whether the server refused the credentials (a rotated password, say).
    pub fn is_auth(&self) -> bool {
        matches!(self, RedisError::Auth(_))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RedisError::Backoff { .. } => "backoff",
            RedisError::Connect(_) => "connect",
            RedisError::Auth(_) => "auth",
            RedisError::Timeout(_) => "timeout",
            RedisError::Command { .. } => "command",
            RedisError::Protocol(_) => "protocol",
            RedisError::TlsFile { .. } => "tls_file",
            RedisError::ReplyTooLarge { .. } => "reply_too_large",
        }
    }
}

/// How `CONFIG GET` may be called on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConfigGet {
    Unavailable,
    /// Redis < 7: one pattern per call.
    Single,
    /// Redis >= 7: several parameters in one call.
    Multi,
}

/// What this connection's server supports, learnt once per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Features {
    config_get: ConfigGet,
    slowlog: bool,
    latency: bool,
    cluster: bool,
    /// `LATENCY HISTOGRAM` exists (Redis 7+).
    latency_histogram: bool,
    /// `redis_mode:sentinel`: only INFO and SENTINEL are sent (see [`super::sentinel`]).
    sentinel: bool,
    /// `CLIENT` exists under its own name (not renamed or disabled).
    client: bool,
}

struct Live {
    conn: MultiplexedConnection,
    features: Features,
    /// Set when a reply exceeded the connection's byte budget.
    cap: CapSignal,
    /// The last `CONFIG GET` values and when they were read (see
    /// [`super::RedisCollectors::config_max_age`]); per connection, so a
    /// reconnect (perhaps to a restarted server) reads them again.
    config: Option<(Instant, Vec<(String, String)>)>,
}

#[derive(Default)]
struct ConnState {
    live: Option<Live>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// A Redis target's connection and the commands it has refused.
pub struct RedisClient {
    target: String,
    spec: RedisOptions,
    state: Mutex<ConnState>,
    /// Commands the server refused with NOPERM/unknown command: never sent again.
    refused: StdMutex<BTreeSet<&'static str>>,
    /// Series left out by the encoder's cardinality caps since start, by family.
    dropped: StdMutex<std::collections::BTreeMap<&'static str, u64>>,
    /// Commands this client sent (handshakes included) and its round-trip time.
    load: CommandLoad,
    /// The last certificate check of a `rediss://` target: when, and the leaf's notAfter.
    tls_expiry: StdMutex<Option<(Instant, Option<i64>)>>,
    /// When `CLIENT LIST` last ran and what it counted (see [`super::clients`]).
    client_list: StdMutex<Option<(Instant, Option<clients::ClientCounts>)>>,
    /// Whether the server was a Sentinel when last connected.
    sentinel: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient").field("target", &self.target).field("spec", &self.spec).finish()
    }
}

impl RedisClient {
    pub fn new(target: impl Into<String>, spec: RedisOptions) -> Self {
        RedisClient {
            target: target.into(),
            spec,
            state: Mutex::new(ConnState::default()),
            refused: StdMutex::new(BTreeSet::new()),
            dropped: StdMutex::new(std::collections::BTreeMap::new()),
            load: CommandLoad::new(),
            tls_expiry: StdMutex::new(None),
            client_list: StdMutex::new(None),
            sentinel: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the server was a Redis Sentinel when this client last connected:
    /// nothing but the Sentinel commands may be sent to it (no key scan, no posture probe).
    pub fn is_sentinel(&self) -> bool {
        self.sentinel.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Commands this client has sent to the server and the time it waited for replies.
    pub fn load(&self) -> &CommandLoad {
        &self.load
    }

    /// Adds one encoding's capped series to this target's running totals.
    pub fn count_dropped(&self, dropped: &super::encode::SeriesDropped) {
        if dropped.0.is_empty() {
            return;
        }
        let mut totals = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        for (family, n) in &dropped.0 {
            let total = totals.entry(family).or_default();
            *total = total.saturating_add(*n);
        }
    }

    /// Series left out by the cardinality caps since start, by family (only families that dropped any).
    pub fn series_dropped(&self) -> Vec<(&'static str, u64)> {
        let totals = self.dropped.lock().unwrap_or_else(|p| p.into_inner());
        totals.iter().map(|(family, n)| (*family, *n)).collect()
    }

    /// One scrape: connect if needed, then one pipelined round trip, all before `deadline`.
    pub async fn scrape(&self, deadline: Instant) -> Result<RedisSnapshot, RedisError> {
        let mut state = timeout_at(deadline, self.state.lock()).await.map_err(|_| RedisError::Timeout("queueing"))?;
        if state.live.is_none() {
            if let Some(at) = state.retry_at {
                let now = Instant::now();
                if at > now {
                    return Err(RedisError::Backoff { failures: state.failures, wait_ms: (at - now).as_millis() });
                }
            }
            match self.connect(deadline).await {
                Ok(live) => {
                    state.live = Some(live);
                    state.failures = 0;
                    state.retry_at = None;
                }
                Err(e) => {
                    state.failures = state.failures.saturating_add(1);
                    // The first failure retries on the next scrape; repeated ones back off.
                    let backoff = Duration::from_millis(500)
                        .saturating_mul(1u32 << state.failures.saturating_sub(1).min(5))
                        .min(MAX_BACKOFF);
                    state.retry_at = (state.failures > 1).then(|| Instant::now() + backoff);
                    return Err(e);
                }
            }
        }
        let Some(live) = state.live.as_mut() else {
            return Err(RedisError::Protocol("connection state"));
        };
        let sentinel = live.features.sentinel;
        let client_command = live.features.client;
        let result = match sentinel {
            true => self.collect_sentinel(live, deadline).await,
            false => self.collect(live, deadline).await,
        };
        let result = result.map_err(|e| self.cap_error(&live.cap, e));
        if let Err(e) = &result {
            // After a timeout or I/O error the connection may hold a half-read reply: start fresh.
            if !matches!(e, RedisError::Command { .. }) {
                state.live = None;
            }
        }
        drop(state);
        let mut snapshot = result?;
        snapshot.tls_certificate_expiry = self.tls_expiry(deadline).await;
        let want = self.spec.collectors;
        if !sentinel && client_command && (want.clients_by_name || want.clients_by_user) {
            snapshot.clients = self.client_counts(deadline).await;
            snapshot.clients_by_user = want.clients_by_user;
        }
        Ok(snapshot)
    }

    /// The `CLIENT LIST` counts: from the server at most once per interval, on a
    /// connection of its own with its own reply budget; the last counts otherwise.
    async fn client_counts(&self, deadline: Instant) -> Option<clients::ClientCounts> {
        let options = self.spec.client_list;
        {
            let cache = self.client_list.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, counts)) = cache.as_ref() {
                if at.elapsed() < options.interval {
                    return counts.clone();
                }
            }
        }
        if self.is_refused("CLIENT LIST") {
            return None;
        }
        let counts = self.run_client_list(options, deadline).await;
        *self.client_list.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), counts.clone()));
        counts
    }

    async fn run_client_list(
        &self,
        options: clients::ClientListOptions,
        deadline: Instant,
    ) -> Option<clients::ClientCounts> {
        let sent_at = Instant::now();
        let (mut conn, cap) = match open_capped(&self.spec, None, true, deadline, options.max_reply_bytes).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(target_name = %self.target, error = %e, "CLIENT LIST connection failed");
                return None;
            }
        };
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        // Our own connection is left out of the counts by its id (if we may ask for it).
        let ask_id = !self.is_refused("CLIENT ID");
        if ask_id {
            pipe.cmd("CLIENT").arg("ID");
        }
        pipe.cmd("CLIENT").arg("LIST");
        let replies: Result<Result<Vec<Value>, _>, _> = timeout_at(deadline, pipe.query_async(&mut conn)).await;
        self.load.record(handshake_commands(&self.spec, None, true) + pipe.len(), sent_at.elapsed());
        let replies = match replies {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                if cap.exceeded() {
                    tracing::warn!(
                        target_name = %self.target,
                        limit = options.max_reply_bytes,
                        "CLIENT LIST reply exceeded its budget; clients by name are not exported this interval                          (raise client_list.max_reply_bytes)"
                    );
                } else {
                    tracing::debug!(target_name = %self.target, error = %describe(&e), "CLIENT LIST failed");
                }
                return None;
            }
            Err(_) => return None,
        };
        let mut replies = replies.iter();
        let own_id = match ask_id.then(|| replies.next()).flatten() {
            Some(Value::ServerError(e)) => {
                self.refuse("CLIENT ID", e);
                None
            }
            Some(v) => int_of(v),
            None => None,
        };
        match replies.next() {
            Some(Value::ServerError(e)) => {
                self.refuse("CLIENT LIST", e);
                None
            }
            Some(v) => {
                let text = String::from_utf8_lossy(bytes_of(v)?);
                Some(clients::parse_client_list_excluding(&text, own_id, options.top_n))
            }
            None => None,
        }
    }

    /// A Sentinel's scrape: `INFO ALL` and `SENTINEL MASTERS` in one round
    /// trip, then `SENTINEL SENTINELS` / `REPLICAS` per master in a second.
    async fn collect_sentinel(&self, live: &mut Live, deadline: Instant) -> Result<RedisSnapshot, RedisError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("INFO").arg("ALL");
        let ask_masters = !self.is_refused("SENTINEL");
        if ask_masters {
            pipe.cmd("SENTINEL").arg("MASTERS");
        }
        let sent_at = Instant::now();
        let replies: Result<Vec<Value>, _> = timeout_at(deadline, pipe.query_async(&mut live.conn))
            .await
            .map_err(|_| RedisError::Timeout("pipelined scrape"))?;
        self.load.record(pipe.len(), sent_at.elapsed());
        let mut replies = replies.map_err(|e| RedisError::Connect(describe(&e)))?.into_iter();
        let mut snapshot = RedisSnapshot::default();
        match replies.next().ok_or(RedisError::Protocol("INFO ALL"))? {
            Value::ServerError(e) => return Err(server_error("INFO", &e)),
            v => snapshot.info = info::parse_info(bytes_of(&v).ok_or(RedisError::Protocol("INFO ALL"))?),
        }
        if !ask_masters {
            return Ok(snapshot);
        }
        let (masters, masters_dropped) = match replies.next().ok_or(RedisError::Protocol("SENTINEL MASTERS"))? {
            Value::ServerError(e) => {
                self.refuse("SENTINEL", &e);
                return Ok(snapshot);
            }
            v => sentinel::parse_masters(&v).ok_or(RedisError::Protocol("SENTINEL MASTERS"))?,
        };
        let mut state = sentinel::SentinelSnapshot { masters: Vec::new(), masters_dropped };
        if !masters.is_empty() {
            // Sentinels before 5.0 know only SLAVES; one refusal switches for good.
            let replicas = if self.is_refused("SENTINEL REPLICAS") { "SLAVES" } else { "REPLICAS" };
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for m in &masters {
                pipe.cmd("SENTINEL").arg("SENTINELS").arg(&m.name);
                pipe.cmd("SENTINEL").arg(replicas).arg(&m.name);
            }
            let sent_at = Instant::now();
            let replies: Result<Vec<Value>, _> = timeout_at(deadline, pipe.query_async(&mut live.conn))
                .await
                .map_err(|_| RedisError::Timeout("SENTINEL SENTINELS"))?;
            self.load.record(pipe.len(), sent_at.elapsed());
            let replies = replies.map_err(|e| RedisError::Connect(describe(&e)))?;
            let mut replies = replies.chunks_exact(2);
            for master in masters {
                let (sentinels, replicas_reply) = match replies.next() {
                    Some([s, r]) => (sentinel::parse_peers(s), r),
                    _ => (None, &Value::Nil),
                };
                let replicas_peers = match replicas_reply {
                    Value::ServerError(e) if replicas == "REPLICAS" => {
                        self.refuse("SENTINEL REPLICAS", e);
                        None
                    }
                    v => sentinel::parse_peers(v),
                };
                state.masters.push(sentinel::MasterState { master, sentinels, replicas: replicas_peers });
            }
        }
        snapshot.sentinel = Some(state);
        Ok(snapshot)
    }

    /// The server certificate's notAfter for a `rediss://` target, from a
    /// fresh handshake at most every [`tls_expiry::CHECK_INTERVAL`]; the last
    /// reading in between. A failed check keeps no value (and is retried at
    /// the next interval).
    async fn tls_expiry(&self, deadline: Instant) -> Option<i64> {
        if !self.spec.url.starts_with("rediss://") {
            return None;
        }
        let cached = *self.tls_expiry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, value)) = cached {
            if at.elapsed() < super::tls_expiry::CHECK_INTERVAL {
                return value;
            }
        }
        let value = match server_certificate_expiry(&self.spec, deadline).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(target_name = %self.target, error = %e, "TLS certificate check failed");
                None
            }
        };
        *self.tls_expiry.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), value));
        value
    }

    async fn connect(&self, deadline: Instant) -> Result<Live, RedisError> {
        let sent_at = Instant::now();
        let (mut conn, cap) =
            open_capped(&self.spec, None, true, deadline, MAX_REPLY_BYTES).await.map_err(|e| self.name_target(e))?;
        self.load.record(handshake_commands(&self.spec, None, true), sent_at.elapsed());
        let features = self.detect(&mut conn, deadline).await.map_err(|e| self.cap_error(&cap, e))?;
        tracing::debug!(target_name = %self.target, ?features, "redis connected");
        self.sentinel.store(features.sentinel, std::sync::atomic::Ordering::Relaxed);
        Ok(Live { conn, features, cap, config: None })
    }

    /// `e`, or the reply-budget error if that is what broke the connection.
    fn cap_error(&self, cap: &CapSignal, e: RedisError) -> RedisError {
        match cap.exceeded() {
            true => RedisError::ReplyTooLarge { target: self.target.clone(), limit: MAX_REPLY_BYTES },
            false => e,
        }
    }

    fn name_target(&self, e: RedisError) -> RedisError {
        match e {
            RedisError::ReplyTooLarge { limit, .. } => RedisError::ReplyTooLarge { target: self.target.clone(), limit },
            e => e,
        }
    }

    /// Learns which commands exist, and names the connection, in one round trip.
    async fn detect(&self, conn: &mut MultiplexedConnection, deadline: Instant) -> Result<Features, RedisError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("INFO").arg("server");
        let probe_commands = !self.is_refused("COMMAND INFO");
        if probe_commands {
            pipe.cmd("COMMAND").arg("INFO").arg(&["config", "slowlog", "latency", "cluster", "client"]);
        }
        let sent_at = Instant::now();
        let replies: Result<Vec<Value>, _> =
            timeout_at(deadline, pipe.query_async(conn)).await.map_err(|_| RedisError::Timeout("feature detection"))?;
        self.load.record(pipe.len(), sent_at.elapsed());
        let replies = replies.map_err(|e| classify_connect_error(&e))?;
        let server_info = match replies.first() {
            Some(Value::ServerError(e)) => return Err(server_error("INFO", e)),
            Some(v) => info::parse_info(bytes_of(v).ok_or(RedisError::Protocol("INFO server"))?),
            None => return Err(RedisError::Protocol("INFO server")),
        };
        let cluster = server_info.get("redis_mode") == Some("cluster");
        let sentinel = server_info.get("redis_mode") == Some("sentinel");
        // Without COMMAND INFO, the version decides (Valkey 7.2+ reports 7.2.4 and has it too).
        let version_7 = server_info
            .get("redis_version")
            .and_then(|v| v.split('.').next())
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 7);
        let mut features = Features {
            config_get: ConfigGet::Multi,
            slowlog: true,
            latency: true,
            cluster,
            latency_histogram: version_7,
            sentinel,
            client: true,
        };
        let mut client_setname = true;
        match replies.get(1) {
            Some(Value::Array(items)) if items.len() == 5 => {
                features.config_get = config_get_mode(&items[0]);
                features.slowlog = !matches!(items[1], Value::Nil);
                features.latency = !matches!(items[2], Value::Nil);
                features.latency_histogram = has_subcommand(&items[2], b"latency|histogram");
                features.cluster &= !matches!(items[3], Value::Nil);
                client_setname = !matches!(items[4], Value::Nil);
                features.client = client_setname;
            }
            Some(Value::ServerError(e)) => {
                // Without COMMAND INFO we learn from refusals instead (see module docs).
                self.refuse("COMMAND INFO", e);
            }
            _ => {}
        }
        if sentinel {
            // A Sentinel rejects everything but INFO, SENTINEL and a few others.
            features.config_get = ConfigGet::Unavailable;
            features.slowlog = false;
            features.latency = false;
            features.cluster = false;
            features.latency_histogram = false;
        }
        if client_setname && !self.is_refused("CLIENT SETNAME") {
            let sent_at = Instant::now();
            let reply: Result<Value, _> = timeout_at(
                deadline,
                redis::cmd("CLIENT").arg("SETNAME").arg("tenderly-exporter").query_async::<Value>(conn),
            )
            .await
            .map_err(|_| RedisError::Timeout("CLIENT SETNAME"))?;
            self.load.record(1, sent_at.elapsed());
            if let Err(e) = reply {
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) || e.code().is_some() {
                    self.refused_insert("CLIENT SETNAME", e.code().unwrap_or("error"));
                } else {
                    return Err(classify_connect_error(&e));
                }
            }
        }
        Ok(features)
    }

    async fn collect(&self, live: &mut Live, deadline: Instant) -> Result<RedisSnapshot, RedisError> {
        let f = live.features;
        let want = self.spec.collectors;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("INFO").arg("ALL");
        let config_wanted = want.config && !self.is_refused("CONFIG GET");
        let config_fresh = live
            .config
            .as_ref()
            .is_some_and(|(at, _)| !want.config_max_age.is_zero() && at.elapsed() < want.config_max_age);
        let config_get = if config_wanted && !config_fresh { f.config_get } else { ConfigGet::Unavailable };
        match config_get {
            ConfigGet::Multi => {
                pipe.cmd("CONFIG").arg("GET");
                for param in config_params(&self.spec) {
                    pipe.arg(param);
                }
            }
            ConfigGet::Single => {
                for param in config_params(&self.spec) {
                    pipe.cmd("CONFIG").arg("GET").arg(param);
                }
            }
            ConfigGet::Unavailable => {}
        }
        let slowlog = want.slowlog && f.slowlog && !self.is_refused("SLOWLOG");
        if slowlog {
            pipe.cmd("SLOWLOG").arg("LEN");
            pipe.cmd("SLOWLOG").arg("GET").arg(1);
        }
        let latency = want.latency && f.latency && !self.is_refused("LATENCY LATEST");
        if latency {
            pipe.cmd("LATENCY").arg("LATEST");
        }
        let histogram = want.latency_histogram && f.latency_histogram && !self.is_refused("LATENCY HISTOGRAM");
        if histogram {
            pipe.cmd("LATENCY").arg("HISTOGRAM");
        }
        let cluster = f.cluster && !self.is_refused("CLUSTER INFO");
        if cluster {
            pipe.cmd("CLUSTER").arg("INFO");
        }

        let sent_at = Instant::now();
        let replies: Result<Vec<Value>, _> = timeout_at(deadline, pipe.query_async(&mut live.conn))
            .await
            .map_err(|_| RedisError::Timeout("pipelined scrape"))?;
        self.load.record(pipe.len(), sent_at.elapsed());
        let replies = replies.map_err(|e| RedisError::Connect(describe(&e)))?;
        let mut replies = replies.into_iter();
        let mut next = |what: &'static str| replies.next().ok_or(RedisError::Protocol(what));

        let mut snapshot = RedisSnapshot::default();
        match next("INFO ALL")? {
            Value::ServerError(e) => return Err(server_error("INFO", &e)),
            v => snapshot.info = info::parse_info(bytes_of(&v).ok_or(RedisError::Protocol("INFO ALL"))?),
        }
        let config_replies = match config_get {
            ConfigGet::Multi => 1,
            ConfigGet::Single => config_params(&self.spec).count(),
            ConfigGet::Unavailable => 0,
        };
        for _ in 0..config_replies {
            match next("CONFIG GET")? {
                Value::ServerError(e) => self.refuse("CONFIG GET", &e),
                v => snapshot.config.extend(pairs_of(v)),
            }
        }
        if config_replies > 0 && !snapshot.config.is_empty() {
            live.config = Some((Instant::now(), snapshot.config.clone()));
        } else if config_wanted && config_fresh {
            if let Some((_, cached)) = &live.config {
                snapshot.config = cached.clone();
            }
        }
        if slowlog {
            let len = next("SLOWLOG LEN")?;
            let last = next("SLOWLOG GET")?;
            match (&len, &last) {
                (Value::ServerError(e), _) | (_, Value::ServerError(e)) => self.refuse("SLOWLOG", e),
                _ => snapshot.slowlog = Some(parse_slowlog(&len, &last)),
            }
        }
        if latency {
            match next("LATENCY LATEST")? {
                Value::ServerError(e) => self.refuse("LATENCY LATEST", &e),
                v => snapshot.latency = Some(parse_latency_latest(&v)),
            }
        }
        if histogram {
            match next("LATENCY HISTOGRAM")? {
                Value::ServerError(e) => self.refuse("LATENCY HISTOGRAM", &e),
                v => snapshot.latency_histograms = Some(latency::parse_latency_histogram(&v)),
            }
        }
        if cluster {
            match next("CLUSTER INFO")? {
                Value::ServerError(e) => self.refuse("CLUSTER INFO", &e),
                v => snapshot.cluster_info = bytes_of(&v).map(info::parse_info),
            }
        }
        Ok(snapshot)
    }

    /// The target's connection settings.
    pub fn spec(&self) -> &RedisOptions {
        &self.spec
    }

    /// Commands this server has refused so far (for `doctor`).
    pub fn refused_commands(&self) -> Vec<&'static str> {
        self.refused.lock().map(|set| set.iter().copied().collect()).unwrap_or_default()
    }

    /// The ACL user this client authenticates as, if any.
    pub fn username(&self) -> Option<&str> {
        self.spec.username.as_deref()
    }

    fn is_refused(&self, command: &'static str) -> bool {
        self.refused.lock().map(|set| set.contains(command)).unwrap_or(false)
    }

    fn refuse(&self, command: &'static str, error: &redis::ServerError) {
        self.refused_insert(command, error.code());
    }

    fn refused_insert(&self, command: &'static str, code: &str) {
        let newly = self.refused.lock().map(|mut set| set.insert(command)).unwrap_or(false);
        if newly {
            tracing::warn!(
                target_name = %self.target,
                command,
                code,
                "redis refused a command; it will not be sent again by this process (grant it to the exporter's ACL user to get its metrics)"
            );
        }
    }
}

/// The ACL rule that grants what a refused command needs (README "Least-privilege ACL user").
pub fn acl_grant_for(command: &str) -> &'static str {
    match command {
        "CONFIG GET" => "+config|get",
        "SLOWLOG" => "+slowlog|len +slowlog|get",
        "LATENCY LATEST" => "+latency|latest",
        "CLUSTER INFO" => "+cluster|info",
        "CLIENT SETNAME" => "+client|setname",
        "CLIENT LIST" => "+client|list",
        "CLIENT ID" => "+client|id",
        "LATENCY HISTOGRAM" => "+latency|histogram",
        "SENTINEL" | "SENTINEL REPLICAS" => "+sentinel|masters +sentinel|sentinels +sentinel|replicas",
        "COMMAND INFO" => "+command|info",
        _ => "+info",
    }
}

/// Opens a multiplexed connection to the target (or to `addr`, another server of
/// the same deployment: a replica, a cluster master) with the target's TLS
/// material, authenticated only when `credentials` is set. Shared by the Redis
/// collector, the key-family scanner and the posture probe. Every reply on it
/// is bounded by [`MAX_REPLY_BYTES`] (see [`super::capped`]).
pub(crate) async fn open_connection(
    spec: &RedisOptions,
    addr: Option<&(String, u16)>,
    credentials: bool,
    deadline: Instant,
) -> Result<MultiplexedConnection, RedisError> {
    open_capped(spec, addr, credentials, deadline, MAX_REPLY_BYTES).await.map(|(conn, _)| conn)
}

/// Commands the client library sends when [`open_connection`] sets up a
/// connection with these arguments: `HELLO` (RESP3) or `AUTH` (a password),
/// then `SELECT` for a database other than 0. For [`CommandLoad`] accounting.
pub(crate) fn handshake_commands(spec: &RedisOptions, addr: Option<&(String, u16)>, credentials: bool) -> usize {
    let Ok(info) = connection_info(spec, addr, credentials) else { return 0 };
    let settings = info.redis_settings();
    let hello_or_auth = settings.protocol().supports_resp3() || settings.password().is_some();
    usize::from(hello_or_auth) + usize::from(settings.db() != 0)
}

/// [`open_connection`] with an explicit reply budget, plus the signal that tells
/// a failed query apart from a refused oversized reply.
pub(crate) async fn open_capped(
    spec: &RedisOptions,
    addr: Option<&(String, u16)>,
    credentials: bool,
    deadline: Instant,
    max_reply_bytes: usize,
) -> Result<(MultiplexedConnection, CapSignal), RedisError> {
    let info = connection_info(spec, addr, credentials)?;
    let tls = match info.addr() {
        ConnectionAddr::TcpTls { .. } => Some(tls_config(spec).await?),
        _ => None,
    };
    let connect = async {
        let stream: Box<dyn Stream> = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Box::new(tcp_connect(host, *port).await?),
            ConnectionAddr::TcpTls { host, port, .. } => {
                let tcp = tcp_connect(host, *port).await?;
                let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                    .map_err(|_| RedisError::Connect("invalid TLS server name".into()))?;
                let config = tls.clone().ok_or(RedisError::Connect("TLS settings".into()))?;
                Box::new(TlsConnector::from(config).connect(name, tcp).await.map_err(|e| tls_error(&e))?)
            }
            ConnectionAddr::Unix(path) => {
                Box::new(tokio::net::UnixStream::connect(path).await.map_err(|e| io_error(&e))?)
            }
            _ => return Err(RedisError::Connect("unsupported address type".into())),
        };
        let (capped, signal) = CappedStream::new(stream, max_reply_bytes);
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        let (conn, driver) = MultiplexedConnection::new_with_config(info.redis_settings(), capped, config)
            .await
            .map_err(|e| match signal.exceeded() {
                true => RedisError::ReplyTooLarge { target: info.addr().to_string(), limit: max_reply_bytes },
                false => classify_connect_error(&e),
            })?;
        // The driver ends when the last handle of `conn` is dropped.
        tokio::spawn(driver);
        Ok((conn, signal))
    };
    timeout_at(deadline, connect).await.map_err(|_| RedisError::Timeout("connect"))?
}

/// The notAfter (Unix seconds) of the leaf certificate a `rediss://` target
/// presents, from a TLS handshake with the target's own TLS settings (CA,
/// client certificate) and nothing else: no command, no credentials.
/// `Ok(None)` for a target without TLS or a certificate that cannot be read.
pub async fn server_certificate_expiry(spec: &RedisOptions, deadline: Instant) -> Result<Option<i64>, RedisError> {
    let info = connection_info(spec, None, false)?;
    let ConnectionAddr::TcpTls { host, port, .. } = info.addr() else { return Ok(None) };
    let config = tls_config(spec).await?;
    let handshake = async {
        let tcp = tcp_connect(host, *port).await?;
        let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
            .map_err(|_| RedisError::Connect("invalid TLS server name".into()))?;
        let tls = TlsConnector::from(config).connect(name, tcp).await.map_err(|e| io_error(&e))?;
        let leaf = tls.get_ref().1.peer_certificates().and_then(|chain| chain.first());
        Ok(leaf.and_then(|der| super::tls_expiry::not_after_unix(der.as_ref())))
    };
    timeout_at(deadline, handshake).await.map_err(|_| RedisError::Timeout("TLS certificate check"))?
}

/// What a Redis connection runs over: TCP, TLS over TCP, or a Unix socket.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin> Stream for S {}

async fn tcp_connect(host: &str, port: u16) -> Result<tokio::net::TcpStream, RedisError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| io_error(&e))?;
    // Requests are small and waited on: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn io_error(e: &std::io::Error) -> RedisError {
    RedisError::Connect(io_cause(e))
}

/// Why a connection attempt failed, in words an operator acts on. No server or
/// OS text that could carry more than the cause (never credentials: none are
/// sent before the connection exists).
pub(crate) fn io_cause(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused (nothing listens on that port, or a firewall rejects it)".into(),
        K::TimedOut => "connection timed out".into(),
        K::ConnectionReset => "connection reset by the server".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::AddrNotAvailable => "address not available".into(),
        K::PermissionDenied => "connection not permitted (a local firewall or sandbox refused it)".into(),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        K::NotFound => "no such socket file".into(),
        K::UnexpectedEof => "connection closed by the server".into(),
        // tokio's resolver reports "failed to lookup address information: ...".
        _ if e.to_string().contains("lookup address") => "DNS lookup failed (the host name does not resolve)".into(),
        kind => format!("I/O error: {kind}"),
    }
}

/// A failed TLS handshake: the certificate verification's reason when that is what failed.
fn tls_error(e: &std::io::Error) -> RedisError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            RedisError::Connect(format!("TLS certificate verification failed: {reason:?}"))
        }
        Some(tls) => RedisError::Connect(format!("TLS handshake failed: {tls}")),
        None => RedisError::Connect(format!("TLS handshake failed: {}", io_cause(e))),
    }
}

fn connection_info(
    spec: &RedisOptions,
    addr: Option<&(String, u16)>,
    credentials: bool,
) -> Result<ConnectionInfo, RedisError> {
    let mut info: ConnectionInfo =
        spec.url.as_str().into_connection_info().map_err(|e| RedisError::Connect(describe(&e)))?;
    // No CLIENT SETINFO handshake: Redis before 7.2 answers it with an error.
    let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
    if credentials {
        if let Some(user) = &spec.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &spec.password {
            settings = settings.set_password(password.expose());
        }
    }
    if let Some((host, port)) = addr {
        // Another server of the same deployment: same scheme, database 0 (clusters have no other).
        let tls = match info.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
            _ => spec.url.starts_with("rediss://").then_some(false),
        };
        let new_addr = match tls {
            Some(insecure) => ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure, tls_params: None },
            None => ConnectionAddr::Tcp(host.clone(), *port),
        };
        info = info.set_addr(new_addr);
        settings = settings.set_db(0);
    }
    Ok(info.set_redis_settings(settings))
}

/// The TLS client settings: the configured CA (or the Web PKI roots when none
/// is set) and the client certificate, if any.
async fn tls_config(spec: &RedisOptions) -> Result<Arc<rustls::ClientConfig>, RedisError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = &spec.tls;
    let bad_pem = |path: &std::path::Path| RedisError::TlsFile {
        path: path.display().to_string(),
        kind: std::io::ErrorKind::InvalidData,
    };
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            let pem = read_file(path).await?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert.map_err(|_| bad_pem(path))?).map_err(|_| bad_pem(path))?;
            }
            if roots.is_empty() {
                return Err(bad_pem(path));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|_| RedisError::Connect("TLS settings".into()))?
        .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&read_file(cert).await?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad_pem(cert))?;
            let key_der = PrivateKeyDer::from_pem_slice(&read_file(key).await?).map_err(|_| bad_pem(key))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|_| bad_pem(key))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

async fn read_file(path: &std::path::Path) -> Result<Vec<u8>, RedisError> {
    tokio::fs::read(path).await.map_err(|e| RedisError::TlsFile { path: path.display().to_string(), kind: e.kind() })
}

/// `CONFIG GET` is variadic from Redis 7: its subcommand entry has arity -3.
fn config_get_mode(command_info: &Value) -> ConfigGet {
    let Value::Array(fields) = command_info else {
        return ConfigGet::Unavailable;
    };
    // Redis 7 lists subcommands as the 10th field; Redis 6 has no subcommands (single pattern).
    let Some(Value::Array(subcommands)) = fields.get(9) else {
        return ConfigGet::Single;
    };
    for sub in subcommands {
        if let Value::Array(sub_fields) = sub {
            let name = sub_fields.first().and_then(bytes_of).unwrap_or_default();
            if name.eq_ignore_ascii_case(b"config|get") {
                // Negative arity means "at least |arity| arguments": -3 is CONFIG GET p [p ...].
                return match sub_fields.get(1) {
                    Some(Value::Int(arity)) if *arity <= -3 => ConfigGet::Multi,
                    _ => ConfigGet::Single,
                };
            }
        }
    }
    ConfigGet::Unavailable
}

/// Whether a `COMMAND INFO` entry lists the subcommand `name` (`latency|histogram`).
fn has_subcommand(command_info: &Value, name: &[u8]) -> bool {
    let Value::Array(fields) = command_info else { return false };
    let Some(Value::Array(subcommands)) = fields.get(9) else { return false };
    subcommands.iter().any(|sub| match sub {
        Value::Array(f) => f.first().and_then(bytes_of).is_some_and(|n| n.eq_ignore_ascii_case(name)),
        _ => false,
    })
}

/// The bytes of a string-like reply, borrowed (INFO replies are several KiB).
pub(crate) fn bytes_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn int_of(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => bytes_of(other).and_then(|b| std::str::from_utf8(b).ok()?.trim().parse().ok()),
    }
}

/// `CONFIG GET` reply: a flat array (RESP2) or a map (RESP3).
fn pairs_of(value: Value) -> Vec<(String, String)> {
    let text = |v: &Value| bytes_of(v).map(|b| String::from_utf8_lossy(b).into_owned());
    match value {
        Value::Array(items) => items.chunks_exact(2).filter_map(|kv| Some((text(&kv[0])?, text(&kv[1])?))).collect(),
        Value::Map(items) => items.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
        _ => Vec::new(),
    }
}

/// Slow-log length and the newest entry's id, time and duration. The entry's
/// arguments and client address are deliberately never read.
fn parse_slowlog(len: &Value, last: &Value) -> Slowlog {
    let mut slowlog =
        Slowlog { length: int_of(len).and_then(|n| u64::try_from(n).ok()).unwrap_or(0), ..Default::default() };
    if let Value::Array(entries) = last {
        if let Some(Value::Array(fields)) = entries.first() {
            slowlog.last_id = fields.first().and_then(int_of);
            slowlog.last_timestamp = fields.get(1).and_then(int_of);
            slowlog.last_duration_micros = fields.get(2).and_then(int_of).and_then(|n| u64::try_from(n).ok());
        }
    }
    slowlog
}

fn parse_latency_latest(value: &Value) -> Vec<LatencyEvent> {
    let Value::Array(rows) = value else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|row| {
            let Value::Array(f) = row else { return None };
            let event = String::from_utf8_lossy(bytes_of(f.first()?)?).into_owned();
            // Event names are a small fixed set; refuse anything that is not a plain identifier.
            if event.is_empty()
                || event.len() > 64
                || !event.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return None;
            }
            Some(LatencyEvent {
                event,
                timestamp: int_of(f.get(1)?)?,
                latest_ms: u64::try_from(int_of(f.get(2)?)?).ok()?,
                max_ms: u64::try_from(int_of(f.get(3)?)?).ok()?,
            })
        })
        .collect()
}

fn server_error(command: &'static str, e: &redis::ServerError) -> RedisError {
    match e.code() {
        "NOAUTH" => RedisError::Auth("NOAUTH".to_string()),
        "NOPERM" => RedisError::Command {
            command,
            reason: format!("missing privilege (NOPERM); grant it with ACL SETUSER <user> {}", acl_grant_for(command)),
        },
        code => RedisError::Command { command, reason: code.to_string() },
    }
}

pub(crate) fn classify_connect_error(e: &redis::RedisError) -> RedisError {
    match e.code() {
        // DENIED: protected mode refusing a connection from outside loopback.
        Some(code @ ("WRONGPASS" | "NOAUTH" | "NOPERM" | "DENIED")) => RedisError::Auth(code.to_string()),
        _ if e.kind() == redis::ErrorKind::AuthenticationFailed => RedisError::Auth("authentication rejected".into()),
        _ => RedisError::Connect(describe(e)),
    }
}

/// An authentication-related error code in words (the code kept in parentheses).
pub(crate) fn auth_words(code: &str) -> Option<String> {
    Some(match code {
        "WRONGPASS" => "authentication rejected: wrong user name or password (WRONGPASS)".into(),
        "NOAUTH" => "authentication required: the server needs a password and none was given (NOAUTH)".into(),
        "NOPERM" => "the user may not run the connection handshake (NOPERM)".into(),
        "DENIED" => "connection denied by protected mode (DENIED)".into(),
        "authentication rejected" => "authentication rejected: wrong user name or password".into(),
        _ => return None,
    })
}

/// A short description without server-echoed details (which can contain arguments).
fn describe(e: &redis::RedisError) -> String {
    if let Some(code) = e.code() {
        return format!("server replied {code}");
    }
    if e.is_timeout() {
        return "timed out".to_string();
    }
    if e.is_io_error() {
        if let Some(io) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
            return io_cause(io);
        }
        return "I/O error".to_string();
    }
    if e.is_connection_dropped() {
        return "connection closed by server".to_string();
    }
    format!("{:?}", e.kind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_described_in_words() {
        use std::io::{Error, ErrorKind};
        assert!(io_cause(&Error::from(ErrorKind::ConnectionRefused)).starts_with("connection refused"));
        assert_eq!(io_cause(&Error::from(ErrorKind::TimedOut)), "connection timed out");
        let dns = Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(io_cause(&dns), "DNS lookup failed (the host name does not resolve)");
        assert_eq!(io_cause(&Error::from(ErrorKind::BrokenPipe)), "I/O error: broken pipe");
        assert!(auth_words("NOAUTH").is_some_and(|w| w.contains("authentication required")));
        assert!(auth_words("WRONGPASS").is_some_and(|w| w.contains("wrong user name or password")));
        assert_eq!(auth_words("ERR"), None);
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn slowlog_reads_id_time_duration_and_never_arguments() {
        let entry = Value::Array(vec![
            Value::Int(3),
            Value::Int(1_795_697_056),
            Value::Int(7),
            Value::Array(vec![bulk("AUTH"), bulk("(redacted)")]),
            bulk("127.0.0.1:52750"),
            bulk(""),
        ]);
        let s = parse_slowlog(&Value::Int(4), &Value::Array(vec![entry]));
        assert_eq!(
            s,
            Slowlog { length: 4, last_id: Some(3), last_timestamp: Some(1_795_697_056), last_duration_micros: Some(7) }
        );
        let empty = parse_slowlog(&Value::Int(0), &Value::Array(vec![]));
        assert_eq!(empty.last_id, None);
    }

    #[test]
    fn latency_latest_rows_parse_and_odd_rows_are_skipped() {
        let reply = Value::Array(vec![
            Value::Array(vec![bulk("command"), Value::Int(1_795_697_028), Value::Int(1), Value::Int(1)]),
            Value::Array(vec![bulk("bad name!"), Value::Int(1), Value::Int(1), Value::Int(1)]),
            Value::Array(vec![bulk("fork")]),
        ]);
        let events = parse_latency_latest(&reply);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "command");
        assert_eq!(events[0].max_ms, 1);
    }

    #[test]
    fn config_get_mode_follows_command_info() {
        let sub = |arity| Value::Array(vec![bulk("config|get"), Value::Int(arity)]);
        let info = |subs| {
            let mut f = vec![bulk("config"), Value::Int(-2)];
            f.extend((0..7).map(|_| Value::Nil));
            f.push(Value::Array(subs));
            Value::Array(f)
        };
        assert_eq!(config_get_mode(&info(vec![sub(-3)])), ConfigGet::Multi);
        assert_eq!(config_get_mode(&info(vec![sub(3)])), ConfigGet::Single);
        assert_eq!(config_get_mode(&Value::Array(vec![bulk("config"), Value::Int(-2)])), ConfigGet::Single);
        assert_eq!(config_get_mode(&Value::Nil), ConfigGet::Unavailable);
    }

    #[test]
    fn config_pairs_from_resp2_and_resp3() {
        let resp2 = Value::Array(vec![bulk("maxmemory"), bulk("0"), bulk("maxclients"), bulk("10000")]);
        assert_eq!(pairs_of(resp2).len(), 2);
        let resp3 = Value::Map(vec![(bulk("maxmemory"), bulk("1"))]);
        assert_eq!(pairs_of(resp3), vec![("maxmemory".to_string(), "1".to_string())]);
    }
}
