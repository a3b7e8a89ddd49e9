//! Import graph of the repository: which tracked file imports which other tracked file.
//!
//! Languages and what resolves:
//! - Python: `import`, `from … import`, relative imports; source roots are the repository top,
//!   `src/`, `lib/`, `python/`, and every folder holding a `pyproject.toml`, `setup.py` or
//!   `setup.cfg` (and its `src/`); namespace packages (folders without `__init__.py`) resolve by path.
//!   Test files (and their package) resolve from pytest's basedir first; a name several packages
//!   share goes to the one nearest the importer; triple-quoted strings are not read.
//! - Rust: `mod x;` (with `#[path]`), `use` and inline paths through `crate`, `self`, `super`, child
//!   modules (in `use`) and the workspace crates the package depends on (by package name, `[lib]
//!   name`, or a renamed dependency `x = { package = "y" }`); modules are followed down from each
//!   crate root Cargo knows (`[lib]`, `[[bin]]`/`[[test]]`… paths, auto-discovered targets), and
//!   `super`/`self` inside inline modules mean those; `pub use` re-exports and `pub extern crate`
//!   are followed (also globs) to the module that defines the item, `#[macro_export]` macros to
//!   their file.
//! - JavaScript/TypeScript: `import … from`, `export … from`, `import()`, `require()` (not in
//!   comments, strings or template text); relative specifiers in the compiler's extension order
//!   (`./x.js` is `./x.ts`), folders through their package.json or index file, tsconfig `paths`
//!   and `baseUrl` (with `extends`), subpath imports (`#x`), packages by name as an install links
//!   them (the closest package.json declaring the name: `file:`/`link:` folders, `npm:` aliases,
//!   else the workspace package of that name; `exports` with the compiler's conditions in written
//!   order, else `types`/`main`; build output mapped back to `src/`).
//! - Go: packages of the importer's module, of its local `replace` targets, and of the other
//!   modules of the go.work that lists it (the longest module path winning, a nested module's
//!   folders excluded); a module required at a published version is not the repository's copy.
//!   Only the import section of a file is read.
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

/// A package.json of the repository.
#[derive(Debug, Default)]
struct JsPackage {
    dir: String,
    name: Option<String>,
    /// Subpath (`.` or `./x`) → target as written in `exports`, else `types`, `main`, `module`.
    entries: Vec<(String, String)>,
    /// Whether `exports` exists: then it alone says what the package's names resolve to.
    has_exports: bool,
    /// What a folder import (`./dir`) loads: `types`, `typings`, `main`, `module`, as written.
    main: Vec<String>,
    /// `imports` (subpath imports, `#x`) → target as written.
    imports: Vec<(String, String)>,
    /// Declared dependencies: name → version specifier (`workspace:*`, `file:../x`, `^1`).
    deps: HashMap<String, String>,
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
    /// Python dotted module name → files (`a.b` → `a/b.py` or `a/b/__init__.py`) under the source
    /// roots, in root order; several when packages of the repository share a name (`tests`).
    py_modules: HashMap<String, Vec<&'a str>>,
    /// Folders holding an `__init__.py`, and the basedirs of test files (see `py_basedir`).
    py_packages: HashSet<&'a str>,
    py_test_basedirs: HashSet<&'a str>,
    /// directory → its Go files (non-test).
    go_dirs: HashMap<&'a str, Vec<&'a str>>,
    /// Module directory → the modules its packages' imports can resolve to inside the
    /// repository, as (module path, directory), longest path first (see `go_scope`).
    go_scopes: HashMap<String, Vec<(String, String)>>,
    /// For Go files under no go.mod: every module and local `replace` of the repository.
    go_all: Vec<(String, String)>,
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
    /// Folder of every package.json → package; package name → folder; tsconfig folder → options.
    js_packages: HashMap<String, JsPackage>,
    js_names: HashMap<String, String>,
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
    let mut py_modules: HashMap<String, Vec<&str>> = HashMap::new();
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
                    let files = py_modules.entry(rel.replace('/', ".")).or_default();
                    if !files.contains(&p.as_str()) {
                        files.push(p.as_str());
                    }
                }
            }
        } else if p.ends_with(".go") && !p.ends_with("_test.go") {
            go_dirs.entry(dir_of(p)).or_default().push(p.as_str());
        }
    }

    let py_packages: HashSet<&str> = paths
        .iter()
        .filter_map(|p| p.strip_suffix("/__init__.py"))
        .chain(paths.iter().filter(|p| *p == "__init__.py").map(|_| ""))
        .collect();
    let py_test_basedirs: HashSet<&str> =
        paths.iter().filter(|p| py_is_test(p)).map(|p| py_basedir(p, &py_packages)).collect();

    let mut go_mods: HashMap<String, GoMod> = HashMap::new();
    let mut go_works: HashMap<String, GoMod> = HashMap::new();
    let mut crates = HashMap::new();
    let mut js_packages = HashMap::new();
    let mut js_names = HashMap::new();
    let mut raw_tsconfigs: HashMap<String, serde_json::Value> = HashMap::new();
    for (path, text) in &manifests {
        let name = path.rsplit('/').next().unwrap_or(path);
        let dir = dir_of(path).to_string();
        match name {
            "go.mod" => {
                go_mods.insert(dir.clone(), go_mod(&dir, text));
            }
            "go.work" => {
                go_works.insert(dir.clone(), go_mod(&dir, text));
            }
            "Cargo.toml" => {
                if let Some(c) = cargo_manifest(&dir, text, &all) {
                    crates.insert(dir, c);
                }
            }
            "package.json" => {
                if let Some(pkg) = package_json(&dir, text) {
                    if let Some(n) = &pkg.name {
                        js_names.insert(n.clone(), dir.clone());
                    }
                    js_packages.insert(dir, pkg);
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
    let go_scopes = go_mods.keys().map(|d| (d.clone(), go_scope(d, &go_mods, &go_works))).collect();
    let mut go_all: Vec<(String, String)> = go_mods
        .iter()
        .flat_map(|(d, m)| m.path.iter().map(move |p| (p.clone(), d.clone())).chain(m.replaces.iter().cloned()))
        .collect();
    go_all.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
    go_all.dedup();
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
        py_packages,
        py_test_basedirs,
        go_dirs,
        go_scopes,
        go_all,
        crates,
        crate_by_ident,
        crate_by_package,
        rust_files,
        rust_tree,
        rust_macros,
        js_packages,
        js_names,
        tsconfigs,
    };
    // (file, what it imports, the part of it that only declares child modules)
    let edges: Vec<(String, BTreeSet<String>, BTreeSet<String>)> = contents
        .par_iter()
        .filter_map(|(path, bytes)| {
            let lang = lang(path)?;
            let mut declared = BTreeSet::new();
            let deps: BTreeSet<String> = match lang {
                Lang::Rust => {
                    let used: BTreeSet<String> = rust_uses(path, &index).into_iter().collect();
                    declared = rust_mods(path, &index).into_iter().filter(|m| !used.contains(m)).collect();
                    used.into_iter().chain(declared.iter().cloned()).collect()
                }
                other => {
                    let text = std::str::from_utf8(bytes).ok()?;
                    match other {
                        Lang::Python => python(path, text, &index),
                        Lang::Js => js(path, text, &index),
                        _ => go(path, text, &index),
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

/// What resolution needs from a go.mod (or a go.work) in `dir`.
#[derive(Debug, Default)]
struct GoMod {
    /// `module` path (go.mod).
    path: Option<String>,
    /// Local `replace` targets: (module path, directory).
    replaces: Vec<(String, String)>,
    /// Directories of `use` (go.work).
    uses: Vec<String>,
}

fn go_mod(dir: &str, text: &str) -> GoMod {
    static REPLACE: OnceLock<Regex> = OnceLock::new();
    let replace = re(&REPLACE, r"(?m)^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\.{1,2}/\S*|\.{1,2})\s*(?://.*)?$");
    let mut out = GoMod::default();
    let mut in_use = false;
    for line in text.lines() {
        let l = line.split("//").next().unwrap_or("").trim();
        if let Some(m) = l.strip_prefix("module ") {
            out.path = Some(m.trim().trim_matches('"').to_string());
        }
        // `use ./a` or a `use (` block of one folder a line.
        let used = if in_use {
            in_use = l != ")";
            (in_use && !l.is_empty()).then_some(l)
        } else if l.starts_with("use ") || l.starts_with("use\t") || l.starts_with("use(") {
            let rest = l[3..].trim();
            in_use = rest == "(";
            (!in_use).then_some(rest)
        } else {
            None
        };
        if let Some(u) = used.and_then(|u| join(dir, u.trim_matches('"'))) {
            out.uses.push(u);
        }
    }
    for c in replace.captures_iter(text) {
        if let Some(target) = join(dir, &c[2]) {
            out.replaces.push((c[1].to_string(), target));
        }
    }
    out
}

/// The modules the packages of the module in `dir` import from inside the repository, as the go
/// command resolves them: the module itself and its local `replace`s, or, when the nearest
/// go.work above it lists it, every module of that workspace with their local `replace`s (the
/// go.work's own first). Any other module of the repository comes from the module cache at a
/// published version, not from its folder here. Longest module path first.
fn go_scope(dir: &str, mods: &HashMap<String, GoMod>, works: &HashMap<String, GoMod>) -> Vec<(String, String)> {
    let mut work_dir = Some(dir);
    let work = loop {
        match work_dir {
            Some(d) if works.contains_key(d) => break works.get(d),
            Some("") | None => break None,
            Some(d) => work_dir = Some(dir_of(d)),
        }
    };
    // A go.work that does not list the module is no workspace of it (the go command refuses
    // to run there; GOWORK=off is the way out).
    let work = work.filter(|w| w.uses.iter().any(|u| u == dir));
    let members: Vec<&str> = work.map_or(vec![dir], |w| w.uses.iter().map(String::as_str).collect());
    let mut scope: Vec<(String, String)> = work.map(|w| w.replaces.clone()).unwrap_or_default();
    for m in members {
        if let Some(g) = mods.get(m) {
            scope.extend(g.path.iter().map(|p| (p.clone(), m.to_string())));
            scope.extend(g.replaces.iter().cloned());
        }
    }
    // A stable sort keeps the first of equal paths first: the go.work's replacement, then the
    // module's own.
    scope.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
    let mut seen = HashSet::new();
    scope.retain(|(p, _)| seen.insert(p.clone()));
    scope
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

/// JSON that keeps the order of object keys (condition objects in `exports` are matched in the
/// order they are written).
enum OrderedJson {
    Str(String),
    Obj(Vec<(String, OrderedJson)>),
    Arr(Vec<OrderedJson>),
    Other,
}

impl OrderedJson {
    fn get(&self, key: &str) -> Option<&OrderedJson> {
        match self {
            OrderedJson::Obj(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            OrderedJson::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for OrderedJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedJson;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_str<E>(self, s: &str) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Str(s.to_string()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Other)
            }
            fn visit_unit<E>(self) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<OrderedJson, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(OrderedJson::Arr(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<OrderedJson, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry()? {
                    v.push((k, x));
                }
                Ok(OrderedJson::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// The target of an `exports`/`imports` value: in a condition object the first key, in written
/// order, that a type-aware resolver matches (`types`, `import`, `require`, `node`, `default`,
/// and `source`, the condition monorepos add for their sources); `browser`, `module`,
/// `worker`, … are other tools' conditions.
fn js_condition_target(v: &OrderedJson) -> Option<String> {
    match v {
        OrderedJson::Str(s) => Some(s.clone()),
        OrderedJson::Obj(o) => o
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "types" | "import" | "require" | "node" | "default" | "source"))
            .find_map(|(_, v)| js_condition_target(v)),
        OrderedJson::Arr(a) => a.iter().find_map(js_condition_target),
        OrderedJson::Other => None,
    }
}

/// A package.json: name, entries, folder entries, subpath imports, dependencies.
fn package_json(dir: &str, text: &str) -> Option<JsPackage> {
    let v: OrderedJson = serde_json::from_str(text).ok()?;
    let mut pkg = JsPackage {
        dir: dir.to_string(),
        name: v.get("name").and_then(OrderedJson::as_str).map(str::to_string),
        ..JsPackage::default()
    };
    pkg.has_exports = v.get("exports").is_some();
    match v.get("exports") {
        Some(OrderedJson::Obj(o)) if o.iter().all(|(k, _)| k.starts_with('.')) => {
            for (k, t) in o {
                if let Some(t) = js_condition_target(t) {
                    pkg.entries.push((k.clone(), t));
                }
            }
        }
        Some(e) => pkg.entries.extend(js_condition_target(e).map(|t| (".".to_string(), t))),
        None => {}
    }
    // The compiler reads `types`, `typings`, then `main`; `module` is bundlers' ESM entry.
    for key in ["types", "typings", "main", "module", "source"] {
        if let Some(t) = v.get(key).and_then(OrderedJson::as_str) {
            if !pkg.has_exports {
                pkg.entries.push((".".into(), t.to_string()));
            }
            pkg.main.push(t.to_string());
        }
    }
    if let Some(OrderedJson::Obj(o)) = v.get("imports") {
        pkg.imports = o.iter().filter_map(|(k, t)| Some((k.clone(), js_condition_target(t)?))).collect();
    }
    for table in ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"] {
        if let Some(OrderedJson::Obj(o)) = v.get(table) {
            for (k, spec) in o {
                if let Some(spec) = spec.as_str() {
                    pkg.deps.entry(k.clone()).or_insert_with(|| spec.to_string());
                }
            }
        }
    }
    Some(pkg)
}

/// A file pytest collects: `test_*.py`, `*_test.py`, `conftest.py`.
fn py_is_test(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "conftest.py" || (name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py")))
}

/// pytest's basedir of a file (its default `prepend` import mode): the first folder above it
/// without an `__init__.py`, which goes first on `sys.path` while the file is imported.
fn py_basedir<'p>(path: &'p str, packages: &HashSet<&str>) -> &'p str {
    let mut d = dir_of(path);
    while !d.is_empty() && packages.contains(d) {
        d = dir_of(d);
    }
    d
}

/// Python source with the contents of triple-quoted strings blanked (newlines kept), so that
/// code in docstrings and templates is not taken for imports.
fn py_mask_strings(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("\"\"\"") && !text.contains("'''") {
        return std::borrow::Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    let c = b[i];
                    if c == q && (!triple || (b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q))) {
                        i += if triple { 3 } else { 1 };
                        break;
                    }
                    if c == b'\n' && !triple {
                        break;
                    }
                    // An escaped character, a quote included, belongs to the string.
                    let len = if c == b'\\' && i + 1 < b.len() { 2 } else { 1 };
                    if triple {
                        for j in i..i + len {
                            if b[j] != b'\n' {
                                out[j] = b' ';
                            }
                        }
                    }
                    i += len;
                }
            }
            _ => i += 1,
        }
    }
    // Only bytes inside strings were replaced, every byte of a character alike, by spaces.
    std::borrow::Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| text.to_string()))
}

fn python(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static IMPORT: OnceLock<Regex> = OnceLock::new();
    static FROM: OnceLock<Regex> = OnceLock::new();
    let import = re(&IMPORT, r"(?m)^[ \t]*import[ \t]+([A-Za-z0-9_., \t]+?)[ \t]*(?:#.*)?$");
    // Names in parentheses may span lines; without them they end with the line.
    let from =
        re(&FROM, r"(?m)^[ \t]*from[ \t]+(\.*)([A-Za-z0-9_.]*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([A-Za-z0-9_, \t*]+))");
    let text = py_mask_strings(text);
    let module_file = |m: &str| idx.file(&format!("{m}.py")).or_else(|| idx.file(&format!("{m}/__init__.py")));
    // A test file, or a module of its package tree, imports with its basedir first on sys.path.
    let basedir = py_basedir(path, &idx.py_packages);
    let local = idx.py_test_basedirs.contains(basedir).then_some(basedir);
    let here = dir_of(path);
    let lookup = |module: &str| -> Option<String> {
        if let Some(base) = local {
            if let Some(f) = module_file(&in_dir(base, &module.replace('.', "/"))) {
                return Some(f);
            }
        }
        // Packages that share a name: the one nearest the importer (each package's tests run
        // with its own folder on sys.path), the first root on a tie.
        let files = idx.py_modules.get(module)?;
        let shared = |f: &str| here.split('/').zip(dir_of(f).split('/')).take_while(|(a, b)| a == b).count();
        let mut best = *files.first()?;
        for f in &files[1..] {
            if shared(f) > shared(best) {
                best = f;
            }
        }
        Some(best.to_string())
    };
    let mut out = Vec::new();
    for c in import.captures_iter(&text) {
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
    let pkg: Vec<&str> = here.split('/').filter(|s| !s.is_empty()).collect();
    for c in from.captures_iter(&text) {
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

/// The files of the child modules `path` declares (`mod x;`, `#[path]` applied).
fn rust_mods(path: &str, idx: &Index) -> Vec<String> {
    let Some(parsed) = idx.rust_files.get(path) else { return Vec::new() };
    let mut out = Vec::new();
    for chain in rust_chains(path, idx) {
        let Some((_, dir)) = chain.last() else { continue };
        for (m, attr, _) in &parsed.mods {
            out.extend(rust_child(path, dir, m, attr.as_deref(), &idx.all).map(|c| c.0));
        }
    }
    out
}

/// The files defining what `path`'s `use` declarations and paths in code name.
fn rust_uses(path: &str, idx: &Index) -> Vec<String> {
    let Some(parsed) = idx.rust_files.get(path) else { return Vec::new() };
    let names_crate = |s: &str| {
        matches!(s, "crate" | "self" | "super")
            || idx.crate_by_ident.contains_key(s)
            || rust_crate_of(path, idx).is_some_and(|c| c.renames.contains_key(s))
    };
    let mut out = Vec::new();
    for chain in rust_chains(path, idx) {
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

/// Candidate files for a JS/TS module path, in the TypeScript compiler's order.
fn js_candidates(base: &str) -> Vec<String> {
    let mut c = Vec::new();
    // A written extension: the compiler tries its TypeScript counterparts first (ESM code writes
    // `./x.js` for the source `./x.ts`), then the declaration, then the file as written.
    let name = base.rsplit('/').next().unwrap_or(base);
    if let Some((stem, ext)) = name.rsplit_once('.').filter(|(s, _)| !s.is_empty()) {
        let stem = &base[..base.len() - name.len() + stem.len()];
        let exts: &[&str] = match ext {
            "js" | "ts" => &["ts", "tsx", "d.ts", "js", "jsx"],
            "jsx" | "tsx" => &["tsx", "ts", "d.ts", "jsx", "js"],
            "mjs" | "mts" => &["mts", "d.mts", "mjs"],
            "cjs" | "cts" => &["cts", "d.cts", "cjs"],
            _ => &[],
        };
        c.extend(exts.iter().map(|e| format!("{stem}.{e}")));
    }
    // No extension (or a dotted name, `./foo.config`): extensions added, then the folder's index.
    for ext in ["ts", "tsx", "d.ts", "js", "jsx"] {
        c.push(format!("{base}.{ext}"));
    }
    for ext in ["ts", "tsx", "d.ts", "js", "jsx"] {
        c.push(format!("{base}/index.{ext}"));
    }
    // What bundlers and Node add besides (the compiler does not).
    for ext in ["mts", "mjs", "cts", "cjs"] {
        c.push(format!("{base}.{ext}"));
    }
    for ext in ["mts", "mjs"] {
        c.push(format!("{base}/index.{ext}"));
    }
    c
}

fn js_file(base: &str, idx: &Index) -> Option<String> {
    js_candidates(base).iter().find_map(|c| idx.file(c).filter(|f| lang(f) == Some(Lang::Js)))
}

/// A module path as the compiler loads it: a file, else a folder through its package.json
/// (`types`, `main`) before its index file.
fn js_module(base: &str, idx: &Index) -> Option<String> {
    let hit = js_file(base, idx);
    if hit.as_deref().is_none_or(|h| h.starts_with(&format!("{base}/"))) {
        if let Some(f) = idx.js_packages.get(base).and_then(|p| p.main.iter().find_map(|t| js_entry(base, t, idx))) {
            return Some(f);
        }
    }
    hit
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
    // The output mirrors src/ (rootDir src) or the package itself (`dist/src/index.d.ts`).
    js_file(&in_dir(pkg_dir, &format!("src/{stem}")), idx).or_else(|| js_file(&in_dir(pkg_dir, &stem), idx))
}

/// Targets of `key` in an `exports` or `imports` map: the exact key, then `*` patterns, the
/// longest prefix first, `*` replaced by what it matched.
fn js_subpath<'e>(entries: &'e [(String, String)], key: &'e str) -> impl Iterator<Item = String> + 'e {
    let exact = entries.iter().filter(move |(k, _)| k == key).map(|(_, t)| t.clone());
    let mut patterns: Vec<(usize, String)> = entries
        .iter()
        .filter_map(|(k, t)| {
            let (pre, post) = k.split_once('*')?;
            let star = key.strip_prefix(pre)?.strip_suffix(post)?;
            Some((pre.len(), t.replace('*', star)))
        })
        .collect();
    patterns.sort_by_key(|p| std::cmp::Reverse(p.0));
    exact.chain(patterns.into_iter().map(|(_, t)| t))
}

/// The package scope of a file: its closest package.json.
fn js_scope<'i>(path: &str, idx: &'i Index) -> Option<&'i JsPackage> {
    let mut dir = dir_of(path);
    loop {
        if let Some(p) = idx.js_packages.get(dir) {
            return Some(p);
        }
        if dir.is_empty() {
            return None;
        }
        dir = dir_of(dir);
    }
}

/// A subpath import (`#x`) through the `imports` of the importer's own package scope (the
/// closest package.json; the ones above it are not consulted).
fn js_import_map(path: &str, spec: &str, idx: &Index) -> Option<String> {
    let scope = js_scope(path, idx)?;
    js_subpath(&scope.imports, spec).find_map(|t| {
        if t.starts_with("./") {
            js_entry(&scope.dir, &t, idx)
        } else {
            js_package(path, &t, idx)
        }
    })
}

/// The package a name means in `path`, as an install links it: the closest package.json above
/// the file that declares the name decides (`file:`/`link:`/`portal:` name a folder, `npm:x@…`
/// another name, anything else the workspace package of that name); a package's own name is
/// itself; a name no package.json above declares is the workspace package of that name (hoisted
/// installs link every workspace package at the top).
fn js_package_named<'i>(path: &str, name: &str, idx: &'i Index) -> Option<&'i JsPackage> {
    let by_name = |n: &str| idx.js_names.get(n).and_then(|d| idx.js_packages.get(d));
    let mut dir = dir_of(path);
    loop {
        if let Some(p) = idx.js_packages.get(dir) {
            if p.name.as_deref() == Some(name) {
                return Some(p);
            }
            if let Some(spec) = p.deps.get(name) {
                if let Some(rel) = ["file:", "link:", "portal:"].iter().find_map(|proto| spec.strip_prefix(proto)) {
                    return join(&p.dir, rel).and_then(|d| idx.js_packages.get(d.as_str()));
                }
                if let Some(alias) = spec.strip_prefix("npm:") {
                    // `npm:@scope/x@^1` or `npm:x`: the name before the version.
                    let at = alias.char_indices().skip(1).find(|&(_, c)| c == '@').map_or(alias.len(), |(i, _)| i);
                    return by_name(&alias[..at]);
                }
                return by_name(name);
            }
        }
        if dir.is_empty() {
            return by_name(name);
        }
        dir = dir_of(dir);
    }
}

fn js_package(path: &str, spec: &str, idx: &Index) -> Option<String> {
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
    let pkg = js_package_named(path, &name, idx)?;
    let key = if sub.is_empty() { ".".to_string() } else { format!("./{sub}") };
    if let Some(f) = js_subpath(&pkg.entries, &key).find_map(|t| js_entry(&pkg.dir, &t, idx)) {
        return Some(f);
    }
    // A subpath `exports` does not list (or no condition it has that the compiler matches) is
    // not importable.
    if pkg.has_exports {
        return None;
    }
    if sub.is_empty() {
        ["src/index", "index"].iter().find_map(|b| js_file(&in_dir(&pkg.dir, b), idx))
    } else {
        js_module(&in_dir(&pkg.dir, sub), idx).or_else(|| js_file(&in_dir(&pkg.dir, &format!("src/{sub}")), idx))
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

/// JS/TS source as the compiler's scanner sees it: comments, template-literal text and regular
/// expression literals blanked (line breaks kept), and the byte ranges of string literals, so
/// that `import` in a comment, a doc example or a generated-code string is no import.
fn js_code(text: &str) -> (String, Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut strings = Vec::new();
    // Open `${` of template literals: braces open inside each expression.
    let mut templates: Vec<usize> = Vec::new();
    // Last significant byte of code, and whether it ended a word (identifier, keyword, number).
    let mut prev = b'\n';
    let mut word_start = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    // `in_template`: scanning template text (after a backtick or a closing `}` of `${`), from
    // `template_start` when that was the opening backtick.
    let mut in_template = false;
    let mut template_start = None;
    while i < b.len() {
        if in_template {
            let start = i;
            while i < b.len() && b[i] != b'`' && !(b[i] == b'$' && b.get(i + 1) == Some(&b'{')) {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(b.len());
            blank(&mut out, start, end);
            if i < b.len() && b[i] == b'$' {
                templates.push(0);
                i += 2;
                prev = b'{';
            } else {
                // Without substitutions a template is a string (`import(`./x.js`)`).
                if let Some(st) = template_start {
                    let end = (i + 1).min(b.len());
                    out[st..end].copy_from_slice(&b[st..end]);
                    strings.push((st, end));
                }
                i += 1;
                prev = b'`';
            }
            in_template = false;
            template_start = None;
            continue;
        }
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if js_regex_may_start(prev, &text[word_start..i]) => {
                // A regular expression literal, to its closing `/` outside a class, or the line end.
                let mut j = i + 1;
                let mut class = false;
                while j < b.len() && b[j] != b'\n' {
                    match b[j] {
                        b'\\' => j += 1,
                        b'[' => class = true,
                        b']' => class = false,
                        b'/' if !class => break,
                        _ => {}
                    }
                    j += 1;
                }
                let end = (j + 1).min(b.len());
                blank(&mut out, i, end);
                i = end;
                prev = b'/';
                word_start = i;
            }
            b'\'' | b'"' => {
                // To the closing quote; an unterminated one ends with its line.
                let mut j = i + 1;
                while j < b.len() && b[j] != c && b[j] != b'\n' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let end = (j + 1).min(b.len());
                strings.push((i, end));
                i = end;
                prev = c;
            }
            b'`' => {
                in_template = true;
                template_start = Some(i);
                i += 1;
            }
            b'{' => {
                if let Some(d) = templates.last_mut() {
                    *d += 1;
                }
                prev = c;
                i += 1;
            }
            b'}' => {
                i += 1;
                prev = c;
                match templates.last_mut() {
                    Some(0) => {
                        templates.pop();
                        in_template = true;
                    }
                    Some(d) => *d -= 1,
                    None => {}
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            c => {
                let is_word = |x: u8| x.is_ascii_alphanumeric() || x == b'_' || x == b'$';
                if is_word(c) && (i == 0 || !is_word(b[i - 1])) {
                    word_start = i;
                }
                prev = c;
                i += 1;
            }
        }
    }
    (String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()), strings)
}

/// Whether a `/` after `prev` (the last significant byte; `word` the word it ends) starts a
/// regular expression rather than dividing.
fn js_regex_may_start(prev: u8, word: &str) -> bool {
    if prev.is_ascii_alphanumeric() || prev == b'_' || prev == b'$' {
        let word = word.trim();
        return matches!(
            word,
            "return"
                | "typeof"
                | "case"
                | "do"
                | "else"
                | "in"
                | "of"
                | "void"
                | "yield"
                | "await"
                | "delete"
                | "new"
                | "instanceof"
                | "throw"
        );
    }
    !matches!(prev, b')' | b']' | b'}' | b'\'' | b'"' | b'`' | b'.')
}

fn js(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static SPEC: OnceLock<Regex> = OnceLock::new();
    let spec = re(
        &SPEC,
        r#"(?:\bimport\s+(?:[^'";]*?\s+from\s+)?|\bexport\s+[^'";]*?\s+from\s+|\brequire\s*\(\s*|\bimport\s*\(\s*)['"`]([^'"`]+)['"`]"#,
    );
    let dir = dir_of(path);
    let config = js_tsconfig(path, idx);
    let mut out = Vec::new();
    let (code, strings) = js_code(text);
    // The keyword in code, the specifier a whole string literal of its own.
    let in_string = |at: usize| {
        let n = strings.partition_point(|&(start, _)| start <= at);
        n > 0 && at < strings[n - 1].1
    };
    let whole_string = |from: usize, to: usize| {
        strings.binary_search_by_key(&from, |&(start, _)| start).is_ok_and(|k| strings[k].1 == to)
    };
    for c in spec.captures_iter(&code) {
        let (whole, s) = (c.get(0).expect("match"), c.get(1).expect("specifier"));
        // `runner.import('x')` is a method, not an import.
        let member = code[..whole.start()].trim_end().ends_with('.');
        if member || in_string(whole.start()) || !whole_string(s.start() - 1, s.end() + 1) {
            continue;
        }
        let s = s.as_str();
        if s.starts_with("./") || s.starts_with("../") || s == "." || s == ".." {
            out.extend(join(dir, s).and_then(|b| js_module(&b, idx)));
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
                hit = targets.iter().find_map(|t| join(&base, &t.replace('*', star)).and_then(|b| js_module(&b, idx)));
            }
            if hit.is_none() {
                if let Some(b) = &cfg.base_url {
                    hit = join(b, s).and_then(|b| js_module(&b, idx));
                }
            }
        }
        // `#x`: tsconfig `paths` first (above), then the package's subpath imports.
        out.extend(hit.or_else(|| {
            if s.starts_with('#') {
                js_import_map(path, s, idx)
            } else {
                js_package(path, s, idx)
            }
        }));
    }
    out
}

fn go(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static BLOCK: OnceLock<Regex> = OnceLock::new();
    static SINGLE: OnceLock<Regex> = OnceLock::new();
    static QUOTED: OnceLock<Regex> = OnceLock::new();
    static BODY: OnceLock<Regex> = OnceLock::new();
    let block = re(&BLOCK, r"(?ms)^import\s*\((.*?)\)");
    let single = re(&SINGLE, r#"(?m)^import\s+(?:[A-Za-z0-9_.]+\s+)?"([^"]+)""#);
    let quoted = re(&QUOTED, r#""([^"]+)""#);
    // Imports come before every other declaration; what follows (raw strings holding Go source
    // among them) is not read.
    let body = re(&BODY, r"(?m)^(?:func|type|var|const)\b");
    let text = &text[..body.find(text).map_or(text.len(), |m| m.start())];
    let mut specs: Vec<String> = Vec::new();
    for c in block.captures_iter(text) {
        specs.extend(quoted.captures_iter(&c[1]).map(|q| q[1].to_string()));
    }
    specs.extend(single.captures_iter(text).map(|c| c[1].to_string()));
    // The module the file belongs to: the nearest go.mod above it.
    let mut module = Some(dir_of(path));
    let scope = loop {
        match module {
            Some(d) if idx.go_scopes.contains_key(d) => break idx.go_scopes.get(d),
            Some("") | None => break None,
            Some(d) => module = Some(dir_of(d)),
        }
    };
    let mut out = Vec::new();
    for s in specs {
        // The longest module path that prefixes the import owns it (scopes are sorted so).
        let owner = scope.unwrap_or(&idx.go_all).iter().find_map(|(module, mod_dir)| {
            let rel = if s == *module { "" } else { s.strip_prefix(module.as_str())?.strip_prefix('/')? };
            Some((in_dir(mod_dir, rel), mod_dir))
        });
        let Some((dir, mod_dir)) = owner else { continue };
        // A folder inside a nested module is not a package of the module around it.
        let mut d = dir.as_str();
        while d != mod_dir && !d.is_empty() && !idx.go_scopes.contains_key(d) {
            d = dir_of(d);
        }
        if d != mod_dir {
            continue;
        }
        if let Some(files) = idx.go_dirs.get(dir.as_str()) {
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
        // lib.rs uses store::refs but nothing of store/mod.rs or util.rs: those it only declares.
        let only = |f: &str| g.declares.get(f).map(|d| d.iter().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(only("src/lib.rs"), vec!["src/store/mod.rs", "src/util.rs"]);
        assert_eq!(only("src/store/mod.rs"), vec!["src/store/refs.rs"]);
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
    fn js_imports_in_comments_strings_and_templates_are_no_imports() {
        // tRPC's shapes: a doc comment showing an import, a commented-out re-export, an export
        // list whose comments hold quotes, generated code in a template literal, a regex with a
        // quote; none of them may hide or invent an import.
        let g = graph(&[
            (
                "src/adapter.ts",
                "/**\n * import type { AnyRouter } from './router'\n */\n// export * from './dead';\nimport { run } from './run';\n",
            ),
            (
                "src/shared.ts",
                "export {\n  /** @deprecated `import from 'x'` instead */\n  a,\n  // it's b\n  b,\n} from './core';\n",
            ),
            (
                "src/codegen.ts",
                "const re = /['\"]/g;\nconst code = `import { x } from './router';\\n${name(`${'./dead'}`)}`;\nconst s = \"import y from './dead'\";\nawait runner.import('./dead');\nimport z from './run';\n",
            ),
            ("src/router.ts", ""),
            ("src/dead.ts", ""),
            ("src/run.ts", ""),
            ("src/core.ts", ""),
        ]);
        assert_eq!(deps(&g, "src/adapter.ts"), vec!["src/run.ts"]);
        assert_eq!(deps(&g, "src/shared.ts"), vec!["src/core.ts"]);
        assert_eq!(deps(&g, "src/codegen.ts"), vec!["src/run.ts"]);
    }

    #[test]
    fn js_written_extension_prefers_typescript_source() {
        // `../scripts/entrypoints.js` is the source entrypoints.ts when both are tracked (the
        // compiler tries the TypeScript counterpart first); `.mjs` pairs with `.mts`; a dotted
        // name without extension gets one added.
        let g = graph(&[
            ("scripts/entrypoints.ts", ""),
            ("scripts/entrypoints.js", ""),
            ("scripts/util.mts", ""),
            ("scripts/util.mjs", ""),
            ("scripts/plain.js", ""),
            ("vite.config.ts", ""),
            (
                "pkg/build.ts",
                "import { e } from '../scripts/entrypoints.js';\nimport u from '../scripts/util.mjs';\nimport p from '../scripts/plain.js';\nimport c from '../vite.config';\n",
            ),
        ]);
        assert_eq!(
            deps(&g, "pkg/build.ts"),
            vec!["scripts/entrypoints.ts", "scripts/plain.js", "scripts/util.mts", "vite.config.ts"]
        );
    }

    #[test]
    fn js_packages_resolve_as_installed() {
        // vite's playground: two packages share a name, each importer's package.json says which
        // folder (`file:`); a dependency key naming a package of another name; an `npm:` alias;
        // a package importing itself; exports conditions in written order (`module` and
        // `browser` are not the compiler's); a package with exports resolves nothing else; main
        // before module; a folder import through the folder's package.json.
        let g = graph(&[
            (
                "a/package.json",
                r#"{"name": "a", "dependencies": {"dup": "file:./dup", "alias-key": "file:./renamed", "srv": "npm:@x/server@^1"}}"#,
            ),
            ("a/dup/package.json", r#"{"name": "dup", "main": "index.js"}"#),
            ("a/dup/index.js", ""),
            ("a/renamed/package.json", r#"{"name": "other-name", "main": "main.js", "module": "esm.js"}"#),
            ("a/renamed/main.js", ""),
            ("a/renamed/esm.js", ""),
            (
                "a/main.js",
                "import d from 'dup';\nimport r from 'alias-key';\nimport s from 'srv';\nimport self from 'a/util';\n",
            ),
            ("a/util.js", ""),
            (
                "b/package.json",
                r#"{"name": "b", "exports": {"./util": "./util.js"}, "dependencies": {"dup": "file:./dup"}}"#,
            ),
            ("b/dup/package.json", r#"{"name": "dup", "main": "index.js"}"#),
            ("b/dup/index.js", ""),
            ("b/main.js", "import d from 'dup';\nimport u from 'b/util';\n"),
            ("b/util.js", ""),
            (
                "x/package.json",
                r#"{"name": "@x/server", "exports": {".": {"browser": "./browser.js", "module": "./esm.js", "default": "./index.js"}}}"#,
            ),
            ("x/browser.js", ""),
            ("x/esm.js", ""),
            ("x/index.js", ""),
            ("x/unlisted.js", ""),
            ("c/main.js", "import s from '@x/server';\nimport u from '@x/server/unlisted';\nimport l from './lib';\n"),
            ("c/lib/package.json", r#"{"main": "out/entry.js"}"#),
            ("c/lib/out/entry.js", ""),
            ("c/lib/index.js", ""),
        ]);
        assert_eq!(deps(&g, "a/main.js"), vec!["a/dup/index.js", "a/renamed/main.js", "a/util.js", "x/index.js"]);
        assert_eq!(deps(&g, "b/main.js"), vec!["b/dup/index.js", "b/util.js"]);
        assert_eq!(deps(&g, "c/main.js"), vec!["c/lib/out/entry.js", "x/index.js"]);
    }

    #[test]
    fn js_subpath_imports_templates_and_root_mirrored_output() {
        // vite's `#types/*` subpath imports (tsconfig `paths` win over them), `import()` of a
        // template literal without substitutions, and a package whose build output mirrors the
        // package root (`dist/src/index.d.ts` is `src/index.ts`), tRPC's monotest packages.
        let g = graph(&[
            ("v/package.json", r##"{"name": "v", "imports": {"#types/*": "./types/*.d.ts", "#flag": {"module-sync": "./misc/true.js", "default": "./misc/false.js"}, "#a/*": "./nope/*.js"}}"##),
            ("v/tsconfig.json", r##"{"compilerOptions": {"paths": {"#a/*": ["./src/*"]}}}"##),
            ("v/types/hmr.d.ts", ""),
            ("v/misc/true.js", ""),
            ("v/misc/false.d.ts", ""),
            ("v/src/x.ts", ""),
            ("v/src/main.ts", "import type { P } from '#types/hmr';\nimport f from '#flag';\nimport x from '#a/x';\nconst m = await import(`./dyn.js`);\nconst n = await import(`./${name}.js`);\n"),
            ("v/src/dyn.ts", ""),
            ("m/package.json", r#"{"name": "@m/api", "exports": {".": {"types": "./dist/src/index.d.ts", "default": "./dist/src/index.js"}}}"#),
            ("m/src/index.ts", ""),
            ("app.ts", "import { api } from '@m/api';\n"),
        ]);
        assert_eq!(
            deps(&g, "v/src/main.ts"),
            vec!["v/misc/false.d.ts", "v/src/dyn.ts", "v/src/x.ts", "v/types/hmr.d.ts"]
        );
        assert_eq!(deps(&g, "app.ts"), vec!["m/src/index.ts"]);
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
    fn python_docstrings_test_basedirs_and_shared_package_names() {
        // opentelemetry-python's shape: distributions under one namespace package, each with a
        // `tests` package of its own; usage examples in docstrings; attrs' code in a string.
        let g = graph(&[
            ("api/pyproject.toml", ""),
            ("api/src/otel/trace/__init__.py", "\"\"\"Usage::\n\n    from otel.sdk import trace\n    import otel.sdk.export\n\"\"\"\nx = 'a \"\"\" quote'\nfrom otel import context\n"),
            ("api/src/otel/context.py", ""),
            ("api/tests/__init__.py", "SPAN_ID = 1\n"),
            ("api/tests/context/__init__.py", ""),
            ("api/tests/context/base.py", ""),
            ("api/tests/context/test_vars.py", "from tests.context.base import Cases\nfrom tests import SPAN_ID\n"),
            ("sdk/pyproject.toml", ""),
            ("sdk/src/otel/sdk/__init__.py", ""),
            ("sdk/src/otel/sdk/export.py", ""),
            ("sdk/tests/__init__.py", "def make_span(): pass\n"),
            ("sdk/benchmarks/test_bench.py", "from tests import make_span\n"),
            // A test folder that is no package: its own folder is on sys.path.
            ("tools/tests/test_cli.py", "import util\n"),
            ("tools/tests/util.py", ""),
            ("tests/test_typing.py", "def test_x(tmp):\n    tmp.write_text(\n        \"\"\"\\\nimport otel.sdk\n\"\"\"\n    )\n"),
        ]);
        assert_eq!(deps(&g, "api/src/otel/trace/__init__.py"), vec!["api/src/otel/context.py"]);
        assert_eq!(
            deps(&g, "api/tests/context/test_vars.py"),
            vec!["api/tests/__init__.py", "api/tests/context/base.py"]
        );
        // Not a package (no __init__.py in benchmarks/): the `tests` nearest to it.
        assert_eq!(deps(&g, "sdk/benchmarks/test_bench.py"), vec!["sdk/tests/__init__.py"]);
        assert_eq!(deps(&g, "tools/tests/test_cli.py"), vec!["tools/tests/util.py"]);
        assert_eq!(deps(&g, "tests/test_typing.py"), Vec::<String>::new());
    }

    #[test]
    fn go_imports_resolve_in_the_importers_module() {
        // Pulumi's shape: sdk/ is github.com/acme/p/sdk/v3; pkg/ replaces it locally; tests/ is
        // in the go.work; example programs are modules of their own that require a published
        // sdk (no replace), so the go command takes the sdk from the module cache, not from here.
        let g = graph(&[
            ("go.work", "go 1.19\n\nuse (\n\t./pkg\n\t./sdk // the sdk\n\t./tests\n)\n"),
            ("sdk/go.mod", "module github.com/acme/p/sdk/v3\n\ngo 1.18\n"),
            ("sdk/go/pulumi/run.go", "package pulumi\n"),
            ("sdk/go/auto/test/prog/go.mod", "module github.com/acme/p/sdk/v3/go/auto/test/prog\n\nrequire github.com/acme/p/sdk/v3 v3.40.1\n"),
            ("sdk/go/auto/test/prog/main.go", "package main\n\nimport \"github.com/acme/p/sdk/v3/go/pulumi\"\n"),
            ("sdk/go/auto/auto.go", "package auto\n\nimport _ \"github.com/acme/p/sdk/v3/go/auto/test/prog\"\n"),
            ("pkg/go.mod", "module github.com/acme/p/pkg/v3\n\nreplace (\n\tgithub.com/acme/p/sdk/v3 => ../sdk\n)\n"),
            (
                "pkg/gen/gen.go",
                "package gen\n\nimport (\n\t\"github.com/acme/p/sdk/v3/go/pulumi\"\n)\n\nconst template = `package main\n\nimport (\n\t\"github.com/acme/p/pkg/v3/testing\"\n)\n`\n",
            ),
            ("pkg/testing/t.go", "package testing\n"),
            ("tests/go.mod", "module github.com/acme/p/tests\n"),
            ("tests/it_test.go", "package tests\n\nimport \"github.com/acme/p/pkg/v3/gen\"\n"),
            ("tests/integration/empty/go.mod", "module github.com/acme/p/tests/empty\n\nrequire github.com/acme/p/sdk/v3 v3.40.1\n"),
            ("tests/integration/empty/main.go", "package main\n\nimport \"github.com/acme/p/sdk/v3/go/pulumi\"\n"),
            ("tests/x.go", "package tests\n\nimport \"github.com/acme/p/tests/integration/empty\"\n"),
        ]);
        assert_eq!(deps(&g, "pkg/gen/gen.go"), vec!["sdk/go/pulumi/run.go"]);
        // Through the workspace, no replace needed.
        assert_eq!(deps(&g, "tests/it_test.go"), vec!["pkg/gen/gen.go"]);
        // A published version, and a folder of a nested module that is not in the workspace.
        assert_eq!(deps(&g, "sdk/go/auto/test/prog/main.go"), Vec::<String>::new());
        assert_eq!(deps(&g, "sdk/go/auto/auto.go"), Vec::<String>::new());
        assert_eq!(deps(&g, "tests/integration/empty/main.go"), Vec::<String>::new());
        assert_eq!(deps(&g, "tests/x.go"), Vec::<String>::new());
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
