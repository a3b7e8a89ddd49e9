//! Scheduling efficiency, measured: synthetic DAG workloads run for real with the fake agent
//! sleeping scaled durations. Reports makespan / lower bound, where lower bound =
//! max(critical path, total work / workers) over the tasks' measured durations, for our
//! critical-path list scheduler and for a phase-barrier baseline run side by side.
//! Run: cargo bench --features test-fakes --bench schedule   (BENCH_QUICK=1: 10 random DAGs)

mod common;
use common::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::path::Path;

/// One workload: durations in units and predecessor lists.
struct Workload {
    name: String,
    durations: Vec<f64>,
    preds: Vec<Vec<usize>>,
    workers: usize,
}

fn lower_bound(d: &[f64], preds: &[Vec<usize>], workers: usize) -> f64 {
    let mut finish = vec![0.0f64; d.len()];
    for i in 0..d.len() {
        // Tasks are indexed in a topological order.
        finish[i] = preds[i].iter().map(|&p| finish[p]).fold(0.0, f64::max) + d[i];
    }
    let cp = finish.iter().cloned().fold(0.0, f64::max);
    cp.max(d.iter().sum::<f64>() / workers as f64)
}

/// Run a workload for real; returns (makespan, lower bound from measured durations) in seconds.
fn measure(root: &Path, home: &Path, w: &Workload, unit_ms: u64, barrier: bool, n: &mut usize) -> (f64, f64) {
    *n += 1;
    let dir = root.join(format!("prompts-{n}"));
    for (i, d) in w.durations.iter().enumerate() {
        let deps: Vec<String> = w.preds[i].iter().map(|p| format!("t{p}")).collect();
        let ms = (*d * unit_ms as f64) as u64;
        fake_prompt(&dir, &format!("t{i}"), &deps, *d, &format!("sleep {ms}\nwrite t{i}-{n}.txt x"));
    }
    let j = w.workers.to_string();
    let mut args = vec!["run", dir.to_str().unwrap(), "-j", &j, "--no-integrate"];
    if barrier {
        args.push("--phase-barrier");
    }
    gp(root, home, &args);
    let run = git(
        root,
        home,
        &["for-each-ref", "--count=1", "--sort=-creatordate", "--format=%(refname:lstrip=3)", "refs/parallel/runs/"],
    );
    let runs: Vec<u64> = git(root, home, &["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/runs/"])
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let run = runs.iter().max().map(|r| r.to_string()).unwrap_or(run);
    let s = run_state(root, home, &run);
    let tasks = s["tasks"].as_array().unwrap();
    let start = tasks.iter().filter_map(|t| t["started_at"].as_f64()).fold(f64::INFINITY, f64::min);
    let end = tasks.iter().filter_map(|t| t["finished_at"].as_f64()).fold(0.0, f64::max);
    let measured: Vec<f64> = tasks.iter().map(|t| t["wall_ms"].as_f64().unwrap() / 1000.0).collect();
    (end - start, lower_bound(&measured, &w.preds, w.workers))
}

fn workloads(random: usize) -> Vec<Workload> {
    let mut v = vec![
        Workload {
            name: "independent (8 x 4, 4 workers)".into(),
            durations: vec![4.0; 8],
            preds: vec![vec![]; 8],
            workers: 4,
        },
        Workload {
            name: "chains (2 x 4 tasks, 2 workers)".into(),
            durations: vec![3.0, 2.0, 4.0, 3.0, 2.0, 3.0, 3.0, 4.0],
            preds: vec![vec![], vec![0], vec![1], vec![2], vec![], vec![4], vec![5], vec![6]],
            workers: 2,
        },
        Workload {
            name: "diamonds (2 x 1-3-1, 3 workers)".into(),
            durations: vec![2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 2.0],
            preds: vec![
                vec![],
                vec![0],
                vec![0],
                vec![0],
                vec![1, 2, 3],
                vec![4],
                vec![5],
                vec![5],
                vec![5],
                vec![6, 7, 8],
            ],
            workers: 3,
        },
        Workload {
            // The seed's example: 240 minutes of work, a 90-minute chain, 4 workers: 90 minutes.
            name: "mixed 8 tasks, 240 min -> 90 min (4 workers)".into(),
            durations: vec![3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0],
            preds: vec![vec![], vec![0], vec![1], vec![], vec![], vec![], vec![], vec![]],
            workers: 4,
        },
        Workload {
            // The design's example where phase barriers lose: A(4)->D(4), B(1)->E(3), C(1)->F(3).
            name: "barrier trap (design example, 2 workers)".into(),
            durations: vec![4.0, 1.0, 1.0, 4.0, 3.0, 3.0],
            preds: vec![vec![], vec![], vec![], vec![0], vec![1], vec![2]],
            workers: 2,
        },
    ];
    let mut rng = StdRng::seed_from_u64(42);
    for k in 0..random {
        let n = rng.random_range(5..=10);
        let durations: Vec<f64> = (0..n).map(|_| rng.random_range(1..=4) as f64).collect();
        let preds: Vec<Vec<usize>> = (0..n).map(|i| (0..i).filter(|_| rng.random_bool(0.25)).collect()).collect();
        v.push(Workload { name: format!("random {k}"), durations, preds, workers: rng.random_range(2..=4) });
    }
    v
}

fn svg(rows: &[(String, f64, f64)]) -> String {
    let (bar, gap, left, width) = (9.0, 6.0, 250.0, 420.0);
    let max = rows.iter().map(|r| r.1.max(r.2)).fold(1.0, f64::max).max(1.6);
    let h = 40.0 + rows.len() as f64 * (2.0 * bar + gap);
    let x = |v: f64| left + v / max * width;
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">", left + width + 20.0);
    s.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    for (i, (name, list, barrier)) in rows.iter().enumerate() {
        let y = 30.0 + i as f64 * (2.0 * bar + gap);
        s.push_str(&format!("<text x=\"4\" y=\"{:.1}\">{}</text>", y + bar + 3.0, name.replace('>', "&gt;")));
        s.push_str(&format!(
            "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar}\" fill=\"#1565c0\"/>",
            x(*list) - left
        ));
        s.push_str(&format!(
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar}\" fill=\"#ef6c00\"/>",
            y + bar,
            x(*barrier) - left
        ));
    }
    for v in [1.0, 1.05, 1.5] {
        s.push_str(&format!("<line x1=\"{0:.1}\" y1=\"20\" x2=\"{0:.1}\" y2=\"{h}\" stroke=\"#555\" stroke-dasharray=\"3,3\"/><text x=\"{0:.1}\" y=\"14\" text-anchor=\"middle\">{v}</text>", x(v)));
    }
    s.push_str(&format!("<text x=\"{}\" y=\"{}\" fill=\"#1565c0\">critical-path list scheduling</text><text x=\"{}\" y=\"{}\" fill=\"#ef6c00\">phase barriers</text>", left + width - 330.0, h - 4.0, left + width - 120.0, h - 4.0));
    s.push_str("</svg>\n");
    s
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let unit_ms: u64 = std::env::var("BENCH_UNIT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = tmp.path().join("repo");
    fake_agent_repo(&root, &home);
    let mut n = 0;
    let mut rows = Vec::new();
    println!("unit = {unit_ms} ms of agent time; ratios are makespan / lower bound (measured task durations)\n");
    println!("| workload | tasks | workers | list scheduling | phase barrier |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let (mut worst, mut losses, mut sum_list, mut sum_bar, mut count) = (0.0f64, 0, 0.0, 0.0, 0);
    for w in workloads(if quick { 10 } else { 50 }) {
        let (m, lb) = measure(&root, &home, &w, unit_ms, false, &mut n);
        let (mb, lbb) = measure(&root, &home, &w, unit_ms, true, &mut n);
        let (rl, rb) = (m / lb, mb / lbb);
        worst = worst.max(rl);
        if rl > rb + 0.02 {
            losses += 1;
        }
        sum_list += rl;
        sum_bar += rb;
        count += 1;
        if !w.name.starts_with("random") {
            println!("| {} | {} | {} | {rl:.3} | {rb:.3} |", w.name, w.durations.len(), w.workers);
            rows.push((w.name.clone(), rl, rb));
        }
    }
    let random = count - rows.len();
    println!(
        "| {random} random DAGs (5-10 tasks, 2-4 workers), mean | | | {:.3} | {:.3} |",
        (sum_list - rows.iter().map(|r| r.1).sum::<f64>()) / random as f64,
        (sum_bar - rows.iter().map(|r| r.2).sum::<f64>()) / random as f64
    );
    println!("\nworst list-scheduling ratio over all {count} workloads: {worst:.3}; workloads where it lost to the barrier by > 0.02: {losses}");
    rows.push((
        format!("{random} random DAGs (mean)"),
        (sum_list - rows.iter().map(|r| r.1).sum::<f64>()) / random as f64,
        (sum_bar - rows.iter().map(|r| r.2).sum::<f64>()) / random as f64,
    ));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/schedule.svg");
    std::fs::write(&out, svg(&rows)).unwrap();
    println!("chart: {}", out.display());
}
