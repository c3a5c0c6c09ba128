//! Redis Sentinel targets: what a Sentinel knows about the masters it
//! monitors, under oliver006/redis_exporter's names (`redis_sentinel_*`) so
//! its dashboards and alerts keep working.
//!
//! A Sentinel accepts only a few commands (`INFO`, `SENTINEL ...`, `PING`,
//! `CLIENT`, `COMMAND`, `HELLO`, `ROLE`, pub/sub); anything else is an error
//! reply that lands in its `errorstats` on every scrape. So once `INFO server`
//! says `redis_mode:sentinel`, the client sends only `INFO ALL`,
//! `SENTINEL MASTERS`, and per master `SENTINEL SENTINELS <name>` and
//! `SENTINEL REPLICAS <name>`.
//!
//! `SENTINEL CKQUORUM <name>` is not sent: it answers an *error* (`NOQUORUM`,
//! `NOMAJORITY`) exactly when quorum is lost, which would add an error reply on
//! every scrape of an outage. Its verdict is computed from the same data the
//! Sentinel uses (sentinel.c `sentinelIsQuorumReachable`): usable voters (this
//! Sentinel plus peers without `s_down`/`o_down`) must reach both the
//! configured quorum and a majority of all known Sentinels.
//!
//! Names and addresses come from the Sentinel: label values are length-capped
//! ([`bounded_label`]) and at most [`MAX_MASTERS`] masters are exported; the
//! rest are counted in `tenderly_exporter_series_dropped_total{family="sentinel_masters"}`.
//! Advertised addresses are only ever labels here; the `/discover` endpoint
//! above this layer treats them as untrusted.

use redis::Value;

use super::info::{bounded_label, parse_f64, parse_kv_list, parse_u64, Info};
use crate::metrics::{BaseUnit, Desc, Exposition, Label};

/// The catalog name of these families (they are read in the `redis` collector's run).
pub const COLLECTOR: &str = "redis_sentinel";
/// Masters exported (and asked about) per Sentinel; a Sentinel monitoring more is rare.
pub const MAX_MASTERS: usize = 64;
/// Fields read from one `SENTINEL MASTERS`/`SENTINELS`/`REPLICAS` entry (Redis 7 prints about 40).
const MAX_FIELDS_PER_ENTRY: usize = 128;
/// Peers (Sentinels or replicas) read per master.
const MAX_PEERS: usize = 256;

// ---- INFO sentinel ----------------------------------------------------------
const MASTERS: Desc =
    Desc::gauge("redis_sentinel_masters", "Masters this Sentinel monitors, from INFO sentinel_masters.");
const TILT: Desc = Desc::gauge(
    "redis_sentinel_tilt",
    "Whether this Sentinel is in TILT mode (1) or not (0), from INFO sentinel_tilt.",
);
const RUNNING_SCRIPTS: Desc = Desc::gauge(
    "redis_sentinel_running_scripts",
    "Notification and reconfiguration scripts running now, from INFO sentinel_running_scripts.",
);
const SCRIPTS_QUEUE_LENGTH: Desc = Desc::gauge(
    "redis_sentinel_scripts_queue_length",
    "Scripts queued for execution, from INFO sentinel_scripts_queue_length.",
);
const SIMULATE_FAILURE_FLAGS: Desc = Desc::gauge(
    "redis_sentinel_simulate_failure_flags",
    "Failure simulation flags set with SENTINEL SIMULATE-FAILURE (0 in production), from INFO sentinel_simulate_failure_flags.",
);
const MASTER_STATUS: Desc = Desc::gauge(
    "redis_sentinel_master_status",
    "Whether this Sentinel sees the master as ok (1) or down (0), from the INFO masterN line.",
)
.labels(&["master_name", "master_address", "master_status"]);
const MASTER_SLAVES: Desc = Desc::gauge(
    "redis_sentinel_master_slaves",
    "Replicas of the master known to this Sentinel, from the INFO masterN line.",
)
.labels(&["master_name", "master_address"]);
const MASTER_SENTINELS: Desc = Desc::gauge(
    "redis_sentinel_master_sentinels",
    "Sentinels monitoring the master (this one included), from the INFO masterN line.",
)
.labels(&["master_name", "master_address"]);

// ---- SENTINEL MASTERS / SENTINELS / REPLICAS -------------------------------
const MASTER_OK_SLAVES: Desc = Desc::gauge(
    "redis_sentinel_master_ok_slaves",
    "Replicas of the master not flagged s_down or o_down, from SENTINEL REPLICAS.",
)
.labels(&["master_name", "master_address"]);
const MASTER_OK_SENTINELS: Desc = Desc::gauge(
    "redis_sentinel_master_ok_sentinels",
    "Sentinels monitoring the master not flagged s_down or o_down, this one included, from SENTINEL SENTINELS.",
)
.labels(&["master_name", "master_address"]);
const MASTER_CKQUORUM_STATUS: Desc = Desc::gauge(
    "redis_sentinel_master_ckquorum_status",
    "Whether the usable Sentinels reach the master's quorum and a majority (1) or not (0): the verdict of SENTINEL CKQUORUM, computed from SENTINEL SENTINELS.",
)
.labels(&["master_name"]);
const MASTER_SETTING_CKQUORUM: Desc = Desc::gauge(
    "redis_sentinel_master_setting_ckquorum",
    "Configured quorum of the master (Sentinels that must agree it is down), from SENTINEL MASTERS quorum.",
)
.labels(&["master_name", "master_address"]);
const MASTER_SETTING_FAILOVER_TIMEOUT: Desc = Desc::gauge(
    "redis_sentinel_master_setting_failover_timeout",
    "Configured failover timeout of the master in milliseconds, from SENTINEL MASTERS failover-timeout.",
)
.labels(&["master_name", "master_address"]);
const MASTER_SETTING_PARALLEL_SYNCS: Desc = Desc::gauge(
    "redis_sentinel_master_setting_parallel_syncs",
    "Replicas reconfigured at once during a failover, from SENTINEL MASTERS parallel-syncs.",
)
.labels(&["master_name", "master_address"]);
const MASTER_SETTING_DOWN_AFTER: Desc = Desc::gauge(
    "redis_sentinel_master_setting_down_after_milliseconds",
    "Milliseconds without a valid reply before the master is flagged s_down, from SENTINEL MASTERS down-after-milliseconds.",
)
.labels(&["master_name", "master_address"]);
const MASTER_CONFIG_EPOCH: Desc = Desc::gauge(
    "redis_sentinel_master_config_epoch",
    "Configuration epoch of the master (increases with every failover), from SENTINEL MASTERS config-epoch.",
)
.labels(&["master_name", "master_address"]);
const MASTER_LAST_OK_PING_REPLY: Desc = Desc::gauge(
    "redis_sentinel_master_last_ok_ping_reply_seconds",
    "Seconds since the master last answered PING correctly, from SENTINEL MASTERS last-ok-ping-reply.",
)
.unit(BaseUnit::Seconds)
.labels(&["master_name", "master_address"]);

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![
        &MASTERS,
        &TILT,
        &RUNNING_SCRIPTS,
        &SCRIPTS_QUEUE_LENGTH,
        &SIMULATE_FAILURE_FLAGS,
        &MASTER_STATUS,
        &MASTER_SLAVES,
        &MASTER_SENTINELS,
        &MASTER_OK_SLAVES,
        &MASTER_OK_SENTINELS,
        &MASTER_CKQUORUM_STATUS,
        &MASTER_SETTING_CKQUORUM,
        &MASTER_SETTING_FAILOVER_TIMEOUT,
        &MASTER_SETTING_PARALLEL_SYNCS,
        &MASTER_SETTING_DOWN_AFTER,
        &MASTER_CONFIG_EPOCH,
        &MASTER_LAST_OK_PING_REPLY,
    ]
}

/// One master as `SENTINEL MASTERS` describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Master {
    pub name: String,
    pub ip: String,
    pub port: u16,
    /// `master`, `master,s_down`, `master,o_down`, ...
    pub flags: String,
    pub quorum: Option<u64>,
    pub num_other_sentinels: Option<u64>,
    pub failover_timeout_ms: Option<f64>,
    pub parallel_syncs: Option<f64>,
    pub down_after_ms: Option<f64>,
    pub config_epoch: Option<f64>,
    pub last_ok_ping_reply_ms: Option<f64>,
}

impl Master {
    /// `ip:port`, as redis_exporter labels it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// Sentinels or replicas of one master: how many are listed and how many are usable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    pub listed: usize,
    /// Not flagged `s_down` or `o_down`.
    pub ok: usize,
    /// `(ip, port)` of each listed peer (untrusted: what the Sentinel says).
    pub addresses: Vec<(String, u16)>,
}

/// One master and what the Sentinel says about its peers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MasterState {
    pub master: Master,
    /// `SENTINEL SENTINELS <name>` (other Sentinels only); `None` if the reply was unusable.
    pub sentinels: Option<Peers>,
    /// `SENTINEL REPLICAS <name>`; `None` if the reply was unusable.
    pub replicas: Option<Peers>,
}

impl MasterState {
    /// The verdict `SENTINEL CKQUORUM` would give (sentinel.c `sentinelIsQuorumReachable`).
    pub fn quorum_reachable(&self) -> Option<bool> {
        let sentinels = self.sentinels.as_ref()?;
        let quorum = self.master.quorum?;
        let voters = sentinels.listed as u64 + 1;
        let usable = sentinels.ok as u64 + 1;
        Some(usable >= quorum && usable > voters / 2)
    }
}

/// What one scrape read from a Sentinel beyond INFO.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentinelSnapshot {
    /// At most [`MAX_MASTERS`], in reply order.
    pub masters: Vec<MasterState>,
    /// Masters left out by [`MAX_MASTERS`].
    pub masters_dropped: usize,
}

/// The `(field, value)` pairs of one entry: a flat array (RESP2) or a map (RESP3).
pub fn entry_fields(value: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| super::client::bytes_of(v).map(|b| String::from_utf8_lossy(b).into_owned());
    match value {
        Value::Array(items) => items
            .chunks_exact(2)
            .take(MAX_FIELDS_PER_ENTRY)
            .filter_map(|kv| Some((text(&kv[0])?, text(&kv[1])?)))
            .collect(),
        Value::Map(items) => {
            items.iter().take(MAX_FIELDS_PER_ENTRY).filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect()
        }
        _ => Vec::new(),
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Entries of an array reply (`SENTINEL MASTERS`, ...), each as its fields.
fn entries(value: &Value, cap: usize) -> Option<Vec<Vec<(String, String)>>> {
    match value {
        Value::Array(items) => Some(items.iter().take(cap).map(entry_fields).collect()),
        _ => None,
    }
}

/// `SENTINEL MASTERS`: entries without a name or a valid address are skipped.
/// Returns the masters (at most [`MAX_MASTERS`]) and how many were left out.
pub fn parse_masters(value: &Value) -> Option<(Vec<Master>, usize)> {
    let Value::Array(items) = value else { return None };
    let mut masters = Vec::new();
    let mut dropped = 0;
    for item in items {
        let fields = entry_fields(item);
        let (Some(name), Some(ip), Some(port)) =
            (field(&fields, "name"), field(&fields, "ip"), field(&fields, "port").and_then(|p| p.parse().ok()))
        else {
            continue;
        };
        if masters.len() >= MAX_MASTERS {
            dropped += 1;
            continue;
        }
        let num = |k: &str| field(&fields, k).and_then(parse_f64);
        masters.push(Master {
            name: name.to_string(),
            ip: ip.to_string(),
            port,
            flags: field(&fields, "flags").unwrap_or("").to_string(),
            quorum: field(&fields, "quorum").and_then(parse_u64),
            num_other_sentinels: field(&fields, "num-other-sentinels").and_then(parse_u64),
            failover_timeout_ms: num("failover-timeout"),
            parallel_syncs: num("parallel-syncs"),
            down_after_ms: num("down-after-milliseconds"),
            config_epoch: num("config-epoch"),
            last_ok_ping_reply_ms: num("last-ok-ping-reply"),
        });
    }
    Some((masters, dropped))
}

/// `SENTINEL SENTINELS <name>` or `SENTINEL REPLICAS <name>`.
pub fn parse_peers(value: &Value) -> Option<Peers> {
    let mut peers = Peers::default();
    for fields in entries(value, MAX_PEERS)? {
        peers.listed += 1;
        let flags = field(&fields, "flags").unwrap_or("");
        let down = flags.split(',').any(|f| f == "s_down" || f == "o_down");
        if !flags.is_empty() && !down {
            peers.ok += 1;
        }
        if let (Some(ip), Some(port)) = (field(&fields, "ip"), field(&fields, "port").and_then(|p| p.parse().ok())) {
            peers.addresses.push((ip.to_string(), port));
        }
    }
    Some(peers)
}

/// One INFO `masterN:name=...,status=...,address=...,slaves=N,sentinels=N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoMaster<'a> {
    pub name: &'a str,
    pub status: &'a str,
    pub address: &'a str,
    pub slaves: Option<u64>,
    pub sentinels: Option<u64>,
}

/// The `masterN` lines of INFO sentinel (other fields starting with `master` are not these).
pub fn info_masters(info: &Info) -> Vec<InfoMaster<'_>> {
    let Some(section) = info.section("sentinel") else { return Vec::new() };
    info.section_fields(section)
        .filter(|(k, _)| {
            k.strip_prefix("master").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|(_, v)| {
            let mut m = InfoMaster { name: "", status: "", address: "", slaves: None, sentinels: None };
            for (k, v) in parse_kv_list(v) {
                match k {
                    "name" => m.name = v,
                    "status" => m.status = v,
                    "address" => m.address = v,
                    "slaves" => m.slaves = parse_u64(v),
                    "sentinels" => m.sentinels = parse_u64(v),
                    _ => {}
                }
            }
            (!m.name.is_empty()).then_some(m)
        })
        .collect()
}

fn label(key: &'static str, value: &str) -> Label {
    (key, bounded_label(value))
}

/// The Sentinel families of one scrape. Returns the series left out by
/// [`MAX_MASTERS`] (INFO lines and SENTINEL MASTERS entries beyond it).
pub fn encode(info: &Info, snapshot: Option<&SentinelSnapshot>, out: &mut Exposition) -> u64 {
    let scalars: [(&str, &'static Desc); 5] = [
        ("sentinel_masters", &MASTERS),
        ("sentinel_tilt", &TILT),
        ("sentinel_running_scripts", &RUNNING_SCRIPTS),
        ("sentinel_scripts_queue_length", &SCRIPTS_QUEUE_LENGTH),
        ("sentinel_simulate_failure_flags", &SIMULATE_FAILURE_FLAGS),
    ];
    for (field, desc) in scalars {
        if let Some(v) = info.get_u64(field) {
            out.add_plain(desc, v);
        }
    }
    let mut dropped = 0u64;
    let masters = info_masters(info);
    dropped += 3 * masters.len().saturating_sub(MAX_MASTERS) as u64;
    for m in masters.iter().take(MAX_MASTERS) {
        let labels = || vec![label("master_name", m.name), label("master_address", m.address)];
        let mut status = labels();
        status.push(label("master_status", m.status));
        out.add(&MASTER_STATUS, status, m.status == "ok");
        if let Some(n) = m.slaves {
            out.add(&MASTER_SLAVES, labels(), n);
        }
        if let Some(n) = m.sentinels {
            out.add(&MASTER_SENTINELS, labels(), n);
        }
    }
    let Some(snapshot) = snapshot else { return dropped };
    dropped += 9 * snapshot.masters_dropped as u64;
    for state in &snapshot.masters {
        let m = &state.master;
        let address = m.address();
        let labels = || vec![label("master_name", &m.name), label("master_address", &address)];
        let settings: [(Option<f64>, &'static Desc); 5] = [
            (m.failover_timeout_ms, &MASTER_SETTING_FAILOVER_TIMEOUT),
            (m.parallel_syncs, &MASTER_SETTING_PARALLEL_SYNCS),
            (m.down_after_ms, &MASTER_SETTING_DOWN_AFTER),
            (m.config_epoch, &MASTER_CONFIG_EPOCH),
            (m.last_ok_ping_reply_ms.map(|ms| ms / 1e3), &MASTER_LAST_OK_PING_REPLY),
        ];
        if let Some(q) = m.quorum {
            out.add(&MASTER_SETTING_CKQUORUM, labels(), q);
        }
        for (value, desc) in settings {
            if let Some(v) = value.filter(|v| *v >= 0.0) {
                // Integers stay integers (`60000`, not `60000.0`).
                match v.fract() == 0.0 && v < 9.0e15 {
                    true => out.add(desc, labels(), v as u64),
                    false => out.add(desc, labels(), v),
                }
            }
        }
        if let Some(s) = &state.sentinels {
            out.add(&MASTER_OK_SENTINELS, labels(), s.ok as u64 + 1);
        }
        if let Some(r) = &state.replicas {
            out.add(&MASTER_OK_SLAVES, labels(), r.ok as u64);
        }
        if let Some(ok) = state.quorum_reachable() {
            out.add(&MASTER_CKQUORUM_STATUS, vec![label("master_name", &m.name)], ok);
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::redis::info::parse_info;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(pairs: &[(&str, &str)]) -> Value {
        Value::Array(pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect())
    }

    #[test]
    fn info_master_lines_are_parsed_by_key() {
        let raw = b"# Sentinel\r\nsentinel_masters:2\r\nsentinel_tilt:0\r\n\
            master0:name=user03,status=sdown,address=192.0.2.52:6381,slaves=1,sentinels=5\r\n\
            master1:name=user02,status=ok,address=192.0.2.54:6380,slaves=2,sentinels=3\r\n\
            masterx:name=bogus\r\n";
        let info = parse_info(raw);
        let masters = info_masters(&info);
        assert_eq!(masters.len(), 2);
        assert_eq!(masters[1].name, "user02");
        assert_eq!(masters[1].slaves, Some(2));
        let mut out = Exposition::new();
        assert_eq!(encode(&info, None, &mut out), 0);
        let status = out.get(
            "redis_sentinel_master_status",
            &[("master_name", "user03"), ("master_address", "192.0.2.52:6381"), ("master_status", "sdown")],
        );
        assert_eq!(status.map(|v| v.as_f64()), Some(0.0));
        assert_eq!(out.get("redis_sentinel_masters", &[]).map(|v| v.as_f64()), Some(2.0));
    }

    #[test]
    fn ckquorum_verdict_follows_sentinel_c() {
        let state = |quorum, listed, ok| MasterState {
            master: Master { quorum: Some(quorum), ..Master::default() },
            sentinels: Some(Peers { listed, ok, addresses: Vec::new() }),
            replicas: None,
        };
        // One Sentinel alone, quorum 1: reachable (1 >= 1, 1 > 0).
        assert_eq!(state(1, 0, 0).quorum_reachable(), Some(true));
        // Quorum 2 with one Sentinel: NOQUORUM.
        assert_eq!(state(2, 0, 0).quorum_reachable(), Some(false));
        // Three Sentinels, two down: 1 usable of 3 voters, no majority even with quorum 1.
        assert_eq!(state(1, 2, 0).quorum_reachable(), Some(false));
        // Three Sentinels, one down: 2 of 3.
        assert_eq!(state(2, 2, 1).quorum_reachable(), Some(true));
    }

    #[test]
    fn masters_and_peers_from_resp2_and_resp3_and_capped() {
        let m =
            entry(&[("name", "mymaster"), ("ip", "127.0.0.1"), ("port", "6379"), ("quorum", "2"), ("flags", "master")]);
        let resp3 =
            Value::Map(vec![(bulk("name"), bulk("other")), (bulk("ip"), bulk("::1")), (bulk("port"), bulk("7"))]);
        let no_port = entry(&[("name", "x"), ("ip", "h")]);
        let (masters, dropped) = parse_masters(&Value::Array(vec![m.clone(), resp3, no_port])).expect("array");
        assert_eq!(dropped, 0);
        assert_eq!(masters.len(), 2);
        assert_eq!(masters[0].address(), "127.0.0.1:6379");
        assert_eq!(masters[0].quorum, Some(2));
        let many = Value::Array((0..MAX_MASTERS + 3).map(|_| m.clone()).collect());
        let (masters, dropped) = parse_masters(&many).expect("array");
        assert_eq!((masters.len(), dropped), (MAX_MASTERS, 3));
        assert_eq!(parse_masters(&bulk("ERR")), None);

        let peers = Value::Array(vec![
            entry(&[("ip", "127.0.0.1"), ("port", "1"), ("flags", "slave")]),
            entry(&[("ip", "127.0.0.1"), ("port", "2"), ("flags", "slave,s_down")]),
            entry(&[("ip", "127.0.0.1"), ("port", "3")]),
        ]);
        let p = parse_peers(&peers).expect("array");
        assert_eq!((p.listed, p.ok, p.addresses.len()), (3, 1, 3));
    }

    #[test]
    fn masters_beyond_the_cap_are_counted_as_dropped_series() {
        let mut raw = String::from("# Sentinel\r\nsentinel_masters:70\r\n");
        for i in 0..MAX_MASTERS + 6 {
            raw += &format!("master{i}:name=m{i},status=ok,address=127.0.0.1:{i},slaves=0,sentinels=1\r\n");
        }
        let info = parse_info(raw.as_bytes());
        let mut out = Exposition::new();
        assert_eq!(encode(&info, None, &mut out), 18, "6 masters x 3 families");
        assert_eq!(out.sample_count("redis_sentinel_master_status"), MAX_MASTERS);
        let snapshot = SentinelSnapshot { masters: Vec::new(), masters_dropped: 2 };
        assert_eq!(encode(&info, Some(&snapshot), &mut Exposition::new()), 18 + 18);
    }

    #[test]
    fn hostile_names_are_bounded_labels() {
        let long = "n".repeat(10_000);
        let raw = format!("# Sentinel\r\nmaster0:name={long},status=ok\u{7},address=a:1,slaves=0,sentinels=1\r\n");
        let info = parse_info(raw.as_bytes());
        let mut out = Exposition::new();
        encode(&info, None, &mut out);
        let text = out.render().expect("render");
        assert!(!text.contains(&long) && !text.contains('\u{7}'), "unbounded label");
    }
}
