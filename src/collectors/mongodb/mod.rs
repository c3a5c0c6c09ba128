//! MongoDB collector: one `mongodb::Client` per target for the process
//! lifetime (`client`), the node's role detected once per connection, only the
//! commands that work on that role, and curated, typed metrics. Parsing is pure
//! (BSON document -> snapshot struct, one module per command family) and
//! encoding is pure (snapshot -> [`Exposition`](crate::metrics::Exposition)).

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
