//! `--web.config.file`: TLS, client certificates and basic auth for the HTTP
//! endpoints, in the Prometheus exporter-toolkit format, so the file Prometheus
//! operators already write for node_exporter works here unchanged:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt        # or `cert:` with inline PEM
//!   key_file: server.key         # or `key:` with inline PEM
//!   client_ca_file: ca.crt       # or `client_ca:`
//!   client_auth_type: RequireAndVerifyClientCert
//!   min_version: TLS12           # TLS12 (default) or TLS13
//!   max_version: TLS13
//!   cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]   # TLS 1.2 only, as in Go
//!   curve_preferences: [X25519, CurveP256]
//!   prefer_server_cipher_suites: true
//! http_server_config:
//!   http2: true                  # accepted; only HTTP/1.1 is served
//!   headers: { Strict-Transport-Security: max-age=31536000 }
//! basic_auth_users:
//!   prometheus: $2y$10$...       # bcrypt hashes only
//! ```
//!
//! Relative paths resolve against the directory of the web config file, as in
//! exporter-toolkit. Unknown keys are errors (exporter-toolkit parses strictly
//! too): a misspelt `client_auth_type` must never silently leave a port open.
//! Every error names the field and the fix, and never quotes a secret.
//!
//! Loading is pure and blocking (a few small file reads); [`WebSecurityStore`]
//! holds the live configuration behind an `Arc` swap, and the server re-runs
//! [`WebSecurityStore::reload`] on SIGHUP and on a poll, keeping the old
//! configuration when the new one is invalid.
//!
//! Basic auth: bcrypt costs 50-100 ms per check at cost 10, which would make
//! every scrape pay it and turn wrong-password floods into CPU exhaustion on
//! the single-threaded runtime. So verification runs on the blocking pool,
//! at most [`BCRYPT_CONCURRENCY`] at a time, and successful credentials are
//! remembered per user (a few entries, compared in constant time) so a
//! Prometheus that scrapes with the right password pays bcrypt once per
//! configuration. Unknown users are checked against a dummy hash so response
//! time does not reveal which user names exist.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme, SupportedCipherSuite};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Largest web config, certificate or key file we read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Concurrent bcrypt verifications; more wait (bounded) or get 503.
pub const BCRYPT_CONCURRENCY: usize = 2;
/// How long a request waits for a bcrypt slot before it is refused.
const BCRYPT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on one verification (cost 16 takes a few seconds).
const BCRYPT_VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest accepted bcrypt cost: above this one check takes several seconds.
const MAX_BCRYPT_COST: u32 = 16;
/// Remembered successful passwords per user (bcrypt ignores bytes past 72, so
/// more than one password can match the same hash).
const CACHED_PASSWORDS_PER_USER: usize = 4;
/// Checked when the user name is unknown, so timing does not reveal which names
/// exist (the same dummy exporter-toolkit uses; cost 10).
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
/// The `WWW-Authenticate` challenge sent with a 401.
pub const WWW_AUTHENTICATE_CHALLENGE: &str = "Basic realm=\"tenderly-exporter\"";
/// Response headers `http_server_config.headers` may set (exporter-toolkit's list).
const ALLOWED_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// What is wrong with a web config file. Messages name the field and the fix
/// and never contain a password, hash or key.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("web config file {}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("web config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("web config file {}: {field}: {problem}; {fix}", path.display())]
    Invalid { path: PathBuf, field: String, problem: String, fix: String },
}

// ---- YAML schema (exporter-toolkit) -----------------------------------------

// No `Debug`: it would print the hashes.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    // Values are checked by hand: serde's type errors quote the value, and a
    // number here is likely a plaintext password.
    basic_auth_users: Option<BTreeMap<String, serde_norway::Value>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<PathBuf>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    client_ca: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
}

// Hand-written so an inline `key:` can never reach a log through `{:?}`.
impl fmt::Debug for RawTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("client_auth_type", &self.client_auth_type)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

// ---- the validated configuration --------------------------------------------

/// exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is requested.
    NoClientCert,
    /// A certificate is requested but neither required nor verified.
    RequestClientCert,
    /// A certificate is required but not verified against a CA.
    RequireAnyClientCert,
    /// A certificate is optional; if sent, it must chain to `client_ca_file`.
    VerifyClientCertIfGiven,
    /// A certificate chaining to `client_ca_file` is required.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(text: &str) -> Option<ClientAuth> {
        Some(match text {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // "RequireClientCert" is exporter-toolkit's backwards-compatible alias.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    fn verifies(self) -> bool {
        matches!(self, ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert)
    }
}

/// The live web security settings: built once per (re)load, then shared
/// read-only by connections (TLS) and requests (basic auth, headers).
pub struct WebSecurity {
    tls: Option<TlsAcceptor>,
    client_auth: ClientAuth,
    auth: Option<BasicAuth>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Hash of every byte the configuration was built from (the file and the
    /// files it names), to notice changes. Not a security boundary.
    fingerprint: u64,
    /// Things worth a warning that are not errors (e.g. basic auth without TLS).
    warnings: Vec<String>,
    /// notAfter (Unix seconds) of the TLS server certificate, when TLS is on.
    cert_not_after: Option<i64>,
}

impl fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("basic_auth_users", &self.auth.as_ref().map_or(0, |a| a.users.len()))
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl WebSecurity {
    /// No TLS, no authentication: the behaviour without `--web.config.file`.
    pub fn disabled() -> WebSecurity {
        WebSecurity {
            tls: None,
            client_auth: ClientAuth::NoClientCert,
            auth: None,
            headers: Vec::new(),
            fingerprint: 0,
            warnings: Vec::new(),
            cert_not_after: None,
        }
    }

    /// Reads and validates a web config file and everything it names.
    pub fn load(path: &Path) -> Result<WebSecurity, WebConfigError> {
        let text = read_limited(path).map_err(|source| WebConfigError::Read { path: path.to_path_buf(), source })?;
        let text = String::from_utf8(text)
            .map_err(|_| WebConfigError::Parse { path: path.to_path_buf(), message: "not UTF-8 text".into() })?;
        Self::parse(&text, path)
    }

    /// Validates web config `text` as if read from `path` (relative file names
    /// resolve against `path`'s directory).
    pub fn parse(text: &str, path: &Path) -> Result<WebSecurity, WebConfigError> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            // serde_norway names the key and the position; for unknown keys it
            // lists the valid ones.
            serde_norway::from_str(text)
                .map_err(|e| WebConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?
        };
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let cx = Cx { path, base };
        let mut warnings = Vec::new();

        let (tls, client_auth, cert_not_after) = match raw.tls_server_config {
            Some(t) if !t.is_empty() => {
                let (acceptor, client_auth, not_after) = build_tls(&cx, t, &mut hasher, &mut warnings)?;
                (Some(acceptor), client_auth, not_after)
            }
            _ => (None, ClientAuth::NoClientCert, None),
        };

        let auth = match raw.basic_auth_users {
            Some(users) if !users.is_empty() => {
                let mut checked = HashMap::with_capacity(users.len());
                for (user, hash) in users {
                    let field = format!("basic_auth_users.{}", user.escape_debug());
                    if user.is_empty() || user.contains(':') {
                        return Err(cx.invalid(
                            field,
                            "user names must be non-empty and contain no ':'",
                            "rename the user",
                        ));
                    }
                    let hash = match hash {
                        serde_norway::Value::String(h) => h,
                        _ => String::new(), // rejected just below, without quoting it
                    };
                    let parts = hash.trim().parse::<bcrypt::HashParts>().map_err(|_| {
                        cx.invalid(
                            &field,
                            "not a bcrypt hash (expected 60 characters starting with $2y$, $2b$ or $2a$)",
                            format!("generate one with: htpasswd -nBC 10 '{}' | cut -d: -f2", user.escape_debug()),
                        )
                    })?;
                    if parts.get_cost() > MAX_BCRYPT_COST {
                        return Err(cx.invalid(
                            &field,
                            format!("bcrypt cost {} makes every uncached check take seconds", parts.get_cost()),
                            format!("hash with a cost between 10 and {MAX_BCRYPT_COST}"),
                        ));
                    }
                    hash.hash(&mut hasher);
                    user.hash(&mut hasher);
                    checked.insert(user, hash.trim().to_string());
                }
                if tls.is_none() {
                    warnings.push(
                        "basic_auth_users is set without tls_server_config: passwords cross the network in clear text"
                            .to_string(),
                    );
                }
                Some(BasicAuth::new(checked))
            }
            _ => None,
        };

        let mut headers = Vec::new();
        if let Some(http) = raw.http_server_config {
            http.http2.hash(&mut hasher);
            for (name, value) in http.headers.unwrap_or_default() {
                let field = format!("http_server_config.headers.{name}");
                let Some(allowed) = ALLOWED_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name)) else {
                    return Err(cx.invalid(
                        field,
                        "this header cannot be set",
                        format!("use one of: {}", ALLOWED_HEADERS.join(", ")),
                    ));
                };
                let header_name = HeaderName::from_bytes(allowed.as_bytes())
                    .map_err(|_| cx.invalid(&field, "not a valid header name", "fix the name"))?;
                let header_value = HeaderValue::from_str(&value)
                    .map_err(|_| cx.invalid(&field, "not a valid header value", "use printable ASCII"))?;
                name.hash(&mut hasher);
                value.hash(&mut hasher);
                headers.push((header_name, header_value));
            }
        }

        Ok(WebSecurity { tls, client_auth, auth, headers, fingerprint: hasher.finish(), warnings, cert_not_after })
    }

    /// When the TLS server certificate expires (Unix seconds), when TLS is on.
    pub fn certificate_expiry(&self) -> Option<i64> {
        self.cert_not_after
    }

    /// The TLS acceptor, when `tls_server_config` is set.
    pub fn tls_acceptor(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    /// The basic-auth checker, when `basic_auth_users` is set.
    pub fn basic_auth(&self) -> Option<&BasicAuth> {
        self.auth.as_ref()
    }

    /// Headers added to every response (`http_server_config.headers`).
    pub fn response_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// Non-fatal problems found while loading, for the caller to log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl RawTls {
    fn is_empty(&self) -> bool {
        self.cert_file.is_none()
            && self.key_file.is_none()
            && self.cert.is_none()
            && self.key.is_none()
            && self.client_ca_file.is_none()
            && self.client_ca.is_none()
            && self.client_auth_type.as_deref().unwrap_or("").is_empty()
    }
}

/// Where errors point and relative paths resolve.
struct Cx<'a> {
    path: &'a Path,
    base: &'a Path,
}

impl Cx<'_> {
    fn invalid(&self, field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> WebConfigError {
        WebConfigError::Invalid {
            path: self.path.to_path_buf(),
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn resolve(&self, file: &Path) -> PathBuf {
        if file.is_absolute() {
            file.to_path_buf()
        } else {
            self.base.join(file)
        }
    }

    /// PEM bytes from `<name>_file` or inline `<name>`; exactly one may be set.
    fn pem(
        &self,
        field: &str,
        file: Option<&Path>,
        inline: Option<&str>,
        hasher: &mut impl Hasher,
    ) -> Result<Option<Vec<u8>>, WebConfigError> {
        let field_file = format!("tls_server_config.{field}_file");
        match (file, inline) {
            (Some(_), Some(_)) => Err(self.invalid(
                format!("tls_server_config.{field}"),
                format!("both {field} and {field}_file are set"),
                "keep one",
            )),
            (Some(file), None) => {
                let resolved = self.resolve(file);
                let bytes = read_limited(&resolved).map_err(|e| {
                    self.invalid(
                        &field_file,
                        format!("cannot read {}: {e}", resolved.display()),
                        "fix the path (relative paths resolve against the web config file's directory)",
                    )
                })?;
                bytes.hash(hasher);
                Ok(Some(bytes))
            }
            (None, Some(text)) => {
                text.hash(hasher);
                Ok(Some(text.as_bytes().to_vec()))
            }
            (None, None) => Ok(None),
        }
    }
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "larger than 1 MiB"));
    }
    Ok(bytes)
}

fn parse_version(
    cx: &Cx<'_>,
    field: &str,
    text: &str,
) -> Result<&'static rustls::SupportedProtocolVersion, WebConfigError> {
    match text {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(cx.invalid(
            format!("tls_server_config.{field}"),
            format!("{text} is obsolete and not supported"),
            "use TLS12 or TLS13",
        )),
        other => Err(cx.invalid(
            format!("tls_server_config.{field}"),
            format!("unknown TLS version '{}'", other.escape_debug()),
            "use TLS12 or TLS13",
        )),
    }
}

/// Go cipher-suite names (exporter-toolkit passes them to crypto/tls) that
/// rustls implements. rustls has no CBC or static-RSA suites, by design.
fn cipher_suite_by_go_name(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// Go curve names (`tls.CurveID` strings) that the ring provider implements.
fn kx_group_by_go_name(name: &str) -> Option<&'static dyn SupportedKxGroup> {
    use rustls::crypto::ring::kx_group;
    Some(match name {
        "X25519" => kx_group::X25519,
        "CurveP256" => kx_group::SECP256R1,
        "CurveP384" => kx_group::SECP384R1,
        _ => return None,
    })
}

fn build_tls(
    cx: &Cx<'_>,
    t: RawTls,
    hasher: &mut impl Hasher,
    warnings: &mut Vec<String>,
) -> Result<(TlsAcceptor, ClientAuth, Option<i64>), WebConfigError> {
    // Presence first, so a missing key is reported as missing rather than as
    // an unreadable certificate path.
    let has_cert = t.cert_file.is_some() || t.cert.is_some();
    let has_key = t.key_file.is_some() || t.key.is_some();
    match (has_cert, has_key) {
        (true, true) => {}
        (false, _) => {
            return Err(cx.invalid(
                "tls_server_config.cert_file",
                "missing: TLS needs a certificate",
                "set cert_file to the server certificate (PEM), or remove tls_server_config to serve plain HTTP",
            ))
        }
        (true, false) => {
            return Err(cx.invalid(
                "tls_server_config.key_file",
                "missing: TLS needs the certificate's private key",
                "set key_file to the PEM private key matching cert_file",
            ))
        }
    }
    let missing = || cx.invalid("tls_server_config", "cert or key missing", "set cert_file and key_file");
    let cert_pem = cx.pem("cert", t.cert_file.as_deref(), t.cert.as_deref(), hasher)?.ok_or_else(missing)?;
    let key_pem = cx.pem("key", t.key_file.as_deref(), t.key.as_deref(), hasher)?.ok_or_else(missing)?;
    let cert_field = if t.cert.is_some() { "tls_server_config.cert" } else { "tls_server_config.cert_file" };
    let key_field = if t.key.is_some() { "tls_server_config.key" } else { "tls_server_config.key_file" };
    let certs = CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<Vec<_>, _>>().map_err(|e| {
        cx.invalid(
            cert_field,
            format!("not a PEM certificate file: {e}"),
            "point it at a PEM file with BEGIN CERTIFICATE",
        )
    })?;
    if certs.is_empty() {
        return Err(cx.invalid(
            cert_field,
            "contains no certificate",
            "point it at a PEM file with BEGIN CERTIFICATE (server certificate first, then intermediates)",
        ));
    }
    // The server certificate (the first of the chain) is the one clients check.
    let cert_not_after = certs.first().and_then(|c| crate::collectors::redis::tls_expiry::not_after_unix(c.as_ref()));
    // Never include the parser's error text for keys: it may quote key material.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        cx.invalid(
            key_field,
            "contains no usable private key",
            "use an unencrypted PEM key (BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY)",
        )
    })?;

    let client_auth_text = t.client_auth_type.clone().unwrap_or_default();
    let client_auth = ClientAuth::parse(&client_auth_text).ok_or_else(|| {
        cx.invalid(
            "tls_server_config.client_auth_type",
            format!("unknown value '{}'", client_auth_text.escape_debug()),
            "use one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, \
             RequireAndVerifyClientCert",
        )
    })?;
    let ca_pem = cx.pem("client_ca", t.client_ca_file.as_deref(), t.client_ca.as_deref(), hasher)?;
    let ca_field =
        if t.client_ca.is_some() { "tls_server_config.client_ca" } else { "tls_server_config.client_ca_file" };
    let roots = match &ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|e| cx.invalid(ca_field, format!("not a PEM file: {e}"), "use PEM CA certificates"))?;
                roots.add(cert).map_err(|e| {
                    cx.invalid(ca_field, format!("unusable CA certificate: {e}"), "use PEM CA certificates")
                })?;
            }
            if roots.is_empty() {
                return Err(cx.invalid(ca_field, "contains no certificate", "use a PEM file with BEGIN CERTIFICATE"));
            }
            Some(roots)
        }
        None => None,
    };
    if roots.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(cx.invalid(
            "tls_server_config.client_auth_type",
            "client_ca_file is set but client_auth_type is NoClientCert (or unset)",
            "set client_auth_type: RequireAndVerifyClientCert (or remove client_ca_file)",
        ));
    }
    if roots.is_none() && client_auth.verifies() {
        return Err(cx.invalid(
            "tls_server_config.client_ca_file",
            format!("missing: client_auth_type {client_auth:?} verifies client certificates against it"),
            "set client_ca_file to the PEM CA that issues client certificates",
        ));
    }
    if t.client_allowed_sans.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(cx.invalid(
            "tls_server_config.client_allowed_sans",
            "not supported by this exporter",
            "remove it and issue client certificates from a dedicated client_ca_file instead",
        ));
    }

    // Versions.
    let min = parse_version(cx, "min_version", t.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = parse_version(cx, "max_version", t.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match (min.version, max.version) {
        (rustls::ProtocolVersion::TLSv1_3, rustls::ProtocolVersion::TLSv1_2) => {
            return Err(cx.invalid(
                "tls_server_config.max_version",
                "lower than min_version",
                "raise max_version or lower min_version",
            ))
        }
        (rustls::ProtocolVersion::TLSv1_3, _) => vec![&rustls::version::TLS13],
        (_, rustls::ProtocolVersion::TLSv1_2) => vec![&rustls::version::TLS12],
        _ => vec![&rustls::version::TLS13, &rustls::version::TLS12],
    };
    format!("{:?}{:?}{client_auth:?}", t.min_version, t.max_version).hash(hasher);

    // Cipher suites and curves: Go semantics (the list restricts TLS 1.2 only;
    // TLS 1.3 suites are always on). Unsupported names are errors, not
    // silently dropped: a hardening setting that does nothing is a trap.
    let mut provider: CryptoProvider = rustls::crypto::ring::default_provider();
    if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let mut suites: Vec<SupportedCipherSuite> =
            provider.cipher_suites.iter().copied().filter(|s| s.tls13().is_some()).collect();
        for (i, name) in names.iter().enumerate() {
            let suite = cipher_suite_by_go_name(name).ok_or_else(|| {
                cx.invalid(
                    format!("tls_server_config.cipher_suites[{i}]"),
                    format!("'{}' is unknown or not implemented (no CBC or static-RSA suites)", name.escape_debug()),
                    "use TLS_ECDHE_{ECDSA,RSA}_WITH_AES_{128_GCM_SHA256,256_GCM_SHA384} or \
                     TLS_ECDHE_{ECDSA,RSA}_WITH_CHACHA20_POLY1305, or remove cipher_suites",
                )
            })?;
            if !suites.iter().any(|s| s.suite() == suite.suite()) {
                suites.push(suite);
            }
        }
        if versions.iter().all(|v| v.version == rustls::ProtocolVersion::TLSv1_2)
            && !suites.iter().any(|s| s.tls13().is_none())
        {
            return Err(cx.invalid("tls_server_config.cipher_suites", "no usable suite", "list a TLS 1.2 suite"));
        }
        names.hash(hasher);
        provider.cipher_suites = suites;
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        let mut groups = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let group = kx_group_by_go_name(name).ok_or_else(|| {
                cx.invalid(
                    format!("tls_server_config.curve_preferences[{i}]"),
                    format!("'{}' is unknown or not implemented", name.escape_debug()),
                    "use X25519, CurveP256 or CurveP384",
                )
            })?;
            if !groups.iter().any(|g: &&dyn SupportedKxGroup| g.name() == group.name()) {
                groups.push(group);
            }
        }
        names.hash(hasher);
        provider.kx_groups = groups;
    }
    let provider = Arc::new(provider);

    let verifier: Arc<dyn ClientCertVerifier> = match (client_auth, roots) {
        (ClientAuth::NoClientCert, _) => WebPkiClientVerifier::no_client_auth(),
        (ClientAuth::VerifyClientCertIfGiven, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()
                .map_err(|e| {
                    cx.invalid(ca_field, format!("cannot build the client verifier: {e}"), "check the CA file")
                })?
        }
        (ClientAuth::RequireAndVerifyClientCert, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider)).build().map_err(
                |e| cx.invalid(ca_field, format!("cannot build the client verifier: {e}"), "check the CA file"),
            )?
        }
        (ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert, roots) => Arc::new(AnyClientCert {
            mandatory: client_auth == ClientAuth::RequireAnyClientCert,
            hints: roots.map(|r| r.subjects()).unwrap_or_default(),
            provider: Arc::clone(&provider),
        }),
        // Excluded above: verifying modes without roots.
        (ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert, None) => {
            return Err(cx.invalid("tls_server_config.client_ca_file", "missing", "set client_ca_file"))
        }
    };
    if matches!(client_auth, ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert) {
        warnings.push(format!(
            "client_auth_type {client_auth:?} does not verify client certificates; \
             use RequireAndVerifyClientCert with client_ca_file to authenticate clients"
        ));
    }

    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| {
            cx.invalid(
                "tls_server_config.cipher_suites",
                format!("no suite usable with the allowed TLS versions: {e}"),
                "list suites for min_version..max_version",
            )
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => cx.invalid(
                key_field,
                "the private key does not match the certificate in cert_file",
                "use the key the certificate was issued for",
            ),
            _ => cx.invalid(
                key_field,
                "the key or certificate cannot be used",
                "use an RSA (2048+ bits), ECDSA P-256/P-384 or Ed25519 key with its certificate",
            ),
        })?;
    // Go's prefer_server_cipher_suites is ignored since Go 1.18 (server order
    // is always used); rustls follows the client's order unless told otherwise.
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    // Only HTTP/1.1 is served; advertising it lets ALPN-speaking clients agree.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), client_auth, cert_not_after))
}

/// `RequestClientCert` / `RequireAnyClientCert`: accept any certificate
/// without checking its chain (Go semantics), but still check the handshake
/// signature so the client proves it holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

// ---- basic auth ----------------------------------------------------------------

/// The result of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Allowed,
    /// Missing, malformed or wrong credentials: 401.
    Denied,
    /// Too many uncached checks are running: 503, try again.
    Busy,
}

/// Checks `Authorization: Basic` headers against bcrypt hashes.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// Passwords that verified, per user. Plain bytes in process memory,
    /// where the request that carried them also was; never logged.
    verified: Mutex<HashMap<String, Vec<Vec<u8>>>>,
    bcrypt_slots: Arc<Semaphore>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth").field("users", &self.users.len()).finish_non_exhaustive()
    }
}

impl BasicAuth {
    fn new(users: HashMap<String, String>) -> BasicAuth {
        BasicAuth {
            users,
            verified: Mutex::new(HashMap::new()),
            bcrypt_slots: Arc::new(Semaphore::new(BCRYPT_CONCURRENCY)),
        }
    }

    /// Checks an `Authorization` header value. bcrypt runs on the blocking
    /// pool, so this never stalls the runtime; every wait is bounded.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> AuthOutcome {
        let Some((user, password)) = authorization.and_then(|v| parse_basic(v.as_bytes())) else {
            return AuthOutcome::Denied;
        };
        if self.is_cached(&user, &password) {
            return AuthOutcome::Allowed;
        }
        let Ok(Ok(permit)) =
            tokio::time::timeout(BCRYPT_QUEUE_TIMEOUT, Arc::clone(&self.bcrypt_slots).acquire_owned()).await
        else {
            return AuthOutcome::Busy;
        };
        let known = self.users.get(&user).cloned();
        let hash = known.clone().unwrap_or_else(|| DUMMY_HASH.to_string());
        let candidate = password.clone();
        let verify = tokio::task::spawn_blocking(move || {
            // The permit lives as long as the work, even if the request gives up waiting.
            let _permit = permit;
            bcrypt::verify(&candidate, &hash).unwrap_or(false)
        });
        let matched = matches!(tokio::time::timeout(BCRYPT_VERIFY_TIMEOUT, verify).await, Ok(Ok(true)));
        if matched && known.is_some() {
            self.remember(user, password);
            AuthOutcome::Allowed
        } else {
            AuthOutcome::Denied
        }
    }

    fn is_cached(&self, user: &str, password: &[u8]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.get(user).is_some_and(|known| {
            // Check every entry so the time does not depend on which one matches.
            known.iter().fold(false, |hit, k| constant_time_eq(k, password) | hit)
        })
    }

    fn remember(&self, user: String, password: Vec<u8>) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let entry = verified.entry(user).or_default();
        if entry.iter().any(|k| constant_time_eq(k, &password)) {
            return;
        }
        if entry.len() >= CACHED_PASSWORDS_PER_USER {
            entry.remove(0);
        }
        entry.push(password);
    }
}

/// Equality whose time depends only on the lengths, not on where bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Basic <base64(user:password)>` into (user, password). `None` when malformed.
fn parse_basic(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(encoded.trim())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// Standard base64 (RFC 4648 §4), padding optional. `None` on any invalid input.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 || text.len() > 8192 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

// ---- the live, reloadable configuration ----------------------------------------

/// Why a reload runs (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadReason {
    /// The periodic check; only changes are applied and logged.
    Poll,
    /// SIGHUP: applied and logged even when nothing changed.
    Signal,
    /// An explicit API call (tests, embedding).
    Request,
}

impl ReloadReason {
    fn as_str(self) -> &'static str {
        match self {
            ReloadReason::Poll => "file changed",
            ReloadReason::Signal => "sighup",
            ReloadReason::Request => "request",
        }
    }
}

pub const WEB_TLS_CERT_EXPIRY: crate::metrics::Desc = crate::metrics::Desc::gauge(
    "tenderly_exporter_web_tls_certificate_expiry_timestamp_seconds",
    "Unix time at which the exporter's own web TLS certificate (--web.config.file tls_server_config) expires; updated on every successful reload.",
)
.unit(crate::metrics::BaseUnit::Seconds);

/// Every descriptor this module emits.
pub fn descriptors() -> Vec<&'static crate::metrics::Desc> {
    vec![&WEB_TLS_CERT_EXPIRY]
}

/// The live configuration's certificate expiry, shared with the exporter's own
/// metrics (the scraper holds a clone): `i64::MIN` when there is no TLS. Set by
/// [`WebSecurityStore::load`] and every successful reload.
#[derive(Debug, Clone)]
pub struct CertificateExpiry(Arc<std::sync::atomic::AtomicI64>);

impl Default for CertificateExpiry {
    fn default() -> Self {
        CertificateExpiry(Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)))
    }
}

impl CertificateExpiry {
    fn set(&self, not_after: Option<i64>) {
        self.0.store(not_after.unwrap_or(i64::MIN), std::sync::atomic::Ordering::Relaxed);
    }

    /// Emits the web certificate's expiry, when the live web configuration has TLS.
    pub fn encode(&self, out: &mut crate::metrics::Exposition) {
        let t = self.0.load(std::sync::atomic::Ordering::Relaxed);
        if t != i64::MIN {
            out.add_plain(&WEB_TLS_CERT_EXPIRY, t);
        }
    }
}

/// The current [`WebSecurity`], swapped atomically on a successful reload.
/// Readers clone the `Arc`, so a reload never waits for or disturbs a
/// connection that is already using the old configuration.
pub struct WebSecurityStore {
    path: Option<PathBuf>,
    current: RwLock<Arc<WebSecurity>>,
    /// The last reload error logged, so a broken file is reported once per
    /// distinct problem rather than on every poll.
    last_error: Mutex<Option<String>>,
    cert_expiry: CertificateExpiry,
}

impl fmt::Debug for WebSecurityStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSecurityStore").field("path", &self.path).field("current", &*self.current()).finish()
    }
}

impl WebSecurityStore {
    /// Loads `path` (or nothing: plain HTTP without auth). Errors are fatal at startup.
    pub fn load(path: Option<&Path>) -> Result<WebSecurityStore, WebConfigError> {
        let security = match path {
            Some(p) => WebSecurity::load(p)?,
            None => WebSecurity::disabled(),
        };
        for warning in security.warnings() {
            tracing::warn!(file = %path.map(|p| p.display().to_string()).unwrap_or_default(), "web config: {warning}");
        }
        let cert_expiry = CertificateExpiry::default();
        cert_expiry.set(security.certificate_expiry());
        Ok(WebSecurityStore {
            path: path.map(Path::to_path_buf),
            current: RwLock::new(Arc::new(security)),
            last_error: Mutex::new(None),
            cert_expiry,
        })
    }

    /// The live certificate expiry (follows reloads), for the exporter's own metrics.
    pub fn certificate_expiry(&self) -> CertificateExpiry {
        self.cert_expiry.clone()
    }

    /// The web config file, if any (nothing to reload without one).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The configuration new connections and requests use.
    pub fn current(&self) -> Arc<WebSecurity> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads and re-validates the file (blocking I/O: call it from the
    /// blocking pool). On success the new configuration replaces the old one
    /// for new connections and requests and `Ok(true)` is returned if anything
    /// changed; on failure the old one stays and the error is logged once.
    pub fn reload(&self, reason: ReloadReason) -> Result<bool, WebConfigError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        match WebSecurity::load(path) {
            Ok(next) => {
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let changed = next.fingerprint != self.current().fingerprint;
                if !changed && reason == ReloadReason::Poll {
                    return Ok(false);
                }
                for warning in next.warnings() {
                    tracing::warn!(file = %path.display(), "web config: {warning}");
                }
                tracing::info!(
                    file = %path.display(),
                    reason = reason.as_str(),
                    changed,
                    tls = next.tls.is_some(),
                    client_auth = ?next.client_auth,
                    basic_auth_users = next.auth.as_ref().map_or(0, |a| a.users.len()),
                    "web config reloaded"
                );
                self.cert_expiry.set(next.certificate_expiry());
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
                Ok(changed)
            }
            Err(e) => {
                let message = e.to_string();
                let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
                if reason != ReloadReason::Poll || last.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        reason = reason.as_str(),
                        error = %message,
                        "web config reload failed; keeping the previous configuration"
                    );
                    *last = Some(message);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<WebSecurity, WebConfigError> {
        WebSecurity::parse(yaml, Path::new("/nonexistent/web.yml"))
    }

    fn err(yaml: &str) -> String {
        parse(yaml).expect_err("config must be rejected").to_string()
    }

    #[test]
    fn empty_and_absent_sections_mean_plain_http_without_auth() {
        for yaml in ["", "tls_server_config: {}\n", "basic_auth_users: {}\n", "basic_auth_users:\n", "{}"] {
            let s = parse(yaml).expect(yaml);
            assert!(s.tls_acceptor().is_none() && s.basic_auth().is_none(), "{yaml}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err("tls_server_config:\n  cert_fil: x\n");
        assert!(e.contains("cert_fil"), "{e}");
        let e = err("basic_auth: {}\n");
        assert!(e.contains("basic_auth"), "{e}");
        let e = err("http_server_config:\n  header: {}\n");
        assert!(e.contains("header"), "{e}");
    }

    #[test]
    fn bad_bcrypt_hashes_are_named_and_not_echoed() {
        let e = err("basic_auth_users:\n  alice: plaintext-password\n");
        assert!(e.contains("basic_auth_users.alice") && e.contains("bcrypt") && e.contains("htpasswd"), "{e}");
        assert!(!e.contains("plaintext-password"), "{e}");
        // Well-formed, not computed: cost 17 takes seconds.
        let slow = DUMMY_HASH.replacen("$10$", "$17$", 1);
        let e = err(&format!("basic_auth_users:\n  bob: '{slow}'\n"));
        assert!(e.contains("basic_auth_users.bob") && e.contains("cost 17"), "{e}");
        let e = err("basic_auth_users:\n  carol: 271828182\n");
        assert!(e.contains("basic_auth_users.carol") && !e.contains("271828182"), "{e}");
        let e = err("basic_auth_users:\n  'a:b': '$2y$04$abcdefghijklmnopqrstuuJ0mNXmXJ0SWPFQyWa1a0aqCwq2jO6mG'\n");
        assert!(e.contains("no ':'"), "{e}");
    }

    #[test]
    fn dummy_hash_is_well_formed() {
        let parts: bcrypt::HashParts = DUMMY_HASH.parse().expect("dummy hash parses");
        assert_eq!(parts.get_cost(), 10);
    }

    #[test]
    fn tls_errors_name_the_field() {
        let e = err("tls_server_config:\n  key_file: k.pem\n");
        assert!(e.contains("tls_server_config.cert_file") && e.contains("missing"), "{e}");
        let e = err("tls_server_config:\n  cert_file: c.pem\n");
        assert!(e.contains("tls_server_config.key_file") && e.contains("missing"), "{e}");
        let e = err("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n");
        // The cert file does not exist: named with the resolved path.
        assert!(e.contains("tls_server_config.cert_file") && e.contains("/nonexistent/c.pem"), "{e}");
        let e = err("tls_server_config:\n  cert_file: c.pem\n  cert: inline\n  key_file: k.pem\n");
        assert!(e.contains("both cert and cert_file"), "{e}");
    }

    #[test]
    fn client_auth_type_values() {
        for (text, want) in [
            ("", ClientAuth::NoClientCert),
            ("NoClientCert", ClientAuth::NoClientCert),
            ("RequestClientCert", ClientAuth::RequestClientCert),
            ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
            ("RequireClientCert", ClientAuth::RequireAnyClientCert),
            ("VerifyClientCertIfGiven", ClientAuth::VerifyClientCertIfGiven),
            ("RequireAndVerifyClientCert", ClientAuth::RequireAndVerifyClientCert),
        ] {
            assert_eq!(ClientAuth::parse(text), Some(want), "{text}");
        }
        assert_eq!(ClientAuth::parse("requireandverifyclientcert"), None);
    }

    #[test]
    fn only_safe_headers_can_be_set() {
        let s = parse("http_server_config:\n  http2: true\n  headers:\n    strict-transport-security: max-age=60\n")
            .expect("valid");
        assert_eq!(s.response_headers().len(), 1);
        assert_eq!(s.response_headers()[0].0.as_str(), "strict-transport-security");
        let e = err("http_server_config:\n  headers:\n    Set-Cookie: a=b\n");
        assert!(e.contains("http_server_config.headers.Set-Cookie") && e.contains("Strict-Transport-Security"), "{e}");
    }

    #[test]
    fn basic_header_parsing() {
        // "alice:pa:ss" -> password may contain ':'.
        assert_eq!(parse_basic(b"Basic YWxpY2U6cGE6c3M="), Some(("alice".into(), b"pa:ss".to_vec())));
        assert_eq!(parse_basic(b"basic YWxpY2U6cGE6c3M"), Some(("alice".into(), b"pa:ss".to_vec())));
        assert_eq!(parse_basic(b"Basic YWxpY2U6"), Some(("alice".into(), Vec::new())));
        for bad in [&b"Bearer YWxpY2U6cGE6c3M="[..], b"Basic", b"Basic !!!!", b"Basic YWxpY2U=", b"Basic Y", b"\xff"] {
            assert_eq!(parse_basic(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn base64_matches_known_vectors() {
        for (enc, dec) in
            [("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYg==", "foob"), ("Zm9vYmFy", "foobar")]
        {
            assert_eq!(base64_decode(enc).as_deref(), Some(dec.as_bytes()), "{enc}");
        }
        assert_eq!(base64_decode("Zm9v===="), None);
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[tokio::test]
    async fn basic_auth_checks_and_caches() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let s = parse(&format!("basic_auth_users:\n  alice: '{hash}'\n")).expect("valid");
        let auth = s.basic_auth().expect("auth configured");
        let header = |user: &str, pass: &str| {
            let raw = format!("{user}:{pass}");
            HeaderValue::from_str(&format!("Basic {}", base64_encode_for_test(raw.as_bytes()))).expect("header")
        };
        assert_eq!(auth.check(None).await, AuthOutcome::Denied);
        assert_eq!(auth.check(Some(&header("alice", "wrong"))).await, AuthOutcome::Denied);
        assert_eq!(auth.check(Some(&header("mallory", "s3cret"))).await, AuthOutcome::Denied);
        assert_eq!(auth.check(Some(&header("alice", "s3cret"))).await, AuthOutcome::Allowed);
        assert!(auth.is_cached("alice", b"s3cret"));
        assert!(!auth.is_cached("alice", b"wrong"));
        assert_eq!(auth.check(Some(&header("alice", "s3cret"))).await, AuthOutcome::Allowed);
    }

    fn base64_encode_for_test(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut buf = [0u8; 3];
            buf[..chunk.len()].copy_from_slice(chunk);
            let n = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
