//! A cluster job's own channel to the orchestrator. Each job appends its task's events to a
//! ref of its own, `refs/parallel/inbox/<run>/<task>`: one commit per event, the event as JSON
//! in its message, the task's transcript and stderr blobs in its tree. The orchestrator, the
//! only writer of the run's log, folds them in. No job ever races another to record its result
//! (with hundreds of jobs appending to the one run ref, results were lost to contention), and
//! what a job posted while the orchestrator was gone waits in its inbox for the resume.

use super::layout;
use super::objects;
use super::runs::{Event, TaskLog};
use crate::repo::Repo;
use anyhow::{Context, Result};
use gix::ObjectId;
use std::collections::BTreeMap;
use std::time::Duration;

const TRANSCRIPT: &str = "transcript.jsonl";
const STDERR: &str = "stderr";

/// Append `event` (with its task's logs) to the task's inbox. Only this task's job writes the
/// ref; a lost compare-and-swap (a duplicate job of the same task) is retried, never dropped.
pub fn post(repo: &Repo, run: &str, task: &str, event: &Event, logs: &[TaskLog]) -> Result<()> {
    let name = layout::inbox_ref(run, task);
    let mut files = BTreeMap::new();
    for l in logs {
        match l {
            TaskLog::Transcript(id) => files.insert(TRANSCRIPT.to_string(), *id),
            TaskLog::Stderr(id) => files.insert(STDERR.to_string(), *id),
        };
    }
    let tree = objects::write_tree(repo, None, &files)?;
    let message = format!("{}\n\n{}\n", event.summary(), serde_json::to_string(event)?);
    let mut delay = Duration::from_millis(5);
    let start = std::time::Instant::now();
    loop {
        let tip = objects::read_ref(repo, &name);
        let attempt = tip.and_then(|tip| {
            let commit = objects::write_commit(repo, tree, tip.as_slice(), &message)?;
            objects::cas_update(repo, &name, commit, tip, "git parallel: job event")
        });
        match attempt {
            Ok(()) => return Ok(()),
            // A lost race, or a lock held too long on a slow shared filesystem (git's
            // packed-refs lock waits a second at most): a result that was produced waits to be
            // posted, it is not lost for a reason of ours.
            Err(e) if start.elapsed() < POST_PATIENCE => {
                if e.downcast_ref::<objects::Lost>().is_none() {
                    eprintln!("git-parallel worker: posting to {name} is delayed ({e:#}); trying again");
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(2000));
            }
            Err(e) => return Err(e.context(format!("cannot post to {name} for {} s", POST_PATIENCE.as_secs()))),
        }
    }
}

/// How long a job keeps trying to post one event.
const POST_PATIENCE: Duration = Duration::from_secs(600);

/// Events read from an inbox, oldest first, each with its task's logs.
pub type Posted = Vec<(Event, Vec<TaskLog>)>;

/// What the inbox holds after `seen` (None: everything), oldest first, and its tip.
pub fn read(repo: &Repo, run: &str, task: &str, seen: Option<ObjectId>) -> Result<(Option<ObjectId>, Posted)> {
    let name = layout::inbox_ref(run, task);
    let Some(tip) = objects::read_ref(repo, &name)? else { return Ok((None, Vec::new())) };
    let mut chain = Vec::new();
    let mut cur = Some(tip);
    while let Some(id) = cur {
        if Some(id) == seen {
            break;
        }
        let commit = repo.gix.find_commit(id).with_context(|| format!("{name}: cannot read {id}"))?;
        let message = commit.message_raw_sloppy().to_string();
        let tree = commit.tree_id()?.detach();
        cur = commit.parent_ids().next().map(|p| p.detach());
        chain.push((message, tree));
    }
    let mut out = Vec::new();
    for (message, tree) in chain.into_iter().rev() {
        let json = message.split_once("\n\n").map(|(_, j)| j.trim()).unwrap_or("");
        let event: Event = serde_json::from_str(json).with_context(|| format!("{name}: an event is not readable"))?;
        let mut logs = Vec::new();
        let t = repo.gix.find_tree(tree)?;
        for e in t.iter() {
            let e = e?;
            match e.filename().to_string().as_str() {
                TRANSCRIPT => logs.push(TaskLog::Transcript(e.oid().to_owned())),
                STDERR => logs.push(TaskLog::Stderr(e.oid().to_owned())),
                _ => {}
            }
        }
        out.push((event, logs));
    }
    Ok((Some(tip), out))
}

/// Tasks of `run` with an inbox.
pub fn tasks(repo: &Repo, run: &str) -> Result<Vec<String>> {
    let prefix = format!("{}{run}/", layout::INBOX);
    Ok(objects::list_refs(repo, &prefix)?
        .into_iter()
        .filter_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string))
        .collect())
}

/// Drop a task's inbox once what it held is in the run's log.
pub fn remove(repo: &Repo, run: &str, task: &str) -> Result<()> {
    let name = layout::inbox_ref(run, task);
    if let Some(tip) = objects::read_ref(repo, &name)? {
        objects::delete_ref(repo, &name, tip)?;
    }
    Ok(())
}

/// Drop the inboxes of `run`'s tasks whose end is in the run's log (`state`).
pub fn sweep(repo: &Repo, run: &str, state: &super::runs::RunState) {
    for task in tasks(repo, run).unwrap_or_default() {
        if state.task(&task).is_some_and(|t| t.status.is_final()) {
            let _ = remove(repo, run, &task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::runs::{Metrics, TaskStatus};

    fn repo() -> (tempfile::TempDir, Repo) {
        let d = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let o = std::process::Command::new("git")
                .args(args)
                .current_dir(d.path())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_AUTHOR_NAME", "T")
                .env("GIT_AUTHOR_EMAIL", "t@e")
                .env("GIT_COMMITTER_NAME", "T")
                .env("GIT_COMMITTER_EMAIL", "t@e")
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        git(&["init", "-q"]);
        git(&["commit", "-q", "--allow-empty", "-m", "x"]);
        let r = Repo::discover(d.path()).unwrap();
        (d, r)
    }

    #[test]
    fn a_post_waits_out_a_lock_held_longer_than_git_waits() {
        let (d, r) = repo();
        // The packed-refs lock held for 1.5 s by someone else (a slow `git reset` on NFS):
        // gix gives up after 1 s; the post must not.
        let status = std::process::Command::new("git").args(["pack-refs", "--all"]).current_dir(d.path()).status();
        assert!(status.unwrap().success());
        let lock = d.path().join(".git/packed-refs.lock");
        std::fs::write(&lock, "").unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            std::fs::remove_file(lock).unwrap();
        });
        post(&r, "1", "t", &Event::Skipped { task: "t".into(), reason: "x".into() }, &[]).unwrap();
        releaser.join().unwrap();
        assert_eq!(read(&r, "1", "t", None).unwrap().1.len(), 1);
    }

    #[test]
    fn posted_events_come_back_in_order_with_their_logs_and_only_once() {
        let (_d, r) = repo();
        let progress = Event::Progress {
            task: "t".into(),
            turns: 1,
            last_tool: None,
            files: vec![],
            cost_usd: None,
            session_id: None,
        };
        post(&r, "1", "t", &progress, &[]).unwrap();
        let (tip, first) = read(&r, "1", "t", None).unwrap();
        assert_eq!(first.len(), 1);
        let blob = objects::write_blob(&r, b"{}\n").unwrap();
        let end = Event::Finished {
            task: "t".into(),
            status: TaskStatus::Succeeded,
            commit: None,
            reason: None,
            exit_code: Some(0),
            metrics: Metrics::default(),
            files_changed: vec![],
            wall_ms: 5,
        };
        post(&r, "1", "t", &end, &[TaskLog::Transcript(blob)]).unwrap();
        let (_, rest) = read(&r, "1", "t", tip).unwrap();
        assert_eq!(rest.len(), 1, "what was read before is not read again");
        assert!(matches!(rest[0].0, Event::Finished { status: TaskStatus::Succeeded, .. }));
        assert_eq!(rest[0].1, vec![TaskLog::Transcript(blob)]);
        assert_eq!(tasks(&r, "1").unwrap(), vec!["t".to_string()]);
        remove(&r, "1", "t").unwrap();
        assert!(tasks(&r, "1").unwrap().is_empty());
    }
}
