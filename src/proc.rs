//! Every subprocess goes through here: git plumbing we do not do in-process, agents, setup and
//! verify commands. One place to set the environment, capture output and report failures.

use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::path::Path;

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn git_expr<I, S>(dir: &Path, args: I) -> duct::Expression
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    // Our commits must not start `git gc --auto` in the middle of a run: it packs refs while
    // other threads read them. The run does its maintenance once, at its end.
    let args: Vec<std::ffi::OsString> = NO_AUTO_GC
        .iter()
        .flat_map(|kv| ["-c".into(), kv.into()])
        .chain(args.into_iter().map(|a| a.as_ref().to_owned()))
        .collect();
    // Plumbing output must not depend on the user's locale or pager.
    duct::cmd("git", args)
        .dir(dir)
        .env("LC_ALL", "C")
        .env("GIT_PAGER", "cat")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
}

/// Settings that keep git from starting automatic maintenance (`gc --auto`, `maintenance run --auto`).
const NO_AUTO_GC: [&str; 2] = ["gc.auto=0", "maintenance.auto=false"];

/// The same settings as environment (`GIT_CONFIG_COUNT`, after any the caller already set), for
/// processes that run git themselves, such as agents committing their work.
pub fn no_auto_gc_env() -> Vec<(String, String)> {
    let first: usize = std::env::var("GIT_CONFIG_COUNT").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut env = Vec::new();
    for (i, kv) in NO_AUTO_GC.iter().enumerate() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        env.push((format!("GIT_CONFIG_KEY_{}", first + i), k.to_string()));
        env.push((format!("GIT_CONFIG_VALUE_{}", first + i), v.to_string()));
    }
    env.push(("GIT_CONFIG_COUNT".into(), (first + NO_AUTO_GC.len()).to_string()));
    env
}

/// Run git in `dir` and return its output whatever the exit status.
pub fn git_output<I, S>(dir: &Path, args: I) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_expr(git_expr(dir, args), "git")
}

/// Run git in `dir` with `input` on stdin, whatever the exit status.
pub fn git_output_stdin<I, S>(dir: &Path, args: I, input: &[u8]) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_expr(git_expr(dir, args).stdin_bytes(input.to_vec()), "git")
}

/// Run git in `dir`; fail with its stderr when it fails; return trimmed stdout.
pub fn git<I, S>(dir: &Path, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = git_output(dir, &args)?;
    if !out.ok() {
        anyhow::bail!(
            "git {} failed: {}",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            out.stderr_str().trim()
        );
    }
    Ok(out.stdout_str().trim_end().to_string())
}

/// Run a shell command line in `dir` (setup and verify commands), capturing its output.
pub fn shell(dir: &Path, command: &str, envs: &[(&str, &str)]) -> Result<Output> {
    let mut expr = duct::cmd("sh", ["-c", command]).dir(dir);
    for (k, v) in envs {
        expr = expr.env(k, v);
    }
    run_expr(expr, "sh")
}

fn run_expr(expr: duct::Expression, what: &str) -> Result<Output> {
    let out =
        expr.stdout_capture().stderr_capture().unchecked().run().with_context(|| format!("could not start {what}"))?;
    Ok(Output { status: out.status, stdout: out.stdout, stderr: out.stderr })
}

/// A long-running child in its own process group (agents), with its stdout piped to us.
pub struct Child {
    pub handle: duct::ReaderHandle,
    pub pid: u32,
}

/// Start `program args` in `dir`, in a new process group, stdout readable line by line and
/// stderr appended to `stderr_path`.
pub fn spawn_agent(
    program: &str,
    args: &[String],
    dir: &Path,
    envs: &[(String, String)],
    stderr_path: &Path,
    stdin: Option<&Path>,
) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let stderr_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .with_context(|| format!("cannot open {}", stderr_path.display()))?;
    let mut expr = duct::cmd(program, args)
        .dir(dir)
        .stderr_file(stderr_file)
        .unchecked()
        // Own process group, so a timeout or Ctrl-C can stop the agent and everything it started.
        .before_spawn(|cmd| {
            cmd.process_group(0);
            // If the orchestrator dies (kill -9), its agents go too; resume restarts them.
            #[cfg(target_os = "linux")]
            // SAFETY: prctl in the child between fork and exec only sets a flag of that child.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            Ok(())
        });
    expr = match stdin {
        Some(p) => expr.stdin_path(p),
        None => expr.stdin_null(),
    };
    for (k, v) in envs {
        expr = expr.env(k, v);
    }
    let handle = expr.reader().with_context(|| format!("could not start agent `{program}`"))?;
    let pid = handle.pids().first().copied().unwrap_or(0);
    Ok(Child { handle, pid })
}

/// Send `signal` to the whole process group led by `pid`.
pub fn signal_group(pid: u32, signal: i32) {
    if pid == 0 {
        return;
    }
    // SAFETY: kill(2) with a negative pid addresses a process group; no memory is involved.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// True when a process with this pid exists on this host.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Send `signal` to one process.
pub fn signal_pid(pid: u32, signal: i32) -> bool {
    // SAFETY: plain kill(2).
    pid != 0 && unsafe { libc::kill(pid as i32, signal) } == 0
}

/// Find `program` on PATH (or accept a path that exists).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}
