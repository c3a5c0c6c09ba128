//! Test support shared by the live tests: real `redis-server` processes started
//! by the tests themselves on free loopback ports (DESIGN.md §6), a tiny
//! blocking RESP client to drive them, and Tenderly-shaped sample data.
//!
//! Why a hand-written RESP client instead of the `redis` crate? Tests must check
//! the exporter, not share its client: a bug in the connection layer should not
//! be able to hide itself by breaking the fixture in the same way. The client is
//! blocking std code with a read timeout, so a wedged server fails a test
//! instead of hanging it.

// Every live test uses a different subset of these helpers; an integration
// binary compiles them once for all tests, so unused items are expected.
#![allow(dead_code)]

pub mod exporter;
pub mod golden;
pub mod mongo_fixtures;
pub mod mongo_replay;
pub mod pki;
pub mod process;
pub mod promql;
pub mod redis_server;

use std::time::{Duration, Instant};

// Re-exported for the tests that need them; not every test binary build uses all.
#[allow(unused_imports)]
pub use redis_server::{populate_tenderly, RedisOptions, RedisServer, Reply, RespConn, TenderlyCounts};

/// Polls `check` every 50 ms until it returns true, and panics with `what` once
/// `timeout` has passed. Every wait in the support code goes through here so no
/// test can hang on a server that never reaches the expected state.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh 0700 directory under the system temp dir, unique per call (servers'
/// configs, passwords and throwaway keys live there and never leave it).
pub fn private_temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tenderly-it-{tag}-{}-{n}-{nanos}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("creating a temp dir under {}: {e}", std::env::temp_dir().display()),
        }
    }
    panic!("could not create a unique temp dir under {}", std::env::temp_dir().display());
}

/// A TCP listener that accepts connections and never answers: a hung server,
/// and a canary (`accepted` proves whether anything connected).
pub struct BlackHole {
    pub port: u16,
    pub accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        BlackHole::start_on("127.0.0.1")
    }

    /// On another loopback address (`127.0.0.2`: Linux answers all of 127.0.0.0/8),
    /// so that "the seed's host" does not cover it.
    pub fn start_on(ip: &str) -> BlackHole {
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(stream); // keep it open, read nothing
            }
        });
        BlackHole { port, accepted }
    }

    /// Asserts (after a short grace period) that nothing ever connected.
    pub fn assert_untouched(&self) {
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            self.accepted.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the exporter connected to an address it was not given"
        );
    }
}
