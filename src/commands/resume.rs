//! `git parallel resume`: continue an interrupted run; succeeded tasks never run again.

use super::run::{check_agents, drive, options, IntegrateOpts};
use super::Context;
use crate::cli::ResumeArgs;
use crate::error::{usage, Error};
use crate::plan::Plan;
use crate::store::plans;
use crate::store::runs::{self, Event, RunLog, RunState, RunStatus, TaskStatus};
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
    // The same attempts as when it started (the plan stores tasks, the run how many tries).
    let plan = plans::load(&ctx.repo, &state.plan)?.with_attempts(state.options.attempts.unwrap_or(1));
    let retry = to_retry(&state, &plan, &args)?;
    if state.status == RunStatus::Succeeded && retry.is_empty() {
        return Err(usage(format!("run {id} already succeeded; nothing to resume")));
    }
    // A run whose tasks went to a cluster goes on there (its jobs may still run).
    let executor = args.executor.clone().or_else(|| {
        state.tasks.iter().find_map(|t| t.job.as_ref().and_then(|j| j.split_once(':')).map(|(e, _)| e.to_string()))
    });
    // The run's own options, unless a flag here says otherwise (and then we say so).
    let o = &state.options;
    let pick = |flag: Option<String>, stored: &Option<String>, name: &str| -> Option<String> {
        match (&flag, stored) {
            (Some(f), Some(s)) if f != s => ui::note(&format!("--{name} {f} instead of the run's {s}")),
            (Some(f), None) => ui::note(&format!("--{name} {f} (the run started without it)")),
            _ => {}
        }
        flag.or_else(|| stored.clone())
    };
    let agent_command = pick(args.agent_command.clone(), &o.agent_command, "agent-command");
    let timeout = pick(args.timeout.clone(), &o.timeout, "timeout");
    let retries = pick(args.retries.map(|r| r.to_string()), &o.retries.map(|r| r.to_string()), "retries")
        .and_then(|r| r.parse().ok());
    let concurrency =
        pick(args.concurrency.map(|j| j.to_string()), &o.concurrency.map(|j| j.to_string()), "concurrency")
            .and_then(|j| j.parse().ok());
    let into = pick(args.into.clone(), &o.into, "into");
    let verify = pick(args.verify.clone(), &o.verify, "verify");
    let check = pick(args.check.clone(), &o.check, "check");
    let budget = match &args.budget {
        Some(b) => Some(crate::config::parse_budget(b).map_err(|e| usage(format!("--budget: {e}")))?),
        None => o.budget,
    };
    if let (Some(b), Some(old)) = (args.budget.as_ref().and(budget), o.budget) {
        ui::note(&format!("budget ${b:.2} instead of the run's ${old:.2}"));
    }
    let fix_rounds = pick(args.fix_rounds.map(|r| r.to_string()), &o.fix_rounds.map(|r| r.to_string()), "fix-rounds")
        .and_then(|r| r.parse().ok());
    if let Some(into) = &into {
        crate::integrate::target_branch(&ctx.repo, into)?;
    }
    let worktree_dir = o.worktree_dir.as_ref().map(std::path::PathBuf::from);
    let mut opts = options(
        ctx,
        concurrency,
        Some(&state.agent),
        agent_command.as_deref(),
        timeout.as_deref(),
        retries,
        worktree_dir,
    )?;
    opts.executor = super::run::executor(ctx, executor.as_deref())?;
    if let crate::exec::executor::Executor::Slurm(s) = &opts.executor {
        s.set_resuming();
    }
    // A sandboxed run stays sandboxed: resuming must not hand its agents the repository.
    if state.sandbox {
        crate::exec::sandbox::check_available()?;
        opts.sandbox = true;
        ui::note(&format!("run {id} runs its agents in the sandbox, as when it started"));
    }
    opts.sparse |= o.sparse;
    opts.keep_worktrees |= args.keep_worktrees || o.keep_worktrees;
    opts.check = check.or(opts.check);
    opts.fix_rounds = fix_rounds.unwrap_or(opts.fix_rounds);
    opts.budget = budget.or(opts.budget);
    opts.budget_hard = o.budget_hard;
    opts.attempts_all = o.attempts_all;
    check_agents(&plan, &opts)?;
    if args.budget.is_some() {
        // The run's record says what it may spend now (status and report read it there).
        let mut options = state.options.clone();
        options.budget = budget;
        log.append(Event::Options(options), &[])?;
    }
    if !retry.is_empty() {
        ui::note(&format!("to run again from their start: {}", retry.join(", ")));
        log.append(Event::Reset { tasks: retry }, &[])?;
    }
    let done = log.state().tasks.iter().filter(|t| t.status.is_final()).count();
    ui::note(&format!("resuming run {id}: {done} of {} tasks already ended and will not run again", state.tasks.len()));
    let integ = IntegrateOpts {
        skip: (args.no_integrate || o.no_integrate) && args.into.is_none(),
        into: into.or_else(|| state.integration.as_ref().map(|i| i.result.target.clone())),
        verify,
        resolve: o.resolve,
        publish: o.publish,
    };
    drive(ctx, &mut log, &plan, &opts, &integ, args.json)
}

/// The tasks `--retry-failed` and `--retry TASK` name, with the tasks skipped because of them.
fn to_retry(state: &RunState, plan: &Plan, args: &ResumeArgs) -> Result<Vec<String>> {
    let mut chosen: Vec<usize> = Vec::new();
    for name in &args.retry {
        let i = plan
            .tasks
            .iter()
            .position(|t| &t.id == name)
            .ok_or_else(|| usage(format!("--retry {name}: run {} has no such task", state.id)))?;
        chosen.push(i);
    }
    if args.retry_failed {
        for (i, t) in plan.tasks.iter().enumerate() {
            let failed =
                state.task(&t.id).is_some_and(|s| matches!(s.status, TaskStatus::Failed | TaskStatus::TimedOut));
            if failed {
                chosen.push(i);
            }
        }
    }
    // Skipped dependents of what runs again run too.
    let preds = plan.pred_indices();
    let mut again = vec![false; plan.tasks.len()];
    for &i in &chosen {
        again[i] = true;
    }
    let mut grew = true;
    while grew {
        grew = false;
        for (i, t) in plan.tasks.iter().enumerate() {
            let skipped = state.task(&t.id).is_some_and(|s| s.status == TaskStatus::Skipped);
            if !again[i] && skipped && preds[i].iter().any(|&p| again[p]) {
                again[i] = true;
                grew = true;
            }
        }
    }
    Ok(plan.tasks.iter().enumerate().filter(|(i, _)| again[*i]).map(|(_, t)| t.id.clone()).collect())
}
