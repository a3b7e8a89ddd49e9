//! In-memory merges with `git merge-tree --write-tree` (no working tree is touched).

use crate::proc;
use crate::repo::Repo;
use anyhow::{Context, Result};

/// The outcome of merging two commits.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// The merged tree.
    Clean(String),
    /// Conflicting paths and git's messages.
    Conflict { files: Vec<String>, messages: String },
}

/// Resolve `rev` to a commit id; a bad revision is an error (merge-tree would say "conflict").
pub fn commit_id(repo: &Repo, rev: &str) -> Result<String> {
    repo.git(["rev-parse", "--verify", "--quiet", "--end-of-options", &format!("{rev}^{{commit}}")])
        .with_context(|| format!("`{rev}` is not a commit"))
}

/// Merge `theirs` into `ours` in memory.
pub fn merge_tree(repo: &Repo, ours: &str, theirs: &str) -> Result<Merge> {
    let ours = commit_id(repo, ours)?;
    let theirs = commit_id(repo, theirs)?;
    let out = proc::git_output(
        &repo.workdir,
        ["merge-tree", "--write-tree", "--name-only", "-z", "--messages", &ours, &theirs],
    )?;
    let text = out.stdout_str();
    match out.status.code() {
        Some(0) => Ok(Merge::Clean(text.trim_end_matches(['\0', '\n']).to_string())),
        Some(1) if !text.is_empty() => {
            // -z: tree NUL, conflicted paths NUL-separated, an empty field, then messages.
            let mut parts = text.split('\0');
            parts.next();
            let mut files = Vec::new();
            for p in parts.by_ref() {
                if p.is_empty() {
                    break;
                }
                if !files.iter().any(|f| f == p) {
                    files.push(p.to_string());
                }
            }
            let messages: Vec<String> = parts.filter(|s| !s.is_empty()).map(str::to_string).collect();
            Ok(Merge::Conflict { files, messages: messages.join("\n") })
        }
        _ => anyhow::bail!("git merge-tree {ours} {theirs} failed: {}", out.stderr_str().trim()),
    }
}

/// Whether `a` is an ancestor of (or equal to) `b`.
pub fn is_ancestor(repo: &Repo, a: &str, b: &str) -> Result<bool> {
    let out = proc::git_output(&repo.workdir, ["merge-base", "--is-ancestor", a, b])?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => anyhow::bail!("git merge-base --is-ancestor {a} {b}: {}", out.stderr_str().trim()),
    }
}

/// Make a merge commit of `tree` with `parents`, built in memory.
pub fn commit_tree(repo: &Repo, tree: &str, parents: &[&str], message: &str) -> Result<String> {
    let mut args: Vec<String> = vec!["commit-tree".into(), tree.into()];
    for p in parents {
        args.push("-p".into());
        args.push(p.to_string());
    }
    let out = proc::git_output_stdin(&repo.workdir, &args, message.as_bytes())?;
    if !out.ok() {
        anyhow::bail!("git commit-tree failed: {}", out.stderr_str().trim());
    }
    Ok(out.stdout_str().trim().to_string())
}

/// Merge `others` one by one onto `base`: fast-forward where possible, else a merge commit.
/// Returns the resulting commit, or the first conflict as (commit, files).
pub fn merge_all(
    repo: &Repo,
    base: &str,
    others: &[(String, String)],
) -> Result<std::result::Result<String, (String, Vec<String>)>> {
    let mut cur = commit_id(repo, base)?;
    for (name, commit) in others {
        if is_ancestor(repo, commit, &cur)? {
            continue;
        }
        if is_ancestor(repo, &cur, commit)? {
            cur = commit.clone();
            continue;
        }
        match merge_tree(repo, &cur, commit)? {
            Merge::Clean(tree) => {
                cur = commit_tree(repo, &tree, &[&cur, commit], &format!("Merge {name}\n"))?;
            }
            Merge::Conflict { files, .. } => return Ok(Err((name.clone(), files))),
        }
    }
    Ok(Ok(cur))
}
