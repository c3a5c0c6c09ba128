//! Property tests for everything that reads text or BSON we do not control:
//! the Redis `INFO` parser and encoder, the `k=v` list and number parsers, the
//! MongoDB reply parsers and encoders, and the targets file. The properties
//! are "never panics" plus the exposition staying a complete OpenMetrics
//! document. They are the in-`cargo test` counterpart of the coverage-guided
//! targets in `fuzz/` (run by `scripts/fuzz.sh`), and the home of reproducers
//! for what those targets find.
//!
//! Inputs are random bytes, and random input built from the real vocabulary
//! (field names and keys harvested from `tests/fixtures/`), plus real fixtures
//! with random values planted at random places: pure noise almost never reaches
//! the encoders, which are where typed values get used.
//!
//! Cases per property: `PROPTEST_CASES` (the defaults keep this file within a
//! few seconds in debug builds; e.g. `PROPTEST_CASES=5000` for a long run).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mongodb::bson::{Bson, DateTime, Decimal128, Document, Timestamp};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config as ProptestConfig;
use tenderly_exporter::collectors::mongodb::encode as mongo_encode;
use tenderly_exporter::collectors::mongodb::{
    current_op, dbstats, oplog, profile, replset, server_status, MongoSnapshot,
};
use tenderly_exporter::collectors::redis::encode as redis_encode;
use tenderly_exporter::collectors::redis::info::{
    bounded_label, parse_f64, parse_info, parse_kv_list, parse_number, parse_percent_ratio, Number,
};
use tenderly_exporter::collectors::redis::RedisSnapshot;
use tenderly_exporter::config::{parse_file, Env};
use tenderly_exporter::metrics::Exposition;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `default` cases unless `PROPTEST_CASES` says otherwise. Failures are not
/// persisted to `proptest-regressions/`: a failure found here becomes a named
/// `#[test]` below instead.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn sorted_files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = root().join(dir);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------
// Redis INFO

/// Parse, every typed view, encode (as `INFO` and as `CLUSTER INFO`), render.
fn redis_parse_encode_render(raw: &[u8]) -> String {
    let info = parse_info(raw);
    let _ = info.keyspace();
    let _ = info.replicas();
    let _ = info.command_stats();
    let _ = info.error_stats();
    let _ = info.latency_percentiles();
    let _ = info.listeners();
    let _ = info.modules();
    let snapshot = RedisSnapshot { cluster_info: Some(info.clone()), info, ..RedisSnapshot::default() };
    let mut out = Exposition::new();
    redis_encode::encode_up(true, &mut out);
    redis_encode::encode(&snapshot, &mut out);
    let text = out.render().expect("rendering into a String cannot fail");
    assert!(text.ends_with("# EOF\n"), "exposition not terminated: {:?}", &text[text.len().saturating_sub(80)..]);
    text
}

fn redis_fixtures() -> &'static [Vec<u8>] {
    static FIXTURES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        sorted_files("tests/fixtures/redis", "txt").iter().map(|p| std::fs::read(p).expect("fixture")).collect()
    })
}

/// Every field name in the real captures, so random replies reach the encoder.
fn redis_field_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let names: BTreeSet<String> = redis_fixtures()
            .iter()
            .flat_map(|raw| parse_info(raw).fields().map(|(k, _)| k.to_owned()).collect::<Vec<_>>())
            .collect();
        names.into_iter().collect()
    })
}

/// Numbers as a server might print them, including the ones that must not be
/// taken at face value.
fn numberish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        (0u32..100_000, 0u32..100).prop_map(|(a, b)| format!("{a}.{b:02}%")),
        select(
            &[
                "-1",
                "0",
                "-0",
                "1",
                "NaN",
                "nan",
                "inf",
                "-inf",
                "+inf",
                "infinity",
                "1e308",
                "1e309",
                "-1e309",
                "4.9e-324",
                "18446744073709551615",
                "18446744073709551616",
                "-9223372036854775809",
                "99999999999999999999999999999",
                "0x10",
                "1_000",
                " 7 ",
                "",
                "%",
                "-1%",
                "nan%",
                "1e400%",
                "65535",
                "65536",
                "4294967296",
            ][..]
        )
        .prop_map(str::to_owned),
    ]
}

/// `k=v` lists with known and random keys, odd separators and garbage parts.
fn kv_list() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        select(
            &[
                "keys",
                "expires",
                "avg_ttl",
                "subexpiry",
                "keys_with_volatile_items",
                "ip",
                "port",
                "state",
                "offset",
                "lag",
                "calls",
                "usec",
                "usec_per_call",
                "rejected_calls",
                "failed_calls",
                "count",
                "p50",
                "p99",
                "p99.9",
                "p100",
                "p100.1",
                "p-1",
                "pNaN",
                "pinf",
                "p",
                "name",
                "bind",
                "ver",
                "api",
                "filters",
                "usedby",
                "using",
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z0-9._ ]{0,8}",
    ];
    let value = prop_oneof![
        numberish(),
        "[ -~]{0,12}",
        select(&["online", "wait_bgsave", "::1", "10.0.0.1"][..]).prop_map(str::to_owned)
    ];
    let pair_joiner = select(&["=", "==", ":", "", " = "][..]);
    let separator = select(&[",", ", ", ",,", ";", "=", ""][..]);
    proptest::collection::vec((key, pair_joiner, value, separator), 0..8)
        .prop_map(|parts| parts.into_iter().map(|(k, j, v, s)| format!("{k}{j}{v}{s}")).collect::<String>())
}

fn redis_field_name() -> impl Strategy<Value = String> {
    let prefixed = (
        select(
            &["db", "slave", "cmdstat_", "errorstat_", "latency_percentiles_usec_", "listener", "module", "db-"][..],
        ),
        prop_oneof!["[0-9]{0,12}", "[a-zA-Z0-9_|.-]{0,12}"],
    )
        .prop_map(|(p, s)| format!("{p}{s}"));
    prop_oneof![3 => select(redis_field_names()), 2 => prefixed, 1 => "[ -~]{0,16}"]
}

fn info_line() -> impl Strategy<Value = String> {
    let value = prop_oneof![numberish(), kv_list(), "[ -~]{0,24}"];
    prop_oneof![
        1 => "[A-Za-z ]{0,12}".prop_map(|s| format!("# {s}")),
        8 => (redis_field_name(), value).prop_map(|(k, v)| format!("{k}:{v}")),
        1 => "[ -~]{0,20}",
    ]
}

/// A whole reply: lines with mixed endings, then a few invalid UTF-8 bytes
/// spliced in at random places.
fn info_reply() -> impl Strategy<Value = Vec<u8>> {
    let line = (info_line(), select(&["\r\n", "\n", "\r", "\r\r\n"][..]));
    const INVALID_UTF8: &[&[u8]] = &[&[0xff], &[0xc3], &[0xe2, 0x82], &[0xed, 0xa0, 0x80], &[0x00]];
    let invalid = select(INVALID_UTF8);
    (proptest::collection::vec(line, 0..40), proptest::collection::vec((any::<Index>(), invalid), 0..3)).prop_map(
        |(lines, splices)| {
            let mut raw: Vec<u8> =
                lines.into_iter().flat_map(|(l, end)| [l.into_bytes(), end.as_bytes().to_vec()].concat()).collect();
            for (at, bytes) in splices {
                let at = if raw.is_empty() { 0 } else { at.index(raw.len()) };
                raw.splice(at..at, bytes.iter().copied());
            }
            raw
        },
    )
}

/// A real capture with some values replaced: the encoder sees every field it
/// knows, a few with hostile values.
fn mutated_info_fixture() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![numberish(), kv_list(), "[ -~]{0,24}"];
    (any::<Index>(), proptest::collection::vec((any::<Index>(), value), 1..12)).prop_map(|(which, edits)| {
        let fixtures = redis_fixtures();
        let text = String::from_utf8_lossy(&fixtures[which.index(fixtures.len())]).into_owned();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.is_empty() {
            return Vec::new();
        }
        for (at, value) in edits {
            let at = at.index(lines.len());
            let line = &mut lines[at];
            if let Some((field, _)) = line.split_once(':') {
                *line = format!("{field}:{value}");
            }
        }
        lines.join("\r\n").into_bytes()
    })
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn redis_info_arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        redis_parse_encode_render(&raw);
    }

    #[test]
    fn redis_info_structured_replies_never_panic(raw in info_reply()) {
        redis_parse_encode_render(&raw);
    }

    #[test]
    fn redis_kv_list_and_numbers_keep_their_guarantees(text in prop_oneof![kv_list(), numberish(), "\\PC{0,64}"]) {
        for (key, value) in parse_kv_list(&text) {
            prop_assert!(!key.is_empty() && key.trim() == key, "key {:?}", key);
            prop_assert_eq!(value.trim(), value);
            for s in [key, value] {
                prop_assert!(parse_f64(s).is_none_or(f64::is_finite));
                prop_assert!(parse_percent_ratio(s).is_none_or(f64::is_finite));
                prop_assert!(!matches!(parse_number(s), Some(Number::Float(v)) if !v.is_finite()));
                prop_assert!(bounded_label(s).len() <= 128);
            }
        }
    }
}

proptest! {
    // Each case renders a full master capture: slower, so fewer cases.
    #![proptest_config(config(16))]

    #[test]
    fn redis_info_mutated_fixtures_never_panic(raw in mutated_info_fixture()) {
        redis_parse_encode_render(&raw);
    }
}

// ---------------------------------------------------------------------------
// MongoDB

/// Every parser over `docs` (several, as `$currentOp`, `system.profile` and the
/// oplog take), then the snapshot encoded and rendered. The same sequence as
/// the `mongodb_bson` fuzz target.
fn mongo_parse_encode_render(docs: &[Document]) -> String {
    let Some(first) = docs.first() else { return String::new() };
    for doc in docs {
        let _ = server_status::parse(doc);
        let _ = replset::parse_status(doc);
        let _ = replset::parse_config(doc);
        let _ = dbstats::parse("proptest", doc);
    }
    let _ = current_op::parse(docs, f64::INFINITY);
    let mut profiler = profile::DbProfile::new("proptest");
    profiler.set_level(first);
    profiler.ingest(docs);
    profiler.ingest(docs);
    let snapshot = MongoSnapshot {
        server_status: Some(server_status::parse(first)),
        replset_status: Some(replset::parse_status(first)),
        replset_config: Some(replset::parse_config(docs.get(1).unwrap_or(first))),
        oplog: oplog::parse(docs.first(), docs.get(1), docs.get(2)),
        current_op: Some(current_op::parse(docs, 0.0)),
        dbstats: docs.iter().enumerate().map(|(i, d)| dbstats::parse(&format!("db{i}"), d)).collect(),
        profiler: vec![profiler],
        ..MongoSnapshot::default()
    };
    let mut out = Exposition::new();
    mongo_encode::encode_up(true, &mut out);
    mongo_encode::encode(&snapshot, &mut out);
    let text = out.render().expect("rendering into a String cannot fail");
    assert!(text.ends_with("# EOF\n"), "exposition not terminated");
    text
}

/// Splits `raw` into at most eight back-to-back documents, as the
/// `mongodb_bson` fuzz target does. The declared length is checked against the
/// bytes left first: bson 2.x's `Document::from_reader` reserves the declared
/// length (up to 2 GiB) before reading. That is a harness artefact (the driver
/// only decodes documents inside a message it has already read whole), found
/// by the fuzz target on its first run.
fn read_documents(raw: &[u8]) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut rest = raw;
    while docs.len() < 8 {
        let Some(header) = rest.first_chunk::<4>() else { break };
        let Ok(len) = usize::try_from(i32::from_le_bytes(*header)) else { break };
        if len > rest.len() {
            break;
        }
        match Document::from_reader(&rest[..len]) {
            Ok(doc) => docs.push(doc),
            Err(_) => break,
        }
        rest = &rest[len..];
    }
    docs
}

/// Every fixture reply as BSON documents (an array fixture gives several).
/// Extended JSON files convert exactly; the Go `encoding/json` ones convert as
/// plain JSON (numbers become Int32/Int64/Double), which is fine for seeds.
fn mongo_fixtures() -> &'static [(String, Vec<Document>)] {
    static FIXTURES: OnceLock<Vec<(String, Vec<Document>)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        sorted_files("tests/fixtures/mongodb", "json")
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("fixture");
                let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
                let docs = match Bson::try_from(json).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
                    Bson::Document(doc) => vec![doc],
                    Bson::Array(items) => items
                        .into_iter()
                        .filter_map(|b| if let Bson::Document(d) = b { Some(d) } else { None })
                        .collect(),
                    _ => Vec::new(),
                };
                let stem = path.file_stem().expect("file name").to_string_lossy().into_owned();
                (stem, docs)
            })
            .collect()
    })
}

fn collect_keys(doc: &Document, keys: &mut BTreeSet<String>) {
    for (key, value) in doc {
        keys.insert(key.clone());
        collect_keys_in(value, keys);
    }
}

fn collect_keys_in(value: &Bson, keys: &mut BTreeSet<String>) {
    match value {
        Bson::Document(d) => collect_keys(d, keys),
        Bson::Array(items) => items.iter().for_each(|b| collect_keys_in(b, keys)),
        _ => {}
    }
}

/// Every key in the fixtures (a few thousand), so random documents hit the
/// names the parsers look up.
fn mongo_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = BTreeSet::new();
        mongo_fixtures().iter().flat_map(|(_, docs)| docs).for_each(|d| collect_keys(d, &mut keys));
        keys.into_iter().collect()
    })
}

fn mongo_key() -> impl Strategy<Value = String> {
    prop_oneof![4 => select(mongo_keys()), 1 => "[a-zA-Z$._ ]{0,10}"]
}

fn special_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e6f64..1e6,
        select(
            &[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                -1.0,
                f64::MAX,
                f64::MIN,
                f64::MIN_POSITIVE,
                9.3e18,
                1.9e19
            ][..]
        ),
    ]
}

fn bson_leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        prop_oneof![any::<i64>(), select(&[i64::MIN, i64::MAX, -1, 0, 1][..])].prop_map(Bson::Int64),
        special_f64().prop_map(Bson::Double),
        any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(Decimal128::from_bytes(b))),
        prop_oneof![
            select(
                &[
                    "PRIMARY",
                    "SECONDARY",
                    "ARBITER",
                    "STARTUP2",
                    "query",
                    "insert",
                    "update",
                    "getmore",
                    "command",
                    "local.oplog.rs",
                    ""
                ][..]
            )
            .prop_map(str::to_owned),
            "\\PC{0,16}",
        ]
        .prop_map(Bson::String),
        prop_oneof![any::<i64>(), select(&[i64::MIN, i64::MAX, 0][..])]
            .prop_map(|ms| Bson::DateTime(DateTime::from_millis(ms))),
        (any::<u32>(), any::<u32>()).prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
        Just(Bson::Null),
        any::<bool>().prop_map(Bson::Boolean),
    ]
}

/// Any BSON value, documents and arrays nested up to three levels.
fn bson_value() -> impl Strategy<Value = Bson> {
    bson_leaf().prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec((mongo_key(), inner.clone()), 0..6)
                .prop_map(|entries| Bson::Document(entries.into_iter().collect())),
            proptest::collection::vec(inner, 0..6).prop_map(Bson::Array),
        ]
    })
}

fn bson_document() -> impl Strategy<Value = Document> {
    proptest::collection::vec((mongo_key(), bson_value()), 0..12).prop_map(|entries| entries.into_iter().collect())
}

/// Counts the entries of `doc` (every key and array item, at every depth).
fn entry_count(doc: &Document) -> usize {
    fn in_value(value: &Bson) -> usize {
        match value {
            Bson::Document(d) => entry_count(d),
            Bson::Array(items) => items.iter().map(|b| 1 + in_value(b)).sum(),
            _ => 0,
        }
    }
    doc.iter().map(|(_, v)| 1 + in_value(v)).sum()
}

/// Replaces the `n`th entry of `doc` in depth-first order with `new`.
fn replace_nth(doc: &mut Document, n: &mut usize, new: &Bson) -> bool {
    fn in_value(value: &mut Bson, n: &mut usize, new: &Bson) -> bool {
        if *n == 0 {
            *value = new.clone();
            return true;
        }
        *n -= 1;
        match value {
            Bson::Document(d) => replace_nth(d, n, new),
            Bson::Array(items) => items.iter_mut().any(|b| in_value(b, n, new)),
            _ => false,
        }
    }
    doc.iter_mut().any(|(_, v)| in_value(v, n, new))
}

/// A real reply (or several, for the profiler fixture) with random values
/// planted at random places, nested documents included.
fn mutated_mongo_fixture() -> impl Strategy<Value = Vec<Document>> {
    (any::<Index>(), proptest::collection::vec((any::<Index>(), bson_value()), 1..10)).prop_map(|(which, edits)| {
        let fixtures = mongo_fixtures();
        let mut docs = fixtures[which.index(fixtures.len())].1.clone();
        for (at, value) in edits {
            if docs.is_empty() {
                break;
            }
            let doc_at = at.index(docs.len());
            let doc = &mut docs[doc_at];
            let total = entry_count(doc);
            if total > 0 {
                let mut n = at.index(total);
                replace_nth(doc, &mut n, &value);
            }
        }
        docs
    })
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn mongodb_arbitrary_documents_never_panic(docs in proptest::collection::vec(bson_document(), 1..4)) {
        mongo_parse_encode_render(&docs);
    }

    #[test]
    fn mongodb_arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        mongo_parse_encode_render(&read_documents(&raw));
    }
}

proptest! {
    // Each case clones, parses and renders a full fixture: fewer cases.
    #![proptest_config(config(16))]

    #[test]
    fn mongodb_mutated_fixtures_never_panic(docs in mutated_mongo_fixture()) {
        mongo_parse_encode_render(&docs);
    }
}

// ---------------------------------------------------------------------------
// Targets file

struct FixedEnv;

impl Env for FixedEnv {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "REDIS_PASSWORD" | "REDIS_REPLICA_PASSWORD" => Some("proptest-password".to_owned()),
            "REDIS_USER" => Some("proptest-user".to_owned()),
            _ => None,
        }
    }
}

/// YAML-ish text from the targets file's own keys and values, with YAML's
/// sharper edges (anchors, tags, flow collections, block scalars). Paths never
/// name an existing file, so no case reads the file system beyond `stat`.
fn yamlish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        8 => select(&[
            "targets", "name", "kind", "address", "username", "username_env", "password_env", "password_file", "tls",
            "ca_file", "cert_file", "key_file", "timeout", "default", "collectors", "slowlog", "latency", "config",
            "unknown", "<<",
        ][..]).prop_map(str::to_owned),
        1 => "[a-z_]{0,8}",
    ];
    let value = prop_oneof![
        8 => select(&[
            "", "redis", "mongodb", "localhost:6379", "rediss://h:6380", "redis://u:p@h:1/2", "redis://:pw@h",
            "redis://[::1]:7000", "[::1]", "unix:///run/redis.sock", "unix://rel", "h:0", "h:99999", "h:-1",
            "redis://h:1/99999999999999999999", "5s", "200ms", "1ms", "0s", "-1s", "1h", "18446744073709551616s",
            "99999999999999999999h", "1.5s", "true", "false", "yes", "~", "null", "REDIS_PASSWORD",
            "REDIS_REPLICA_PASSWORD", "MISSING_VAR", "/nonexistent/tenderly-proptest", "[]", "{}", "[a, b]",
            "{a: 1}", "&a x", "*a", "*undefined", "!!binary aGk=", "!!int 1", "!tag x", "'quoted'", "\"esc\\u0000\"",
            "|", ">-", "- x", "0x10", ".inf", ".nan", "é", "a: b: c",
        ][..]).prop_map(str::to_owned),
        1 => "[ -~]{0,16}",
    ];
    let line = (0usize..8, any::<bool>(), key, select(&[": ", ":", " : ", ""][..]), value).prop_map(
        |(indent, item, k, colon, v)| format!("{}{}{k}{colon}{v}", " ".repeat(indent), if item { "- " } else { "" }),
    );
    (proptest::collection::vec(line, 0..24), select(&["\n", "\r\n", "\r", "\t\n"][..]))
        .prop_map(|(lines, end)| lines.join(end))
}

fn config_seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let example = std::fs::read_to_string(root().join("examples/targets.yml")).expect("examples/targets.yml");
        vec![example, CONFIG_SEED_MINIMAL.to_owned(), CONFIG_SEED_FULL.to_owned()]
    })
}

/// Valid without any file on disk, so mutations start from a file that parses.
const CONFIG_SEED_MINIMAL: &str = "targets:\n  - name: a\n    kind: redis\n    address: localhost:6379\n";
const CONFIG_SEED_FULL: &str = "targets:
  - name: cache
    kind: redis
    address: redis://u:p@cache.internal:6380/2
    password_env: REDIS_PASSWORD
    timeout: 5s
    default: true
    collectors:
      slowlog: false
      latency: true
      config: false
  - name: sessions
    kind: redis
    address: unix:///run/redis.sock
    username_env: REDIS_USER
    timeout: 250ms
";

/// A seed with random byte-level edits (insert, delete, replace).
fn mutated_config_seed() -> impl Strategy<Value = String> {
    let edit = (any::<Index>(), 0u8..3, "[ -~\n]{0,6}");
    (any::<Index>(), proptest::collection::vec(edit, 1..8)).prop_map(|(which, edits)| {
        let seeds = config_seeds();
        let mut text: Vec<char> = seeds[which.index(seeds.len())].chars().collect();
        for (at, kind, insert) in edits {
            let at = at.index(text.len() + 1);
            match kind {
                0 => text.splice(at..at, insert.chars()).for_each(drop),
                1 => text.splice(at..(at + insert.len()).min(text.len()), std::iter::empty()).for_each(drop),
                _ => text.splice(at..(at + insert.len()).min(text.len()), insert.chars()).for_each(drop),
            }
        }
        text.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn config_file_arbitrary_text_never_panics(text in prop_oneof![yamlish(), mutated_config_seed(), "\\PC{0,256}"]) {
        let _ = parse_file(&text, Path::new("proptest.yml"), &FixedEnv);
    }
}

#[test]
fn config_seeds_parse() {
    for seed in [CONFIG_SEED_MINIMAL, CONFIG_SEED_FULL] {
        let targets = parse_file(seed, Path::new("seed.yml"), &FixedEnv).expect("seed is valid");
        assert!(!targets.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Seed corpus for the cargo-fuzz targets

/// Writes the seed corpus of every `fuzz/` target from the fixtures (the
/// corpus directories are generated, never committed). Run by
/// `scripts/fuzz.sh`; `FUZZ_CORPUS_DIR` overrides `fuzz/corpus`.
#[test]
#[ignore = "seed generator for scripts/fuzz.sh"]
fn write_fuzz_seed_corpus() {
    let corpus = std::env::var_os("FUZZ_CORPUS_DIR").map_or_else(|| root().join("fuzz/corpus"), PathBuf::from);
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| panic!("write {name}: {e}"));
    };

    let mut kv_values = BTreeSet::new();
    for path in sorted_files("tests/fixtures/redis", "txt") {
        let raw = std::fs::read(&path).expect("fixture");
        let name = path.file_name().expect("file name").to_string_lossy().into_owned();
        write("redis_info", &name, &raw);
        let info = parse_info(&raw);
        kv_values.extend(info.fields().filter(|(_, v)| v.contains('=')).map(|(_, v)| v.to_owned()));
    }
    for (i, value) in kv_values.iter().enumerate() {
        write("redis_kv_list", &format!("fixture-{i:04}"), value.as_bytes());
    }

    let to_bytes = |docs: &[Document]| {
        let mut bytes = Vec::new();
        for doc in docs {
            doc.to_writer(&mut bytes).expect("a document from JSON serialises");
        }
        bytes
    };
    for (stem, docs) in mongo_fixtures() {
        write("mongodb_bson", &format!("{stem}.bson"), &to_bytes(docs));
    }
    // The oplog parser takes three documents: first entry, last entry, collStats.
    let coll_stats = mongo_fixtures().iter().find(|(stem, _)| stem.starts_with("collStats-local.oplog.rs"));
    if let Some((_, stats)) = coll_stats {
        let entry = |secs: u32| -> Document {
            [
                ("ts".to_owned(), Bson::Timestamp(Timestamp { time: secs, increment: 1 })),
                ("wall".to_owned(), Bson::DateTime(DateTime::from_millis(i64::from(secs) * 1000))),
            ]
            .into_iter()
            .collect()
        };
        let docs = [entry(1_745_300_000), entry(1_745_310_000), stats[0].clone()];
        write("mongodb_bson", "oplog-window.bson", &to_bytes(&docs));
    }

    for (i, seed) in config_seeds().iter().enumerate() {
        write("config_file", &format!("seed-{i}.yml"), seed.as_bytes());
    }
}

// ---------------------------------------------------------------------------
// Reproducers (found by reading `read_secret_file` while writing the targets
// above; fixes belong to the config module)

/// Secret files without a meaningful length: a FIFO (would block startup, or
/// stream without end) and `/dev/zero` are refused; the cap holds on what is read.
#[test]
fn password_file_cap_holds_for_files_without_a_length() {
    let dir = crate::support::private_temp_dir("fifo-secret");
    let fifo = dir.join("secret");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let writer_path = fifo.clone();
    // Blocks in open() until the parser opens the FIFO for reading; left
    // detached in case it never does.
    std::thread::spawn(move || {
        let _ = std::fs::write(writer_path, vec![b'x'; 128 * 1024]);
    });
    let text = format!(
        "targets:\n  - name: a\n    kind: redis\n    address: localhost:6379\n    password_file: {}\n",
        fifo.display()
    );
    let result = parse_file(&text, Path::new("fifo.yml"), &FixedEnv);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(result.is_err(), "a 128 KiB secret was accepted past the 64 KiB cap");
    let text = "targets:\n  - name: a\n    kind: redis\n    address: localhost:6379\n    password_file: /dev/zero\n";
    let err = parse_file(text, Path::new("zero.yml"), &FixedEnv).expect_err("/dev/zero refused").to_string();
    assert!(err.contains("not a regular file"), "{err}");
}
