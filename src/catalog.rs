//! The table of collectors, as mysqld_exporter's scraper map: each one's name
//! (the value of the `collector` label on `tenderly_exporter_collector_success`
//! and friends), the kind of target it runs on, the flag that switches it,
//! whether it is on by default, and on which roles it runs. The orchestrator,
//! `doctor`, the metrics reference and the tests read names from here instead
//! of spelling them.

use crate::collectors::{mongodb, redis};
use crate::config::TargetKind;
use crate::metrics::Desc;
use crate::tenderly;

/// One collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collector {
    /// The `collector` label value.
    pub name: &'static str,
    /// The kind of target it runs on (`None`: any kind, or none: the exporter itself, its host).
    pub kind: Option<TargetKind>,
    /// The flag pair that switches it (`--collector.X` / `--no-collector.X`), if any.
    pub flag: Option<&'static str>,
    /// Whether it runs without a flag or config entry.
    pub default_on: bool,
    /// Where it runs (roles, and what it needs).
    pub runs_on: &'static str,
    /// Whether its runs are reported in `tenderly_exporter_collector_success`.
    pub reports_success: bool,
}

const fn row(
    name: &'static str,
    kind: Option<TargetKind>,
    flag: Option<&'static str>,
    default_on: bool,
    runs_on: &'static str,
    reports_success: bool,
) -> Collector {
    Collector { name, kind, flag, default_on, runs_on, reports_success }
}

const REDIS: Option<TargetKind> = Some(TargetKind::Redis);
const MONGO: Option<TargetKind> = Some(TargetKind::Mongodb);

/// Every collector, generic ones first, then the Tenderly layer, then the exporter's own.
pub const COLLECTORS: &[Collector] = &[
    row(redis::COLLECTOR, REDIS, None, true, "every Redis (INFO ALL; CONFIG GET, SLOWLOG, LATENCY when allowed)", true),
    row(
        redis::sentinel::COLLECTOR,
        REDIS,
        None,
        true,
        "Redis Sentinel targets (INFO, SENTINEL MASTERS/SENTINELS/REPLICAS; in the redis run)",
        false,
    ),
    row(
        redis::clients::COLLECTOR,
        REDIS,
        Some("redis.clients-by-name"),
        true,
        "every Redis except Sentinels (CLIENT LIST at most once per interval; in the redis run)",
        false,
    ),
    row(
        redis::latency::COLLECTOR,
        REDIS,
        Some("redis.latency-histogram"),
        true,
        "Redis 7+ (LATENCY HISTOGRAM; in the redis run)",
        false,
    ),
    row(mongodb::SERVER_STATUS, MONGO, None, true, "every MongoDB role (hello, serverStatus)", true),
    row(mongodb::REPLSET, MONGO, Some("mongodb.replset"), true, "replica-set members except arbiters", true),
    row(mongodb::OPLOG, MONGO, Some("mongodb.oplog"), true, "replica-set members except arbiters", true),
    row(mongodb::CURRENTOP, MONGO, Some("mongodb.currentop"), true, "every role except arbiters", true),
    row(mongodb::DBSTATS, MONGO, Some("mongodb.dbstats"), true, "every role except arbiters", true),
    row(mongodb::PROFILER, MONGO, Some("mongodb.profiler"), true, "mongod except arbiters (not mongos)", true),
    row(mongodb::TOP, MONGO, Some("mongodb.top"), false, "mongod except arbiters (not mongos)", true),
    row(mongodb::COLLSTATS, MONGO, Some("mongodb.collstats"), false, "every role except arbiters", true),
    row(mongodb::INDEXSTATS, MONGO, Some("mongodb.indexstats"), false, "every role except arbiters", true),
    row(tenderly::keys::COLLECTOR, REDIS, Some("tenderly.keys"), true, "Redis targets (replica when configured)", true),
    row(
        tenderly::queries::COLLECTOR,
        MONGO,
        None,
        false,
        "MongoDB targets with a tenderly: section or --tenderly.app-database",
        true,
    ),
    row(tenderly::posture::COLLECTOR, None, Some("tenderly.posture"), true, "every target, every 5 minutes", false),
    row(tenderly::backups::COLLECTOR, None, None, false, "the exporter's host (backups: in the config file)", false),
    row(
        tenderly::drift::COLLECTOR,
        None,
        None,
        true,
        "every target: config drift; MongoDB with a tenderly: section: required indexes; mongod: FCV",
        false,
    ),
    row(EXPORTER, None, None, true, "the exporter itself", false),
];

/// The exporter's own families (`tenderly_exporter_*`, `process_*`).
pub const EXPORTER: &str = "exporter";

/// The table row of `name`.
pub fn collector(name: &str) -> Option<&'static Collector> {
    COLLECTORS.iter().find(|c| c.name == name)
}

/// Every metric family with the collector that emits it, in table order.
/// `docs/metrics.md` is rendered from this list by `tests/it/metrics_doc.rs`.
pub fn metric_catalog() -> Vec<(&'static str, &'static Desc)> {
    let groups: Vec<(&'static str, Vec<&'static Desc>)> = vec![
        (redis::COLLECTOR, redis::encode::descriptors()),
        (redis::sentinel::COLLECTOR, redis::sentinel::descriptors()),
        (redis::clients::COLLECTOR, redis::clients::descriptors()),
        (redis::latency::COLLECTOR, redis::latency::descriptors()),
        (
            mongodb::SERVER_STATUS,
            std::iter::once(&mongodb::encode::UP).chain(mongodb::server_status::descriptors()).collect(),
        ),
        (mongodb::REPLSET, mongodb::replset::descriptors()),
        (mongodb::OPLOG, mongodb::oplog::descriptors()),
        (mongodb::CURRENTOP, mongodb::current_op::descriptors()),
        (mongodb::DBSTATS, mongodb::dbstats::descriptors()),
        (mongodb::PROFILER, mongodb::profile::descriptors()),
        (mongodb::COLLSTATS, mongodb::collstats::descriptors()),
        (tenderly::keys::COLLECTOR, tenderly::keys::KeyScanner::descriptors()),
        (tenderly::queries::COLLECTOR, tenderly::queries::descriptors()),
        (tenderly::posture::COLLECTOR, tenderly::posture::descriptors()),
        (tenderly::backups::COLLECTOR, tenderly::backups::descriptors()),
        (
            tenderly::drift::COLLECTOR,
            [tenderly::drift::descriptors(), tenderly::indexes::descriptors(), tenderly::mongo::descriptors()].concat(),
        ),
        (
            EXPORTER,
            crate::scrape::descriptors()
                .into_iter()
                .chain(crate::process::descriptors())
                .chain(crate::web_config::descriptors())
                .collect(),
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    for (collector, descs) in groups {
        for desc in descs {
            // `top`, `$collStats` and `$indexStats` share one module, not one switch.
            let collector = match (collector, desc.name) {
                (mongodb::COLLSTATS, name) if name.starts_with("mongodb_top_") => mongodb::TOP,
                (mongodb::COLLSTATS, name) if name.starts_with("mongodb_index") => mongodb::INDEXSTATS,
                (c, _) => c,
            };
            if seen.insert(desc.name) {
                all.push((collector, desc));
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_family_has_a_listed_collector() {
        let mut names: Vec<&str> = COLLECTORS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COLLECTORS.len(), "a collector name is listed twice");
        for (name, desc) in metric_catalog() {
            assert!(collector(name).is_some(), "{} is emitted by {name}, which the table lacks", desc.name);
        }
    }

    #[test]
    fn flags_name_real_cli_switches() {
        let cli = include_str!("cli.rs");
        for c in COLLECTORS.iter().filter_map(|c| c.flag) {
            assert!(cli.contains(&format!("\"collector.{c}\"")), "--collector.{c} is not a flag");
            assert!(cli.contains(&format!("\"no-collector.{c}\"")), "--no-collector.{c} is not a flag");
        }
    }
}
