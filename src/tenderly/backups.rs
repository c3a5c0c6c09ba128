//! Backup freshness from files on disk: the guide's `scripts/backup.sh` writes
//! `/backup/tenderly/backup_<date>.tar.gz` (mongodump + Redis RDB, compressed)
//! and the Redis section copies `dump.rdb` to `/backup/redis_<date>.rdb`.
//! Each configured source is a glob; per `kind` label the newest matching file
//! (by modification time) that is at least `min_size_bytes` large is the last
//! successful backup:
//!
//! * `tenderly_backup_last_success_timestamp_seconds{kind}`: its mtime;
//! * `tenderly_backup_size_bytes{kind}`: its size;
//! * `tenderly_backup_files{kind}`: matching files at least `min_size_bytes` large;
//! * `tenderly_backup_undersized_files{kind}`: matching files below it (an
//!   empty tarball from a failed `mongodump` is not a backup);
//! * `tenderly_backup_scan_success{kind}`: whether every source of the kind
//!   could be listed (a missing or unreadable directory is 0, not "no backups").
//!
//! The glob supports `*` (any run of characters within one path component) and
//! `?` (one character) in any component, e.g. `/backup/tenderly/*/redis_dump.rdb`;
//! `*` does not match a leading `.` (as in the shell); `**` is rejected. Work is
//! capped: at most [`MAX_MATCHES`] files and [`MAX_ENTRIES`] directory entries
//! per source. [`scan`] blocks (filesystem I/O): call it through
//! [`scan_with_deadline`], which runs it on the blocking pool under the scrape
//! deadline. File names are never exported or logged, only counts and times.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::time::{timeout_at, Instant};

use crate::metrics::{BaseUnit, Desc, Exposition, Label};

/// The name backup freshness goes by in the collector table.
pub const COLLECTOR: &str = "tenderly_backups";

/// Most files matched per source (the rest is ignored and the scan marked truncated).
pub const MAX_MATCHES: usize = 10_000;
/// Most directory entries examined per source.
pub const MAX_ENTRIES: usize = 100_000;
/// Most sources.
pub const MAX_SOURCES: usize = 32;

pub const LAST_SUCCESS: Desc = Desc::gauge(
    "tenderly_backup_last_success_timestamp_seconds",
    "Modification time of the newest backup file of this kind that is at least the configured minimum size.",
)
.unit(BaseUnit::Seconds)
.labels(&["kind"]);
pub const SIZE: Desc = Desc::gauge(
    "tenderly_backup_size_bytes",
    "Size of the newest backup file of this kind that is at least the configured minimum size.",
)
.unit(BaseUnit::Bytes)
.labels(&["kind"]);
pub const FILES: Desc =
    Desc::gauge("tenderly_backup_files", "Backup files of this kind that are at least the configured minimum size.")
        .labels(&["kind"]);
pub const UNDERSIZED: Desc = Desc::gauge(
    "tenderly_backup_undersized_files",
    "Files matching a backup glob of this kind that are smaller than the minimum size (failed or empty dumps).",
)
.labels(&["kind"]);
pub const SCAN_SUCCESS: Desc = Desc::gauge(
    "tenderly_backup_scan_success",
    "Whether every backup directory of this kind could be listed (1) or not (0).",
)
.labels(&["kind"]);

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&LAST_SUCCESS, &SIZE, &FILES, &UNDERSIZED, &SCAN_SUCCESS]
}

/// The top-level `backups:` section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupsConfig {
    #[serde(default)]
    pub sources: Vec<BackupSource>,
}

/// One glob of backup files.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupSource {
    /// The `kind` label (`mongodb`, `redis_rdb`, ...); several sources may share one.
    pub kind: String,
    /// Absolute path with `*`/`?` wildcards, e.g. `/backup/tenderly/backup_*.tar.gz`.
    pub glob: String,
    /// Smaller files do not count as a successful backup (default 1: non-empty).
    #[serde(default)]
    pub min_size_bytes: Option<u64>,
}

/// A configuration problem, naming the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {problem} ({fix})")]
pub struct BackupConfigError {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl BackupsConfig {
    pub fn validate(&self) -> Result<(), BackupConfigError> {
        let bad = |field: String, problem: &str, fix: &str| BackupConfigError {
            field,
            problem: problem.to_owned(),
            fix: fix.to_owned(),
        };
        if self.sources.len() > MAX_SOURCES {
            return Err(bad("backups.sources".into(), "more than 32 sources", "keep at most 32"));
        }
        for (i, s) in self.sources.iter().enumerate() {
            let kind_ok = s.kind.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && s.kind.len() <= 64
                && s.kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !kind_ok {
                return Err(bad(
                    format!("backups.sources[{i}].kind"),
                    "not a label value",
                    "use [a-z_][a-z0-9_]*, e.g. mongodb",
                ));
            }
            let glob = s.glob.as_str();
            if glob.is_empty() || glob.len() > 4096 || glob.contains('\0') || glob.ends_with('/') {
                return Err(bad(
                    format!("backups.sources[{i}].glob"),
                    "not a file pattern",
                    "use e.g. /backup/tenderly/backup_*.tar.gz",
                ));
            }
            if glob.contains("**") {
                return Err(bad(
                    format!("backups.sources[{i}].glob"),
                    "** is not supported",
                    "name each directory level, using * per level",
                ));
            }
            if !Path::new(glob).is_absolute() {
                return Err(bad(format!("backups.sources[{i}].glob"), "relative path", "use an absolute path"));
            }
        }
        Ok(())
    }

    /// The guide's layout: `scripts/backup.sh` tarballs and the Redis RDB copies.
    pub fn guide_example() -> Self {
        BackupsConfig {
            sources: vec![
                BackupSource {
                    kind: "full".into(),
                    glob: "/backup/tenderly/backup_*.tar.gz".into(),
                    min_size_bytes: Some(1024),
                },
                BackupSource { kind: "redis_rdb".into(), glob: "/backup/redis_*.rdb".into(), min_size_bytes: Some(18) },
            ],
        }
    }
}

/// Scan results for one `kind`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindSnapshot {
    pub kind: String,
    /// mtime and size of the newest file at least the minimum size.
    pub newest: Option<(SystemTime, u64)>,
    pub files: u64,
    pub undersized: u64,
    pub scan_ok: bool,
    /// A cap was reached: counts are lower bounds.
    pub truncated: bool,
}

/// Scan results for every configured kind, in first-configured order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupSnapshot {
    pub kinds: Vec<KindSnapshot>,
}

impl BackupSnapshot {
    pub fn kind(&self, kind: &str) -> Option<&KindSnapshot> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    pub fn encode(&self, out: &mut Exposition) {
        for k in &self.kinds {
            let labels = || -> Vec<Label> { vec![("kind", Cow::Owned(k.kind.clone()))] };
            out.add(&SCAN_SUCCESS, labels(), k.scan_ok);
            out.add(&FILES, labels(), k.files);
            out.add(&UNDERSIZED, labels(), k.undersized);
            if let Some((mtime, size)) = k.newest {
                let secs = mtime.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                out.add(&LAST_SUCCESS, labels(), secs);
                out.add(&SIZE, labels(), size);
            }
        }
    }
}

/// Lists every source (blocking I/O) and folds the results per kind.
pub fn scan(config: &BackupsConfig) -> BackupSnapshot {
    let mut snapshot = BackupSnapshot::default();
    for source in config.sources.iter().take(MAX_SOURCES) {
        let idx = match snapshot.kinds.iter().position(|k| k.kind == source.kind) {
            Some(i) => i,
            None => {
                snapshot.kinds.push(KindSnapshot {
                    kind: source.kind.clone(),
                    scan_ok: true,
                    ..KindSnapshot::default()
                });
                snapshot.kinds.len() - 1
            }
        };
        let min = source.min_size_bytes.unwrap_or(1);
        let (paths, listing) = expand(&source.glob);
        let kind = &mut snapshot.kinds[idx];
        kind.scan_ok &= listing.ok;
        kind.truncated |= listing.truncated;
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if !meta.is_file() {
                continue;
            }
            if meta.len() < min {
                kind.undersized += 1;
                continue;
            }
            kind.files += 1;
            let Ok(mtime) = meta.modified() else { continue };
            if kind.newest.is_none_or(|(t, _)| mtime > t) {
                kind.newest = Some((mtime, meta.len()));
            }
        }
    }
    snapshot
}

/// [`scan`] on the blocking pool, bounded by `deadline`; `None` when it did not finish in time.
pub async fn scan_with_deadline(config: &BackupsConfig, deadline: Instant) -> Option<BackupSnapshot> {
    let config = config.clone();
    match timeout_at(deadline, tokio::task::spawn_blocking(move || scan(&config))).await {
        Ok(Ok(snapshot)) => Some(snapshot),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Listing {
    ok: bool,
    truncated: bool,
}

/// Paths matching `glob` (sorted), and whether listing went well.
fn expand(glob: &str) -> (Vec<PathBuf>, Listing) {
    let mut listing = Listing { ok: true, truncated: false };
    let root = if glob.starts_with('/') { PathBuf::from("/") } else { PathBuf::from(".") };
    let components: Vec<&str> = glob.split('/').filter(|c| !c.is_empty()).collect();
    let mut candidates = vec![root];
    let mut examined = 0usize;
    for (i, component) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        if !component.contains(['*', '?']) {
            for c in &mut candidates {
                c.push(component);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &candidates {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(_) => {
                    // Missing or unreadable: "no backups" would be a lie.
                    listing.ok = false;
                    continue;
                }
            };
            let mut names: Vec<String> = Vec::new();
            for entry in entries {
                examined += 1;
                if examined > MAX_ENTRIES {
                    listing.truncated = true;
                    break;
                }
                let Ok(entry) = entry else { continue };
                let Ok(name) = entry.file_name().into_string() else { continue };
                if wildcard_match(component, &name) && (!name.starts_with('.') || component.starts_with('.')) {
                    names.push(name);
                }
            }
            names.sort();
            for name in names {
                let path = dir.join(&name);
                if !last && !path.is_dir() {
                    continue;
                }
                next.push(path);
                if next.len() >= MAX_MATCHES {
                    listing.truncated = true;
                    break;
                }
            }
        }
        candidates = next;
    }
    if first_wildcard(&components) == usize::MAX {
        // No wildcard at all: one fixed path; its directory must exist.
        if let Some(parent) = candidates.first().and_then(|p| p.parent()) {
            listing.ok = parent.is_dir();
        }
    }
    candidates.truncate(MAX_MATCHES);
    (candidates, listing)
}

fn first_wildcard(components: &[&str]) -> usize {
    components.iter().position(|c| c.contains(['*', '?'])).unwrap_or(usize::MAX)
}

/// `*` (any run) and `?` (one character) matching of one path component.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_within_one_component() {
        assert!(wildcard_match("backup_*.tar.gz", "backup_20250101_120000.tar.gz"));
        assert!(wildcard_match("redis_??.rdb", "redis_01.rdb"));
        assert!(!wildcard_match("redis_??.rdb", "redis_001.rdb"));
        assert!(!wildcard_match("backup_*.tar.gz", "backup_1.tar.gz.partial"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
    }

    #[test]
    fn validation_names_the_field() {
        let c = BackupsConfig {
            sources: vec![BackupSource { kind: "Full".into(), glob: "/b/*.tgz".into(), min_size_bytes: None }],
        };
        assert!(c.validate().expect_err("kind").field.ends_with(".kind"));
        let c = BackupsConfig {
            sources: vec![BackupSource { kind: "full".into(), glob: "/b/**/x".into(), min_size_bytes: None }],
        };
        assert!(c.validate().is_err());
        assert!(BackupsConfig::guide_example().validate().is_ok());
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }
}
