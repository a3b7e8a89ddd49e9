//! Overhead per task: `git parallel run` total time minus agent time, per task, against a shell
//! script doing the bare git sequence per task (worktree add, commit, merge-tree, commit-tree,
//! update-ref), on generated 10,000- and 100,000-file repositories; the sparse cheap path too.
//! Run: cargo bench --features test-fakes --bench overhead   (BENCH_QUICK=1: 10,000 files only)

mod common;
use common::*;
use std::path::Path;
use std::time::Instant;

const TASKS: usize = 12;

fn bare_sequence(root: &Path, home: &Path, files: &[String], tag: &str) -> f64 {
    let wt = root.parent().unwrap().join(format!("{}-bare-{tag}", root.file_name().unwrap().to_string_lossy()));
    let script = format!(
        r#"set -e
cur=$(git rev-parse HEAD)
for i in $(seq 0 {last}); do
  git worktree add -q -b bare-{tag}/$i "{wt}/$i" main
  echo x >> "{wt}/$i/$(sed -n "$((i+1))p" "{list}")"
  git -C "{wt}/$i" add -A
  git -C "{wt}/$i" commit -q -m "task $i"
  tree=$(git merge-tree --write-tree "$cur" bare-{tag}/$i)
  cur=$(git commit-tree "$tree" -p "$cur" -p bare-{tag}/$i -m "merge $i")
  git update-ref refs/heads/bare-integration-{tag} "$cur"
done
"#,
        last = TASKS - 1,
        wt = wt.display(),
        list = root.join(".git/bare-files").display(),
        tag = tag
    );
    std::fs::write(root.join(".git/bare-files"), files.join("\n") + "\n").unwrap();
    let t = Instant::now();
    let o = cmd("bash", root, home).arg("-c").arg(script).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    t.elapsed().as_secs_f64()
}

/// (seconds per task of overhead, total seconds)
fn ours(root: &Path, home: &Path, files: &[String], sparse: bool, tag: &str) -> (f64, f64) {
    let dir = root.join(format!("prompts-{tag}"));
    for (i, f) in files.iter().enumerate() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("t{i}.md")),
            format!("---\nfiles: [{f}]\n---\n# Task {i}\n\n```fake-agent\nappend {f} x\n```\n"),
        )
        .unwrap();
    }
    let mut args = vec!["run", dir.to_str().unwrap(), "-j", "1", "--allow-conflicts"];
    if sparse {
        args.push("--sparse");
    }
    let t = Instant::now();
    gp(root, home, &args);
    let total = t.elapsed().as_secs_f64();
    let runs: Vec<u64> = git(root, home, &["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/runs/"])
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let s = run_state(root, home, &runs.iter().max().unwrap().to_string());
    let agent: f64 = s["tasks"].as_array().unwrap().iter().map(|t| t["wall_ms"].as_f64().unwrap() / 1000.0).sum();
    assert!(s["tasks"].as_array().unwrap().iter().all(|t| t["status"] == "succeeded"), "{s}");
    ((total - agent) / TASKS as f64, total)
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    println!(
        "{TASKS} tasks, one at a time; each appends to one distinct file; per task, best of 2 alternating rounds\n"
    );
    println!("| repository files | bare git sequence | git parallel run (full checkout) | ratio | git parallel run --sparse | ratio |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for n in [10_000usize, 100_000] {
        if quick && n > 10_000 {
            continue;
        }
        let root = tmp.path().join(format!("repo{n}"));
        let paths = generate_repo(&root, &home, n, 3);
        configure_fake_agent(&root, &home);
        let files: Vec<String> = (0..TASKS).map(|i| paths[i * (n / TASKS)].clone()).collect();
        // Warm the page cache, then alternate the three ways twice and keep each one's best.
        git(&root, &home, &["status", "--porcelain"]);
        let (mut bare, mut full, mut sparse) = (f64::MAX, f64::MAX, f64::MAX);
        for rep in 0..2 {
            bare = bare.min(bare_sequence(&root, &home, &files, &rep.to_string()) / TASKS as f64);
            full = full.min(ours(&root, &home, &files, false, &format!("full{rep}")).0);
            sparse = sparse.min(ours(&root, &home, &files, true, &format!("sparse{rep}")).0);
        }
        println!(
            "| {n} | {:.0} ms | {:.0} ms | {:.2} | {:.0} ms | {:.2} |",
            bare * 1e3,
            full * 1e3,
            full / bare,
            sparse * 1e3,
            sparse / bare
        );
    }
}
