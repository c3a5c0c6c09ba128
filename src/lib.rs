//! tenderly-exporter: Prometheus metrics for the Tenderly platform's Redis and
//! MongoDB. The binary (`main.rs`) is a thin edge around this library so the
//! integration tests drive the same code paths (server on port 0, collectors
//! against live servers) without spawning processes.

pub mod build_info;
pub mod catalog;
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
    catalog::metric_catalog().into_iter().map(|(_, desc)| desc).collect()
}

pub use catalog::metric_catalog;
