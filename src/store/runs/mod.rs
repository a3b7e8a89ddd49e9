//! Run state as an event log: `refs/parallel/runs/<run>` → a chain of commits, one per event.
//!
//! Each commit's message carries the event (JSON after a summary line); its tree carries the
//! state after replaying every event so far, split so that an event rewrites only what it
//! changed: a small summary for `status`, one blob per task under a fanned-out folder, and the
//! transcripts beside them (layout: [`SUMMARY`] and below). Appends are compare-and-swap on the
//! ref: a lost race (another process appended, e.g. `cancel`) re-reads the tip and re-applies
//! our event on top, never overwriting theirs.
//!
//! Here: loading runs back (one, all, summaries, history); the format, replay, the writer and
//! the tree layout are submodules.

use super::{layout, objects};
use crate::error::usage;
use crate::prompt::TaskType;
use crate::repo::Repo;
use anyhow::Result;
use gix::ObjectId;

mod events;
mod log;
mod state;
mod tree;

pub use events::*;
pub use log::*;
pub use state::*;
use tree::*;

fn no_run(repo: &Repo, id: &str) -> anyhow::Error {
    let ids = list_ids(repo).unwrap_or_default();
    usage(format!(
        "no run `{id}`{}",
        if ids.is_empty() {
            " (no runs yet; start one with `git parallel run`)".to_string()
        } else {
            format!(" (runs: {})", ids.join(", "))
        }
    ))
}

fn tip_of(repo: &Repo, id: &str) -> Result<ObjectId> {
    objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))
}

/// The state of one run with every task.
pub fn load(repo: &Repo, id: &str) -> Result<RunState> {
    Ok(read_state(repo, id, tip_of(repo, id)?)?.2)
}

/// The run's tip (its latest event), None once the run is gone: what a watcher polls.
pub fn tip(repo: &Repo, id: &str) -> Result<Option<ObjectId>> {
    objects::read_ref(repo, &layout::run_ref(id))
}

/// The state of one run as of `tip` (one of its commits).
pub fn load_at(repo: &Repo, id: &str, tip: ObjectId) -> Result<RunState> {
    Ok(read_state(repo, id, tip)?.2)
}

/// The state of one run as of `tip`, given `prev`, its state as of `prev_tip` (an earlier
/// commit of the run): what changed since is read, not every task (a watcher's step).
pub fn load_since(repo: &Repo, id: &str, prev: &RunState, prev_tip: ObjectId, tip: ObjectId) -> Result<RunState> {
    read_state_since(repo, id, prev, prev_tip, tip)
}

/// Run ids and their tips, numerically sorted (what changes when any run moves).
pub fn tips(repo: &Repo) -> Result<Vec<(String, ObjectId)>> {
    list_tips(repo)
}

/// One task's state, read from its own blob (a cluster job needs only its own, whatever the
/// run's size); None when the run has no such task.
pub fn load_task(repo: &Repo, id: &str, task: &str) -> Result<Option<TaskState>> {
    let tip = tip_of(repo, id)?;
    match objects::read_path(repo, tip, &task_path(task))? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        // The first format kept every task in one state.json.
        None if objects::read_path(repo, tip, SUMMARY)?.is_none() => Ok(load(repo, id)?.task(task).cloned()),
        None => Ok(None),
    }
}

/// One run without its tasks: `counts` says how many are in which state (what `status` lists).
pub fn load_summary(repo: &Repo, id: &str) -> Result<RunState> {
    read_summary(repo, id, tip_of(repo, id)?)
}

/// Run ids, numerically sorted.
pub fn list_ids(repo: &Repo) -> Result<Vec<String>> {
    Ok(list_tips(repo)?.into_iter().map(|(id, _)| id).collect())
}

/// Run ids and their tips, numerically sorted.
fn list_tips(repo: &Repo) -> Result<Vec<(String, ObjectId)>> {
    let mut tips: Vec<(String, ObjectId)> = objects::list_refs(repo, layout::RUNS)?
        .into_iter()
        .filter_map(|(n, tip)| n.strip_prefix(layout::RUNS).map(|id| (id.to_string(), tip)))
        .collect();
    tips.sort_by_key(|(i, _)| (i.parse::<u64>().unwrap_or(u64::MAX), i.clone()));
    Ok(tips)
}

/// Every run's state with its tasks, oldest first.
/// Every readable run, oldest first (a corrupt one is left out: see `summaries_checked`).
pub fn load_all(repo: &Repo) -> Result<Vec<RunState>> {
    Ok(list_ids(repo)?.iter().filter_map(|id| load(repo, id).ok()).collect())
}

/// Every readable run's summary, oldest first; a corrupt run is left out so that one broken
/// ref does not stop every command.
pub fn summaries(repo: &Repo) -> Result<Vec<RunState>> {
    Ok(summaries_checked(repo)?.0)
}

/// Runs that cannot be read: (run id, why).
pub type Corrupt = Vec<(String, String)>;

/// Every run's summary, oldest first, and the runs that cannot be read, with why.
pub fn summaries_checked(repo: &Repo) -> Result<(Vec<RunState>, Corrupt)> {
    use rayon::prelude::*;
    // From the tips just listed, on every CPU: one summary blob per run, however big the runs.
    let tips = list_tips(repo)?;
    let shared = repo.gix.clone().into_sync();
    let (workdir, common_dir) = (&repo.workdir, &repo.common_dir);
    let read: Vec<(String, Result<RunState>)> = tips
        .par_iter()
        .map_init(
            || Repo { gix: shared.to_thread_local(), workdir: workdir.clone(), common_dir: common_dir.clone() },
            |r, (id, tip)| (id.clone(), read_summary(r, id, *tip)),
        )
        .collect();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (id, r) in read {
        match r {
            Ok(s) => good.push(s),
            Err(e) => bad.push((id, format!("{e:#}"))),
        }
    }
    Ok((good, bad))
}

/// The latest run id, if any.
pub fn latest(repo: &Repo) -> Result<Option<String>> {
    Ok(list_ids(repo)?.pop())
}

/// Resolve an optional run id to an existing one (default: the latest).
pub fn resolve(repo: &Repo, id: Option<&str>) -> Result<String> {
    match id {
        Some(id) => {
            let id = id.trim_start_matches('#');
            objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))?;
            Ok(id.to_string())
        }
        None => latest(repo)?.ok_or_else(|| usage("no runs yet; start one with `git parallel run`")),
    }
}

/// All records of a run, oldest first, read from the commit chain.
pub fn events(repo: &Repo, id: &str) -> Result<Vec<Record>> {
    let mut cur = objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))?;
    let mut out = Vec::new();
    loop {
        let commit = repo.gix.find_commit(cur)?;
        out.push(record_of(&commit, id, cur)?);
        let parent = commit.parent_ids().next().map(|p| p.detach());
        match parent {
            Some(p) => cur = p,
            None => break,
        }
    }
    out.reverse();
    Ok(out)
}

/// A transcript stored in the run's tree (`ext` jsonl or stderr).
pub fn transcript(repo: &Repo, id: &str, task: &str, ext: &str) -> Result<Option<Vec<u8>>> {
    let tip = tip_of(repo, id)?;
    match objects::read_path(repo, tip, &log_path(task, ext))? {
        Some(b) => Ok(Some(b)),
        // Runs of the first format kept every transcript in one flat folder.
        None => objects::read_path(repo, tip, &format!("logs/{task}.{ext}")),
    }
}

/// What tasks of the latest `runs` runs were measured to need: (agent, type, cores, peak RSS).
pub fn footprints(repo: &Repo, runs: usize) -> Result<Vec<(String, String, f64, u64)>> {
    let ids = list_ids(repo)?;
    let mut out = Vec::new();
    for id in &ids[ids.len().saturating_sub(runs)..] {
        let Ok(state) = load(repo, id) else { continue };
        for t in &state.tasks {
            if let (Some(c), Some(r)) = (t.metrics.cpu_cores, t.metrics.peak_rss) {
                out.push((state.agent.clone(), t.kind.to_string(), c, r));
            }
        }
    }
    Ok(out)
}

/// Durations of succeeded tasks in all stored runs, by type (for estimates).
pub fn history(repo: &Repo) -> Result<crate::analysis::estimate::History> {
    let mut h = crate::analysis::estimate::History::default();
    for state in load_all(repo)? {
        for t in &state.tasks {
            if t.status == TaskStatus::Succeeded && t.wall_ms > 0 {
                h.add(t.kind, t.wall_ms as f64 / 60_000.0);
            }
        }
    }
    Ok(h)
}
