//! Dashboards, alert rules and deployment files are code (STYLE.md habit 9):
//! the grafana/dashboard-linter rules the dashboards promise (template
//! variables, no hard-coded datasource UIDs, a unit and a description on every
//! panel, `$__rate_interval`, `job`/`instance` matchers on every selector),
//! every metric a dashboard or alert names exists in
//! [`tenderly_exporter::all_descriptors`], and the shipped Prometheus,
//! Alertmanager, Grafana and systemd files pass their own tools' checks.
//!
//! The tool checks (`promtool`, `amtool`, `systemd-analyze`) are skipped with a
//! message when the binary is missing; CI installs them (scripts/install-deps.sh).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Families that dashboards and alerts may name before the exporter emits them
/// (none now). The end-to-end test skips dashboard queries that name one of these.
pub const PENDING: &[&str] = &[];

/// Series Prometheus itself adds to every scrape or evaluation.
const PROMETHEUS_BUILTINS: &[&str] = &["up", "scrape_duration_seconds", "scrape_samples_scraped"];

pub const DASHBOARDS: &[&str] = &["tenderly-overview.json", "mongodb.json", "redis.json"];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One query of one panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

pub fn load_dashboard(name: &str) -> Value {
    let path = root().join("dashboards").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// Every panel, rows' nested panels included (a collapsed row keeps its panels inside).
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().map(Vec::as_slice).unwrap_or_default() {
        out.push(p);
        for nested in p["panels"].as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push(nested);
        }
    }
    out
}

/// Every query of every dashboard.
pub fn all_queries() -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        let d = load_dashboard(name);
        for p in panels(&d) {
            for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or_default() {
                out.push(PanelQuery {
                    dashboard: (*name).to_string(),
                    panel: p["title"].as_str().unwrap_or("?").to_string(),
                    expr: t["expr"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
    }
    out
}

/// Every alert rule's `(name, expr)` in alerts/*.rules.yml.
pub fn alert_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in rule_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: serde_norway::Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
        for group in doc["groups"].as_sequence().map(Vec::as_slice).unwrap_or_default() {
            for rule in group["rules"].as_sequence().map(Vec::as_slice).unwrap_or_default() {
                let name = rule["alert"].as_str().or_else(|| rule["record"].as_str()).unwrap_or("?");
                if let Some(expr) = rule["expr"].as_str() {
                    out.push((name.to_string(), expr.to_string()));
                }
            }
        }
    }
    out
}

/// alerts/*.rules.yml, sorted.
pub fn rule_files() -> Vec<PathBuf> {
    let dir = root().join("alerts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".rules.yml")))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

pub use crate::support::promql::metric_refs;

/// Whether `name` (possibly a histogram's `_bucket`/`_sum`/`_count`) is a family
/// the exporter declares.
fn declared(name: &str) -> bool {
    tenderly_exporter::all_descriptors().iter().any(|d| {
        d.name == name
            || (d.kind == tenderly_exporter::metrics::Kind::Histogram
                && ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s) == Some(d.name)))
    })
}

pub fn is_pending(name: &str) -> bool {
    PENDING.contains(&name)
}

/// Whether a query names a family on the PENDING list.
pub fn names_pending_metric(expr: &str) -> bool {
    metric_refs(expr).iter().any(|m| is_pending(&m.name))
}

/// Grafana's variables replaced by concrete PromQL, for promtool and the
/// end-to-end test.
pub fn substitute_variables(expr: &str, job: &str, instance: &str, rate_interval: &str) -> String {
    expr.replace("${job}", job)
        .replace("$job", job)
        .replace("${instance}", instance)
        .replace("$instance", instance)
        .replace("${__rate_interval}", rate_interval)
        .replace("$__rate_interval", rate_interval)
}

/// Runs a checking tool; `None` (the test is recorded as skipped) when it is
/// not installed outside CI.
fn run_tool(binary: &str, args: &[&str], debian_package: &str) -> Option<std::process::Output> {
    let path = crate::support::process::require_tool(binary, debian_package)?;
    let output = Command::new(&path)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    Some(output)
}

fn describe(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

// ---- dashboard lint rules ------------------------------------------------------

#[test]
fn dashboards_have_datasource_job_and_instance_variables() {
    let mut uids = BTreeSet::new();
    for name in DASHBOARDS {
        let d = load_dashboard(name);
        assert!(d.get("__inputs").is_none(), "{name}: __inputs makes the dashboard import-only; use ${{datasource}}");
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty() && uid.len() <= 40, "{name}: uid must be set and at most 40 characters");
        assert!(uids.insert(uid.to_string()), "{name}: uid {uid} used twice");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}: no title");
        assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "{name}: schemaVersion must be Grafana 10's");
        let vars = d["templating"]["list"].as_array().unwrap_or_else(|| panic!("{name}: no templating.list"));
        let var = |n: &str| {
            vars.iter().find(|v| v["name"] == n).unwrap_or_else(|| panic!("{name}: no `{n}` template variable"))
        };
        let ds = var("datasource");
        assert_eq!(ds["type"], "datasource", "{name}: `datasource` must be a datasource variable");
        assert_eq!(ds["query"], "prometheus", "{name}: `datasource` must select Prometheus datasources");
        for n in ["job", "instance"] {
            let v = var(n);
            assert_eq!(v["type"], "query", "{name}: `{n}` must be a query variable");
            assert!(is_templated_datasource(&v["datasource"]), "{name}: `{n}` must query ${{datasource}}");
            let query = v["query"]["query"].as_str().or_else(|| v["query"].as_str()).unwrap_or_default();
            assert!(
                query.starts_with("label_values(") && query.ends_with(&format!(", {n})")),
                "{name}: `{n}` must come from label_values(..., {n}), got {query:?}"
            );
            assert_eq!(v["multi"], true, "{name}: `{n}` must be multi-select");
            assert_eq!(v["includeAll"], true, "{name}: `{n}` must offer All");
            assert_eq!(v["allValue"], ".+", "{name}: `{n}` allValue must be .+");
        }
        let instance_query = var("instance")["query"]["query"].as_str().unwrap_or_default().to_string();
        assert!(instance_query.contains(r#"job=~"$job""#), "{name}: `instance` must be filtered by $job");
    }
}

fn is_templated_datasource(v: &Value) -> bool {
    let ok = |s: &str| s == "${datasource}" || s == "$datasource";
    match v {
        Value::String(s) => ok(s),
        Value::Object(o) => o.get("uid").and_then(Value::as_str).is_some_and(ok),
        _ => false,
    }
}

/// Every `datasource` anywhere in the JSON, with its JSON path.
fn datasources<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let p = format!("{path}.{k}");
                if k == "datasource" {
                    out.push((p.clone(), child));
                }
                datasources(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                datasources(child, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Provisioned dashboards are read-only in Grafana (dashboard-linter's
/// rule): edits belong in the repository, not in one Grafana's database.
#[test]
fn dashboards_are_not_editable() {
    for name in DASHBOARDS {
        let dashboard = load_dashboard(name);
        assert_eq!(dashboard["editable"], Value::Bool(false), "{name}: \"editable\" must be false");
    }
}

#[test]
fn no_hard_coded_datasource_uids() {
    for name in DASHBOARDS {
        let d = load_dashboard(name);
        let mut found = Vec::new();
        datasources(&d, String::new(), &mut found);
        assert!(!found.is_empty(), "{name}: no datasource references at all");
        for (path, ds) in found {
            // Grafana's built-in annotation source is not a datasource UID.
            let builtin = ds["uid"] == "-- Grafana --" && path.starts_with(".annotations");
            assert!(builtin || is_templated_datasource(ds), "{name}{path}: datasource {ds} is not ${{datasource}}");
        }
    }
}

#[test]
fn every_panel_has_a_title_description_unit_and_query_inside_a_row() {
    for name in DASHBOARDS {
        let d = load_dashboard(name);
        let top = d["panels"].as_array().unwrap_or_else(|| panic!("{name}: no panels"));
        assert_eq!(
            top.first().map(|p| &p["type"]),
            Some(&Value::from("row")),
            "{name}: panels must be grouped in rows"
        );
        let mut ids = BTreeSet::new();
        let mut rows = 0;
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{name}: a panel without a title: {p}");
            let id = p["id"].as_u64().unwrap_or_else(|| panic!("{name}: panel {title:?} has no id"));
            assert!(ids.insert(id), "{name}: panel id {id} used twice");
            assert!(p["gridPos"]["w"].as_u64().is_some_and(|w| w > 0 && w <= 24), "{name}: {title:?} gridPos");
            if p["type"] == "row" {
                rows += 1;
                continue;
            }
            let description = p["description"].as_str().unwrap_or_default();
            assert!(description.len() > 10, "{name}: panel {title:?} needs a description");
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or_default();
            assert!(!unit.is_empty(), "{name}: panel {title:?} needs fieldConfig.defaults.unit");
            assert!(is_templated_datasource(&p["datasource"]), "{name}: panel {title:?} datasource");
            let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
            assert!(!targets.is_empty(), "{name}: panel {title:?} has no queries");
            for t in targets {
                assert!(t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()), "{name}: {title:?}: empty expr");
                assert!(is_templated_datasource(&t["datasource"]), "{name}: {title:?}: query datasource");
                assert!(t["refId"].as_str().is_some(), "{name}: {title:?}: query without refId");
            }
        }
        assert!(rows >= 3, "{name}: expected the panels grouped in several rows");
    }
}

#[test]
fn rates_use_rate_interval_and_selectors_use_job_and_instance() {
    for q in all_queries() {
        let at = format!("{} / {:?}: {}", q.dashboard, q.panel, q.expr);
        // Every range selector is [$__rate_interval] (rate, irate, increase, *_over_time).
        let mut rest = q.expr.as_str();
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            let close = after.find(']').unwrap_or_else(|| panic!("unclosed [ in {at}"));
            assert_eq!(&after[..close], "$__rate_interval", "range must be [$__rate_interval] in {at}");
            rest = &after[close..];
        }
        for f in ["rate(", "irate(", "increase(", "delta(", "deriv("] {
            let calls = q.expr.matches(f).count();
            let ranges = q.expr.matches("[$__rate_interval]").count();
            assert!(calls <= ranges, "{f} without [$__rate_interval] in {at}");
        }
        let refs = metric_refs(&q.expr);
        assert!(!refs.is_empty(), "no metric in {at}");
        for m in refs {
            assert!(
                m.matchers.contains(r#"job=~"$job""#) && m.matchers.contains(r#"instance=~"$instance""#),
                "{} needs {{job=~\"$job\", instance=~\"$instance\"}} in {at}",
                m.name
            );
        }
    }
}

/// The function whose argument list encloses byte offset `at` of `expr` (`rate` in
/// `sum(rate(x[5m]))` for the offset of `x`), if any.
fn enclosing_function(expr: &str, at: usize) -> Option<&str> {
    let bytes = expr.as_bytes();
    let mut depth = 0usize;
    let mut i = at;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b')' => depth += 1,
            b'(' if depth == 0 => {
                let head = expr[..i].trim_end();
                let start = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
                return Some(&head[start..]);
            }
            b'(' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// dashboard-linter's target-counter-agg-rule: a counter is only shown through
/// rate(), irate() or increase(), never as its raw ever-growing value.
#[test]
fn counters_are_shown_as_rates() {
    let counters: Vec<&str> = tenderly_exporter::all_descriptors()
        .iter()
        .filter(|d| d.kind == tenderly_exporter::metrics::Kind::Counter)
        .map(|d| d.name)
        .collect();
    for q in all_queries() {
        for (at, _) in q.expr.match_indices(|c: char| c.is_ascii_lowercase()) {
            let starts_word = at == 0 || !q.expr[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            if !starts_word {
                continue;
            }
            let rest = &q.expr[at..];
            let word = &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())];
            if counters.contains(&word) {
                let f = enclosing_function(&q.expr, at);
                assert!(
                    matches!(f, Some("rate" | "irate" | "increase")),
                    "{} / {:?}: counter {word} must be inside rate()/irate()/increase(), is in {f:?}: {}",
                    q.dashboard,
                    q.panel,
                    q.expr
                );
            }
        }
    }
    assert_eq!(enclosing_function("sum by (x) (rate(a_total[1m]))", 17), Some("rate"));
    assert_eq!(enclosing_function("a_total", 0), None);
}

#[test]
fn metric_names_are_found_in_promql() {
    let refs = |e: &str| metric_refs(e).into_iter().map(|m| m.name).collect::<Vec<_>>();
    assert_eq!(refs(r#"sum by (cmd) (rate(redis_commands_total{cmd="get"}[5m]))"#), ["redis_commands_total"]);
    assert_eq!(
        refs("a_total / ignoring (type) group_left b{x=~\"y|z\"} and on (instance, job) c == 1"),
        ["a_total", "b", "c"]
    );
    assert_eq!(refs("tenderly_users_locked - tenderly_users_locked offset 30m > 5"), ["tenderly_users_locked"; 2]);
    assert_eq!(refs("histogram_quantile(0.95, sum by (le) (rate(h_bucket[$__rate_interval])))"), ["h_bucket"]);
    assert_eq!(refs("time() - x_seconds > 26 * 3600"), ["x_seconds"]);
    assert_eq!(refs("absent(up{job=\"tenderly-exporter\"})"), ["up"]);
    assert_eq!(refs("topk(10, max by (cmd) (m{quantile=\"0.99\"})) # note: rate(x)"), ["m"]);
    assert_eq!(refs("max_over_time(k{family=\"session\"}[30m]) >= 100 and 1e9 > .5"), ["k"]);
}

#[test]
fn every_metric_in_dashboards_and_alerts_is_emitted_by_the_exporter() {
    let mut unknown = BTreeSet::new();
    let mut used = BTreeSet::new();
    let queries = all_queries().into_iter().map(|q| (format!("{} / {}", q.dashboard, q.panel), q.expr));
    let alerts = alert_exprs().into_iter().map(|(name, expr)| (format!("alert {name}"), expr));
    for (what, expr) in queries.chain(alerts) {
        for m in metric_refs(&expr) {
            used.insert(m.name.clone());
            if !(declared(&m.name) || is_pending(&m.name) || PROMETHEUS_BUILTINS.contains(&m.name.as_str())) {
                unknown.insert(format!("{} (in {what})", m.name));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics not in all_descriptors() nor PENDING:\n{}",
        Vec::from_iter(unknown).join("\n")
    );
    // A PENDING entry that has landed should leave the list, so the e2e test starts checking it.
    let landed: Vec<_> = PENDING.iter().filter(|n| declared(n)).collect();
    if !landed.is_empty() {
        eprintln!("NOTE: declared by all_descriptors() now; remove from dashboards::PENDING: {landed:?}");
    }
    assert!(used.len() > 50, "suspiciously few metrics found: {used:?}");
}

/// Every dashboard query, with the variables substituted, is valid PromQL:
/// promtool parses each one as a recording rule.
#[test]
fn dashboard_queries_are_valid_promql() {
    let dir = crate::support::private_temp_dir("promql");
    let mut rules = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    for (i, q) in all_queries().iter().enumerate() {
        let expr = substitute_variables(&q.expr, ".+", ".+", "1m");
        let quoted = serde_json::to_string(&expr).expect("a string serializes");
        rules.push_str(&format!("      - record: dashboard_query:{i}\n        expr: {quoted}\n"));
    }
    let file = dir.join("dashboard-queries.rules.yml");
    std::fs::write(&file, rules).expect("write rules");
    let out = run_tool("promtool", &["check", "rules", &file.display().to_string()], "prometheus");
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(out) = out {
        assert!(out.status.success(), "promtool rejects a dashboard query:\n{}", describe(&out));
    }
}

// ---- deployment files -----------------------------------------------------------

#[test]
fn shipped_prometheus_config_passes_promtool() {
    let config = std::fs::read_to_string(root().join("deploy/prometheus.yml")).expect("deploy/prometheus.yml");
    let doc: serde_norway::Value = serde_norway::from_str(&config).expect("deploy/prometheus.yml is YAML");
    let jobs: Vec<&str> = doc["scrape_configs"]
        .as_sequence()
        .map(|s| s.iter().filter_map(|j| j["job_name"].as_str()).collect())
        .unwrap_or_default();
    // The exporter alerts select job="tenderly-exporter" (alerts/exporter.rules.yml).
    assert!(jobs.contains(&"tenderly-exporter"), "jobs: {jobs:?}");
    let probes: Vec<_> = doc["scrape_configs"]
        .as_sequence()
        .map(|s| s.iter().filter(|j| j["metrics_path"].as_str() == Some("/probe")).collect())
        .unwrap_or_default();
    assert!(!probes.is_empty(), "no /probe job");
    for job in probes {
        let relabel = serde_norway::to_string(&job["relabel_configs"]).expect("yaml");
        assert!(relabel.contains("target_label: instance"), "{:?}: instance must be relabelled", job["job_name"]);
        assert!(relabel.contains("target_label: __address__"), "{:?}: must point at the exporter", job["job_name"]);
    }
    if let Some(out) = run_tool("promtool", &["check", "config", "deploy/prometheus.yml"], "prometheus") {
        assert!(out.status.success(), "promtool check config deploy/prometheus.yml:\n{}", describe(&out));
    }
}

#[test]
fn shipped_alertmanager_config_passes_amtool() {
    let config = std::fs::read_to_string(root().join("deploy/alertmanager.yml")).expect("deploy/alertmanager.yml");
    for needle in ["severity = critical", "severity = warning", "alertname = RedisDown", "alertname = MongodbDown"] {
        assert!(config.contains(needle), "deploy/alertmanager.yml lacks `{needle}`");
    }
    if let Some(out) = run_tool("amtool", &["check-config", "deploy/alertmanager.yml"], "prometheus-alertmanager") {
        assert!(out.status.success(), "amtool check-config deploy/alertmanager.yml:\n{}", describe(&out));
    }
}

#[test]
fn grafana_provisioning_files_are_valid() {
    let base = root().join("deploy/grafana/provisioning");
    for (dir, key) in [("datasources", "datasources"), ("dashboards", "providers")] {
        let entries: Vec<PathBuf> = std::fs::read_dir(base.join(dir))
            .unwrap_or_else(|e| panic!("deploy/grafana/provisioning/{dir}: {e}"))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        assert!(!entries.is_empty(), "no provisioning file in {dir}");
        for path in entries {
            let text = std::fs::read_to_string(&path).expect("read");
            let doc: serde_norway::Value =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(doc["apiVersion"].as_u64(), Some(1), "{}", path.display());
            assert!(doc[key].as_sequence().is_some_and(|s| !s.is_empty()), "{}: no {key}", path.display());
        }
    }
}

#[test]
fn systemd_unit_is_hardened_and_verifies() {
    let path = root().join("deploy/tenderly-exporter.service");
    let unit = std::fs::read_to_string(&path).expect("deploy/tenderly-exporter.service");
    for directive in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "MemoryMax=",
        "LoadCredential=redis-password:",
        "--config.file=/etc/tenderly-exporter/targets.yml",
    ] {
        assert!(unit.contains(directive), "the unit lacks `{}`", directive.trim_end());
    }
    assert!(!unit.contains("REDIS_PASSWORD="), "no secrets in the unit");
    // systemd-analyze wants an existing executable: verify a copy pointing at /bin/true.
    let dir = crate::support::private_temp_dir("unit");
    let copy = dir.join("tenderly-exporter.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/tenderly-exporter", "/bin/true")).expect("write unit");
    // Not required: a machine without systemd has no systemd-analyze, CI included.
    let out = match crate::support::process::which("systemd-analyze") {
        Some(_) => run_tool("systemd-analyze", &["verify", &copy.display().to_string()], "systemd"),
        None => {
            crate::support::process::skip(
                "systemd-analyze is not installed: the unit's directives were checked, `verify` was not",
            );
            None
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(out) = out {
        assert!(out.status.success(), "systemd-analyze verify:\n{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ours: Vec<_> = stderr.lines().filter(|l| l.contains("tenderly-exporter.service")).collect();
        assert!(ours.is_empty(), "systemd-analyze warns about the unit:\n{}", ours.join("\n"));
    }
}
