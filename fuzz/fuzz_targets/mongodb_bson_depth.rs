//! The BSON depth walk (`bson_guard`) over arbitrary bytes, at any depth: it
//! must never panic or recurse (libFuzzer's stack is the ordinary 8 MiB one,
//! so a recursive walk over a deep input crashes here), and when it accepts a
//! document the recursive conversion that follows must succeed and agree on
//! the depth.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mongodb::bson::RawDocument;
use tenderly_exporter::collectors::mongodb::bson_guard::{
    check_raw, document_depth, nested_bytes, to_document, BatchBuilder, CursorCaps, MAX_DEPTH,
};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a limit, so small limits are exercised too.
    let Some((&pick, rest)) = data.split_first() else { return };
    let limit = usize::from(pick) % (MAX_DEPTH + 1);
    // The input as is, and wrapped in a deep prefix so deep inputs are common.
    check_one(rest, limit);
    let mut deep = nested_bytes(usize::from(pick) * 64);
    if let Ok(inner) = RawDocument::from_bytes(rest) {
        // Replace the innermost empty document with the input.
        let wrappers = (deep.len() - 5) / 8;
        let mut wrapped = Vec::with_capacity(deep.len() + inner.as_bytes().len());
        for level in 0..wrappers {
            let len = (deep.len() - 5 + inner.as_bytes().len() - level * 8) as i32;
            wrapped.extend_from_slice(&len.to_le_bytes());
            wrapped.extend_from_slice(&[0x03, b'a', 0]);
        }
        wrapped.extend_from_slice(inner.as_bytes());
        wrapped.resize(deep.len() - 5 + inner.as_bytes().len(), 0);
        deep = wrapped;
    }
    check_one(&deep, limit);
});

fn check_one(bytes: &[u8], limit: usize) {
    match check_raw(bytes, limit, usize::MAX) {
        Ok(depth) => {
            assert!(depth <= limit, "accepted depth {depth} over limit {limit}");
            let raw = RawDocument::from_bytes(bytes).expect("check_raw accepted it");
            // Conversion may still refuse values the walk does not decode (bad UTF-8 in a
            // string); when it succeeds the depth must agree.
            if let Ok(doc) = to_document(raw, limit) {
                assert_eq!(document_depth(&doc), depth);
            }
            let mut batch = BatchBuilder::new(CursorCaps { max_docs: 1, max_bytes: usize::MAX, max_depth: limit });
            let _ = batch.offer(raw);
        }
        Err(_) => {
            if let Ok(raw) = RawDocument::from_bytes(bytes) {
                // Refused documents are refused by the batch reader too.
                let mut batch = BatchBuilder::new(CursorCaps { max_docs: 1, max_bytes: usize::MAX, max_depth: limit });
                assert!(batch.offer(raw).is_err());
            }
        }
    }
}
