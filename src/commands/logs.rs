//! `git parallel logs`: what the agents did, for people (or raw with `--raw`).

use super::Context;
use crate::cli::LogsArgs;
use crate::error::usage;
use crate::exec::taskdir::{self, TaskDir};
use crate::store::runs::{self, RunState, TaskState, TaskStatus};
use crate::ui::sanitize;
use anyhow::Result;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

pub fn run(ctx: &Context, args: LogsArgs) -> Result<i32> {
    show(ctx, &args, &mut std::io::stdout().lock())
}

/// What `git parallel logs RUN TASK` prints (without following): the dashboard's view of a task.
pub fn task_view(ctx: &Context, run: &str, task: &str) -> Result<String> {
    let args = LogsArgs { run: Some(run.to_string()), task: Some(task.to_string()), raw: false, follow: false };
    let mut out = Vec::new();
    show(ctx, &args, &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn show(ctx: &Context, args: &LogsArgs, out: &mut impl Write) -> Result<i32> {
    let id = runs::resolve(&ctx.repo, args.run.as_deref())?;
    let state = runs::load(&ctx.repo, &id)?;
    let Some(task) = &args.task else {
        summary(&state, out)?;
        return Ok(0);
    };
    let t = state.task(task).ok_or_else(|| {
        let ids: Vec<&str> = state.tasks.iter().map(|t| t.id.as_str()).collect();
        usage(format!("run {id} has no task `{task}` (tasks: {})", ids.join(", ")))
    })?;
    let unfinished = matches!(t.status, TaskStatus::Running | TaskStatus::Pending);
    if t.status == TaskStatus::Running || (args.follow && unfinished) {
        return live(ctx, &id, task, args, out);
    }
    stored(ctx, &id, t, 0, args.raw, out)?;
    Ok(0)
}

/// A task's stored transcript (from byte `offset` on: what a live view has not shown yet), its
/// stderr and its outcome.
fn stored(ctx: &Context, id: &str, t: &TaskState, offset: usize, raw: bool, out: &mut impl Write) -> Result<()> {
    let transcript = runs::transcript(&ctx.repo, id, &t.id, "jsonl")?.unwrap_or_default();
    if transcript.len() > offset {
        print_lines(&transcript[offset..], raw, out)?;
    }
    print_stderr(&runs::transcript(&ctx.repo, id, &t.id, "stderr")?.unwrap_or_default(), out)?;
    // What the check said each time: the agent was handed the same.
    for c in &t.checks {
        writeln!(out, "\n{}: `{}` in {}", c.line(), sanitize(&c.command), crate::ui::millis(c.wall_ms))?;
        for l in c.output.lines() {
            writeln!(out, "  {}", sanitize(l))?;
        }
    }
    if let Some(r) = &t.reason {
        writeln!(out, "\n{}: {}", t.status.as_str(), sanitize(r))?;
    }
    Ok(())
}

/// One block per task: its outcome and the last thing its agent said on stderr.
fn summary(state: &RunState, out: &mut impl Write) -> Result<()> {
    for t in &state.tasks {
        writeln!(out, "{} {}", t.id, t.status.as_str())?;
        if let Some(r) = &t.reason {
            writeln!(out, "  {}", sanitize(r))?;
        } else if let Some(c) = t.check_summary() {
            writeln!(out, "  check {c}")?;
        }
    }
    writeln!(out, "\n(git parallel logs {} TASK shows a task's transcript)", state.id)?;
    Ok(())
}

/// The task's folder, where a running agent's output goes.
fn live_dir(ctx: &Context, run: &str, task: &str) -> Option<TaskDir> {
    let td = TaskDir::new(&ctx.repo, run, task);
    td.transcript().exists().then_some(td)
}

/// A running task: print what its agent wrote so far, and with `--follow` keep going until it
/// ends; then the rest comes from the stored transcript (a succeeded task's worktree, where the
/// live copy was, is removed once its result is recorded).
fn live(ctx: &Context, id: &str, task: &str, args: &LogsArgs, out: &mut impl Write) -> Result<i32> {
    let mut offset = 0usize;
    loop {
        let state = runs::load(&ctx.repo, id)?;
        let t = state.task(task).cloned();
        // Pending counts: `--follow` waits for the task to start.
        let running = t.as_ref().is_some_and(|t| matches!(t.status, TaskStatus::Running | TaskStatus::Pending));
        let dir = live_dir(ctx, id, task);
        if running {
            if let Some(dir) = &dir {
                let bytes = std::fs::read(dir.transcript()).unwrap_or_default();
                // Whole lines only; a half-written one waits for its end.
                if let Some(end) = bytes.iter().rposition(|&b| b == b'\n').map(|e| e + 1).filter(|&e| e > offset) {
                    print_lines(&bytes[offset..end], args.raw, out)?;
                    out.flush()?;
                    offset = end;
                }
            }
            if args.follow {
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
            let stderr = dir.map(|d| taskdir::read_tail(&d.stderr(), 64 << 10)).unwrap_or_default();
            print_stderr(&stderr, out)?;
            return Ok(0);
        }
        if let Some(t) = &t {
            stored(ctx, id, t, offset, args.raw, out)?;
        }
        return Ok(0);
    }
}

fn print_stderr(stderr: &[u8], out: &mut impl Write) -> Result<()> {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty() {
        writeln!(out, "\n--- stderr (last {} lines) ---", lines.len().min(20))?;
        for l in &lines[lines.len().saturating_sub(20)..] {
            writeln!(out, "{}", sanitize(l))?;
        }
    }
    Ok(())
}

/// The transcript's lines: described for people (made safe for the terminal), or with
/// `--raw` as the agent wrote them, unless they go to a terminal, where they are made safe too.
fn print_lines(bytes: &[u8], raw: bool, out: &mut impl Write) -> Result<()> {
    use is_terminal::IsTerminal;
    let faithful = raw && !std::io::stdout().is_terminal();
    for line in String::from_utf8_lossy(bytes).lines() {
        if faithful {
            writeln!(out, "{line}")?;
        } else if raw {
            writeln!(out, "{}", sanitize(line))?;
        } else {
            for shown in render(line) {
                writeln!(out, "{}", sanitize(&shown))?;
            }
        }
    }
    Ok(())
}

fn cut(s: &str, n: usize) -> String {
    let s = s.trim();
    let first = s.lines().next().unwrap_or("");
    let mut t: String = first.chars().take(n).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

/// What a tool call was about: the file, the command or the pattern, else its input.
fn tool_subject(input: &Value) -> String {
    for key in ["file_path", "path", "command", "pattern", "url"] {
        if let Some(v) = input.get(key).and_then(Value::as_str) {
            return cut(v, 100);
        }
    }
    cut(&input.to_string(), 100)
}

/// One line of an agent's output, for people: Claude stream-json events are described; any
/// other line is shown as it is.
fn render(line: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return if line.trim().is_empty() { vec![] } else { vec![line.to_string()] };
    };
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    let content = || v.pointer("/message/content").and_then(Value::as_array).cloned().unwrap_or_default();
    match kind {
        "system" if v.get("subtype").and_then(Value::as_str) == Some("init") => vec![format!(
            "= session {} ({})",
            v.get("session_id").and_then(Value::as_str).unwrap_or("?"),
            v.get("model").and_then(Value::as_str).unwrap_or("model unknown")
        )],
        "assistant" => content()
            .iter()
            .filter_map(|c| match c.get("type").and_then(Value::as_str) {
                Some("text") => Some(format!("> {}", cut(c.get("text").and_then(Value::as_str).unwrap_or(""), 200))),
                Some("tool_use") => Some(format!(
                    "* {} {}",
                    c.get("name").and_then(Value::as_str).unwrap_or("tool"),
                    tool_subject(c.get("input").unwrap_or(&Value::Null))
                )),
                _ => None,
            })
            .collect(),
        "user" => content()
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(|c| {
                let text = match c.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => {
                        parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
                    }
                    _ => String::new(),
                };
                let error = c.get("is_error").and_then(Value::as_bool) == Some(true);
                format!("  {} {}", if error { "! error:" } else { "->" }, cut(&text, 160))
            })
            .collect(),
        "result" => {
            let error = v.get("is_error").and_then(Value::as_bool) == Some(true);
            let mut s = format!(
                "= {} after {} turns",
                if error { "failed" } else { "finished" },
                v.get("num_turns").and_then(Value::as_u64).map_or("?".into(), |n| n.to_string())
            );
            if let Some(c) = v.get("total_cost_usd").and_then(Value::as_f64) {
                s.push_str(&format!(", ${c:.4}"));
            }
            if let Some(st) = v.get("api_error_status").and_then(Value::as_u64) {
                s.push_str(&format!(", API status {st}"));
            }
            if let Some(r) = v.get("result").and_then(Value::as_str) {
                s.push_str(&format!(": {}", cut(r, 200)));
            }
            vec![s]
        }
        _ => vec![line.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn claude_events_read_like_a_conversation() {
        let tool = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Writing it"},{"type":"tool_use","name":"Write","input":{"file_path":"/w/a.txt","content":"x"}}]}}"#;
        assert_eq!(render(tool), vec!["> Writing it", "* Write /w/a.txt"]);
        let res =
            r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"boom\nmore","is_error":true}]}}"#;
        assert_eq!(render(res), vec!["  ! error: boom…"]);
        let end = r#"{"type":"result","is_error":true,"num_turns":3,"api_error_status":429,"result":"rate limited"}"#;
        assert_eq!(render(end), vec!["= failed after 3 turns, API status 429: rate limited"]);
        assert_eq!(render("plain words"), vec!["plain words"]);
    }
}
