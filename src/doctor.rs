//! `tenderly-exporter doctor`: connect to every configured target, run each
//! collector once, and print per collector OK or the failure with the missing
//! privilege and the exact grant that fixes it. Existing exporters fail
//! silently on missing privileges (series just vanish); this makes the gap
//! visible before the first page.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use crate::collectors::mongodb::client::{MongoClient, SectionOutcome};
use crate::collectors::redis::client::{acl_grant_for, RedisClient};
use crate::config::{Config, TargetSpec};
use crate::tenderly::mongo::MongoSignals;

/// How long each target gets.
pub const DOCTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every target once; returns the report and whether everything passed.
pub async fn run(config: &Config) -> (String, bool) {
    let mut report = String::new();
    let mut all_ok = true;
    if config.targets.is_empty() {
        report.push_str("no targets configured (use --redis.addr, --mongodb.uri or --config.file)\n");
        return (report, false);
    }
    for target in &config.targets {
        let deadline = Instant::now() + target.timeout.unwrap_or(DOCTOR_TIMEOUT);
        let _ = writeln!(report, "{} ({}) {}", target.name, target.kind().as_str(), target.display_address());
        let ok = match &target.spec {
            TargetSpec::Redis(spec) => {
                check_redis(RedisClient::new(&target.name, spec.connection.clone()), deadline, &mut report).await
            }
            TargetSpec::Mongodb(spec) => {
                let signals = MongoSignals::new(&target.name, spec.tenderly.clone(), spec.posture);
                let client = MongoClient::new(&target.name, spec.connection.clone());
                check_mongodb(client, &signals, deadline, &mut report).await
            }
        };
        all_ok &= ok;
    }
    let _ = writeln!(report, "{}", if all_ok { "all checks passed" } else { "some checks failed" });
    (report, all_ok)
}

async fn check_redis(client: RedisClient, deadline: Instant, report: &mut String) -> bool {
    match client.scrape(deadline).await {
        Err(e) => {
            let _ = writeln!(report, "  FAIL redis: {e}");
            false
        }
        Ok(_) => {
            let refused = client.refused_commands();
            let _ = writeln!(report, "  OK   redis: INFO and the pipelined scrape");
            let user = client.username().unwrap_or("default");
            for command in &refused {
                let _ = writeln!(
                    report,
                    "  FAIL redis: {command} refused; fix: ACL SETUSER {user} {}",
                    acl_grant_for(command)
                );
            }
            refused.is_empty()
        }
    }
}

async fn check_mongodb(client: MongoClient, signals: &MongoSignals, deadline: Instant, report: &mut String) -> bool {
    match client.scrape(deadline).await {
        Err(e) => {
            let _ = writeln!(report, "  FAIL mongodb: {e}");
            false
        }
        Ok(scrape) => {
            let _ = writeln!(report, "  role: {}", scrape.snapshot.node.role.as_str());
            let mut ok = true;
            for section in &scrape.sections {
                let line = match &section.outcome {
                    SectionOutcome::Ok => format!("  OK   {}", section.collector),
                    SectionOutcome::Skipped(why) => format!("  SKIP {}: {why}", section.collector),
                    SectionOutcome::Unauthorized { command, grant } => {
                        ok = false;
                        format!("  FAIL {}: {command} not authorized; fix: {grant}", section.collector)
                    }
                    SectionOutcome::Failed(reason) => {
                        ok = false;
                        format!("  FAIL {}: {reason}", section.collector)
                    }
                };
                let _ = writeln!(report, "{line}");
            }
            // The Tenderly queries, as the exporter runs them after the scrape.
            if let Ok(driver) = client.client(deadline).await {
                let mut out = crate::metrics::Exposition::new();
                match signals.run(&driver, scrape.snapshot.node.role, deadline, &mut out).await {
                    Some(run) if run.success => {
                        let _ = writeln!(report, "  OK   {}", crate::tenderly::queries::COLLECTOR);
                    }
                    Some(_) => {
                        ok = false;
                        let _ = writeln!(
                            report,
                            "  FAIL {}: one or more queries failed (see tenderly_query_success)",
                            crate::tenderly::queries::COLLECTOR
                        );
                    }
                    None => {}
                }
                // Required indexes (tenderly_required_index): the listIndexes action on the app database.
                if let Some((db, collection)) = signals.required_index_probe() {
                    let line = match crate::tenderly::indexes::probe(&driver, db, collection, deadline).await {
                        Ok(()) => "OK   tenderly_required_index: listIndexes".to_owned(),
                        Err(e) => format!("FAIL tenderly_required_index: {e}"),
                    };
                    ok &= line.starts_with("OK");
                    let _ = writeln!(report, "  {line}");
                }
            }
            ok
        }
    }
}
