//! HTTP surface: `/metrics`, `/probe`, `/discover`, `/`, `/-/healthy`, `/-/ready`.
//!
//! `serve(listener, state, shutdown)` takes a bound listener so tests can bind
//! port 0. Limits: a semaphore caps concurrent scrapes (503 beyond, so a
//! scrape storm cannot pile work onto the databases), another caps open
//! connections, header reads time out (slowloris), headers are size-capped, and
//! only GET/HEAD are served. `/probe` only scrapes configured target names: an
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

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::{WebConfig, MAX_DEADLINE, MIN_DEADLINE};
use crate::discovery;
use crate::metrics::OPENMETRICS_CONTENT_TYPE;
use crate::scrape::{MemberError, Scraper};
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
/// Go's answer to plain HTTP on a TLS port.
const HTTP_TO_HTTPS_RESPONSE: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Shared state of the HTTP server.
pub struct AppState {
    pub web: WebConfig,
    pub scraper: Scraper,
    ready: AtomicBool,
    scrape_slots: Semaphore,
    web_security: Arc<WebSecurityStore>,
}

impl AppState {
    /// Loads `web.web_config_file` (TLS, basic auth) if set; an invalid file is
    /// an error naming the field, so a bad config fails at startup.
    pub fn new(web: WebConfig, scraper: Scraper) -> Result<Self, WebConfigError> {
        let web_security = Arc::new(WebSecurityStore::load(web.web_config_file.as_deref())?);
        let slots = web.max_requests;
        Ok(AppState { web, scraper, ready: AtomicBool::new(false), scrape_slots: Semaphore::new(slots), web_security })
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
    let connection_slots = Arc::new(Semaphore::new((state.web.max_requests * 4).max(64)));
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
    state.ready.store(true, Ordering::Release);
    tokio::pin!(shutdown);
    let mut accept_backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = Arc::clone(&connection_slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
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
        let _ = stream.set_nodelay(true);
        let tls = state.web_security.current().tls_acceptor().cloned();
        let conn =
            Connection { state: Arc::clone(&state), builder: builder.clone(), watcher: graceful.watcher(), permit };
        match tls {
            None => {
                tokio::spawn(conn.serve(stream));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls_handshake(&acceptor, stream)).await {
                        Ok(Some(tls_stream)) => conn.serve(tls_stream).await,
                        Ok(None) => {}
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    state.ready.store(false, Ordering::Release);
    drop(listener);
    let wait = MAX_DEADLINE.min(state.web.default_timeout.max(Duration::from_secs(30))) + SHUTDOWN_GRACE;
    if tokio::time::timeout(wait, graceful.shutdown()).await.is_err() {
        tracing::warn!(waited_seconds = wait.as_secs(), "in-flight requests did not finish before shutdown");
    }
    Ok(())
}

/// One accepted connection's share of the server: what it needs once its
/// transport (TCP or TLS) is ready.
struct Connection {
    state: Arc<AppState>,
    builder: hyper::server::conn::http1::Builder,
    watcher: Watcher,
    permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = self.state;
        let service = hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(handle(&state, req).await) }
        });
        if let Err(e) = self.watcher.watch(self.builder.serve_connection(TokioIo::new(io), service)).await {
            tracing::debug!(error = %e, "connection closed with error");
        }
        drop(self.permit);
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
    let mut resp = route(state, &security, req).await;
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

async fn metrics(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let Ok(_slot) = state.scrape_slots.try_acquire() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many concurrent scrapes, see --web.max-requests\n");
    };
    let deadline = Instant::now() + deadline_for(req.headers(), &state.web);
    let exposition = state.scraper.scrape_defaults(deadline).await;
    encode_response(exposition)
}

async fn probe(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let Some(name) = query_param(req.uri().query().unwrap_or(""), "target") else {
        return text(StatusCode::BAD_REQUEST, "missing 'target' parameter: /probe?target=NAME\n");
    };
    if !state.scraper.has_target(&name) {
        // Never echo the value: it is attacker-controlled and may be a URL with credentials.
        return text(StatusCode::BAD_REQUEST, "unknown target: /probe only scrapes targets named in --config.file\n");
    }
    let Ok(_slot) = state.scrape_slots.try_acquire() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many concurrent scrapes, see --web.max-requests\n");
    };
    let deadline = Instant::now() + deadline_for(req.headers(), &state.web);
    let query = req.uri().query().unwrap_or("");
    if query.split('&').any(|pair| pair == "member" || pair.starts_with("member=")) {
        let Some(member) = query_param(query, "member") else {
            return text(StatusCode::BAD_REQUEST, "invalid 'member' parameter\n");
        };
        return match state.scraper.scrape_member(&name, &member, deadline).await {
            Ok(exposition) => encode_response(exposition),
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
    encode_response(state.scraper.scrape_one(&name, deadline).await)
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
    let Ok(_slot) = state.scrape_slots.try_acquire() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "too many concurrent scrapes, see --web.max-requests\n");
    };
    let exporter = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| discovery::valid_host_header(h))
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

fn encode_response(exposition: crate::metrics::Exposition) -> Response<Body> {
    match exposition.render() {
        Ok(body) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE));
            resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => {
            tracing::error!("encoding the exposition failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n")
        }
    }
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
    use super::*;

    fn web() -> WebConfig {
        WebConfig {
            listen_address: "127.0.0.1:0".into(),
            web_config_file: None,
            telemetry_path: "/metrics".into(),
            max_requests: 4,
            timeout_offset: Duration::from_millis(500),
            default_timeout: Duration::from_secs(9),
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
    fn html_escapes() {
        assert_eq!(html("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
