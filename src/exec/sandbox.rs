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

/// Wrap `program args` so the whole filesystem is read-only except the `writable` paths;
/// the agent's temporary files go to `tmpdir` (inside a writable path) through `TMPDIR`.
/// No tmpfs over /tmp: that would hide checkouts and homes that live under /tmp, and make
/// writes there silently vanish instead of failing.
pub fn wrap(program: &str, args: &[String], writable: &[&Path], tmpdir: &Path) -> (String, Vec<String>) {
    let mut a: Vec<String> =
        ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"].iter().map(|s| s.to_string()).collect();
    for w in writable {
        let p = w.to_string_lossy().into_owned();
        a.extend(["--bind".into(), p.clone(), p]);
    }
    a.extend(["--setenv".into(), "TMPDIR".into(), tmpdir.to_string_lossy().into_owned()]);
    a.extend(["--die-with-parent".into(), "--".into(), program.into()]);
    a.extend(args.iter().cloned());
    ("bwrap".into(), a)
}
