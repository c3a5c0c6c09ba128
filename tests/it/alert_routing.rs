//! deploy/alertmanager.yml routes security alerts (PII, posture,
//! authentication, MFA) to the `security` receiver and still pages or chats
//! by severity, checked with the real `amtool config routes test`; and a down
//! target inhibits its drift, certificate and required-index alerts.

use std::path::PathBuf;
use std::process::Command;

use serde_norway::Value as Yaml;

/// Alerts the security team must see, as named in the rule files.
const SECURITY_ALERTS: [&str; 8] = [
    "TenderlyPlaintextPiiDetected",
    "TenderlySecurityCheckFailing",
    "TenderlySecurityCheckUnknown",
    "TenderlyAuthFailureSpike",
    "TenderlyAccountLockoutsRising",
    "TenderlyFailedLoginsSpike",
    "TenderlyAdminsWithoutMfa",
    "RedisAuthFailures",
];

/// Alerts a down target must not fire alongside RedisDown / MongodbDown.
const INHIBITED_WHEN_DOWN: [&str; 3] =
    ["TenderlyConfigDrift", "TenderlyTlsCertificateExpiringSoon", "TenderlyRequiredIndexMissing"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// alert name -> severity, from every alerts/*.rules.yml.
fn severities() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("alerts")).expect("alerts/").flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".rules.yml") {
            continue;
        }
        let doc: Yaml = serde_norway::from_str(&std::fs::read_to_string(&path).expect("read")).expect("YAML");
        for group in doc["groups"].as_sequence().into_iter().flatten() {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                if let (Some(name), Some(severity)) = (rule["alert"].as_str(), rule["labels"]["severity"].as_str()) {
                    out.push((name.to_owned(), severity.to_owned()));
                }
            }
        }
    }
    out
}

/// The receivers `amtool config routes test` picks for these labels.
fn routes(amtool: &std::path::Path, labels: &[String]) -> String {
    let out = Command::new(amtool)
        .args(["config", "routes", "test", "--config.file", "deploy/alertmanager.yml"])
        .args(labels)
        .current_dir(root())
        .output()
        .expect("amtool runs");
    assert!(out.status.success(), "amtool {labels:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn security_alerts_reach_the_security_receiver_and_still_page_or_chat() {
    let Some(amtool) = crate::support::process::require_tool("amtool", "prometheus-alertmanager") else { return };
    let all = severities();
    assert!(all.len() >= 50, "{} alerts found", all.len());
    for name in SECURITY_ALERTS {
        let (_, severity) =
            all.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} is not in alerts/*.rules.yml"));
        let pages = if severity == "critical" { "pager" } else { "chat" };
        let got = routes(&amtool, &[format!("alertname={name}"), format!("severity={severity}")]);
        assert_eq!(got, format!("security,{pages}"), "{name} ({severity})");
    }
    // Everything else follows severity only.
    for (name, severity) in all.iter().filter(|(n, _)| !SECURITY_ALERTS.contains(&n.as_str())) {
        let want = if severity == "critical" { "pager" } else { "chat" };
        let got = routes(&amtool, &[format!("alertname={name}"), format!("severity={severity}")]);
        assert_eq!(got, want, "{name} ({severity}) must not reach security");
    }
}

/// Whether Alertmanager's anchored `pattern` matches `name`, for the simple
/// patterns the shipped file uses (`A|B.+|C.*`); anything else fails the test.
fn anchored_match(pattern: &str, name: &str) -> bool {
    pattern.split('|').any(|alt| {
        let (literal, rest) = alt.split_at(alt.find(['.', '*', '+', '(', '[', '?']).unwrap_or(alt.len()));
        match rest {
            "" => name == literal,
            ".+" => name.len() > literal.len() && name.starts_with(literal),
            ".*" => name.starts_with(literal),
            other => panic!("pattern {pattern:?}: {other:?} is more than this test understands"),
        }
    })
}

#[test]
fn a_down_target_inhibits_its_drift_certificate_and_index_alerts() {
    let doc: Yaml = serde_norway::from_str(
        &std::fs::read_to_string(root().join("deploy/alertmanager.yml")).expect("deploy/alertmanager.yml"),
    )
    .expect("YAML");
    let rules = doc["inhibit_rules"].as_sequence().expect("inhibit_rules");
    for source in ["RedisDown", "MongodbDown"] {
        let rule = rules
            .iter()
            .find(|r| {
                r["source_matchers"]
                    .as_sequence()
                    .is_some_and(|m| m.iter().any(|m| m.as_str() == Some(&format!("alertname = {source}"))))
            })
            .unwrap_or_else(|| panic!("no inhibit rule with source {source}"));
        let equal: Vec<&str> = rule["equal"].as_sequence().expect("equal").iter().filter_map(Yaml::as_str).collect();
        assert_eq!(equal, ["job", "instance"], "{source}: same target only");
        let targets: Vec<&str> =
            rule["target_matchers"].as_sequence().expect("target_matchers").iter().filter_map(Yaml::as_str).collect();
        for alert in INHIBITED_WHEN_DOWN {
            let inhibited = targets.iter().all(|m| {
                if let Some(pattern) = m.strip_prefix("alertname =~ ") {
                    anchored_match(pattern.trim_matches('"'), alert)
                } else if let Some(other) = m.strip_prefix("alertname != ") {
                    other.trim_matches('"') != alert
                } else {
                    panic!("{source}: unexpected target matcher {m:?}")
                }
            });
            assert!(inhibited, "{source} does not inhibit {alert}: {targets:?}");
        }
    }
    assert!(anchored_match("Redis.+|Tenderly.+", "TenderlyConfigDrift"));
    assert!(!anchored_match("Redis.+|Tenderly.+", "MongodbDown"));
    assert!(!anchored_match("Tenderly.+", "Tenderly"));
}
