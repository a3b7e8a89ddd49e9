//! Parsers of agents' output: one line in, zero or more updates out. A `Parser` keeps what a
//! verdict needs across lines (turns, token sums, errors that later lines may clear), because
//! the exit codes of these CLIs do not tell success: Gemini CLI exits with the HTTP status
//! mod 256, Aider with 0 after any API error, Codex with 0 when its sandbox refused every write.

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

/// The shape of an agent's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    ClaudeStreamJson,
    CodexJson,
    GeminiStreamJson,
    /// Aider's plain text (`Applied edit to F`, `Tokens: X sent, Y received. Cost: ...`).
    AiderText,
}

/// The end-of-task report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultInfo {
    pub subtype: Option<String>,
    pub is_error: bool,
    pub num_turns: Option<u64>,
    pub duration_ms: Option<u64>,
    pub total_cost_usd: Option<f64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub session_id: Option<String>,
    pub api_error_status: Option<u64>,
    pub text: Option<String>,
}

/// Something worth knowing from one line.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Init {
        session_id: Option<String>,
        model: Option<String>,
    },
    /// A new assistant turn.
    Turn,
    Tool {
        name: String,
        file: Option<String>,
    },
    /// A tool call that failed (its result marked as an error), with the start of what it said:
    /// under `--sandbox`, a refused write shows here even when the agent goes on to succeed.
    ToolError {
        text: String,
    },
    /// The latest verdict: a later `Result` replaces an earlier one.
    Result(ResultInfo),
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// The file a tool call is about, from the usual input keys.
fn tool_file(input: &Value) -> Option<String> {
    ["file_path", "path", "notebook_path", "filePath", "absolute_path"].iter().find_map(|k| str_of(input, k))
}

/// Reads one agent's output, line by line.
#[derive(Debug)]
pub struct Parser {
    format: Format,
    turns: u64,
    session: Option<String>,
    /// The last event was part of a model reply (Gemini streams one reply as several events).
    in_reply: bool,
    /// The reply text so far (the task's final words when it succeeds).
    reply: String,
    /// An error reported but not (yet) followed by progress.
    error: Option<String>,
    /// Codex: files whose last change failed to apply.
    failed_files: Vec<String>,
    /// Aider: sums over its model calls, and its session cost.
    tokens: (u64, u64),
    cost: Option<f64>,
}

impl Parser {
    pub fn new(format: Format) -> Self {
        Parser {
            format,
            turns: 0,
            session: None,
            in_reply: false,
            reply: String::new(),
            error: None,
            failed_files: Vec::new(),
            tokens: (0, 0),
            cost: None,
        }
    }

    /// Parse one line of output. Lines that are not understood yield nothing.
    pub fn line(&mut self, line: &str) -> Vec<Update> {
        let line = line.trim();
        if self.format == Format::AiderText {
            return self.aider(line);
        }
        if !line.starts_with('{') {
            return Vec::new();
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else { return Vec::new() };
        match self.format {
            Format::ClaudeStreamJson => claude(&v),
            Format::CodexJson => self.codex(&v),
            Format::GeminiStreamJson => self.gemini(&v),
            Format::AiderText => Vec::new(),
        }
    }

    fn turn(&mut self) -> Update {
        self.turns += 1;
        Update::Turn
    }

    fn codex(&mut self, v: &Value) -> Vec<Update> {
        match v.get("type").and_then(Value::as_str) {
            Some("thread.started") => {
                self.session = str_of(v, "thread_id");
                vec![Update::Init { session_id: self.session.clone(), model: None }]
            }
            // One reply of the model per completed item (tool calls and messages alike).
            Some("item.completed") => {
                let item = v.get("item").cloned().unwrap_or(Value::Null);
                match item.get("type").and_then(Value::as_str) {
                    Some("agent_message") => {
                        self.reply = str_of(&item, "text").unwrap_or_default();
                        vec![self.turn()]
                    }
                    Some("file_change") => {
                        let failed = item.get("status").and_then(Value::as_str) == Some("failed");
                        let mut out = vec![self.turn()];
                        for c in item.get("changes").and_then(Value::as_array).into_iter().flatten() {
                            let file = str_of(c, "path");
                            if let Some(f) = &file {
                                self.failed_files.retain(|x| x != f);
                                if failed {
                                    self.failed_files.push(f.clone());
                                }
                            }
                            let name = match c.get("kind").and_then(Value::as_str) {
                                Some("add") => "Write",
                                Some("delete") => "Delete",
                                _ => "Edit",
                            };
                            // A change that failed wrote nothing.
                            if !failed {
                                out.push(Update::Tool { name: name.into(), file });
                            }
                        }
                        out
                    }
                    // Counted when they start (below): a command may run for long.
                    Some("command_execution" | "mcp_tool_call") => Vec::new(),
                    Some("web_search") => vec![self.turn(), Update::Tool { name: "WebSearch".into(), file: None }],
                    Some("error") => {
                        self.error = str_of(&item, "message");
                        Vec::new()
                    }
                    _ => Vec::new(),
                }
            }
            Some("item.started") => {
                let item = v.get("item").cloned().unwrap_or(Value::Null);
                match item.get("type").and_then(Value::as_str) {
                    Some("command_execution") => vec![self.turn(), Update::Tool { name: "Bash".into(), file: None }],
                    Some("mcp_tool_call") => {
                        vec![
                            self.turn(),
                            Update::Tool { name: str_of(&item, "tool").unwrap_or("mcp".into()), file: None },
                        ]
                    }
                    _ => Vec::new(),
                }
            }
            // Also sent for retries in progress; only `turn.failed` is final.
            Some("error") => {
                self.error = str_of(v, "message");
                Vec::new()
            }
            Some("turn.completed") => {
                let usage = v.get("usage").cloned().unwrap_or(Value::Null);
                let mut r = ResultInfo {
                    subtype: Some("success".into()),
                    num_turns: Some(self.turns),
                    input_tokens: u64_of(&usage, "input_tokens"),
                    output_tokens: u64_of(&usage, "output_tokens"),
                    session_id: self.session.clone(),
                    text: Some(self.reply.clone()).filter(|t| !t.is_empty()),
                    ..Default::default()
                };
                // Codex ends well even when its sandbox refused the writes.
                if !self.failed_files.is_empty() {
                    r.subtype = Some("error_file_change".into());
                    r.is_error = true;
                    r.text = Some(format!(
                        "codex could not apply its changes to {} (its sandbox refused them?)",
                        self.failed_files.join(", ")
                    ));
                }
                vec![Update::Result(r)]
            }
            Some("turn.failed") => {
                let raw = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| self.error.clone())
                    .unwrap_or_else(|| "turn failed".into());
                vec![Update::Result(ResultInfo {
                    subtype: Some("error".into()),
                    is_error: true,
                    num_turns: Some(self.turns),
                    session_id: self.session.clone(),
                    api_error_status: status_in(&raw),
                    text: Some(api_message(&raw)),
                    ..Default::default()
                })]
            }
            _ => Vec::new(),
        }
    }

    fn gemini(&mut self, v: &Value) -> Vec<Update> {
        let kind = v.get("type").and_then(Value::as_str);
        let reply = match kind {
            Some("message") => v.get("role").and_then(Value::as_str) == Some("assistant"),
            Some("tool_use") => true,
            _ => false,
        };
        let mut out = Vec::new();
        if reply {
            if !self.in_reply {
                self.reply.clear();
                out.push(self.turn());
            }
            // Progress after an error means the CLI got over it.
            self.error = None;
        }
        self.in_reply = reply;
        match kind {
            Some("init") => {
                self.session = str_of(v, "session_id");
                out.push(Update::Init { session_id: self.session.clone(), model: str_of(v, "model") });
            }
            Some("message") if reply => self.reply += v.get("content").and_then(Value::as_str).unwrap_or(""),
            Some("tool_use") => out.push(Update::Tool {
                name: str_of(v, "tool_name").unwrap_or_else(|| "tool".into()),
                file: v.get("parameters").and_then(tool_file),
            }),
            Some("error") if v.get("severity").and_then(Value::as_str) != Some("warning") => {
                self.error = str_of(v, "message");
            }
            Some("result") => {
                let stats = v.get("stats").cloned().unwrap_or(Value::Null);
                let status = str_of(v, "status");
                let reported = v.pointer("/error/message").and_then(Value::as_str).map(str::to_string);
                // A stream cut short ends in an error event and a "success" with exit code 0.
                let failed = status.as_deref() != Some("success") || self.error.is_some();
                let raw = reported.or(self.error.clone());
                out.push(Update::Result(ResultInfo {
                    subtype: status,
                    is_error: failed,
                    num_turns: Some(self.turns),
                    duration_ms: u64_of(&stats, "duration_ms"),
                    input_tokens: u64_of(&stats, "input_tokens"),
                    output_tokens: u64_of(&stats, "output_tokens"),
                    session_id: self.session.clone(),
                    api_error_status: raw.as_deref().and_then(status_in),
                    text: match (&raw, failed) {
                        (Some(e), true) => Some(api_message(e)),
                        _ => Some(self.reply.clone()).filter(|t| !t.is_empty()),
                    },
                    ..Default::default()
                }));
            }
            _ => {}
        }
        out
    }

    fn aider(&mut self, line: &str) -> Vec<Update> {
        static TOKENS: OnceLock<Regex> = OnceLock::new();
        let tokens = TOKENS.get_or_init(|| {
            Regex::new(r"^Tokens: ([\d.]+)(k?) sent(?:, [\d.]+k? cache \w+)*, ([\d.]+)(k?) received\.(?:.*\$([\d.]+) session)?")
                .unwrap()
        });
        if let Some(f) = line.strip_prefix("Applied edit to ") {
            self.error = None;
            return vec![Update::Tool { name: "Edit".into(), file: Some(f.trim().to_string()) }];
        }
        if let Some(model) = line.strip_prefix("Model: ") {
            let model = model.split(" with ").next().unwrap_or(model).trim().to_string();
            return vec![Update::Init { session_id: None, model: Some(model) }];
        }
        if let Some(c) = tokens.captures(line) {
            let n = |v: &str, k: &str| (v.parse::<f64>().unwrap_or(0.0) * if k == "k" { 1000.0 } else { 1.0 }) as u64;
            self.tokens.0 += n(&c[1], &c[2]);
            self.tokens.1 += n(&c[3], &c[4]);
            if let Some(cost) = c.get(5).and_then(|m| m.as_str().parse().ok()) {
                self.cost = Some(cost);
            }
            self.error = None;
            let turn = self.turn();
            return vec![turn, self.aider_result()];
        }
        // `litellm.RateLimitError: ...`: aider retries some errors itself (printing "Retrying
        // in ..."); the last one stands unless a model reply follows.
        if line.starts_with("litellm.") && line.contains("Error")
            || line.starts_with("Only ") && line.contains("reflections allowed")
        {
            self.error = Some(line.to_string());
            return vec![self.aider_result()];
        }
        Vec::new()
    }

    fn aider_result(&self) -> Update {
        let class = self.error.as_deref().and_then(|e| e.strip_prefix("litellm.")).and_then(|e| e.split(':').next());
        Update::Result(ResultInfo {
            subtype: Some(if self.error.is_some() { "error" } else { "success" }.into()),
            is_error: self.error.is_some(),
            num_turns: Some(self.turns),
            total_cost_usd: self.cost,
            input_tokens: (self.turns > 0).then_some(self.tokens.0),
            output_tokens: (self.turns > 0).then_some(self.tokens.1),
            api_error_status: match class {
                Some("RateLimitError") => Some(429),
                Some("InternalServerError") => Some(500),
                Some("BadGatewayError") => Some(502),
                Some("ServiceUnavailableError") => Some(503),
                Some("BadRequestError") => Some(400),
                Some("AuthenticationError") => Some(401),
                Some("NotFoundError") => Some(404),
                _ => self.error.as_deref().and_then(status_in),
            },
            text: self.error.clone(),
            ..Default::default()
        })
    }
}

/// Parse one line on its own (formats whose lines stand alone; tests).
pub fn parse_line(format: Format, line: &str) -> Vec<Update> {
    Parser::new(format).line(line)
}

/// An HTTP status named in an agent's error text, in the ways the CLIs quote them.
fn status_in(text: &str) -> Option<u64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r#"(?i)(?:last status:?\s*|status(?: code)?[ :=]+|"code"\s*:\s*|\bhttp\s*)([45]\d\d)\b|\b([45]\d\d) (?:too many requests|internal server error|bad gateway|service unavailable|gateway timeout)"#,
        )
        .unwrap()
    });
    let c = re.captures(text)?;
    c.get(1).or(c.get(2))?.as_str().parse().ok()
}

/// The message inside a JSON error body quoted as text (Codex and Gemini CLI quote the API's
/// body verbatim), else the text itself.
fn api_message(text: &str) -> String {
    let t = text.trim();
    let body = t.strip_prefix("[API Error: ").and_then(|b| b.strip_suffix(']')).unwrap_or(t);
    match serde_json::from_str::<Value>(body) {
        Ok(v) => match v.pointer("/error/message").and_then(Value::as_str) {
            Some(m) => match v.pointer("/error/code") {
                Some(Value::String(c)) => format!("{m} ({c})"),
                Some(Value::Number(c)) => format!("{m} ({c})"),
                _ => m.to_string(),
            },
            None => t.to_string(),
        },
        Err(_) => t.to_string(),
    }
}

fn claude(v: &Value) -> Vec<Update> {
    match v.get("type").and_then(Value::as_str) {
        Some("system") if v.get("subtype").and_then(Value::as_str) == Some("init") => {
            vec![Update::Init { session_id: str_of(v, "session_id"), model: str_of(v, "model") }]
        }
        Some("assistant") => {
            let mut out = vec![Update::Turn];
            if let Some(blocks) = v.pointer("/message/content").and_then(Value::as_array) {
                for b in blocks {
                    if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                        let name = str_of(b, "name").unwrap_or_else(|| "tool".into());
                        let file = b.get("input").and_then(tool_file);
                        out.push(Update::Tool { name, file });
                    }
                }
            }
            out
        }
        Some("user") => {
            let mut out = Vec::new();
            for b in v.pointer("/message/content").and_then(Value::as_array).into_iter().flatten() {
                if b.get("type").and_then(Value::as_str) == Some("tool_result")
                    && b.get("is_error").and_then(Value::as_bool) == Some(true)
                {
                    let text = match b.get("content") {
                        Some(Value::String(t)) => t.clone(),
                        Some(Value::Array(parts)) => {
                            parts.iter().filter_map(|p| str_of(p, "text")).collect::<Vec<_>>().join(" ")
                        }
                        _ => String::new(),
                    };
                    let text: String = text.trim().chars().take(300).collect();
                    out.push(Update::ToolError { text });
                }
            }
            out
        }
        Some("result") => {
            let usage = v.get("usage").cloned().unwrap_or(Value::Null);
            let input = [
                u64_of(&usage, "input_tokens"),
                u64_of(&usage, "cache_creation_input_tokens"),
                u64_of(&usage, "cache_read_input_tokens"),
            ];
            let input_tokens = input.iter().any(Option::is_some).then(|| input.iter().flatten().sum());
            vec![Update::Result(ResultInfo {
                subtype: str_of(v, "subtype"),
                is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                num_turns: u64_of(v, "num_turns"),
                duration_ms: u64_of(v, "duration_ms"),
                total_cost_usd: v.get("total_cost_usd").and_then(Value::as_f64),
                input_tokens,
                output_tokens: u64_of(&usage, "output_tokens"),
                session_id: str_of(v, "session_id"),
                api_error_status: v
                    .get("api_error_status")
                    .and_then(|s| s.as_u64().or_else(|| s.as_str()?.parse().ok())),
                text: str_of(v, "result"),
            })]
        }
        _ => Vec::new(),
    }
}

/// Whether a failed attempt is worth retrying: API overload, rate limits, server errors and
/// lost connections, as each CLI words them.
pub fn is_transient(r: &ResultInfo) -> bool {
    if matches!(r.api_error_status, Some(408 | 429 | 500 | 502 | 503 | 504 | 529)) {
        return true;
    }
    let text = r.text.as_deref().unwrap_or("").to_ascii_lowercase();
    [
        "overloaded",
        "rate limit",
        "rate_limit",
        "ratelimit",
        "529",
        "too many requests",
        // Codex on a 5xx after its own retries.
        "high demand",
        "temporary errors",
        // Gemini CLI on a 429 after its own retries.
        "try again later",
        "internal server error",
        "internalservererror",
        "service unavailable",
        "serviceunavailable",
        "bad gateway",
        // Codex and Gemini CLI on a stream cut short.
        "stream disconnected",
        "stream ended",
        "connection failed",
        "apiconnectionerror",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// A rate limit or overload (429, 529), as opposed to another transient server error.
pub fn is_rate_limit(r: &ResultInfo) -> bool {
    if matches!(r.api_error_status, Some(429 | 529)) {
        return true;
    }
    let text = r.text.as_deref().unwrap_or("").to_ascii_lowercase();
    ["overloaded", "rate limit", "rate_limit", "ratelimit", "too many requests", "resource_exhausted", "quota"]
        .iter()
        .any(|w| text.contains(w))
}

/// A reset time the API gave ("retry after 30 s", "retry-after: 30"), when the agent passed
/// it on.
pub fn retry_after(r: &ResultInfo) -> Option<std::time::Duration> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"(?i)retry[- _]after\D{0,4}(\d{1,5})").expect("valid regex"));
    let secs: u64 = re.captures(r.text.as_deref()?)?.get(1)?.as_str().parse().ok()?;
    Some(std::time::Duration::from_secs(secs.min(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_events() {
        let init = r#"{"type":"system","subtype":"init","session_id":"s1","model":"m","tools":[]}"#;
        assert_eq!(
            parse_line(Format::ClaudeStreamJson, init),
            vec![Update::Init { session_id: Some("s1".into()), model: Some("m".into()) }]
        );
        let tool = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write","input":{"file_path":"/w/a.txt"}}]}}"#;
        assert_eq!(
            parse_line(Format::ClaudeStreamJson, tool),
            vec![Update::Turn, Update::Tool { name: "Write".into(), file: Some("/w/a.txt".into()) }]
        );
        let result = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":3,"duration_ms":1200,"total_cost_usd":0.0123,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":7},"session_id":"s1"}"#;
        let Update::Result(r) = &parse_line(Format::ClaudeStreamJson, result)[0] else { panic!() };
        assert_eq!(
            (r.num_turns, r.total_cost_usd, r.input_tokens, r.output_tokens),
            (Some(3), Some(0.0123), Some(15), Some(7))
        );
        assert!(parse_line(Format::ClaudeStreamJson, "garbage {").is_empty());
        let overloaded =
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"api_error_status":529}"#;
        let Update::Result(r) = &parse_line(Format::ClaudeStreamJson, overloaded)[0] else { panic!() };
        assert!(is_transient(r));
        let refused = r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t","is_error":true,"content":"touch: /etc/x: Read-only file system"}]}}"#;
        assert!(
            matches!(&parse_line(Format::ClaudeStreamJson, refused)[..], [Update::ToolError { text }] if text.contains("Read-only"))
        );
        let merits = r#"{"type":"result","subtype":"success","is_error":true,"result":"tests fail"}"#;
        let Update::Result(r) = &parse_line(Format::ClaudeStreamJson, merits)[0] else { panic!() };
        assert!(!is_transient(r));
    }

    fn run(format: Format, lines: &[&str]) -> (Vec<Update>, ResultInfo) {
        let mut p = Parser::new(format);
        let all: Vec<Update> = lines.iter().flat_map(|l| p.line(l)).collect();
        let last = all.iter().rev().find_map(|u| match u {
            Update::Result(r) => Some(r.clone()),
            _ => None,
        });
        (all, last.unwrap_or_default())
    }

    // The transcripts below are real output of codex-cli 0.171.0, gemini-cli 0.61.0 and
    // aider 0.86.2 against the scripted model server.
    #[test]
    fn codex_output() {
        let ok = [
            r#"{"type":"thread.started","thread_id":"01a21826-842b"}"#,
            r#"{"type":"turn.started"}"#,
            r#"{"type":"item.started","item":{"id":"item_0","type":"file_change","changes":[{"path":"/w/alpha.txt","kind":"add"}],"status":"in_progress"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_0","type":"file_change","changes":[{"path":"/w/alpha.txt","kind":"add"}],"status":"completed"}}"#,
            r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Wrote alpha.txt"}}"#,
            r#"{"type":"turn.completed","usage":{"input_tokens":11641,"cached_input_tokens":0,"cache_write_input_tokens":0,"output_tokens":89,"reasoning_output_tokens":0}}"#,
        ];
        let (all, r) = run(Format::CodexJson, &ok);
        assert_eq!(all[0], Update::Init { session_id: Some("01a21826-842b".into()), model: None });
        assert!(all.contains(&Update::Tool { name: "Write".into(), file: Some("/w/alpha.txt".into()) }));
        assert_eq!(
            (r.is_error, r.num_turns, r.input_tokens, r.output_tokens, r.session_id.as_deref(), r.text.as_deref()),
            (false, Some(2), Some(11641), Some(89), Some("01a21826-842b"), Some("Wrote alpha.txt"))
        );

        // Its sandbox refused the write, and it still ends the turn well (exit code 0).
        let refused: Vec<String> =
            ok.iter().map(|l| l.replace(r#""status":"completed"}}"#, r#""status":"failed"}}"#)).collect();
        let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
        let (all, r) = run(Format::CodexJson, &refused);
        assert!(r.is_error && r.text.as_deref().unwrap().contains("/w/alpha.txt"), "{r:?}");
        assert!(!all.iter().any(|u| matches!(u, Update::Tool { .. })), "nothing was written");
        assert!(!is_transient(&r));

        // A command counts when it starts: it may run for long.
        let started = r#"{"type":"item.started","item":{"id":"item_0","type":"command_execution","command":"/bin/bash -lc true","aggregated_output":"","exit_code":null,"status":"in_progress"}}"#;
        assert_eq!(
            run(Format::CodexJson, &[started]).0,
            vec![Update::Turn, Update::Tool { name: "Bash".into(), file: None }]
        );

        let failed = |msg: &str| {
            let e = serde_json::json!({"type": "turn.failed", "error": {"message": msg}}).to_string();
            run(Format::CodexJson, &[r#"{"type":"thread.started","thread_id":"t"}"#, &e]).1
        };
        let r = failed("exceeded retry limit, last status: 429 Too Many Requests");
        assert_eq!((r.is_error, r.api_error_status), (true, Some(429)));
        assert!(is_transient(&r));
        let r = failed("We\u{2019}re currently experiencing high demand, which may cause temporary errors.");
        assert!(r.is_error && is_transient(&r));
        let r = failed(
            r#"{"error":{"code":"invalid_request_error","message":"The model mock-model does not exist","param":null,"type":"invalid_request_error"}}"#,
        );
        assert_eq!(r.text.as_deref(), Some("The model mock-model does not exist (invalid_request_error)"));
        assert!(r.is_error && !is_transient(&r));
    }

    #[test]
    fn gemini_output() {
        let ok = [
            r#"{"type":"init","timestamp":"2026-11-26T13:58:54.758Z","session_id":"e1a938f6","model":"gemini-2.5-pro"}"#,
            r#"{"type":"message","timestamp":"2026-11-26T13:58:54.759Z","role":"user","content":"TASK-ALPHA: create alpha.txt"}"#,
            r#"{"type":"tool_use","timestamp":"2026-11-26T13:58:54.824Z","tool_name":"write_file","tool_id":"w1","parameters":{"content":"alpha\n","file_path":"alpha.txt"}}"#,
            r#"{"type":"tool_result","timestamp":"2026-11-26T13:58:54.855Z","tool_id":"w1","status":"success"}"#,
            r#"{"type":"message","timestamp":"2026-11-26T13:58:54.864Z","role":"assistant","content":"Wrote","delta":true}"#,
            r#"{"type":"message","timestamp":"2026-11-26T13:58:54.865Z","role":"assistant","content":" alph","delta":true}"#,
            r#"{"type":"message","timestamp":"2026-11-26T13:58:54.865Z","role":"assistant","content":"a.txt","delta":true}"#,
            r#"{"type":"result","timestamp":"2026-11-26T13:58:54.866Z","status":"success","stats":{"total_tokens":24515,"input_tokens":24477,"output_tokens":38,"cached":0,"input":24477,"duration_ms":108,"tool_calls":1}}"#,
        ];
        let (all, r) = run(Format::GeminiStreamJson, &ok);
        assert!(all.contains(&Update::Tool { name: "write_file".into(), file: Some("alpha.txt".into()) }));
        assert_eq!(all.iter().filter(|u| **u == Update::Turn).count(), 2, "one per reply, not per delta");
        assert_eq!(
            (r.is_error, r.num_turns, r.input_tokens, r.output_tokens, r.session_id.as_deref(), r.text.as_deref()),
            (false, Some(2), Some(24477), Some(38), Some("e1a938f6"), Some("Wrote alpha.txt"))
        );
        let result = |error: &str| {
            let e = serde_json::json!({"type": "result", "status": "error", "error": {"type": "unknown", "message": error}, "stats": {}});
            run(Format::GeminiStreamJson, &[ok[0], &e.to_string()]).1
        };
        let r = result("[API Error: Rate limited]\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method");
        assert!(r.is_error && is_transient(&r));
        let r = result(r#"[API Error: {"error":{"code":500,"message":"Internal server error","status":"INTERNAL"}}]"#);
        assert_eq!((r.is_error, r.api_error_status), (true, Some(500)));
        assert!(is_transient(&r));
        let r = result(
            r#"[API Error: {"error":{"code":400,"message":"The model mock-model does not exist","status":"INVALID_ARGUMENT"}}]"#,
        );
        assert_eq!(r.text.as_deref(), Some("The model mock-model does not exist (400)"));
        assert!(r.is_error && !is_transient(&r));
        // An error event not followed by progress fails a "success".
        let cut = r#"{"type":"error","severity":"error","message":"stream ended unexpectedly"}"#;
        let (_, r) = run(Format::GeminiStreamJson, &[ok[0], ok[1], cut, ok[7]]);
        assert!(r.is_error && r.text.as_deref() == Some("stream ended unexpectedly"), "{r:?}");
        // What it really prints for a stream that ends without a finish reason (exit code 0).
        let cut = [
            ok[0],
            ok[1],
            r#"{"type":"message","timestamp":"2026-11-26T14:15:44.648Z","role":"assistant","content":"This answer is c","delta":true}"#,
            r#"{"type":"error","timestamp":"2026-11-26T14:15:44.682Z","severity":"error","message":"Model stream ended without a finish reason."}"#,
            r#"{"type":"result","timestamp":"2026-11-26T14:15:44.686Z","status":"error","stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0,"duration_ms":80,"tool_calls":0}}"#,
        ];
        let (_, r) = run(Format::GeminiStreamJson, &cut);
        assert_eq!(r.text.as_deref(), Some("Model stream ended without a finish reason."));
        assert!(r.is_error && is_transient(&r));
    }

    #[test]
    fn aider_output() {
        let ok = [
            "Aider v0.86.2",
            "Model: openai/mock-model with whole edit format",
            "Here is alpha.txt:",
            "alpha.txt",
            "```",
            "Tokens: 599 sent, 14 received. Cost: $0.00063 message, $0.00063 session.",
            "Applied edit to alpha.txt",
            "Tokens: 1.2k sent, 4 received. Cost: $0.0013 message, $0.0019 session.",
        ];
        let (all, r) = run(Format::AiderText, &ok);
        assert!(all.contains(&Update::Init { session_id: None, model: Some("openai/mock-model".into()) }));
        assert!(all.contains(&Update::Tool { name: "Edit".into(), file: Some("alpha.txt".into()) }));
        assert_eq!(
            (r.is_error, r.num_turns, r.input_tokens, r.output_tokens, r.total_cost_usd),
            (false, Some(2), Some(1799), Some(18), Some(0.0019))
        );
        // Retried by aider itself, then answered: not an error.
        let retried = [
            "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limited",
            "The API provider has rate limited you. Try again later or check your quotas.",
            "Retrying in 0.2 seconds...",
            ok[5],
        ];
        assert!(!run(Format::AiderText, &retried).1.is_error);
        let (_, r) = run(Format::AiderText, &retried[..3]);
        assert_eq!((r.is_error, r.api_error_status), (true, Some(429)));
        assert!(is_transient(&r));
        let (_, r) =
            run(Format::AiderText, &["litellm.BadRequestError: OpenAIException - The model mock-model does not exist"]);
        assert_eq!((r.is_error, r.api_error_status), (true, Some(400)));
        assert!(!is_transient(&r));
        let (_, r) =
            run(Format::AiderText, &["litellm.InternalServerError: InternalServerError: OpenAIException - Internal "]);
        assert!(r.is_error && is_transient(&r));
    }
}
