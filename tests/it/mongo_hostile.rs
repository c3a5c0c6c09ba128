//! Hostile MongoDB servers (issue 9, findings 1, 4 and 10): replies crafted
//! byte by byte and served by the replay server (`set_raw_reply`), through the
//! real driver inside the exporter.
//!
//! * Deep nesting: a reply nested 20,000 levels deep used to overflow the
//!   stack and abort the process (every target with it). Now the reply is
//!   refused before anything recursive touches it and only that collector fails.
//! * Size: a server that ignores the profiler's `limit` used to have its whole
//!   reply decoded; now at most `limit` documents are read.
//! * `mongodb_replset_members` is the true member count, not the 64 cap.

use crate::support::exporter::ChildExporter;
use mongodb::bson::{doc, DateTime, RawArrayBuf, RawDocumentBuf};
use proptest::prelude::*;
use tenderly_exporter::collectors::mongodb::bson_guard::{self, GuardError, MAX_DEPTH};

use crate::support::exporter::{http_request, Exposition, TestExporter};
use crate::support::mongo_replay::{ReplayServer, Scenario};

/// A document nested `depth` levels (`{"a": {"a": ...}}`), built without recursion.
fn nested(depth: usize) -> RawDocumentBuf {
    RawDocumentBuf::from_bytes(bson_guard::nested_bytes(depth)).expect("valid BSON")
}

/// `{cursor: {firstBatch: docs, id: 0, ns}, ok: 1}` as raw bytes.
fn cursor_reply(ns: &str, docs: impl IntoIterator<Item = RawDocumentBuf>) -> Vec<u8> {
    let mut batch = RawArrayBuf::new();
    for d in docs {
        batch.push(d);
    }
    let mut cursor = RawDocumentBuf::new();
    cursor.append("firstBatch", batch);
    cursor.append("id", 0i64);
    cursor.append("ns", ns);
    let mut reply = RawDocumentBuf::new();
    reply.append("cursor", cursor);
    reply.append("ok", 1.0);
    reply.into_bytes()
}

/// A profiler entry whose `x` field nests `depth` levels, so the entry itself
/// nests `depth + 1` levels.
fn deep_profile_entry(depth: usize) -> RawDocumentBuf {
    let mut entry = RawDocumentBuf::new();
    entry.append("ts", DateTime::from_millis(1_720_550_475_716));
    entry.append("op", "query");
    entry.append("ns", "tenderly.appointments");
    entry.append("millis", 5i32);
    entry.append("x", nested(depth));
    entry
}

fn success(m: &Exposition, collector: &str) -> f64 {
    m.expect("tenderly_exporter_collector_success", &[("target", "mongodb"), ("collector", collector)])
}

fn exporter_for(replay: &ReplayServer) -> TestExporter {
    TestExporter::start(&["--mongodb.uri", &replay.uri()], &[])
}

/// Old code: the 20,000-level entry overflowed the exporter thread's stack
/// and aborted the test binary. Now only `mongodb_profiler` fails, twice in a row.
#[test]
fn profiler_reply_nested_20000_levels_fails_only_the_profiler() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    replay.set_raw_reply("find", "tenderly", cursor_reply("tenderly.system.profile", [deep_profile_entry(20_000)]));
    let exporter = exporter_for(&replay);
    for _ in 0..2 {
        let m = exporter.scrape("/metrics");
        assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{}", m.text);
        assert_eq!(success(&m, "mongodb_profiler"), 0.0, "{}", m.text);
        for collector in ["mongodb", "mongodb_replset", "mongodb_oplog", "mongodb_currentop", "mongodb_dbstats"] {
            assert_eq!(success(&m, collector), 1.0, "{collector}: {}", m.text);
        }
    }
    assert_eq!(exporter.get("/-/healthy").status, 200);
}

/// The boundary: an entry nested exactly [`MAX_DEPTH`] levels is read, one
/// more level is refused.
#[test]
fn profiler_entry_depth_limit_is_exact() {
    for (depth, ok) in [(MAX_DEPTH - 1, 1.0), (MAX_DEPTH, 0.0)] {
        let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
        replay.set_raw_reply("find", "tenderly", cursor_reply("tenderly.system.profile", [deep_profile_entry(depth)]));
        let exporter = exporter_for(&replay);
        let m = exporter.scrape("/metrics");
        assert_eq!(success(&m, "mongodb_profiler"), ok, "entry nested {} levels: {}", depth + 1, m.text);
        assert_eq!(m.expect("mongodb_up", &[]), 1.0);
    }
}

/// `replSetGetStatus` (a plain command, decoded by the driver) nested one level
/// over the limit: the replset collector fails, the rest of the target is fine.
#[test]
fn replset_status_nested_over_the_limit_fails_only_replset() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let mut reply = RawDocumentBuf::new();
    reply.append("set", "my-rs");
    reply.append("x", nested(MAX_DEPTH));
    reply.append("ok", 1.0);
    replay.set_raw_reply("replSetGetStatus", "admin", reply.into_bytes());
    let exporter = exporter_for(&replay);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{}", m.text);
    assert_eq!(success(&m, "mongodb_replset"), 0.0, "{}", m.text);
    assert_eq!(success(&m, "mongodb_profiler"), 1.0, "{}", m.text);
    assert_eq!(m.count("mongodb_replset_members"), 0, "{}", m.text);
}

/// `serverStatus` over the limit fails the target's scrape (`mongodb_up 0`,
/// as any serverStatus failure does); the exporter keeps serving.
#[test]
fn server_status_nested_over_the_limit_marks_the_target_down_not_the_exporter() {
    server_status_nested_marks_the_target_down(MAX_DEPTH + 50);
}

/// Serves a `serverStatus` nested `depth` levels and checks the target is
/// down on two scrapes while the exporter keeps answering.
fn server_status_nested_marks_the_target_down(depth: usize) {
    let hostile = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let mut reply = RawDocumentBuf::new();
    reply.append("host", "hostile");
    reply.append("x", nested(depth));
    reply.append("ok", 1.0);
    hostile.set_raw_reply("serverStatus", "admin", reply.into_bytes());
    let exporter = exporter_for(&hostile);
    for _ in 0..2 {
        let m = exporter.scrape("/metrics");
        assert_eq!(m.expect("mongodb_up", &[]), 0.0, "{}", m.text);
    }
    assert_eq!(exporter.get("/-/healthy").status, 200);
}

/// A whole second one day ahead: counting starts at "now", older entries are skipped.
fn future_base_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    (now as i64 + 86_400) * 1000
}

/// A server that ignores `limit: 1000` and sends 100,000 profiler entries:
/// only the first 1,000 are read (old code decoded all of them).
#[test]
fn profiler_reads_at_most_its_limit_whatever_the_server_sends() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let base_ms = future_base_ms();
    let entries = (0..100_000i64).map(|i| {
        let mut e = RawDocumentBuf::new();
        e.append("ts", DateTime::from_millis(base_ms + i * 1000));
        e.append("op", "query");
        e.append("ns", "tenderly.appointments");
        e.append("millis", 500i32);
        e
    });
    replay.set_raw_reply("find", "tenderly", cursor_reply("tenderly.system.profile", entries));
    let exporter = exporter_for(&replay);
    let m = exporter.scrape("/metrics");
    assert_eq!(success(&m, "mongodb_profiler"), 1.0, "{}", m.text);
    // Entries are one second apart: the newest one read is the 1,000th.
    let mark = m.expect("mongodb_profiler_high_water_mark_timestamp_seconds", &[("db", "tenderly")]);
    assert_eq!(mark, (base_ms + 999 * 1000) as f64 / 1000.0, "read more than the limit\n{}", m.text);
}

/// A server that ignores `limit` and answers the profiler with 12.5 MB of
/// entries: the exporter's peak RSS stays well under the shipped unit's
/// `MemoryMax=128M` (old code decoded and copied the whole reply).
#[test]
fn profiler_flood_keeps_the_exporter_peak_rss_low() {
    flood(50_000, true);
}

/// A reply larger than any real server sends (one document is at most
/// 16 MiB + 16 KiB) is refused by the driver's reader before it is buffered
/// whole: the profiler fails alone and the exporter's memory stays low.
#[test]
fn a_reply_over_the_message_cap_fails_the_profiler_without_buffering_it() {
    flood(160_000, false);
}

/// Serves a profiler `find` reply of `entries` 250-byte documents (12.5 MB at
/// 50,000, 40 MB at 160,000) to an exporter child process, scrapes three
/// times, and checks the profiler's outcome and the exporter's peak RSS
/// against half the shipped unit's `MemoryMax=128M`.
fn flood(entries: i64, expect_success: bool) {
    if !std::path::Path::new("/proc/self/status").exists() {
        crate::support::process::skip("no /proc to read the peak RSS from");
        return;
    }
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let base_ms = future_base_ms();
    let padding = "p".repeat(200);
    let docs = (0..entries).map(|i| {
        let mut e = RawDocumentBuf::new();
        e.append("ts", DateTime::from_millis(base_ms + i * 1000));
        e.append("op", "query");
        e.append("ns", "tenderly.appointments");
        e.append("millis", 500i32);
        e.append("pad", padding.as_str());
        e
    });
    let body = cursor_reply("tenderly.system.profile", docs);
    let over_cap = body.len() > 16 * 1024 * 1024 + 64 * 1024;
    assert_eq!(over_cap, !expect_success, "reply is {} bytes", body.len());
    replay.set_raw_reply("find", "tenderly", body);
    let exporter = ChildExporter::start(&["--mongodb.uri", &replay.uri()]);
    for _ in 0..3 {
        let resp = http_request(exporter.addr, "GET", "/metrics", &[]);
        assert_eq!(resp.status, 200);
        let m = Exposition::parse(&resp.body);
        assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{}", m.text);
        let want = if expect_success { 1.0 } else { 0.0 };
        assert_eq!(success(&m, "mongodb_profiler"), want, "{}", m.text);
    }
    let peak_mib = exporter.peak_rss() / (1024 * 1024);
    eprintln!("exporter peak RSS (VmHWM) after 3 flooded scrapes of {entries} entries: {peak_mib} MiB");
    assert!(peak_mib < 64, "peak RSS {peak_mib} MiB");
}

/// 100 members (the cap is 64): the total says 100; per-member series stop at 64.
#[test]
fn replset_members_reports_the_true_count_beyond_the_series_cap() {
    let members: Vec<_> = (0..100)
        .map(|i| doc! {"_id": i, "name": format!("m{i}:27017"), "state": 2, "health": 1.0, "self": i == 0})
        .collect();
    let status = doc! {"set": "big", "myState": 2, "members": members, "ok": 1.0};
    let parsed = tenderly_exporter::collectors::mongodb::replset::parse_status(&status);
    assert_eq!(parsed.total_members, 100);
    assert_eq!(parsed.members.len(), tenderly_exporter::collectors::mongodb::replset::MAX_MEMBERS);
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    replay.set_raw_reply("replSetGetStatus", "admin", mongodb::bson::to_vec(&status).expect("serializes"));
    let exporter = exporter_for(&replay);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_replset_members", &[("set", "big")]), 100.0, "{}", m.text);
    assert_eq!(m.count("mongodb_replset_member_health"), 64, "{}", m.text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any depth, any mix of documents and arrays: the checker accepts exactly
    /// the documents within the limit, without recursion (depths reach 50,000).
    #[test]
    fn depth_checker_agrees_with_the_true_depth(
        depth in prop_oneof![1usize..=2 * MAX_DEPTH, 1usize..50_000],
        arrays in proptest::collection::vec(any::<bool>(), 0..64),
        limit in 1usize..=2 * MAX_DEPTH,
    ) {
        let bytes = nested_mixed(depth, &arrays);
        let got = bson_guard::check_raw(&bytes, limit, usize::MAX);
        if depth <= limit {
            prop_assert_eq!(got, Ok(depth));
        } else {
            prop_assert_eq!(got, Err(GuardError::TooDeep { limit }));
        }
        // Any truncation of valid bytes is refused, never a panic.
        let cut = bytes.len() / 2;
        prop_assert!(bson_guard::check_raw(&bytes[..cut], limit, usize::MAX).is_err());
    }
}

/// A document nested `depth` levels where level `i` is an array when
/// `arrays[i % len]` says so (array keys "0"), built in one pass.
fn nested_mixed(depth: usize, arrays: &[bool]) -> Vec<u8> {
    let wrappers = depth - 1;
    let total = 5 + wrappers * 8;
    let mut out = Vec::with_capacity(total);
    for level in 0..wrappers {
        let is_array = !arrays.is_empty() && arrays[level % arrays.len()];
        let (kind, key) = if is_array { (0x04u8, b'0') } else { (0x03u8, b'a') };
        out.extend_from_slice(&((total - level * 8) as i32).to_le_bytes());
        out.extend_from_slice(&[kind, key, 0]);
    }
    out.extend_from_slice(&[5, 0, 0, 0, 0]);
    out.resize(total, 0);
    out
}

/// `serverStatus` has no cursor: the driver decodes its reply itself, so the
/// depth check sits in the driver's wire layer (vendor/mongodb, patched). Old
/// code: 20,000 levels overflowed the stack there and aborted the binary.
#[test]
fn server_status_nested_20000_levels_marks_the_target_down_not_the_exporter() {
    server_status_nested_marks_the_target_down(20_000);
}

/// The driver's own `hello` (handshake and monitoring) nested 20,000 levels:
/// the target is down, the exporter lives.
#[test]
fn hello_nested_20000_levels_marks_the_target_down_not_the_exporter() {
    let hostile = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    hostile.set_hello_extra(nested(20_000));
    let exporter = exporter_for(&hostile);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 0.0, "{}", m.text);
    assert_eq!(exporter.get("/-/healthy").status, 200);
}
