//! The Tenderly signals of one MongoDB target, run by the orchestrator after
//! the generic collector's scrape of the same target, over the same driver
//! client: the shipped and configured queries with the audit counters (only
//! where the node holds the data set, so a stepped-down primary does not count
//! audit events twice), and the security posture (every 5 minutes).

use std::time::Duration;

use mongodb::Client;
use tokio::time::Instant;

use super::mongo_posture::{self, MongoPosture};
use super::queries::{QueriesConfig, QueryRunner};
use super::{Cached, POSTURE_INTERVAL};
use crate::collectors::mongodb::Role;
use crate::metrics::Exposition;

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
        MongoSignals {
            target: target.to_string(),
            queries: config.clone().map(|c| QueryRunner::new(target, c)),
            config,
            posture: posture.then(|| Cached::new(POSTURE_INTERVAL)),
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
