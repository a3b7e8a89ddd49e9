//! `--sandbox`: the agent runs under bubblewrap, unprivileged, and can write only its worktree
//! and its own part of the task folder (`taskdir::TaskDir::agent`).
//!
//! What holds, by construction rather than by detection:
//! - A user namespace always, every capability dropped, no new privileges: root outside is an
//!   unprivileged id inside, and cannot remount, ptrace outside its tree or reach `/proc/1`
//!   (its own PID namespace and `/proc`).
//! - A new session: no controlling terminal, so no TIOCSTI into the user's shell and no taking
//!   of the terminal's foreground group.
//! - Private `/tmp`, `/dev/shm`, `/run`, IPC and a minimal `/dev`: host daemons' sockets there
//!   (tmux, ssh-agent, D-Bus, docker) are out of sight; an environment allowlist drops the
//!   variables that name them (`TMUX`, `SSH_AUTH_SOCK`, `DBUS_SESSION_BUS_ADDRESS`, `DISPLAY` …).
//! - The repository is read-only. The agent's git sees, in place of the worktree's own git
//!   directory and the run's branch folder, copies of ours in its own part of the task folder
//!   (`view_*`): its commits land there (objects in a private store), never in the user's
//!   refs, config, hooks, index or in another task's branch or the integration branch. We read
//!   its branch tip back as data (`read_tip`) and check it like any result.
//!
//! The network is shared with the host (agents need their model API): loopback services and
//! the hosts the machine reaches stay reachable.

use super::taskdir::{self, TaskDir};
use crate::error::Error;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Fail clearly when `--sandbox` is asked for without bubblewrap.
pub fn check_available() -> Result<()> {
    if crate::proc::which("bwrap").is_none() {
        return Err(Error::usage("--sandbox needs bubblewrap (`bwrap`), which is not installed")
            .with_hint("install it (Debian: apt-get install bubblewrap) or run without --sandbox")
            .into());
    }
    Ok(())
}

/// Variables an agent under the sandbox keeps from our environment (exact names, or prefixes
/// ending in `_`); everything else, sockets of host daemons included, is dropped.
const ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_",
    "TZ",
    "TERM",
    "NO_COLOR",
    "COLORTERM",
    "EDITOR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "ANTHROPIC_",
    "CLAUDE_",
    "OPENAI_",
    "CODEX_",
    "GEMINI_",
    "GOOGLE_",
    "AIDER_",
    "AWS_REGION",
    "IS_SANDBOX",
    "GIT_AUTHOR_",
    "GIT_COMMITTER_",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_PARALLEL_",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOFLAGS",
    "JAVA_HOME",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "NODE_PATH",
    "NVM_DIR",
];

/// Whether `name` passes the sandbox's environment allowlist, or the user's additions.
pub fn env_allowed(name: &str, more: &[String]) -> bool {
    let hit = |a: &str| if a.ends_with('_') { name.starts_with(a) } else { name == a };
    ENV_ALLOW.iter().any(|a| hit(a)) || more.iter().any(|a| hit(a))
}

/// Where, inside the task folder's agent part, the agent's git finds its view of the worktree's
/// git directory, of the run's branch folder and reflogs, and its private object store.
pub fn view_gitdir(td: &TaskDir) -> PathBuf {
    td.agent().join("git")
}
pub fn view_refs(td: &TaskDir) -> PathBuf {
    td.agent().join("refs")
}
pub fn view_reflogs(td: &TaskDir) -> PathBuf {
    td.agent().join("reflogs")
}
pub fn object_dir(td: &TaskDir) -> PathBuf {
    td.agent().join("objects")
}

/// Fresh views for an attempt: the worktree's git directory (HEAD on the task's branch, or
/// detached at `tip` when there is none; our index; the links back to the repository) and the
/// branch at `tip`. What an earlier attempt
/// left there is discarded; the private object store is kept (its objects are taken in at
/// the end).
pub fn seed_view(td: &TaskDir, admin: &Path, task: &str, branch: Option<&str>, tip: &str) -> Result<()> {
    for d in [view_gitdir(td), view_refs(td), view_reflogs(td)] {
        taskdir::remove_entry(&d)?;
        std::fs::create_dir(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    taskdir::plain_dir(&td.agent(), &object_dir(td))?;
    let g = view_gitdir(td);
    let head = match branch {
        Some(b) => format!("ref: {b}\n"),
        None => format!("{tip}\n"),
    };
    taskdir::write_new(&g.join("HEAD"), head.as_bytes())?;
    taskdir::write_new(&g.join("commondir"), b"../..\n")?;
    if let Some(gitdir) = taskdir::read_small(&admin.join("gitdir"), 4096)? {
        taskdir::write_new(&g.join("gitdir"), &gitdir)?;
    }
    if let Some(cone) = taskdir::read_small(&admin.join("info/sparse-checkout"), 1 << 20)? {
        std::fs::create_dir(g.join("info"))?;
        taskdir::write_new(&g.join("info/sparse-checkout"), &cone)?;
    }
    if let Some(index) = std::fs::read(td.index()).ok().or_else(|| std::fs::read(admin.join("index")).ok()) {
        taskdir::write_new(&g.join("index"), &index)?;
    }
    let file = view_refs(td).join(task);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    taskdir::write_new(&file, format!("{tip}\n").as_bytes())
}

/// The agent's branch tip as it left it in its view (a commit id, read as data), or why it
/// cannot be taken.
pub fn read_tip(td: &TaskDir, task: &str) -> std::result::Result<String, String> {
    let bytes = taskdir::read_small_in(&td.agent(), &view_refs(td).join(task), 1024)
        .map_err(|e| format!("its branch cannot be read: {e:#}"))?
        .ok_or_else(|| "it deleted its branch".to_string())?;
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!("its branch does not name a commit ({:?})", crate::ui::sanitize(&text[..text.len().min(60)])))
    }
}

/// The HEAD the agent left in its view of the worktree's git directory (read as data).
pub fn read_head(td: &TaskDir) -> Option<String> {
    let bytes = taskdir::read_small_in(&td.agent(), &view_gitdir(td).join("HEAD"), 1024).ok()??;
    Some(String::from_utf8_lossy(&bytes).trim().to_string())
}

/// What the sandbox needs to know of the task.
pub struct Layout<'a> {
    pub worktree: &'a Path,
    /// The worktree's own git directory (as recorded before the agent ran).
    pub admin: &'a Path,
    /// The main working tree.
    pub main: &'a Path,
    /// More paths to show read-only (`parallel.sandboxRead`).
    pub extra: &'a [PathBuf],
    /// More variables to keep (`parallel.sandboxEnv`: names, or prefixes ending in `_`).
    pub keep_env: &'a [String],
    pub common: &'a Path,
    pub task_dir: &'a TaskDir,
    pub run: &'a str,
    /// The agent's temporary folder (inside the agent part).
    pub tmpdir: &'a Path,
}

/// The namespaces, privileges and base mounts of every sandbox (the containment bench starts
/// bubblewrap with them too).
pub const ISOLATION: &[&str] = &[
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--cap-drop",
    "ALL",
    "--new-session",
    "--die-with-parent",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
];

/// Paths under these are hidden by the sandbox's private mounts; those we need are bound back.
pub const PRIVATE_MOUNTS: &[&str] = &["/tmp", "/run", "/dev/shm", "/var/tmp"];

fn hidden(p: &Path) -> bool {
    PRIVATE_MOUNTS.iter().any(|m| p.starts_with(m))
}

/// For a path under a private mount, the folder right under that mount holding it
/// (`/tmp/ci/target/e2e/node_modules/.bin` → `/tmp/ci`).
fn install_root(p: &Path) -> Option<PathBuf> {
    let m = PRIVATE_MOUNTS.iter().find(|m| p.starts_with(m))?;
    let first = p.strip_prefix(m).ok()?.components().next()?;
    Some(Path::new(m).join(first))
}

/// The install holding `p`: the folder above its `bin` (or `.bin`), else its own folder; never
/// a folder holding the home.
fn install_of(p: &Path, home: Option<&PathBuf>) -> Option<PathBuf> {
    let dir = p.parent()?;
    let named_bin = dir.file_name().is_some_and(|n| n == "bin" || n == ".bin");
    let top = if named_bin { dir.parent()? } else { dir };
    let holds_home = |d: &Path| home.is_some_and(|h| h.starts_with(d));
    [top, dir].into_iter().find(|d| !holds_home(d)).map(Path::to_path_buf)
}

/// The interpreter a script names on its first line (`#!/venv/bin/python`), where it has one.
/// The path may come from a check's output, which an agent controls: its target is read only
/// as a regular file (never a FIFO to wait on, nor a device).
fn interpreter(program: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(program).ok()?;
    let head = super::taskdir::read_head(&real, 256).ok()??;
    let line = head.strip_prefix(b"#!")?.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(line).ok()?.split_whitespace().next()?;
    Some(PathBuf::from(first)).filter(|p| p.is_absolute())
}

/// `program`, where its links lead, and the same for the interpreter it names: what running it
/// reads (a virtualenv's script names its python, a link into the interpreter's install).
fn program_paths(program: &Path) -> Vec<PathBuf> {
    let mut out = vec![program.to_path_buf()];
    out.extend(std::fs::canonicalize(program).ok());
    if let Some(i) = interpreter(program) {
        out.extend(std::fs::canonicalize(&i).ok());
        out.push(i);
    }
    out
}

/// The folders to show a `--sandbox` agent (`parallel.sandboxRead`) so that it can run
/// `program`, a path the sandbox hides: the install holding it and each path it needs (see
/// [`program_paths`]). Never a folder holding the home, which is never shown.
fn folders_to_show(program: &Path) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.parent().is_some());
    let hides = |p: &Path| hidden(p) || home.as_ref().is_some_and(|h| p.starts_with(h));
    let mut out: Vec<PathBuf> =
        program_paths(program).iter().filter(|p| hides(p)).filter_map(|p| install_of(p, home.as_ref())).collect();
    out.sort();
    out.dedup();
    out
}

/// The configuration commands that show `program` to the sandbox (see [`folders_to_show`]).
pub fn lines_to_show(program: &Path) -> Vec<String> {
    folders_to_show(program).iter().map(|d| format!("git config --add parallel.sandboxRead {}", d.display())).collect()
}

/// The folders a sandbox running `program` shows read-only though they are under a private
/// mount or the home: `places` (the main working tree, the run's worktrees, the repository,
/// our task folder), the program's install and PATH's, name resolution, and `extra`
/// (`parallel.sandboxRead`, relative to `main`).
fn shown(
    program: &str,
    places: &[&Path],
    extra: &[PathBuf],
    main: &Path,
    envs: &[(String, String)],
    home: Option<&PathBuf>,
) -> Vec<PathBuf> {
    let mut ro: Vec<PathBuf> = Vec::new();
    // What must stay visible though it lives under a private mount or the home: the main
    // working tree and the run's folder of worktrees (read-only, as everything else is), the
    // repository, our task folder, the program and PATH, name resolution.
    ro.extend(places.iter().map(|p| p.to_path_buf()));
    // A program installed under a private mount (a checkout in /tmp with its tools in
    // node_modules or a virtualenv) needs its whole install, links resolved: the folder right
    // under the mount that holds it is shown read-only.
    // Its interpreter too, where it is a script: a virtualenv's, or one made elsewhere and
    // copied, names a python the sandbox would otherwise hide.
    for p in program_paths(Path::new(program)) {
        ro.extend(p.parent().map(Path::to_path_buf));
        ro.extend(install_root(&p));
        if home.is_some_and(|h| p.starts_with(h)) {
            ro.extend(install_of(&p, home));
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        ro.extend(exe.parent().map(Path::to_path_buf));
    }
    let mut path_dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    path_dirs.extend(
        envs.iter().filter(|(k, _)| k == "PATH").flat_map(|(_, v)| std::env::split_paths(v).collect::<Vec<_>>()),
    );
    for d in path_dirs {
        match home.and_then(|h| d.strip_prefix(h).ok()) {
            // A tool installed in the home (~/.cargo/bin, ~/.pyenv/shims, ~/.local/bin) needs
            // the rest of its folder too.
            Some(rel) => {
                if let (Some(h), Some(first)) = (home, rel.components().next()) {
                    ro.push(h.join(first));
                }
            }
            None => {
                ro.extend(install_root(&d));
                ro.extend(std::fs::canonicalize(&d).ok().and_then(|c| install_root(&c)));
                ro.push(d);
            }
        }
    }
    if let Some(h) = home {
        for rel in [".gitconfig", ".config/git", ".cargo", ".rustup"] {
            ro.push(h.join(rel));
        }
    }
    if let Ok(resolv) = std::fs::canonicalize("/etc/resolv.conf") {
        ro.push(resolv);
    }
    ro.extend(extra.iter().map(|p| if p.is_relative() { main.join(p) } else { p.clone() }));
    ro.sort();
    ro.dedup();
    ro
}

/// Whether a sandbox hides `path` from a command it runs through the shell (a check or setup
/// line) in a run of the repository at `main`/`common`, `extra` shown too.
pub fn hides(path: &Path, main: &Path, common: &Path, extra: &[PathBuf]) -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_dir() && h.parent().is_some());
    let under_home = |p: &Path| home.as_ref().is_some_and(|h| p.starts_with(h));
    if !hidden(path) && !under_home(path) {
        return false;
    }
    let holds_home = |p: &Path| home.as_ref().is_some_and(|h| h.starts_with(p));
    let ro = shown("/bin/sh", &[main, common], extra, main, &[], home.as_ref());
    !ro.iter().any(|d| path.starts_with(d) && !holds_home(d))
}

/// The bubblewrap command line running `program args` under the sandbox, and the environment
/// it gets (the allowlisted part of ours, plus `envs`).
pub fn wrap(program: &str, args: &[String], l: &Layout, envs: &[(String, String)]) -> Result<(String, Vec<String>)> {
    let branches = l.common.join("refs/heads/parallel").join(l.run);
    let reflogs = l.common.join("logs/refs/heads/parallel").join(l.run);
    // Mount points must exist in the read-only repository.
    for d in [&branches, &reflogs] {
        std::fs::create_dir_all(d)?;
    }
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut a: Vec<String> = ISOLATION.iter().map(|s| s.to_string()).collect();
    // As root, the agent becomes an ordinary id inside (its files still belong to the user).
    // SAFETY: getuid has no arguments.
    if unsafe { libc::getuid() } == 0 {
        a.extend(["--uid", "1000", "--gid", "1000"].map(String::from));
    }
    for m in PRIVATE_MOUNTS {
        if Path::new(m).is_dir() {
            a.extend(["--tmpfs".to_string(), m.to_string()]);
        }
    }
    // The user's home is hidden (SSH keys, cloud and forge tokens live there): what tools need
    // of it comes back read-only below.
    let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_dir() && h.parent().is_some());
    if let Some(h) = &home {
        a.extend(["--tmpfs".to_string(), s(h)]);
    }
    let places = [Some(l.main), l.worktree.parent(), Some(l.common), Some(l.task_dir.root.as_path())];
    let ro = shown(program, &places.into_iter().flatten().collect::<Vec<_>>(), l.extra, l.main, envs, home.as_ref());
    let under_home = |p: &Path| home.as_ref().is_some_and(|h| p.starts_with(h));
    // Never a folder that holds the home: bound whole, it would show the home again.
    let holds_home = |p: &Path| home.as_ref().is_some_and(|h| h.starts_with(p));
    for p in ro.iter().filter(|p| (hidden(p) || under_home(p)) && !holds_home(p) && p.exists()) {
        a.extend(["--ro-bind".to_string(), s(p), s(p)]);
    }
    let mut bind = |flag: &str, from: &Path, to: &Path| a.extend([flag.to_string(), s(from), s(to)]);
    bind("--bind", l.worktree, l.worktree);
    bind("--ro-bind", &l.worktree.join(".git"), &l.worktree.join(".git"));
    bind("--bind", &l.task_dir.agent(), &l.task_dir.agent());
    // The agent's git sees its own copies in place of ours.
    bind("--bind", &view_gitdir(l.task_dir), l.admin);
    bind("--bind", &view_refs(l.task_dir), &branches);
    bind("--bind", &view_reflogs(l.task_dir), &reflogs);
    a.push("--clearenv".into());
    let mut set: Vec<(String, String)> = std::env::vars().filter(|(k, _)| env_allowed(k, l.keep_env)).collect();
    set.push(("TMPDIR".into(), s(l.tmpdir)));
    // Ours last: they win.
    set.retain(|(k, _)| !envs.iter().any(|(e, _)| e == k));
    set.extend(envs.iter().cloned());
    for (k, v) in set {
        a.extend(["--setenv".into(), k, v]);
    }
    a.extend(["--chdir".into(), s(l.worktree), "--".into(), program.into()]);
    a.extend(args.iter().cloned());
    Ok(("bwrap".into(), a))
}

/// The environment that sends a sandboxed agent's new objects to its private store, reading the
/// repository's as an alternate.
pub fn object_env(td: &TaskDir, common: &Path) -> Vec<(String, String)> {
    vec![
        ("GIT_OBJECT_DIRECTORY".into(), object_dir(td).to_string_lossy().into_owned()),
        ("GIT_ALTERNATE_OBJECT_DIRECTORIES".into(), common.join("objects").to_string_lossy().into_owned()),
    ]
}

/// Take a sandboxed agent's new objects into the repository: each loose object only once its
/// content is checked against its name (a forged object under a name the user's work will hash
/// to later would corrupt it), each pack through `git index-pack`, which names its objects
/// itself. The private store is emptied. Err with the reason when an object in it is forged or
/// unreadable: that one is left out, the rest taken in.
pub fn import_objects(repo: &crate::repo::Repo, td: &TaskDir) -> Result<std::result::Result<usize, String>> {
    let dir = object_dir(td);
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            taskdir::remove_entry(&dir)?;
            return Ok(Err("its object store is not a folder".into()));
        }
        Err(_) => return Ok(Ok(0)),
    }
    let target = repo.common_dir.join("objects");
    let store = gix::odb::loose::Store::at(&dir, gix::hash::Kind::Sha1);
    let mut buf = Vec::new();
    let mut verified = Vec::new();
    let mut refused = Vec::new();
    for id in store.iter() {
        let Ok(id) = id else { return Ok(Err("its object store could not be listed".into())) };
        let hex = id.to_hex().to_string();
        let (sub, file) = hex.split_at(2);
        // Read as data: a link in the store is refused, never followed.
        let plain = std::fs::symlink_metadata(dir.join(sub)).is_ok_and(|m| m.is_dir())
            && std::fs::symlink_metadata(dir.join(sub).join(file)).is_ok_and(|m| m.is_file());
        let good = plain
            && match store.try_find(&id, &mut buf) {
                Ok(Some(data)) => {
                    gix::objs::compute_hash(gix::hash::Kind::Sha1, data.kind, data.data).is_ok_and(|a| a == id)
                        && data.decode().is_ok()
                }
                _ => false,
            };
        if good {
            verified.push(id);
        } else {
            refused.push(hex);
        }
    }
    for id in &verified {
        let hex = id.to_hex().to_string();
        let (sub, file) = hex.split_at(2);
        let to = target.join(sub).join(file);
        if to.exists() {
            continue;
        }
        std::fs::create_dir_all(target.join(sub))?;
        let tmp = target.join(sub).join(format!("tmp_obj_{}_{file}", std::process::id()));
        std::fs::copy(dir.join(sub).join(file), &tmp)?;
        std::fs::rename(&tmp, &to)?;
    }
    let mut packs = 0;
    // A linked pack folder would have us take in packs from anywhere (and the agent read them
    // back from the repository): only a plain folder is read.
    let pack_dir = dir.join("pack");
    let plain_packs = std::fs::symlink_metadata(&pack_dir).map(|m| m.is_dir()).unwrap_or(true);
    if !plain_packs {
        taskdir::remove_entry(&dir)?;
        return Ok(Err("its pack folder is not a folder".into()));
    }
    if let Ok(entries) = std::fs::read_dir(&pack_dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "pack") && e.file_type().is_ok_and(|t| t.is_file()) {
                let bytes = std::fs::read(&path)?;
                let out = crate::proc::git_output_stdin(&repo.workdir, ["index-pack", "--stdin"], &bytes)?;
                if !out.ok() {
                    return Ok(Err(format!("a pack in its store is not valid: {}", out.stderr_str().trim())));
                }
                packs += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir)?;
    if !refused.is_empty() {
        // The rest went in, so the branch's own commits stay readable.
        return Ok(Err(format!(
            "{} object(s) in its store do not hold what their names say (forged or corrupt), and were left out: {}",
            refused.len(),
            refused.join(", ")
        )));
    }
    Ok(Ok(verified.len() + packs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_allowlist_drops_host_daemons() {
        for k in ["PATH", "HOME", "ANTHROPIC_API_KEY", "LC_ALL", "GIT_PARALLEL_TASK", "https_proxy"] {
            assert!(env_allowed(k, &[]), "{k}");
        }
        for k in ["TMUX", "SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "XDG_RUNTIME_DIR", "DOCKER_HOST"] {
            assert!(!env_allowed(k, &[]), "{k}");
        }
        assert!(env_allowed("MOCK_API_KEY", &["MOCK_API_KEY".into()]));
        assert!(env_allowed("AZURE_OPENAI_KEY", &["AZURE_".into()]));
    }

    #[test]
    fn tools_under_a_private_mount_keep_their_install() {
        assert_eq!(install_root(Path::new("/tmp/ci/target/e2e/node_modules/.bin")), Some(PathBuf::from("/tmp/ci")));
        assert_eq!(install_root(Path::new("/usr/bin")), None);
        assert_eq!(install_root(Path::new("/tmp")), None);
    }

    #[test]
    fn a_script_in_the_home_brings_its_interpreters_install() {
        // ~/venv/bin/tool names ~/venv/bin/python, a link into ~/lang/3.11/bin.
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let real = home.join("lang/3.11/bin/python3.11");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "").unwrap();
        let venv = home.join("venv/bin");
        std::fs::create_dir_all(&venv).unwrap();
        std::os::unix::fs::symlink(&real, venv.join("python")).unwrap();
        let tool = venv.join("tool");
        std::fs::write(&tool, format!("#!{} -I\nimport tool\n", venv.join("python").display())).unwrap();
        let ro = shown(tool.to_str().unwrap(), &[], &[], t.path(), &[], Some(&home));
        for want in [home.join("venv"), home.join("lang/3.11")] {
            assert!(ro.contains(&want), "{} is not shown: {ro:?}", want.display());
        }
        assert!(!ro.contains(&home), "{ro:?}");
        // No shebang, no interpreter; a relative one is not followed.
        assert_eq!(interpreter(&real), None);
        std::fs::write(&tool, "#!python\n").unwrap();
        assert_eq!(interpreter(&tool), None);
    }

    #[test]
    fn a_fifo_named_as_a_program_is_not_waited_on() {
        // A check's output names the program it missed, and an agent writes that output: a
        // FIFO it planted must not hold the worker that reads the program's first line.
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("bin/python");
        std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let f = fifo.clone();
        std::thread::spawn(move || tx.send(interpreter(&f)).unwrap());
        let got = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("reading a FIFO waited");
        assert_eq!(got, None);
    }
}
