//! The indexes the Tenderly application relies on, checked with
//! `listIndexes`: `tenderly_required_index{collection,index}` is 1 when an
//! index with the required shape exists and 0 when it is missing or differs.
//!
//! Why shape, not name: `reIndex`, a migration or an operator recreating an
//! index by hand can keep the name and lose `unique` or the TTL, which is the
//! failure that matters (duplicate accounts; sessions that never expire). So an
//! index matches when its `key` document has the same fields in the same order
//! with the same directions/types, its `unique` equals the requirement (absent
//! means false), and its `expireAfterSeconds` equals the requirement (absent
//! means "no TTL": a TTL on `users.email` would delete accounts).
//!
//! The defaults are the DBA guide's (`users.email` unique,
//! `users.{roles,accountStatus}`, `sessions.expiresAt` TTL with
//! `expireAfterSeconds: 0`) plus the `auditlogs.timestamp` index the audit
//! counters' range scan relies on (see [`super::audit`]). Indexes change
//! rarely, so the reading is cached ([`DEFAULT_INTERVAL`]); each run is one
//! `listIndexes` per collection, under the scrape deadline, with `maxTimeMS`.
//! It needs the `listIndexes` action on the app database (the built-in `read`
//! role has it; `doctor` checks it). A collection that does not exist gives 0
//! for each of its indexes; a refused or failed read gives no sample for that
//! collection (unknown is not missing) and a log line.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use serde::Deserialize;
use tokio::time::{timeout_at, Instant};

use crate::collectors::mongodb::bson_guard::CursorCaps;
use crate::collectors::mongodb::bson_num;
use crate::collectors::mongodb::client::{max_time_ms, read_cursor, CursorError};
use crate::metrics::{Desc, Exposition, Label};

pub const REQUIRED_INDEX: Desc = Desc::gauge(
    "tenderly_required_index",
    "Whether an index the Tenderly application needs exists with the required keys, unique flag and TTL (1) or is missing or different (0), from listIndexes.",
)
.labels(&["target", "collection", "index"]);

/// How long a `listIndexes` reading is reused.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Most required indexes per target.
pub const MAX_REQUIRED: usize = 50;
/// Most indexes read per collection (MongoDB allows 64).
const MAX_INDEXES: usize = 100;
/// `NamespaceNotFound`: the collection does not exist.
const NAMESPACE_NOT_FOUND: i32 = 26;

/// Every descriptor this module emits.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&REQUIRED_INDEX]
}

/// One required index (`tenderly.required_indexes[]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequiredIndex {
    pub collection: String,
    /// Key fields in order: `field` (ascending), `field:-1` (descending) or
    /// `field:<type>` (`text`, `2dsphere`, `hashed`, ...).
    pub keys: Vec<String>,
    #[serde(default)]
    pub unique: bool,
    /// The TTL in seconds (`expireAfterSeconds`); absent means no TTL.
    #[serde(default)]
    pub expire_after_seconds: Option<i64>,
    /// The `index` label; default MongoDB's own default name (`email_1`).
    #[serde(default)]
    pub name: Option<String>,
}

/// One key component as the server reports it.
#[derive(Debug, Clone, PartialEq)]
enum KeyKind {
    Direction(f64),
    Type(String),
}

impl RequiredIndex {
    fn new(collection: &str, keys: &[&str], unique: bool, ttl: Option<i64>) -> Self {
        RequiredIndex {
            collection: collection.to_owned(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            unique,
            expire_after_seconds: ttl,
            name: None,
        }
    }

    fn parsed_keys(&self) -> Vec<(&str, KeyKind)> {
        self.keys
            .iter()
            .map(|k| match k.rsplit_once(':') {
                Some((field, kind)) => match kind.parse::<f64>() {
                    Ok(dir) => (field, KeyKind::Direction(dir)),
                    Err(_) => (field, KeyKind::Type(kind.to_owned())),
                },
                None => (k.as_str(), KeyKind::Direction(1.0)),
            })
            .collect()
    }

    /// The `index` label: the configured name, else MongoDB's default index name.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        self.parsed_keys()
            .iter()
            .map(|(field, kind)| match kind {
                KeyKind::Direction(d) => format!("{field}_{d}"),
                KeyKind::Type(t) => format!("{field}_{t}"),
            })
            .collect::<Vec<_>>()
            .join("_")
    }

    /// Whether `spec` (one `listIndexes` document) has the required shape.
    pub fn matches(&self, spec: &Document) -> bool {
        let Ok(key) = spec.get_document("key") else { return false };
        let wanted = self.parsed_keys();
        if key.len() != wanted.len() {
            return false;
        }
        let keys_match = key.iter().zip(&wanted).all(|((field, value), (want_field, want_kind))| {
            field == want_field
                && match (want_kind, value) {
                    (KeyKind::Type(t), Bson::String(s)) => s == t,
                    (KeyKind::Direction(d), v) => bson_num::num(v).is_some_and(|n| n.as_f64() == *d),
                    _ => false,
                }
        });
        let unique = bson_num::bool_of(spec.get("unique")).unwrap_or(false);
        let ttl = spec.get("expireAfterSeconds").and_then(bson_num::num).map(|n| n.as_f64() as i64);
        keys_match && unique == self.unique && ttl == self.expire_after_seconds
    }

    pub fn validate(&self) -> Result<(), String> {
        let ok_name = |s: &str| !s.is_empty() && s.len() <= 120 && !s.starts_with('$') && !s.contains('\0');
        if !ok_name(&self.collection) {
            return Err(format!("collection {:?} is not a collection name", self.collection));
        }
        if self.keys.is_empty() || self.keys.len() > 32 || !self.keys.iter().all(|k| ok_name(k)) {
            return Err(format!("keys of {}: 1 to 32 field names", self.collection));
        }
        if self.expire_after_seconds.is_some_and(|s| s < 0) {
            return Err(format!("expire_after_seconds of {} is negative", self.collection));
        }
        if self.label().len() > 128 {
            return Err(format!("index name of {} is longer than 128 bytes", self.collection));
        }
        Ok(())
    }
}

/// The shipped requirements: the DBA guide's indexes plus the audit counters' time index.
pub fn default_required() -> Vec<RequiredIndex> {
    vec![
        RequiredIndex::new("users", &["email"], true, None),
        RequiredIndex::new("users", &["roles", "accountStatus"], false, None),
        RequiredIndex::new("sessions", &["expiresAt"], false, Some(0)),
        RequiredIndex::new("auditlogs", &["timestamp"], false, None),
    ]
}

/// One reading: `(collection, index label, present)` per requirement that could be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexReport {
    pub results: Vec<(String, String, bool)>,
}

impl IndexReport {
    pub fn encode(&self, target: &str, out: &mut Exposition) {
        for (collection, index, present) in &self.results {
            let labels: Vec<Label> = vec![
                ("target", Cow::Owned(target.to_owned())),
                ("collection", Cow::Owned(collection.clone())),
                ("index", Cow::Owned(index.clone())),
            ];
            out.add(&REQUIRED_INDEX, labels, *present);
        }
    }
}

/// Checks `required` against the indexes read per collection (pure). A
/// collection absent from `indexes` could not be read: its requirements get
/// no result (unknown is not missing); an empty list (no such collection) gives 0.
pub fn evaluate(required: &[RequiredIndex], indexes: &BTreeMap<String, Vec<Document>>) -> IndexReport {
    let mut report = IndexReport::default();
    for req in required {
        let Some(listed) = indexes.get(&req.collection) else { continue };
        let present = listed.iter().any(|s| req.matches(s));
        report.results.push((req.collection.clone(), req.label(), present));
    }
    report
}

/// Reads the indexes of every collection `required` names, on `db`, before `deadline`.
pub async fn check(
    client: &Client,
    db: &str,
    required: &[RequiredIndex],
    target: &str,
    deadline: Instant,
) -> IndexReport {
    let database = client.database(db);
    let mut indexes: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    let collections: std::collections::BTreeSet<&str> = required.iter().map(|r| r.collection.as_str()).collect();
    for coll in collections {
        let command = doc! {"listIndexes": coll, "maxTimeMS": max_time_ms(deadline)};
        match timeout_at(deadline, read_cursor(&database, command, CursorCaps::docs(MAX_INDEXES))).await {
            Ok(Ok(batch)) => {
                indexes.insert(coll.to_owned(), batch.docs);
            }
            Ok(Err(CursorError::Driver(e))) if command_code(&e) == Some(NAMESPACE_NOT_FOUND) => {
                indexes.insert(coll.to_owned(), Vec::new());
            }
            Ok(Err(e)) => {
                let error = match &e {
                    CursorError::Driver(e) => crate::collectors::mongodb::client::describe(e),
                    CursorError::Guard(g) => g.to_string(),
                };
                tracing::warn!(target_name = %target, collection = %coll, %error, "listIndexes failed; grant the read role (listIndexes action) on the app database");
            }
            Err(_) => {
                tracing::warn!(target_name = %target, collection = %coll, "listIndexes: scrape deadline reached");
                break;
            }
        }
    }
    evaluate(required, &indexes)
}

/// The grant `doctor` prints when `listIndexes` is refused.
pub const GRANT: &str = r#"db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{role: "read", db: "<app database>"}]) (or a role with the listIndexes action on it)"#;

/// `doctor`'s check: whether `listIndexes` on `db.collection` is allowed.
/// `Ok(())` also when the collection does not exist (the privilege is there).
pub async fn probe(client: &Client, db: &str, collection: &str, deadline: Instant) -> Result<(), String> {
    let command = doc! {"listIndexes": collection, "maxTimeMS": max_time_ms(deadline)};
    match timeout_at(deadline, read_cursor(&client.database(db), command, CursorCaps::docs(MAX_INDEXES))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(CursorError::Driver(e))) if command_code(&e) == Some(NAMESPACE_NOT_FOUND) => Ok(()),
        Ok(Err(CursorError::Driver(e)))
            if command_code(&e) == Some(crate::collectors::mongodb::client::UNAUTHORIZED) =>
        {
            Err(format!("listIndexes on {db} not authorized; fix: {GRANT}"))
        }
        Ok(Err(CursorError::Driver(e))) => Err(crate::collectors::mongodb::client::describe(&e)),
        Ok(Err(CursorError::Guard(g))) => Err(g.to_string()),
        Err(_) => Err("deadline exceeded".to_owned()),
    }
}

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(specs: Vec<Document>) -> BTreeMap<String, Vec<Document>> {
        let mut m = BTreeMap::new();
        for coll in ["users", "sessions", "auditlogs"] {
            let of: Vec<Document> = specs.iter().filter(|s| s.get_str("coll").ok() == Some(coll)).cloned().collect();
            m.insert(coll.to_owned(), of);
        }
        m
    }

    #[test]
    fn shape_not_name_decides() {
        let ttl = RequiredIndex::new("sessions", &["expiresAt"], false, Some(0));
        assert_eq!(ttl.label(), "expiresAt_1");
        assert!(ttl.matches(&doc! {"v": 2, "key": {"expiresAt": 1}, "name": "x", "expireAfterSeconds": 0}));
        assert!(ttl.matches(&doc! {"key": {"expiresAt": 1.0}, "name": "x", "expireAfterSeconds": 0i64}));
        assert!(!ttl.matches(&doc! {"key": {"expiresAt": 1}, "name": "expiresAt_1"}), "TTL lost");
        assert!(!ttl.matches(&doc! {"key": {"expiresAt": -1}, "expireAfterSeconds": 0}), "direction");
        let email = RequiredIndex::new("users", &["email"], true, None);
        assert!(email.matches(&doc! {"key": {"email": 1}, "unique": true}));
        assert!(!email.matches(&doc! {"key": {"email": 1}}), "unique lost");
        assert!(!email.matches(&doc! {"key": {"email": 1}, "unique": true, "expireAfterSeconds": 60}), "TTL added");
        let compound = RequiredIndex::new("users", &["roles", "accountStatus"], false, None);
        assert_eq!(compound.label(), "roles_1_accountStatus_1");
        assert!(!compound.matches(&doc! {"key": {"accountStatus": 1, "roles": 1}}), "order matters");
        let text = RequiredIndex::new("c", &["body:text"], false, None);
        assert!(text.matches(&doc! {"key": {"body": "text"}}));
        assert!(!text.matches(&doc! {"key": "not a document"}));
    }

    #[test]
    fn missing_collections_are_zero_and_unread_ones_absent() {
        let required = default_required();
        let mut m = listed(vec![doc! {"coll": "users", "key": {"email": 1}, "unique": true}]);
        m.remove("auditlogs");
        let r = evaluate(&required, &m);
        let find = |c: &str, i: &str| r.results.iter().find(|(cc, ii, _)| cc == c && ii == i).map(|x| x.2);
        assert_eq!(find("users", "email_1"), Some(true));
        assert_eq!(find("users", "roles_1_accountStatus_1"), Some(false));
        assert_eq!(find("sessions", "expiresAt_1"), Some(false));
        assert_eq!(find("auditlogs", "timestamp_1"), None);
    }

    #[test]
    fn validation_rejects_nonsense() {
        assert!(RequiredIndex::new("", &["a"], false, None).validate().is_err());
        assert!(RequiredIndex::new("c", &[], false, None).validate().is_err());
        assert!(RequiredIndex::new("c", &["a"], false, Some(-1)).validate().is_err());
        assert!(default_required().iter().all(|r| r.validate().is_ok()));
    }
}
