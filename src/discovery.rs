//! Topology discovery for probe mode (`/discover?target=NAME`): the members of
//! a configured replica set or Redis deployment, as Prometheus `http_sd` JSON
//! that points back at this exporter's `/probe?target=NAME&member=HOST:PORT`.
//!
//! The exporter is never an open proxy: discovery only asks a configured
//! target, and `/probe` only scrapes a member that the last discovery of that
//! target listed (see [`crate::scrape::Scraper::scrape_member`]).
//!
//! - MongoDB: `hello` (no privileges needed) on the configured target:
//!   `hosts` + `passives` + `arbiters`, plus the hosts of the connection string.
//! - Redis cluster: every node of `CLUSTER NODES` (masters and replicas) except
//!   `fail`, `handshake` and `noaddr` ones; a node with an empty IP (`myself`
//!   before it has learnt it) is at the seed's host.
//! - Redis without cluster: the seed and the replicas `INFO replication` lists.
//! - Redis Sentinel: the seed, every monitored master of `SENTINEL MASTERS` and
//!   its replicas (`SENTINEL REPLICAS <name>`). A Sentinel is asked nothing
//!   else (it answers other commands with errors).
//!
//! At most [`MAX_MEMBERS`] members, within [`DISCOVERY_DEADLINE`].
//!
//! Every member is listed, but only those the target's [`MemberPolicy`]
//! allows (its own hosts plus `members_allowed:`, never link-local or metadata
//! addresses; see [`crate::trust`]) are trusted: the others carry
//! `__meta_tenderly_member_trusted="false"` and `/probe` refuses them without
//! connecting. A member's address is only what a server said, and the
//! target's password must not follow it anywhere the operator did not name.

use std::time::Duration;

use mongodb::bson::{Bson, Document};
use redis::Value;
use tokio::time::{timeout_at, Instant};

use crate::collectors::mongodb::client::MongoClient;
use crate::collectors::redis::client::{bytes_of, open_connection};
use crate::collectors::redis::cluster::{parse_cluster_nodes, replicas_from_info};
use crate::collectors::redis::{info, sentinel};
use crate::config::RedisTarget;
pub use crate::trust::{member_key, parse_member};
use crate::trust::{MemberPolicy, Verdict};

/// Upper bound on the members one discovery returns (and on cached member clients).
pub const MAX_MEMBERS: usize = 100;
/// Upper bound on one discovery's duration.
pub const DISCOVERY_DEADLINE: Duration = Duration::from_secs(5);

/// What one discovery found: the set name (MongoDB) and members as `host:port`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub set: Option<String>,
    pub members: Vec<String>,
    /// Members (a subset of `members`) the target's policy does not allow:
    /// listed, never scraped. Filled by [`classify`].
    pub untrusted: Vec<String>,
}

impl Topology {
    fn push(&mut self, member: String) {
        if self.members.len() < MAX_MEMBERS && !self.members.contains(&member) {
            self.members.push(member);
        }
    }
}

/// Why a discovery failed. Messages carry a kind, never server text or credentials.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("not a configured target")]
    UnknownTarget,
    #[error("deadline exceeded during discovery")]
    Timeout,
    #[error("redis: {0}")]
    Redis(String),
    #[error("mongodb: {0}")]
    Mongodb(String),
}

/// The Redis target's settings with the address swapped for a member's
/// (same scheme, so the same TLS; same database; same credentials).
pub fn redis_member_spec(spec: &RedisTarget, host: &str, port: u16) -> Option<RedisTarget> {
    let (scheme, rest) = spec.url.split_once("://")?;
    if scheme != "redis" && scheme != "rediss" {
        return None;
    }
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    let mut member = spec.clone();
    member.connection.url = format!("{scheme}://{}{path}", member_key(host, port));
    Some(member)
}

/// Marks the members `policy` does not allow as untrusted (names resolved
/// once, within `deadline`). Returns each untrusted member with the reason.
pub async fn classify(topology: &mut Topology, policy: &MemberPolicy, deadline: Instant) -> Vec<(String, Verdict)> {
    let mut policy = policy.clone();
    policy.resolve_names(deadline).await;
    let policy = &policy;
    let checks = topology.members.iter().map(|member| async move {
        let verdict = match parse_member(member) {
            Some((host, port)) => policy.check(&host, port, deadline).await,
            None => Verdict::Forbidden,
        };
        (member.clone(), verdict)
    });
    let refused: Vec<(String, Verdict)> =
        futures_util::future::join_all(checks).await.into_iter().filter(|(_, v)| !v.allowed()).collect();
    topology.untrusted = refused.iter().map(|(m, _)| m.clone()).collect();
    refused
}

/// Discovers a Redis deployment through the configured target.
pub async fn redis(spec: &RedisTarget, deadline: Instant) -> Result<Topology, DiscoveryError> {
    let mut topology = Topology::default();
    let Some((seed_host, seed_port)) = spec.connection.tcp_address() else {
        // A Unix socket has no host:port to probe a member at.
        return Ok(topology);
    };
    topology.push(member_key(&seed_host, seed_port));
    let mut conn =
        open_connection(spec, None, true, deadline).await.map_err(|e| DiscoveryError::Redis(e.to_string()))?;
    // INFO server first: what else may be asked depends on the mode.
    let reply: Value = timeout_at(deadline, redis::cmd("INFO").arg("server").query_async(&mut conn))
        .await
        .map_err(|_| DiscoveryError::Timeout)?
        .map_err(|e| DiscoveryError::Redis(format!("{:?}", e.kind())))?;
    let server = match bytes_of(&reply) {
        Some(raw) => info::parse_info(raw),
        None => return Err(DiscoveryError::Redis("INFO server refused".into())),
    };
    let mode = server.get("redis_mode").unwrap_or("");
    if mode == "sentinel" {
        for (host, port) in sentinel_members(&mut conn, deadline).await? {
            topology.push(member_key(&host, port));
        }
        return Ok(topology);
    }
    // CLUSTER NODES only to a cluster node: anywhere else it is an error reply in errorstats.
    let command = if mode == "cluster" {
        redis::cmd("CLUSTER").arg("NODES").clone()
    } else {
        redis::cmd("INFO").arg("replication").clone()
    };
    let reply: Value = match timeout_at(deadline, command.query_async(&mut conn)).await {
        Err(_) => return Err(DiscoveryError::Timeout),
        Ok(Ok(reply)) => reply,
        // Refused (ACL): a cluster cannot be discovered; a standalone server is its own only member.
        Ok(Err(e)) if e.code().is_some() && mode == "cluster" => {
            return Err(DiscoveryError::Redis("CLUSTER NODES refused".into()))
        }
        Ok(Err(e)) if e.code().is_some() => return Ok(topology),
        Ok(Err(e)) => return Err(DiscoveryError::Redis(format!("{:?}", e.kind()))),
    };
    if mode == "cluster" {
        let Some(text) = bytes_of(&reply) else {
            return Err(DiscoveryError::Redis("CLUSTER NODES refused".into()));
        };
        for (host, port) in cluster_nodes(&String::from_utf8_lossy(text), &seed_host) {
            topology.push(member_key(&host, port));
        }
    } else if let Some(raw) = bytes_of(&reply) {
        for (host, port) in replicas_from_info(&info::parse_info(raw)) {
            topology.push(member_key(&host, port));
        }
    }
    Ok(topology)
}

/// Masters a Sentinel monitors and their replicas, as the Sentinel reports
/// them (untrusted: [`classify`] decides who may be probed).
async fn sentinel_members(
    conn: &mut redis::aio::MultiplexedConnection,
    deadline: Instant,
) -> Result<Vec<(String, u16)>, DiscoveryError> {
    let reply: Value = timeout_at(deadline, redis::cmd("SENTINEL").arg("MASTERS").query_async(&mut *conn))
        .await
        .map_err(|_| DiscoveryError::Timeout)?
        .map_err(|e| DiscoveryError::Redis(format!("SENTINEL MASTERS: {:?}", e.kind())))?;
    let Some((masters, _)) = sentinel::parse_masters(&reply) else {
        return Err(DiscoveryError::Redis("SENTINEL MASTERS: unexpected reply".into()));
    };
    let mut members: Vec<(String, u16)> = Vec::new();
    if masters.is_empty() {
        return Ok(members);
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for m in &masters {
        pipe.cmd("SENTINEL").arg("REPLICAS").arg(&m.name);
    }
    let replies: Vec<Value> = timeout_at(deadline, pipe.query_async(&mut *conn))
        .await
        .map_err(|_| DiscoveryError::Timeout)?
        .map_err(|e| DiscoveryError::Redis(format!("SENTINEL REPLICAS: {:?}", e.kind())))?;
    for (master, replicas) in masters.iter().zip(&replies) {
        members.push((master.ip.clone(), master.port));
        if let Some(peers) = sentinel::parse_peers(replicas) {
            members.extend(peers.addresses);
        }
    }
    Ok(members)
}

/// One reachable node of a `CLUSTER NODES` reply.
/// Every reachable node of `CLUSTER NODES`, masters and replicas, as `(host, port)`.
pub fn cluster_nodes(text: &str, seed_host: &str) -> Vec<(String, u16)> {
    parse_cluster_nodes(text, seed_host).into_iter().map(|n| (n.host, n.port)).collect()
}

/// Discovers a MongoDB deployment through the configured target's client.
pub async fn mongodb(client: &MongoClient, display: &str, deadline: Instant) -> Result<Topology, DiscoveryError> {
    let hello = timeout_at(deadline, client.hello(deadline))
        .await
        .map_err(|_| DiscoveryError::Timeout)?
        .map_err(|e| DiscoveryError::Mongodb(e.to_string()))?;
    Ok(mongo_from_hello(&hello, display))
}

/// Members from a `hello` reply plus the hosts of the connection string
/// (`display` is `mongodb://h1:p1,h2:p2`; an SRV name adds nothing).
pub fn mongo_from_hello(hello: &Document, display: &str) -> Topology {
    let mut topology =
        Topology { set: hello.get_str("setName").ok().map(str::to_string), members: Vec::new(), untrusted: Vec::new() };
    if let Some(hosts) = display.strip_prefix("mongodb://") {
        for host in hosts.split(',') {
            let host = if host.contains(':') { host.to_string() } else { format!("{host}:27017") };
            if let Some((h, p)) = parse_member(&host) {
                topology.push(member_key(&h, p));
            }
        }
    }
    for key in ["hosts", "passives", "arbiters"] {
        if let Ok(list) = hello.get_array(key) {
            for member in list.iter().filter_map(Bson::as_str) {
                if let Some((h, p)) = parse_member(member) {
                    topology.push(member_key(&h, p));
                }
            }
        }
    }
    topology
}

/// The `http_sd` document: one entry per member, each scraped through `exporter`.
/// `__meta_tenderly_member_trusted` says whether `/probe` will scrape it
/// (`"false"`: the member is not allowed and its probe answers 400; drop it
/// with a relabel rule, or keep it to see it as a down target).
pub fn http_sd_json(exporter: &str, target: &str, topology: &Topology) -> String {
    let mut out = String::from("[");
    for (i, member) in topology.members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"targets\":[{}],\"labels\":{{\"__param_target\":{},\"__param_member\":{},\"member\":{}",
            json_string(exporter),
            json_string(target),
            json_string(member),
            json_string(member)
        ));
        if let Some(set) = &topology.set {
            out.push_str(&format!(",\"set\":{}", json_string(set)));
        }
        let trusted = !topology.untrusted.contains(member);
        out.push_str(&format!(",\"__meta_tenderly_member_trusted\":\"{trusted}\""));
        out.push_str("}}");
    }
    out.push_str("]\n");
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn members_round_trip() {
        assert_eq!(member_key("::1", 7000), "[::1]:7000");
        assert_eq!(parse_member("[::1]:7000"), Some(("::1".into(), 7000)));
        assert_eq!(parse_member("mongo1:30001"), Some(("mongo1".into(), 30001)));
        assert_eq!(parse_member("mongo1"), None);
        assert_eq!(parse_member(":0"), None);
    }

    #[test]
    fn cluster_nodes_lists_masters_and_replicas_but_not_failed() {
        let text = "a 10.0.0.1:7000@17000 master - 0 0 1 connected 0-5460\n\
                    b :7001@17001 myself,slave a 0 0 1 connected\n\
                    c 10.0.0.3:7002@17002 master,fail - 0 0 2 disconnected\n\
                    d 10.0.0.4:7003@17003,node-d.internal slave a 0 0 1 connected\n\
                    e :0@0 noaddr,master - 0 0 3 disconnected\n";
        assert_eq!(
            cluster_nodes(text, "seed"),
            vec![("10.0.0.1".into(), 7000), ("seed".into(), 7001), ("node-d.internal".into(), 7003)]
        );
    }

    #[test]
    fn replicas_from_info_replication() {
        let raw = b"# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
                    slave0:ip=10.0.0.2,port=6380,state=online,offset=1,lag=0\r\n\
                    slave1:ip=10.0.0.3,port=6381,state=online,offset=1,lag=0\r\nslave_x:1\r\n";
        let parsed = info::parse_info(raw);
        assert_eq!(replicas_from_info(&parsed), vec![("10.0.0.2".into(), 6380), ("10.0.0.3".into(), 6381)]);
    }

    #[test]
    fn mongo_members_from_hello_and_seed() {
        let hello = doc! {"setName": "rs", "hosts": ["m1:1", "m2:2"], "passives": ["m3:3"], "arbiters": ["m4:4"]};
        let t = mongo_from_hello(&hello, "mongodb://seed:27017");
        assert_eq!(t.set.as_deref(), Some("rs"));
        assert_eq!(t.members, vec!["seed:27017", "m1:1", "m2:2", "m3:3", "m4:4"]);
        let t = mongo_from_hello(&doc! {}, "mongodb+srv://cluster.example");
        assert!(t.members.is_empty());
    }

    #[test]
    fn json_is_escaped_and_bounded() {
        let t = Topology {
            set: Some("s\"et".into()),
            members: vec!["h:1".into(), "x:2".into()],
            untrusted: vec!["x:2".into()],
        };
        assert_eq!(
            http_sd_json("exp:9879", "t", &t),
            "[{\"targets\":[\"exp:9879\"],\"labels\":{\"__param_target\":\"t\",\"__param_member\":\"h:1\",\"member\":\"h:1\",\"set\":\"s\\\"et\",\"__meta_tenderly_member_trusted\":\"true\"}},\
             {\"targets\":[\"exp:9879\"],\"labels\":{\"__param_target\":\"t\",\"__param_member\":\"x:2\",\"member\":\"x:2\",\"set\":\"s\\\"et\",\"__meta_tenderly_member_trusted\":\"false\"}}]\n"
        );
        let mut big = Topology::default();
        for i in 0..500 {
            big.push(format!("h:{i}"));
        }
        assert_eq!(big.members.len(), MAX_MEMBERS);
    }
}
