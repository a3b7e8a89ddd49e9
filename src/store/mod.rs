//! The repository as database: plans, run event logs, notes, compare-and-swap ref updates.
//! Only this module knows how refs and notes are laid out.

pub mod inbox;
pub mod layout;
pub mod notes;
pub mod objects;
pub mod owner;
pub mod plans;
pub mod runs;
