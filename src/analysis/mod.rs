//! Analysis of a set of tasks against the repository: imports, conflicts, DAG, estimates.

pub mod dag;
pub mod estimate;
pub mod imports;
