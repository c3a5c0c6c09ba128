//! `tenderly-exporter doctor`: connect to every configured target, run each
//! enabled collector once (the generic collectors, the Tenderly key scan, the
//! posture checks and the Tenderly MongoDB queries), and print per check OK or
//! the failure with the missing privilege and a paste-able grant that fixes
//! it. Existing exporters fail silently on missing privileges (series just
//! vanish); this makes the gap visible before the first page.
//!
//! Layout: [`run`] walks the targets; each kind has a list of checks, each an
//! async fn that writes its lines into a [`Report`]. A new check is one more
//! fn and one more call in [`check_redis`] or [`check_mongodb`].

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use crate::collectors::mongodb::client::{grant_for, MongoClient, SectionOutcome};
use crate::collectors::mongodb::Role;
use crate::collectors::redis::client::{acl_grant_for, RedisClient};
use crate::config::{Config, MongoTarget, RedisTarget, Target, TargetSpec};
use crate::tenderly::mongo::MongoSignals;
use crate::tenderly::redis_posture::{self, Outcome};
use crate::tenderly::{key_privileges, mongo_posture, posture, queries};

/// How long each target gets.
pub const DOCTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// The report being written, and whether every check passed so far.
#[derive(Debug, Default)]
pub struct Report {
    text: String,
    ok: bool,
}

impl Report {
    fn new() -> Self {
        Report { text: String::new(), ok: true }
    }

    /// The check passed.
    pub fn ok(&mut self, collector: &str, what: &str) {
        let _ = writeln!(self.text, "  OK   {collector}: {what}");
    }

    /// Not applicable (role, configuration).
    pub fn skip(&mut self, collector: &str, why: &str) {
        let _ = writeln!(self.text, "  SKIP {collector}: {why}");
    }

    /// A finding about the server that the exporter reports as intended (a
    /// failing posture check): not a failure of the exporter's access.
    pub fn finding(&mut self, collector: &str, what: &str) {
        let _ = writeln!(self.text, "  WARN {collector}: {what}");
    }

    /// The check failed; `fix`, when known, is a line to paste.
    pub fn fail(&mut self, collector: &str, why: &str, fix: Option<&str>) {
        self.ok = false;
        match fix {
            Some(fix) => {
                let _ = writeln!(self.text, "  FAIL {collector}: {why}\n       fix: {fix}");
            }
            None => {
                let _ = writeln!(self.text, "  FAIL {collector}: {why}");
            }
        }
    }

    fn heading(&mut self, line: &str) {
        let _ = writeln!(self.text, "{line}");
    }
}

/// Runs every target once; returns the report and whether everything passed.
pub async fn run(config: &Config) -> (String, bool) {
    let mut report = Report::new();
    if config.targets.is_empty() {
        report.heading("no targets configured (use --redis.addr, --mongodb.uri or --config.file)");
        return (report.text, false);
    }
    for target in &config.targets {
        let deadline = Instant::now() + target.timeout.unwrap_or(DOCTOR_TIMEOUT);
        report.heading(&format!("{} ({}) {}", target.name, target.kind().as_str(), target.display_address()));
        match &target.spec {
            TargetSpec::Redis(spec) => check_redis(target, spec, deadline, &mut report).await,
            TargetSpec::Mongodb(spec) => check_mongodb(target, spec, deadline, &mut report).await,
        }
    }
    if let Some(backups) = &config.backups {
        check_backups(backups, &mut report).await;
    }
    report.heading(if report.ok { "all checks passed" } else { "some checks failed" });
    (report.text, report.ok)
}

// ---- The exporter's host ------------------------------------------------------------

/// The backup sources (`backups:` in the config file): each kind readable and
/// holding at least one file of the minimum size.
async fn check_backups(config: &crate::tenderly::backups::BackupsConfig, report: &mut Report) {
    let collector = crate::tenderly::backups::COLLECTOR;
    report.heading("backups (on this host)");
    let deadline = Instant::now() + DOCTOR_TIMEOUT;
    let Some(snapshot) = crate::tenderly::backups::scan_with_deadline(config, deadline).await else {
        return report.fail(collector, "the backup directories could not be listed in time", None);
    };
    for kind in &snapshot.kinds {
        match (kind.scan_ok, kind.newest) {
            (false, _) => report.fail(
                collector,
                &format!("{}: a backup directory cannot be read", kind.kind),
                Some("let the exporter's user read the directory (systemd: ReadOnlyPaths=)"),
            ),
            (true, None) => report.finding(
                collector,
                &format!("{}: no backup file of the minimum size yet ({} too small)", kind.kind, kind.undersized),
            ),
            (true, Some(_)) => report.ok(collector, &format!("{}: {} file(s)", kind.kind, kind.files)),
        }
    }
}

// ---- Redis -------------------------------------------------------------------------

async fn check_redis(target: &Target, spec: &RedisTarget, deadline: Instant, report: &mut Report) {
    if !redis_collector(target, spec, deadline, report).await {
        // Nothing else can connect either; the failure above says why.
        return;
    }
    redis_key_scan(spec, deadline, report).await;
    redis_posture(target, spec, deadline, report).await;
}

/// The ACL user a grant names.
fn redis_user(spec: &RedisTarget) -> &str {
    spec.username.as_deref().unwrap_or("default")
}

/// INFO and the pipelined scrape; each refused command with its ACL rule.
async fn redis_collector(target: &Target, spec: &RedisTarget, deadline: Instant, report: &mut Report) -> bool {
    let collector = crate::collectors::redis::COLLECTOR;
    let client = RedisClient::new(&target.name, spec.connection.clone());
    match client.scrape(deadline).await {
        Err(e) => {
            let hint = e.is_auth().then(|| target.credential_hint());
            report.fail(collector, &e.to_string(), hint.as_deref());
            false
        }
        Ok(_) => {
            report.ok(collector, "INFO and the pipelined scrape");
            let user = redis_user(spec);
            for command in client.refused_commands() {
                let fix = format!("ACL SETUSER {user} {}", acl_grant_for(command));
                report.fail(collector, &format!("{command} refused"), Some(&fix));
            }
            true
        }
    }
}

/// The Tenderly key scan: SCAN, PTTL and MEMORY USAGE on the server it reads.
async fn redis_key_scan(spec: &RedisTarget, deadline: Instant, report: &mut Report) {
    let collector = crate::tenderly::keys::COLLECTOR;
    let Some(keys) = &spec.key_families else {
        report.skip(collector, "key scan disabled for this target");
        return;
    };
    match key_privileges::probe(&spec.connection, keys, deadline).await {
        Err(e) => report.fail(collector, &format!("key scan: {e}"), None),
        Ok(refused) if refused.is_empty() => report.ok(collector, "key scan (SCAN, PTTL, MEMORY USAGE)"),
        Ok(refused) => {
            let commands: Vec<&str> = refused.iter().map(|r| r.command).collect();
            let grants: Vec<&str> = refused.iter().map(|r| r.grant).collect();
            let fix = format!("ACL SETUSER {} {}", redis_user(spec), grants.join(" "));
            report.fail(
                collector,
                &format!("key scan: {} refused; the running exporter would disable the key scan", commands.join(", ")),
                Some(&fix),
            );
        }
    }
}

/// The posture checks: a failing check is a finding; one that cannot be
/// evaluated is a missing privilege (or a renamed CONFIG).
async fn redis_posture(target: &Target, spec: &RedisTarget, deadline: Instant, report: &mut Report) {
    let collector = posture::COLLECTOR;
    let Some(options) = &spec.posture else {
        report.skip(collector, "posture checks disabled for this target");
        return;
    };
    let result = redis_posture::check_with(&target.name, &spec.connection, options, deadline).await;
    let mut unknown = Vec::new();
    for (check, outcome) in &result.checks {
        match outcome {
            Outcome::Pass => report.ok(collector, check),
            Outcome::Fail if *check == redis_posture::DANGEROUS_COMMANDS_DISABLED => report.finding(
                collector,
                &format!(
                    "{check} fails: {} still available (rename them as the DBA guide's redis.conf does)",
                    result.dangerous_available.join(", ").to_uppercase()
                ),
            ),
            Outcome::Fail => report.finding(collector, &format!("{check} fails")),
            Outcome::NotEvaluated => unknown.push(*check),
        }
    }
    if !unknown.is_empty() {
        let fix = format!(
            "ACL SETUSER {} +command|info +config|get (or set posture_options.config_command if CONFIG is renamed)",
            redis_user(spec)
        );
        report.fail(collector, &format!("not evaluated: {}", unknown.join(", ")), Some(&fix));
    }
}

// ---- MongoDB -----------------------------------------------------------------------

/// The grant for `command`, naming the target's user.
fn mongo_grant(spec: &MongoTarget, command: &str) -> String {
    let grant = grant_for(command);
    match &spec.username {
        Some(user) => grant.replace("\"tenderly-exporter\"", &format!("{user:?}")),
        None => grant.to_string(),
    }
}

async fn check_mongodb(target: &Target, spec: &MongoTarget, deadline: Instant, report: &mut Report) {
    let client = MongoClient::new(&target.name, spec.connection.clone());
    let Some(role) = mongo_collectors(target, spec, &client, deadline, report).await else { return };
    let driver = match client.client(deadline).await {
        Ok(driver) => driver,
        Err(e) => return report.fail("mongodb", &e.to_string(), None),
    };
    mongo_queries(target, spec, &driver, role, deadline, report).await;
    mongo_posture_checks(target, spec, &driver, deadline, report).await;
}

/// hello, serverStatus and every enabled generic collector; the node's role.
async fn mongo_collectors(
    target: &Target,
    spec: &MongoTarget,
    client: &MongoClient,
    deadline: Instant,
    report: &mut Report,
) -> Option<Role> {
    let scrape = match client.scrape(deadline).await {
        Ok(scrape) => scrape,
        Err(e) => {
            let fix = if e.is_auth() {
                Some(target.credential_hint())
            } else {
                e.unauthorized_command().map(|command| mongo_grant(spec, command))
            };
            report.fail("mongodb", &e.to_string(), fix.as_deref());
            return None;
        }
    };
    report.heading(&format!("  role: {}", scrape.snapshot.node.role.as_str()));
    for section in &scrape.sections {
        match &section.outcome {
            SectionOutcome::Ok => report.ok(section.collector, "ran"),
            SectionOutcome::Skipped(why) => report.skip(section.collector, why),
            SectionOutcome::Unauthorized { command, .. } => {
                report.fail(section.collector, &format!("{command} not authorized"), Some(&mongo_grant(spec, command)))
            }
            SectionOutcome::Failed(reason) => report.fail(section.collector, reason, None),
        }
    }
    Some(scrape.snapshot.node.role)
}

/// The Tenderly queries (find/aggregate on the app database), as the exporter
/// runs them after the scrape; each failing query by name.
async fn mongo_queries(
    target: &Target,
    spec: &MongoTarget,
    driver: &mongodb::Client,
    role: Role,
    deadline: Instant,
    report: &mut Report,
) {
    let collector = queries::COLLECTOR;
    let Some(config) = &spec.tenderly else {
        report.skip(collector, "no tenderly.app_database configured");
        return;
    };
    // Posture is checked on its own below.
    let signals = MongoSignals::new(&target.name, Some(config.clone()), false);
    let mut out = crate::metrics::Exposition::new();
    match signals.run(driver, role, deadline, &mut out).await {
        None => report.skip(collector, "not run on this role"),
        Some(run) if run.success => report.ok(collector, "every query on the app database"),
        Some(_) => {
            let failed = failed_queries(out);
            let database = config.app_database.as_deref().unwrap_or("<app database>");
            let user = spec.username.as_deref().unwrap_or("tenderly-exporter");
            let fix = format!(
                "db.getSiblingDB(\"admin\").grantRolesToUser({user:?}, [{{role: \"read\", db: {database:?}}}]) \
                 (see docs/mongodb-privileges.md)"
            );
            report.fail(collector, &format!("queries failed: {}", failed.join(", ")), Some(&fix));
        }
    }
    // Required indexes (tenderly_required_index): the listIndexes action on the app database.
    if let Some((db, collection)) = signals.required_index_probe() {
        match crate::tenderly::indexes::probe(driver, db, collection, deadline).await {
            Ok(()) => report.ok("tenderly_required_index", "listIndexes"),
            Err(e) => report.fail("tenderly_required_index", &e, None),
        }
    }
}

/// Names of the queries whose `tenderly_query_success` is 0.
fn failed_queries(out: crate::metrics::Exposition) -> Vec<String> {
    let text = out.render().unwrap_or_default();
    let mut failed: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("tenderly_query_success{") && l.ends_with(" 0"))
        .filter_map(|l| l.split("query=\"").nth(1).and_then(|rest| rest.split('"').next()))
        .map(str::to_string)
        .collect();
    failed.dedup();
    if failed.is_empty() {
        failed.push("(see tenderly_query_success)".to_string());
    }
    failed
}

/// getCmdLineOpts: failing checks are findings; refused means clusterMonitor is missing.
async fn mongo_posture_checks(
    target: &Target,
    spec: &MongoTarget,
    driver: &mongodb::Client,
    deadline: Instant,
    report: &mut Report,
) {
    let collector = posture::COLLECTOR;
    let enabled = spec.posture && spec.tenderly.as_ref().is_none_or(|c| c.posture);
    if !enabled {
        report.skip(collector, "posture checks disabled for this target");
        return;
    }
    let result = mongo_posture::check(driver, deadline).await;
    match result.not_evaluated {
        Some(mongo_posture::NotEvaluated::Unauthorized) => {
            report.fail(collector, "getCmdLineOpts not authorized", Some(&mongo_grant(spec, "getCmdLineOpts")))
        }
        Some(mongo_posture::NotEvaluated::Failed) => {
            report.fail(collector, &format!("getCmdLineOpts failed on {}", target.display_address()), None)
        }
        None => {
            for (check, outcome) in result.checks() {
                match outcome {
                    Some(true) => report.ok(collector, check),
                    Some(false) => report.finding(collector, &format!("{check} fails")),
                    None => report.fail(collector, &format!("{check} not evaluated"), None),
                }
            }
        }
    }
}
