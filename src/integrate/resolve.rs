//! `--resolve`: hand each conflict back to the task's own agent (its session where the CLI
//! keeps one, else its task again) in a worktree holding the integrated result with the task's
//! change merged in; take its result once every conflict marker is gone and the task's check
//! passes on that tree, for up to `fixRounds` more rounds.

use super::Outcome;
use crate::exec::orchestrator::{Observer, Options};
use crate::exec::task::{self, TaskSpec};
use crate::exec::worktree;
use crate::plan::Plan;
use crate::proc;
use crate::store::runs::RunLog;
use crate::store::{layout, objects};
use anyhow::Result;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Whether any of `files` in `dir` still holds a conflict marker. The file is read as data
/// (a link or a FIFO in its place counts as unresolved). A line of `=======` alone is not a
/// marker: it is also a Markdown heading's underline.
fn has_markers(dir: &std::path::Path, files: &[String]) -> bool {
    files.iter().any(|f| match crate::exec::taskdir::read_small(&dir.join(f), 256 << 20) {
        Ok(Some(bytes)) => {
            String::from_utf8_lossy(&bytes).lines().any(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> "))
        }
        // Deleted: a resolution that removes the file.
        Ok(None) => false,
        Err(_) => true,
    })
}

/// Why a task was left out of the integration, as handed back to its agent.
enum LeftOut {
    /// A textual conflict (its files are read again on the current target).
    Conflict,
    /// The verify command fails with it (found by bisection).
    Verify,
}

/// Hand what integration left out back to its tasks' agents: textual conflicts, and with
/// `verify` the tasks its bisection named. Each is taken once no conflict marker remains, the
/// task's check passes and `verify` passes on the merged tree, within `fixRounds` more rounds.
pub fn resolve_conflicts(
    log: &mut RunLog,
    plan: &Plan,
    opts: &Options,
    verify: Option<&str>,
    mut outcome: Outcome,
    obs: &mut dyn Observer,
) -> Result<Outcome> {
    let repo = log.repo().clone();
    let run = log.id.clone();
    let run_dir = worktree::run_dir(&repo, opts.worktree_dir.as_deref(), &run);
    // Ctrl-C, SIGTERM and `cancel` stop the resolving agent (SIGTERM, then SIGKILL after the
    // grace period) and the resolution.
    let ctl = crate::commands::run::interrupt_control();
    let items: Vec<(String, LeftOut)> = super::handed_back(&outcome)
        .into_iter()
        .map(|t| {
            let kind = if outcome.conflicts.iter().any(|c| c.task == t) { LeftOut::Conflict } else { LeftOut::Verify };
            (t, kind)
        })
        .filter(|(_, kind)| matches!(kind, LeftOut::Conflict) || verify.is_some())
        .collect();
    for (task, left) in items {
        if ctl.stop.load(Ordering::SeqCst) || ctl.kill.load(Ordering::SeqCst) {
            return stopped(log, outcome, obs);
        }
        let Some(tip) = outcome.commit.clone().or_else(|| Some(plan.base.clone())) else { continue };
        let Some(task_commit) = log.state().task(&task).and_then(|t| t.commit.clone()) else { continue };
        // The task's own agent: its profile, its prompt, its check, and its session where the
        // CLI keeps one (found by folder: the resolution then runs in the task's own place).
        let planned = plan.tasks.iter().find(|t| t.id == task);
        let profile = planned.and_then(|t| t.agent.clone()).unwrap_or_else(|| opts.agent.clone());
        let own = run_dir.join(&task);
        let kept = crate::exec::taskdir::TaskDir::new(&repo, &run, &task).agent_state().is_dir();
        let session = log
            .state()
            .task(&task)
            .and_then(|t| t.metrics.session_id.clone())
            .filter(|_| crate::agent::supports_resume(&profile) && kept && !own.exists());
        let name = match session {
            Some(_) => task.clone(),
            None => format!("resolve-{task}"),
        };
        let path = run_dir.join(&name);
        let p = path.to_string_lossy().into_owned();
        repo.git(["worktree", "add", "-q", "--detach", &p, &tip])?;
        let merge = proc::git_output(&path, ["merge", "--no-ff", "--no-commit", &task_commit])?;
        // Conflicted files now (the target moved on since: they may differ from before).
        let files: Vec<String> = if merge.ok() {
            Vec::new()
        } else {
            proc::git(&path, ["diff", "--name-only", "--diff-filter=U"])?.lines().map(String::from).collect()
        };
        let run_verify = |path: &std::path::Path| -> Result<Option<String>> {
            let Some(cmd) = verify else { return Ok(None) };
            let stop = proc::Stop { stop: &ctl.stop, kill: &ctl.kill, grace: opts.grace };
            let out = proc::shell_stoppable(path, cmd, &[], Some(opts.timeout), Some(stop))?;
            if out.ok() {
                return Ok(None);
            }
            let said = format!("{}{}", out.stdout_str(), out.stderr_str());
            let tail: String = said.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect();
            Ok(Some(format!(
                "The verify command `{cmd}` fails on the integrated result with your change merged in. The end of its output:\n\n```\n{}\n```\n\nFix your change so that it passes there; do not commit.\n",
                tail.trim_end()
            )))
        };
        let verify_first = match (&left, files.is_empty()) {
            (LeftOut::Verify, true) => run_verify(&path)?,
            _ => None,
        };
        if files.is_empty() && verify_first.is_none() {
            // It merges and passes now (the target moved on): commit it as is.
            obs.note(&format!("{task}: merges cleanly onto the current integration"));
        } else {
            let told = if !files.is_empty() {
                format!(
                    "Your result for task `{task}` of run {run} conflicts with what was integrated before it. This working tree holds the integrated result with your change merged in; the conflicted files:\n{}\n\nEdit each file so that both sides' intent is kept and no conflict markers (<<<<<<<, =======, >>>>>>>) remain. Do not commit and do not run git merge, reset or checkout.\n",
                    files.iter().map(|f| format!("- {f}")).collect::<Vec<_>>().join("\n")
                )
            } else {
                format!(
                    "Your result for task `{task}` of run {run} was left out of the integration. This working tree holds the integrated result with your change merged in. {}",
                    verify_first.clone().unwrap_or_default()
                )
            };
            // Without its session, the agent learns its task again first.
            let again = match &session {
                Some(_) => String::new(),
                None => crate::store::plans::Prompts::load(&repo, &plan.id)
                    .and_then(|ps| ps.get(&repo, &task))
                    .map(|raw| {
                        format!("This was your task:\n\n{}\n\n---\n\n", crate::exec::orchestrator::body_of(&raw))
                    })
                    .unwrap_or_default(),
            };
            let mut spec = TaskSpec {
                run: run.clone(),
                task: name.clone(),
                title: format!("Bring {task} in"),
                prompt: format!("{again}{told}"),
                profile,
                template: opts.template.clone(),
                timeout: opts.timeout,
                grace: opts.grace,
                retries: 0,
                retry_base: Duration::from_secs(1),
                worktree: path.clone(),
                branch: String::new(),
                base: tip.clone(),
                deps: Vec::new(),
                setup: None,
                check: planned.and_then(|t| t.check.clone()).or_else(|| opts.check.clone()),
                fix_rounds: 0,
                copy: Vec::new(),
                resume_session: session.clone(),
                prior_attempts: 0,
                // Contained, and sandboxed when the run is, like any task of the run.
                sandbox: opts.sandbox.then(|| repo.common_dir.clone()),
                sparse: None,
                fresh: false,
                max_processes: opts.limits.max_processes,
                sandbox_read: opts.sandbox_read.clone(),
                sandbox_env: opts.sandbox_env.clone(),
                kind: String::new(),
                overlay: false,
                max_turns: planned.and_then(|t| t.max_turns),
            };
            let first = spec.prompt.clone();
            // Rounds: the markers gone, the task's check passing and verify passing on the
            // merged tree.
            let mut round = 0;
            let left_out = loop {
                let ran = task::run_agent_in_place(&repo, &spec, &ctl);
                // The round's turns and cost are the task's (and count against the budget).
                if let Ok(r) = &ran {
                    let why = match left {
                        LeftOut::Conflict => "its conflict handed back",
                        LeftOut::Verify => "its verify failure handed back",
                    };
                    let why = format!("{why}, round {}", round + 1);
                    let ev = crate::store::runs::Event::Spent {
                        task: task.clone(),
                        turns: r.turns,
                        cost_usd: r.cost_usd,
                        why,
                    };
                    log.append(ev.clone(), &[])?;
                    obs.event(&ev, log.state());
                    if let Some(c) = log.state().task(&task).and_then(|t| t.metrics.cost_usd) {
                        ctl.spent_at_least(&task, c);
                    }
                }
                // From here on no git of the user's runs in that worktree (the agent wrote
                // there): it is removed whole, never `merge --abort`ed.
                if ctl.stop.load(Ordering::SeqCst) || ctl.kill.load(Ordering::SeqCst) {
                    let _ = worktree::remove(&repo, &path, true);
                    crate::exec::taskdir::remove_task(&repo, &run, &name);
                    return stopped(log, outcome, obs);
                }
                let feedback = if !ran?.ok {
                    break Some("its agent failed".to_string());
                } else if has_markers(&path, &files) {
                    "Conflict markers remain in the files above; resolve every one.\n".to_string()
                } else {
                    let checked = match task::check_in_place(&repo, &spec, round, &ctl)? {
                        None => None,
                        Some(mut c) => {
                            c.task = task.clone();
                            let (passed, how, output) = (c.passed, c.status(), c.output.clone());
                            let ev = crate::store::runs::Event::Checked(c);
                            log.append(ev.clone(), &[])?;
                            obs.event(&ev, log.state());
                            (!passed).then(|| format!(
                                "The check `{}` failed ({how}) on the merged tree. The end of its output:\n\n```\n{}\n```\n\nFix it; do not commit.\n",
                                spec.check.as_deref().unwrap_or(""),
                                output.trim_end()
                            ))
                        }
                    };
                    match checked {
                        Some(f) => f,
                        None => match run_verify(&path)? {
                            None => break None,
                            Some(f) => f,
                        },
                    }
                };
                if round >= opts.fix_rounds || ctl.over_budget() {
                    let first_line = feedback.lines().next().unwrap_or("");
                    break Some(format!("still not in after {round} more round(s): {first_line}"));
                }
                round += 1;
                spec.prompt = match spec.resume_session {
                    Some(_) => feedback,
                    None => format!("{first}\n\n---\n\n{feedback}"),
                };
            };
            if let Some(why) = left_out {
                obs.note(&format!("{task}: {why}; left out"));
                let _ = worktree::remove(&repo, &path, true);
                crate::exec::taskdir::remove_task(&repo, &run, &name);
                continue;
            }
        }
        // The agent's files read as data by a git of ours (see exec::result).
        let td = crate::exec::taskdir::TaskDir::new(&repo, &run, &name);
        td.ensure()?;
        let admin = worktree::admin_dir(&repo, &path)?;
        let shadow = crate::exec::result::Shadow::open(&repo, &td, &path, Some(&admin))?;
        let tree = shadow.tree(&tip, &[])?;
        let how = match left {
            LeftOut::Conflict => "conflicts resolved by its agent",
            LeftOut::Verify => "fixed by its agent to pass verify",
        };
        let msg = format!(
            "Merge task {task} of run {run} ({how})\n\n{}: {run}\n{}: {task}\n",
            layout::TRAILER_RUN,
            layout::TRAILER_TASK,
        );
        let new = shadow.commit_parents(&tree, &[tip.as_str(), task_commit.as_str()], &msg)?;
        crate::exec::taskdir::remove_task(&repo, &run, &name);
        // The target is expected where integration left it, never where a ref now says.
        let old = match &outcome.commit {
            Some(c) => Some(gix::ObjectId::from_hex(c.as_bytes())?),
            None => objects::read_ref(&repo, &outcome.target)?,
        };
        let new_id = gix::ObjectId::from_hex(new.as_bytes())?;
        objects::cas_update(
            &repo,
            &outcome.target,
            new_id,
            old,
            &format!("git parallel integrate --resolve run {run}"),
        )?;
        let _ = worktree::remove(&repo, &path, true);
        obs.note(&format!("{task}: {how}, and merged"));
        outcome.commit = Some(new);
        outcome.merged.push(task.clone());
        outcome.conflicts.retain(|c| c.task != task);
        outcome.dropped.retain(|(t, _)| *t != task);
    }
    let ev = crate::store::runs::Event::Integrated(outcome.clone());
    log.append(ev.clone(), &[])?;
    obs.event(&ev, log.state());
    Ok(outcome)
}

/// Stopped before every conflict was handled: what was resolved so far stays (the target
/// holds it), the rest is recorded as interrupted.
fn stopped(log: &mut RunLog, mut outcome: Outcome, obs: &mut dyn Observer) -> Result<Outcome> {
    outcome.interrupted = true;
    super::interrupted(log, outcome, obs)
}
