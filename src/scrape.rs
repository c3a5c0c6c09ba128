//! Per-request orchestration: deadlines, single-flight, self-metrics.
//!
//! A request names targets (the defaults for `/metrics`, one for `/probe`) and
//! carries a deadline. Each target's collection runs in its own task, under the
//! deadline of the request that started it; concurrent requests for the same
//! target join that in-flight collection instead of starting another
//! (single-flight), so an HA pair of Prometheus servers costs the database one
//! collection, not two. A request waits for a flight only until its own
//! deadline, so a slow or dead target costs each request at most its deadline,
//! and targets never wait on each other.
//!
//! Only the exporter's own counters persist between scrapes; target data lives
//! in the [`Exposition`] of one collection and is dropped after encoding.
//!
//! Rotation and reload without a restart: each target's settings and clients
//! form one incarnation, swapped as a whole when its secrets change (the
//! secret-file poll, an authentication failure that finds a new secret) or a
//! reload changes it ([`Scraper::apply_config`]); other targets keep their
//! connections, and a request already running keeps the clients it started with.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt as _;
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};

use crate::build_info;
use crate::collectors::mongodb::{client::MongoClient, encode as mongo_encode};
use crate::collectors::redis::{client::RedisClient, encode as redis_encode, load::CommandLoad};
use crate::config::{Config, Env, ProcessEnv, Target, TargetSpec};
use crate::discovery::{self, DiscoveryError, Topology, DISCOVERY_DEADLINE};
use crate::metrics::{BaseUnit, Desc, Exposition};
use crate::tenderly::backups::{self, BackupsConfig};
use crate::tenderly::keys::KeyScanner;
use crate::tenderly::mongo::MongoSignals;
use crate::tenderly::redis_posture::{self, RedisPosture, RedisPostureConfig};
use crate::tenderly::{Cached, POSTURE_INTERVAL};

pub const BUILD_INFO: Desc = Desc::gauge(
    "tenderly_exporter_build_info",
    "A metric with a constant value of 1, labelled with the exporter's version and git revision.",
)
.labels(&["version", "revision"]);
pub const COLLECTOR_SUCCESS: Desc = Desc::gauge(
    "tenderly_exporter_collector_success",
    "Whether the collector's last run for the target succeeded (1) or not (0).",
)
.labels(&["target", "collector"]);
pub const COLLECTOR_DURATION: Desc = Desc::gauge(
    "tenderly_exporter_collector_duration_seconds",
    "How long the collector's last run for the target took in seconds.",
)
.unit(BaseUnit::Seconds)
.labels(&["target", "collector"]);
pub const COLLECTIONS: Desc = Desc::counter(
    "tenderly_exporter_scrapes_total",
    "Collections run against the target by the collector; joined (single-flight) requests do not count.",
)
.labels(&["target", "collector"]);
pub const COLLECTION_ERRORS: Desc = Desc::counter(
    "tenderly_exporter_scrape_errors_total",
    "Collections of the target by the collector that failed or missed their deadline.",
)
.labels(&["target", "collector"]);
pub const HTTP_REQUESTS: Desc =
    Desc::counter("tenderly_exporter_http_requests_total", "HTTP requests served, by handler and status code.")
        .labels(&["handler", "code"]);
pub const SERIES_DROPPED: Desc = Desc::counter(
    "tenderly_exporter_series_dropped_total",
    "Series a target's reply would have produced beyond the family's cardinality cap, and that were not exported, by family (present once any were dropped).",
)
.labels(&["target", "family"]);
pub const CONFIG_RELOAD_SUCCESSFUL: Desc = Desc::gauge(
    "tenderly_exporter_config_last_reload_successful",
    "Whether the last reload (the config file by POST /-/reload or SIGHUP, or a changed secret file) succeeded (1) or kept the running configuration (0).",
);
pub const CONFIG_RELOAD_SUCCESS_TIME: Desc = Desc::gauge(
    "tenderly_exporter_config_last_reload_success_timestamp_seconds",
    "When the configuration or a target's secrets were last loaded successfully, in seconds since the Unix epoch.",
)
.unit(BaseUnit::Seconds);
pub const REDIS_COMMANDS_SENT: Desc = Desc::counter(
    "tenderly_exporter_redis_commands_sent_total",
    "Commands the exporter sent to the Redis target (handshakes included), by purpose: collection (the INFO scrape), key_scan (sent to the replica when key_families.replica_address is set), posture. Subtract from redis_commands_processed_total for the application's own traffic.",
)
.labels(&["target", "purpose"]);
pub const REDIS_COMMAND_WAIT: Desc = Desc::counter(
    "tenderly_exporter_redis_command_round_trip_seconds_total",
    "Client-side time the exporter waited for the Redis target's replies, by purpose (network included; Redis does not attribute server time per client, so this bounds it from above).",
)
.unit(BaseUnit::Seconds)
.labels(&["target", "purpose"]);
pub const TARGETS: Desc =
    Desc::gauge("tenderly_exporter_targets", "Number of configured targets, by kind, as loaded from flags and config.")
        .labels(&["kind"]);

/// Every self-metric descriptor (the `process_*` ones live in [`crate::process`]).
pub fn descriptors() -> Vec<&'static Desc> {
    vec![
        &BUILD_INFO,
        &COLLECTOR_SUCCESS,
        &COLLECTOR_DURATION,
        &COLLECTIONS,
        &COLLECTION_ERRORS,
        &HTTP_REQUESTS,
        &TARGETS,
        &SERIES_DROPPED,
        &CONFIG_RELOAD_SUCCESSFUL,
        &CONFIG_RELOAD_SUCCESS_TIME,
        &REDIS_COMMANDS_SENT,
        &REDIS_COMMAND_WAIT,
    ]
}

/// Outcome of one collector run for one target.
#[derive(Debug, Clone)]
pub struct CollectorRun {
    pub collector: &'static str,
    pub success: bool,
    pub duration: Duration,
    /// Counted in the self-metrics when it ran (background work reported later).
    pub counted: bool,
}

/// What one collection of one target produced.
#[derive(Debug, Clone)]
pub struct Collection {
    /// Deduplicated, shared read-only by every request that waited for it.
    pub exposition: Arc<Exposition>,
    pub runs: Vec<CollectorRun>,
}

type Flight = watch::Receiver<Option<Arc<Collection>>>;

enum Backend {
    Redis(Box<RedisBackend>),
    Mongodb(Box<MongoBackend>),
}

impl RedisBackend {
    /// `scan_keys`: whether this target runs the key-family scan (members of a
    /// discovered deployment do not: the seed target scans the whole keyspace).
    fn new(name: &str, spec: &crate::config::RedisTarget, scan_keys: bool) -> Self {
        RedisBackend {
            spec: spec.clone(),
            client: RedisClient::new(name, spec.connection.clone()),
            keys: spec
                .key_families
                .clone()
                .filter(|_| scan_keys)
                .map(|cfg| KeyScanner::new(name, spec.connection.clone(), spec.member_policy(), cfg)),
            posture: spec.posture.clone().map(|cfg| (cfg, Cached::new(POSTURE_INTERVAL))),
            posture_load: CommandLoad::new(),
            last_scan: Mutex::new(None),
            drift: spec.drift.clone().map(crate::tenderly::drift::RedisDrift::new),
        }
    }
}

/// A MongoDB target: the generic collector's client plus the Tenderly signals
/// that run over it after each scrape.
struct MongoBackend {
    client: MongoClient,
    signals: MongoSignals,
}

impl MongoBackend {
    fn new(client: MongoClient, name: &str, spec: &crate::config::MongoTarget) -> Self {
        MongoBackend { client, signals: MongoSignals::new(name, spec.tenderly.clone(), spec.posture) }
    }
}

/// A Redis target: the INFO collector plus the Tenderly signals that need
/// their own state between scrapes.
struct RedisBackend {
    /// The target's settings (connection, allow-list, Tenderly options).
    spec: crate::config::RedisTarget,
    client: RedisClient,
    keys: Option<KeyScanner>,
    /// Posture options and the last reading (each run costs the server one NOAUTH error reply).
    posture: Option<(RedisPostureConfig, Cached<RedisPosture>)>,
    /// Commands the posture checks sent.
    posture_load: CommandLoad,
    /// The outcome of the last key-scan step (it runs after the scrape has answered).
    last_scan: Mutex<Option<CollectorRun>>,
    /// Configuration drift against the policy, from the scrape's own snapshot.
    drift: Option<crate::tenderly::drift::RedisDrift>,
}

impl Backend {
    /// The kind's `*_up` series.
    fn encode_up(&self, up: bool, out: &mut Exposition) {
        match self {
            Backend::Redis(_) => redis_encode::encode_up(up, out),
            Backend::Mongodb(_) => mongo_encode::encode_up(up, out),
        }
    }
}

/// One version of a target's settings and the clients built from them. A new
/// secret or a changed config file builds a new one, which the runner swaps in:
/// the target's connections are replaced, other targets keep theirs.
struct Incarnation {
    target: Target,
    backend: Backend,
}

impl Incarnation {
    fn new(target: Target) -> Self {
        let backend = match &target.spec {
            TargetSpec::Redis(spec) => Backend::Redis(Box::new(RedisBackend::new(&target.name, spec, true))),
            TargetSpec::Mongodb(spec) => {
                let client = MongoClient::new(target.name.clone(), spec.connection.clone());
                Backend::Mongodb(Box::new(MongoBackend::new(client, &target.name, spec)))
            }
        };
        Incarnation { target, backend }
    }
}

/// One configured target with its persistent client and its in-flight collection.
struct TargetRunner {
    name: String,
    current: RwLock<Arc<Incarnation>>,
    /// Bumped by every swap of `current` (members discovered under an older
    /// incarnation hold its credentials and are dropped).
    generation: std::sync::atomic::AtomicU64,
    flight: Mutex<Option<Flight>>,
    /// The last failure's kind, so a persistent failure is logged once, not every scrape.
    last_error: Mutex<Option<String>>,
}

/// The outcome of the last reload, exported as the `config_last_reload_*` gauges.
struct ReloadStatus {
    successful: bool,
    last_success: SystemTime,
}

/// What secret rotation needs from every collection: the environment the
/// secrets are read from, and where reload outcomes are recorded.
struct Rotation {
    env: Arc<dyn Env + Send + Sync>,
    status: Mutex<ReloadStatus>,
}

impl Rotation {
    fn record(&self, successful: bool) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.successful = successful;
        if successful {
            status.last_success = SystemTime::now();
        }
    }
}

/// The targets of one loaded configuration.
struct Loaded {
    targets: BTreeMap<String, Arc<TargetRunner>>,
    defaults: Vec<String>,
    /// Backup files whose freshness `/metrics` reports (on the exporter's host).
    backups: Option<BackupsConfig>,
}

/// What [`Scraper::apply_config`] changed, by target name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// What the secret-file poll saw last, per file: (modified, length, inode,
/// device, content hash), or `None` when the file could not be read.
pub type SecretStamps = BTreeMap<PathBuf, Option<(SystemTime, u64, u64, u64, u64)>>;

/// A file's stamp for [`SecretStamps`]. The content hash catches a rewrite in
/// place within the file system's timestamp granularity; the files are small
/// (at most 64 KiB is read) and few.
fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64, u64, u64, u64)> {
    use std::hash::{Hash, Hasher};
    use std::io::Read;
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(64 * 1024 + 1).read_to_end(&mut bytes).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    #[cfg(unix)]
    let (ino, dev) = (meta.ino(), meta.dev());
    #[cfg(not(unix))]
    let (ino, dev) = (0, 0);
    Some((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), ino, dev, hasher.finish()))
}

#[derive(Default, Clone, Copy)]
struct RunCounts {
    runs: u64,
    errors: u64,
}

/// Counters that outlive a scrape: the exporter's own.
#[derive(Default)]
struct SelfStats {
    runs: BTreeMap<(String, &'static str), RunCounts>,
    http: BTreeMap<(&'static str, u16), u64>,
}

/// Owns every target and the exporter's own counters.
pub struct Scraper {
    /// The running configuration's targets; a reload swaps in a new map
    /// (requests already running keep the runners they picked).
    loaded: RwLock<Arc<Loaded>>,
    rotation: Arc<Rotation>,
    stats: Arc<Mutex<SelfStats>>,
    /// Per target: the members its last discovery found, and the clients of
    /// the members probed since (`/probe?target=NAME&member=HOST:PORT`).
    members: Mutex<BTreeMap<String, MemberSet>>,
    /// The web configuration's TLS certificate expiry (set by the server).
    web_cert_expiry: crate::web_config::CertificateExpiry,
}

/// The last discovery of one target and its members' runners (a subset of the members).
struct MemberSet {
    topology: Topology,
    runners: BTreeMap<String, Arc<TargetRunner>>,
    /// The seed runner's generation the runners were built under.
    generation: u64,
}

/// The member set of `name`, emptied of runners built with an older
/// incarnation of the seed (old credentials or settings).
fn member_set<'a>(members: &'a mut BTreeMap<String, MemberSet>, name: &str, generation: u64) -> &'a mut MemberSet {
    let set = members.entry(name.to_string()).or_insert_with(|| MemberSet {
        topology: Topology::default(),
        runners: BTreeMap::new(),
        generation,
    });
    if set.generation != generation {
        set.runners.clear();
        set.generation = generation;
    }
    set
}

/// Why `/probe?target=NAME&member=HOST:PORT` scraped nothing.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// Not in the target's last discovered member list: nothing is contacted.
    #[error("not a discovered member of the target")]
    NotAMember,
    /// No member list yet, and discovering one failed.
    #[error("discovery failed: {0}")]
    Discovery(#[from] DiscoveryError),
}

impl Scraper {
    /// The scraper of `config`; secrets are re-read from the process environment.
    pub fn new(config: &Config) -> Self {
        Scraper::with_env(config, Arc::new(ProcessEnv))
    }

    /// The scraper of `config`, re-reading `password_env`-style secrets from `env`.
    pub fn with_env(config: &Config, env: Arc<dyn Env + Send + Sync>) -> Self {
        let targets = config
            .targets
            .iter()
            .map(|t| (t.name.clone(), Arc::new(TargetRunner::new(Incarnation::new(t.clone())))))
            .collect();
        Scraper {
            loaded: RwLock::new(Arc::new(Loaded {
                targets,
                defaults: config.default_targets().map(|t| t.name.clone()).collect(),
                backups: config.backups.clone(),
            })),
            rotation: Arc::new(Rotation {
                env,
                status: Mutex::new(ReloadStatus { successful: true, last_success: SystemTime::now() }),
            }),
            stats: Arc::new(Mutex::new(SelfStats::default())),
            members: Mutex::new(BTreeMap::new()),
            web_cert_expiry: crate::web_config::CertificateExpiry::default(),
        }
    }

    /// Reports the web configuration's certificate expiry among the exporter's own metrics.
    pub fn with_web_certificate_expiry(mut self, expiry: crate::web_config::CertificateExpiry) -> Self {
        self.web_cert_expiry = expiry;
        self
    }

    fn loaded(&self) -> Arc<Loaded> {
        Arc::clone(&self.loaded.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn runner(&self, name: &str) -> Option<Arc<TargetRunner>> {
        self.loaded().targets.get(name).cloned()
    }

    /// Swaps in a new, already validated configuration's targets: a target
    /// whose settings (secrets included) are unchanged keeps its runner and
    /// connections, a changed one gets new clients, added ones are created and
    /// removed ones dropped (a collection of theirs still running finishes on
    /// its own). Records a successful reload.
    pub fn apply_config(&self, config: &Config) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        let mut targets = BTreeMap::new();
        for t in &config.targets {
            let runner = match loaded.targets.get(&t.name) {
                Some(runner) => {
                    if runner.current().target != *t {
                        runner.replace(t.clone());
                        summary.changed.push(t.name.clone());
                    }
                    Arc::clone(runner)
                }
                None => {
                    summary.added.push(t.name.clone());
                    Arc::new(TargetRunner::new(Incarnation::new(t.clone())))
                }
            };
            targets.insert(t.name.clone(), runner);
        }
        summary.removed = loaded.targets.keys().filter(|name| !targets.contains_key(*name)).cloned().collect();
        *loaded = Arc::new(Loaded {
            targets,
            defaults: config.default_targets().map(|t| t.name.clone()).collect(),
            backups: config.backups.clone(),
        });
        drop(loaded);
        {
            let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
            members.retain(|name, _| !summary.removed.contains(name));
        }
        self.rotation.record(true);
        summary
    }

    /// Records a reload that was refused (the running configuration stays).
    pub fn record_failed_reload(&self) {
        self.rotation.record(false);
    }

    /// The secret-file poll (blocking file reads: run it off the runtime).
    /// Every file of every target is stamped; a target one of whose files
    /// changed since the last call (or every target with a secret source,
    /// `force`, as SIGHUP does) re-reads its secrets. A new secret replaces
    /// that target's clients only; an unreadable or empty file keeps the old
    /// secret, is logged (never the secret) and marks the reload failed.
    /// Returns the names of the targets whose secrets changed.
    pub fn poll_secrets(&self, stamps: &mut SecretStamps, force: bool) -> Vec<String> {
        let loaded = self.loaded();
        let mut now: SecretStamps = BTreeMap::new();
        for runner in loaded.targets.values() {
            for path in runner.current().target.secrets.files() {
                if !now.contains_key(path) {
                    now.insert(path.to_path_buf(), file_stamp(path));
                }
            }
        }
        let changed_files: BTreeSet<&PathBuf> =
            now.iter().filter(|(path, stamp)| stamps.get(*path) != Some(stamp)).map(|(path, _)| path).collect();
        let mut changed = Vec::new();
        let mut attempted = false;
        let mut failed = false;
        for runner in loaded.targets.values() {
            let current = runner.current();
            let secrets = &current.target.secrets;
            let due = if force {
                !secrets.is_empty()
            } else {
                secrets.files().any(|p| changed_files.contains(&p.to_path_buf()))
            };
            if !due {
                continue;
            }
            attempted = true;
            match runner.refresh_secrets(&*self.rotation.env) {
                Ok(true) => changed.push(runner.name.clone()),
                Ok(false) => {}
                Err(()) => failed = true,
            }
        }
        *stamps = now;
        if attempted {
            self.rotation.record(!failed);
        }
        changed
    }

    /// `/discover?target=NAME`: asks the configured target for its members
    /// (bounded by [`DISCOVERY_DEADLINE`] and [`discovery::MAX_MEMBERS`]),
    /// marks those the target's policy does not allow as untrusted, and
    /// remembers the rest as the only members `/probe` may scrape for it.
    /// Clients of members that disappeared or lost trust are dropped.
    pub async fn discover(&self, name: &str, deadline: Instant) -> Result<Topology, DiscoveryError> {
        let Some(runner) = self.runner(name) else {
            return Err(DiscoveryError::UnknownTarget);
        };
        let generation = runner.generation();
        let current = runner.current();
        let deadline = deadline.min(Instant::now() + DISCOVERY_DEADLINE);
        let found = match &current.backend {
            Backend::Redis(redis) => timeout_at(deadline, discovery::redis(&redis.spec, deadline)).await,
            Backend::Mongodb(mongo) => {
                timeout_at(deadline, discovery::mongodb(&mongo.client, current.target.display_address(), deadline))
                    .await
            }
        };
        let mut topology = found.map_err(|_| DiscoveryError::Timeout)??;
        let refused = discovery::classify(&mut topology, &member_policy(&current.target), deadline).await;
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        let set = member_set(&mut members, name, generation);
        for (member, verdict) in &refused {
            // Once per member while it stays listed: discovery runs every SD refresh.
            if !set.topology.untrusted.contains(member) {
                tracing::warn!(
                    target_name = %name,
                    member = %member,
                    reason = verdict.as_str(),
                    "discovered member is not trusted with the target's credentials; listed as untrusted, never scraped \
                     (see members_allowed in docs/security-trust-model.md)"
                );
            }
        }
        set.runners.retain(|member, _| topology.members.contains(member) && !topology.untrusted.contains(member));
        set.topology = topology.clone();
        Ok(topology)
    }

    /// `/probe?target=NAME&member=HOST:PORT`: scrapes `member` with the
    /// target's credentials, TLS and collector settings, only if the target's
    /// last discovery listed it as trusted (discovering first if it never ran)
    /// and the policy still allows it now (a name is resolved again, and
    /// refused if it resolves to a link-local or metadata address). Anything
    /// else is [`MemberError::NotAMember`] and no connection is made.
    pub async fn scrape_member(&self, name: &str, member: &str, deadline: Instant) -> Result<Exposition, MemberError> {
        let Some(seed) = self.runner(name) else {
            return Err(MemberError::NotAMember);
        };
        let generation = seed.generation();
        let seed_target = seed.current().target.clone();
        let known = self.members.lock().unwrap_or_else(|p| p.into_inner()).contains_key(name);
        if !known {
            self.discover(name, deadline).await?;
        }
        {
            let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
            let Some(set) = members.get(name) else {
                return Err(MemberError::NotAMember);
            };
            if !set.topology.members.iter().any(|m| m == member) {
                return Err(MemberError::NotAMember);
            }
            if set.topology.untrusted.iter().any(|m| m == member) {
                tracing::debug!(target_name = %name, member, "probe of an untrusted member refused");
                return Err(MemberError::NotAMember);
            }
        }
        // Checked again right before use: a name may resolve elsewhere by now.
        let Some((host, port)) = discovery::parse_member(member) else {
            return Err(MemberError::NotAMember);
        };
        let verdict = member_policy(&seed_target).check(&host, port, deadline).await;
        if !verdict.allowed() {
            tracing::debug!(target_name = %name, member, reason = verdict.as_str(), "probe of a member refused");
            return Err(MemberError::NotAMember);
        }
        let runner = {
            let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
            if !members.contains_key(name) {
                return Err(MemberError::NotAMember);
            }
            let set = member_set(&mut members, name, generation);
            if !set.topology.members.iter().any(|m| m == member) || set.topology.untrusted.iter().any(|m| m == member) {
                return Err(MemberError::NotAMember);
            }
            match set.runners.get(member) {
                Some(runner) => Arc::clone(runner),
                None => {
                    if set.runners.len() >= discovery::MAX_MEMBERS {
                        return Err(MemberError::NotAMember);
                    }
                    let runner = Arc::new(member_runner(&seed_target, member).ok_or(MemberError::NotAMember)?);
                    set.runners.insert(member.to_string(), Arc::clone(&runner));
                    runner
                }
            }
        };
        Ok(self.collect_runners(vec![runner], deadline).await)
    }

    /// Whether `/probe?target=NAME` may scrape `name`: only configured targets.
    pub fn has_target(&self, name: &str) -> bool {
        self.loaded().targets.contains_key(name)
    }

    /// Whether a collection of the configured target `name` is running now: a
    /// request for it would join that collection, not start one (the HTTP
    /// server does not count such a request against the global scrape slots).
    pub fn collection_in_flight(&self, name: &str) -> bool {
        let Some(runner) = self.runner(name) else { return false };
        let slot = runner.flight.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().is_some_and(|flight| flight.borrow().is_none() && flight.has_changed().is_ok())
    }

    /// Configured targets as `(name, kind, credential-free address, default)`, for the landing page.
    pub fn target_list(&self) -> Vec<(String, &'static str, String, bool)> {
        self.loaded()
            .targets
            .values()
            .map(|r| {
                let current = r.current();
                let t = &current.target;
                (t.name.clone(), t.kind().as_str(), t.display_address().to_string(), t.default)
            })
            .collect()
    }

    /// `/metrics`: the default targets plus the exporter's own metrics.
    pub async fn scrape_defaults(&self, deadline: Instant) -> Exposition {
        let loaded = self.loaded();
        let backups = async {
            match &loaded.backups {
                Some(config) => backups::scan_with_deadline(config, deadline).await,
                None => None,
            }
        };
        let (mut out, backups) = tokio::join!(self.collect_targets(&loaded.defaults, deadline), backups);
        if let Some(snapshot) = backups {
            snapshot.encode(&mut out);
        }
        self.encode_self(&mut out);
        crate::process::encode(&mut out);
        out
    }

    /// `/probe?target=NAME`: that target plus its collector success/duration.
    /// The caller has checked `has_target`; an unknown name yields an empty exposition.
    pub async fn scrape_one(&self, name: &str, deadline: Instant) -> Exposition {
        self.collect_targets(&[name.to_string()], deadline).await
    }

    /// Records one served HTTP request.
    pub fn count_request(&self, handler: &'static str, code: u16) {
        if let Ok(mut stats) = self.stats.lock() {
            *stats.http.entry((handler, code)).or_default() += 1;
        }
    }

    async fn collect_targets(&self, names: &[String], deadline: Instant) -> Exposition {
        let loaded = self.loaded();
        let runners = names.iter().filter_map(|n| loaded.targets.get(n)).cloned().collect();
        self.collect_runners(runners, deadline).await
    }

    async fn collect_runners(&self, runners: Vec<Arc<TargetRunner>>, deadline: Instant) -> Exposition {
        let waits = runners.into_iter().map(|runner| {
            let stats = Arc::clone(&self.stats);
            let rotation = Arc::clone(&self.rotation);
            async move {
                let started = Instant::now();
                let flight = runner.join_or_start(deadline, stats, rotation);
                (runner, wait_for(flight, deadline).await, started.elapsed())
            }
        });
        let results = futures_util::future::join_all(waits).await;
        let mut out = Exposition::new();
        for (runner, collection, waited) in results {
            let name = runner.name.as_str();
            match collection {
                Some(c) => {
                    out.attach(Arc::clone(&c.exposition));
                    for run in &c.runs {
                        add_run(&mut out, name, run.collector, run.success, run.duration);
                    }
                }
                None => {
                    // The flight outlived this request's deadline: report the target as down.
                    runner.current().backend.encode_up(false, &mut out);
                    add_run(&mut out, name, runner.collector_name(), false, waited);
                }
            }
        }
        out
    }

    fn encode_self(&self, out: &mut Exposition) {
        out.add(
            &BUILD_INFO,
            vec![("version", build_info::version().into()), ("revision", build_info::revision().into())],
            1i64,
        );
        let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
        for runner in self.loaded().targets.values() {
            *kinds.entry(runner.current().target.kind().as_str()).or_default() += 1;
        }
        {
            let status = self.rotation.status.lock().unwrap_or_else(|p| p.into_inner());
            out.add(&CONFIG_RELOAD_SUCCESSFUL, Vec::new(), status.successful);
            let at = status.last_success.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            out.add(&CONFIG_RELOAD_SUCCESS_TIME, Vec::new(), at.as_secs_f64());
        }
        for (kind, n) in kinds {
            out.add(&TARGETS, vec![("kind", kind.into())], n);
        }
        self.web_cert_expiry.encode(out);
        let Ok(stats) = self.stats.lock() else { return };
        out.declare(&COLLECTIONS);
        for ((target, collector), counts) in &stats.runs {
            let labels = vec![("target", target.clone().into()), ("collector", (*collector).into())];
            out.add(&COLLECTIONS, labels.clone(), counts.runs);
            out.add(&COLLECTION_ERRORS, labels, counts.errors);
        }
        for ((handler, code), n) in &stats.http {
            out.add(&HTTP_REQUESTS, vec![("handler", (*handler).into()), ("code", code.to_string().into())], *n);
        }
    }
}

/// The trust policy of a configured target (see [`crate::trust`]).
fn member_policy(target: &Target) -> crate::trust::MemberPolicy {
    match &target.spec {
        TargetSpec::Redis(spec) => spec.member_policy(),
        TargetSpec::Mongodb(spec) => spec.member_policy(),
    }
}

/// A synthetic target `NAME@HOST:PORT` for one discovered member: the
/// configured target's settings with the member's address. Key families are
/// left out (they describe the whole deployment and the seed target scans them).
fn member_runner(seed: &Target, member: &str) -> Option<TargetRunner> {
    let (host, port) = discovery::parse_member(member)?;
    let name = format!("{}@{member}", seed.name);
    let (spec, backend) = match &seed.spec {
        TargetSpec::Redis(spec) => {
            let spec = discovery::redis_member_spec(spec, &host, port)?;
            let backend = Backend::Redis(Box::new(RedisBackend::new(&name, &spec, false)));
            (TargetSpec::Redis(spec), backend)
        }
        TargetSpec::Mongodb(spec) => (
            TargetSpec::Mongodb(spec.clone()),
            Backend::Mongodb(Box::new(MongoBackend::new(
                MongoClient::for_member(name.clone(), spec.connection.clone(), host, port),
                &name,
                spec,
            ))),
        ),
    };
    // A member's credentials are the seed's: it re-reads nothing itself and is
    // rebuilt when the seed's incarnation changes.
    let target = Target {
        name,
        spec,
        timeout: seed.timeout,
        default: false,
        secrets: crate::config::SecretSources::default(),
        origin: seed.origin.clone(),
    };
    Some(TargetRunner::new(Incarnation { target, backend }))
}

/// [`TargetRunner::note_failure`]'s kind of a MongoDB client error: the
/// command and the class of failure (`describe` reduces driver errors to a
/// fixed set of texts, none with a countdown), so "unreachable" turning into
/// "authentication failed" is still a change worth a warning.
fn mongo_error_kind(e: &crate::collectors::mongodb::client::MongoError) -> String {
    use crate::collectors::mongodb::client::MongoError;
    match e {
        MongoError::Options(_) => "options".to_string(),
        MongoError::Timeout(_) => "timeout".to_string(),
        // The last failure still in force, never a new one (see `note_failure`).
        MongoError::Down { .. } => "backoff".to_string(),
        MongoError::Command { command, reason } => format!("{command}: {reason}"),
    }
}

fn add_run(out: &mut Exposition, target: &str, collector: &'static str, success: bool, duration: Duration) {
    let labels = vec![("target", target.to_string().into()), ("collector", collector.into())];
    out.add(&COLLECTOR_SUCCESS, labels.clone(), success);
    out.add(&COLLECTOR_DURATION, labels, duration.as_secs_f64());
}

async fn wait_for(mut flight: Flight, deadline: Instant) -> Option<Arc<Collection>> {
    match timeout_at(deadline, flight.wait_for(Option::is_some)).await {
        Ok(Ok(value)) => value.clone(),
        _ => None,
    }
}

impl TargetRunner {
    fn new(incarnation: Incarnation) -> Self {
        TargetRunner {
            name: incarnation.target.name.clone(),
            current: RwLock::new(Arc::new(incarnation)),
            generation: std::sync::atomic::AtomicU64::new(0),
            flight: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    /// The target's settings and clients now.
    fn current(&self) -> Arc<Incarnation> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// New settings for this target: new clients (the old connections close
    /// when the last collection using them ends). Other targets are untouched.
    fn replace(&self, target: Target) {
        let next = Arc::new(Incarnation::new(target));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// [`Self::replace`], only if `expected` is still the current incarnation:
    /// a secret re-read from an older incarnation must not undo a config
    /// reload that landed while the file was being read.
    fn replace_if_current(&self, expected: &Arc<Incarnation>, target: Target) -> bool {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&current, expected) {
            return false;
        }
        *current = Arc::new(Incarnation::new(target));
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        true
    }

    /// Reads this target's secrets again (blocking file I/O) and swaps in new
    /// clients if one changed. `Ok(true)`: replaced; `Ok(false)`: unchanged;
    /// `Err`: unreadable or empty, the old secret stays (logged without it).
    fn refresh_secrets(&self, env: &dyn Env) -> Result<bool, ()> {
        let current = self.current();
        match current.target.reread_secrets(env) {
            Ok(None) => Ok(false),
            Ok(Some(next)) => {
                if !self.replace_if_current(&current, next) {
                    // A reload replaced the target meanwhile, with secrets read just now.
                    return Ok(false);
                }
                tracing::info!(target_name = %self.name, "target secret changed; its connection was replaced");
                Ok(true)
            }
            Err(e) => {
                // ConfigError names the field and the file, never the secret.
                tracing::warn!(target_name = %self.name, error = %e, "cannot re-read the target's secret; keeping the old one");
                Err(())
            }
        }
    }

    /// Logs a failure at warn when its kind is new, at debug while the same
    /// kind repeats. Compared on the kind, never the text: the text of a
    /// reconnect backoff carries a live countdown, and an I/O error's detail can
    /// flip between attempts, yet a dead target is one problem and gets one
    /// warning (README, "Logs"). A backoff is the last failure still in force,
    /// never a new one.
    ///
    /// Every line names the target and its credential-free address; an
    /// authentication failure adds how to give this target credentials.
    fn note_failure(&self, collector: &'static str, kind: &str, error: &str, auth: bool) {
        let current = self.current();
        let address = current.target.display_address();
        let hint = auth.then(|| current.target.credential_hint());
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        let repeat = match last.as_deref() {
            Some(previous) => previous == kind || kind == "backoff",
            None => false,
        };
        if repeat {
            tracing::debug!(target_name = %self.name, address, collector, kind, error, hint = hint.as_deref(), "scrape failed again");
        } else {
            tracing::warn!(target_name = %self.name, address, collector, kind, error, hint = hint.as_deref(), "scrape failed");
            *last = Some(kind.to_string());
        }
    }

    fn note_success(&self) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if last.take().is_some() {
            tracing::info!(target_name = %self.name, "scrape recovered");
        }
    }

    fn collector_name(&self) -> &'static str {
        match self.current().backend {
            Backend::Redis(_) => crate::collectors::redis::COLLECTOR,
            Backend::Mongodb(_) => crate::collectors::mongodb::SERVER_STATUS,
        }
    }

    /// Joins the running collection of this target, or starts one.
    fn join_or_start(
        self: &Arc<Self>,
        deadline: Instant,
        stats: Arc<Mutex<SelfStats>>,
        rotation: Arc<Rotation>,
    ) -> Flight {
        let mut slot = match self.flight.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(flight) = slot.as_ref() {
            // Join only a flight that is still running: no value yet and a live sender.
            if flight.borrow().is_none() && flight.has_changed().is_ok() {
                return flight.clone();
            }
        }
        let (tx, rx) = watch::channel(None);
        *slot = Some(rx.clone());
        let deadline = match self.current().target.timeout {
            Some(cap) => deadline.min(Instant::now() + cap),
            None => deadline,
        };
        let runner = Arc::clone(self);
        let landed = rx.clone();
        tokio::spawn(async move {
            // A panic must not leave the target stuck behind a flight that never lands.
            let collection = match AssertUnwindSafe(runner.collect(deadline, &rotation)).catch_unwind().await {
                Ok(collection) => collection,
                Err(_) => {
                    tracing::error!(target_name = %runner.name, "collector panicked; reporting the target down");
                    runner.down_collection()
                }
            };
            if let Ok(mut stats) = stats.lock() {
                for run in collection.runs.iter().filter(|r| !r.counted) {
                    let counts = stats.runs.entry((runner.name.clone(), run.collector)).or_default();
                    counts.runs += 1;
                    counts.errors += u64::from(!run.success);
                }
            }
            // Receivers may all have given up; that is fine.
            let _ = tx.send(Some(Arc::new(collection)));
            // The requests waiting for this flight hold their own receivers; the
            // slot must not keep the landed collection alive until the target's
            // next scrape (one exposition per target: most of the memory
            // docs/scaling.md measured at 1,000 targets).
            {
                let mut slot = runner.flight.lock().unwrap_or_else(|p| p.into_inner());
                if slot.as_ref().is_some_and(|flight| flight.same_channel(&landed)) {
                    *slot = None;
                }
            }
            drop(landed);
            runner.background(&stats).await;
        });
        rx
    }

    /// Work that must not delay the scrape's answer: one bounded step of the
    /// Redis key-family scan (its own budget, 50 ms by default; the metrics come
    /// from the last complete pass anyway). Runs after the flight has landed; the
    /// scanner itself refuses to step twice at once.
    async fn background(&self, stats: &Mutex<SelfStats>) {
        let current = self.current();
        let Backend::Redis(redis) = &current.backend else { return };
        let Some(scanner) = &redis.keys else { return };
        if redis.client.is_sentinel() {
            // A Sentinel has no keyspace and answers SCAN with an error.
            return;
        }
        let started = Instant::now();
        // The scanner stops at its own budget; this is only a backstop.
        let deadline = started + Duration::from_secs(15);
        let success = match timeout_at(deadline, scanner.advance(deadline)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(target_name = %self.name, address = %current.target.display_address(), collector = crate::tenderly::keys::COLLECTOR, error = %e, "key scan step failed");
                false
            }
            Err(_) => false,
        };
        let run = CollectorRun {
            collector: crate::tenderly::keys::COLLECTOR,
            success,
            duration: started.elapsed(),
            counted: true,
        };
        if let Ok(mut stats) = stats.lock() {
            let counts = stats.runs.entry((self.name.clone(), run.collector)).or_default();
            counts.runs += 1;
            counts.errors += u64::from(!success);
        }
        *redis.last_scan.lock().unwrap_or_else(|p| p.into_inner()) = Some(run);
    }

    /// What a collection that could not run at all reports.
    fn down_collection(&self) -> Collection {
        let mut exposition = Exposition::new();
        self.current().backend.encode_up(false, &mut exposition);
        Collection {
            exposition: Arc::new(exposition),
            runs: vec![CollectorRun {
                collector: self.collector_name(),
                success: false,
                duration: Duration::ZERO,
                counted: false,
            }],
        }
    }

    /// One collection. An authentication failure re-reads the target's
    /// secrets once (a rotated password file may not have been polled yet) and,
    /// if one changed, collects again with new clients within the same deadline.
    async fn collect(&self, deadline: Instant, rotation: &Rotation) -> Collection {
        let current = self.current();
        let (collection, auth_failed) = self.collect_with(&current, deadline).await;
        if !auth_failed || current.target.secrets.is_empty() {
            return collection;
        }
        let target = current.target.clone();
        let env = Arc::clone(&rotation.env);
        // Blocking file reads stay off the runtime, and within the deadline.
        let read = tokio::task::spawn_blocking(move || target.reread_secrets(&*env));
        match timeout_at(deadline, read).await {
            Ok(Ok(Ok(Some(next)))) => {
                // A reload may have swapped in newer settings meanwhile; they win.
                self.replace_if_current(&current, next);
                rotation.record(true);
                tracing::info!(target_name = %self.name, "authentication failed and the target's secret had changed; retrying with the new one");
                self.collect_with(&self.current(), deadline).await.0
            }
            Ok(Ok(Err(e))) => {
                // Debug: this runs on every refused scrape, whose failure is
                // already logged once; the poll warns once per change of the file.
                tracing::debug!(target_name = %self.name, error = %e, "cannot re-read the target's secret; keeping the old one");
                rotation.record(false);
                collection
            }
            _ => collection,
        }
    }

    /// One collection with one incarnation's clients; also whether it failed
    /// on authentication.
    async fn collect_with(&self, current: &Incarnation, deadline: Instant) -> (Collection, bool) {
        let started = Instant::now();
        let mut exposition = Exposition::with_capacity(192);
        let mut runs = Vec::new();
        let mut auth_failed = false;
        match &current.backend {
            Backend::Redis(redis) => {
                let client = &redis.client;
                // The client bounds every await by the deadline; the outer timeout is a backstop.
                let result = match timeout_at(deadline, client.scrape(deadline)).await {
                    Ok(r) => r,
                    Err(_) => Err(crate::collectors::redis::client::RedisError::Timeout("scrape")),
                };
                let success = match result {
                    Ok(snapshot) => {
                        redis_encode::encode_up(true, &mut exposition);
                        client.count_dropped(&redis_encode::encode(&snapshot, &mut exposition));
                        if let Some(drift) = &redis.drift {
                            drift.encode(&self.name, &snapshot, &mut exposition);
                        }
                        self.note_success();
                        true
                    }
                    Err(e) => {
                        auth_failed = e.is_auth();
                        self.note_failure(crate::collectors::redis::COLLECTOR, e.kind(), &e.to_string(), auth_failed);
                        redis_encode::encode_up(false, &mut exposition);
                        false
                    }
                };
                runs.push(CollectorRun {
                    collector: crate::collectors::redis::COLLECTOR,
                    success,
                    duration: started.elapsed(),
                    counted: false,
                });
                for (family, n) in client.series_dropped() {
                    let labels = vec![("target", self.name.clone().into()), ("family", family.into())];
                    exposition.add(&SERIES_DROPPED, labels, n);
                }
                let sentinel = client.is_sentinel();
                if let Some(scanner) = redis.keys.as_ref().filter(|_| !sentinel) {
                    scanner.encode(&mut exposition);
                }
                // The key scan steps after the scrape has answered (see `background`).
                runs.extend(redis.last_scan.lock().unwrap_or_else(|p| p.into_inner()).clone());
                // The posture probe's commands (CONFIG GET, an unauthenticated PING) are errors on a Sentinel.
                if success && !sentinel {
                    if let Some((options, cache)) = &redis.posture {
                        let posture = cache
                            .get_or_refresh(|| {
                                redis_posture::check_counted(
                                    &self.name,
                                    &redis.spec,
                                    options,
                                    deadline,
                                    &redis.posture_load,
                                )
                            })
                            .await;
                        posture.encode(&self.name, &mut exposition);
                    }
                }
                // The exporter's own load on this server (the key scan's as of its last step).
                let loads = [
                    Some(("collection", client.load())),
                    redis.keys.as_ref().map(|k| ("key_scan", k.load())),
                    redis.posture.as_ref().map(|_| ("posture", &redis.posture_load)),
                ];
                for (purpose, load) in loads.into_iter().flatten() {
                    let labels = vec![("target", self.name.clone().into()), ("purpose", purpose.into())];
                    exposition.add(&REDIS_COMMANDS_SENT, labels.clone(), load.commands());
                    exposition.add(&REDIS_COMMAND_WAIT, labels, load.round_trip_seconds());
                }
            }
            Backend::Mongodb(mongo) => {
                let client = &mongo.client;
                let result = match timeout_at(deadline, client.scrape(deadline)).await {
                    Ok(r) => r,
                    Err(_) => Err(crate::collectors::mongodb::client::MongoError::Timeout("scrape")),
                };
                match result {
                    Ok(scrape) => {
                        mongo_encode::encode_up(true, &mut exposition);
                        mongo_encode::encode(&scrape.snapshot, &mut exposition);
                        // The Tenderly layer, over the same client, within the same deadline.
                        if let Ok(driver) = client.client(deadline).await {
                            let signals =
                                mongo.signals.run(&driver, scrape.snapshot.node.role, deadline, &mut exposition);
                            if let Ok(Some(run)) = timeout_at(deadline, signals).await {
                                runs.push(CollectorRun {
                                    collector: crate::tenderly::queries::COLLECTOR,
                                    success: run.success,
                                    duration: run.duration,
                                    counted: false,
                                });
                            }
                            let dba =
                                mongo.signals.run_dba_checks(&driver, &scrape.snapshot, deadline, &mut exposition);
                            let _ = timeout_at(deadline, dba).await;
                        }
                        self.note_success();
                        for section in scrape.sections {
                            // A collector that does not apply to this node is not a run.
                            if matches!(section.outcome, crate::collectors::mongodb::client::SectionOutcome::Skipped(_))
                            {
                                continue;
                            }
                            runs.push(CollectorRun {
                                collector: section.collector,
                                success: !section.outcome.is_failure(),
                                duration: section.duration,
                                counted: false,
                            });
                        }
                    }
                    Err(e) => {
                        auth_failed = e.is_auth();
                        self.note_failure(
                            crate::collectors::mongodb::SERVER_STATUS,
                            &mongo_error_kind(&e),
                            &e.to_string(),
                            auth_failed,
                        );
                        mongo_encode::encode_up(false, &mut exposition);
                        runs.push(CollectorRun {
                            collector: crate::collectors::mongodb::SERVER_STATUS,
                            success: false,
                            duration: started.elapsed(),
                            counted: false,
                        });
                    }
                }
            }
        }
        exposition.dedup();
        (Collection { exposition: Arc::new(exposition), runs }, auth_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    struct NoEnv;
    impl crate::config::Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    /// Each target's slot kept its last collection (a whole exposition) until
    /// the target's next scrape: at 1,000 targets that was about 240 MiB RSS
    /// instead of 169 MiB (docs/scaling.md).
    #[tokio::test]
    async fn a_landed_collection_is_not_kept_by_the_target() {
        // A loopback port nothing listens on: the collection fails at once and lands as down.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
        let addr = format!("127.0.0.1:{port}");
        let flags = ["tenderly-exporter", "--redis.addr", &addr, "--no-collector.tenderly.keys"];
        let cli = crate::cli::Cli::try_parse_from(flags).expect("valid flags");
        let scraper = Scraper::new(&Config::from_cli(&cli, &NoEnv).expect("valid config"));
        let name = scraper.loaded().targets.keys().next().expect("one target").clone();
        let out = scraper.scrape_one(&name, Instant::now() + Duration::from_secs(5)).await;
        let text = out.render().expect("renders");
        assert!(text.contains("redis_up 0"), "the probe answered: {text}");
        let runner = scraper.runner(&name).expect("the target");
        let slot = runner.flight.lock().unwrap_or_else(|p| p.into_inner());
        assert!(slot.is_none(), "the target still holds its landed collection");
        drop(slot);
        assert!(!scraper.collection_in_flight(&name));
    }
}
