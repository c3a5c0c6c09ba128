//! Processes, ports, waits and the skip policy: the one copy of each for the
//! whole suite.
//!
//! Skip policy: a test that cannot run (a tool not installed, no real MongoDB
//! server) calls [`skip`], which says why on stderr and records the test in
//! the skip log, so `scripts/test.sh` counts it as skipped instead of passed.
//! A *required* tool ([`require_tool`]: redis-server, promtool, amtool,
//! alertmanager, openssl) missing under `CI=true` fails the test: CI installs
//! them, so their absence there is a broken install, not a reason to skip.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where [`skip`] records skipped tests (`scripts/test.sh` sets it and reads it).
pub const SKIP_LOG_VAR: &str = "TENDERLY_TEST_SKIP_LOG";

/// Whether this run is CI's (`CI=true`, as CI sets it).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Records that the current test could not run and why. The caller returns
/// right after.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("unknown test").to_string();
    eprintln!("SKIPPED: {test}: {reason}");
    let path = std::env::var_os(SKIP_LOG_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.log"));
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        let _ = writeln!(file, "{test}\t{reason}");
    }
}

/// The path of `binary` on `PATH` (or in /usr/bin, /usr/sbin).
pub fn which(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
}

/// A tool the suite needs: its path, or `None` after [`skip`] when it is not
/// installed. Under CI a missing tool fails the test instead.
pub fn require_tool(binary: &str, debian_package: &str) -> Option<PathBuf> {
    if let Some(path) = which(binary) {
        return Some(path);
    }
    let reason =
        format!("`{binary}` is not installed (Debian package `{debian_package}`; scripts/install-deps.sh installs it)");
    if under_ci() {
        panic!("CI=true and a required tool is missing: {reason}");
    }
    skip(&reason);
    None
}

/// A loopback port that was free a moment ago (the process under test binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// Polls `check` every 100 ms until it holds; panics after `timeout` with
/// `context()` (a log tail, say) so a wedged process fails the test, never hangs it.
pub fn wait_for(what: &str, timeout: Duration, context: &dyn Fn() -> String, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The outcome of [`run_bounded`].
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `cmd` in `dir` with no stdin, output captured to files there, and
/// kills it after `timeout` (a panic names the command).
pub fn run_bounded(mut cmd: Command, dir: &Path, timeout: Duration) -> Run {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = Path::new(cmd.get_program()).file_name().and_then(|n| n.to_str()).unwrap_or("tool").to_string();
    let out_path = dir.join(format!("{name}-{n}.out"));
    let err_path = dir.join(format!("{name}-{n}.err"));
    let mut child = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} (is it installed?): {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {:?} did not finish within {timeout:?}", cmd.get_args().collect::<Vec<_>>());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}
