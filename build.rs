//! Bakes the git revision into the binary for `tenderly_exporter_build_info`.
use std::process::Command;

fn main() {
    let revision = std::env::var("TENDERLY_EXPORTER_REVISION").ok().or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!("cargo:rustc-env=TENDERLY_EXPORTER_REVISION={}", revision.unwrap_or_else(|| "unknown".into()));
    println!("cargo:rerun-if-env-changed=TENDERLY_EXPORTER_REVISION");
    // Only in a git checkout: a missing path would make cargo rebuild every time.
    if std::path::Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/refs/heads");
    }
}
