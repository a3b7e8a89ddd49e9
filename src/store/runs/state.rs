//! Replay: a run's state as the fold of its events (`RunState::apply`), and what the state
//! says of tasks, counts and the orchestrator's liveness.

use super::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// The agent profile it ran (recorded when it started; the run's agent when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
    /// Its attempts as `--attempts-all` weighed them, when it had several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparison: Vec<AttemptScore>,
    /// Every attempt of the task (retries, fix rounds), oldest first: what a timeline draws.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
}

/// One attempt of a task: from its `started` event to the event that ended it (a retry, a
/// check, the task's end); `end` unset while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// How it ended: a task status (`failed`), `retried`, `check passed` or `check failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl TaskState {
    /// Close the open attempt, if any, at `at`.
    fn close_span(&mut self, at: f64, outcome: &str) {
        if let Some(s) = self.spans.last_mut().filter(|s| s.end.is_none()) {
            s.end = Some(at.max(s.start));
            s.outcome = Some(outcome.to_string());
        }
    }
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

/// The governor's last reading and when it was recorded (seconds since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub at: f64,
    #[serde(flatten)]
    pub machine: Machine,
}

/// The rate limits one agent profile met in a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub hits: u32,
    /// When the last one was met (seconds since the epoch), and by which task.
    pub at: f64,
    pub task: String,
    /// Most of the profile's tasks at once after it (raised by one per success since).
    pub limit: usize,
    /// Until when its new starts waited (seconds since the epoch).
    pub until: f64,
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
    /// The governor's last reading (None: a run recorded before readings were, or on a
    /// cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governor: Option<Reading>,
    /// Rate limits the run's agents met, per profile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rate_limits: BTreeMap<String, RateLimit>,
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
    pub(super) fn empty(id: &str) -> Self {
        RunState {
            id: id.to_string(),
            plan: String::new(),
            base: String::new(),
            agent: String::new(),
            workers: 0,
            sandbox: false,
            options: RunOptions::default(),
            limit: None,
            governor: None,
            rate_limits: BTreeMap::new(),
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
    pub(super) fn reindex(&mut self) {
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
                        comparison: Vec::new(),
                        agent: None,
                        spans: Vec::new(),
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
            Event::Started { task, attempt, worktree, branch, start_commit, agent } => self.change(task, |t| {
                if agent.is_some() {
                    t.agent = agent.clone();
                }
                t.close_span(r.at, "ended");
                t.spans.push(Span { start: r.at, end: None, outcome: None });
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
            Event::Governor(m) => {
                self.governor = Some(Reading { at: r.at, machine: m.clone() });
                Touched::None
            }
            Event::RateLimited { profile, task, limit, until } => {
                let rl = self.rate_limits.entry(profile.clone()).or_default();
                rl.hits += 1;
                rl.at = r.at;
                rl.task = task.clone();
                rl.limit = *limit;
                rl.until = rl.until.max(*until);
                Touched::None
            }
            Event::Checked(c) => self.change(&c.task, |t| {
                t.close_span(r.at, if c.passed { "check passed" } else { "check failed" });
                t.checks.push(c.clone())
            }),
            Event::Compared { task, attempts } => self.change(task, |t| t.comparison = attempts.clone()),
            Event::Spent { task, turns, cost_usd, .. } => self.change(task, |t| {
                if *turns > 0 {
                    t.metrics.turns = Some(t.metrics.turns.unwrap_or(0) + turns);
                }
                if let Some(c) = cost_usd {
                    t.metrics.cost_usd = Some(t.metrics.cost_usd.unwrap_or(0.0) + c);
                }
            }),
            Event::Retried { task, reason, .. } => self.change(task, |t| {
                t.close_span(r.at, "retried");
                t.retries += 1;
                t.reason = Some(reason.clone());
            }),
            Event::Finished { task, status, commit, reason, exit_code, metrics, files_changed, wall_ms } => self
                .change(task, |t| {
                    t.close_span(r.at, status.as_str());
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

/// Replay records into a state (what the snapshots must agree with).
pub fn replay(id: &str, records: &[Record]) -> RunState {
    let mut s = RunState::empty(id);
    for r in records {
        s.apply(r);
    }
    s
}
