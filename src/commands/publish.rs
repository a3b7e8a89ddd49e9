//! `git parallel publish`: the run's integrated result pushed, and one pull request for it on
//! the forge, the run's report as its description; again, the same pull request updated.

use super::Context;
use crate::cli::PublishArgs;
use crate::error::{usage, Error};
use crate::store::layout;
use crate::store::runs::{self, Event, Published, RunLog, RunStatus};
use crate::ui;
use anyhow::Result;

pub fn run(ctx: &Context, args: PublishArgs) -> Result<i32> {
    let id = runs::resolve(&ctx.repo, args.run.as_deref())?;
    let state = runs::load(&ctx.repo, &id)?;
    if state.status == RunStatus::Running && state.orchestrator_alive() {
        return Err(usage(format!("run {id} is still running; publish it once it ends")));
    }
    let timeout = match &args.checks_timeout {
        Some(t) => crate::config::parse_duration(t).map_err(|e| usage(format!("--checks-timeout: {e}")))?,
        None => std::time::Duration::from_secs(60 * 60),
    };
    let (mut published, opened) = if args.per_task {
        per_task(ctx, &id, args.remote.as_deref(), args.base.as_deref(), args.draft)?
    } else {
        publish(ctx, &id, args.remote.as_deref(), args.base.as_deref(), args.draft, args.issue)?
    };
    let mut code = 0;
    if args.wait_checks {
        let checks = wait_checks(ctx, &published, timeout)?;
        if !checks.failing.is_empty() || !checks.done {
            code = 1;
        }
        published.checks = Some(checks);
        RunLog::open(&ctx.repo, &id)?.append(Event::Published(published.clone()), &[])?;
    }
    if args.json {
        ui::json(&serde_json::json!({"published": published, "opened": opened}))?;
    } else {
        ui::out(&format!("{}\n", published.url))?;
    }
    Ok(code)
}

/// Push `branch` at `commit` to `remote`. Our own branches (`parallel/...`) may be rewritten
/// by a later integration or retry, so they are forced; a branch of yours never is. Every push
/// comes before any write on the forge, so a refused one leaves nothing there.
fn push(ctx: &Context, id: &str, remote: &str, commit: &str, branch: &str) -> Result<()> {
    let force = if branch.starts_with("parallel/") { "+" } else { "" };
    let pushed = crate::proc::git_output(
        &ctx.repo.workdir,
        ["push", "--quiet", remote, &format!("{force}{commit}:refs/heads/{branch}")],
    )?;
    if !pushed.ok() {
        return Err(Error::failed(format!("`{remote}` refused the push of {branch}: {}", pushed.stderr_str().trim()))
            .with_hint(format!(
                "nothing was published and the run is as it was; settle what the remote says (access, a hook, \
             a protected branch), then: git parallel publish {id}"
            ))
            .into());
    }
    Ok(())
}

/// One pull request per integrated task, in plan order: its branch pushed, its own record as
/// the description, the pull requests of the tasks it depends on named.
fn per_task(
    ctx: &Context,
    id: &str,
    remote: Option<&str>,
    base: Option<&str>,
    draft: bool,
) -> Result<(Published, bool)> {
    let state = runs::load(&ctx.repo, id)?;
    let Some(integ) = state.integration.as_ref().filter(|i| i.result.commit.is_some()) else {
        return Err(Error::usage(format!("run {id} has no integrated result to publish")).into());
    };
    let plan = crate::store::plans::load(&ctx.repo, &state.plan)?;
    let (forge, remote) = forge_for(ctx, remote, base)?;
    let base = base_branch(forge.as_ref(), base)?;
    let mut landed = Vec::new();
    for t in plan.tasks.iter().filter(|t| integ.result.merged.contains(&t.id)) {
        let Some(ts) = state.task(&t.id) else { continue };
        let Some(commit) = ts.commit.as_deref() else { continue };
        let head = layout::short(&layout::task_branch(id, &t.id)).to_string();
        push(ctx, id, &remote, commit, &head)?;
        landed.push((t, ts, head));
    }
    let mut done: Vec<(String, u64, String)> = Vec::new();
    let mut any_opened = false;
    for (t, ts, head) in landed {
        let builds_on: Vec<String> = t
            .depends_on
            .iter()
            .chain(&t.after)
            .filter_map(|d| done.iter().find(|(task, _, _)| task == d))
            .map(|(task, n, _)| format!("Builds on {} (task `{task}`): review that one first.", forge.pr_ref(*n)))
            .collect();
        let mut body = format!(
            "Task `{}` of git-parallel run {id}: {}, {} turns, {}, {} file(s) changed{}.\n\n",
            t.id,
            ts.status.as_str(),
            ts.metrics.turns.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            ts.metrics.cost_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "no cost reported".into()),
            ts.files_changed.len(),
            ts.check_summary().map(|c| format!(", check {c}")).unwrap_or_default()
        );
        for line in builds_on {
            body.push_str(&format!("{line}\n"));
        }
        if let Some(n) = t.issue {
            body.push_str(&format!("Closes #{n}\n"));
        }
        body.push_str(&format!("\n<!-- git-parallel run {id} task {} -->\n", t.id));
        let (pr, opened) = crate::forge::open_or_update(forge.as_ref(), &head, &base, &t.title, &body, draft)?;
        any_opened |= opened;
        ui::note(&format!(
            "{}: {} {} {}",
            t.id,
            if opened { "opened" } else { "updated" },
            forge.noun(),
            forge.pr_ref(pr.number)
        ));
        done.push((t.id.clone(), pr.number, pr.url));
    }
    let Some((_, number, url)) = done.first().cloned() else {
        return Err(usage(format!("run {id} integrated no task to publish")));
    };
    let published = Published {
        url,
        number,
        remote,
        head: "(one per task)".into(),
        base,
        commit: integ.result.commit.clone().unwrap_or_default(),
        tasks: done,
        issue: None,
        checks: None,
    };
    RunLog::open(&ctx.repo, id)?.append(Event::Published(published.clone()), &[])?;
    Ok((published, any_opened))
}

/// A run's tasks as a checklist: ticked once integrated, else with their state and why.
fn checklist(s: &runs::RunState) -> String {
    let merged = s.integration.as_ref().map(|i| i.result.merged.clone()).unwrap_or_default();
    let mut out = format!("Tasks of git-parallel run {}:\n\n", s.id);
    for t in &s.tasks {
        if merged.contains(&t.id) {
            out.push_str(&format!("- [x] {} (landed)\n", t.id));
        } else {
            let why = t.reason.as_deref().map(|r| format!(": {}", r.lines().next().unwrap_or(""))).unwrap_or_default();
            out.push_str(&format!("- [ ] {} ({}{why})\n", t.id, t.status.as_str()));
        }
    }
    out
}

/// Poll the pushed commit's CI until it ends or `timeout` passes; say how it ended.
fn wait_checks(ctx: &Context, p: &Published, timeout: std::time::Duration) -> Result<crate::forge::Checks> {
    let (forge, _) = forge_for(ctx, Some(&p.remote), None)?;
    // Every 10 s, as the forge's rate limits allow (the variable is for tests).
    let every = std::env::var("GIT_PARALLEL_CHECKS_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or(std::time::Duration::from_secs(10));
    let ctl = super::run::interrupt_control();
    let start = std::time::Instant::now();
    let mut said = String::new();
    loop {
        let c = forge.checks(&p.commit)?;
        let now = match (c.done, c.failing.is_empty()) {
            (true, true) => "passed".to_string(),
            (true, false) => format!("failed: {}", c.failing.join(", ")),
            (false, _) if c.pending.is_empty() => "none reported yet".to_string(),
            (false, _) => format!("waiting for {}", c.pending.join(", ")),
        };
        if now != said {
            ui::note(&format!("checks of {}: {now}", &p.commit[..12.min(p.commit.len())]));
            said = now;
        }
        if c.done || start.elapsed() >= timeout || ctl.stop.load(std::sync::atomic::Ordering::SeqCst) {
            if !c.done {
                ui::note("stopped waiting for the checks before they ended");
            }
            return Ok(c);
        }
        std::thread::sleep(every);
    }
}

/// The remote to publish to: `--remote`, else `parallel.remote`, else the upstream remote of
/// the base branch (`--base`, else the branch checked out), else `origin`.
fn remote_of(ctx: &Context, remote: Option<&str>, base: Option<&str>) -> Result<String> {
    if let Some(r) = remote.map(String::from).or_else(|| ctx.settings.remote.clone()) {
        return Ok(r);
    }
    let dir = &ctx.repo.workdir;
    let branch = match base {
        Some(b) => Some(b.to_string()),
        None => Some(crate::proc::git_output(dir, ["symbolic-ref", "--quiet", "--short", "HEAD"])?)
            .filter(|o| o.ok())
            .map(|o| o.stdout_str().trim().to_string()),
    };
    let upstream = match branch {
        Some(b) => {
            let o = crate::proc::git_output(dir, ["config", "--get", &format!("branch.{b}.remote")])?;
            Some(o.stdout_str().trim().to_string()).filter(|r| o.ok() && !r.is_empty() && r != ".")
        }
        None => None,
    };
    Ok(upstream.unwrap_or_else(|| "origin".into()))
}

/// The branch the pull request goes into: `--base`, else the forge repository's default.
fn base_branch(forge: &dyn crate::forge::Forge, base: Option<&str>) -> Result<String> {
    match base {
        Some(b) => Ok(b.to_string()),
        None => forge.default_branch(),
    }
}

/// The forge of the repository behind the remote (see `remote_of`), and that remote's name.
pub fn forge_for(
    ctx: &Context,
    remote: Option<&str>,
    base: Option<&str>,
) -> Result<(Box<dyn crate::forge::Forge>, String)> {
    let s = &ctx.settings;
    let remote = remote_of(ctx, remote, base)?;
    let url = crate::proc::git_output(&ctx.repo.workdir, ["remote", "get-url", &remote])?;
    if !url.ok() {
        return Err(Error::usage(format!("no remote `{remote}` to reach the forge through"))
            .with_hint("name one with --remote or `git config parallel.remote NAME`")
            .into());
    }
    let url = url.stdout_str().trim().to_string();
    let target = crate::forge::detect(&url, s.forge.as_deref(), s.forge_api.as_deref(), s.forge_repo.as_deref())?;
    Ok((crate::forge::connect(&target)?, remote))
}

/// Push run `id`'s integrated result and open (or update) its pull request; what was published
/// and whether the pull request is new. Also what `run --publish` does at the end.
pub fn publish(
    ctx: &Context,
    id: &str,
    remote: Option<&str>,
    base: Option<&str>,
    draft: bool,
    track: bool,
) -> Result<(Published, bool)> {
    let id = id.to_string();
    let state = runs::load(&ctx.repo, &id)?;
    let Some((target, commit)) =
        state.integration.as_ref().and_then(|i| Some((i.result.target.clone(), i.result.commit.clone()?)))
    else {
        return Err(Error::usage(format!("run {id} has no integrated result to publish"))
            .with_hint(format!("integrate it first: git parallel integrate {id}"))
            .into());
    };
    let (forge, remote) = forge_for(ctx, remote, base)?;
    let base = base_branch(forge.as_ref(), base)?;
    let head = layout::short(&target).to_string();
    push(ctx, &id, &remote, &commit, &head)?;
    ui::note(&format!("pushed {head} ({}) to {remote}", &commit[..12.min(commit.len())]));
    let merged = state.integration.as_ref().map(|i| i.result.merged.clone()).unwrap_or_default();
    // What was left out, with why, and its work pushed where a reviewer can look at it.
    let mut left = String::new();
    for t in state.tasks.iter().filter(|t| !merged.contains(&t.id)) {
        let branch = layout::task_branch(&id, &t.id);
        let tip = crate::store::objects::read_ref(&ctx.repo, &branch)?;
        let start = t.start_commit.as_deref().and_then(|s| gix::ObjectId::from_hex(s.as_bytes()).ok());
        let why = t
            .conflict
            .as_ref()
            .map(|c| format!("conflict in {}", c.files.join(", ")))
            .or_else(|| t.reason.as_ref().map(|r| r.lines().next().unwrap_or("").to_string()))
            .unwrap_or_else(|| t.status.as_str().to_string());
        let short = layout::short(&branch).to_string();
        let work = match tip.filter(|tip| Some(*tip) != start) {
            Some(tip) => {
                push(ctx, &id, &remote, &tip.to_string(), &short)?;
                format!("; its work: `{short}`")
            }
            None => String::new(),
        };
        left.push_str(&format!("- `{}` ({}): {}{work}\n", t.id, t.status.as_str(), why.replace('\n', " ")));
    }
    let left = if left.is_empty() { String::new() } else { format!("\n### Left out\n\n{left}") };
    let report = crate::ui::report::markdown(&state);
    // Each landed task that came from an issue closes it when the pull request merges.
    let closes: Vec<String> = crate::store::plans::load(&ctx.repo, &state.plan)
        .map(|p| {
            p.tasks
                .iter()
                .filter(|t| merged.contains(&t.id))
                .filter_map(|t| t.issue)
                .map(|n| format!("Closes #{n}"))
                .collect()
        })
        .unwrap_or_default();
    let closes = if closes.is_empty() { String::new() } else { format!("{}\n\n", closes.join("\n")) };
    let body = |issue: Option<u64>| {
        let tracked = issue.map(|n| format!("Tracking issue: #{n}\n\n")).unwrap_or_default();
        format!("{closes}{tracked}{report}{left}\n<!-- git-parallel run {id} -->\n")
    };
    let title = format!("git-parallel run {id}: {} of {} tasks", merged.len(), state.tasks.len());
    let record = |pr: &crate::forge::PullRequest, issue: Option<u64>| Published {
        url: pr.url.clone(),
        number: pr.number,
        remote: remote.clone(),
        head: head.clone(),
        base: base.clone(),
        commit: commit.clone(),
        tasks: Vec::new(),
        issue,
        checks: None,
    };
    let mut log = RunLog::open(&ctx.repo, &id)?;
    // The tracking issue: made once, then updated (its number is kept with the publication).
    let list_title = format!("git-parallel run {id}");
    let known = state.published.as_ref().and_then(|p| p.issue);
    let (pr, opened, issue) = match (track, known) {
        (true, None) => {
            // The pull request first: one the forge refuses leaves no issue to be opened twice.
            let (pr, opened) = crate::forge::open_or_update(forge.as_ref(), &head, &base, &title, &body(None), draft)?;
            let n = forge.open_issue(&list_title, &checklist(&state))?;
            // Kept at once: should linking it fail, the next publish finds it, never a second.
            log.append(Event::Published(record(&pr, Some(n))), &[])?;
            (forge.update(pr.number, &base, &title, &body(Some(n)))?, opened, Some(n))
        }
        (true, Some(n)) => {
            forge.update_issue(n, &list_title, &checklist(&state))?;
            let (pr, opened) =
                crate::forge::open_or_update(forge.as_ref(), &head, &base, &title, &body(Some(n)), draft)?;
            (pr, opened, Some(n))
        }
        (false, known) => {
            let (pr, opened) = crate::forge::open_or_update(forge.as_ref(), &head, &base, &title, &body(known), draft)?;
            (pr, opened, known)
        }
    };
    ui::note(&format!(
        "{} {} {} into {base}",
        if opened { "opened" } else { "updated" },
        forge.noun(),
        forge.pr_ref(pr.number)
    ));
    let published = record(&pr, issue);
    log.append(Event::Published(published.clone()), &[])?;
    Ok((published, opened))
}
