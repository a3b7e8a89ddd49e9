//! The Slurm executor: each ready task becomes one batch job running `git parallel worker`
//! (the same `task::run` as a local worker, on a compute node, appending to the run's log with
//! compare-and-swap over the shared filesystem). Never Slurm dependencies: a job is submitted
//! only when its task is ready.
//!
//! One thread per task submits its job and waits; one poller watches every job of the run
//! with a single `squeue --states=all` call per poll and tells each task's thread when its job
//! ended. The log then says what happened; when it does not (the job died before it could
//! record: a node failure, a time limit, a cancel from outside), Slurm's state decides:
//! node-caused ends (NODE_FAIL, PREEMPTED, BOOT_FAIL, a job gone) are submitted again within
//! the task's retries; TIMEOUT is a timed-out task; CANCELLED by someone else is a failure.

use super::task::{Control, Msg, Outcome, TaskSpec};
use crate::config::SlurmSettings;
use crate::proc;
use crate::repo::Repo;
use crate::store::runs::{self, Event, TaskStatus};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Between two `squeue` calls.
const POLL: Duration = Duration::from_millis(250);
/// Most of a job's output file kept with a result the orchestrator records itself.
const MAX_OUTPUT: u64 = 64 << 10;
/// Exit code of a job script that could not enter the repository on its node.
const NO_REPO: i32 = 97;

/// The Slurm executor (cheap to clone; clones share one poller).
#[derive(Clone)]
pub struct Slurm {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SlurmSettings,
    /// Jobs being watched: id → who waits for its end.
    watched: Mutex<HashMap<String, Sender<JobInfo>>>,
    poller: std::sync::Once,
    /// A resume: jobs an earlier orchestrator submitted but did not live to record may exist.
    resuming: std::sync::atomic::AtomicBool,
    /// Those jobs by task, looked up once (`None` until then); each is taken by its task.
    unrecorded: Mutex<Option<HashMap<String, String>>>,
    /// Jobs this orchestrator submitted (never an earlier life's).
    ours: Mutex<std::collections::HashSet<String>>,
    /// Tasks waiting for the submitter, which sends a burst as one job array.
    queue: Mutex<Vec<Request>>,
    queued: std::sync::Condvar,
    submitter: std::sync::Once,
}

impl std::fmt::Debug for Slurm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slurm").field("cfg", &self.inner.cfg).finish()
    }
}

/// One job as `squeue` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: String,
    /// PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, PREEMPTED, ...;
    /// `GONE` when Slurm no longer knows the job.
    pub state: String,
    pub reason: String,
    /// Exit code, when the job exited.
    pub code: Option<i32>,
    /// Signal that ended it, if any.
    pub signal: Option<i32>,
    pub node: Option<String>,
}

/// States after which a job runs no more.
const ENDED: &[&str] = &[
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
    "REVOKED",
    "GONE",
];

/// Ends caused by the node or the cluster, not by the task: worth submitting again.
const NODE_CAUSED: &[&str] = &["NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "GONE"];

impl JobInfo {
    pub fn ended(&self) -> bool {
        // `CANCELLED by 0` is how some versions print it.
        ENDED.iter().any(|s| self.state == *s || self.state.starts_with(&format!("{s} ")))
    }

    fn gone(id: &str) -> JobInfo {
        JobInfo {
            id: id.to_string(),
            state: "GONE".into(),
            reason: "Slurm no longer knows the job".into(),
            code: None,
            signal: None,
            node: None,
        }
    }

    fn describe(&self) -> String {
        let mut s = format!("Slurm job {} {}", self.id, self.state);
        match (self.code, self.signal) {
            (_, Some(sig)) => s.push_str(&format!(" (signal {sig})")),
            (Some(c), None) if c != 0 => s.push_str(&format!(" (exit code {c})")),
            _ => {}
        }
        if let Some(n) = &self.node {
            s.push_str(&format!(" on {n}"));
        }
        s
    }
}

/// Parse `squeue -h -O 'JobArrayID:|,State:|,Reason:|,exit_code:|,NodeList:'` output.
pub fn parse_squeue(text: &str) -> HashMap<String, JobInfo> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        if f.len() < 4 || f[0].is_empty() {
            continue;
        }
        // exit_code is a raw wait status: code = v >> 8, signal = v & 0x7f.
        let raw = f[3].parse::<i32>().ok();
        let signal = raw.map(|v| v & 0x7f).filter(|s| *s != 0);
        let code = raw.filter(|_| signal.is_none()).map(|v| (v >> 8) & 0xff);
        let node = f.get(4).map(|n| n.to_string()).filter(|n| !n.is_empty() && !n.starts_with('('));
        out.insert(
            f[0].to_string(),
            JobInfo { id: f[0].to_string(), state: f[1].to_string(), reason: f[2].to_string(), code, signal, node },
        );
    }
    out
}

/// The state of `ids`, in one call. A job Slurm has forgotten (after `MinJobAge`) is `GONE`.
pub fn squeue(ids: &[String]) -> Result<HashMap<String, JobInfo>> {
    let args = vec![
        "-h".to_string(),
        "--states=all".into(),
        // Array elements one per line, each as `N_I`.
        "-r".into(),
        "-j".into(),
        ids.join(","),
        "-O".into(),
        "JobArrayID:|,State:|,Reason:|,exit_code:|,NodeList:".into(),
    ];
    let out = proc::tool("squeue", &args, None)?;
    if out.ok() {
        let mut found = parse_squeue(&out.stdout_str());
        for id in ids {
            found.entry(id.clone()).or_insert_with(|| JobInfo::gone(id));
        }
        return Ok(found);
    }
    let err = out.stderr_str();
    if err.contains("Invalid job id") {
        // One forgotten job fails the whole call: ask one by one.
        if ids.len() == 1 {
            return Ok(HashMap::from([(ids[0].clone(), JobInfo::gone(&ids[0]))]));
        }
        let mut all = HashMap::new();
        for id in ids {
            all.extend(squeue(std::slice::from_ref(id))?);
        }
        return Ok(all);
    }
    bail!("squeue failed: {}", err.trim())
}

/// The job name a task's jobs get.
fn job_name(spec: &TaskSpec) -> String {
    format!("gp-{}-{}", spec.run, spec.task)
}

/// The run's jobs still queued or running, by task, that the run may not have recorded: an
/// orchestrator killed between `sbatch` and recording the job ids leaves them behind. Found by
/// name (a task's job, or an array whose task list says which element is whose) and the
/// repository they run in (two repositories may both have a run 1 with a task `a`); one
/// `squeue` for the whole run.
fn unrecorded_live_jobs(repo: &Repo, spec: &TaskSpec) -> Result<HashMap<String, String>> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let args = ["-h", "-r", "-u", &uid.to_string(), "-O", "Name:|,JobArrayID:|,WorkDir:|,State:"].map(String::from);
    let out = proc::tool("squeue", &args, None)?;
    if !out.ok() {
        bail!("squeue failed: {}", out.stderr_str().trim());
    }
    let workdir = repo.workdir.canonicalize().unwrap_or_else(|_| repo.workdir.clone());
    let (single, array) = (format!("gp-{}-", spec.run), format!("gp-{}+", spec.run));
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    let mut found = HashMap::new();
    for l in out.stdout_str().lines() {
        let f: Vec<&str> = l.split('|').map(str::trim).collect();
        let [name, id, dir, state, ..] = f[..] else { continue };
        let live = !JobInfo { state: state.to_string(), ..JobInfo::gone(id) }.ended();
        if !live || id.is_empty() || Path::new(dir).canonicalize().ok().as_ref() != Some(&workdir) {
            continue;
        }
        let task = if let Some(t) = name.strip_prefix(&single) {
            t.to_string()
        } else if let Some(k) = name.strip_prefix(&array) {
            let tasks = lists.entry(k.to_string()).or_insert_with(|| {
                let file = jobs_dir(spec).join(format!("array-{k}.tasks"));
                std::fs::read_to_string(file).unwrap_or_default().lines().map(String::from).collect()
            });
            let Some(t) = id.rsplit_once('_').and_then(|(_, i)| i.parse::<usize>().ok()).and_then(|i| tasks.get(i))
            else {
                continue;
            };
            t.clone()
        } else {
            continue;
        };
        found.insert(task, id.to_string());
    }
    Ok(found)
}

/// Stop jobs (TERM, then KILL after Slurm's KillWait). Unknown or ended jobs are ignored.
pub fn scancel(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let out = proc::tool("scancel", ids, None)?;
    if !out.ok() {
        bail!("scancel {} failed: {}", ids.join(" "), out.stderr_str().trim());
    }
    Ok(())
}

/// Slurm's clients, present and answering (checked before a run starts).
pub fn check_available() -> Result<()> {
    for tool in ["sbatch", "squeue", "scancel"] {
        if proc::which(tool).is_none() {
            return Err(crate::error::Error::usage(format!("--executor slurm: `{tool}` is not on PATH"))
                .with_hint("run on a machine with the Slurm client tools (Debian: apt install slurm-client)")
                .into());
        }
    }
    let out = proc::tool("squeue", &["-h".into(), "-j".into(), "1".into()], None)?;
    let err = out.stderr_str();
    if !out.ok() && !err.contains("Invalid job id") {
        return Err(crate::error::Error::usage(format!(
            "--executor slurm: squeue cannot reach the cluster: {}",
            err.trim()
        ))
        .with_hint("is slurmctld running, and SLURM_CONF pointing at its slurm.conf?")
        .into());
    }
    Ok(())
}

/// Where a run's job scripts, task specs and job outputs go: beside its worktrees (on the
/// shared filesystem).
fn jobs_dir(spec: &TaskSpec) -> PathBuf {
    spec.worktree.parent().unwrap_or(Path::new(".")).join(".slurm")
}

/// Where a job says its agent hit the API's rate limit, for the orchestrator's per-profile limit
/// (the job's own retries wait on their own): the reset in milliseconds, rewritten at each hit.
/// A file beside the job's script on the shared filesystem: one `stat` per watch tick is all
/// the orchestrator pays, where reading the run's log would cost a parse per tick.
fn rate_file(spec: &TaskSpec) -> PathBuf {
    jobs_dir(spec).join(format!("{}.rate-limited", spec.task))
}

/// Called by the worker in a job when its agent was rate limited.
pub fn report_rate_limit(spec: &TaskSpec, reset: Duration) -> Result<()> {
    let file = rate_file(spec);
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", reset.as_millis()))?;
    std::fs::rename(&tmp, &file)?;
    Ok(())
}

/// A new report in the rate file since `seen` (its modification time): the reset it gave.
fn rate_report(spec: &TaskSpec, seen: &mut Option<std::time::SystemTime>) -> Option<Duration> {
    let file = rate_file(spec);
    let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
    if *seen == Some(modified) {
        return None;
    }
    *seen = Some(modified);
    let ms = std::fs::read_to_string(&file).ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_millis(ms))
}

/// The output file of a job (`N_I`: element I of array N).
fn output_file(spec: &TaskSpec, id: &str) -> PathBuf {
    if id.contains('_') {
        return jobs_dir(spec).join(format!("array-{id}.out"));
    }
    jobs_dir(spec).join(format!("{}-{id}.out", spec.task))
}

/// The end of a file, at most `max` bytes.
fn tail_of(path: &Path, max: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max {
        let _ = f.seek(SeekFrom::Start(len - max));
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    buf
}

/// A task waiting for its job.
struct Request {
    repo: Repo,
    spec: TaskSpec,
    reply: Sender<Result<String>>,
}

/// After a task asks for a job, the submitter waits this long for more (tasks readied by the
/// same event ask within moments of each other), and at most `GATHER_MAX` in all.
const GATHER: Duration = Duration::from_millis(20);
const GATHER_MAX: Duration = Duration::from_millis(200);
/// Elements per job array: below Slurm's default `MaxArraySize` (1001). A cluster set lower
/// refuses the array, and its tasks are submitted one by one.
const MAX_ARRAY: usize = 1000;

/// Submit what tasks ask for, a burst at a time: one `sbatch` per burst of tasks with equal
/// arguments (a job array), where a job each made thousands of calls. Ends with the executor.
fn submit_loop(inner: Weak<Inner>) {
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let batch = {
            let q = inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            let (q, _) = inner
                .queued
                .wait_timeout_while(q, Duration::from_millis(500), |q| q.is_empty())
                .unwrap_or_else(|e| e.into_inner());
            if q.is_empty() {
                continue;
            }
            drop(q);
            let start = Instant::now();
            let mut seen = 0;
            loop {
                let n = inner.queue.lock().unwrap_or_else(|e| e.into_inner()).len();
                if n == seen || start.elapsed() >= GATHER_MAX {
                    break;
                }
                seen = n;
                std::thread::sleep(GATHER);
            }
            std::mem::take(&mut *inner.queue.lock().unwrap_or_else(|e| e.into_inner()))
        };
        submit_batch(&inner.cfg, batch);
    }
}

/// Submit a burst: tasks with the same arguments (and run) as one array, a lone task as a job.
fn submit_batch(cfg: &SlurmSettings, batch: Vec<Request>) {
    let mut groups: Vec<(Vec<String>, PathBuf, Vec<Request>)> = Vec::new();
    for r in batch {
        let args = sbatch_args(cfg, &r.repo, &r.spec);
        let dir = jobs_dir(&r.spec);
        match groups.iter_mut().find(|(a, d, _)| *a == args && *d == dir) {
            Some(g) => g.2.push(r),
            None => groups.push((args, dir, vec![r])),
        }
    }
    for (args, _, mut group) in groups {
        while !group.is_empty() {
            let rest = group.split_off(group.len().min(MAX_ARRAY));
            if group.len() == 1 {
                let r = &group[0];
                let _ = r.reply.send(submit_one(&args, &r.repo, &r.spec));
            } else {
                match submit_array(&args, &group) {
                    Ok(ids) => {
                        for (r, id) in group.iter().zip(ids) {
                            let _ = r.reply.send(Ok(id));
                        }
                    }
                    Err(e) => {
                        crate::ui::note(&format!(
                            "warning: Slurm refused a job array of {} tasks ({e:#}); submitting them one by one",
                            group.len()
                        ));
                        for r in &group {
                            let _ = r.reply.send(submit_one(&args, &r.repo, &r.spec));
                        }
                    }
                }
            }
            group = rest;
        }
    }
}

/// A task's spec, read by its job's worker.
fn spec_file(spec: &TaskSpec) -> PathBuf {
    jobs_dir(spec).join(format!("{}.json", spec.task))
}

/// The script's first lines: Slurm runs a job whose --chdir is missing in /tmp, and calls it
/// COMPLETED, so the script checks for itself and fails loudly.
fn enter_repo(repo: &Repo) -> String {
    let r = shell_words::quote(&repo.workdir.to_string_lossy()).into_owned();
    format!("cd {r} || {{ echo \"git-parallel: cannot enter {r} on $(hostname): a shared filesystem must hold the repository\" >&2; exit {NO_REPO}; }}\n")
}

fn quoted(p: &Path) -> String {
    shell_words::quote(&p.to_string_lossy()).into_owned()
}

/// `sbatch` with `args`; the job id it printed.
fn sbatch(args: &[String], repo: &Repo, what: &str) -> Result<String> {
    let out = proc::tool("sbatch", args, Some(&repo.workdir))?;
    if !out.ok() {
        bail!("sbatch failed for {what}: {}", out.stderr_str().trim());
    }
    let stdout = out.stdout_str();
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id for {what}: {stdout:?}");
    }
    Ok(id)
}

/// One task as one job, named after it.
fn submit_one(args: &[String], repo: &Repo, spec: &TaskSpec) -> Result<String> {
    let dir = jobs_dir(spec);
    let exe = proc::supervisor_exe()?;
    let script = format!(
        "#!/bin/sh\n# git-parallel: run {run} task {task}\n{enter}exec {exe} -C {repo} worker {run} {task} --spec {spec}\n",
        run = shell_words::quote(&spec.run),
        task = shell_words::quote(&spec.task),
        enter = enter_repo(repo),
        repo = quoted(&repo.workdir),
        exe = quoted(&exe),
        spec = quoted(&spec_file(spec)),
    );
    let script_file = dir.join(format!("{}.sh", spec.task));
    std::fs::write(&script_file, script)?;
    let mut a = args.to_vec();
    a.push(format!("--job-name={}", job_name(spec)));
    a.push(format!("--output={}", dir.join(format!("{}-%j.out", spec.task)).display()));
    a.push(script_file.to_string_lossy().into_owned());
    sbatch(&a, repo, &format!("task {}", spec.task))
}

/// Tasks of one run with equal arguments as one job array: element I runs line I+1 of
/// `array-K.tasks` (kept for a resume to tell which task a live element is). Their ids `N_I`.
fn submit_array(args: &[String], group: &[Request]) -> Result<Vec<String>> {
    let (repo, first) = (&group[0].repo, &group[0].spec);
    let dir = jobs_dir(first);
    let names: String = group.iter().map(|r| format!("{}\n", r.spec.task)).collect();
    let k = new_array_file(&dir, &names)?;
    let mut cases = String::new();
    for (i, r) in group.iter().enumerate() {
        cases.push_str(&format!("{i}) task={} ;;\n", shell_words::quote(&r.spec.task)));
    }
    let exe = proc::supervisor_exe()?;
    let script = format!(
        "#!/bin/sh\n# git-parallel: run {run}, one task per array index (array-{k}.tasks)\ncase \"$SLURM_ARRAY_TASK_ID\" in\n{cases}*) echo \"git-parallel: array index $SLURM_ARRAY_TASK_ID names no task\" >&2; exit 98 ;;\nesac\n{enter}exec {exe} -C {repo} worker {run} \"$task\" --spec {dir}/\"$task.json\"\n",
        run = shell_words::quote(&first.run),
        enter = enter_repo(repo),
        repo = quoted(&repo.workdir),
        exe = quoted(&exe),
        dir = quoted(&dir),
    );
    let script_file = dir.join(format!("array-{k}.sh"));
    std::fs::write(&script_file, script)?;
    let mut a = args.to_vec();
    a.push(format!("--job-name={}", array_name(&first.run, k)));
    a.push(format!("--output={}", dir.join("array-%A_%a.out").display()));
    a.push(format!("--array=0-{}", group.len() - 1));
    a.push(script_file.to_string_lossy().into_owned());
    let id = sbatch(&a, repo, &format!("{} tasks", group.len()))?;
    Ok((0..group.len()).map(|i| format!("{id}_{i}")).collect())
}

/// Write an array's task list under a number no earlier array of the run used; the number.
fn new_array_file(dir: &Path, names: &str) -> Result<u64> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    loop {
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        let file = dir.join(format!("array-{k}.tasks"));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&file) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(names.as_bytes())?;
                return Ok(k);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", file.display())),
        }
    }
}

/// The name of a run's array K: `+` is in no task id, so it never meets a task's job name.
fn array_name(run: &str, k: u64) -> String {
    format!("gp-{run}+{k}")
}

/// The sbatch arguments every job of `spec`'s kind shares (no name, output or script):
/// tasks whose arguments are equal can go to Slurm as one job array.
pub fn sbatch_args(cfg: &SlurmSettings, repo: &Repo, spec: &TaskSpec) -> Vec<String> {
    let mut a = vec!["--parsable".to_string(), format!("--chdir={}", repo.workdir.display())];
    if let Some(p) = &cfg.partition {
        a.push(format!("--partition={p}"));
    }
    if let Some(acc) = &cfg.account {
        a.push(format!("--account={acc}"));
    }
    let time = cfg.time_limit.clone().unwrap_or_else(|| (spec.timeout.as_secs().div_ceil(60) + 5).to_string());
    a.push(format!("--time={time}"));
    if let Some(c) = cfg.cpus_per_task {
        a.push(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = &cfg.mem_per_task {
        a.push(format!("--mem={m}"));
    }
    a.extend(cfg.extra_args.iter().cloned());
    a
}

impl Slurm {
    pub fn new(cfg: SlurmSettings) -> Slurm {
        Slurm {
            inner: Arc::new(Inner {
                cfg,
                watched: Mutex::new(HashMap::new()),
                poller: std::sync::Once::new(),
                resuming: Default::default(),
                unrecorded: Mutex::new(None),
                ours: Default::default(),
                queue: Default::default(),
                queued: Default::default(),
                submitter: std::sync::Once::new(),
            }),
        }
    }

    /// This orchestrator resumes a run: before submitting a task, look for a job of it that
    /// an earlier life submitted without recording.
    pub fn set_resuming(&self) {
        self.inner.resuming.store(true, Ordering::SeqCst);
    }

    /// Submit `spec` as a job (alone, or in an array with the tasks that became ready in the
    /// same moment); its id (`N`, or `N_I` for element I of array N).
    fn submit(&self, repo: &Repo, spec: &TaskSpec) -> Result<String> {
        let dir = jobs_dir(spec);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(spec_file(spec), serde_json::to_vec_pretty(spec)?)?;
        let (reply, answer) = mpsc::channel();
        let request = Request { repo: repo.clone(), spec: spec.clone(), reply };
        self.inner.queue.lock().unwrap_or_else(|e| e.into_inner()).push(request);
        self.inner.queued.notify_one();
        let weak = Arc::downgrade(&self.inner);
        self.inner.submitter.call_once(|| {
            std::thread::spawn(move || submit_loop(weak));
        });
        let id = answer.recv().context("the Slurm submitter stopped")??;
        self.inner.ours.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone());
        Ok(id)
    }

    /// A live job of `spec`'s task that an earlier life submitted and did not record.
    fn unrecorded(&self, repo: &Repo, spec: &TaskSpec) -> Result<Option<String>> {
        let mut known = self.inner.unrecorded.lock().unwrap_or_else(|e| e.into_inner());
        if known.is_none() {
            *known = Some(unrecorded_live_jobs(repo, spec)?);
        }
        let id = known.as_mut().and_then(|k| k.remove(&spec.task));
        let ours = self.inner.ours.lock().unwrap_or_else(|e| e.into_inner());
        Ok(id.filter(|id| !ours.contains(id)))
    }

    /// Be told when job `id` ends.
    fn watch(&self, id: &str) -> Receiver<JobInfo> {
        let (tx, rx) = mpsc::channel();
        self.inner.watched.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), tx);
        let weak = Arc::downgrade(&self.inner);
        self.inner.poller.call_once(|| {
            std::thread::spawn(move || poll_loop(weak));
        });
        rx
    }

    /// Run one task as a job (or re-attach to its live job), report over `tx` like a local
    /// worker: `Recorded` when the job recorded the task's end itself, otherwise `Finished`.
    pub fn run_task(self, repo: Repo, spec: TaskSpec, job: Option<String>, ctl: Arc<Control>, tx: Sender<Msg>) {
        let msg = match self.drive(&repo, &spec, job, &ctl, &tx) {
            Ok(None) => Msg::Recorded { task: spec.task.clone() },
            Ok(Some(o)) => Msg::Finished(Box::new(o)),
            Err(e) => Msg::Finished(Box::new(Outcome {
                task: spec.task.clone(),
                status: TaskStatus::Failed,
                reason: Some(format!("{e:#}")),
                ..Default::default()
            })),
        };
        let _ = tx.send(msg);
    }

    fn submit_recorded(&self, repo: &Repo, spec: &TaskSpec, tx: &Sender<Msg>) -> Result<String> {
        let id = self.submit(repo, spec)?;
        crate::fault::point("slurm-submitted");
        let _ = tx.send(Msg::Event(Box::new(Event::Job {
            task: spec.task.clone(),
            executor: "slurm".into(),
            id: id.clone(),
            node: None,
        })));
        Ok(id)
    }

    fn drive(
        &self,
        repo: &Repo,
        spec: &TaskSpec,
        job: Option<String>,
        ctl: &Control,
        tx: &Sender<Msg>,
    ) -> Result<Option<Outcome>> {
        // A resume: the job of an earlier orchestrator life may still be queued or running.
        let mut live = match job.as_deref().and_then(|j| j.strip_prefix("slurm:")) {
            Some(id) => squeue(&[id.to_string()])?.remove(id).filter(|j| !j.ended()).map(|j| j.id),
            None => None,
        };
        if live.is_none() && self.inner.resuming.load(Ordering::SeqCst) {
            if let Some(id) = self.unrecorded(repo, spec)? {
                let _ = tx.send(Msg::Event(Box::new(Event::Job {
                    task: spec.task.clone(),
                    executor: "slurm".into(),
                    id: id.clone(),
                    node: None,
                })));
                live = Some(id);
            }
        }
        // A job of an earlier life may have posted its end while no orchestrator was there.
        let mut inbox = Inbox { seen: None, live: false };
        // The end the job posted; an interruption is not final: the job's own end says why.
        let mut posted: Option<Outcome> = None;
        // A job of an earlier life may have posted its end while no orchestrator was there;
        // what else it posted is in the log already, or stale (an interrupted attempt).
        if let Some(o) = inbox.fold(repo, spec, tx)? {
            if o.status.is_final() {
                return Ok(Some(o));
            }
            if job.is_some() {
                posted = Some(o);
            }
        }
        let mut current = match live {
            Some(id) => {
                crate::ui::note(&format!("{}: re-attached to Slurm job {id}", spec.task));
                id
            }
            None => {
                if ctl.stop.load(Ordering::SeqCst) {
                    return Ok(Some(self.outcome(
                        repo,
                        spec,
                        TaskStatus::Interrupted,
                        "run stopped before submit".into(),
                        None,
                    )));
                }
                self.submit_recorded(repo, spec, tx)?
            }
        };
        let mut node_retries = spec.retries;
        // Reports of an earlier life's jobs are old news.
        let mut rate_seen = std::fs::metadata(rate_file(spec)).and_then(|m| m.modified()).ok();
        loop {
            let rx = self.watch(&current);
            let mut cancelled = false;
            let mut next_fold = Instant::now();
            let end = loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(info) => break info,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => bail!("lost the watch of Slurm job {current}"),
                }
                if let Some(reset) = rate_report(spec, &mut rate_seen) {
                    let _ = tx.send(Msg::RateLimited { task: spec.task.clone(), profile: spec.profile.clone(), reset });
                }
                // Stopping the run, or this task (another attempt of it won): its job goes.
                if (ctl.stop.load(Ordering::SeqCst) || ctl.condemned(&spec.task).is_some()) && !cancelled {
                    cancelled = true;
                    scancel(std::slice::from_ref(&current))?;
                }
                // What the job posted, on its way to the run's log (once a second per job).
                if Instant::now() >= next_fold {
                    next_fold = Instant::now() + INBOX_EVERY;
                    if let Some(o) = inbox.fold(repo, spec, tx)? {
                        // Its end is posted; the job is finishing: do not wait for squeue.
                        if o.status.is_final() {
                            return Ok(Some(o));
                        }
                        posted = Some(o);
                    }
                }
            };
            if let Some(o) = inbox.fold(repo, spec, tx)? {
                if o.status.is_final() {
                    return Ok(Some(o));
                }
                posted = Some(o);
            }
            let task = runs::load(repo, &spec.run)?.task(&spec.task).cloned();
            let status = posted.as_ref().map(|o| o.status).or(task.as_ref().map(|t| t.status)).unwrap_or_default();
            if let Some(why) = ctl.condemned(&spec.task).filter(|_| !status.is_final()) {
                // Stopped by us for a reason of the run's (the worker saw only a TERM): say which.
                return Ok(Some(self.outcome(repo, spec, TaskStatus::Failed, why, Some(&end))));
            }
            match decide(&end, status, ctl.stop.load(Ordering::SeqCst), node_retries) {
                Decision::Recorded => return Ok(posted.take()),
                Decision::Resubmit(reason) => {
                    posted = None;
                    node_retries -= 1;
                    let attempt = task.as_ref().map(|t| t.attempts).unwrap_or(0) + 1;
                    let _ = tx.send(Msg::Event(Box::new(Event::Retried {
                        task: spec.task.clone(),
                        attempt,
                        reason,
                        delay_ms: 0,
                    })));
                    current = self.submit_recorded(repo, spec, tx)?;
                }
                Decision::Record(status, reason) => {
                    return Ok(Some(self.outcome(repo, spec, status, reason, Some(&end))));
                }
            }
        }
    }

    /// An outcome the orchestrator records for a job that could not: what the job did record
    /// (transcript, metrics) is kept, and the job's output file goes with it as stderr.
    fn outcome(
        &self,
        repo: &Repo,
        spec: &TaskSpec,
        status: TaskStatus,
        reason: String,
        end: Option<&JobInfo>,
    ) -> Outcome {
        let t = runs::load(repo, &spec.run).ok().and_then(|s| s.task(&spec.task).cloned());
        let transcript = runs::transcript(repo, &spec.run, &spec.task, "jsonl").ok().flatten().unwrap_or_default();
        let stderr = end.map(|e| tail_of(&output_file(spec, &e.id), MAX_OUTPUT)).unwrap_or_default();
        Outcome {
            task: spec.task.clone(),
            status,
            commit: None,
            reason: Some(reason),
            exit_code: end.and_then(|e| e.code).or(t.as_ref().and_then(|t| t.exit_code)),
            metrics: t.as_ref().map(|t| t.metrics.clone()).unwrap_or_default(),
            files_changed: Vec::new(),
            wall_ms: t.as_ref().and_then(|t| t.started_at).map(|s| ((runs::now() - s) * 1000.0) as u64).unwrap_or(0),
            logs: runs::write_task_logs(repo, &transcript, &stderr).unwrap_or_default(),
            transcript,
            stderr,
        }
    }
}

/// How often a running job's inbox is read.
const INBOX_EVERY: Duration = Duration::from_secs(1);

/// The orchestrator's side of a task's inbox (`store::inbox`): what was read of it so far.
struct Inbox {
    seen: Option<gix::ObjectId>,
    /// Forward progress as it comes; false for what an earlier orchestrator life may already
    /// have recorded, of which only the end counts.
    live: bool,
}

impl Inbox {
    /// Forward the job's new events to the orchestrator (the run log's only writer), the
    /// progress of a batch coalesced into its last one; the task's outcome once it is posted.
    fn fold(&mut self, repo: &Repo, spec: &TaskSpec, tx: &Sender<Msg>) -> Result<Option<Outcome>> {
        let (tip, items) = crate::store::inbox::read(repo, &spec.run, &spec.task, self.seen)?;
        self.seen = tip.or(self.seen);
        let last_progress = items.iter().rposition(|(e, _)| matches!(e, Event::Progress { .. }));
        let mut end = None;
        for (i, (ev, logs)) in items.into_iter().enumerate() {
            match ev {
                Event::Finished { .. } => end = Outcome::from_event(&ev, logs),
                Event::Progress { .. } if Some(i) != last_progress => {}
                ev if self.live || matches!(ev, Event::Job { .. }) => {
                    let _ = tx.send(Msg::Event(Box::new(ev)));
                }
                _ => {}
            }
        }
        self.live = true;
        Ok(end)
    }
}

/// What to do when a task's job ended.
#[derive(Debug, PartialEq)]
enum Decision {
    /// The job recorded the task's end in the log itself.
    Recorded,
    /// Not the task's doing (the node failed, the job was preempted or lost): submit again.
    Resubmit(String),
    /// The job ended without recording the task's end: record this.
    Record(TaskStatus, String),
}

/// Map a job's end (and what the log says of its task) to the task's fate. `status` is the
/// task's status in the log after the job ended; `stopping`: the run is being stopped (we
/// scancelled); `retries`: node-caused resubmissions left.
fn decide(end: &JobInfo, status: TaskStatus, stopping: bool, retries: u32) -> Decision {
    if status.is_final() {
        return Decision::Recorded;
    }
    let is = |s: &str| end.state == s || end.state.starts_with(&format!("{s} "));
    let node_caused = NODE_CAUSED.iter().any(|s| is(s));
    if node_caused && !stopping && retries > 0 {
        return Decision::Resubmit(format!("{}: not the task's doing, submitted again", end.describe()));
    }
    if stopping && status == TaskStatus::Interrupted {
        // The worker saw the TERM and recorded the interruption.
        return Decision::Recorded;
    }
    let (status, reason) = if stopping {
        (TaskStatus::Interrupted, format!("run stopped: {} (scancel)", end.describe()))
    } else if is("TIMEOUT") || is("DEADLINE") {
        (TaskStatus::TimedOut, format!("{}: the job reached its Slurm time limit", end.describe()))
    } else if is("CANCELLED") {
        (TaskStatus::Failed, format!("{}: cancelled outside git-parallel", end.describe()))
    } else if end.code == Some(NO_REPO) {
        (TaskStatus::Failed, format!("{}: the node cannot see the repository (shared filesystem?)", end.describe()))
    } else if node_caused {
        (TaskStatus::Failed, format!("{}: no retries left", end.describe()))
    } else {
        (TaskStatus::Failed, format!("{} without recording a result", end.describe()))
    };
    Decision::Record(status, reason)
}

/// Watch every job with one `squeue` call per poll; tell each waiter when its job ended.
/// Ends when the executor is gone.
fn poll_loop(inner: Weak<Inner>) {
    let mut last_error = String::new();
    loop {
        std::thread::sleep(POLL);
        let Some(inner) = inner.upgrade() else { return };
        let ids: Vec<String> = inner.watched.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        if ids.is_empty() {
            continue;
        }
        match squeue(&ids) {
            Ok(jobs) => {
                last_error.clear();
                let mut watched = inner.watched.lock().unwrap_or_else(|e| e.into_inner());
                for (id, info) in jobs {
                    if info.ended() {
                        if let Some(tx) = watched.remove(&id) {
                            let _ = tx.send(info);
                        }
                    }
                }
            }
            Err(e) => {
                // The controller may be restarting: keep watching, say it once.
                let text = format!("{e:#}");
                if text != last_error {
                    crate::ui::note(&format!("warning: cannot watch Slurm jobs ({text}); retrying"));
                    last_error = text;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines() {
        let jobs = parse_squeue(
            "7|FAILED|NonZeroExitCode|768|vm\n8|RUNNING|None|0|vm\n9|PENDING|Resources|0|\n10|CANCELLED|None|15|vm\n",
        );
        assert_eq!(jobs["7"].code, Some(3));
        assert!(jobs["7"].ended());
        assert_eq!(jobs["7"].node.as_deref(), Some("vm"));
        assert!(!jobs["8"].ended());
        assert_eq!(jobs["9"].node, None);
        assert!(!jobs["9"].ended());
        assert_eq!(jobs["10"].signal, Some(15));
        assert_eq!(jobs["10"].code, None);
        assert!(jobs["10"].describe().contains("signal 15"));
        assert!(JobInfo::gone("3").ended());
    }

    fn ended(state: &str, code: Option<i32>) -> JobInfo {
        JobInfo {
            id: "5".into(),
            state: state.into(),
            reason: String::new(),
            code,
            signal: None,
            node: Some("n1".into()),
        }
    }

    #[test]
    fn the_log_wins_then_slurm_decides() {
        use TaskStatus::*;
        // Whatever Slurm says, a result the job recorded stands.
        assert_eq!(decide(&ended("TIMEOUT", None), Succeeded, false, 2), Decision::Recorded);
        assert_eq!(decide(&ended("FAILED", Some(1)), Failed, false, 2), Decision::Recorded);
        // The node's doing: submitted again while retries last, then a failure.
        for s in ["NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "GONE"] {
            assert!(matches!(decide(&ended(s, None), Running, false, 1), Decision::Resubmit(_)), "{s}");
            assert!(matches!(decide(&ended(s, None), Running, false, 0), Decision::Record(Failed, _)), "{s}");
            // Not while the run is being stopped.
            assert!(matches!(decide(&ended(s, None), Running, true, 1), Decision::Record(Interrupted, _)), "{s}");
        }
        // The time limit, even after the worker recorded the TERM as an interruption.
        assert!(matches!(decide(&ended("TIMEOUT", None), Interrupted, false, 2), Decision::Record(TimedOut, _)));
        // Someone else's scancel is a failure (not retried, not run again by itself) ...
        match decide(&ended("CANCELLED by 0", None), Interrupted, false, 2) {
            Decision::Record(Failed, why) => assert!(why.contains("cancelled outside"), "{why}"),
            d => panic!("{d:?}"),
        }
        // ... ours, when stopping, is what the worker recorded, or an interruption.
        assert_eq!(decide(&ended("CANCELLED", None), Interrupted, true, 2), Decision::Recorded);
        assert!(matches!(decide(&ended("CANCELLED", None), Running, true, 2), Decision::Record(Interrupted, _)));
        // A node without the repository, and a job that died before recording anything.
        match decide(&ended("FAILED", Some(NO_REPO)), Pending, false, 2) {
            Decision::Record(Failed, why) => assert!(why.contains("shared filesystem"), "{why}"),
            d => panic!("{d:?}"),
        }
        match decide(&ended("COMPLETED", Some(0)), Running, false, 2) {
            Decision::Record(Failed, why) => assert!(why.contains("without recording"), "{why}"),
            d => panic!("{d:?}"),
        }
    }
}
