//! `replSetGetStatus` (live member state) and `replSetGetConfig` (intended
//! topology: priority, votes, hidden, delay) -> per-member series labelled
//! `{set, member}`.
//!
//! Why these shapes:
//!
//! * **State is a value, never a label.** `mongodb_replset_member_state` is the
//!   numeric `state` the server reports, so a failover changes a sample value,
//!   not the identity of every series (percona's `rs_state` label churns on
//!   each election). The numbers are MongoDB's own
//!   (`src/mongo/db/repl/member_state.h`): 0 STARTUP, 1 PRIMARY, 2 SECONDARY,
//!   3 RECOVERING, 5 STARTUP2, 6 UNKNOWN, 7 ARBITER, 8 DOWN, 9 ROLLBACK,
//!   10 REMOVED.
//! * **Lag is only exported where it means something.** Lag =
//!   max(0, primary optime - member optime), computed for healthy secondaries
//!   only. Arbiters hold no data, unhealthy members (`health: 0`) report a
//!   stale or zero optime, and members still in initial sync report the epoch
//!   (`optimeDate` 1970-01-01): any of those would produce a bogus lag of
//!   ~55 years. They get *no* lag series instead.
//! * **Missing lag must not silence alerts.** With no primary there is nothing
//!   to subtract from, so every lag series disappears. That is why
//!   `mongodb_replset_primary_present` is emitted on every successful reply,
//!   0 or 1: `mongodb_replset_primary_present == 0` pages when lag cannot.
//! * **Labels are bounded.** `member` is the `host:port` from the replica-set
//!   configuration, at most 50 voting+non-voting members per set; the parser
//!   also caps the member list at [`MAX_MEMBERS`] so a corrupted reply cannot
//!   blow up the series count.
//!
//! Parsing never fails and never panics: a field of the wrong type or missing
//! is treated as absent, and an error reply (`ok: 0`, e.g. `NotYetInitialized`
//! on a `--replSet` node nobody has initiated yet) yields a status with
//! `ok == false` and no members, which encodes to nothing.

use std::borrow::Cow;

use mongodb::bson::{Bson, Document};

use super::bson_num::{bool_of, date_or_timestamp_millis, f64_of, i64_of, str_of};
use crate::metrics::{BaseUnit, Desc, Exposition, Label};

/// Upper bound on members read from one reply. MongoDB allows 50 members per
/// replica set; anything beyond that is garbage and is dropped, not labelled.
pub const MAX_MEMBERS: usize = 64;

/// Longest `member`/`set` label value kept (host names are at most 255 bytes,
/// plus `:port`). Longer values are cut so a corrupted reply cannot emit
/// arbitrarily long labels.
const MAX_LABEL_BYTES: usize = 262;

/// Replica-set member states (`state`/`myState`), from `member_state.h`.
pub mod state {
    pub const STARTUP: i64 = 0;
    pub const PRIMARY: i64 = 1;
    pub const SECONDARY: i64 = 2;
    pub const RECOVERING: i64 = 3;
    pub const STARTUP2: i64 = 5;
    pub const UNKNOWN: i64 = 6;
    pub const ARBITER: i64 = 7;
    pub const DOWN: i64 = 8;
    pub const ROLLBACK: i64 = 9;
    pub const REMOVED: i64 = 10;
}

// ---- replSetGetStatus -------------------------------------------------------
const MEMBER_STATE: Desc = Desc::gauge(
    "mongodb_replset_member_state",
    "Replica-set state of each member as seen by this node: 0 STARTUP, 1 PRIMARY, 2 SECONDARY, 3 RECOVERING, 5 STARTUP2, 6 UNKNOWN, 7 ARBITER, 8 DOWN, 9 ROLLBACK, 10 REMOVED.",
).labels(&["set", "member"]);
const MEMBER_HEALTH: Desc = Desc::gauge(
    "mongodb_replset_member_health",
    "Whether this node can reach the member (1) or not (0), from replSetGetStatus members.health.",
)
.labels(&["set", "member"]);
const MEMBER_OPTIME: Desc = Desc::gauge(
    "mongodb_replset_member_optime_timestamp_seconds",
    "Unix time of the last operation the member applied, from replSetGetStatus optimeDate (or optime.ts); absent while the member has none.",
)
.unit(BaseUnit::Seconds).labels(&["set", "member"]);
const MEMBER_LAG: Desc = Desc::gauge(
    "mongodb_replset_member_replication_lag_seconds",
    "How far a healthy secondary's last applied operation is behind the primary's, in seconds (never negative); absent for the primary, arbiters, unhealthy members and members without an optime.",
)
.unit(BaseUnit::Seconds).labels(&["set", "member"]);
const MEMBER_PING: Desc = Desc::gauge(
    "mongodb_replset_member_ping_seconds",
    "Round-trip time of this node's heartbeats to the member, from replSetGetStatus pingMs; absent for the node itself and unreachable members.",
)
.unit(BaseUnit::Seconds).labels(&["set", "member"]);
const MEMBER_HEARTBEAT_AGE: Desc = Desc::gauge(
    "mongodb_replset_member_last_heartbeat_age_seconds",
    "Seconds between the reply's date and this node's last heartbeat to the member (lastHeartbeat, stamped even when the heartbeat fails, so read it with health); absent for the node itself.",
)
.unit(BaseUnit::Seconds).labels(&["set", "member"]);
const TERM: Desc = Desc::gauge(
    "mongodb_replset_term",
    "Election term of the replica set as seen by this node, from replSetGetStatus term.",
)
.labels(&["set"]);
const MEMBERS: Desc =
    Desc::gauge("mongodb_replset_members", "Number of members in the replica set, from replSetGetStatus members.")
        .labels(&["set"]);
const MY_STATE: Desc = Desc::gauge(
    "mongodb_replset_my_state",
    "Replica-set state of the scraped node itself (same numbers as mongodb_replset_member_state), from replSetGetStatus myState.",
).labels(&["set"]);
const PRIMARY_PRESENT: Desc = Desc::gauge(
    "mongodb_replset_primary_present",
    "Whether this node sees a member in PRIMARY state (1) or not (0); emitted on every successful replSetGetStatus so a missing primary is visible even though lag series vanish.",
).labels(&["set"]);

// ---- replSetGetConfig -------------------------------------------------------
const CONFIG_VERSION: Desc = Desc::gauge(
    "mongodb_replset_config_version",
    "Version of the replica-set configuration this node holds, from replSetGetConfig config.version.",
)
.labels(&["set"]);
const MEMBER_PRIORITY: Desc = Desc::gauge(
    "mongodb_replset_member_priority",
    "Election priority of the member (0 means it can never become primary), from replSetGetConfig.",
)
.labels(&["set", "member"]);
const MEMBER_VOTES: Desc = Desc::gauge(
    "mongodb_replset_member_votes",
    "Number of votes the member has in elections (0 or 1), from replSetGetConfig.",
)
.labels(&["set", "member"]);
const MEMBER_HIDDEN: Desc = Desc::gauge(
    "mongodb_replset_member_hidden",
    "Whether the member is hidden from clients (1) or not (0), from replSetGetConfig.",
)
.labels(&["set", "member"]);
const MEMBER_ARBITER: Desc = Desc::gauge(
    "mongodb_replset_member_arbiter",
    "Whether the member is an arbiter (1) or not (0), from replSetGetConfig.",
)
.labels(&["set", "member"]);
const MEMBER_SECONDARY_DELAY: Desc = Desc::gauge(
    "mongodb_replset_member_secondary_delay_seconds",
    "Configured replication delay of the member, from replSetGetConfig secondaryDelaySecs (slaveDelay before 5.0); 0 for members without a delay.",
)
.unit(BaseUnit::Seconds).labels(&["set", "member"]);

const ALL: [&Desc; 16] = [
    &MEMBER_STATE,
    &MEMBER_HEALTH,
    &MEMBER_OPTIME,
    &MEMBER_LAG,
    &MEMBER_PING,
    &MEMBER_HEARTBEAT_AGE,
    &TERM,
    &MEMBERS,
    &MY_STATE,
    &PRIMARY_PRESENT,
    &CONFIG_VERSION,
    &MEMBER_PRIORITY,
    &MEMBER_VOTES,
    &MEMBER_HIDDEN,
    &MEMBER_ARBITER,
    &MEMBER_SECONDARY_DELAY,
];

/// One member as reported by `replSetGetStatus`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberStatus {
    /// `host:port`, the `member` label.
    pub name: String,
    pub state: Option<i64>,
    /// 1.0 reachable, 0.0 not (the server sends a double).
    pub health: Option<f64>,
    /// Unix milliseconds of the last applied op; `None` when absent or the
    /// epoch (a member in initial sync or unreachable reports 1970-01-01).
    /// Kept as integer milliseconds so differences are exact.
    pub optime_millis: Option<i64>,
    /// Unix milliseconds of the last heartbeat to this member.
    pub last_heartbeat_millis: Option<i64>,
    pub ping_ms: Option<f64>,
    /// The node that answered (`self: true`).
    pub is_self: bool,
}

impl MemberStatus {
    fn is_healthy(&self) -> bool {
        self.health.is_some_and(|h| h > 0.0)
    }
}

/// The parts of a `replSetGetStatus` reply the exporter uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplSetStatus {
    /// `ok: 1`. An error reply (`NotYetInitialized`, `NoReplicationEnabled`,
    /// unauthorized) has `ok == false`, no members, and encodes to nothing.
    pub ok: bool,
    /// `codeName` of an error reply, for the client's log line (never a label).
    pub error_code_name: Option<String>,
    /// Replica-set name, the `set` label.
    pub set: String,
    /// The reply's own clock (`date`), Unix milliseconds.
    pub date_millis: Option<i64>,
    pub my_state: Option<i64>,
    pub term: Option<i64>,
    pub members: Vec<MemberStatus>,
    /// Members dropped beyond [`MAX_MEMBERS`] or without a usable name.
    pub dropped_members: usize,
    /// Every member document the reply listed, including those beyond
    /// [`MAX_MEMBERS`]: the cap bounds the per-member series, not this total.
    pub total_members: usize,
}

impl ReplSetStatus {
    /// The member this node considers primary, if any. Should a reply ever
    /// list two (a stale view during a partition), the one with the newest
    /// optime is the one writes go to, so lag is measured against it.
    pub fn primary(&self) -> Option<&MemberStatus> {
        self.members.iter().filter(|m| m.state == Some(state::PRIMARY)).max_by_key(|m| m.optime_millis.unwrap_or(0))
    }

    /// Whether some member is in PRIMARY state (what `primary_present` reports).
    pub fn primary_present(&self) -> bool {
        self.members.iter().any(|m| m.state == Some(state::PRIMARY))
    }

    /// Replication lag of `member` in seconds, or `None` where lag is not
    /// meaningful (see the module docs): not a healthy secondary, no primary,
    /// or either optime missing/epoch.
    pub fn lag_secs(&self, member: &MemberStatus) -> Option<f64> {
        if member.state != Some(state::SECONDARY) || !member.is_healthy() {
            return None;
        }
        let primary = self.primary()?;
        if !primary.is_healthy() {
            return None;
        }
        let lag_ms = primary.optime_millis?.saturating_sub(member.optime_millis?);
        // A secondary can briefly report an optime ahead of what this node
        // last heard from the primary; that is "not behind", not negative lag.
        Some(lag_ms.max(0) as f64 / 1000.0)
    }

    /// Age of the last heartbeat to `member` relative to the reply's `date`;
    /// `None` for the node itself, a member never heard from, or no `date`.
    pub fn heartbeat_age_secs(&self, member: &MemberStatus) -> Option<f64> {
        if member.is_self {
            return None;
        }
        let age_ms = self.date_millis?.saturating_sub(member.last_heartbeat_millis?);
        Some(age_ms.max(0) as f64 / 1000.0)
    }
}

/// One member as configured (`replSetGetConfig` `config.members[]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberConfig {
    pub id: Option<i64>,
    /// `host:port`, the `member` label (same value as status `name`).
    pub host: String,
    pub arbiter_only: bool,
    pub hidden: bool,
    /// Defaults to 1 when absent (the server's default); 0 for arbiters.
    pub priority: f64,
    /// Defaults to 1 when absent.
    pub votes: i64,
    /// `secondaryDelaySecs` (5.0+) or `slaveDelay` (before 5.0); 0 when absent.
    pub secondary_delay_secs: f64,
}

/// The parts of a `replSetGetConfig` reply the exporter uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplSetConfig {
    /// `ok: 1` and a `config` document (or a bare config document was given).
    pub ok: bool,
    /// `config._id`, the replica-set name (the `set` label).
    pub set: String,
    pub version: Option<i64>,
    pub members: Vec<MemberConfig>,
    pub dropped_members: usize,
}

/// Reads a `replSetGetStatus` reply. Never fails: an error reply gives
/// `ok == false`, unusable fields are absent.
pub fn parse_status(doc: &Document) -> ReplSetStatus {
    let mut status = ReplSetStatus { ok: reply_ok(doc), ..ReplSetStatus::default() };
    if !status.ok {
        status.error_code_name = str_of(doc.get("codeName")).map(|s| bounded(s).into_owned());
        return status;
    }
    status.set = str_of(doc.get("set")).map(|s| bounded(s).into_owned()).unwrap_or_default();
    status.date_millis = date_or_timestamp_millis(doc.get("date"));
    status.my_state = i64_of(doc.get("myState"));
    status.term = i64_of(doc.get("term"));
    if let Some(Bson::Array(members)) = doc.get("members") {
        for raw in members {
            let Bson::Document(m) = raw else {
                status.dropped_members += 1;
                continue;
            };
            status.total_members += 1;
            let name = str_of(m.get("name")).unwrap_or_default();
            if name.is_empty() || status.members.len() >= MAX_MEMBERS {
                status.dropped_members += 1;
                continue;
            }
            status.members.push(MemberStatus {
                name: bounded(name).into_owned(),
                state: i64_of(m.get("state")),
                health: f64_of(m.get("health")),
                optime_millis: member_optime_millis(m),
                last_heartbeat_millis: date_or_timestamp_millis(m.get("lastHeartbeat")).filter(|ms| *ms > 0),
                ping_ms: f64_of(m.get("pingMs")).filter(|ms| *ms >= 0.0),
                is_self: bool_of(m.get("self")).unwrap_or(false),
            });
        }
    }
    status
}

/// `optimeDate` when present, else `optime.ts` (protocol version 1) or a bare
/// `optime` Timestamp (protocol version 0, MongoDB 3.x). The epoch means "no
/// optime yet" and is returned as `None`.
fn member_optime_millis(member: &Document) -> Option<i64> {
    let from_date = date_or_timestamp_millis(member.get("optimeDate"));
    let from_optime = || match member.get("optime") {
        Some(Bson::Document(optime)) => date_or_timestamp_millis(optime.get("ts")),
        other => date_or_timestamp_millis(other),
    };
    from_date.filter(|ms| *ms > 0).or_else(from_optime).filter(|ms| *ms > 0)
}

/// Reads a `replSetGetConfig` reply (`{config: {...}, ok: 1}`) or a bare
/// configuration document (`{_id, version, members}`, e.g. from
/// `local.system.replset`). Never fails.
pub fn parse_config(doc: &Document) -> ReplSetConfig {
    let config = match doc.get("config") {
        Some(Bson::Document(config)) if reply_ok(doc) => config,
        Some(_) => return ReplSetConfig::default(),
        // A bare config document has `_id` and `members` and no `ok`.
        None if doc.contains_key("members") && !doc.contains_key("ok") => doc,
        None => return ReplSetConfig::default(),
    };
    let mut parsed = ReplSetConfig {
        ok: true,
        set: str_of(config.get("_id")).map(|s| bounded(s).into_owned()).unwrap_or_default(),
        version: i64_of(config.get("version")),
        ..ReplSetConfig::default()
    };
    if let Some(Bson::Array(members)) = config.get("members") {
        for raw in members {
            let Bson::Document(m) = raw else {
                parsed.dropped_members += 1;
                continue;
            };
            let host = str_of(m.get("host")).unwrap_or_default();
            if host.is_empty() || parsed.members.len() >= MAX_MEMBERS {
                parsed.dropped_members += 1;
                continue;
            }
            let arbiter_only = bool_of(m.get("arbiterOnly")).unwrap_or(false);
            let delay = f64_of(m.get("secondaryDelaySecs")).or_else(|| f64_of(m.get("slaveDelay")));
            parsed.members.push(MemberConfig {
                id: i64_of(m.get("_id")),
                host: bounded(host).into_owned(),
                arbiter_only,
                hidden: bool_of(m.get("hidden")).unwrap_or(false),
                priority: f64_of(m.get("priority")).filter(|p| *p >= 0.0).unwrap_or(if arbiter_only {
                    0.0
                } else {
                    1.0
                }),
                votes: i64_of(m.get("votes")).filter(|v| *v >= 0).unwrap_or(1),
                secondary_delay_secs: delay.filter(|d| *d >= 0.0).unwrap_or(0.0),
            });
        }
    }
    parsed
}

/// `ok` is a double on the wire (1.0); some drivers and fixtures give an int
/// or a bool. Anything else (missing included) is "not ok".
fn reply_ok(doc: &Document) -> bool {
    match doc.get("ok") {
        Some(Bson::Boolean(b)) => *b,
        other => f64_of(other).is_some_and(|v| v >= 1.0),
    }
}

/// Cuts a label value to [`MAX_LABEL_BYTES`] on a character boundary.
fn bounded(s: &str) -> Cow<'_, str> {
    if s.len() <= MAX_LABEL_BYTES {
        return Cow::Borrowed(s);
    }
    let mut end = MAX_LABEL_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Borrowed(&s[..end])
}

fn member_labels(set: &str, member: &str) -> Vec<Label> {
    vec![("set", Cow::Owned(set.to_owned())), ("member", Cow::Owned(member.to_owned()))]
}

/// Emits the replica-set families. Either side may be missing (not a replica
/// set member, command refused, or disabled); an error reply emits nothing.
pub fn encode(status: Option<&ReplSetStatus>, config: Option<&ReplSetConfig>, out: &mut Exposition) {
    if let Some(status) = status.filter(|s| s.ok) {
        encode_status(status, out);
    }
    if let Some(config) = config.filter(|c| c.ok) {
        encode_config(config, out);
    }
}

fn encode_status(status: &ReplSetStatus, out: &mut Exposition) {
    let set_label = || vec![("set", Cow::Owned(status.set.clone()))];
    out.add(&PRIMARY_PRESENT, set_label(), status.primary_present());
    out.add(&MEMBERS, set_label(), status.total_members as u64);
    if let Some(term) = status.term {
        out.add(&TERM, set_label(), term);
    }
    if let Some(my_state) = status.my_state {
        out.add(&MY_STATE, set_label(), my_state);
    }
    for m in &status.members {
        let labels = || member_labels(&status.set, &m.name);
        if let Some(s) = m.state {
            out.add(&MEMBER_STATE, labels(), s);
        }
        if let Some(h) = m.health {
            out.add(&MEMBER_HEALTH, labels(), i64::from(h > 0.0));
        }
        if let Some(ms) = m.optime_millis {
            out.add(&MEMBER_OPTIME, labels(), ms as f64 / 1000.0);
        }
        if let Some(lag) = status.lag_secs(m) {
            out.add(&MEMBER_LAG, labels(), lag);
        }
        // An unreachable member keeps reporting `pingMs: 0`, which would read
        // as a perfect link; no ping series for it.
        if let Some(ms) = m.ping_ms.filter(|_| !m.is_self && m.is_healthy()) {
            out.add(&MEMBER_PING, labels(), ms / 1000.0);
        }
        if let Some(age) = status.heartbeat_age_secs(m) {
            out.add(&MEMBER_HEARTBEAT_AGE, labels(), age);
        }
    }
}

fn encode_config(config: &ReplSetConfig, out: &mut Exposition) {
    if let Some(version) = config.version {
        out.add(&CONFIG_VERSION, vec![("set", Cow::Owned(config.set.clone()))], version);
    }
    for m in &config.members {
        let labels = || member_labels(&config.set, &m.host);
        out.add(&MEMBER_PRIORITY, labels(), m.priority);
        out.add(&MEMBER_VOTES, labels(), m.votes);
        out.add(&MEMBER_HIDDEN, labels(), m.hidden);
        out.add(&MEMBER_ARBITER, labels(), m.arbiter_only);
        out.add(&MEMBER_SECONDARY_DELAY, labels(), m.secondary_delay_secs);
    }
}

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    ALL.to_vec()
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{doc, DateTime, Timestamp};

    use super::*;

    #[test]
    fn descriptors_are_well_formed_and_unique() {
        let all = descriptors();
        for d in &all {
            assert!(d.is_well_formed(), "{}", d.name);
        }
        let mut names: Vec<_> = all.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn lag_uses_primary_optime_and_skips_epoch_and_unhealthy_members() {
        let reply = doc! {
            "ok": 1.0, "set": "rs", "date": DateTime::from_millis(100_000), "myState": 1, "term": 3i64,
            "members": [
                {"name": "a:1", "state": 1, "health": 1.0, "optimeDate": DateTime::from_millis(90_000), "self": true},
                {"name": "b:1", "state": 2, "health": 1.0, "optime": {"ts": Timestamp {time: 80, increment: 1}}},
                {"name": "c:1", "state": 2, "health": 1.0, "optimeDate": DateTime::from_millis(0)},
                {"name": "d:1", "state": 2, "health": 0.0, "optimeDate": DateTime::from_millis(10_000)},
                {"name": "e:1", "state": 7, "health": 1.0},
                {"name": "f:1", "state": 2, "health": 1.0, "optimeDate": DateTime::from_millis(95_000)},
            ],
        };
        let s = parse_status(&reply);
        let lag = |name: &str| s.members.iter().find(|m| m.name == name).and_then(|m| s.lag_secs(m));
        assert_eq!(lag("a:1"), None, "primary has no lag series");
        assert_eq!(lag("b:1"), Some(10.0));
        assert_eq!(lag("c:1"), None, "epoch optime");
        assert_eq!(lag("d:1"), None, "unhealthy");
        assert_eq!(lag("e:1"), None, "arbiter");
        assert_eq!(lag("f:1"), Some(0.0), "ahead of the primary is clamped to 0");
    }

    #[test]
    fn decimal128_and_odd_numbers_read() {
        let dec: mongodb::bson::Decimal128 = "12.5".parse().expect("decimal");
        assert_eq!(crate::collectors::mongodb::bson_num::f64_of(Some(&Bson::Decimal128(dec))), Some(12.5));
        let nan: mongodb::bson::Decimal128 = "NaN".parse().expect("decimal");
        assert_eq!(crate::collectors::mongodb::bson_num::f64_of(Some(&Bson::Decimal128(nan))), None);
        assert_eq!(crate::collectors::mongodb::bson_num::f64_of(Some(&Bson::Double(f64::INFINITY))), None);
        assert_eq!(crate::collectors::mongodb::bson_num::i64_of(Some(&Bson::Double(2.5))), None);
        assert_eq!(crate::collectors::mongodb::bson_num::i64_of(Some(&Bson::Double(1e300))), None);
        assert_eq!(crate::collectors::mongodb::bson_num::i64_of(Some(&Bson::Double(3.0))), Some(3));
        assert_eq!(crate::collectors::mongodb::bson_num::bool_of(Some(&Bson::Int32(1))), Some(true));
    }

    #[test]
    fn long_labels_are_cut_on_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_LABEL_BYTES && long.starts_with(cut.as_ref()));
    }
}
