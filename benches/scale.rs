//! How status and integration grow: `git parallel status` over 10, 100 and 1,000 stored runs,
//! and `git parallel integrate` of 5, 50 and 500 task branches. (Planning growth: benches/plan.rs.)
//! Run: cargo bench --bench scale

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
        Event::Planned { plan: plan.into(), base: base.to_string(), agent: "fake".into(), workers: 4, tasks },
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

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    println!("| stored runs (3 tasks each) | `status` | `status --json` |");
    println!("| ---: | ---: | ---: |");
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
        println!("| {n} | {:.0} ms | {:.0} ms |", human.as_secs_f64() * 1e3, json.as_secs_f64() * 1e3);
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
