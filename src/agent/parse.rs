//! Parsers of agents' event streams: one line in, zero or more updates out.

use serde_json::Value;

/// The shape of an agent's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    ClaudeStreamJson,
    CodexJson,
    GeminiStreamJson,
    Text,
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
    ["file_path", "path", "notebook_path", "filePath"].iter().find_map(|k| str_of(input, k))
}

/// Parse one line of output. Lines that are not JSON (or not understood) yield nothing.
pub fn parse_line(format: Format, line: &str) -> Vec<Update> {
    let line = line.trim();
    if format == Format::Text {
        return line
            .strip_prefix("Applied edit to ")
            .map(|f| vec![Update::Tool { name: "Edit".into(), file: Some(f.trim().to_string()) }])
            .unwrap_or_default();
    }
    if !line.starts_with('{') {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<Value>(line) else { return Vec::new() };
    match format {
        Format::ClaudeStreamJson => claude(&v),
        Format::CodexJson => codex(&v),
        Format::GeminiStreamJson => gemini(&v),
        Format::Text => Vec::new(),
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

fn codex(v: &Value) -> Vec<Update> {
    match v.get("type").and_then(Value::as_str) {
        Some("thread.started") => vec![Update::Init { session_id: str_of(v, "thread_id"), model: None }],
        Some("turn.started") => vec![Update::Turn],
        Some("item.completed") | Some("item.started") => {
            let item = v.get("item").cloned().unwrap_or(Value::Null);
            match item.get("type").and_then(Value::as_str) {
                Some("file_change") => item
                    .get("changes")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter().map(|c| Update::Tool { name: "Edit".into(), file: str_of(c, "path") }).collect()
                    })
                    .unwrap_or_default(),
                Some("command_execution") => vec![Update::Tool { name: "Bash".into(), file: None }],
                _ => Vec::new(),
            }
        }
        Some("turn.completed") => {
            let usage = v.get("usage").cloned().unwrap_or(Value::Null);
            vec![Update::Result(ResultInfo {
                subtype: Some("success".into()),
                input_tokens: u64_of(&usage, "input_tokens"),
                output_tokens: u64_of(&usage, "output_tokens"),
                ..Default::default()
            })]
        }
        Some("turn.failed") | Some("error") => vec![Update::Result(ResultInfo {
            subtype: Some("error".into()),
            is_error: true,
            text: v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .or_else(|| v.get("message").and_then(Value::as_str))
                .map(str::to_string),
            ..Default::default()
        })],
        _ => Vec::new(),
    }
}

fn gemini(v: &Value) -> Vec<Update> {
    match v.get("type").and_then(Value::as_str) {
        Some("init") => vec![Update::Init { session_id: str_of(v, "session_id"), model: str_of(v, "model") }],
        Some("message") if v.get("role").and_then(Value::as_str) == Some("assistant") => vec![Update::Turn],
        Some("tool_use") => vec![Update::Tool {
            name: str_of(v, "tool_name").unwrap_or_else(|| "tool".into()),
            file: v.get("parameters").and_then(tool_file),
        }],
        Some("result") => {
            let stats = v.get("stats").cloned().unwrap_or(Value::Null);
            vec![Update::Result(ResultInfo {
                subtype: str_of(v, "status"),
                is_error: v.get("status").and_then(Value::as_str).is_some_and(|s| s != "success"),
                duration_ms: u64_of(&stats, "duration_ms"),
                input_tokens: u64_of(&stats, "input_tokens"),
                output_tokens: u64_of(&stats, "output_tokens"),
                ..Default::default()
            })]
        }
        _ => Vec::new(),
    }
}

/// Whether a failed attempt is worth retrying: API overload, rate limits, server errors.
pub fn is_transient(r: &ResultInfo) -> bool {
    if matches!(r.api_error_status, Some(429 | 500 | 502 | 503 | 504 | 529)) {
        return true;
    }
    let text = r.text.as_deref().unwrap_or("").to_ascii_lowercase();
    ["overloaded", "rate limit", "rate_limit", "529", "too many requests"].iter().any(|w| text.contains(w))
}

/// A rate limit or overload (429, 529), as opposed to another transient server error.
pub fn is_rate_limit(r: &ResultInfo) -> bool {
    if matches!(r.api_error_status, Some(429 | 529)) {
        return true;
    }
    let text = r.text.as_deref().unwrap_or("").to_ascii_lowercase();
    ["overloaded", "rate limit", "rate_limit", "too many requests"].iter().any(|w| text.contains(w))
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
        let merits = r#"{"type":"result","subtype":"success","is_error":true,"result":"tests fail"}"#;
        let Update::Result(r) = &parse_line(Format::ClaudeStreamJson, merits)[0] else { panic!() };
        assert!(!is_transient(r));
    }

    #[test]
    fn codex_gemini_and_aider_events() {
        let c = |l: &str| parse_line(Format::CodexJson, l);
        assert_eq!(
            c(r#"{"type":"thread.started","thread_id":"th1"}"#),
            vec![Update::Init { session_id: Some("th1".into()), model: None }]
        );
        assert_eq!(
            c(
                r#"{"type":"item.completed","item":{"type":"file_change","changes":[{"path":"src/a.rs","kind":"update"}]}}"#
            ),
            vec![Update::Tool { name: "Edit".into(), file: Some("src/a.rs".into()) }]
        );
        let Update::Result(r) = &c(r#"{"type":"turn.completed","usage":{"input_tokens":12,"output_tokens":3}}"#)[0]
        else {
            panic!()
        };
        assert_eq!((r.is_error, r.input_tokens, r.output_tokens), (false, Some(12), Some(3)));
        let Update::Result(r) = &c(r#"{"type":"turn.failed","error":{"message":"429 Too Many Requests"}}"#)[0] else {
            panic!()
        };
        assert!(r.is_error && is_transient(r));

        let g = |l: &str| parse_line(Format::GeminiStreamJson, l);
        assert_eq!(
            g(r#"{"type":"tool_use","tool_name":"write_file","parameters":{"file_path":"/w/b.py"}}"#),
            vec![Update::Tool { name: "write_file".into(), file: Some("/w/b.py".into()) }]
        );
        let Update::Result(r) = &g(r#"{"type":"result","status":"error","stats":{"duration_ms":5}}"#)[0] else {
            panic!()
        };
        assert!(r.is_error);

        assert_eq!(
            parse_line(Format::Text, "Applied edit to src/main.py"),
            vec![Update::Tool { name: "Edit".into(), file: Some("src/main.py".into()) }]
        );
    }
}
