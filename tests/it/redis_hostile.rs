//! A hostile Redis, against the real binary (a subprocess, so its peak RSS and
//! its log are its own): a fake server on loopback that speaks just enough RESP
//! for the exporter's handshake, feature probe and scrape pipeline, and answers
//! `INFO ALL` with something no real server sends.
//!
//! * a 50 MB `INFO` and a never-ending bulk string: the exporter stays up,
//!   reports `redis_up 0` and a failed collector, logs the cap, and its peak RSS
//!   (VmHWM) stays under the shipped unit's `MemoryMax=128M`;
//! * a dead target scraped once a second: exactly one warning.

use crate::support::exporter::ChildExporter;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::support::exporter::http_request;

/// The shipped systemd unit's `MemoryMax` (deploy/tenderly-exporter.service).
const MEMORY_MAX: u64 = 128 * 1024 * 1024;
/// What one hostile target may cost at peak: half the unit's budget, the rest
/// is for the other targets. Capped, the whole process peaks near 25 MiB; a
/// 50 MB INFO without the cap peaked at 118 MiB on the first scrape.
const HOSTILE_PEAK_BOUND: u64 = MEMORY_MAX / 2;

/// What the fake server answers to `INFO ALL`.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// A well-formed INFO of this many bytes.
    HugeInfo(usize),
    /// `$999999999999` and then bytes until the client hangs up.
    EndlessBulk,
    /// A well-formed INFO with this many `cmdstat_` lines.
    ManyCommands(usize),
}

/// A fake Redis on a loopback port; one thread per connection.
struct FakeRedis {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// How many `INFO ALL` it was asked.
    info_all: Arc<Mutex<u32>>,
}

impl FakeRedis {
    fn start(mode: Hostile) -> FakeRedis {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake redis");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let info_all = Arc::new(Mutex::new(0));
        let (stop2, info2) = (Arc::clone(&stop), Arc::clone(&info_all));
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (stop3, info3) = (Arc::clone(&stop2), Arc::clone(&info2));
                        thread::spawn(move || serve(conn, mode, &stop3, &info3));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeRedis { addr, stop, info_all }
    }

    fn info_all_count(&self) -> u32 {
        *self.info_all.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one RESP command (an array of bulk strings); `None` at EOF or garbage.
fn read_command(reader: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let n: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut arg = vec![0u8; len + 2];
        reader.read_exact(&mut arg).ok()?;
        arg.truncate(len);
        args.push(String::from_utf8_lossy(&arg).into_owned());
    }
    Some(args)
}

fn bulk(text: &str) -> Vec<u8> {
    format!("${}\r\n{text}\r\n", text.len()).into_bytes()
}

const SMALL_INFO: &str = "# Server\r\nredis_version:7.2.4\r\nredis_mode:standalone\r\nrole:master\r\n";

fn serve(conn: TcpStream, mode: Hostile, stop: &AtomicBool, info_all: &Mutex<u32>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = conn.try_clone() else { return };
    let mut reader = BufReader::new(conn);
    while let Some(args) = read_command(&mut reader) {
        let name = args.iter().take(2).map(|a| a.to_ascii_uppercase()).collect::<Vec<_>>().join(" ");
        let reply = match name.as_str() {
            "PING" => b"+PONG\r\n".to_vec(),
            "INFO ALL" => {
                *info_all.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                match mode {
                    Hostile::HugeInfo(size) => {
                        let mut body = String::from(SMALL_INFO);
                        let mut i = 0u64;
                        while body.len() < size {
                            body.push_str(&format!("filler_field_{i}:{}\r\n", "x".repeat(100)));
                            i += 1;
                        }
                        bulk(&body)
                    }
                    Hostile::ManyCommands(n) => {
                        let mut body = String::from(SMALL_INFO);
                        body.push_str("# Commandstats\r\n");
                        for i in 0..n {
                            body.push_str(&format!("cmdstat_evil{i}:calls=1,usec=2,usec_per_call=2.00\r\n"));
                        }
                        bulk(&body)
                    }
                    Hostile::EndlessBulk => {
                        if writer.write_all(b"$999999999999\r\n").is_err() {
                            return;
                        }
                        let chunk = vec![b'x'; 64 * 1024];
                        // Until the client hangs up (or the test ends).
                        while !stop.load(Ordering::Relaxed) && writer.write_all(&chunk).is_ok() {}
                        return;
                    }
                }
            }
            n if n.starts_with("INFO") => bulk(SMALL_INFO),
            _ => b"-ERR unknown command\r\n".to_vec(),
        };
        if writer.write_all(&reply).is_err() {
            return;
        }
    }
}

fn assert_capped(mode: Hostile) {
    let fake = FakeRedis::start(mode);
    let target = fake.addr.to_string();
    let mut bin = ChildExporter::start(&["--redis.addr", &target, "--no-collector.tenderly.keys"]);
    for attempt in 0..3 {
        let m = bin.metrics();
        assert_eq!(m.value("redis_up", &[]), Some(0.0), "{mode:?} attempt {attempt}: {}", m.text);
        assert_eq!(
            m.value("tenderly_exporter_collector_success", &[("target", "redis"), ("collector", "redis")]),
            Some(0.0),
            "{mode:?} attempt {attempt}: {}",
            m.text
        );
        // Past the reconnect backoff, so every attempt reaches INFO ALL again.
        thread::sleep(Duration::from_millis(600));
    }
    assert!(fake.info_all_count() >= 1, "{mode:?}: the exporter never asked INFO ALL");
    assert!(bin.alive(), "{mode:?}: the exporter died:\n{}", bin.log());
    assert_eq!(http_request(bin.addr, "GET", "/-/healthy", &[]).status, 200);
    let log = bin.log();
    assert!(log.contains("reply from redis exceeded 4194304 bytes"), "{mode:?}: no cap in the log:\n{log}");
    assert!(log.contains("kind=reply_too_large"), "{mode:?}: {log}");
    let peak = bin.peak_rss();
    println!("{mode:?}: exporter peak RSS (VmHWM) {:.1} MiB", peak as f64 / 1048576.0);
    assert!(peak < MEMORY_MAX, "{mode:?}: peak RSS {peak} bytes is above MemoryMax=128M");
    assert!(peak < HOSTILE_PEAK_BOUND, "{mode:?}: peak RSS {peak} bytes is above half of MemoryMax");
}

/// Before the cap: RSS 127 MiB, peak 177 MiB for a 50 MB INFO.
#[test]
fn a_50_mb_info_is_refused_within_memory_max() {
    assert_capped(Hostile::HugeInfo(50 * 1000 * 1000));
}

/// Before the cap: 3.0 GB peak within one 30 s deadline.
#[test]
fn an_endless_bulk_string_is_refused_within_memory_max() {
    assert_capped(Hostile::EndlessBulk);
}

/// A dead target (a closed port) scraped once a second: one warning, however
/// the error text changes (the reconnect backoff's countdown used to make every
/// other scrape a "new" error: 13 warnings in 15 scrapes).
#[test]
fn a_dead_target_scraped_every_second_warns_once() {
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    // Nothing listens there any more: connection refused.
    let target = dead.to_string();
    let bin = ChildExporter::start(&["--redis.addr", &target]);
    let before = bin.log().lines().count();
    for _ in 0..12 {
        let m = bin.metrics();
        assert_eq!(m.value("redis_up", &[]), Some(0.0), "{}", m.text);
        thread::sleep(Duration::from_secs(1));
    }
    let log = bin.log();
    let warnings: Vec<&str> = log.lines().skip(before).filter(|l| l.contains("level=warn")).collect();
    println!("warn lines in 12 one-per-second scrapes of a dead target: {}\n{}", warnings.len(), warnings.join("\n"));
    assert_eq!(warnings.len(), 1, "expected exactly one warning:\n{log}");
    assert!(warnings[0].contains("scrape failed") && warnings[0].contains("kind=connect"), "{}", warnings[0]);
}

/// The cardinality cap end to end: 5,000 made-up commands (350 KB, under the
/// reply cap) give 1024 command rows and a counter of what was left out, which
/// keeps counting across scrapes.
#[test]
fn made_up_commands_are_capped_and_the_drop_is_counted_per_target() {
    let fake = FakeRedis::start(Hostile::ManyCommands(5000));
    let target = fake.addr.to_string();
    let bin = ChildExporter::start(&["--redis.addr", &target, "--no-collector.tenderly.keys"]);
    let dropped = [("target", "redis"), ("family", "commandstats")];
    let first = bin.metrics();
    assert_eq!(first.value("redis_up", &[]), Some(1.0), "{}", first.text);
    assert_eq!(first.count("redis_commands_total"), 1024, "{}", first.text);
    // calls and usec per row: (5000 - 1024) * 2 series left out per scrape.
    assert_eq!(first.value("tenderly_exporter_series_dropped_total", &dropped), Some(7952.0), "{}", first.text);
    let second = bin.metrics();
    assert_eq!(second.value("tenderly_exporter_series_dropped_total", &dropped), Some(2.0 * 7952.0));
    println!(
        "5000 commands: {} series exported in all, 7952 dropped per scrape",
        second.text.lines().filter(|l| !l.starts_with('#')).count()
    );
}
