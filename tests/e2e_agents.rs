//! End to end with the real Codex, Gemini CLI and Aider, offline, against the project's
//! scripted model server on 127.0.0.1 (one script format for all; see
//! src/bin/fake-model-server.rs). `.ci/run` installs the CLIs: Codex and Gemini CLI with npm
//! into target/e2e, Aider into the virtualenv target/aider-venv. A test whose CLI is missing
//! says so and passes, except under CI (`CI` set), where it fails.

mod common;
use common::TestRepo;
use std::path::PathBuf;

/// The directory holding `profile`'s CLI, or None (with a message) when it is not installed.
fn cli_dir(profile: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let (dir, program, install) = match profile {
        "codex" => (root.join("e2e/node_modules/.bin"), "codex", "npm install --prefix target/e2e @openai/codex"),
        "gemini" => {
            (root.join("e2e/node_modules/.bin"), "gemini", "npm install --prefix target/e2e @google/gemini-cli")
        }
        "claude" => {
            (root.join("e2e/node_modules/.bin"), "claude", "npm install --prefix target/e2e @anthropic-ai/claude-code")
        }
        "aider" => (
            root.join("aider-venv/bin"),
            "aider",
            "python3 -m venv target/aider-venv && target/aider-venv/bin/pip install aider-chat",
        ),
        _ => unreachable!(),
    };
    if dir.join(program).exists() {
        return Some(dir);
    }
    let msg = format!("{program} is not installed at {}; install it with: {install}", dir.display());
    assert!(std::env::var_os("CI").is_none(), "{msg} (.ci/run installs it)");
    eprintln!("SKIPPED: {msg}");
    None
}

/// A minimal Codex model catalog: Codex offers `apply_patch` only to models it knows.
const CODEX_CATALOG: &str = r#"{"models":[{"slug":"mock-model","display_name":"mock-model","description":"scripted",
"default_reasoning_level":"medium","supported_reasoning_levels":[{"effort":"medium","description":"m"}],
"shell_type":"shell_command","visibility":"list","minimal_client_version":"0.0.1","supported_in_api":true,
"priority":0,"base_instructions":"You are a scripted test model.","supports_reasoning_summaries":false,
"support_verbosity":false,"default_verbosity":null,"apply_patch_tool_type":"freeform","input_modalities":["text"],
"truncation_policy":{"mode":"tokens","limit":10000},"supports_parallel_tool_calls":false,"context_window":100000,
"reasoning_summary_format":"none","upgrade":null,"experimental_supported_tools":[]}]}"#;

/// Prices so that Aider reports a cost, and a context size so that it does not warn.
const AIDER_METADATA: &str = r#"{"openai/mock-model": {"max_tokens": 8192, "max_input_tokens": 128000,
"max_output_tokens": 8192, "input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002,
"litellm_provider": "openai", "mode": "chat"}}"#;

/// Point `profile`'s CLI at the server the way a user would configure it (files in the test's
/// HOME, environment): the profile must carry that configuration into its private home.
fn agent_env(r: &TestRepo, profile: &str, dir: &std::path::Path, port: u16) -> Vec<(String, String)> {
    let mut env = vec![("PATH".to_string(), format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()))];
    let mut set = |k: &str, v: String| env.push((k.to_string(), v));
    match profile {
        "codex" => {
            let catalog = r.scratch("codex-models.json");
            std::fs::write(&catalog, CODEX_CATALOG).unwrap();
            std::fs::create_dir_all(r.home.join(".codex")).unwrap();
            // No retries of its own: a rate limit comes back to our backoff at once.
            let config = format!(
                "model = \"mock-model\"\nmodel_provider = \"mock\"\nmodel_catalog_json = \"{}\"\n\n\
                 [model_providers.mock]\nname = \"mock\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
                 env_key = \"MOCK_API_KEY\"\nwire_api = \"responses\"\nrequest_max_retries = 0\nstream_max_retries = 0\n",
                catalog.display()
            );
            std::fs::write(r.home.join(".codex/config.toml"), config).unwrap();
            set("MOCK_API_KEY", "test-key".into());
        }
        "gemini" => {
            std::fs::create_dir_all(r.home.join(".gemini")).unwrap();
            std::fs::write(r.home.join(".gemini/settings.json"), r#"{"general": {"maxAttempts": 1}}"#).unwrap();
            set("GOOGLE_GEMINI_BASE_URL", format!("http://127.0.0.1:{port}"));
            set("GEMINI_API_KEY", "test-key".into());
        }
        "aider" => {
            let metadata = r.scratch("aider-models.json");
            std::fs::write(&metadata, AIDER_METADATA).unwrap();
            set("AIDER_MODEL", "openai/mock-model".into());
            set("AIDER_MODEL_METADATA_FILE", metadata.to_string_lossy().into_owned());
            set("OPENAI_API_BASE", format!("http://127.0.0.1:{port}/v1"));
            set("OPENAI_API_KEY", "test-key".into());
        }
        "claude" => {
            set("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{port}"));
            set("ANTHROPIC_API_KEY", "test-key".into());
            set("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into());
            set("CLAUDE_CODE_MAX_RETRIES", "1".into());
            // As root, Claude Code only bypasses permissions inside a declared sandbox.
            set("IS_SANDBOX", "1".into());
        }
        _ => unreachable!(),
    }
    env
}

fn configure(r: &TestRepo) {
    r.git(&["config", "parallel.reserveCpus", "0"]);
    r.git(&["config", "parallel.memoryPerTask", "1"]);
    r.git(&["config", "parallel.cpuLimit", "1000"]);
    r.git(&["config", "parallel.retryDelay", "20ms"]);
}

fn run(r: &TestRepo, env: &[(String, String)], args: &[&str]) -> common::Out {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    r.gp_env(args, &env)
}

/// What each profile reports of a task that wrote one file in one tool call.
struct Expect {
    turns: u64,
    session: bool,
    cost: bool,
}

fn expect(profile: &str) -> Expect {
    match profile {
        // Aider edits in its reply: one model call.
        "aider" => Expect { turns: 1, session: false, cost: true },
        _ => Expect { turns: 2, session: true, cost: false },
    }
}

const THREE_TASKS: &str = r#"{"rules": [
  {"match": "TASK-ALPHA", "steps": [{"write": {"path": "alpha.txt", "content": "alpha\n"}}, {"text": "Wrote alpha.txt"}]},
  {"match": "TASK-BETA", "steps": [{"write": {"path": "beta.txt", "content": "beta\n"}}, {"text": "Wrote beta.txt"}]},
  {"match": "TASK-GAMMA", "steps": [{"write": {"path": "gamma.txt", "content": "gamma after alpha\n"}}, {"text": "Wrote gamma.txt"}]}],
 "default": {"text": "ok"}}"#;

fn three_tasks_two_at_a_time(profile: &str) {
    let Some(dir) = cli_dir(profile) else { return };
    let r = TestRepo::new();
    configure(&r);
    let server = r.model_server(THREE_TASKS);
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.write("prompts/beta.md", "# Create beta\n\nTASK-BETA: create beta.txt.\n");
    r.write(
        "prompts/gamma.md",
        "---\ndepends_on: [alpha]\n---\n# Create gamma\n\nTASK-GAMMA: create gamma.txt next to alpha.txt.\n",
    );
    r.commit("prompts");
    let env = agent_env(&r, profile, &dir, server.port);
    let o = run(&r, &env, &["run", "prompts", "-j", "2", "--agent", profile, "--timeout", "120s"]);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{}", o.stdout, o.stderr, r.server_log());

    // The files the real CLI wrote are committed on the right branches, and nothing else:
    // no private home, history or cache of the CLI.
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:alpha.txt"]), "alpha");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/beta:beta.txt"]), "beta");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/gamma:gamma.txt"]), "gamma after alpha");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/gamma:alpha.txt"]), "alpha", "gamma started from alpha's result");
    assert_eq!(r.git_out(&["cat-file", "-e", "parallel/1/alpha:beta.txt"]).code, 128, "alpha did not see beta");
    for t in ["alpha", "beta", "gamma"] {
        let changed = r.git(&["diff", "--name-only", "main", &format!("parallel/1/{t}")]);
        let expected: Vec<String> = match t {
            "gamma" => vec!["alpha.txt".into(), "gamma.txt".into()],
            _ => vec![format!("{t}.txt")],
        };
        assert_eq!(changed.lines().collect::<Vec<_>>(), expected, "{t}");
    }

    // The task records, parsed from the real CLI's output.
    let want = expect(profile);
    let log = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    for t in ["alpha", "beta", "gamma"] {
        assert!(log.contains(&format!("{t}: succeeded")), "{log}");
        let s = r.task_state("1", t);
        let m = &s["metrics"];
        assert_eq!(s["attempts"], 1, "{s}");
        assert_eq!(m["turns"], want.turns, "{s}");
        assert!(m["input_tokens"].as_u64().unwrap() > 0, "{s}");
        assert!(m["output_tokens"].as_u64().unwrap() > 0, "{s}");
        assert_eq!(m["session_id"].as_str().is_some_and(|x| !x.is_empty()), want.session, "{s}");
        assert_eq!(m["cost_usd"].as_f64().is_some_and(|c| c > 0.0), want.cost, "{s}");
        assert!(s["files_touched"].as_array().unwrap().iter().any(|f| f == &format!("{t}.txt")), "{s}");
        let transcript = r.task_log("1", t, "jsonl");
        assert!(!transcript.is_empty());
    }
    // And integrated into one branch.
    let files = r.git(&["ls-tree", "--name-only", "parallel/1/integration"]);
    assert_eq!(files.lines().collect::<Vec<_>>(), ["README.md", "alpha.txt", "beta.txt", "gamma.txt", "prompts"]);
}

/// Two rate-limited answers, then the model answers: the task succeeds. Codex and Gemini CLI
/// are configured not to retry on their own, so our backoff does (three attempts). Aider always
/// retries rate limits itself (the OpenAI SDK twice, silently, then Aider for about a minute):
/// only a longer burst reaches our backoff, too slow for a test; its parser is unit-tested.
fn rate_limit_burst_is_retried(profile: &str) {
    let Some(dir) = cli_dir(profile) else { return };
    let r = TestRepo::new();
    configure(&r);
    let server = r.model_server(
        r#"{"rules": [{"match": "TASK-ALPHA", "steps": [
     {"status": 429, "times": 2},
     {"write": {"path": "alpha.txt", "content": "alpha\n"}},
     {"text": "Wrote alpha.txt"}]}]}"#,
    );
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.commit("prompts");
    let env = agent_env(&r, profile, &dir, server.port);
    let o = run(&r, &env, &["run", "prompts", "--agent", profile, "--retries", "3", "--timeout", "120s"]);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{}", o.stdout, o.stderr, r.server_log());
    let s = r.task_state("1", "alpha");
    assert_eq!(s["status"], "succeeded", "{s}");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:alpha.txt"]), "alpha");
    assert_eq!(r.server_log().matches("status: Some(429)").count(), 2);
    let log = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    if profile == "aider" {
        // Retried inside the one attempt, silently (by the OpenAI SDK under litellm).
        assert_eq!(s["attempts"], 1, "{s}");
    } else {
        assert_eq!(s["attempts"], 3, "{s}\n{log}");
        assert_eq!(s["retries"], 2, "{s}");
        let retries: Vec<&str> = log.lines().filter(|l| l.starts_with("alpha: retry")).collect();
        assert_eq!(retries.len(), 2, "{log}");
        for l in retries {
            assert!(l.contains("429") || l.to_lowercase().contains("rate limit"), "{l}");
        }
    }
}

/// A reply stream that ends before it is complete: the CLI reports it (Gemini CLI with exit
/// code 0), and our backoff runs the task again. (Aider takes a cut stream for a whole answer.)
fn cut_stream_is_retried(profile: &str) {
    let Some(dir) = cli_dir(profile) else { return };
    let r = TestRepo::new();
    configure(&r);
    let server = r.model_server(
        r#"{"rules": [{"match": "TASK-ALPHA", "steps": [
     {"cut": true, "times": 1},
     {"write": {"path": "alpha.txt", "content": "alpha\n"}},
     {"text": "Wrote alpha.txt"}]}]}"#,
    );
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.commit("prompts");
    let env = agent_env(&r, profile, &dir, server.port);
    let o = run(&r, &env, &["run", "prompts", "--agent", profile, "--retries", "3", "--timeout", "120s"]);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{}", o.stdout, o.stderr, r.server_log());
    let s = r.task_state("1", "alpha");
    assert_eq!((&s["status"], &s["attempts"]), (&"succeeded".into(), &2.into()), "{s}");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:alpha.txt"]), "alpha");
    let log = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    assert!(log.lines().any(|l| l.starts_with("alpha: retry 1") && l.contains("stream")), "{log}");
}

/// A request the API refuses for good: reported as failed, with the CLI's own words, not retried.
fn hard_failure_is_reported(profile: &str) {
    let Some(dir) = cli_dir(profile) else { return };
    let r = TestRepo::new();
    configure(&r);
    let server = r.model_server(
        r#"{"rules": [{"match": "TASK-ALPHA", "steps": [
     {"status": 400, "message": "The model mock-model does not exist"},
     {"text": "never"}]}]}"#,
    );
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.commit("prompts");
    let env = agent_env(&r, profile, &dir, server.port);
    let o = run(&r, &env, &["run", "prompts", "--agent", profile, "--retries", "3", "--timeout", "120s"]);
    assert_eq!(o.code, 1, "stdout:\n{}\nstderr:\n{}\nserver:\n{}", o.stdout, o.stderr, r.server_log());
    let s = r.task_state("1", "alpha");
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["attempts"], 1, "not retried: {s}");
    let reason = s["reason"].as_str().unwrap();
    assert!(reason.contains("The model mock-model does not exist"), "{reason}");
}

#[test]
fn codex_runs_three_tasks_two_at_a_time() {
    three_tasks_two_at_a_time("codex");
}

#[test]
fn codex_rate_limit_burst_is_retried() {
    rate_limit_burst_is_retried("codex");
}

#[test]
fn codex_hard_failure_is_reported() {
    hard_failure_is_reported("codex");
}

#[test]
fn codex_cut_stream_is_retried() {
    cut_stream_is_retried("codex");
}

#[test]
fn gemini_cut_stream_is_retried() {
    cut_stream_is_retried("gemini");
}

#[test]
fn gemini_runs_three_tasks_two_at_a_time() {
    three_tasks_two_at_a_time("gemini");
}

#[test]
fn gemini_rate_limit_burst_is_retried() {
    rate_limit_burst_is_retried("gemini");
}

#[test]
fn gemini_hard_failure_is_reported() {
    hard_failure_is_reported("gemini");
}

#[test]
fn aider_runs_three_tasks_two_at_a_time() {
    three_tasks_two_at_a_time("aider");
}

#[test]
fn aider_rate_limit_burst_is_retried() {
    rate_limit_burst_is_retried("aider");
}

#[test]
fn aider_hard_failure_is_reported() {
    hard_failure_is_reported("aider");
}

/// Interrupted inside a long command, then resumed: the CLI continues its recorded session
/// (the scripted model sees the earlier turns and plays the last step) instead of starting over.
fn interrupted_task_resumes_its_session(profile: &str, tool: &str, input: &str) {
    let Some(dir) = cli_dir(profile) else { return };
    let r = TestRepo::new();
    configure(&r);
    let server = r.model_server(&format!(
        r#"{{"rules": [{{"match": "TASK-LONG", "steps": [
     {{"write": {{"path": "long.txt", "content": "first half\n"}}}},
     {{"tool_use": {{"name": "{tool}", "input": {input}}}}},
     {{"text": "Finished after resuming"}}]}}],
 "default": {{"text": "ok"}}}}"#
    ));
    r.write("prompts/long.md", "# Long task\n\nTASK-LONG: write long.txt, then think.\n");
    r.commit("prompts");
    let env = agent_env(&r, profile, &dir, server.port);
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--agent", profile, "--timeout", "120s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in &env {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    // Wait until the agent is inside its long command (the file written, a session recorded).
    let shell = if profile == "codex" { "\"Bash\"" } else { tool };
    common::wait_until("the agent's long step", 60, || {
        r.raw_state("1").is_some_and(|s| s.contains("\"session_id\"") && s.contains(shell))
            && r.written_file("1", "long", "long.txt").exists()
    });
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let interrupted = r.task_state("1", "long");
    assert_eq!(interrupted["status"], "interrupted");
    let session = interrupted["metrics"]["session_id"].as_str().unwrap().to_string();

    let o = run(&r, &env, &["resume", "1"]);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{}", o.stdout, o.stderr, r.server_log());
    let t = r.task_state("1", "long");
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(t["attempts"], 2);
    assert_eq!(t["metrics"]["session_id"], session.as_str(), "the same session continued");
    assert!(r.server_log().contains("Finished after resuming"), "the model saw the earlier turns");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/long:long.txt"]), "first half");
}

#[test]
fn codex_interrupted_task_resumes_its_session() {
    // A long yield, so that Codex waits for the command instead of answering "still running".
    interrupted_task_resumes_its_session("codex", "exec_command", r#"{"cmd": "sleep 60", "yield_time_ms": 60000}"#);
}

#[test]
fn gemini_interrupted_task_resumes_its_session() {
    interrupted_task_resumes_its_session("gemini", "run_shell_command", r#"{"command": "sleep 60"}"#);
}

/// One plan, three CLIs: each task names its agent in its front matter, and all run together
/// against the one scripted server, each in its own API.
#[test]
fn mixed_plan_runs_claude_codex_and_gemini_together() {
    let (Some(dir), Some(_), Some(_)) = (cli_dir("claude"), cli_dir("codex"), cli_dir("gemini")) else { return };
    let r = TestRepo::new();
    configure(&r);
    let server = r.model_server(THREE_TASKS);
    r.write("prompts/alpha.md", "---\nagent: claude\n---\n# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.write("prompts/beta.md", "---\nagent: codex\n---\n# Create beta\n\nTASK-BETA: create beta.txt.\n");
    r.write("prompts/gamma.md", "---\nagent: gemini\n---\n# Create gamma\n\nTASK-GAMMA: create gamma.txt.\n");
    r.commit("prompts");
    let mut env = agent_env(&r, "claude", &dir, server.port);
    for p in ["codex", "gemini"] {
        env.extend(agent_env(&r, p, &dir, server.port).into_iter().filter(|(k, _)| k != "PATH"));
    }
    let o = run(&r, &env, &["run", "prompts", "-j", "3", "--timeout", "120s"]);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{}", o.stdout, o.stderr, r.server_log());
    // Each task was run by its own CLI, as its transcript shows.
    for (t, first_event) in
        [("alpha", "\"subtype\":\"init\""), ("beta", "\"thread.started\""), ("gamma", "\"type\":\"init\"")]
    {
        assert_eq!(r.task_state("1", t)["status"], "succeeded");
        assert_eq!(
            r.git(&["cat-file", "-p", &format!("parallel/1/{t}:{t}.txt")]),
            t.to_string() + if t == "gamma" { " after alpha" } else { "" }
        );
        let transcript = r.task_log("1", t, "jsonl");
        assert!(transcript.contains(first_event), "{t}: {transcript}");
    }
    let log = r.server_log();
    for api in ["Anthropic", "Responses", "Gemini"] {
        assert!(log.contains(api), "{log}");
    }
    let files = r.git(&["ls-tree", "--name-only", "parallel/1/integration"]);
    assert_eq!(files.lines().collect::<Vec<_>>(), ["README.md", "alpha.txt", "beta.txt", "gamma.txt", "prompts"]);
}

/// Under `--sandbox` (bubblewrap: the filesystem read-only but the worktree and the git
/// directory, where the private home lives) the CLI still writes its file.
fn works_inside_the_sandbox(profile: &str) {
    let Some(dir) = cli_dir(profile) else { return };
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is not installed; .ci/run installs it");
    let r = TestRepo::new();
    configure(&r);
    let server = r.model_server(THREE_TASKS);
    r.write("prompts/alpha.md", "# Create alpha\n\nTASK-ALPHA: create alpha.txt.\n");
    r.commit("prompts");
    let env = agent_env(&r, profile, &dir, server.port);
    if profile == "codex" {
        // Its configuration names a model catalog outside the repository and the home's
        // private copy: shown to the sandbox as the README says.
        r.git(&["config", "--add", "parallel.sandboxRead", r.scratch("codex-models.json").to_str().unwrap()]);
        // And its provider's key is in a variable of the user's choosing.
        r.git(&["config", "--add", "parallel.sandboxEnv", "MOCK_API_KEY"]);
    }
    let o = run(&r, &env, &["run", "prompts", "--agent", profile, "--sandbox", "--timeout", "120s"]);
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{}", o.stdout, o.stderr, r.server_log());
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/alpha:alpha.txt"]), "alpha");
    assert_eq!(r.task_state("1", "alpha")["metrics"]["turns"], expect(profile).turns);
}

#[test]
fn codex_works_inside_the_sandbox() {
    works_inside_the_sandbox("codex");
}

#[test]
fn gemini_works_inside_the_sandbox() {
    works_inside_the_sandbox("gemini");
}

#[test]
fn aider_works_inside_the_sandbox() {
    works_inside_the_sandbox("aider");
}

/// A failed check reaches the real CLI: Codex and Gemini CLI in their own session (the fix
/// round's request carries the first round's conversation), Aider as a new run whose prompt
/// holds the task and the check's output.
fn a_fix_round_reaches_the_agent(profile: &str) {
    let Some(dir) = cli_dir(profile) else { return };
    let r = TestRepo::new();
    configure(&r);
    // The first pass forgets fixed.txt; told so by the check, the agent adds it.
    let server = r.model_server(
        r#"{"rules": [
  {"match": "(fix round 1 of", "steps": [{"write": {"path": "fixed.txt", "content": "ok\n"}}, {"text": "Fixed as the check asked"}]},
  {"match": "TASK-FIX", "steps": [{"write": {"path": "a.txt", "content": "alpha\n"}}, {"text": "Done, I think"}]}],
 "default": {"text": "ok"}}"#,
    );
    r.write("prompts/a.md", "# A\n\nTASK-FIX: write a.txt.\n");
    r.commit("prompts");
    let env = agent_env(&r, profile, &dir, server.port);
    let check = "test -f fixed.txt || { echo 'fixed.txt is missing'; exit 1; }";
    let o = run(&r, &env, &["run", "prompts", "--agent", profile, "--timeout", "120s", "--check", check]);
    let log = r.server_log();
    assert_eq!(o.code, 0, "stdout:\n{}\nstderr:\n{}\nserver:\n{log}", o.stdout, o.stderr);
    let t = r.task_state("1", "a");
    let checks = t["checks"].as_array().unwrap();
    assert_eq!((checks.len(), &checks[0]["passed"], &checks[1]["passed"]), (2, &false.into(), &true.into()), "{t}");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/a:a.txt"]), "alpha");
    // Only the rule that matches the check's feedback writes fixed.txt: the model was told.
    let main: Vec<&str> = log.lines().filter(|l| l.contains(" main=true ")).collect();
    let msgs = |l: &str| -> usize { l.split("msgs=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap() };
    if expect(profile).session {
        // One conversation: the fix round's request is the feedback after the first round's turns.
        let fix =
            main.iter().find(|l| l.contains("user=\"The check `test -f fixed.txt")).unwrap_or_else(|| panic!("{log}"));
        assert!(msgs(fix) > msgs(main[0]) + 1, "the fix round did not continue the session:\n{log}");
    } else {
        // A new run, no longer than the first: its prompt is the task, then the feedback.
        let fix = main
            .iter()
            .find(|l| l.contains("---\\n\\nThe check `test -f fixed.txt"))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(fix.contains("user=\"# A\\n\\nTASK-FIX") && msgs(fix) == msgs(main[0]), "{log}");
    }
}

#[test]
fn codex_fix_round_continues_its_session() {
    a_fix_round_reaches_the_agent("codex");
}

#[test]
fn gemini_fix_round_continues_its_session() {
    a_fix_round_reaches_the_agent("gemini");
}

#[test]
fn aider_fix_round_starts_again_with_the_feedback() {
    a_fix_round_reaches_the_agent("aider");
}
