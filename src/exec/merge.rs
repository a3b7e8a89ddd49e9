//! In-memory merges with gix's tree merge (no working tree is touched, no subprocess).
//! Measured against `git merge-tree --write-tree` + `git commit-tree` (benches/merge.rs):
//! the same trees, about three times faster for 50 sequential merges.

use crate::repo::Repo;
use crate::store::objects;
use anyhow::{Context, Result};
use gix::ObjectId;

/// The outcome of merging two commits.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// The merged tree.
    Clean(ObjectId),
    /// Conflicting paths.
    Conflict { files: Vec<String> },
}

/// Resolve `rev` to a commit id; a bad revision is an error, never mistaken for a conflict.
pub fn commit_id(repo: &Repo, rev: &str) -> Result<ObjectId> {
    repo.resolve_commit(rev).with_context(|| format!("`{rev}` is not a commit"))
}

/// Merge `theirs` into `ours` in memory, resolving conflicts as git would.
pub fn merge_tree(repo: &Repo, ours: ObjectId, theirs: ObjectId) -> Result<Merge> {
    let options: gix::merge::commit::Options = repo.gix.tree_merge_options()?.into();
    let mut out = repo
        .gix
        .merge_commits(ours, theirs, Default::default(), options)
        .with_context(|| format!("cannot merge {theirs} into {ours}"))?;
    let how = gix::merge::tree::TreatAsUnresolved::git();
    if out.tree_merge.has_unresolved_conflicts(how) {
        let mut files: Vec<String> = out
            .tree_merge
            .conflicts
            .iter()
            .filter(|c| c.is_unresolved(how))
            .flat_map(|c| [c.ours.location().to_string(), c.theirs.location().to_string()])
            .filter(|f| !f.is_empty())
            .collect();
        files.sort();
        files.dedup();
        return Ok(Merge::Conflict { files });
    }
    Ok(Merge::Clean(out.tree_merge.tree.write().context("cannot write the merged tree")?.detach()))
}

/// Whether `a` is an ancestor of (or equal to) `b`.
pub fn is_ancestor(repo: &Repo, a: ObjectId, b: ObjectId) -> Result<bool> {
    if a == b {
        return Ok(true);
    }
    match repo.gix.merge_base(a, b) {
        Ok(base) => Ok(base.is_some_and(|b| b.detach() == a)),
        Err(_) => Ok(false),
    }
}

/// Merge `others` one by one onto `base`: fast-forward where possible, else a merge commit.
/// Returns the resulting commit, or the first conflict as (task, files).
pub fn merge_all(
    repo: &Repo,
    base: &str,
    others: &[(String, String)],
) -> Result<std::result::Result<String, (String, Vec<String>)>> {
    let mut cur = commit_id(repo, base)?;
    for (name, commit) in others {
        let commit = commit_id(repo, commit)?;
        if is_ancestor(repo, commit, cur)? {
            continue;
        }
        if is_ancestor(repo, cur, commit)? {
            cur = commit;
            continue;
        }
        match merge_tree(repo, cur, commit)? {
            Merge::Clean(tree) => {
                cur = objects::write_commit(repo, tree, &[cur, commit], &format!("Merge {name}\n"))?;
            }
            Merge::Conflict { files } => return Ok(Err((name.clone(), files))),
        }
    }
    Ok(Ok(cur.to_string()))
}
