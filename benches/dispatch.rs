//! Dispatch latency: how long a ready task waits for git-parallel itself.
//!
//! - The critical-path trap (A 4 s → D 4 s; B 1 s → E 3 s; C 1 s → F 3 s; two workers;
//!   sleeping agents, so no agent uses CPU): the optimum is 8 s from the first start to the
//!   last end; phase barriers give 10 s. Reported: that span and the whole command, per run.
//! - A chain of 20 tasks of 100 ms: a task's end (its result recorded) to its dependent's
//!   start, from the run's own event log; the median and the worst.
//!
//! Run: cargo bench --features test-fakes --bench dispatch   (DISPATCH_REPS, default 3)

mod common;
use common::*;
use git_parallel::store::runs::{self, Event};
use std::path::Path;
use std::time::Instant;

fn events(root: &Path, run: &str) -> Vec<runs::Record> {
    let repo = git_parallel::repo::Repo::discover(root).unwrap();
    runs::events(&repo, run).unwrap()
}

fn run(root: &Path, home: &Path, dir: &Path, j: usize) -> f64 {
    let t = Instant::now();
    gp(root, home, &["run", dir.to_str().unwrap(), "-j", &j.to_string(), "--no-integrate"]);
    t.elapsed().as_secs_f64()
}

fn main() {
    let reps: usize = std::env::var("DISPATCH_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    fake_agent_repo(&root, &home);
    std::fs::write(root.join(".git/info/exclude"), "trap-*/\nchain-*/\n").unwrap();
    let mut run_no = 0;
    println!("| trap run | span (first start to last end) | whole command |");
    println!("| ---: | ---: | ---: |");
    for rep in 0..reps {
        let dir = root.join(format!("trap-{rep}"));
        for (id, secs, deps) in [
            ("a", 4, vec![]),
            ("b", 1, vec![]),
            ("c", 1, vec![]),
            ("d", 4, vec!["a"]),
            ("e", 3, vec!["b"]),
            ("f", 3, vec!["c"]),
        ] {
            let deps: Vec<String> = deps.into_iter().map(String::from).collect();
            fake_prompt(
                &dir,
                &format!("{id}{rep}"),
                &deps.iter().map(|d| format!("{d}{rep}")).collect::<Vec<_>>(),
                secs as f64,
                &format!("sleep {}", secs * 1000),
            );
        }
        let whole = run(&root, &home, &dir, 2);
        run_no += 1;
        let ev = events(&root, &run_no.to_string());
        let first =
            ev.iter().filter(|r| matches!(r.event, Event::Started { .. })).map(|r| r.at).fold(f64::MAX, f64::min);
        let last = ev.iter().filter(|r| matches!(r.event, Event::Finished { .. })).map(|r| r.at).fold(0.0, f64::max);
        println!("| {} | {:.2} s | {whole:.2} s |", rep + 1, last - first);
    }
    println!();
    println!("| chain run | transitions | median end → next start | worst |");
    println!("| ---: | ---: | ---: | ---: |");
    for rep in 0..reps {
        let dir = root.join(format!("chain-{rep}"));
        for i in 0..20 {
            let deps = if i == 0 { vec![] } else { vec![format!("c{}-{rep}", i - 1)] };
            fake_prompt(&dir, &format!("c{i}-{rep}"), &deps, 0.1, "sleep 100");
        }
        run(&root, &home, &dir, 1);
        run_no += 1;
        let ev = events(&root, &run_no.to_string());
        let at = |want: &dyn Fn(&Event) -> bool| ev.iter().find(|r| want(&r.event)).map(|r| r.at).unwrap();
        let mut gaps: Vec<f64> = (1..20)
            .map(|i| {
                let (prev, next) = (format!("c{}-{rep}", i - 1), format!("c{i}-{rep}"));
                let end = at(&|e| matches!(e, Event::Finished { task, .. } if *task == prev));
                let start = at(&|e| matches!(e, Event::Started { task, .. } if *task == next));
                (start - end) * 1000.0
            })
            .collect();
        gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("| {} | {} | {:.0} ms | {:.0} ms |", rep + 1, gaps.len(), gaps[gaps.len() / 2], gaps[gaps.len() - 1]);
    }
}
