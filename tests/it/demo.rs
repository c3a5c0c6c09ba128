//! `scripts/demo.sh` end to end: the real Prometheus and Alertmanager, two
//! real redis-servers and the MongoDB replay server (given to the demo with
//! `--mongodb-uri`, scenario `primary`), the exporter built for this test.
//! `--fast-alerts` cuts every `for:` to 1s, so the alerts the demo fires on
//! purpose fire within a minute. Checks: exactly the alerts the README and
//! `demo.sh --print-alerts` list fire (nothing else); the Prometheus URL the
//! demo prints answers 200; Ctrl-C (SIGINT to the demo's shell) stops every
//! server it started (their ports close, no process names the demo
//! directory) and removes the demo directory and its lock file.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::dashboards::root;
use super::shipped_files::demo_alerts;
use crate::support::mongo_replay::{ReplayServer, Scenario};
use crate::support::private_temp_dir;
use crate::support::process::{free_port, require_tool, which};

const STARTUP_DEADLINE: Duration = Duration::from_secs(120);
const ALERT_DEADLINE: Duration = Duration::from_secs(90);
/// After the expected alerts fire, how long nothing else may start firing.
const SETTLE: Duration = Duration::from_secs(20);

/// The demo's shell, killed (with its process group's members, by the demo's
/// own trap) if the test fails before it sends SIGINT.
struct Demo {
    child: Child,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(self.child.id(), "INT");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(300)).is_ok()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

fn firing(prom_port: u16) -> BTreeSet<String> {
    let Some((200, body)) = http_get(prom_port, "/api/v1/alerts") else { return BTreeSet::new() };
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    json["data"]["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter(|a| a["state"] == "firing")
                .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `(target, check)` of every firing TenderlySecurityCheckFailing.
fn failing_checks(prom_port: u16) -> BTreeSet<(String, String)> {
    let Some((200, body)) = http_get(prom_port, "/api/v1/alerts") else { return BTreeSet::new() };
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    let label = |a: &Value, k: &str| a["labels"][k].as_str().unwrap_or_default().to_string();
    json["data"]["alerts"]
        .as_array()
        .map(|alerts| {
            alerts
                .iter()
                .filter(|a| a["state"] == "firing" && a["labels"]["alertname"] == "TenderlySecurityCheckFailing")
                .map(|a| (label(a, "target"), label(a, "check")))
                .collect()
        })
        .unwrap_or_default()
}

fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn demo_fires_exactly_the_listed_alerts_and_leaves_nothing_behind_on_ctrl_c() {
    for tool in ["prometheus", "redis-server", "redis-cli", "curl", "flock"] {
        let package = match tool {
            "redis-server" => "redis-server",
            "redis-cli" => "redis-tools",
            "flock" => "util-linux",
            other => other,
        };
        if require_tool(tool, package).is_none() {
            return;
        }
    }
    if which("prometheus-alertmanager").is_none() && require_tool("alertmanager", "prometheus-alertmanager").is_none() {
        return;
    }
    let tmp = private_temp_dir("demo");
    let demo_dir = tmp.join("tenderly-demo");
    let lock = tmp.join("tenderly-demo.lock");
    let mongo = ReplayServer::start(Scenario::Primary).unwrap_or_else(|e| panic!("replay server: {e}"));
    // As examples/mongo_replay.rs serves it to the demo: the guide's indexes, a running TTL monitor.
    mongo.serve_healthy_app();
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let [redis, replica, prom, am, exporter] = [ports[0], ports[1], ports[2], ports[3], ports[4]];
    let log_path = tmp.join("demo.out");
    let log = fs::File::create(&log_path).expect("demo log");
    let child = Command::new("bash")
        .arg(root().join("scripts/demo.sh"))
        .args(["--no-build", "--fast-alerts", "--port", &exporter.to_string(), "--mongodb-uri", &mongo.uri()])
        .env("TMPDIR", &tmp)
        .env("DEMO_EXPORTER_BIN", env!("CARGO_BIN_EXE_tenderly-exporter"))
        .env("DEMO_REDIS_PORT", redis.to_string())
        .env("DEMO_REPLICA_PORT", replica.to_string())
        .env("DEMO_PROMETHEUS_PORT", prom.to_string())
        .env("DEMO_ALERTMANAGER_PORT", am.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start scripts/demo.sh");
    let mut demo = Demo { child };
    let output = || fs::read_to_string(&log_path).unwrap_or_default();
    let tail = |what: &str| {
        let exporter_log = fs::read_to_string(demo_dir.join("exporter.log")).unwrap_or_default();
        format!("{what}\n--- demo output ---\n{}\n--- exporter.log ---\n{exporter_log}", output())
    };

    let started = Instant::now();
    while !output().contains("Tenderly exporter demo is running.") {
        assert!(started.elapsed() < STARTUP_DEADLINE, "{}", tail("the demo did not come up"));
        assert!(matches!(demo.child.try_wait(), Ok(None)), "{}", tail("the demo exited during startup"));
        std::thread::sleep(Duration::from_millis(250));
    }
    let printed = output();

    // The Prometheus UI paths it printed work with the installed version.
    for page in ["targets", "alerts"] {
        let line = printed
            .lines()
            .find(|l| l.contains(&format!("{page}:")) && l.contains(&format!("127.0.0.1:{prom}/")))
            .unwrap_or_else(|| panic!("{}", tail(&format!("no Prometheus {page} URL printed"))));
        let url = line.split_whitespace().last().expect("url");
        let path = url.split_once(&format!("127.0.0.1:{prom}")).map(|(_, p)| p).expect("path");
        let status = http_get(prom, path).map(|(s, _)| s);
        assert_eq!(status, Some(200), "{}", tail(&format!("printed URL {url} answers {status:?}")));
    }
    assert!(printed.contains(&format!("127.0.0.1:{am}/")), "{}", tail("no Alertmanager URL"));

    // Exactly the listed alerts fire (the README lists the same: shipped_files.rs).
    let expected: BTreeSet<String> = demo_alerts().into_iter().collect();
    assert!(!expected.is_empty());
    for name in &expected {
        assert!(printed.contains(name.as_str()), "{}", tail(&format!("the demo did not print {name}")));
    }
    let deadline = Instant::now() + ALERT_DEADLINE;
    loop {
        let now = firing(prom);
        if expected.is_subset(&now) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", tail(&format!("firing {now:?}, expected {expected:?}")));
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(SETTLE);
    let now = firing(prom);
    assert_eq!(now, expected, "{}", tail("the demo fires other alerts than it lists"));
    // The security findings are the intended ones: the dangerous commands are
    // renamed as the guide's redis.conf does, so only TLS fails on Redis.
    let checks = failing_checks(prom);
    let intended: BTreeSet<(String, String)> = [
        ("sessions-redis", "redis_tls_required"),
        ("sessions-redis-replica", "redis_tls_required"),
        ("tenderly-mongodb", "mongodb_authorization_enabled"),
        ("tenderly-mongodb", "mongodb_tls_required"),
        ("tenderly-mongodb", "mongodb_not_bound_to_all_interfaces"),
    ]
    .iter()
    .map(|(t, c)| (t.to_string(), c.to_string()))
    .collect();
    assert_eq!(checks, intended, "{}", tail("security findings other than the intended ones"));

    // Ctrl-C: everything it started stops, the directory and the lock file go.
    assert!(lock.exists(), "the demo holds its lock file while running");
    signal(demo.child.id(), "INT");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(status)) = demo.child.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "{}", tail("the demo did not stop within 30 s of SIGINT"));
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("demo: exited {status:?} after SIGINT");
    for (port, what) in
        [(redis, "Redis"), (replica, "replica"), (prom, "Prometheus"), (am, "Alertmanager"), (exporter, "exporter")]
    {
        assert!(!listening(port), "{what} still listens on {port} after Ctrl-C");
    }
    assert!(!demo_dir.exists(), "the demo directory {} is left behind", demo_dir.display());
    assert!(!lock.exists(), "the lock file {} is left behind", lock.display());
    let left: Vec<String> = processes_naming(&tmp);
    assert!(left.is_empty(), "processes of the demo still running: {left:?}");
    drop(mongo);
    let _ = fs::remove_dir_all(&tmp);
}
