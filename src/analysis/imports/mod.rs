//! Import graph of the repository: which tracked file imports which other tracked file.
//!
//! This module owns what the languages share: the graph ([`ImportGraph`]), which files it reads
//! ([`wants`]), the index of the tracked files that resolution consults (each language builds its
//! own part), the path helpers, and [`build`], which parses in parallel (rayon) and keeps only
//! edges between tracked files. Each language's module owns its resolution and the manifests it
//! reads (its doc comment says exactly what resolves):
//! - `python`: `import`, `from … import`, relative imports, source roots (`pyproject.toml`,
//!   `setup.py`, `setup.cfg` folders), pytest's basedirs.
//! - `rust`: `mod`, `use` and inline paths through crate roots, re-exports and the workspace's
//!   crates; reads `Cargo.toml` with the `toml` crate.
//! - `js`: JavaScript/TypeScript `import`/`export … from`/`import()`/`require()`, as the
//!   TypeScript compiler resolves them; reads `package.json` (serde_json) and
//!   `tsconfig`/`jsconfig` files (JSON with comments and trailing commas, `jsonc-parser`).
//! - `go`: package imports within the importer's module, its local `replace`s and its go.work;
//!   reads `go.mod` and `go.work` itself (no maintained crate reads both).

mod go;
mod js;
mod python;
mod rust;

use rayon::prelude::*;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

/// file → files it imports (both tracked, `/`-separated).
#[derive(Debug, Default, Clone)]
pub struct ImportGraph {
    pub imports: BTreeMap<String, BTreeSet<String>>,
    /// The part of `imports` that only declares a child module (Rust's `mod x;` with nothing of
    /// `x` used): a dependency of its own, but nothing flows through it, or every module would
    /// reach every other through the crate root.
    pub declares: BTreeMap<String, BTreeSet<String>>,
}

impl ImportGraph {
    /// file → files that import it.
    pub fn importers(&self) -> HashMap<&str, Vec<&str>> {
        let mut rev: HashMap<&str, Vec<&str>> = HashMap::new();
        for (from, tos) in &self.imports {
            for to in tos {
                rev.entry(to.as_str()).or_default().push(from.as_str());
            }
        }
        rev
    }

    pub fn edge_count(&self) -> usize {
        self.imports.values().map(BTreeSet::len).sum()
    }
}

/// Manifests the resolvers read besides source files.
fn is_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "go.mod" | "go.work" | "Cargo.toml" | "package.json" | "pyproject.toml" | "setup.cfg" | "jsconfig.json"
    ) || (name.starts_with("tsconfig") && name.ends_with(".json"))
}

/// Which files' contents the graph needs, so callers read only those.
pub fn wants(path: &str) -> bool {
    lang(path).is_some() || is_manifest(path)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Rust,
    Js,
    Go,
}

fn lang(path: &str) -> Option<Lang> {
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "py" => Lang::Python,
        "rs" => Lang::Rust,
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" | "mts" | "cts" => Lang::Js,
        "go" => Lang::Go,
        _ => return None,
    })
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid import regex"))
}

fn dir_of(p: &str) -> &str {
    p.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn join(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = if dir.is_empty() { Vec::new() } else { dir.split('/').collect() };
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

fn in_dir(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else if rel.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

/// Everything resolution needs to know about the tracked files: the files themselves, and each
/// language's part, built by its module from the paths and the manifests.
struct Index<'a> {
    all: HashSet<&'a str>,
    py: python::PyIndex<'a>,
    go: go::GoIndex<'a>,
    rust: rust::RustIndex,
    js: js::JsIndex,
}

impl<'a> Index<'a> {
    fn file(&self, p: &str) -> Option<String> {
        self.all.contains(p).then(|| p.to_string())
    }
}

/// Build the graph from `(path, content)` of tracked files; `paths` lists every tracked file.
pub fn build(paths: &[String], contents: &[(String, Vec<u8>)]) -> ImportGraph {
    let all: HashSet<&str> = paths.iter().map(String::as_str).collect();
    let text_of = |p: &(String, Vec<u8>)| String::from_utf8_lossy(&p.1).into_owned();
    // In the order of `contents`: where two manifests claim one name, the later one wins.
    let manifests: Vec<(&str, String)> =
        contents.iter().filter(|(p, _)| is_manifest(p)).map(|c| (c.0.as_str(), text_of(c))).collect();
    let index = Index {
        py: python::index(paths),
        go: go::index(paths, &manifests),
        rust: rust::index(paths, contents, &manifests, &all),
        js: js::index(&manifests),
        all,
    };
    // (file, what it imports, the part of it that only declares child modules)
    let edges: Vec<(String, BTreeSet<String>, BTreeSet<String>)> = contents
        .par_iter()
        .filter_map(|(path, bytes)| {
            let lang = lang(path)?;
            let mut declared = BTreeSet::new();
            let deps: BTreeSet<String> = match lang {
                Lang::Rust => {
                    let used: BTreeSet<String> = rust::uses(path, &index).into_iter().collect();
                    declared = rust::mods(path, &index).into_iter().filter(|m| !used.contains(m)).collect();
                    used.into_iter().chain(declared.iter().cloned()).collect()
                }
                other => {
                    let text = std::str::from_utf8(bytes).ok()?;
                    match other {
                        Lang::Python => python::imports(path, text, &index),
                        Lang::Js => js::imports(path, text, &index),
                        _ => go::imports(path, text, &index),
                    }
                    .into_iter()
                    .collect()
                }
            };
            let deps: BTreeSet<String> = deps.into_iter().filter(|d| d != path).collect();
            declared.remove(path);
            (!deps.is_empty()).then(|| (path.clone(), deps, declared))
        })
        .collect();
    let mut imports = BTreeMap::new();
    let mut declares = BTreeMap::new();
    for (path, deps, declared) in edges {
        if !declared.is_empty() {
            declares.insert(path.clone(), declared);
        }
        imports.insert(path, deps);
    }
    ImportGraph { imports, declares }
}

/// The graph of a few files given inline, and what one of them imports, for the languages' tests.
#[cfg(test)]
mod testing {
    use super::{build, ImportGraph};

    pub(super) fn graph(files: &[(&str, &str)]) -> ImportGraph {
        let paths: Vec<String> = files.iter().map(|(p, _)| p.to_string()).collect();
        let contents: Vec<(String, Vec<u8>)> =
            files.iter().map(|(p, c)| (p.to_string(), c.as_bytes().to_vec())).collect();
        build(&paths, &contents)
    }

    pub(super) fn deps(g: &ImportGraph, f: &str) -> Vec<String> {
        g.imports.get(f).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}
