//! Opt-in per-collection figures: `top` (admin, mongod only), `$collStats`
//! (`storageStats`) and `$indexStats`, labelled `{db, collection[, index]}`.
//!
//! Bounded labels, because collection names are user data and a scrape must
//! not grow without limit:
//! - at most `max_collections` collections in total per scrape, chosen
//!   deterministically: ranked by `top` total time (busiest first) when `top`
//!   ran, then by name; without `top`, by name ([`select`]);
//! - a database name is at most 64 bytes and a collection name at most
//!   [`MAX_COLLECTION_LABEL_BYTES`], both made of `[A-Za-z0-9_.-]` only: any
//!   other name is skipped (never rewritten, so two names cannot collide);
//! - internal namespaces are skipped: the `admin`, `local` and `config`
//!   databases (oplog, sessions, users: `mongodb_oplog_*` covers the oplog) and
//!   `system.*` collections (profiler, views, buckets), plus `top`'s `$cmd`
//!   pseudo-namespaces (excluded by the charset);
//! - at most [`MAX_INDEXES_PER_COLLECTION`] indexes per collection, by name.
//!
//! `top` reports cumulative microseconds and counts per operation type since
//! the server started; `queries`, `getmore`, `insert`, `update`, `remove` and
//! `commands` partition `total`, so `sum by (collection)` over `type` is the
//! total (which is therefore not exported). `readLock`/`writeLock` classify the
//! same operations by the lock they took and are a separate family.
//!
//! Through a mongos, `$collStats` and `$indexStats` return one document per
//! shard: the figures are summed (index count: the largest).
//! Every parser is total: malformed documents give fewer series, never a panic.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use mongodb::bson::{Bson, Document};

use super::bson_num::{count_at, doc_at, num, Num};
use crate::metrics::{BaseUnit, Desc, Exposition, Label};

/// Longest database label (MongoDB's own limit is 63 bytes).
pub const MAX_DB_LABEL_BYTES: usize = 64;
/// Longest collection label; longer names are skipped.
pub const MAX_COLLECTION_LABEL_BYTES: usize = 120;
/// Longest index label; longer names are skipped.
pub const MAX_INDEX_LABEL_BYTES: usize = 120;
/// At most this many indexes per collection get a series.
pub const MAX_INDEXES_PER_COLLECTION: usize = 20;

/// `top` operation types that partition `total`, and their label values.
const TOP_TYPES: [(&str, &str); 6] = [
    ("queries", "queries"),
    ("getmore", "getmore"),
    ("insert", "insert"),
    ("update", "update"),
    ("remove", "remove"),
    ("commands", "commands"),
];
/// `top` lock classes and their label values.
const TOP_LOCKS: [(&str, &str); 2] = [("readLock", "read"), ("writeLock", "write")];

const TOP_TIME: Desc = Desc::counter(
    "mongodb_top_time_seconds_total",
    "Time the server spent on operations on the collection by type (queries, getmore, insert, update, remove, commands), from top.",
)
.unit(BaseUnit::Seconds).labels(&["db", "collection", "type"]);
const TOP_OPS: Desc = Desc::counter(
    "mongodb_top_operations_total",
    "Operations on the collection by type (queries, getmore, insert, update, remove, commands), from top.",
)
.labels(&["db", "collection", "type"]);
const TOP_LOCK_TIME: Desc = Desc::counter(
    "mongodb_top_lock_time_seconds_total",
    "Time spent on operations on the collection that held a read or write lock, from top readLock and writeLock.",
)
.unit(BaseUnit::Seconds)
.labels(&["db", "collection", "lock"]);
const TOP_LOCK_OPS: Desc = Desc::counter(
    "mongodb_top_lock_operations_total",
    "Operations on the collection that held a read or write lock, from top readLock and writeLock.",
)
.labels(&["db", "collection", "lock"]);
const DOCUMENTS: Desc =
    Desc::gauge("mongodb_collection_documents", "Documents in the collection, from $collStats storageStats.count.")
        .labels(&["db", "collection"]);
const SIZE: Desc = Desc::gauge(
    "mongodb_collection_size_bytes",
    "Uncompressed size of the collection's documents, from $collStats storageStats.size.",
)
.unit(BaseUnit::Bytes)
.labels(&["db", "collection"]);
const STORAGE_SIZE: Desc = Desc::gauge(
    "mongodb_collection_storage_size_bytes",
    "Disk space allocated to the collection (compressed, including free space), from $collStats storageStats.storageSize.",
)
.unit(BaseUnit::Bytes).labels(&["db", "collection"]);
const INDEX_SIZE: Desc = Desc::gauge(
    "mongodb_collection_index_size_bytes",
    "Disk space allocated to the collection's indexes, from $collStats storageStats.totalIndexSize.",
)
.unit(BaseUnit::Bytes)
.labels(&["db", "collection"]);
const INDEXES: Desc =
    Desc::gauge("mongodb_collection_indexes", "Indexes on the collection, from $collStats storageStats.nindexes.")
        .labels(&["db", "collection"]);
const INDEX_ACCESSES: Desc = Desc::counter(
    "mongodb_index_accesses_total",
    "Operations that used the index since the server started or the index was created, from $indexStats accesses.ops.",
)
.labels(&["db", "collection", "index"]);

const ALL: [&Desc; 10] = [
    &TOP_TIME,
    &TOP_OPS,
    &TOP_LOCK_TIME,
    &TOP_LOCK_OPS,
    &DOCUMENTS,
    &SIZE,
    &STORAGE_SIZE,
    &INDEX_SIZE,
    &INDEXES,
    &INDEX_ACCESSES,
];

/// A collection: database and collection name, both label-safe.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace {
    pub db: String,
    pub collection: String,
}

impl Namespace {
    /// `db.coll` split at the first dot, if both parts are label-safe and not internal.
    pub fn from_full(ns: &str) -> Option<Namespace> {
        let (db, collection) = ns.split_once('.')?;
        Namespace::new(db, collection)
    }

    /// The namespace if both names are label-safe and it is not internal.
    pub fn new(db: &str, collection: &str) -> Option<Namespace> {
        let ok = safe_name(db, MAX_DB_LABEL_BYTES) && safe_name(collection, MAX_COLLECTION_LABEL_BYTES);
        (ok && !is_internal(db, collection)).then(|| Namespace { db: db.to_owned(), collection: collection.to_owned() })
    }

    fn labels(&self) -> Vec<Label> {
        vec![("db", Cow::Owned(self.db.clone())), ("collection", Cow::Owned(self.collection.clone()))]
    }
}

/// Whether `name` may become a label value: 1..=`max` bytes of `[A-Za-z0-9_.-]`.
pub fn safe_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Internal databases and `system.*` collections.
pub fn is_internal(db: &str, collection: &str) -> bool {
    matches!(db, "admin" | "local" | "config") || collection.starts_with("system.")
}

/// Whether the exporter looks at the collections of database `db` at all.
pub fn wanted_db(db: &str) -> bool {
    safe_name(db, MAX_DB_LABEL_BYTES) && !matches!(db, "admin" | "local" | "config")
}

/// One `{time, count}` pair of `top`: time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopPair {
    pub time_micros: Num,
    pub count: Num,
}

/// One namespace of `top`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopEntry {
    pub ns: Namespace,
    /// `total.time` in microseconds (ranking only; 0 when absent).
    pub total_micros: f64,
    /// By operation type label (`queries`, ..., `commands`).
    pub ops: Vec<(&'static str, TopPair)>,
    /// By lock label (`read`, `write`).
    pub locks: Vec<(&'static str, TopPair)>,
}

fn top_pair(entry: &Document, key: &str) -> Option<TopPair> {
    let d = entry.get_document(key).ok()?;
    Some(TopPair { time_micros: count_at(d, "time")?, count: count_at(d, "count")? })
}

/// Reads the `top` reply (`totals` keyed by `db.coll`): label-safe, non-internal
/// namespaces, busiest (`total.time`) first, then by name. Uncapped: see [`select`].
pub fn parse_top(reply: &Document) -> Vec<TopEntry> {
    let Some(totals) = doc_at(reply, "totals") else { return Vec::new() };
    let mut entries: Vec<TopEntry> = totals
        .iter()
        .filter_map(|(ns, value)| {
            let entry = value.as_document()?;
            let ns = Namespace::from_full(ns)?;
            let total_micros = top_pair(entry, "total").map_or(0.0, |p| p.time_micros.as_f64());
            let ops = TOP_TYPES.iter().filter_map(|(key, label)| Some((*label, top_pair(entry, key)?))).collect();
            let locks = TOP_LOCKS.iter().filter_map(|(key, label)| Some((*label, top_pair(entry, key)?))).collect();
            Some(TopEntry { ns, total_micros, ops, locks })
        })
        .collect();
    entries.sort_by(|a, b| b.total_micros.total_cmp(&a.total_micros).then_with(|| a.ns.cmp(&b.ns)));
    entries
}

/// Collection names of one database's `listCollections` reply (first batch),
/// label-safe and not internal; views and time-series buckets excluded.
pub fn parse_list_collections(db: &str, reply: &Document) -> Vec<Namespace> {
    let batch = doc_at(reply, "cursor").and_then(|c| c.get_array("firstBatch").ok());
    let docs: Vec<&Document> = batch.into_iter().flatten().filter_map(Bson::as_document).collect();
    parse_list_collection_docs(db, docs)
}

/// [`parse_list_collections`] over the documents of the cursor.
pub fn parse_list_collection_docs<'a>(db: &str, docs: impl IntoIterator<Item = &'a Document>) -> Vec<Namespace> {
    let mut names: Vec<Namespace> = docs
        .into_iter()
        .filter(|d| d.get_str("type").map_or(true, |t| t == "collection"))
        .filter_map(|d| Namespace::new(db, d.get_str("name").ok()?))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The collections that get series this scrape, at most `max`: those `top`
/// ranks busiest first, then by name. `listed` (from `listCollections`) is the
/// candidate set when present; otherwise `top`'s namespaces are.
pub fn select(listed: Option<&[Namespace]>, top: Option<&[TopEntry]>, max: usize) -> Vec<Namespace> {
    let mut chosen: Vec<Namespace> = Vec::new();
    let mut seen = BTreeSet::new();
    let candidates: BTreeSet<&Namespace> = listed.unwrap_or_default().iter().collect();
    // `top` entries are already busiest first.
    for entry in top.unwrap_or_default() {
        if (listed.is_none() || candidates.contains(&entry.ns)) && seen.insert(entry.ns.clone()) {
            chosen.push(entry.ns.clone());
        }
    }
    for ns in candidates {
        if seen.insert(ns.clone()) {
            chosen.push(ns.clone());
        }
    }
    chosen.truncate(max);
    chosen
}

/// The `storageStats` figures of one collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollStats {
    pub ns: Option<Namespace>,
    pub documents: Option<Num>,
    pub size_bytes: Option<Num>,
    pub storage_size_bytes: Option<Num>,
    pub index_size_bytes: Option<Num>,
    pub indexes: Option<Num>,
}

fn add(a: Option<Num>, b: Option<Num>) -> Option<Num> {
    match (a, b) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => {
            Some(x.checked_add(y).map_or(Num::Float(x as f64 + y as f64), Num::Int))
        }
        (Some(x), Some(y)) => Num::from_f64(x.as_f64() + y.as_f64()),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_num(a: Option<Num>, b: Option<Num>) -> Option<Num> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.as_f64() > x.as_f64() { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Reads the `$collStats: {storageStats: {}}` documents of `ns` (one per shard
/// through a mongos; summed). `None` when no document has `storageStats`.
pub fn parse_coll_stats(ns: &Namespace, docs: &[Document]) -> Option<CollStats> {
    let mut out = CollStats { ns: Some(ns.clone()), ..CollStats::default() };
    let mut any = false;
    for stats in docs.iter().filter_map(|d| doc_at(d, "storageStats")) {
        any = true;
        // Sizes may be scaled when a `scale` was requested; the exporter never asks for one.
        out.documents = add(out.documents, count_at(stats, "count"));
        out.size_bytes = add(out.size_bytes, count_at(stats, "size"));
        out.storage_size_bytes = add(out.storage_size_bytes, count_at(stats, "storageSize"));
        out.index_size_bytes = add(out.index_size_bytes, count_at(stats, "totalIndexSize"));
        out.indexes = max_num(out.indexes, count_at(stats, "nindexes"));
    }
    any.then_some(out)
}

/// One index's accesses.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStats {
    pub ns: Namespace,
    pub index: String,
    pub accesses: Num,
}

/// Reads the `$indexStats` documents of `ns`: label-safe index names, at most
/// [`MAX_INDEXES_PER_COLLECTION`] by name, accesses summed over shards.
pub fn parse_index_stats(ns: &Namespace, docs: &[Document]) -> Vec<IndexStats> {
    let mut by_name: BTreeMap<&str, Option<Num>> = BTreeMap::new();
    for d in docs {
        let Ok(name) = d.get_str("name") else { continue };
        if !safe_name(name, MAX_INDEX_LABEL_BYTES) {
            continue;
        }
        let ops = d.get_document("accesses").ok().and_then(|a| a.get("ops")).and_then(num).and_then(Num::non_negative);
        let Some(ops) = ops else { continue };
        let slot = by_name.entry(name).or_insert(None);
        *slot = add(*slot, Some(ops));
    }
    by_name
        .into_iter()
        .filter_map(|(name, ops)| Some(IndexStats { ns: ns.clone(), index: name.to_owned(), accesses: ops? }))
        .take(MAX_INDEXES_PER_COLLECTION)
        .collect()
}

/// What the three opt-in collectors read this scrape (each part empty when off or refused).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionStats {
    pub top: Vec<TopEntry>,
    pub collections: Vec<CollStats>,
    pub indexes: Vec<IndexStats>,
}

/// Emits the per-collection families.
pub fn encode(stats: &CollectionStats, out: &mut Exposition) {
    for entry in &stats.top {
        for (desc_time, desc_ops, key, pairs) in
            [(&TOP_TIME, &TOP_OPS, "type", &entry.ops), (&TOP_LOCK_TIME, &TOP_LOCK_OPS, "lock", &entry.locks)]
        {
            for (label, pair) in pairs {
                let labels = || {
                    let mut l = entry.ns.labels();
                    l.push((key, Cow::Borrowed(*label)));
                    l
                };
                out.add(desc_time, labels(), pair.time_micros.div_f64(1e6));
                out.add(desc_ops, labels(), pair.count);
            }
        }
    }
    for c in &stats.collections {
        let Some(ns) = &c.ns else { continue };
        let pairs = [
            (&DOCUMENTS, c.documents),
            (&SIZE, c.size_bytes),
            (&STORAGE_SIZE, c.storage_size_bytes),
            (&INDEX_SIZE, c.index_size_bytes),
            (&INDEXES, c.indexes),
        ];
        for (desc, value) in pairs {
            if let Some(v) = value {
                out.add(desc, ns.labels(), v);
            }
        }
    }
    for i in &stats.indexes {
        let mut labels = i.ns.labels();
        labels.push(("index", Cow::Owned(i.index.clone())));
        out.add(&INDEX_ACCESSES, labels, i.accesses);
    }
}

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    ALL.to_vec()
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn descriptors_are_well_formed() {
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }

    #[test]
    fn names_are_bounded() {
        assert!(Namespace::from_full("app.orders.archive").is_some());
        assert!(Namespace::from_full("admin.users").is_none());
        assert!(Namespace::from_full("app.system.profile").is_none());
        assert!(Namespace::from_full("admin.$cmd.aggregate").is_none());
        assert!(Namespace::from_full("app.has space").is_none());
        assert!(Namespace::from_full(&format!("app.{}", "x".repeat(MAX_COLLECTION_LABEL_BYTES + 1))).is_none());
        assert!(Namespace::from_full("nodot").is_none());
    }

    #[test]
    fn select_ranks_by_top_then_name_and_caps() {
        let ns = |c: &str| Namespace { db: "app".into(), collection: c.into() };
        let top = parse_top(&doc! {"totals": {
            "note": "all times in microseconds",
            "app.z": {"total": {"time": 9, "count": 1}},
            "app.gone": {"total": {"time": 99, "count": 1}},
        }});
        let listed = [ns("a"), ns("b"), ns("z")];
        assert_eq!(select(Some(&listed), Some(&top), 2), vec![ns("z"), ns("a")]);
        assert_eq!(select(None, Some(&top), 5), vec![ns("gone"), ns("z")]);
        assert_eq!(select(Some(&listed), None, 5), listed.to_vec());
    }
}
