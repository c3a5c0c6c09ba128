//! MongoDB security posture from `getCmdLineOpts` (`parsed`: the options the
//! process actually started with, from the command line and the config file):
//! `tenderly_security_check{target,check}` 1 passing / 0 failing, and
//! `tenderly_security_check_evaluated{target,check}` 1 when the check could be
//! evaluated. A check that could not be evaluated (the exporter's user lacks
//! the `getCmdLineOpts` action of `clusterMonitor`, or the command failed) has
//! `evaluated` 0 and **no** `tenderly_security_check` sample: it is neither a
//! pass nor a failure, and alerts on `== 0` stay quiet while a separate alert
//! on `evaluated == 0` says the posture is unknown.
//!
//! The checks (`check` label) and what passes:
//!
//! | check | passes when |
//! |---|---|
//! | `mongodb_authorization_enabled` | `security.authorization: enabled`, or internal authentication is configured (`security.keyFile`, or `security.clusterAuthMode` `keyFile`/`sendKeyFile`/`sendX509`/`x509`), which enforces access control too; and `security.transitionToAuth` is not true (it accepts unauthenticated clients) |
//! | `mongodb_tls_required` | `net.tls.mode: requireTLS` or the pre-4.2 `net.ssl.mode: requireSSL` |
//! | `mongodb_not_bound_to_all_interfaces` | `net.bindIpAll` is not true and no `net.bindIp` entry is a wildcard (`*`, `0.0.0.0`, `::`, `::0`); an absent `bindIp` means localhost (the default since 3.6) |
//!
//! **mongos** has no `security.authorization` option: access control on a
//! router is enforced by internal authentication (`security.keyFile` or
//! `clusterAuthMode`), which is exactly the second half of the rule above, so
//! one rule serves mongod and mongos alike. A mongos without either (as in the
//! `getCmdLineOpts-mongos-8.0.8` capture) fails `mongodb_authorization_enabled`.
//!
//! The two families are declared once, in [`super::redis_posture`], and shared.

use std::borrow::Cow;

use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use tokio::time::{timeout_at, Instant};

use super::posture::{SECURITY_CHECK, SECURITY_CHECK_EVALUATED};
use crate::collectors::mongodb::bson_num;
use crate::collectors::mongodb::client::UNAUTHORIZED;
use crate::metrics::{Exposition, Label};

/// The MongoDB checks, in exposition order.
/// (`redis_*` checks are the Redis posture's; both share the two families.)
pub const CHECKS: [&str; 3] =
    ["mongodb_authorization_enabled", "mongodb_tls_required", "mongodb_not_bound_to_all_interfaces"];

/// Why the posture could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEvaluated {
    /// `getCmdLineOpts` refused: grant `clusterMonitor` on admin.
    Unauthorized,
    /// Timeout, network error or a reply without `parsed`.
    Failed,
}

/// The outcome of each check: `Some(pass)` or `None` (not evaluated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoPosture {
    pub authorization_enabled: Option<bool>,
    pub tls_required: Option<bool>,
    pub not_bound_to_all_interfaces: Option<bool>,
    /// Set when nothing could be evaluated.
    pub not_evaluated: Option<NotEvaluated>,
}

impl MongoPosture {
    /// Every check unknown, for `why`.
    pub fn unknown(why: NotEvaluated) -> Self {
        MongoPosture {
            authorization_enabled: None,
            tls_required: None,
            not_bound_to_all_interfaces: None,
            not_evaluated: Some(why),
        }
    }

    /// `(check, outcome)` pairs in [`CHECKS`] order.
    pub fn checks(&self) -> [(&'static str, Option<bool>); 3] {
        [
            (CHECKS[0], self.authorization_enabled),
            (CHECKS[1], self.tls_required),
            (CHECKS[2], self.not_bound_to_all_interfaces),
        ]
    }

    /// Emits both families for `target` (the target's configured name).
    pub fn encode(&self, target: &str, out: &mut Exposition) {
        for (check, outcome) in self.checks() {
            let labels =
                || -> Vec<Label> { vec![("target", Cow::Owned(target.to_owned())), ("check", Cow::Borrowed(check))] };
            out.add(&SECURITY_CHECK_EVALUATED, labels(), outcome.is_some());
            if let Some(pass) = outcome {
                out.add(&SECURITY_CHECK, labels(), pass);
            }
        }
    }
}

/// The posture from a `getCmdLineOpts` reply (pure).
pub fn parse(reply: &Document) -> MongoPosture {
    let ok = reply.get("ok").and_then(bson_num::num).is_none_or(|n| n.as_f64() >= 1.0);
    let Some(parsed) = reply.get_document("parsed").ok().filter(|_| ok) else {
        return MongoPosture::unknown(NotEvaluated::Failed);
    };
    let str_at = |path: &str| bson_num::str_at(parsed, path);
    let flag = |path: &str| bson_num::bool_at(parsed, path).unwrap_or(false);

    let authorization = str_at("security.authorization") == Some("enabled");
    let internal_auth = str_at("security.keyFile").is_some_and(|f| !f.is_empty())
        || matches!(str_at("security.clusterAuthMode"), Some("keyFile" | "sendKeyFile" | "sendX509" | "x509"));
    let authorization_enabled = (authorization || internal_auth) && !flag("security.transitionToAuth");

    let tls_required = str_at("net.tls.mode") == Some("requireTLS") || str_at("net.ssl.mode") == Some("requireSSL");

    let wildcard = |ip: &str| matches!(ip.trim(), "*" | "0.0.0.0" | "::" | "::0" | "0:0:0:0:0:0:0:0");
    let bind_all = flag("net.bindIpAll")
        || match bson_num::get(parsed, "net.bindIp") {
            Some(Bson::String(list)) => list.split(',').any(wildcard),
            Some(Bson::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(wildcard)),
            _ => false,
        };

    MongoPosture {
        authorization_enabled: Some(authorization_enabled),
        tls_required: Some(tls_required),
        not_bound_to_all_interfaces: Some(!bind_all),
        not_evaluated: None,
    }
}

/// Runs `getCmdLineOpts` on admin under `deadline`. Unauthorized: every check
/// not evaluated ([`NotEvaluated::Unauthorized`]); any other failure:
/// [`NotEvaluated::Failed`]. Never panics.
pub async fn check(client: &Client, deadline: Instant) -> MongoPosture {
    match timeout_at(
        deadline,
        crate::collectors::mongodb::client::run_command(&client.database("admin"), doc! {"getCmdLineOpts": 1}),
    )
    .await
    {
        Ok(Ok(reply)) => match crate::collectors::mongodb::bson_guard::check_document(
            reply,
            crate::collectors::mongodb::bson_guard::MAX_DEPTH,
        ) {
            Ok(reply) => parse(&reply),
            Err(_) => MongoPosture::unknown(NotEvaluated::Failed),
        },
        Ok(Err(e)) => match e.kind.as_ref() {
            mongodb::error::ErrorKind::Command(c) if c.code == UNAUTHORIZED => {
                MongoPosture::unknown(NotEvaluated::Unauthorized)
            }
            _ => MongoPosture::unknown(NotEvaluated::Failed),
        },
        Err(_) => MongoPosture::unknown(NotEvaluated::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hardened_mongod_passes_everything() {
        let reply = doc! {"parsed": {
            "net": {"bindIp": "127.0.0.1,10.0.0.5", "tls": {"mode": "requireTLS"}},
            "security": {"authorization": "enabled"},
        }, "ok": 1.0};
        let p = parse(&reply);
        assert_eq!(p.checks().map(|c| c.1), [Some(true); 3]);
    }

    #[test]
    fn weak_settings_fail_and_error_replies_are_not_evaluated() {
        let reply = doc! {"parsed": {
            "net": {"bindIpAll": true, "tls": {"mode": "preferTLS"}},
            "security": {"keyFile": "/k", "transitionToAuth": true},
        }, "ok": 1.0};
        assert_eq!(parse(&reply).checks().map(|c| c.1), [Some(false); 3]);
        let refused = doc! {"ok": 0.0, "code": 13};
        assert_eq!(parse(&refused), MongoPosture::unknown(NotEvaluated::Failed));
    }

    #[test]
    fn not_evaluated_checks_have_no_pass_fail_sample() {
        let mut out = Exposition::new();
        MongoPosture::unknown(NotEvaluated::Unauthorized).encode("db1", &mut out);
        assert_eq!(out.sample_count("tenderly_security_check"), 0);
        assert_eq!(out.sample_count("tenderly_security_check_evaluated"), 3);
    }
}
