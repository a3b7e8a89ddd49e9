//! `git parallel resume`: continue an interrupted run; succeeded tasks never run again.

use super::run::{check_agents, drive, options, IntegrateOpts};
use super::Context;
use crate::cli::ResumeArgs;
use crate::error::{usage, Error};
use crate::store::plans;
use crate::store::runs::{self, RunLog, RunStatus};
use crate::ui;
use anyhow::Result;

pub fn run(ctx: &Context, args: ResumeArgs) -> Result<i32> {
    let id = match &args.run {
        Some(id) => runs::resolve(&ctx.repo, Some(id))?,
        None => runs::summaries(&ctx.repo)?
            .into_iter()
            .rev()
            .find(|s| matches!(s.effective_status(), RunStatus::Interrupted | RunStatus::Cancelled))
            .map(|s| s.id)
            .ok_or_else(|| usage("no interrupted run to resume"))?,
    };
    let state = runs::load(&ctx.repo, &id)?;
    if state.status == RunStatus::Running && state.orchestrator_alive() {
        return Err(Error::usage(format!("run {id} is still running (pid {} on {})", state.pid, state.host))
            .with_hint(format!(
                "follow it with `git parallel status {id} --watch`, or stop it with `git parallel cancel {id}`"
            ))
            .into());
    }
    // Claimed atomically: of two resumes started at once, exactly one goes on.
    let _claim = crate::store::owner::claim(&ctx.repo, &id)?;
    let mut log = RunLog::take_over(&ctx.repo, &id)?;
    if state.status == RunStatus::Succeeded {
        return Err(usage(format!("run {id} already succeeded; nothing to resume")));
    }
    let plan = plans::load(&ctx.repo, &state.plan)?;
    // A run whose tasks went to a cluster goes on there (its jobs may still run).
    let executor = args.executor.clone().or_else(|| {
        state.tasks.iter().find_map(|t| t.job.as_ref().and_then(|j| j.split_once(':')).map(|(e, _)| e.to_string()))
    });
    let mut opts = options(ctx, args.concurrency, Some(&state.agent), None, None, None, None)?;
    opts.executor = super::run::executor(ctx, executor.as_deref())?;
    opts.limits.requested = opts.limits.requested.or(Some(state.workers.max(1)));
    // A sandboxed run stays sandboxed: resuming must not hand its agents the repository.
    if state.sandbox {
        crate::exec::sandbox::check_available()?;
        opts.sandbox = true;
        ui::note(&format!("run {id} runs its agents in the sandbox, as when it started"));
    }
    opts.keep_worktrees |= args.keep_worktrees;
    check_agents(&plan, &opts)?;
    let done = state.tasks.iter().filter(|t| t.status.is_final()).count();
    ui::note(&format!("resuming run {id}: {done} of {} tasks already ended and will not run again", state.tasks.len()));
    let integ = match &state.integration {
        Some(i) => IntegrateOpts { skip: false, into: Some(i.result.target.clone()), verify: None },
        None => IntegrateOpts::default(),
    };
    drive(ctx, &mut log, &plan, &opts, &integ, args.json)
}
