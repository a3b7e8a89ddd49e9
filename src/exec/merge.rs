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
    let out = repo
        .gix
        .merge_commits(ours, theirs, Default::default(), options)
        .with_context(|| format!("cannot merge {theirs} into {ours}"))?;
    outcome(out.tree_merge)
}

fn tree_of(repo: &Repo, commit: ObjectId) -> Result<ObjectId> {
    Ok(repo.gix.find_commit(commit)?.tree_id()?.detach())
}

/// Apply the changes `ancestor → theirs` onto `ours`: a three-way merge with a known base.
/// A task's base is the commit it started from, so integrating it needs no merge-base search
/// through an ever longer integration history (what makes hundreds of merges quadratic).
pub fn merge_onto(repo: &Repo, ancestor: ObjectId, ours: ObjectId, theirs: ObjectId) -> Result<Merge> {
    let out = repo
        .gix
        .merge_trees(
            tree_of(repo, ancestor)?,
            tree_of(repo, ours)?,
            tree_of(repo, theirs)?,
            Default::default(),
            repo.gix.tree_merge_options()?,
        )
        .with_context(|| format!("cannot merge {theirs} onto {ours}"))?;
    outcome(out)
}

/// The merged tree, or the conflicting paths.
fn outcome(mut out: gix::merge::tree::Outcome<'_>) -> Result<Merge> {
    let how = gix::merge::tree::TreatAsUnresolved::git();
    if out.has_unresolved_conflicts(how) {
        let mut files: Vec<String> = out
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
    Ok(Merge::Clean(out.tree.write().context("cannot write the merged tree")?.detach()))
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

/// Every commit reachable from `tip` but not from `base` (one walk, for many ancestry checks).
pub fn reachable_since(repo: &Repo, tip: ObjectId, base: ObjectId) -> Result<std::collections::HashSet<ObjectId>> {
    let mut out = std::collections::HashSet::new();
    for info in repo.gix.rev_walk([tip]).with_hidden([base]).all()? {
        out.insert(info?.id);
    }
    Ok(out)
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
