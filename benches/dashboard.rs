//! The dashboard of a 10,000-task run: the first response (size, time to the last byte) and the
//! size of one live update when a task ends.
//! Run: cargo bench --features test-fakes --bench dashboard   (BENCH_TASKS=N for another size)

mod common;
use common::*;
use git_parallel::repo::Repo;
use git_parallel::store::{layout, plans, runs::*};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

fn get(port: u16, path: &str) -> (usize, std::time::Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let body = all.windows(4).position(|w| w == b"\r\n\r\n").map(|p| all.len() - p - 4).unwrap_or(0);
    (body, t.elapsed())
}

fn started(task: &str, run: &str) -> Event {
    Event::Started {
        task: task.into(),
        attempt: 1,
        worktree: String::new(),
        branch: layout::task_branch(run, task),
        start_commit: "0".repeat(40),
        agent: None,
    }
}

fn finished(task: &str) -> Event {
    Event::Finished {
        task: task.into(),
        status: TaskStatus::Succeeded,
        commit: None,
        reason: None,
        exit_code: Some(0),
        metrics: Metrics { turns: Some(3), cost_usd: Some(0.01), ..Default::default() },
        files_changed: vec![format!("{task}.txt")],
        wall_ms: 1000,
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir().unwrap();
    let (root, home) = (tmp.path().join("repo"), tmp.path().join("home"));
    std::fs::create_dir_all(&home).unwrap();
    fake_agent_repo(&root, &home);
    let dir = root.join("prompts");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("t{i}.md")), format!("---\nfiles: [t{i}.txt]\n---\nTask {i}\n")).unwrap();
    }
    let t = Instant::now();
    let plan_out = cmd(bin(), &root, &home).args(["plan", "prompts", "-j", "8"]).output().unwrap();
    assert!(plan_out.status.success(), "{}", String::from_utf8_lossy(&plan_out.stderr));
    let repo = Repo::discover(&root).unwrap();
    let plan_id = git(&root, &home, &["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/plans/"]);
    let plan = plans::load(&repo, plan_id.trim()).unwrap();
    let base = git(&root, &home, &["rev-parse", "HEAD"]);
    let tasks: Vec<_> = plan.tasks.iter().map(|t| (t.id.clone(), t.kind)).collect();
    let mut log = RunLog::create(
        &repo,
        Event::Planned { plan: plan.id.clone(), base, agent: "fake".into(), workers: 8, tasks, sandbox: false },
    )
    .unwrap();
    let run = log.id.clone();
    // All but the last eight done; those eight run.
    for (i, task) in plan.tasks.iter().enumerate() {
        log.append(started(&task.id, &run), &[]).unwrap();
        if i + 8 < plan.tasks.len() {
            log.append(finished(&task.id), &[]).unwrap();
        }
    }
    eprintln!("a run of {n} tasks made in {:.1} s", t.elapsed().as_secs_f64());

    let mut child = cmd(bin(), &root, &home)
        .args(["dashboard", &run])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let rest = line.trim().strip_prefix("http://127.0.0.1:").unwrap().to_string();
    let (port, token) = rest.split_once("/?token=").unwrap();
    let port: u16 = port.parse().unwrap();

    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let (b, d) = get(port, &format!("/?token={token}"));
        size = b;
        times.push(d);
    }
    times.sort();
    println!(
        "dashboard of a {n}-task run: first response {:.1} MB, {:.0} ms to its last byte (median of 5; min {:.0} ms)",
        size as f64 / 1e6,
        times[2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0
    );

    // One task ends: the update the page receives.
    let tip = tip(&repo, &run).unwrap().unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /events?run={run}&tip={tip}&token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let last = &plan.tasks[n - 1].id;
    log.append(finished(last), &[]).unwrap();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap() == 0 {
            panic!("stream closed");
        }
        if let Some(data) = l.strip_prefix("data: ") {
            let v: serde_json::Value = serde_json::from_str(data).unwrap();
            if v["tasks"][last.as_str()] == "succeeded" {
                let changed = v["tasks"].as_object().unwrap().len();
                println!(
                    "one task ends: an update of {} bytes ({changed} tasks in it: the one that ended and the {} still running)",
                    data.len(),
                    changed - 1
                );
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
