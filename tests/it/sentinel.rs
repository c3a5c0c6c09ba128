//! Redis Sentinel targets against a real `redis-server --sentinel` (the same
//! Debian binary) monitoring a real master and replica on loopback: the
//! `redis_sentinel_*` families, no error reply in the Sentinel's errorstats
//! after several scrapes, the master address label changing after
//! `SENTINEL FAILOVER`, and `/discover` listing masters and replicas with the
//! advertised ones outside the trust policy marked untrusted.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::process::free_port;
use crate::support::redis_server::info_field;
use crate::support::{private_temp_dir, wait_until, RedisOptions, RedisServer, RespConn};

/// A `redis-server --sentinel` on a free loopback port; killed and its directory removed on drop.
/// Also used by the end-to-end test.
pub struct Sentinel {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Sentinel {
    /// Monitors each `(name, host, port)` with quorum 1 and short timeouts.
    pub fn start(masters: &[(&str, &str, u16)]) -> Sentinel {
        let dir = private_temp_dir("sentinel");
        let port = free_port();
        let mut conf = format!("port {port}\nbind 127.0.0.1\ndir {}\n", dir.display());
        for (name, host, master_port) in masters {
            conf += &format!(
                "sentinel monitor {name} {host} {master_port} 1\n\
                 sentinel down-after-milliseconds {name} 1000\n\
                 sentinel failover-timeout {name} 10000\n"
            );
        }
        let path = dir.join("sentinel.conf");
        fs::write(&path, conf).expect("write sentinel.conf");
        let log = fs::File::create(dir.join("sentinel.log")).expect("log file");
        let child = Command::new("redis-server")
            .arg(&path)
            .arg("--sentinel")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server --sentinel");
        let sentinel = Sentinel { port, dir, child };
        wait_until(Duration::from_secs(10), "the sentinel answers PING", || {
            RespConn::connect(&sentinel.addr()).and_then(|mut c| c.command(&["PING"])).is_ok()
        });
        sentinel
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let mut conn = RespConn::connect(&self.addr()).expect("connect to the sentinel");
        conn.command(args).expect("sentinel command").render()
    }

    /// `INFO errorstats` plus `total_error_replies`: what an error reply would change.
    fn errors(&self) -> (String, String) {
        let errorstats = self.cli(&["INFO", "errorstats"]);
        let lines = errorstats.lines().filter(|l| l.starts_with("errorstat_")).collect::<Vec<_>>().join("\n");
        let total = info_field(&self.cli(&["INFO", "stats"]), "total_error_replies").unwrap_or_default();
        (lines, total)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn value(out: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    out.value(name, labels)
}

/// A master, its replica, and a Sentinel that has seen the replica.
fn deployment() -> Option<(RedisServer, RedisServer, Sentinel)> {
    crate::support::process::require_tool("redis-server", "redis-server")?;
    let master = RedisServer::start(RedisOptions::default());
    let replica = RedisServer::start(RedisOptions { replica_of: Some((master.port(), None)), ..Default::default() });
    wait_until(Duration::from_secs(10), "the replica is in sync", || {
        replica.info_field("replication", "master_link_status").as_deref() == Some("up")
    });
    let sentinel = Sentinel::start(&[("mymaster", "127.0.0.1", master.port())]);
    wait_until(Duration::from_secs(15), "the sentinel knows the replica", || {
        let info = sentinel.cli(&["INFO", "sentinel"]);
        info_field(&info, "master0").is_some_and(|m| m.contains("status=ok") && m.contains("slaves=1"))
    });
    Some((master, replica, sentinel))
}

#[test]
fn sentinel_reports_masters_quorum_and_failover_without_error_replies() {
    let Some((master, replica, sentinel)) = deployment() else { return };
    let exporter = TestExporter::start(&["--redis.addr", &format!("redis://{}", sentinel.addr())], &[]);
    let master_addr = master.addr();
    let name = ("master_name", "mymaster");
    let mut out = exporter.scrape("/metrics");
    for _ in 0..3 {
        out = exporter.scrape("/metrics");
    }
    assert_eq!(value(&out, "redis_up", &[]), Some(1.0));
    assert_eq!(value(&out, "redis_sentinel_masters", &[]), Some(1.0));
    assert_eq!(value(&out, "redis_sentinel_tilt", &[]), Some(0.0));
    assert_eq!(value(&out, "redis_sentinel_running_scripts", &[]), Some(0.0));
    assert_eq!(value(&out, "redis_sentinel_scripts_queue_length", &[]), Some(0.0));
    let at = [name, ("master_address", master_addr.as_str())];
    assert_eq!(
        value(&out, "redis_sentinel_master_status", &[name, ("master_address", &master_addr), ("master_status", "ok")]),
        Some(1.0)
    );
    assert_eq!(value(&out, "redis_sentinel_master_slaves", &at), Some(1.0));
    assert_eq!(value(&out, "redis_sentinel_master_sentinels", &at), Some(1.0));
    assert_eq!(value(&out, "redis_sentinel_master_ok_slaves", &at), Some(1.0));
    assert_eq!(value(&out, "redis_sentinel_master_ok_sentinels", &at), Some(1.0));
    assert_eq!(value(&out, "redis_sentinel_master_setting_ckquorum", &at), Some(1.0));
    assert_eq!(value(&out, "redis_sentinel_master_setting_down_after_milliseconds", &at), Some(1000.0));
    // The computed verdict agrees with the Sentinel's own CKQUORUM.
    assert!(sentinel.cli(&["SENTINEL", "CKQUORUM", "mymaster"]).starts_with("OK"));
    assert_eq!(value(&out, "redis_sentinel_master_ckquorum_status", &[name]), Some(1.0));
    // Nothing a Sentinel rejects was sent: no error reply at all, and no data-node family.
    let (errorstats, total) = sentinel.errors();
    assert_eq!((errorstats.as_str(), total.as_str()), ("", "0"), "the sentinel answered errors");
    for absent in [
        "redis_slowlog_length",
        "redis_config_databases",
        "redis_connected_clients_by_name",
        "tenderly_redis_key_scan_passes_total",
    ] {
        assert_eq!(out.count(absent), 0, "{absent} on a sentinel");
    }
    let stats = sentinel.cli(&["INFO", "commandstats"]);
    for command in ["cmdstat_config", "cmdstat_slowlog", "cmdstat_latency", "cmdstat_dbsize", "cmdstat_cluster"] {
        assert!(!stats.contains(command), "{command} sent to a sentinel:\n{stats}");
    }

    // Failover: the replica becomes the master and the address label follows.
    // The Sentinel promotes only a replica it has read INFO from and that is in sync.
    wait_until(Duration::from_secs(30), "the sentinel has vetted the replica", || {
        let replicas = sentinel.cli(&["SENTINEL", "REPLICAS", "mymaster"]);
        replicas.contains("\nflags\nslave\n") && replicas.contains("\nmaster-link-status\nok\n")
    });
    wait_until(Duration::from_secs(30), "SENTINEL FAILOVER is accepted", || {
        sentinel.cli(&["SENTINEL", "FAILOVER", "mymaster"]) == "OK"
    });
    let replica_addr = replica.addr();
    wait_until(Duration::from_secs(30), "the failover completes", || {
        let info = sentinel.cli(&["INFO", "sentinel"]);
        info_field(&info, "master0").is_some_and(|m| m.contains(&format!("address={replica_addr}")))
    });
    // Our own FAILOVER attempts may have been answered NOGOODSLAVE: count from here.
    let (_, errors_after_failover) = sentinel.errors();
    for _ in 0..3 {
        exporter.scrape("/metrics");
    }
    let out = exporter.scrape("/metrics");
    let new_status = value(
        &out,
        "redis_sentinel_master_status",
        &[name, ("master_address", &replica_addr), ("master_status", "ok")],
    );
    assert_eq!(new_status, Some(1.0), "the master address label did not change");
    assert_eq!(value(&out, "redis_sentinel_master_slaves", &at), None, "the old address is still exported");
    assert!(value(&out, "redis_sentinel_master_config_epoch", &[name, ("master_address", &replica_addr)])
        .is_some_and(|epoch| epoch >= 1.0));
    assert_eq!(sentinel.errors().1, errors_after_failover, "the sentinel answered errors after the failover");
}

#[test]
fn sentinel_with_quorum_above_its_sentinels_reports_no_quorum() {
    let Some((master, _replica, _first)) = deployment() else { return };
    // One Sentinel, quorum 2: CKQUORUM says NOQUORUM; the exporter says so without asking it.
    let sentinel = Sentinel::start(&[]);
    assert_eq!(sentinel.cli(&["SENTINEL", "MONITOR", "solo", "127.0.0.1", &master.port().to_string(), "2"]), "OK");
    assert!(sentinel.cli(&["SENTINEL", "CKQUORUM", "solo"]).starts_with("NOQUORUM"));
    let (_, errors_before) = sentinel.errors();
    let exporter = TestExporter::start(&["--redis.addr", &format!("redis://{}", sentinel.addr())], &[]);
    for _ in 0..3 {
        exporter.scrape("/metrics");
    }
    let out = exporter.scrape("/metrics");
    assert_eq!(value(&out, "redis_sentinel_master_ckquorum_status", &[("master_name", "solo")]), Some(0.0));
    assert_eq!(sentinel.errors().1, errors_before, "scrapes added error replies");
}

#[test]
fn sentinel_discovery_lists_masters_and_replicas_and_distrusts_other_hosts() {
    let Some((master, replica, _unused)) = deployment() else { return };
    // A second master "elsewhere": 127.0.0.2 is loopback, but not the target's host.
    let elsewhere = free_port();
    let sentinel = Sentinel::start(&[("mymaster", "127.0.0.1", master.port()), ("far", "127.0.0.2", elsewhere)]);
    wait_until(Duration::from_secs(15), "the sentinel knows the replica", || {
        sentinel.cli(&["INFO", "sentinel"]).contains("slaves=1")
    });
    let dir = private_temp_dir("sentinel-discovery");
    let path = dir.join("targets.yml");
    fs::write(&path, format!("targets:\n  - {{name: sen, kind: redis, address: 'redis://{}'}}\n", sentinel.addr()))
        .expect("write targets");
    let exporter = TestExporter::start(&["--config.file", path.to_str().expect("utf-8")], &[]);
    let resp = exporter.get("/discover?target=sen");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let json: serde_json::Value = serde_json::from_str(&resp.body).expect("http_sd JSON");
    let entries: Vec<(String, String)> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let labels = &e["labels"];
            (
                labels["__param_member"].as_str().expect("member").to_string(),
                labels["__meta_tenderly_member_trusted"].as_str().expect("trusted").to_string(),
            )
        })
        .collect();
    let far = format!("127.0.0.2:{elsewhere}");
    let expect = [(sentinel.addr(), "true"), (master.addr(), "true"), (replica.addr(), "true"), (far.clone(), "false")];
    for (member, trusted) in &expect {
        assert!(
            entries.iter().any(|(m, t)| m == member && t == trusted),
            "{member} trusted={trusted} missing in {entries:?}"
        );
    }
    // The advertised address outside the policy is never probed.
    assert_eq!(exporter.get(&format!("/probe?target=sen&member={far}")).status, 400);
    let probe = exporter.get(&format!("/probe?target=sen&member={}", replica.addr()));
    assert_eq!(probe.status, 200, "{}", probe.body);
    let (errorstats, total) = sentinel.errors();
    assert_eq!((errorstats.as_str(), total.as_str()), ("", "0"), "discovery sent the sentinel a rejected command");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn discovery_of_a_standalone_server_sends_no_command_it_rejects() {
    // Discovery used to pipeline CLUSTER NODES to every Redis: one
    // "cluster support disabled" error reply per /discover on a standalone server.
    let server = RedisServer::start(RedisOptions::default());
    let replica = RedisServer::start(RedisOptions { replica_of: Some((server.port(), None)), ..Default::default() });
    wait_until(Duration::from_secs(10), "the replica is in sync", || {
        replica.info_field("replication", "master_link_status").as_deref() == Some("up")
    });
    let dir = private_temp_dir("standalone-discovery");
    let path = dir.join("targets.yml");
    fs::write(&path, format!("targets:\n  - {{name: solo, kind: redis, address: 'redis://{}'}}\n", server.addr()))
        .expect("write targets");
    let exporter = TestExporter::start(&["--config.file", path.to_str().expect("utf-8")], &[]);
    let errors = || server.info_field("stats", "total_error_replies");
    let before = errors();
    for _ in 0..3 {
        let resp = exporter.get("/discover?target=solo");
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert!(resp.body.contains(&replica.addr()), "{}", resp.body);
    }
    assert_eq!(errors(), before, "discovery sent a command the server rejected");
    let _ = fs::remove_dir_all(&dir);
}
