//! `git parallel publish`: the run's integrated result pushed, and one pull request for it on
//! the forge, the run's report as its description; again, the same pull request updated.

use super::Context;
use crate::cli::PublishArgs;
use crate::error::{usage, Error};
use crate::forge::Forge;
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
/// by a later integration or retry, so they are forced; a branch of yours never is.
fn push(ctx: &Context, remote: &str, commit: &str, branch: &str) -> Result<()> {
    let force = if branch.starts_with("parallel/") { "+" } else { "" };
    let pushed = crate::proc::git_output(
        &ctx.repo.workdir,
        ["push", "--quiet", remote, &format!("{force}{commit}:refs/heads/{branch}")],
    )?;
    if !pushed.ok() {
        anyhow::bail!("git push of {branch} to {remote} failed: {}", pushed.stderr_str().trim());
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
    let (forge, remote) = forge_for(ctx, remote)?;
    let base = match base {
        Some(b) => b.to_string(),
        None => forge.default_branch()?,
    };
    let mut done: Vec<(String, u64, String)> = Vec::new();
    let mut any_opened = false;
    for t in plan.tasks.iter().filter(|t| integ.result.merged.contains(&t.id)) {
        let Some(ts) = state.task(&t.id) else { continue };
        let Some(commit) = ts.commit.as_deref() else { continue };
        let head = layout::short(&layout::task_branch(id, &t.id)).to_string();
        push(ctx, &remote, commit, &head)?;
        let builds_on: Vec<String> = t
            .depends_on
            .iter()
            .chain(&t.after)
            .filter_map(|d| done.iter().find(|(task, _, _)| task == d))
            .map(|(task, n, _)| format!("Builds on #{n} (task `{task}`): review that one first."))
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
        let title = t.title.clone();
        let (pr, opened) = match forge.find_open(&head)? {
            Some(pr) => (forge.update(pr.number, &base, &title, &body)?, false),
            None => (forge.open(&head, &base, &title, &body, draft)?, true),
        };
        any_opened |= opened;
        ui::note(&format!("{}: {} pull request #{}", t.id, if opened { "opened" } else { "updated" }, pr.number));
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
    let (forge, _) = forge_for(ctx, Some(&p.remote))?;
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

/// The forge of the repository behind `remote` (default `parallel.remote`, else `origin`),
/// and that remote's name.
pub fn forge_for(ctx: &Context, remote: Option<&str>) -> Result<(Forge, String)> {
    let s = &ctx.settings;
    let remote = remote.map(String::from).or_else(|| s.remote.clone()).unwrap_or_else(|| "origin".into());
    let url = crate::proc::git_output(&ctx.repo.workdir, ["remote", "get-url", &remote])?;
    if !url.ok() {
        return Err(Error::usage(format!("no remote `{remote}` to reach the forge through"))
            .with_hint("name one with --remote or `git config parallel.remote NAME`")
            .into());
    }
    let url = url.stdout_str().trim().to_string();
    let Some(repo) = s.forge_repo.clone().or_else(|| crate::forge::repo_of_url(&url)) else {
        return Err(Error::usage(format!("remote `{remote}` ({url}) is not a GitHub repository I can name"))
            .with_hint("set it: git config parallel.forgeRepo OWNER/NAME")
            .into());
    };
    let api = s.forge_api.clone().unwrap_or_else(|| "https://api.github.com".into());
    // A token sent in the clear goes to this machine only.
    if let Some(rest) = api.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        let loopback = matches!(host, "127.0.0.1" | "localhost") || rest.starts_with("[::1]");
        if !loopback {
            return Err(Error::usage(format!("parallel.forgeApi {api}: plain http only on this machine (127.0.0.1)"))
                .with_hint("use https://")
                .into());
        }
    }
    let from_env = ["GITHUB_TOKEN", "GH_TOKEN"].iter().find_map(|k| std::env::var(k).ok().filter(|t| !t.is_empty()));
    // Else the GitHub CLI's login, where it is installed.
    let from_gh = || {
        crate::proc::which("gh")?;
        let out = crate::proc::tool("gh", &["auth".into(), "token".into()], None).ok()?;
        Some(out.stdout_str().trim().to_string()).filter(|t| out.ok() && !t.is_empty())
    };
    let Some(token) = from_env.or_else(from_gh) else {
        return Err(Error::usage("the forge needs a token in GITHUB_TOKEN or GH_TOKEN (or `gh auth login`)").into());
    };
    Ok((Forge::new(&api, &repo, &token), remote))
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
    let (forge, remote) = forge_for(ctx, remote)?;
    let base = match base {
        Some(b) => b.to_string(),
        None => forge.default_branch()?,
    };
    let head = layout::short(&target).to_string();
    push(ctx, &remote, &commit, &head)?;
    ui::note(&format!("pushed {head} ({}) to {remote}", &commit[..12.min(commit.len())]));
    let report = crate::ui::report::markdown(&state);
    // Each landed task that came from an issue closes it when the pull request merges.
    let merged = state.integration.as_ref().map(|i| i.result.merged.clone()).unwrap_or_default();
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
    // The tracking issue: made once, then updated (its number is kept with the publication).
    let issue = match (track, state.published.as_ref().and_then(|p| p.issue)) {
        (false, known) => known,
        (true, known) => {
            let title = format!("git-parallel run {id}");
            let list = checklist(&state);
            Some(match known {
                Some(n) => {
                    forge.update_issue(n, &title, &list)?;
                    n
                }
                None => forge.open_issue(&title, &list)?,
            })
        }
    };
    let tracked = issue.map(|n| format!("Tracking issue: #{n}\n\n")).unwrap_or_default();
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
                push(ctx, &remote, &tip.to_string(), &short)?;
                format!("; its work: `{short}`")
            }
            None => String::new(),
        };
        left.push_str(&format!("- `{}` ({}): {}{work}\n", t.id, t.status.as_str(), why.replace('\n', " ")));
    }
    let left = if left.is_empty() { String::new() } else { format!("\n### Left out\n\n{left}") };
    let body = format!("{closes}{tracked}{report}{left}\n<!-- git-parallel run {id} -->\n");
    let title = format!("git-parallel run {id}: {} of {} tasks", merged.len(), state.tasks.len());
    let (pr, opened) = match forge.find_open(&head)? {
        Some(pr) => (forge.update(pr.number, &base, &title, &body)?, false),
        None => (forge.open(&head, &base, &title, &body, draft)?, true),
    };
    ui::note(&format!("{} pull request #{} into {base}", if opened { "opened" } else { "updated" }, pr.number));
    let published = Published {
        url: pr.url.clone(),
        number: pr.number,
        remote,
        head,
        base,
        commit,
        tasks: Vec::new(),
        issue,
        checks: None,
    };
    let mut log = RunLog::open(&ctx.repo, &id)?;
    log.append(Event::Published(published.clone()), &[])?;
    Ok((published, opened))
}
