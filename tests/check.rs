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
    let Some(r) = sandbox_repo() else { return };
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

/// A repository using the fake agent, for a test under `--sandbox`; None (the test skipped) where
/// bubblewrap is missing.
fn sandbox_repo() -> Option<TestRepo> {
    if which("bwrap").is_none() {
        eprintln!("skipped: no bwrap");
        return None;
    }
    let r = TestRepo::new();
    r.use_fake_agent();
    Some(r)
}

fn which(p: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(p)).find(|p| p.exists())
}

#[test]
fn a_hanging_check_is_stopped_at_the_timeout_and_one_that_kills_itself_says_so() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("hangs", "check: sleep 600\ntimeout: 2s", "write a.txt alpha");
    r.prompt("dies", "check: kill -9 $$", "write b.txt beta");
    r.commit("prompts");
    let t = std::time::Instant::now();
    let o = r.gp(&["run", "prompts", "--fix-rounds", "0"]);
    assert_ne!(o.code, 0);
    assert!(t.elapsed().as_secs() < 60, "the hanging check held the run");
    let hangs = r.task_state("1", "hangs");
    assert_eq!(hangs["status"], "failed", "{hangs}");
    assert!(hangs["reason"].as_str().unwrap().contains("was stopped (the task's timeout)"), "{hangs}");
    let dies = r.task_state("1", "dies");
    assert!(dies["reason"].as_str().unwrap().contains("was killed by signal 9"), "{dies}");
    assert!(common::processes_with("sleep 600").is_empty(), "the check's processes outlived it");
}

#[test]
fn a_fix_round_cut_by_kill_9_goes_on_at_resume_and_nothing_is_lost() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let flag = r.scratch("flag");
    let fix = format!("while [ ! -e '{}' ]; do sleep 0.1; done; echo ok > fixed.txt", flag.display());
    r.prompt("a", "", &format!("write a.txt alpha\n{}", on_feedback(&fix)));
    r.commit("prompts");
    let check = "test -f fixed.txt || { echo needs fixed.txt; exit 1; }";
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--check", check])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    common::wait_until("the fix round to start", 60, || {
        r.raw_state("1").is_some_and(|_| r.task_state("1", "a")["checks"].as_array().is_some_and(|c| !c.is_empty()))
            && r.task_state("1", "a")["attempts"] == 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    common::kill_all(&flag.display().to_string());
    std::fs::write(&flag, "").unwrap();
    // The run keeps its --check; the agent's first round is still in the worktree.
    let o = r.gp(&["resume", "1"]);
    o.ok();
    let t = r.task_state("1", "a");
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(t["checks"].as_array().unwrap().last().unwrap()["passed"], true, "{t}");
    for f in ["a.txt", "fixed.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/integration:{f}")]);
    }
}

#[test]
fn a_conflict_goes_back_to_its_tasks_agent_until_its_check_passes_on_the_merged_tree() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write("shared.txt", "base\n");
    r.commit("base");
    r.prompt("first", "priority: 2", "write shared.txt first");
    // Given its conflict, `second` writes its own version again (the markers go, the first
    // task's line too); shown the check's failure on the merged tree, it keeps both lines.
    let both = "sh if grep -q 'on the merged tre[e]' \"$GIT_PARALLEL_PROMPT_FILE\"; then printf 'first\\nsecond\\n' > shared.txt; fi";
    r.prompt("second", "", &format!("write shared.txt second\n{both}"));
    r.commit("prompts");
    // Alone, each task's result passes; merged (a merge in progress), both lines must stay.
    let check = "! git rev-parse -q --verify MERGE_HEAD >/dev/null || { grep -qx first shared.txt && grep -qx second shared.txt; } || { echo 'lost a side'; exit 1; }";
    let o = r.gp(&["run", "prompts", "-j", "2", "--allow-conflicts", "--resolve", "--check", check]);
    o.ok();
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/integration:shared.txt"]), "first\nsecond");
    let s = r.run_state("1");
    assert!(s["integration"]["conflicts"].as_array().unwrap().is_empty(), "{s}");
    // The resolution's checks are the task's: one failed on the merged tree, then one passed.
    let second = r.task_state("1", "second");
    let checks: Vec<bool> = second["checks"].as_array().unwrap().iter().map(|c| c["passed"] == true).collect();
    assert_eq!(checks.last(), Some(&true), "{second}");
    assert!(checks.iter().filter(|p| !**p).count() >= 1, "{second}");
    assert!(o.stderr.contains("[second] check failed"), "{}", o.stderr);
}

#[test]
fn a_budget_reached_mid_run_stops_new_tasks_integrates_what_finished_and_resume_raises_it() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Each fake agent reports $0.002.
    for t in ["a", "b", "c", "d", "e", "f"] {
        r.prompt(t, "", &format!("write {t}.txt {t}"));
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "1", "--budget", "0.005"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("budget reached: $0.01 of $0.01 spent"), "{}", o.stderr);
    let s = r.run_state("1");
    let done: Vec<&str> = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "succeeded")
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(done.len(), 3, "three tasks of $0.002 reach $0.005: {s}");
    assert_eq!(s["status"], "interrupted", "{s}");
    // What finished is integrated; the summary says what was spent.
    for t in &done {
        r.git(&["cat-file", "-e", &format!("parallel/1/integration:{t}.txt")]);
    }
    assert!(o.stdout.contains("spent $0.01 of the $0.01 budget"), "{}", o.stdout);
    // A fix round is not started past the budget either.
    let o = r.gp(&["resume", "1", "--budget", "1"]);
    o.ok();
    let s = r.run_state("1");
    assert!(s["tasks"].as_array().unwrap().iter().all(|t| t["status"] == "succeeded"), "{s}");
    assert!(r.gp(&["report", "1"]).stdout.contains("of the $1.00 budget"));
}

#[test]
fn no_fix_round_starts_once_the_budget_is_spent() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", &format!("write a.txt alpha\n{}", on_feedback("echo ok > fixed.txt")));
    r.commit("prompts");
    // $0.002 spent by the first round: over a $0.001 budget, the fix round never starts.
    let o = r.gp(&[
        "run",
        "prompts",
        "--budget",
        "0.001",
        "--check",
        "test -f fixed.txt || { echo needs fixed.txt; exit 1; }",
    ]);
    assert_eq!(o.code, 1);
    let t = r.task_state("1", "a");
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["reason"].as_str().unwrap().starts_with("the run's budget is spent, so no fix round"), "{t}");
    assert_eq!(t["checks"].as_array().unwrap().len(), 1, "{t}");
}

#[test]
fn a_bad_budget_is_refused_before_anything_runs() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--budget", "lots"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--budget: `lots` is not an amount of US dollars"), "{}", o.stderr);
    assert_eq!(r.gp(&["run", "prompts", "--budget-hard"]).code, 2);
    assert!(r.raw_state("1").is_none(), "a refused run left a run behind");
}

#[test]
fn a_task_verify_bisection_names_goes_back_to_its_agent_and_lands_once_verify_passes() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt ok");
    r.prompt("b", "", "write b.txt ok");
    // Shown verify's failure on the integrated tree, c takes its stray file back out.
    let fix =
        "sh if grep -q 'fails on the integrated resul[t]' \"$GIT_PARALLEL_PROMPT_FILE\"; then rm -f broken.txt; fi";
    r.prompt("c", "", &format!("write c.txt ok\nwrite broken.txt oops\n{fix}"));
    r.commit("prompts");
    let o = r.gp(&[
        "run",
        "prompts",
        "-j",
        "2",
        "--verify",
        "test ! -e broken.txt || { echo broken.txt is back; exit 1; }",
        "--resolve",
    ]);
    o.ok();
    assert!(o.stderr.contains("verify: task c breaks"), "{}", o.stderr);
    assert!(o.stderr.contains("c: fixed by its agent to pass verify, and merged"), "{}", o.stderr);
    let files = r.git(&["ls-tree", "--name-only", "parallel/1/integration"]);
    assert!(files.contains("c.txt") && !files.contains("broken.txt"), "{files}");
    let s = r.run_state("1");
    assert!(s["integration"]["dropped"].as_array().unwrap().is_empty(), "{s}");
    assert!(s["integration"]["merged"].as_array().unwrap().iter().any(|t| t == "c"), "{s}");
}

#[test]
fn without_resolve_a_verify_culprit_stays_out() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt ok");
    r.prompt("c", "", "write broken.txt oops");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--verify", "test ! -e broken.txt"]);
    assert_eq!(o.code, 1);
    assert_eq!(r.run_state("1")["integration"]["dropped"][0][0], "c");
}

#[test]
fn attempts_race_and_the_first_that_passes_its_check_gives_the_task_its_result() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Only attempt 2 gets it right, at once; attempts 1 and 3 take their time and fail.
    let script = "sh [ \"$GIT_PARALLEL_ATTEMPT\" = 2 ] || sleep 20\nsh [ \"$GIT_PARALLEL_ATTEMPT\" = 2 ] && echo ok > good.txt || true\nwrite a.txt alpha";
    r.prompt("a", "attempts: 3\ncheck: test -f good.txt", script);
    r.prompt("b", "depends_on: [a]", "sh test -f good.txt && echo seen > b.txt");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "3", "--fix-rounds", "0"]);
    o.ok();
    let a = r.task_state("1", "a");
    assert_eq!(a["status"], "succeeded", "{a}");
    assert!(a["reason"].as_str().unwrap().starts_with("attempt a@2 won"), "{a}");
    // The task's branch holds the winner's work; its dependent started from it.
    r.git(&["cat-file", "-e", "parallel/1/a:good.txt"]);
    r.git(&["cat-file", "-e", "parallel/1/integration:b.txt"]);
    // The others were stopped for the winner; the task is integrated once, as itself.
    let a3 = r.task_state("1", "a@3");
    assert!(a3["reason"].as_str().unwrap_or("").contains("attempt a@2 won"), "{a3}");
    let merged = r.run_state("1")["integration"]["merged"].clone();
    assert_eq!(merged, serde_json::json!(["a", "b"]), "{merged}");
    // Every attempt is visible in status.
    let st = r.gp(&["status", "1"]).stdout;
    assert!(st.contains("a@2") && st.contains("a@3"), "{st}");
}

#[test]
fn a_task_whose_every_attempt_fails_fails_and_its_dependents_are_skipped() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "attempts: 2\ncheck: 'false'", "write a.txt alpha");
    r.prompt("b", "depends_on: [a]", "write b.txt beta");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2", "--fix-rounds", "0"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stderr, r.run_state("1"));
    let a = r.task_state("1", "a");
    assert_eq!(a["status"], "failed", "{a}");
    assert!(a["reason"].as_str().unwrap().starts_with("none of its 2 attempts succeeded"), "{a}");
    assert_eq!(r.task_state("1", "b")["status"], "skipped");
}

/// A folder with a `claude` that is the fake agent (marked `FAKE_PROFILE=claude`), for PATH;
/// the custom profile runs the fake agent marked `FAKE_PROFILE=custom`.
fn two_fake_profiles(r: &TestRepo) -> String {
    let dir = r.scratch("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let claude = dir.join("claude");
    std::fs::write(
        &claude,
        format!("#!/bin/sh\nFAKE_PROFILE=claude exec '{}' \"$@\"\n", common::fake_agent().display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = format!("env FAKE_PROFILE=custom '{}' {{prompt_file}}", common::fake_agent().display());
    r.git(&["config", "parallel.agentCommand", &cmd]);
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

#[test]
fn agents_spread_attempts_over_profiles_and_each_attempt_records_its_own() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let path = two_fake_profiles(&r);
    // Only the custom profile gets it right; `agents:` alone makes two attempts.
    let script = "sh [ \"$FAKE_PROFILE\" = custom ] && echo ok > good.txt || true\nwrite a.txt alpha";
    r.prompt("a", "agents: [claude, custom]\ncheck: test -f good.txt", script);
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts", "-j", "2", "--fix-rounds", "0"], &[("PATH", &path)]);
    o.ok();
    let a = r.task_state("1", "a");
    assert_eq!(a["agent"], "claude", "{a}");
    assert_eq!(a["status"], "succeeded", "{a}");
    assert!(a["reason"].as_str().unwrap().starts_with("attempt a@2 won"), "{a}");
    let a2 = r.task_state("1", "a@2");
    assert_eq!(a2["agent"], "custom", "{a2}");
    r.git(&["cat-file", "-e", "parallel/1/a:good.txt"]);
    // status and report name each attempt's agent.
    let st = r.gp(&["status", "1"]).stdout;
    let row = |id: &str| st.lines().find(|l| l.split_whitespace().next() == Some(id)).unwrap_or("").to_string();
    assert!(row("a").contains(" claude "), "{st}");
    assert!(row("a@2").contains(" custom "), "{st}");
    let md = r.gp(&["report", "1"]).stdout;
    assert!(md.contains("| a@2 | succeeded | custom |"), "{md}");
}

#[test]
fn an_unknown_profile_in_agents_is_refused_at_plan_time_by_name() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "agents: [custom, clod]", "write a.txt alpha");
    r.commit("prompts");
    let o = r.gp(&["plan", "prompts"]);
    o.code(2);
    assert!(o.stderr.contains("unknown agent `clod`"), "{}", o.stderr);
}

#[test]
fn with_attempts_all_every_attempt_finishes_and_the_smallest_change_wins() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Attempt 1 writes 10 lines, attempt 2 (the slowest) 2, attempt 3 30: all pass.
    let script = "sh [ \"$GIT_PARALLEL_ATTEMPT\" != 2 ] || sleep 1\nsh n=$((GIT_PARALLEL_ATTEMPT == 2 ? 2 : GIT_PARALLEL_ATTEMPT * 10)); seq 1 $n > out.txt";
    r.prompt("a", "attempts: 3\ncheck: test -f out.txt", script);
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "3", "--attempts-all"]);
    o.ok();
    let a = r.task_state("1", "a");
    assert_eq!(a["status"], "succeeded", "{a}");
    assert!(a["reason"].as_str().unwrap().starts_with("attempt a@2 won (3 of 3 passed"), "{a}");
    assert_eq!(r.git(&["show", "parallel/1/a:out.txt"]), "1\n2");
    // No attempt was stopped: each ran to its end, and the task's own result stays, named.
    for t in ["a@2", "a@3"] {
        assert_eq!(r.task_state("1", t)["status"], "succeeded", "{t}");
    }
    assert_eq!(r.git(&["show", "parallel/1/a@1:out.txt"]).lines().count(), 10);
    let c = a["comparison"].as_array().unwrap();
    let col = |k: &str| c.iter().map(|s| s[k].clone()).collect::<Vec<_>>();
    assert_eq!(col("attempt"), ["a", "a@2", "a@3"]);
    assert_eq!(col("lines"), [10, 2, 30]);
    assert_eq!(col("merges_cleanly"), [true, true, true]);
    assert_eq!(col("check"), [true, true, true]);
    assert_eq!(c.iter().filter(|s| s["winner"] == true).count(), 1);
    assert_eq!(c[1]["winner"], true);
    let st = r.gp(&["status", "1"]).stdout;
    assert!(st.contains("attempts compared"), "{st}");
    let md = r.gp(&["report", "1"]).stdout;
    assert!(md.contains("| a | a@2 | custom | passed | yes | 2 | winner |"), "{md}");
    assert!(md.contains("| a | a@3 | custom | passed | yes | 30 |  |"), "{md}");
    let html = r.gp(&["report", "1", "--format", "html"]).stdout;
    assert!(html.contains("<h2>Attempts compared</h2>") && html.contains("<td>winner</td>"), "{html}");
    assert!(
        o.stderr.contains("[a] attempts compared: a (custom): check passed, merges cleanly, 10 lines;"),
        "{}",
        o.stderr
    );
}

#[test]
fn with_attempts_all_the_smallest_change_loses_when_it_conflicts_with_what_is_integrated() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("x", "", "write shared.txt from x");
    // Each attempt waits for x's result to be in; attempt 2, the smallest, conflicts with it.
    let wait = format!(
        "sh i=0; until git -C '{}' log --format=%s refs/parallel/runs/1 | grep -q '^x: succeeded'; do i=$((i+1)); [ $i -gt 600 ] && break; sleep 0.1; done",
        r.root.display()
    );
    let script = format!(
        "{wait}\nsh if [ \"$GIT_PARALLEL_ATTEMPT\" = 2 ]; then echo mine > shared.txt; else seq 1 $((GIT_PARALLEL_ATTEMPT * 5)) > other.txt; fi"
    );
    r.prompt("a", "attempts: 3\nattempts_all: true", &script);
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "4"]);
    o.ok();
    let a = r.task_state("1", "a");
    assert!(a["reason"].as_str().unwrap().starts_with("attempt a won"), "{a}");
    let c = a["comparison"].as_array().unwrap();
    assert_eq!(c.iter().map(|s| s["merges_cleanly"].clone()).collect::<Vec<_>>(), [true, false, true], "{a}");
    assert_eq!(c.iter().map(|s| s["lines"].clone()).collect::<Vec<_>>(), [5, 1, 15], "{a}");
    assert_eq!(c[0]["winner"], true);
    // Both are integrated, without a conflict.
    assert_eq!(r.run_state("1")["integration"]["merged"], serde_json::json!(["a", "x"]));
    assert_eq!(r.git(&["show", "parallel/1/integration:shared.txt"]), "from x");
}

#[test]
fn max_turns_reaches_claude_code_and_is_ignored_with_a_warning_where_a_cli_takes_none() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let path = two_fake_profiles(&r);
    // The fake Claude Code stops at --max-turns, as the real one does.
    r.prompt("a", "agent: claude\nmax_turns: 2", "write a.txt 1\nwrite b.txt 2\nwrite c.txt 3");
    r.prompt("b", "max_turns: 1", "write d.txt 4");
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts", "-j", "2"], &[("PATH", &path)]);
    o.code(1);
    let a = r.task_state("1", "a");
    assert_eq!(a["status"], "failed", "{a}");
    assert!(a["reason"].as_str().unwrap().contains("Reached maximum number of turns (2)"), "{a}");
    // The custom profile is told through GIT_PARALLEL_MAX_TURNS / {max_turns}; it ignores it here.
    assert_eq!(r.task_state("1", "b")["status"], "succeeded");
    assert!(!o.stderr.contains("max_turns is ignored"), "{}", o.stderr);
    // Codex takes no limit: said before anything runs.
    r.prompt("c", "agent: codex\nmax_turns: 3", "write e.txt 5");
    r.commit("more");
    let o = r.gp_env(&["run", "prompts/c.md"], &[("PATH", "/usr/bin:/bin")]);
    assert!(o.stderr.contains("warning: max_turns is ignored for c (codex)"), "{}", o.stderr);
}

#[test]
fn an_agent_that_makes_things_worse_each_round_fails_with_its_last_check_output_and_lands_nothing() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Every round adds an error; the check lists them all, so its output grows each round.
    r.prompt("worse", "", "append errors.txt error\nwrite worse.txt w");
    r.prompt("fine", "", "write fine.txt f");
    r.commit("prompts");
    let check = "test ! -e errors.txt || { n=$(wc -l < errors.txt); echo \"$n errors:\"; cat errors.txt; exit 1; }";
    let o = r.gp(&["run", "prompts", "--check", check, "--fix-rounds", "2"]);
    o.code(1);
    let t = r.task_state("1", "worse");
    assert_eq!(t["status"], "failed", "{t}");
    let checks = t["checks"].as_array().unwrap();
    let outputs: Vec<&str> = checks.iter().map(|c| c["output"].as_str().unwrap().lines().next().unwrap()).collect();
    assert_eq!(outputs, ["1 errors:", "2 errors:", "3 errors:"], "{t}");
    assert_eq!(checks.iter().map(|c| c["round"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    // The task's reason carries the last round's output, not the first's.
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains("after 2 fix rounds") && reason.contains("3 errors:"), "{reason}");
    assert!(!reason.contains("1 errors:") && !reason.contains("2 errors:"), "{reason}");
    // Nothing of it is integrated; the other task is.
    let integration = r.run_state("1")["integration"].clone();
    assert_eq!(integration["merged"], serde_json::json!(["fine"]), "{integration}");
    for f in ["errors.txt", "worse.txt"] {
        assert_ne!(r.git_out(&["cat-file", "-e", &format!("parallel/1/integration:{f}")]).code, 0, "{f}");
    }
    r.git(&["cat-file", "-e", "parallel/1/integration:fine.txt"]);
}

#[test]
fn attempts_run_in_the_sandbox_the_loser_is_stopped_whole_and_the_comparison_is_made_there_too() {
    let Some(r) = sandbox_repo() else { return };
    let outside = r.path("escaped-by-attempt");
    let escape = format!("sh echo x > '{}' || true", outside.display());
    // `a`: the first to pass wins; attempt 2 would sleep long (marked to find its processes).
    let marker = format!("sleep 6{}", std::process::id() % 10);
    r.prompt(
        "a",
        "attempts: 2\ncheck: test -f good.txt",
        &format!("{escape}\nsh [ \"$GIT_PARALLEL_ATTEMPT\" = 1 ] || {marker}\nsh [ \"$GIT_PARALLEL_ATTEMPT\" = 1 ] && echo ok > good.txt || true"),
    );
    // `b`: both attempts finish; the smaller wins.
    r.prompt("b", "attempts: 2\nattempts_all: true", "sh seq 1 $((GIT_PARALLEL_ATTEMPT * 3)) > b.txt");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--sandbox", "-j", "4", "--fix-rounds", "0"]);
    o.ok();
    assert!(!outside.exists(), "an attempt wrote outside its worktree: {}", o.stderr);
    assert_eq!(r.task_state("1", "a")["status"], "succeeded");
    r.git(&["cat-file", "-e", "parallel/1/integration:good.txt"]);
    // The loser was stopped for the winner, its processes with it.
    let a2 = r.task_state("1", "a@2");
    assert!(a2["reason"].as_str().unwrap_or("").contains("attempt a won"), "{a2}");
    assert!(common::processes_with(&marker).is_empty(), "the stopped attempt's processes outlived it");
    let b = r.task_state("1", "b");
    assert!(b["reason"].as_str().unwrap().starts_with("attempt b won"), "{b}");
    let lines: Vec<_> = b["comparison"].as_array().unwrap().iter().map(|s| s["lines"].clone()).collect();
    assert_eq!(lines, [3, 6], "{b}");
    assert_eq!(r.git(&["show", "parallel/1/integration:b.txt"]).lines().count(), 3);
}

#[test]
fn a_fix_round_continues_a_claude_session_whose_agent_does_not_redo_its_work() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let path = two_fake_profiles(&r);
    r.prompt("a", "agent: claude", &format!("write a.txt alpha\n{}", on_feedback("echo ok > fixed.txt")));
    r.commit("prompts");
    let check = "test -f fixed.txt || { echo needs fixed.txt; exit 3; }";
    r.gp_env(&["run", "prompts", "--check", check], &[("PATH", &path)]).ok();
    let a = r.task_state("1", "a");
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(a["checks"].as_array().unwrap().len(), 2, "{a}");
    // First try: a write and the answer; the round goes on in the same session, which knows
    // a.txt is written: the fix (a shell line) and the answer. Three turns, not four.
    assert_eq!(a["metrics"]["turns"], 3, "{a}");
    for f in ["a.txt", "fixed.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/a:{f}")]);
    }
}

#[test]
fn a_resolve_rounds_turns_and_cost_are_its_tasks() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt ok");
    let fix =
        "sh if grep -q 'fails on the integrated resul[t]' \"$GIT_PARALLEL_PROMPT_FILE\"; then rm -f broken.txt; fi";
    r.prompt("c", "", &format!("write c.txt ok\nwrite broken.txt oops\n{fix}"));
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--verify", "test ! -e broken.txt", "--resolve"]);
    o.ok();
    // Its first try (two writes and the answer) and the round handed back, where the custom
    // agent, with no session, does all of it again: 3 + 3 turns, $0.003 + $0.003.
    let c = r.task_state("1", "c");
    assert_eq!(c["metrics"]["turns"], 6, "{c}");
    assert!((c["metrics"]["cost_usd"].as_f64().unwrap() - 0.006).abs() < 1e-9, "{c}");
    let events = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    assert!(events.contains("c: 3 more turns (its verify failure handed back, round 1)"), "{events}");
    let report = r.gp(&["report", "1"]).stdout;
    assert!(report.contains(" 8 turns"), "{report}");
}

#[test]
fn a_task_won_by_another_attempt_counts_its_own_turns_not_a_copy_of_the_winners() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // The task's own attempt writes twice and fails its check; attempt 2 writes once and passes.
    let script = "write a.txt alpha\nsh [ \"$GIT_PARALLEL_ATTEMPT\" = 1 ] && echo no > b.txt || echo ok > good.txt";
    r.prompt("a", "attempts: 2\ncheck: test -f good.txt", &format!("{script}\nwrite c.txt gamma"));
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "1", "--fix-rounds", "0"]).ok();
    let (a, a2) = (r.task_state("1", "a"), r.task_state("1", "a@2"));
    assert!(a["reason"].as_str().unwrap().starts_with("attempt a@2 won"), "{a}");
    // Three turns each; the run's total counts each attempt once.
    assert_eq!(a["metrics"]["turns"], 3, "{a}");
    assert_eq!(a2["metrics"]["turns"], 3, "{a2}");
    let report = r.gp(&["report", "1"]).stdout;
    assert!(report.contains(" 6 turns"), "{report}");
}

#[test]
fn an_extra_attempt_waits_for_every_first_try_when_slots_are_short() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let order = r.scratch("order");
    let stamp = format!("stamp {}", order.display());
    // `a` is the longer task (it starts first), and its attempts fail; `b` is short.
    r.prompt("a", "attempts: 2\nestimate: 30\ncheck: 'false'", &stamp);
    r.prompt("b", "estimate: 1", &stamp);
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "1", "--fix-rounds", "0"]);
    assert!(o.stderr.contains("none of its 2 attempts succeeded"), "{}", o.stderr);
    let text = std::fs::read_to_string(&order).unwrap();
    let started: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    // b's first try before a's second attempt, though a's remaining path is longer.
    assert_eq!(started, ["a", "b", "a@2"], "{text}");
}

#[test]
fn an_attempt_starts_no_fix_round_once_another_has_won() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let rounds = r.scratch("rounds");
    std::fs::create_dir_all(&rounds).unwrap();
    // Attempt 1 passes at once. Attempt 2's check fails, but only once attempt 1 has won and
    // its worktree is gone (bounded: 30 s); a fix round of attempt 2 would leave a mark.
    let mark = format!("sh [ -z \"$GIT_PARALLEL_FEEDBACK\" ] || touch '{}'/$GIT_PARALLEL_ATTEMPT", rounds.display());
    let script = format!("{mark}\nsh [ \"$GIT_PARALLEL_ATTEMPT\" = 2 ] || echo ok > good.txt");
    let check =
        "test -f good.txt || { i=0; while [ -e ../a ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; exit 1; }";
    r.prompt("a", &format!("attempts: 2\ncheck: '{check}'"), &script);
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "2", "--fix-rounds", "2"]).ok();
    assert_eq!(r.task_state("1", "a")["status"], "succeeded");
    let a2 = r.task_state("1", "a@2");
    assert!(a2["reason"].as_str().unwrap_or("").contains("attempt a won"), "{a2}");
    let marks: Vec<_> = std::fs::read_dir(&rounds).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(marks.is_empty(), "a fix round ran after the winner was known: {marks:?}");
}

#[test]
fn an_extra_attempt_waits_while_its_tasks_attempt_is_in_a_fix_round() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let order = r.scratch("order");
    let stamp = format!("stamp {}", order.display());
    let root = r.path("").display().to_string();
    // `a`'s own attempt fails its check, then in its fix round waits until `b` has ended (its
    // slot free for a@2), lingers a second, and fixes the cause. `b` ends once a's check failed.
    let until = |what: &str| {
        format!(
            "i=0; until git -C '{root}' log --format=%s refs/parallel/runs/1 | grep -q '^{what}'; do i=$((i+1)); [ $i -gt 600 ] && break; sleep 0.1; done"
        )
    };
    let fix = format!(
        "sh [ -z \"$GIT_PARALLEL_FEEDBACK\" ] || {{ {}; sleep 1; echo ok > good.txt; }}",
        until("b: succeeded")
    );
    r.prompt("a", "attempts: 2\nestimate: 30\ncheck: test -f good.txt", &format!("{stamp}\n{fix}"));
    r.prompt("b", "estimate: 1", &format!("{stamp}\nwrite b.txt beta\nsh {}", until("a: check failed")));
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2", "--fix-rounds", "1"]);
    o.ok();
    assert_eq!(r.task_state("1", "a")["status"], "succeeded");
    let text = std::fs::read_to_string(&order).unwrap();
    let started: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    // a@2 had a free slot while a's fix round ran, and did not take it: the round passed.
    assert!(!started.contains(&"a@2"), "an extra attempt started behind a fix round: {text}\n{}", o.stderr);
    let events = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    assert!(events.contains("b: succeeded"), "{events}");
}

#[test]
fn an_extra_attempt_starts_once_its_tasks_attempt_fails_for_good() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // The own attempt never passes; the second one does, started after the first gave up.
    let script = "sh [ \"$GIT_PARALLEL_ATTEMPT\" = 1 ] || echo ok > good.txt";
    r.prompt("a", "attempts: 2\ncheck: test -f good.txt", script);
    r.prompt("b", "", "write b.txt beta");
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "2", "--fix-rounds", "1"]).ok();
    let a = r.task_state("1", "a");
    assert_eq!(a["status"], "succeeded", "{a}");
    assert!(a["reason"].as_str().unwrap().starts_with("attempt a@2 won"), "{a}");
}

#[test]
fn a_check_whose_program_is_missing_fails_at_once_and_spends_no_fix_round() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--check", "/nonexistent-tools/bin/run-tests --quick", "--fix-rounds", "2"]);
    assert_ne!(o.code, 0);
    let t = r.task_state("1", "a");
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["checks"].as_array().unwrap().len(), 1, "a fix round was spent on a missing program: {t}");
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains("could not run: `/nonexistent-tools/bin/run-tests` is not found"), "{reason}");
    assert!(reason.contains("no fix round was spent on it"), "{reason}");
    // A name not on PATH says so.
    r.gp(&["run", "prompts", "--check", "no-such-test-runner-xyz", "--fix-rounds", "2"]);
    let t = r.task_state("2", "a");
    assert!(t["reason"].as_str().unwrap().contains("`no-such-test-runner-xyz` is not on its PATH"), "{t}");
}

#[test]
fn a_missing_script_in_the_worktree_is_the_agents_to_fix() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let make =
        "mkdir -p scripts && printf '#!/bin/sh\\necho tests ran\\n' > scripts/test.sh && chmod +x scripts/test.sh";
    let script = format!("write a.txt alpha\nsh [ -z \"$GIT_PARALLEL_FEEDBACK\" ] || {{ {make}; }}");
    r.prompt("a", "", &script);
    r.commit("prompts");
    r.gp(&["run", "prompts", "--check", "./scripts/test.sh", "--fix-rounds", "1"]).ok();
    let t = r.task_state("1", "a");
    let checks = t["checks"].as_array().unwrap();
    assert_eq!((checks.len(), &checks[1]["passed"]), (2, &true.into()), "{t}");
}

#[test]
fn under_the_sandbox_a_hidden_check_program_names_the_setting_that_shows_it() {
    let Some(r) = sandbox_repo() else { return };
    // A test runner installed in the home, which --sandbox hides.
    let tools = r.home.join("tools");
    let runner = tools.join("bin/run-tests");
    std::fs::create_dir_all(runner.parent().unwrap()).unwrap();
    std::fs::write(&runner, "#!/bin/sh\ntest -f a.txt\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runner, std::fs::Permissions::from_mode(0o755)).unwrap();
    r.prompt("a", "", "write a.txt alpha");
    r.commit("prompts");
    let hint = format!("git config --add parallel.sandboxRead {}", tools.display());
    // A check that starts with it is refused before any agent runs.
    let check = format!("CI=1 {}", runner.display());
    let o = r.gp(&["run", "prompts", "--sandbox", "--check", &check, "--fix-rounds", "2"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("which --sandbox hides") && o.stderr.contains(&hint), "{}", o.stderr);
    assert_ne!(r.git_out(&["rev-parse", "--verify", "-q", "refs/parallel/runs/1"]).code, 0, "a run was made");
    // So is one that runs it further on, or names it from the home.
    for check in [format!("true && {}", runner.display()), "cd . && ~/tools/bin/run-tests".to_string()] {
        let o = r.gp(&["run", "prompts", "--sandbox", "--check", &check, "--fix-rounds", "2"]);
        assert_eq!(o.code, 2, "{check}: {}", o.stderr);
        assert!(o.stderr.contains("which --sandbox hides") && o.stderr.contains(&hint), "{}", o.stderr);
    }
    // One that reaches it where its words do not show (inside another shell) fails at its first
    // check, spending no fix round, and says the same.
    let later = format!("sh -c '{}'", runner.display());
    r.gp(&["run", "prompts", "--sandbox", "--check", &later, "--fix-rounds", "2"]);
    let t = r.task_state("1", "a");
    assert_eq!(t["checks"].as_array().unwrap().len(), 1, "{t}");
    assert!(t["reason"].as_str().unwrap().contains(&hint), "{t}");
    // Shown as it says, the check runs and passes.
    r.git(&["config", "--add", "parallel.sandboxRead", &tools.display().to_string()]);
    r.gp(&["run", "prompts", "--sandbox", "--check", &check, "--fix-rounds", "2"]).ok();
    assert_eq!(r.task_state("2", "a")["status"], "succeeded");
}

#[test]
fn under_the_sandbox_a_check_whose_write_is_refused_spends_no_fix_round_and_names_setup() {
    let Some(r) = sandbox_repo() else { return };
    r.prompt("a", "", "write a.txt alpha");
    r.commit("prompts");
    // A cache the check fills, in the main working tree: read-only inside the sandbox.
    let cache = r.path("check-cache");
    let check = format!("test -f a.txt && touch '{}'", cache.display());
    r.gp(&["run", "prompts", "--sandbox", "--check", &check, "--fix-rounds", "2"]);
    let t = r.task_state("1", "a");
    assert_eq!(t["checks"].as_array().unwrap().len(), 1, "a fix round was spent on it: {t}");
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains("Read-only file system") && reason.contains("git config parallel.setup CMD"), "{reason}");
    assert!(!cache.exists());
    // Filled before the agent runs (setup is the user's, outside the sandbox), it passes.
    r.git(&["config", "parallel.setup", &format!("touch '{}'", cache.display())]);
    let check = format!("test -f a.txt && test -f '{}'", cache.display());
    r.gp(&["run", "prompts", "--sandbox", "--check", &check, "--fix-rounds", "2"]).ok();
}
