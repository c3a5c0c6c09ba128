//! Redis key families: the DBA guide's `KEYS tenderly:*` / `redis-cli --bigkeys`
//! questions answered continuously, without ever blocking the server.
//!
//! One incremental `SCAN` pass walks the keyspace and classifies every key by
//! configured prefix (longest prefix wins; keys under the namespace with no
//! known prefix are `other`, keys outside it `non_tenderly`). Each scrape calls
//! [`KeyScanner::advance`], which moves the pass forward by a bounded step (a
//! time budget and a key cap) and keeps the cursor for the next scrape, so the
//! scrape costs the same whatever the keyspace size. Metrics always describe
//! the **last complete pass**; a pass in progress only shows as progress.
//!
//! Passes are paced: the next one starts no sooner than `min_pass_interval`
//! (default 10m) after the last one **started**, so a small keyspace is not
//! walked again on every scrape. Between passes `advance` sends nothing at all
//! and the last pass's figures are served with their age
//! (`..._last_complete_timestamp_seconds`); counts are at most the interval
//! plus one pass old.
//!
//! Per round trip the scanner pipelines `PTTL` (every key: `keys_without_ttl`
//! is exact) and sampled `MEMORY USAGE` for the keys of the previous `SCAN`
//! reply together with the next `SCAN`, so a step of N round trips reads N
//! `SCAN` pages. On a cluster (`redis_mode:cluster`) every master that owns
//! slots is found with `CLUSTER NODES` at the start of each pass, scanned in
//! turn, and the families are summed. `CLUSTER NODES` is only what the node
//! says: a master is connected to (with the target's credentials) only if the
//! target's trust policy allows it (the address's host, `replica_address`,
//! `members_allowed`; never link-local or metadata addresses, see
//! [`crate::trust`]). Others are skipped, counted
//! ([`KeyScanner::nodes_refused`]) and logged once each; their keys are missing
//! from the sums. A configured `replica_address` is
//! scanned instead of the target so the primary does no scan work.
//!
//! Exactness: `SCAN` returns every key that exists for the whole pass at least
//! once; a key may be returned twice if the hash table is resized during the
//! pass, and keys created or deleted during the pass may or may not be counted.
//! A key deleted between its `SCAN` page and its `PTTL` (reply -2) is not
//! counted. On a quiet keyspace the counts are exact.
//!
//! Refusals are learnt once and never re-sent (each refusal is an error reply
//! that shows in the server's `errorstat_*`): `SCAN`, `INFO` or `CLUSTER NODES`
//! refused disables the scanner (`tenderly_redis_key_scan_permitted 0`);
//! `PTTL` / `MEMORY USAGE` refused as a command drops TTL / memory metrics;
//! refused for a key (ACL key patterns) drops them for that key's family only.
//! Key names are held in memory for one round trip and never logged or
//! exported.

use crate::collectors::redis::client::{self, RedisError};
use std::collections::BTreeSet;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::Value;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::{timeout_at, Instant};

use crate::collectors::redis::load::CommandLoad;
use crate::collectors::redis::RedisOptions;
use crate::duration::parse as parse_duration;
use crate::metrics::{BaseUnit, Desc, Exposition, Value as MetricValue};
use crate::trust::MemberPolicy;

/// The `collector` label of the key scan's runs.
pub const COLLECTOR: &str = "tenderly_keys";

/// Family label for keys under the namespace that match no configured prefix.
pub const OTHER_FAMILY: &str = "other";
/// Family label for keys outside the namespace.
pub const NON_TENDERLY_FAMILY: &str = "non_tenderly";

/// Upper bounds (seconds) of the TTL histogram; the last bucket is `+Inf`.
pub const TTL_BUCKETS: [f64; 7] = [60.0, 300.0, 900.0, 3600.0, 21_600.0, 86_400.0, 604_800.0];

/// Most families a config may declare (bounds the label set).
const MAX_FAMILIES: usize = 32;
/// Default least time between the starts of two passes: counts are at most this
/// plus one pass old, and a small keyspace is not walked again on every scrape.
pub const DEFAULT_MIN_PASS_INTERVAL: &str = "10m";
/// With passes at least this far apart, the scan closes its connections
/// between passes (at 1,000 targets idle scan connections held about 80 MiB).
pub const CLOSE_IDLE_CONNECTIONS_AFTER: Duration = Duration::from_secs(60);
/// Longest `min_pass_interval` accepted (a day: older counts serve no alert).
const MAX_MIN_PASS_INTERVAL: Duration = Duration::from_secs(86_400);
/// Longest pause between reconnect attempts after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub const KEYS: Desc = Desc::gauge(
    "tenderly_redis_keys",
    "Keys per key family in the last complete SCAN pass (summed over cluster masters).",
)
.labels(&["family"]);
pub const KEYS_WITHOUT_TTL: Desc = Desc::gauge(
    "tenderly_redis_keys_without_ttl",
    "Keys per key family without an expiry in the last complete SCAN pass; sessions, JWTs and OTPs must expire.",
)
.labels(&["family"]);
pub const KEY_FAMILY_TTL_REQUIRED: Desc = Desc::gauge(
    "tenderly_redis_key_family_ttl_required",
    "Whether the key family's TTL policy requires every key to expire (1) or not (0): key_families.families[].requires_ttl, other_requires_ttl; keys outside the namespace 0.",
)
.labels(&["family"]);
pub const KEY_TTL: Desc = Desc::histogram(
    "tenderly_redis_key_ttl_seconds",
    "Remaining time to live of sampled keys with an expiry, per key family, in the last complete SCAN pass.",
)
.unit(BaseUnit::Seconds)
.labels(&["family"]);
pub const KEY_MEMORY: Desc = Desc::gauge(
    "tenderly_redis_key_memory_bytes",
    "Estimated memory per key family: average MEMORY USAGE of sampled keys times the family's key count.",
)
.unit(BaseUnit::Bytes)
.labels(&["family"]);
pub const KEY_LARGEST: Desc = Desc::gauge(
    "tenderly_redis_key_family_largest_key_bytes",
    "Largest MEMORY USAGE of one sampled key per key family in the last complete SCAN pass (the key's name is never exported).",
)
.unit(BaseUnit::Bytes)
.labels(&["family"]);
pub const SCAN_LAST_COMPLETE: Desc = Desc::gauge(
    "tenderly_redis_key_scan_last_complete_timestamp_seconds",
    "Unix time at which the last complete key-family SCAN pass finished.",
)
.unit(BaseUnit::Seconds);
pub const SCAN_DURATION: Desc = Desc::gauge(
    "tenderly_redis_key_scan_duration_seconds",
    "Wall-clock time from start to end of the last complete key-family SCAN pass, across scrapes.",
)
.unit(BaseUnit::Seconds);
pub const SCAN_PASSES: Desc = Desc::counter(
    "tenderly_redis_key_scan_passes_total",
    "Key-family SCAN passes completed since the exporter started.",
);
pub const SCAN_PROGRESS: Desc = Desc::gauge(
    "tenderly_redis_key_scan_progress_keys",
    "Keys returned by SCAN so far in the key-family pass in progress.",
);
pub const SCAN_NODES: Desc = Desc::gauge(
    "tenderly_redis_key_scan_nodes",
    "Redis servers covered by the last complete key-family pass (cluster masters, or 1).",
);
pub const SCAN_MIN_INTERVAL: Desc = Desc::gauge(
    "tenderly_redis_key_scan_min_interval_seconds",
    "Configured least time between the starts of two key-family SCAN passes (key_families.min_pass_interval); between passes the scan sends nothing.",
)
.unit(BaseUnit::Seconds);
pub const SCAN_NEXT_START: Desc = Desc::gauge(
    "tenderly_redis_key_scan_next_start_timestamp_seconds",
    "Unix time from which the next key-family SCAN pass may start (the last pass start plus min_pass_interval); absent before the first pass starts.",
)
.unit(BaseUnit::Seconds);
pub const SCAN_PERMITTED: Desc = Desc::gauge(
    "tenderly_redis_key_scan_permitted",
    "Whether the server lets the exporter run the key-family scan (1) or refused SCAN, INFO or CLUSTER NODES (0).",
);

/// One configured key family.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFamily {
    /// Label value, `[a-z0-9_]{1,64}`.
    pub name: String,
    /// Key prefix, e.g. `tenderly:session:`.
    pub prefix: String,
    /// Whether every key of the family must have a TTL (the DBA guide: "TTL
    /// configured per data type, default 3600 seconds", so by default yes).
    /// Exported as `tenderly_redis_key_family_ttl_required`; the
    /// `TenderlyKeysWithoutTtl` alert fires only where this is 1.
    #[serde(default = "ttl_required_by_default")]
    pub requires_ttl: bool,
}

fn ttl_required_by_default() -> bool {
    true
}

impl KeyFamily {
    fn new(name: &str, prefix: &str) -> Self {
        KeyFamily { name: name.to_string(), prefix: prefix.to_string(), requires_ttl: true }
    }
}

/// `key_families:` settings of a Redis target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyFamiliesConfig {
    /// Keys under this prefix that match no family count as `other`; the rest as `non_tenderly`.
    pub namespace: String,
    pub families: Vec<KeyFamily>,
    /// `COUNT` hint of each `SCAN` call.
    pub scan_count: u32,
    /// Time one scrape may spend advancing the pass, e.g. `50ms`.
    pub budget: String,
    /// Most keys one scrape may read.
    pub max_keys_per_scrape: u64,
    /// Put 1 in N keys with a TTL into the TTL histogram (PTTL is read for every key anyway).
    pub ttl_sample_every: u32,
    /// Run `MEMORY USAGE` on 1 in N keys of each family (the first key of a family always).
    pub memory_sample_every: u32,
    /// `MEMORY USAGE ... SAMPLES n`: nested values sampled per aggregate key (0 = all: exact but O(n)).
    pub memory_samples: u32,
    /// `host:port` of a replica to scan instead of the target (same credentials and TLS).
    pub replica_address: Option<String>,
    /// Least time between the starts of two passes, e.g. `10m` (`0s`: start the next pass at once).
    pub min_pass_interval: String,
    /// Whether keys under the namespace that match no family (`other`) must expire.
    pub other_requires_ttl: bool,
}

impl Default for KeyFamiliesConfig {
    fn default() -> Self {
        KeyFamiliesConfig {
            namespace: "tenderly:".to_string(),
            families: vec![
                KeyFamily::new("session", "tenderly:session:"),
                KeyFamily::new("jwt", "tenderly:jwt:"),
                KeyFamily::new("otp", "tenderly:otp:"),
                KeyFamily::new("ratelimit", "tenderly:ratelimit:"),
                KeyFamily::new("user", "tenderly:user:"),
            ],
            scan_count: 1000,
            budget: "50ms".to_string(),
            max_keys_per_scrape: 200_000,
            ttl_sample_every: 1,
            memory_sample_every: 100,
            memory_samples: 5,
            replica_address: None,
            min_pass_interval: DEFAULT_MIN_PASS_INTERVAL.to_string(),
            other_requires_ttl: true,
        }
    }
}

impl KeyFamiliesConfig {
    /// Checks every field; the message names the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.families.len() > MAX_FAMILIES {
            return Err(format!("families: {} families, at most {MAX_FAMILIES} are allowed", self.families.len()));
        }
        let mut names = BTreeSet::new();
        let mut prefixes = BTreeSet::new();
        for (i, f) in self.families.iter().enumerate() {
            let valid = !f.name.is_empty()
                && f.name.len() <= 64
                && f.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(format!("families[{i}].name: '{}' must match [a-z0-9_]{{1,64}}", f.name));
            }
            if f.name == OTHER_FAMILY || f.name == NON_TENDERLY_FAMILY {
                return Err(format!("families[{i}].name: '{}' is reserved; choose another name", f.name));
            }
            if !names.insert(f.name.as_str()) {
                return Err(format!("families[{i}].name: '{}' appears twice; family names must be unique", f.name));
            }
            if f.prefix.is_empty() || f.prefix.len() > 256 {
                return Err(format!("families[{i}].prefix: must be 1 to 256 bytes, e.g. tenderly:session:"));
            }
            if !prefixes.insert(f.prefix.as_str()) {
                return Err(format!("families[{i}].prefix: '{}' appears twice", f.prefix));
            }
        }
        if self.namespace.len() > 256 {
            return Err("namespace: at most 256 bytes, e.g. tenderly:".to_string());
        }
        if !(1..=100_000).contains(&self.scan_count) {
            return Err(format!("scan_count: {} is out of range 1..=100000 (default 1000)", self.scan_count));
        }
        let budget = parse_duration(&self.budget).map_err(|e| format!("budget: {e}; use e.g. budget: 50ms"))?;
        if budget.is_zero() || budget > Duration::from_secs(10) {
            return Err(format!("budget: '{}' must be above 0 and at most 10s (default 50ms)", self.budget));
        }
        if self.max_keys_per_scrape == 0 {
            return Err("max_keys_per_scrape: must be at least 1 (default 200000)".to_string());
        }
        for (field, n) in
            [("ttl_sample_every", self.ttl_sample_every), ("memory_sample_every", self.memory_sample_every)]
        {
            if !(1..=1_000_000).contains(&n) {
                return Err(format!("{field}: {n} is out of range 1..=1000000 (1 = every key)"));
            }
        }
        if self.memory_samples > 10_000 {
            return Err(format!("memory_samples: {} is out of range 0..=10000 (default 5)", self.memory_samples));
        }
        let interval = parse_duration(&self.min_pass_interval)
            .map_err(|e| format!("min_pass_interval: {e}; use e.g. min_pass_interval: 10m"))?;
        if interval > MAX_MIN_PASS_INTERVAL {
            return Err(format!(
                "min_pass_interval: '{}' is above the maximum of 24h (default {DEFAULT_MIN_PASS_INTERVAL})",
                self.min_pass_interval
            ));
        }
        if let Some(addr) = &self.replica_address {
            parse_host_port(addr).ok_or_else(|| {
                format!(
                    "replica_address: '{addr}' is not host:port (no scheme, no credentials), e.g. redis-replica:6379"
                )
            })?;
        }
        Ok(())
    }

    fn budget(&self) -> Duration {
        parse_duration(&self.budget).unwrap_or(Duration::from_millis(50))
    }

    fn min_pass_interval(&self) -> Duration {
        parse_duration(&self.min_pass_interval).unwrap_or(Duration::from_secs(600))
    }
}

/// `host:port` (IPv6 in brackets) with a non-zero port.
pub(crate) fn parse_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    ok.then(|| (host.to_string(), port))
}

/// Why a step of the scan failed: a connection or reply problem (the Redis
/// collector's own error, shared), or one of the scan's. No key names, no
/// server-echoed text.
#[derive(Debug, thiserror::Error)]
pub enum KeyScanError {
    #[error("invalid key_families config: {0}")]
    Config(String),
    #[error("{0} refused by the server; the key scan is disabled (grant it to the exporter's ACL user)")]
    Refused(&'static str),
    #[error("no cluster master is allowed by the target's trust policy ({0} refused); see members_allowed")]
    NoAllowedMaster(usize),
    #[error(transparent)]
    Redis(#[from] RedisError),
}

// ---- connections -------------------------------------------------------------

/// Connections use the Redis collector's code (same auth, TLS, handshake rules);
/// the handshake's commands count in `load`.
pub(crate) async fn open_connection(
    spec: &RedisOptions,
    addr: Option<&(String, u16)>,
    credentials: bool,
    deadline: Instant,
    load: &CommandLoad,
) -> Result<MultiplexedConnection, KeyScanError> {
    let sent_at = Instant::now();
    let conn = client::open_connection(spec, addr, credentials, deadline).await?;
    load.record(client::handshake_commands(spec, addr, credentials), sent_at.elapsed());
    Ok(conn)
}

pub(crate) use client::bytes_of;

// ---- classification ----------------------------------------------------------

/// Maps a key to its family index: configured families in config order, then
/// `other`, then `non_tenderly`.
#[derive(Debug, Clone)]
struct Classifier {
    /// (prefix, family index), longest prefix first.
    prefixes: Vec<(Vec<u8>, usize)>,
    namespace: Vec<u8>,
    names: Vec<String>,
}

impl Classifier {
    fn new(config: &KeyFamiliesConfig) -> Self {
        let mut prefixes: Vec<(Vec<u8>, usize)> =
            config.families.iter().enumerate().map(|(i, f)| (f.prefix.as_bytes().to_vec(), i)).collect();
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        let mut names: Vec<String> = config.families.iter().map(|f| f.name.clone()).collect();
        names.push(OTHER_FAMILY.to_string());
        names.push(NON_TENDERLY_FAMILY.to_string());
        Classifier { prefixes, namespace: config.namespace.as_bytes().to_vec(), names }
    }

    fn other(&self) -> usize {
        self.names.len() - 2
    }

    fn classify(&self, key: &[u8]) -> usize {
        if let Some((_, i)) = self.prefixes.iter().find(|(p, _)| key.starts_with(p)) {
            return *i;
        }
        if !self.namespace.is_empty() && key.starts_with(&self.namespace) {
            self.other()
        } else {
            self.names.len() - 1
        }
    }
}

// ---- pass state ----------------------------------------------------------------

/// Totals of one family over one pass.
#[derive(Debug, Clone, Default, PartialEq)]
struct FamilyTotals {
    keys: u64,
    without_ttl: u64,
    /// Keys whose PTTL was not read (refused): `without_ttl` is then incomplete.
    ttl_unknown: u64,
    /// Per-bucket counts, `TTL_BUCKETS` then `+Inf`.
    ttl_buckets: [u64; TTL_BUCKETS.len() + 1],
    ttl_sum: f64,
    ttl_count: u64,
    memory_sum: u64,
    memory_samples: u64,
    /// Largest sampled MEMORY USAGE of one key (only the size is kept, never the key).
    memory_largest: u64,
    /// Keys returned by SCAN (drives sampling; includes keys gone before PTTL).
    scanned: u64,
}

impl FamilyTotals {
    fn observe_ttl(&mut self, seconds: f64) {
        let bucket = TTL_BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(TTL_BUCKETS.len());
        self.ttl_buckets[bucket] += 1;
        self.ttl_sum += seconds;
        self.ttl_count += 1;
    }
}

/// A finished pass, as exported.
#[derive(Debug, Clone)]
struct PassResult {
    families: Vec<FamilyTotals>,
    completed_unix: f64,
    duration: f64,
    nodes: usize,
    ttl_refused: bool,
    memory_refused: bool,
}

#[derive(Debug, Default)]
struct Published {
    last: Option<PassResult>,
    passes: u64,
    progress_keys: u64,
    permitted: bool,
    /// Cluster masters skipped by the last pass start because the policy does not allow them.
    refused_nodes: usize,
    /// Unix time from which the next pass may start.
    next_start_unix: Option<f64>,
}

/// A key read by SCAN whose PTTL / MEMORY USAGE goes out with the next round trip.
struct PendingKey {
    key: Vec<u8>,
    family: usize,
    ttl: bool,
    sample_ttl: bool,
    memory: bool,
}

struct Node {
    addr: Option<(String, u16)>,
    conn: Option<MultiplexedConnection>,
    cursor: u64,
    scan_done: bool,
    pending: Vec<PendingKey>,
}

impl Node {
    fn new(addr: Option<(String, u16)>, conn: Option<MultiplexedConnection>) -> Self {
        Node { addr, conn, cursor: 0, scan_done: false, pending: Vec::new() }
    }
}

struct Pass {
    nodes: Vec<Node>,
    current: usize,
    cluster: bool,
    totals: Vec<FamilyTotals>,
    started: Instant,
    keys_scanned: u64,
}

#[derive(Default)]
struct ScanState {
    pass: Option<Pass>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Connection to the seed (target or replica), kept between passes.
    seed: Option<MultiplexedConnection>,
    /// Nodes of the last finished pass, whose connections the next pass reuses.
    previous_nodes: Vec<Node>,
    /// When the last pass started: the next starts `min_pass_interval` later at the earliest.
    last_start: Option<Instant>,
}

/// What one reply of a round trip answers.
enum Expect {
    Ttl { family: usize, sample: bool },
    Memory { family: usize },
    Scan,
}

/// Refusals learnt from the server, never re-sent.
#[derive(Debug, Default, Clone)]
struct Refusals {
    commands: BTreeSet<&'static str>,
    /// Families whose keys the ACL user may not read (PTTL / MEMORY USAGE key denial).
    ttl_families: BTreeSet<usize>,
    memory_families: BTreeSet<usize>,
    /// (command, family) pairs that worked at least once.
    confirmed: BTreeSet<(&'static str, usize)>,
}

impl Refusals {
    fn everything_refused() -> Self {
        Refusals { commands: ["PTTL", "MEMORY USAGE"].into_iter().collect(), ..Refusals::default() }
    }

    /// Whether to send `command` for a key of `family` in this round trip. Until the
    /// command has worked once, only one key per round trip probes it; until it has
    /// worked on a family, one key per family. So a refusal costs the server one
    /// error reply per command (or per family, for ACL key patterns), not one per key.
    fn plan(&self, command: &'static str, family: usize, probes: &mut Probes) -> Send {
        let denied = if command == "PTTL" { &self.ttl_families } else { &self.memory_families };
        if self.commands.contains(command) || denied.contains(&family) {
            return Send::Never;
        }
        if !self.confirmed.iter().any(|(c, _)| *c == command) {
            return if probes.commands.insert(command) { Send::Now } else { Send::Later };
        }
        if !self.confirmed.contains(&(command, family)) {
            return if probes.families.insert((command, family)) { Send::Now } else { Send::Later };
        }
        Send::Now
    }
}

/// Probes already planned in the round trip being built.
#[derive(Default)]
struct Probes {
    commands: BTreeSet<&'static str>,
    families: BTreeSet<(&'static str, usize)>,
}

/// What to do with one command for one pending key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Send {
    Now,
    /// Wait for a probe of the command to succeed first.
    Later,
    /// Refused: never.
    Never,
    /// Nothing to send.
    Done,
}

/// The incremental key-family scanner of one Redis target.
pub struct KeyScanner {
    target: String,
    /// How to reach the target (and, with another address, its replica or cluster masters).
    spec: RedisOptions,
    /// Which advertised cluster masters may get the credentials.
    policy: MemberPolicy,
    config: KeyFamiliesConfig,
    classifier: Classifier,
    budget: Duration,
    min_pass_interval: Duration,
    state: Mutex<ScanState>,
    published: StdMutex<Published>,
    refusals: StdMutex<Refusals>,
    /// Cluster masters already logged as not allowed (each is logged once).
    logged_refused: StdMutex<BTreeSet<String>>,
    /// Commands the scan sent (every node, handshakes included) and their round-trip time.
    load: CommandLoad,
}

impl std::fmt::Debug for KeyScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyScanner").field("target", &self.target).field("spec", &self.spec).finish()
    }
}

impl KeyScanner {
    /// A scanner for `target`, reached with `spec`, following only the cluster
    /// masters `policy` allows. `config` should have passed
    /// [`KeyFamiliesConfig::validate`]; an invalid config makes every
    /// [`advance`](Self::advance) fail with the reason.
    pub fn new(target: &str, spec: RedisOptions, policy: MemberPolicy, config: KeyFamiliesConfig) -> Self {
        let classifier = Classifier::new(&config);
        let budget = config.budget();
        let min_pass_interval = config.min_pass_interval();
        KeyScanner {
            target: target.to_string(),
            spec,
            policy,
            config,
            classifier,
            budget,
            min_pass_interval,
            state: Mutex::new(ScanState::default()),
            published: StdMutex::new(Published { permitted: true, ..Published::default() }),
            refusals: StdMutex::new(Refusals::default()),
            logged_refused: StdMutex::new(BTreeSet::new()),
            load: CommandLoad::new(),
        }
    }

    /// Commands the scan has sent (to every node it scanned) and the time it waited for replies.
    pub fn load(&self) -> &CommandLoad {
        &self.load
    }

    /// Every descriptor this module exports.
    pub fn descriptors() -> Vec<&'static Desc> {
        vec![
            &KEYS,
            &KEYS_WITHOUT_TTL,
            &KEY_FAMILY_TTL_REQUIRED,
            &KEY_TTL,
            &KEY_MEMORY,
            &KEY_LARGEST,
            &SCAN_LAST_COMPLETE,
            &SCAN_DURATION,
            &SCAN_PASSES,
            &SCAN_PROGRESS,
            &SCAN_NODES,
            &SCAN_PERMITTED,
            &SCAN_MIN_INTERVAL,
            &SCAN_NEXT_START,
        ]
    }

    /// Moves the pass forward by one bounded step: round trips until the time
    /// budget, the key cap or `deadline` (whichever first) is reached; a round
    /// trip is only started if the previous one would still fit in the budget
    /// (the first always runs). A concurrent call returns at once. When the last
    /// node's cursor returns to 0 and its keys are read, the pass is published;
    /// the next pass starts with the first call `min_pass_interval` after this
    /// one started. Calls in between send nothing to any server.
    pub async fn advance(&self, deadline: Instant) -> Result<(), KeyScanError> {
        self.config.validate().map_err(KeyScanError::Config)?;
        // A scrape already advancing the pass: nothing to add (single step at a time).
        let Ok(mut state) = self.state.try_lock() else { return Ok(()) };
        if !self.permitted() {
            return Ok(());
        }
        let start = Instant::now();
        let step_end = (start + self.budget).min(deadline);
        if state.pass.is_none() {
            if state.last_start.is_some_and(|last| start < last + self.min_pass_interval) {
                return Ok(());
            }
            if let Some(at) = state.retry_at {
                if at > start {
                    return Err(KeyScanError::Redis(RedisError::Backoff {
                        failures: state.failures,
                        wait_ms: (at - start).as_millis(),
                    }));
                }
            }
            match self.start_pass(&mut state, deadline).await {
                Ok(pass) => {
                    state.last_start = Some(pass.started);
                    let wait = self.min_pass_interval.saturating_sub(pass.started.elapsed()).as_secs_f64();
                    if let Ok(mut p) = self.published.lock() {
                        p.next_start_unix = Some(unix_now() + wait);
                    }
                    state.pass = Some(pass);
                }
                Err(e) => return Err(self.failed(&mut state, e)),
            }
        }
        let result = match state.pass.as_mut() {
            Some(pass) => self.step(pass, step_end, deadline).await,
            None => Ok(false),
        };
        match result {
            Ok(complete) => {
                if complete {
                    self.publish_complete(&mut state);
                }
                state.failures = 0;
                state.retry_at = None;
                Ok(())
            }
            Err(e) => Err(self.failed(&mut state, e)),
        }
    }

    /// Records a failure: connection errors back off; a cluster pass restarts
    /// from discovery (the topology may have changed), a standalone pass keeps
    /// its cursor (SCAN cursors stay valid across connections).
    fn failed(&self, state: &mut ScanState, e: KeyScanError) -> KeyScanError {
        match &e {
            KeyScanError::Refused(_) | KeyScanError::Config(_) | KeyScanError::Redis(RedisError::Timeout(_)) => {}
            _ => {
                state.failures = state.failures.saturating_add(1);
                let backoff = Duration::from_millis(500)
                    .saturating_mul(1u32 << state.failures.saturating_sub(1).min(5))
                    .min(MAX_BACKOFF);
                state.retry_at = (state.failures > 1).then(|| Instant::now() + backoff);
                state.seed = None;
                if let Some(pass) = &mut state.pass {
                    if pass.cluster {
                        // The pass is abandoned, not done: the next may start without waiting
                        // for the interval (reconnect backoff still applies).
                        state.pass = None;
                        state.last_start = None;
                    } else {
                        for node in &mut pass.nodes {
                            node.conn = None;
                        }
                    }
                }
            }
        }
        e
    }

    fn permitted(&self) -> bool {
        self.published.lock().map(|p| p.permitted).unwrap_or(true)
    }

    /// Disables the scanner after a refusal of a command it cannot do without.
    fn disable(&self, command: &'static str, code: &str) -> KeyScanError {
        if let Ok(mut p) = self.published.lock() {
            p.permitted = false;
            p.progress_keys = 0;
        }
        tracing::warn!(
            target_name = %self.target,
            command,
            code,
            "redis refused a command the key-family scan needs; the scan is disabled for the life of the process \
             (grant +scan +pttl +memory|usage +info +cluster|nodes and %R~* to the exporter's ACL user)"
        );
        KeyScanError::Refused(command)
    }

    fn is_refused(&self, command: &'static str) -> bool {
        self.refusals.lock().map(|r| r.commands.contains(command)).unwrap_or(false)
    }

    /// Learns a refusal of PTTL / MEMORY USAGE, for the command or one family's keys.
    fn learn_refusal(&self, command: &'static str, family: usize, error: &redis::ServerError) {
        let key_denial = error.code() == "NOPERM" && error.details().is_some_and(|d| d.contains("key"));
        let Ok(mut r) = self.refusals.lock() else { return };
        let newly = if key_denial {
            let set = if command == "PTTL" { &mut r.ttl_families } else { &mut r.memory_families };
            set.insert(family)
        } else {
            r.commands.insert(command)
        };
        drop(r);
        if newly {
            let family_name = self.classifier.names.get(family).map(String::as_str).unwrap_or("?");
            if key_denial {
                tracing::warn!(
                    target_name = %self.target,
                    command,
                    family = family_name,
                    "redis refused reading keys of this family (ACL key patterns); its TTL/memory metrics are dropped \
                     (grant %R~* to the exporter's ACL user)"
                );
            } else {
                tracing::warn!(
                    target_name = %self.target,
                    command,
                    code = error.code(),
                    "redis refused a command of the key-family scan; it will not be sent again by this process"
                );
            }
        }
    }

    fn refusal_snapshot(&self) -> Refusals {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_else(|_| Refusals::everything_refused())
    }

    /// Connects to the seed, learns whether it is a cluster and lists the nodes to scan.
    async fn start_pass(&self, state: &mut ScanState, deadline: Instant) -> Result<Pass, KeyScanError> {
        let replica = self.config.replica_address.as_deref().and_then(parse_host_port);
        let mut seed = match state.seed.take() {
            Some(conn) => conn,
            None => open_connection(&self.spec, replica.as_ref(), true, deadline, &self.load).await?,
        };
        let sent_at = Instant::now();
        let info: Result<Value, _> = timeout_at(deadline, redis::cmd("INFO").arg("server").query_async(&mut seed))
            .await
            .map_err(|_| KeyScanError::Redis(RedisError::Timeout("INFO server")))?;
        self.load.record(1, sent_at.elapsed());
        let info = info.map_err(|e| self.command_error("INFO", &e))?;
        let info = bytes_of(&info).ok_or(KeyScanError::Redis(RedisError::Protocol("INFO server")))?;
        let cluster = info_field(info, "redis_mode") == Some("cluster");
        let families = self.classifier.names.len();
        let mut pass = Pass {
            nodes: Vec::new(),
            current: 0,
            cluster,
            totals: vec![FamilyTotals::default(); families],
            started: Instant::now(),
            keys_scanned: 0,
        };
        if !cluster {
            pass.nodes.push(Node::new(replica, Some(seed.clone())));
            state.seed = Some(seed);
            return Ok(pass);
        }
        if self.is_refused("CLUSTER NODES") {
            return Err(KeyScanError::Refused("CLUSTER NODES"));
        }
        let sent_at = Instant::now();
        let nodes: Result<Value, _> = timeout_at(deadline, redis::cmd("CLUSTER").arg("NODES").query_async(&mut seed))
            .await
            .map_err(|_| KeyScanError::Redis(RedisError::Timeout("CLUSTER NODES")))?;
        self.load.record(1, sent_at.elapsed());
        let nodes = nodes.map_err(|e| self.command_error("CLUSTER NODES", &e))?;
        let text = bytes_of(&nodes).ok_or(KeyScanError::Redis(RedisError::Protocol("CLUSTER NODES")))?;
        let seed_host = self.seed_host(replica.as_ref());
        let masters = cluster_masters(&String::from_utf8_lossy(text), &seed_host);
        if masters.is_empty() {
            return Err(KeyScanError::Redis(RedisError::Protocol("CLUSTER NODES (no master owns slots)")));
        }
        let masters = self.allowed_masters(masters, deadline).await;
        if masters.is_empty() {
            return Err(KeyScanError::NoAllowedMaster(self.nodes_refused()));
        }
        // Reuse the connections of the previous pass where the address is unchanged.
        let mut previous = std::mem::take(&mut state.previous_nodes);
        for addr in masters {
            let conn = previous.iter_mut().find(|n| n.addr.as_ref() == Some(&addr)).and_then(|n| n.conn.take());
            pass.nodes.push(Node::new(Some(addr), conn));
        }
        state.seed = Some(seed);
        Ok(pass)
    }

    /// The masters the target's trust policy allows. The others are never
    /// connected to; they are counted and each is logged once.
    async fn allowed_masters(&self, masters: Vec<(String, u16)>, deadline: Instant) -> Vec<(String, u16)> {
        let mut policy = self.policy.clone();
        policy.resolve_names(deadline).await;
        let policy = &policy;
        let checks = masters.into_iter().map(|(host, port)| async move {
            let verdict = policy.check(&host, port, deadline).await;
            ((host, port), verdict)
        });
        let mut allowed = Vec::new();
        let mut refused = 0;
        for (addr, verdict) in futures_util::future::join_all(checks).await {
            if verdict.allowed() {
                allowed.push(addr);
                continue;
            }
            refused += 1;
            let member = crate::trust::member_key(&addr.0, addr.1);
            let mut logged = self.logged_refused.lock().unwrap_or_else(|p| p.into_inner());
            if logged.len() < crate::collectors::redis::cluster::MAX_NODES && logged.insert(member.clone()) {
                tracing::warn!(
                    target_name = %self.target,
                    node = %member,
                    reason = verdict.as_str(),
                    "CLUSTER NODES lists a master the target's trust policy does not allow; the key scan skips it \
                     and its keys are not counted (see members_allowed in docs/security-trust-model.md)"
                );
            }
        }
        if let Ok(mut p) = self.published.lock() {
            p.refused_nodes = refused;
        }
        allowed
    }

    /// Cluster masters the last pass start skipped because the trust policy does not allow them.
    pub fn nodes_refused(&self) -> usize {
        self.published.lock().map(|p| p.refused_nodes).unwrap_or(0)
    }

    /// The host a node with an empty IP in `CLUSTER NODES` is reachable at: the seed's.
    fn seed_host(&self, replica: Option<&(String, u16)>) -> String {
        if let Some((host, _)) = replica {
            return host.clone();
        }
        self.spec.tcp_address().map_or_else(|| "127.0.0.1".to_string(), |(host, _)| host)
    }

    /// A whole-command error: refusals disable the scan, others are connection trouble.
    fn command_error(&self, command: &'static str, e: &redis::RedisError) -> KeyScanError {
        match e.code() {
            Some(code @ ("NOPERM" | "ERR")) if e.kind() != redis::ErrorKind::AuthenticationFailed => {
                if let Ok(mut r) = self.refusals.lock() {
                    r.commands.insert(command);
                }
                self.disable(command, code)
            }
            _ => client::classify_connect_error(e).into(),
        }
    }

    /// Round trips until the budget, key cap or deadline. Returns whether the pass is complete.
    async fn step(&self, pass: &mut Pass, step_end: Instant, deadline: Instant) -> Result<bool, KeyScanError> {
        let mut keys_this_step = 0u64;
        let mut last_rtt = Duration::ZERO;
        let mut first = true;
        loop {
            let now = Instant::now();
            if !first && (now + last_rtt > step_end || keys_this_step >= self.config.max_keys_per_scrape) {
                break;
            }
            first = false;
            let Some(node) = pass.nodes.get_mut(pass.current) else { break };
            if node.scan_done && node.pending.is_empty() {
                pass.current += 1;
                if pass.current >= pass.nodes.len() {
                    return Ok(true);
                }
                continue;
            }
            if node.conn.is_none() {
                node.conn = Some(open_connection(&self.spec, node.addr.as_ref(), true, deadline, &self.load).await?);
            }
            let Some(conn) = node.conn.as_mut() else {
                return Err(KeyScanError::Redis(RedisError::Protocol("connection state")));
            };

            // Plan first, apply only after the replies arrived: a timed-out round trip changes nothing.
            let refusals = self.refusal_snapshot();
            let mut probes = Probes::default();
            let plan: Vec<(Send, Send)> = node
                .pending
                .iter()
                .map(|p| {
                    let ttl = if p.ttl { refusals.plan("PTTL", p.family, &mut probes) } else { Send::Done };
                    let memory =
                        if p.memory { refusals.plan("MEMORY USAGE", p.family, &mut probes) } else { Send::Done };
                    (ttl, memory)
                })
                .collect();
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            let mut expects = Vec::with_capacity(plan.len() * 2 + 1);
            for (p, (ttl, memory)) in node.pending.iter().zip(&plan) {
                if *ttl == Send::Now {
                    pipe.cmd("PTTL").arg(&p.key);
                    expects.push(Expect::Ttl { family: p.family, sample: p.sample_ttl });
                }
                if *memory == Send::Now {
                    pipe.cmd("MEMORY").arg("USAGE").arg(&p.key);
                    if self.config.memory_samples != 5 {
                        pipe.arg("SAMPLES").arg(self.config.memory_samples);
                    }
                    expects.push(Expect::Memory { family: p.family });
                }
            }
            if !node.scan_done {
                pipe.cmd("SCAN").arg(node.cursor).arg("COUNT").arg(self.config.scan_count);
                expects.push(Expect::Scan);
            }
            let sent_at = Instant::now();
            let replies: Vec<Value> = if expects.is_empty() {
                Vec::new()
            } else {
                let replies = timeout_at(deadline, pipe.query_async(conn))
                    .await
                    .map_err(|_| KeyScanError::Redis(RedisError::Timeout("key scan round trip")))?;
                self.load.record(expects.len(), sent_at.elapsed());
                replies.map_err(|e| KeyScanError::from(client::classify_connect_error(&e)))?
            };
            last_rtt = sent_at.elapsed();
            if replies.len() != expects.len() {
                return Err(KeyScanError::Redis(RedisError::Protocol("key scan pipeline")));
            }
            // Apply the plan: keys whose PTTL will never be sent count from SCAN alone;
            // deferred work (probing an unconfirmed command) stays pending.
            let pending = std::mem::take(&mut node.pending);
            for (mut p, (ttl, memory)) in pending.into_iter().zip(plan) {
                if ttl == Send::Never {
                    let t = &mut pass.totals[p.family];
                    t.keys += 1;
                    t.ttl_unknown += 1;
                }
                p.ttl = ttl == Send::Later;
                p.memory = memory == Send::Later;
                if p.ttl || p.memory {
                    node.pending.push(p);
                }
            }
            let mut scan_reply = None;
            for (expect, reply) in expects.into_iter().zip(replies) {
                match expect {
                    Expect::Ttl { family, sample } => {
                        let t = &mut pass.totals[family];
                        match reply {
                            Value::Int(-2) => {} // gone since SCAN
                            Value::Int(-1) => {
                                t.keys += 1;
                                t.without_ttl += 1;
                                self.confirm("PTTL", family);
                            }
                            Value::Int(ms) if ms >= 0 => {
                                t.keys += 1;
                                if sample {
                                    t.observe_ttl(ms as f64 / 1000.0);
                                }
                                self.confirm("PTTL", family);
                            }
                            Value::ServerError(e) if e.code() == "NOPERM" || e.code() == "ERR" => {
                                t.keys += 1;
                                t.ttl_unknown += 1;
                                self.learn_refusal("PTTL", family, &e);
                            }
                            // MOVED/ASK during resharding, or odd replies: not counted here.
                            _ => {}
                        }
                    }
                    Expect::Memory { family } => match reply {
                        Value::Int(bytes) if bytes >= 0 => {
                            let t = &mut pass.totals[family];
                            t.memory_sum = t.memory_sum.saturating_add(bytes as u64);
                            t.memory_samples += 1;
                            t.memory_largest = t.memory_largest.max(bytes as u64);
                            self.confirm("MEMORY USAGE", family);
                        }
                        Value::ServerError(e) if e.code() == "NOPERM" || e.code() == "ERR" => {
                            self.learn_refusal("MEMORY USAGE", family, &e);
                        }
                        _ => {}
                    },
                    Expect::Scan => scan_reply = Some(reply),
                }
            }
            if let Some(reply) = scan_reply {
                let (cursor, keys) = match reply {
                    Value::ServerError(e) => {
                        if e.code() == "NOPERM" || e.code() == "ERR" {
                            if let Ok(mut r) = self.refusals.lock() {
                                r.commands.insert("SCAN");
                            }
                            return Err(self.disable("SCAN", e.code()));
                        }
                        return Err(KeyScanError::Redis(RedisError::Protocol("SCAN")));
                    }
                    other => parse_scan(other).ok_or(KeyScanError::Redis(RedisError::Protocol("SCAN")))?,
                };
                keys_this_step += keys.len() as u64;
                pass.keys_scanned += keys.len() as u64;
                for key in keys {
                    let family = self.classifier.classify(&key);
                    let t = &mut pass.totals[family];
                    let nth = t.scanned;
                    t.scanned += 1;
                    let memory = nth.is_multiple_of(u64::from(self.config.memory_sample_every));
                    let sample_ttl = nth.is_multiple_of(u64::from(self.config.ttl_sample_every));
                    node.pending.push(PendingKey { key, family, ttl: true, sample_ttl, memory });
                }
                node.cursor = cursor;
                node.scan_done = cursor == 0;
            }
        }
        if let Ok(mut p) = self.published.lock() {
            p.progress_keys = pass.keys_scanned;
        }
        Ok(false)
    }

    /// Records that `command` worked on a key of `family`.
    fn confirm(&self, command: &'static str, family: usize) {
        if let Ok(mut r) = self.refusals.lock() {
            if !r.confirmed.contains(&(command, family)) {
                r.confirmed.insert((command, family));
            }
        }
    }

    fn publish_complete(&self, state: &mut ScanState) {
        let Some(pass) = state.pass.take() else { return };
        let (ttl_refused, memory_refused) = self
            .refusals
            .lock()
            .map(|r| (r.commands.contains("PTTL"), r.commands.contains("MEMORY USAGE")))
            .unwrap_or((true, true));
        let result = PassResult {
            families: pass.totals,
            completed_unix: unix_now(),
            duration: pass.started.elapsed().as_secs_f64(),
            nodes: pass.nodes.len(),
            ttl_refused,
            memory_refused,
        };
        tracing::debug!(
            target_name = %self.target,
            keys = pass.keys_scanned,
            nodes = result.nodes,
            seconds = result.duration,
            "key-family pass complete"
        );
        if let Ok(mut p) = self.published.lock() {
            p.last = Some(result);
            p.passes += 1;
            p.progress_keys = 0;
        }
        if self.config.min_pass_interval() >= CLOSE_IDLE_CONNECTIONS_AFTER {
            // Paced: nothing is sent for minutes. Close the connections (and
            // free their buffers, sized by the largest round trip) rather than
            // hold them idle per target; the next pass reconnects once.
            state.seed = None;
            state.previous_nodes = Vec::new();
        } else {
            // Keep the node connections for the next pass (a cluster pass rediscovers and reuses them).
            state.previous_nodes = pass.nodes;
        }
    }

    /// Number of completed passes (for tests and `doctor`).
    pub fn passes(&self) -> u64 {
        self.published.lock().map(|p| p.passes).unwrap_or(0)
    }

    /// Writes the last complete pass (and scan progress) into `out`. Before the
    /// first pass completes, only the progress metrics are written.
    pub fn encode(&self, out: &mut Exposition) {
        let Ok(p) = self.published.lock() else { return };
        out.add_plain(&SCAN_PERMITTED, p.permitted);
        out.add_plain(&SCAN_PASSES, p.passes);
        out.add_plain(&SCAN_PROGRESS, p.progress_keys);
        out.add_plain(&SCAN_MIN_INTERVAL, self.min_pass_interval.as_secs_f64());
        if let Some(next) = p.next_start_unix {
            out.add_plain(&SCAN_NEXT_START, next);
        }
        // The TTL policy, per family (configuration, so present before the first pass).
        for (i, name) in self.classifier.names.iter().enumerate() {
            let required = match self.config.families.get(i) {
                Some(family) => family.requires_ttl,
                None => name == OTHER_FAMILY && self.config.other_requires_ttl,
            };
            out.add(&KEY_FAMILY_TTL_REQUIRED, vec![("family", std::borrow::Cow::Owned(name.clone()))], required);
        }
        let Some(last) = &p.last else { return };
        out.add_plain(&SCAN_LAST_COMPLETE, last.completed_unix);
        out.add_plain(&SCAN_DURATION, last.duration);
        out.add_plain(&SCAN_NODES, last.nodes as u64);
        for (name, t) in self.classifier.names.iter().zip(&last.families) {
            let labels = || vec![("family", std::borrow::Cow::Owned(name.clone()))];
            out.add(&KEYS, labels(), t.keys);
            if t.ttl_unknown == 0 && !last.ttl_refused {
                out.add(&KEYS_WITHOUT_TTL, labels(), t.without_ttl);
                let mut buckets: Vec<(f64, u64)> = TTL_BUCKETS.iter().copied().zip(t.ttl_buckets).collect();
                buckets.push((f64::INFINITY, t.ttl_buckets[TTL_BUCKETS.len()]));
                out.add(&KEY_TTL, labels(), MetricValue::Histogram { sum: t.ttl_sum, count: t.ttl_count, buckets });
            }
            if t.keys == 0 {
                out.add(&KEY_MEMORY, labels(), 0u64);
            } else if t.memory_samples > 0 && !last.memory_refused {
                let average = t.memory_sum as f64 / t.memory_samples as f64;
                out.add(&KEY_MEMORY, labels(), (average * t.keys as f64).round());
                out.add(&KEY_LARGEST, labels(), t.memory_largest);
            }
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `field:value` in INFO text.
fn info_field<'a>(info: &'a [u8], field: &str) -> Option<&'a str> {
    std::str::from_utf8(info).ok()?.lines().find_map(|line| {
        let (name, value) = line.trim_end_matches('\r').split_once(':')?;
        (name == field).then_some(value)
    })
}

/// `SCAN` reply: `[cursor, [key, ...]]`.
fn parse_scan(reply: Value) -> Option<(u64, Vec<Vec<u8>>)> {
    let Value::Array(mut parts) = reply else { return None };
    if parts.len() != 2 {
        return None;
    }
    let keys = parts.pop()?;
    // Cursors are unsigned 64-bit (they may exceed i64), sent as bulk strings.
    let cursor = match &parts[0] {
        Value::Int(i) => u64::try_from(*i).ok()?,
        other => std::str::from_utf8(bytes_of(other)?).ok()?.trim().parse().ok()?,
    };
    let Value::Array(keys) = keys else { return None };
    let keys = keys
        .into_iter()
        .filter_map(|k| match k {
            Value::BulkString(b) => Some(b),
            _ => None,
        })
        .collect();
    Some((cursor, keys))
}

/// Masters that own slots, from `CLUSTER NODES`, as `(host, port)`. A node that
/// has not learnt its own IP (`:7000@17000 myself,master`) is at `seed_host`.
/// Failed, handshaking and address-less nodes are skipped.
pub fn cluster_masters(cluster_nodes: &str, seed_host: &str) -> Vec<(String, u16)> {
    crate::collectors::redis::cluster::parse_cluster_nodes(cluster_nodes, seed_host)
        .into_iter()
        .filter(|n| n.master && n.has_slots)
        .map(|n| (n.host, n.port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_names_are_checked() {
        assert_eq!(KeyFamiliesConfig::default().validate(), Ok(()));
        let mut c = KeyFamiliesConfig::default();
        c.families.push(KeyFamily::new("Bad-Name", "x:"));
        assert!(c.validate().unwrap_err().contains("families[5].name"));
        let mut c = KeyFamiliesConfig::default();
        c.families.push(KeyFamily::new("other", "x:"));
        assert!(c.validate().unwrap_err().contains("reserved"));
        let c = KeyFamiliesConfig { budget: "fast".into(), ..KeyFamiliesConfig::default() };
        assert!(c.validate().unwrap_err().starts_with("budget:"));
        let c = KeyFamiliesConfig { replica_address: Some("redis://a:1".into()), ..KeyFamiliesConfig::default() };
        assert!(c.validate().unwrap_err().starts_with("replica_address:"));
        let c =
            KeyFamiliesConfig { replica_address: Some("replica.local:6380".into()), ..KeyFamiliesConfig::default() };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn min_pass_interval_defaults_to_minutes_and_uses_the_duration_syntax() {
        let c = KeyFamiliesConfig::default();
        assert_eq!(c.min_pass_interval(), Duration::from_secs(600));
        for bad in ["300", "5 minutes", "-1s", "25h"] {
            let c = KeyFamiliesConfig { min_pass_interval: bad.into(), ..KeyFamiliesConfig::default() };
            assert!(c.validate().unwrap_err().starts_with("min_pass_interval:"), "{bad}");
        }
        for good in ["0s", "30s", "1h30m", "24h"] {
            let c = KeyFamiliesConfig { min_pass_interval: good.into(), ..KeyFamiliesConfig::default() };
            assert_eq!(c.validate(), Ok(()), "{good}");
        }
        let c: KeyFamiliesConfig = serde_norway::from_str("min_pass_interval: 2m\n").expect("yaml");
        assert_eq!(c.min_pass_interval(), Duration::from_secs(120));
    }

    #[test]
    fn config_parses_from_yaml_and_rejects_unknown_fields() {
        let c: KeyFamiliesConfig =
            serde_norway::from_str("budget: 20ms\nfamilies:\n  - {name: cart, prefix: 'shop:cart:'}\n").expect("yaml");
        assert_eq!(c.families.len(), 1);
        assert_eq!(c.scan_count, 1000);
        assert!(serde_norway::from_str::<KeyFamiliesConfig>("budgett: 1s\n").is_err());
    }

    #[test]
    fn longest_prefix_wins_then_namespace_then_non_tenderly() {
        let mut c = KeyFamiliesConfig::default();
        c.families.push(KeyFamily::new("user_mfa", "tenderly:user:mfa:"));
        let k = Classifier::new(&c);
        let name = |key: &str| k.names[k.classify(key.as_bytes())].clone();
        assert_eq!(name("tenderly:session:abc"), "session");
        assert_eq!(name("tenderly:user:42"), "user");
        assert_eq!(name("tenderly:user:mfa:42"), "user_mfa");
        assert_eq!(name("tenderly:audit:1"), "other");
        assert_eq!(name("tenderly:"), "other");
        assert_eq!(name("cache:x"), "non_tenderly");
        assert_eq!(name("tenderly"), "non_tenderly");
    }

    #[test]
    fn ttl_histogram_buckets_are_per_bucket() {
        let mut t = FamilyTotals::default();
        for s in [1.0, 60.0, 61.0, 1e9] {
            t.observe_ttl(s);
        }
        assert_eq!(t.ttl_buckets[0], 2);
        assert_eq!(t.ttl_buckets[1], 1);
        assert_eq!(t.ttl_buckets[TTL_BUCKETS.len()], 1);
        assert_eq!(t.ttl_count, 4);
    }

    #[test]
    fn cluster_nodes_lists_masters_with_slots_and_fills_empty_ip() {
        let text = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-a slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :30001@31001 myself,master - 0 0 1 connected 0-5460
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:30009@31009 master,fail - 0 0 1 connected 1-2
bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1:30010@31010 master - 0 0 1 connected
cccccccccccccccccccccccccccccccccccccccc 10.0.0.7:30011@31011,redis-7.internal master - 0 0 1 connected 3
";
        let masters = cluster_masters(text, "seed.local");
        assert_eq!(
            masters,
            vec![
                ("127.0.0.1".to_string(), 30002),
                ("127.0.0.1".to_string(), 30003),
                ("seed.local".to_string(), 30001),
                ("redis-7.internal".to_string(), 30011),
            ]
        );
        assert!(cluster_masters("garbage\n\n", "x").is_empty());
    }

    #[test]
    fn scan_replies_parse_and_odd_ones_are_rejected() {
        let reply = Value::Array(vec![
            Value::BulkString(b"17".to_vec()),
            Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::BulkString(b"b".to_vec())]),
        ]);
        assert_eq!(parse_scan(reply), Some((17, vec![b"a".to_vec(), b"b".to_vec()])));
        let big = Value::Array(vec![Value::BulkString(b"18446744073709551615".to_vec()), Value::Array(vec![])]);
        assert_eq!(parse_scan(big), Some((u64::MAX, vec![])));
        assert_eq!(parse_scan(Value::Nil), None);
        assert_eq!(parse_scan(Value::Array(vec![Value::Int(0)])), None);
    }

    #[test]
    fn descriptors_are_well_formed() {
        for d in KeyScanner::descriptors() {
            assert!(d.is_well_formed(), "{}", d.name);
        }
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(parse_host_port("a:1"), Some(("a".into(), 1)));
        assert_eq!(parse_host_port("[::1]:6379"), Some(("::1".into(), 6379)));
        assert_eq!(parse_host_port("a:0"), None);
        assert_eq!(parse_host_port("u:p@a:1"), None);
        assert_eq!(parse_host_port("a"), None);
    }
}
