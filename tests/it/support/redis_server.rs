//! A real `redis-server` per test, on a free loopback port, in a private
//! temporary directory that is removed on drop.
//!
//! The server is configured through a generated `redis.conf` in its directory
//! rather than argv, so passwords and ACL rules need no shell-style quoting and
//! do not show up in `ps`. `extra_args` are still appended to the command line
//! (they override the file), which is the quickest way for a test to flip one
//! setting such as `--maxmemory 1mb`.
//!
//! Port selection binds port 0, reads the port and releases it; another process
//! can grab the port in between, so a start that fails with "Address already in
//! use" is retried on a new port, and readiness is only accepted when the
//! `process_id` in `INFO server` is our child's (otherwise a PING could be
//! answered by someone else's server that won the race).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use super::wait_until;

/// How long a started server may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster node may take to report `cluster_state:ok`.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect, read and write timeout of the test client.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts to find a port that is still free when the server binds it.
const PORT_ATTEMPTS: usize = 8;
/// Largest bulk string or array the test client accepts, so a corrupted length
/// prefix fails the test instead of allocating gigabytes.
const MAX_REPLY_LEN: usize = 64 * 1024 * 1024;
/// Commands per pipelined write when loading sample data.
const PIPELINE_BATCH: usize = 1000;

/// How to configure a test server. `Default` is a standalone server without a
/// password and without persistence.
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// `requirepass`: the password of the `default` user.
    pub password: Option<String>,
    /// Extra ACL rules, each a full config line such as
    /// `user exporter on >secret ~* -@all +info +ping`.
    pub acl_lines: Vec<String>,
    /// `replicaof 127.0.0.1 <port>` and, when given, `masterauth <password>`.
    pub replica_of: Option<(u16, Option<String>)>,
    /// `cluster-enabled yes`; after start all 16384 slots are assigned to this
    /// node and the start waits for `cluster_state:ok`.
    pub cluster: bool,
    /// `save` schedule such as `"60 1"`; `None` disables RDB snapshots.
    pub save: Option<String>,
    /// Appended to the command line after the config file, e.g.
    /// `["--maxmemory", "64mb"]`.
    pub extra_args: Vec<String>,
}

impl RedisOptions {
    /// A standalone server protected by `password`.
    pub fn with_password(password: &str) -> Self {
        RedisOptions { password: Some(password.to_owned()), ..RedisOptions::default() }
    }
}

/// A running `redis-server` owned by one test. Dropping it kills the process
/// and removes its directory.
#[derive(Debug)]
pub struct RedisServer {
    opts: RedisOptions,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING (and, for a cluster
    /// node, until the cluster is `ok`). Panics with the server log on failure.
    pub fn start(opts: RedisOptions) -> RedisServer {
        let binary = redis_server_binary();
        let dir = super::private_temp_dir("redis");
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port(opts.cluster);
            write_config(&dir, port, &opts);
            let mut server = RedisServer { opts: opts.clone(), port, dir: dir.clone(), child: None };
            match server.spawn_and_wait(&binary) {
                Ok(()) => {
                    if server.opts.cluster {
                        server.assign_all_slots();
                    }
                    return server;
                }
                Err(StartFailure::PortTaken(log)) => {
                    last_failure = log;
                    // Keep the directory for the next attempt; only forget the port.
                    server.dir = PathBuf::new();
                }
                Err(StartFailure::Fatal(message)) => {
                    // Drop removes the directory before we panic.
                    drop(server);
                    panic!("{message}");
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!(
            "redis-server could not bind a free loopback port in {PORT_ATTEMPTS} attempts; last log:\n{last_failure}"
        );
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://:<password>@127.0.0.1:<port>` (password percent-encoded), or
    /// `redis://127.0.0.1:<port>` without a password.
    pub fn url(&self) -> String {
        match &self.opts.password {
            Some(password) => format!("redis://:{}@127.0.0.1:{}", percent_encode(password), self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The password of the `default` user, if any.
    pub fn password(&self) -> Option<&str> {
        self.opts.password.as_deref()
    }

    /// The options the server was started with.
    pub fn options(&self) -> &RedisOptions {
        &self.opts
    }

    /// The server's private directory (config, log, RDB, `nodes.conf`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// A new connection, authenticated as `default` when the server has a
    /// password. Panics if the server does not accept it.
    pub fn conn(&self) -> RespConn {
        let mut conn = RespConn::connect(&self.addr())
            .unwrap_or_else(|e| panic!("connecting to test redis at {}: {e}", self.addr()));
        if let Some(password) = &self.opts.password {
            conn.auth(None, password).unwrap_or_else(|e| panic!("AUTH on test redis at {}: {e}", self.addr()));
        }
        conn
    }

    /// Runs one command on a new authenticated connection and returns the raw
    /// reply (which may be [`Reply::Error`]).
    pub fn command(&self, args: &[&str]) -> Reply {
        self.conn().command(args).unwrap_or_else(|e| panic!("{args:?} on test redis at {}: {e}", self.addr()))
    }

    /// Runs one command and returns the reply as text (see [`Reply::render`]).
    /// Panics if the server answers with an error.
    pub fn cli(&self, args: &[&str]) -> String {
        match self.try_cli(args) {
            Ok(text) => text,
            Err(error) => panic!("{args:?} on test redis at {} failed: {error}", self.addr()),
        }
    }

    /// Like [`cli`](Self::cli), but an error reply is returned as `Err` with
    /// the server's text (`NOAUTH Authentication required.`).
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let reply = self.command(args);
        match reply {
            Reply::Error(message) => Err(message),
            other => Ok(other.render()),
        }
    }

    /// One field of `INFO <section>` (`None` if absent).
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let info = self.cli(&["INFO", section]);
        info_field(&info, field)
    }

    /// Kills the server (SIGKILL, no save) and keeps its directory, so a fault
    /// test can observe the exporter with the target gone and then
    /// [`restart`](Self::restart) it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts the server on the same port with the same configuration
    /// (killing it first if it still runs) and waits until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        let binary = redis_server_binary();
        match self.spawn_and_wait(&binary) {
            Ok(()) => {}
            Err(StartFailure::PortTaken(log)) => panic!(
                "restarting redis-server on port {}: the port was taken by another process meanwhile; log:\n{log}",
                self.port
            ),
            Err(StartFailure::Fatal(message)) => panic!("restarting redis-server: {message}"),
        }
        if self.opts.cluster {
            // nodes.conf in the directory keeps the slot assignment.
            self.wait_cluster_ok();
        }
    }

    fn spawn_and_wait(&mut self, binary: &Path) -> Result<(), StartFailure> {
        let stderr = File::create(self.dir.join("stderr.log"))
            .map_err(|e| StartFailure::Fatal(format!("creating stderr.log in {}: {e}", self.dir.display())))?;
        let child = Command::new(binary)
            .arg(self.dir.join("redis.conf"))
            .args(&self.opts.extra_args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| StartFailure::Fatal(format!("spawning {}: {e}", binary.display())))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Waits until our own process answers PING; distinguishes "port taken"
    /// (retry elsewhere) from every other failure (panic with the log).
    fn wait_ready(&mut self) -> Result<(), StartFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("wait_ready is only called right after spawn");
            let own_pid = child.id();
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    let log = self.log_tail();
                    if log.contains("Address already in use") {
                        return Err(StartFailure::PortTaken(log));
                    }
                    return Err(StartFailure::Fatal(format!(
                        "redis-server on port {} exited during startup ({status}); log:\n{log}",
                        self.port
                    )));
                }
                Ok(None) => {}
                Err(e) => return Err(StartFailure::Fatal(format!("waiting for redis-server: {e}"))),
            }
            if self.answers_ping_as(own_pid) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(StartFailure::Fatal(format!(
                    "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}; log:\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping_as(&self, own_pid: u32) -> bool {
        let Ok(mut conn) = RespConn::connect(&self.addr()) else { return false };
        if let Some(password) = &self.opts.password {
            if conn.auth(None, password).is_err() {
                return false;
            }
        }
        if !matches!(conn.command(&["PING"]), Ok(Reply::Status(ref s)) if s == "PONG") {
            return false; // also covers `LOADING` while an RDB is read back
        }
        match conn.command(&["INFO", "server"]) {
            Ok(reply) => info_field(&reply.render(), "process_id") == Some(own_pid.to_string()),
            Err(_) => false,
        }
    }

    fn assign_all_slots(&self) {
        // ADDSLOTSRANGE is Redis 7.0+; older servers need every slot listed.
        if let Err(error) = self.try_cli(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]) {
            if !error.contains("unknown subcommand") && !error.contains("Unknown subcommand") {
                panic!("CLUSTER ADDSLOTSRANGE 0 16383 on port {} failed: {error}", self.port);
            }
            let slots: Vec<String> = (0..16384).map(|slot: u32| slot.to_string()).collect();
            let mut args: Vec<&str> = vec!["CLUSTER", "ADDSLOTS"];
            args.extend(slots.iter().map(String::as_str));
            self.cli(&args);
        }
        self.wait_cluster_ok();
    }

    fn wait_cluster_ok(&self) {
        let what = format!("cluster_state:ok on port {}", self.port);
        wait_until(CLUSTER_TIMEOUT, &what, || {
            self.try_cli(&["CLUSTER", "INFO"])
                .is_ok_and(|info| info_field(&info, "cluster_state").as_deref() == Some("ok"))
        });
    }

    /// The last 40 lines of the server log and stderr, for panic messages.
    fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["redis.log", "stderr.log"] {
            if let Ok(text) = fs::read_to_string(self.dir.join(name)) {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(40);
                if start < lines.len() {
                    out.push_str(&format!("--- {name} ---\n"));
                    out.push_str(&lines[start..].join("\n"));
                    out.push('\n');
                }
            }
        }
        if out.is_empty() {
            out.push_str("(no log output)");
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() && !self.dir.as_os_str().is_empty() {
            eprintln!("redis-server on port {} log at failure:\n{}", self.port, self.log_tail());
        }
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

enum StartFailure {
    /// Someone else bound the port between our probe and the server's bind.
    PortTaken(String),
    Fatal(String),
}

/// `redis-server` from PATH, else `/usr/bin/redis-server`.
fn redis_server_binary() -> PathBuf {
    let from_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("redis-server")).find(|p| p.is_file()));
    let binary = from_path.unwrap_or_else(|| PathBuf::from("/usr/bin/redis-server"));
    if !binary.is_file() {
        panic!(
            "live Redis tests need a redis-server binary (not found on PATH or at /usr/bin/redis-server); \
             install it with `apt-get install redis-server`"
        );
    }
    binary
}

/// A loopback port that was free a moment ago. Cluster nodes also need the bus
/// port (`port + 10000`) free and below 65536.
fn free_port(cluster: bool) -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 to pick a free port");
        let port = listener.local_addr().expect("a bound listener has a local address").port();
        if !cluster {
            return port;
        }
        let Some(bus) = port.checked_add(10000) else { continue };
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port pair (port, port+10000) for a cluster node in 100 attempts");
}

fn write_config(dir: &Path, port: u16, opts: &RedisOptions) {
    let mut conf = String::new();
    let mut line = |s: String| {
        conf.push_str(&s);
        conf.push('\n');
    };
    line("bind 127.0.0.1".into());
    line(format!("port {port}"));
    line("protected-mode yes".into());
    line("daemonize no".into());
    line(format!("dir {}", quote(&dir.display().to_string())));
    line("logfile redis.log".into());
    line("appendonly no".into());
    // Replicas of this server sync at once instead of after the 5 s default.
    line("repl-diskless-sync-delay 0".into());
    match &opts.save {
        Some(schedule) => line(format!("save {schedule}")),
        None => line("save \"\"".into()),
    }
    if let Some(password) = &opts.password {
        line(format!("requirepass {}", quote(password)));
    }
    if let Some((master_port, master_password)) = &opts.replica_of {
        line(format!("replicaof 127.0.0.1 {master_port}"));
        if let Some(password) = master_password {
            line(format!("masterauth {}", quote(password)));
        }
    }
    if opts.cluster {
        line("cluster-enabled yes".into());
        line("cluster-config-file nodes.conf".into());
        line("cluster-node-timeout 5000".into());
    }
    for acl in &opts.acl_lines {
        line(acl.clone());
    }
    let path = dir.join("redis.conf");
    fs::write(&path, conf).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Double-quotes a config value the way redis.conf's tokenizer reads it back.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `field:value` lookup in INFO / CLUSTER INFO text.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        let (name, value) = line.trim_end_matches('\r').split_once(':')?;
        (name == field).then(|| value.to_owned())
    })
}

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    /// Whether the server answered with an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The reply as text: bulk strings as is (lossy UTF-8), statuses and errors
    /// as their text (`ERR unknown command ...`), integers in decimal, nil as
    /// the empty string, arrays as their elements joined by newlines.
    pub fn render(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) => s.clone(),
            Reply::Integer(n) => n.to_string(),
            Reply::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Reply::Nil => String::new(),
            Reply::Array(items) => items.iter().map(Reply::render).collect::<Vec<_>>().join("\n"),
        }
    }
}

/// Failure of a client call: the connection, or an error reply.
#[derive(Debug)]
pub enum RespError {
    Io(io::Error),
    Server(String),
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RespError::Io(e) => write!(f, "I/O error: {e}"),
            RespError::Server(message) => write!(f, "server replied: {message}"),
        }
    }
}

impl From<io::Error> for RespError {
    fn from(e: io::Error) -> Self {
        RespError::Io(e)
    }
}

/// A minimal blocking RESP2 client over one TCP connection. Every read and
/// write has a 5 s timeout.
#[derive(Debug)]
pub struct RespConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RespConn {
    /// Connects (no AUTH). `addr` is `host:port`.
    pub fn connect(addr: &str) -> io::Result<RespConn> {
        let socket_addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr} resolves to nothing")))?;
        let stream = TcpStream::connect_timeout(&socket_addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(RespConn { reader: BufReader::new(stream), writer })
    }

    /// `AUTH [user] password`.
    pub fn auth(&mut self, user: Option<&str>, password: &str) -> Result<(), RespError> {
        match user {
            Some(user) => self.call(&["AUTH", user, password]).map(drop),
            None => self.call(&["AUTH", password]).map(drop),
        }
    }

    /// Sends one command and returns the raw reply, error replies included.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        let mut buf = Vec::new();
        encode_command(&mut buf, args);
        self.writer.write_all(&buf)?;
        read_reply(&mut self.reader, 0)
    }

    /// Sends one command; an error reply becomes `Err(RespError::Server)`.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, RespError> {
        match self.command(args)? {
            Reply::Error(message) => Err(RespError::Server(message)),
            reply => Ok(reply),
        }
    }

    /// Writes all commands, then reads one reply per command (a pipeline).
    pub fn pipeline<C: AsRef<[A]>, A: AsRef<[u8]>>(&mut self, commands: &[C]) -> io::Result<Vec<Reply>> {
        let mut buf = Vec::new();
        for command in commands {
            encode_command(&mut buf, command.as_ref());
        }
        self.writer.write_all(&buf)?;
        (0..commands.len()).map(|_| read_reply(&mut self.reader, 0)).collect()
    }
}

fn encode_command<A: AsRef<[u8]>>(buf: &mut Vec<u8>, args: &[A]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(if line.is_empty() {
            io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the server")
        } else {
            invalid(format!("RESP line without CRLF: {:?}", String::from_utf8_lossy(&line)))
        });
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|e| invalid(format!("RESP line is not UTF-8: {e}")))
}

fn parse_len(text: &str) -> io::Result<Option<usize>> {
    let n: i64 = text.parse().map_err(|_| invalid(format!("bad RESP length {text:?}")))?;
    if n < 0 {
        return Ok(None);
    }
    let n = usize::try_from(n).map_err(|_| invalid(format!("RESP length {n} out of range")))?;
    if n > MAX_REPLY_LEN {
        return Err(invalid(format!("RESP length {n} exceeds the test client's cap")));
    }
    Ok(Some(n))
}

fn read_reply(reader: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    if depth > 32 {
        return Err(invalid("RESP nesting deeper than 32".into()));
    }
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
    match kind {
        "+" => Ok(Reply::Status(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => rest.parse().map(Reply::Integer).map_err(|_| invalid(format!("bad RESP integer {rest:?}"))),
        "$" => match parse_len(rest)? {
            None => Ok(Reply::Nil),
            Some(n) => {
                let mut data = vec![0; n + 2];
                reader.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(invalid("bulk string not terminated by CRLF".into()));
                }
                data.truncate(n);
                Ok(Reply::Bulk(data))
            }
        },
        "*" => match parse_len(rest)? {
            None => Ok(Reply::Nil),
            Some(n) => (0..n).map(|_| read_reply(reader, depth + 1)).collect::<io::Result<_>>().map(Reply::Array),
        },
        _ => Err(invalid(format!("unexpected RESP line {line:?}"))),
    }
}

/// How many keys of each Tenderly family [`populate_tenderly`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenderlyCounts {
    pub session: usize,
    pub jwt: usize,
    pub otp: usize,
    pub ratelimit: usize,
    pub user: usize,
}

impl TenderlyCounts {
    /// The split of `n` keys in the proportions of the real capture
    /// (tests/fixtures/redis README: 200 session, 50 jwt, 30 ratelimit,
    /// 20 user, 10 otp per 310); rounding leftovers go to sessions.
    pub fn for_total(n: usize) -> TenderlyCounts {
        let jwt = n * 50 / 310;
        let ratelimit = n * 30 / 310;
        let user = n * 20 / 310;
        let otp = n * 10 / 310;
        TenderlyCounts { session: n - jwt - ratelimit - user - otp, jwt, otp, ratelimit, user }
    }

    pub fn total(&self) -> usize {
        self.session + self.jwt + self.otp + self.ratelimit + self.user
    }

    /// Keys that carry a TTL (everything but `tenderly:user:*`).
    pub fn expiring(&self) -> usize {
        self.total() - self.user
    }
}

/// Deterministic 64-bit mixer (splitmix64), so ids look random but every run
/// writes the same keys.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A documentation-range address (RFC 5737, then RFC 3849): never a real client.
fn fake_ip(i: usize) -> String {
    const NETS: [&str; 3] = ["192.0.2", "198.51.100", "203.0.113"];
    if i < 3 * 254 {
        format!("{}.{}", NETS[i / 254], i % 254 + 1)
    } else {
        format!("2001:db8::{:x}", i)
    }
}

/// Writes `n` Tenderly-shaped keys into db 0 with pipelined writes and returns
/// the per-family counts. All values are synthetic: `test-user-*` ids,
/// documentation IP ranges, tokens that say they are fake.
///
/// * `tenderly:session:<id>`: JSON string, EX 3600
/// * `tenderly:jwt:<id>`: string, EX 900
/// * `tenderly:otp:<id>`: six digits, EX 300
/// * `tenderly:ratelimit:<ip>`: INCR + EXPIRE 60
/// * `tenderly:user:<id>`: hash, no TTL
pub fn populate_tenderly(server: &RedisServer, n: usize) -> TenderlyCounts {
    let counts = TenderlyCounts::for_total(n);
    let mut commands: Vec<Vec<String>> = Vec::with_capacity(n + counts.ratelimit);
    let s = |v: &str| v.to_owned();
    for i in 0..counts.session {
        let id = format!("{:016x}", mix(i as u64));
        let value = format!(
            r#"{{"userId":"test-user-{:06}","role":"patient","device":"test-device","createdAt":1700000000}}"#,
            i % 1000
        );
        commands.push(vec![s("SET"), format!("tenderly:session:{id}"), value, s("EX"), s("3600")]);
    }
    for i in 0..counts.jwt {
        let id = format!("{:016x}", mix(1_000_000 + i as u64));
        commands.push(vec![s("SET"), format!("tenderly:jwt:{id}"), format!("fake.test-jwt.{id}"), s("EX"), s("900")]);
    }
    for i in 0..counts.otp {
        let code = format!("{:06}", mix(2_000_000 + i as u64) % 1_000_000);
        commands.push(vec![s("SET"), format!("tenderly:otp:test-user-{i:06}"), code, s("EX"), s("300")]);
    }
    for i in 0..counts.ratelimit {
        let key = format!("tenderly:ratelimit:{}", fake_ip(i));
        commands.push(vec![s("INCR"), key.clone()]);
        commands.push(vec![s("EXPIRE"), key, s("60")]);
    }
    for i in 0..counts.user {
        commands.push(vec![
            s("HSET"),
            format!("tenderly:user:test-user-{i:06}"),
            s("role"),
            s(if i % 10 == 0 { "doctor" } else { "patient" }),
            s("displayName"),
            format!("Test User {i}"),
            s("mfa"),
            s(if i % 3 == 0 { "pending" } else { "enabled" }),
            s("failedLogins"),
            (i % 4).to_string(),
        ]);
    }
    let mut conn = server.conn();
    for batch in commands.chunks(PIPELINE_BATCH) {
        let replies =
            conn.pipeline(batch).unwrap_or_else(|e| panic!("loading Tenderly sample data into {}: {e}", server.addr()));
        if let Some((command, reply)) = batch.iter().zip(&replies).find(|(_, r)| r.is_error()) {
            panic!("loading Tenderly sample data: {:?} failed: {}", command.first(), reply.render());
        }
    }
    counts
}
