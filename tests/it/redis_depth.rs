//! Redis depth on real servers: connections per client name from a
//! rate-limited `CLIENT LIST`, `LATENCY HISTOGRAM` as a Prometheus histogram,
//! and the largest sampled key per Tenderly key family.

use std::time::Duration;

use tenderly_exporter::config::{RedisOptions as Connection, RedisTarget, Secret};
use tenderly_exporter::metrics::{Exposition as Out, Value};
use tenderly_exporter::tenderly::keys::{KeyFamiliesConfig, KeyScanner};
use tokio::time::Instant;

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::redis_server::info_field;
use crate::support::{RedisOptions, RedisServer, RespConn};

fn named_connections(server: &RedisServer, names: &[&str]) -> Vec<RespConn> {
    names
        .iter()
        .map(|name| {
            let mut conn = server.conn();
            assert_eq!(conn.command(&["CLIENT", "SETNAME", name]).expect("setname").render(), "OK");
            conn
        })
        .collect()
}

fn cmdstat_calls(server: &RedisServer, command: &str) -> u64 {
    let stats = server.cli(&["INFO", "commandstats"]);
    info_field(&stats, &format!("cmdstat_{command}"))
        .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("calls=")?.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn clients_by_name_counts_named_connections_and_runs_client_list_once_per_interval() {
    let server = RedisServer::start(RedisOptions::default());
    let _held = named_connections(
        &server,
        &["tenderly-api", "tenderly-api", "tenderly-api", "tenderly-worker", "tenderly-worker"],
    );
    let exporter = TestExporter::start(&["--redis.addr", &server.url()], &[]);
    let out = exporter.scrape("/metrics");
    let by_name = |out: &Exposition, name: &str| out.value("redis_connected_clients_by_name", &[("client_name", name)]);
    assert_eq!(by_name(&out, "tenderly-api"), Some(3.0), "{}", out.text);
    assert_eq!(by_name(&out, "tenderly-worker"), Some(2.0));
    assert!(
        !out.text.contains("127.0.0.1:") && !out.text.contains("client_name=\"id="),
        "an address or id became a label"
    );
    assert_eq!(out.count("redis_connected_clients_by_user"), 0, "by-user is opt-in");
    // Within the interval (60s by default) the counts are served from the last CLIENT LIST.
    let _more = named_connections(&server, &["tenderly-api"]);
    for _ in 0..3 {
        let out = exporter.scrape("/metrics");
        assert_eq!(by_name(&out, "tenderly-api"), Some(3.0), "CLIENT LIST ran again within the interval");
    }
    assert_eq!(cmdstat_calls(&server, "client|list"), 1);
}

#[test]
fn clients_top_n_sums_the_rest_into_other_and_by_user_is_opt_in() {
    let server = RedisServer::start(RedisOptions::default());
    let _held = named_connections(&server, &["tenderly-api", "tenderly-api", "tenderly-api", "tenderly-worker"]);
    let _unnamed = [server.conn(), server.conn()];
    let exporter = TestExporter::start(
        &["--redis.addr", &server.url(), "--redis.clients-top-n", "1", "--collector.redis.clients-by-user"],
        &[],
    );
    let out = exporter.scrape("/metrics");
    let by_name = |name: &str| out.value("redis_connected_clients_by_name", &[("client_name", name)]);
    assert_eq!(by_name("tenderly-api"), Some(3.0));
    assert_eq!(by_name("tenderly-worker"), None);
    // tenderly-worker plus the exporter's own main connection (named tenderly-exporter).
    assert_eq!(by_name("other"), Some(2.0), "{}", out.text);
    assert_eq!(by_name(""), Some(2.0));
    assert_eq!(out.value("redis_connected_clients_by_user", &[("user", "default")]), Some(7.0));
}

#[test]
fn a_user_without_client_id_costs_one_error_reply_and_still_gets_counts() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec!["user narrow on >narrow-pw -@all +info +ping +command|info +client|setname +client|list".into()],
        ..RedisOptions::default()
    });
    let _held = named_connections(&server, &["tenderly-api", "tenderly-api"]);
    let exporter = TestExporter::start(
        &[
            "--redis.addr",
            &server.addr(),
            "--redis.user",
            "narrow",
            "--redis.clients-interval",
            "1ms",
            "--no-collector.tenderly.posture",
            "--no-collector.tenderly.keys",
            "--no-collector.redis.config",
            "--no-collector.redis.slowlog",
            "--no-collector.redis.latency",
            "--no-collector.redis.latency-histogram",
        ],
        &[("REDIS_PASSWORD", "narrow-pw")],
    );
    let errors = || server.info_field("stats", "total_error_replies").and_then(|v| v.parse::<u64>().ok());
    let before = errors();
    for _ in 0..4 {
        let out = exporter.scrape("/metrics");
        assert_eq!(out.value("redis_connected_clients_by_name", &[("client_name", "tenderly-api")]), Some(2.0));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(cmdstat_calls(&server, "client|list") >= 4, "CLIENT LIST did not run every interval");
    assert_eq!(errors(), before.map(|n| n + 1), "CLIENT ID must be refused once, then never sent again");
}

#[test]
fn latency_histogram_after_200_gets_is_cumulative_and_complete() {
    let server = RedisServer::start(RedisOptions::default());
    let version = server.info_field("server", "redis_version").unwrap_or_default();
    if version.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_none_or(|major| major < 7) {
        crate::support::process::skip(&format!("LATENCY HISTOGRAM needs Redis 7+, this is {version}"));
        return;
    }
    let mut conn = server.conn();
    let gets: Vec<Vec<String>> = (0..200).map(|i| vec!["GET".to_string(), format!("k{i}")]).collect();
    assert!(conn.pipeline(&gets).expect("200 GETs").iter().all(|r| !r.is_error()));
    let exporter = TestExporter::start(&["--redis.addr", &server.url()], &[]);
    let out = exporter.scrape("/metrics");
    let get = [("cmd", "get")];
    let count = out.expect("redis_command_latency_seconds_count", &get);
    assert!(count >= 200.0, "count {count}");
    let buckets: Vec<(f64, f64)> = out
        .samples
        .iter()
        .filter(|(n, l, _)| {
            n == "redis_command_latency_seconds_bucket" && l.iter().any(|(k, v)| k == "cmd" && v == "get")
        })
        .map(|(_, l, v)| {
            let le = l.iter().find(|(k, _)| k == "le").map(|(_, v)| v.as_str()).expect("le");
            (if le == "+Inf" { f64::INFINITY } else { le.parse().expect("le number") }, *v)
        })
        .collect();
    assert_eq!(buckets.len(), 22, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "not cumulative: {buckets:?}");
    assert_eq!(buckets.last().map(|b| b.1), Some(count), "+Inf != _count");
    assert!((buckets[0].0 - 1.024e-6).abs() < 1e-12, "first bound {}", buckets[0].0);
    // _sum is commandstats usec for get (the call counts agree: nothing ran GET in between).
    let usec = info_field(&server.cli(&["INFO", "commandstats"]), "cmdstat_get")
        .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("usec=")?.parse::<f64>().ok()))
        .expect("cmdstat_get usec");
    let sum = out.expect("redis_command_latency_seconds_sum", &get);
    assert!((sum - usec / 1e6).abs() < 1e-9, "sum {sum} vs commandstats {usec} usec");
    // Only commands that ran: SET never did.
    assert_eq!(out.value("redis_command_latency_seconds_count", &[("cmd", "set")]), None);
    // Switched off, LATENCY HISTOGRAM is not sent.
    let before = cmdstat_calls(&server, "latency|histogram");
    let off = TestExporter::start(&["--redis.addr", &server.url(), "--no-collector.redis.latency-histogram"], &[]);
    let out = off.scrape("/metrics");
    assert_eq!(out.count("redis_command_latency_seconds_count"), 0);
    assert_eq!(cmdstat_calls(&server, "latency|histogram"), before);
}

#[test]
fn largest_sampled_key_per_family_sees_one_oversized_session_value() {
    let server = RedisServer::start(RedisOptions::default());
    let mut conn = server.conn();
    let mut load: Vec<Vec<String>> = (0..50)
        .map(|i| vec!["SET".into(), format!("tenderly:session:{i:04}"), "small".into(), "EX".into(), "3600".into()])
        .collect();
    load.push(vec!["SET".into(), "tenderly:session:runaway-blob".into(), "x".repeat(2 * 1024 * 1024)]);
    load.push(vec!["SET".into(), "tenderly:jwt:one".into(), "small".into(), "EX".into(), "900".into()]);
    assert!(conn.pipeline(&load).expect("load").iter().all(|r| !r.is_error()));
    let target = RedisTarget::plain(Connection::new(
        format!("redis://{}", server.addr()),
        None,
        server.password().map(Secret::new),
    ));
    let config = KeyFamiliesConfig { memory_sample_every: 1, ..KeyFamiliesConfig::default() };
    let scanner = KeyScanner::new("depth", target.connection.clone(), target.member_policy(), config);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for _ in 0..1000 {
        if scanner.passes() >= 1 {
            break;
        }
        rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(5))).expect("advance");
    }
    assert_eq!(scanner.passes(), 1, "the pass never completed");
    let mut out = Out::new();
    scanner.encode(&mut out);
    let largest =
        |family: &str| out.get("tenderly_redis_key_family_largest_key_bytes", &[("family", family)]).map(Value::as_f64);
    let session = largest("session").expect("session largest");
    assert!(session >= 2.0 * 1024.0 * 1024.0, "session largest {session}");
    let jwt = largest("jwt").expect("jwt largest");
    assert!(jwt < 1024.0, "jwt largest {jwt}");
    let text = out.render().expect("render");
    assert!(!text.contains("runaway-blob"), "a key name was exported");
}

#[test]
fn client_list_and_collector_switches_parse_from_yaml_and_are_bounded() {
    use tenderly_exporter::config::{parse_file_full, Env, TargetSpec};
    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }
    let path = std::path::Path::new("targets.yml");
    let yaml = "targets:\n  - {name: r, kind: redis, address: 'redis://127.0.0.1:1', \
                collectors: {latency_histogram: false, clients_by_user: true}, \
                client_list: {top_n: 3, interval: 5m, max_reply_bytes: 65536}}\n";
    let (targets, _) = parse_file_full(yaml, path, &NoEnv).expect("valid");
    let TargetSpec::Redis(r) = &targets[0].spec else { panic!("redis") };
    assert!(!r.collectors.latency_histogram && r.collectors.clients_by_name && r.collectors.clients_by_user);
    assert_eq!(r.client_list.top_n, 3);
    assert_eq!(r.client_list.interval, Duration::from_secs(300));
    assert_eq!(r.client_list.max_reply_bytes, 65536);
    for (bad, field) in [
        ("client_list: {top_n: 1000}", "client_list.top_n"),
        ("client_list: {interval: soon}", "client_list.interval"),
        ("client_list: {max_reply_bytes: 10}", "client_list.max_reply_bytes"),
        ("client_list: {top: 3}", "top"),
    ] {
        let yaml = format!("targets:\n  - {{name: r, kind: redis, address: 'redis://127.0.0.1:1', {bad}}}\n");
        let err = format!("{:#}", parse_file_full(&yaml, path, &NoEnv).expect_err(bad));
        assert!(err.contains(field), "{bad}: {err}");
    }
    let mongo = "targets:\n  - {name: m, kind: mongodb, address: 'mongodb://127.0.0.1:1', client_list: {top_n: 3}}\n";
    let err = format!("{:#}", parse_file_full(mongo, path, &NoEnv).expect_err("redis-only key"));
    assert!(err.contains("client_list"), "{err}");
}

fn capture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redis").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn resp(name: &str) -> redis::Value {
    redis::parse_redis_value(&capture(name)).unwrap_or_else(|e| panic!("{name} is not RESP: {e}"))
}

#[test]
fn sentinel_captures_encode_to_the_golden_exposition() {
    use tenderly_exporter::collectors::redis::{encode, info::parse_info, sentinel, RedisSnapshot};
    let info = parse_info(&capture("redis-7.0.15-sentinel-info-all.txt"));
    let (masters, dropped) = sentinel::parse_masters(&resp("redis-7.0.15-sentinel-masters.resp")).expect("masters");
    assert_eq!((masters.len(), dropped), (1, 0));
    let state = sentinel::MasterState {
        master: masters[0].clone(),
        sentinels: sentinel::parse_peers(&resp("redis-7.0.15-sentinel-sentinels.resp")),
        replicas: sentinel::parse_peers(&resp("redis-7.0.15-sentinel-replicas.resp")),
    };
    let snapshot = RedisSnapshot {
        info,
        sentinel: Some(sentinel::SentinelSnapshot { masters: vec![state], masters_dropped: 0 }),
        ..RedisSnapshot::default()
    };
    let mut out = Out::new();
    encode::encode_up(true, &mut out);
    assert_eq!(encode::encode(&snapshot, &mut out).total(), 0);
    let value = |name: &str, labels: &[(&str, &str)]| out.get(name, labels).map(Value::as_f64);
    let at = [("master_name", "sessions"), ("master_address", "127.0.0.1:17101")];
    assert_eq!(value("redis_sentinel_masters", &[]), Some(1.0));
    assert_eq!(value("redis_sentinel_master_slaves", &at), Some(1.0));
    assert_eq!(value("redis_sentinel_master_ok_slaves", &at), Some(1.0));
    assert_eq!(value("redis_sentinel_master_ok_sentinels", &at), Some(1.0));
    assert_eq!(value("redis_sentinel_master_setting_ckquorum", &at), Some(2.0));
    // Quorum 2 with one Sentinel: the capture's SENTINEL CKQUORUM answered NOQUORUM.
    assert_eq!(value("redis_sentinel_master_ckquorum_status", &[("master_name", "sessions")]), Some(0.0));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/redis/redis-7.0.15-sentinel.om");
    crate::support::golden::assert_golden(&path, &out.render().expect("render"));
}

#[test]
fn latency_histogram_and_client_list_captures_parse() {
    use tenderly_exporter::collectors::redis::{clients, info::parse_info, latency};
    let (histograms, dropped) = latency::parse_latency_histogram(&resp("redis-7.0.15-latency-histogram.resp"));
    assert_eq!(dropped, 0);
    let get = histograms.iter().find(|h| h.cmd == "get").expect("get ran");
    assert_eq!(get.calls, 200);
    assert!(get.cumulative.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(get.cumulative.last(), Some(&200));
    let stats = parse_info(&capture("redis-7.0.15-master-commandstats.txt")).command_stats();
    let mut out = Out::new();
    latency::encode(&histograms, &stats, &mut out);
    match out.get("redis_command_latency_seconds", &[("cmd", "get")]) {
        Some(Value::Histogram { sum, count, .. }) => {
            assert_eq!(*count, 200);
            assert!((sum - 38e-6).abs() < 1e-12, "sum {sum}: cmdstat_get usec=38");
        }
        other => panic!("{other:?}"),
    }
    let text = String::from_utf8(capture("redis-7.0.15-client-list.txt")).expect("utf-8");
    let counts = clients::parse_client_list_excluding(&text, Some(12), 10);
    let names: Vec<(&str, u64)> = counts.by_name.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    assert_eq!(
        names,
        [("tenderly-api", 2), ("sentinel-a0f3de12-cmd", 1), ("sentinel-a0f3de12-pubsub", 1), ("tenderly-worker", 1)]
    );
}

mod hostile {
    //! Property tests for the new parsers of untrusted replies: never a panic,
    //! every label bounded, and the exposition always renders.
    use proptest::prelude::*;
    use redis::Value as R;
    use tenderly_exporter::collectors::redis::{clients, info::parse_info, latency, sentinel};
    use tenderly_exporter::metrics::Exposition;

    fn reply() -> impl Strategy<Value = R> {
        let words = prop::sample::select(vec![
            "calls",
            "histogram_usec",
            "name",
            "ip",
            "port",
            "flags",
            "quorum",
            "s_down",
            "get",
            "127.0.0.1",
            "6379",
            "-1",
            "99999999999999999999",
            "",
        ]);
        let leaf = prop_oneof![
            words.prop_map(|w| R::BulkString(w.as_bytes().to_vec())),
            any::<i64>().prop_map(R::Int),
            Just(R::Nil),
            ".{0,40}".prop_map(|s: String| R::BulkString(s.into_bytes())),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(R::Array),
                prop::collection::vec((inner.clone(), inner), 0..4).prop_map(R::Map),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn reply_parsers_never_panic_and_encode(value in reply()) {
            let (histograms, _) = latency::parse_latency_histogram(&value);
            for h in &histograms {
                prop_assert!(h.cumulative.windows(2).all(|w| w[0] <= w[1]));
                prop_assert!(h.cumulative.iter().all(|c| *c <= h.calls));
            }
            let mut out = Exposition::new();
            latency::encode(&histograms, &[], &mut out);
            let masters = sentinel::parse_masters(&value).map(|(m, _)| m).unwrap_or_default();
            let peers = sentinel::parse_peers(&value);
            let snapshot = sentinel::SentinelSnapshot {
                masters: masters
                    .into_iter()
                    .map(|master| sentinel::MasterState { master, sentinels: peers.clone(), replicas: peers.clone() })
                    .collect(),
                masters_dropped: 0,
            };
            sentinel::encode(&parse_info(b"# Sentinel\r\nsentinel_masters:1\r\n"), Some(&snapshot), &mut out);
            prop_assert!(out.render().is_ok());
        }

        #[test]
        fn client_list_and_sentinel_info_never_panic(text in "(id=[0-9]{1,3} name=[^ \n]{0,200} user=[a-z]{0,5} flags=[NSMP]\n|garbage.{0,20}\n|master[0-9]:[a-z=,:0-9.]{0,80}\r\n){0,40}") {
            let counts = clients::parse_client_list(&text, 3);
            prop_assert!(counts.by_name.len() <= 3 + 2);
            prop_assert!(counts.by_name.iter().all(|(n, _)| n.len() <= clients::MAX_NAME_BYTES));
            let mut out = Exposition::new();
            clients::encode(&counts, true, &mut out);
            let info = parse_info(format!("# Sentinel\r\n{text}").as_bytes());
            sentinel::encode(&info, None, &mut out);
            prop_assert!(out.render().is_ok());
        }
    }
}
