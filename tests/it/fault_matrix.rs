//! Fault matrix with two targets: one exporter, configured through
//! `--config.file` with a healthy Redis (`healthy`) and a faulty target
//! (`faulty`), both scraped through `/probe?target=`. For each fault not already
//! covered by `redis_live`, `mongo_live` and `http`:
//!
//! * the faulty target's probe returns within its deadline + 1 s, with `*_up 0`
//!   and `tenderly_exporter_collector_success 0`;
//! * a probe of the healthy target sent while the faulty one is in flight answers
//!   `redis_up 1` quickly (the single-threaded runtime is not held up by the
//!   fault);
//! * once the fault clears, the faulty target is up again without restarting the
//!   exporter (bounded `wait_until`).
//!
//! The faults: `DEBUG SLEEP` (the whole server blocked), a name that does not
//! resolve, a MongoDB reply delayed past the deadline, a Redis killed while a
//! scrape is held by `CLIENT PAUSE` and then restarted, and MongoDB replies cut
//! off mid-reply or with malformed BSON.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::mongo_replay::{Fault, ReplayServer, Scenario};
use crate::support::{private_temp_dir, wait_until, RedisOptions, RedisServer, RespConn};

/// Sent as `X-Prometheus-Scrape-Timeout-Seconds`; minus the default 0.5 s
/// offset this is a 1.0 s collection deadline.
const SCRAPE_TIMEOUT_HEADER: &str = "1.5";
const DEADLINE: Duration = Duration::from_millis(1000);
/// What the issue allows on top of the deadline.
const MARGIN: Duration = Duration::from_secs(1);
/// A healthy probe during a fault must answer well within this.
const HEALTHY_BOUND: Duration = Duration::from_millis(800);
/// How long a faulty target may take to come back once the fault is gone
/// (includes the reconnect backoff, at most 10 s, and the driver's monitor).
const RECOVERY: Duration = Duration::from_secs(25);
const HEALTHY_PASSWORD: &str = "fault-matrix-healthy-pw";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Redis,
    Mongodb,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Mongodb => "mongodb",
        }
    }

    fn up_metric(self) -> &'static str {
        match self {
            Kind::Redis => "redis_up",
            Kind::Mongodb => "mongodb_up",
        }
    }
}

/// A healthy password-protected Redis plus one exporter configured (through a
/// config file) with it as `healthy` and `faulty_address` as `faulty`.
struct Pair {
    healthy: RedisServer,
    exporter: Arc<TestExporter>,
    faulty_kind: Kind,
}

impl Pair {
    fn start(faulty_kind: Kind, faulty_address: &str) -> Pair {
        let healthy = RedisServer::start(RedisOptions::with_password(HEALTHY_PASSWORD));
        let dir = private_temp_dir("fault-matrix");
        let path = dir.join("targets.yml");
        let config = format!(
            "targets:\n\
             \x20 - name: healthy\n\
             \x20   kind: redis\n\
             \x20   address: {}\n\
             \x20   password_env: HEALTHY_REDIS_PASSWORD\n\
             \x20 - name: faulty\n\
             \x20   kind: {}\n\
             \x20   address: \"{faulty_address}\"\n",
            healthy.addr(),
            faulty_kind.name(),
        );
        let written = std::fs::write(&path, config);
        let exporter = written.is_ok().then(|| {
            TestExporter::start(
                &["--config.file", path.to_str().expect("temp paths are UTF-8")],
                &[("HEALTHY_REDIS_PASSWORD", HEALTHY_PASSWORD)],
            )
        });
        // The config is read once at startup; the directory is not needed after.
        let _ = std::fs::remove_dir_all(&dir);
        written.unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        let exporter = Arc::new(exporter.expect("started when the config was written"));
        Pair { healthy, exporter, faulty_kind }
    }

    /// `/probe?target=NAME` with the test's scrape timeout; (elapsed, exposition).
    fn probe(&self, target: &str) -> (Duration, Exposition) {
        timed_probe(&self.exporter, target, SCRAPE_TIMEOUT_HEADER)
    }

    fn faulty_up(&self) -> Option<f64> {
        self.probe("faulty").1.value(self.faulty_kind.up_metric(), &[])
    }

    fn assert_healthy_fast(&self, context: &str) {
        let (took, m) = self.probe("healthy");
        assert_eq!(m.value("redis_up", &[]), Some(1.0), "{context}: healthy target not up: {}", m.text);
        assert!(took < HEALTHY_BOUND, "{context}: healthy probe took {took:?}");
    }

    /// The faulty target's probe (started first, in a thread) is down within the
    /// deadline + margin, and a healthy probe sent meanwhile is up and fast.
    fn assert_fault_isolated(&self, context: &str, header: &str, deadline: Duration) {
        let exporter = Arc::clone(&self.exporter);
        let header = header.to_owned();
        let faulty = thread::spawn(move || timed_probe(&exporter, "faulty", &header));
        thread::sleep(Duration::from_millis(150));
        self.assert_healthy_fast(context);
        let (took, m) = faulty.join().expect("faulty probe thread");
        self.assert_faulty_down(context, took, &m, deadline);
    }

    fn assert_faulty_down(&self, context: &str, took: Duration, m: &Exposition, deadline: Duration) {
        assert!(took < deadline + MARGIN, "{context}: faulty probe took {took:?} (deadline {deadline:?})");
        assert_eq!(m.value(self.faulty_kind.up_metric(), &[]), Some(0.0), "{context}: {}", m.text);
        assert_eq!(
            m.value(
                "tenderly_exporter_collector_success",
                &[("target", "faulty"), ("collector", self.faulty_kind.name())]
            ),
            Some(0.0),
            "{context}: {}",
            m.text
        );
    }

    fn wait_faulty_recovers(&self, context: &str) {
        wait_until(RECOVERY, &format!("{context}: the faulty target up again"), || self.faulty_up() == Some(1.0));
        self.assert_healthy_fast(&format!("{context}, after recovery"));
    }
}

fn timed_probe(exporter: &TestExporter, target: &str, header: &str) -> (Duration, Exposition) {
    let started = Instant::now();
    let resp =
        exporter.get_with(&format!("/probe?target={target}"), &[("X-Prometheus-Scrape-Timeout-Seconds", header)]);
    let took = started.elapsed();
    assert_eq!(resp.status, 200, "/probe?target={target}: {}", resp.body);
    (took, Exposition::parse(&resp.body))
}

#[test]
fn debug_sleep_on_one_redis_leaves_the_other_target_alone_and_recovers() {
    let faulty = RedisServer::start(RedisOptions {
        extra_args: vec!["--enable-debug-command".into(), "yes".into()],
        ..RedisOptions::default()
    });
    let pair = Pair::start(Kind::Redis, &faulty.addr());
    assert_eq!(pair.faulty_up(), Some(1.0), "faulty target up before the fault");
    pair.assert_healthy_fast("before the fault");

    // DEBUG SLEEP blocks the whole server (not one client as CLIENT PAUSE does).
    let mut sleeper = RespConn::connect(&faulty.addr()).expect("connect to the faulty redis");
    let sleeping = thread::spawn(move || sleeper.command(&["DEBUG", "SLEEP", "3"]).map(|r| r.render()));
    thread::sleep(Duration::from_millis(200));
    pair.assert_fault_isolated("DEBUG SLEEP", SCRAPE_TIMEOUT_HEADER, DEADLINE);
    let slept = sleeping.join().expect("DEBUG SLEEP thread");
    assert_eq!(slept.as_deref().ok(), Some("OK"), "DEBUG SLEEP: {slept:?}");
    pair.wait_faulty_recovers("DEBUG SLEEP");
}

/// A name that cannot resolve (RFC 6761 `.invalid`) stays down, costs at most the
/// deadline every time (a slow resolver cannot hold a scrape), and never affects
/// the other target. There is nothing to "clear", so recovery is not tested here;
/// the restart tests cover it.
#[test]
fn unresolvable_name_is_down_within_the_deadline_every_time() {
    let pair = Pair::start(Kind::Redis, "no-such-host.invalid:6379");
    pair.assert_healthy_fast("before");
    for attempt in 0..3 {
        pair.assert_fault_isolated(&format!("unresolvable name, attempt {attempt}"), SCRAPE_TIMEOUT_HEADER, DEADLINE);
    }
    assert_eq!(pair.exporter.get("/-/healthy").status, 200);
}

#[test]
fn delayed_mongodb_replies_leave_the_redis_target_alone_and_recover() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let pair = Pair::start(Kind::Mongodb, &replay.uri());
    assert_eq!(pair.faulty_up(), Some(1.0), "mongodb target up before the fault");

    replay.set_fault(Fault::Delay(Duration::from_secs(5)));
    for attempt in 0..2 {
        pair.assert_fault_isolated(&format!("replay delay, attempt {attempt}"), SCRAPE_TIMEOUT_HEADER, DEADLINE);
    }
    replay.clear_faults();
    pair.wait_faulty_recovers("replay delay");
}

#[test]
fn redis_killed_during_a_scrape_is_down_at_once_and_recovers_after_restart() {
    let mut faulty = RedisServer::start(RedisOptions::default());
    let pair = Pair::start(Kind::Redis, &faulty.addr());
    assert_eq!(pair.faulty_up(), Some(1.0), "faulty target up before the fault");

    // Hold the scrape inside the server, then kill the server under it.
    faulty.cli(&["CLIENT", "PAUSE", "10000", "ALL"]);
    let exporter = Arc::clone(&pair.exporter);
    let in_flight = thread::spawn(move || timed_probe(&exporter, "faulty", "3"));
    thread::sleep(Duration::from_millis(300));
    faulty.kill();
    pair.assert_healthy_fast("target killed");
    let (took, m) = in_flight.join().expect("in-flight probe thread");
    pair.assert_faulty_down("killed during the scrape", took, &m, Duration::from_millis(2500));

    // While it is gone: connection refused, down fast, other target fine.
    pair.assert_fault_isolated("target dead", SCRAPE_TIMEOUT_HEADER, DEADLINE);

    faulty.restart();
    pair.wait_faulty_recovers("restart after kill");
}

#[test]
fn truncated_and_malformed_mongodb_replies_leave_the_redis_target_alone_and_recover() {
    for fault in [Fault::DropMidReply, Fault::MalformedBson] {
        let replay = ReplayServer::start(Scenario::Standalone).expect("replay server starts");
        let pair = Pair::start(Kind::Mongodb, &replay.uri());
        assert_eq!(pair.faulty_up(), Some(1.0), "{fault:?}: mongodb target up before the fault");
        replay.set_fault(fault.clone());
        pair.assert_fault_isolated(&format!("{fault:?}"), SCRAPE_TIMEOUT_HEADER, DEADLINE);
        replay.clear_faults();
        pair.wait_faulty_recovers(&format!("{fault:?}"));
        assert_eq!(pair.healthy.try_cli(&["PING"]).as_deref(), Ok("PONG"), "the healthy redis must still answer");
    }
}
