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

/// The scripted forge with one scripted answer (`method`, the path's end, `status`, `body`)
/// given once in place of the real one.
fn forge_faulty(r: &TestRepo, faults: serde_json::Value) -> ForgeServer {
    let file = r.scratch("faults.json");
    std::fs::write(&file, faults.to_string()).unwrap();
    forge_with(r, &["--faults", file.to_str().unwrap()])
}

fn opened_issues(r: &TestRepo) -> serde_json::Value {
    std::fs::read_to_string(format!("{}.issues", r.scratch("pulls.json").display()))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(serde_json::json!([]))
}

/// Every ref of the repository but what it knows of remotes: branches, the run's log, notes.
fn all_refs(r: &TestRepo) -> String {
    let all = r.git(&["for-each-ref", "--format=%(objectname) %(refname)"]);
    all.lines().filter(|l| !l.contains(" refs/remotes/")).collect::<Vec<_>>().join("\n")
}

/// After a failed publish: exit 1, the forge's words and what to do on stderr, and every ref
/// as it was before (`refs`): the local integration branch, the run's log, nothing recorded.
fn failed_and_nothing_lost(r: &TestRepo, o: &common::Out, says: &[&str], refs: &str) {
    assert_eq!(o.code, 1, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    for s in says {
        assert!(o.stderr.contains(s), "expected {s:?} in:\n{}", o.stderr);
    }
    assert!(o.stderr.contains("hint:"), "no hint:\n{}", o.stderr);
    assert_eq!(all_refs(r), refs, "a ref changed");
    assert!(r.run_state("1")["published"].is_null());
}

#[test]
fn each_refusal_of_the_forge_says_what_to_do_loses_nothing_and_publishing_again_works() {
    let (r, f, _) = published_repo();
    drop(f);
    let refs = all_refs(&r);
    let cases = [
        (
            "POST",
            "/repos/acme/widgets/pulls",
            403,
            serde_json::json!({"message": "Resource not accessible by integration"}),
            vec!["403 Resource not accessible by integration", "write access"],
        ),
        (
            "GET",
            "/repos/acme/widgets",
            404,
            serde_json::json!({"message": "Not Found"}),
            vec!["404 Not Found", "parallel.forgeRepo"],
        ),
        (
            "POST",
            "/repos/acme/widgets/issues",
            409,
            serde_json::json!({"message": "Conflict"}),
            vec!["409 Conflict", "changed meanwhile"],
        ),
        (
            "POST",
            "/repos/acme/widgets/pulls",
            422,
            serde_json::json!({"message": "Validation Failed", "errors": [{"message": "Base branch is protected: pull requests need a review"}]}),
            vec!["422 Validation Failed: Base branch is protected", "a protected or missing branch"],
        ),
    ];
    for (method, path, status, body, says) in cases {
        let f = forge_faulty(&r, serde_json::json!([{"method": method, "path": path, "status": status, "body": body}]));
        use_forge(&r, f.port);
        let o = r.gp_env(&["publish", "1", "--issue"], &TOKEN);
        failed_and_nothing_lost(&r, &o, &says, &refs);
        // The fault was once: publishing again just works, and opens nothing twice.
        let o = r.gp_env(&["publish", "1", "--issue"], &TOKEN);
        o.ok();
        assert_eq!(o.stdout.trim(), "https://forge.example/acme/widgets/pull/1", "{status}");
        assert_eq!(pulls(&r).as_array().unwrap().len(), 1, "{status}");
        assert_eq!(opened_issues(&r).as_array().unwrap().len(), 1, "{status}: {}", opened_issues(&r));
        // The next case starts from the run as it was before it was published.
        drop(f);
        for line in refs.lines().filter(|l| l.contains(" refs/parallel/runs/")) {
            let (sha, name) = line.split_once(' ').unwrap();
            r.git(&["update-ref", name, sha]);
        }
        assert_eq!(all_refs(&r), refs);
    }
}

#[test]
fn a_tracking_issue_is_never_opened_twice_when_linking_it_fails() {
    let (r, f, _) = published_repo();
    drop(f);
    // The pull request is opened, then the issue, then linking the issue from the pull
    // request fails once.
    let f = forge_faulty(
        &r,
        serde_json::json!([{"method": "PATCH", "path": "/repos/acme/widgets/pulls/1", "status": 502, "body": {"message": "Bad Gateway"}}]),
    );
    use_forge(&r, f.port);
    let o = r.gp_env(&["publish", "1", "--issue"], &TOKEN);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("502 Bad Gateway") && o.stderr.contains("hint:"), "{}", o.stderr);
    assert_eq!(opened_issues(&r).as_array().unwrap().len(), 1);
    r.gp_env(&["publish", "1", "--issue"], &TOKEN).ok();
    let issues = opened_issues(&r);
    assert_eq!(issues.as_array().unwrap().len(), 1, "a second tracking issue: {issues}");
    let n = issues[0]["number"].as_u64().unwrap();
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert!(p[0]["body"].as_str().unwrap().contains(&format!("Tracking issue: #{n}")), "{p}");
}

#[test]
fn a_pull_request_the_search_missed_is_found_by_its_branch_and_updated_not_duplicated() {
    let (r, f, _) = published_repo();
    drop(f);
    // The second time, the forge's list shows no open pull request for the branch (late, or a
    // race), then refuses a second one with 422 "already exists".
    let f = forge_faulty(
        &r,
        serde_json::json!([{"method": "GET", "path": "/repos/acme/widgets/pulls", "after": 1, "status": 200, "body": []}]),
    );
    use_forge(&r, f.port);
    r.gp_env(&["publish", "1"], &TOKEN).ok();
    let o = r.gp_env(&["publish", "1", "--json"], &TOKEN);
    o.ok();
    assert_eq!(o.json()["opened"], false);
    assert_eq!(o.json()["published"]["number"], 1);
    let log = std::fs::read_to_string(r.scratch("forge.log")).unwrap();
    assert!(log.contains("A pull request already exists"), "the forge never said so:\n{log}");
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p[0]["updates"], 1);
}

#[test]
fn a_push_the_remote_refuses_opens_nothing_on_the_forge_and_publishing_again_works() {
    let (r, _f, remote) = published_repo();
    let refs = all_refs(&r);
    let hook = remote.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'frozen: no pushes this week' >&2\nexit 1\n").unwrap();
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
    let o = r.gp_env(&["publish", "1", "--issue"], &TOKEN);
    failed_and_nothing_lost(
        &r,
        &o,
        &["`origin` refused the push of parallel/1/integration", "frozen: no pushes this week"],
        &refs,
    );
    assert!(o.stderr.contains("git parallel publish 1"), "{}", o.stderr);
    // Pushed first: nothing written on the forge.
    assert_eq!(pulls(&r).as_array().map(|a| a.len()).unwrap_or(0), 0, "{}", pulls(&r));
    assert_eq!(opened_issues(&r), serde_json::json!([]));
    std::fs::remove_file(&hook).unwrap();
    r.gp_env(&["publish", "1", "--issue"], &TOKEN).ok();
    assert_eq!(pulls(&r).as_array().unwrap().len(), 1);
    assert_eq!(opened_issues(&r).as_array().unwrap().len(), 1);
}

#[test]
fn a_forge_out_of_reach_is_said_so_and_publishing_again_works() {
    let (r, f, _) = published_repo();
    let refs = all_refs(&r);
    // A loopback port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    use_forge(&r, closed);
    for base in [None, Some("main")] {
        let mut args = vec!["publish", "1"];
        args.extend(base.map(|b| ["--base", b]).into_iter().flatten());
        let o = r.gp_env(&args, &TOKEN);
        failed_and_nothing_lost(
            &r,
            &o,
            &[&format!("cannot reach the forge at http://127.0.0.1:{closed}"), "check the network"],
            &refs,
        );
    }
    use_forge(&r, f.port);
    r.gp_env(&["publish", "1"], &TOKEN).ok();
    assert_eq!(pulls(&r).as_array().unwrap().len(), 1);
}

#[test]
fn the_remote_is_the_base_branchs_upstream_unless_configured_or_named() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.commit("prompts");
    r.gp(&["run", "prompts"]).ok();
    // No `origin`: the branch checked out tracks `upstream`.
    let bare = |name: &str| {
        let p = r.scratch(name);
        assert!(Command::new("git").args(["init", "-q", "--bare", p.to_str().unwrap()]).status().unwrap().success());
        p
    };
    let (up, fork, other) = (bare("up.git"), bare("fork.git"), bare("other.git"));
    r.git(&["remote", "add", "upstream", up.to_str().unwrap()]);
    r.git(&["remote", "add", "fork", fork.to_str().unwrap()]);
    r.git(&["remote", "add", "other", other.to_str().unwrap()]);
    r.git(&["push", "-q", "-u", "upstream", "HEAD"]);
    let f = forge(&r);
    use_forge(&r, f.port);
    let has = |remote: &std::path::Path| {
        Command::new("git")
            .args(["--git-dir", remote.to_str().unwrap(), "rev-parse", "--verify", "-q", "parallel/1/integration"])
            .output()
            .unwrap()
            .status
            .success()
    };
    let o = r.gp_env(&["publish", "1", "--json"], &TOKEN);
    o.ok();
    assert_eq!(o.json()["published"]["remote"], "upstream");
    assert!(has(&up) && !has(&fork) && !has(&other));
    // parallel.remote says otherwise.
    r.git(&["config", "parallel.remote", "fork"]);
    r.gp_env(&["publish", "1"], &TOKEN).ok();
    assert!(has(&fork) && !has(&other));
    // --remote over both.
    let o = r.gp_env(&["publish", "1", "--remote", "other", "--json"], &TOKEN);
    o.ok();
    assert_eq!(o.json()["published"]["remote"], "other");
    assert!(has(&other));
}

/// GitHub Enterprise serves the same API under `/api/v3` on its own host.
#[test]
fn github_enterprise_paths_are_under_api_v3() {
    let (r, f, _) = published_repo();
    r.git(&["config", "parallel.forgeApi", &format!("http://127.0.0.1:{}/api/v3", f.port)]);
    r.gp_env(&["publish", "1"], &TOKEN).ok();
    let log = std::fs::read_to_string(r.scratch("forge.log")).unwrap();
    assert!(log.contains("POST /api/v3/repos/acme/widgets/pulls"), "{log}");
    assert_eq!(pulls(&r).as_array().unwrap().len(), 1);
}

// GitLab: the same flows against the scripted forge's REST v4 routes.

const GITLAB_TOKEN: [(&str, &str); 2] = [("GITLAB_TOKEN", "t0ken"), ("GITHUB_TOKEN", "not-for-gitlab")];

/// Publish to the scripted forge on `port` as GitLab project acme/widgets.
fn use_gitlab(r: &TestRepo, port: u16) {
    r.git(&["config", "parallel.forge", "gitlab"]);
    r.git(&["config", "parallel.forgeRepo", "acme/widgets"]);
    r.git(&["config", "parallel.forgeApi", &format!("http://127.0.0.1:{port}/api/v4")]);
}

fn gitlab_repo() -> (TestRepo, ForgeServer, std::path::PathBuf) {
    let (r, f, remote) = published_repo();
    use_gitlab(&r, f.port);
    (r, f, remote)
}

#[test]
fn gitlab_gets_one_merge_request_updated_on_republish_and_drafts_stay_drafts() {
    let (r, _f, remote) = gitlab_repo();
    let o = r.gp_env(&["publish", "1", "--draft"], &GITLAB_TOKEN);
    o.ok();
    assert_eq!(o.stdout.trim(), "https://gitlab.example/acme/widgets/-/merge_requests/1");
    assert!(o.stderr.contains("opened merge request !1 into main"), "{}", o.stderr);
    let pushed = Command::new("git")
        .args(["--git-dir", remote.to_str().unwrap(), "rev-parse", "parallel/1/integration"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pushed.stdout).trim(), r.git(&["rev-parse", "parallel/1/integration"]));
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p[0]["source_branch"], "parallel/1/integration");
    assert_eq!(p[0]["target_branch"], "main");
    assert_eq!(p[0]["title"], "Draft: git-parallel run 1: 1 of 3 tasks");
    let body = p[0]["description"].as_str().unwrap();
    assert!(body.contains("| a | succeeded |") && body.contains("its work: `parallel/1/c`"), "{body}");
    // The project is named by its encoded path; the token goes in GitLab's header.
    let log = std::fs::read_to_string(r.scratch("forge.log")).unwrap();
    assert!(log.contains("POST /api/v4/projects/acme%2Fwidgets/merge_requests"), "{log}");
    // Again: the same merge request, still a draft.
    let o = r.gp_env(&["publish", "1", "--json"], &GITLAB_TOKEN);
    o.ok();
    assert_eq!(o.json()["opened"], false);
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p[0]["updates"], 1);
    assert_eq!(p[0]["draft"], true, "{p}");
    // GitLab's token, not GitHub's: without it, said so.
    let o = r.gp_env(&["publish", "1"], &[("GITHUB_TOKEN", "t0ken"), ("GITLAB_TOKEN", "")]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("GITLAB_TOKEN"), "{}", o.stderr);
}

#[test]
fn gitlab_merge_request_the_search_missed_is_updated_on_409() {
    let (r, f, _) = gitlab_repo();
    drop(f);
    let f = forge_faulty(
        &r,
        serde_json::json!([{"method": "GET", "path": "/merge_requests", "after": 1, "status": 200, "body": []}]),
    );
    use_gitlab(&r, f.port);
    r.gp_env(&["publish", "1"], &GITLAB_TOKEN).ok();
    let o = r.gp_env(&["publish", "1", "--json"], &GITLAB_TOKEN);
    o.ok();
    assert_eq!(o.json()["opened"], false);
    let log = std::fs::read_to_string(r.scratch("forge.log")).unwrap();
    assert!(log.contains("-> 409"), "{log}");
    assert_eq!(pulls(&r).as_array().unwrap().len(), 1);
}

#[test]
fn gitlab_per_task_merge_requests_name_what_they_build_on() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha");
    r.prompt("b", "depends_on: [a]", "write b.txt beta");
    r.commit("prompts");
    r.gp(&["run", "prompts"]).ok();
    bare_remote(&r);
    let f = forge(&r);
    use_gitlab(&r, f.port);
    r.gp_env(&["publish", "1", "--per-task"], &GITLAB_TOKEN).ok();
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 2, "{p}");
    assert_eq!(
        (p[0]["source_branch"].as_str(), p[1]["source_branch"].as_str()),
        (Some("parallel/1/a"), Some("parallel/1/b"))
    );
    assert!(p[1]["description"].as_str().unwrap().contains("Builds on !1 (task `a`)"), "{p}");
    r.gp_env(&["publish", "1", "--per-task"], &GITLAB_TOKEN).ok();
    let p = pulls(&r);
    assert_eq!(p.as_array().unwrap().len(), 2);
    assert_eq!((p[0]["updates"].as_u64(), p[1]["updates"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn gitlab_tracking_issue_is_ticked_and_updated() {
    let (r, _f, _) = gitlab_repo();
    r.gp_env(&["publish", "1", "--issue"], &GITLAB_TOKEN).ok();
    let issues = opened_issues(&r);
    assert_eq!(issues.as_array().unwrap().len(), 1, "{issues}");
    let list = issues[0]["description"].as_str().unwrap();
    assert!(list.contains("- [x] a (landed)") && list.contains("- [ ] b (failed"), "{list}");
    let n = issues[0]["iid"].as_u64().unwrap();
    assert!(pulls(&r)[0]["description"].as_str().unwrap().contains(&format!("Tracking issue: #{n}")));
    r.gp_env(&["publish", "1", "--issue"], &GITLAB_TOKEN).ok();
    let issues = opened_issues(&r);
    assert_eq!(issues.as_array().unwrap().len(), 1, "{issues}");
    assert_eq!(issues[0]["updates"], 1);
}

#[test]
fn gitlab_commit_statuses_pass_or_fail_the_wait() {
    let (r, f, _) = gitlab_repo();
    drop(f);
    let checks = r.scratch("checks.json");
    let f = forge_with(&r, &["--checks", checks.to_str().unwrap()]);
    use_gitlab(&r, f.port);
    let env = [("GITLAB_TOKEN", "t0ken"), ("GIT_PARALLEL_CHECKS_POLL_MS", "50")];
    let passing = serde_json::json!({"statuses": [{"name": "build", "status": "success"}, {"name": "deploy", "status": "manual"}]});
    std::fs::write(&checks, passing.to_string()).unwrap();
    let o = r.gp_env(&["publish", "1", "--wait-checks"], &env);
    o.ok();
    assert!(o.stderr.contains("passed"), "{}", o.stderr);
    let failing =
        serde_json::json!({"statuses": [{"name": "build", "status": "success"}, {"name": "test", "status": "failed"}]});
    std::fs::write(&checks, failing.to_string()).unwrap();
    let o = r.gp_env(&["publish", "1", "--wait-checks"], &env);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("failed: test"), "{}", o.stderr);
    assert_eq!(r.run_state("1")["published"]["checks"]["failing"], serde_json::json!(["test"]));
    // Still running past the timeout: stopped waiting, not passed.
    let running = serde_json::json!({"statuses": [{"name": "build", "status": "running"}]});
    std::fs::write(&checks, running.to_string()).unwrap();
    let o = r.gp_env(&["publish", "1", "--wait-checks", "--checks-timeout", "1s"], &env);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("waiting for build") && o.stderr.contains("stopped waiting"), "{}", o.stderr);
    let log = std::fs::read_to_string(r.scratch("forge.log")).unwrap();
    assert!(log.contains("/api/v4/projects/acme%2Fwidgets/repository/commits/"), "{log}");
}

#[test]
fn gitlab_issues_become_prompts_and_the_merge_request_closes_what_landed() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let issues = serde_json::json!([
        {"iid": 7, "title": "Add a.txt", "description": "```fake-agent\nwrite a.txt alpha\n```", "labels": ["agent"]},
        {"iid": 8, "title": "Break things", "description": "```fake-agent\nfail\n```", "labels": ["agent"]},
        {"iid": 9, "title": "Not for agents", "description": "people only", "labels": ["people"]}
    ]);
    std::fs::write(r.scratch("issues.json"), issues.to_string()).unwrap();
    bare_remote(&r);
    let f = forge_with(&r, &["--issues", r.scratch("issues.json").to_str().unwrap()]);
    use_gitlab(&r, f.port);
    let o = r.gp_env(&["plan", "--from-issues", "--label", "agent", "issues"], &GITLAB_TOKEN);
    o.ok();
    assert!(o.stderr.contains("wrote 2 prompt(s) from open issues"), "{}", o.stderr);
    assert!(r.read("issues/issue-7.md").starts_with("---\nissue: 7\n---\n# Add a.txt\n"));
    assert!(!r.path("issues/issue-9.md").exists());
    r.commit("issue prompts");
    r.gp_env(&["run", "issues", "--publish"], &GITLAB_TOKEN).code(1);
    let body = pulls(&r)[0]["description"].as_str().unwrap().to_string();
    assert!(body.starts_with("Closes #7\n\n") && !body.contains("Closes #8"), "{body}");
}

// The client held to GitHub's published API description (tests/data/forge/github.json, the
// parts for the endpoints used, taken from github/rest-api-description), not to our server.

fn github_contract() -> String {
    format!("{}/tests/data/forge/github.json", env!("CARGO_MANIFEST_DIR"))
}

/// Every flow the client has (publish with an issue and a draft, waiting for checks, per task,
/// planning from issues) against a scripted forge that holds each request to `contract`; the
/// forge's request log.
fn every_flow_under_contract(
    r: &TestRepo,
    contract: &str,
    checks: &std::path::Path,
    issues: &serde_json::Value,
    point_at: fn(&TestRepo, u16),
    token_var: &str,
) -> String {
    std::fs::write(r.scratch("issues.json"), issues.to_string()).unwrap();
    let f = forge_with(
        r,
        &[
            "--contract",
            contract,
            "--checks",
            checks.to_str().unwrap(),
            "--issues",
            r.scratch("issues.json").to_str().unwrap(),
        ],
    );
    point_at(r, f.port);
    let env = [(token_var, "t0ken"), ("GIT_PARALLEL_CHECKS_POLL_MS", "50")];
    for args in [
        &["publish", "1", "--issue", "--draft"][..],
        &["publish", "1", "--issue", "--wait-checks"],
        &["publish", "1", "--per-task"],
        &["plan", "--from-issues", "--label", "agent", "--dry-run", "from-issues"],
    ] {
        let o = r.gp_env(args, &env);
        assert!(!o.stderr.contains("contract:"), "{args:?} broke the API description:\n{}", o.stderr);
        o.ok();
    }
    std::fs::read_to_string(r.scratch("forge.log")).unwrap()
}

#[test]
fn every_github_request_matches_the_published_api_description() {
    let (r, f, _) = published_repo();
    drop(f);
    let checks = r.scratch("checks.json");
    let ended = serde_json::json!({
        "check_runs": [{"name": "build", "status": "completed", "conclusion": "success"}],
        "statuses": [{"context": "ci/legacy", "state": "success"}]
    });
    std::fs::write(&checks, ended.to_string()).unwrap();
    let issues = serde_json::json!([{"number": 7, "title": "Add a.txt", "body": "x", "labels": ["agent"]}]);
    let log = every_flow_under_contract(&r, &github_contract(), &checks, &issues, use_forge, "GITHUB_TOKEN");
    assert!(!log.contains("-> 400"), "{log}");
    for call in [
        "GET /repos/acme/widgets/pulls?",
        "POST /repos/acme/widgets/pulls",
        "PATCH /repos/acme/widgets/pulls/1",
        "POST /repos/acme/widgets/issues",
        "PATCH /repos/acme/widgets/issues/1000",
        "/check-runs",
        "/status ",
        "GET /repos/acme/widgets/issues?",
    ] {
        assert!(log.contains(call), "{call} never checked:\n{log}");
    }
}

#[test]
fn the_contract_refuses_what_the_api_description_does_not_allow() {
    let r = TestRepo::new();
    let contract = github_contract();
    let f = forge_with(&r, &["--contract", &contract]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let base = format!("http://127.0.0.1:{}", f.port);
    let send = |method: &str, path: &str, body: &str| {
        let url = format!("{base}{path}");
        let mut resp = match method {
            "GET" => agent.get(&url).header("Authorization", "Bearer t0ken").call(),
            "POST" => agent.post(&url).header("Authorization", "Bearer t0ken").send(body),
            _ => agent.patch(&url).header("Authorization", "Bearer t0ken").send(body),
        }
        .unwrap();
        (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
    };
    for (method, path, body, says) in [
        ("GET", "/repos/o/r/pulls?state=opened", "", "query parameter `state` is `opened`"),
        ("GET", "/repos/o/r/pulls?source_branch=x", "", "takes no query parameter `source_branch`"),
        ("POST", "/repos/o/r/pulls", r#"{"title":"t","head":"h"}"#, "`base` is required"),
        ("POST", "/repos/o/r/pulls", r#"{"head":"h","base":"main","labels":["x"]}"#, "no field `labels`"),
        ("POST", "/repos/o/r/pulls", r#"{"head":"h","base":"main","draft":"yes"}"#, "`draft` is"),
        ("PATCH", "/repos/o/r/pulls/1", r#"{"state":"merged"}"#, "`state` is"),
        ("POST", "/repos/o/r/merge_requests", "{}", "the API describes no POST /repos/o/r/merge_requests"),
    ] {
        let (status, text) = send(method, path, body);
        assert_eq!(status, 400, "{method} {path}: {text}");
        assert!(text.contains("contract:") && text.contains(says), "{method} {path}: {text}");
    }
    // What it allows passes through to the forge.
    assert_eq!(send("GET", "/repos/o/r/pulls?state=open&head=o%3Ab", "").0, 200);
}

#[test]
fn every_gitlab_merge_request_and_status_request_matches_gitlabs_api_description() {
    let (r, f, _) = gitlab_repo();
    drop(f);
    let checks = r.scratch("checks.json");
    std::fs::write(&checks, serde_json::json!({"statuses": [{"name": "build", "status": "success"}]}).to_string())
        .unwrap();
    let issues = serde_json::json!([{"iid": 7, "title": "Add a.txt", "description": "x", "labels": ["agent"]}]);
    let contract = format!("{}/tests/data/forge/gitlab.json", env!("CARGO_MANIFEST_DIR"));
    let log = every_flow_under_contract(&r, &contract, &checks, &issues, use_gitlab, "GITLAB_TOKEN");
    for call in [
        "GET /api/v4/projects/acme%2Fwidgets/merge_requests?",
        "POST /api/v4/projects/acme%2Fwidgets/merge_requests",
        "PUT /api/v4/projects/acme%2Fwidgets/merge_requests/1",
        "/statuses?",
    ] {
        assert!(log.contains(call), "{call} never checked:\n{log}");
    }
}

// The push over git's smart HTTP: `git http-backend` behind a CGI shim on 127.0.0.1.

/// A smart-HTTP git server for the bare repositories under `root`, at http://127.0.0.1:PORT/.
struct GitHttp {
    port: u16,
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn git_http(r: &TestRepo, root: &std::path::Path) -> GitHttp {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let (s, root, home) = (server.clone(), root.to_path_buf(), r.home.clone());
    let thread = std::thread::spawn(move || {
        for mut req in s.incoming_requests() {
            let mut body = Vec::new();
            let _ = std::io::Read::read_to_end(req.as_reader(), &mut body);
            let url = req.url().to_string();
            let (path, query) = url.split_once('?').unwrap_or((&url, ""));
            let header = |name: &'static str| {
                req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
            };
            let mut c = Command::new("git");
            common::hermetic(&mut c, &home);
            c.arg("http-backend")
                .env("GIT_PROJECT_ROOT", &root)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("REQUEST_METHOD", req.method().as_str())
                .env("PATH_INFO", path)
                .env("QUERY_STRING", query)
                .env("CONTENT_TYPE", header("Content-Type").unwrap_or_default())
                .env("CONTENT_LENGTH", body.len().to_string())
                .env("HTTP_CONTENT_ENCODING", header("Content-Encoding").unwrap_or_default())
                .env("GIT_PROTOCOL", header("Git-Protocol").unwrap_or_default())
                // Pushing over HTTP needs an authenticated user (or http.receivepack).
                .env("REMOTE_USER", "tester")
                .env("REMOTE_ADDR", "127.0.0.1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            let mut child = c.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let feed = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &body));
            let out = child.wait_with_output().unwrap();
            let _ = feed.join();
            // CGI: headers, a blank line, the body.
            let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
            let split = split.or_else(|| out.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
            let (head, payload) = match split {
                Some((i, n)) => (String::from_utf8_lossy(&out.stdout[..i]).to_string(), out.stdout[i + n..].to_vec()),
                None => (String::new(), out.stdout.clone()),
            };
            let mut status = 200;
            let mut resp = tiny_http::Response::from_data(payload);
            for line in head.lines() {
                let Some((k, v)) = line.split_once(':') else { continue };
                if k.eq_ignore_ascii_case("Status") {
                    status = v.trim().split(' ').next().and_then(|c| c.parse().ok()).unwrap_or(500);
                } else if let Ok(h) = tiny_http::Header::from_bytes(k.trim(), v.trim()) {
                    resp.add_header(h);
                }
            }
            let _ = req.respond(resp.with_status_code(status));
        }
    });
    GitHttp { port, server, thread: Some(thread) }
}

#[test]
fn publish_pushes_over_smart_http() {
    let (r, _f, _) = published_repo();
    let root = r.scratch("http-root");
    std::fs::create_dir_all(&root).unwrap();
    let bare = root.join("widgets.git");
    assert!(Command::new("git").args(["init", "-q", "--bare", bare.to_str().unwrap()]).status().unwrap().success());
    let http = git_http(&r, &root);
    r.git(&["remote", "set-url", "origin", &format!("http://127.0.0.1:{}/widgets.git", http.port)]);
    let o = r.gp_env(&["publish", "1"], &TOKEN);
    o.ok();
    let pushed = Command::new("git")
        .args(["--git-dir", bare.to_str().unwrap(), "rev-parse", "parallel/1/integration"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&pushed.stdout).trim(), r.git(&["rev-parse", "parallel/1/integration"]));
    assert_eq!(pulls(&r).as_array().unwrap().len(), 1);
    // A server that refuses the push: said so, nothing opened on the forge.
    drop(http);
    let o = r.gp_env(&["publish", "1"], &TOKEN);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("`origin` refused the push"), "{}", o.stderr);
    assert_eq!(pulls(&r)[0]["updates"], 0);
}

/// HTTPS is checked against the system's roots, and SSL_CERT_FILE adds one: a forge on
/// 127.0.0.1 whose certificate comes from a test authority (openssl makes it and serves).
#[test]
fn https_trusts_the_system_roots_and_ssl_cert_file() {
    let Some(_) = which("openssl") else {
        eprintln!("openssl not found: skipped");
        return;
    };
    let (r, _f, _) = published_repo();
    let dir = r.scratch("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let ssl = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(&dir).output().unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test authority",
    ]);
    ssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "leaf.pem",
            "-key",
            "leaf.key",
            "-www",
            "-quiet",
        ])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    r.git(&["config", "parallel.forgeApi", &format!("https://127.0.0.1:{port}")]);
    // Not among the system's roots: refused before a word is sent.
    let o = r.gp_env(&["publish", "1"], &TOKEN);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains(&format!("cannot reach the forge at https://127.0.0.1:{port}")), "{}", o.stderr);
    assert!(o.stderr.to_lowercase().contains("certificate"), "{}", o.stderr);
    // Trusted through SSL_CERT_FILE: the connection is made (the server, not a forge, then
    // answers with a web page, which names no default branch).
    let ca = dir.join("ca.pem");
    let o = r.gp_env(&["publish", "1"], &[("GITHUB_TOKEN", "t0ken"), ("SSL_CERT_FILE", ca.to_str().unwrap())]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(!o.stderr.to_lowercase().contains("certificate"), "{}", o.stderr);
    assert!(o.stderr.contains("the forge named no default branch"), "{}", o.stderr);
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(program)).find(|f| f.is_file()))
}

#[test]
fn the_forge_token_is_never_written_to_the_repository_or_said() {
    let (r, _f, remote) = published_repo();
    r.gp_env(&["publish", "1", "--issue"], &TOKEN).ok();
    // A token the forge refuses is not repeated either.
    let o = r.gp_env(&["publish", "1"], &[("GITHUB_TOKEN", "wr0ng-s3cret")]);
    assert_eq!(o.code, 1);
    assert!(!o.stderr.contains("wr0ng-s3cret") && !o.stdout.contains("wr0ng-s3cret"), "{}", o.stderr);
    // Every object of the repository and of the remote: commits, trees, the run's log, notes.
    for git_dir in [r.root.join(".git"), remote] {
        let mut c = r.command("git");
        c.args(["--git-dir", git_dir.to_str().unwrap(), "cat-file", "--batch-all-objects", "--batch"]);
        let all = c.output().unwrap();
        assert!(all.status.success());
        assert!(!all.stdout.is_empty());
        let text = String::from_utf8_lossy(&all.stdout);
        assert!(!text.contains("t0ken") && !text.contains("wr0ng-s3cret"), "the token is in {}", git_dir.display());
    }
}
