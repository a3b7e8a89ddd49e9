//! Import graph of the repository: which tracked file imports which other tracked file.
//!
//! Languages and what resolves:
//! - Python: `import`, `from … import`, relative imports; source roots are the repository top,
//!   `src/`, `lib/`, `python/`, and every folder holding a `pyproject.toml`, `setup.py` or
//!   `setup.cfg` (and its `src/`); namespace packages (folders without `__init__.py`) resolve by path.
//! - Rust: `mod x;` (with `#[path]`), `use` and inline paths through `crate`, `self`, `super`, child
//!   modules (in `use`) and the workspace crates the package depends on (by package name, `[lib]
//!   name`, or a renamed dependency `x = { package = "y" }`); modules are followed down from each
//!   crate root Cargo knows (`[lib]`, `[[bin]]`/`[[test]]`… paths, auto-discovered targets), and
//!   `super`/`self` inside inline modules mean those; `pub use` re-exports and `pub extern crate`
//!   are followed (also globs) to the module that defines the item, `#[macro_export]` macros to
//!   their file.
//! - JavaScript/TypeScript: `import … from`, `export … from`, `import()`, `require()`; relative
//!   specifiers, tsconfig `paths` and `baseUrl` (with `extends`), workspace packages by their
//!   package.json name (`exports`, `main`, `types` mapped from build output back to `src/`), index
//!   files.
//! - Go: packages inside any module of the repository (`go.mod`, `go.work`), the longest module
//!   path winning, `replace` directives to local folders.
//!
//! Parsing runs in parallel (rayon); only edges between tracked files are kept.

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

/// A Cargo package of the repository.
#[derive(Debug, Default)]
struct Crate {
    /// Library root file (`src/lib.rs` or `[lib] path`).
    lib: Option<String>,
    /// Identifier the package's code is known by in its dependents: `[lib] name` or the package
    /// name with `-` as `_`.
    ident: String,
    /// Dependency key (as identifier) → package name, for `x = { package = "y" }`.
    renames: HashMap<String, String>,
    /// Package name, and the dependency keys of every dependency table (`-` as `_`): the
    /// workspace crates its code can name.
    package: String,
    deps: HashSet<String>,
    /// Root files of other targets: `[[bin]]`, `[[test]]`, `[[example]]`, `[[bench]]` paths, and
    /// a `build = "…"` script.
    targets: Vec<String>,
    /// Cargo's auto-discovery of bins, examples, tests, benches and build.rs (`autotests = false`…).
    auto: [bool; 5],
}

/// A JS/TS package of the repository (a package.json with a name).
#[derive(Debug)]
struct JsPackage {
    dir: String,
    /// Subpath (`.` or `./x`) → target as written in `exports`, `main`, `module`, `types`.
    entries: Vec<(String, String)>,
}

/// Compiler options of a tsconfig/jsconfig that resolution needs, `extends` already applied.
#[derive(Debug, Default, Clone)]
struct TsConfig {
    base_url: Option<String>,
    /// Pattern → targets, and the directory of the config that defines them (targets are
    /// relative to `base_url` when there is one, else to that directory).
    paths: Vec<(String, Vec<String>)>,
    paths_base: String,
}

/// Everything resolution needs to know about the tracked files.
struct Index<'a> {
    all: HashSet<&'a str>,
    /// Python dotted module name → file (`a.b` → `a/b.py` or `a/b/__init__.py`).
    py_modules: HashMap<String, &'a str>,
    /// directory → its Go files (non-test).
    go_dirs: HashMap<&'a str, Vec<&'a str>>,
    /// (module path, directory) for each go.mod, and each local `replace`; longest path first.
    go_mods: Vec<(String, String)>,
    /// Cargo manifest directory → crate, and crate identifier → manifest directory.
    crates: HashMap<String, Crate>,
    crate_by_ident: HashMap<String, String>,
    crate_by_package: HashMap<String, String>,
    /// Parsed Rust files, for following re-exports.
    rust_files: HashMap<String, RustFile>,
    /// Rust file → the chains of modules that reach it from crate roots; crate root → its
    /// `#[macro_export]` macros and the files defining them.
    rust_tree: HashMap<String, Vec<RustChain>>,
    rust_macros: HashMap<String, HashMap<String, String>>,
    /// Package name → package; tsconfig directory → options.
    js_packages: HashMap<String, JsPackage>,
    tsconfigs: HashMap<String, TsConfig>,
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
    let manifests: Vec<(&str, String)> =
        contents.iter().filter(|(p, _)| is_manifest(p)).map(|c| (c.0.as_str(), text_of(c))).collect();

    // Python source roots: where a package manifest lives, and its src/.
    let mut py_roots: Vec<String> = vec![String::new(), "src".into(), "lib".into(), "python".into()];
    for p in paths {
        let name = p.rsplit('/').next().unwrap_or(p);
        if matches!(name, "pyproject.toml" | "setup.py" | "setup.cfg") && !dir_of(p).is_empty() {
            py_roots.push(dir_of(p).to_string());
            py_roots.push(format!("{}/src", dir_of(p)));
        }
    }
    py_roots.sort();
    py_roots.dedup();
    let mut py_modules: HashMap<String, &str> = HashMap::new();
    let mut go_dirs: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in paths {
        if let Some(stem) = p.strip_suffix(".py") {
            let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
            // The repository top is the last resort; a deeper root names the module as its
            // package sees itself.
            for root in py_roots.iter().rev() {
                let rel = if root.is_empty() {
                    Some(stem)
                } else {
                    stem.strip_prefix(root.as_str()).and_then(|r| r.strip_prefix('/'))
                };
                if let Some(rel) = rel {
                    py_modules.entry(rel.replace('/', ".")).or_insert(p.as_str());
                }
            }
        } else if p.ends_with(".go") && !p.ends_with("_test.go") {
            go_dirs.entry(dir_of(p)).or_default().push(p.as_str());
        }
    }

    let mut go_mods = Vec::new();
    let mut crates = HashMap::new();
    let mut js_packages = HashMap::new();
    let mut raw_tsconfigs: HashMap<String, serde_json::Value> = HashMap::new();
    for (path, text) in &manifests {
        let name = path.rsplit('/').next().unwrap_or(path);
        let dir = dir_of(path).to_string();
        match name {
            "go.mod" => go_mods.extend(go_mod(&dir, text)),
            "Cargo.toml" => {
                if let Some(c) = cargo_manifest(&dir, text, &all) {
                    crates.insert(dir, c);
                }
            }
            "package.json" => {
                if let Some((n, pkg)) = package_json(&dir, text) {
                    js_packages.insert(n, pkg);
                }
            }
            n if n.starts_with("tsconfig") || n == "jsconfig.json" => {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&strip_jsonc(text)) {
                    raw_tsconfigs.insert(path.to_string(), v);
                }
            }
            _ => {}
        }
    }
    // Longest module path first, so a nested module wins over the one around it.
    go_mods.sort_by(|a: &(String, String), b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
    go_mods.dedup();
    let mut tsconfigs = HashMap::new();
    for path in raw_tsconfigs.keys() {
        // The one a file belongs to is its folder's tsconfig.json (or jsconfig.json).
        let name = path.rsplit('/').next().unwrap_or(path);
        if name == "tsconfig.json"
            || (name == "jsconfig.json" && !raw_tsconfigs.contains_key(&in_dir(dir_of(path), "tsconfig.json")))
        {
            tsconfigs.insert(dir_of(path).to_string(), tsconfig(path, &raw_tsconfigs, 0));
        }
    }
    let crate_by_ident = crates.iter().map(|(d, c)| (c.ident.clone(), d.clone())).collect();
    let crate_by_package = manifests
        .iter()
        .filter(|(p, _)| p.ends_with("Cargo.toml"))
        .filter_map(|(p, t)| Some((toml_value(t, "package", "name")?.replace('-', "_"), dir_of(p).to_string())))
        .collect();
    let rust_files: HashMap<String, RustFile> = contents
        .par_iter()
        .filter(|(p, _)| p.ends_with(".rs"))
        .filter_map(|(p, b)| Some((p.clone(), rust_parse(std::str::from_utf8(b).ok()?))))
        .collect();
    let (rust_tree, rust_macros) = rust_tree(&rust_roots(paths, &crates), &rust_files, &all);
    let index = Index {
        all,
        py_modules,
        go_dirs,
        go_mods,
        crates,
        crate_by_ident,
        crate_by_package,
        rust_files,
        rust_tree,
        rust_macros,
        js_packages,
        tsconfigs,
    };
    let imports: BTreeMap<String, BTreeSet<String>> = contents
        .par_iter()
        .filter_map(|(path, bytes)| {
            let lang = lang(path)?;
            let deps: BTreeSet<String> = match lang {
                Lang::Rust => rust(path, &index),
                other => {
                    let text = std::str::from_utf8(bytes).ok()?;
                    match other {
                        Lang::Python => python(path, text, &index),
                        Lang::Js => js(path, text, &index),
                        _ => go(path, text, &index),
                    }
                }
            }
            .into_iter()
            .filter(|d| d != path)
            .collect();
            (!deps.is_empty()).then(|| (path.clone(), deps))
        })
        .collect();
    ImportGraph { imports }
}

/// `module` and local `replace` targets of a go.mod in `dir`.
fn go_mod(dir: &str, text: &str) -> Vec<(String, String)> {
    static REPLACE: OnceLock<Regex> = OnceLock::new();
    let replace = re(&REPLACE, r"(?m)^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\.{1,2}/\S*)\s*$");
    let mut out = Vec::new();
    if let Some(m) = text.lines().find_map(|l| l.trim().strip_prefix("module ")) {
        out.push((m.trim().trim_matches('"').to_string(), dir.to_string()));
    }
    for c in replace.captures_iter(text) {
        if let Some(target) = join(dir, &c[2]) {
            out.push((c[1].to_string(), target));
        }
    }
    out
}

/// `key = "value"` in `[table]` of a TOML file (enough of TOML for Cargo manifests).
fn toml_value(text: &str, table: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            current = l.trim_matches(['[', ']', ' ']).to_string();
        } else if current == table {
            if let Some((k, v)) = l.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    None
}

fn cargo_manifest(dir: &str, text: &str, all: &HashSet<&str>) -> Option<Crate> {
    let package = toml_value(text, "package", "name")?;
    let lib_path = toml_value(text, "lib", "path").unwrap_or_else(|| "src/lib.rs".into());
    let lib = join(dir, &lib_path).filter(|p| all.contains(p.as_str()));
    let ident = toml_value(text, "lib", "name").unwrap_or(package).replace('-', "_");
    // `key = { package = "name", … }` in a dependency table, or `[dependencies.key]` with
    // `package = "name"`.
    static INLINE: OnceLock<Regex> = OnceLock::new();
    let inline = re(&INLINE, r#"(?m)^\s*([A-Za-z0-9_-]+)\s*=\s*\{[^}\n]*\bpackage\s*=\s*"([^"]+)""#);
    let mut renames: HashMap<String, String> =
        inline.captures_iter(text).map(|c| (c[1].replace('-', "_"), c[2].replace('-', "_"))).collect();
    let mut table_key: Option<String> = None;
    let mut in_deps = false;
    let mut deps = HashSet::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            let t = l.trim_matches(['[', ']', ' ']);
            table_key = t
                .rsplit_once('.')
                .filter(|(head, _)| head.ends_with("dependencies") && !head.starts_with("workspace"))
                .map(|(_, k)| k.trim_matches('"').replace('-', "_"));
            deps.extend(table_key.clone());
            in_deps = t.ends_with("dependencies") && !t.starts_with("workspace");
        } else if let (Some(k), Some((key, v))) = (&table_key, l.split_once('=')) {
            if key.trim() == "package" {
                renames.insert(k.clone(), v.trim().trim_matches('"').replace('-', "_"));
            }
        } else if let Some((key, _)) = l.split_once('=').filter(|_| in_deps) {
            deps.insert(key.trim().trim_matches('"').replace('-', "_"));
        }
    }
    // Targets: `path` in `[[bin]]` and the like; `auto… = false` and `build` in `[package]`.
    let mut targets = Vec::new();
    let mut auto = [true; 5];
    let mut table = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            table = l.trim_matches(['[', ']', ' ']).to_string();
            continue;
        }
        let Some((k, v)) = l.split_once('=') else { continue };
        let (k, v) = (k.trim(), v.split('#').next().unwrap_or("").trim());
        match (table.as_str(), k) {
            ("bin" | "test" | "example" | "bench", "path") => targets.extend(join(dir, v.trim_matches('"'))),
            ("package", "build") if v == "false" => auto[4] = false,
            ("package", "build") => {
                auto[4] = false;
                targets.extend(join(dir, v.trim_matches('"')));
            }
            ("package", "autobins" | "autoexamples" | "autotests" | "autobenches") if v == "false" => {
                let i = ["autobins", "autoexamples", "autotests", "autobenches"].iter().position(|a| *a == k);
                auto[i.unwrap_or(0)] = false;
            }
            _ => {}
        }
    }
    targets.retain(|t| all.contains(t.as_str()));
    let package = toml_value(text, "package", "name")?.replace('-', "_");
    Some(Crate { lib, ident, renames, package, deps, targets, auto })
}

/// JSON with comments and trailing commas (tsconfig files) as plain JSON.
fn strip_jsonc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_str = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    static TRAILING: OnceLock<Regex> = OnceLock::new();
    re(&TRAILING, r",(\s*[}\]])").replace_all(&out, "$1").into_owned()
}

/// A tsconfig's `baseUrl` and `paths`, following `extends` to files of the repository.
fn tsconfig(path: &str, raw: &HashMap<String, serde_json::Value>, depth: usize) -> TsConfig {
    let Some(v) = raw.get(path) else { return TsConfig::default() };
    let dir = dir_of(path);
    let mut cfg = match v.get("extends").and_then(|e| e.as_str()) {
        Some(e) if depth < 8 && e.starts_with('.') => {
            let target = join(dir, e).unwrap_or_default();
            let target = if target.ends_with(".json") { target } else { format!("{target}.json") };
            tsconfig(&target, raw, depth + 1)
        }
        _ => TsConfig::default(),
    };
    let opts = v.get("compilerOptions");
    if let Some(b) = opts.and_then(|o| o.get("baseUrl")).and_then(|b| b.as_str()) {
        cfg.base_url = join(dir, b);
    }
    if let Some(p) = opts.and_then(|o| o.get("paths")).and_then(|p| p.as_object()) {
        cfg.paths = p
            .iter()
            .map(|(k, v)| {
                let targets = v.as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string));
                (k.clone(), targets.collect())
            })
            .collect();
        cfg.paths_base = dir.to_string();
    }
    cfg
}

fn package_json(dir: &str, text: &str) -> Option<(String, JsPackage)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let name = v.get("name")?.as_str()?.to_string();
    let mut entries = Vec::new();
    // The first string found in an `exports` condition object, `types` and `import` first.
    fn first(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => ["source", "types", "import", "module", "default", "require", "node"]
                .iter()
                .filter_map(|k| o.get(*k))
                .chain(o.values())
                .find_map(first),
            serde_json::Value::Array(a) => a.iter().find_map(first),
            _ => None,
        }
    }
    match v.get("exports") {
        Some(serde_json::Value::Object(o)) if o.keys().all(|k| k.starts_with('.')) => {
            for (k, t) in o {
                if let Some(t) = first(t) {
                    entries.push((k.clone(), t));
                }
            }
        }
        Some(e) => entries.extend(first(e).map(|t| (".".to_string(), t))),
        None => {}
    }
    for key in ["source", "types", "typings", "module", "main"] {
        if let Some(t) = v.get(key).and_then(|t| t.as_str()) {
            entries.push((".".into(), t.to_string()));
        }
    }
    Some((name, JsPackage { dir: dir.to_string(), entries }))
}

fn python(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static IMPORT: OnceLock<Regex> = OnceLock::new();
    static FROM: OnceLock<Regex> = OnceLock::new();
    let import = re(&IMPORT, r"(?m)^[ \t]*import[ \t]+([A-Za-z0-9_., \t]+?)[ \t]*(?:#.*)?$");
    // Names in parentheses may span lines; without them they end with the line.
    let from =
        re(&FROM, r"(?m)^[ \t]*from[ \t]+(\.*)([A-Za-z0-9_.]*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([A-Za-z0-9_, \t*]+))");
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
        let list = c.get(3).or(c.get(4)).map(|m| m.as_str()).unwrap_or("");
        // Comments inside a parenthesised list are not names.
        let list: String = list.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join(" ");
        let names = || {
            list.split(',').map(|n| n.split_whitespace().next().unwrap_or("")).filter(|n| !n.is_empty() && *n != "*")
        };
        // `from m import x`: x is a submodule when one exists, else a name defined in m.
        let mut found_sub = false;
        if dots > 0 {
            if dots - 1 > pkg.len() {
                continue;
            }
            let mut b: Vec<&str> = pkg[..pkg.len() - (dots - 1)].to_vec();
            b.extend(module.split('.').filter(|s| !s.is_empty()));
            // Relative imports resolve by path, not through source roots.
            let dir = b.join("/");
            let module_file = |m: &str| idx.file(&format!("{m}.py")).or_else(|| idx.file(&format!("{m}/__init__.py")));
            for name in names() {
                if let Some(f) = module_file(&in_dir(&dir, name)) {
                    out.push(f);
                    found_sub = true;
                }
            }
            if !found_sub {
                out.extend(module_file(&dir));
            }
            continue;
        }
        for name in names() {
            if let Some(hit) = lookup(&format!("{module}.{name}")) {
                out.push(hit);
                found_sub = true;
            }
        }
        if !found_sub {
            let parts: Vec<&str> = module.split('.').collect();
            out.extend((1..=parts.len()).rev().find_map(|n| lookup(&parts[..n].join("."))));
        }
    }
    out
}

/// What a Rust file declares and names: `mod x;`, `use` trees (expanded), inline paths.
#[derive(Debug, Default)]
struct RustFile {
    /// `mod x;` declarations outside inline modules: the name, the `#[path]` if given, and
    /// whether other crates see it (`pub`).
    mods: Vec<(String, Option<String>, bool)>,
    /// `use` leaves and `extern crate` items.
    uses: Vec<RustUse>,
    /// `a::b::c` paths in code (not in `use` items), with their inline module depth and whether
    /// they name a value or a macro (`a::f(…)`, `a::m!`, `#[a::attr]`), never a module.
    paths: Vec<RustPath>,
    /// Items defined at the file's level that paths go through (types, traits) and the others
    /// (functions, constants, statics, macros).
    types: HashSet<String>,
    values: HashSet<String>,
    /// Inline modules at the file's level (`mod tests { … }`) → the items defined inside them.
    inline: HashMap<String, HashSet<String>>,
    /// `#[macro_export]` macros defined here: rustc puts them at the crate root.
    exported_macros: Vec<String>,
}

#[derive(Debug)]
struct RustPath {
    segs: Vec<String>,
    depth: usize,
    value: bool,
}

/// A `use` leaf (or `extern crate`): its path, the name it binds (`*` for a glob), whether it is
/// `pub`, how many inline modules (`mod tests { … }`) it sits in, and the outermost of them.
#[derive(Debug)]
struct RustUse {
    segs: Vec<String>,
    name: String,
    public: bool,
    depth: usize,
    scope: Option<String>,
}

fn rust_parse(text: &str) -> RustFile {
    static MOD: OnceLock<Regex> = OnceLock::new();
    static USE: OnceLock<Regex> = OnceLock::new();
    static EXTERN: OnceLock<Regex> = OnceLock::new();
    static PATH: OnceLock<Regex> = OnceLock::new();
    static NOT_CODE: OnceLock<Regex> = OnceLock::new();
    static INLINE: OnceLock<Regex> = OnceLock::new();
    static PATH_ATTR: OnceLock<Regex> = OnceLock::new();
    static EXPORT: OnceLock<Regex> = OnceLock::new();
    static DEF: OnceLock<Regex> = OnceLock::new();
    let module = re(&MOD, r"(?m)^[ \t]*((?:pub(\([^)]*\))?\s+)?)mod\s+(?:r#)?([A-Za-z0-9_]+)\s*;");
    let use_ = re(&USE, r"(?ms)^\s*(pub(?:\([^)]*\))?\s+)?use\s+(?:::)?([A-Za-z_{][^;]*);");
    let extern_ = re(
        &EXTERN,
        r"(?m)^[ \t]*(pub(?:\([^)]*\))?\s+)?extern\s+crate\s+([A-Za-z_]\w*)(?:\s+as\s+([A-Za-z_]\w*))?\s*;",
    );
    let path = re(&PATH, r"\b((?:r#)?[A-Za-z_]\w*(?:::(?:r#)?[A-Za-z_]\w*)+)");
    // Comments, strings (raw ones too) and char literals would give paths and braces that are not
    // code: they are blanked byte for byte, so offsets still point into `text`.
    let not_code = re(
        &NOT_CODE,
        r###"(?m)//.*$|(?s:/\*.*?\*/)|(?s:r#".*?"#)|(?s:r##".*?"##)|r"[^"]*"|(?s:"(?:[^"\\]|\\.)*")|'(?:[^'\\\n]|\\.[^'\n]{0,9})'"###,
    );
    let mut bytes = text.as_bytes().to_vec();
    for m in not_code.find_iter(text) {
        bytes[m.range()].iter_mut().filter(|b| **b != b'\n').for_each(|b| *b = b' ');
    }
    let code = String::from_utf8(bytes).unwrap_or_default();
    // Inline modules' spans, so `super` and `self` inside `mod tests { … }` mean that module.
    let inline = re(&INLINE, r"\bmod\s+(?:r#)?([A-Za-z_]\w*)\s*\{");
    let spans: Vec<(usize, usize, &str)> = inline
        .captures_iter(&code)
        .filter_map(|c| Some((c.get(0)?, c.get(1)?.as_str())))
        .map(|(m, name)| {
            let open = m.end() - 1;
            let mut depth = 0usize;
            let close = code.as_bytes()[open..].iter().position(|b| {
                match b {
                    b'{' => depth += 1,
                    b'}' => depth = depth.saturating_sub(1),
                    _ => return false,
                }
                depth == 0
            });
            (open, close.map_or(code.len(), |c| open + c), name)
        })
        .collect();
    let depth_at = |o: usize| spans.iter().filter(|(s, e, _)| *s < o && o < *e).count();
    // The outermost inline module around an offset (spans come in order of their start).
    let scope_at = |o: usize| spans.iter().find(|(s, e, _)| *s < o && o < *e).map(|(_, _, n)| n.to_string());
    let path_attr = re(&PATH_ATTR, r#"#\[\s*path\s*=\s*"([^"]*)"\s*\]\s*(?:#\[[^\]]*\]\s*)*$"#);
    let mut f = RustFile::default();
    for c in module.captures_iter(&code) {
        let at = c.get(1).map_or(0, |m| m.start());
        if depth_at(at) > 0 {
            continue;
        }
        // `#[path = "…"]` among the attributes right before (read in `text`: strings are blank in `code`).
        let mut from = at.saturating_sub(400);
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        let attr = path_attr.captures(&text[from..at]).map(|a| a[1].to_string());
        let public = c[1].starts_with("pub") && c.get(2).is_none();
        f.mods.push((c[3].to_string(), attr, public));
    }
    let mut use_spans = Vec::new();
    for c in use_.captures_iter(&code) {
        let public = c.get(1).is_some();
        let whole = c.get(0).map_or(0..0, |m| m.range());
        let at = whole.start + c[0].len() - c[0].trim_start().len();
        let (depth, scope) = (depth_at(at), scope_at(at));
        use_spans.push(whole);
        for (full, alias) in expand_use_tree(&c[2].replace("r#", "")) {
            let segs: Vec<String> = full.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
            let name = alias.unwrap_or_else(|| segs.last().cloned().unwrap_or_default());
            f.uses.push(RustUse { segs, name, public, depth, scope: scope.clone() });
        }
    }
    for c in extern_.captures_iter(&code) {
        if &c[2] != "self" {
            let name = c.get(3).map_or(&c[2], |a| a.as_str()).to_string();
            let at = c.get(2).map_or(0, |m| m.start());
            let (depth, scope) = (depth_at(at), scope_at(at));
            f.uses.push(RustUse { segs: vec![c[2].to_string()], name, public: c.get(1).is_some(), depth, scope });
        }
    }
    let def = re(
        &DEF,
        r"(')?\b(?:(struct|enum|trait|type|union)\s+(?:r#)?([A-Za-z_]\w*)|mod\s+(?:r#)?([A-Za-z_]\w*)\s*\{|(?:fn|const|static|macro_rules!)\s+(?:(?:mut|unsafe|fn)\s+)*(?:r#)?([A-Za-z_]\w*))",
    );
    // A lifetime is no item: `&'static Metadata`.
    for c in def.captures_iter(&code).filter(|c| c.get(1).is_none()) {
        let at = c.get(0).map_or(0, |m| m.start());
        let target = match scope_at(at) {
            Some(scope) => f.inline.entry(scope).or_default(),
            None if c.get(4).is_some() => {
                f.inline.entry(c[4].to_string()).or_default();
                continue;
            }
            None if c.get(3).is_some() => &mut f.types,
            None => &mut f.values,
        };
        if let Some(name) = c.get(3).or(c.get(4)).or(c.get(5)) {
            target.insert(name.as_str().to_string());
        }
    }
    let export = re(&EXPORT, r"#\[\s*macro_export\b[^\]]*\]\s*(?:#\[[^\]]*\]\s*)*macro_rules!\s*([A-Za-z_]\w*)");
    f.exported_macros = export.captures_iter(&code).map(|c| c[1].to_string()).collect();
    let mut seen = HashSet::new();
    let mut next_use = 0;
    for m in path.find_iter(&code) {
        while use_spans.get(next_use).is_some_and(|u| u.end <= m.start()) {
            next_use += 1;
        }
        if use_spans.get(next_use).is_some_and(|u| u.start <= m.start()) {
            continue;
        }
        let depth = depth_at(m.start());
        // A call, a macro or an attribute names a value or a macro, never a module.
        let after = code[m.end()..].trim_start();
        let value = after.starts_with('(')
            || (after.starts_with('!') && !after.starts_with("!="))
            || code[..m.start()].trim_end().ends_with("#[");
        if seen.insert((m.as_str(), depth, value)) {
            let segs = m.as_str().split("::").map(|s| s.trim_start_matches("r#").to_string()).collect();
            f.paths.push(RustPath { segs, depth, value });
        }
    }
    f
}

/// `crate::a::{b, c::d as e, f::*}` → [(`crate::a::b`, None), (`crate::a::c::d`, Some(e)),
/// (`crate::a::f::*`, Some(*))] (nested braces included).
fn expand_use_tree(tree: &str) -> Vec<(String, Option<String>)> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    expand(&tree.replace(" :: ", "::").replace(":: ", "::").replace(" ::", "::"))
}

fn expand(tree: &str) -> Vec<(String, Option<String>)> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        if let Some((p, alias)) = tree.split_once(" as ") {
            return vec![(p.trim().to_string(), Some(alias.trim().to_string()))];
        }
        if let Some(p) = tree.strip_suffix("::*") {
            return vec![(p.to_string(), Some("*".into()))];
        }
        return vec![(tree.to_string(), None)];
    };
    let prefix = &tree[..open];
    let inner = tree[open + 1..].trim_end().strip_suffix('}').unwrap_or(&tree[open + 1..]);
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
    // `a::{self, b}` imports the module `a` itself too.
    let has_self = items.iter().any(|i| i.trim() == "self" || i.trim().starts_with("self as "));
    let mut out: Vec<(String, Option<String>)> = items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "self" && !s.starts_with("self as "))
        .flat_map(|item| {
            if item == "*" {
                vec![(prefix.trim_end_matches("::").to_string(), Some("*".to_string()))]
            } else {
                expand(&format!("{prefix}{item}"))
            }
        })
        .collect();
    if has_self {
        out.push((prefix.trim_end_matches("::").to_string(), None));
    }
    out
}

/// The directory in which `mod x;` declared in `path` looks for `x.rs`, for a file not reached
/// from a crate root (see `rust_tree`).
fn rust_mod_dir(path: &str) -> String {
    let dir = dir_of(path);
    let file = path.rsplit('/').next().unwrap_or(path);
    match file {
        "lib.rs" | "main.rs" | "mod.rs" => dir.to_string(),
        f => in_dir(dir, f.trim_end_matches(".rs")),
    }
}

/// The file of the module whose children live in `dir`.
fn rust_module_file(dir: &str, idx: &Index) -> Option<String> {
    idx.file(&format!("{dir}.rs"))
        .or_else(|| ["mod.rs", "lib.rs", "main.rs"].iter().find_map(|f| idx.file(&in_dir(dir, f))))
}

/// The `src` directory of the crate a Rust file belongs to (where lib.rs or main.rs lives).
fn rust_crate_root(path: &str, idx: &Index) -> Option<String> {
    let mut dir = dir_of(path);
    loop {
        if ["lib.rs", "main.rs"].iter().any(|r| idx.all.contains(in_dir(dir, r).as_str())) {
            return Some(dir.to_string());
        }
        if dir.is_empty() {
            return None;
        }
        dir = dir_of(dir);
    }
}

/// The Cargo package a file belongs to: the closest manifest directory above it.
fn rust_crate_of<'i>(path: &str, idx: &'i Index) -> Option<&'i Crate> {
    let mut dir = dir_of(path);
    loop {
        if let Some(c) = idx.crates.get(dir) {
            return Some(c);
        }
        if dir.is_empty() {
            return None;
        }
        dir = dir_of(dir);
    }
}

/// Modules from a crate root down to a file: (file, directory of its `mod x;` children).
type RustChain = Vec<(String, String)>;

/// The file of module `name` declared in `file` (children directory `dir`) by `mod name;`, with
/// its own children directory. A `#[path]` file is relative to the declaring file's directory
/// and, as in rustc, keeps its children beside it.
fn rust_child(file: &str, dir: &str, name: &str, attr: Option<&str>, all: &HashSet<&str>) -> Option<(String, String)> {
    let found = |p: String| all.contains(p.as_str()).then_some(p);
    match attr {
        Some(p) => found(join(dir_of(file), p)?).map(|f| (f.clone(), dir_of(&f).to_string())),
        None => {
            let d = in_dir(dir, name);
            found(format!("{d}.rs")).or_else(|| found(in_dir(&d, "mod.rs"))).map(|f| (f, d))
        }
    }
}

/// The module `name` declared in `file`; only a `pub` one when the asker is another crate.
fn rust_child_named(file: &str, dir: &str, name: &str, external: bool, idx: &Index) -> Option<(String, String)> {
    let parsed = idx.rust_files.get(file)?;
    let declared = parsed.mods.iter().filter(|(m, _, public)| m == name && (*public || !external));
    declared.into_iter().find_map(|(_, attr, _)| rust_child(file, dir, name, attr.as_deref(), &idx.all))
}

/// Crate root files of the Cargo packages: libraries, `[[bin]]`/`[[test]]`/`[[example]]`/
/// `[[bench]]` paths, build scripts, and Cargo's auto-discovered targets (`src/main.rs`,
/// `src/bin/x.rs`, `tests/x.rs`, `examples/x/main.rs`, …) unless `autotests = false` and the like.
fn rust_roots(paths: &[String], crates: &HashMap<String, Crate>) -> Vec<String> {
    let mut roots: Vec<String> = crates.values().flat_map(|c| c.lib.iter().chain(&c.targets).cloned()).collect();
    for p in paths.iter().filter(|p| p.ends_with(".rs")) {
        let segs: Vec<&str> = p.split('/').collect();
        let n = segs.len();
        let up = |k: usize| segs[..n.saturating_sub(k)].join("/");
        let seg = |k: usize| if n > k { segs[n - 1 - k] } else { "" };
        let kind = |s: &str| ["bin", "examples", "tests", "benches"].iter().position(|k| *k == s);
        // (package directory, kind: 0 bin, 1 example, 2 test, 3 bench, 4 build script)
        let candidate = match (seg(0), seg(1), seg(2), seg(3)) {
            ("build.rs", ..) => Some((up(1), 4)),
            ("main.rs", "src", ..) => Some((up(2), 0)),
            (_, "bin", "src", _) => Some((up(3), 0)),
            ("main.rs", _, "bin", "src") => Some((up(4), 0)),
            (_, k, ..) if kind(k).is_some_and(|k| k > 0) => Some((up(2), kind(k).unwrap_or(0))),
            ("main.rs", _, k, _) if kind(k).is_some_and(|k| k > 0) => Some((up(3), kind(k).unwrap_or(0))),
            _ => None,
        };
        if let Some((dir, kind)) = candidate {
            if crates.get(&dir).is_some_and(|c| c.auto[kind]) {
                roots.push(p.clone());
            }
        }
    }
    roots.sort();
    roots.dedup();
    roots
}

/// Each Rust file reached by `mod` declarations from a crate root, with the chains that reach it,
/// and each crate root's `#[macro_export]` macros (name → defining file).
type RustTree = (HashMap<String, Vec<RustChain>>, HashMap<String, HashMap<String, String>>);

fn rust_tree(roots: &[String], files: &HashMap<String, RustFile>, all: &HashSet<&str>) -> RustTree {
    let mut tree: HashMap<String, Vec<RustChain>> = HashMap::new();
    let mut macros: HashMap<String, HashMap<String, String>> = HashMap::new();
    for root in roots {
        let mut stack = vec![vec![(root.clone(), dir_of(root).to_string())]];
        let mut seen = HashSet::new();
        while let Some(chain) = stack.pop() {
            let Some((file, dir)) = chain.last().cloned() else { continue };
            let Some(parsed) = files.get(&file) else { continue };
            if !seen.insert(file.clone()) || chain.len() > 64 {
                continue;
            }
            for m in &parsed.exported_macros {
                macros.entry(root.clone()).or_default().entry(m.clone()).or_insert_with(|| file.clone());
            }
            for (name, attr, _) in &parsed.mods {
                if let Some(child) = rust_child(&file, &dir, name, attr.as_deref(), all) {
                    let mut next = chain.clone();
                    next.push(child);
                    stack.push(next);
                }
            }
            tree.entry(file).or_default().push(chain);
        }
    }
    (tree, macros)
}

/// The chains of modules a file is reached by; for a file no crate root reaches (no Cargo
/// manifest, say), one guessed from its directories: `a/b.rs` is declared by `a.rs` or
/// `a/mod.rs`, and so on up to a `lib.rs` or `main.rs`.
fn rust_chains(path: &str, idx: &Index) -> Vec<RustChain> {
    if let Some(chains) = idx.rust_tree.get(path) {
        return chains.clone();
    }
    let is_root = |f: &str| matches!(f.rsplit('/').next(), Some("lib.rs" | "main.rs"));
    let mut chain = vec![(path.to_string(), rust_mod_dir(path))];
    while chain.len() < 32 && !is_root(&chain[0].0) {
        let parent_dir = dir_of(&chain[0].1).to_string();
        match rust_module_file(&parent_dir, idx) {
            Some(f) if f != chain[0].0 => chain.insert(0, (f, parent_dir)),
            _ => break,
        }
    }
    if !is_root(&chain[0].0) {
        if let Some(dir) = rust_crate_root(path, idx) {
            if let Some(f) = ["lib.rs", "main.rs"].iter().find_map(|f| idx.file(&in_dir(&dir, f))) {
                chain.insert(0, (f, dir));
            }
        }
    }
    vec![chain]
}

/// The library root file of the workspace crate `ident` names in `path`: its own name, or the
/// name a dependency is renamed to (`x = { package = "y" }`).
fn rust_crate_lib(path: &str, ident: &str, idx: &Index) -> Option<String> {
    let own = rust_crate_of(path, idx);
    let manifest_dir = match own.and_then(|c| c.renames.get(ident)) {
        Some(package) => idx.crate_by_package.get(package)?,
        None => idx.crate_by_ident.get(ident)?,
    };
    let target = idx.crates.get(manifest_dir)?;
    // Only a dependency, or the package's own library (from its tests and binaries).
    let reachable =
        own.is_none_or(|c| c.lib == target.lib || c.renames.contains_key(ident) || c.deps.contains(&target.package));
    target.lib.clone().filter(|_| reachable)
}

/// Resolve a path written in the module `chain` ends with (`depth` inline modules down) to the
/// files of the modules defining what it names, following `pub use` re-exports (at most
/// `hops`). A name can be a module and an item at once (`mod registry;` and `fn registry()`): a
/// `use` takes both, `value` (a call, a macro, an attribute) only the item. The flag says whether
/// the item was found defined there (or the path names a module), rather than assumed. `use`
/// paths may start with a child module's name (2018 edition).
fn rust_resolve(
    chain: &[(String, String)],
    depth: usize,
    segs: &[String],
    in_use: bool,
    value: bool,
    idx: &Index,
    hops: usize,
) -> Vec<(String, bool)> {
    let Some((here, _)) = chain.last() else { return Vec::new() };
    let Some(first) = segs.first() else { return Vec::new() };
    let mut rest = &segs[1..];
    let mut external = false;
    let mut cur: RustChain = match first.as_str() {
        "crate" => chain[..1].to_vec(),
        // Inside an inline module, `self` is that module: the same file.
        "self" if depth > 0 => return Vec::new(),
        "self" => chain.to_vec(),
        "super" => {
            let mut up = 1usize;
            while rest.first().is_some_and(|s| s == "super") {
                up += 1;
                rest = &rest[1..];
            }
            // Out of the inline modules first, then up the files' modules.
            match up.checked_sub(depth).and_then(|up| chain.len().checked_sub(up)).filter(|n| *n > 0) {
                Some(n) => chain[..n].to_vec(),
                None => return Vec::new(),
            }
        }
        ident => {
            let declares = |f: &RustFile| f.mods.iter().any(|(m, _, _)| m == ident);
            if in_use && depth == 0 && idx.rust_files.get(here).is_some_and(declares) {
                rest = segs;
                chain.to_vec()
            } else {
                let Some(lib) = rust_crate_lib(here, ident, idx) else { return Vec::new() };
                let dir = dir_of(&lib).to_string();
                // Another crate (a package's tests and binaries are crates of their own too).
                external = chain[0].0 != lib;
                vec![(lib, dir)]
            }
        }
    };
    // Descend through declared modules as far as the path names modules (the last segment of a
    // `value` path is no module).
    let mut out = Vec::new();
    for (i, seg) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        // The asker's own module or an ancestor: its private imports are visible too.
        let private = cur.len() <= chain.len() && cur.iter().zip(chain).all(|(a, b)| a.0 == b.0);
        let Some((file, dir)) = cur.last() else { break };
        match rust_child_named(file, dir, seg, external, idx).filter(|_| !(last && value)) {
            Some(child) if last => {
                // The module, and an item of the same name beside it when a `use` takes both.
                out.push((child.0, true));
                if in_use {
                    let beside = rust_item(&cur, None, seg, &[], false, private, true, idx, hops);
                    out.extend(beside.into_iter().filter(|h| h.1));
                }
                return out;
            }
            Some(child) => cur.push(child),
            None => return rust_item(&cur, None, seg, &rest[i + 1..], value, private, false, idx, hops),
        }
    }
    cur.pop().map(|(f, _)| (f, true)).into_iter().collect()
}

/// `name` (followed by `more` segments) looked up as an item of the module `chain` ends with
/// (of its inline module `scope` when given): defined there, a `#[macro_export]` macro of that
/// crate root, or re-exported by a `use` (a private one too when `private`: the module is the
/// asker's own or an ancestor). All of them for a `use`; for a `value`, the first found. Glob
/// imports are looked at last, and not at all beside a module of that name (`beside_module`),
/// which shadows them.
#[allow(clippy::too_many_arguments)]
fn rust_item(
    chain: &[(String, String)],
    scope: Option<&str>,
    name: &str,
    more: &[String],
    value: bool,
    private: bool,
    beside_module: bool,
    idx: &Index,
    hops: usize,
) -> Vec<(String, bool)> {
    let Some((file, _)) = chain.last() else { return Vec::new() };
    let Some(parsed) = idx.rust_files.get(file) else { return vec![(file.clone(), false)] };
    let mut out = Vec::new();
    match scope {
        // An inline module: the path goes on inside it.
        None if parsed.inline.contains_key(name) => match more.split_first() {
            Some((next, more)) => return rust_item(chain, Some(name), next, more, value, private, false, idx, hops),
            None => out.push((file.clone(), true)),
        },
        None => {
            // Only types and traits have paths under them.
            if parsed.types.contains(name) || (more.is_empty() && parsed.values.contains(name)) {
                out.push((file.clone(), true));
            }
            if let Some(f) = idx.rust_macros.get(file).and_then(|m| m.get(name)).filter(|_| more.is_empty()) {
                out.push((f.clone(), true));
            }
        }
        Some(s) => {
            if parsed.inline.get(s).is_some_and(|items| items.contains(name)) {
                out.push((file.clone(), true));
            }
        }
    }
    if hops == 0 || (!out.is_empty() && (value || !more.is_empty())) {
        return if out.is_empty() { vec![(file.clone(), false)] } else { out };
    }
    // Not defined here (or also imported): maybe the module re-exports it, by name or by glob.
    let depth = usize::from(scope.is_some());
    let reexports = || {
        let here = |u: &&RustUse| u.depth == depth && u.scope.as_deref() == scope;
        parsed.uses.iter().filter(move |u| (u.public || private) && here(u))
    };
    let mut named = false;
    for u in reexports().filter(|u| u.name == name) {
        named = true;
        let next: Vec<String> = u.segs.iter().chain(more).cloned().collect();
        out.extend(rust_resolve(chain, depth, &next, true, value, idx, hops - 1));
    }
    if !out.is_empty() || beside_module {
        return out;
    }
    for u in reexports().filter(|u| u.name == "*") {
        let next: Vec<String> = u.segs.iter().chain(std::iter::once(&name.to_string())).chain(more).cloned().collect();
        let found: Vec<(String, bool)> =
            rust_resolve(chain, depth, &next, true, false, idx, hops - 1).into_iter().filter(|h| h.1).collect();
        if !found.is_empty() {
            return found;
        }
    }
    // A name imported from outside the repository (and from no glob of it) is not defined here.
    if named {
        return Vec::new();
    }
    vec![(file.clone(), false)]
}

fn rust(path: &str, idx: &Index) -> Vec<String> {
    let Some(parsed) = idx.rust_files.get(path) else { return Vec::new() };
    let names_crate = |s: &str| {
        matches!(s, "crate" | "self" | "super")
            || idx.crate_by_ident.contains_key(s)
            || rust_crate_of(path, idx).is_some_and(|c| c.renames.contains_key(s))
    };
    let mut out = Vec::new();
    for chain in rust_chains(path, idx) {
        let Some((_, dir)) = chain.last() else { continue };
        for (m, attr, _) in &parsed.mods {
            out.extend(rust_child(path, dir, m, attr.as_deref(), &idx.all).map(|c| c.0));
        }
        // `use` paths, and inline paths in code (`grep_searcher::Sink`, `crate::x::f()`).
        for u in &parsed.uses {
            out.extend(rust_resolve(&chain, u.depth, &u.segs, true, false, idx, 4).into_iter().map(|h| h.0));
        }
        for p in parsed.paths.iter().filter(|p| p.segs.first().is_some_and(|s| names_crate(s))) {
            out.extend(rust_resolve(&chain, p.depth, &p.segs, false, p.value, idx, 4).into_iter().map(|h| h.0));
        }
    }
    out
}

/// Candidate files for a JS/TS module path without extension resolution yet.
fn js_candidates(base: &str) -> Vec<String> {
    let mut c = vec![base.to_string()];
    for ext in ["ts", "tsx", "d.ts", "js", "jsx", "mjs", "cjs", "mts", "cts"] {
        c.push(format!("{base}.{ext}"));
    }
    for ext in ["ts", "tsx", "js", "jsx", "mts", "mjs"] {
        c.push(format!("{base}/index.{ext}"));
    }
    // TypeScript ESM writes `./x.js` for the source `./x.ts`.
    if let Some((b, ext)) = base.rsplit_once('.') {
        if matches!(ext, "js" | "jsx" | "mjs" | "cjs") && !b.ends_with('/') {
            for ext in ["ts", "tsx", "mts", "cts"] {
                c.push(format!("{b}.{ext}"));
            }
        }
    }
    c
}

fn js_file(base: &str, idx: &Index) -> Option<String> {
    js_candidates(base).iter().find_map(|c| idx.file(c).filter(|f| lang(f) == Some(Lang::Js)))
}

/// A package entry as written (`./dist/index.mjs`) → the source file it is built from.
fn js_entry(pkg_dir: &str, target: &str, idx: &Index) -> Option<String> {
    let t = join(pkg_dir, target)?;
    if let Some(f) = js_file(&t, idx) {
        return Some(f);
    }
    // Build output lives in dist/, lib/, build/ or out/; the source of the same name in src/.
    let rel = t.strip_prefix(pkg_dir).unwrap_or(&t).trim_start_matches('/');
    let (top, rest) = rel.split_once('/')?;
    if !matches!(top, "dist" | "lib" | "build" | "out" | "esm" | "cjs" | "types") {
        return None;
    }
    let mut stem = rest.to_string();
    for ext in [".d.mts", ".d.cts", ".d.ts", ".mjs", ".cjs", ".js", ".mts", ".cts"] {
        if let Some(s) = stem.strip_suffix(ext) {
            stem = s.to_string();
            break;
        }
    }
    js_file(&in_dir(pkg_dir, &format!("src/{stem}")), idx)
}

fn js_package(spec: &str, idx: &Index) -> Option<String> {
    // `@scope/name/sub` or `name/sub`: the package name is one or two segments.
    let mut parts = spec.splitn(3, '/');
    let first = parts.next()?;
    let (name, sub) = if first.starts_with('@') {
        let second = parts.next()?;
        (format!("{first}/{second}"), parts.next().unwrap_or(""))
    } else {
        let rest = spec.split_once('/').map(|(_, r)| r).unwrap_or("");
        (first.to_string(), rest)
    };
    let pkg = idx.js_packages.get(&name)?;
    let key = if sub.is_empty() { ".".to_string() } else { format!("./{sub}") };
    for (k, target) in &pkg.entries {
        if *k == key {
            if let Some(f) = js_entry(&pkg.dir, target, idx) {
                return Some(f);
            }
        }
        // `./*` patterns in exports.
        if let Some(prefix) = k.strip_suffix('*') {
            if let Some(star) = key.strip_prefix(prefix) {
                if let Some(f) = js_entry(&pkg.dir, &target.replace('*', star), idx) {
                    return Some(f);
                }
            }
        }
    }
    if sub.is_empty() {
        ["src/index", "index"].iter().find_map(|b| js_file(&in_dir(&pkg.dir, b), idx))
    } else {
        js_file(&in_dir(&pkg.dir, sub), idx).or_else(|| js_file(&in_dir(&pkg.dir, &format!("src/{sub}")), idx))
    }
}

/// The tsconfig that governs a file: the closest one in its folder or above.
fn js_tsconfig<'i>(path: &str, idx: &'i Index) -> Option<&'i TsConfig> {
    let mut dir = dir_of(path);
    loop {
        if let Some(c) = idx.tsconfigs.get(dir) {
            return Some(c);
        }
        if dir.is_empty() {
            return None;
        }
        dir = dir_of(dir);
    }
}

fn js(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static SPEC: OnceLock<Regex> = OnceLock::new();
    let spec = re(
        &SPEC,
        r#"(?:\bimport\s+(?:[^'";]*?\s+from\s+)?|\bexport\s+[^'";]*?\s+from\s+|\brequire\s*\(\s*|\bimport\s*\(\s*)['"]([^'"]+)['"]"#,
    );
    let dir = dir_of(path);
    let config = js_tsconfig(path, idx);
    let mut out = Vec::new();
    for c in spec.captures_iter(text) {
        let s = &c[1];
        if s.starts_with("./") || s.starts_with("../") || s == "." || s == ".." {
            out.extend(join(dir, s).and_then(|b| js_file(&b, idx)));
            continue;
        }
        // tsconfig `paths` first (longest prefix wins), then `baseUrl`, then workspace packages.
        let mut hit = None;
        if let Some(cfg) = config {
            let base = cfg.base_url.clone().unwrap_or_else(|| cfg.paths_base.clone());
            let mut best: Option<(usize, &Vec<String>, &str)> = None;
            for (pattern, targets) in &cfg.paths {
                let matched = match pattern.split_once('*') {
                    Some((pre, post)) => {
                        s.strip_prefix(pre).and_then(|r| r.strip_suffix(post)).map(|star| (pre.len(), star))
                    }
                    None => (pattern == s).then_some((usize::MAX, "")),
                };
                if let Some((len, star)) = matched {
                    if best.is_none_or(|b| len > b.0) {
                        best = Some((len, targets, star));
                    }
                }
            }
            if let Some((_, targets, star)) = best {
                hit = targets.iter().find_map(|t| join(&base, &t.replace('*', star)).and_then(|b| js_file(&b, idx)));
            }
            if hit.is_none() {
                if let Some(b) = &cfg.base_url {
                    hit = join(b, s).and_then(|b| js_file(&b, idx));
                }
            }
        }
        out.extend(hit.or_else(|| js_package(s, idx)));
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
        // The longest module path that prefixes the import owns it (go_mods is sorted so).
        let owner = idx.go_mods.iter().find_map(|(module, mod_dir)| {
            let rel = if s == *module { "" } else { s.strip_prefix(module.as_str())?.strip_prefix('/')? };
            Some(in_dir(mod_dir, rel))
        });
        if let Some(files) = owner.and_then(|d| idx.go_dirs.get(d.as_str())) {
            out.extend(files.iter().map(|f| f.to_string()));
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

    #[test]
    fn rust_workspace_crates_renames_and_reexports() {
        // ripgrep's shape: printer uses searcher's `Sink`, defined in sink.rs and re-exported from
        // its lib.rs; a renamed dependency (Cargo knows it by the new name only); a glob re-export.
        let g = graph(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n"),
            ("crates/searcher/Cargo.toml", "[package]\nname = \"grep-searcher\"\n"),
            ("crates/searcher/src/lib.rs", "pub use crate::{sink::{Sink, SinkError}, glob::*};\nmod sink;\nmod glob;\n"),
            ("crates/searcher/src/sink.rs", "pub trait Sink {}\npub trait SinkError {}\n"),
            ("crates/searcher/src/glob.rs", "pub struct Globbed;\n"),
            (
                "crates/printer/Cargo.toml",
                "[package]\nname = \"grep-printer\"\n\n[dependencies]\nsearch = { package = \"grep-searcher\", path = \"../searcher\" }\n",
            ),
            ("crates/printer/src/lib.rs", "mod standard;\n"),
            (
                "crates/printer/src/standard.rs",
                "use {\n    search::{Sink, SinkError},\n    std::io,\n};\n\nfn f(x: search::Globbed) {}\n// grep_searcher::nothing in a comment\n",
            ),
        ]);
        assert_eq!(
            deps(&g, "crates/printer/src/standard.rs"),
            vec!["crates/searcher/src/glob.rs", "crates/searcher/src/sink.rs"]
        );
        assert_eq!(
            deps(&g, "crates/searcher/src/lib.rs"),
            vec!["crates/searcher/src/glob.rs", "crates/searcher/src/sink.rs"]
        );
    }

    #[test]
    fn rust_crate_roots_from_cargo_targets_and_path_attributes() {
        // ripgrep's shape: the binary's root is `[[bin]] path`, integration tests are one crate
        // (`autotests = false`, tests/tests.rs declaring its siblings), and `#[path]` picks one
        // of two files for a module.
        let g = graph(&[
            (
                "Cargo.toml",
                "[package]\nname = \"rg\"\nautotests = false\n\n[[bin]]\nname = \"rg\"\npath = \"crates/core/main.rs\"\n\n[[test]]\nname = \"integration\"\npath = \"tests/tests.rs\"\n",
            ),
            ("crates/core/main.rs", "mod flags;\nmod index;\nmod search;\n\nfn search() {}\n"),
            ("crates/core/search.rs", ""),
            ("crates/core/flags/mod.rs", "pub(crate) use self::hiargs::HiArgs;\n\nmod hiargs;\n"),
            ("crates/core/flags/hiargs.rs", "pub(crate) struct HiArgs;\n"),
            (
                "crates/core/index/mod.rs",
                "#[cfg(not(feature = \"x\"))]\n#[path = \"disabled.rs\"]\nmod imp;\n\n#[cfg(feature = \"x\")]\n#[path = \"enabled.rs\"]\nmod imp;\n",
            ),
            ("crates/core/index/disabled.rs", ""),
            // `crate::search(…)` is the function in main.rs, not the module search.rs.
            ("crates/core/index/enabled.rs", "use crate::flags::HiArgs;\n\npub fn run() {\n    crate::search();\n}\n"),
            ("tests/tests.rs", "#[macro_use]\nmod macros;\nmod misc;\nmod util;\n"),
            ("tests/macros.rs", ""),
            ("tests/util.rs", "pub struct Dir;\n"),
            ("tests/misc.rs", "use crate::util::Dir;\n"),
        ]);
        assert_eq!(
            deps(&g, "crates/core/main.rs"),
            vec!["crates/core/flags/mod.rs", "crates/core/index/mod.rs", "crates/core/search.rs"]
        );
        assert_eq!(
            deps(&g, "crates/core/index/mod.rs"),
            vec!["crates/core/index/disabled.rs", "crates/core/index/enabled.rs"]
        );
        assert_eq!(
            deps(&g, "crates/core/index/enabled.rs"),
            vec!["crates/core/flags/hiargs.rs", "crates/core/main.rs"]
        );
        assert_eq!(deps(&g, "tests/tests.rs"), vec!["tests/macros.rs", "tests/misc.rs", "tests/util.rs"]);
        assert_eq!(deps(&g, "tests/misc.rs"), vec!["tests/util.rs"]);
    }

    #[test]
    fn rust_inline_modules_and_use_paths_through_child_modules() {
        let g = graph(&[
            ("Cargo.toml", "[package]\nname = \"idx\"\n"),
            (
                "src/lib.rs",
                // `super` in `mod tests` is lib.rs itself; braces and quotes in literals are no code.
                "pub use index::{Builder, Index};\nmod index;\npub mod literal;\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::literal::Lit;\n\n    fn f() {\n        let (c, s) = ('{', r#\"}\" \"#);\n        let q = '\"';\n        super::index::Index::new();\n    }\n}\n",
            ),
            (
                "src/index.rs",
                "pub struct Index;\npub struct Builder;\n\nmod tests {\n    use super::*;\n    use super::super::literal::Lit;\n}\n",
            ),
            ("src/literal.rs", "pub struct Lit;\n"),
        ]);
        assert_eq!(deps(&g, "src/lib.rs"), vec!["src/index.rs", "src/literal.rs"]);
        assert_eq!(deps(&g, "src/index.rs"), vec!["src/literal.rs"]);
    }

    #[test]
    fn rust_reexported_crates_exported_macros_and_items_beside_modules() {
        // tracing's and ripgrep's shapes: `pub extern crate x as y`, `#[macro_export]` macros
        // living at the crate root, `registry` both a module and a function.
        let g = graph(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n"),
            ("crates/cli/Cargo.toml", "[package]\nname = \"grep-cli\"\n"),
            ("crates/cli/src/lib.rs", "mod human;\npub use crate::human::parse;\n"),
            ("crates/cli/src/human.rs", "pub fn parse() {}\n"),
            ("crates/grep/Cargo.toml", "[package]\nname = \"grep\"\n\n[dependencies]\ngrep-cli = { path = \"../cli\" }\n"),
            ("crates/grep/src/lib.rs", "pub extern crate grep_cli as cli;\n"),
            ("crates/tr/Cargo.toml", "[package]\nname = \"tr\"\n"),
            (
                "crates/tr/src/lib.rs",
                "#[macro_use]\nmod macros;\npub mod registry;\npub mod span;\n\npub fn registry() {}\npub fn span() {}\n",
            ),
            ("crates/tr/src/macros.rs", "#[macro_export]\nmacro_rules! info {\n    () => { $crate::registry() };\n}\n"),
            ("crates/tr/src/registry.rs", "pub struct Registry;\n"),
            ("crates/tr/src/span.rs", ""),
            (
                "crates/app/Cargo.toml",
                "[package]\nname = \"app\"\n\n[dependencies]\ngrep = { path = \"../grep\" }\n\n[dependencies.tr]\npath = \"../tr\"\n",
            ),
            (
                "crates/app/src/main.rs",
                "use tr::registry;\n\n#[tr::span]\nfn main() {\n    let _ = grep::cli::parse();\n    tr::info!();\n    tr::registry();\n}\n",
            ),
        ]);
        assert_eq!(
            deps(&g, "crates/app/src/main.rs"),
            vec![
                "crates/cli/src/human.rs",
                "crates/tr/src/lib.rs",
                "crates/tr/src/macros.rs",
                "crates/tr/src/registry.rs"
            ]
        );
        assert_eq!(deps(&g, "crates/grep/src/lib.rs"), vec!["crates/cli/src/lib.rs"]);
        assert_eq!(deps(&g, "crates/tr/src/macros.rs"), vec!["crates/tr/src/lib.rs"]);
    }

    #[test]
    fn rust_names_from_outside_inline_module_items_and_dependencies() {
        // regex's and tracing-subscriber's shapes.
        let g = graph(&[
            ("Cargo.toml", "[package]\nname = \"regex\"\n\n[workspace]\nmembers = [\"regex-automata\"]\n"),
            (
                "src/lib.rs",
                "pub use crate::{builders::string::*, meta::Meta, regex::string::*};\nmod builders;\nmod meta;\nmod regex;\npub mod r#match;\nmod sync;\nmod cache;\n\nstatic M: &'static Meta = &Meta;\n",
            ),
            // Globs look into inline modules for what they really hold.
            ("src/builders.rs", "pub(crate) mod string {\n    pub struct RegexBuilder;\n}\n"),
            ("src/meta.rs", "pub struct Meta;\n"),
            ("src/regex/mod.rs", "pub(crate) mod string;\n"),
            ("src/regex/string.rs", "pub struct Regex;\n"),
            ("src/match.rs", "pub struct Match;\n"),
            // One name from std, another from std or (with a feature) from here.
            (
                "src/sync.rs",
                "#[cfg(not(feature = \"parking_lot\"))]\npub(crate) use std::sync::{RwLock, RwLockReadGuard};\n\n#[cfg(feature = \"parking_lot\")]\npub(crate) use self::imp::*;\n\nmod imp {\n    pub(crate) use parking_lot::RwLockReadGuard;\n    pub(crate) struct RwLock;\n}\n",
            ),
            ("src/cache.rs", "use crate::sync::{RwLock, RwLockReadGuard};\n\nfn f(m: crate::Meta) {}\n"),
            ("tests/misc.rs", "use regex::{Regex, RegexBuilder};\nuse regex::r#match::Match;\n"),
            // `regex` here is a local alias, and the package does not depend on the crate `regex`.
            ("regex-automata/Cargo.toml", "[package]\nname = \"regex-automata\"\n"),
            ("regex-automata/src/lib.rs", "pub mod hybrid;\n"),
            ("regex-automata/src/hybrid.rs", "pub mod regex {\n    pub struct Regex;\n    pub struct Builder;\n}\n"),
            ("regex-automata/tests/suite.rs", "use regex_automata::hybrid::regex::{self, Regex};\n\nfn f(b: regex::Builder) {}\n"),
        ]);
        assert_eq!(deps(&g, "tests/misc.rs"), vec!["src/builders.rs", "src/match.rs", "src/regex/string.rs"]);
        assert_eq!(deps(&g, "src/cache.rs"), vec!["src/meta.rs", "src/sync.rs"]);
        assert_eq!(deps(&g, "regex-automata/tests/suite.rs"), vec!["regex-automata/src/hybrid.rs"]);
    }

    #[test]
    fn js_path_aliases_workspace_packages_and_index_files() {
        // tRPC's shape: root tsconfig `paths` to package sources, a package tsconfig extending it,
        // and a package imported by name whose package.json points at build output.
        let g = graph(&[
            (
                "tsconfig.json",
                "{\n  // comments and trailing commas are allowed\n  \"compilerOptions\": {\"paths\": {\"@acme/server\": [\"./packages/server/src\"], \"@acme/server/*\": [\"./packages/server/src/*\"],}}\n}\n",
            ),
            ("packages/server/tsconfig.json", "{\"extends\": \"../../tsconfig.json\"}"),
            ("packages/server/src/index.ts", "export * from './core';\n"),
            ("packages/server/src/core/index.ts", ""),
            ("packages/server/src/adapters/next.ts", ""),
            ("packages/client/package.json", "{\"name\": \"@acme/client\", \"exports\": {\".\": {\"import\": \"./dist/index.mjs\"}}}"),
            ("packages/client/src/index.ts", "import { a } from '@acme/server';\nimport n from '@acme/server/adapters/next';\n"),
            ("apps/web/tsconfig.json", "{\"compilerOptions\": {\"baseUrl\": \".\", \"paths\": {\"~/*\": [\"src/*\"]}}}"),
            ("apps/web/src/page.tsx", "import { c } from '@acme/client';\nimport u from '~/util';\n"),
            ("apps/web/src/util.ts", ""),
        ]);
        assert_eq!(
            deps(&g, "packages/client/src/index.ts"),
            vec!["packages/server/src/adapters/next.ts", "packages/server/src/index.ts"]
        );
        assert_eq!(deps(&g, "packages/server/src/index.ts"), vec!["packages/server/src/core/index.ts"]);
        assert_eq!(deps(&g, "apps/web/src/page.tsx"), vec!["apps/web/src/util.ts", "packages/client/src/index.ts"]);
    }

    #[test]
    fn python_src_layouts_namespace_packages_and_multiline_imports() {
        let g = graph(&[
            ("libs/core/pyproject.toml", ""),
            ("libs/core/src/acme/core/__init__.py", ""),
            ("libs/core/src/acme/core/models.py", ""),
            ("libs/core/src/acme/core/compat.py", ""),
            // `acme` has no __init__.py: a namespace package.
            (
                "libs/core/src/acme/core/structures.py",
                "from typing import Any, overload\n\nfrom .compat import MutableMapping\nfrom . import (\n    models,  # the models\n)\n",
            ),
            ("app/main.py", "from acme.core.models import User\nimport acme.core\n"),
        ]);
        assert_eq!(
            deps(&g, "libs/core/src/acme/core/structures.py"),
            vec!["libs/core/src/acme/core/compat.py", "libs/core/src/acme/core/models.py"]
        );
        assert_eq!(
            deps(&g, "app/main.py"),
            vec!["libs/core/src/acme/core/__init__.py", "libs/core/src/acme/core/models.py"]
        );
    }

    #[test]
    fn go_nested_modules_workspaces_and_replacements() {
        let g = graph(&[
            ("go.work", "go 1.22\n\nuse (\n\t.\n\t./tools\n)\n"),
            ("go.mod", "module example.com/shop\n\nreplace example.com/vendored/x => ./third_party/x\n"),
            ("tools/go.mod", "module example.com/shop/tools\n"),
            ("tools/gen/gen.go", "package gen\n"),
            ("third_party/x/x.go", "package x\n"),
            ("testdata/proto/p.go", "package proto\n"),
            (
                "main.go",
                "package main\n\nimport (\n\t\"example.com/shop/tools/gen\"\n\t\"example.com/vendored/x\"\n\t\"example.com/shop/testdata/proto\"\n)\n",
            ),
        ]);
        assert_eq!(deps(&g, "main.go"), vec!["testdata/proto/p.go", "third_party/x/x.go", "tools/gen/gen.go"]);
    }
}
