//! tenderly-exporter: Prometheus metrics for the Tenderly platform's Redis and
//! MongoDB. The binary (`main.rs`) is a thin edge around this library so the
//! integration tests drive the same code paths (server on port 0, collectors
//! against live servers) without spawning processes.

pub mod collectors;
pub mod metrics;
