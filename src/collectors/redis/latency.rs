//! `redis_command_latency_seconds{cmd}`: Redis 7's per-command latency
//! histograms (`LATENCY HISTOGRAM`) as Prometheus histograms, which, unlike
//! the percentiles of INFO latencystats, can be summed across nodes and over
//! time (`histogram_quantile(0.99, sum by (le, cmd) (rate(..._bucket[5m])))`).
//!
//! Redis records each command's duration in an HDR histogram in nanoseconds
//! and reports it on a log-2 scale from 1,024 ns: bucket `k` holds durations up
//! to 1,024 ns × 2^k, printed as whole microseconds (1, 2, 4, 8, 16, 33, 66,
//! 131, ...), with the cumulative count, and only buckets whose cumulative
//! count grew. Here every command gets the same fixed layout, `le` =
//! 1.024 µs × 2^k for k = 0..=[`MAX_BUCKET`] (about 1.07 s, above Redis's 1 s
//! tracking ceiling) plus `+Inf`: a bucket Redis did not print holds the
//! cumulative count of the one before it. `_count` is the reply's `calls`.
//!
//! `LATENCY HISTOGRAM` has no sum. `_sum` is INFO commandstats `usec` of the
//! same command (the same calls, timed by the same clock) when its `calls`
//! equals the histogram's; when they differ (the exporter's own `INFO` is
//! counted by the histogram but not yet by the commandstats it is reading)
//! it is `usec_per_call × _count`. A command without commandstats is left
//! out. Only commands that ran appear (Redis lists no others); at most
//! [`MAX_COMMANDS`] are exported, the rest are counted as dropped series.

use std::borrow::Cow;

use redis::Value;

use super::client::bytes_of;
use super::info::{bounded_label, CommandStat};
use crate::metrics::{BaseUnit, Desc, Exposition, Value as MetricValue};

/// The catalog name of these families (they are read in the `redis` collector's run).
pub const COLLECTOR: &str = "redis_latency_histogram";
/// Highest bucket index: 1.024 µs × 2^20 ≈ 1.07 s.
pub const MAX_BUCKET: usize = 20;
/// Commands exported per scrape (Redis 7.2 has about 410 commands and subcommands).
pub const MAX_COMMANDS: usize = 512;

const LATENCY: Desc = Desc::histogram(
    "redis_command_latency_seconds",
    "Latency of each command that ran since the last CONFIG RESETSTAT, from LATENCY HISTOGRAM (Redis 7+); _sum from INFO commandstats usec.",
)
.unit(BaseUnit::Seconds)
.labels(&["cmd"]);

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&LATENCY]
}

/// One command's histogram as Redis reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandHistogram {
    pub cmd: String,
    pub calls: u64,
    /// Cumulative counts per fixed bucket `0..=MAX_BUCKET`.
    pub cumulative: Vec<u64>,
}

/// Upper bound of bucket `k` in seconds.
pub fn bucket_bound(k: usize) -> f64 {
    1.024e-6 * (1u64 << k) as f64
}

/// The bucket a printed bound (whole microseconds) belongs to: the `k` whose
/// 1.024 µs × 2^k rounds to it. `None` for a value off the scale.
fn bucket_of(usec: i64) -> Option<usize> {
    if usec <= 0 {
        return None;
    }
    let k = ((usec as f64) / 1.024).log2().round();
    (0.0..=MAX_BUCKET as f64).contains(&k).then_some(k as usize)
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => std::str::from_utf8(bytes_of(other)?).ok()?.trim().parse().ok(),
    }
}

/// Pairs of a RESP2 flat array or a RESP3 map.
fn pairs(v: &Value) -> Vec<(&Value, &Value)> {
    match v {
        Value::Array(items) => items.chunks_exact(2).map(|kv| (&kv[0], &kv[1])).collect(),
        Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    }
}

/// `LATENCY HISTOGRAM` (no arguments): every command that ran. Malformed
/// entries are skipped; at most [`MAX_COMMANDS`] are kept, the number left
/// out is returned with them.
pub fn parse_latency_histogram(value: &Value) -> (Vec<CommandHistogram>, usize) {
    let mut out = Vec::new();
    let mut dropped = 0;
    for (name, body) in pairs(value) {
        let Some(cmd) = bytes_of(name).map(String::from_utf8_lossy) else { continue };
        let mut calls = None;
        let mut printed: Vec<(usize, u64)> = Vec::new();
        for (k, v) in pairs(body) {
            match bytes_of(k) {
                Some(b"calls") => calls = int_of(v).and_then(|c| u64::try_from(c).ok()),
                Some(b"histogram_usec") => {
                    for (bound, count) in pairs(v).into_iter().take(4 * MAX_BUCKET) {
                        if let (Some(b), Some(c)) = (int_of(bound).and_then(bucket_of), int_of(count)) {
                            printed.push((b, u64::try_from(c).unwrap_or(0)));
                        }
                    }
                }
                _ => {}
            }
        }
        let Some(calls) = calls else { continue };
        if out.len() >= MAX_COMMANDS {
            dropped += 1;
            continue;
        }
        // Fill the fixed layout; counts are cumulative, so keep them non-decreasing and within calls.
        let mut cumulative = vec![0u64; MAX_BUCKET + 1];
        for (bucket, count) in printed {
            cumulative[bucket] = cumulative[bucket].max(count.min(calls));
        }
        for k in 1..cumulative.len() {
            cumulative[k] = cumulative[k].max(cumulative[k - 1]);
        }
        out.push(CommandHistogram { cmd: cmd.into_owned(), calls, cumulative });
    }
    (out, dropped)
}

/// The histograms with `_sum` from `stats` (INFO commandstats); a command
/// without commandstats is left out (see the module docs).
pub fn encode(histograms: &[CommandHistogram], stats: &[CommandStat], out: &mut Exposition) {
    for h in histograms {
        let Some(stat) = stats.iter().find(|s| s.cmd == h.cmd) else { continue };
        let (Some(usec), Some(stat_calls)) = (stat.usec, stat.calls) else { continue };
        let sum_usec = if stat_calls == h.calls || stat_calls == 0 {
            usec as f64
        } else {
            usec as f64 / stat_calls as f64 * h.calls as f64
        };
        let mut buckets = Vec::with_capacity(MAX_BUCKET + 2);
        let mut previous = 0;
        for (k, cumulative) in h.cumulative.iter().enumerate() {
            buckets.push((bucket_bound(k), cumulative - previous));
            previous = *cumulative;
        }
        buckets.push((f64::INFINITY, h.calls.saturating_sub(previous)));
        let labels = vec![("cmd", Cow::Owned(bounded_label(&h.cmd).into_owned()))];
        out.add(&LATENCY, labels, MetricValue::Histogram { sum: sum_usec / 1e6, count: h.calls, buckets });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn histogram(calls: i64, buckets: &[(i64, i64)]) -> Value {
        Value::Array(vec![
            bulk("calls"),
            Value::Int(calls),
            bulk("histogram_usec"),
            Value::Array(buckets.iter().flat_map(|(b, c)| [Value::Int(*b), Value::Int(*c)]).collect()),
        ])
    }

    #[test]
    fn printed_bounds_map_to_the_fixed_layout() {
        let printed = [1, 2, 4, 8, 16, 33, 66, 131, 264, 524, 1048, 2097];
        for (k, usec) in printed.iter().enumerate() {
            assert_eq!(bucket_of(*usec), Some(k), "{usec}");
        }
        assert_eq!(bucket_of(0), None);
        assert_eq!(bucket_of(i64::MAX), None);
    }

    #[test]
    fn capture_from_redis_7_0_is_cumulative_and_complete() {
        // `LATENCY HISTOGRAM` on redis-server 7.0.15 (ping: 127 calls).
        let reply = Value::Array(vec![bulk("ping"), histogram(127, &[(1, 20), (2, 105), (4, 126), (33, 127)])]);
        let (hs, dropped) = parse_latency_histogram(&reply);
        assert_eq!(dropped, 0);
        let h = &hs[0];
        assert_eq!((h.cmd.as_str(), h.calls), ("ping", 127));
        assert_eq!(&h.cumulative[..6], &[20, 105, 126, 126, 126, 127]);
        assert_eq!(h.cumulative[MAX_BUCKET], 127);
        let stats =
            vec![CommandStat { cmd: "ping".into(), calls: Some(127), usec: Some(273), ..CommandStat::default() }];
        let mut out = Exposition::new();
        encode(&hs, &stats, &mut out);
        let Some(MetricValue::Histogram { sum, count, buckets }) =
            out.get("redis_command_latency_seconds", &[("cmd", "ping")])
        else {
            panic!("no histogram")
        };
        assert_eq!(*count, 127);
        assert!((sum - 273e-6).abs() < 1e-12);
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 127);
        assert_eq!(buckets.len(), MAX_BUCKET + 2);
    }

    #[test]
    fn hostile_replies_are_bounded() {
        // Decreasing counts, counts above calls, negative and huge bounds, no calls.
        let reply = Value::Array(vec![
            bulk("get"),
            histogram(10, &[(1, 8), (2, 3), (4, 1_000), (-5, 1), (1 << 40, 2)]),
            bulk("nocalls"),
            Value::Array(vec![bulk("histogram_usec"), Value::Array(vec![])]),
        ]);
        let (hs, _) = parse_latency_histogram(&reply);
        assert_eq!(hs.len(), 1);
        assert!(hs[0].cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert!(hs[0].cumulative.iter().all(|c| *c <= 10));
        let many = Value::Array(
            (0..MAX_COMMANDS + 5).flat_map(|i| [bulk(&format!("c{i}")), histogram(1, &[(1, 1)])]).collect(),
        );
        let (hs, dropped) = parse_latency_histogram(&many);
        assert_eq!((hs.len(), dropped), (MAX_COMMANDS, 5));
    }
}
