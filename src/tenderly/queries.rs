//! Config-driven MongoDB query metrics, the shipped Tenderly set, and the
//! audit-event counters (see `docs/tenderly-queries.md` for the user guide).
//!
//! A query is a read-only `count` (a filter) or `aggregate` (a pipeline) on one
//! collection, turned into one gauge family. Why the rules below:
//!
//! * **Read-only and bounded by construction.** Validation rejects `$out`,
//!   `$merge` (writes), `$function`, `$accumulator`, `$where` (server-side
//!   JavaScript) anywhere in a filter or pipeline, at any depth. Every command
//!   carries `maxTimeMS` (what is left of the scrape deadline) and runs under
//!   `timeout_at(deadline)`; aggregations get a trailing `$limit` and a batch
//!   size one larger, so the server always closes the cursor in the first batch.
//! * **Heavy counts are cached.** Each query has a `min_interval`: it runs at
//!   most that often; between runs the cached values are exported and
//!   `tenderly_query_last_success_timestamp_seconds{query}` says how old they are.
//!   A query whose last success is older than twice its interval loses its
//!   values (stale data is worse than none) but keeps its success/age series.
//! * **Nothing from a document reaches a label or a log.** Label values come
//!   from an allow-list (anything else becomes `other`); documents are never
//!   logged, and driver errors are logged as their code name only
//!   ([`crate::collectors::mongodb::client::describe`]): a server error message
//!   can quote the command.
//! * **Relative time** in filters: `{$ago: "24h"}` anywhere a value can stand is
//!   replaced, at each run, by the BSON Date *now minus 24 h* (units `ms s m h d
//!   w`; `{$ago: "0s"}` is now). It is not a MongoDB operator, so a filter that
//!   reached the server unsubstituted would fail loudly rather than match wrongly.
//!
//! Metric names and label names must be `&'static str` ([`Desc`], [`Label`]);
//! names from the config are interned once per distinct name (a bounded, tiny
//! leak: a config has at most [`MAX_QUERIES`] queries).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::StreamExt;
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Client;
use serde::Deserialize;
use tokio::time::{timeout_at, Instant};

use super::audit::{self, AuditCounter};
use crate::collectors::mongodb::bson_guard::{self, CursorCaps};
use crate::collectors::mongodb::bson_num::{self, Num};
use crate::collectors::mongodb::client::{
    describe, max_time_ms, read_cursor, CursorError, REFUSAL_BACKOFF, UNAUTHORIZED,
};
use crate::collectors::mongodb::Role;
use crate::duration::parse as parse_duration;
use crate::metrics::{BaseUnit, Desc, Exposition, Label, Value};

/// The `collector` label of the Tenderly queries' runs.
pub const COLLECTOR: &str = "tenderly_queries";

/// Most queries (shipped + custom) per target.
pub const MAX_QUERIES: usize = 100;
/// Most label dimensions per query (allow-listed plus constant).
pub const MAX_LABELS: usize = 4;
/// Most allow-listed values per label.
pub const MAX_LABEL_VALUES: usize = 50;
/// Longest label value or allow-list entry.
pub const MAX_LABEL_VALUE_LEN: usize = 64;
/// Default and largest cap on aggregation results.
pub const DEFAULT_MAX_RESULTS: usize = 1000;
pub const MAX_RESULTS: usize = 10_000;
/// Deepest nesting accepted in a filter or pipeline.
pub const MAX_DEPTH: usize = 32;
/// Default `min_interval` of a custom query.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Longest `min_interval` (and longest `$ago`: 10 years).
pub const MAX_MIN_INTERVAL: Duration = Duration::from_secs(86_400);
const MAX_AGO: Duration = Duration::from_secs(10 * 366 * 86_400);
/// Queries of one target running at once (the client pool has 4 connections).
const CONCURRENCY: usize = 3;
/// Label-set combinations up to which allow-listed values are emitted as 0
/// when absent from the result (so `tenderly_users{status="locked"}` is 0, not missing).
const MAX_ZERO_FILL: usize = 64;

/// Operators that write or run JavaScript: rejected anywhere in a query.
pub const FORBIDDEN_OPERATORS: [&str; 5] = ["$out", "$merge", "$function", "$accumulator", "$where"];
/// Metric-name prefixes owned by the exporter itself.
const RESERVED_PREFIXES: [&str; 7] = [
    "tenderly_exporter_",
    "tenderly_query_",
    "tenderly_security_",
    "tenderly_backup_",
    "tenderly_audit_events",
    "tenderly_audit_scrape_",
    "tenderly_audit_high_water_",
];
/// The placeholder key.
pub const AGO: &str = "$ago";
/// `query` label value of the audit-event read in the runner's own metrics.
pub const AUDIT_QUERY_ID: &str = "audit_events";

// ---------------------------------------------------------------------------
// Descriptors
// ---------------------------------------------------------------------------

pub const QUERY_SUCCESS: Desc = Desc::gauge(
    "tenderly_query_success",
    "Whether the last run of a configured MongoDB query succeeded (1) or not (0).",
)
.labels(&["query"]);
pub const QUERY_LAST_SUCCESS: Desc = Desc::gauge(
    "tenderly_query_last_success_timestamp_seconds",
    "Unix time of the last successful run of a configured MongoDB query; the age of its cached values.",
)
.unit(BaseUnit::Seconds)
.labels(&["query"]);
pub const QUERY_DURATION: Desc =
    Desc::gauge("tenderly_query_duration_seconds", "Duration of the last run of a configured MongoDB query.")
        .unit(BaseUnit::Seconds)
        .labels(&["query"]);
pub const QUERY_TRUNCATED: Desc = Desc::gauge(
    "tenderly_query_results_truncated",
    "Whether the last run of an aggregation query returned more rows than its max_results cap (1) or not (0).",
)
.labels(&["query"]);

pub const USERS: Desc =
    Desc::gauge("tenderly_users", "Tenderly user accounts by account status (users.accountStatus).")
        .labels(&["status"]);
pub const USERS_BY_ROLE: Desc =
    Desc::gauge("tenderly_users_by_role", "Tenderly user accounts holding each role (users.roles).").labels(&["role"]);
pub const USERS_LOCKED: Desc = Desc::gauge(
    "tenderly_users_locked",
    "Tenderly user accounts currently locked (users.accountLockedUntil in the future).",
);
pub const USERS_FAILED_LOGINS: Desc = Desc::gauge(
    "tenderly_users_with_failed_logins",
    "Tenderly user accounts with at least one failed login attempt (users.failedLoginAttempts > 0).",
);
pub const USERS_PENDING_MFA: Desc = Desc::gauge(
    "tenderly_users_pending_mfa_setup",
    "Tenderly user accounts that have not finished MFA setup (accountStatus pending_mfa_setup).",
);
pub const ADMINS_WITHOUT_MFA: Desc = Desc::gauge(
    "tenderly_admins_without_mfa",
    "Tenderly administrator accounts (roles admin or super_admin) without MFA enabled (users.isMFAEnabled not true).",
);
pub const USERS_MULTIPLE_SESSIONS: Desc = Desc::gauge(
    "tenderly_users_multiple_active_sessions",
    "Tenderly user accounts with more than one active session (users.activeSessions).",
);
pub const PII_PLAINTEXT: Desc = Desc::gauge(
    "tenderly_pii_plaintext_documents",
    "Documents whose field-level-encrypted PII field is readable plaintext; should be 0 if encrypted.",
)
.labels(&["collection", "field"]);
pub const AUDIT_PENDING_ARCHIVE: Desc = Desc::gauge(
    "tenderly_audit_logs_pending_archive",
    "Audit-log documents older than 365 days that are not archived yet (isArchived not true).",
);
pub const AUDIT_PAST_RETENTION: Desc = Desc::gauge(
    "tenderly_audit_logs_past_retention",
    "Archived audit-log documents older than 90 days that the daily maintenance job should have deleted.",
);

const SHIPPED_DESCS: [&Desc; 10] = [
    &USERS,
    &USERS_BY_ROLE,
    &USERS_LOCKED,
    &USERS_FAILED_LOGINS,
    &USERS_PENDING_MFA,
    &USERS_MULTIPLE_SESSIONS,
    &ADMINS_WITHOUT_MFA,
    &PII_PLAINTEXT,
    &AUDIT_PENDING_ARCHIVE,
    &AUDIT_PAST_RETENTION,
];

impl QueriesConfig {
    /// The required indexes in force (the shipped set unless configured).
    pub fn effective_required_indexes(&self) -> Vec<super::indexes::RequiredIndex> {
        self.required_indexes.clone().unwrap_or_else(super::indexes::default_required)
    }

    /// How often the required indexes are read.
    pub fn index_interval(&self) -> Duration {
        self.index_check_interval
            .as_deref()
            .and_then(|i| parse_duration(i).ok())
            .unwrap_or(super::indexes::DEFAULT_INTERVAL)
    }
}

/// Every descriptor this module can emit with the shipped set (custom query
/// families come on top: [`QueryRunner::descriptors`]), plus the audit counters.
pub fn descriptors() -> Vec<&'static Desc> {
    let mut all: Vec<&'static Desc> = vec![&QUERY_SUCCESS, &QUERY_LAST_SUCCESS, &QUERY_DURATION, &QUERY_TRUNCATED];
    all.extend(SHIPPED_DESCS);
    all.extend(audit::descriptors());
    all
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

fn yes() -> bool {
    true
}

/// The per-target `tenderly:` section of a MongoDB target.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueriesConfig {
    /// The Tenderly application database; enables the shipped queries and the
    /// audit counters on it.
    #[serde(default)]
    pub app_database: Option<String>,
    /// Whether the shipped Tenderly queries run (needs `app_database`).
    #[serde(default = "yes")]
    pub shipped: bool,
    /// Custom queries; one with the `id` of a shipped query replaces it.
    #[serde(default)]
    pub queries: Vec<QuerySpec>,
    /// Audit-event counters (on `app_database`).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Whether the MongoDB security posture checks run (`getCmdLineOpts`).
    #[serde(default = "yes")]
    pub posture: bool,
    /// Also run queries on secondaries (default: primary, standalone and mongos
    /// only, so each data set is counted once).
    #[serde(default)]
    pub on_secondaries: bool,
    /// Indexes `tenderly_required_index` checks on `app_database`; absent means
    /// the shipped set ([`super::indexes::default_required`]), `[]` none.
    #[serde(default)]
    pub required_indexes: Option<Vec<super::indexes::RequiredIndex>>,
    /// How often the required indexes are read again (default 5m).
    #[serde(default)]
    pub index_check_interval: Option<String>,
    /// Configuration drift policy (default the DBA guide's: profiling level 0).
    #[serde(default)]
    pub drift: super::drift::MongoDriftPolicy,
}

impl Default for QueriesConfig {
    fn default() -> Self {
        QueriesConfig {
            app_database: None,
            shipped: true,
            queries: Vec::new(),
            audit: AuditConfig::default(),
            posture: true,
            on_secondaries: false,
            required_indexes: None,
            index_check_interval: None,
            drift: super::drift::MongoDriftPolicy::default(),
        }
    }
}

/// `tenderly.audit`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_audit_collection")]
    pub collection: String,
    /// `category` values that keep their name (default: [`audit::DEFAULT_CATEGORIES`]).
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// Most audit documents read per run.
    #[serde(default = "default_audit_limit")]
    pub max_docs_per_run: usize,
}

fn default_audit_collection() -> String {
    "auditlogs".to_owned()
}

fn default_audit_limit() -> usize {
    audit::DEFAULT_LIMIT
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            collection: default_audit_collection(),
            categories: None,
            max_docs_per_run: audit::DEFAULT_LIMIT,
        }
    }
}

/// One query metric.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// Metric name: `tenderly_` + `[a-z0-9_]`; several queries may share one
    /// name (same help and label names) when `const_labels` tell them apart.
    pub name: String,
    /// The `query` label of the runner's own metrics; unique; default `name`.
    #[serde(default)]
    pub id: Option<String>,
    /// One full sentence.
    pub help: String,
    /// Default: the section's `app_database`.
    #[serde(default)]
    pub database: Option<String>,
    pub collection: String,
    /// `count` with this filter (`{}` counts everything).
    #[serde(default)]
    pub count: Option<Document>,
    /// `aggregate` with this pipeline; each result document is one sample.
    #[serde(default)]
    pub aggregate: Option<Vec<Document>>,
    /// Aggregation: the (dotted) field holding the sample value. Default `count`.
    #[serde(default)]
    pub value: Option<String>,
    /// Aggregation: labels read from result fields through an allow-list.
    #[serde(default)]
    pub labels: Vec<LabelSpec>,
    /// Fixed labels on every sample of this query.
    #[serde(default)]
    pub const_labels: BTreeMap<String, String>,
    /// Run at most this often (`30s`, `5m`, `1h`); default 60s.
    #[serde(default)]
    pub min_interval: Option<String>,
    /// Aggregation: most result documents read (default 1000, at most 10000).
    #[serde(default)]
    pub max_results: Option<usize>,
}

/// A label read from a result field, bounded by an allow-list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    pub name: String,
    /// Dotted path in the result document (`_id`, `_id.status`).
    pub field: String,
    /// The values kept as they are; anything else (and a missing field) is `other`.
    pub values: Vec<String>,
}

/// A configuration problem, naming the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem} ({fix})")]
pub struct QueryConfigError {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

fn bad(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> QueryConfigError {
    QueryConfigError { field: field.into(), problem: problem.into(), fix: fix.into() }
}

impl QueriesConfig {
    /// The queries this section runs: the shipped set (when `shipped` and
    /// `app_database`), with custom queries of the same `id` replacing shipped
    /// ones, then the other custom queries.
    pub fn effective_queries(&self) -> Vec<QuerySpec> {
        let mut out: Vec<QuerySpec> = match (&self.app_database, self.shipped) {
            (Some(db), true) => shipped_queries(db),
            _ => Vec::new(),
        };
        for custom in &self.queries {
            match out.iter().position(|q| q.query_id() == custom.query_id()) {
                Some(i) => out[i] = custom.clone(),
                None => out.push(custom.clone()),
            }
        }
        out
    }

    /// Checks everything a run relies on; the error names the field (`tenderly.queries[2].labels[0].values`).
    pub fn validate(&self) -> Result<(), QueryConfigError> {
        if let Some(db) = &self.app_database {
            validate_db_name(db, "tenderly.app_database")?;
        }
        let required = self.required_indexes.as_deref().unwrap_or_default();
        if required.len() > super::indexes::MAX_REQUIRED {
            return Err(bad("tenderly.required_indexes", "more than 50 indexes", "keep at most 50"));
        }
        for (i, r) in required.iter().enumerate() {
            r.validate().map_err(|e| bad(format!("tenderly.required_indexes[{i}]"), e, "see docs/configuration.md"))?;
        }
        if let Some(interval) = &self.index_check_interval {
            match parse_duration(interval) {
                Ok(d) if d >= Duration::from_secs(1) && d <= MAX_MIN_INTERVAL => {}
                _ => return Err(bad("tenderly.index_check_interval", "not a duration from 1s to 24h", "use e.g. 5m")),
            }
        }
        self.drift.validate().map_err(|e| bad("tenderly.drift", e, "use 0, 1 or 2"))?;
        if self.audit.enabled && self.app_database.is_some() {
            validate_collection(&self.audit.collection, "tenderly.audit.collection")?;
            if !(1..=MAX_RESULTS).contains(&self.audit.max_docs_per_run) {
                return Err(bad("tenderly.audit.max_docs_per_run", "out of range", "use 1 to 10000"));
            }
            if let Some(categories) = &self.audit.categories {
                if categories.len() > audit::MAX_CATEGORIES {
                    return Err(bad("tenderly.audit.categories", "too many categories", "list at most 32"));
                }
                for c in categories {
                    validate_label_value(c, "tenderly.audit.categories")?;
                }
            }
        }
        if self.queries.len() > MAX_QUERIES {
            return Err(bad("tenderly.queries", "more than 100 queries", "keep at most 100"));
        }
        for (i, q) in self.queries.iter().enumerate() {
            q.validate(&format!("tenderly.queries[{i}]"), self.app_database.as_deref())?;
        }
        if let (Some(db), true) = (&self.app_database, self.shipped) {
            for q in shipped_queries(db) {
                q.validate(&format!("tenderly (shipped {})", q.query_id()), Some(db))?;
            }
        }
        // The effective set must be consistent as a whole.
        let all = self.effective_queries();
        let mut ids = HashSet::new();
        let mut families: HashMap<&str, (&str, Vec<&str>)> = HashMap::new();
        for q in &all {
            let field = format!("tenderly.queries ({})", q.query_id());
            if !ids.insert(q.query_id().to_owned()) {
                return Err(bad(field, "duplicate id", "give each query a unique id"));
            }
            let mut label_names: Vec<&str> = q.labels.iter().map(|l| l.name.as_str()).collect();
            label_names.extend(q.const_labels.keys().map(String::as_str));
            label_names.sort_unstable();
            match families.get(q.name.as_str()) {
                Some((help, names)) if *help != q.help || *names != label_names => {
                    return Err(bad(
                        field,
                        format!("metric {} is declared with different help or label names", q.name),
                        "queries sharing a name need the same help and label names",
                    ))
                }
                Some(_) => {}
                None => {
                    families.insert(q.name.as_str(), (q.help.as_str(), label_names));
                }
            }
        }
        Ok(())
    }

    /// Whether queries run on a node of `role`: primaries, standalones and
    /// mongos always; secondaries only with `on_secondaries`; never arbiters.
    pub fn applies_to(&self, role: Role) -> bool {
        match role {
            Role::Primary | Role::Standalone | Role::Mongos => true,
            Role::Secondary => self.on_secondaries,
            Role::Arbiter | Role::OtherMember => false,
        }
    }
}

impl QuerySpec {
    /// The `query` label value.
    pub fn query_id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name)
    }

    fn validate(&self, at: &str, app_db: Option<&str>) -> Result<(), QueryConfigError> {
        let f = |field: &str| format!("{at}.{field}");
        validate_metric_name(&self.name, &f("name"))?;
        if let Some(id) = &self.id {
            let ok = !id.is_empty()
                && id.len() <= MAX_LABEL_VALUE_LEN
                && id.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            if !ok {
                return Err(bad(f("id"), "not a short identifier", "use letters, digits, _ . : - (at most 64)"));
            }
        }
        let help_ok = self.help.len() > 10
            && self.help.len() <= 300
            && self.help.ends_with('.')
            && !self.help.chars().any(char::is_control);
        if !help_ok {
            return Err(bad(f("help"), "not a one-line sentence", "write 11 to 300 characters ending with a period"));
        }
        match (&self.database, app_db) {
            (Some(db), _) => validate_db_name(db, &f("database"))?,
            (None, Some(_)) => {}
            (None, None) => {
                return Err(bad(f("database"), "no database", "set database: or tenderly.app_database"));
            }
        }
        validate_collection(&self.collection, &f("collection"))?;
        match (&self.count, &self.aggregate) {
            (Some(filter), None) => {
                check_query_doc(filter, &f("count"), 0)?;
                if self.value.is_some() || !self.labels.is_empty() || self.max_results.is_some() {
                    return Err(bad(
                        f("count"),
                        "value, labels and max_results apply to aggregate queries only",
                        "remove them or use aggregate:",
                    ));
                }
            }
            (None, Some(pipeline)) => {
                if pipeline.is_empty() {
                    return Err(bad(f("aggregate"), "empty pipeline", "add at least a $group or $count stage"));
                }
                for (i, stage) in pipeline.iter().enumerate() {
                    if stage.len() != 1 {
                        return Err(bad(format!("{at}.aggregate[{i}]"), "a stage has exactly one key", "split it"));
                    }
                    check_query_doc(stage, &format!("{at}.aggregate[{i}]"), 0)?;
                }
                if let Some(v) = &self.value {
                    validate_path(v, &f("value"))?;
                }
                if let Some(n) = self.max_results {
                    if !(1..=MAX_RESULTS).contains(&n) {
                        return Err(bad(f("max_results"), "out of range", "use 1 to 10000"));
                    }
                }
            }
            _ => {
                return Err(bad(at, "needs exactly one of count: or aggregate:", "keep one of them"));
            }
        }
        if self.labels.len() + self.const_labels.len() > MAX_LABELS {
            return Err(bad(f("labels"), "too many labels", "use at most 4 labels (including const_labels)"));
        }
        let mut names = HashSet::new();
        for (i, l) in self.labels.iter().enumerate() {
            let lf = format!("{at}.labels[{i}]");
            validate_label_name(&l.name, &format!("{lf}.name"))?;
            if !names.insert(l.name.as_str()) {
                return Err(bad(format!("{lf}.name"), "duplicate label name", "rename it"));
            }
            validate_path(&l.field, &format!("{lf}.field"))?;
            if l.values.is_empty() || l.values.len() > MAX_LABEL_VALUES {
                return Err(bad(
                    format!("{lf}.values"),
                    "the allow-list must have 1 to 50 values",
                    "list the values that keep their name; others become `other`",
                ));
            }
            let mut seen = HashSet::new();
            for v in &l.values {
                validate_label_value(v, &format!("{lf}.values"))?;
                if !seen.insert(v) {
                    return Err(bad(format!("{lf}.values"), "duplicate value", "list each value once"));
                }
            }
        }
        for (k, v) in &self.const_labels {
            validate_label_name(k, &f("const_labels"))?;
            if !names.insert(k.as_str()) {
                return Err(bad(f("const_labels"), format!("label {k} is declared twice"), "rename it"));
            }
            validate_label_value(v, &f("const_labels"))?;
        }
        if let Some(text) = &self.min_interval {
            let d = parse_duration(text).map_err(|e| bad(f("min_interval"), e, "use e.g. 30s, 5m, 1h"))?;
            if d > MAX_MIN_INTERVAL {
                return Err(bad(f("min_interval"), "longer than 24h", "use at most 24h"));
            }
        }
        Ok(())
    }

    fn interval(&self) -> Duration {
        self.min_interval.as_deref().and_then(|t| parse_duration(t).ok()).unwrap_or(DEFAULT_MIN_INTERVAL)
    }
}

fn validate_metric_name(name: &str, field: &str) -> Result<(), QueryConfigError> {
    let chars_ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !chars_ok || !name.starts_with("tenderly_") || name.len() > 100 {
        return Err(bad(field, format!("'{name}' is not a valid name"), "use tenderly_ followed by [a-z0-9_]"));
    }
    if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(bad(field, format!("'{name}' uses a prefix the exporter owns"), "choose another name"));
    }
    if ["_total", "_created", "_bucket", "_count", "_sum", "_info"].iter().any(|s| name.ends_with(s)) {
        return Err(bad(field, format!("'{name}' ends with a reserved suffix"), "query metrics are gauges"));
    }
    Ok(())
}

fn validate_label_name(name: &str, field: &str) -> Result<(), QueryConfigError> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !name.starts_with("__")
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !["query", "target", "instance", "job"].contains(&name);
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("'{name}' is not a usable label name"),
            "use [a-zA-Z_][a-zA-Z0-9_]*, not query/target/instance/job",
        ))
    }
}

fn validate_label_value(value: &str, field: &str) -> Result<(), QueryConfigError> {
    if value.is_empty() || value.len() > MAX_LABEL_VALUE_LEN || value.chars().any(char::is_control) {
        return Err(bad(
            field,
            "a label value is empty, too long or has control characters",
            "use 1 to 64 printable characters",
        ));
    }
    Ok(())
}

fn validate_db_name(db: &str, field: &str) -> Result<(), QueryConfigError> {
    let ok = !db.is_empty() && db.len() <= 63 && !db.chars().any(|c| "/\\. \"$*<>:|?".contains(c) || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("'{db}' is not a database name"), "use the database name, e.g. tenderly"))
    }
}

fn validate_collection(coll: &str, field: &str) -> Result<(), QueryConfigError> {
    let ok = !coll.is_empty()
        && coll.len() <= 200
        && !coll.contains('$')
        && !coll.starts_with("system.")
        && !coll.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("'{coll}' is not a readable collection name"), "use the collection name, e.g. users"))
    }
}

fn validate_path(path: &str, field: &str) -> Result<(), QueryConfigError> {
    let ok = !path.is_empty() && !path.starts_with('$') && path.split('.').all(|p| !p.is_empty()) && path.len() <= 200;
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("'{path}' is not a field path"), "use a dotted path such as _id or _id.status"))
    }
}

/// Rejects forbidden operators and malformed `$ago` anywhere in `doc`.
fn check_query_doc(doc: &Document, field: &str, depth: usize) -> Result<(), QueryConfigError> {
    if depth > MAX_DEPTH {
        return Err(bad(field, "nested too deeply", "simplify the query"));
    }
    if doc.contains_key(AGO) {
        return match ago_duration(doc) {
            Some(_) => Ok(()),
            None => Err(bad(field, "malformed $ago", "write {$ago: \"24h\"} alone in its object (units ms s m h d w)")),
        };
    }
    for (key, value) in doc {
        if FORBIDDEN_OPERATORS.contains(&key.as_str()) {
            return Err(bad(field, format!("{key} is not allowed"), "queries must be read-only and run no JavaScript"));
        }
        check_query_bson(value, field, depth + 1)?;
    }
    Ok(())
}

fn check_query_bson(value: &Bson, field: &str, depth: usize) -> Result<(), QueryConfigError> {
    match value {
        Bson::Document(d) => check_query_doc(d, field, depth),
        Bson::Array(items) => {
            if depth > MAX_DEPTH {
                return Err(bad(field, "nested too deeply", "simplify the query"));
            }
            items.iter().try_for_each(|v| check_query_bson(v, field, depth + 1))
        }
        Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => {
            Err(bad(field, "JavaScript is not allowed", "queries run no JavaScript"))
        }
        _ => Ok(()),
    }
}

/// `{$ago: "<duration>"}` (exactly one key) to its duration.
fn ago_duration(doc: &Document) -> Option<Duration> {
    if doc.len() != 1 {
        return None;
    }
    match doc.get(AGO)? {
        Bson::String(text) => parse_duration(text).ok().filter(|d| *d <= MAX_AGO),
        _ => None,
    }
}

/// A copy of `doc` with every `{$ago: d}` replaced by the Date `now - d`.
pub fn substitute(doc: &Document, now_ms: i64) -> Document {
    doc.iter().map(|(k, v)| (k.clone(), substitute_bson(v, now_ms))).collect()
}

fn substitute_bson(value: &Bson, now_ms: i64) -> Bson {
    match value {
        Bson::Document(d) => match ago_duration(d) {
            Some(ago) => {
                let ago_ms = i64::try_from(ago.as_millis()).unwrap_or(i64::MAX);
                Bson::DateTime(DateTime::from_millis(now_ms.saturating_sub(ago_ms)))
            }
            None => Bson::Document(substitute(d, now_ms)),
        },
        Bson::Array(items) => Bson::Array(items.iter().map(|v| substitute_bson(v, now_ms)).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// The shipped Tenderly set
// ---------------------------------------------------------------------------

/// `users.accountStatus` values that keep their name (the guide names
/// `pending_mfa_setup`; the rest are the usual account lifecycle states).
pub const ACCOUNT_STATUSES: [&str; 7] =
    ["active", "inactive", "pending_verification", "pending_mfa_setup", "locked", "suspended", "deactivated"];
/// `users.roles` values that keep their name (the guide names `healthcare_provider`).
pub const ROLES: [&str; 4] = ["patient", "healthcare_provider", "admin", "super_admin"];
/// The guide's encryption check: `db.users.find({firstName: /^[a-zA-Z]/}).count() // Should be 0 if encrypted`.
/// Field-level-encrypted values are BSON Binary (subtype 6), which a `$regex` never matches.
pub const PII_PLAINTEXT_REGEX: &str = "^[a-zA-Z]";
/// `(collection, field)` pairs the guide checks for plaintext PII.
pub const PII_FIELDS: [(&str, &str); 1] = [("users", "firstName")];

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn shipped_count(desc: &Desc, db: &str, collection: &str, filter: Document, interval: &str) -> QuerySpec {
    QuerySpec {
        name: desc.name.to_owned(),
        id: None,
        help: desc.help.to_owned(),
        database: Some(db.to_owned()),
        collection: collection.to_owned(),
        count: Some(filter),
        aggregate: None,
        value: None,
        labels: Vec::new(),
        const_labels: BTreeMap::new(),
        min_interval: Some(interval.to_owned()),
        max_results: None,
    }
}

fn shipped_group(desc: &Desc, db: &str, pipeline: Vec<Document>, label: &str, values: &[&str]) -> QuerySpec {
    QuerySpec {
        name: desc.name.to_owned(),
        id: None,
        help: desc.help.to_owned(),
        database: Some(db.to_owned()),
        collection: "users".to_owned(),
        count: None,
        aggregate: Some(pipeline),
        value: Some("count".to_owned()),
        labels: vec![LabelSpec { name: label.to_owned(), field: "_id".to_owned(), values: strings(values) }],
        const_labels: BTreeMap::new(),
        min_interval: Some("5m".to_owned()),
        max_results: Some(DEFAULT_MAX_RESULTS),
    }
}

/// The Tenderly set (DBA guide "Data Queries and Analysis", "Data Encryption",
/// "Daily Tasks") on `app_db`. docs/tenderly-queries.md writes it out as YAML.
pub fn shipped_queries(app_db: &str) -> Vec<QuerySpec> {
    let mut out = vec![
        shipped_group(
            &USERS,
            app_db,
            vec![doc! {"$group": {"_id": "$accountStatus", "count": {"$sum": 1}}}],
            "status",
            &ACCOUNT_STATUSES,
        ),
        shipped_group(
            &USERS_BY_ROLE,
            app_db,
            vec![doc! {"$unwind": "$roles"}, doc! {"$group": {"_id": "$roles", "count": {"$sum": 1}}}],
            "role",
            &ROLES,
        ),
        shipped_count(&USERS_LOCKED, app_db, "users", doc! {"accountLockedUntil": {"$gt": {AGO: "0s"}}}, "1m"),
        shipped_count(&USERS_FAILED_LOGINS, app_db, "users", doc! {"failedLoginAttempts": {"$gt": 0}}, "1m"),
        shipped_count(&USERS_PENDING_MFA, app_db, "users", doc! {"accountStatus": "pending_mfa_setup"}, "1m"),
        shipped_count(&USERS_MULTIPLE_SESSIONS, app_db, "users", doc! {"activeSessions.1": {"$exists": true}}, "1m"),
        // The guide's `isMFAEnabled`: an administrator without MFA is one password away from every record.
        shipped_count(
            &ADMINS_WITHOUT_MFA,
            app_db,
            "users",
            doc! {"roles": {"$in": ["admin", "super_admin"]}, "isMFAEnabled": {"$ne": true}},
            "5m",
        ),
    ];
    for (collection, field) in PII_FIELDS {
        let mut q =
            shipped_count(&PII_PLAINTEXT, app_db, collection, doc! {field: {"$regex": PII_PLAINTEXT_REGEX}}, "10m");
        q.id = Some(format!("pii_plaintext_{collection}_{field}"));
        q.const_labels =
            BTreeMap::from([("collection".to_owned(), collection.to_owned()), ("field".to_owned(), field.to_owned())]);
        out.push(q);
    }
    out.push(shipped_count(
        &AUDIT_PENDING_ARCHIVE,
        app_db,
        "auditlogs",
        doc! {"timestamp": {"$lt": {AGO: "365d"}}, "isArchived": {"$ne": true}},
        "10m",
    ));
    out.push(shipped_count(
        &AUDIT_PAST_RETENTION,
        app_db,
        "auditlogs",
        doc! {"isArchived": true, "timestamp": {"$lt": {AGO: "90d"}}},
        "10m",
    ));
    out
}

// ---------------------------------------------------------------------------
// Interning of configured names
// ---------------------------------------------------------------------------

fn intern(text: &str) -> &'static str {
    static STRINGS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = STRINGS.get_or_init(|| Mutex::new(HashSet::new())).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = set.get(text) {
        return s;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// The descriptor of a configured query's family: a shipped one when name,
/// help and labels match, else one made once per (name, help, labels) and kept
/// for the life of the process (configured families are few and fixed).
fn desc_for(name: &str, help: &str, labels: Vec<&'static str>) -> &'static Desc {
    let same_labels = |d: &Desc| d.labels.len() == labels.len() && labels.iter().all(|l| d.labels.contains(l));
    if let Some(d) = SHIPPED_DESCS.iter().find(|d| d.name == name && d.help == help && same_labels(d)) {
        return d;
    }
    type Key = (&'static str, &'static str, Vec<&'static str>);
    static DESCS: OnceLock<Mutex<HashMap<Key, &'static Desc>>> = OnceLock::new();
    let (name, help) = (intern(name), intern(help));
    let mut map = DESCS.get_or_init(|| Mutex::new(HashMap::new())).lock().unwrap_or_else(|p| p.into_inner());
    map.entry((name, help, labels.clone()))
        .or_insert_with(|| Box::leak(Box::new(Desc::gauge(name, help).labels(Box::leak(labels.into_boxed_slice())))))
}

// ---------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Operation {
    Count(Document),
    Aggregate { pipeline: Vec<Document>, value: String, max_results: usize },
}

#[derive(Debug)]
struct Prepared {
    id: &'static str,
    desc: &'static Desc,
    database: String,
    collection: String,
    operation: Operation,
    labels: Vec<(&'static str, String, Vec<String>)>,
    const_labels: Vec<Label>,
    interval: Duration,
}

#[derive(Debug, Default)]
struct QueryState {
    last_attempt: Option<Instant>,
    /// Monotonic and wall-clock time of the last success.
    last_success: Option<(Instant, SystemTime)>,
    last_ok: Option<bool>,
    values: Vec<(Vec<Label>, Value)>,
    duration: Option<Duration>,
    truncated: bool,
    refused_until: Option<Instant>,
}

#[derive(Debug)]
enum Failure {
    Unauthorized,
    Timeout,
    Other(String),
}

/// Samples of one run, and whether the result was cut at `max_results`.
type RunResult = Result<(Vec<Sample>, bool), Failure>;
type Sample = (Vec<Label>, Value);

struct Outcome {
    index: usize,
    result: RunResult,
    duration: Duration,
}

/// Runs a target's queries and keeps their cached values and audit counters
/// between scrapes. One per MongoDB target with a `tenderly:` section.
#[derive(Debug)]
pub struct QueryRunner {
    target: String,
    queries: Vec<Prepared>,
    states: Mutex<Vec<QueryState>>,
    audit: Option<Mutex<AuditCounter>>,
    audit_state: Mutex<QueryState>,
}

impl QueryRunner {
    /// Builds the runner from a validated section ([`QueriesConfig::validate`];
    /// an invalid query is skipped with a warning rather than panicking).
    pub fn new(target: &str, config: QueriesConfig) -> Self {
        let mut queries = Vec::new();
        for spec in config.effective_queries() {
            let Some(database) = spec.database.clone().or_else(|| config.app_database.clone()) else { continue };
            if spec.validate("tenderly.queries", config.app_database.as_deref()).is_err() {
                tracing::warn!(target_name = %target, query = spec.query_id(), "invalid query skipped");
                continue;
            }
            let operation = match (&spec.count, &spec.aggregate) {
                (Some(filter), _) => Operation::Count(filter.clone()),
                (None, Some(pipeline)) => Operation::Aggregate {
                    pipeline: pipeline.clone(),
                    value: spec.value.clone().unwrap_or_else(|| "count".to_owned()),
                    max_results: spec.max_results.unwrap_or(DEFAULT_MAX_RESULTS),
                },
                (None, None) => continue,
            };
            queries.push(Prepared {
                id: intern(spec.query_id()),
                desc: desc_for(
                    &spec.name,
                    &spec.help,
                    spec.labels
                        .iter()
                        .map(|l| intern(&l.name))
                        .chain(spec.const_labels.keys().map(|k| intern(k)))
                        .collect(),
                ),
                database,
                collection: spec.collection.clone(),
                operation,
                labels: spec.labels.iter().map(|l| (intern(&l.name), l.field.clone(), l.values.clone())).collect(),
                const_labels: spec.const_labels.iter().map(|(k, v)| (intern(k), Cow::Owned(v.clone()))).collect(),
                interval: spec.interval(),
            });
            if queries.len() >= MAX_QUERIES {
                break;
            }
        }
        let audit = match (&config.app_database, config.audit.enabled) {
            (Some(db), true) => {
                let mut counter =
                    AuditCounter::new(db, &config.audit.collection).with_limit(config.audit.max_docs_per_run);
                if let Some(categories) = &config.audit.categories {
                    counter = counter.with_categories(categories);
                }
                Some(Mutex::new(counter))
            }
            _ => None,
        };
        let states = Mutex::new(queries.iter().map(|_| QueryState::default()).collect());
        QueryRunner {
            target: target.to_owned(),
            queries,
            states,
            audit,
            audit_state: Mutex::new(QueryState::default()),
        }
    }

    /// Query ids in run order (tests, doctor).
    pub fn query_ids(&self) -> Vec<&'static str> {
        self.queries.iter().map(|q| q.id).collect()
    }

    /// Every family this runner can emit (its queries' families plus the runner's own).
    pub fn descriptors(&self) -> Vec<&'static Desc> {
        let mut all = vec![&QUERY_SUCCESS, &QUERY_LAST_SUCCESS, &QUERY_DURATION, &QUERY_TRUNCATED];
        for q in &self.queries {
            if !all.iter().any(|d| d.name == q.desc.name) {
                all.push(q.desc);
            }
        }
        if self.audit.is_some() {
            all.extend(audit::descriptors());
        }
        all
    }

    /// Runs the due queries (and the audit read) under `deadline`. Never
    /// panics and never fails as a whole: each query's outcome is data
    /// (`tenderly_query_success{query}`). Returns whether every query that ran succeeded.
    pub async fn run(&self, client: &Client, deadline: Instant) -> bool {
        let started = Instant::now();
        let now_ms = unix_millis(SystemTime::now());
        let due: Vec<usize> = {
            let mut states = lock(&self.states);
            let mut due = Vec::new();
            for (i, (q, s)) in self.queries.iter().zip(states.iter_mut()).enumerate() {
                if s.refused_until.is_some_and(|until| until > started) {
                    continue;
                }
                if s.last_attempt.is_none_or(|t| started.saturating_duration_since(t) >= q.interval) {
                    s.last_attempt = Some(started);
                    due.push(i);
                }
            }
            due
        };
        let queries = futures_util::stream::iter(due)
            .map(|i| self.execute(i, client, deadline, now_ms))
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<Outcome>>();
        let (outcomes, audit_ok) = tokio::join!(queries, self.run_audit(client, deadline));

        let mut all_ok = audit_ok;
        let mut states = lock(&self.states);
        for outcome in outcomes {
            let (Some(q), Some(s)) = (self.queries.get(outcome.index), states.get_mut(outcome.index)) else { continue };
            all_ok &= outcome.result.is_ok();
            record(&self.target, q.id, &q.database, s, outcome.result, outcome.duration);
        }
        // Stale values go, whether or not the query ran this time.
        for (q, s) in self.queries.iter().zip(states.iter_mut()) {
            if s.last_success.is_none_or(|(at, _)| started.saturating_duration_since(at) > q.interval * 2) {
                s.values.clear();
            }
        }
        all_ok
    }

    /// Call instead of [`QueryRunner::run`] when this node should not run the
    /// queries ([`QueriesConfig::applies_to`] is false, e.g. a primary that
    /// stepped down): cached values are dropped (nothing is encoded) and the
    /// audit counters resume from "now" when the node is eligible again, so
    /// events another target counted meanwhile are not counted twice.
    pub fn standby(&self) {
        for s in lock(&self.states).iter_mut() {
            *s = QueryState::default();
        }
        *lock(&self.audit_state) = QueryState::default();
        if let Some(audit) = &self.audit {
            lock(audit).restart_from_now();
        }
    }

    async fn execute(&self, index: usize, client: &Client, deadline: Instant, now_ms: i64) -> Outcome {
        let started = Instant::now();
        let result = match self.queries.get(index) {
            Some(q) => run_query(q, client, deadline, now_ms).await,
            None => Err(Failure::Other("no such query".to_owned())),
        };
        Outcome { index, result, duration: started.elapsed() }
    }

    async fn run_audit(&self, client: &Client, deadline: Instant) -> bool {
        let Some(audit) = &self.audit else { return true };
        let (db, command) = {
            let mut state = lock(&self.audit_state);
            if state.refused_until.is_some_and(|until| until > Instant::now()) {
                return false;
            }
            state.last_attempt = Some(Instant::now());
            let counter = lock(audit);
            (counter.db().to_owned(), (counter.find_command(max_time_ms(deadline)), counter.limit()))
        };
        let (command, limit) = command;
        let started = Instant::now();
        // The server may ignore `limit`: never read more than asked for.
        let result = match cursor_under_deadline(client, &db, command, CursorCaps::docs(limit), deadline).await {
            Ok(docs) => {
                lock(audit).ingest(&docs);
                Ok((Vec::new(), false))
            }
            Err(e) => Err(e),
        };
        let ok = result.is_ok();
        record(&self.target, AUDIT_QUERY_ID, &db, &mut lock(&self.audit_state), result, started.elapsed());
        ok
    }

    /// Emits the cached query values, the runner's own series and the audit counters.
    pub fn encode(&self, out: &mut Exposition) {
        let states = lock(&self.states);
        for (q, s) in self.queries.iter().zip(states.iter()) {
            for (labels, value) in &s.values {
                out.add(q.desc, labels.clone(), value.clone());
            }
            encode_state(q.id, s, out);
        }
        drop(states);
        if let Some(audit) = &self.audit {
            lock(audit).encode(out);
            encode_state(AUDIT_QUERY_ID, &lock(&self.audit_state), out);
        }
    }
}

fn encode_state(id: &'static str, s: &QueryState, out: &mut Exposition) {
    let label = || -> Vec<Label> { vec![("query", Cow::Borrowed(id))] };
    if let Some(ok) = s.last_ok {
        out.add(&QUERY_SUCCESS, label(), ok);
        out.add(&QUERY_TRUNCATED, label(), s.truncated);
    }
    if let Some((_, wall)) = s.last_success {
        out.add(&QUERY_LAST_SUCCESS, label(), unix_millis(wall) as f64 / 1000.0);
    }
    if let Some(d) = s.duration {
        out.add(&QUERY_DURATION, label(), d.as_secs_f64());
    }
}

/// Folds one run's outcome into a query's state; logs transitions once, without document data.
fn record(target: &str, id: &str, db: &str, s: &mut QueryState, result: RunResult, duration: Duration) {
    s.duration = Some(duration);
    match result {
        Ok((values, truncated)) => {
            if s.last_ok == Some(false) {
                tracing::info!(target_name = %target, query = id, "tenderly query recovered");
            }
            s.values = values;
            s.truncated = truncated;
            s.last_ok = Some(true);
            s.last_success = Some((Instant::now(), SystemTime::now()));
            s.refused_until = None;
        }
        Err(failure) => {
            let first = s.last_ok != Some(false);
            s.last_ok = Some(false);
            match failure {
                Failure::Unauthorized => {
                    s.refused_until = Some(Instant::now() + REFUSAL_BACKOFF);
                    tracing::warn!(
                        target_name = %target, query = id, database = db,
                        grant = %format!(r#"db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{{role: "read", db: "{db}"}}])"#),
                        "mongodb refused a tenderly query for lack of privileges; retrying in 10 minutes"
                    );
                }
                Failure::Timeout if first => {
                    tracing::warn!(target_name = %target, query = id, "tenderly query missed the scrape deadline")
                }
                Failure::Other(reason) if first => {
                    tracing::warn!(target_name = %target, query = id, error = %reason, "tenderly query failed")
                }
                Failure::Timeout => {
                    tracing::debug!(target_name = %target, query = id, "tenderly query timed out again")
                }
                Failure::Other(reason) => {
                    tracing::debug!(target_name = %target, query = id, error = %reason, "tenderly query failed again")
                }
            }
        }
    }
}

async fn run_query(q: &Prepared, client: &Client, deadline: Instant, now_ms: i64) -> RunResult {
    match &q.operation {
        Operation::Count(filter) => {
            let command = doc! {
                "count": q.collection.as_str(),
                "query": substitute(filter, now_ms),
                "maxTimeMS": max_time_ms(deadline),
            };
            let reply = command_under_deadline(client, &q.database, command, deadline).await?;
            let n = reply
                .get("n")
                .and_then(bson_num::num)
                .and_then(Num::non_negative)
                .ok_or_else(|| Failure::Other("count reply without n".to_owned()))?;
            Ok((vec![(q.const_labels.clone(), Value::from(n))], false))
        }
        Operation::Aggregate { pipeline, value, max_results } => {
            let mut stages: Vec<Bson> = pipeline.iter().map(|s| Bson::Document(substitute(s, now_ms))).collect();
            let cap = i64::try_from(*max_results).unwrap_or(1000);
            stages.push(Bson::Document(doc! {"$limit": cap + 1}));
            let command = doc! {
                "aggregate": q.collection.as_str(),
                "pipeline": stages,
                "cursor": {"batchSize": cap + 2},
                "maxTimeMS": max_time_ms(deadline),
            };
            // One row more than `max_results` tells "truncated"; a server ignoring
            // `$limit` is cut there too.
            let caps = CursorCaps::docs(max_results.saturating_add(1));
            let rows = cursor_under_deadline(client, &q.database, command, caps, deadline).await?;
            let truncated = rows.len() > *max_results;
            Ok((fold_rows(q, value, &rows[..rows.len().min(*max_results)]), truncated))
        }
    }
}

/// Result rows to samples: label values through the allow-lists (else
/// `other`), values summed per label set, absent allow-listed sets as 0.
fn fold_rows(q: &Prepared, value_field: &str, rows: &[Document]) -> Vec<(Vec<Label>, Value)> {
    let mut sums: Vec<(Vec<String>, Num)> = Vec::new();
    for row in rows {
        let Some(v) = bson_num::num_at(row, value_field) else { continue };
        let key: Vec<String> = q
            .labels
            .iter()
            .map(|(_, field, allowed)| {
                let raw = match bson_num::get(row, field) {
                    Some(Bson::String(s)) => Some(s.clone()),
                    Some(Bson::Boolean(b)) => Some(b.to_string()),
                    Some(Bson::Int32(n)) => Some(n.to_string()),
                    Some(Bson::Int64(n)) => Some(n.to_string()),
                    _ => None,
                };
                match raw {
                    Some(r) if allowed.contains(&r) => r,
                    _ => "other".to_owned(),
                }
            })
            .collect();
        match sums.iter_mut().find(|(k, _)| *k == key) {
            Some((_, total)) => *total = add(*total, v),
            None => sums.push((key, v)),
        }
    }
    let combinations: usize = q.labels.iter().map(|(_, _, allowed)| allowed.len()).product();
    if !q.labels.is_empty() && combinations <= MAX_ZERO_FILL {
        for key in cartesian(q.labels.iter().map(|(_, _, a)| a.as_slice()).collect()) {
            if !sums.iter().any(|(k, _)| *k == key) {
                sums.push((key, Num::Int(0)));
            }
        }
    }
    sums.into_iter()
        .map(|(key, v)| {
            let mut labels = q.const_labels.clone();
            labels.extend(q.labels.iter().zip(key).map(|((name, _, _), value)| (*name, Cow::Owned(value))));
            (labels, Value::from(v))
        })
        .collect()
}

fn cartesian(lists: Vec<&[String]>) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for list in lists {
        out = out
            .into_iter()
            .flat_map(|prefix| list.iter().map(move |v| [prefix.clone(), vec![v.clone()]].concat()))
            .collect();
    }
    out
}

fn add(a: Num, b: Num) -> Num {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.checked_add(y).map_or(Num::Float(x as f64 + y as f64), Num::Int),
        _ => Num::Float(a.as_f64() + b.as_f64()),
    }
}

async fn command_under_deadline(
    client: &Client,
    db: &str,
    command: Document,
    deadline: Instant,
) -> Result<Document, Failure> {
    match timeout_at(deadline, crate::collectors::mongodb::client::run_command(&client.database(db), command)).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Ok(reply)) => {
            bson_guard::check_document(reply, bson_guard::MAX_DEPTH).map_err(|e| Failure::Other(e.to_string()))
        }
        Ok(Err(e)) => Err(driver_failure(&e)),
    }
}

/// A cursor command read through the collector's bounded, depth-checked
/// reader (`client::read_cursor`); the cursor is dropped (and killed) after.
async fn cursor_under_deadline(
    client: &Client,
    db: &str,
    command: Document,
    caps: CursorCaps,
    deadline: Instant,
) -> Result<Vec<Document>, Failure> {
    match timeout_at(deadline, read_cursor(&client.database(db), command, caps)).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Ok(batch)) => Ok(batch.docs),
        Ok(Err(CursorError::Guard(e))) => Err(Failure::Other(e.to_string())),
        Ok(Err(CursorError::Driver(e))) => Err(driver_failure(&e)),
    }
}

fn driver_failure(e: &mongodb::error::Error) -> Failure {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) if c.code == UNAUTHORIZED => Failure::Unauthorized,
        // maxTimeMS expired on the server.
        mongodb::error::ErrorKind::Command(c) if c.code == 50 => Failure::Timeout,
        _ => Failure::Other(describe(e)),
    }
}

fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<QueriesConfig, String> {
        serde_norway::from_str::<QueriesConfig>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn shipped_set_validates_and_names_the_contract_metrics() {
        let c = QueriesConfig { app_database: Some("tenderly".into()), ..QueriesConfig::default() };
        c.validate().expect("shipped set is valid");
        let names: HashSet<String> = c.effective_queries().into_iter().map(|q| q.name).collect();
        for d in SHIPPED_DESCS {
            assert!(names.contains(d.name), "{}", d.name);
            assert!(d.is_well_formed(), "{}", d.name);
        }
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }

    #[test]
    fn yaml_with_placeholders_parses_and_substitutes() {
        let c = config(
            r#"
app_database: tenderly
queries:
  - name: tenderly_auth_failures_recent
    help: Failed authentications in the last 24 hours.
    collection: auditlogs
    count: {category: authentication, success: false, timestamp: {$gte: {$ago: 24h}}}
    min_interval: 5m
"#,
        )
        .expect("parses");
        c.validate().expect("valid");
        let filter = c.queries[0].count.clone().expect("count");
        let s = substitute(&filter, 100_000_000);
        assert_eq!(
            s.get_document("timestamp").expect("ts").get("$gte"),
            Some(&Bson::DateTime(DateTime::from_millis(100_000_000 - 86_400_000)))
        );
    }

    #[test]
    fn forbidden_operators_are_rejected_at_any_depth() {
        for (what, yaml) in [
            ("$out", "aggregate: [{$match: {}}, {$out: x}]"),
            ("$merge", "aggregate: [{$facet: {a: [{$merge: {into: x}}]}}]"),
            ("$where", "count: {$or: [{$where: 'true'}]}"),
            ("$function", "aggregate: [{$project: {x: {$function: {body: 'f', args: [], lang: js}}}}]"),
            ("$accumulator", "aggregate: [{$group: {_id: null, x: {$accumulator: {}}}}]"),
        ] {
            let text = format!("app_database: app\nqueries:\n  - name: tenderly_x\n    help: A test query here.\n    collection: c\n    {yaml}\n");
            let c = config(&text).expect("parses");
            let err = c.validate().expect_err(what);
            assert!(err.problem.contains(what), "{what}: {err}");
        }
    }

    #[test]
    fn bad_names_labels_and_intervals_are_rejected() {
        let base = |extra: &str, name: &str| {
            format!("app_database: app\nqueries:\n  - name: {name}\n    help: A test query here.\n    collection: c\n{extra}")
        };
        let cases = [
            base("    count: {}\n", "users_total_x"),
            base("    count: {}\n", "tenderly_query_x"),
            base("    count: {}\n", "tenderly_Users"),
            base("    count: {}\n    min_interval: forever\n", "tenderly_x"),
            base("    aggregate: [{$group: {_id: $a, count: {$sum: 1}}}]\n    labels: [{name: s, field: _id, values: []}]\n", "tenderly_x"),
            base("    count: {}\n    labels: [{name: s, field: _id, values: [a]}]\n", "tenderly_x"),
            base("    count: {a: {$ago: 24x}}\n", "tenderly_x"),
            base("    count: {}\n    aggregate: [{$count: n}]\n", "tenderly_x"),
        ];
        for case in cases {
            let c = config(&case).expect("parses");
            assert!(c.validate().is_err(), "{case}");
        }
        assert!(config("bogus: 1").is_err(), "unknown keys are rejected");
    }

    #[test]
    fn custom_query_with_a_shipped_id_replaces_it() {
        let c = config(
            "app_database: app\nqueries:\n  - name: tenderly_users_locked\n    help: Locked accounts, our way.\n    collection: people\n    count: {locked: true}\n",
        )
        .expect("parses");
        c.validate().expect("valid");
        let q = c.effective_queries();
        assert_eq!(q.iter().filter(|q| q.name == "tenderly_users_locked").count(), 1);
        assert!(q.iter().any(|q| q.collection == "people"));
    }

    #[test]
    fn rows_fold_through_the_allow_list_and_absent_values_are_zero() {
        let runner =
            QueryRunner::new("t", QueriesConfig { app_database: Some("app".into()), ..QueriesConfig::default() });
        let q = runner.queries.iter().find(|q| q.id == "tenderly_users").expect("users query");
        let rows = vec![
            doc! {"_id": "active", "count": 5},
            doc! {"_id": "jane.doe@example.com", "count": 2},
            doc! {"_id": Bson::Null, "count": 1i64},
        ];
        let samples = fold_rows(q, "count", &rows);
        let get = |v: &str| samples.iter().find(|(l, _)| l[0].1 == v).map(|(_, v)| v.as_f64());
        assert_eq!(get("active"), Some(5.0));
        assert_eq!(get("other"), Some(3.0));
        assert_eq!(get("locked"), Some(0.0));
        assert!(get("jane.doe@example.com").is_none());
    }
}
