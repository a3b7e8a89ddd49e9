//! Who runs a ready task. The scheduler (the orchestrator) keeps the DAG and the order; an
//! executor only starts a task that is ready, watches it, and stops it:
//!
//! - `local`: a thread of this process calls `task::run`;
//! - `slurm`: a Slurm job runs `git parallel worker`, which calls the same `task::run` on a
//!   compute node and appends the task's events to the run's log itself.
//!
//! Either way the orchestrator hears about the task over the same channel (`Msg`).

use super::slurm::Slurm;
use super::task::{self, Control, Msg, TaskSpec};
use crate::repo::Repo;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

#[derive(Debug, Clone, Default)]
pub enum Executor {
    #[default]
    Local,
    Slurm(Slurm),
}

/// Executor names known to `--executor` and `parallel.executor`.
pub const NAMES: &[&str] = &["local", "slurm"];

impl Executor {
    pub fn name(&self) -> &'static str {
        match self {
            Executor::Local => "local",
            Executor::Slurm(_) => "slurm",
        }
    }

    /// Tasks run in this process (the governor measures them); otherwise the engine decides
    /// where and when, and our only ceiling is how many tasks we keep submitted.
    pub fn is_local(&self) -> bool {
        matches!(self, Executor::Local)
    }

    /// Start a ready task on a thread that reports over `tx` as a local worker does. `job` is
    /// the job the run's log names for this task, if any (`slurm:42`): one still queued or
    /// running is re-attached to instead of submitting the task again.
    pub fn start(
        &self,
        repo: Repo,
        spec: TaskSpec,
        job: Option<String>,
        ctl: Arc<Control>,
        tx: Sender<Msg>,
    ) -> JoinHandle<()> {
        match self {
            Executor::Local => std::thread::spawn(move || task::run(repo, spec, ctl, tx)),
            Executor::Slurm(s) => {
                let s = s.clone();
                std::thread::spawn(move || s.run_task(repo, spec, job, ctl, tx))
            }
        }
    }

    /// Stop jobs named in a run's log (`executor:id`), for `cancel` when no orchestrator is
    /// alive to do it. Returns the jobs it asked the engine to stop.
    pub fn cancel_jobs(jobs: &[String]) -> anyhow::Result<Vec<String>> {
        let slurm: Vec<String> = jobs.iter().filter_map(|j| j.strip_prefix("slurm:")).map(str::to_string).collect();
        if !slurm.is_empty() {
            super::slurm::scancel(&slurm)?;
        }
        Ok(slurm)
    }
}
