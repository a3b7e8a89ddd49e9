//! Run reports: Markdown, JSON and a self-contained HTML page with an SVG Gantt chart and the DAG.

use super::{millis, run::wall_ms, run::work_ms};
use crate::plan::Plan;
use crate::store::runs::{RunState, TaskStatus};

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

pub fn markdown(s: &RunState) -> String {
    let t = totals(s);
    let mut out = format!(
        "## git-parallel run {} (plan {}): {}\n\n| task | status | agent | duration | turns | cost | tokens in/out | files | retries | check | note |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
        s.id,
        s.plan,
        s.effective_status().as_str()
    );
    for task in natural_order(s) {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {}/{} | {} | {} | {} | {} |\n",
            task.id,
            task.status.as_str(),
            task.agent.as_deref().unwrap_or(&s.agent),
            if task.wall_ms > 0 { millis(task.wall_ms) } else { "-".into() },
            opt(task.metrics.turns),
            task.metrics.cost_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "-".into()),
            opt(task.metrics.input_tokens),
            opt(task.metrics.output_tokens),
            task.files_changed.len(),
            task.retries,
            task.check_summary().unwrap_or_else(|| "-".into()),
            // The agent's text: no terminal controls, in a file or on a terminal.
            super::sanitize(&task.reason.as_deref().unwrap_or("").replace('|', "/").replace('\n', " "))
        ));
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
fn natural_key(id: &str) -> Vec<(String, u64)> {
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

/// A self-contained HTML page: summary, Gantt chart of the run, the DAG.
pub fn html(s: &RunState, plan: &Plan) -> String {
    let (row, left, width) = (26.0, 160.0, 720.0);
    let total = (wall_ms(s).max(1)) as f64;
    let mut gantt = String::new();
    for (i, t) in s.tasks.iter().enumerate() {
        let y = 30.0 + i as f64 * row;
        gantt.push_str(&format!("<text x=\"4\" y=\"{}\" font-size=\"12\">{}</text>", y + 15.0, esc(&t.id)));
        if let Some(start) = t.started_at {
            let x = left + ((start - s.created_at) * 1000.0 / total).clamp(0.0, 1.0) * width;
            let w = ((t.wall_ms as f64 / total) * width).max(2.0);
            gantt.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" fill=\"{}\"><title>{} {} {}</title></rect>",
                color(t.status),
                esc(&t.id),
                t.status.as_str(),
                millis(t.wall_ms)
            ));
        }
    }
    let gantt_h = 40.0 + s.tasks.len() as f64 * row;
    gantt.push_str(&format!(
        "<line x1=\"{left}\" y1=\"20\" x2=\"{}\" y2=\"20\" stroke=\"#444\"/><text x=\"{left}\" y=\"14\" font-size=\"11\">0</text><text x=\"{}\" y=\"14\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        left + width,
        left + width,
        millis(wall_ms(s))
    ));
    // DAG: tasks placed by wave (column) and position in the wave (row).
    let mut pos = std::collections::HashMap::new();
    for (c, wave) in plan.schedule.waves.iter().enumerate() {
        for (r, id) in wave.iter().enumerate() {
            pos.insert(id.clone(), (20.0 + c as f64 * 170.0, 20.0 + r as f64 * 44.0));
        }
    }
    let mut dag = String::new();
    for t in &plan.tasks {
        for p in t.preds() {
            if let (Some(a), Some(b)) = (pos.get(p), pos.get(&t.id)) {
                dag.push_str(&format!(
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
        if let Some((x, y)) = pos.get(&t.id) {
            let st = s.task(&t.id).map(|x| x.status).unwrap_or(TaskStatus::Pending);
            dag.push_str(&format!(
                "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"130\" height=\"28\" rx=\"5\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" fill=\"white\">{}</text>",
                color(st),
                x + 6.0,
                y + 18.0,
                esc(&t.id)
            ));
        }
    }
    let dag_w = 40.0 + plan.schedule.waves.len() as f64 * 170.0;
    let dag_h = 40.0 + plan.schedule.waves.iter().map(Vec::len).max().unwrap_or(1) as f64 * 44.0;
    let legend: String = LEGEND
        .iter()
        .map(|(st, name)| {
            format!(
                "<span style=\"display:inline-block;width:12px;height:12px;background:{}\"></span> {name} &nbsp; ",
                color(*st)
            )
        })
        .collect();
    let integration = match s.integration.as_ref().map(|i| &i.result) {
        Some(i) if i.interrupted => format!(
            "<p>Integration into <code>{}</code> was interrupted.</p>",
            esc(crate::store::layout::short(&i.target))
        ),
        Some(i) => format!(
            "<p>Integrated {} of {} tasks into <code>{}</code>{}.</p>",
            i.merged.len(),
            s.tasks.len(),
            esc(crate::store::layout::short(&i.target)),
            if i.conflicts.is_empty() {
                String::new()
            } else {
                format!(
                    "; conflicts: {}",
                    esc(&i.conflicts.iter().map(|c| c.task.as_str()).collect::<Vec<_>>().join(", "))
                )
            }
        ),
        None => "<p>Not integrated.</p>".to_string(),
    };
    let md = markdown(s);
    let table = md
        .lines()
        .skip_while(|l| !l.starts_with("| "))
        .take_while(|l| l.starts_with("| "))
        .filter(|l| !l.starts_with("| ---"))
        .map(|l| {
            let cells: Vec<String> =
                l.trim_matches('|').split('|').map(|c| format!("<td>{}</td>", esc(c.trim()))).collect();
            format!("<tr>{}</tr>", cells.join(""))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let compared: String = comparison_rows(s)
        .iter()
        .map(|r| format!("<tr>{}</tr>", r.iter().map(|c| format!("<td>{}</td>", esc(c))).collect::<String>()))
        .collect::<Vec<_>>()
        .join("\n");
    let compared = match compared.is_empty() {
        true => String::new(),
        false => format!("<h2>Attempts compared</h2>\n<table>\n<tr><td>task</td><td>attempt</td><td>agent</td><td>check</td><td>merges cleanly</td><td>lines</td><td>winner</td></tr>\n{compared}\n</table>\n"),
    };
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>git-parallel run {id}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:3px 8px}}</style></head><body>\n<h1>git-parallel run {id}</h1>\n<p>plan {plan}, {status}; wall time {wall}, task time {work}, measured speed-up {speed:.2}x</p>\n{integration}\n<table>\n{table}\n</table>\n{compared}<h2>Timeline</h2>\n<p>{legend}</p>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{gw}\" height=\"{gantt_h}\">{gantt}</svg>\n<h2>Dependencies</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{dag_w}\" height=\"{dag_h}\"><defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"8\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#777\"/></marker></defs>{dag}</svg>\n</body></html>\n",
        id = s.id,
        plan = s.plan,
        status = s.effective_status().as_str(),
        wall = millis(wall_ms(s)),
        work = millis(work_ms(s)),
        speed = speedup(s),
        gw = left + width + 20.0,
    )
}
