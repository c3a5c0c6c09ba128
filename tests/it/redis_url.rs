//! Credentials in `redis://` URLs are percent-decoded (RFC 3986), as MongoDB
//! URLs already were: before, `%23` was sent to the server as the three
//! characters `%23`, so a password with `# ? / @ : %` could not be given in a URL.

use crate::support::exporter::TestExporter;
use crate::support::{RedisOptions, RedisServer};

const PASSWORD: &str = "p#?/@:%x";
const ENCODED: &str = "p%23%3F%2F%40%3A%25x";

#[test]
fn a_percent_encoded_password_in_a_redis_url_authenticates() {
    let server = RedisServer::start(RedisOptions {
        password: Some(PASSWORD.to_owned()),
        // An ACL user whose name needs encoding too.
        acl_lines: vec![format!("user ex@p:er on >{PASSWORD} ~* &* +@all")],
        ..RedisOptions::default()
    });
    let port = server.addr().rsplit_once(':').map(|(_, p)| p.to_owned()).expect("host:port");
    for url in
        [format!("redis://:{ENCODED}@127.0.0.1:{port}"), format!("redis://ex%40p%3Aer:{ENCODED}@127.0.0.1:{port}/0")]
    {
        let exporter = TestExporter::start(&["--redis.addr", &url, "--no-collector.tenderly.keys"], &[]);
        let m = exporter.scrape("/metrics");
        assert_eq!(m.value("redis_up", &[]), Some(1.0), "{url}: {}", m.text);
        assert!(!m.text.contains(PASSWORD) && !m.text.contains(ENCODED), "the password leaked into the exposition");
    }
}
