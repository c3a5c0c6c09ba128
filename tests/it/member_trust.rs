//! Finding 2 of issue 9: a target's credentials follow only addresses the
//! operator allowed, never what a server merely advertises.
//!
//! - A fake replica registered on a real `redis-server` with `REPLCONF
//!   ip-address` + `listening-port` + `PSYNC` by an application user: listed by
//!   `/discover` as untrusted, `/probe?member=` refuses it (400) and the canary
//!   listening there is never connected to.
//! - A hostile `CLUSTER NODES` advertising a master elsewhere: the key-family
//!   scan never connects there.
//! - A hostile `hello.hosts`: no member probe and no SASL payload reaches the
//!   injected host, whether through `/probe?member=` or through the driver's
//!   own replica-set discovery; link-local and metadata names are refused.
//!
//! Each test has a positive control (the same setup with the address allowed
//! in `members_allowed`) that shows the canary does get contacted then, so the
//! refusal is the policy's doing and the test could fail. Canaries listen on
//! 127.0.0.2, outside "the seed's host" (127.0.0.1) that is trusted by default.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use mongodb::bson::doc;
use tenderly_exporter::config::{RedisOptions as Connection, RedisTarget, Secret};
use tenderly_exporter::tenderly::keys::{KeyFamiliesConfig, KeyScanner};
use tenderly_exporter::trust::MemberAllowList;
use tokio::time::Instant;

use crate::support::exporter::TestExporter;
use crate::support::mongo_replay::{ReplayServer, Scenario};
use crate::support::{private_temp_dir, wait_until, BlackHole, RedisOptions, RedisServer, RespConn};

type Entry = (Vec<String>, serde_json::Map<String, serde_json::Value>);

/// An exporter whose `--config.file` holds `targets_yaml`, with `env` for `password_env`.
fn exporter_with(targets_yaml: &str, env: &[(&str, &str)]) -> TestExporter {
    let dir = private_temp_dir("trust");
    let path = dir.join("targets.yml");
    std::fs::write(&path, format!("targets:\n{targets_yaml}")).expect("write targets.yml");
    let exporter = TestExporter::start(&["--config.file", path.to_str().expect("utf-8 temp path")], env);
    let _ = std::fs::remove_dir_all(&dir);
    exporter
}

fn discover(exporter: &TestExporter, name: &str) -> Vec<Entry> {
    let resp = exporter.get(&format!("/discover?target={name}"));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let json: serde_json::Value = serde_json::from_str(&resp.body).expect("http_sd JSON");
    json.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let targets = e["targets"].as_array().expect("targets").iter().map(|t| t.to_string()).collect();
            (targets, e["labels"].as_object().expect("labels").clone())
        })
        .collect()
}

/// The `__meta_tenderly_member_trusted` label of `member` in a discovery, if listed.
fn trusted(entries: &[Entry], member: &str) -> Option<String> {
    entries
        .iter()
        .find(|(_, l)| l["__param_member"] == member)
        .map(|(_, l)| l["__meta_tenderly_member_trusted"].as_str().expect("trusted label").to_string())
}

fn accepted(canary: &BlackHole) -> usize {
    canary.accepted.load(Ordering::SeqCst)
}

// ---- Redis: a replica registered by an application user ----------------------

#[test]
fn fake_replica_registered_with_replconf_is_untrusted_and_never_gets_the_password() {
    let seed_password = "seed-exporter-pw-7f3a";
    let server = RedisServer::start(RedisOptions {
        password: Some(seed_password.into()),
        // An application user that may speak the replication protocol, nothing else.
        acl_lines: vec!["user app on >app-pw -@all +replconf +psync +ping".into()],
        ..RedisOptions::default()
    });
    let canary = BlackHole::start_on("127.0.0.2");
    let fake = format!("127.0.0.2:{}", canary.port);

    // The attack: register a replica that "listens" at the canary.
    let mut attacker = RespConn::connect(&server.addr()).expect("connect as app");
    attacker.auth(Some("app"), "app-pw").expect("AUTH app");
    let port = canary.port.to_string();
    for args in [vec!["REPLCONF", "listening-port", port.as_str()], vec!["REPLCONF", "ip-address", "127.0.0.2"]] {
        let reply = attacker.command(&args).expect("REPLCONF");
        assert!(!reply.is_error(), "{args:?}: {}", reply.render());
    }
    attacker.command(&["PSYNC", "?", "-1"]).expect("PSYNC");
    wait_until(Duration::from_secs(10), "the fake replica in INFO replication", || {
        server.cli(&["INFO", "replication"]).contains(&format!("ip=127.0.0.2,port={}", canary.port))
    });

    let target = format!(
        "  - {{name: main, kind: redis, address: 'redis://{}', password_env: MAIN_PW, timeout: 1s}}\n",
        server.addr()
    );
    let exporter = exporter_with(&target, &[("MAIN_PW", seed_password)]);
    let entries = discover(&exporter, "main");
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            exporter
                .get_with(&format!("/probe?target=main&member={fake}"), &[("X-Prometheus-Scrape-Timeout-Seconds", "1")])
                .status
        })
        .collect();
    // First the canary: the old code connected and sent `AUTH <password>` here.
    canary.assert_untouched();
    assert_eq!(statuses, [400, 400, 400]);
    assert_eq!(trusted(&entries, &server.addr()).as_deref(), Some("true"), "{entries:?}");
    assert_eq!(trusted(&entries, &fake).as_deref(), Some("false"), "listed, untrusted: {entries:?}");
    // The seed itself is still scraped as a member.
    let m = exporter.scrape(&format!("/probe?target=main&member={}", server.addr()));
    assert_eq!(m.expect("redis_up", &[]), 1.0, "{}", m.text);
    canary.assert_untouched();

    // Positive control: allowed explicitly, the same member is contacted.
    let allowed = format!(
        "  - {{name: main, kind: redis, address: 'redis://{}', password_env: MAIN_PW, timeout: 1s, \
         members_allowed: {{hosts: ['127.0.0.2']}}}}\n",
        server.addr()
    );
    let exporter = exporter_with(&allowed, &[("MAIN_PW", seed_password)]);
    assert_eq!(trusted(&discover(&exporter, "main"), &fake).as_deref(), Some("true"));
    let resp = exporter.get(&format!("/probe?target=main&member={fake}"));
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(accepted(&canary) >= 1, "the allowed member was not contacted: the refusal above proves nothing");
    drop(attacker);
}

// ---- Redis cluster: a hostile CLUSTER NODES ------------------------------------

/// A fake cluster node that speaks just enough RESP: `AUTH`, `INFO`
/// (`redis_mode:cluster`), `CLUSTER NODES` (the given text), an empty `SCAN`.
/// Returns its port; it serves until the test process ends.
fn hostile_cluster_node(nodes: impl Fn(u16) -> String + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let nodes = std::sync::Arc::new(nodes);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let nodes = std::sync::Arc::clone(&nodes);
            std::thread::spawn(move || serve_resp(stream, &nodes(port)));
        }
    });
    port
}

fn serve_resp(stream: TcpStream, cluster_nodes: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let bulk = |s: &str| format!("${}\r\n{s}\r\n", s.len());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let Some(n) = line.trim().strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) else { return };
        let mut args = Vec::new();
        for _ in 0..n {
            let mut len = String::new();
            let mut arg = String::new();
            if reader.read_line(&mut len).unwrap_or(0) == 0 || reader.read_line(&mut arg).unwrap_or(0) == 0 {
                return;
            }
            args.push(arg.trim_end().to_ascii_uppercase());
        }
        let reply = match args.first().map(String::as_str) {
            Some("INFO") => bulk("# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n"),
            Some("CLUSTER") => bulk(cluster_nodes),
            Some("SCAN") => "*2\r\n$1\r\n0\r\n*0\r\n".to_string(),
            Some("PING") => "+PONG\r\n".to_string(),
            _ => "+OK\r\n".to_string(),
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn scan_target(port: u16, allowed: MemberAllowList) -> RedisTarget {
    RedisTarget {
        members_allowed: allowed,
        ..RedisTarget::plain(Connection::new(
            format!("redis://127.0.0.1:{port}"),
            None,
            Some(Secret::new("cluster-pw-must-stay-home")),
        ))
    }
}

#[test]
fn key_scan_never_follows_cluster_nodes_to_a_master_that_is_not_allowed() {
    let canary = BlackHole::start_on("127.0.0.2");
    let canary_port = canary.port;
    let seed = hostile_cluster_node(move |own| {
        format!(
            "0000000000000000000000000000000000000001 127.0.0.1:{own}@1 myself,master - 0 0 1 connected 0-8191\n\
             0000000000000000000000000000000000000002 127.0.0.2:{canary_port}@2 master - 0 0 2 connected 8192-16383\n\
             0000000000000000000000000000000000000003 169.254.169.254:6379@3 master - 0 0 3 connected\n"
        )
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = KeyFamiliesConfig::default();
    let scanner = key_scanner("hostile", scan_target(seed, MemberAllowList::default()), config.clone());
    for _ in 0..5 {
        rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(2))).expect("a step on the seed");
        if scanner.passes() >= 1 {
            break;
        }
    }
    assert_eq!(scanner.passes(), 1, "the pass over the allowed master completes");
    assert_eq!(scanner.nodes_refused(), 1, "the master at 127.0.0.2 is counted as refused");
    canary.assert_untouched();

    // Positive control: with 127.0.0.2 allowed, the scan does go there.
    let allowed = MemberAllowList::parse(&[], &["127.0.0.2/32".to_string()], &[]).expect("valid");
    let scanner = key_scanner("allowed", scan_target(seed, allowed), config);
    let _ = rt.block_on(scanner.advance(Instant::now() + Duration::from_secs(1)));
    wait_until(Duration::from_secs(3), "the allowed master to be contacted", || accepted(&canary) >= 1);
    assert_eq!(scanner.nodes_refused(), 0);
}

#[test]
fn default_cluster_target_scrapes_and_discovery_never_follow_a_hostile_cluster_nodes() {
    let canary = BlackHole::start_on("127.0.0.2");
    let canary_port = canary.port;
    let seed = hostile_cluster_node(move |own| {
        format!(
            "0000000000000000000000000000000000000001 127.0.0.1:{own}@1 myself,master - 0 0 1 connected 0-8191\n\
             0000000000000000000000000000000000000002 127.0.0.2:{canary_port}@2 master - 0 0 2 connected 8192-16383\n"
        )
    });
    let exporter = exporter_with(
        &format!(
            "  - {{name: cache, kind: redis, address: 'redis://127.0.0.1:{seed}', password_env: CACHE_PW, default: true, \
             timeout: 1s}}\n"
        ),
        &[("CACHE_PW", "cluster-pw-must-stay-home")],
    );
    // Every /metrics steps the key scan in the background (no request names the master).
    for _ in 0..4 {
        let _ = exporter.get_with("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "1")]);
        std::thread::sleep(Duration::from_millis(100));
    }
    canary.assert_untouched(); // the key scan did not go there
    let entries = discover(&exporter, "cache");
    let member = format!("127.0.0.2:{canary_port}");
    let status = exporter.get(&format!("/probe?target=cache&member={member}")).status;
    canary.assert_untouched();
    assert_eq!(status, 400);
    assert_eq!(trusted(&entries, &member).as_deref(), Some("false"), "{entries:?}");
    assert_eq!(trusted(&entries, &format!("127.0.0.1:{seed}")).as_deref(), Some("true"), "{entries:?}");
}

// ---- MongoDB: a hostile hello.hosts --------------------------------------------

#[test]
fn member_probe_never_contacts_hosts_injected_into_hello() {
    let seed = ReplayServer::start(Scenario::Primary).expect("replay server");
    let canary = BlackHole::start_on("127.0.0.2");
    let seed_addr = format!("127.0.0.1:{}", seed.port());
    let injected = format!("127.0.0.2:{}", canary.port);
    let link_local = ["169.254.169.254:27017", "metadata.google.internal:80", "[fe80::1]:27017", "2852039166:27017"];
    let mut hosts = vec![seed_addr.clone(), injected.clone()];
    hosts.extend(link_local.iter().map(|h| h.to_string()));
    seed.set_hello_fields(doc! {"hosts": hosts, "passives": [], "arbiters": []});

    let exporter = exporter_with(&format!("  - {{name: rs, kind: mongodb, address: '{}'}}\n", seed.uri()), &[]);
    let entries = discover(&exporter, "rs");
    let resp = exporter
        .get_with(&format!("/probe?target=rs&member={injected}"), &[("X-Prometheus-Scrape-Timeout-Seconds", "1")]);
    // First the canary: the old code connected to the injected host.
    canary.assert_untouched();
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(trusted(&entries, &seed_addr).as_deref(), Some("true"), "{entries:?}");
    assert_eq!(trusted(&entries, &injected).as_deref(), Some("false"), "{entries:?}");
    // Only checked after the canary: the old code would have connected to these.
    for member in link_local {
        assert_eq!(trusted(&entries, member).as_deref(), Some("false"), "{member}: {entries:?}");
        assert_eq!(exporter.get(&format!("/probe?target=rs&member={member}")).status, 400, "{member}");
    }

    // Even allowed, link-local and metadata addresses are refused.
    let everything = format!(
        "  - {{name: rs, kind: mongodb, address: '{}', members_allowed: {{cidrs: ['0.0.0.0/0', '::/0'], \
         dns_suffixes: [google.internal]}}}}\n",
        seed.uri()
    );
    let exporter = exporter_with(&everything, &[]);
    let entries = discover(&exporter, "rs");
    for member in link_local {
        assert_eq!(trusted(&entries, member).as_deref(), Some("false"), "{member}: {entries:?}");
        assert_eq!(exporter.get(&format!("/probe?target=rs&member={member}")).status, 400, "{member}");
    }
    // Positive control: the injected host, allowed by the CIDR, is contacted.
    assert_eq!(trusted(&entries, &injected).as_deref(), Some("true"));
    let resp = exporter
        .get_with(&format!("/probe?target=rs&member={injected}"), &[("X-Prometheus-Scrape-Timeout-Seconds", "1")]);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(accepted(&canary) >= 1, "the allowed member was not contacted: the refusal above proves nothing");
}

/// A replica-set URI: the driver's own discovery follows `hello.hosts`. A host
/// the seed advertises, claiming to be the primary, must not receive the
/// SASL PLAIN payload (the password in clear).
fn replset_sasl_reaches_injected_primary(allowed: &str) -> usize {
    let seed = ReplayServer::start(Scenario::Secondary).expect("seed");
    let canary = ReplayServer::start_on(Scenario::Primary, "127.0.0.2:0".parse().expect("addr")).expect("canary");
    let seed_addr = format!("127.0.0.1:{}", seed.port());
    let canary_addr = format!("127.0.0.2:{}", canary.port());
    let hosts = vec![seed_addr.clone(), canary_addr.clone()];
    let common = doc! {"setName": "rs0", "hosts": hosts, "passives": [], "arbiters": [], "primary": &canary_addr};
    let mut seed_hello = common.clone();
    seed_hello.extend(doc! {"me": &seed_addr, "isWritablePrimary": false, "secondary": true});
    seed.set_hello_fields(seed_hello);
    let mut canary_hello = common;
    canary_hello.extend(doc! {"me": &canary_addr, "isWritablePrimary": true, "secondary": false});
    canary.set_hello_fields(canary_hello);

    // PLAIN needs the user in the connection string; the password goes with it.
    let uri = format!(
        "mongodb://exporter:plain-text-password-in-sasl@{seed_addr}/?replicaSet=rs0&authMechanism=PLAIN&authSource=%24external"
    );
    let exporter = exporter_with(&format!("  - {{name: rs, kind: mongodb, address: '{uri}'{allowed}}}\n"), &[]);
    // Give the driver time to monitor the advertised host, then scrape.
    for _ in 0..2 {
        let _ = exporter.get_with("/probe?target=rs", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
    }
    let seen = canary.commands_received("saslStart");
    for body in &seen {
        // What the canary got is the password in clear: the attack is real.
        assert!(format!("{body:?}").contains("saslStart"));
    }
    seen.len()
}

#[test]
fn replica_set_discovery_never_authenticates_to_a_host_injected_into_hello() {
    assert_eq!(replset_sasl_reaches_injected_primary(""), 0, "SASL PLAIN reached the injected host");
    // Positive control: allowed, the injected primary is selected and gets SASL.
    assert!(
        replset_sasl_reaches_injected_primary(", members_allowed: {hosts: ['127.0.0.2']}") >= 1,
        "the allowed primary got no saslStart: the refusal above proves nothing"
    );
}

/// The key scanner the exporter would build for `target` (its connection and trust policy).
fn key_scanner(name: &str, target: RedisTarget, config: KeyFamiliesConfig) -> KeyScanner {
    KeyScanner::new(name, target.connection.clone(), target.member_policy(), config)
}
