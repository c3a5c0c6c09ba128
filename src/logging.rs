//! Logging setup: logfmt (default) or JSON lines on stderr.
//!
//! tracing-subscriber has no logfmt formatter, so a small one lives here:
//! `ts=... level=warn msg="scrape failed" target_name=redis error="..."`.
//! Values are quoted when needed; nothing here ever formats a secret because
//! secrets are only held in `Secret` (see the config module), which prints redacted.
//! Timestamps are RFC 3339 in UTC with milliseconds, as the Go exporters write them.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Installs the global subscriber. Idempotent failures (already set) are ignored.
pub fn init(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    };
    // Dependencies' debug logs can include connection details; keep them at warn.
    let filter =
        tracing_subscriber::filter::Targets::new().with_default(Level::WARN).with_target("tenderly_exporter", level);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let result = match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Logfmt => tracing_subscriber::registry()
            .with(filter)
            .with(tracing_subscriber::fmt::layer().event_format(Logfmt).with_writer(std::io::stderr))
            .try_init(),
    };
    let _ = result;
}

/// logfmt event formatter.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        write!(writer, "ts={} level={}", rfc3339_millis(now), event.metadata().level().as_str().to_ascii_lowercase())?;
        let mut visitor = LogfmtVisitor { out: String::new(), message: None };
        event.record(&mut visitor);
        if let Some(msg) = visitor.message {
            write!(writer, " msg={}", quote(&msg))?;
        }
        writeln!(writer, "{}", visitor.out)
    }
}

struct LogfmtVisitor {
    out: String,
    message: Option<String>,
}

impl Visit for LogfmtVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            let _ = write!(self.out, " {}={}", field.name(), quote(&text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            let _ = write!(self.out, " {}={}", field.name(), quote(value));
        }
    }
}

/// `2026-11-30T12:34:56.789Z` for a time since the Unix epoch (UTC).
pub fn rfc3339_millis(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, on days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// Quotes a logfmt value when it contains spaces, quotes, `=` or control characters.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty() && value.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if plain {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::{quote, rfc3339_millis};
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        assert_eq!(rfc3339_millis(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(Duration::from_millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_millis(Duration::from_secs(1_796_037_445)), "2026-11-30T11:17:25.000Z");
        assert_eq!(rfc3339_millis(Duration::from_secs(4_107_542_399)), "2100-02-28T23:59:59.000Z");
    }

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(quote("redis"), "redis");
        assert_eq!(quote("scrape failed"), "\"scrape failed\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(quote(""), "\"\"");
    }
}
