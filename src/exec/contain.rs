//! Containment of one agent (or setup / verify command): nothing it starts outlives it.
//!
//! The orchestrator starts `git-parallel __contain -- PROGRAM ARGS…`, which first sets its own
//! `PR_SET_PDEATHSIG` to SIGKILL. This supervisor puts the command in a PID namespace of its own when the
//! kernel allows it (as root, or through an unprivileged user namespace mapping the caller's
//! own uid), with a mount namespace whose /proc shows the task's processes only: the
//! namespace's init is our process, and when init exits the kernel kills every
//! process left in the namespace — daemons, `setsid` and double forks included. Because init
//! also dies with the supervisor (its own death signal), a `kill -9` of the orchestrator takes
//! the whole task down with it.
//!
//! Where namespaces are refused, it falls back to a child subreaper: orphans of the command
//! are re-parented to the supervisor, which kills every descendant when the command ends or is
//! stopped; the orchestrator's death reaches it as SIGUSR1, so a `kill -9` of the orchestrator
//! kills them too. The command runs in a session of its own; a SIGKILL aimed at the supervisor
//! itself (the agent can see it here) leaves the task's processes to the orchestrator, a
//! subreaper too, which kills its children from other sessions (`proc::sweep_orphans`).
//!
//! Signals to the supervisor: SIGTERM, SIGINT or SIGHUP ask every process of the task to stop
//! (forwarded to all of them, not only the main one); SIGUSR1 kills them all at once. The
//! supervisor exits the way the command did (same exit code, or the same signal).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

/// The hidden subcommand that runs the supervisor.
pub const SUBCOMMAND: &str = "__contain";
/// Forces a mechanism (`subreaper` or `pidns`); tests use it to exercise the fallback.
pub const MODE_ENV: &str = "GIT_PARALLEL_CONTAIN";
/// Exported to the contained command: which mechanism holds it (`pidns` or `subreaper`).
pub const MECHANISM_ENV: &str = "GIT_PARALLEL_CONTAINMENT";
/// Given to the supervisor: the most processes the task may have at once, enforced by the
/// kernel (a fork beyond it fails) so that a fast fork bomb cannot outrun the orchestrator's
/// once-a-second count.
pub const MAX_PROCS_ENV: &str = "GIT_PARALLEL_MAX_PROCS";
/// Exported to the contained command: what holds that limit (`cgroup`, `rlimit` or `none`).
pub const LIMIT_ENV: &str = "GIT_PARALLEL_PROCESS_LIMIT";

/// Given to the supervisor: the pid of the orchestrator that started it, whose death (of the
/// starting thread) must kill it.
pub const PARENT_ENV: &str = "GIT_PARALLEL_SUPERVISOR_PARENT";

/// Signals the supervisor waits for; they stay blocked in it (and in the namespace's init) and
/// are unblocked in the command before exec.
fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGCHLD] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Entry point of `git-parallel __contain [--] PROGRAM ARGS…`; never returns.
pub fn main(args: &[OsString]) -> ! {
    let args: Vec<&OsString> = args.iter().skip_while(|a| a.as_bytes() == b"--").collect();
    if args.is_empty() {
        eprintln!("usage: git-parallel {SUBCOMMAND} -- PROGRAM [ARGS...]");
        std::process::exit(2);
    }
    let argv: Vec<CString> = match args.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("git-parallel {SUBCOMMAND}: an argument holds a NUL byte");
            std::process::exit(2);
        }
    };
    if let Some(parent) = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse::<libc::pid_t>().ok()) {
        std::env::remove_var(PARENT_ENV);
        // SAFETY: prctl and getppid on this process only.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // Gone before the death signal was armed: nothing would ever stop us.
            if libc::getppid() != parent {
                libc::_exit(137);
            }
        }
    }
    let set = signal_set();
    // SAFETY: this process is single-threaded (the subcommand is dispatched before anything
    // else starts), so fork is safe; every libc call below works on owned plain data.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        // A crash of the command re-raised here must not leave a core of the supervisor.
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: libc::RLIM_INFINITY };
        let _ = libc::setrlimit(libc::RLIMIT_CORE, &no_core);
    }
    let forced = std::env::var(MODE_ENV).unwrap_or_default();
    let max_procs = std::env::var(MAX_PROCS_ENV).ok().and_then(|v| v.parse::<u64>().ok());
    std::env::remove_var(MAX_PROCS_ENV);
    // A cgroup where one can be had (as root, or in a delegated cgroup v2 tree): joined before
    // anything forks, so every process of the task counts.
    let cgroup = max_procs.and_then(join_cgroup);
    let namespace = if forced == "subreaper" { None } else { enter_pid_namespace() };
    if let Some(view) = std::env::var_os(super::overlay::ENV) {
        std::env::remove_var(super::overlay::ENV);
        if let Err(why) = mount_view(&view.to_string_lossy(), namespace) {
            eprintln!("git-parallel: {why}");
            std::process::exit(125);
        }
    }
    let limit = match (max_procs, &cgroup, namespace) {
        (Some(_), Some(_), _) => "cgroup",
        // In a user namespace of the task's own, RLIMIT_NPROC counts the task's processes only
        // (the kernel counts per user per namespace); elsewhere it would count all of the
        // user's processes, so it is not used. It never holds for root.
        (Some(n), None, Some((_, true))) => {
            let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
            // SAFETY: setrlimit on this process with a plain struct.
            if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &lim) } == 0 {
                "rlimit"
            } else {
                "none"
            }
        }
        _ => "none",
    };
    std::env::set_var(LIMIT_ENV, limit);
    let status = if let Some((mount_proc, _)) = namespace {
        std::env::set_var(MECHANISM_ENV, "pidns");
        run_in_namespace(&argv, &set, mount_proc)
    } else {
        std::env::set_var(MECHANISM_ENV, "subreaper");
        run_as_subreaper(&argv, &set)
    };
    if let Some(c) = &cgroup {
        leave_cgroup(c);
    }
    exit_like(status)
}

/// Mount the task's overlay worktree (`exec::overlay`) in the mount namespace just entered,
/// and move into it: the working folder named before is the folder under the mount.
fn mount_view(text: &str, namespace: Option<(bool, bool)>) -> Result<(), String> {
    let view = super::overlay::View::decode(text).ok_or("the overlay worktree's description is malformed")?;
    let Some((true, userns)) = namespace else {
        return Err("an overlay worktree needs a mount namespace of its own, which this system refused".into());
    };
    let cwd = std::env::current_dir().map_err(|e| format!("no working folder: {e}"))?;
    view.mount(userns)?;
    std::env::set_current_dir(&cwd).map_err(|e| format!("cannot enter {}: {e}", cwd.display()))
}

/// Remove the cgroups of supervisors that are gone (one killed before it could remove its
/// own, or whose last processes were still exiting). Only empty ones go: rmdir refuses others.
pub fn sweep_cgroups() {
    let bases = [std::path::PathBuf::from("/sys/fs/cgroup/pids/git-parallel")];
    for base in bases {
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if e.file_type().is_ok_and(|t| t.is_dir()) && !crate::proc::pid_alive(pid) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// A cgroup of ours for this task: (its folder, the `cgroup.procs` of the one we left).
type Cgroup = (std::path::PathBuf, std::path::PathBuf);

/// Make a cgroup with `pids.max = limit` and move this process into it.
fn join_cgroup(limit: u64) -> Option<Cgroup> {
    use std::path::{Path, PathBuf};
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let v1 = Path::new("/sys/fs/cgroup/pids");
    let (base, original) = if v1.join("cgroup.procs").exists() {
        let path = own.lines().find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))?;
        (v1.join("git-parallel"), v1.join(path.trim_start_matches('/')).join("cgroup.procs"))
    } else {
        let root = Path::new("/sys/fs/cgroup");
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
        if !controllers.split_whitespace().any(|c| c == "pids") {
            return None;
        }
        let path = own.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string))?;
        let here = root.join(path.trim_start_matches('/'));
        // Beside our own cgroup (v2 keeps processes in leaves only).
        let parent = here.parent().map(PathBuf::from).unwrap_or_else(|| root.to_path_buf());
        let base = parent.join("git-parallel");
        std::fs::create_dir_all(&base).ok()?;
        let _ = std::fs::write(base.join("cgroup.subtree_control"), "+pids");
        (base, here.join("cgroup.procs"))
    };
    std::fs::create_dir_all(&base).ok()?;
    let dir = base.join(std::process::id().to_string());
    let _ = std::fs::create_dir(&dir);
    let joined = std::fs::write(dir.join("pids.max"), limit.to_string()).is_ok()
        && std::fs::write(dir.join("cgroup.procs"), "0").is_ok();
    if !joined {
        let _ = std::fs::remove_dir(&dir);
        return None;
    }
    Some((dir, original))
}

/// Go back to the cgroup we came from and remove ours (every other process of the task has
/// ended by now).
fn leave_cgroup((dir, original): &Cgroup) {
    let _ = std::fs::write(original, "0");
    // The task's last processes may still be on their way out; what is left then goes at the
    // orchestrator's sweep (`sweep_cgroups`).
    for _ in 0..200 {
        if std::fs::remove_dir(dir).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Move our future children into a new PID namespace, and ourselves into a mount namespace
/// of our own where the namespace's init can mount a /proc that shows its processes only.
/// Returns None when namespaces are refused, else whether /proc is to be mounted and whether a
/// user namespace was made.
fn enter_pid_namespace() -> Option<(bool, bool)> {
    // SAFETY: unshare, getuid and mount have no memory effects beyond their arguments.
    unsafe {
        let (uid, gid) = (libc::getuid(), libc::getgid());
        let tries = [
            (libc::CLONE_NEWPID | libc::CLONE_NEWNS, false),
            // Unprivileged: a user namespace mapping only our own ids grants the rights.
            (libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS, true),
            (libc::CLONE_NEWPID, false),
        ];
        for (flags, user) in tries {
            if libc::unshare(flags) != 0 {
                continue;
            }
            if user {
                let _ = std::fs::write("/proc/self/setgroups", "deny");
                let mapped = std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")).is_ok()
                    && std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")).is_ok();
                if !mapped {
                    return None;
                }
            }
            let own_mounts = flags & libc::CLONE_NEWNS != 0
                // Mounts made in here must not propagate back to the machine.
                && libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0;
            return Some((own_mounts, user));
        }
        None
    }
}

/// Fork and exec the command with a clean signal state. Returns the child's pid.
fn spawn_command(argv: &[CString], set: &libc::sigset_t) -> libc::pid_t {
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: single-threaded caller; the child only calls async-signal-safe functions
    // (setpgid, prctl, sigprocmask, execvp, write, _exit) on memory prepared before fork.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            // A session of its own, in every mode: no controlling terminal, so the agent can
            // neither push input into the user's shell (TIOCSTI) nor take the terminal's
            // foreground group (where Ctrl-C would go to it instead of to us). In subreaper
            // mode it is also how the orchestrator tells an agent's orphans from its own
            // children if this supervisor is killed.
            libc::setsid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::sigprocmask(libc::SIG_UNBLOCK, set, std::ptr::null_mut());
            libc::execvp(ptrs[0], ptrs.as_ptr());
            let msg = b"git-parallel: cannot start the agent command\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }
        pid
    }
}

/// Wait up to 200 ms for one of the blocked signals; None on timeout.
fn wait_signal(set: &libc::sigset_t) -> Option<i32> {
    let timeout = libc::timespec { tv_sec: 0, tv_nsec: 200_000_000 };
    // SAFETY: sigtimedwait fills only the siginfo we pass.
    let sig = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::sigtimedwait(set, &mut info, &timeout)
    };
    (sig > 0).then_some(sig)
}

/// Reap every exited child; returns the wait status of `watched` if it was among them.
fn reap(watched: libc::pid_t) -> Option<i32> {
    let mut found = None;
    loop {
        let mut st = 0;
        // SAFETY: waitpid writes only `st`.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == watched {
            found = Some(st);
        }
    }
}

/// PID namespace: fork the namespace's init, which runs the command and reports its wait
/// status back over a pipe before it exits (taking the namespace down with it).
fn run_in_namespace(argv: &[CString], set: &libc::sigset_t, mount_proc: bool) -> i32 {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into `fds`; fork is safe in this single-threaded process.
    let init = unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return run_as_subreaper(argv, set);
        }
        libc::fork()
    };
    if init < 0 {
        return run_as_subreaper(argv, set);
    }
    if init == 0 {
        // SAFETY: prctl/close/kill/write/_exit on plain values.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            libc::close(fds[0]);
            // Without its own /proc, a process here would read another's /proc/<pid> for
            // its own pid (tools such as Codex's sandbox do). Where the mount is refused, the
            // machine's /proc stays.
            if mount_proc {
                libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                );
            }
        }
        let cmd = spawn_command(argv, set);
        let mut stopping = false;
        let mut done: Option<i32> = None;
        // SAFETY (whole loop): kill, write and _exit on plain values.
        loop {
            match wait_signal(set) {
                // kill(-1) from a namespace's init reaches every other process in it.
                Some(s @ (libc::SIGTERM | libc::SIGINT | libc::SIGHUP)) => unsafe {
                    stopping = true;
                    libc::kill(-1, s);
                },
                Some(libc::SIGUSR1) => unsafe {
                    if let Some(st) = done {
                        libc::write(fds[1], (&st as *const i32).cast(), 4);
                    }
                    libc::kill(-1, libc::SIGKILL);
                    libc::_exit(137);
                },
                _ => {}
            }
            match done {
                None => done = reap(cmd),
                Some(_) => {
                    reap(0);
                }
            }
            // After a stop request the rest of the task gets the grace period to end by itself
            // (SIGUSR1 ends it); otherwise nothing outlives the command.
            if let Some(st) = done {
                if !stopping || no_children() {
                    unsafe {
                        libc::write(fds[1], (&st as *const i32).cast(), 4);
                        libc::kill(-1, libc::SIGKILL);
                        libc::_exit(0);
                    }
                }
            }
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe {
        libc::close(fds[1]);
    }
    loop {
        match wait_signal(set) {
            // SAFETY: plain kill(2) of our own child.
            Some(s @ (libc::SIGTERM | libc::SIGINT | libc::SIGHUP)) => unsafe {
                libc::kill(init, s);
            },
            Some(libc::SIGUSR1) => unsafe {
                libc::kill(init, libc::SIGKILL);
            },
            _ => {}
        }
        if reap(init).is_some() {
            break;
        }
    }
    let mut st: i32 = 0;
    // SAFETY: reads at most 4 bytes into a local integer.
    let n = unsafe { libc::read(fds[0], (&mut st as *mut i32).cast(), 4) };
    if n == 4 {
        st
    } else {
        // init was killed before the command ended: report the command as killed.
        libc::SIGKILL
    }
}

/// Fallback: a child subreaper adopting the command's orphans, killing them all at the end.
fn run_as_subreaper(argv: &[CString], set: &libc::sigset_t) -> i32 {
    // SAFETY: prctl on this process only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        // Without a namespace nothing kills orphans for us: when the orchestrator dies, we
        // must live long enough to kill them, so its death is a request (SIGUSR1), not SIGKILL.
        let parent = libc::getppid();
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR1);
        if libc::getppid() != parent {
            libc::raise(libc::SIGUSR1);
        }
    }
    let cmd = spawn_command(argv, set);
    if cmd < 0 {
        return 127 << 8;
    }
    let mut stopping = false;
    let mut done: Option<i32> = None;
    loop {
        match wait_signal(set) {
            Some(s @ (libc::SIGTERM | libc::SIGINT | libc::SIGHUP)) => {
                stopping = true;
                signal_descendants(s);
            }
            Some(libc::SIGUSR1) => {
                kill_descendants();
                return done.unwrap_or(libc::SIGKILL);
            }
            _ => {}
        }
        match done {
            None => done = reap(cmd),
            Some(_) => {
                reap(0);
            }
        }
        // As in the namespace: after a stop request, the grace period for the rest.
        if let Some(st) = done {
            if !stopping || descendants().is_empty() {
                kill_descendants();
                return st;
            }
        }
    }
}

/// Whether this process has no children left (reaping any that just ended).
fn no_children() -> bool {
    loop {
        let mut st = 0;
        // SAFETY: waitpid writes only `st`.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r > 0 {
            continue;
        }
        return r < 0;
    }
}

/// Our descendants, from /proc (children and adopted orphans, and theirs).
fn descendants() -> Vec<libc::pid_t> {
    let me = std::process::id() as libc::pid_t;
    let mut parent_of: Vec<(libc::pid_t, libc::pid_t)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<libc::pid_t>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name may hold spaces and parentheses: fields follow the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut out = vec![me];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.remove(0);
    out
}

fn signal_descendants(sig: i32) {
    for pid in descendants() {
        // SAFETY: plain kill(2).
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Kill every descendant until none is left (a process forking while we kill is caught on
/// the next pass: its children are re-parented to us).
fn kill_descendants() {
    for _ in 0..500 {
        let left = descendants();
        reap(0);
        if left.is_empty() {
            return;
        }
        for pid in left {
            // SAFETY: plain kill(2).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        reap(0);
    }
}

/// Exit with the command's code, or die of the command's signal.
fn exit_like(status: i32) -> ! {
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    let sig = if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { libc::SIGKILL };
    // SAFETY: restore the default action, unblock and raise on ourselves.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut one: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut one);
        libc::sigaddset(&mut one, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}
