//! Every subprocess goes through here: git plumbing we do not do in-process, agents, setup and
//! verify commands. One place to set the environment, capture output and report failures.

use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

/// Variables that point git at a repository: git's own list (`git rev-parse --local-env-vars`)
/// plus those hooks and receive-pack set. `git parallel` is often started from a hook,
/// `rebase -x` or `bisect run`, where they name the user's main repository and index.
const REPO_ENV: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_QUARANTINE_PATH",
    "GIT_INTERNAL_SUPER_PREFIX",
];

/// The forge tokens `publish` uses: never in an agent's environment (nor in a setup, check or
/// verify command's, which run agents' code), whoever started the run with them set.
pub const FORGE_TOKENS: &[&str] = &["GITHUB_TOKEN", "GH_TOKEN", "GITLAB_TOKEN", "GH_ENTERPRISE_TOKEN"];

/// Configuration passed down by `git -c` to us: ours to read, not the agents'.
const CONFIG_ENV: &[&str] = &["GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"];

/// Names of the variables removed from the environment of agents, setup and verify commands.
pub fn scrubbed_env() -> impl Iterator<Item = &'static str> {
    REPO_ENV.iter().chain(CONFIG_ENV).copied()
}

fn git_expr<I, S>(dir: &Path, args: I) -> duct::Expression
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    git_expr_with(dir, args, &[])
}

/// Run git in `dir` with `set` in its environment; fail with its stderr; trimmed stdout.
pub fn git_with<I, S>(dir: &Path, args: I, set: &[(&str, &Path)]) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run_expr(git_expr_with(dir, &args, set), "git")?;
    if !out.ok() {
        anyhow::bail!(
            "git {} failed: {}",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            out.stderr_str().trim()
        );
    }
    Ok(out.stdout_str().trim_end().to_string())
}

/// Run git in `dir`; its stdout as bytes (paths need not be UTF-8), or an error.
pub fn git_bytes<I, S>(dir: &Path, args: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = git_output(dir, args)?;
    if !out.ok() {
        anyhow::bail!("git failed: {}", out.stderr_str().trim());
    }
    Ok(out.stdout)
}

fn git_expr_with<I, S>(dir: &Path, args: I, set: &[(&str, &Path)]) -> duct::Expression
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
    let mut expr = duct::cmd(program("git"), args);
    // Set before the removals below: duct applies an outer expression's environment first.
    for (k, v) in set {
        expr = expr.env(k, v);
    }
    let mut expr = expr.dir(dir).env("LC_ALL", "C").env("GIT_PAGER", "cat").env("GIT_TERMINAL_PROMPT", "0");
    for k in REPO_ENV.iter().filter(|k| !set.iter().any(|(s, _)| s == *k)) {
        expr = expr.env_remove(k);
    }
    expr
}

/// Git for work on what an agent left (see `exec::result`): no system or global configuration,
/// no configuration passed down to us, no replace refs, no automatic maintenance, and no
/// variable pointing at a repository but those in `set` (the git directory, work tree, index
/// and object store the caller names).
///
/// `view`: an overlay worktree to see the work tree through (`exec::overlay::View::encode`);
/// git then runs under the containment supervisor, which mounts it.
pub fn hardened_git(args: &[String], dir: &Path, set: &[(&str, &Path)], view: Option<&str>) -> duct::Expression {
    let args: Vec<String> =
        NO_AUTO_GC.iter().flat_map(|kv| ["-c".to_string(), kv.to_string()]).chain(args.iter().cloned()).collect();
    let mut expr = match (view, supervisor_exe()) {
        (Some(v), Ok(exe)) => {
            let mut full = vec![crate::exec::contain::SUBCOMMAND.to_string(), "--".into(), "git".into()];
            full.extend(args);
            duct::cmd(exe, full).env(crate::exec::overlay::ENV, v)
        }
        // Without the supervisor the view cannot be mounted: git then finds no work tree
        // there and fails, which is reported.
        _ => duct::cmd(program("git"), args),
    };
    // duct applies an outer expression's environment before an inner one's: a variable set
    // here and removed in the same chain would be removed. Ours are never in the removed list.
    for (k, v) in set {
        expr = expr.env(k, v);
    }
    let mut expr = expr
        .dir(dir)
        .env("LC_ALL", "C")
        .env("GIT_PAGER", "cat")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ATTR_NOSYSTEM", "1")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_OPTIONAL_LOCKS", "0");
    for k in scrubbed_env().filter(|k| !set.iter().any(|(s, _)| s == k)) {
        expr = expr.env_remove(k);
    }
    expr
}

/// `name` as the path PATH gives it (looked up once per name), or `name` itself when PATH has
/// none. duct replaces a child's whole environment, PATH included, and std then starts a bare
/// name with fork + exec, whose cost grows with our memory (page tables copied, then torn
/// down): 20-50 ms a command for an orchestrator holding a 50,000-file plan. A path lets std
/// use posix_spawn (vfork), whose cost does not.
pub fn program(name: &str) -> PathBuf {
    static FOUND: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    if name.contains('/') {
        return PathBuf::from(name);
    }
    let mut found = FOUND.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    found.entry(name.to_string()).or_insert_with(|| which::which(name).unwrap_or_else(|_| PathBuf::from(name))).clone()
}

/// Run a prepared command, capturing its output whatever its exit status.
pub fn run_captured(expr: duct::Expression, what: &str) -> Result<Output> {
    run_expr(expr, what)
}

/// Settings that keep git from starting automatic maintenance (`gc --auto`, `maintenance run --auto`).
const NO_AUTO_GC: [&str; 2] = ["gc.auto=0", "maintenance.auto=false"];

/// Configuration for an agent as environment (`GIT_CONFIG_COUNT`, `_KEY_n`, `_VALUE_n`),
/// counted from 0: agents get no `GIT_CONFIG_*` of ours. Auto gc stays off in there too.
pub fn agent_config_env(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = NO_AUTO_GC
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    pairs.extend(extra.iter().cloned());
    let mut env = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), k.clone()));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), v.clone()));
    }
    env.push(("GIT_CONFIG_COUNT".into(), pairs.len().to_string()));
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
    git_with(dir, args, &[])
}

/// Run a shell command line in `dir` (setup and verify commands), contained like an agent
/// (nothing it starts outlives it) and stopped after `timeout`, capturing its output.
pub fn shell(dir: &Path, command: &str, envs: &[(&str, &str)], timeout: Option<Duration>) -> Result<Output> {
    shell_stoppable(dir, command, envs, timeout, None)
}

/// What stops a contained command before it ends: `stop` asks every process of it to end
/// (SIGTERM), and `grace` later, or as soon as `kill` is set, they are killed.
#[derive(Clone, Copy)]
pub struct Stop<'a> {
    pub stop: &'a std::sync::atomic::AtomicBool,
    pub kill: &'a std::sync::atomic::AtomicBool,
    pub grace: Duration,
}

impl Stop<'_> {
    /// Whether the command is to stop (or to be killed).
    pub fn requested(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.stop.load(Ordering::SeqCst) || self.kill.load(Ordering::SeqCst)
    }
}

/// `shell`, also stopped when `stop` says so (Ctrl-C, SIGTERM, `cancel`): the caller asks
/// `stop.requested()` afterwards to tell a stopped command from one that failed.
pub fn shell_stoppable(
    dir: &Path,
    command: &str,
    envs: &[(&str, &str)],
    timeout: Option<Duration>,
    stop: Option<Stop<'_>>,
) -> Result<Output> {
    let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    contained_stoppable("sh", &["-c".to_string(), command.to_string()], dir, &envs, timeout, stop)
}

/// `program args` contained as `shell_stoppable` runs a shell command (for a command that
/// must run wrapped, e.g. in the sandbox).
pub fn contained_stoppable(
    program: &str,
    args: &[String],
    dir: &Path,
    envs: &[(String, String)],
    timeout: Option<Duration>,
    stop: Option<Stop<'_>>,
) -> Result<Output> {
    use std::sync::atomic::Ordering;
    let mut child = Contained::spawn(program, args, dir, envs, Stdio::piped(), None)?;
    let stdout = drain(child.child.stdout.take());
    let stderr = drain(child.child.stderr.take());
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    // When the processes were asked to end, and how long they have before they are killed.
    let mut ending: Option<(Instant, Duration)> = None;
    let mut killed: Option<Instant> = None;
    let status = loop {
        if let Some(st) = child.try_wait() {
            break st;
        }
        if ending.is_none() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = true;
                child.terminate();
                ending = Some((Instant::now(), Duration::from_secs(5)));
            } else if let Some(s) = stop.filter(|s| s.requested()) {
                child.terminate();
                ending = Some((Instant::now(), s.grace));
            }
        }
        if let Some((since, grace)) = ending {
            let now_please = stop.is_some_and(|s| s.kill.load(Ordering::SeqCst));
            if killed.is_none() && (now_please || since.elapsed() >= grace) {
                killed = Some(Instant::now());
                child.kill();
            }
            // The supervisor does not answer a kill: end it, and its namespace with it.
            if killed.is_some_and(|k| k.elapsed() >= Duration::from_secs(2)) {
                child.kill_supervisor();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = stdout.finish();
    let mut stderr = stderr.finish();
    if timed_out {
        let secs = timeout.unwrap_or_default().as_secs_f64();
        stderr.extend_from_slice(format!("\n(stopped after the {secs:.0} s timeout)\n").as_bytes());
    } else if ending.is_some() {
        stderr.extend_from_slice(b"\n(stopped: interrupted)\n");
    }
    Ok(Output { status, stdout, stderr })
}

/// Run a tool (a cluster engine's client such as `sbatch`) with every repository-pointing git
/// variable removed, and return its output whatever the exit status.
pub fn tool(program: &str, args: &[String], dir: Option<&Path>) -> Result<Output> {
    let mut expr = duct::cmd(self::program(program), args).env("LC_ALL", "C");
    if let Some(d) = dir {
        expr = expr.dir(d);
    }
    for k in scrubbed_env() {
        expr = expr.env_remove(k);
    }
    run_expr(expr, program)
}

fn run_expr(expr: duct::Expression, what: &str) -> Result<Output> {
    let out =
        expr.stdout_capture().stderr_capture().unchecked().run().with_context(|| format!("could not start {what}"))?;
    Ok(Output { status: out.status, stdout: out.stdout, stderr: out.stderr })
}

/// A pipe read to its end on a thread, given up on (not waited for) after a deadline: a
/// process that escaped containment may keep the pipe open forever.
pub struct Drain {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
}

/// Collect everything from `pipe` on a thread.
pub fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> Drain {
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut p) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    Drain { rx }
}

impl Drain {
    /// What was read, waiting at most two seconds for the end of the pipe.
    pub fn finish(self) -> Vec<u8> {
        self.rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default()
    }
}

/// The binary that runs the containment supervisor: ourselves, or `git-parallel` on PATH when
/// the library runs inside another program (a benchmark); `GIT_PARALLEL_EXE` overrides.
pub fn supervisor_exe() -> Result<PathBuf> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        if let Some(p) = std::env::var_os("GIT_PARALLEL_EXE") {
            return Some(PathBuf::from(p));
        }
        let me = std::env::current_exe().ok()?;
        if me.file_name().is_some_and(|n| n == "git-parallel") {
            return Some(me);
        }
        which("git-parallel")
    })
    .clone()
    .ok_or_else(|| anyhow::anyhow!("cannot find the git-parallel binary to contain agents (set GIT_PARALLEL_EXE)"))
}

/// Run another git-parallel command (`args`) in `dir` to its end and return its output: the
/// dashboard's actions do exactly what the command line does.
pub fn ourselves(dir: &Path, args: &[&str]) -> Result<Output> {
    let mut expr = duct::cmd(supervisor_exe()?, args).dir(dir);
    for k in REPO_ENV {
        expr = expr.env_remove(k);
    }
    run_expr(expr, "git-parallel")
}

/// Start another git-parallel command (`args`) in `dir` in a session of its own, its output
/// going to `log`, not waited for: it outlives us (a retried run goes on after the dashboard
/// that started it stops). Its exit is reaped on a thread. Returns its pid.
pub fn ourselves_detached(dir: &Path, args: &[&str], log: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut cmd = Command::new(supervisor_exe()?);
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    for k in REPO_ENV {
        cmd.env_remove(k);
    }
    // SAFETY: setsid(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("could not start git-parallel")?;
    let pid = child.id();
    std::thread::spawn(move || child.wait());
    Ok(pid)
}

/// A contained process tree (see `exec::contain`): the supervisor is our child; everything
/// the command starts dies with it, and it dies with the thread that started it.
pub struct Contained {
    pub child: std::process::Child,
    pub pid: u32,
}

impl Contained {
    /// Start `program args` in `dir` under the containment supervisor, in a process group of
    /// its own (a Ctrl-C at the terminal reaches us, and we decide), with every
    /// repository-pointing git variable removed, stdin from `stdin` or /dev/null, stdout
    /// piped to us and stderr to `stderr` (a pipe, or a file).
    pub fn spawn(
        program: &str,
        args: &[String],
        dir: &Path,
        envs: &[(String, String)],
        stderr: Stdio,
        stdin: Option<&Path>,
    ) -> Result<Contained> {
        use std::os::unix::process::CommandExt;
        let exe = supervisor_exe()?;
        let mut cmd = Command::new(&exe);
        cmd.arg(crate::exec::contain::SUBCOMMAND).arg("--").arg(program).args(args).current_dir(dir);
        for k in scrubbed_env().chain(FORGE_TOKENS.iter().copied()) {
            cmd.env_remove(k);
        }
        cmd.envs(envs.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped()).stderr(stderr);
        match stdin {
            Some(p) => cmd.stdin(std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?),
            None => cmd.stdin(Stdio::null()),
        };
        cmd.process_group(0);
        // The supervisor dies with the thread that started it (kill -9 of the orchestrator
        // included), and takes the task down with it: it sets that up itself, first thing,
        // and gives up if we are already gone. Not in a pre_exec hook, which would make std
        // fork (copying our page tables) instead of posix_spawn.
        cmd.env(crate::exec::contain::PARENT_ENV, std::process::id().to_string());
        let child = cmd.spawn().with_context(|| format!("could not start `{program}` (through {})", exe.display()))?;
        let pid = child.id();
        Ok(Contained { child, pid })
    }

    /// The exit status, once the supervisor (and so the whole task) has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Ask every process of the task to stop (SIGTERM to each of them).
    pub fn terminate(&self) {
        signal_pid(self.pid, libc::SIGTERM);
    }

    /// Kill every process of the task now.
    pub fn kill(&self) {
        signal_pid(self.pid, libc::SIGUSR1);
    }

    /// Last resort when the supervisor itself does not answer: kill it (its namespace goes
    /// with it).
    pub fn kill_supervisor(&mut self) {
        let _ = self.child.kill();
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.kill();
            let until = Instant::now() + Duration::from_secs(2);
            while self.try_wait().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.kill_supervisor();
            let _ = self.child.wait();
        }
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

/// Make this process the subreaper of everything it starts, for as long as the returned guard
/// lives: where a supervisor in subreaper mode (no namespaces) is killed, the agent's
/// processes come to us instead of to init, and `sweep_orphans` ends them. Dropped, the guard
/// sweeps once more and stops adopting, so a daemon of ours started later (`git gc --auto` in
/// the background) goes to init as it would without us.
pub fn adopt_orphans() -> Adopting {
    // SAFETY: prctl on this process only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
    Adopting
}

/// See `adopt_orphans`.
pub struct Adopting;

impl Drop for Adopting {
    fn drop(&mut self) {
        sweep_orphans();
        crate::exec::contain::sweep_cgroups();
        // SAFETY: prctl on this process only.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0);
        }
    }
}

/// Kill (and reap) children of ours that are not in our session: none we start leaves it, but
/// every agent runs in a session of its own, so such a child is an agent's process adopted
/// after its supervisor died. Returns how many were found.
pub fn sweep_orphans() -> usize {
    // SAFETY: getpid/getsid have no arguments that matter.
    let (me, session) = unsafe { (libc::getpid(), libc::getsid(0)) };
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let mut found = 0;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state ppid pgrp session …`; comm may hold spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(sid)) =
            (f.get(1).and_then(|v| v.parse::<i32>().ok()), f.get(3).and_then(|v| v.parse::<i32>().ok()))
        else {
            continue;
        };
        if ppid == me && sid != session {
            found += 1;
            // SAFETY: signalling and reaping a child of ours that no handle of ours waits for.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(pid, &mut st, libc::WNOHANG);
            }
        }
    }
    found
}
