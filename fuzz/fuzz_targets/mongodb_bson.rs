//! BSON replies from a hostile or broken MongoDB: up to eight documents read
//! back to back from the input (`$currentOp`, `system.profile` and the oplog
//! take several), every parser over them, then the whole snapshot encoded and
//! rendered. Nothing may panic and rendering must succeed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mongodb::bson::Document;
use tenderly_exporter::collectors::mongodb::bson_guard;
use tenderly_exporter::collectors::mongodb::encode::{encode, encode_up};
use tenderly_exporter::collectors::mongodb::{
    current_op, dbstats, oplog, profile, replset, server_status, MongoSnapshot,
};
use tenderly_exporter::metrics::Exposition;

const MAX_DOCS: usize = 8;

/// Splits `data` into back-to-back documents. The declared length is checked
/// against the bytes left first: bson 2.x's `Document::from_reader` reserves
/// the declared length (up to 2 GiB) before reading, which is a harness
/// artefact here (the driver only decodes documents inside a message it has
/// already read whole), not something a server can do to the exporter.
fn read_documents(data: &[u8]) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut rest = data;
    while docs.len() < MAX_DOCS {
        let Some(header) = rest.first_chunk::<4>() else { break };
        let Ok(len) = usize::try_from(i32::from_le_bytes(*header)) else { break };
        if len > rest.len() {
            break;
        }
        // As in the exporter: the depth is checked without recursion before
        // the recursive decoding.
        if bson_guard::check_raw(&rest[..len], bson_guard::MAX_DEPTH, usize::MAX).is_err() {
            break;
        }
        match Document::from_reader(&rest[..len]) {
            Ok(doc) => docs.push(doc),
            Err(_) => break,
        }
        rest = &rest[len..];
    }
    docs
}

fuzz_target!(|data: &[u8]| {
    let docs = read_documents(data);
    let Some(first) = docs.first() else { return };

    for doc in &docs {
        let _ = server_status::parse(doc);
        let _ = replset::parse_status(doc);
        let _ = replset::parse_config(doc);
        let _ = dbstats::parse("fuzz", doc);
    }
    let _ = current_op::parse(&docs, f64::INFINITY);

    let mut profiler = profile::DbProfile::new("fuzz");
    profiler.set_level(first);
    // Twice: the second pass sees the high-water marks of the first, as on
    // the next scrape.
    profiler.ingest(&docs);
    profiler.ingest(&docs);

    let snapshot = MongoSnapshot {
        server_status: Some(server_status::parse(first)),
        replset_status: Some(replset::parse_status(first)),
        replset_config: Some(replset::parse_config(docs.get(1).unwrap_or(first))),
        oplog: oplog::parse(docs.first(), docs.get(1), docs.get(2)),
        current_op: Some(current_op::parse(&docs, 0.0)),
        dbstats: docs.iter().enumerate().map(|(i, d)| dbstats::parse(&format!("db{i}"), d)).collect(),
        profiler: vec![profiler],
        ..MongoSnapshot::default()
    };
    let mut out = Exposition::new();
    encode_up(true, &mut out);
    encode(&snapshot, &mut out);
    let text = out.render().expect("rendering into a String cannot fail");
    assert!(text.ends_with("# EOF\n"), "exposition not terminated");
});
