//! Task worktrees: outside the main working tree (default `<repo>.parallel/<run>/<task>`),
//! on branch `parallel/<run>/<task>`, locked while the task runs.

use crate::error::usage;
use crate::proc;
use crate::repo::Repo;
use crate::store::layout;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The folder holding a run's worktrees.
pub fn run_dir(repo: &Repo, configured: Option<&Path>, run: &str) -> PathBuf {
    let base = match configured {
        Some(d) if d.is_absolute() => d.to_path_buf(),
        Some(d) => repo.workdir.join(d),
        None => {
            // A submodule's sibling folder lies inside its superproject's working tree:
            // go beside the superproject instead.
            let top = proc::git(&repo.workdir, ["rev-parse", "--show-superproject-working-tree"])
                .ok()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from);
            let name =
                repo.workdir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "repo".into());
            match top {
                Some(top) => {
                    let top_name = top.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    top.parent().unwrap_or(&top).join(format!("{top_name}.parallel")).join(name)
                }
                None => repo.workdir.parent().unwrap_or(&repo.workdir).join(format!("{name}.parallel")),
            }
        }
    };
    crate::repo::normalize(&base).join(run)
}

/// Refuse a worktree folder inside the repository's working tree or its git directory: tools
/// that walk up for a workspace root would find the wrong one, `git status` would list the
/// worktrees, and git refuses worktrees inside its own directory.
pub fn check_dir(repo: &Repo, runs_dir: &Path) -> Result<()> {
    let dir = crate::repo::normalize(runs_dir);
    let inside = |root: &Path| {
        let root = crate::repo::normalize(root);
        dir.starts_with(&root) || root.canonicalize().is_ok_and(|r| dir.canonicalize().is_ok_and(|d| d.starts_with(r)))
    };
    if inside(&repo.common_dir) {
        return Err(usage(format!("the worktree folder {} is inside the git directory", dir.display())));
    }
    if inside(&repo.workdir) {
        return Err(crate::error::Error::usage(format!(
            "the worktree folder {} is inside the repository's working tree",
            dir.display()
        ))
        .with_hint("choose a folder outside it, e.g. --worktree-dir ../worktrees (the default is a sibling folder)")
        .into());
    }
    Ok(())
}

/// Worktrees git knows about: (path, branch ref or None, locked).
pub fn list(repo: &Repo) -> Result<Vec<(PathBuf, Option<String>, bool)>> {
    let out = repo.git(["worktree", "list", "--porcelain"])?;
    let mut v = Vec::new();
    let mut cur: Option<(PathBuf, Option<String>, bool)> = None;
    for line in out.lines().chain(std::iter::once("")) {
        if let Some(p) = line.strip_prefix("worktree ") {
            cur = Some((PathBuf::from(p), None, false));
        } else if let Some(b) = line.strip_prefix("branch ") {
            if let Some(c) = cur.as_mut() {
                c.1 = Some(b.to_string());
            }
        } else if line.starts_with("locked") {
            if let Some(c) = cur.as_mut() {
                c.2 = true;
            }
        } else if line.is_empty() {
            if let Some(c) = cur.take() {
                v.push(c);
            }
        }
    }
    Ok(v)
}

/// The worktree a branch is checked out in, if any.
pub fn checked_out_at(repo: &Repo, branch_ref: &str) -> Result<Option<PathBuf>> {
    Ok(list(repo)?.into_iter().find(|(_, b, _)| b.as_deref() == Some(branch_ref)).map(|(p, _, _)| p))
}

/// Create (or reuse, on resume) the worktree of a task at `path` on `branch`, starting at
/// `start`. Run ids are never reused while their branches exist, so an existing branch of
/// this run is this run's own work from an earlier life: it is reused, never reset.
/// Bytes a full checkout of `commit` writes: the sum of its files' sizes.
pub fn checkout_size(repo: &Repo, commit: &str) -> Result<u64> {
    let out = repo.git(["ls-tree", "-r", "-l", "--full-tree", commit])?;
    // `<mode> blob <oid> <size>\t<path>`; submodules (commit) and symlinks count as nothing.
    Ok(out.lines().filter_map(|l| l.split('\t').next()?.split_whitespace().nth(3)?.parse::<u64>().ok()).sum())
}

pub fn create(
    repo: &Repo,
    path: &Path,
    branch_ref: &str,
    start: &str,
    reason: &str,
    sparse: Option<&[String]>,
    overlay: bool,
) -> Result<()> {
    // An overlay worktree's files come from the run's shared layers (`exec::overlay`).
    let no_checkout = sparse.is_some() || overlay;
    let short = layout::short(branch_ref);
    let branch_exists = repo.gix.try_find_reference(branch_ref)?.is_some();
    if branch_exists {
        // Stale entries (a removed folder) block re-adding until pruned.
        repo.git(["worktree", "prune"])?;
        if let Some(at) = checked_out_at(repo, branch_ref)? {
            if at == path && path.exists() {
                let _ =
                    proc::git_output(&repo.workdir, ["worktree", "lock", "--reason", reason, &path.to_string_lossy()]);
                return Ok(());
            }
            return Err(usage(format!("branch {short} is already checked out at {}", at.display()))
                .context(format!("cannot create the worktree for {short}")));
        }
    }
    if path.exists() && std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(crate::error::Error::usage(format!(
            "worktree path {} already exists and is not empty",
            path.display()
        ))
        .with_hint("remove it, or choose another folder with --worktree-dir / parallel.worktreeDir")
        .into());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| usage(format!("cannot create worktree folder {}: {e}", parent.display())))?;
    }
    let p = path.to_string_lossy().into_owned();
    let mut args = vec!["worktree", "add", "--lock", "--reason", reason];
    if no_checkout {
        // Populate only the task's directories below, or nothing: the overlay shows the files.
        args.push("--no-checkout");
    }
    if branch_exists {
        // Resume: the branch already carries the task's work.
        args.extend([p.as_str(), short]);
    } else {
        args.extend(["-b", short, p.as_str(), start]);
    }
    let mut out = add_serialized(repo, &args)?;
    if !out.ok() && !branch_exists && !path.join(".git").exists() {
        // An add that failed on another process's worktree change may have created the branch
        // first: when it is ours, still at `start`, take it as is.
        let created = crate::store::objects::read_ref(repo, branch_ref)?.map(|id| id.to_string());
        if created.as_deref() == Some(start) {
            let _ = std::fs::remove_dir(path);
            let mut again = vec!["worktree", "add", "--lock", "--reason", reason];
            if no_checkout {
                again.push("--no-checkout");
            }
            again.extend([p.as_str(), short]);
            out = add_serialized(repo, &again)?;
        }
    }
    if !out.ok() {
        // git's progress lines come first and say nothing of what went wrong.
        let stderr = out.stderr_str();
        let said: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.starts_with("Preparing worktree") && !l.starts_with("HEAD is now at"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        return Err(usage(format!("cannot create worktree {p} on {short}: {}", said.join("; "))));
    }
    if let Some(dirs) = sparse.filter(|_| !overlay) {
        // The cone goes in the worktree's own git directory, and the setting on the command
        // line: `git sparse-checkout set` would turn on `extensions.worktreeConfig` in the
        // user's repository for good.
        let admin = admin_dir(repo, path)?;
        std::fs::create_dir_all(admin.join("info"))?;
        super::taskdir::write_new(&admin.join("info/sparse-checkout"), cone_patterns(dirs).as_bytes())?;
        let kv: Vec<String> = SPARSE_CONFIG.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args: Vec<&str> = kv.iter().flat_map(|x| ["-c", x.as_str()]).collect();
        args.extend(["checkout", "-q"]);
        proc::git(path, &args)?;
    }
    Ok(())
}

/// The settings that make git honour a worktree's sparse cone, given on the command line (or
/// to an agent as environment) instead of written to any configuration file.
pub const SPARSE_CONFIG: [(&str, &str); 2] = [("core.sparseCheckout", "true"), ("core.sparseCheckoutCone", "true")];

/// Cone-mode patterns for `dirs`: every file at the top, and each directory whole.
fn cone_patterns(dirs: &[String]) -> String {
    let mut lines = vec!["/*".to_string(), "!/*/".to_string()];
    let mut parents: Vec<String> = Vec::new();
    for d in dirs {
        let d = d.trim_matches('/');
        let parts: Vec<&str> = d.split('/').collect();
        for i in 1..parts.len() {
            let p = parts[..i].join("/");
            if !parents.contains(&p) {
                parents.push(p);
            }
        }
    }
    parents.sort();
    for p in &parents {
        lines.push(format!("/{p}/"));
        lines.push(format!("!/{p}/*/"));
    }
    for d in dirs {
        lines.push(format!("/{}/", d.trim_matches('/')));
    }
    lines.join("\n") + "\n"
}

/// Held while this process adds or removes a worktree: either changes `.git/worktrees/`, which
/// the other reads (a removal under an add made the add fail after it had created the branch).
static ADMIN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `git worktree add` reads every other worktree's admin folder; one being created at the same
/// moment makes it fail ("failed to read .git/worktrees/x/commondir"). Serialize ours, and retry
/// that failure when another process races us.
fn add_serialized(repo: &Repo, args: &[&str]) -> Result<proc::Output> {
    let mut attempt = 0;
    loop {
        let out = {
            let _guard = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
            proc::git_output(&repo.workdir, args)?
        };
        // A failure inside another worktree's admin folder is that race (it is being created or
        // pruned by another process); git cleans up its own half-made entry on failure.
        let racy =
            !out.ok() && out.stderr_str().contains("/worktrees/") && !out.stderr_str().contains("already exists");
        if !racy || attempt >= 5 {
            return Ok(out);
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
    }
}

/// The private git directory of a linked worktree (from its `.git` file, no subprocess).
pub fn git_dir(path: &Path) -> Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(path.join(".git"))
        .with_context(|| format!("{} is not a linked worktree", path.display()))?;
    let dir = text
        .trim()
        .strip_prefix("gitdir: ")
        .with_context(|| format!("{}/.git is not a gitdir link", path.display()))?;
    let dir = std::path::PathBuf::from(dir);
    Ok(if dir.is_absolute() { dir } else { path.join(dir) })
}

/// Unlock a worktree (after its task ended).
pub fn unlock(repo: &Repo, path: &Path) {
    let _ = proc::git_output(&repo.workdir, ["worktree", "unlock", &path.to_string_lossy()]);
}

/// Whether a task's worktree has uncommitted changes (tracked or untracked, not ignored),
/// asked of a git of ours (`exec::result`), never of the configuration an agent could have
/// left in the worktree.
pub fn is_dirty(repo: &Repo, path: &Path, branch: &str) -> Result<bool> {
    let (run, task) = layout::parse_task_branch(branch).context("not a task branch")?;
    let td = super::taskdir::TaskDir::new(repo, run, task);
    td.ensure()?;
    let admin = admin_dir(repo, path)?;
    let shadow = super::result::Shadow::open(repo, &td, path, Some(&admin))?
        .with_layers(super::overlay::TaskLayers::existing(path));
    let head = crate::store::objects::read_ref(repo, branch)?.context("the branch is gone")?;
    shadow.dirty(&head.to_string())
}

/// Remove a worktree (unlocking ours first; forced, a lock does not stop it).
pub fn remove(repo: &Repo, path: &Path, force: bool) -> Result<()> {
    let p = path.to_string_lossy().into_owned();
    let mut args = vec!["worktree", "remove"];
    if force {
        // Twice: also when locked, which saves an `unlock` process per task.
        args.extend(["--force", "--force"]);
    } else {
        unlock(repo, path);
    }
    args.push(&p);
    let out = {
        let _guard = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
        proc::git_output(&repo.workdir, &args)?
    };
    if !out.ok() {
        anyhow::bail!("cannot remove worktree {p}: {}", out.stderr_str().trim());
    }
    if let Some(l) = super::overlay::TaskLayers::existing(path) {
        l.remove()?;
    }
    Ok(())
}

/// Remove a finished task's worktree without a git process: its files, then its own git folder
/// `admin` (as recorded when it was made), which is what `git worktree remove --force --force`
/// does. `git worktree remove` reads every other worktree's folder first, so each removal cost
/// O(worktrees) and, falling behind on a 2,000-task run, made every `worktree add` slower too.
pub fn discard(path: &Path, admin: &Path) -> Result<()> {
    // Files first: a crash in between leaves a prunable entry (`git worktree prune`), never a
    // registered worktree without its git folder.
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    if let Some(l) = super::overlay::TaskLayers::existing(path) {
        l.remove()?;
    }
    let _guard = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
    if std::fs::symlink_metadata(admin).is_ok() {
        std::fs::remove_dir_all(admin).with_context(|| format!("cannot remove {}", admin.display()))?;
    }
    Ok(())
}

/// Copy untracked files matching `globs` from the main working tree into the worktree
/// (`.env` and the like, which git does not carry).
pub fn copy_untracked(repo: &Repo, globs: &[String], dest: &Path) -> Result<Vec<String>> {
    if globs.is_empty() {
        return Ok(Vec::new());
    }
    let mut set = globset::GlobSetBuilder::new();
    for g in globs {
        set.add(globset::Glob::new(g).map_err(|e| usage(format!("parallel.copy: bad glob `{g}`: {e}")))?);
    }
    let set = set.build()?;
    let listed = repo.git(["ls-files", "--others", "-z"])?;
    let ignored = repo.git(["ls-files", "--others", "--ignored", "--exclude-standard", "-z"])?;
    let mut copied = Vec::new();
    for rel in listed.split('\0').chain(ignored.split('\0')).filter(|s| !s.is_empty()) {
        if set.is_match(rel) && !copied.iter().any(|c: &String| c == rel) {
            // The worktree may hold an earlier attempt's work (a retry from the start, a resume):
            // a link an agent left at the path or on the way is replaced, never written through.
            let to = dest.join(rel);
            if let Some(parent) = to.parent() {
                super::taskdir::plain_dir(dest, parent)?;
            }
            let bytes = std::fs::read(repo.workdir.join(rel))
                .with_context(|| format!("cannot copy {rel} into the worktree"))?;
            super::taskdir::write_new(&to, &bytes)?;
            if let Ok(m) = std::fs::metadata(repo.workdir.join(rel)) {
                let _ = std::fs::set_permissions(&to, m.permissions());
            }
            copied.push(rel.to_string());
        }
    }
    Ok(copied)
}

/// The worktree's own git directory: the admin folder under `<common>/worktrees/` whose
/// `gitdir` names this worktree. Found from the repository's side, never from the worktree's
/// `.git` link, which the agent can rewrite.
pub fn admin_dir(repo: &Repo, worktree: &Path) -> Result<PathBuf> {
    let want = worktree.join(".git");
    let root = repo.common_dir.join("worktrees");
    for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let gitdir = super::taskdir::read_small(&e.path().join("gitdir"), 4096).ok().flatten().unwrap_or_default();
        let named = PathBuf::from(String::from_utf8_lossy(&gitdir).trim());
        if named == want || (named.canonicalize().ok().is_some_and(|n| Some(n) == want.canonicalize().ok())) {
            return Ok(e.path());
        }
    }
    anyhow::bail!("{} is not a worktree of this repository", worktree.display())
}
