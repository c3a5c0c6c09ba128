//! The one PromQL tokenizer of the test suite (alert rules and dashboards
//! both ask it which metrics an expression selects).
//!
//! Skipped: strings, label matchers (`{...}`, kept as the reference's
//! matchers), ranges and subqueries (`[...]`), comments, numbers and durations,
//! Grafana `$variables`, label lists after `by`/`without`/`on`/`ignoring`/
//! `group_left`/`group_right`, function calls and aggregations (their
//! arguments are scanned), and keywords. Every other identifier is a metric.

/// A metric named in an expression, with the text between the braces after it
/// (empty without braces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRef {
    pub name: String,
    pub matchers: String,
}

/// Aggregation operators, which may put `by (...)`/`without (...)` before their argument.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Modifiers whose parenthesised argument is a list of label names.
const LABEL_LIST_MODIFIERS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Binary operators and other words that are never metrics.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"];

/// Whether `text` starts with the whole word `word`.
fn starts_word(text: &str, word: &str) -> bool {
    text.strip_prefix(word).is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// Index just past the string literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
        } else if chars[i] == quote {
            return i + 1;
        } else {
            i += 1;
        }
    }
    i
}

/// Index just past the bracketed group starting at `start` (strings inside are
/// skipped whole, so a `}` in a regex does not end a matcher).
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// Every metric an expression selects, in order of appearance.
pub fn metric_refs(expr: &str) -> Vec<MetricRef> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '$' || c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // Grafana variables, numbers, hex, exponents and durations (5m, 1h30m, 1e9, 0x1f).
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_' || chars[i] == '{')
            {
                if chars[i] == '{' {
                    // `${var}`
                    i = skip_group(&chars, i, '{', '}');
                } else {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let rest: String = chars[next..].iter().take(8).collect();
            // `f(`, and aggregations with a leading modifier: `sum by (...) (`.
            let called = chars.get(next) == Some(&'(')
                || (AGGREGATIONS.contains(&lower.as_str())
                    && (starts_word(&rest, "by") || starts_word(&rest, "without")));
            if LABEL_LIST_MODIFIERS.contains(&lower.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_group(&chars, next, '(', ')');
                }
            } else if called || KEYWORDS.contains(&lower.as_str()) || AGGREGATIONS.contains(&lower.as_str()) {
                // Calls, aggregations and operators: their arguments are scanned normally.
            } else {
                let matchers = if chars.get(next) == Some(&'{') {
                    let end = skip_group(&chars, next, '{', '}');
                    i = end;
                    chars[next + 1..end.saturating_sub(1)].iter().collect()
                } else {
                    String::new()
                };
                out.push(MetricRef { name: word, matchers });
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The distinct metric names of an expression.
pub fn metric_names(expr: &str) -> std::collections::BTreeSet<String> {
    metric_refs(expr).into_iter().map(|m| m.name).collect()
}
