//! Hostile HTTP clients against the exporter's own listener (issue 9,
//! findings 3, 5, 9 and 10): pipelining clients that never read their
//! answers (plain HTTP, and TLS + basic auth with no credentials, so every
//! answer is a 401), a flood of connections that never send a byte, forty
//! requests waiting on a hung target, and malformed or doubled `Host`
//! headers. Each attack runs for a bounded time and count while a victim
//! (a scraper, a health check) must still be answered within a bound.
//! Everything stays on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::pki::CertDir;
use crate::support::{private_temp_dir, wait_until, BlackHole, RedisOptions, RedisServer};

/// Slow-reader connections: the default connection cap (4 x the default 40
/// scrape slots), as in the report.
const SLOW_READERS: usize = 160;
/// The longest the slow readers keep at it (they stop once the victims are done).
const ATTACK_TIME: Duration = Duration::from_secs(90);
/// Victim requests made during an attack.
const VICTIMS: usize = 6;
/// How long one victim request may take before it counts as failed.
const VICTIM_TIMEOUT: Duration = Duration::from_secs(8);
/// The bound every victim request must meet under attack.
const VICTIM_BOUND: Duration = Duration::from_secs(5);
/// One pipelined request.
const PIPELINED: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// `prom:pw`, the victim's credentials on the TLS listener.
const VICTIM_AUTH: &str = "Basic cHJvbTpwdw==";

/// How a test client reaches the exporter: plain TCP or TLS to `localhost`.
#[derive(Clone)]
enum Transport {
    Plain,
    Tls(tokio_rustls::TlsConnector),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Transport {
    /// Connects with a small receive buffer, so a client that never reads
    /// stops the exporter's writes after a few answers, as over a WAN.
    async fn connect(&self, addr: SocketAddr) -> std::io::Result<Box<dyn Stream>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let tcp = tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
        match self {
            Transport::Plain => Ok(Box::new(tcp)),
            Transport::Tls(connector) => {
                let name = ServerName::try_from("localhost").expect("a valid DNS name");
                let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
                    .await
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))??;
                Ok(Box::new(tls))
            }
        }
    }
}

/// One client that pipelines `GET /metrics` and never reads: writes until the
/// exporter stops reading, then holds the connection; reconnects (after a
/// second, a bounded number of times) when the exporter closes it.
/// `paced`: one request at a time, 20 ms apart, so no two arrive in one read
/// and the pipelining cap does not see them: only the write deadline does.
async fn slow_reader(
    addr: SocketAddr,
    transport: Transport,
    paced: bool,
    stop: Arc<AtomicBool>,
    closed: Arc<AtomicUsize>,
) {
    let until = Instant::now() + ATTACK_TIME;
    let over = || stop.load(Ordering::Relaxed) || Instant::now() >= until;
    let burst: Vec<u8> = if paced { PIPELINED.to_vec() } else { PIPELINED.repeat(32) };
    let mut reconnects = 0;
    while !over() && reconnects < 40 {
        let Ok(mut stream) = transport.connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            reconnects += 1;
            continue;
        };
        let mut pending: &[u8] = &burst;
        loop {
            if over() {
                return;
            }
            if pending.is_empty() {
                if paced {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                pending = &burst;
            }
            // `write` is cancel-safe: the request stream stays well framed.
            match tokio::time::timeout(Duration::from_millis(300), stream.write(pending)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => pending = &pending[n..],
                Err(_) => {} // the exporter stopped reading: hold on
            }
        }
        closed.fetch_add(1, Ordering::Relaxed);
        reconnects += 1;
        // Then takes its slot again: the attack holds connections, it is
        // not a connection-rate flood.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One request on a fresh connection (`Connection: close`): the status, or
/// why there was none, and how long it took.
async fn victim_request(
    addr: SocketAddr,
    transport: &Transport,
    path: &str,
    auth: Option<&str>,
) -> (Result<u16, String>, Duration) {
    let started = Instant::now();
    let attempt = async {
        let mut stream = transport.connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(auth) = auth {
            req.push_str(&format!("Authorization: {auth}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&raw);
        text.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()).ok_or_else(|| format!("no status: {text:?}"))
    };
    let result = match tokio::time::timeout(VICTIM_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {VICTIM_TIMEOUT:?}")),
    };
    (result, started.elapsed())
}

/// 160 slow readers against the exporter while a victim alternates
/// `/metrics` and `/-/healthy`; returns each victim's outcome and latency.
fn slow_reader_attack(
    addr: SocketAddr,
    transport: Transport,
    paced: bool,
    auth: Option<&str>,
) -> Vec<(&'static str, Result<u16, String>, Duration)> {
    let auth = auth.map(str::to_string);
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    // The slow readers and the victim run on separate threads, so the victim
    // never waits behind the attackers' own tasks.
    let attack = {
        let (transport, stop, closed) = (transport.clone(), Arc::clone(&stop), Arc::clone(&closed));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime");
            rt.block_on(async {
                let attackers: Vec<_> = (0..SLOW_READERS)
                    .map(|_| {
                        tokio::spawn(slow_reader(
                            addr,
                            transport.clone(),
                            paced,
                            Arc::clone(&stop),
                            Arc::clone(&closed),
                        ))
                    })
                    .collect();
                for attacker in attackers {
                    let _ = tokio::time::timeout(ATTACK_TIME + Duration::from_secs(10), attacker).await;
                }
            })
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime");
    let victims = rt.block_on(async {
        // Let every slow reader connect and fill its buffers.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut victims = Vec::new();
        for i in 0..VICTIMS {
            let path = if i % 2 == 0 { "/metrics" } else { "/-/healthy" };
            let (result, took) = victim_request(addr, &transport, path, auth.as_deref()).await;
            victims.push((path, result, took));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        victims
    });
    // The attack lasts until every victim is done.
    stop.store(true, Ordering::Relaxed);
    attack.join().expect("attack thread");
    eprintln!("slow readers: {} connections closed by the exporter", closed.load(Ordering::Relaxed));
    victims
}

fn assert_victims_served(victims: &[(&'static str, Result<u16, String>, Duration)]) {
    eprintln!("victims under attack: {victims:?}");
    for (path, result, took) in victims {
        assert_eq!(result.as_ref().ok(), Some(&200), "{path} under attack: {result:?} after {took:?}");
        assert!(*took < VICTIM_BOUND, "{path} took {took:?} under attack (bound {VICTIM_BOUND:?})");
    }
}

#[test]
fn pipelined_slow_readers_do_not_hold_every_connection_slot() {
    let exporter = TestExporter::start(&[], &[]);
    let victims = slow_reader_attack(exporter.addr, Transport::Plain, false, None);
    assert_victims_served(&victims);
    // And afterwards, as usual.
    assert_eq!(exporter.get("/-/healthy").status, 200);
}

#[test]
fn paced_slow_readers_do_not_hold_every_connection_slot() {
    let exporter = TestExporter::start(&[], &[]);
    let victims = slow_reader_attack(exporter.addr, Transport::Plain, true, None);
    assert_victims_served(&victims);
}

/// A client that sends one request at a time and never reads its answers:
/// on loopback the kernel's send buffer takes megabytes of answers, so the
/// write deadline (unit-tested in `server.rs`) may never fire; the cap on
/// requests per connection still ends the connection.
#[test]
fn a_client_that_never_reads_does_not_keep_its_connection() {
    let exporter = TestExporter::start(&[], &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime");
    let closed_after = rt.block_on(async {
        let mut stream = Transport::Plain.connect(exporter.addr).await.expect("connect");
        let started = Instant::now();
        let mut pending: &[u8] = PIPELINED;
        while started.elapsed() < Duration::from_secs(30) {
            if pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                pending = PIPELINED;
            }
            match tokio::time::timeout(Duration::from_millis(200), stream.write(pending)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                Ok(Ok(n)) => pending = &pending[n..],
                Err(_) => {} // blocked: the exporter stopped reading
            }
        }
        None
    });
    let served = exporter.scrape("/metrics").expect("tenderly_exporter_http_requests_total", &[("handler", "metrics")]);
    eprintln!("never-reading client: closed after {closed_after:?}, {served} requests answered");
    let closed = closed_after.expect("the exporter never closed a client that does not read");
    assert!(closed < Duration::from_secs(15), "closed after {closed:?}");
    let cap = tenderly_exporter::server::MAX_REQUESTS_PER_CONNECTION as f64;
    assert!(served <= cap + 1.0, "{served} answered on one connection (cap {cap})");
}

/// A throwaway CA and a server certificate for `localhost`.
fn tls_exporter() -> (TestExporter, Transport, CertDir) {
    let certs = CertDir::new("hostile");
    certs.make_ca("ca", "tenderly-exporter hostile-client test CA");
    certs.make_leaf(
        "ca",
        "server",
        "localhost",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        "0x3001",
    );
    let hash = bcrypt::hash("pw", 4).expect("bcrypt hash");
    let web = certs.dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  prom: '{hash}'\n"
        ),
    )
    .expect("writing web.yml");
    let exporter = TestExporter::start(&["--web.config.file", web.to_str().expect("utf-8 temp path")], &[]);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs.dir.join("ca.pem")).expect("ca.pem") {
        roots.add(cert.expect("CA certificate")).expect("CA certificate accepted");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (exporter, Transport::Tls(tokio_rustls::TlsConnector::from(Arc::new(config))), certs)
}

#[test]
fn pipelined_slow_readers_without_credentials_do_not_lock_out_tls_scrapers() {
    let (exporter, transport, certs) = tls_exporter();
    let victims = slow_reader_attack(exporter.addr, transport, false, Some(VICTIM_AUTH));
    let _ = std::fs::remove_dir_all(&certs.dir);
    assert_victims_served(&victims);
}

/// Plain `GET` on a fresh connection with a client-side bound; the status or
/// why there was none, and the time it took.
fn timed_get(addr: SocketAddr, path: &str, timeout: Duration) -> (Result<u16, String>, Duration) {
    let started = Instant::now();
    let attempt = || -> Result<u16, String> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&raw);
        text.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok()).ok_or_else(|| format!("no status: {text:?}"))
    };
    let result = attempt();
    (result, started.elapsed())
}

#[test]
fn idle_connection_flood_does_not_starve_scrapers() {
    // 10 scrape slots: a connection cap of 64, which 30 idle connections a
    // second fill in about two seconds.
    let exporter = TestExporter::start(&["--web.max-requests", "10"], &[]);
    let addr = exporter.addr;
    let flood = std::thread::spawn(move || {
        let mut held = Vec::new();
        let started = Instant::now();
        for i in 0..180u32 {
            // 30 a second for 6 s; each sends nothing and is kept open.
            let due = started + Duration::from_millis(u64::from(i) * 1000 / 30);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                held.push(s);
            }
        }
        held
    });
    std::thread::sleep(Duration::from_millis(2500));
    let mut latencies = Vec::new();
    for _ in 0..8 {
        let (result, took) = timed_get(addr, "/metrics", Duration::from_secs(10));
        assert_eq!(result.as_ref().ok(), Some(&200), "victim under an idle flood: {result:?} after {took:?}");
        latencies.push(took);
        std::thread::sleep(Duration::from_millis(400));
    }
    // The flood's connections stay open until every victim is done.
    let opened = flood.join().expect("flood thread").len();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    eprintln!("idle flood: {opened} idle connections; victim p50 {p50:?}, max {max:?}, all {latencies:?}");
    assert!(p50 < Duration::from_millis(500), "victim p50 {p50:?} under an idle flood");
    assert!(max < Duration::from_secs(3), "victim max {max:?} under an idle flood");
}

#[test]
fn a_silent_connection_is_closed_after_the_first_byte_timeout() {
    let exporter = TestExporter::start(&[], &[]);
    let mut stream = TcpStream::connect(exporter.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    let took = started.elapsed();
    assert_eq!(n, 0, "expected EOF");
    let bound = tenderly_exporter::server::FIRST_BYTE_TIMEOUT;
    assert!(took >= bound - Duration::from_millis(200) && took < bound + Duration::from_secs(2), "held {took:?}");
}

#[test]
fn a_connection_that_pipelines_is_closed_after_the_cap() {
    let exporter = TestExporter::start(&[], &[]);
    let mut stream = TcpStream::connect(exporter.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let n = tenderly_exporter::server::MAX_PIPELINED_REQUESTS as usize * 4;
    stream.write_all(&b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n".repeat(n)).expect("pipelined requests");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let answered = text.matches("HTTP/1.1 200").count();
    assert!(
        answered <= tenderly_exporter::server::MAX_PIPELINED_REQUESTS as usize + 1,
        "{answered} of {n} pipelined requests answered"
    );
    assert!(answered >= 1, "the first requests are answered: {text:?}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text:?}");
}

/// An exporter whose `--config.file` lists `targets_yaml`.
fn exporter_with(targets_yaml: &str, args: &[&str]) -> TestExporter {
    let dir = private_temp_dir("hostile");
    let path = dir.join("targets.yml");
    std::fs::write(&path, format!("targets:\n{targets_yaml}")).expect("write targets.yml");
    let mut all = vec!["--config.file", path.to_str().expect("utf-8 temp path")];
    all.extend_from_slice(args);
    let exporter = TestExporter::start(&all, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    exporter
}

#[test]
fn requests_waiting_on_a_hung_target_leave_slots_for_the_others() {
    let hung = BlackHole::start();
    let healthy = RedisServer::start(RedisOptions::default());
    let exporter = exporter_with(
        &format!(
            "  - {{name: hung, kind: redis, address: 'redis://127.0.0.1:{}'}}\n  - {{name: healthy, kind: redis, address: 'redis://{}'}}\n",
            hung.port,
            healthy.addr()
        ),
        &[],
    );
    let addr = exporter.addr;
    let waiting: Vec<_> = (0..40)
        .map(|_| {
            std::thread::spawn(move || {
                crate::support::exporter::http_request(
                    addr,
                    "GET",
                    "/probe?target=hung",
                    &[("X-Prometheus-Scrape-Timeout-Seconds", "6")],
                )
            })
        })
        .collect();
    wait_until(Duration::from_secs(5), "the hung target to be contacted", || hung.accepted.load(Ordering::SeqCst) > 0);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let resp = exporter.get("/probe?target=healthy");
    let took = started.elapsed();
    let hung_answers: Vec<_> = waiting.into_iter().map(|t| t.join().expect("request thread")).collect();
    assert_eq!(resp.status, 200, "healthy target while 40 requests wait on a hung one: {}", resp.body);
    assert_eq!(Exposition::parse(&resp.body).expect("redis_up", &[]), 1.0, "{}", resp.body);
    assert!(took < Duration::from_secs(3), "healthy probe took {took:?}");
    let refused = hung_answers.iter().filter(|r| r.status == 503).count();
    let waited = hung_answers.iter().filter(|r| r.status == 200).count();
    eprintln!("hung target: {waited} waited (200, redis_up 0), {refused} refused (503); healthy answered in {took:?}");
    assert_eq!(refused + waited, 40, "{:?}", hung_answers.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(waited >= 2, "some requests wait on the hung target");
    for r in &hung_answers {
        if r.status == 503 {
            assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
        } else {
            assert_eq!(Exposition::parse(&r.body).expect("redis_up", &[]), 0.0, "{}", r.body);
        }
    }
}

#[test]
fn malformed_host_headers_are_not_reflected_by_discover() {
    let redis = RedisServer::start(RedisOptions::default());
    let exporter =
        exporter_with(&format!("  - {{name: main, kind: redis, address: 'redis://{}'}}\n", redis.addr()), &[]);
    let targets_for = |host: &str| -> String {
        let mut stream = TcpStream::connect(exporter.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let req = format!("GET /discover?target=main HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(text.starts_with("HTTP/1.1 200"), "Host {host:?}: {text}");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let json: serde_json::Value = serde_json::from_str(body).expect("http_sd JSON");
        json[0]["targets"][0].as_str().expect("a target").to_string()
    };
    // A well-formed Host is used (so the cases below can tell).
    assert_eq!(targets_for("exporter.example:9121"), "exporter.example:9121");
    assert_eq!(targets_for("[::1]:9121"), "[::1]:9121");
    let fallback = targets_for("a/b");
    for bad in ["[::1", ":99999", "-evil.com", "evil-.com:9121", "host:0", "host:65536", "[::1]x"] {
        let got = targets_for(bad);
        assert_eq!(got, fallback, "Host {bad:?} was reflected");
        assert!(!got.contains(bad), "Host {bad:?} reflected as {got:?}");
    }
}

#[test]
fn two_host_headers_are_a_400_on_every_path() {
    let redis = RedisServer::start(RedisOptions::default());
    let exporter =
        exporter_with(&format!("  - {{name: main, kind: redis, address: 'redis://{}'}}\n", redis.addr()), &[]);
    for path in ["/-/healthy", "/-/ready", "/metrics", "/", "/discover?target=main", "/probe?target=main", "/nope"] {
        // The helper sends `Host: <addr>`; this is the second one.
        let resp = exporter.get_with(path, &[("Host", "evil.example")]);
        assert_eq!(resp.status, 400, "{path}: {}", resp.body);
        assert!(!resp.body.contains("evil"), "{path}: {}", resp.body);
    }
    assert_eq!(exporter.get("/-/healthy").status, 200, "one Host is fine");
}
