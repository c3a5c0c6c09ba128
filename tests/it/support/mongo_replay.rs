//! A MongoDB wire-protocol replay server: a small fake `mongod`/`mongos` that
//! speaks the real wire protocol to the real `mongodb` driver and answers with
//! documents recorded from real servers (`tests/fixtures/mongodb/`, see its
//! README for provenance).
//!
//! Why a fake server? No `mongod` can be installed on the CI machines
//! (DESIGN.md §6), yet the collector must be tested through the real driver:
//! handshake, monitoring, server selection, error mapping and timeouts are
//! exactly where exporters break. The same tests run against a real server
//! when `MONGODB_TEST_URI` is set.
//!
//! # Threads, not the caller's runtime
//!
//! The server runs on std threads (one acceptor, one thread per connection),
//! so it works from `#[test]`, `#[tokio::test]` (any flavour) and the
//! standalone example alike, and a test that blocks its runtime cannot wedge
//! it. Every read polls with a short timeout so `stop()` is noticed quickly; a
//! started message must complete within [`MESSAGE_DEADLINE`]; an idle
//! connection is closed after [`IDLE_TIMEOUT`]; writes time out after
//! [`WRITE_TIMEOUT`]; at most [`MAX_CONNECTIONS`] connections are served at
//! once. `stop()` (and `Drop`) joins the threads with a bound of
//! [`STOP_JOIN_TIMEOUT`].
//!
//! # Wire protocol
//!
//! * Requests: `OP_MSG` (2013; `checksumPresent` is accepted and the CRC is
//!   stripped, not verified; kind-0 body plus kind-1 document sequences, which
//!   are merged into the body as arrays; `moreToCome` requests get no reply) and
//!   legacy `OP_QUERY` (2004), answered with `OP_REPLY` (1) for `hello` /
//!   `isMaster` only; any other legacy command gets the real server's
//!   `UnsupportedOpQueryCommand` (352) error. Replies are always `OP_MSG` with
//!   one kind-0 section (or `OP_REPLY` for `OP_QUERY`).
//! * Anything else (unknown opcode, length below 16 or above
//!   [`MAX_MESSAGE_SIZE`], malformed sections, BSON that does not parse or
//!   nests deeper than [`MAX_BSON_DEPTH`]) closes that connection only. Command
//!   handling runs under `catch_unwind`, so even a bug in a handler closes one
//!   connection instead of killing the server.
//! * The driver (`mongodb` 3.9) never sends `OP_QUERY`: its first handshake is
//!   `{isMaster: 1, helloOk: true, ...}` in an `OP_MSG`; once the reply says
//!   `helloOk: true` it switches to `{hello: 1}` on new connections and on its
//!   monitoring connection. `topologyVersion` is deliberately absent from the
//!   hello reply so the driver polls (every `heartbeatFrequencyMS`) instead of
//!   streaming awaitable hellos.
//!
//! # Commands
//!
//! Commands are matched on their first key (case-sensitive) and `$db`:
//! `hello`/`isMaster`/`ismaster`, `ping`, `endSessions`, `buildInfo`,
//! `serverStatus`, `getCmdLineOpts` (admin), `replSetGetStatus` and
//! `replSetGetConfig` (admin; replica-set members only: a standalone answers
//! `NoReplicationEnabled` (76), mongos `CommandNotFound` (59)), `find`,
//! `aggregate`, `collStats`, `dbStats`, `listDatabases` (admin), `profile`,
//! `listCollections` (the [`APP_COLLECTIONS`] of `tenderly` plus one view,
//! empty elsewhere), `top` (admin, mongod only: the recorded
//! `top-shardsvr-unknown.json` plus [`APP_TOP`]), `aggregate` with a first
//! stage `$collStats` / `$indexStats` on a `tenderly` collection
//! ([`APP_COLLECTIONS`], [`app_indexes`]), `getMore` (`CursorNotFound`: every cursor
//! id is 0) and `killCursors`. `saslStart`/`saslContinue`/`authenticate` always
//! fail with `AuthenticationFailed` (18): the replay server has no users, so a
//! URI with credentials can only be used to test the failure path. Anything
//! else answers `{ok: 0, errmsg: "no such command: 'X'", code: 59,
//! codeName: "CommandNotFound"}`.
//!
//! Admin-only commands sent to another database answer `Unauthorized` (13)
//! "X may only be run against the admin database.", as real servers do.
//!
//! ## Synthesized data (documented so tests can assert it)
//!
//! * **Oplog** (`find` / `aggregate` on `local.oplog.rs`): two no-op entries.
//!   The newest has `ts` = the scenario's `replSetGetStatus`
//!   `optimes.appliedOpTime.ts` and `wall` = `optimes.lastAppliedWallTime`; the
//!   oldest is exactly [`OPLOG_WINDOW_SECS`] (86 400 s) earlier in both `ts`
//!   (increment 1) and `wall`. So the oplog window is always exactly 86 400 s.
//!   `sort: {$natural: 1}` (or no sort) returns the oldest first,
//!   `{$natural: -1}` the newest first; `filter`, `skip`, `limit` and a simple
//!   inclusion/exclusion `projection` are honoured. A standalone has no oplog
//!   (empty result), mongos answers `IllegalOperation` (20), an arbiter
//!   `NotPrimaryOrSecondary` (13436).
//! * **Oplog size**: `collStats: "oplog.rs"` on `local` answers the
//!   `storageStats` of `collStats-local.oplog.rs-shardsvr-primary-8.0.8.json`
//!   flattened to the top level (as the command does) plus `ns` and `ok`;
//!   `aggregate` with a first stage `$collStats` answers one document
//!   `{ns, host, localTime, storageStats}` from the same fixture (its `shard`
//!   field is dropped). Oplog `size` is 596 844 bytes, `maxSize` 3 810 627 072.
//!   Other collections answer `NamespaceNotFound` (26).
//! * **dbStats** (see [`synthesized_db_stats`]): fixed figures per database;
//!   counts and `scaleFactor` are int64, sizes, `avgObjSize` and `fs*` are
//!   doubles, `totalSize = storageSize + indexSize`,
//!   `avgObjSize = dataSize / objects`:
//!
//!   | db | collections | views | objects | dataSize | storageSize | indexes | indexSize |
//!   |---|---|---|---|---|---|---|---|
//!   | admin | 3 | 0 | 7 | 2 240 | 73 728 | 5 | 131 072 |
//!   | config | 5 | 0 | 24 | 4 608 | 110 592 | 9 | 221 184 |
//!   | local | 6 | 0 | 1 920 | 600 000 | 245 760 | 5 | 122 880 |
//!   | tenderly | 12 | 1 | 250 000 | 128 000 000 | 45 056 000 | 31 | 12 288 000 |
//!   | any other | 0 | 0 | 0 | 0 | 0 | 0 | 0 |
//!
//!   `fsUsedSize` is 53 687 091 200 (50 GiB) and `fsTotalSize`
//!   107 374 182 400 (100 GiB) for every database.
//! * **listDatabases**: admin, config, local, tenderly (mongos: no `local`),
//!   `sizeOnDisk` = the dbStats `totalSize`; `nameOnly: true` and a `filter`
//!   on the entries are honoured.
//! * **profile**: level 1 (`slowms` 100, `sampleRate` 1.0) on `tenderly`, 0
//!   elsewhere; `profile: 0|1|2` changes the level and answers the previous.
//! * **system.profile**: `tenderly.system.profile` holds the four documents of
//!   `system.profile-mongod-unknown.json` with `ns` rewritten from
//!   `integration.` to `tenderly.` (the capture's database name); other
//!   databases start empty. `filter` (e.g. `{ts: {$gt: <date>}}` or `$gte`),
//!   `sort` (e.g. `{ts: 1}`) and `limit` are honoured, so a high-water mark
//!   works across scrapes. [`ReplayServer::append_profile_docs`] adds documents
//!   at runtime. The fixture `ts` values are 18:41:15.716, 18:41:16.223,
//!   18:41:23.298 and 18:44:27.336 on 2024-07-09 (UTC); file order is not ts
//!   order.
//! * **$currentOp** (`aggregate: 1` on admin, first stage `$currentOp`): the
//!   ops from [`default_current_ops`] (two active ops, one `idle` connection) or
//!   those set with [`ReplayServer::set_current_ops`]. `idleConnections: false`
//!   (the default) drops documents with `active: false`, as the server does.
//!   Later stages: `$match` is evaluated with the small matcher below,
//!   `$limit`/`$skip` are honoured, everything else is ignored.
//! * **replSetGetConfig** has no fixture: it is built from the scenario's
//!   `replSetGetStatus` members (`_id`, `host`; `arbiterOnly` for state 7,
//!   `priority` 1.0 or 0 for arbiters, `votes` 1, `buildIndexes` true,
//!   `tags` {}, `secondaryDelaySecs` 0) with `version` = the serverStatus
//!   `repl.setVersion` (1 when absent), `term` from the status and fixed
//!   `settings`. In [`Scenario::Primary`] member `mongo3:30003` is hidden,
//!   delayed by [`PRIMARY_DELAYED_MEMBER_SECS`] (3600 s) with priority 0, so it
//!   is also left out of the hello `hosts` list, as a real server does.
//!
//! The matcher used for `filter` and `$match` understands equality on dotted
//! paths (a numeric component indexes an array: `activeSessions.1`; equality
//! with `$eq`/`$ne` or a plain value also matches an element of an array field),
//! `$eq $ne $gt $gte $lt $lte $in $nin $exists`, `$regex` (with `$options: "i"`;
//! a small engine: literals, `.`, `[...]`/`[^...]` classes with ranges, `\`
//! escapes, `^`/`$` anchors and the `* + ?` quantifiers; anything else in a
//! pattern never matches), and top-level `$and` / `$or`; unknown operators are
//! treated as matching.
//!
//! ## Application collections (for the Tenderly query collectors)
//!
//! * [`ReplayServer::set_collection_docs`] fills any `<db>.<coll>`; `find`,
//!   `aggregate` and `count` (`{count: coll, query: filter}` answers `{n, ok}`,
//!   honouring `skip`/`limit`) read it. Pipelines on such collections also
//!   evaluate `$unwind` (a `"$path"` string), `$group` (`_id` a `"$path"`, a
//!   constant or null; accumulators `{$sum: <number or "$path">}`) and
//!   `$count`, besides `$match $sort $skip $limit $project`.
//! * [`ReplayServer::set_command_reply`] scripts the exact reply to one command
//!   name on one namespace (it wins over the documents).
//! * [`ReplayServer::commands_received`] returns the full bodies of the
//!   commands received with a given name (the last [`MAX_BODIES_RECORDED`]), so
//!   tests can assert the shape of what the exporter sent.
//!
//! # Faults
//!
//! [`ReplayServer::set_fault`] switches a fault on a running server, for every
//! command except the handshake `hello`/`isMaster`;
//! [`ReplayServer::set_command_fault`] applies one to a single command name and
//! wins over the global one. [`Fault::RefuseHandshake`] is connection-level and
//! only honoured globally: new connections are closed right after accept and
//! live ones at their next message (a server that went away).

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document, RawBsonRef, RawDocument, Timestamp};

/// Largest message accepted, as advertised in `maxMessageSizeBytes`.
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;
/// `maxBsonObjectSize` advertised in the hello reply.
pub const MAX_BSON_OBJECT_SIZE: i32 = 16_777_216;
/// Distance in seconds between the synthesized oldest and newest oplog entry.
pub const OPLOG_WINDOW_SECS: u32 = 86_400;
/// `secondaryDelaySecs` of the hidden member `mongo3:30003` in [`Scenario::Primary`].
pub const PRIMARY_DELAYED_MEMBER_SECS: i64 = 3_600;
/// The Tenderly application database: profiled (level 1) and listed by `listDatabases`.
pub const APP_DB: &str = "tenderly";
/// Deepest BSON nesting accepted in a request; deeper documents close the connection
/// (decoding recurses, and a stack overflow would abort the whole test binary).
pub const MAX_BSON_DEPTH: usize = 100;
/// How often blocked reads and the acceptor look at the stop flag.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Time allowed to deliver the rest of a message once its first byte arrived.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(10);
/// A connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on every write of a reply.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed right after accept.
pub const MAX_CONNECTIONS: usize = 128;
/// How long `stop()` waits for each thread before leaving it detached.
pub const STOP_JOIN_TIMEOUT: Duration = Duration::from_secs(5);
/// `commands_seen` keeps at most this many (oldest dropped first).
pub const MAX_COMMANDS_RECORDED: usize = 100_000;
/// `commands_received` keeps the bodies of at most this many commands.
pub const MAX_BODIES_RECORDED: usize = 10_000;
/// Most documents one cursor reply carries.
const MAX_BATCH_DOCS: usize = 10_000;

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_MSG: i32 = 2013;
const HEADER_LEN: usize = 16;
const FLAG_CHECKSUM_PRESENT: u32 = 1;
const FLAG_MORE_TO_COME: u32 = 1 << 1;
/// OP_MSG flag bits 0-15 are "required": a receiver must reject unknown ones.
const FLAG_REQUIRED_MASK: u32 = 0xFFFF;

/// Errors from starting a replay server.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("binding or configuring the listener on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("spawning the acceptor thread: {0}")]
    Spawn(io::Error),
    #[error("fixture {name}: {reason}")]
    Fixture { name: String, reason: String },
}

fn fixture_error(name: &str, reason: impl fmt::Display) -> ReplayError {
    ReplayError::Fixture { name: name.to_owned(), reason: reason.to_string() }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// The fixtures served, embedded so the example binary runs from any directory.
const FIXTURES: &[(&str, &str)] = &[
    ("serverStatus-standalone-8.0.9.json", include_str!("../../fixtures/mongodb/serverStatus-standalone-8.0.9.json")),
    ("buildInfo-standalone-8.0.9.json", include_str!("../../fixtures/mongodb/buildInfo-standalone-8.0.9.json")),
    (
        "getCmdLineOpts-standalone-8.0.9.json",
        include_str!("../../fixtures/mongodb/getCmdLineOpts-standalone-8.0.9.json"),
    ),
    (
        "serverStatus-replset-primary-8.0.4.json",
        include_str!("../../fixtures/mongodb/serverStatus-replset-primary-8.0.4.json"),
    ),
    (
        "replSetGetStatus-primary-lagging-8.0.4.json",
        include_str!("../../fixtures/mongodb/replSetGetStatus-primary-lagging-8.0.4.json"),
    ),
    (
        "serverStatus-shardsvr-secondary-8.0.8.json",
        include_str!("../../fixtures/mongodb/serverStatus-shardsvr-secondary-8.0.8.json"),
    ),
    (
        "replSetGetStatus-shardsvr-secondary-8.0.8.json",
        include_str!("../../fixtures/mongodb/replSetGetStatus-shardsvr-secondary-8.0.8.json"),
    ),
    ("getCmdLineOpts-shardsvr-8.0.8.json", include_str!("../../fixtures/mongodb/getCmdLineOpts-shardsvr-8.0.8.json")),
    ("serverStatus-mongos-8.0.8.json", include_str!("../../fixtures/mongodb/serverStatus-mongos-8.0.8.json")),
    ("buildInfo-mongos-8.0.8.json", include_str!("../../fixtures/mongodb/buildInfo-mongos-8.0.8.json")),
    ("getCmdLineOpts-mongos-8.0.8.json", include_str!("../../fixtures/mongodb/getCmdLineOpts-mongos-8.0.8.json")),
    (
        "replSetGetStatus-secondary-unreachable-6.0.19.json",
        include_str!("../../fixtures/mongodb/replSetGetStatus-secondary-unreachable-6.0.19.json"),
    ),
    ("serverStatus-standalone-6.0.4.json", include_str!("../../fixtures/mongodb/serverStatus-standalone-6.0.4.json")),
    (
        "collStats-local.oplog.rs-shardsvr-primary-8.0.8.json",
        include_str!("../../fixtures/mongodb/collStats-local.oplog.rs-shardsvr-primary-8.0.8.json"),
    ),
    ("system.profile-mongod-unknown.json", include_str!("../../fixtures/mongodb/system.profile-mongod-unknown.json")),
    ("top-shardsvr-unknown.json", include_str!("../../fixtures/mongodb/top-shardsvr-unknown.json")),
];

/// Parses an embedded fixture (Extended JSON v2, canonical or relaxed) into BSON.
pub fn fixture_bson(name: &str) -> Result<Bson, ReplayError> {
    let text = FIXTURES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| fixture_error(name, "not embedded in the replay server"))?;
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| fixture_error(name, e))?;
    Bson::try_from(json).map_err(|e| fixture_error(name, e))
}

/// Parses an embedded fixture that holds one document.
pub fn fixture_doc(name: &str) -> Result<Document, ReplayError> {
    match fixture_bson(name)? {
        Bson::Document(doc) => Ok(doc),
        other => Err(fixture_error(name, format!("expected a document, found {:?}", other.element_type()))),
    }
}

// ---------------------------------------------------------------------------
// Scenarios and faults
// ---------------------------------------------------------------------------

/// The role the server plays and the recorded documents it serves.
///
/// | scenario | version | fixtures served | role fields |
/// |---|---|---|---|
/// | `Standalone` | 8.0.9 | serverStatus-, buildInfo-, getCmdLineOpts-standalone-8.0.9 | none; replSet* answer 76 |
/// | `Primary` | 8.0.4 | serverStatus-replset-primary-8.0.4, replSetGetStatus-primary-lagging-8.0.4 (3 members; both secondaries 1151 s behind) | set `my-rs`, me `mongo2:30002`; `mongo3:30003` hidden + delayed 3600 s in the synthesized config |
/// | `Secondary` | 8.0.8 | serverStatus-, replSetGetStatus-shardsvr-secondary-8.0.8, getCmdLineOpts-shardsvr-8.0.8 (the shard's primary's options) | set `shard1ReplSet`, me `localhost:27021`, primary `localhost:27018`; every member at optime 1745311681: expected lag 0 s |
/// | `Arbiter` | 8.0.4 | edited: serverStatus-replset-primary-8.0.4 with `repl` replaced by the arbiter's role fields; replSetGetStatus-primary-lagging-8.0.4 with `mongo4:30004` (ARBITER, self) added, `myState` 7, `electionCandidateMetrics` dropped | `arbiterOnly`, me `mongo4:30004`; data reads answer 13436 |
/// | `Mongos` | 8.0.8 | serverStatus-, buildInfo-, getCmdLineOpts-mongos-8.0.8 | `msg: isdbgrid`; replSet* answer 59, `local` reads answer 20 |
/// | `NoPrimary` | 6.0.4 | replSetGetStatus-secondary-unreachable-6.0.19 (self SECONDARY, two members health 0, no primary); serverStatus-standalone-6.0.4 with a synthesized `repl` section | set `replication`, me `mongo1:27017`, no `primary` |
///
/// `buildInfo` for the scenarios without their own capture is
/// buildInfo-standalone-8.0.9 with `version`/`versionArray` rewritten to the
/// scenario's version; `getCmdLineOpts` for Primary, Arbiter and NoPrimary is
/// synthesized (`mongod --replSet <set> --bind_ip_all [--port N]`).
/// `maxWireVersion` follows the version: 8.0 → 25, 7.0 → 21, 6.0 → 17.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    Standalone,
    Primary,
    Secondary,
    Arbiter,
    Mongos,
    NoPrimary,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Standalone,
        Scenario::Primary,
        Scenario::Secondary,
        Scenario::Arbiter,
        Scenario::Mongos,
        Scenario::NoPrimary,
    ];

    /// The kebab-case name used on the example's command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Standalone => "standalone",
            Scenario::Primary => "primary",
            Scenario::Secondary => "secondary",
            Scenario::Arbiter => "arbiter",
            Scenario::Mongos => "mongos",
            Scenario::NoPrimary => "no-primary",
        }
    }

    /// The serverStatus fixture this scenario serves (edited for Arbiter and NoPrimary).
    pub fn server_status_fixture(self) -> &'static str {
        match self {
            Scenario::Standalone => "serverStatus-standalone-8.0.9.json",
            Scenario::Primary | Scenario::Arbiter => "serverStatus-replset-primary-8.0.4.json",
            Scenario::Secondary => "serverStatus-shardsvr-secondary-8.0.8.json",
            Scenario::Mongos => "serverStatus-mongos-8.0.8.json",
            Scenario::NoPrimary => "serverStatus-standalone-6.0.4.json",
        }
    }

    /// The replSetGetStatus fixture, for replica-set members.
    pub fn repl_status_fixture(self) -> Option<&'static str> {
        match self {
            Scenario::Standalone | Scenario::Mongos => None,
            Scenario::Primary | Scenario::Arbiter => Some("replSetGetStatus-primary-lagging-8.0.4.json"),
            Scenario::Secondary => Some("replSetGetStatus-shardsvr-secondary-8.0.8.json"),
            Scenario::NoPrimary => Some("replSetGetStatus-secondary-unreachable-6.0.19.json"),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == wanted || (wanted == "noprimary" && *sc == Scenario::NoPrimary))
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|sc| sc.name()).collect();
                format!("unknown scenario {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// A misbehaviour switched on at runtime.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Answer correctly after this delay (interrupted by `stop()`).
    Delay(Duration),
    /// Answer `{ok: 0, errmsg, code, codeName}`. For code 13 the message is the
    /// server's "not authorized on <db> to execute command { <cmd>: <arg> }".
    ErrorReply { code: i32, code_name: String },
    /// Write the first half of the correct reply, then close the connection.
    DropMidReply,
    /// A complete `OP_MSG` whose body document's length prefix claims 1 KiB more
    /// than the bytes that follow.
    MalformedBson,
    /// Close every new connection right after accept, and live ones at their
    /// next message. Only honoured by [`ReplayServer::set_fault`].
    RefuseHandshake,
}

impl Fault {
    /// `ErrorReply { code: 13, code_name: "Unauthorized" }`.
    pub fn unauthorized() -> Self {
        Fault::ErrorReply { code: 13, code_name: "Unauthorized".to_owned() }
    }
}

// ---------------------------------------------------------------------------
// The server handle
// ---------------------------------------------------------------------------

/// A running replay server on a loopback port. Dropping it stops it.
pub struct ReplayServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayServer").field("scenario", &self.shared.data.scenario).field("addr", &self.addr).finish()
    }
}

struct Shared {
    data: ScenarioData,
    state: Mutex<State>,
    stop: AtomicBool,
    connections_accepted: AtomicU64,
    next_connection_id: AtomicI32,
    next_request_id: AtomicI32,
    connections: Mutex<Vec<Connection>>,
}

struct Connection {
    stream: TcpStream,
    thread: JoinHandle<()>,
}

struct State {
    /// Set by [`ReplayServer::serve_healthy_app`]: the TTL monitor's counters
    /// advance by one pass with every serverStatus read from then on (a live
    /// server makes one every 60 s; a replay cannot wait that long).
    ttl_passes: Option<i64>,
    global_fault: Fault,
    command_faults: HashMap<String, Fault>,
    profile_docs: HashMap<String, Vec<Document>>,
    profile_levels: HashMap<String, i32>,
    current_ops: Vec<Document>,
    seen: VecDeque<(String, String)>,
    /// Full bodies of recent commands (not handshakes), oldest first.
    bodies: VecDeque<(String, Document)>,
    /// Documents of application collections, by (db, collection).
    collections: HashMap<(String, String), Vec<Document>>,
    /// Scripted replies by (command, db, collection).
    scripted: HashMap<(String, String, String), Document>,
    /// Fields that replace (or add to) those of every `hello` reply.
    hello_fields: Document,
    /// Raw reply bodies by (command, db), sent verbatim (hostile-server tests).
    raw_replies: HashMap<(String, String), Arc<Vec<u8>>>,
    /// A raw document appended to every handshake reply as field `x`.
    hello_extra: Option<Arc<Vec<u8>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A handler that panicked mid-update leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn connections(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(AtomicOrdering::SeqCst)
    }

    fn refusing(&self) -> bool {
        self.state().global_fault == Fault::RefuseHandshake
    }
}

impl ReplayServer {
    /// Starts `scenario` on a free port of 127.0.0.1.
    pub fn start(scenario: Scenario) -> Result<Self, ReplayError> {
        Self::start_on(scenario, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Starts `scenario` listening on `addr` (port 0 picks a free port).
    pub fn start_on(scenario: Scenario, addr: SocketAddr) -> Result<Self, ReplayError> {
        let data = ScenarioData::load(scenario)?;
        let mut profile_docs = HashMap::new();
        profile_docs.insert(APP_DB.to_owned(), fixture_profile_docs()?);
        let mut profile_levels = HashMap::new();
        profile_levels.insert(APP_DB.to_owned(), 1);
        let state = State {
            ttl_passes: None,
            global_fault: Fault::None,
            command_faults: HashMap::new(),
            profile_docs,
            profile_levels,
            current_ops: default_current_ops(&data.host),
            seen: VecDeque::new(),
            bodies: VecDeque::new(),
            collections: HashMap::new(),
            scripted: HashMap::new(),
            hello_fields: Document::new(),
            raw_replies: HashMap::new(),
            hello_extra: None,
        };

        let listener = TcpListener::bind(addr).map_err(|source| ReplayError::Bind { addr, source })?;
        listener.set_nonblocking(true).map_err(|source| ReplayError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(|source| ReplayError::Bind { addr, source })?;

        let shared = Arc::new(Shared {
            data,
            state: Mutex::new(state),
            stop: AtomicBool::new(false),
            connections_accepted: AtomicU64::new(0),
            next_connection_id: AtomicI32::new(1),
            next_request_id: AtomicI32::new(1),
            connections: Mutex::new(Vec::new()),
        });
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("mongo-replay-accept-{}", local.port()))
            .spawn(move || accept_loop(acceptor_shared, listener))
            .map_err(ReplayError::Spawn)?;
        Ok(ReplayServer { shared, addr: local, acceptor: Some(acceptor) })
    }

    pub fn scenario(&self) -> Scenario {
        self.shared.data.scenario
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `mongodb://127.0.0.1:PORT/?directConnection=true` (the listening IP when it
    /// is not a wildcard address).
    pub fn uri(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.addr.port()))
        } else {
            self.addr
        };
        format!("mongodb://{host}/?directConnection=true")
    }

    /// Sets the fault for every command except the handshake.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.state().global_fault = fault;
    }

    /// Sets a fault for one command name (e.g. `"serverStatus"`); it wins over
    /// the global fault. `Fault::None` here exempts the command from the global one.
    pub fn set_command_fault(&self, command: &str, fault: Fault) {
        self.shared.state().command_faults.insert(command.to_owned(), fault);
    }

    /// Back to normal answers for everything.
    pub fn clear_faults(&self) {
        let mut state = self.shared.state();
        state.global_fault = Fault::None;
        state.command_faults.clear();
    }

    /// Every command received so far, oldest first, as (command name, `$db`);
    /// includes handshakes (`isMaster`, `hello`). Legacy `OP_QUERY` commands
    /// report the database of their `<db>.$cmd` namespace.
    pub fn commands_seen(&self) -> Vec<(String, String)> {
        self.shared.state().seen.iter().cloned().collect()
    }

    /// How many times `command` was received.
    pub fn command_count(&self, command: &str) -> usize {
        self.shared.state().seen.iter().filter(|(name, _)| name == command).count()
    }

    pub fn clear_commands_seen(&self) {
        self.shared.state().seen.clear();
    }

    /// TCP connections accepted so far (including refused and over-cap ones).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections_accepted.load(AtomicOrdering::SeqCst)
    }

    /// Appends documents to `<db>.system.profile` (they should carry a `ts` date).
    pub fn append_profile_docs(&self, db: &str, docs: Vec<Document>) {
        self.shared.state().profile_docs.entry(db.to_owned()).or_default().extend(docs);
    }

    /// The current contents of `<db>.system.profile`, in insertion order.
    pub fn profile_docs(&self, db: &str) -> Vec<Document> {
        self.shared.state().profile_docs.get(db).cloned().unwrap_or_default()
    }

    /// Replaces the documents of `<db>.<coll>` read by `find`, `aggregate` and `count`.
    pub fn set_collection_docs(&self, db: &str, coll: &str, docs: Vec<Document>) {
        self.shared.state().collections.insert((db.to_owned(), coll.to_owned()), docs);
    }

    /// Answers `command` (`"count"`, `"aggregate"`, `"find"`) on `<db>.<coll>` with `reply`.
    pub fn set_command_reply(&self, command: &str, db: &str, coll: &str, reply: Document) {
        self.shared.state().scripted.insert((command.to_owned(), db.to_owned(), coll.to_owned()), reply);
    }

    /// Replaces (or adds) these fields in every later `hello`/`isMaster` reply:
    /// what a hostile server advertises (`hosts`, `me`, `primary`, `setName`).
    pub fn set_hello_fields(&self, fields: Document) {
        self.shared.state().hello_fields = fields;
    }

    /// Answers `command` on database `db` with `body`, sent verbatim as the
    /// reply's BSON document (not parsed or checked here): for crafted hostile
    /// replies a `Document` cannot hold, such as 20,000 levels of nesting.
    /// Handshakes (`hello`/`isMaster`) are never replaced.
    pub fn set_raw_reply(&self, command: &str, db: &str, body: Vec<u8>) {
        self.shared.state().raw_replies.insert((command.to_owned(), db.to_owned()), Arc::new(body));
    }

    /// Appends `extra` (raw BSON, not parsed here) as field `x` of every
    /// `hello`/`isMaster` reply from now on, handshake and monitoring alike.
    pub fn set_hello_extra(&self, extra: mongodb::bson::RawDocumentBuf) {
        self.shared.state().hello_extra = Some(Arc::new(extra.into_bytes()));
    }

    /// Full bodies (including `$db`) of the commands named `command` received
    /// so far, oldest first.
    pub fn commands_received(&self, command: &str) -> Vec<Document> {
        self.shared.state().bodies.iter().filter(|(name, _)| name == command).map(|(_, body)| body.clone()).collect()
    }

    /// A healthy Tenderly application database, as the demo shows it: the
    /// DBA guide's indexes on `users`, `sessions` and `auditlogs` (what the
    /// required-index check wants), and a TTL monitor that keeps making passes
    /// (serverStatus `metrics.ttl` advances from the capture's values by one
    /// pass per serverStatus read).
    pub fn serve_healthy_app(&self) {
        let index = |name: &str, key: Document, extra: Document| {
            let mut spec = doc! { "v": 2, "key": key, "name": name };
            spec.extend(extra);
            spec
        };
        let id = || index("_id_", doc! { "_id": 1 }, doc! {});
        let replies = [
            (
                "users",
                vec![
                    id(),
                    index("email_1", doc! { "email": 1 }, doc! { "unique": true }),
                    index("roles_1_accountStatus_1", doc! { "roles": 1, "accountStatus": 1 }, doc! {}),
                ],
            ),
            ("sessions", vec![id(), index("expiresAt_1", doc! { "expiresAt": 1 }, doc! { "expireAfterSeconds": 0 })]),
            ("auditlogs", vec![id(), index("timestamp_1", doc! { "timestamp": 1 }, doc! {})]),
        ];
        for (coll, specs) in replies {
            self.set_command_reply("listIndexes", APP_DB, coll, cursor_reply(&format!("{APP_DB}.{coll}"), specs));
        }
        self.shared.state().ttl_passes = Some(0);
    }

    /// Replaces the documents `$currentOp` reports.
    pub fn set_current_ops(&self, ops: Vec<Document>) {
        self.shared.state().current_ops = ops;
    }

    /// Stops accepting, closes every connection and joins the threads, waiting
    /// at most [`STOP_JOIN_TIMEOUT`] per thread. Idempotent.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, AtomicOrdering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            join_bounded(acceptor);
        }
        let connections: Vec<Connection> = self.shared.connections().drain(..).collect();
        for conn in &connections {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        for conn in connections {
            join_bounded(conn.thread);
        }
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Joins `handle` if it finishes within [`STOP_JOIN_TIMEOUT`]; otherwise leaves it
/// detached (every loop in this module checks the stop flag, so that only
/// happens if the OS refuses to wake a blocked socket call).
fn join_bounded(handle: JoinHandle<()>) {
    let deadline = Instant::now() + STOP_JOIN_TIMEOUT;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = handle.join();
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut backoff = POLL_INTERVAL;
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _peer)) => {
                backoff = POLL_INTERVAL;
                shared.connections_accepted.fetch_add(1, AtomicOrdering::SeqCst);
                if shared.refusing() {
                    let _ = stream.shutdown(Shutdown::Both);
                    continue;
                }
                spawn_connection(&shared, stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL_INTERVAL),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, stream: TcpStream) {
    let mut connections = shared.connections();
    // Reap finished connections so the list only holds live ones.
    let (done, live): (Vec<Connection>, Vec<Connection>) =
        connections.drain(..).partition(|conn| conn.thread.is_finished());
    *connections = live;
    for conn in done {
        let _ = conn.thread.join();
    }
    if connections.len() >= MAX_CONNECTIONS {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let configured = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL_INTERVAL)))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true));
    let Ok(handle_stream) = configured.and_then(|()| stream.try_clone()) else {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    };
    let connection_id = shared.next_connection_id.fetch_add(1, AtomicOrdering::SeqCst);
    let thread_shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("mongo-replay-conn-{connection_id}"))
        .spawn(move || serve_connection(&thread_shared, stream, connection_id));
    match spawned {
        Ok(thread) => connections.push(Connection { stream: handle_stream, thread }),
        Err(_) => {
            let _ = handle_stream.shutdown(Shutdown::Both);
        }
    }
}

// ---------------------------------------------------------------------------
// Connection I/O
// ---------------------------------------------------------------------------

/// Why a connection ends; every variant just closes it.
#[derive(Debug)]
enum ConnEnd {
    Closed,
    Stopped,
    TimedOut,
    Io,
    Protocol,
}

fn serve_connection(shared: &Shared, mut stream: TcpStream, connection_id: i32) {
    // Any ConnEnd (EOF, timeout, stop, garbage) just closes this connection.
    while let Ok(message) = read_message(shared, &mut stream) {
        if shared.refusing() {
            break;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| handle_message(shared, &mut stream, &message, connection_id)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// One framed message: header fields plus the bytes after the header.
struct RawMessage {
    request_id: i32,
    op_code: i32,
    body: Vec<u8>,
}

fn read_message(shared: &Shared, stream: &mut TcpStream) -> Result<RawMessage, ConnEnd> {
    let mut header = [0u8; HEADER_LEN];
    read_full(shared, stream, &mut header, Instant::now() + IDLE_TIMEOUT, true)?;
    let length = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let request_id = i32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let op_code = i32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let length = usize::try_from(length).map_err(|_| ConnEnd::Protocol)?;
    if !(HEADER_LEN..=MAX_MESSAGE_SIZE).contains(&length) || !matches!(op_code, OP_MSG | OP_QUERY) {
        return Err(ConnEnd::Protocol);
    }
    // Grow the buffer as bytes arrive instead of trusting the length prefix with
    // an up-front allocation.
    let remaining = length - HEADER_LEN;
    let mut body = Vec::with_capacity(remaining.min(64 * 1024));
    let deadline = Instant::now() + MESSAGE_DEADLINE;
    let mut chunk = [0u8; 64 * 1024];
    while body.len() < remaining {
        let want = (remaining - body.len()).min(chunk.len());
        read_full(shared, stream, &mut chunk[..want], deadline, false)?;
        body.extend_from_slice(&chunk[..want]);
    }
    Ok(RawMessage { request_id, op_code, body })
}

/// Fills `buf`, polling the stop flag between short read timeouts, until
/// `deadline`. With `idle_ok`, waiting before the first byte is allowed until
/// the deadline; once a byte arrived the rest must come within
/// [`MESSAGE_DEADLINE`].
fn read_full(
    shared: &Shared,
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    idle_ok: bool,
) -> Result<(), ConnEnd> {
    let mut filled = 0;
    let mut deadline = deadline;
    while filled < buf.len() {
        if shared.stopping() {
            return Err(ConnEnd::Stopped);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(ConnEnd::Closed),
            Ok(n) => {
                if idle_ok && filled == 0 {
                    deadline = Instant::now() + MESSAGE_DEADLINE;
                }
                filled += n;
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return Err(ConnEnd::TimedOut);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(ConnEnd::Io),
        }
    }
    Ok(())
}

/// A decoded request.
struct Request {
    command: Document,
    db: String,
    legacy: bool,
    more_to_come: bool,
}

fn decode_request(message: &RawMessage) -> Result<Request, ConnEnd> {
    match message.op_code {
        OP_MSG => {
            let (flags, command) = parse_op_msg(&message.body).ok_or(ConnEnd::Protocol)?;
            let db = match command.get("$db") {
                Some(Bson::String(db)) => db.clone(),
                _ => String::new(),
            };
            Ok(Request { command, db, legacy: false, more_to_come: flags & FLAG_MORE_TO_COME != 0 })
        }
        OP_QUERY => {
            let (namespace, mut command) = parse_op_query(&message.body).ok_or(ConnEnd::Protocol)?;
            // Legacy drivers wrap the command when they add a read preference.
            if let Some(Bson::Document(inner)) = command.get("$query") {
                command = inner.clone();
            }
            let db = namespace.strip_suffix(".$cmd").unwrap_or(&namespace).to_owned();
            Ok(Request { command, db, legacy: true, more_to_come: false })
        }
        _ => Err(ConnEnd::Protocol),
    }
}

fn read_i32(buf: &[u8], pos: usize) -> Option<i32> {
    let bytes = buf.get(pos..pos.checked_add(4)?)?;
    Some(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn read_cstring(buf: &[u8], pos: usize, end: usize) -> Option<(String, usize)> {
    let region = buf.get(pos..end)?;
    let nul = region.iter().position(|&b| b == 0)?;
    let text = std::str::from_utf8(&region[..nul]).ok()?.to_owned();
    Some((text, pos + nul + 1))
}

/// Decodes one BSON document starting at `pos` that must end by `end`; returns
/// it and the position after it.
fn read_document(buf: &[u8], pos: usize, end: usize) -> Option<(Document, usize)> {
    let len = usize::try_from(read_i32(buf, pos)?).ok()?;
    let doc_end = pos.checked_add(len)?;
    if len < 5 || doc_end > end {
        return None;
    }
    let bytes = buf.get(pos..doc_end)?;
    let raw = RawDocument::from_bytes(bytes).ok()?;
    if !raw_depth_ok(raw, 1) {
        return None;
    }
    let doc = Document::from_reader(bytes).ok()?;
    Some((doc, doc_end))
}

/// Walks `raw` checking every element parses and nesting stays within
/// [`MAX_BSON_DEPTH`], recursing at most that deep.
fn raw_depth_ok(raw: &RawDocument, depth: usize) -> bool {
    if depth > MAX_BSON_DEPTH {
        return false;
    }
    raw.into_iter().all(|element| match element {
        Ok((_, value)) => raw_value_ok(value, depth),
        Err(_) => false,
    })
}

fn raw_value_ok(value: RawBsonRef<'_>, depth: usize) -> bool {
    match value {
        RawBsonRef::Document(doc) => raw_depth_ok(doc, depth + 1),
        RawBsonRef::Array(array) => {
            depth < MAX_BSON_DEPTH
                && array.into_iter().all(|item| match item {
                    Ok(value) => raw_value_ok(value, depth + 1),
                    Err(_) => false,
                })
        }
        RawBsonRef::JavaScriptCodeWithScope(code) => raw_depth_ok(code.scope, depth + 1),
        _ => true,
    }
}

/// `OP_MSG` body: flagBits, then sections up to the optional CRC-32C.
fn parse_op_msg(body: &[u8]) -> Option<(u32, Document)> {
    let flags = u32::from_le_bytes(body.get(0..4)?.try_into().ok()?);
    if flags & FLAG_REQUIRED_MASK & !(FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME) != 0 {
        return None;
    }
    let end = if flags & FLAG_CHECKSUM_PRESENT != 0 { body.len().checked_sub(4)? } else { body.len() };
    let mut pos = 4;
    let mut command: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Bson>)> = Vec::new();
    while pos < end {
        let kind = *body.get(pos)?;
        pos += 1;
        match kind {
            0 => {
                if command.is_some() {
                    return None;
                }
                let (doc, next) = read_document(body, pos, end)?;
                command = Some(doc);
                pos = next;
            }
            1 => {
                let size = usize::try_from(read_i32(body, pos)?).ok()?;
                let seq_end = pos.checked_add(size)?;
                if size < 5 || seq_end > end {
                    return None;
                }
                let (identifier, mut cursor) = read_cstring(body, pos + 4, seq_end)?;
                let mut docs = Vec::new();
                while cursor < seq_end {
                    let (doc, next) = read_document(body, cursor, seq_end)?;
                    docs.push(Bson::Document(doc));
                    cursor = next;
                }
                sequences.push((identifier, docs));
                pos = seq_end;
            }
            _ => return None,
        }
    }
    let mut command = command?;
    for (identifier, docs) in sequences {
        command.insert(identifier, Bson::Array(docs));
    }
    Some((flags, command))
}

/// `OP_QUERY` body: flags, fullCollectionName, numberToSkip, numberToReturn, query
/// (an optional returnFieldsSelector is ignored).
fn parse_op_query(body: &[u8]) -> Option<(String, Document)> {
    let (namespace, pos) = read_cstring(body, 4, body.len())?;
    let pos = pos.checked_add(8)?;
    let (query, _) = read_document(body, pos, body.len())?;
    Some((namespace, query))
}

fn encode_doc(doc: &Document) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    doc.to_writer(&mut bytes).ok()?;
    Some(bytes)
}

fn frame(shared: &Shared, response_to: i32, op_code: i32, payload: &[u8]) -> Option<Vec<u8>> {
    let length = i32::try_from(HEADER_LEN + payload.len()).ok()?;
    let request_id = shared.next_request_id.fetch_add(1, AtomicOrdering::SeqCst);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&op_code.to_le_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

/// `OP_MSG` reply payload: flagBits 0, one kind-0 section.
fn op_msg_payload(doc_bytes: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(5 + doc_bytes.len());
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload.push(0);
    payload.extend_from_slice(doc_bytes);
    payload
}

/// `OP_REPLY` payload: responseFlags (AwaitCapable, as servers set), cursorID 0,
/// startingFrom 0, numberReturned 1, the document.
fn op_reply_payload(doc_bytes: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(20 + doc_bytes.len());
    payload.extend_from_slice(&8i32.to_le_bytes());
    payload.extend_from_slice(&0i64.to_le_bytes());
    payload.extend_from_slice(&0i32.to_le_bytes());
    payload.extend_from_slice(&1i32.to_le_bytes());
    payload.extend_from_slice(doc_bytes);
    payload
}

fn handle_message(
    shared: &Shared,
    stream: &mut TcpStream,
    message: &RawMessage,
    connection_id: i32,
) -> Result<(), ConnEnd> {
    let request = decode_request(message)?;
    let name = request.command.keys().next().cloned().unwrap_or_default();
    {
        let mut state = shared.state();
        if state.seen.len() >= MAX_COMMANDS_RECORDED {
            state.seen.pop_front();
        }
        state.seen.push_back((name.clone(), request.db.clone()));
        if !is_handshake(&name) {
            if state.bodies.len() >= MAX_BODIES_RECORDED {
                state.bodies.pop_front();
            }
            state.bodies.push_back((name.clone(), request.command.clone()));
        }
    }

    let handshake = is_handshake(&name);
    let fault = if handshake {
        Fault::None
    } else {
        let state = shared.state();
        match state.command_faults.get(&name) {
            Some(Fault::RefuseHandshake) => Fault::None,
            Some(fault) => fault.clone(),
            None => state.global_fault.clone(),
        }
    };

    let raw =
        if handshake { None } else { shared.state().raw_replies.get(&(name.clone(), request.db.clone())).cloned() };
    if let Some(body) = raw {
        if request.more_to_come {
            return Ok(());
        }
        let (op_code, payload) =
            if request.legacy { (OP_REPLY, op_reply_payload(&body)) } else { (OP_MSG, op_msg_payload(&body)) };
        let bytes = frame(shared, message.request_id, op_code, &payload).ok_or(ConnEnd::Protocol)?;
        stream.write_all(&bytes).map_err(|_| ConnEnd::Io)?;
        return stream.flush().map_err(|_| ConnEnd::Io);
    }

    let reply = match &fault {
        Fault::Delay(delay) => {
            sleep_unless_stopped(shared, *delay)?;
            dispatch(shared, &request, &name, connection_id)
        }
        Fault::ErrorReply { code, code_name } => injected_error(&request, &name, *code, code_name),
        _ => dispatch(shared, &request, &name, connection_id),
    };
    if request.more_to_come {
        return Ok(());
    }

    let mut doc_bytes = encode_doc(&reply).ok_or(ConnEnd::Protocol)?;
    let extra = if handshake { shared.state().hello_extra.clone() } else { None };
    if let Some(extra) = extra {
        // Splice `x: <extra>` in before the terminating NUL and fix the length.
        doc_bytes.pop();
        doc_bytes.extend_from_slice(&[0x03, b'x', 0]);
        doc_bytes.extend_from_slice(&extra);
        doc_bytes.push(0);
        let len = i32::try_from(doc_bytes.len()).map_err(|_| ConnEnd::Protocol)?;
        doc_bytes[0..4].copy_from_slice(&len.to_le_bytes());
    }
    if fault == Fault::MalformedBson {
        let lie = i32::try_from(doc_bytes.len() + 1024).map_err(|_| ConnEnd::Protocol)?;
        doc_bytes[0..4].copy_from_slice(&lie.to_le_bytes());
    }
    let (op_code, payload) =
        if request.legacy { (OP_REPLY, op_reply_payload(&doc_bytes)) } else { (OP_MSG, op_msg_payload(&doc_bytes)) };
    let bytes = frame(shared, message.request_id, op_code, &payload).ok_or(ConnEnd::Protocol)?;

    if fault == Fault::DropMidReply {
        let _ = stream.write_all(&bytes[..bytes.len() / 2]);
        let _ = stream.flush();
        return Err(ConnEnd::Closed);
    }
    stream.write_all(&bytes).map_err(|_| ConnEnd::Io)?;
    stream.flush().map_err(|_| ConnEnd::Io)
}

fn is_handshake(name: &str) -> bool {
    matches!(name, "hello" | "isMaster" | "ismaster")
}

fn sleep_unless_stopped(shared: &Shared, delay: Duration) -> Result<(), ConnEnd> {
    let deadline = Instant::now() + delay;
    loop {
        if shared.stopping() {
            return Err(ConnEnd::Stopped);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        thread::sleep((deadline - now).min(POLL_INTERVAL));
    }
}

// ---------------------------------------------------------------------------
// Command handling
// ---------------------------------------------------------------------------

fn error_reply(code: i32, code_name: &str, errmsg: impl Into<String>) -> Document {
    doc! { "ok": 0.0, "errmsg": errmsg.into(), "code": code, "codeName": code_name }
}

fn command_not_found(name: &str) -> Document {
    error_reply(59, "CommandNotFound", format!("no such command: '{name}'"))
}

fn admin_only(name: &str) -> Document {
    error_reply(13, "Unauthorized", format!("{name} may only be run against the admin database."))
}

fn not_primary_or_secondary() -> Document {
    error_reply(13436, "NotPrimaryOrSecondary", "node is not in primary or recovering state")
}

fn namespace_not_found(ns: &str) -> Document {
    error_reply(26, "NamespaceNotFound", format!("Collection [{ns}] not found."))
}

fn injected_error(request: &Request, name: &str, code: i32, code_name: &str) -> Document {
    let errmsg = if code == 13 {
        let arg = request.command.get(name).map(|v| v.to_string()).unwrap_or_default();
        let db = if request.db.is_empty() { "admin" } else { request.db.as_str() };
        format!("not authorized on {db} to execute command {{ {name}: {arg} }}")
    } else {
        format!("{code_name} (injected by the replay server)")
    };
    error_reply(code, code_name, errmsg)
}

fn ok() -> Document {
    doc! { "ok": 1.0 }
}

fn cursor_reply(ns: &str, docs: Vec<Document>) -> Document {
    let batch: Vec<Bson> = docs.into_iter().take(MAX_BATCH_DOCS).map(Bson::Document).collect();
    doc! { "cursor": { "firstBatch": batch, "id": 0i64, "ns": ns }, "ok": 1.0 }
}

fn dispatch(shared: &Shared, request: &Request, name: &str, connection_id: i32) -> Document {
    let data = &shared.data;
    let cmd = &request.command;
    let db = request.db.as_str();
    if request.legacy && !is_handshake(name) {
        return error_reply(
            352,
            "UnsupportedOpQueryCommand",
            format!("Unsupported OP_QUERY command: {name}. The client driver may require an upgrade."),
        );
    }
    if name.is_empty() {
        return command_not_found(name);
    }
    if !request.legacy && db.is_empty() {
        return error_reply(40571, "Location40571", "OP_MSG requests require a $db argument");
    }
    match name {
        "hello" | "isMaster" | "ismaster" => {
            let mut reply = data.hello(cmd, name, connection_id);
            for (key, value) in shared.state().hello_fields.iter() {
                reply.insert(key.clone(), value.clone());
            }
            reply
        }
        "ping" | "endSessions" => ok(),
        "buildInfo" | "buildinfo" => data.build_info.clone(),
        "saslStart" | "saslContinue" | "authenticate" => {
            error_reply(18, "AuthenticationFailed", "Authentication failed.")
        }
        "serverStatus" => {
            let passes = shared.state().ttl_passes.as_mut().map(|n| {
                *n += 1;
                *n
            });
            with_ttl_progress(data.server_status.clone(), passes)
        }
        "getCmdLineOpts" if db != "admin" => admin_only(name),
        "getCmdLineOpts" => data.cmd_line_opts.clone(),
        "replSetGetStatus" | "replSetGetConfig" => data.repl_command(name, db),
        "listDatabases" if db != "admin" => admin_only(name),
        "listDatabases" => data.list_databases(cmd),
        "dbStats" | "dbstats" if data.role == Role::Arbiter => not_primary_or_secondary(),
        "dbStats" | "dbstats" => synthesized_db_stats(db),
        "profile" => profile_command(shared, cmd, db),
        "collStats" => data.coll_stats(cmd, db),
        "find" | "aggregate" | "count" | "listIndexes" if scripted_reply(shared, name, cmd, db).is_some() => {
            scripted_reply(shared, name, cmd, db).unwrap_or_else(ok)
        }
        "count" => count_command(shared, cmd, db),
        "find" => find_command(shared, cmd, db),
        "aggregate" => aggregate_command(shared, cmd, db),
        "listIndexes" if data.role == Role::Arbiter => not_primary_or_secondary(),
        "listIndexes" => list_indexes(cmd, db),
        "getParameter" if db != "admin" => admin_only(name),
        "getParameter" if data.role == Role::Mongos => error_reply(72, "InvalidOptions", "no option found to get"),
        "getParameter" => fcv_reply(&data.server_status),
        "listCollections" if data.role == Role::Arbiter => not_primary_or_secondary(),
        "listCollections" => list_collections(cmd, db),
        "top" if data.role == Role::Mongos => command_not_found(name),
        "top" if db != "admin" => admin_only(name),
        "top" => top_reply(),
        "getMore" => error_reply(43, "CursorNotFound", "cursor id not found: every replay cursor is exhausted"),
        "killCursors" => {
            let ids = cmd.get_array("cursors").cloned().unwrap_or_default();
            doc! { "cursorsKilled": [], "cursorsNotFound": ids, "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0 }
        }
        _ => command_not_found(name),
    }
}

/// `listIndexes` on a synthesized `tenderly` collection: `_id_` plus the
/// `field<i>_1` indexes of [`app_indexes`]; any other collection is
/// `NamespaceNotFound`, as on a real server. Tests script other replies with
/// `set_command_reply("listIndexes", db, coll, ..)`.
fn list_indexes(cmd: &Document, db: &str) -> Document {
    let Ok(coll) = cmd.get_str("listIndexes") else {
        return error_reply(2, "BadValue", "collection name has invalid type");
    };
    let specs = app_indexes(db, coll);
    if specs.is_empty() {
        return namespace_not_found(&format!("{db}.{coll}"));
    }
    let specs = specs
        .into_iter()
        .map(|d| {
            let name = d.get_str("name").unwrap_or("_id_").to_owned();
            let field = if name == "_id_" { "_id".to_owned() } else { name.trim_end_matches("_1").to_owned() };
            doc! { "v": 2, "key": { field: 1 }, "name": name }
        })
        .collect();
    cursor_reply(&format!("{db}.{coll}"), specs)
}

/// serverStatus with `metrics.ttl` advanced by `passes` passes (and as many
/// deleted documents), when set.
fn with_ttl_progress(mut status: Document, passes: Option<i64>) -> Document {
    let Some(minutes) = passes else { return status };
    if let Ok(metrics) = status.get_document_mut("metrics") {
        if let Ok(ttl) = metrics.get_document_mut("ttl") {
            for key in ["passes", "deletedDocuments"] {
                let base = ttl.get(key).and_then(as_f64).unwrap_or(0.0) as i64;
                ttl.insert(key, base + minutes);
            }
        }
    }
    status
}

/// `getParameter: featureCompatibilityVersion` answered with the serverStatus
/// fixture's major.minor (an upgraded server whose FCV was raised).
fn fcv_reply(server_status: &Document) -> Document {
    let version = server_status.get_str("version").unwrap_or("8.0.0");
    let fcv: Vec<&str> = version.split('.').take(2).collect();
    doc! { "featureCompatibilityVersion": { "version": fcv.join(".") }, "ok": 1.0 }
}

fn scripted_reply(shared: &Shared, name: &str, cmd: &Document, db: &str) -> Option<Document> {
    let coll = cmd.get_str(name).ok()?;
    shared.state().scripted.get(&(name.to_owned(), db.to_owned(), coll.to_owned())).cloned()
}

fn count_command(shared: &Shared, cmd: &Document, db: &str) -> Document {
    let Ok(coll) = cmd.get_str("count") else {
        return error_reply(2, "BadValue", "collection name has invalid type");
    };
    let docs = match collection_docs(shared, db, coll) {
        Ok(docs) => docs,
        Err(error) => return error,
    };
    let query = cmd.get_document("query").ok();
    let matched = docs.iter().filter(|d| query.is_none_or(|q| matches_filter(d, q))).count();
    let skip = cmd.get("skip").and_then(as_f64).unwrap_or(0.0).max(0.0) as usize;
    let limit = cmd.get("limit").and_then(as_f64).map(|l| l.abs() as usize).filter(|&l| l > 0);
    let n = matched.saturating_sub(skip).min(limit.unwrap_or(usize::MAX));
    doc! { "n": n as i64, "ok": 1.0 }
}

fn profile_command(shared: &Shared, cmd: &Document, db: &str) -> Document {
    if shared.data.role == Role::Arbiter {
        return not_primary_or_secondary();
    }
    let requested = cmd.get("profile").and_then(as_f64).unwrap_or(-1.0);
    let mut state = shared.state();
    let was = state.profile_levels.get(db).copied().unwrap_or(0);
    match requested as i32 {
        -1 => {}
        level @ 0..=2 => {
            state.profile_levels.insert(db.to_owned(), level);
        }
        _ => return error_reply(2, "BadValue", "Invalid profiling level"),
    }
    doc! { "was": was, "slowms": 100, "sampleRate": 1.0, "ok": 1.0 }
}

/// The documents of a collection as the replay server sees it (natural order),
/// or the error a real server of this role answers for reading it.
fn collection_docs(shared: &Shared, db: &str, coll: &str) -> Result<Vec<Document>, Document> {
    let data = &shared.data;
    if data.role == Role::Arbiter {
        return Err(not_primary_or_secondary());
    }
    if db == "local" && data.role == Role::Mongos {
        return Err(error_reply(20, "IllegalOperation", "Can't use 'local' database through mongos"));
    }
    if db == "local" && coll == "oplog.rs" {
        return Ok(data.oplog.clone());
    }
    if coll == "system.profile" {
        return Ok(shared.state().profile_docs.get(db).cloned().unwrap_or_default());
    }
    Ok(shared.state().collections.get(&(db.to_owned(), coll.to_owned())).cloned().unwrap_or_default())
}

fn find_command(shared: &Shared, cmd: &Document, db: &str) -> Document {
    let Ok(coll) = cmd.get_str("find") else {
        return error_reply(2, "BadValue", "collection name has invalid type");
    };
    let ns = format!("{db}.{coll}");
    let docs = match collection_docs(shared, db, coll) {
        Ok(docs) => docs,
        Err(error) => return error,
    };
    let filter = cmd.get_document("filter").ok();
    let mut docs: Vec<Document> = docs.into_iter().filter(|d| filter.is_none_or(|f| matches_filter(d, f))).collect();
    if let Ok(sort) = cmd.get_document("sort") {
        sort_docs(&mut docs, sort);
    }
    let skip = cmd.get("skip").and_then(as_f64).unwrap_or(0.0).max(0.0) as usize;
    let limit = cmd.get("limit").and_then(as_f64).map(|l| l.abs() as usize).filter(|&l| l > 0);
    let docs = docs.into_iter().skip(skip).take(limit.unwrap_or(usize::MAX));
    let projection = cmd.get_document("projection").ok();
    let docs = docs
        .map(|d| match projection {
            Some(p) => project(&d, p),
            None => d,
        })
        .collect();
    cursor_reply(&ns, docs)
}

fn aggregate_command(shared: &Shared, cmd: &Document, db: &str) -> Document {
    let Ok(pipeline) = cmd.get_array("pipeline") else {
        return error_reply(9, "FailedToParse", "'pipeline' option must be specified as an array");
    };
    let stages: Vec<&Document> = pipeline.iter().filter_map(Bson::as_document).collect();
    if stages.len() != pipeline.len() {
        return error_reply(14, "TypeMismatch", "Each element of the 'pipeline' array must be an object");
    }
    let first = stages.first().and_then(|s| s.iter().next());
    match (cmd.get("aggregate"), first) {
        (Some(Bson::String(coll)), Some((stage, _))) if stage == "$indexStats" => {
            if shared.data.role == Role::Arbiter {
                return not_primary_or_secondary();
            }
            apply_stages(app_indexes(db, coll), &stages[1..], &format!("{db}.{coll}"))
        }
        (Some(Bson::String(coll)), Some((stage, spec))) if stage == "$collStats" => {
            if shared.data.role == Role::Arbiter {
                return not_primary_or_secondary();
            }
            if let Some(doc) = app_coll_stats(db, coll) {
                return apply_stages(vec![doc], &stages[1..], &format!("{db}.{coll}"));
            }
            match shared.data.oplog_coll_stats_stage(db, coll, spec) {
                Ok(doc) => apply_stages(vec![doc], &stages[1..], &format!("{db}.{coll}")),
                Err(error) => error,
            }
        }
        (Some(Bson::String(coll)), _) => match collection_docs(shared, db, coll) {
            Ok(docs) => apply_stages(docs, &stages, &format!("{db}.{coll}")),
            Err(error) => error,
        },
        (Some(target), Some((stage, spec))) if stage == "$currentOp" && as_f64(target) == Some(1.0) => {
            if db != "admin" {
                return error_reply(
                    73,
                    "InvalidNamespace",
                    "$currentOp must be run against the 'admin' database with {aggregate: 1}",
                );
            }
            let idle = spec.as_document().and_then(|s| s.get_bool("idleConnections").ok()).unwrap_or(false);
            let ops: Vec<Document> = shared
                .state()
                .current_ops
                .iter()
                .filter(|op| idle || op.get_bool("active").unwrap_or(true))
                .cloned()
                .collect();
            apply_stages(ops, &stages[1..], "admin.$cmd.aggregate")
        }
        (Some(_), Some((stage, _))) => error_reply(
            73,
            "InvalidNamespace",
            format!("{{aggregate: 1}} is not valid for '{stage}'; a collection is required."),
        ),
        _ => error_reply(9, "FailedToParse", "aggregate needs a collection name or 1 and a non-empty pipeline"),
    }
}

/// Applies `$match`, `$sort`, `$skip`, `$limit`, `$project`, `$unwind`,
/// `$group` and `$count` roughly; any other stage is ignored.
fn apply_stages(mut docs: Vec<Document>, stages: &[&Document], ns: &str) -> Document {
    for stage in stages {
        let Some((name, spec)) = stage.iter().next() else { continue };
        match (name.as_str(), spec) {
            ("$match", Bson::Document(filter)) => docs.retain(|d| matches_filter(d, filter)),
            ("$sort", Bson::Document(sort)) => sort_docs(&mut docs, sort),
            ("$skip", n) => {
                let n = as_f64(n).unwrap_or(0.0).max(0.0) as usize;
                docs = docs.into_iter().skip(n).collect();
            }
            ("$limit", n) => docs.truncate(as_f64(n).unwrap_or(0.0).max(0.0) as usize),
            ("$project", Bson::Document(projection)) => docs = docs.iter().map(|d| project(d, projection)).collect(),
            ("$unwind", Bson::String(path)) => docs = unwind(docs, path.trim_start_matches('$')),
            ("$group", Bson::Document(spec)) => docs = group(&docs, spec),
            ("$count", Bson::String(field)) => docs = vec![doc! { field.clone(): docs.len() as i32 }],
            _ => {}
        }
    }
    cursor_reply(ns, docs)
}

// ---------------------------------------------------------------------------
// A tiny query matcher, sort and projection
// ---------------------------------------------------------------------------

fn as_f64(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(v) => Some(f64::from(*v)),
        Bson::Int64(v) => Some(*v as f64),
        Bson::Double(v) => Some(*v),
        _ => None,
    }
}

fn compare_bson(a: &Bson, b: &Bson) -> Option<Ordering> {
    match (a, b) {
        (Bson::String(a), Bson::String(b)) => Some(a.cmp(b)),
        (Bson::DateTime(a), Bson::DateTime(b)) => Some(a.timestamp_millis().cmp(&b.timestamp_millis())),
        (Bson::Timestamp(a), Bson::Timestamp(b)) => Some((a.time, a.increment).cmp(&(b.time, b.increment))),
        (Bson::Boolean(a), Bson::Boolean(b)) => Some(a.cmp(b)),
        _ => as_f64(a)?.partial_cmp(&as_f64(b)?),
    }
}

fn bson_eq(a: &Bson, b: &Bson) -> bool {
    compare_bson(a, b) == Some(Ordering::Equal) || a == b
}

fn get_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Bson::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            other => other.as_document()?.get(part)?,
        };
    }
    Some(current)
}

/// `$unwind: "$path"` on a top-level field.
fn unwind(docs: Vec<Document>, path: &str) -> Vec<Document> {
    let mut out = Vec::new();
    for d in docs {
        match d.get(path) {
            Some(Bson::Array(items)) => {
                for item in items {
                    let mut copy = d.clone();
                    copy.insert(path, item.clone());
                    out.push(copy);
                }
            }
            None | Some(Bson::Null) => {}
            Some(_) => out.push(d),
        }
    }
    out
}

/// The value of a group key or accumulator operand: `"$path"` reads the
/// document (missing is null), anything else is a constant.
fn operand(doc: &Document, spec: &Bson) -> Bson {
    match spec {
        Bson::String(s) if s.starts_with('$') => get_path(doc, &s[1..]).cloned().unwrap_or(Bson::Null),
        other => other.clone(),
    }
}

/// `$group` with `$sum` accumulators (a number or a `"$path"`), groups in first-seen order.
fn group(docs: &[Document], spec: &Document) -> Vec<Document> {
    let id_spec = spec.get("_id").cloned().unwrap_or(Bson::Null);
    let mut groups: Vec<(Bson, Document)> = Vec::new();
    for d in docs {
        let id = operand(d, &id_spec);
        let index = match groups.iter().position(|(k, _)| *k == id) {
            Some(i) => i,
            None => {
                groups.push((id.clone(), doc! { "_id": id }));
                groups.len() - 1
            }
        };
        for (field, acc) in spec.iter().filter(|(k, _)| k.as_str() != "_id") {
            let Some(Bson::Document(acc)) = Some(acc) else { continue };
            let Some(sum_of) = acc.get("$sum") else { continue };
            let add = as_f64(&operand(d, sum_of)).unwrap_or(0.0);
            let out = &mut groups[index].1;
            let total = out.get(field).and_then(as_f64).unwrap_or(0.0) + add;
            let value =
                if total.fract() == 0.0 && total.abs() < 2e9 { Bson::Int32(total as i32) } else { Bson::Double(total) };
            out.insert(field.clone(), value);
        }
    }
    groups.into_iter().map(|(_, d)| d).collect()
}

/// A small regex engine (see the module docs for the supported syntax).
fn regex_match(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| if case_insensitive { s.to_lowercase() } else { s.to_owned() };
    let (pattern, text) = (fold(pattern), fold(text));
    let Some(atoms) = regex_parse(&pattern) else { return false };
    let chars: Vec<char> = text.chars().collect();
    let (anchored, atoms) = match atoms.split_first() {
        Some((RegexAtom::Start, rest)) => (true, rest.to_vec()),
        _ => (false, atoms),
    };
    let starts: Vec<usize> = if anchored { vec![0] } else { (0..=chars.len()).collect() };
    starts.into_iter().any(|start| regex_here(&atoms, &chars, start))
}

#[derive(Clone, Debug)]
enum RegexAtom {
    Start,
    End,
    /// A one-character matcher and its repetition (min, max).
    Char(CharMatch, usize, usize),
}

#[derive(Clone, Debug)]
enum CharMatch {
    Any,
    Literal(char),
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl CharMatch {
    fn matches(&self, c: char) -> bool {
        match self {
            CharMatch::Any => c != '\n',
            CharMatch::Literal(l) => *l == c,
            CharMatch::Class { negated, ranges } => ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated,
        }
    }
}

fn regex_parse(pattern: &str) -> Option<Vec<RegexAtom>> {
    let p: Vec<char> = pattern.chars().collect();
    let mut atoms = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let m = match p[i] {
            '^' if i == 0 => {
                atoms.push(RegexAtom::Start);
                i += 1;
                continue;
            }
            '$' if i + 1 == p.len() => {
                atoms.push(RegexAtom::End);
                i += 1;
                continue;
            }
            '.' => CharMatch::Any,
            '\\' => {
                i += 1;
                CharMatch::Literal(*p.get(i)?)
            }
            '[' => {
                i += 1;
                let negated = p.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                while *p.get(i)? != ']' {
                    let a = p[i];
                    if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|c| *c != ']') {
                        ranges.push((a, p[i + 2]));
                        i += 3;
                    } else {
                        ranges.push((a, a));
                        i += 1;
                    }
                }
                CharMatch::Class { negated, ranges }
            }
            '(' | ')' | '|' | '{' | '}' | '*' | '+' | '?' | '^' | '$' => return None,
            c => CharMatch::Literal(c),
        };
        i += 1;
        let (min, max) = match p.get(i) {
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('?') => (0, 1),
            _ => (1, 1),
        };
        if (min, max) != (1, 1) {
            i += 1;
        }
        atoms.push(RegexAtom::Char(m, min, max));
    }
    Some(atoms)
}

fn regex_here(atoms: &[RegexAtom], text: &[char], pos: usize) -> bool {
    match atoms.split_first() {
        None => true,
        Some((RegexAtom::End, rest)) => pos == text.len() && regex_here(rest, text, pos),
        Some((RegexAtom::Start, rest)) => pos == 0 && regex_here(rest, text, pos),
        Some((RegexAtom::Char(m, min, max), rest)) => {
            let mut n = 0;
            while n < *max && pos + n < text.len() && m.matches(text[pos + n]) {
                n += 1;
            }
            (*min..=n).rev().any(|k| regex_here(rest, text, pos + k))
        }
    }
}

fn matches_filter(doc: &Document, filter: &Document) -> bool {
    filter.iter().all(|(key, cond)| match key.as_str() {
        "$and" => {
            cond.as_array().is_none_or(|c| c.iter().filter_map(Bson::as_document).all(|f| matches_filter(doc, f)))
        }
        "$or" => cond.as_array().is_none_or(|c| c.iter().filter_map(Bson::as_document).any(|f| matches_filter(doc, f))),
        k if k.starts_with('$') => true,
        path => matches_condition(get_path(doc, path), cond),
    })
}

/// Equality as a query sees it: an array field also matches when one of its elements does.
fn element_eq(value: &Bson, wanted: &Bson) -> bool {
    bson_eq(value, wanted) || matches!(value, Bson::Array(items) if items.iter().any(|i| bson_eq(i, wanted)))
}

fn matches_condition(value: Option<&Bson>, cond: &Bson) -> bool {
    let operators = match cond {
        Bson::Document(ops) if ops.keys().next().is_some_and(|k| k.starts_with('$')) => ops,
        _ => return value.is_some_and(|v| element_eq(v, cond)),
    };
    operators.iter().all(|(op, arg)| {
        let ordered = |want: &[Ordering]| value.and_then(|v| compare_bson(v, arg)).is_some_and(|o| want.contains(&o));
        match op.as_str() {
            "$eq" => value.is_some_and(|v| element_eq(v, arg)),
            "$ne" => !value.is_some_and(|v| element_eq(v, arg)),
            "$gt" => ordered(&[Ordering::Greater]),
            "$gte" => ordered(&[Ordering::Greater, Ordering::Equal]),
            "$lt" => ordered(&[Ordering::Less]),
            "$lte" => ordered(&[Ordering::Less, Ordering::Equal]),
            // As in MongoDB, an array field matches when one of its elements is listed.
            "$in" => arg.as_array().is_some_and(|c| value.is_some_and(|v| c.iter().any(|x| element_eq(v, x)))),
            "$nin" => arg.as_array().is_none_or(|c| !value.is_some_and(|v| c.iter().any(|x| element_eq(v, x)))),
            "$exists" => value.is_some() == truthy(arg),
            "$regex" => {
                let insensitive = operators.get_str("$options").is_ok_and(|o| o.contains('i'));
                match (value, arg) {
                    (Some(Bson::String(text)), Bson::String(pattern)) => regex_match(pattern, text, insensitive),
                    (Some(Bson::String(text)), Bson::RegularExpression(re)) => {
                        regex_match(&re.pattern, text, re.options.contains('i'))
                    }
                    _ => false,
                }
            }
            "$options" => true,
            _ => true,
        }
    })
}

fn truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        Bson::Null => false,
        other => as_f64(other).is_none_or(|n| n != 0.0),
    }
}

/// Sorts by the keys of `sort` (1 ascending, -1 descending); `$natural: -1`
/// reverses the natural order. Missing values sort first, as in MongoDB.
fn sort_docs(docs: &mut [Document], sort: &Document) {
    if let Some(natural) = sort.get("$natural") {
        if as_f64(natural).is_some_and(|n| n < 0.0) {
            docs.reverse();
        }
        return;
    }
    docs.sort_by(|a, b| {
        for (key, direction) in sort {
            let ordering = match (get_path(a, key), get_path(b, key)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => compare_bson(x, y).unwrap_or(Ordering::Equal),
            };
            let ordering = if as_f64(direction).is_some_and(|d| d < 0.0) { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    });
}

/// Top-level inclusion or exclusion projection (a dotted path projects its
/// first component).
fn project(doc: &Document, projection: &Document) -> Document {
    let top = |key: &str| key.split('.').next().unwrap_or(key).to_owned();
    let included: Vec<String> =
        projection.iter().filter(|(k, v)| k.as_str() != "_id" && truthy(v)).map(|(k, _)| top(k)).collect();
    if included.is_empty() {
        let excluded: Vec<String> = projection.iter().filter(|(_, v)| !truthy(v)).map(|(k, _)| top(k)).collect();
        doc.iter().filter(|(k, _)| !excluded.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
    } else {
        doc.iter()
            .filter(|(k, _)| included.contains(k) || (k.as_str() == "_id" && projection.get("_id").is_none_or(truthy)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Scenario data
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Standalone,
    ReplicaMember,
    Arbiter,
    Mongos,
}

/// Everything a scenario serves, prepared once at start.
struct ScenarioData {
    scenario: Scenario,
    role: Role,
    host: String,
    max_wire_version: i32,
    /// Role-specific hello fields (setName, hosts, msg, ...).
    hello_role: Document,
    server_status: Document,
    build_info: Document,
    cmd_line_opts: Document,
    repl_status: Option<Document>,
    repl_config: Option<Document>,
    /// Synthesized `local.oplog.rs`, oldest first (empty without an oplog).
    oplog: Vec<Document>,
    oplog_coll_stats: Document,
}

/// `maxWireVersion` of a server version string such as "8.0.4".
fn wire_version_for(version: &str) -> i32 {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    match (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) {
        (8, _) => 25,
        (7, 0) => 21,
        (7, minor) => 21 + minor.min(3) as i32,
        (6, 0) => 17,
        (5, 0) => 13,
        (4, 4) => 9,
        (4, 2) => 8,
        _ => 25,
    }
}

impl ScenarioData {
    fn load(scenario: Scenario) -> Result<Self, ReplayError> {
        let ss_name = scenario.server_status_fixture();
        let mut server_status = fixture_doc(ss_name)?;
        let version = server_status.get_str("version").map_err(|e| fixture_error(ss_name, e))?.to_owned();
        let host = server_status.get_str("host").unwrap_or("localhost").to_owned();
        let mut repl_status = match scenario.repl_status_fixture() {
            Some(name) => Some(fixture_doc(name)?),
            None => None,
        };

        let (role, hello_role) = match scenario {
            Scenario::Standalone => (Role::Standalone, Document::new()),
            Scenario::Mongos => (Role::Mongos, doc! { "msg": "isdbgrid" }),
            Scenario::Primary | Scenario::Secondary => {
                let mut repl = server_status.get_document("repl").map_err(|e| fixture_error(ss_name, e))?.clone();
                repl.remove("topologyVersion");
                if scenario == Scenario::Primary {
                    if let Ok(hosts) = repl.get_array_mut("hosts") {
                        hosts.retain(|h| h.as_str() != Some("mongo3:30003"));
                    }
                }
                (Role::ReplicaMember, repl)
            }
            Scenario::Arbiter => {
                let role = doc! {
                    "hosts": ["mongo1:30001", "mongo2:30002", "mongo3:30003"],
                    "arbiters": ["mongo4:30004"],
                    "setName": "my-rs",
                    "setVersion": 43944,
                    "isWritablePrimary": false,
                    "secondary": false,
                    "arbiterOnly": true,
                    "primary": "mongo2:30002",
                    "me": "mongo4:30004",
                };
                server_status.insert("repl", role.clone());
                if let Some(status) = repl_status.as_mut() {
                    make_arbiter_status(status);
                }
                (Role::Arbiter, role)
            }
            Scenario::NoPrimary => {
                let hosts: Vec<Bson> = repl_status
                    .as_ref()
                    .and_then(|s| s.get_array("members").ok())
                    .map(|members| {
                        members
                            .iter()
                            .filter_map(|m| m.as_document()?.get_str("name").ok())
                            .map(|n| Bson::String(n.to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let role = doc! {
                    "hosts": hosts,
                    "setName": "replication",
                    "setVersion": 1,
                    "isWritablePrimary": false,
                    "secondary": true,
                    "me": "mongo1:27017",
                };
                server_status.insert("repl", role.clone());
                (Role::ReplicaMember, role)
            }
        };

        let build_info = match scenario {
            Scenario::Standalone => fixture_doc("buildInfo-standalone-8.0.9.json")?,
            Scenario::Mongos => fixture_doc("buildInfo-mongos-8.0.8.json")?,
            _ => {
                let mut info = fixture_doc("buildInfo-standalone-8.0.9.json")?;
                let mut array: Vec<Bson> =
                    version.split('.').map(|p| Bson::Int32(p.parse::<i32>().unwrap_or(0))).collect();
                array.resize(4, Bson::Int32(0));
                info.insert("version", version.clone());
                info.insert("versionArray", array);
                info
            }
        };

        let cmd_line_opts = match scenario {
            Scenario::Standalone => fixture_doc("getCmdLineOpts-standalone-8.0.9.json")?,
            Scenario::Mongos => fixture_doc("getCmdLineOpts-mongos-8.0.8.json")?,
            Scenario::Secondary => fixture_doc("getCmdLineOpts-shardsvr-8.0.8.json")?,
            Scenario::Primary => synthesized_cmd_line_opts("my-rs", Some(30002)),
            Scenario::Arbiter => synthesized_cmd_line_opts("my-rs", Some(30004)),
            Scenario::NoPrimary => synthesized_cmd_line_opts("replication", None),
        };

        let set_version = hello_role.get("setVersion").and_then(as_f64).unwrap_or(1.0) as i32;
        let hidden_delayed = (scenario == Scenario::Primary).then_some("mongo3:30003");
        let repl_config = repl_status.as_ref().map(|s| synthesized_repl_config(s, set_version, hidden_delayed));

        let oplog = match (&repl_status, role) {
            (Some(status), Role::ReplicaMember) => {
                let name = scenario.repl_status_fixture().unwrap_or_default();
                synthesized_oplog(status).map_err(|reason| fixture_error(name, reason))?
            }
            _ => Vec::new(),
        };

        Ok(ScenarioData {
            scenario,
            role,
            host,
            max_wire_version: wire_version_for(&version),
            hello_role,
            server_status,
            build_info,
            cmd_line_opts,
            repl_status,
            repl_config,
            oplog,
            oplog_coll_stats: fixture_doc("collStats-local.oplog.rs-shardsvr-primary-8.0.8.json")?,
        })
    }

    fn hello(&self, cmd: &Document, name: &str, connection_id: i32) -> Document {
        let writable = matches!(self.role, Role::Standalone | Role::Mongos)
            || self.hello_role.get_bool("isWritablePrimary").unwrap_or(false);
        let mut reply = Document::new();
        if cmd.get("helloOk").is_some_and(truthy) {
            reply.insert("helloOk", true);
        }
        if name != "hello" {
            reply.insert("ismaster", writable);
        }
        reply.insert("isWritablePrimary", writable);
        for (key, value) in &self.hello_role {
            if key != "isWritablePrimary" {
                reply.insert(key.clone(), value.clone());
            }
        }
        reply.insert("maxBsonObjectSize", MAX_BSON_OBJECT_SIZE);
        reply.insert("maxMessageSizeBytes", MAX_MESSAGE_SIZE as i32);
        reply.insert("maxWriteBatchSize", 100_000);
        reply.insert("localTime", DateTime::now());
        reply.insert("logicalSessionTimeoutMinutes", 30);
        reply.insert("connectionId", connection_id);
        reply.insert("minWireVersion", 0);
        reply.insert("maxWireVersion", self.max_wire_version);
        reply.insert("readOnly", false);
        reply.insert("ok", 1.0);
        reply
    }

    fn repl_command(&self, name: &str, db: &str) -> Document {
        match self.role {
            Role::Mongos => return command_not_found(name),
            Role::Standalone => {
                return error_reply(76, "NoReplicationEnabled", "not running with --replSet");
            }
            Role::ReplicaMember | Role::Arbiter => {}
        }
        if db != "admin" {
            return admin_only(name);
        }
        let reply = if name == "replSetGetStatus" { &self.repl_status } else { &self.repl_config };
        reply.clone().unwrap_or_else(|| error_reply(76, "NoReplicationEnabled", "not running with --replSet"))
    }

    fn list_databases(&self, cmd: &Document) -> Document {
        let names: &[&str] = match self.role {
            Role::Mongos => &["admin", "config", APP_DB],
            Role::Arbiter => return not_primary_or_secondary(),
            _ => &["admin", "config", "local", APP_DB],
        };
        let name_only = cmd.get("nameOnly").is_some_and(truthy);
        let filter = cmd.get_document("filter").ok();
        let mut total: i64 = 0;
        let mut databases = Vec::new();
        for name in names {
            let size = db_figures(name).total_size();
            let entry = if name_only {
                doc! { "name": *name }
            } else {
                doc! { "name": *name, "sizeOnDisk": size, "empty": false }
            };
            if filter.is_some_and(|f| !matches_filter(&entry, f)) {
                continue;
            }
            total += size;
            databases.push(Bson::Document(entry));
        }
        if name_only {
            doc! { "databases": databases, "ok": 1.0 }
        } else {
            doc! { "databases": databases, "totalSize": total as f64, "totalSizeMb": total / (1024 * 1024), "ok": 1.0 }
        }
    }

    fn oplog_available(&self, db: &str, coll: &str) -> Result<(), Document> {
        let ns = format!("{db}.{coll}");
        match self.role {
            Role::Arbiter => Err(not_primary_or_secondary()),
            Role::Mongos if db == "local" => {
                Err(error_reply(20, "IllegalOperation", "Can't use 'local' database through mongos"))
            }
            Role::ReplicaMember if ns == "local.oplog.rs" => Ok(()),
            _ => Err(namespace_not_found(&ns)),
        }
    }

    fn coll_stats(&self, cmd: &Document, db: &str) -> Document {
        let coll = cmd.get_str("collStats").unwrap_or_default();
        if let Err(error) = self.oplog_available(db, coll) {
            return error;
        }
        let mut reply = doc! { "ns": "local.oplog.rs" };
        if let Ok(stats) = self.oplog_coll_stats.get_document("storageStats") {
            for (key, value) in stats {
                reply.insert(key.clone(), value.clone());
            }
        }
        reply.insert("ok", 1.0);
        reply
    }

    fn oplog_coll_stats_stage(&self, db: &str, coll: &str, _spec: &Bson) -> Result<Document, Document> {
        self.oplog_available(db, coll)?;
        let mut doc = self.oplog_coll_stats.clone();
        doc.remove("shard");
        Ok(doc)
    }
}

/// Turns the 8.0.4 primary's replSetGetStatus into what its arbiter would report.
fn make_arbiter_status(status: &mut Document) {
    status.insert("myState", 7);
    status.insert("syncSourceHost", "");
    status.insert("syncSourceId", -1);
    status.remove("electionCandidateMetrics");
    let Ok(members) = status.get_array_mut("members") else { return };
    let mut config_version = Bson::Int32(1);
    let mut config_term = Bson::Int64(2);
    for member in members.iter_mut() {
        if let Some(member) = member.as_document_mut() {
            if member.remove("self").is_some() {
                config_version = member.get("configVersion").cloned().unwrap_or(config_version.clone());
                config_term = member.get("configTerm").cloned().unwrap_or(config_term.clone());
                member.insert("pingMs", 0i64);
            }
        }
    }
    members.push(Bson::Document(doc! {
        "_id": 3,
        "name": "mongo4:30004",
        "health": 1.0,
        "state": 7,
        "stateStr": "ARBITER",
        "uptime": 890,
        "syncSourceHost": "",
        "syncSourceId": -1,
        "infoMessage": "",
        "configVersion": config_version,
        "configTerm": config_term,
        "self": true,
        "lastHeartbeatMessage": "",
    }));
}

fn synthesized_cmd_line_opts(set_name: &str, port: Option<i32>) -> Document {
    let mut argv: Vec<Bson> =
        ["mongod", "--replSet", set_name, "--bind_ip_all"].iter().map(|s| Bson::from(*s)).collect();
    let mut net = doc! { "bindIp": "*" };
    if let Some(port) = port {
        argv.push("--port".into());
        argv.push(port.to_string().into());
        net.insert("port", port);
    }
    doc! { "argv": argv, "parsed": { "net": net, "replication": { "replSet": set_name } }, "ok": 1.0 }
}

/// replSetGetConfig built from a replSetGetStatus reply (see the module docs).
fn synthesized_repl_config(status: &Document, version: i32, hidden_delayed: Option<&str>) -> Document {
    let set_name = status.get_str("set").unwrap_or("rs0");
    let term = status.get("term").cloned().unwrap_or(Bson::Int64(1));
    let members: Vec<Bson> = status
        .get_array("members")
        .map(|members| members.iter().filter_map(Bson::as_document).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|member| {
            let host = member.get_str("name").unwrap_or_default();
            let arbiter = member.get("state").and_then(as_f64) == Some(7.0);
            let delayed = hidden_delayed == Some(host);
            let priority = if arbiter || delayed { 0.0 } else { 1.0 };
            Bson::Document(doc! {
                "_id": member.get("_id").cloned().unwrap_or(Bson::Int32(0)),
                "host": host,
                "arbiterOnly": arbiter,
                "buildIndexes": true,
                "hidden": delayed,
                "priority": priority,
                "tags": {},
                "secondaryDelaySecs": if delayed { PRIMARY_DELAYED_MEMBER_SECS } else { 0i64 },
                "votes": 1,
            })
        })
        .collect();
    // A fixed replicaSetId so replies are identical across runs.
    let replica_set_id = ObjectId::from_bytes([0x67, 0x5f, 0xb0, 0x2b, 0, 0, 0, 0, 0, 0, 0, 1]);
    doc! {
        "config": {
            "_id": set_name,
            "version": version,
            "term": term,
            "members": members,
            "protocolVersion": 1i64,
            "writeConcernMajorityJournalDefault": true,
            "settings": {
                "chainingAllowed": true,
                "heartbeatIntervalMillis": 2000,
                "heartbeatTimeoutSecs": 10,
                "electionTimeoutMillis": 10000,
                "catchUpTimeoutMillis": -1,
                "catchUpTakeoverDelayMillis": 30000,
                "getLastErrorModes": {},
                "getLastErrorDefaults": { "w": 1, "wtimeout": 0 },
                "replicaSetId": replica_set_id,
            },
        },
        "ok": 1.0,
    }
}

/// Oldest and newest oplog entries from `optimes` (see the module docs).
fn synthesized_oplog(status: &Document) -> Result<Vec<Document>, String> {
    let optimes = status.get_document("optimes").map_err(|e| e.to_string())?;
    let applied = optimes.get_document("appliedOpTime").map_err(|e| e.to_string())?;
    let newest_ts = applied.get_timestamp("ts").map_err(|e| e.to_string())?;
    let term = applied.get("t").cloned().unwrap_or(Bson::Int64(1));
    let newest_wall = optimes.get_datetime("lastAppliedWallTime").map_err(|e| e.to_string())?.timestamp_millis();
    let oldest_time = newest_ts.time.checked_sub(OPLOG_WINDOW_SECS).ok_or("appliedOpTime earlier than the window")?;
    let entry = |ts: Timestamp, wall: i64, msg: &str| {
        doc! {
            "op": "n", "ns": "", "o": { "msg": msg },
            "ts": ts, "t": term.clone(), "v": 2i64, "wall": DateTime::from_millis(wall),
        }
    };
    Ok(vec![
        entry(
            Timestamp { time: oldest_time, increment: 1 },
            newest_wall - i64::from(OPLOG_WINDOW_SECS) * 1000,
            "initiating set",
        ),
        entry(newest_ts, newest_wall, "periodic noop"),
    ])
}

/// The four recorded profiler documents, `ns` moved to the app database.
fn fixture_profile_docs() -> Result<Vec<Document>, ReplayError> {
    const NAME: &str = "system.profile-mongod-unknown.json";
    let Bson::Array(items) = fixture_bson(NAME)? else {
        return Err(fixture_error(NAME, "expected an array"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Bson::Document(mut doc) => {
                if let Ok(ns) = doc.get_str("ns") {
                    let ns = ns.replacen("integration.", &format!("{APP_DB}."), 1);
                    doc.insert("ns", ns);
                }
                Ok(doc)
            }
            _ => Err(fixture_error(NAME, "array element is not a document")),
        })
        .collect()
}

/// Two active ops and one idle connection, as `$currentOp` reports them. No user
/// data: filters name fields, never values a patient could be found by.
pub fn default_current_ops(host: &str) -> Vec<Document> {
    let op = |conn: i32, opid: i32, secs: i64, micros: i64, kind: &str, ns: &str, command: Document| {
        doc! {
            "type": "op",
            "host": host,
            "desc": format!("conn{conn}"),
            "connectionId": conn,
            "client": format!("10.0.3.21:{}", 52_000 + conn),
            "appName": "tenderly-api",
            "active": true,
            "currentOpTime": "2025-04-22T08:44:07.000+00:00",
            "threaded": true,
            "opid": opid,
            "secs_running": secs,
            "microsecs_running": micros,
            "op": kind,
            "ns": ns,
            "redacted": false,
            "command": command,
            "numYields": 0,
            "waitingForLock": false,
            "waitingForFlowControl": false,
            "locks": {},
            "lockStats": {},
        }
    };
    vec![
        op(
            101,
            9101,
            12,
            12_345_678,
            "query",
            "tenderly.appointments",
            doc! { "find": "appointments", "filter": { "status": "?" }, "$db": "tenderly" },
        ),
        op(
            102,
            9102,
            0,
            2_500,
            "update",
            "tenderly.sessions",
            doc! { "update": "sessions", "ordered": true, "$db": "tenderly" },
        ),
        doc! {
            "type": "op",
            "host": host,
            "desc": "conn103",
            "connectionId": 103,
            "client": "10.0.3.22:52103",
            "appName": "tenderly-worker",
            "active": false,
            "currentOpTime": "2025-04-22T08:44:07.000+00:00",
        },
    ]
}

/// Fixed dbStats figures per database (see the table in the module docs).
struct DbFigures {
    collections: i64,
    views: i64,
    objects: i64,
    data_size: i64,
    storage_size: i64,
    indexes: i64,
    index_size: i64,
}

impl DbFigures {
    fn total_size(&self) -> i64 {
        self.storage_size + self.index_size
    }
}

fn db_figures(db: &str) -> DbFigures {
    let (collections, views, objects, data_size, storage_size, indexes, index_size) = match db {
        "admin" => (3, 0, 7, 2_240, 73_728, 5, 131_072),
        "config" => (5, 0, 24, 4_608, 110_592, 9, 221_184),
        "local" => (6, 0, 1_920, 600_000, 245_760, 5, 122_880),
        APP_DB => (12, 1, 250_000, 128_000_000, 45_056_000, 31, 12_288_000),
        _ => (0, 0, 0, 0, 0, 0, 0),
    };
    DbFigures { collections, views, objects, data_size, storage_size, indexes, index_size }
}

/// The dbStats reply for `db` (any name; unknown databases are all zeros, as a
/// real server reports a database that does not exist).
pub fn synthesized_db_stats(db: &str) -> Document {
    let f = db_figures(db);
    let avg = if f.objects > 0 { f.data_size as f64 / f.objects as f64 } else { 0.0 };
    doc! {
        "db": db,
        "collections": f.collections,
        "views": f.views,
        "objects": f.objects,
        "avgObjSize": avg,
        "dataSize": f.data_size as f64,
        "storageSize": f.storage_size as f64,
        "indexes": f.indexes,
        "indexSize": f.index_size as f64,
        "totalSize": f.total_size() as f64,
        "scaleFactor": 1i64,
        "fsUsedSize": 53_687_091_200.0,
        "fsTotalSize": 107_374_182_400.0,
        "ok": 1.0,
    }
}

/// Synthesized collections of `tenderly`: (name, count, size, storageSize,
/// totalIndexSize, nindexes), served by `listCollections` and `$collStats`.
pub const APP_COLLECTIONS: [(&str, i64, i64, i64, i64, i32); 3] = [
    ("appointments", 120_000, 64_000_000, 20_480_000, 6_144_000, 3),
    ("clinics", 40, 20_000, 36_864, 36_864, 1),
    ("patients", 80_000, 48_000_000, 16_384_000, 4_096_000, 2),
];

/// Synthesized `top` entries merged into the recorded reply:
/// (namespace, queries µs, queries count, insert µs, insert count).
/// `total` = queries + insert; `readLock` = queries, `writeLock` = insert.
pub const APP_TOP: [(&str, i64, i64, i64, i64); 2] =
    [("tenderly.appointments", 3_000_000, 1_200, 2_000_000, 300), ("tenderly.patients", 500_000, 100, 250_000, 50)];

fn list_collections(cmd: &Document, db: &str) -> Document {
    let mut docs = Vec::new();
    if db == APP_DB {
        for (name, ..) in APP_COLLECTIONS {
            docs.push(doc! { "name": name, "type": "collection" });
        }
        docs.push(doc! { "name": "upcoming", "type": "view" });
    }
    let name_only = cmd.get("nameOnly").is_some_and(truthy);
    let filter = cmd.get_document("filter").ok();
    let docs = docs
        .into_iter()
        .filter(|d| filter.is_none_or(|f| matches_filter(d, f)))
        .map(|mut d| {
            if !name_only {
                d.insert("options", Document::new());
                d.insert("info", doc! { "readOnly": false });
            }
            d
        })
        .collect();
    cursor_reply(&format!("{db}.$cmd.listCollections"), docs)
}

fn top_pair(time: i64, count: i64) -> Document {
    doc! { "time": time, "count": count }
}

fn top_reply() -> Document {
    let mut reply = match fixture_doc("top-shardsvr-unknown.json") {
        Ok(doc) => doc,
        Err(e) => return error_reply(8000, "FixtureError", e.to_string()),
    };
    if let Ok(totals) = reply.get_document_mut("totals") {
        for (ns, qt, qc, it, ic) in APP_TOP {
            totals.insert(
                ns,
                doc! {
                    "total": top_pair(qt + it, qc + ic),
                    "readLock": top_pair(qt, qc),
                    "writeLock": top_pair(it, ic),
                    "queries": top_pair(qt, qc),
                    "getmore": top_pair(0, 0),
                    "insert": top_pair(it, ic),
                    "update": top_pair(0, 0),
                    "remove": top_pair(0, 0),
                    "commands": top_pair(0, 0),
                },
            );
        }
    }
    reply
}

fn app_coll_stats(db: &str, coll: &str) -> Option<Document> {
    if db != APP_DB {
        return None;
    }
    let (_, count, size, storage, index_size, nindexes) = APP_COLLECTIONS.iter().find(|c| c.0 == coll)?;
    Some(doc! {
        "ns": format!("{db}.{coll}"),
        "host": "replay:27017",
        "localTime": mongodb::bson::DateTime::now(),
        "storageStats": {
            "size": *size, "count": *count, "avgObjSize": *size / (*count).max(1),
            "numOrphanDocs": 0, "storageSize": *storage, "freeStorageSize": 0,
            "capped": false, "nindexes": *nindexes, "totalIndexSize": *index_size,
            "totalSize": *storage + *index_size, "indexSizes": {}, "scaleFactor": 1,
        },
    })
}

/// `$indexStats` of a synthesized collection: `_id_` plus `field_<i>_1`;
/// index `i` (0-based, by that order) has `accesses.ops` = 10 × (i + 1).
pub fn app_indexes(db: &str, coll: &str) -> Vec<Document> {
    let Some((.., nindexes)) = APP_COLLECTIONS.iter().find(|c| db == APP_DB && c.0 == coll) else {
        return Vec::new();
    };
    (0..*nindexes)
        .map(|i| {
            let name = if i == 0 { "_id_".to_owned() } else { format!("field{i}_1") };
            doc! {
                "name": name, "key": { "_id": 1 }, "host": "replay:27017",
                "accesses": { "ops": i64::from(10 * (i + 1)), "since": mongodb::bson::DateTime::now() },
            }
        })
        .collect()
}
