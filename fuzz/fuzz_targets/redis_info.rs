//! A Redis `INFO` reply from a hostile or broken server: the parser, every
//! typed view, and the encoder must not panic, and the rendered exposition
//! must stay a complete OpenMetrics document.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tenderly_exporter::collectors::redis::encode::{encode, encode_up};
use tenderly_exporter::collectors::redis::info::parse_info;
use tenderly_exporter::collectors::redis::RedisSnapshot;
use tenderly_exporter::metrics::Exposition;

fuzz_target!(|data: &[u8]| {
    let info = parse_info(data);
    let _ = info.keyspace();
    let _ = info.replicas();
    let _ = info.command_stats();
    let _ = info.error_stats();
    let _ = info.latency_percentiles();
    let _ = info.listeners();
    let _ = info.modules();

    // The same bytes as the `INFO` reply and as the `CLUSTER INFO` reply
    // (parsed by the same parser), so the cluster families are reached too.
    let snapshot = RedisSnapshot { cluster_info: Some(info.clone()), info, ..RedisSnapshot::default() };
    let mut out = Exposition::new();
    encode_up(true, &mut out);
    encode(&snapshot, &mut out);
    let text = out.render().expect("rendering into a String cannot fail");
    assert!(text.ends_with("# EOF\n"), "exposition not terminated: {:?}", &text[text.len().saturating_sub(80)..]);
});
