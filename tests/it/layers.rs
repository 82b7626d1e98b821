//! The layers stay as the README draws them (issue #15). From the source text alone:
//! - `src/auth/` and `src/db/` never name `axum`, `crate::api` or `AppState`;
//! - every reference between top-level modules points down the layer order;
//! - the module graph (one node per file, an edge for every `crate::`/`super::` path that
//!   names another module) has no cycle;
//! - every source file stays under 400 lines, not counting the unit tests at its end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, highest first. A module may only use modules of a lower
/// layer (and itself); modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["startup"],
    &["api"],
    // gotrue: the import/export commands, used by main only; above auth (password-hash and
    // refresh-token rules), SQL in db::gotrue.
    &["cleanup", "rls", "telemetry", "gotrue"],
    &["auth"],
    // hooks: the transports of the auth hooks (SQL in db::hooks), called by auth.
    &["hooks"],
    &["db", "mail", "sms", "providers", "ratelimit", "devdb"],
    &["config", "error"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("top-level module `{module}` is in no layer: add it to LAYERS and the README"))
}

/// A source file and the module path it defines (`src/auth/oauth/link.rs` → `auth::oauth::link`).
struct Source {
    module: Vec<String>,
    text: String,
}

fn sources(dir: &Path, out: &mut Vec<Source>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests sit at the end of a file, and their `super::` is the file's module.
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            out.push(Source {
                module: module_path(&path),
                text: without_comments(code),
            });
        }
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_path(path: &Path) -> Vec<String> {
    let relative = path.strip_prefix(src_dir()).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The text without `//` comments (doc comments name modules freely).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // Not inside a string on the same line (good enough for this code base: no `//`
            // in string literals before a path).
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path the text names through `crate::` (or `latchkey::` in the binary) or `super::`,
/// with `use` groups expanded, resolved to absolute segments.
fn named_paths(source: &Source) -> Vec<Vec<String>> {
    let roots: &[&str] = if source.module == ["main"] {
        &["latchkey", "crate"]
    } else {
        &["crate"]
    };
    let mut found = Vec::new();
    let text = &source.text;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let is_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        let root = roots
            .iter()
            .chain(["super"].iter())
            .find(|r| is_start && text.get(i..).is_some_and(|rest| rest.starts_with(&format!("{r}::"))));
        let Some(root) = root else {
            i += 1;
            continue;
        };
        let (tree, end) = path_tree(text, i + root.len() + 2);
        let base: Vec<String> = if *root == "super" {
            let mut base = source.module.clone();
            base.pop();
            base
        } else {
            Vec::new()
        };
        for path in expand(&tree) {
            let mut absolute = base.clone();
            for segment in path {
                if segment == "super" {
                    absolute.pop();
                } else {
                    absolute.push(segment);
                }
            }
            found.push(absolute);
        }
        i = end;
    }
    found
}

/// A `use` tree: `a::b::{c, d::{e, self}}` as text, up to where it ends.
fn path_tree(text: &str, start: usize) -> (String, usize) {
    let mut depth = 0;
    let mut end = start;
    for (offset, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 && !(c.is_ascii_alphanumeric() || c == '_' || c == ':') => {
                end = start + offset;
                break;
            }
            _ => {}
        }
        end = start + offset + c.len_utf8();
    }
    (text[start..end].to_owned(), end)
}

/// `a::{b, c::{d, self}}` → `[a, b]`, `[a, c, d]`, `[a, c]`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect()];
    };
    let prefix: Vec<String> = tree[..open]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[from..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|part| {
            if part == "self" {
                vec![prefix.clone()]
            } else {
                expand(part)
                    .into_iter()
                    .map(|rest| [prefix.clone(), rest].concat())
                    .collect()
            }
        })
        .collect()
}

/// The module graph: each file's module → the modules its paths name (the longest prefix of
/// each path that is a module).
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut all = Vec::new();
    sources(&src_dir(), &mut all);
    let modules: BTreeSet<Vec<String>> = all.iter().map(|s| s.module.clone()).collect();
    let mut graph = BTreeMap::new();
    for source in &all {
        let targets: BTreeSet<Vec<String>> = named_paths(source)
            .into_iter()
            .filter_map(|path| {
                (1..=path.len())
                    .rev()
                    .map(|n| path[..n].to_vec())
                    .find(|p| modules.contains(p))
            })
            .filter(|target| *target != source.module)
            .collect();
        graph.insert(source.module.clone(), targets);
    }
    graph
}

#[test]
fn auth_and_db_know_nothing_of_http_or_the_application_state() {
    let mut all = Vec::new();
    sources(&src_dir(), &mut all);
    let mut leaks = Vec::new();
    for source in all
        .iter()
        .filter(|s| matches!(s.module.first().map(String::as_str), Some("auth" | "db")))
    {
        for needle in ["axum", "crate::api", "AppState", "crate::state", "tower"] {
            if source.text.contains(needle) {
                leaks.push(format!("{} names `{needle}`", source.module.join("::")));
            }
        }
    }
    assert!(leaks.is_empty(), "layers leak:\n{}", leaks.join("\n"));
}

#[test]
fn top_level_modules_only_point_down() {
    let mut upward = Vec::new();
    for (from, targets) in graph() {
        let (Some(from_top), true) = (from.first(), !from.is_empty()) else {
            continue;
        };
        for target in targets {
            let Some(to_top) = target.first() else { continue };
            if from_top != to_top && layer_of(from_top) >= layer_of(to_top) {
                upward.push(format!("{} -> {}", from.join("::"), target.join("::")));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "references that do not point down the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    // Depth-first search with colours; report the first cycle found.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&Vec<String>, Colour> = graph.keys().map(|k| (k, Colour::White)).collect();
    fn visit<'g>(
        node: &'g Vec<String>,
        graph: &'g BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        colour: &mut BTreeMap<&'g Vec<String>, Colour>,
        stack: &mut Vec<&'g Vec<String>>,
    ) -> Option<Vec<String>> {
        colour.insert(node, Colour::Grey);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match colour.get(next).copied().unwrap_or(Colour::Black) {
                Colour::Grey => {
                    let at = stack.iter().position(|n| *n == next).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[at..].iter().map(|m| m.join("::")).collect();
                    cycle.push(next.join("::"));
                    return Some(cycle);
                }
                Colour::White => {
                    if let Some(cycle) = visit(next, graph, colour, stack) {
                        return Some(cycle);
                    }
                }
                Colour::Black => {}
            }
        }
        stack.pop();
        colour.insert(node, Colour::Black);
        None
    }
    for node in graph.keys() {
        if colour[node] == Colour::White {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, &graph, &mut colour, &mut stack) {
                panic!("module cycle: {}", cycle.join(" -> "));
            }
        }
    }
}

#[test]
fn source_files_stay_under_400_lines() {
    fn walk(dir: &Path, long: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, long);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
                let lines = code.lines().count();
                if lines >= 400 {
                    long.push(format!("{} has {lines} lines", path.display()));
                }
            }
        }
    }
    let mut long = Vec::new();
    walk(&src_dir(), &mut long);
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

#[test]
fn the_path_parser_reads_use_groups_and_super() {
    let source = Source {
        module: vec!["auth".into(), "oauth_link".into()],
        text: "use crate::db::{identities, users::{self, UserRow}};\nuse super::ProviderUser;\nlet x = crate::config::Config::x();".into(),
    };
    let paths = named_paths(&source);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        [
            "db::identities",
            "db::users",
            "db::users::UserRow",
            "auth::ProviderUser",
            "config::Config::x"
        ]
    );
}
#[test]
#[ignore]
fn print_graph() {
    for (from, targets) in graph() {
        let t: Vec<String> = targets.iter().map(|t| t.join("::")).collect();
        println!("{} -> {}", from.join("::"), t.join(", "));
    }
}
