//! Measures the pure per-scrape work (parse INFO, encode, render) on a real
//! capture, without I/O: `cargo run --release --example pipeline_cost`.
//! Used to find where the exporter's CPU per scrape goes; not a test.

use std::time::Instant;

use tenderly_exporter::collectors::redis::{encode, info, RedisSnapshot};
use tenderly_exporter::metrics::Exposition;

fn main() {
    let raw = std::fs::read("tests/fixtures/redis/redis-7.0.15-master-info-all.txt").expect("run from the repo root");
    let n = 2000;
    let (mut t_parse, mut t_encode, mut t_render) = (0u128, 0u128, 0u128);
    let mut bytes = 0;
    for _ in 0..n {
        let t0 = Instant::now();
        let info = info::parse_info(&raw);
        let t1 = Instant::now();
        let snapshot = RedisSnapshot { info, ..Default::default() };
        let mut out = Exposition::new();
        encode::encode_up(true, &mut out);
        encode::encode(&snapshot, &mut out);
        let t2 = Instant::now();
        let text = out.render().expect("render");
        let t3 = Instant::now();
        bytes = text.len();
        t_parse += (t1 - t0).as_nanos();
        t_encode += (t2 - t1).as_nanos();
        t_render += (t3 - t2).as_nanos();
    }
    let us = |t: u128| t as f64 / n as f64 / 1000.0;
    println!(
        "parse {:.1} us, encode {:.1} us, render {:.1} us, {bytes} bytes",
        us(t_parse),
        us(t_encode),
        us(t_render)
    );
}
