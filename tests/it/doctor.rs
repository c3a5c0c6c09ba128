//! `tenderly-exporter doctor` against real servers: the exact grant for each
//! missing privilege, and the exit code.

use std::process::Command;

use crate::redis_live::EXPORTER_ACL;
use crate::support::{RedisOptions, RedisServer};

fn doctor(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"));
    cmd.arg("doctor").args(args);
    for var in ["REDIS_ADDR", "REDIS_USER", "REDIS_PASSWORD", "MONGODB_URI", "MONGODB_USER", "MONGODB_PASSWORD"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run doctor");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn doctor_names_the_acl_rule_for_each_refused_redis_command() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec!["user narrow on >narrow-pw -@all +info +command|info".into()],
        ..RedisOptions::default()
    });
    let (code, text) =
        doctor(&["--redis.addr", &server.addr(), "--redis.user", "narrow"], &[("REDIS_PASSWORD", "narrow-pw")]);
    assert_eq!(code, 1, "{text}");
    for rule in ["+config|get", "+slowlog|len +slowlog|get", "+latency|latest", "+client|setname"] {
        assert!(text.contains(&format!("ACL SETUSER narrow {rule}")), "missing {rule}: {text}");
    }
    assert!(!text.contains("narrow-pw"), "{text}");
}

#[test]
fn doctor_passes_with_the_documented_acl_user() {
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec![format!("user exporter {EXPORTER_ACL}")],
        ..RedisOptions::default()
    });
    let (code, text) =
        doctor(&["--redis.addr", &server.addr(), "--redis.user", "exporter"], &[("REDIS_PASSWORD", "exporter-pw")]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("all checks passed"), "{text}");
}

#[test]
fn doctor_fails_for_an_unreachable_target() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (code, text) = doctor(&["--redis.addr", &format!("127.0.0.1:{port}")], &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL redis: connect failed"), "{text}");
}

#[test]
fn doctor_help_describes_doctor_and_flags_work_on_either_side() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter")).args(["doctor", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("Check every target"), "doctor --help must describe doctor, got: {text}");
    assert!(text.contains("Usage: tenderly-exporter doctor"), "{text}");
    // Flags before the subcommand reach it too.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"))
        .args(["--redis.addr", &format!("127.0.0.1:{port}"), "doctor"])
        .env_remove("REDIS_PASSWORD")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "doctor must check the flag's target: {text}");
}

#[test]
fn doctor_names_the_key_scan_and_its_grant_for_a_user_without_scan() {
    // The documented ACL user minus +scan: every other collector works, the key scan does not.
    let without_scan = EXPORTER_ACL.replace(" +scan", "");
    assert_ne!(without_scan, EXPORTER_ACL);
    let server = RedisServer::start(RedisOptions {
        password: Some("admin-pw".into()),
        acl_lines: vec![format!("user noscan {without_scan}")],
        ..RedisOptions::default()
    });
    let (code, text) =
        doctor(&["--redis.addr", &server.addr(), "--redis.user", "noscan"], &[("REDIS_PASSWORD", "exporter-pw")]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("OK   redis: INFO"), "the INFO collector works: {text}");
    let line = text.lines().find(|l| l.contains("FAIL tenderly_keys")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("key scan") && line.contains("SCAN refused"), "{line}");
    assert!(text.contains("fix: ACL SETUSER noscan +scan\n"), "the grant line: {text}");
    assert!(!text.contains("exporter-pw"), "{text}");
}

#[test]
fn doctor_prints_the_cluster_monitor_grant_for_an_unauthorized_server_status() {
    use crate::support::mongo_replay::{Fault, ReplayServer, Scenario};
    let mongo = ReplayServer::start(Scenario::Primary).expect("replay server");
    mongo.set_command_fault("serverStatus", Fault::unauthorized());
    let (code, text) = doctor(&["--mongodb.uri", &mongo.uri()], &[]);
    assert_eq!(code, 1, "{text}");
    let fail =
        text.lines().position(|l| l.contains("FAIL mongodb: serverStatus failed")).unwrap_or_else(|| panic!("{text}"));
    let fix = text.lines().nth(fail + 1).unwrap_or_default();
    assert!(
        fix.contains(r#"fix: db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{role: "clusterMonitor", db: "admin"}])"#),
        "{text}"
    );
}
