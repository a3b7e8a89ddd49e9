//! Integration: merge the succeeded task branches, in dependency order, into one branch,
//! entirely in memory (`git merge-tree --write-tree`, `git commit-tree`), then move the target
//! ref once with compare-and-swap. Conflicting tasks are left out with guidance; a verify
//! command gates the result, with culprits found by bisection over the merged set.

pub mod resolve;

use crate::error::{usage, Error};
use crate::exec::merge::{self, Merge};
use crate::exec::orchestrator::Observer;
use crate::exec::worktree;
use crate::plan::Plan;
use crate::proc;
use crate::repo::Repo;
use crate::store::layout;
use crate::store::objects;
use crate::store::runs::{Event, Integrated, IntegrationConflict, RunLog, RunStatus, TaskStatus};
use anyhow::Result;
use std::collections::HashSet;
use std::time::Duration;

/// What integrating did (recorded in the run's log as an `integrated` event).
pub type Outcome = Integrated;

/// How integration names a task its verify bisection left out (followed by the command).
pub const VERIFY_CULPRIT: &str = "the verify command fails with it: ";

/// Tasks left out that `--resolve` can hand back to their agents: the conflicted ones, and
/// those verify's bisection named.
pub fn handed_back(o: &Outcome) -> Vec<String> {
    let culprits = o.dropped.iter().filter(|(_, why)| why.starts_with(VERIFY_CULPRIT)).map(|(t, _)| t.clone());
    o.conflicts.iter().map(|c| c.task.clone()).chain(culprits).collect()
}

/// A task's result to integrate.
#[derive(Debug, Clone)]
struct Result_ {
    task: String,
    commit: String,
    /// The commit the task started from: the base of its changes.
    started_from: Option<String>,
}

/// What building a chain of merges gives: the tip, tasks merged, conflicts, tasks left out.
type Built = (String, Vec<String>, Vec<IntegrationConflict>, Vec<(String, String)>);

/// Build merges of `tasks` (in order) onto `start`. Returns the tip, the tasks merged and the
/// conflicts met; a task whose dependency was left out is left out too. A stop asked for
/// between two merges gives `Stopped` (a run of thousands of tasks takes a while).
fn build(
    repo: &Repo,
    run: &str,
    start: &str,
    tasks: &[Result_],
    plan: &Plan,
    target: &str,
    stopper: &Stopper,
) -> Result<std::result::Result<Built, Stopped>> {
    let mut cur = merge::commit_id(repo, start)?;
    // Integrating again: what the target already holds is not merged twice.
    let base = merge::commit_id(repo, &plan.base)?;
    let already = if cur == base { Default::default() } else { merge::reachable_since(repo, cur, base)? };
    let mut merged = Vec::new();
    let mut conflicts = Vec::new();
    let mut dropped = Vec::new();
    let mut out: HashSet<String> = HashSet::new();
    for Result_ { task, commit, started_from } in tasks {
        if let Err(s) = stopper.check() {
            return Ok(Err(s));
        }
        if let Some(dep) = plan.task(task).and_then(|t| t.preds().find(|p| out.contains(*p))) {
            dropped.push((task.clone(), format!("depends on {dep}, which was left out")));
            out.insert(task.clone());
            continue;
        }
        let commit = merge::commit_id(repo, commit)?;
        if already.contains(&commit) {
            merged.push(task.clone());
            continue;
        }
        let result = match started_from.as_deref().and_then(|s| repo.resolve_commit(s)) {
            Some(from) => merge::merge_onto(repo, from, cur, commit)?,
            None => merge::merge_tree(repo, cur, commit)?,
        };
        match result {
            Merge::Clean(tree)
                if tree == repo.gix.find_commit(cur)?.tree_id()?.detach() && merge::is_ancestor(repo, commit, cur)? =>
            {
                // Nothing new: the task's work is already in (integrating again).
                merged.push(task.clone());
            }
            Merge::Clean(tree) if tree == repo.gix.find_commit(cur)?.tree_id()?.detach() => {
                // Another task made the same change: nothing new in the tree, but the merge is
                // still recorded, so the history says it was integrated (and `clean --merged`
                // finds its branch).
                let msg = format!(
                    "Merge task {task} of run {run} (its changes were already in)\n\n{}: {run}\n{}: {task}\n",
                    layout::TRAILER_RUN,
                    layout::TRAILER_TASK
                );
                cur = objects::write_commit(repo, tree, &[cur, commit], &msg)?;
                merged.push(task.clone());
            }
            Merge::Clean(tree) => {
                let msg = format!(
                    "Merge task {task} of run {run}\n\n{}: {run}\n{}: {task}\n",
                    layout::TRAILER_RUN,
                    layout::TRAILER_TASK
                );
                cur = objects::write_commit(repo, tree, &[cur, commit], &msg)?;
                merged.push(task.clone());
            }
            Merge::Conflict { files } => {
                let branch = layout::short(&layout::task_branch(run, task)).to_string();
                let guidance = format!(
                    "reproduce and resolve: git worktree add -b resolve/{run}/{task} ../resolve-{run}-{task} {target} && cd ../resolve-{run}-{task} && git merge {branch}",
                    target = layout::short(target),
                );
                conflicts.push(IntegrationConflict { task: task.clone(), files, guidance });
                out.insert(task.clone());
            }
        }
    }
    Ok(Ok((cur.to_string(), merged, conflicts, dropped)))
}

/// Integration was stopped (Ctrl-C, SIGTERM, `cancel`) before its end.
#[derive(Debug)]
struct Stopped;

/// What stops integration: the process's Ctrl-C/SIGTERM control (which `cancel` signals),
/// and how long a verify command has to end once asked.
struct Stopper {
    ctl: std::sync::Arc<crate::exec::task::Control>,
    grace: Duration,
    timeout: Duration,
}

impl Stopper {
    fn new(repo: &Repo) -> Stopper {
        let settings = crate::config::Settings::load(repo).ok();
        Stopper {
            ctl: crate::commands::run::interrupt_control(),
            grace: settings.as_ref().map(|s| s.kill_grace).unwrap_or(Duration::from_secs(5)),
            timeout: settings.as_ref().map(|s| s.verify_timeout).unwrap_or(Duration::from_secs(1800)),
        }
    }

    fn stop(&self) -> proc::Stop<'_> {
        proc::Stop { stop: &self.ctl.stop, kill: &self.ctl.kill, grace: self.grace }
    }

    /// Err(Stopped) once a stop was asked for.
    fn check(&self) -> std::result::Result<(), Stopped> {
        if self.stop().requested() {
            Err(Stopped)
        } else {
            Ok(())
        }
    }
}

/// Run `cmd` on `commit` in a temporary detached worktree; true when it passes. A stop asked
/// for while it runs ends its processes (SIGTERM, then SIGKILL after the grace period) and
/// gives `Stopped`; the worktree goes whatever happens.
fn verify(
    repo: &Repo,
    run_dir: &std::path::Path,
    commit: &str,
    cmd: &str,
    n: &mut usize,
    stopper: &Stopper,
) -> Result<std::result::Result<bool, Stopped>> {
    if let Err(s) = stopper.check() {
        return Ok(Err(s));
    }
    *n += 1;
    let path = run_dir.join(format!(".verify-{}-{n}", std::process::id()));
    std::fs::create_dir_all(run_dir)?;
    let p = path.to_string_lossy().into_owned();
    repo.git(["worktree", "add", "-q", "--detach", &p, commit])?;
    // A verify that hangs must not hold the run forever; its folder goes whatever happens.
    let out = proc::shell_stoppable(&path, cmd, &[], Some(stopper.timeout), Some(stopper.stop()));
    // Its processes have all ended by now (or a failure to remove it leaves it to `clean`).
    let _ = worktree::remove(repo, &path, true);
    let out = out?;
    if let Err(s) = stopper.check() {
        return Ok(Err(s));
    }
    Ok(Ok(out.ok()))
}

/// The branch `--into NAME` names, or a usage error: integration only ever moves a branch, so
/// `HEAD`, tags and other refs are refused, as are names git would not accept and short names
/// that are also a tag's.
pub fn target_branch(repo: &Repo, name: &str) -> Result<String> {
    let short = name.strip_prefix("refs/heads/").unwrap_or(name);
    if short == "HEAD" || short.starts_with('-') {
        return Err(crate::error::usage(format!("--into {name}: not a branch name")));
    }
    if name.starts_with("refs/") && !name.starts_with("refs/heads/") {
        return Err(Error::usage(format!("--into {name}: integration moves a branch, and {name} is not one"))
            .with_hint("name a branch, e.g. --into parallel-result")
            .into());
    }
    let full = format!("refs/heads/{short}");
    if !proc::git_output(&repo.workdir, ["check-ref-format", &full])?.ok() {
        return Err(crate::error::usage(format!("--into {name}: not a valid branch name")));
    }
    if !name.starts_with("refs/") && crate::store::objects::read_ref(repo, &format!("refs/tags/{short}"))?.is_some() {
        return Err(Error::usage(format!(
            "--into {name}: there is a tag of that name, so `{name}` would be ambiguous"
        ))
        .with_hint(format!("name the branch another way, or write refs/heads/{short}"))
        .into());
    }
    Ok(full)
}

/// Integrate the run's succeeded tasks. Records an `integrated` event.
pub fn integrate(
    log: &mut RunLog,
    plan: &Plan,
    into: Option<&str>,
    verify_cmd: Option<&str>,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    let repo = log.repo().clone();
    let run = log.id.clone();
    let target = match into {
        Some(b) => target_branch(&repo, b)?,
        None => layout::integration_branch(&run),
    };
    if let Some(at) = worktree::checked_out_at(&repo, &target)? {
        return Err(Error::usage(format!(
            "{} is checked out at {}; integration never moves a checked-out branch",
            layout::short(&target),
            at.display()
        ))
        .with_hint("integrate into another branch (--into), then `git merge` it where you work")
        .into());
    }
    let old = objects::read_ref(&repo, &target)?;
    let start = match old {
        Some(o) => o.to_string(),
        None => plan.base.clone(),
    };
    // Succeeded tasks with a result, in the plan's dependency order.
    let mut order: Vec<usize> = Vec::new();
    let preds = plan.pred_indices();
    let mut placed = vec![false; plan.tasks.len()];
    while order.len() < plan.tasks.len() {
        let before = order.len();
        for i in 0..plan.tasks.len() {
            if !placed[i] && preds[i].iter().all(|&p| placed[p]) {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            break;
        }
    }
    let tasks: Vec<Result_> = order
        .into_iter()
        .filter_map(|i| {
            let t = log.state().task(&plan.tasks[i].id)?;
            // An attempt's result is its task's, if it won: merged once, as the task.
            if t.id.contains('@') {
                return None;
            }
            let commit = t.commit.clone().filter(|_| t.status == TaskStatus::Succeeded)?;
            Some(Result_ { task: t.id.clone(), commit, started_from: t.start_commit.clone() })
        })
        .collect();
    let stopper = Stopper::new(&repo);
    match merge_and_verify(&repo, &run, &start, &tasks, plan, &target, verify_cmd, &stopper, obs)? {
        Ok((tip, merged, conflicts, dropped, verified)) => {
            finish(log, plan, &repo, &run, &target, old, tip, merged, conflicts, dropped, verified, &stopper, obs)
        }
        Err(Stopped) => interrupted(log, not_moved(&target, old), obs),
    }
}

/// What merging and verifying gives: the tip, tasks merged, conflicts, tasks left out, and
/// whether verify passed.
type Verified = (String, Vec<String>, Vec<IntegrationConflict>, Vec<(String, String)>, Option<bool>);

/// Merge `tasks` onto `start` and gate the result on `verify_cmd`, leaving out culprits found
/// by bisection; `Stopped` when a stop was asked for on the way.
#[allow(clippy::too_many_arguments)]
fn merge_and_verify(
    repo: &Repo,
    run: &str,
    start: &str,
    tasks: &[Result_],
    plan: &Plan,
    target: &str,
    verify_cmd: Option<&str>,
    stopper: &Stopper,
    obs: &mut dyn Observer,
) -> Result<std::result::Result<Verified, Stopped>> {
    // `?` for a stop: hands `Stopped` up as the (successful) answer.
    macro_rules! go {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(Stopped) => return Ok(Err(Stopped)),
            }
        };
    }
    let (mut tip, mut merged, conflicts, mut dropped) = go!(build(repo, run, start, tasks, plan, target, stopper)?);
    let mut verified = None;
    if let Some(cmd) = verify_cmd {
        let run_dir = worktree::run_dir(repo, None, run);
        let mut n = 0;
        if go!(verify(repo, &run_dir, &tip, cmd, &mut n, stopper)?) {
            verified = Some(true);
        } else if !go!(verify(repo, &run_dir, start, cmd, &mut n, stopper)?) {
            obs.note(&format!(
                "verify fails on the starting point {} too; no task is to blame",
                &start[..12.min(start.len())]
            ));
            verified = Some(false);
            tip = start.to_string();
            dropped.extend(
                merged.drain(..).map(|t| (t, "verify fails on the starting point; nothing integrated".to_string())),
            );
        } else {
            // Bisect: the shortest failing prefix of the merged set ends with a culprit.
            // Invariant: the empty prefix (start) passes and the whole candidate set fails.
            let mut candidates: Vec<Result_> = tasks.iter().filter(|r| merged.contains(&r.task)).cloned().collect();
            loop {
                let (mut lo, mut hi) = (0usize, candidates.len());
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    let (c, _, _, _) = go!(build(repo, run, start, &candidates[..mid], plan, target, stopper)?);
                    if go!(verify(repo, &run_dir, &c, cmd, &mut n, stopper)?) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                let culprit = candidates[hi - 1].task.clone();
                obs.note(&format!("verify: task {culprit} breaks `{cmd}`; leaving it out"));
                dropped.push((culprit.clone(), format!("{VERIFY_CULPRIT}{cmd}")));
                // Its dependents carry its changes: they go too.
                let deps = dependents(plan, &culprit);
                for r in candidates.iter().filter(|r| deps.contains(&r.task)) {
                    dropped.push((r.task.clone(), format!("depends on {culprit}, which fails verification")));
                }
                candidates.retain(|r| r.task != culprit && !deps.contains(&r.task));
                let (c, m, _, _) = go!(build(repo, run, start, &candidates, plan, target, stopper)?);
                if candidates.is_empty() || go!(verify(repo, &run_dir, &c, cmd, &mut n, stopper)?) {
                    tip = c;
                    merged = m;
                    verified = Some(true);
                    break;
                }
            }
        }
    }
    Ok(Ok((tip, merged, conflicts, dropped, verified)))
}

/// Move the target to `tip` (unless a stop came first) and record what integrating did.
#[allow(clippy::too_many_arguments)]
fn finish(
    log: &mut RunLog,
    plan: &Plan,
    repo: &Repo,
    run: &str,
    target: &str,
    old: Option<gix::ObjectId>,
    tip: String,
    merged: Vec<String>,
    conflicts: Vec<IntegrationConflict>,
    dropped: Vec<(String, String)>,
    verified: Option<bool>,
    stopper: &Stopper,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    let tip_id = gix::ObjectId::from_hex(tip.as_bytes()).map_err(|e| usage(format!("bad commit {tip}: {e}")))?;
    let commit = if Some(tip_id) != old && (old.is_some() || tip != plan.base || !merged.is_empty()) {
        // The last moment a stop keeps the target where it was.
        if stopper.check().is_err() {
            return interrupted(log, not_moved(target, old), obs);
        }
        crate::fault::point("mid-integration");
        objects::cas_update(repo, target, tip_id, old, &format!("git parallel integrate run {run}"))?;
        Some(tip.clone())
    } else {
        old.map(|o| o.to_string())
    };
    let outcome =
        Outcome { target: target.to_string(), commit, merged, conflicts, dropped, verified, interrupted: false };
    let ev = Event::Integrated(outcome.clone());
    log.append(ev.clone(), &[])?;
    obs.event(&ev, log.state());
    Ok(outcome)
}

/// Record an integration stopped before its end (`outcome.interrupted`: what it did so far,
/// the target where it was left), and, when this process is the run's orchestrator, the run's
/// end as interrupted (or cancelled): a resume integrates again. Returns the error that exits
/// with 130.
pub(crate) fn interrupted(log: &mut RunLog, outcome: Outcome, obs: &mut dyn Observer) -> Result<Outcome> {
    let target = layout::short(&outcome.target).to_string();
    let ev = Event::Integrated(outcome);
    log.append(ev.clone(), &[])?;
    obs.event(&ev, log.state());
    log.refresh()?;
    let st = log.state();
    let ours = st.status == RunStatus::Running && st.pid == std::process::id();
    let hint = if ours {
        let status = if st.cancel_requested { RunStatus::Cancelled } else { RunStatus::Interrupted };
        let ev = Event::Ended { status };
        log.append(ev.clone(), &[])?;
        obs.event(&ev, log.state());
        format!("resume it with: git parallel resume {}", log.id)
    } else {
        format!("integrate again with: git parallel integrate {}", log.id)
    };
    Err(Error::interrupted(format!("integration of run {} into {target} interrupted", log.id)).with_hint(hint).into())
}

/// The outcome of an integration stopped before it moved the target.
fn not_moved(target: &str, old: Option<gix::ObjectId>) -> Outcome {
    Outcome { target: target.to_string(), commit: old.map(|o| o.to_string()), interrupted: true, ..Default::default() }
}

/// Tasks that depend on `task`, directly or not.
fn dependents(plan: &Plan, task: &str) -> HashSet<String> {
    let mut out: HashSet<String> = HashSet::new();
    let mut frontier = vec![task.to_string()];
    while let Some(cur) = frontier.pop() {
        for t in &plan.tasks {
            if t.preds().any(|p| *p == cur) && out.insert(t.id.clone()) {
                frontier.push(t.id.clone());
            }
        }
    }
    out
}
