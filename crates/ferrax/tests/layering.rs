//! The layout's promises, checked on the source: each folder of `crates/ferrax/src` uses only
//! the layers below it, and no two files import each other in a cycle, except inside
//! `trace/` (a traced tensor names its trace and binding makes tensors), between a program,
//! its primitives and their parameters (control flow holds sub-programs), and inside one pass's folder (its
//! control-flow rules run the pass on sub-programs): those knots are intrinsic. A new upward
//! import, or a cycle between passes, fails here with the files and the names that make it.
//!
//! Imports are read from the text: every `crate::path::Name` and `crate::path::{A, B}` is
//! resolved to the files under `path` that define `Name`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; a file may use its own layer and the ones before it.
const LAYERS: &[&str] = &[
    "ir/",
    "backend/reference/",
    "trace/",
    "surface/",
    "passes/",
    "backend/cpu/",
    "api/",
];

fn layer_of(file: &str) -> Option<usize> {
    LAYERS.iter().position(|l| file.starts_with(l))
}

fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p: PathBuf = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Names defined at any level of a file: functions, types, traits, constants, macros.
fn definitions(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in code(text).lines() {
        let mut l = line.trim_start();
        for vis in ["pub(crate) ", "pub(super) ", "pub "] {
            l = l.strip_prefix(vis).unwrap_or(l);
        }
        for kw in [
            "fn ",
            "struct ",
            "enum ",
            "trait ",
            "type ",
            "const ",
            "static ",
            "macro_rules! ",
        ] {
            if let Some(rest) = l.strip_prefix(kw) {
                let name = ident_at(rest);
                if !name.is_empty() {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

/// `(module path, name)` for every `crate::...` reference in a file.
fn references(text: &str) -> Vec<(String, String)> {
    let code = code(text);
    let mut out = vec![];
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        // module segments: lowercase identifiers followed by `::`
        let mut path = vec![];
        loop {
            let seg = ident_at(rest);
            let after = &rest[seg.len()..];
            if !seg.is_empty() && after.starts_with("::") && seg.chars().all(|c| !c.is_uppercase())
            {
                path.push(seg.to_string());
                rest = &after[2..];
            } else {
                break;
            }
        }
        let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|n| n.trim().split(" as ").next().unwrap().trim())
                .map(|n| n.rsplit("::").next().unwrap().to_string())
                .filter(|n| !n.is_empty() && n != "self" && n != "*")
                .collect()
        } else {
            let n = ident_at(rest);
            if n.is_empty() {
                vec![]
            } else {
                vec![n.to_string()]
            }
        };
        // a path whose last segment is itself the name used (`crate::trace::fail(..)`)
        let prefix = path.join("/");
        out.extend(names.into_iter().map(|n| (prefix.clone(), n)));
    }
    out
}

/// The file-level import graph: file -> files it uses, with the names that make each edge.
fn graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let files = sources();
    let defs: BTreeMap<&String, BTreeSet<String>> =
        files.iter().map(|(f, t)| (f, definitions(t))).collect();
    let mut g: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (f, text) in &files {
        let edges = g.entry(f.clone()).or_default();
        for (prefix, name) in references(text) {
            for (other, names) in &defs {
                let under = prefix.is_empty()
                    || other.starts_with(&format!("{prefix}/"))
                    || other.as_str() == format!("{prefix}.rs");
                if *other != f && under && names.contains(&name) {
                    edges
                        .entry((*other).clone())
                        .or_default()
                        .insert(name.clone());
                }
            }
        }
    }
    g
}

#[test]
fn every_file_uses_only_its_own_layer_and_the_layers_below() {
    let g = graph();
    let mut wrong = vec![];
    for (f, edges) in &g {
        let Some(mine) = layer_of(f) else { continue };
        for (to, names) in edges {
            if let Some(theirs) = layer_of(to) {
                if theirs > mine {
                    wrong.push(format!("{f} uses {to} ({names:?})"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "upward imports:\n{}", wrong.join("\n"));
    // and every source file belongs to a layer, except the crate root and folder facades
    // that only declare and re-export modules
    let files = sources();
    let unplaced: Vec<_> = g
        .keys()
        .filter(|f| layer_of(f).is_none() && f.as_str() != "lib.rs")
        .filter(|f| !definitions(&files[*f]).is_empty())
        .collect();
    assert!(
        unplaced.is_empty(),
        "files outside the layers: {unplaced:?}"
    );
}

#[test]
fn no_import_cycle_outside_the_tracing_core() {
    let g = graph();
    // Tarjan's strongly connected components
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        sccs: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g[v].keys() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = vec![];
            loop {
                let w = s.stack.pop().unwrap();
                s.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.sccs.push(comp);
            }
        }
    }
    let mut s = State {
        g: &g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        sccs: vec![],
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    // The knots the design has: a traced tensor names its trace and binding makes tensors
    // (`trace/`); a program's equations hold primitives and control-flow primitives hold
    // programs (`ir/primitive.rs` and `ir/program.rs`, with `ir/param.rs`, whose parameters
    // include sub-programs); a pass's control-flow rules run the
    // pass on sub-programs (inside one pass's folder, `passes/<pass>/`).
    let one_pass = |c: &Vec<&str>| {
        let folder = |f: &str| {
            f.strip_prefix("passes/")
                .and_then(|r| r.split_once('/'))
                .map(|(d, _)| d.to_string())
        };
        let first = folder(c[0]);
        first.is_some() && c.iter().all(|f| folder(f) == first)
    };
    let allowed = |c: &Vec<&str>| {
        c.iter().all(|f| f.starts_with("trace/"))
            || c.iter()
                .all(|f| matches!(*f, "ir/primitive.rs" | "ir/program.rs" | "ir/param.rs"))
            || one_pass(c)
    };
    let bad: Vec<_> = s.sccs.iter().filter(|c| !allowed(c)).collect();
    assert!(bad.is_empty(), "import cycles: {bad:?}");
    // the check sees real edges: the tracing core's knot is found
    assert!(
        s.sccs
            .iter()
            .any(|c| c.contains(&"trace/stack.rs") && c.contains(&"trace/tensor.rs")),
        "the known tensor <-> trace knot was not found: {:?}",
        s.sccs
    );
}

#[test]
fn no_source_file_is_longer_than_about_six_hundred_lines() {
    let long: Vec<_> = sources()
        .into_iter()
        .map(|(f, t)| (f, t.lines().count()))
        .filter(|(_, n)| *n > 620)
        .collect();
    assert!(long.is_empty(), "files over ~600 lines: {long:?}");
}
