//! Benchmarks the key-family scanner directly (until it is wired into the scrape):
//! calls `KeyScanner::advance` the way a scrape would, once per simulated scrape,
//! and reports per-call latency (median / p99 / max), calls and wall time per
//! complete pass, and the server-side cost from `INFO commandstats`.
//!
//!   REDIS_PASSWORD=... cargo run --release --example key_scan_bench -- \
//!       --addr 127.0.0.1:6379 [--passes 3] [--budget 50ms] [--scan-count 1000] [--interval 0ms]
//!       [--min-pass-interval 0s]
//!
//! Cadence mode (`--scrapes N`): N scrapes at `--scrape-interval` (default 15s),
//! time compressed by `--compress F` (sleeps and `--min-pass-interval`, default
//! 5m, divided by F; each scrape still runs one budgeted step, so the per-scrape
//! behaviour is the same). Prints the scan's Redis server time per scrape and its
//! share of wall time, the scan's commands per second, pass duration and the
//! oldest pass age seen, all in uncompressed time.
//!
//! Driven by scripts/bench-keys.sh, which starts a private Redis with 1M keys.

use std::time::{Duration, Instant as StdInstant};

use tenderly_exporter::config::{RedisOptions, RedisTarget, Secret};
use tenderly_exporter::metrics::Exposition;
use tenderly_exporter::tenderly::keys::{KeyFamiliesConfig, KeyScanner};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `cmdstat_<name>` calls and usec from INFO commandstats text.
fn cmdstat(text: &str, name: &str) -> (u64, u64) {
    let prefix = format!("cmdstat_{name}:");
    let Some(line) = text.lines().find_map(|l| l.trim().strip_prefix(prefix.as_str())) else { return (0, 0) };
    let field = |f: &str| line.split(',').find_map(|kv| kv.strip_prefix(f)).and_then(|v| v.parse().ok()).unwrap_or(0);
    (field("calls="), field("usec="))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = arg(&args, "--addr", "127.0.0.1:6379");
    if args.iter().any(|a| a == "--scrapes") {
        return cadence(&args).await;
    }
    let passes: u64 = arg(&args, "--passes", "3").parse()?;
    let interval = tenderly_exporter::duration::parse(&arg(&args, "--interval", "0ms"))?;
    let password = std::env::var("REDIS_PASSWORD").ok().filter(|p| !p.is_empty());
    let config = KeyFamiliesConfig {
        budget: arg(&args, "--budget", "50ms"),
        scan_count: arg(&args, "--scan-count", "1000").parse()?,
        min_pass_interval: arg(&args, "--min-pass-interval", "0s"),
        ..KeyFamiliesConfig::default()
    };
    config.validate()?;
    let spec = bench_target(&addr, password.clone());

    let mut info_conn = info_connection(&addr, password.as_deref()).await?;
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut info_conn).await?;
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut info_conn).await?;

    let scanner = key_scanner("bench", spec, config.clone());
    let mut calls: Vec<Duration> = Vec::new();
    let mut per_pass_calls = Vec::new();
    let mut pass_calls = 0u64;
    let mut pass_durations = Vec::new();
    let started = StdInstant::now();
    while scanner.passes() < passes {
        let t = StdInstant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let before = scanner.passes();
        scanner.advance(deadline).await?;
        calls.push(t.elapsed());
        pass_calls += 1;
        if scanner.passes() > before {
            per_pass_calls.push(pass_calls);
            pass_calls = 0;
            let mut out = Exposition::new();
            scanner.encode(&mut out);
            if let Some(v) = out.get("tenderly_redis_key_scan_duration_seconds", &[]) {
                pass_durations.push(v.as_f64());
            }
        }
        if !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err("gave up after 30 minutes".into());
        }
    }
    let commandstats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut info_conn).await?;

    let mut sorted = calls.clone();
    sorted.sort();
    let mut out = Exposition::new();
    scanner.encode(&mut out);
    println!("keys in db0: {dbsize}; budget {}; scan_count {}", config.budget, config.scan_count);
    println!(
        "advance() latency over {} calls: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sorted.len(),
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.99)),
        ms(percentile(&sorted, 1.0))
    );
    println!("advance() calls per pass: {per_pass_calls:?}");
    println!("pass wall time (s, back-to-back scrapes): {pass_durations:.2?}");
    for name in ["scan", "pttl", "memory|usage"] {
        let (n, usec) = cmdstat(&commandstats, name);
        if n > 0 {
            println!(
                "server: {name} calls {n}, total {:.1} ms, {:.2} usec/call, per advance {:.2} ms",
                usec as f64 / 1000.0,
                usec as f64 / n as f64,
                usec as f64 / 1000.0 / calls.len() as f64
            );
        }
    }
    for family in ["session", "jwt", "otp", "ratelimit", "user", "other", "non_tenderly"] {
        let keys = out.get("tenderly_redis_keys", &[("family", family)]).map(|v| v.as_f64()).unwrap_or(-1.0);
        let no_ttl = out.get("tenderly_redis_keys_without_ttl", &[("family", family)]).map(|v| v.as_f64());
        let mem = out.get("tenderly_redis_key_memory_bytes", &[("family", family)]).map(|v| v.as_f64());
        println!("family {family:>12}: keys {keys:>9} without_ttl {no_ttl:?} memory_bytes {mem:?}");
    }
    Ok(())
}

/// The key scanner the exporter would build for `target` (its connection and trust policy).
fn key_scanner(name: &str, target: RedisTarget, config: KeyFamiliesConfig) -> KeyScanner {
    KeyScanner::new(name, target.connection.clone(), target.member_policy(), config)
}

fn bench_target(addr: &str, password: Option<String>) -> RedisTarget {
    RedisTarget::plain(RedisOptions::new(format!("redis://{addr}"), None, password.map(Secret::new)))
}

async fn info_connection(
    addr: &str,
    password: Option<&str>,
) -> Result<redis::aio::MultiplexedConnection, Box<dyn std::error::Error>> {
    let mut url = format!("redis://{addr}");
    if let Some(p) = password {
        url = format!("redis://:{}@{addr}", p.replace('@', "%40"));
    }
    Ok(redis::Client::open(url)?.get_multiplexed_async_connection().await?)
}

/// Calls and total server microseconds of the scan's commands (SCAN, PTTL, MEMORY USAGE).
fn scan_server_cost(commandstats: &str) -> (u64, u64) {
    ["scan", "pttl", "memory|usage"]
        .iter()
        .map(|n| cmdstat(commandstats, n))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// `--scrapes N`: a scrape cadence, compressed, with pacing.
async fn cadence(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let addr = arg(args, "--addr", "127.0.0.1:6379");
    let scrapes: u64 = arg(args, "--scrapes", "40").parse()?;
    let scrape_interval = tenderly_exporter::duration::parse(&arg(args, "--scrape-interval", "15s"))?;
    let compress: f64 = arg(args, "--compress", "15").parse()?;
    if !(compress >= 1.0 && compress.is_finite()) {
        return Err("--compress must be at least 1".into());
    }
    let min_pass_interval = tenderly_exporter::duration::parse(&arg(args, "--min-pass-interval", "10m"))?;
    let scaled = Duration::from_secs_f64(min_pass_interval.as_secs_f64() / compress);
    let password = std::env::var("REDIS_PASSWORD").ok().filter(|p| !p.is_empty());
    let config = KeyFamiliesConfig {
        budget: arg(args, "--budget", "50ms"),
        scan_count: arg(args, "--scan-count", "1000").parse()?,
        min_pass_interval: format!("{}ms", scaled.as_millis()),
        ..KeyFamiliesConfig::default()
    };
    config.validate()?;
    let mut info_conn = info_connection(&addr, password.as_deref()).await?;
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut info_conn).await?;
    let dbsize: u64 = redis::cmd("DBSIZE").query_async(&mut info_conn).await?;
    let scanner = key_scanner("bench", bench_target(&addr, password), config.clone());
    let sleep = Duration::from_secs_f64(scrape_interval.as_secs_f64() / compress);
    let unix = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let started_unix = unix();
    let mut max_age = 0.0f64;
    let mut per_scrape_usec = Vec::new();
    let mut previous = 0u64;
    for _ in 0..scrapes {
        let tick = StdInstant::now();
        // A scrape reads the last complete pass (its age), then the step runs after the answer.
        let mut out = Exposition::new();
        scanner.encode(&mut out);
        let completed = out.get("tenderly_redis_key_scan_last_complete_timestamp_seconds", &[]).map(|v| v.as_f64());
        let age = unix() - completed.unwrap_or(started_unix);
        max_age = max_age.max(age * compress);
        scanner.advance(tokio::time::Instant::now() + Duration::from_secs(10)).await?;
        let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut info_conn).await?;
        let (_, usec) = scan_server_cost(&stats);
        per_scrape_usec.push(usec - previous);
        previous = usec;
        tokio::time::sleep(sleep.saturating_sub(tick.elapsed())).await;
    }
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut info_conn).await?;
    let (calls, usec) = scan_server_cost(&stats);
    let mut out = Exposition::new();
    scanner.encode(&mut out);
    let duration = out.get("tenderly_redis_key_scan_duration_seconds", &[]).map_or(0.0, |v| v.as_f64());
    let completed = out.get("tenderly_redis_key_scan_last_complete_timestamp_seconds", &[]).map(|v| v.as_f64());
    let simulated = scrapes as f64 * scrape_interval.as_secs_f64();
    per_scrape_usec.sort_unstable();
    println!(
        "keys in db0: {dbsize}; {scrapes} scrapes every {scrape_interval:?} (compressed {compress}x); \
         min_pass_interval {min_pass_interval:?}; budget {}",
        config.budget
    );
    println!("passes completed: {}", scanner.passes());
    println!(
        "scan's Redis server time: {:.1} ms total over {calls} commands; per scrape: mean {:.3} ms, max {:.3} ms",
        usec as f64 / 1000.0,
        usec as f64 / 1000.0 / scrapes as f64,
        per_scrape_usec.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!("scan's share of Redis server time: {:.4}% of {simulated:.0} s", usec as f64 / 1e6 / simulated * 100.0);
    println!(
        "exporter scan commands per second: {:.1} ({} commands; client-side wait {:.1} ms)",
        scanner.load().commands() as f64 / simulated,
        scanner.load().commands(),
        scanner.load().round_trip_seconds() * 1000.0
    );
    println!(
        "pass duration: {:.1} s ({:.2} s compressed); pass age at the end: {}; oldest age a scrape saw: {:.0} s \
         (bound: min_pass_interval + one pass = {:.0} s)",
        duration * compress,
        duration,
        completed.map_or("no pass yet".to_string(), |c| format!("{:.0} s", (unix() - c) * compress)),
        max_age,
        min_pass_interval.as_secs_f64() + duration * compress
    );
    Ok(())
}
