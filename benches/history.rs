//! Conflict predictions against history: pairs of real commits close in time, both replayed onto
//! the older one's parent with `git merge-tree`, as if two agents had made them in parallel.
//! Each pair's files (what each commit changed) go through the planner's conflict analysis; the
//! table shows how often each prediction met a real textual conflict.
//!
//! Run: cargo bench --bench history -- PATH... [--commits N] [--window W]
//! (defaults: the last 400 first-parent non-merge commits, each with the next: window 1). A pair
//! conflicts when the newer commit's change does not apply to the older one's parent (it needed
//! the older change, or a commit in between when the window is wider), or when it applies but
//! the three-way merge with the older commit conflicts. The import graph is the clone's current
//! tree, an approximation for older bases.

use git_parallel::analysis::{dag, imports};
use git_parallel::proc;
use std::path::Path;

fn main() {
    std::env::set_var("GIT_PARALLEL_EXE", env!("CARGO_BIN_EXE_git-parallel"));
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (commits_n, window) = (opt("--commits", 400), opt("--window", 1));
    println!("| repository | prediction | pairs | really conflicted | rate |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let mut ties = Vec::new();
    for repo in args.iter().filter(|a| !a.starts_with("--") && Path::new(a).is_dir()) {
        let repo = Path::new(repo);
        let name = repo.file_name().unwrap().to_string_lossy().to_string();
        let graph = graph_of(repo);
        let list = proc::git(repo, ["rev-list", "--first-parent", "--no-merges", "-n", &commits_n.to_string(), "HEAD"])
            .unwrap();
        let commits: Vec<&str> = list.lines().collect();
        let changed = |c: &str| -> Vec<String> {
            proc::git(repo, ["diff-tree", "--no-commit-id", "--name-only", "-r", c])
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        };
        // prediction → (pairs, conflicted)
        let mut tally: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for i in 0..commits.len() {
            for j in i + 1..(i + 1 + window).min(commits.len()) {
                let (newer, older) = (commits[i], commits[j]);
                let Some(conflicted) = replay(repo, older, newer) else { continue };
                let nodes = [node("older", changed(older)), node("newer", changed(newer))];
                let Ok(d) = dag::build(&nodes, &graph, true) else { continue };
                let label = match d.conflicts.first() {
                    Some(c) if c.kind == dag::ConflictKind::Hard => "hard",
                    Some(c) if c.risk >= 0.5 => "soft, risk ≥ 0.5",
                    Some(_) => "soft, risk < 0.5",
                    None => "none",
                };
                let e = tally.entry(label).or_default();
                e.0 += 1;
                e.1 += conflicted as usize;
            }
        }
        for (label, (n, c)) in tally {
            println!("| {name} | {label} | {n} | {c} | {:.2} |", c as f64 / n.max(1) as f64);
        }
        ties.push(risk_spread(&name, &graph));
    }
    println!(
        "\n| repository | tasks (one source file each) | soft conflicts | distinct risks | most sharing one risk |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in ties {
        println!("{row}");
    }
}

/// Ties among soft-conflict risks: 30 tasks, each on one source file of the graph (every
/// k-th importing or imported file in path order), planned together.
fn risk_spread(name: &str, graph: &imports::ImportGraph) -> String {
    let mut files: Vec<&String> = graph.imports.keys().chain(graph.imports.values().flatten()).collect();
    files.sort();
    files.dedup();
    let step = (files.len() / 30).max(1);
    let nodes: Vec<dag::Node> = files
        .iter()
        .step_by(step)
        .take(30)
        .enumerate()
        .map(|(i, f)| node(&format!("t{i}"), vec![f.to_string()]))
        .collect();
    let d = dag::build(&nodes, graph, true).expect("plan");
    let mut counts: std::collections::BTreeMap<u64, usize> = Default::default();
    for c in d.conflicts.iter().filter(|c| c.kind == dag::ConflictKind::Soft) {
        *counts.entry((c.risk * 1000.0).round() as u64).or_default() += 1;
    }
    let soft: usize = counts.values().sum();
    format!(
        "| {name} | {} | {soft} | {} | {} |",
        nodes.len(),
        counts.len(),
        counts.values().max().copied().unwrap_or(0)
    )
}

fn node(id: &str, files: Vec<String>) -> dag::Node {
    dag::Node { id: id.into(), files, depends_on: Vec::new(), priority: 0, source: id.into() }
}

/// Both commits on the older one's parent: whether they conflict (None: git could not tell,
/// such as a root commit).
fn replay(repo: &Path, older: &str, newer: &str) -> Option<bool> {
    let base = format!("{older}^");
    let picked =
        proc::git_output(repo, ["merge-tree", "--write-tree", &format!("--merge-base={newer}^"), &base, newer]).ok()?;
    match picked.status.code() {
        Some(0) => {}
        Some(1) => return Some(true),
        _ => return None,
    }
    let tree = picked.stdout_str().lines().next()?.to_string();
    let commit = proc::git(repo, ["commit-tree", &tree, "-p", &base, "-m", "replayed"]).ok()?;
    let both =
        proc::git_output(repo, ["merge-tree", "--write-tree", &format!("--merge-base={base}"), older, &commit]).ok()?;
    match both.status.code() {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    }
}

fn graph_of(repo: &Path) -> imports::ImportGraph {
    let paths: Vec<String> = proc::git(repo, ["ls-files"]).unwrap().lines().map(str::to_string).collect();
    let contents: Vec<(String, Vec<u8>)> = paths
        .iter()
        .filter(|p| imports::wants(p))
        .filter_map(|p| Some((p.clone(), std::fs::read(repo.join(p)).ok()?)))
        .collect();
    imports::build(&paths, &contents)
}
