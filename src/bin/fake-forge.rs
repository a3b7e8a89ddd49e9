//! A stand-in for the forge APIs `git parallel publish` talks to, for tests: GitHub's REST v3
//! (at `/`, or `/api/v3` as GitHub Enterprise serves it) and GitLab's REST v4 (at `/api/v4`).
//! Pull and merge requests are kept in memory and written to a state file after each change;
//! a token is required.
//!
//! Usage: fake-forge --token TOKEN --state FILE [--issues FILE] [--checks FILE]
//!        [--faults FILE] [--contract FILE]... [--port N]
//! Prints `PORT n` once listening; logs every request on stderr.
//!
//! - `--issues`: a JSON list of open issues (GitHub's shape: number, title, body, labels,
//!   pull_request?; GitLab's: iid, title, description, labels).
//! - `--checks`: re-read at each request, so a test can move CI along: `{"check_runs": [...],
//!   "statuses": [...]}` (GitHub), `{"statuses": [{"name", "status"}]}` (GitLab).
//! - `--faults`: a JSON list of `{"method", "path", "status", "body"?}`; the first request
//!   whose method matches and whose path (without the query) ends with `path` gets that answer
//!   instead, once (after letting `"after": N` such requests through).
//! - `--contract`: a JSON file of the endpoints the real API describes (see tests/data/forge/);
//!   a request whose method, path, query or body it does not allow gets a 400 whose message
//!   starts `contract:`, and so does a scripted answer that breaks it (a 500 then).

use serde_json::{json, Value};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let all = |name: &str| -> Vec<String> {
        args.iter().enumerate().filter(|(_, a)| *a == name).filter_map(|(i, _)| args.get(i + 1).cloned()).collect()
    };
    let read_json = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}")))
            .unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let token = arg("--token").expect("--token");
    let state_file = arg("--state").expect("--state");
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let server = tiny_http::Server::http(("127.0.0.1", port)).expect("bind");
    let mut out = std::io::stdout();
    writeln!(out, "PORT {}", server.server_addr().to_ip().expect("ip").port()).unwrap();
    out.flush().unwrap();
    let mut f = Forge {
        pulls: Vec::new(),
        opened: Vec::new(),
        issues: arg("--issues").map(|f| read_json(&f)).and_then(|v| v.as_array().cloned()).unwrap_or_default(),
        checks: json!({}),
    };
    let checks_file = arg("--checks");
    let mut faults: Vec<Value> =
        arg("--faults").map(|f| read_json(&f)).and_then(|v| v.as_array().cloned()).unwrap_or_default();
    let contracts: Vec<Value> = all("--contract").iter().map(|f| read_json(f)).collect();
    for mut req in server.incoming_requests() {
        let mut body = String::new();
        let _ = req.as_reader().read_to_string(&mut body);
        let url = req.url().to_string();
        let method = req.method().as_str().to_uppercase();
        eprintln!("[forge] {method} {url} {body}");
        let header = |name: &'static str| {
            req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
        };
        let authorized = header("Authorization") == Some(format!("Bearer {token}"))
            || header("PRIVATE-TOKEN") == Some(token.clone());
        let path = url.split('?').next().unwrap_or("").to_string();
        let mut fault = faults.iter().position(|x| {
            x["method"].as_str() == Some(method.as_str()) && x["path"].as_str().is_some_and(|p| path.ends_with(p))
        });
        // `"after": N` lets N such requests through first.
        if let Some(i) = fault {
            if let Some(n) = faults[i]["after"].as_u64().filter(|n| *n > 0) {
                faults[i]["after"] = json!(n - 1);
                fault = None;
            }
        }
        let endpoint = contracts.iter().find_map(|c| contract::endpoint(c, &method, &path));
        // What the description lacks (named in the contract's `undescribed`) passes unchecked.
        let undescribed = contracts.iter().any(|c| contract::undescribed(c, &method, &path));
        let broken = if contracts.is_empty() || undescribed {
            None
        } else {
            contract::check_request(endpoint, &method, &url, &body)
        };
        let (code, answer) = if let Some(why) = broken {
            (400, json!({"message": format!("contract: {why}")}))
        } else if !authorized {
            (401, json!({"message": "Bad credentials"}))
        } else if let Some(i) = fault {
            let x = faults.remove(i);
            (
                x["status"].as_u64().unwrap_or(500) as u16,
                x.get("body").cloned().unwrap_or(json!({"message": "scripted"})),
            )
        } else {
            f.checks = checks_file
                .as_ref()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(json!({}));
            f.route(&method, &url, &body)
        };
        let (code, answer) = match endpoint.and_then(|e| contract::check_response(e, code, &answer)) {
            Some(why) => (500, json!({"message": format!("contract: the scripted answer {why}")})),
            None => (code, answer),
        };
        eprintln!("[forge] -> {code} {answer}");
        std::fs::write(&state_file, serde_json::to_vec_pretty(&f.pulls).unwrap()).unwrap();
        std::fs::write(format!("{state_file}.issues"), serde_json::to_vec_pretty(&f.opened).unwrap()).unwrap();
        let header = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
        let _ = req
            .respond(tiny_http::Response::from_string(answer.to_string()).with_status_code(code).with_header(header));
    }
}

struct Forge {
    /// Pull requests (GitHub's shape) and merge requests (GitLab's), in order of opening.
    pulls: Vec<Value>,
    /// Issues opened through the API (tracking issues), written beside the state file.
    opened: Vec<Value>,
    /// Open issues to list (`--issues`).
    issues: Vec<Value>,
    checks: Value,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().to_string()
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}="))).map(decode)
}

impl Forge {
    fn route(&mut self, method: &str, url: &str, body: &str) -> (u16, Value) {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let path = path.strip_prefix("/api/v3").unwrap_or(path);
        let input: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        if let Some(rest) = path.strip_prefix("/api/v4/") {
            let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
            return self.gitlab(method, &parts, query, &input);
        }
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.github(method, &parts, query, &input)
    }

    /// An issue edited: the one whose `id.0` field is `id.1` takes `keys` from `input` and
    /// counts one update; 404 with the forge's own `missing` message when there is none.
    fn update_issue(&mut self, id: (&str, &str), keys: &[&str], input: &Value, missing: &str) -> (u16, Value) {
        let Some(i) = self.opened.iter_mut().find(|i| i[id.0].as_u64() == id.1.parse::<u64>().ok()) else {
            return (404, json!({ "message": missing }));
        };
        for key in keys {
            if let Some(v) = input.get(*key) {
                i[*key] = v.clone();
            }
        }
        i["updates"] = json!(i["updates"].as_u64().unwrap_or(0) + 1);
        (200, i.clone())
    }

    fn labelled(&self, query: &str) -> impl Iterator<Item = &Value> {
        let label = query_value(query, "labels");
        let page: usize = query_value(query, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
        self.issues
            .iter()
            .filter(move |i| {
                label
                    .as_ref()
                    .is_none_or(|l| i["labels"].as_array().is_some_and(|ls| ls.iter().any(|x| x == l.as_str())))
            })
            .skip((page - 1) * 100)
            .take(100)
    }

    fn github(&mut self, method: &str, parts: &[&str], query: &str, input: &Value) -> (u16, Value) {
        match (method, parts) {
            ("GET", ["repos", _, _, "issues"]) => (200, Value::Array(self.labelled(query).cloned().collect())),
            ("GET", ["repos", _, _, "commits", _, "check-runs"]) => {
                let runs = self.checks["check_runs"].as_array().cloned().unwrap_or_default();
                (200, json!({"total_count": runs.len(), "check_runs": runs}))
            }
            ("GET", ["repos", _, _, "commits", sha, "status"]) => {
                let statuses = self.checks["statuses"].as_array().cloned().unwrap_or_default();
                (200, json!({"state": "pending", "sha": sha, "total_count": statuses.len(), "statuses": statuses}))
            }
            ("POST", ["repos", _, _, "issues"]) => {
                let number = 1000 + self.opened.len() as u64;
                let issue = json!({"number": number, "title": input["title"], "body": input["body"], "updates": 0,
                    "html_url": format!("https://forge.example/issues/{number}")});
                self.opened.push(issue.clone());
                (201, issue)
            }
            ("PATCH", ["repos", _, _, "issues", n]) => {
                self.update_issue(("number", n), &["title", "body"], input, "Not Found")
            }
            ("GET", ["repos", o, r]) => (200, json!({"full_name": format!("{o}/{r}"), "default_branch": "main"})),
            ("GET", ["repos", _, _, "pulls"]) => {
                let head = query_value(query, "head").unwrap_or_default();
                let branch = head.split_once(':').map(|(_, b)| b).unwrap_or(&head);
                let found: Vec<Value> =
                    self.pulls.iter().filter(|p| p["head"]["ref"] == branch && p["state"] == "open").cloned().collect();
                (200, Value::Array(found))
            }
            ("POST", ["repos", o, r, "pulls"]) => {
                for key in ["head", "base"] {
                    if !input[key].is_string() {
                        return (
                            422,
                            json!({"message": "Validation Failed", "errors": [{"field": key, "code": "missing_field"}]}),
                        );
                    }
                }
                if self.pulls.iter().any(|p| p["head"]["ref"] == input["head"] && p["state"] == "open") {
                    let msg =
                        format!("A pull request already exists for {o}:{}.", input["head"].as_str().unwrap_or(""));
                    return (
                        422,
                        json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": msg}]}),
                    );
                }
                let number = self.pulls.len() as u64 + 1;
                let pr = json!({
                    "number": number,
                    "html_url": format!("https://forge.example/{o}/{r}/pull/{number}"),
                    "state": "open",
                    "title": input["title"],
                    "body": input["body"],
                    "draft": input["draft"].as_bool().unwrap_or(false),
                    "head": {"ref": input["head"]},
                    "base": {"ref": input["base"]},
                    "updates": 0,
                });
                self.pulls.push(pr.clone());
                (201, pr)
            }
            ("PATCH", ["repos", _, _, "pulls", n]) => {
                let Some(pr) = self.pulls.iter_mut().find(|p| p["number"].as_u64() == n.parse::<u64>().ok()) else {
                    return (404, json!({"message": "Not Found"}));
                };
                for key in ["title", "body", "base"] {
                    if let Some(v) = input.get(key) {
                        pr[key] = if key == "base" { json!({"ref": v}) } else { v.clone() };
                    }
                }
                pr["updates"] = json!(pr["updates"].as_u64().unwrap_or(0) + 1);
                (200, pr.clone())
            }
            _ => (404, json!({"message": "Not Found"})),
        }
    }

    fn gitlab(&mut self, method: &str, parts: &[&str], query: &str, input: &Value) -> (u16, Value) {
        let mr = |pulls: &[Value], n: &str| {
            let n = n.parse::<u64>().ok();
            pulls.iter().position(|p| p["iid"].as_u64() == n)
        };
        match (method, parts) {
            ("GET", ["projects", id]) => {
                (200, json!({"id": 42, "path_with_namespace": decode(id), "default_branch": "main"}))
            }
            ("GET", ["projects", _, "merge_requests"]) => {
                let branch = query_value(query, "source_branch").unwrap_or_default();
                let state = query_value(query, "state").unwrap_or_else(|| "all".into());
                let found: Vec<Value> = self
                    .pulls
                    .iter()
                    .filter(|p| {
                        p["source_branch"] == branch.as_str() && (state == "all" || p["state"] == state.as_str())
                    })
                    .cloned()
                    .collect();
                (200, Value::Array(found))
            }
            ("GET", ["projects", _, "merge_requests", n]) => match mr(&self.pulls, n) {
                Some(i) => (200, self.pulls[i].clone()),
                None => (404, json!({"message": "404 Not found"})),
            },
            ("POST", ["projects", id, "merge_requests"]) => {
                if let Some(p) =
                    self.pulls.iter().find(|p| p["source_branch"] == input["source_branch"] && p["state"] == "opened")
                {
                    let msg =
                        format!("Another open merge request already exists for this source branch: !{}", p["iid"]);
                    return (409, json!({"message": [msg]}));
                }
                let iid = self.pulls.len() as u64 + 1;
                let title = input["title"].as_str().unwrap_or("");
                let m = json!({
                    "id": 9000 + iid,
                    "iid": iid,
                    "web_url": format!("https://gitlab.example/{}/-/merge_requests/{iid}", decode(id)),
                    "state": "opened",
                    "title": title,
                    "description": input["description"],
                    "draft": title.starts_with("Draft:"),
                    "source_branch": input["source_branch"],
                    "target_branch": input["target_branch"],
                    "updates": 0,
                });
                self.pulls.push(m.clone());
                (201, m)
            }
            ("PUT", ["projects", _, "merge_requests", n]) => {
                let Some(i) = mr(&self.pulls, n) else { return (404, json!({"message": "404 Not found"})) };
                let m = &mut self.pulls[i];
                for key in ["title", "description", "target_branch"] {
                    if let Some(v) = input.get(key) {
                        m[key] = v.clone();
                    }
                }
                m["draft"] = json!(m["title"].as_str().is_some_and(|t| t.starts_with("Draft:")));
                m["updates"] = json!(m["updates"].as_u64().unwrap_or(0) + 1);
                (200, m.clone())
            }
            ("GET", ["projects", _, "issues"]) => (200, Value::Array(self.labelled(query).cloned().collect())),
            ("POST", ["projects", _, "issues"]) => {
                let iid = 1000 + self.opened.len() as u64;
                let issue = json!({"id": 5000 + iid, "iid": iid, "title": input["title"], "description": input["description"],
                    "updates": 0, "web_url": format!("https://gitlab.example/issues/{iid}")});
                self.opened.push(issue.clone());
                (201, issue)
            }
            ("PUT", ["projects", _, "issues", n]) => {
                self.update_issue(("iid", n), &["title", "description"], input, "404 Not found")
            }
            ("GET", ["projects", _, "repository", "commits", _, "statuses"]) => {
                (200, Value::Array(self.checks["statuses"].as_array().cloned().unwrap_or_default()))
            }
            _ => (404, json!({"message": "404 Not found"})),
        }
    }
}

/// Requests and answers held to the endpoints an API description allows. A contract file:
/// `{"source": "...", "endpoints": [{"method", "path" (with {param} segments), "query":
/// {name: schema}, "body": {"required": [...], "properties": {name: schema}} | null,
/// "response": {"status": [..], "required": [...]}}], "undescribed": [{"method", "path"}]}`;
/// a schema is `{"type": T | [T...], "enum"?: [...]}`.
mod contract {
    use serde_json::Value;

    /// The endpoint of `method path` in contract `c` (the path tried as sent and without a
    /// GitHub Enterprise `/api/v3` prefix).
    pub fn endpoint<'a>(c: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
        let bare = path.strip_prefix("/api/v3").unwrap_or(path);
        c["endpoints"].as_array()?.iter().find(|e| {
            e["method"].as_str() == Some(method)
                && e["path"].as_str().is_some_and(|t| matches(t, path) || matches(t, bare))
        })
    }

    /// Whether the contract names `method path` as missing from the description it was taken
    /// from (so it cannot be held to it).
    pub fn undescribed(c: &Value, method: &str, path: &str) -> bool {
        c["undescribed"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["method"].as_str() == Some(method) && e["path"].as_str().is_some_and(|t| matches(t, path)))
    }

    fn matches(template: &str, path: &str) -> bool {
        let t: Vec<&str> = template.trim_matches('/').split('/').collect();
        let p: Vec<&str> = path.trim_matches('/').split('/').collect();
        t.len() == p.len()
            && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
    }

    fn type_ok(schema: &Value, v: &Value) -> bool {
        let types: Vec<&str> = match &schema["type"] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
            _ => return true,
        };
        types.iter().any(|t| match *t {
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            "null" => v.is_null(),
            _ => false,
        })
    }

    fn enum_ok(schema: &Value, v: &Value) -> bool {
        schema["enum"].as_array().is_none_or(|e| e.contains(v))
    }

    /// Why the request breaks the contract, if it does.
    pub fn check_request(e: Option<&Value>, method: &str, url: &str, body: &str) -> Option<String> {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let Some(e) = e else { return Some(format!("the API describes no {method} {path}")) };
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = super::decode(v);
            let Some(schema) = e["query"].get(k) else {
                return Some(format!("{method} {} takes no query parameter `{k}`", e["path"].as_str().unwrap_or("")));
            };
            let value = match schema["type"].as_str() {
                Some("integer") => match v.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => return Some(format!("query parameter `{k}` must be an integer, not `{v}`")),
                },
                _ => Value::String(v.clone()),
            };
            if !enum_ok(schema, &value) {
                return Some(format!("query parameter `{k}` is `{v}`, not one of {}", schema["enum"]));
            }
        }
        match &e["body"] {
            Value::Null if body.trim().is_empty() => None,
            Value::Null => Some(format!("{method} {path} takes no body")),
            spec => {
                let Ok(Value::Object(input)) = serde_json::from_str::<Value>(body) else {
                    return Some(format!("{method} {path} takes a JSON object"));
                };
                for r in spec["required"].as_array().into_iter().flatten().filter_map(|r| r.as_str()) {
                    if !input.contains_key(r) {
                        return Some(format!("{method} {path}: `{r}` is required"));
                    }
                }
                for (k, v) in &input {
                    let Some(schema) = spec["properties"].get(k) else {
                        return Some(format!("{method} {path}: no field `{k}`"));
                    };
                    if !type_ok(schema, v) || !enum_ok(schema, v) {
                        return Some(format!("{method} {path}: `{k}` is {v}, which the API does not take ({schema})"));
                    }
                }
                None
            }
        }
    }

    /// Why a scripted answer breaks the contract, if it does: a success whose status the API
    /// does not give, or that lacks a field the API always sends.
    pub fn check_response(e: &Value, code: u16, answer: &Value) -> Option<String> {
        let r = &e["response"];
        if !(200..300).contains(&code) || r.is_null() {
            return None;
        }
        if let Some(codes) = r["status"].as_array() {
            if !codes.iter().any(|c| c.as_u64() == Some(code as u64)) {
                return Some(format!("has status {code}, not one of {}", r["status"]));
            }
        }
        let items: Vec<&Value> = match answer {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        for item in items {
            for f in r["required"].as_array().into_iter().flatten().filter_map(|f| f.as_str()) {
                if item.get(f).is_none() {
                    return Some(format!("lacks `{f}`"));
                }
            }
        }
        None
    }
}
