//! Writing objects and moving refs with compare-and-swap.

use crate::repo::Repo;
use anyhow::{Context, Result};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::Target;
use gix::ObjectId;
use std::collections::BTreeMap;

pub fn write_blob(repo: &Repo, bytes: &[u8]) -> Result<ObjectId> {
    Ok(repo.gix.write_blob(bytes).context("cannot write blob")?.detach())
}

/// The empty tree of this repository's hash kind.
pub fn empty_tree(repo: &Repo) -> ObjectId {
    ObjectId::empty_tree(repo.gix.object_hash())
}

/// Write a tree: start from `base` (or empty) and set each `path → blob` (nested paths allowed).
pub fn write_tree(repo: &Repo, base: Option<ObjectId>, files: &BTreeMap<String, ObjectId>) -> Result<ObjectId> {
    edit_tree(repo, base, files, &[])
}

/// Like [`write_tree`], also removing `remove` paths. Only the trees on the edited paths are
/// read and written; unchanged subtrees are shared with `base`.
pub fn edit_tree(
    repo: &Repo,
    base: Option<ObjectId>,
    files: &BTreeMap<String, ObjectId>,
    remove: &[&str],
) -> Result<ObjectId> {
    let base = base.unwrap_or_else(|| empty_tree(repo));
    if base == empty_tree(repo) && !repo.gix.has_object(base) {
        // The empty tree is not always stored; write it so the editor can start from it.
        repo.gix.write_object(gix::objs::Tree::empty())?;
    }
    let mut ed = repo.gix.edit_tree(base).context("cannot edit tree")?;
    for (path, id) in files {
        ed.upsert(path.as_str(), gix::object::tree::EntryKind::Blob, *id)?;
    }
    for path in remove {
        ed.remove(*path)?;
    }
    Ok(ed.write().context("cannot write tree")?.detach())
}

/// A file (or link, or submodule) that differs between two commits: its path and what it is
/// at the second (None: gone there).
pub type Changed = (Vec<u8>, Option<(gix::object::tree::EntryMode, ObjectId)>);

/// What differs between the trees of commits `from` and `to`, file by file, without renames:
/// a tree diff of the objects alone (no index read, whatever the repository's size).
pub fn tree_changes(repo: &gix::Repository, from: &str, to: &str) -> Result<Vec<Changed>> {
    use gix::diff::tree::recorder::Change;
    let tree = |c: &str| -> Result<gix::Tree<'_>> { Ok(repo.find_commit(ObjectId::from_hex(c.as_bytes())?)?.tree()?) };
    let (a, b) = (tree(from)?, tree(to)?);
    let mut rec = gix::diff::tree::Recorder::default();
    gix::diff::tree(
        gix::objs::TreeRefIter::from_bytes(&a.data, a.id.kind()),
        gix::objs::TreeRefIter::from_bytes(&b.data, b.id.kind()),
        gix::diff::tree::State::default(),
        &repo.objects,
        &mut rec,
    )
    .context("cannot compare trees")?;
    let mut out: Vec<Changed> = rec
        .records
        .into_iter()
        .filter_map(|c| match c {
            Change::Deletion { entry_mode, path, .. } if !entry_mode.is_tree() => Some((path.into(), None)),
            Change::Addition { entry_mode, oid, path, .. } | Change::Modification { entry_mode, oid, path, .. }
                if !entry_mode.is_tree() =>
            {
                Some((path.into(), Some((entry_mode, oid))))
            }
            // A file that became a folder: gone as a file (its new files come on their own).
            Change::Modification { previous_entry_mode, path, .. } if !previous_entry_mode.is_tree() => {
                Some((path.into(), None))
            }
            _ => None,
        })
        .collect();
    // A path both gone (as a folder) and added (as a file): the addition wins.
    out.sort_by(|x, y| x.0.cmp(&y.0).then(y.1.is_some().cmp(&x.1.is_some())));
    out.dedup_by(|later, first| later.0 == first.0);
    Ok(out)
}

/// Write a commit with our signature.
pub fn write_commit(repo: &Repo, tree: ObjectId, parents: &[ObjectId], message: &str) -> Result<ObjectId> {
    let sig = repo.signature();
    let commit = gix::objs::Commit {
        tree,
        parents: parents.iter().copied().collect(),
        author: sig.clone(),
        committer: sig,
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo.gix.write_object(&commit).context("cannot write commit")?.detach())
}

/// A compare-and-swap that lost: the ref was not at the expected value.
#[derive(Debug)]
pub struct Lost {
    pub name: String,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} was changed by someone else", self.name)
    }
}

impl std::error::Error for Lost {}

/// Whether refs are stored as a reftable, where gix would write the wrong format.
fn reftable(repo: &Repo) -> bool {
    repo.gix.config_snapshot().string("extensions.refStorage").is_some_and(|s| s == "reftable")
}

/// Point `name` at `new` if it is currently at `expected` (None: must not exist).
/// Returns `Err(Lost)` (downcastable) when someone else moved it first.
pub fn cas_update(repo: &Repo, name: &str, new: ObjectId, expected: Option<ObjectId>, reason: &str) -> Result<()> {
    if reftable(repo) {
        let zero = ObjectId::null(repo.gix.object_hash()).to_string();
        let old = expected.map(|e| e.to_string()).unwrap_or(zero);
        let out = crate::proc::git_output(&repo.workdir, ["update-ref", "-m", reason, name, &new.to_string(), &old])?;
        if !out.ok() {
            return Err(Lost { name: name.to_string() }.into());
        }
        return Ok(());
    }
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange { mode: RefLog::AndReference, force_create_reflog: false, message: reason.into() },
            expected: match expected {
                Some(e) => PreviousValue::MustExistAndMatch(Target::Object(e)),
                None => PreviousValue::MustNotExist,
            },
            new: Target::Object(new),
        },
        name: name.try_into().with_context(|| format!("bad ref name {name}"))?,
        deref: false,
    };
    let sig = repo.signature();
    let mut time_buf = Default::default();
    match repo.gix.edit_references_as(Some(edit), Some(sig.to_ref(&mut time_buf))) {
        Ok(_) => Ok(()),
        Err(e) => {
            if clear_stale_lock(repo, name, std::time::Duration::from_secs(5)) {
                return cas_update(repo, name, new, expected, reason);
            }
            // Distinguish a lost race from other failures by re-reading the ref.
            let now = read_ref(repo, name)?;
            if now != expected {
                Err(Lost { name: name.to_string() }.into())
            } else {
                Err(anyhow::Error::new(e).context(format!("cannot update {name}")))
            }
        }
    }
}

/// Remove `<name>.lock` when it is older than `min_age`: a process killed while updating the
/// ref left it, and git and gix would refuse the ref forever. Returns whether one was removed.
pub fn clear_stale_lock(repo: &Repo, name: &str, min_age: std::time::Duration) -> bool {
    let lock = repo.common_dir.join(format!("{name}.lock"));
    let old_enough = std::fs::metadata(&lock)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().unwrap_or_default() >= min_age)
        .unwrap_or(false);
    old_enough && std::fs::remove_file(&lock).is_ok()
}

/// Delete `name` if it is at `expected`.
pub fn delete_ref(repo: &Repo, name: &str, expected: ObjectId) -> Result<()> {
    crate::proc::git(&repo.workdir, ["update-ref", "-d", name, &expected.to_string()])?;
    Ok(())
}

/// Delete each `(name, expected)` in one `git update-ref --stdin` transaction (one process for
/// thousands of task branches); if it fails as a whole (one ref moved), one by one, so every
/// other ref still goes and the error names the one that did not.
pub fn delete_refs(repo: &Repo, refs: &[(String, ObjectId)]) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let input: String = refs.iter().map(|(n, id)| format!("delete {n} {id}\n")).collect();
    let out = crate::proc::git_output_stdin(&repo.workdir, ["update-ref", "--stdin"], input.as_bytes())?;
    if out.ok() {
        return Ok(());
    }
    let mut first_error = None;
    for (name, id) in refs {
        if let Err(e) = delete_ref(repo, name, *id) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// How often a ref read is tried before its error is reported: with backoff capped at 200 ms,
/// about 2.6 s, longer than a `pack-refs` takes on a busy machine.
const READ_TRIES: u32 = 20;

/// Run a ref read again when it fails: `git pack-refs` (alone or in `gc`, ours or the user's)
/// moves loose refs into packed-refs while we read, so a ref listed a moment ago can be gone
/// from its file and not yet visible in packed-refs. Reading again sees the new state.
fn with_retries<T>(what: impl Fn() -> String, mut read: impl FnMut() -> Result<T>) -> Result<T> {
    let mut delay = std::time::Duration::from_millis(2);
    for _ in 1..READ_TRIES {
        match read() {
            Ok(v) => return Ok(v),
            Err(_) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(200));
            }
        }
    }
    read().with_context(what)
}

/// The object a ref points to (peeled through symbolic refs), or None.
pub fn read_ref(repo: &Repo, name: &str) -> Result<Option<ObjectId>> {
    with_retries(
        || format!("cannot read ref {name}"),
        || match repo.gix.try_find_reference(name)? {
            Some(mut r) => Ok(Some(r.peel_to_id()?.detach())),
            None => Ok(None),
        },
    )
}

/// All refs under `prefix` as (full name, target id).
pub fn list_refs(repo: &Repo, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
    with_retries(
        || format!("cannot read refs under {prefix}"),
        || {
            let platform = repo.gix.references()?;
            let mut out = Vec::new();
            for r in platform.prefixed(prefix)? {
                let mut r = r.map_err(|e| anyhow::anyhow!("cannot read refs: {e}"))?;
                let name = r.name().as_bstr().to_string();
                if let Ok(id) = r.peel_to_id() {
                    out.push((name, id.detach()));
                }
            }
            Ok(out)
        },
    )
}

/// Refs under `prefix` except those under `skip` (a folder inside `prefix`), whose loose files
/// are never opened: the cost follows the refs kept, not the thousands of task branches a big
/// run leaves beside them.
pub fn list_refs_except(repo: &Repo, prefix: &str, skip: &str) -> Result<Vec<(String, ObjectId)>> {
    let dir = repo.common_dir.join(prefix);
    if reftable(repo) || !dir.is_dir() {
        return Ok(list_refs(repo, prefix)?.into_iter().filter(|(n, _)| !n.starts_with(skip)).collect());
    }
    with_retries(
        || format!("cannot read refs under {prefix}"),
        || {
            let mut out = BTreeMap::new();
            if let Some(packed) = repo.gix.refs.cached_packed_buffer()? {
                for r in packed.iter_prefixed(prefix.into())? {
                    let r = r?;
                    let name = r.name.as_bstr().to_string();
                    if !name.starts_with(skip) {
                        out.insert(name, ObjectId::from_hex(r.target)?);
                    }
                }
            }
            // Loose refs win over packed ones.
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type()?.is_dir() {
                    let sub = format!("{name}/");
                    if sub != skip {
                        out.extend(list_refs(repo, &sub)?);
                    }
                } else if !name.ends_with(".lock") {
                    if let Some(id) = read_ref(repo, &name)? {
                        out.insert(name, id);
                    }
                }
            }
            Ok(out.into_iter().collect())
        },
    )
}

/// Read a blob at `path` in the tree of `commit`.
pub fn read_path(repo: &Repo, commit: ObjectId, path: &str) -> Result<Option<Vec<u8>>> {
    let tree = repo.gix.find_commit(commit)?.tree()?;
    match tree.lookup_entry_by_path(path)? {
        Some(entry) => Ok(Some(entry.object()?.detach().data)),
        None => Ok(None),
    }
}

/// The smallest positive integer id not yet used under `prefix` (ids are short and typable).
pub fn next_numeric_id(repo: &Repo, prefix: &str) -> Result<u64> {
    let max = list_refs(repo, prefix)?
        .iter()
        .filter_map(|(n, _)| n.strip_prefix(prefix)?.split('/').next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok(max + 1)
}

/// What `git gc --auto` would have done after our commits, once, now that the run ended: our
/// git calls turn it off during the run (it packs refs under concurrent readers). Honours the
/// user's `gc.auto` (0: never) and `gc.autoDetach` (by default it goes on in the background).
pub fn auto_maintenance(repo: &Repo) -> Result<()> {
    let threshold = repo.gix.config_snapshot().integer("gc.auto").unwrap_or(6700);
    if threshold <= 0 {
        return Ok(());
    }
    let setting = format!("gc.auto={threshold}");
    let out = crate::proc::git_output(&repo.workdir, ["-c", setting.as_str(), "gc", "--auto", "--quiet"])?;
    if !out.ok() {
        anyhow::bail!("git gc --auto failed: {}", out.stderr_str().trim());
    }
    Ok(())
}
