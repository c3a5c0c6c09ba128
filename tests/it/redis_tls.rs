//! Live Redis over TLS: a throwaway CA, server and client certificates are made
//! at run time with the `openssl` CLI in a private temporary directory (no key
//! material lives in the repository), and a real `redis-server` listens only on
//! a TLS port. Checks server verification against `--redis.tls-ca-file`, mutual
//! TLS, a wrong CA and plain `redis://` to a TLS port, each within the scrape
//! deadline and without leaking the password or PEM contents.

use crate::support::process::free_port;
use std::fs::{self, File};

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use crate::support::exporter::TestExporter;
use crate::support::pki::CertDir;

/// The password of the TLS server's `default` user.
const PASSWORD: &str = "tls-test-pw-6c1f0e";
/// How long a started server may take to accept TCP connections on its TLS port.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to find a port that is still free when the server binds it.
const PORT_ATTEMPTS: usize = 8;
/// The scrape timeout the failure tests announce, and the bound they assert.
const SCRAPE_TIMEOUT_HEADER: (&str, &str) = ("X-Prometheus-Scrape-Timeout-Seconds", "2");
const SCRAPE_BOUND: Duration = Duration::from_millis(3500);

/// How the server treats client certificates (`tls-auth-clients`).
#[derive(Clone, Copy, Debug)]
enum ClientAuth {
    Required,
    Optional,
}

/// A private directory holding throwaway PKI material and a TLS-only
/// `redis-server` using it. Dropping it kills the server and removes the directory.
struct TlsRedis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl TlsRedis {
    /// Generates the PKI (CA, server cert for `localhost`/`127.0.0.1`, client
    /// cert, and an unrelated second CA) and starts the server.
    fn start(auth: ClientAuth) -> TlsRedis {
        let mut server = TlsRedis { dir: crate::support::private_temp_dir("tls"), port: 0, child: None };
        server.make_pki();
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            match server.spawn_and_wait(auth) {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!(
            "TLS redis-server could not bind a free loopback port in {PORT_ATTEMPTS} attempts; last log:\n{last_log}"
        );
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The PKI lives in the server's own directory.
    fn certs(&self) -> CertDir {
        CertDir { dir: self.dir.clone() }
    }

    fn make_pki(&self) {
        self.certs().make_ca("ca", "tenderly-exporter test CA");
        self.certs().make_ca("other-ca", "unrelated test CA");
        self.certs().make_leaf(
            "ca",
            "server",
            "localhost",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
            "0x1001",
        );
        self.certs().make_leaf(
            "ca",
            "client",
            "tenderly-exporter",
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
            "0x1002",
        );
    }

    /// Starts the server on `self.port`; `Err(log)` when the port was taken.
    fn spawn_and_wait(&mut self, auth: ClientAuth) -> Result<(), String> {
        let auth = match auth {
            ClientAuth::Required => "yes",
            ClientAuth::Optional => "optional",
        };
        // A config file keeps the password off the command line (and out of `ps`).
        let conf = format!(
            "bind 127.0.0.1 -::1\nport 0\ntls-port {port}\ntls-cert-file {cert}\ntls-key-file {key}\n\
             tls-ca-cert-file {ca}\ntls-auth-clients {auth}\nrequirepass {PASSWORD}\nsave \"\"\n\
             appendonly no\ndir {dir}\nlogfile {log}\ndaemonize no\n",
            port = self.port,
            cert = self.path("server.pem"),
            key = self.path("server.key"),
            ca = self.path("ca.pem"),
            dir = self.dir.display(),
            log = self.path("redis.log"),
        );
        fs::write(self.dir.join("redis.conf"), conf).expect("writing redis.conf");
        let _ = fs::remove_file(self.dir.join("redis.log"));
        let stderr = File::create(self.dir.join("stderr.log")).expect("creating stderr.log");
        let binary =
            if Path::new("/usr/bin/redis-server").is_file() { "/usr/bin/redis-server" } else { "redis-server" };
        let child = Command::new(binary)
            .arg(self.dir.join("redis.conf"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {binary}: {e}"));
        self.child = Some(child);

        // Ready when our own child is alive, logged that it accepts connections
        // (it exits instead when it cannot bind), and the port takes a TCP connect.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("just spawned");
            if let Some(status) = child.try_wait().expect("waiting for redis-server") {
                self.child = None;
                let log = self.log_tail();
                if log.contains("Address already in use") {
                    return Err(log);
                }
                panic!("TLS redis-server exited during startup ({status}); log:\n{log}");
            }
            let logged_ready = fs::read_to_string(self.dir.join("redis.log"))
                .is_ok_and(|log| log.contains("Ready to accept connections"));
            if logged_ready
                && TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("TLS redis-server did not become ready within {READY_TIMEOUT:?}; log:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["redis.log", "stderr.log"] {
            if let Ok(text) = fs::read_to_string(self.dir.join(name)) {
                let lines: Vec<&str> = text.lines().collect();
                out.push_str(&format!("--- {name} ---\n{}\n", lines[lines.len().saturating_sub(40)..].join("\n")));
            }
        }
        out
    }

    /// Base64 lines of every PEM file in the directory (certificates and keys).
    fn pem_fragments(&self) -> Vec<String> {
        let mut fragments = Vec::new();
        for name in ["ca", "other-ca", "server", "client"] {
            for ext in ["pem", "key"] {
                let text = fs::read_to_string(self.dir.join(format!("{name}.{ext}"))).expect("reading PEM");
                fragments.extend(
                    text.lines().filter(|l| !l.starts_with("-----") && l.len() >= 20).map(|l| l[..20].to_string()),
                );
            }
        }
        assert!(!fragments.is_empty());
        fragments
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("TLS redis-server on port {} log at failure:\n{}", self.port, self.log_tail());
        }
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// An exporter for `addr` with the password from the environment and extra flags.
fn exporter(addr: &str, flags: &[&str]) -> TestExporter {
    let mut args = vec!["--redis.addr", addr];
    args.extend_from_slice(flags);
    TestExporter::start(&args, &[("REDIS_PASSWORD", PASSWORD)])
}

/// Scrapes `/metrics` with a 2 s Prometheus timeout, asserts it answered 200
/// within the bound, and returns `redis_up` and the body.
fn timed_scrape(exporter: &TestExporter) -> (f64, String, Duration) {
    let started = Instant::now();
    let resp = exporter.get_with("/metrics", &[SCRAPE_TIMEOUT_HEADER]);
    let took = started.elapsed();
    eprintln!("scrape of {} took {took:?}", exporter.addr);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(took < SCRAPE_BOUND, "scrape took {took:?} with a 2 s scrape timeout");
    let m = crate::support::exporter::Exposition::parse(&resp.body);
    (m.expect("redis_up", &[]), resp.body, took)
}

#[test]
fn rediss_with_ca_file_verifies_the_server_by_name_and_by_ip() {
    let server = TlsRedis::start(ClientAuth::Optional);
    let ca = server.path("ca.pem");
    for host in ["localhost", "127.0.0.1"] {
        let addr = format!("rediss://{host}:{}", server.port);
        let exp = exporter(&addr, &["--redis.tls-ca-file", &ca]);
        let (up, body, took) = timed_scrape(&exp);
        assert_eq!(up, 1.0, "{addr} with the test CA should be up (scrape took {took:?}):\n{body}");
        let m = crate::support::exporter::Exposition::parse(&body);
        assert!(m.expect("redis_connected_clients", &[]) >= 1.0);
        assert!(m.count("redis_uptime_in_seconds") + m.count("redis_memory_used_bytes") > 0, "{body}");
        assert!(!body.contains(PASSWORD));
        // A second scrape reuses the TLS connection.
        assert_eq!(exp.scrape("/metrics").expect("redis_up", &[]), 1.0);
    }
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let server = TlsRedis::start(ClientAuth::Required);
    let addr = format!("rediss://localhost:{}", server.port);
    let (ca, cert, key) = (server.path("ca.pem"), server.path("client.pem"), server.path("client.key"));

    let with_cert =
        exporter(&addr, &["--redis.tls-ca-file", &ca, "--redis.tls-cert-file", &cert, "--redis.tls-key-file", &key]);
    let (up, body, _) = timed_scrape(&with_cert);
    assert_eq!(up, 1.0, "mTLS with the client certificate should be up:\n{body}");
    assert!(crate::support::exporter::Exposition::parse(&body).expect("redis_connected_clients", &[]) >= 1.0);

    let without_cert = exporter(&addr, &["--redis.tls-ca-file", &ca]);
    for _ in 0..2 {
        let (up, body, took) = timed_scrape(&without_cert);
        assert_eq!(up, 0.0, "no client certificate must not be up (took {took:?}):\n{body}");
        assert!(!body.contains(PASSWORD));
    }
}

#[test]
fn a_server_signed_by_another_ca_is_refused_without_leaking_secrets() {
    let server = TlsRedis::start(ClientAuth::Optional);
    let addr = format!("rediss://localhost:{}", server.port);
    let fragments = server.pem_fragments();
    // Control: the same server is reachable with the right CA, so the refusals
    // below are about verification (a panic in the TLS stack also reads as down).
    let control = exporter(&addr, &["--redis.tls-ca-file", &server.path("ca.pem")]);
    assert_eq!(timed_scrape(&control).0, 1.0, "control: the right CA must be up");
    let cases: [(&str, Vec<String>); 3] = [
        ("wrong CA", vec!["--redis.tls-ca-file".into(), server.path("other-ca.pem")]),
        // The throwaway CA is not among the built-in web PKI roots either.
        ("built-in roots", vec![]),
        // A client certificate does not make an unverified server acceptable.
        (
            "wrong CA with client cert",
            vec![
                "--redis.tls-ca-file".into(),
                server.path("other-ca.pem"),
                "--redis.tls-cert-file".into(),
                server.path("client.pem"),
                "--redis.tls-key-file".into(),
                server.path("client.key"),
            ],
        ),
    ];
    for (what, flags) in &cases {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let exp = exporter(&addr, &flags);
        for _ in 0..2 {
            let (up, body, took) = timed_scrape(&exp);
            assert_eq!(up, 0.0, "{what}: must not be up (took {took:?}):\n{body}");
            let landing = exp.get("/");
            assert_eq!(landing.status, 200);
            for page in [&body, &landing.body] {
                assert!(!page.contains(PASSWORD), "{what}: password in output:\n{page}");
                assert!(!page.contains("-----BEGIN"), "{what}: PEM armour in output:\n{page}");
                for fragment in &fragments {
                    assert!(!page.contains(fragment.as_str()), "{what}: PEM content {fragment:?} in output");
                }
            }
        }
    }
}

#[test]
fn plain_redis_to_a_tls_port_is_down_within_the_deadline() {
    let server = TlsRedis::start(ClientAuth::Optional);
    let exp = exporter(&format!("redis://localhost:{}", server.port), &[]);
    for _ in 0..2 {
        let (up, body, took) = timed_scrape(&exp);
        assert_eq!(up, 0.0, "plain TCP to a TLS port must not be up (took {took:?}):\n{body}");
        assert!(!body.contains(PASSWORD));
    }
}

#[test]
fn a_failed_certificate_verification_says_so_with_the_reason() {
    let server = TlsRedis::start(ClientAuth::Optional);
    let addr = format!("rediss://localhost:{}", server.port);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"))
        .args(["doctor", "--redis.addr", &addr, "--redis.tls-ca-file", &server.path("other-ca.pem")])
        .env_remove("REDIS_PASSWORD")
        .output()
        .expect("run doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&addr), "the address: {text}");
    let line = text.lines().find(|l| l.contains("FAIL redis")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("TLS certificate verification failed: UnknownIssuer"), "the reason in words: {line}");
}
