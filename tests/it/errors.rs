//! Errors say where and why (issue 11): a refused connection names the
//! target, its address and "connection refused"; a Redis that wants a password
//! says how to give one (the flags for the command-line target, the file's
//! fields for a config-file target; a config-file MongoDB never points at
//! MONGODB_USER / MONGODB_PASSWORD); a dead MongoDB next to a healthy Redis
//! costs `/metrics` one server-selection timeout, not one per scrape, and
//! recovery is still seen; config errors say the cause once; zero targets
//! warn at startup and fail `--check-config`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::exporter::{http_request, ChildExporter};
use crate::support::mongo_replay::{ReplayServer, Scenario};
use crate::support::process::free_port;
use crate::support::{private_temp_dir, RedisOptions, RedisServer};

fn exporter() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"));
    for var in ["REDIS_ADDR", "REDIS_PASSWORD", "MONGODB_URI", "MONGODB_USER", "MONGODB_PASSWORD"] {
        cmd.env_remove(var);
    }
    cmd.env_remove("TENDERLY_EXPORTER_CONFIG");
    cmd
}

/// Scrapes `/metrics` until `log` contains every needle (or 10 s pass).
fn scrape_until_logged(bin: &ChildExporter, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = http_request(bin.addr, "GET", "/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "3")]);
        let log = bin.log();
        if needles.iter().all(|n| log.contains(n)) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_refused_connection_logs_the_target_address_and_connection_refused() {
    let port = free_port(); // nothing listens here
    let bin = ChildExporter::start(&["--redis.addr", &format!("127.0.0.1:{port}")]);
    let log = scrape_until_logged(&bin, &["connection refused"]);
    let line = log.lines().find(|l| l.contains("scrape failed")).unwrap_or_else(|| panic!("no failure logged:\n{log}"));
    assert!(line.contains("target_name=redis"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "the address is missing: {line}");
    assert!(line.contains("connection refused"), "the cause is missing: {line}");
    assert!(!line.contains("I/O error"), "{line}");
}

#[test]
fn a_redis_that_needs_a_password_says_how_to_give_one() {
    let server =
        RedisServer::start(RedisOptions { password: Some("needs-a-password".into()), ..RedisOptions::default() });
    // The command-line target: the flags' ways.
    let bin = ChildExporter::start(&["--redis.addr", &server.addr()]);
    let log = scrape_until_logged(&bin, &["REDIS_PASSWORD"]);
    let line = log.lines().find(|l| l.contains("scrape failed")).unwrap_or_else(|| panic!("no failure:\n{log}"));
    assert!(line.contains("authentication required"), "{line}");
    assert!(line.contains("REDIS_PASSWORD or --redis.password-file"), "no hint: {line}");
    drop(bin);

    // A config-file target: the file's fields, never the flags' variables.
    let dir = private_temp_dir("noauth");
    let file = dir.join("targets.yml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  - {{name: sessions-redis, kind: redis, address: 'redis://{}', default: true}}\n",
            server.addr()
        ),
    )
    .expect("write");
    let bin = ChildExporter::start(&["--config.file", file.to_str().expect("utf-8")]);
    let log = scrape_until_logged(&bin, &["password_file"]);
    let line = log.lines().find(|l| l.contains("scrape failed")).unwrap_or_else(|| panic!("no failure:\n{log}"));
    assert!(line.contains("target_name=sessions-redis"), "{line}");
    assert!(line.contains("password_file (or password_env)") && line.contains(file.to_str().expect("utf-8")), "{line}");
    assert!(!line.contains("REDIS_PASSWORD"), "a config-file target's hint must not name REDIS_PASSWORD: {line}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_config_file_mongodb_error_never_points_at_the_flags_variables() {
    let dir = private_temp_dir("mongo-hint");
    let file = dir.join("targets.yml");
    std::fs::write(&file, "targets:\n  - {name: tenderly-mongodb, kind: mongodb, address: 'mongodb://'}\n")
        .expect("write");
    let out =
        exporter().args(["--config.file", file.to_str().expect("utf-8"), "--check-config"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(tenderly-mongodb).address"), "the target and field: {stderr}");
    assert!(!stderr.contains("MONGODB_USER") && !stderr.contains("MONGODB_PASSWORD"), "{stderr}");
    assert!(stderr.contains("username and password_file"), "{stderr}");
    // The command-line target still gets the flags' variables.
    let out = exporter().args(["--mongodb.uri", "mongodb://", "--check-config"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("MONGODB_USER/MONGODB_PASSWORD"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_dead_mongodb_next_to_a_healthy_redis_answers_at_once_from_the_second_scrape_and_recovers() {
    let redis = RedisServer::start(RedisOptions::default());
    // A closed loopback port: the driver retries server selection for 5 s.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mongo_addr = dead.local_addr().expect("addr");
    drop(dead);
    let bin = ChildExporter::start(&[
        "--redis.addr",
        &redis.addr(),
        "--mongodb.uri",
        &format!("mongodb://{mongo_addr}/?directConnection=true"),
    ]);
    let scrape = || {
        let started = Instant::now();
        let resp = http_request(bin.addr, "GET", "/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "8")]);
        (started.elapsed(), resp)
    };
    let (first, resp) = scrape();
    assert_eq!(resp.status, 200);
    assert!(resp.body.contains("mongodb_up 0"), "{}", resp.body);
    eprintln!("errors: first /metrics with a dead MongoDB took {first:?}");
    let log = bin.log();
    let line = log
        .lines()
        .find(|l| l.contains("scrape failed") && l.contains("target_name=mongodb"))
        .unwrap_or_else(|| panic!("no MongoDB failure logged:\n{log}"));
    assert!(line.contains(&mongo_addr.to_string()) && line.contains("connection refused"), "{line}");
    let mut times = Vec::new();
    for _ in 0..5 {
        let (took, resp) = scrape();
        assert!(resp.body.contains("mongodb_up 0") && resp.body.contains("redis_up 1"), "{}", resp.body);
        times.push(took);
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("errors: later /metrics took {times:?}");
    for took in &times {
        assert!(
            *took < Duration::from_millis(500),
            "/metrics took {took:?} with a MongoDB known to be down: {times:?}"
        );
    }

    // The MongoDB comes back on the same port: the background checks see it.
    let mongo = ReplayServer::start_on(Scenario::Standalone, mongo_addr).expect("replay server on the dead port");
    let deadline = Instant::now() + Duration::from_secs(40);
    let recovered_after = loop {
        let (_, resp) = scrape();
        if resp.body.contains("mongodb_up 1") {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "mongodb_up never returned to 1:\n{}", bin.log());
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("errors: recovered {:?} before the deadline", deadline - recovered_after);
    drop(mongo);
}

#[test]
fn a_missing_config_file_says_its_cause_once() {
    let dir = private_temp_dir("missing-config");
    let path = dir.join("does-not-exist.yml");
    let out =
        exporter().args(["--config.file", path.to_str().expect("utf-8"), "--check-config"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(path.to_str().expect("utf-8")), "the file: {stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "the cause once: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn zero_targets_warn_at_startup_and_fail_check_config() {
    let out = exporter().arg("--check-config").output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "--check-config with no targets must fail: {stderr}");
    assert!(stderr.contains("no targets configured") && stderr.contains("--config.file"), "{stderr}");
    let out = exporter().arg("--check-config.structure").output().expect("run");
    assert_eq!(out.status.code(), Some(1));

    let bin = ChildExporter::start(&[]);
    let log = bin.log();
    let line =
        log.lines().find(|l| l.contains("no targets configured")).unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(line.contains("level=warn"), "{line}");
    assert!(line.contains("--redis.addr") && line.contains("--config.file"), "says what to do: {line}");
}

#[test]
fn structure_check_lists_each_missing_secret_and_reads_none() {
    let dir = private_temp_dir("structure");
    let present = dir.join("present-password");
    std::fs::write(&present, "must-not-be-read-or-printed\n").expect("write");
    let file = dir.join("targets.yml");
    std::fs::write(
        &file,
        format!(
            "targets:\n\
             \x20 - {{name: a, kind: redis, address: 'h:1', password_file: '{dir}/missing-a'}}\n\
             \x20 - {{name: b, kind: redis, address: 'h:2', password_file: '{present}'}}\n\
             \x20 - {{name: c, kind: mongodb, address: 'mongodb://h:3', username: u, password_file: '{dir}/missing-c'}}\n\
             \x20 - {{name: d, kind: redis, address: 'h:4', password_env: I11_UNSET_VARIABLE}}\n",
            dir = dir.display(),
            present = present.display()
        ),
    )
    .expect("write");
    let out = exporter()
        .args(["--config.file", file.to_str().expect("utf-8"), "--check-config.structure"])
        .env_remove("I11_UNSET_VARIABLE")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let findings: Vec<&str> = stdout.lines().filter(|l| l.contains("missing:")).collect();
    assert_eq!(findings.len(), 3, "{stdout}");
    assert!(findings[0].contains("(a).password_file") && findings[0].contains("missing-a"), "{stdout}");
    assert!(findings[1].contains("(c).password_file") && findings[1].contains("missing-c"), "{stdout}");
    assert!(findings[2].contains("(d).password_env") && findings[2].contains("I11_UNSET_VARIABLE"), "{stdout}");
    assert!(!stdout.contains("must-not-be-read"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_privilege_names_the_command_and_the_grant() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec!["user noinfo on >noinfo-pw -@all +ping".into()],
        ..RedisOptions::default()
    });
    let dir = private_temp_dir("noperm");
    let secret = dir.join("password");
    std::fs::write(&secret, "noinfo-pw\n").expect("write");
    let file = dir.join("targets.yml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  - {{name: cache, kind: redis, address: 'redis://{}', username: noinfo, password_file: '{}', default: true}}\n",
            server.addr(),
            secret.display()
        ),
    )
    .expect("write");
    let bin = ChildExporter::start(&["--config.file", file.to_str().expect("utf-8")]);
    let log = scrape_until_logged(&bin, &["NOPERM"]);
    let line = log.lines().find(|l| l.contains("scrape failed")).unwrap_or_else(|| panic!("no failure:\n{log}"));
    assert!(line.contains("INFO failed: missing privilege (NOPERM)") && line.contains("+info"), "{line}");
    assert!(line.contains(&server.addr()), "{line}");
    assert!(!log.contains("noinfo-pw"), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_rejected_config_file_mongodb_login_points_at_the_files_fields() {
    // The replay server has no users: every login fails with AuthenticationFailed.
    let mongo = ReplayServer::start(Scenario::Standalone).expect("replay server");
    let dir = private_temp_dir("mongo-auth");
    let secret = dir.join("mongo-password");
    std::fs::write(&secret, "rejected-password\n").expect("write");
    let file = dir.join("targets.yml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  - {{name: tenderly-mongodb, kind: mongodb, address: '{}', username: monitor, password_file: '{}', default: true}}\n",
            mongo.uri(),
            secret.display()
        ),
    )
    .expect("write");
    let bin = ChildExporter::start(&["--config.file", file.to_str().expect("utf-8")]);
    let log = scrape_until_logged(&bin, &["authentication failed"]);
    let line = log.lines().find(|l| l.contains("scrape failed")).unwrap_or_else(|| panic!("no failure:\n{log}"));
    assert!(line.contains("target_name=tenderly-mongodb") && line.contains(&mongo.addr().to_string()), "{line}");
    assert!(line.contains("password_file (or password_env) and username on target tenderly-mongodb"), "{line}");
    assert!(!line.contains("MONGODB_USER") && !line.contains("MONGODB_PASSWORD"), "{line}");
    assert!(!log.contains("rejected-password"), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}
