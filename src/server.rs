//! HTTP surface: `/metrics`, `/probe`, `/`, `/-/healthy`, `/-/ready`.
//!
//! `serve(listener, state, shutdown)` takes a bound listener so tests can bind
//! port 0. Limits: a semaphore caps concurrent scrapes (503 beyond, so a
//! scrape storm cannot pile work onto the databases), another caps open
//! connections, header reads time out (slowloris), headers are size-capped, and
//! only GET/HEAD are served. `/probe` only scrapes configured target names: an
//! unknown name is a 400 and no connection is attempted, so the exporter is
//! never a proxy into the network (redis_exporter's `/scrape` SSRF).

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::{WebConfig, MAX_DEADLINE, MIN_DEADLINE};
use crate::metrics::OPENMETRICS_CONTENT_TYPE;
use crate::scrape::Scraper;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on buffered request bytes (headers included).
const MAX_REQUEST_BUF: usize = 16 * 1024;
/// How long shutdown waits for in-flight requests beyond the longest deadline.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Shared state of the HTTP server.
pub struct AppState {
    pub web: WebConfig,
    pub scraper: Scraper,
    ready: AtomicBool,
    scrape_slots: Semaphore,
}

impl AppState {
    pub fn new(web: WebConfig, scraper: Scraper) -> Self {
        let slots = web.max_requests;
        AppState { web, scraper, ready: AtomicBool::new(false), scrape_slots: Semaphore::new(slots) }
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
        let state = Arc::clone(&state);
        let service = hyper::service::service_fn(move |req| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(handle(&state, req).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with error");
            }
            drop(permit);
        });
    }
    state.ready.store(false, Ordering::Release);
    drop(listener);
    let wait = MAX_DEADLINE.min(state.web.default_timeout.max(Duration::from_secs(30))) + SHUTDOWN_GRACE;
    if tokio::time::timeout(wait, graceful.shutdown()).await.is_err() {
        tracing::warn!(waited_seconds = wait.as_secs(), "in-flight requests did not finish before shutdown");
    }
    Ok(())
}

/// Routes one request.
pub async fn handle(state: &AppState, req: Request<Incoming>) -> Response<Body> {
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
    encode_response(state.scraper.scrape_one(&name, deadline).await)
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
        html(crate::scrape::version()),
        html(crate::scrape::revision()),
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
