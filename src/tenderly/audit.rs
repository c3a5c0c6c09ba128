//! Audit-log events (`<app db>.auditlogs`) as true counters:
//! `tenderly_audit_events_total{category,success}`.
//!
//! The DBA guide's manual check ("authentication failures in the last 24 h",
//! `{category: "authentication", success: false, timestamp: {$gte: now-24h}}`)
//! is a sliding window; exported as a gauge it cannot be `rate()`d and exported
//! as a counter it double counts. Like the profiler counters
//! ([`crate::collectors::mongodb::profile`]), this keeps a **high-water mark** on
//! `timestamp` between scrapes and counts every audit document exactly once:
//!
//! * The read is `find auditlogs {timestamp: {$gte: <mark>}}`, sorted by
//!   `timestamp` ascending, capped at [`AuditCounter::limit`] documents, with
//!   the projection `{_id: 0, timestamp: 1, category: 1, success: 1}`: nothing
//!   else of an audit document (user, email, IP, resource ids, `additionalData`)
//!   ever reaches the exporter's memory.
//! * `timestamp` has millisecond precision, so `$gte` re-reads the mark's
//!   millisecond and a multiset of fingerprints (a hash of the three projected
//!   fields) remembers how many documents of that millisecond were counted: a
//!   re-read counts only the copies it has not seen. Reads are idempotent: the
//!   same page ingested twice counts nothing the second time.
//! * Capped reads continue from the new mark on the next run;
//!   `tenderly_audit_scrape_limit_reached_total` counts them. A full page of one
//!   already-counted millisecond moves the mark 1 ms forward (the one lossy edge,
//!   as in the profiler).
//! * **Start from now**: the mark starts at the exporter's clock, so the
//!   retained audit history is never counted as a burst after a restart.
//!   Counters start at 0 (a restart is a counter reset). Every
//!   `{category, success}` pair is emitted from the first read on, so the first
//!   increment is visible to `increase()`.
//! * Labels are bounded: `category` is one of the configured categories
//!   ([`DEFAULT_CATEGORIES`], the guide's `authentication` and `data_access`
//!   plus the usual NestJS audit categories) or `other`; `success` is `true`,
//!   `false` or `unknown` (missing or not a boolean).
//!
//! Recommended index (the read is a range scan on it): `db.auditlogs.createIndex({timestamp: 1})`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use mongodb::bson::{doc, Bson, DateTime, Document};

use crate::collectors::mongodb::high_water::{self, HighWaterMark};
use crate::metrics::{BaseUnit, Desc, Exposition, Label};

/// Default cap on audit documents read per run.
pub const DEFAULT_LIMIT: usize = 1000;

/// Most categories that keep their own label value.
pub const MAX_CATEGORIES: usize = 32;

/// `category` values that keep their name (else `other`): the guide's
/// `authentication` and `data_access`, plus the categories a NestJS audit
/// module usually writes.
pub const DEFAULT_CATEGORIES: [&str; 7] =
    ["authentication", "authorization", "data_access", "data_modification", "user_management", "security", "system"];

const SUCCESS_LABELS: [&str; 3] = ["true", "false", "unknown"];

pub const EVENTS: Desc = Desc::counter(
    "tenderly_audit_events_total",
    "Audit-log documents (auditlogs) by category and outcome, each counted once since the exporter started.",
)
.labels(&["category", "success"]);
pub const LIMIT_REACHED: Desc = Desc::counter(
    "tenderly_audit_scrape_limit_reached_total",
    "Audit-log reads that hit the per-run document cap; the rest is read by later runs.",
);
pub const HIGH_WATER_MARK: Desc = Desc::gauge(
    "tenderly_audit_high_water_mark_timestamp_seconds",
    "Timestamp of the newest audit-log document the exporter has counted; far behind now means it is falling behind.",
)
.unit(BaseUnit::Seconds);

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&EVENTS, &LIMIT_REACHED, &HIGH_WATER_MARK]
}

/// Cumulative audit-event counts for one `<db>.<collection>`, kept between
/// scrapes (documented cursor state, DESIGN.md §1).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditCounter {
    db: String,
    collection: String,
    limit: usize,
    categories: Vec<String>,
    started: bool,
    mark_ms: i64,
    seen_at_mark: HashMap<u64, u32>,
    /// `[category index (categories.len() = other)][success index]`.
    counts: Vec<[u64; 3]>,
    limit_reached: u64,
    /// Documents without a Date `timestamp` (never counted).
    pub malformed_docs: u64,
}

impl AuditCounter {
    /// Counts `<db>.<collection>` from now on, with [`DEFAULT_CATEGORIES`].
    pub fn new(db: &str, collection: &str) -> Self {
        Self::starting_at(db, collection, now_millis())
    }

    /// Counts documents dated at or after `start_ms` (tests use it to be deterministic).
    pub fn starting_at(db: &str, collection: &str, start_ms: i64) -> Self {
        let categories: Vec<String> = DEFAULT_CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
        AuditCounter {
            db: db.to_owned(),
            collection: collection.to_owned(),
            limit: DEFAULT_LIMIT,
            counts: vec![[0; 3]; categories.len() + 1],
            categories,
            started: false,
            mark_ms: start_ms,
            seen_at_mark: HashMap::new(),
            limit_reached: 0,
            malformed_docs: 0,
        }
    }

    /// Replaces the category allow-list (at most [`MAX_CATEGORIES`]; counts restart).
    pub fn with_categories(mut self, categories: &[String]) -> Self {
        let mut list: Vec<String> = Vec::new();
        for c in categories.iter().take(MAX_CATEGORIES) {
            if c != "other" && !list.contains(c) {
                list.push(c.clone());
            }
        }
        self.counts = vec![[0; 3]; list.len() + 1];
        self.categories = list;
        self
    }

    /// Overrides the per-run document cap (at least 1).
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// `{timestamp: {$gte: <mark>}}` for the next read.
    pub fn next_filter(&self) -> Document {
        doc! { "timestamp": { "$gte": DateTime::from_millis(self.mark_ms) } }
    }

    /// Only the three fields the counters need.
    pub fn projection() -> Document {
        doc! { "_id": 0, "timestamp": 1, "category": 1, "success": 1 }
    }

    /// The complete `find` command for the next read (`maxTimeMS` from the caller).
    pub fn find_command(&self, max_time_ms: i64) -> Document {
        doc! {
            "find": self.collection.as_str(),
            "filter": self.next_filter(),
            "sort": { "timestamp": 1 },
            "projection": Self::projection(),
            "limit": i64::try_from(self.limit).unwrap_or(i64::MAX),
            "singleBatch": true,
            "maxTimeMS": max_time_ms,
        }
    }

    /// Moves the mark to now without touching the counts: used when this
    /// target stops counting for a while (a primary that stepped down), so
    /// events counted meanwhile by another target are not counted again here.
    pub fn restart_from_now(&mut self) {
        self.mark_ms = self.mark_ms.max(now_millis());
        self.seen_at_mark.clear();
    }

    /// Folds newly read documents into the counters (any order; documents
    /// already counted or dated before the mark are ignored).
    pub fn ingest(&mut self, docs: &[Document]) {
        let mut mark =
            HighWaterMark { mark_ms: Some(self.mark_ms), seen_at_mark: std::mem::take(&mut self.seen_at_mark) };
        let fold = mark
            .fold(docs, "timestamp", self.limit, |d| high_water::fingerprint(d, &["timestamp", "category", "success"]));
        self.mark_ms = mark.mark_ms.unwrap_or(self.mark_ms);
        self.seen_at_mark = mark.seen_at_mark;
        self.started = true;
        self.malformed_docs += fold.malformed;
        self.limit_reached += u64::from(fold.limit_reached);
        for d in fold.new {
            self.count(d);
        }
    }

    fn count(&mut self, d: &Document) {
        let category = match d.get("category") {
            Some(Bson::String(c)) => self.categories.iter().position(|k| k == c).unwrap_or(self.categories.len()),
            _ => self.categories.len(),
        };
        let success = match d.get("success") {
            Some(Bson::Boolean(true)) => 0,
            Some(Bson::Boolean(false)) => 1,
            _ => 2,
        };
        if let Some(row) = self.counts.get_mut(category) {
            row[success] += 1;
        }
    }

    /// Events counted so far for a `category` label value (`other` included)
    /// and a `success` label value (`true`, `false`, `unknown`).
    pub fn events(&self, category: &str, success: &str) -> u64 {
        let c = self.categories.iter().position(|k| k == category).unwrap_or(self.categories.len());
        let s = SUCCESS_LABELS.iter().position(|k| *k == success).unwrap_or(2);
        self.counts.get(c).map_or(0, |row| row[s])
    }

    /// Unix milliseconds of the high-water mark.
    pub fn high_water_mark_millis(&self) -> i64 {
        self.mark_ms
    }

    /// Emits the audit families (nothing before the first read).
    pub fn encode(&self, out: &mut Exposition) {
        if !self.started {
            return;
        }
        let names = self.categories.iter().map(String::as_str).chain(std::iter::once("other"));
        for (category, row) in names.zip(&self.counts) {
            for (success, value) in SUCCESS_LABELS.iter().zip(row) {
                let labels: Vec<Label> =
                    vec![("category", Cow::Owned(category.to_owned())), ("success", Cow::Borrowed(*success))];
                out.add(&EVENTS, labels, *value);
            }
        }
        out.add_plain(&LIMIT_REACHED, self.limit_reached);
        out.add_plain(&HIGH_WATER_MARK, self.mark_ms as f64 / 1000.0);
    }
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ms: i64, category: &str, success: bool) -> Document {
        doc! {"timestamp": DateTime::from_millis(ms), "category": category, "success": success}
    }

    #[test]
    fn identical_documents_in_one_millisecond_count_once_each_across_rereads() {
        let mut a = AuditCounter::starting_at("app", "auditlogs", 1000);
        let page = [ev(1000, "authentication", false), ev(1000, "authentication", false)];
        a.ingest(&page[..1]);
        a.ingest(&page);
        a.ingest(&page);
        assert_eq!(a.events("authentication", "false"), 2);
        a.ingest(&[ev(999, "authentication", false), ev(1001, "data_access", true)]);
        assert_eq!(a.events("authentication", "false"), 2, "before the mark");
        assert_eq!(a.events("data_access", "true"), 1);
    }

    #[test]
    fn unknown_categories_and_non_boolean_success_are_bounded() {
        let mut a = AuditCounter::starting_at("app", "auditlogs", 0);
        a.ingest(&[
            doc! {"timestamp": DateTime::from_millis(5), "category": "jane@example.com", "success": "yes"},
            doc! {"timestamp": DateTime::from_millis(6)},
            doc! {"timestamp": "yesterday", "category": "authentication"},
        ]);
        assert_eq!(a.events("other", "unknown"), 2);
        assert_eq!(a.malformed_docs, 1);
        let mut out = Exposition::new();
        a.encode(&mut out);
        let text = out.render().expect("render");
        assert!(!text.contains("jane"), "{text}");
    }

    #[test]
    fn a_full_page_of_one_counted_millisecond_moves_the_mark() {
        let mut a = AuditCounter::starting_at("app", "auditlogs", 0).with_limit(2);
        let page = [ev(5, "system", true), ev(5, "security", true)];
        a.ingest(&page);
        a.ingest(&page);
        assert_eq!(a.high_water_mark_millis(), 6);
        assert_eq!(a.events("system", "true") + a.events("security", "true"), 2);
    }

    #[test]
    fn descriptors_are_well_formed() {
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }
}
