//! Our import graph of local clones, edge by edge, to compare two versions of the resolver (a
//! refactoring must leave every edge as it was). Not timed, no truth: benches/imports.rs measures
//! accuracy.
//!
//! Run: cargo test --bench imports_dump -- PATH... (one line per edge, `from<TAB>to`, sorted;
//! `declares<TAB>from<TAB>to` for the edges that only declare a child module). With several
//! paths each block starts with `# <folder name>`.

use git_parallel::analysis::imports;
use std::path::Path;
use std::process::Command;

fn main() {
    let repos: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    for repo in &repos {
        let repo = Path::new(repo);
        if repos.len() > 1 {
            println!("# {}", repo.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        }
        let out = Command::new("git").arg("-C").arg(repo).args(["ls-files", "-z"]).output().expect("git runs");
        assert!(out.status.success(), "git ls-files in {}", repo.display());
        let paths: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        let contents: Vec<(String, Vec<u8>)> = paths
            .iter()
            .filter(|p| imports::wants(p))
            .filter_map(|p| Some((p.clone(), std::fs::read(repo.join(p)).ok()?)))
            .collect();
        let graph = imports::build(&paths, &contents);
        for (from, tos) in &graph.imports {
            for to in tos {
                println!("{from}\t{to}");
            }
        }
        for (from, tos) in &graph.declares {
            for to in tos {
                println!("declares\t{from}\t{to}");
            }
        }
    }
}
