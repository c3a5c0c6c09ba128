//! The Tenderly MongoDB signals: config-driven queries (shipped set and custom),
//! audit-event counters, security posture and backup freshness.
//!
//! Queries run through the real `mongodb` driver against the wire-protocol
//! replay server, seeded with Tenderly-shaped documents
//! (`ReplayServer::set_collection_docs`); tests check the exact command sent
//! (`commands_received`), the metric it becomes, caching, staleness, the
//! allow-lists and that no document value reaches a metric or a log line.
//! With `MONGODB_TEST_URI` set, the shipped set also runs against a real server
//! on a scratch database that the test creates and drops.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mongodb::bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, DateTime, Document};
use mongodb::Client;
use tenderly_exporter::metrics::{Exposition, Value};
use tenderly_exporter::tenderly::audit::AuditCounter;
use tenderly_exporter::tenderly::backups::{self, BackupSource, BackupsConfig};
use tenderly_exporter::tenderly::mongo_posture::{self, NotEvaluated};
use tenderly_exporter::tenderly::queries::{QueriesConfig, QueryRunner};
use tokio::time::Instant;

use crate::support::mongo_fixtures;
use crate::support::mongo_replay::{Fault, ReplayServer, Scenario, APP_DB};

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    DateTime::now().timestamp_millis()
}

fn ago(ms: i64) -> DateTime {
    DateTime::from_millis(now_ms() - ms)
}

fn encrypted(tag: u8) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![0x01, tag, 0x7f, 0x33, 0x90] })
}

/// Strings that must never leave the database: any of them in a metric or a
/// log line is a leak.
const SECRETS: [&str; 12] = [
    "amelia.hart@example.org",
    "b.okafor@example.net",
    "carol.nguyen@example.com",
    "dmitri@example.io",
    "Bartholomew",
    "carol",
    "Okafor",
    "+44 7700 900123",
    "zz-weird-status-7731",
    "custom-role-x",
    "category-leak-5521",
    "65f0c0ffee0000000000beef",
];

/// Four users: u2 and u4 have a plaintext firstName, u2 is locked and has two
/// sessions, u3 has a status outside the allow-list, u4 a role outside it.
fn users() -> Vec<Document> {
    let in_an_hour = DateTime::from_millis(now_ms() + 3_600_000);
    vec![
        doc! {"_id": ObjectId::parse_str("65f0c0ffee0000000000beef").expect("oid"), "email": "amelia.hart@example.org",
        "firstName": encrypted(1), "lastName": encrypted(2), "accountStatus": "active", "roles": ["patient"],
        "failedLoginAttempts": 0, "isMFAEnabled": true,
        "activeSessions": [{"sessionId": "s-1", "lastActivity": ago(60_000)}]},
        doc! {"email": "b.okafor@example.net", "firstName": "Bartholomew", "lastName": "Okafor",
        "phone": "+44 7700 900123", "accountStatus": "pending_mfa_setup", "roles": ["healthcare_provider", "admin"],
        "failedLoginAttempts": 3, "accountLockedUntil": in_an_hour, "isMFAEnabled": false,
        "activeSessions": [{"sessionId": "s-2", "lastActivity": ago(1000)}, {"sessionId": "s-3", "lastActivity": ago(2000)}]},
        doc! {"email": "carol.nguyen@example.com", "firstName": encrypted(3), "accountStatus": "zz-weird-status-7731",
        "roles": ["patient"], "failedLoginAttempts": 5, "accountLockedUntil": ago(3_600_000), "activeSessions": []},
        doc! {"email": "dmitri@example.io", "firstName": "carol", "accountStatus": "locked",
        "roles": ["patient", "custom-role-x"], "failedLoginAttempts": 0},
    ]
}

/// Two old unarchived, two old archived (400 and 100 days), three recent.
fn auditlogs() -> Vec<Document> {
    let entry = |age_ms: i64, category: &str, success: bool, archived: Option<bool>| {
        let mut d = doc! {"timestamp": ago(age_ms), "category": category, "success": success, "action": "login",
        "additionalData": {"email": "amelia.hart@example.org", "ip": "203.0.113.9"}};
        if let Some(a) = archived {
            d.insert("isArchived", a);
        }
        d
    };
    vec![
        entry(400 * DAY_MS, "authentication", true, None),
        entry(400 * DAY_MS, "authentication", false, Some(false)),
        entry(400 * DAY_MS, "data_access", true, Some(true)),
        entry(100 * DAY_MS, "data_access", true, Some(true)),
        entry(60_000, "authentication", false, None),
        entry(30_000, "category-leak-5521", true, None),
        entry(10_000, "data_access", true, None),
    ]
}

fn seeded(scenario: Scenario) -> ReplayServer {
    let replay = ReplayServer::start(scenario).expect("replay server starts");
    replay.set_collection_docs(APP_DB, "users", users());
    replay.set_collection_docs(APP_DB, "auditlogs", auditlogs());
    replay
}

async fn client(uri: &str) -> Client {
    let mut options = mongodb::options::ClientOptions::parse(uri).await.expect("uri parses");
    options.server_selection_timeout = Some(Duration::from_secs(5));
    Client::with_options(options).expect("client")
}

fn shipped(db: &str) -> QueriesConfig {
    QueriesConfig { app_database: Some(db.to_owned()), ..QueriesConfig::default() }
}

fn custom(yaml: &str) -> QueriesConfig {
    let config: QueriesConfig = serde_norway::from_str(yaml).expect("config parses");
    config.validate().expect("config is valid");
    config
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn encoded(runner: &QueryRunner) -> Exposition {
    let mut out = Exposition::new();
    runner.encode(&mut out);
    out
}

fn value(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    e.get(name, labels).map(Value::as_f64)
}

fn date_in(d: &Document, path: &[&str]) -> i64 {
    let mut current = d;
    for key in &path[..path.len() - 1] {
        current = current.get_document(key).unwrap_or_else(|_| panic!("{key} in {d}"));
    }
    current.get_datetime(path[path.len() - 1]).unwrap_or_else(|_| panic!("date at {path:?} in {d}")).timestamp_millis()
}

fn contains_key_anywhere(b: &Bson, key: &str) -> bool {
    match b {
        Bson::Document(d) => d.iter().any(|(k, v)| k == key || contains_key_anywhere(v, key)),
        Bson::Array(items) => items.iter().any(|v| contains_key_anywhere(v, key)),
        _ => false,
    }
}

#[tokio::test]
async fn shipped_queries_turn_seeded_documents_into_the_contract_metrics() {
    let replay = seeded(Scenario::Standalone);
    let client = client(&replay.uri()).await;
    let runner = QueryRunner::new("app", shipped(APP_DB));
    assert!(runner.run(&client, deadline()).await, "every shipped query succeeds");
    let m = encoded(&runner);

    assert_eq!(value(&m, "tenderly_users", &[("status", "active")]), Some(1.0));
    assert_eq!(value(&m, "tenderly_users", &[("status", "pending_mfa_setup")]), Some(1.0));
    assert_eq!(value(&m, "tenderly_users", &[("status", "locked")]), Some(1.0));
    assert_eq!(value(&m, "tenderly_users", &[("status", "other")]), Some(1.0), "zz-weird-status is other");
    assert_eq!(value(&m, "tenderly_users", &[("status", "suspended")]), Some(0.0), "allow-listed and absent is 0");
    assert_eq!(value(&m, "tenderly_users_by_role", &[("role", "patient")]), Some(3.0));
    assert_eq!(value(&m, "tenderly_users_by_role", &[("role", "healthcare_provider")]), Some(1.0));
    assert_eq!(value(&m, "tenderly_users_by_role", &[("role", "admin")]), Some(1.0));
    assert_eq!(value(&m, "tenderly_users_by_role", &[("role", "other")]), Some(1.0));
    assert_eq!(value(&m, "tenderly_users_locked", &[]), Some(1.0), "only the lock in the future counts");
    assert_eq!(value(&m, "tenderly_users_with_failed_logins", &[]), Some(2.0));
    assert_eq!(value(&m, "tenderly_users_pending_mfa_setup", &[]), Some(1.0));
    assert_eq!(value(&m, "tenderly_users_multiple_active_sessions", &[]), Some(1.0));
    // b.okafor is an admin with isMFAEnabled false; amelia has MFA but is no admin.
    assert_eq!(value(&m, "tenderly_admins_without_mfa", &[]), Some(1.0));
    assert_eq!(
        value(&m, "tenderly_pii_plaintext_documents", &[("collection", "users"), ("field", "firstName")]),
        Some(2.0),
        "the two plaintext first names; Binary (encrypted) values never match"
    );
    assert_eq!(value(&m, "tenderly_audit_logs_pending_archive", &[]), Some(2.0));
    assert_eq!(value(&m, "tenderly_audit_logs_past_retention", &[]), Some(2.0));
    for id in runner.query_ids() {
        assert_eq!(value(&m, "tenderly_query_success", &[("query", id)]), Some(1.0), "{id}");
        let at = value(&m, "tenderly_query_last_success_timestamp_seconds", &[("query", id)]).expect("timestamp");
        assert!((at - now_ms() as f64 / 1000.0).abs() < 60.0, "{id}: {at}");
    }
    let text = m.render().expect("renders");
    assert!(text.contains("# TYPE tenderly_users gauge"), "{text}");
}

#[tokio::test]
async fn commands_carry_substituted_dates_and_max_time_ms_and_never_write() {
    let replay = seeded(Scenario::Standalone);
    let client = client(&replay.uri()).await;
    let runner = QueryRunner::new("app", shipped(APP_DB));
    let deadline = Instant::now() + Duration::from_secs(4);
    let before = now_ms();
    runner.run(&client, deadline).await;
    let after = now_ms();

    let counts = replay.commands_received("count");
    // Six on users (incl. administrators without MFA, issue 12), two on auditlogs.
    assert_eq!(counts.len(), 8, "{counts:?}");
    for c in &counts {
        assert_eq!(c.get_str("$db"), Ok(APP_DB));
        let max_time = c.get("maxTimeMS").and_then(Bson::as_i64).expect("maxTimeMS is an int64");
        assert!((100..=4000).contains(&max_time), "{c}");
        assert!(!contains_key_anywhere(&Bson::Document(c.clone()), "$ago"), "placeholder left in {c}");
    }
    let by_coll_and_key = |coll: &str, key: &str| {
        counts
            .iter()
            .find(|c| c.get_str("count") == Ok(coll) && c.get_document("query").is_ok_and(|q| q.contains_key(key)))
            .unwrap_or_else(|| panic!("count on {coll} with {key}: {counts:?}"))
            .clone()
    };
    let locked = by_coll_and_key("users", "accountLockedUntil");
    let at = date_in(&locked, &["query", "accountLockedUntil", "$gt"]);
    assert!((before..=after).contains(&at), "now substituted: {locked}");
    let pending = by_coll_and_key("auditlogs", "isArchived");
    let pending = if pending.get_document("query").is_ok_and(|q| q.get("isArchived") == Some(&Bson::Boolean(true))) {
        // That was the retention query; find the archive one.
        counts
            .iter()
            .find(|c| {
                c.get_document("query").is_ok_and(|q| q.get_document("isArchived").is_ok_and(|a| a.contains_key("$ne")))
            })
            .expect("pending-archive count")
            .clone()
    } else {
        pending
    };
    let at = date_in(&pending, &["query", "timestamp", "$lt"]);
    assert!((before - 365 * DAY_MS..=after - 365 * DAY_MS).contains(&at), "now-365d: {pending}");
    let pii = by_coll_and_key("users", "firstName");
    assert_eq!(pii.get_document("query").expect("q"), &doc! {"firstName": {"$regex": "^[a-zA-Z]"}});

    let aggregates = replay.commands_received("aggregate");
    assert_eq!(aggregates.len(), 2, "{aggregates:?}");
    for a in &aggregates {
        let pipeline = a.get_array("pipeline").expect("pipeline");
        let last = pipeline.last().and_then(Bson::as_document).expect("stage");
        assert_eq!(last, &doc! {"$limit": 1001i64}, "capped: {a}");
        assert_eq!(a.get_document("cursor").expect("cursor").get("batchSize"), Some(&Bson::Int64(1002)));
        assert!(a.get("maxTimeMS").is_some(), "{a}");
        for forbidden in ["$out", "$merge", "$function", "$where", "$accumulator"] {
            assert!(!contains_key_anywhere(&Bson::Document(a.clone()), forbidden), "{a}");
        }
    }
    let seen: Vec<String> = replay.commands_seen().into_iter().map(|(c, _)| c).collect();
    for write in ["insert", "update", "delete", "findAndModify", "getMore"] {
        assert!(!seen.iter().any(|c| c == write), "{write} sent: {seen:?}");
    }
}

#[tokio::test]
async fn custom_aggregation_labels_go_through_the_allow_list_and_results_are_capped() {
    let replay = ReplayServer::start(Scenario::Standalone).expect("replay");
    replay.set_command_reply(
        "aggregate",
        "clinic",
        "consultations",
        doc! {"cursor": {"id": 0i64, "ns": "clinic.consultations", "firstBatch": [
            {"_id": {"status": "completed", "kind": "video"}, "n": 7},
            {"_id": {"status": "dr.who@example.com", "kind": "video"}, "n": 2},
            {"_id": {"status": "cancelled", "kind": 42}, "n": 1.5},
            {"_id": {"status": "completed", "kind": "video"}, "n": "not a number"},
        ]}, "ok": 1.0},
    );
    let config = custom(
        r#"
queries:
  - name: tenderly_consultations
    help: Consultations by status and kind in the last day.
    database: clinic
    collection: consultations
    aggregate:
      - {$match: {createdAt: {$gte: {$ago: 1d}}}}
      - {$group: {_id: {status: $status, kind: $kind}, n: {$sum: 1}}}
    value: n
    labels:
      - {name: status, field: _id.status, values: [completed, cancelled]}
      - {name: kind, field: _id.kind, values: [video, chat]}
    max_results: 3
    min_interval: 0s
"#,
    );
    let client = client(&replay.uri()).await;
    let runner = QueryRunner::new("clinic", config);
    assert!(runner.run(&client, deadline()).await);
    let m = encoded(&runner);
    assert_eq!(value(&m, "tenderly_consultations", &[("status", "completed"), ("kind", "video")]), Some(7.0));
    assert_eq!(value(&m, "tenderly_consultations", &[("status", "other"), ("kind", "video")]), Some(2.0));
    assert_eq!(value(&m, "tenderly_consultations", &[("status", "cancelled"), ("kind", "other")]), Some(1.5));
    assert_eq!(value(&m, "tenderly_consultations", &[("status", "cancelled"), ("kind", "chat")]), Some(0.0));
    assert_eq!(value(&m, "tenderly_query_results_truncated", &[("query", "tenderly_consultations")]), Some(1.0));
    let text = m.render().expect("render");
    assert!(!text.contains("dr.who"), "{text}");
    let sent = replay.commands_received("aggregate");
    let first = sent[0].get_array("pipeline").expect("pipeline")[0].as_document().expect("stage").clone();
    let at = date_in(&first, &["$match", "createdAt", "$gte"]);
    assert!((at - (now_ms() - DAY_MS)).abs() < 10_000, "{first}");
}

#[tokio::test]
async fn min_interval_caches_between_scrapes_and_the_age_grows() {
    let replay = seeded(Scenario::Standalone);
    let config = custom(
        r#"
queries:
  - name: tenderly_patients
    help: Users holding the patient role.
    database: tenderly
    collection: users
    count: {roles: patient}
    min_interval: 1h
"#,
    );
    let client = client(&replay.uri()).await;
    let runner = QueryRunner::new("app", config);
    runner.run(&client, deadline()).await;
    let first = encoded(&runner);
    let stamp = value(&first, "tenderly_query_last_success_timestamp_seconds", &[("query", "tenderly_patients")]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    runner.run(&client, deadline()).await;
    let second = encoded(&runner);
    assert_eq!(replay.commands_received("count").len(), 1, "the cached value served the second scrape");
    assert_eq!(value(&second, "tenderly_patients", &[]), Some(3.0));
    let again = value(&second, "tenderly_query_last_success_timestamp_seconds", &[("query", "tenderly_patients")]);
    assert_eq!(stamp, again, "the timestamp is the last real run, so its age grows");
    let age =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_secs_f64() - again.expect("stamp");
    assert!(age >= 1.0, "age {age}");
}

#[tokio::test]
async fn a_failing_query_keeps_its_value_until_twice_the_interval_then_drops_it() {
    let replay = seeded(Scenario::Standalone);
    let config = custom(
        r#"
queries:
  - name: tenderly_patients
    help: Users holding the patient role.
    database: tenderly
    collection: users
    count: {roles: patient}
    min_interval: 300ms
"#,
    );
    let client = client(&replay.uri()).await;
    let runner = QueryRunner::new("app", config);
    assert!(runner.run(&client, deadline()).await);
    replay.set_command_fault("count", Fault::ErrorReply { code: 2, code_name: "BadValue".into() });
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(!runner.run(&client, deadline()).await);
    let m = encoded(&runner);
    assert_eq!(value(&m, "tenderly_query_success", &[("query", "tenderly_patients")]), Some(0.0));
    assert_eq!(value(&m, "tenderly_patients", &[]), Some(3.0), "within 2x the interval the cached value stays");
    tokio::time::sleep(Duration::from_millis(350)).await;
    runner.run(&client, deadline()).await;
    let m = encoded(&runner);
    assert_eq!(value(&m, "tenderly_patients", &[]), None, "stale value dropped");
    assert!(value(&m, "tenderly_query_last_success_timestamp_seconds", &[("query", "tenderly_patients")]).is_some());
    replay.clear_faults();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(runner.run(&client, deadline()).await);
    assert_eq!(value(&encoded(&runner), "tenderly_patients", &[]), Some(3.0), "recovers");
}

#[tokio::test]
async fn unauthorized_queries_are_not_retried_every_scrape() {
    let replay = seeded(Scenario::Standalone);
    replay.set_command_fault("count", Fault::unauthorized());
    let config = custom(
        r#"
queries:
  - name: tenderly_patients
    help: Users holding the patient role.
    database: tenderly
    collection: users
    count: {roles: patient}
    min_interval: 0s
"#,
    );
    let client = client(&replay.uri()).await;
    let runner = QueryRunner::new("app", config);
    for _ in 0..3 {
        runner.run(&client, deadline()).await;
    }
    assert_eq!(replay.command_count("count"), 1);
    assert_eq!(value(&encoded(&runner), "tenderly_query_success", &[("query", "tenderly_patients")]), Some(0.0));
}

#[tokio::test]
async fn audit_events_count_each_document_once_across_runs() {
    let replay = seeded(Scenario::Standalone);
    let client = client(&replay.uri()).await;
    let runner = QueryRunner::new("app", shipped(APP_DB));
    runner.run(&client, deadline()).await;
    let m = encoded(&runner);
    // Start from now: the seeded history is not counted as a burst.
    assert_eq!(
        value(&m, "tenderly_audit_events_total", &[("category", "authentication"), ("success", "false")]),
        Some(0.0)
    );
    let find = replay.commands_received("find");
    let find = find.iter().find(|f| f.get_str("find") == Ok("auditlogs")).expect("audit read");
    assert_eq!(
        find.get_document("projection").expect("projection"),
        &doc! {"_id": 0, "timestamp": 1, "category": 1, "success": 1}
    );
    assert_eq!(find.get_document("sort").expect("sort"), &doc! {"timestamp": 1});
    assert_eq!(find.get("limit"), Some(&Bson::Int64(1000)));
    assert!(find.get("maxTimeMS").is_some());
    assert!(find.get_document("filter").expect("filter").get_document("timestamp").expect("ts").contains_key("$gte"));

    let soon = now_ms() + 1000;
    let mut docs = auditlogs();
    for (i, (category, success)) in
        [("authentication", false), ("authentication", false), ("data_access", true), ("category-leak-5521", true)]
            .into_iter()
            .enumerate()
    {
        docs.push(
            doc! {"timestamp": DateTime::from_millis(soon + (i as i64 / 2)), "category": category, "success": success,
            "additionalData": {"email": "b.okafor@example.net"}},
        );
    }
    docs.push(doc! {"timestamp": DateTime::from_millis(soon), "category": "authentication"});
    replay.set_collection_docs(APP_DB, "auditlogs", docs);
    for _ in 0..3 {
        runner.run(&client, deadline()).await;
        let m = encoded(&runner);
        let events = |c: &str, s: &str| value(&m, "tenderly_audit_events_total", &[("category", c), ("success", s)]);
        assert_eq!(events("authentication", "false"), Some(2.0), "{}", m.clone().render().unwrap_or_default());
        assert_eq!(events("authentication", "unknown"), Some(1.0));
        assert_eq!(events("data_access", "true"), Some(1.0));
        assert_eq!(events("other", "true"), Some(1.0), "unknown category is other");
    }
}

#[test]
fn audit_counter_restart_from_now_keeps_counts_and_skips_the_gap() {
    let mut a = AuditCounter::starting_at(APP_DB, "auditlogs", 0);
    a.ingest(&[doc! {"timestamp": DateTime::from_millis(10), "category": "authentication", "success": false}]);
    a.restart_from_now();
    a.ingest(&[doc! {"timestamp": DateTime::from_millis(20), "category": "authentication", "success": false}]);
    assert_eq!(a.events("authentication", "false"), 1);
    assert!(a.high_water_mark_millis() > 1_600_000_000_000);
}

#[test]
fn posture_from_each_getcmdlineopts_fixture() {
    // (fixture, authorization, tls required, not bound to all interfaces)
    let cases = [
        ("getCmdLineOpts-standalone-8.0.9.json", false, false, false),
        ("getCmdLineOpts-mongos-8.0.8.json", false, false, true),
        ("getCmdLineOpts-shardsvr-8.0.8.json", false, false, true),
        ("getCmdLineOpts-configsvr-8.0.8.json", false, false, true),
    ];
    for (name, auth, tls, bind) in cases {
        let p = mongo_posture::parse(&mongo_fixtures::load(name));
        assert_eq!(p.checks().map(|(_, v)| v), [Some(auth), Some(tls), Some(bind)], "{name}");
        let mut out = Exposition::new();
        p.encode("db1", &mut out);
        assert_eq!(out.sample_count("tenderly_security_check"), 3, "{name}");
        assert_eq!(
            value(
                &out,
                "tenderly_security_check",
                &[("target", "db1"), ("check", "mongodb_not_bound_to_all_interfaces")]
            ),
            Some(if bind { 1.0 } else { 0.0 })
        );
    }
    // The guide's mongod.conf plus TLS: everything passes. A mongos with a keyFile is authorized.
    let mut hardened = mongo_fixtures::load("getCmdLineOpts-mongos-8.0.8.json");
    let parsed = hardened.get_document_mut("parsed").expect("parsed");
    parsed.insert("security", doc! {"keyFile": "/etc/mongo/keyfile"});
    parsed.get_document_mut("net").expect("net").insert("tls", doc! {"mode": "requireTLS"});
    assert_eq!(mongo_posture::parse(&hardened).checks().map(|(_, v)| v), [Some(true); 3]);
}

#[tokio::test]
async fn posture_check_through_the_driver_and_unauthorized_is_not_a_pass() {
    let replay = ReplayServer::start(Scenario::Mongos).expect("replay");
    let client = client(&replay.uri()).await;
    let p = mongo_posture::check(&client, deadline()).await;
    assert_eq!(p.checks().map(|(_, v)| v), [Some(false), Some(false), Some(true)]);
    replay.set_command_fault("getCmdLineOpts", Fault::unauthorized());
    let p = mongo_posture::check(&client, deadline()).await;
    assert_eq!(p.not_evaluated, Some(NotEvaluated::Unauthorized));
    let mut out = Exposition::new();
    p.encode("router", &mut out);
    assert_eq!(out.sample_count("tenderly_security_check"), 0, "unknown is never a pass (nor a failure)");
    assert_eq!(
        value(&out, "tenderly_security_check_evaluated", &[("check", "mongodb_authorization_enabled")]),
        Some(0.0)
    );
}

#[test]
fn backups_newest_file_above_the_minimum_size_is_the_last_success() {
    let dir = crate::support::private_temp_dir("backups");
    let base = SystemTime::now() - Duration::from_secs(3 * 86_400);
    let write = |name: &str, size: usize, age_days: u64| {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(&vec![0u8; size]).expect("write");
        f.set_modified(base + Duration::from_secs(age_days * 86_400)).expect("set mtime");
    };
    write("tenderly/backup_20250101_010000.tar.gz", 2000, 0);
    write("tenderly/backup_20250102_010000.tar.gz", 3000, 1);
    write("tenderly/backup_20250103_010000.tar.gz", 20, 2); // the failed dump: newest but tiny
    write("tenderly/backup_notes.txt", 5000, 2);
    write("tenderly/20250102_010000/redis_dump.rdb", 400, 1);
    write("tenderly/20250101_010000/redis_dump.rdb", 300, 0);
    write("tenderly/.hidden/redis_dump.rdb", 900, 2);
    let config = BackupsConfig {
        sources: vec![
            BackupSource {
                kind: "full".into(),
                glob: format!("{}/tenderly/backup_*.tar.gz", dir.display()),
                min_size_bytes: Some(1024),
            },
            BackupSource {
                kind: "redis_rdb".into(),
                glob: format!("{}/tenderly/*/redis_dump.rdb", dir.display()),
                min_size_bytes: None,
            },
            BackupSource {
                kind: "gone".into(),
                glob: format!("{}/missing/*.rdb", dir.display()),
                min_size_bytes: None,
            },
        ],
    };
    config.validate().expect("valid");
    let snapshot = backups::scan(&config);
    let mut out = Exposition::new();
    snapshot.encode(&mut out);
    let expected = |days: u64| {
        (base + Duration::from_secs(days * 86_400)).duration_since(SystemTime::UNIX_EPOCH).expect("t").as_secs_f64()
    };
    let at = value(&out, "tenderly_backup_last_success_timestamp_seconds", &[("kind", "full")]).expect("full");
    assert!((at - expected(1)).abs() < 0.01, "{at} vs {}", expected(1));
    assert_eq!(value(&out, "tenderly_backup_size_bytes", &[("kind", "full")]), Some(3000.0));
    assert_eq!(value(&out, "tenderly_backup_files", &[("kind", "full")]), Some(2.0));
    assert_eq!(value(&out, "tenderly_backup_undersized_files", &[("kind", "full")]), Some(1.0));
    assert_eq!(value(&out, "tenderly_backup_size_bytes", &[("kind", "redis_rdb")]), Some(400.0), "hidden dir skipped");
    assert_eq!(value(&out, "tenderly_backup_files", &[("kind", "redis_rdb")]), Some(2.0));
    assert_eq!(value(&out, "tenderly_backup_scan_success", &[("kind", "gone")]), Some(0.0));
    assert_eq!(value(&out, "tenderly_backup_last_success_timestamp_seconds", &[("kind", "gone")]), None);
    let text = out.render().expect("render");
    assert!(!text.contains("backup_2025"), "file names are never exported: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `MakeWriter` that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn redaction_no_document_value_reaches_a_metric_or_a_log_line() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let replay = seeded(Scenario::Standalone);
    let uri = replay.uri();
    // A custom query that groups on a PII field: only allow-listed values may become labels.
    let mut config = shipped(APP_DB);
    config.queries = custom(
        r#"
queries:
  - name: tenderly_users_by_email
    help: Users by email address, to prove emails never become labels.
    database: tenderly
    collection: users
    aggregate: [{$group: {_id: $email, count: {$sum: 1}}}]
    labels: [{name: email, field: _id, values: [nobody]}]
  - name: tenderly_users_by_phone
    help: A query that fails, to prove failures log no document values.
    database: tenderly
    collection: users
    count: {phone: "+44 7700 900123"}
"#,
    )
    .queries;
    let text = tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let client = client(&uri).await;
            let runner = QueryRunner::new("app", config);
            runner.run(&client, deadline()).await;
            // Fail a query (the server's error message would quote the filter) and the audit read.
            replay.set_command_fault("count", Fault::ErrorReply { code: 2, code_name: "BadValue".into() });
            replay.set_command_fault("find", Fault::unauthorized());
            let soon = now_ms() + 500;
            let mut docs = auditlogs();
            docs.push(
                doc! {"timestamp": DateTime::from_millis(soon), "category": "category-leak-5521", "success": true},
            );
            replay.set_collection_docs(APP_DB, "auditlogs", docs);
            runner.standby();
            runner.run(&client, deadline()).await;
            replay.clear_faults();
            tokio::time::sleep(Duration::from_millis(600)).await;
            runner.run(&client, deadline()).await;
            let mut out = Exposition::new();
            runner.encode(&mut out);
            mongo_posture::check(&client, deadline()).await.encode("app", &mut out);
            out.render().expect("render")
        })
    });
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).to_string();
    assert!(text.contains("tenderly_users_by_email"), "the grouped query ran: {text}");
    assert!(text.contains("email=\"other\""), "{text}");
    assert!(logs.contains("tenderly query failed"), "the failure was logged (capture works): {logs}");
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} in the exposition:\n{text}");
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

/// `MONGODB_TEST_URI=mongodb://user:pass@host:27017/ cargo test --test it real_server_tenderly`
#[tokio::test]
async fn real_server_tenderly_queries_when_mongodb_test_uri_is_set() {
    let Ok(uri) = std::env::var("MONGODB_TEST_URI") else {
        crate::support::process::skip(
            "MONGODB_TEST_URI is not set: no real MongoDB server for the Tenderly queries (the replay tests ran)",
        );
        return;
    };
    let db_name = format!("tenderly_exporter_test_{}", std::process::id());
    let client = client(&uri).await;
    let db = client.database(&db_name);
    db.collection::<Document>("users").insert_many(users()).await.expect("seed users (needs readWrite)");
    db.collection::<Document>("auditlogs").insert_many(auditlogs()).await.expect("seed auditlogs");
    let runner = QueryRunner::new("real", shipped(&db_name));
    let ok = runner.run(&client, Instant::now() + Duration::from_secs(20)).await;
    let m = encoded(&runner);
    type Expectation<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);
    let expectations: [Expectation; 13] = [
        ("tenderly_users", &[("status", "active")], 1.0),
        ("tenderly_users", &[("status", "other")], 1.0),
        ("tenderly_users_by_role", &[("role", "patient")], 3.0),
        ("tenderly_users_by_role", &[("role", "other")], 1.0),
        ("tenderly_users_locked", &[], 1.0),
        ("tenderly_users_with_failed_logins", &[], 2.0),
        ("tenderly_users_pending_mfa_setup", &[], 1.0),
        ("tenderly_users_multiple_active_sessions", &[], 1.0),
        ("tenderly_admins_without_mfa", &[], 1.0),
        ("tenderly_pii_plaintext_documents", &[("field", "firstName")], 2.0),
        ("tenderly_audit_logs_pending_archive", &[], 2.0),
        ("tenderly_audit_logs_past_retention", &[], 2.0),
        ("tenderly_audit_events_total", &[("category", "authentication"), ("success", "false")], 0.0),
    ];
    let mismatches: Vec<String> = expectations
        .iter()
        .filter(|(name, labels, want)| value(&m, name, labels) != Some(*want))
        .map(|(name, labels, want)| format!("{name}{labels:?}: want {want}, got {:?}", value(&m, name, labels)))
        .collect();
    let dropped = db.drop().await;
    assert!(ok, "a shipped query failed against the real server");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    dropped.expect("drop the scratch database");
}

#[test]
fn the_shipped_set_written_out_in_the_docs_is_the_shipped_set() {
    let docs = include_str!("../../docs/tenderly-queries.md");
    let section = docs.split("## The shipped set").nth(1).expect("shipped section");
    let yaml = section.split("```yaml").nth(1).and_then(|s| s.split("```").next()).expect("yaml block");
    let config: QueriesConfig =
        serde_norway::from_str(&format!("app_database: tenderly\nshipped: false\n{yaml}")).expect("docs yaml parses");
    config.validate().expect("docs yaml is valid");
    let normal = |q: &tenderly_exporter::tenderly::queries::QuerySpec| {
        let mut q = q.clone();
        q.database = None;
        let json = |d: &Document| Bson::Document(d.clone()).into_relaxed_extjson().to_string();
        let count = q.count.take().map(|d| json(&d));
        let aggregate = q.aggregate.take().map(|p| p.iter().map(json).collect::<Vec<_>>());
        (format!("{q:?}"), count, aggregate)
    };
    let documented: Vec<_> = config.queries.iter().map(normal).collect();
    let shipped: Vec<_> =
        tenderly_exporter::tenderly::queries::shipped_queries("tenderly").iter().map(normal).collect();
    assert_eq!(documented, shipped);
}
