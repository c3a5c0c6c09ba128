//! Checks of the live-test harness itself, so a failing exporter test can be
//! trusted to be about the exporter and not about the server it was given.

use std::time::Duration;

use crate::support::redis_server::info_field;
use crate::support::{populate_tenderly, wait_until, RedisOptions, RedisServer, RespConn};

#[test]
fn password_server_accepts_auth_and_refuses_unauthenticated_commands() {
    let server = RedisServer::start(RedisOptions {
        password: Some("harness \"pw\" with spaces".into()),
        acl_lines: vec!["user exporter on >exporter-pw ~* -@all +ping +info".into()],
        ..RedisOptions::default()
    });
    assert_eq!(server.cli(&["PING"]), "PONG");
    assert!(server.url().starts_with("redis://:harness%20%22pw%22%20with%20spaces@127.0.0.1:"));

    let mut anonymous = RespConn::connect(&server.addr()).expect("connect without AUTH");
    let refused = anonymous.command(&["PING"]).expect("a reply to PING");
    assert!(refused.is_error(), "PING without AUTH must fail, got {refused:?}");
    assert!(refused.render().starts_with("NOAUTH"), "got {:?}", refused.render());

    let mut exporter = RespConn::connect(&server.addr()).expect("connect as exporter");
    exporter.auth(Some("exporter"), "exporter-pw").expect("AUTH as the least-privilege user");
    let info = exporter.call(&["INFO", "server"]).expect("INFO is allowed").render();
    assert_eq!(info_field(&info, "tcp_port"), Some(server.port().to_string()));
    let denied = exporter.command(&["GET", "tenderly:session:x"]).expect("a reply to GET");
    assert!(denied.render().starts_with("NOPERM"), "GET must be denied, got {denied:?}");
}

#[test]
fn replica_reaches_master_link_up() {
    let master = RedisServer::start(RedisOptions::with_password("master-pw"));
    let replica = RedisServer::start(RedisOptions {
        password: Some("replica-pw".into()),
        replica_of: Some((master.port(), Some("master-pw".into()))),
        ..RedisOptions::default()
    });
    wait_until(Duration::from_secs(10), "master_link_status:up on the replica", || {
        replica.info_field("replication", "master_link_status").as_deref() == Some("up")
    });
    assert_eq!(replica.info_field("replication", "role").as_deref(), Some("slave"));
    assert_eq!(master.info_field("replication", "connected_slaves").as_deref(), Some("1"));
}

#[test]
fn cluster_node_reaches_state_ok_with_all_slots() {
    let node = RedisServer::start(RedisOptions { cluster: true, ..RedisOptions::default() });
    let info = node.cli(&["CLUSTER", "INFO"]);
    assert_eq!(info_field(&info, "cluster_state").as_deref(), Some("ok"));
    assert_eq!(info_field(&info, "cluster_slots_assigned").as_deref(), Some("16384"));
}

#[test]
fn populate_tenderly_writes_the_capture_proportions_with_ttls() {
    let server = RedisServer::start(RedisOptions::with_password("pw"));
    let counts = populate_tenderly(&server, 310);
    assert_eq!((counts.session, counts.jwt, counts.ratelimit, counts.user, counts.otp), (200, 50, 30, 20, 10));
    assert_eq!(server.cli(&["DBSIZE"]), "310");
    let keyspace = server.cli(&["INFO", "keyspace"]);
    let db0 = info_field(&keyspace, "db0").expect("db0 line in INFO keyspace");
    assert!(db0.starts_with("keys=310,expires=290,"), "got {db0}");
    let sessions = server.cli(&["SCAN", "0", "MATCH", "tenderly:session:*", "COUNT", "1000"]);
    let first_session = sessions.lines().nth(1).expect("SCAN returns session keys");
    let ttl: i64 = server.cli(&["TTL", first_session]).parse().expect("TTL is an integer");
    assert!((3500..=3600).contains(&ttl), "session TTL {ttl}");
    assert_eq!(server.cli(&["TTL", "tenderly:user:test-user-000000"]), "-1");
}

#[test]
fn kill_and_restart_keep_the_port() {
    let mut server = RedisServer::start(RedisOptions::with_password("pw"));
    let port = server.port();
    server.kill();
    assert!(RespConn::connect(&server.addr()).is_err(), "the killed server must refuse connections");
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.cli(&["PING"]), "PONG");
}
