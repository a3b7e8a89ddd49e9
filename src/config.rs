//! Settings: `git config parallel.*`, with command-line flags on top.

use crate::error::usage;
use crate::repo::Repo;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a command may need from configuration. Flags override these fields.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `parallel.agent`: default agent profile.
    pub agent: String,
    /// `parallel.agentCommand`: the custom profile's command template.
    pub agent_command: Option<String>,
    /// `parallel.concurrency`: requested workers (None: from the machine).
    pub concurrency: Option<usize>,
    /// `parallel.maxConcurrency`: cap when nothing is requested (default 4).
    pub max_concurrency: usize,
    /// `parallel.maxProcesses`: most processes one agent may run at once (default 2048, 0: no
    /// limit).
    pub max_processes: Option<usize>,
    /// `parallel.worktreeDir`: where worktrees go (default `<repo>.parallel`).
    pub worktree_dir: Option<PathBuf>,
    /// `parallel.setup`: command run in a new worktree before the agent.
    pub setup: Option<String>,
    /// `parallel.check`: command that must pass in a task's worktree once its agent ends.
    pub check: Option<String>,
    /// `parallel.fixRounds`: times a failed check goes back to the agent (default 2).
    pub fix_rounds: u32,
    /// `parallel.budget`: US dollars a run may spend, from the agents' own cost reports.
    pub budget: Option<f64>,
    /// `parallel.attempts`: independent attempts at each task (default 1).
    pub attempts: u32,
    /// `parallel.attemptsAll`: every attempt finishes and the best wins.
    pub attempts_all: bool,
    /// `parallel.publish`: `run` publishes its result once integrated.
    pub publish: bool,
    /// `parallel.remote`: where `publish` pushes (default: the base branch's upstream remote,
    /// else `origin`).
    pub remote: Option<String>,
    /// `parallel.forge`: `github` or `gitlab` (default: from the remote's URL).
    pub forge: Option<String>,
    /// `parallel.forgeRepo`: the forge repository (`owner/name`; default: from the remote's URL).
    pub forge_repo: Option<String>,
    /// `parallel.forgeApi`: the forge's REST API (default: from the remote's host).
    pub forge_api: Option<String>,
    /// `parallel.copy` (multi-valued): untracked files copied into new worktrees.
    pub copy: Vec<String>,
    /// `parallel.sandboxRead` (multi-valued): paths a sandboxed agent sees read-only beyond
    /// what it sees by default (a file your agent's configuration names in your home, say).
    pub sandbox_read: Vec<PathBuf>,
    /// `parallel.sandboxEnv` (multi-valued): variables a sandboxed agent keeps beyond the
    /// allowlist (a name, or a prefix ending in `_`).
    pub sandbox_env: Vec<String>,
    /// `parallel.verify`: command that must pass on the integrated tree.
    pub verify: Option<String>,
    /// `parallel.reserveCpus`: CPUs kept free for the rest of the machine (default 1).
    pub reserve_cpus: usize,
    /// `parallel.cpuPerTask`: CPUs one agent needs (default 1).
    pub cpu_per_task: Option<f64>,
    /// `parallel.memoryPerTask`: memory one agent needs at least (a size: 512m, 2 GiB; default: measured).
    pub memory_per_task: Option<u64>,
    pub memory_limit: Option<u64>,
    /// `parallel.minDisk`: free bytes kept where the worktrees are, after the new worktree's
    /// checkout (default 1 GiB).
    pub min_disk: u64,
    /// `parallel.cpuLimit`: percent CPU above which no new task starts (default 90).
    pub cpu_limit: f32,
    /// `parallel.timeout`: time limit per task (default 60 minutes).
    pub timeout: Duration,
    /// `parallel.retries`: retries after transient failures (default 2).
    pub retries: u32,
    /// `parallel.retryDelay`: first backoff delay, doubled per retry (default 2s).
    pub retry_delay: Duration,
    /// `parallel.killGrace`: time between SIGTERM and SIGKILL (default 5s).
    pub kill_grace: Duration,
    /// `parallel.verifyTimeout`: longest a verify command may run (default 30m).
    pub verify_timeout: Duration,
    /// `parallel.<profile>.concurrency`: most agents of one profile at once (e.g. what an API
    /// account allows), under the run's own ceiling.
    pub per_profile: std::collections::BTreeMap<String, usize>,
    /// `parallel.sparse`: sparse worktrees with only the task's directories (default false).
    pub sparse: bool,
    /// `parallel.worktree`: how task worktrees are made, `overlay`, `checkout` or `auto`
    /// (default: overlays where the system allows them).
    pub worktrees: crate::exec::overlay::Mode,
    /// `parallel.warm` (multi-valued, or space-separated): ignored folders of the main
    /// worktree offered to every task from a snapshot taken once per run.
    pub warm: Vec<String>,
    /// `parallel.keepWorktrees`: keep a task's worktree after its result was committed
    /// (default false: removed at once, the branch stays).
    pub keep_worktrees: bool,
    /// `parallel.prompts`: default prompt folder (default `prompts`).
    pub prompts: PathBuf,
    /// `parallel.executor`: where tasks run, `local` (default) or `slurm`.
    pub executor: String,
    /// `parallel.slurm.*`: how tasks are submitted to Slurm.
    pub slurm: SlurmSettings,
}

/// `parallel.slurm.*`: what each task's job asks Slurm for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmSettings {
    /// `parallel.slurm.partition` (`--partition`).
    pub partition: Option<String>,
    /// `parallel.slurm.account` (`--account`).
    pub account: Option<String>,
    /// `parallel.slurm.timeLimit` (`--time`, Slurm's format: minutes, `H:MM:SS`, `D-HH`);
    /// default: the task's timeout plus 5 minutes, so our own timeout acts first.
    pub time_limit: Option<String>,
    /// `parallel.slurm.cpusPerTask` (`--cpus-per-task`).
    pub cpus_per_task: Option<u64>,
    /// `parallel.slurm.memPerTask` (`--mem`, Slurm's format such as `4G`).
    pub mem_per_task: Option<String>,
    /// `parallel.slurm.extraArgs`: more sbatch arguments (split like a shell would).
    pub extra_args: Vec<String>,
}

const GIB: u64 = 1 << 30;

impl Settings {
    /// Read `parallel.*` from the repository's configuration (local, global, system).
    pub fn load(repo: &Repo) -> Result<Settings> {
        let cfg = repo.gix.config_snapshot();
        let file = cfg.plumbing();
        let string = |key: &str| cfg.string(key).map(|s| s.to_string()).filter(|s| !s.is_empty());
        let int = |key: &str| -> Result<Option<i64>> {
            cfg.try_integer(key).map_err(|e| usage(format!("bad value for {key} in git config: {e}")))
        };
        let nonneg = |key: &str| -> Result<Option<u64>> {
            match int(key)? {
                Some(v) if v < 0 => Err(usage(format!("{key} must not be negative (is {v})"))),
                v => Ok(v.map(|v| v as u64)),
            }
        };
        let size = |key: &str| -> Result<Option<u64>> {
            string(key).map(|t| parse_size(&t).map_err(|e| usage(format!("{key}: {e}")))).transpose()
        };
        let timeout = match string("parallel.timeout") {
            Some(t) => parse_duration(&t).map_err(|e| usage(format!("parallel.timeout: {e}")))?,
            None => Duration::from_secs(60 * 60),
        };
        let dur = |key: &str, default: Duration| -> Result<Duration> {
            match string(key) {
                Some(t) => parse_duration(&t).map_err(|e| usage(format!("{key}: {e}"))),
                None => Ok(default),
            }
        };
        let concurrency = nonneg("parallel.concurrency")?.map(|v| v as usize);
        if concurrency == Some(0) {
            return Err(usage("parallel.concurrency must be at least 1"));
        }
        Ok(Settings {
            agent: string("parallel.agent").unwrap_or_else(|| "claude".into()),
            agent_command: string("parallel.agentCommand"),
            concurrency,
            max_concurrency: nonneg("parallel.maxConcurrency")?.map(|v| v.max(1) as usize).unwrap_or(16),
            max_processes: match nonneg("parallel.maxProcesses")? {
                Some(0) => None,
                Some(n) => Some(n as usize),
                None => Some(2048),
            },
            worktree_dir: string("parallel.worktreeDir").map(PathBuf::from),
            setup: string("parallel.setup"),
            check: string("parallel.check"),
            remote: string("parallel.remote"),
            publish: cfg.boolean("parallel.publish").unwrap_or(false),
            attempts: nonneg("parallel.attempts")?.map(|v| v.clamp(1, 10) as u32).unwrap_or(1),
            forge: string("parallel.forge"),
            attempts_all: cfg.boolean("parallel.attemptsAll").unwrap_or(false),
            forge_repo: string("parallel.forgeRepo"),
            forge_api: string("parallel.forgeApi"),
            fix_rounds: nonneg("parallel.fixRounds")?.map(|v| v as u32).unwrap_or(2),
            budget: string("parallel.budget")
                .map(|b| parse_budget(&b).map_err(|e| usage(format!("parallel.budget: {e}"))))
                .transpose()?,
            copy: file
                .strings("parallel.copy")
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            sandbox_read: file
                .strings("parallel.sandboxRead")
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            sandbox_env: file
                .strings("parallel.sandboxEnv")
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            verify: string("parallel.verify"),
            reserve_cpus: nonneg("parallel.reserveCpus")?.map(|v| v as usize).unwrap_or(0),
            cpu_per_task: match string("parallel.cpuPerTask") {
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|c| c.is_finite() && *c > 0.0)
                    .map(Some)
                    .ok_or_else(|| usage(format!("parallel.cpuPerTask must be a positive number (is `{v}`)")))?,
                None => None,
            },
            memory_per_task: size("parallel.memoryPerTask")?.map(|v| v.max(1)),
            memory_limit: size("parallel.memoryLimit")?.filter(|v| *v > 0),
            min_disk: size("parallel.minDisk")?.unwrap_or(GIB),
            cpu_limit: nonneg("parallel.cpuLimit")?.map(|v| v as f32).unwrap_or(150.0),
            timeout,
            retries: nonneg("parallel.retries")?.map(|v| v as u32).unwrap_or(2),
            retry_delay: dur("parallel.retryDelay", Duration::from_secs(2))?,
            kill_grace: dur("parallel.killGrace", Duration::from_secs(5))?,
            verify_timeout: dur("parallel.verifyTimeout", Duration::from_secs(30 * 60))?,
            per_profile: {
                let mut m = std::collections::BTreeMap::new();
                for p in crate::agent::PROFILES {
                    if let Some(n) = nonneg(&format!("parallel.{p}.concurrency"))? {
                        m.insert(p.to_string(), (n as usize).max(1));
                    }
                }
                m
            },
            sparse: cfg
                .try_boolean("parallel.sparse")
                .map_err(|e| usage(format!("parallel.sparse: {e}")))?
                .unwrap_or(false),
            worktrees: string("parallel.worktree").map(|v| v.parse().map_err(usage)).transpose()?.unwrap_or_default(),
            warm: file
                .strings("parallel.warm")
                .unwrap_or_default()
                .iter()
                .flat_map(|s| s.to_string().split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect(),
            keep_worktrees: cfg
                .try_boolean("parallel.keepWorktrees")
                .map_err(|e| usage(format!("parallel.keepWorktrees: {e}")))?
                .unwrap_or(false),
            prompts: string("parallel.prompts").map(PathBuf::from).unwrap_or_else(|| "prompts".into()),
            executor: string("parallel.executor").unwrap_or_else(|| "local".into()),
            slurm: SlurmSettings {
                partition: string("parallel.slurm.partition"),
                account: string("parallel.slurm.account"),
                time_limit: string("parallel.slurm.timeLimit"),
                cpus_per_task: nonneg("parallel.slurm.cpusPerTask")?.filter(|c| *c > 0),
                mem_per_task: string("parallel.slurm.memPerTask"),
                extra_args: match string("parallel.slurm.extraArgs") {
                    Some(a) => shell_words::split(&a)
                        .map_err(|e| usage(format!("parallel.slurm.extraArgs: {e} (in `{a}`)")))?,
                    None => Vec::new(),
                },
            },
        })
    }
}

/// Parse a size: bytes, git's `512m` / `2g`, or `2 GiB`, `1.5GB`, `512 MiB` (all binary).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re =
        RE.get_or_init(|| regex::Regex::new(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$").expect("valid regex"));
    let c = re.captures(text).ok_or_else(|| format!("`{text}` is not a size; use e.g. 512m, 2g or 2 GiB"))?;
    let n: f64 = c[1].parse().map_err(|_| format!("`{text}` is not a size"))?;
    let unit = match c[2].to_ascii_lowercase().as_str() {
        "k" => 1u64 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => 1,
    };
    Ok((n * unit as f64) as u64)
}

/// Parse a duration: `90s`, `30m`, `1h 30m`, or a bare number of minutes.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    if let Ok(minutes) = t.parse::<f64>() {
        if minutes.is_finite() && minutes >= 0.0 {
            return Ok(Duration::from_secs_f64(minutes * 60.0));
        }
        return Err(format!("`{t}` is not a duration"));
    }
    humantime::parse_duration(t).map_err(|e| format!("`{t}` is not a duration ({e}); use e.g. 90s, 30m, 1h30m"))
}

impl Settings {
    /// Governor limits from these settings and a requested concurrency.
    pub fn limits(&self, requested: Option<usize>) -> crate::schedule::governor::Limits {
        crate::schedule::governor::Limits {
            requested: requested.or(self.concurrency),
            max_concurrency: self.max_concurrency,
            reserve_cpus: self.reserve_cpus,
            cpu_per_task: self.cpu_per_task,
            memory_per_task: self.memory_per_task,
            memory_limit: self.memory_limit,
            min_disk: self.min_disk,
            cpu_limit: self.cpu_limit,
            per_profile: self.per_profile.clone(),
            max_processes: self.max_processes,
        }
    }
}

/// Check a requested concurrency from the command line.
pub fn check_concurrency(n: Option<usize>) -> Result<Option<usize>> {
    match n {
        Some(0) => Err(usage("--concurrency must be at least 1")),
        n => Ok(n),
    }
}

/// A budget in US dollars: `5`, `2.50`, `$10`.
pub fn parse_budget(text: &str) -> std::result::Result<f64, String> {
    let t = text.trim().trim_start_matches('$');
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{text}` is not an amount of US dollars above 0 (e.g. 5 or 2.50)")),
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_as_the_readme_writes_them() {
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1g").is_err());
    }
}
