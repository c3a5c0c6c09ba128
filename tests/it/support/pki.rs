//! Throwaway certificates made with the `openssl` CLI at test time, in a
//! private directory (no key is ever committed). EC P-256, valid two days.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        let log = self.dir.join("openssl.log");
        let stderr = File::create(&log).expect("creating openssl.log");
        let mut child = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("these tests need the openssl CLI (apt-get install openssl): {e}"));
        let deadline = Instant::now() + OPENSSL_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for openssl") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("openssl {args:?} did not finish within {OPENSSL_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !status.success() {
            panic!("openssl {args:?} failed ({status}):\n{}", fs::read_to_string(&log).unwrap_or_default());
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
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }
}
