//! Scheduling: critical-path list scheduling (simulated for plans, live for runs) and the
//! resource governor that decides how many agents the machine can take.

pub mod governor;
pub mod simulate;
