//! One file per subcommand: each turns its arguments into library calls.

pub mod cancel;
pub mod clean;
pub mod dashboard;
pub mod hooks;
pub mod integrate;
pub mod logs;
pub mod plan;
pub mod publish;
pub mod report;
pub mod resume;
pub mod run;
pub mod status;
pub mod worker;

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

/// Run the parsed command; Ok carries the exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    let dir = cli.directory.as_ref();
    match cli.command {
        Command::Plan(args) => plan::run(&Context::open(dir)?, args),
        Command::Run(args) => run::run(&Context::open(dir)?, args),
        Command::Status(args) => status::run(&Context::open(dir)?, args),
        Command::Resume(args) => resume::run(&Context::open(dir)?, args),
        Command::Cancel(args) => cancel::run(&Context::open(dir)?, args),
        Command::Integrate(args) => integrate::run(&Context::open(dir)?, args),
        Command::Clean(args) => clean::run(&Context::open(dir)?, args),
        Command::Hooks(args) => hooks::run(&Context::open(dir)?, args),
        Command::Report(args) => report::run(&Context::open(dir)?, args),
        Command::Logs(args) => logs::run(&Context::open(dir)?, args),
        Command::Publish(args) => publish::run(&Context::open(dir)?, args),
        Command::Dashboard(args) => dashboard::run(&Context::open(dir)?, args),
        Command::Worker(args) => worker::run(&Context::open(dir)?, args),
    }
}
