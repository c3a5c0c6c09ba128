//! When the server's TLS certificate expires: `redis_tls_certificate_expiry_timestamp_seconds`,
//! the `notAfter` of the leaf certificate a `rediss://` server presents in a
//! TLS handshake made with the target's own TLS settings (CA, client
//! certificate). The persistent connection keeps the certificate of the day it
//! connected, so the check is a fresh handshake (no command, no AUTH), at most
//! every [`CHECK_INTERVAL`], under the scrape deadline.
//!
//! [`not_after_unix`] is a small, bounded DER reader for the one field needed
//! (no X.509 crate is vendored): Certificate → tbsCertificate → validity →
//! notAfter, UTCTime or GeneralizedTime. Anything unexpected gives `None`.
//! The exporter's own web certificate is read with it too (`web_config`).

use std::time::Duration;

use crate::metrics::{BaseUnit, Desc, Exposition};

pub const TLS_CERT_EXPIRY: Desc = Desc::gauge(
    "redis_tls_certificate_expiry_timestamp_seconds",
    "Unix time at which the Redis server's TLS certificate (the leaf it presents in a handshake with the target's TLS settings) expires; rediss:// targets only, checked every 5 minutes.",
)
.unit(BaseUnit::Seconds);

/// How often a fresh handshake reads the certificate.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// Every descriptor this module emits.
pub fn descriptors() -> Vec<&'static Desc> {
    vec![&TLS_CERT_EXPIRY]
}

pub fn encode(not_after: Option<i64>, out: &mut Exposition) {
    if let Some(t) = not_after {
        out.add_plain(&TLS_CERT_EXPIRY, t);
    }
}

/// One DER element: (tag, contents, rest after it).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` in Unix seconds, from its DER encoding.
pub fn not_after_unix(der: &[u8]) -> Option<i64> {
    let (tag, cert, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // [0] EXPLICIT version (absent in v1 certificates).
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (tag, validity, _) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    parse_time(tag, time)
}

fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        // RFC 5280: YY >= 50 is 19YY, else 20YY.
        (UTC_TIME, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_like_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(parse_time(UTC_TIME, b"210916145633Z"), Some(1_631_804_193));
        assert_eq!(parse_time(GENERALIZED_TIME, b"20210916145633Z"), Some(1_631_804_193));
        assert_eq!(parse_time(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(parse_time(UTC_TIME, b"210916145633"), None, "no Z");
        assert_eq!(parse_time(UTC_TIME, b"211316145633Z"), None, "month 13");
        assert_eq!(parse_time(GENERALIZED_TIME, b"2021091614563Z"), None);
    }

    #[test]
    fn malformed_der_is_none_not_a_panic() {
        for bad in [&[][..], &[0x30], &[0x30, 0x85, 1, 2, 3, 4, 5], &[0x30, 0x02, 0x30, 0x05], &[0x04, 0x00]] {
            assert_eq!(not_after_unix(bad), None, "{bad:?}");
        }
        // A minimal structure: SEQ { SEQ { INT, SEQ, SEQ, SEQ { UTCTime, UTCTime } } }.
        let time = b"210916145633Z";
        let mut validity = vec![UTC_TIME, 13];
        validity.extend_from_slice(time);
        validity.extend_from_slice(&[UTC_TIME, 13]);
        validity.extend_from_slice(time);
        let mut tbs = vec![0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, validity.len() as u8];
        tbs.extend(validity);
        let mut cert = vec![0x30, tbs.len() as u8 + 2, 0x30, tbs.len() as u8];
        cert.extend(tbs);
        assert_eq!(not_after_unix(&cert), Some(1_631_804_193));
    }
}
