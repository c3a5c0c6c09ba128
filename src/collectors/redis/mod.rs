//! Redis collector: one pipelined round trip per scrape (`client`), INFO
//! parsed by field name (`info`), and metrics named as oliver006/redis_exporter
//! names them wherever dashboards depend on it (`encode`).

pub mod capped;
pub mod client;
pub mod clients;
pub mod cluster;
pub mod encode;
pub mod info;
pub mod latency;
pub mod load;
pub mod sentinel;
pub mod tls_expiry;

/// The `collector` label of this collector's runs.
pub const COLLECTOR: &str = "redis";

use std::path::PathBuf;

use crate::secret::Secret;

/// Where and how to reach one Redis server, and which parts of the pipeline
/// run: everything the collector needs, built by whoever configures it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Normalized URL without credentials (`redis://host:port/db`, `rediss://...`, `unix:///path`).
    pub url: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: RedisTls,
    pub collectors: RedisCollectors,
    /// `CONFIG GET` parameters to read besides the exported ones (kept as
    /// strings in [`RedisSnapshot::config`], not exported by this collector).
    pub extra_config: Vec<&'static str>,
    /// How `CLIENT LIST` (clients by name / user) is rate-limited and bounded.
    pub client_list: clients::ClientListOptions,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("collectors", &self.collectors)
            .field("extra_config", &self.extra_config)
            .field("client_list", &self.client_list)
            .finish()
    }
}

impl RedisOptions {
    /// A target at `url` (normalized, without credentials) with default TLS,
    /// collectors and `CLIENT LIST` bounds and no extra `CONFIG GET` parameters.
    pub fn new(url: String, username: Option<String>, password: Option<Secret>) -> Self {
        RedisOptions {
            url,
            username,
            password,
            tls: RedisTls::default(),
            collectors: RedisCollectors::default(),
            extra_config: Vec::new(),
            client_list: clients::ClientListOptions::default(),
        }
    }

    /// The server's TCP address (brackets stripped from IPv6); `None` for a Unix socket.
    pub fn tcp_address(&self) -> Option<(String, u16)> {
        use redis::IntoConnectionInfo as _;
        let info = self.url.as_str().into_connection_info().ok()?;
        match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) | redis::ConnectionAddr::TcpTls { host, port, .. } => {
                Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), *port))
            }
            _ => None,
        }
    }
}

/// Which parts of the Redis pipeline run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisCollectors {
    pub slowlog: bool,
    pub latency: bool,
    pub config: bool,
    /// How old the `CONFIG GET` values may get before they are read again
    /// (settings change rarely; `INFO` is read on every scrape). Zero reads
    /// them on every scrape. A reconnect always reads them again.
    pub config_max_age: std::time::Duration,
    /// `LATENCY HISTOGRAM` (Redis 7+) as `redis_command_latency_seconds`.
    pub latency_histogram: bool,
    /// `CLIENT LIST` as `redis_connected_clients_by_name`.
    pub clients_by_name: bool,
    /// `CLIENT LIST` as `redis_connected_clients_by_user` (opt-in).
    pub clients_by_user: bool,
}

/// Default for [`RedisCollectors::config_max_age`].
pub const CONFIG_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for RedisCollectors {
    fn default() -> Self {
        RedisCollectors {
            slowlog: true,
            latency: true,
            config: true,
            config_max_age: CONFIG_MAX_AGE,
            latency_histogram: true,
            clients_by_name: true,
            clients_by_user: false,
        }
    }
}

/// TLS material for a Redis connection (file contents are read at connect time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// Everything one scrape read from one Redis server, before encoding.
#[derive(Debug, Clone, Default)]
pub struct RedisSnapshot {
    /// `INFO ALL`, parsed.
    pub info: info::Info,
    /// Reply pairs of the targeted `CONFIG GET` (empty when CONFIG is refused or renamed).
    pub config: Vec<(String, String)>,
    /// `SLOWLOG LEN` and the newest entry's id/duration (never its arguments); `None` if unavailable.
    pub slowlog: Option<Slowlog>,
    /// `LATENCY LATEST`; `None` if the command is unavailable.
    pub latency: Option<Vec<LatencyEvent>>,
    /// `CLUSTER INFO`, parsed with the INFO parser; `None` unless cluster mode is on.
    pub cluster_info: Option<info::Info>,
    /// notAfter (Unix seconds) of a `rediss://` server's certificate (see [`tls_expiry`]).
    pub tls_certificate_expiry: Option<i64>,
    /// `SENTINEL MASTERS` and friends; `None` unless the target is a Sentinel.
    pub sentinel: Option<sentinel::SentinelSnapshot>,
    /// `LATENCY HISTOGRAM` and the commands left out by its cap; `None` if not sent.
    pub latency_histograms: Option<(Vec<latency::CommandHistogram>, usize)>,
    /// The last `CLIENT LIST` counts (served from cache between runs); `None` if off or unavailable.
    pub clients: Option<clients::ClientCounts>,
    /// Whether `redis_connected_clients_by_user` is wanted.
    pub clients_by_user: bool,
}

/// Slow-log summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slowlog {
    pub length: u64,
    /// Id of the newest entry, if any.
    pub last_id: Option<i64>,
    /// Unix time the newest entry was logged.
    pub last_timestamp: Option<i64>,
    /// Execution time of the newest entry in microseconds.
    pub last_duration_micros: Option<u64>,
}

/// One `LATENCY LATEST` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyEvent {
    /// Event name as Redis reports it (`command`, `fast-command`, `fork`, ...): a bounded set.
    pub event: String,
    /// Unix time of the latest spike.
    pub timestamp: i64,
    /// Latest spike in milliseconds.
    pub latest_ms: u64,
    /// All-time maximum in milliseconds.
    pub max_ms: u64,
}
