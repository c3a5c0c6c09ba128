//! Logging setup: logfmt (default) or JSON lines on stderr.
//!
//! tracing-subscriber has no logfmt formatter, so a small one lives here:
//! `ts=... level=warn msg="scrape failed" target_name=redis error="..."`.
//! Values are quoted when needed; nothing here ever formats a secret because
//! secrets are only held in [`crate::config::Secret`], which prints redacted.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::{LogFormat, LogLevel};

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
        write!(
            writer,
            "ts={}.{:03} level={}",
            now.as_secs(),
            now.subsec_millis(),
            event.metadata().level().as_str().to_ascii_lowercase()
        )?;
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
    use super::quote;

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(quote("redis"), "redis");
        assert_eq!(quote("scrape failed"), "\"scrape failed\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(quote(""), "\"\"");
    }
}
