//! `git parallel clean`: remove worktrees and task branches (merged ones, a run's, or all).

use super::Context;
use crate::cli::CleanArgs;
use crate::error::usage;
use crate::exec::worktree;
use crate::store::runs::{self, RunStatus};
use crate::store::{layout, objects};
use crate::ui;
use anyhow::Result;
use std::collections::{BTreeMap, HashSet};

pub fn run(ctx: &Context, args: CleanArgs) -> Result<i32> {
    if !args.merged && args.run.is_none() && !args.all {
        return Err(usage("say what to clean: --merged (work the current branch contains), --run RUN, or --all"));
    }
    let repo = &ctx.repo;
    let run_filter = match &args.run {
        Some(r) => Some(runs::resolve(repo, Some(r))?),
        None => None,
    };
    // Never clean up under a live run.
    let live: HashSet<String> = runs::summaries(repo)?
        .into_iter()
        .filter(|s| s.status == RunStatus::Running && s.orchestrator_alive())
        .map(|s| s.id)
        .collect();
    let merged: HashSet<String> = if args.merged {
        match repo.head_commit() {
            Ok(_) => repo
                .git(["for-each-ref", "--merged", "HEAD", "--format=%(refname)", layout::BRANCHES])?
                .lines()
                .map(str::to_string)
                .collect(),
            Err(_) => HashSet::new(),
        }
    } else {
        HashSet::new()
    };
    let branches: BTreeMap<String, gix::ObjectId> = objects::list_refs(repo, layout::BRANCHES)?.into_iter().collect();
    let worktrees: BTreeMap<String, std::path::PathBuf> = worktree::list(repo)?
        .into_iter()
        .filter_map(|(p, b, _)| Some((b?, p)))
        .filter(|(b, _)| b.starts_with(layout::BRANCHES))
        .collect();
    let current = repo.head_branch();
    let mut lines = Vec::new();
    let mut kept = 0;
    // Deleted together at the end: one process, not one per branch.
    let mut doomed: Vec<(String, gix::ObjectId)> = Vec::new();
    for (branch, tip) in &branches {
        let Some((run, _task)) = layout::parse_task_branch(branch) else { continue };
        if run_filter.as_deref().is_some_and(|r| r != run) {
            continue;
        }
        if args.merged && !merged.contains(branch) {
            continue;
        }
        if live.contains(run) {
            if !args.quiet {
                ui::note(&format!("kept {}: run {run} is still running", layout::short(branch)));
            }
            kept += 1;
            continue;
        }
        if current.as_deref() == Some(branch.as_str()) {
            ui::note(&format!("kept {}: it is the current branch", layout::short(branch)));
            kept += 1;
            continue;
        }
        if let Some(path) = worktrees.get(branch) {
            let dirty = path.exists() && worktree::is_dirty(repo, path, branch).unwrap_or(true);
            if dirty && !args.force {
                ui::note(&format!(
                    "kept {} and its worktree {}: uncommitted changes (use --force)",
                    layout::short(branch),
                    path.display()
                ));
                kept += 1;
                continue;
            }
            if args.dry_run {
                lines.push(format!("would remove worktree {}", path.display()));
            } else {
                worktree::remove(repo, path, true)?;
                if let Some((run, task)) = layout::parse_task_branch(branch) {
                    crate::exec::taskdir::remove_task(repo, run, task);
                }
                lines.push(format!("removed worktree {}", path.display()));
                // Drop the run's folder once it is empty (its shared overlay layers go once no
                // overlay worktree is left).
                if let Some(parent) = path.parent() {
                    crate::exec::overlay::remove_run_layers(parent);
                    let _ = std::fs::remove_dir(parent);
                }
            }
        }
        let short_tip = tip.to_string()[..12].to_string();
        if args.dry_run {
            lines.push(format!("would delete branch {} (was {short_tip})", layout::short(branch)));
        } else {
            doomed.push((branch.clone(), *tip));
            lines.push(format!("deleted branch {} (was {short_tip})", layout::short(branch)));
        }
    }
    // Detached worktrees a verify command left when it was interrupted (`.verify-<pid>-<n>` in
    // a run's folder): nothing of value in them, and no branch to find them by.
    if args.all || run_filter.is_some() {
        for (path, branch, _) in worktree::list(repo)? {
            let verify = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".verify-"));
            let run = path.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned());
            let Some(run) = run.filter(|_| verify && branch.is_none()) else { continue };
            if run_filter.as_deref().is_some_and(|r| r != run) || live.contains(run.as_str()) {
                continue;
            }
            if args.dry_run {
                lines.push(format!("would remove verify worktree {}", path.display()));
            } else {
                worktree::remove(repo, &path, true)?;
                lines.push(format!("removed verify worktree {}", path.display()));
            }
        }
    }
    if !args.dry_run {
        objects::delete_refs(repo, &doomed)?;
        repo.git(["worktree", "prune"])?;
    }
    // Shared base checkouts of overlay worktrees that no run folder uses any more.
    if args.all && !args.dry_run {
        let root = worktree::run_dir(repo, ctx.settings.worktree_dir.as_deref(), "x");
        for gone in crate::exec::overlay::sweep_bases(root.parent().unwrap_or(&root)) {
            lines.push(format!("removed shared base checkout {}", gone.display()));
        }
    }
    if !args.quiet {
        if lines.is_empty() {
            ui::note(if kept > 0 { "nothing removed" } else { "nothing to clean" });
        } else {
            ui::out(&(lines.join("\n") + "\n"))?;
        }
    }
    Ok(0)
}
