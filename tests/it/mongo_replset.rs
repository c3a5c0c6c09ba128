//! MongoDB replication-side parsers and encoders (replSetGetStatus,
//! replSetGetConfig, oplog window, $currentOp, dbStats, profiler) on real
//! captures (`tests/fixtures/mongodb/`, provenance in its README), synthetic
//! documents where no capture exists, malformed tables, and golden expositions
//! (`tests/golden/mongodb/replset/`, refresh with `UPDATE_GOLDEN=1`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use mongodb::bson::{doc, Bson, DateTime, Decimal128, Document, Timestamp};

use crate::support::mongo_fixtures;
use tenderly_exporter::collectors::mongodb::bson_num::Num;
use tenderly_exporter::collectors::mongodb::profile::{DbProfile, StartPolicy, DURATION_BUCKETS};
use tenderly_exporter::collectors::mongodb::{current_op, dbstats, oplog, profile, replset};
use tenderly_exporter::metrics::{Exposition, Value};

const STATUS_FIXTURES: [&str; 17] = [
    "replSetGetStatus-configsvr-primary-4.2.x.json",
    "replSetGetStatus-configsvr-primary-8.0.8.json",
    "replSetGetStatus-configsvr-secondary-4.2.x.json",
    "replSetGetStatus-notYetInitialized-7.0.12.json",
    "replSetGetStatus-primary-4.2.8.json",
    "replSetGetStatus-primary-4.4.29.json",
    "replSetGetStatus-primary-lagging-3.6.20.json",
    "replSetGetStatus-primary-lagging-5.0.31.json",
    "replSetGetStatus-primary-lagging-8.0.4.json",
    "replSetGetStatus-secondary-4.2.14.json",
    "replSetGetStatus-secondary-4.4.29.json",
    "replSetGetStatus-secondary-unreachable-6.0.19.json",
    "replSetGetStatus-shardsvr-primary-8.0.8.json",
    "replSetGetStatus-shardsvr-primary-lagging-7.0.12.json",
    "replSetGetStatus-shardsvr-secondary-7.0.12.json",
    "replSetGetStatus-shardsvr-secondary-8.0.8.json",
    "replSetGetStatus-startup2-8.0.4.json",
];
const NOT_YET_INITIALIZED: &str = "replSetGetStatus-notYetInitialized-7.0.12.json";

const LAG: &str = "mongodb_replset_member_replication_lag_seconds";
const PRIMARY_PRESENT: &str = "mongodb_replset_primary_present";

// ---- fixture loading --------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn status(name: &str) -> replset::ReplSetStatus {
    replset::parse_status(&mongo_fixtures::load(name))
}

fn status_exposition(name: &str) -> Exposition {
    let mut out = Exposition::new();
    replset::encode(Some(&status(name)), None, &mut out);
    out
}

fn value(out: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    out.get(name, labels).unwrap_or_else(|| panic!("{name}{labels:?} missing")).as_f64()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!((actual - expected).abs() < 1e-9, "{what}: {actual} != {expected}");
}

// ---- replSetGetStatus ---------------------------------------------------------

#[test]
fn every_status_fixture_parses() {
    assert_eq!(mongo_fixtures::names("replSetGetStatus-"), STATUS_FIXTURES, "a new capture needs a golden");
    for name in STATUS_FIXTURES {
        let s = status(name);
        if name == NOT_YET_INITIALIZED {
            assert!(!s.ok, "{name}");
            continue;
        }
        assert!(s.ok, "{name}: not ok");
        assert!(!s.set.is_empty(), "{name}: no set name");
        assert!(!s.members.is_empty(), "{name}: no members");
        assert_eq!(s.dropped_members, 0, "{name}");
        assert!(s.date_millis.is_some() && s.my_state.is_some() && s.term.is_some(), "{name}: {s:?}");
        assert_eq!(s.members.iter().filter(|m| m.is_self).count(), 1, "{name}: exactly one self");
        for m in &s.members {
            assert!(m.state.is_some() && m.health.is_some(), "{name}: {m:?}");
        }
        // primary_present is always there for a successful reply.
        let out = status_exposition(name);
        let present = value(&out, PRIMARY_PRESENT, &[("set", &s.set)]);
        assert_eq!(present == 1.0, s.members.iter().any(|m| m.state == Some(1)), "{name}");
    }
}

/// (fixture, set, expected lag per secondary).
type LagCase = (&'static str, &'static str, &'static [(&'static str, f64)]);

/// Lag figures from the fixture README (primary optimeDate minus secondary
/// optimeDate within the same reply), plus the ones in sync.
#[test]
fn lag_matches_the_fixture_readme() {
    let cases: [LagCase; 8] = [
        ("replSetGetStatus-primary-lagging-8.0.4.json", "my-rs", &[("mongo1:30001", 1151.0), ("mongo3:30003", 1151.0)]),
        ("replSetGetStatus-primary-lagging-5.0.31.json", "rs0", &[("mongo2:27017", 62.0), ("mongo3:27017", 62.0)]),
        (
            "replSetGetStatus-primary-lagging-3.6.20.json",
            "rs1",
            &[("172.18.0.3:27017", 15.0), ("172.18.0.8:27017", 15.0)],
        ),
        ("replSetGetStatus-shardsvr-primary-lagging-7.0.12.json", "rsShard1", &[("localhost:27019", 10.0)]),
        ("replSetGetStatus-primary-4.2.8.json", "rs1", &[("172.19.0.7:27017", 0.0), ("172.19.0.6:27017", 0.0)]),
        (
            "replSetGetStatus-secondary-4.2.14.json",
            "atlas-3y90xi-shard-1",
            &[
                ("atlas-3y90xi-shard-01-00.t8aw6.mongodb.net:27017", 1.0),
                ("atlas-3y90xi-shard-01-02.t8aw6.mongodb.net:27017", 0.0),
            ],
        ),
        (
            "replSetGetStatus-shardsvr-secondary-8.0.8.json",
            "shard1ReplSet",
            &[("localhost:27021", 0.0), ("localhost:27022", 0.0)],
        ),
        (
            "replSetGetStatus-configsvr-primary-4.2.x.json",
            "mongo-mongodb-sharded-configsvr",
            &[
                (
                    "mongo-mongodb-sharded-configsvr-1.mongo-mongodb-sharded-headless.default.svc.cluster.local:27017",
                    0.0,
                ),
                (
                    "mongo-mongodb-sharded-configsvr-2.mongo-mongodb-sharded-headless.default.svc.cluster.local:27017",
                    0.0,
                ),
            ],
        ),
    ];
    for (name, set, lags) in cases {
        let out = status_exposition(name);
        assert_eq!(out.sample_count(LAG), lags.len(), "{name}: lag series only for secondaries");
        for (member, expected) in lags {
            assert_close(value(&out, LAG, &[("set", set), ("member", member)]), *expected, name);
        }
        assert_eq!(value(&out, PRIMARY_PRESENT, &[("set", set)]), 1.0, "{name}");
    }
}

#[test]
fn unreachable_members_get_no_lag_and_primary_absence_is_explicit() {
    let name = "replSetGetStatus-secondary-unreachable-6.0.19.json";
    let out = status_exposition(name);
    let labels = |m: &'static str| [("set", "replication"), ("member", m)];
    assert_eq!(out.sample_count(LAG), 0, "no primary, unhealthy members: no lag at all");
    assert_eq!(value(&out, PRIMARY_PRESENT, &[("set", "replication")]), 0.0);
    assert_eq!(value(&out, "mongodb_replset_my_state", &[("set", "replication")]), 2.0);
    for m in ["mongo2:27017", "mongo3:27017"] {
        assert_eq!(value(&out, "mongodb_replset_member_health", &labels(m)), 0.0, "{m}");
        assert_eq!(value(&out, "mongodb_replset_member_state", &labels(m)), 8.0, "{m} DOWN");
        assert!(out.get("mongodb_replset_member_optime_timestamp_seconds", &labels(m)).is_none(), "{m}: epoch optime");
    }
    assert_eq!(value(&out, "mongodb_replset_member_health", &labels("mongo1:27017")), 1.0);
    // date 1733896812001 - lastHeartbeat 1733896811592 (a failed heartbeat
    // still stamps lastHeartbeat; the age is small, health says 0).
    assert_close(
        value(&out, "mongodb_replset_member_last_heartbeat_age_seconds", &labels("mongo2:27017")),
        0.409,
        name,
    );
    assert!(out.get("mongodb_replset_member_last_heartbeat_age_seconds", &labels("mongo1:27017")).is_none(), "self");
    assert!(
        out.get("mongodb_replset_member_ping_seconds", &labels("mongo2:27017")).is_none(),
        "pingMs 0 of a down member"
    );
}

#[test]
fn startup2_member_has_no_optime_and_no_primary() {
    let out = status_exposition("replSetGetStatus-startup2-8.0.4.json");
    let set = [("set", "my-rs")];
    assert_eq!(value(&out, "mongodb_replset_my_state", &set), 5.0);
    assert_eq!(value(&out, PRIMARY_PRESENT, &set), 0.0);
    assert_eq!(value(&out, "mongodb_replset_members", &set), 3.0);
    assert_eq!(out.sample_count(LAG), 0);
    let self_labels = [("set", "my-rs"), ("member", "mongo1:30001")];
    assert_eq!(value(&out, "mongodb_replset_member_state", &self_labels), 5.0);
    assert!(out.get("mongodb_replset_member_optime_timestamp_seconds", &self_labels).is_none());
    let secondary = [("set", "my-rs"), ("member", "mongo2:30002")];
    assert_eq!(value(&out, "mongodb_replset_member_optime_timestamp_seconds", &secondary), 1734324005.0);
}

#[test]
fn not_yet_initialized_error_reply_yields_nothing() {
    let s = status(NOT_YET_INITIALIZED);
    assert!(!s.ok);
    assert_eq!(s.error_code_name.as_deref(), Some("NotYetInitialized"));
    assert!(s.members.is_empty());
    let out = status_exposition(NOT_YET_INITIALIZED);
    assert_eq!(out.family_names().count(), 0, "an error reply encodes to nothing");
}

#[test]
fn set_level_values_ping_heartbeat_and_optime() {
    let out = status_exposition("replSetGetStatus-primary-4.4.29.json");
    let set = [("set", "rs0")];
    assert_eq!(value(&out, "mongodb_replset_term", &set), 1.0);
    assert_eq!(value(&out, "mongodb_replset_members", &set), 3.0);
    assert_eq!(value(&out, "mongodb_replset_my_state", &set), 1.0);
    let m = [("set", "rs0"), ("member", "192.168.1.4:27018")];
    assert_close(value(&out, "mongodb_replset_member_ping_seconds", &m), 0.005, "pingMs 5");
    // date 1748677608006 - lastHeartbeat 1748677606412
    assert_close(value(&out, "mongodb_replset_member_last_heartbeat_age_seconds", &m), 1.594, "heartbeat age");
    assert_eq!(value(&out, "mongodb_replset_member_optime_timestamp_seconds", &m), 1748677603.0);
    let primary = [("set", "rs0"), ("member", "192.168.1.4:27017")];
    assert!(out.get("mongodb_replset_member_ping_seconds", &primary).is_none(), "self has no ping");
    assert_eq!(value(&out, "mongodb_replset_member_state", &primary), 1.0);

    // Go-JSON capture: optime read from optimeDate strings converted to dates.
    let out = status_exposition("replSetGetStatus-primary-lagging-3.6.20.json");
    let primary = [("set", "rs1"), ("member", "172.18.0.9:27017")];
    assert_eq!(value(&out, "mongodb_replset_member_optime_timestamp_seconds", &primary), 1601987590.0);
}

#[test]
fn optime_falls_back_to_optime_ts_and_protocol_v0_timestamp() {
    let reply = doc! {
        "ok": 1, "set": "rs", "date": DateTime::from_millis(200_000), "myState": 1, "term": 1,
        "members": [
            {"name": "p:1", "state": 1, "health": 1, "optime": {"ts": Timestamp { time: 190, increment: 3 }, "t": 1i64}, "self": true},
            {"name": "s:1", "state": 2, "health": 1, "optime": Timestamp { time: 150, increment: 1 }},
        ],
    };
    let mut out = Exposition::new();
    replset::encode(Some(&replset::parse_status(&reply)), None, &mut out);
    assert_eq!(value(&out, LAG, &[("member", "s:1")]), 40.0);
}

// ---- replSetGetConfig ---------------------------------------------------------

#[test]
fn config_reports_priority_votes_hidden_arbiter_and_delay() {
    let reply = doc! {
        "ok": 1.0,
        "config": {
            "_id": "rs0", "version": 7, "term": 3i64, "protocolVersion": 1i64,
            "members": [
                {"_id": 0, "host": "db-a:27017", "arbiterOnly": false, "buildIndexes": true, "hidden": false,
                 "priority": 2.0, "tags": {}, "secondaryDelaySecs": 0i64, "votes": 1},
                {"_id": 1, "host": "db-b:27017", "arbiterOnly": false, "hidden": true, "priority": 0.0,
                 "secondaryDelaySecs": 3600i64, "votes": 1},
                // MongoDB 4.x spelling of the delay.
                {"_id": 2, "host": "db-c:27017", "hidden": true, "priority": 0, "slaveDelay": 600, "votes": 0},
                {"_id": 3, "host": "db-arb:27017", "arbiterOnly": true, "priority": 0.0, "votes": 1},
                // Fields left to server defaults.
                {"_id": 4, "host": "db-d:27017"},
            ],
        },
    };
    let config = replset::parse_config(&reply);
    assert!(config.ok);
    assert_eq!((config.set.as_str(), config.version, config.members.len()), ("rs0", Some(7), 5));
    let mut out = Exposition::new();
    replset::encode(None, Some(&config), &mut out);
    let m = |host: &'static str| [("set", "rs0"), ("member", host)];
    assert_eq!(value(&out, "mongodb_replset_config_version", &[("set", "rs0")]), 7.0);
    assert_eq!(value(&out, "mongodb_replset_member_priority", &m("db-a:27017")), 2.0);
    assert_eq!(value(&out, "mongodb_replset_member_secondary_delay_seconds", &m("db-a:27017")), 0.0);
    assert_eq!(value(&out, "mongodb_replset_member_hidden", &m("db-b:27017")), 1.0);
    assert_eq!(value(&out, "mongodb_replset_member_secondary_delay_seconds", &m("db-b:27017")), 3600.0);
    assert_eq!(value(&out, "mongodb_replset_member_secondary_delay_seconds", &m("db-c:27017")), 600.0);
    assert_eq!(value(&out, "mongodb_replset_member_votes", &m("db-c:27017")), 0.0);
    assert_eq!(value(&out, "mongodb_replset_member_arbiter", &m("db-arb:27017")), 1.0);
    assert_eq!(value(&out, "mongodb_replset_member_arbiter", &m("db-a:27017")), 0.0);
    assert_eq!(value(&out, "mongodb_replset_member_priority", &m("db-d:27017")), 1.0, "default priority");
    assert_eq!(value(&out, "mongodb_replset_member_votes", &m("db-d:27017")), 1.0, "default votes");
    assert_eq!(value(&out, "mongodb_replset_member_hidden", &m("db-d:27017")), 0.0);

    // The same member identity as replSetGetStatus, so `unless on(set, member)`
    // can exclude delayed members from lag alerts.
    let bare = replset::parse_config(reply.get_document("config").expect("config"));
    assert_eq!(bare, config, "a bare config document parses the same");
}

#[test]
fn config_error_replies_and_garbage_yield_nothing() {
    for reply in [
        doc! {"ok": 0.0, "errmsg": "not running with --replSet", "code": 76, "codeName": "NoReplicationEnabled"},
        doc! {"ok": 1.0, "config": "nope"},
        doc! {"ok": 0.0, "config": {"_id": "rs0", "members": [{"host": "a:1"}]}},
        doc! {},
    ] {
        let config = replset::parse_config(&reply);
        assert!(!config.ok, "{reply:?}");
        let mut out = Exposition::new();
        replset::encode(None, Some(&config), &mut out);
        assert_eq!(out.family_names().count(), 0, "{reply:?}");
    }
}

// ---- oplog ----------------------------------------------------------------------

#[test]
fn oplog_window_from_first_and_last_entries() {
    let first =
        doc! {"ts": Timestamp { time: 1_745_300_000, increment: 1 }, "wall": DateTime::from_millis(1_745_300_000_123)};
    let last =
        doc! {"ts": Timestamp { time: 1_745_311_444, increment: 1 }, "wall": DateTime::from_millis(1_745_311_444_456)};
    let stats = mongo_fixtures::load("collStats-local.oplog.rs-shardsvr-primary-8.0.8.json");
    let w = oplog::parse(Some(&first), Some(&last), Some(&stats)).expect("window");
    assert_eq!(w.window_secs(), Some(11_444.0));
    assert_eq!(w.size_bytes, Some(Num::Int(596_844)), "storageStats.size");
    assert_eq!(w.max_size_bytes, Some(Num::Int(3_810_627_072)), "storageStats.maxSize");

    let mut out = Exposition::new();
    oplog::encode(&w, &mut out);
    assert_eq!(value(&out, "mongodb_oplog_window_seconds", &[]), 11_444.0);
    assert_eq!(value(&out, "mongodb_oplog_first_timestamp_seconds", &[]), 1_745_300_000.0);
    assert_eq!(value(&out, "mongodb_oplog_last_timestamp_seconds", &[]), 1_745_311_444.0);
    assert_eq!(value(&out, "mongodb_oplog_size_bytes", &[]), 596_844.0);
    assert_eq!(value(&out, "mongodb_oplog_max_size_bytes", &[]), 3_810_627_072.0);
    let text = out.render().expect("render");
    assert!(text.contains("mongodb_oplog_window_seconds 11444.0\n"), "no labels: {text}");
    assert!(text.contains("mongodb_oplog_max_size_bytes 3810627072\n"), "integers stay integers: {text}");

    // Plain collStats shape (size/maxSize at the top level) and an empty oplog.
    let w = oplog::parse(None, None, Some(&doc! {"size": 10i64, "maxSize": 1024i64, "ok": 1.0})).expect("sizes");
    assert_eq!((w.size_bytes, w.max_size_bytes, w.window_secs()), (Some(Num::Int(10)), Some(Num::Int(1024)), None));
}

// ---- $currentOp -----------------------------------------------------------------

fn op(op: &str, ns: &str, secs: i64) -> Document {
    doc! {"type": "op", "desc": "conn42", "client": "10.1.2.3:50000", "active": true, "opid": 12345,
    "op": op, "ns": ns, "secs_running": secs, "microsecs_running": secs * 1_000_000,
    "command": {"find": "patients", "filter": {"ssn": "123-45-6789"}}}
}

#[test]
fn current_op_counts_ops_over_the_threshold_by_op_and_db() {
    let mut ops = vec![
        op("query", "app.patients", 120),
        op("query", "app.visits", 90),
        op("update", "app.patients", 61),
        op("update", "app.patients", 59),
        op("command", "admin.$cmd", 300),
        op("mapreduce-ish", "reports.x", 100),
        op("insert", "", 100),
    ];
    // Idle and internal work never counts, however old.
    ops.push(doc! {"type": "idleSession", "active": false, "op": "none", "secs_running": 99_999});
    ops.push(
        doc! {"desc": "rsSync-0", "active": true, "op": "none", "ns": "local.replset.minvalid", "secs_running": 99_999},
    );
    let parsed = current_op::parse(&ops, 60.0);
    assert_eq!(parsed.oldest_secs, 300.0);
    let mut out = Exposition::new();
    current_op::encode(&parsed, &mut out);
    let n = |op: &str, db: &str| value(&out, "mongodb_long_running_operations", &[("op", op), ("db", db)]);
    assert_eq!(n("query", "app"), 2.0);
    assert_eq!(n("update", "app"), 1.0, "59 s is under the threshold");
    assert_eq!(n("command", "admin"), 1.0);
    assert_eq!(n("other", "reports"), 1.0, "unknown op type is bounded");
    assert_eq!(n("insert", "none"), 1.0, "empty ns");
    assert_eq!(value(&out, "mongodb_oldest_operation_seconds", &[]), 300.0);
    assert_eq!(value(&out, "mongodb_long_running_operations_threshold_seconds", &[]), 60.0);
    let text = out.render().expect("render");
    for secret in ["12345", "10.1.2.3", "patients", "123-45-6789", "conn42"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn current_op_database_labels_are_capped() {
    let ops: Vec<Document> = (0..80).map(|i| op("query", &format!("db{i:02}.c"), 100 + i)).collect();
    let parsed = current_op::parse(&ops, 1.0);
    let dbs: HashSet<&str> = parsed.long_running.keys().map(|(_, db)| db.as_str()).collect();
    assert_eq!(dbs.len(), current_op::MAX_DBS + 1);
    assert!(dbs.contains("other"));
    assert_eq!(parsed.long_running.values().sum::<u64>(), 80, "nothing lost, only folded");
    assert_eq!(parsed.long_running.get(&("query".into(), "other".into())), Some(&30));
    // Deterministic: the same input always keeps the same names.
    assert_eq!(current_op::parse(&ops, 1.0), parsed);
}

#[test]
fn current_op_with_nothing_running_reports_zero() {
    let parsed = current_op::parse(&[], 60.0);
    let mut out = Exposition::new();
    current_op::encode(&parsed, &mut out);
    assert_eq!(value(&out, "mongodb_oldest_operation_seconds", &[]), 0.0);
    assert_eq!(out.sample_count("mongodb_long_running_operations"), 0);
    // Zero is a value: the unlabelled total says 0 rather than nothing.
    assert_eq!(value(&out, "mongodb_long_running_operations_overall", &[]), 0.0);
}

// ---- dbStats --------------------------------------------------------------------

fn dbstats_reply(db: &str, objects: i64, fs_used: i64) -> Document {
    doc! {"db": db, "collections": 4i64, "views": 1i64, "objects": objects, "avgObjSize": 120.5,
    "dataSize": 1_000_000.0, "storageSize": 400_000.0, "indexes": 6i64, "indexSize": 200_000.0,
    "totalSize": 600_000.0, "scaleFactor": 1i64, "fsUsedSize": fs_used, "fsTotalSize": 100_000_000_000i64, "ok": 1.0}
}

#[test]
fn dbstats_per_database_and_filesystem_once() {
    let stats = vec![
        dbstats::parse("admin", &dbstats_reply("admin", 3, 91_000_000_000)),
        dbstats::parse("tenderly", &dbstats_reply("tenderly", 12_345, 91_000_000_001)),
        dbstats::parse("empty", &doc! {"ok": 0.0, "errmsg": "x"}),
    ];
    let mut out = Exposition::new();
    dbstats::encode(&stats, &mut out);
    let db = |d: &'static str| [("db", d)];
    assert_eq!(value(&out, "mongodb_db_objects", &db("tenderly")), 12_345.0);
    assert_eq!(value(&out, "mongodb_db_collections", &db("tenderly")), 4.0);
    assert_eq!(value(&out, "mongodb_db_views", &db("tenderly")), 1.0);
    assert_eq!(value(&out, "mongodb_db_data_size_bytes", &db("tenderly")), 1_000_000.0);
    assert_eq!(value(&out, "mongodb_db_storage_size_bytes", &db("tenderly")), 400_000.0);
    assert_eq!(value(&out, "mongodb_db_indexes", &db("tenderly")), 6.0);
    assert_eq!(value(&out, "mongodb_db_index_size_bytes", &db("tenderly")), 200_000.0);
    assert_eq!(value(&out, "mongodb_db_total_size_bytes", &db("tenderly")), 600_000.0);
    assert!(out.get("mongodb_db_objects", &db("empty")).is_none());
    // One filesystem pair per target, from the first database reporting it.
    assert_eq!(out.sample_count("mongodb_fs_used_bytes"), 1);
    assert_eq!(out.sample_count("mongodb_fs_total_bytes"), 1);
    let ratio = value(&out, "mongodb_fs_used_bytes", &[]) / value(&out, "mongodb_fs_total_bytes", &[]);
    assert_close(ratio, 0.91, "MongodbDiskSpaceLow ratio");
    let text = out.render().expect("render");
    assert!(text.contains("\nmongodb_fs_used_bytes 91000000000\n"), "{text}");
    assert!(text.contains("mongodb_db_objects{db=\"tenderly\"} 12345\n"), "{text}");
}

// ---- profiler -------------------------------------------------------------------

const PROFILE_FIXTURE: &str = "system.profile-mongod-unknown.json";

fn histogram(p: &DbProfile, op: &str) -> (f64, u64, Vec<(f64, u64)>) {
    match p.duration_histogram(op) {
        Value::Histogram { sum, count, buckets } => (sum, count, buckets),
        other => panic!("not a histogram: {other:?}"),
    }
}

fn bucket(buckets: &[(f64, u64)], le: f64) -> u64 {
    buckets.iter().find(|(b, _)| *b == le).map(|(_, n)| *n).unwrap_or_else(|| panic!("no bucket {le}"))
}

#[test]
fn profiler_fixture_counts_each_document_once_across_repeated_reads() {
    let docs = mongo_fixtures::load_documents(PROFILE_FIXTURE);
    assert_eq!(docs.len(), 4);
    let mut p = DbProfile::with_policy("integration", StartPolicy::CountHistory);
    assert_eq!(p.next_filter(), doc! {}, "no mark yet: read everything once");
    // The capture is not in ts order; ingest sorts.
    p.ingest(&docs);
    for _ in 0..3 {
        p.ingest(&docs);
    }
    assert_eq!((p.operations("update"), p.operations("query")), (2, 2));
    assert_eq!(p.operations("insert"), 0);
    // Newest document: 2024-07-09T18:44:27.336Z.
    assert_eq!(p.high_water_mark_millis(), Some(1_720_550_667_336));
    assert_eq!(p.next_filter(), doc! {"ts": {"$gte": DateTime::from_millis(1_720_550_667_336)}});

    // millis 10 and 21 (updates), 85 and 14 (queries).
    let (sum, count, buckets) = histogram(&p, "update");
    assert_eq!(count, 2);
    assert_close(sum, 0.031, "update sum");
    assert_eq!((bucket(&buckets, 0.01), bucket(&buckets, 0.05), bucket(&buckets, 0.1)), (1, 1, 0));
    let (sum, count, buckets) = histogram(&p, "query");
    assert_eq!(count, 2);
    assert_close(sum, 0.099, "query sum");
    assert_eq!((bucket(&buckets, 0.01), bucket(&buckets, 0.05), bucket(&buckets, 0.1)), (0, 1, 1));
    assert_eq!(buckets.len(), DURATION_BUCKETS.len() + 1);
    assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY));

    let mut out = Exposition::new();
    profile::encode(std::slice::from_ref(&p), &mut out);
    let text = out.render().expect("render");
    for line in [
        "mongodb_profiler_operations_total{db=\"integration\",op=\"update\"} 2\n",
        "mongodb_profiler_operations_total{db=\"integration\",op=\"insert\"} 0\n",
        "mongodb_profiler_operation_duration_seconds_bucket{db=\"integration\",op=\"update\",le=\"0.01\"} 1\n",
        "mongodb_profiler_operation_duration_seconds_bucket{db=\"integration\",op=\"update\",le=\"0.05\"} 2\n",
        "mongodb_profiler_operation_duration_seconds_bucket{db=\"integration\",op=\"query\",le=\"0.1\"} 2\n",
        "mongodb_profiler_operation_duration_seconds_bucket{db=\"integration\",op=\"query\",le=\"+Inf\"} 2\n",
        "mongodb_profiler_operation_duration_seconds_count{db=\"integration\",op=\"query\"} 2\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    for secret in ["192.168.65.1", "customers", "subscribed"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}

#[test]
fn profiler_start_from_now_does_not_count_the_backlog() {
    let docs = mongo_fixtures::load_documents(PROFILE_FIXTURE);
    // The exporter first sees the database at 2024-07-09T18:44:00Z, after
    // three of the four captured documents were written.
    let start = 1_720_550_640_000;
    let mut p = DbProfile::with_policy("integration", StartPolicy::FromMillis(start));
    assert_eq!(p.next_filter(), doc! {"ts": {"$gte": DateTime::from_millis(start)}}, "no special first query");
    // A client that ignored the filter still cannot make the backlog count.
    p.ingest(&docs);
    assert_eq!((p.operations("update"), p.operations("query")), (0, 1), "only the 18:44:27 find is after the start");
    // Counters exist (at 0) from the first read on, so the first increment shows.
    let mut out = Exposition::new();
    profile::encode(std::slice::from_ref(&p), &mut out);
    assert_eq!(out.sample_count("mongodb_profiler_operations_total"), 8);
    assert_eq!(value(&out, "mongodb_profiler_operations_total", &[("db", "integration"), ("op", "insert")]), 0.0);

    // Next scrape: the document at the mark comes back ($gte) plus a new one.
    let mut later = docs.clone();
    later.push(
        doc! {"op": "insert", "ns": "integration.c", "millis": 3_000, "ts": DateTime::from_millis(1_720_550_700_000)},
    );
    p.ingest(&later);
    assert_eq!((p.operations("insert"), p.operations("query"), p.operations("update")), (1, 1, 0));
    let (_, _, buckets) = histogram(&p, "insert");
    assert_eq!(bucket(&buckets, 5.0), 1, "3 s lands in the le=5 bucket");

    // The default policy starts at the exporter's clock: all of 2024 is history.
    let mut now = DbProfile::new("integration");
    now.ingest(&docs);
    assert_eq!(now.operations("query") + now.operations("update"), 0);
}

#[test]
fn profiler_count_history_on_an_empty_profiler_counts_everything_after() {
    let mut p = DbProfile::with_policy("app", StartPolicy::CountHistory);
    p.ingest(&[]);
    assert_eq!(p.next_filter(), doc! {});
    p.ingest(&[doc! {"op": "query", "millis": 1, "ts": DateTime::from_millis(10)}]);
    assert_eq!(p.operations("query"), 1);
}

fn pdoc(ms: i64, op: &str, millis: i64, client: &str) -> Document {
    doc! {"op": op, "ns": "app.c", "millis": millis, "client": client, "user": "", "ts": DateTime::from_millis(ms)}
}

#[test]
fn profiler_equal_millisecond_documents_are_neither_double_counted_nor_missed() {
    let mut p = DbProfile::with_policy("app", StartPolicy::CountHistory);
    let a = pdoc(1_000, "query", 5, "10.0.0.1");
    let b = pdoc(1_000, "query", 5, "10.0.0.2"); // same ms, written after scrape 1 read
    let c = pdoc(1_000, "update", 7, "10.0.0.1");
    let d = pdoc(1_001, "update", 7, "10.0.0.1");
    p.ingest(std::slice::from_ref(&a));
    p.ingest(&[a.clone(), b.clone()]);
    p.ingest(&[a.clone(), b.clone(), c.clone(), d.clone()]);
    p.ingest(std::slice::from_ref(&d));
    assert_eq!((p.operations("query"), p.operations("update")), (2, 2));
    assert_eq!(p.high_water_mark_millis(), Some(1_001));
    // Documents identical in every read field (the client projects only a
    // few) are distinct operations: a re-read counts only extra copies.
    let twin = pdoc(1_002, "query", 0, "10.0.0.9");
    p.ingest(std::slice::from_ref(&twin));
    p.ingest(&[twin.clone(), twin.clone()]);
    p.ingest(&[twin.clone(), twin.clone()]);
    assert_eq!(p.operations("query"), 4, "two twins at one ms, each counted once");
    // Stale documents (before the mark), e.g. from a client that ignored the
    // filter, are not counted again.
    p.ingest(&[a, b, c]);
    assert_eq!((p.operations("query"), p.operations("update")), (4, 2));
}

#[test]
fn profiler_scrape_limit_continues_from_the_new_mark() {
    let all: Vec<Document> = (0..10).map(|i| pdoc(100 + i, "command", i, "c")).collect();
    let mut p = DbProfile::with_policy("app", StartPolicy::CountHistory).with_limit(4);
    let mut reads = 0;
    // Simulate the server: filter ts >= mark, sort ascending, limit.
    loop {
        let from = p.high_water_mark_millis().unwrap_or(i64::MIN);
        let page: Vec<Document> = all
            .iter()
            .filter(|d| d.get_datetime("ts").map(|t| t.timestamp_millis() >= from).unwrap_or(false))
            .take(p.limit())
            .cloned()
            .collect();
        let before = p.operations("command");
        p.ingest(&page);
        reads += 1;
        if p.operations("command") == before || reads > 10 {
            break;
        }
    }
    assert_eq!(p.operations("command"), 10, "every document counted once over several scrapes");
    let mut out = Exposition::new();
    profile::encode(std::slice::from_ref(&p), &mut out);
    assert!(value(&out, "mongodb_profiler_scrape_limit_reached_total", &[("db", "app")]) >= 2.0);
    assert_eq!(value(&out, "mongodb_profiler_high_water_mark_timestamp_seconds", &[("db", "app")]), 0.109);
}

#[test]
fn profiler_level_and_unknown_ops() {
    let mut p = DbProfile::with_policy("app", StartPolicy::CountHistory);
    p.set_level(&doc! {"was": 1, "slowms": 100, "sampleRate": 1.0, "ok": 1.0});
    p.set_level(&doc! {"ok": 0.0, "was": 2, "slowms": 1});
    p.ingest(&[pdoc(1, "aggregate-ish", 1, "x"), pdoc(2, "killcursors", 1, "x")]);
    let mut out = Exposition::new();
    profile::encode(std::slice::from_ref(&p), &mut out);
    assert_eq!(value(&out, "mongodb_profiling_level", &[("db", "app")]), 1.0);
    assert_eq!(value(&out, "mongodb_profiling_slow_threshold_seconds", &[("db", "app")]), 0.1);
    assert_eq!(value(&out, "mongodb_profiler_operations_total", &[("db", "app"), ("op", "other")]), 1.0);
    assert_eq!(value(&out, "mongodb_profiler_operations_total", &[("db", "app"), ("op", "killcursors")]), 1.0);
    assert!(out.get("mongodb_profiler_operations_total", &[("op", "aggregate-ish")]).is_none());
}

// ---- malformed input --------------------------------------------------------------

fn decimal(s: &str) -> Bson {
    Bson::Decimal128(s.parse::<Decimal128>().expect("decimal literal"))
}

#[test]
fn malformed_status_replies_never_panic() {
    let many_members: Vec<Bson> =
        (0..200).map(|i| Bson::Document(doc! {"name": format!("h{i}:1"), "state": 2, "health": 1})).collect();
    let cases: Vec<Document> = vec![
        doc! {},
        doc! {"ok": "yes"},
        doc! {"ok": 1, "members": "not an array"},
        doc! {"ok": 1, "members": [1, "x", null, {"name": 5}, {"state": 1}]},
        doc! {"ok": 1, "set": 7, "date": "today", "myState": "PRIMARY", "term": f64::NAN, "members": []},
        doc! {"ok": 1, "set": "rs", "members": [
            {"name": "a:1", "state": decimal("1"), "health": decimal("1.0"), "optimeDate": DateTime::from_millis(-5_000)},
            {"name": "b:1", "state": 2.0, "health": f64::NAN, "optimeDate": DateTime::MAX, "pingMs": -3, "lastHeartbeat": DateTime::MIN},
            {"name": "c:1", "state": 2i64, "health": 1, "optime": {"ts": "x"}, "pingMs": f64::INFINITY},
            {"name": "d:1", "state": 1e300, "health": decimal("NaN"), "optimeDate": Timestamp { time: u32::MAX, increment: 0 }},
        ]},
        doc! {"ok": 1, "set": "rs", "date": DateTime::MIN, "members": [
            {"name": "p:1", "state": 1, "health": 1, "optimeDate": DateTime::MAX},
            {"name": "s:1", "state": 2, "health": 1, "optimeDate": DateTime::from_millis(1), "lastHeartbeat": DateTime::MAX},
        ]},
        doc! {"ok": 1, "set": "x".repeat(10_000), "members": many_members},
    ];
    for reply in &cases {
        let s = replset::parse_status(reply);
        assert!(s.members.len() <= replset::MAX_MEMBERS);
        let mut out = Exposition::new();
        replset::encode(Some(&s), None, &mut out);
        let text = out.render().expect("render");
        assert!(!text.contains("NaN") && !text.contains("inf"), "{reply:?}\n{text}");
        // No negative durations, whatever the input.
        for family in
            ["mongodb_replset_member_replication_lag_seconds", "mongodb_replset_member_last_heartbeat_age_seconds"]
        {
            for line in text.lines().filter(|l| l.starts_with(family)) {
                let v: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value");
                assert!(v >= 0.0, "{line}");
            }
        }
    }
    let capped = replset::parse_status(cases.last().expect("case"));
    assert_eq!((capped.members.len(), capped.dropped_members), (replset::MAX_MEMBERS, 200 - replset::MAX_MEMBERS));
    let decimals = replset::parse_status(&cases[5]);
    assert_eq!(decimals.members[0].state, Some(1), "Decimal128 state reads");
    assert_eq!(decimals.members[0].optime_millis, None, "pre-epoch optime is no optime");
}

#[test]
fn malformed_config_members_never_panic() {
    let reply = doc! {"ok": 1, "config": {"_id": 5, "version": "x", "members": [
        "garbage",
        {"host": ""},
        {"host": "a:1", "priority": -1, "votes": decimal("1"), "hidden": "yes", "secondaryDelaySecs": f64::NAN},
        {"host": "b:1", "priority": decimal("0.5"), "votes": -2, "arbiterOnly": 1, "slaveDelay": -60},
    ]}};
    let c = replset::parse_config(&reply);
    assert_eq!((c.members.len(), c.dropped_members, c.set.as_str(), c.version), (2, 2, "", None));
    let a = &c.members[0];
    assert_eq!((a.priority, a.votes, a.hidden, a.secondary_delay_secs), (1.0, 1, false, 0.0));
    let b = &c.members[1];
    assert_eq!((b.priority, b.votes, b.arbiter_only, b.secondary_delay_secs), (0.5, 1, true, 0.0));
}

#[test]
fn malformed_oplog_current_op_dbstats_and_profiler_input_never_panics() {
    let junk: Vec<Document> = vec![
        doc! {},
        doc! {"ts": "x", "wall": 5, "size": "big", "maxSize": -1, "storageStats": 3},
        doc! {"ts": Timestamp { time: 0, increment: 0 }, "wall": DateTime::from_millis(0)},
        doc! {"size": f64::NAN, "maxSize": f64::INFINITY, "scaleFactor": -4},
        doc! {"storageStats": {"size": decimal("1E+3"), "maxSize": decimal("-Infinity"), "scaleFactor": decimal("NaN")}},
        doc! {"op": 5, "ns": 7, "secs_running": -1, "microsecs_running": f64::NAN, "active": "maybe", "client": null},
        doc! {"op": "query", "ns": ".", "secs_running": decimal("1E+6"), "desc": "conn1", "command": "find"},
        doc! {"op": "query", "ns": "é".repeat(100), "secs_running": i64::MAX, "client": "x", "type": 3},
        doc! {"collections": -1, "objects": f64::NAN, "dataSize": decimal("12"), "fsUsedSize": "1", "fsTotalSize": 0},
        doc! {"ts": DateTime::MAX, "op": "query", "millis": f64::NAN},
        doc! {"ts": DateTime::MIN, "op": "query", "millis": -5},
        doc! {"ts": DateTime::from_millis(5), "op": "query", "millis": decimal("1E+400")},
        doc! {"ts": Timestamp { time: 5, increment: 1 }, "op": "query", "millis": 1},
    ];
    for (i, a) in junk.iter().enumerate() {
        for b in &junk {
            let _ = oplog::parse(Some(a), Some(b), Some(b));
        }
        let _ = dbstats::parse("db", a);
        let _ = current_op::parse(std::slice::from_ref(a), f64::NAN);
        let mut p = DbProfile::with_policy("db", StartPolicy::CountHistory).with_limit(1);
        p.ingest(std::slice::from_ref(a));
        p.ingest(&junk);
        p.set_level(a);
        let mut out = Exposition::new();
        let stats = [dbstats::parse("db", a)];
        dbstats::encode(&stats, &mut out);
        if let Some(w) = oplog::parse(Some(a), Some(a), Some(a)) {
            oplog::encode(&w, &mut out);
        }
        current_op::encode(&current_op::parse(&junk, -1.0), &mut out);
        profile::encode(std::slice::from_ref(&p), &mut out);
        let text = out.render().unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert!(!text.contains("NaN"), "case {i}: {text}");
    }
    // Specific degradations.
    let s = dbstats::parse("db", &junk[8]);
    assert_eq!(
        (s.collections, s.objects, s.data_size_bytes, s.fs_used_bytes, s.fs_total_bytes),
        (None, None, Some(Num::Int(12)), None, None)
    );
    let w = oplog::parse(None, None, Some(&junk[4])).expect("decimal size");
    assert_eq!((w.size_bytes, w.max_size_bytes), (Some(Num::Int(1000)), None));
    let mut p = DbProfile::with_policy("db", StartPolicy::CountHistory);
    p.ingest(&junk[9..]);
    assert_eq!(p.operations("query"), 3, "a Timestamp ts cannot be placed against the mark");
    assert_eq!(p.malformed_docs, 1);
    let (_, timed, _) = histogram(&p, "query");
    assert_eq!(timed, 0, "NaN, negative and out-of-range millis are counted but not timed");
}

// ---- goldens and descriptors ---------------------------------------------------------

fn golden_path(fixture: &str) -> PathBuf {
    let stem = Path::new(fixture).file_stem().and_then(|s| s.to_str()).expect("fixture stem");
    root().join("tests/golden/mongodb/replset").join(format!("{stem}.om"))
}

#[test]
fn golden_replset_expositions_match_byte_for_byte() {
    for name in STATUS_FIXTURES {
        let text = status_exposition(name).render().expect("render");
        let path = golden_path(name);
        crate::support::golden::assert_golden(&path, &text);
    }
}

fn all_descriptors() -> Vec<&'static tenderly_exporter::metrics::Desc> {
    let mut all = replset::descriptors();
    all.extend(oplog::descriptors());
    all.extend(current_op::descriptors());
    all.extend(dbstats::descriptors());
    all.extend(profile::descriptors());
    all
}

#[test]
fn replication_descriptors_are_well_formed_unique_and_documented() {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    let mut names = HashSet::new();
    for d in all_descriptors() {
        assert!(d.is_well_formed(), "{} is not well formed", d.name);
        assert!(d.name.starts_with("mongodb_"), "{}", d.name);
        assert!(names.insert(d.name), "{} declared twice", d.name);
        assert!(doc.contains(&format!("| `{}` |", d.name)), "no row for {} in the metrics doc", d.name);
    }
    // Every family an encoder emits is declared.
    for name in STATUS_FIXTURES {
        for family in status_exposition(name).family_names() {
            assert!(names.contains(family), "{family} emitted but not declared");
        }
    }
}
