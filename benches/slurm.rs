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

/// `GIT_PARALLEL_SLURM_SCALE=N,MS,J`: N independent tasks whose agent sleeps MS ms, at -j J, on
/// the cluster: wall time, tasks failed, and commits in the run's log per task.
fn scale(conf: &str, spec: &str) {
    let v: Vec<usize> = spec.split(',').map(|x| x.trim().parse().expect("N,MS,J")).collect();
    let (n, ms, j) = (v[0], v[1], v[2]);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    fake_agent_repo(&root, &home);
    let dir = root.join("scale");
    for i in 0..n {
        fake_prompt(&dir, &format!("s{i}"), &[], 1.0, &format!("sleep {ms}\nwrite s{i}.txt {i}"));
    }
    // Ignored, not committed: the checkout each task gets stays the same size at any N (with
    // the prompts committed, 2,000 tasks each checked out 2,000 prompt files).
    std::fs::write(root.join(".git/info/exclude"), "scale/\n").unwrap();
    let t = Instant::now();
    let o = cmd(bin(), &root, &home)
        .args(["run", "scale", "-j", &j.to_string(), "--no-integrate", "--executor", "slurm"])
        .env("SLURM_CONF", conf)
        .env("NO_PROGRESS", "1")
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    let repo = git_parallel::repo::Repo::discover(&root).unwrap();
    let id = runs::latest(&repo).unwrap().unwrap();
    let state = runs::load(&repo, &id).unwrap();
    let failed = state.tasks.iter().filter(|t| t.status != runs::TaskStatus::Succeeded).count();
    let commits = runs::events(&repo, &id).unwrap().len();
    println!("| tasks | agent | -j | wall | not succeeded | log commits per task | exit |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {n} | {:.1} s | {j} | {wall:.1} s | {failed} | {:.2} | {} |",
        ms as f64 / 1000.0,
        commits as f64 / n as f64,
        o.status.code().unwrap_or(-1)
    );
}

fn main() {
    let conf = cluster();
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
