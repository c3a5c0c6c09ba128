//! HTTP surface: `/metrics`, `/probe`, `/discover`, `/`, `/-/healthy`, `/-/ready`,
//! and `POST /-/reload` with `--web.enable-lifecycle`.
//!
//! `serve(listener, state, shutdown)` takes a bound listener so tests can bind
//! port 0. Limits: a semaphore caps concurrent scrapes (503 beyond, so a
//! scrape storm cannot pile work onto the databases), another caps open
//! connections, header reads time out (slowloris), headers are size-capped, and
//! only GET/HEAD are served (and POST/PUT on `/-/reload`, as Prometheus). `/probe` only scrapes configured target names: an
//! unknown name is a 400 and no connection is attempted, so the exporter is
//! never a proxy into the network (redis_exporter's `/scrape` SSRF).
//! `/discover?target=NAME` lists a configured target's replica-set members or
//! cluster nodes as `http_sd` JSON; `/probe?target=NAME&member=HOST:PORT`
//! scrapes a member only if that list holds it ([`crate::discovery`]).
//!
//! `--web.config.file` ([`crate::web_config`]) adds TLS (optionally mutual)
//! and basic auth. The TLS handshake runs in the connection's task under
//! [`TLS_HANDSHAKE_TIMEOUT`], holding a connection slot, so a client that
//! never finishes it cannot stall the accept loop or hold a slot for long; a
//! plain-HTTP request to the TLS port gets Go's "400 Client sent an HTTP
//! request to an HTTPS server" and the connection is closed. Basic auth, as in
//! exporter-toolkit, covers every path including `/-/healthy` and `/-/ready`
//! (probes that cannot authenticate should use a TCP check). The file is
//! re-read on SIGHUP and polled every [`WEB_CONFIG_POLL_INTERVAL`]; a valid new
//! version is swapped in atomically: new connections use its TLS settings and
//! every request after the swap is checked against its users (a revoked
//! password stops working at once, even on a kept-alive connection), while
//! TLS sessions already established are left alone. An invalid version is
//! logged and ignored; the listener is never closed.
//!
//! Idle keep-alive connections are closed by hyper's header-read timeout,
//! which starts as soon as a connection waits for its next request (tested in
//! `tests/it/web_security.rs`), so idle connections cannot accumulate.
//!
//! Every connection has a deadline in both directions (tested against hostile
//! clients in `tests/it/http_hostile.rs`): a new connection must send its
//! first byte within [`FIRST_BYTE_TIMEOUT`]; a response write that makes no
//! progress for [`WRITE_STALL_TIMEOUT`], or is not drained within
//! [`WRITE_DRAIN_TIMEOUT`], closes the connection; more than
//! [`MAX_PIPELINED_REQUESTS`] pipelined requests in a row, or
//! [`MAX_REQUESTS_PER_CONNECTION`] in all, end it after the answer
//! (`Connection: close`). At the connection cap the accept path closes the
//! connection worth least (one that pipelines, then one that has not sent a
//! byte, then one whose writes have stalled, then the longest idle) instead of
//! making the new one wait, so a scraper or a health check gets in; only
//! connections doing real work are never closed for another, and that work
//! is bounded. `/probe` and `/discover` also take a slot of their target
//! ([`per_target_slots`]; beyond it 503 with `Retry-After`), and a `/probe`
//! that joins a collection already running takes a join slot (as many as
//! scrape slots) instead of a scrape slot, so requests waiting on a hung
//! target cannot starve the others. A request with
//! two `Host` headers is a 400 on every path; `/discover` reflects `Host` only
//! if it is a well-formed `host[:port]`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_ENCODING,
    CONTENT_TYPE, HOST, RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::config::{Config, WebConfig, MAX_DEADLINE, MIN_DEADLINE};
use crate::discovery;
use crate::scrape::{MemberError, ReloadSummary, Scraper, SecretStamps};
use crate::web_config::{AuthOutcome, ReloadReason, WebConfigError, WebSecurityStore, WWW_AUTHENTICATE_CHALLENGE};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on buffered request bytes (headers included).
const MAX_REQUEST_BUF: usize = 16 * 1024;
/// How long shutdown waits for in-flight requests beyond the longest deadline.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `--web.config.file` (and the files it names) is checked for changes.
pub const WEB_CONFIG_POLL_INTERVAL: Duration = Duration::from_secs(3);
/// How long the poller waits for one reload before it stops waiting (a hung
/// filesystem); a new reload starts only after the old one has finished.
const RELOAD_WAIT: Duration = Duration::from_secs(10);
/// How often the targets' secret files (password files, URI files) are
/// checked for a new version (modification time, size, inode, content hash).
pub const SECRET_POLL_INTERVAL: Duration = Duration::from_secs(3);
/// Longest a config reload (`POST /-/reload`, SIGHUP) may take to read and
/// validate the files, or wait for the reload before it.
const CONFIG_RELOAD_WAIT: Duration = Duration::from_secs(30);

/// Builds the configuration again from the same flags and environment, as at
/// startup (blocking file I/O). The error is the validation error's text.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;
/// How long a new connection may stay silent before its first byte (a TLS
/// record or a request line). Real clients send at once; the 10 s header
/// window applies after that.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a response write may make no progress (the peer is not reading)
/// before the connection is closed.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing may stay blocked before the output is drained, however
/// slowly the peer reads: a per-response write deadline.
pub const WRITE_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection whose writes made no progress for this long may be closed to
/// make room for a new connection when every slot is taken.
const STALLED_EVICTABLE_AFTER: Duration = Duration::from_secs(1);
/// Requests answered in a row from data the client sent before reading the
/// previous answer (HTTP pipelining, which no scraper uses): beyond this the
/// answer carries `Connection: close` and the connection ends.
pub const MAX_PIPELINED_REQUESTS: u32 = 4;
/// Requests served on one connection before it is closed (`Connection:
/// close`; Prometheus simply reconnects). Bounds what one client can queue.
pub const MAX_REQUESTS_PER_CONNECTION: u64 = 100;
/// How often a new connection waiting for room re-checks the slots.
const ROOM_RECHECK: Duration = Duration::from_millis(50);
/// Go's answer to plain HTTP on a TLS port.
const HTTP_TO_HTTPS_RESPONSE: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Shared state of the HTTP server.
pub struct AppState {
    pub web: WebConfig,
    pub scraper: Scraper,
    ready: AtomicBool,
    scrape_slots: Semaphore,
    /// Per configured target: requests waiting on it (`/probe`, `/discover`),
    /// so a hung target cannot take the slots of the others. Created on a
    /// target's first request (only configured names get one) and pruned on reload.
    target_slots: Mutex<BTreeMap<String, Arc<Semaphore>>>,
    /// Requests that joined a collection already running (they cost the
    /// database nothing): as many as the scrape slots, so that together they
    /// stay well under the connection cap and health checks still get in.
    join_slots: Semaphore,
    web_security: Arc<WebSecurityStore>,
    /// Where `POST /-/reload` and SIGHUP get the new configuration from.
    config_source: Option<ConfigSource>,
    /// One configuration reload at a time.
    reload_lock: tokio::sync::Mutex<()>,
}

/// Requests that may wait on one target at once: a quarter of
/// `--web.max-requests`, at least 2 (an HA pair of Prometheus servers).
pub fn per_target_slots(max_requests: usize) -> usize {
    (max_requests / 4).max(2)
}

impl AppState {
    /// Loads `web.web_config_file` (TLS, basic auth) if set; an invalid file is
    /// an error naming the field, so a bad config fails at startup.
    pub fn new(web: WebConfig, scraper: Scraper) -> Result<Self, WebConfigError> {
        let web_security = Arc::new(WebSecurityStore::load(web.web_config_file.as_deref())?);
        let scraper = scraper.with_web_certificate_expiry(web_security.certificate_expiry());
        let slots = web.max_requests;
        Ok(AppState {
            web,
            scraper,
            ready: AtomicBool::new(false),
            scrape_slots: Semaphore::new(slots),
            target_slots: Mutex::new(BTreeMap::new()),
            join_slots: Semaphore::new(slots),
            web_security,
            config_source: None,
            reload_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Sets where a reload (`POST /-/reload` with `--web.enable-lifecycle`,
    /// SIGHUP) reads the configuration from. Without one, SIGHUP only re-reads
    /// the targets' secrets and `POST /-/reload` fails.
    pub fn with_config_source(mut self, source: ConfigSource) -> Self {
        self.config_source = Some(source);
        self
    }

    /// A slot of `name`'s per-target semaphore, if one is free. Call only for
    /// a configured target: the map holds one entry per name asked for.
    fn target_slot(&self, name: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.target_slots.lock().unwrap_or_else(|p| p.into_inner());
            let per_target = per_target_slots(self.web.max_requests);
            Arc::clone(slots.entry(name.to_string()).or_insert_with(|| Arc::new(Semaphore::new(per_target))))
        };
        semaphore.try_acquire_owned().ok()
    }

    /// Reloads the whole configuration as at startup (flags, environment,
    /// config file, every secret; the web config file too) and swaps in the
    /// targets: added, removed, changed. An invalid configuration is logged,
    /// marks the reload failed and leaves the running one serving.
    pub async fn reload_config(&self) -> Result<ReloadSummary, String> {
        let Some(source) = self.config_source.clone() else {
            return Err("no configuration source to reload from".to_string());
        };
        let Ok(_one_at_a_time) = tokio::time::timeout(CONFIG_RELOAD_WAIT, self.reload_lock.lock()).await else {
            return Err("another reload is still running".to_string());
        };
        let web_security = Arc::clone(&self.web_security);
        // Blocking file reads stay off the runtime.
        let read = tokio::task::spawn_blocking(move || {
            // Logged inside reload(); an invalid web config keeps the running one.
            let _ = web_security.reload(ReloadReason::Request);
            source()
        });
        let config = match tokio::time::timeout(CONFIG_RELOAD_WAIT, read).await {
            Ok(Ok(Ok(config))) => config,
            Ok(Ok(Err(e))) => {
                self.scraper.record_failed_reload();
                tracing::error!(error = %e, "config reload failed; the running configuration is kept");
                return Err(e);
            }
            Ok(Err(_)) | Err(_) => {
                self.scraper.record_failed_reload();
                tracing::error!("config reload did not finish; the running configuration is kept");
                return Err("reading the configuration did not finish".to_string());
            }
        };
        let summary = self.scraper.apply_config(&config);
        {
            let names: std::collections::BTreeSet<String> =
                self.scraper.target_list().into_iter().map(|(name, ..)| name).collect();
            let mut slots = self.target_slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.retain(|name, _| names.contains(name));
        }
        if config.web != self.web {
            tracing::warn!("web settings changed; they take effect only after a restart");
        }
        tracing::info!(
            added = ?summary.added,
            removed = ?summary.removed,
            changed = ?summary.changed,
            "configuration reloaded"
        );
        Ok(summary)
    }

    /// The live `--web.config.file` settings.
    pub fn web_security(&self) -> &Arc<WebSecurityStore> {
        &self.web_security
    }

    /// Re-reads `--web.config.file` now, as SIGHUP does (blocking file I/O).
    /// `Ok(true)` if the configuration changed; on error the old one stays.
    pub fn reload_web_config(&self) -> Result<bool, WebConfigError> {
        self.web_security.reload(ReloadReason::Request)
    }
}

type Body = Full<Bytes>;

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight
/// requests finish (bounded by the longest scrape deadline plus a grace period).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let table = Arc::new(ConnTable::new(connection_cap(state.web.max_requests)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_BUF)
        .keep_alive(true);
    // Registered before readiness so a SIGHUP after /-/ready answers is never
    // the default action (terminate).
    let reloader = state
        .web_security
        .path()
        .is_some()
        .then(|| tokio::spawn(watch_web_config(Arc::clone(&state.web_security), hangup_signal())));
    let rotation = tokio::spawn(watch_targets(Arc::clone(&state), hangup_signal()));
    state.ready.store(true, Ordering::Release);
    tokio::pin!(shutdown);
    let mut accept_backoff = Duration::from_millis(5);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => { accept_backoff = Duration::from_millis(5); pair }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(accept_backoff).await;
                    accept_backoff = (accept_backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        // At the cap, the connection that is worth least (silent, stalled or
        // idle longest) is closed for the new one; only when every slot is
        // doing real work does the new one wait, and that work is bounded.
        let slot = loop {
            if let Some(slot) = table.admit() {
                break Some(slot);
            }
            tokio::select! {
                _ = &mut shutdown => break None,
                _ = table.freed.notified() => {}
                _ = tokio::time::sleep(ROOM_RECHECK) => {}
            }
        };
        let Some(slot) = slot else { break };
        let _ = stream.set_nodelay(true);
        let tls = state.web_security.current().tls_acceptor().cloned();
        let conn =
            Connection { state: Arc::clone(&state), builder: builder.clone(), watcher: graceful.watcher(), slot };
        tokio::spawn(conn.run(stream, tls));
    }
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    rotation.abort();
    state.ready.store(false, Ordering::Release);
    drop(listener);
    let wait = MAX_DEADLINE.min(state.web.default_timeout.max(Duration::from_secs(30))) + SHUTDOWN_GRACE;
    if tokio::time::timeout(wait, graceful.shutdown()).await.is_err() {
        tracing::warn!(waited_seconds = wait.as_secs(), "in-flight requests did not finish before shutdown");
    }
    Ok(())
}

/// Open connections: at most [`connection_cap`] of them.
fn connection_cap(max_requests: usize) -> usize {
    (max_requests * 4).max(64)
}

/// The open connections and what each is doing, so that at the cap the
/// accept path can close the one worth least instead of making a new client
/// (a scraper, a health check) wait behind idle or stalled ones.
struct ConnTable {
    cap: usize,
    /// Zero point of the millisecond clocks in [`ConnShared`].
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnShared>>>,
    /// Signalled when a connection ends.
    freed: Notify,
}

/// Phases of a connection, as far as eviction cares.
const PHASE_IDLE: u8 = 0;
const PHASE_HANDLING: u8 = 1;
const PHASE_RESPONDING: u8 = 2;

/// What the accept path and the connection's task share about one connection.
struct ConnShared {
    /// Milliseconds since [`ConnTable::epoch`] (all the `*_ms` fields).
    accepted_ms: u64,
    /// Whether any request byte has arrived (after TLS, if any).
    got_byte: AtomicBool,
    phase: AtomicU8,
    /// When the connection last finished a response (or was accepted).
    idle_since_ms: AtomicU64,
    /// When writing last made progress while blocked; 0 when not blocked.
    stalled_since_ms: AtomicU64,
    /// Successful reads, to tell pipelined requests (no read in between) apart.
    reads: AtomicU64,
    reads_at_last_request: AtomicU64,
    pipelined: AtomicU32,
    requests: AtomicU64,
    /// Notified when the accept path closes this connection for a new one.
    evict: Notify,
}

/// How a connection ranks for eviction (lower is closed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Standing {
    /// Sending requests without reading the answers (HTTP pipelining, which
    /// no scraper does): oldest first, even while busy.
    Pipelining { since_ms: u64 },
    /// Not a byte of a request yet: oldest first.
    Silent { since_ms: u64 },
    /// Writing blocked, the peer not reading, for a while: longest first.
    Stalled { since_ms: u64 },
    /// Between requests (keep-alive) or reading headers: oldest first.
    Idle { since_ms: u64 },
    /// Handling a request or writing its answer: never closed for another.
    Busy,
}

impl ConnShared {
    fn standing(&self, now_ms: u64) -> Standing {
        if self.pipelined.load(Ordering::Acquire) > 0 {
            return Standing::Pipelining { since_ms: self.accepted_ms };
        }
        if !self.got_byte.load(Ordering::Acquire) {
            return Standing::Silent { since_ms: self.accepted_ms };
        }
        let stalled = self.stalled_since_ms.load(Ordering::Acquire);
        if stalled != 0 && now_ms.saturating_sub(stalled) >= STALLED_EVICTABLE_AFTER.as_millis() as u64 {
            return Standing::Stalled { since_ms: stalled };
        }
        if stalled == 0 && self.phase.load(Ordering::Acquire) == PHASE_IDLE {
            return Standing::Idle { since_ms: self.idle_since_ms.load(Ordering::Acquire) };
        }
        Standing::Busy
    }
}

/// The connection to close for a new one, if any may be closed.
fn pick_victim(standings: impl IntoIterator<Item = (u64, Standing)>) -> Option<u64> {
    standings.into_iter().filter(|(_, s)| *s != Standing::Busy).min_by_key(|(id, s)| (*s, *id)).map(|(id, _)| id)
}

impl ConnTable {
    fn new(cap: usize) -> ConnTable {
        ConnTable {
            cap,
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            freed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        // Never 0, so 0 can mean "not set".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// A slot for a new connection, closing the least valuable open one if
    /// the table is full; `None` if every open connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let now = self.now_ms();
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if conns.len() >= self.cap {
            let victim = pick_victim(conns.iter().map(|(id, c)| (*id, c.standing(now))))?;
            if let Some(evicted) = conns.remove(&victim) {
                tracing::debug!(standing = ?evicted.standing(now), "connection closed to make room for a new one");
                evicted.evict.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ConnShared {
            accepted_ms: now,
            got_byte: AtomicBool::new(false),
            phase: AtomicU8::new(PHASE_IDLE),
            idle_since_ms: AtomicU64::new(now),
            stalled_since_ms: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            reads_at_last_request: AtomicU64::new(0),
            pipelined: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            evict: Notify::new(),
        });
        conns.insert(id, Arc::clone(&shared));
        Some(Slot { table: Arc::clone(self), id, shared })
    }
}

/// One connection's place in the [`ConnTable`]; freed on drop.
struct Slot {
    table: Arc<ConnTable>,
    id: u64,
    shared: Arc<ConnShared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut conns = self.table.conns.lock().unwrap_or_else(|p| p.into_inner());
        // Already gone if it was evicted (its slot went to the new connection).
        if conns.remove(&self.id).is_some() {
            self.table.freed.notify_one();
        }
    }
}

/// One accepted connection's share of the server: what it needs once its
/// transport (TCP or TLS) is ready.
struct Connection {
    state: Arc<AppState>,
    builder: hyper::server::conn::http1::Builder,
    watcher: Watcher,
    slot: Slot,
}

impl Connection {
    /// The whole life of one connection; ends early if the accept path
    /// closes it to make room ([`ConnTable::admit`]).
    async fn run(self, stream: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>) {
        let shared = Arc::clone(&self.slot.shared);
        let evicted = shared.evict.notified();
        tokio::pin!(evicted);
        // Registered now, so an eviction before the first poll is not lost.
        evicted.as_mut().enable();
        let life = async move {
            if !first_byte(&stream).await {
                return;
            }
            match tls {
                None => self.serve(stream).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls_handshake(&acceptor, stream)).await {
                        Ok(Some(tls_stream)) => self.serve(tls_stream).await,
                        Ok(None) => {}
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        };
        tokio::select! {
            () = life => {}
            () = evicted => {}
        }
    }

    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = self.state;
        let shared = Arc::clone(&self.slot.shared);
        let epoch = self.slot.table.epoch;
        let io = GuardedIo::new(io, Arc::clone(&shared), epoch);
        let service = hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            let shared = Arc::clone(&shared);
            async move {
                let close = shared.start_request();
                shared.phase.store(PHASE_HANDLING, Ordering::Release);
                let mut resp = handle(&state, req).await;
                shared.phase.store(PHASE_RESPONDING, Ordering::Release);
                if close {
                    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(resp)
            }
        });
        if let Err(e) = self.watcher.watch(self.builder.serve_connection(TokioIo::new(io), service)).await {
            tracing::debug!(error = %e, "connection closed with error");
        }
        drop(self.slot);
    }
}

impl ConnShared {
    /// Counts a request; `true` if the connection should close after its
    /// answer (too many pipelined requests in a row, or too many in all).
    fn start_request(&self) -> bool {
        let n = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        let reads = self.reads.load(Ordering::Acquire);
        let previous = self.reads_at_last_request.swap(reads, Ordering::AcqRel);
        // No read since the last request started: this one was already
        // buffered, sent before the client had its previous answer.
        let pipelined = if n > 1 && reads == previous {
            self.pipelined.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.pipelined.store(0, Ordering::Release);
            0
        };
        if pipelined >= MAX_PIPELINED_REQUESTS {
            tracing::debug!(pipelined, "closing a connection that pipelines requests");
            return true;
        }
        n >= MAX_REQUESTS_PER_CONNECTION
    }
}

/// Waits (at most [`FIRST_BYTE_TIMEOUT`]) for the client's first byte;
/// `false` if it never came or the connection closed.
async fn first_byte(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::debug!("no first byte in time; connection closed");
            false
        }
    }
}

/// The connection's transport with a write deadline: writing may make no
/// progress for at most [`WRITE_STALL_TIMEOUT`] and may stay blocked for at
/// most [`WRITE_DRAIN_TIMEOUT`] before the output is drained; after that,
/// every operation fails and hyper closes the connection. Reads record that
/// the client has sent something (and how often, for pipelining).
struct GuardedIo<I> {
    io: I,
    shared: Arc<ConnShared>,
    epoch: Instant,
    /// When writing first blocked since the output was last drained.
    blocked_at: Option<Instant>,
    /// When writing last made progress while blocked.
    progress_at: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    /// [`WRITE_STALL_TIMEOUT`] and [`WRITE_DRAIN_TIMEOUT`] (shorter in unit tests).
    stall_limit: Duration,
    drain_limit: Duration,
}

impl<I> GuardedIo<I> {
    fn new(io: I, shared: Arc<ConnShared>, epoch: Instant) -> Self {
        GuardedIo {
            io,
            shared,
            epoch,
            blocked_at: None,
            progress_at: None,
            timer: None,
            stall_limit: WRITE_STALL_TIMEOUT,
            drain_limit: WRITE_DRAIN_TIMEOUT,
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }

    /// The transport could not take more: start or check the deadline.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let now = Instant::now();
        let blocked_at = *self.blocked_at.get_or_insert(now);
        let progress_at = *self.progress_at.get_or_insert(now);
        let since = self.millis(progress_at);
        self.shared.stalled_since_ms.store(since, Ordering::Release);
        let deadline = (progress_at + self.stall_limit).min(blocked_at + self.drain_limit);
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!("peer stopped reading; write deadline passed, closing the connection");
                Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write deadline passed")))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// One write through the deadline: refused once it has passed, a write
    /// that cannot proceed arms (or checks) the stall and drain timers, and
    /// any bytes written count as progress.
    fn guarded_write(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>>
    where
        I: AsyncWrite + Unpin,
    {
        if self.expired() {
            return write_deadline_passed();
        }
        match write(Pin::new(&mut self.io), cx) {
            Poll::Pending => self.blocked(cx).map(|r| r.map(|()| 0)),
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn progressed(&mut self) {
        if self.blocked_at.is_some() {
            let now = Instant::now();
            self.progress_at = Some(now);
            let since = self.millis(now);
            self.shared.stalled_since_ms.store(since, Ordering::Release);
        }
    }

    /// Everything written so far has been handed to the transport.
    fn drained(&mut self) {
        self.blocked_at = None;
        self.progress_at = None;
        self.shared.stalled_since_ms.store(0, Ordering::Release);
        if self.shared.phase.compare_exchange(PHASE_RESPONDING, PHASE_IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            let now = self.millis(Instant::now());
            self.shared.idle_since_ms.store(now, Ordering::Release);
        }
    }

    /// A deadline that has passed stays passed, whatever the transport says.
    fn expired(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| self.blocked_at.is_some() && t.is_elapsed())
    }
}

fn write_deadline_passed<T>() -> Poll<std::io::Result<T>> {
    Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write deadline passed")))
}

impl<I: AsyncRead + Unpin> AsyncRead for GuardedIo<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.shared.got_byte.store(true, Ordering::Release);
            self.shared.reads.fetch_add(1, Ordering::AcqRel);
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for GuardedIo<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.guarded_write(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.guarded_write(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.expired() {
            return write_deadline_passed();
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.blocked(cx),
            Poll::Ready(Ok(())) => {
                self.drained();
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.expired() {
            return write_deadline_passed();
        }
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Pending => self.blocked(cx),
            other => other,
        }
    }
}

/// The TLS handshake, or `None` (logged at debug: scanners and plain-HTTP
/// clients are not worth a warning each). The caller bounds the time.
async fn tls_handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    mut stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    // 0x16 starts a TLS handshake record; an ASCII letter starts an HTTP method.
    if first[0].is_ascii_uppercase() {
        tracing::debug!("plain HTTP request on the TLS port");
        // Read what the client sent so closing does not reset the connection
        // before it has read the answer.
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await;
        let _ = stream.write_all(HTTP_TO_HTTPS_RESPONSE).await;
        let _ = stream.shutdown().await;
        return None;
    }
    match acceptor.accept(stream).await {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

/// Re-reads the web config on SIGHUP and when the poll finds it (or a
/// certificate, key or CA file it names) changed. Runs until aborted.
async fn watch_web_config(store: Arc<WebSecurityStore>, mut hangup: Option<Hangup>) {
    let mut tick = tokio::time::interval(WEB_CONFIG_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the file was just loaded
    let mut running: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let reason = tokio::select! {
            _ = tick.tick() => ReloadReason::Poll,
            () = next_hangup(&mut hangup) => ReloadReason::Signal,
        };
        if let Some(job) = &running {
            if !job.is_finished() {
                tracing::warn!("web config reload skipped: the previous one is still reading files");
                continue;
            }
        }
        let job_store = Arc::clone(&store);
        // Result logged inside reload(); blocking file reads stay off the runtime.
        let mut job = tokio::task::spawn_blocking(move || drop(job_store.reload(reason)));
        running = match tokio::time::timeout(RELOAD_WAIT, &mut job).await {
            Ok(_) => None,
            Err(_) => Some(job),
        };
    }
}

/// Rotation without a restart: polls the targets' secret files every
/// [`SECRET_POLL_INTERVAL`] (a target whose file changed re-reads its secrets
/// and gets new clients), and on SIGHUP reloads the whole configuration (or,
/// without a configuration source, re-reads every target's secrets). Runs
/// until aborted.
async fn watch_targets(state: Arc<AppState>, mut hangup: Option<Hangup>) {
    let mut tick = tokio::time::interval(SECRET_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stamps: Arc<Mutex<SecretStamps>> = Arc::new(Mutex::new(SecretStamps::new()));
    let mut running: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        // The first tick is immediate: it stamps the files as loaded at startup.
        let force = tokio::select! {
            _ = tick.tick() => false,
            () = next_hangup(&mut hangup) => true,
        };
        if force && state.config_source.is_some() {
            tracing::info!(signal = "SIGHUP", "reloading the configuration");
            // Logged inside.
            let _ = state.reload_config().await;
            continue;
        }
        if let Some(job) = &running {
            if !job.is_finished() {
                tracing::warn!("secret poll skipped: the previous one is still reading files");
                continue;
            }
        }
        let job_state = Arc::clone(&state);
        let job_stamps = Arc::clone(&stamps);
        let mut job = tokio::task::spawn_blocking(move || {
            let mut stamps = job_stamps.lock().unwrap_or_else(|p| p.into_inner());
            // Changes are logged inside.
            drop(job_state.scraper.poll_secrets(&mut stamps, force));
        });
        running = match tokio::time::timeout(RELOAD_WAIT, &mut job).await {
            Ok(_) => None,
            Err(_) => Some(job),
        };
    }
}

#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = std::convert::Infallible;

#[cfg(unix)]
fn hangup_signal() -> Option<Hangup> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the web config is still polled");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<Hangup> {
    None
}

/// Resolves on the next SIGHUP; never, without a signal stream.
#[cfg(not(unix))]
async fn next_hangup(_: &mut Option<Hangup>) {
    std::future::pending::<()>().await
}

/// Resolves on the next SIGHUP; never, without a signal stream.
#[cfg(unix)]
async fn next_hangup(hangup: &mut Option<Hangup>) {
    match hangup {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Routes one request: authentication first (every path, as exporter-toolkit
/// does), then the method check, then the handler.
pub async fn handle(state: &AppState, req: Request<Incoming>) -> Response<Body> {
    let security = state.web_security.current();
    let mut resp = if req.headers().get_all(HOST).iter().nth(1).is_some() {
        // RFC 9112 section 3.2: more than one Host is a 400, whatever the path.
        state.scraper.count_request(handler_name(state, req.uri().path()), 400);
        let mut resp = text(StatusCode::BAD_REQUEST, "more than one Host header\n");
        resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        resp
    } else {
        route(state, &security, req).await
    };
    for (name, value) in security.response_headers() {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

async fn route(state: &AppState, security: &crate::web_config::WebSecurity, req: Request<Incoming>) -> Response<Body> {
    if let Some(auth) = security.basic_auth() {
        match auth.check(req.headers().get(AUTHORIZATION)).await {
            AuthOutcome::Allowed => {}
            AuthOutcome::Denied => {
                let handler = handler_name(state, req.uri().path());
                // Never the header: it carries the password.
                tracing::debug!(handler, "basic auth failed");
                state.scraper.count_request(handler, 401);
                let mut resp = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                resp.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(WWW_AUTHENTICATE_CHALLENGE));
                return resp;
            }
            AuthOutcome::Busy => {
                state.scraper.count_request(handler_name(state, req.uri().path()), 503);
                let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, "too many authentication checks, retry\n");
                resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return resp;
            }
        }
    }
    if req.uri().path() == "/-/reload" {
        let resp = reload(state, req.method()).await;
        state.scraper.count_request("reload", resp.status().as_u16());
        return resp;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported\n");
        resp.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let path = req.uri().path();
    let (handler, resp) = if path == state.web.telemetry_path {
        ("metrics", metrics(state, &req).await)
    } else {
        match path {
            "/probe" => ("probe", probe(state, &req).await),
            "/discover" => ("discover", discover(state, &req).await),
            "/" => ("landing", landing(state)),
            "/-/healthy" => ("healthy", text(StatusCode::OK, "OK\n")),
            "/-/ready" => (
                "ready",
                if state.ready.load(Ordering::Acquire) {
                    text(StatusCode::OK, "OK\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                },
            ),
            _ => ("other", text(StatusCode::NOT_FOUND, "not found\n")),
        }
    };
    state.scraper.count_request(handler, resp.status().as_u16());
    resp
}

/// The `handler` label for a path (bounded: unknown paths are "other").
fn handler_name(state: &AppState, path: &str) -> &'static str {
    if path == state.web.telemetry_path {
        return "metrics";
    }
    match path {
        "/probe" => "probe",
        "/discover" => "discover",
        "/" => "landing",
        "/-/healthy" => "healthy",
        "/-/ready" => "ready",
        "/-/reload" => "reload",
        _ => "other",
    }
}

/// The collection deadline for a request: Prometheus' scrape timeout minus the
/// offset, clamped; the default when the header is absent or unusable.
pub fn deadline_for(headers: &hyper::HeaderMap, web: &WebConfig) -> Duration {
    let budget = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_DEADLINE.as_secs_f64())).saturating_sub(web.timeout_offset));
    budget.unwrap_or(web.default_timeout).clamp(MIN_DEADLINE, MAX_DEADLINE)
}

/// `/-/reload`, as Prometheus: POST or PUT only (405 otherwise, whether or
/// not the lifecycle API is on), 403 without `--web.enable-lifecycle`, 500
/// when the new configuration is invalid (the running one stays; the reason
/// is in the log, not the response).
async fn reload(state: &AppState, method: &Method) -> Response<Body> {
    if method != Method::POST && method != Method::PUT {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "This endpoint requires a POST request.\n");
        resp.headers_mut().insert(ALLOW, HeaderValue::from_static("POST, PUT"));
        return resp;
    }
    if !state.web.enable_lifecycle {
        return text(StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n");
    }
    match state.reload_config().await {
        Ok(_) => text(StatusCode::OK, "OK\n"),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "failed to reload config, see the exporter's log\n"),
    }
}

/// 503 with `Retry-After`: every scrape slot is taken.
fn no_scrape_slot() -> Response<Body> {
    let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, "too many concurrent scrapes, see --web.max-requests\n");
    resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// 503 with `Retry-After`: too many requests already wait on this target.
fn no_target_slot() -> Response<Body> {
    let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, "too many requests waiting on this target, retry\n");
    resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

async fn metrics(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let Ok(_slot) = state.scrape_slots.try_acquire() else {
        return no_scrape_slot();
    };
    let deadline = Instant::now() + deadline_for(req.headers(), &state.web);
    let exposition = state.scraper.scrape_defaults(deadline).await;
    encode_response(req.headers(), exposition)
}

async fn probe(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let Some(name) = query_param(req.uri().query().unwrap_or(""), "target") else {
        return text(StatusCode::BAD_REQUEST, "missing 'target' parameter: /probe?target=NAME\n");
    };
    if !state.scraper.has_target(&name) {
        // Never echo the value: it is attacker-controlled and may be a URL with credentials.
        return text(StatusCode::BAD_REQUEST, "unknown target: /probe only scrapes targets named in --config.file\n");
    }
    // Requests waiting on one target take that target's slots; a request
    // that joins a collection already running costs the database nothing and
    // takes no scrape slot, so a hung target cannot starve the others.
    let Some(_target_slot) = state.target_slot(&name) else {
        return no_target_slot();
    };
    let query = req.uri().query().unwrap_or("");
    let member_probe = query.split('&').any(|pair| pair == "member" || pair.starts_with("member="));
    let joining = !member_probe && state.scraper.collection_in_flight(&name);
    let slot = if joining {
        state.join_slots.try_acquire().or_else(|_| state.scrape_slots.try_acquire())
    } else {
        state.scrape_slots.try_acquire()
    };
    let Ok(_slot) = slot else {
        return no_scrape_slot();
    };
    let deadline = Instant::now() + deadline_for(req.headers(), &state.web);
    if member_probe {
        let Some(member) = query_param(query, "member") else {
            return text(StatusCode::BAD_REQUEST, "invalid 'member' parameter\n");
        };
        return match state.scraper.scrape_member(&name, &member, deadline).await {
            Ok(exposition) => encode_response(req.headers(), exposition),
            // Never echo the member either: only addresses /discover listed are scraped.
            Err(MemberError::NotAMember) => text(
                StatusCode::BAD_REQUEST,
                "unknown member: /probe only scrapes members listed by /discover?target=NAME\n",
            ),
            Err(MemberError::Discovery(e)) => {
                tracing::warn!(target_name = %name, error = %e, "member discovery failed");
                text(StatusCode::SERVICE_UNAVAILABLE, "discovery failed, see the exporter's log\n")
            }
        };
    }
    encode_response(req.headers(), state.scraper.scrape_one(&name, deadline).await)
}

/// `/discover?target=NAME`: the target's members as Prometheus `http_sd` JSON,
/// each pointing at this exporter (the request's `Host` if it is a plain
/// `host[:port]`, else the listen address).
async fn discover(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let Some(name) = query_param(req.uri().query().unwrap_or(""), "target") else {
        return text(StatusCode::BAD_REQUEST, "missing 'target' parameter: /discover?target=NAME\n");
    };
    if !state.scraper.has_target(&name) {
        return text(StatusCode::BAD_REQUEST, "unknown target: /discover only asks targets named in --config.file\n");
    }
    let Some(_target_slot) = state.target_slot(&name) else {
        return no_target_slot();
    };
    let Ok(_slot) = state.scrape_slots.try_acquire() else {
        return no_scrape_slot();
    };
    let exporter = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| valid_authority(h))
        .unwrap_or(&state.web.listen_address)
        .to_string();
    match state.scraper.discover(&name, Instant::now() + discovery::DISCOVERY_DEADLINE).await {
        Ok(topology) => {
            let body = discovery::http_sd_json(&exporter, &name, &topology);
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::warn!(target_name = %name, error = %e, "discovery failed");
            text(StatusCode::SERVICE_UNAVAILABLE, "discovery failed, see the exporter's log\n")
        }
    }
}

/// Whether a `Host` value is a well-formed `host[:port]` that may be
/// reflected: a DNS name (labels of letters, digits, `-` and `_`, not starting
/// or ending with `-`), an IPv4 address or a bracketed IPv6 address, and an
/// optional port 1-65535.
fn valid_authority(value: &str) -> bool {
    if value.is_empty() || value.len() > 261 {
        return false;
    }
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else { return false };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(value), None),
        }
    };
    if let Some(port) = port {
        let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || !matches!(port.parse::<u32>(), Ok(1..=65535)) {
            return false;
        }
    }
    match host {
        None => true,
        Some(host) => host.parse::<std::net::Ipv4Addr>().is_ok() || valid_dns_name(host),
    }
}

fn valid_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        // All digits and dots is an IPv4 address or nothing.
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Encodes an exposition in the format the request's `Accept` header
/// negotiates ([`crate::metrics::negotiate`]), gzip-compressed when its
/// `Accept-Encoding` allows gzip.
fn encode_response(headers: &HeaderMap, exposition: crate::metrics::Exposition) -> Response<Body> {
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::negotiate(accept);
    let mut body = exposition.encode(format);
    let gzip = accepts_gzip(headers);
    if gzip {
        match gzip_bytes(&body) {
            Ok(compressed) => body = compressed,
            Err(e) => {
                tracing::error!(error = %e, "compressing the exposition failed");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n");
            }
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if gzip {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*` with a non-zero
/// `q`; an explicit `gzip;q=0` refuses it even when `*` is allowed).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = false;
    for value in headers.get_all(ACCEPT_ENCODING).iter().take(8) {
        let Ok(value) = value.to_str() else { continue };
        for coding in value.split(',').take(32) {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                return q > 0.0;
            }
            if name == "*" {
                star = q > 0.0;
            }
        }
    }
    star
}

/// gzip at level 1 with a 4 KiB window: scrapes are small and frequent, so
/// speed and memory beat ratio (measured in scripts/bench-redis.sh). One
/// compressor per thread is reset and reused, so a scrape allocates no
/// deflate state (about 150 KiB with this window, 270 KiB with zlib's default).
fn gzip_bytes(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    const WINDOW_BITS: u8 = 12;
    thread_local! {
        static GZIP: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
    }
    GZIP.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compress = slot.get_or_insert_with(|| Compress::new_gzip(Compression::fast(), WINDOW_BITS));
        compress.reset();
        let mut out = Vec::with_capacity(body.len() / 4 + 64);
        loop {
            let consumed = usize::try_from(compress.total_in()).unwrap_or(body.len()).min(body.len());
            match compress.compress_vec(&body[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => out.reserve(out.capacity().max(4096)),
                Err(e) => {
                    // A failed stream may leave the state unusable: start over next time.
                    *slot = None;
                    return Err(std::io::Error::other(e));
                }
            }
        }
    })
}

/// First value of `key` in a query string, percent-decoded; `None` if absent or not UTF-8.
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v)).flatten()
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn landing(state: &AppState) -> Response<Body> {
    let mut rows = String::new();
    for (name, kind, address, default) in state.scraper.target_list() {
        let link = if default {
            format!("<a href=\"{}\">{}</a>", html(&state.web.telemetry_path), html(&state.web.telemetry_path))
        } else {
            format!("<a href=\"/probe?target={0}\">/probe?target={0}</a>", html(&name))
        };
        let link = format!("{link} &middot; <a href=\"/discover?target={0}\">/discover?target={0}</a>", html(&name));
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            html(&name),
            kind,
            html(&address),
            link
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">no targets configured (see --redis.addr and --config.file)</td></tr>\n");
    }
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tenderly-exporter</title></head>\n\
         <body>\n<h1>tenderly-exporter</h1>\n<p>Version {} (revision {})</p>\n\
         <p><a href=\"{}\">Metrics</a> &middot; <a href=\"/-/healthy\">Health</a> &middot; <a href=\"/-/ready\">Readiness</a></p>\n\
         <h2>Targets</h2>\n<table>\n<tr><th>name</th><th>kind</th><th>address</th><th>scrape</th></tr>\n{}</table>\n</body></html>\n",
        html(crate::build_info::version()),
        html(crate::build_info::revision()),
        html(&state.web.telemetry_path),
        rows
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

#[cfg(test)]
mod tests {
    /// The reused compressor gives a complete, correct gzip stream every
    /// time, for small and large bodies alike.
    #[test]
    fn gzip_reuses_its_state_and_round_trips() {
        use std::io::Read;
        let big: Vec<u8> =
            (0..200_000u32).flat_map(|i| format!("m{{i=\"{}\"}} {}\n", i % 97, i).into_bytes()).collect();
        for body in [&b""[..], &b"x 1\n"[..], &big[..], &b"redis_up 1\n"[..]] {
            let packed = gzip_bytes(body).expect("gzip");
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut unpacked).expect("valid gzip");
            assert_eq!(unpacked, body);
        }
    }

    use super::*;

    fn web() -> WebConfig {
        WebConfig {
            listen_address: "127.0.0.1:0".into(),
            web_config_file: None,
            telemetry_path: "/metrics".into(),
            max_requests: 4,
            timeout_offset: Duration::from_millis(500),
            default_timeout: Duration::from_secs(9),
            enable_lifecycle: false,
        }
    }

    #[test]
    fn deadline_uses_header_minus_offset_and_clamps() {
        let mut h = hyper::HeaderMap::new();
        assert_eq!(deadline_for(&h, &web()), Duration::from_secs(9));
        h.insert("x-prometheus-scrape-timeout-seconds", HeaderValue::from_static("10"));
        assert_eq!(deadline_for(&h, &web()), Duration::from_millis(9500));
        h.insert("x-prometheus-scrape-timeout-seconds", HeaderValue::from_static("0.1"));
        assert_eq!(deadline_for(&h, &web()), MIN_DEADLINE);
        h.insert("x-prometheus-scrape-timeout-seconds", HeaderValue::from_static("1e9"));
        assert_eq!(deadline_for(&h, &web()), MAX_DEADLINE.saturating_sub(Duration::from_millis(500)));
        h.insert("x-prometheus-scrape-timeout-seconds", HeaderValue::from_static("NaN"));
        assert_eq!(deadline_for(&h, &web()), Duration::from_secs(9));
    }

    #[test]
    fn query_params_decode() {
        assert_eq!(query_param("target=redis-1", "target").as_deref(), Some("redis-1"));
        assert_eq!(query_param("a=b&target=x%2Dy", "target").as_deref(), Some("x-y"));
        assert_eq!(query_param("target=%zz", "target"), None);
        assert_eq!(query_param("other=1", "target"), None);
    }

    #[test]
    fn authorities_are_validated_before_reflection() {
        for good in
            ["exporter.example:9879", "localhost", "127.0.0.1:9121", "[::1]:9879", "[::1]", "my_host:1", "a-b.c"]
        {
            assert!(valid_authority(good), "{good}");
        }
        for bad in [
            "[::1",
            ":99999",
            ":9121",
            "-evil.com",
            "evil-.com",
            "a..b",
            "host:0",
            "host:65536",
            "host:+80",
            "host:",
            "::1",
            "[::1]x",
            "[zz]:1",
            "evil\"host",
            "a/b",
            "1.2.3.999",
            "",
        ] {
            assert!(!valid_authority(bad), "{bad}");
        }
    }

    #[test]
    fn eviction_prefers_pipelining_silent_stalled_idle_and_never_busy() {
        let pipelining = (9, Standing::Pipelining { since_ms: 900 });
        assert_eq!(pick_victim([(1, Standing::Silent { since_ms: 1 }), pipelining]), Some(9));
        let silent = (1, Standing::Silent { since_ms: 500 });
        let stalled = (2, Standing::Stalled { since_ms: 100 });
        let idle = (3, Standing::Idle { since_ms: 10 });
        let busy = (4, Standing::Busy);
        assert_eq!(pick_victim([busy, idle, stalled, silent]), Some(1));
        assert_eq!(pick_victim([busy, idle, stalled]), Some(2));
        assert_eq!(pick_victim([busy, idle, (5, Standing::Idle { since_ms: 5 })]), Some(5));
        assert_eq!(pick_victim([busy]), None);
    }

    fn shared() -> Arc<ConnShared> {
        let table = Arc::new(ConnTable::new(1));
        let slot = table.admit().expect("an empty table has room");
        Arc::clone(&slot.shared)
    }

    /// A transport whose peer never reads: writes block once `capacity` bytes are in.
    fn never_read(capacity: usize) -> (GuardedIo<tokio::io::DuplexStream>, tokio::io::DuplexStream, Arc<ConnShared>) {
        let (ours, theirs) = tokio::io::duplex(capacity);
        let conn = shared();
        conn.got_byte.store(true, Ordering::Release);
        let mut io = GuardedIo::new(ours, Arc::clone(&conn), Instant::now());
        io.stall_limit = Duration::from_millis(300);
        io.drain_limit = Duration::from_millis(900);
        (io, theirs, conn)
    }

    #[tokio::test]
    async fn a_write_the_peer_never_reads_fails_at_the_stall_deadline() {
        let (mut io, _peer, conn) = never_read(64);
        io.write_all(&[b'x'; 64]).await.expect("fits the buffer");
        let started = std::time::Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(5), io.write_all(b"more"))
            .await
            .expect("the write deadline ends the wait")
            .expect_err("a stalled write fails");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{took:?}");
        assert_ne!(conn.stalled_since_ms.load(Ordering::Acquire), 0, "the stall is visible to the accept path");
        // Once passed, the deadline stays passed.
        assert!(io.write_all(b"x").await.is_err());
        assert!(io.flush().await.is_err());
    }

    #[tokio::test]
    async fn a_peer_that_reads_a_trickle_is_cut_at_the_drain_deadline() {
        let (mut io, mut peer, _conn) = never_read(64);
        let reader = tokio::spawn(async move {
            let mut byte = [0u8; 1];
            // One byte every 100 ms: progress, never drained.
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if peer.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
            }
        });
        let started = std::time::Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(5), io.write_all(&[b'x'; 4096]))
            .await
            .expect("the drain deadline ends the wait")
            .expect_err("a response that never drains fails");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(3), "{took:?}");
        reader.abort();
    }

    #[tokio::test]
    async fn a_drained_write_clears_the_stall() {
        let (mut io, mut peer, conn) = never_read(16);
        conn.phase.store(PHASE_RESPONDING, Ordering::Release);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut got = 0;
            while got < 64 {
                got += peer.read(&mut buf[got..]).await.expect("read");
            }
        });
        io.write_all(&[b'x'; 64]).await.expect("the peer reads");
        io.flush().await.expect("flushed");
        reader.await.expect("reader");
        assert_eq!(conn.stalled_since_ms.load(Ordering::Acquire), 0);
        assert_eq!(conn.phase.load(Ordering::Acquire), PHASE_IDLE, "a finished answer makes the connection idle");
    }

    #[test]
    fn pipelined_requests_are_counted_and_capped() {
        let conn = shared();
        conn.reads.fetch_add(1, Ordering::AcqRel);
        assert!(!conn.start_request(), "the first request");
        for _ in 1..MAX_PIPELINED_REQUESTS {
            assert!(!conn.start_request(), "pipelined, under the cap");
        }
        assert!(conn.start_request(), "pipelined, at the cap: close after this answer");
        // A request that needed a new read is not pipelined.
        conn.reads.fetch_add(1, Ordering::AcqRel);
        assert!(!conn.start_request());
        assert_eq!(conn.pipelined.load(Ordering::Acquire), 0);
    }

    #[test]
    fn per_target_slots_scale_with_max_requests() {
        assert_eq!(per_target_slots(40), 10);
        assert_eq!(per_target_slots(1), 2);
    }

    #[test]
    fn html_escapes() {
        assert_eq!(html("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
