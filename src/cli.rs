//! Command-line flags in the Prometheus exporters' vocabulary
//! (`--web.listen-address`, `--collector.X` / `--no-collector.X`), with env
//! fallbacks for everything a container would set. Nothing here is validated
//! beyond syntax, and nothing here imports the rest of the crate: the config
//! layer turns this into a checked configuration with errors that name the
//! flag (durations stay text until then, so they share the config file's
//! one duration syntax).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Parser)]
#[command(
    name = "tenderly-exporter",
    version,
    about = "Prometheus exporter for the Tenderly platform's Redis and MongoDB.",
    after_help = "Secrets are read from the environment or from files, never only from argv.\n\
                  See docs/metrics.md for the metric list and docs/configuration.md for the configuration file."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on for HTTP requests (`:PORT` listens on all interfaces).
    #[arg(
        global = true,
        long = "web.listen-address",
        env = "TENDERLY_EXPORTER_LISTEN_ADDRESS",
        default_value = ":9879"
    )]
    pub listen_address: String,

    /// Path under which the default targets' metrics are exposed.
    #[arg(global = true, long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,

    /// Maximum number of concurrent scrape requests; more get 503.
    #[arg(global = true, long = "web.max-requests", default_value_t = 40)]
    pub max_requests: usize,

    /// Subtracted from Prometheus' X-Prometheus-Scrape-Timeout-Seconds to get the collection deadline.
    #[arg(global = true, long = "web.timeout-offset", default_value = "0.5s")]
    pub timeout_offset: String,

    /// Exporter-toolkit web configuration (tls_server_config, basic_auth_users); reloaded on change or SIGHUP.
    #[arg(global = true, long = "web.config.file", env = "TENDERLY_EXPORTER_WEB_CONFIG")]
    pub web_config_file: Option<PathBuf>,

    /// Enable `POST /-/reload` (re-reads the config file and every secret), as Prometheus' flag of the same name.
    #[arg(global = true, long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Collection deadline used when a request carries no scrape-timeout header.
    #[arg(global = true, long = "web.default-timeout", default_value = "9.5s")]
    pub default_timeout: String,

    /// Redis address of the default target: redis://, rediss://, unix:///path or host:port.
    #[arg(global = true, long = "redis.addr", env = "REDIS_ADDR")]
    pub redis_addr: Option<String>,

    /// ACL user name for the default Redis target.
    #[arg(global = true, long = "redis.user", env = "REDIS_USER")]
    pub redis_user: Option<String>,

    /// File holding only the Redis password (as Docker and Kubernetes secrets are). REDIS_PASSWORD is read from the environment otherwise.
    #[arg(global = true, long = "redis.password-file", env = "REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<PathBuf>,

    /// PEM CA bundle used to verify the Redis server's certificate (rediss://).
    #[arg(global = true, long = "redis.tls-ca-file", env = "REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<PathBuf>,

    /// PEM client certificate for mutual TLS to Redis.
    #[arg(global = true, long = "redis.tls-cert-file", env = "REDIS_TLS_CERT_FILE")]
    pub redis_tls_cert_file: Option<PathBuf>,

    /// PEM client key for mutual TLS to Redis.
    #[arg(global = true, long = "redis.tls-key-file", env = "REDIS_TLS_KEY_FILE")]
    pub redis_tls_key_file: Option<PathBuf>,

    /// MongoDB connection string of the default target (mongodb://host:port/?options or mongodb+srv://name).
    /// Direct connection to the named host unless the string says otherwise.
    #[arg(global = true, long = "mongodb.uri", env = "MONGODB_URI")]
    pub mongodb_uri: Option<String>,

    /// File holding only the MongoDB connection string (use instead of --mongodb.uri when it holds credentials).
    #[arg(global = true, long = "mongodb.uri-file", env = "MONGODB_URI_FILE")]
    pub mongodb_uri_file: Option<PathBuf>,

    /// MongoDB user name (injected into the connection; MONGODB_PASSWORD or --mongodb.password-file holds the password).
    #[arg(global = true, long = "mongodb.user", env = "MONGODB_USER")]
    pub mongodb_user: Option<String>,

    /// File holding only the MongoDB password.
    #[arg(global = true, long = "mongodb.password-file", env = "MONGODB_PASSWORD_FILE")]
    pub mongodb_password_file: Option<PathBuf>,

    /// Active operations running at least this long count as long-running (the DBA guide's secs_running > 1).
    #[arg(global = true, long = "mongodb.currentop-threshold", default_value = "1s")]
    pub mongodb_currentop_threshold: String,

    /// At most this many databases get dbStats and profiler reads per scrape.
    #[arg(global = true, long = "mongodb.max-databases", default_value_t = 100)]
    pub mongodb_max_databases: usize,

    /// At most this many profiler documents are read per database per scrape.
    #[arg(global = true, long = "mongodb.profiler-max-docs", default_value_t = 1000)]
    pub mongodb_profiler_max_docs: u32,

    /// Tenderly application database on the default MongoDB target: enables the shipped
    /// account-security, PII-canary and audit queries (read access to it needed).
    #[arg(global = true, long = "tenderly.app-database", env = "TENDERLY_APP_DATABASE")]
    pub tenderly_app_database: Option<String>,

    /// Enable the Tenderly key-family scan on the default Redis target (incremental SCAN, 50 ms budget per scrape).
    #[arg(global = true, long = "collector.tenderly.keys", overrides_with = "no_tenderly_keys")]
    pub tenderly_keys: bool,
    /// Disable the key-family scan.
    #[arg(global = true, long = "no-collector.tenderly.keys")]
    pub no_tenderly_keys: bool,

    /// Enable security-posture checks on the default targets (every 5 minutes).
    #[arg(global = true, long = "collector.tenderly.posture", overrides_with = "no_tenderly_posture")]
    pub tenderly_posture: bool,
    /// Disable security-posture checks.
    #[arg(global = true, long = "no-collector.tenderly.posture")]
    pub no_tenderly_posture: bool,

    /// Enable replSetGetStatus/replSetGetConfig on replica-set members.
    #[arg(global = true, long = "collector.mongodb.replset", overrides_with = "no_mongodb_replset")]
    pub mongodb_replset: bool,
    /// Disable the replica-set collector.
    #[arg(global = true, long = "no-collector.mongodb.replset")]
    pub no_mongodb_replset: bool,

    /// Enable the oplog window (first/last entries of local.oplog.rs and its size).
    #[arg(global = true, long = "collector.mongodb.oplog", overrides_with = "no_mongodb_oplog")]
    pub mongodb_oplog: bool,
    /// Disable the oplog collector.
    #[arg(global = true, long = "no-collector.mongodb.oplog")]
    pub no_mongodb_oplog: bool,

    /// Enable long-running operation counts ($currentOp).
    #[arg(global = true, long = "collector.mongodb.currentop", overrides_with = "no_mongodb_currentop")]
    pub mongodb_currentop: bool,
    /// Disable the currentOp collector.
    #[arg(global = true, long = "no-collector.mongodb.currentop")]
    pub no_mongodb_currentop: bool,

    /// Enable dbStats per database (including filesystem sizes).
    #[arg(global = true, long = "collector.mongodb.dbstats", overrides_with = "no_mongodb_dbstats")]
    pub mongodb_dbstats: bool,
    /// Disable the dbStats collector.
    #[arg(global = true, long = "no-collector.mongodb.dbstats")]
    pub no_mongodb_dbstats: bool,

    /// Enable profiler counters (system.profile) per database.
    #[arg(global = true, long = "collector.mongodb.profiler", overrides_with = "no_mongodb_profiler")]
    pub mongodb_profiler: bool,
    /// Disable the profiler collector.
    #[arg(global = true, long = "no-collector.mongodb.profiler")]
    pub no_mongodb_profiler: bool,

    /// At most this many collections get $collStats/$indexStats/top series per scrape.
    #[arg(global = true, long = "mongodb.max-collections", default_value_t = 50)]
    pub mongodb_max_collections: usize,

    /// Enable $collStats per collection (opt-in; off by default).
    #[arg(global = true, long = "collector.mongodb.collstats", overrides_with = "no_mongodb_collstats")]
    pub mongodb_collstats: bool,
    /// Disable $collStats.
    #[arg(global = true, long = "no-collector.mongodb.collstats")]
    pub no_mongodb_collstats: bool,

    /// Enable $indexStats per collection (opt-in; off by default).
    #[arg(global = true, long = "collector.mongodb.indexstats", overrides_with = "no_mongodb_indexstats")]
    pub mongodb_indexstats: bool,
    /// Disable $indexStats.
    #[arg(global = true, long = "no-collector.mongodb.indexstats")]
    pub no_mongodb_indexstats: bool,

    /// Enable the top command's per-collection time and counts (opt-in; off by default).
    #[arg(global = true, long = "collector.mongodb.top", overrides_with = "no_mongodb_top")]
    pub mongodb_top: bool,
    /// Disable top.
    #[arg(global = true, long = "no-collector.mongodb.top")]
    pub no_mongodb_top: bool,

    /// YAML file with named targets (served on /probe?target=NAME).
    #[arg(global = true, long = "config.file", env = "TENDERLY_EXPORTER_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// Validate flags and the configuration file, print a summary, and exit.
    #[arg(global = true, long = "check-config")]
    pub check_config: bool,

    /// Like --check-config, but check only the structure: no secret file or
    /// secret variable is read. Each one that is missing is listed as its own
    /// finding (the exit status stays 0), so a config can be checked before its
    /// secrets are installed.
    #[arg(global = true, long = "check-config.structure")]
    pub check_config_structure: bool,

    /// Enable the Redis slow-log summary (SLOWLOG LEN and the newest entry's id and duration).
    #[arg(global = true, long = "collector.redis.slowlog", overrides_with = "no_redis_slowlog")]
    pub redis_slowlog: bool,
    /// Disable the Redis slow-log summary.
    #[arg(global = true, long = "no-collector.redis.slowlog")]
    pub no_redis_slowlog: bool,

    /// Enable LATENCY LATEST (latency monitor spikes).
    #[arg(global = true, long = "collector.redis.latency", overrides_with = "no_redis_latency")]
    pub redis_latency: bool,
    /// Disable LATENCY LATEST.
    #[arg(global = true, long = "no-collector.redis.latency")]
    pub no_redis_latency: bool,

    /// Enable the targeted CONFIG GET (maxmemory, maxclients, ...).
    #[arg(global = true, long = "collector.redis.config", overrides_with = "no_redis_config")]
    pub redis_config: bool,
    /// Disable the targeted CONFIG GET (for managed services that refuse CONFIG).
    #[arg(global = true, long = "no-collector.redis.config")]
    pub no_redis_config: bool,

    /// How stale the CONFIG GET values (maxclients, ...) may get before they are read again; 0s reads them every scrape.
    #[arg(global = true, long = "redis.config-max-age", default_value = "60s")]
    pub redis_config_max_age: String,
    /// Enable per-command latency histograms from LATENCY HISTOGRAM (Redis 7+).
    #[arg(global = true, long = "collector.redis.latency-histogram", overrides_with = "no_redis_latency_histogram")]
    pub redis_latency_histogram: bool,
    /// Disable LATENCY HISTOGRAM.
    #[arg(global = true, long = "no-collector.redis.latency-histogram")]
    pub no_redis_latency_histogram: bool,

    /// Enable connections per client name from CLIENT LIST (at most once per --redis.clients-interval).
    #[arg(global = true, long = "collector.redis.clients-by-name", overrides_with = "no_redis_clients_by_name")]
    pub redis_clients_by_name: bool,
    /// Disable connections per client name.
    #[arg(global = true, long = "no-collector.redis.clients-by-name")]
    pub no_redis_clients_by_name: bool,

    /// Enable connections per ACL user from CLIENT LIST (opt-in; off by default).
    #[arg(global = true, long = "collector.redis.clients-by-user", overrides_with = "no_redis_clients_by_user")]
    pub redis_clients_by_user: bool,
    /// Disable connections per ACL user.
    #[arg(global = true, long = "no-collector.redis.clients-by-user")]
    pub no_redis_clients_by_user: bool,

    /// Client names (and users) that keep their own label; the rest are summed into "other".
    #[arg(global = true, long = "redis.clients-top-n", default_value_t = 10)]
    pub redis_clients_top_n: usize,

    /// Shortest time between two CLIENT LIST calls (the last counts are served in between).
    #[arg(global = true, long = "redis.clients-interval", default_value = "60s")]
    pub redis_clients_interval: String,

    /// Log level.
    #[arg(global = true, long = "log.level", env = "TENDERLY_EXPORTER_LOG_LEVEL", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(
        global = true,
        long = "log.format",
        env = "TENDERLY_EXPORTER_LOG_FORMAT",
        value_enum,
        default_value = "logfmt"
    )]
    pub log_format: LogFormat,
}

/// Subcommands; without one the exporter serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Check every target's connectivity and privileges, then exit
    ///
    /// Connects to every configured target, runs each enabled collector once and prints OK or
    /// what is missing, with the Redis ACL rule or MongoDB role that fixes it. Takes the same
    /// flags as the exporter. Exits 1 when anything failed.
    Doctor,
}

impl Cli {
    /// Resolves a `--collector.X` / `--no-collector.X` pair: the later flag wins
    /// (clap's `overrides_with`), absent means the default.
    pub fn switch(enable: bool, disable: bool, default: bool) -> bool {
        if disable && !enable {
            false
        } else if enable {
            true
        } else {
            default
        }
    }
}
