//! Rust: `mod x;` (with `#[path]`), `use` and inline paths through `crate`, `self`, `super`,
//! child modules (in `use`) and the workspace crates the package depends on (by package name,
//! `[lib] name`, or a renamed dependency `x = { package = "y" }`); modules are followed down
//! from each crate root Cargo knows (`[lib]`, `[[bin]]`/`[[test]]`… paths, auto-discovered
//! targets), and `super`/`self` inside inline modules mean those; `pub use` re-exports and
//! `pub extern crate` are followed (also globs) to the module that defines the item,
//! `#[macro_export]` macros to their file.
//!
//! Owns the Rust part of the index (crates, parsed files, the module tree from each crate
//! root), the reading of `.rs` files, and of `Cargo.toml` (with the `toml` crate).

use super::{dir_of, in_dir, join, re, Index};
use rayon::prelude::*;
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// What Rust resolution knows of the tracked files.
pub(super) struct RustIndex {
    /// Cargo manifest directory → crate; crate identifier, and package name (`-` as `_`) →
    /// manifest directory.
    crates: HashMap<String, Crate>,
    by_ident: HashMap<String, String>,
    by_package: HashMap<String, String>,
    /// Parsed Rust files, for following re-exports.
    files: HashMap<String, RustFile>,
    /// Rust file → the chains of modules that reach it from crate roots; crate root → its
    /// `#[macro_export]` macros and the files defining them.
    tree: HashMap<String, Vec<RustChain>>,
    macros: HashMap<String, HashMap<String, String>>,
}

pub(super) fn index(
    paths: &[String],
    contents: &[(String, Vec<u8>)],
    manifests: &[(&str, String)],
    all: &HashSet<&str>,
) -> RustIndex {
    let mut crates = HashMap::new();
    // In manifest order: of two packages of one name, the later one.
    let mut by_package = HashMap::new();
    for (path, text) in manifests.iter().filter(|(p, _)| p.rsplit('/').next() == Some("Cargo.toml")) {
        let dir = dir_of(path).to_string();
        if let Some(c) = cargo_manifest(&dir, text, all) {
            by_package.insert(c.package.clone(), dir.clone());
            crates.insert(dir, c);
        }
    }
    let by_ident = crates.iter().map(|(d, c)| (c.ident.clone(), d.clone())).collect();
    let files: HashMap<String, RustFile> = contents
        .par_iter()
        .filter(|(p, _)| p.ends_with(".rs"))
        .filter_map(|(p, b)| Some((p.clone(), rust_parse(std::str::from_utf8(b).ok()?))))
        .collect();
    let (tree, macros) = rust_tree(&rust_roots(paths, &crates), &files, all);
    RustIndex { crates, by_ident, by_package, files, tree, macros }
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

/// A Cargo.toml, read with the `toml` crate; none for a manifest without `[package] name` (a
/// virtual workspace) or one that is no TOML (Cargo refuses it too).
fn cargo_manifest(dir: &str, text: &str, all: &HashSet<&str>) -> Option<Crate> {
    let manifest: toml::Table = toml::from_str(text).ok()?;
    let table = |name: &str| manifest.get(name).and_then(toml::Value::as_table);
    let string = |name: &str, key: &str| table(name)?.get(key)?.as_str();
    let package = string("package", "name")?;
    let lib_path = string("lib", "path").unwrap_or("src/lib.rs");
    let lib = join(dir, lib_path).filter(|p| all.contains(p.as_str()));
    let ident = string("lib", "name").unwrap_or(package).replace('-', "_");
    // The dependency tables: `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]`,
    // and the same under `[target.'cfg(…)']`. A key is the name the code uses; `package = "y"`
    // renames (in `[workspace.dependencies]` too, which the root package inherits from).
    fn dependency_tables(t: &toml::Table) -> impl Iterator<Item = &toml::Table> {
        t.iter().filter(|(k, _)| k.ends_with("dependencies")).filter_map(|(_, v)| v.as_table())
    }
    let platforms = table("target").into_iter().flat_map(|t| t.values()).filter_map(toml::Value::as_table);
    let own: Vec<&toml::Table> = dependency_tables(&manifest).chain(platforms.flat_map(dependency_tables)).collect();
    let inherited = table("workspace").and_then(|w| w.get("dependencies")?.as_table());
    let renamed = |key: &str, spec: &toml::Value| {
        let package = spec.get("package")?.as_str()?;
        Some((key.replace('-', "_"), package.replace('-', "_")))
    };
    let mut renames: HashMap<String, String> =
        inherited.into_iter().flatten().filter_map(|(key, spec)| renamed(key, spec)).collect();
    let mut deps = HashSet::new();
    for (key, spec) in own.iter().flat_map(|t| t.iter()) {
        renames.extend(renamed(key, spec));
        deps.insert(key.replace('-', "_"));
    }
    // Targets: `path` in `[[bin]]` and the like; `auto… = false` and `build` in `[package]`.
    let mut targets = Vec::new();
    for kind in ["bin", "test", "example", "bench"] {
        let entries = manifest.get(kind).and_then(toml::Value::as_array).into_iter().flatten();
        let paths = entries.filter_map(|t| t.get("path")?.as_str());
        targets.extend(paths.filter_map(|p| join(dir, p)));
    }
    let mut auto = [true; 5];
    let package_table = table("package");
    let setting = |key: &str| package_table.and_then(|p| p.get(key));
    for (i, key) in ["autobins", "autoexamples", "autotests", "autobenches"].iter().enumerate() {
        if setting(key).and_then(toml::Value::as_bool) == Some(false) {
            auto[i] = false;
        }
    }
    // `build = false`, or a script of another name; `build = true` is the default build.rs.
    match setting("build") {
        Some(toml::Value::Boolean(false)) => auto[4] = false,
        Some(toml::Value::String(script)) => {
            auto[4] = false;
            targets.extend(join(dir, script));
        }
        _ => {}
    }
    targets.retain(|t| all.contains(t.as_str()));
    let package = package.replace('-', "_");
    Some(Crate { lib, ident, renames, package, deps, targets, auto })
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
        if let Some(c) = idx.rust.crates.get(dir) {
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
    let parsed = idx.rust.files.get(file)?;
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
    if let Some(chains) = idx.rust.tree.get(path) {
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
        Some(package) => idx.rust.by_package.get(package)?,
        None => idx.rust.by_ident.get(ident)?,
    };
    let target = idx.rust.crates.get(manifest_dir)?;
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
            if in_use && depth == 0 && idx.rust.files.get(here).is_some_and(declares) {
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
    let Some(parsed) = idx.rust.files.get(file) else { return vec![(file.clone(), false)] };
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
            if let Some(f) = idx.rust.macros.get(file).and_then(|m| m.get(name)).filter(|_| more.is_empty()) {
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
pub(super) fn mods(path: &str, idx: &Index) -> Vec<String> {
    let Some(parsed) = idx.rust.files.get(path) else { return Vec::new() };
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
pub(super) fn uses(path: &str, idx: &Index) -> Vec<String> {
    let Some(parsed) = idx.rust.files.get(path) else { return Vec::new() };
    let names_crate = |s: &str| {
        matches!(s, "crate" | "self" | "super")
            || idx.rust.by_ident.contains_key(s)
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

#[cfg(test)]
mod tests {
    use super::super::testing::{deps, graph};

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
}
