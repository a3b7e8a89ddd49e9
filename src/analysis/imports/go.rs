//! Go: packages of the importer's module, of its local `replace` targets, and of the other
//! modules of the go.work that lists it (the longest module path winning, a nested module's
//! folders excluded); a module required at a published version is not the repository's copy.
//! Only the import section of a file is read.
//!
//! Owns the Go part of the index (package folders, each module's scope) and the reading of
//! `go.mod` and `go.work`: ours, line by line, since no maintained crate reads both (the go.mod
//! parsers on crates.io leave go.work out) and resolution needs three directives of them.

use super::{dir_of, in_dir, join, re, Index};
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// What Go resolution knows of the tracked files.
pub(super) struct GoIndex<'a> {
    /// Directory → its Go files (non-test).
    dirs: HashMap<&'a str, Vec<&'a str>>,
    /// Module directory → the modules its packages' imports can resolve to inside the
    /// repository, as (module path, directory), longest path first (see `go_scope`).
    scopes: HashMap<String, Vec<(String, String)>>,
    /// For Go files under no go.mod: every module and local `replace` of the repository.
    all: Vec<(String, String)>,
}

pub(super) fn index<'a>(paths: &'a [String], manifests: &[(&str, String)]) -> GoIndex<'a> {
    let mut dirs: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in paths {
        if p.ends_with(".go") && !p.ends_with("_test.go") {
            dirs.entry(dir_of(p)).or_default().push(p.as_str());
        }
    }
    let mut mods: HashMap<String, GoMod> = HashMap::new();
    let mut works: HashMap<String, GoMod> = HashMap::new();
    for (path, text) in manifests {
        let dir = dir_of(path).to_string();
        match path.rsplit('/').next().unwrap_or(path) {
            "go.mod" => {
                mods.insert(dir.clone(), go_mod(&dir, text));
            }
            "go.work" => {
                works.insert(dir.clone(), go_mod(&dir, text));
            }
            _ => {}
        }
    }
    let scopes = mods.keys().map(|d| (d.clone(), go_scope(d, &mods, &works))).collect();
    let mut all: Vec<(String, String)> = mods
        .iter()
        .flat_map(|(d, m)| m.path.iter().map(move |p| (p.clone(), d.clone())).chain(m.replaces.iter().cloned()))
        .collect();
    all.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.cmp(b)));
    all.dedup();
    GoIndex { dirs, scopes, all }
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

/// A go.mod or go.work: `module`, `use` folders and local `replace` targets, read line by line
/// (comments and the block forms included); `require` and the rest are not needed.
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

/// The files of the packages `path` imports.
pub(super) fn imports(path: &str, text: &str, idx: &Index) -> Vec<String> {
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
            Some(d) if idx.go.scopes.contains_key(d) => break idx.go.scopes.get(d),
            Some("") | None => break None,
            Some(d) => module = Some(dir_of(d)),
        }
    };
    let mut out = Vec::new();
    for s in specs {
        // The longest module path that prefixes the import owns it (scopes are sorted so).
        let owner = scope.unwrap_or(&idx.go.all).iter().find_map(|(module, mod_dir)| {
            let rel = if s == *module { "" } else { s.strip_prefix(module.as_str())?.strip_prefix('/')? };
            Some((in_dir(mod_dir, rel), mod_dir))
        });
        let Some((dir, mod_dir)) = owner else { continue };
        // A folder inside a nested module is not a package of the module around it.
        let mut d = dir.as_str();
        while d != mod_dir && !d.is_empty() && !idx.go.scopes.contains_key(d) {
            d = dir_of(d);
        }
        if d != mod_dir {
            continue;
        }
        if let Some(files) = idx.go.dirs.get(dir.as_str()) {
            out.extend(files.iter().map(|f| f.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{deps, graph};

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
