//! serverStatus: a curated set of typed metrics in base units.
//!
//! Why curated instead of walking the reply (percona's `mongodb_ss_*`)? A walk
//! names series after field paths, types everything as untyped, exports
//! microseconds and MiB as they come, and breaks (duplicate metrics, renamed
//! series) whenever a server version adds or moves a field. Here every family
//! is declared once below with its type, unit and help, fed from known fields
//! only; [`descriptors`] lists them all and `docs/metrics.md` (MongoDB,
//! serverStatus) documents them.
//!
//! [`parse`] reads the reply into a [`ServerStatus`] of plain values (in the
//! reply's own units, named by unit: `_mib`, `_micros`); [`encode`] converts to
//! base units and emits. A missing section (mongos has no `wiredTiger`, 3.6 has
//! no `flowControl`, DocumentDB/FerretDB lack most of the reply) is skipped,
//! never an error; a field of the wrong type, a negative count or a non-finite
//! double drops only that field. Numbers of any BSON numeric type are read
//! through [`bson_num`](super::bson_num).
//!
//! Label values come from fixed tables except two families whose keys the
//! server chooses: lock resources and assert kinds. Those are accepted only
//! when short and made of `[A-Za-z0-9_.-]`, and capped in number, so a
//! strange reply cannot create unbounded series. Replica-set state is never a
//! label here: it lives on its own series (replset module), so these series
//! keep their identity across failovers.

use std::borrow::Cow;

use mongodb::bson::{Bson, Document};

use super::bson_num::{bool_at, count_at, date_millis, doc_at, num, str_at, Num};
use crate::metrics::{BaseUnit, Desc, Exposition, Label};

// ---- Identity and uptime --------------------------------------------------
const VERSION_INFO: Desc = Desc::gauge(
    "mongodb_version_info",
    "Constant 1 labelled with the server version, storage engine and process kind (mongod or mongos), from serverStatus.",
).labels(&["version", "storage_engine", "process"]);
const UPTIME: Desc = Desc::gauge(
    "mongodb_uptime_seconds",
    "Seconds since the server process started, from serverStatus uptimeMillis (or uptime).",
)
.unit(BaseUnit::Seconds);

// ---- Connections ----------------------------------------------------------
const CONNECTIONS: Desc = Desc::gauge(
    "mongodb_connections",
    "Client connections by state: current (open), available (still allowed before the limit) and active (running an operation), from serverStatus connections.",
).labels(&["state"]);
const CONNECTIONS_CREATED: Desc = Desc::counter(
    "mongodb_connections_created_total",
    "Client connections accepted since the server started, from serverStatus connections.totalCreated.",
);
const CONNECTIONS_REJECTED: Desc = Desc::counter(
    "mongodb_connections_rejected_total",
    "Client connections refused because the connection limit was reached (7.0+), from serverStatus connections.rejected.",
);

// ---- Operations -----------------------------------------------------------
const OP_COUNTERS: Desc = Desc::counter(
    "mongodb_op_counters_total",
    "Operations received from clients by type (insert, query, update, delete, getmore, command), from serverStatus opcounters.",
).labels(&["type"]);
const OP_COUNTERS_REPL: Desc = Desc::counter(
    "mongodb_op_counters_repl_total",
    "Operations applied through replication by type, from serverStatus opcountersRepl.",
)
.labels(&["type"]);
const OP_LATENCIES: Desc = Desc::counter(
    "mongodb_op_latencies_seconds_total",
    "Total time spent executing operations by type (reads, writes, commands, transactions), from serverStatus opLatencies latency.",
)
.unit(BaseUnit::Seconds).labels(&["type"]);
const OP_LATENCIES_OPS: Desc = Desc::counter(
    "mongodb_op_latencies_ops_total",
    "Operations timed in opLatencies by type; divide the latency rate by this rate for the mean latency.",
)
.labels(&["type"]);
const DOCUMENTS: Desc = Desc::counter(
    "mongodb_documents_total",
    "Documents inserted, updated, deleted or returned by queries, from serverStatus metrics.document.",
)
.labels(&["type"]);
const SCANNED_KEYS: Desc = Desc::counter(
    "mongodb_query_executor_scanned_keys_total",
    "Index keys scanned by queries and query plan evaluation, from serverStatus metrics.queryExecutor.scanned.",
);
const SCANNED_DOCUMENTS: Desc = Desc::counter(
    "mongodb_query_executor_scanned_documents_total",
    "Documents scanned by queries and query plan evaluation, from serverStatus metrics.queryExecutor.scannedObjects.",
);
const COLLECTION_SCANS: Desc = Desc::counter(
    "mongodb_collection_scans_total",
    "Queries that performed a collection scan (4.4+), from serverStatus metrics.queryExecutor.collectionScans.total.",
);
const WRITE_CONFLICTS: Desc = Desc::counter(
    "mongodb_write_conflicts_total",
    "Write operations that hit a write conflict and were retried, from serverStatus metrics.operation.writeConflicts.",
);
const SLOW_QUERIES: Desc = Desc::counter(
    "mongodb_slow_queries_total",
    "Operations logged as slow (slower than slowms), from serverStatus metrics.query.totalSlowQueryLogs where the server reports it.",
);

// ---- TTL monitor ----------------------------------------------------------
const TTL_DELETED_DOCUMENTS: Desc = Desc::counter(
    "mongodb_ttl_deleted_documents_total",
    "Documents deleted by the TTL monitor (expired by a TTL index such as sessions.expiresAt), from serverStatus metrics.ttl.deletedDocuments.",
);
const TTL_PASSES: Desc = Desc::counter(
    "mongodb_ttl_passes_total",
    "Passes of the TTL monitor over the TTL indexes (one every 60 s by default; flat means the monitor is stalled or disabled), from serverStatus metrics.ttl.passes.",
);

// ---- TLS ------------------------------------------------------------------
const TLS_CERT_EXPIRY: Desc = Desc::gauge(
    "mongodb_tls_certificate_expiry_timestamp_seconds",
    "Unix time at which the server's TLS certificate expires, from serverStatus security.SSLServerCertificateExpirationDate (only when TLS is configured).",
)
.unit(BaseUnit::Seconds);

// ---- Memory and network ---------------------------------------------------
const MEMORY: Desc = Desc::gauge(
    "mongodb_memory_bytes",
    "Memory of the server process by type (resident, virtual), from serverStatus mem (reported in MiB).",
)
.unit(BaseUnit::Bytes)
.labels(&["type"]);
const NETWORK_BYTES: Desc = Desc::counter(
    "mongodb_network_bytes_total",
    "Network bytes received (direction in) and sent (direction out) by the server, from serverStatus network.",
)
.unit(BaseUnit::Bytes)
.labels(&["direction"]);
const NETWORK_REQUESTS: Desc = Desc::counter(
    "mongodb_network_requests_total",
    "Distinct requests the server has received, from serverStatus network.numRequests.",
);

// ---- Asserts --------------------------------------------------------------
const ASSERTS: Desc = Desc::counter(
    "mongodb_asserts_total",
    "Assertions raised by type (regular, warning, msg, user, tripwire), from serverStatus asserts.",
)
.labels(&["type"]);
const ASSERTS_ROLLOVERS: Desc = Desc::counter(
    "mongodb_asserts_rollovers_total",
    "Times the assert counters rolled over, from serverStatus asserts.rollovers.",
);

// ---- Global lock and locks ------------------------------------------------
const GLOBAL_LOCK_QUEUE: Desc = Desc::gauge(
    "mongodb_global_lock_current_queue",
    "Operations queued waiting for a lock by type (readers, writers, and total), from serverStatus globalLock.currentQueue.",
).labels(&["type"]);
const GLOBAL_LOCK_ACTIVE: Desc = Desc::gauge(
    "mongodb_global_lock_active_clients",
    "Connected clients performing operations by type (readers, writers, and total including internal threads), from serverStatus globalLock.activeClients.",
).labels(&["type"]);
const LOCKS_ACQUIRE: Desc = Desc::counter(
    "mongodb_locks_acquire_total",
    "Lock acquisitions by resource and mode, from serverStatus locks acquireCount.",
)
.labels(&["resource", "mode"]);
const LOCKS_ACQUIRE_WAIT: Desc = Desc::counter(
    "mongodb_locks_acquire_wait_total",
    "Lock acquisitions that had to wait, by resource and mode, from serverStatus locks acquireWaitCount.",
)
.labels(&["resource", "mode"]);
const LOCKS_ACQUIRE_WAIT_SECONDS: Desc = Desc::counter(
    "mongodb_locks_acquire_wait_seconds_total",
    "Time spent waiting for lock acquisitions by resource and mode, from serverStatus locks timeAcquiringMicros.",
)
.unit(BaseUnit::Seconds)
.labels(&["resource", "mode"]);

// ---- Cursors --------------------------------------------------------------
const CURSORS_OPEN: Desc = Desc::gauge(
    "mongodb_cursors_open",
    "Open cursors by type: total, no_timeout (opened with noCursorTimeout) and pinned, from serverStatus metrics.cursor.open.",
).labels(&["type"]);
const CURSORS_TIMED_OUT: Desc = Desc::counter(
    "mongodb_cursors_timed_out_total",
    "Cursors closed by the server because they were idle past the cursor timeout, from serverStatus metrics.cursor.timedOut.",
);

// ---- WiredTiger -----------------------------------------------------------
const WT_CACHE_BYTES: Desc = Desc::gauge(
    "mongodb_wiredtiger_cache_bytes",
    "WiredTiger cache contents by type: total (bytes currently in the cache) and dirty (tracked dirty bytes), from serverStatus wiredTiger.cache.",
)
.unit(BaseUnit::Bytes).labels(&["type"]);
const WT_CACHE_MAX_BYTES: Desc = Desc::gauge(
    "mongodb_wiredtiger_cache_max_bytes",
    "Configured WiredTiger cache size, from serverStatus wiredTiger.cache maximum bytes configured.",
)
.unit(BaseUnit::Bytes);
const WT_CACHE_READ_INTO: Desc = Desc::counter(
    "mongodb_wiredtiger_cache_read_into_bytes_total",
    "Bytes read from disk into the WiredTiger cache, from serverStatus wiredTiger.cache bytes read into cache.",
)
.unit(BaseUnit::Bytes);
const WT_CACHE_WRITTEN_FROM: Desc = Desc::counter(
    "mongodb_wiredtiger_cache_written_from_bytes_total",
    "Bytes written from the WiredTiger cache to disk, from serverStatus wiredTiger.cache bytes written from cache.",
)
.unit(BaseUnit::Bytes);
const WT_CACHE_EVICTED_PAGES: Desc = Desc::counter(
    "mongodb_wiredtiger_cache_evicted_pages_total",
    "Pages evicted from the WiredTiger cache by type (modified, unmodified), from serverStatus wiredTiger.cache.",
)
.labels(&["type"]);

// ---- Execution tickets ----------------------------------------------------
const TICKETS_OUT: Desc = Desc::gauge(
    "mongodb_tickets_out",
    "Storage execution tickets in use by type (read, write), from serverStatus queues.execution (8.0+) or wiredTiger.concurrentTransactions.",
).labels(&["type"]);
const TICKETS_AVAILABLE: Desc = Desc::gauge(
    "mongodb_tickets_available",
    "Storage execution tickets still available by type (read, write); 0 means new operations queue.",
)
.labels(&["type"]);
const TICKETS_CAPACITY: Desc = Desc::gauge(
    "mongodb_tickets_capacity",
    "Storage execution tickets in the pool by type (read, write), from totalTickets (changes at runtime with dynamic concurrency, 7.0+).",
).labels(&["type"]);
const TICKETS_QUEUED: Desc = Desc::gauge(
    "mongodb_tickets_queued",
    "Operations waiting for a storage execution ticket by type (read, write), from queueLength (7.0+).",
)
.labels(&["type"]);

// ---- Transactions ---------------------------------------------------------
const TXN_CURRENT_OPEN: Desc = Desc::gauge(
    "mongodb_transactions_current_open",
    "Open multi-document transactions (active plus inactive), from serverStatus transactions.currentOpen.",
);
const TXN_CURRENT_ACTIVE: Desc = Desc::gauge(
    "mongodb_transactions_current_active",
    "Open transactions currently running an operation, from serverStatus transactions.currentActive.",
);
const TXN_CURRENT_INACTIVE: Desc = Desc::gauge(
    "mongodb_transactions_current_inactive",
    "Open transactions not running an operation right now, from serverStatus transactions.currentInactive.",
);
const TXN_CURRENT_PREPARED: Desc = Desc::gauge(
    "mongodb_transactions_current_prepared",
    "Transactions in the prepared state (4.2+), from serverStatus transactions.currentPrepared.",
);
const TXN_STARTED: Desc = Desc::counter(
    "mongodb_transactions_started_total",
    "Multi-document transactions started, from serverStatus transactions.totalStarted.",
);
const TXN_COMMITTED: Desc = Desc::counter(
    "mongodb_transactions_committed_total",
    "Multi-document transactions committed, from serverStatus transactions.totalCommitted.",
);
const TXN_ABORTED: Desc = Desc::counter(
    "mongodb_transactions_aborted_total",
    "Multi-document transactions aborted, from serverStatus transactions.totalAborted.",
);
const TXN_PREPARED: Desc = Desc::counter(
    "mongodb_transactions_prepared_total",
    "Transactions that reached the prepared state (4.2+), from serverStatus transactions.totalPrepared.",
);

// ---- Flow control ---------------------------------------------------------
const FC_ENABLED: Desc = Desc::gauge(
    "mongodb_flow_control_enabled",
    "Whether flow control is enabled (1) or not (0) (4.2+), from serverStatus flowControl.enabled.",
);
const FC_IS_LAGGED: Desc = Desc::gauge(
    "mongodb_flow_control_is_lagged",
    "Whether the majority commit point lags enough for flow control to throttle writes (1) or not (0), from serverStatus flowControl.isLagged.",
);
const FC_TARGET_RATE_LIMIT: Desc = Desc::gauge(
    "mongodb_flow_control_target_rate_limit",
    "Maximum lock acquisitions per second flow control currently allows on the primary, from serverStatus flowControl.targetRateLimit.",
);
const FC_ACQUIRE_WAIT_SECONDS: Desc = Desc::counter(
    "mongodb_flow_control_acquire_wait_seconds_total",
    "Time writes waited to acquire a flow control ticket, from serverStatus flowControl.timeAcquiringMicros.",
)
.unit(BaseUnit::Seconds);
const FC_LAGGED: Desc = Desc::counter(
    "mongodb_flow_control_lagged_total",
    "Times flow control found the majority commit point lagging, from serverStatus flowControl.isLaggedCount.",
);
const FC_LAGGED_SECONDS: Desc = Desc::counter(
    "mongodb_flow_control_lagged_seconds_total",
    "Time flow control has spent in the lagged state, from serverStatus flowControl.isLaggedTimeMicros.",
)
.unit(BaseUnit::Seconds);

/// Every family, in exposition order.
static ALL: &[&Desc] = &[
    &VERSION_INFO,
    &UPTIME,
    &CONNECTIONS,
    &CONNECTIONS_CREATED,
    &CONNECTIONS_REJECTED,
    &OP_COUNTERS,
    &OP_COUNTERS_REPL,
    &OP_LATENCIES,
    &OP_LATENCIES_OPS,
    &DOCUMENTS,
    &SCANNED_KEYS,
    &SCANNED_DOCUMENTS,
    &COLLECTION_SCANS,
    &WRITE_CONFLICTS,
    &SLOW_QUERIES,
    &TTL_DELETED_DOCUMENTS,
    &TTL_PASSES,
    &TLS_CERT_EXPIRY,
    &MEMORY,
    &NETWORK_BYTES,
    &NETWORK_REQUESTS,
    &ASSERTS,
    &ASSERTS_ROLLOVERS,
    &GLOBAL_LOCK_QUEUE,
    &GLOBAL_LOCK_ACTIVE,
    &LOCKS_ACQUIRE,
    &LOCKS_ACQUIRE_WAIT,
    &LOCKS_ACQUIRE_WAIT_SECONDS,
    &CURSORS_OPEN,
    &CURSORS_TIMED_OUT,
    &WT_CACHE_BYTES,
    &WT_CACHE_MAX_BYTES,
    &WT_CACHE_READ_INTO,
    &WT_CACHE_WRITTEN_FROM,
    &WT_CACHE_EVICTED_PAGES,
    &TICKETS_OUT,
    &TICKETS_AVAILABLE,
    &TICKETS_CAPACITY,
    &TICKETS_QUEUED,
    &TXN_CURRENT_OPEN,
    &TXN_CURRENT_ACTIVE,
    &TXN_CURRENT_INACTIVE,
    &TXN_CURRENT_PREPARED,
    &TXN_STARTED,
    &TXN_COMMITTED,
    &TXN_ABORTED,
    &TXN_PREPARED,
    &FC_ENABLED,
    &FC_IS_LAGGED,
    &FC_TARGET_RATE_LIMIT,
    &FC_ACQUIRE_WAIT_SECONDS,
    &FC_LAGGED,
    &FC_LAGGED_SECONDS,
];

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    ALL.to_vec()
}

// ---- Field tables: reply key -> label value ---------------------------------

const CONNECTION_STATES: &[(&str, &str)] = &[("current", "current"), ("available", "available"), ("active", "active")];
const OP_TYPES: &[(&str, &str)] = &[
    ("insert", "insert"),
    ("query", "query"),
    ("update", "update"),
    ("delete", "delete"),
    ("getmore", "getmore"),
    ("command", "command"),
];
const LATENCY_TYPES: &[&str] = &["reads", "writes", "commands", "transactions"];
const DOCUMENT_TYPES: &[(&str, &str)] =
    &[("inserted", "inserted"), ("updated", "updated"), ("deleted", "deleted"), ("returned", "returned")];
const MEMORY_TYPES: &[(&str, &str)] = &[("resident", "resident"), ("virtual", "virtual")];
const QUEUE_TYPES: &[(&str, &str)] = &[("total", "total"), ("readers", "readers"), ("writers", "writers")];
const CURSOR_TYPES: &[(&str, &str)] = &[("total", "total"), ("noTimeout", "no_timeout"), ("pinned", "pinned")];
const TICKET_TYPES: &[&str] = &["read", "write"];
/// Where execution tickets live, newest layout first: `admission.execution`
/// (announced for releases after 8.0; no capture yet), `queues.execution`
/// (8.0), `wiredTiger.concurrentTransactions` (up to 7.0).
const TICKET_SOURCES: &[&str] = &["admission.execution", "queues.execution", "wiredTiger.concurrentTransactions"];
/// Lock modes as the server abbreviates them, and the names exported.
const LOCK_MODES: &[(&str, &str)] =
    &[("r", "intent_shared"), ("w", "intent_exclusive"), ("R", "shared"), ("W", "exclusive")];

/// Longest accepted server-chosen label value (lock resource, assert kind).
const MAX_LABEL_LEN: usize = 64;
/// Most lock resources read from one reply (servers report about a dozen).
const MAX_LOCK_RESOURCES: usize = 32;
/// Most assert kinds read from one reply (servers report five or six).
const MAX_ASSERT_KINDS: usize = 16;

// ---- Snapshot ---------------------------------------------------------------

/// The parts of serverStatus the exporter uses, in the reply's units.
/// `None` / empty means "not in this reply".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStatus {
    /// `version`, e.g. `8.0.9`.
    pub version: Option<String>,
    /// `process` reduced to `mongod` / `mongos` (Windows replies carry a full `.exe` path).
    pub process: Option<String>,
    /// `storageEngine.name` (absent on mongos).
    pub storage_engine: Option<String>,
    pub uptime_seconds: Option<Num>,
    /// `connections.{current,available,active}` by label value.
    pub connections: Vec<(&'static str, Num)>,
    pub connections_created: Option<Num>,
    pub connections_rejected: Option<Num>,
    pub opcounters: Vec<(&'static str, Num)>,
    pub opcounters_repl: Vec<(&'static str, Num)>,
    pub op_latencies: Vec<OpLatency>,
    pub documents: Vec<(&'static str, Num)>,
    pub scanned_keys: Option<Num>,
    pub scanned_documents: Option<Num>,
    pub collection_scans: Option<Num>,
    pub write_conflicts: Option<Num>,
    pub slow_queries: Option<Num>,
    /// `metrics.ttl.deletedDocuments`.
    pub ttl_deleted_documents: Option<Num>,
    /// `metrics.ttl.passes`.
    pub ttl_passes: Option<Num>,
    /// `security.SSLServerCertificateExpirationDate` in Unix milliseconds.
    pub tls_certificate_expiry_millis: Option<i64>,
    /// `mem.{resident,virtual}` in MiB.
    pub memory_mib: Vec<(&'static str, Num)>,
    pub network_bytes_in: Option<Num>,
    pub network_bytes_out: Option<Num>,
    pub network_requests: Option<Num>,
    /// Assert kind (server-chosen, bounded) and count.
    pub asserts: Vec<(String, Num)>,
    pub asserts_rollovers: Option<Num>,
    pub global_lock_queue: Vec<(&'static str, Num)>,
    pub global_lock_active_clients: Vec<(&'static str, Num)>,
    pub locks: Vec<LockStat>,
    pub cursors_open: Vec<(&'static str, Num)>,
    pub cursors_timed_out: Option<Num>,
    pub wiredtiger_cache: Option<WiredTigerCache>,
    pub tickets: Vec<Tickets>,
    pub transactions: Option<Transactions>,
    pub flow_control: Option<FlowControl>,
}

/// One `opLatencies` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct OpLatency {
    /// `reads`, `writes`, `commands` or `transactions`.
    pub kind: &'static str,
    pub latency_micros: Option<Num>,
    pub ops: Option<Num>,
}

/// One lock resource and mode from `locks`.
#[derive(Debug, Clone, PartialEq)]
pub struct LockStat {
    /// Resource as the server names it (`Global`, `Database`, `oplog`, ...).
    pub resource: String,
    /// Readable mode: `intent_shared` (r), `intent_exclusive` (w), `shared` (R), `exclusive` (W).
    pub mode: &'static str,
    pub acquire_count: Option<Num>,
    pub acquire_wait_count: Option<Num>,
    pub time_acquiring_micros: Option<Num>,
}

/// The WiredTiger cache fields used (bytes and pages, as reported).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WiredTigerCache {
    pub bytes_in_cache: Option<Num>,
    pub max_bytes: Option<Num>,
    pub dirty_bytes: Option<Num>,
    pub read_into_bytes: Option<Num>,
    pub written_from_bytes: Option<Num>,
    pub modified_pages_evicted: Option<Num>,
    pub unmodified_pages_evicted: Option<Num>,
}

/// Execution tickets of one kind (`read` or `write`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tickets {
    pub kind: &'static str,
    pub out: Option<Num>,
    pub available: Option<Num>,
    pub total: Option<Num>,
    pub queued: Option<Num>,
}

/// `transactions` (mongod and mongos).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transactions {
    pub current_open: Option<Num>,
    pub current_active: Option<Num>,
    pub current_inactive: Option<Num>,
    pub current_prepared: Option<Num>,
    pub total_started: Option<Num>,
    pub total_committed: Option<Num>,
    pub total_aborted: Option<Num>,
    pub total_prepared: Option<Num>,
}

/// `flowControl` (4.2+ replica-set members).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowControl {
    pub enabled: Option<bool>,
    pub is_lagged: Option<bool>,
    pub target_rate_limit: Option<Num>,
    pub time_acquiring_micros: Option<Num>,
    pub is_lagged_count: Option<Num>,
    pub is_lagged_time_micros: Option<Num>,
}

// ---- Parse ------------------------------------------------------------------

/// Reads a serverStatus reply. Missing sections are skipped, never an error.
pub fn parse(doc: &Document) -> ServerStatus {
    let tables =
        |path: &str, table: &[(&str, &'static str)]| doc_at(doc, path).map_or_else(Vec::new, |d| pick(d, table));
    ServerStatus {
        version: str_at(doc, "version").and_then(|v| bounded_label(v, MAX_LABEL_LEN, true)),
        process: str_at(doc, "process").and_then(process_kind),
        storage_engine: str_at(doc, "storageEngine.name").and_then(|v| bounded_label(v, MAX_LABEL_LEN, false)),
        uptime_seconds: count_at(doc, "uptimeMillis")
            .and_then(|ms| Num::from_f64(ms.div_f64(1e3)))
            .or_else(|| count_at(doc, "uptime")),
        connections: tables("connections", CONNECTION_STATES),
        connections_created: count_at(doc, "connections.totalCreated"),
        connections_rejected: count_at(doc, "connections.rejected"),
        opcounters: tables("opcounters", OP_TYPES),
        opcounters_repl: tables("opcountersRepl", OP_TYPES),
        op_latencies: doc_at(doc, "opLatencies").map_or_else(Vec::new, parse_op_latencies),
        documents: tables("metrics.document", DOCUMENT_TYPES),
        scanned_keys: count_at(doc, "metrics.queryExecutor.scanned"),
        scanned_documents: count_at(doc, "metrics.queryExecutor.scannedObjects"),
        collection_scans: count_at(doc, "metrics.queryExecutor.collectionScans.total"),
        write_conflicts: count_at(doc, "metrics.operation.writeConflicts"),
        slow_queries: count_at(doc, "metrics.query.totalSlowQueryLogs"),
        ttl_deleted_documents: count_at(doc, "metrics.ttl.deletedDocuments"),
        ttl_passes: count_at(doc, "metrics.ttl.passes"),
        tls_certificate_expiry_millis: doc_at(doc, "security")
            .and_then(|s| date_millis(s.get("SSLServerCertificateExpirationDate"))),
        memory_mib: tables("mem", MEMORY_TYPES),
        network_bytes_in: count_at(doc, "network.bytesIn"),
        network_bytes_out: count_at(doc, "network.bytesOut"),
        network_requests: count_at(doc, "network.numRequests"),
        asserts: doc_at(doc, "asserts").map_or_else(Vec::new, parse_asserts),
        asserts_rollovers: count_at(doc, "asserts.rollovers"),
        global_lock_queue: tables("globalLock.currentQueue", QUEUE_TYPES),
        global_lock_active_clients: tables("globalLock.activeClients", QUEUE_TYPES),
        locks: doc_at(doc, "locks").map_or_else(Vec::new, parse_locks),
        cursors_open: tables("metrics.cursor.open", CURSOR_TYPES),
        cursors_timed_out: count_at(doc, "metrics.cursor.timedOut"),
        wiredtiger_cache: doc_at(doc, "wiredTiger.cache").map(parse_wiredtiger_cache),
        tickets: parse_tickets(doc),
        transactions: doc_at(doc, "transactions").map(parse_transactions),
        flow_control: doc_at(doc, "flowControl").map(parse_flow_control),
    }
}

/// The non-negative numbers of `section` named in `table`, with their label values.
fn pick(section: &Document, table: &[(&str, &'static str)]) -> Vec<(&'static str, Num)> {
    table.iter().filter_map(|(field, label)| Some((*label, count(section.get(field)?)?))).collect()
}

fn count(value: &Bson) -> Option<Num> {
    num(value).and_then(Num::non_negative)
}

/// `"C:\\Program Files\\MongoDB\\Server\\7.0\\bin\\mongod.exe"` -> `"mongod"`:
/// the file stem of `process`, lowercased, without `.exe`.
fn process_kind(process: &str) -> Option<String> {
    let name = process.rsplit(['/', '\\']).next().unwrap_or(process).to_ascii_lowercase();
    let stem = name.strip_suffix(".exe").unwrap_or(&name);
    bounded_label(stem, 32, false)
}

/// `value` if it is non-empty, at most `max_len` bytes and made only of
/// `[A-Za-z0-9_.-]` (plus `+` for version strings when `allow_plus`), else `None`.
fn bounded_label(value: &str, max_len: usize, allow_plus: bool) -> Option<String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') || (allow_plus && c == '+');
    (!value.is_empty() && value.len() <= max_len && value.chars().all(ok)).then(|| value.to_owned())
}

fn parse_op_latencies(section: &Document) -> Vec<OpLatency> {
    LATENCY_TYPES
        .iter()
        .filter_map(|&kind| {
            let entry = section.get_document(kind).ok()?;
            let latency_micros = entry.get("latency").and_then(count);
            let ops = entry.get("ops").and_then(count);
            (latency_micros.is_some() || ops.is_some()).then_some(OpLatency { kind, latency_micros, ops })
        })
        .collect()
}

fn parse_asserts(section: &Document) -> Vec<(String, Num)> {
    section
        .iter()
        .filter(|(kind, _)| kind.as_str() != "rollovers")
        .filter_map(|(kind, value)| Some((bounded_label(kind, MAX_LABEL_LEN, false)?, count(value)?)))
        .take(MAX_ASSERT_KINDS)
        .collect()
}

fn parse_locks(section: &Document) -> Vec<LockStat> {
    let mut locks = Vec::new();
    for (resource, stats) in section.iter().take(MAX_LOCK_RESOURCES) {
        let (Some(resource), Bson::Document(stats)) = (bounded_label(resource, MAX_LABEL_LEN, false), stats) else {
            continue;
        };
        let by_mode = |stat: &str, mode: &str| stats.get_document(stat).ok().and_then(|d| d.get(mode)).and_then(count);
        for &(abbrev, mode) in LOCK_MODES {
            let lock = LockStat {
                resource: resource.clone(),
                mode,
                acquire_count: by_mode("acquireCount", abbrev),
                acquire_wait_count: by_mode("acquireWaitCount", abbrev),
                time_acquiring_micros: by_mode("timeAcquiringMicros", abbrev),
            };
            if lock.acquire_count.is_some() || lock.acquire_wait_count.is_some() || lock.time_acquiring_micros.is_some()
            {
                locks.push(lock);
            }
        }
    }
    locks
}

fn parse_wiredtiger_cache(cache: &Document) -> WiredTigerCache {
    let field = |name: &str| cache.get(name).and_then(count);
    WiredTigerCache {
        bytes_in_cache: field("bytes currently in the cache"),
        max_bytes: field("maximum bytes configured"),
        dirty_bytes: field("tracked dirty bytes in the cache"),
        read_into_bytes: field("bytes read into cache"),
        written_from_bytes: field("bytes written from cache"),
        modified_pages_evicted: field("modified pages evicted"),
        unmodified_pages_evicted: field("unmodified pages evicted"),
    }
}

fn parse_tickets(doc: &Document) -> Vec<Tickets> {
    for source in TICKET_SOURCES {
        let Some(section) = doc_at(doc, source) else { continue };
        let tickets: Vec<Tickets> = TICKET_TYPES
            .iter()
            .filter_map(|&kind| {
                let pool = section.get_document(kind).ok()?;
                let t = Tickets {
                    kind,
                    out: pool.get("out").and_then(count),
                    available: pool.get("available").and_then(count),
                    total: pool.get("totalTickets").and_then(count),
                    queued: queue_length(pool),
                };
                (t.out.is_some() || t.available.is_some() || t.total.is_some()).then_some(t)
            })
            .collect();
        if !tickets.is_empty() {
            return tickets;
        }
    }
    Vec::new()
}

/// Operations waiting for a ticket: `queueLength` of the pool (7.0), or the
/// sum over its priority sub-queues (`normalPriority`, `exempt`, ... in 8.0).
fn queue_length(pool: &Document) -> Option<Num> {
    if let Some(direct) = pool.get("queueLength") {
        return count(direct);
    }
    let mut total: Option<i64> = None;
    for (_, sub) in pool {
        if let Bson::Document(sub) = sub {
            if let Some(Num::Int(n)) = sub.get("queueLength").and_then(count) {
                total = Some(total.unwrap_or(0).saturating_add(n));
            }
        }
    }
    total.map(Num::Int)
}

fn parse_transactions(section: &Document) -> Transactions {
    let field = |name: &str| section.get(name).and_then(count);
    Transactions {
        current_open: field("currentOpen"),
        current_active: field("currentActive"),
        current_inactive: field("currentInactive"),
        current_prepared: field("currentPrepared"),
        total_started: field("totalStarted"),
        total_committed: field("totalCommitted"),
        total_aborted: field("totalAborted"),
        total_prepared: field("totalPrepared"),
    }
}

fn parse_flow_control(section: &Document) -> FlowControl {
    let field = |name: &str| section.get(name).and_then(count);
    FlowControl {
        enabled: bool_at(section, "enabled"),
        is_lagged: bool_at(section, "isLagged"),
        target_rate_limit: field("targetRateLimit"),
        time_acquiring_micros: field("timeAcquiringMicros"),
        is_lagged_count: field("isLaggedCount"),
        is_lagged_time_micros: field("isLaggedTimeMicros"),
    }
}

// ---- Encode -----------------------------------------------------------------

const MIB: i64 = 1 << 20;
const MICROS_PER_SECOND: f64 = 1e6;

/// Emits the serverStatus families.
pub fn encode(status: &ServerStatus, out: &mut Exposition) {
    if let Some(version) = &status.version {
        let labels = vec![
            ("version", Cow::Owned(version.clone())),
            ("storage_engine", Cow::Owned(status.storage_engine.clone().unwrap_or_default())),
            ("process", Cow::Owned(status.process.clone().unwrap_or_default())),
        ];
        out.add(&VERSION_INFO, labels, 1i64);
    }
    plain(out, &UPTIME, status.uptime_seconds);

    labelled(out, &CONNECTIONS, "state", &status.connections);
    plain(out, &CONNECTIONS_CREATED, status.connections_created);
    plain(out, &CONNECTIONS_REJECTED, status.connections_rejected);

    labelled(out, &OP_COUNTERS, "type", &status.opcounters);
    labelled(out, &OP_COUNTERS_REPL, "type", &status.opcounters_repl);
    for entry in &status.op_latencies {
        let labels = || vec![label("type", entry.kind)];
        if let Some(micros) = entry.latency_micros {
            out.add(&OP_LATENCIES, labels(), micros.div_f64(MICROS_PER_SECOND));
        }
        if let Some(ops) = entry.ops {
            out.add(&OP_LATENCIES_OPS, labels(), ops);
        }
    }
    labelled(out, &DOCUMENTS, "type", &status.documents);
    plain(out, &SCANNED_KEYS, status.scanned_keys);
    plain(out, &SCANNED_DOCUMENTS, status.scanned_documents);
    plain(out, &COLLECTION_SCANS, status.collection_scans);
    plain(out, &WRITE_CONFLICTS, status.write_conflicts);
    plain(out, &SLOW_QUERIES, status.slow_queries);
    plain(out, &TTL_DELETED_DOCUMENTS, status.ttl_deleted_documents);
    plain(out, &TTL_PASSES, status.ttl_passes);
    if let Some(millis) = status.tls_certificate_expiry_millis {
        out.add_plain(&TLS_CERT_EXPIRY, millis as f64 / 1e3);
    }

    for &(kind, mib) in &status.memory_mib {
        out.add(&MEMORY, vec![label("type", kind)], mib.times(MIB));
    }
    if let Some(v) = status.network_bytes_in {
        out.add(&NETWORK_BYTES, vec![label("direction", "in")], v);
    }
    if let Some(v) = status.network_bytes_out {
        out.add(&NETWORK_BYTES, vec![label("direction", "out")], v);
    }
    plain(out, &NETWORK_REQUESTS, status.network_requests);

    for (kind, n) in &status.asserts {
        out.add(&ASSERTS, vec![("type", Cow::Owned(kind.clone()))], *n);
    }
    plain(out, &ASSERTS_ROLLOVERS, status.asserts_rollovers);

    labelled(out, &GLOBAL_LOCK_QUEUE, "type", &status.global_lock_queue);
    labelled(out, &GLOBAL_LOCK_ACTIVE, "type", &status.global_lock_active_clients);
    for lock in &status.locks {
        let labels = || vec![("resource", Cow::Owned(lock.resource.clone())), label("mode", lock.mode)];
        if let Some(n) = lock.acquire_count {
            out.add(&LOCKS_ACQUIRE, labels(), n);
        }
        if let Some(n) = lock.acquire_wait_count {
            out.add(&LOCKS_ACQUIRE_WAIT, labels(), n);
        }
        if let Some(micros) = lock.time_acquiring_micros {
            out.add(&LOCKS_ACQUIRE_WAIT_SECONDS, labels(), micros.div_f64(MICROS_PER_SECOND));
        }
    }

    labelled(out, &CURSORS_OPEN, "type", &status.cursors_open);
    plain(out, &CURSORS_TIMED_OUT, status.cursors_timed_out);

    if let Some(cache) = &status.wiredtiger_cache {
        encode_wiredtiger_cache(cache, out);
    }
    for t in &status.tickets {
        let labels = || vec![label("type", t.kind)];
        for (desc, value) in [
            (&TICKETS_OUT, t.out),
            (&TICKETS_AVAILABLE, t.available),
            (&TICKETS_CAPACITY, t.total),
            (&TICKETS_QUEUED, t.queued),
        ] {
            if let Some(v) = value {
                out.add(desc, labels(), v);
            }
        }
    }
    if let Some(txn) = &status.transactions {
        plain(out, &TXN_CURRENT_OPEN, txn.current_open);
        plain(out, &TXN_CURRENT_ACTIVE, txn.current_active);
        plain(out, &TXN_CURRENT_INACTIVE, txn.current_inactive);
        plain(out, &TXN_CURRENT_PREPARED, txn.current_prepared);
        plain(out, &TXN_STARTED, txn.total_started);
        plain(out, &TXN_COMMITTED, txn.total_committed);
        plain(out, &TXN_ABORTED, txn.total_aborted);
        plain(out, &TXN_PREPARED, txn.total_prepared);
    }
    if let Some(fc) = &status.flow_control {
        if let Some(enabled) = fc.enabled {
            out.add_plain(&FC_ENABLED, enabled);
        }
        if let Some(lagged) = fc.is_lagged {
            out.add_plain(&FC_IS_LAGGED, lagged);
        }
        plain(out, &FC_TARGET_RATE_LIMIT, fc.target_rate_limit);
        seconds(out, &FC_ACQUIRE_WAIT_SECONDS, fc.time_acquiring_micros);
        plain(out, &FC_LAGGED, fc.is_lagged_count);
        seconds(out, &FC_LAGGED_SECONDS, fc.is_lagged_time_micros);
    }
}

fn encode_wiredtiger_cache(cache: &WiredTigerCache, out: &mut Exposition) {
    if let Some(v) = cache.bytes_in_cache {
        out.add(&WT_CACHE_BYTES, vec![label("type", "total")], v);
    }
    if let Some(v) = cache.dirty_bytes {
        out.add(&WT_CACHE_BYTES, vec![label("type", "dirty")], v);
    }
    plain(out, &WT_CACHE_MAX_BYTES, cache.max_bytes);
    plain(out, &WT_CACHE_READ_INTO, cache.read_into_bytes);
    plain(out, &WT_CACHE_WRITTEN_FROM, cache.written_from_bytes);
    if let Some(v) = cache.modified_pages_evicted {
        out.add(&WT_CACHE_EVICTED_PAGES, vec![label("type", "modified")], v);
    }
    if let Some(v) = cache.unmodified_pages_evicted {
        out.add(&WT_CACHE_EVICTED_PAGES, vec![label("type", "unmodified")], v);
    }
}

fn label(key: &'static str, value: &'static str) -> Label {
    (key, Cow::Borrowed(value))
}

fn plain(out: &mut Exposition, desc: &Desc, value: Option<Num>) {
    if let Some(v) = value {
        out.add_plain(desc, v);
    }
}

/// A microsecond count emitted in seconds.
fn seconds(out: &mut Exposition, desc: &Desc, micros: Option<Num>) {
    if let Some(v) = micros {
        out.add_plain(desc, v.div_f64(MICROS_PER_SECOND));
    }
}

fn labelled(out: &mut Exposition, desc: &Desc, key: &'static str, values: &[(&'static str, Num)]) {
    for &(value, n) in values {
        out.add(desc, vec![label(key, value)], n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn process_is_reduced_to_its_kind() {
        assert_eq!(process_kind("mongod").as_deref(), Some("mongod"));
        assert_eq!(process_kind("C:\\Program Files\\MongoDB\\Server\\7.0\\bin\\mongod.exe").as_deref(), Some("mongod"));
        assert_eq!(process_kind("/usr/bin/MONGOS").as_deref(), Some("mongos"));
        assert_eq!(process_kind("").as_deref(), None);
        assert_eq!(process_kind("mongod; drop").as_deref(), None);
    }

    #[test]
    fn server_chosen_labels_are_bounded() {
        assert_eq!(
            bounded_label("ReplicationStateTransition", 64, false).as_deref(),
            Some("ReplicationStateTransition")
        );
        assert_eq!(bounded_label("a b", 64, false), None);
        assert_eq!(bounded_label("x\"}", 64, false), None);
        assert_eq!(bounded_label(&"a".repeat(65), 64, false), None);
        assert_eq!(bounded_label("8.0.0+rc1", 64, false), None);
        assert_eq!(bounded_label("8.0.0+rc1", 64, true).as_deref(), Some("8.0.0+rc1"));
    }

    #[test]
    fn ticket_queue_length_sums_priority_queues() {
        let pool = doc! { "out": 1i32, "normalPriority": { "queueLength": 3i64 }, "exempt": { "queueLength": 0i64 } };
        assert_eq!(queue_length(&pool), Some(Num::Int(3)));
        assert_eq!(queue_length(&doc! { "queueLength": 2i64 }), Some(Num::Int(2)));
        assert_eq!(queue_length(&doc! { "out": 1i32 }), None);
    }

    #[test]
    fn descriptors_are_unique_and_well_formed() {
        let all = descriptors();
        for (i, d) in all.iter().enumerate() {
            assert!(d.is_well_formed(), "{}", d.name);
            assert!(all[..i].iter().all(|e| e.name != d.name), "{} twice", d.name);
        }
    }
}
