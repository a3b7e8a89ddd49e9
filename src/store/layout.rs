//! The ref layout: the only place that knows where things live under refs/.

/// Stored plans: `refs/parallel/plans/<plan-id>` → commit (tree: plan.yaml, prompts/<task>.md).
pub const PLANS: &str = "refs/parallel/plans/";
/// Run event logs: `refs/parallel/runs/<run-id>` → chain of commits, one per event.
pub const RUNS: &str = "refs/parallel/runs/";
/// Metrics notes on result commits.
pub const NOTES: &str = "refs/notes/parallel";
/// Prefix of all task and integration branches.
pub const BRANCHES: &str = "refs/heads/parallel/";
/// Reserved task id: the integration branch lives beside the task branches.
pub const INTEGRATION: &str = "integration";

/// Who orchestrates a run now: `refs/parallel/owners/<run-id>` → blob (pid, host, heartbeat).
pub const OWNERS: &str = "refs/parallel/owners/";

/// Cluster jobs' events on their way to the run's log: `refs/parallel/inbox/<run>/<task>` →
/// chain of commits written by the task's job only (see `store::inbox`).
pub const INBOX: &str = "refs/parallel/inbox/";

pub fn inbox_ref(run: &str, task: &str) -> String {
    format!("{INBOX}{run}/{task}")
}

pub fn owner_ref(run: &str) -> String {
    format!("{OWNERS}{run}")
}

pub fn plan_ref(id: &str) -> String {
    format!("{PLANS}{id}")
}

pub fn run_ref(id: &str) -> String {
    format!("{RUNS}{id}")
}

/// `refs/heads/parallel/<run>/<task>`.
pub fn task_branch(run: &str, task: &str) -> String {
    format!("{BRANCHES}{run}/{task}")
}

/// `refs/heads/parallel/<run>/integration`.
pub fn integration_branch(run: &str) -> String {
    format!("{BRANCHES}{run}/{INTEGRATION}")
}

/// Refs git-parallel writes itself (plans, runs, notes, task branches), and refs the user's
/// everyday git moves on its own (remote-tracking refs, the stash): what an agent's changes
/// are not looked for in.
pub fn is_ours(full: &str) -> bool {
    full.starts_with("refs/parallel/")
        || full == NOTES
        || full.starts_with(BRANCHES)
        || full.starts_with("refs/remotes/")
        || full == "refs/stash"
}

/// Short branch name (without refs/heads/).
pub fn short(full: &str) -> &str {
    full.strip_prefix("refs/heads/").unwrap_or(full)
}

/// A user-given branch name as a full ref.
pub fn full_branch(name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_string()
    } else {
        format!("refs/heads/{name}")
    }
}

/// The run and task a task branch belongs to, if `full` is one of ours.
pub fn parse_task_branch(full: &str) -> Option<(&str, &str)> {
    let rest = full.strip_prefix(BRANCHES)?;
    rest.split_once('/')
}

/// Trailers on result commits.
pub const TRAILER_RUN: &str = "Parallel-Run";
pub const TRAILER_TASK: &str = "Parallel-Task";
