//! Run reports: Markdown, JSON and a self-contained HTML page with an SVG Gantt chart and the DAG.

use super::{millis, run::wall_ms, run::work_ms};
use crate::plan::Plan;
use crate::store::runs::{RunState, TaskState, TaskStatus};

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn speedup(s: &RunState) -> f64 {
    let wall = wall_ms(s);
    if wall > 0 {
        work_ms(s) as f64 / wall as f64
    } else {
        1.0
    }
}

pub fn totals(s: &RunState) -> serde_json::Value {
    let costs: Vec<f64> = s.tasks.iter().filter_map(|t| t.metrics.cost_usd).collect();
    let cost: Option<f64> = (!costs.is_empty()).then(|| costs.iter().sum::<f64>().max(0.0));
    let turns: u64 = s.tasks.iter().filter_map(|t| t.metrics.turns).sum();
    let input: u64 = s.tasks.iter().filter_map(|t| t.metrics.input_tokens).sum();
    let output: u64 = s.tasks.iter().filter_map(|t| t.metrics.output_tokens).sum();
    let count = |st: TaskStatus| s.tasks.iter().filter(|t| t.status == st).count();
    serde_json::json!({
        "tasks": s.tasks.len(),
        "succeeded": count(TaskStatus::Succeeded),
        "failed": count(TaskStatus::Failed) + count(TaskStatus::TimedOut),
        "wall_ms": wall_ms(s),
        "work_ms": work_ms(s),
        "speedup": (speedup(s) * 100.0).round() / 100.0,
        "turns": turns,
        "cost_usd": cost.map(|c| (c * 1e6).round() / 1e6),
        "input_tokens": input,
        "output_tokens": output,
    })
}

const COLUMNS: [&str; 11] =
    ["task", "status", "agent", "duration", "turns", "cost", "tokens in/out", "files", "retries", "check", "note"];

/// One task's cells, in [`COLUMNS`]' order (the Markdown table and the HTML one); the
/// agent's text made safe for a terminal, not yet for Markdown or HTML. `agent`: the run's,
/// for a task whose attempts did not name their own.
fn cells(task: &TaskState, agent: &str) -> Vec<String> {
    vec![
        task.id.clone(),
        task.status.as_str().to_string(),
        task.agent.as_deref().unwrap_or(agent).to_string(),
        if task.wall_ms > 0 { millis(task.wall_ms) } else { "-".into() },
        opt(task.metrics.turns),
        task.metrics.cost_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "-".into()),
        format!("{}/{}", opt(task.metrics.input_tokens), opt(task.metrics.output_tokens)),
        task.files_changed.len().to_string(),
        task.retries.to_string(),
        task.check_summary().unwrap_or_else(|| "-".into()),
        super::sanitize(task.reason.as_deref().unwrap_or("")),
    ]
}

pub fn markdown(s: &RunState) -> String {
    let t = totals(s);
    let mut out = format!(
        "## git-parallel run {} (plan {}): {}\n\n| {} |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
        s.id,
        s.plan,
        s.effective_status().as_str(),
        COLUMNS.join(" | ")
    );
    for task in natural_order(s) {
        let cells: Vec<String> =
            cells(task, &s.agent).into_iter().map(|c| c.replace('|', "/").replace('\n', " ")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push_str(&format!(
        "\n**Totals:** {} tasks, {} succeeded, {} failed; wall time {}, task time {}, measured speed-up {:.2}x; {} turns, {}, {} input and {} output tokens.\n",
        t["tasks"],
        t["succeeded"],
        t["failed"],
        millis(wall_ms(s)),
        millis(work_ms(s)),
        speedup(s),
        t["turns"],
        match t["cost_usd"].as_f64() {
            // The agents reported no cost (Codex, Gemini CLI, custom): say so, not $0.
            Some(c) => format!("${:.4}", c.abs()),
            None => "no cost reported".to_string(),
        },
        t["input_tokens"],
        t["output_tokens"]
    ));
    let compared = comparison_rows(s);
    if !compared.is_empty() {
        out.push_str("\n### Attempts compared\n\n| task | attempt | agent | check | merges cleanly | lines | winner |\n| --- | --- | --- | --- | --- | ---: | --- |\n");
        for row in &compared {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
    }
    if let Some(p) = &s.published {
        out.push_str(&format!(
            "\nPublished as [pull request #{}]({}) (`{}` into `{}`).\n",
            p.number, p.url, p.head, p.base
        ));
    }
    if let Some(b) = super::run::budget_line(s) {
        out.push_str(&format!("\n{}{}.\n", b[..1].to_uppercase(), &b[1..]));
    }
    if let Some(i) = s.integration.as_ref().map(|i| &i.result).filter(|i| i.interrupted) {
        out.push_str(&format!("\nIntegration into `{}` was interrupted.\n", crate::store::layout::short(&i.target)));
    } else if let Some(i) = s.integration.as_ref().map(|i| &i.result) {
        out.push_str(&format!(
            "\nIntegrated {} of {} tasks into `{}`{}.\n",
            i.merged.len(),
            s.tasks.len(),
            crate::store::layout::short(&i.target),
            if i.conflicts.is_empty() {
                String::new()
            } else {
                format!("; conflicts: {}", i.conflicts.iter().map(|c| c.task.as_str()).collect::<Vec<_>>().join(", "))
            }
        ));
    }
    out
}

/// One row per attempt of each task whose attempts were weighed against each other
/// (`--attempts-all`): task, attempt, agent, check, merges cleanly, lines, winner.
pub fn comparison_rows(s: &RunState) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for t in natural_order(s) {
        for a in &t.comparison {
            rows.push(vec![
                t.id.clone(),
                a.attempt.clone(),
                a.agent.clone().unwrap_or_else(|| "-".into()),
                match (a.check, a.passed) {
                    (Some(true), _) => "passed".into(),
                    (Some(false), _) => "failed".into(),
                    (None, true) => "none (succeeded)".into(),
                    (None, false) => "none (failed)".into(),
                },
                match a.merges_cleanly {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
                opt(a.lines),
                if a.winner { "winner".into() } else { String::new() },
            ]);
        }
    }
    rows
}

/// Tasks with their ids in natural order (t2 before t10).
fn natural_order(s: &RunState) -> Vec<&crate::store::runs::TaskState> {
    let mut v: Vec<_> = s.tasks.iter().collect();
    v.sort_by_key(|t| natural_key(&t.id));
    v
}

/// Runs of digits compare as numbers, the rest as text.
pub fn natural_key(id: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = id.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = c.to_digit(10).unwrap_or(0) as u64;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(d as u64);
                chars.next();
            }
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

const LEGEND: [(TaskStatus, &str); 7] = [
    (TaskStatus::Succeeded, "succeeded"),
    (TaskStatus::NoChanges, "no changes"),
    (TaskStatus::Failed, "failed"),
    (TaskStatus::TimedOut, "timed out"),
    (TaskStatus::Interrupted, "interrupted or cancelled"),
    (TaskStatus::Running, "running"),
    (TaskStatus::Skipped, "skipped or pending"),
];

fn color(st: TaskStatus) -> &'static str {
    match st {
        TaskStatus::Succeeded => "#2e7d32",
        TaskStatus::NoChanges => "#9e9e9e",
        TaskStatus::Failed => "#c62828",
        TaskStatus::TimedOut => "#8e24aa",
        TaskStatus::Running => "#1565c0",
        TaskStatus::Interrupted | TaskStatus::Cancelled => "#ef6c00",
        TaskStatus::Skipped | TaskStatus::Pending => "#bdbdbd",
    }
}

/// Text for HTML: markup escaped, and control characters shown as escapes (a page printed
/// to a terminal carries none).
fn esc(s: &str) -> String {
    super::sanitize(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Escaped text for an HTML attribute or element (the same escaping).
pub fn escape(s: &str) -> String {
    esc(s)
}

/// The report's style sheet (the dashboard adds its own rules after it).
pub const STYLE: &str = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}th{background:#f4f4f4}";

/// Geometry of the Gantt chart (pixels).
const ROW: f64 = 26.0;
const LEFT: f64 = 160.0;
const WIDTH: f64 = 720.0;

/// The end of the timeline's axis (seconds since the epoch): the run's end, or now while it
/// runs, never before its last recorded event.
pub fn axis_end(s: &RunState) -> f64 {
    s.created_at + wall_ms(s).max(1) as f64 / 1000.0
}

/// A task's attempts as (start, end, outcome) in seconds since the epoch; an attempt still
/// open ends at `end` (now, or the run's end). Runs recorded before attempts were kept give
/// the last attempt only.
fn attempts(t: &TaskState, end: f64) -> Vec<(f64, f64, String)> {
    if !t.spans.is_empty() {
        return t
            .spans
            .iter()
            .map(|sp| (sp.start, sp.end.unwrap_or(end), sp.outcome.clone().unwrap_or_else(|| t.status.as_str().into())))
            .collect();
    }
    match t.started_at {
        Some(start) => vec![(start, t.finished_at.unwrap_or(end), t.status.as_str().to_string())],
        None => Vec::new(),
    }
}

fn outcome_color(outcome: &str) -> (&'static str, &'static str) {
    match outcome {
        "retried" | "check failed" => (color(TaskStatus::Failed), "0.55"),
        "check passed" => (color(TaskStatus::Succeeded), "1"),
        "ended" => (color(TaskStatus::Interrupted), "1"),
        o => (
            LEGEND
                .iter()
                .chain(&[(TaskStatus::Cancelled, "cancelled"), (TaskStatus::Pending, "pending")])
                .find(|(st, _)| st.as_str() == o)
                .map(|(st, _)| color(*st))
                .unwrap_or(color(TaskStatus::Skipped)),
            "1",
        ),
    }
}

/// The transform that maps the plot's time axis (milliseconds since the run began) onto the
/// chart: what a live page updates as the axis grows.
pub fn gantt_transform(s: &RunState) -> String {
    format!("translate({LEFT} 30) scale({:.6} 1)", WIDTH / wall_ms(s).max(1) as f64)
}

/// One task's bars in the Gantt chart: every attempt, clamped to the axis, in milliseconds
/// since the run began (the plot's transform scales them). The row's place is its holder's
/// (`gantt_of`), so a live page swaps the bars in wherever the task's row is drawn.
pub fn gantt_bars(s: &RunState, t: &TaskState) -> String {
    let end = axis_end(s);
    let total = wall_ms(s).max(1) as f64;
    // At least two pixels wide, in the plot's units.
    let min_w = 2.0 * total / WIDTH;
    let mut out = format!("<g data-part=\"bars\" data-task=\"{}\">", esc(&t.id));
    let all = attempts(t, end);
    for (n, (a, b, outcome)) in all.iter().enumerate() {
        let x0 = ((a - s.created_at) * 1000.0).clamp(0.0, total);
        let x1 = ((b.min(end) - s.created_at) * 1000.0).clamp(x0, total);
        let w = (x1 - x0).max(min_w).min(total - x0).max(0.0);
        let (fill, opacity) = outcome_color(outcome);
        out.push_str(&format!(
            "<rect x=\"{x0:.0}\" y=\"0\" width=\"{w:.0}\" height=\"18\" fill=\"{fill}\" fill-opacity=\"{opacity}\"><title>{} attempt {} of {}: {} {}</title></rect>",
            esc(&t.id),
            n + 1,
            all.len(),
            esc(outcome),
            millis(((b - a).max(0.0) * 1000.0) as u64)
        ));
    }
    out.push_str("</g>");
    out
}

/// The Gantt chart's axis: a line and its end label.
pub fn gantt_axis(s: &RunState) -> String {
    format!(
        "<g data-part=\"axis\"><line x1=\"{LEFT}\" y1=\"20\" x2=\"{}\" y2=\"20\" stroke=\"#444\"/><text x=\"{LEFT}\" y=\"14\" font-size=\"11\">0</text><text x=\"{}\" y=\"14\" font-size=\"11\" text-anchor=\"end\">{}</text></g>",
        LEFT + WIDTH,
        LEFT + WIDTH,
        millis(wall_ms(s))
    )
}

/// The Gantt chart of `tasks`, one row each in the order given, one bar per attempt.
pub fn gantt_of(s: &RunState, tasks: &[&TaskState]) -> String {
    let mut labels = String::new();
    let mut bars = String::new();
    for (i, t) in tasks.iter().enumerate() {
        labels.push_str(&format!(
            "<text x=\"4\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            30.0 + i as f64 * ROW + 15.0,
            esc(&t.id)
        ));
        bars.push_str(&format!("<g transform=\"translate(0 {:.1})\">{}</g>", i as f64 * ROW, gantt_bars(s, t)));
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"gantt\" width=\"{}\" height=\"{}\">{labels}{}<g data-part=\"plot\" transform=\"{}\">{bars}</g></svg>",
        LEFT + WIDTH + 20.0,
        40.0 + tasks.len() as f64 * ROW,
        gantt_axis(s),
        gantt_transform(s)
    )
}

/// The Gantt chart of every task.
pub fn gantt(s: &RunState) -> String {
    gantt_of(s, &s.tasks.iter().collect::<Vec<_>>())
}

/// Where each task sits in the DAG: by wave (column) and place in the wave (row).
pub fn dag_positions(plan: &Plan) -> std::collections::HashMap<String, (f64, f64)> {
    let mut pos = std::collections::HashMap::new();
    for (c, wave) in plan.schedule.waves.iter().enumerate() {
        for (r, id) in wave.iter().enumerate() {
            pos.insert(id.clone(), (20.0 + c as f64 * 170.0, 20.0 + r as f64 * 44.0));
        }
    }
    pos
}

/// One task's node in the DAG, colored by its state.
pub fn dag_node(id: &str, st: TaskStatus, (x, y): (f64, f64)) -> String {
    format!(
        "<g data-part=\"node\" data-task=\"{}\"><rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"130\" height=\"28\" rx=\"5\" fill=\"{}\"><title>{} {}</title></rect><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" fill=\"white\">{}</text></g>",
        esc(id),
        color(st),
        esc(id),
        st.as_str(),
        x + 6.0,
        y + 18.0,
        esc(id)
    )
}

/// The dependency graph with each task's state.
pub fn dag(s: &RunState, plan: &Plan) -> String {
    let pos = dag_positions(plan);
    let mut out = String::new();
    for t in &plan.tasks {
        for p in t.preds() {
            if let (Some(a), Some(b)) = (pos.get(p), pos.get(&t.id)) {
                out.push_str(&format!(
                    "<line x1=\"{:.0}\" y1=\"{:.0}\" x2=\"{:.0}\" y2=\"{:.0}\" stroke=\"#777\" marker-end=\"url(#arrow)\"/>",
                    a.0 + 130.0,
                    a.1 + 14.0,
                    b.0,
                    b.1 + 14.0
                ));
            }
        }
    }
    for t in &plan.tasks {
        if let Some(p) = pos.get(&t.id) {
            let st = s.task(&t.id).map(|x| x.status).unwrap_or(TaskStatus::Pending);
            out.push_str(&dag_node(&t.id, st, *p));
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"dag\" width=\"{}\" height=\"{}\"><defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"8\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#777\"/></marker></defs>{out}</svg>",
        40.0 + plan.schedule.waves.len() as f64 * 170.0,
        40.0 + plan.schedule.waves.iter().map(Vec::len).max().unwrap_or(1) as f64 * 44.0
    )
}

/// One task's row in the task table.
pub fn table_row(t: &TaskState, agent: &str) -> String {
    let cells: String = cells(t, agent).iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
    format!("<tr data-part=\"row\" data-task=\"{}\">{cells}</tr>", esc(&t.id))
}

/// A task table of `tasks`, in the order given.
pub fn table_of(tasks: &[&TaskState], agent: &str) -> String {
    let head: String = COLUMNS.iter().map(|c| format!("<th>{c}</th>")).collect();
    let rows: Vec<String> = tasks.iter().map(|t| table_row(t, agent)).collect();
    format!("<table id=\"tasks\">\n<tr>{head}</tr>\n{}\n</table>", rows.join("\n"))
}

/// The task table (tasks in natural order).
pub fn table(s: &RunState) -> String {
    table_of(&natural_order(s), &s.agent)
}

/// The run's headline: state, times, cost and tokens against the budget, what holds back new
/// starts, the integration's outcome and its conflicts, the pull request.
pub fn headline(s: &RunState) -> String {
    let t = totals(s);
    let mut out = format!(
        "<div data-part=\"head\"><p>plan {}, <b>{}</b>; {} of {} tasks done; wall time {}, task time {}, measured speed-up {:.2}x</p>\n<p>{} turns; {}; {} input and {} output tokens{}</p>\n",
        esc(&s.plan),
        s.effective_status().as_str(),
        s.counts().0,
        s.counts().1,
        millis(wall_ms(s)),
        millis(work_ms(s)),
        speedup(s),
        t["turns"],
        match t["cost_usd"].as_f64() {
            Some(c) => format!("cost ${:.4}", c.abs()),
            None => "no cost reported".to_string(),
        },
        t["input_tokens"],
        t["output_tokens"],
        super::run::budget_line(s).map(|b| format!("; {}", esc(&b))).unwrap_or_default()
    );
    out.push_str(&governor(s));
    out.push_str(&match s.integration.as_ref().map(|i| &i.result) {
        Some(i) if i.interrupted => format!(
            "<p>Integration into <code>{}</code> was interrupted.</p>",
            esc(crate::store::layout::short(&i.target))
        ),
        Some(i) => format!(
            "<p>Integrated {} of {} tasks into <code>{}</code>{}{}.</p>",
            i.merged.len(),
            s.tasks.len(),
            esc(crate::store::layout::short(&i.target)),
            if i.conflicts.is_empty() {
                String::new()
            } else {
                format!(
                    "; conflicts: {}",
                    esc(&i
                        .conflicts
                        .iter()
                        .map(|c| format!("{} ({})", c.task, c.files.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; "))
                )
            },
            match i.verified {
                Some(true) => "; verify passed",
                Some(false) => "; verify failed",
                None => "",
            }
        ),
        None => "<p>Not integrated.</p>".to_string(),
    });
    if let Some(p) = &s.published {
        out.push_str(&format!(
            "<p>Published as <a href=\"{}\">pull request #{}</a> (<code>{}</code> into <code>{}</code>).</p>",
            esc(&p.url),
            p.number,
            esc(&p.head),
            esc(&p.base)
        ));
    }
    out.push_str("</div>");
    out
}

/// The colors of the task states, as a line of swatches.
pub fn legend() -> String {
    LEGEND
        .iter()
        .map(|(st, name)| {
            format!(
                "<span style=\"display:inline-block;width:12px;height:12px;background:{}\"></span> {name} &nbsp; ",
                color(*st)
            )
        })
        .collect()
}

/// The governor's part of the headline ([`super::run::governor_lines`]), a paragraph each.
pub fn governor(s: &RunState) -> String {
    super::run::governor_lines(s).iter().map(|l| format!("<p>{}</p>\n", esc(l))).collect()
}

/// Task states in the order a big run's table lists them: what needs a look first.
pub const STATES: [TaskStatus; 9] = [
    TaskStatus::Running,
    TaskStatus::Failed,
    TaskStatus::TimedOut,
    TaskStatus::Interrupted,
    TaskStatus::Cancelled,
    TaskStatus::Pending,
    TaskStatus::Skipped,
    TaskStatus::NoChanges,
    TaskStatus::Succeeded,
];

/// Where a state comes in [`STATES`].
pub fn attention(st: TaskStatus) -> usize {
    STATES.iter().position(|s| *s == st).unwrap_or(STATES.len())
}

/// Past this many tasks, a run's page shows that many up front and folds the rest.
pub const UP_FRONT: usize = 100;

/// Past this many tasks, the dependencies are summarised by wave (one box per task folded).
pub const DAG_NODES: usize = 300;

/// The page's body, shared by the report and the dashboard: headline, task table, timeline,
/// dependencies. A big run shows the tasks that need a look first, and folds the others
/// (closed `<details>`, which the browser does not lay out until opened): a page of 10,000
/// tasks drawn whole kept a browser busy for seconds.
pub fn body(s: &RunState, plan: &Plan) -> String {
    let fold = |summary: String, inner: String| format!("<details><summary>{summary}</summary>\n{inner}\n</details>");
    let (table, gantt) = if s.tasks.len() <= UP_FRONT {
        (table(s), gantt(s))
    } else {
        let mut order: Vec<&TaskState> = s.tasks.iter().collect();
        order.sort_by_cached_key(|t| (attention(t.status), natural_key(&t.id)));
        let (first, rest) = order.split_at(UP_FRONT);
        let more = format!("the other {} tasks", rest.len());
        (
            format!(
                "<p>{UP_FRONT} of {} tasks, running and failed first.</p>\n{}\n{}",
                s.tasks.len(),
                table_of(first, &s.agent),
                fold(more.clone(), table_of(rest, &s.agent))
            ),
            format!("{}\n{}", gantt_of(s, first), fold(format!("the timeline of {more}"), gantt_of(s, rest))),
        )
    };
    let dag = if s.tasks.len() <= DAG_NODES {
        dag(s, plan)
    } else {
        format!("{}\n{}", waves_summary(s, plan), fold("every task's box".to_string(), dag(s, plan)))
    };
    format!(
        "<h1>git-parallel run {id}</h1>\n{head}\n{table}\n{compared}<h2>Timeline</h2>\n<p>{legend}{FADED}</p>\n{gantt}\n<h2>Dependencies</h2>\n{dag}\n",
        id = esc(&s.id),
        head = headline(s),
        compared = compared(s),
        legend = legend(),
    )
}

/// What a faded bar in the timeline means.
pub const FADED: &str = "(a faded bar: an attempt that was retried or whose check failed)";

/// Waves drawn one row each at most; past it, neighbouring waves share a row.
const WAVE_ROWS: usize = 50;

/// The dependency graph summarised: per wave (or group of neighbouring waves), how many tasks
/// it holds and a bar of their states. What a page shows instead of [`dag`] when a run has
/// too many tasks to draw one box each.
pub fn waves(s: &RunState, plan: &Plan) -> String {
    let w = &plan.schedule.waves;
    let per = w.len().div_ceil(WAVE_ROWS).max(1);
    let mut rows = String::new();
    for (g, group) in w.chunks(per).enumerate() {
        let mut by: std::collections::BTreeMap<TaskStatus, usize> = Default::default();
        for id in group.iter().flatten() {
            *by.entry(s.task(id).map(|t| t.status).unwrap_or(TaskStatus::Pending)).or_default() += 1;
        }
        let n: usize = by.values().sum();
        let (mut x, mut bar) = (0.0, String::new());
        for (st, k) in &by {
            let width = 300.0 * *k as f64 / n.max(1) as f64;
            bar.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"0\" width=\"{width:.1}\" height=\"14\" fill=\"{}\"><title>{k} {}</title></rect>",
                color(*st),
                st.as_str()
            ));
            x += width;
        }
        let name =
            if per == 1 { format!("{}", g * per + 1) } else { format!("{}-{}", g * per + 1, g * per + group.len()) };
        let states: Vec<String> = by.iter().map(|(st, k)| format!("{k} {}", st.as_str())).collect();
        rows.push_str(&format!(
            "<tr><td>{name}</td><td>{n}</td><td><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"14\">{bar}</svg></td><td>{}</td></tr>\n",
            states.join(", ")
        ));
    }
    format!(
        "<div data-part=\"waves\"><table>\n<tr><th>{}</th><th>tasks</th><th colspan=\"2\">states</th></tr>\n{rows}</table></div>",
        if per == 1 { "wave" } else { "waves" }
    )
}

/// [`waves`] with the sentence that says what it shows.
pub fn waves_summary(s: &RunState, plan: &Plan) -> String {
    format!(
        "<p>{} tasks in {} waves: each wave's tasks by state.</p>\n{}",
        s.tasks.len(),
        plan.schedule.waves.len(),
        waves(s, plan)
    )
}

/// The attempts `--attempts-all` weighed, as a table (empty when none were).
pub fn compared(s: &RunState) -> String {
    let rows: Vec<String> = comparison_rows(s)
        .iter()
        .map(|r| format!("<tr>{}</tr>", r.iter().map(|c| format!("<td>{}</td>", esc(c))).collect::<String>()))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let head: String = ["task", "attempt", "agent", "check", "merges cleanly", "lines", "winner"]
        .iter()
        .map(|c| format!("<th>{c}</th>"))
        .collect();
    format!("<h2>Attempts compared</h2>\n<table>\n<tr>{head}</tr>\n{}\n</table>\n", rows.join("\n"))
}

/// A self-contained HTML page: summary, task table, Gantt chart of the run, the DAG.
pub fn html(s: &RunState, plan: &Plan) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>git-parallel run {}</title>\n<style>{STYLE}</style></head><body>\n{}</body></html>\n",
        esc(&s.id),
        body(s, plan)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::runs::{replay, Event, Record, RunStatus};

    fn rec(at: f64, event: Event) -> Record {
        Record { at, event }
    }

    fn started(task: &str, attempt: u32) -> Event {
        Event::Started {
            task: task.into(),
            attempt,
            worktree: "w".into(),
            branch: "b".into(),
            start_commit: "c".into(),
            agent: None,
        }
    }

    /// Every attempt is its own bar, and none runs past the axis's end (a failed task's
    /// wall time counts every attempt, and used to be drawn from its last start).
    #[test]
    fn every_attempt_is_a_bar_within_the_axis() {
        let s = replay(
            "1",
            &[
                rec(
                    100.0,
                    Event::Planned {
                        plan: "p".into(),
                        base: "b".into(),
                        agent: "a".into(),
                        workers: 1,
                        tasks: vec![("t".into(), crate::prompt::TaskType::Feature)],
                        sandbox: false,
                    },
                ),
                rec(101.0, started("t", 1)),
                rec(104.0, Event::Retried { task: "t".into(), attempt: 1, reason: "x".into(), delay_ms: 10 }),
                rec(105.0, started("t", 2)),
                rec(
                    109.0,
                    Event::Finished {
                        task: "t".into(),
                        status: TaskStatus::Failed,
                        commit: None,
                        reason: None,
                        exit_code: Some(1),
                        metrics: Default::default(),
                        files_changed: vec![],
                        wall_ms: 8000,
                    },
                ),
                rec(110.0, Event::Ended { status: RunStatus::Failed }),
            ],
        );
        let bars = gantt_bars(&s, &s.tasks[0]);
        let rects: Vec<(f64, f64)> = bars
            .split("<rect ")
            .skip(1)
            .map(|r| {
                let num = |k: &str| -> f64 {
                    let v = r.split(&format!("{k}=\"")).nth(1).unwrap();
                    v[..v.find('"').unwrap()].parse().unwrap()
                };
                (num("x"), num("width"))
            })
            .collect();
        assert_eq!(rects, vec![(1000.0, 3000.0), (5000.0, 4000.0)], "{bars}");
        let total = wall_ms(&s) as f64;
        assert!(rects.iter().all(|(x, w)| x + w <= total), "{bars}");
        assert!(bars.contains("attempt 1 of 2: retried") && bars.contains("attempt 2 of 2: failed"), "{bars}");
    }
}
