//! Content negotiation, gzip, and lint-clean expositions: every endpoint and
//! role answers the classic text format 0.0.4 by default and OpenMetrics
//! 1.0.0 when the `Accept` header prefers it (as client_golang's promhttp
//! does); `promtool check metrics` accepts the classic output and the
//! reference OpenMetrics parser (Debian's python3-prometheus-client) accepts
//! the OpenMetrics output, for a Redis master, replica and cluster node and a
//! MongoDB primary, secondary, mongos and standalone (replay server), through
//! `/probe` and through `/metrics` with several targets.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::exporter::{http_request_bytes, TestExporter};
use crate::support::mongo_replay::{ReplayServer, Scenario};
use crate::support::process::{require_tool, run_bounded};
use crate::support::redis_server::RespConn;
use crate::support::{private_temp_dir, RedisOptions, RedisServer};

/// What Prometheus 2.x sends by default.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const OM_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn get(exporter: &TestExporter, path: &str, headers: &[(&str, &str)]) -> (String, Vec<u8>, Vec<(String, String)>) {
    let (status, headers, body) = http_request_bytes(exporter.addr, "GET", path, headers);
    assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    (content_type, body, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn gunzip(body: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(body).read_to_string(&mut out).expect("a valid gzip stream of UTF-8 text");
    out
}

/// `(family, type)` per `# TYPE` line, with the `# HELP` check: every TYPE
/// has a HELP for the same name just before it.
fn declared_families(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            let help = i.checked_sub(1).map(|j| lines[j]).unwrap_or("");
            assert!(help.starts_with(&format!("# HELP {name} ")), "no HELP before `{line}`");
            out.push((name.to_string(), kind.to_string()));
        }
    }
    out
}

/// The family name a classic-format TYPE line and an OpenMetrics one share
/// (OpenMetrics names a counter family without `_total`).
fn om_name(name: &str, kind: &str) -> String {
    if kind == "counter" {
        name.strip_suffix("_total").unwrap_or(name).to_string()
    } else {
        name.to_string()
    }
}

fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write exposition");
    path
}

/// `promtool check metrics` on the classic output: exit 0 and no finding.
fn promtool_check(dir: &Path, what: &str, text: &str) {
    let path = write_temp(dir, "classic.prom", text);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("exec promtool check metrics < \"$1\"").arg("sh").arg(&path);
    let run = run_bounded(cmd, dir, Duration::from_secs(60));
    assert!(
        run.success() && run.stdout.trim().is_empty() && run.stderr.trim().is_empty(),
        "{what}: promtool check metrics found problems:\n{}{}",
        run.stdout,
        run.stderr
    );
}

/// The reference OpenMetrics parser (strict: EOF, units, types, sample names).
fn openmetrics_check(dir: &Path, what: &str, text: &str) {
    let path = write_temp(dir, "exposition.om", text);
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))\n\
        print(len(fams))\n";
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg("-c").arg(script).arg(&path);
    let run = run_bounded(cmd, dir, Duration::from_secs(60));
    assert!(run.success(), "{what}: the OpenMetrics parser rejected the exposition:\n{}", run.stderr);
}

fn openmetrics_parser_available() -> bool {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if crate::support::process::under_ci() {
            panic!("python3-prometheus-client is required under CI (scripts/install-deps.sh installs it)");
        }
        crate::support::process::skip(
            "Debian's python3-prometheus-client (the reference OpenMetrics parser) is not installed",
        );
    }
    ok
}

/// Both encodings of one endpoint: complete, the same families, lint-clean.
fn check_endpoint(exporter: &TestExporter, dir: &Path, path: &str, require: &[&str]) {
    let (ct, body, _) = get(exporter, path, &[]);
    assert_eq!(ct, TEXT_TYPE, "{path}: a bare request gets the classic format");
    let classic = String::from_utf8(body).expect("utf-8");
    assert!(!classic.contains("# EOF"), "{path}: # EOF belongs to OpenMetrics only");
    assert!(!classic.contains("# UNIT"), "{path}: # UNIT belongs to OpenMetrics only");
    for name in require {
        assert!(classic.lines().any(|l| l.starts_with(name)), "{path}: no {name} sample:\n{classic}");
    }
    promtool_check(dir, path, &classic);

    let (ct, body, _) = get(exporter, path, &[("Accept", PROMETHEUS_ACCEPT)]);
    assert_eq!(ct, OM_TYPE, "{path}: Prometheus' Accept header gets OpenMetrics");
    let om = String::from_utf8(body).expect("utf-8");
    assert!(om.ends_with("# EOF\n"), "{path}: OpenMetrics ends with # EOF");
    openmetrics_check(dir, path, &om);

    // Same families with the same types in both. Background work (the key
    // scan's first pass) can add families between two scrapes, so compare
    // pairs of scrapes until two in a row agree.
    let families = |headers: &[(&str, &str)], om: bool| -> std::collections::BTreeSet<(String, String)> {
        let text = String::from_utf8(get(exporter, path, headers).1).expect("utf-8");
        declared_families(&text).into_iter().map(|(n, k)| if om { (n, k) } else { (om_name(&n, &k), k) }).collect()
    };
    let mut last = (Default::default(), Default::default());
    for _ in 0..20 {
        let classic_families = families(&[], false);
        let om_families = families(&[("Accept", PROMETHEUS_ACCEPT)], true);
        if classic_families == om_families {
            assert!(!classic_families.is_empty());
            return;
        }
        last = (classic_families, om_families);
        std::thread::sleep(Duration::from_millis(250));
    }
    let (c, o) = last;
    panic!(
        "{path}: families differ between formats: classic only {:?}, OpenMetrics only {:?}",
        c.difference(&o).collect::<Vec<_>>(),
        o.difference(&c).collect::<Vec<_>>()
    );
}

#[test]
fn every_endpoint_and_role_is_lint_clean_in_both_formats() {
    if require_tool("promtool", "prometheus").is_none() || !openmetrics_parser_available() {
        return;
    }
    let dir = private_temp_dir("formats");
    let master = RedisServer::start(RedisOptions::default());
    // Commands with latency tracking, so latencystats (the summary) is present.
    let mut conn = RespConn::connect(&master.addr()).expect("connect to the master");
    for _ in 0..20 {
        conn.call(&["SET", "tenderly:session:x", "v"]).expect("SET");
        conn.call(&["GET", "tenderly:session:x"]).expect("GET");
    }
    let replica =
        RedisServer::start(RedisOptions { replica_of: Some((master.port(), None)), ..RedisOptions::default() });
    let cluster = RedisServer::start(RedisOptions { cluster: true, ..RedisOptions::default() });
    let mongo: Vec<(Scenario, ReplayServer)> =
        [Scenario::Primary, Scenario::Secondary, Scenario::Mongos, Scenario::Standalone]
            .into_iter()
            .map(|s| (s, ReplayServer::start(s).expect("replay server")))
            .collect();
    let mut yaml = String::from("targets:\n");
    for (name, server, default) in
        [("redis-master", &master, true), ("redis-replica", &replica, false), ("redis-cluster", &cluster, false)]
    {
        yaml.push_str(&format!(
            "  - name: {name}\n    kind: redis\n    address: {}\n    default: {default}\n",
            server.addr()
        ));
    }
    for (scenario, server) in &mongo {
        yaml.push_str(&format!(
            "  - name: mongo-{}\n    kind: mongodb\n    address: {}\n    default: {}\n",
            scenario.name(),
            server.uri(),
            *scenario == Scenario::Primary
        ));
    }
    let config = write_temp(&dir, "targets.yml", &yaml);
    let exporter = TestExporter::start(&["--config.file", config.to_str().expect("utf-8")], &[]);

    // /metrics with several targets (a Redis master and a MongoDB primary).
    check_endpoint(&exporter, &dir, "/metrics", &["redis_up", "mongodb_up", "redis_latency_percentiles_seconds"]);
    check_endpoint(&exporter, &dir, "/probe?target=redis-master", &["redis_latency_percentiles_seconds_count"]);
    check_endpoint(&exporter, &dir, "/probe?target=redis-replica", &["redis_connected_slaves"]);
    check_endpoint(&exporter, &dir, "/probe?target=redis-cluster", &["redis_cluster_state"]);
    for (scenario, _) in &mongo {
        check_endpoint(&exporter, &dir, &format!("/probe?target=mongo-{}", scenario.name()), &["mongodb_up 1"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn accept_header_negotiates_the_format_like_promhttp() {
    let redis = RedisServer::start(RedisOptions::default());
    let exporter = TestExporter::start(&["--redis.addr", &redis.addr()], &[]);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], TEXT_TYPE),
        (&[("Accept", "text/plain;version=0.0.4")], TEXT_TYPE),
        (&[("Accept", "text/plain")], TEXT_TYPE),
        (&[("Accept", "*/*")], TEXT_TYPE),
        (
            &[("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")],
            TEXT_TYPE,
        ),
        (&[("Accept", PROMETHEUS_ACCEPT)], OM_TYPE),
        (&[("Accept", "application/openmetrics-text")], OM_TYPE),
        (&[("Accept", "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5")], TEXT_TYPE),
        (&[("Accept", "text/plain;q=0.3,application/openmetrics-text;version=0.0.1;q=0.6")], OM_TYPE),
        // A version we do not speak is not OpenMetrics 1.0.0.
        (&[("Accept", "application/openmetrics-text;version=2.0.0")], TEXT_TYPE),
        (&[("Accept", "application/openmetrics-text;q=0")], TEXT_TYPE),
    ];
    for (headers, want) in cases {
        let (ct, body, _) = get(&exporter, "/metrics", headers);
        assert_eq!(&ct, want, "Accept {headers:?}");
        let text = String::from_utf8(body).expect("utf-8");
        assert_eq!(text.ends_with("# EOF\n"), *want == OM_TYPE, "Accept {headers:?}: # EOF only in OpenMetrics");
        assert!(text.contains("redis_up 1\n"), "Accept {headers:?}");
    }
    // Counters: `# TYPE x_total counter` in the classic format, `# TYPE x counter` in OpenMetrics.
    let (_, classic, _) = get(&exporter, "/metrics", &[]);
    let classic = String::from_utf8(classic).expect("utf-8");
    assert!(classic.contains("# TYPE redis_commands_processed_total counter\n"), "{classic}");
    assert!(classic.contains("# HELP redis_commands_processed_total "), "{classic}");
    let (_, om, _) = get(&exporter, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]);
    let om = String::from_utf8(om).expect("utf-8");
    assert!(om.contains("# TYPE redis_commands_processed counter\n"), "{om}");
}

#[test]
fn gzip_only_when_the_request_accepts_it() {
    let redis = RedisServer::start(RedisOptions::default());
    let exporter = TestExporter::start(&["--redis.addr", &redis.addr()], &[]);
    for (accept_encoding, gzip) in [
        ("gzip", true),
        ("gzip, deflate, br", true),
        ("br;q=1.0, gzip;q=0.8", true),
        ("*", true),
        ("identity", false),
        ("gzip;q=0", false),
        ("*;q=0", false),
        ("deflate", false),
    ] {
        let (ct, body, headers) =
            get(&exporter, "/metrics", &[("Accept", PROMETHEUS_ACCEPT), ("Accept-Encoding", accept_encoding)]);
        assert_eq!(ct, OM_TYPE);
        assert_eq!(header(&headers, "content-encoding") == Some("gzip"), gzip, "Accept-Encoding: {accept_encoding}");
        assert!(header(&headers, "vary").is_some_and(|v| v.contains("Accept-Encoding")));
        let text = if gzip { gunzip(&body) } else { String::from_utf8(body).expect("identity body is text") };
        assert!(text.contains("redis_up 1\n") && text.ends_with("# EOF\n"), "Accept-Encoding: {accept_encoding}");
    }
    // Without Accept-Encoding: identity.
    let (_, body, headers) = get(&exporter, "/metrics", &[]);
    assert_eq!(header(&headers, "content-encoding"), None);
    assert!(String::from_utf8(body).expect("text").contains("redis_up 1\n"));
    // The classic format compresses too.
    let (ct, body, _) = get(&exporter, "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(ct, TEXT_TYPE);
    assert!(gunzip(&body).contains("# TYPE redis_up gauge\n"));
}
