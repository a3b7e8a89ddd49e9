//! The single writer of a run's log: appends with compare-and-swap on the run's ref, retried
//! on lost races, each commit's tree rewritten only where the event changed it.

use super::*;
use crate::repo::Repo;
use anyhow::Result;
use gix::ObjectId;
use std::collections::BTreeMap;

/// Files stored with a task's event, already written as blobs (by the worker, off the single
/// writer, which only links them into the run's tree).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskLog {
    Transcript(ObjectId),
    Stderr(ObjectId),
}

/// Write a task's transcript and stderr as blobs (empty ones are left out).
pub fn write_task_logs(repo: &Repo, transcript: &[u8], stderr: &[u8]) -> Result<Vec<TaskLog>> {
    let mut logs = Vec::new();
    if !transcript.is_empty() {
        logs.push(TaskLog::Transcript(objects::write_blob(repo, transcript)?));
    }
    if !stderr.is_empty() {
        logs.push(TaskLog::Stderr(objects::write_blob(repo, stderr)?));
    }
    Ok(logs)
}

/// The single writer of one run's log.
pub struct RunLog {
    repo: Repo,
    pub id: String,
    tip: Option<ObjectId>,
    tree: Option<ObjectId>,
    /// The tip's tree is in the first format (one `state.json`): the next append converts it.
    legacy: bool,
    state: RunState,
}

/// How long recording one event may keep losing races before it gives up: a writer beside
/// the orchestrator (`cancel`, a job's orchestrator-less fold) waits its turn, it does not fail.
const APPEND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);
/// Of those, the ones that may end in an error other than a lost race.
const APPEND_ERROR_TRIES: u32 = 6;

impl RunLog {
    /// Create a new run with the next free id; the first event is `planned`.
    pub fn create(repo: &Repo, planned: Event) -> Result<RunLog> {
        for _ in 0..100 {
            // A number whose task branches survive (a deleted run ref) is not reused.
            let id = objects::next_numeric_id(repo, layout::RUNS)?
                .max(objects::next_numeric_id(repo, layout::BRANCHES)?)
                .to_string();
            let mut log = RunLog {
                repo: repo.clone(),
                id: id.clone(),
                tip: None,
                tree: None,
                legacy: false,
                state: RunState::empty(&id),
            };
            match log.append(planned.clone(), &[]) {
                Ok(()) => return Ok(log),
                Err(e) if e.downcast_ref::<objects::Lost>().is_some() => continue,
                Err(e) => return Err(e),
            }
        }
        anyhow::bail!("could not find a free run id after 100 tries")
    }

    /// Open an existing run for appending.
    pub fn open(repo: &Repo, id: &str) -> Result<RunLog> {
        let mut log = RunLog {
            repo: repo.clone(),
            id: id.to_string(),
            tip: None,
            tree: None,
            legacy: false,
            state: RunState::empty(id),
        };
        log.reload()?;
        Ok(log)
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Append an event (and the task's logs) with compare-and-swap. What it writes does not
    /// grow with the run: the event's task state, the summary, the trees on their paths.
    pub fn append(&mut self, event: Event, logs: &[TaskLog]) -> Result<()> {
        let record = Record { at: now(), event };
        let creating = self.tip.is_none();
        let mut errors = 0;
        let (start, mut lost_races) = (std::time::Instant::now(), 0u32);
        while start.elapsed() < APPEND_PATIENCE {
            let touched = self.state.apply(&record);
            let err = match self.write(&record, &touched, logs) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // The state holds an event the log does not: go back to what is stored.
            let lost = err.downcast_ref::<objects::Lost>().is_some();
            if creating {
                self.state = RunState::empty(&self.id);
                return Err(err);
            }
            if !lost {
                // A lock held a little too long, a ref being packed: wait and try again.
                errors += 1;
                if errors >= APPEND_ERROR_TRIES {
                    let _ = self.reload();
                    return Err(err);
                }
                std::thread::sleep(std::time::Duration::from_millis(10 << errors));
            } else {
                // Writers that keep colliding step aside for a while of their own (jittered,
                // growing to 100 ms), so one of them wins the next round.
                lost_races += 1;
                if lost_races > 2 {
                    let cap = 1u64 << lost_races.min(7);
                    let jitter = (std::process::id() as u64 ^ start.elapsed().subsec_nanos() as u64) % cap;
                    std::thread::sleep(std::time::Duration::from_millis(1 + jitter.min(100)));
                }
            }
            // Someone else appended (or we failed): build on the stored tip.
            self.reload()?;
        }
        anyhow::bail!(
            "run {}: could not record an event in {} s: other writers kept winning",
            self.id,
            APPEND_PATIENCE.as_secs()
        )
    }

    /// Write the commit of `record` (already applied to the state) and move the ref to it.
    fn write(&mut self, record: &Record, touched: &Touched, logs: &[TaskLog]) -> Result<()> {
        let repo = &self.repo;
        let mut files = BTreeMap::new();
        let mut remove: Vec<&str> = Vec::new();
        let all = self.legacy || *touched == Touched::All;
        if all {
            // A new run, or a run of the first format being converted: every task once.
            for t in &self.state.tasks {
                files.insert(task_path(&t.id), objects::write_blob(repo, &serde_json::to_vec(t)?)?);
            }
            let order: String = self.state.tasks.iter().map(|t| format!("{}\n", t.id)).collect();
            files.insert(ORDER.into(), objects::write_blob(repo, order.as_bytes())?);
            if self.legacy {
                remove.push(LEGACY_STATE);
            }
        } else {
            let changed: &[usize] = match touched {
                Touched::One(i) => std::slice::from_ref(i),
                Touched::Some(v) => v,
                _ => &[],
            };
            for &i in changed {
                let t = &self.state.tasks[i];
                files.insert(task_path(&t.id), objects::write_blob(repo, &serde_json::to_vec(t)?)?);
            }
        }
        if let Some(task) = task_of(&record.event) {
            for log in logs {
                let (ext, id) = match log {
                    TaskLog::Transcript(id) => ("jsonl", id),
                    TaskLog::Stderr(id) => ("stderr", id),
                };
                files.insert(log_path(task, ext), *id);
            }
        }
        if all || matches!(record.event, Event::Integrated(_)) {
            if let Some(i) = &self.state.integration {
                files.insert(INTEGRATION.into(), objects::write_blob(repo, &serde_json::to_vec(i)?)?);
            }
        }
        files.insert(SUMMARY.into(), objects::write_blob(repo, &summary_json(&mut self.state)?)?);
        let tree = objects::edit_tree(repo, self.tree, &files, &remove)?;
        let message = format!("{}\n\n{}\n", record.event.summary(), serde_json::to_string(record)?);
        let parents: Vec<ObjectId> = self.tip.into_iter().collect();
        let commit = objects::write_commit(repo, tree, &parents, &message)?;
        objects::cas_update(repo, &layout::run_ref(&self.id), commit, self.tip, "git parallel")?;
        self.tip = Some(commit);
        self.tree = Some(tree);
        self.legacy = false;
        Ok(())
    }

    /// Read the whole stored state again (O(tasks): after a failure or a lost race only).
    fn reload(&mut self) -> Result<()> {
        let tip =
            objects::read_ref(&self.repo, &layout::run_ref(&self.id))?.ok_or_else(|| no_run(&self.repo, &self.id))?;
        let (tree, legacy, state) = read_state(&self.repo, &self.id, tip)?;
        self.tip = Some(tip);
        self.tree = Some(tree);
        self.legacy = legacy;
        self.state = state;
        Ok(())
    }

    /// Take over a run whose orchestrator is gone: a lock it left on the run's ref (killed
    /// mid-update) is removed, since nobody else writes a run without a live orchestrator.
    pub fn take_over(repo: &Repo, id: &str) -> Result<RunLog> {
        objects::clear_stale_lock(repo, &layout::run_ref(id), std::time::Duration::ZERO);
        RunLog::open(repo, id)
    }

    /// See events other processes appended (such as a cancel request): replay the commits
    /// after our tip, so the cost follows the new events, not the number of tasks.
    pub fn refresh(&mut self) -> Result<()> {
        let tip =
            objects::read_ref(&self.repo, &layout::run_ref(&self.id))?.ok_or_else(|| no_run(&self.repo, &self.id))?;
        if Some(tip) == self.tip {
            return Ok(());
        }
        let mut records = Vec::new();
        let mut cur = tip;
        while Some(cur) != self.tip {
            let parent = {
                let commit = self.repo.gix.find_commit(cur)?;
                records.push(record_of(&commit, &self.id, cur)?);
                let parent = commit.parent_ids().next().map(|p| p.detach());
                parent
            };
            match parent {
                // Not built on our tip (rewritten), or far ahead: read it whole.
                Some(p) if records.len() <= 10_000 => cur = p,
                _ => return self.reload(),
            }
        }
        for r in records.iter().rev() {
            self.state.apply(r);
        }
        let (tree, legacy) = tree_format(&self.repo, tip)?;
        self.tip = Some(tip);
        self.tree = Some(tree);
        self.legacy = legacy;
        Ok(())
    }
}
