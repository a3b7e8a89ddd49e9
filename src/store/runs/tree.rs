//! The run's tree format: where the summary, each task's state and transcripts live, and
//! reading a state back from a commit (both formats).

use super::*;
use crate::repo::Repo;
use anyhow::{Context, Result};
use gix::ObjectId;

/// The run's tree (format 2): `summary.json` (the run without its tasks, with counts),
/// `task-order` (task ids in plan order, written once), `tasks/<ab>/<task>.json` (one task's
/// state), `logs/<ab>/<task>.jsonl` and `.stderr` (transcripts), `integration.json`. `<ab>` is
/// the first two hex digits of the task id's git blob hash (`printf %s ID | git hash-object --stdin`),
/// so no tree grows past a few dozen entries per 10,000 tasks and an event rewrites O(1) bytes.
pub(super) const SUMMARY: &str = "summary.json";
pub(super) const ORDER: &str = "task-order";
pub(super) const INTEGRATION: &str = "integration.json";
/// Format 1: the whole state in one blob, rewritten per event (read, converted on append).
pub(super) const LEGACY_STATE: &str = "state.json";

pub(super) fn bucket(task: &str) -> String {
    let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, task.as_bytes())
        .map(|id| id.to_string())
        .unwrap_or_else(|_| "00".into());
    id[..2].to_string()
}

pub(super) fn task_path(task: &str) -> String {
    format!("tasks/{}/{task}.json", bucket(task))
}

pub(super) fn log_path(task: &str, ext: &str) -> String {
    format!("logs/{}/{task}.{ext}", bucket(task))
}

/// The summary blob: the state without its tasks and integration (those have their own blobs).
pub(super) fn summary_json(state: &mut RunState) -> Result<Vec<u8>> {
    let tasks = std::mem::take(&mut state.tasks);
    let integration = state.integration.take();
    let json = serde_json::to_vec(state);
    state.tasks = tasks;
    state.integration = integration;
    Ok(json?)
}

pub(super) fn record_of(commit: &gix::Commit<'_>, run: &str, id: ObjectId) -> Result<Record> {
    let message = commit.message_raw()?.to_string();
    let json = message.split_once("\n\n").map(|(_, b)| b.trim()).unwrap_or("");
    serde_json::from_str::<Record>(json).with_context(|| format!("run {run}: damaged event in {id}"))
}

/// The tree of `commit` and whether it is in the first format.
pub(super) fn tree_format(repo: &Repo, commit: ObjectId) -> Result<(ObjectId, bool)> {
    let tree = repo.gix.find_commit(commit)?.tree()?;
    let legacy = tree.find_entry(SUMMARY).is_none();
    Ok((tree.id, legacy))
}

pub(super) fn read_blob(repo: &Repo, id: ObjectId) -> Result<Vec<u8>> {
    Ok(repo.gix.find_object(id)?.detach().data)
}

pub(super) fn tree_blob(repo: &Repo, tree: &gix::Tree<'_>, name: &str) -> Result<Option<Vec<u8>>> {
    match tree.find_entry(name) {
        Some(e) => Ok(Some(read_blob(repo, e.object_id())?)),
        None => Ok(None),
    }
}

/// The run's state without its tasks, from a tree of the current format (None: an older one).
fn summary_and_integration(repo: &Repo, tree: &gix::Tree<'_>) -> Result<Option<RunState>> {
    let Some(summary) = tree_blob(repo, tree, SUMMARY)? else { return Ok(None) };
    let mut state: RunState = serde_json::from_slice(&summary)?;
    if let Some(i) = tree_blob(repo, tree, INTEGRATION)? {
        state.integration = Some(serde_json::from_slice(&i)?);
    }
    Ok(Some(state))
}

/// The full state at `commit`: (its tree, first format?, state with every task).
pub(super) fn read_state(repo: &Repo, run: &str, commit: ObjectId) -> Result<(ObjectId, bool, RunState)> {
    let read = || -> Result<(ObjectId, bool, RunState)> {
        let tree = repo.gix.find_commit(commit)?.tree()?;
        let Some(mut state) = summary_and_integration(repo, &tree)? else {
            let bytes = tree_blob(repo, &tree, LEGACY_STATE)?.context("no state.json")?;
            let mut state: RunState = serde_json::from_slice(&bytes)?;
            state.reindex();
            return Ok((tree.id, true, state));
        };
        let mut by_id = std::collections::HashMap::new();
        if let Some(tasks) = tree.find_entry("tasks") {
            use rayon::prelude::*;
            let buckets: Vec<ObjectId> =
                repo.gix.find_tree(tasks.object_id())?.iter().map(|b| Ok(b?.object_id())).collect::<Result<_>>()?;
            // One blob per task: read the buckets on every CPU (`status RUN` of 10,000 tasks).
            let shared = repo.gix.clone().into_sync();
            let parts: Vec<Vec<TaskState>> = buckets
                .par_iter()
                .map_init(
                    || shared.to_thread_local(),
                    |gix, bucket| -> Result<Vec<TaskState>> {
                        let mut out = Vec::new();
                        for entry in gix.find_tree(*bucket)?.iter() {
                            let data = gix.find_object(entry?.object_id())?.detach().data;
                            out.push(serde_json::from_slice(&data)?);
                        }
                        Ok(out)
                    },
                )
                .collect::<Result<_>>()?;
            by_id.extend(parts.into_iter().flatten().map(|t| (t.id.clone(), t)));
        }
        let order = tree_blob(repo, &tree, ORDER)?.unwrap_or_default();
        state.tasks = String::from_utf8_lossy(&order)
            .lines()
            .map(|id| by_id.remove(id).with_context(|| format!("task {id} has no stored state")))
            .collect::<Result<_>>()?;
        state.reindex();
        Ok((tree.id, false, state))
    };
    read().with_context(|| format!("run {run}: cannot read its state"))
}

/// The state at `commit`, from `prev` (the state at `prev_commit`, an earlier commit of the
/// same run): only the task buckets whose tree changed are read again, so following a live
/// run of 10,000 tasks costs what its events changed, not 10,000 blobs a step. Anything else
/// (another format, another task order, a bucket gone) is read in full.
pub(super) fn read_state_since(
    repo: &Repo,
    run: &str,
    prev: &RunState,
    prev_commit: ObjectId,
    commit: ObjectId,
) -> Result<RunState> {
    let read = || -> Result<Option<RunState>> {
        let old = repo.gix.find_commit(prev_commit)?.tree()?;
        let new = repo.gix.find_commit(commit)?.tree()?;
        let oid = |t: &gix::Tree<'_>, name: &str| t.find_entry(name).map(|e| e.object_id());
        if oid(&old, SUMMARY).is_none() || oid(&old, ORDER) != oid(&new, ORDER) || prev.tasks.is_empty() {
            return Ok(None);
        }
        let Some(mut state) = summary_and_integration(repo, &new)? else { return Ok(None) };
        let buckets = |t: &gix::Tree<'_>| -> Result<std::collections::HashMap<Vec<u8>, ObjectId>> {
            let Some(tasks) = oid(t, "tasks") else { return Ok(Default::default()) };
            repo.gix
                .find_tree(tasks)?
                .iter()
                .map(|e| {
                    let e = e?;
                    Ok((e.filename().to_vec(), e.object_id()))
                })
                .collect()
        };
        let (before, after) = (buckets(&old)?, buckets(&new)?);
        if before.keys().any(|b| !after.contains_key(b)) {
            return Ok(None);
        }
        let mut tasks = prev.tasks.clone();
        let at: std::collections::HashMap<String, usize> =
            tasks.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
        for (name, id) in &after {
            if before.get(name) == Some(id) {
                continue;
            }
            for entry in repo.gix.find_tree(*id)?.iter() {
                let t: TaskState = serde_json::from_slice(&read_blob(repo, entry?.object_id())?)?;
                match at.get(&t.id) {
                    Some(&i) => tasks[i] = t,
                    None => return Ok(None),
                }
            }
        }
        state.tasks = tasks;
        state.reindex();
        Ok(Some(state))
    };
    match read().with_context(|| format!("run {run}: cannot read its state"))? {
        Some(s) => Ok(s),
        None => Ok(read_state(repo, run, commit)?.2),
    }
}

/// The summary at `commit`: the run without its tasks (counts only).
pub(super) fn read_summary(repo: &Repo, run: &str, commit: ObjectId) -> Result<RunState> {
    let tree = repo.gix.find_commit(commit)?.tree()?;
    match tree_blob(repo, &tree, SUMMARY)? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).with_context(|| format!("run {run}: damaged summary"))?),
        None => {
            let mut state = read_state(repo, run, commit)?.2;
            state.tasks.clear();
            state.integration = None;
            Ok(state)
        }
    }
}
