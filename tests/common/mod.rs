//! Hermetic test repositories: temp HOME, no global or system git config, fixed dates, UTC.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestRepo {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
}

/// The environment every process in a test gets.
pub fn hermetic(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .env("NO_COLOR", "1");
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

fn run(mut cmd: Command) -> Out {
    let o = cmd.output().expect("spawn");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_git-parallel"))
}

impl TestRepo {
    /// A repository with one commit (a README).
    pub fn new() -> Self {
        let r = Self::empty();
        r.write("README.md", "# test\n");
        r.commit("initial");
        r
    }

    /// `git init` only, no commits.
    pub fn empty() -> Self {
        Self::empty_in(tempfile::tempdir().unwrap())
    }

    fn empty_in(tmp: tempfile::TempDir) -> Self {
        let root = tmp.path().join("repo");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let r = TestRepo { root: root.canonicalize().unwrap(), home, tmp };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        hermetic(&mut c, &self.home);
        c.current_dir(&self.root);
        c
    }

    pub fn git_out(&self, args: &[&str]) -> Out {
        let mut c = self.command("git");
        c.args(args);
        run(c)
    }

    /// Run git, assert success, return trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let o = self.git_out(args);
        assert_eq!(o.code, 0, "git {args:?} failed: {}", o.stderr);
        o.stdout.trim_end().to_string()
    }

    pub fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Run git-parallel with `args` in the repository.
    pub fn gp(&self, args: &[&str]) -> Out {
        let mut c = self.command(bin());
        c.args(args);
        run(c)
    }

    /// Run git-parallel with extra environment.
    pub fn gp_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.command(bin());
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c)
    }

    pub fn open(&self) -> git_parallel::repo::Repo {
        git_parallel::repo::Repo::discover(&self.root).unwrap()
    }
}

/// Poll `f` every 50 ms until it holds; fail after `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < std::time::Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The fake agent binary (built with the `test-fakes` feature).
pub fn fake_agent() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-agent"))
}

impl TestRepo {
    /// Configure the custom agent profile to be the fake agent, with quick retries and
    /// worktrees inside the temp dir.
    pub fn use_fake_agent(&self) {
        let cmd = format!("'{}' {{prompt_file}}", fake_agent().display());
        self.git(&["config", "parallel.agent", "custom"]);
        self.git(&["config", "parallel.agentCommand", &cmd]);
        self.git(&["config", "parallel.reserveCpus", "0"]);
        self.git(&["config", "parallel.memoryPerTask", "1"]);
        self.git(&["config", "parallel.cpuLimit", "1000"]);
        self.git(&["config", "parallel.retryDelay", "20ms"]);
        self.git(&["config", "parallel.killGrace", "500ms"]);
    }

    /// A prompt whose fake-agent script is `script`, with optional front matter lines.
    pub fn prompt(&self, id: &str, front: &str, script: &str) {
        let fm = if front.is_empty() { String::new() } else { format!("---\n{front}\n---\n") };
        self.write(&format!("prompts/{id}.md"), &format!("{fm}# Task {id}\n\n```fake-agent\n{script}\n```\n"));
    }

    /// Where a file the agent wrote in its worktree is while the task runs: in the upper layer
    /// of an overlay worktree (mounted only in the task's own namespace), else in the folder.
    pub fn written_file(&self, run: &str, task: &str, rel: &str) -> PathBuf {
        let dir = self.tmp.path().join("repo.parallel").join(run);
        let upper = dir.join(".layers").join(task).join("upper").join(rel);
        if upper.exists() {
            upper
        } else {
            dir.join(task).join(rel)
        }
    }

    /// The run's state as JSON, every task included (`status RUN --json`).
    pub fn run_state(&self, run: &str) -> serde_json::Value {
        self.gp(&["status", run, "--json"]).ok().json()
    }

    /// The run's state as compact JSON, once the run exists (for polling a live run).
    pub fn raw_state(&self, run: &str) -> Option<String> {
        let o = self.gp(&["status", run, "--json"]);
        (o.code == 0).then(|| serde_json::to_string(&o.json()).unwrap())
    }

    /// A file of a task stored in the run's tree: `logs/<ab>/<task>.<ext>`, where `<ab>` starts
    /// the task id's blob hash (what the README tells users to type).
    pub fn task_log(&self, run: &str, task: &str, ext: &str) -> String {
        let id_file = self.scratch("task-id");
        std::fs::write(&id_file, task).unwrap();
        let hash = self.git(&["hash-object", id_file.to_str().unwrap()]);
        self.git(&["cat-file", "-p", &format!("refs/parallel/runs/{run}:logs/{}/{task}.{ext}", &hash[..2])])
    }

    pub fn task_state(&self, run: &str, task: &str) -> serde_json::Value {
        let s = self.run_state(run);
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == task)
            .cloned()
            .unwrap_or_else(|| panic!("no task {task}"))
    }

    /// A path in the temp dir, outside the repository.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// The scripted model server (`src/bin/fake-model-server.rs`), stopped on drop.
pub struct ModelServer {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestRepo {
    /// Start the scripted model server with `script` (its log goes to server.log in the temp dir).
    pub fn model_server(&self, script: &str) -> ModelServer {
        use std::io::BufRead;
        let path = self.scratch("script.json");
        std::fs::write(&path, script).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-model-server"))
            .args(["--script", path.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(self.scratch("server.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port =
            line.trim().strip_prefix("PORT ").unwrap_or_else(|| panic!("bad handshake {line:?}")).parse().unwrap();
        ModelServer { child, port }
    }

    /// The model server's log so far (for assertion messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.scratch("server.log")).unwrap_or_default()
    }
}

/// Where `.ci/install-clis` puts the Claude Code CLI (or `$GIT_PARALLEL_CLAUDE`).
pub fn claude_path() -> PathBuf {
    match std::env::var_os("GIT_PARALLEL_CLAUDE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e/node_modules/.bin/claude"),
    }
}

/// The environment that runs the Claude CLI at `claude` offline against the scripted model
/// server on `port`.
pub fn claude_env(claude: &Path, port: u16) -> Vec<(String, String)> {
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

/// Pids of processes whose command line contains `marker` (a unique sleep of the test's).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker) {
            out.push(pid);
        }
    }
    out
}

/// Kill every process whose command line contains `marker`.
pub fn kill_all(marker: &str) {
    for p in processes_with(marker) {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
}
