//! The exposition model: metric descriptors declared once, and a per-scrape
//! [`Exposition`] that collectors fill with plain values.
//!
//! Why not `prometheus_client` metric types directly? A scrape produces target
//! data once and throws it away (DESIGN.md §1: fresh registry per scrape), and
//! several producers (one per target and collector) may add samples to the same
//! family (`tenderly_exporter_collector_success` for every target). OpenMetrics
//! requires each family to appear exactly once, so producers write into an
//! `Exposition`, which groups samples by family, drops duplicate label sets
//! (Prometheus would reject the whole scrape for one duplicate), and is then
//! encoded straight into bytes in the format the request negotiated
//! ([`negotiate`]): OpenMetrics 1.0.0 or the classic text format 0.0.4.
//!
//! Descriptors carry the full exposition name (`redis_commands_total`,
//! `redis_memory_used_bytes`) so the name in the source is the name users grep
//! for; the OpenMetrics encoding declares a counter family without `_total`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// The content type of every metrics response.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Metric type of a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

/// Base unit of a descriptor; the exposition name must end with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseUnit {
    Bytes,
    Seconds,
}

impl BaseUnit {
    fn suffix(self) -> &'static str {
        match self {
            BaseUnit::Bytes => "_bytes",
            BaseUnit::Seconds => "_seconds",
        }
    }
}

/// A metric family declared once: name, help, type, unit and label names.
/// The metrics reference (`docs/metrics.md`) is rendered from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    /// Full exposition name, e.g. `redis_commands_total`.
    pub name: &'static str,
    /// One full sentence.
    pub help: &'static str,
    pub kind: Kind,
    pub unit: Option<BaseUnit>,
    /// The label names every sample carries, in exposition order (`le` of a
    /// histogram is the encoder's, not listed). Checked on every sample in
    /// debug builds, so the declaration cannot drift from what is emitted.
    pub labels: &'static [&'static str],
}

impl Desc {
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Desc { name, help, kind: Kind::Gauge, unit: None, labels: &[] }
    }

    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Desc { name, help, kind: Kind::Counter, unit: None, labels: &[] }
    }

    pub const fn histogram(name: &'static str, help: &'static str) -> Self {
        Desc { name, help, kind: Kind::Histogram, unit: None, labels: &[] }
    }

    pub const fn summary(name: &'static str, help: &'static str) -> Self {
        Desc { name, help, kind: Kind::Summary, unit: None, labels: &[] }
    }

    /// Same descriptor with a base unit (the name must end in its suffix).
    pub const fn unit(mut self, unit: BaseUnit) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Same descriptor with its label names.
    pub const fn labels(mut self, labels: &'static [&'static str]) -> Self {
        self.labels = labels;
        self
    }

    /// Whether a sample's label names are exactly the declared ones (in any order).
    pub fn labels_match(&self, labels: &[Label]) -> bool {
        labels.len() == self.labels.len() && labels.iter().all(|(k, _)| self.labels.contains(k))
    }

    /// Whether the name follows the conventions the encoder relies on.
    pub fn is_well_formed(&self) -> bool {
        let counter_ok = self.kind != Kind::Counter || self.name.ends_with("_total");
        let name = self.name.strip_suffix("_total").unwrap_or(self.name);
        let unit_ok = self.unit.is_none_or(|u| name.ends_with(u.suffix()));
        let chars_ok = self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !self.name.starts_with(|c: char| c.is_ascii_digit());
        let help_ok = self.help.ends_with('.') && self.help.len() > 10 && !self.help.contains(['"', '\\', '\n']);
        // Sample suffixes of histograms and summaries are reserved (promtool
        // lints a gauge called `x_count`).
        let suffix_ok = matches!(self.kind, Kind::Histogram | Kind::Summary)
            || !["_count", "_sum", "_bucket"].iter().any(|s| self.name.ends_with(s));
        counter_ok && unit_ok && chars_ok && help_ok && suffix_ok
    }
}

/// One label pair. Keys are static (declared in code); values are bounded
/// strings chosen by the producer (never error text, key names or user data).
pub type Label = (&'static str, Cow<'static, str>);

/// A sample value. Integers are kept as integers so large counters do not
/// lose precision through `f64`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Float(f64),
    Histogram {
        sum: f64,
        count: u64,
        /// Observations per bucket (NOT cumulative: the encoder accumulates),
        /// by ascending upper bound; the last bound must be `f64::INFINITY`.
        buckets: Vec<(f64, u64)>,
    },
    /// A summary; `sum` and `count` are optional (OpenMetrics allows a
    /// summary of quantiles only).
    Summary {
        sum: Option<f64>,
        count: Option<u64>,
        /// `(quantile, value)` pairs, by ascending quantile.
        quantiles: Vec<(f64, f64)>,
    },
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Uint(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}

impl Value {
    /// The value as `f64` (histograms give their sum), for tests and comparisons.
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Int(v) => *v as f64,
            Value::Uint(v) => *v as f64,
            Value::Float(v) => *v,
            Value::Histogram { sum, .. } => *sum,
            Value::Summary { sum, .. } => sum.unwrap_or(f64::NAN),
        }
    }
}

#[derive(Debug, Clone)]
struct Sample {
    labels: Vec<Label>,
    value: Value,
}

#[derive(Debug, Clone)]
struct Family {
    desc: Desc,
    samples: Vec<Sample>,
}

/// Samples of one scrape, grouped by family in first-seen order.
///
/// Cost matters here (every scrape builds a few hundred samples), so adding a
/// sample does no hashing of labels: duplicate label sets are rare and are
/// dropped once, at render time ([`Family::dedup`]).
#[derive(Debug, Default, Clone)]
pub struct Exposition {
    families: Vec<Family>,
    index: HashMap<&'static str, usize, BuildHasherDefault<FxHasher>>,
    /// Index of the family the last sample went to: producers add a
    /// family's samples one after another, so most adds skip the hash.
    last: usize,
    /// Finished expositions shared with other requests (a target's
    /// collection), encoded with this one without copying their samples.
    shared: Vec<Arc<Exposition>>,
}

/// A small, fast, non-cryptographic hasher (the rustc "Fx" hash) for the
/// family index, whose keys are our own static metric names.
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Family {
    /// Drops samples whose label set repeats an earlier one (first wins),
    /// keeping order. Prometheus would reject the whole scrape otherwise.
    fn dedup(&mut self) {
        let n = self.samples.len();
        if n < 2 {
            return;
        }
        // Small families (nearly all): a quadratic scan without allocating.
        if n <= 32 {
            let dup = |i: usize| (0..i).any(|j| self.samples[j].labels == self.samples[i].labels);
            if (1..n).any(dup) {
                let mut i = 0;
                let flags: Vec<bool> = (0..n).map(dup).collect();
                self.samples.retain(|_| {
                    let keep = !flags[i];
                    i += 1;
                    keep
                });
            }
            return;
        }
        let mut order: Vec<usize> = (0..self.samples.len()).collect();
        order.sort_by(|&a, &b| self.samples[a].labels.cmp(&self.samples[b].labels).then(a.cmp(&b)));
        let mut drop = vec![false; self.samples.len()];
        for pair in order.windows(2) {
            if self.samples[pair[0]].labels == self.samples[pair[1]].labels {
                drop[pair[1]] = true;
            }
        }
        if drop.iter().any(|&d| d) {
            let mut i = 0;
            self.samples.retain(|_| {
                let keep = !drop[i];
                i += 1;
                keep
            });
        }
    }
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty exposition with room for `families` families (a Redis
    /// target's collection has about 150), so filling it does not regrow.
    pub fn with_capacity(families: usize) -> Self {
        let mut out = Self::default();
        out.families.reserve(families);
        out.index.reserve(families);
        out
    }

    /// Adds one sample. A repeated label set within a family is dropped (the
    /// first value wins); a non-finite value on a counter is dropped.
    pub fn add(&mut self, desc: &Desc, labels: Vec<Label>, value: impl Into<Value>) {
        let value = value.into();
        debug_assert!(
            desc.labels_match(&labels),
            "{}: declared labels {:?}, sample has {:?}",
            desc.name,
            desc.labels,
            labels.iter().map(|(k, _)| *k).collect::<Vec<_>>()
        );
        if desc.kind == Kind::Counter && !counter_value_ok(&value) {
            return;
        }
        self.family_mut(desc).samples.push(Sample { labels, value });
    }

    /// Adds a sample without labels.
    pub fn add_plain(&mut self, desc: &Desc, value: impl Into<Value>) {
        self.add(desc, Vec::new(), value);
    }

    /// Declares a family even if it ends up with no samples (keeps the
    /// `# HELP`/`# TYPE` lines stable for golden files).
    pub fn declare(&mut self, desc: &Desc) {
        self.family_mut(desc);
    }

    fn family_mut(&mut self, desc: &Desc) -> &mut Family {
        if self.families.get(self.last).is_some_and(|f| f.desc.name == desc.name) {
            return &mut self.families[self.last];
        }
        let idx = *self.index.entry(desc.name).or_insert_with(|| {
            self.families.push(Family { desc: *desc, samples: Vec::new() });
            self.families.len() - 1
        });
        self.last = idx;
        &mut self.families[idx]
    }

    /// Drops repeated label sets in every family (first wins), so the
    /// exposition can be shared read-only ([`Exposition::attach`]).
    pub fn dedup(&mut self) {
        for family in &mut self.families {
            family.dedup();
        }
    }

    /// Adds a finished exposition to be encoded with this one, without
    /// copying it. Families it shares with this one are merged at encoding
    /// time; a label set repeated across the two is dropped (first wins).
    pub fn attach(&mut self, part: Arc<Exposition>) {
        self.shared.push(part);
    }

    /// Every family of this exposition and of the attached ones, own first.
    fn all_families(&self) -> Vec<&Family> {
        let mut out: Vec<&Family> = self.families.iter().collect();
        for part in &self.shared {
            out.extend(part.all_families());
        }
        out
    }

    /// Moves every sample of `other` into `self` (families new to `self` move whole).
    pub fn merge(&mut self, other: Exposition) {
        self.shared.extend(other.shared);
        for family in other.families {
            match self.index.get(family.desc.name) {
                Some(&i) => self.families[i].samples.extend(family.samples),
                None => {
                    self.index.insert(family.desc.name, self.families.len());
                    self.families.push(family);
                }
            }
        }
    }

    /// The first sample of `name` whose labels include all of `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        let found = self.index.get(name).and_then(|&i| {
            self.families[i]
                .samples
                .iter()
                .find(|s| labels.iter().all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v)))
                .map(|s| &s.value)
        });
        found.or_else(|| self.shared.iter().find_map(|part| part.get(name, labels)))
    }

    /// Number of distinct samples in family `name` (0 if absent).
    pub fn sample_count(&self, name: &str) -> usize {
        let families = self.all_families().into_iter().filter(|f| f.desc.name == name);
        distinct(families.flat_map(|f| f.samples.iter()).collect()).len()
    }

    /// Names of all families, in order (each once).
    pub fn family_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let mut names: Vec<&'static str> = Vec::new();
        for family in self.all_families() {
            if !names.contains(&family.desc.name) {
                names.push(family.desc.name);
            }
        }
        names.into_iter()
    }

    /// Encodes as OpenMetrics text (ending in `# EOF`).
    pub fn render(self) -> Result<String, fmt::Error> {
        String::from_utf8(self.encode(Format::OpenMetrics)).map_err(|_| fmt::Error)
    }

    /// Encodes every family in `format`; both formats come from the same
    /// families and carry `# HELP` and `# TYPE` for each.
    pub fn encode(mut self, format: Format) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_size_hint());
        self.encode_into(format, &mut out);
        out
    }

    /// About the encoded size, so the output buffer does not regrow; walks
    /// the attached parts without collecting them.
    fn encoded_size_hint(&self) -> usize {
        let own: usize = self.families.iter().map(|f| 160 + f.samples.len() * 64).sum();
        own + self.shared.iter().map(|part| part.encoded_size_hint()).sum::<usize>() + 16
    }

    fn encode_into(&mut self, format: Format, out: &mut Vec<u8>) {
        for family in &mut self.families {
            family.dedup();
        }
        if self.shared.is_empty() {
            for family in &self.families {
                if !family.samples.is_empty() {
                    encode_family(&family.desc, family.samples.iter(), format, out);
                }
            }
        } else {
            // Group families by name in first-seen order, own families first.
            let all = self.all_families();
            let mut groups: Vec<Vec<&Family>> = Vec::with_capacity(all.len());
            let mut index: HashMap<&'static str, usize, BuildHasherDefault<FxHasher>> = HashMap::default();
            index.reserve(all.len());
            for family in all {
                match index.get(family.desc.name) {
                    Some(&i) => groups[i].push(family),
                    None => {
                        index.insert(family.desc.name, groups.len());
                        groups.push(vec![family]);
                    }
                }
            }
            for group in groups {
                if let [family] = group.as_slice() {
                    if !family.samples.is_empty() {
                        encode_family(&family.desc, family.samples.iter(), format, out);
                    }
                    continue;
                }
                let samples = distinct(group.iter().flat_map(|f| f.samples.iter()).collect());
                if !samples.is_empty() {
                    encode_family(&group[0].desc, samples.into_iter(), format, out);
                }
            }
        }
        if format == Format::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
    }
}

/// `samples` without repeated label sets, first wins, order kept.
fn distinct(samples: Vec<&Sample>) -> Vec<&Sample> {
    if samples.len() <= 32 {
        let mut out: Vec<&Sample> = Vec::with_capacity(samples.len());
        for sample in samples {
            if !out.iter().any(|s| s.labels == sample.labels) {
                out.push(sample);
            }
        }
        return out;
    }
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by(|&a, &b| samples[a].labels.cmp(&samples[b].labels).then(a.cmp(&b)));
    let mut keep = vec![true; samples.len()];
    for pair in order.windows(2) {
        if samples[pair[0]].labels == samples[pair[1]].labels {
            keep[pair[1]] = false;
        }
    }
    samples.into_iter().zip(keep).filter_map(|(s, k)| k.then_some(s)).collect()
}

/// An exposition format, chosen per request by [`negotiate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0 text (`# UNIT`, counters named without `_total` in
    /// `# TYPE`, ends with `# EOF`).
    OpenMetrics,
    /// The classic Prometheus text format 0.0.4.
    Text,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Text => TEXT_CONTENT_TYPE,
        }
    }
}

/// The content type of a classic text-format response.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Picks the format for an `Accept` header the way client_golang's promhttp
/// does: media ranges in order of their `q` (ties keep header order); the
/// first one that names OpenMetrics (version 1.0.0, 0.0.1 or none) selects
/// it, the first that names `text/plain` (version 0.0.4 or none) selects the
/// classic format; anything else (no header, `*/*`, protobuf) is the classic
/// format.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else { return Format::Text };
    let mut ranges: Vec<(f32, usize, Option<Format>)> = Vec::new();
    for (i, range) in accept.split(',').enumerate().take(64) {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let mut q = 1.0f32;
        let mut version: Option<&str> = None;
        for param in parts {
            let Some((k, v)) = param.split_once('=') else { continue };
            let v = v.trim().trim_matches('"');
            match k.trim() {
                k if k.eq_ignore_ascii_case("q") => q = v.parse().ok().filter(|q: &f32| q.is_finite()).unwrap_or(0.0),
                k if k.eq_ignore_ascii_case("version") => version = Some(v),
                _ => {}
            }
        }
        let format = if media.eq_ignore_ascii_case("application/openmetrics-text") {
            matches!(version, None | Some("1.0.0") | Some("0.0.1")).then_some(Format::OpenMetrics)
        } else if media.eq_ignore_ascii_case("text/plain") {
            matches!(version, None | Some("0.0.4")).then_some(Format::Text)
        } else {
            None
        };
        if q > 0.0 {
            ranges.push((q, i, format));
        }
    }
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges.into_iter().find_map(|(_, _, f)| f).unwrap_or(Format::Text)
}

fn counter_value_ok(value: &Value) -> bool {
    match value {
        Value::Int(v) => *v >= 0,
        Value::Uint(_) => true,
        Value::Float(v) => v.is_finite() && *v >= 0.0,
        Value::Histogram { .. } | Value::Summary { .. } => false,
    }
}

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
        Kind::Histogram => "histogram",
        Kind::Summary => "summary",
    }
}

fn encode_family<'a>(desc: &Desc, samples: impl Iterator<Item = &'a Sample>, format: Format, out: &mut Vec<u8>) {
    // OpenMetrics names the family without `_total`; the classic format
    // declares the name the samples carry.
    let declared = match format {
        Format::OpenMetrics => {
            desc.name.strip_suffix("_total").filter(|_| desc.kind == Kind::Counter).unwrap_or(desc.name)
        }
        Format::Text => desc.name,
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(declared.as_bytes());
    out.push(b' ');
    escape_help(desc.help, out);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(declared.as_bytes());
    out.push(b' ');
    out.extend_from_slice(type_name(desc.kind).as_bytes());
    out.push(b'\n');
    if let (Format::OpenMetrics, Some(unit)) = (format, desc.unit) {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(declared.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&unit.suffix().as_bytes()[1..]);
        out.push(b'\n');
    }
    for sample in samples {
        match (&sample.value, desc.kind) {
            (Value::Histogram { sum, count, buckets }, _) => {
                let mut cumulative = 0u64;
                for (bound, n) in buckets {
                    cumulative = cumulative.saturating_add(*n);
                    sample_line(out, desc.name, "_bucket", &sample.labels, Some(("le", *bound)), Num::U(cumulative));
                }
                sample_line(out, desc.name, "_count", &sample.labels, None, Num::U(*count));
                sample_line(out, desc.name, "_sum", &sample.labels, None, Num::F(*sum));
            }
            (Value::Summary { sum, count, quantiles }, _) => {
                for (q, v) in quantiles {
                    sample_line(out, desc.name, "", &sample.labels, Some(("quantile", *q)), Num::F(*v));
                }
                if let Some(count) = count {
                    sample_line(out, desc.name, "_count", &sample.labels, None, Num::U(*count));
                }
                if let Some(sum) = sum {
                    sample_line(out, desc.name, "_sum", &sample.labels, None, Num::F(*sum));
                }
            }
            (value, kind) => {
                let num = match (kind, value) {
                    (Kind::Counter, Value::Int(v)) => Num::U(v.unsigned_abs()),
                    (_, Value::Int(v)) => Num::I(*v),
                    (_, Value::Uint(v)) => Num::U(*v),
                    (_, v) => Num::F(v.as_f64()),
                };
                sample_line(out, desc.name, "", &sample.labels, None, num);
            }
        }
    }
}

enum Num {
    I(i64),
    U(u64),
    F(f64),
}

/// One sample line: `name[suffix]{labels[,extra]} value`. The extra label
/// (`le`, `quantile`) comes last, as client_golang writes it.
fn sample_line(out: &mut Vec<u8>, name: &str, suffix: &str, labels: &[Label], extra: Option<(&str, f64)>, value: Num) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() || extra.is_some() {
        out.push(b'{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label_value(value, out);
            out.push(b'"');
        }
        if let Some((key, bound)) = extra {
            if !labels.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"=\"");
            write_float(bound, out);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
    match value {
        Num::I(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Num::U(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
        Num::F(v) => write_float(v, out),
    }
    out.push(b'\n');
}

/// Shortest round-tripping decimal (`1.0`, `0.25`, `1e20`); the special
/// values in the spelling both formats define.
fn write_float(v: f64, out: &mut Vec<u8>) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else {
        out.extend_from_slice(dtoa::Buffer::new().format_finite(v).as_bytes());
    }
}

fn escape_label_value(value: &str, out: &mut Vec<u8>) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// HELP text: backslash and newline escaped (both formats).
fn escape_help(help: &str, out: &mut Vec<u8>) {
    // Declarations need no escaping: `Desc::is_well_formed` forbids `\\`,
    // `\n` and `"` in help texts, and tests/it/metrics_doc.rs checks every
    // declared family with it. Debug builds check each one encoded.
    debug_assert!(!help.contains(['\\', '\n']), "help text needs escaping: {help}");
    if cfg!(not(debug_assertions)) || !help.contains(['\\', '\n']) {
        out.extend_from_slice(help.as_bytes());
        return;
    }
    for b in help.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Desc = Desc::gauge("redis_up", "Whether the last scrape of Redis succeeded (1) or not (0).");
    const CMDS: Desc =
        Desc::counter("redis_commands_total", "Calls per command, from INFO commandstats.").labels(&["cmd"]);
    const DUR: Desc =
        Desc::counter("redis_commands_duration_seconds_total", "Time spent per command, from INFO commandstats.")
            .unit(BaseUnit::Seconds)
            .labels(&["cmd"]);
    const MEM: Desc =
        Desc::gauge("redis_memory_used_bytes", "Memory allocated by Redis, from INFO memory.").unit(BaseUnit::Bytes);

    #[test]
    fn render_keeps_full_names_and_ends_with_eof() {
        let mut e = Exposition::new();
        e.add_plain(&UP, 1i64);
        e.add(&CMDS, vec![("cmd", "get".into())], 3u64);
        e.add(&DUR, vec![("cmd", "get".into())], 0.25f64);
        e.add_plain(&MEM, 1024u64);
        let text = e.render().expect("encode");
        assert!(text.contains("redis_up 1\n"), "{text}");
        assert!(text.contains("# TYPE redis_commands counter\n"), "{text}");
        assert!(text.contains("redis_commands_total{cmd=\"get\"} 3\n"), "{text}");
        assert!(text.contains("redis_commands_duration_seconds_total{cmd=\"get\"} 0.25\n"), "{text}");
        assert!(text.contains("# UNIT redis_memory_used_bytes bytes\n"), "{text}");
        assert!(text.contains("redis_memory_used_bytes 1024\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn duplicate_label_sets_are_dropped_and_families_merge() {
        let mut a = Exposition::new();
        a.add(&CMDS, vec![("cmd", "get".into())], 1u64);
        let mut b = Exposition::new();
        b.add(&CMDS, vec![("cmd", "get".into())], 2u64);
        b.add(&CMDS, vec![("cmd", "set".into())], 5u64);
        a.merge(b);
        assert_eq!(a.sample_count("redis_commands_total"), 2);
        assert_eq!(a.get("redis_commands_total", &[("cmd", "get")]), Some(&Value::Uint(1)));
        let text = a.render().expect("encode");
        assert_eq!(text.matches("# TYPE redis_commands counter").count(), 1);
    }

    #[test]
    fn histograms_render_cumulative_buckets() {
        const H: Desc = Desc::histogram("x_duration_seconds", "Durations of x in seconds, for a test.")
            .unit(BaseUnit::Seconds)
            .labels(&["db"]);
        let mut e = Exposition::new();
        let buckets = vec![(0.1, 2), (1.0, 3), (f64::INFINITY, 1)];
        e.add(&H, vec![("db", "app".into())], Value::Histogram { sum: 4.5, count: 6, buckets });
        let text = e.render().expect("encode");
        assert!(text.contains("x_duration_seconds_bucket{db=\"app\",le=\"1.0\"} 5\n"), "{text}");
        assert!(text.contains("x_duration_seconds_bucket{db=\"app\",le=\"+Inf\"} 6\n"), "{text}");
        assert!(text.contains("x_duration_seconds_count{db=\"app\"} 6\n"), "{text}");
    }

    #[test]
    fn attached_parts_merge_by_family_without_duplicates() {
        let mut part = Exposition::new();
        part.add_plain(&UP, 1i64);
        part.add(&CMDS, vec![("cmd", "get".into())], 1u64);
        part.add(&CMDS, vec![("cmd", "get".into())], 9u64);
        part.dedup();
        let part = Arc::new(part);
        let mut out = Exposition::new();
        out.add(&CMDS, vec![("cmd", "set".into())], 2u64);
        out.add(&CMDS, vec![("cmd", "get".into())], 7u64);
        out.attach(Arc::clone(&part));
        out.attach(part);
        assert_eq!(out.sample_count("redis_commands_total"), 2);
        assert_eq!(out.get("redis_up", &[]), Some(&Value::Int(1)));
        let text = String::from_utf8(out.encode(Format::Text)).expect("utf-8");
        assert_eq!(text.matches("# TYPE redis_commands_total counter").count(), 1, "{text}");
        assert_eq!(text.matches("# TYPE redis_up gauge").count(), 1, "{text}");
        assert!(text.contains("redis_commands_total{cmd=\"get\"} 7\n"), "own samples win: {text}");
        assert!(!text.contains("} 9\n") && !text.contains("} 1\nredis_commands"), "{text}");
        assert_eq!(text.matches("redis_commands_total{").count(), 2, "{text}");
    }

    #[test]
    fn negative_or_nan_counters_are_dropped() {
        let mut e = Exposition::new();
        e.add(&CMDS, vec![("cmd", "y".into())], -1i64);
        e.add(&CMDS, vec![("cmd", "x".into())], f64::NAN);
        assert_eq!(e.sample_count("redis_commands_total"), 0);
    }

    #[test]
    fn well_formedness_catches_bad_descriptors() {
        assert!(UP.is_well_formed() && CMDS.is_well_formed() && DUR.is_well_formed() && MEM.is_well_formed());
        assert!(!Desc::counter("redis_commands", "Missing the total suffix here.").is_well_formed());
        assert!(!Desc::gauge("redis_mem", "Unit suffix missing from the name.").unit(BaseUnit::Bytes).is_well_formed());
        assert!(!Desc::gauge("redis_x", "no period").is_well_formed());
    }
}
