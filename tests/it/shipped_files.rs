//! The shipped files tell one story: `deploy/prometheus.yml`,
//! `examples/targets.yml`, the alert rules, `deploy/alertmanager.yml`, the
//! systemd unit, the demo's generated configuration and the README agree.
//!
//! * every name Prometheus probes (`__param_target`, `params.target`) is a
//!   target of the example config, of the job's kind, and not `default: true`
//!   (a probed default target is stored twice and pages twice);
//! * every example target is scraped exactly one way (default or probed), and
//!   each probe's `instance` is that target's address;
//! * every job Prometheus defines is watched by an `up`-based alert;
//! * the systemd unit runs the example config and hands it every secret file;
//! * the demo's generated targets and Prometheus config use the same names;
//! * `--check-config.structure` accepts examples/targets.yml before its secrets exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_norway::Value as Yaml;
use tenderly_exporter::config::{parse_file_full, Env, ProcessEnv, StructureOnly, Target, TargetKind};

use super::dashboards::{alert_exprs, root};

/// One probed name: the job, the `instance` (static target) and the target name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Probe {
    job: String,
    instance: String,
    target: String,
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn seq(v: &Yaml) -> &[Yaml] {
    v.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

/// Job names and the probes of every `/probe` job of a Prometheus config.
fn prometheus_jobs(doc: &Yaml) -> (Vec<String>, Vec<Probe>) {
    let mut jobs = Vec::new();
    let mut probes = Vec::new();
    for job in seq(&doc["scrape_configs"]) {
        let name = job["job_name"].as_str().expect("every job has a job_name").to_string();
        jobs.push(name.clone());
        if job["metrics_path"].as_str() != Some("/probe") {
            continue;
        }
        // params: {target: [NAME]} applies to every static target of the job.
        let job_param = seq(&job["params"]["target"]).first().and_then(Yaml::as_str).map(str::to_string);
        // A relabel rule that sets __param_target to a fixed name.
        let relabelled = seq(&job["relabel_configs"])
            .iter()
            .find(|r| r["target_label"].as_str() == Some("__param_target") && r["source_labels"].is_null())
            .and_then(|r| r["replacement"].as_str())
            .map(str::to_string);
        for static_config in seq(&job["static_configs"]) {
            let label = static_config["labels"]["__param_target"].as_str().map(str::to_string);
            let target = label.or_else(|| relabelled.clone()).or_else(|| job_param.clone()).unwrap_or_else(|| {
                panic!("probe job {name}: a static config without a target name (__param_target or params.target)")
            });
            for instance in seq(&static_config["targets"]) {
                let instance = instance.as_str().expect("a static target is a string").to_string();
                probes.push(Probe { job: name.clone(), instance, target: target.clone() });
            }
        }
    }
    (jobs, probes)
}

/// `host:port` of a target's credential-free address.
fn host_port(target: &Target) -> String {
    let address = target.display_address();
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    rest.split(['/', '?', ',']).next().unwrap_or(rest).to_string()
}

fn kind_of_job(job: &str) -> Option<TargetKind> {
    match job {
        "tenderly-redis" => Some(TargetKind::Redis),
        "tenderly-mongodb" => Some(TargetKind::Mongodb),
        _ => None,
    }
}

/// Job matchers of every `up{...} == 0` (or `up == 0`) alert: `None` matches every job.
fn up_alert_job_matchers() -> Vec<(String, Option<String>)> {
    let mut matchers = Vec::new();
    for (alert, expr) in alert_exprs() {
        let compact: String = expr.split_whitespace().collect();
        let mut rest = compact.as_str();
        while let Some(at) = rest.find("up") {
            let before = &compact[..compact.len() - rest.len() + at];
            let after = &rest[at + 2..];
            rest = after;
            let word_start = !before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if !word_start || !compact.contains("==0") {
                continue;
            }
            if after.starts_with("==0") {
                matchers.push((alert.clone(), None));
            } else if let Some(selector) = after.strip_prefix('{').and_then(|s| s.split('}').next()) {
                for m in selector.split(',') {
                    if let Some(v) = m.strip_prefix("job=~").or_else(|| m.strip_prefix("job=")) {
                        matchers.push((alert.clone(), Some(v.trim_matches('"').to_string())));
                    }
                }
            }
        }
    }
    matchers
}

/// Whether a PromQL label matcher value (exact or `a|b` regex alternatives) matches `job`.
fn job_matches(pattern: &str, job: &str) -> bool {
    pattern == job || pattern.split('|').any(|alt| alt == job) || pattern == ".*" || pattern == ".+"
}

fn example_targets() -> (Vec<Target>, Vec<String>) {
    let path = root().join("examples/targets.yml");
    let text = std::fs::read_to_string(&path).expect("examples/targets.yml");
    let env = StructureOnly::new(&ProcessEnv);
    let (targets, _) = parse_file_full(&text, &path, &env).expect("examples/targets.yml is structurally valid");
    (targets, env.findings())
}

/// The agreement checks shared by the shipped files and the demo's generated ones.
fn check_agreement(what: &str, targets: &[Target], prometheus: &Yaml, problems: &mut Vec<String>) {
    let (jobs, probes) = prometheus_jobs(prometheus);
    let by_name: BTreeMap<&str, &Target> = targets.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut probed = BTreeSet::new();
    for p in &probes {
        probed.insert(p.target.clone());
        match by_name.get(p.target.as_str()) {
            None => problems.push(format!(
                "{what}: job {} probes target {:?}, which the config does not define (the exporter answers 400)",
                p.job, p.target
            )),
            Some(t) => {
                if t.default {
                    problems.push(format!(
                        "{what}: target {} is probed by job {} and also `default: true`: its series are stored twice",
                        t.name, p.job
                    ));
                }
                if kind_of_job(&p.job).is_some_and(|k| k != t.kind()) {
                    problems.push(format!("{what}: job {} probes {}, a {:?} target", p.job, t.name, t.kind()));
                }
                if host_port(t) != p.instance {
                    problems.push(format!(
                        "{what}: job {} labels target {} instance {}, but its address is {}",
                        p.job,
                        t.name,
                        p.instance,
                        host_port(t)
                    ));
                }
            }
        }
    }
    for t in targets {
        if !t.default && !probed.contains(&t.name) {
            problems.push(format!("{what}: target {} is neither default nor probed: nothing scrapes it", t.name));
        }
    }
    let matchers = up_alert_job_matchers();
    for job in &jobs {
        let watched = matchers.iter().any(|(_, m)| m.as_deref().is_none_or(|m| job_matches(m, job)));
        if !watched {
            problems.push(format!("{what}: no `up`-based alert watches job {job} (alerts/*.rules.yml)"));
        }
    }
}

#[test]
fn prometheus_config_and_example_targets_agree() {
    let (targets, _) = example_targets();
    let prometheus = yaml(&root().join("deploy/prometheus.yml"));
    let mut problems = Vec::new();
    check_agreement("deploy/prometheus.yml + examples/targets.yml", &targets, &prometheus, &mut problems);
    let (_, probes) = prometheus_jobs(&prometheus);
    assert!(probes.len() >= 3, "deploy/prometheus.yml probes {probes:?}");
    assert!(problems.is_empty(), "the shipped files disagree:\n  {}", problems.join("\n  "));
}

#[test]
fn the_agreement_check_catches_the_old_disagreements() {
    // What shipped before: the example named its MongoDB tenderly-mongo-1 and made
    // both targets default, while Prometheus probed tenderly-mongodb and sessions-redis.
    let (targets, _) = example_targets();
    let mut old = targets.clone();
    for t in &mut old {
        if t.name == "tenderly-mongodb" {
            t.name = "tenderly-mongo-1".into();
        }
        if t.name == "sessions-redis" {
            t.default = true;
        }
    }
    let prometheus = yaml(&root().join("deploy/prometheus.yml"));
    let mut problems = Vec::new();
    check_agreement("old", &old, &prometheus, &mut problems);
    let text = problems.join("\n");
    assert!(text.contains("probes target \"tenderly-mongodb\", which the config does not define"), "{text}");
    assert!(text.contains("sessions-redis is probed by job tenderly-redis and also `default: true`"), "{text}");
    // A job no alert watches.
    let mut unwatched = prometheus.clone();
    let extra: Yaml =
        serde_norway::from_str("{job_name: tenderly-extra, static_configs: [{targets: ['h:1']}]}").expect("job yaml");
    unwatched["scrape_configs"].as_sequence_mut().expect("jobs").push(extra);
    let mut problems = Vec::new();
    check_agreement("extra job", &targets, &unwatched, &mut problems);
    assert!(problems.iter().any(|p| p.contains("no `up`-based alert watches job tenderly-extra")), "{problems:?}");
}

#[test]
fn systemd_unit_runs_the_example_config_with_every_secret() {
    let unit = std::fs::read_to_string(root().join("deploy/tenderly-exporter.service")).expect("unit");
    assert!(unit.contains("--config.file=/etc/tenderly-exporter/targets.yml"), "the unit must run the example config");
    assert!(!unit.contains("--redis.addr") && !unit.contains("--mongodb.uri"), "no second set of targets in the unit");
    let credentials: BTreeSet<&str> =
        unit.lines().filter_map(|l| l.strip_prefix("LoadCredential=")).filter_map(|l| l.split(':').next()).collect();
    let text = std::fs::read_to_string(root().join("examples/targets.yml")).expect("examples/targets.yml");
    let files: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("password_file:"))
        .map(|v| v.split('#').next().unwrap_or_default().trim())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        let name = file
            .strip_prefix("/run/credentials/tenderly-exporter.service/")
            .unwrap_or_else(|| panic!("{file} is not in the unit's credentials directory"));
        assert!(credentials.contains(name), "the unit has no LoadCredential={name}: (has {credentials:?})");
    }
}

#[test]
fn alertmanager_inhibitions_name_shipped_alerts() {
    let doc = yaml(&root().join("deploy/alertmanager.yml"));
    let names: BTreeSet<String> = alert_exprs().into_iter().map(|(name, _)| name).collect();
    for rule in seq(&doc["inhibit_rules"]) {
        for matcher in seq(&rule["source_matchers"]).iter().filter_map(Yaml::as_str) {
            if let Some(name) = matcher.strip_prefix("alertname = ") {
                assert!(names.contains(name.trim_matches('"')), "inhibition source {name} is not a shipped alert");
            }
        }
    }
}

fn demo(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(root().join("scripts/demo.sh"))
        .args(args)
        .env("TMPDIR", std::env::temp_dir())
        .output()
        .expect("run scripts/demo.sh");
    assert!(out.status.success(), "demo.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn demo_configuration_tells_the_same_story() {
    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }
    let targets_yml = demo(&["--print-config", "targets"]);
    let env = StructureOnly::new(&NoEnv);
    let (targets, _) = parse_file_full(&targets_yml, Path::new("demo targets.yml"), &env).expect("demo targets parse");
    let prometheus: Yaml = serde_norway::from_str(&demo(&["--print-config", "prometheus"])).expect("demo prometheus");
    let mut problems = Vec::new();
    check_agreement("scripts/demo.sh", &targets, &prometheus, &mut problems);
    assert!(problems.is_empty(), "the demo's generated files disagree:\n  {}", problems.join("\n  "));
    // The same names as the example.
    let (example, _) = example_targets();
    let names = |ts: &[Target]| ts.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&targets), names(&example), "the demo's targets are the example's");
}

#[test]
fn readme_lists_the_alerts_the_demo_fires_on_purpose() {
    let listed = demo_alerts();
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = readme.split("<!-- demo-alerts -->").nth(1).expect("README has a <!-- demo-alerts --> list");
    let in_readme: Vec<String> = section
        .lines()
        .take_while(|l| !l.starts_with("<!--"))
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert_eq!(in_readme, listed, "README's demo alert list and scripts/demo.sh --print-alerts differ");
    // Each README row states the rule's for:.
    for (alert, expr_for) in listed.iter().map(|a| (a, rule_for(a))) {
        let row = section.lines().find(|l| l.starts_with(&format!("| `{alert}`"))).expect("row");
        assert!(row.contains(&format!("`{expr_for}`")), "README row for {alert} lacks its for: {expr_for}: {row}");
    }
}

/// The alert names `scripts/demo.sh --print-alerts` lists, in order.
pub fn demo_alerts() -> Vec<String> {
    demo(&["--print-alerts"])
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The `for:` of a shipped alert.
fn rule_for(alert: &str) -> String {
    for path in super::dashboards::rule_files() {
        let doc = yaml(&path);
        for group in seq(&doc["groups"]) {
            for rule in seq(&group["rules"]) {
                if rule["alert"].as_str() == Some(alert) {
                    return rule["for"].as_str().unwrap_or("0s").to_string();
                }
            }
        }
    }
    panic!("no alert {alert}");
}

#[test]
fn check_config_structure_accepts_the_example_before_its_secrets_exist() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"))
        .args(["--config.file", &root().join("examples/targets.yml").display().to_string(), "--check-config.structure"])
        .env_remove("REDIS_PASSWORD")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("configuration structure OK: 3 target(s)"), "{stdout}");
    // Each missing secret file is its own finding (none exists on a test machine).
    let (_, findings) = example_targets();
    let missing: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("missing:")).collect();
    assert_eq!(missing.len(), findings.len(), "{stdout}");
    for file in ["redis-password", "redis-replica-password", "mongodb-password"] {
        let path = format!("/run/credentials/tenderly-exporter.service/{file}");
        if !Path::new(&path).exists() {
            assert!(missing.iter().any(|l| l.contains(&path)), "no finding for {path}: {stdout}");
        }
    }
    // The full check reads the secrets and fails on the first missing one.
    let out = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"))
        .args(["--config.file", &root().join("examples/targets.yml").display().to_string(), "--check-config"])
        .output()
        .expect("run");
    if !Path::new("/run/credentials/tenderly-exporter.service/redis-password").exists() {
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    }
}
