//! MongoDB collector: one `mongodb::Client` per target for the process
//! lifetime (`client`), the node's role detected once per connection, only the
//! commands that work on that role, and curated, typed metrics. Parsing is pure
//! (BSON document -> snapshot struct, one module per command family) and
//! encoding is pure (snapshot -> [`Exposition`](crate::metrics::Exposition)).

use std::time::Duration;

use crate::secret::Secret;
use crate::trust::{MemberAllowList, MemberPolicy};

pub mod bson_guard;
pub mod bson_num;
pub mod client;
pub mod collstats;
pub mod current_op;
pub mod dbstats;
pub mod encode;
pub mod high_water;
pub mod oplog;
pub mod profile;
pub mod replset;
pub mod server_status;

// The `collector` label of each section's runs (one switch each, except the
// first, which is the target itself: hello + serverStatus).
pub const SERVER_STATUS: &str = "mongodb";
pub const REPLSET: &str = "mongodb_replset";
pub const OPLOG: &str = "mongodb_oplog";
pub const CURRENTOP: &str = "mongodb_currentop";
pub const DBSTATS: &str = "mongodb_dbstats";
pub const PROFILER: &str = "mongodb_profiler";
pub const TOP: &str = "mongodb_top";
pub const COLLSTATS: &str = "mongodb_collstats";
pub const INDEXSTATS: &str = "mongodb_indexstats";

/// Where and how to reach one MongoDB node, which collectors run and their
/// limits: everything the collector needs, built by whoever configures it.
#[derive(Clone, PartialEq)]
pub struct MongoOptions {
    /// The connection string as given (may hold credentials and TLS options): never displayed.
    pub uri: Secret,
    /// `mongodb://host:port[,...]` without credentials or options, for display.
    pub display: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub collectors: MongoCollectors,
    pub limits: MongoLimits,
    /// Hosts besides the connection string's that the driver's own replica-set
    /// discovery may select (and so authenticate to); see [`crate::trust`].
    pub members_allowed: MemberAllowList,
}

impl MongoOptions {
    /// Who may get the credentials: the connection string's hosts (or the SRV
    /// name's domain) and `members_allowed`.
    pub fn member_policy(&self) -> MemberPolicy {
        let (hosts, suffixes) = crate::trust::mongo_seed(&self.display);
        MemberPolicy::new(&self.members_allowed, hosts.iter().map(String::as_str), suffixes.iter().map(String::as_str))
    }
}

impl std::fmt::Debug for MongoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoOptions")
            .field("uri", &self.display)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("collectors", &self.collectors)
            .field("limits", &self.limits)
            .field("members_allowed", &self.members_allowed)
            .finish()
    }
}

/// Which MongoDB collectors run (hello and serverStatus always do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MongoCollectors {
    pub replset: bool,
    pub oplog: bool,
    pub currentop: bool,
    pub dbstats: bool,
    pub profiler: bool,
    /// Opt-in: `$collStats` per collection (capped by `MongoLimits::max_collections`).
    pub collstats: bool,
    /// Opt-in: `$indexStats` per collection (same cap).
    pub indexstats: bool,
    /// Opt-in: the `top` command (per-collection time and counts, same cap).
    pub top: bool,
}

impl Default for MongoCollectors {
    fn default() -> Self {
        MongoCollectors {
            replset: true,
            oplog: true,
            currentop: true,
            dbstats: true,
            profiler: true,
            collstats: false,
            indexstats: false,
            top: false,
        }
    }
}

/// Limits and thresholds of the MongoDB collectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoLimits {
    /// Active operations running at least this long count as long-running.
    pub currentop_threshold: Duration,
    /// At most this many databases get dbStats and profiler reads per scrape.
    pub max_databases: usize,
    /// At most this many profiler documents are read per database per scrape.
    pub profiler_max_docs: u32,
    /// At most this many collections get `$collStats`/`$indexStats`/`top` series per scrape.
    pub max_collections: usize,
}

impl Default for MongoLimits {
    fn default() -> Self {
        MongoLimits {
            currentop_threshold: Duration::from_secs(1),
            max_databases: 100,
            profiler_max_docs: 1000,
            max_collections: 50,
        }
    }
}

/// What kind of node a target is, from `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Standalone,
    Primary,
    Secondary,
    Arbiter,
    /// A replica-set member in another state (startup, recovering, rollback, ...).
    OtherMember,
    Mongos,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Arbiter => "arbiter",
            Role::OtherMember => "other",
            Role::Mongos => "mongos",
        }
    }

    /// Whether replica-set commands apply (replSetGetStatus, oplog).
    pub fn is_replica_member(self) -> bool {
        matches!(self, Role::Primary | Role::Secondary | Role::Arbiter | Role::OtherMember)
    }
}

/// Facts about the node learnt from `hello` (once per connection).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    pub role: Role,
    pub set_name: Option<String>,
    pub hidden: bool,
    /// Config server replica set member (`configsvr` in `hello`'s `setName`/`configsvr`).
    pub config_server: bool,
    pub max_wire_version: i32,
}

/// Everything one scrape read from one MongoDB node, before encoding.
/// Sections are `None` when not applicable to the role, disabled, or refused.
#[derive(Debug, Clone, Default)]
pub struct MongoSnapshot {
    pub node: NodeInfo,
    pub server_status: Option<server_status::ServerStatus>,
    pub replset_status: Option<replset::ReplSetStatus>,
    pub replset_config: Option<replset::ReplSetConfig>,
    pub oplog: Option<oplog::OplogWindow>,
    pub current_op: Option<current_op::CurrentOps>,
    pub dbstats: Vec<dbstats::DbStats>,
    /// Per-database profiler counters (cumulative, from the client's high-water marks).
    pub profiler: Vec<profile::DbProfile>,
    /// Opt-in `top`/`$collStats`/`$indexStats` figures (`None` when all three are off).
    pub collections: Option<collstats::CollectionStats>,
}
