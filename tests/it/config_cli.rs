//! The binary edge: `--check-config`, startup errors that name the field, the
//! shipped example config, and the metric and flag tables in docs/ kept true
//! against the code.

use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use tenderly_exporter::cli::Cli;
use tenderly_exporter::config::{parse_file_full, Env};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn exporter() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"));
    for var in ["REDIS_ADDR", "REDIS_USER", "REDIS_PASSWORD", "REDIS_PASSWORD_FILE", "TENDERLY_EXPORTER_CONFIG"] {
        cmd.env_remove(var);
    }
    cmd
}

struct NoEnv;
impl Env for NoEnv {
    fn var(&self, name: &str) -> Option<String> {
        matches!(name, "REDIS_REPLICA_PASSWORD" | "MONGODB_EXPORTER_PASSWORD").then(|| "replica-secret".to_string())
    }
}

#[test]
fn shipped_example_config_is_valid() {
    let dir = crate::support::private_temp_dir("example");
    let secret = dir.join("password");
    let ca = dir.join("ca.pem");
    std::fs::write(&secret, "s3cret\n").expect("write");
    std::fs::write(&ca, "not checked until connect\n").expect("write");
    let text = std::fs::read_to_string(root().join("examples/targets.yml")).expect("examples/targets.yml");
    let text = text
        .replace("/run/credentials/tenderly-exporter.service/redis-password", secret.to_str().expect("utf-8"))
        .replace("/run/credentials/tenderly-exporter.service/redis-replica-password", secret.to_str().expect("utf-8"))
        .replace("/run/credentials/tenderly-exporter.service/mongodb-password", secret.to_str().expect("utf-8"))
        .replace("/etc/tenderly-exporter/redis-ca.pem", ca.to_str().expect("utf-8"));
    let (targets, backups) =
        parse_file_full(&text, &root().join("examples/targets.yml"), &NoEnv).expect("example parses");
    assert_eq!(backups.map(|b| b.sources.len()), Some(2));
    let names: Vec<_> = targets.iter().map(|t| (t.name.as_str(), t.default)).collect();
    // Every target is probed by deploy/prometheus.yml, so none is default (tests/it/shipped_files.rs).
    assert_eq!(names, [("sessions-redis", false), ("sessions-redis-replica", false), ("tenderly-mongodb", false)]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_config_accepts_a_good_config_and_exits() {
    let out = exporter().args(["--redis.addr", "127.0.0.1:6379", "--check-config"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration OK: 1 target(s)"), "{stdout}");
}

#[test]
fn bad_config_fails_at_startup_naming_the_field_without_secrets() {
    let dir = crate::support::private_temp_dir("badcfg");
    let path = dir.join("targets.yml");
    std::fs::write(&path, "targets:\n  - name: r1\n    kind: redis\n    address: h:1\n    timeout: soon\n")
        .expect("write");
    let out = exporter()
        .args(["--config.file", path.to_str().expect("utf-8"), "--check-config"])
        .env("REDIS_PASSWORD", "never-print-this")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("targets[0] (r1).timeout"), "{stderr}");
    assert!(stderr.contains("timeout: 5s"), "the message should say how to fix it: {stderr}");
    assert!(!stderr.contains("never-print-this"));

    let out =
        exporter().args(["--redis.addr", "redis://:argv-secret@h:notaport", "--check-config"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--redis.addr"), "{stderr}");
    assert!(!stderr.contains("argv-secret"), "{stderr}");

    let out = exporter().args(["--web.listen-address", "nonsense", "--check-config"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--web.listen-address"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn docs_list_every_metric_and_flag() {
    let metrics = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    for d in tenderly_exporter::all_descriptors() {
        assert!(d.is_well_formed(), "{} is not well formed", d.name);
        assert!(metrics.contains(&format!("| `{}` |", d.name)), "docs/metrics.md has no metric row for {}", d.name);
    }
    let configuration = std::fs::read_to_string(root().join("docs/configuration.md")).expect("docs/configuration.md");
    for arg in Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(configuration.contains(&format!("`--{long}`")), "docs/configuration.md flag table lacks --{long}");
        }
    }
}

#[test]
fn durations_need_a_unit_in_flags_and_in_the_config_file() {
    let out = exporter().args(["--check-config", "--web.timeout-offset", "5"]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bare number must be refused: {err}");
    assert!(err.contains("--web.timeout-offset") && err.contains("no unit"), "{err}");

    let dir = crate::support::private_temp_dir("duration-unit");
    let file = dir.join("targets.yml");
    std::fs::write(
        &file,
        "targets:\n  - name: cache\n    kind: redis\n    address: redis://127.0.0.1:6379\n    timeout: 5\n",
    )
    .expect("write");
    let out =
        exporter().args(["--check-config", "--config.file", file.to_str().expect("utf-8")]).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "timeout: 5 must be refused: {err}");
    assert!(err.contains("timeout") && err.contains("no unit"), "{err}");
    // The same syntax is accepted everywhere, compound values included.
    std::fs::write(
        &file,
        "targets:\n  - name: cache\n    kind: redis\n    address: redis://127.0.0.1:6379\n    timeout: 1m30s\n",
    )
    .expect("write");
    let out =
        exporter().args(["--check-config", "--config.file", file.to_str().expect("utf-8")]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
