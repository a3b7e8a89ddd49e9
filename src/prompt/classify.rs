//! Task type classification from a prompt's text.
//!
//! Rules: each type has keyword patterns (word-prefix regexes). Every match in the body scores 1,
//! every match in the title scores 3 (a title states the intent). The highest score wins; a tie
//! goes to the more specific type in `PRECEDENCE` order (so "Add tests for X" is a test task,
//! not a feature). No match at all is `other`. Front matter `type:` overrides all of this.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum TaskType {
    Documentation,
    TestCoverage,
    BugFix,
    Performance,
    Refactor,
    Configuration,
    Feature,
    Other,
}

/// Tie-break order: more specific intents first.
pub const PRECEDENCE: [TaskType; 7] = [
    TaskType::Documentation,
    TaskType::TestCoverage,
    TaskType::BugFix,
    TaskType::Performance,
    TaskType::Refactor,
    TaskType::Configuration,
    TaskType::Feature,
];

impl TaskType {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Documentation => "documentation",
            TaskType::TestCoverage => "test-coverage",
            TaskType::BugFix => "bug-fix",
            TaskType::Performance => "performance",
            TaskType::Refactor => "refactor",
            TaskType::Configuration => "configuration",
            TaskType::Feature => "feature",
            TaskType::Other => "other",
        }
    }

    /// Parse the `type:` of front matter; accepts common spellings.
    pub fn parse(s: &str) -> Option<TaskType> {
        Some(match s.trim().to_ascii_lowercase().replace(['_', ' '], "-").as_str() {
            "documentation" | "docs" | "doc" => TaskType::Documentation,
            "test-coverage" | "test" | "tests" | "testing" | "coverage" => TaskType::TestCoverage,
            "bug-fix" | "bugfix" | "bug" | "fix" => TaskType::BugFix,
            "performance" | "perf" | "optimization" => TaskType::Performance,
            "refactor" | "refactoring" | "cleanup" => TaskType::Refactor,
            "configuration" | "config" | "ci" | "build" | "chore" => TaskType::Configuration,
            "feature" | "feat" => TaskType::Feature,
            "other" => TaskType::Other,
            _ => return None,
        })
    }
}

impl std::fmt::Display for TaskType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn patterns(t: TaskType) -> &'static [&'static str] {
    match t {
        TaskType::Documentation => &[
            "document",
            "docs?",
            "readme",
            "docstring",
            "changelog",
            "tutorial",
            "guide",
            "man page",
            "comments?",
            "explain",
        ],
        TaskType::TestCoverage => &[
            "tests?",
            "testing",
            "coverage",
            "unit test",
            "integration test",
            "test case",
            "assert",
            "spec",
            "fixtures?",
        ],
        TaskType::BugFix => &[
            "fix",
            "bugs?",
            "crash",
            "broken",
            "regression",
            "panic",
            "incorrect",
            "wrong",
            "fail(s|ing|ure)?",
            "error",
            "issue",
            "off-by-one",
            "leak",
        ],
        TaskType::Performance => &[
            "performance",
            "faster",
            "slow",
            "optimi[sz]e",
            "latency",
            "throughput",
            "speed",
            "memory usage",
            "benchmark",
            "cach(e|ing)",
            "allocation",
            "cheaper",
            "expensive",
        ],
        TaskType::Refactor => &[
            "refactor",
            "rename",
            "extract",
            "clean ?up",
            "restructure",
            "simplify",
            "reorganize",
            "split",
            "deduplicate",
            "move",
            "decouple",
            "modernize",
        ],
        TaskType::Configuration => &[
            "config",
            "configuration",
            "ci",
            "pipeline",
            "dockerfile",
            "docker",
            "environment variable",
            "dependenc(y|ies)",
            "upgrade",
            "bump",
            "lint(er)?",
            "settings",
            "workflow",
            "makefile",
        ],
        TaskType::Feature => &[
            "add",
            "implement",
            "support",
            "new",
            "create",
            "introduce",
            "feature",
            "endpoint",
            "command",
            "allow",
            "enable",
            "build",
        ],
        TaskType::Other => &[],
    }
}

fn compiled() -> &'static Vec<(TaskType, Regex)> {
    static RULES: OnceLock<Vec<(TaskType, Regex)>> = OnceLock::new();
    RULES.get_or_init(|| {
        PRECEDENCE
            .iter()
            .map(|&t| {
                let alt = patterns(t).join("|");
                (t, Regex::new(&format!(r"(?i)\b(?:{alt})\w*")).expect("valid classification regex"))
            })
            .collect()
    })
}

/// Scores per type for a title and body (exposed for `--json` explanations and tests).
pub fn scores(title: &str, body: &str) -> Vec<(TaskType, usize)> {
    compiled().iter().map(|(t, re)| (*t, re.find_iter(title).count() * 3 + re.find_iter(body).count())).collect()
}

/// Classify a task from its title and body.
pub fn classify(title: &str, body: &str) -> TaskType {
    let mut best = (TaskType::Other, 0usize);
    for (t, score) in scores(title, body) {
        // Strictly greater: ties keep the earlier, more specific type.
        if score > best.1 {
            best = (t, score);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_decide() {
        assert_eq!(classify("Add tests for the parser", ""), TaskType::TestCoverage);
        assert_eq!(classify("Fix crash when config is empty", ""), TaskType::BugFix);
        assert_eq!(classify("Document the CLI in the README", ""), TaskType::Documentation);
        assert_eq!(classify("Refactor the storage layer", ""), TaskType::Refactor);
        assert_eq!(classify("Make parsing faster", ""), TaskType::Performance);
        assert_eq!(classify("Bump dependencies and update CI", ""), TaskType::Configuration);
        assert_eq!(classify("Implement export to CSV", ""), TaskType::Feature);
        assert_eq!(classify("Ponder", "Think about it."), TaskType::Other);
    }

    #[test]
    fn words_are_whole_word_prefixes() {
        // "prefix" must not count as "fix"; "latest" not as "test".
        assert_eq!(classify("Prefix handling", "the latest attestation"), TaskType::Other);
    }

    #[test]
    fn parse_spellings() {
        assert_eq!(TaskType::parse("docs"), Some(TaskType::Documentation));
        assert_eq!(TaskType::parse("Bug Fix"), Some(TaskType::BugFix));
        assert_eq!(TaskType::parse("nonsense"), None);
    }
}
