//! Operations without a restart: a rotated password file is picked up by the
//! poll (no signal, no restart) and replaces only that target's connection; an
//! empty or unreadable new file keeps the old secret and says so in
//! `tenderly_exporter_config_last_reload_successful`; `POST /-/reload`
//! (behind `--web.enable-lifecycle`) adds and removes targets and refuses an
//! invalid file while the old configuration keeps serving. Real
//! `redis-server`s with `requirepass`, the exporter in process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::exporter::{Exposition, TestExporter};
use crate::support::process::wait_for;
use crate::support::{private_temp_dir, RedisOptions, RedisServer, Reply, RespConn};

const RELOAD_OK: &str = "tenderly_exporter_config_last_reload_successful";
const RELOAD_TIME: &str = "tenderly_exporter_config_last_reload_success_timestamp_seconds";
/// The issue's bound: `redis_up` is back within 30 s of the rotation.
const ROTATION_BOUND: Duration = Duration::from_secs(30);

/// Writes `text` to `path` as Kubernetes and `install` do: a temporary file in
/// the same directory, then a rename over the old one.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write temporary file");
    std::fs::rename(&tmp, path).expect("rename over the old file");
}

/// One command on a fresh connection authenticated with `password`.
fn command_as(server: &RedisServer, password: &str, args: &[&str]) -> Reply {
    let mut conn = RespConn::connect(&server.addr()).expect("connect to test redis");
    conn.auth(None, password).expect("AUTH with the server's current password");
    conn.command(args).expect("command")
}

/// The ids of the exporter's collection connections (`CLIENT SETNAME tenderly-exporter`).
fn exporter_client_ids(server: &RedisServer, password: &str) -> Vec<String> {
    let list = command_as(server, password, &["CLIENT", "LIST"]).render();
    let mut ids: Vec<String> = list
        .lines()
        .filter(|line| line.split(' ').any(|field| field == "name=tenderly-exporter"))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")).map(str::to_string))
        .collect();
    ids.sort();
    ids
}

fn probe(exporter: &TestExporter, target: &str) -> Exposition {
    exporter.scrape(&format!("/probe?target={target}"))
}

fn redis_up(exporter: &TestExporter, target: &str) -> Option<f64> {
    probe(exporter, target).value("redis_up", &[])
}

fn reload_ok(exporter: &TestExporter) -> f64 {
    exporter.scrape("/metrics").expect(RELOAD_OK, &[])
}

/// A config file with one Redis target per `(name, server, password file)`,
/// without the key scan and posture (they open connections of their own).
fn write_config(path: &Path, targets: &[(&str, &RedisServer, Option<&Path>)]) {
    let mut yaml = String::from("targets:\n");
    for (name, server, password_file) in targets {
        yaml.push_str(&format!(
            "  - name: {name}\n    kind: redis\n    address: {}\n    collectors: {{keys: false, posture: false}}\n",
            server.addr()
        ));
        if let Some(file) = password_file {
            yaml.push_str(&format!("    password_file: {}\n", file.display()));
        }
    }
    write_atomically(path, &yaml);
}

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { dir: private_temp_dir("rotation") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn rotated_password_file_brings_redis_up_back_without_restart_or_signal_and_other_targets_keep_their_connection() {
    let fx = Fixture::new();
    let rotated = RedisServer::start(RedisOptions::with_password("old-pass-1"));
    let steady = RedisServer::start(RedisOptions::with_password("steady-pass"));
    let rotated_file = fx.path("rotated.pass");
    let steady_file = fx.path("steady.pass");
    write_atomically(&rotated_file, "old-pass-1\n");
    write_atomically(&steady_file, "steady-pass\n");
    let config = fx.path("targets.yml");
    write_config(&config, &[("rotated", &rotated, Some(&rotated_file)), ("steady", &steady, Some(&steady_file))]);
    let exporter = TestExporter::start(&["--config.file", config.to_str().expect("utf-8 path")], &[]);

    assert_eq!(redis_up(&exporter, "rotated"), Some(1.0));
    assert_eq!(redis_up(&exporter, "steady"), Some(1.0));
    let steady_ids = exporter_client_ids(&steady, "steady-pass");
    assert_eq!(steady_ids.len(), 1, "one collection connection to the steady target");

    // The operator's rotation: the server's password, the exporter's connections, then the file.
    assert_eq!(command_as(&rotated, "old-pass-1", &["CONFIG", "SET", "requirepass", "new-pass-2"]).render(), "OK");
    let killed = command_as(&rotated, "new-pass-2", &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(matches!(killed, Reply::Integer(n) if n >= 1), "the exporter's connection was killed: {killed:?}");
    assert_eq!(redis_up(&exporter, "rotated"), Some(0.0), "the old password no longer works");
    let loaded_before = exporter.scrape("/metrics").expect(RELOAD_TIME, &[]);
    write_atomically(&rotated_file, "new-pass-2\n");
    let rotated_at = Instant::now();
    // The poll alone notices the file (`/metrics` does not scrape these targets):
    // the success time moves on before anything asks for the rotated target.
    wait_for("the poll to load the new password file", ROTATION_BOUND, &|| exporter.scrape("/metrics").text, || {
        exporter.scrape("/metrics").expect(RELOAD_TIME, &[]) > loaded_before
    });
    eprintln!("poll noticed the new file after {:?}", rotated_at.elapsed());

    wait_for("redis_up 1 for the rotated target", ROTATION_BOUND, &|| probe(&exporter, "rotated").text, || {
        redis_up(&exporter, "rotated") == Some(1.0)
    });
    let took = rotated_at.elapsed();
    eprintln!("rotation picked up in {took:?} (bound {ROTATION_BOUND:?})");
    assert_eq!(reload_ok(&exporter), 1.0);
    assert_eq!(redis_up(&exporter, "steady"), Some(1.0));
    assert_eq!(
        exporter_client_ids(&steady, "steady-pass"),
        steady_ids,
        "the target whose secret did not change keeps its connection"
    );
    assert_eq!(exporter_client_ids(&rotated, "new-pass-2").len(), 1, "the rotated target has one new connection");
}

#[test]
fn empty_or_unreadable_new_password_file_keeps_the_old_secret_and_marks_the_reload_failed() {
    let fx = Fixture::new();
    let server = RedisServer::start(RedisOptions::with_password("kept-pass"));
    let file = fx.path("redis.pass");
    write_atomically(&file, "kept-pass\n");
    let config = fx.path("targets.yml");
    write_config(&config, &[("r", &server, Some(&file))]);
    let exporter = TestExporter::start(&["--config.file", config.to_str().expect("utf-8 path")], &[]);
    assert_eq!(redis_up(&exporter, "r"), Some(1.0));
    assert_eq!(reload_ok(&exporter), 1.0);
    let loaded_at = exporter.scrape("/metrics").expect(RELOAD_TIME, &[]);
    let metrics_text = || exporter.scrape("/metrics").text;
    let wait_reload = |what: &str, want: f64| {
        wait_for(what, Duration::from_secs(15), &metrics_text, || reload_ok(&exporter) == want);
    };
    let old_secret_still_used = |what: &str| {
        // Fresh connections must still authenticate: the old secret was kept.
        command_as(&server, "kept-pass", &["CLIENT", "KILL", "TYPE", "normal"]);
        let first = redis_up(&exporter, "r");
        let second = redis_up(&exporter, "r");
        assert!(
            first == Some(1.0) || second == Some(1.0),
            "{what}: the old secret still works ({first:?}, {second:?})"
        );
        assert_eq!(second, Some(1.0), "{what}");
        assert_eq!(reload_ok(&exporter), 0.0, "{what}: still reported as failed");
    };

    write_atomically(&file, "\n");
    wait_reload("the empty file to be refused", 0.0);
    old_secret_still_used("empty file");

    write_atomically(&file, "kept-pass\n");
    wait_reload("the good file to be accepted", 1.0);

    // Unreadable: the path is now a directory.
    std::fs::remove_file(&file).expect("remove the password file");
    std::fs::create_dir(&file).expect("a directory in its place");
    wait_reload("the unreadable file to be refused", 0.0);
    old_secret_still_used("unreadable file");

    std::fs::remove_dir(&file).expect("remove the directory");
    write_atomically(&file, "kept-pass\n");
    wait_reload("the good file to be accepted again", 1.0);
    assert!(exporter.scrape("/metrics").expect(RELOAD_TIME, &[]) > loaded_at, "the success time moved on");
    assert_eq!(redis_up(&exporter, "r"), Some(1.0));
}

/// Without the HTTP server there is no poll: only the authentication failure
/// can make the scraper read the file again.
#[test]
fn an_authentication_failure_rereads_the_secret_before_reporting_the_target_down() {
    use clap::Parser as _;
    use std::sync::Arc;
    use tenderly_exporter::config::Config;
    use tenderly_exporter::scrape::Scraper;

    let fx = Fixture::new();
    let server = RedisServer::start(RedisOptions::with_password("first-pass"));
    let file = fx.path("redis.pass");
    write_atomically(&file, "first-pass\n");
    let config = fx.path("targets.yml");
    write_config(&config, &[("r", &server, Some(&file))]);
    let cli = tenderly_exporter::cli::Cli::try_parse_from([
        "tenderly-exporter",
        "--config.file",
        config.to_str().expect("utf-8 path"),
    ])
    .expect("flags parse");
    let env = Arc::new(crate::support::exporter::TestEnv(Default::default()));
    let config = Config::from_cli(&cli, &*env).expect("valid config");
    let scraper = Scraper::with_env(&config, env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let up = || {
        runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            scraper.scrape_one("r", deadline).await.get("redis_up", &[]).map(|v| v.as_f64())
        })
    };
    assert_eq!(up(), Some(1.0));
    command_as(&server, "first-pass", &["CONFIG", "SET", "requirepass", "second-pass"]);
    command_as(&server, "second-pass", &["CLIENT", "KILL", "TYPE", "normal"]);
    write_atomically(&file, "second-pass\n");
    // The first scrape may only find its connection closed; the next one
    // reconnects, is refused with the old password, re-reads the file and retries.
    let first = up();
    let second = up();
    assert_eq!(second, Some(1.0), "after the kill: {first:?} then {second:?}");
}

#[test]
fn reload_endpoint_adds_and_removes_targets_and_keeps_serving_when_the_new_file_is_invalid() {
    let fx = Fixture::new();
    let a = RedisServer::start(RedisOptions::default());
    let b = RedisServer::start(RedisOptions::with_password("b-pass"));
    let b_file = fx.path("b.pass");
    write_atomically(&b_file, "b-pass\n");
    let config = fx.path("targets.yml");
    write_config(&config, &[("a", &a, None)]);
    let exporter =
        TestExporter::start(&["--config.file", config.to_str().expect("utf-8 path"), "--web.enable-lifecycle"], &[]);
    assert_eq!(redis_up(&exporter, "a"), Some(1.0));
    assert_eq!(exporter.get("/probe?target=b").status, 400);

    write_config(&config, &[("b", &b, Some(&b_file))]);
    let resp = exporter.post("/-/reload");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(redis_up(&exporter, "b"), Some(1.0), "the added target is scraped");
    assert_eq!(exporter.get("/probe?target=a").status, 400, "the removed target is gone");
    assert_eq!(reload_ok(&exporter), 1.0);

    // Invalid: same validation as at startup (an unknown kind), then a missing secret file.
    std::fs::write(&config, "targets:\n  - {name: c, kind: memcached, address: 'h:1'}\n").expect("write config");
    let resp = exporter.post("/-/reload");
    assert_eq!(resp.status, 500, "{}", resp.body);
    assert_eq!(reload_ok(&exporter), 0.0);
    assert_eq!(redis_up(&exporter, "b"), Some(1.0), "the running configuration keeps serving");
    assert_eq!(exporter.get("/probe?target=c").status, 400);
    let missing = fx.path("missing.pass");
    write_config(&config, &[("b", &b, Some(&missing))]);
    assert_eq!(exporter.post("/-/reload").status, 500);
    assert_eq!(redis_up(&exporter, "b"), Some(1.0));

    // Only POST (and PUT) reload; GET is 405 as in Prometheus, and other paths stay GET/HEAD only.
    let get = exporter.get("/-/reload");
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST, PUT"));
    assert_eq!(exporter.post("/metrics").status, 405);

    // A good file again: the reload succeeds.
    write_config(&config, &[("a", &a, None), ("b", &b, Some(&b_file))]);
    assert_eq!(exporter.post("/-/reload").status, 200);
    assert_eq!(reload_ok(&exporter), 1.0);
    assert_eq!(redis_up(&exporter, "a"), Some(1.0));
}

#[test]
fn reload_endpoint_is_refused_without_the_lifecycle_flag() {
    let fx = Fixture::new();
    let a = RedisServer::start(RedisOptions::default());
    let config = fx.path("targets.yml");
    write_config(&config, &[("a", &a, None)]);
    let exporter = TestExporter::start(&["--config.file", config.to_str().expect("utf-8 path")], &[]);
    write_config(&config, &[("b", &a, None)]);
    let resp = exporter.post("/-/reload");
    assert_eq!(resp.status, 403, "{}", resp.body);
    assert!(resp.body.contains("Lifecycle API is not enabled"));
    assert_eq!(exporter.get("/probe?target=b").status, 400, "nothing was reloaded");
    assert_eq!(redis_up(&exporter, "a"), Some(1.0));
}

#[test]
fn reload_endpoint_is_behind_the_web_configs_basic_auth() {
    let fx = Fixture::new();
    let a = RedisServer::start(RedisOptions::default());
    let config = fx.path("targets.yml");
    write_config(&config, &[("a", &a, None)]);
    let web = fx.path("web.yml");
    let hash = bcrypt::hash("pw", 4).expect("bcrypt hash");
    std::fs::write(&web, format!("basic_auth_users:\n  prom: '{hash}'\n")).expect("write web config");
    let exporter = TestExporter::start(
        &[
            "--config.file",
            config.to_str().expect("utf-8 path"),
            "--web.config.file",
            web.to_str().expect("utf-8 path"),
            "--web.enable-lifecycle",
        ],
        &[],
    );
    write_config(&config, &[("b", &a, None)]);
    let anonymous = exporter.post("/-/reload");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    // "prom:pw"
    let auth = [("Authorization", "Basic cHJvbTpwdw=="), ("Content-Length", "0")];
    let probe_b = crate::support::exporter::http_request(exporter.addr, "GET", "/probe?target=b", &auth[..1]);
    assert_eq!(probe_b.status, 400, "the anonymous request reloaded nothing");
    let ok = crate::support::exporter::http_request(exporter.addr, "POST", "/-/reload", &auth);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let probe_b = crate::support::exporter::http_request(exporter.addr, "GET", "/probe?target=b", &auth[..1]);
    assert_eq!(probe_b.status, 200, "{}", probe_b.body);
}

/// The real binary: SIGHUP reloads the config file (a target is added), and a
/// rotated file that is empty is logged by field and path, never by content.
#[test]
fn sighup_reloads_the_config_file_and_rotation_logs_never_show_the_secret() {
    use std::process::{Command, Stdio};

    const SECRET: &str = "s3cr3t-rotation-5e1d+/@:x";
    let fx = Fixture::new();
    let a = RedisServer::start(RedisOptions::with_password(SECRET));
    let file = fx.path("a.pass");
    write_atomically(&file, &format!("{SECRET}\n"));
    let config = fx.path("targets.yml");
    write_config(&config, &[("a", &a, Some(&file))]);
    let port = crate::support::process::free_port();
    let listen = format!("127.0.0.1:{port}");
    let stderr_path = fx.path("exporter.stderr");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenderly-exporter"));
    cmd.args(["--web.listen-address", &listen, "--config.file", config.to_str().expect("utf-8 path")])
        .args(["--log.level", "debug"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Child(cmd.spawn().expect("spawn tenderly-exporter"));
    let addr: std::net::SocketAddr = listen.parse().expect("address");
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let get = |path: &str| {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .ok()
            .map(|_| crate::support::exporter::http_request(addr, "GET", path, &[]))
    };
    wait_for("the exporter to be ready", Duration::from_secs(20), &stderr, || {
        get("/-/ready").is_some_and(|r| r.status == 200)
    });
    let up = |target: &str| {
        get(&format!("/probe?target={target}"))
            .filter(|r| r.status == 200)
            .and_then(|r| Exposition::parse(&r.body).value("redis_up", &[]))
    };
    assert_eq!(up("a"), Some(1.0));

    write_atomically(&file, "\n");
    let failed = || get("/metrics").and_then(|r| Exposition::parse(&r.body).value(RELOAD_OK, &[])) == Some(0.0);
    wait_for("the empty file to be refused", Duration::from_secs(15), &stderr, failed);

    write_config(&config, &[("a", &a, Some(&file)), ("b", &a, Some(&file))]);
    write_atomically(&file, &format!("{SECRET}\n"));
    let status = Command::new("kill").args(["-HUP", &child.0.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    wait_for("SIGHUP to add target b", Duration::from_secs(15), &stderr, || up("b") == Some(1.0));
    assert_eq!(up("a"), Some(1.0));
    drop(child);
    let log = stderr();
    assert!(log.contains("cannot re-read the target's secret") && log.contains("is empty"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    for form in [SECRET, "s3cr3t-rotation"] {
        assert!(!log.contains(form), "the log shows the secret:\n{log}");
    }
}

/// `--mongodb.uri-file` rewritten to point at another server: the poll swaps
/// the target's driver client; the old server gets no more commands.
#[test]
fn rotated_mongodb_uri_file_replaces_the_targets_client() {
    use crate::support::mongo_replay::{ReplayServer, Scenario};

    let fx = Fixture::new();
    let old = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let new = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let uri_file = fx.path("mongodb.uri");
    write_atomically(&uri_file, &format!("{}\n", old.uri()));
    let exporter = TestExporter::start(&["--mongodb.uri-file", uri_file.to_str().expect("utf-8 path")], &[]);
    let up = || exporter.scrape("/metrics").value("mongodb_up", &[]);
    assert_eq!(up(), Some(1.0));
    assert!(old.command_count("serverStatus") >= 1);
    assert_eq!(new.command_count("serverStatus"), 0);

    write_atomically(&uri_file, &format!("{}\n", new.uri()));
    let rotated_at = Instant::now();
    wait_for("serverStatus on the new server", ROTATION_BOUND, &|| exporter.scrape("/metrics").text, || {
        up() == Some(1.0) && new.command_count("serverStatus") >= 1
    });
    eprintln!("MongoDB URI rotation picked up in {:?}", rotated_at.elapsed());
    let old_count = old.command_count("serverStatus");
    assert_eq!(up(), Some(1.0));
    assert_eq!(old.command_count("serverStatus"), old_count, "the old client is no longer used");
    assert_eq!(exporter.scrape("/metrics").expect(RELOAD_OK, &[]), 1.0);
    assert!(exporter.get("/").body.contains(&new.port().to_string()), "the landing page shows the new address");
}

/// A reload that adds a target leaves an unchanged target's connection alone,
/// and a changed target (here: its collectors) gets a new one.
#[test]
fn reload_keeps_unchanged_targets_connections_and_replaces_changed_ones() {
    let fx = Fixture::new();
    let a = RedisServer::start(RedisOptions::with_password("a-pass"));
    let b = RedisServer::start(RedisOptions::with_password("b-pass"));
    let (a_file, b_file) = (fx.path("a.pass"), fx.path("b.pass"));
    write_atomically(&a_file, "a-pass\n");
    write_atomically(&b_file, "b-pass\n");
    let config = fx.path("targets.yml");
    write_config(&config, &[("a", &a, Some(&a_file)), ("b", &b, Some(&b_file))]);
    let exporter =
        TestExporter::start(&["--config.file", config.to_str().expect("utf-8 path"), "--web.enable-lifecycle"], &[]);
    assert_eq!((redis_up(&exporter, "a"), redis_up(&exporter, "b")), (Some(1.0), Some(1.0)));
    let (a_ids, b_ids) = (exporter_client_ids(&a, "a-pass"), exporter_client_ids(&b, "b-pass"));
    assert_eq!((a_ids.len(), b_ids.len()), (1, 1));

    // b changes (slowlog off), c is added on a's server, a is untouched.
    let yaml = std::fs::read_to_string(&config).expect("read config");
    let b_changed = yaml.replacen(
        &format!("address: {}\n    collectors: {{keys: false, posture: false}}", b.addr()),
        &format!("address: {}\n    collectors: {{keys: false, posture: false, slowlog: false}}", b.addr()),
        1,
    );
    assert_ne!(b_changed, yaml);
    let with_c = format!(
        "{b_changed}  - name: c\n    kind: redis\n    address: {}\n    password_file: {}\n    collectors: {{keys: false, posture: false}}\n",
        a.addr(),
        a_file.display()
    );
    write_atomically(&config, &with_c);
    assert_eq!(exporter.post("/-/reload").status, 200);
    assert_eq!(redis_up(&exporter, "a"), Some(1.0));
    assert_eq!(redis_up(&exporter, "b"), Some(1.0));
    assert_eq!(redis_up(&exporter, "c"), Some(1.0));
    let a_after = exporter_client_ids(&a, "a-pass");
    assert!(a_ids.iter().all(|id| a_after.contains(id)), "a keeps its connection: {a_ids:?} -> {a_after:?}");
    assert_eq!(a_after.len(), 2, "a's connection plus the new target c's");
    // The old connection closes when its client is dropped (asynchronously).
    wait_for(
        "the changed target to hold only a new connection",
        Duration::from_secs(10),
        &|| format!("before {b_ids:?}, now {:?}", exporter_client_ids(&b, "b-pass")),
        || {
            let now = exporter_client_ids(&b, "b-pass");
            now.len() == 1 && now != b_ids
        },
    );
}
