//! Duration estimates: front matter wins; then the median duration of the same task type in
//! past runs stored in the repository; then a rule of thumb from type and size.

use crate::prompt::TaskType;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    FrontMatter,
    History,
    Heuristic,
}

/// Base minutes for a task of this type with one file and a short prompt.
pub fn base_minutes(kind: TaskType) -> f64 {
    match kind {
        TaskType::Documentation => 10.0,
        TaskType::Configuration => 10.0,
        TaskType::TestCoverage => 20.0,
        TaskType::BugFix => 25.0,
        TaskType::Other => 25.0,
        TaskType::Refactor => 35.0,
        TaskType::Feature => 40.0,
        TaskType::Performance => 45.0,
    }
}

/// Rule of thumb: the type's base, plus 5 minutes per file past the first (at most 12 more
/// files counted), plus 1 minute per 100 words past the first 100 (at most 30).
pub fn heuristic(kind: TaskType, files: usize, words: usize) -> f64 {
    let extra_files = files.saturating_sub(1).min(12) as f64 * 5.0;
    let extra_words = (words.saturating_sub(100) as f64 / 100.0).min(30.0);
    ((base_minutes(kind) + extra_files + extra_words) * 10.0).round() / 10.0
}

/// Durations (minutes) of finished tasks in past runs, by type.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub by_type: HashMap<TaskType, Vec<f64>>,
}

impl History {
    pub fn add(&mut self, kind: TaskType, minutes: f64) {
        if minutes.is_finite() && minutes > 0.0 {
            self.by_type.entry(kind).or_default().push(minutes);
        }
    }

    /// Median minutes for this type, if any past task of it finished.
    pub fn median(&self, kind: TaskType) -> Option<f64> {
        let mut v = self.by_type.get(&kind)?.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        let med = if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 };
        Some((med * 10.0).round() / 10.0)
    }
}

/// The estimate for one task and where it came from.
pub fn estimate(
    kind: TaskType,
    files: usize,
    words: usize,
    front_matter: Option<f64>,
    history: &History,
) -> (f64, Source) {
    if let Some(m) = front_matter {
        return (m, Source::FrontMatter);
    }
    if let Some(m) = history.median(kind) {
        return (m, Source::History);
    }
    (heuristic(kind, files, words), Source::Heuristic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let mut h = History::default();
        assert_eq!(estimate(TaskType::Feature, 1, 10, None, &h), (40.0, Source::Heuristic));
        assert_eq!(estimate(TaskType::Feature, 3, 300, None, &h), (52.0, Source::Heuristic));
        for m in [3.0, 9.0, 5.0] {
            h.add(TaskType::Feature, m);
        }
        assert_eq!(estimate(TaskType::Feature, 1, 10, None, &h), (5.0, Source::History));
        assert_eq!(estimate(TaskType::BugFix, 1, 10, None, &h).1, Source::Heuristic);
        assert_eq!(estimate(TaskType::Feature, 1, 10, Some(7.5), &h), (7.5, Source::FrontMatter));
    }
}
