//! Keeps the map honest: every path `ARCHITECTURE.md` names exists, and the modules of
//! `charter-server` import each other without a cycle (services never reach back into the
//! HTTP edge).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Backticked spans in `text` that look like repository paths (`crates/…`, `docs/…`, …).
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.contains(' ')
                && s.contains('/')
                && [
                    "crates/",
                    "docs/",
                    "scripts/",
                    "tests/",
                    "bench/",
                    "examples/",
                    ".ci/",
                ]
                .iter()
                .any(|p| s.starts_with(p))
        })
        .map(|s| s.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn every_path_the_architecture_map_names_exists() {
    let root = repo_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    assert!(
        map.contains("## Entry points"),
        "ARCHITECTURE.md has an Entry points section"
    );
    let paths = named_paths(&map);
    assert!(paths.len() >= 10, "the map names paths: {paths:?}");
    let missing: Vec<_> = paths.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names missing paths: {missing:?}"
    );
}

#[test]
fn the_path_check_can_fail() {
    let found = named_paths("see `crates/charter-server/src/nowhere.rs` and `a b/c`");
    assert_eq!(found, ["crates/charter-server/src/nowhere.rs"]);
    assert!(!repo_root().join(&found[0]).exists());
}

/// `crate::x` imports of each module of `charter-server` (tests excluded), with `services`
/// and `routes` counted as one module each.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let module = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_owned();
            if module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let deps: &mut BTreeSet<String> = graph.entry(module.clone()).or_default();
            for part in code.split("crate::").skip(1) {
                let dep: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !dep.is_empty() && dep != module {
                    deps.insert(dep);
                }
            }
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn server_modules_have_no_import_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("services") && graph.contains_key("repo"));
    assert_eq!(find_cycle(&graph), None, "module import cycle");
    // Services are the shared workflows: they never reach back into the HTTP edge.
    for edge in ["routes", "auth", "state", "oauth", "extract"] {
        assert!(
            !graph["services"].contains(edge),
            "services import crate::{edge}"
        );
    }
}

#[test]
fn the_cycle_check_can_fail() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}
