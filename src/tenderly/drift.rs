//! Configuration drift against the DBA guide: `tenderly_config_drift{target,
//! setting}` is 1 when a server setting differs from the target's policy and
//! 0 when it matches; `setting` is the server's own parameter name.
//!
//! Nothing here sends a command. Redis settings come from the generic
//! collector's snapshot of the same scrape: `maxmemory` and `maxmemory_policy`
//! from INFO memory, `appendonly` from INFO persistence `aof_enabled`, and
//! `save` from the collector's targeted `CONFIG GET` (the policy asks the
//! collector to add `save` to the parameters it already reads; see
//! [`RedisDriftPolicy::config_params`]). The last `save` seen is remembered, so
//! a scrape whose snapshot carries no `CONFIG GET` reply (CONFIG refused, or
//! read less often than every scrape) still reports it. MongoDB's profiling
//! level (`profile`) comes from the profiler collector's `profile: -1` per
//! database: drift when any database's level differs.
//!
//! The defaults are the guide's `redis.conf` (`maxmemory 1gb`,
//! `maxmemory-policy allkeys-lru`, `save 900 1 / 300 10 / 60 10000`, no
//! `appendonly`, so `no`) and its production `mongod.conf`
//! (`operationProfiling` without a mode: level 0). A setting set to `null` in
//! the policy is not checked.

use std::borrow::Cow;
use std::sync::Mutex;

use serde::Deserialize;

use crate::collectors::redis::RedisSnapshot;
use crate::metrics::{Desc, Exposition, Label};

/// The `collector` label of the DBA guide's checks (drift, required indexes,
/// feature compatibility version, certificate expiry): cached readings that
/// report no success series of their own.
pub const COLLECTOR: &str = "tenderly_dba_checks";

pub const CONFIG_DRIFT: Desc = Desc::gauge(
    "tenderly_config_drift",
    "Whether a server setting differs from the configured policy, by default the DBA guide's (1) or matches it (0); setting is the server's own parameter name.",
)
.labels(&["target", "setting"]);

/// Every descriptor this module emits.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&CONFIG_DRIFT]
}

fn d_policy() -> Option<String> {
    Some("allkeys-lru".to_owned())
}
fn d_maxmemory() -> Option<String> {
    Some("1gb".to_owned())
}
fn d_save() -> Option<String> {
    Some("900 1 300 10 60 10000".to_owned())
}
fn d_appendonly() -> Option<String> {
    Some("no".to_owned())
}

/// A Redis target's `drift:` policy (keys are Redis' own parameter names).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisDriftPolicy {
    #[serde(rename = "maxmemory-policy", default = "d_policy")]
    pub maxmemory_policy: Option<String>,
    /// Bytes, or with Redis' units (`1gb` = 1024³, `1g` = 10⁹, `mb`, `kb`, ...).
    #[serde(default = "d_maxmemory")]
    pub maxmemory: Option<String>,
    /// Save points as `CONFIG GET save` prints them (`""` = none).
    #[serde(default = "d_save")]
    pub save: Option<String>,
    /// `yes` or `no`.
    #[serde(default = "d_appendonly")]
    pub appendonly: Option<String>,
}

impl Default for RedisDriftPolicy {
    fn default() -> Self {
        RedisDriftPolicy {
            maxmemory_policy: d_policy(),
            maxmemory: d_maxmemory(),
            save: d_save(),
            appendonly: d_appendonly(),
        }
    }
}

impl RedisDriftPolicy {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(m) = &self.maxmemory {
            parse_memory(m).ok_or_else(|| format!("maxmemory {m:?} is not a Redis memory size (e.g. 1gb)"))?;
        }
        if let Some(s) = &self.save {
            let tokens: Vec<&str> = s.split_whitespace().collect();
            if !tokens.len().is_multiple_of(2) || tokens.iter().any(|t| t.parse::<u64>().is_err()) {
                return Err(format!("save {s:?} is not pairs of numbers (e.g. \"900 1 300 10\")"));
            }
        }
        if let Some(a) = &self.appendonly {
            if a != "yes" && a != "no" {
                return Err(format!("appendonly {a:?} is not yes or no"));
            }
        }
        Ok(())
    }

    /// `CONFIG GET` parameters the collector must add for this policy.
    pub fn config_params(&self) -> Vec<&'static str> {
        if self.save.is_some() {
            vec!["save"]
        } else {
            Vec::new()
        }
    }
}

/// A Redis memory size in bytes (`1gb`, `512mb`, `100000`), as redis.conf reads it.
pub fn parse_memory(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1024 * 1024,
        "g" => 1_000_000_000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn same_save(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// A Redis target's policy and the last `save` value seen.
#[derive(Debug)]
pub struct RedisDrift {
    policy: RedisDriftPolicy,
    last_save: Mutex<Option<String>>,
}

impl RedisDrift {
    pub fn new(policy: RedisDriftPolicy) -> Self {
        RedisDrift { policy, last_save: Mutex::new(None) }
    }

    /// `(setting, drifted)` for each setting the policy names and the snapshot (or memory) shows.
    pub fn evaluate(&self, snapshot: &RedisSnapshot) -> Vec<(&'static str, bool)> {
        let p = &self.policy;
        let info = &snapshot.info;
        let mut out = Vec::new();
        if let (Some(want), Some(have)) = (&p.maxmemory_policy, info.get("maxmemory_policy")) {
            out.push(("maxmemory-policy", want != have));
        }
        if let (Some(want), Some(have)) = (p.maxmemory.as_deref().and_then(parse_memory), info.get_u64("maxmemory")) {
            out.push(("maxmemory", want != have));
        }
        if let Some(want) = &p.save {
            let mut last = self.last_save.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, v)) = snapshot.config.iter().find(|(k, _)| k == "save") {
                *last = Some(v.clone());
            }
            if let Some(have) = last.as_deref() {
                out.push(("save", !same_save(want, have)));
            }
        }
        if let (Some(want), Some(aof)) = (&p.appendonly, info.get("aof_enabled")) {
            let have = if aof == "1" { "yes" } else { "no" };
            out.push(("appendonly", want != have));
        }
        out
    }

    pub fn encode(&self, target: &str, snapshot: &RedisSnapshot, out: &mut Exposition) {
        encode_pairs(target, &self.evaluate(snapshot), out);
    }
}

fn d_profile() -> Option<i64> {
    Some(0)
}

/// A MongoDB target's `tenderly.drift:` policy.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MongoDriftPolicy {
    /// The profiling level every database should have (0 off, 1 slow operations, 2 all).
    #[serde(default = "d_profile")]
    pub profile: Option<i64>,
}

impl Default for MongoDriftPolicy {
    fn default() -> Self {
        MongoDriftPolicy { profile: d_profile() }
    }
}

impl MongoDriftPolicy {
    pub fn validate(&self) -> Result<(), String> {
        match self.profile {
            Some(level) if !(0..=2).contains(&level) => Err(format!("profile {level} is not 0, 1 or 2")),
            _ => Ok(()),
        }
    }

    /// `(setting, drifted)` from the profiling levels read this scrape.
    pub fn evaluate(&self, profile_levels: &[i64]) -> Vec<(&'static str, bool)> {
        match self.profile {
            Some(want) if !profile_levels.is_empty() => vec![("profile", profile_levels.iter().any(|l| *l != want))],
            _ => Vec::new(),
        }
    }
}

pub fn encode_pairs(target: &str, pairs: &[(&'static str, bool)], out: &mut Exposition) {
    for (setting, drifted) in pairs {
        let labels: Vec<Label> = vec![("target", Cow::Owned(target.to_owned())), ("setting", Cow::Borrowed(setting))];
        out.add(&CONFIG_DRIFT, labels, *drifted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_follow_redis_conf() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory("512mb"), Some(512 << 20));
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory("gb"), None);
        assert_eq!(parse_memory("99999999999999999999gb"), None);
    }

    #[test]
    fn mongo_profile_drifts_when_any_database_differs() {
        let p = MongoDriftPolicy::default();
        assert_eq!(p.evaluate(&[0, 0]), vec![("profile", false)]);
        assert_eq!(p.evaluate(&[0, 2]), vec![("profile", true)]);
        assert!(p.evaluate(&[]).is_empty());
        assert!(MongoDriftPolicy { profile: Some(3) }.validate().is_err());
    }

    #[test]
    fn policy_validation_and_yaml_defaults() {
        let p: RedisDriftPolicy = serde_norway::from_str("maxmemory: 2gb\nsave: null\n").expect("parses");
        assert_eq!(p.maxmemory_policy.as_deref(), Some("allkeys-lru"));
        assert_eq!(p.save, None);
        assert!(p.config_params().is_empty());
        assert!(p.validate().is_ok());
        assert!(RedisDriftPolicy { save: Some("900".into()), ..RedisDriftPolicy::default() }.validate().is_err());
        assert!(RedisDriftPolicy { appendonly: Some("always".into()), ..RedisDriftPolicy::default() }
            .validate()
            .is_err());
        assert!(same_save("900 1  300 10", "900 1 300 10"));
        assert!(!same_save("", "900 1"));
    }
}
