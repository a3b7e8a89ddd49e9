//! A task's check: it runs in the task's worktree once the agent ends; a failure goes back to
//! the agent with the check's output, for a bounded number of fix rounds.

mod common;
use common::TestRepo;

/// A fake-agent line that, only in a fix round, reads the feedback and acts on it.
fn on_feedback(action: &str) -> String {
    format!("sh if [ -n \"$GIT_PARALLEL_FEEDBACK\" ] && grep -q 'needs fixed.txt' \"$GIT_PARALLEL_FEEDBACK\"; then {action}; fi")
}

#[test]
fn a_failed_check_goes_back_to_the_agent_which_fixes_it() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", &format!("write a.txt alpha\n{}", on_feedback("echo ok > fixed.txt")));
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--check", "test -f fixed.txt || { echo needs fixed.txt; exit 3; }"]);
    o.ok();
    let t = r.task_state("1", "a");
    assert_eq!(t["status"], "succeeded", "{t}");
    let checks = t["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{t}");
    assert_eq!(checks[0]["passed"], false);
    assert_eq!(checks[0]["exit_code"], 3);
    assert!(checks[0]["output"].as_str().unwrap().contains("needs fixed.txt"), "{t}");
    assert_eq!(checks[1]["passed"], true);
    assert_eq!(checks[1]["round"], 1);
    // The fix round's work and the first round's are both in the result.
    for f in ["a.txt", "fixed.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/a:{f}")]);
    }
    // A custom agent keeps no session: it got its task again with the feedback after it.
    let events = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    assert!(events.contains("a: check failed (after the agent)"), "{events}");
    assert!(events.contains("a: check passed (after fix round 1)"), "{events}");
    assert!(events.contains("a: started (attempt 2)"), "{events}");
    // Narrated as it happens; shown by status, logs and the report.
    assert!(o.stderr.contains("[a] check failed (exit 3)"), "{}", o.stderr);
    assert!(o.stderr.contains("[a] check passed after fix round 1"), "{}", o.stderr);
    let st = r.gp(&["status", "1"]);
    assert!(st.stdout.contains("check passed after 1 fix round"), "{}", st.stdout);
    let logs = r.gp(&["logs", "1", "a"]);
    assert!(logs.stdout.contains("check failed (exit 3): `test -f fixed.txt"), "{}", logs.stdout);
    assert!(logs.stdout.contains("  needs fixed.txt"), "{}", logs.stdout);
    let report = r.gp(&["report", "1"]);
    assert!(
        report.stdout.contains("| check |") && report.stdout.contains("| passed after 1 fix round |"),
        "{}",
        report.stdout
    );
}

#[test]
fn a_check_that_never_passes_fails_the_task_after_its_rounds_and_keeps_the_work() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.prompt("b", "depends_on: [a]", "write b.txt beta");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--check", "echo still broken; exit 1", "--fix-rounds", "1"]);
    assert_ne!(o.code, 0, "{}", o.stderr);
    let t = r.task_state("1", "a");
    assert_eq!(t["status"], "failed", "{t}");
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains("check `echo still broken; exit 1` exited with 1 after 1 fix round"), "{reason}");
    assert!(reason.contains("still broken"), "{reason}");
    assert_eq!(t["checks"].as_array().unwrap().len(), 2, "{t}");
    assert_eq!(r.task_state("1", "b")["status"], "skipped");
    // Not a result (never integrated), but the work is on the task's branch for a look.
    r.git(&["cat-file", "-e", "parallel/1/a:a.txt"]);
    assert!(r.git_out(&["rev-parse", "--verify", "-q", "parallel/1/integration:a.txt"]).code != 0);
}

#[test]
fn front_matter_check_wins_and_zero_rounds_fail_at_once() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("own", "check: test -f own.txt", "write own.txt x");
    r.prompt("other", "", "write other.txt y");
    r.commit("prompts");
    // parallel.check fails for `other`; `own` has its own check, which passes.
    r.git(&["config", "parallel.check", "test -f never.txt"]);
    r.git(&["config", "parallel.fixRounds", "0"]);
    let o = r.gp(&["run", "prompts"]);
    assert_ne!(o.code, 0);
    assert_eq!(r.task_state("1", "own")["status"], "succeeded");
    let other = r.task_state("1", "other");
    assert_eq!(other["status"], "failed", "{other}");
    assert_eq!(other["checks"].as_array().unwrap().len(), 1, "{other}");
    assert!(other["reason"].as_str().unwrap().starts_with("check `test -f never.txt` exited with 1:"), "{other}");
}

#[test]
fn a_check_runs_in_the_sandbox_with_the_agent() {
    if which("bwrap").is_none() {
        eprintln!("skipped: no bwrap");
        return;
    }
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.commit("prompts");
    // The check runs the agent's code: under --sandbox it must not reach the repository.
    let outside = r.path("escaped-by-check");
    let check = format!("echo x > '{}'; touch inside.txt", outside.display());
    let o = r.gp(&["run", "prompts", "--sandbox", "--check", &check, "--fix-rounds", "0"]);
    assert!(!outside.exists(), "the check wrote outside its worktree: {}", o.stderr);
    // Its first command failed there, the second ran in the worktree: the check passed.
    let t = r.task_state("1", "a");
    assert_eq!(t["checks"][0]["passed"], true, "{t}");
}

fn which(p: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(p)).find(|p| p.exists())
}
