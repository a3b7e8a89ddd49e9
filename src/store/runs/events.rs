//! The run log's format: the events a run records (one per commit of its ref), what each task
//! and the run can be in, and the options a run was started with.

use super::*;
use serde::{Deserialize, Serialize};

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

/// One reading of the governor: the machine, what the run's agents use of it, and the most
/// agents it lets run at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    /// CPU demand of the whole machine, in percent of all its CPUs.
    pub cpu_percent: f32,
    pub memory_used: u64,
    pub memory_total: u64,
    /// What the running agents' process trees use: cores, and resident memory in bytes.
    pub agents_cores: f64,
    pub agents_rss: u64,
    /// Most agents at once (the user's ceiling, or less for memory), and why.
    pub ceiling: usize,
    pub ceiling_reason: String,
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

/// One attempt of a task as `--attempts-all` weighed it against the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptScore {
    /// The attempt (`task` for the first, `task@N` for the others).
    pub attempt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// It ended with a result that stands (its check passed, or there is none).
    pub passed: bool,
    /// Its last check passed (None: no check ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<bool>,
    /// Its result merges cleanly on what was integrated when the attempts ended (None: not
    /// tried, it has no result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merges_cleanly: Option<bool>,
    /// Lines added plus removed by its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub winner: bool,
}

impl AttemptScore {
    /// The attempt in a few words: `a@2 (claude): check passed, merges cleanly, 12 lines, won`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        parts.push(match (self.passed, self.check) {
            (_, Some(true)) => "check passed".to_string(),
            (_, Some(false)) => "check failed".to_string(),
            (true, None) => "succeeded".to_string(),
            (false, None) => "failed".to_string(),
        });
        match self.merges_cleanly {
            Some(true) => parts.push("merges cleanly".into()),
            Some(false) => parts.push("conflicts".into()),
            None => {}
        }
        if let Some(n) = self.lines {
            parts.push(format!("{n} lines"));
        }
        if self.winner {
            parts.push("won".into());
        }
        let agent = self.agent.as_ref().map(|a| format!(" ({a})")).unwrap_or_default();
        format!("{}{agent}: {}", self.attempt, parts.join(", "))
    }
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
        /// The agent profile it runs (a task's attempts may each run another).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
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
    /// What the governor measured and allows: recorded once a running agent has been
    /// measured, then when the ceiling changes or a figure moves materially (see
    /// `schedule::governor::reading_due`), so a long run records a few, not one a second.
    Governor(Machine),
    /// An agent profile hit its API's rate limit (or overload): at most `limit` of its tasks
    /// at once from then on (raised by one per success), and its new starts wait until
    /// `until` (seconds since the epoch).
    RateLimited {
        profile: String,
        task: String,
        limit: usize,
        until: f64,
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
    /// Agent work done for a task outside its own record: a resolve round (its conflict or its
    /// verify failure handed back to its agent), or its own attempt's last stretch when it
    /// ended after another attempt had won. Adds to the task's turns and cost.
    Spent {
        task: String,
        turns: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// What it was for, as `status` says it.
        why: String,
    },
    /// Every attempt of a task ended (`--attempts-all`) and they were weighed: the winner's
    /// result is the task's.
    Compared {
        task: String,
        attempts: Vec<AttemptScore>,
    },
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
            Event::Governor(m) => format!(
                "governor: CPU {:.0}% of {}, memory {} of {} MiB, at most {} at once",
                m.cpu_percent,
                m.cpus,
                m.memory_used >> 20,
                m.memory_total >> 20,
                m.ceiling
            ),
            Event::RateLimited { profile, task, limit, .. } => {
                format!("{profile}: rate limited ({task}), at most {limit} at once")
            }
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
            Event::Spent { task, turns, why, .. } => format!("{task}: {turns} more turns ({why})"),
            Event::Compared { task, attempts } => format!(
                "{task}: {} attempts compared, {} won",
                attempts.len(),
                attempts.iter().find(|a| a.winner).map_or("none", |a| a.attempt.as_str())
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
    /// Every attempt finishes and the best wins (`--attempts-all`; a task's `attempts_all:` wins).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attempts_all: bool,
}

/// The task an event is about, if any.
pub fn task_of(event: &Event) -> Option<&str> {
    match event {
        Event::Started { task, .. }
        | Event::Progress { task, .. }
        | Event::Retried { task, .. }
        | Event::Finished { task, .. }
        | Event::Job { task, .. }
        | Event::Resumed { task, .. }
        | Event::Skipped { task, .. }
        | Event::Compared { task, .. }
        | Event::Spent { task, .. } => Some(task),
        Event::Checked(c) => Some(&c.task),
        Event::Reset { tasks } if tasks.len() == 1 => Some(&tasks[0]),
        _ => None,
    }
}

pub fn host_name() -> String {
    hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "localhost".into())
}

pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
