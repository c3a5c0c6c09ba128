//! The exporter itself, in process, on a free loopback port (`serve` takes a
//! bound listener), plus a blocking HTTP/1.1 client and an exposition reader.
//! Blocking, so tests mix it freely with the blocking RESP client.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tenderly_exporter::cli::Cli;
use tenderly_exporter::config::{Config, Env};
use tenderly_exporter::{scrape::Scraper, server};

/// Environment for the config loader, without touching the process's.
pub struct TestEnv(pub HashMap<String, String>);

impl Env for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// A running exporter; dropping it shuts the server down.
pub struct TestExporter {
    pub addr: SocketAddr,
    /// The server's state (for `reload_web_config` and friends).
    pub state: Arc<server::AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestExporter {
    /// Starts with the given flags (without the program name) and environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> TestExporter {
        let cli = Cli::try_parse_from(std::iter::once("tenderly-exporter").chain(args.iter().copied()))
            .expect("test flags parse");
        let env = Arc::new(TestEnv(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
        let config = Config::from_cli(&cli, &*env).expect("test config is valid");
        // Reloads (POST /-/reload) build the configuration as startup did, from the same flags and environment.
        let source_env = Arc::clone(&env);
        let source: server::ConfigSource =
            Arc::new(move || Config::from_cli(&cli, &*source_env).map_err(|e| format!("{e:#}")));
        Self::start_with(config, env, Some(source))
    }

    pub fn start_config(config: Config) -> TestExporter {
        Self::start_with(config, Arc::new(TestEnv(HashMap::new())), None)
    }

    fn start_with(config: Config, env: Arc<TestEnv>, source: Option<server::ConfigSource>) -> TestExporter {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            // The same runtime flavour as the binary (main.rs).
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
                let mut state = server::AppState::new(config.web.clone(), Scraper::with_env(&config, env))
                    .expect("web config is valid");
                if let Some(source) = source {
                    state = state.with_config_source(source);
                }
                let state = Arc::new(state);
                addr_tx.send((listener.local_addr().expect("local addr"), Arc::clone(&state))).expect("send addr");
                server::serve(listener, state, async {
                    let _ = shutdown_rx.await;
                })
                .await
                .expect("serve");
            });
        });
        let (addr, state) = addr_rx.recv_timeout(Duration::from_secs(10)).expect("exporter started");
        TestExporter { addr, state, shutdown: Some(shutdown_tx), thread: Some(thread) }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http_request(self.addr, "GET", path, &[])
    }

    pub fn post(&self, path: &str) -> HttpResponse {
        http_request(self.addr, "POST", path, &[("Content-Length", "0")])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_request(self.addr, "GET", path, headers)
    }

    /// `/metrics` (or another path) parsed as an exposition; asserts 200.
    pub fn scrape(&self, path: &str) -> Exposition {
        let resp = self.get(path);
        assert_eq!(resp.status, 200, "GET {path}: {}", resp.body);
        Exposition::parse(&resp.body)
    }

    /// Stops the server and waits for it (graceful shutdown).
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestExporter {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end with a 60 s cap.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let (status, headers, body) = http_request_bytes(addr, method, path, headers);
    HttpResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// Like [`http_request`], with the body as bytes (a gzip body is not text).
pub fn http_request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to exporter");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&raw[..split.min(raw.len())]).into_owned();
    let body = raw[split.min(raw.len())..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

/// One parsed sample: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// A parsed text exposition: samples by name with their labels.
#[derive(Debug, Default)]
pub struct Exposition {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            samples.push((name.to_string(), labels, value));
        }
        Exposition { text: text.to_string(), samples }
    }

    /// The value of the first sample named `name` carrying all `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(_, _, v)| *v)
    }

    /// Like `value`, panicking with context when absent.
    pub fn expect(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?} in exposition"))
    }

    pub fn count(&self, name: &str) -> usize {
        self.samples.iter().filter(|(n, _, _)| n == name).count()
    }
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    out
}

/// The real exporter binary as a child process (for what an in-process server
/// cannot show: its own peak RSS, its stderr, signals), on a free loopback
/// port, with a clean environment for targets, stderr collected, killed on drop.
pub struct ChildExporter {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    log: Arc<std::sync::Mutex<String>>,
}

impl ChildExporter {
    /// Starts the binary with `args` (plus `--web.listen-address`) and waits
    /// until it logs `listening`; a port taken meanwhile is retried.
    pub fn start(args: &[&str]) -> ChildExporter {
        use std::io::BufRead as _;
        for _ in 0..8 {
            let port = crate::support::process::free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"))
                .args(["--web.listen-address", &listen])
                .args(args)
                .env_remove("REDIS_ADDR")
                .env_remove("MONGODB_URI")
                .env_remove("TENDERLY_EXPORTER_CONFIG")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawning the exporter binary");
            let log = Arc::new(std::sync::Mutex::new(String::new()));
            let stderr = child.stderr.take().expect("stderr piped");
            let sink = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
            let mut bin = ChildExporter { child, log, addr: listen.parse().expect("addr") };
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                if bin.log().contains("listening") {
                    return bin;
                }
                if !bin.alive() {
                    break; // port taken: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = bin.child.kill();
            let _ = bin.child.wait();
        }
        panic!("the exporter binary did not start");
    }

    /// Everything the binary wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// `/metrics` with a 5 s scrape timeout, parsed (panics with the log on a non-200).
    pub fn metrics(&self) -> Exposition {
        let resp = http_request(self.addr, "GET", "/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "5")]);
        assert_eq!(resp.status, 200, "/metrics: {}\nlog:\n{}", resp.body, self.log());
        Exposition::parse(&resp.body)
    }

    /// `VmHWM` (peak resident set) of the process, in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc/PID/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib * 1024
    }
}

impl Drop for ChildExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
