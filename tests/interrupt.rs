//! Everything stops on Ctrl-C, SIGTERM and `cancel`: integration, its verify command (and the
//! bisection that looks for a culprit) and `integrate --resolve`, within the grace period, with
//! the verify command's processes ended, no verify worktree left, and the integration recorded
//! as interrupted.

mod common;
use common::{kill_all, processes_with, wait_until, TestRepo};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A sleep whose command line is unique to this test, so survivors can be found.
fn unique_sleep(tag: u32) -> String {
    format!("{}.{}{tag}", 700 + tag, std::process::id())
}

/// Whether `sleep MARKER` runs (a process git-parallel forked, not yet exec'ed, still shows
/// git-parallel's arguments, which name the marker too: only the sleep itself counts).
fn started(marker: &str) -> bool {
    let want = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
}

/// A verify command that only the marker names (so `sh -c` and `sleep` both carry it).
fn sleeper(marker: &str) -> String {
    format!("sleep {marker}")
}

/// `git parallel ARGS` in the background, its output discarded.
fn spawn(r: &TestRepo, args: &[&str]) -> Child {
    let mut c = r.command(common::bin());
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// Wait for `child` at most `secs` seconds; its exit code and how long it took.
fn wait_for(child: &mut Child, secs: u64, marker: &str) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code().unwrap_or(-1), start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            kill_all(marker);
            panic!("git parallel did not stop within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Folders named `.verify-*` anywhere two levels under the test's temp dir (where run folders
/// are made).
fn verify_dirs(r: &TestRepo) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(r.tmp.path()).unwrap().flatten() {
        let Ok(sub) = std::fs::read_dir(e.path()) else { continue };
        for s in sub.flatten() {
            if s.file_name().to_string_lossy().starts_with(".verify-") {
                out.push(s.path().display().to_string());
            }
            if let Ok(deeper) = std::fs::read_dir(s.path()) {
                for d in deeper.flatten() {
                    if d.file_name().to_string_lossy().starts_with(".verify-") {
                        out.push(d.path().display().to_string());
                    }
                }
            }
        }
    }
    out
}

/// Two tasks; `verify` as given.
fn two_tasks(r: &TestRepo) {
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.prompt("b", "", "write b.txt b");
    r.commit("prompts");
}

/// What must hold after a stopped integration of run 1: a non-zero exit soon after the stop,
/// the integration recorded as interrupted, the target not moved, no verify process and no
/// verify worktree left.
fn assert_stopped(r: &TestRepo, marker: &str, code: i32, took: Duration, run_status: &str, stderr: &str) {
    let survivors = processes_with(marker);
    kill_all(marker);
    assert!(survivors.is_empty(), "verify processes outlived the stop: {survivors:?}");
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(code, 130, "{stderr}");
    assert!(took < Duration::from_secs(8), "took {took:?} to stop");
    let s = r.run_state("1");
    assert_eq!(s["integration"]["interrupted"], true, "{s}");
    assert_eq!(s["status"], run_status, "{s}");
    assert_eq!(r.git(&["for-each-ref", "refs/heads/parallel/1/integration"]), "", "the target was moved");
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1, "{}", r.git(&["worktree", "list"]));
    assert_eq!(verify_dirs(r), Vec::<String>::new());
    // Human forms say so.
    let status = r.gp(&["status", "1"]);
    assert!(status.stdout.contains(run_status), "{}", status.stdout);
    let report = r.gp(&["report", "1"]);
    assert!(report.stdout.contains("was interrupted"), "{}", report.stdout);
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    use std::io::Read;
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Start `run --verify <sleep marker>` and wait until the verify command runs.
fn run_until_verify(r: &TestRepo, marker: &str) -> Child {
    let verify = sleeper(marker);
    let mut child = spawn(r, &["run", "prompts", "-j", "2", "--verify", &verify]);
    let start = Instant::now();
    while !started(marker) {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st}) before verify started: {}", stderr_of(&mut child));
        }
        assert!(start.elapsed() < Duration::from_secs(60), "verify never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn ctrl_c_stops_verify() {
    let r = TestRepo::new();
    two_tasks(&r);
    let marker = unique_sleep(1);
    let mut child = run_until_verify(&r, &marker);
    // One key press, delivered twice (git and the terminal), as a terminal does.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(20));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, took) = wait_for(&mut child, 20, &marker);
    let stderr = stderr_of(&mut child);
    assert_stopped(&r, &marker, code, took, "interrupted", &stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn sigterm_stops_verify() {
    let r = TestRepo::new();
    two_tasks(&r);
    let marker = unique_sleep(2);
    let mut child = run_until_verify(&r, &marker);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (code, took) = wait_for(&mut child, 20, &marker);
    let stderr = stderr_of(&mut child);
    assert_stopped(&r, &marker, code, took, "interrupted", &stderr);
}

#[test]
fn cancel_stops_verify() {
    let r = TestRepo::new();
    two_tasks(&r);
    let marker = unique_sleep(3);
    let mut child = run_until_verify(&r, &marker);
    let o = r.gp(&["cancel", "1"]);
    o.ok();
    assert!(o.stdout.contains("cancelled"), "{}", o.stdout);
    let (code, took) = wait_for(&mut child, 20, &marker);
    let stderr = stderr_of(&mut child);
    assert_stopped(&r, &marker, code, took, "cancelled", &stderr);
}

#[test]
fn a_second_ctrl_c_kills_a_verify_that_ignores_sigterm() {
    let r = TestRepo::new();
    two_tasks(&r);
    // A long grace period: only the second Ctrl-C can end the verify command in time.
    r.git(&["config", "parallel.killGrace", "60s"]);
    let marker = unique_sleep(4);
    let verify = format!("trap '' TERM; sleep {marker}");
    let mut child = spawn(&r, &["run", "prompts", "-j", "2", "--verify", &verify]);
    wait_until("verify to start", 60, || started(&marker));
    for _ in 0..3 {
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(700));
    }
    let (code, took) = wait_for(&mut child, 20, &marker);
    let stderr = stderr_of(&mut child);
    assert_stopped(&r, &marker, code, took, "interrupted", &stderr);
}

#[test]
fn ctrl_c_stops_the_bisection() {
    let r = TestRepo::new();
    two_tasks(&r);
    let marker = unique_sleep(5);
    // Fails with both tasks, passes with neither: the bisection tries one of them, and hangs.
    let verify = format!(
        "if [ -f a.txt ] && [ -f b.txt ]; then exit 1; fi; if [ -f a.txt ] || [ -f b.txt ]; then sleep {marker}; fi"
    );
    let mut child = spawn(&r, &["run", "prompts", "-j", "2", "--verify", &verify]);
    wait_until("the bisection's verify", 60, || started(&marker));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, took) = wait_for(&mut child, 20, &marker);
    let stderr = stderr_of(&mut child);
    assert_stopped(&r, &marker, code, took, "interrupted", &stderr);
    // Nobody was blamed: the bisection did not end.
    let s = r.run_state("1");
    assert_eq!(s["integration"]["dropped"], serde_json::json!([]), "{s}");
}

#[test]
fn an_interrupted_integration_is_done_again_by_resume() {
    let r = TestRepo::new();
    two_tasks(&r);
    let marker = unique_sleep(6);
    let mut child = run_until_verify(&r, &marker);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, _) = wait_for(&mut child, 20, &marker);
    kill_all(&marker);
    assert_eq!(code, 130);
    // The verify command now passes at once: resume integrates and the run succeeds.
    r.gp(&["resume", "1", "--verify", "true"]).ok();
    let s = r.run_state("1");
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(s["integration"].get("interrupted"), None, "{s}");
    assert_eq!(s["integration"]["merged"].as_array().unwrap().len(), 2, "{s}");
}

#[test]
fn standalone_integrate_verify_stops_on_sigterm() {
    let r = TestRepo::new();
    two_tasks(&r);
    r.gp(&["run", "prompts", "-j", "2", "--no-integrate"]).ok();
    let marker = unique_sleep(7);
    let verify = sleeper(&marker);
    let mut child = spawn(&r, &["integrate", "1", "--verify", &verify]);
    wait_until("verify to start", 60, || started(&marker));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (code, took) = wait_for(&mut child, 20, &marker);
    let stderr = stderr_of(&mut child);
    // The run had ended before: it stays as it was; its integration is the interrupted one.
    assert_stopped(&r, &marker, code, took, "succeeded", &stderr);
    assert!(stderr.contains("git parallel integrate 1"), "{stderr}");
}

#[test]
fn ctrl_c_stops_integrate_resolve() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write same.txt from a");
    r.prompt("b", "", "write same.txt from b");
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "2"]).code(1);
    let s = r.run_state("1");
    assert_eq!(s["integration"]["conflicts"].as_array().unwrap().len(), 1, "{s}");
    let before = r.git(&["rev-parse", "parallel/1/integration"]);
    // The resolving agent hangs.
    let marker = unique_sleep(8);
    r.git(&["config", "parallel.agentCommand", &format!("sh -c 'sleep {marker}' {{prompt_file}}")]);
    let mut child = spawn(&r, &["integrate", "1", "--resolve"]);
    wait_until("the resolving agent", 60, || started(&marker));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, took) = wait_for(&mut child, 20, &marker);
    let stderr = stderr_of(&mut child);
    let survivors = processes_with(&marker);
    kill_all(&marker);
    assert!(survivors.is_empty(), "the resolving agent outlived the stop: {survivors:?}");
    assert_eq!(code, 130, "{stderr}");
    assert!(took < Duration::from_secs(8), "took {took:?} to stop");
    let s = r.run_state("1");
    assert_eq!(s["integration"]["interrupted"], true, "{s}");
    assert_eq!(s["integration"]["conflicts"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(r.git(&["rev-parse", "parallel/1/integration"]), before);
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1, "{}", r.git(&["worktree", "list"]));
}
