//! Run state as an event log: `refs/parallel/runs/<run>` → a chain of commits, one per event.
//!
//! Each commit's message carries the event (JSON after a summary line); its tree carries
//! `state.json`, the state after replaying every event so far (so `status` reads one blob),
//! and `logs/<task>.jsonl` transcripts, added with the event that ends a task. Appends are
//! compare-and-swap on the ref: a lost race (another process appended, e.g. `cancel`) re-reads
//! the tip and re-applies our event on top, never overwriting theirs.

use super::{layout, objects};
use crate::error::usage;
use crate::prompt::TaskType;
use crate::repo::Repo;
use anyhow::{Context, Result};
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
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
}

/// A conflict met while integrating a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationConflict {
    pub task: String,
    pub files: Vec<String>,
    pub guidance: String,
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
            Event::Started { task, attempt, .. } => format!("{task}: started (attempt {attempt})"),
            Event::Progress { task, turns, .. } => format!("{task}: progress, {turns} turns"),
            Event::Retried { task, attempt, reason, .. } => format!("{task}: retry {attempt} ({reason})"),
            Event::Limited { running, reason } if reason.is_empty() => format!("{running} running, no limit reached"),
            Event::Limited { running, reason } => format!("{running} running, waiting: {reason}"),
            Event::Finished { task, status, .. } => format!("{task}: {}", status.as_str()),
            Event::Skipped { task, .. } => format!("{task}: skipped"),
            Event::Job { task, executor, id, node: None } => format!("{task}: submitted as {executor} job {id}"),
            Event::Job { task, executor, id, node: Some(n) } => format!("{task}: {executor} job {id} on {n}"),
            Event::CancelRequested { pid } => format!("cancel requested by pid {pid}"),
            Event::Ended { status } => format!("run {}", status.as_str()),
            Event::Integrated(i) => format!("integrated {} tasks, {} conflicts", i.merged.len(), i.conflicts.len()),
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
}

impl Integrated {
    /// Every succeeded task made it in, and verify (if any) passed.
    pub fn clean(&self) -> bool {
        self.conflicts.is_empty() && self.dropped.is_empty() && self.verified != Some(false)
    }
}

/// The latest integration of a run, and when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    #[serde(flatten)]
    pub result: Integrated,
    pub at: f64,
}

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
    pub tasks: Vec<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<Integration>,
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
            limit: None,
            created_at: 0.0,
            updated_at: 0.0,
            ended_at: None,
            pid: 0,
            host: String::new(),
            status: RunStatus::Running,
            cancel_requested: false,
            events: 0,
            tasks: Vec::new(),
            integration: None,
        }
    }

    pub fn task(&self, id: &str) -> Option<&TaskState> {
        self.tasks.iter().find(|t| t.id == id)
    }

    fn task_mut(&mut self, id: &str) -> Option<&mut TaskState> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }

    /// Apply one event (the replay step).
    pub fn apply(&mut self, r: &Record) {
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
                    })
                    .collect();
            }
            Event::Attached { pid, host } => {
                self.pid = *pid;
                self.host = host.clone();
                self.status = RunStatus::Running;
                self.ended_at = None;
                self.cancel_requested = false;
            }
            Event::Started { task, attempt, worktree, branch, start_commit } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskStatus::Running;
                    t.attempts = *attempt;
                    t.started_at = Some(r.at);
                    t.finished_at = None;
                    t.worktree = Some(worktree.clone());
                    t.branch = Some(branch.clone());
                    t.start_commit = Some(start_commit.clone());
                    t.reason = None;
                }
            }
            Event::Progress { task, turns, last_tool, files, cost_usd, session_id } => {
                if let Some(t) = self.task_mut(task) {
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
                }
            }
            Event::Limited { reason, .. } => {
                self.limit = (!reason.is_empty()).then(|| reason.clone());
            }
            Event::Retried { task, reason, .. } => {
                if let Some(t) = self.task_mut(task) {
                    t.retries += 1;
                    t.reason = Some(reason.clone());
                }
            }
            Event::Finished { task, status, commit, reason, exit_code, metrics, files_changed, wall_ms } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = *status;
                    t.finished_at = Some(r.at);
                    t.commit = commit.clone();
                    t.reason = reason.clone();
                    t.exit_code = *exit_code;
                    t.metrics = metrics.clone();
                    t.files_changed = files_changed.clone();
                    t.wall_ms = *wall_ms;
                }
            }
            Event::Skipped { task, reason } => {
                if let Some(t) = self.task_mut(task) {
                    t.status = TaskStatus::Skipped;
                    t.reason = Some(reason.clone());
                }
            }
            Event::Job { task, executor, id, node } => {
                if let Some(t) = self.task_mut(task) {
                    let job = format!("{executor}:{id}");
                    if t.job.as_ref() != Some(&job) {
                        t.node = None;
                    }
                    t.job = Some(job);
                    if node.is_some() {
                        t.node = node.clone();
                    }
                }
            }
            Event::CancelRequested { .. } => self.cancel_requested = true,
            Event::Ended { status } => {
                self.status = *status;
                self.ended_at = Some(r.at);
            }
            Event::Integrated(i) => {
                for t in self.tasks.iter_mut() {
                    t.conflict = i.conflicts.iter().find(|c| c.task == t.id).cloned();
                }
                self.integration = Some(Integration { result: i.clone(), at: r.at });
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

    pub fn counts(&self) -> (usize, usize) {
        let done = self.tasks.iter().filter(|t| t.status.is_final() || t.status == TaskStatus::Skipped).count();
        (done, self.tasks.len())
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

/// The single writer of one run's log.
pub struct RunLog {
    repo: Repo,
    pub id: String,
    tip: Option<ObjectId>,
    tree: Option<ObjectId>,
    state: RunState,
}

impl RunLog {
    /// Create a new run with the next free id; the first event is `planned`.
    pub fn create(repo: &Repo, planned: Event) -> Result<RunLog> {
        for _ in 0..100 {
            // A number whose task branches survive (a deleted run ref) is not reused.
            let id = objects::next_numeric_id(repo, layout::RUNS)?
                .max(objects::next_numeric_id(repo, layout::BRANCHES)?)
                .to_string();
            let mut log =
                RunLog { repo: repo.clone(), id: id.clone(), tip: None, tree: None, state: RunState::empty(&id) };
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
        let (tip, tree, state) = load_tip(repo, id)?;
        Ok(RunLog { repo: repo.clone(), id: id.to_string(), tip: Some(tip), tree: Some(tree), state })
    }

    pub fn state(&self) -> &RunState {
        &self.state
    }

    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Append an event (and optional files such as transcripts) with compare-and-swap.
    pub fn append(&mut self, event: Event, files: &[(String, Vec<u8>)]) -> Result<()> {
        let record = Record { at: now(), event };
        let mut blobs = BTreeMap::new();
        for (path, bytes) in files {
            blobs.insert(path.clone(), objects::write_blob(&self.repo, bytes)?);
        }
        let creating = self.tip.is_none();
        for _ in 0..50 {
            let mut state = self.state.clone();
            state.apply(&record);
            let mut entries = blobs.clone();
            entries.insert("state.json".into(), objects::write_blob(&self.repo, &serde_json::to_vec(&state)?)?);
            let tree = objects::write_tree(&self.repo, self.tree, &entries)?;
            let message = format!("{}\n\n{}\n", record.event.summary(), serde_json::to_string(&record)?);
            let parents: Vec<ObjectId> = self.tip.into_iter().collect();
            let commit = objects::write_commit(&self.repo, tree, &parents, &message)?;
            match objects::cas_update(&self.repo, &layout::run_ref(&self.id), commit, self.tip, "git parallel") {
                Ok(()) => {
                    self.tip = Some(commit);
                    self.tree = Some(tree);
                    self.state = state;
                    return Ok(());
                }
                Err(e) if e.downcast_ref::<objects::Lost>().is_some() && !creating => {
                    // Someone else appended: build on their tip.
                    let (tip, tree, state) = load_tip(&self.repo, &self.id)?;
                    self.tip = Some(tip);
                    self.tree = Some(tree);
                    self.state = state;
                }
                Err(e) => return Err(e),
            }
        }
        anyhow::bail!("run {}: could not record an event after 50 attempts (heavy contention)", self.id)
    }

    /// Take over a run whose orchestrator is gone: a lock it left on the run's ref (killed
    /// mid-update) is removed, since nobody else writes a run without a live orchestrator.
    pub fn take_over(repo: &Repo, id: &str) -> Result<RunLog> {
        objects::clear_stale_lock(repo, &layout::run_ref(id), std::time::Duration::ZERO);
        RunLog::open(repo, id)
    }

    /// Re-read the tip (to see events other processes appended, such as a cancel request).
    pub fn refresh(&mut self) -> Result<()> {
        let (tip, tree, state) = load_tip(&self.repo, &self.id)?;
        self.tip = Some(tip);
        self.tree = Some(tree);
        self.state = state;
        Ok(())
    }
}

fn load_tip(repo: &Repo, id: &str) -> Result<(ObjectId, ObjectId, RunState)> {
    let tip = objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))?;
    let commit = repo.gix.find_commit(tip)?;
    let tree = commit.tree_id()?.detach();
    let state = read_state(repo, tip).with_context(|| format!("run {id}: cannot read its state"))?;
    Ok((tip, tree, state))
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

fn read_state(repo: &Repo, commit: ObjectId) -> Result<RunState> {
    let bytes = objects::read_path(repo, commit, "state.json")?.context("no state.json")?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The state of one run (from the snapshot at its tip).
pub fn load(repo: &Repo, id: &str) -> Result<RunState> {
    Ok(load_tip(repo, id)?.2)
}

/// Run ids, numerically sorted.
pub fn list_ids(repo: &Repo) -> Result<Vec<String>> {
    let mut ids: Vec<String> = objects::list_refs(repo, layout::RUNS)?
        .into_iter()
        .filter_map(|(n, _)| n.strip_prefix(layout::RUNS).map(str::to_string))
        .collect();
    ids.sort_by_key(|i| (i.parse::<u64>().unwrap_or(u64::MAX), i.clone()));
    Ok(ids)
}

/// Every run's state, oldest first.
pub fn load_all(repo: &Repo) -> Result<Vec<RunState>> {
    list_ids(repo)?.iter().map(|id| load(repo, id)).collect()
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
        let message = commit.message_raw()?.to_string();
        let json = message.split_once("\n\n").map(|(_, b)| b.trim()).unwrap_or("");
        out.push(serde_json::from_str::<Record>(json).with_context(|| format!("run {id}: damaged event in {cur}"))?);
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

/// A transcript stored in the run's tree.
pub fn transcript(repo: &Repo, id: &str, task: &str) -> Result<Option<Vec<u8>>> {
    let tip = objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))?;
    objects::read_path(repo, tip, &format!("logs/{task}.jsonl"))
}

/// A finished task's stderr (its last 64 KiB), as stored with its result.
pub fn task_stderr(repo: &Repo, id: &str, task: &str) -> Result<Option<Vec<u8>>> {
    let tip = objects::read_ref(repo, &layout::run_ref(id))?.ok_or_else(|| no_run(repo, id))?;
    objects::read_path(repo, tip, &format!("logs/{task}.stderr"))
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
