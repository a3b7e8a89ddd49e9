//! `git parallel run` with the fake agent: parallelism, dependencies, timeouts, retries,
//! no-change tasks, failure isolation, interruption, and the state it leaves in the repository.

mod common;
use common::TestRepo;
use serde_json::Value;

fn stamps(path: &std::path::Path) -> std::collections::HashMap<String, (u64, u64)> {
    let mut m: std::collections::HashMap<String, (u64, u64)> = Default::default();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let e = m.entry(parts[0].to_string()).or_default();
        let t: u64 = parts[2].parse().unwrap();
        if parts[1] == "start" {
            e.0 = t
        } else {
            e.1 = t
        }
    }
    m
}

#[test]
fn independent_tasks_overlap_and_results_land_on_branches() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let s = r.scratch("stamps");
    for id in ["a", "b", "c"] {
        r.prompt(id, "", &format!("stamp {0}\nwrite {id}.txt from {id}\nsleep 800\nstamp-end {0}", s.display()));
    }
    r.commit("prompts");
    // Two workers (this machine may have only two CPUs): two tasks overlap, the third
    // starts as soon as one of them ends.
    let o = r.gp(&["run", "prompts", "-j", "2", "--no-integrate"]);
    o.ok();
    let st = stamps(&s);
    assert_eq!(st.len(), 3);
    let mut by_start: Vec<(u64, u64)> = st.values().copied().collect();
    by_start.sort();
    assert!(by_start[1].0 < by_start[0].1, "the first two ran at once: {st:?}");
    assert!(by_start[2].0 >= by_start[0].1.min(by_start[1].1), "the third waited for a free worker: {st:?}");
    for id in ["a", "b", "c"] {
        assert_eq!(r.git(&["cat-file", "-p", &format!("parallel/1/{id}:{id}.txt")]), format!("from {id}"));
        let msg = r.git(&["log", "-1", "--format=%B", &format!("parallel/1/{id}")]);
        assert!(msg.contains("Parallel-Run: 1") && msg.contains(&format!("Parallel-Task: {id}")), "{msg}");
        let note = r.git(&["notes", "--ref=parallel", "show", &format!("parallel/1/{id}")]);
        assert!(
            note.contains(&format!("task: {id}")) && note.contains("turns:") && note.contains("cost_usd:"),
            "{note}"
        );
        let t = r.task_state("1", id);
        assert_eq!(t["status"], "succeeded");
        assert_eq!(t["files_changed"], serde_json::json!([format!("{id}.txt")]));
    }
    assert!(o.stdout.contains("measured speed-up"), "{}", o.stdout);
    // The main working tree is untouched.
    assert!(!r.path("a.txt").exists());
}

#[test]
fn dependent_starts_from_its_dependencies_results() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.prompt("b", "", "write b.txt beta");
    r.prompt("c", "depends_on: [a, b]", "write c.txt gamma");
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "2", "--no-integrate"]).ok();
    // c's branch holds a's and b's work, because it started from their merge.
    for f in ["a.txt", "b.txt", "c.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/c:{f}")]);
    }
    let c = r.task_state("1", "c");
    let a_commit = r.git(&["rev-parse", "parallel/1/a"]);
    let start = c["start_commit"].as_str().unwrap();
    assert_eq!(r.git_out(&["merge-base", "--is-ancestor", &a_commit, start]).code, 0);
}

#[test]
fn timeout_kills_the_agent_and_others_go_on() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("slow", "timeout: 1s", "spawn-child-hang\nignore-term\nhang");
    r.prompt("quick", "", "write q.txt q");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2", "--no-integrate"]);
    o.code(1);
    assert_eq!(r.task_state("1", "slow")["status"], "timed-out");
    assert_eq!(r.task_state("1", "quick")["status"], "succeeded");
    assert!(o.stdout.contains("timed-out"), "{}", o.stdout);
}

#[test]
fn transient_failures_are_retried_with_backoff() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let counter = r.scratch("counter");
    r.prompt("flaky", "", &format!("transient 2 {}\nwrite f.txt ok", counter.display()));
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--retries", "3", "--no-integrate"]);
    o.ok();
    let t = r.task_state("1", "flaky");
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["retries"], 2);
    assert_eq!(t["attempts"], 3);
    assert!(o.stderr.contains("retrying in"), "{}", o.stderr);
    // The event log holds the retries with their delays.
    let log = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    assert_eq!(log.lines().filter(|l| l.starts_with("flaky: retry")).count(), 2, "{log}");

    // Out of retries: the task fails.
    std::fs::remove_file(&counter).unwrap();
    // The fake agent counts in a folder of claimed slots beside the counter file.
    std::fs::remove_dir_all(counter.with_extension("slots")).unwrap();
    let o = r.gp(&["run", "prompts", "--retries", "1", "--no-integrate"]);
    o.code(1);
    assert_eq!(r.task_state("2", "flaky")["status"], "failed");
}

#[test]
fn failures_on_the_merits_are_not_retried_and_do_not_stop_others() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("bad", "", "fail 1 the tests do not pass");
    r.prompt("good", "", "write g.txt g");
    r.prompt("after-bad", "depends_on: [bad]", "write x.txt x");
    r.prompt("later", "depends_on: [after-bad, good]", "write y.txt y");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2", "--retries", "3", "--no-integrate"]);
    o.code(1);
    let bad = r.task_state("1", "bad");
    assert_eq!(bad["status"], "failed");
    assert_eq!(bad["attempts"], 1);
    assert!(bad["reason"].as_str().unwrap().contains("the tests do not pass"), "{bad}");
    assert_eq!(r.task_state("1", "good")["status"], "succeeded");
    assert_eq!(r.task_state("1", "after-bad")["status"], "skipped");
    let later = r.task_state("1", "later");
    assert_eq!(later["status"], "skipped", "{later}");
    assert_eq!(later["reason"], "dependency after-bad did not succeed");
    assert_eq!(r.run_state("1")["status"], "failed");
}

#[test]
fn a_succeeded_tasks_worktree_goes_once_its_result_is_recorded_a_failed_one_stays() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("bad", "", "write half.txt h\nfail 1 the tests do not pass");
    r.prompt("good", "", "write g.txt g");
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "2", "--no-integrate"]).code(1);
    let wt = |t: &str| std::path::PathBuf::from(r.task_state("1", t)["worktree"].as_str().unwrap());
    assert!(!wt("good").exists(), "succeeded: worktree removed");
    assert_eq!(r.git(&["show", "parallel/1/good:g.txt"]), "g", "its branch stays");
    assert!(wt("bad").join("half.txt").exists(), "failed: kept for inspection");
    let listed = r.git(&["worktree", "list", "--porcelain"]);
    assert!(!listed.contains("parallel/1/good"), "{listed}");
    assert!(listed.contains("parallel/1/bad"), "{listed}");
    // Asked to keep them, every worktree stays.
    r.gp(&["run", "prompts", "-j", "2", "--no-integrate", "--keep-worktrees"]).code(1);
    assert!(std::path::PathBuf::from(r.task_state("2", "good")["worktree"].as_str().unwrap()).join("g.txt").exists());
}

#[test]
fn a_task_that_changes_nothing_is_reported_as_such() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("idle", "", "noop");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    let t = r.task_state("1", "idle");
    assert_eq!(t["status"], "no-changes");
    assert!(t.get("commit").is_none());
    assert!(o.stdout.contains("no-changes"), "{}", o.stdout);
}

#[test]
fn agent_commits_and_dirty_worktree_are_both_kept() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("self", "", "write one.txt 1\ncommit agent's own commit\nwrite two.txt 2\ndelete README.md");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let log = r.git(&["log", "--format=%s", "main..parallel/1/self"]);
    assert_eq!(log.lines().collect::<Vec<_>>(), ["Task self", "agent's own commit"]);
    let files = r.task_state("1", "self")["files_changed"].clone();
    assert_eq!(files, serde_json::json!(["README.md", "one.txt", "two.txt"]));
    assert_eq!(r.git_out(&["cat-file", "-e", "parallel/1/self:README.md"]).code, 128);
}

#[test]
fn event_log_replays_to_the_snapshot_and_keeps_transcripts() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "print not json at all\nwrite a.txt a\ntool Edit a.txt");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let repo = r.open();
    let records = git_parallel::store::runs::events(&repo, "1").unwrap();
    let replayed = git_parallel::store::runs::replay("1", &records);
    let snapshot = git_parallel::store::runs::load(&repo, "1").unwrap();
    assert_eq!(replayed, snapshot);
    let kinds: Vec<String> =
        records.iter().map(|r| serde_json::to_value(r).unwrap()["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds.first().map(String::as_str), Some("planned"));
    assert!(kinds.contains(&"started".to_string()) && kinds.contains(&"finished".to_string()), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("ended"));
    let transcript = r.task_log("1", "a", "jsonl");
    assert!(transcript.contains("not json at all") && transcript.contains("\"type\":\"result\""), "{transcript}");
    let t = &snapshot.tasks[0];
    assert!(t.files_touched.contains(&"a.txt".to_string()), "{:?}", t.files_touched);
    assert_eq!(t.metrics.turns, Some(3));
    assert!(t.metrics.cost_usd.unwrap() > 0.0);
    assert!(t.metrics.session_id.as_deref().unwrap().starts_with("fake-"));
}

#[test]
fn missing_agent_is_refused_before_anything_starts() {
    let r = TestRepo::new();
    r.write("prompts/a.md", "Do a.\n");
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts", "--agent", "claude"], &[("PATH", "/usr/bin:/bin")]);
    o.code(2);
    assert!(o.stderr.contains("`claude`") && o.stderr.contains("not installed"), "{}", o.stderr);
    assert_eq!(r.git(&["for-each-ref", "refs/parallel/runs/"]), "");
    let o = r.gp(&["run", "prompts", "--agent", "nonsense"]);
    o.code(2);
    let o = r.gp(&["run", "prompts", "-j", "0"]);
    o.code(2);
}

#[test]
fn json_streams_events() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--json", "--no-integrate"]);
    o.ok();
    let events: Vec<Value> = o.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().all(|e| e["run"] == "1" && e["at"].is_number()));
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"started") && kinds.contains(&"finished") && kinds.contains(&"ended"), "{kinds:?}");
}

#[test]
fn ctrl_c_interrupts_and_records_it() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("long", "", "write partial.txt p\nhang");
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--no-integrate"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    common::wait_until("the task to start", 30, || {
        r.raw_state("1").is_some_and(|s| s.contains("\"status\":\"running\"") && s.contains("\"started_at\""))
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe_kill(child.id(), 2);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(r.task_state("1", "long")["status"], "interrupted");
    assert_eq!(r.run_state("1")["status"], "interrupted");
}

fn unsafe_kill(pid: u32, sig: i32) {
    std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
}

#[test]
fn setup_command_and_copied_files_prepare_each_worktree() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write(".gitignore", ".env\n");
    r.write(".env", "SECRET=1\n");
    r.git(&["config", "parallel.copy", ".env"]);
    r.git(&["config", "parallel.setup", "cp .env setup-saw-env.txt && echo $GIT_PARALLEL_TASK > setup-task.txt"]);
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    // The setup ran in the worktree, with the copied untracked file there.
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/a:setup-saw-env.txt"]), "SECRET=1");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/a:setup-task.txt"]), "a");
    // The ignored .env itself is not committed.
    assert_eq!(r.git_out(&["cat-file", "-e", "parallel/1/a:.env"]).code, 128);

    r.git(&["config", "parallel.setup", "echo broken >&2; exit 3"]);
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.code(1);
    let t = r.task_state("2", "a");
    assert!(
        t["reason"].as_str().unwrap().contains("setup command failed")
            && t["reason"].as_str().unwrap().contains("broken"),
        "{t}"
    );
}

#[test]
fn a_dependent_whose_dependencies_conflict_fails_naming_the_files() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write("shared.txt", "base\n");
    r.prompt("x", "files: [shared.txt]", "write shared.txt from x");
    r.prompt("y", "files: [shared.txt]", "write shared.txt from y");
    r.prompt("z", "depends_on: [x, y]", "write z.txt z");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2", "--allow-conflicts", "--no-integrate"]);
    o.code(1);
    let z = r.task_state("1", "z");
    assert_eq!(z["status"], "failed");
    let reason = z["reason"].as_str().unwrap();
    assert!(reason.contains("conflicts in: shared.txt") && reason.contains("dependency y"), "{reason}");
}
