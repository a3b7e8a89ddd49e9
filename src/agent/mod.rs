//! Agent profiles: how to start each agent headless, and how to read what it prints.
//!
//! `claude` (default): `claude -p <prompt> --output-format stream-json --verbose
//! --permission-mode bypassPermissions`, resumable with `--resume <session>`.
//! `codex`: `codex exec --json --full-auto <prompt>`. `gemini`: `gemini -p <prompt>
//! --output-format stream-json --yolo`. `aider`: `aider --message <prompt> --yes-always`.
//! `custom`: a command template with `{prompt}`, `{prompt_file}`, `{worktree}`, `{task}`;
//! its output is read as Claude stream-json when it prints that.

pub mod parse;

use crate::error::usage;
use anyhow::Result;
use std::path::Path;

pub use parse::{Format, ResultInfo, Update};

pub const PROFILES: &[&str] = &["claude", "codex", "gemini", "aider", "custom"];

/// How to start one agent process.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    pub format: Format,
}

/// What the invocation needs to know about the task.
pub struct TaskInput<'a> {
    pub prompt: &'a str,
    pub prompt_file: &'a Path,
    pub worktree: &'a Path,
    pub task: &'a str,
    /// A session to continue (resume after an interruption), when the profile supports it.
    pub resume_session: Option<&'a str>,
}

/// Whether a profile can continue a recorded session.
pub fn supports_resume(profile: &str) -> bool {
    profile == "claude"
}

/// Build the command line for `profile`.
pub fn invocation(profile: &str, template: Option<&str>, t: &TaskInput) -> Result<Invocation> {
    let s = |x: &str| x.to_string();
    Ok(match profile {
        "claude" => {
            let mut args = vec![s("-p"), s(t.prompt), s("--output-format"), s("stream-json"), s("--verbose")];
            args.extend([s("--permission-mode"), s("bypassPermissions")]);
            if let Some(session) = t.resume_session {
                args.extend([s("--resume"), s(session)]);
            }
            Invocation { program: s("claude"), args, format: Format::ClaudeStreamJson }
        }
        "codex" => Invocation {
            program: s("codex"),
            args: vec![s("exec"), s("--json"), s("--full-auto"), s("--skip-git-repo-check"), s(t.prompt)],
            format: Format::CodexJson,
        },
        "gemini" => Invocation {
            program: s("gemini"),
            args: vec![s("-p"), s(t.prompt), s("--output-format"), s("stream-json"), s("--yolo")],
            format: Format::GeminiStreamJson,
        },
        "aider" => Invocation {
            program: s("aider"),
            args: vec![
                s("--message"),
                s(t.prompt),
                s("--yes-always"),
                s("--no-auto-commits"),
                s("--no-stream"),
                s("--no-pretty"),
            ],
            format: Format::Text,
        },
        "custom" => {
            let template = template.ok_or_else(|| {
                usage("the custom agent needs a command template: --agent-command or `git config parallel.agentCommand`, e.g. 'my-agent --file {prompt_file}'")
            })?;
            let words = shell_words::split(template).map_err(|e| usage(format!("agent command template: {e}")))?;
            let fill = |w: &str| {
                w.replace("{prompt_file}", &t.prompt_file.to_string_lossy())
                    .replace("{worktree}", &t.worktree.to_string_lossy())
                    .replace("{task}", t.task)
                    .replace("{prompt}", t.prompt)
            };
            let mut words = words.iter().map(|w| fill(w));
            let program = words.next().ok_or_else(|| usage("the agent command template is empty"))?;
            Invocation { program, args: words.collect(), format: Format::ClaudeStreamJson }
        }
        other => return Err(usage(format!("unknown agent `{other}` (known: {})", PROFILES.join(", ")))),
    })
}
