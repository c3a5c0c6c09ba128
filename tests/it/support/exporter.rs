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
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    HttpResponse { status, headers, body: body.to_string() }
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
