//! The `k=v,k=v` list parser and the number parsers on arbitrary text: no
//! panic, and the documented guarantees hold (non-empty trimmed keys, finite
//! floats only, labels capped).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tenderly_exporter::collectors::redis::info::{
    bounded_label, parse_f64, parse_i64, parse_kv_list, parse_number, parse_percent_ratio, parse_u64, Number,
};

fn check_scalar(text: &str) {
    let _ = parse_u64(text);
    let _ = parse_i64(text);
    if let Some(v) = parse_f64(text) {
        assert!(v.is_finite(), "parse_f64({text:?}) = {v}");
    }
    if let Some(v) = parse_percent_ratio(text) {
        assert!(v.is_finite(), "parse_percent_ratio({text:?}) = {v}");
    }
    match parse_number(text) {
        Some(Number::Float(v)) => assert!(v.is_finite(), "parse_number({text:?}) = {v}"),
        Some(Number::Int(_)) | None => {}
    }
    assert!(bounded_label(text).len() <= 128);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_scalar(&text);
    for (key, value) in parse_kv_list(&text) {
        assert!(!key.is_empty() && key.trim() == key, "key {key:?}");
        assert_eq!(value.trim(), value, "value {value:?}");
        check_scalar(key);
        check_scalar(value);
    }
});
