//! Validated configuration: flags plus the optional YAML file, turned into one
//! [`Config`] at startup. Every error names the flag or YAML field and says how
//! to fix it; a bad config never reaches the server.
//!
//! Secrets are read from environment variables or files only (a password in
//! argv is visible in `ps`), held in [`Secret`], whose `Debug`/`Display` print
//! `<redacted>`, and never appear in addresses shown on the landing page.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{self, Cli};
use crate::logging::{LogFormat, LogLevel};
use crate::tenderly::backups::BackupsConfig;
use crate::tenderly::drift::RedisDriftPolicy;
use crate::tenderly::keys::KeyFamiliesConfig;
use crate::tenderly::queries::QueriesConfig;
use crate::tenderly::redis_posture::RedisPostureConfig;
use crate::trust::{MemberAllowList, MemberPolicy};

pub use crate::collectors::mongodb::{MongoCollectors, MongoLimits, MongoOptions};
pub use crate::collectors::redis::clients::ClientListOptions;
pub use crate::collectors::redis::{RedisCollectors, RedisOptions, RedisTls};
pub use crate::secret::Secret;

/// Configuration errors: each names where the problem is and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {problem}; {fix}")]
    Invalid { field: String, problem: String, fix: String },
    /// The cause is part of the message and deliberately not a `source`: the
    /// binary prints the whole chain, which would repeat it.
    #[error("config file {path}: cannot read: {cause}")]
    ReadFile { path: PathBuf, cause: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), problem: problem.into(), fix: fix.into() }
}

/// A duration in the one syntax ([`crate::duration`]), at most 24 hours (every
/// duration the configuration holds is a timeout, a threshold or an interval).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(text)?;
    if d > Duration::from_secs(86_400) {
        return Err(format!("'{}' is out of range (0 to 24h)", text.trim()));
    }
    Ok(d)
}

/// A duration flag, with the flag's name in the error.
fn duration_flag(text: &str, flag: &str, example: &str) -> Result<Duration, ConfigError> {
    parse_duration(text).map_err(|e| invalid(flag, e, format!("use e.g. {flag} {example}")))
}

/// The kinds of target the exporter can scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetKind {
    Redis,
    Mongodb,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Redis => "redis",
            TargetKind::Mongodb => "mongodb",
        }
    }
}

/// Where and how to reach one MongoDB node, plus the Tenderly signals that
/// run over the same client. Like [`RedisTarget`], it *is* its connection
/// options (`Deref`); the generic collector only sees [`MongoOptions`].
#[derive(Clone, PartialEq)]
pub struct MongoTarget {
    /// What the generic MongoDB collector needs.
    pub connection: MongoOptions,
    /// Tenderly application signals (shipped and custom queries, audit counters, posture options).
    pub tenderly: Option<QueriesConfig>,
    /// Security posture from getCmdLineOpts (every 5 minutes).
    pub posture: bool,
}

impl std::ops::Deref for MongoTarget {
    type Target = MongoOptions;

    fn deref(&self) -> &MongoOptions {
        &self.connection
    }
}

impl fmt::Debug for MongoTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoTarget")
            .field("connection", &self.connection)
            .field("tenderly", &self.tenderly.as_ref().map(|t| t.app_database.clone()))
            .field("posture", &self.posture)
            .finish()
    }
}

/// Where and how to reach one Redis server, plus the Tenderly signals that
/// run over the same server. A Redis target *is* its connection options
/// (`Deref`), so `spec.url` reads as before; the generic collector only ever
/// sees [`RedisOptions`].
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// What the generic Redis collector needs: address, credentials, TLS, collectors.
    pub connection: RedisOptions,
    /// Tenderly key families (incremental SCAN); `None` when disabled.
    pub key_families: Option<KeyFamiliesConfig>,
    /// Security posture checks (every 5 minutes); `None` when disabled.
    pub posture: Option<RedisPostureConfig>,
    /// Configuration drift policy (`drift:`, default the DBA guide's); `None` when disabled.
    pub drift: Option<RedisDriftPolicy>,
    /// Discovered nodes (besides the address's host and `replica_address`) that
    /// may get the credentials (`members_allowed:`; see docs/security-trust-model.md).
    pub members_allowed: MemberAllowList,
}

impl RedisTarget {
    /// The generic collector alone: no key scan, posture or drift checks, and
    /// only the target's own hosts trusted.
    pub fn plain(connection: RedisOptions) -> Self {
        RedisTarget { connection, key_families: None, posture: None, drift: None, members_allowed: Default::default() }
    }

    /// Who may get this target's credentials: the address's host, the key
    /// scan's `replica_address` host, and `members_allowed`.
    pub fn member_policy(&self) -> MemberPolicy {
        let seed = self.connection.tcp_address().map(|(host, _)| host);
        let replica = self
            .key_families
            .as_ref()
            .and_then(|k| k.replica_address.as_deref())
            .and_then(crate::trust::parse_member)
            .map(|(host, _)| host);
        MemberPolicy::new(&self.members_allowed, seed.iter().chain(replica.iter()).map(String::as_str), [])
    }
}

impl std::ops::Deref for RedisTarget {
    type Target = RedisOptions;

    fn deref(&self) -> &RedisOptions {
        &self.connection
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("connection", &self.connection)
            .field("key_families", &self.key_families.is_some())
            .field("posture", &self.posture)
            .field("members_allowed", &self.members_allowed)
            .finish()
    }
}

/// Kind-specific settings of a target.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    Redis(RedisTarget),
    Mongodb(MongoTarget),
}

/// One named target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub spec: TargetSpec,
    /// Upper bound on this target's collection time, below the scrape deadline.
    pub timeout: Option<Duration>,
    /// Scraped by `/metrics` (otherwise only by `/probe?target=NAME`).
    pub default: bool,
    /// Where the target's secrets came from, so they can be read again
    /// (rotation without a restart, see [`Target::reread_secrets`]).
    pub secrets: SecretSources,
    /// Where the target was configured (the flags or a file), so a hint names
    /// the right way to give it a password.
    pub origin: TargetOrigin,
}

/// Where a target was configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOrigin {
    /// `--redis.*` / `--mongodb.*` flags (and their environment variables).
    Flags,
    /// A target in `--config.file`.
    File(PathBuf),
}

/// Where one secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    /// A file (`password_file`, `--redis.password-file`, `--mongodb.uri-file`, ...).
    File(PathBuf),
    /// An environment variable (`password_env`, `REDIS_PASSWORD`, `MONGODB_PASSWORD`).
    Env(String),
}

/// One secret's origin plus the flag or field it was configured by (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    pub origin: SecretOrigin,
    pub field: String,
}

impl SecretSource {
    fn file(path: &Path, field: &str) -> Self {
        SecretSource { origin: SecretOrigin::File(path.to_path_buf()), field: field.to_string() }
    }

    fn env(var: &str, field: &str) -> Self {
        SecretSource { origin: SecretOrigin::Env(var.to_string()), field: field.to_string() }
    }

    /// Reads the secret now: same checks as at startup (a regular file, at
    /// most 64 KiB, UTF-8, not empty; a set, non-empty variable).
    pub fn read(&self, env: &dyn Env) -> Result<Secret, ConfigError> {
        match &self.origin {
            SecretOrigin::File(path) => env.secret_file(path, &self.field),
            SecretOrigin::Env(var) => env.secret_var(var, &self.field),
        }
    }
}

/// The secrets of a target that came from files or the environment (an
/// inline secret, in a URL or `--mongodb.uri`, has no source: it cannot change).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSources {
    /// The password (Redis or MongoDB).
    pub password: Option<SecretSource>,
    /// The MongoDB connection string (`--mongodb.uri-file`).
    pub uri: Option<SecretSource>,
}

impl SecretSources {
    /// The files among the sources (what the rotation poll watches).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        [&self.password, &self.uri].into_iter().flatten().filter_map(|s| match &s.origin {
            SecretOrigin::File(path) => Some(path.as_path()),
            SecretOrigin::Env(_) => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.password.is_none() && self.uri.is_none()
    }
}

impl Target {
    pub fn kind(&self) -> TargetKind {
        match self.spec {
            TargetSpec::Redis(_) => TargetKind::Redis,
            TargetSpec::Mongodb(_) => TargetKind::Mongodb,
        }
    }

    /// How to give this target credentials, for an error that says it has
    /// none or the wrong ones: the flags for the command-line targets, the
    /// file's fields for a config-file target (whose credentials never come
    /// from REDIS_PASSWORD or MONGODB_USER / MONGODB_PASSWORD).
    pub fn credential_hint(&self) -> String {
        match (&self.origin, self.kind()) {
            (TargetOrigin::Flags, TargetKind::Redis) => {
                "set REDIS_PASSWORD or --redis.password-file (and --redis.user for an ACL user)".to_string()
            }
            (TargetOrigin::Flags, TargetKind::Mongodb) => {
                "set --mongodb.user (or MONGODB_USER) and MONGODB_PASSWORD or --mongodb.password-file".to_string()
            }
            (TargetOrigin::File(path), _) => format!(
                "set password_file (or password_env) and username on target {} in {}",
                self.name,
                path.display()
            ),
        }
    }

    /// Address without credentials, safe for the landing page and logs.
    pub fn display_address(&self) -> &str {
        match &self.spec {
            TargetSpec::Redis(r) => &r.url,
            TargetSpec::Mongodb(m) => &m.display,
        }
    }

    /// Reads the target's secret files and variables again. `Ok(None)`: all
    /// read and nothing changed; `Ok(Some(t))`: `t` is this target with the
    /// new secrets; `Err`: one could not be read (missing, empty, too large,
    /// not a valid connection string), and the caller keeps the old ones. The
    /// error names the field and the file, never the secret.
    pub fn reread_secrets(&self, env: &dyn Env) -> Result<Option<Target>, ConfigError> {
        if self.secrets.is_empty() {
            return Ok(None);
        }
        let password = self.secrets.password.as_ref().map(|s| s.read(env)).transpose()?;
        let uri = self.secrets.uri.as_ref().map(|s| s.read(env)).transpose()?;
        let mut next = self.clone();
        match &mut next.spec {
            TargetSpec::Redis(r) => {
                if password.is_some() {
                    r.connection.password = password;
                }
            }
            TargetSpec::Mongodb(m) => {
                if let (Some(uri), Some(source)) = (uri, &self.secrets.uri) {
                    m.connection.display = validate_mongodb_uri(uri.expose(), &source.field)?;
                    m.connection.uri = Secret::new(uri.expose().trim());
                }
                if password.is_some() {
                    m.connection.password = password;
                }
            }
        }
        Ok((next != *self).then_some(next))
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen_address: String,
    /// `--web.config.file`: TLS and basic auth for the HTTP endpoints.
    pub web_config_file: Option<PathBuf>,
    pub telemetry_path: String,
    pub max_requests: usize,
    pub timeout_offset: Duration,
    pub default_timeout: Duration,
    /// `--web.enable-lifecycle`: `POST /-/reload` is served.
    pub enable_lifecycle: bool,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub web: WebConfig,
    pub targets: Vec<Target>,
    /// Backup files whose freshness is exported on `/metrics` (`backups:` in the config file).
    pub backups: Option<BackupsConfig>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
}

/// Shortest collection deadline we accept, however small the scrape timeout.
pub const MIN_DEADLINE: Duration = Duration::from_millis(200);
/// Longest collection deadline, however large the scrape timeout.
pub const MAX_DEADLINE: Duration = Duration::from_secs(120);

// ---- YAML schema -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    targets: Vec<FileTarget>,
    #[serde(default)]
    backups: Option<BackupsConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTarget {
    name: String,
    kind: String,
    address: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    username_env: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    tls: Option<FileTls>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    collectors: Option<FileCollectors>,
    #[serde(default)]
    currentop_threshold: Option<String>,
    #[serde(default)]
    max_databases: Option<usize>,
    #[serde(default)]
    profiler_max_docs: Option<u32>,
    #[serde(default)]
    max_collections: Option<usize>,
    #[serde(default)]
    tenderly: Option<QueriesConfig>,
    #[serde(default)]
    key_families: Option<KeyFamiliesConfig>,
    #[serde(default)]
    posture_options: Option<RedisPostureConfig>,
    /// Redis only: the configuration drift policy (default the DBA guide's).
    #[serde(default)]
    drift: Option<RedisDriftPolicy>,
    #[serde(default)]
    members_allowed: Option<FileMembersAllowed>,
    #[serde(default)]
    client_list: Option<FileClientList>,
}

/// `client_list:` of a Redis target: how CLIENT LIST (clients by name / user) is bounded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClientList {
    #[serde(default)]
    top_n: Option<usize>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    max_reply_bytes: Option<usize>,
}

/// Most names a target may keep as labels of `redis_connected_clients_by_name`.
const MAX_CLIENTS_TOP_N: usize = 100;

fn file_client_list(
    file: Option<&FileClientList>,
    at: &dyn Fn(&str) -> String,
) -> Result<ClientListOptions, ConfigError> {
    let mut options = ClientListOptions::default();
    let Some(file) = file else { return Ok(options) };
    if let Some(n) = file.top_n {
        options.top_n = check_range(n, 0, MAX_CLIENTS_TOP_N, &at("client_list.top_n"))?;
    }
    if let Some(text) = &file.interval {
        options.interval =
            parse_duration(text).map_err(|e| invalid(at("client_list.interval"), e, "use e.g. interval: 60s"))?;
    }
    if let Some(n) = file.max_reply_bytes {
        options.max_reply_bytes = check_range(n, 4096, 64 * 1024 * 1024, &at("client_list.max_reply_bytes"))?;
    }
    Ok(options)
}

/// `members_allowed:` of a target: who besides the target's own hosts may get its credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMembersAllowed {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    cidrs: Vec<String>,
    #[serde(default)]
    dns_suffixes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
}

/// Per-target collector switches; which keys apply depends on the kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCollectors {
    #[serde(default)]
    slowlog: Option<bool>,
    #[serde(default)]
    config_max_age: Option<String>,
    #[serde(default)]
    latency: Option<bool>,
    #[serde(default)]
    config: Option<bool>,
    #[serde(default)]
    latency_histogram: Option<bool>,
    #[serde(default)]
    clients_by_name: Option<bool>,
    #[serde(default)]
    clients_by_user: Option<bool>,
    #[serde(default)]
    replset: Option<bool>,
    #[serde(default)]
    oplog: Option<bool>,
    #[serde(default)]
    currentop: Option<bool>,
    #[serde(default)]
    dbstats: Option<bool>,
    #[serde(default)]
    profiler: Option<bool>,
    #[serde(default)]
    keys: Option<bool>,
    #[serde(default)]
    posture: Option<bool>,
    #[serde(default)]
    collstats: Option<bool>,
    #[serde(default)]
    indexstats: Option<bool>,
    #[serde(default)]
    top: Option<bool>,
}

/// Where the process environment comes from (injectable for tests).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;

    /// Reads a secret file (`field` names the flag or YAML field for errors).
    fn secret_file(&self, path: &Path, field: &str) -> Result<Secret, ConfigError> {
        read_secret_file(path, field)
    }

    /// Where `--check-config.structure` collects its findings (`None`: a real run).
    fn structure_findings(&self) -> Option<&std::cell::RefCell<Vec<String>>> {
        None
    }

    /// Reads a secret that must be in environment variable `var`.
    fn secret_var(&self, var: &str, field: &str) -> Result<Secret, ConfigError> {
        self.var(var).filter(|v| !v.is_empty()).map(Secret::new).ok_or_else(|| {
            invalid(field, format!("environment variable {} is not set or empty", env_name(var)), "export it")
        })
    }
}

/// The environment of `--check-config.structure`: every other variable is
/// read as usual, but no secret is read. A secret file that cannot be read
/// or a secret variable that is not set becomes a finding, and a placeholder
/// stands in for the secret so the rest of the file is still checked.
pub struct StructureOnly<'a> {
    inner: &'a dyn Env,
    findings: std::cell::RefCell<Vec<String>>,
}

impl<'a> StructureOnly<'a> {
    pub fn new(inner: &'a dyn Env) -> Self {
        StructureOnly { inner, findings: std::cell::RefCell::new(Vec::new()) }
    }

    /// One line per secret that is missing or unreadable, in configuration order.
    pub fn findings(&self) -> Vec<String> {
        self.findings.borrow().clone()
    }

    fn placeholder(field: &str) -> Secret {
        // A connection-string file must still parse as one.
        if field.contains("uri") {
            Secret::new("mongodb://structure-check.invalid")
        } else {
            Secret::new("structure-check-placeholder")
        }
    }
}

impl Env for StructureOnly<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.inner.var(name)
    }

    fn structure_findings(&self) -> Option<&std::cell::RefCell<Vec<String>>> {
        Some(&self.findings)
    }

    /// Checks only that the file exists and is a regular file: its content is never read.
    fn secret_file(&self, path: &Path, field: &str) -> Result<Secret, ConfigError> {
        let problem = match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => None,
            Ok(_) => Some(format!("{} is not a regular file", shown_path(path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!("{} does not exist", shown_path(path))),
            Err(e) => Some(format!("cannot read {}: {}", shown_path(path), e.kind())),
        };
        if let Some(problem) = problem {
            self.findings.borrow_mut().push(format!("{field}: {problem}"));
        }
        Ok(Self::placeholder(field))
    }

    fn secret_var(&self, var: &str, field: &str) -> Result<Secret, ConfigError> {
        if self.inner.var(var).filter(|v| !v.is_empty()).is_none() {
            self.findings
                .borrow_mut()
                .push(format!("{field}: environment variable {} is not set or empty", env_name(var)));
        }
        Ok(Self::placeholder(field))
    }
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Builds and validates the configuration from flags, the environment and the config file.
    pub fn from_cli(cli: &Cli, env: &dyn Env) -> Result<Config, ConfigError> {
        let web = WebConfig {
            listen_address: normalize_listen_address(&cli.listen_address)?,
            web_config_file: cli.web_config_file.clone(),
            telemetry_path: validate_telemetry_path(&cli.telemetry_path)?,
            max_requests: match cli.max_requests {
                0 => return Err(invalid("--web.max-requests", "must be at least 1", "set it to e.g. 40")),
                n if n > 10_000 => {
                    return Err(invalid("--web.max-requests", format!("{n} is too many"), "use at most 10000"))
                }
                n => n,
            },
            timeout_offset: duration_flag(&cli.timeout_offset, "--web.timeout-offset", "0.5s")?,
            default_timeout: duration_flag(&cli.default_timeout, "--web.default-timeout", "9.5s")?
                .clamp(MIN_DEADLINE, MAX_DEADLINE),
            enable_lifecycle: cli.enable_lifecycle,
        };

        let mut targets = Vec::new();
        if let Some(addr) = &cli.redis_addr {
            let (password, password_source) = match &cli.redis_password_file {
                Some(path) => (
                    Some(env.secret_file(path, "--redis.password-file")?),
                    Some(SecretSource::file(path, "--redis.password-file")),
                ),
                // An empty variable means "no password", as with unset.
                None => match env.var("REDIS_PASSWORD").filter(|p| !p.is_empty()) {
                    Some(p) => (Some(Secret::new(p)), Some(SecretSource::env("REDIS_PASSWORD", "REDIS_PASSWORD"))),
                    None => (None, None),
                },
            };
            let collectors = RedisCollectors {
                slowlog: Cli::switch(cli.redis_slowlog, cli.no_redis_slowlog, true),
                latency: Cli::switch(cli.redis_latency, cli.no_redis_latency, true),
                config: Cli::switch(cli.redis_config, cli.no_redis_config, true),
                config_max_age: duration_flag(&cli.redis_config_max_age, "--redis.config-max-age", "60s")?,
                latency_histogram: Cli::switch(cli.redis_latency_histogram, cli.no_redis_latency_histogram, true),
                clients_by_name: Cli::switch(cli.redis_clients_by_name, cli.no_redis_clients_by_name, true),
                clients_by_user: Cli::switch(cli.redis_clients_by_user, cli.no_redis_clients_by_user, false),
            };
            let client_list = ClientListOptions {
                top_n: check_range(cli.redis_clients_top_n, 0, MAX_CLIENTS_TOP_N, "--redis.clients-top-n")?,
                interval: duration_flag(&cli.redis_clients_interval, "--redis.clients-interval", "60s")?,
                ..ClientListOptions::default()
            };
            let tls = RedisTls {
                ca_file: cli.redis_tls_ca_file.clone(),
                cert_file: cli.redis_tls_cert_file.clone(),
                key_file: cli.redis_tls_key_file.clone(),
            };
            let (url, url_user, url_password) = normalize_redis_address(addr, "--redis.addr")?;
            validate_tls(&tls, &url, "--redis.tls-*", env)?;
            targets.push(Target {
                name: "redis".to_string(),
                spec: TargetSpec::Redis(RedisTarget {
                    connection: RedisOptions {
                        url,
                        username: cli.redis_user.clone().or(url_user),
                        password: password.or(url_password),
                        tls,
                        collectors,
                        extra_config: RedisDriftPolicy::default().config_params(),
                        client_list,
                    },
                    key_families: Cli::switch(cli.tenderly_keys, cli.no_tenderly_keys, true)
                        .then(KeyFamiliesConfig::default),
                    posture: Cli::switch(cli.tenderly_posture, cli.no_tenderly_posture, true)
                        .then(RedisPostureConfig::default),
                    drift: Some(RedisDriftPolicy::default()),
                    members_allowed: MemberAllowList::default(),
                }),
                timeout: None,
                default: true,
                secrets: SecretSources { password: password_source, uri: None },
                origin: TargetOrigin::Flags,
            });
        }

        if let Some(target) = mongodb_from_flags(cli, env)? {
            targets.push(target);
        }

        let mut backups = None;
        if let Some(path) = &cli.config_file {
            let text =
                std::fs::read_to_string(path).map_err(|cause| ConfigError::ReadFile { path: path.clone(), cause })?;
            let (file_targets, file_backups) = parse_file_full(&text, path, env)?;
            targets.extend(file_targets);
            backups = file_backups;
        }

        validate_targets(&targets)?;
        let log_level = match cli.log_level {
            cli::LogLevel::Debug => LogLevel::Debug,
            cli::LogLevel::Info => LogLevel::Info,
            cli::LogLevel::Warn => LogLevel::Warn,
            cli::LogLevel::Error => LogLevel::Error,
        };
        let log_format = match cli.log_format {
            cli::LogFormat::Logfmt => LogFormat::Logfmt,
            cli::LogFormat::Json => LogFormat::Json,
        };
        Ok(Config { web, targets, backups, log_level, log_format })
    }

    /// Targets scraped by `/metrics`.
    pub fn default_targets(&self) -> impl Iterator<Item = &Target> {
        self.targets.iter().filter(|t| t.default)
    }
}

/// `--tenderly.app-database`: the shipped Tenderly queries on the flag target.
fn tenderly_from_flags(cli: &Cli) -> Result<Option<QueriesConfig>, ConfigError> {
    let Some(db) = &cli.tenderly_app_database else { return Ok(None) };
    let config: QueriesConfig = serde_norway::from_str(&format!("app_database: {db:?}"))
        .map_err(|_| invalid("--tenderly.app-database", "not a database name", "use e.g. tenderly"))?;
    config.validate().map_err(|e| invalid("--tenderly.app-database", e.problem, e.fix))?;
    Ok(Some(config))
}

/// The default MongoDB target from `--mongodb.*` flags, if any.
fn mongodb_from_flags(cli: &Cli, env: &dyn Env) -> Result<Option<Target>, ConfigError> {
    let mut secrets = SecretSources::default();
    let (uri, field) = match (&cli.mongodb_uri, &cli.mongodb_uri_file) {
        (Some(_), Some(_)) => {
            return Err(invalid("--mongodb.uri-file", "both --mongodb.uri and --mongodb.uri-file are set", "keep one"))
        }
        (Some(uri), None) => (Secret::new(uri.trim()), "--mongodb.uri"),
        (None, Some(path)) => {
            secrets.uri = Some(SecretSource::file(path, "--mongodb.uri-file"));
            (env.secret_file(path, "--mongodb.uri-file")?, "--mongodb.uri-file")
        }
        (None, None) => return Ok(None),
    };
    let display = validate_mongodb_uri(uri.expose(), field)?;
    let password = match &cli.mongodb_password_file {
        Some(path) => {
            secrets.password = Some(SecretSource::file(path, "--mongodb.password-file"));
            Some(env.secret_file(path, "--mongodb.password-file")?)
        }
        None => {
            let password = env.var("MONGODB_PASSWORD").filter(|p| !p.is_empty()).map(Secret::new);
            if password.is_some() {
                secrets.password = Some(SecretSource::env("MONGODB_PASSWORD", "MONGODB_PASSWORD"));
            }
            password
        }
    };
    if password.is_some() && cli.mongodb_user.is_none() {
        return Err(invalid(
            "--mongodb.user",
            "a MongoDB password is set but no user",
            "set --mongodb.user or MONGODB_USER",
        ));
    }
    let collectors = MongoCollectors {
        replset: Cli::switch(cli.mongodb_replset, cli.no_mongodb_replset, true),
        oplog: Cli::switch(cli.mongodb_oplog, cli.no_mongodb_oplog, true),
        currentop: Cli::switch(cli.mongodb_currentop, cli.no_mongodb_currentop, true),
        dbstats: Cli::switch(cli.mongodb_dbstats, cli.no_mongodb_dbstats, true),
        profiler: Cli::switch(cli.mongodb_profiler, cli.no_mongodb_profiler, true),
        collstats: Cli::switch(cli.mongodb_collstats, cli.no_mongodb_collstats, false),
        indexstats: Cli::switch(cli.mongodb_indexstats, cli.no_mongodb_indexstats, false),
        top: Cli::switch(cli.mongodb_top, cli.no_mongodb_top, false),
    };
    let limits = MongoLimits {
        currentop_threshold: duration_flag(&cli.mongodb_currentop_threshold, "--mongodb.currentop-threshold", "1s")?,
        max_databases: check_range(cli.mongodb_max_databases, 1, 10_000, "--mongodb.max-databases")?,
        profiler_max_docs: check_range(cli.mongodb_profiler_max_docs, 1, 100_000, "--mongodb.profiler-max-docs")?,
        max_collections: check_range(cli.mongodb_max_collections, 1, 10_000, "--mongodb.max-collections")?,
    };
    Ok(Some(Target {
        name: "mongodb".to_string(),
        spec: TargetSpec::Mongodb(MongoTarget {
            connection: MongoOptions {
                uri,
                display,
                username: cli.mongodb_user.clone(),
                password,
                collectors,
                limits,
                members_allowed: MemberAllowList::default(),
            },
            tenderly: tenderly_from_flags(cli)?,
            posture: Cli::switch(cli.tenderly_posture, cli.no_tenderly_posture, true),
        }),
        timeout: None,
        default: true,
        secrets,
        origin: TargetOrigin::Flags,
    }))
}

/// Parses the YAML configuration file into targets.
pub fn parse_file(text: &str, path: &Path, env: &dyn Env) -> Result<Vec<Target>, ConfigError> {
    parse_file_full(text, path, env).map(|(targets, _)| targets)
}

/// Parses the YAML configuration file into targets and the backup sources.
pub fn parse_file_full(
    text: &str,
    path: &Path,
    env: &dyn Env,
) -> Result<(Vec<Target>, Option<BackupsConfig>), ConfigError> {
    if text.len() > 4 * 1024 * 1024 {
        return Err(ConfigError::Parse { path: path.to_path_buf(), message: "larger than 4 MiB".into() });
    }
    let file: FileConfig = if text.trim().is_empty() {
        FileConfig { targets: Vec::new(), backups: None }
    } else {
        // serde_norway's messages carry the line and column and name the field, never a value.
        serde_norway::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?
    };
    let mut out = Vec::with_capacity(file.targets.len());
    for (i, t) in file.targets.into_iter().enumerate() {
        let at = |field: &str| format!("{}: targets[{i}] ({}).{field}", path.display(), t.name);
        let kind = match t.kind.as_str() {
            "redis" => TargetKind::Redis,
            "mongodb" => TargetKind::Mongodb,
            other => {
                return Err(invalid(at("kind"), format!("unknown kind '{other}'"), "use kind: redis or kind: mongodb"))
            }
        };
        let password_source = match (&t.password_env, &t.password_file) {
            (Some(var), None) => Some(SecretSource::env(var, &at("password_env"))),
            (None, Some(file)) => Some(SecretSource::file(file, &at("password_file"))),
            _ => None,
        };
        let file_password = match (&t.password_env, &t.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(at("password_env"), "both password_env and password_file are set", "keep one"))
            }
            (Some(var), None) => Some(env.secret_var(var, &at("password_env"))?),
            (None, Some(file)) => Some(env.secret_file(file, &at("password_file"))?),
            (None, None) => None,
        };
        let file_username = match (&t.username, &t.username_env) {
            (Some(_), Some(_)) => {
                return Err(invalid(at("username_env"), "both username and username_env are set", "keep one"))
            }
            (Some(u), None) => Some(u.clone()),
            (None, Some(var)) => Some(env.var(var).ok_or_else(|| {
                invalid(
                    at("username_env"),
                    format!("environment variable {} is not set or empty", env_name(var)),
                    "export it",
                )
            })?),
            (None, None) => None,
        };
        let timeout = match &t.timeout {
            Some(text) => {
                let d = parse_duration(text).map_err(|e| invalid(at("timeout"), e, "use e.g. timeout: 5s"))?;
                if d < MIN_DEADLINE {
                    return Err(invalid(at("timeout"), "shorter than 200ms", "use at least 200ms"));
                }
                Some(d)
            }
            None => None,
        };
        let members_allowed = match &t.members_allowed {
            Some(m) => MemberAllowList::parse(&m.hosts, &m.cidrs, &m.dns_suffixes)
                .map_err(|e| invalid(at(&format!("members_allowed.{}", e.field)), e.problem, e.fix))?,
            None => MemberAllowList::default(),
        };
        let spec = match kind {
            TargetKind::Redis => {
                let mongo_only = [
                    ("currentop_threshold", t.currentop_threshold.is_some()),
                    ("max_databases", t.max_databases.is_some()),
                    ("profiler_max_docs", t.profiler_max_docs.is_some()),
                    ("max_collections", t.max_collections.is_some()),
                ];
                reject_foreign_keys(&mongo_only, "redis", &at)?;
                reject_foreign_keys(&[("tenderly", t.tenderly.is_some())], "redis", &at)?;
                let keys_on = t.collectors.as_ref().and_then(|c| c.keys).unwrap_or(true);
                let posture_on = t.collectors.as_ref().and_then(|c| c.posture).unwrap_or(true);
                let key_families = if keys_on {
                    let cfg = t.key_families.clone().unwrap_or_default();
                    cfg.validate().map_err(|e| invalid(at("key_families"), e, "see README \"Tenderly signals\""))?;
                    Some(cfg)
                } else {
                    None
                };
                let posture = if posture_on {
                    let cfg = t.posture_options.clone().unwrap_or_default();
                    cfg.validate().map_err(|e| invalid(at("posture_options"), e, "see README \"Tenderly signals\""))?;
                    Some(cfg)
                } else {
                    None
                };
                let drift = t.drift.clone().unwrap_or_default();
                drift.validate().map_err(|e| invalid(at("drift"), e, "see docs/configuration.md \"drift\""))?;
                let (url, url_user, url_password) = normalize_redis_address(&t.address, &at("address"))?;
                let tls = t
                    .tls
                    .map(|f| RedisTls { ca_file: f.ca_file, cert_file: f.cert_file, key_file: f.key_file })
                    .unwrap_or_default();
                validate_tls(&tls, &url, &at("tls"), env)?;
                let defaults = RedisCollectors::default();
                let collectors = match t.collectors {
                    None => defaults,
                    Some(c) => {
                        let foreign = [
                            ("collectors.replset", c.replset.is_some()),
                            ("collectors.oplog", c.oplog.is_some()),
                            ("collectors.currentop", c.currentop.is_some()),
                            ("collectors.dbstats", c.dbstats.is_some()),
                            ("collectors.profiler", c.profiler.is_some()),
                            ("collectors.collstats", c.collstats.is_some()),
                            ("collectors.indexstats", c.indexstats.is_some()),
                            ("collectors.top", c.top.is_some()),
                        ];
                        reject_foreign_keys(&foreign, "redis", &at)?;
                        let config_max_age = match &c.config_max_age {
                            None => defaults.config_max_age,
                            Some(text) => parse_duration(text).map_err(|e| {
                                invalid(at("collectors.config_max_age"), e, "use e.g. config_max_age: 60s")
                            })?,
                        };
                        RedisCollectors {
                            slowlog: c.slowlog.unwrap_or(defaults.slowlog),
                            latency: c.latency.unwrap_or(defaults.latency),
                            config: c.config.unwrap_or(defaults.config),
                            config_max_age,
                            latency_histogram: c.latency_histogram.unwrap_or(defaults.latency_histogram),
                            clients_by_name: c.clients_by_name.unwrap_or(defaults.clients_by_name),
                            clients_by_user: c.clients_by_user.unwrap_or(defaults.clients_by_user),
                        }
                    }
                };
                let client_list = file_client_list(t.client_list.as_ref(), &at)?;
                TargetSpec::Redis(RedisTarget {
                    connection: RedisOptions {
                        url,
                        username: file_username.or(url_user),
                        password: file_password.or(url_password),
                        tls,
                        collectors,
                        extra_config: drift.config_params(),
                        client_list,
                    },
                    key_families,
                    posture,
                    drift: Some(drift),
                    members_allowed,
                })
            }
            TargetKind::Mongodb => {
                reject_foreign_keys(
                    &[
                        ("tls", t.tls.is_some()),
                        ("key_families", t.key_families.is_some()),
                        ("posture_options", t.posture_options.is_some()),
                        ("drift", t.drift.is_some()),
                        ("client_list", t.client_list.is_some()),
                        ("collectors.keys", t.collectors.as_ref().is_some_and(|c| c.keys.is_some())),
                    ],
                    "mongodb",
                    &at,
                )?;
                let display = validate_mongodb_uri(&t.address, &at("address"))?;
                let defaults = MongoCollectors::default();
                let posture = t.collectors.as_ref().and_then(|c| c.posture).unwrap_or(true);
                let collectors = match t.collectors {
                    None => defaults,
                    Some(c) => {
                        let foreign = [
                            ("collectors.slowlog", c.slowlog.is_some()),
                            ("collectors.latency", c.latency.is_some()),
                            ("collectors.config", c.config.is_some()),
                            ("collectors.config_max_age", c.config_max_age.is_some()),
                            ("collectors.latency_histogram", c.latency_histogram.is_some()),
                            ("collectors.clients_by_name", c.clients_by_name.is_some()),
                            ("collectors.clients_by_user", c.clients_by_user.is_some()),
                        ];
                        reject_foreign_keys(&foreign, "mongodb", &at)?;
                        MongoCollectors {
                            replset: c.replset.unwrap_or(defaults.replset),
                            oplog: c.oplog.unwrap_or(defaults.oplog),
                            currentop: c.currentop.unwrap_or(defaults.currentop),
                            dbstats: c.dbstats.unwrap_or(defaults.dbstats),
                            profiler: c.profiler.unwrap_or(defaults.profiler),
                            collstats: c.collstats.unwrap_or(defaults.collstats),
                            indexstats: c.indexstats.unwrap_or(defaults.indexstats),
                            top: c.top.unwrap_or(defaults.top),
                        }
                    }
                };
                let mut limits = MongoLimits::default();
                if let Some(text) = &t.currentop_threshold {
                    limits.currentop_threshold = parse_duration(text)
                        .map_err(|e| invalid(at("currentop_threshold"), e, "use e.g. currentop_threshold: 1s"))?;
                }
                if let Some(n) = t.max_databases {
                    limits.max_databases = check_range(n, 1, 10_000, &at("max_databases"))?;
                }
                if let Some(n) = t.profiler_max_docs {
                    limits.profiler_max_docs = check_range(n, 1, 100_000, &at("profiler_max_docs"))?;
                }
                if let Some(n) = t.max_collections {
                    limits.max_collections = check_range(n, 1, 10_000, &at("max_collections"))?;
                }
                if let Some(q) = &t.tenderly {
                    q.validate().map_err(|e| invalid(at(&format!("tenderly.{}", e.field)), e.problem, e.fix))?;
                }
                TargetSpec::Mongodb(MongoTarget {
                    connection: MongoOptions {
                        uri: Secret::new(t.address.trim()),
                        display,
                        username: file_username,
                        password: file_password,
                        collectors,
                        limits,
                        members_allowed,
                    },
                    tenderly: t.tenderly,
                    posture,
                })
            }
        };
        let secrets = SecretSources { password: password_source, uri: None };
        out.push(Target {
            name: t.name,
            spec,
            timeout,
            default: t.default,
            secrets,
            origin: TargetOrigin::File(path.to_path_buf()),
        });
    }
    if let Some(b) = &file.backups {
        b.validate().map_err(|e| invalid(format!("{}: backups.{}", path.display(), e.field), e.problem, e.fix))?;
    }
    Ok((out, file.backups))
}

fn reject_foreign_keys(keys: &[(&str, bool)], kind: &str, at: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
    match keys.iter().find(|(_, present)| *present) {
        Some((key, _)) => Err(invalid(at(key), format!("does not apply to kind: {kind}"), "remove it")),
        None => Ok(()),
    }
}

fn check_range<T: PartialOrd + fmt::Display + Copy>(value: T, min: T, max: T, field: &str) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(invalid(field, format!("{value} is out of range"), format!("use a value from {min} to {max}")));
    }
    Ok(value)
}

/// Checks a MongoDB connection string's syntax with the driver's own parser and
/// returns a credential-free display form (`mongodb://host:port,...`). The
/// parser's message is not shown: it can quote the string, credentials included.
pub fn validate_mongodb_uri(uri: &str, field: &str) -> Result<String, ConfigError> {
    // Credentials go where this target takes them: the flags' variables for
    // the command-line target, the target's own fields in a config file.
    let fix = if field.starts_with("--") {
        "use mongodb://host:port[/?options] or mongodb+srv://name; put credentials in MONGODB_USER/MONGODB_PASSWORD"
    } else {
        "use mongodb://host:port[/?options] or mongodb+srv://name; put credentials in the target's username and password_file"
    };
    let parsed = mongodb::options::ConnectionString::parse(uri.trim())
        .map_err(|_| invalid(field, "not a valid MongoDB connection string", fix))?;
    let display = match &parsed.host_info {
        mongodb::options::HostInfo::HostIdentifiers(hosts) => {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            format!("mongodb://{}", hosts.join(","))
        }
        mongodb::options::HostInfo::DnsRecord(name) => format!("mongodb+srv://{name}"),
        _ => "mongodb://(unknown)".to_string(),
    };
    Ok(display)
}

fn validate_targets(targets: &[Target]) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    let mut default_kinds = BTreeSet::new();
    for t in targets {
        let valid_name = !t.name.is_empty()
            && t.name.len() <= 64
            && t.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(invalid(
                format!("targets: name '{}'", t.name.escape_debug()),
                "names must be 1-64 characters of [A-Za-z0-9._-]",
                "rename the target",
            ));
        }
        if !names.insert(t.name.as_str()) {
            return Err(invalid(
                format!("targets: name '{}'", t.name),
                "used twice (the flag-defined Redis target is named 'redis')",
                "give each target a unique name",
            ));
        }
        if t.default && !default_kinds.insert(t.kind()) {
            return Err(invalid(
                format!("targets: '{}' default: true", t.name),
                format!("a second default {} target; /metrics would mix their series", t.kind().as_str()),
                "scrape additional targets through /probe?target=NAME instead",
            ));
        }
    }
    Ok(())
}

/// An environment variable's name for an error message, or a placeholder when
/// the value cannot be a name (someone pasted the secret itself into the field).
fn env_name(var: &str) -> String {
    let plausible = var.len() <= 128
        && var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plausible {
        var.to_string()
    } else {
        "(not a valid variable name; the value is not shown in case it is a secret)".to_string()
    }
}

/// A secret file's path for an error message: only something that looks like a
/// path (absolute or explicitly relative) is shown, in case a secret was pasted
/// into the field.
fn shown_path(path: &Path) -> String {
    let text = path.display().to_string();
    let looks_like_path = path.is_absolute() || text.starts_with("./") || text.starts_with("../");
    if looks_like_path && text.len() <= 512 && !text.contains(char::is_whitespace) {
        text
    } else {
        "(the configured file; the value is not shown in case it is a secret)".to_string()
    }
}

fn read_secret_file(path: &Path, field: &str) -> Result<Secret, ConfigError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| invalid(field, format!("cannot read {}: {}", shown_path(path), e.kind()), "check the path"))?;
    // A FIFO would block startup and /dev/zero never ends: only regular files
    // (Kubernetes secret symlinks resolve to one).
    if !meta.is_file() {
        return Err(invalid(field, format!("{} is not a regular file", shown_path(path)), "point it at a file"));
    }
    const CAP: u64 = 64 * 1024;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, CAP + 1), &mut bytes))
        .map_err(|e| invalid(field, format!("cannot read {}: {}", shown_path(path), e.kind()), "check the path"))?;
    // The length in the metadata can lie (procfs reports 0): the cap is on what was read.
    if bytes.len() as u64 > CAP {
        return Err(invalid(field, format!("{} is larger than 64 KiB", shown_path(path)), "store only the secret"));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| invalid(field, format!("{} is not UTF-8 text", shown_path(path)), "store the secret as text"))?;
    // Secret files conventionally end with a newline that is not part of the secret.
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(invalid(field, format!("{} is empty", shown_path(path)), "write the password into it"));
    }
    Ok(Secret::new(secret))
}

fn validate_tls(tls: &RedisTls, url: &str, field: &str, env: &dyn Env) -> Result<(), ConfigError> {
    let any = tls.ca_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some();
    if any && !url.starts_with("rediss://") {
        return Err(invalid(field, "TLS files are set but the address is not rediss://", "use a rediss:// address"));
    }
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err(invalid(field, "a client certificate needs both cert_file and key_file", "set both or neither"));
    }
    for p in [&tls.ca_file, &tls.cert_file, &tls.key_file].into_iter().flatten() {
        if !p.is_file() {
            // A key file is a secret: the structural check lists a missing one instead.
            if let Some(findings) = env.structure_findings() {
                findings.borrow_mut().push(format!("{field}: {} is not a readable file", p.display()));
                continue;
            }
            return Err(invalid(field, format!("{} is not a readable file", p.display()), "check the path"));
        }
    }
    Ok(())
}

/// Turns any accepted address form into a credential-free URL plus the
/// credentials that were embedded in it (accepted, but discouraged).
fn normalize_redis_address(raw: &str, field: &str) -> Result<(String, Option<String>, Option<Secret>), ConfigError> {
    let raw = raw.trim();
    let fix = "use redis://host:port, rediss://host:port, unix:///path/to/socket or host:port";
    if raw.is_empty() {
        return Err(invalid(field, "empty address", fix));
    }
    if let Some(path) = raw.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(invalid(field, "unix socket path must be absolute", fix));
        }
        return Ok((format!("unix://{path}"), None, None));
    }
    let (scheme, rest) = match raw.split_once("://") {
        Some(("redis", rest)) => ("redis", rest),
        Some(("rediss", rest)) => ("rediss", rest),
        Some((other, _)) => return Err(invalid(field, format!("unsupported scheme '{other}'"), fix)),
        None => ("redis", raw),
    };
    // RFC 3986: the authority ends at the first '/', '?' or '#'; a password
    // holding one of them must percent-encode it (%2F, %3F, %23).
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if path.contains(['?', '#']) {
        return Err(invalid(
            field,
            "query parameters and fragments are not supported (or a password has an unencoded '?' or '#')",
            "percent-encode such characters in the user and password: %23 for '#', %3F for '?', %2F for '/', %40 for '@', %3A for ':', %25 for '%'",
        ));
    }
    // Userinfo runs to the last '@': a host never contains one.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => {
            let (name, pass) = u.split_once(':').unwrap_or((u, ""));
            let name =
                percent_decode(name).map_err(|problem| invalid(field, format!("user {problem}"), PERCENT_FIX))?;
            let pass =
                percent_decode(pass).map_err(|problem| invalid(field, format!("password {problem}"), PERCENT_FIX))?;
            ((!name.is_empty()).then_some(name), (!pass.is_empty()).then(|| Secret::new(pass)))
        }
        None => (None, None),
    };
    let (host, port) = split_host_port(hostport).ok_or_else(|| invalid(field, "missing or invalid host:port", fix))?;
    let db = path.trim_start_matches('/');
    let db_suffix = if db.is_empty() {
        String::new()
    } else {
        let n: u32 = db.parse().map_err(|_| invalid(field, "database must be a number", "use e.g. /0"))?;
        format!("/{n}")
    };
    Ok((format!("{scheme}://{host}:{port}{db_suffix}"), user, password))
}

const PERCENT_FIX: &str =
    "write '%' as %25 and every escape as '%' plus two hex digits (e.g. %23 for '#'), for UTF-8 text";

/// Decodes `%XX` escapes of a URL's user or password. The error never
/// contains the input: it may be a password.
fn percent_decode(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err("has an invalid percent-escape ('%' not followed by two hex digits)"),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 after percent-decoding")
}

fn split_host_port(hostport: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 6379,
            None => return None,
        };
        (format!("[{h}]"), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (hostport.to_string(), 6379),
        }
    };
    let host_ok = !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    (host_ok && port != 0).then_some((host, port))
}

fn normalize_listen_address(raw: &str) -> Result<String, ConfigError> {
    let addr = if raw.starts_with(':') { format!("0.0.0.0{raw}") } else { raw.to_string() };
    addr.parse::<std::net::SocketAddr>().map_err(|_| {
        invalid("--web.listen-address", format!("'{raw}' is not host:port"), "use e.g. :9879 or 127.0.0.1:9879")
    })?;
    Ok(addr)
}

fn validate_telemetry_path(path: &str) -> Result<String, ConfigError> {
    let reserved = ["/", "/probe", "/-/healthy", "/-/ready"];
    if !path.starts_with('/') || path.len() < 2 || reserved.contains(&path) || path.contains(['?', '#', ' ']) {
        return Err(invalid(
            "--web.telemetry-path",
            format!("'{path}' is not usable"),
            "use an absolute path such as /metrics that is not /, /probe or /-/*",
        ));
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("tenderly-exporter").chain(args.iter().copied())).expect("valid flags")
    }

    #[test]
    fn redis_address_forms_normalize_without_credentials() {
        let cases = [
            ("localhost:6380", "redis://localhost:6380"),
            ("redis://10.0.0.1", "redis://10.0.0.1:6379"),
            ("rediss://cache.internal:6380/2", "rediss://cache.internal:6380/2"),
            ("redis://:s3cret@h:1", "redis://h:1"),
            ("redis://[::1]:7000", "redis://[::1]:7000"),
            ("unix:///run/redis.sock", "unix:///run/redis.sock"),
        ];
        for (raw, want) in cases {
            let (url, _, _) = normalize_redis_address(raw, "f").expect(raw);
            assert_eq!(url, want, "{raw}");
        }
        let (_, user, pass) = normalize_redis_address("redis://app:pw@h:1", "f").expect("valid");
        assert_eq!(user.as_deref(), Some("app"));
        assert_eq!(pass.map(|s| s.expose().to_string()).as_deref(), Some("pw"));
        for bad in ["", "http://x:1", "h:notaport", "unix://relative", "redis://h:1/x", "h:0"] {
            assert!(normalize_redis_address(bad, "f").is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn redis_url_user_and_password_are_percent_decoded() {
        let raw = "redis://us%40er:p%23%3F%2F%40%3A%25x@127.0.0.1:6390/1";
        let (url, user, pass) = normalize_redis_address(raw, "f").expect("valid");
        assert_eq!(url, "redis://127.0.0.1:6390/1");
        assert_eq!(user.as_deref(), Some("us@er"));
        assert_eq!(pass.map(|s| s.expose().to_string()).as_deref(), Some("p#?/@:%x"));
        // Userinfo runs to the last '@'; a raw '@' in the password is tolerated.
        let (_, _, pass) = normalize_redis_address("redis://:a@b@h:1", "f").expect("valid");
        assert_eq!(pass.map(|s| s.expose().to_string()).as_deref(), Some("a@b"));
        // UTF-8 escapes decode to text.
        let (_, _, pass) = normalize_redis_address("redis://:%C3%A9t%C3%A9@h:1", "f").expect("valid");
        assert_eq!(pass.map(|s| s.expose().to_string()).as_deref(), Some("été"));
    }

    #[test]
    fn bad_percent_escapes_name_the_field_and_never_echo_the_password() {
        for (raw, part) in [
            ("redis://:s3cr%zzet@h:1", "password"),
            ("redis://:s3cret%2@h:1", "password"),
            ("redis://:s3cret%@h:1", "password"),
            ("redis://:s3cr%FFet@h:1", "password"),
            ("redis://us%g0er:s3cret@h:1", "user"),
        ] {
            let e = normalize_redis_address(raw, "--redis.addr").expect_err(raw).to_string();
            assert!(e.contains("--redis.addr") && e.contains(part), "{raw}: {e}");
            assert!(!e.contains("s3cr"), "{raw}: the error echoes the password: {e}");
        }
        // RFC 3986: an unencoded '#', '?' or '/' ends the authority, so the
        // password cannot hold one raw; the error says to encode it, without echoing it.
        for raw in ["redis://:s3cr#et@h:1", "redis://:s3cr?et@h:1", "redis://:s3cr/et@h:1"] {
            let e = normalize_redis_address(raw, "f").expect_err(raw).to_string();
            assert!(!e.contains("s3cr") && !e.contains("et@h"), "{raw}: {e}");
        }
    }

    #[test]
    fn password_comes_from_env_and_is_redacted_everywhere() {
        let env = MapEnv([("REDIS_PASSWORD", "hunter2-secret")].into());
        let config = Config::from_cli(&cli(&["--redis.addr", "localhost:6379"]), &env).expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2-secret"), "{debug}");
        let TargetSpec::Redis(r) = &config.targets[0].spec else { panic!("expected a Redis target") };
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("hunter2-secret"));
        assert_eq!(config.targets[0].display_address(), "redis://localhost:6379");
    }

    #[test]
    fn collector_switches_follow_flags() {
        let env = MapEnv(HashMap::new());
        let config =
            Config::from_cli(&cli(&["--redis.addr", "h:1", "--no-collector.redis.slowlog"]), &env).expect("valid");
        let TargetSpec::Redis(r) = &config.targets[0].spec else { panic!("expected a Redis target") };
        assert!(!r.collectors.slowlog && r.collectors.latency && r.collectors.config);
    }

    #[test]
    fn file_errors_name_the_field() {
        let env = MapEnv(HashMap::new());
        let path = Path::new("targets.yml");
        let cases = [
            ("targets:\n  - {name: a, kind: mongo, address: h:1}\n", "targets[0] (a).kind"),
            ("targets:\n  - {name: a, kind: redis, address: 'ftp://x'}\n", "targets[0] (a).address"),
            ("targets:\n  - {name: a, kind: redis, address: h:1, password_env: NOPE}\n", "NOPE is not set"),
            ("targets:\n  - {name: a, kind: redis, address: h:1, timeout: 10x}\n", "targets[0] (a).timeout"),
            ("targets:\n  - {name: a, kind: redis, address: h:1, colour: red}\n", "unknown field `colour`"),
            ("targets: [", "targets.yml"),
            (
                "targets:\n  - {name: a, kind: redis, address: h:1, members_allowed: {cidrs: ['10.0.0.1/8']}}\n",
                "targets[0] (a).members_allowed.cidrs[0]",
            ),
            (
                "targets:\n  - {name: a, kind: mongodb, address: 'mongodb://h:1', members_allowed: {hosts: [ok, 'h:1']}}\n",
                "targets[0] (a).members_allowed.hosts[1]",
            ),
            (
                "targets:\n  - {name: a, kind: redis, address: h:1, members_allowed: {dns_suffixes: [internal]}}\n",
                "targets[0] (a).members_allowed.dns_suffixes[0]",
            ),
            (
                "targets:\n  - {name: a, kind: redis, address: h:1, members_allowed: {hosts: ['169.254.169.254']}}\n",
                "never contacted",
            ),
            ("targets:\n  - {name: a, kind: redis, address: h:1, members_allowed: {ips: []}}\n", "unknown field `ips`"),
        ];
        for (yaml, needle) in cases {
            let err = parse_file(yaml, path, &env).expect_err(yaml).to_string();
            assert!(err.contains(needle), "{yaml:?} gave {err:?}, wanted {needle:?}");
        }
    }

    #[test]
    fn members_allowed_parses_for_both_kinds_and_defaults_to_empty() {
        let env = MapEnv(HashMap::new());
        let yaml = "targets:\n  - {name: r, kind: redis, address: h:1, members_allowed: {hosts: [A.internal], cidrs: ['10.0.0.0/8'], dns_suffixes: [.redis.internal]}}\n  - {name: m, kind: mongodb, address: 'mongodb://h:1', members_allowed: {hosts: ['::1']}}\n  - {name: d, kind: redis, address: h:2}\n";
        let targets = parse_file(yaml, Path::new("c.yml"), &env).expect("parses");
        let TargetSpec::Redis(r) = &targets[0].spec else { panic!("expected a Redis target") };
        assert_eq!(r.members_allowed.hosts, vec!["a.internal".to_string()]);
        assert_eq!(r.members_allowed.cidrs.len(), 1);
        assert_eq!(r.members_allowed.dns_suffixes, vec!["redis.internal".to_string()]);
        let TargetSpec::Mongodb(m) = &targets[1].spec else { panic!("expected a MongoDB target") };
        assert_eq!(m.members_allowed.hosts, vec!["::1".to_string()]);
        let TargetSpec::Redis(d) = &targets[2].spec else { panic!("expected a Redis target") };
        assert!(d.members_allowed.is_empty());
    }

    #[test]
    fn duplicate_names_and_two_defaults_are_rejected() {
        let env = MapEnv(HashMap::new());
        let yaml = "targets:\n  - {name: a, kind: redis, address: h:1, default: true}\n  - {name: b, kind: redis, address: h:2, default: true}\n";
        let targets = parse_file(yaml, Path::new("c.yml"), &env).expect("parses");
        assert!(validate_targets(&targets).expect_err("two defaults").to_string().contains("second default"));
        let yaml = "targets:\n  - {name: a, kind: redis, address: h:1}\n  - {name: a, kind: redis, address: h:2}\n";
        let targets = parse_file(yaml, Path::new("c.yml"), &env).expect("parses");
        assert!(validate_targets(&targets).expect_err("dup").to_string().contains("used twice"));
    }

    #[test]
    fn mongodb_targets_from_flags_and_file() {
        let env = MapEnv([("MONGODB_PASSWORD", "mongo-secret"), ("APP_MONGO_PW", "file-secret")].into());
        let config = Config::from_cli(
            &cli(&["--mongodb.uri", "mongodb://db1:27017/?tls=true", "--mongodb.user", "exporter"]),
            &env,
        )
        .expect("valid");
        let TargetSpec::Mongodb(m) = &config.targets[0].spec else { panic!("expected a MongoDB target") };
        assert_eq!(m.display, "mongodb://db1:27017");
        assert_eq!(m.password.as_ref().map(Secret::expose), Some("mongo-secret"));
        assert!(!format!("{config:?}").contains("mongo-secret"));
        let yaml = "targets:\n  - {name: m, kind: mongodb, address: 'mongodb://h:1', password_env: APP_MONGO_PW, username: u, max_databases: 5, collectors: {profiler: false}}\n";
        let targets = parse_file(yaml, Path::new("c.yml"), &env).expect("parses");
        let TargetSpec::Mongodb(m) = &targets[0].spec else { panic!("expected a MongoDB target") };
        assert!(!m.collectors.profiler && m.collectors.dbstats);
        assert_eq!(m.limits.max_databases, 5);
        for (bad, needle) in [
            ("targets:\n  - {name: m, kind: mongodb, address: 'http://x'}\n", "not a valid MongoDB connection string"),
            (
                "targets:\n  - {name: m, kind: mongodb, address: 'mongodb://h:1', collectors: {slowlog: true}}\n",
                "collectors.slowlog: does not apply",
            ),
            (
                "targets:\n  - {name: r, kind: redis, address: 'h:1', max_databases: 3}\n",
                "max_databases: does not apply",
            ),
            ("targets:\n  - {name: m, kind: mongodb, address: 'mongodb://h:1', max_databases: 0}\n", "out of range"),
        ] {
            let err = parse_file(bad, Path::new("c.yml"), &env).expect_err(bad).to_string();
            assert!(err.contains(needle), "{bad:?} gave {err:?}");
        }
        let secret_uri = "mongodb://user:uri-secret@h:1/?authSource=admin&bogus==";
        let err = validate_mongodb_uri("mongodb://user:uri-secret@", "f").map(|_| ()).err().map(|e| e.to_string());
        assert!(err.is_none_or(|e| !e.contains("uri-secret")));
        let display = validate_mongodb_uri(secret_uri, "f").unwrap_or_default();
        assert!(!display.contains("uri-secret"), "{display}");
    }

    /// A private scratch directory for secret files, removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("tenderly-config-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reread_secrets_sees_a_new_password_file_and_refuses_an_empty_one_without_echoing_it() {
        let scratch = Scratch::new("reread-redis");
        let file = scratch.0.join("pw");
        std::fs::write(&file, "rotate-old-secret\n").expect("write");
        let yaml = format!(
            "targets:\n  - {{name: r, kind: redis, address: h:1, password_file: {}}}\n  - {{name: plain, kind: redis, address: 'redis://:inline@h:2'}}\n",
            file.display()
        );
        let env = MapEnv(HashMap::new());
        let targets = parse_file(&yaml, Path::new("c.yml"), &env).expect("parses");
        assert_eq!(targets[0].reread_secrets(&env).expect("readable"), None, "unchanged file: no new target");
        assert_eq!(targets[1].reread_secrets(&env).expect("no sources"), None, "an inline secret has no source");
        std::fs::write(&file, "rotate-new-secret\n").expect("write");
        let next = targets[0].reread_secrets(&env).expect("readable").expect("changed");
        let TargetSpec::Redis(r) = &next.spec else { panic!("expected a Redis target") };
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("rotate-new-secret"));
        assert_eq!((next.name.as_str(), next.display_address()), ("r", "redis://h:1"), "only the secret changes");
        for bad in ["\n", ""] {
            std::fs::write(&file, bad).expect("write");
            let e = targets[0].reread_secrets(&env).expect_err("empty file").to_string();
            assert!(e.contains("password_file") && e.contains("is empty"), "{e}");
        }
        std::fs::remove_file(&file).expect("remove");
        let e = targets[0].reread_secrets(&env).expect_err("missing file").to_string();
        assert!(e.contains("cannot read") && !e.contains("rotate-"), "{e}");
    }

    #[test]
    fn reread_secrets_covers_mongodb_uri_files_and_environment_variables() {
        let scratch = Scratch::new("reread-mongo");
        let uri_file = scratch.0.join("uri");
        std::fs::write(&uri_file, "mongodb://u:uri-old-secret@db1:27017/?authSource=admin\n").expect("write");
        let env = MapEnv([("MONGODB_PASSWORD", "env-secret")].into());
        let path = uri_file.display().to_string();
        let config =
            Config::from_cli(&cli(&["--mongodb.uri-file", &path, "--mongodb.user", "u"]), &env).expect("valid");
        let target = &config.targets[0];
        assert!(target.secrets.uri.is_some() && target.secrets.password.is_some());
        assert_eq!(target.secrets.files().count(), 1, "only the URI file is polled; the variable is not a file");
        assert_eq!(target.reread_secrets(&env).expect("readable"), None);
        std::fs::write(&uri_file, "mongodb://u:uri-new-secret@db2:27017/\n").expect("write");
        let next = target.reread_secrets(&env).expect("readable").expect("changed");
        let TargetSpec::Mongodb(m) = &next.spec else { panic!("expected a MongoDB target") };
        assert_eq!(m.uri.expose(), "mongodb://u:uri-new-secret@db2:27017/");
        assert_eq!(m.display, "mongodb://db2:27017", "the credential-free address follows the file");
        std::fs::write(&uri_file, "http://u:uri-bad-secret@x\n").expect("write");
        let e = target.reread_secrets(&env).expect_err("not a connection string").to_string();
        assert!(e.contains("--mongodb.uri-file") && !e.contains("uri-bad-secret"), "{e}");
        // A variable that disappeared is an error, not "no password".
        let empty = MapEnv(HashMap::new());
        std::fs::write(&uri_file, "mongodb://u:uri-old-secret@db1:27017/?authSource=admin\n").expect("write");
        let e = target.reread_secrets(&empty).expect_err("unset variable").to_string();
        assert!(e.contains("MONGODB_PASSWORD is not set"), "{e}");
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"), "a bare number is ambiguous");
        assert!(parse_duration("-1s").is_err() && parse_duration("abc").is_err() && parse_duration("NaN").is_err());
        assert!(parse_duration("1d").is_ok() && parse_duration("2d").is_err(), "configuration durations stop at 24h");
    }

    #[test]
    fn listen_address_and_path_are_checked() {
        assert_eq!(normalize_listen_address(":9879").expect("ok"), "0.0.0.0:9879");
        assert!(normalize_listen_address("nope").is_err());
        assert!(validate_telemetry_path("/probe").is_err() && validate_telemetry_path("metrics").is_err());
    }
}
