//! What a Slurm job adds per task over the local executor, side by side, on the real one-node
//! cluster of tests/slurm-cluster.sh (brought up if needed; needs root for the first install).
//! The fake agent does almost nothing, so the time is the executor's.
//!
//! - a chain of tasks (each waits for the previous): latency per task, submit to result;
//! - independent tasks, all at once: throughput;
//! - for the Slurm chain, where the time goes, from the run's own event log: submit → the job
//!   starts on its node → the agent starts → the result is recorded → the orchestrator sees it
//!   (the next task's submit).
//!
//! Run: cargo bench --features test-fakes --bench slurm
//!
//! `GIT_PARALLEL_SLURM_LATENCY=D` (with `GIT_PARALLEL_SLURM_SCALE`): the repository, its HOME
//! and its worktrees live on a latency-fs mount (src/bin/latency-fs.rs) that answers every
//! file operation D ms late, as a shared NFS disk would; D=0 is FUSE without delay. There the
//! worktrees are full checkouts (no overlays on FUSE); `GIT_PARALLEL_SLURM_WORKTREE=checkout`
//! makes them so off FUSE too, for a like-for-like row.

mod common;
use common::*;
use git_parallel::store::runs::{self, Event};
use std::path::{Path, PathBuf};
use std::time::Instant;

const CHAIN: usize = 8;
const FAN: usize = 8;
const REPS: usize = 3;

fn cluster() -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slurm-cluster.sh");
    let dir = std::env::var("GIT_PARALLEL_SLURM_DIR").unwrap_or_else(|_| "/tmp/git-parallel-slurm".into());
    let st = std::process::Command::new(&script).args(["up", &dir]).status().unwrap();
    assert!(st.success(), "cluster did not come up");
    format!("{dir}/slurm.conf")
}

/// Run `prompts` with `executor`; wall seconds.
fn run(root: &Path, home: &Path, conf: &str, prompts: &Path, executor: &str, j: usize) -> f64 {
    let t = Instant::now();
    let o = cmd(bin(), root, home)
        .args(["run", prompts.to_str().unwrap(), "-j", &j.to_string(), "--no-integrate", "--executor", executor])
        .env("SLURM_CONF", conf)
        .env("NO_PROGRESS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Mean seconds of each phase of the chain's tasks in run `id`.
fn phases(root: &Path, id: &str) -> [f64; 4] {
    let repo = git_parallel::repo::Repo::discover(root).unwrap();
    let records = runs::events(&repo, id).unwrap();
    let at = |f: &dyn Fn(&Event) -> bool| records.iter().find(|r| f(&r.event)).map(|r| r.at);
    let mut sums = [0.0; 4];
    for i in 0..CHAIN {
        let t = format!("c{i}");
        let submitted = at(&|e| matches!(e, Event::Job { task, node: None, .. } if *task == t)).expect("submitted");
        let on_node = at(&|e| matches!(e, Event::Job { task, node: Some(_), .. } if *task == t)).expect("on node");
        let started = at(&|e| matches!(e, Event::Started { task, .. } if *task == t)).expect("started");
        let finished = at(&|e| matches!(e, Event::Finished { task, .. } if *task == t)).expect("finished");
        sums[0] += on_node - submitted;
        sums[1] += started - on_node;
        sums[2] += finished - started;
        if i + 1 < CHAIN {
            let next = format!("c{}", i + 1);
            let next_submit =
                at(&|e| matches!(e, Event::Job { task, node: None, .. } if *task == next)).expect("next submit");
            sums[3] += next_submit - finished;
        }
    }
    [sums[0] / CHAIN as f64, sums[1] / CHAIN as f64, sums[2] / CHAIN as f64, sums[3] / (CHAIN - 1) as f64]
}

/// A latency-fs mount of `backing` at `mnt`, `delay_ms` per call; unmounted when dropped, so
/// also when the benchmark panics.
struct LatencyMount {
    fs: std::process::Child,
    mnt: PathBuf,
}

impl LatencyMount {
    fn new(backing: &Path, mnt: &Path, delay_ms: u64) -> LatencyMount {
        std::fs::create_dir_all(backing).unwrap();
        std::fs::create_dir_all(mnt).unwrap();
        let mnt = mnt.canonicalize().unwrap();
        let fs = std::process::Command::new(env!("CARGO_BIN_EXE_latency-fs"))
            .arg(backing)
            .arg(&mnt)
            .arg(delay_ms.to_string())
            .spawn()
            .expect("latency-fs");
        let mut m = LatencyMount { fs, mnt };
        let t = Instant::now();
        while !mounted(&m.mnt) {
            assert!(m.fs.try_wait().unwrap().is_none(), "latency-fs exited before mounting");
            assert!(t.elapsed().as_secs() < 10, "latency-fs did not mount {}", m.mnt.display());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        m
    }
}

impl Drop for LatencyMount {
    fn drop(&mut self) {
        // SIGTERM: latency-fs unmounts (lazily when still busy) and exits.
        // SAFETY: kill has no memory effects; the pid is our own child's, not yet reaped.
        unsafe { libc::kill(self.fs.id() as libc::pid_t, libc::SIGTERM) };
        let t = Instant::now();
        while self.fs.try_wait().ok().flatten().is_none() {
            if t.elapsed().as_secs() >= 10 {
                let _ = self.fs.kill();
                let _ = self.fs.wait();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Killed, or it failed to unmount: detach the mount ourselves.
        if mounted(&self.mnt) {
            let ok = std::process::Command::new("umount").arg("-l").arg(&self.mnt).status().is_ok_and(|s| s.success());
            if !ok {
                let _ = std::process::Command::new("fusermount3").args(["-u", "-z"]).arg(&self.mnt).status();
            }
        }
    }
}

/// Whether something is mounted at `dir` (canonical), from /proc/self/mountinfo.
fn mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // The fifth field is the mount point, with spaces and the like escaped as \ooo.
    let want = dir.to_string_lossy().replace(' ', "\\040");
    info.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// `GIT_PARALLEL_SLURM_SCALE=N,MS,J`: N independent tasks whose agent sleeps MS ms, at -j J, on
/// the cluster: wall time, tasks failed, `sbatch` calls, and commits in the run's log per task.
/// With `GIT_PARALLEL_SLURM_KILL=F` the orchestrator is killed (SIGKILL) once a fraction F of
/// the tasks has succeeded and the run is resumed; every agent appends its task to a file
/// outside the repository, so a task run twice shows, whatever the log says. With
/// `GIT_PARALLEL_SLURM_LATENCY=D` the repository, HOME and worktrees are on a latency-fs mount.
fn scale(conf: &str, spec: &str) {
    let v: Vec<usize> = spec.split(',').map(|x| x.trim().parse().expect("N,MS,J")).collect();
    let (n, ms, j) = (v[0], v[1], v[2]);
    let kill_at: Option<f64> = std::env::var("GIT_PARALLEL_SLURM_KILL").ok().map(|f| f.parse().expect("a fraction"));
    let latency: Option<u64> =
        std::env::var("GIT_PARALLEL_SLURM_LATENCY").ok().map(|d| d.trim().parse().expect("milliseconds"));
    let tmp = tempfile::tempdir().unwrap();
    // Declared after `tmp`, so unmounted before the folder goes. The worktrees go to the
    // default `<repo>.parallel`, beside the repository: on the mount too.
    let mount = latency.map(|d| LatencyMount::new(&tmp.path().join("backing"), &tmp.path().join("mnt"), d));
    let shared = mount.as_ref().map(|m| m.mnt.clone()).unwrap_or_else(|| tmp.path().to_path_buf());
    let root = shared.join("repo");
    let home = shared.join("home");
    // The benchmark's own bookkeeping stays off the mount.
    let ran = tmp.path().join("ran");
    std::fs::create_dir_all(&home).unwrap();
    fake_agent_repo(&root, &home);
    // Overlay worktrees cannot sit on FUSE (overlayfs refuses it as an upper layer), so a run
    // there makes full checkouts: `GIT_PARALLEL_SLURM_WORKTREE=checkout` does the same off it.
    if let Ok(mode) = std::env::var("GIT_PARALLEL_SLURM_WORKTREE") {
        git(&root, &home, &["config", "parallel.worktree", &mode]);
    }
    let dir = root.join("scale");
    for i in 0..n {
        let script = format!("sh echo s{i} >> {}\nsleep {ms}\nwrite s{i}.txt {i}", ran.display());
        fake_prompt(&dir, &format!("s{i}"), &[], 1.0, &script);
    }
    // Ignored, not committed: the checkout each task gets stays the same size at any N (with
    // the prompts committed, 2,000 tasks each checked out 2,000 prompt files).
    std::fs::write(root.join(".git/info/exclude"), "scale/\n").unwrap();
    let repo = git_parallel::repo::Repo::discover(&root).unwrap();
    let gp = |args: &[&str]| {
        let mut c = cmd(bin(), &root, &home);
        c.args(args).env("SLURM_CONF", conf).env("NO_PROGRESS", "1");
        c
    };
    let t = Instant::now();
    let mut child = gp(&["run", "scale", "-j", &j.to_string(), "--no-integrate", "--executor", "slurm"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("run.err")).unwrap())
        .spawn()
        .unwrap();
    let mut killed_at = None;
    if let Some(f) = kill_at {
        let want = (n as f64 * f).ceil() as usize;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let done = runs::latest(&repo)
                .ok()
                .flatten()
                .and_then(|id| runs::load(&repo, &id).ok())
                .map(|s| s.tasks.iter().filter(|t| t.status == runs::TaskStatus::Succeeded).count())
                .unwrap_or(0);
            if done >= want || child.try_wait().unwrap().is_some() {
                killed_at = Some(done);
                break;
            }
        }
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let id = runs::latest(&repo).unwrap().unwrap();
    let mut exit = status.code().unwrap_or(-1);
    if killed_at.is_some() {
        let r = gp(&["resume", &id]).output().unwrap();
        exit = r.status.code().unwrap_or(-1);
    }
    let wall = t.elapsed().as_secs_f64();
    let state = runs::load(&repo, &id).unwrap();
    let failed = state.tasks.iter().filter(|t| t.status != runs::TaskStatus::Succeeded).count();
    let events = runs::events(&repo, &id).unwrap();
    // Submissions: the orchestrator's job events (a job's own carries its node); an array's
    // elements N_I share one sbatch.
    let submitted: Vec<&str> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::Job { id, node: None, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut sbatch: Vec<&str> = submitted.iter().map(|id| id.split('_').next().unwrap()).collect();
    sbatch.sort();
    sbatch.dedup();
    let mut runs_of: std::collections::HashMap<String, usize> = Default::default();
    for l in std::fs::read_to_string(&ran).unwrap_or_default().lines() {
        *runs_of.entry(l.to_string()).or_default() += 1;
    }
    let twice = runs_of.values().filter(|c| **c > 1).count();
    let never = n - runs_of.len();
    let err = std::fs::read_to_string(tmp.path().join("run.err")).unwrap_or_default();
    let worktrees = match err.lines().find(|l| l.contains("worktrees:")) {
        Some(l) if l.contains("overlays on") => "overlays",
        Some(l) if l.contains("full checkouts") => "checkouts",
        _ => "?",
    };
    println!("| tasks | agent | -j | fs latency | worktrees | wall | not succeeded | sbatch calls | log commits per task | killed at | agents run twice | never run | exit |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {n} | {:.1} s | {j} | {} | {worktrees} | {wall:.1} s | {failed} | {} | {:.2} | {} | {twice} | {never} | {exit} |",
        ms as f64 / 1000.0,
        latency.map(|d| format!("{d} ms")).unwrap_or_else(|| "- (no FUSE)".into()),
        sbatch.len(),
        events.len() as f64 / n as f64,
        killed_at.map(|k| format!("{k} done")).unwrap_or_else(|| "-".into()),
    );
    if exit != 0 {
        eprintln!("{err}");
        // Why jobs failed is in their own output, beside the worktrees; the folder goes with `tmp`.
        let slurm = root.with_extension("parallel").join(&id).join(".slurm");
        for e in std::fs::read_dir(&slurm).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for l in text.lines().filter(|l| l.contains("error") || l.contains("fatal")) {
                eprintln!("{}: {l}", e.file_name().to_string_lossy());
            }
        }
    }
}

/// `GIT_PARALLEL_SLURM_LIMITS=N`: what slurmctld itself takes, held jobs only (none runs):
/// N jobs submitted one `sbatch` each against one array of N, and one `squeue` of them all.
fn limits(conf: &str, n: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("job.sh");
    std::fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    let slurm = |program: &str, args: &[&str]| -> String {
        let o = std::process::Command::new(program).args(args).env("SLURM_CONF", conf).output().unwrap();
        assert!(o.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = format!("--output={}/%j.out", tmp.path().display());
    let common = ["--parsable", "--hold", "--job-name=gp-limits", &out, script.to_str().unwrap()];
    let t = Instant::now();
    for _ in 0..n {
        slurm("sbatch", &common);
    }
    let singles = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let array = format!("--array=0-{}", n - 1);
    let mut a = vec![array.as_str()];
    a.extend(common);
    slurm("sbatch", &a);
    let one_array = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let listed = slurm("squeue", &["-h", "-r", "--name=gp-limits", "-O", "JobArrayID:|,State:"]).lines().count();
    let poll = t.elapsed().as_secs_f64();
    slurm("scancel", &["--name=gp-limits"]);
    let config = slurm("scontrol", &["show", "config"]);
    let setting = |k: &str| {
        config
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.split('=').nth(1).unwrap_or("").trim().to_string())
            .unwrap_or_default()
    };
    println!("| jobs | {n} sbatch calls | one array of {n} | one squeue of {listed} | MaxJobCount | MaxArraySize |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {n} | {singles:.2} s ({:.1} ms each) | {one_array:.3} s | {poll:.3} s | {} | {} |",
        singles * 1000.0 / n as f64,
        setting("MaxJobCount"),
        setting("MaxArraySize")
    );
}

fn main() {
    let conf = cluster();
    if let Ok(n) = std::env::var("GIT_PARALLEL_SLURM_LIMITS") {
        limits(&conf, n.parse().expect("a number of jobs"));
        return;
    }
    if let Ok(spec) = std::env::var("GIT_PARALLEL_SLURM_SCALE") {
        scale(&conf, &spec);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    fake_agent_repo(&root, &home);
    let chain = root.join("chain");
    for i in 0..CHAIN {
        let deps = if i == 0 { vec![] } else { vec![format!("c{}", i - 1)] };
        fake_prompt(&chain, &format!("c{i}"), &deps, 1.0, &format!("write c{i}.txt {i}"));
    }
    let fan = root.join("fan");
    for i in 0..FAN {
        fake_prompt(&fan, &format!("f{i}"), &[], 1.0, &format!("write f{i}.txt {i}"));
    }
    git(&root, &home, &["add", "-A"]);
    git(&root, &home, &["commit", "-q", "-m", "prompts"]);

    let mut rows = Vec::new();
    let mut slurm_chain_runs = Vec::new();
    for (name, dir, j, n) in [("chain", &chain, 1, CHAIN), ("independent", &fan, FAN, FAN)] {
        let mut per = Vec::new();
        for executor in ["local", "slurm"] {
            let mut walls = Vec::new();
            for _ in 0..REPS {
                walls.push(run(&root, &home, &conf, dir, executor, j));
                if executor == "slurm" && name == "chain" {
                    slurm_chain_runs
                        .push(runs::latest(&git_parallel::repo::Repo::discover(&root).unwrap()).unwrap().unwrap());
                }
            }
            per.push(median(walls));
        }
        rows.push((name, n, j, per[0], per[1]));
    }
    println!("Slurm executor vs local, fake agent, median of {REPS} runs (one-node cluster on this machine):\n");
    println!("| plan | tasks | -j | local wall | slurm wall | local per task | slurm per task | added per task |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, n, j, local, slurm) in rows {
        println!(
            "| {name} | {n} | {j} | {local:.2} s | {slurm:.2} s | {:.2} s | {:.2} s | {:.2} s |",
            local / n as f64,
            slurm / n as f64,
            (slurm - local) / n as f64
        );
    }
    let mut p = [0.0; 4];
    for id in &slurm_chain_runs {
        let q = phases(&root, id);
        for k in 0..4 {
            p[k] += q[k] / slurm_chain_runs.len() as f64;
        }
    }
    println!("\nWhere a Slurm task's time goes (chain, mean per task, from the run's event log):\n");
    println!("| submit → job on its node | node → agent started | agent started → result recorded | recorded → next task submitted |");
    println!("| ---: | ---: | ---: | ---: |");
    println!("| {:.2} s | {:.2} s | {:.2} s | {:.2} s |", p[0], p[1], p[2], p[3]);
}
