//! Resource governor: whether one more agent may start now, from what the running agents are
//! measured to use rather than from a fixed "CPUs per task".
//!
//! Every second it reads each running task's whole process tree (sysinfo: CPU time and RSS of
//! the supervisor and all its descendants) and learns, per agent profile, what a task takes:
//! CPU as a moving average of cores, memory as the peak RSS. Another task starts while the
//! machine's measured CPU use plus what the newcomers are expected to take stays within the
//! CPU budget, and while available memory, less the growth still expected of running tasks
//! and the newcomer's footprint, stays above a reserve. Agents that wait on a model API (a
//! few percent of a core) run many at once on a small machine; agents that build and test are
//! held to what the CPUs take. Until a profile has been measured, new starts double per
//! measurement (4, 8, 16 …), so a wrong first guess cannot flood the machine.
//!
//! API rate limits are per agent profile, additive increase and multiplicative decrease: a
//! 429/529 halves that profile's concurrency and pauses its new starts until the reset the
//! API gave (or the retry delay); each success raises it by one again.
//!
//! The user's `-j N` is a ceiling, never cut for lack of a static CPU share; with nothing
//! requested the ceiling is `parallel.maxConcurrency` (16). Running agents are never stopped
//! by the governor, and when nothing runs one task may always start (unless its profile waits
//! for a rate-limit reset), so a busy machine slows a run down but never stalls it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// What a task is expected to use before its profile has been measured.
const PRIOR_CPU: f64 = 0.25;
/// New agents of an unmeasured profile that may start before any has been measured; then
/// as many more as have been measured (so 4, 8, 16 … per measurement).
const SLOW_START: usize = 4;
/// Memory a task is expected to use before anything is measured.
const PRIOR_RSS: u64 = GIB;
/// Below this many cores a task counts as light: waiting, not computing.
const LIGHT: f64 = 0.1;
/// Weight of a new reading in a profile's CPU average.
const ALPHA: f64 = 0.4;

/// Limits from settings and flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--concurrency` or `parallel.concurrency`; None means `max_concurrency`.
    pub requested: Option<usize>,
    pub max_concurrency: usize,
    /// CPUs kept free for the rest of the machine (`parallel.reserveCpus`, default 0).
    pub reserve_cpus: usize,
    /// CPUs one agent needs at least (`parallel.cpuPerTask`); None: learned, starting from a
    /// quarter of a core. An explicit value is a floor under what is measured.
    pub cpu_per_task: Option<f64>,
    /// Memory one agent needs at least (`parallel.memoryPerTask`); None: learned, starting
    /// from 1 GiB.
    pub memory_per_task: Option<u64>,
    /// Most memory all agents together may use (`parallel.memoryLimit`); None: what the
    /// machine has available.
    pub memory_limit: Option<u64>,
    pub min_disk: u64,
    /// Measured CPU use plus what new starts are expected to take may reach this percentage of
    /// the CPUs not reserved (`parallel.cpuLimit`, default 150: measured, oversubscribing CPUs
    /// costs agents little — their start-up bursts are short, and CPU-bound work shares cores
    /// without losing throughput — while memory is what must never be overcommitted).
    pub cpu_limit: f32,
    /// Most agents of one profile at once (`parallel.<profile>.concurrency`).
    pub per_profile: std::collections::BTreeMap<String, usize>,
    /// Most processes one agent's tree may have (`parallel.maxProcesses`, default 2048; 0: no
    /// limit): past it, the tree is killed and the task fails.
    pub max_processes: Option<usize>,
}

impl Limits {
    /// The user's ceiling.
    pub fn ceiling(&self) -> usize {
        self.requested.unwrap_or(self.max_concurrency).max(1)
    }
}

/// One reading of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cpus: usize,
    /// CPU demand of the whole machine in percent of all CPUs: what was used, or the
    /// runnable threads when more (it can pass 100 under contention; 0 when not measured).
    pub cpu_usage: f32,
    pub available_memory: u64,
    pub total_memory: u64,
    pub free_disk: u64,
}

/// Why capacity is what it is, for the narration.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub workers: usize,
    pub reason: String,
}

/// Workers to plan for: `requested` (checked), else what the machine holds now under the
/// repository's settings.
pub fn workers_for(
    repo: &crate::repo::Repo,
    settings: &crate::config::Settings,
    requested: Option<usize>,
) -> anyhow::Result<usize> {
    if let Some(n) = crate::config::check_concurrency(requested)? {
        return Ok(n);
    }
    let mut gov = Governor::new(&repo.workdir);
    Ok(capacity(&settings.limits(None), &gov.sample()).workers)
}

/// How many agents may run at most, before anything is measured: the ceiling, lowered only
/// by memory for the expected footprint or by an explicit CPU share. Planning simulates this.
pub fn capacity(limits: &Limits, s: &Sample) -> Capacity {
    let ceiling = limits.ceiling();
    let mut workers = ceiling;
    let mut reason = match limits.requested {
        Some(n) => format!("-j {n}"),
        None => format!("default ceiling {ceiling}; starts follow measured CPU and memory"),
    };
    if let Some(per) = limits.cpu_per_task {
        let free = s.cpus.saturating_sub(limits.reserve_cpus) as f64;
        let by_cpu = ((free / per.max(0.01)).floor() as usize).max(1);
        if by_cpu < workers {
            workers = by_cpu;
            reason =
                format!("{} CPUs, {} kept free, {per} per task (parallel.cpuPerTask)", s.cpus, limits.reserve_cpus);
        }
    }
    let memory = limits.memory_limit.unwrap_or(s.available_memory).min(s.available_memory);
    let per_task = limits.memory_per_task.unwrap_or(PRIOR_RSS).max(1);
    let by_mem = ((memory / per_task) as usize).max(1);
    if by_mem < workers {
        workers = by_mem;
        reason = format!(
            "{:.1} GiB available / {:.1} GiB per task",
            memory as f64 / GIB as f64,
            per_task as f64 / GIB as f64
        );
    }
    Capacity { workers, reason }
}

/// A running task's process tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub task: String,
    pub profile: String,
    /// The task's type (feature, test, docs …): tasks of one kind need alike.
    pub kind: String,
    /// The containment supervisor's pid (0 while the agent is not started yet).
    pub pid: u32,
}

/// What one task's tree was measured to use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU demand in cores: what the tree used, or how many of its processes were runnable
    /// when that is more (under contention, use understates demand).
    pub cores: f64,
    pub rss: u64,
    /// Processes in the tree.
    pub processes: usize,
}

/// What a profile's tasks were seen to need.
#[derive(Debug, Clone, Default)]
struct Learned {
    cpu: Option<f64>,
    rss: u64,
}

/// Rate-limit state of one agent profile.
#[derive(Debug, Clone)]
struct Rate {
    /// Most tasks of this profile at once (usize::MAX until the first rate limit).
    limit: usize,
    until: Option<(Instant, SystemTime)>,
    hits: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Rate { limit: usize::MAX, until: None, hits: 0 }
    }
}

/// Space an unprivileged process may still write on the file system holding `path` (or its
/// closest existing ancestor): asked of that very file system, so a tmpfs, a bind mount or a
/// quota'd volume counts as what it is.
fn free_space(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = rustix::fs::statvfs(existing).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Samples the machine and the agents, learns, and admits.
pub struct Governor {
    sys: System,
    path: PathBuf,
    last: Option<Instant>,
    interval: Duration,
    sample: Sample,
    usage: HashMap<String, Usage>,
    /// Per running task: (sum of CPU readings, readings, peak RSS), for its record.
    totals: HashMap<String, (f64, u32, u64)>,
    learned: HashMap<String, Learned>,
    rates: HashMap<String, Rate>,
    /// Disk one new worktree takes (its checkout), promised to tasks started since the last
    /// reading of free space.
    worktree_size: u64,
}

impl Governor {
    /// Watch the machine, with disk space measured where `path` lives.
    pub fn new(path: &Path) -> Self {
        let mut g = Governor {
            sys: System::new(),
            path: path.to_path_buf(),
            last: None,
            interval: Duration::from_secs(1),
            sample: Sample { cpus: 1, cpu_usage: 0.0, available_memory: 0, total_memory: 0, free_disk: u64::MAX },
            usage: HashMap::new(),
            totals: HashMap::new(),
            learned: HashMap::new(),
            rates: HashMap::new(),
            worktree_size: 0,
        };
        g.refresh_machine();
        g
    }

    /// The latest machine reading.
    pub fn sample(&mut self) -> Sample {
        self.sample
    }

    fn refresh_machine(&mut self) {
        self.sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.sys.refresh_cpu_usage();
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        // The first CPU reading has nothing to compare with; treat it as idle.
        let cpu_usage = if self.last.is_some() { self.sys.global_cpu_usage() } else { 0.0 };
        let free_disk = free_space(&self.path).unwrap_or(u64::MAX);
        // Runnable threads (less this one) show demand beyond what saturated CPUs report.
        let runnable = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| l.strip_prefix("procs_running ").and_then(|v| v.trim().parse::<f32>().ok()))
            })
            .map(|n| (n - 1.0).max(0.0));
        let cpu_usage = match runnable {
            Some(r) if self.last.is_some() => cpu_usage.max(r / cpus as f32 * 100.0),
            _ => cpu_usage,
        };
        self.sample = Sample {
            cpus,
            cpu_usage,
            available_memory: self.sys.available_memory(),
            total_memory: self.sys.total_memory(),
            free_disk,
        };
        self.last = Some(Instant::now());
    }

    /// Measure the machine and every running task's tree, at most once per interval.
    pub fn observe(&mut self, trees: &[Tree]) {
        if self.last.is_some_and(|t| t.elapsed() < self.interval) {
            return;
        }
        self.refresh_machine();
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
        for (pid, p) in self.sys.processes() {
            if let Some(parent) = p.parent() {
                children.entry(parent).or_default().push(*pid);
            }
        }
        let mut usage = HashMap::new();
        for t in trees.iter().filter(|t| t.pid != 0) {
            let mut u = Usage::default();
            let (mut used, mut runnable) = (0.0, 0.0);
            let mut stack = vec![Pid::from_u32(t.pid)];
            let mut seen = 0;
            while let Some(pid) = stack.pop() {
                seen += 1;
                if let Some(p) = self.sys.process(pid) {
                    used += p.cpu_usage() as f64 / 100.0;
                    runnable += (p.status() == sysinfo::ProcessStatus::Run) as u32 as f64;
                    u.rss += p.memory();
                }
                if let Some(c) = children.get(&pid) {
                    stack.extend(c);
                }
            }
            u.cores = used.max(runnable);
            u.processes = seen;
            let total = self.totals.entry(t.task.clone()).or_default();
            if self.usage.contains_key(&t.task) {
                total.0 += u.cores;
                total.1 += 1;
            }
            total.2 = total.2.max(u.rss);
            if seen > 0 {
                // Learned per profile and per kind of task of that profile.
                let first_reading = !self.usage.contains_key(&t.task);
                for key in [t.profile.clone(), kind_key(&t.profile, &t.kind)] {
                    let l = self.learned.entry(key).or_default();
                    l.rss = l.rss.max(u.rss);
                    // A tree read before its first CPU interval has no CPU figure yet.
                    if !first_reading {
                        l.cpu = Some(match l.cpu {
                            Some(c) => c * (1.0 - ALPHA) + u.cores * ALPHA,
                            None => u.cores,
                        });
                    }
                }
            }
            usage.insert(t.task.clone(), u);
        }
        self.usage = usage;
    }

    /// What a task of `profile` and `kind` is expected to use: learned for that kind (memory:
    /// else for the profile), else the prior.
    pub fn expected(&self, limits: &Limits, profile: &str, kind: &str) -> Usage {
        let k = self.learned.get(&kind_key(profile, kind));
        let p = self.learned.get(profile);
        // CPU differs by kind of task (a build, a docs edit): another kind's figure says
        // nothing, so an unmeasured kind starts from the prior. Memory is mostly the agent
        // program's own, so the profile's figure stands in.
        let cpu = k.and_then(|l| l.cpu);
        let rss = k.map(|l| l.rss).filter(|r| *r > 0).or(p.map(|l| l.rss).filter(|r| *r > 0));
        Usage {
            cores: cpu.unwrap_or(PRIOR_CPU).max(limits.cpu_per_task.unwrap_or(0.0)).max(0.01),
            rss: rss.unwrap_or(PRIOR_RSS).max(limits.memory_per_task.unwrap_or(0)),
            processes: 0,
        }
    }

    /// What a task was measured to need while it ran (mean CPU demand in cores, peak RSS);
    /// forgets the task.
    pub fn footprint(&mut self, task: &str) -> Option<(f64, u64)> {
        let (sum, n, rss) = self.totals.remove(task)?;
        (n > 0).then(|| (sum / n as f64, rss))
    }

    /// What earlier runs measured for tasks of `profile` and `kind`: a starting point, so a
    /// known kind of task needs no slow start.
    pub fn seed(&mut self, profile: &str, kind: &str, cores: f64, rss: u64) {
        for key in [profile.to_string(), kind_key(profile, kind)] {
            let l = self.learned.entry(key).or_default();
            l.cpu = Some(match l.cpu {
                Some(c) => c * (1.0 - ALPHA) + cores * ALPHA,
                None => cores,
            });
            l.rss = l.rss.max(rss);
        }
    }

    /// How much disk a task's worktree takes when it is created (the checkout's size).
    pub fn set_worktree_size(&mut self, bytes: u64) {
        self.worktree_size = bytes;
    }

    /// Measured use of one running task.
    pub fn usage(&self, task: &str) -> Option<Usage> {
        self.usage.get(task).copied()
    }

    /// Whether one more task of `profile` may start now, with `running` running; the reason
    /// when not (for the narration).
    pub fn admit(&self, limits: &Limits, profile: &str, kind: &str, running: &[Tree]) -> Result<(), String> {
        self.admit_profile(limits, profile, running)?;
        self.admit_machine(limits, profile, kind, running)
    }

    /// What holds for a profile wherever its agents run (here or on a cluster's nodes): its
    /// ceiling, and what its API's rate limits left of it.
    pub fn admit_profile(&self, limits: &Limits, profile: &str, running: &[Tree]) -> Result<(), String> {
        if let Some(&most) = limits.per_profile.get(profile) {
            let mine = running.iter().filter(|t| t.profile == profile).count();
            if mine >= most {
                return Err(format!(
                    "{profile}: {mine} running, the most parallel.{profile}.concurrency {most} allows"
                ));
            }
        }
        if let Some(r) = self.rates.get(profile) {
            if let Some((until, wall)) = r.until {
                if Instant::now() < until {
                    return Err(format!(
                        "{profile}: rate limited by the API, waiting for the reset at {}",
                        clock(wall)
                    ));
                }
            }
            let mine = running.iter().filter(|t| t.profile == profile).count();
            if mine >= r.limit {
                return Err(format!(
                    "{profile}: at most {} at once after rate limits (raised again on success)",
                    r.limit
                ));
            }
        }
        Ok(())
    }

    /// What holds for agents on this machine: the ceiling, disk, CPU and memory.
    fn admit_machine(&self, limits: &Limits, profile: &str, kind: &str, running: &[Tree]) -> Result<(), String> {
        if running.is_empty() {
            return Ok(());
        }
        let ceiling = limits.ceiling();
        if running.len() >= ceiling {
            return Err(match limits.requested {
                Some(n) => format!("{} running: the -j {n} ceiling", running.len()),
                None => format!("{} running: the default ceiling (parallel.maxConcurrency {ceiling})", running.len()),
            });
        }
        let s = &self.sample;
        // Tasks not measured yet count at what they are expected to take; their worktrees may
        // not be in the last reading of free disk either.
        let pending: Vec<&Tree> = running.iter().filter(|t| !self.usage.contains_key(&t.task)).collect();
        let disk_wanted = (pending.len() as u64 + 1) * self.worktree_size;
        if s.free_disk < limits.min_disk.saturating_add(disk_wanted) {
            return Err(if self.worktree_size == 0 {
                format!("only {} MiB disk free (minimum {} MiB)", s.free_disk >> 20, limits.min_disk >> 20)
            } else {
                format!(
                    "disk: {} MiB free, a worktree takes {} MiB ({} starting), parallel.minDisk keeps {} MiB",
                    s.free_disk >> 20,
                    self.worktree_size >> 20,
                    pending.len(),
                    limits.min_disk >> 20
                )
            });
        }
        let measured = running.len() - pending.len();
        let known = limits.cpu_per_task.is_some() || self.learned.get(profile).is_some_and(|l| l.cpu.is_some());
        if !known && pending.len() >= measured.max(SLOW_START) {
            return Err(format!("measuring what {} new agents use before starting more", pending.len()));
        }
        let want = self.expected(limits, profile, kind);
        // To learn what a kind of task needs, one has to run: a kind never measured, with none
        // of it running, may start one task whatever the CPU says (memory still decides).
        let kind_known = self.learned.get(&kind_key(profile, kind)).is_some_and(|l| l.cpu.is_some());
        let probe = !kind_known && !running.iter().any(|t| t.profile == profile && t.kind == kind);
        let budget = s.cpus.saturating_sub(limits.reserve_cpus).max(1) as f64 * limits.cpu_limit as f64 / 100.0;
        // What the reading saw of agents that have ended since is free now: admission after a
        // task's end does not wait for the next reading.
        let gone: f64 =
            self.usage.iter().filter(|(task, _)| !running.iter().any(|t| &t.task == *task)).map(|(_, u)| u.cores).sum();
        let used = (s.cpu_usage as f64 / 100.0 * s.cpus as f64 - gone).max(0.0);
        let pending_cpu: f64 = pending.iter().map(|t| self.expected(limits, &t.profile, &t.kind).cores).sum();
        // A task measured to need under a tenth of a core (an agent waiting on its model) costs
        // the CPUs nothing worth waiting for, whatever the load; anything heavier waits for room.
        let light = want.cores < LIGHT;
        if !light && !probe && used + pending_cpu + want.cores > budget {
            return Err(format!(
                "CPU: {:.1} of {budget:.1} cores in use or promised; a {profile} task takes about {:.2}",
                used + pending_cpu,
                want.cores
            ));
        }
        // Memory: what is free, less what running tasks are still expected to grow to.
        let agents_rss: u64 = running.iter().filter_map(|t| self.usage.get(&t.task)).map(|u| u.rss).sum();
        let mut free = s.available_memory;
        if let Some(cap) = limits.memory_limit {
            free = free.min(cap.saturating_sub(agents_rss));
        }
        let growth: u64 = running
            .iter()
            .map(|t| {
                let exp = self.expected(limits, &t.profile, &t.kind).rss;
                exp.saturating_sub(self.usage.get(&t.task).map(|u| u.rss).unwrap_or(0))
            })
            .sum();
        let reserve = if limits.memory_limit.is_some() { 0 } else { (s.total_memory / 20).max(512 * MIB) };
        if free < growth + want.rss + reserve {
            return Err(format!(
                "memory: {} MiB free, running tasks may still take {} MiB, a {profile} task needs about {} MiB",
                free >> 20,
                growth >> 20,
                want.rss >> 20
            ));
        }
        Ok(())
    }

    /// A task of `profile` hit a rate limit (or overload) with `running` of that profile
    /// running: halve its concurrency and pause its starts until `reset` from now.
    pub fn rate_limited(&mut self, profile: &str, running: usize, reset: Duration) -> String {
        let r = self.rates.entry(profile.to_string()).or_default();
        r.limit = (running / 2).max(1).min(r.limit);
        r.hits += 1;
        let wall = SystemTime::now() + reset;
        let until = Instant::now() + reset;
        if r.until.is_none_or(|(u, _)| u < until) {
            r.until = Some((until, wall));
        }
        format!(
            "{profile}: rate limited by the API; at most {} at once, new starts wait until {}",
            r.limit,
            clock(r.until.map(|(_, w)| w).unwrap_or(wall))
        )
    }

    /// A task of `profile` succeeded: one more may run at once.
    pub fn succeeded(&mut self, profile: &str) {
        if let Some(r) = self.rates.get_mut(profile) {
            r.limit = r.limit.saturating_add(1);
        }
    }

    /// What a profile's rate limits left: most of its tasks at once, and until when its new
    /// starts wait (None: it met no rate limit).
    pub fn rate(&self, profile: &str) -> Option<(usize, SystemTime)> {
        self.rates.get(profile).and_then(|r| r.until.map(|(_, wall)| (r.limit, wall)))
    }

    /// What the running tasks of `trees` were last measured to use together: cores, bytes,
    /// and how many of them have been measured.
    pub fn agents(&self, trees: &[Tree]) -> (f64, u64, usize) {
        trees
            .iter()
            .filter_map(|t| self.usage.get(&t.task))
            .fold((0.0, 0, 0), |(c, m, n), u| (c + u.cores, m + u.rss, n + 1))
    }

    /// When a rate-limited profile may start again (None when it may now).
    pub fn paused_until(&self, profile: &str) -> Option<Instant> {
        self.rates.get(profile).and_then(|r| r.until).map(|(u, _)| u).filter(|u| *u > Instant::now())
    }
}

/// Readings of the machine closer together than this are not recorded in the run's log.
pub const READING_EVERY: Duration = Duration::from_secs(15);

/// Whether a reading `now`, `since` after the last one recorded (`last`), is worth a place in
/// the run's log: the first with an agent measured, a new ceiling, or (at most every
/// [`READING_EVERY`]) a figure that moved materially: the machine's CPU by 20 points, the
/// agents' by half a core, the machine's memory by a twentieth, the agents' by a quarter (at
/// least 128 MiB). A 10,000-task run of hours then records tens of readings, not thousands.
/// `measured`: some running agent has been measured (a reading before says nothing of them).
pub fn reading_due(
    last: Option<&crate::store::runs::Machine>,
    now: &crate::store::runs::Machine,
    measured: bool,
    since: Duration,
) -> bool {
    let Some(last) = last else { return measured };
    if last.ceiling != now.ceiling || last.ceiling_reason != now.ceiling_reason {
        return true;
    }
    since >= READING_EVERY
        && ((last.cpu_percent - now.cpu_percent).abs() >= 20.0
            || (last.agents_cores - now.agents_cores).abs() >= 0.5
            || last.memory_used.abs_diff(now.memory_used) >= (now.memory_total / 20).max(128 * MIB)
            || last.agents_rss.abs_diff(now.agents_rss) >= (last.agents_rss / 4).max(128 * MIB))
}

fn kind_key(profile: &str, kind: &str) -> String {
    format!("{profile}/{kind}")
}

/// Wall-clock time of day (UTC), for "waiting until 14:32:05".
fn clock(t: SystemTime) -> String {
    crate::ui::clock(t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_recorded_first_on_a_new_ceiling_and_on_a_material_move_only() {
        let m = crate::store::runs::Machine {
            cpus: 2,
            cpu_percent: 40.0,
            memory_used: 8 * GIB,
            memory_total: 20 * GIB,
            agents_cores: 0.5,
            agents_rss: GIB,
            ceiling: 8,
            ceiling_reason: "-j 8".into(),
        };
        let later = READING_EVERY;
        assert!(!reading_due(None, &m, false, Duration::ZERO), "nothing measured yet");
        assert!(reading_due(None, &m, true, Duration::ZERO));
        assert!(!reading_due(Some(&m), &m, true, later * 100));
        let small = crate::store::runs::Machine {
            cpu_percent: 55.0,
            memory_used: 8 * GIB + 900 * MIB,
            agents_cores: 0.9,
            agents_rss: GIB + 200 * MIB,
            ..m.clone()
        };
        assert!(!reading_due(Some(&m), &small, true, later));
        let cpu = crate::store::runs::Machine { cpu_percent: 61.0, ..m.clone() };
        assert!(reading_due(Some(&m), &cpu, true, later) && !reading_due(Some(&m), &cpu, true, later / 2));
        let agents = crate::store::runs::Machine { agents_cores: 1.0, ..m.clone() };
        assert!(reading_due(Some(&m), &agents, true, later));
        let mem = crate::store::runs::Machine { agents_rss: GIB + 300 * MIB, ..m.clone() };
        assert!(reading_due(Some(&m), &mem, true, later));
        let ceiling = crate::store::runs::Machine { ceiling: 4, ceiling_reason: "memory".into(), ..m.clone() };
        assert!(reading_due(Some(&m), &ceiling, true, Duration::ZERO));
    }

    fn limits(requested: Option<usize>) -> Limits {
        Limits {
            requested,
            max_concurrency: 16,
            reserve_cpus: 0,
            cpu_per_task: None,
            memory_per_task: None,
            memory_limit: None,
            min_disk: GIB,
            cpu_limit: 150.0,
            per_profile: Default::default(),
            max_processes: None,
        }
    }

    fn gov(sample: Sample) -> Governor {
        let mut g = Governor::new(Path::new("."));
        g.sample = sample;
        g.last = Some(Instant::now());
        g
    }

    fn tree(task: &str, profile: &str) -> Tree {
        Tree { task: task.into(), profile: profile.into(), kind: "feature".into(), pid: 1 }
    }

    const SMALL: Sample =
        Sample { cpus: 2, cpu_usage: 5.0, available_memory: 20 * GIB, total_memory: 24 * GIB, free_disk: 100 * GIB };

    #[test]
    fn an_ended_agents_measured_cpu_is_free_at_once() {
        let mut g = gov(Sample {
            cpus: 2,
            cpu_usage: 95.0,
            available_memory: 8 << 30,
            total_memory: 16 << 30,
            free_disk: u64::MAX,
        });
        let l = limits(Some(4));
        g.seed("claude", "feature", 1.0, 100 << 20);
        // Agent `a` was measured at 1.8 cores; with it running, another does not fit ...
        g.usage.insert("a".into(), Usage { cores: 1.8, rss: 100 << 20, processes: 3 });
        let b = tree("b", "claude");
        assert!(g.admit(&l, "claude", "feature", &[tree("a", "claude"), b.clone()]).is_err());
        // ... and once it ended, before the next reading, it does.
        assert!(g.admit(&l, "claude", "feature", &[b]).is_ok());
    }

    #[test]
    fn capacity_is_the_ceiling_unless_memory_or_an_explicit_share_says_less() {
        assert_eq!(capacity(&limits(None), &SMALL).workers, 16);
        assert_eq!(capacity(&limits(Some(6)), &SMALL).workers, 6, "-j is honoured on 2 CPUs");
        let share = Limits { cpu_per_task: Some(1.0), ..limits(Some(8)) };
        assert_eq!(capacity(&share, &SMALL).workers, 2);
        let big = Limits { memory_per_task: Some(8 * GIB), ..limits(Some(8)) };
        assert_eq!(capacity(&big, &SMALL).workers, 2);
    }

    #[test]
    fn waiting_agents_run_many_at_once_busy_ones_are_held_to_the_cpus() {
        let l = limits(None);
        let mut g = gov(SMALL);
        // Measured: claude tasks idle at 3% of a core, builds at a full core each.
        for (key, cpu) in [("claude", 0.03), ("claude/feature", 0.03), ("build", 1.0), ("build/feature", 1.0)] {
            g.learned.insert(key.into(), Learned { cpu: Some(cpu), rss: 300 * MIB });
        }
        let running: Vec<Tree> = (0..10).map(|i| tree(&format!("c{i}"), "claude")).collect();
        for t in &running {
            g.usage.insert(t.task.clone(), Usage { cores: 0.03, rss: 300 * MIB, processes: 1 });
        }
        assert!(g.admit(&l, "claude", "feature", &running).is_ok(), "10 waiting agents leave room for an 11th");
        g.sample.cpu_usage = 60.0; // 1.2 of a 3.0-core budget in use
        assert!(g.admit(&l, "build", "feature", &running).is_ok(), "a full-core build fits in the 1.8 left");
        g.sample.cpu_usage = 110.0; // 2.2 cores in demand (runnable threads) of 3.0
        assert!(g.admit(&l, "build", "feature", &running).is_err(), "a full-core build does not fit in 0.8 left");
        assert!(g.admit(&l, "claude", "feature", &running).is_ok());
    }

    #[test]
    fn a_kind_never_measured_gets_one_probe_and_is_not_judged_by_another_kind() {
        let l = limits(None);
        let mut g = gov(SMALL);
        // Builds measured at a full core; the machine is full.
        for key in ["x", "x/test"] {
            g.learned.insert(key.into(), Learned { cpu: Some(1.0), rss: MIB });
        }
        g.sample.cpu_usage = 150.0;
        let builds: Vec<Tree> =
            (0..3).map(|i| Tree { task: format!("b{i}"), profile: "x".into(), kind: "test".into(), pid: 1 }).collect();
        for t in &builds {
            g.usage.insert(t.task.clone(), Usage { cores: 1.0, rss: MIB, processes: 1 });
        }
        assert!(g.admit(&l, "x", "test", &builds).unwrap_err().contains("CPU"));
        assert!(g.admit(&l, "x", "docs", &builds).is_ok(), "one docs task may show what docs tasks need");
        let mut with_probe = builds.clone();
        with_probe.push(Tree { task: "d0".into(), profile: "x".into(), kind: "docs".into(), pid: 1 });
        assert!(g.admit(&l, "x", "docs", &with_probe).is_err(), "one probe at a time");
        g.learned.insert("x/docs".into(), Learned { cpu: Some(0.0), rss: MIB });
        g.usage.insert("d0".into(), Usage::default());
        assert!(g.admit(&l, "x", "docs", &with_probe).is_ok(), "measured light, docs tasks start");
    }

    #[test]
    fn unmeasured_profiles_start_four_then_double() {
        let l = limits(None);
        let mut g = gov(SMALL);
        let running: Vec<Tree> = (0..4).map(|i| tree(&i.to_string(), "x")).collect();
        assert!(g.admit(&l, "x", "feature", &running[..3]).is_ok());
        assert!(g.admit(&l, "x", "feature", &running).unwrap_err().contains("measuring"));
        for t in &running {
            g.usage.insert(t.task.clone(), Usage { cores: 0.01, rss: MIB, processes: 1 });
        }
        g.learned.insert("x".into(), Learned { cpu: Some(0.01), rss: MIB });
        assert!(g.admit(&l, "x", "feature", &running).is_ok());
    }

    #[test]
    fn memory_for_growth_of_running_tasks_is_kept() {
        let l = Limits { memory_limit: Some(GIB), ..limits(None) };
        let mut g = gov(SMALL);
        g.learned.insert("m".into(), Learned { cpu: Some(0.01), rss: 400 * MIB });
        let running = vec![tree("a", "m")];
        // Started, not grown yet: it is still expected to take 400 MiB.
        g.usage.insert("a".into(), Usage { cores: 0.0, rss: 10 * MIB, processes: 1 });
        assert!(g.admit(&l, "m", "feature", &running).is_ok(), "400 + 400 fit in 1 GiB");
        let two = vec![tree("a", "m"), tree("b", "m")];
        g.usage.insert("b".into(), Usage { cores: 0.0, rss: 10 * MIB, processes: 1 });
        assert!(g.admit(&l, "m", "feature", &two).unwrap_err().contains("memory"), "a third would not fit");
    }

    #[test]
    fn ceiling_and_disk() {
        let mut g = gov(SMALL);
        g.learned.insert("c".into(), Learned { cpu: Some(0.0), rss: MIB });
        let running: Vec<Tree> = (0..3).map(|i| tree(&i.to_string(), "c")).collect();
        for t in &running {
            g.usage.insert(t.task.clone(), Usage::default());
        }
        assert!(g.admit(&limits(Some(3)), "c", "feature", &running).unwrap_err().contains("-j 3"));
        g.sample.free_disk = GIB / 2;
        assert!(g.admit(&limits(None), "c", "feature", &running).unwrap_err().contains("disk"));
        assert!(g.admit(&limits(None), "c", "feature", &[]).is_ok(), "one task may always start");
    }

    #[test]
    fn worktrees_being_created_count_against_free_disk() {
        let mut g = gov(SMALL);
        g.learned.insert("c".into(), Learned { cpu: Some(0.0), rss: MIB });
        g.set_worktree_size(2 * GIB);
        g.sample.free_disk = 8 * GIB;
        // 8 GiB free, 1 GiB kept: one measured task (its worktree is in the reading) leaves
        // room for three new 2 GiB worktrees, of which two are being created.
        let mut running: Vec<Tree> = (0..3).map(|i| tree(&i.to_string(), "c")).collect();
        g.usage.insert("0".into(), Usage::default());
        assert!(g.admit(&limits(None), "c", "feature", &running).is_ok());
        running.push(tree("3", "c"));
        let why = g.admit(&limits(None), "c", "feature", &running).unwrap_err();
        assert!(why.contains("a worktree takes 2048 MiB (3 starting)"), "{why}");
        // Once measured, the reading has them.
        for t in &running {
            g.usage.insert(t.task.clone(), Usage::default());
        }
        assert!(g.admit(&limits(None), "c", "feature", &running).is_ok());
    }

    #[test]
    fn each_profile_may_have_its_own_ceiling() {
        let l = Limits { per_profile: [("codex".to_string(), 1)].into(), ..limits(None) };
        let mut g = gov(SMALL);
        g.learned.insert("codex".into(), Learned { cpu: Some(0.01), rss: MIB });
        g.learned.insert("claude".into(), Learned { cpu: Some(0.01), rss: MIB });
        let running = vec![tree("a", "codex")];
        g.usage.insert("a".into(), Usage::default());
        assert!(g.admit(&l, "codex", "feature", &running).unwrap_err().contains("parallel.codex.concurrency 1"));
        assert!(g.admit(&l, "claude", "feature", &running).is_ok());
    }

    #[test]
    fn rate_limits_halve_pause_and_climb_back() {
        let l = limits(None);
        let mut g = gov(SMALL);
        g.learned.insert("claude".into(), Learned { cpu: Some(0.01), rss: MIB });
        let running: Vec<Tree> = (0..6).map(|i| tree(&i.to_string(), "claude")).collect();
        for t in &running {
            g.usage.insert(t.task.clone(), Usage::default());
        }
        let msg = g.rate_limited("claude", 6, Duration::from_millis(200));
        assert!(msg.contains("at most 3"), "{msg}");
        assert!(g.admit(&l, "claude", "feature", &[]).unwrap_err().contains("waiting for the reset"));
        assert!(g.admit(&l, "other", "feature", &running).is_ok(), "other profiles are not limited");
        std::thread::sleep(Duration::from_millis(250));
        assert!(g.admit(&l, "claude", "feature", &running[..2]).is_ok());
        assert!(g.admit(&l, "claude", "feature", &running[..3]).is_err());
        g.succeeded("claude");
        assert!(g.admit(&l, "claude", "feature", &running[..3]).is_ok(), "additive increase");
    }
}
