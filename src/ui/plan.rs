//! Rendering a plan for humans.

use super::{minutes, table};
use crate::analysis::dag::ConflictKind;
use crate::plan::Plan;

fn list(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "-".into();
    }
    if items.len() <= max {
        return items.join(", ");
    }
    format!("{}, +{} more", items[..max].join(", "), items.len() - max)
}

/// Soft conflicts a plan report shows, riskiest first.
const SOFT_SHOWN: usize = 30;

/// The plan as a report: tasks, conflicts, critical path, waves, estimates.
pub fn render(plan: &Plan) -> String {
    let mut s = String::new();
    let title = if plan.id.is_empty() { "plan (dry run)".to_string() } else { format!("plan {}", plan.id) };
    s.push_str(&format!(
        "{title}: {} tasks, base {}, {} worker{}\n\n",
        plan.tasks.len(),
        &plan.base[..plan.base.len().min(12)],
        plan.schedule.workers,
        if plan.schedule.workers == 1 { "" } else { "s" }
    ));
    let rows: Vec<Vec<String>> = plan
        .tasks
        .iter()
        .map(|t| {
            let mut deps: Vec<String> = t.depends_on.clone();
            deps.extend(t.after.iter().map(|a| format!("{a} (conflict)")));
            vec![
                t.id.clone(),
                match t.type_basis {
                    // Not the rules' choice: a guess (right on about 6 in 10 such titles unseen before).
                    Some(crate::prompt::classify::Basis::Model) => format!("{}?", t.kind),
                    _ => t.kind.to_string(),
                },
                minutes(t.estimate_min),
                format!("{}-{}", minutes(t.start_min), minutes(t.finish_min)),
                list(&t.files, 3),
                list(&deps, 3),
            ]
        })
        .collect();
    s.push_str(&table(&["TASK", "TYPE", "EST", "SIMULATED", "FILES", "AFTER"], &rows));
    if plan.tasks.iter().any(|t| t.type_basis == Some(crate::prompt::classify::Basis::Model)) {
        s.push_str("(type?: guessed where the keyword rules were silent or chose otherwise; `type:` in front matter settles it)\n");
    }
    if !plan.conflicts.is_empty() {
        s.push_str("\nconflicts:\n");
        // Hard conflicts shape the schedule: all of them. Soft ones riskiest first, and only so
        // many: a thousand-task plan has thousands, and the JSON lists them all.
        for c in plan.conflicts.iter().filter(|c| c.kind == ConflictKind::Hard) {
            s.push_str(&format!(
                "  hard  {} <> {}: both touch {}{}\n",
                c.a,
                c.b,
                list(&c.files, 3),
                if c.serialized { " (serialized)" } else { "" }
            ));
        }
        let mut soft: Vec<_> = plan.conflicts.iter().filter(|c| c.kind == ConflictKind::Soft).collect();
        soft.sort_by(|x, y| y.risk.total_cmp(&x.risk).then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b))));
        for c in soft.iter().take(SOFT_SHOWN) {
            s.push_str(&format!("  soft  {} <> {}: risk {:.2}, imports {}\n", c.a, c.b, c.risk, list(&c.files, 2)));
        }
        if soft.len() > SOFT_SHOWN {
            s.push_str(&format!(
                "  ... and {} more soft conflicts, risk {:.2} or less (--json lists them all)\n",
                soft.len() - SOFT_SHOWN,
                soft[SOFT_SHOWN].risk
            ));
        }
    }
    let sch = &plan.schedule;
    s.push_str(&format!("\ncritical path: {} ({})\n", sch.critical_path.join(" -> "), minutes(sch.critical_path_min)));
    s.push_str("waves (display only; tasks start as soon as their dependencies finish):\n");
    for (i, w) in sch.waves.iter().enumerate() {
        s.push_str(&format!("  {}: {}\n", i + 1, w.join(", ")));
    }
    s.push_str(&format!(
        "\nestimate: sequential {}, parallel {} at {} worker{}, speed-up {:.2}x, lower bound {}\n",
        minutes(sch.sequential_min),
        minutes(sch.parallel_min),
        sch.workers,
        if sch.workers == 1 { "" } else { "s" },
        sch.speedup,
        minutes(sch.lower_bound_min)
    ));
    s
}
