//! tenderly-exporter: Prometheus metrics for the Tenderly platform's Redis and
//! MongoDB. The binary (`main.rs`) is a thin edge around this library so the
//! integration tests drive the same code paths (server on port 0, collectors
//! against live servers) without spawning processes.

pub mod build_info;
pub mod cli;
pub mod collectors;
pub mod config;
pub mod discovery;
pub mod doctor;
pub mod duration;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod scrape;
pub mod secret;
pub mod server;
pub mod tenderly;
pub mod trust;
pub mod web_config;

/// Every metric family the exporter can emit, for documentation and for the
/// tests that check dashboards, alert rules and the docs against the code.
pub fn all_descriptors() -> Vec<&'static metrics::Desc> {
    metric_catalog().into_iter().map(|(_, desc)| desc).collect()
}

/// Every metric family with the collector that emits it (the `collector`
/// label value whose `tenderly_exporter_collector_success` covers it;
/// `exporter` for the exporter's own families). `docs/metrics.md` is rendered
/// from this list by `tests/it/metrics_doc.rs`.
pub fn metric_catalog() -> Vec<(&'static str, &'static metrics::Desc)> {
    use collectors::{mongodb, redis};
    let groups: Vec<(&'static str, Vec<&'static metrics::Desc>)> = vec![
        ("exporter", scrape::descriptors().into_iter().chain(process::descriptors()).collect()),
        ("redis", redis::encode::descriptors()),
        ("mongodb", std::iter::once(&mongodb::encode::UP).chain(mongodb::server_status::descriptors()).collect()),
        ("mongodb_replset", mongodb::replset::descriptors()),
        ("mongodb_oplog", mongodb::oplog::descriptors()),
        ("mongodb_currentop", mongodb::current_op::descriptors()),
        ("mongodb_dbstats", mongodb::dbstats::descriptors()),
        ("mongodb_profiler", mongodb::profile::descriptors()),
        ("mongodb_collstats", mongodb::collstats::descriptors()),
        ("tenderly_keys", tenderly::keys::KeyScanner::descriptors()),
        ("tenderly_posture", tenderly::redis_posture::descriptors()),
        ("tenderly_queries", tenderly::queries::descriptors()),
        ("tenderly_backups", tenderly::backups::descriptors()),
    ];
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    for (collector, descs) in groups {
        for desc in descs {
            // `top`, `$collStats` and `$indexStats` share one module, not one switch.
            let collector = match (collector, desc.name) {
                ("mongodb_collstats", name) if name.starts_with("mongodb_top_") => "mongodb_top",
                ("mongodb_collstats", name) if name.starts_with("mongodb_index") => "mongodb_indexstats",
                (c, _) => c,
            };
            if seen.insert(desc.name) {
                all.push((collector, desc));
            }
        }
    }
    all
}
