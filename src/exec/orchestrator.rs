//! The live scheduler: dispatch ready tasks (all dependencies succeeded) by longest remaining
//! path, within the governor's capacity, no phase barriers. The orchestrator thread is the one
//! writer of the run's event log; workers report over a channel.

use super::task::{self, Control, Msg, Outcome, TaskSpec};
use super::worktree;
use crate::plan::Plan;
use crate::repo::Repo;
use crate::schedule::{governor, simulate};
use crate::store::layout;
use crate::store::notes;
use crate::store::runs::{Event, RunLog, RunState, RunStatus, TaskStatus};
use anyhow::Result;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run the tasks of a plan.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: governor::Limits,
    pub agent: String,
    pub template: Option<String>,
    pub timeout: Duration,
    pub grace: Duration,
    pub retries: u32,
    pub retry_base: Duration,
    pub worktree_dir: Option<PathBuf>,
    pub setup: Option<String>,
    /// Must pass in a task's worktree once its agent ends (`--check`, `parallel.check`).
    pub check: Option<String>,
    /// Times a failed check goes back to the agent.
    pub fix_rounds: u32,
    /// US dollars the run may spend; `budget_hard`: running agents stop too once spent.
    pub budget: Option<f64>,
    pub budget_hard: bool,
    pub copy: Vec<String>,
    pub sandbox: bool,
    /// Extra paths a sandboxed agent sees read-only (`parallel.sandboxRead`).
    pub sandbox_read: Vec<PathBuf>,
    /// Extra variables a sandboxed agent keeps (`parallel.sandboxEnv`).
    pub sandbox_env: Vec<String>,
    /// Sparse worktrees holding only the task's directories.
    pub sparse: bool,
    /// Keep a succeeded task's worktree (default: removed once its result is recorded).
    pub keep_worktrees: bool,
    /// How worktrees are made (`parallel.worktree`).
    pub worktrees: super::overlay::Mode,
    /// Ignored folders of the main worktree offered warm to every task (`parallel.warm`).
    pub warm: Vec<String>,
    /// Benchmark baseline: a wave starts only when the previous one ended.
    pub phase_barrier: bool,
    /// Every attempt of a task finishes and the best wins (a task's `attempts_all:` wins).
    pub attempts_all: bool,
    /// Who runs a ready task: a thread here, or a cluster job.
    pub executor: super::executor::Executor,
}

/// Something for the user to see; the UI decides how.
pub trait Observer {
    fn event(&mut self, event: &Event, state: &RunState);
    fn tick(&mut self, _state: &RunState) {}
    fn note(&mut self, text: &str);
}

/// What the run's agents reported spending (US dollars), and how many tasks that ran reported
/// nothing: those are unknown, never $0.
pub fn spend(s: &RunState) -> (f64, usize) {
    let ran = s.tasks.iter().filter(|t| t.started_at.is_some());
    let (known, unknown): (Vec<_>, Vec<_>) = ran.partition(|t| t.metrics.cost_usd.is_some());
    (known.iter().filter_map(|t| t.metrics.cost_usd).sum(), unknown.len())
}

/// Whether a task's result satisfies its dependents.
fn satisfied(s: TaskStatus) -> bool {
    matches!(s, TaskStatus::Succeeded | TaskStatus::NoChanges)
}

/// Still to (re)start: never started, or stopped before it ended (`running` is what a dead
/// orchestrator left behind; ours are tracked separately).
fn to_run(s: TaskStatus) -> bool {
    matches!(s, TaskStatus::Pending | TaskStatus::Interrupted | TaskStatus::Cancelled | TaskStatus::Running)
}

fn finished(s: TaskStatus) -> bool {
    s.is_final() || s == TaskStatus::Skipped
}

fn blocked(s: TaskStatus) -> bool {
    matches!(s, TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Skipped)
}

/// An extra attempt waits while another attempt of its task is past its first check and still
/// running: in a fix round (the cheaper bet: one more turn of a session that knows the task and
/// its failure, against a whole new try), or passed and about to win. When that attempt ends
/// without passing, the extra starts.
fn behind_a_fix_round<T>(state: &RunState, running: &HashMap<String, T>, id: &str) -> bool {
    let (base, n) = crate::plan::attempt_of(id);
    n > 1
        && running.keys().any(|m| {
            m != id && crate::plan::attempt_of(m).0 == base && state.task(m).is_some_and(|t| !t.checks.is_empty())
        })
}

/// Execute the plan's remaining tasks; returns when every task ended or the run was stopped.
pub fn execute(
    log: &mut RunLog,
    plan: &Plan,
    opts: &Options,
    ctl: Arc<Control>,
    obs: &mut dyn Observer,
) -> Result<RunStatus> {
    let repo: Repo = log.repo().clone();
    let preds = plan.pred_indices();
    let index: HashMap<&str, usize> = plan.tasks.iter().enumerate().map(|(i, t)| (t.id.as_str(), i)).collect();
    let durations: Vec<f64> = plan.tasks.iter().map(|t| t.estimate_min).collect();
    let mut rank = simulate::ranks(&durations, &preds);
    // An extra attempt (task@2..) is a speculation that its task's own attempt may make
    // needless: it takes a slot only when no first try of any task waits for one. Below every
    // first try, the attempts keep their order among themselves. With room to spare they all
    // start at once, as before.
    let below = rank.iter().fold(0.0f64, |m, &r| m.max(r)) + 1.0;
    for (i, t) in plan.tasks.iter().enumerate() {
        if crate::plan::attempt_of(&t.id).1 > 1 {
            rank[i] -= below;
        }
    }
    let run_dir = worktree::run_dir(&repo, opts.worktree_dir.as_deref(), &log.id);

    let mut gov = governor::Governor::new(run_dir.parent().unwrap_or(&repo.workdir));
    // An agent that kills its supervisor (where there is no PID namespace to hold it) leaves
    // its processes to us, not to init.
    let _adopting = crate::proc::adopt_orphans();
    let mut last_sweep = Instant::now();
    // Start from what the repository's recent runs measured, where the agent is the same.
    for (agent, kind, cores, rss) in crate::store::runs::footprints(&repo, 20).unwrap_or_default() {
        gov.seed(&agent, &kind, cores, rss);
    }
    let overlay = worktree_mode(&repo, plan, opts, &run_dir, obs)?;
    // Local admission weighs a worktree's disk; on a cluster the machine here holds none, and
    // an overlay worktree holds only what its agent writes.
    if opts.executor.is_local() && !overlay {
        gov.set_worktree_size(worktree::checkout_size(&repo, &plan.base).unwrap_or(0));
    }
    let cap = governor::capacity(&opts.limits, &gov.sample());
    obs.note(&format!("run {}: {} tasks, up to {} at once ({})", log.id, plan.tasks.len(), cap.workers, cap.reason));
    let profile_of = |i: usize| plan.tasks[i].agent.clone().unwrap_or_else(|| opts.agent.clone());
    let kind_of = |i: usize| plan.tasks[i].kind.to_string();
    let mut last_limit_event = Instant::now() - Duration::from_secs(60);
    let mut recorded_reason = String::new();
    let mut recorded_reading: Option<crate::store::runs::Machine> = None;
    let mut last_reading = Instant::now();

    let (tx, rx) = mpsc::channel::<Msg>();
    let mut running: HashMap<String, std::thread::JoinHandle<()>> = HashMap::new();
    let mut stopping = false;
    let mut arbiter = super::attempts::Arbiter::new(plan, log.state(), opts.attempts_all);
    // The budget is spent: nothing new starts; the run ends resumable when tasks are left.
    let mut budget_spent = false;
    let mut notes_due: Vec<(gix::ObjectId, String)> = Vec::new();
    let mut last_wait_reason = String::new();
    let mut last_refresh = Instant::now();
    // Worktrees of tasks whose result is recorded, removed off the writer thread by one thread
    // of their own (removals are serialized anyway: a thread each piled up by the thousand on
    // a 2,000-task cluster run).
    // `true`: the worktree stays (a failure to look at, or --keep-worktrees); an overlay one is
    // turned into a plain checkout there.
    let (removal_tx, removal_rx) = mpsc::channel::<(std::path::PathBuf, String, String, bool)>();
    let remover = {
        let repo = repo.clone();
        std::thread::spawn(move || {
            for (path, run, task, keep) in removal_rx {
                if keep {
                    let td = crate::exec::taskdir::TaskDir::new(&repo, &run, &task);
                    let branch = layout::task_branch(&run, &task);
                    if let Ok(Some(tip)) = crate::store::objects::read_ref(&repo, &branch) {
                        // Left an overlay when this fails: resume still works there.
                        let _ = super::overlay::materialize(&repo, &td, &path, &tip.to_string());
                    }
                    continue;
                }
                // Its result is on its branch and recorded: disk in use stays bounded by the
                // running and failed tasks. A failure leaves it for `clean`.
                // `worktree add` of another task can make it fail for a moment: try again.
                // Its git folder as recorded when the worktree was made (cheap); else git's way.
                let td = crate::exec::taskdir::TaskDir::new(&repo, &run, &task);
                let fast = td.admin().ok().filter(|a| a.starts_with(repo.common_dir.join("worktrees")));
                for attempt in 1..=5u64 {
                    let removed = match &fast {
                        Some(admin) => worktree::discard(&path, admin).is_ok(),
                        None => worktree::remove(&repo, &path, true).is_ok(),
                    };
                    if removed || !path.exists() {
                        crate::exec::taskdir::keep_agent_state(&repo, &run, &task);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50 * attempt));
                }
            }
        })
    };
    let mut ended: Vec<(usize, TaskStatus)> = Vec::new();
    let mut queue = Queue::new(log, plan, &preds, &rank, obs)?;
    let prompts = crate::store::plans::Prompts::load(&repo, &plan.id)?;
    loop {
        // 1. What the workers said.
        let mut msgs: Vec<Msg> = rx.recv_timeout(Duration::from_millis(100)).into_iter().collect();
        msgs.extend(rx.try_iter());
        // A task that ended may have ended by its supervisor's death: what it left goes now.
        let mut sweep_now = msgs.iter().any(|m| matches!(m, Msg::Finished(_)));
        for msg in msgs {
            match msg {
                Msg::RateLimited { task, profile, reset } => {
                    let same =
                        running.keys().filter(|t| index.get(t.as_str()).is_some_and(|&i| profile_of(i) == profile));
                    let text = gov.rate_limited(&profile, same.count(), reset);
                    obs.note(&format!("{task}: {text}"));
                    if let Some((limit, until)) = gov.rate(&profile) {
                        let until = until.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                        log.append(Event::RateLimited { profile, task, limit, until }, &[])?;
                    }
                }
                Msg::Event(ev)
                    if crate::store::runs::task_of(&ev).is_some_and(|t| {
                        arbiter.decided(t) && log.state().task(t).is_some_and(|s| s.status.is_final())
                    }) =>
                {
                    // The task took its winning attempt's result; its own attempt, being stopped
                    // (or starting late), must not make it look running again.
                }
                msg => {
                    let msg = with_footprint(&mut gov, msg);
                    // An attempt's end: what stands for its task (see exec::attempts).
                    let mut ended_task = None;
                    let msgs = match msg {
                        Msg::Finished(o) => {
                            ended_task = Some(o.task.clone());
                            if let Some(h) = running.remove(&o.task) {
                                let _ = h.join();
                            }
                            let state = log.state();
                            let mut judge = super::attempts::RunJudge::new(&repo, plan, state);
                            let v = arbiter.arbitrate(
                                *o,
                                |m| running.contains_key(m) || state.task(m).is_some_and(|t| to_run(t.status)),
                                &mut judge,
                            );
                            if let Some((task, attempts)) = v.compared {
                                let ev = Event::Compared { task, attempts };
                                log.append(ev.clone(), &[])?;
                                obs.event(&ev, log.state());
                            }
                            if let Some((attempt, commit)) = v.keep {
                                // The task's own attempt lost: its result stays, named.
                                let branch = layout::task_branch(&log.id, &attempt);
                                repo.git(["update-ref", "-m", "git parallel: an attempt that lost", &branch, &commit])?;
                            }
                            for (m, why) in v.stop {
                                if running.contains_key(&m) {
                                    ctl.condemn(&m, why);
                                } else {
                                    let ev = Event::Skipped { task: m.clone(), reason: why };
                                    log.append(ev.clone(), &[])?;
                                    obs.event(&ev, log.state());
                                }
                            }
                            if let Some((task, turns, cost_usd)) = v.spent {
                                let why = "its own attempt, until it was stopped for the winner".to_string();
                                let ev = Event::Spent { task, turns, cost_usd, why };
                                log.append(ev.clone(), &[])?;
                                obs.event(&ev, log.state());
                            }
                            if let Some((task, commit)) = v.branch {
                                let branch = layout::task_branch(&log.id, &task);
                                repo.git(["update-ref", "-m", "git parallel: the winning attempt", &branch, &commit])?;
                            }
                            v.record.into_iter().map(|o| Msg::Finished(Box::new(o))).collect()
                        }
                        msg => vec![msg],
                    };
                    for msg in msgs {
                        // A task given its winning attempt's result while its own attempt is
                        // still being stopped stays running (and watched) until that ends.
                        let still = match &msg {
                            Msg::Finished(o) if Some(&o.task) != ended_task.as_ref() => {
                                running.remove(&o.task).map(|h| (o.task.clone(), h))
                            }
                            _ => None,
                        };
                        if let Some(ev) = handle(log, plan, &index, msg, &mut running, &mut notes_due, &mut ended, obs)?
                        {
                            if let Some(&i) = index.get(ev.as_str()) {
                                gov.succeeded(&profile_of(i));
                            }
                        }
                        if let Some((task, h)) = still {
                            running.insert(task, h);
                        }
                    }
                }
            }
        }
        for (i, status) in std::mem::take(&mut ended) {
            if !stopping {
                queue.settle(log, plan, &running, i, obs)?;
            }
            let (path, id) = (run_dir.join(&plan.tasks[i].id), plan.tasks[i].id.clone());
            if !opts.keep_worktrees && satisfied(status) {
                let _ = removal_tx.send((path, log.id.clone(), id, false));
            } else if matches!(status, TaskStatus::Failed | TaskStatus::TimedOut) || satisfied(status) {
                let _ = removal_tx.send((path, log.id.clone(), id, true));
            }
        }
        // A cancel recorded by another process arrives as SIGTERM; also look at the log now and then.
        if last_refresh.elapsed() > Duration::from_secs(2) {
            last_refresh = Instant::now();
            log.refresh()?;
            if log.state().cancel_requested {
                ctl.stop.store(true, Ordering::SeqCst);
            }
        }
        if ctl.stop.load(Ordering::SeqCst) && !stopping {
            stopping = true;
            obs.note("stopping: no new tasks start; running agents are being terminated (Ctrl-C again to kill)");
        }
        if let Some(budget) = opts.budget.filter(|_| !budget_spent) {
            *ctl.budget.lock().unwrap_or_else(|e| e.into_inner()) = Some(budget);
            let (_, unknown) = spend(log.state());
            for t in &log.state().tasks {
                if let Some(c) = t.metrics.cost_usd {
                    ctl.spent_at_least(&t.id, c);
                }
            }
            let spent = ctl.spent();
            if spent >= budget {
                budget_spent = true;
                ctl.budget_spent.store(true, Ordering::SeqCst);
                let unknown = match unknown {
                    0 => String::new(),
                    n => format!(" ({n} task(s) reported no cost and are not counted)"),
                };
                obs.note(&format!(
                    "budget reached: ${spent:.2} of ${budget:.2} spent{unknown}; no task or fix round starts{}",
                    if opts.budget_hard { "; running agents are stopped" } else { "; running agents finish" }
                ));
                let reason = format!("budget: ${spent:.2} of ${budget:.2} spent");
                log.append(Event::Limited { running: running.len(), reason }, &[])?;
                if opts.budget_hard {
                    ctl.stop.store(true, Ordering::SeqCst);
                }
            }
        }
        obs.tick(log.state());

        // 2. Start ready tasks, highest rank first, while the governor allows.
        let mut barrier_held = Vec::new();
        let mut trees =
            trees_of(&running, &ctl, |t| index.get(t).map(|&i| (profile_of(i), kind_of(i))).unwrap_or_default());
        gov.observe(&trees);
        enforce_process_limit(&gov, &ctl, &trees, opts.limits.max_processes);
        // What the governor sees, for the dashboard and `status --json` (this machine's only:
        // a cluster's agents run elsewhere).
        if opts.executor.is_local() {
            let s = gov.sample();
            let (cores, rss, measured) = gov.agents(&trees);
            let m = crate::store::runs::Machine {
                cpus: s.cpus,
                cpu_percent: s.cpu_usage,
                memory_used: s.total_memory.saturating_sub(s.available_memory),
                memory_total: s.total_memory,
                agents_cores: cores,
                agents_rss: rss,
                // What admission holds to (`cap` above is the planning estimate).
                ceiling: opts.limits.ceiling(),
                ceiling_reason: match opts.limits.requested {
                    Some(n) => format!("-j {n}"),
                    None => format!(
                        "parallel.maxConcurrency {}; starts follow measured CPU and memory",
                        opts.limits.ceiling()
                    ),
                },
            };
            if governor::reading_due(recorded_reading.as_ref(), &m, measured > 0, last_reading.elapsed()) {
                log.append(Event::Governor(m.clone()), &[])?;
                (recorded_reading, last_reading) = (Some(m), Instant::now());
            }
        }
        sweep_now |= last_sweep.elapsed() >= Duration::from_secs(1);
        if sweep_now {
            last_sweep = Instant::now();
            let n = crate::proc::sweep_orphans();
            if n > 0 {
                obs.note(&format!("killed {n} process(es) an agent left behind after killing its supervisor"));
            }
        }
        let mut waiting: Option<String> = None;
        let mut refused = 0;
        while let Some(i) = queue.next(log.state(), plan, &running).filter(|_| !stopping && !budget_spent) {
            if opts.phase_barrier && !in_open_wave(log.state(), plan, &index, i) {
                // The baseline the list scheduler is measured against: only the first unfinished wave.
                barrier_held.push(queue.pop());
                continue;
            }
            if !opts.attempts_all && behind_a_fix_round(log.state(), &running, &plan.tasks[i].id) {
                barrier_held.push(queue.pop());
                continue;
            }
            let (profile, kind) = (profile_of(i), kind_of(i));
            // A cluster decides where and when its jobs run: our ceiling is how many we keep
            // submitted (-j); the machine we run on is not where the agents run.
            let admitted = if opts.executor.is_local() {
                gov.admit(&opts.limits, &profile, &kind, &trees)
            } else if running.len() >= opts.limits.ceiling() {
                Err(format!("{} {} jobs queued or running: the ceiling", running.len(), opts.executor.name()))
            } else {
                gov.admit_profile(&opts.limits, &profile, &trees)
            };
            if let Err(why) = admitted {
                // Another profile's task may still fit (a rate limit is per profile); look at
                // a few more, not at the whole queue.
                waiting.get_or_insert(why);
                refused += 1;
                barrier_held.push(queue.pop());
                if refused >= 16 {
                    break;
                }
                continue;
            }
            queue.pop();
            let t = &plan.tasks[i];
            trees.push(governor::Tree { task: t.id.clone(), profile, kind, pid: 0 });
            let spec = spec_for(&repo, &prompts, log, plan, i, &preds[i], opts, &run_dir, overlay)?;
            // Say in the task's record how its last attempt ended, and whether its session goes on.
            let after = match log.state().task(&t.id).map(|s| (s.status, s.fresh)) {
                Some((TaskStatus::Interrupted | TaskStatus::Cancelled, false)) => {
                    Some("it was interrupted (Ctrl-C, cancel or SIGTERM)")
                }
                Some((TaskStatus::Running, false)) => Some("its orchestrator died (kill -9, a crash or a reboot)"),
                _ => None,
            };
            if let Some(after) = after {
                let ev = Event::Resumed {
                    task: t.id.clone(),
                    after: after.to_string(),
                    session: spec.resume_session.clone().filter(|_| crate::agent::supports_resume(&spec.profile)),
                };
                log.append(ev, &[])?;
            }
            let ctl2 = Arc::clone(&ctl);
            let tx2 = tx.clone();
            let repo2 = repo.clone();
            let job = log.state().task(&t.id).and_then(|s| s.job.clone());
            running.insert(t.id.clone(), opts.executor.start(repo2, spec, job, ctl2, tx2));
        }
        queue.requeue(barrier_held);
        // Say which limit holds now, when it changes: on stderr, and in the run's log for
        // `status`.
        let why = waiting.unwrap_or_default();
        if why != last_wait_reason {
            if !why.is_empty() && !why.contains("ceiling") {
                obs.note(&format!("{} running; waiting to start more: {why}", running.len()));
            }
            last_wait_reason = why.clone();
        }
        // At most one such event a second; a change in between is recorded when it is due.
        if why != recorded_reason && last_limit_event.elapsed() >= Duration::from_secs(1) {
            last_limit_event = Instant::now();
            log.append(Event::Limited { running: running.len(), reason: why.clone() }, &[])?;
            recorded_reason = why;
        }

        for (id, note) in notes_due.drain(..) {
            if let Err(e) = notes::write(&repo, id, &note) {
                obs.note(&format!("warning: could not attach metrics note to {id}: {e:#}"));
            }
        }

        if running.is_empty() && (stopping || budget_spent || queue.next(log.state(), plan, &running).is_none()) {
            break;
        }
    }
    drop(removal_tx);
    let _ = remover.join();
    // The run's folder goes once no worktree is left in it.
    super::overlay::remove_run_layers(&run_dir);
    let _ = std::fs::remove_dir(&run_dir);
    log.refresh()?;
    let st = log.state();
    let final_status = if stopping {
        if st.cancel_requested {
            RunStatus::Cancelled
        } else {
            RunStatus::Interrupted
        }
    } else if budget_spent && st.tasks.iter().any(|t| to_run(t.status)) {
        // What is left runs after `resume --budget`.
        RunStatus::Interrupted
    } else if st.tasks.iter().any(|t| blocked(t.status) && !t.id.contains('@')) {
        // An attempt that lost or failed is not the run's failure; its task says how it went.
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    if stopping && st.cancel_requested {
        // Interrupted tasks of a cancelled run are recorded as cancelled.
        let ids: Vec<String> =
            st.tasks.iter().filter(|t| t.status == TaskStatus::Interrupted).map(|t| t.id.clone()).collect();
        for id in ids {
            let t = log.state().task(&id).cloned();
            if let Some(t) = t {
                log.append(
                    Event::Finished {
                        task: id,
                        status: TaskStatus::Cancelled,
                        commit: None,
                        reason: Some("run cancelled".into()),
                        exit_code: t.exit_code,
                        metrics: t.metrics,
                        files_changed: Vec::new(),
                        wall_ms: t.wall_ms,
                    },
                    &[],
                )?;
            }
        }
    }
    Ok(final_status)
}

/// What a finished task was measured to use goes into its record (and so into later runs'
/// starting point), here and in a cluster job's worker.
pub fn with_footprint(gov: &mut governor::Governor, msg: Msg) -> Msg {
    match msg {
        Msg::Finished(mut o) => {
            if let Some((cores, rss)) = gov.footprint(&o.task) {
                o.metrics.cpu_cores = Some((cores * 1000.0).round() / 1000.0);
                o.metrics.peak_rss = Some(rss);
            }
            Msg::Finished(o)
        }
        msg => msg,
    }
}

/// A fork bomb, or any runaway: a tree measured past `most` processes is killed whole, and its
/// task fails (here and in a cluster job's worker).
pub fn enforce_process_limit(
    gov: &governor::Governor,
    ctl: &task::Control,
    trees: &[governor::Tree],
    most: Option<usize>,
) {
    let Some(most) = most else { return };
    for t in trees {
        if let Some(n) = gov.usage(&t.task).map(|u| u.processes).filter(|&n| n > most) {
            ctl.condemn(
                &t.task,
                format!(
                    "the agent ran {n} processes at once, more than parallel.maxProcesses ({most}); all were killed"
                ),
            );
        }
    }
}

/// The running tasks' process trees, for the governor.
fn trees_of(
    running: &HashMap<String, std::thread::JoinHandle<()>>,
    ctl: &task::Control,
    profile_and_kind: impl Fn(&str) -> (String, String),
) -> Vec<governor::Tree> {
    let pids = ctl.pids.lock().unwrap_or_else(|e| e.into_inner());
    running
        .keys()
        .map(|t| {
            let (profile, kind) = profile_and_kind(t);
            governor::Tree { task: t.clone(), profile, kind, pid: pids.get(t).copied().unwrap_or(0) }
        })
        .collect()
}

/// Whether task `i` belongs to the first wave that still has an unfinished task.
fn in_open_wave(state: &RunState, plan: &Plan, index: &HashMap<&str, usize>, i: usize) -> bool {
    let open = |id: &String| !finished(status(state, id));
    match plan.schedule.waves.iter().find(|w| w.iter().any(open)) {
        Some(w) => w.contains(&plan.tasks[i].id),
        None => index.contains_key(plan.tasks[i].id.as_str()),
    }
}

/// A task waiting to start, ordered by remaining path length (longest first), then plan order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Prio(f64, usize);

impl Eq for Prio {}

impl Ord for Prio {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

impl PartialOrd for Prio {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The ready tasks, kept in step with the run: a task enters when its last dependency is
/// satisfied, so a dispatch costs O(log n) instead of a scan of the whole plan (quadratic over
/// a run of 10,000 tasks).
struct Queue {
    succs: Vec<Vec<usize>>,
    preds: Vec<Vec<usize>>,
    /// Dependencies of each task not yet satisfied.
    unmet: Vec<usize>,
    rank: Vec<f64>,
    heap: std::collections::BinaryHeap<Prio>,
}

impl Queue {
    /// From the recorded state (a fresh run or a resumed one): tasks blocked by a failed
    /// dependency are skipped, the ready ones queued.
    fn new(log: &mut RunLog, plan: &Plan, preds: &[Vec<usize>], rank: &[f64], obs: &mut dyn Observer) -> Result<Queue> {
        let n = plan.tasks.len();
        let mut succs = vec![Vec::new(); n];
        for (i, ps) in preds.iter().enumerate() {
            for &p in ps {
                succs[p].push(i);
            }
        }
        let st = |i: usize| status(log.state(), &plan.tasks[i].id);
        let unmet = (0..n).map(|i| preds[i].iter().filter(|&&p| !satisfied(st(p))).count()).collect();
        let mut q = Queue {
            succs,
            preds: preds.to_vec(),
            unmet,
            rank: rank.to_vec(),
            heap: std::collections::BinaryHeap::new(),
        };
        let none = HashMap::new();
        for i in 0..n {
            if blocked(status(log.state(), &plan.tasks[i].id)) {
                q.skip_after(log, plan, &none, i, obs)?;
            }
        }
        for i in 0..n {
            if q.unmet[i] == 0 && to_run(status(log.state(), &plan.tasks[i].id)) {
                q.heap.push(Prio(q.rank[i], i));
            }
        }
        Ok(q)
    }

    /// The best task that may start now (entries that went stale are dropped).
    fn next(
        &mut self,
        state: &RunState,
        plan: &Plan,
        running: &HashMap<String, std::thread::JoinHandle<()>>,
    ) -> Option<usize> {
        while let Some(&Prio(_, i)) = self.heap.peek() {
            let id = &plan.tasks[i].id;
            if self.unmet[i] == 0 && to_run(status(state, id)) && !running.contains_key(id) {
                return Some(i);
            }
            self.heap.pop();
        }
        None
    }

    fn pop(&mut self) -> usize {
        self.heap.pop().map(|p| p.1).unwrap_or_default()
    }

    fn requeue(&mut self, tasks: Vec<usize>) {
        self.heap.extend(tasks.into_iter().map(|i| Prio(self.rank[i], i)));
    }

    /// Task `i` ended: its dependents lose a dependency to wait for, or are skipped.
    fn settle(
        &mut self,
        log: &mut RunLog,
        plan: &Plan,
        running: &HashMap<String, std::thread::JoinHandle<()>>,
        i: usize,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        let s = status(log.state(), &plan.tasks[i].id);
        if satisfied(s) {
            for k in 0..self.succs[i].len() {
                let d = self.succs[i][k];
                self.unmet[d] = self.unmet[d].saturating_sub(1);
                if self.unmet[d] == 0 && to_run(status(log.state(), &plan.tasks[d].id)) {
                    self.heap.push(Prio(self.rank[d], d));
                }
            }
        } else if blocked(s) {
            self.skip_after(log, plan, running, i, obs)?;
        }
        Ok(())
    }

    /// Skip every task still to run that depends, directly or not, on blocked task `i`.
    fn skip_after(
        &mut self,
        log: &mut RunLog,
        plan: &Plan,
        running: &HashMap<String, std::thread::JoinHandle<()>>,
        i: usize,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        let mut stack = vec![i];
        while let Some(b) = stack.pop() {
            for k in 0..self.succs[b].len() {
                let d = self.succs[b][k];
                let t = &plan.tasks[d];
                if !to_run(status(log.state(), &t.id)) || running.contains_key(&t.id) {
                    continue;
                }
                // Name the first blocked dependency, as a scan in plan order would.
                let dep = self.preds[d]
                    .iter()
                    .find(|&&p| blocked(status(log.state(), &plan.tasks[p].id)))
                    .map(|&p| plan.tasks[p].id.clone())
                    .unwrap_or_else(|| plan.tasks[b].id.clone());
                let ev = Event::Skipped { task: t.id.clone(), reason: format!("dependency {dep} did not succeed") };
                log.append(ev.clone(), &[])?;
                obs.event(&ev, log.state());
                stack.push(d);
            }
        }
        Ok(())
    }
}

fn status(state: &RunState, id: &str) -> TaskStatus {
    state.task(id).map(|t| t.status).unwrap_or(TaskStatus::Pending)
}

#[allow(clippy::too_many_arguments)]
fn spec_for(
    repo: &Repo,
    prompts: &crate::store::plans::Prompts,
    log: &RunLog,
    plan: &Plan,
    i: usize,
    preds: &[usize],
    opts: &Options,
    run_dir: &std::path::Path,
    overlay: bool,
) -> Result<TaskSpec> {
    let t = &plan.tasks[i];
    let worktree = run_dir.join(&t.id);
    // A worktree from an earlier life stays what it was made as.
    let overlay = match std::fs::symlink_metadata(worktree.join(".git")) {
        Ok(_) => super::overlay::TaskLayers::existing(&worktree).is_some(),
        Err(_) => overlay,
    };
    let state = log.state().task(&t.id).cloned();
    // An attempt is its task again.
    let prompt = prompts.get(repo, crate::plan::attempt_of(&t.id).0)?;
    let deps = preds
        .iter()
        .filter_map(|&p| {
            let id = &plan.tasks[p].id;
            log.state().task(id).and_then(|s| s.commit.clone()).map(|c| (id.clone(), c))
        })
        .collect();
    let profile = t.agent.clone().unwrap_or_else(|| opts.agent.clone());
    Ok(TaskSpec {
        run: log.id.clone(),
        task: t.id.clone(),
        title: t.title.clone(),
        prompt: body_of(&prompt),
        profile,
        template: opts.template.clone(),
        timeout: t.timeout_secs.map(Duration::from_secs).unwrap_or(opts.timeout),
        grace: opts.grace,
        retries: opts.retries,
        retry_base: opts.retry_base,
        worktree,
        branch: layout::task_branch(&log.id, &t.id),
        base: plan.base.clone(),
        deps,
        setup: opts.setup.clone(),
        check: t.check.clone().or_else(|| opts.check.clone()),
        fix_rounds: opts.fix_rounds,
        copy: opts.copy.clone(),
        // Interrupted (Ctrl-C, cancel) or left running by an orchestrator that died (kill -9,
        // a crash, a reboot): the agent's session goes on where the CLI keeps it.
        resume_session: state
            .as_ref()
            .filter(|s| matches!(s.status, TaskStatus::Interrupted | TaskStatus::Running) && !s.fresh)
            .and_then(|s| s.metrics.session_id.clone()),
        prior_attempts: state.as_ref().map(|s| s.attempts).unwrap_or(0),
        sandbox: opts.sandbox.then(|| repo.common_dir.clone()),
        sparse: (opts.sparse && !overlay && !t.files.is_empty()).then(|| sparse_dirs(&t.files)),
        fresh: state.as_ref().is_some_and(|s| s.fresh),
        max_processes: opts.limits.max_processes,
        sandbox_read: opts.sandbox_read.clone(),
        sandbox_env: opts.sandbox_env.clone(),
        kind: t.kind.to_string(),
        overlay,
        max_turns: t.max_turns,
    })
}

/// Decide how this run's worktrees are made, make its shared layers, and say so.
fn worktree_mode(
    repo: &Repo,
    plan: &Plan,
    opts: &Options,
    run_dir: &std::path::Path,
    obs: &mut dyn Observer,
) -> Result<bool> {
    use super::overlay::{self, Mode};
    let refused = match opts.worktrees {
        Mode::Checkout => None,
        mode => {
            match overlay::probe(run_dir) {
                Ok(()) => {
                    let t = Instant::now();
                    let how = overlay::prepare_base(repo, run_dir, &plan.base, !opts.warm.is_empty())?;
                    let warm = overlay::prepare_warm(repo, run_dir, &opts.warm)?;
                    let warm = match warm.is_empty() {
                        true => String::new(),
                        false => format!(", with {} warm", warm.join(", ")),
                    };
                    let sparse = match opts.sparse {
                    true => "; --sparse is not needed with them (every task sees the whole tree at no cost) and is ignored",
                    false => "",
                };
                    obs.note(&format!(
                        "worktrees: overlays on {} ({how}, {}{warm}){sparse}",
                        &plan.base[..plan.base.len().min(12)],
                        crate::ui::millis(t.elapsed().as_millis() as u64)
                    ));
                    return Ok(true);
                }
                Err(why) if mode == Mode::Overlay => {
                    return Err(crate::error::usage(format!(
                        "parallel.worktree = overlay, but overlays cannot be mounted here: {why}"
                    )))
                }
                Err(why) => Some(why),
            }
        }
    };
    let mut text = String::from("worktrees: full checkouts");
    if let Some(why) = refused {
        text.push_str(&format!(" (overlays refused here: {why})"));
    }
    if !opts.warm.is_empty() {
        text.push_str("; parallel.warm needs overlay worktrees and is ignored");
    }
    obs.note(&text);
    Ok(false)
}

/// The directories a sparse worktree needs for `files` (top-level files come with any cone).
fn sparse_dirs(files: &[String]) -> Vec<String> {
    let mut dirs: Vec<String> = files.iter().filter_map(|f| f.rsplit_once('/').map(|(d, _)| d.to_string())).collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// The prompt the agent sees: the Markdown without its front matter.
pub fn body_of(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix("---\n") {
        if let Some(end) = rest.find("\n---\n") {
            return rest[end + 5..].trim_start().to_string();
        }
    }
    raw.to_string()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn handle(
    log: &mut RunLog,
    plan: &Plan,
    index: &HashMap<&str, usize>,
    msg: Msg,
    running: &mut HashMap<String, std::thread::JoinHandle<()>>,
    notes_due: &mut Vec<(gix::ObjectId, String)>,
    ended: &mut Vec<(usize, TaskStatus)>,
    obs: &mut dyn Observer,
) -> Result<Option<String>> {
    let mut succeeded = None;
    let ev = match msg {
        Msg::Event(ev) => {
            log.append((*ev).clone(), &[])?;
            *ev
        }
        Msg::Finished(o) => {
            let o: Outcome = *o;
            if let Some(h) = running.remove(&o.task) {
                let _ = h.join();
            }
            let ev = o.event();
            log.append(ev.clone(), &o.logs)?;
            if let Some(&i) = index.get(o.task.as_str()) {
                ended.push((i, o.status));
            }
            if let Some(c) = &o.commit {
                let task_def = index.get(o.task.as_str()).map(|&i| &plan.tasks[i]);
                let kind = task_def.map(|t| t.kind.to_string()).unwrap_or_default();
                // The task's own agent: in a mixed plan it is not the run's default.
                let agent = task_def.and_then(|t| t.agent.clone()).unwrap_or_else(|| log.state().agent.clone());
                let note = metrics_note(&log.id, &o, &agent, &kind);
                if let Ok(id) = gix::ObjectId::from_hex(c.as_bytes()) {
                    // Written after the next dispatch: starting ready tasks comes first.
                    notes_due.push((id, note));
                }
            }
            if o.status == TaskStatus::Succeeded {
                succeeded = Some(o.task.clone());
            }
            ev
        }
        Msg::Recorded { task } => {
            // A cluster job recorded the task's end in the log itself.
            if let Some(h) = running.remove(&task) {
                let _ = h.join();
            }
            log.refresh()?;
            let Some(t) = log.state().task(&task).cloned() else { return Ok(None) };
            if t.status == TaskStatus::Succeeded {
                succeeded = Some(task.clone());
            }
            // Its dependents become ready as when a local worker ends.
            if let Some(&i) = index.get(task.as_str()) {
                ended.push((i, t.status));
            }
            Event::Finished {
                task,
                status: t.status,
                commit: t.commit,
                reason: t.reason,
                exit_code: t.exit_code,
                metrics: t.metrics,
                files_changed: t.files_changed,
                wall_ms: t.wall_ms,
            }
        }
        Msg::RateLimited { .. } => return Ok(None),
    };
    obs.event(&ev, log.state());
    Ok(succeeded)
}

/// The YAML note attached to a result commit.
fn metrics_note(run: &str, o: &Outcome, agent: &str, kind: &str) -> String {
    let m = &o.metrics;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    format!(
        "run: '{run}'\ntask: {}\ntype: {kind}\nagent: {agent}\nstatus: {}\nduration_ms: {}\nturns: {}\ncost_usd: {}\ninput_tokens: {}\noutput_tokens: {}\nsession_id: {}\nfiles_changed: {}\n",
        o.task,
        o.status.as_str(),
        o.wall_ms,
        opt(m.turns.map(|v| v.to_string())),
        opt(m.cost_usd.map(|v| format!("{v:.6}"))),
        opt(m.input_tokens.map(|v| v.to_string())),
        opt(m.output_tokens.map(|v| v.to_string())),
        opt(m.session_id.clone()),
        o.files_changed.len()
    )
}
