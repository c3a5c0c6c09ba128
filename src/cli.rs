//! Command-line flags in the Prometheus exporters' vocabulary
//! (`--web.listen-address`, `--collector.X` / `--no-collector.X`), with env
//! fallbacks for everything a container would set. Nothing here is validated
//! beyond syntax: [`crate::config::Config::from_cli`] turns this into a checked
//! configuration with errors that name the flag.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

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
                  See README.md for the metric list and the configuration file format."
)]
pub struct Cli {
    /// Address to listen on for HTTP requests (`:PORT` listens on all interfaces).
    #[arg(long = "web.listen-address", env = "TENDERLY_EXPORTER_LISTEN_ADDRESS", default_value = ":9879")]
    pub listen_address: String,

    /// Path under which the default targets' metrics are exposed.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,

    /// Maximum number of concurrent scrape requests; more get 503.
    #[arg(long = "web.max-requests", default_value_t = 40)]
    pub max_requests: usize,

    /// Subtracted from Prometheus' X-Prometheus-Scrape-Timeout-Seconds to get the collection deadline.
    #[arg(long = "web.timeout-offset", default_value = "0.5s", value_parser = parse_duration_arg)]
    pub timeout_offset: std::time::Duration,

    /// Exporter-toolkit web configuration (tls_server_config, basic_auth_users); reloaded on change or SIGHUP.
    #[arg(long = "web.config.file", env = "TENDERLY_EXPORTER_WEB_CONFIG")]
    pub web_config_file: Option<PathBuf>,

    /// Collection deadline used when a request carries no scrape-timeout header.
    #[arg(long = "web.default-timeout", default_value = "9.5s", value_parser = parse_duration_arg)]
    pub default_timeout: std::time::Duration,

    /// Redis address of the default target: redis://, rediss://, unix:///path or host:port.
    #[arg(long = "redis.addr", env = "REDIS_ADDR")]
    pub redis_addr: Option<String>,

    /// ACL user name for the default Redis target.
    #[arg(long = "redis.user", env = "REDIS_USER")]
    pub redis_user: Option<String>,

    /// File holding only the Redis password (as Docker and Kubernetes secrets are). REDIS_PASSWORD is read from the environment otherwise.
    #[arg(long = "redis.password-file", env = "REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<PathBuf>,

    /// PEM CA bundle used to verify the Redis server's certificate (rediss://).
    #[arg(long = "redis.tls-ca-file", env = "REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<PathBuf>,

    /// PEM client certificate for mutual TLS to Redis.
    #[arg(long = "redis.tls-cert-file", env = "REDIS_TLS_CERT_FILE")]
    pub redis_tls_cert_file: Option<PathBuf>,

    /// PEM client key for mutual TLS to Redis.
    #[arg(long = "redis.tls-key-file", env = "REDIS_TLS_KEY_FILE")]
    pub redis_tls_key_file: Option<PathBuf>,

    /// YAML file with named targets (served on /probe?target=NAME).
    #[arg(long = "config.file", env = "TENDERLY_EXPORTER_CONFIG")]
    pub config_file: Option<PathBuf>,

    /// Validate flags and the configuration file, print a summary, and exit.
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Enable the Redis slow-log summary (SLOWLOG LEN and the newest entry's id and duration).
    #[arg(long = "collector.redis.slowlog", overrides_with = "no_redis_slowlog")]
    pub redis_slowlog: bool,
    /// Disable the Redis slow-log summary.
    #[arg(long = "no-collector.redis.slowlog")]
    pub no_redis_slowlog: bool,

    /// Enable LATENCY LATEST (latency monitor spikes).
    #[arg(long = "collector.redis.latency", overrides_with = "no_redis_latency")]
    pub redis_latency: bool,
    /// Disable LATENCY LATEST.
    #[arg(long = "no-collector.redis.latency")]
    pub no_redis_latency: bool,

    /// Enable the targeted CONFIG GET (maxmemory, maxclients, ...).
    #[arg(long = "collector.redis.config", overrides_with = "no_redis_config")]
    pub redis_config: bool,
    /// Disable the targeted CONFIG GET (for managed services that refuse CONFIG).
    #[arg(long = "no-collector.redis.config")]
    pub no_redis_config: bool,

    /// Log level.
    #[arg(long = "log.level", env = "TENDERLY_EXPORTER_LOG_LEVEL", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Log format.
    #[arg(long = "log.format", env = "TENDERLY_EXPORTER_LOG_FORMAT", value_enum, default_value = "logfmt")]
    pub log_format: LogFormat,
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

fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(text)
}
