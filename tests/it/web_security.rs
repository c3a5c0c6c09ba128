//! `--web.config.file` end to end: a throwaway CA, server and client
//! certificates made at run time with the `openssl` CLI in a private temporary
//! directory (no key material in the repository), bcrypt hashes made here at
//! cost 4, the exporter on a loopback port, and the real `curl` as the client,
//! so TLS versions, client certificates and basic auth are checked as a
//! Prometheus-like client sees them. Reloads are checked through the API,
//! through the poll, and through SIGHUP to the real binary.

use crate::support::exporter::ChildExporter;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tenderly_exporter::server::WEB_CONFIG_POLL_INTERVAL;
use tenderly_exporter::web_config::WebSecurity;

use crate::support::exporter::TestExporter;
use crate::support::pki::CertDir;
use crate::support::process::{run_bounded, Run};
use crate::support::wait_until;

/// How long one `openssl` or `curl` run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a change may take to be picked up by the poll (a few intervals).
const POLL_BOUND: Duration = Duration::from_secs(15);

/// Runs `program` with a hard deadline (killed after `TOOL_TIMEOUT`).
fn run(dir: &Path, program: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_bounded(cmd, dir, TOOL_TIMEOUT)
}

/// A private directory with a CA, a server certificate for localhost and
/// 127.0.0.1, a client certificate from the CA, a self-signed client
/// certificate from nobody, and an unrelated key.
struct Pki {
    dir: PathBuf,
    certs: CertDir,
}

impl Pki {
    fn new() -> Pki {
        let certs = CertDir::new("web");
        let pki = Pki { dir: certs.dir.clone(), certs };
        pki.make_ca("ca", "tenderly-exporter web test CA");
        pki.make_leaf("server", "localhost", SERVER_EXT, "0x2001");
        pki.make_leaf("client", "prometheus", CLIENT_EXT, "0x2002");
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "rogue.key",
            "-out",
            "rogue.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rogue",
        ]);
        pki.openssl(&["genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "other.key"]);
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn openssl(&self, args: &[&str]) {
        self.certs.openssl(args);
    }

    fn make_ca(&self, name: &str, cn: &str) {
        self.certs.make_ca(name, cn);
    }

    /// `<name>.pem`/`<name>.key` signed by `ca`.
    fn make_leaf(&self, name: &str, cn: &str, ext: &str, serial: &str) {
        self.certs.make_leaf("ca", name, cn, ext, serial);
    }

    /// Writes `web.yml` atomically (write, then rename, as deploy tools do)
    /// and returns its path.
    fn write_config(&self, yaml: &str) -> String {
        let tmp = self.dir.join("web.yml.tmp");
        fs::write(&tmp, yaml).expect("writing web config");
        fs::rename(&tmp, self.dir.join("web.yml")).expect("renaming web config");
        self.path("web.yml")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const SERVER_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                          extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n";
const CLIENT_EXT: &str =
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt hash")
}

/// Relative file names: they resolve against the web config's directory.
fn tls_section(extra: &str) -> String {
    format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{extra}")
}

fn users(list: &[(&str, &str)]) -> String {
    let mut out = "basic_auth_users:\n".to_string();
    for (user, password) in list {
        out.push_str(&format!("  {user}: '{}'\n", hash(password)));
    }
    out
}

/// One curl result: the HTTP status (None when no response arrived).
#[derive(Debug)]
struct Curl {
    status: Option<u16>,
    body: String,
    stderr: String,
}

/// `curl https://localhost:PORT{path}` (localhost pinned to 127.0.0.1) with
/// the CA trusted and `extra` arguments.
fn curl(pki: &Pki, addr: SocketAddr, path: &str, extra: &[&str]) -> Curl {
    let url = format!("https://localhost:{}{path}", addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let ca = pki.path("ca.pem");
    let mut args =
        vec!["-sS", "--max-time", "10", "--resolve", &resolve, "--cacert", &ca, "-w", "\n%{http_code}", "-o", "-"];
    args.extend_from_slice(extra);
    args.push(&url);
    curl_raw(pki, &args)
}

fn curl_raw(pki: &Pki, args: &[&str]) -> Curl {
    let r = run(&pki.dir, "curl", args);
    let (body, code) = r.stdout.rsplit_once('\n').unwrap_or(("", r.stdout.as_str()));
    let status = code.trim().parse::<u16>().ok().filter(|c| *c != 0);
    Curl { status, body: body.to_string(), stderr: r.stderr }
}

fn start(pki: &Pki, yaml: &str) -> (TestExporter, String) {
    let path = pki.write_config(yaml);
    (TestExporter::start(&["--web.config.file", &path], &[]), path)
}

#[test]
fn tls_with_basic_auth_serves_metrics_only_to_the_right_password() {
    let pki = Pki::new();
    let (exporter, _) = start(&pki, &format!("{}{}", tls_section(""), users(&[("alice", "correct horse")])));
    let addr = exporter.addr;

    let ok = curl(&pki, addr, "/metrics", &["-u", "alice:correct horse"]);
    assert_eq!(ok.status, Some(200), "{ok:?}");
    assert!(ok.body.contains("tenderly_exporter_build_info"), "{}", ok.body);
    // Cached after the first success: a second scrape works the same.
    assert_eq!(curl(&pki, addr, "/metrics", &["-u", "alice:correct horse"]).status, Some(200));

    let wrong = curl(&pki, addr, "/metrics", &["-i", "-u", "alice:battery staple"]);
    assert_eq!(wrong.status, Some(401), "{wrong:?}");
    assert!(
        wrong.body.to_ascii_lowercase().contains("www-authenticate: basic realm=\"tenderly-exporter\""),
        "{}",
        wrong.body
    );
    assert!(!wrong.body.contains("tenderly_exporter_build_info"));
    assert_eq!(curl(&pki, addr, "/metrics", &[]).status, Some(401), "no credentials");
    assert_eq!(curl(&pki, addr, "/metrics", &["-u", "mallory:correct horse"]).status, Some(401), "unknown user");
    assert_eq!(curl(&pki, addr, "/metrics", &["-u", "alice:"]).status, Some(401), "empty password");
    // As in exporter-toolkit, every path is protected, health checks included.
    for path in ["/", "/-/healthy", "/-/ready", "/probe?target=x", "/nope"] {
        assert_eq!(curl(&pki, addr, path, &[]).status, Some(401), "{path}");
    }
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:correct horse"]).status, Some(200));
    // The server certificate verifies for the DNS name and the IP.
    let by_ip = curl_raw(
        &pki,
        &[
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            &pki.path("ca.pem"),
            "-u",
            "alice:correct horse",
            "-w",
            "\n%{http_code}",
            "-o",
            "-",
            &format!("https://127.0.0.1:{}/-/healthy", addr.port()),
        ],
    );
    assert_eq!(by_ip.status, Some(200), "{by_ip:?}");
}

#[test]
fn basic_auth_without_tls_works_over_plain_http() {
    let pki = Pki::new();
    let (exporter, _) = start(&pki, &users(&[("prom", "pw")]));
    assert_eq!(exporter.get("/metrics").status, 401);
    // "prom:pw"
    let ok = exporter.get_with("/metrics", &[("Authorization", "Basic cHJvbTpwdw==")]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let bad = exporter.get_with("/metrics", &[("Authorization", "Basic cHJvbTpwdXg=")]);
    assert_eq!(bad.status, 401);
    assert_eq!(bad.header("www-authenticate"), Some("Basic realm=\"tenderly-exporter\""));
    assert_eq!(exporter.get_with("/metrics", &[("Authorization", "Basic !!!")]).status, 401);
    assert_eq!(exporter.get_with("/metrics", &[("Authorization", "Bearer cHJvbTpwdw==")]).status, 401);
}

#[test]
fn require_and_verify_client_cert_refuses_clients_without_a_ca_signed_cert() {
    let pki = Pki::new();
    let (exporter, _) =
        start(&pki, &tls_section("  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n"));
    let addr = exporter.addr;
    let none = curl(&pki, addr, "/metrics", &[]);
    assert_eq!(none.status, None, "no client certificate must fail the handshake: {none:?}");
    let rogue = curl(&pki, addr, "/metrics", &["--cert", &pki.path("rogue.pem"), "--key", &pki.path("rogue.key")]);
    assert_eq!(rogue.status, None, "a certificate from another CA must fail: {rogue:?}");
    let ok = curl(&pki, addr, "/metrics", &["--cert", &pki.path("client.pem"), "--key", &pki.path("client.key")]);
    assert_eq!(ok.status, Some(200), "{ok:?}");
    assert!(ok.body.contains("tenderly_exporter_build_info"));
}

#[test]
fn require_any_client_cert_needs_a_cert_but_not_a_ca() {
    let pki = Pki::new();
    let (exporter, _) = start(&pki, &tls_section("  client_auth_type: RequireAnyClientCert\n"));
    let addr = exporter.addr;
    assert_eq!(curl(&pki, addr, "/-/healthy", &[]).status, None, "a certificate is required");
    let rogue = curl(&pki, addr, "/-/healthy", &["--cert", &pki.path("rogue.pem"), "--key", &pki.path("rogue.key")]);
    assert_eq!(rogue.status, Some(200), "{rogue:?}");
}

#[test]
fn verify_client_cert_if_given_accepts_none_but_refuses_a_bad_one() {
    let pki = Pki::new();
    let (exporter, _) =
        start(&pki, &tls_section("  client_ca_file: ca.pem\n  client_auth_type: VerifyClientCertIfGiven\n"));
    let addr = exporter.addr;
    assert_eq!(curl(&pki, addr, "/-/healthy", &[]).status, Some(200));
    let rogue = curl(&pki, addr, "/-/healthy", &["--cert", &pki.path("rogue.pem"), "--key", &pki.path("rogue.key")]);
    assert_eq!(rogue.status, None, "{rogue:?}");
    let ok = curl(&pki, addr, "/-/healthy", &["--cert", &pki.path("client.pem"), "--key", &pki.path("client.key")]);
    assert_eq!(ok.status, Some(200), "{ok:?}");
}

#[test]
fn plain_http_to_the_tls_port_fails_cleanly_and_the_server_keeps_serving() {
    let pki = Pki::new();
    let (exporter, _) = start(&pki, &tls_section(""));
    let addr = exporter.addr;
    for _ in 0..20 {
        let plain = curl_raw(
            &pki,
            &["-sS", "--max-time", "10", "-w", "\n%{http_code}", "-o", "-", &format!("http://{addr}/metrics")],
        );
        assert_eq!(plain.status, Some(400), "{plain:?}");
        assert!(plain.body.contains("HTTP request to an HTTPS server"), "{}", plain.body);
    }
    // Garbage that is neither TLS nor HTTP: the connection is just closed.
    let mut raw = TcpStream::connect(addr).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    raw.write_all(&[0x00, 0xff, 0x13, 0x37, 0x00, 0x00, 0x00, 0x01]).expect("write garbage");
    let mut buf = Vec::new();
    let _ = raw.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("tenderly"), "garbage got a response");
    let ok = curl(&pki, addr, "/metrics", &[]);
    assert_eq!(ok.status, Some(200), "{ok:?}");
}

#[test]
fn min_version_tls13_refuses_tls12_clients() {
    let pki = Pki::new();
    let (exporter, _) = start(&pki, &tls_section("  min_version: TLS13\n"));
    let addr = exporter.addr;
    let old = curl(&pki, addr, "/-/healthy", &["--tlsv1.2", "--tls-max", "1.2"]);
    assert_eq!(old.status, None, "a TLS 1.2 client must fail: {old:?}");
    assert_eq!(curl(&pki, addr, "/-/healthy", &["--tlsv1.3"]).status, Some(200));
}

#[test]
fn default_min_version_serves_tls12_and_tls13() {
    let pki = Pki::new();
    let (exporter, _) = start(
        &pki,
        &tls_section(
            "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n  curve_preferences: [X25519, CurveP256]\n",
        ),
    );
    let addr = exporter.addr;
    let tls12 = curl(&pki, addr, "/-/healthy", &["-v", "--tlsv1.2", "--tls-max", "1.2"]);
    assert_eq!(tls12.status, Some(200), "{tls12:?}");
    assert!(tls12.stderr.contains("ECDHE-ECDSA-AES256-GCM-SHA384"), "cipher_suites must apply: {}", tls12.stderr);
    assert_eq!(curl(&pki, addr, "/-/healthy", &["--tlsv1.3"]).status, Some(200));
}

#[test]
fn a_stalled_tls_handshake_is_cut_off() {
    let pki = Pki::new();
    let (exporter, _) = start(&pki, &tls_section(""));
    let mut stream = TcpStream::connect(exporter.addr).expect("connect");
    // The first byte of a TLS record, then nothing.
    stream.write_all(&[0x16]).expect("write");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(15), "held for {took:?}");
    assert_eq!(curl(&pki, exporter.addr, "/-/healthy", &[]).status, Some(200));
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let exporter = TestExporter::start(&[], &[]);
    let mut stream = TcpStream::connect(exporter.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).ends_with("OK\n") {
        let n = stream.read(&mut chunk).expect("read response");
        assert!(n > 0, "closed before the response: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    // Kept alive, then idle: the header-read timeout (10 s) closes it.
    let started = Instant::now();
    let n = stream.read(&mut chunk).unwrap_or(0);
    let took = started.elapsed();
    assert_eq!(n, 0, "expected EOF");
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(15), "idle connection held for {took:?}");
}

#[test]
fn reload_via_api_swaps_passwords_and_bad_files_keep_the_old_config() {
    let pki = Pki::new();
    let (exporter, path) = start(&pki, &format!("{}{}", tls_section(""), users(&[("alice", "old-pw")])));
    let addr = exporter.addr;
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:old-pw"]).status, Some(200));

    pki.write_config(&format!("{}{}", tls_section(""), users(&[("alice", "new-pw")])));
    assert!(exporter.state.reload_web_config().expect("valid reload"), "the change must be detected");
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:old-pw"]).status, Some(401), "old password revoked");
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:new-pw"]).status, Some(200));
    assert!(!exporter.state.reload_web_config().expect("same file"), "no change the second time");

    // A broken file: the error names the field; the old configuration stays.
    pki.write_config(&format!("{}basic_auth_users:\n  alice: new-pw-in-plain-text\n", tls_section("")));
    let e = exporter.state.reload_web_config().expect_err("invalid file").to_string();
    assert!(e.contains("basic_auth_users.alice") && e.contains(&path), "{e}");
    assert!(!e.contains("new-pw-in-plain-text"), "the error must not echo the value: {e}");
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:new-pw"]).status, Some(200));
    // Also across a poll interval.
    std::thread::sleep(WEB_CONFIG_POLL_INTERVAL + Duration::from_secs(1));
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:new-pw"]).status, Some(200));
}

#[test]
fn poll_picks_up_password_and_certificate_changes() {
    let pki = Pki::new();
    let (exporter, _) = start(&pki, &format!("{}{}", tls_section(""), users(&[("alice", "old-pw")])));
    let addr = exporter.addr;
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:old-pw"]).status, Some(200));

    pki.write_config(&format!("{}{}", tls_section(""), users(&[("alice", "new-pw")])));
    wait_until(POLL_BOUND, "the poll to apply the new password", || {
        curl(&pki, addr, "/-/healthy", &["-u", "alice:new-pw"]).status == Some(200)
    });
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:old-pw"]).status, Some(401));

    // Certificate rotation: only the certificate and key files change.
    let before = curl(&pki, addr, "/-/healthy", &["-v", "-u", "alice:new-pw"]);
    assert!(before.stderr.contains("CN=localhost"), "{}", before.stderr);
    pki.make_leaf("server", "rotated.localhost", SERVER_EXT, "0x2003");
    wait_until(POLL_BOUND, "the poll to serve the rotated certificate", || {
        let r = curl(&pki, addr, "/-/healthy", &["-v", "-u", "alice:new-pw"]);
        r.status == Some(200) && r.stderr.contains("CN=rotated.localhost")
    });
}

#[test]
fn bad_web_configs_are_rejected_with_the_field_named() {
    let pki = Pki::new();
    let cases: Vec<(String, &[&str])> = vec![
        ("tls_server_config:\n  cert_file: server.pem\n".into(), &["tls_server_config.key_file", "missing"]),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: nope.key\n".into(),
            &["tls_server_config.key_file", "nope.key"],
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: other.key\n".into(),
            &["tls_server_config.key_file", "does not match"],
        ),
        (
            "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n".into(),
            &["tls_server_config.cert_file", "no certificate"],
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n".into(),
            &["tls_server_config.key_file", "no usable private key"],
        ),
        (tls_section("  client_auth_type: RequireAndVerify\n"), &["client_auth_type", "RequireAndVerifyClientCert"]),
        (tls_section("  client_auth_type: RequireAndVerifyClientCert\n"), &["client_ca_file", "missing"]),
        (tls_section("  client_ca_file: ca.pem\n"), &["client_auth_type", "NoClientCert"]),
        (tls_section("  min_version: TLS11\n"), &["min_version", "TLS12 or TLS13"]),
        (tls_section("  min_version: TLS13\n  max_version: TLS12\n"), &["max_version"]),
        (tls_section("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"), &["cipher_suites[0]"]),
        (tls_section("  curve_preferences: [CurveP521]\n"), &["curve_preferences[0]"]),
        (tls_section("  client_allowed_sans: [a]\n"), &["client_allowed_sans", "not supported"]),
        (tls_section("  certfile: x\n"), &["certfile"]),
        ("basic_auth_users:\n  alice: hunter2\n".into(), &["basic_auth_users.alice", "bcrypt"]),
        ("basic_auth_users:\n  alice: [a]\n".into(), &["basic_auth_users"]),
        ("basic_auth_user:\n  alice: x\n".into(), &["basic_auth_user"]),
        ("http_server_config:\n  headers:\n    Server: x\n".into(), &["http_server_config.headers.Server"]),
        ("tls_server_config: [\n".into(), &["web.yml"]),
    ];
    for (yaml, needles) in &cases {
        let path = pki.write_config(yaml);
        let e = WebSecurity::load(Path::new(&path)).expect_err(yaml).to_string();
        for needle in *needles {
            assert!(e.contains(needle), "{yaml:?}: expected {needle:?} in: {e}");
        }
        assert!(!e.contains("-----BEGIN") && !e.contains("hunter2"), "secret material in error: {e}");
    }
    let e = WebSecurity::load(&pki.dir.join("absent.yml")).expect_err("absent file").to_string();
    assert!(e.contains("absent.yml") && e.contains("cannot read"), "{e}");
}

#[test]
fn a_bad_web_config_stops_the_binary_at_startup() {
    let pki = Pki::new();
    let path = pki.write_config(&tls_section("  client_auth_type: Sometimes\n"));
    let r = run(
        &pki.dir,
        env!("CARGO_BIN_EXE_tenderly-exporter"),
        &["--web.listen-address", "127.0.0.1:0", "--web.config.file", &path],
    );
    assert!(!r.success(), "must fail: {r:?}");
    assert!(
        r.stderr.contains("--web.config.file") && r.stderr.contains("tls_server_config.client_auth_type"),
        "{}",
        r.stderr
    );
}

#[test]
fn sighup_reloads_the_running_binary() {
    let pki = Pki::new();
    let path = pki.write_config(&format!("{}{}", tls_section(""), users(&[("alice", "old-pw")])));
    // The real binary, for SIGHUP (an in-process test cannot safely signal itself).
    let bin = ChildExporter::start(&["--web.config.file", &path]);
    let addr: SocketAddr = bin.addr;
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:old-pw"]).status, Some(200), "{}", bin.log());

    pki.write_config(&format!("{}{}", tls_section(""), users(&[("alice", "new-pw")])));
    let pid = bin.child.id().to_string();
    assert!(run(&pki.dir, "kill", &["-HUP", &pid]).success(), "kill -HUP");
    wait_until(Duration::from_secs(5), "a reload logged with reason=sighup", || bin.log().contains("reason=sighup"));
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:new-pw"]).status, Some(200), "{}", bin.log());
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:old-pw"]).status, Some(401));

    // A broken file on SIGHUP: a warning naming the field, the old config stays.
    pki.write_config(&format!("{}basic_auth_users:\n  alice: not-a-hash\n", tls_section("")));
    assert!(run(&pki.dir, "kill", &["-HUP", &pid]).success(), "kill -HUP");
    wait_until(Duration::from_secs(5), "a failed reload warning", || bin.log().contains("reload failed"));
    let log = bin.log();
    assert!(log.contains("basic_auth_users.alice"), "{log}");
    assert!(!log.contains("not-a-hash") && !log.contains("new-pw") && !log.contains("$2b$04$"), "secret in log: {log}");
    assert_eq!(curl(&pki, addr, "/-/healthy", &["-u", "alice:new-pw"]).status, Some(200));
}
