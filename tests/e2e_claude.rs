//! End to end with the real Claude Code CLI (npm package @anthropic-ai/claude-code), offline,
//! against the project's scripted model server on 127.0.0.1.
//! The CLI is expected at target/e2e/node_modules/.bin/claude (the README's test command
//! installs it there) or at $GIT_PARALLEL_CLAUDE.

mod common;
use common::TestRepo;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn claude_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GIT_PARALLEL_CLAUDE") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e/node_modules/.bin/claude");
    assert!(
        p.exists(),
        "the Claude Code CLI is not installed at {}; run: npm install --prefix target/e2e @anthropic-ai/claude-code",
        p.display()
    );
    p
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(script: &std::path::Path, log: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-model-server"))
        .args(["--script", script.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("PORT ").unwrap_or_else(|| panic!("bad handshake {line:?}")).parse().unwrap();
    Server { child, port }
}

/// Start the scripted model server for `r` with `script` (its log goes to server.log).
fn serve(r: &TestRepo, script: &str) -> Server {
    let path = r.scratch("script.json");
    std::fs::write(&path, script).unwrap();
    start_server(&path, &r.scratch("server.log"))
}

fn claude_env(claude: &std::path::Path, port: u16) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), format!("{}:{}", claude.parent().unwrap().display(), std::env::var("PATH").unwrap())),
        ("ANTHROPIC_BASE_URL".into(), format!("http://127.0.0.1:{port}")),
        ("ANTHROPIC_API_KEY".into(), "test-key".into()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into()),
        ("CLAUDE_CODE_MAX_RETRIES".into(), "1".into()),
        // As root, Claude Code only bypasses permissions inside a declared sandbox.
        ("IS_SANDBOX".into(), "1".into()),
    ]
}

fn configure(r: &TestRepo) {
    r.git(&["config", "parallel.reserveCpus", "0"]);
    r.git(&["config", "parallel.memoryPerTask", "1"]);
    r.git(&["config", "parallel.cpuLimit", "1000"]);
}

#[test]
fn an_interrupted_claude_task_resumes_its_session() {
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
    let env = claude_env(&claude, server.port);
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--agent", "claude", "--timeout", "120s"]).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in &env {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    // Wait until the agent is inside its long Bash call (the file is written, a session recorded).
    let wt = r.tmp.path().join("repo.parallel/1/long/long.txt");
    common::wait_until("the agent's long step", 60, || {
        r.raw_state("1").is_some_and(|s| s.contains("\"session_id\"") && s.contains("\"Bash\"")) && wt.exists()
    });
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let interrupted = r.task_state("1", "long");
    assert_eq!(interrupted["status"], "interrupted");
    let session = interrupted["metrics"]["session_id"].as_str().unwrap().to_string();

    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = r.gp_env(&["resume", "1"], &env_refs);
    let server_log = std::fs::read_to_string(r.scratch("server.log")).unwrap_or_default();
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{server_log}", o.stdout, o.stderr);
    let t = r.task_state("1", "long");
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["attempts"], 2);
    // The resumed agent continued the recorded session rather than starting over.
    assert_eq!(t["metrics"]["session_id"], session.as_str());
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

    let env = claude_env(&claude, server.port);
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
     {"text": "Wrote alpha.txt"}]}],
 "default": {"text": "ok"}}"#,
    );
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.commit("prompts");
    let env = claude_env(&claude, server.port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = r.gp_env(&["run", "prompts", "--agent", "claude", "--sandbox", "--timeout", "120s"], &env_refs);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:alpha.txt"]), "alpha");
    assert_eq!(r.task_state("1", "alpha")["metrics"]["turns"], 2);
}
