//! `/discover?target=NAME` (http_sd JSON of a replica set's members or a Redis
//! deployment's nodes) and `/probe?target=NAME&member=HOST:PORT`, which scrapes
//! only members the last discovery listed: never an open proxy.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::mongo_replay::{ReplayServer, Scenario};
use crate::support::{private_temp_dir, wait_until, BlackHole, RedisOptions, RedisServer};

/// An exporter whose `--config.file` holds `targets_yaml` (the `targets:` list items).
fn exporter_with(targets_yaml: &str) -> TestExporter {
    let dir = private_temp_dir("discovery");
    let path = dir.join("targets.yml");
    std::fs::write(&path, format!("targets:\n{targets_yaml}")).expect("write targets.yml");
    let exporter = TestExporter::start(&["--config.file", path.to_str().expect("utf-8 temp path")], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    exporter
}

/// `/discover` parsed: `(targets, labels)` per entry; asserts 200 and the content type.
fn discover(exporter: &TestExporter, name: &str) -> Vec<(Vec<String>, serde_json::Map<String, serde_json::Value>)> {
    let resp = exporter.get(&format!("/discover?target={name}"));
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_str(&resp.body).expect("http_sd JSON");
    json.as_array()
        .expect("a JSON array")
        .iter()
        .map(|entry| {
            let targets = entry["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(|t| t.as_str().expect("string").to_string())
                .collect();
            (targets, entry["labels"].as_object().expect("labels").clone())
        })
        .collect()
}

fn members(entries: &[(Vec<String>, serde_json::Map<String, serde_json::Value>)]) -> Vec<String> {
    entries.iter().map(|(_, l)| l["__param_member"].as_str().expect("member").to_string()).collect()
}

#[test]
fn discover_with_unknown_or_missing_target_is_400_and_connects_nowhere() {
    let canary = BlackHole::start();
    let exporter = exporter_with(&format!("  - {{name: known, kind: redis, address: 'redis://127.0.0.1:{}'}}\n", 1));
    for path in [
        format!("/discover?target=127.0.0.1:{}", canary.port),
        format!("/discover?target=redis%3A%2F%2F127.0.0.1%3A{}", canary.port),
        "/discover?target=nope".to_string(),
        "/discover".to_string(),
        format!("/probe?target=nope&member=127.0.0.1:{}", canary.port),
    ] {
        let resp = exporter.get(&path);
        assert_eq!(resp.status, 400, "{path}: {}", resp.body);
        assert!(!resp.body.contains(&canary.port.to_string()), "the reply echoes the request: {}", resp.body);
    }
    canary.assert_untouched();
    // The landing page links discovery per target.
    assert!(exporter.get("/").body.contains("href=\"/discover?target=known\""));
}

#[test]
fn discovery_failure_is_503_without_details() {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let exporter =
        exporter_with(&format!("  - {{name: dead, kind: redis, address: 'redis://:s3cret-pw@127.0.0.1:{port}'}}\n"));
    let resp = exporter.get("/discover?target=dead");
    assert_eq!(resp.status, 503, "{}", resp.body);
    assert!(!resp.body.contains("s3cret") && !resp.body.contains(&port.to_string()), "{}", resp.body);
    // A member of a target whose discovery fails is not scraped either.
    assert_eq!(exporter.get(&format!("/probe?target=dead&member=127.0.0.1:{port}")).status, 503);
}

#[test]
fn mongo_discover_lists_hello_members_and_probe_scrapes_only_listed_ones() {
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server");
    let canary = BlackHole::start();
    let exporter = exporter_with(&format!("  - {{name: rs, kind: mongodb, address: '{}'}}\n", replay.uri()));
    let seed = format!("127.0.0.1:{}", replay.port());

    // Before any discovery, a member is discovered on demand and then scraped.
    let m = exporter.scrape(&format!("/probe?target=rs&member={seed}"));
    assert_eq!(m.expect("mongodb_up", &[]), 1.0, "{}", m.text);
    let member_target = format!("rs@{seed}");
    assert_eq!(
        m.expect("tenderly_exporter_collector_success", &[("target", &member_target), ("collector", "mongodb")]),
        1.0
    );

    let entries = discover(&exporter, "rs");
    let listed = members(&entries);
    // The seed (the connection string's host) plus hello's hosts; the hidden member is not in hello.
    assert_eq!(listed, vec![seed.clone(), "mongo1:30001".to_string(), "mongo2:30002".to_string()], "{entries:?}");
    for (targets, labels) in &entries {
        assert_eq!(targets, &vec![exporter.addr.to_string()], "scraped through this exporter");
        assert_eq!(labels["__param_target"], "rs");
        assert_eq!(labels["member"], labels["__param_member"]);
        assert_eq!(labels["set"], "my-rs");
    }

    // Listed: scraped with the target's settings; not listed: 400, no connection.
    let m = exporter.scrape(&format!("/probe?target=rs&member={seed}"));
    assert_eq!(m.expect("mongodb_up", &[]), 1.0);
    for member in [format!("127.0.0.1:{}", canary.port), "127.0.0.1:1".to_string(), "mongo3:30003".to_string()] {
        let resp = exporter.get(&format!("/probe?target=rs&member={member}"));
        assert_eq!(resp.status, 400, "{member}: {}", resp.body);
        assert!(!resp.body.contains(&member), "the reply echoes the member: {}", resp.body);
    }
    assert_eq!(exporter.get("/probe?target=rs&member=%zz").status, 400);
    canary.assert_untouched();

    // A second Host header (the helper sends one) is a 400 (RFC 9112) and
    // nothing is reflected; a single malformed Host is covered in
    // `http_hostile::malformed_host_headers_are_not_reflected_by_discover`.
    let resp = exporter.get_with("/discover?target=rs", &[("Host", "evil\"host/x")]);
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(!resp.body.contains("evil"), "{}", resp.body);
}

#[test]
fn redis_cluster_discover_lists_nodes_and_probes_them() {
    let node = RedisServer::start(RedisOptions { cluster: true, ..RedisOptions::default() });
    let canary = BlackHole::start();
    let exporter = exporter_with(&format!("  - {{name: cache, kind: redis, address: 'redis://{}'}}\n", node.addr()));
    let seed = format!("127.0.0.1:{}", node.port());
    let entries = discover(&exporter, "cache");
    assert_eq!(members(&entries), vec![seed.clone()], "{entries:?}");
    assert!(entries.iter().all(|(_, l)| !l.contains_key("set")), "no set label for Redis: {entries:?}");

    let m = exporter.scrape(&format!("/probe?target=cache&member={seed}"));
    assert_eq!(m.expect("redis_up", &[]), 1.0, "{}", m.text);
    let member_target = format!("cache@{seed}");
    assert_eq!(
        m.expect("tenderly_exporter_collector_success", &[("target", &member_target), ("collector", "redis")]),
        1.0
    );
    let resp = exporter.get(&format!("/probe?target=cache&member=127.0.0.1:{}", canary.port));
    assert_eq!(resp.status, 400, "{}", resp.body);
    canary.assert_untouched();
}

#[test]
fn redis_primary_discover_lists_its_replicas() {
    let primary = RedisServer::start(RedisOptions::default());
    let replica =
        RedisServer::start(RedisOptions { replica_of: Some((primary.port(), None)), ..RedisOptions::default() });
    let exporter = exporter_with(&format!("  - {{name: main, kind: redis, address: 'redis://{}'}}\n", primary.addr()));
    let seed = format!("127.0.0.1:{}", primary.port());
    let replica_member = format!("127.0.0.1:{}", replica.port());
    let mut listed = Vec::new();
    wait_until(Duration::from_secs(15), "the replica to show in INFO replication", || {
        listed = members(&discover(&exporter, "main"));
        listed.contains(&replica_member)
    });
    assert_eq!(listed[0], seed);
    let m: Exposition = exporter.scrape(&format!("/probe?target=main&member={replica_member}"));
    assert_eq!(m.expect("redis_up", &[]), 1.0, "{}", m.text);
}
