//! End to end (DESIGN.md §6): the real Prometheus and Alertmanager (Debian
//! packages `prometheus`, `prometheus-alertmanager`) with the shipped rules and
//! deployment files, scraping the exporter, which watches real `redis-server`
//! processes (master with a password and maxmemory, a replica, a single-node
//! cluster, a Sentinel watching a master of its own) and the MongoDB replay server (`primary` scenario: both
//! secondaries lag 1151 s), with the Tenderly queries and a backup source
//! configured so the application panels have data too.
//!
//! Prometheus' and Alertmanager's configs are generated from
//! `deploy/prometheus.yml` and `deploy/alertmanager.yml`: same jobs, relabeling,
//! routes and inhibitions, with addresses pointed at this test's processes,
//! 1 s intervals, and every receiver replaced by a webhook to a tiny HTTP
//! receiver here (the receiver name is in each notification, so routing is
//! checked too). The rules are copies of `alerts/*.rules.yml` with only the
//! `for:` lines shortened; the test checks every expression stays byte-identical.
//!
//! Checks: every target is up (`up`, `redis_up`, `mongodb_up`, and `instance`
//! relabelled to the database address); every dashboard query returns data
//! (except those naming a family on the PENDING list); the lagging secondary
//! fires `MongodbReplicationLagHigh` (warning, to the chat receiver); the app
//! database without the sessions TTL index fires `TenderlyRequiredIndexMissing`
//! (critical, to the pager receiver); killing
//! the Redis master fires `RedisDown`, which reaches the webhook through
//! Alertmanager's pager route. Every wait has a deadline.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_norway::Value as Yaml;

use super::dashboards::{alert_exprs, all_queries, names_pending_metric, root, rule_files, substitute_variables};
use crate::support::exporter::TestExporter;
use crate::support::mongo_replay::{ReplayServer, Scenario};
use crate::support::process::{free_port, wait_for};
use crate::support::{populate_tenderly, private_temp_dir, RedisOptions, RedisServer};

/// What `$__rate_interval` becomes: at least four 1 s scrapes.
const RATE_INTERVAL: &str = "10s";
/// What every `for:` in the rule copies becomes.
const SHORT_FOR: &str = "1s";
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const DATA_DEADLINE: Duration = Duration::from_secs(40);
const ALERT_DEADLINE: Duration = Duration::from_secs(40);

#[test]
fn prometheus_and_alertmanager_scrape_the_exporter_and_route_alerts() {
    let started = Instant::now();
    // Required tools: skipped (and counted so) on a developer machine without them, a failure under CI.
    let Some(prometheus_bin) = crate::support::process::require_tool("prometheus", "prometheus") else { return };
    let alertmanager_bin = match crate::support::process::which("prometheus-alertmanager") {
        Some(path) => path,
        None => match crate::support::process::require_tool("alertmanager", "prometheus-alertmanager") {
            Some(path) => path,
            None => return,
        },
    };
    let dir = TempDir(private_temp_dir("e2e"));

    // --- the databases -------------------------------------------------------------
    let password = "e2e-master-password";
    let mut master = RedisServer::start(RedisOptions {
        password: Some(password.to_string()),
        extra_args: vec!["--maxmemory".into(), "64mb".into(), "--maxmemory-policy".into(), "allkeys-lru".into()],
        ..RedisOptions::default()
    });
    populate_tenderly(&master, 500);
    let replica = RedisServer::start(RedisOptions {
        replica_of: Some((master.port(), Some(password.to_string()))),
        ..RedisOptions::default()
    });
    let cluster = RedisServer::start(RedisOptions { cluster: true, ..RedisOptions::default() });
    // The Sentinel watches a master of its own, so killing `master` below fails nothing over.
    let sentinel_master = RedisServer::start(RedisOptions::default());
    let sentinel = crate::sentinel::Sentinel::start(&[("e2e-master", "127.0.0.1", sentinel_master.port())]);
    let mongo = ReplayServer::start(Scenario::Primary).unwrap_or_else(|e| panic!("starting the replay server: {e}"));

    // --- the exporter: named targets, probed through /probe ----------------------------
    let password_file = dir.path().join("redis-password");
    fs::write(&password_file, password).expect("write the password file");
    // A fresh backup file, so the backup-freshness panels have data.
    let backup_dir = dir.path().join("backups");
    fs::create_dir_all(&backup_dir).expect("backup dir");
    fs::write(backup_dir.join("backup_demo.tar.gz"), [0u8; 64]).expect("write a backup file");
    let redis_targets = [
        ("sessions-redis", master.addr()),
        ("sessions-redis-replica", replica.addr()),
        ("cache-redis-cluster", cluster.addr()),
        ("sessions-sentinel", sentinel.addr()),
    ];
    let mongo_targets = [("tenderly-mongodb", mongo.addr().to_string())];
    let targets_yml = format!(
        "targets:\n\
         \x20 - {{name: sessions-redis, kind: redis, address: 'redis://{}', password_file: '{}'}}\n\
         \x20 - {{name: sessions-redis-replica, kind: redis, address: 'redis://{}'}}\n\
         \x20 - {{name: cache-redis-cluster, kind: redis, address: 'redis://{}'}}\n\
         \x20 - {{name: sessions-sentinel, kind: redis, address: 'redis://{}'}}\n\
         \x20 - {{name: tenderly-mongodb, kind: mongodb, address: '{}', tenderly: {{app_database: tenderly}}}}\n\
         backups:\n\
         \x20 sources:\n\
         \x20   - {{kind: full, glob: '{}/backup_*.tar.gz', min_size_bytes: 16}}\n",
        master.addr(),
        password_file.display(),
        replica.addr(),
        cluster.addr(),
        sentinel.addr(),
        mongo.uri(),
        backup_dir.display(),
    );
    let targets_file = dir.path().join("targets.yml");
    fs::write(&targets_file, targets_yml).expect("write targets.yml");
    let targets_arg = targets_file.display().to_string();
    // 1 s scrapes carry a 1 s timeout header; keep most of it for the collection.
    let exporter = TestExporter::start(
        &["--config.file", &targets_arg, "--web.timeout-offset", "0.1s", "--log.level", "warn"],
        &[],
    );

    // --- the webhook receiver and Alertmanager ------------------------------------------
    let receiver = WebhookReceiver::start();
    let am_port = free_port();
    let am_config = alertmanager_config(&receiver.url());
    let am_config_file = dir.path().join("alertmanager.yml");
    fs::write(&am_config_file, am_config).expect("write alertmanager.yml");
    let am_data = dir.path().join("alertmanager-data");
    fs::create_dir_all(&am_data).expect("alertmanager data dir");
    let alertmanager = Process::spawn(
        "alertmanager",
        &alertmanager_bin,
        &[
            format!("--config.file={}", am_config_file.display()),
            format!("--storage.path={}", am_data.display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            // No gossip port: a single instance, nothing else to bind.
            "--cluster.listen-address=".to_string(),
        ],
        &dir.path().join("alertmanager.log"),
    );
    let am_addr = SocketAddr::from(([127, 0, 0, 1], am_port));

    // --- the rules (for: shortened) and Prometheus ----------------------------------------
    let rules_dir = dir.path().join("rules");
    copy_rules_with_short_for(&rules_dir);
    let prom_port = free_port();
    let prom_config = prometheus_config(
        &rules_dir,
        &format!("127.0.0.1:{am_port}"),
        &exporter.addr.to_string(),
        &redis_targets,
        &mongo_targets,
    );
    let prom_config_file = dir.path().join("prometheus.yml");
    fs::write(&prom_config_file, prom_config).expect("write prometheus.yml");
    let prom_data = dir.path().join("prometheus-data");
    let prometheus = Process::spawn(
        "prometheus",
        &prometheus_bin,
        &[
            format!("--config.file={}", prom_config_file.display()),
            format!("--storage.tsdb.path={}", prom_data.display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir.path().join("prometheus.log"),
    );
    let prom = SocketAddr::from(([127, 0, 0, 1], prom_port));
    let logs = || format!("{}\n{}", prometheus.log_tail(), alertmanager.log_tail());

    wait_for("Prometheus /-/ready", STARTUP_DEADLINE, &logs, || matches!(http_get(prom, "/-/ready"), Ok((200, _))));
    wait_for("Alertmanager /-/ready", STARTUP_DEADLINE, &logs, || {
        matches!(http_get(am_addr, "/-/ready"), Ok((200, _)))
    });

    // --- every target up ------------------------------------------------------------------
    let expected_targets = 1 + redis_targets.len() + mongo_targets.len();
    wait_for("every scrape target up", STARTUP_DEADLINE, &logs, || {
        let up = query(prom, "up");
        up.len() == expected_targets && up.iter().all(|s| s.value == 1.0)
    });
    wait_for("redis_up and mongodb_up = 1 on every target", STARTUP_DEADLINE, &logs, || {
        let redis = query(prom, "redis_up");
        let mongodb = query(prom, "mongodb_up");
        redis.len() == redis_targets.len()
            && mongodb.len() == mongo_targets.len()
            && redis.iter().chain(&mongodb).all(|s| s.value == 1.0)
    });
    let exporter_up = query(prom, r#"up{job="tenderly-exporter"}"#);
    assert_eq!(exporter_up.len(), 1, "the exporter's own job: {exporter_up:?}");
    // The /probe relabeling names the database, not the exporter.
    let instances: Vec<String> = query(prom, "redis_up").iter().map(|s| s.label("instance")).collect();
    for (_, addr) in &redis_targets {
        assert!(instances.contains(addr), "redis_up instance labels {instances:?} lack the database address {addr}");
    }
    assert_eq!(query(prom, "mongodb_up")[0].label("instance"), mongo.addr().to_string());

    // --- every dashboard query returns data ------------------------------------------------
    // No endpoint in this stack serves TLS, so the certificate-expiry queries have no data here
    // (tests/it/dba_checks.rs covers those families against a real TLS redis-server).
    let without_tls = |expr: &str| !expr.contains("_tls_certificate_expiry_timestamp_seconds");
    let queries: Vec<_> =
        all_queries().into_iter().filter(|q| !names_pending_metric(&q.expr) && without_tls(&q.expr)).collect();
    assert!(queries.len() > 80, "only {} dashboard queries to check", queries.len());
    eprintln!("e2e: checking {} dashboard queries for data", queries.len());
    let mut missing: BTreeMap<String, String> = BTreeMap::new();
    let deadline = Instant::now() + DATA_DEADLINE;
    loop {
        missing.clear();
        for q in &queries {
            let promql = substitute_variables(&q.expr, ".+", ".+", RATE_INTERVAL);
            match try_query(prom, &promql) {
                Ok(series) if !series.is_empty() => {}
                Ok(_) => {
                    missing.insert(format!("{} / {}", q.dashboard, q.panel), format!("no data: {promql}"));
                }
                Err(e) => {
                    missing.insert(format!("{} / {}", q.dashboard, q.panel), format!("{e}: {promql}"));
                }
            }
        }
        if missing.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        missing.is_empty(),
        "dashboard queries without data after {DATA_DEADLINE:?}:\n{}",
        missing.iter().map(|(k, v)| format!("  {k}: {v}")).collect::<Vec<_>>().join("\n")
    );

    // Queries naming a PENDING family are not required to return data yet;
    // report them so whoever empties PENDING knows what the e2e will demand.
    let pending: Vec<_> = all_queries().into_iter().filter(|q| names_pending_metric(&q.expr)).collect();
    let mut pending_without_data: Vec<String> = pending
        .iter()
        .filter(|q| query(prom, &substitute_variables(&q.expr, ".+", ".+", RATE_INTERVAL)).is_empty())
        .map(|q| format!("{} / {}", q.dashboard, q.panel))
        .collect();
    pending_without_data.dedup();
    eprintln!("e2e: {} queries name PENDING families; without data here: {pending_without_data:?}", pending.len());

    // --- zero is a value: with nothing running long, the long-running panels show 0 ------------
    mongo.set_current_ops(Vec::new());
    let long_running: Vec<_> = queries.iter().filter(|q| q.expr.contains("mongodb_long_running_operations")).collect();
    assert!(!long_running.is_empty(), "no dashboard panel shows long-running operations");
    for q in long_running {
        let promql = substitute_variables(&q.expr, ".+", ".+", RATE_INTERVAL);
        wait_for(&format!("{} / {} showing 0", q.dashboard, q.panel), ALERT_DEADLINE, &logs, || {
            let series = query(prom, &promql);
            !series.is_empty() && series.iter().all(|s| s.value == 0.0)
        });
    }

    // --- the lagging secondary fires MongodbReplicationLagHigh (warning -> chat) ----------------
    wait_for("MongodbReplicationLagHigh firing in Prometheus", ALERT_DEADLINE, &logs, || {
        firing_alerts(prom).iter().any(|a| a["labels"]["alertname"] == "MongodbReplicationLagHigh")
    });
    wait_for("MongodbReplicationLagHigh at the chat receiver", ALERT_DEADLINE, &logs, || {
        receiver.has_alert("MongodbReplicationLagHigh", "chat", |_| true)
    });

    // --- the app database lacks the sessions TTL index: TenderlyRequiredIndexMissing (critical -> pager)
    wait_for("TenderlyRequiredIndexMissing for sessions firing in Prometheus", ALERT_DEADLINE, &logs, || {
        firing_alerts(prom).iter().any(|a| {
            a["labels"]["alertname"] == "TenderlyRequiredIndexMissing"
                && a["labels"]["collection"] == "sessions"
                && a["labels"]["index"] == "expiresAt_1"
        })
    });
    wait_for("TenderlyRequiredIndexMissing at the pager receiver", ALERT_DEADLINE, &logs, || {
        receiver.has_alert("TenderlyRequiredIndexMissing", "pager", |a| a["labels"]["collection"] == "sessions")
    });

    // --- Redis master down fires RedisDown through Alertmanager (critical -> pager) -------------
    assert!(!receiver.has_alert("RedisDown", "pager", |_| true), "RedisDown before Redis was stopped");
    master.kill();
    let master_addr = master.addr();
    wait_for("RedisDown for the killed master at the pager receiver", ALERT_DEADLINE, &logs, || {
        receiver.has_alert("RedisDown", "pager", |alert| alert["labels"]["instance"] == master_addr.as_str())
    });

    drop(prometheus);
    drop(alertmanager);
    receiver.stop();
    let elapsed = started.elapsed();
    eprintln!("e2e: finished in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(110), "the end-to-end test took {elapsed:?}; keep it under 2 minutes");
}

// ---- generated configs ------------------------------------------------------------------

/// deploy/alertmanager.yml with every receiver replaced by a webhook to `url/<receiver>`
/// and the grouping timers cut to 1 s. Routes and inhibitions stay as shipped.
fn alertmanager_config(url: &str) -> String {
    let path = root().join("deploy/alertmanager.yml");
    let text = fs::read_to_string(&path).expect("deploy/alertmanager.yml");
    let mut doc: Yaml = serde_norway::from_str(&text).expect("deploy/alertmanager.yml is YAML");
    for key in ["group_wait", "group_interval"] {
        doc["route"][key] = Yaml::from("1s");
    }
    doc["route"]["repeat_interval"] = Yaml::from("1h");
    let receivers = doc["receivers"].as_sequence_mut().expect("deploy/alertmanager.yml has receivers");
    for r in receivers.iter_mut() {
        let name = r["name"].as_str().expect("every receiver has a name").to_string();
        let webhook: Yaml = serde_norway::from_str(&format!(
            "{{name: '{name}', webhook_configs: [{{url: '{url}/{name}', send_resolved: false}}]}}"
        ))
        .expect("webhook receiver yaml");
        *r = webhook;
    }
    serde_norway::to_string(&doc).expect("serialize alertmanager.yml")
}

/// deploy/prometheus.yml with 1 s intervals, the shortened rule copies, this
/// test's Alertmanager, and every job's static targets pointed at this test's
/// exporter and databases. The relabeling stays as shipped except the
/// exporter's address.
fn prometheus_config(
    rules_dir: &Path,
    alertmanager: &str,
    exporter: &str,
    redis: &[(&str, String)],
    mongodb: &[(&str, String)],
) -> String {
    let path = root().join("deploy/prometheus.yml");
    let text = fs::read_to_string(&path).expect("deploy/prometheus.yml");
    let mut doc: Yaml = serde_norway::from_str(&text).expect("deploy/prometheus.yml is YAML");
    doc["global"]["scrape_interval"] = Yaml::from("1s");
    doc["global"]["scrape_timeout"] = Yaml::from("1s");
    doc["global"]["evaluation_interval"] = Yaml::from("1s");
    doc["rule_files"] = Yaml::Sequence(vec![Yaml::from(rules_dir.join("*.rules.yml").display().to_string())]);
    doc["alerting"] =
        serde_norway::from_str(&format!("{{alertmanagers: [{{static_configs: [{{targets: ['{alertmanager}']}}]}}]}}"))
            .expect("alerting yaml");
    let probe_targets = |targets: &[(&str, String)]| -> Yaml {
        Yaml::Sequence(
            targets
                .iter()
                .map(|(name, addr)| {
                    serde_norway::from_str(&format!("{{targets: ['{addr}'], labels: {{__param_target: '{name}'}}}}"))
                        .expect("static config yaml")
                })
                .collect(),
        )
    };
    let jobs = doc["scrape_configs"].as_sequence_mut().expect("deploy/prometheus.yml has scrape_configs");
    for job in jobs.iter_mut() {
        let name = job["job_name"].as_str().unwrap_or_default().to_string();
        job["static_configs"] = match name.as_str() {
            "tenderly-exporter" => {
                serde_norway::from_str(&format!("[{{targets: ['{exporter}']}}]")).expect("static config yaml")
            }
            "tenderly-redis" => probe_targets(redis),
            "tenderly-mongodb" => probe_targets(mongodb),
            other => panic!("deploy/prometheus.yml job {other:?}: the e2e test does not know which targets it scrapes"),
        };
        if let Some(relabels) = job["relabel_configs"].as_sequence_mut() {
            for r in relabels.iter_mut() {
                if r["target_label"].as_str() == Some("__address__") {
                    r["replacement"] = Yaml::from(exporter.to_string());
                }
            }
        }
    }
    serde_norway::to_string(&doc).expect("serialize prometheus.yml")
}

/// Copies alerts/*.rules.yml with every `for:` line set to [`SHORT_FOR`], and
/// checks that the copies' expressions are byte-identical to the originals.
fn copy_rules_with_short_for(dir: &Path) {
    fs::create_dir_all(dir).expect("rules dir");
    let files = rule_files();
    assert!(!files.is_empty(), "no alerts/*.rules.yml to load");
    let originals = alert_exprs();
    let mut copies = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path).expect("read rules");
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("for:") {
                let indent = &line[..line.len() - trimmed.len()];
                out.push_str(&format!("{indent}for: {SHORT_FOR}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        let name = path.file_name().expect("a rules file has a name");
        fs::write(dir.join(name), &out).expect("write rules copy");
        let doc: Yaml = serde_norway::from_str(&out).expect("the rules copy is YAML");
        for group in doc["groups"].as_sequence().map(Vec::as_slice).unwrap_or_default() {
            for rule in group["rules"].as_sequence().map(Vec::as_slice).unwrap_or_default() {
                let name = rule["alert"].as_str().or_else(|| rule["record"].as_str()).unwrap_or("?");
                copies.push((name.to_string(), rule["expr"].as_str().unwrap_or_default().to_string()));
            }
        }
    }
    assert_eq!(copies, originals, "shortening for: changed an expression");
}

// ---- Prometheus HTTP API ------------------------------------------------------------------

#[derive(Debug)]
struct Series {
    labels: serde_json::Map<String, Value>,
    value: f64,
}

impl Series {
    fn label(&self, name: &str) -> String {
        self.labels.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
    }
}

fn try_query(prom: SocketAddr, promql: &str) -> Result<Vec<Series>, String> {
    let (status, body) = http_get(prom, &format!("/api/v1/query?query={}", percent_encode(promql)))?;
    let json: Value = serde_json::from_str(&body).map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
    if json["status"] != "success" {
        return Err(format!("HTTP {status}: {} {}", json["errorType"], json["error"]));
    }
    let result = json["data"]["result"].as_array().cloned().unwrap_or_default();
    Ok(result
        .into_iter()
        .map(|r| Series {
            labels: r["metric"].as_object().cloned().unwrap_or_default(),
            // Instant vectors: [time, "value"]; NaN and ±Inf arrive as strings too.
            value: r["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
        })
        .collect())
}

/// Like `try_query`, an empty result when Prometheus cannot answer (polled under a deadline).
fn query(prom: SocketAddr, promql: &str) -> Vec<Series> {
    try_query(prom, promql).unwrap_or_default()
}

fn firing_alerts(prom: SocketAddr) -> Vec<Value> {
    let Ok((200, body)) = http_get(prom, "/api/v1/alerts") else { return Vec::new() };
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    json["data"]["alerts"]
        .as_array()
        .map(|alerts| alerts.iter().filter(|a| a["state"] == "firing").cloned().collect())
        .unwrap_or_default()
}

/// One HTTP/1.0 GET (so the body is never chunked), read to the end, bounded by timeouts.
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no header end in {text:?}"))?;
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- processes, ports, waits ----------------------------------------------------------------

/// A child process killed on drop, its output in a log file.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, binary: &Path, args: &[String], log: &Path) -> Process {
        let out = fs::File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Process { name, child, log: log.to_path_buf() }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("--- last lines of the {} log ---\n{tail}", self.name)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---- the webhook receiver ------------------------------------------------------------------

/// Alertmanager's webhook target: accepts POSTs on a loopback port and keeps
/// `(path, body)` of each. The path is `/<receiver name>`.
struct WebhookReceiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<(String, Value)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(request) = read_post(stream) {
                            if let Ok(mut v) = r.lock() {
                                v.push(request);
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        WebhookReceiver { addr, received, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether a firing `alertname` arrived at `/<receiver>` with an alert matching `pick`.
    fn has_alert(&self, alertname: &str, receiver: &str, pick: impl Fn(&Value) -> bool) -> bool {
        let Ok(received) = self.received.lock() else { return false };
        received.iter().any(|(path, body)| {
            path == &format!("/{receiver}")
                && body["receiver"] == receiver
                && body["alerts"].as_array().is_some_and(|alerts| {
                    alerts.iter().any(|a| a["status"] == "firing" && a["labels"]["alertname"] == alertname && pick(a))
                })
        })
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (headers, then Content-Length bytes), answers 200, returns (path, JSON body).
fn read_post(stream: TcpStream) -> Option<(String, Value)> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let path = request_line.split_whitespace().nth(1)?.to_string();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length.min(16 * 1024 * 1024)];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some((path, serde_json::from_slice(&body).ok()?))
}
