//! Loads the recorded MongoDB command replies in `tests/fixtures/mongodb/`
//! (provenance in its README) into BSON, whatever format each file is in:
//!
//! * **canonical Extended JSON v2** (FTDC captures: `{"$numberLong": "5"}`):
//!   every BSON type is exact; decoded by the `bson` crate.
//! * **relaxed Extended JSON v2** (DataDog captures: bare numbers, `{"$date": ...}`):
//!   decoded by the `bson` crate; `1` becomes Int32 (Int64 if it does not fit),
//!   `1.0` a Double, as written.
//! * **Go `encoding/json`** (percona/mongodb_exporter, simagix/keyhole): no `$`
//!   wrappers and no numeric types. Converted as faithfully as the text allows:
//!   integral numbers become Int64 (the type most server counters have), other
//!   numbers Double; `{"T": .., "I": ..}` (Go's `primitive.Timestamp`) becomes a
//!   Timestamp; a string that is a complete RFC 3339 date-time (Go's
//!   `time.Time`; every such string in these files is one, under keys like
//!   `localTime`, `optimeDate`, `lastHeartbeat`) becomes a DateTime. Anything
//!   else stays as it is (ObjectIds and binary stay strings: Go printed them as
//!   hex / base64 and the type cannot be told from the text).
//!
//! The format is detected from the content: any Extended JSON type wrapper key
//! (`$numberLong`, `$date`, `$oid`, ...; not `$match`, which aggStageCounters
//! uses as a plain key) means Extended JSON, canonical if no bare number
//! appears outside `$timestamp`, relaxed otherwise; no wrapper at all means Go JSON.

use std::path::PathBuf;

use mongodb::bson::{Bson, DateTime, Document, Timestamp};
use serde_json::Value;

/// The serialisation a fixture file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    ExtJsonCanonical,
    ExtJsonRelaxed,
    GoEncodingJson,
}

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mongodb")
}

/// File names in the fixture directory that start with `prefix` and end in
/// `.json`, sorted.
pub fn names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("read {}: {e}", dir().display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix) && name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// The raw JSON text of a fixture, for checks made independently of the loader.
pub fn text(name: &str) -> String {
    let path = dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A fixture as BSON, with the format it was detected to be in.
pub fn load_bson(name: &str) -> (Format, Bson) {
    let json: Value = serde_json::from_str(&text(name)).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
    let format = detect(&json);
    let bson = match format {
        Format::ExtJsonCanonical | Format::ExtJsonRelaxed => {
            Bson::try_from(json).unwrap_or_else(|e| panic!("{name}: not Extended JSON: {e}"))
        }
        Format::GoEncodingJson => from_go_json(json),
    };
    (format, bson)
}

/// A fixture holding one document (every command reply).
pub fn load(name: &str) -> Document {
    match load_bson(name).1 {
        Bson::Document(doc) => doc,
        other => panic!("{name}: expected a document, found {:?}", other.element_type()),
    }
}

/// A fixture holding one document or an array of documents (`system.profile`).
pub fn load_documents(name: &str) -> Vec<Document> {
    match load_bson(name).1 {
        Bson::Document(doc) => vec![doc],
        Bson::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Bson::Document(doc) => doc,
                other => panic!("{name}: array element is {:?}, not a document", other.element_type()),
            })
            .collect(),
        other => panic!("{name}: expected a document or array, found {:?}", other.element_type()),
    }
}

/// Keys of the Extended JSON v2 type wrappers.
const EXT_JSON_WRAPPERS: &[&str] = &[
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$numberDecimal",
    "$date",
    "$timestamp",
    "$oid",
    "$binary",
    "$uuid",
    "$regularExpression",
    "$symbol",
    "$code",
    "$dbPointer",
    "$minKey",
    "$maxKey",
    "$undefined",
];

/// Which serialisation `json` is in (see the module docs).
pub fn detect(json: &Value) -> Format {
    fn scan(v: &Value, dollar: &mut bool, bare_number: &mut bool) {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    // `$match`, `$group`, ... are ordinary keys (aggStageCounters);
                    // only the type wrappers mark Extended JSON.
                    *dollar |= EXT_JSON_WRAPPERS.contains(&k.as_str());
                    // Canonical EJSON writes a timestamp's parts as bare numbers.
                    if k != "$timestamp" {
                        scan(x, dollar, bare_number);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|x| scan(x, dollar, bare_number)),
            Value::Number(_) => *bare_number = true,
            _ => {}
        }
    }
    let (mut dollar, mut bare_number) = (false, false);
    scan(json, &mut dollar, &mut bare_number);
    match (dollar, bare_number) {
        (false, _) => Format::GoEncodingJson,
        (true, false) => Format::ExtJsonCanonical,
        (true, true) => Format::ExtJsonRelaxed,
    }
}

/// Go `encoding/json` output to BSON (see the module docs for the rules).
pub fn from_go_json(json: Value) -> Bson {
    match json {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => rfc3339_date(&s).map_or(Bson::String(s), Bson::DateTime),
        Value::Array(items) => Bson::Array(items.into_iter().map(from_go_json).collect()),
        Value::Object(map) => {
            if let Some(ts) = go_timestamp(&map) {
                return Bson::Timestamp(ts);
            }
            Bson::Document(map.into_iter().map(|(k, v)| (k, from_go_json(v))).collect())
        }
    }
}

/// `{"T": 1599759587, "I": 1}` -> Timestamp, only with exactly those two
/// keys holding u32 values.
fn go_timestamp(map: &serde_json::Map<String, Value>) -> Option<Timestamp> {
    if map.len() != 2 {
        return None;
    }
    let field = |k: &str| map.get(k)?.as_u64().and_then(|v| u32::try_from(v).ok());
    Some(Timestamp { time: field("T")?, increment: field("I")? })
}

/// A complete RFC 3339 date-time (`2020-09-10T14:39:52.955-03:00`), nothing
/// more and nothing less: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn rfc3339_date(s: &str) -> Option<DateTime> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return None;
    }
    DateTime::parse_rfc3339_str(s).ok()
}

/// A number at `path` in raw JSON text, unwrapping Extended JSON number
/// wrappers by hand: an independent reading to check the loader and parser
/// against the fixture text.
pub fn raw_number(name: &str, path: &[&str]) -> Option<f64> {
    let json: Value = serde_json::from_str(&text(name)).ok()?;
    let mut v = &json;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Object(map) => ["$numberInt", "$numberLong", "$numberDouble", "$numberDecimal"]
            .iter()
            .find_map(|k| map.get(*k))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok()),
        _ => None,
    }
}
