//! End to end with the real Claude Code CLI (npm package @anthropic-ai/claude-code), offline,
//! against the project's scripted model server on 127.0.0.1.
//! The CLI is expected at target/e2e/node_modules/.bin/claude (the README's test command
//! installs it there) or at $GIT_PARALLEL_CLAUDE.

mod common;
use common::TestRepo;
use std::path::PathBuf;
use std::process::Stdio;

fn claude_bin() -> PathBuf {
    let p = common::claude_path();
    assert!(
        p.exists(),
        "the Claude Code CLI is not installed at {}; run: npm install --prefix target/e2e @anthropic-ai/claude-code",
        p.display()
    );
    p
}

/// Start the scripted model server for `r` with `script` (its log goes to server.log).
fn serve(r: &TestRepo, script: &str) -> common::ModelServer {
    r.model_server(script)
}

fn configure(r: &TestRepo) {
    r.git(&["config", "parallel.reserveCpus", "0"]);
    r.git(&["config", "parallel.memoryPerTask", "1"]);
    r.git(&["config", "parallel.cpuLimit", "1000"]);
}

#[test]
fn an_interrupted_claude_task_resumes_its_session() {
    claude_session_survives("-INT");
}

#[test]
fn a_claude_task_resumes_its_session_after_kill_9_of_the_orchestrator() {
    claude_session_survives("-KILL");
}

/// Stop the orchestrator with `signal` while Claude is mid-task; resume continues the session.
fn claude_session_survives(signal: &str) {
    let claude = claude_bin();
    let r = TestRepo::new();
    configure(&r);
    let server = serve(
        &r,
        r#"{"rules": [
  {"match": "TASK-LONG", "steps": [
     {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/long.txt", "content": "first half\n"}}},
     {"tool_use": {"name": "Bash", "input": {"command": "sleep 60", "description": "think hard"}}},
     {"text": "Finished after resuming"}]}],
 "default": {"text": "ok"}}"#,
    );
    r.write("prompts/long.md", "# Long task\n\nTASK-LONG: write long.txt, then think.\n");
    r.commit("prompts");
    let env = common::claude_env(&claude, server.port);
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--agent", "claude", "--timeout", "120s"]).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in &env {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    // Wait until the agent is inside its long Bash call (the file is written, a session recorded).
    common::wait_until("the agent's long step", 60, || {
        r.raw_state("1").is_some_and(|s| s.contains("\"session_id\"") && s.contains("\"Bash\""))
            && r.written_file("1", "long", "long.txt").exists()
    });
    std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let interrupted = r.task_state("1", "long");
    if signal == "-INT" {
        assert_eq!(out.status.code(), Some(130));
        assert_eq!(interrupted["status"], "interrupted");
    } else {
        // Nobody recorded an end: the task still reads as running, its orchestrator gone.
        assert_eq!(interrupted["status"], "running");
    }
    let session = interrupted["metrics"]["session_id"].as_str().unwrap().to_string();

    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = r.gp_env(&["resume", "1"], &env_refs);
    let server_log = std::fs::read_to_string(r.scratch("server.log")).unwrap_or_default();
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{server_log}", o.stdout, o.stderr);
    let t = r.task_state("1", "long");
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["attempts"], 2);
    // The resumed agent continued the recorded session rather than starting over, and the
    // task's record says what happened.
    assert_eq!(t["metrics"]["session_id"], session.as_str());
    let resumed = t["resumed"].as_str().unwrap_or_default();
    let cause = if signal == "-INT" { "interrupted" } else { "orchestrator died" };
    assert!(resumed.contains(cause) && resumed.contains(&session), "{t}");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/long:long.txt"]), "first half");
}

#[test]
fn real_claude_cli_runs_three_tasks_two_at_a_time() {
    let claude = claude_bin();
    let r = TestRepo::new();
    configure(&r);
    let server = serve(
        &r,
        r#"{"rules": [
  {"match": "TASK-ALPHA", "steps": [
     {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/alpha.txt", "content": "alpha\n"}}},
     {"text": "Wrote alpha.txt"}]},
  {"match": "TASK-BETA", "steps": [
     {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/beta.txt", "content": "beta\n"}}},
     {"text": "Wrote beta.txt"}]},
  {"match": "TASK-GAMMA", "steps": [
     {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/gamma.txt", "content": "gamma after alpha\n"}}},
     {"text": "Wrote gamma.txt"}]}],
 "default": {"text": "ok"}}"#,
    );
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.write("prompts/beta.md", "# Create beta\n\nTASK-BETA: create beta.txt.\n");
    r.write(
        "prompts/gamma.md",
        "---\ndepends_on: [alpha]\n---\n# Create gamma\n\nTASK-GAMMA: create gamma.txt next to alpha.txt.\n",
    );
    r.commit("prompts");

    let env = common::claude_env(&claude, server.port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = r.gp_env(&["run", "prompts", "-j", "2", "--agent", "claude", "--timeout", "120s"], &env_refs);
    let server_log = std::fs::read_to_string(r.scratch("server.log")).unwrap_or_default();
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{server_log}", o.stdout, o.stderr);

    // The files the scripted model wrote are committed on the right branches.
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:alpha.txt"]), "alpha");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/beta:beta.txt"]), "beta");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/gamma:gamma.txt"]), "gamma after alpha");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/gamma:alpha.txt"]), "alpha", "gamma started from alpha's result");
    assert_eq!(r.git_out(&["cat-file", "-e", "parallel/1/alpha:beta.txt"]).code, 128, "alpha did not see beta");

    // The run's events are in refs, with turns and costs parsed from the real CLI's output.
    let log = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    for t in ["alpha", "beta", "gamma"] {
        assert!(log.contains(&format!("{t}: succeeded")), "{log}");
        let s = r.task_state("1", t);
        assert_eq!(s["metrics"]["turns"], 2, "{s}");
        assert!(s["metrics"]["cost_usd"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["metrics"]["input_tokens"].as_u64().unwrap() > 0, "{s}");
        assert!(!s["metrics"]["session_id"].as_str().unwrap().is_empty(), "{s}");
        assert!(s["files_touched"].as_array().unwrap().iter().any(|f| f == &format!("{t}.txt")), "{s}");
        let transcript = r.task_log("1", t, "jsonl");
        assert!(transcript.contains("\"subtype\":\"init\""), "{transcript}");
    }
    // And integrated into one branch.
    let files = r.git(&["ls-tree", "--name-only", "parallel/1/integration"]);
    for f in ["alpha.txt", "beta.txt", "gamma.txt"] {
        assert!(files.lines().any(|l| l == f), "{files}");
    }
}

#[test]
fn real_claude_cli_works_inside_the_sandbox() {
    let claude = claude_bin();
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is not installed; .ci/run installs it");
    let r = TestRepo::new();
    configure(&r);
    let server = serve(
        &r,
        r#"{"rules": [
  {"match": "TASK-ALPHA", "steps": [
     {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/alpha.txt", "content": "alpha\n"}}},
     {"tool_use": {"name": "Bash", "input": {"command": "echo from-bash > bash.txt && git add bash.txt && git commit -qm 'by bash'", "description": "run a command"}}},
     {"tool_use": {"name": "Bash", "input": {"command": "touch /etc/gp-sandbox-probe", "description": "write outside"}}},
     {"text": "Wrote alpha.txt"}]}],
 "default": {"text": "ok"}}"#,
    );
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.commit("prompts");
    let env = common::claude_env(&claude, server.port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = r.gp_env(&["run", "prompts", "--agent", "claude", "--sandbox", "--timeout", "120s"], &env_refs);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:alpha.txt"]), "alpha");
    // Its Bash tool works in the sandbox (it writes under ~/.claude before every call): the
    // command ran and its commit came out of the sandbox's private object store.
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:bash.txt"]), "from-bash");
    assert!(r.git(&["log", "--format=%s", "parallel/1/alpha"]).lines().any(|l| l == "by bash"));
    // A call the sandbox refused is in the task's record, though the agent went on.
    let m = &r.task_state("1", "alpha")["metrics"];
    assert_eq!(m["turns"], 4);
    assert_eq!(m["tool_errors"], 1, "{m}");
    assert!(m["last_tool_error"].as_str().unwrap().contains("Read-only file system"), "{m}");
    assert!(!std::path::Path::new("/etc/gp-sandbox-probe").exists());
}

/// A Claude session whose tool calls attack: a daemon, a deleted branch, a moved tag.
fn hostile_claude_session(sandbox: bool) {
    let claude = claude_bin();
    let r = TestRepo::new();
    configure(&r);
    r.git(&["tag", "v1"]);
    let marker = format!("{}.{}", 700 + sandbox as u32, std::process::id());
    let script = format!(
        r#"{{"rules": [
  {{"match": "TASK-HOSTILE", "steps": [
     {{"tool_use": {{"name": "Bash", "input": {{"command": "nohup setsid sleep {marker} >/dev/null 2>&1 &", "description": "start a daemon"}}}}}},
     {{"tool_use": {{"name": "Bash", "input": {{"command": "git update-ref -d refs/heads/main; git tag -f v1 HEAD; true", "description": "tamper"}}}}}},
     {{"tool_use": {{"name": "Write", "input": {{"file_path": "{{cwd}}/ok.txt", "content": "ok\n"}}}}}},
     {{"text": "done"}}]}}],
 "default": {{"text": "ok"}}}}"#
    );
    let server = serve(&r, &script);
    r.write("prompts/hostile.md", "# Hostile\n\nTASK-HOSTILE: do it.\n");
    r.commit("prompts");
    let main_before = r.git(&["rev-parse", "main"]);
    let v1 = r.git(&["rev-parse", "v1"]);
    let env = common::claude_env(&claude, server.port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut args = vec!["run", "prompts", "--agent", "claude", "--timeout", "120s", "--no-integrate"];
    if sandbox {
        args.push("--sandbox");
    }
    let o = r.gp_env(&args, &env_refs);
    let survivors = std::process::Command::new("pgrep").args(["-f", &marker]).output().unwrap();
    let _ = std::process::Command::new("pkill").args(["-9", "-f", &marker]).status();
    assert!(
        survivors.stdout.is_empty(),
        "the daemon outlived its task: {}",
        String::from_utf8_lossy(&survivors.stdout)
    );
    assert_eq!(r.git(&["rev-parse", "main"]), main_before);
    assert_eq!(r.git(&["rev-parse", "v1"]), v1);
    let t = r.task_state("1", "hostile");
    if sandbox {
        // The tampering failed inside the sandbox; the work is good.
        o.ok();
        assert_eq!(t["status"], "succeeded", "{t}");
    } else {
        o.code(1);
        assert_eq!(t["status"], "failed", "{t}");
        let reason = t["reason"].as_str().unwrap();
        assert!(reason.contains("deleted branch main") && reason.contains("moved tag v1"), "{reason}");
    }
}

#[test]
fn a_hostile_claude_session_is_contained() {
    hostile_claude_session(false);
}

#[test]
fn a_hostile_claude_session_is_contained_in_the_sandbox() {
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is not installed; .ci/run installs it");
    hostile_claude_session(true);
}

#[test]
fn real_claude_cli_rides_a_burst_of_rate_limits() {
    let claude = claude_bin();
    let r = TestRepo::new();
    configure(&r);
    r.git(&["config", "parallel.retryDelay", "1s"]);
    // Every worktree's first three requests get HTTP 429, then the model answers.
    let server = serve(
        &r,
        r#"{"rules": [
  {"match": "TASK-", "steps": [
     {"status": 429, "times": 3},
     {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/out.txt", "content": "done\n"}}},
     {"text": "Wrote out.txt"}]}],
 "default": {"text": "ok"}}"#,
    );
    for t in ["one", "two", "three"] {
        r.write(&format!("prompts/{t}.md"), &format!("# Task {t}\n\nTASK-{t}: write out.txt.\n"));
    }
    r.commit("prompts");
    let env = common::claude_env(&claude, server.port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = r.gp_env(&["run", "prompts", "--agent", "claude", "--retries", "4", "--timeout", "120s"], &env_refs);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    for t in ["one", "two", "three"] {
        assert_eq!(r.task_state("1", t)["status"], "succeeded", "{t}");
        assert_eq!(r.git(&["cat-file", "-p", &format!("parallel/1/{t}:out.txt")]), "done");
    }
    assert!(o.stderr.contains("rate limited by the API"), "{}", o.stderr);
}

#[test]
fn a_prompt_too_long_for_the_command_line_reaches_claude_on_stdin() {
    let claude = claude_bin();
    let r = TestRepo::new();
    configure(&r);
    let server = serve(
        &r,
        r#"{"rules": [
  {"match": "TASK-LONG", "steps": [
     {"tool_use": {"name": "Write", "input": {"file_path": "{cwd}/long.txt", "content": "long\n"}}},
     {"text": "done"}]}],
 "default": {"text": "ok"}}"#,
    );
    // 200 KB: more than one argument may hold (128 KiB).
    let filler = "All work and no play. ".repeat(10_000);
    r.write("prompts/long.md", &format!("# Long\n\nTASK-LONG: write long.txt.\n\n{filler}\n"));
    r.commit("prompts");
    let env = common::claude_env(&claude, server.port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = r.gp_env(&["run", "prompts", "--agent", "claude", "--timeout", "120s"], &env_refs);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/long:long.txt"]), "long");
}

#[test]
fn a_failed_check_goes_back_into_claudes_own_session() {
    let claude = claude_bin();
    let r = TestRepo::new();
    configure(&r);
    // The agent's first pass forgets fixed.txt; told so in the same conversation, it adds it.
    let server = serve(
        &r,
        r#"{"rules": [
  {"match": "TASK-CHECK", "steps": [
     {"write": {"path": "a.txt", "content": "alpha\n"}},
     {"text": "Done, I think"},
     {"write": {"path": "fixed.txt", "content": "ok\n"}},
     {"text": "Fixed as the check asked"}]}],
 "default": {"text": "ok"}}"#,
    );
    r.write("prompts/a.md", "# A\n\nTASK-CHECK: write a.txt.\n");
    r.commit("prompts");
    let env = common::claude_env(&claude, server.port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut args = vec!["run", "prompts", "--agent", "claude", "--timeout", "120s"];
    args.extend(["--check", "test -f fixed.txt || { echo 'fixed.txt is missing'; exit 1; }"]);
    let o = r.gp_env(&args, &env_refs);
    let log = std::fs::read_to_string(r.scratch("server.log")).unwrap_or_default();
    assert_eq!(o.code, 0, "stderr:\n{}\nserver:\n{log}", o.stderr);
    let t = r.task_state("1", "a");
    assert_eq!(t["status"], "succeeded", "{t}");
    let checks = t["checks"].as_array().unwrap();
    assert_eq!((checks.len(), &checks[0]["passed"], &checks[1]["passed"]), (2, &false.into(), &true.into()), "{t}");
    // One conversation: the fix round's first request carries the first round's four
    // messages and the feedback (a fresh session would start again at one).
    assert!(log.contains("msgs=5 "), "the fix round did not continue the session:\n{log}");
    assert_eq!(log.matches("msgs=1 ").count(), 1, "{log}");
    let fix = log.lines().find(|l| l.contains("msgs=5 ")).unwrap();
    assert!(fix.contains("The check `test -f fixed.txt"), "the model was not told of the check: {fix}");
    let transcript = r.task_log("1", "a", "jsonl");
    let sessions: std::collections::BTreeSet<&str> =
        transcript.lines().filter_map(|l| l.split("\"session_id\":\"").nth(1)?.split('"').next()).collect();
    assert_eq!(sessions.len(), 1, "one session across both rounds: {sessions:?}");
    for f in ["a.txt", "fixed.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/a:{f}")]);
    }
}
