//! `publish`: the run's result pushed and one pull request for it, against a scripted forge
//! (src/bin/fake-forge.rs) on 127.0.0.1 and a bare repository as the remote.

mod common;
use common::TestRepo;
use std::process::{Command, Stdio};

struct ForgeServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for ForgeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forge(r: &TestRepo) -> ForgeServer {
    forge_with(r, &[])
}

/// The scripted forge with more arguments (`--issues FILE`, `--checks FILE`).
fn forge_with(r: &TestRepo, extra: &[&str]) -> ForgeServer {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-forge"))
        .args(["--token", "t0ken", "--state", r.scratch("pulls.json").to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(r.scratch("forge.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
    ForgeServer { child, port }
}

/// A bare repository as `origin`; its path.
fn bare_remote(r: &TestRepo) -> std::path::PathBuf {
    let remote = r.scratch("remote.git");
    assert!(Command::new("git").args(["init", "-q", "--bare", remote.to_str().unwrap()]).status().unwrap().success());
    r.git(&["remote", "add", "origin", remote.to_str().unwrap()]);
    remote
}

/// Publish to the scripted forge on `port` as acme/widgets.
fn use_forge(r: &TestRepo, port: u16) {
    r.git(&["config", "parallel.forgeRepo", "acme/widgets"]);
    r.git(&["config", "parallel.forgeApi", &format!("http://127.0.0.1:{port}")]);
}

fn pulls(r: &TestRepo) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(r.scratch("pulls.json")).unwrap_or_else(|_| "[]".into())).unwrap()
}

/// A repository whose run 1 has two tasks, one of them failed; a bare remote; the forge.
fn published_repo() -> (TestRepo, ForgeServer, std::path::PathBuf) {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.prompt("b", "", "fail");
    // Its check fails: left out, its work kept on its branch.
    r.prompt("c", "check: 'false'", "write c.txt gamma");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--fix-rounds", "0"]).code(1);
    let remote = bare_remote(&r);
    let f = forge(&r);
    use_forge(&r, f.port);
    (r, f, remote)
}

const TOKEN: [(&str, &str); 1] = [("GITHUB_TOKEN", "t0ken")];

#[test]
fn publish_pushes_the_result_and_opens_one_pull_request_then_updates_it() {
    let (r, _f, remote) = published_repo();
    let o = r.gp_env(&["publish", "1"], &TOKEN);
    o.ok();
    assert_eq!(o.stdout.trim(), "https://forge.example/acme/widgets/pull/1");
    // The integrated commit is on the remote under the run's branch.
    let pushed = Command::new("git")
        .args(["--git-dir", remote.to_str().unwrap(), "rev-parse", "parallel/1/integration"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pushed.stdout).trim(), r.git(&["rev-parse", "parallel/1/integration"]));
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p[0]["head"]["ref"], "parallel/1/integration");
    assert_eq!(p[0]["base"]["ref"], "main");
    assert_eq!(p[0]["title"], "git-parallel run 1: 1 of 3 tasks");
    // The description is the run's report: each task, its status, why one failed.
    let body = p[0]["body"].as_str().unwrap();
    assert!(body.contains("| a | succeeded |") && body.contains("| b | failed |"), "{body}");
    // What was left out says why, and where its work is (pushed).
    assert!(body.contains("### Left out"), "{body}");
    assert!(body.contains("- `c` (failed): check `false` exited with 1"), "{body}");
    assert!(body.contains("its work: `parallel/1/c`"), "{body}");
    assert!(!body.contains("its work: `parallel/1/b`"), "b left nothing: {body}");
    let c = Command::new("git")
        .args(["--git-dir", remote.to_str().unwrap(), "rev-parse", "--verify", "parallel/1/c"])
        .output()
        .unwrap();
    assert!(c.status.success(), "c's work was not pushed");
    // Recorded in the run, shown by status.
    assert_eq!(r.run_state("1")["published"]["number"], 1);
    assert!(r.gp(&["status", "1"]).stdout.contains("published as pull request #1"));
    // Again (say after a resume): the same pull request is updated, never a second one.
    let o = r.gp_env(&["publish", "1", "--json"], &TOKEN);
    o.ok();
    assert_eq!(o.json()["opened"], false);
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p[0]["updates"], 1);
}

#[test]
fn publish_says_what_is_missing_and_opens_nothing() {
    let (r, _f, _) = published_repo();
    // No token.
    let o = r.gp_env(&["publish", "1"], &[("GITHUB_TOKEN", ""), ("GH_TOKEN", "")]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("GITHUB_TOKEN or GH_TOKEN"), "{}", o.stderr);
    // A token the forge refuses: its own message, nothing recorded.
    let o = r.gp_env(&["publish", "1"], &[("GITHUB_TOKEN", "wrong")]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("401 Bad credentials"), "{}", o.stderr);
    assert!(r.run_state("1")["published"].is_null());
    // No such remote.
    let o = r.gp_env(&["publish", "1", "--remote", "nowhere"], &TOKEN);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("no remote `nowhere`"), "{}", o.stderr);
    assert_eq!(pulls(&r).as_array().map(|a| a.len()).unwrap_or(0), 0);
}

#[test]
fn a_run_without_an_integration_is_not_published() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let o = r.gp_env(&["publish", "1"], &TOKEN);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("run 1 has no integrated result to publish"), "{}", o.stderr);
}

#[test]
fn plan_from_issues_writes_prompts_and_the_pull_request_closes_what_landed() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let issues = serde_json::json!([
        {"number": 7, "title": "Add a.txt", "body": "```fake-agent\nwrite a.txt alpha\n```", "labels": ["agent"]},
        {"number": 8, "title": "Break things", "body": "```fake-agent\nfail\n```", "labels": ["agent"]},
        {"number": 9, "title": "Not for agents", "body": "people only", "labels": ["people"]},
        {"number": 10, "title": "A pull request", "body": "", "labels": ["agent"], "pull_request": {}}
    ]);
    std::fs::write(r.scratch("issues.json"), issues.to_string()).unwrap();
    bare_remote(&r);
    let f = forge_with(&r, &["--issues", r.scratch("issues.json").to_str().unwrap()]);
    use_forge(&r, f.port);
    let o = r.gp_env(&["plan", "--from-issues", "--label", "agent", "issues"], &TOKEN);
    o.ok();
    assert!(o.stderr.contains("wrote 2 prompt(s) from open issues"), "{}", o.stderr);
    let a = r.read("issues/issue-7.md");
    assert!(a.starts_with("---\nissue: 7\n---\n# Add a.txt\n"), "{a}");
    assert!(!r.path("issues/issue-9.md").exists() && !r.path("issues/issue-10.md").exists());
    r.commit("issue prompts");
    r.gp_env(&["run", "issues", "--publish"], &TOKEN).code(1);
    let p = pulls(&r);
    let body = p[0]["body"].as_str().unwrap();
    // Issue 7's task landed, 8's failed: only 7 is closed.
    assert!(body.starts_with("Closes #7\n\n"), "{body}");
    assert!(!body.contains("Closes #8"), "{body}");
    assert_eq!(r.run_state("1")["published"]["number"], 1);
}

#[test]
fn wait_checks_follows_ci_to_its_end_and_names_what_failed() {
    let (r, f, _) = published_repo();
    drop(f);
    // A forge whose CI is still running, then ends with one failure.
    let checks = r.scratch("checks.json");
    let running = serde_json::json!({
        "check_runs": [{"name": "build", "status": "in_progress"}, {"name": "lint", "status": "completed", "conclusion": "success"}],
        "statuses": [{"context": "ci/legacy", "state": "pending"}]
    });
    std::fs::write(&checks, running.to_string()).unwrap();
    let f = forge_with(&r, &["--checks", checks.to_str().unwrap()]);
    use_forge(&r, f.port);
    let env = [("GITHUB_TOKEN", "t0ken"), ("GIT_PARALLEL_CHECKS_POLL_MS", "100")];
    let mut c = r.command(common::bin());
    c.args(["publish", "1", "--wait-checks"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let ended = serde_json::json!({
        "check_runs": [{"name": "build", "status": "completed", "conclusion": "failure"}, {"name": "lint", "status": "completed", "conclusion": "success"}],
        "statuses": [{"context": "ci/legacy", "state": "success"}]
    });
    std::fs::write(&checks, ended.to_string()).unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("waiting for build, ci/legacy"), "{stderr}");
    assert!(stderr.contains("failed: build"), "{stderr}");
    let p = &r.run_state("1")["published"];
    assert_eq!(p["checks"]["failing"], serde_json::json!(["build"]), "{p}");
    assert!(r.gp(&["status", "1"]).stdout.contains("checks failed: build"));
}

#[test]
fn a_tracking_issue_lists_the_tasks_and_is_updated_not_duplicated() {
    let (r, _f, _) = published_repo();
    r.gp_env(&["publish", "1", "--issue"], &TOKEN).ok();
    let issues: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.issues", r.scratch("pulls.json").display())).unwrap(),
    )
    .unwrap();
    assert_eq!(issues.as_array().unwrap().len(), 1, "{issues}");
    let body = issues[0]["body"].as_str().unwrap();
    assert!(body.contains("- [x] a (landed)"), "{body}");
    assert!(body.contains("- [ ] b (failed"), "{body}");
    let n = issues[0]["number"].as_u64().unwrap();
    // Linked from the pull request.
    assert!(pulls(&r)[0]["body"].as_str().unwrap().contains(&format!("Tracking issue: #{n}")));
    // Published again: the same issue updated.
    r.gp_env(&["publish", "1", "--issue"], &TOKEN).ok();
    let issues: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.issues", r.scratch("pulls.json").display())).unwrap(),
    )
    .unwrap();
    assert_eq!(issues.as_array().unwrap().len(), 1, "{issues}");
    assert_eq!(issues[0]["updates"], 1);
}

#[test]
fn per_task_opens_one_pull_request_per_landed_task_and_names_what_each_builds_on() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.prompt("b", "depends_on: [a]", "write b.txt beta");
    r.prompt("c", "", "fail");
    r.commit("prompts");
    r.gp(&["run", "prompts"]).code(1);
    let remote = bare_remote(&r);
    let f = forge(&r);
    use_forge(&r, f.port);
    r.gp_env(&["publish", "1", "--per-task"], &TOKEN).ok();
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 2, "a and b landed, c did not: {p}");
    assert_eq!(p[0]["head"]["ref"], "parallel/1/a");
    assert_eq!(p[1]["head"]["ref"], "parallel/1/b");
    assert!(p[1]["body"].as_str().unwrap().contains("Builds on #1 (task `a`)"), "{p}");
    for b in ["parallel/1/a", "parallel/1/b"] {
        let o = Command::new("git")
            .args(["--git-dir", remote.to_str().unwrap(), "rev-parse", "--verify", b])
            .output()
            .unwrap();
        assert!(o.status.success(), "{b} was not pushed");
    }
    assert!(r.gp(&["status", "1"]).stdout.contains("published as 2 pull requests into main: #1 a, #2 b"));
    // Again: the same two, updated.
    r.gp_env(&["publish", "1", "--per-task"], &TOKEN).ok();
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 2);
    assert_eq!((p[0]["updates"].as_u64(), p[1]["updates"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn the_forge_token_never_reaches_an_agent_or_a_check() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt(
        "a",
        "check: printenv GITHUB_TOKEN GH_TOKEN > seen-by-check.txt; true",
        "sh printenv GITHUB_TOKEN GH_TOKEN > seen-by-agent.txt; true",
    );
    r.commit("prompts");
    r.gp_env(&["run", "prompts", "--no-integrate"], &[("GITHUB_TOKEN", "s3cret-one"), ("GH_TOKEN", "s3cret-two")]).ok();
    for f in ["seen-by-agent.txt", "seen-by-check.txt"] {
        let seen = r.git(&["cat-file", "-p", &format!("parallel/1/a:{f}")]);
        assert!(!seen.contains("s3cret"), "{f}: {seen}");
    }
}

#[test]
fn a_plain_http_forge_off_this_machine_is_refused() {
    let (r, _f, _) = published_repo();
    r.git(&["config", "parallel.forgeApi", "http://forge.example.com/api/v3"]);
    let o = r.gp_env(&["publish", "1"], &TOKEN);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("plain http only on this machine"), "{}", o.stderr);
}
