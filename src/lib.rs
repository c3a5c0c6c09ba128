//! tenderly-exporter: Prometheus metrics for the Tenderly platform's Redis and
//! MongoDB. The binary (`main.rs`) is a thin edge around this library so the
//! integration tests drive the same code paths (server on port 0, collectors
//! against live servers) without spawning processes.

pub mod cli;
pub mod collectors;
pub mod config;
pub mod discovery;
pub mod doctor;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod scrape;
pub mod server;
pub mod trust;
pub mod web_config;

/// Every metric family the exporter can emit, for documentation and for the
/// tests that check dashboards, alert rules and the README against the code.
pub fn all_descriptors() -> Vec<&'static metrics::Desc> {
    let mut all = collectors::redis::encode::descriptors();
    all.extend(collectors::mongodb::encode::descriptors());
    all.extend(collectors::tenderly::keys::KeyScanner::descriptors());
    all.extend(collectors::tenderly::redis_posture::descriptors());
    all.extend(collectors::tenderly::queries::descriptors());
    all.extend(collectors::tenderly::backups::descriptors());
    all.extend(scrape::descriptors());
    all.extend(process::descriptors());
    all
}
