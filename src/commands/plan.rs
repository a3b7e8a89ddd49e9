//! `git parallel plan`: prompts → a stored, dependency-aware plan.

use super::Context;
use crate::cli::PlanArgs;
use crate::plan::{self, Options, Plan};
use crate::store::plans;
use crate::ui;
use anyhow::Result;
use std::path::PathBuf;

/// Plan prompts at `paths` (stored unless `dry_run`).
pub fn make(ctx: &Context, paths: &[PathBuf], workers: usize, allow_conflicts: bool, dry_run: bool) -> Result<Plan> {
    let (mut p, raw) = plan::prepare(&ctx.repo, &ctx.settings.prompts, paths, &Options { workers, allow_conflicts })?;
    if !dry_run {
        plans::save(&ctx.repo, &mut p, &raw)?;
    }
    Ok(p)
}

pub fn run(ctx: &Context, args: PlanArgs) -> Result<i32> {
    if args.list {
        let stored = plans::load_all(&ctx.repo)?;
        for why in &stored.unreadable {
            ui::note(&format!("warning: {why}"));
        }
        let mut rows = Vec::new();
        for (id, p) in stored.plans {
            rows.push(vec![
                id,
                p.tasks.len().to_string(),
                ui::minutes(p.schedule.sequential_min),
                ui::minutes(p.schedule.parallel_min),
                p.schedule.workers.to_string(),
                p.base.chars().take(12).collect(),
            ]);
        }
        if args.json {
            let ids: Vec<&String> = rows.iter().map(|r| &r[0]).collect();
            return ui::json(&ids).map(|_| 0);
        }
        ui::out(&ui::table(&["PLAN", "TASKS", "SEQUENTIAL", "PARALLEL", "WORKERS", "BASE"], &rows))?;
        return Ok(0);
    }
    if let Some(id) = &args.show {
        let p = plans::load(&ctx.repo, id)?;
        if args.json {
            ui::json(&p)?;
        } else {
            ui::out(&ui::plan::render(&p))?;
        }
        return Ok(0);
    }
    if args.from_issues {
        let [dir] = args.paths.as_slice() else {
            return Err(crate::error::usage(
                "--from-issues writes the issues' prompts into one folder: name it (e.g. prompts/issues)",
            ));
        };
        let (forge, _) = super::publish::forge_for(ctx, None, None)?;
        let issues = forge.open_issues(args.label.as_deref())?;
        if issues.is_empty() {
            return Err(crate::error::usage(format!(
                "no open issues{} to plan",
                args.label.as_ref().map(|l| format!(" labelled {l}")).unwrap_or_default()
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::error::usage(format!("cannot create {}: {e}", dir.display())))?;
        for i in &issues {
            // The title is the issue's; a body of people's words stays as they wrote it.
            let text =
                format!("---\nissue: {}\n---\n# {}\n\n{}\n", i.number, i.title.replace('\n', " "), i.body.trim());
            std::fs::write(dir.join(format!("issue-{}.md", i.number)), text)?;
        }
        ui::note(&format!("wrote {} prompt(s) from open issues into {}", issues.len(), dir.display()));
    }
    let workers = crate::schedule::governor::workers_for(&ctx.repo, &ctx.settings, args.concurrency)?;
    let p = make(ctx, &args.paths, workers, args.allow_conflicts, args.dry_run)?;
    if args.json {
        ui::json(&p)?;
    } else {
        ui::out(&ui::plan::render(&p))?;
    }
    if !args.dry_run {
        ui::note(&format!(
            "stored as plan {} (refs/parallel/plans/{}); run it with: git parallel run {}",
            p.id, p.id, p.id
        ));
    }
    Ok(0)
}
