//! The crate's shape, read from its source: every import points down the crate map in
//! `src/lib.rs`. No import circle between any two files of `src/`; no sink or source imports a
//! pipeline stage; `format` imports no layout.
//!
//! An import is a `use crate::..`/`use super::..` item, a `crate::..` or `super::..` path in
//! code, or a `mod.rs` naming one of its own submodules (`reader::run`). Comments, strings and
//! `mod.rs`'s `mod x;` lines are not imports. Inside a file's inline `#[cfg(test)]` module,
//! `super` is the file's own module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module's name as a path from the crate root (`["pipeline", "writer"]`; the root is `[]`).
type Name = Vec<String>;

/// Every module under `src/` (the binary's `main.rs` aside) with its source.
fn modules(root: &Path) -> BTreeMap<Name, (bool, String)> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("main.rs") && dir == root {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut name: Name = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let is_mod = matches!(name.last().map(String::as_str), Some("mod" | "lib"));
            if is_mod {
                name.pop();
            }
            found.insert(name, (is_mod, std::fs::read_to_string(&path).unwrap()));
        }
    }
    found
}

/// `src` with comments, string and char literals blanked out (lifetimes kept).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if src[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if src[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(rest) {
            let close = format!("\"{}", "#".repeat(hashes));
            let body = &rest[2 + hashes..];
            i += 2 + hashes + body.find(&close).map_or(body.len(), |e| e + close.len());
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // '\n', '\'', '\u{..}': past the escaped character, to the closing quote.
            i += 3 + rest.get(3..).and_then(|r| r.find('\'')).map_or(0, |e| e + 1);
            out.push_str("' '");
        } else if b[i] == b'\'' && rest.chars().nth(2) == Some('\'') {
            i += 1 + rest[1..].chars().next().unwrap().len_utf8() + 1;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `r"`, `r#"`, `br##"`...: how many `#` the raw string at the start of `s` uses.
fn raw_string_start(s: &str) -> Option<usize> {
    let s = s.strip_prefix('b').unwrap_or(s);
    let s = s.strip_prefix('r')?;
    let hashes = s.len() - s.trim_start_matches('#').len();
    s[hashes..].starts_with('"').then_some(hashes)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths a `use` tree names: `{a::b, c::{d, e}}` gives `a::b`, `c::d`, `c::e`.
fn expand(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], prefix, out);
        return;
    }
    let (head, rest) = match tree.split_once("::") {
        Some((head, rest)) => (head.trim(), Some(rest)),
        None => (tree.split_whitespace().next().unwrap_or(""), None),
    };
    if head.is_empty() || !head.chars().all(is_ident) {
        return;
    }
    let mut path = prefix.to_vec();
    path.push(head.to_owned());
    match rest {
        Some(rest) => expand(rest, &path, out),
        None => out.push(path),
    }
}

/// The longest prefix of `path` that names a module.
fn resolve<T>(path: &[String], modules: &BTreeMap<Name, T>) -> Option<Name> {
    (0..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|p| modules.contains_key(p))
}

/// Where `crate::`, `self::` and `super::` lead from module `name`.
fn anchor(name: &Name, in_test: bool, keyword: &str) -> Name {
    match keyword {
        "crate" => Vec::new(),
        "self" => name.clone(),
        // `super` from a file (or its mod.rs) is its parent; from its inline test module, itself.
        _ if in_test => name.clone(),
        _ => name[..name.len().saturating_sub(1)].to_vec(),
    }
}

/// Every module each module imports (itself and the crate root left out).
fn imports(modules: &BTreeMap<Name, (bool, String)>) -> BTreeMap<Name, BTreeSet<Name>> {
    let mut graph = BTreeMap::new();
    for (name, (is_mod, source)) in modules {
        let code = code_only(source);
        let test_at = code.find("#[cfg(test)]").unwrap_or(code.len());
        let mut targets = BTreeSet::new();
        let mut add = |path: Vec<String>| {
            if let Some(target) = resolve(&path, modules) {
                targets.insert(target);
            }
        };
        // `use` items, with their trees.
        let mut at = 0;
        while let Some(found) = code[at..].find("use ") {
            let start = at + found;
            at = start + 4;
            if code[..start].chars().next_back().is_some_and(is_ident) {
                continue;
            }
            let Some(end) = code[at..].find(';') else { break };
            let tree = code[at..at + end].trim();
            let Some((keyword, mut rest)) = tree.split_once("::") else {
                continue;
            };
            if !matches!(keyword, "crate" | "super" | "self") {
                continue;
            }
            let mut base = anchor(name, start > test_at, keyword);
            while let Some(after) = rest.trim_start().strip_prefix("super::") {
                base.pop();
                rest = after;
            }
            let mut paths = Vec::new();
            expand(rest, &base, &mut paths);
            paths.into_iter().for_each(&mut add);
        }
        // `crate::a::b` and `super::a` in code, and a mod.rs naming its submodules.
        let children: Vec<&Name> = modules
            .keys()
            .filter(|m| *is_mod && m.len() == name.len() + 1 && m.starts_with(name))
            .collect();
        for (i, _) in code.match_indices("::") {
            let before = &code[..i];
            let word_start = before.rfind(|c: char| !is_ident(c)).map_or(0, |p| p + 1);
            let word = &before[word_start..];
            if word.is_empty() || before[..word_start].ends_with("::") {
                continue;
            }
            let tail: Vec<String> = code[i..]
                .split("::")
                .skip(1)
                .map_while(|seg| {
                    let ident: String = seg.chars().take_while(|&c| is_ident(c)).collect();
                    (!ident.is_empty()).then_some(ident)
                })
                .collect();
            let mut path = match word {
                "crate" | "super" => anchor(name, i > test_at, word),
                _ if children.iter().any(|c| c.last().is_some_and(|l| l == word)) => {
                    let mut child = name.clone();
                    child.push(word.to_owned());
                    child
                }
                _ => continue,
            };
            path.extend(tail);
            add(path);
        }
        targets.remove(name);
        targets.remove(&Vec::new());
        graph.insert(name.clone(), targets);
    }
    graph
}

/// One import circle in `graph`, as the modules along it, if there is any.
fn circle(graph: &BTreeMap<Name, BTreeSet<Name>>) -> Option<Vec<Name>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &Name,
        graph: &BTreeMap<Name, BTreeSet<Name>>,
        marks: &mut BTreeMap<Name, Mark>,
        path: &mut Vec<Name>,
    ) -> Option<Vec<Name>> {
        marks.insert(node.clone(), Mark::Open);
        path.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = path.iter().position(|n| n == next).unwrap();
                    let mut circle = path[from..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Mark::New => {
                    if let Some(circle) = visit(next, graph, marks, path) {
                        return Some(circle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(circle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(circle);
        }
    }
    None
}

fn show(name: &Name) -> String {
    if name.is_empty() {
        "lib".to_owned()
    } else {
        name.join("::")
    }
}

fn crate_graph() -> BTreeMap<Name, BTreeSet<Name>> {
    imports(&modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")))
}

fn named(path: &str) -> Name {
    path.split("::").map(str::to_owned).collect()
}

#[test]
fn no_import_circle_anywhere_in_src() {
    let graph = crate_graph();
    if let Some(circle) = circle(&graph) {
        let shown: Vec<String> = circle.iter().map(show).collect();
        panic!("import circle: {}", shown.join(" -> "));
    }
}

#[test]
fn no_sink_or_source_imports_a_stage_and_format_imports_no_layout() {
    let graph = crate_graph();
    let mut upward = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            let (f, t) = (from.first().map(String::as_str), to.first().map(String::as_str));
            let bad = matches!((f, t), (Some("sink" | "source"), Some("pipeline")))
                || matches!((f, t), (Some("format"), Some("layout")));
            if bad {
                upward.push(format!("{} -> {}", show(from), show(to)));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up the crate map: {upward:?}"
    );
}

/// The reading above is only worth its verdict if it sees imports: these are known ones, of each
/// kind it reads.
#[test]
fn the_import_reading_sees_each_kind_of_import() {
    let graph = crate_graph();
    let has = |from: &str, to: &str| graph[&named(from)].contains(&named(to));
    assert!(has("pipeline::writer", "sink"), "use crate::sink::{{..}}");
    assert!(
        has("pipeline::writer", "sink::file"),
        "use crate::sink::file::FileSink"
    );
    assert!(has("source::file", "source"), "use super::{{Feed, ..}}");
    assert!(
        has("source::consumer", "source::lease"),
        "use super::lease::Lease"
    );
    assert!(has("source::lease", "os"), "crate::os::host_name() in code");
    assert!(has("layout", "layout::json"), "json::parse(..) in layout/mod.rs");
    assert!(
        !has("layout::json", "layout"),
        "a test module's super:: is its own file"
    );
    assert!(graph.values().map(BTreeSet::len).sum::<usize>() > 100);
}

#[test]
fn a_circle_is_found_and_shown_along_its_imports() {
    let source = |text: &str| (false, text.to_owned());
    let modules: BTreeMap<Name, (bool, String)> = [
        (named("a"), source("use crate::b::{x, y::Z};\n// use crate::d;")),
        (
            named("b::y"),
            source("fn f() { let s = \"crate::d::x\"; crate::c::g(b'\"'); }"),
        ),
        (named("b"), (true, "pub mod y;".to_owned())),
        (named("c"), source("use super::a::Thing;")),
        (named("d"), source("")),
    ]
    .into_iter()
    .collect();
    let graph = imports(&modules);
    assert_eq!(graph[&named("a")], BTreeSet::from([named("b"), named("b::y")]));
    assert_eq!(graph[&named("b::y")], BTreeSet::from([named("c")]));
    assert!(graph[&named("b")].is_empty(), "a mod line is not an import");
    let found = circle(&graph).expect("a -> b::y -> c -> a");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4, "{found:?}");
}
