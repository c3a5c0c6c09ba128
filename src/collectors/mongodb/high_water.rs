//! The high-water-mark fold shared by the profiler counters (`profile`) and the
//! audit-event counters (`tenderly::audit`): documents with a millisecond date,
//! read with `$gte` on the mark, each counted exactly once across reads.
//!
//! Several documents can share one millisecond, so the documents already
//! counted at exactly the mark are remembered as a multiset of fingerprints;
//! a re-read counts only the copies beyond those seen before. When a capped
//! page holds nothing new and lies entirely in the mark's millisecond, or the
//! multiset grows past its cap, the mark moves 1 ms on (the documented lossy
//! edge) rather than re-reading the same page forever.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use mongodb::bson::Document;

use super::bson_num::date_millis;

/// 64-bit hash of `fields` of a document (those present). Only equality
/// within this process matters (fingerprints never leave memory), so the std
/// hasher with its fixed keys is enough.
pub fn fingerprint(d: &Document, fields: &[&str]) -> u64 {
    let mut stable = Document::new();
    for field in fields {
        if let Some(v) = d.get(field) {
            stable.insert(*field, v.clone());
        }
    }
    let mut hasher = DefaultHasher::new();
    let mut bytes = Vec::new();
    match stable.to_writer(&mut bytes) {
        Ok(()) => bytes.hash(&mut hasher),
        // Not reachable for a document read off the wire; hashing the debug
        // form keeps the function total anyway.
        Err(_) => format!("{stable:?}").hash(&mut hasher),
    }
    hasher.finish()
}

/// Most fingerprints kept for one millisecond; beyond it the mark moves on
/// (memory stays bounded whatever the server sends).
pub const MAX_SEEN_AT_MARK: usize = 100_000;

/// The state that moves: the mark (`None` before anything was read under a
/// "count history" policy) and what was counted at exactly that millisecond.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HighWaterMark {
    pub mark_ms: Option<i64>,
    pub seen_at_mark: HashMap<u64, u32>,
}

/// What one read contributed.
#[derive(Debug)]
pub struct Fold<'a> {
    /// Documents to count, one entry per new copy, oldest first.
    pub new: Vec<&'a Document>,
    /// Documents whose date field was missing or not a date.
    pub malformed: u64,
    /// The read returned a full page (`limit` documents).
    pub limit_reached: bool,
}

impl HighWaterMark {
    /// Folds one read (`docs`, any order, at most `limit` of them) into the mark.
    pub fn fold<'a>(
        &mut self,
        docs: &'a [Document],
        date_field: &str,
        limit: usize,
        fingerprint: impl Fn(&Document) -> u64,
    ) -> Fold<'a> {
        let mut malformed = 0;
        let mut entries: Vec<(i64, u64, &Document)> = Vec::with_capacity(docs.len());
        for d in docs {
            match date_millis(d.get(date_field)) {
                Some(ms) => entries.push((ms, fingerprint(d), d)),
                None => malformed += 1,
            }
        }
        entries.sort_by_key(|(ms, fp, _)| (*ms, *fp));

        let mut new = Vec::new();
        // Entries are grouped by (ms, fingerprint): a group of n copies at the
        // mark counts only the copies beyond those counted before.
        let mut i = 0;
        while i < entries.len() {
            let (ms, fp, d) = entries[i];
            let copies = entries[i..].iter().take_while(|e| e.0 == ms && e.1 == fp).count();
            i += copies;
            let copies = u32::try_from(copies).unwrap_or(u32::MAX);
            let already = match self.mark_ms {
                Some(mark) if ms < mark => continue,
                Some(mark) if ms == mark => self.seen_at_mark.get(&fp).copied().unwrap_or(0),
                _ => 0,
            };
            new.extend((already..copies).map(|_| d));
            if self.mark_ms.is_none_or(|mark| ms > mark) {
                self.mark_ms = Some(ms);
                self.seen_at_mark.clear();
            }
            let seen = self.seen_at_mark.entry(fp).or_insert(0);
            *seen = (*seen).max(copies);
        }

        let limit_reached = docs.len() >= limit;
        if limit_reached {
            let one_ms_page =
                entries.first().map(|e| e.0) == self.mark_ms && entries.last().map(|e| e.0) == self.mark_ms;
            if new.is_empty() && one_ms_page {
                self.skip_rest_of_mark();
            }
        }
        if self.seen_at_mark.len() > MAX_SEEN_AT_MARK {
            self.skip_rest_of_mark();
        }
        Fold { new, malformed, limit_reached }
    }

    /// Moves the mark past its millisecond (the lossy edge, see the module docs).
    pub fn skip_rest_of_mark(&mut self) {
        if let Some(mark) = self.mark_ms {
            self.mark_ms = Some(mark.saturating_add(1));
            self.seen_at_mark.clear();
        }
    }
}
