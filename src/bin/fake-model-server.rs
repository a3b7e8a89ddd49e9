//! Scripted stand-in for the Anthropic Messages API, so end-to-end tests can
//! drive the real Claude Code CLI offline. See `usage()` for the script format.

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

/// One of `text`, `tool_use` or `status` is set; `times` only goes with `status`.
#[derive(Deserialize, Clone, Debug, Default)]
struct Step {
    text: Option<String>,
    tool_use: Option<ToolUse>,
    status: Option<u16>,
    times: Option<u64>,
}

#[derive(Deserialize, Clone, Debug)]
struct ToolUse {
    name: String,
    input: Value,
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
         script: {{\"rules\":[{{\"match\":SUBSTR,\"steps\":[STEP..]}}],\"default\":STEP,\"latency_ms\":N}}\n\
         STEP: {{\"text\":S}} | {{\"tool_use\":{{\"name\":N,\"input\":{{..}}}}}} | {{\"status\":529[,\"times\":K]}}\n\
         Turn n (= assistant messages in the request) plays the n-th non-status step;\n\
         status steps right before it fail the request first (K times, or forever)."
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
    // The CLI (Bun fetch) always sends Content-Length; chunked bodies are not
    // supported.
    let len = headers.get("content-length").and_then(|v| v.parse().ok());
    let mut body = vec![0; len.unwrap_or(0)];
    r.read_exact(&mut body)?;
    Ok(Some(Request { method, target, headers, body }))
}

fn route(app: &App, req: &Request) -> (u16, &'static str, String) {
    let path = req.target.split('?').next().unwrap_or_default();
    let json: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    eprintln!("[fms] {} {} {}", req.method, req.target, summarize(&json, req.body.len()));
    // Debug aid: FAKE_MODEL_DUMP=DIR keeps every request body for inspection.
    if let Ok(dir) = std::env::var("FAKE_MODEL_DUMP") {
        let n = app.ids.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::write(format!("{dir}/req-{n:04}.json"), &req.body);
    }
    match (req.method.as_str(), path) {
        ("POST", "/v1/messages") => messages(app, &json),
        // The CLI probes `HEAD /` for connectivity before its first request.
        ("HEAD", "/") => (200, "text/plain", String::new()),
        _ => (404, "application/json", error_body(404).to_string()),
    }
}

fn summarize(j: &Value, len: usize) -> String {
    if j.is_null() {
        return format!("({len} bytes)");
    }
    let msgs = j["messages"].as_array().map_or(0, |m| m.len());
    let first: String = first_user_text(j).chars().take(60).collect();
    format!(
        "model={} stream={} msgs={msgs} tools={} first={first:?}",
        j["model"],
        j["stream"],
        j["tools"].as_array().map_or(0, |t| t.len())
    )
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

fn first_user_text(req: &Value) -> String {
    let msgs = req["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
    msgs.iter().find(|m| m["role"] == "user").map(|m| text_of(&m["content"])).unwrap_or_default()
}

/// The CLI puts "Primary working directory: /path" in its env section, which
/// lives in the system prompt, or in the first user message when
/// `--exclude-dynamic-system-prompt-sections` is used.
fn cwd_of(req: &Value) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?m)^[ \t]*-?[ \t]*(?:Primary )?[Ww]orking directory:[ \t]*(\S[^\r\n]*?)[ \t]*$").unwrap()
    });
    let hay = format!("{}\n{}", text_of(&req["system"]), first_user_text(req));
    re.captures(&hay).map(|c| c[1].to_string()).unwrap_or_default()
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

/// Structured-output side calls get placeholder strings for each property.
fn side_step(app: &App, req: &Value) -> Step {
    match req["output_config"]["format"]["schema"]["properties"].as_object() {
        Some(props) => {
            let obj: serde_json::Map<_, _> = (props.keys()).map(|k| (k.clone(), json!(format!("fake {k}")))).collect();
            text_step(&Value::Object(obj).to_string())
        }
        None => default_step(app),
    }
}

/// Picks the step for this request; see `usage()` for the semantics.
fn pick(app: &App, req: &Value, cwd: &str) -> Step {
    let first = first_user_text(req);
    let Some((r, rule)) = app.script.rules.iter().enumerate().find(|(_, r)| first.contains(&r.pattern)) else {
        return default_step(app);
    };
    let turn = req["messages"].as_array().map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count());
    // Turn n plays the n-th non-status step; the status steps just before it
    // ("gates") fail the request first. Past the end, trailing gates still apply.
    let mut plays = rule.steps.iter().enumerate().filter(|(_, s)| s.status.is_none());
    let target = plays.nth(turn).map(|(s, _)| s);
    let end = target.unwrap_or(rule.steps.len());
    let gates = rule.steps[..end].iter().rposition(|s| s.status.is_none());
    let gate_start = gates.map_or(0, |p| p + 1);
    for (g, gate) in rule.steps.iter().enumerate().take(end).skip(gate_start) {
        let mut hits = app.hits.lock().unwrap();
        let n = hits.entry((r, g, cwd.to_string())).or_default();
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

fn messages(app: &App, req: &Value) -> (u16, &'static str, String) {
    let cwd = cwd_of(req);
    // Side calls (e.g. session-title generation, made unless nonessential
    // traffic is disabled) carry no tools but quote the prompt, so they must
    // not play or consume the script.
    let has_tools = req["tools"].as_array().is_some_and(|t| !t.is_empty());
    let step = if has_tools { pick(app, req, &cwd) } else { side_step(app, req) };
    eprintln!("[fms]   cwd={cwd:?} -> {step:?}");
    let n = app.ids.fetch_add(1, Ordering::Relaxed);
    if let Some(code) = step.status {
        return (code, "application/json", error_body(code).to_string());
    }
    let (block, stop) = match step.tool_use {
        Some(ToolUse { name, input }) => (
            json!({"type": "tool_use", "id": format!("toolu_fake{n:06}"), "name": name, "input": subst(&input, &cwd)}),
            "tool_use",
        ),
        None => (json!({"type": "text", "text": step.text.unwrap_or_default()}), "end_turn"),
    };
    // Rough token counts (~4 bytes/token) so the CLI's cost maths is non-zero.
    let input_tokens = req.to_string().len() / 4;
    let output_tokens = block.to_string().len() / 4 + 1;
    let model = req["model"].as_str().unwrap_or("claude-sonnet-4-5");
    let usage = json!({"input_tokens": input_tokens, "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    let mut message = json!({"id": format!("msg_fake{n:06}"), "type": "message", "role": "assistant",
        "model": model, "content": [block.clone()], "stop_reason": stop, "stop_sequence": null, "usage": usage});
    if req["stream"] != true {
        return (200, "application/json", message.to_string());
    }
    message["content"] = json!([]);
    message["stop_reason"] = Value::Null;
    message["usage"]["output_tokens"] = json!(1);
    let mut sse = String::new();
    let mut ev = |v: Value| sse += &format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap());
    ev(json!({"type": "message_start", "message": message}));
    // Deliver the payload in several deltas to exercise the CLI's accumulation.
    let (field, delta_type, key) = match stop {
        "tool_use" => ("input", "input_json_delta", "partial_json"),
        _ => ("text", "text_delta", "text"),
    };
    let payload = block[field].as_str().map_or(block[field].to_string(), String::from);
    let mut start = block.clone();
    start[field] = if field == "input" { json!({}) } else { json!("") };
    ev(json!({"type": "content_block_start", "index": 0, "content_block": start}));
    let chars: Vec<char> = payload.chars().collect();
    for piece in chars.chunks(chars.len().div_ceil(3).max(1)) {
        let piece: String = piece.iter().collect();
        ev(json!({"type": "content_block_delta", "index": 0, "delta": {"type": delta_type, key: piece}}));
    }
    ev(json!({"type": "content_block_stop", "index": 0}));
    ev(json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}));
    ev(json!({"type": "message_stop"}));
    (200, "text/event-stream", sse)
}

fn error_body(code: u16) -> Value {
    let (kind, msg) = match code {
        529 => ("overloaded_error", "Overloaded"),
        429 => ("rate_limit_error", "Rate limited"),
        404 => ("not_found_error", "Not found"),
        _ => ("api_error", "Internal server error"),
    };
    json!({"type": "error", "error": {"type": kind, "message": msg}})
}
