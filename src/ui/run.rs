//! Tables of runs and tasks (status, end-of-run summary).

use super::{millis, sanitize, table};
use crate::store::runs::{now, RunState, TaskStatus};

/// Wall time of a run so far (or in all).
pub fn wall_ms(s: &RunState) -> u64 {
    let end = s.ended_at.unwrap_or_else(|| {
        if s.effective_status() == crate::store::runs::RunStatus::Running {
            now()
        } else {
            s.updated_at
        }
    });
    ((end - s.created_at).max(0.0) * 1000.0) as u64
}

/// Sum of the tasks' wall times (kept in the counts, so a summary has it too).
pub fn work_ms(s: &RunState) -> u64 {
    s.counts.work_ms
}

/// One line per task.
pub fn tasks_table(s: &RunState) -> String {
    let rows: Vec<Vec<String>> = s
        .tasks
        .iter()
        .map(|t| {
            let elapsed = match (t.status, t.started_at) {
                (TaskStatus::Running, Some(start)) => millis(((now() - start) * 1000.0) as u64),
                _ if t.wall_ms > 0 => millis(t.wall_ms),
                _ => "-".into(),
            };
            let note = t
                .conflict
                .as_ref()
                .map(|c| format!("conflict: {}", c.files.join(", ")))
                .or_else(|| t.reason.clone().filter(|_| t.status != TaskStatus::Succeeded))
                .or_else(|| t.check_summary().map(|c| format!("check {c}")))
                .map(|n| sanitize(&n))
                .unwrap_or_default();
            vec![
                t.id.clone(),
                t.status.as_str().to_string(),
                t.agent.clone().unwrap_or_else(|| s.agent.clone()),
                elapsed,
                t.metrics.turns.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
                t.metrics.cost_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "-".into()),
                t.files_changed.len().to_string(),
                t.branch.as_deref().map(crate::store::layout::short).unwrap_or("-").to_string(),
                note,
            ]
        })
        .collect();
    // Tasks that ran as cluster jobs: which job, on which node.
    if s.tasks.iter().any(|t| t.job.is_some()) {
        let mut rows = rows;
        for (row, t) in rows.iter_mut().zip(&s.tasks) {
            let note = row.pop().unwrap_or_default();
            row.push(t.job.clone().unwrap_or_else(|| "-".into()));
            row.push(t.node.clone().unwrap_or_else(|| "-".into()));
            row.push(note);
        }
        return table(
            &["TASK", "STATE", "AGENT", "ELAPSED", "TURNS", "COST", "FILES", "BRANCH", "JOB", "NODE", "NOTE"],
            &rows,
        );
    }
    table(&["TASK", "STATE", "AGENT", "ELAPSED", "TURNS", "COST", "FILES", "BRANCH", "NOTE"], &rows)
}

/// The end-of-run summary: tasks, wall time, work time, measured speed-up.
pub fn summary(s: &RunState) -> String {
    let mut out = tasks_table(s);
    let wall = wall_ms(s);
    let work = work_ms(s);
    let speedup = if wall > 0 { work as f64 / wall as f64 } else { 1.0 };
    out.push_str(&format!(
        "\nrun {} {}: wall time {}, task time {}, measured speed-up {:.2}x\n",
        s.id,
        s.effective_status().as_str(),
        millis(wall),
        millis(work),
        speedup
    ));
    if let Some(b) = budget_line(s) {
        out.push_str(&format!("{b}\n"));
    }
    if let Some(p) = &s.published {
        out.push_str(&format!("{}\n", published_line(p)));
    }
    if let Some(i) = s.integration.as_ref().map(|i| &i.result) {
        out.push_str(&integration(i));
    }
    out
}

/// Where the run was published, and how its CI ended if that was waited for.
pub fn published_line(p: &crate::store::runs::Published) -> String {
    let checks = match &p.checks {
        None => String::new(),
        Some(c) if !c.done => format!("; checks not ended ({} pending)", c.pending.len()),
        Some(c) if c.failing.is_empty() => "; checks passed".to_string(),
        Some(c) => format!("; checks failed: {}", c.failing.join(", ")),
    };
    if !p.tasks.is_empty() {
        let list: Vec<String> = p.tasks.iter().map(|(t, n, _)| format!("#{n} {t}")).collect();
        return sanitize(&format!(
            "published as {} pull requests into {}: {}{checks}",
            p.tasks.len(),
            p.base,
            list.join(", ")
        ));
    }
    sanitize(&format!("published as pull request #{} ({} into {}): {}{checks}", p.number, p.head, p.base, p.url))
}

/// What the governor holds to and saw, a line each (plain text: the report escapes it):
/// while the run runs, how many agents run, the most allowed and why, what holds new starts
/// back, the machine as last read; and the rate limits its agents met.
pub fn governor_lines(s: &RunState) -> Vec<String> {
    let mut out = Vec::new();
    let live = s.effective_status() == crate::store::runs::RunStatus::Running;
    if live {
        let running = s.tasks.iter().filter(|t| t.status == TaskStatus::Running).count();
        let most = match &s.governor {
            Some(g) => format!("at most {} ({})", g.machine.ceiling, sanitize(&g.machine.ceiling_reason)),
            None => format!("{} workers", s.workers),
        };
        let wait = s.limit.as_ref().map(|l| format!("; new starts wait: {}", sanitize(l))).unwrap_or_default();
        out.push(format!("concurrency: {running} running, {most}{wait}"));
        if let Some(r) = &s.governor {
            let (g, gib) = (&r.machine, |b: u64| b as f64 / (1u64 << 30) as f64);
            out.push(format!(
                "machine (read at {}): CPU demand {:.1} cores on {} CPUs, memory {:.1} of {:.1} GiB in use; the run's agents {:.2} cores, {:.2} GiB",
                super::clock(r.at),
                // Demand, not use: runnable threads count, so a saturated machine says so.
                g.cpu_percent as f64 / 100.0 * g.cpus as f64,
                g.cpus,
                gib(g.memory_used),
                gib(g.memory_total),
                g.agents_cores,
                gib(g.agents_rss)
            ));
        }
    }
    if !s.rate_limits.is_empty() {
        let each: Vec<String> = s
            .rate_limits
            .iter()
            .map(|(profile, r)| {
                format!(
                    "{}: {} (the last at {}, task {}): at most {} at once since, new starts paused until {}{}",
                    sanitize(profile),
                    if r.hits == 1 { "1 rate limit".to_string() } else { format!("{} rate limits", r.hits) },
                    super::clock(r.at),
                    sanitize(&r.task),
                    r.limit,
                    super::clock(r.until),
                    if live && r.until > now() { " (paused now)" } else { "" }
                )
            })
            .collect();
        out.push(format!("rate limits: {}", each.join("; ")));
    }
    out
}

/// `spent $1.20 of the $5.00 budget (2 tasks reported no cost)`, for a run with a budget.
pub fn budget_line(s: &RunState) -> Option<String> {
    let budget = s.options.budget?;
    let (spent, unknown) = crate::exec::orchestrator::spend(s);
    let unknown = match unknown {
        0 => String::new(),
        n => format!(" ({n} task(s) reported no cost)"),
    };
    Some(format!("spent ${spent:.2} of the ${budget:.2} budget{unknown}"))
}

/// What an integration did: merged, left out with guidance, dropped. Conflicted files and
/// reasons name agents' files and carry their text: made safe for the terminal.
pub fn integration(i: &crate::store::runs::Integrated) -> String {
    let mut out = match &i.commit {
        _ if i.interrupted => format!(
            "integration into {} interrupted before it ended{}\n",
            crate::store::layout::short(&i.target),
            if i.merged.is_empty() { String::new() } else { format!(" ({} tasks in)", i.merged.len()) }
        ),
        Some(c) => format!(
            "integrated {} tasks into {} ({}){}\n",
            i.merged.len(),
            crate::store::layout::short(&i.target),
            &c[..c.len().min(12)],
            match i.verified {
                Some(true) => ", verified",
                Some(false) => ", verify failed",
                None => "",
            }
        ),
        None => "nothing integrated\n".to_string(),
    };
    for c in &i.conflicts {
        out.push_str(&format!("  left out {}: conflicts in {}\n    {}\n", c.task, c.files.join(", "), c.guidance));
    }
    for (t, why) in &i.dropped {
        out.push_str(&format!("  dropped {t}: {why}\n"));
    }
    sanitize(&out)
}
