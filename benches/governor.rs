//! The governor, side by side in one run on this machine:
//! 1. independent tasks of the real Claude Code CLI against the scripted model server answering
//!    each request after 2 s: default settings against the ideal (all at once); speed-up is
//!    the sum of task times over the wall time;
//! 2. a mix of CPU-heavy fake agents (a chain of three builds and four more builds) and agents
//!    that wait (six): the measured governor against "all at once" and "one per CPU", on
//!    makespan.
//!
//! Run: cargo bench --features test-fakes --bench governor
//! (the Claude part needs the CLI at target/e2e/node_modules/.bin/claude: `.ci/install-clis`).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

const LATENCY_MS: u64 = 2000;

/// A way to run: its name, git config to set, extra `run` arguments.
type Mode<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<&'a str>);

/// Start the scripted model server; returns it and its port.
fn model_server(script: &Path) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fake-model-server"))
        .args(["--script", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
    (child, port)
}

/// (wall seconds, sum of task seconds, peak tasks at once) of one run.
fn measure(root: &Path, home: &Path, args: &[&str], env: &[(String, String)]) -> (f64, f64) {
    let t = Instant::now();
    let o = cmd(bin(), root, home).args(args).envs(env.iter().cloned()).env("NO_PROGRESS", "1").output().unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "git parallel {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let runs = git(root, home, &["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/runs/"]);
    let last = runs.lines().filter_map(|l| l.parse::<u64>().ok()).max().unwrap().to_string();
    let s = run_state(root, home, &last);
    let tasks = s["tasks"].as_array().unwrap();
    assert!(tasks.iter().all(|t| t["status"] == "succeeded"), "{s}");
    (wall, tasks.iter().map(|t| t["wall_ms"].as_f64().unwrap() / 1000.0).sum())
}

fn repo(tmp: &Path, home: &Path, name: &str, config: &[(&str, &str)]) -> PathBuf {
    let root = tmp.join(name);
    std::fs::create_dir_all(&root).unwrap();
    git(&root, home, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("README.md"), "bench\n").unwrap();
    for (k, v) in config {
        git(&root, home, &["config", k, v]);
    }
    root
}

fn claude_part(tmp: &Path, home: &Path) {
    let claude = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e/node_modules/.bin/claude");
    if !claude.exists() {
        println!("(Claude Code CLI not installed at {}: run .ci/install-clis)\n", claude.display());
        return;
    }
    let script = tmp.join("script.json");
    std::fs::write(
        &script,
        format!(
            r#"{{"latency_ms": {LATENCY_MS}, "rules": [{{"match": "TASK-", "steps": [
  {{"tool_use": {{"name": "Write", "input": {{"file_path": "{{cwd}}/out.txt", "content": "done\n"}}}}}},
  {{"text": "done"}}]}}], "default": {{"text": "ok"}}}}"#
        ),
    )
    .unwrap();
    let (mut server, port) = model_server(&script);
    let env: Vec<(String, String)> = vec![
        ("PATH".into(), format!("{}:{}", claude.parent().unwrap().display(), std::env::var("PATH").unwrap())),
        ("ANTHROPIC_BASE_URL".into(), format!("http://127.0.0.1:{port}")),
        ("ANTHROPIC_API_KEY".into(), "bench".into()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into()),
        ("IS_SANDBOX".into(), "1".into()),
    ];
    println!("Independent Claude Code tasks, the model answering each request after {LATENCY_MS} ms:\n");
    println!("| tasks | settings | wall | sum of task times | speed-up |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    for n in [6usize, 20] {
        let n_s = n.to_string();
        let modes: [Mode; 2] = [
            ("default (no flags)", vec![], vec![]),
            (
                "ideal: all at once",
                vec![("parallel.cpuLimit", "100000"), ("parallel.memoryPerTask", "1")],
                vec!["-j", n_s.as_str()],
            ),
        ];
        for (m, (name, config, extra)) in modes.into_iter().enumerate() {
            let root = repo(tmp, home, &format!("claude-{n}-{m}"), &config);
            for i in 0..n {
                std::fs::create_dir_all(root.join("prompts")).unwrap();
                std::fs::write(
                    root.join(format!("prompts/t{i}.md")),
                    format!("# Task {i}\n\nTASK-{i}: write out.txt.\n"),
                )
                .unwrap();
            }
            git(&root, home, &["add", "-A"]);
            git(&root, home, &["commit", "-q", "-m", "prompts"]);
            let mut args = vec!["run", "prompts", "--agent", "claude", "--no-integrate"];
            args.extend(extra);
            let (wall, work) = measure(&root, home, &args, &env);
            println!("| {n} | {name} | {wall:.1} s | {work:.1} s | {:.2}x |", work / wall);
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    println!();
}

fn mix_part(tmp: &Path, home: &Path) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "A mix on {cpus} CPUs: a chain of three builds (2 s of CPU each), four more builds, six agents waiting 4 s:\n"
    );
    println!("| settings | makespan |");
    println!("| --- | ---: |");
    let cpus_s = cpus.to_string();
    let modes: [Mode; 3] = [
        ("measured governor (default)", vec![], vec![]),
        ("all at once", vec![("parallel.cpuLimit", "100000"), ("parallel.memoryPerTask", "1")], vec!["-j", "13"]),
        (
            "one per CPU",
            vec![("parallel.cpuLimit", "100000"), ("parallel.memoryPerTask", "1")],
            vec!["-j", cpus_s.as_str()],
        ),
    ];
    // BENCH_CPU_LIMIT tries the governor with another parallel.cpuLimit.
    let limit = std::env::var("BENCH_CPU_LIMIT").ok();
    for (m, (name, mut config, extra)) in modes.into_iter().enumerate() {
        if m == 0 {
            if let Some(l) = &limit {
                config.push(("parallel.cpuLimit", l.as_str()));
            }
        }
        let root = repo(tmp, home, &format!("mix-{m}"), &config);
        let agent = format!("'{}' {{prompt_file}}", fake_agent().display());
        git(&root, home, &["config", "parallel.agent", "custom"]);
        git(&root, home, &["config", "parallel.agentCommand", &agent]);
        let dir = root.join("prompts");
        let build = |id: &str, deps: &[String]| {
            std::fs::create_dir_all(&dir).unwrap();
            let deps = if deps.is_empty() { String::new() } else { format!("depends_on: [{}]\n", deps.join(", ")) };
            std::fs::write(
                dir.join(format!("{id}.md")),
                format!("---\ntype: test\nestimate: 1\n{deps}---\n# Build {id}\n\n```fake-agent\nburn 2000\nwrite {id}.txt {id}\n```\n"),
            )
            .unwrap();
        };
        build("a1", &[]);
        build("a2", &["a1".into()]);
        build("a3", &["a2".into()]);
        for i in 0..4 {
            build(&format!("b{i}"), &[]);
        }
        for i in 0..6 {
            std::fs::write(
                dir.join(format!("w{i}.md")),
                format!("---\ntype: docs\nestimate: 1\n---\n# Wait {i}\n\n```fake-agent\nsleep 4000\nwrite w{i}.txt w\n```\n"),
            )
            .unwrap();
        }
        git(&root, home, &["add", "-A"]);
        git(&root, home, &["commit", "-q", "-m", "prompts"]);
        let mut args = vec!["run", "prompts", "--no-integrate"];
        args.extend(extra);
        let (wall, _) = measure(&root, home, &args, &[]);
        println!("| {name} | {wall:.1} s |");
    }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    if std::env::var_os("BENCH_SKIP_CLAUDE").is_none() {
        claude_part(tmp.path(), &home);
    }
    mix_part(tmp.path(), &home);
}
