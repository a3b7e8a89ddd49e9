//! JavaScript/TypeScript: `import … from`, `export … from`, `import()`, `require()` (not in
//! comments, strings or template text); relative specifiers in the compiler's extension order
//! (`./x.js` is `./x.ts`), folders through their package.json or index file, tsconfig `paths`
//! and `baseUrl` (with `extends`), subpath imports (`#x`), packages by name as an install links
//! them (the closest package.json declaring the name: `file:`/`link:` folders, `npm:` aliases,
//! else the workspace package of that name; `exports` with the compiler's conditions in written
//! order, else `types`/`main`; build output mapped back to `src/`).
//!
//! Owns the JS/TS part of the index and the reading of its manifests: `package.json` (serde_json,
//! keeping the written order of `exports` conditions) and `tsconfig*.json`/`jsconfig.json`
//! (`jsonc-parser`: comments and trailing commas).

use super::{dir_of, in_dir, join, lang, re, Index, Lang};
use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;

/// What JS/TS resolution knows of the tracked files: the folder of every package.json →
/// package; package name → folder; tsconfig folder → options.
pub(super) struct JsIndex {
    packages: HashMap<String, JsPackage>,
    names: HashMap<String, String>,
    tsconfigs: HashMap<String, TsConfig>,
}

pub(super) fn index(manifests: &[(&str, String)]) -> JsIndex {
    let mut packages = HashMap::new();
    let mut names = HashMap::new();
    let mut raw_tsconfigs: HashMap<String, serde_json::Value> = HashMap::new();
    for (path, text) in manifests {
        let dir = dir_of(path).to_string();
        match path.rsplit('/').next().unwrap_or(path) {
            "package.json" => {
                if let Some(pkg) = package_json(&dir, text) {
                    if let Some(n) = &pkg.name {
                        names.insert(n.clone(), dir.clone());
                    }
                    packages.insert(dir, pkg);
                }
            }
            n if n.starts_with("tsconfig") || n == "jsconfig.json" => {
                if let Some(v) = jsonc(text) {
                    raw_tsconfigs.insert(path.to_string(), v);
                }
            }
            _ => {}
        }
    }
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
    JsIndex { packages, names, tsconfigs }
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

/// A tsconfig/jsconfig: JSON with comments and trailing commas, as the compiler reads them
/// (nothing else beyond JSON); none for a file that is not that or holds no value.
fn jsonc(text: &str) -> Option<serde_json::Value> {
    let options = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    jsonc_parser::parse_to_serde_value::<Option<serde_json::Value>>(text, &options).ok().flatten()
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
        if let Some(f) = idx.js.packages.get(base).and_then(|p| p.main.iter().find_map(|t| js_entry(base, t, idx))) {
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
        if let Some(p) = idx.js.packages.get(dir) {
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
    let by_name = |n: &str| idx.js.names.get(n).and_then(|d| idx.js.packages.get(d));
    let mut dir = dir_of(path);
    loop {
        if let Some(p) = idx.js.packages.get(dir) {
            if p.name.as_deref() == Some(name) {
                return Some(p);
            }
            if let Some(spec) = p.deps.get(name) {
                if let Some(rel) = ["file:", "link:", "portal:"].iter().find_map(|proto| spec.strip_prefix(proto)) {
                    return join(&p.dir, rel).and_then(|d| idx.js.packages.get(d.as_str()));
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
        if let Some(c) = idx.js.tsconfigs.get(dir) {
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

/// The files `path` imports.
pub(super) fn imports(path: &str, text: &str, idx: &Index) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::super::testing::{deps, graph};

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
}
