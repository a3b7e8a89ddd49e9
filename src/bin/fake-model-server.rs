//! Scripted stand-in for the model APIs the agent CLIs call, so end-to-end tests can drive the
//! real CLIs offline. One script format drives all of them; each request is answered in the
//! wire format of the endpoint it came to:
//! - `POST /v1/messages`: Anthropic Messages (Claude Code), SSE when `stream` is set;
//! - `POST /v1/responses`: OpenAI Responses, streaming (Codex), edits through `apply_patch`;
//! - `POST /v1beta/models/M:streamGenerateContent` (and `:generateContent`): Gemini (Gemini CLI),
//!   edits through a `write_file` function call;
//! - `POST /v1/chat/completions`: OpenAI chat completions (Aider), edits in Aider's "whole"
//!   edit format (a file name line, then the whole file in a fence).
//!
//! See `usage()` for the script format.

use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Deserialize)]
struct Script {
    rules: Vec<Rule>,
    #[serde(default)]
    default: Option<Step>,
    /// Wait this long before answering each model request, as a real model would.
    #[serde(default)]
    latency_ms: u64,
}

#[derive(Deserialize)]
struct Rule {
    #[serde(rename = "match")]
    pattern: String,
    steps: Vec<Step>,
}

/// One of `text`, `write`, `tool_use`, `status` or `cut` is set; `times` goes with `status` and
/// `cut` (the gates), `message` with `status`.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Step {
    text: Option<String>,
    /// The portable edit: each API gets its CLI's own way of writing a file.
    write: Option<WriteFile>,
    /// A raw tool call, passed through as that API's tool call.
    tool_use: Option<ToolUse>,
    status: Option<u16>,
    /// Answer with the first events of a text reply only, as if the stream were cut short.
    #[serde(default)]
    cut: bool,
    times: Option<u64>,
    /// The error message of a `status` step (default: the usual one for that status).
    message: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
struct ToolUse {
    name: String,
    input: Value,
}

#[derive(Deserialize, Clone, Debug)]
struct WriteFile {
    /// Relative to the agent's working directory.
    path: String,
    content: String,
}

impl Step {
    /// A step that fails the request before the turn it precedes plays.
    fn is_gate(&self) -> bool {
        self.status.is_some() || self.cut
    }
}

fn text_step(t: &str) -> Step {
    Step { text: Some(t.into()), ..Step::default() }
}

struct App {
    script: Script,
    /// Hits per (rule, step, cwd): a status step with `times` fails only that
    /// often, then lets the turn through. Keyed by cwd so parallel worktrees
    /// each see their own transient failures.
    hits: Mutex<HashMap<(usize, usize, String), u64>>,
    ids: AtomicU64,
}

struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn usage() -> ! {
    eprintln!(
        "usage: fake-model-server --script FILE [--port N]\n\
         script: {{\"rules\":[{{\"match\":SUBSTR,\"steps\":[STEP..]}}],\"default\":STEP[,\"latency_ms\":N]}}\n\
         STEP: {{\"text\":S}} | {{\"write\":{{\"path\":REL,\"content\":S}}}}\n\
         \x20     | {{\"tool_use\":{{\"name\":N,\"input\":{{..}}}}}} | {{\"status\":529[,\"times\":K][,\"message\":S]}}\n\
         \x20     | {{\"cut\":true[,\"times\":K]}} (a stream that ends early)\n\
         A rule applies to a conversation with a user message containing SUBSTR. Turn n (= model\n\
         replies after that message) plays the n-th step that is not a gate; the gates (status and\n\
         cut steps) right before it fail the request first (K times per working directory, or forever). `{{cwd}}` in a\n\
         tool_use input is the agent's working directory."
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut script_path, mut port) = (None, 0u16);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--script" => script_path = it.next().cloned(),
            "--port" => port = it.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }
    let text =
        std::fs::read_to_string(script_path.unwrap_or_else(|| usage())).unwrap_or_else(|e| panic!("read script: {e}"));
    let script: Script = serde_json::from_str(&text).unwrap_or_else(|e| panic!("script: {e}"));
    let app = Arc::new(App { script, hits: Mutex::default(), ids: AtomicU64::new(1) });

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let mut out = std::io::stdout();
    writeln!(out, "PORT {}", listener.local_addr().unwrap().port()).unwrap();
    out.flush().unwrap();
    for conn in listener.incoming().flatten() {
        let app = app.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve_conn(&app, conn) {
                eprintln!("[fms] connection error: {e}");
            }
        });
    }
}

/// Keep-alive loop: one thread per connection, requests answered in order.
fn serve_conn(app: &App, conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    while let Some(req) = read_request(&mut reader)? {
        if req.method == "POST" && app.script.latency_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(app.script.latency_ms));
        }
        let (status, ctype, body) = route(app, &req);
        let close = req.headers.get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\
             request-id: req_fake{}\r\nconnection: {}\r\n\r\n",
            if status == 200 { "OK" } else { "Error" },
            body.len(),
            app.ids.fetch_add(1, Ordering::Relaxed),
            if close { "close" } else { "keep-alive" },
        );
        conn.write_all(head.as_bytes())?;
        // A body after a HEAD response would be parsed as the next response.
        if req.method != "HEAD" {
            conn.write_all(body.as_bytes())?;
        }
        conn.flush()?;
        if close {
            break;
        }
    }
    Ok(())
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let chunked = headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        body
    } else {
        let len = headers.get("content-length").and_then(|v| v.parse().ok());
        let mut body = vec![0; len.unwrap_or(0)];
        r.read_exact(&mut body)?;
        body
    };
    Ok(Some(Request { method, target, headers, body }))
}

/// The wire formats spoken here.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Api {
    Anthropic,
    Responses,
    Gemini { stream: bool },
    Chat,
}

fn route(app: &App, req: &Request) -> (u16, &'static str, String) {
    let path = req.target.split('?').next().unwrap_or_default();
    let json: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    // Debug aid: FAKE_MODEL_DUMP=DIR keeps every request body for inspection.
    if let Ok(dir) = std::env::var("FAKE_MODEL_DUMP") {
        let n = app.ids.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::write(format!("{dir}/req-{n:04}.json"), &req.body);
    }
    let api = match (req.method.as_str(), path) {
        ("POST", "/v1/messages") => Api::Anthropic,
        ("POST", "/v1/responses") => Api::Responses,
        ("POST", "/v1/chat/completions") => Api::Chat,
        ("POST", p) if p.starts_with("/v1beta/models/") && p.ends_with(":streamGenerateContent") => {
            Api::Gemini { stream: true }
        }
        ("POST", p) if p.starts_with("/v1beta/models/") && p.ends_with(":generateContent") => {
            Api::Gemini { stream: false }
        }
        ("POST", p) if p.starts_with("/v1beta/models/") && p.ends_with(":countTokens") => {
            return (200, "application/json", json!({"totalTokens": req.body.len() / 4}).to_string());
        }
        // Claude Code probes `HEAD /` for connectivity before its first request.
        ("HEAD", "/") => return (200, "text/plain", String::new()),
        _ => {
            eprintln!("[fms] {} {} -> 404", req.method, req.target);
            return (404, "application/json", json!({"error": {"message": "not found", "code": 404}}).to_string());
        }
    };
    let conv = conversation(api, &json);
    let step = if conv.main { pick(app, &conv) } else { side_step(app, &json) };
    // The start of the newest user text, so a test can see what the agent was told last.
    let said: String =
        conv.msgs.iter().rev().find(|(user, _)| *user).map(|(_, t)| t.chars().take(120).collect()).unwrap_or_default();
    eprintln!(
        "[fms] {} {} {api:?} msgs={} cwd={:?} main={} user={said:?} -> {step:?}",
        req.method,
        req.target,
        conv.msgs.len(),
        conv.cwd,
        conv.main
    );
    let n = app.ids.fetch_add(1, Ordering::Relaxed);
    if let Some(code) = step.status {
        return (code, "application/json", error_body(api, code, step.message.as_deref()).to_string());
    }
    let usage = Usage { input: req.body.len() / 4 + 1 };
    let cut = step.cut;
    let step = if cut { text_step("This answer is cut short by the scripted server") } else { step };
    let (code, ctype, body) = match api {
        Api::Anthropic => anthropic(&json, step, &conv.cwd, n, usage),
        Api::Responses => responses(&json, step, n, usage),
        Api::Gemini { stream } => gemini(&json, step, &conv.cwd, stream, usage),
        Api::Chat => chat(&json, step, n, usage),
    };
    if cut {
        // The first two events: a reply begun, never finished.
        let events: Vec<&str> = body.split_inclusive("\n\n").collect();
        return (code, ctype, events[..events.len().min(2)].concat());
    }
    (code, ctype, body)
}

/// A request reduced to what the script needs: who said what, in order.
struct Conv {
    /// (is the user, text)
    msgs: Vec<(bool, String)>,
    cwd: String,
    /// A request of the agent loop (it offers tools, or is a chat completion), not a side call
    /// such as a title or a next-speaker check, which must not play or consume the script.
    main: bool,
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            blocks.iter().filter_map(|b| b.as_str().or_else(|| b["text"].as_str())).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

fn has_tools(req: &Value) -> bool {
    req["tools"].as_array().is_some_and(|t| !t.is_empty())
}

fn conversation(api: Api, req: &Value) -> Conv {
    let items = |k: &str| req[k].as_array().cloned().unwrap_or_default();
    let (msgs, system): (Vec<(bool, String)>, String) = match api {
        Api::Anthropic | Api::Chat => (
            items("messages")
                .iter()
                .filter(|m| m["role"] == "user" || m["role"] == "assistant")
                .map(|m| (m["role"] == "user", text_of(&m["content"])))
                .collect(),
            text_of(&req["system"]),
        ),
        // Input items: messages of the user (and developer), and the model's messages and
        // tool calls, each of which is one reply of the model here.
        Api::Responses => (
            items("input")
                .iter()
                .filter_map(|i| match (i["type"].as_str(), i["role"].as_str()) {
                    (Some("message") | None, Some("assistant")) => Some((false, text_of(&i["content"]))),
                    (Some("message") | None, Some(_)) => Some((true, text_of(&i["content"]))),
                    (Some("function_call" | "custom_tool_call" | "local_shell_call"), _) => {
                        Some((false, String::new()))
                    }
                    _ => None,
                })
                .collect(),
            text_of(&req["instructions"]),
        ),
        Api::Gemini { .. } => (
            items("contents").iter().map(|c| (c["role"] != "model", text_of(&c["parts"]))).collect(),
            text_of(&req["systemInstruction"]["parts"]),
        ),
    };
    let main = match api {
        Api::Chat => true,
        _ => has_tools(req) || req["tools"][0]["functionDeclarations"].is_array(),
    };
    let hay = format!("{system}\n{}", msgs.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n"));
    Conv { cwd: cwd_of(&hay), msgs, main }
}

/// Where the agent works, as each CLI tells its model: Claude Code's "Primary working
/// directory:", Codex's `<cwd>` in its environment context, Gemini CLI's first "Workspace
/// Directories" entry. Aider does not say; its edits are relative anyway.
fn cwd_of(hay: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"(?m)(?:^[ \t]*-?[ \t]*(?:Primary )?[Ww]orking directory:[ \t]*(\S[^\r\n]*?)[ \t]*$)|(?:<cwd>([^<]+)</cwd>)|(?:\*\*Workspace Directories:\*\*[ \t]*\r?\n[ \t]*-[ \t]*(\S[^\r\n]*?)[ \t]*$)",
        )
        .unwrap()
    });
    re.captures(hay)
        .and_then(|c| c.get(1).or(c.get(2)).or(c.get(3)))
        .map(|m| m.as_str().trim().to_string())
        .unwrap_or_default()
}

fn subst(v: &Value, cwd: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{cwd}", cwd)),
        Value::Array(a) => Value::Array(a.iter().map(|x| subst(x, cwd)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), subst(x, cwd))).collect()),
        other => other.clone(),
    }
}

fn default_step(app: &App) -> Step {
    app.script.default.clone().unwrap_or_else(|| text_step("ok"))
}

/// Structured-output side calls get a JSON object with each property of the asked schema:
/// its first allowed value, or a placeholder string.
fn side_step(app: &App, req: &Value) -> Step {
    let schema = [
        &req["output_config"]["format"]["schema"],
        &req["generationConfig"]["responseJsonSchema"],
        &req["generationConfig"]["responseSchema"],
    ]
    .into_iter()
    .find(|s| s["properties"].is_object());
    match schema.and_then(|s| s["properties"].as_object()) {
        Some(props) => {
            let obj: serde_json::Map<_, _> = props
                .iter()
                .map(|(k, p)| (k.clone(), p["enum"].get(0).cloned().unwrap_or_else(|| json!(format!("fake {k}")))))
                .collect();
            text_step(&Value::Object(obj).to_string())
        }
        None => default_step(app),
    }
}

/// Picks the step for this request; see `usage()` for the semantics.
fn pick(app: &App, conv: &Conv) -> Step {
    let found = app.script.rules.iter().enumerate().find_map(|(r, rule)| {
        let at = conv.msgs.iter().position(|(user, t)| *user && t.contains(&rule.pattern))?;
        Some((r, rule, at))
    });
    let Some((r, rule, at)) = found else {
        return default_step(app);
    };
    let turn = conv.msgs[at..].iter().filter(|(user, _)| !user).count();
    // Turn n plays the n-th step that is not a gate; the gates just before it
    // fail the request first. Past the end, trailing gates still apply.
    let mut plays = rule.steps.iter().enumerate().filter(|(_, s)| !s.is_gate());
    let target = plays.nth(turn).map(|(s, _)| s);
    let end = target.unwrap_or(rule.steps.len());
    let gates = rule.steps[..end].iter().rposition(|s| !s.is_gate());
    let gate_start = gates.map_or(0, |p| p + 1);
    for (g, gate) in rule.steps.iter().enumerate().take(end).skip(gate_start) {
        let mut hits = app.hits.lock().unwrap();
        let n = hits.entry((r, g, conv.cwd.clone())).or_default();
        if gate.times.is_none_or(|t| *n < t) {
            *n += 1;
            return gate.clone();
        }
    }
    match target {
        Some(s) => rule.steps[s].clone(),
        None => (rule.steps.iter().rev().find(|s| s.text.is_some()).cloned()).unwrap_or_else(|| text_step("done")),
    }
}

/// Rough token counts (~4 bytes/token) so the CLIs' usage and cost maths are non-zero.
#[derive(Clone, Copy)]
struct Usage {
    input: usize,
}

fn join_path(cwd: &str, rel: &str) -> String {
    if cwd.is_empty() || rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{}/{rel}", cwd.trim_end_matches('/'))
    }
}

fn sse(events: &[Value], named: bool) -> String {
    let mut out = String::new();
    for v in events {
        if named {
            out += &format!("event: {}\n", v["type"].as_str().unwrap_or("message"));
        }
        out += &format!("data: {v}\n\n");
    }
    out
}

/// Three pieces, to exercise the CLIs' accumulation of deltas.
fn pieces(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(chars.len().div_ceil(3).max(1)).map(|p| p.iter().collect()).collect()
}

fn anthropic(req: &Value, step: Step, cwd: &str, n: u64, usage: Usage) -> (u16, &'static str, String) {
    let tool = match (step.write, step.tool_use) {
        (Some(w), _) => Some(ToolUse {
            name: "Write".into(),
            input: json!({"file_path": join_path(cwd, &w.path), "content": w.content}),
        }),
        (None, t) => t,
    };
    let (block, stop) = match tool {
        Some(ToolUse { name, input }) => (
            json!({"type": "tool_use", "id": format!("toolu_fake{n:06}"), "name": name, "input": subst(&input, cwd)}),
            "tool_use",
        ),
        None => (json!({"type": "text", "text": step.text.unwrap_or_default()}), "end_turn"),
    };
    let output_tokens = block.to_string().len() / 4 + 1;
    let model = req["model"].as_str().unwrap_or("claude-sonnet-4-5");
    let u = json!({"input_tokens": usage.input, "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    let mut message = json!({"id": format!("msg_fake{n:06}"), "type": "message", "role": "assistant",
        "model": model, "content": [block.clone()], "stop_reason": stop, "stop_sequence": null, "usage": u});
    if req["stream"] != true {
        return (200, "application/json", message.to_string());
    }
    message["content"] = json!([]);
    message["stop_reason"] = Value::Null;
    message["usage"]["output_tokens"] = json!(1);
    let mut ev = vec![json!({"type": "message_start", "message": message})];
    let (field, delta_type, key) = match stop {
        "tool_use" => ("input", "input_json_delta", "partial_json"),
        _ => ("text", "text_delta", "text"),
    };
    let payload = block[field].as_str().map_or(block[field].to_string(), String::from);
    let mut start = block.clone();
    start[field] = if field == "input" { json!({}) } else { json!("") };
    ev.push(json!({"type": "content_block_start", "index": 0, "content_block": start}));
    for piece in pieces(&payload) {
        ev.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": delta_type, key: piece}}));
    }
    ev.push(json!({"type": "content_block_stop", "index": 0}));
    ev.push(json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"input_tokens": usage.input, "output_tokens": output_tokens}}));
    ev.push(json!({"type": "message_stop"}));
    (200, "text/event-stream", sse(&ev, true))
}

/// Codex's patch language: a new file (or a whole replacement) as an `Add File` hunk.
fn add_file_patch(w: &WriteFile) -> String {
    let mut p = format!("*** Begin Patch\n*** Add File: {}\n", w.path);
    for line in w.content.lines() {
        p += &format!("+{line}\n");
    }
    p + "*** End Patch\n"
}

/// How the request offers tool `name`: "custom" (freeform, like Codex's `apply_patch`),
/// "function", or None when it does not.
fn offered(req: &Value, name: &str) -> Option<String> {
    req["tools"].as_array()?.iter().find(|t| t["name"] == name).map(|t| t["type"].as_str().unwrap_or("function").into())
}

fn responses(req: &Value, step: Step, n: u64, usage: Usage) -> (u16, &'static str, String) {
    let call_id = format!("call_fake{n:06}");
    let tool = match (step.write, step.tool_use) {
        (Some(w), _) => Some(ToolUse { name: "apply_patch".into(), input: json!(add_file_patch(&w)) }),
        (None, t) => t,
    };
    let item = match tool {
        Some(ToolUse { name, input }) => match offered(req, &name).as_deref() {
            Some("custom") => {
                json!({"type": "custom_tool_call", "id": format!("ctc_fake{n:06}"), "status": "completed",
                "call_id": call_id, "name": name, "input": input.as_str().map_or(input.to_string(), String::from)})
            }
            // A patch offered as a function takes it as `input`.
            _ if input.is_string() => json!({"type": "function_call", "id": format!("fc_fake{n:06}"),
                "status": "completed", "call_id": call_id, "name": name,
                "arguments": json!({"input": input}).to_string()}),
            _ => json!({"type": "function_call", "id": format!("fc_fake{n:06}"), "status": "completed",
                "call_id": call_id, "name": name, "arguments": input.to_string()}),
        },
        None => json!({"type": "message", "id": format!("msg_fake{n:06}"), "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": step.text.unwrap_or_default(), "annotations": []}]}),
    };
    let output = item.to_string().len() / 4 + 1;
    let id = format!("resp_fake{n:06}");
    let model = req["model"].as_str().unwrap_or("mock-model");
    let mut ev = vec![
        json!({"type": "response.created", "response": {"id": id, "object": "response", "status": "in_progress", "model": model}}),
    ];
    ev.push(json!({"type": "response.output_item.added", "output_index": 0, "item": item}));
    if let Some(text) = item["content"][0]["text"].as_str() {
        for piece in pieces(text) {
            ev.push(json!({"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                "content_index": 0, "delta": piece}));
        }
    }
    ev.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    ev.push(json!({"type": "response.completed", "response": {"id": id, "object": "response", "status": "completed",
        "model": model, "output": [item],
        "usage": {"input_tokens": usage.input, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": usage.input + output}}}));
    (200, "text/event-stream", sse(&ev, true))
}

fn gemini(req: &Value, step: Step, cwd: &str, stream: bool, usage: Usage) -> (u16, &'static str, String) {
    let tool = match (step.write, step.tool_use) {
        (Some(w), _) => Some(ToolUse {
            name: "write_file".into(),
            input: json!({"file_path": join_path(cwd, &w.path), "content": w.content}),
        }),
        (None, t) => t,
    };
    let parts: Vec<Vec<Value>> = match tool {
        Some(ToolUse { name, input }) => {
            vec![vec![json!({"functionCall": {"name": name, "args": subst(&input, cwd)}})]]
        }
        None => pieces(&step.text.unwrap_or_default()).into_iter().map(|p| vec![json!({"text": p})]).collect(),
    };
    let output = parts.iter().map(|p| Value::from(p.clone()).to_string().len()).sum::<usize>() / 4 + 1;
    let model = req["model"].as_str().unwrap_or("gemini-2.5-pro");
    let last = parts.len() - 1;
    let chunks: Vec<Value> = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut cand = json!({"content": {"role": "model", "parts": p}, "index": 0});
            let mut chunk = json!({"modelVersion": model, "responseId": "fake"});
            if i == last {
                cand["finishReason"] = json!("STOP");
                chunk["usageMetadata"] = json!({"promptTokenCount": usage.input, "candidatesTokenCount": output,
                    "totalTokenCount": usage.input + output});
            }
            chunk["candidates"] = json!([cand]);
            chunk
        })
        .collect();
    if !stream {
        let mut all = chunks[last].clone();
        let joined: Vec<Value> = chunks
            .iter()
            .flat_map(|c| c["candidates"][0]["content"]["parts"].as_array().cloned().unwrap_or_default())
            .collect();
        all["candidates"][0]["content"]["parts"] = Value::from(joined);
        return (200, "application/json", all.to_string());
    }
    (200, "text/event-stream", sse(&chunks, false))
}

fn chat(req: &Value, step: Step, n: u64, usage: Usage) -> (u16, &'static str, String) {
    // Aider's "whole" edit format: the file's path alone on a line, then all of it fenced.
    let text = match (step.write, step.tool_use) {
        (Some(w), _) => format!("Here is {}:\n\n{}\n```\n{}```\n", w.path, w.path, w.content),
        (None, Some(t)) => json!({"tool": t.name, "input": t.input}).to_string(),
        (None, None) => step.text.unwrap_or_default(),
    };
    let output = text.len() / 4 + 1;
    let model = req["model"].as_str().unwrap_or("mock-model");
    let id = format!("chatcmpl-fake{n:06}");
    let u = json!({"prompt_tokens": usage.input, "completion_tokens": output, "total_tokens": usage.input + output});
    if req["stream"] != true {
        let body = json!({"id": id, "object": "chat.completion", "created": 1767225600, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": u});
        return (200, "application/json", body.to_string());
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1767225600, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut ev = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    for p in pieces(&text) {
        ev.push(chunk(json!({"content": p}), Value::Null));
    }
    ev.push(chunk(json!({}), json!("stop")));
    if req["stream_options"]["include_usage"] == true {
        ev.push(json!({"id": id, "object": "chat.completion.chunk", "created": 1767225600, "model": model,
            "choices": [], "usage": u}));
    }
    (200, "text/event-stream", sse(&ev, false) + "data: [DONE]\n\n")
}

fn error_body(api: Api, code: u16, message: Option<&str>) -> Value {
    let (kind, default_msg, status) = match code {
        529 => ("overloaded_error", "Overloaded", "UNAVAILABLE"),
        429 => ("rate_limit_error", "Rate limited", "RESOURCE_EXHAUSTED"),
        503 => ("api_error", "Service unavailable", "UNAVAILABLE"),
        400 => ("invalid_request_error", "Bad request", "INVALID_ARGUMENT"),
        401 => ("authentication_error", "Invalid API key", "UNAUTHENTICATED"),
        404 => ("not_found_error", "Not found", "NOT_FOUND"),
        _ => ("api_error", "Internal server error", "INTERNAL"),
    };
    let msg = message.unwrap_or(default_msg);
    match api {
        Api::Anthropic => json!({"type": "error", "error": {"type": kind, "message": msg}}),
        Api::Gemini { .. } => json!({"error": {"code": code, "message": msg, "status": status}}),
        Api::Responses | Api::Chat => json!({"error": {"message": msg, "type": kind, "param": null, "code": kind}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(script: &str) -> App {
        App { script: serde_json::from_str(script).unwrap(), hits: Mutex::default(), ids: AtomicU64::new(1) }
    }

    #[test]
    fn each_cli_tells_its_working_directory_its_own_way() {
        assert_eq!(cwd_of("Here is env:\n - Primary working directory: /w/a\n"), "/w/a");
        assert_eq!(cwd_of("<environment_context>\n  <cwd>/w/b</cwd>\n"), "/w/b");
        assert_eq!(cwd_of("- **Workspace Directories:**\n  - /w/c\n- **Directory Structure:**"), "/w/c");
        assert_eq!(cwd_of("nothing here"), "");
    }

    #[test]
    fn turns_are_the_model_replies_after_the_matching_user_message() {
        let a = app(r#"{"rules": [{"match": "TASK-X", "steps": [
                {"status": 429, "times": 1}, {"write": {"path": "x", "content": "x\n"}}, {"text": "done"}]}]}"#);
        // Codex: developer and context messages first, then the prompt; a tool call is a reply.
        let codex = |items: Value| {
            conversation(Api::Responses, &json!({"tools": [{"type": "custom", "name": "apply_patch"}], "input": items}))
        };
        let first = codex(json!([
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be good"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<cwd>/w</cwd>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "TASK-X please"}]}]));
        assert_eq!(first.cwd, "/w");
        assert_eq!(pick(&a, &first).status, Some(429), "the gate fails the first request once");
        assert!(pick(&a, &first).write.is_some(), "then the turn plays");
        let second = codex(json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<cwd>/w</cwd> TASK-X"}]},
            {"type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin Patch", "call_id": "c"},
            {"type": "custom_tool_call_output", "call_id": "c", "output": "ok"}]));
        assert_eq!(pick(&a, &second).text.as_deref(), Some("done"));
        // Another working directory has its own gate.
        let mut elsewhere = codex(json!([{"type": "message", "role": "user", "content": "<cwd>/v</cwd> TASK-X"}]));
        elsewhere.cwd = "/v".into();
        assert_eq!(pick(&a, &elsewhere).status, Some(429));

        // Gemini: a model content is a reply; a request without tools is a side call.
        let gemini = conversation(
            Api::Gemini { stream: true },
            &json!({"tools": [{"functionDeclarations": []}], "contents": [
                {"role": "user", "parts": [{"text": "TASK-X"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "write_file", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {}}}]}]}),
        );
        assert!(gemini.main);
        assert_eq!(pick(&a, &gemini).text.as_deref(), Some("done"));
        assert!(!conversation(Api::Gemini { stream: false }, &json!({"contents": []})).main);
        // Aider: its example exchanges come before the prompt and do not count.
        let aider = conversation(
            Api::Chat,
            &json!({"messages": [
                {"role": "system", "content": "whole format"},
                {"role": "user", "content": "example"}, {"role": "assistant", "content": "example reply"},
                {"role": "user", "content": "TASK-X"}]}),
        );
        assert_eq!(pick(&a, &aider).status, Some(429));
        assert!(pick(&a, &aider).write.is_some());
    }

    #[test]
    fn a_write_is_each_apis_own_edit() {
        let w = || Step {
            write: Some(WriteFile { path: "a.txt".into(), content: "one\ntwo\n".into() }),
            ..Step::default()
        };
        let u = Usage { input: 1 };
        let (_, _, body) = anthropic(&json!({"stream": false}), w(), "/w", 1, u);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["content"][0]["name"], "Write");
        assert_eq!(v["content"][0]["input"]["file_path"], "/w/a.txt");
        let (_, _, body) = responses(&json!({"tools": [{"type": "custom", "name": "apply_patch"}]}), w(), 1, u);
        assert!(body.contains(r#""type":"custom_tool_call""#), "{body}");
        assert!(body.contains(r#"*** Add File: a.txt\n+one\n+two\n*** End Patch"#), "{body}");
        assert!(body.ends_with("\n\n") && body.contains("event: response.completed"), "{body}");
        let (_, _, body) = gemini(&json!({}), w(), "/w", true, u);
        assert!(
            body.contains(
                r#""functionCall":{"args":{"content":"one\ntwo\n","file_path":"/w/a.txt"},"name":"write_file"}"#
            ),
            "{body}"
        );
        let (_, _, body) = chat(&json!({"stream": false}), w(), 1, u);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["choices"][0]["message"]["content"].as_str().unwrap().contains("a.txt\n```\none\ntwo\n```\n"));
    }
}
