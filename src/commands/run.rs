//! `git parallel run`: execute a plan (planning a directory first), then integrate.

use super::Context;
use crate::cli::RunArgs;
use crate::error::{usage, Error};
use crate::exec::executor::Executor;
use crate::exec::orchestrator::{self, Observer};
use crate::exec::task::Control;
use crate::plan::Plan;
use crate::store::plans;
use crate::store::runs::{host_name, Event, RunLog, RunStatus, TaskStatus};
use crate::ui;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// Integration settings carried from `run`/`resume` to the end of the run.
#[derive(Debug, Clone, Default)]
pub struct IntegrateOpts {
    pub skip: bool,
    pub into: Option<String>,
    pub verify: Option<String>,
    /// Conflicts go back to their tasks' agents.
    pub resolve: bool,
    /// Publish the integrated result at the end.
    pub publish: bool,
}

static CONTROL: OnceLock<Arc<Control>> = OnceLock::new();

const MAX_RETRIES: u32 = 20;
const MIN_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(10);
const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(600);

/// Ctrl-C (and SIGTERM, as `cancel` sends): first stop starting tasks and terminate agents,
/// second kill them.
pub fn interrupt_control() -> Arc<Control> {
    CONTROL
        .get_or_init(|| {
            let ctl = Arc::new(Control::default());
            let c = Arc::clone(&ctl);
            let first: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
            let _ = ctrlc::set_handler(move || {
                let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
                match *first {
                    None => {
                        *first = Some(std::time::Instant::now());
                        c.stop.store(true, Ordering::SeqCst);
                    }
                    // `git parallel` is run by git, which forwards the terminal's SIGINT while
                    // the terminal sends it too: one key press arrives twice within
                    // milliseconds. Only a second press, later, kills the agents.
                    Some(t) if t.elapsed() < std::time::Duration::from_millis(500) => {}
                    Some(_) => c.kill.store(true, Ordering::SeqCst),
                }
            });
            ctl
        })
        .clone()
}

/// Orchestrator options from settings and flags.
pub fn options(
    ctx: &Context,
    concurrency: Option<usize>,
    agent: Option<&str>,
    template: Option<&str>,
    timeout: Option<&str>,
    retries: Option<u32>,
    worktree_dir: Option<PathBuf>,
) -> Result<orchestrator::Options> {
    let s = &ctx.settings;
    let concurrency = crate::config::check_concurrency(concurrency)?;
    let agent = agent.map(str::to_string).unwrap_or_else(|| s.agent.clone());
    if !crate::agent::PROFILES.contains(&agent.as_str()) {
        return Err(usage(format!("unknown agent `{agent}` (known: {})", crate::agent::PROFILES.join(", "))));
    }
    let timeout = match timeout {
        Some(t) => crate::config::parse_duration(t).map_err(|e| usage(format!("--timeout: {e}")))?,
        None => s.timeout,
    };
    // Each retry leaves commits and a transcript in the run's log: keep them few and spaced.
    let retries = retries.unwrap_or(s.retries);
    if retries > MAX_RETRIES {
        return Err(usage(format!("retries: at most {MAX_RETRIES} (asked for {retries})")));
    }
    if s.retry_delay < MIN_RETRY_DELAY || s.retry_delay > MAX_RETRY_DELAY {
        return Err(usage(format!(
            "parallel.retryDelay must be between {} and {} (is {})",
            humantime::format_duration(MIN_RETRY_DELAY),
            humantime::format_duration(MAX_RETRY_DELAY),
            humantime::format_duration(s.retry_delay)
        )));
    }
    Ok(orchestrator::Options {
        limits: s.limits(concurrency),
        agent,
        template: template.map(str::to_string).or_else(|| s.agent_command.clone()),
        timeout,
        grace: s.kill_grace,
        retries,
        retry_base: s.retry_delay,
        worktree_dir: worktree_dir.or_else(|| s.worktree_dir.clone()),
        setup: s.setup.clone(),
        check: s.check.clone(),
        fix_rounds: s.fix_rounds,
        budget: s.budget,
        budget_hard: false,
        copy: s.copy.clone(),
        sandbox: false,
        sandbox_read: s.sandbox_read.clone(),
        sandbox_env: s.sandbox_env.clone(),
        sparse: s.sparse,
        keep_worktrees: s.keep_worktrees,
        worktrees: s.worktrees,
        warm: s.warm.clone(),
        phase_barrier: false,
        attempts_all: s.attempts_all,
        executor: Executor::Local,
    })
}

/// The executor `name`, or `parallel.executor` (default local), checked usable.
pub fn executor(ctx: &Context, name: Option<&str>) -> Result<Executor> {
    match name.unwrap_or(&ctx.settings.executor) {
        "local" => Ok(Executor::Local),
        "slurm" => {
            crate::exec::slurm::check_available()?;
            Ok(Executor::Slurm(crate::exec::slurm::Slurm::new(ctx.settings.slurm.clone())))
        }
        other => Err(usage(format!("unknown executor `{other}` (known: {})", crate::exec::executor::NAMES.join(", ")))),
    }
}

/// Under `--sandbox`, refuse to start when a check runs a program the sandbox hides (in the
/// home, or under `/tmp` or `/run`, not shown by `parallel.sandboxRead`): every task would spend
/// its first try before its check could not run. The programs judged are those the command's
/// words name by a path that exists (`programs`); a bare name is found on PATH, whose folders
/// the sandbox shows, and anything else fails at its first check, if at all.
fn checks_seen_in_sandbox(repo: &crate::repo::Repo, plan: &Plan, check: Option<&str>, extra: &[PathBuf]) -> Result<()> {
    let mut commands: Vec<&str> = plan.tasks.iter().filter_map(|t| t.check.as_deref()).chain(check).collect();
    commands.sort();
    commands.dedup();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for command in commands {
        for program in programs(command, home.as_deref()) {
            let path = std::path::Path::new(&program);
            if !path.is_absolute() || !path.exists() {
                continue;
            }
            if crate::exec::sandbox::hides(path, &repo.workdir, &repo.common_dir, extra) {
                let show = crate::exec::sandbox::lines_to_show(path);
                let how = match show.is_empty() {
                    true => "install it outside your home, /tmp and /run, or in a folder of its own there, shown with `git config --add parallel.sandboxRead DIR`".to_string(),
                    false => format!("show it with:\n  {}", show.join("\n  ")),
                };
                return Err(usage(format!(
                    "the check `{command}` runs {program}, which --sandbox hides (your home, /tmp and /run are private inside it); {how}"
                )));
            }
        }
    }
    Ok(())
}

/// The programs a shell command line runs, as far as its words show: the first word of each
/// command of a list or pipeline (after `&&`, `||`, `;`, `|`, `&`), past `NAME=value`
/// assignments and the wrappers `env`, `exec`, `time`, `nohup`, `command` and their options,
/// with a leading `~/` or `$HOME/` expanded. A program named through a variable, a function or
/// another script is not seen; nor is any when the line does not split (an open quote).
fn programs(command: &str, home: Option<&std::path::Path>) -> Vec<String> {
    let assignment = regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*=").expect("valid regex");
    let expand = |w: &str| -> String {
        let rest = ["~/", "$HOME/", "${HOME}/"].iter().find_map(|p| w.strip_prefix(p));
        match (rest, home) {
            (Some(rest), Some(home)) => home.join(rest).display().to_string(),
            _ => w.to_string(),
        }
    };
    let mut out = Vec::new();
    for part in commands_of(command) {
        let Ok(words) = shell_words::split(&part) else { continue };
        let mut wrapped = false;
        for word in words {
            if matches!(word.as_str(), "env" | "exec" | "time" | "nohup" | "command" | "!") {
                wrapped = true;
            } else if !(assignment.is_match(&word) || wrapped && word.starts_with('-')) {
                out.push(expand(&word));
                break;
            }
        }
    }
    out
}

/// A command line cut at its unquoted `&&`, `||`, `;`, `|`, `&` and newlines: the commands of
/// its lists and pipelines.
fn commands_of(line: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let (mut quote, mut escaped) = (None::<char>, false);
    for c in line.chars() {
        let part = parts.last_mut().expect("one part at least");
        match (quote, c) {
            _ if escaped => {
                escaped = false;
                part.push(c);
            }
            (Some('\''), '\'') | (Some('"'), '"') => {
                quote = None;
                part.push(c);
            }
            (Some('\''), _) => part.push(c),
            (_, '\\') => {
                escaped = true;
                part.push(c);
            }
            (Some(_), _) => part.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                part.push(c);
            }
            (None, '&' | '|' | ';' | '\n') => {
                if !part.trim().is_empty() {
                    parts.push(String::new());
                }
            }
            (None, _) => part.push(c),
        }
    }
    parts.retain(|p| !p.trim().is_empty());
    parts
}

/// Refuse to start when an agent a task needs is not installed: nothing should half-run.
/// (Under a cluster executor the agents run on the nodes, whose PATH is not ours to check.)
pub fn check_agents(plan: &Plan, opts: &orchestrator::Options) -> Result<()> {
    // `max_turns:` reaches the CLIs that take a limit; the others run without one.
    let mut unlimited: Vec<String> = plan
        .tasks
        .iter()
        .filter(|t| t.max_turns.is_some())
        .flat_map(|t| {
            let profiles = match t.agents.is_empty() {
                true => vec![t.agent.clone().unwrap_or_else(|| opts.agent.clone())],
                false => t.agents.clone(),
            };
            let id = crate::plan::attempt_of(&t.id).0.to_string();
            profiles.into_iter().filter(|p| !crate::agent::takes_max_turns(p)).map(move |p| format!("{id} ({p})"))
        })
        .collect();
    unlimited.sort();
    unlimited.dedup();
    if !unlimited.is_empty() {
        ui::note(&format!(
            "warning: max_turns is ignored for {}: Codex and Aider take no limit on turns",
            unlimited.join(", ")
        ));
    }
    if !opts.executor.is_local() {
        return Ok(());
    }
    for p in plan.profiles(&opts.agent) {
        let input = crate::agent::TaskInput {
            prompt: "",
            prompt_file: std::path::Path::new("prompt.md"),
            worktree: std::path::Path::new("."),
            task: "t",
            resume_session: None,
            state: std::path::Path::new("state"),
            sandboxed: false,
            max_turns: None,
        };
        let inv = crate::agent::invocation(&p, opts.template.as_deref(), &input)?;
        if crate::proc::which(&inv.program).is_none() {
            return Err(Error::usage(format!("agent `{}` ({p} profile) is not installed or not on PATH", inv.program))
                .with_hint(match p.as_str() {
                    "claude" => "install Claude Code (npm install -g @anthropic-ai/claude-code) or choose another agent with --agent",
                    "codex" => "install Codex (npm install -g @openai/codex) or choose another agent with --agent",
                    "gemini" => "install Gemini CLI (npm install -g @google/gemini-cli) or choose another agent with --agent",
                    "aider" => "install Aider (pipx install aider-chat) or choose another agent with --agent",
                    _ => "install it, or choose another agent with --agent / git config parallel.agent",
                })
                .into());
        }
    }
    Ok(())
}

/// Run (or resume) the remaining tasks of `log`'s run, integrate, record the end, summarize.
pub fn drive(
    ctx: &Context,
    log: &mut RunLog,
    plan: &Plan,
    opts: &orchestrator::Options,
    integ: &IntegrateOpts,
    json: bool,
) -> Result<i32> {
    log.append(Event::Attached { pid: std::process::id(), host: host_name() }, &[])?;
    let ctl = interrupt_control();
    let mut progress = ui::progress::Progress::new(json);
    let status = orchestrator::execute(log, plan, opts, Arc::clone(&ctl), &mut progress)?;
    progress.finish();
    // Cluster jobs' inboxes whose content is in the log now.
    crate::store::inbox::sweep(&ctx.repo, &log.id, log.state());
    // Stopped by the budget, what finished is still integrated: the morning's result.
    let budget = ctl.budget_spent.load(std::sync::atomic::Ordering::SeqCst);
    let interrupted = matches!(status, RunStatus::Interrupted | RunStatus::Cancelled) && !budget;
    let mut status = status;
    if !integ.skip && !interrupted {
        let verify = integ.verify.clone().or_else(|| ctx.settings.verify.clone());
        let mut result =
            crate::integrate::integrate(log, plan, integ.into.as_deref(), verify.as_deref(), &mut progress)?;
        if integ.resolve && !crate::integrate::handed_back(&result).is_empty() && !result.interrupted {
            result = crate::integrate::resolve::resolve_conflicts(
                log,
                plan,
                opts,
                verify.as_deref(),
                result,
                &mut progress,
            )?;
        }
        if status == RunStatus::Succeeded && !result.clean() {
            status = RunStatus::Failed;
        }
    }
    // Finished tasks' agents kept their sessions for the integration; it is over.
    if !interrupted {
        for t in &log.state().tasks {
            if matches!(t.status, TaskStatus::Succeeded | TaskStatus::NoChanges)
                && t.worktree.as_ref().is_none_or(|w| !std::path::Path::new(w).exists())
            {
                crate::exec::taskdir::remove_task(&ctx.repo, &log.id, &t.id);
            }
        }
    }
    let ev = Event::Ended { status };
    log.append(ev.clone(), &[])?;
    progress.event(&ev, log.state());
    if let Err(e) = crate::store::objects::auto_maintenance(&ctx.repo) {
        ui::note(&format!("warning: {e:#}"));
    }
    let mut publish_failed = false;
    if integ.publish
        && log.state().integration.as_ref().is_some_and(|i| i.result.commit.is_some() && !i.result.interrupted)
    {
        match super::publish::publish(ctx, &log.id, None, None, false, false) {
            Ok(_) => log.refresh()?,
            Err(e) => {
                // The run's work is all there; only the forge step failed: say so, exit 1.
                ui::note(&format!("publishing failed: {e:#} (try again: git parallel publish {})", log.id));
                publish_failed = true;
            }
        }
    }
    if !json {
        ui::out(&ui::run::summary(log.state()))?;
    }
    Ok(match status {
        RunStatus::Succeeded if publish_failed => 1,
        RunStatus::Succeeded => 0,
        RunStatus::Interrupted if budget && !ctl.stop.load(std::sync::atomic::Ordering::SeqCst) => 1,
        RunStatus::Interrupted | RunStatus::Cancelled => 130,
        _ => 1,
    })
}

/// Uncommitted changes in the main working tree would silently be missing from every task:
/// refuse unless asked (prompt files themselves may be uncommitted).
fn check_clean(plan: &Plan, status: &str, allow: bool) -> Result<()> {
    let dirty: Vec<&str> = status
        .split('\0')
        .filter(|e| e.len() > 3)
        .map(|e| &e[3..])
        .filter(|p| !plan.tasks.iter().any(|t| t.source == *p))
        .collect();
    if dirty.is_empty() {
        return Ok(());
    }
    if allow {
        ui::note(&format!(
            "note: {} uncommitted changes in the main working tree are not part of the tasks' base",
            dirty.len()
        ));
        return Ok(());
    }
    Err(Error::usage(format!(
        "the main working tree has uncommitted changes ({}{}); tasks would start from {} without them",
        dirty.iter().take(3).copied().collect::<Vec<_>>().join(", "),
        if dirty.len() > 3 { ", ..." } else { "" },
        &plan.base[..12]
    ))
    .with_hint("commit or stash them first, or pass --allow-dirty")
    .into())
}

/// Find or make the plan a run starts from; a new plan comes with its prompts, to be stored
/// once the run can start.
fn plan_for(ctx: &Context, args: &RunArgs, workers: usize) -> Result<(Plan, Option<crate::plan::RawPrompts>)> {
    let repo = &ctx.repo;
    if args.target.len() == 1 {
        let t = &args.target[0];
        let looks_like_id = t.chars().all(|c| c.is_ascii_digit());
        if looks_like_id && !repo.workdir.join(t).exists() {
            return Ok((plans::load(repo, t)?, None));
        }
    }
    if args.target.is_empty() {
        if let Some(id) = plans::latest(repo)? {
            ui::note(&format!("running the latest plan, {id}"));
            return Ok((plans::load(repo, &id)?, None));
        }
    }
    let paths: Vec<PathBuf> = args.target.iter().map(PathBuf::from).collect();
    let opts = crate::plan::Options { workers, allow_conflicts: args.allow_conflicts };
    let (p, raw) = crate::plan::prepare(repo, &ctx.settings.prompts, &paths, &opts)?;
    Ok((p, Some(raw)))
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    if args.sandbox {
        crate::exec::sandbox::check_available()?;
    }
    let opts = options(
        ctx,
        args.concurrency,
        args.agent.as_deref(),
        args.agent_command.as_deref(),
        args.timeout.as_deref(),
        args.retries,
        args.worktree_dir.clone(),
    )?;
    let opts = orchestrator::Options { executor: executor(ctx, args.executor.as_deref())?, ..opts };
    ctx.repo.head_commit()?;
    let workers = crate::schedule::governor::workers_for(&ctx.repo, &ctx.settings, args.concurrency)?;
    if let Some(into) = &args.into {
        crate::integrate::target_branch(&ctx.repo, into)?;
    }
    // The uncommitted-changes check looks at every file of the main worktree: on a large tree
    // it costs as much as planning, so the two go at once.
    let workdir = &ctx.repo.workdir;
    let (planned, status) = std::thread::scope(|s| {
        let status = s.spawn(|| crate::proc::git(workdir, ["status", "--porcelain", "--untracked-files=no", "-z"]));
        (plan_for(ctx, &args, workers), status.join())
    });
    let (mut plan, raw) = planned?;
    let status = status.map_err(|_| anyhow::anyhow!("the uncommitted-changes check panicked"))??;
    check_agents(&plan, &opts)?;
    if args.sandbox {
        let check = args.check.as_deref().or(opts.check.as_deref());
        checks_seen_in_sandbox(&ctx.repo, &plan, check, &opts.sandbox_read)?;
    }
    check_clean(&plan, &status, args.allow_dirty)?;
    let run_base = crate::exec::worktree::run_dir(&ctx.repo, opts.worktree_dir.as_deref(), "x");
    let run_base = run_base.parent().unwrap_or(&ctx.repo.workdir).to_path_buf();
    crate::exec::worktree::check_dir(&ctx.repo, &run_base)?;
    let budget = match &args.budget {
        Some(b) => Some(crate::config::parse_budget(b).map_err(|e| usage(format!("--budget: {e}")))?),
        None => opts.budget,
    };
    if args.budget_hard && budget.is_none() {
        return Err(usage("--budget-hard needs a budget (--budget USD or parallel.budget)"));
    }
    // Stored only now: a run refused above leaves no plan behind.
    if let Some(raw) = raw {
        plans::save(&ctx.repo, &mut plan, &raw)?;
        ui::note(&format!("planned {} tasks as plan {}", plan.tasks.len(), plan.id));
    }
    std::fs::create_dir_all(&run_base)
        .map_err(|e| usage(format!("cannot create the worktree folder {}: {e}", run_base.display())))?;
    let attempts = args.attempts.unwrap_or(ctx.settings.attempts).clamp(1, 10);
    let plan = plan.with_attempts(attempts);
    let tasks = plan.tasks.iter().map(|t| (t.id.clone(), t.kind)).collect();
    let mut log = RunLog::create(
        &ctx.repo,
        Event::Planned {
            plan: plan.id.clone(),
            base: plan.base.clone(),
            agent: opts.agent.clone(),
            workers,
            tasks,
            sandbox: args.sandbox,
        },
    )?;
    // One live orchestrator per run: a later `resume` sees this claim while we live.
    let _claim = crate::store::owner::claim(&ctx.repo, &log.id)?;
    log.append(
        Event::Options(crate::store::runs::RunOptions {
            concurrency: args.concurrency,
            agent_command: args.agent_command.clone(),
            timeout: args.timeout.clone(),
            retries: args.retries,
            worktree_dir: args.worktree_dir.as_ref().map(|d| d.to_string_lossy().into_owned()),
            no_integrate: args.no_integrate,
            into: args.into.clone(),
            verify: args.verify.clone(),
            sparse: args.sparse,
            keep_worktrees: args.keep_worktrees,
            check: args.check.clone(),
            fix_rounds: args.fix_rounds,
            resolve: args.resolve,
            budget,
            budget_hard: args.budget_hard,
            publish: args.publish || ctx.settings.publish,
            attempts: Some(attempts),
            attempts_all: args.attempts_all || ctx.settings.attempts_all,
        }),
        &[],
    )?;
    ui::note(&format!("run {} of plan {} (follow it with: git parallel status {} --watch)", log.id, plan.id, log.id));
    let integ = IntegrateOpts {
        skip: args.no_integrate,
        into: args.into.clone(),
        verify: args.verify.clone(),
        resolve: args.resolve,
        publish: args.publish || ctx.settings.publish,
    };
    let mut opts = opts;
    opts.sandbox = args.sandbox;
    opts.sparse |= args.sparse;
    opts.phase_barrier = args.phase_barrier;
    opts.keep_worktrees |= args.keep_worktrees;
    opts.check = args.check.clone().or(opts.check);
    opts.fix_rounds = args.fix_rounds.unwrap_or(opts.fix_rounds);
    opts.budget = budget;
    opts.budget_hard = args.budget_hard;
    opts.attempts_all |= args.attempts_all;
    drive(ctx, &mut log, &plan, &opts, &integ, args.json)
}

#[cfg(test)]
mod tests {
    use super::programs;
    use std::path::Path;

    #[test]
    fn the_programs_of_a_command_line() {
        let home = Some(Path::new("/home/u"));
        let got = |c: &str| programs(c, home);
        assert_eq!(got("CI=1 /opt/x/bin/pytest -q"), ["/opt/x/bin/pytest"]);
        assert_eq!(got("cd sub && ~/venv/bin/python -m pytest"), ["cd", "/home/u/venv/bin/python"]);
        assert_eq!(got("make; $HOME/bin/check | tee log"), ["make", "/home/u/bin/check", "tee"]);
        assert_eq!(got("${HOME}/bin/a || env -i FOO=1 /tmp/t/b"), ["/home/u/bin/a", "/tmp/t/b"]);
        assert_eq!(got("time nohup ./scripts/test.sh &"), ["./scripts/test.sh"]);
        assert_eq!(got("a&&~/b||c\nd"), ["a", "/home/u/b", "c", "d"]);
        // A word that is no program: an argument, a quoted operator, a variable.
        assert_eq!(got("echo '&&' ~/not-run"), ["echo"]);
        assert_eq!(got("$RUNNER --all"), ["$RUNNER"]);
        // Operators inside quotes or escaped are words.
        assert_eq!(got("sh -c 'x && ~/y'; echo \"a | b\" \\; w; v"), ["sh", "echo", "v"]);
        // An open quote: that command is not judged.
        assert!(got("pytest -k 'a").is_empty());
        // With no home, `~` stays as written (and is not a path that exists).
        assert_eq!(programs("~/bin/x", None), ["~/bin/x"]);
    }
}
