//! Shared helpers of the benchmarks: hermetic git, generated repositories, timing.
#![allow(dead_code)]

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn cmd(program: impl AsRef<std::ffi::OsStr>, dir: &Path, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env("TZ", "UTC");
    c
}

pub fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let o = cmd("git", dir, home).args(args).output().unwrap();
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

/// A repository of `n` source files in four languages with imports between them, one commit.
pub fn generate_repo(root: &Path, home: &Path, n: usize, seed: u64) -> Vec<String> {
    std::fs::create_dir_all(root).unwrap();
    git(root, home, &["init", "-q", "-b", "main"]);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut paths = Vec::with_capacity(n);
    std::fs::write(root.join("go.mod"), "module example.com/big\n\ngo 1.22\n").unwrap();
    for i in 0..n {
        let dir = format!("pkg{:03}", i % 200);
        let (path, body) = match i % 4 {
            0 => {
                let dep = rng.random_range(0..n) / 4 * 4;
                (
                    format!("{dir}/m{i}.py"),
                    format!("from pkg{:03}.m{dep} import thing\n\ndef f{i}():\n    return {i}\n", dep % 200),
                )
            }
            1 => {
                (format!("src/{dir}/m{i}.rs"), format!("use crate::{dir}::m{};\npub fn f{i}() {{}}\n", (i / 4) * 4 + 1))
            }
            2 => {
                let dep = rng.random_range(0..n) / 4 * 4 + 2;
                (
                    format!("web/{dir}/m{i}.ts"),
                    format!("import {{ x }} from '../pkg{:03}/m{dep}';\nexport const y{i} = 1;\n", dep % 200),
                )
            }
            _ => (
                format!("go/{dir}/m{i}.go"),
                format!("package {dir}\n\nimport \"example.com/big/go/pkg{:03}\"\n", rng.random_range(0..200)),
            ),
        };
        let p = root.join(&path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
        paths.push(path);
    }
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "").unwrap();
    git(root, home, &["add", "-A"]);
    git(root, home, &["commit", "-q", "-m", "generated"]);
    paths
}

/// `count` prompts, each naming 1-3 of `paths`, in `dir`.
pub fn generate_prompts(dir: &Path, paths: &[String], count: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let verbs = ["Fix a crash in", "Add tests for", "Refactor", "Document", "Speed up", "Implement paging in"];
    for i in 0..count {
        let files: Vec<&String> =
            (0..rng.random_range(1..=3)).map(|_| &paths[rng.random_range(0..paths.len())]).collect();
        let verb = verbs[i % verbs.len()];
        let text = format!(
            "# {verb} task {i}\n\n{verb} `{}`.\nKeep the API stable; see {}.\n",
            files[0],
            files.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" and ")
        );
        std::fs::write(dir.join(format!("task{i:04}.md")), text).unwrap();
    }
}

/// Median of `runs` timings of `f`.
pub fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

/// The git-parallel under test; `BENCH_BIN` measures another build (say, the previous version)
/// with the same benchmark.
pub fn bin() -> PathBuf {
    // Absolute: the benches run it with their made repositories as the working directory.
    std::env::var_os("BENCH_BIN")
        .map(|p| std::path::absolute(p).expect("BENCH_BIN names a path"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_git-parallel")))
}

pub fn fake_agent() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-agent"))
}

/// A small repository configured for the fake agent, with room for `workers` agents at once.
pub fn fake_agent_repo(root: &Path, home: &Path) {
    std::fs::create_dir_all(root).unwrap();
    git(root, home, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("README.md"), "bench\n").unwrap();
    git(root, home, &["add", "-A"]);
    git(root, home, &["commit", "-q", "-m", "init"]);
    configure_fake_agent(root, home);
}

pub fn configure_fake_agent(root: &Path, home: &Path) {
    let cmd = format!("'{}' {{prompt_file}}", fake_agent().display());
    for (k, v) in [
        ("parallel.agent", "custom"),
        ("parallel.agentCommand", cmd.as_str()),
        ("parallel.reserveCpus", "0"),
        ("parallel.cpuPerTask", "0.1"),
        ("parallel.memoryPerTask", "1"),
        ("parallel.cpuLimit", "1000"),
        ("parallel.maxConcurrency", "64"),
    ] {
        git(root, home, &["config", k, v]);
    }
}

/// Write a prompt for the fake agent.
pub fn fake_prompt(dir: &Path, id: &str, deps: &[String], estimate_min: f64, script: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let deps = if deps.is_empty() { String::new() } else { format!("depends_on: [{}]\n", deps.join(", ")) };
    std::fs::write(
        dir.join(format!("{id}.md")),
        format!("---\nestimate: {estimate_min}\n{deps}---\n# Task {id}\n\n```fake-agent\n{script}\n```\n"),
    )
    .unwrap();
}

/// Run git-parallel, assert success, return stdout.
pub fn gp(root: &Path, home: &Path, args: &[&str]) -> String {
    let o = cmd(bin(), root, home).args(args).env("NO_PROGRESS", "1").output().unwrap();
    assert!(o.status.success(), "git parallel {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A run's state with every task (`status RUN --json`).
pub fn run_state(root: &Path, home: &Path, run: &str) -> serde_json::Value {
    serde_json::from_str(&gp(root, home, &["status", run, "--json"])).unwrap()
}
