//! The YAML targets file: `parse_file` must turn any text into targets or a
//! `ConfigError`, never a panic. Environment variables come from a fixed map so
//! runs are reproducible.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tenderly_exporter::config::{parse_file, Env};

struct FixedEnv;

impl Env for FixedEnv {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "REDIS_PASSWORD" | "REDIS_REPLICA_PASSWORD" => Some("fuzz-password".to_owned()),
            "REDIS_USER" => Some("fuzz-user".to_owned()),
            _ => None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_file(&text, Path::new("fuzz.yml"), &FixedEnv);
});
