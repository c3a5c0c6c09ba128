//! Reading numbers (and a few other scalars) out of BSON command replies.
//!
//! Why a helper at all? The server picks the BSON type of a counter per field
//! and per version, and not consistently: `wiredTiger.cache."maximum bytes
//! configured"` is a Double on 4.0/4.4 and an Int64 on 5.0+, `connections.*`
//! moved from Int32 to Int64 for some fields in 8.0, FTDC-era Atlas replies
//! report cache byte counts as Doubles, and managed look-alikes (DocumentDB,
//! FerretDB) or proxies may hand back Decimal128. A parser that matches on one
//! type silently loses the series on the next version, so every number goes
//! through [`num`], which accepts Int32, Int64, Double and Decimal128.
//!
//! Integral values are kept as integers ([`Num::Int`]) whatever their BSON
//! type, so an Int64 counter and the same counter sent as `2113.0` render the
//! same way and large counters never round through `f64`. Non-finite values
//! (NaN, ±Infinity), strings, booleans and documents are not numbers: the
//! reader returns `None` and the caller skips that one field.
//!
//! Paths are dotted (`"wiredTiger.cache"`), split on `.`; field names that
//! themselves contain dots or spaces (`"bytes currently in the cache"`) are
//! looked up with [`Document::get`] on the section document instead.

use mongodb::bson::{Bson, Document};

use crate::metrics::Value;

/// A number read from a reply: an exact integer, or a finite float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

/// Doubles at or beyond 2^53 are not exact integers any more; they stay floats.
const MAX_EXACT_F64_INT: f64 = 9_007_199_254_740_992.0;

impl Num {
    /// A finite float, turned into an integer when it is one exactly.
    pub fn from_f64(v: f64) -> Option<Num> {
        if !v.is_finite() {
            return None;
        }
        if v.fract() == 0.0 && v.abs() < MAX_EXACT_F64_INT {
            // Exact: |v| < 2^53 and integral.
            return Some(Num::Int(v as i64));
        }
        Some(Num::Float(v))
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(v) => v as f64,
            Num::Float(v) => v,
        }
    }

    /// `Some(self)` if the value is zero or positive.
    pub fn non_negative(self) -> Option<Num> {
        match self {
            Num::Int(v) if v >= 0 => Some(self),
            Num::Float(v) if v >= 0.0 => Some(self),
            _ => None,
        }
    }

    /// The value times an integer factor (unit conversion such as MiB to
    /// bytes); integers stay exact and fall back to a float on overflow.
    pub fn times(self, factor: i64) -> Num {
        match self {
            Num::Int(v) => v.checked_mul(factor).map_or(Num::Float(v as f64 * factor as f64), Num::Int),
            Num::Float(v) => Num::Float(v * factor as f64),
        }
    }

    /// The value divided by `divisor` as a float (microseconds to seconds).
    pub fn div_f64(self, divisor: f64) -> f64 {
        self.as_f64() / divisor
    }
}

impl From<Num> for Value {
    fn from(n: Num) -> Self {
        match n {
            Num::Int(v) => Value::Int(v),
            Num::Float(v) => Value::Float(v),
        }
    }
}

/// The numeric value of `value`: Int32, Int64, Double or Decimal128; `None`
/// for every other type and for NaN/±Infinity.
pub fn num(value: &Bson) -> Option<Num> {
    match value {
        Bson::Int32(v) => Some(Num::Int(i64::from(*v))),
        Bson::Int64(v) => Some(Num::Int(*v)),
        Bson::Double(v) => Num::from_f64(*v),
        Bson::Decimal128(d) => parse_decimal_text(&d.to_string()),
        _ => None,
    }
}

/// Decimal128's string form (`"12"`, `"-0.5"`, `"1.05E+3"`, `"NaN"`,
/// `"Infinity"`) to a number; integers that fit `i64` stay exact.
fn parse_decimal_text(text: &str) -> Option<Num> {
    if let Ok(v) = text.parse::<i64>() {
        return Some(Num::Int(v));
    }
    text.parse::<f64>().ok().and_then(Num::from_f64)
}

/// The element at a dotted `path` (`"metrics.cursor.open"`), if every step exists.
pub fn get<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        match current {
            Bson::Document(d) => current = d.get(part)?,
            _ => return None,
        }
    }
    Some(current)
}

/// The subdocument at a dotted `path`, if it exists and is a document.
pub fn doc_at<'a>(doc: &'a Document, path: &str) -> Option<&'a Document> {
    match get(doc, path)? {
        Bson::Document(d) => Some(d),
        _ => None,
    }
}

/// The number at a dotted `path`.
pub fn num_at(doc: &Document, path: &str) -> Option<Num> {
    get(doc, path).and_then(num)
}

/// The number at a dotted `path` if it is zero or positive: counters, sizes
/// and gauges that cannot be negative (a negative value there is garbage).
pub fn count_at(doc: &Document, path: &str) -> Option<Num> {
    num_at(doc, path).and_then(Num::non_negative)
}

/// The string at a dotted `path`.
pub fn str_at<'a>(doc: &'a Document, path: &str) -> Option<&'a str> {
    match get(doc, path)? {
        Bson::String(s) => Some(s),
        _ => None,
    }
}

/// A flag at a dotted `path`: a BSON boolean, or a number that is exactly 0 or 1
/// (some servers and proxies send flags as integers).
pub fn bool_at(doc: &Document, path: &str) -> Option<bool> {
    match get(doc, path)? {
        Bson::Boolean(b) => Some(*b),
        other => match num(other)? {
            Num::Int(0) => Some(false),
            Num::Int(1) => Some(true),
            _ => None,
        },
    }
}

// ---- typed readers over optional fields (replies whose types drift between versions) ----
/// Any finite number.
pub fn f64_of(value: Option<&Bson>) -> Option<f64> {
    value.and_then(num).map(Num::as_f64)
}

/// An integer; doubles and decimals only when exactly integral.
pub fn i64_of(value: Option<&Bson>) -> Option<i64> {
    match value.and_then(num)? {
        Num::Int(v) => Some(v),
        Num::Float(_) => None,
    }
}

/// A boolean; numbers count as true when non-zero (old shells and some
/// tools write `hidden: 1`).
pub fn bool_of(value: Option<&Bson>) -> Option<bool> {
    match value? {
        Bson::Boolean(b) => Some(*b),
        other => f64_of(Some(other)).map(|v| v != 0.0),
    }
}

pub fn str_of(value: Option<&Bson>) -> Option<&str> {
    match value? {
        Bson::String(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Unix milliseconds of a Date, or of the seconds of a Timestamp (its
/// increment orders events within a second and is not time).
pub fn date_or_timestamp_millis(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::DateTime(d) => Some(d.timestamp_millis()),
        Bson::Timestamp(ts) => Some(i64::from(ts.time) * 1000),
        _ => None,
    }
}

/// Milliseconds since the epoch of a Date.
pub fn date_millis(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::DateTime(d) => Some(d.timestamp_millis()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, Decimal128};

    #[test]
    fn every_numeric_type_reads_and_integral_values_stay_integers() {
        let d: Decimal128 = "1.05E+3".parse().expect("decimal");
        let frac: Decimal128 = "12.5".parse().expect("decimal");
        let nan: Decimal128 = "NaN".parse().expect("decimal");
        let big: Decimal128 = "9223372036854775807".parse().expect("decimal");
        let doc = doc! {
            "i32": 7i32, "i64": 8_000_000_000i64, "f": 2113.0f64, "half": 0.5f64,
            "dec": d, "frac": frac, "nan": nan, "big": big,
            "fnan": f64::NAN, "finf": f64::INFINITY, "s": "12", "b": true, "huge": 1e300f64,
        };
        assert_eq!(num_at(&doc, "i32"), Some(Num::Int(7)));
        assert_eq!(num_at(&doc, "i64"), Some(Num::Int(8_000_000_000)));
        assert_eq!(num_at(&doc, "f"), Some(Num::Int(2113)));
        assert_eq!(num_at(&doc, "half"), Some(Num::Float(0.5)));
        assert_eq!(num_at(&doc, "dec"), Some(Num::Int(1050)));
        assert_eq!(num_at(&doc, "frac"), Some(Num::Float(12.5)));
        assert_eq!(num_at(&doc, "big"), Some(Num::Int(i64::MAX)));
        assert_eq!(num_at(&doc, "huge"), Some(Num::Float(1e300)));
        for not_a_number in ["nan", "fnan", "finf", "s", "b", "missing"] {
            assert_eq!(num_at(&doc, not_a_number), None, "{not_a_number}");
        }
    }

    #[test]
    fn dotted_paths_stop_at_non_documents() {
        let doc = doc! { "a": { "b": { "c": 3i32 } }, "x": 1i32 };
        assert_eq!(num_at(&doc, "a.b.c"), Some(Num::Int(3)));
        assert_eq!(num_at(&doc, "x.y"), None);
        assert_eq!(num_at(&doc, "a.b"), None);
        assert!(doc_at(&doc, "a.b").is_some());
        assert_eq!(num_at(&doc, ""), None);
    }

    #[test]
    fn counts_reject_negatives_and_flags_accept_zero_or_one() {
        let doc = doc! { "neg": -1i64, "zero": 0i32, "t": true, "one": 1i64, "two": 2i32 };
        assert_eq!(count_at(&doc, "neg"), None);
        assert_eq!(count_at(&doc, "zero"), Some(Num::Int(0)));
        assert_eq!(bool_at(&doc, "t"), Some(true));
        assert_eq!(bool_at(&doc, "one"), Some(true));
        assert_eq!(bool_at(&doc, "zero"), Some(false));
        assert_eq!(bool_at(&doc, "two"), None);
    }

    #[test]
    fn unit_scaling_is_exact_and_never_overflows() {
        assert_eq!(Num::Int(211).times(1 << 20), Num::Int(211 * 1048576));
        assert_eq!(Num::Int(i64::MAX).times(2), Num::Float(i64::MAX as f64 * 2.0));
        assert_eq!(Num::Int(1_500_000).div_f64(1e6), 1.5);
    }
}
