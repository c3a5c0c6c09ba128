//! Throwaway certificates made with the `openssl` CLI at test time, in a
//! private directory (no key is ever committed). EC P-256, valid two days
//! unless a leaf asks for more ([`CertDir::make_leaf_days`]).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// How long one `openssl` invocation may take.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory of CAs and leaf certificates: `<name>.pem` and `<name>.key`.
pub struct CertDir {
    pub dir: PathBuf,
}

impl CertDir {
    pub fn new(tag: &str) -> CertDir {
        CertDir { dir: super::private_temp_dir(tag) }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Runs `openssl` in the directory, bounded; panics with its stderr on failure.
    pub fn openssl(&self, args: &[&str]) {
        let openssl = super::process::which("openssl")
            .unwrap_or_else(|| panic!("these tests need the openssl CLI (apt-get install openssl)"));
        let mut cmd = Command::new(openssl);
        cmd.args(args);
        let run = super::process::run_bounded(cmd, &self.dir, OPENSSL_TIMEOUT);
        if !run.success() {
            panic!("openssl {args:?} failed ({}):\n{}", run.status, run.stderr);
        }
    }

    /// A self-signed CA: `<name>.pem` and `<name>.key`.
    pub fn make_ca(&self, name: &str, cn: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    /// A leaf `<name>.pem`/`<name>.key` signed by `ca`, with the extensions in `ext`.
    pub fn make_leaf(&self, ca: &str, name: &str, cn: &str, ext: &str, serial: &str) {
        self.make_leaf_days(ca, name, cn, ext, serial, 2);
    }

    /// [`CertDir::make_leaf`] valid for `days` days from now.
    pub fn make_leaf_days(&self, ca: &str, name: &str, cn: &str, ext: &str, serial: &str, days: u32) {
        fs::write(self.dir.join(format!("{name}.ext")), ext).expect("writing extension file");
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            serial,
            "-days",
            &days.to_string(),
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }
}
