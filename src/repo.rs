//! Opening the user's repository and the checks every command needs first.

use crate::error::usage;
use anyhow::{Context, Result};
use gix::ObjectId;
use std::path::{Path, PathBuf};

/// The repository we work on, opened once per command.
#[derive(Clone)]
pub struct Repo {
    pub gix: gix::Repository,
    /// Top of the main working tree.
    pub workdir: PathBuf,
    /// The common git directory (shared by all worktrees).
    pub common_dir: PathBuf,
}

impl Repo {
    /// Find the repository containing `start`; refuse bare repositories and unborn branches
    /// with a clear message.
    pub fn discover(start: &Path) -> Result<Repo> {
        forget_repository_env();
        let gix = match gix::discover(start) {
            Ok(r) => r,
            Err(_) => {
                // git itself may know it: a SHA-256 repository, which our object reader does
                // not read (it is built for SHA-1).
                if let Ok(format) = crate::proc::git(start, ["rev-parse", "--show-object-format"]) {
                    if format.trim() != "sha1" {
                        return Err(usage(format!(
                            "{}: {} repositories are not supported yet (git parallel reads SHA-1 repositories only)",
                            start.display(),
                            format.trim()
                        )));
                    }
                }
                return Err(usage(format!("not a git repository (or any parent up to the root): {}", start.display())));
            }
        };
        let Some(workdir) = gix.workdir().map(Path::to_path_buf) else {
            return Err(usage(format!(
                "{} is a bare repository; git parallel needs a working tree",
                gix.git_dir().display()
            )));
        };
        let workdir = workdir.canonicalize().unwrap_or(workdir);
        let common_dir = gix.common_dir().canonicalize().unwrap_or_else(|_| gix.common_dir().to_path_buf());
        Ok(Repo { gix, workdir, common_dir })
    }

    /// The commit HEAD points to; a clear error on a repository with no commits.
    pub fn head_commit(&self) -> Result<ObjectId> {
        let mut head = self.gix.head().context("cannot read HEAD")?;
        if head.is_unborn() {
            return Err(usage("the repository has no commits yet; commit something first"));
        }
        Ok(head.peel_to_commit().context("HEAD does not point to a commit")?.id)
    }

    /// The branch HEAD is on (`refs/heads/...`), or None when detached.
    pub fn head_branch(&self) -> Option<String> {
        self.gix.head_name().ok().flatten().map(|n| n.as_bstr().to_string())
    }

    /// Run git in the main working tree.
    pub fn git<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        crate::proc::git(&self.workdir, args)
    }

    /// Resolve a revision to a commit id, or None when it does not name one.
    pub fn resolve_commit(&self, rev: &str) -> Option<ObjectId> {
        let id = self.gix.rev_parse_single(rev).ok()?;
        let obj = id.object().ok()?.peel_to_kind(gix::object::Kind::Commit).ok()?;
        Some(obj.id)
    }

    /// The path of `p` relative to the working tree, or None when it lies outside it. Symlinks
    /// in its folders are resolved, not one in its last component: the caller decides whether
    /// to follow that one, and messages keep the name the user gave.
    pub fn relative(&self, p: &Path) -> Option<PathBuf> {
        let abs = normalize(&std::env::current_dir().ok()?.join(p));
        let abs = match (abs.parent(), abs.file_name()) {
            (Some(dir), Some(name)) => dir.canonicalize().map(|d| d.join(name)).unwrap_or(abs),
            _ => abs,
        };
        abs.strip_prefix(&self.workdir).ok().map(Path::to_path_buf)
    }

    /// The identity our commits are made with: the user's, or a fallback when none is set.
    pub fn signature(&self) -> gix::actor::Signature {
        let now = gix::date::Time::now_local_or_utc();
        let time =
            std::env::var("GIT_COMMITTER_DATE").ok().and_then(|d| gix::date::parse(&d, None).ok()).unwrap_or(now);
        let (name, email) = match self.gix.committer() {
            Some(Ok(sig)) => (sig.name.to_string(), sig.email.to_string()),
            _ => ("git-parallel".to_string(), "git-parallel@localhost".to_string()),
        };
        gix::actor::Signature { name: name.into(), email: email.into(), time }
    }
}

/// Drop the variables that point git at a repository (`GIT_DIR`, `GIT_NAMESPACE`, ...), set
/// when we are started from a hook: our git subprocesses never see them (`proc::scrubbed_env`),
/// and gix must not either, or it would read and write refs under `refs/namespaces/<ns>/` and
/// another index than our git does. The `git -c` configuration stays: it is ours to read.
/// Called first thing in a command, while the process has one thread.
fn forget_repository_env() {
    for k in crate::proc::scrubbed_env().filter(|k| !matches!(*k, "GIT_CONFIG_PARAMETERS" | "GIT_CONFIG_COUNT")) {
        if std::env::var_os(k).is_some() {
            std::env::remove_var(k);
        }
    }
}

/// Lexically remove `.` and `..` components.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
