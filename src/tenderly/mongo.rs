//! The Tenderly signals of one MongoDB target, run by the orchestrator after
//! the generic collector's scrape of the same target, over the same driver
//! client: the shipped and configured queries with the audit counters (only
//! where the node holds the data set, so a stepped-down primary does not count
//! audit events twice), and the security posture (every 5 minutes).

use std::time::Duration;

use mongodb::Client;
use tokio::time::Instant;

use super::drift::{self, MongoDriftPolicy};
use super::indexes::{self, IndexReport, RequiredIndex};
use super::mongo_posture::{self, MongoPosture};
use super::queries::{QueriesConfig, QueryRunner};
use super::{Cached, POSTURE_INTERVAL};
use crate::collectors::mongodb::{MongoSnapshot, Role};
use crate::metrics::{Desc, Exposition};

/// The feature compatibility version next to the server's own major.minor, so
/// an alert can see an upgrade that left it behind.
pub const FCV_INFO: Desc = Desc::gauge(
    "mongodb_feature_compatibility_version_info",
    "Constant 1 labelled with the featureCompatibilityVersion (getParameter) and the server's major.minor version (serverStatus); they differ after an upgrade that was not finished with setFeatureCompatibilityVersion.",
)
.labels(&["target", "version", "server_version"]);

/// How often the feature compatibility version is read (it changes only by an operator's command).
const FCV_INTERVAL: Duration = Duration::from_secs(300);

/// Every descriptor this module emits.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&FCV_INFO]
}

/// Outcome of the queries' run within one scrape (the `tenderly_queries` collector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueriesRun {
    /// Every query answered.
    pub success: bool,
    pub duration: Duration,
}

/// The state the Tenderly signals keep between scrapes of one MongoDB target.
pub struct MongoSignals {
    target: String,
    config: Option<QueriesConfig>,
    queries: Option<QueryRunner>,
    /// The last posture reading, when posture checks are on.
    posture: Option<Cached<MongoPosture>>,
    /// Required indexes on the app database and the last reading.
    indexes: Option<(String, Vec<RequiredIndex>, Cached<IndexReport>)>,
    /// The drift policy (when a `tenderly:` section is configured).
    drift: Option<MongoDriftPolicy>,
    /// The last featureCompatibilityVersion reading (`None`: not readable, e.g. mongos).
    fcv: Cached<Option<String>>,
}

impl std::fmt::Debug for MongoSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSignals")
            .field("target", &self.target)
            .field("queries", &self.queries.is_some())
            .field("posture", &self.posture.is_some())
            .finish()
    }
}

impl MongoSignals {
    /// `config`: the target's `tenderly:` section (queries, audit, posture
    /// switch); `posture`: whether posture checks are on for this target.
    pub fn new(target: &str, config: Option<QueriesConfig>, posture: bool) -> Self {
        let posture = posture && config.as_ref().is_none_or(|c| c.posture);
        let indexes = config.as_ref().and_then(|c| {
            let db = c.app_database.clone()?;
            let required = c.effective_required_indexes();
            (!required.is_empty()).then(|| (db, required, Cached::new(c.index_interval())))
        });
        MongoSignals {
            target: target.to_string(),
            queries: config.clone().map(|c| QueryRunner::new(target, c)),
            drift: config.as_ref().map(|c| c.drift.clone()),
            config,
            posture: posture.then(|| Cached::new(POSTURE_INTERVAL)),
            indexes,
            fcv: Cached::new(FCV_INTERVAL),
        }
    }

    /// The app database and one collection the required-index check reads (for `doctor`).
    pub fn required_index_probe(&self) -> Option<(&str, &str)> {
        self.indexes.as_ref().and_then(|(db, required, _)| Some((db.as_str(), required.first()?.collection.as_str())))
    }

    /// The DBA guide's checks that need the generic scrape's `snapshot`:
    /// required indexes (`listIndexes`, cached, where the node holds the data
    /// set), the profiling-level drift (no command: the profiler collector's
    /// reading) and the feature compatibility version (`getParameter`, cached).
    /// Every command runs under `deadline`.
    pub async fn run_dba_checks(
        &self,
        client: &Client,
        snapshot: &MongoSnapshot,
        deadline: Instant,
        out: &mut Exposition,
    ) {
        let role = snapshot.node.role;
        if let Some(policy) = &self.drift {
            let levels: Vec<i64> = snapshot.profiler.iter().filter_map(|p| p.level()).collect();
            drift::encode_pairs(&self.target, &policy.evaluate(&levels), out);
        }
        if let Some((db, required, cache)) = &self.indexes {
            if matches!(role, Role::Primary | Role::Secondary | Role::Standalone | Role::Mongos) {
                let report =
                    cache.get_or_refresh(|| indexes::check(client, db, required, &self.target, deadline)).await;
                report.encode(&self.target, out);
            }
        }
        let server_version = snapshot
            .server_status
            .as_ref()
            .and_then(|s| s.version.as_deref())
            .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."));
        if role != Role::Mongos && role != Role::Arbiter {
            if let Some(server_version) = server_version {
                if let Some(fcv) = self.fcv.get_or_refresh(|| read_fcv(client, deadline)).await {
                    let labels = vec![
                        ("target", self.target.clone().into()),
                        ("version", fcv.into()),
                        ("server_version", server_version.into()),
                    ];
                    out.add(&FCV_INFO, labels, 1i64);
                }
            }
        }
    }

    /// Runs what applies to a node of `role` over `client` before `deadline`,
    /// writing into `out`. `None` when the queries did not run (none
    /// configured, or not on this role).
    pub async fn run(
        &self,
        client: &Client,
        role: Role,
        deadline: Instant,
        out: &mut Exposition,
    ) -> Option<QueriesRun> {
        let mut run = None;
        if let (Some(runner), Some(config)) = (&self.queries, &self.config) {
            if config.applies_to(role) {
                let started = Instant::now();
                let success = runner.run(client, deadline).await;
                runner.encode(out);
                run = Some(QueriesRun { success, duration: started.elapsed() });
            } else {
                // A stepped-down primary must not count audit events twice later.
                runner.standby();
            }
        }
        if let Some(cache) = &self.posture {
            let posture = cache.get_or_refresh(|| mongo_posture::check(client, deadline)).await;
            posture.encode(&self.target, out);
        }
        run
    }
}

/// `getParameter: featureCompatibilityVersion` on admin (the `clusterMonitor`
/// role has the action). `None` on any failure: mongos and arbiters have no FCV
/// to report, and an older server answers a plain string.
async fn read_fcv(client: &Client, deadline: Instant) -> Option<String> {
    let command = mongodb::bson::doc! {"getParameter": 1, "featureCompatibilityVersion": 1};
    let admin = client.database("admin");
    let reply = tokio::time::timeout_at(deadline, crate::collectors::mongodb::client::run_command(&admin, command))
        .await
        .ok()?
        .ok()?;
    parse_fcv(&reply)
}

/// The version from a getParameter reply: `{featureCompatibilityVersion: {version: "7.0"}}`
/// (3.6+) or a plain string; only short `[0-9.]` values are accepted (it becomes a label).
pub fn parse_fcv(reply: &mongodb::bson::Document) -> Option<String> {
    let value = reply.get("featureCompatibilityVersion")?;
    let version = match value {
        mongodb::bson::Bson::Document(d) => d.get_str("version").ok()?,
        mongodb::bson::Bson::String(s) => s.as_str(),
        _ => return None,
    };
    let ok = !version.is_empty() && version.len() <= 16 && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    ok.then(|| version.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn fcv_is_read_from_either_shape_and_bounded() {
        assert_eq!(
            parse_fcv(&doc! {"featureCompatibilityVersion": {"version": "7.0"}, "ok": 1.0}).as_deref(),
            Some("7.0")
        );
        assert_eq!(parse_fcv(&doc! {"featureCompatibilityVersion": "3.4"}).as_deref(), Some("3.4"));
        assert_eq!(parse_fcv(&doc! {"featureCompatibilityVersion": {"version": "7.0\"}"}}), None);
        assert_eq!(parse_fcv(&doc! {"ok": 0.0}), None);
    }
}
