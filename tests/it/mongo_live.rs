//! The MongoDB collector end to end: the real `mongodb` driver inside the
//! exporter talks to the wire-protocol replay server (recorded real documents,
//! `support::mongo_replay`), scraped through the exporter's HTTP server. Values
//! are checked against the fixtures' own numbers.
//!
//! With `MONGODB_TEST_URI` set, `real_server_*` tests run the same collector
//! against that server (a replica-set member or standalone) and check what can
//! be known without fixtures.

use std::process::Command;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, DateTime};

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::mongo_replay::{Fault, ReplayServer, Scenario, OPLOG_WINDOW_SECS, PRIMARY_DELAYED_MEMBER_SECS};
use crate::support::wait_until;

fn start(scenario: Scenario) -> (ReplayServer, TestExporter) {
    let replay = ReplayServer::start(scenario).expect("replay server starts");
    let exporter = TestExporter::start(&["--mongodb.uri", &replay.uri()], &[]);
    (replay, exporter)
}

fn sum(m: &Exposition, name: &str) -> f64 {
    m.samples.iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| *v).sum()
}

fn commands(replay: &ReplayServer) -> Vec<String> {
    replay.commands_seen().into_iter().map(|(c, db)| format!("{c}@{db}")).collect()
}

#[test]
fn primary_reports_fixture_lag_oplog_window_and_every_collector() {
    let (replay, exporter) = start(Scenario::Primary);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{}", m.text);
    // replSetGetStatus-primary-lagging-8.0.4: both secondaries' optimeDate is 1151 s behind the primary's.
    for member in ["mongo1:30001", "mongo3:30003"] {
        assert_eq!(
            m.expect("mongodb_replset_member_replication_lag_seconds", &[("set", "my-rs"), ("member", member)]),
            1151.0
        );
    }
    assert_eq!(m.expect("mongodb_replset_primary_present", &[("set", "my-rs")]), 1.0);
    assert_eq!(m.expect("mongodb_replset_my_state", &[]), 1.0);
    assert_eq!(
        m.expect("mongodb_replset_member_secondary_delay_seconds", &[("member", "mongo3:30003")]),
        PRIMARY_DELAYED_MEMBER_SECS as f64
    );
    assert_eq!(m.expect("mongodb_oplog_window_seconds", &[]), f64::from(OPLOG_WINDOW_SECS));
    assert_eq!(m.expect("mongodb_fs_total_bytes", &[]), 100.0 * 1024.0 * 1024.0 * 1024.0);
    assert_eq!(m.expect("mongodb_db_objects", &[("db", "tenderly")]), 250_000.0);
    // One scripted active operation has run 12 s (> 1 s threshold).
    assert_eq!(sum(&m, "mongodb_long_running_operations"), 1.0, "{}", m.text);
    assert!(m.expect("mongodb_oldest_operation_seconds", &[]) >= 12.0);
    assert!(m.value("mongodb_version_info", &[("version", "8.0.4")]).is_some(), "{}", m.text);
    for collector in
        ["mongodb", "mongodb_replset", "mongodb_oplog", "mongodb_currentop", "mongodb_dbstats", "mongodb_profiler"]
    {
        assert_eq!(
            m.expect("tenderly_exporter_collector_success", &[("target", "mongodb"), ("collector", collector)]),
            1.0,
            "{collector}"
        );
    }
    // Never a cursor left open, never a write.
    let seen = commands(&replay);
    assert!(!seen.iter().any(|c| c.starts_with("getMore") || c.starts_with("insert") || c.starts_with("update")));
}

#[test]
fn profiler_counts_each_document_once_across_scrapes() {
    let (replay, exporter) = start(Scenario::Primary);
    exporter.scrape("/metrics"); // the high-water mark starts at "now"
    let now = DateTime::now().timestamp_millis();
    let docs = (0..3)
        .map(|i| {
            doc! {"op": "query", "ns": "tenderly.consultations", "millis": 150 + i, "ts": DateTime::from_millis(now + 1000)}
        })
        .collect();
    replay.append_profile_docs("tenderly", docs);
    let first = exporter.scrape("/metrics");
    let labels = [("db", "tenderly"), ("op", "query")];
    assert_eq!(first.expect("mongodb_profiler_operations_total", &labels), 3.0, "{}", first.text);
    let second = exporter.scrape("/metrics");
    assert_eq!(second.expect("mongodb_profiler_operations_total", &labels), 3.0, "counted twice");
    assert_eq!(second.expect("mongodb_profiling_level", &[("db", "tenderly")]), 1.0);
}

#[test]
fn each_role_gets_only_the_commands_that_work_there() {
    for scenario in [Scenario::Standalone, Scenario::Mongos, Scenario::Arbiter] {
        let (replay, exporter) = start(scenario);
        let m = exporter.scrape("/metrics");
        assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{scenario}: {}", m.text);
        let seen = commands(&replay);
        let forbidden: &[&str] = match scenario {
            Scenario::Standalone => {
                &["replSetGetStatus@admin", "replSetGetConfig@admin", "find@local", "collStats@local"]
            }
            Scenario::Mongos => &[
                "replSetGetStatus@admin",
                "replSetGetConfig@admin",
                "find@local",
                "collStats@local",
                "profile@tenderly",
            ],
            _ => &["find@local", "collStats@local", "listDatabases@admin", "dbStats@tenderly", "profile@tenderly"],
        };
        for command in forbidden {
            assert!(!seen.iter().any(|c| c == command), "{scenario} was sent {command}: {seen:?}");
        }
        // No collector failed: commands that do not apply are skipped, not tried.
        for (name, labels, value) in &m.samples {
            if name == "tenderly_exporter_collector_success" {
                assert_eq!(*value, 1.0, "{scenario}: {labels:?}");
            }
        }
    }
}

#[test]
fn no_primary_is_an_explicit_signal_and_unhealthy_members_have_no_lag() {
    let (_replay, exporter) = start(Scenario::NoPrimary);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0);
    let present: Vec<f64> =
        m.samples.iter().filter(|(n, _, _)| n == "mongodb_replset_primary_present").map(|(_, _, v)| *v).collect();
    assert_eq!(present, vec![0.0], "{}", m.text);
    for (name, labels, _) in &m.samples {
        if name == "mongodb_replset_member_replication_lag_seconds" {
            let member = labels.iter().find(|(k, _)| k == "member").map(|(_, v)| v.as_str()).unwrap_or("");
            let health = m.value("mongodb_replset_member_health", &[("member", member)]);
            assert_eq!(health, Some(1.0), "lag exported for unhealthy member {member}");
        }
    }
}

#[test]
fn a_slow_server_costs_at_most_the_deadline_and_recovery_needs_no_restart() {
    let (replay, exporter) = start(Scenario::Primary);
    assert_eq!(exporter.scrape("/metrics").expect("mongodb_up", &[]), 1.0);
    replay.set_fault(Fault::Delay(Duration::from_secs(5)));
    let started = Instant::now();
    let resp = exporter.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")]);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    assert_eq!(Exposition::parse(&resp.body).expect("mongodb_up", &[]), 0.0);
    replay.clear_faults();
    wait_until(Duration::from_secs(20), "mongodb_up 1 after the delay fault", || {
        exporter.scrape("/metrics").value("mongodb_up", &[]) == Some(1.0)
    });
}

#[test]
fn dropped_and_malformed_replies_are_down_then_recover() {
    for fault in [Fault::DropMidReply, Fault::MalformedBson] {
        let (replay, exporter) = start(Scenario::Standalone);
        assert_eq!(exporter.scrape("/metrics").expect("mongodb_up", &[]), 1.0);
        replay.set_fault(fault.clone());
        let started = Instant::now();
        let m = exporter.scrape("/metrics");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(m.expect("mongodb_up", &[]), 0.0, "{fault:?}");
        replay.clear_faults();
        wait_until(Duration::from_secs(20), "recovery", || {
            exporter.scrape("/metrics").value("mongodb_up", &[]) == Some(1.0)
        });
    }
}

/// A failed `collStats local.oplog.rs` is a failed oplog collector, not a
/// silent success (an oplog-window alert would go quiet); the window read by
/// the two `find`s is still exported.
#[test]
fn oplog_collstats_failure_is_reported_and_the_window_kept() {
    let (replay, exporter) = start(Scenario::Primary);
    for fault in [Fault::unauthorized(), Fault::ErrorReply { code: 26, code_name: "NamespaceNotFound".to_owned() }] {
        replay.clear_faults();
        replay.set_command_fault("collStats", fault.clone());
        let m = exporter.scrape("/metrics");
        assert_eq!(m.expect("mongodb_up", &[]), 1.0);
        assert_eq!(
            m.expect("tenderly_exporter_collector_success", &[("collector", "mongodb_oplog")]),
            0.0,
            "{fault:?}: {}",
            m.text
        );
        assert_eq!(m.expect("mongodb_oplog_window_seconds", &[]), f64::from(OPLOG_WINDOW_SECS), "{fault:?}");
        assert_eq!(m.value("mongodb_oplog_size_bytes", &[]), None, "{fault:?}");
    }
}

#[test]
fn unauthorized_collector_fails_alone_and_is_not_retried_every_scrape() {
    let (replay, exporter) = start(Scenario::Primary);
    replay.set_command_fault("replSetGetStatus", Fault::unauthorized());
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0, "serverStatus still works");
    assert_eq!(m.expect("tenderly_exporter_collector_success", &[("collector", "mongodb_replset")]), 0.0);
    assert_eq!(m.expect("tenderly_exporter_collector_success", &[("collector", "mongodb_oplog")]), 1.0);
    let before = replay.command_count("replSetGetStatus");
    for _ in 0..3 {
        exporter.scrape("/metrics");
    }
    assert_eq!(replay.command_count("replSetGetStatus"), before, "refused command retried every scrape");
}

#[test]
fn doctor_prints_the_grant_for_a_refused_mongodb_command() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    replay.set_command_fault("replSetGetStatus", Fault::unauthorized());
    let out = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"))
        .args(["doctor", "--mongodb.uri", &replay.uri()])
        .env_remove("MONGODB_URI")
        .env_remove("REDIS_ADDR")
        .output()
        .expect("run doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL mongodb_replset: replSetGetStatus not authorized"), "{text}");
    assert!(
        text.contains(r#"grantRolesToUser("tenderly-exporter", [{role: "clusterMonitor", db: "admin"}])"#),
        "{text}"
    );
    assert!(text.contains("OK   mongodb_oplog"), "{text}");
}

#[test]
fn unreachable_mongodb_is_down_within_the_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let exporter = TestExporter::start(&["--mongodb.uri", &format!("mongodb://127.0.0.1:{port}/")], &[]);
    let started = Instant::now();
    let resp = exporter.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
    assert!(started.elapsed() < Duration::from_millis(2500), "took {:?}", started.elapsed());
    let m = Exposition::parse(&resp.body);
    assert_eq!(m.expect("mongodb_up", &[]), 0.0);
    assert_eq!(m.expect("tenderly_exporter_collector_success", &[("collector", "mongodb")]), 0.0);
}

/// `MONGODB_TEST_URI=mongodb://user:pass@host:27017/ cargo test --test it real_server`
#[test]
fn real_server_when_mongodb_test_uri_is_set() {
    let Ok(uri) = std::env::var("MONGODB_TEST_URI") else {
        crate::support::process::skip(
            "MONGODB_TEST_URI is not set: no real MongoDB server to scrape (the replay tests ran)",
        );
        return;
    };
    let exporter = TestExporter::start(&["--mongodb.uri", &uri], &[]);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{}", m.text);
    assert!(m.value("mongodb_uptime_seconds", &[]).is_some_and(|v| v > 0.0));
    assert!(m.count("mongodb_connections") >= 2);
    if let Some(state) = m.value("mongodb_replset_my_state", &[]) {
        assert!(m.count("mongodb_replset_primary_present") == 1, "replica member without primary_present");
        if state == 1.0 || state == 2.0 {
            assert!(m.value("mongodb_oplog_window_seconds", &[]).is_some_and(|w| w > 0.0));
        }
    }
    for (name, labels, value) in &m.samples {
        if name == "tenderly_exporter_collector_success" && *value != 1.0 {
            eprintln!(
                "collector failed against the real server (privileges?): {labels:?}; run `tenderly-exporter doctor`"
            );
        }
    }
}
