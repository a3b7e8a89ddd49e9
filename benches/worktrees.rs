//! Worktrees side by side in one run: full checkouts against overlays, per task wall time and
//! disk at growing repository sizes; then (GIT_PARALLEL_WARM_BENCH=1) a Rust build in a task's
//! worktree, cold against `parallel.warm = target`, on this repository itself.
//!
//! Run: cargo bench --features test-fakes --bench worktrees
//! Sizes: GIT_PARALLEL_WORKTREE_SIZES=1000,50000,200000 (files; the default).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const TASKS: usize = 8;
const JOBS: &str = "4";

/// A repository of `files` small files, 100 to a folder, with the prompts out of its tree.
fn sized_repo(root: &Path, home: &Path, files: usize) {
    fake_agent_repo(root, home);
    for i in 0..files {
        let dir = root.join(format!("src/d{}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
    }
    std::fs::write(root.join(".git/info/exclude"), "prompts/\n").unwrap();
    git(root, home, &["add", "-A"]);
    git(root, home, &["commit", "-q", "-m", "tree"]);
}

/// Kilobytes `du` counts under `paths` (those that exist).
fn du_kb(paths: &[std::path::PathBuf]) -> u64 {
    let there: Vec<_> = paths.iter().filter(|p| p.exists()).collect();
    if there.is_empty() {
        return 0;
    }
    let o = Command::new("du").arg("-sk").arg("-c").args(&there).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    text.lines().last().and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// Per task wall time and CPU time (ms) of TASKS trivial tasks at -j JOBS, the disk one running
/// task holds and the shared base (KiB), in `mode`; `run` is the number the timed run gets.
fn measure(root: &Path, home: &Path, mode: &str, run: usize) -> (f64, f64, u64, u64) {
    git(root, home, &["config", "parallel.worktree", mode]);
    let (per_task, cpu) = timed_run_cpu(root, home, TASKS);
    let prompts = root.join("prompts");
    // One more task that holds its worktree while `du` looks at it.
    let _ = std::fs::remove_dir_all(&prompts);
    let flag = root.join(format!("../held-{mode}"));
    fake_prompt(
        &prompts,
        "held",
        &[],
        1.0,
        &format!("write src/d0/changed.txt changed\nsh touch {}\nsleep 1500", flag.display()),
    );
    let mut child =
        cmd(bin(), root, home).args(["run", "prompts", "--no-integrate"]).env("NO_PROGRESS", "1").spawn().unwrap();
    while !flag.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let run_dir =
        root.parent().unwrap().join(format!("{}.parallel/{}", root.file_name().unwrap().to_string_lossy(), run + 1));
    let task = du_kb(&[run_dir.join("held"), run_dir.join(".layers/held")]);
    let shared = du_kb(&[root
        .parent()
        .unwrap()
        .join(format!("{}.parallel/.bases", root.file_name().unwrap().to_string_lossy()))]);
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_file(&flag);
    (per_task, cpu, task, shared)
}

/// Per task wall time (ms) of one run of `tasks` trivial tasks at -j JOBS.
fn timed_run(root: &Path, home: &Path, tasks: usize) -> f64 {
    timed_run_cpu(root, home, tasks).0
}

/// CPU seconds (user + system) of our waited-for children so far: the run and everything it
/// waited for (git, supervisors, agents).
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Per task wall time and CPU time (ms) of one run of `tasks` trivial tasks at -j JOBS. CPU
/// time is what the machine spent, whatever else runs beside: the steadier of the two on a
/// busy machine.
fn timed_run_cpu(root: &Path, home: &Path, tasks: usize) -> (f64, f64) {
    let prompts = root.join("prompts");
    let _ = std::fs::remove_dir_all(&prompts);
    for i in 0..tasks {
        fake_prompt(&prompts, &format!("t{i}"), &[], 1.0, &format!("write src/d0/new{i}.txt {i}"));
    }
    let (t, cpu) = (Instant::now(), children_cpu());
    gp(root, home, &["run", "prompts", "-j", JOBS, "--no-integrate"]);
    (t.elapsed().as_secs_f64() * 1e3 / tasks as f64, (children_cpu() - cpu) * 1e3 / tasks as f64)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("GIT_PARALLEL_WORKTREE_SIZES")
        .unwrap_or_else(|_| "1000,50000,200000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    println!("{TASKS} trivial tasks at -j {JOBS}, per task wall time; disk one running task holds (and the run's shared base):\n");
    println!("| files | checkout: per task | overlay, first run: per task | overlay: per task | overlay: one more task | overlay: one more task, CPU | checkout: disk per task | overlay: disk per task (+ shared base once) |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut first: Option<(f64, f64)> = None;
    for n in &sizes {
        let root = tmp.path().join(format!("r{n}/repo"));
        sized_repo(&root, &home, *n);
        // Runs 1 and 2: checkout (the timed run, then the held task). Run 3: the first overlay
        // run, which makes the shared base checkout; 4 and 5: overlay as every later run is.
        let (c_ms, _, c_kb, _) = measure(&root, &home, "checkout", 1);
        git(&root, &home, &["config", "parallel.worktree", "overlay"]);
        let o_first = timed_run(&root, &home, TASKS);
        let (o_ms, o_cpu, o_kb, base_kb) = measure(&root, &home, "overlay", 4);
        // What one more task adds, without the run's own once-per-run work (planning, the
        // uncommitted-changes check): a run of twice as many tasks, less the TASKS run.
        // A difference of two runs is noisy: the median of three pairs.
        let pairs: Vec<(f64, f64)> = (0..3)
            .map(|i| {
                let (ms8, cpu8) = if i == 0 { (o_ms, o_cpu) } else { timed_run_cpu(&root, &home, TASKS) };
                let (ms16, cpu16) = timed_run_cpu(&root, &home, 2 * TASKS);
                (ms16 * 2.0 - ms8, cpu16 * 2.0 - cpu8)
            })
            .collect();
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let o_marginal = median(&mut pairs.iter().map(|p| p.0).collect());
        let o_marginal_cpu = median(&mut pairs.iter().map(|p| p.1).collect());
        first.get_or_insert((c_ms, o_ms));
        println!(
            "| {n} | {c_ms:.0} ms | {o_first:.0} ms | {o_ms:.0} ms | {o_marginal:.0} ms | {o_marginal_cpu:.0} ms | {:.1} MiB | {:.1} MiB (+ {:.1} MiB) |",
            c_kb as f64 / 1024.0,
            o_kb as f64 / 1024.0,
            base_kb as f64 / 1024.0
        );
        let _ = std::fs::remove_dir_all(tmp.path().join(format!("r{n}")));
    }
    if let (Some((c0, o0)), Some(last)) = (first, sizes.last()) {
        println!("\n(ratios to the smallest size are in the README's table, computed from these rows: checkout {c0:.0} ms, overlay {o0:.0} ms at {} files, largest {last})", sizes[0]);
    }
    if std::env::var_os("GIT_PARALLEL_WARM_BENCH").is_some() {
        warm(tmp.path(), &home);
    }
}

/// A task that builds this repository's tests (`cargo test --no-run --offline`), in a cold
/// worktree and with `parallel.warm = target` over a target folder built once beforehand.
fn warm(tmp: &Path, home: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tmp.join("self/repo");
    std::fs::create_dir_all(root.parent().unwrap()).unwrap();
    git(tmp, home, &["clone", "-q", src.to_str().unwrap(), root.to_str().unwrap()]);
    configure_fake_agent(&root, home);
    git(&root, home, &["config", "parallel.timeout", "60m"]);
    std::fs::write(root.join(".git/info/exclude"), "prompts/\n").unwrap();
    // The user's own build, done once before the run (what `parallel.warm` offers).
    let cargo_home =
        std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap()));
    let build = |dir: &Path| {
        let t = Instant::now();
        let st = Command::new("cargo")
            .args(["test", "--no-run", "--offline", "--quiet"])
            .current_dir(dir)
            .env("CARGO_HOME", &cargo_home)
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .unwrap();
        assert!(st.success());
        t.elapsed().as_secs_f64()
    };
    let first = build(&root);
    let prompts = root.join("prompts");
    let script = format!(
        "sh CARGO_HOME={cargo_home} cargo test --no-run --offline --quiet > /dev/null 2>&1 && echo ok > built.txt"
    );
    let mut times = Vec::new();
    for (run, (mode, warm)) in [("cold", ""), ("warm", "target")].into_iter().enumerate() {
        git(&root, home, &["config", "parallel.warm", warm]);
        let _ = std::fs::remove_dir_all(&prompts);
        fake_prompt(&prompts, &format!("build-{mode}"), &[], 1.0, &script);
        let t = Instant::now();
        gp(&root, home, &["run", "prompts", "--no-integrate"]);
        times.push(t.elapsed().as_secs_f64());
        // The fake agent ignores a shell line's status: only the file it writes after a build
        // that succeeded says the time is a build's, not a failure's.
        git(&root, home, &["cat-file", "-e", &format!("parallel/{}/build-{mode}:built.txt", run + 1)]);
    }
    println!("\n`cargo test --no-run` of this repository inside a task (the user's own first build: {first:.0} s):\n");
    println!("| worktree | task's run |");
    println!("| --- | ---: |");
    println!("| cold | {:.1} s |", times[0]);
    println!("| parallel.warm = target | {:.1} s ({:.1}x faster) |", times[1], times[0] / times[1]);
}
