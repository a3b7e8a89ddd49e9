//! `git parallel cancel`: stop a live run (SIGTERM to its orchestrator) and record it.

use super::Context;
use crate::cli::CancelArgs;
use crate::error::usage;
use crate::store::runs::{self, Event, RunLog, RunStatus};
use crate::ui;
use anyhow::Result;
use std::time::{Duration, Instant};

pub fn run(ctx: &Context, args: CancelArgs) -> Result<i32> {
    let id = match &args.run {
        Some(id) => runs::resolve(&ctx.repo, Some(id))?,
        None => runs::load_all(&ctx.repo)?
            .into_iter()
            .rev()
            .find(|s| s.effective_status() == RunStatus::Running)
            .map(|s| s.id)
            .ok_or_else(|| usage("no live run to cancel"))?,
    };
    let mut log = RunLog::open(&ctx.repo, &id)?;
    let state = log.state().clone();
    if state.status != RunStatus::Running {
        return Err(usage(format!("run {id} is not running (it {})", state.status.as_str())));
    }
    if !state.orchestrator_alive() {
        // A lock its orchestrator left on the run's ref (killed mid-update) is ours to remove.
        log = RunLog::take_over(&ctx.repo, &id)?;
    }
    log.append(Event::CancelRequested { pid: std::process::id() }, &[])?;
    if !state.orchestrator_alive() {
        // Nobody to stop: stop the jobs it left on a cluster, record the end ourselves.
        let jobs: Vec<String> =
            state.tasks.iter().filter(|t| !t.status.is_final()).filter_map(|t| t.job.clone()).collect();
        let stopped = crate::exec::executor::Executor::cancel_jobs(&jobs)?;
        if !stopped.is_empty() {
            ui::note(&format!("cancelled {} cluster jobs: {}", stopped.len(), stopped.join(" ")));
        }
        log.append(Event::Ended { status: RunStatus::Cancelled }, &[])?;
        ui::out(&format!("run {id} cancelled (its orchestrator was already gone)\n"))?;
        return Ok(0);
    }
    crate::proc::signal_pid(state.pid, libc::SIGTERM);
    ui::note(&format!("asked run {id} (pid {}) to stop; waiting for its agents to end", state.pid));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let s = runs::load(&ctx.repo, &id)?;
        if s.status != RunStatus::Running {
            ui::out(&format!("run {id} {}\n", s.effective_status().as_str()))?;
            return Ok(0);
        }
        if !s.orchestrator_alive() {
            // It went without recording its end (killed, or it failed on the way out): the
            // run was cancelled all the same.
            log.refresh()?;
            if log.state().status == RunStatus::Running {
                log.append(Event::Ended { status: RunStatus::Cancelled }, &[])?;
            }
            ui::out(&format!("run {id} {}\n", log.state().effective_status().as_str()))?;
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(crate::error::failed(format!("run {id} did not stop within 60 s (pid {})", state.pid)))
}
