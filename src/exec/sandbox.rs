//! Optional sandbox for agents (bubblewrap): writes allowed only inside the task's worktree,
//! its private git directory (with a private object store) and its run's branch folders.

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
/// The common git directory stays read-only but for the folders of this run's branches, so nothing the agent writes there runs later outside the sandbox (`config`,
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
    // The object store stays read-only (a writable one would let the agent delete the user's
    // packs): the agent's git writes new objects to its private store (`object_env`), which
    // `import_objects` checks and takes in once it has ended.
    for p in [w.private.to_path_buf(), branches, reflogs] {
        bind("--bind", &p);
    }
    a.extend(["--setenv".into(), "TMPDIR".into(), s(tmpdir)]);
    a.extend(["--die-with-parent".into(), "--".into(), program.into()]);
    a.extend(args.iter().cloned());
    Ok(("bwrap".into(), a))
}

/// The private object store of a sandboxed agent, inside its worktree's git directory.
pub fn object_dir(private: &Path) -> std::path::PathBuf {
    private.join("parallel-objects")
}

/// The environment that sends a sandboxed agent's new objects to its private store, reading the
/// repository's as an alternate.
pub fn object_env(private: &Path, common: &Path) -> Result<Vec<(String, String)>> {
    let dir = object_dir(private);
    std::fs::create_dir_all(&dir)?;
    Ok(vec![
        ("GIT_OBJECT_DIRECTORY".into(), dir.to_string_lossy().into_owned()),
        ("GIT_ALTERNATE_OBJECT_DIRECTORIES".into(), common.join("objects").to_string_lossy().into_owned()),
    ])
}

/// Take a sandboxed agent's new objects into the repository: each loose object only once its
/// content is checked against its name (a forged object under a name the user's work will hash
/// to later would corrupt it), each pack through `git index-pack`, which names its objects
/// itself. The private store is emptied. Err with the reason when an object in it is forged or
/// unreadable: that one is left out, the rest taken in.
pub fn import_objects(repo: &crate::repo::Repo, private: &Path) -> Result<std::result::Result<usize, String>> {
    let dir = object_dir(private);
    if !dir.is_dir() {
        return Ok(Ok(0));
    }
    let target = repo.common_dir.join("objects");
    let store = gix::odb::loose::Store::at(&dir, gix::hash::Kind::Sha1);
    let mut buf = Vec::new();
    let mut verified = Vec::new();
    let mut refused = Vec::new();
    for id in store.iter() {
        let Ok(id) = id else { return Ok(Err("its object store could not be listed".into())) };
        let good = match store.try_find(&id, &mut buf) {
            Ok(Some(data)) => {
                gix::objs::compute_hash(gix::hash::Kind::Sha1, data.kind, data.data).is_ok_and(|a| a == id)
                    && data.decode().is_ok()
            }
            _ => false,
        };
        if good {
            verified.push(id);
        } else {
            refused.push(id.to_string());
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
    if let Ok(entries) = std::fs::read_dir(dir.join("pack")) {
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "pack") {
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
