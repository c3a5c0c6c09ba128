//! Live Redis: real `redis-server` processes started by the tests, scraped
//! through the exporter's HTTP server; metric values are compared with what
//! the server itself reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::{populate_tenderly, wait_until, RedisOptions, RedisServer};

/// The least-privilege ACL rule documented in README.md and docs/mongodb-privileges.md (keep them in sync).
pub const EXPORTER_ACL: &str = "on >exporter-pw -@all +info +ping +config|get +slowlog|len +slowlog|get \
     +latency|latest +latency|histogram +cluster|info +client|setname +client|list +client|id +command|info +scan +pttl \
     +memory|usage +cluster|nodes %R~*";

fn info_number(server: &RedisServer, section: &str, field: &str) -> f64 {
    server
        .info_field(section, field)
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .parse()
        .unwrap_or_else(|_| panic!("INFO {field} is not a number"))
}

/// `calls` of one command from INFO commandstats (0 if never called).
fn command_calls(server: &RedisServer, command: &str) -> u64 {
    calls_in(&server.cli(&["INFO", "commandstats"]), command)
}

/// `calls` of `command` in an `INFO commandstats` reply.
fn calls_in(commandstats: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:");
    commandstats
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("calls=")).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn start_exporter_for(server: &RedisServer) -> TestExporter {
    start_exporter_with(server, &[])
}

fn start_exporter_with(server: &RedisServer, extra: &[&str]) -> TestExporter {
    let addr = server.addr();
    let password = server.password().unwrap_or_default().to_string();
    let mut args = vec!["--redis.addr", addr.as_str()];
    args.extend_from_slice(extra);
    TestExporter::start(&args, &[("REDIS_PASSWORD", &password)])
}

/// The Redis collector alone: no key scan, no posture probe.
const REDIS_ONLY: &[&str] = &["--no-collector.tenderly.keys", "--no-collector.tenderly.posture"];

#[test]
fn master_metrics_match_what_the_server_reports() {
    let server = RedisServer::start(RedisOptions {
        password: Some("master-pw".into()),
        extra_args: vec!["--maxmemory".into(), "64mb".into(), "--maxmemory-policy".into(), "allkeys-lru".into()],
        ..RedisOptions::default()
    });
    let counts = populate_tenderly(&server, 620);
    let exporter = start_exporter_for(&server);
    let m = exporter.scrape("/metrics");

    assert_eq!(m.expect("redis_up", &[]), 1.0);
    let dbsize: f64 = server.cli(&["DBSIZE"]).trim().parse().expect("DBSIZE");
    assert_eq!(dbsize, counts.total() as f64);
    assert_eq!(m.expect("redis_db_keys", &[("db", "db0")]), dbsize);
    assert_eq!(m.expect("redis_db_keys_expiring", &[("db", "db0")]), counts.expiring() as f64);
    assert_eq!(m.expect("redis_memory_max_bytes", &[]), 64.0 * 1024.0 * 1024.0);
    assert_eq!(m.expect("redis_config_maxclients", &[]), info_number(&server, "clients", "maxclients"));
    assert!(m.expect("redis_memory_used_bytes", &[]) > 0.0);
    let sets = command_calls(&server, "set") as f64;
    assert!(sets > 0.0);
    assert_eq!(m.expect("redis_commands_total", &[("cmd", "set")]), sets);
    assert_eq!(
        m.expect("redis_instance_info", &[("role", "master"), ("maxmemory_policy", "allkeys-lru")]),
        1.0,
        "{}",
        m.text
    );
    assert!(m.value("redis_slowlog_length", &[]).is_some(), "slowlog summary missing");
    assert_eq!(m.expect("tenderly_exporter_collector_success", &[("target", "redis")]), 1.0);

    // The exporter named its connection and its scrapes produced no error replies.
    let clients = server.cli(&["CLIENT", "LIST"]);
    assert!(clients.contains("name=tenderly-exporter"), "{clients}");
    let errors_before = info_number(&server, "stats", "total_error_replies");
    for _ in 0..3 {
        exporter.scrape("/metrics");
    }
    assert_eq!(info_number(&server, "stats", "total_error_replies"), errors_before);
    assert_eq!(server.info_field("errorstats", "errorstat_ERR"), None, "scrapes caused ERR replies");
}

#[test]
fn one_round_trip_per_scrape_and_never_config_get_star() {
    let server = RedisServer::start(RedisOptions::with_password("rt-pw"));
    let exporter = start_exporter_with(&server, REDIS_ONLY);
    exporter.scrape("/metrics"); // connect and detect features
    let before = server.cli(&["INFO", "commandstats"]);
    for _ in 0..5 {
        exporter.scrape("/metrics");
    }
    let after = server.cli(&["INFO", "commandstats"]);
    // Each scrape: INFO ALL, SLOWLOG LEN + GET, LATENCY LATEST; plus the `before` INFO.
    // CONFIG GET was read by the first scrape and is not due again for 60 s.
    let delta = |cmd: &str| calls_in(&after, cmd) - calls_in(&before, cmd);
    assert_eq!(delta("info"), 5 + 1, "INFO calls");
    assert_eq!(delta("config|get"), 0, "CONFIG GET within --redis.config-max-age");
    assert!(exporter.scrape("/metrics").value("redis_config_maxclients", &[]).is_some(), "cached values are served");
    assert_eq!(delta("slowlog|len") + delta("slowlog|get") + delta("latency|latest"), 15);
    assert_eq!(delta("command|info") + delta("client|setname"), 0, "feature detection is once per connection");
    let slowlog = server.cli(&["SLOWLOG", "GET", "128"]);
    assert!(!slowlog.contains("CONFIG\nGET\n*"), "CONFIG GET * was sent");
}

/// `--redis.config-max-age 0s` reads CONFIG GET on every scrape, and a
/// changed setting shows on the next scrape.
#[test]
fn config_get_every_scrape_when_max_age_is_zero() {
    let server = RedisServer::start(RedisOptions::with_password("rt-pw"));
    let mut extra = REDIS_ONLY.to_vec();
    extra.extend(["--redis.config-max-age", "0s"]);
    let exporter = start_exporter_with(&server, &extra);
    exporter.scrape("/metrics");
    let before = server.cli(&["INFO", "commandstats"]);
    for _ in 0..3 {
        exporter.scrape("/metrics");
    }
    let after = server.cli(&["INFO", "commandstats"]);
    assert_eq!(calls_in(&after, "config|get") - calls_in(&before, "config|get"), 3);
    server.cli(&["CONFIG", "SET", "maxclients", "1234"]);
    assert_eq!(exporter.scrape("/metrics").value("redis_config_maxclients", &[]), Some(1234.0));
}

#[test]
fn replica_and_master_replication_metrics() {
    let master = RedisServer::start(RedisOptions::with_password("repl-pw"));
    let replica = RedisServer::start(RedisOptions {
        password: Some("repl-pw".into()),
        replica_of: Some((master.port(), Some("repl-pw".into()))),
        ..RedisOptions::default()
    });
    wait_until(Duration::from_secs(20), "replica link up", || {
        replica.info_field("replication", "master_link_status").as_deref() == Some("up")
    });
    let on_replica = start_exporter_for(&replica).scrape("/metrics");
    assert_eq!(on_replica.expect("redis_master_link_up", &[]), 1.0);
    assert_eq!(on_replica.expect("redis_instance_info", &[("role", "slave")]), 1.0);

    let on_master = start_exporter_for(&master).scrape("/metrics");
    assert_eq!(on_master.expect("redis_connected_slaves", &[]), 1.0);
    let port = replica.port().to_string();
    assert!(
        on_master.value("redis_connected_slave_lag_seconds", &[("slave_port", &port)]).is_some(),
        "{}",
        on_master.text
    );
    for (name, labels, _) in &on_master.samples {
        if name.starts_with("redis_connected_slave") {
            assert!(labels.iter().all(|(k, _)| k != "slave_state" && k != "state"), "churning state label on {name}");
        }
    }
}

#[test]
fn cluster_node_reports_cluster_state() {
    let node = RedisServer::start(RedisOptions { cluster: true, ..RedisOptions::default() });
    let m = start_exporter_for(&node).scrape("/metrics");
    assert_eq!(m.value("redis_cluster_state", &[]), Some(1.0), "{}", m.text);
    assert_eq!(m.expect("redis_cluster_slots_assigned", &[]), 16384.0);
    assert!(m.value("redis_cluster_links_buffer_limit_exceeded_total", &[]).is_some(), "{}", m.text);
}

#[test]
fn least_privilege_acl_user_scrapes_without_errors() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec![format!("user exporter {EXPORTER_ACL}")],
        ..RedisOptions::default()
    });
    populate_tenderly(&server, 310);
    // Posture is off here: its unauthenticated probe costs one NOAUTH by design (next test).
    let exporter = TestExporter::start(
        &["--redis.addr", &server.addr(), "--redis.user", "exporter", "--no-collector.tenderly.posture"],
        &[("REDIS_PASSWORD", "exporter-pw")],
    );
    let errors_before = info_number(&server, "stats", "total_error_replies");
    for _ in 0..3 {
        let m = exporter.scrape("/metrics");
        assert_eq!(m.expect("redis_up", &[]), 1.0);
        assert!(m.value("redis_config_maxclients", &[]).is_some());
        assert!(m.value("redis_slowlog_length", &[]).is_some());
    }
    // The key scan steps after each scrape has answered; with the same user its
    // pass over the small keyspace completes and every step succeeds.
    wait_until(Duration::from_secs(10), "a complete key-scan pass", || {
        exporter.scrape("/metrics").value("tenderly_redis_keys", &[("family", "session")]) == Some(200.0)
    });
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("tenderly_exporter_collector_success", &[("collector", "tenderly_keys")]), 1.0, "{}", m.text);
    assert_eq!(info_number(&server, "stats", "total_error_replies"), errors_before, "NOPERM or other errors");
    // Redis 7.2+ counts ACL denials in INFO stats; 7.0 has only the error counters checked above.
    let denied = server.info_field("stats", "acl_access_denied_cmd").unwrap_or_else(|| "0".into());
    assert_eq!(denied, "0");
}

#[test]
fn refused_commands_are_learnt_once_not_retried_every_scrape() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec!["user infoonly on >info-pw -@all +info +command|info".into()],
        ..RedisOptions::default()
    });
    // The Redis collector alone: the key scan steps in the background after each
    // answer and learns its own refusals once (tests/it/tenderly_keys.rs), which
    // would race with this count.
    let exporter = TestExporter::start(
        &["--redis.addr", &server.addr(), "--redis.user", "infoonly", REDIS_ONLY[0], REDIS_ONLY[1]],
        &[("REDIS_PASSWORD", "info-pw")],
    );
    let first = exporter.scrape("/metrics");
    assert_eq!(first.expect("redis_up", &[]), 1.0, "INFO alone must be enough");
    let after_first = info_number(&server, "stats", "total_error_replies");
    for _ in 0..4 {
        assert_eq!(exporter.scrape("/metrics").expect("redis_up", &[]), 1.0);
    }
    assert_eq!(info_number(&server, "stats", "total_error_replies"), after_first, "refusals repeated");
}

#[test]
fn wrong_password_is_down_and_never_leaks() {
    let server = RedisServer::start(RedisOptions::with_password("right-pw"));
    let secret = "wrong-pw-7f3a9c";
    let exporter = TestExporter::start(&["--redis.addr", &server.addr()], &[("REDIS_PASSWORD", secret)]);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("redis_up", &[]), 0.0);
    assert!(!m.text.contains(secret));
    assert!(!exporter.get("/").body.contains(secret));
}

#[test]
fn password_file_is_read_with_trailing_newline_stripped() {
    let server = RedisServer::start(RedisOptions::with_password("file-pw"));
    let path = server.dir().join("exporter-password");
    std::fs::write(&path, "file-pw\n").expect("write password file");
    let exporter = TestExporter::start(
        &["--redis.addr", &server.addr(), "--redis.password-file", path.to_str().expect("utf-8 path")],
        &[],
    );
    assert_eq!(exporter.scrape("/metrics").expect("redis_up", &[]), 1.0);
}

#[test]
fn concurrent_scrapes_share_one_collection() {
    let server = RedisServer::start(RedisOptions::with_password("sf-pw"));
    // The Redis collector alone, so every INFO counted is a collection.
    let exporter = Arc::new(start_exporter_with(&server, REDIS_ONLY));
    exporter.scrape("/metrics"); // connect first
    let info_before = command_calls(&server, "info");
    // Hold the server still so every request arrives while the first collection is in flight.
    server.cli(&["CLIENT", "PAUSE", "700", "ALL"]);
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let e = Arc::clone(&exporter);
            std::thread::spawn(move || e.scrape("/metrics"))
        })
        .collect();
    let results: Vec<Exposition> = scrapers.into_iter().map(|t| t.join().expect("scraper")).collect();
    for m in &results {
        assert_eq!(m.expect("redis_up", &[]), 1.0);
    }
    let info_calls = command_calls(&server, "info") - info_before - 1; // minus this check's INFO
    assert!(info_calls <= 2, "{info_calls} INFO calls for 8 concurrent scrapes");
    let runs = exporter.scrape("/metrics").expect("tenderly_exporter_scrapes_total", &[("target", "redis")]);
    assert!(runs <= 1.0 + 2.0 + 1.0, "{runs} collections");
}

#[test]
fn recovers_after_the_server_restarts() {
    let mut server = RedisServer::start(RedisOptions::with_password("restart-pw"));
    let exporter = start_exporter_for(&server);
    assert_eq!(exporter.scrape("/metrics").expect("redis_up", &[]), 1.0);
    server.kill();
    let started = Instant::now();
    let down = exporter.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(Exposition::parse(&down.body).expect("redis_up", &[]), 0.0);
    server.restart();
    // The first scrape after a failure reconnects immediately (no backoff yet).
    let up = exporter.scrape("/metrics");
    assert_eq!(up.expect("redis_up", &[]), 1.0, "not recovered: {}", up.text);
}

#[test]
fn hung_server_is_down_within_the_deadline_then_recovers() {
    let server = RedisServer::start(RedisOptions::with_password("pause-pw"));
    let exporter = start_exporter_for(&server);
    assert_eq!(exporter.scrape("/metrics").expect("redis_up", &[]), 1.0);
    server.cli(&["CLIENT", "PAUSE", "3000", "ALL"]);
    let started = Instant::now();
    let resp = exporter.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")]);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    assert_eq!(Exposition::parse(&resp.body).expect("redis_up", &[]), 0.0);
    wait_until(Duration::from_secs(10), "exporter sees Redis again", || {
        exporter.scrape("/metrics").value("redis_up", &[]) == Some(1.0)
    });
}

#[test]
fn posture_checks_cost_one_noauth_per_interval_not_per_scrape() {
    let server = RedisServer::start(RedisOptions::with_password("posture-pw"));
    let exporter = start_exporter_for(&server);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("tenderly_security_check", &[("target", "redis"), ("check", "redis_auth_required")]), 1.0);
    for _ in 0..3 {
        exporter.scrape("/metrics");
    }
    let noauth = server.info_field("errorstats", "errorstat_NOAUTH").unwrap_or_default();
    assert_eq!(noauth, "count=1", "the unauthenticated probe runs once per 5 minutes");
}
