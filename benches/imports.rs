//! Accuracy of the import graph against each language's own resolver, on local clones of real
//! repositories. Not timed: it prints precision and recall of module-level edges.
//!
//! Run: cargo bench --bench imports -- python=PATH[:ROOT,...] go=PATH ts=PATH rust=PATH [-v] (a
//! ROOT may be a glob: `*/src`)
//! Truth comes from `benches/resolvers/`: python.py (importlib's path finders), go.sh (`go list`),
//! ts.cjs (the TypeScript compiler's resolveModuleName; needs NODE_PATH to a `typescript`
//! install), rust.rs (`cargo metadata` and the `syn` parser, with rustc's name resolution
//! rules; its header says exactly which edges count). Module level: files for Python, JS/TS and
//! Rust, package folders for Go. `-v` lists the edges each side has alone. A resolver may report
//! an import it resolved into build output it cannot trace to a source file (`?` lines): our
//! edges from that importer into that package which the resolver lacks are then left out of both
//! counts and shown as unjudged.

#[path = "resolvers/rust.rs"]
mod rust_ref;

use git_parallel::analysis::imports;
use git_parallel::proc;
use std::collections::BTreeSet;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let verbose = args.iter().any(|a| a == "-v");
    // proc::shell contains what it starts through our own binary.
    std::env::set_var("GIT_PARALLEL_EXE", env!("CARGO_BIN_EXE_git-parallel"));
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/resolvers");
    println!("| language | repository (commit) | files | edges (resolver) | edges (ours) | unjudged (ours) | precision | recall |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for arg in args.iter().filter(|a| a.contains('=')) {
        let (lang, spec) = arg.split_once('=').unwrap();
        let (repo, roots) = spec.split_once(':').unwrap_or((spec, ""));
        let repo = Path::new(repo).canonicalize().expect("repository path");
        let r = repo.display();
        let command = match lang {
            "python" => format!("python3 {}/python.py {r} {}", here.display(), roots.replace(',', " ")),
            "go" => format!("sh {}/go.sh {r}", here.display()),
            "ts" => format!("node {}/ts.cjs {r}", here.display()),
            "rust" => String::new(),
            other => panic!("unknown language {other}"),
        };
        let (truth, unjudged_lines): (BTreeSet<(String, String)>, Vec<String>) = if lang == "rust" {
            let (edges, summary) = rust_ref::edges(&repo);
            eprintln!("{summary}");
            (edges, Vec::new())
        } else {
            let out = proc::shell(&repo, &command, &[], None).expect("resolver runs");
            assert!(out.ok(), "{command}: {}", out.stderr_str());
            // What the resolver script reports about its own run (ts.cjs: build output mapped back).
            for line in out.stderr_str().lines() {
                eprintln!("{lang}: {line}");
            }
            let stdout = out.stdout_str();
            let truth = stdout
                .lines()
                .filter(|l| !l.starts_with("?\t"))
                .filter_map(|l| l.split_once('\t'))
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            (truth, stdout.lines().filter(|l| l.starts_with("?\t")).map(str::to_string).collect())
        };
        // `?<TAB>importer<TAB>package folder`: the resolver reached that package's build output
        // and cannot name the source file; our edges from the importer into the package that the
        // resolver does not have otherwise are neither right nor wrong: left out, counted as
        // unjudged.
        let unjudged: Vec<(&str, String)> = unjudged_lines
            .iter()
            .filter_map(|l| l.strip_prefix("?\t")?.split_once('\t'))
            .map(|(a, pkg)| (a, format!("{pkg}/")))
            .collect();
        let mut ours = our_edges(&repo, lang);
        let (kept, left): (BTreeSet<_>, BTreeSet<_>) = std::mem::take(&mut ours).into_iter().partition(|e| {
            truth.contains(e) || !unjudged.iter().any(|(ua, pkg)| e.0 == *ua && e.1.starts_with(pkg.as_str()))
        });
        ours = kept;
        let left_out = left.len();
        let both = truth.intersection(&ours).count();
        let precision = both as f64 / ours.len().max(1) as f64;
        let recall = both as f64 / truth.len().max(1) as f64;
        let name = repo.file_name().unwrap().to_string_lossy().to_string();
        let commit = proc::git(&repo, ["rev-parse", "--short", "HEAD"]).unwrap_or_default();
        let files = proc::git(&repo, ["ls-files"]).unwrap_or_default().lines().count();
        println!(
            "| {lang} | {name} ({commit}) | {files} | {} | {} | {left_out} | {precision:.3} | {recall:.3} |",
            truth.len(),
            ours.len()
        );
        if verbose {
            for (a, b) in &left {
                eprintln!("{lang} unjudged (ours): {a} -> {b}");
            }
        }
        if verbose {
            for e in ours.difference(&truth) {
                eprintln!("{lang} ours only: {} -> {}", e.0, e.1);
            }
            for e in truth.difference(&ours) {
                eprintln!("{lang} resolver only: {} -> {}", e.0, e.1);
            }
        }
    }
}

/// Our graph over the clone's tracked files, restricted to the language and its module level.
fn our_edges(repo: &Path, lang: &str) -> BTreeSet<(String, String)> {
    let paths: Vec<String> = proc::git(repo, ["ls-files"]).unwrap().lines().map(str::to_string).collect();
    let contents: Vec<(String, Vec<u8>)> = paths
        .iter()
        .filter(|p| imports::wants(p))
        .filter_map(|p| Some((p.clone(), std::fs::read(repo.join(p)).ok()?)))
        .collect();
    let graph = imports::build(&paths, &contents);
    let of_lang = |p: &str| match lang {
        "python" => p.ends_with(".py"),
        "go" => p.ends_with(".go"),
        "rust" => p.ends_with(".rs"),
        _ => [".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts"].iter().any(|e| p.ends_with(e)),
    };
    let level = |p: &str| -> String {
        if lang == "go" {
            let d = p.rsplit_once('/').map(|(d, _)| d).unwrap_or(".");
            d.to_string()
        } else {
            p.to_string()
        }
    };
    let mut out = BTreeSet::new();
    for (from, tos) in &graph.imports {
        for to in tos.iter().filter(|t| of_lang(t) && of_lang(from) && !from.contains("node_modules/")) {
            let (a, b) = (level(from), level(to));
            if a != b {
                out.insert((a, b));
            }
        }
    }
    out
}
