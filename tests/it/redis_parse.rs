//! Redis INFO parser and encoder on real captures (`tests/fixtures/redis/`,
//! provenance in its README), malformed input, and golden expositions
//! (`tests/golden/redis/`, refresh with `UPDATE_GOLDEN=1`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tenderly_exporter::collectors::redis::encode::{descriptors, encode, encode_up};
use tenderly_exporter::collectors::redis::info::{parse_info, Info, MAX_LINE_BYTES};
use tenderly_exporter::collectors::redis::{LatencyEvent, RedisSnapshot, Slowlog};
use tenderly_exporter::metrics::{Exposition, Value};

const MASTER: &str = "redis-7.0.15-master-info-all.txt";
const REPLICA: &str = "redis-7.0.15-replica-info-all.txt";
const CLUSTER_NODE: &str = "redis-7.0.15-cluster-node-info-all.txt";
const CLUSTER_OK: &str = "redis-7.0.15-cluster-info-state-ok.txt";
const CLUSTER_FAIL: &str = "redis-7.0.15-cluster-info-state-fail.txt";
const INFO_FIXTURES: [&str; 3] = [MASTER, REPLICA, CLUSTER_NODE];

// The 1 MiB malformed case below relies on being over the cap.
const _: () = assert!(MAX_LINE_BYTES < 1024 * 1024);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures/redis").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn info(name: &str) -> Info {
    parse_info(&fixture(name))
}

/// The snapshot the golden file for `name` is built from. The master gets the
/// CONFIG GET / SLOWLOG / LATENCY LATEST values transcribed from
/// `redis-7.0.15-misc-commands.txt`; the cluster node gets the `CLUSTER INFO`
/// capture with `cluster_state:ok`.
fn snapshot(name: &str) -> RedisSnapshot {
    let mut snapshot = RedisSnapshot { info: info(name), ..RedisSnapshot::default() };
    if name == MASTER {
        snapshot.config = [
            ("maxmemory-samples", "5"),
            ("maxmemory-policy", "allkeys-lru"),
            ("maxmemory-eviction-tenacity", "10"),
            ("maxmemory", "67108864"),
            ("maxmemory-clients", "0"),
            ("databases", "16"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        snapshot.slowlog = Some(Slowlog {
            length: 4,
            last_id: Some(3),
            last_timestamp: Some(1795697056),
            last_duration_micros: Some(7),
        });
        snapshot.latency =
            Some(vec![LatencyEvent { event: "command".into(), timestamp: 1795697028, latest_ms: 1, max_ms: 1 }]);
    }
    if name == CLUSTER_NODE {
        snapshot.cluster_info = Some(info(CLUSTER_OK));
    }
    snapshot
}

fn exposition(snapshot: &RedisSnapshot) -> Exposition {
    let mut out = Exposition::new();
    encode_up(true, &mut out);
    encode(snapshot, &mut out);
    out
}

fn render(snapshot: &RedisSnapshot) -> String {
    exposition(snapshot).render().expect("render exposition")
}

fn crlf_to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

/// The value of quantile `q` in the `redis_latency_percentiles_seconds` summary of `cmd`.
fn quantile(out: &Exposition, cmd: &str, q: f64) -> f64 {
    match out.get("redis_latency_percentiles_seconds", &[("cmd", cmd)]) {
        Some(Value::Summary { quantiles, .. }) => {
            quantiles.iter().find(|(qq, _)| *qq == q).unwrap_or_else(|| panic!("{cmd}: no quantile {q}")).1
        }
        other => panic!("redis_latency_percentiles_seconds{{cmd={cmd:?}}}: {other:?}"),
    }
}

fn f64_of(out: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    out.get(name, labels).unwrap_or_else(|| panic!("{name}{labels:?} missing")).as_f64()
}

#[test]
fn every_capture_parses_without_dropping_lines() {
    for name in [MASTER, REPLICA, CLUSTER_NODE, CLUSTER_OK, CLUSTER_FAIL] {
        let parsed = info(name);
        assert!(!parsed.is_empty(), "{name}: no fields");
        assert_eq!(parsed.dropped_lines(), 0, "{name}: dropped lines");
    }
    let master = info(MASTER);
    let names: Vec<&str> = master.sections().iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Modules",
        "Commandstats",
        "Errorstats",
        "Latencystats",
        "Cluster",
        "Keyspace",
    ] {
        assert!(names.contains(&expected), "section {expected} missing from {names:?}");
    }
}

#[test]
fn master_values_match_the_capture_text() {
    let m = info(MASTER);
    assert_eq!(m.get("redis_version"), Some("7.0.15"));
    assert_eq!(m.get("maxmemory_policy"), Some("allkeys-lru"));
    assert_eq!(m.get("used_memory_peak_perc"), Some("100.11%"));
    assert_eq!(m.get_i64("second_repl_offset"), Some(-1));
    assert_eq!(m.section("keyspace").map(|s| s.fields.len()), Some(1));

    let db = &m.keyspace()[0];
    assert_eq!((db.db.as_str(), db.keys, db.expires, db.avg_ttl_ms), ("db0", Some(310), Some(290), Some(2624254)));

    let stats = m.command_stats();
    let set = stats.iter().find(|c| c.cmd == "set").expect("cmdstat_set");
    assert_eq!((set.calls, set.usec, set.usec_per_call), (Some(260), Some(658), Some(2.53)));
    let ping = stats.iter().find(|c| c.cmd == "ping").expect("cmdstat_ping");
    assert_eq!(ping.rejected_calls, Some(1));
    let lpush = stats.iter().find(|c| c.cmd == "lpush").expect("cmdstat_lpush");
    assert_eq!(lpush.failed_calls, Some(1));
    assert!(stats.iter().any(|c| c.cmd == "config|get"), "subcommands keep their container|sub name");

    let errors = m.error_stats();
    let count = |e: &str| errors.iter().find(|s| s.error == e).and_then(|s| s.count);
    assert_eq!((count("ERR"), count("NOAUTH"), count("WRONGTYPE")), (Some(2), Some(1), Some(1)));

    let replicas = m.replicas();
    assert_eq!(replicas.len(), 1);
    let r = &replicas[0];
    assert_eq!((r.index, r.ip.as_str(), r.port, r.state.as_str()), (0, "127.0.0.1", Some(17000), "online"));
    assert_eq!((r.offset, r.lag_seconds), (Some(42), Some(0)));

    let set_latency = m.latency_percentiles().into_iter().find(|l| l.cmd == "set").expect("latency set");
    assert_eq!(
        set_latency.percentiles,
        vec![("50".to_string(), 2.007), ("99".to_string(), 13.055), ("99.9".to_string(), 27.007)]
    );

    let out = exposition(&snapshot(MASTER));
    assert_eq!(out.get("redis_up", &[]), Some(&Value::Int(1)));
    assert_eq!(f64_of(&out, "redis_db_keys", &[("db", "db0")]), 310.0);
    // redis_exporter's allocator byte gauges, same names and values as the capture.
    assert_eq!(f64_of(&out, "redis_allocator_frag_bytes", &[]), 409848.0);
    assert_eq!(f64_of(&out, "redis_allocator_rss_bytes", &[]), 2674688.0);
    assert_eq!(f64_of(&out, "redis_db_keys_expiring", &[("db", "db0")]), 290.0);
    assert_eq!(f64_of(&out, "redis_db_avg_ttl_seconds", &[("db", "db0")]), 2624.254);
    assert_eq!(f64_of(&out, "redis_commands_total", &[("cmd", "set")]), 260.0);
    assert_eq!(f64_of(&out, "redis_commands_duration_seconds_total", &[("cmd", "set")]), 0.000658);
    assert_eq!(f64_of(&out, "redis_commands_rejected_calls_total", &[("cmd", "ping")]), 1.0);
    assert_eq!(f64_of(&out, "redis_errors_total", &[("err", "ERR")]), 2.0);
    let p999 = quantile(&out, "set", 0.999);
    assert!((p999 - 27.007e-6).abs() < 1e-15, "{p999}");
    // The summary's _count and _sum are the same command's commandstats calls and usec.
    match out.get("redis_latency_percentiles_seconds", &[("cmd", "set")]) {
        Some(Value::Summary { count, sum, quantiles }) => {
            assert_eq!(*count, Some(260));
            assert_eq!(*sum, Some(0.000658));
            assert_eq!(quantiles.iter().map(|(q, _)| *q).collect::<Vec<_>>(), [0.5, 0.99, 0.999]);
        }
        other => panic!("redis_latency_percentiles_seconds{{cmd=\"set\"}} is not a summary: {other:?}"),
    }
    assert_eq!(
        f64_of(&out, "redis_connected_slave_offset_bytes", &[("slave_ip", "127.0.0.1"), ("slave_port", "17000")]),
        42.0
    );
    assert_eq!(f64_of(&out, "redis_connected_slave_lag_seconds", &[("slave_port", "17000")]), 0.0);
    assert_eq!(f64_of(&out, "redis_memory_max_bytes", &[]), 67108864.0);
    assert_eq!(f64_of(&out, "redis_config_maxmemory", &[]), 67108864.0);
    assert_eq!(f64_of(&out, "redis_config_maxclients", &[]), 10000.0);
    assert_eq!(f64_of(&out, "redis_config_databases", &[]), 16.0);
    assert_eq!(f64_of(&out, "redis_latest_fork_seconds", &[]), 0.000444);
    assert_eq!(f64_of(&out, "redis_forks_total", &[]), 2.0);
    assert_eq!(f64_of(&out, "redis_rdb_last_bgsave_status", &[]), 1.0);
    assert_eq!(f64_of(&out, "redis_rdb_last_save_timestamp_seconds", &[]), 1795697029.0);
    assert_eq!(f64_of(&out, "redis_start_time_seconds", &[]), 1795697064.0 - 37.0);
    assert_eq!(f64_of(&out, "redis_slowlog_length", &[]), 4.0);
    assert_eq!(f64_of(&out, "redis_last_slow_execution_duration_seconds", &[]), 7e-6);
    assert_eq!(f64_of(&out, "redis_latency_spike_duration_seconds", &[("event_name", "command")]), 0.001);
    assert_eq!(
        f64_of(
            &out,
            "redis_instance_info",
            &[("role", "master"), ("maxmemory_policy", "allkeys-lru"), ("redis_mode", "standalone")]
        ),
        1.0
    );
    // No replica-only series on a master, no `slave_state` label anywhere.
    assert_eq!(out.sample_count("redis_master_link_up"), 0);
    assert!(!render(&snapshot(MASTER)).contains("slave_state"));
}

#[test]
fn replica_values_match_the_capture_text() {
    let r = info(REPLICA);
    assert_eq!(r.get("role"), Some("slave"));
    assert_eq!(r.keyspace()[0].avg_ttl_ms, Some(0));
    let out = exposition(&snapshot(REPLICA));
    let master = [("master_host", "127.0.0.1"), ("master_port", "16999")];
    assert_eq!(f64_of(&out, "redis_master_link_up", &master), 1.0);
    assert_eq!(f64_of(&out, "redis_master_last_io_seconds_ago", &master), 7.0);
    assert_eq!(f64_of(&out, "redis_slave_repl_offset", &master), 42.0);
    assert_eq!(f64_of(&out, "redis_slave_info", &[("read_only", "1")]), 1.0);
    assert_eq!(f64_of(&out, "redis_instance_info", &[("role", "slave")]), 1.0);
    assert_eq!(out.sample_count("redis_connected_slave_offset_bytes"), 0);
    // The link is up: no "down since" age.
    assert_eq!(out.sample_count("redis_master_link_down_since_seconds"), 0);
}

#[test]
fn cluster_info_replies_parse_with_the_same_parser() {
    let ok = info(CLUSTER_OK);
    assert_eq!(ok.section("").map(|s| s.fields.len()), Some(12), "header-less fields land in the unnamed section");
    assert_eq!(ok.get("cluster_state"), Some("ok"));

    let out = exposition(&snapshot(CLUSTER_NODE));
    assert_eq!(f64_of(&out, "redis_cluster_state", &[]), 1.0);
    assert_eq!(f64_of(&out, "redis_cluster_slots_assigned", &[]), 16384.0);
    assert_eq!(f64_of(&out, "redis_cluster_enabled", &[]), 1.0);
    assert_eq!(f64_of(&out, "redis_cluster_links_buffer_limit_exceeded_total", &[]), 0.0);

    let failing = RedisSnapshot { cluster_info: Some(info(CLUSTER_FAIL)), ..snapshot(CLUSTER_NODE) };
    let out = exposition(&failing);
    assert_eq!(f64_of(&out, "redis_cluster_state", &[]), 0.0);
    assert_eq!(f64_of(&out, "redis_cluster_slots_assigned", &[]), 0.0);
}

#[test]
fn crlf_and_lf_give_identical_results() {
    for name in INFO_FIXTURES.iter().chain(&[CLUSTER_OK]) {
        let raw = fixture(name);
        assert!(raw.windows(2).any(|w| w == b"\r\n"), "{name} is expected to be a CRLF capture");
        let lf = crlf_to_lf(&raw);
        assert_eq!(parse_info(&raw), parse_info(&lf), "{name}");
    }
    let crlf = render(&snapshot(MASTER));
    let lf = render(&RedisSnapshot { info: parse_info(&crlf_to_lf(&fixture(MASTER))), ..snapshot(MASTER) });
    assert_eq!(crlf, lf);
}

/// Each case must parse and encode without panicking; `check` asserts how it degraded.
struct Case {
    name: &'static str,
    input: Vec<u8>,
    check: fn(&Info, &Exposition),
}

fn malformed_cases() -> Vec<Case> {
    let master = fixture(MASTER);
    let cut = master.windows(10).position(|w| w == b"usec=658,u").map_or(master.len() / 2, |p| p + 10);
    let mut huge = b"# Server\r\nhuge:".to_vec();
    huge.extend(std::iter::repeat_n(b'9', 1024 * 1024));
    huge.extend_from_slice(b"\r\nconnected_clients:3\r\n");
    vec![
        Case {
            name: "empty",
            input: Vec::new(),
            check: |info, out| {
                assert!(info.is_empty());
                assert_eq!(out.family_names().count(), 0);
            },
        },
        Case {
            name: "only blank lines and headers",
            input: b"\r\n\n#\r\n# Server\r\n\r\n".to_vec(),
            check: |info, out| {
                assert!(info.is_empty());
                assert_eq!(out.sample_count("redis_instance_info"), 0);
            },
        },
        Case {
            name: "truncated mid-line",
            input: master[..cut].to_vec(),
            check: |info, out| {
                let set = info.command_stats().into_iter().find(|c| c.cmd == "set").expect("partial cmdstat_set kept");
                assert_eq!((set.calls, set.usec, set.rejected_calls), (Some(260), Some(658), None));
                assert_eq!(out.get("redis_connected_clients", &[]), Some(&Value::Int(1)));
                assert_eq!(out.sample_count("redis_db_keys"), 0);
            },
        },
        Case {
            name: "garbage values degrade field by field",
            input: b"used_memory:abc\r\nconnected_clients:12\r\nmem_fragmentation_ratio:nan\r\nrdb_last_bgsave_status:maybe\r\nused_cpu_sys:inf\r\n".to_vec(),
            check: |_, out| {
                assert_eq!(out.sample_count("redis_memory_used_bytes"), 0);
                assert_eq!(out.sample_count("redis_mem_fragmentation_ratio"), 0);
                assert_eq!(out.sample_count("redis_rdb_last_bgsave_status"), 0);
                assert_eq!(out.sample_count("redis_cpu_sys_seconds_total"), 0);
                assert_eq!(out.get("redis_connected_clients", &[]), Some(&Value::Int(12)));
            },
        },
        Case {
            name: "unknown sections and fields are kept",
            input: b"# Frobnicate\r\nfoo:bar\r\n# Server\r\nredis_version:9.9.9\r\nbrand_new_field:1\r\n".to_vec(),
            check: |info, out| {
                assert_eq!(info.section("frobnicate").map(|s| s.fields.len()), Some(1));
                assert_eq!(info.get("brand_new_field"), Some("1"));
                assert_eq!(out.get("redis_instance_info", &[("redis_version", "9.9.9")]), Some(&Value::Int(1)));
            },
        },
        Case {
            name: "a 1 MiB line is dropped, the rest is kept",
            input: huge,
            check: |info, out| {
                assert_eq!(info.get("huge"), None);
                assert_eq!(info.dropped_lines(), 1);
                assert_eq!(out.get("redis_connected_clients", &[]), Some(&Value::Int(3)));
            },
        },
        Case {
            name: "invalid UTF-8 is replaced, not fatal",
            input: b"# Server\r\nredis_version:7.0.15\r\nos:Linux \xff\xfe x86_64\r\nconnected_clients:5\r\n\xc3\x28:1\r\n".to_vec(),
            check: |info, out| {
                assert!(info.get("os").is_some_and(|os| os.contains('\u{FFFD}')));
                assert_eq!(out.get("redis_connected_clients", &[]), Some(&Value::Int(5)));
                let text = out.clone().render().expect("render with replacement characters");
                assert!(text.ends_with("# EOF\n"));
            },
        },
        Case {
            name: "duplicate fields: the first wins",
            input: b"connected_clients:1\r\nconnected_clients:2\r\ndb0:keys=1,expires=0\r\ndb0:keys=9,expires=9\r\n".to_vec(),
            check: |info, out| {
                assert_eq!(info.get("connected_clients"), Some("1"));
                assert_eq!(out.get("redis_connected_clients", &[]), Some(&Value::Int(1)));
                assert_eq!(out.get("redis_db_keys", &[("db", "db0")]), Some(&Value::Uint(1)));
                assert_eq!(out.sample_count("redis_db_keys"), 1);
            },
        },
        Case {
            name: "keyspace with garbage keeps the good parts",
            input: b"# Keyspace\r\ndb0:keys=abc,expires=5,avg_ttl=,junk,=7\r\ndb1:keys=3,expires=1,avg_ttl=10,subexpiry=2,keys_with_volatile_items=2,new_thing=8\r\ndb2:\r\ndbx:keys=1\r\n".to_vec(),
            check: |info, out| {
                let dbs = info.keyspace();
                assert_eq!(dbs.len(), 3, "db0, db1 and the empty db2; dbx is not a database");
                assert_eq!((dbs[0].keys, dbs[0].expires, dbs[0].avg_ttl_ms), (None, Some(5), None));
                assert_eq!(dbs[1].keys_with_expiring_items, Some(2));
                assert_eq!(dbs[1].other, vec![("new_thing".to_string(), "8".to_string())]);
                assert_eq!(out.get("redis_db_keys", &[("db", "db0")]), None);
                assert_eq!(out.get("redis_db_keys_expiring", &[("db", "db0")]), Some(&Value::Uint(5)));
                assert_eq!(out.get("redis_db_keys", &[("db", "db1")]), Some(&Value::Uint(3)));
                assert_eq!(out.get("redis_db_keys_with_expiring_items", &[("db", "db1")]), Some(&Value::Uint(2)));
            },
        },
        Case {
            name: "lines without a field name or colon",
            input: b"no colon here\r\n:orphan value\r\n\0\0\0\r\n   \r\nconnected_clients:4\r\n".to_vec(),
            check: |info, out| {
                assert_eq!(info.dropped_lines(), 3);
                assert_eq!(out.get("redis_connected_clients", &[]), Some(&Value::Int(4)));
            },
        },
        Case {
            name: "broken per-command lines",
            input: b"cmdstat_:calls=1\r\ncmdstat_get:calls=x,usec=5\r\nerrorstat_ERR:count=\r\nerrorstat_OOM:count=3\r\nlatency_percentiles_usec_get:p50=abc,pxx=1,p99=2,p101=3\r\nslave0:garbage\r\nslave1:ip=10.0.0.2,port=99999,offset=5,lag=-1\r\n".to_vec(),
            check: |_, out| {
                assert_eq!(out.sample_count("redis_commands_total"), 0);
                assert_eq!(out.get("redis_commands_duration_seconds_total", &[("cmd", "get")]), Some(&Value::Float(5e-6)));
                assert_eq!(out.sample_count("redis_errors_total"), 1);
                assert_eq!(out.sample_count("redis_latency_percentiles_seconds"), 1);
                assert_eq!(quantile(out, "get", 0.99), 2e-6);
                assert_eq!(out.get("redis_connected_slave_offset_bytes", &[("slave_ip", "10.0.0.2"), ("slave_port", "")]), Some(&Value::Int(5)));
                assert_eq!(out.sample_count("redis_connected_slave_lag_seconds"), 0);
            },
        },
        Case {
            name: "first full sync on a replica (-1 sentinels)",
            input: b"# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:1\r\nmaster_link_down_since_seconds:-1\r\n".to_vec(),
            check: |_, out| {
                assert_eq!(out.get("redis_master_link_up", &[]), Some(&Value::Int(0)));
                assert_eq!(out.get("redis_master_sync_in_progress", &[]), Some(&Value::Int(1)));
                assert_eq!(out.sample_count("redis_master_last_io_seconds_ago"), 0);
                assert_eq!(out.sample_count("redis_master_link_down_since_seconds"), 0);
            },
        },
    ]
}

#[test]
fn malformed_input_never_panics_and_degrades_field_by_field() {
    for case in malformed_cases() {
        let info = parse_info(&case.input);
        let snapshot = RedisSnapshot { cluster_info: Some(parse_info(&case.input)), info, ..RedisSnapshot::default() };
        let mut out = Exposition::new();
        encode(&snapshot, &mut out);
        out.clone().render().unwrap_or_else(|e| panic!("{}: render failed: {e}", case.name));
        (case.check)(&snapshot.info, &out);
    }
}

#[test]
fn every_prefix_of_a_capture_parses() {
    // Cheap stand-in for fuzzing: a reply cut at any byte must not panic.
    let raw = fixture(MASTER);
    for end in (0..raw.len()).step_by(7) {
        let snapshot = RedisSnapshot { info: parse_info(&raw[..end]), ..RedisSnapshot::default() };
        let mut out = Exposition::new();
        encode(&snapshot, &mut out);
    }
}

fn golden_path(fixture_name: &str) -> PathBuf {
    let stem = Path::new(fixture_name).file_stem().and_then(|s| s.to_str()).unwrap_or(fixture_name);
    root().join("tests/golden/redis").join(format!("{stem}.om"))
}

#[test]
fn golden_expositions_match_byte_for_byte() {
    for name in INFO_FIXTURES {
        let text = render(&snapshot(name));
        let path = golden_path(name);
        crate::support::golden::assert_golden(&path, &text);
    }
}

#[test]
fn descriptors_are_well_formed_and_unique() {
    let descs = descriptors();
    let mut names = HashSet::new();
    for d in &descs {
        assert!(d.is_well_formed(), "{} is not well formed", d.name);
        assert!(d.name.starts_with("redis_"), "{}", d.name);
        assert!(names.insert(d.name), "{} declared twice", d.name);
    }
    // Every family the goldens emit is declared.
    for name in INFO_FIXTURES {
        for family in exposition(&snapshot(name)).family_names() {
            assert!(names.contains(family), "{family} emitted but missing from descriptors()");
        }
    }
}

#[test]
fn every_descriptor_has_a_row_in_the_metrics_doc() {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    for d in descriptors() {
        let row = format!("| `{}` |", d.name);
        assert!(doc.contains(&row), "docs/metrics.md has no metric row for {}", d.name);
    }
}

/// Names queried by Grafana dashboard 763 (oliver006/redis_exporter
/// contrib/grafana_prometheus_redis_dashboard.json), the redis-mixin in the same
/// repository (contrib/redis-mixin alerts and rules) and the
/// awesome-prometheus-alerts rules for oliver006/redis_exporter, plus the
/// replication and cluster names common alert sets use.
const DASHBOARD_NAMES: &[&str] = &[
    // dashboard 763
    "redis_up",
    "redis_uptime_in_seconds",
    "redis_connected_clients",
    "redis_blocked_clients",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_commands_total",
    "redis_commands_duration_seconds_total",
    "redis_commands_processed_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_net_input_bytes_total",
    "redis_net_output_bytes_total",
    "redis_db_keys",
    "redis_db_keys_expiring",
    "redis_expired_keys_total",
    "redis_evicted_keys_total",
    // redis-mixin
    "redis_total_system_memory_bytes",
    "redis_memory_used_rss_bytes",
    // awesome-prometheus-alerts
    "redis_instance_info",
    "redis_connected_slaves",
    "redis_rdb_last_save_timestamp_seconds",
    "redis_config_maxclients",
    "redis_rejected_connections_total",
    // replication and cluster alerts
    "redis_master_link_up",
    "redis_connected_slave_lag_seconds",
    "redis_master_repl_offset",
    "redis_slave_repl_offset",
    "redis_mem_fragmentation_ratio",
    "redis_rdb_last_bgsave_status",
    "redis_aof_last_bgrewrite_status",
    "redis_cluster_state",
    "redis_cluster_slots_assigned",
    "redis_cluster_slots_ok",
    "redis_cluster_slots_pfail",
    "redis_cluster_slots_fail",
    "redis_cluster_known_nodes",
    "redis_cluster_size",
    "redis_cluster_messages_sent_total",
    "redis_cluster_messages_received_total",
];

#[test]
fn every_dashboard_and_alert_name_is_in_a_golden_exposition() {
    let texts: Vec<String> = INFO_FIXTURES
        .iter()
        .map(|name| std::fs::read_to_string(golden_path(name)).unwrap_or_else(|_| render(&snapshot(name))))
        .collect();
    for name in DASHBOARD_NAMES {
        let emitted = texts
            .iter()
            .flat_map(|t| t.lines())
            .any(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')));
        assert!(emitted, "{name} is used by dashboards/alerts but not emitted by any golden exposition");
    }
}

/// Samples in an exposition, all families.
fn total_samples(out: &Exposition) -> usize {
    out.family_names().map(|name| out.sample_count(name)).sum()
}

fn encode_info(raw: &[u8]) -> (Exposition, tenderly_exporter::collectors::redis::encode::SeriesDropped) {
    let snapshot = RedisSnapshot { info: parse_info(raw), ..RedisSnapshot::default() };
    let mut out = Exposition::new();
    let dropped = encode(&snapshot, &mut out);
    (out, dropped)
}

fn dropped_in(dropped: &tenderly_exporter::collectors::redis::encode::SeriesDropped, family: &str) -> u64 {
    dropped.0.iter().filter(|(f, _)| *f == family).map(|(_, n)| n).sum()
}

/// Issue 9 finding 7: 100k `cmdstat_` lines minted 79,386 series (the parser's
/// 20,000-field cap times four families). Now at most 1024 commands are kept,
/// and the rest is counted.
#[test]
fn a_100k_line_commandstats_reply_is_capped_and_counted() {
    let mut raw = String::from("# Server\r\nredis_version:7.2.4\r\nrole:master\r\n# Commandstats\r\n");
    for i in 0..100_000 {
        raw.push_str(&format!(
            "cmdstat_evil{i}:calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\
             latency_percentiles_usec_evil{i}:p50=1.0,p99=2.0,p99.9=3.0\r\n"
        ));
    }
    let (out, dropped) = encode_info(raw.as_bytes());
    let series = total_samples(&out);
    println!("100k commandstats lines: {series} series, dropped {:?}", dropped.0);
    assert!(series <= 4 * 1024 + 3 * 1024 + 10, "{series} series");
    assert_eq!(out.sample_count("redis_commands_total"), 1024);
    // One summary (three quantiles) per command.
    assert_eq!(out.sample_count("redis_latency_percentiles_seconds"), 1024);
    // The parser keeps 20,000 fields: 2 server fields, then 9,999 of each kind;
    // 1024 of each are exported.
    assert_eq!(dropped_in(&dropped, "commandstats"), (9_999 - 1024) * 4);
    assert_eq!(dropped_in(&dropped, "latencystats"), (9_999 - 1024) * 3);
}

#[test]
fn a_100k_keyspace_reply_is_capped_and_counted() {
    let mut raw = String::from("# Keyspace\r\n");
    for i in 0..100_000 {
        raw.push_str(&format!("db{i}:keys=1,expires=0,avg_ttl=0\r\n"));
    }
    let (out, dropped) = encode_info(raw.as_bytes());
    let series = total_samples(&out);
    println!("100k keyspace dbs: {series} series, dropped {:?}", dropped.0);
    assert!(series <= 3 * 1024, "{series} series");
    assert_eq!(dropped_in(&dropped, "keyspace"), (20_000 - 1024) * 3);
}

#[test]
fn errorstats_replicas_and_modules_are_capped() {
    let mut raw = String::from("# Stats\r\n");
    for i in 0..1000 {
        raw.push_str(&format!("errorstat_E{i}:count=1\r\nslave{i}:ip=10.0.0.1,port={},state=online,offset=1,lag=0\r\nmodule:name=m{i},ver=1\r\n", 1000 + i));
    }
    let (out, dropped) = encode_info(raw.as_bytes());
    assert_eq!(out.sample_count("redis_errors_total"), 128);
    assert_eq!(dropped_in(&dropped, "errorstats"), 1000 - 128);
    assert_eq!(dropped_in(&dropped, "replicas"), (1000 - 256) * 2);
    assert_eq!(dropped_in(&dropped, "modules"), 1000 - 64);
}

#[test]
fn real_captures_drop_nothing() {
    for name in INFO_FIXTURES {
        let (_, dropped) = encode_info(&fixture(name));
        assert!(dropped.0.is_empty(), "{name}: {:?}", dropped.0);
    }
}

/// Issue 9 finding 10: a raw NUL (or any control character) in INFO text
/// reached a label value.
#[test]
fn control_characters_from_info_never_reach_a_label() {
    let raw = b"redis_version:7.2\x004\r\nrole:master\x1b[2J\r\ncmdstat_ge\x00t:calls=1,usec=1\r\nerrorstat_E\x07RR:count=1\r\n";
    let (out, _) = encode_info(raw);
    let text = out.render().expect("renders");
    assert!(!text.bytes().any(|b| b < 0x20 && b != b'\n'), "control byte in the exposition:\n{text:?}");
    assert!(text.contains("redis_version=\"7.2\u{FFFD}4\""), "{text}");
    assert!(text.contains("cmd=\"ge\u{FFFD}t\""), "{text}");
}

/// Issue 9 finding 10: a negative `uptime_in_seconds` was exported as is, and
/// a counter must never be negative.
#[test]
fn negative_uptime_and_counters_are_not_exported() {
    let raw = b"role:master\r\nuptime_in_seconds:-5\r\nserver_time_usec:1795697056000000\r\n\
                total_commands_processed:-7\r\nexpired_keys:-1\r\nconnected_clients:3\r\n";
    let (out, _) = encode_info(raw);
    assert_eq!(out.sample_count("redis_uptime_in_seconds"), 0);
    assert_eq!(out.sample_count("redis_start_time_seconds"), 0);
    assert_eq!(out.sample_count("redis_commands_processed_total"), 0);
    assert_eq!(out.sample_count("redis_expired_keys_total"), 0);
    assert_eq!(out.get("redis_connected_clients", &[]), Some(&Value::Int(3)));
}
