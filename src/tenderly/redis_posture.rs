//! Redis security posture: the DBA guide's "Redis Security" section and its
//! `redis.conf` (`requirepass`, `protected-mode yes`, `rename-command ... ""`),
//! checked continuously.
//!
//! Each check is exported as `tenderly_security_check{target,check}` (1 pass,
//! 0 fail) and `tenderly_security_check_evaluated{target,check}` (1 evaluated,
//! 0 not). A check that could not be evaluated (missing privilege, renamed
//! CONFIG, connection failure) has **no** `tenderly_security_check` sample, so
//! an unknown is never counted as a pass and never as a failure; alert on
//! `tenderly_security_check == 0` and, separately, on
//! `tenderly_security_check_evaluated == 0`. The MongoDB posture module exports
//! its checks through the same two descriptors ([`SECURITY_CHECK`],
//! [`SECURITY_CHECK_EVALUATED`]).
//!
//! Cost on the server, per run (run it every few minutes, not every scrape):
//! * `redis_auth_required` opens one extra, unauthenticated connection and
//!   sends `PING`; on a server that requires auth this is one `NOAUTH` error
//!   reply (`errorstat_NOAUTH` +1, `rejected_calls`... per run).
//! * one `COMMAND INFO`, and `CONFIG GET` only if CONFIG exists under the
//!   configured name (so a renamed CONFIG causes no error reply). A user
//!   without `+config|get` gets one `NOPERM` per run.
//! * `ACL DRYRUN` (Redis >= 7.0) only when an application user is configured.

use std::borrow::Cow;

use redis::aio::MultiplexedConnection;
use redis::Value;
use serde::Deserialize;
use tokio::time::{timeout_at, Instant};

pub use super::posture::{SECURITY_CHECK, SECURITY_CHECK_EVALUATED};
use crate::collectors::redis::client::{bytes_of, handshake_commands, open_connection, RedisError};
use crate::collectors::redis::load::CommandLoad;
use crate::collectors::redis::RedisOptions;
use crate::metrics::{Desc, Exposition};

/// Unauthenticated clients are refused (`requirepass`, or the `default` user is not `nopass`).
pub const AUTH_REQUIRED: &str = "redis_auth_required";
/// FLUSHALL, FLUSHDB, KEYS and CONFIG are renamed/disabled (or denied to the application user).
pub const DANGEROUS_COMMANDS_DISABLED: &str = "redis_dangerous_commands_disabled";
/// `protected-mode yes`.
pub const PROTECTED_MODE: &str = "redis_protected_mode";
/// `bind` lists specific interfaces (not `*`, `0.0.0.0`, `::` or nothing).
pub const NOT_BOUND_TO_ALL_INTERFACES: &str = "redis_not_bound_to_all_interfaces";
/// Only TLS connections are accepted (`port 0` and a `tls-port`).
pub const TLS_REQUIRED: &str = "redis_tls_required";

/// Every check, in export order.
pub const CHECKS: [&str; 5] =
    [AUTH_REQUIRED, DANGEROUS_COMMANDS_DISABLED, PROTECTED_MODE, NOT_BOUND_TO_ALL_INTERFACES, TLS_REQUIRED];

/// The commands the guide's redis.conf renames away, plus CONFIG (lower case, as COMMAND INFO takes them).
pub const DANGEROUS_COMMANDS: [&str; 4] = ["flushall", "flushdb", "keys", "config"];

/// Optional `posture:` settings of a Redis target.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisPostureConfig {
    /// The name CONFIG was renamed to (`rename-command CONFIG <name>`), so the
    /// CONFIG-based checks can still be evaluated. Treated as a secret.
    pub config_command: Option<String>,
    /// The application's ACL user: commands that still exist count as disabled
    /// when `ACL DRYRUN` shows this user may not run them (Redis >= 7.0, needs `+acl|dryrun`).
    pub app_user: Option<String>,
}

impl std::fmt::Debug for RedisPostureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPostureConfig")
            .field("config_command", &self.config_command.as_ref().map(|_| "<redacted>"))
            .field("app_user", &self.app_user)
            .finish()
    }
}

impl RedisPostureConfig {
    pub fn validate(&self) -> Result<(), String> {
        let ok = |s: &str| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
        if self.config_command.as_deref().is_some_and(|c| !ok(c)) {
            return Err("config_command: must be 1 to 128 printable characters without spaces".to_string());
        }
        if self.app_user.as_deref().is_some_and(|u| !ok(u)) {
            return Err("app_user: must be 1 to 128 printable characters without spaces".to_string());
        }
        Ok(())
    }
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// Could not be evaluated (privilege, renamed CONFIG, connection failure).
    NotEvaluated,
}

impl Outcome {
    fn from_bool(pass: bool) -> Self {
        if pass {
            Outcome::Pass
        } else {
            Outcome::Fail
        }
    }
}

/// The posture of one Redis target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisPosture {
    /// `(check, outcome)` for every entry of [`CHECKS`], in that order.
    pub checks: Vec<(&'static str, Outcome)>,
    /// Dangerous commands still available (for logs and `doctor`; never a label).
    pub dangerous_available: Vec<&'static str>,
}

impl RedisPosture {
    /// The outcome of `check` (`NotEvaluated` if unknown).
    pub fn outcome(&self, check: &str) -> Outcome {
        self.checks.iter().find(|(c, _)| *c == check).map_or(Outcome::NotEvaluated, |(_, o)| *o)
    }

    fn set(&mut self, check: &'static str, outcome: Outcome) {
        if let Some(entry) = self.checks.iter_mut().find(|(c, _)| *c == check) {
            entry.1 = outcome;
        }
    }

    /// Writes both families for every check.
    pub fn encode(&self, target: &str, out: &mut Exposition) {
        for (check, outcome) in &self.checks {
            let labels = || vec![("target", Cow::Owned(target.to_string())), ("check", Cow::Borrowed(*check))];
            out.add(&SECURITY_CHECK_EVALUATED, labels(), *outcome != Outcome::NotEvaluated);
            if *outcome != Outcome::NotEvaluated {
                out.add(&SECURITY_CHECK, labels(), *outcome == Outcome::Pass);
            }
        }
    }
}

/// Every descriptor this module exports.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&SECURITY_CHECK, &SECURITY_CHECK_EVALUATED]
}

/// Writes `posture` for `target` (free-function form of [`RedisPosture::encode`]).
pub fn encode(posture: &RedisPosture, target: &str, out: &mut Exposition) {
    posture.encode(target, out);
}

/// Runs every check with default options (CONFIG under its own name, no application user).
pub async fn check(target: &str, spec: &RedisOptions, deadline: Instant) -> RedisPosture {
    check_with(target, spec, &RedisPostureConfig::default(), deadline).await
}

/// Runs every check before `deadline`; a check that cannot finish is `NotEvaluated`.
pub async fn check_with(
    target: &str,
    spec: &RedisOptions,
    options: &RedisPostureConfig,
    deadline: Instant,
) -> RedisPosture {
    check_counted(target, spec, options, deadline, &CommandLoad::new()).await
}

/// [`check_with`], counting every command it sends (handshakes included) in `load`.
pub async fn check_counted(
    target: &str,
    spec: &RedisOptions,
    options: &RedisPostureConfig,
    deadline: Instant,
    load: &CommandLoad,
) -> RedisPosture {
    let mut posture = RedisPosture {
        checks: CHECKS.iter().map(|c| (*c, Outcome::NotEvaluated)).collect(),
        dangerous_available: Vec::new(),
    };
    posture.set(AUTH_REQUIRED, probe_auth(spec, deadline, load).await);
    let sent_at = Instant::now();
    let mut conn = match open_connection(spec, None, true, deadline).await {
        Ok(conn) => {
            load.record(handshake_commands(spec, None, true), sent_at.elapsed());
            conn
        }
        Err(e) => {
            tracing::warn!(target_name = %target, address = %spec.url, error = %e, "posture check: cannot connect; checks not evaluated");
            return posture;
        }
    };
    if let Err(e) = evaluate_authenticated(&mut conn, options, &mut posture, deadline, load).await {
        tracing::warn!(target_name = %target, address = %spec.url, error = %e, "posture check incomplete");
    }
    if posture.outcome(DANGEROUS_COMMANDS_DISABLED) == Outcome::Fail {
        tracing::debug!(target_name = %target, commands = ?posture.dangerous_available, "dangerous commands available");
    }
    posture
}

/// An unauthenticated connection's PING: NOAUTH means authentication is required.
async fn probe_auth(spec: &RedisOptions, deadline: Instant, load: &CommandLoad) -> Outcome {
    let sent_at = Instant::now();
    let opened = open_connection(spec, None, false, deadline).await;
    if matches!(opened, Ok(_) | Err(RedisError::Auth(_))) {
        load.record(handshake_commands(spec, None, false), sent_at.elapsed());
    }
    let mut conn = match opened {
        Ok(conn) => conn,
        // The handshake itself (SELECT of a non-zero db) was refused for lack of AUTH.
        Err(RedisError::Auth(code)) if code == "NOAUTH" => return Outcome::Pass,
        // Protected mode refused a password-less server's remote client: no password is set.
        Err(RedisError::Auth(code)) if code == "DENIED" => return Outcome::Fail,
        Err(_) => return Outcome::NotEvaluated,
    };
    let sent_at = Instant::now();
    let reply = timeout_at(deadline, redis::cmd("PING").query_async::<Value>(&mut conn)).await;
    load.record(1, sent_at.elapsed());
    match reply {
        Err(_) => Outcome::NotEvaluated,
        Ok(Ok(_)) => Outcome::Fail,
        Ok(Err(e)) => match e.code() {
            Some("NOAUTH") => Outcome::Pass,
            // The password-less `default` user exists but may not PING, or protected mode refused us.
            Some("NOPERM" | "DENIED") => Outcome::Fail,
            _ => Outcome::NotEvaluated,
        },
    }
}

async fn query(
    conn: &mut MultiplexedConnection,
    pipe: &redis::Pipeline,
    deadline: Instant,
    load: &CommandLoad,
) -> Option<Vec<Value>> {
    let sent_at = Instant::now();
    let replies = timeout_at(deadline, pipe.query_async::<Vec<Value>>(conn)).await;
    load.record(pipe.len(), sent_at.elapsed());
    replies.ok()?.ok()
}

async fn evaluate_authenticated(
    conn: &mut MultiplexedConnection,
    options: &RedisPostureConfig,
    posture: &mut RedisPosture,
    deadline: Instant,
    load: &CommandLoad,
) -> Result<(), &'static str> {
    let config_name = options.config_command.clone().unwrap_or_else(|| "config".to_string());
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe.cmd("COMMAND").arg("INFO").arg(&DANGEROUS_COMMANDS).arg(&config_name);
    let replies = query(conn, &pipe, deadline, load).await.ok_or("COMMAND INFO")?;
    let exists: Option<Vec<bool>> = match replies.first() {
        Some(Value::Array(items)) if items.len() == DANGEROUS_COMMANDS.len() + 1 => {
            Some(items.iter().map(|v| !matches!(v, Value::Nil)).collect())
        }
        _ => None,
    };
    // Without COMMAND INFO we cannot tell whether CONFIG exists: try it (one error reply at worst).
    let config_exists = exists.as_ref().is_none_or(|e| e[DANGEROUS_COMMANDS.len()]);
    if let Some(exists) = &exists {
        posture.dangerous_available =
            DANGEROUS_COMMANDS.iter().zip(exists).filter(|(_, e)| **e).map(|(c, _)| *c).collect();
        let outcome = if posture.dangerous_available.is_empty() {
            Outcome::Pass
        } else if let Some(app_user) = &options.app_user {
            denied_to_app_user(conn, app_user, &posture.dangerous_available, deadline, load).await
        } else {
            Outcome::Fail
        };
        posture.set(DANGEROUS_COMMANDS_DISABLED, outcome);
    }
    if !config_exists {
        return Ok(());
    }
    // One parameter per CONFIG GET (Redis 6 takes one pattern); the first alone, so a
    // user without CONFIG GET costs the server one error reply, not four.
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe.cmd(&config_name).arg("GET").arg("protected-mode");
    let replies = query(conn, &pipe, deadline, load).await.ok_or("CONFIG GET")?;
    let Some(protected) = replies.first().and_then(|v| config_value(v, "protected-mode")) else {
        return Ok(());
    };
    posture.set(PROTECTED_MODE, Outcome::from_bool(protected.eq_ignore_ascii_case("yes")));
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for param in ["bind", "port", "tls-port"] {
        pipe.cmd(&config_name).arg("GET").arg(param);
    }
    let replies = query(conn, &pipe, deadline, load).await.ok_or("CONFIG GET")?;
    if let Some(bind) = replies.first().and_then(|v| config_value(v, "bind")) {
        posture.set(NOT_BOUND_TO_ALL_INTERFACES, Outcome::from_bool(!binds_all_interfaces(&bind)));
    }
    let port = replies.get(1).and_then(|v| config_value(v, "port")).and_then(|p| p.trim().parse::<u32>().ok());
    // A server built without TLS does not know tls-port: no TLS listener.
    let tls_port = match replies.get(2) {
        Some(Value::ServerError(_)) | None => None,
        Some(v) => Some(config_value(v, "tls-port").and_then(|p| p.trim().parse::<u32>().ok()).unwrap_or(0)),
    };
    if let (Some(port), Some(tls_port)) = (port, tls_port) {
        posture.set(TLS_REQUIRED, Outcome::from_bool(port == 0 && tls_port > 0));
    }
    Ok(())
}

/// `ACL DRYRUN <app_user> <command ...>` for each available dangerous command:
/// a denial string passes, `OK` fails, an error means not evaluated.
async fn denied_to_app_user(
    conn: &mut MultiplexedConnection,
    app_user: &str,
    available: &[&'static str],
    deadline: Instant,
    load: &CommandLoad,
) -> Outcome {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    let mut probes = 0;
    for command in available {
        // Arguments only satisfy arity; DRYRUN never executes anything.
        let variants: &[&[&str]] = match *command {
            "keys" => &[&["keys", "*"]],
            "config" => &[&["config", "get", "maxmemory"], &["config", "set", "maxmemory", "0"]],
            "flushall" => &[&["flushall"]],
            _ => &[&["flushdb"]],
        };
        for args in variants {
            pipe.cmd("ACL").arg("DRYRUN").arg(app_user).arg(*args);
            probes += 1;
        }
    }
    let Some(replies) = query(conn, &pipe, deadline, load).await else { return Outcome::NotEvaluated };
    if replies.len() != probes {
        return Outcome::NotEvaluated;
    }
    let mut all_denied = true;
    for reply in &replies {
        match reply {
            Value::Okay => all_denied = false,
            Value::SimpleString(s) if s == "OK" => all_denied = false,
            Value::BulkString(_) | Value::VerbatimString { .. } | Value::SimpleString(_) => {}
            _ => return Outcome::NotEvaluated,
        }
    }
    Outcome::from_bool(all_denied)
}

/// The value of `param` in a `CONFIG GET` reply (RESP2 flat array or RESP3 map).
fn config_value(reply: &Value, param: &str) -> Option<String> {
    let text = |v: &Value| bytes_of(v).map(|b| String::from_utf8_lossy(b).into_owned());
    match reply {
        Value::Array(items) => items
            .chunks_exact(2)
            .find(|kv| text(&kv[0]).is_some_and(|k| k.eq_ignore_ascii_case(param)))
            .and_then(|kv| text(&kv[1])),
        Value::Map(items) => items
            .iter()
            .find(|(k, _)| text(k).is_some_and(|k| k.eq_ignore_ascii_case(param)))
            .and_then(|(_, v)| text(v)),
        _ => None,
    }
}

/// Whether a `bind` value listens on every interface (`*`, `0.0.0.0`, `::`;
/// a leading `-` only makes an address optional) or is empty (all interfaces).
pub fn binds_all_interfaces(bind: &str) -> bool {
    let addrs: Vec<&str> = bind.split_whitespace().map(|a| a.trim_start_matches('-')).collect();
    addrs.is_empty() || addrs.iter().any(|a| matches!(*a, "*" | "0.0.0.0" | "::" | "::*" | "[::]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_values() {
        assert!(binds_all_interfaces("* -::*"));
        assert!(binds_all_interfaces(""));
        assert!(binds_all_interfaces("0.0.0.0"));
        assert!(binds_all_interfaces("127.0.0.1 ::"));
        assert!(!binds_all_interfaces("127.0.0.1 -::1"));
        assert!(!binds_all_interfaces("10.0.0.5"));
    }

    #[test]
    fn not_evaluated_checks_have_no_check_sample() {
        let posture = RedisPosture {
            checks: vec![(AUTH_REQUIRED, Outcome::Pass), (PROTECTED_MODE, Outcome::NotEvaluated)],
            dangerous_available: vec![],
        };
        let mut out = Exposition::new();
        posture.encode("cache", &mut out);
        let pass = [("target", "cache"), ("check", AUTH_REQUIRED)];
        let unknown = [("target", "cache"), ("check", PROTECTED_MODE)];
        assert_eq!(out.get("tenderly_security_check", &pass).map(|v| v.as_f64()), Some(1.0));
        assert_eq!(out.get("tenderly_security_check_evaluated", &pass).map(|v| v.as_f64()), Some(1.0));
        assert_eq!(out.get("tenderly_security_check", &unknown), None);
        assert_eq!(out.get("tenderly_security_check_evaluated", &unknown).map(|v| v.as_f64()), Some(0.0));
    }

    #[test]
    fn config_values_from_resp2_and_resp3() {
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(
            config_value(&Value::Array(vec![b("protected-mode"), b("yes")]), "protected-mode").as_deref(),
            Some("yes")
        );
        assert_eq!(config_value(&Value::Map(vec![(b("bind"), b("* -::*"))]), "bind").as_deref(), Some("* -::*"));
        assert_eq!(config_value(&Value::Array(vec![]), "bind"), None);
    }

    #[test]
    fn descriptors_are_well_formed_and_config_is_redacted() {
        for d in descriptors() {
            assert!(d.is_well_formed(), "{}", d.name);
        }
        let c = RedisPostureConfig { config_command: Some("CONFIG-s3cret".into()), app_user: Some("app".into()) };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.validate(), Ok(()));
        assert!(RedisPostureConfig { app_user: Some("a b".into()), ..Default::default() }.validate().is_err());
    }
}
