//! Pure parser for `INFO` replies (and `CLUSTER INFO`, which uses the same
//! `field:value` lines without section headers).
//!
//! Why lossless and infallible: the reply comes from a server we do not
//! control (Redis, Valkey, KeyDB, managed forks), whose field set changes with
//! every release. A parser that rejects the whole reply because one field looks
//! odd would turn a cosmetic server change into a monitoring outage. So every
//! line is kept as text, in order, under its section; typed views
//! ([`Info::keyspace`], [`Info::command_stats`], ...) are computed from field
//! *names* (never positions) and degrade field by field: a garbage value yields
//! `None` for that one value, not a missing row.
//!
//! Resource caps: a line longer than [`MAX_LINE_BYTES`] is dropped (truncating
//! it could turn `123456` into `123`, a plausible but wrong number), and at most
//! [`MAX_FIELDS`] fields are kept. Both are counted in [`Info::dropped_lines`].

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::metrics::FxHasher;

/// Longest line kept. Real INFO lines are well under 1 KiB; the longest are
/// `module:` and `cmdstat_` lines.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Most fields kept from one reply. `INFO ALL` on a busy server has a few
/// hundred (one `cmdstat_`, `latency_percentiles_usec_` per command used).
pub const MAX_FIELDS: usize = 20_000;

/// One `# Name` section and its fields in reply order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// Header text after `# ` (`Server`, `Keyspace`, ...); empty for fields
    /// that precede any header (the whole of a `CLUSTER INFO` reply).
    pub name: String,
    /// `(field, value)` pairs in reply order, duplicates kept (several
    /// `module:` lines are normal), as byte ranges of the reply text (one
    /// allocation per reply instead of two per field); read them through
    /// [`Info::fields`] or [`Info::section_fields`].
    pub fields: Vec<(Span, Span)>,
}

/// A byte range `start..end` of an [`Info`]'s text.
pub type Span = (u32, u32);

/// A parsed `INFO` (or `CLUSTER INFO`) reply.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// The reply as text (invalid UTF-8 replaced); fields point into it.
    text: String,
    sections: Vec<Section>,
    /// Hash of a field name -> (section index, field index) of its first
    /// occurrence. Keyed by hash so building it costs no allocation per field
    /// (this runs on every scrape); `get` confirms the name, and the rare
    /// different name with an equal hash goes to `collisions`.
    index: HashMap<u64, (usize, usize), BuildHasherDefault<PassThroughHasher>>,
    collisions: Vec<(usize, usize)>,
    field_count: usize,
    dropped_lines: usize,
}

/// Two replies are equal when they hold the same sections and fields (by
/// text, wherever in the reply they sat) and dropped the same lines.
impl PartialEq for Info {
    fn eq(&self, other: &Self) -> bool {
        self.dropped_lines == other.dropped_lines
            && self.sections.len() == other.sections.len()
            && self.sections.iter().zip(&other.sections).all(|(a, b)| {
                a.name == b.name
                    && a.fields.len() == b.fields.len()
                    && self.section_fields(a).eq(other.section_fields(b))
            })
    }
}

impl Eq for Info {}

/// The index keys are already hashes: use them as they are.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn span_str(text: &str, (start, end): Span) -> &str {
    text.get(start as usize..end as usize).unwrap_or("")
}

fn name_hash(name: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(name.as_bytes());
    hasher.finish()
}

/// Parses a raw reply. Never fails and never panics: CRLF or LF line endings,
/// invalid UTF-8 (replaced lossily), missing headers, blank lines, lines
/// without `:` and unknown sections are all tolerated.
pub fn parse_info(raw: &[u8]) -> Info {
    // One validation for the whole reply (every real reply is UTF-8);
    // invalid bytes are replaced, never rejected. Replies are capped well
    // below 4 GiB (the connection's reply budget), so u32 offsets suffice;
    // anything beyond is dropped as too long.
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    };
    let mut info = Info::default();
    let lines = raw.iter().filter(|&&b| b == b'\n').count();
    info.index.reserve(lines.min(MAX_FIELDS));
    let base = text.as_ptr() as usize;
    let span = |part: &str| -> Option<Span> {
        let start = part.as_ptr() as usize - base;
        Some((u32::try_from(start).ok()?, u32::try_from(start + part.len()).ok()?))
    };
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_LINE_BYTES {
            info.dropped_lines += 1;
            continue;
        }
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('#') {
            info.sections.push(Section { name: header.trim_ascii().to_owned(), fields: Vec::new() });
            continue;
        }
        // Split at the first ':' only: values may contain ':' (`executable`,
        // IPv6 addresses in `slaveN:ip=`, `os` strings).
        let Some((field, value)) = line.split_once(':') else {
            info.dropped_lines += 1;
            continue;
        };
        let field = field.trim_ascii();
        if field.is_empty() {
            info.dropped_lines += 1;
            continue;
        }
        if info.field_count() >= MAX_FIELDS {
            info.dropped_lines += 1;
            continue;
        }
        let (Some(field), Some(value)) = (span(field), span(value.trim_ascii())) else {
            info.dropped_lines += 1;
            continue;
        };
        info.push_field(&text, field, value);
    }
    info.text = text;
    info
}

impl Info {
    fn field_count(&self) -> usize {
        self.field_count
    }

    fn push_field(&mut self, text: &str, field: Span, value: Span) {
        if self.sections.is_empty() {
            self.sections.push(Section::default());
        }
        let section_idx = self.sections.len() - 1;
        let field_idx = self.sections[section_idx].fields.len();
        let name = span_str(text, field);
        // First occurrence wins for `get`, the same rule `Exposition` applies
        // to duplicate samples; later ones stay visible through `fields()`.
        match self.index.entry(name_hash(name)) {
            Entry::Vacant(slot) => {
                slot.insert((section_idx, field_idx));
            }
            Entry::Occupied(slot) => {
                let (s, f) = *slot.get();
                let first = self.sections[s].fields[f].0;
                let known_collision =
                    self.collisions.iter().any(|&(cs, cf)| span_str(text, self.sections[cs].fields[cf].0) == name);
                if span_str(text, first) != name && !known_collision {
                    self.collisions.push((section_idx, field_idx));
                }
            }
        }
        self.sections[section_idx].fields.push((field, value));
        self.field_count += 1;
    }

    fn str_at(&self, at: Span) -> &str {
        span_str(&self.text, at)
    }

    fn field_at(&self, (s, f): (usize, usize)) -> Option<(&str, &str)> {
        let &(k, v) = self.sections.get(s)?.fields.get(f)?;
        Some((self.str_at(k), self.str_at(v)))
    }

    fn lookup_collision(&self, field: &str) -> Option<&str> {
        self.collisions.iter().filter_map(|&at| self.field_at(at)).find(|(k, _)| *k == field).map(|(_, v)| v)
    }

    /// Value of the first field named `field`, in any section.
    pub fn get(&self, field: &str) -> Option<&str> {
        let &at = self.index.get(&name_hash(field))?;
        match self.field_at(at) {
            Some((k, v)) if k == field => Some(v),
            _ => self.lookup_collision(field),
        }
    }

    /// The `(field, value)` pairs of one section, in reply order.
    pub fn section_fields<'a>(&'a self, section: &'a Section) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        section.fields.iter().map(move |&(k, v)| (self.str_at(k), self.str_at(v)))
    }

    /// The section whose header matches `name` case-insensitively
    /// (`"server"` finds `# Server`); `""` finds header-less fields.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// All sections in reply order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Every `(field, value)` pair in reply order, across sections.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.sections.iter().flat_map(move |s| self.section_fields(s))
    }

    /// The fields of section `name` when the reply has that section, else
    /// every field (a reply without headers, or a fork that names sections
    /// differently): the typed views read only where their lines live, not
    /// the whole reply once per view.
    fn fields_in<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a> {
        match self.section(name) {
            Some(section) => Box::new(self.section_fields(section)),
            None => Box::new(self.fields()),
        }
    }

    /// Whether the reply had no usable field at all (empty, garbage, or a
    /// non-INFO reply): the caller should treat the scrape as failed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Lines skipped because they were too long, had no `field:` part, or
    /// exceeded [`MAX_FIELDS`].
    pub fn dropped_lines(&self) -> usize {
        self.dropped_lines
    }

    /// `get` parsed as an unsigned integer.
    pub fn get_u64(&self, field: &str) -> Option<u64> {
        self.get(field).and_then(parse_u64)
    }

    /// `get` parsed as a signed integer (keeps `-1` sentinels visible to the caller).
    pub fn get_i64(&self, field: &str) -> Option<i64> {
        self.get(field).and_then(parse_i64)
    }

    /// `get` parsed as a finite float (integers accepted).
    pub fn get_f64(&self, field: &str) -> Option<f64> {
        self.get(field).and_then(parse_f64)
    }

    /// `dbN:keys=..,expires=..,avg_ttl=..[,subexpiry=..]` lines.
    pub fn keyspace(&self) -> Vec<KeyspaceDb> {
        self.fields_in("keyspace")
            .filter(|(k, _)| indexed_name(k, "db").is_some())
            .map(|(k, v)| {
                let mut db = KeyspaceDb { db: k.to_owned(), ..KeyspaceDb::default() };
                for (key, value) in parse_kv_list(v) {
                    match key {
                        "keys" => db.keys = parse_u64(value),
                        "expires" => db.expires = parse_u64(value),
                        "avg_ttl" => db.avg_ttl_ms = parse_u64(value),
                        // Redis 7.4 `subexpiry`, Valkey 8.1 `keys_with_volatile_items`:
                        // the same meaning under two names.
                        "subexpiry" | "keys_with_volatile_items" => db.keys_with_expiring_items = parse_u64(value),
                        _ => db.other.push((key.to_owned(), value.to_owned())),
                    }
                }
                db
            })
            .collect()
    }

    /// `slaveN:ip=,port=,state=,offset=,lag=` lines (on a master).
    pub fn replicas(&self) -> Vec<Replica> {
        self.fields_in("replication")
            .filter_map(|(k, v)| {
                let index = indexed_name(k, "slave")?;
                let mut replica = Replica { index, ..Replica::default() };
                for (key, value) in parse_kv_list(v) {
                    match key {
                        "ip" => replica.ip = value.to_owned(),
                        "port" => replica.port = parse_u16(value),
                        "state" => replica.state = value.to_owned(),
                        "offset" => replica.offset = parse_i64(value),
                        "lag" => replica.lag_seconds = parse_i64(value),
                        _ => {}
                    }
                }
                Some(replica)
            })
            .collect()
    }

    /// `cmdstat_<cmd>:calls=,usec=,usec_per_call=,rejected_calls=,failed_calls=` lines.
    pub fn command_stats(&self) -> Vec<CommandStat> {
        self.fields_in("commandstats")
            .filter_map(|(k, v)| {
                let cmd = k.strip_prefix("cmdstat_").filter(|c| !c.is_empty())?;
                let mut stat = CommandStat { cmd: cmd.to_owned(), ..CommandStat::default() };
                for (key, value) in parse_kv_list(v) {
                    match key {
                        "calls" => stat.calls = parse_u64(value),
                        "usec" => stat.usec = parse_u64(value),
                        "usec_per_call" => stat.usec_per_call = parse_f64(value),
                        "rejected_calls" => stat.rejected_calls = parse_u64(value),
                        "failed_calls" => stat.failed_calls = parse_u64(value),
                        _ => {}
                    }
                }
                Some(stat)
            })
            .collect()
    }

    /// `errorstat_<PREFIX>:count=` lines. The prefix is the first word of the
    /// error reply (`ERR`, `WRONGTYPE`, ...), a set Redis itself caps at 128.
    pub fn error_stats(&self) -> Vec<ErrorStat> {
        self.fields_in("errorstats")
            .filter_map(|(k, v)| {
                let error = k.strip_prefix("errorstat_").filter(|e| !e.is_empty())?;
                let count = parse_kv_list(v).find(|(key, _)| *key == "count").and_then(|(_, c)| parse_u64(c));
                Some(ErrorStat { error: error.to_owned(), count })
            })
            .collect()
    }

    /// `latency_percentiles_usec_<cmd>:p50=,p99=,p99.9=` lines. The set of
    /// percentiles is server configuration (`latency-tracking-info-percentiles`),
    /// so it is read from the line rather than assumed.
    pub fn latency_percentiles(&self) -> Vec<LatencyPercentiles> {
        self.fields_in("latencystats")
            .filter_map(|(k, v)| {
                let cmd = k.strip_prefix("latency_percentiles_usec_").filter(|c| !c.is_empty())?;
                let percentiles = parse_kv_list(v)
                    .filter_map(|(key, value)| {
                        let p = key.strip_prefix('p')?;
                        // Validate the percentile as a number, keep its text
                        // form so `99.9` does not become `99.90000000000001`.
                        parse_f64(p).filter(|p| (0.0..=100.0).contains(p))?;
                        Some((p.to_owned(), parse_f64(value)?))
                    })
                    .collect();
                Some(LatencyPercentiles { cmd: cmd.to_owned(), percentiles })
            })
            .collect()
    }

    /// `listenerN:name=,bind=,bind=,port=` lines (Redis 7+). `bind` may repeat.
    pub fn listeners(&self) -> Vec<Listener> {
        self.fields()
            .filter_map(|(k, v)| {
                let index = indexed_name(k, "listener")?;
                let mut listener = Listener { index, ..Listener::default() };
                for (key, value) in parse_kv_list(v) {
                    match key {
                        "name" => listener.name = value.to_owned(),
                        "bind" => listener.bind.push(value.to_owned()),
                        "port" => listener.port = parse_u16(value),
                        _ => listener.other.push((key.to_owned(), value.to_owned())),
                    }
                }
                Some(listener)
            })
            .collect()
    }

    /// `module:name=,ver=,api=,...` lines (one per loaded module, same field name).
    pub fn modules(&self) -> Vec<Module> {
        self.fields_in("modules")
            .filter(|(k, _)| *k == "module")
            .map(|(_, v)| {
                let mut module = Module::default();
                for (key, value) in parse_kv_list(v) {
                    match key {
                        "name" => module.name = value.to_owned(),
                        "ver" => module.ver = value.to_owned(),
                        _ => module.other.push((key.to_owned(), value.to_owned())),
                    }
                }
                module
            })
            .collect()
    }
}

/// One keyspace line. Every count is optional so one bad value does not hide the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyspaceDb {
    /// Field name as Redis prints it: `db0`, `db1`, ...
    pub db: String,
    pub keys: Option<u64>,
    pub expires: Option<u64>,
    /// Average TTL of expiring keys in milliseconds (`0` when unknown, e.g. on replicas).
    pub avg_ttl_ms: Option<u64>,
    /// Keys with per-field expirations (`subexpiry` / `keys_with_volatile_items`).
    pub keys_with_expiring_items: Option<u64>,
    /// Unknown `k=v` pairs, kept for callers that want them.
    pub other: Vec<(String, String)>,
}

/// One `slaveN:` line as seen from the master.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replica {
    pub index: u32,
    pub ip: String,
    pub port: Option<u16>,
    pub state: String,
    pub offset: Option<i64>,
    pub lag_seconds: Option<i64>,
}

/// One `cmdstat_` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandStat {
    /// Command name, `container|subcommand` for subcommands (`config|get`).
    pub cmd: String,
    pub calls: Option<u64>,
    pub usec: Option<u64>,
    pub usec_per_call: Option<f64>,
    /// Redis 6.2+.
    pub rejected_calls: Option<u64>,
    /// Redis 6.2+.
    pub failed_calls: Option<u64>,
}

/// One `errorstat_` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorStat {
    pub error: String,
    pub count: Option<u64>,
}

/// One `latency_percentiles_usec_` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyPercentiles {
    pub cmd: String,
    /// `(percentile as printed without the `p`, e.g. "99.9", value in microseconds)`.
    pub percentiles: Vec<(String, f64)>,
}

/// One `listenerN:` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listener {
    pub index: u32,
    pub name: String,
    pub bind: Vec<String>,
    pub port: Option<u16>,
    pub other: Vec<(String, String)>,
}

/// One `module:` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub ver: String,
    pub other: Vec<(String, String)>,
}

/// `prefix<digits>` -> the number; `slave_repl_offset` or `db` alone -> `None`.
fn indexed_name(field: &str, prefix: &str) -> Option<u32> {
    let digits = field.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Splits `a=1,b=2` into pairs. Parts without `=` are skipped (a truncated or
/// garbled part must not shift the meaning of the others: parsing is by key).
pub fn parse_kv_list(value: &str) -> impl Iterator<Item = (&str, &str)> {
    KvList { rest: value, done: false }
}

/// Iterator behind [`parse_kv_list`]: splits on ASCII `,` and `=` by byte
/// position (both are single bytes, so every cut is a char boundary); these
/// lines are short and parsed hundreds of times per scrape.
struct KvList<'a> {
    rest: &'a str,
    done: bool,
}

impl<'a> Iterator for KvList<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let bytes = self.rest.as_bytes();
            let part = match bytes.iter().position(|&b| b == b',') {
                Some(comma) => {
                    let part = &self.rest[..comma];
                    self.rest = &self.rest[comma + 1..];
                    part
                }
                None => {
                    self.done = true;
                    self.rest
                }
            };
            let Some(eq) = part.as_bytes().iter().position(|&b| b == b'=') else { continue };
            let key = part[..eq].trim_ascii();
            if !key.is_empty() {
                return Some((key, part[eq + 1..].trim_ascii()));
            }
        }
        None
    }
}

/// Unsigned integer; rejects signs, fractions and garbage.
pub fn parse_u64(s: &str) -> Option<u64> {
    s.trim_ascii().parse().ok()
}

/// Signed integer, so callers see `-1` sentinels and decide what they mean.
pub fn parse_i64(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

fn parse_u16(s: &str) -> Option<u16> {
    s.trim().parse().ok()
}

/// Finite float (integers accepted). `inf`/`nan`, which Rust's parser would
/// accept, are rejected: Redis never means them and they break counters.
pub fn parse_f64(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A percentage as Redis prints it (`100.11%`, or `0.00` without the sign in
/// some fields) converted to a ratio (`1.0011`): Prometheus convention is ratios.
pub fn parse_percent_ratio(s: &str) -> Option<f64> {
    let s = s.trim();
    let s = s.strip_suffix('%').unwrap_or(s);
    parse_f64(s).map(|v| v / 100.0)
}

/// A number keeping integer precision when the text is an integer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(v) => v as f64,
            Number::Float(v) => v,
        }
    }
}

/// Integer if the text is one (counters beyond 2^53 stay exact), otherwise a
/// finite float, otherwise `None`.
pub fn parse_number(s: &str) -> Option<Number> {
    parse_i64(s).map(Number::Int).or_else(|| parse_f64(s).map(Number::Float))
}

/// A label value taken from server text: at most [`MAX_LABEL_BYTES`] (cut on a
/// character boundary), control characters (a NUL, an escape sequence, a
/// newline) replaced by U+FFFD. Valid UTF-8 by construction (the parser
/// decoded the reply lossily), so a hostile or broken server can neither blow
/// up label sizes nor smuggle bytes a log viewer or a TSDB mishandles.
pub fn bounded_label(s: &str) -> Cow<'static, str> {
    let mut end = s.len().min(MAX_LABEL_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &s[..end];
    if cut.chars().any(char::is_control) {
        return Cow::Owned(cut.chars().map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect());
    }
    Cow::Owned(cut.to_owned())
}

/// Longest label value taken from server text.
pub const MAX_LABEL_BYTES: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_fields_and_first_duplicate_wins() {
        let info = parse_info(b"# Server\r\nredis_version:7.0.15\r\nx:1\r\n\r\n# Memory\r\nx:2\r\nused_memory:10\r\n");
        assert_eq!(info.get("redis_version"), Some("7.0.15"));
        assert_eq!(info.get("x"), Some("1"));
        assert_eq!(info.section("memory").map(|s| s.fields.len()), Some(2));
        assert_eq!(info.get_u64("used_memory"), Some(10));
    }

    #[test]
    fn values_keep_colons() {
        let info = parse_info(b"executable:/a:b\nslave0:ip=::1,port=6380,state=online,offset=5,lag=0\n");
        assert_eq!(info.get("executable"), Some("/a:b"));
        let r = info.replicas();
        assert_eq!(r[0].ip, "::1");
        assert_eq!(r[0].port, Some(6380));
    }

    #[test]
    fn indexed_names_are_exact() {
        assert_eq!(indexed_name("db0", "db"), Some(0));
        assert_eq!(indexed_name("db", "db"), None);
        assert_eq!(indexed_name("slave_repl_offset", "slave"), None);
        assert_eq!(indexed_name("db1x", "db"), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_percent_ratio("100.11%"), Some(1.0011));
        assert_eq!(parse_percent_ratio("0.00"), Some(0.0));
        assert_eq!(parse_f64("inf"), None);
        assert_eq!(parse_f64("NaN"), None);
        assert_eq!(parse_number("-1"), Some(Number::Int(-1)));
        assert_eq!(parse_number("4.93"), Some(Number::Float(4.93)));
        assert_eq!(parse_number("x"), None);
    }

    #[test]
    fn bounded_label_replaces_control_characters() {
        assert_eq!(bounded_label("a\0b\x1b[31mc\u{85}"), "a\u{FFFD}b\u{FFFD}[31mc\u{FFFD}");
        assert_eq!(bounded_label("plain|name"), "plain|name");
    }

    #[test]
    fn bounded_label_cuts_on_char_boundary() {
        let s = "é".repeat(100);
        let b = bounded_label(&s);
        assert!(b.len() <= 128);
        assert!(s.starts_with(b.as_ref()));
    }
}
