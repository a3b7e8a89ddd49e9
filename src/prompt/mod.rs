//! Prompt files: Markdown with optional YAML front matter.

pub mod classify;
pub mod combine;
pub mod infer;

pub use classify::TaskType;

use crate::error::usage;
use anyhow::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Front matter larger than this is refused: it bounds the YAML parser's work on any input
/// (a few thousand file names fit).
pub const MAX_FRONT_MATTER: usize = 64 * 1024;

/// Keys the front matter may carry.
pub const KNOWN_KEYS: &[&str] = &[
    "id",
    "title",
    "depends_on",
    "files",
    "type",
    "priority",
    "agent",
    "timeout",
    "estimate",
    "check",
    "issue",
    "attempts",
    "agents",
    "attempts_all",
    "max_turns",
];

/// One string or a list of strings (`depends_on: a` and `depends_on: [a, b]` both work).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(Scalar),
    Many(Vec<Scalar>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s.as_text()],
            OneOrMany::Many(v) => v.iter().map(Scalar::as_text).collect(),
        }
    }
}

/// serde's words for a value of the wrong shape, in the user's terms.
fn explain(message: &str) -> String {
    message
        .replace("data did not match any variant of untagged enum OneOrMany", "expected one name or a list of names")
        .replace("data did not match any variant of untagged enum Scalar", "expected a number or a word")
}

/// A scalar that may be written as a number or a string (`estimate: 30` or `estimate: 30m`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct FrontMatter {
    id: Option<Scalar>,
    title: Option<String>,
    #[serde(default)]
    depends_on: OneOrMany,
    #[serde(default)]
    files: OneOrMany,
    #[serde(rename = "type")]
    kind: Option<String>,
    priority: Option<i64>,
    agent: Option<String>,
    timeout: Option<Scalar>,
    estimate: Option<Scalar>,
    check: Option<String>,
    issue: Option<u64>,
    attempts: Option<u32>,
    #[serde(default)]
    agents: OneOrMany,
    attempts_all: Option<bool>,
    max_turns: Option<u32>,
}

/// A parsed prompt file.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Path relative to the repository's working tree (for messages and the stored plan).
    pub path: PathBuf,
    pub id: String,
    pub title: String,
    /// The Markdown after the front matter.
    pub body: String,
    /// The whole file as read (stored verbatim in the plan).
    pub raw: String,
    pub depends_on: Vec<String>,
    pub files: Vec<String>,
    pub kind: Option<TaskType>,
    pub priority: i64,
    pub agent: Option<String>,
    pub timeout_secs: Option<u64>,
    pub estimate_min: Option<f64>,
    /// The task's own check command (front matter `check:`), over `parallel.check`.
    pub check: Option<String>,
    /// The forge issue the task comes from (front matter `issue:`).
    pub issue: Option<u64>,
    /// Independent attempts at the task (front matter `attempts:`), over `--attempts`.
    pub attempts: Option<u32>,
    /// Agent profiles the task's attempts take in turn (front matter `agents:`).
    pub agents: Vec<String>,
    /// Every attempt finishes and the best wins (front matter `attempts_all:`).
    pub attempts_all: Option<bool>,
    /// The most turns the agent may take, for CLIs that accept a limit (front matter `max_turns:`).
    pub max_turns: Option<u32>,
    /// Warnings (unknown keys) with their `file:line:` prefix.
    pub warnings: Vec<String>,
}

/// Ids must be usable in branch and ref names and easy to type.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with(['.', '-'])
        && !id.ends_with(".lock")
        && !id.contains("..")
}

/// Turn a file stem into an id: lowercase, runs of other characters become `-`.
pub fn id_from_stem(stem: &str) -> String {
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches(|c| c == '-' || c == '.').to_string()
}

/// Split `text` into (front matter, body, line where the body starts).
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let l = line.trim_end();
        if l == "---" || l == "..." {
            return Some((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

/// Parse one prompt file. `display` is the path used in messages (relative to the repository).
pub fn parse(bytes: &[u8], display: &Path) -> Result<Prompt> {
    let shown = display.display();
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        usage(format!("{shown}:{line}: not valid UTF-8 text"))
    })?;
    // Editors on Windows start files with a byte-order mark; it must not hide the front matter.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let starts_fenced = text.starts_with("---\n") || text.starts_with("---\r\n");
    let (fm, body) = match split_front_matter(text) {
        Some((fm, body)) => (Some(fm), body),
        None if starts_fenced => {
            return Err(usage(format!("{shown}:1: front matter starts with `---` but is never closed")))
        }
        None => (None, text),
    };
    let mut warnings = Vec::new();
    let front: FrontMatter = match fm {
        Some(fm) if fm.len() > MAX_FRONT_MATTER => {
            return Err(usage(format!(
                "{shown}:2: front matter is {} KB, more than the {} KB allowed (name files with globs such as `src/api/**`)",
                fm.len() / 1024,
                MAX_FRONT_MATTER / 1024
            )))
        }
        Some(fm) if !fm.trim().is_empty() => {
            // The front matter starts on line 2 of the file.
            let parsed: FrontMatter = crate::yaml::from_str(fm).map_err(|e| {
                let line = e.line.map(|l| l + 1).unwrap_or(1);
                usage(format!("{shown}:{line}: malformed front matter: {}", explain(&e.message)))
            })?;
            for (key, line) in crate::yaml::top_level_keys(fm) {
                if !KNOWN_KEYS.contains(&key.as_str()) {
                    warnings.push(format!(
                        "{shown}:{}: unknown front matter key `{key}` (known: {})",
                        line + 1,
                        KNOWN_KEYS.join(", ")
                    ));
                }
            }
            parsed
        }
        _ => FrontMatter::default(),
    };
    if body.trim().is_empty() {
        return Err(usage(format!("{shown}: empty prompt: there is no task text after the front matter")));
    }
    let stem = display.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let id = match &front.id {
        Some(id) => id.as_text(),
        None => id_from_stem(&stem),
    };
    if !valid_id(&id) {
        return Err(usage(format!(
            "{shown}: task id `{id}` is not usable in a branch name; use letters, digits, `-`, `_`, `.`"
        )));
    }
    let title = front.title.clone().unwrap_or_else(|| first_heading(body).unwrap_or_else(|| stem.clone()));
    let kind = match &front.kind {
        Some(k) => Some(TaskType::parse(k).ok_or_else(|| {
            usage(format!(
                "{shown}: unknown task type `{k}` (use documentation, test-coverage, bug-fix, performance, refactor, configuration, feature or other)"
            ))
        })?),
        None => None,
    };
    let agents = front.agents.into_vec();
    for a in front.agent.iter().chain(&agents) {
        if !crate::agent::PROFILES.contains(&a.as_str()) {
            return Err(usage(format!("{shown}: unknown agent `{a}` (known: {})", crate::agent::PROFILES.join(", "))));
        }
    }
    if front.agent.is_some() && !agents.is_empty() {
        return Err(usage(format!(
            "{shown}: both `agent:` and `agents:` are set; name one agent, or the list its attempts take in turn"
        )));
    }
    if front.max_turns == Some(0) {
        return Err(usage(format!("{shown}: max_turns: must be at least 1")));
    }
    let duration = |what: &str, v: &Option<Scalar>| -> Result<Option<std::time::Duration>> {
        v.as_ref()
            .map(|s| crate::config::parse_duration(&s.as_text()).map_err(|e| usage(format!("{shown}: {what}: {e}"))))
            .transpose()
    };
    let timeout = duration("timeout", &front.timeout)?;
    let estimate = duration("estimate", &front.estimate)?;
    Ok(Prompt {
        path: display.to_path_buf(),
        id,
        title,
        body: body.to_string(),
        raw: text.to_string(),
        depends_on: front.depends_on.into_vec(),
        files: front.files.into_vec(),
        kind,
        priority: front.priority.unwrap_or(0),
        agent: front.agent,
        timeout_secs: timeout.map(|d| d.as_secs().max(1)),
        estimate_min: estimate.map(|d| d.as_secs_f64() / 60.0),
        check: front.check.filter(|c| !c.trim().is_empty()),
        issue: front.issue,
        attempts: front.attempts,
        agents,
        attempts_all: front.attempts_all,
        max_turns: front.max_turns,
        warnings,
    })
}

/// The first Markdown heading, as a title.
fn first_heading(body: &str) -> Option<String> {
    body.lines()
        .map(str::trim)
        .find(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_and_defaults() {
        let p = parse(
            b"---\nid: api\ndepends_on: db\nfiles: [src/a.rs]\npriority: 2\nestimate: 15\n---\n# Add API\nDo it.\n",
            Path::new("prompts/x.md"),
        )
        .unwrap();
        assert_eq!(p.id, "api");
        assert_eq!(p.depends_on, vec!["db"]);
        assert_eq!(p.files, vec!["src/a.rs"]);
        assert_eq!(p.priority, 2);
        assert_eq!(p.estimate_min, Some(15.0));
        assert_eq!(p.title, "Add API");
        let q = parse(b"Just text\n", Path::new("prompts/My Task.md")).unwrap();
        assert_eq!(q.id, "my-task");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse(b"---\nid: a\ndepends_on: [b\n---\nx\n", Path::new("p/a.md")).unwrap_err();
        assert!(e.to_string().starts_with("p/a.md:"), "{e}");
        assert!(e.to_string().contains("malformed front matter"), "{e}");
        let e = parse(b"---\nid: a\n---\n  \n", Path::new("p/a.md")).unwrap_err();
        assert!(e.to_string().contains("empty prompt"), "{e}");
        let w = parse(b"---\nid: a\ncolour: red\n---\nx\n", Path::new("p/a.md")).unwrap();
        assert_eq!(w.warnings.len(), 1);
        assert!(w.warnings[0].starts_with("p/a.md:3: unknown front matter key `colour`"), "{:?}", w.warnings);
    }

    #[test]
    fn agents_name_known_profiles_and_exclude_agent() {
        let p = parse(
            b"---
agents: [claude, codex]
attempts_all: true
max_turns: 5
---
x
",
            Path::new("p/a.md"),
        )
        .unwrap();
        assert_eq!(p.agents, ["claude", "codex"]);
        assert_eq!((p.attempts_all, p.max_turns), (Some(true), Some(5)));
        let e = parse(
            b"---
agents: [claude, clod]
---
x
",
            Path::new("p/a.md"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown agent `clod`"), "{e}");
        let e = parse(
            b"---
agent: claude
agents: [codex]
---
x
",
            Path::new("p/a.md"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("both `agent:` and `agents:`"), "{e}");
    }
}
