//! Self-tests of the MongoDB replay server (support/mongo_replay.rs), driven by
//! the real `mongodb` driver: if these pass, a collector test that fails against
//! the replay server is failing on the collector, not on the fake.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::Client;

use crate::support::mongo_replay::{
    fixture_doc, synthesized_db_stats, Fault, ReplayServer, Scenario, APP_DB, OPLOG_WINDOW_SECS,
    PRIMARY_DELAYED_MEMBER_SECS,
};

/// Bound on every driver call in these tests that is expected to succeed or fail
/// on its own; a hang fails the test instead of wedging the suite.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime for the test")
}

fn start(scenario: Scenario) -> ReplayServer {
    ReplayServer::start(scenario).unwrap_or_else(|e| panic!("starting the {scenario} replay server: {e}"))
}

async fn client(server: &ReplayServer) -> Client {
    let uri = format!("{}&serverSelectionTimeoutMS=2000", server.uri());
    Client::with_uri_str(&uri).await.expect("the replay URI parses")
}

async fn run(client: &Client, db: &str, command: Document) -> mongodb::error::Result<Document> {
    match tokio::time::timeout(CALL_TIMEOUT, client.database(db).run_command(command)).await {
        Ok(result) => result,
        Err(_) => panic!("driver call on {db} did not finish within {CALL_TIMEOUT:?}"),
    }
}

fn code_of(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        mongodb::error::ErrorKind::Command(command) => Some(command.code),
        _ => None,
    }
}

fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("a cursor reply")
        .iter()
        .map(|d| d.as_document().expect("batch entries are documents").clone())
        .collect()
}

#[test]
fn server_status_serves_the_fixture_for_every_scenario() {
    let rt = runtime();
    for scenario in Scenario::ALL {
        let server = start(scenario);
        let expected = fixture_doc(scenario.server_status_fixture()).expect("fixture parses");
        rt.block_on(async {
            let client = client(&server).await;
            let status = run(&client, "admin", doc! { "serverStatus": 1 }).await.expect("serverStatus succeeds");
            assert_eq!(status.get("uptime"), expected.get("uptime"), "{scenario}: uptime");
            assert_eq!(status.get_str("version"), expected.get_str("version"), "{scenario}: version");
            let build = run(&client, "admin", doc! { "buildInfo": 1 }).await.expect("buildInfo succeeds");
            assert_eq!(build.get_str("version"), expected.get_str("version"), "{scenario}: buildInfo version");
            run(&client, "admin", doc! { "ping": 1 }).await.expect("ping succeeds");
            let opts = run(&client, "admin", doc! { "getCmdLineOpts": 1 }).await.expect("getCmdLineOpts succeeds");
            assert!(opts.get_array("argv").is_ok(), "{scenario}: getCmdLineOpts has argv");
        });
        assert!(server.command_count("serverStatus") >= 1);
    }
}

#[test]
fn driver_handshake_is_op_msg_is_master_then_polled_hello() {
    let rt = runtime();
    let server = start(Scenario::Standalone);
    rt.block_on(async {
        // 500 ms is the driver's minimum heartbeat; the monitor polls because the
        // hello reply carries no topologyVersion.
        let uri = format!("{}&serverSelectionTimeoutMS=2000&heartbeatFrequencyMS=500", server.uri());
        let client = Client::with_uri_str(&uri).await.expect("the replay URI parses");
        run(&client, "admin", doc! { "ping": 1 }).await.expect("ping succeeds");
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.command_count("hello") == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let seen = server.commands_seen();
    // Every new connection starts with the legacy name (in an OP_MSG: there is no
    // OP_QUERY in driver 3.x); the monitor switches to `hello` after `helloOk: true`.
    assert_eq!(seen.first().map(|(name, db)| (name.as_str(), db.as_str())), Some(("isMaster", "admin")), "{seen:?}");
    assert!(seen.iter().any(|(name, _)| name == "hello"), "the monitor polls with hello: {seen:?}");
    assert!(server.connections_accepted() >= 2, "a monitoring and an operation connection");
}

#[test]
fn hello_reports_the_role_of_each_scenario() {
    let rt = runtime();
    let cases: [(Scenario, &str, bool); 6] = [
        (Scenario::Standalone, "", true),
        (Scenario::Primary, "my-rs", true),
        (Scenario::Secondary, "shard1ReplSet", false),
        (Scenario::Arbiter, "my-rs", false),
        (Scenario::Mongos, "", true),
        (Scenario::NoPrimary, "replication", false),
    ];
    for (scenario, set_name, writable) in cases {
        let server = start(scenario);
        rt.block_on(async {
            let client = client(&server).await;
            let hello = run(&client, "admin", doc! { "hello": 1 }).await.expect("hello succeeds");
            assert_eq!(hello.get_bool("isWritablePrimary"), Ok(writable), "{scenario}");
            assert_eq!(hello.get_str("setName").unwrap_or(""), set_name, "{scenario}");
            assert!(hello.get("topologyVersion").is_none(), "{scenario}: polling, not streaming");
            assert_eq!(hello.get_i32("maxBsonObjectSize"), Ok(16_777_216));
            let wire = hello.get_i32("maxWireVersion").expect("maxWireVersion");
            assert_eq!(wire, if scenario == Scenario::NoPrimary { 17 } else { 25 }, "{scenario}");
            match scenario {
                Scenario::Mongos => assert_eq!(hello.get_str("msg"), Ok("isdbgrid")),
                Scenario::Arbiter => assert_eq!(hello.get_bool("arbiterOnly"), Ok(true)),
                Scenario::NoPrimary => assert!(hello.get("primary").is_none()),
                Scenario::Primary => {
                    let hosts = hello.get_array("hosts").expect("hosts");
                    assert!(!hosts.contains(&Bson::from("mongo3:30003")), "hidden member is not in hosts");
                }
                _ => {}
            }
        });
    }
}

#[test]
fn repl_set_get_status_per_role() {
    let rt = runtime();
    let expected_members =
        [(Scenario::Primary, 3usize), (Scenario::Secondary, 3), (Scenario::Arbiter, 4), (Scenario::NoPrimary, 3)];
    for (scenario, members) in expected_members {
        let server = start(scenario);
        rt.block_on(async {
            let client = client(&server).await;
            let status = run(&client, "admin", doc! { "replSetGetStatus": 1 }).await.expect("replSetGetStatus");
            assert_eq!(status.get_array("members").map(Vec::len), Ok(members), "{scenario}");
            let config = run(&client, "admin", doc! { "replSetGetConfig": 1 }).await.expect("replSetGetConfig");
            let config_members = config.get_document("config").and_then(|c| c.get_array("members")).expect("members");
            assert_eq!(config_members.len(), members, "{scenario}: config members");
        });
    }
    let fixture = fixture_doc("replSetGetStatus-primary-lagging-8.0.4.json").expect("fixture parses");
    let fixture_members = fixture.get_array("members").map(Vec::len);
    assert_eq!(fixture_members, Ok(3), "the Primary scenario serves the fixture's members");

    for (scenario, code) in [(Scenario::Standalone, 76), (Scenario::Mongos, 59)] {
        let server = start(scenario);
        rt.block_on(async {
            let client = client(&server).await;
            let error = run(&client, "admin", doc! { "replSetGetStatus": 1 }).await.expect_err("no replica set");
            assert_eq!(code_of(&error), Some(code), "{scenario}: {error}");
        });
    }
}

#[test]
fn primary_config_has_one_hidden_delayed_member() {
    let rt = runtime();
    let server = start(Scenario::Primary);
    rt.block_on(async {
        let client = client(&server).await;
        let reply = run(&client, "admin", doc! { "replSetGetConfig": 1 }).await.expect("replSetGetConfig");
        let members = reply.get_document("config").and_then(|c| c.get_array("members")).expect("members");
        let delayed: Vec<&Document> = members
            .iter()
            .filter_map(Bson::as_document)
            .filter(|m| m.get_i64("secondaryDelaySecs").unwrap_or(0) > 0)
            .collect();
        assert_eq!(delayed.len(), 1);
        assert_eq!(delayed[0].get_str("host"), Ok("mongo3:30003"));
        assert_eq!(delayed[0].get_bool("hidden"), Ok(true));
        assert_eq!(delayed[0].get_f64("priority"), Ok(0.0));
        assert_eq!(delayed[0].get_i64("secondaryDelaySecs"), Ok(PRIMARY_DELAYED_MEMBER_SECS));
    });
}

#[test]
fn oplog_window_is_exactly_one_day() {
    let rt = runtime();
    for scenario in [Scenario::Primary, Scenario::Secondary, Scenario::NoPrimary] {
        let server = start(scenario);
        rt.block_on(async {
            let client = client(&server).await;
            let mut ends = Vec::new();
            for direction in [1, -1] {
                let reply = run(
                    &client,
                    "local",
                    doc! {
                        "find": "oplog.rs", "sort": { "$natural": direction }, "limit": 1,
                        "projection": { "ts": 1, "wall": 1 },
                    },
                )
                .await
                .expect("oplog find");
                let batch = first_batch(&reply);
                assert_eq!(batch.len(), 1, "{scenario}");
                assert!(batch[0].get("op").is_none(), "projection applied");
                ends.push(batch[0].get_timestamp("ts").expect("ts"));
            }
            assert_eq!(ends[1].time - ends[0].time, OPLOG_WINDOW_SECS, "{scenario}");

            let stats = run(&client, "local", doc! { "collStats": "oplog.rs" }).await.expect("collStats");
            assert_eq!(stats.get_i32("size"), Ok(596_844));
            assert_eq!(stats.get_i64("maxSize"), Ok(3_810_627_072));
            let agg = run(
                &client,
                "local",
                doc! { "aggregate": "oplog.rs", "pipeline": [{ "$collStats": { "storageStats": {} } }], "cursor": {} },
            )
            .await
            .expect("$collStats");
            let batch = first_batch(&agg);
            assert_eq!(batch[0].get_document("storageStats").and_then(|s| s.get_i32("count")), Ok(1911));
        });
    }
    let server = start(Scenario::Primary);
    let status = fixture_doc("replSetGetStatus-primary-lagging-8.0.4.json").expect("fixture parses");
    let applied = status.get_document("optimes").and_then(|o| o.get_document("appliedOpTime")).expect("optimes");
    rt.block_on(async {
        let client = client(&server).await;
        let reply =
            run(&client, "local", doc! { "find": "oplog.rs", "sort": { "$natural": -1 }, "limit": 1 }).await.unwrap();
        assert_eq!(first_batch(&reply)[0].get_timestamp("ts"), applied.get_timestamp("ts"), "newest = appliedOpTime");
    });
}

#[test]
fn oplog_reads_fail_like_the_real_roles() {
    let rt = runtime();
    for (scenario, code) in
        [(Scenario::Mongos, Some(20)), (Scenario::Arbiter, Some(13436)), (Scenario::Standalone, None)]
    {
        let server = start(scenario);
        rt.block_on(async {
            let client = client(&server).await;
            let result = run(&client, "local", doc! { "find": "oplog.rs", "limit": 1 }).await;
            match code {
                Some(code) => assert_eq!(code_of(&result.expect_err("fails")), Some(code), "{scenario}"),
                None => assert!(first_batch(&result.expect("empty result")).is_empty(), "{scenario}"),
            }
        });
    }
}

#[test]
fn databases_db_stats_and_profile_levels() {
    let rt = runtime();
    let server = start(Scenario::Primary);
    rt.block_on(async {
        let client = client(&server).await;
        let names = client.list_database_names().await.expect("listDatabases nameOnly");
        assert_eq!(names, ["admin", "config", "local", APP_DB]);
        let full = run(&client, "admin", doc! { "listDatabases": 1 }).await.expect("listDatabases");
        assert_eq!(full.get_array("databases").map(Vec::len), Ok(4));

        let stats = run(&client, APP_DB, doc! { "dbStats": 1 }).await.expect("dbStats");
        assert_eq!(stats, synthesized_db_stats(APP_DB));
        assert_eq!(stats.get_i64("objects"), Ok(250_000));
        assert_eq!(stats.get_f64("totalSize"), Ok(57_344_000.0));

        let app = run(&client, APP_DB, doc! { "profile": -1 }).await.expect("profile");
        assert_eq!(app.get_i32("was"), Ok(1));
        assert_eq!(app.get_i32("slowms"), Ok(100));
        let admin = run(&client, "admin", doc! { "profile": -1 }).await.expect("profile");
        assert_eq!(admin.get_i32("was"), Ok(0));

        let error = run(&client, APP_DB, doc! { "listDatabases": 1 }).await.expect_err("admin only");
        assert_eq!(code_of(&error), Some(13));
    });
}

#[test]
fn profile_high_water_mark_returns_only_newer_docs() {
    let rt = runtime();
    let server = start(Scenario::Standalone);
    rt.block_on(async {
        let client = client(&server).await;
        let query = |since: DateTime| {
            doc! { "find": "system.profile", "filter": { "ts": { "$gt": since } }, "sort": { "ts": 1 }, "limit": 100 }
        };
        let all = first_batch(&run(&client, APP_DB, query(DateTime::from_millis(0))).await.expect("profile find"));
        assert_eq!(all.len(), 4);
        let ts: Vec<DateTime> = all.iter().map(|d| *d.get_datetime("ts").expect("ts")).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "sorted by ts: {ts:?}");
        assert!(all.iter().all(|d| d.get_str("ns").is_ok_and(|ns| ns.starts_with("tenderly."))));

        let high_water = ts[1];
        let newer = first_batch(&run(&client, APP_DB, query(high_water)).await.expect("profile find"));
        assert_eq!(newer.len(), 2, "only the two documents after the mark");

        let later = DateTime::from_millis(ts[3].timestamp_millis() + 1_000);
        server.append_profile_docs(
            APP_DB,
            vec![doc! { "op": "query", "ns": "tenderly.users", "millis": 250, "ts": later }],
        );
        let newest = first_batch(&run(&client, APP_DB, query(ts[3])).await.expect("profile find"));
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].get_i32("millis"), Ok(250));

        let other = first_batch(&run(&client, "admin", query(DateTime::from_millis(0))).await.expect("profile find"));
        assert!(other.is_empty(), "only the app database is profiled");
    });
}

#[test]
fn current_op_reports_scripted_ops() {
    let rt = runtime();
    let server = start(Scenario::Primary);
    rt.block_on(async {
        let client = client(&server).await;
        let pipeline = |idle: bool| doc! { "aggregate": 1, "pipeline": [{ "$currentOp": { "allUsers": true, "idleConnections": idle } }], "cursor": {} };
        let active = first_batch(&run(&client, "admin", pipeline(false)).await.expect("$currentOp"));
        assert_eq!(active.len(), 2);
        assert!(active.iter().all(|op| op.get_i64("secs_running").is_ok() && op.get_i64("microsecs_running").is_ok()));
        let all = first_batch(&run(&client, "admin", pipeline(true)).await.expect("$currentOp"));
        assert_eq!(all.len(), 3);

        let matched = doc! { "aggregate": 1, "pipeline": [{ "$currentOp": {} }, { "$match": { "secs_running": { "$gte": 10 } } }], "cursor": {} };
        assert_eq!(first_batch(&run(&client, "admin", matched).await.expect("$currentOp")).len(), 1);

        server.set_current_ops(vec![doc! { "op": "command", "active": true, "secs_running": 600i64, "microsecs_running": 600_000_000i64 }]);
        let replaced = first_batch(&run(&client, "admin", pipeline(false)).await.expect("$currentOp"));
        assert_eq!(replaced.len(), 1);
        assert_eq!(replaced[0].get_i64("secs_running"), Ok(600));
    });
}

#[test]
fn unknown_commands_and_authentication_fail_like_a_server() {
    let rt = runtime();
    let server = start(Scenario::Standalone);
    rt.block_on(async {
        let client = client(&server).await;
        let error = run(&client, "admin", doc! { "frobnicate": 1 }).await.expect_err("unknown command");
        assert_eq!(code_of(&error), Some(59));

        let uri = format!(
            "mongodb://exporter:secret@127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=2000",
            server.port()
        );
        let with_auth = Client::with_uri_str(&uri).await.expect("URI parses");
        let error = run(&with_auth, "admin", doc! { "ping": 1 }).await.expect_err("no users on the replay server");
        assert!(matches!(error.kind.as_ref(), mongodb::error::ErrorKind::Authentication { .. }), "{error}");
    });
    assert!(server.command_count("saslStart") >= 1);
}

#[test]
fn delay_fault_makes_a_short_deadline_fail_on_time() {
    let rt = runtime();
    let server = start(Scenario::Primary);
    rt.block_on(async {
        let client = client(&server).await;
        run(&client, "admin", doc! { "ping": 1 }).await.expect("warm-up ping");
        server.set_fault(Fault::Delay(Duration::from_secs(2)));
        let started = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_millis(500),
            client.database("admin").run_command(doc! { "serverStatus": 1 }),
        )
        .await;
        let elapsed = started.elapsed();
        assert!(result.is_err(), "the 500 ms deadline fires before the 2 s delay");
        assert!(elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(1_500), "{elapsed:?}");

        server.set_fault(Fault::None);
        run(&client, "admin", doc! { "serverStatus": 1 }).await.expect("served again without the fault");
    });
}

#[test]
fn error_reply_fault_gives_unauthorized_for_one_or_all_commands() {
    let rt = runtime();
    let server = start(Scenario::Primary);
    rt.block_on(async {
        let client = client(&server).await;
        server.set_command_fault("serverStatus", Fault::unauthorized());
        let error = run(&client, "admin", doc! { "serverStatus": 1 }).await.expect_err("unauthorized");
        assert_eq!(code_of(&error), Some(13));
        run(&client, "admin", doc! { "replSetGetStatus": 1 }).await.expect("other commands unaffected");

        server.clear_faults();
        server.set_fault(Fault::unauthorized());
        let error = run(&client, "admin", doc! { "replSetGetStatus": 1 }).await.expect_err("unauthorized");
        assert_eq!(code_of(&error), Some(13));

        server.clear_faults();
        run(&client, "admin", doc! { "serverStatus": 1 }).await.expect("served again");
    });
}

#[test]
fn drop_mid_reply_and_malformed_bson_are_driver_errors_not_hangs() {
    let rt = runtime();
    for fault in [Fault::DropMidReply, Fault::MalformedBson] {
        let server = start(Scenario::Primary);
        rt.block_on(async {
            let client = client(&server).await;
            run(&client, "admin", doc! { "ping": 1 }).await.expect("warm-up ping");
            server.set_fault(fault.clone());
            let started = Instant::now();
            let error = run(&client, "admin", doc! { "serverStatus": 1 }).await.expect_err("a broken reply");
            assert!(code_of(&error).is_none(), "{fault:?} is a transport error, not a command error: {error}");
            assert!(started.elapsed() < Duration::from_secs(5), "{fault:?} failed fast");

            server.set_fault(Fault::None);
            let accepted = server.connections_accepted();
            run(&client, "admin", doc! { "serverStatus": 1 }).await.expect("the same client recovers");
            let fresh = client_for_new_connection(&server).await;
            run(&fresh, "admin", doc! { "serverStatus": 1 }).await.expect("a new client is served");
            assert!(server.connections_accepted() > accepted, "new connections were accepted");
        });
    }
}

async fn client_for_new_connection(server: &ReplayServer) -> Client {
    client(server).await
}

#[test]
fn refuse_handshake_fails_server_selection_then_recovers() {
    let rt = runtime();
    let server = start(Scenario::Standalone);
    server.set_fault(Fault::RefuseHandshake);
    rt.block_on(async {
        let refused = client(&server).await;
        let started = Instant::now();
        let error = run(&refused, "admin", doc! { "ping": 1 }).await.expect_err("no handshake");
        assert!(matches!(error.kind.as_ref(), mongodb::error::ErrorKind::ServerSelection { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        server.set_fault(Fault::None);
        let fresh = client(&server).await;
        run(&fresh, "admin", doc! { "ping": 1 }).await.expect("served after the fault is cleared");
    });
}

/// Raw socket helpers for the wire-level tests the driver cannot exercise.
fn raw_connect(server: &ReplayServer) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect to the replay server");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("set read timeout");
    stream
}

fn bson_bytes(doc: &Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.to_writer(&mut bytes).expect("test documents serialize");
    bytes
}

fn framed(request_id: i32, op_code: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(16 + payload.len() as i32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&op_code.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads one reply; returns (responseTo, opCode, body) or None when the server closed.
fn read_reply(stream: &mut TcpStream) -> Option<(i32, i32, Vec<u8>)> {
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).ok()?;
    let length = i32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let mut body = vec![0u8; length.checked_sub(16)?];
    stream.read_exact(&mut body).ok()?;
    Some((
        i32::from_le_bytes(header[8..12].try_into().ok()?),
        i32::from_le_bytes(header[12..16].try_into().ok()?),
        body,
    ))
}

fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn legacy_op_query_is_master_gets_op_reply() {
    let server = start(Scenario::Mongos);
    let mut stream = raw_connect(&server);
    let mut payload = Vec::new();
    payload.extend_from_slice(&0i32.to_le_bytes());
    payload.extend_from_slice(b"admin.$cmd\0");
    payload.extend_from_slice(&0i32.to_le_bytes());
    payload.extend_from_slice(&(-1i32).to_le_bytes());
    payload.extend_from_slice(&bson_bytes(&doc! { "isMaster": 1, "helloOk": true }));
    stream.write_all(&framed(77, 2004, &payload)).expect("send OP_QUERY");
    let (response_to, op_code, body) = read_reply(&mut stream).expect("an OP_REPLY");
    assert_eq!((response_to, op_code), (77, 1));
    assert_eq!(i32::from_le_bytes(body[16..20].try_into().unwrap()), 1, "numberReturned");
    let reply = Document::from_reader(&body[20..]).expect("reply document");
    assert_eq!(reply.get_bool("ismaster"), Ok(true));
    assert_eq!(reply.get_str("msg"), Ok("isdbgrid"));
    assert_eq!(reply.get_bool("helloOk"), Ok(true));
}

#[test]
fn op_msg_document_sequences_and_checksum_are_accepted() {
    let server = start(Scenario::Standalone);
    let mut stream = raw_connect(&server);
    let mut payload = Vec::new();
    payload.extend_from_slice(&1u32.to_le_bytes()); // checksumPresent
    payload.push(0);
    payload.extend_from_slice(&bson_bytes(&doc! { "ping": 1, "$db": "admin" }));
    let sequence_docs = bson_bytes(&doc! { "a": 1 });
    payload.push(1);
    payload.extend_from_slice(&((4 + 10 + sequence_docs.len()) as i32).to_le_bytes());
    payload.extend_from_slice(b"documents\0");
    payload.extend_from_slice(&sequence_docs);
    payload.extend_from_slice(&0u32.to_le_bytes()); // CRC, not verified
    stream.write_all(&framed(5, 2013, &payload)).expect("send OP_MSG");
    let (response_to, op_code, body) = read_reply(&mut stream).expect("an OP_MSG reply");
    assert_eq!((response_to, op_code), (5, 2013));
    let reply = Document::from_reader(&body[5..]).expect("reply document");
    assert_eq!(reply.get_f64("ok"), Ok(1.0));
}

#[test]
fn garbage_closes_only_that_connection() {
    let server = start(Scenario::Standalone);
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        framed(1, 2013, &[]),
        framed(1, 9999, &[0; 8]),
        // 48 MB + 1: over the cap, closed before reading the body.
        {
            let mut header = (48_000_001i32).to_le_bytes().to_vec();
            header.extend_from_slice(&[0; 8]);
            header.extend_from_slice(&2013i32.to_le_bytes());
            header
        },
        // An OP_MSG whose body document claims more bytes than the message has.
        {
            let mut payload = 0u32.to_le_bytes().to_vec();
            payload.push(0);
            let mut body = bson_bytes(&doc! { "ping": 1, "$db": "admin" });
            body[0..4].copy_from_slice(&1000i32.to_le_bytes());
            payload.extend_from_slice(&body);
            framed(1, 2013, &payload)
        },
        // Deeply nested BSON (would overflow the stack if decoded recursively).
        {
            let depth = 5_000usize;
            let mut nested = vec![0u8; 0];
            // Build {a:{a:{...{}}}} bottom-up as raw bytes.
            let mut inner = vec![5, 0, 0, 0, 0];
            for _ in 0..depth {
                let mut doc = Vec::new();
                let len = 4 + 1 + 2 + inner.len() + 1;
                doc.extend_from_slice(&(len as i32).to_le_bytes());
                doc.push(3);
                doc.extend_from_slice(b"a\0");
                doc.extend_from_slice(&inner);
                doc.push(0);
                inner = doc;
            }
            nested.extend_from_slice(&0u32.to_le_bytes());
            nested.push(0);
            nested.extend_from_slice(&inner);
            framed(1, 2013, &nested)
        },
        // An unknown required flag bit.
        {
            let mut payload = (1u32 << 5).to_le_bytes().to_vec();
            payload.push(0);
            payload.extend_from_slice(&bson_bytes(&doc! { "ping": 1, "$db": "admin" }));
            framed(1, 2013, &payload)
        },
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let mut stream = raw_connect(&server);
        let _ = stream.write_all(bytes);
        assert!(closed_by_server(&mut stream), "case {i}: the server closes the connection");
    }
    // A truncated message followed by a hang-up must not disturb anyone either.
    let mut stream = raw_connect(&server);
    let _ = stream.write_all(&framed(1, 2013, &[0; 64])[..30]);
    drop(stream);

    let rt = runtime();
    rt.block_on(async {
        let client = client(&server).await;
        run(&client, "admin", doc! { "ping": 1 }).await.expect("still serving after garbage");
    });
}

#[test]
fn stop_is_prompt_and_frees_the_port() {
    let mut server = start(Scenario::Primary);
    let port = server.port();
    let idle = raw_connect(&server);
    server.set_fault(Fault::Delay(Duration::from_secs(60)));
    let mut busy = raw_connect(&server);
    let mut payload = 0u32.to_le_bytes().to_vec();
    payload.push(0);
    payload.extend_from_slice(&bson_bytes(&doc! { "serverStatus": 1, "$db": "admin" }));
    busy.write_all(&framed(9, 2013, &payload)).expect("send serverStatus");
    std::thread::sleep(Duration::from_millis(100));

    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(2), "stop took {:?}", started.elapsed());
    assert!(closed_by_server(&mut busy), "the delayed request's connection is closed");
    drop(idle);
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "the port is released");
}
