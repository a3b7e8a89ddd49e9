//! Run state as an event log: `refs/parallel/runs/<run>` → a chain of commits, one per event.
//!
//! Each commit's message carries the event (JSON after a summary line); its tree carries the
//! state after replaying every event so far, split so that an event rewrites only what it
//! changed: a small summary for `status`, one blob per task under a fanned-out folder, and the
//! transcripts beside them (layout: [`SUMMARY`] and below). Appends are compare-and-swap on the
//! ref: a lost race (another process appended, e.g. `cancel`) re-reads the tip and re-applies
//! our event on top, never overwriting theirs.

use super::{layout, objects};
use crate::error::usage;
use crate::prompt::TaskType;
use crate::repo::Repo;
use anyhow::{Context, Result};
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    #[default]
    Pending,
    Running,
    Succeeded,
    /// The agent ran and succeeded but changed nothing.
    NoChanges,
    Failed,
    TimedOut,
    Interrupted,
    Cancelled,
    /// Never started because a dependency did not succeed.
    Skipped,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::NoChanges => "no-changes",
            TaskStatus::Failed => "failed",
            TaskStatus::TimedOut => "timed-out",
            TaskStatus::Interrupted => "interrupted",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Skipped => "skipped",
        }
    }
    /// Finished for good in this run (resume does not run it again).
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::NoChanges | TaskStatus::Failed | TaskStatus::TimedOut)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Interrupted,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// What an agent reported about its work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// CPU demand of the task's process tree, in cores on average (measured by the governor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Peak resident memory of the task's process tree, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss: Option<u64>,
    /// Tool calls of the agent's that failed, and what the last one said (a write the sandbox
    /// refused shows here even when the agent went on to succeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tool_error: Option<String>,
}

/// A conflict met while integrating a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationConflict {
    pub task: String,
    pub files: Vec<String>,
    pub guidance: String,
}

impl Check {
    /// How it ended: `exit 3`, `killed by signal 9`, `stopped`.
    pub fn status(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "stopped".to_string(),
        }
    }

    /// `check passed after fix round 1`, `check failed (exit 2)`: one line for narration.
    pub fn line(&self) -> String {
        let when = if self.round == 0 { String::new() } else { format!(" after fix round {}", self.round) };
        if self.passed {
            format!("check passed{when}")
        } else {
            let how = self.status();
            format!("check failed{when} ({how})")
        }
    }
}

/// Where a run's result went on the forge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub url: String,
    pub number: u64,
    pub remote: String,
    /// The branch pushed (the pull request's head) and the one it goes into.
    pub head: String,
    pub base: String,
    /// The commit pushed.
    pub commit: String,
    /// With `--per-task`: each integrated task's own pull request (task, number, url).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<(String, u64, String)>,
    /// The run's tracking issue (`--issue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<u64>,
    /// Its CI, once `--wait-checks` saw it end (or gave up waiting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<crate::forge::Checks>,
}

/// One run of a task's check command.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub task: String,
    /// 0: after the agent's own work; N: after fix round N.
    pub round: u32,
    pub passed: bool,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did and we did not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The end of what it printed (stdout and stderr).
    pub output: String,
    pub wall_ms: u64,
}

/// Everything that can happen to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The run was created from a plan.
    Planned {
        plan: String,
        base: String,
        agent: String,
        workers: usize,
        tasks: Vec<(String, TaskType)>,
        /// Agents run under the sandbox; a resume keeps it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sandbox: bool,
    },
    /// The options the run was started with (recorded right after `planned`); a resume uses
    /// them unless told otherwise.
    Options(RunOptions),
    /// A task taken up again by a resume: how its last attempt ended, and the agent session
    /// that goes on (None: it starts a new one).
    Resumed {
        task: String,
        after: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// Tasks to run again from a fresh start (`resume --retry-failed`, `--retry TASK`).
    Reset {
        tasks: Vec<String>,
    },
    /// An orchestrator took charge of the run (first start or resume).
    Attached {
        pid: u32,
        host: String,
    },
    Started {
        task: String,
        attempt: u32,
        worktree: String,
        branch: String,
        start_commit: String,
    },
    Progress {
        task: String,
        turns: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_tool: Option<String>,
        #[serde(default)]
        files: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
    /// Which limit holds back new starts now (empty: none), for `status`.
    Limited {
        running: usize,
        reason: String,
    },
    Retried {
        task: String,
        attempt: u32,
        reason: String,
        delay_ms: u64,
    },
    Finished {
        task: String,
        status: TaskStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default)]
        metrics: Metrics,
        #[serde(default)]
        files_changed: Vec<String>,
        wall_ms: u64,
    },
    Skipped {
        task: String,
        reason: String,
    },
    /// A task's check ran in its worktree once its agent ended (round 0), or after a fix round.
    Checked(Check),
    /// The run's result was pushed and its pull request opened or updated.
    Published(Published),
    /// A task was handed to a cluster engine as a job (`node` unset), or its job started on
    /// a node (recorded by the job itself).
    Job {
        task: String,
        executor: String,
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    CancelRequested {
        pid: u32,
    },
    Ended {
        status: RunStatus,
    },
    Integrated(Integrated),
}

impl Event {
    /// One line for the commit subject.
    pub fn summary(&self) -> String {
        match self {
            Event::Planned { plan, tasks, .. } => {
                format!("planned from plan {plan}: {} tasks", tasks.len())
            }
            Event::Attached { pid, host } => format!("attached: pid {pid} on {host}"),
            Event::Options(_) => "options recorded".to_string(),
            Event::Resumed { task, after, session: Some(s) } => format!("{task}: resumed after {after}, session {s}"),
            Event::Resumed { task, after, session: None } => format!("{task}: resumed after {after}, new session"),
            Event::Reset { tasks } => format!("to run again: {}", tasks.join(", ")),
            Event::Started { task, attempt, .. } => format!("{task}: started (attempt {attempt})"),
            Event::Progress { task, turns, .. } => format!("{task}: progress, {turns} turns"),
            Event::Retried { task, attempt, reason, .. } => format!("{task}: retry {attempt} ({reason})"),
            Event::Limited { running, reason } if reason.is_empty() => format!("{running} running, no limit reached"),
            Event::Limited { running, reason } => format!("{running} running, waiting: {reason}"),
            Event::Finished { task, status, .. } => format!("{task}: {}", status.as_str()),
            Event::Skipped { task, .. } => format!("{task}: skipped"),
            Event::Checked(c) => format!(
                "{}: check {} ({})",
                c.task,
                if c.passed { "passed" } else { "failed" },
                if c.round == 0 { "after the agent".to_string() } else { format!("after fix round {}", c.round) }
            ),
            Event::Job { task, executor, id, node: None } => format!("{task}: submitted as {executor} job {id}"),
            Event::Job { task, executor, id, node: Some(n) } => format!("{task}: {executor} job {id} on {n}"),
            Event::CancelRequested { pid } => format!("cancel requested by pid {pid}"),
            Event::Ended { status } => format!("run {}", status.as_str()),
            Event::Integrated(i) if i.interrupted => "integration interrupted".to_string(),
            Event::Integrated(i) => format!("integrated {} tasks, {} conflicts", i.merged.len(), i.conflicts.len()),
            Event::Published(p) => format!("published as {}", p.url),
        }
    }
}

/// An event with the time it happened (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub at: f64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub id: String,
    /// To run again from its start commit, not from what an earlier attempt left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// How the task was taken up again by a resume, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<String>,
    #[serde(rename = "type")]
    pub kind: TaskType,
    pub status: TaskStatus,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    /// Wall time of the last attempt.
    pub wall_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default)]
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tool: Option<String>,
    /// Files the agent's tools named while running.
    #[serde(default)]
    pub files_touched: Vec<String>,
    /// Files the result commit changed.
    #[serde(default)]
    pub files_changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub retries: u32,
    /// Set when integration left the task out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<IntegrationConflict>,
    /// The cluster job running the task's latest attempt (`executor:id`, e.g. `slurm:42`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The node that job runs on, once it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Each run of the task's check, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
}

impl TaskState {
    /// The task's check in a few words (`passed after 1 fix round`, `failed 3 times`), if it
    /// has one.
    pub fn check_summary(&self) -> Option<String> {
        let last = self.checks.last()?;
        let rounds = |n: u32| if n == 1 { "1 fix round".to_string() } else { format!("{n} fix rounds") };
        Some(match (last.passed, last.round) {
            (true, 0) => "passed".to_string(),
            (true, n) => format!("passed after {}", rounds(n)),
            (false, _) if self.checks.len() == 1 => "failed".to_string(),
            (false, _) => format!("failed {} times", self.checks.iter().filter(|c| !c.passed).count()),
        })
    }
}

/// What one integration did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Integrated {
    /// The branch integrated into.
    pub target: String,
    /// Its commit afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub merged: Vec<String>,
    pub conflicts: Vec<IntegrationConflict>,
    /// Tasks left out for another reason than a conflict: (task, why).
    #[serde(default)]
    pub dropped: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Stopped (Ctrl-C, SIGTERM, `cancel`) before it ended: the target was not moved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

impl Integrated {
    /// Every succeeded task made it in, and verify (if any) passed.
    pub fn clean(&self) -> bool {
        !self.interrupted && self.conflicts.is_empty() && self.dropped.is_empty() && self.verified != Some(false)
    }
}

/// The latest integration of a run, and when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    #[serde(flatten)]
    pub result: Integrated,
    pub at: f64,
}

/// Tasks by status and their summed wall time, kept in step with `tasks` by [`RunState::apply`]:
/// a run's summary answers `status` without reading every task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub total: usize,
    pub by_status: BTreeMap<TaskStatus, usize>,
    pub work_ms: u64,
}

impl Counts {
    fn add(&mut self, t: &TaskState) {
        *self.by_status.entry(t.status).or_default() += 1;
        self.work_ms += t.wall_ms;
    }
    fn remove(&mut self, t: &TaskState) {
        if let Some(n) = self.by_status.get_mut(&t.status) {
            *n -= 1;
            if *n == 0 {
                self.by_status.remove(&t.status);
            }
        }
        self.work_ms -= t.wall_ms.min(self.work_ms);
    }
    pub fn of(&self, status: TaskStatus) -> usize {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// The state of a run. Loaded in full (`load`) it has every task; as a summary
/// (`load_summary`) `tasks` is empty and `counts` tells the whole picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub id: String,
    pub plan: String,
    pub base: String,
    pub agent: String,
    pub workers: usize,
    /// Agents of this run run sandboxed.
    #[serde(default)]
    pub sandbox: bool,
    /// The options the run was started with.
    #[serde(default)]
    pub options: RunOptions,
    /// What holds back new starts, as last recorded (None: nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    pub created_at: f64,
    pub updated_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<f64>,
    pub pid: u32,
    pub host: String,
    pub status: RunStatus,
    pub cancel_requested: bool,
    pub events: u64,
    #[serde(default)]
    pub counts: Counts,
    #[serde(default)]
    pub tasks: Vec<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<Integration>,
    /// The pull request the run's result was last published as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<Published>,
    /// Position of each task in `tasks`: lookups by id stay O(1) at 10,000 tasks.
    #[serde(skip)]
    index: std::collections::HashMap<String, usize>,
}

/// Which tasks an event changed (their stored state is rewritten, nothing else).
#[derive(Debug, Clone, PartialEq)]
pub enum Touched {
    None,
    One(usize),
    Some(Vec<usize>),
    All,
}

impl RunState {
    fn empty(id: &str) -> Self {
        RunState {
            id: id.to_string(),
            plan: String::new(),
            base: String::new(),
            agent: String::new(),
            workers: 0,
            sandbox: false,
            options: RunOptions::default(),
            limit: None,
            created_at: 0.0,
            updated_at: 0.0,
            ended_at: None,
            pid: 0,
            host: String::new(),
            status: RunStatus::Running,
            cancel_requested: false,
            events: 0,
            counts: Counts::default(),
            tasks: Vec::new(),
            integration: None,
            published: None,
            index: Default::default(),
        }
    }

    /// Rebuild the index and the counts from `tasks` (after reading a full state).
    fn reindex(&mut self) {
        self.index = self.tasks.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
        let mut counts = Counts { total: self.tasks.len(), ..Default::default() };
        for t in &self.tasks {
            counts.add(t);
        }
        self.counts = counts;
    }

    pub fn task(&self, id: &str) -> Option<&TaskState> {
        self.index.get(id).map(|&i| &self.tasks[i])
    }

    /// Change task `id` with `f`, keeping the counts in step; returns its position.
    fn change(&mut self, id: &str, f: impl FnOnce(&mut TaskState)) -> Touched {
        let Some(&i) = self.index.get(id) else { return Touched::None };
        self.counts.remove(&self.tasks[i]);
        f(&mut self.tasks[i]);
        self.counts.add(&self.tasks[i]);
        Touched::One(i)
    }

    /// Apply one event (the replay step); says which tasks changed.
    pub fn apply(&mut self, r: &Record) -> Touched {
        self.events += 1;
        self.updated_at = r.at;
        match &r.event {
            Event::Planned { plan, base, agent, workers, tasks, sandbox } => {
                self.sandbox = *sandbox;
                self.plan = plan.clone();
                self.base = base.clone();
                self.agent = agent.clone();
                self.workers = *workers;
                self.created_at = r.at;
                self.tasks = tasks
                    .iter()
                    .map(|(id, kind)| TaskState {
                        fresh: false,
                        resumed: None,
                        id: id.clone(),
                        kind: *kind,
                        status: TaskStatus::Pending,
                        attempts: 0,
                        started_at: None,
                        finished_at: None,
                        wall_ms: 0,
                        worktree: None,
                        branch: None,
                        start_commit: None,
                        commit: None,
                        metrics: Metrics::default(),
                        last_tool: None,
                        files_touched: Vec::new(),
                        files_changed: Vec::new(),
                        reason: None,
                        exit_code: None,
                        retries: 0,
                        conflict: None,
                        job: None,
                        node: None,
                        checks: Vec::new(),
                    })
                    .collect();
                self.reindex();
                Touched::All
            }
            Event::Attached { pid, host } => {
                self.pid = *pid;
                self.host = host.clone();
                self.status = RunStatus::Running;
                self.ended_at = None;
                self.cancel_requested = false;
                Touched::None
            }
            Event::Started { task, attempt, worktree, branch, start_commit } => self.change(task, |t| {
                t.fresh = false;
                t.status = TaskStatus::Running;
                t.attempts = *attempt;
                t.started_at = Some(r.at);
                t.finished_at = None;
                t.worktree = Some(worktree.clone());
                t.branch = Some(branch.clone());
                t.start_commit = Some(start_commit.clone());
                t.reason = None;
            }),
            Event::Progress { task, turns, last_tool, files, cost_usd, session_id } => self.change(task, |t| {
                if session_id.is_some() {
                    t.metrics.session_id = session_id.clone();
                }
                t.metrics.turns = Some(*turns);
                if last_tool.is_some() {
                    t.last_tool = last_tool.clone();
                }
                for f in files {
                    if !t.files_touched.contains(f) {
                        t.files_touched.push(f.clone());
                    }
                }
                if cost_usd.is_some() {
                    t.metrics.cost_usd = *cost_usd;
                }
            }),
            Event::Options(o) => {
                self.options = o.clone();
                Touched::None
            }
            Event::Resumed { task, after, session } => self.change(task, |t| {
                t.resumed = Some(match session {
                    Some(s) => format!("resumed after {after}; its agent session {s} went on"),
                    None => format!("resumed after {after}; in a new agent session"),
                });
            }),
            Event::Reset { tasks } => {
                let mut changed = Vec::new();
                for id in tasks {
                    if let Touched::One(i) = self.change(id, |t| {
                        t.status = TaskStatus::Pending;
                        t.reason = None;
                        t.fresh = true;
                    }) {
                        changed.push(i);
                    }
                }
                Touched::Some(changed)
            }
            Event::Limited { reason, .. } => {
                self.limit = (!reason.is_empty()).then(|| reason.clone());
                Touched::None
            }
            Event::Checked(c) => self.change(&c.task, |t| t.checks.push(c.clone())),
            Event::Retried { task, reason, .. } => self.change(task, |t| {
                t.retries += 1;
                t.reason = Some(reason.clone());
            }),
            Event::Finished { task, status, commit, reason, exit_code, metrics, files_changed, wall_ms } => self
                .change(task, |t| {
                    t.status = *status;
                    t.finished_at = Some(r.at);
                    t.commit = commit.clone();
                    t.reason = reason.clone();
                    t.exit_code = *exit_code;
                    t.metrics = metrics.clone();
                    t.files_changed = files_changed.clone();
                    t.wall_ms = *wall_ms;
                }),
            Event::Skipped { task, reason } => self.change(task, |t| {
                t.status = TaskStatus::Skipped;
                t.reason = Some(reason.clone());
            }),
            Event::CancelRequested { .. } => {
                self.cancel_requested = true;
                Touched::None
            }
            Event::Job { task, executor, id, node } => self.change(task, |t| {
                let job = format!("{executor}:{id}");
                if t.job.as_ref() != Some(&job) {
                    t.node = None;
                }
                t.job = Some(job);
                if node.is_some() {
                    t.node = node.clone();
                }
            }),
            Event::Ended { status } => {
                self.status = *status;
                self.ended_at = Some(r.at);
                Touched::None
            }
            Event::Integrated(i) => {
                let conflicts: std::collections::HashMap<&str, &IntegrationConflict> =
                    i.conflicts.iter().map(|c| (c.task.as_str(), c)).collect();
                let mut changed = Vec::new();
                for (n, t) in self.tasks.iter_mut().enumerate() {
                    let new = conflicts.get(t.id.as_str()).map(|c| (*c).clone());
                    if t.conflict != new {
                        t.conflict = new;
                        changed.push(n);
                    }
                }
                self.integration = Some(Integration { result: i.clone(), at: r.at });
                Touched::Some(changed)
            }
            Event::Published(p) => {
                self.published = Some(p.clone());
                Touched::None
            }
        }
    }

    /// The status to show: a run recorded as running whose orchestrator is gone was interrupted.
    pub fn effective_status(&self) -> RunStatus {
        if self.status == RunStatus::Running && !self.orchestrator_alive() {
            RunStatus::Interrupted
        } else {
            self.status
        }
    }

    /// Whether the recorded orchestrator process still runs (on this host).
    pub fn orchestrator_alive(&self) -> bool {
        if self.host != host_name() {
            // Another machine's process: trust the record.
            return self.status == RunStatus::Running;
        }
        crate::proc::pid_alive(self.pid) && process_is_ours(self.pid)
    }

    /// (tasks done, all tasks), from the counts (a summary has no tasks).
    pub fn counts(&self) -> (usize, usize) {
        let done = self
            .counts
            .by_status
            .iter()
            .filter(|(s, _)| s.is_final() || **s == TaskStatus::Skipped)
            .map(|(_, n)| n)
            .sum();
        (done, self.counts.total)
    }
}

/// Whether `pid` is a git-parallel process (guards against pid reuse after a reboot).
fn process_is_ours(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmd) => {
            let cmd = String::from_utf8_lossy(&cmd);
            // `git-parallel ...`, or `git parallel ...` (NUL-separated arguments).
            cmd.contains("parallel")
        }
        // No /proc: trust kill(0).
        Err(_) => true,
    }
}

pub fn host_name() -> String {
    hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "localhost".into())
}

pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Files stored with a task's event, already written as blobs (by the worker, off the single
/// writer, which only links them into the run's tree).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskLog {
    Transcript(ObjectId),
    Stderr(ObjectId),
}

/// Write a task's transcript and stderr as blobs (empty ones are left out).
pub fn write_task_logs(repo: &Repo, transcript: &[u8], stderr: &[u8]) -> Result<Vec<TaskLog>> {
    let mut logs = Vec::new();
    if !transcript.is_empty() {
        logs.push(TaskLog::Transcript(objects::write_blob(repo, transcript)?));
    }
    if !stderr.is_empty() {
        logs.push(TaskLog::Stderr(objects::write_blob(repo, stderr)?));
    }
    Ok(logs)
}

/// What a run was started with, beyond the plan: what `resume` should do the same way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree_dir: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_integrate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_worktrees: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_rounds: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolve: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub budget_hard: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish: bool,
    /// Attempts per task the run was started with (a task's `attempts:` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

/// The task an event is about, if any.
fn task_of(event: &Event) -> Option<&str> {
    match event {
        Event::Started { task, .. }
        | Event::Progress { task, .. }
        | Event::Retried { task, .. }
        | Event::Finished { task, .. }
        | Event::Job { task, .. }
        | Event::Resumed { task, .. }
        | Event::Skipped { task, .. } => Some(task),
        Event::Checked(c) => Some(&c.task),
        Event::Reset { tasks } if tasks.len() == 1 => Some(&tasks[0]),
        _ => None,
    }
}

/// The single writer of one run's log.
pub struct RunLog {
    repo: Repo,
    pub id: String,
    tip: Option<ObjectId>,
    tree: Option<ObjectId>,
    /// The tip's tree is in the first format (one `state.json`): the next append converts it.
    legacy: bool,
    state: RunState,
}

/// How long recording one event may keep losing races before it gives up: a writer beside
/// the orchestrator (`cancel`, a job's orchestrator-less fold) waits its turn, it does not fail.
const APPEND_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);
/// Of those, the ones that may end in an error other than a lost race.
const APPEND_ERROR_TRIES: u32 = 6;

impl RunLog {
    /// Create a new run with the next free id; the first event is `planned`.
    pub fn create(repo: &Repo, planned: Event) -> Result<RunLog> {
        for _ in 0..100 {
            // A number whose task branches survive (a deleted run ref) is not reused.
            let id = objects::next_numeric_id(repo, layout::RUNS)?
                .max(objects::next_numeric_id(repo, layout::BRANCHES)?)
                .to_string();
            let mut log = RunLog {
                repo: repo.clone(),
                id: id.clone(),
                tip: None,
                tree: None,
                legacy: false,
                state: RunState::empty(&id),
            };
            match log.append(planned.clone(), &[]) {
                Ok(()) => return Ok(log),
                Err(e) if e.downcast_ref::<objects::Lost>().is_some() => continue,
                Err(e) => return Err(e),
            }
        }
        anyhow::bail!("could not find a free run id after 100 tries")
    }

    /// Open an existing run for appending.
    pub fn open(repo: &Repo, id: &str) -> Result<RunLog> {
        let mut log = RunLog {
            repo: repo.clone(),
            id: id.to_string(),
            tip: None,
            tree: None,
            legacy: false,
            state: RunState::empty(id),
        };
        log.reload()?;
        Ok(log)
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Append an event (and the task's logs) with compare-and-swap. What it writes does not
    /// grow with the run: the event's task state, the summary, the trees on their paths.
    pub fn append(&mut self, event: Event, logs: &[TaskLog]) -> Result<()> {
        let record = Record { at: now(), event };
        let creating = self.tip.is_none();
        let mut errors = 0;
        let (start, mut lost_races) = (std::time::Instant::now(), 0u32);
        while start.elapsed() < APPEND_PATIENCE {
            let touched = self.state.apply(&record);
            let err = match self.write(&record, &touched, logs) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // The state holds an event the log does not: go back to what is stored.
            let lost = err.downcast_ref::<objects::Lost>().is_some();
            if creating {
                self.state = RunState::empty(&self.id);
                return Err(err);
            }
            if !lost {
                // A lock held a little too long, a ref being packed: wait and try again.
                errors += 1;
                if errors >= APPEND_ERROR_TRIES {
                    let _ = self.reload();
                    return Err(err);
                }
                std::thread::sleep(std::time::Duration::from_millis(10 << errors));
            } else {
                // Writers that keep colliding step aside for a while of their own (jittered,
                // growing to 100 ms), so one of them wins the next round.
                lost_races += 1;
                if lost_races > 2 {
                    let cap = 1u64 << lost_races.min(7);
                    let jitter = (std::process::id() as u64 ^ start.elapsed().subsec_nanos() as u64) % cap;
                    std::thread::sleep(std::time::Duration::from_millis(1 + jitter.min(100)));
                }
            }
            // Someone else appended (or we failed): build on the stored tip.
            self.reload()?;
        }
        anyhow::bail!(
            "run {}: could not record an event in {} s: other writers kept winning",
            self.id,
            APPEND_PATIENCE.as_secs()
        )
    }

    /// Write the commit of `record` (already applied to the state) and move the ref to it.
    fn write(&mut self, record: &Record, touched: &Touched, logs: &[TaskLog]) -> Result<()> {
        let repo = &self.repo;
        let mut files = BTreeMap::new();
        let mut remove: Vec<&str> = Vec::new();
        let all = self.legacy || *touched == Touched::All;
        if all {
            // A new run, or a run of the first format being converted: every task once.
            for t in &self.state.tasks {
                files.insert(task_path(&t.id), objects::write_blob(repo, &serde_json::to_vec(t)?)?);
            }
            let order: String = self.state.tasks.iter().map(|t| format!("{}\n", t.id)).collect();
            files.insert(ORDER.into(), objects::write_blob(repo, order.as_bytes())?);
            if self.legacy {
                remove.push(LEGACY_STATE);
            }
        } else {
            let changed: &[usize] = match touched {
                Touched::One(i) => std::slice::from_ref(i),
                Touched::Some(v) => v,
                _ => &[],
            };
            for &i in changed {
                let t = &self.state.tasks[i];
                files.insert(task_path(&t.id), objects::write_blob(repo, &serde_json::to_vec(t)?)?);
            }
        }
        if let Some(task) = task_of(&record.event) {
            for log in logs {
                let (ext, id) = match log {
                    TaskLog::Transcript(id) => ("jsonl", id),
                    TaskLog::Stderr(id) => ("stderr", id),
                };
                files.insert(log_path(task, ext), *id);
            }
        }
        if all || matches!(record.event, Event::Integrated(_)) {
            if let Some(i) = &self.state.integration {
                files.insert(INTEGRATION.into(), objects::write_blob(repo, &serde_json::to_vec(i)?)?);
            }
        }
        files.insert(SUMMARY.into(), objects::write_blob(repo, &summary_json(&mut self.state)?)?);
        let tree = objects::edit_tree(repo, self.tree, &files, &remove)?;
        let message = format!("{}\n\n{}\n", record.event.summary(), serde_json::to_string(record)?);
        let parents: Vec<ObjectId> = self.tip.into_iter().collect();
        let commit = objects::write_commit(repo, tree, &parents, &message)?;
        objects::cas_update(repo, &layout::run_ref(&self.id), commit, self.tip, "git parallel")?;
        self.tip = Some(commit);
        self.tree = Some(tree);
        self.legacy = false;
        Ok(())
    }

    /// Read the whole stored state again (O(tasks): after a failure or a lost race only).
    fn reload(&mut self) -> Result<()> {
        let tip =
            objects::read_ref(&self.repo, &layout::run_ref(&self.id))?.ok_or_else(|| no_run(&self.repo, &self.id))?;
        let (tree, legacy, state) = read_state(&self.repo, &self.id, tip)?;
        self.tip = Some(tip);
        self.tree = Some(tree);
        self.legacy = legacy;
        self.state = state;
        Ok(())
    }

    /// Take over a run whose orchestrator is gone: a lock it left on the run's ref (killed
    /// mid-update) is removed, since nobody else writes a run without a live orchestrator.
    pub fn take_over(repo: &Repo, id: &str) -> Result<RunLog> {
        objects::clear_stale_lock(repo, &layout::run_ref(id), std::time::Duration::ZERO);
        RunLog::open(repo, id)
    }

    /// See events other processes appended (such as a cancel request): replay the commits
    /// after our tip, so the cost follows the new events, not the number of tasks.
    pub fn refresh(&mut self) -> Result<()> {
        let tip =
            objects::read_ref(&self.repo, &layout::run_ref(&self.id))?.ok_or_else(|| no_run(&self.repo, &self.id))?;
        if Some(tip) == self.tip {
            return Ok(());
        }
        let mut records = Vec::new();
        let mut cur = tip;
        while Some(cur) != self.tip {
            let parent = {
                let commit = self.repo.gix.find_commit(cur)?;
                records.push(record_of(&commit, &self.id, cur)?);
                let parent = commit.parent_ids().next().map(|p| p.detach());
                parent
            };
            match parent {
                // Not built on our tip (rewritten), or far ahead: read it whole.
                Some(p) if records.len() <= 10_000 => cur = p,
                _ => return self.reload(),
            }
        }
        for r in records.iter().rev() {
            self.state.apply(r);
        }
        let (tree, legacy) = tree_format(&self.repo, tip)?;
        self.tip = Some(tip);
        self.tree = Some(tree);
        self.legacy = legacy;
        Ok(())
    }
}

/// The run's tree (format 2): `summary.json` (the run without its tasks, with counts),
/// `task-order` (task ids in plan order, written once), `tasks/<ab>/<task>.json` (one task's
/// state), `logs/<ab>/<task>.jsonl` and `.stderr` (transcripts), `integration.json`. `<ab>` is
/// the first two hex digits of the task id's git blob hash (`printf %s ID | git hash-object --stdin`),
/// so no tree grows past a few dozen entries per 10,000 tasks and an event rewrites O(1) bytes.
const SUMMARY: &str = "summary.json";
const ORDER: &str = "task-order";
const INTEGRATION: &str = "integration.json";
/// Format 1: the whole state in one blob, rewritten per event (read, converted on append).
const LEGACY_STATE: &str = "state.json";

fn bucket(task: &str) -> String {
    let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, task.as_bytes())
        .map(|id| id.to_string())
        .unwrap_or_else(|_| "00".into());
    id[..2].to_string()
}

fn task_path(task: &str) -> String {
    format!("tasks/{}/{task}.json", bucket(task))
}

fn log_path(task: &str, ext: &str) -> String {
    format!("logs/{}/{task}.{ext}", bucket(task))
}

/// The summary blob: the state without its tasks and integration (those have their own blobs).
fn summary_json(state: &mut RunState) -> Result<Vec<u8>> {
    let tasks = std::mem::take(&mut state.tasks);
    let integration = state.integration.take();
    let json = serde_json::to_vec(state);
    state.tasks = tasks;
    state.integration = integration;
    Ok(json?)
}

fn record_of(commit: &gix::Commit<'_>, run: &str, id: ObjectId) -> Result<Record> {
    let message = commit.message_raw()?.to_string();
    let json = message.split_once("\n\n").map(|(_, b)| b.trim()).unwrap_or("");
    serde_json::from_str::<Record>(json).with_context(|| format!("run {run}: damaged event in {id}"))
}

/// The tree of `commit` and whether it is in the first format.
fn tree_format(repo: &Repo, commit: ObjectId) -> Result<(ObjectId, bool)> {
    let tree = repo.gix.find_commit(commit)?.tree()?;
    let legacy = tree.find_entry(SUMMARY).is_none();
    Ok((tree.id, legacy))
}

fn read_blob(repo: &Repo, id: ObjectId) -> Result<Vec<u8>> {
    Ok(repo.gix.find_object(id)?.detach().data)
}

fn tree_blob(repo: &Repo, tree: &gix::Tree<'_>, name: &str) -> Result<Option<Vec<u8>>> {
    match tree.find_entry(name) {
        Some(e) => Ok(Some(read_blob(repo, e.object_id())?)),
        None => Ok(None),
    }
}

/// The full state at `commit`: (its tree, first format?, state with every task).
fn read_state(repo: &Repo, run: &str, commit: ObjectId) -> Result<(ObjectId, bool, RunState)> {
    let read = || -> Result<(ObjectId, bool, RunState)> {
        let tree = repo.gix.find_commit(commit)?.tree()?;
        let Some(summary) = tree_blob(repo, &tree, SUMMARY)? else {
            let bytes = tree_blob(repo, &tree, LEGACY_STATE)?.context("no state.json")?;
            let mut state: RunState = serde_json::from_slice(&bytes)?;
            state.reindex();
            return Ok((tree.id, true, state));
        };
        let mut state: RunState = serde_json::from_slice(&summary)?;
        if let Some(i) = tree_blob(repo, &tree, INTEGRATION)? {
            state.integration = Some(serde_json::from_slice(&i)?);
        }
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

/// The summary at `commit`: the run without its tasks (counts only).
fn read_summary(repo: &Repo, run: &str, commit: ObjectId) -> Result<RunState> {
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

fn no_run(repo: &Repo, id: &str) -> anyhow::Error {
    let ids = list_ids(repo).unwrap_or_default();
    usage(format!(
        "no run `{id}`{}",
        if ids.is_empty() {
            " (no runs yet; start one with `git parallel run`)".to_string()
        } else {
            format!(" (runs: {})", ids.join(", "))
        }
    ))
}

fn tip_of(repo: &Repo, id: &str) -> Result<ObjectId> {
    objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))
}

/// The state of one run with every task.
pub fn load(repo: &Repo, id: &str) -> Result<RunState> {
    Ok(read_state(repo, id, tip_of(repo, id)?)?.2)
}

/// One task's state, read from its own blob (a cluster job needs only its own, whatever the
/// run's size); None when the run has no such task.
pub fn load_task(repo: &Repo, id: &str, task: &str) -> Result<Option<TaskState>> {
    let tip = tip_of(repo, id)?;
    match objects::read_path(repo, tip, &task_path(task))? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        // The first format kept every task in one state.json.
        None if objects::read_path(repo, tip, SUMMARY)?.is_none() => Ok(load(repo, id)?.task(task).cloned()),
        None => Ok(None),
    }
}

/// One run without its tasks: `counts` says how many are in which state (what `status` lists).
pub fn load_summary(repo: &Repo, id: &str) -> Result<RunState> {
    read_summary(repo, id, tip_of(repo, id)?)
}

/// Run ids, numerically sorted.
pub fn list_ids(repo: &Repo) -> Result<Vec<String>> {
    Ok(list_tips(repo)?.into_iter().map(|(id, _)| id).collect())
}

/// Run ids and their tips, numerically sorted.
fn list_tips(repo: &Repo) -> Result<Vec<(String, ObjectId)>> {
    let mut tips: Vec<(String, ObjectId)> = objects::list_refs(repo, layout::RUNS)?
        .into_iter()
        .filter_map(|(n, tip)| n.strip_prefix(layout::RUNS).map(|id| (id.to_string(), tip)))
        .collect();
    tips.sort_by_key(|(i, _)| (i.parse::<u64>().unwrap_or(u64::MAX), i.clone()));
    Ok(tips)
}

/// Every run's state with its tasks, oldest first.
/// Every readable run, oldest first (a corrupt one is left out: see `summaries_checked`).
pub fn load_all(repo: &Repo) -> Result<Vec<RunState>> {
    Ok(list_ids(repo)?.iter().filter_map(|id| load(repo, id).ok()).collect())
}

/// Every readable run's summary, oldest first; a corrupt run is left out so that one broken
/// ref does not stop every command.
pub fn summaries(repo: &Repo) -> Result<Vec<RunState>> {
    Ok(summaries_checked(repo)?.0)
}

/// Runs that cannot be read: (run id, why).
pub type Corrupt = Vec<(String, String)>;

/// Every run's summary, oldest first, and the runs that cannot be read, with why.
pub fn summaries_checked(repo: &Repo) -> Result<(Vec<RunState>, Corrupt)> {
    use rayon::prelude::*;
    // From the tips just listed, on every CPU: one summary blob per run, however big the runs.
    let tips = list_tips(repo)?;
    let shared = repo.gix.clone().into_sync();
    let (workdir, common_dir) = (&repo.workdir, &repo.common_dir);
    let read: Vec<(String, Result<RunState>)> = tips
        .par_iter()
        .map_init(
            || Repo { gix: shared.to_thread_local(), workdir: workdir.clone(), common_dir: common_dir.clone() },
            |r, (id, tip)| (id.clone(), read_summary(r, id, *tip)),
        )
        .collect();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (id, r) in read {
        match r {
            Ok(s) => good.push(s),
            Err(e) => bad.push((id, format!("{e:#}"))),
        }
    }
    Ok((good, bad))
}

/// The latest run id, if any.
pub fn latest(repo: &Repo) -> Result<Option<String>> {
    Ok(list_ids(repo)?.pop())
}

/// Resolve an optional run id to an existing one (default: the latest).
pub fn resolve(repo: &Repo, id: Option<&str>) -> Result<String> {
    match id {
        Some(id) => {
            let id = id.trim_start_matches('#');
            objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))?;
            Ok(id.to_string())
        }
        None => latest(repo)?.ok_or_else(|| usage("no runs yet; start one with `git parallel run`")),
    }
}

/// All records of a run, oldest first, read from the commit chain.
pub fn events(repo: &Repo, id: &str) -> Result<Vec<Record>> {
    let mut cur = objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))?;
    let mut out = Vec::new();
    loop {
        let commit = repo.gix.find_commit(cur)?;
        out.push(record_of(&commit, id, cur)?);
        let parent = commit.parent_ids().next().map(|p| p.detach());
        match parent {
            Some(p) => cur = p,
            None => break,
        }
    }
    out.reverse();
    Ok(out)
}

/// Replay records into a state (what the snapshots must agree with).
pub fn replay(id: &str, records: &[Record]) -> RunState {
    let mut s = RunState::empty(id);
    for r in records {
        s.apply(r);
    }
    s
}

/// A transcript stored in the run's tree (`ext` jsonl or stderr).
pub fn transcript(repo: &Repo, id: &str, task: &str, ext: &str) -> Result<Option<Vec<u8>>> {
    let tip = tip_of(repo, id)?;
    match objects::read_path(repo, tip, &log_path(task, ext))? {
        Some(b) => Ok(Some(b)),
        // Runs of the first format kept every transcript in one flat folder.
        None => objects::read_path(repo, tip, &format!("logs/{task}.{ext}")),
    }
}

/// What tasks of the latest `runs` runs were measured to need: (agent, type, cores, peak RSS).
pub fn footprints(repo: &Repo, runs: usize) -> Result<Vec<(String, String, f64, u64)>> {
    let ids = list_ids(repo)?;
    let mut out = Vec::new();
    for id in &ids[ids.len().saturating_sub(runs)..] {
        let Ok(state) = load(repo, id) else { continue };
        for t in &state.tasks {
            if let (Some(c), Some(r)) = (t.metrics.cpu_cores, t.metrics.peak_rss) {
                out.push((state.agent.clone(), t.kind.to_string(), c, r));
            }
        }
    }
    Ok(out)
}

/// Durations of succeeded tasks in all stored runs, by type (for estimates).
pub fn history(repo: &Repo) -> Result<crate::analysis::estimate::History> {
    let mut h = crate::analysis::estimate::History::default();
    for state in load_all(repo)? {
        for t in &state.tasks {
            if t.status == TaskStatus::Succeeded && t.wall_ms > 0 {
                h.add(t.kind, t.wall_ms as f64 / 60_000.0);
            }
        }
    }
    Ok(h)
}
