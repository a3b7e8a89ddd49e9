//! Metrics notes on result commits, under `refs/notes/parallel` (so `git log --notes=parallel`
//! shows how each commit was made). Written through gix's notes API, which updates the notes
//! ref only if it did not move meanwhile; a lost race is retried.

use super::layout;
use crate::repo::Repo;
use anyhow::Result;
use gix::ObjectId;

/// Attach `text` as the note of `commit`, replacing an older note of ours.
pub fn write(repo: &Repo, commit: ObjectId, text: &str) -> Result<()> {
    let mut gix_repo = repo.gix.clone();
    if gix_repo.committer().is_none() {
        // Notes commits need an identity; use ours when the user has none configured.
        let mut cfg = gix_repo.config_snapshot_mut();
        cfg.set_raw_value("user.name", "git-parallel")?;
        cfg.set_raw_value("user.email", "git-parallel@localhost")?;
    }
    let mut last = None;
    // Lost races are retried; a lock left by a killed process is cleared once it is stale.
    for attempt in 0..40u64 {
        let mut notes = gix_repo.notes()?.with_commit_message("git parallel: task metrics");
        match notes.replace(layout::NOTES, commit, text.as_bytes()) {
            Ok(_) => return Ok(()),
            Err(e) => {
                last = Some(e.to_string());
                if !super::objects::clear_stale_lock(repo, layout::NOTES, std::time::Duration::from_secs(5)) {
                    std::thread::sleep(std::time::Duration::from_millis(5 + attempt.min(20) * 10));
                }
            }
        }
    }
    anyhow::bail!("cannot write note for {commit}: {}", last.unwrap_or_default())
}

/// The note of ours on `commit`, if any.
pub fn read(repo: &Repo, commit: ObjectId) -> Result<Option<String>> {
    let mut notes = repo.gix.notes()?.with_refs([layout::NOTES])?;
    let found = notes.get(commit)?;
    Ok(found.into_iter().next().map(|n| String::from_utf8_lossy(&n.blob.data).into_owned()))
}
