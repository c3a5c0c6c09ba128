//! Redis key families and security posture against real `redis-server`
//! processes: exact counts on a 210k-key keyspace read in several bounded
//! steps, a three-master cluster summed, ACL refusals learnt once, and the
//! posture checks on secure, insecure and least-privilege configurations.

use std::time::Duration;

use tenderly_exporter::config::{RedisOptions as Connection, RedisTarget, Secret};
use tenderly_exporter::metrics::{Exposition, Value};
use tenderly_exporter::tenderly::keys::{KeyFamiliesConfig, KeyScanError, KeyScanner};
use tenderly_exporter::tenderly::redis_posture::{
    self, Outcome, RedisPostureConfig, AUTH_REQUIRED, DANGEROUS_COMMANDS_DISABLED, NOT_BOUND_TO_ALL_INTERFACES,
    PROTECTED_MODE, TLS_REQUIRED,
};
use tokio::time::Instant;

use crate::support::redis_server::info_field;
use crate::support::{wait_until, RedisOptions, RedisServer};

/// The exporter's least-privilege ACL plus the key-scan additions (docs/tenderly-keys-and-posture.md).
const KEYS_ACL: &str = "on >exporter-pw %R~* -@all +info +ping +command|info +scan +pttl +memory|usage +cluster|nodes";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

fn target(server: &RedisServer, user: Option<(&str, &str)>) -> RedisTarget {
    let (username, password) = match user {
        Some((u, p)) => (Some(u.to_string()), Some(Secret::new(p))),
        None => (None, server.password().map(Secret::new)),
    };
    RedisTarget::plain(Connection::new(format!("redis://{}", server.addr()), username, password))
}

fn number(server: &RedisServer, section: &str, field: &str) -> u64 {
    server.info_field(section, field).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Writes `commands` with pipelined batches on one connection; panics on an error reply.
fn load(server: &RedisServer, commands: &[Vec<String>]) {
    let mut conn = server.conn();
    for batch in commands.chunks(2000) {
        let replies = conn.pipeline(batch).expect("pipelined load");
        assert!(!replies.iter().any(|r| r.is_error()), "load failed: {:?}", replies.iter().find(|r| r.is_error()));
    }
}

fn set(key: String, ttl: Option<u32>) -> Vec<String> {
    let mut c = vec!["SET".to_string(), key, "synthetic-test-value".to_string()];
    if let Some(ttl) = ttl {
        c.extend(["EX".to_string(), ttl.to_string()]);
    }
    c
}

/// Expected per-family totals of a loaded keyspace: (family, keys, without TTL).
struct Expected(Vec<(&'static str, u64, u64)>);

/// 210,000 keys: every default family, `other`, `non_tenderly`, and seven
/// sessions that (wrongly) never expire. TTLs are long enough that nothing
/// expires during the test.
fn load_tenderly_keyspace(server: &RedisServer) -> Expected {
    let mut commands = Vec::with_capacity(210_000);
    for i in 0..100_000 {
        commands.push(set(format!("tenderly:session:{i:08x}"), Some(3600)));
    }
    for i in 0..7 {
        commands.push(set(format!("tenderly:session:leaked-{i}"), None));
    }
    for i in 0..40_000 {
        commands.push(set(format!("tenderly:jwt:{i:08x}"), Some(900)));
    }
    for i in 0..10_000 {
        commands.push(set(format!("tenderly:otp:test-user-{i:06}"), Some(300)));
    }
    for i in 0..20_000 {
        commands.push(set(format!("tenderly:ratelimit:192.0.2.{i}"), Some(600)));
    }
    for i in 0..30_000 {
        commands.push(vec![
            "HSET".into(),
            format!("tenderly:user:test-user-{i:06}"),
            "role".into(),
            "patient".into(),
            "mfa".into(),
            "enabled".into(),
        ]);
    }
    for i in 0..5_000 {
        commands.push(set(format!("tenderly:audit:{i}"), None));
    }
    for i in 0..4_993 {
        commands.push(set(format!("cache:{i}"), Some(30 * 86_400)));
    }
    load(server, &commands);
    assert_eq!(server.cli(&["DBSIZE"]), "210000");
    Expected(vec![
        ("session", 100_007, 7),
        ("jwt", 40_000, 0),
        ("otp", 10_000, 0),
        ("ratelimit", 20_000, 0),
        ("user", 30_000, 30_000),
        ("other", 5_000, 5_000),
        ("non_tenderly", 4_993, 0),
    ])
}

/// Calls `advance` until a pass completes; returns the number of calls.
fn advance_until_pass(rt: &tokio::runtime::Runtime, scanner: &KeyScanner, passes: u64, max_step: Duration) -> usize {
    let mut calls = 0;
    while scanner.passes() < passes {
        calls += 1;
        assert!(calls < 100_000, "the pass never completed");
        let started = std::time::Instant::now();
        rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(5))).expect("advance");
        let took = started.elapsed();
        assert!(took <= max_step, "advance call {calls} took {took:?}, more than {max_step:?}");
    }
    calls
}

fn exposition(scanner: &KeyScanner) -> Exposition {
    let mut out = Exposition::new();
    scanner.encode(&mut out);
    out
}

fn value(out: &Exposition, name: &str, family: &str) -> Option<f64> {
    out.get(name, &[("family", family)]).map(Value::as_f64)
}

fn histogram(out: &Exposition, family: &str) -> (u64, Vec<(f64, u64)>) {
    match out.get("tenderly_redis_key_ttl_seconds", &[("family", family)]) {
        Some(Value::Histogram { count, buckets, .. }) => (*count, buckets.clone()),
        other => panic!("no TTL histogram for {family}: {other:?}"),
    }
}

#[test]
fn families_are_counted_exactly_over_210k_keys_in_several_bounded_steps() {
    let server = RedisServer::start(RedisOptions::with_password("keys-pw"));
    let expected = load_tenderly_keyspace(&server);
    let rt = runtime();
    // No pacing here: the second pass must start as soon as the first ends.
    let config =
        KeyFamiliesConfig { budget: "20ms".into(), min_pass_interval: "0s".into(), ..KeyFamiliesConfig::default() };
    assert_eq!(config.validate(), Ok(()));
    let scanner = key_scanner("cache", target(&server, None), config);

    // Before the first pass completes only progress is exported.
    rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(5))).expect("first step");
    let early = exposition(&scanner);
    assert_eq!(early.sample_count("tenderly_redis_keys"), 0);
    assert!(value(&early, "tenderly_redis_key_scan_progress_keys", "").is_none());
    assert!(early.get("tenderly_redis_key_scan_progress_keys", &[]).is_some_and(|v| v.as_f64() > 0.0));

    // Budget 20 ms; one round trip may overrun it (debug build, loaded CI): generous margin.
    let calls = 1 + advance_until_pass(&rt, &scanner, 1, Duration::from_millis(20 + 400));
    assert!(calls > 5, "a 210k-key pass at a 20 ms budget must take several steps, took {calls}");

    let out = exposition(&scanner);
    for (family, keys, without_ttl) in &expected.0 {
        assert_eq!(value(&out, "tenderly_redis_keys", family), Some(*keys as f64), "keys of {family}");
        assert_eq!(
            value(&out, "tenderly_redis_keys_without_ttl", family),
            Some(*without_ttl as f64),
            "keys without TTL of {family}"
        );
        assert!(value(&out, "tenderly_redis_key_memory_bytes", family).is_some_and(|b| b > 0.0), "memory {family}");
    }
    // Every key with a TTL is in its histogram (ttl_sample_every defaults to 1).
    let (count, buckets) = histogram(&out, "session");
    assert_eq!(count, 100_000);
    assert_eq!(buckets.iter().find(|(le, _)| *le == 3600.0).map(|b| b.1), Some(100_000));
    let (_, jwt) = histogram(&out, "jwt");
    assert_eq!(jwt.iter().find(|(le, _)| *le == 900.0).map(|b| b.1), Some(40_000));
    let (_, cache) = histogram(&out, "non_tenderly");
    assert_eq!(cache.last(), Some(&(f64::INFINITY, 4_993)));
    assert_eq!(histogram(&out, "user").0, 0);

    assert_eq!(out.get("tenderly_redis_key_scan_passes_total", &[]).map(Value::as_f64), Some(1.0));
    assert_eq!(out.get("tenderly_redis_key_scan_nodes", &[]).map(Value::as_f64), Some(1.0));
    assert!(out.get("tenderly_redis_key_scan_duration_seconds", &[]).is_some_and(|v| v.as_f64() > 0.0));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let completed = out.get("tenderly_redis_key_scan_last_complete_timestamp_seconds", &[]).map(Value::as_f64);
    assert!(completed.is_some_and(|t| (now - t).abs() < 120.0), "{completed:?}");

    // Bounded: ~210 SCAN pages, no error reply, and no key name in the exposition.
    let scans = server.cli(&["INFO", "commandstats"]);
    assert!(scans.contains("cmdstat_scan:calls="), "{scans}");
    assert_eq!(number(&server, "stats", "total_error_replies"), 0);
    let text = out.render().expect("render");
    assert!(!text.contains("tenderly:") && !text.contains("test-user") && !text.contains("192.0.2"), "{text}");

    // The next pass sees changes: 10 more leaked JWTs.
    load(&server, &(0..10).map(|i| set(format!("tenderly:jwt:leaked-{i}"), None)).collect::<Vec<_>>());
    advance_until_pass(&rt, &scanner, 2, Duration::from_secs(2));
    let out = exposition(&scanner);
    assert_eq!(value(&out, "tenderly_redis_keys", "jwt"), Some(40_010.0));
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "jwt"), Some(10.0));
}

/// `cmdstat_<name>` calls from INFO commandstats (0 when the command never ran).
fn cmdstat_calls(server: &RedisServer, name: &str) -> u64 {
    let text = server.cli(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{name}:");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix("calls=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn with_defaults_thirty_scrapes_cost_one_pass_and_the_counts_are_exact() {
    let server = RedisServer::start(RedisOptions::default());
    let counts = crate::support::populate_tenderly(&server, 100_000);
    let keyspace: u64 = server.cli(&["DBSIZE"]).parse().expect("DBSIZE");
    assert_eq!(keyspace, 100_000);
    server.cli(&["CONFIG", "RESETSTAT"]);
    let rt = runtime();
    let scanner = key_scanner("cache", target(&server, None), KeyFamiliesConfig::default());

    // Scrape after scrape (each runs one background step); a slow debug build may need
    // more than 30 steps for the first pass, so the 30 counted ones follow its end.
    let steps = advance_until_pass(&rt, &scanner, 1, Duration::from_secs(2));
    // (INFO is not compared: reading commandstats is an INFO call itself.)
    let scan_calls =
        || [cmdstat_calls(&server, "scan"), cmdstat_calls(&server, "pttl"), cmdstat_calls(&server, "memory|usage")];
    let after_pass = scan_calls();
    for _ in 0..30 {
        rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(5))).expect("advance");
    }
    let after_scrapes = scan_calls();
    assert_eq!(scanner.passes(), 1, "{steps} steps to the first pass, then 30 more");
    // Paced passes hold no connection while idle: only this test's own client is left.
    let clients = || -> u64 {
        let info = server.cli(&["INFO", "clients"]);
        info.lines().find_map(|l| l.strip_prefix("connected_clients:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    // (The dropped connection's task ends when the runtime next runs.)
    crate::support::wait_until(Duration::from_secs(5), "the scan's connection to close between passes", || {
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        clients() == 1
    });
    assert_eq!(after_scrapes, after_pass, "between passes no SCAN, PTTL or MEMORY USAGE is sent (calls of each)");
    let examined = after_scrapes[1];
    assert!(
        examined * 10 <= keyspace * 12,
        "keys examined (PTTL calls) {examined} above 1.2x the keyspace {keyspace} in {} steps",
        steps + 30
    );

    // The one pass counted every family exactly, and says how old it is.
    let out = exposition(&scanner);
    let families = [
        ("session", counts.session),
        ("jwt", counts.jwt),
        ("otp", counts.otp),
        ("ratelimit", counts.ratelimit),
        ("user", counts.user),
        ("other", 0),
        ("non_tenderly", 0),
    ];
    for (family, keys) in families {
        assert_eq!(value(&out, "tenderly_redis_keys", family), Some(keys as f64), "keys of {family}");
    }
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "user"), Some(counts.user as f64));
    assert_eq!(out.get("tenderly_redis_key_scan_min_interval_seconds", &[]).map(Value::as_f64), Some(600.0));
    let completed = out.get("tenderly_redis_key_scan_last_complete_timestamp_seconds", &[]).map(Value::as_f64);
    let next = out.get("tenderly_redis_key_scan_next_start_timestamp_seconds", &[]).map(Value::as_f64);
    let (Some(completed), Some(next)) = (completed, next) else { panic!("{completed:?} {next:?}") };
    assert!(next > completed && next - completed <= 600.0, "next pass at {next}, last complete at {completed}");
}

#[test]
fn the_next_pass_starts_once_the_interval_since_the_last_start_has_passed() {
    let server = RedisServer::start(RedisOptions::default());
    load(&server, &(0..300).map(|i| set(format!("tenderly:otp:{i}"), Some(300))).collect::<Vec<_>>());
    let rt = runtime();
    let config = KeyFamiliesConfig { min_pass_interval: "700ms".into(), ..KeyFamiliesConfig::default() };
    let scanner = key_scanner("cache", target(&server, None), config);
    let started = std::time::Instant::now();
    advance_until_pass(&rt, &scanner, 1, Duration::from_secs(2));
    load(&server, &(0..5).map(|i| set(format!("tenderly:otp:new-{i}"), Some(300))).collect::<Vec<_>>());
    rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(5))).expect("advance");
    if started.elapsed() < Duration::from_millis(600) {
        assert_eq!(scanner.passes(), 1, "a second pass started before the interval");
        assert_eq!(
            value(&exposition(&scanner), "tenderly_redis_keys", "otp"),
            Some(300.0),
            "stale until the next pass"
        );
    }
    std::thread::sleep(Duration::from_millis(700).saturating_sub(started.elapsed()));
    advance_until_pass(&rt, &scanner, 2, Duration::from_secs(2));
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(value(&exposition(&scanner), "tenderly_redis_keys", "otp"), Some(305.0));
}

#[test]
fn a_replica_is_scanned_instead_of_the_primary_when_configured() {
    let primary = RedisServer::start(RedisOptions::with_password("repl-pw"));
    let mut replica = RedisServer::start(RedisOptions {
        password: Some("repl-pw".into()),
        replica_of: Some((primary.port(), Some("repl-pw".into()))),
        ..RedisOptions::default()
    });
    load(&primary, &(0..500).map(|i| set(format!("tenderly:session:{i}"), Some(3600))).collect::<Vec<_>>());
    wait_until(Duration::from_secs(10), "replica has the keys", || replica.cli(&["DBSIZE"]) == "500");
    let scans_before = primary.cli(&["INFO", "commandstats"]).contains("cmdstat_scan:");
    assert!(!scans_before);
    let config = KeyFamiliesConfig {
        replica_address: Some(replica.addr()),
        min_pass_interval: "0s".into(),
        ..KeyFamiliesConfig::default()
    };
    let scanner = key_scanner("cache", target(&primary, None), config);
    let rt = runtime();
    advance_until_pass(&rt, &scanner, 1, Duration::from_secs(2));
    assert_eq!(value(&exposition(&scanner), "tenderly_redis_keys", "session"), Some(500.0));
    assert!(!primary.cli(&["INFO", "commandstats"]).contains("cmdstat_scan:"), "the primary was scanned");
    assert!(!primary.cli(&["INFO", "commandstats"]).contains("cmdstat_pttl:"), "the primary's keys were read");
    assert!(replica.cli(&["INFO", "commandstats"]).contains("cmdstat_scan:"));

    // The replica gone: the scan fails and waits for it; it never falls back to the primary.
    replica.kill();
    for _ in 0..3 {
        let step = rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(5)));
        assert!(step.is_err(), "a pass without the replica: {step:?}");
    }
    let stats = primary.cli(&["INFO", "commandstats"]);
    assert!(!stats.contains("cmdstat_scan:") && !stats.contains("cmdstat_pttl:"), "fell back to the primary: {stats}");
    assert_eq!(value(&exposition(&scanner), "tenderly_redis_keys", "session"), Some(500.0), "the last pass is kept");
}

// ---- cluster -------------------------------------------------------------------

/// CRC16/XMODEM, the Redis Cluster key hash.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

fn slot(key: &str) -> u16 {
    let hashed = match key.find('{') {
        Some(open) => match key[open + 1..].find('}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed.as_bytes()) % 16384
}

/// Three masters, slots split in thirds, met and `ok` on every node.
fn start_three_master_cluster() -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..3)
        .map(|_| {
            RedisServer::start(RedisOptions {
                password: Some("cluster-pw".into()),
                acl_lines: vec![
                    "cluster-enabled yes".into(),
                    "cluster-config-file nodes.conf".into(),
                    "cluster-node-timeout 5000".into(),
                    "masterauth cluster-pw".into(),
                    format!("user exporter {KEYS_ACL}"),
                ],
                ..RedisOptions::default()
            })
        })
        .collect();
    for (node, (from, to)) in nodes.iter().zip([(0, 5460), (5461, 10922), (10923, 16383)]) {
        node.cli(&["CLUSTER", "ADDSLOTSRANGE", &from.to_string(), &to.to_string()]);
    }
    for other in &nodes[1..] {
        nodes[0].cli(&["CLUSTER", "MEET", "127.0.0.1", &other.port().to_string()]);
    }
    for node in &nodes {
        wait_until(Duration::from_secs(30), "cluster_state:ok on every node", || {
            let info = node.cli(&["CLUSTER", "INFO"]);
            info_field(&info, "cluster_state").as_deref() == Some("ok")
                && info_field(&info, "cluster_known_nodes").as_deref() == Some("3")
        });
    }
    nodes
}

#[test]
fn a_three_master_cluster_is_scanned_on_every_master_and_summed() {
    let nodes = start_three_master_cluster();
    let ranges = [(0u16, 5460u16), (5461, 10922), (10923, 16383)];
    let mut per_node: Vec<Vec<Vec<String>>> = vec![Vec::new(), Vec::new(), Vec::new()];
    let mut add = |key: String, ttl: Option<u32>| {
        let s = slot(&key);
        let i = ranges.iter().position(|(a, b)| (*a..=*b).contains(&s)).expect("slot in a range");
        per_node[i].push(set(key, ttl));
    };
    for i in 0..6_000 {
        add(format!("tenderly:session:{i}"), Some(3600));
    }
    for i in 0..900 {
        add(format!("tenderly:user:{i}"), None);
    }
    for i in 0..300 {
        add(format!("other-app:{i}"), Some(60_000));
    }
    for (node, commands) in nodes.iter().zip(&per_node) {
        assert!(!commands.is_empty(), "every master holds keys");
        load(node, commands);
    }

    let rt = runtime();
    // Seed at the second node, as the least-privilege exporter user.
    let config = KeyFamiliesConfig { budget: "10ms".into(), scan_count: 500, ..KeyFamiliesConfig::default() };
    let scanner = key_scanner("cluster", target(&nodes[1], Some(("exporter", "exporter-pw"))), config);
    let calls = advance_until_pass(&rt, &scanner, 1, Duration::from_secs(2));
    assert!(calls > 1);
    let out = exposition(&scanner);
    assert_eq!(out.get("tenderly_redis_key_scan_nodes", &[]).map(Value::as_f64), Some(3.0));
    assert_eq!(value(&out, "tenderly_redis_keys", "session"), Some(6_000.0));
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "session"), Some(0.0));
    assert_eq!(value(&out, "tenderly_redis_keys", "user"), Some(900.0));
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "user"), Some(900.0));
    assert_eq!(value(&out, "tenderly_redis_keys", "non_tenderly"), Some(300.0));
    assert_eq!(value(&out, "tenderly_redis_keys", "otp"), Some(0.0));
    for node in &nodes {
        assert!(node.cli(&["INFO", "commandstats"]).contains("cmdstat_scan:"), "a master was not scanned");
        assert_eq!(number(node, "stats", "total_error_replies"), 0, "error replies on {}", node.addr());
    }
}

// ---- refusals ------------------------------------------------------------------

#[test]
fn refused_commands_and_key_patterns_are_learnt_once_and_degrade_metrics() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec![
            // May SCAN but not PTTL / MEMORY USAGE.
            "user scanonly on >pw1 -@all +info +scan".into(),
            // Key reads only under tenderly:.
            "user scoped on >pw2 %R~tenderly:* -@all +info +scan +pttl +memory|usage".into(),
            "user noscan on >pw3 -@all +info".into(),
        ],
        ..RedisOptions::default()
    });
    let mut commands: Vec<Vec<String>> = (0..300).map(|i| set(format!("tenderly:session:{i}"), Some(3600))).collect();
    commands.extend((0..50).map(|i| set(format!("cache:{i}"), None)));
    load(&server, &commands);
    let rt = runtime();
    let config = || KeyFamiliesConfig {
        scan_count: 50,
        memory_sample_every: 10,
        min_pass_interval: "0s".into(),
        ..KeyFamiliesConfig::default()
    };

    let scanonly = key_scanner("r", target(&server, Some(("scanonly", "pw1"))), config());
    advance_until_pass(&rt, &scanonly, 3, Duration::from_secs(2));
    let out = exposition(&scanonly);
    assert_eq!(value(&out, "tenderly_redis_keys", "session"), Some(300.0));
    assert_eq!(value(&out, "tenderly_redis_keys", "non_tenderly"), Some(50.0));
    assert_eq!(out.sample_count("tenderly_redis_keys_without_ttl"), 0, "unknown TTLs must not read as 0");
    assert_eq!(value(&out, "tenderly_redis_key_memory_bytes", "session"), None);
    // One refusal each for PTTL and MEMORY USAGE over three passes.
    let errors = server.cli(&["INFO", "errorstats"]);
    assert_eq!(info_field(&errors, "errorstat_NOPERM").as_deref(), Some("count=2"), "{errors}");

    server.cli(&["CONFIG", "RESETSTAT"]);
    let scoped = key_scanner("r", target(&server, Some(("scoped", "pw2"))), config());
    advance_until_pass(&rt, &scoped, 3, Duration::from_secs(2));
    let out = exposition(&scoped);
    assert_eq!(value(&out, "tenderly_redis_keys", "session"), Some(300.0));
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "session"), Some(0.0));
    assert!(value(&out, "tenderly_redis_key_memory_bytes", "session").is_some_and(|b| b > 0.0));
    assert_eq!(value(&out, "tenderly_redis_keys", "non_tenderly"), Some(50.0));
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "non_tenderly"), None);
    let errors = server.cli(&["INFO", "errorstats"]);
    // PTTL and MEMORY USAGE each denied once for the non_tenderly family, then never sent again.
    assert_eq!(info_field(&errors, "errorstat_NOPERM").as_deref(), Some("count=2"), "{errors}");

    let noscan = key_scanner("r", target(&server, Some(("noscan", "pw3"))), config());
    let first = rt.block_on(noscan.advance(Instant::now() + Duration::from_secs(5)));
    assert!(matches!(first, Err(KeyScanError::Refused("SCAN"))), "{first:?}");
    for _ in 0..3 {
        rt.block_on(noscan.advance(Instant::now() + Duration::from_secs(5))).expect("refused scan is quiet");
    }
    let out = exposition(&noscan);
    assert_eq!(out.get("tenderly_redis_key_scan_permitted", &[]).map(Value::as_f64), Some(0.0));
    assert_eq!(out.sample_count("tenderly_redis_keys"), 0);
}

// ---- posture -------------------------------------------------------------------

fn posture(
    server: &RedisServer,
    user: Option<(&str, &str)>,
    options: &RedisPostureConfig,
) -> redis_posture::RedisPosture {
    let rt = runtime();
    let spec = target(server, user);
    rt.block_on(redis_posture::check_with("cache", &spec, options, Instant::now() + Duration::from_secs(5)))
}

const RENAMED_CONFIG: &str = "CONFIG-posture-test-b840fc02";

fn secure_server() -> RedisServer {
    RedisServer::start(RedisOptions {
        password: Some("secure-pw".into()),
        acl_lines: vec![
            "rename-command FLUSHDB \"\"".into(),
            "rename-command FLUSHALL \"\"".into(),
            "rename-command KEYS \"\"".into(),
            format!("rename-command CONFIG {RENAMED_CONFIG}"),
        ],
        ..RedisOptions::default()
    })
}

#[test]
fn posture_of_the_guides_secure_config_passes() {
    let server = secure_server();
    let options = RedisPostureConfig { config_command: Some(RENAMED_CONFIG.into()), app_user: None };
    let p = posture(&server, None, &options);
    assert_eq!(p.outcome(AUTH_REQUIRED), Outcome::Pass);
    assert_eq!(p.outcome(DANGEROUS_COMMANDS_DISABLED), Outcome::Pass);
    assert_eq!(p.outcome(PROTECTED_MODE), Outcome::Pass);
    assert_eq!(p.outcome(NOT_BOUND_TO_ALL_INTERFACES), Outcome::Pass);
    // Plain TCP port open: TLS is not required.
    assert_eq!(p.outcome(TLS_REQUIRED), Outcome::Fail);
    // The only error reply is the unauthenticated probe's NOAUTH.
    let errors = server.cli(&["INFO", "errorstats"]);
    assert_eq!(info_field(&errors, "errorstat_NOAUTH").as_deref(), Some("count=1"), "{errors}");
    assert_eq!(number(&server, "stats", "total_error_replies"), 1, "{errors}");

    let mut out = Exposition::new();
    p.encode("cache", &mut out);
    let get = |name: &str, check: &str| out.get(name, &[("target", "cache"), ("check", check)]).map(Value::as_f64);
    assert_eq!(get("tenderly_security_check", AUTH_REQUIRED), Some(1.0));
    assert_eq!(get("tenderly_security_check_evaluated", PROTECTED_MODE), Some(1.0));
    assert!(!out.render().expect("render").contains(RENAMED_CONFIG));

    // Without the renamed name CONFIG is gone: protected mode is unknown, not passing, and nothing errors.
    server.cli(&[RENAMED_CONFIG, "RESETSTAT"]);
    let p = posture(&server, None, &RedisPostureConfig::default());
    assert_eq!(p.outcome(DANGEROUS_COMMANDS_DISABLED), Outcome::Pass);
    assert_eq!(p.outcome(PROTECTED_MODE), Outcome::NotEvaluated);
    assert_eq!(p.outcome(TLS_REQUIRED), Outcome::NotEvaluated);
    assert_eq!(number(&server, "stats", "total_error_replies"), 1);
    let mut out = Exposition::new();
    p.encode("cache", &mut out);
    let labels = [("target", "cache"), ("check", PROTECTED_MODE)];
    assert_eq!(out.get("tenderly_security_check", &labels), None);
    assert_eq!(out.get("tenderly_security_check_evaluated", &labels).map(Value::as_f64), Some(0.0));
}

#[test]
fn posture_of_a_default_insecure_server_fails() {
    let server = RedisServer::start(RedisOptions {
        extra_args: vec!["--protected-mode".into(), "no".into()],
        ..RedisOptions::default()
    });
    let p = posture(&server, None, &RedisPostureConfig::default());
    assert_eq!(p.outcome(AUTH_REQUIRED), Outcome::Fail);
    assert_eq!(p.outcome(DANGEROUS_COMMANDS_DISABLED), Outcome::Fail);
    assert_eq!(p.dangerous_available, vec!["flushall", "flushdb", "keys", "config"]);
    assert_eq!(p.outcome(PROTECTED_MODE), Outcome::Fail);
    assert_eq!(p.outcome(NOT_BOUND_TO_ALL_INTERFACES), Outcome::Pass, "the harness binds 127.0.0.1");
    assert_eq!(number(&server, "stats", "total_error_replies"), 0);
}

#[test]
fn posture_with_a_least_privilege_user_reports_what_it_cannot_see() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec![
            "user exporter on >exporter-pw -@all +info +ping +command|info +acl|dryrun".into(),
            "user app on >app-pw ~tenderly:* +@all -flushall -flushdb -keys -config".into(),
            "user careless on >app-pw ~* +@all".into(),
        ],
        ..RedisOptions::default()
    });
    let exporter = Some(("exporter", "exporter-pw"));
    let p = posture(&server, exporter, &RedisPostureConfig::default());
    assert_eq!(p.outcome(AUTH_REQUIRED), Outcome::Pass);
    assert_eq!(p.outcome(DANGEROUS_COMMANDS_DISABLED), Outcome::Fail, "commands exist, no app user named");
    assert_eq!(p.outcome(PROTECTED_MODE), Outcome::NotEvaluated);
    assert_eq!(p.outcome(TLS_REQUIRED), Outcome::NotEvaluated);

    let app = RedisPostureConfig { app_user: Some("app".into()), ..RedisPostureConfig::default() };
    assert_eq!(posture(&server, exporter, &app).outcome(DANGEROUS_COMMANDS_DISABLED), Outcome::Pass);
    let careless = RedisPostureConfig { app_user: Some("careless".into()), ..RedisPostureConfig::default() };
    assert_eq!(posture(&server, exporter, &careless).outcome(DANGEROUS_COMMANDS_DISABLED), Outcome::Fail);
    let unknown = RedisPostureConfig { app_user: Some("nobody".into()), ..RedisPostureConfig::default() };
    assert_eq!(posture(&server, exporter, &unknown).outcome(DANGEROUS_COMMANDS_DISABLED), Outcome::NotEvaluated);
}

#[test]
fn posture_of_an_unreachable_server_is_not_evaluated() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let spec = RedisTarget::plain(Connection::new(format!("redis://127.0.0.1:{port}"), None, None));
    let rt = runtime();
    let p = rt.block_on(redis_posture::check("gone", &spec, Instant::now() + Duration::from_secs(2)));
    assert!(p.checks.iter().all(|(_, o)| *o == Outcome::NotEvaluated), "{p:?}");
}

/// The key scanner the exporter would build for `target` (its connection and trust policy).
fn key_scanner(name: &str, target: RedisTarget, config: KeyFamiliesConfig) -> KeyScanner {
    KeyScanner::new(name, target.connection.clone(), target.member_policy(), config)
}

/// Per-command `calls + rejected_calls` from `INFO commandstats` text.
fn commandstats(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |f: &str| -> u64 {
                fields.split(',').find_map(|kv| kv.strip_prefix(f)).and_then(|v| v.parse().ok()).unwrap_or(0)
            };
            Some((name.to_string(), field("calls=") + field("rejected_calls=")))
        })
        .collect()
}

#[test]
fn the_exporters_own_commands_per_purpose_match_the_servers_commandstats() {
    let server = RedisServer::start(RedisOptions::with_password("load-pw"));
    load(&server, &(0..3000).map(|i| set(format!("tenderly:session:{i}"), Some(3600))).collect::<Vec<_>>());
    // One connection for the test's own commands: reset, then read at the end.
    let mut admin = server.conn();
    admin.call(&["CONFIG", "RESETSTAT"]).expect("CONFIG RESETSTAT");
    let exporter = crate::support::exporter::TestExporter::start(
        &["--redis.addr", &server.addr(), "--collector.tenderly.posture"],
        &[("REDIS_PASSWORD", "load-pw")],
    );
    let mut last = None;
    for _ in 0..5 {
        last = Some(exporter.scrape("/metrics"));
        // The key scan steps after each answer; let it finish before the next scrape.
        std::thread::sleep(Duration::from_millis(300));
    }
    let metrics = exporter.scrape("/metrics");
    let stats = commandstats(&admin.call(&["INFO", "commandstats"]).expect("INFO commandstats").render());
    drop(last);

    assert_eq!(metrics.value("tenderly_redis_key_scan_passes_total", &[]), Some(1.0), "{}", metrics.text);
    let sent = |purpose: &str| metrics.expect("tenderly_exporter_redis_commands_sent_total", &[("purpose", purpose)]);
    let (collection, key_scan, posture) = (sent("collection"), sent("key_scan"), sent("posture"));
    let seen = |name: &str| stats.iter().find(|(n, _)| n == name).map_or(0, |(_, calls)| *calls);
    let server_total: u64 = stats.iter().filter(|(n, _)| n != "config|resetstat").map(|(_, c)| c).sum();
    assert_eq!(
        (collection + key_scan + posture) as u64,
        server_total,
        "exporter says collection {collection} + key_scan {key_scan} + posture {posture}; server saw {stats:?}"
    );
    // The scan's own commands: AUTH and INFO server once, then SCAN/PTTL/MEMORY USAGE.
    assert_eq!(key_scan as u64, seen("scan") + seen("pttl") + seen("memory|usage") + 2, "{stats:?}");
    assert_eq!(seen("pttl"), 3000);
    // Six scrapes: six pipelined INFO ALL rounds, plus one connection's handshake and detection.
    assert!(collection >= 6.0 * 2.0 && posture >= 3.0, "{collection} {posture}");
    let waited = metrics.expect("tenderly_exporter_redis_command_round_trip_seconds_total", &[("purpose", "key_scan")]);
    assert!(waited > 0.0 && waited < 30.0, "{waited}");
}

#[test]
fn the_ttl_policy_is_per_family_configurable_and_exported() {
    let server = RedisServer::start(RedisOptions::default());
    load(
        &server,
        &[
            set("tenderly:session:a".into(), Some(3600)),
            set("tenderly:user:forever".into(), None),
            set("tenderly:otp:forever".into(), None),
            set("tenderly:misc:forever".into(), None),
            set("unrelated:forever".into(), None),
        ],
    );
    let rt = runtime();
    // The guide's defaults: every tenderly: family (and `other`) must expire.
    let scanner = key_scanner("cache", target(&server, None), KeyFamiliesConfig::default());
    advance_until_pass(&rt, &scanner, 1, Duration::from_secs(5));
    let out = exposition(&scanner);
    for family in ["session", "jwt", "otp", "ratelimit", "user", "other"] {
        assert_eq!(value(&out, "tenderly_redis_key_family_ttl_required", family), Some(1.0), "{family}");
    }
    assert_eq!(value(&out, "tenderly_redis_key_family_ttl_required", "non_tenderly"), Some(0.0));

    // A family that keeps its keys for good says so in the config.
    let yaml = "families:\n\
                \x20 - {name: session, prefix: 'tenderly:session:'}\n\
                \x20 - {name: otp, prefix: 'tenderly:otp:'}\n\
                \x20 - {name: user, prefix: 'tenderly:user:', requires_ttl: false}\n\
                other_requires_ttl: false\n";
    let config: KeyFamiliesConfig = serde_norway::from_str(yaml).expect("key_families yaml");
    let scanner = key_scanner("cache", target(&server, None), config);
    advance_until_pass(&rt, &scanner, 1, Duration::from_secs(5));
    let out = exposition(&scanner);
    let required = |f| value(&out, "tenderly_redis_key_family_ttl_required", f);
    assert_eq!((required("session"), required("otp")), (Some(1.0), Some(1.0)));
    assert_eq!((required("user"), required("other"), required("non_tenderly")), (Some(0.0), Some(0.0), Some(0.0)));
    // Keys without TTL are still counted; the alert joins on the policy.
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "user"), Some(1.0));
    assert_eq!(value(&out, "tenderly_redis_keys_without_ttl", "otp"), Some(1.0));
}
