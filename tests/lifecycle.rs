//! Integration, status, resume, cancel, clean, hooks and report on real repositories.

mod common;
use common::TestRepo;

fn path_with_bin() -> String {
    format!("{}:{}", common::bin().parent().unwrap().display(), std::env::var("PATH").unwrap())
}

#[test]
fn independent_tasks_integrate_cleanly_without_touching_the_working_tree() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a\\n");
    r.prompt("b", "", "write b.txt b");
    r.prompt("c", "depends_on: [a]", "append a.txt more");
    let head = r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2"]);
    o.ok();
    assert!(o.stdout.contains("integrated 3 tasks into parallel/1/integration"), "{}", o.stdout);
    let files = r.git(&["ls-tree", "--name-only", "parallel/1/integration"]);
    assert!(files.contains("a.txt") && files.contains("b.txt"), "{files}");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/integration:a.txt"]), "a\nmore");
    // Proper merge commits, the user's branch and working tree untouched.
    let merges = r.git(&["log", "--merges", "--format=%s", "parallel/1/integration"]);
    assert!(merges.contains("Merge task b of run 1"), "{merges}");
    assert_eq!(r.git(&["rev-parse", "main"]), head);
    assert_eq!(r.git(&["status", "--porcelain"]), "");
    let s = r.run_state("1");
    assert_eq!(s["integration"]["merged"].as_array().unwrap().len(), 3);
    // Integrating again changes nothing.
    let again = r.gp(&["integrate", "1", "--json"]);
    again.ok();
    assert_eq!(again.json()["merged"].as_array().unwrap().len(), 3);
}

/// Two tasks that write the same file, allowed to run at once: they conflict at integration.
fn conflicting_tasks() -> TestRepo {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write("shared.txt", "base\n");
    r.prompt("first", "files: [shared.txt]", "write shared.txt from first");
    r.prompt("second", "files: [shared.txt]", "write shared.txt from second");
    r.commit("prompts");
    r
}

#[test]
fn a_conflicting_task_is_left_out_with_guidance() {
    let r = conflicting_tasks();
    let o = r.gp(&["run", "prompts", "-j", "2", "--allow-conflicts"]);
    o.code(1);
    let s = r.run_state("1");
    let conflicts = s["integration"]["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{s}");
    assert_eq!(conflicts[0]["task"], "second");
    assert_eq!(conflicts[0]["files"], serde_json::json!(["shared.txt"]));
    assert!(conflicts[0]["guidance"].as_str().unwrap().contains("git merge parallel/1/second"), "{}", conflicts[0]);
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/integration:shared.txt"]), "from first");
    // The left-out task keeps its branch; status shows the conflict.
    r.git(&["rev-parse", "--verify", "parallel/1/second"]);
    let st = r.gp(&["status", "1"]);
    st.ok();
    assert!(st.stdout.contains("conflict: shared.txt"), "{}", st.stdout);
    // Integrating again says the same: one task in, one left out with the command to resolve it.
    let again = r.gp(&["integrate", "1"]);
    again.code(1);
    assert!(again.stdout.starts_with("integrated 1 tasks into parallel/1/integration"), "{}", again.stdout);
    assert!(again.stdout.contains("left out second: conflicts in shared.txt"), "{}", again.stdout);
}

#[test]
fn resolve_hands_the_conflict_to_an_agent() {
    let r = conflicting_tasks();
    r.gp(&["run", "prompts", "-j", "2", "--allow-conflicts"]).code(1);
    // The resolver is a custom agent command that writes the resolved text.
    let resolver = "sh -c 'printf \"first and second\\n\" > shared.txt'".to_string();
    r.git(&["config", "parallel.agentCommand", &resolver]);
    let o = r.gp(&["integrate", "1", "--resolve"]);
    o.ok();
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/integration:shared.txt"]), "first and second");
    let s = r.run_state("1");
    assert!(s["integration"]["conflicts"].as_array().unwrap().is_empty(), "{s}");
    let parents = r.git(&["log", "-1", "--format=%P", "parallel/1/integration"]);
    assert_eq!(parents.split(' ').count(), 2);
}

#[test]
fn verify_gate_drops_the_culprit_found_by_bisection() {
    let r = TestRepo::new();
    r.use_fake_agent();
    for id in ["a", "b", "c", "d"] {
        let script = if id == "c" { "write broken.txt oops".to_string() } else { format!("write {id}.txt ok") };
        r.prompt(id, "", &script);
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2", "--verify", "test ! -e broken.txt"]);
    o.code(1);
    let s = r.run_state("1");
    let i = &s["integration"];
    assert_eq!(i["verified"], true, "{s}");
    assert_eq!(i["dropped"][0][0], "c", "{s}");
    let files = r.git(&["ls-tree", "--name-only", "parallel/1/integration"]);
    assert!(!files.contains("broken.txt") && files.contains("a.txt") && files.contains("d.txt"), "{files}");
}

fn normalize(text: &str, r: &TestRepo) -> String {
    let mut t = text.replace(r.tmp.path().to_str().unwrap(), "[TMP]");
    for (pat, rep) in [
        (r"\d{4}-\d\d-\d\d \d\d:\d\d", "[DATE]"),
        (r"\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d\ds\b", "[DUR]"),
        (r"\$\d+\.\d+", "[COST]"),
        (r"\b[0-9a-f]{40}\b", "[OID]"),
        (r"fake-\d+", "fake-[PID]"),
    ] {
        t = regex::Regex::new(pat).unwrap().replace_all(&t, rep).into_owned();
    }
    // Column widths follow the durations; squeeze runs of spaces.
    regex::Regex::new(r" {2,}").unwrap().replace_all(&t, "  ").into_owned()
}

#[test]
fn status_human_and_json() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.prompt("b", "depends_on: [a]", "fail 1 nope");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).code(1);
    r.prompt("b", "depends_on: [a]", "write b.txt b");
    r.commit("fix b");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    insta::assert_snapshot!("status_all", normalize(&r.gp(&["status"]).ok().stdout.clone(), &r));
    insta::assert_snapshot!("status_run", normalize(&r.gp(&["status", "1"]).ok().stdout.clone(), &r));
    let j = r.gp(&["status", "1", "--json"]).ok().json();
    assert_eq!(j["effective_status"], "failed");
    assert_eq!(j["tasks"][0]["status"], "succeeded");
    assert_eq!(j["tasks"][1]["status"], "failed");
    assert_eq!(j["tasks"][1]["reason"], "agent reported an error: nope");
    let all = r.gp(&["status", "--json"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[1]["effective_status"], "succeeded");
    let o = r.gp(&["status", "9"]);
    o.code(2);
}

#[test]
fn kill_9_mid_run_then_resume_runs_nothing_twice() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let runs_a = r.scratch("runs-a");
    let runs_b = r.scratch("runs-b");
    r.prompt("a", "", &format!("stamp {}\nwrite a.txt a", runs_a.display()));
    r.prompt("b", "", &format!("stamp {}\nwrite b-partial.txt p\nsleep 2500\nwrite b.txt b", runs_b.display()));
    r.prompt("c", "depends_on: [a, b]", "write c.txt c");
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "-j", "2"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    common::wait_until("a to succeed while b runs", 60, || {
        r.raw_state("1").is_some_and(|s| s.contains("\"succeeded\"")) && runs_b.exists()
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let st = r.gp(&["status", "1"]);
    assert!(st.stdout.contains("interrupted") && st.stdout.contains("git parallel resume 1"), "{}", st.stdout);
    let o = r.gp(&["resume", "1"]);
    o.ok();
    assert_eq!(std::fs::read_to_string(&runs_a).unwrap().lines().count(), 1, "a ran once");
    assert_eq!(std::fs::read_to_string(&runs_b).unwrap().lines().count(), 2, "b restarted after the kill");
    for t in ["a", "b", "c"] {
        assert_eq!(r.task_state("1", t)["status"], "succeeded");
    }
    assert_eq!(r.run_state("1")["status"], "succeeded");
    let files = r.git(&["ls-tree", "--name-only", "parallel/1/integration"]);
    for f in ["a.txt", "b.txt", "c.txt"] {
        assert!(files.lines().any(|l| l == f), "{files}");
    }
    let o = r.gp(&["resume", "1"]);
    o.code(2);
}

#[test]
fn cancel_stops_a_live_run() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("h", "", "hang");
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    common::wait_until("the task to start", 60, || r.raw_state("1").is_some_and(|s| s.contains("\"started_at\"")));
    let o = r.gp(&["cancel", "1"]);
    o.ok();
    assert!(o.stdout.contains("cancelled"), "{}", o.stdout);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(r.run_state("1")["status"], "cancelled");
    assert_eq!(r.task_state("1", "h")["status"], "cancelled");
    r.gp(&["cancel", "1"]).code(2);
}

/// An orchestrator killed while it updated the run's ref leaves `<ref>.lock` behind. Nobody else
/// writes a run whose orchestrator is gone, so cancel takes the run over as resume does, instead
/// of failing until the lock is old enough to count as stale.
#[test]
fn cancel_takes_over_the_lock_an_orchestrator_killed_mid_update_left() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("s", "", "sleep 3000");
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    common::wait_until("the task to start", 60, || r.raw_state("1").is_some_and(|s| s.contains("\"started_at\"")));
    child.kill().unwrap();
    child.wait().unwrap();
    let lock = r.path(".git/refs/parallel/runs/1.lock");
    assert!(r.path(".git/refs/parallel/runs/1").exists(), "the run's ref is a loose file");
    std::fs::write(&lock, "").unwrap();
    let o = r.gp(&["cancel", "1"]);
    o.ok();
    assert!(o.stdout.contains("already gone"), "{}", o.stdout);
    assert!(!lock.exists());
    assert_eq!(r.run_state("1")["status"], "cancelled");
}

#[test]
fn post_merge_hook_cleans_merged_work_and_keeps_the_users_hook() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let hook = r.path(".git/hooks/post-merge");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho user-hook-ran >> \"$(git rev-parse --show-toplevel)/.git/hook-log\"\nexit 0\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    r.gp(&["hooks", "install"]).ok();
    r.prompt("a", "", "write a.txt a");
    r.prompt("b", "", "write b.txt b");
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "2", "--keep-worktrees"]).ok();
    let worktrees = r.git(&["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 3, "{worktrees}");
    let mut merge = r.command("git");
    merge.env("PATH", path_with_bin()).args(["merge", "-q", "--no-edit", "parallel/1/integration"]);
    assert!(merge.status().unwrap().success());
    assert_eq!(r.git(&["worktree", "list"]).lines().count(), 1, "worktrees removed");
    assert_eq!(r.git(&["for-each-ref", "refs/heads/parallel/"]), "", "branches removed");
    assert_eq!(std::fs::read_to_string(r.path(".git/hook-log")).unwrap(), "user-hook-ran\n");
    // Uninstall removes only our lines.
    r.gp(&["hooks", "uninstall"]).ok();
    let text = std::fs::read_to_string(&hook).unwrap();
    assert_eq!(text, "#!/bin/sh\necho user-hook-ran >> \"$(git rev-parse --show-toplevel)/.git/hook-log\"\nexit 0\n");
}

#[test]
fn hooks_honour_core_hooks_path() {
    let r = TestRepo::new();
    r.git(&["config", "core.hooksPath", "my-hooks"]);
    r.gp(&["hooks", "install"]).ok();
    let text = r.read("my-hooks/post-merge");
    assert!(text.starts_with("#!/bin/sh\n# >>> git-parallel >>>\ngit parallel clean --merged --quiet"), "{text}");
    r.gp(&["hooks", "uninstall"]).ok();
    assert!(!r.path("my-hooks/post-merge").exists());
}

#[test]
fn clean_keeps_dirty_worktrees_unless_forced() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    r.git(&["config", "parallel.keepWorktrees", "true"]);
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let wt = r.task_state("1", "a")["worktree"].as_str().unwrap().to_string();
    std::fs::write(std::path::Path::new(&wt).join("scratch.txt"), "mine").unwrap();
    r.gp(&["clean"]).code(2);
    let dry = r.gp(&["clean", "--run", "1", "--dry-run"]);
    dry.ok();
    let o = r.gp(&["clean", "--run", "1"]);
    o.ok();
    assert!(o.stderr.contains("uncommitted changes"), "{}", o.stderr);
    assert!(std::path::Path::new(&wt).exists());
    let o = r.gp(&["clean", "--run", "1", "--force"]);
    o.ok();
    assert!(o.stdout.contains("removed worktree") && o.stdout.contains("deleted branch parallel/1/a"), "{}", o.stdout);
    assert!(!std::path::Path::new(&wt).exists());
    assert_eq!(r.git(&["for-each-ref", "refs/heads/parallel/"]), "");
}

#[test]
fn reports_in_three_formats() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.prompt("b", "depends_on: [a]", "write b.txt b");
    r.commit("prompts");
    r.gp(&["run", "prompts"]).ok();
    let md = r.gp(&["report", "1"]).ok().stdout.clone();
    assert!(md.contains("| a | succeeded |") && md.contains("measured speed-up"), "{md}");
    let j = r.gp(&["report", "1", "--format", "json"]).ok().json();
    assert_eq!(j["totals"]["succeeded"], 2);
    assert!(j["totals"]["cost_usd"].as_f64().unwrap() > 0.0);
    let html = r.gp(&["report", "1", "--format", "html"]).ok().stdout.clone();
    assert!(
        html.starts_with("<!doctype html>") && html.matches("<svg").count() == 2 && html.contains("marker-end"),
        "{html}"
    );
    r.write(".github/Memory.md", "# Memory\n");
    r.gp(&["report", "1", "--append", ".github/Memory.md"]).ok();
    let mem = r.read(".github/Memory.md");
    assert!(mem.starts_with("# Memory\n\n## git-parallel run 1"), "{mem}");
}

#[test]
fn integration_never_moves_a_checked_out_branch() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    let head = r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let o = r.gp(&["integrate", "1", "--into", "main"]);
    o.code(2);
    assert!(o.stderr.contains("main is checked out at"), "{}", o.stderr);
    assert_eq!(r.git(&["rev-parse", "main"]), head);
    // Into a branch nobody has checked out, it works.
    r.gp(&["integrate", "1", "--into", "release"]).ok();
    r.git(&["cat-file", "-e", "release:a.txt"]);
}

#[test]
fn logs_show_what_agents_did_and_failures_say_why() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("ok", "", "tool Write a.txt\nwrite a.txt a");
    r.prompt("bad", "", "stderr fatal: cannot find config file settings.toml\nexit 3");
    let go = r.scratch("go");
    r.prompt(
        "slow",
        "",
        &format!("tool Read slow.txt\nsh while [ ! -e {} ]; do sleep 0.05; done\nwrite s.txt s", go.display()),
    );
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--no-integrate", "-j", "3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut run = c.spawn().unwrap();
    // A live task, followed until it ends.
    common::wait_until("the slow task to start", 30, || {
        r.raw_state("1").is_some_and(|s| s.contains("\"slow\"") && s.contains("\"running\""))
    });
    let mut follow = r.command(common::bin());
    follow.args(["logs", "1", "slow", "--follow"]).stdout(std::process::Stdio::piped());
    let follower = follow.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::write(&go, "").unwrap();
    let followed = follower.wait_with_output().unwrap();
    run.wait().unwrap();
    let followed = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.contains("* Read") && followed.contains("= finished after"), "{followed}");

    let bad = r.task_state("1", "bad");
    assert_eq!(bad["status"], "failed");
    let reason = bad["reason"].as_str().unwrap();
    assert!(reason.contains("status 3") && reason.contains("cannot find config file settings.toml"), "{reason}");
    let o = r.gp(&["logs", "1", "bad"]);
    o.ok();
    assert!(o.stdout.contains("--- stderr") && o.stdout.contains("settings.toml"), "{}", o.stdout);
    let o = r.gp(&["logs", "1", "ok"]);
    assert!(o.stdout.contains("* Write") && o.stdout.contains("a.txt"), "{}", o.stdout);
    let raw = r.gp(&["logs", "1", "ok", "--raw"]);
    assert!(raw.stdout.lines().all(|l| l.starts_with('{')), "{}", raw.stdout);
    let all = r.gp(&["logs", "1"]);
    assert!(all.stdout.contains("bad failed") && all.stdout.contains("ok succeeded"), "{}", all.stdout);
    r.gp(&["logs", "1", "nope"]).code(2);
}

#[test]
fn resume_keeps_the_runs_options_and_retries_failed_tasks_on_request() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let counter = r.scratch("calls");
    // Fails on its merits the first time only (HTTP 400 is not transient).
    r.prompt("flaky", "", &format!("transient 1 {} 400\nwrite f.txt f", counter.display()));
    r.prompt("after", "depends_on: [flaky]", "write a.txt a");
    r.prompt("stuck", "", "hang");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--no-integrate", "--timeout", "1s"]);
    o.code(1);
    assert_eq!(r.task_state("1", "flaky")["status"], "failed");
    assert_eq!(r.task_state("1", "after")["status"], "skipped");
    assert_eq!(r.task_state("1", "stuck")["status"], "timed-out");

    // Nothing to do without a retry: failed tasks stay failed.
    let o = r.gp(&["resume", "1", "--retry", "nope"]);
    o.code(2);
    let o = r.gp(&["resume", "1", "--retry-failed", "--retries", "0"]);
    // The run's 1 s timeout still holds (the stuck task times out again quickly, not after 60 min),
    // --no-integrate still holds, and the flag given here is narrated.
    assert!(o.stderr.contains("--retries 0 (the run started without it)"), "{}", o.stderr);
    assert!(o.stderr.contains("to run again from their start: after, flaky, stuck"), "{}", o.stderr);
    assert_eq!(r.task_state("1", "flaky")["status"], "succeeded");
    assert_eq!(r.task_state("1", "after")["status"], "succeeded");
    assert_eq!(r.task_state("1", "stuck")["status"], "timed-out");
    assert_eq!(r.git_out(&["rev-parse", "-q", "--verify", "parallel/1/integration"]).code, 1, "not integrated");
    // The retried task started over from its start commit.
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/flaky:f.txt"]), "f");
}

#[test]
fn a_post_merge_hook_in_another_language_is_chained_not_edited() {
    let r = TestRepo::new();
    let marker = r.scratch("python-ran");
    let hook = format!(
        "#!/usr/bin/env python3\nimport sys, pathlib\npathlib.Path({:?}).write_text('squash=' + sys.argv[1])\n",
        marker.display().to_string()
    );
    let path = r.path(".git/hooks/post-merge");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &hook).unwrap();
    std::process::Command::new("chmod").args(["+x", path.to_str().unwrap()]).status().unwrap();
    r.gp(&["hooks", "install"]).ok();
    // A fast-forward merge runs post-merge: ours, then the user's Python hook with its argument.
    r.git(&["checkout", "-q", "-b", "topic"]);
    r.write("t.txt", "t");
    r.commit("topic");
    r.git(&["checkout", "-q", "main"]);
    let o = r.git_out(&["merge", "-q", "topic"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "squash=0");
    r.gp(&["hooks", "uninstall"]).ok();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), hook, "the user's hook is back, unchanged");
}

#[test]
fn a_sha256_repository_is_refused_plainly() {
    let r = TestRepo::empty();
    let dir = r.scratch("sha256");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = r.command("git");
    c.args(["init", "-q", "--object-format=sha256"]).current_dir(&dir);
    assert!(c.status().unwrap().success());
    let mut c = r.command(common::bin());
    let o = c.args(["status"]).current_dir(&dir).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sha256 repositories are not supported"), "{err}");
}

#[test]
fn verify_and_setup_have_limits_and_leave_nothing_behind() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    r.git(&["config", "parallel.verifyTimeout", "1s"]);
    let o = r.gp(&["run", "prompts", "--verify", "sleep 30"]);
    o.code(1);
    assert!(o.stderr.contains("verify") || o.stdout.contains("verify"), "{}\n{}", o.stdout, o.stderr);
    // A verify worktree left by an interrupted verify is cleaned up with the rest.
    let leftover = r.tmp.path().join("repo.parallel/1/.verify-999999-1");
    r.git(&["worktree", "add", "-q", "--detach", leftover.to_str().unwrap(), "HEAD"]);
    let o = r.gp(&["clean", "--all"]);
    o.ok();
    assert!(o.stdout.contains("removed verify worktree"), "{}", o.stdout);
    assert!(!leftover.exists());

    // A failing setup says what it printed, on stdout as well as stderr.
    r.git(&["config", "parallel.setup", "echo missing dependency libfoo; exit 3"]);
    r.gp(&["run", "prompts", "--no-integrate"]).code(1);
    let t = r.task_state("2", "a");
    assert!(t["reason"].as_str().unwrap().contains("missing dependency libfoo"), "{t}");
}

#[test]
fn two_tasks_making_the_same_change_are_both_in_the_history() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("one", "files: [same.txt]", "write same.txt identical");
    r.prompt("two", "files: [other.txt]", "write same.txt identical");
    r.commit("prompts");
    r.gp(&["run", "prompts", "-j", "2"]).ok();
    for t in ["one", "two"] {
        let o = r.git_out(&["merge-base", "--is-ancestor", &format!("parallel/1/{t}"), "parallel/1/integration"]);
        assert_eq!(o.code, 0, "{t} is in the integration history");
    }
    r.git(&["merge", "-q", "--ff-only", "parallel/1/integration"]);
    let o = r.gp(&["clean", "--merged"]);
    o.ok();
    assert_eq!(
        r.git(&["for-each-ref", "--format=%(refname)", "refs/heads/parallel/1/one", "refs/heads/parallel/1/two"]),
        ""
    );
}

#[test]
fn an_agent_that_deletes_its_own_worktree_is_reported_as_such() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("gone", "", "write a.txt a\nsh rm -rf \"$GIT_PARALLEL_WORKTREE\"");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).code(1);
    let t = r.task_state("1", "gone");
    assert!(t["reason"].as_str().unwrap().contains("removed its own worktree"), "{t}");
}

#[test]
fn reports_order_ids_naturally_and_tell_failures_apart() {
    let r = TestRepo::new();
    r.use_fake_agent();
    for i in [1, 2, 10] {
        r.prompt(&format!("t{i}"), "", &format!("write t{i}.txt x"));
    }
    r.prompt("bad", "", "fail 2 the build is broken");
    r.commit("prompts");
    r.gp(&["run", "prompts"]).code(1);
    let md = r.gp(&["report", "1"]).stdout;
    let pos = |id: &str| md.find(&format!("| {id} |")).unwrap_or_else(|| panic!("{id} in\n{md}"));
    assert!(pos("t1") < pos("t2") && pos("t2") < pos("t10"), "{md}");
    assert!(md.contains("the build is broken"), "failure reasons are in the report:\n{md}");
    let html = r.gp(&["report", "1", "--format", "html"]).stdout;
    assert!(html.contains("timed out") && html.contains("Integrated 3 of 4 tasks"), "{html}");
}
