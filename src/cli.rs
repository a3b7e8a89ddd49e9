//! Command-line definitions (clap derive). Also the source of the man pages in `man/`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Plan, run and integrate AI coding agents in parallel git worktrees.
///
/// Turns a folder of task prompts into a dependency-aware plan, runs one agent per task in its
/// own worktree, several at once within the machine's limits, and merges the results with git's
/// own merge machinery. Plans, run state and results live in the repository: refs under
/// refs/parallel/, branches under parallel/, notes under refs/notes/parallel.
#[derive(Debug, Parser)]
#[command(name = "git-parallel", bin_name = "git parallel", version, propagate_version = true)]
pub struct Cli {
    /// Run as if started in this directory (like `git -C`).
    #[arg(short = 'C', global = true, value_name = "PATH")]
    pub directory: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Plan(PlanArgs),
    Run(RunArgs),
    Status(StatusArgs),
    Resume(ResumeArgs),
    Cancel(CancelArgs),
    Integrate(IntegrateArgs),
    Clean(CleanArgs),
    Hooks(HooksArgs),
    Report(ReportArgs),
    Logs(LogsArgs),
    Publish(PublishArgs),
    Dashboard(DashboardArgs),
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// Turn prompt files into a dependency-aware plan and store it in the repository.
///
/// Reads Markdown prompts (optional YAML front matter: id, title, depends_on, files, type,
/// priority, agent, timeout, estimate), infers the files each task touches and the import graph
/// of the repository, orders tasks that touch the same files, estimates durations, simulates the
/// schedule and stores the plan as a commit under refs/parallel/plans/<id>.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Prompt files or directories of *.md prompts (default: `parallel.prompts` or `prompts/`).
    #[arg(value_name = "DIR|FILE")]
    pub paths: Vec<PathBuf>,

    /// Workers to simulate (default: from the machine and `parallel.concurrency`).
    #[arg(short = 'j', long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Do not serialize tasks that touch the same files; only report the conflicts.
    #[arg(long)]
    pub allow_conflicts: bool,

    /// Plan and print, but store nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Print the plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Print a stored plan instead of making one.
    #[arg(long, value_name = "ID", conflicts_with_all = ["paths", "dry_run", "allow_conflicts", "concurrency"])]
    pub show: Option<String>,

    /// List stored plans.
    #[arg(long, conflicts_with_all = ["paths", "dry_run", "allow_conflicts", "concurrency", "show"])]
    pub list: bool,

    /// Write a prompt file for each open issue on the forge (title as heading, body as text,
    /// `issue: N` kept so the published pull request closes it) into the one DIR given, then
    /// plan that folder. Issues already there are written again.
    #[arg(long, conflicts_with_all = ["show", "list"])]
    pub from_issues: bool,

    /// With --from-issues: only issues with this label.
    #[arg(long, value_name = "LABEL", requires = "from_issues")]
    pub label: Option<String>,
}

/// Agent profiles known to `--agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgentName {
    Claude,
    Codex,
    Gemini,
    Aider,
    Custom,
}

/// Execute a plan: one agent per task in its own worktree, several at once.
///
/// TARGET is a stored plan id, or a directory (or file) of prompts that is planned first.
/// Tasks start as soon as their dependencies succeeded, longest remaining path first. Every
/// state change is committed under refs/parallel/runs/<run>; results land on branches
/// parallel/<run>/<task> and are integrated into parallel/<run>/integration at the end.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A plan id, or prompt files or directories to plan first (default: the latest plan).
    #[arg(value_name = "PLAN-ID|DIR")]
    pub target: Vec<String>,

    /// Most agents at once (the resource governor may allow fewer).
    #[arg(short = 'j', long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Agent for tasks whose front matter names none.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,

    /// Command template for the custom agent: {prompt}, {prompt_file}, {worktree}, {task}.
    #[arg(long, value_name = "TEMPLATE")]
    pub agent_command: Option<String>,

    /// Time limit per task (e.g. 30m, 90s), unless its front matter sets one.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Retries of a task after a transient failure (API overload, crash).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,

    /// Where worktrees go (default: `<repo>.parallel/` beside the repository).
    #[arg(long, value_name = "DIR")]
    pub worktree_dir: Option<PathBuf>,

    /// Do not integrate the results at the end.
    #[arg(long)]
    pub no_integrate: bool,

    /// Integrate into this branch instead of parallel/<run>/integration.
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,

    /// Command that must pass on the integrated tree (also `parallel.verify`).
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,

    /// Command that must pass in each task's worktree once its agent ends (also
    /// `parallel.check`, or a task's front matter `check:`); a failure goes back to the agent.
    #[arg(long, value_name = "CMD")]
    pub check: Option<String>,

    /// Times a failed check goes back to the agent with its output (default 2; also
    /// `parallel.fixRounds`).
    #[arg(long, value_name = "N")]
    pub fix_rounds: Option<u32>,

    /// Hand a conflict at integration back to the task's own agent (its session where the CLI
    /// keeps one), for up to --fix-rounds more rounds; taken once its check passes there.
    #[arg(long)]
    pub resolve: bool,

    /// US dollars the run may spend, from the agents' own cost reports: once spent, no task or
    /// fix round starts (running ones finish); also `parallel.budget`.
    #[arg(long, value_name = "USD")]
    pub budget: Option<String>,

    /// Independent attempts at each task, in worktrees of their own (a task's `attempts:`
    /// wins; also `parallel.attempts`): the first whose check passes gives the task its
    /// result, and the others are stopped.
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,

    /// Let every attempt of a task finish, then take the best: it passes its check, then
    /// merges cleanly on what is already integrated, then changes the fewest lines (a task's
    /// `attempts_all:` wins; also `parallel.attemptsAll`).
    #[arg(long)]
    pub attempts_all: bool,

    /// With --budget: stop running agents too once it is spent.
    #[arg(long)]
    pub budget_hard: bool,

    /// Once integrated, push the result and open (or update) its pull request, as `publish`
    /// does (also `parallel.publish`).
    #[arg(long)]
    pub publish: bool,

    /// Run agents inside a bubblewrap sandbox: writes only to the worktree, its private git
    /// folder (with its own object store) and the run's branch folders.
    #[arg(long)]
    pub sandbox: bool,

    /// Do not serialize tasks that touch the same files (when planning a directory).
    #[arg(long)]
    pub allow_conflicts: bool,

    /// Stream events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,

    /// Check out only the directories of the files each task names (sparse cone), the cheap
    /// path on huge repositories (also `parallel.sparse`).
    #[arg(long)]
    pub sparse: bool,

    /// Run even though the main working tree has uncommitted changes (tasks start from the
    /// plan's base commit without them).
    #[arg(long)]
    pub allow_dirty: bool,

    /// Keep each task's worktree after its result is committed (default: a succeeded task's
    /// worktree is removed at once, its branch stays; also `parallel.keepWorktrees`).
    #[arg(long)]
    pub keep_worktrees: bool,

    /// Benchmark baseline: run wave by wave, each wave waiting for the previous one.
    #[arg(long, hide = true)]
    pub phase_barrier: bool,

    /// Where tasks run: `local` (this machine) or `slurm` (one Slurm job per ready task; the
    /// repository must be on a filesystem the nodes share). Also `parallel.executor`.
    #[arg(long, value_name = "NAME")]
    pub executor: Option<String>,
}

/// Show runs and their tasks.
///
/// Without RUN, one line per run. With RUN, one line per task. Reads refs only.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Run id (default: all runs).
    pub run: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Refresh in place until the run ends (Ctrl-C to stop).
    #[arg(short, long)]
    pub watch: bool,
}

/// Push a run's integrated result and open one pull request for it, its report as the
/// description; publishing again updates the same pull request.
///
/// The remote is --remote, `parallel.remote`, else the remote the base branch tracks, else
/// `origin`. The forge is read from its URL: github.com is GitHub, a host with `gitlab` in its
/// name GitLab (merge requests, REST v4), any other GitHub Enterprise (https://HOST/api/v3);
/// `parallel.forge` (github|gitlab), `parallel.forgeApi` and `parallel.forgeRepo` (owner/name)
/// override it. The token: GITHUB_TOKEN or GH_TOKEN, else `gh auth token`; GITLAB_TOKEN, else
/// `glab config get token`. Everything is pushed before the forge is written to; a refusal
/// leaves the run as it was, to publish again. Prints the pull request's URL.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Run id (default: the latest run).
    pub run: Option<String>,
    /// Remote to push to (default: `parallel.remote`, else the remote the base branch tracks,
    /// else `origin`); the forge (GitHub, GitHub Enterprise or GitLab) is read from its URL.
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Branch the pull request goes into (default: the forge repository's default branch).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// Open it as a draft.
    #[arg(long)]
    pub draft: bool,
    /// One pull request per integrated task instead (its task branch pushed; a dependent
    /// task's says which pull request it builds on).
    #[arg(long, conflicts_with_all = ["issue", "wait_checks"])]
    pub per_task: bool,
    /// Also keep one tracking issue for the run: a checklist of its tasks, ticked as they land,
    /// linked from the pull request and updated at every publish.
    #[arg(long)]
    pub issue: bool,
    /// Then wait for the pushed commit's CI (check runs and commit statuses), record how it
    /// ended and name what failed; exit 1 when something did.
    #[arg(long)]
    pub wait_checks: bool,
    /// Longest wait for --wait-checks (default 60m).
    #[arg(long, value_name = "DURATION", requires = "wait_checks")]
    pub checks_timeout: Option<String>,
    /// Print what was published as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Show what agents did: a task's transcript rendered for people (turns, tool calls, results,
/// errors) and the last of its stderr; without a task, each task's outcome and last words.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Run id (default: the latest run).
    pub run: Option<String>,
    /// Task id (default: a summary of every task).
    pub task: Option<String>,
    /// Print the agent's output as it came (JSON lines), not rendered.
    #[arg(long)]
    pub raw: bool,
    /// Keep printing while the task runs.
    #[arg(short, long)]
    pub follow: bool,
}

/// Resume a run: go on with what did not end, with the options the run started with.
///
/// Succeeded and no-changes tasks never run again. Interrupted tasks, and tasks left running by
/// an orchestrator that died (kill -9, a crash, a reboot), go on in their worktree, in the same
/// agent session where the agent keeps one (Claude Code, Codex, Gemini CLI). Failed and
/// timed-out tasks stay as they are unless named with --retry or --retry-failed: those start
/// over from their start commit, and the tasks skipped because of them run too. The options the
/// run was started with (-j, --agent-command, --timeout, --retries, --worktree-dir,
/// --no-integrate, --into, --verify, --check, --fix-rounds, --sandbox, --sparse,
/// --keep-worktrees) still hold; a flag
/// given here wins, and resume says so.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id (default: the latest interrupted run).
    pub run: Option<String>,
    /// Run failed and timed-out tasks again, from their start commit.
    #[arg(long)]
    pub retry_failed: bool,
    /// Run this task again from its start commit, whatever its state (repeatable).
    #[arg(long, value_name = "TASK")]
    pub retry: Vec<String>,
    /// Most agents at once.
    #[arg(short = 'j', long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Command template of the custom agent.
    #[arg(long, value_name = "TEMPLATE")]
    pub agent_command: Option<String>,
    /// Time limit per task (e.g. 30m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Retries after transient failures.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Do not integrate at the end.
    #[arg(long)]
    pub no_integrate: bool,
    /// Integrate into this branch.
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// Command that must pass on the integrated tree.
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,
    /// Command that must pass in each task's worktree once its agent ends.
    #[arg(long, value_name = "CMD")]
    pub check: Option<String>,
    /// Times a failed check goes back to the agent.
    #[arg(long, value_name = "N")]
    pub fix_rounds: Option<u32>,
    /// US dollars the run may spend in all (raises the run's budget).
    #[arg(long, value_name = "USD")]
    pub budget: Option<String>,
    /// Stream events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// Keep each task's worktree after its result is committed (also `parallel.keepWorktrees`).
    #[arg(long)]
    pub keep_worktrees: bool,
    /// Where tasks run (default: where they ran before; jobs still queued or running on a
    /// cluster are re-attached to, not submitted again).
    #[arg(long, value_name = "NAME")]
    pub executor: Option<String>,
}

/// Serve a live dashboard of a run (or of every run) in the browser.
///
/// Prints the page's address, with a random access token, on stdout and serves until
/// interrupted (Ctrl-C). Requests without the token are refused. The page shows the task
/// table, the timeline (every attempt of every task), the dependency graph, cost and tokens
/// against the budget, what holds back new starts, conflicts and the integration's outcome,
/// and a selected task's transcript and check output; it follows the run live. It reads the
/// run's refs only: a finished run, a run driven by another process or host, and several
/// dashboards at once all work. Its only actions are cancelling the run and retrying a failed
/// task of a run that is no longer running (through `git parallel resume --retry TASK`).
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Run id (default: every run, newest first).
    pub run: Option<String>,
    /// Port to listen on (default: a free one).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Address to listen on. Anything but a loopback address exposes the run's prompts,
    /// transcripts and its cancel and retry actions to whoever has the address and token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

/// Stop a live run and record it as cancelled.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Run id (default: the latest live run).
    pub run: Option<String>,
}

/// Merge a run's succeeded task branches, in dependency order, without touching any worktree.
#[derive(Debug, Args)]
pub struct IntegrateArgs {
    /// Run id (default: the latest run).
    pub run: Option<String>,
    /// Target branch (default: parallel/<run>/integration).
    #[arg(long, value_name = "BRANCH")]
    pub into: Option<String>,
    /// Command that must pass on the integrated tree; culprits are found by bisection.
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,
    /// Hand each conflict back to the task's own agent (its session where the CLI keeps one),
    /// on the integrated result with its change merged in; taken once no marker remains and the
    /// task's check passes there.
    #[arg(long)]
    pub resolve: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Remove worktrees and task branches.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only what the current branch already contains.
    #[arg(long)]
    pub merged: bool,
    /// Only this run.
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Every run's worktrees and branches.
    #[arg(long)]
    pub all: bool,
    /// Say what would be removed, remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Remove worktrees even with uncommitted changes.
    #[arg(short, long)]
    pub force: bool,
    /// Print nothing unless something went wrong.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Install or remove the post-merge hook that cleans merged work.
#[derive(Debug, Args)]
pub struct HooksArgs {
    #[command(subcommand)]
    pub action: HooksAction,
}

#[derive(Debug, Subcommand)]
pub enum HooksAction {
    /// Add our lines to the post-merge hook (an existing hook keeps working).
    Install,
    /// Remove only our lines from the post-merge hook.
    Uninstall,
}

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
    Html,
}

/// Summarize a run: per task status, durations, turns, cost, tokens; totals; speed-up.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id (default: the latest run).
    pub run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Append the markdown summary to this file.
    #[arg(long, value_name = "FILE")]
    pub append: Option<PathBuf>,
}

/// Run one task of a run, as a cluster job does on its node (internal).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Run id.
    pub run: String,
    /// Task id.
    pub task: String,
    /// The task's specification, written by the orchestrator at submit time.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
}
