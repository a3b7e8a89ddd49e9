//! `git parallel report`: a run's summary as Markdown, JSON or a self-contained HTML page.

use super::Context;
use crate::cli::{ReportArgs, ReportFormat};
use crate::store::{plans, runs};
use crate::ui;
use anyhow::{Context as _, Result};
use std::io::Write;

pub fn run(ctx: &Context, args: ReportArgs) -> Result<i32> {
    let id = runs::resolve(&ctx.repo, args.run.as_deref())?;
    let s = runs::load(&ctx.repo, &id)?;
    let text = match args.format {
        ReportFormat::Md => ui::report::markdown(&s),
        ReportFormat::Json => {
            let mut v = super::status::json_of(&s);
            v["totals"] = ui::report::totals(&s);
            serde_json::to_string_pretty(&v)? + "\n"
        }
        ReportFormat::Html => ui::report::html(&s, &plans::load(&ctx.repo, &s.plan)?),
    };
    if let Some(path) = &args.append {
        let md = ui::report::markdown(&s);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let sep = if std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false) { "\n" } else { "" };
        write!(f, "{sep}{md}")?;
        ui::note(&format!("appended the summary of run {id} to {}", path.display()));
        return Ok(0);
    }
    ui::out(&text)?;
    Ok(0)
}
