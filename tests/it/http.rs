//! HTTP surface on port 0: routing, content type, probe safety, deadlines,
//! request limits, graceful shutdown. Targets here are dead or black holes, so
//! no Redis is needed; live behaviour is in `redis_live`.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::exporter::{http_request, TestExporter};
use crate::support::BlackHole;

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn metrics_is_openmetrics_and_ends_with_eof_when_asked() {
    let exporter = TestExporter::start(&[], &[]);
    let resp = exporter.get_with("/metrics", &[("Accept", "application/openmetrics-text;version=1.0.0")]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert!(resp.body.ends_with("# EOF\n"), "{}", resp.body);
    assert!(resp.body.contains("tenderly_exporter_build_info{version=\""), "{}", resp.body);
    assert!(resp.body.contains("process_resident_memory_bytes "), "{}", resp.body);
}

#[test]
fn landing_page_lists_targets_without_credentials() {
    let port = closed_port();
    let addr = format!("redis://:landing-secret@127.0.0.1:{port}");
    let exporter = TestExporter::start(&["--redis.addr", &addr], &[]);
    let resp = exporter.get("/");
    assert_eq!(resp.status, 200);
    assert!(resp.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(resp.body.contains(&format!("redis://127.0.0.1:{port}")), "{}", resp.body);
    assert!(!resp.body.contains("landing-secret"), "{}", resp.body);
    assert!(resp.body.contains("href=\"/metrics\""));
}

#[test]
fn unknown_paths_are_404_and_other_methods_405() {
    let exporter = TestExporter::start(&[], &[]);
    assert_eq!(exporter.get("/nope").status, 404);
    assert_eq!(exporter.get("/metrics/extra").status, 404);
    let post = http_request(exporter.addr, "POST", "/metrics", &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(exporter.get("/-/healthy").status, 200);
    assert_eq!(exporter.get("/-/ready").status, 200);
}

#[test]
fn probe_with_unknown_target_is_400_and_connects_nowhere() {
    let canary = BlackHole::start();
    let exporter = TestExporter::start(&[], &[]);
    for target in [
        format!("127.0.0.1:{}", canary.port),
        format!("redis%3A%2F%2F127.0.0.1%3A{}", canary.port),
        "does-not-exist".to_string(),
    ] {
        let resp = exporter.get(&format!("/probe?target={target}"));
        assert_eq!(resp.status, 400, "{target}");
        assert!(!resp.body.contains(&canary.port.to_string()), "the reply must not echo the target: {}", resp.body);
    }
    assert_eq!(exporter.get("/probe").status, 400);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(canary.accepted.load(Ordering::SeqCst), 0, "the exporter connected to an unconfigured address");
}

#[test]
fn dead_target_reports_down_quickly() {
    let port = closed_port();
    let exporter = TestExporter::start(&["--redis.addr", &format!("127.0.0.1:{port}")], &[]);
    let started = Instant::now();
    let m = exporter.scrape("/metrics");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(m.expect("redis_up", &[]), 0.0);
    assert_eq!(m.expect("tenderly_exporter_collector_success", &[("target", "redis"), ("collector", "redis")]), 0.0);
    assert_eq!(m.expect("tenderly_exporter_scrape_errors_total", &[("target", "redis")]), 1.0);
}

#[test]
fn hung_target_costs_at_most_the_deadline() {
    let hole = BlackHole::start();
    let exporter = TestExporter::start(
        &["--redis.addr", &format!("127.0.0.1:{}", hole.port), "--web.timeout-offset", "0.5s"],
        &[],
    );
    let started = Instant::now();
    let resp = exporter.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")]);
    let took = started.elapsed();
    assert_eq!(resp.status, 200);
    // Deadline 1.0 s (1.5 - 0.5 offset) plus a margin for a loaded 2-core machine.
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2000), "took {took:?}");
    let m = crate::support::exporter::Exposition::parse(&resp.body);
    assert_eq!(m.expect("redis_up", &[]), 0.0);
    // The exporter stays responsive to other requests while a scrape hangs.
    let exporter = Arc::new(exporter);
    let slow = {
        let e = Arc::clone(&exporter);
        std::thread::spawn(move || e.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "3")]))
    };
    std::thread::sleep(Duration::from_millis(100));
    let quick = Instant::now();
    assert_eq!(exporter.get("/-/healthy").status, 200);
    assert!(quick.elapsed() < Duration::from_millis(500), "healthy took {:?}", quick.elapsed());
    assert_eq!(slow.join().expect("slow scrape").status, 200);
}

#[test]
fn scrapes_beyond_max_requests_get_503() {
    let hole = BlackHole::start();
    let exporter = Arc::new(TestExporter::start(
        &["--redis.addr", &format!("127.0.0.1:{}", hole.port), "--web.max-requests", "1"],
        &[],
    ));
    let first = {
        let e = Arc::clone(&exporter);
        std::thread::spawn(move || e.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2.5")]))
    };
    std::thread::sleep(Duration::from_millis(300));
    let second = exporter.get("/metrics");
    assert_eq!(second.status, 503, "{}", second.body);
    assert_eq!(first.join().expect("first").status, 200);
    // Health checks are not scrapes and are never refused.
    assert_eq!(exporter.get("/-/healthy").status, 200);
}

#[test]
fn slow_header_senders_are_cut_off() {
    let exporter = TestExporter::start(&[], &[]);
    let mut stream = std::net::TcpStream::connect(exporter.addr).expect("connect");
    std::io::Write::write_all(&mut stream, b"GET /metrics HTTP/1.1\r\nHost: x\r\n").expect("partial request");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "connection held for {took:?}");
    assert!(took >= Duration::from_secs(9), "closed too early: {took:?}");
}

#[test]
fn oversized_headers_are_refused() {
    let exporter = TestExporter::start(&[], &[]);
    let big = "x".repeat(64 * 1024);
    let resp = http_request(exporter.addr, "GET", "/metrics", &[("X-Big", &big)]);
    assert_eq!(resp.status, 431, "{}", resp.body);
}

#[test]
fn shutdown_waits_for_in_flight_scrapes() {
    let hole = BlackHole::start();
    let exporter = TestExporter::start(&["--redis.addr", &format!("127.0.0.1:{}", hole.port)], &[]);
    let addr = exporter.addr;
    let scrape = std::thread::spawn(move || {
        http_request(addr, "GET", "/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")])
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    exporter.stop();
    let resp = scrape.join().expect("in-flight scrape");
    assert_eq!(resp.status, 200, "the in-flight scrape was cut off");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(), "still listening");
}
