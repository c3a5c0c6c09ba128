//! serverStatus parser and encoder on real captures (`tests/fixtures/mongodb/`,
//! provenance in its README; loaded by `support::mongo_fixtures`), malformed
//! replies, and golden expositions (`tests/golden/mongodb/server_status/`,
//! refresh with `UPDATE_GOLDEN=1`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use mongodb::bson::{doc, Bson, Decimal128, Document};
use tenderly_exporter::collectors::mongodb::bson_num::Num;
use tenderly_exporter::collectors::mongodb::server_status::{descriptors, encode, parse, ServerStatus};
use tenderly_exporter::metrics::{Exposition, Value};

use crate::support::mongo_fixtures::{self, Format};

const MIB: f64 = 1048576.0;

const CONFIGSVR_8_0_8: &str = "serverStatus-configsvr-primary-8.0.8.json";
const MONGOS_8_0_8: &str = "serverStatus-mongos-8.0.8.json";
const PRIMARY_3_6_20: &str = "serverStatus-replset-primary-3.6.20.json";
const PRIMARY_4_2_8: &str = "serverStatus-replset-primary-4.2.8.json";
const PRIMARY_4_4_29: &str = "serverStatus-replset-primary-4.4.29.json";
const SECONDARY_4_2_14: &str = "serverStatus-replset-secondary-4.2.14.json";
const SHARD_7_0_12: &str = "serverStatus-shardsvr-primary-7.0.12.json";
const STANDALONE_4_0_3: &str = "serverStatus-standalone-4.0.3.json";
const STANDALONE_4_0_4: &str = "serverStatus-standalone-4.0.4.json";
const STANDALONE_7_0_21: &str = "serverStatus-standalone-7.0.21.json";
const STANDALONE_8_0_9: &str = "serverStatus-standalone-8.0.9.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn server_status_fixtures() -> Vec<String> {
    let names = mongo_fixtures::names("serverStatus-");
    assert!(names.len() >= 15, "expected the 15 serverStatus captures, found {names:?}");
    names
}

fn status(name: &str) -> ServerStatus {
    parse(&mongo_fixtures::load(name))
}

fn exposition_of(doc: &Document) -> Exposition {
    let mut out = Exposition::new();
    encode(&parse(doc), &mut out);
    out
}

fn exposition(name: &str) -> Exposition {
    exposition_of(&mongo_fixtures::load(name))
}

fn render(name: &str) -> String {
    exposition(name).render().expect("render exposition")
}

fn f64_of(out: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    out.get(name, labels).unwrap_or_else(|| panic!("{name}{labels:?} missing")).as_f64()
}

/// The number at `path` read straight from the fixture's JSON text.
fn raw(name: &str, path: &[&str]) -> f64 {
    mongo_fixtures::raw_number(name, path).unwrap_or_else(|| panic!("{name}: {path:?} not in the fixture text"))
}

#[test]
fn every_mongodb_fixture_loads_in_its_format() {
    let all = mongo_fixtures::names("");
    assert!(all.len() >= 40, "{all:?}");
    for name in &all {
        let docs = mongo_fixtures::load_documents(name);
        assert!(!docs.is_empty() && docs.iter().all(|d| !d.is_empty()), "{name}: empty");
    }
    let format = |name: &str| mongo_fixtures::load_bson(name).0;
    assert_eq!(format(STANDALONE_8_0_9), Format::ExtJsonCanonical);
    assert_eq!(format("replSetGetStatus-configsvr-primary-4.2.x.json"), Format::ExtJsonRelaxed);
    assert_eq!(format(PRIMARY_4_2_8), Format::GoEncodingJson);
    assert_eq!(format(STANDALONE_4_0_3), Format::GoEncodingJson);
    assert_eq!(format("getDiagnosticData-excerpt-8.3.json"), Format::GoEncodingJson);
    assert_eq!(mongo_fixtures::load_documents("system.profile-mongod-unknown.json").len(), 4);
}

#[test]
fn go_json_is_converted_to_the_closest_bson_types() {
    let doc = mongo_fixtures::load(PRIMARY_4_2_8);
    // Integral numbers -> Int64, others -> Double.
    assert_eq!(doc.get("uptime"), Some(&Bson::Int64(9137)));
    assert_eq!(doc.get_document("flowControl").ok().and_then(|fc| fc.get("locksPerOp")), Some(&Bson::Double(2.908)));
    // RFC 3339 strings (Go time.Time) -> DateTime, with their offset applied.
    let local_time = doc.get_datetime("localTime").expect("localTime is a date");
    assert_eq!(local_time.try_to_rfc3339_string().expect("rfc3339"), "2020-09-10T17:39:52Z");
    // {"T", "I"} -> Timestamp.
    let op_time =
        doc.get_document("repl").and_then(|r| r.get_document("lastWrite")).and_then(|w| w.get_document("opTime"));
    let ts = op_time.and_then(|o| o.get_timestamp("ts")).expect("repl.lastWrite.opTime.ts is a timestamp");
    assert_eq!((ts.time, ts.increment), (1599759587, 1));
    let converted = mongo_fixtures::from_go_json(serde_json::json!({"ts": {"T": 1599759587, "I": 3}, "x": {"T": 1}}));
    let converted = converted.as_document().expect("document");
    assert_eq!(converted.get_timestamp("ts").map(|t| (t.time, t.increment)), Ok((1599759587, 3)));
    assert!(converted.get_document("x").is_ok(), "only exact {{T, I}} pairs are timestamps");
    // Strings that merely look date-like stay strings.
    let s = mongo_fixtures::from_go_json(serde_json::json!("2020-09-10 14:39:52"));
    assert_eq!(s, Bson::String("2020-09-10 14:39:52".into()));
}

#[test]
fn every_server_status_capture_parses_encodes_and_renders() {
    for name in server_status_fixtures() {
        let out = exposition(&name);
        for family in
            ["mongodb_version_info", "mongodb_uptime_seconds", "mongodb_connections", "mongodb_op_counters_total"]
        {
            assert!(out.sample_count(family) > 0, "{name}: {family} missing");
        }
        let text = out.render().unwrap_or_else(|e| panic!("{name}: render failed: {e}"));
        assert!(text.ends_with("# EOF\n"), "{name}");
        assert!(!text.contains("rs_state") && !text.contains("replset_state"), "{name}: replica-set state as a label");
    }
}

#[test]
fn values_match_the_fixture_text_on_every_capture() {
    for name in server_status_fixtures() {
        let out = exposition(&name);
        let current = raw(&name, &["connections", "current"]);
        assert_eq!(f64_of(&out, "mongodb_connections", &[("state", "current")]), current, "{name}");
        let available = raw(&name, &["connections", "available"]);
        assert_eq!(f64_of(&out, "mongodb_connections", &[("state", "available")]), available, "{name}");
        let query = raw(&name, &["opcounters", "query"]);
        assert_eq!(f64_of(&out, "mongodb_op_counters_total", &[("type", "query")]), query, "{name}");
        let resident = raw(&name, &["mem", "resident"]);
        assert_eq!(f64_of(&out, "mongodb_memory_bytes", &[("type", "resident")]), resident * MIB, "{name}");
        let timed_out = raw(&name, &["metrics", "cursor", "timedOut"]);
        assert_eq!(f64_of(&out, "mongodb_cursors_timed_out_total", &[]), timed_out, "{name}");
        if let Some(in_cache) =
            mongo_fixtures::raw_number(&name, &["wiredTiger", "cache", "bytes currently in the cache"])
        {
            assert_eq!(f64_of(&out, "mongodb_wiredtiger_cache_bytes", &[("type", "total")]), in_cache, "{name}");
            let max = raw(&name, &["wiredTiger", "cache", "maximum bytes configured"]);
            assert_eq!(f64_of(&out, "mongodb_wiredtiger_cache_max_bytes", &[]), max, "{name}");
        }
    }
}

#[test]
fn values_match_the_fixture_text_per_version() {
    // 8.0.8 config server: canonical EJSON, tickets under queues.execution.
    let out = exposition(CONFIGSVR_8_0_8);
    assert_eq!(out.get("mongodb_connections", &[("state", "current")]), Some(&Value::Int(36)));
    assert_eq!(out.get("mongodb_connections", &[("state", "active")]), Some(&Value::Int(10)));
    assert_eq!(out.get("mongodb_connections_created_total", &[]), Some(&Value::Int(77)));
    assert_eq!(out.get("mongodb_connections_rejected_total", &[]), Some(&Value::Int(0)));
    assert_eq!(out.get("mongodb_op_counters_total", &[("type", "query")]), Some(&Value::Int(5425)));
    assert_eq!(out.get("mongodb_memory_bytes", &[("type", "resident")]), Some(&Value::Int(211 * 1048576)));
    assert_eq!(out.get("mongodb_memory_bytes", &[("type", "virtual")]), Some(&Value::Int(4265 * 1048576)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_bytes", &[("type", "total")]), Some(&Value::Int(1152223)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_bytes", &[("type", "dirty")]), Some(&Value::Int(580848)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_max_bytes", &[]), Some(&Value::Int(7507804160)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_read_into_bytes_total", &[]), Some(&Value::Int(8059)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_written_from_bytes_total", &[]), Some(&Value::Int(11554357)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_evicted_pages_total", &[("type", "modified")]), Some(&Value::Int(3)));
    assert_eq!(out.get("mongodb_tickets_available", &[("type", "write")]), Some(&Value::Int(16)));
    assert_eq!(out.get("mongodb_tickets_capacity", &[("type", "read")]), Some(&Value::Int(16)));
    assert_eq!(out.get("mongodb_tickets_queued", &[("type", "read")]), Some(&Value::Int(0)));
    assert_eq!(out.get("mongodb_op_latencies_seconds_total", &[("type", "reads")]), Some(&Value::Float(1.06998)));
    assert_eq!(out.get("mongodb_op_latencies_ops_total", &[("type", "reads")]), Some(&Value::Int(3537)));
    assert_eq!(out.get("mongodb_transactions_started_total", &[]), Some(&Value::Int(119)));
    assert_eq!(out.get("mongodb_transactions_committed_total", &[]), Some(&Value::Int(119)));
    assert_eq!(out.get("mongodb_asserts_total", &[("type", "user")]), Some(&Value::Int(375)));
    assert_eq!(out.get("mongodb_network_bytes_total", &[("direction", "in")]), Some(&Value::Int(3186888)));
    assert_eq!(out.get("mongodb_network_requests_total", &[]), Some(&Value::Int(9382)));
    assert_eq!(out.get("mongodb_flow_control_enabled", &[]), Some(&Value::Int(1)));
    assert_eq!(out.get("mongodb_flow_control_is_lagged", &[]), Some(&Value::Int(0)));
    assert_eq!(out.get("mongodb_flow_control_target_rate_limit", &[]), Some(&Value::Int(1000000000)));
    assert_eq!(out.get("mongodb_documents_total", &[("type", "returned")]), Some(&Value::Int(3713)));
    let wait = [("resource", "ReplicationStateTransition"), ("mode", "intent_exclusive")];
    assert_eq!(out.get("mongodb_locks_acquire_total", &wait), Some(&Value::Int(53600)));
    assert_eq!(out.get("mongodb_locks_acquire_wait_total", &wait), Some(&Value::Int(9)));
    assert_eq!(out.get("mongodb_locks_acquire_wait_seconds_total", &wait), Some(&Value::Float(0.803842)));
    assert_eq!(out.get("mongodb_uptime_seconds", &[]), Some(&Value::Float(2111.884)));
    let info = [("version", "8.0.8"), ("storage_engine", "wiredTiger"), ("process", "mongod")];
    assert_eq!(out.get("mongodb_version_info", &info), Some(&Value::Int(1)));

    // 4.2.8 primary: Go JSON (numbers typed Int64/Double by the loader).
    let out = exposition(PRIMARY_4_2_8);
    assert_eq!(out.get("mongodb_connections", &[("state", "current")]), Some(&Value::Int(22)));
    assert_eq!(out.get("mongodb_op_counters_total", &[("type", "query")]), Some(&Value::Int(6132)));
    assert_eq!(out.get("mongodb_memory_bytes", &[("type", "resident")]), Some(&Value::Int(123 * 1048576)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_bytes", &[("type", "total")]), Some(&Value::Int(4148341)));
    assert_eq!(out.get("mongodb_tickets_out", &[("type", "read")]), Some(&Value::Int(0)));
    assert_eq!(out.get("mongodb_tickets_available", &[("type", "read")]), Some(&Value::Int(128)));
    assert_eq!(out.get("mongodb_cursors_timed_out_total", &[]), Some(&Value::Int(2)));
    assert_eq!(out.get("mongodb_cursors_open", &[("type", "pinned")]), Some(&Value::Int(2)));
    assert_eq!(out.get("mongodb_flow_control_acquire_wait_seconds_total", &[]), Some(&Value::Float(0.007635)));
    assert_eq!(out.get("mongodb_op_latencies_seconds_total", &[("type", "transactions")]), Some(&Value::Float(0.0)));
    assert_eq!(out.get("mongodb_tickets_queued", &[]), None, "4.2 has no ticket queue length");

    // 4.0.3 standalone (keyhole Go JSON): one ticket of each kind in use.
    let out = exposition(STANDALONE_4_0_3);
    assert_eq!(out.get("mongodb_tickets_out", &[("type", "read")]), Some(&Value::Int(1)));
    assert_eq!(out.get("mongodb_tickets_available", &[("type", "write")]), Some(&Value::Int(127)));
    assert_eq!(out.get("mongodb_tickets_capacity", &[("type", "write")]), Some(&Value::Int(128)));
    assert_eq!(out.get("mongodb_op_counters_total", &[("type", "insert")]), Some(&Value::Int(419400)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_bytes", &[("type", "total")]), Some(&Value::Int(625952952)));
    assert_eq!(out.get("mongodb_global_lock_active_clients", &[("type", "total")]), Some(&Value::Int(21)));

    // 4.2.14 Atlas secondary: cache byte counts are Doubles in the reply.
    let out = exposition(SECONDARY_4_2_14);
    assert_eq!(out.get("mongodb_wiredtiger_cache_bytes", &[("type", "total")]), Some(&Value::Int(6809431251)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_max_bytes", &[]), Some(&Value::Int(8589934592)));
    assert_eq!(out.get("mongodb_wiredtiger_cache_written_from_bytes_total", &[]), Some(&Value::Int(880587181183)));
    assert_eq!(out.get("mongodb_op_counters_repl_total", &[("type", "update")]), Some(&Value::Int(104393619)));
    assert_eq!(out.get("mongodb_memory_bytes", &[("type", "resident")]), Some(&Value::Int(7415 * 1048576)));
    let pbwm = [("resource", "ParallelBatchWriterMode"), ("mode", "exclusive")];
    assert_eq!(out.get("mongodb_locks_acquire_wait_seconds_total", &pbwm), Some(&Value::Float(621.724635)));
    assert_eq!(out.get("mongodb_connections", &[("state", "available")]), Some(&Value::Int(5941)));

    // 4.4.29: "maximum bytes configured" is a Double.
    let out = exposition(PRIMARY_4_4_29);
    assert_eq!(out.get("mongodb_wiredtiger_cache_max_bytes", &[]), Some(&Value::Int(1515192320)));

    // 7.0.21: tickets still under wiredTiger.concurrentTransactions, with a queue length.
    let out = exposition(STANDALONE_7_0_21);
    assert_eq!(out.get("mongodb_tickets_capacity", &[("type", "write")]), Some(&Value::Int(4)));
    assert_eq!(out.get("mongodb_tickets_queued", &[("type", "write")]), Some(&Value::Int(0)));
    assert_eq!(out.get("mongodb_connections_rejected_total", &[]), Some(&Value::Int(0)));

    // Windows: `process` is a full path to mongod.exe.
    for name in [SHARD_7_0_12, STANDALONE_4_0_4] {
        let s = status(name);
        assert_eq!(s.process.as_deref(), Some("mongod"), "{name}");
        assert!(mongo_fixtures::text(name).contains("mongod.exe"), "{name}");
    }
    let out = exposition(STANDALONE_8_0_9);
    let info = [("version", "8.0.9"), ("storage_engine", "wiredTiger"), ("process", "mongod")];
    assert_eq!(out.get("mongodb_version_info", &info), Some(&Value::Int(1)));
}

#[test]
fn mongos_has_no_storage_series_and_no_error() {
    let s = status(MONGOS_8_0_8);
    assert_eq!(s.wiredtiger_cache, None);
    assert!(s.tickets.is_empty() && s.opcounters_repl.is_empty());
    let out = exposition(MONGOS_8_0_8);
    let text = out.clone().render().expect("render");
    assert!(!text.contains("mongodb_wiredtiger_"), "{text}");
    assert!(!text.contains("mongodb_tickets_"), "{text}");
    assert!(!text.contains("mongodb_flow_control_"), "{text}");
    assert_eq!(out.sample_count("mongodb_op_counters_repl_total"), 0);
    assert_eq!(out.get("mongodb_connections", &[("state", "current")]), Some(&Value::Int(7)));
    assert_eq!(out.get("mongodb_transactions_aborted_total", &[]), Some(&Value::Int(1)));
    let info = [("version", "8.0.8"), ("storage_engine", ""), ("process", "mongos")];
    assert_eq!(out.get("mongodb_version_info", &info), Some(&Value::Int(1)));
}

#[test]
fn older_servers_skip_sections_they_do_not_have() {
    let s = status(PRIMARY_3_6_20);
    assert_eq!(s.flow_control, None, "flowControl arrived in 4.2");
    let txn = s.transactions.expect("3.6 has a transactions section (retryable writes only)");
    assert_eq!((txn.total_started, txn.current_open), (None, None));
    assert!(s.op_latencies.iter().all(|l| l.kind != "transactions"));
    assert_eq!(s.collection_scans, None, "collectionScans arrived in 4.4");
    let out = exposition(PRIMARY_3_6_20);
    assert_eq!(out.sample_count("mongodb_transactions_started_total"), 0);
    assert_eq!(out.sample_count("mongodb_connections_rejected_total"), 0);
    assert_eq!(out.get("mongodb_connections", &[("state", "active")]), None, "3.6 has no connections.active");
    assert_eq!(out.sample_count("mongodb_op_latencies_ops_total"), 3);
}

#[test]
fn alert_inputs_are_present_on_every_mongod() {
    for name in server_status_fixtures() {
        let out = exposition(&name);
        // MongodbConnectionsNearLimit: current / (current + available).
        assert!(out.get("mongodb_connections", &[("state", "current")]).is_some(), "{name}");
        assert!(out.get("mongodb_connections", &[("state", "available")]).is_some(), "{name}");
        // MongodbCursorsTimingOut: rate(mongodb_cursors_timed_out_total).
        assert!(out.get("mongodb_cursors_timed_out_total", &[]).is_some(), "{name}");
        if name == MONGOS_8_0_8 {
            continue;
        }
        // MongodbTicketsExhausted: available / capacity per type.
        for kind in ["read", "write"] {
            assert!(out.get("mongodb_tickets_available", &[("type", kind)]).is_some(), "{name} {kind}");
            assert!(out.get("mongodb_tickets_capacity", &[("type", kind)]).is_some(), "{name} {kind}");
        }
    }
}

#[test]
fn slow_query_counter_is_read_where_the_server_reports_it() {
    // Only the 8.3 excerpt (percona, PARTLY EDITED) has metrics.query.totalSlowQueryLogs.
    let diag = mongo_fixtures::load("getDiagnosticData-excerpt-8.3.json");
    let ss = diag.get_document("serverStatus").expect("serverStatus excerpt");
    let out = exposition_of(ss);
    assert_eq!(out.get("mongodb_slow_queries_total", &[]), Some(&Value::Int(24)));
    assert_eq!(out.get("mongodb_op_latencies_ops_total", &[("type", "commands")]), Some(&Value::Int(146424)));
    for name in server_status_fixtures() {
        assert_eq!(exposition(&name).sample_count("mongodb_slow_queries_total"), 0, "{name}");
    }
}

#[test]
fn every_numeric_bson_type_is_read() {
    let dec = |s: &str| s.parse::<Decimal128>().expect("decimal");
    let doc = doc! {
        "connections": { "current": 12i32, "available": 838_000i64, "active": 3.0f64, "totalCreated": dec("77") },
        "mem": { "resident": dec("1.5E+1"), "virtual": 2.5f64 },
        "opcounters": { "query": 5_000_000_000i64, "insert": dec("12.5") },
    };
    let out = exposition_of(&doc);
    assert_eq!(out.get("mongodb_connections", &[("state", "current")]), Some(&Value::Int(12)));
    assert_eq!(out.get("mongodb_connections", &[("state", "available")]), Some(&Value::Int(838_000)));
    assert_eq!(out.get("mongodb_connections", &[("state", "active")]), Some(&Value::Int(3)));
    assert_eq!(out.get("mongodb_connections_created_total", &[]), Some(&Value::Int(77)));
    assert_eq!(out.get("mongodb_memory_bytes", &[("type", "resident")]), Some(&Value::Int(15 * 1048576)));
    assert_eq!(out.get("mongodb_memory_bytes", &[("type", "virtual")]), Some(&Value::Float(2.5 * MIB)));
    assert_eq!(out.get("mongodb_op_counters_total", &[("type", "query")]), Some(&Value::Int(5_000_000_000)));
    assert_eq!(out.get("mongodb_op_counters_total", &[("type", "insert")]), Some(&Value::Float(12.5)));
}

/// Each case must parse and encode without panicking; `check` asserts how it degraded.
struct Case {
    name: &'static str,
    doc: Document,
    check: fn(&ServerStatus, &Exposition),
}

fn malformed_cases() -> Vec<Case> {
    let many_asserts: Document = (0..100).map(|i| (format!("kind{i}"), Bson::Int32(i))).collect();
    let many_locks: Document =
        (0..100).map(|i| (format!("Res{i}"), Bson::Document(doc! { "acquireCount": { "r": 1i64 } }))).collect();
    let mut deep = doc! { "x": 1i32 };
    for _ in 0..150 {
        deep = doc! { "d": deep };
    }
    vec![
        Case {
            name: "empty document",
            doc: Document::new(),
            check: |s, out| {
                assert_eq!(s, &ServerStatus::default());
                assert_eq!(out.family_names().count(), 0);
            },
        },
        Case {
            name: "strings where numbers are",
            doc: doc! { "connections": { "current": "12", "available": 100i32 }, "uptime": "long", "version": 8i32 },
            check: |_, out| {
                assert_eq!(out.get("mongodb_connections", &[("state", "current")]), None);
                assert_eq!(out.get("mongodb_connections", &[("state", "available")]), Some(&Value::Int(100)));
                assert_eq!(out.sample_count("mongodb_uptime_seconds"), 0);
                assert_eq!(out.sample_count("mongodb_version_info"), 0);
            },
        },
        Case {
            name: "negative counters and gauges",
            doc: doc! {
                "opcounters": { "query": -5i64, "insert": 3i32 },
                "network": { "bytesIn": -1i64, "bytesOut": 10i64 },
                "connections": { "current": -1i32 },
                "locks": { "Global": { "acquireCount": { "r": -3i64, "w": 4i64 } } },
            },
            check: |_, out| {
                assert_eq!(out.get("mongodb_op_counters_total", &[("type", "query")]), None);
                assert_eq!(out.get("mongodb_op_counters_total", &[("type", "insert")]), Some(&Value::Int(3)));
                assert_eq!(out.sample_count("mongodb_network_bytes_total"), 1);
                assert_eq!(out.sample_count("mongodb_connections"), 0);
                assert_eq!(out.sample_count("mongodb_locks_acquire_total"), 1);
            },
        },
        Case {
            name: "NaN and infinite doubles",
            doc: doc! {
                "mem": { "resident": f64::NAN, "virtual": 100i32 },
                "uptime": f64::INFINITY,
                "wiredTiger": { "cache": { "bytes currently in the cache": f64::NEG_INFINITY, "maximum bytes configured": 1e9f64 } },
                "opLatencies": { "reads": { "latency": f64::NAN, "ops": 2i64 } },
            },
            check: |_, out| {
                assert_eq!(out.get("mongodb_memory_bytes", &[("type", "resident")]), None);
                assert_eq!(out.get("mongodb_memory_bytes", &[("type", "virtual")]), Some(&Value::Int(100 * 1048576)));
                assert_eq!(out.sample_count("mongodb_uptime_seconds"), 0);
                assert_eq!(out.sample_count("mongodb_wiredtiger_cache_bytes"), 0);
                assert_eq!(out.get("mongodb_wiredtiger_cache_max_bytes", &[]), Some(&Value::Int(1_000_000_000)));
                assert_eq!(out.sample_count("mongodb_op_latencies_seconds_total"), 0);
                assert_eq!(out.get("mongodb_op_latencies_ops_total", &[("type", "reads")]), Some(&Value::Int(2)));
            },
        },
        Case {
            name: "Decimal128 NaN and Infinity",
            doc: doc! { "connections": {
                "current": "NaN".parse::<Decimal128>().expect("dec"),
                "available": "Infinity".parse::<Decimal128>().expect("dec"),
                "active": "-0".parse::<Decimal128>().expect("dec"),
            } },
            check: |_, out| {
                assert_eq!(out.sample_count("mongodb_connections"), 1);
                assert_eq!(out.get("mongodb_connections", &[("state", "active")]), Some(&Value::Int(0)));
            },
        },
        Case {
            name: "sections of the wrong type",
            doc: doc! {
                "connections": [1i32, 2i32], "opcounters": "lots", "mem": Bson::Null, "locks": "garbage",
                "wiredTiger": [], "transactions": 5i32, "flowControl": { "enabled": "yes", "isLagged": 2i32 },
                "queues": { "execution": { "read": "x", "write": [] } }, "asserts": true,
                "metrics": { "cursor": { "open": 3i32, "timedOut": { "n": 1i32 } }, "document": [] },
                "globalLock": { "currentQueue": "none", "activeClients": { "total": 4i32, "readers": "r" } },
            },
            check: |s, out| {
                assert_eq!(s.wiredtiger_cache, None);
                assert!(s.tickets.is_empty() && s.locks.is_empty() && s.asserts.is_empty());
                let fc = s.flow_control.as_ref().expect("flowControl is a document");
                assert_eq!((fc.enabled, fc.is_lagged), (None, None));
                assert_eq!(out.sample_count("mongodb_global_lock_active_clients"), 1);
                assert_eq!(out.sample_count("mongodb_cursors_timed_out_total"), 0);
                assert_eq!(out.sample_count("mongodb_flow_control_enabled"), 0);
            },
        },
        Case {
            name: "nested garbage inside locks and latencies",
            doc: doc! {
                "locks": {
                    "Global": 5i32,
                    "bad name!": { "acquireCount": { "r": 1i64 } },
                    "Database": { "acquireCount": "x", "acquireWaitCount": { "r": 1i64, "Q": 9i64 }, "timeAcquiringMicros": [1i32] },
                    "Collection": { "acquireCount": { "w": { "deeper": 1i32 }, "W": 2i32 } },
                },
                "opLatencies": { "reads": 5i32, "writes": { "latency": "x", "ops": 2i64 }, "bogus": { "latency": 1i32 } },
            },
            check: |s, out| {
                let resources: HashSet<&str> = s.locks.iter().map(|l| l.resource.as_str()).collect();
                assert_eq!(resources, HashSet::from(["Database", "Collection"]));
                assert_eq!(out.sample_count("mongodb_locks_acquire_wait_total"), 1, "unknown mode Q is skipped");
                assert_eq!(
                    out.get("mongodb_locks_acquire_total", &[("resource", "Collection"), ("mode", "exclusive")]),
                    Some(&Value::Int(2))
                );
                assert_eq!(out.sample_count("mongodb_locks_acquire_total"), 1);
                assert_eq!(out.sample_count("mongodb_op_latencies_ops_total"), 1);
                assert_eq!(out.sample_count("mongodb_op_latencies_seconds_total"), 0);
            },
        },
        Case {
            name: "server-chosen labels are bounded",
            doc: doc! {
                "asserts": many_asserts,
                "locks": many_locks,
                "version": "8.0.9\"} evil{x=\"",
                "process": "/opt/mongo db/bin/mongod",
            },
            check: |s, out| {
                assert_eq!(s.asserts.len(), 16);
                assert_eq!(out.sample_count("mongodb_locks_acquire_total"), 32);
                assert_eq!(s.version, None);
                assert_eq!(s.process.as_deref(), Some("mongod"), "only the file name matters");
                assert_eq!(out.sample_count("mongodb_version_info"), 0);
            },
        },
        Case {
            name: "bad asserts keys and values",
            doc: doc! { "asserts": { "regular": 1i32, "we ird": 2i32, "user": "3", "": 4i32, "rollovers": 1i32, "warning": -1i32 } },
            check: |s, out| {
                assert_eq!(s.asserts, vec![("regular".to_string(), Num::Int(1))]);
                assert_eq!(out.get("mongodb_asserts_rollovers_total", &[]), Some(&Value::Int(1)));
            },
        },
        Case {
            name: "broken newer ticket section falls back to the older one",
            doc: doc! {
                "queues": { "execution": { "read": { "out": "x" }, "write": 3i32 } },
                "wiredTiger": { "concurrentTransactions": { "read": { "out": 1i32, "available": 7i32, "totalTickets": 8i32 } } },
            },
            check: |_, out| {
                assert_eq!(out.get("mongodb_tickets_available", &[("type", "read")]), Some(&Value::Int(7)));
                assert_eq!(out.sample_count("mongodb_tickets_available"), 1);
            },
        },
        Case {
            name: "huge values do not overflow",
            doc: doc! { "mem": { "resident": i64::MAX, "virtual": 1e300f64 }, "opcounters": { "query": i64::MAX } },
            check: |_, out| {
                let resident = out.get("mongodb_memory_bytes", &[("type", "resident")]).expect("resident").as_f64();
                assert!(resident.is_finite() && resident > 9e24, "{resident}");
                assert_eq!(out.get("mongodb_op_counters_total", &[("type", "query")]), Some(&Value::Int(i64::MAX)));
                assert!(out.clone().render().expect("render").contains("mongodb_memory_bytes{type=\"virtual\"}"));
            },
        },
        Case {
            name: "deeply nested unknown fields are ignored",
            doc: doc! { "frobnicate": deep, "connections": { "current": 1i32 } },
            check: |_, out| {
                assert_eq!(out.get("mongodb_connections", &[("state", "current")]), Some(&Value::Int(1)));
            },
        },
    ]
}

#[test]
fn malformed_replies_never_panic_and_drop_only_the_bad_values() {
    for case in malformed_cases() {
        let parsed = parse(&case.doc);
        let mut out = Exposition::new();
        encode(&parsed, &mut out);
        out.clone().render().unwrap_or_else(|e| panic!("{}: render failed: {e}", case.name));
        (case.check)(&parsed, &out);
    }
}

/// Garbage of every BSON shape put in place of each section of a real reply,
/// one at a time: a cheap stand-in for fuzzing the section readers.
#[test]
fn any_section_replaced_by_garbage_never_panics() {
    let garbage = [
        Bson::Null,
        Bson::String("x".into()),
        Bson::Int32(-1),
        Bson::Double(f64::NAN),
        Bson::Array(vec![Bson::Int32(1), Bson::Document(doc! {})]),
        Bson::Document(doc! { "read": { "out": "x" }, "cache": [], "r": -1i64, "acquireCount": 1i32 }),
        Bson::Boolean(true),
    ];
    for name in [CONFIGSVR_8_0_8, PRIMARY_4_2_8, STANDALONE_7_0_21] {
        let original = mongo_fixtures::load(name);
        let baseline = exposition_of(&original);
        for key in original.keys() {
            for junk in &garbage {
                let mut doc = original.clone();
                doc.insert(key.clone(), junk.clone());
                let out = exposition_of(&doc);
                out.clone().render().unwrap_or_else(|e| panic!("{name} {key}: {e}"));
                if key != "connections" {
                    assert_eq!(
                        out.get("mongodb_connections", &[("state", "current")]),
                        baseline.get("mongodb_connections", &[("state", "current")]),
                        "{name}: garbage in {key} changed an unrelated section"
                    );
                }
            }
        }
    }
}

fn golden_path(fixture_name: &str) -> PathBuf {
    let stem = Path::new(fixture_name).file_stem().and_then(|s| s.to_str()).unwrap_or(fixture_name);
    root().join("tests/golden/mongodb/server_status").join(format!("{stem}.om"))
}

#[test]
fn golden_expositions_match_byte_for_byte() {
    for name in server_status_fixtures() {
        let text = render(&name);
        let path = golden_path(&name);
        crate::support::golden::assert_golden(&path, &text);
    }
}

#[test]
fn descriptors_are_well_formed_unique_and_cover_every_emitted_family() {
    let descs = descriptors();
    let mut names = HashSet::new();
    for d in &descs {
        assert!(d.is_well_formed(), "{} is not well formed", d.name);
        assert!(d.name.starts_with("mongodb_"), "{}", d.name);
        assert!(names.insert(d.name), "{} declared twice", d.name);
        // A gauge named *_total reads as a counter to every PromQL user.
        if d.kind != tenderly_exporter::metrics::Kind::Counter {
            assert!(!d.name.ends_with("_total"), "{} is not a counter but ends in _total", d.name);
        }
    }
    // OpenMetrics family names (counters lose `_total`) must not collide either.
    let families: HashSet<&str> = descs.iter().map(|d| d.name.strip_suffix("_total").unwrap_or(d.name)).collect();
    assert_eq!(families.len(), descs.len(), "two descriptors map to one OpenMetrics family");
    let mut emitted = HashSet::new();
    for name in server_status_fixtures() {
        for family in exposition(&name).family_names() {
            assert!(names.contains(family), "{family} emitted but missing from descriptors()");
            emitted.insert(family);
        }
    }
    let never: Vec<&str> = names.difference(&emitted).copied().collect();
    assert_eq!(never, vec!["mongodb_slow_queries_total"], "declared families no capture emits");
}

#[test]
fn every_descriptor_has_a_row_in_the_metrics_doc() {
    let path = root().join("docs/metrics.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for d in descriptors() {
        let row = format!("| `{}` |", d.name);
        assert!(doc.contains(&row), "{} has no metric row for {}", path.display(), d.name);
    }
}
