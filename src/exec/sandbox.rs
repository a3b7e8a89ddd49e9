//! Optional sandbox for agents (bubblewrap): writes allowed only inside the task's worktree
//! and the repository's git directory.

use crate::error::Error;
use anyhow::Result;
use std::path::Path;

/// Fail clearly when `--sandbox` is asked for without bubblewrap.
pub fn check_available() -> Result<()> {
    if crate::proc::which("bwrap").is_none() {
        return Err(Error::usage("--sandbox needs bubblewrap (`bwrap`), which is not installed")
            .with_hint("install it (Debian: apt-get install bubblewrap) or run without --sandbox")
            .into());
    }
    Ok(())
}

/// What the agent may write inside the sandbox.
pub struct Writable<'a> {
    /// The task's worktree (its `.git` link stays read-only).
    pub worktree: &'a Path,
    /// The worktree's own git directory (`<common>/worktrees/<id>`: its HEAD, index, logs).
    pub private: &'a Path,
    /// The repository's common git directory: read-only except the object store and the
    /// run's own branch and reflog folders.
    pub common: &'a Path,
    pub run: &'a str,
}

/// Wrap `program args` so the whole filesystem is read-only except what `w` allows; the
/// agent's temporary files go to `tmpdir` (inside a writable path) through `TMPDIR`.
///
/// The common git directory stays read-only but for `objects/` and the folders of this run's
/// branches, so nothing the agent writes there runs later outside the sandbox (`config`,
/// `hooks/`, `info/attributes`, submodules' git directories), and the user's refs, HEAD and
/// index are out of its reach. The worktree's `.git` link is read-only too: pointed elsewhere,
/// it would make our own git commands after the agent read a git directory of its making.
/// No tmpfs over /tmp: that would hide checkouts and homes that live under /tmp, and make
/// writes there silently vanish instead of failing.
pub fn wrap(program: &str, args: &[String], w: &Writable, tmpdir: &Path) -> Result<(String, Vec<String>)> {
    let branches = w.common.join("refs/heads/parallel").join(w.run);
    let reflogs = w.common.join("logs/refs/heads/parallel").join(w.run);
    for d in [&branches, &reflogs] {
        std::fs::create_dir_all(d)?;
    }
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut a: Vec<String> =
        ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"].iter().map(|s| s.to_string()).collect();
    let mut bind = |flag: &str, p: &Path| a.extend([flag.to_string(), s(p), s(p)]);
    bind("--bind", w.worktree);
    bind("--ro-bind", &w.worktree.join(".git"));
    for p in [w.common.join("objects"), w.private.to_path_buf(), branches, reflogs] {
        bind("--bind", &p);
    }
    a.extend(["--setenv".into(), "TMPDIR".into(), s(tmpdir)]);
    a.extend(["--die-with-parent".into(), "--".into(), program.into()]);
    a.extend(args.iter().cloned());
    Ok(("bwrap".into(), a))
}
