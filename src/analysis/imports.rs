//! Import graph of the repository: which tracked file imports which other tracked file.
//!
//! Languages: Python (`import`, `from … import`, relative imports), Rust (`mod x;`,
//! `use crate::…`, `use super::…`, `use self::…`), JavaScript/TypeScript (`import … from`,
//! `export … from`, `import()`, `require()`, relative specifiers), Go (imports of packages inside
//! the module named by `go.mod`). Parsing runs in parallel (rayon); only edges between tracked
//! files are kept.

use rayon::prelude::*;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

/// file → files it imports (both tracked, `/`-separated).
#[derive(Debug, Default, Clone)]
pub struct ImportGraph {
    pub imports: BTreeMap<String, BTreeSet<String>>,
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

/// Which files' contents the graph needs (by extension), so callers read only those.
pub fn wants(path: &str) -> bool {
    lang(path).is_some() || path == "go.mod" || path.ends_with("/go.mod")
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

/// Everything resolution needs to know about the tracked files.
struct Index<'a> {
    all: HashSet<&'a str>,
    /// Python dotted module name → file (`a.b` → `a/b.py` or `a/b/__init__.py`).
    py_modules: HashMap<String, &'a str>,
    /// directory → its Go files (non-test).
    go_dirs: HashMap<&'a str, Vec<&'a str>>,
    /// (module path, directory of go.mod) for each go.mod.
    go_mods: Vec<(String, String)>,
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

impl<'a> Index<'a> {
    fn new(paths: &'a [String], go_mod_texts: &[(String, String)]) -> Self {
        let all: HashSet<&str> = paths.iter().map(String::as_str).collect();
        let mut py_modules = HashMap::new();
        let mut go_dirs: HashMap<&str, Vec<&str>> = HashMap::new();
        for p in paths {
            if let Some(stem) = p.strip_suffix(".py") {
                let module = stem.strip_suffix("/__init__").unwrap_or(stem).replace('/', ".");
                // Source roots: the repository top, and a leading `src/` or `lib/` folder.
                for root in ["src.", "lib.", "python."] {
                    if let Some(rest) = module.strip_prefix(root) {
                        py_modules.entry(rest.to_string()).or_insert(p.as_str());
                    }
                }
                py_modules.insert(module, p.as_str());
            } else if p.ends_with(".go") && !p.ends_with("_test.go") {
                go_dirs.entry(dir_of(p)).or_default().push(p.as_str());
            }
        }
        let go_mods = go_mod_texts
            .iter()
            .filter_map(|(path, text)| {
                let module = text.lines().find_map(|l| l.trim().strip_prefix("module "))?.trim().trim_matches('"');
                Some((module.to_string(), dir_of(path).to_string()))
            })
            .collect();
        Index { all, py_modules, go_dirs, go_mods }
    }

    fn file(&self, p: &str) -> Option<String> {
        self.all.contains(p).then(|| p.to_string())
    }
}

/// Build the graph from `(path, content)` of tracked files; `paths` lists every tracked file.
pub fn build(paths: &[String], contents: &[(String, Vec<u8>)]) -> ImportGraph {
    let go_mods: Vec<(String, String)> = contents
        .iter()
        .filter(|(p, _)| p == "go.mod" || p.ends_with("/go.mod"))
        .map(|(p, c)| (p.clone(), String::from_utf8_lossy(c).into_owned()))
        .collect();
    let index = Index::new(paths, &go_mods);
    let imports: BTreeMap<String, BTreeSet<String>> = contents
        .par_iter()
        .filter_map(|(path, bytes)| {
            let lang = lang(path)?;
            let text = std::str::from_utf8(bytes).ok()?;
            let deps: BTreeSet<String> = match lang {
                Lang::Python => python(path, text, &index),
                Lang::Rust => rust(path, text, &index),
                Lang::Js => js(path, text, &index),
                Lang::Go => go(path, text, &index),
            }
            .into_iter()
            .filter(|d| d != path)
            .collect();
            (!deps.is_empty()).then(|| (path.clone(), deps))
        })
        .collect();
    ImportGraph { imports }
}

fn python(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static IMPORT: OnceLock<Regex> = OnceLock::new();
    static FROM: OnceLock<Regex> = OnceLock::new();
    let import = re(&IMPORT, r"(?m)^\s*import\s+([A-Za-z0-9_.,\s]+?)\s*(?:#.*)?$");
    let from = re(&FROM, r"(?m)^\s*from\s+(\.*)([A-Za-z0-9_.]*)\s+import\s+\(?\s*([A-Za-z0-9_,\s*]+)");
    let mut out = Vec::new();
    let lookup = |module: &str| idx.py_modules.get(module).map(|s| s.to_string());
    for c in import.captures_iter(text) {
        for item in c[1].split(',') {
            let name = item.split_whitespace().next().unwrap_or("");
            // `import a.b.c` imports a, a.b and a.b.c; the deepest existing one is the target.
            let parts: Vec<&str> = name.split('.').collect();
            if let Some(hit) = (1..=parts.len()).rev().find_map(|n| lookup(&parts[..n].join("."))) {
                out.push(hit);
            }
        }
    }
    // The file's own package, for relative imports.
    let pkg: Vec<&str> = dir_of(path).split('/').filter(|s| !s.is_empty()).collect();
    for c in from.captures_iter(text) {
        let dots = c[1].len();
        let module = &c[2];
        let base = if dots > 0 {
            if dots - 1 > pkg.len() {
                continue;
            }
            let mut b: Vec<&str> = pkg[..pkg.len() - (dots - 1)].to_vec();
            b.extend(module.split('.').filter(|s| !s.is_empty()));
            // Relative imports resolve by path, not through source roots.
            let dir = b.join("/");
            for name in c[3]
                .split(',')
                .map(|n| n.split_whitespace().next().unwrap_or(""))
                .filter(|n| !n.is_empty() && *n != "*")
            {
                let sub = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
                if let Some(f) = idx.file(&format!("{sub}.py")).or_else(|| idx.file(&format!("{sub}/__init__.py"))) {
                    out.push(f);
                }
            }
            if let Some(f) = idx.file(&format!("{dir}.py")).or_else(|| idx.file(&format!("{dir}/__init__.py"))) {
                out.push(f);
            }
            continue;
        } else {
            module.to_string()
        };
        let mut found_sub = false;
        for name in
            c[3].split(',').map(|n| n.split_whitespace().next().unwrap_or("")).filter(|n| !n.is_empty() && *n != "*")
        {
            if let Some(hit) = lookup(&format!("{base}.{name}")) {
                out.push(hit);
                found_sub = true;
            }
        }
        if !found_sub {
            if let Some(hit) = lookup(&base) {
                out.push(hit);
            }
        }
    }
    out
}

/// The `src` directory of the crate a Rust file belongs to (where lib.rs or main.rs lives).
fn rust_crate_root(path: &str, idx: &Index) -> Option<String> {
    let mut dir = dir_of(path);
    loop {
        for root in ["lib.rs", "main.rs"] {
            let candidate = if dir.is_empty() { root.to_string() } else { format!("{dir}/{root}") };
            if idx.all.contains(candidate.as_str()) {
                return Some(dir.to_string());
            }
        }
        if dir.is_empty() {
            return None;
        }
        dir = dir_of(dir);
    }
}

/// The directory in which `mod x;` declared in `path` looks for `x.rs`.
fn rust_mod_dir(path: &str) -> String {
    let dir = dir_of(path);
    let file = path.rsplit('/').next().unwrap_or(path);
    match file {
        "lib.rs" | "main.rs" | "mod.rs" => dir.to_string(),
        f => {
            let stem = f.trim_end_matches(".rs");
            if dir.is_empty() {
                stem.to_string()
            } else {
                format!("{dir}/{stem}")
            }
        }
    }
}

/// Resolve a module path (segments under `dir`) to the deepest existing file.
fn rust_resolve(dir: &str, segments: &[&str], idx: &Index) -> Option<String> {
    for n in (1..=segments.len()).rev() {
        let rel = segments[..n].join("/");
        let base = if dir.is_empty() { rel } else { format!("{dir}/{rel}") };
        if let Some(f) = idx.file(&format!("{base}.rs")).or_else(|| idx.file(&format!("{base}/mod.rs"))) {
            return Some(f);
        }
    }
    None
}

fn rust(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static MOD: OnceLock<Regex> = OnceLock::new();
    static USE: OnceLock<Regex> = OnceLock::new();
    let module = re(&MOD, r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z0-9_]+)\s*;");
    let use_ = re(&USE, r"(?ms)^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+((?:crate|super|self)::[^;]+);");
    let mut out = Vec::new();
    let mod_dir = rust_mod_dir(path);
    for c in module.captures_iter(text) {
        if let Some(f) = rust_resolve(&mod_dir, &[&c[1]], idx) {
            out.push(f);
        }
    }
    let crate_root = rust_crate_root(path, idx);
    for c in use_.captures_iter(text) {
        for full in expand_use_tree(&c[1]) {
            let segs: Vec<&str> = full.split("::").map(str::trim).filter(|s| !s.is_empty()).collect();
            let (dir, rest) = match segs.first() {
                Some(&"crate") => match &crate_root {
                    Some(r) => (r.clone(), &segs[1..]),
                    None => continue,
                },
                Some(&"self") => (mod_dir.clone(), &segs[1..]),
                Some(&"super") => {
                    // `super` is the parent of this module's directory.
                    let mut d = mod_dir.clone();
                    let mut rest = &segs[..];
                    while rest.first() == Some(&"super") {
                        d = dir_of(&d).to_string();
                        rest = &rest[1..];
                    }
                    (d, rest)
                }
                _ => continue,
            };
            if let Some(f) = rust_resolve(&dir, rest, idx) {
                out.push(f);
            }
        }
    }
    out
}

/// `crate::a::{b, c::d}` → [`crate::a::b`, `crate::a::c::d`] (nested braces included).
fn expand_use_tree(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = tree[open + 1..].strip_suffix('}').unwrap_or(&tree[open + 1..]);
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|s| !s.is_empty() && *s != "self")
        .flat_map(|item| expand_use_tree(&format!("{prefix}{item}")))
        .chain(std::iter::once(prefix.trim_end_matches("::").to_string()))
        .collect()
}

fn js(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static SPEC: OnceLock<Regex> = OnceLock::new();
    let spec = re(
        &SPEC,
        r#"(?:\bimport\s+(?:[^'";]*?\s+from\s+)?|\bexport\s+[^'";]*?\s+from\s+|\brequire\s*\(\s*|\bimport\s*\(\s*)['"]([^'"]+)['"]"#,
    );
    let dir = dir_of(path);
    let mut out = Vec::new();
    for c in spec.captures_iter(text) {
        let s = &c[1];
        if !(s.starts_with("./") || s.starts_with("../")) {
            continue;
        }
        let Some(base) = join(dir, s) else { continue };
        let stripped = base.rsplit_once('.').map(|(b, _)| b.to_string());
        let mut candidates = vec![base.clone()];
        for ext in ["ts", "tsx", "js", "jsx", "mjs", "cjs", "mts", "cts"] {
            candidates.push(format!("{base}.{ext}"));
        }
        for ext in ["ts", "tsx", "js", "jsx"] {
            candidates.push(format!("{base}/index.{ext}"));
        }
        // TypeScript ESM writes `./x.js` for the source `./x.ts`.
        if let Some(b) = stripped {
            for ext in ["ts", "tsx", "mts"] {
                candidates.push(format!("{b}.{ext}"));
            }
        }
        if let Some(f) = candidates.iter().find_map(|c| idx.file(c)) {
            out.push(f);
        }
    }
    out
}

fn go(_path: &str, text: &str, idx: &Index) -> Vec<String> {
    static BLOCK: OnceLock<Regex> = OnceLock::new();
    static SINGLE: OnceLock<Regex> = OnceLock::new();
    static QUOTED: OnceLock<Regex> = OnceLock::new();
    let block = re(&BLOCK, r"(?ms)^import\s*\((.*?)\)");
    let single = re(&SINGLE, r#"(?m)^import\s+(?:[A-Za-z0-9_.]+\s+)?"([^"]+)""#);
    let quoted = re(&QUOTED, r#""([^"]+)""#);
    let mut specs: Vec<String> = Vec::new();
    for c in block.captures_iter(text) {
        specs.extend(quoted.captures_iter(&c[1]).map(|q| q[1].to_string()));
    }
    specs.extend(single.captures_iter(text).map(|c| c[1].to_string()));
    let mut out = Vec::new();
    for s in specs {
        for (module, mod_dir) in &idx.go_mods {
            let rel = if s == *module {
                ""
            } else if let Some(r) = s.strip_prefix(module.as_str()).and_then(|r| r.strip_prefix('/')) {
                r
            } else {
                continue;
            };
            let dir = match (mod_dir.is_empty(), rel.is_empty()) {
                (true, _) => rel.to_string(),
                (false, true) => mod_dir.clone(),
                (false, false) => format!("{mod_dir}/{rel}"),
            };
            if let Some(files) = idx.go_dirs.get(dir.as_str()) {
                out.extend(files.iter().map(|f| f.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> ImportGraph {
        let paths: Vec<String> = files.iter().map(|(p, _)| p.to_string()).collect();
        let contents: Vec<(String, Vec<u8>)> =
            files.iter().map(|(p, c)| (p.to_string(), c.as_bytes().to_vec())).collect();
        build(&paths, &contents)
    }

    fn deps(g: &ImportGraph, f: &str) -> Vec<String> {
        g.imports.get(f).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn python_imports() {
        let g = graph(&[
            ("app/__init__.py", ""),
            ("app/models.py", ""),
            ("app/db/__init__.py", ""),
            ("app/db/conn.py", ""),
            (
                "app/views.py",
                "import os\nimport app.models\nfrom app.db import conn\nfrom . import models\nfrom .db.conn import X\n",
            ),
            ("src/lib/core.py", ""),
            ("tool.py", "from lib.core import thing\n"),
        ]);
        assert_eq!(deps(&g, "app/views.py"), vec!["app/db/conn.py", "app/models.py"]);
        assert_eq!(deps(&g, "tool.py"), vec!["src/lib/core.py"]);
    }

    #[test]
    fn rust_imports() {
        let g = graph(&[
            ("Cargo.toml", ""),
            ("src/lib.rs", "pub mod store;\nmod util;\nuse crate::store::refs::Layout;\n"),
            ("src/store/mod.rs", "pub mod refs;\nuse super::util;\n"),
            ("src/store/refs.rs", "use crate::{util::helper, store};\n"),
            ("src/util.rs", ""),
        ]);
        assert_eq!(deps(&g, "src/lib.rs"), vec!["src/store/mod.rs", "src/store/refs.rs", "src/util.rs"]);
        assert_eq!(deps(&g, "src/store/mod.rs"), vec!["src/store/refs.rs", "src/util.rs"]);
        assert_eq!(deps(&g, "src/store/refs.rs"), vec!["src/store/mod.rs", "src/util.rs"]);
    }

    #[test]
    fn js_imports() {
        let g = graph(&[
            ("web/app.ts", "import { a } from './lib/a';\nimport b from \"../shared/b.js\";\nconst c = require('./c');\nimport x from 'react';\nexport * from './lib';\n"),
            ("web/lib/a.ts", ""),
            ("web/lib/index.ts", ""),
            ("shared/b.ts", ""),
            ("web/c.js", ""),
        ]);
        assert_eq!(deps(&g, "web/app.ts"), vec!["shared/b.ts", "web/c.js", "web/lib/a.ts", "web/lib/index.ts"]);
    }

    #[test]
    fn go_imports() {
        let g = graph(&[
            ("go.mod", "module example.com/shop\n\ngo 1.22\n"),
            ("main.go", "package main\n\nimport (\n\t\"fmt\"\n\tdb \"example.com/shop/internal/db\"\n)\n"),
            ("internal/db/db.go", "package db\n"),
            ("internal/db/db_test.go", "package db\n"),
            ("cmd/x.go", "package main\nimport \"example.com/shop/internal/db\"\n"),
        ]);
        assert_eq!(deps(&g, "main.go"), vec!["internal/db/db.go"]);
        assert_eq!(deps(&g, "cmd/x.go"), vec!["internal/db/db.go"]);
    }
}
