//! Python: `import`, `from … import`, relative imports. Source roots are the repository top,
//! `src/`, `lib/`, `python/`, and every folder holding a `pyproject.toml`, `setup.py` or
//! `setup.cfg` (and its `src/`); namespace packages (folders without `__init__.py`) resolve by
//! path. Test files (and their package) resolve from pytest's basedir first; a name several
//! packages share goes to the one nearest the importer; triple-quoted strings are not read.
//!
//! Owns the Python part of the index (module names, packages, test basedirs) and the reading
//! of `.py` files; the manifests count only by where they are, their contents are not read.

use super::{dir_of, in_dir, re, Index};
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// What Python resolution knows of the tracked files.
pub(super) struct PyIndex<'a> {
    /// Dotted module name → files (`a.b` → `a/b.py` or `a/b/__init__.py`) under the source
    /// roots, in root order; several when packages of the repository share a name (`tests`).
    modules: HashMap<String, Vec<&'a str>>,
    /// Folders holding an `__init__.py`, and the basedirs of test files (see `py_basedir`).
    packages: HashSet<&'a str>,
    test_basedirs: HashSet<&'a str>,
}

pub(super) fn index(paths: &[String]) -> PyIndex<'_> {
    // Source roots: where a package manifest lives, and its src/.
    let mut roots: Vec<String> = vec![String::new(), "src".into(), "lib".into(), "python".into()];
    for p in paths {
        let name = p.rsplit('/').next().unwrap_or(p);
        if matches!(name, "pyproject.toml" | "setup.py" | "setup.cfg") && !dir_of(p).is_empty() {
            roots.push(dir_of(p).to_string());
            roots.push(format!("{}/src", dir_of(p)));
        }
    }
    roots.sort();
    roots.dedup();
    let mut modules: HashMap<String, Vec<&str>> = HashMap::new();
    for p in paths {
        if let Some(stem) = p.strip_suffix(".py") {
            let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
            // The repository top is the last resort; a deeper root names the module as its
            // package sees itself.
            for root in roots.iter().rev() {
                let rel = if root.is_empty() {
                    Some(stem)
                } else {
                    stem.strip_prefix(root.as_str()).and_then(|r| r.strip_prefix('/'))
                };
                if let Some(rel) = rel {
                    let files = modules.entry(rel.replace('/', ".")).or_default();
                    if !files.contains(&p.as_str()) {
                        files.push(p.as_str());
                    }
                }
            }
        }
    }
    let packages: HashSet<&str> = paths
        .iter()
        .filter_map(|p| p.strip_suffix("/__init__.py"))
        .chain(paths.iter().filter(|p| *p == "__init__.py").map(|_| ""))
        .collect();
    let test_basedirs: HashSet<&str> =
        paths.iter().filter(|p| py_is_test(p)).map(|p| py_basedir(p, &packages)).collect();
    PyIndex { modules, packages, test_basedirs }
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

/// The files `path` imports.
pub(super) fn imports(path: &str, text: &str, idx: &Index) -> Vec<String> {
    static IMPORT: OnceLock<Regex> = OnceLock::new();
    static FROM: OnceLock<Regex> = OnceLock::new();
    let import = re(&IMPORT, r"(?m)^[ \t]*import[ \t]+([A-Za-z0-9_., \t]+?)[ \t]*(?:#.*)?$");
    // Names in parentheses may span lines; without them they end with the line.
    let from =
        re(&FROM, r"(?m)^[ \t]*from[ \t]+(\.*)([A-Za-z0-9_.]*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([A-Za-z0-9_, \t*]+))");
    let text = py_mask_strings(text);
    let module_file = |m: &str| idx.file(&format!("{m}.py")).or_else(|| idx.file(&format!("{m}/__init__.py")));
    // A test file, or a module of its package tree, imports with its basedir first on sys.path.
    let basedir = py_basedir(path, &idx.py.packages);
    let local = idx.py.test_basedirs.contains(basedir).then_some(basedir);
    let here = dir_of(path);
    let lookup = |module: &str| -> Option<String> {
        if let Some(base) = local {
            if let Some(f) = module_file(&in_dir(base, &module.replace('.', "/"))) {
                return Some(f);
            }
        }
        // Packages that share a name: the one nearest the importer (each package's tests run
        // with its own folder on sys.path), the first root on a tie.
        let files = idx.py.modules.get(module)?;
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

#[cfg(test)]
mod tests {
    use super::super::testing::{deps, graph};

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
}
