//! `docs/metrics.md` is rendered from the metric declarations (name, type,
//! unit, labels, help, collector) and must match them: a stale reference
//! fails here with a line diff; `UPDATE_GOLDEN=1` rewrites the generated part.

use std::path::PathBuf;

use tenderly_exporter::metrics::{BaseUnit, Kind};

const BEGIN: &str = "<!-- BEGIN GENERATED: tests/it/metrics_doc.rs renders this part from the declarations; \
                     UPDATE_GOLDEN=1 cargo test --test it metrics_doc rewrites it -->";
const END: &str = "<!-- END GENERATED -->";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md")
}

/// The generated reference: one table per collector, in catalog order.
pub fn render_reference() -> String {
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push_str("\n\n");
    out.push_str(
        "### Collectors\n\n| collector | target | switch | default | runs on |\n| --- | --- | --- | --- | --- |\n",
    );
    for c in tenderly_exporter::catalog::COLLECTORS {
        let kind = c.kind.map_or("any", |k| k.as_str());
        let switch = c.flag.map(|f| format!("`--[no-]collector.{f}`")).unwrap_or_default();
        let default = if c.default_on { "on" } else { "off" };
        out.push_str(&format!("| `{}` | {kind} | {switch} | {default} | {} |\n", c.name, c.runs_on));
    }
    out.push('\n');
    let catalog = tenderly_exporter::metric_catalog();
    for (i, (collector, desc)) in catalog.iter().enumerate() {
        if i == 0 || catalog[i - 1].0 != *collector {
            out.push_str(&format!(
                "### `{collector}`\n\n| name | type | unit | labels | help |\n| --- | --- | --- | --- | --- |\n"
            ));
        }
        let kind = match desc.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        };
        let unit = match desc.unit {
            Some(BaseUnit::Bytes) => "bytes",
            Some(BaseUnit::Seconds) => "seconds",
            None => "",
        };
        let labels = desc.labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ");
        out.push_str(&format!(
            "| `{}` | {kind} | {unit} | {labels} | {} |\n",
            desc.name,
            desc.help.replace('|', "\\|")
        ));
        if catalog.get(i + 1).is_none_or(|(next, _)| next != collector) {
            out.push('\n');
        }
    }
    out.push_str(END);
    out
}

#[test]
fn metrics_reference_is_generated_from_the_declarations() {
    let text = std::fs::read_to_string(doc_path()).expect("docs/metrics.md");
    let (Some(start), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        panic!("docs/metrics.md lacks the generated-reference markers:\n{BEGIN}\n...\n{END}");
    };
    let generated = render_reference();
    let expected = format!("{}{}{}", &text[..start], generated, &text[end + END.len()..]);
    crate::support::golden::assert_golden(&doc_path(), &expected);
}

#[test]
fn every_declaration_has_labels_help_and_one_collector() {
    let catalog = tenderly_exporter::metric_catalog();
    let mut names = std::collections::HashSet::new();
    for (collector, desc) in &catalog {
        assert!(desc.is_well_formed(), "{} is not well formed", desc.name);
        assert!(names.insert(desc.name), "{} is declared twice", desc.name);
        assert!(!collector.is_empty());
        assert!(desc.labels.iter().all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_')), "{}", desc.name);
    }
}

/// The sample names a family produces (`_bucket`/`_sum`/`_count` for histograms).
fn sample_names(desc: &tenderly_exporter::metrics::Desc) -> Vec<String> {
    match desc.kind {
        Kind::Histogram => ["_bucket", "_sum", "_count"].iter().map(|s| format!("{}{s}", desc.name)).collect(),
        Kind::Summary => ["", "_sum", "_count"].iter().map(|s| format!("{}{s}", desc.name)).collect(),
        _ => vec![desc.name.to_string()],
    }
}

/// What a live `/metrics` with a real Redis and a MongoDB primary (replay
/// server) emits is all declared, so the generated reference lists it.
#[test]
fn every_family_a_live_scrape_emits_is_in_the_reference() {
    use crate::support::mongo_replay::{ReplayServer, Scenario};
    use crate::support::{exporter::TestExporter, RedisOptions, RedisServer};
    let redis = RedisServer::start(RedisOptions::default());
    let replay = ReplayServer::start(Scenario::Primary).expect("replay server starts");
    let exporter = TestExporter::start(&["--redis.addr", &redis.addr(), "--mongodb.uri", &replay.uri()], &[]);
    let scrape = exporter.scrape("/metrics");
    assert_eq!(scrape.value("redis_up", &[]), Some(1.0), "{}", scrape.text);
    assert_eq!(scrape.value("mongodb_up", &[]), Some(1.0), "{}", scrape.text);
    let declared: std::collections::HashSet<String> =
        tenderly_exporter::metric_catalog().iter().flat_map(|(_, d)| sample_names(d)).collect();
    let reference = std::fs::read_to_string(doc_path()).expect("docs/metrics.md");
    let mut missing: Vec<&str> =
        scrape.samples.iter().map(|(name, _, _)| name.as_str()).filter(|name| !declared.contains(*name)).collect();
    missing.dedup();
    assert!(missing.is_empty(), "emitted but not declared (so not in docs/metrics.md): {missing:?}");
    for (_, desc) in tenderly_exporter::metric_catalog() {
        assert!(reference.contains(&format!("| `{}` |", desc.name)), "{} is not in docs/metrics.md", desc.name);
    }
}
