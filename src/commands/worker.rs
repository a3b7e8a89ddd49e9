//! `git parallel worker RUN TASK --spec FILE` (hidden): what a cluster job runs on its node.
//! Exactly what a local worker does (`task::run`: worktree, agent under containment, result
//! commit), with a drain on this thread posting the worker's messages to the task's own inbox
//! (`store::inbox`), which the orchestrator folds into the run's log: a job never races the
//! others, or the orchestrator, to record what it did.

use super::Context;
use crate::cli::WorkerArgs;
use crate::error::usage;
use crate::exec::orchestrator::{self, Observer};
use crate::exec::task::{self, Msg, TaskSpec};
use crate::store::inbox;
use crate::store::runs::{Event, RunState, TaskStatus};
use anyhow::{Context as _, Result};
use std::sync::mpsc;

/// Narration into the job's output file.
struct Narrate;

impl Observer for Narrate {
    fn event(&mut self, event: &Event, _state: &RunState) {
        eprintln!("git-parallel worker: {}", event.summary());
    }
    fn note(&mut self, text: &str) {
        eprintln!("git-parallel worker: {text}");
    }
}

pub fn run(ctx: &Context, args: WorkerArgs) -> Result<i32> {
    let text = std::fs::read(&args.spec).with_context(|| format!("cannot read {}", args.spec.display()))?;
    let spec: TaskSpec =
        serde_json::from_slice(&text).with_context(|| format!("bad task spec {}", args.spec.display()))?;
    if spec.run != args.run || spec.task != args.task {
        return Err(usage(format!("{} is the spec of run {} task {}", args.spec.display(), spec.run, spec.task)));
    }
    // Its own task's state only: reading the whole run would cost every job O(tasks).
    if let Some(t) = crate::store::runs::load_task(&ctx.repo, &args.run, &args.task)? {
        if t.status.is_final() {
            // A duplicate job (resubmitted while the first one still ran): nothing to do.
            eprintln!("git-parallel worker: task {} already {}; nothing to do", t.id, t.status.as_str());
            return Ok(0);
        }
    } else {
        return Err(usage(format!("run {} has no task {}", args.run, args.task)));
    }
    // Posted but not folded yet: the same.
    let (_, posted) = inbox::read(&ctx.repo, &args.run, &args.task, None)?;
    if posted.iter().any(|(e, _)| matches!(e, Event::Finished { status, .. } if status.is_final())) {
        eprintln!("git-parallel worker: task {} already ended; nothing to do", args.task);
        return Ok(0);
    }
    let mut obs = Narrate;
    let post = |ev: &Event, logs: &[crate::store::runs::TaskLog]| -> Result<()> {
        inbox::post(&ctx.repo, &args.run, &args.task, ev, logs)?;
        eprintln!("git-parallel worker: {}", ev.summary());
        Ok(())
    };
    // Where this job runs, for `status`; an array's element by the id the orchestrator knows
    // it by (`N_I`; its own job id is another number).
    let element = match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) {
        (Ok(a), Ok(i)) => Some(format!("{a}_{i}")),
        _ => None,
    };
    if let Some(id) = element.or_else(|| std::env::var("SLURM_JOB_ID").ok()) {
        let node = std::env::var("SLURMD_NODENAME").ok().unwrap_or_else(crate::store::runs::host_name);
        post(&Event::Job { task: args.task.clone(), executor: "slurm".into(), id, node: Some(node) }, &[])?;
    }
    // SIGTERM (scancel, the time limit) stops the agent as Ctrl-C stops a local run.
    let ctl = super::run::interrupt_control();
    let (tx, rx) = mpsc::channel::<Msg>();
    let repo = ctx.repo.clone();
    let spec_for_report = spec.clone();
    let ctl2 = std::sync::Arc::clone(&ctl);
    let worker = std::thread::spawn(move || task::run(repo, spec, ctl2, tx));
    let mut status = TaskStatus::Failed;
    // The node's own watch of the agent: its process limit, and its footprint for the record.
    let mut gov =
        crate::schedule::governor::Governor::new(spec_for_report.worktree.parent().unwrap_or(&ctx.repo.workdir));
    let (profile, kind) = (spec_for_report.profile.clone(), spec_for_report.kind.clone());
    let adopting = crate::proc::adopt_orphans();
    loop {
        let msg = match rx.recv_timeout(std::time::Duration::from_millis(250)) {
            Ok(msg) => msg,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                watch(&mut gov, &ctl, &args.task, &profile, &kind, ctx.settings.max_processes);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        watch(&mut gov, &ctl, &args.task, &profile, &kind, ctx.settings.max_processes);
        let done = matches!(msg, Msg::Finished(_));
        let msg = orchestrator::with_footprint(&mut gov, msg);
        match msg {
            Msg::RateLimited { task, profile, reset } => {
                obs.note(&format!("{task}: {profile} rate limited, retrying after {} s", reset.as_secs()));
                // The orchestrator holds back the profile's other jobs too.
                if let Err(e) = crate::exec::slurm::report_rate_limit(&spec_for_report, reset) {
                    obs.note(&format!("{task}: cannot tell the orchestrator of the rate limit: {e:#}"));
                }
            }
            Msg::Event(ev) => post(&ev, &[])?,
            Msg::Finished(o) => {
                status = o.status;
                post(&o.event(), &o.logs)?;
            }
            Msg::Recorded { .. } => {}
        }
        if done {
            break;
        }
    }
    drop(adopting);
    let _ = worker.join();
    Ok(match status {
        TaskStatus::Succeeded | TaskStatus::NoChanges => 0,
        TaskStatus::Interrupted | TaskStatus::Cancelled => 130,
        _ => 1,
    })
}

/// Measure the agent's tree (at most once a second), kill it past the process limit, and end
/// what an agent left behind after killing its supervisor.
fn watch(
    gov: &mut crate::schedule::governor::Governor,
    ctl: &task::Control,
    task: &str,
    profile: &str,
    kind: &str,
    max_processes: Option<usize>,
) {
    let pid = ctl.pids.lock().unwrap_or_else(|e| e.into_inner()).get(task).copied().unwrap_or(0);
    let tree = crate::schedule::governor::Tree { task: task.into(), profile: profile.into(), kind: kind.into(), pid };
    gov.observe(std::slice::from_ref(&tree));
    orchestrator::enforce_process_limit(gov, ctl, std::slice::from_ref(&tree), max_processes);
    crate::proc::sweep_orphans();
}
