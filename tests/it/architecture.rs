//! The shape of the crate, enforced: dependencies point one way (STYLE.md,
//! "Layers"). Generic collectors know nothing of Tenderly, the config file,
//! the CLI, HTTP or discovery; the Tenderly layer knows nothing of the config
//! file or the orchestration above it; `cli.rs` imports nothing from the crate;
//! and the module graph has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level module a source file belongs to (`collectors/redis` and
/// `collectors/mongodb` count as modules of their own).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/").with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [first, second, ..] if first == "collectors" => format!("collectors/{second}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

/// Every `crate::` path a file names, as the modules it reaches (comments
/// ignored; `crate::{a, b::c}` groups expanded).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let paths: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
        } else {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            vec![rest[..end].to_string()]
        };
        for path in paths {
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            match segments.as_slice() {
                ["collectors", sub, ..] if *sub == "redis" || *sub == "mongodb" => {
                    out.insert(format!("collectors/{sub}"));
                }
                [first, ..] => {
                    out.insert((*first).to_string());
                }
                [] => {}
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// module -> the crate modules it imports (itself excluded).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).expect("read source");
        let refs = crate_refs(&text);
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    graph
}

/// What each layer may import; a module not listed may import anything below
/// the edges (checked for cycles only).
const RULES: &[(&str, &[&str])] = &[
    ("cli", &[]),
    ("metrics", &[]),
    ("secret", &[]),
    ("duration", &[]),
    ("trust", &[]),
    ("build_info", &[]),
    ("logging", &[]),
    ("process", &["metrics"]),
    ("collectors/redis", &["metrics", "secret", "trust", "duration"]),
    ("collectors/mongodb", &["metrics", "secret", "trust", "duration"]),
    ("tenderly", &["collectors/redis", "collectors/mongodb", "metrics", "secret", "trust", "duration"]),
    (
        "config",
        &[
            "cli",
            "collectors/redis",
            "collectors/mongodb",
            "tenderly",
            "metrics",
            "secret",
            "trust",
            "duration",
            "logging",
        ],
    ),
];

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let graph = graph();
    let mut problems = Vec::new();
    for (module, allowed) in RULES {
        let Some(imports) = graph.get(*module) else {
            problems.push(format!("module {module} not found under src/"));
            continue;
        };
        for import in imports {
            if !allowed.contains(&import.as_str()) {
                problems.push(format!("{module} imports crate::{import}, which is above it or beside it"));
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    // Kahn's algorithm: whatever cannot be ordered sits on a cycle.
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = graph
        .iter()
        .map(|(m, deps)| (m.as_str(), deps.iter().map(String::as_str).filter(|d| graph.contains_key(*d)).collect()))
        .collect();
    loop {
        let ready: Vec<&str> = remaining.iter().filter(|(_, deps)| deps.is_empty()).map(|(m, _)| *m).collect();
        if ready.is_empty() {
            break;
        }
        for m in &ready {
            remaining.remove(m);
        }
        for deps in remaining.values_mut() {
            for m in &ready {
                deps.remove(m);
            }
        }
    }
    assert!(remaining.is_empty(), "modules on an import cycle: {remaining:?}");
}

#[test]
fn the_scanner_sees_grouped_and_nested_imports() {
    let refs = crate_refs(
        "use crate::{config::X, metrics};\nfn f() { crate::collectors::redis::client::open(); }\n// crate::server\n",
    );
    let want: BTreeSet<String> = ["collectors/redis", "config", "metrics"].iter().map(|s| s.to_string()).collect();
    assert_eq!(refs, want);
}
