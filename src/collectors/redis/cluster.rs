//! What a Redis server says about its peers: the nodes of `CLUSTER NODES` and
//! the replicas of `INFO replication`. Both are *advertised* addresses (any
//! client allowed `REPLCONF` can register a replica), so callers decide what to
//! trust; this module only parses, bounded to [`MAX_NODES`] entries.

use super::info::Info;

/// Upper bound on the nodes or replicas one reply yields.
pub const MAX_NODES: usize = 100;

/// One reachable node of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub host: String,
    pub port: u16,
    pub master: bool,
    /// Whether the line lists slots (only those masters hold keys).
    pub has_slots: bool,
}

/// The reachable nodes of a `CLUSTER NODES` reply, deduplicated, at most
/// [`MAX_NODES`]. A node that has not learnt its own IP (`:7000@17000
/// myself,master`) is at `seed_host`; failed, handshaking and address-less nodes
/// are skipped. Shared by discovery and the key-family scan, which decide what to trust.
pub fn parse_cluster_nodes(text: &str, seed_host: &str) -> Vec<ClusterNode> {
    let mut out: Vec<ClusterNode> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let flags: Vec<&str> = fields[2].split(',').collect();
        if flags.iter().any(|f| matches!(*f, "fail" | "handshake" | "noaddr")) {
            continue;
        }
        // `ip:port@cport[,hostname]`
        let (address, hostname) = match fields[1].split_once(',') {
            Some((a, h)) => (a, Some(h).filter(|h| !h.is_empty())),
            None => (fields[1], None),
        };
        let address = address.split('@').next().unwrap_or(address);
        let Some((ip, port)) = address.rsplit_once(':') else { continue };
        let Ok(port) = port.parse::<u16>() else { continue };
        if port == 0 {
            continue;
        }
        let host = match hostname {
            Some(h) => h.to_string(),
            None if ip.is_empty() => seed_host.to_string(),
            None => ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        };
        if !out.iter().any(|n| n.host == host && n.port == port) && out.len() < MAX_NODES {
            out.push(ClusterNode { host, port, master: flags.contains(&"master"), has_slots: fields.len() >= 9 });
        }
    }
    out
}

/// Replicas from `INFO replication` (`slaveN:ip=...,port=...,state=online,...`).
pub fn replicas_from_info(replication: &Info) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for (key, value) in replication.fields() {
        let Some(n) = key.strip_prefix("slave") else { continue };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let mut ip = None;
        let mut port = None;
        for part in value.split(',') {
            match part.split_once('=') {
                Some(("ip", v)) => ip = Some(v),
                Some(("port", v)) => port = v.parse::<u16>().ok(),
                _ => {}
            }
        }
        if let (Some(ip), Some(port)) = (ip, port) {
            if !ip.is_empty() && port != 0 && out.len() < MAX_NODES {
                out.push((ip.to_string(), port));
            }
        }
    }
    out
}
