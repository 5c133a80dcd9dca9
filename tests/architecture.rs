//! The module layering docs/DESIGN.md §4 promises, checked from the source:
//! among the children of every module (the crate root, `gpu`, `train`, ...)
//! imports form no cycle, and the backend-neutral side — `train`, `data`,
//! `cpu`, `model`, `optim`, `accum`, `rng` — imports nothing from `gpu`.
//! The CLI's command modules are checked the same way.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of a source file: src/gpu/run/step.rs -> ["gpu", "run", "step"].
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn ident(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len())
}

/// Every module path a file names through `crate::` or `super::` (including
/// `use crate::{a, b::c}` groups), resolved to absolute paths. Comments are
/// skipped.
fn references(module: &[String], is_mod_file: bool, source: &str) -> Vec<Vec<String>> {
    let code: String = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    for (anchor, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            // `super` of a mod.rs is its parent; of a plain file, the directory's module
            let mut m = module.to_vec();
            if !is_mod_file || !m.is_empty() {
                m.pop();
            }
            m
        }),
    ] {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(anchor) {
            let before = rest[..i].chars().last();
            rest = &rest[i + anchor.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue; // part of a longer path, such as `gradlab::crate_x::`
            }
            let mut paths = vec![(base.clone(), rest)];
            while let Some((mut path, mut s)) = paths.pop() {
                loop {
                    if let Some(group) = s.strip_prefix('{') {
                        let end = group.find('}').unwrap_or(group.len());
                        for item in group[..end].split(',') {
                            let item = item.trim();
                            if !item.is_empty() {
                                paths.push((path.clone(), item));
                            }
                        }
                        break;
                    }
                    let n = ident(s);
                    if n == 0 {
                        break;
                    }
                    path.push(s[..n].to_string());
                    s = &s[n..];
                    match s.strip_prefix("::") {
                        Some(next) => s = next,
                        None => break,
                    }
                }
                out.push(path);
            }
        }
    }
    out
}

/// Import edges between sibling modules, keyed by their common parent.
fn sibling_edges(root: &Path) -> BTreeMap<Vec<String>, BTreeSet<(String, String)>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(root, f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
    for file in &files {
        let from = module_of(root, file);
        let is_mod_file = matches!(file.file_stem().and_then(|s| s.to_str()), Some("mod" | "lib" | "main"));
        let source = std::fs::read_to_string(file).unwrap();
        for path in references(&from, is_mod_file, &source) {
            // the longest prefix that is a module of this crate
            let to =
                (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap_or_default();
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // a module using its own ancestor's items, or itself, is not an edge between siblings
            if common == to.len() || common == from.len() {
                continue;
            }
            edges.entry(from[..common].to_vec()).or_default().insert((from[common].clone(), to[common].clone()));
        }
    }
    edges
}

/// A cycle in `edges`, if there is one, as the list of modules around it.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for (_, to) in edges.iter().filter(|(from, _)| from == node) {
            if let Some(c) = visit(to, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    let nodes: BTreeSet<&String> = edges.iter().map(|(f, _)| f).collect();
    nodes.into_iter().find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

fn assert_layered(root: &Path) {
    let edges = sibling_edges(root);
    for (parent, es) in &edges {
        let name = if parent.is_empty() { "the crate root".to_string() } else { parent.join("::") };
        eprintln!("{name}: {}", es.iter().map(|(a, b)| format!("{a} -> {b}")).collect::<Vec<_>>().join(", "));
        if let Some(cycle) = find_cycle(es) {
            panic!("import cycle among the children of {name} ({}): {}", root.display(), cycle.join(" -> "));
        }
    }
}

#[test]
fn modules_import_in_one_direction() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_layered(&root.join("src"));
    assert_layered(&root.join("src/bin/gradlab"));
}

#[test]
fn the_backend_neutral_side_never_imports_the_gpu() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let top = &sibling_edges(&root)[&Vec::new()];
    for neutral in ["train", "data", "cpu", "model", "optim", "accum", "rng"] {
        let reaches: Vec<&String> = top.iter().filter(|(f, _)| f == neutral).map(|(_, t)| t).collect();
        for forbidden in ["gpu", "lab", "checks", "web", "bench"] {
            assert!(!reaches.contains(&&forbidden.to_string()), "{neutral} imports {forbidden}: {reaches:?}");
        }
    }
    let train: Vec<&String> = top.iter().filter(|(f, _)| f == "train").map(|(_, t)| t).collect();
    for t in &train {
        assert!(["model", "optim", "rng"].contains(&t.as_str()), "the core (train) imports {t}");
    }
}

#[test]
fn the_checker_sees_a_cycle_when_there_is_one() {
    let edges: BTreeSet<(String, String)> =
        [("a", "b"), ("b", "c"), ("c", "a")].iter().map(|(x, y)| (x.to_string(), y.to_string())).collect();
    assert_eq!(find_cycle(&edges).unwrap().len(), 4);
    let refs =
        references(&["gpu".into(), "run".into()], true, "use super::{context::X, program};\nuse crate::train::{a, b};");
    assert!(refs.contains(&vec!["gpu".to_string(), "context".to_string(), "X".to_string()]), "{refs:?}");
    assert!(refs.contains(&vec!["train".to_string(), "a".to_string()]), "{refs:?}");
}
