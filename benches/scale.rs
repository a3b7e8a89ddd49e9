//! How the run engine grows: `git parallel run` of 100, 1,000 (and 10,000) trivial tasks side by
//! side (wall per task, orchestrator CPU and peak RSS, `.git` growth per task after gc, `status`,
//! `integrate`, `clean`), then `status` over 10, 100 and 1,000 stored runs and `integrate` of 5,
//! 50 and 500 task branches. (Planning growth: benches/plan.rs.)
//! Run: cargo bench --bench scale   (BENCH_TASKS=100,1000,10000 to choose the run sizes;
//! BENCH_RUNS_ONLY=1 for the first table only; BENCH_FAILURES=3 for three runs of the issue's
//! reproduction of engine failures instead; BENCH_BIN=path to measure another build)

mod common;
use common::*;
use git_parallel::prompt::TaskType;
use git_parallel::repo::Repo;
use git_parallel::store::{layout, objects, runs::*};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

fn init(root: &Path, home: &Path) {
    std::fs::create_dir_all(root).unwrap();
    git(root, home, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("README.md"), "scale\n").unwrap();
    git(root, home, &["add", "-A"]);
    git(root, home, &["commit", "-q", "-m", "init"]);
}

/// A finished run of `tasks` tasks whose results are commits adding one file each.
fn finished_run(repo: &Repo, plan: &str, base: gix::ObjectId, ids: &[String]) -> String {
    let tasks = ids.iter().map(|t| (t.clone(), TaskType::Feature)).collect();
    let mut log = RunLog::create(
        repo,
        Event::Planned {
            plan: plan.into(),
            base: base.to_string(),
            agent: "fake".into(),
            workers: 4,
            tasks,
            sandbox: false,
        },
    )
    .unwrap();
    let base_tree = repo.gix.find_commit(base).unwrap().tree_id().unwrap().detach();
    for t in ids {
        let blob = objects::write_blob(repo, format!("{t}\n").as_bytes()).unwrap();
        let tree = objects::write_tree(repo, Some(base_tree), &BTreeMap::from([(format!("{t}.txt"), blob)])).unwrap();
        let commit = objects::write_commit(repo, tree, &[base], &format!("task {t}\n")).unwrap();
        objects::cas_update(repo, &layout::task_branch(&log.id, t), commit, None, "bench").unwrap();
        log.append(
            Event::Started {
                task: t.clone(),
                attempt: 1,
                worktree: String::new(),
                branch: layout::task_branch(&log.id, t),
                start_commit: base.to_string(),
                agent: None,
            },
            &[],
        )
        .unwrap();
        log.append(
            Event::Finished {
                task: t.clone(),
                status: TaskStatus::Succeeded,
                commit: Some(commit.to_string()),
                reason: None,
                exit_code: Some(0),
                metrics: Metrics { turns: Some(3), cost_usd: Some(0.01), ..Default::default() },
                files_changed: vec![format!("{t}.txt")],
                wall_ms: 60_000,
            },
            &write_task_logs(repo, b"{}\n", b"").unwrap(),
        )
        .unwrap();
    }
    log.append(Event::Ended { status: RunStatus::Succeeded }, &[]).unwrap();
    log.id.clone()
}

fn plan_of(root: &Path, home: &Path, n: usize, tag: &str) -> String {
    let dir = root.join(format!("prompts-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("t{i}.md")), format!("---\nfiles: [t{i}.txt]\n---\nTask {i}\n")).unwrap();
    }
    gp(root, home, &["plan", dir.to_str().unwrap(), "-j", "4"]);
    git(root, home, &["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/plans/"])
        .lines()
        .filter_map(|l| l.parse::<u64>().ok())
        .max()
        .unwrap()
        .to_string()
}

/// Apparent size in bytes of everything under `p`.
fn bytes(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let Ok(m) = e.path().symlink_metadata() else { continue };
        total += if m.is_dir() { bytes(&e.path()) } else { m.len() };
    }
    total
}

/// (user + system CPU seconds of the process itself, peak RSS bytes) from /proc, or None once gone.
fn own_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = (f[11].parse::<u64>().ok()? + f[12].parse::<u64>().ok()?) as f64;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    Some((ticks / hz, hwm * 1024))
}

/// A repository at `root` with `n` independent trivial tasks in `prompts/` (a custom agent
/// writing one file each, generous governor limits, `extra` settings on top), not committed.
fn trivial_tasks(root: &Path, home: &Path, n: usize, extra: &[(&str, &str)]) -> std::path::PathBuf {
    init(root, home);
    let agent = "sh -c \"mkdir -p out && echo {task} > out/{task}.txt\"";
    let settings = [
        ("parallel.agent", "custom"),
        ("parallel.agentCommand", agent),
        ("parallel.cpuPerTask", "0.1"),
        ("parallel.reserveCpus", "0"),
        ("parallel.memoryPerTask", "1"),
        ("parallel.cpuLimit", "1000"),
    ];
    for (k, v) in settings.iter().chain(extra) {
        git(root, home, &["config", k, v]);
    }
    let dir = root.join("prompts");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("t{i}.md")),
            format!("---\nfiles: [out/t{i}.txt]\n---\n# Task t{i}\n\nWrite it.\n"),
        )
        .unwrap();
    }
    root.to_path_buf()
}

/// One run of `n` independent trivial tasks (custom agent writing one file), `-j 8`: the table
/// row, wall ms per task, orchestrator CPU ms per task.
fn run_at(tmp: &Path, home: &Path, n: usize) -> (String, f64, f64) {
    // The repository's growth is measured after an explicit gc below.
    let root = trivial_tasks(&tmp.join(format!("run{n}")), home, n, &[("gc.auto", "0")]);
    // Untracked prompts: the tasks' worktrees hold the repository, not the 10,000 prompts.
    gp(&root, home, &["plan", "prompts", "-j", "8"]);
    let git_before = bytes(&root.join(".git"));
    let t = Instant::now();
    let mut child = cmd(bin(), &root, home)
        .args(["run", "1", "-j", "8", "--no-integrate"])
        .env("NO_PROGRESS", "1")
        .stdout(std::process::Stdio::null())
        // To a file: a pipe nobody reads would stop the run once its narration fills it.
        .stderr(std::fs::File::create(tmp.join(format!("run{n}.err"))).unwrap())
        .spawn()
        .unwrap();
    let mut usage = (0.0, 0);
    while child.try_wait().unwrap().is_none() {
        if let Some(u) = own_usage(child.id()) {
            usage = u;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let wall = t.elapsed().as_secs_f64();
    let state: serde_json::Value = serde_json::from_str(&gp(&root, home, &["status", "1", "--json"])).unwrap();
    let failed = state["tasks"].as_array().unwrap().iter().filter(|t| t["status"] != "succeeded").count();
    let worktrees_left = git(&root, home, &["worktree", "list"]).lines().count() - 1;
    let git_run = bytes(&root.join(".git"));
    git(&root, home, &["gc", "--quiet"]);
    let git_gc = bytes(&root.join(".git"));
    // After gc (the objects packed), as the run's end-of-run maintenance leaves a big run.
    let status = median(5, || {
        gp(&root, home, &["status"]);
    });
    let status_run = median(5, || {
        gp(&root, home, &["status", "1"]);
    });
    let t = Instant::now();
    gp(&root, home, &["integrate", "1"]);
    let integrate = t.elapsed().as_secs_f64();
    let t = Instant::now();
    gp(&root, home, &["clean", "--run", "1"]);
    let clean = t.elapsed().as_secs_f64();
    let row = format!(
        "| {n} | {:.0} ms | {failed} | {:.1} s | {:.0} MB | {worktrees_left} | {:.0} KB | {:.1} KB | {:.0} ms | {:.0} ms | {:.1} s | {:.1} s |",
        wall * 1e3 / n as f64,
        usage.0,
        usage.1 as f64 / 1e6,
        (git_run - git_before) as f64 / 1e3 / n as f64,
        (git_gc.saturating_sub(git_before)) as f64 / 1e3 / n as f64,
        status.as_secs_f64() * 1e3,
        status_run.as_secs_f64() * 1e3,
        integrate,
        clean,
    );
    (row, wall * 1e3 / n as f64, usage.0 * 1e3 / n as f64)
}

/// The reproduction of engine failures: `n` trivial tasks whose prompts are committed,
/// git's default `gc.auto` (so the run's own commits would start `gc --auto`), `-j 8`. Returns
/// the failed tasks' reasons and the wall time per task.
fn engine_failures(tmp: &Path, home: &Path, n: usize, round: usize) -> (Vec<String>, f64) {
    let root = trivial_tasks(&tmp.join(format!("failures{round}")), home, n, &[]);
    git(&root, home, &["add", "-A"]);
    git(&root, home, &["commit", "-q", "-m", "prompts"]);
    let t = Instant::now();
    let o = cmd(bin(), &root, home)
        .args(["run", "prompts", "-j", "8", "--no-integrate"])
        .env("NO_PROGRESS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.join(format!("failures{round}.err"))).unwrap())
        .status()
        .unwrap();
    let wall = t.elapsed().as_secs_f64() * 1e3 / n as f64;
    let state: serde_json::Value = serde_json::from_str(&gp(&root, home, &["status", "1", "--json"])).unwrap();
    let failed: Vec<String> = state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] != "succeeded")
        .map(|t| format!("{}: {}", t["id"], t["reason"]))
        .collect();
    assert_eq!(o.success(), failed.is_empty(), "exit status and task states disagree");
    let _ = std::fs::remove_dir_all(root.parent().unwrap().join(format!("failures{round}.parallel")));
    let _ = std::fs::remove_dir_all(&root);
    (failed, wall)
}

/// Bars of wall time and orchestrator CPU per task, one pair per run size.
fn svg(rows: &[(usize, f64, f64)]) -> String {
    let max = rows.iter().map(|r| r.1.max(r.2)).fold(1.0, f64::max);
    let (left, width, bar) = (110.0, 420.0, 12.0);
    let h = 40.0 + rows.len() as f64 * 34.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
        left + width + 80.0
    );
    for (i, (n, wall, cpu)) in rows.iter().enumerate() {
        let y = 14.0 + i as f64 * 34.0;
        s.push_str(&format!("<text x=\"4\" y=\"{}\">{n} tasks</text>", y + bar));
        for (k, (v, color)) in [(wall, "#1565c0"), (cpu, "#ef6c00")].iter().enumerate() {
            let yy = y + k as f64 * bar;
            let w = width * *v / max;
            s.push_str(&format!(
                "<rect x=\"{left}\" y=\"{yy}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{v:.0} ms</text>",
                bar - 1.0,
                left + w + 4.0,
                yy + bar - 2.0
            ));
        }
    }
    s.push_str(&format!(
        "<text x=\"{left}\" y=\"{}\" fill=\"#1565c0\">wall per task (-j 8)</text><text x=\"{}\" y=\"{}\" fill=\"#ef6c00\">orchestrator CPU per task</text></svg>\n",
        h - 6.0,
        left + 160.0,
        h - 6.0
    ));
    s
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    if let Some(rounds) = std::env::var("BENCH_FAILURES").ok().and_then(|v| v.parse::<usize>().ok()) {
        println!("engine failures: 1,000 trivial tasks, prompts committed, git's default gc.auto, -j 8\n");
        println!("| round | failed tasks | wall per task | reasons |");
        println!("| ---: | ---: | ---: | --- |");
        for round in 1..=rounds {
            let (failed, wall) = engine_failures(tmp.path(), &home, 1000, round);
            println!("| {round} | {} | {wall:.0} ms | {} |", failed.len(), failed.join("; "));
        }
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_TASKS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("trivial agent (`sh -c \"mkdir -p out && echo {{task}} > out/{{task}}.txt\"`), independent tasks, -j 8, parallel.cpuPerTask 0.1\n");
    println!("| tasks | wall per task | failed | orchestrator CPU | peak RSS | worktrees left | `.git` per task (before gc) | `.git` per task (after gc) | `status` | `status RUN` | `integrate` | `clean --run` |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut chart = Vec::new();
    for n in sizes {
        let (row, wall, cpu) = run_at(tmp.path(), &home, n);
        println!("{row}");
        chart.push((n, wall, cpu));
    }
    if chart.len() > 1 {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scale.svg");
        std::fs::write(&out, svg(&chart)).unwrap();
        println!("\nchart: {}", out.display());
    }
    if std::env::var_os("BENCH_RUNS_ONLY").is_some() {
        return;
    }
    println!();

    println!("| stored runs (3 tasks each) | `status` | `status --json` | `status` after `git gc` |");
    println!("| ---: | ---: | ---: | ---: |");
    let root = tmp.path().join("status");
    init(&root, &home);
    let repo = Repo::discover(&root).unwrap();
    let base = repo.head_commit().unwrap();
    let plan = plan_of(&root, &home, 3, "status");
    let ids: Vec<String> = (0..3).map(|i| format!("t{i}")).collect();
    let mut made = 0;
    for n in [10, 100, 1000] {
        while made < n {
            finished_run(&repo, &plan, base, &ids);
            made += 1;
        }
        let human = median(5, || {
            gp(&root, &home, &["status"]);
        });
        let json = median(5, || {
            gp(&root, &home, &["status", "--json"]);
        });
        // Loose objects (as a run leaves them), then packed (as gc leaves them).
        git(&root, &home, &["gc", "--quiet"]);
        let packed = median(5, || {
            gp(&root, &home, &["status"]);
        });
        println!(
            "| {n} | {:.0} ms | {:.0} ms | {:.0} ms |",
            human.as_secs_f64() * 1e3,
            json.as_secs_f64() * 1e3,
            packed.as_secs_f64() * 1e3
        );
    }

    println!("\n| task branches | `integrate` (in memory, one ref update) |");
    println!("| ---: | ---: |");
    for n in [5, 50, 500] {
        let root = tmp.path().join(format!("integrate{n}"));
        init(&root, &home);
        let repo = Repo::discover(&root).unwrap();
        let base = repo.head_commit().unwrap();
        let plan = plan_of(&root, &home, n, "i");
        let ids: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let reps = if n >= 500 { 1 } else { 3 };
        let mut times = Vec::new();
        for _ in 0..reps {
            let run = finished_run(&repo, &plan, base, &ids);
            let t = Instant::now();
            gp(&root, &home, &["integrate", &run]);
            times.push(t.elapsed());
            assert_eq!(
                git(&root, &home, &["ls-tree", "--name-only", &format!("parallel/{run}/integration")]).lines().count(),
                n + 1
            );
        }
        times.sort();
        println!("| {n} | {:.0} ms |", times[times.len() / 2].as_secs_f64() * 1e3);
    }
}
