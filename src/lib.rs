//! git-parallel: plan, run and integrate AI coding agents in parallel git worktrees.
//!
//! Data flows one way: `prompt` → `analysis` → `schedule` → `exec` → `store` → `integrate`;
//! `commands` wire them to the command line; `store` alone knows the ref layout; `proc` runs
//! every subprocess.

pub mod agent;
pub mod analysis;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod exec;
pub mod fault;
pub mod forge;
pub mod integrate;
pub mod man;
pub mod plan;
pub mod proc;
pub mod prompt;
pub mod repo;
pub mod schedule;
pub mod store;
pub mod ui;
pub mod yaml;

use clap::Parser;
use std::ffi::OsString;

/// Run the command line and return the exit code. Errors go to stderr, with a hint when known.
pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    // The agents' containment supervisor: before anything else, while single-threaded.
    if args.get(1).is_some_and(|a| a == exec::contain::SUBCOMMAND) {
        exec::contain::main(&args[2..]);
    }
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            if error::is_broken_pipe(&err) {
                return 0;
            }
            eprintln!("error: {err:#}");
            if let Some(h) = error::hint(&err) {
                eprintln!("hint: {h}");
            }
            error::exit_code(&err)
        }
    }
}
