//! The DBA guide's remaining checks (issue 12), end to end through the
//! exporter's HTTP server: the TTL monitor counters and MongoDB's certificate
//! expiry from real serverStatus captures served by the replay server, the
//! required indexes from scripted `listIndexes` replies, the feature
//! compatibility version, and configuration drift on a real `redis-server`.

use std::process::Command;

use mongodb::bson::{doc, Document};
use tenderly_exporter::web_config::{ReloadReason, WebSecurityStore};

use crate::support::exporter::TestExporter;
use crate::support::mongo_fixtures;
use crate::support::mongo_replay::{Fault, ReplayServer, Scenario};
use crate::support::pki::CertDir;
use crate::support::process::{free_port, require_tool};
use crate::support::redis_server::{RedisOptions, RedisServer};

/// A real serverStatus capture, as the replay server's reply to `serverStatus`.
fn serve_capture(replay: &ReplayServer, fixture: &str) -> Document {
    let mut status = mongo_fixtures::load(fixture);
    status.insert("ok", 1.0);
    let mut bytes = Vec::new();
    status.to_writer(&mut bytes).expect("serialize the capture");
    replay.set_raw_reply("serverStatus", "admin", bytes);
    status
}

fn raw(name: &str, path: &[&str]) -> f64 {
    mongo_fixtures::raw_number(name, path).unwrap_or_else(|| panic!("{name}: {path:?} not in the fixture"))
}

#[test]
fn ttl_counters_equal_the_capture() {
    // serverStatus-standalone-7.0.21.json: metrics.ttl {deletedDocuments: 48, passes: 95}.
    const CAPTURE: &str = "serverStatus-standalone-7.0.21.json";
    let replay = ReplayServer::start(Scenario::Standalone).expect("replay server starts");
    serve_capture(&replay, CAPTURE);
    let exporter = TestExporter::start(&["--mongodb.uri", &replay.uri()], &[]);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{}", m.text);
    let deleted = raw(CAPTURE, &["metrics", "ttl", "deletedDocuments"]);
    let passes = raw(CAPTURE, &["metrics", "ttl", "passes"]);
    assert_eq!((deleted, passes), (48.0, 95.0), "the capture's own numbers");
    assert_eq!(m.expect("mongodb_ttl_deleted_documents_total", &[]), deleted);
    assert_eq!(m.expect("mongodb_ttl_passes_total", &[]), passes);
    assert_eq!(m.value("mongodb_tls_certificate_expiry_timestamp_seconds", &[]), None, "no TLS in this capture");
}

#[test]
fn tls_certificate_expiry_comes_from_server_status() {
    // serverStatus-replset-secondary-4.2.14.json is a real Atlas capture (TLS on):
    // security.SSLServerCertificateExpirationDate = 1631804193000 ms (2021-09-16T14:56:33Z).
    const CAPTURE: &str = "serverStatus-replset-secondary-4.2.14.json";
    let replay = ReplayServer::start(Scenario::Standalone).expect("replay server starts");
    let status = serve_capture(&replay, CAPTURE);
    let expiry = status
        .get_document("security")
        .and_then(|s| s.get_datetime("SSLServerCertificateExpirationDate"))
        .expect("the capture has the certificate date")
        .timestamp_millis();
    assert_eq!(expiry, 1_631_804_193_000);
    let exporter = TestExporter::start(&["--mongodb.uri", &replay.uri()], &[]);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_tls_certificate_expiry_timestamp_seconds", &[]), 1_631_804_193.0, "{}", m.text);
    assert_eq!(m.expect("mongodb_ttl_passes_total", &[]), raw(CAPTURE, &["metrics", "ttl", "passes"]));
}

/// A listIndexes reply for `tenderly.sessions`, with or without the guide's TTL index.
fn sessions_indexes(with_ttl: bool) -> Document {
    let mut specs = vec![doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"}];
    if with_ttl {
        specs.push(doc! {"v": 2, "key": {"expiresAt": 1}, "name": "expiresAt_1", "expireAfterSeconds": 0});
    } else {
        // The same key without the TTL (what a careless migration recreates) does not count.
        specs.push(doc! {"v": 2, "key": {"expiresAt": 1}, "name": "expiresAt_1"});
    }
    let batch: Vec<mongodb::bson::Bson> = specs.into_iter().map(Into::into).collect();
    doc! {"cursor": {"firstBatch": batch, "id": 0i64, "ns": "tenderly.sessions"}, "ok": 1.0}
}

fn index_value(exporter: &TestExporter, collection: &str, index: &str) -> Option<f64> {
    let m = exporter.scrape("/metrics");
    m.value("tenderly_required_index", &[("target", "mongodb"), ("collection", collection), ("index", index)])
}

#[test]
fn required_sessions_ttl_index_is_zero_when_missing_and_one_when_present() {
    for (with_ttl, expected) in [(false, 0.0), (true, 1.0)] {
        let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
        replay.set_command_reply("listIndexes", "tenderly", "sessions", sessions_indexes(with_ttl));
        let exporter =
            TestExporter::start(&["--mongodb.uri", &replay.uri(), "--tenderly.app-database", "tenderly"], &[]);
        assert_eq!(index_value(&exporter, "sessions", "expiresAt_1"), Some(expected), "with_ttl={with_ttl}");
        // Collections that do not exist: every required index on them is missing.
        assert_eq!(index_value(&exporter, "users", "email_1"), Some(0.0));
        assert_eq!(index_value(&exporter, "users", "roles_1_accountStatus_1"), Some(0.0));
        assert_eq!(index_value(&exporter, "auditlogs", "timestamp_1"), Some(0.0));
        // Cached: the second scrape sent no new listIndexes.
        let sent = replay.command_count("listIndexes");
        assert_eq!(sent, 3, "one listIndexes per collection (users, sessions, auditlogs)");
        let received = replay.commands_received("listIndexes");
        assert!(received.iter().all(|c| c.contains_key("maxTimeMS")), "{received:?}");
    }
}

#[test]
fn feature_compatibility_version_is_labelled_with_the_server_version() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let exporter = TestExporter::start(&["--mongodb.uri", &replay.uri()], &[]);
    let m = exporter.scrape("/metrics");
    // Primary serves serverStatus-replset-primary-8.0.4; the replay FCV follows it.
    assert_eq!(
        m.expect(
            "mongodb_feature_compatibility_version_info",
            &[("target", "mongodb"), ("version", "8.0"), ("server_version", "8.0")]
        ),
        1.0,
        "{}",
        m.text
    );
    // A real mongos has no FCV to report: no series, no failure.
    let mongos = ReplayServer::start(Scenario::Mongos).expect("replay server starts");
    let exporter = TestExporter::start(&["--mongodb.uri", &mongos.uri()], &[]);
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("mongodb_up", &[]), 1.0);
    assert_eq!(m.count("mongodb_feature_compatibility_version_info"), 0);
}

fn drift(exporter: &TestExporter, setting: &str) -> Option<f64> {
    exporter.scrape("/metrics").value("tenderly_config_drift", &[("target", "redis"), ("setting", setting)])
}

#[test]
fn redis_drift_follows_config_set() {
    // The test server starts with `save ""` (no save points) and Redis' default
    // maxmemory-policy noeviction, set explicitly here.
    let server = RedisServer::start(RedisOptions {
        extra_args: vec!["--maxmemory-policy".into(), "noeviction".into()],
        ..RedisOptions::default()
    });
    assert_eq!(server.cli(&["CONFIG", "GET", "save"]).lines().nth(1).unwrap_or_default(), "");
    let exporter = TestExporter::start(
        &["--redis.addr", &server.addr(), "--no-collector.tenderly.keys", "--redis.config-max-age", "0s"],
        &[],
    );
    assert_eq!(drift(&exporter, "maxmemory-policy"), Some(1.0));
    assert_eq!(drift(&exporter, "save"), Some(1.0));
    assert_eq!(drift(&exporter, "maxmemory"), Some(1.0), "maxmemory 0 (no limit) is not the guide's 1gb");
    assert_eq!(drift(&exporter, "appendonly"), Some(0.0));
    // The guide's values, as its "Memory Issues" procedure and redis.conf set them.
    server.cli(&["CONFIG", "SET", "maxmemory", "1gb"]);
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    server.cli(&["CONFIG", "SET", "save", "900 1 300 10 60 10000"]);
    for setting in ["maxmemory-policy", "save", "maxmemory", "appendonly"] {
        assert_eq!(drift(&exporter, setting), Some(0.0), "{setting}");
    }
}

/// `openssl x509 -enddate` of `pem`, as Unix seconds (via `date`).
fn openssl_not_after(certs: &CertDir, pem: &str) -> i64 {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in", &certs.path(pem)])
        .output()
        .expect("openssl x509 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let date = text.trim().strip_prefix("notAfter=").unwrap_or_else(|| panic!("openssl said {text:?}")).to_owned();
    let out = Command::new("date").args(["-u", "-d", &date, "+%s"]).output().expect("date runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|e| panic!("date {date:?}: {e}"))
}

const SERVER_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                          extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n";

#[test]
fn redis_tls_certificate_expiry_equals_the_certificates_not_after() {
    if require_tool("openssl", "openssl").is_none() {
        return;
    }
    let certs = CertDir::new("dba-tls");
    certs.make_ca("ca", "tenderly-exporter test CA");
    certs.make_leaf_days("ca", "server", "localhost", SERVER_EXT, "0x1201", 10);
    let not_after = openssl_not_after(&certs, "server.pem");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    assert!((not_after - now - 10 * 86_400).abs() < 600, "the certificate expires in 10 days: {not_after} vs {now}");
    // Plain port for the test's own client; the exporter uses only the TLS port.
    let tls_port = free_port();
    let server = RedisServer::start(RedisOptions {
        extra_args: [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &certs.path("server.pem"),
            "--tls-key-file",
            &certs.path("server.key"),
            "--tls-ca-cert-file",
            &certs.path("ca.pem"),
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        ..RedisOptions::default()
    });
    let url = format!("rediss://localhost:{tls_port}");
    let exporter = TestExporter::start(
        &["--redis.addr", &url, "--redis.tls-ca-file", &certs.path("ca.pem"), "--no-collector.tenderly.keys"],
        &[],
    );
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("redis_up", &[]), 1.0, "{}", m.text);
    assert_eq!(m.expect("redis_tls_certificate_expiry_timestamp_seconds", &[]), not_after as f64);
    // Cached: the second scrape makes no new handshake (the server counts TLS connections).
    let accepted = || server.info_field("stats", "total_connections_received").and_then(|v| v.parse::<u64>().ok());
    let before = accepted();
    let m = exporter.scrape("/metrics");
    assert_eq!(m.expect("redis_tls_certificate_expiry_timestamp_seconds", &[]), not_after as f64);
    // `info_field` itself opens one plain connection.
    assert_eq!(accepted(), before.map(|n| n + 1), "a second handshake within the check interval");

    // A plain redis:// target has no certificate series.
    let plain = TestExporter::start(&["--redis.addr", &server.addr(), "--no-collector.tenderly.keys"], &[]);
    assert_eq!(plain.scrape("/metrics").count("redis_tls_certificate_expiry_timestamp_seconds"), 0);
}

#[test]
fn web_certificate_expiry_follows_reloads() {
    if require_tool("openssl", "openssl").is_none() {
        return;
    }
    let certs = CertDir::new("dba-web");
    certs.make_ca("ca", "tenderly-exporter test CA");
    certs.make_leaf_days("ca", "web10", "localhost", SERVER_EXT, "0x1202", 10);
    certs.make_leaf_days("ca", "web30", "localhost", SERVER_EXT, "0x1203", 30);
    let config = certs.dir.join("web.yml");
    let write = |leaf: &str| {
        let text = format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            certs.path(&format!("{leaf}.pem")),
            certs.path(&format!("{leaf}.key"))
        );
        std::fs::write(&config, text).expect("write the web config");
    };
    let value = |store: &WebSecurityStore| {
        let mut out = tenderly_exporter::metrics::Exposition::new();
        store.certificate_expiry().encode(&mut out);
        out.get("tenderly_exporter_web_tls_certificate_expiry_timestamp_seconds", &[]).map(|v| v.as_f64())
    };
    write("web10");
    let store = WebSecurityStore::load(Some(&config)).expect("valid web config");
    assert_eq!(value(&store), Some(openssl_not_after(&certs, "web10.pem") as f64));
    let exported = store.certificate_expiry();
    write("web30");
    assert!(store.reload(ReloadReason::Signal).expect("valid reload"));
    assert_eq!(value(&store), Some(openssl_not_after(&certs, "web30.pem") as f64));
    // The handle the scraper holds follows the reload too.
    let mut out = tenderly_exporter::metrics::Exposition::new();
    exported.encode(&mut out);
    assert_eq!(out.sample_count("tenderly_exporter_web_tls_certificate_expiry_timestamp_seconds"), 1);
    // Without TLS there is no series.
    let plain = WebSecurityStore::load(None).expect("no web config");
    assert_eq!(value(&plain), None);
}

fn doctor(uri: &str) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"));
    cmd.args(["doctor", "--mongodb.uri", uri, "--tenderly.app-database", "tenderly"]);
    for var in ["REDIS_ADDR", "REDIS_USER", "REDIS_PASSWORD", "MONGODB_URI", "MONGODB_USER", "MONGODB_PASSWORD"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run doctor");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn doctor_checks_the_list_indexes_privilege_and_names_the_grant() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let (_, text) = doctor(&replay.uri());
    assert!(text.contains("OK   tenderly_required_index: listIndexes"), "{text}");
    replay.set_command_fault("listIndexes", Fault::unauthorized());
    let (code, text) = doctor(&replay.uri());
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("FAIL tenderly_required_index: listIndexes on tenderly not authorized; fix: ")
            && text.contains(r#"{role: "read", db: "<app database>"}"#),
        "{text}"
    );
}

struct NoEnv;
impl tenderly_exporter::config::Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

fn parse(text: &str) -> Result<Vec<tenderly_exporter::config::Target>, String> {
    tenderly_exporter::config::parse_file_full(text, std::path::Path::new("targets.yml"), &NoEnv)
        .map(|(targets, _)| targets)
        .map_err(|e| format!("{e:#}"))
}

#[test]
fn drift_policy_and_required_indexes_are_configured_per_target_and_validated() {
    use tenderly_exporter::config::TargetSpec;
    let targets = parse(
        "targets:\n\
         \x20 - {name: r, kind: redis, address: 'redis://127.0.0.1:6379', drift: {maxmemory: 2gb, save: null}}\n\
         \x20 - name: m\n\
         \x20   kind: mongodb\n\
         \x20   address: 'mongodb://127.0.0.1:27017/'\n\
         \x20   tenderly:\n\
         \x20     app_database: tenderly\n\
         \x20     drift: {profile: 1}\n\
         \x20     index_check_interval: 10m\n\
         \x20     required_indexes:\n\
         \x20       - {collection: consultations, keys: [patientId, 'startsAt:-1'], name: patient_recent}\n",
    )
    .expect("valid");
    let TargetSpec::Redis(redis) = &targets[0].spec else { panic!("redis") };
    let drift = redis.drift.as_ref().expect("drift on by default");
    assert_eq!(drift.maxmemory.as_deref(), Some("2gb"));
    assert_eq!(drift.maxmemory_policy.as_deref(), Some("allkeys-lru"), "unset keys keep the guide's value");
    assert_eq!(drift.save, None);
    assert!(redis.connection.extra_config.is_empty(), "save not checked: not read");
    let TargetSpec::Mongodb(mongo) = &targets[1].spec else { panic!("mongodb") };
    let tenderly = mongo.tenderly.as_ref().expect("tenderly section");
    assert_eq!(tenderly.drift.profile, Some(1));
    assert_eq!(tenderly.index_interval(), std::time::Duration::from_secs(600));
    let required = tenderly.effective_required_indexes();
    assert_eq!(required.len(), 1);
    assert_eq!(required[0].label(), "patient_recent");

    // Defaults: the guide's policy, and `save` added to the collector's CONFIG GET.
    let targets = parse("targets:\n  - {name: r, kind: redis, address: 'redis://127.0.0.1:6379'}\n").expect("valid");
    let TargetSpec::Redis(redis) = &targets[0].spec else { panic!("redis") };
    assert_eq!(redis.connection.extra_config, ["save"]);

    for (bad, field) in [
        ("{name: r, kind: redis, address: 'redis://h:1', drift: {maxmemory: lots}}", "drift"),
        ("{name: r, kind: redis, address: 'redis://h:1', drift: {save: '900'}}", "drift"),
        ("{name: r, kind: redis, address: 'redis://h:1', drift: {maxmemry: 1gb}}", "maxmemry"),
        ("{name: m, kind: mongodb, address: 'mongodb://h:1/', drift: {profile: 0}}", "drift"),
        ("{name: m, kind: mongodb, address: 'mongodb://h:1/', tenderly: {app_database: t, drift: {profile: 3}}}", "drift"),
        (
            "{name: m, kind: mongodb, address: 'mongodb://h:1/', tenderly: {app_database: t, required_indexes: [{collection: '', keys: [a]}]}}",
            "required_indexes",
        ),
        (
            "{name: m, kind: mongodb, address: 'mongodb://h:1/', tenderly: {app_database: t, index_check_interval: 0s}}",
            "index_check_interval",
        ),
    ] {
        let e = parse(&format!("targets:\n  - {bad}\n")).expect_err(bad);
        assert!(e.contains(field), "{bad}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_profiling_level_drift_follows_the_profile_command() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let uri = replay.uri();
    let exporter = tokio::task::spawn_blocking(move || {
        TestExporter::start(&["--mongodb.uri", &uri, "--tenderly.app-database", "tenderly"], &[])
    })
    .await
    .expect("exporter starts");
    let exporter = std::sync::Arc::new(exporter);
    let profile_drift = |exporter: std::sync::Arc<TestExporter>| async move {
        tokio::task::spawn_blocking(move || {
            exporter.scrape("/metrics").value("tenderly_config_drift", &[("target", "mongodb"), ("setting", "profile")])
        })
        .await
        .expect("scrape")
    };
    // The replay server's app database profiles slow operations (level 1): not the policy's 0.
    assert_eq!(profile_drift(exporter.clone()).await, Some(1.0));
    let client = mongodb::Client::with_uri_str(replay.uri()).await.expect("client");
    client.database("tenderly").run_command(doc! {"profile": 0}).await.expect("profile 0");
    assert_eq!(
        profile_drift(exporter.clone()).await,
        Some(0.0),
        "every database at level 0, the guide's production setting"
    );
    // The guide's troubleshooting step, left on: db.setProfilingLevel(2).
    client.database("tenderly").run_command(doc! {"profile": 2}).await.expect("profile 2");
    assert_eq!(profile_drift(exporter).await, Some(1.0));
}
