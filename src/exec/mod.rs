//! Executing a plan: worktrees, agents, retries, results; the live scheduler loop.

pub mod attempts;
pub mod contain;
pub mod executor;
pub mod guard;
pub mod merge;
pub mod orchestrator;
pub mod overlay;
pub mod result;
pub mod sandbox;
pub mod slurm;
pub mod task;
pub mod taskdir;
pub mod worktree;
