//! Database profiler (`<db>.system.profile`) turned into true counters and a
//! duration histogram per `{db, op}`.
//!
//! Other exporters count the profiler documents of the last N seconds on every
//! scrape and type the result as a counter; that double-counts when scrapes
//! are closer than N and misses documents when they are further apart. Here
//! each database keeps a **high-water mark** on `ts` between scrapes
//! ([`DbProfile`], owned by the client, one per profiled database), and every
//! profiler document is counted exactly once:
//!
//! * `ts` is a Date with millisecond precision and several documents can share
//!   one millisecond, so the next query uses `$gte` on the mark (a document
//!   written later in the same millisecond is not missed), and the documents
//!   already counted *at exactly that millisecond* are remembered as a small
//!   multiset of fingerprints (not double counted). A fingerprint is a 64-bit
//!   hash of the fields in [`FINGERPRINT_FIELDS`] that the read returned;
//!   profiler documents are immutable, so a document reads the same on every
//!   scrape. Because it is a multiset, two documents that are identical in
//!   every fingerprinted field (two 0 ms finds on one collection in one
//!   millisecond) are still counted twice: a re-read counts only how many
//!   *more* copies it sees than before. Fingerprints are never exported.
//! * Work per scrape is capped: the client reads at most [`DbProfile::limit`]
//!   documents (default [`DEFAULT_SCRAPE_LIMIT`]; set it with
//!   [`DbProfile::with_limit`] to the limit the `find` uses) sorted by `ts`
//!   ascending. When the cap is hit the rest is not lost: the next scrape
//!   continues from the new mark, and a page cut in the middle of a
//!   millisecond is completed by the next `$gte` read.
//!   `mongodb_profiler_scrape_limit_reached_total` counts capped reads (a
//!   steadily rising value means the exporter is falling behind). The one
//!   lossy edge: when a whole page is documents of a single millisecond that
//!   were all counted already (more documents in one millisecond than a page
//!   holds), the mark moves 1 ms forward and the rest of that millisecond is
//!   skipped, rather than re-reading the same page forever.
//! * **First scrape: start from now** ([`StartPolicy::FromNow`], the default,
//!   used by [`DbProfile::new`]). The mark starts at the exporter's clock when
//!   the database is first seen, so the profiler's retained backlog is never
//!   counted as a burst after an exporter restart, and the first read is
//!   already an ordinary `{ts: {$gte: <start>}}` page: no special baseline
//!   query, no dependence on sort direction. The price is clock skew between
//!   exporter and server, paid once per database: a server clock ahead by S
//!   seconds counts S seconds of history once, one behind misses its first S
//!   seconds. [`StartPolicy::CountHistory`] instead counts everything still
//!   in `system.profile` once (first filter `{}`).
//! * Counters start at 0 when the exporter starts (a restart is a counter
//!   reset, which Prometheus handles). Every known `op` is emitted from the
//!   first read on, so the first increment is visible to `increase()`; under
//!   `CountHistory` the series first appear *with* the historical total, so
//!   `rate()` does not show it as a burst either.
//!
//! Limitations: `ts` is the server's wall clock; if it steps backwards,
//! documents dated before the mark are not counted until the clock passes the
//! mark again. A profiler write that lands after a later-dated document has
//! already been read (concurrent operations finishing microseconds apart,
//! across a scrape) is dated before the mark and is not counted.
//!
//! The `op` label is bounded to the profiler's op set ([`PROFILER_OPS`]) plus
//! `other`; nothing else from a profiler document (query shape, client,
//! user, namespace beyond the database) ever reaches a label.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use mongodb::bson::{doc, Bson, DateTime, Document};

use super::bson_num::{f64_of, i64_of};
use super::high_water::{self, HighWaterMark};
use crate::metrics::{BaseUnit, Desc, Exposition, Label, Value};

/// Default cap on profiler documents read per database per scrape.
pub const DEFAULT_SCRAPE_LIMIT: usize = 1000;

/// `op` values of profiler documents that keep their name; anything else is
/// counted as `other`.
pub const PROFILER_OPS: [&str; 7] = ["query", "insert", "update", "remove", "getmore", "command", "killcursors"];
const OP_LABELS: [&str; 8] = ["query", "insert", "update", "remove", "getmore", "command", "killcursors", "other"];
const OTHER: usize = 7;

/// Upper bounds of the duration histogram, in seconds (`+Inf` is appended).
pub const DURATION_BUCKETS: [f64; 11] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const N_BUCKETS: usize = DURATION_BUCKETS.len() + 1;

/// Fields hashed into a document's fingerprint: stable, and together nearly
/// unique. The client's projection ([`projection`]) reads only these, which
/// also keeps query text (`command`, possibly patient data) out of the
/// exporter's memory; `client` and `user` only ever enter the hash.
pub const FINGERPRINT_FIELDS: [&str; 18] = [
    "ts",
    "op",
    "ns",
    "millis",
    "client",
    "user",
    "appName",
    "cpuNanos",
    "responseLength",
    "docsExamined",
    "keysExamined",
    "nreturned",
    "nMatched",
    "nModified",
    "ninserted",
    "ndeleted",
    "numYield",
    "queryHash",
];

const OPERATIONS: Desc = Desc::counter(
    "mongodb_profiler_operations_total",
    "Operations recorded by the database profiler (system.profile), counted once each since the exporter started.",
)
.labels(&["db", "op"]);
const DURATION: Desc = Desc::histogram(
    "mongodb_profiler_operation_duration_seconds",
    "Duration of operations recorded by the database profiler (system.profile millis), counted once each since the exporter started.",
)
.unit(BaseUnit::Seconds).labels(&["db", "op"]);
const LIMIT_REACHED: Desc = Desc::counter(
    "mongodb_profiler_scrape_limit_reached_total",
    "Scrapes that read the per-scrape cap of profiler documents; the rest is read by later scrapes.",
)
.labels(&["db"]);
const HIGH_WATER_MARK: Desc = Desc::gauge(
    "mongodb_profiler_high_water_mark_timestamp_seconds",
    "Timestamp (ts) of the newest profiler document the exporter has read; far behind now means the exporter is falling behind.",
)
.unit(BaseUnit::Seconds).labels(&["db"]);
const LEVEL: Desc = Desc::gauge(
    "mongodb_profiling_level",
    "Profiling level of the database: 0 off, 1 slow operations only, 2 all operations (profile command, was).",
)
.labels(&["db"]);
const SLOW_THRESHOLD: Desc = Desc::gauge(
    "mongodb_profiling_slow_threshold_seconds",
    "Duration above which an operation counts as slow and is profiled at level 1 (profile command, slowms).",
)
.unit(BaseUnit::Seconds)
.labels(&["db"]);

const ALL: [&Desc; 6] = [&OPERATIONS, &DURATION, &LIMIT_REACHED, &HIGH_WATER_MARK, &LEVEL, &SLOW_THRESHOLD];

/// Where counting starts for a database the exporter has not seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPolicy {
    /// From the exporter's clock when the state is created; the retained
    /// backlog is not counted.
    #[default]
    FromNow,
    /// From a given Unix time in milliseconds (what `FromNow` resolves to;
    /// tests use it to be deterministic).
    FromMillis(i64),
    /// Every document still in `system.profile`, once.
    CountHistory,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct OpStats {
    count: u64,
    /// Observations with a usable `millis` (the histogram's count).
    timed: u64,
    /// Sum of `millis`; kept in ms so integer durations add up exactly.
    sum_ms: f64,
    /// Per-bucket (not cumulative) observations, the last one `+Inf`.
    buckets: [u64; N_BUCKETS],
}

impl OpStats {
    fn observe(&mut self, millis: Option<f64>) {
        self.count += 1;
        let Some(ms) = millis else { return };
        self.timed += 1;
        self.sum_ms += ms;
        let secs = ms / 1000.0;
        let idx = DURATION_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(N_BUCKETS - 1);
        self.buckets[idx] += 1;
    }
}

/// Cumulative profiler state of one database, kept by the client between
/// scrapes (the only target-derived state that outlives a scrape, see
/// DESIGN.md §1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbProfile {
    db: String,
    limit: usize,
    /// Whether a read has been ingested (counters are emitted from then on).
    started: bool,
    /// Milliseconds of the newest `ts` read so far (or the start under
    /// `FromNow`); `None` only under `CountHistory` before the first document.
    mark_ms: Option<i64>,
    /// How many documents with each fingerprint were counted at the mark.
    seen_at_mark: HashMap<u64, u32>,
    ops: [OpStats; 8],
    limit_reached: u64,
    /// Documents without a Date `ts` (cannot be placed against the mark).
    pub malformed_docs: u64,
    level: Option<i64>,
    slow_ms: Option<f64>,
}

impl DbProfile {
    /// State for database `db`, starting from now ([`StartPolicy::FromNow`]).
    pub fn new(db: &str) -> Self {
        Self::with_policy(db, StartPolicy::FromNow)
    }

    pub fn with_policy(db: &str, policy: StartPolicy) -> Self {
        let mark_ms = match policy {
            StartPolicy::FromNow => Some(now_millis()),
            StartPolicy::FromMillis(ms) => Some(ms),
            StartPolicy::CountHistory => None,
        };
        DbProfile { db: db.to_owned(), limit: DEFAULT_SCRAPE_LIMIT, mark_ms, ..DbProfile::default() }
    }

    /// Overrides the per-scrape document cap (at least 1).
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// The profiling level from the last `profile: -1` (`was`), if read.
    pub fn level(&self) -> Option<i64> {
        self.level
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    /// The `limit` for the next `find` (the cap on work per scrape).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The filter for the next `find` on `<db>.system.profile`:
    /// `{ts: {$gte: <mark>}}`, or `{}` while there is no mark yet.
    pub fn next_filter(&self) -> Document {
        match self.mark_ms {
            Some(ms) => doc! { "ts": { "$gte": DateTime::from_millis(ms) } },
            None => Document::new(),
        }
    }

    /// The sort for every `find`: oldest first, so a capped page ends at the
    /// new mark and the next page continues from it.
    pub fn sort() -> Document {
        doc! { "ts": 1 }
    }

    /// Folds newly read profiler documents into the counters. Documents may
    /// come in any order (they are sorted here); documents already counted,
    /// or dated before the mark, are ignored.
    pub fn ingest(&mut self, docs: &[Document]) {
        let mut mark = HighWaterMark { mark_ms: self.mark_ms, seen_at_mark: std::mem::take(&mut self.seen_at_mark) };
        let fold = mark.fold(docs, "ts", self.limit, |d| high_water::fingerprint(d, &FINGERPRINT_FIELDS));
        self.mark_ms = mark.mark_ms;
        self.seen_at_mark = mark.seen_at_mark;
        self.started = true;
        self.malformed_docs += fold.malformed;
        self.limit_reached += u64::from(fold.limit_reached);
        for d in fold.new {
            self.count(d);
        }
    }

    fn count(&mut self, d: &Document) {
        let op = match d.get("op") {
            Some(Bson::String(op)) => PROFILER_OPS.iter().position(|k| k == op).unwrap_or(OTHER),
            _ => OTHER,
        };
        let millis = f64_of(d.get("millis")).filter(|ms| *ms >= 0.0);
        self.ops[op].observe(millis);
    }

    /// The `{profile: -1}` reply (`was`, `slowms`); an error reply or a field
    /// of the wrong type leaves the previous value.
    pub fn set_level(&mut self, reply: &Document) {
        if f64_of(reply.get("ok")).is_some_and(|ok| ok < 1.0) {
            return;
        }
        if let Some(was) = i64_of(reply.get("was")).filter(|w| (0..=2).contains(w)) {
            self.level = Some(was);
        }
        if let Some(slow) = f64_of(reply.get("slowms")).filter(|s| *s >= 0.0) {
            self.slow_ms = Some(slow);
        }
    }

    /// Operations counted so far for `op` (an unknown op reads `other`).
    pub fn operations(&self, op: &str) -> u64 {
        self.ops[op_index(op)].count
    }

    /// Unix milliseconds of the high-water mark.
    pub fn high_water_mark_millis(&self) -> Option<i64> {
        self.mark_ms
    }

    /// Histogram of `op`: (sum in seconds, count, per-bucket counts ending
    /// with `+Inf`), as [`Value::Histogram`] wants it.
    pub fn duration_histogram(&self, op: &str) -> Value {
        let s = &self.ops[op_index(op)];
        let mut buckets: Vec<(f64, u64)> = DURATION_BUCKETS.iter().copied().zip(s.buckets).collect();
        buckets.push((f64::INFINITY, s.buckets[N_BUCKETS - 1]));
        Value::Histogram { sum: s.sum_ms / 1000.0, count: s.timed, buckets }
    }
}

fn now_millis() -> i64 {
    // A clock before 1970 is a broken host; start at the epoch (count all).
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn op_index(op: &str) -> usize {
    PROFILER_OPS.iter().position(|k| *k == op).unwrap_or(OTHER)
}

/// The projection for the client's `find`: exactly the fingerprint fields.
pub fn projection() -> Document {
    FINGERPRINT_FIELDS.iter().map(|f| ((*f).to_owned(), Bson::Int32(1))).collect()
}

/// Emits the profiler families of every tracked database.
pub fn encode(profiles: &[DbProfile], out: &mut Exposition) {
    for p in profiles {
        let db = || -> Vec<Label> { vec![("db", Cow::Owned(p.db.clone()))] };
        if let Some(level) = p.level {
            out.add(&LEVEL, db(), level);
        }
        if let Some(ms) = p.slow_ms {
            out.add(&SLOW_THRESHOLD, db(), ms / 1000.0);
        }
        if !p.started {
            continue;
        }
        for op in OP_LABELS {
            let labels = || -> Vec<Label> { vec![("db", Cow::Owned(p.db.clone())), ("op", Cow::Borrowed(op))] };
            out.add(&OPERATIONS, labels(), p.operations(op));
            out.add(&DURATION, labels(), p.duration_histogram(op));
        }
        out.add(&LIMIT_REACHED, db(), p.limit_reached);
        if let Some(ms) = p.mark_ms {
            out.add(&HIGH_WATER_MARK, db(), ms as f64 / 1000.0);
        }
    }
}

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    ALL.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64, op: &str, millis: i32, tag: &str) -> Document {
        doc! {"ts": DateTime::from_millis(ms), "op": op, "millis": millis, "ns": "app.c", "client": tag}
    }

    #[test]
    fn equal_millisecond_documents_split_across_reads_count_once_each() {
        let mut p = DbProfile::with_policy("app", StartPolicy::CountHistory);
        let (a, b, c) = (at(1000, "query", 1, "a"), at(1000, "query", 1, "b"), at(1001, "insert", 1, "c"));
        p.ingest(std::slice::from_ref(&a));
        assert_eq!(p.next_filter(), doc! {"ts": {"$gte": DateTime::from_millis(1000)}});
        p.ingest(&[a.clone(), b.clone()]);
        p.ingest(&[a, b, c]);
        assert_eq!((p.operations("query"), p.operations("insert")), (2, 1));
    }

    #[test]
    fn a_full_page_of_one_already_counted_millisecond_moves_the_mark() {
        let mut p = DbProfile::with_policy("app", StartPolicy::CountHistory).with_limit(2);
        let page = [at(5, "query", 1, "a"), at(5, "query", 1, "b")];
        p.ingest(&page);
        assert_eq!(p.high_water_mark_millis(), Some(5));
        p.ingest(&page);
        assert_eq!(p.high_water_mark_millis(), Some(6), "stuck page skipped");
        assert_eq!(p.operations("query"), 2);
    }

    #[test]
    fn descriptors_are_well_formed() {
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }
}
