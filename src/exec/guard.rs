//! What an agent may change in the repository: its own branch, nothing else. A snapshot of the
//! user's refs, the main worktree's HEAD and its index is taken before the agent starts and
//! compared after it ends; what the agent changed is put back where git still has it, and
//! named, so the task fails with the reason.
//!
//! Without `--sandbox` this is detection, so a change has to be told apart from the user's own
//! work going on beside the run: a branch moved forward by a commit of the user's is left
//! alone; a deleted ref, a moved tag, a branch rewound behind where it was or moved onto the
//! task's work, a switch of the main worktree's HEAD and changes staged in its index (not committed) are
//! attributed to the agent. Under `--sandbox` these paths are read-only to the agent.
//!
//! A task's own branch is checked the other way round: it may only have moved through its own
//! worktree (`moved_from_outside`), since other agents can reach it, sandbox or not.

use super::merge;
use crate::proc;
use crate::repo::Repo;
use crate::store::layout;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// Refs this process put back (name, from, to): a task running beside the one that moved a
/// ref must not take the restoration for a change of its own agent's.
static RESTORED: std::sync::Mutex<Vec<(String, String, String)>> = std::sync::Mutex::new(Vec::new());

fn restored_by_us(name: &str, from: &str, to: &str) -> bool {
    let list = RESTORED.lock().unwrap_or_else(|e| e.into_inner());
    list.iter().any(|(n, f, t)| n == name && f == from && t == to)
}

/// The state an agent must leave as it found it.
pub struct Snapshot {
    refs: BTreeMap<String, String>,
    head: String,
    /// The main index as it was (its entries, and its bytes to put back), in memory: a copy of
    /// ours, never a link to the user's file (through a hard link, whoever wrote it would write
    /// the user's index).
    index_copy: Option<std::sync::Arc<IndexCopy>>,
}

/// The main index as a snapshot saw it. Shared by every task that starts while the file stays
/// the same (same stamp): reading and decoding it is O(index), which a task must not pay when
/// nothing changed.
pub struct IndexCopy {
    stamp: Stamp,
    entries: Option<Vec<IndexEntry>>,
    bytes: Vec<u8>,
}

/// What tells a file's versions apart without reading it, as git's own racy-clean check does:
/// git replaces the index by renaming a new file over it (a new inode), and any write in place
/// moves its change time, which no unprivileged process can set back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The last index copy taken, for the next snapshot to reuse while the file is unchanged.
static LAST_INDEX: std::sync::Mutex<Option<(std::path::PathBuf, std::sync::Arc<IndexCopy>)>> =
    std::sync::Mutex::new(None);

/// A copy of the index at `path`, shared with the last snapshot's while the file is unchanged.
fn index_copy(path: &Path) -> Option<std::sync::Arc<IndexCopy>> {
    let before = Stamp::of(path)?;
    let mut last = LAST_INDEX.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, copy)) = last.as_ref() {
        if p == path && copy.stamp == before {
            return Some(copy.clone());
        }
    }
    let bytes = super::taskdir::read_small(path, 1 << 30).ok().flatten()?;
    let copy = std::sync::Arc::new(IndexCopy { stamp: before.clone(), entries: index_entries(path), bytes });
    // Kept for others only when the file did not change while it was read.
    if Stamp::of(path).as_ref() == Some(&before) {
        *last = Some((path.to_path_buf(), copy.clone()));
    }
    Some(copy)
}

/// Direct targets of every ref outside git-parallel's own namespaces (symbolic refs skipped).
fn user_refs(repo: &Repo) -> Result<BTreeMap<String, String>> {
    // Excluded by git itself, so a run of 10,000 task branches costs nothing here.
    let out = proc::git(
        &repo.workdir,
        [
            "for-each-ref",
            "--format=%(objectname) %(symref) %(refname)",
            "--exclude=refs/parallel/",
            &format!("--exclude={}", layout::BRANCHES),
            "--exclude=refs/remotes/",
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (oid, sym, name) = (parts.next()?, parts.next()?, parts.next()?);
            (sym.is_empty() && !layout::is_ours(name)).then(|| (name.to_string(), oid.to_string()))
        })
        .collect())
}

/// "branch main", "tag v1", or the full name of another ref.
fn kind(name: &str) -> String {
    if let Some(b) = name.strip_prefix("refs/heads/") {
        format!("branch {b}")
    } else if let Some(t) = name.strip_prefix("refs/tags/") {
        format!("tag {t}")
    } else {
        format!("ref {name}")
    }
}

fn main_head(repo: &Repo) -> String {
    std::fs::read_to_string(repo.common_dir.join("HEAD")).unwrap_or_default().trim().to_string()
}

/// Index entries that matter (path, stage, mode, blob); stat data is left out, since a plain
/// `git status` of the user's refreshes it.
type IndexEntry = (Vec<u8>, u32, u32, gix::ObjectId);

fn index_entries(path: &Path) -> Option<Vec<IndexEntry>> {
    let file = gix::index::File::at(path, gix::hash::Kind::Sha1, false, Default::default()).ok()?;
    Some(file.entries().iter().map(|e| (e.path(&file).to_vec(), e.stage_raw(), e.mode.bits(), e.id)).collect())
}

/// Take the snapshot.
pub fn snapshot(repo: &Repo) -> Result<Snapshot> {
    let path = repo.common_dir.join("index");
    Ok(Snapshot { refs: user_refs(repo)?, head: main_head(repo), index_copy: index_copy(&path) })
}

/// Compare with the snapshot after the agent ended; undo what it did where possible. Returns a
/// description of each change (empty: nothing was touched). `work` is the agent's result
/// commit and `start` the commit it started from.
pub fn check(repo: &Repo, snap: &Snapshot, start: &str, work: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let now = user_refs(repo)?;
    let start_id = merge::commit_id(repo, start)?;
    let work_id = merge::commit_id(repo, work).ok();
    let is_commit = |oid: &str| repo.resolve_commit(oid);
    // The agent's own commits reachable from `id`: it carries the task's work.
    let carries_work = |id: gix::ObjectId| -> Result<bool> {
        Ok(match work_id {
            Some(w) if w != start_id => {
                merge::is_ancestor(repo, id, w)? && !merge::is_ancestor(repo, id, start_id)?
                    || merge::is_ancestor(repo, w, id)? && !merge::is_ancestor(repo, w, start_id)?
            }
            _ => false,
        })
    };
    let mut undo = String::new();
    let mut restorations: Vec<(String, String, String)> = Vec::new();
    for (name, old) in &snap.refs {
        let short = kind(name);
        match now.get(name) {
            None => {
                found.push(format!("deleted {short} (restored at {})", &old[..12.min(old.len())]));
                undo.push_str(&format!("create {name} {old}\n"));
            }
            Some(new) if new != old && restored_by_us(name, old, new) => {}
            Some(new) if new != old => {
                let tag = name.starts_with("refs/tags/");
                let (old_c, new_c) = (is_commit(old), is_commit(new));
                let agents = tag
                    || match (old_c, new_c) {
                        (Some(o), Some(n)) => {
                            // Rewound behind where it was, or moved onto the task's work.
                            merge::is_ancestor(repo, n, o)? || carries_work(n)?
                        }
                        _ => true,
                    };
                if agents {
                    found.push(format!(
                        "moved {short} from {} to {} (restored)",
                        &old[..12],
                        &new[..12.min(new.len())]
                    ));
                    undo.push_str(&format!("update {name} {old} {new}\n"));
                    restorations.push((name.clone(), new.clone(), old.clone()));
                }
            }
            Some(_) => {}
        }
    }
    for (name, new) in &now {
        if snap.refs.contains_key(name) {
            continue;
        }
        // A replace ref swaps one object for another in every later read of git's: whatever it
        // points at, it is never an agent's to make.
        if name.starts_with("refs/replace/") {
            found.push(format!("created replace ref {name} (removed)"));
            undo.push_str(&format!("delete {name} {new}\n"));
            continue;
        }
        if let Some(n) = is_commit(new) {
            if carries_work(n)? {
                found.push(format!("created {} on its own work (removed)", kind(name)));
                undo.push_str(&format!("delete {name} {new}\n"));
            }
        }
    }
    if !undo.is_empty() {
        let out = proc::git_output_stdin(&repo.workdir, ["update-ref", "--stdin"], undo.as_bytes())?;
        if out.ok() {
            RESTORED.lock().unwrap_or_else(|e| e.into_inner()).extend(restorations);
        } else {
            found.push(format!("could not undo it: {}", out.stderr_str().trim()));
        }
    }
    let head = main_head(repo);
    if head != snap.head && !snap.head.is_empty() {
        let restored = match snap.head.strip_prefix("ref: ") {
            Some(target) => proc::git_output(&repo.workdir, ["symbolic-ref", "HEAD", target])?.ok(),
            None => proc::git_output(&repo.workdir, ["update-ref", "--no-deref", "HEAD", &snap.head])?.ok(),
        };
        found.push(format!(
            "switched the main worktree's HEAD from {} to {}{}",
            describe_head(&snap.head),
            describe_head(&head),
            if restored { " (HEAD restored; its files may still differ: check `git status` there)" } else { "" }
        ));
    }
    if let Some(snapped) = &snap.index_copy {
        let (entries, copy) = (&snapped.entries, &snapped.bytes);
        let index = repo.common_dir.join("index");
        // A commit of the user's leaves the index equal to HEAD: only staged changes count.
        if Stamp::of(&index).as_ref() != Some(&snapped.stamp)
            && *entries != index_entries(&index)
            && proc::git_output(&repo.workdir, ["diff-index", "--cached", "--quiet", "HEAD", "--"])?.status.code()
                == Some(1)
        {
            let lock = repo.common_dir.join("index.lock");
            // Put the old index back the way git writes one: through index.lock, created
            // fresh (a lock already there is git's, and means the index is in use).
            let restored = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
                .and_then(|mut f| std::io::Write::write_all(&mut f, copy))
                .is_ok()
                && std::fs::rename(&lock, &index).is_ok();
            found.push(format!(
                "changed the main worktree's index{}",
                if restored { " (restored)" } else { " (not restored: the index is locked)" }
            ));
        }
    }
    Ok(found)
}

fn describe_head(h: &str) -> String {
    match h.strip_prefix("ref: ") {
        Some(r) => layout::short(r).to_string(),
        None => format!("detached {}", &h[..12.min(h.len())]),
    }
}

/// Whether the task's branch moved without its own worktree moving it. Every change made through
/// the worktree (a commit, a reset, our own retries) is logged in the worktree's private HEAD
/// log, each entry starting where the last one ended; a process elsewhere (another task's agent,
/// which the sandbox cannot keep out of the run's branch folder) updating the branch leaves a
/// gap there, or a tip the log never reached. Such a branch may carry someone else's commits.
/// None when the log is continuous up to `tip`, or when there is no log to judge by (reflogs
/// turned off).
pub fn moved_from_outside(private: &Path, tip: &str) -> Option<String> {
    // Read as data: a link or a FIFO there is no log to judge by.
    let log = super::taskdir::read_small(&private.join("logs/HEAD"), 256 << 20).ok()??;
    let log = String::from_utf8_lossy(&log);
    let entries: Vec<(&str, &str)> = log
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((f.next()?, f.next()?))
        })
        .collect();
    let mut last: Option<&str> = None;
    for (old, new) in &entries {
        if let Some(prev) = last {
            if *old != prev {
                return Some(format!("from {} to {}", short(prev), short(old)));
            }
        }
        last = Some(new);
    }
    match last {
        Some(prev) if prev != tip => Some(format!("from {} to {}", short(prev), short(tip))),
        _ => None,
    }
}

fn short(oid: &str) -> &str {
    &oid[..12.min(oid.len())]
}
