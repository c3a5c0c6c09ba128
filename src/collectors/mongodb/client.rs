//! MongoDB I/O: one `mongodb::Client` per target for the life of the process,
//! the node's role from `hello` on every scrape, then only the commands that
//! work on that role, concurrently, each bounded by the scrape deadline.
//!
//! Why these choices (the complaints about percona/mongodb_exporter):
//! - One client, small pool: a client per scrape costs a TCP connection and a
//!   SCRAM handshake per scrape per target (~12k handshakes a day at 15 s).
//! - Direct connection to the named host unless the URI says otherwise: the
//!   exporter describes the node it is pointed at, never "some member".
//! - When the URI does ask for replica-set discovery (`replicaSet=`, several
//!   seeds, SRV, `directConnection=false`), the driver monitors every host the
//!   servers advertise in `hello.hosts` (monitoring connections carry no
//!   credentials). Credentials only go to servers the driver *selects*, so the
//!   client's selection criteria are a predicate that accepts only hosts the
//!   target's trust policy allows ([`crate::trust`]: the seed list, the SRV
//!   domain, `members_allowed`), and `minPoolSize` is forced to 0 so no
//!   authenticated connection is opened ahead of selection. Member clients
//!   (`/probe?member=`) are always direct, to an already checked host.
//! - `hello` each scrape (it needs no privileges and is answered from memory):
//!   roles change on failover, and running `replSetGetStatus` on a mongos or
//!   `local.oplog.rs` reads on a standalone would fill the server log with errors.
//! - Commands are plain `runCommand`s (`find`/`aggregate` with a single batch), so
//!   no cursor is ever left open on the server.
//! - Every reply is untrusted (see `bson_guard`): cursor commands are read as raw
//!   documents, each checked for nesting depth without recursion before it is
//!   decoded, and at most a fixed number of documents and bytes are read whatever
//!   the server does with `limit`; the cursor is then dropped (the driver kills
//!   it). Replies of other commands are decoded by the driver, which checks
//!   their depth first at the wire layer (patched, `vendor/README.md`); the
//!   exporter checks them again before any walk and takes too deep a reply
//!   apart without recursion.
//! - A command refused with `Unauthorized` (13) is not retried for ten minutes
//!   and is logged once with the grant that fixes it (`doctor` prints the same).

use std::collections::BTreeMap;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::options::{ClientOptions, Credential, ReadPreference, SelectionCriteria, ServerMonitoringMode};
use mongodb::Client;
use tokio::sync::Mutex;
use tokio::time::{timeout_at, Instant};

use super::bson_guard::{self, Batch, BatchBuilder, CursorCaps, GuardError};
use super::collstats::{self, CollectionStats, Namespace};
use super::MongoOptions;
use super::{current_op, dbstats, oplog, profile, replset, server_status, MongoSnapshot, NodeInfo, Role};

/// How long a refused command is left alone before it is tried again (privileges
/// can be granted while the exporter runs).
pub const REFUSAL_BACKOFF: Duration = Duration::from_secs(600);

/// MongoDB's `Unauthorized` error code.
pub const UNAUTHORIZED: i32 = 13;

/// How long `hello` may take on a target that was unreachable at its last
/// attempt: long enough for a server the driver's monitor already sees again,
/// far shorter than a new server-selection timeout (5 s), so `/metrics`
/// answers `up 0` at once for a dead MongoDB next to healthy targets.
pub const DOWN_PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Longest pause between two probes of an unreachable target (the driver's
/// own monitor keeps checking the server in between).
const MAX_DOWN_BACKOFF: Duration = Duration::from_secs(30);

/// Whether the target answered at its last attempt, and when to try again.
#[derive(Debug, Default)]
struct Reachability {
    /// Consecutive attempts that found the server unreachable.
    failures: u32,
    /// The last failure's description (credential-free).
    reason: String,
    /// No attempt before this instant; `None`: probe at the next scrape.
    next_probe: Option<Instant>,
}

/// One MongoDB collector's outcome within a scrape (for self-metrics and `doctor`).
#[derive(Debug, Clone, PartialEq)]
pub struct SectionRun {
    /// `mongodb`, `mongodb_replset`, `mongodb_oplog`, `mongodb_currentop`, `mongodb_dbstats`, `mongodb_profiler`.
    pub collector: &'static str,
    pub outcome: SectionOutcome,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SectionOutcome {
    Ok,
    /// Not applicable to this node's role or disabled: not a failure.
    Skipped(&'static str),
    /// Refused for lack of a privilege: the command and the grant that fixes it.
    Unauthorized {
        command: &'static str,
        grant: &'static str,
    },
    Failed(String),
}

impl SectionOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, SectionOutcome::Unauthorized { .. } | SectionOutcome::Failed(_))
    }
}

/// Why a scrape failed as a whole (the node could not be asked anything).
#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    #[error("invalid connection settings: {0}")]
    Options(String),
    #[error("deadline exceeded during {0}")]
    Timeout(&'static str),
    #[error("{command} failed: {reason}")]
    Command { command: &'static str, reason: String },
    /// The target was unreachable at its last attempt and is backing off.
    #[error("unreachable at the last {failures} attempt(s) ({reason}); next attempt in {wait_ms} ms")]
    Down { failures: u32, reason: String, wait_ms: u128 },
}

impl MongoError {
    /// Whether the server refused the credentials (a rotated password, say).
    pub fn is_auth(&self) -> bool {
        matches!(self, MongoError::Command { reason, .. } if reason == AUTHENTICATION_FAILED)
    }

    /// The command refused for lack of privileges (server error 13), if that is what failed.
    pub fn unauthorized_command(&self) -> Option<&'static str> {
        match self {
            MongoError::Command { command, reason } if reason.contains("(Unauthorized)") => Some(command),
            _ => None,
        }
    }

    /// Whether the server could not be reached at all (as opposed to an
    /// answer that refused or failed): what marks the target down.
    fn is_unreachable(&self) -> bool {
        match self {
            MongoError::Timeout(_) | MongoError::Down { .. } => true,
            MongoError::Command { reason, .. } => {
                !reason.starts_with("server error") && reason != AUTHENTICATION_FAILED && reason != "invalid argument"
            }
            MongoError::Options(_) => false,
        }
    }
}

/// [`describe`]'s text for a driver authentication error.
pub const AUTHENTICATION_FAILED: &str = "authentication failed";

/// Result of one scrape: the snapshot plus each collector's outcome.
#[derive(Debug, Clone, Default)]
pub struct MongoScrape {
    pub snapshot: MongoSnapshot,
    pub sections: Vec<SectionRun>,
}

/// A MongoDB target's client and the state kept between scrapes.
pub struct MongoClient {
    target: String,
    spec: MongoOptions,
    client: Mutex<Option<Client>>,
    /// Profiler high-water marks and cumulative counters per database.
    profiles: StdMutex<BTreeMap<String, profile::DbProfile>>,
    /// Commands refused with Unauthorized, and when to try again.
    refused: StdMutex<BTreeMap<&'static str, Instant>>,
    /// Commands whose reply was refused or cut by `bson_guard` (logged once each).
    guarded: StdMutex<std::collections::BTreeSet<&'static str>>,
    /// A replica-set member discovered from this target (`/probe?member=`):
    /// the target's options, this host, `directConnection=true`.
    member: Option<(String, u16)>,
    /// Unreachable at the last attempt: scrapes answer at once until the next probe.
    reach: StdMutex<Reachability>,
}

impl std::fmt::Debug for MongoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoClient").field("target", &self.target).field("spec", &self.spec).finish()
    }
}

impl MongoClient {
    pub fn new(target: impl Into<String>, spec: MongoOptions) -> Self {
        MongoClient {
            target: target.into(),
            client: Mutex::new(None),
            profiles: StdMutex::new(BTreeMap::new()),
            refused: StdMutex::new(BTreeMap::new()),
            guarded: StdMutex::new(std::collections::BTreeSet::new()),
            member: None,
            reach: StdMutex::new(Reachability::default()),
            spec,
        }
    }

    /// A client for one member of the target's deployment: the same connection
    /// options and credentials, but only `host:port`, connected directly.
    pub fn for_member(target: impl Into<String>, spec: MongoOptions, host: String, port: u16) -> Self {
        let mut client = MongoClient::new(target, spec);
        client.member = Some((host, port));
        client
    }

    /// The node's `hello` reply (no privileges needed), under `deadline`.
    pub async fn hello(&self, deadline: Instant) -> Result<Document, MongoError> {
        let client = self.client(deadline).await?;
        run(&client.database("admin"), doc! {"hello": 1}, deadline, "hello").await
    }

    /// One scrape under `deadline`. Fails as a whole only when `hello` or
    /// `serverStatus` fails; other collectors fail alone (see `sections`).
    pub async fn scrape(&self, deadline: Instant) -> Result<MongoScrape, MongoError> {
        let client = self.client(deadline).await?;
        let admin = client.database("admin");
        let started = Instant::now();
        let hello_deadline = self.hello_deadline(deadline)?;
        let hello = match run(&admin, doc! {"hello": 1}, hello_deadline, "hello").await {
            Ok(hello) => {
                self.note_reachable();
                hello
            }
            Err(e) => {
                if e.is_unreachable() {
                    self.note_unreachable(&e);
                }
                return Err(e);
            }
        };
        let node = node_info(&hello);
        let status = run(&admin, doc! {"serverStatus": 1}, deadline, "serverStatus").await?;
        let mut scrape = MongoScrape::default();
        scrape.snapshot.node = node.clone();
        scrape.snapshot.server_status = Some(server_status::parse(&status));
        scrape.sections.push(SectionRun {
            collector: "mongodb",
            outcome: SectionOutcome::Ok,
            duration: started.elapsed(),
        });

        let c = self.spec.collectors;
        let data_bearing_member = node.role.is_replica_member() && node.role != Role::Arbiter;
        let (replset, oplog, currentop, dbs) = tokio::join!(
            self.section("mongodb_replset", c.replset, data_bearing_member, "not a replica-set member", || {
                self.replset(&client, deadline)
            }),
            self.section("mongodb_oplog", c.oplog, data_bearing_member, "no oplog on this role", || {
                self.oplog(&client, deadline)
            }),
            self.section("mongodb_currentop", c.currentop, node.role != Role::Arbiter, "arbiter", || {
                self.current_op(&client, deadline)
            }),
            self.section(
                "mongodb_dbstats",
                c.dbstats || c.profiler || c.collstats || c.indexstats,
                node.role != Role::Arbiter,
                "arbiter",
                || self.databases(&client, deadline)
            ),
        );
        let (run_replset, replset) = replset;
        if let Some((status, config)) = replset {
            scrape.snapshot.replset_status = Some(status);
            scrape.snapshot.replset_config = config;
        }
        let (mut run_oplog, window) = oplog;
        // What was read is kept; a read that failed still fails the collector
        // (an oplog-window alert must not go quiet on a collector reporting success).
        let (window, partial_failure) = window.unwrap_or((None, None));
        if let Some(outcome) = partial_failure {
            run_oplog.outcome = outcome;
        }
        scrape.snapshot.oplog = window;
        let (run_currentop, ops) = currentop;
        scrape.snapshot.current_op = ops;
        let (mut run_dbs, dbs) = dbs;
        scrape.sections.extend([run_replset, run_oplog, run_currentop]);
        // Why the database list is missing, for the per-collection collectors.
        let dbs_missing = dbs.is_none().then(|| run_dbs.outcome.clone());
        let dbs = dbs.unwrap_or_default();

        if c.dbstats {
            run_dbs.collector = "mongodb_dbstats";
            let started = Instant::now();
            let (stats, outcome) = self.dbstats(&client, &dbs, deadline).await;
            scrape.snapshot.dbstats = stats;
            run_dbs.duration += started.elapsed();
            if run_dbs.outcome == SectionOutcome::Ok {
                run_dbs.outcome = outcome;
            }
            scrape.sections.push(run_dbs.clone());
        }
        let (run_profiler, profiles) = self
            .section(
                "mongodb_profiler",
                c.profiler,
                node.role != Role::Arbiter && node.role != Role::Mongos,
                "no profiler on this role",
                || self.profiler(&client, &dbs, deadline),
            )
            .await;
        scrape.snapshot.profiler = profiles.unwrap_or_default();
        scrape.sections.push(run_profiler);
        let dbs = match dbs_missing {
            None => Ok(dbs.as_slice()),
            Some(outcome) => Err(outcome),
        };
        self.collections(&client, &node, dbs, deadline, &mut scrape).await;
        Ok(scrape)
    }

    /// `top`, `$collStats` and `$indexStats` (each opt-in) for at most
    /// `max_collections` collections (see `collstats::select`).
    async fn collections(
        &self,
        client: &Client,
        node: &NodeInfo,
        dbs: Result<&[String], SectionOutcome>,
        deadline: Instant,
        scrape: &mut MongoScrape,
    ) {
        let c = self.spec.collectors;
        if !(c.top || c.collstats || c.indexstats) {
            return;
        }
        let (run_top, top) = self
            .section(
                "mongodb_top",
                c.top,
                node.role != Role::Arbiter && node.role != Role::Mongos,
                "no top on this role",
                || self.top(client, deadline),
            )
            .await;
        scrape.sections.push(run_top);
        let per_collection = (c.collstats || c.indexstats) && node.role != Role::Arbiter;
        let listed = match dbs {
            Ok(dbs) if per_collection => self.list_collections(client, dbs, deadline).await,
            Ok(_) => Err(SectionOutcome::Skipped("arbiter")),
            Err(outcome) => Err(outcome),
        };
        let chosen = collstats::select(
            listed.as_ref().ok().map(Vec::as_slice),
            top.as_deref(),
            self.spec.limits.max_collections,
        );
        let mut stats = CollectionStats::default();
        if let Some(mut entries) = top {
            let keep: std::collections::BTreeSet<&Namespace> = chosen.iter().collect();
            entries.retain(|e| keep.contains(&e.ns));
            stats.top = entries;
        }
        let listed = listed.map(|_| ());
        let applies = node.role != Role::Arbiter;
        let (collstats_run, indexstats_run) = tokio::join!(
            self.section("mongodb_collstats", c.collstats, applies, "arbiter", || async {
                listed.clone()?;
                self.coll_stats(client, &chosen, deadline).await
            }),
            self.section("mongodb_indexstats", c.indexstats, applies, "arbiter", || async {
                listed.clone()?;
                self.index_stats(client, &chosen, deadline).await
            }),
        );
        let (run_collstats, colls) = collstats_run;
        let (run_indexstats, indexes) = indexstats_run;
        stats.collections = colls.unwrap_or_default();
        stats.indexes = indexes.unwrap_or_default();
        scrape.sections.extend([run_collstats, run_indexstats]);
        scrape.snapshot.collections = Some(stats);
    }

    async fn top(&self, client: &Client, deadline: Instant) -> Result<Vec<collstats::TopEntry>, SectionOutcome> {
        let reply = self.command(&client.database("admin"), doc! {"top": 1}, deadline, "top").await?;
        Ok(collstats::parse_top(&reply))
    }

    /// User collections of `dbs` (not views), one `listCollections` per database,
    /// at most [`LIST_COLLECTIONS_BATCH`] per database. Fails only if every database failed.
    async fn list_collections(
        &self,
        client: &Client,
        dbs: &[String],
        deadline: Instant,
    ) -> Result<Vec<Namespace>, SectionOutcome> {
        let calls = dbs.iter().filter(|db| collstats::wanted_db(db)).map(|name| async move {
            let db = client.database(name);
            let reply = self
                .cursor(
                    &db,
                    doc! {"listCollections": 1, "nameOnly": true, "authorizedCollections": true,
                    "filter": {"type": "collection"}, "cursor": {"batchSize": LIST_COLLECTIONS_BATCH}},
                    CursorCaps::docs(LIST_COLLECTIONS_BATCH as usize),
                    deadline,
                    "listCollections",
                )
                .await;
            (name, reply)
        });
        let mut names = Vec::new();
        let mut failure = None;
        let mut answered = false;
        for (db, reply) in futures_util::future::join_all(calls).await {
            match reply {
                Ok(batch) => {
                    answered = true;
                    names.extend(collstats::parse_list_collection_docs(db, &batch.docs));
                }
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) if !answered => Err(e),
            _ => Ok(names),
        }
    }

    /// `$collStats: {storageStats: {}}` per chosen collection. Fails only if every call failed.
    async fn coll_stats(
        &self,
        client: &Client,
        chosen: &[Namespace],
        deadline: Instant,
    ) -> Result<Vec<collstats::CollStats>, SectionOutcome> {
        let replies =
            self.per_collection(client, chosen, doc! {"$collStats": {"storageStats": {}}}, "$collStats", deadline);
        let (replies, failure) = replies.await;
        let stats = replies.iter().filter_map(|(ns, docs)| collstats::parse_coll_stats(ns, docs)).collect();
        match failure {
            Some(e) if replies.is_empty() => Err(e),
            _ => Ok(stats),
        }
    }

    /// `$indexStats` per chosen collection. Fails only if every call failed.
    async fn index_stats(
        &self,
        client: &Client,
        chosen: &[Namespace],
        deadline: Instant,
    ) -> Result<Vec<collstats::IndexStats>, SectionOutcome> {
        let (replies, failure) =
            self.per_collection(client, chosen, doc! {"$indexStats": {}}, "$indexStats", deadline).await;
        let stats = replies.iter().flat_map(|(ns, docs)| collstats::parse_index_stats(ns, docs)).collect();
        match failure {
            Some(e) if replies.is_empty() => Err(e),
            _ => Ok(stats),
        }
    }

    /// One single-stage `aggregate` per collection; the answered ones and the last failure.
    async fn per_collection(
        &self,
        client: &Client,
        chosen: &[Namespace],
        stage: Document,
        name: &'static str,
        deadline: Instant,
    ) -> (Vec<(Namespace, Vec<Document>)>, Option<SectionOutcome>) {
        let calls = chosen.iter().map(|ns| {
            let stage = stage.clone();
            async move {
                let db = client.database(&ns.db);
                let reply = self
                    .cursor(
                        &db,
                        doc! {"aggregate": &ns.collection, "pipeline": [stage],
                        "cursor": {"batchSize": PER_COLLECTION_BATCH}, "maxTimeMS": max_time_ms(deadline)},
                        CursorCaps::docs(PER_COLLECTION_BATCH as usize),
                        deadline,
                        name,
                    )
                    .await;
                (ns, reply)
            }
        });
        let mut answered = Vec::new();
        let mut failure = None;
        for (ns, reply) in futures_util::future::join_all(calls).await {
            match reply {
                Ok(batch) => answered.push((ns.clone(), batch.docs)),
                Err(e) => failure = Some(e),
            }
        }
        (answered, failure)
    }

    /// Runs one optional collector, timing it and turning its error into an outcome.
    async fn section<T, F, Fut>(
        &self,
        collector: &'static str,
        enabled: bool,
        applies: bool,
        why_not: &'static str,
        body: F,
    ) -> (SectionRun, Option<T>)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, SectionOutcome>>,
    {
        let started = Instant::now();
        let (outcome, value) = if !enabled {
            (SectionOutcome::Skipped("disabled"), None)
        } else if !applies {
            (SectionOutcome::Skipped(why_not), None)
        } else {
            match body().await {
                Ok(v) => (SectionOutcome::Ok, Some(v)),
                Err(outcome) => (outcome, None),
            }
        };
        if let SectionOutcome::Failed(reason) = &outcome {
            tracing::debug!(target_name = %self.target, collector, reason, "mongodb collector failed");
        }
        (SectionRun { collector, outcome, duration: started.elapsed() }, value)
    }

    async fn replset(
        &self,
        client: &Client,
        deadline: Instant,
    ) -> Result<(replset::ReplSetStatus, Option<replset::ReplSetConfig>), SectionOutcome> {
        let admin = client.database("admin");
        let status = self.command(&admin, doc! {"replSetGetStatus": 1}, deadline, "replSetGetStatus");
        let config = self.command(&admin, doc! {"replSetGetConfig": 1}, deadline, "replSetGetConfig");
        let (status, config) = tokio::join!(status, config);
        let status = replset::parse_status(&status?);
        // The config adds priority/votes/delay; without it lag is still exported.
        let config = config.ok().map(|c| replset::parse_config(&c));
        Ok((status, config))
    }

    /// The oplog window and size. A failed `collStats` keeps the window but
    /// is returned beside it, so the collector reports the failure.
    async fn oplog(
        &self,
        client: &Client,
        deadline: Instant,
    ) -> Result<(Option<oplog::OplogWindow>, Option<SectionOutcome>), SectionOutcome> {
        let local = client.database("local");
        let edge = |direction: i32| {
            doc! {
                "find": "oplog.rs", "filter": {}, "sort": {"$natural": direction},
                "projection": {"ts": 1, "wall": 1}, "limit": 1, "singleBatch": true,
            }
        };
        let first = self.cursor(&local, edge(1), CursorCaps::docs(1), deadline, "find local.oplog.rs");
        let last = self.cursor(&local, edge(-1), CursorCaps::docs(1), deadline, "find local.oplog.rs");
        let stats = self.command(&local, doc! {"collStats": "oplog.rs"}, deadline, "collStats local.oplog.rs");
        let (first, last, stats) = tokio::join!(first, last, stats);
        let first = first?.docs.into_iter().next();
        let last = last?.docs.into_iter().next();
        let (stats, stats_failure) = match stats {
            Ok(stats) => (Some(stats), None),
            Err(outcome) => (None, Some(outcome)),
        };
        let window = oplog::parse(first.as_ref(), last.as_ref(), stats.as_ref());
        if window.is_none() && stats_failure.is_none() {
            // Nothing usable from a data-bearing member: an empty or unreadable oplog.
            return Err(SectionOutcome::Failed("local.oplog.rs has no entries".to_owned()));
        }
        Ok((window, stats_failure))
    }

    async fn current_op(&self, client: &Client, deadline: Instant) -> Result<current_op::CurrentOps, SectionOutcome> {
        let threshold = self.spec.limits.currentop_threshold.as_secs_f64();
        let pipeline = vec![
            doc! {"$currentOp": {"allUsers": true, "idleConnections": false, "idleSessions": false}},
            doc! {"$match": {"active": true}},
            // Only what the parser reads: never query text or client addresses.
            doc! {"$project": current_op::projection()},
            doc! {"$limit": CURRENT_OP_MAX_DOCS},
        ];
        let batch = self
            .cursor(
                &client.database("admin"),
                doc! {"aggregate": 1, "pipeline": pipeline, "cursor": {"batchSize": CURRENT_OP_MAX_DOCS}, "maxTimeMS": max_time_ms(deadline)},
                CursorCaps::docs(CURRENT_OP_MAX_DOCS as usize),
                deadline,
                "$currentOp",
            )
            .await?;
        Ok(current_op::parse(&batch.docs, threshold))
    }

    /// Names of the databases this user may read, capped, without `local`/`config`.
    async fn databases(&self, client: &Client, deadline: Instant) -> Result<Vec<String>, SectionOutcome> {
        let reply = self
            .command(
                &client.database("admin"),
                doc! {"listDatabases": 1, "nameOnly": true, "authorizedDatabases": true},
                deadline,
                "listDatabases",
            )
            .await?;
        let mut names: Vec<String> = reply
            .get_array("databases")
            .map(|dbs| {
                dbs.iter()
                    .filter_map(|d| d.as_document()?.get_str("name").ok().map(str::to_string))
                    .filter(|n| n != "local" && n != "config")
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        if names.len() > self.spec.limits.max_databases {
            tracing::debug!(target_name = %self.target, total = names.len(), cap = self.spec.limits.max_databases, "database list capped");
            names.truncate(self.spec.limits.max_databases);
        }
        Ok(names)
    }

    async fn dbstats(
        &self,
        client: &Client,
        dbs: &[String],
        deadline: Instant,
    ) -> (Vec<dbstats::DbStats>, SectionOutcome) {
        let calls = dbs.iter().map(|name| async move {
            let reply =
                self.command(&client.database(name), doc! {"dbStats": 1, "scale": 1}, deadline, "dbStats").await;
            (name, reply)
        });
        let mut stats = Vec::new();
        let mut outcome = SectionOutcome::Ok;
        for (name, reply) in futures_util::future::join_all(calls).await {
            match reply {
                Ok(doc) => stats.push(dbstats::parse(name, &doc)),
                // One database failing does not hide the others.
                Err(e) => outcome = e,
            }
        }
        (stats, outcome)
    }

    async fn profiler(
        &self,
        client: &Client,
        dbs: &[String],
        deadline: Instant,
    ) -> Result<Vec<profile::DbProfile>, SectionOutcome> {
        let limit = i64::from(self.spec.limits.profiler_max_docs);
        let limit_docs = self.spec.limits.profiler_max_docs as usize;
        let filters: Vec<(String, Document)> = {
            let mut profiles = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
            profiles.retain(|db, _| dbs.contains(db));
            dbs.iter()
                .filter(|db| db.as_str() != "admin")
                .map(|db| {
                    let state = profiles.entry(db.clone()).or_insert_with(|| {
                        // The same cap as the `find` below, so "limit reached" is detected.
                        profile::DbProfile::new(db).with_limit(limit_docs)
                    });
                    (db.clone(), state.next_filter())
                })
                .collect()
        };
        let calls = filters.into_iter().map(|(name, filter)| async move {
            let db = client.database(&name);
            let level = self.command(&db, doc! {"profile": -1}, deadline, "profile").await;
            let docs = self
                .cursor(
                    &db,
                    doc! {"find": "system.profile", "filter": filter, "sort": {"ts": 1}, "limit": limit,
                    "projection": profile::projection(), "singleBatch": true},
                    // The server may ignore `limit`: never read more than asked for.
                    CursorCaps::docs(limit_docs),
                    deadline,
                    "find system.profile",
                )
                .await;
            (name, level, docs)
        });
        let results = futures_util::future::join_all(calls).await;
        let mut failure = None;
        let mut answered = false;
        let mut profiles = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        for (name, level, docs) in results {
            let Some(state) = profiles.get_mut(&name) else { continue };
            if let Ok(level) = level {
                state.set_level(&level);
            }
            match docs {
                Ok(batch) => {
                    answered = true;
                    state.ingest(&batch.docs);
                }
                Err(e) => failure = Some(e),
            }
        }
        let out = profiles.values().cloned().collect();
        match failure {
            // No database answered (the states exist from earlier scrapes, so
            // `profiles` is not empty): the collector failed.
            Some(e) if !answered => Err(e),
            // Some databases answered: their counters are still worth exporting.
            _ => Ok(out),
        }
    }

    /// Runs a command unless it was refused recently; classifies failures.
    async fn command(
        &self,
        db: &mongodb::Database,
        command: Document,
        deadline: Instant,
        name: &'static str,
    ) -> Result<Document, SectionOutcome> {
        if let Some(until) = self.refused.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            if *until > Instant::now() {
                return Err(SectionOutcome::Unauthorized { command: name, grant: grant_for(name) });
            }
        }
        match timeout_at(deadline, run_command(db, command)).await {
            Err(_) => Err(SectionOutcome::Failed(format!("{name}: deadline exceeded"))),
            Ok(Ok(reply)) => {
                bson_guard::check_document(reply, bson_guard::MAX_DEPTH).map_err(|e| self.refuse_reply(name, &e))
            }
            Ok(Err(e)) => Err(self.classify(name, &e)),
        }
    }

    /// Runs a cursor command (`find`, `aggregate`, `listCollections`) and reads at
    /// most `caps` of it as raw documents, each depth-checked before it is decoded.
    /// A reply over a cap is cut there (`Batch::truncated`, logged once) and the
    /// cursor dropped, which makes the driver kill it on the server.
    async fn cursor(
        &self,
        db: &mongodb::Database,
        command: Document,
        caps: CursorCaps,
        deadline: Instant,
        name: &'static str,
    ) -> Result<Batch, SectionOutcome> {
        if let Some(until) = self.refused.lock().unwrap_or_else(|p| p.into_inner()).get(name) {
            if *until > Instant::now() {
                return Err(SectionOutcome::Unauthorized { command: name, grant: grant_for(name) });
            }
        }
        let batch = timeout_at(deadline, read_cursor(db, command, caps)).await;
        match batch {
            Err(_) => Err(SectionOutcome::Failed(format!("{name}: deadline exceeded"))),
            Ok(Ok(batch)) => {
                if batch.truncated {
                    self.warn_guard_once(name, || {
                        tracing::warn!(
                            target_name = %self.target, command = name, max_docs = caps.max_docs,
                            max_bytes = caps.max_bytes,
                            "mongodb reply over the exporter's cap; read only the first documents and closed the cursor"
                        )
                    });
                }
                Ok(batch)
            }
            Ok(Err(CursorError::Guard(e))) => Err(self.refuse_reply(name, &e)),
            Ok(Err(CursorError::Driver(e))) => Err(self.classify(name, &e)),
        }
    }

    /// A reply `bson_guard` refused: the section fails, logged once per command
    /// (what and where; never the server's text).
    fn refuse_reply(&self, name: &'static str, e: &GuardError) -> SectionOutcome {
        self.warn_guard_once(name, || {
            tracing::warn!(target_name = %self.target, command = name, error = %e, "mongodb reply refused");
        });
        SectionOutcome::Failed(format!("{name}: {e}"))
    }

    fn warn_guard_once(&self, name: &'static str, log: impl FnOnce()) {
        if self.guarded.lock().unwrap_or_else(|p| p.into_inner()).insert(name) {
            log();
        }
    }

    /// The deadline of this scrape's `hello`: the scrape's own while the
    /// target answers; [`DOWN_PROBE_TIMEOUT`] when it was unreachable at the
    /// last attempt and a probe is due; an immediate [`MongoError::Down`]
    /// while it backs off. The driver's monitor keeps checking the server in
    /// the background, so a probe finds a recovered server at once.
    fn hello_deadline(&self, deadline: Instant) -> Result<Instant, MongoError> {
        let reach = self.reach.lock().unwrap_or_else(|p| p.into_inner());
        if reach.failures == 0 {
            return Ok(deadline);
        }
        let now = Instant::now();
        match reach.next_probe {
            Some(at) if at > now => Err(MongoError::Down {
                failures: reach.failures,
                reason: reach.reason.clone(),
                wait_ms: (at - now).as_millis(),
            }),
            _ => Ok(deadline.min(now + DOWN_PROBE_TIMEOUT)),
        }
    }

    fn note_reachable(&self) {
        let mut reach = self.reach.lock().unwrap_or_else(|p| p.into_inner());
        *reach = Reachability::default();
    }

    /// One more unreachable attempt: the next probe waits 1 s, 2 s, 4 s, ... (at most 30 s).
    fn note_unreachable(&self, e: &MongoError) {
        let mut reach = self.reach.lock().unwrap_or_else(|p| p.into_inner());
        reach.failures = reach.failures.saturating_add(1);
        if !matches!(e, MongoError::Down { .. }) {
            reach.reason = e.to_string();
        }
        let backoff = Duration::from_secs(1)
            .saturating_mul(1u32 << reach.failures.saturating_sub(1).min(5))
            .min(MAX_DOWN_BACKOFF);
        reach.next_probe = Some(Instant::now() + backoff);
    }

    /// Classifies a driver error; Unauthorized starts the refusal backoff.
    fn classify(&self, name: &'static str, e: &mongodb::error::Error) -> SectionOutcome {
        if command_code(e) != Some(UNAUTHORIZED) {
            return SectionOutcome::Failed(format!("{name}: {}", describe(e)));
        }
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.insert(name, Instant::now() + REFUSAL_BACKOFF).is_none() {
            tracing::warn!(
                target_name = %self.target, command = name, grant = grant_for(name),
                "mongodb refused a command for lack of privileges; retrying in 10 minutes"
            );
        }
        SectionOutcome::Unauthorized { command: name, grant: grant_for(name) }
    }

    /// The process-lifetime client, created on first use. Creating it does not
    /// connect; the driver connects lazily and keeps the pool warm.
    /// The driver client of this target (made on first use and kept), for
    /// the layers above that run their own commands over the same connection
    /// pool (the Tenderly queries and posture), under `deadline`.
    pub async fn client(&self, deadline: Instant) -> Result<Client, MongoError> {
        let mut slot = timeout_at(deadline, self.client.lock()).await.map_err(|_| MongoError::Timeout("queueing"))?;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let mut options = timeout_at(deadline, ClientOptions::parse(self.spec.uri.expose()))
            .await
            .map_err(|_| MongoError::Timeout("resolving the connection string"))?
            // The driver's message may quote the URI (and its credentials): keep only the kind.
            .map_err(|e| MongoError::Options(format!("{:?}", e.kind).chars().take(40).collect()))?;
        apply_defaults(&mut options, &self.spec);
        if let Some((host, port)) = &self.member {
            options.hosts = vec![mongodb::options::ServerAddress::Tcp { host: host.clone(), port: Some(*port) }];
            options.direct_connection = Some(true);
            options.srv_max_hosts = None;
        }
        let client = Client::with_options(options).map_err(|e| MongoError::Options(describe(&e)))?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// Settings the exporter always wants, unless the connection string chose otherwise.
pub fn apply_defaults(options: &mut ClientOptions, spec: &MongoOptions) {
    options.app_name = Some("tenderly-exporter".to_string());
    let single_host = options.hosts.len() == 1 && options.repl_set_name.is_none();
    if options.direct_connection.is_none() && single_host && options.srv_max_hosts.is_none() {
        options.direct_connection = Some(true);
    }
    // A scrape needs at most a handful of concurrent commands.
    options.max_pool_size.get_or_insert(4);
    options.min_pool_size.get_or_insert(0);
    options.max_idle_time.get_or_insert(Duration::from_secs(300));
    options.server_selection_timeout.get_or_insert(Duration::from_secs(5));
    options.connect_timeout.get_or_insert(Duration::from_secs(5));
    // Polling keeps one predictable `hello` every heartbeat instead of an
    // always-open streaming monitor per target.
    options.server_monitoring_mode.get_or_insert(ServerMonitoringMode::Poll);
    if options.direct_connection != Some(true) && options.load_balanced != Some(true) {
        restrict_discovery(options, spec);
    }
    if spec.username.is_some() || spec.password.is_some() {
        let mut credential = options.credential.take().unwrap_or_else(|| Credential::builder().build());
        if let Some(user) = &spec.username {
            credential.username = Some(user.clone());
        }
        if let Some(password) = &spec.password {
            credential.password = Some(password.expose().to_string());
        }
        options.credential = Some(credential);
    }
}

/// With replica-set discovery the driver learns hosts from what servers
/// advertise; only those the trust policy allows may be selected (and so
/// authenticated to). Without a primary among them the scrape fails with a
/// server selection timeout, which is the point. A read preference other
/// than primary in the URI widens the roles to secondaries (tags and
/// staleness are not applied).
fn restrict_discovery(options: &mut ClientOptions, spec: &MongoOptions) {
    let (hosts, suffixes) = crate::trust::mongo_seed(&spec.display);
    let policy = crate::trust::MemberPolicy::new(
        &spec.members_allowed,
        hosts.iter().map(String::as_str).chain(options.hosts.iter().filter_map(|h| match h {
            mongodb::options::ServerAddress::Tcp { host, .. } => Some(host.as_str()),
            _ => None,
        })),
        suffixes.iter().map(String::as_str),
    );
    let primary_only = match &options.selection_criteria {
        None | Some(SelectionCriteria::ReadPreference(ReadPreference::Primary)) => true,
        Some(_) => false,
    };
    options.selection_criteria = Some(SelectionCriteria::Predicate(std::sync::Arc::new(move |server| {
        use mongodb::ServerType as T;
        let role_ok = match server.server_type() {
            T::Standalone | T::Mongos | T::RsPrimary | T::LoadBalancer => true,
            T::RsSecondary => !primary_only,
            _ => false,
        };
        let host_ok = match server.address() {
            mongodb::options::ServerAddress::Tcp { host, .. } => policy.check_static(host).allowed(),
            _ => true,
        };
        role_ok && host_ok
    })));
    // Pools of discovered servers must not fill ahead of selection.
    options.min_pool_size = Some(0);
}

/// `db.run_command(command)` with the client's selection criteria. The driver
/// ignores the client's default for runCommand (a driver-spec rule) and would
/// use "primary" on whatever it discovered; with replica-set discovery the
/// default is the trust predicate of [`restrict_discovery`], so every command
/// must carry it. Without discovery (direct connection) nothing changes.
pub fn run_command(db: &mongodb::Database, command: Document) -> mongodb::action::RunCommand<'_> {
    use mongodb::action::Action as _;
    db.run_command(command).optional(db.selection_criteria().cloned(), |action, c| action.selection_criteria(c))
}

async fn run(
    db: &mongodb::Database,
    command: Document,
    deadline: Instant,
    name: &'static str,
) -> Result<Document, MongoError> {
    let reply = timeout_at(deadline, run_command(db, command))
        .await
        .map_err(|_| MongoError::Timeout(name))?
        .map_err(|e| MongoError::Command { command: name, reason: describe(&e) })?;
    bson_guard::check_document(reply, bson_guard::MAX_DEPTH).map_err(|e| {
        tracing::warn!(command = name, error = %e, "mongodb reply refused");
        MongoError::Command { command: name, reason: e.to_string() }
    })
}

/// Why a bounded cursor read failed.
#[derive(Debug)]
pub enum CursorError {
    /// The server's reply broke a `bson_guard` limit.
    Guard(GuardError),
    Driver(mongodb::error::Error),
}

/// Runs `command` as a cursor command and reads at most `caps` of it, each
/// document checked for depth on its raw bytes before it is decoded. The
/// caller puts this under its deadline. Dropping the cursor early makes the
/// driver kill it on the server. Shared with the Tenderly queries.
pub async fn read_cursor(db: &mongodb::Database, command: Document, caps: CursorCaps) -> Result<Batch, CursorError> {
    let raw = RawDocumentBuf::try_from(&command).map_err(|_| CursorError::Guard(GuardError::Malformed))?;
    // The database's selection criteria (the trust predicate of
    // `restrict_discovery`) must be passed explicitly: the driver does not
    // apply them to cursor commands by itself.
    use mongodb::action::Action as _;
    let mut cursor = db
        .run_raw_cursor_command(raw)
        .optional(db.selection_criteria().cloned(), |action, c| action.selection_criteria(c))
        .await
        .map_err(CursorError::Driver)?;
    let mut builder = BatchBuilder::new(caps);
    while cursor.advance().await.map_err(CursorError::Driver)? {
        if !builder.offer(cursor.current()).map_err(CursorError::Guard)? {
            break;
        }
    }
    Ok(builder.finish())
}

/// Role and set facts from a `hello` reply.
pub fn node_info(hello: &Document) -> NodeInfo {
    let flag = |key: &str| hello.get_bool(key).unwrap_or(false);
    let role = if hello.get_str("msg") == Ok("isdbgrid") {
        Role::Mongos
    } else if hello.get_str("setName").is_err() {
        Role::Standalone
    } else if flag("isWritablePrimary") || flag("ismaster") {
        Role::Primary
    } else if flag("secondary") {
        Role::Secondary
    } else if flag("arbiterOnly") {
        Role::Arbiter
    } else {
        Role::OtherMember
    };
    NodeInfo {
        role,
        set_name: hello.get_str("setName").ok().map(str::to_string),
        hidden: flag("hidden"),
        config_server: hello.contains_key("configsvr"),
        max_wire_version: match hello.get("maxWireVersion") {
            Some(Bson::Int32(v)) => *v,
            Some(Bson::Int64(v)) => i32::try_from(*v).unwrap_or(i32::MAX),
            _ => 0,
        },
    }
}

/// `listCollections` batch size: more collections than this in one database are not looked at.
const LIST_COLLECTIONS_BATCH: i32 = 1_000;
/// `$collStats`/`$indexStats` batch size (one document per shard, one per index).
const PER_COLLECTION_BATCH: i32 = 10_000;
/// Active operations read from `$currentOp` (also the pipeline's `$limit`).
const CURRENT_OP_MAX_DOCS: i32 = 10_000;

/// `cursor.firstBatch` of a `find`/`aggregate` reply.
pub fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|docs| docs.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_default()
}

/// `maxTimeMS` for server-side work: what is left of the deadline, at least 100 ms.
pub fn max_time_ms(deadline: Instant) -> i64 {
    let left = deadline.saturating_duration_since(Instant::now()).as_millis();
    i64::try_from(left).unwrap_or(i64::MAX).max(100)
}

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// A short, credential-free description of a driver error: its kind and, for
/// server errors, the code name (server messages can quote the command).
pub fn describe(e: &mongodb::error::Error) -> String {
    use mongodb::error::ErrorKind as K;
    match e.kind.as_ref() {
        K::Command(c) => format!("server error {} ({})", c.code, c.code_name),
        K::Authentication { .. } => AUTHENTICATION_FAILED.to_string(),
        K::ServerSelection { message, .. } => {
            format!("server unreachable: {} (server selection timed out)", selection_cause(message))
        }
        K::Io(io) => format!("I/O error: {}", io.kind()),
        K::ConnectionPoolCleared { .. } => "connection pool cleared after a network error".to_string(),
        K::InvalidResponse { .. } => "invalid response from the server".to_string(),
        K::InvalidArgument { .. } => "invalid argument".to_string(),
        K::DnsResolve { .. } => "DNS resolution failed".to_string(),
        other => {
            let text = format!("{other:?}");
            text.split(['{', '(', ' ']).next().unwrap_or("error").to_string()
        }
    }
}

/// Why server selection found no server, in words, from the driver's
/// topology description (only a fixed phrase is kept: the description quotes
/// addresses and driver internals, never credentials, but is long).
fn selection_cause(message: &str) -> &'static str {
    let topology = message.to_ascii_lowercase();
    let servers = topology.split_once("topology").map_or(topology.as_str(), |(_, rest)| rest);
    if servers.contains("connection refused") {
        "connection refused"
    } else if servers.contains("certificate") || servers.contains("tls") {
        "TLS handshake or certificate verification failed"
    } else if servers.contains("lookup") || servers.contains("dns") || servers.contains("resolve") {
        "DNS lookup failed"
    } else if servers.contains("timed out") || servers.contains("timeout") {
        "connect timed out"
    } else if servers.contains("authentication") {
        "authentication failed"
    } else {
        "no suitable server answered"
    }
}

/// The grant that lets the exporter's user run `command` (README "MongoDB privileges").
pub fn grant_for(command: &str) -> &'static str {
    match command {
        "serverStatus" | "replSetGetStatus" | "replSetGetConfig" | "$currentOp" | "listDatabases" | "dbStats" => {
            r#"db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{role: "clusterMonitor", db: "admin"}])"#
        }
        "find local.oplog.rs" | "collStats local.oplog.rs" => {
            r#"db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{role: "read", db: "local"}])"#
        }
        "listCollections" | "$collStats" | "$indexStats" => {
            r#"db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{role: "read", db: "<database>"}]) (clusterMonitor also allows $collStats and $indexStats)"#
        }
        "profile" | "find system.profile" => {
            r#"db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{role: "dbAdmin", db: "<database>"}]) (or a role with find on <database>.system.profile)"#
        }
        _ => {
            r#"db.getSiblingDB("admin").grantRolesToUser("tenderly-exporter", [{role: "clusterMonitor", db: "admin"}])"#
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_failures_name_the_cause() {
        let refused = "Server selection timeout: No available servers. Topology: { Type: Single, Servers: [ { Address: 127.0.0.1:1, Type: Unknown, Error: Kind: I/O error: Connection refused (os error 111), labels: {} } ] }";
        assert_eq!(selection_cause(refused), "connection refused");
        assert_eq!(
            selection_cause("Server selection timeout: Topology: { Servers: [] }"),
            "no suitable server answered"
        );
    }

    #[test]
    fn roles_from_hello() {
        assert_eq!(node_info(&doc! {"isWritablePrimary": true}).role, Role::Standalone);
        assert_eq!(node_info(&doc! {"msg": "isdbgrid"}).role, Role::Mongos);
        assert_eq!(node_info(&doc! {"setName": "rs", "isWritablePrimary": true}).role, Role::Primary);
        assert_eq!(node_info(&doc! {"setName": "rs", "secondary": true, "hidden": true}).role, Role::Secondary);
        assert!(node_info(&doc! {"setName": "rs", "secondary": true, "hidden": true}).hidden);
        assert_eq!(node_info(&doc! {"setName": "rs", "arbiterOnly": true}).role, Role::Arbiter);
        assert_eq!(node_info(&doc! {"setName": "rs"}).role, Role::OtherMember);
        assert!(node_info(&doc! {"setName": "cfg", "configsvr": 2, "secondary": true}).config_server);
    }

    #[test]
    fn first_batch_tolerates_odd_replies() {
        assert!(first_batch(&doc! {}).is_empty());
        assert!(first_batch(&doc! {"cursor": {"firstBatch": [1, "x"]}}).is_empty());
        assert_eq!(first_batch(&doc! {"cursor": {"firstBatch": [{"a": 1}]}}).len(), 1);
    }
}
