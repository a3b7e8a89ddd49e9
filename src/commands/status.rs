//! `git parallel status`: runs and tasks at a glance, from refs only.

use super::Context;
use crate::cli::StatusArgs;
use crate::store::runs::{self, RunState, RunStatus};
use crate::ui;
use anyhow::Result;

/// `2026-11-25 18:05` (UTC) from seconds since the epoch.
pub fn when(secs: f64) -> String {
    let t = gix::date::Time::new(secs as i64, 0);
    t.format_or_unix(gix::date::time::format::ISO8601).chars().take(16).collect()
}

fn hint(s: &RunState) -> Option<String> {
    match s.effective_status() {
        RunStatus::Interrupted if s.status == RunStatus::Running => Some(format!(
            "run {} was interrupted (its orchestrator, pid {}, is gone); resume it with: git parallel resume {}",
            s.id, s.pid, s.id
        )),
        RunStatus::Interrupted | RunStatus::Cancelled => Some(format!("resume it with: git parallel resume {}", s.id)),
        _ => None,
    }
}

/// JSON of a run with its effective status.
pub fn json_of(s: &RunState) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    v["effective_status"] = serde_json::Value::String(s.effective_status().as_str().into());
    v["wall_ms"] = ui::run::wall_ms(s).into();
    v["work_ms"] = ui::run::work_ms(s).into();
    v
}

fn runs_table(states: &[RunState]) -> String {
    let rows: Vec<Vec<String>> = states
        .iter()
        .map(|s| {
            let (done, total) = s.counts();
            vec![
                s.id.clone(),
                s.plan.clone(),
                when(s.created_at),
                s.effective_status().as_str().to_string(),
                format!("{done}/{total}"),
                ui::millis(ui::run::wall_ms(s)),
            ]
        })
        .collect();
    let mut out = ui::table(&["RUN", "PLAN", "STARTED", "STATE", "TASKS", "WALL"], &rows);
    for s in states {
        if s.effective_status() == RunStatus::Interrupted && s.status == RunStatus::Running {
            out.push_str(&format!("{}\n", hint(s).unwrap_or_default()));
        }
    }
    out
}

fn run_view(s: &RunState) -> String {
    let (done, total) = s.counts();
    let mut out = format!(
        "run {} (plan {}): {}, {done}/{total} tasks, started {}, wall {}\n\n",
        s.id,
        s.plan,
        s.effective_status().as_str(),
        when(s.created_at),
        ui::millis(ui::run::wall_ms(s))
    );
    // The governor: what runs, what holds new starts back, the machine, rate limits (the
    // dashboard's lines).
    let governor = ui::run::governor_lines(s);
    if !governor.is_empty() {
        out.push_str(&format!("{}\n\n", governor.join("\n")));
    }
    out.push_str(&ui::run::tasks_table(s));
    let compared = ui::report::comparison_rows(s);
    if !compared.is_empty() {
        out.push_str("\nattempts compared (the best passes its check, merges cleanly, changes the fewest lines):\n");
        out.push_str(&ui::table(
            &["TASK", "ATTEMPT", "AGENT", "CHECK", "MERGES CLEANLY", "LINES", "WINNER"],
            &compared,
        ));
    }
    if let Some(b) = ui::run::budget_line(s) {
        out.push_str(&format!("\n{b}\n"));
    }
    if let Some(p) = &s.published {
        out.push_str(&format!("\n{}\n", ui::run::published_line(p)));
    }
    if let Some(h) = hint(s) {
        out.push_str(&format!("\n{h}\n"));
    }
    out
}

fn render(ctx: &Context, run: Option<&str>, json: bool) -> Result<(String, bool)> {
    match run {
        None => {
            // Summaries only: listing runs reads one small blob per run, whatever their size.
            let (states, corrupt) = runs::summaries_checked(&ctx.repo)?;
            let live = states.iter().any(|s| s.effective_status() == RunStatus::Running);
            // A run whose ref cannot be read is shown as such; the others still are.
            for (id, why) in &corrupt {
                crate::ui::note(&ui::sanitize(&format!("run {id} is corrupt: {why}")));
            }
            if json {
                let mut v: Vec<serde_json::Value> = states
                    .iter()
                    .map(|s| {
                        let mut v = json_of(s);
                        if let Some(o) = v.as_object_mut() {
                            o.remove("tasks");
                        }
                        v
                    })
                    .collect();
                v.extend(
                    corrupt.iter().map(|(id, why)| serde_json::json!({"id": id, "status": "corrupt", "error": why})),
                );
                return Ok((serde_json::to_string_pretty(&v)? + "\n", live));
            }
            if states.is_empty() && corrupt.is_empty() {
                return Ok(("no runs yet; start one with: git parallel run\n".into(), false));
            }
            let mut table = runs_table(&states);
            for (id, _) in &corrupt {
                table.push_str(&format!("{id}  corrupt (its ref cannot be read; see above)\n"));
            }
            Ok((ui::sanitize(&table), live))
        }
        Some(id) => {
            let id = runs::resolve(&ctx.repo, Some(id))?;
            let s = runs::load(&ctx.repo, &id)?;
            let live = s.effective_status() == RunStatus::Running;
            if json {
                return Ok((serde_json::to_string_pretty(&json_of(&s))? + "\n", live));
            }
            // Task reasons and conflicted files are agents' text: no terminal controls.
            Ok((ui::sanitize(&run_view(&s)), live))
        }
    }
}

pub fn run(ctx: &Context, args: StatusArgs) -> Result<i32> {
    if !args.watch {
        ui::out(&render(ctx, args.run.as_deref(), args.json)?.0)?;
        return Ok(0);
    }
    use is_terminal::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    let ctl = super::run::interrupt_control();
    let mut last = String::new();
    loop {
        let (text, live) = render(ctx, args.run.as_deref(), args.json)?;
        if text != last {
            if tty && !args.json {
                // Redraw in place.
                ui::out(&format!("\x1b[H\x1b[2J{text}"))?;
            } else {
                ui::out(&text)?;
            }
            last = text;
        }
        if !live || ctl.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
