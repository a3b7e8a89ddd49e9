//! The dashboard of a 10,000-task run, the whole page (`view=all`, every page before paging)
//! beside the paged one: the first response (size, time to its last byte), the first paint
//! and load in a real headless Chromium (Debian's, driven over the DevTools protocol), and
//! the size of one live update when a task ends.
//! Run: cargo build --release --bin git-parallel && BENCH_BIN=target/release/git-parallel
//!   BENCH_TASKS=10000 BENCH_KEEP=/tmp/dash-run cargo test --features test-fakes --bench dashboard
//! (BENCH_TASKS=N for another size; BENCH_KEEP=DIR keeps the made run there for the next time).
//! Measured (docs/benchmarks.md, three runs, release build, 2 shared CPUs): the whole page
//! 6.63 MB, first paint 528-688 ms, load 5.2-5.9 s, main thread busy 6.1-7.1 s, 210,066
//! elements (since past 100 tasks it folds all but 100: load 0.9-1.1 s, busy 0.8-0.9 s); the paged page 0.05 MB, first paint 264-364 ms, load 192-303 ms, main thread
//! 170-244 ms, 1,788 elements; an update when a task ends about 4.6 kB, on the stream
//! 276-279 ms after its event (835-917 ms when the watcher read every tip in full).

#[path = "../tests/common/cdp.rs"]
mod cdp;
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

/// What a browser measured of one page: the median of three fresh tabs, in milliseconds from
/// the start of navigation (busy and layout: main-thread time the page cost, from the
/// DevTools protocol's Performance.getMetrics).
struct Paint {
    fcp: f64,
    load: f64,
    busy: f64,
    layout: f64,
    elements: u64,
}

fn paint(exe: &std::path::Path, profile: &std::path::Path, port: u16, path: &str, token: &str) -> Paint {
    let _ = std::fs::remove_dir_all(profile);
    let mut b =
        cdp::Browser::launch(std::process::Command::new(exe), profile, std::fs::File::create("/dev/null").unwrap());
    let mut runs = Vec::new();
    for _ in 0..3 {
        let tab = b.tab();
        b.call(Some(&tab), "Performance.enable", serde_json::json!({}));
        b.call(
            Some(&tab),
            "Page.navigate",
            serde_json::json!({"url": format!("http://127.0.0.1:{port}{path}&token={token}")}),
        );
        b.wait_for(
            &tab,
            "the page to load and paint",
            600,
            "document.readyState === 'complete' && location.protocol === 'http:' && performance.getEntriesByName('first-contentful-paint').length > 0",
        );
        let v = b.eval(
            &tab,
            "(() => { const n = performance.getEntriesByType('navigation')[0]; return { fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime, load: n.loadEventEnd, elements: document.getElementsByTagName('*').length }; })()",
        );
        let m = b.call(Some(&tab), "Performance.getMetrics", serde_json::json!({}));
        let metric = |name: &str| {
            m["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == name)
                .map(|x| x["value"].as_f64().unwrap())
                .unwrap_or(0.0)
                * 1000.0
        };
        runs.push(Paint {
            fcp: v["fcp"].as_f64().unwrap(),
            load: v["load"].as_f64().unwrap(),
            busy: metric("TaskDuration"),
            layout: metric("LayoutDuration") + metric("RecalcStyleDuration"),
            elements: v["elements"].as_u64().unwrap(),
        });
        let target = b.call(Some(&tab), "Target.getTargetInfo", serde_json::json!({}));
        b.call(None, "Target.closeTarget", serde_json::json!({"targetId": target["targetInfo"]["targetId"]}));
    }
    let med = |f: &dyn Fn(&Paint) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[1]
    };
    Paint {
        fcp: med(&|p| p.fcp),
        load: med(&|p| p.load),
        busy: med(&|p| p.busy),
        layout: med(&|p| p.layout),
        elements: runs[1].elements,
    }
}

/// A repository with a plan of `n` tasks and a run of it: all but the last eight ended, those
/// eight running.
fn make_run(root: &std::path::Path, home: &std::path::Path, n: usize) {
    std::fs::create_dir_all(home).unwrap();
    fake_agent_repo(root, home);
    let dir = root.join("prompts");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("t{i}.md")), format!("---\nfiles: [t{i}.txt]\n---\nTask {i}\n")).unwrap();
    }
    let plan_out = cmd(bin(), root, home).args(["plan", "prompts", "-j", "8"]).output().unwrap();
    assert!(plan_out.status.success(), "{}", String::from_utf8_lossy(&plan_out.stderr));
    let repo = Repo::discover(root).unwrap();
    let plan_id = git(root, home, &["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/plans/"]);
    let plan = plans::load(&repo, plan_id.trim()).unwrap();
    let base = git(root, home, &["rev-parse", "HEAD"]);
    let tasks: Vec<_> = plan.tasks.iter().map(|t| (t.id.clone(), t.kind)).collect();
    let mut log = RunLog::create(
        &repo,
        Event::Planned { plan: plan.id.clone(), base, agent: "fake".into(), workers: 8, tasks, sandbox: false },
    )
    .unwrap();
    let run = log.id.clone();
    for (i, task) in plan.tasks.iter().enumerate() {
        log.append(started(&task.id, &run), &[]).unwrap();
        if i + 8 < plan.tasks.len() {
            log.append(finished(&task.id), &[]).unwrap();
        }
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir().unwrap();
    // BENCH_KEEP=DIR: the run is made in DIR and kept, and a later bench with the same DIR
    // uses it again (making 10,000 tasks' run takes minutes).
    let keep = std::env::var_os("BENCH_KEEP").map(std::path::PathBuf::from);
    let at = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let (root, home) = (at.join("repo"), at.join("home"));
    let t = Instant::now();
    let made = keep.is_some() && root.join(".git").exists();
    if !made {
        make_run(&root, &home, n);
    }
    let repo = Repo::discover(&root).unwrap();
    let run = git(&root, &home, &["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/runs/"]);
    let run = run.lines().next().unwrap().to_string();
    let plan = plans::load(&repo, &load(&repo, &run).unwrap().plan).unwrap();
    let n = plan.tasks.len();
    let mut log = RunLog::open(&repo, &run).unwrap();
    eprintln!("a run of {n} tasks {} in {:.1} s", if made { "found" } else { "made" }, t.elapsed().as_secs_f64());

    let start = || {
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
        (child, port.parse::<u16>().unwrap(), token.to_string())
    };

    let views = [("whole page (view=all)", format!("/?run={run}&view=all")), ("paged", format!("/?run={run}"))];
    println!("dashboard of a {n}-task run ({} ended, 8 running):", n - 8);
    println!("| page | first response | its last byte: first request | next five (median) | first contentful paint | load event | main thread busy | layout and style | elements |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let exe = cdp::chromium();
    if exe.is_none() {
        eprintln!("chromium is not installed (apt-get install chromium): no browser figures");
    }
    for (name, path) in &views {
        // A dashboard of its own: its first request finds nothing read yet.
        let (mut child, port, token) = start();
        let token = token.as_str();
        let (size, first) = get(port, &format!("{path}&token={token}"));
        let mut times: Vec<_> = (0..5).map(|_| get(port, &format!("{path}&token={token}")).1).collect();
        times.sort();
        let browser = exe.as_ref().map(|exe| paint(exe, &tmp.path().join("chromium"), port, path, token));
        let cell = |f: &dyn Fn(&Paint) -> String| browser.as_ref().map(f).unwrap_or_else(|| "-".into());
        println!(
            "| {name} | {:.2} MB | {:.0} ms | {:.0} ms | {} | {} | {} | {} | {} |",
            size as f64 / 1e6,
            first.as_secs_f64() * 1000.0,
            times[2].as_secs_f64() * 1000.0,
            cell(&|p| format!("{:.0} ms", p.fcp)),
            cell(&|p| format!("{:.0} ms", p.load)),
            cell(&|p| format!("{:.0} ms", p.busy)),
            cell(&|p| format!("{:.0} ms", p.layout)),
            cell(&|p| p.elements.to_string()),
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    println!("(server: over loopback, the first request to a dashboard just started, then the median of five more; browser: median of 3 fresh tabs, each figure from the start of navigation)");

    // One task ends: the update the page receives.
    let (mut child, port, token) = start();
    let tip = tip(&repo, &run).unwrap().unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /events?run={run}&tip={tip}&token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    // The stream's first update (the running bars' tick) says its watcher has read the run.
    loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0, "stream closed");
        if l.starts_with("data: ") {
            break;
        }
    }
    let last = &plan.tasks[n - 1].id;
    log.append(finished(last), &[]).unwrap();
    let appended = Instant::now();
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
                    "one task ends: an update of {} bytes ({changed} tasks in it: the one that ended and the {} still running), on the stream {:.0} ms after its event was recorded (the watcher looks every 250 ms)",
                    data.len(),
                    changed - 1,
                    appended.elapsed().as_secs_f64() * 1000.0
                );
                break;
            }
        }
    }
    // The task runs again, so that a kept run (BENCH_KEEP) is measured the same next time.
    log.append(started(last, &run), &[]).unwrap();
    let _ = child.kill();
    let _ = child.wait();
}
