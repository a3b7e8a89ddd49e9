//! A task's bookkeeping folder, git-parallel's own: `<git-dir>/parallel/tasks/<run>/<task>/`.
//!
//! It holds what we keep about a task while it runs (the prompt, the agent's stderr and live
//! transcript, the list of files `parallel.copy` brought in, the "prepared" marker, our own
//! index of the worktree and the git directory our own git uses on the result) and, in
//! `agent/`, the one part an agent may write: its private homes, temporary files and, under
//! `--sandbox`, its view of its git directory, branch and object store. Nothing outside
//! `agent/` is ever mounted writable into a sandbox; nothing inside it is ever read by us as
//! more than data (small files opened without following symbolic links).
//!
//! Files of ours are created fresh (`create_new`, never through a link left in the way) or
//! opened with `O_NOFOLLOW`; none is ever a hard link to a user's file.

use crate::repo::Repo;
use anyhow::{Context, Result};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The folders under the common git directory that hold every run's task folders.
pub fn runs_root(common: &Path) -> PathBuf {
    common.join("parallel").join("tasks")
}

/// One task's folder.
#[derive(Debug, Clone)]
pub struct TaskDir {
    pub root: PathBuf,
}

impl TaskDir {
    pub fn new(repo: &Repo, run: &str, task: &str) -> TaskDir {
        TaskDir { root: runs_root(&repo.common_dir).join(run).join(task) }
    }

    /// Create the folder (and `agent/`), refusing one whose path runs through a symbolic link.
    pub fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(self.agent()).with_context(|| format!("cannot create {}", self.root.display()))?;
        for p in [self.root.clone(), self.agent()] {
            let meta = std::fs::symlink_metadata(&p)?;
            if !meta.is_dir() {
                anyhow::bail!("{} is not a plain folder", p.display());
            }
        }
        Ok(())
    }

    /// A failed check's feedback for the agent's next round (`GIT_PARALLEL_FEEDBACK`).
    pub fn feedback(&self) -> PathBuf {
        self.root.join("feedback.md")
    }

    /// The prompt as a file (the `{prompt_file}` of custom agents).
    pub fn prompt(&self) -> PathBuf {
        self.root.join("prompt.md")
    }
    pub fn stderr(&self) -> PathBuf {
        self.root.join("stderr.log")
    }
    pub fn transcript(&self) -> PathBuf {
        self.root.join("transcript.jsonl")
    }
    /// Files `parallel.copy` brought into the worktree (NUL-separated).
    pub fn copied(&self) -> PathBuf {
        self.root.join("copied")
    }
    /// Present once the worktree was prepared (copies made, setup run).
    pub fn prepared(&self) -> PathBuf {
        self.root.join("prepared")
    }
    /// The worktree's own git directory, as it was when we made the worktree.
    pub fn admin_record(&self) -> PathBuf {
        self.root.join("admin")
    }
    /// The git directory our own git uses on the task's result.
    pub fn shadow(&self) -> PathBuf {
        self.root.join("git")
    }
    /// Our own index of the worktree.
    pub fn index(&self) -> PathBuf {
        self.root.join("index")
    }
    /// The part the agent may write.
    pub fn agent(&self) -> PathBuf {
        self.root.join("agent")
    }
    /// The agent's private state (homes, temporary files).
    pub fn agent_state(&self) -> PathBuf {
        self.agent().join("state")
    }

    /// Remember the worktree's git directory (read from its `.git` file once, before any agent
    /// ran there; afterwards that file is the agent's and never read again).
    pub fn record_admin(&self, admin: &Path) -> Result<()> {
        write_new(&self.admin_record(), admin.to_string_lossy().as_bytes())
    }

    /// The worktree's git directory as recorded.
    pub fn admin(&self) -> Result<PathBuf> {
        let bytes = read_small(&self.admin_record(), 4096)?
            .with_context(|| format!("{} holds no record of its worktree", self.root.display()))?;
        Ok(PathBuf::from(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// A new file at `path`, replacing whatever was there without following it (a symbolic link in
/// the way is removed, not written through).
fn create_fresh(path: &Path) -> Result<std::fs::File> {
    remove_entry(path)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Open the regular file at `path` to read it as data: never through a link, never waiting on
/// a FIFO or taking a terminal. Ok(None) when nothing is there; anything but a regular file is
/// an error.
fn open_regular(path: &Path) -> Result<Option<std::fs::File>> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    if !f.metadata()?.is_file() {
        anyhow::bail!("{} is not a regular file", path.display());
    }
    Ok(Some(f))
}

/// Write `bytes` to a new file at `path`, replacing whatever was there without following it
/// (a symbolic link in the way is removed, not written through).
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    std::io::Write::write_all(&mut create_fresh(path)?, bytes)?;
    Ok(())
}

/// Copy the regular file `from` to a new file `to` (what was at `to` is removed first), never
/// through a link at either end. The kernel copies (`copy_file_range`): an index of 50,000
/// files is 5 MB, which would otherwise pass through our memory once per task.
pub fn copy_new(from: &Path, to: &Path) -> Result<()> {
    let mut src = open_regular(from)?.with_context(|| format!("cannot read {}: it is not there", from.display()))?;
    let mut dst = create_fresh(to)?;
    std::io::copy(&mut src, &mut dst).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Open `path` for appending, creating it; never through a symbolic link.
pub fn open_append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// The content of a regular file of at most `max` bytes, read without following a link; None
/// when there is none. Anything else in its place (a link, a FIFO, a device, a folder, a file
/// too long) is an error, never followed or waited on.
pub fn read_small(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let Some(f) = open_regular(path)? else { return Ok(None) };
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        anyhow::bail!("{} is longer than {max} bytes", path.display());
    }
    Ok(Some(buf))
}

/// The first `n` bytes (or fewer) of the regular file at `path`, read as `read_small` reads:
/// never through a link, never waiting on a FIFO; None when there is none.
pub fn read_head(path: &Path, n: u64) -> Result<Option<Vec<u8>>> {
    let Some(f) = open_regular(path)? else { return Ok(None) };
    let mut buf = Vec::new();
    f.take(n).read_to_end(&mut buf)?;
    Ok(Some(buf))
}

/// `read_small` of `path` below `base` (a folder of ours), refusing a path whose folders below
/// `base` are links: the agent's part of the task folder is read as data, never followed.
pub fn read_small_in(base: &Path, path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let rel =
        path.strip_prefix(base).with_context(|| format!("{} is not inside {}", path.display(), base.display()))?;
    let mut cur = base.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => anyhow::bail!("{} is not a plain folder", cur.display()),
            Err(_) => return Ok(None),
        }
    }
    read_small(path, max)
}

/// The last `max` bytes of a regular file, read without following a link (an agent's stderr
/// may be gigabytes long: only its tail is ever kept).
pub fn read_tail(path: &Path, max: u64) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
    else {
        return Vec::new();
    };
    let Ok(meta) = f.metadata() else { return Vec::new() };
    if !meta.is_file() {
        return Vec::new();
    }
    let _ = f.seek(SeekFrom::Start(meta.len().saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    buf
}

/// Remove a file, a link or a folder at `path` (a link itself, never what it points to).
pub fn remove_entry(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

/// Make `dir` (below `base`, which is ours) a plain folder: any component below `base` that is
/// a link or a file is replaced by a folder. Used on the agent's part before each attempt,
/// while none of its processes runs, so nothing can change it between the check and the use.
pub fn plain_dir(base: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(base).with_context(|| format!("{} is not inside {}", dir.display(), base.display()))?;
    let mut cur = base.to_path_buf();
    for part in rel.components() {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&cur)?;
                std::fs::create_dir(&cur)?;
            }
            Err(_) => std::fs::create_dir(&cur)?,
        }
    }
    Ok(())
}

/// Remove a run's task folders (after its worktrees went).
pub fn remove_run(repo: &Repo, run: &str) {
    let _ = std::fs::remove_dir_all(runs_root(&repo.common_dir).join(run));
}

/// Remove one task's folder.
/// A finished task's folder down to its agent's private state (where its CLI keeps its
/// sessions), so that a conflict at integration can go back into the same conversation; the
/// run's end takes the rest (`remove_task`).
pub fn keep_agent_state(repo: &Repo, run: &str, task: &str) {
    let td = TaskDir::new(repo, run, task);
    for (dir, keep) in [(td.root.clone(), td.agent()), (td.agent(), td.agent_state())] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.path() != keep {
                let _ = remove_entry(&e.path());
            }
        }
    }
}

pub fn remove_task(repo: &Repo, run: &str, task: &str) {
    let _ = std::fs::remove_dir_all(TaskDir::new(repo, run, task).root);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_ours_are_never_written_or_read_through_links() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "mine").unwrap();
        let link = d.path().join("log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open_append(&link).is_err(), "appended through a link");
        assert!(read_small(&link, 100).is_err(), "read through a link");
        write_new(&link, b"ours").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "ours");
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    #[test]
    fn reads_below_a_base_refuse_linked_folders() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("t"), "secret").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), d.path().join("refs")).unwrap();
        assert!(read_small_in(d.path(), &d.path().join("refs/t"), 100).is_err());
        std::fs::remove_file(d.path().join("refs")).unwrap();
        std::fs::create_dir(d.path().join("refs")).unwrap();
        std::fs::write(d.path().join("refs/t"), "ours").unwrap();
        assert_eq!(read_small_in(d.path(), &d.path().join("refs/t"), 100).unwrap().unwrap(), b"ours");
    }

    #[test]
    fn a_fifo_is_refused_not_waited_on() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: mkfifo on a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read_small(&fifo, 100).is_err());
        assert!(read_tail(&fifo, 100).is_empty());
    }

    #[test]
    fn plain_dir_replaces_links_below_the_base() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let base = d.path().join("agent");
        std::fs::create_dir(&base).unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("home")).unwrap();
        plain_dir(&base, &base.join("home/.codex")).unwrap();
        assert!(std::fs::symlink_metadata(base.join("home")).unwrap().is_dir());
        assert!(base.join("home/.codex").is_dir());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
