//! What was built: the crate version and the git revision `build.rs` recorded.
//! Read by the landing page, the startup log line and `tenderly_exporter_build_info`.

/// The crate version (`Cargo.toml`).
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The git revision of the build, or `unknown` outside a git checkout.
pub fn revision() -> &'static str {
    option_env!("TENDERLY_EXPORTER_REVISION").unwrap_or("unknown")
}
