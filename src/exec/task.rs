//! Running one task: worktree, setup, the agent in its own process group with a timeout,
//! retries of transient failures with backoff and jitter, and the commit of the result.
//! Runs on a worker thread; reports to the orchestrator (the single writer) over a channel.

use super::result::Shadow;
use super::taskdir::TaskDir;
use super::{merge, worktree};
use crate::agent::{self, parse, ResultInfo, Update};
use crate::proc;
use crate::repo::Repo;
use crate::store::layout;
use crate::store::runs::{Check, Event, Metrics, TaskStatus};
use anyhow::Result;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest stdout line kept whole; longer lines are cut (an agent printing megabytes without
/// a newline must not exhaust memory).
const MAX_LINE: usize = 1 << 20;
/// Least time between two recorded progress events of one task.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Most transcript bytes kept per task.
const MAX_TRANSCRIPT: usize = 16 << 20;

/// Shared between the orchestrator and its workers: stop signals (`stop` after the first
/// Ctrl-C terminates agents, `kill` after the second), the containment supervisor's pid of
/// each running agent (the governor measures its tree), and, per agent profile, until when
/// new attempts wait for an API rate limit to reset.
#[derive(Default)]
pub struct Control {
    pub stop: AtomicBool,
    pub kill: AtomicBool,
    pub pids: Mutex<HashMap<String, u32>>,
    pub rate_pause: Mutex<HashMap<String, Instant>>,
    /// Tasks whose agent is to be killed now, with why (a limit it broke): the task fails
    /// with that reason and is not retried.
    pub condemned: Mutex<HashMap<String, String>>,
    /// The run's budget is spent: no fix round starts (set by the orchestrator).
    pub budget_spent: AtomicBool,
    /// The run's budget (US dollars), and what each task spent so far as its worker or the
    /// run's log last said: a fix round is not started past the budget even before the
    /// orchestrator hears of the round before it.
    pub budget: Mutex<Option<f64>>,
    pub costs: Mutex<HashMap<String, f64>>,
}

impl Control {
    /// `task` has spent at least `usd` so far.
    pub fn spent_at_least(&self, task: &str, usd: f64) {
        let mut costs = self.costs.lock().unwrap_or_else(|e| e.into_inner());
        let c = costs.entry(task.to_string()).or_insert(0.0);
        *c = c.max(usd);
    }

    /// What the run's tasks spent, as far as anyone reported.
    pub fn spent(&self) -> f64 {
        self.costs.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }

    /// The budget is set and spent.
    pub fn over_budget(&self) -> bool {
        self.budget_spent.load(Ordering::SeqCst)
            || (*self.budget.lock().unwrap_or_else(|e| e.into_inner())).is_some_and(|b| self.spent() >= b)
    }

    /// Kill `task`'s agent and everything it started; the task fails with `why`.
    pub fn condemn(&self, task: &str, why: String) {
        self.condemned.lock().unwrap_or_else(|e| e.into_inner()).entry(task.to_string()).or_insert(why);
    }

    /// Why `task` is to be stopped (a limit it broke, another attempt won), if it is.
    pub(crate) fn condemned(&self, task: &str) -> Option<String> {
        self.condemned.lock().unwrap_or_else(|e| e.into_inner()).get(task).cloned()
    }

    /// When new attempts of `profile` may start (None: now).
    pub fn paused_until(&self, profile: &str) -> Option<Instant> {
        let map = self.rate_pause.lock().unwrap_or_else(|e| e.into_inner());
        map.get(profile).copied().filter(|u| *u > Instant::now())
    }

    /// Pause new attempts of `profile` until `until` (never shortening a longer pause).
    pub fn pause(&self, profile: &str, until: Instant) {
        let mut map = self.rate_pause.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.entry(profile.to_string()).or_insert(until);
        *e = (*e).max(until);
    }
}

/// Everything a worker needs to run one task (serialized for a worker in a cluster job).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TaskSpec {
    pub run: String,
    pub task: String,
    pub title: String,
    pub prompt: String,
    pub profile: String,
    pub template: Option<String>,
    pub timeout: Duration,
    pub grace: Duration,
    pub retries: u32,
    pub retry_base: Duration,
    pub worktree: PathBuf,
    pub branch: String,
    pub base: String,
    /// Results of the dependencies: (task, commit).
    pub deps: Vec<(String, String)>,
    pub setup: Option<String>,
    /// Must pass in the worktree once the agent ends; a failure goes back to the agent.
    #[serde(default)]
    pub check: Option<String>,
    /// Times a failed check goes back to the agent.
    #[serde(default)]
    pub fix_rounds: u32,
    pub copy: Vec<String>,
    pub resume_session: Option<String>,
    /// Attempts already made in earlier orchestrator lives.
    pub prior_attempts: u32,
    /// Run the agent under bubblewrap, writable: the worktree and this git directory.
    pub sandbox: Option<PathBuf>,
    /// Sparse cone directories, when the worktree should hold only those.
    pub sparse: Option<Vec<String>>,
    /// Run again from the start commit: what an earlier, failed attempt left is discarded.
    pub fresh: bool,
    /// `parallel.maxProcesses`: the kernel holds the task a little above it (see
    /// `contain::MAX_PROCS_ENV`); the governor's count names the breach.
    #[serde(default)]
    pub max_processes: Option<usize>,
    /// Extra paths the sandbox shows read-only (`parallel.sandboxRead`).
    #[serde(default)]
    pub sandbox_read: Vec<PathBuf>,
    /// Extra variables the sandbox keeps (`parallel.sandboxEnv`).
    #[serde(default)]
    pub sandbox_env: Vec<String>,
    /// The task's type, as the governor learns it (a cluster job reads it here, not from the
    /// plan, whose size grows with the run).
    #[serde(default)]
    pub kind: String,
    /// The worktree is an overlay over the run's shared base checkout (`exec::overlay`).
    #[serde(default)]
    pub overlay: bool,
    /// The most turns the agent may take (front matter `max_turns:`), where its CLI takes a limit.
    #[serde(default)]
    pub max_turns: Option<u32>,
}

/// What a worker tells the orchestrator: events to record, then the outcome.
#[derive(Debug)]
pub enum Msg {
    /// `started`, `progress` or `retried`, recorded as is.
    Event(Box<Event>),
    /// An attempt ended on an API rate limit or overload; its agent profile should slow down
    /// until `reset` from now.
    RateLimited {
        task: String,
        profile: String,
        reset: Duration,
    },
    Finished(Box<Outcome>),
    /// The task ran elsewhere (a cluster job) and its end is already in the run's log.
    Recorded {
        task: String,
    },
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub task: String,
    pub status: TaskStatus,
    pub commit: Option<String>,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub metrics: Metrics,
    pub files_changed: Vec<String>,
    pub wall_ms: u64,
    pub transcript: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The transcript and stderr as blobs, written by the worker.
    pub logs: Vec<crate::store::runs::TaskLog>,
}

impl Outcome {
    /// The event that records this outcome in the run's log.
    pub fn event(&self) -> Event {
        Event::Finished {
            task: self.task.clone(),
            status: self.status,
            commit: self.commit.clone(),
            reason: self.reason.clone(),
            exit_code: self.exit_code,
            metrics: self.metrics.clone(),
            files_changed: self.files_changed.clone(),
            wall_ms: self.wall_ms,
        }
    }

    /// The outcome a `Finished` event records (its logs already stored as blobs).
    pub fn from_event(ev: &Event, logs: Vec<crate::store::runs::TaskLog>) -> Option<Outcome> {
        let Event::Finished { task, status, commit, reason, exit_code, metrics, files_changed, wall_ms } = ev else {
            return None;
        };
        Some(Outcome {
            task: task.clone(),
            status: *status,
            commit: commit.clone(),
            reason: reason.clone(),
            exit_code: *exit_code,
            metrics: metrics.clone(),
            files_changed: files_changed.clone(),
            wall_ms: *wall_ms,
            logs,
            ..Default::default()
        })
    }

    /// A task that failed before or outside its agent's work.
    fn failed(task: &str, reason: String) -> Self {
        Outcome { task: task.to_string(), status: TaskStatus::Failed, reason: Some(reason), ..Default::default() }
    }
}

/// How one attempt ended.
#[derive(Debug, Default)]
struct Attempt {
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    interrupted: bool,
    result: Option<ResultInfo>,
    session_id: Option<String>,
    model: Option<String>,
    turns: u64,
    spawn_error: Option<String>,
    /// Killed by the orchestrator for breaking a limit: why.
    condemned: Option<String>,
    tool_errors: u64,
    last_tool_error: Option<String>,
}

impl Attempt {
    /// The agent did not end well: killed, a non-zero exit, or an error in its final report.
    fn failed(&self) -> bool {
        self.signal.is_some() || self.exit_code != Some(0) || self.result.as_ref().is_some_and(|r| r.is_error)
    }
}

/// Run the task to its end (all attempts) and send `Finished`.
pub fn run(repo: Repo, spec: TaskSpec, ctl: Arc<Control>, tx: Sender<Msg>) {
    let started = Instant::now();
    let mut transcript = Vec::new();
    let mut engine_errors = 0;
    let outcome = loop {
        match run_inner(&repo, &spec, &ctl, &tx, &mut transcript) {
            Ok(o) => break o,
            // Our own step failed (a lock, a ref being packed), not the agent: the task runs
            // again, resuming its worktree, and the failure is not charged to it.
            Err(e) if engine_errors < ENGINE_RETRIES && !is_usage(&e) && !ctl.stop.load(Ordering::SeqCst) => {
                engine_errors += 1;
                let delay = backoff(Duration::from_millis(200), engine_errors);
                let _ = tx.send(Msg::Event(Box::new(Event::Retried {
                    task: spec.task.clone(),
                    attempt: spec.prior_attempts + engine_errors,
                    reason: format!("engine error, not the agent's: {e:#}"),
                    delay_ms: delay.as_millis() as u64,
                })));
                std::thread::sleep(delay);
            }
            Err(e) => break Outcome::failed(&spec.task, format!("{e:#}")),
        }
    };
    let mut outcome = outcome;
    if outcome.wall_ms == 0 {
        outcome.wall_ms = started.elapsed().as_millis() as u64;
    }
    if outcome.transcript.is_empty() {
        outcome.transcript = transcript;
    }
    if spec.worktree.exists() {
        worktree::unlock(&repo, &spec.worktree);
    }
    // Written here, in parallel, so the single log writer only links them.
    match crate::store::runs::write_task_logs(&repo, &outcome.transcript, &outcome.stderr) {
        Ok(logs) => outcome.logs = logs,
        Err(e) => {
            outcome.reason =
                Some(format!("{}; its transcript was not stored: {e:#}", outcome.reason.unwrap_or_default()))
        }
    }
    let _ = tx.send(Msg::Finished(Box::new(outcome)));
}

/// Times a task is run again after an error of ours (not its agent's).
const ENGINE_RETRIES: u32 = 3;

/// A usage error (a path in the way, a bad setting) does not go away by retrying.
fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<crate::error::Error>().is_some_and(|e| e.kind == crate::error::Kind::Usage))
}

/// Where a task's files are: its bookkeeping folder, the worktree's git directory, our git.
struct Places {
    td: TaskDir,
    admin: PathBuf,
    shadow: Shadow,
    /// The main working tree.
    main: PathBuf,
    /// An overlay worktree's layers.
    layers: Option<super::overlay::TaskLayers>,
}

impl Places {
    /// Where files meant for the worktree are written before anything runs there.
    fn files_dir(&self, spec: &TaskSpec) -> PathBuf {
        self.layers.as_ref().map(|l| l.upper()).unwrap_or_else(|| spec.worktree.clone())
    }

    /// Environment that mounts an overlay worktree for a command run in it.
    fn view_env(&self) -> Option<(String, String)> {
        self.layers.as_ref().map(|l| (super::overlay::ENV.to_string(), l.view(true).encode()))
    }
}

/// `start`: the commit the task starts from (an overlay worktree's layers are made for it).
fn places(repo: &Repo, spec: &TaskSpec, start: &str) -> Result<Places> {
    let td = TaskDir::new(repo, &spec.run, &spec.task);
    td.ensure()?;
    let admin = match td.admin() {
        Ok(a) if a.is_dir() => a,
        _ => {
            let a = worktree::admin_dir(repo, &spec.worktree)?;
            td.record_admin(&a)?;
            a
        }
    };
    let (layers, fresh) = match spec.overlay {
        true => {
            let l = super::overlay::TaskLayers::new(&spec.worktree);
            let fresh = l.prepare(repo, &admin, start)?;
            (Some(l), fresh)
        }
        false => (None, false),
    };
    let shadow = Shadow::open(repo, &td, &spec.worktree, Some(&admin))?.with_layers(layers.clone());
    if fresh {
        shadow.adopt_index(&admin, start)?;
    }
    Ok(Places { td, admin, shadow, main: repo.workdir.clone(), layers })
}

/// Move the task's branch from `old` to `new` (compare-and-swap), noting it in the worktree's
/// HEAD log as a move made through the worktree (see `guard::moved_from_outside`).
fn move_branch(repo: &Repo, spec: &TaskSpec, p: &Places, old: Option<&str>, new: &str, why: &str) -> Result<()> {
    if old == Some(new) {
        return Ok(());
    }
    let mut args = vec!["update-ref", "-m", why, spec.branch.as_str(), new];
    if let Some(o) = old {
        args.push(o);
    }
    proc::git(&repo.workdir, args)?;
    if let Some(o) = old {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let line = format!("{o} {new} git-parallel <git-parallel@localhost> {secs} +0000\t{why}\n");
        let logs = p.admin.join("logs");
        if std::fs::symlink_metadata(&logs).is_ok_and(|m| m.is_dir()) {
            if let Ok(mut f) = super::taskdir::open_append(&logs.join("HEAD")) {
                use std::io::Write;
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
    Ok(())
}

/// Put the task back at `start`: its worktree, our index and the worktree's own, its HEAD and
/// its branch. Before a retry, and when a task is run again from the start.
fn reset_task(repo: &Repo, spec: &TaskSpec, p: &Places, start: &str) -> Result<()> {
    p.shadow.reset_hard(start)?;
    super::taskdir::write_new(&p.admin.join("HEAD"), format!("ref: {}\n", spec.branch).as_bytes())?;
    p.shadow.publish_index(&p.admin, start)?;
    let old = crate::store::objects::read_ref(repo, &spec.branch)?.map(|id| id.to_string());
    move_branch(repo, spec, p, old.as_deref(), start, "git parallel: start over")
}

fn run_inner(
    repo: &Repo,
    spec: &TaskSpec,
    ctl: &Control,
    tx: &Sender<Msg>,
    transcript: &mut Vec<u8>,
) -> Result<Outcome> {
    let fail = |reason: String| Outcome::failed(&spec.task, reason);
    // Start from the base merged with the dependencies' results.
    let start = match merge::merge_all(repo, &spec.base, &spec.deps)? {
        Ok(c) => c,
        Err((dep, files)) => {
            return Ok(fail(format!("merging the result of dependency {dep} conflicts in: {}", files.join(", "))));
        }
    };
    // A worktree of this run's task from an earlier orchestrator life.
    let resuming = std::fs::symlink_metadata(spec.worktree.join(".git")).is_ok()
        && repo.gix.try_find_reference(spec.branch.as_str())?.is_some();
    worktree::create(
        repo,
        &spec.worktree,
        &spec.branch,
        &start,
        &format!("git parallel: run {} task {}", spec.run, spec.task),
        spec.sparse.as_deref(),
        spec.overlay,
    )?;
    crate::fault::point("worktree-created");
    let p = places(repo, spec, &start)?;
    // What a sandboxed agent of an earlier life committed is in its private object store.
    if let Err(why) = super::sandbox::import_objects(repo, &p.td)? {
        return Ok(fail(format!("the agent's git objects were not taken: {why}")));
    }
    // A retried task starts over: its branch and worktree go back to the start commit.
    if resuming && spec.fresh {
        reset_task(repo, spec, &p, &start)?;
    }
    // On resume the branch may already hold work; the start commit stays what the deps gave.
    if resuming && !spec.fresh {
        if let Some(out) = recovered(repo, spec, &p, &start)? {
            return Ok(out);
        }
    }
    super::taskdir::write_new(&p.td.prompt(), spec.prompt.as_bytes())?;
    // Prepared once per worktree: a marker, not "resuming", says whether it was (an engine
    // retry or a crash can come after the worktree was made and before setup ran).
    if std::fs::symlink_metadata(p.td.prepared()).is_err() || spec.fresh {
        let copied = worktree::copy_untracked(repo, &spec.copy, &p.files_dir(spec))?;
        super::taskdir::write_new(&p.td.copied(), copied.join("\0").as_bytes())?;
        if let Some(setup) = &spec.setup {
            let mut envs = vec![("GIT_PARALLEL_TASK", spec.task.as_str()), ("GIT_PARALLEL_RUN", spec.run.as_str())];
            let view = p.view_env();
            envs.extend(view.as_ref().map(|(k, v)| (k.as_str(), v.as_str())));
            let out = proc::shell(&spec.worktree, setup, &envs, Some(spec.timeout))?;
            if !out.ok() {
                let said = format!("{}\n{}", out.stdout_str(), out.stderr_str());
                return Ok(fail(format!("setup command failed ({}): {}", out.status, tail(&said, 600))));
            }
        }
        super::taskdir::write_new(&p.td.prepared(), b"")?;
    }
    let started = Instant::now();
    let snapshot = super::guard::snapshot(repo)?;
    let mut attempt_no = spec.prior_attempts;
    let mut retries_left = spec.retries;
    let mut session = spec.resume_session.clone();
    // Under the sandbox, where the agent's branch starts in its view: its own earlier commits
    // (an interrupted session going on), else the branch as we hold it.
    let mut view_tip = match &spec.sandbox {
        Some(_) if !spec.fresh => super::sandbox::read_tip(&p.td, &spec.task).ok().filter(|t| {
            merge::commit_id(repo, t)
                .and_then(|t| merge::is_ancestor(repo, merge::commit_id(repo, &start)?, t))
                .unwrap_or(false)
        }),
        _ => None,
    };
    let mut last: Attempt;
    // Fix rounds: the check's failure goes back to the agent, in its session where it keeps one.
    let mut round = 0u32;
    let mut prompt = spec.prompt.clone();
    // What a fresh agent (no session) gets in a fix round: the task, then the feedback.
    let mut full_prompt = spec.prompt.clone();
    let mut check_failed: Option<String> = None;
    let mut cost: Option<f64> = None;
    let mut turns: u64 = 0;
    'rounds: loop {
        loop {
            attempt_no += 1;
            let _ = tx.send(Msg::Event(Box::new(Event::Started {
                task: spec.task.clone(),
                attempt: attempt_no,
                worktree: spec.worktree.to_string_lossy().into_owned(),
                branch: spec.branch.clone(),
                start_commit: start.clone(),
                agent: Some(spec.profile.clone()),
            })));
            if p.layers.is_some() {
                let head = crate::store::objects::read_ref(repo, &spec.branch)?.map(|id| id.to_string());
                p.shadow.catch_up_index(&p.admin, head.as_deref().unwrap_or(&start))?;
            }
            if spec.sandbox.is_some() {
                let tip = match view_tip.take() {
                    Some(t) => t,
                    None => crate::store::objects::read_ref(repo, &spec.branch)?
                        .map(|id| id.to_string())
                        .unwrap_or_else(|| start.clone()),
                };
                super::sandbox::seed_view(&p.td, &p.admin, &spec.task, Some(&spec.branch), &tip)?;
            }
            let resume = session.as_deref().filter(|_| agent::supports_resume(&spec.profile));
            let feedback = (round > 0).then(|| p.td.feedback());
            last = attempt(spec, &p, &start, &prompt, feedback.as_deref(), resume, ctl, tx, transcript)?;
            // Every attempt and round costs: the task's cost is their sum, not the last one's.
            if let Some(c) = last.result.as_ref().and_then(|r| r.total_cost_usd) {
                cost = Some(cost.unwrap_or(0.0) + c);
                ctl.spent_at_least(&spec.task, cost.unwrap_or(0.0));
            }
            let n = last.result.as_ref().and_then(|r| r.num_turns).unwrap_or(last.turns);
            turns += n;
            if last.interrupted || last.timed_out || last.spawn_error.is_some() || last.condemned.is_some() {
                break;
            }
            let transient = match (&last.result, last.exit_code) {
                (Some(r), _) if r.is_error => parse::is_transient(r),
                (Some(_), Some(0)) => false,
                // Killed by a signal we did not send, or died without its final report: a crash.
                (None, code) => last.signal.is_some() || code != Some(0),
                (Some(_), _) => last.signal.is_some(),
            };
            if !last.failed() || !transient || retries_left == 0 || ctl.stop.load(Ordering::SeqCst) {
                break;
            }
            retries_left -= 1;
            let n = spec.retries - retries_left;
            let mut delay = backoff(spec.retry_base, n);
            if let Some(r) = last.result.as_ref().filter(|r| parse::is_rate_limit(r)) {
                // The API asked us to slow down: the whole profile waits for the reset it gave.
                let reset = parse::retry_after(r).unwrap_or(delay);
                delay = delay.max(reset);
                ctl.pause(&spec.profile, Instant::now() + delay);
                let _ =
                    tx.send(Msg::RateLimited { task: spec.task.clone(), profile: spec.profile.clone(), reset: delay });
            }
            let _ = tx.send(Msg::Event(Box::new(Event::Retried {
                task: spec.task.clone(),
                attempt: attempt_no,
                reason: describe(&last),
                delay_ms: delay.as_millis() as u64,
            })));
            // A fresh attempt starts from a clean worktree; a crashed attempt's session is not resumed.
            // What the crashed attempt committed under the sandbox is taken in and then dropped.
            // In a fix round the work of the rounds before stays: the agent starts again on it.
            if round == 0 {
                let _ = super::sandbox::import_objects(repo, &p.td)?;
                reset_task(repo, spec, &p, &start)?;
            }
            session = None;
            prompt = full_prompt.clone();
            let until = Instant::now() + delay;
            loop {
                // Another task of this profile may have pushed the reset further out.
                let until = ctl.paused_until(&spec.profile).map_or(until, |p| p.max(until));
                if Instant::now() >= until || ctl.stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
            }
            if ctl.stop.load(Ordering::SeqCst) {
                last.interrupted = true;
                break;
            }
        }
        // The check, once the agent ended on its own terms.
        let Some(command) = spec.check.as_deref() else { break };
        // Another attempt of the task won meanwhile (or a limit condemned it): no check and no
        // new round, whose turns would be wasted.
        if let Some(why) = ctl.condemned(&spec.task).filter(|_| last.condemned.is_none()) {
            last.condemned = Some(why);
        }
        if last.failed()
            || last.interrupted
            || last.timed_out
            || last.spawn_error.is_some()
            || last.condemned.is_some()
            || ctl.stop.load(Ordering::SeqCst)
        {
            break;
        }
        let c = run_check(spec, &p, command, round, ctl)?;
        let (passed, how, output, c_exit) = (c.passed, c.status(), c.output.clone(), c.exit_code);
        let _ = tx.send(Msg::Event(Box::new(Event::Checked(c))));
        if passed {
            break;
        }
        if ctl.stop.load(Ordering::SeqCst) {
            last.interrupted = true;
            break;
        }
        // The check cannot run as set up (a program missing, or under --sandbox a write it
        // needs refused): the agent cannot change that, so no round is spent on it.
        if let Some(why) = cannot_run(c_exit, &output, &spec.worktree, spec.sandbox.is_some()) {
            check_failed = Some(format!("check `{command}` could not run: {why}; no fix round was spent on it"));
            break;
        }
        let status = match how.strip_prefix("exit ") {
            Some(code) => format!("exited with {code}"),
            None if how == "stopped" => "was stopped (the task's timeout)".to_string(),
            None => format!("was {how}"),
        };
        if let Some(why) = ctl.condemned(&spec.task) {
            last.condemned = Some(why);
            break;
        }
        let spent = ctl.over_budget();
        if round >= spec.fix_rounds || spent {
            let rounds = match round {
                0 => String::new(),
                1 => " after 1 fix round".to_string(),
                n => format!(" after {n} fix rounds"),
            };
            let why = if spent { "the run's budget is spent, so no fix round: " } else { "" };
            check_failed = Some(format!("{why}check `{command}` {status}{rounds}: {}", tail(output.trim(), 600)));
            break;
        }
        round += 1;
        let feedback = format!(
            "The check `{command}` {status} in your working tree (fix round {round} of {}). The end of its output:\n\n```\n{}\n```\n\nFix the cause so that the check passes; keep the task's intent. The check runs again when you finish.\n",
            spec.fix_rounds,
            output.trim_end()
        );
        super::taskdir::write_new(&p.td.feedback(), feedback.as_bytes())?;
        full_prompt = format!("{}\n\n---\n\n{feedback}", spec.prompt);
        let sid = last.result.as_ref().and_then(|r| r.session_id.clone()).or(last.session_id.clone());
        match sid.filter(|_| agent::supports_resume(&spec.profile)) {
            // The session goes on: the agent knows the task and what it did; it gets the news.
            Some(s) => {
                session = Some(s);
                prompt = feedback;
            }
            None => {
                session = None;
                prompt = full_prompt.clone();
            }
        }
        retries_left = spec.retries;
        continue 'rounds;
    }
    let wall_ms = started.elapsed().as_millis() as u64;
    if let Some(Err(why)) = p.layers.as_ref().map(|l| l.base_commit()) {
        return Ok(fail(format!("{why}; the task's work is in {}", p.files_dir(spec).display())));
    }
    // A sandboxed agent's commits are in its private object store until checked and taken in.
    let forged = super::sandbox::import_objects(repo, &p.td)?.err();
    if std::fs::symlink_metadata(&spec.worktree).map(|m| !m.is_dir()).unwrap_or(true) {
        let trespass = super::guard::check(repo, &snapshot, &start, &start)?;
        return Ok(fail(format!(
            "the agent removed its own worktree {}; nothing of its work could be taken{}",
            spec.worktree.display(),
            if trespass.is_empty() { String::new() } else { format!(" (it also {})", trespass.join("; ")) }
        )));
    }
    // In an overlay worktree the folder itself cannot go; `rm -rf` of it leaves whiteouts for
    // everything, the `.git` link among them.
    if p.layers.as_ref().is_some_and(|l| !std::fs::symlink_metadata(l.upper().join(".git")).is_ok_and(|m| m.is_file()))
    {
        return Ok(fail(format!(
            "the agent removed its own worktree {} (its .git link with it); nothing of its work was taken",
            spec.worktree.display()
        )));
    }
    // The agent's HEAD and branch, read as data.
    let tip = agent_tip(repo, spec, &p);
    // Whatever the agent did outside its branch is undone and named, however it ended.
    let work = tip.as_ref().ok().cloned().unwrap_or_else(|| start.clone());
    let trespass = super::guard::check(repo, &snapshot, &start, &work)?;
    let r = last.result.clone().unwrap_or_default();
    let metrics = Metrics {
        turns: (turns > 0).then_some(turns),
        cost_usd: cost,
        duration_ms: r.duration_ms,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        session_id: r.session_id.clone().or(last.session_id.clone()),
        model: last.model.clone(),
        // Measured by the orchestrator's governor, which adds them.
        cpu_cores: None,
        peak_rss: None,
        tool_errors: (last.tool_errors > 0).then_some(last.tool_errors),
        last_tool_error: last.last_tool_error.clone(),
    };
    // Only a tail: an agent may have printed gigabytes.
    let stderr = super::taskdir::read_tail(&p.td.stderr(), (64 << 10) + 1024);
    let mut out = Outcome {
        task: spec.task.clone(),
        status: TaskStatus::Failed,
        commit: None,
        reason: None,
        exit_code: last.exit_code,
        metrics,
        files_changed: Vec::new(),
        wall_ms,
        transcript: Vec::new(),
        stderr: stderr.clone(),
        logs: Vec::new(),
    };
    if let Some(e) = last.spawn_error {
        out.reason = Some(e);
        return Ok(out);
    }
    if !trespass.is_empty() {
        out.reason = Some(format!(
            "the agent changed the repository outside its branch: {}; its result was not taken",
            trespass.join("; ")
        ));
        return Ok(out);
    }
    if let Some(why) = forged {
        out.reason = Some(format!("the agent's git objects were not taken: {why}"));
        return Ok(out);
    }
    if spec.sandbox.is_none() {
        if let Some(moved) = super::guard::moved_from_outside(&p.admin, &work) {
            out.reason = Some(format!(
                "the task's branch {} was moved from outside its worktree while the agent ran ({moved}; another agent or process), so it may hold commits that are not this agent's; its result was not taken",
                layout::short(&spec.branch)
            ));
            return Ok(out);
        }
    }
    if let Some(why) = last.condemned {
        out.reason = Some(why);
        return Ok(out);
    }
    if last.interrupted {
        out.status = TaskStatus::Interrupted;
        out.reason = Some("interrupted; the worktree keeps the agent's work so far".into());
        return Ok(out);
    }
    if last.timed_out {
        out.status = TaskStatus::TimedOut;
        out.reason = Some(format!("timed out after {}", crate::ui::millis(spec.timeout.as_millis() as u64)));
        return Ok(out);
    }
    if last.failed() {
        let mut reason = describe(&last);
        // The agent's own last words say more than an exit status.
        if let Some(line) = last_words(&stderr) {
            if !reason.contains(&line) {
                reason = format!("{reason}: {line}");
            }
        }
        out.reason = Some(reason);
        return Ok(out);
    }
    let tip = match tip {
        Ok(t) => t,
        Err(why) => {
            out.reason = Some(format!("{why}; its work was not taken"));
            return Ok(out);
        }
    };
    match take_result(repo, spec, &p, &start, &tip)? {
        Err(why) => out.reason = Some(why),
        Ok((commit, files)) => {
            crate::fault::point("task-committed");
            out.files_changed = files;
            match commit {
                // The work stays on the task's branch for a look; it is not a result.
                Some(_) if check_failed.is_some() => out.reason = check_failed,
                Some(c) => {
                    out.status = TaskStatus::Succeeded;
                    out.commit = Some(c);
                }
                None => {
                    out.status = TaskStatus::NoChanges;
                    out.reason = Some("the agent finished without changing anything".into());
                }
            }
        }
    }
    Ok(out)
}

/// The commit the agent's branch ended at, read as data: from its view under the sandbox, from
/// the repository otherwise. Err when its HEAD left the branch or the branch names no commit.
fn agent_tip(repo: &Repo, spec: &TaskSpec, p: &Places) -> std::result::Result<String, String> {
    let head = if spec.sandbox.is_some() {
        super::sandbox::read_head(&p.td)
    } else {
        super::taskdir::read_small(&p.admin.join("HEAD"), 1024)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
    };
    let head = head.unwrap_or_default();
    if head != format!("ref: {}", spec.branch) {
        return Err(format!(
            "the agent moved the worktree off {} (HEAD is {})",
            layout::short(&spec.branch),
            crate::ui::sanitize(head.strip_prefix("ref: ").map(layout::short).unwrap_or("detached"))
        ));
    }
    if spec.sandbox.is_some() {
        return super::sandbox::read_tip(&p.td, &spec.task);
    }
    match crate::store::objects::read_ref(repo, &spec.branch) {
        Ok(Some(id)) => Ok(id.to_string()),
        Ok(None) => Err("the agent deleted its branch".into()),
        Err(e) => Err(format!("its branch cannot be read: {e:#}")),
    }
}

/// A result taken (its commit, None when nothing changed, and the files it changed), or why not.
type Taken = std::result::Result<(Option<String>, Vec<String>), String>;

/// The one check every result passes, however it was reached (the agent's end, a resume that
/// finds it, a retry): the agent's branch `tip` must be a commit descending from `start`; what
/// the worktree holds beyond it is committed by our own git (never reading the agent's
/// configuration); files `parallel.copy` brought in stay out of every commit; then the task's
/// branch is moved to the result, compare-and-swap. Ok((None, _)) when nothing changed.
fn take_result(repo: &Repo, spec: &TaskSpec, p: &Places, start: &str, tip: &str) -> Result<Taken> {
    let Ok(tip_id) = merge::commit_id(repo, tip) else {
        return Ok(Err(format!(
            "the agent's branch names {}, which is not a commit here; its result was not taken",
            short(tip)
        )));
    };
    // Integration merges the result with its start as the base: work that does not descend
    // from the start (a reset behind it, a rewritten history) would silently revert the base.
    if !merge::is_ancestor(repo, merge::commit_id(repo, start)?, tip_id)? {
        return Ok(Err(format!(
            "the agent's branch no longer descends from the commit it started from ({}): it reset or rewrote history; its result was not taken",
            short(start)
        )));
    }
    let copied: Vec<String> = super::taskdir::read_small(&p.td.copied(), 16 << 20)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let tree = p.shadow.tree(tip, &copied)?;
    let tip_tree = repo.gix.find_commit(merge::commit_id(repo, tip)?)?.tree_id()?.to_string();
    let result = if tree == tip_tree {
        tip.to_string()
    } else {
        let message = format!(
            "{}\n\nWork of git-parallel task {} in run {}.\n\n{}: {}\n{}: {}\n",
            spec.title,
            spec.task,
            spec.run,
            layout::TRAILER_RUN,
            spec.run,
            layout::TRAILER_TASK,
            spec.task
        );
        p.shadow.commit(&tree, tip, &message)?
    };
    if result == start {
        return Ok(Ok((None, Vec::new())));
    }
    // Any commit of the task's history that holds them would carry them into integration.
    if !copied.is_empty() {
        let range = format!("{start}..{result}");
        let mut args = vec!["log", "--format=", "--name-only", range.as_str(), "--"];
        args.extend(copied.iter().map(|s| s.as_str()));
        let mut leaked: Vec<String> = proc::git(&repo.workdir, args)?.lines().map(str::to_string).collect();
        leaked.sort();
        leaked.dedup();
        leaked.retain(|l| !l.is_empty());
        if !leaked.is_empty() {
            return Ok(Err(format!(
                "the agent committed {}, brought in by parallel.copy and never meant for a commit; its result was not taken",
                crate::ui::sanitize(&leaked.join(", "))
            )));
        }
    }
    // Both sides of a rename count: each path is one another task may touch.
    let files = crate::store::objects::tree_changes(&repo.gix, start, &result)?
        .into_iter()
        .map(|(p, _)| String::from_utf8_lossy(&p).into_owned())
        .collect();
    let old = crate::store::objects::read_ref(repo, &spec.branch)?.map(|id| id.to_string());
    move_branch(repo, spec, p, old.as_deref(), &result, "git parallel: task result")?;
    if p.layers.is_none() {
        // An overlay worktree's index follows when an agent works there again (`attempt`).
        p.shadow.publish_index(&p.admin, &result)?;
    }
    Ok(Ok((Some(result), files)))
}

fn short(oid: &str) -> &str {
    &oid[..12.min(oid.len())]
}

/// On resume: a task whose result commit (with our trailers) is already on its branch and
/// whose worktree holds nothing beyond it finished before the orchestrator stopped; it is
/// recorded after the same check as any result, not run again.
fn recovered(repo: &Repo, spec: &TaskSpec, p: &Places, start: &str) -> Result<Option<Outcome>> {
    let Some(head) = crate::store::objects::read_ref(repo, &spec.branch)?.map(|id| id.to_string()) else {
        return Ok(None);
    };
    if head == start || p.shadow.dirty(&head)? {
        return Ok(None);
    }
    let msg = proc::git(&repo.workdir, ["log", "-1", "--format=%B", &head])?;
    let ours = msg.lines().any(|l| l == format!("{}: {}", layout::TRAILER_RUN, spec.run))
        && msg.lines().any(|l| l == format!("{}: {}", layout::TRAILER_TASK, spec.task));
    if !ours {
        return Ok(None);
    }
    let mut out = Outcome { task: spec.task.clone(), status: TaskStatus::Failed, ..Default::default() };
    match take_result(repo, spec, p, start, &head)? {
        Err(why) => out.reason = Some(why),
        Ok((None, _)) => return Ok(None),
        Ok((Some(commit), files)) => {
            out.status = TaskStatus::Succeeded;
            out.commit = Some(commit);
            out.files_changed = files;
            out.reason = Some("recovered: its result was committed before the orchestrator stopped".into());
        }
    }
    Ok(Some(out))
}

/// Exponential backoff with jitter: base * 2^(n-1), times a random factor in [0.5, 1.5), at most 5 min.
pub fn backoff(base: Duration, n: u32) -> Duration {
    use rand::Rng;
    let exp = base.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    let jitter: f64 = rand::rng().random_range(0.5..1.5);
    exp.mul_f64(jitter).min(Duration::from_secs(300))
}

fn describe(a: &Attempt) -> String {
    if let Some(r) = &a.result {
        if r.is_error {
            let status = r.api_error_status.map(|s| format!(" (API status {s})")).unwrap_or_default();
            return format!(
                "agent reported an error{status}: {}",
                tail(r.text.as_deref().unwrap_or(r.subtype.as_deref().unwrap_or("error")), 300)
            );
        }
    }
    match (a.signal, a.exit_code) {
        (Some(sig), _) => format!("agent was killed by signal {sig}"),
        (None, Some(code)) if a.result.is_none() => format!("agent exited with status {code} without a final result"),
        (None, Some(code)) => format!("agent exited with status {code}"),
        (None, None) => "agent ended without an exit status".into(),
    }
}

/// The last line of `stderr` that says something (not blank, not only punctuation), cut to a
/// readable length.
fn last_words(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().map(str::trim).find(|l| l.chars().filter(|c| c.is_alphanumeric()).count() >= 3)?;
    Some(tail(line, 200))
}

fn tail(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.len() <= n {
        return s.to_string();
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

/// Lines of the agent's output waiting to be read, at most.
const LINE_QUEUE: usize = 64;
/// Most bytes of an agent's stderr kept on disk; past it only the last `STDERR_TAIL` bytes are
/// kept, after a note of how much was left out.
const MAX_STDERR: u64 = 16 << 20;
const STDERR_TAIL: usize = 64 << 10;

/// Copy the agent's stderr to `file`, at most `cap` bytes, then only a tail.
fn copy_capped(mut from: impl Read, mut file: std::fs::File, cap: u64) {
    use std::io::Write;
    let mut written = 0u64;
    let mut dropped = 0u64;
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let room = cap.saturating_sub(written).min(n as u64) as usize;
        if room > 0 && file.write_all(&buf[..room]).is_ok() {
            written += room as u64;
        }
        if room < n {
            dropped += (n - room) as u64;
            tail.extend(&buf[room..n]);
            while tail.len() > STDERR_TAIL {
                tail.pop_front();
            }
        }
    }
    if dropped > 0 {
        let kept = tail.len() as u64;
        let _ = write!(file, "\n[git-parallel: {} bytes of stderr left out]\n", dropped - kept);
        let _ = file.write_all(tail.make_contiguous());
    }
}

/// Read lines from the agent, cutting overlong ones.
fn read_lines(reader: impl Read, tx: SyncSender<Vec<u8>>) {
    let mut reader = std::io::BufReader::with_capacity(64 << 10, reader);
    let mut line = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                if tx.send(std::mem::take(&mut line)).is_err() {
                    return;
                }
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(line);
    }
}

#[allow(clippy::too_many_arguments)]
/// `program args` as the task's agent runs: in the sandbox when the run has one (`envs` gains
/// what the sandbox needs), as is otherwise.
fn wrapped(
    spec: &TaskSpec,
    p: &Places,
    program: &str,
    args: &[String],
    envs: &mut Vec<(String, String)>,
) -> Result<(String, Vec<String>)> {
    let Some(common) = &spec.sandbox else { return Ok((program.to_string(), args.to_vec())) };
    let prog = proc::which(program).map(|p| p.to_string_lossy().into_owned()).unwrap_or(program.to_string());
    let tmp = p.td.agent_state().join("tmp");
    super::taskdir::plain_dir(&p.td.agent(), &tmp)?;
    envs.extend(super::sandbox::object_env(&p.td, common));
    let l = super::sandbox::Layout {
        worktree: &spec.worktree,
        admin: &p.admin,
        main: &p.main,
        extra: &spec.sandbox_read,
        keep_env: &spec.sandbox_env,
        common,
        task_dir: &p.td,
        run: &spec.run,
        tmpdir: &tmp,
    };
    super::sandbox::wrap(&prog, args, &l, envs)
}

/// Most of a check's output kept in the run's log and handed to the agent.
const CHECK_OUTPUT: usize = 4000;

/// What a check that exited 127 (the shell's "command not found") could not find, when it is
/// not the agent's to fix: a program outside the worktree, or a name not on its PATH. `None`
/// for any other failure, or a missing program inside the worktree (a script the agent may
/// have moved), which a fix round may mend.
fn cannot_run(exit: Option<i32>, output: &str, worktree: &Path, sandboxed: bool) -> Option<String> {
    missing_program(exit, output, worktree, sandboxed).or_else(|| sandboxed.then(|| read_only(output)).flatten())
}

/// Under `--sandbox`, a check refused a write outside its worktree ("Read-only file system"):
/// most often a cache or download it needs (a package registry), which the sandbox keeps
/// read-only; it can be filled before the agent runs, outside the sandbox.
fn read_only(output: &str) -> Option<String> {
    let lines: Vec<&str> = output.lines().collect();
    let at = lines.iter().position(|l| l.contains("Read-only file system"))?;
    // With the lines before it, which name the path (cargo: `failed to open ...`, `Caused by:`).
    let said: Vec<&str> = lines[at.saturating_sub(3)..=at].iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    Some(format!(
        "it wrote outside its worktree, which --sandbox keeps read-only ({}); what it needs there (a package cache, say) can be filled before the agent runs, outside the sandbox, with `git config parallel.setup CMD` (`cargo fetch`, `npm ci`)",
        tail(&said.join(" "), 300)
    ))
}

fn missing_program(exit: Option<i32>, output: &str, worktree: &Path, sandboxed: bool) -> Option<String> {
    static NOT_FOUND: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    if exit != Some(127) {
        return None;
    }
    // dash: `sh: 1: NAME: not found`; bash: `bash: line 1: NAME: command not found`.
    let re = NOT_FOUND.get_or_init(|| {
        regex::Regex::new(r"(?m)^\S*sh: (?:line )?\d+: (.+?): (?:command )?not found\s*$").expect("valid regex")
    });
    let name = re.captures_iter(output).last()?.get(1)?.as_str().to_string();
    let path = Path::new(&name);
    if !path.is_absolute() {
        return match name.contains('/') {
            true => None,
            false => Some(format!("`{name}` is not on its PATH")),
        };
    }
    if path.starts_with(worktree) {
        return None;
    }
    let mut why = format!("`{name}` is not found");
    if sandboxed && path.exists() {
        why.push_str(" inside the sandbox (it is on this machine, where --sandbox hides it)");
        let show: Vec<String> = super::sandbox::lines_to_show(path).iter().map(|l| format!("`{l}`")).collect();
        if !show.is_empty() {
            why.push_str(&format!(": let the sandbox show it with {}", show.join(" and ")));
        }
    }
    Some(why)
}

/// Run the task's check in its worktree, contained as its agent is (in the sandbox too: it
/// runs the agent's code), with the task's timeout; stopped by Ctrl-C and `cancel`.
fn run_check(spec: &TaskSpec, p: &Places, command: &str, round: u32, ctl: &Control) -> Result<Check> {
    let started = Instant::now();
    let mut envs = vec![
        ("GIT_PARALLEL_RUN".to_string(), spec.run.clone()),
        ("GIT_PARALLEL_TASK".to_string(), spec.task.clone()),
        ("GIT_PARALLEL_CHECK_ROUND".to_string(), round.to_string()),
    ];
    envs.extend(p.view_env());
    let (program, args) = wrapped(spec, p, "sh", &["-c".to_string(), command.to_string()], &mut envs)?;
    let stop = proc::Stop { stop: &ctl.stop, kill: &ctl.kill, grace: spec.grace };
    let out = proc::contained_stoppable(&program, &args, &spec.worktree, &envs, Some(spec.timeout), Some(stop))?;
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.stderr.is_empty() {
        if !said.is_empty() && !said.ends_with('\n') {
            said.push('\n');
        }
        said.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // Stopped by us: Ctrl-C, cancel, or the timeout (not the check's own doing).
    let stopped = stop.requested() || started.elapsed() >= spec.timeout;
    Ok(Check {
        task: spec.task.clone(),
        round,
        passed: out.ok() && !stopped,
        command: command.to_string(),
        exit_code: out.status.code().filter(|_| !stopped),
        signal: std::os::unix::process::ExitStatusExt::signal(&out.status).filter(|_| !stopped),
        output: tail(&said, CHECK_OUTPUT),
        wall_ms: started.elapsed().as_millis() as u64,
    })
}

#[allow(clippy::too_many_arguments)]
fn attempt(
    spec: &TaskSpec,
    p: &Places,
    start: &str,
    prompt: &str,
    feedback: Option<&Path>,
    resume: Option<&str>,
    ctl: &Control,
    tx: &Sender<Msg>,
    transcript: &mut Vec<u8>,
) -> Result<Attempt> {
    let prompt_file = p.td.prompt();
    super::taskdir::write_new(&prompt_file, prompt.as_bytes())?;
    let state = p.td.agent_state();
    let input = agent::TaskInput {
        prompt,
        prompt_file: &prompt_file,
        worktree: &spec.worktree,
        task: &spec.task,
        resume_session: resume,
        state: &state,
        sandboxed: spec.sandbox.is_some(),
        max_turns: spec.max_turns,
    };
    let inv = agent::invocation(&spec.profile, spec.template.as_deref(), &input)?;
    let mut a = Attempt::default();
    if proc::which(&inv.program).is_none() {
        a.spawn_error =
            Some(format!("agent `{}` ({} profile) is not installed or not on PATH", inv.program, spec.profile));
        return Ok(a);
    }
    inv.prepare(&p.td.agent())?;
    // Made for every profile: its presence says the agent's session may be continued later
    // (a conflict handed back), also where the CLI keeps its sessions in the user's home.
    super::taskdir::plain_dir(&p.td.agent(), &state)?;
    let mut envs = vec![
        ("GIT_PARALLEL_RUN".to_string(), spec.run.clone()),
        ("GIT_PARALLEL_TASK".to_string(), spec.task.clone()),
        ("GIT_PARALLEL_WORKTREE".to_string(), spec.worktree.to_string_lossy().into_owned()),
        // For templates that go through a shell: "$GIT_PARALLEL_PROMPT_FILE" is never parsed
        // as shell syntax, where a `{prompt}` substituted into `sh -c '…'` would be.
        ("GIT_PARALLEL_PROMPT_FILE".to_string(), prompt_file.to_string_lossy().into_owned()),
        // 1 for the task itself, N for its attempt `task@N`.
        ("GIT_PARALLEL_ATTEMPT".to_string(), crate::plan::attempt_of(&spec.task).1.to_string()),
    ];
    if let Some(f) = feedback {
        envs.push(("GIT_PARALLEL_FEEDBACK".to_string(), f.to_string_lossy().into_owned()));
    }
    if let Some(n) = spec.max_turns {
        envs.push(("GIT_PARALLEL_MAX_TURNS".to_string(), n.to_string()));
    }
    envs.extend(inv.envs.iter().cloned());
    envs.extend(p.view_env());
    if let Some(most) = spec.max_processes {
        // Room for the supervisor, its init and bubblewrap's own, so that the count can see
        // the breach before the kernel stops it growing.
        envs.push((super::contain::MAX_PROCS_ENV.to_string(), (most + 8).to_string()));
    }
    // An agent's own commits must not start `gc --auto` under the run either.
    let mut git_config = inv.git_config.clone();
    if spec.sparse.is_some() {
        git_config.extend(worktree::SPARSE_CONFIG.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    envs.extend(proc::agent_config_env(&git_config));
    let (program, args) = wrapped(spec, p, &inv.program, &inv.args, &mut envs)?;
    let stderr_file = super::taskdir::open_append(&p.td.stderr())?;
    let mut child = match proc::Contained::spawn(
        &program,
        &args,
        &spec.worktree,
        &envs,
        std::process::Stdio::piped(),
        inv.stdin.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => {
            a.spawn_error = Some(format!("{e:#}"));
            return Ok(a);
        }
    };
    ctl.pids.lock().unwrap_or_else(|e| e.into_inner()).insert(spec.task.clone(), child.pid);
    let mut live = super::taskdir::open_append(&p.td.transcript()).ok();
    // Bounded: an agent printing faster than we read waits on its pipe instead of growing our
    // memory (3 GiB of short lines took an unbounded queue to 3.4 GB).
    let (ltx, lrx): (SyncSender<Vec<u8>>, Receiver<Vec<u8>>) = std::sync::mpsc::sync_channel(LINE_QUEUE);
    // Not joined: were a process to escape containment with the pipe, we must not wait on it.
    if let Some(stdout) = child.child.stdout.take() {
        std::thread::spawn(move || read_lines(stdout, ltx));
    }
    let (etx, erx) = std::sync::mpsc::channel::<()>();
    if let Some(stderr) = child.child.stderr.take() {
        std::thread::spawn(move || {
            copy_capped(stderr, stderr_file, MAX_STDERR);
            let _ = etx.send(());
        });
    }
    let deadline = Instant::now() + spec.timeout;
    let mut term_sent: Option<Instant> = None;
    let mut kill_sent: Option<Instant> = None;
    let mut exited: Option<(Instant, std::process::ExitStatus)> = None;
    let mut eof = false;
    // Progress is recorded as a commit in the run's log: at most one per PROGRESS_EVERY per task
    // (an agent working for an hour must not leave thousands of commits), except the first
    // sight of a session id, which resume needs at once.
    let mut last_progress = Instant::now() - PROGRESS_EVERY;
    let mut session_reported = false;
    let (mut last_tool, mut files, mut cost): (Option<String>, Vec<String>, Option<f64>) = (None, Vec::new(), None);
    let mut dirty = false;
    let mut parser = parse::Parser::new(inv.format);
    loop {
        match lrx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if transcript.len() + line.len() < MAX_TRANSCRIPT {
                    transcript.extend_from_slice(&line);
                    transcript.push(b'\n');
                    // Also beside the worktree, for `git parallel logs --follow` while it runs.
                    if let Some(f) = live.as_mut() {
                        use std::io::Write;
                        let _ = f.write_all(&line).and_then(|_| f.write_all(b"\n"));
                    }
                }
                let text = String::from_utf8_lossy(&line);
                for u in parser.line(&text) {
                    dirty = true;
                    match u {
                        Update::Init { session_id, model } => {
                            a.session_id = session_id.or(a.session_id.take());
                            a.model = model;
                        }
                        Update::Turn => a.turns += 1,
                        Update::ToolError { text } => {
                            a.tool_errors += 1;
                            a.last_tool_error = Some(text);
                        }
                        Update::Tool { name, file } => {
                            last_tool = Some(name);
                            if let Some(f) = file {
                                let rel = Path::new(&f)
                                    .strip_prefix(&spec.worktree)
                                    .map(|p| p.to_string_lossy().into_owned())
                                    .unwrap_or(f);
                                if !files.contains(&rel) {
                                    files.push(rel);
                                }
                            }
                        }
                        Update::Result(r) => {
                            cost = r.total_cost_usd;
                            if r.session_id.is_some() {
                                a.session_id = r.session_id.clone();
                            }
                            a.result = Some(r);
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                eof = true;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let new_session = a.session_id.is_some() && !session_reported;
        if dirty && (last_progress.elapsed() >= PROGRESS_EVERY || new_session) {
            session_reported |= a.session_id.is_some();
            dirty = false;
            last_progress = Instant::now();
            let _ = tx.send(Msg::Event(Box::new(Event::Progress {
                task: spec.task.clone(),
                turns: a.turns,
                last_tool: last_tool.clone(),
                files: std::mem::take(&mut files),
                cost_usd: cost,
                session_id: a.session_id.clone(),
            })));
        }
        let now = Instant::now();
        if exited.is_none() {
            if let Some(st) = child.try_wait() {
                exited = Some((now, st));
            }
        }
        match exited {
            // Everything the agent started died with it; read what is left in the pipe, but
            // never wait on it for long.
            Some((at, _)) if eof || now.duration_since(at) >= Duration::from_secs(2) => break,
            Some(_) => continue,
            None => {}
        }
        if ctl.kill.load(Ordering::SeqCst) && kill_sent.is_none() {
            a.interrupted = true;
            child.kill();
            kill_sent = Some(now);
        } else if let Some(why) = a.condemned.is_none().then(|| ctl.condemned(&spec.task)).flatten() {
            // A fork bomb or the like: no grace period.
            a.condemned = Some(why);
            child.kill();
            kill_sent = Some(now);
        } else if ctl.stop.load(Ordering::SeqCst) && term_sent.is_none() {
            a.interrupted = true;
            child.terminate();
            term_sent = Some(now);
        } else if now >= deadline && term_sent.is_none() {
            a.timed_out = true;
            child.terminate();
            term_sent = Some(now);
        }
        if kill_sent.is_none() && term_sent.is_some_and(|t| now.duration_since(t) >= spec.grace) {
            child.kill();
            kill_sent = Some(now);
        }
        // The supervisor kills within milliseconds; if it does not answer, it goes too.
        if kill_sent.is_some_and(|t| now.duration_since(t) >= Duration::from_secs(5)) {
            child.kill_supervisor();
        }
    }
    // The end of its stderr is read next: give the copy a moment to finish, never longer.
    let _ = erx.recv_timeout(Duration::from_secs(1));
    if dirty || !files.is_empty() {
        let _ = tx.send(Msg::Event(Box::new(Event::Progress {
            task: spec.task.clone(),
            turns: a.turns,
            last_tool,
            files,
            cost_usd: cost,
            session_id: a.session_id.clone(),
        })));
    }
    ctl.pids.lock().unwrap_or_else(|e| e.into_inner()).remove(&spec.task);
    if let Some((_, status)) = exited {
        use std::os::unix::process::ExitStatusExt;
        a.exit_code = status.code();
        a.signal = status.signal();
    }
    if a.timed_out || a.interrupted || a.condemned.is_some() {
        // Our own signal, not a crash.
        a.signal = None;
    }
    let tracked = |rel: &str| p.shadow.tracked(start, rel);
    agent::remove_leftovers(&inv, &p.files_dir(spec), &tracked)?;
    Ok(a)
}

/// How an agent run in place ended: whether well, and what it took.
#[derive(Debug, Default)]
pub struct InPlace {
    pub ok: bool,
    pub turns: u64,
    pub cost_usd: Option<f64>,
}

/// Run the agent once in an existing worktree, detached at `spec.base` (no worktree made, no
/// result taken): used to resolve merge conflicts. Contained, and sandboxed under
/// `spec.sandbox`, like any task.
pub fn run_agent_in_place(repo: &Repo, spec: &TaskSpec, ctl: &Control) -> Result<InPlace> {
    let p = places(repo, spec, &spec.base)?;
    super::taskdir::write_new(&p.td.prompt(), spec.prompt.as_bytes())?;
    if spec.sandbox.is_some() {
        super::sandbox::seed_view(&p.td, &p.admin, &spec.task, None, &spec.base)?;
    }
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut transcript = Vec::new();
    // The task's own session goes on where the CLI keeps one (spec.resume_session).
    let resume = spec.resume_session.as_deref().filter(|_| agent::supports_resume(&spec.profile));
    let a = attempt(spec, &p, &spec.base, &spec.prompt, None, resume, ctl, &tx, &mut transcript)?;
    // Its objects are not needed (it was told not to commit); a forged one stays out.
    let _ = super::sandbox::import_objects(repo, &p.td)?;
    Ok(InPlace {
        ok: a.spawn_error.is_none() && !a.timed_out && !a.interrupted && !a.failed(),
        turns: a.result.as_ref().and_then(|r| r.num_turns).unwrap_or(a.turns),
        cost_usd: a.result.as_ref().and_then(|r| r.total_cost_usd),
    })
}

/// Run `spec.check` in `spec.worktree` as a task's check runs (contained, sandboxed with the
/// run); `None` when the spec has no check.
pub fn check_in_place(repo: &Repo, spec: &TaskSpec, round: u32, ctl: &Control) -> Result<Option<Check>> {
    let Some(command) = spec.check.as_deref() else { return Ok(None) };
    let p = places(repo, spec, &spec.base)?;
    run_check(spec, &p, command, round, ctl).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_read_from_dash_and_bash_and_left_to_the_agent_inside_the_worktree() {
        let wt = Path::new("/work/repo.parallel/1/a");
        let dash = "collecting...\n/usr/bin/sh: 1: /opt/venv/bin/python: not found\n";
        assert_eq!(missing_program(Some(127), dash, wt, false).unwrap(), "`/opt/venv/bin/python` is not found");
        let bash = "bash: line 1: pytest: command not found\n";
        assert_eq!(missing_program(Some(127), bash, wt, false).unwrap(), "`pytest` is not on its PATH");
        // Another exit, or a failure that names no program, is the agent's to look at.
        assert_eq!(missing_program(Some(1), dash, wt, false), None);
        assert_eq!(missing_program(Some(127), "make: *** [test] Error 127\n", wt, false), None);
        // A script of the worktree's (relative, or under it) may be the agent's doing.
        assert_eq!(missing_program(Some(127), "sh: 1: ./scripts/test.sh: not found\n", wt, false), None);
        let inside = "sh: 1: /work/repo.parallel/1/a/bin/t: not found\n";
        assert_eq!(missing_program(Some(127), inside, wt, false), None);
    }

    #[test]
    fn a_write_the_sandbox_refused_is_read_with_the_line_before_it_and_only_in_the_sandbox() {
        let wt = Path::new("/work/repo.parallel/1/a");
        let cargo = "error: failed to open `/home/u/.cargo/registry/cache/x.crate`\n\nCaused by:\n  Read-only file system (os error 30)\n";
        let why = cannot_run(Some(101), cargo, wt, true).unwrap();
        assert!(why.contains("(error: failed to open `/home/u/.cargo/registry/cache/x.crate` Caused by: Read-only file system (os error 30))"), "{why}");
        assert!(why.contains("git config parallel.setup CMD"), "{why}");
        assert_eq!(cannot_run(Some(101), cargo, wt, false), None);
        assert_eq!(cannot_run(Some(1), "assertion failed: 1 == 2\n", wt, true), None);
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let base = Duration::from_millis(100);
        for n in 1..6 {
            let d = backoff(base, n);
            let nominal = 100.0 * 2f64.powi(n as i32 - 1);
            let ms = d.as_millis() as f64;
            assert!(ms >= nominal * 0.5 - 1.0 && ms <= nominal * 1.5 + 1.0, "attempt {n}: {ms} vs {nominal}");
        }
        assert!(backoff(Duration::from_secs(60), 20) <= Duration::from_secs(300));
    }
}
