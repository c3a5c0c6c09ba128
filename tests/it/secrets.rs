//! Secrets never leave the process. The real binary runs with distinctive secret
//! strings delivered every supported way (environment, password files, a config
//! file's `password_file`/`password_env`, credentials inline in
//! `--mongodb.uri`), at `--log.level debug`, in logfmt and JSON, through every
//! path that prints: a wrong Redis password against a real `redis-server`,
//! unreachable Redis and MongoDB, a TLS handshake failure (`rediss://` to a
//! plain port), MongoDB authentication failure (the replay server answers
//! `saslStart` with `AuthenticationFailed`), `/probe` with a secret-looking or a
//! configured target, the landing page, `/metrics`, `--check-config`, `doctor`,
//! and configuration errors next to (or inside) a secret. Every byte of
//! stdout, stderr and the HTTP bodies is collected and searched for each secret
//! in raw, percent-encoded, hex and base64 forms (and its distinctive prefix
//! alone, which catches a partial rendering).

use crate::support::process::free_port;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::exporter::{http_request, Exposition};
use crate::support::mongo_replay::{ReplayServer, Scenario};
use crate::support::{private_temp_dir, RedisOptions, RedisServer};

/// Each ends in characters that URL and base64 encodings change, so the encoded
/// forms differ from the raw one; the prefix before `+` is the distinctive core.
const REDIS_ENV_SECRET: &str = "s3cr3t-redis-7f3a+/@:x";
const REDIS_FILE_SECRET: &str = "s3cr3t-redisfile-91c2+/@:x";
const MONGO_ENV_SECRET: &str = "s3cr3t-mongoenv-b4d1+/@:x";
const MONGO_URI_SECRET: &str = "s3cr3t-mongouri-e5a0+/@:x";
const CFG_FILE_SECRET: &str = "s3cr3t-cfgfile-2b8e+/@:x";
const CFG_ENV_SECRET: &str = "s3cr3t-cfgenv-c07d+/@:x";
const CFG_MONGO_SECRET: &str = "s3cr3t-cfgmongo-3a1f+/@:x";
const PROBE_SECRET: &str = "s3cr3t-probe-9d4e+/@:x";
const CFG_ERROR_SECRET: &str = "s3cr3t-cfgerror-6b0c+/@:x";

const ALL_SECRETS: &[&str] = &[
    REDIS_ENV_SECRET,
    REDIS_FILE_SECRET,
    MONGO_ENV_SECRET,
    MONGO_URI_SECRET,
    CFG_FILE_SECRET,
    CFG_ENV_SECRET,
    CFG_MONGO_SECRET,
    PROBE_SECRET,
    CFG_ERROR_SECRET,
];

/// The password the real Redis actually has: every secret above is wrong for it.
const REAL_REDIS_PASSWORD: &str = "the-real-redis-password";
/// How long one run of the binary (or a config-error exit) may take.
const RUN_BOUND: Duration = Duration::from_secs(60);
/// Scrape timeout sent with every scrape: failures answer within ~1.5 s.
const SCRAPE_TIMEOUT: &str = "2";

// ---- secret forms --------------------------------------------------------------

fn percent_encode(value: &str, lower: bool) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b if lower => format!("%{b:02x}"),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn base64(bytes: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Every form in which a secret could leak: raw, percent-encoded (both hex
/// cases), `+` for space form encoding is irrelevant (no spaces), hex, its
/// distinctive core, and base64 (standard and URL-safe) at each of the three
/// alignments it could have inside a longer encoded string (only the groups
/// made entirely of secret bytes, so the fragment is the same wherever it sits).
fn leak_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![
        secret.to_owned(),
        percent_encode(secret, false),
        percent_encode(secret, true),
        secret.bytes().map(|b| format!("{b:02x}")).collect(),
        secret.split('+').next().expect("split yields at least one part").to_owned(),
    ];
    for offset in 0..3 {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret.as_bytes());
        for url_safe in [false, true] {
            let encoded = base64(&bytes, url_safe);
            let skip = if offset == 0 { 0 } else { 4 };
            let end = encoded.len().saturating_sub(4);
            if end > skip + 8 {
                forms.push(encoded[skip..end].to_owned());
            }
        }
    }
    forms
}

/// Collected output, each piece labelled with where it came from.
#[derive(Default)]
struct Transcript {
    pieces: Vec<(String, String)>,
}

impl Transcript {
    fn add(&mut self, source: impl Into<String>, text: impl Into<String>) {
        self.pieces.push((source.into(), text.into()));
    }

    fn all_text(&self) -> String {
        self.pieces.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// Fails naming every (secret form, source) pair found, with context.
    fn assert_no_secrets(&self) {
        let mut leaks = Vec::new();
        for secret in ALL_SECRETS {
            for form in leak_forms(secret) {
                for (source, text) in &self.pieces {
                    if let Some(at) = text.find(&form) {
                        let mut start = at.saturating_sub(120);
                        while !text.is_char_boundary(start) {
                            start -= 1;
                        }
                        let mut end = (at + form.len() + 120).min(text.len());
                        while !text.is_char_boundary(end) {
                            end += 1;
                        }
                        leaks.push(format!("{form:?} (of {secret:?}) in {source}: ...{}...", &text[start..end]));
                    }
                }
            }
        }
        assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    }
}

// ---- processes -----------------------------------------------------------------

/// The binary with a clean environment (nothing inherited can configure it).
fn exporter_command(args: &[String], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"));
    cmd.args(args).env_clear().stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A child whose stdout and stderr go to files; killed on drop if still running.
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    fn spawn(mut cmd: Command, dir: &Path, tag: &str) -> Running {
        let stdout = dir.join(format!("{tag}.stdout"));
        let stderr = dir.join(format!("{tag}.stderr"));
        cmd.stdout(File::create(&stdout).expect("create stdout file"));
        cmd.stderr(File::create(&stderr).expect("create stderr file"));
        let child = cmd.spawn().expect("spawn tenderly-exporter");
        Running { child, stdout, stderr }
    }

    /// Waits up to `bound` for the exit; kills and fails past it.
    fn wait(&mut self, bound: Duration, what: &str) -> Option<i32> {
        let deadline = Instant::now() + bound;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("{what} did not exit within {bound:?}; stderr:\n{}", self.stderr_text());
                }
                Err(e) => panic!("waiting for {what}: {e}"),
            }
        }
    }

    /// SIGTERM (graceful shutdown flushes the last log lines), bounded wait.
    fn terminate(&mut self, what: &str) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.wait(Duration::from_secs(20), what)
    }

    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stdout).unwrap_or_default()).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default()).into_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary to completion (bounded); (exit code, stdout, stderr).
fn run_to_end(args: &[String], env: &[(&str, &str)], dir: &Path, tag: &str) -> (Option<i32>, String, String) {
    let mut running = Running::spawn(exporter_command(args, env), dir, tag);
    let code = running.wait(RUN_BOUND, tag);
    (code, running.stdout_text(), running.stderr_text())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Removes the directory on drop, even when an assertion fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Answers every connection at once with a plain-text Redis error and closes it:
/// a `rediss://` client gets a TLS protocol error (not a timeout) from it.
struct PlainTextPeer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PlainTextPeer {
    fn start() -> PlainTextPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("bound listener has an address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.write_all(b"-ERR this is not TLS\r\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        PlainTextPeer { port, stop, thread: Some(thread) }
    }
}

impl Drop for PlainTextPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---- the world the secrets travel through ---------------------------------------

struct World {
    dir: TempDir,
    /// A real Redis whose password is none of the secrets.
    wrong_password_redis: RedisServer,
    /// A plain (non-TLS) Redis, dialled with `rediss://` (the handshake hangs:
    /// Redis waits for the end of an inline command that never comes).
    plain_redis: RedisServer,
    /// A peer that answers a ClientHello with plain text (handshake error).
    plain_text_peer: PlainTextPeer,
    /// Answers saslStart with AuthenticationFailed.
    replay: ReplayServer,
    config_file: PathBuf,
    redis_password_file: PathBuf,
}

impl World {
    fn start() -> World {
        let dir = TempDir(private_temp_dir("secrets"));
        let wrong_password_redis = RedisServer::start(RedisOptions::with_password(REAL_REDIS_PASSWORD));
        let plain_redis = RedisServer::start(RedisOptions::default());
        let plain_text_peer = PlainTextPeer::start();
        let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
        let cfg_password_file = dir.0.join("cfg-redis-password");
        std::fs::write(&cfg_password_file, format!("{CFG_FILE_SECRET}\n")).expect("write password file");
        let redis_password_file = dir.0.join("redis-password");
        std::fs::write(&redis_password_file, format!("{REDIS_FILE_SECRET}\n")).expect("write password file");
        let config_file = dir.0.join("targets.yml");
        let config = format!(
            "targets:\n\
             \x20 - name: cfg-redis-wrongpw\n\
             \x20   kind: redis\n\
             \x20   address: {wrong}\n\
             \x20   password_file: {file}\n\
             \x20 - name: cfg-redis-unreachable\n\
             \x20   kind: redis\n\
             \x20   address: redis://127.0.0.1:{closed_redis}\n\
             \x20   password_file: {file}\n\
             \x20 - name: cfg-redis-tls\n\
             \x20   kind: redis\n\
             \x20   address: rediss://127.0.0.1:{plain}\n\
             \x20   password_env: CFG_REDIS_PASSWORD\n\
             \x20 - name: cfg-redis-tls-garbage\n\
             \x20   kind: redis\n\
             \x20   address: rediss://127.0.0.1:{garbage}\n\
             \x20   password_env: CFG_REDIS_PASSWORD\n\
             \x20 - name: cfg-mongo-unreachable\n\
             \x20   kind: mongodb\n\
             \x20   address: mongodb://127.0.0.1:{closed_mongo}/\n\
             \x20   username: tenderly-exporter\n\
             \x20   password_env: CFG_MONGO_PASSWORD\n\
             \x20 - name: cfg-mongo-authfail\n\
             \x20   kind: mongodb\n\
             \x20   address: {replay_uri}\n\
             \x20   username: tenderly-exporter\n\
             \x20   password_env: CFG_MONGO_PASSWORD\n",
            wrong = wrong_password_redis.addr(),
            file = cfg_password_file.display(),
            closed_redis = free_port(),
            plain = plain_redis.port(),
            garbage = plain_text_peer.port,
            closed_mongo = free_port(),
            replay_uri = replay.uri(),
        );
        std::fs::write(&config_file, config).expect("write config file");
        World { dir, wrong_password_redis, plain_redis, plain_text_peer, replay, config_file, redis_password_file }
    }

    fn config_env(&self) -> Vec<(&'static str, &'static str)> {
        vec![("CFG_REDIS_PASSWORD", CFG_ENV_SECRET), ("CFG_MONGO_PASSWORD", CFG_MONGO_SECRET)]
    }

    /// Run A's target flags: Redis password from the environment, MongoDB
    /// credentials inline in the URI.
    fn flags_env_and_inline_uri(&self) -> (Vec<String>, Vec<(&'static str, &'static str)>) {
        let uri = format!(
            "mongodb://tenderly-exporter:{}@127.0.0.1:{}/?directConnection=true",
            percent_encode(MONGO_URI_SECRET, false),
            self.replay.port()
        );
        let args = vec![
            "--redis.addr".into(),
            self.wrong_password_redis.addr(),
            "--mongodb.uri".into(),
            uri,
            "--config.file".into(),
            self.config_file.display().to_string(),
        ];
        let mut env = self.config_env();
        env.push(("REDIS_PASSWORD", REDIS_ENV_SECRET));
        (args, env)
    }

    /// Run B's target flags: Redis password from a file, MongoDB user + password
    /// from the environment.
    fn flags_files_and_env(&self) -> (Vec<String>, Vec<(&'static str, &'static str)>) {
        let args = vec![
            "--redis.addr".into(),
            format!("redis://{}", self.wrong_password_redis.addr()),
            "--redis.password-file".into(),
            self.redis_password_file.display().to_string(),
            "--mongodb.uri".into(),
            self.replay.uri(),
            "--mongodb.user".into(),
            "tenderly-exporter".into(),
            "--config.file".into(),
            self.config_file.display().to_string(),
        ];
        let mut env = self.config_env();
        env.push(("MONGODB_PASSWORD", MONGO_ENV_SECRET));
        (args, env)
    }

    /// Starts the server, drives every HTTP path twice (the second failure of a
    /// target is logged on the `debug` path), stops it with SIGTERM and returns
    /// everything it printed and served.
    fn serve_and_collect(&self, tag: &str, flags: (Vec<String>, Vec<(&str, &str)>), extra: &[&str]) -> Transcript {
        let (mut args, env) = flags;
        let port = free_port();
        args.extend(strings(&["--web.listen-address", &format!("127.0.0.1:{port}"), "--log.level", "debug"]));
        args.extend(strings(extra));
        let mut running = Running::spawn(exporter_command(&args, &env), &self.dir.0, tag);
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("socket address");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("{tag}: exporter exited ({status}) before listening:\n{}", running.stderr_text());
            }
            assert!(Instant::now() < deadline, "{tag}: exporter not listening within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }

        let mut transcript = Transcript::default();
        let timeout = [("X-Prometheus-Scrape-Timeout-Seconds", SCRAPE_TIMEOUT)];
        let secret_target = percent_encode(PROBE_SECRET, false);
        let secret_url_target =
            percent_encode(&format!("redis://:{PROBE_SECRET}@127.0.0.1:{}", self.wrong_password_redis.port()), false);
        let basic = format!("Basic {}", base64(format!("prometheus:{PROBE_SECRET}").as_bytes(), false));
        let mut paths: Vec<(String, Vec<(&str, &str)>)> = vec![
            ("/".into(), vec![]),
            ("/-/healthy".into(), vec![]),
            ("/-/ready".into(), vec![]),
            (format!("/probe?target={secret_target}"), vec![]),
            (format!("/probe?target={secret_url_target}"), vec![]),
            (format!("/nope/{secret_target}"), vec![]),
            ("/metrics".into(), vec![("Authorization", basic.as_str())]),
        ];
        for _round in 0..2 {
            paths.push(("/metrics".into(), timeout.to_vec()));
            for name in [
                "redis",
                "mongodb",
                "cfg-redis-wrongpw",
                "cfg-redis-unreachable",
                "cfg-redis-tls",
                "cfg-redis-tls-garbage",
                "cfg-mongo-unreachable",
                "cfg-mongo-authfail",
            ] {
                paths.push((format!("/probe?target={name}"), timeout.to_vec()));
            }
        }
        let mut metrics_seen = None;
        for (path, headers) in &paths {
            let resp = http_request(addr, "GET", path, headers);
            let head: String = resp.headers.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
            transcript.add(format!("{tag} GET {path} (status {})", resp.status), format!("{head}\n{}", resp.body));
            if path == "/metrics" && resp.status == 200 {
                metrics_seen = Some(resp.body.clone());
            }
            if let Some(name) = path.strip_prefix("/probe?target=").filter(|n| n.starts_with("cfg-")) {
                assert_eq!(resp.status, 200, "{tag}: probe {name}: {}", resp.body);
                let m = Exposition::parse(&resp.body);
                let up = m.value("redis_up", &[]).or_else(|| m.value("mongodb_up", &[]));
                assert_eq!(up, Some(0.0), "{tag}: {name} must be down (every secret is wrong): {}", resp.body);
            }
        }
        let metrics = Exposition::parse(&metrics_seen.expect("at least one /metrics answered 200"));
        assert_eq!(metrics.value("redis_up", &[]), Some(0.0), "{tag}: wrong password must be down");
        assert_eq!(metrics.value("mongodb_up", &[]), Some(0.0), "{tag}: MongoDB auth failure must be down");

        let code = running.terminate(tag);
        assert_eq!(code, Some(0), "{tag}: graceful shutdown exit code; stderr:\n{}", running.stderr_text());
        let stderr = running.stderr_text();
        // Prove the failure paths were logged at all, so "no secret in the logs" means something.
        for name in [
            "cfg-redis-tls",
            "cfg-redis-tls-garbage",
            "cfg-mongo-authfail",
            "cfg-redis-unreachable",
            "cfg-mongo-unreachable",
        ] {
            assert!(stderr.contains(name), "{tag}: no log line names {name}:\n{stderr}");
        }
        assert!(
            stderr.contains("level=debug") || stderr.to_ascii_lowercase().contains("\"level\":\"debug\""),
            "{tag}: no debug line logged:\n{stderr}"
        );
        transcript.add(format!("{tag} stdout"), running.stdout_text());
        transcript.add(format!("{tag} stderr"), stderr);
        transcript
    }
}

#[test]
fn secret_forms_cover_encodings() {
    let forms = leak_forms("abc+/@:x");
    assert!(forms.contains(&"abc%2B%2F%40%3Ax".to_owned()), "{forms:?}");
    assert!(forms.contains(&"abc%2b%2f%40%3ax".to_owned()), "{forms:?}");
    assert_eq!(base64(b"any carnal pleasure.", false), "YW55IGNhcm5hbCBwbGVhc3VyZS4");
    // A fragment of the aligned encoding appears inside the encoding of a longer string.
    let secret = REDIS_ENV_SECRET;
    for prefix in ["", "u", "us", "user:"] {
        let whole = base64(format!("{prefix}{secret}tail").as_bytes(), false);
        assert!(leak_forms(secret).iter().any(|f| whole.contains(f.as_str())), "prefix {prefix:?}");
    }
}

#[test]
fn no_secret_in_logs_metrics_or_pages_through_every_failure_path() {
    let world = World::start();
    let mut transcript = world.serve_and_collect("logfmt", world.flags_env_and_inline_uri(), &[]);
    let json = world.serve_and_collect("json", world.flags_files_and_env(), &["--log.format", "json"]);
    assert!(
        json.pieces
            .iter()
            .filter(|(s, _)| s.ends_with("stderr"))
            .all(|(_, t)| t.lines().filter(|l| !l.is_empty()).all(|l| l.starts_with('{'))),
        "--log.format json must log JSON lines only"
    );
    transcript.pieces.extend(json.pieces);

    // --check-config and doctor with the same secrets, both ways.
    for (tag, (mut args, env)) in
        [("env-inline", world.flags_env_and_inline_uri()), ("files", world.flags_files_and_env())]
    {
        let mut check = args.clone();
        check.push("--check-config".into());
        let (code, out, err) = run_to_end(&check, &env, &world.dir.0, &format!("check-{tag}"));
        assert_eq!(code, Some(0), "--check-config {tag}: {out}{err}");
        assert!(out.contains("cfg-redis-tls"), "--check-config lists the targets: {out}");
        transcript.add(format!("--check-config {tag} stdout"), out);
        transcript.add(format!("--check-config {tag} stderr"), err);

        args.insert(0, "doctor".into());
        args.extend(strings(&["--log.level", "debug"]));
        let (code, out, err) = run_to_end(&args, &env, &world.dir.0, &format!("doctor-{tag}"));
        assert_eq!(code, Some(1), "doctor {tag} must fail (every secret is wrong): {out}{err}");
        assert!(out.contains("FAIL"), "doctor {tag}: {out}");
        transcript.add(format!("doctor {tag} stdout"), out);
        transcript.add(format!("doctor {tag} stderr"), err);
    }
    assert!(transcript.all_text().len() > 10_000, "suspiciously little output collected");
    assert!(world.replay.command_count("saslStart") > 0, "the MongoDB authentication path was never exercised");
    transcript.assert_no_secrets();
    drop(world.plain_redis);
    drop(world.plain_text_peer);
}

/// A bad configuration next to (or containing) a secret fails at startup,
/// naming the problem, and never prints the secret.
#[test]
fn config_errors_never_print_a_neighbouring_secret() {
    let dir = TempDir(private_temp_dir("secrets-cfgerr"));
    let enc = percent_encode(CFG_ERROR_SECRET, false);
    let target = |extra: &str| format!("targets:\n  - name: r1\n    kind: redis\n{extra}");
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "unknown field holding a secret",
            target(&format!("    address: 127.0.0.1:6379\n    passwrd: \"{CFG_ERROR_SECRET}\"\n")),
            vec![],
        ),
        (
            "bad timeout next to inline credentials",
            target(&format!("    address: redis://:{enc}@127.0.0.1:6379\n    timeout: soon\n")),
            vec![],
        ),
        (
            "bad port in an address with credentials",
            target(&format!("    address: redis://:{enc}@127.0.0.1:notaport\n")),
            vec![],
        ),
        (
            "YAML syntax error on the secret's line",
            target(&format!("    address: 127.0.0.1:6379\n    password_file: \"{CFG_ERROR_SECRET}\n")),
            vec![],
        ),
        (
            "bad MongoDB address with credentials",
            format!("targets:\n  - name: m1\n    kind: mongodb\n    address: \"mongodb://u:{enc}@127.0.0.1:99999/\"\n"),
            vec![],
        ),
        (
            "password_env naming an unset variable next to inline credentials",
            target(&format!("    address: redis://:{enc}@127.0.0.1:6379\n    password_env: NOT_SET_ANYWHERE\n")),
            vec![],
        ),
        (
            "bad --mongodb.uri with credentials",
            "targets: []\n".into(),
            strings(&["--mongodb.uri", &format!("mongodb://u:{enc}@127.0.0.1:notaport/")]),
        ),
        (
            "bad --redis.addr with credentials",
            "targets: []\n".into(),
            strings(&["--redis.addr", &format!("redis://:{enc}@127.0.0.1:notaport")]),
        ),
        (
            "unknown --mongodb.uri option next to credentials",
            "targets: []\n".into(),
            strings(&["--mongodb.uri", &format!("mongodb://u:{enc}@127.0.0.1:27017/?nosuchoption=1&tls=maybe")]),
        ),
    ];
    let mut transcript = Transcript::default();
    for (i, (what, yaml, flags)) in cases.into_iter().enumerate() {
        let path = dir.0.join(format!("bad-{i}.yml"));
        std::fs::write(&path, yaml).expect("write config");
        for check in [true, false] {
            let mut args = strings(&["--config.file", &path.display().to_string()]);
            args.extend(flags.iter().cloned());
            args.extend(strings(&["--web.listen-address", &format!("127.0.0.1:{}", free_port())]));
            args.extend(strings(&["--log.level", "debug"]));
            if check {
                args.push("--check-config".into());
            }
            let (code, out, err) = run_to_end(&args, &[], &dir.0, &format!("cfgerr-{i}-{check}"));
            assert_eq!(code, Some(1), "{what} (check-config {check}) must fail at startup: {out}{err}");
            assert!(err.contains("error"), "{what}: the error is printed: {err}");
            transcript.add(format!("{what} (check-config {check}) stdout"), out);
            transcript.add(format!("{what} (check-config {check}) stderr"), err);
        }
    }
    transcript.assert_no_secrets();
}

/// A password pasted into `password_env` (instead of the variable's name) is
/// printed back: `environment variable <the password> is not set or empty`. The
/// same holds for `password_file: <the password>` ("cannot read <the password>").
/// A value that cannot be a variable name (`[A-Za-z_][A-Za-z0-9_]*`) could be
/// reported without echoing it.
#[test]
fn a_password_pasted_into_password_env_is_not_echoed() {
    let dir = TempDir(private_temp_dir("secrets-pasted"));
    for field in ["password_env", "password_file"] {
        let path = dir.0.join(format!("{field}.yml"));
        let yaml = format!(
            "targets:\n  - name: r1\n    kind: redis\n    address: 127.0.0.1:6379\n    {field}: \"{CFG_ERROR_SECRET}\"\n"
        );
        std::fs::write(&path, yaml).expect("write config");
        let args = strings(&["--config.file", &path.display().to_string(), "--check-config"]);
        let (code, out, err) = run_to_end(&args, &[], &dir.0, field);
        assert_eq!(code, Some(1), "{out}{err}");
        let mut transcript = Transcript::default();
        transcript.add(format!("{field} stderr"), err);
        transcript.assert_no_secrets();
    }
}
