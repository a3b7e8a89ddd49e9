//! One file per subcommand: each turns its arguments into library calls.

pub mod plan;
pub mod run;

use crate::cli::{Cli, Command};
use crate::config::Settings;
use crate::repo::Repo;
use anyhow::Result;
use std::path::PathBuf;

/// What every command starts from: the repository and its settings.
pub struct Context {
    pub repo: Repo,
    pub settings: Settings,
}

impl Context {
    pub fn open(dir: Option<&PathBuf>) -> Result<Context> {
        let start = match dir {
            Some(d) => d.clone(),
            None => std::env::current_dir()?,
        };
        let repo = Repo::discover(&start)?;
        let settings = Settings::load(&repo)?;
        Ok(Context { repo, settings })
    }
}

fn not_yet(name: &str) -> Result<i32> {
    Err(crate::error::usage(format!("`git parallel {name}` is not implemented yet")))
}

/// Run the parsed command; Ok carries the exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let dir = cli.directory.as_ref();
    match cli.command {
        Command::Plan(args) => plan::run(&Context::open(dir)?, args),
        Command::Run(args) => run::run(&Context::open(dir)?, args),
        Command::Status(_) => not_yet("status"),
        Command::Resume(_) => not_yet("resume"),
        Command::Cancel(_) => not_yet("cancel"),
        Command::Integrate(_) => not_yet("integrate"),
        Command::Clean(_) => not_yet("clean"),
        Command::Hooks(_) => not_yet("hooks"),
        Command::Report(_) => not_yet("report"),
    }
}
