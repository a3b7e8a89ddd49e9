//! `git parallel integrate`: merge a run's results into one branch, in memory.

use super::Context;
use crate::cli::IntegrateArgs;
use crate::error::{usage, Error};
use crate::exec::orchestrator::Observer;
use crate::store::plans;
use crate::store::runs::{self, Event, RunLog, RunState, RunStatus};
use crate::ui;
use anyhow::Result;

/// Narration of integration on stderr.
struct Narrate;

impl Observer for Narrate {
    fn event(&mut self, _: &Event, _: &RunState) {}
    fn note(&mut self, text: &str) {
        ui::note(&ui::sanitize(text));
    }
}

pub fn run(ctx: &Context, args: IntegrateArgs) -> Result<i32> {
    // Ctrl-C and SIGTERM stop merging, verify (its processes ended within the grace period)
    // and `--resolve`'s agents; the integration is recorded as interrupted (exit 130).
    super::run::interrupt_control();
    let id = runs::resolve(&ctx.repo, args.run.as_deref())?;
    let mut log = RunLog::open(&ctx.repo, &id)?;
    if log.state().status == RunStatus::Running && log.state().orchestrator_alive() {
        return Err(Error::usage(format!("run {id} is still running; it integrates when it ends"))
            .with_hint(format!("or stop it first: git parallel cancel {id}"))
            .into());
    }
    let plan = plans::load(&ctx.repo, &log.state().plan)?;
    let verify = args.verify.clone().or_else(|| ctx.settings.verify.clone());
    let mut outcome =
        crate::integrate::integrate(&mut log, &plan, args.into.as_deref(), verify.as_deref(), &mut Narrate)?;
    if args.resolve && !crate::integrate::handed_back(&outcome).is_empty() {
        let opts = super::run::options(ctx, None, Some(&log.state().agent), None, None, None, None)?;
        outcome = crate::integrate::resolve::resolve_conflicts(
            &mut log,
            &plan,
            &opts,
            verify.as_deref(),
            outcome,
            &mut Narrate,
        )?;
    } else if args.resolve {
        ui::note("no conflicts to resolve");
    }
    if args.json {
        ui::json(&outcome)?;
    } else {
        ui::out(&ui::run::integration(&outcome))?;
    }
    if outcome.merged.is_empty() && outcome.commit.is_none() {
        return Err(usage(format!("run {id} has no succeeded task to integrate")));
    }
    Ok(if outcome.clean() { 0 } else { 1 })
}
