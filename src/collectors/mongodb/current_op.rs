//! Long-running operations from `$currentOp`: how many user operations have
//! been running longer than a threshold, by operation type and database, and
//! the age of the oldest one.
//!
//! What is counted, and why:
//!
//! * Only **active user operations**. An op is skipped when `active` is
//!   false, when `type` (4.2+) is anything but `"op"` (idle sessions, idle
//!   cursors and idle connections are not work), or when it is an internal
//!   server thread: no `client`/`client_s` address and a `desc` that is not a
//!   client connection (`conn<N>`). Internal threads (`ReplBatcher`,
//!   `rsSync`, `OplogApplier-*`, `TTLMonitor`, `WTCheckpointThread`,
//!   `NoopWriter`, ...) run for the life of the process and would pin
//!   "oldest operation" at the uptime.
//! * Operations that **wait by design** are skipped: awaitable `hello` /
//!   `isMaster` (drivers' streaming monitoring, 4.4+, carries
//!   `topologyVersion` and blocks up to `maxAwaitTimeMS`), and `getMore` on
//!   `local.oplog.rs` (secondaries tailing this node's oplog). Both are
//!   normal and would otherwise set a permanent floor under the oldest age.
//! * Labels are bounded: `op` is one of the server's op types
//!   ([`KNOWN_OPS`]) or `other`; `db` is the part of `ns` before the first
//!   `.` (`none` when empty), and only the [`MAX_DBS`] databases with the most
//!   long-running ops keep their name (ties by name, so the choice is
//!   deterministic); the rest are summed under `other`. Never opids, query
//!   text, client addresses, users or application names.
//!
//! Duration is `microsecs_running` when present (more precise), else
//! `secs_running`. An op without a usable duration is not counted.
//!
//! The client should read only [`projection`]: the fields above, and of
//! `command` only the keys that identify waiting-by-design commands, never
//! the query text. Without `client`, a user op is recognised by its
//! `desc` (`conn<N>`); without `command`, awaitable `hello` cannot be told
//! apart and pins the oldest age at up to `maxAwaitTimeMS` (10 s).

use std::borrow::Cow;
use std::collections::BTreeMap;

use mongodb::bson::{Bson, Document};

use super::bson_num::{bool_of, f64_of, str_of};
use crate::metrics::{BaseUnit, Desc, Exposition, Label};

/// Databases that keep their own `db` label value; the rest become `other`.
pub const MAX_DBS: usize = 50;

/// `op` values of `$currentOp` that keep their name; anything else is `other`.
pub const KNOWN_OPS: [&str; 8] = ["query", "insert", "update", "remove", "getmore", "command", "killcursors", "none"];

const MAX_DB_LABEL_BYTES: usize = 64;

const LONG_RUNNING: Desc = Desc::gauge(
    "mongodb_long_running_operations",
    "Active user operations running longer than the configured threshold, by operation type and database, from $currentOp.",
).labels(&["op", "db"]);
const LONG_RUNNING_OVERALL: Desc = Desc::gauge(
    "mongodb_long_running_operations_overall",
    "Active user operations running longer than the configured threshold, all types and databases together (0 when there is none), from $currentOp.",
);
const OLDEST: Desc = Desc::gauge(
    "mongodb_oldest_operation_seconds",
    "Running time of the oldest active user operation (0 when there is none), from $currentOp.",
)
.unit(BaseUnit::Seconds);
const THRESHOLD: Desc = Desc::gauge(
    "mongodb_long_running_operations_threshold_seconds",
    "Running time above which an operation counts in mongodb_long_running_operations (exporter setting).",
)
.unit(BaseUnit::Seconds);

const ALL: [&Desc; 4] = [&LONG_RUNNING, &LONG_RUNNING_OVERALL, &OLDEST, &THRESHOLD];

/// Summary of one `$currentOp` read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentOps {
    pub threshold_secs: f64,
    /// Long-running ops by (`op`, `db`), labels already bounded.
    pub long_running: BTreeMap<(String, String), u64>,
    /// Running time of the oldest active user op; 0 when there is none.
    pub oldest_secs: f64,
    /// Ops skipped as idle, internal or waiting by design (for tests and logs).
    pub skipped: usize,
}

/// `ops`: documents from `{$currentOp: {allUsers: true, idleConnections: false}}`
/// (ideally filtered to `active: true`); `threshold_secs`: what counts as
/// long-running (a negative or NaN threshold is treated as 0).
pub fn parse(ops: &[Document], threshold_secs: f64) -> CurrentOps {
    let threshold_secs = if threshold_secs.is_finite() && threshold_secs > 0.0 { threshold_secs } else { 0.0 };
    let mut out = CurrentOps { threshold_secs, ..CurrentOps::default() };
    let mut by_db: BTreeMap<(String, String), u64> = BTreeMap::new();
    for op in ops {
        if !is_user_work(op) {
            out.skipped += 1;
            continue;
        }
        let Some(running) = running_secs(op) else {
            out.skipped += 1;
            continue;
        };
        out.oldest_secs = out.oldest_secs.max(running);
        if running > threshold_secs {
            *by_db.entry((op_label(op), db_label(op))).or_insert(0) += 1;
        }
    }
    out.long_running = cap_databases(by_db);
    out
}

/// The `$project` stage for the `$currentOp` pipeline: what [`parse`] reads,
/// and nothing that could carry user data (no filter values, no client
/// addresses, no user names). User ops are then recognised by `desc`.
pub fn projection() -> Document {
    let mut p = Document::new();
    for field in [
        "type",
        "active",
        "desc",
        "op",
        "ns",
        "secs_running",
        "microsecs_running",
        "command.hello",
        "command.isMaster",
        "command.ismaster",
        "command.topologyVersion",
        "command.getMore",
    ] {
        p.insert(field, 1);
    }
    p
}

fn is_user_work(op: &Document) -> bool {
    if bool_of(op.get("active")) == Some(false) {
        return false;
    }
    if str_of(op.get("type")).is_some_and(|t| t != "op") {
        return false;
    }
    let has_client = ["client", "client_s"].iter().any(|k| !matches!(op.get(*k), None | Some(Bson::Null)));
    let connection_thread = str_of(op.get("desc")).is_some_and(|d| d.starts_with("conn"));
    if !has_client && !connection_thread {
        return false;
    }
    !waits_by_design(op)
}

fn waits_by_design(op: &Document) -> bool {
    let command = match op.get("command") {
        Some(Bson::Document(c)) => c,
        _ => return false,
    };
    let awaitable_hello = ["hello", "isMaster", "ismaster"].iter().any(|k| command.contains_key(*k))
        && command.contains_key("topologyVersion");
    let oplog_tail = command.contains_key("getMore") && str_of(op.get("ns")) == Some("local.oplog.rs");
    awaitable_hello || oplog_tail
}

fn running_secs(op: &Document) -> Option<f64> {
    let micros = f64_of(op.get("microsecs_running")).filter(|v| *v >= 0.0).map(|v| v / 1e6);
    micros.or_else(|| f64_of(op.get("secs_running")).filter(|v| *v >= 0.0))
}

fn op_label(op: &Document) -> String {
    let raw = str_of(op.get("op")).unwrap_or("");
    KNOWN_OPS.iter().find(|k| **k == raw).map_or("other", |k| *k).to_owned()
}

fn db_label(op: &Document) -> String {
    let ns = str_of(op.get("ns")).unwrap_or("");
    let db = ns.split('.').next().unwrap_or("");
    if db.is_empty() {
        return "none".to_owned();
    }
    let mut end = db.len().min(MAX_DB_LABEL_BYTES);
    while !db.is_char_boundary(end) {
        end -= 1;
    }
    db[..end].to_owned()
}

/// Keeps the [`MAX_DBS`] databases with the most long-running ops (ties by
/// name) and folds the rest into `db="other"`.
fn cap_databases(by_key: BTreeMap<(String, String), u64>) -> BTreeMap<(String, String), u64> {
    let mut per_db: BTreeMap<&str, u64> = BTreeMap::new();
    for ((_, db), n) in &by_key {
        *per_db.entry(db.as_str()).or_insert(0) += n;
    }
    if per_db.len() <= MAX_DBS {
        return by_key;
    }
    let mut ranked: Vec<(&str, u64)> = per_db.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let kept: std::collections::BTreeSet<String> =
        ranked.iter().take(MAX_DBS).map(|(db, _)| (*db).to_owned()).collect();
    let mut capped = BTreeMap::new();
    for ((op, db), n) in by_key {
        let db = if kept.contains(&db) { db } else { "other".to_owned() };
        *capped.entry((op, db)).or_insert(0) += n;
    }
    capped
}

/// Emits the long-running-operation families.
pub fn encode(ops: &CurrentOps, out: &mut Exposition) {
    out.add_plain(&THRESHOLD, ops.threshold_secs);
    out.add_plain(&OLDEST, ops.oldest_secs);
    // Zero is a value: the unlabelled total is always there, so panels and
    // alerts read 0 on a healthy server instead of "No data".
    out.add_plain(&LONG_RUNNING_OVERALL, ops.long_running.values().sum::<u64>());
    // Declared even when nothing is long-running, so `# HELP` stays stable;
    // absence of a labelled sample means 0 for that (op, db).
    out.declare(&LONG_RUNNING);
    for ((op, db), n) in &ops.long_running {
        let labels: Vec<Label> = vec![("op", Cow::Owned(op.clone())), ("db", Cow::Owned(db.clone()))];
        out.add(&LONG_RUNNING, labels, *n);
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
    fn internal_threads_and_awaitable_hello_are_skipped() {
        let ops = [
            doc! {"desc": "ReplBatcher", "active": true, "op": "none", "ns": "", "secs_running": 9000},
            doc! {"desc": "conn7", "client": "10.0.0.1:5000", "active": true, "op": "command", "ns": "admin.$cmd",
            "command": {"hello": 1, "topologyVersion": {}, "maxAwaitTimeMS": 10000}, "secs_running": 8},
            doc! {"desc": "conn8", "client": "10.0.0.2:5000", "active": true, "op": "getmore", "ns": "local.oplog.rs",
            "command": {"getMore": 1i64, "collection": "oplog.rs"}, "secs_running": 3},
            doc! {"desc": "conn9", "client": "10.0.0.3:5000", "active": true, "op": "query", "ns": "app.users",
            "microsecs_running": 2_500_000i64},
        ];
        let parsed = parse(&ops, 1.0);
        assert_eq!(parsed.skipped, 3);
        assert_eq!(parsed.oldest_secs, 2.5);
        assert_eq!(parsed.long_running.get(&("query".to_owned(), "app".to_owned())), Some(&1));
    }

    #[test]
    fn descriptors_are_well_formed() {
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }
}
