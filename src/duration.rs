//! The one duration syntax of the exporter, for flags and every YAML field:
//! Prometheus' units (`ms`, `s`, `m`, `h`, `d`, `w`, `y`), compound values
//! (`1h30m`), and decimals (`1.5s`) as the exporter has always accepted.
//! A number without a unit is an error: `timeout: 5` could mean seconds or
//! milliseconds, and a wrong guess is a silent outage.
//!
//! Callers bound the result for their own field (a scrape timeout is not a
//! retention period); [`MAX`] only keeps the arithmetic finite.

use std::time::Duration;

/// Longest duration any field accepts (ten years).
pub const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

const UNITS: [(&str, f64); 7] =
    [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3_600.0), ("d", 86_400.0), ("w", 604_800.0), ("y", 31_536_000.0)];

/// Parses `500ms`, `1.5s`, `2m`, `1h30m`, `7d`, `2w`, `1y`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let examples = "examples: 500ms, 1.5s, 2m, 1h30m, 7d";
    if t.is_empty() {
        return Err(format!("an empty value is not a duration ({examples})"));
    }
    let mut rest = t;
    let mut seconds = 0.0f64;
    let mut last_scale = f64::INFINITY;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
            return Err(format!("'{t}' is not a duration ({examples})"));
        }
        let value: f64 = number.parse().map_err(|_| format!("'{t}' is not a duration ({examples})"))?;
        if after.is_empty() {
            return Err(format!("'{t}' has no unit: write e.g. {number}s or {number}ms"));
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_len);
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("'{t}': unknown unit '{unit}' (use ms, s, m, h, d, w or y)"));
        };
        // Units must get smaller from left to right, as in Prometheus (`1h30m`, not `30m1h`).
        if scale >= last_scale {
            return Err(format!("'{t}': units must go from largest to smallest, each once ({examples})"));
        }
        last_scale = scale;
        seconds += value * scale;
        rest = tail;
    }
    if !seconds.is_finite() || seconds > MAX.as_secs_f64() {
        return Err(format!("'{t}' is out of range (at most 10y)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prometheus_units_decimals_and_compounds() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse("1y"), Ok(Duration::from_secs(31_536_000)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_missing_units_and_garbage_with_a_reason() {
        assert!(parse("5").unwrap_err().contains("no unit"));
        assert!(parse("1h5").unwrap_err().contains("no unit"));
        assert!(parse("5x").unwrap_err().contains("unknown unit"));
        assert!(parse("").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse(".5s").is_err());
        assert!(parse("1.s").is_err());
        assert!(parse("NaNs").is_err());
        assert!(parse("30m1h").unwrap_err().contains("largest to smallest"));
        assert!(parse("1s1s").is_err());
        assert!(parse("11y").unwrap_err().contains("out of range"));
        assert!(parse("99999999999999999999999999y").is_err());
    }
}
