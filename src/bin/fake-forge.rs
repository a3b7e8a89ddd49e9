//! A stand-in for the GitHub REST API that `git parallel publish` talks to, for tests: pull
//! requests kept in memory and written to a state file after each change, a token required.
//!
//! Usage: fake-forge --token TOKEN --state FILE [--issues FILE] [--port N]; prints `PORT n`
//! once listening. Answers: GET /repos/O/R, GET /repos/O/R/pulls?head=O:BRANCH&state=open,
//! POST /repos/O/R/pulls, PATCH /repos/O/R/pulls/N, GET /repos/O/R/issues?labels=L (the
//! issues file: a JSON list of {number, title, body, labels, pull_request?}). Every request
//! is logged on stderr.

use serde_json::{json, Value};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let token = arg("--token").expect("--token");
    let state_file = arg("--state").expect("--state");
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let server = tiny_http::Server::http(("127.0.0.1", port)).expect("bind");
    let mut out = std::io::stdout();
    writeln!(out, "PORT {}", server.server_addr().to_ip().expect("ip").port()).unwrap();
    out.flush().unwrap();
    let mut pulls: Vec<Value> = Vec::new();
    // Issues opened through the API (tracking issues), written beside the state file.
    let mut opened: Vec<Value> = Vec::new();
    let checks_file = arg("--checks");
    let issues: Vec<Value> = arg("--issues")
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f).expect("issues file")).expect("issues JSON"))
        .unwrap_or_default();
    for mut req in server.incoming_requests() {
        let mut body = String::new();
        let _ = req.as_reader().read_to_string(&mut body);
        let url = req.url().to_string();
        eprintln!("[forge] {} {url} {body}", req.method());
        let authorized = req
            .headers()
            .iter()
            .any(|h| h.field.equiv("Authorization") && h.value.as_str() == format!("Bearer {token}"));
        let (code, answer) = if !authorized {
            (401, json!({"message": "Bad credentials"}))
        } else {
            let checks: Value = checks_file
                .as_ref()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(json!({}));
            route(req.method(), &url, &body, &mut pulls, &issues, &checks, &mut opened)
        };
        std::fs::write(&state_file, serde_json::to_vec_pretty(&pulls).unwrap()).unwrap();
        std::fs::write(format!("{state_file}.issues"), serde_json::to_vec_pretty(&opened).unwrap()).unwrap();
        let header = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
        let _ = req
            .respond(tiny_http::Response::from_string(answer.to_string()).with_status_code(code).with_header(header));
    }
}

fn route(
    method: &tiny_http::Method,
    url: &str,
    body: &str,
    pulls: &mut Vec<Value>,
    issues: &[Value],
    checks: &Value,
    opened: &mut Vec<Value>,
) -> (u16, Value) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let input: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    use tiny_http::Method::*;
    match (method, parts.as_slice()) {
        (Get, ["repos", _, _, "issues"]) => {
            let label = query.split('&').find_map(|kv| kv.strip_prefix("labels=")).map(|l| l.replace("%20", " "));
            let page: usize = query.split('&').find_map(|kv| kv.strip_prefix("page=")?.parse().ok()).unwrap_or(1);
            let found: Vec<Value> = issues
                .iter()
                .filter(|i| {
                    label
                        .as_ref()
                        .is_none_or(|l| i["labels"].as_array().is_some_and(|ls| ls.iter().any(|x| x == l.as_str())))
                })
                .skip((page - 1) * 100)
                .take(100)
                .cloned()
                .collect();
            (200, Value::Array(found))
        }
        // The checks file (re-read at each request, so a test can move CI along):
        // {"check_runs": [...], "statuses": [...]}, the same for every commit.
        (Get, ["repos", _, _, "commits", _, "check-runs"]) => {
            (200, json!({"check_runs": checks["check_runs"].as_array().cloned().unwrap_or_default()}))
        }
        (Get, ["repos", _, _, "commits", _, "status"]) => {
            (200, json!({"statuses": checks["statuses"].as_array().cloned().unwrap_or_default()}))
        }
        (Post, ["repos", _, _, "issues"]) => {
            let number = 1000 + opened.len() as u64;
            let issue = json!({"number": number, "title": input["title"], "body": input["body"], "updates": 0,
                "html_url": format!("https://forge.example/issues/{number}")});
            opened.push(issue.clone());
            (201, issue)
        }
        (Patch, ["repos", _, _, "issues", n]) => {
            let Some(i) = opened.iter_mut().find(|i| i["number"].as_u64() == n.parse::<u64>().ok()) else {
                return (404, json!({"message": "Not Found"}));
            };
            for key in ["title", "body"] {
                if let Some(v) = input.get(key) {
                    i[key] = v.clone();
                }
            }
            i["updates"] = json!(i["updates"].as_u64().unwrap_or(0) + 1);
            (200, i.clone())
        }
        (Get, ["repos", o, r]) => (200, json!({"full_name": format!("{o}/{r}"), "default_branch": "main"})),
        (Get, ["repos", _, _, "pulls"]) => {
            let head = query.split('&').find_map(|kv| kv.strip_prefix("head=")).unwrap_or("");
            let head = head.replace("%3A", ":").replace("%2F", "/");
            let branch = head.split_once(':').map(|(_, b)| b).unwrap_or(&head);
            let found: Vec<Value> =
                pulls.iter().filter(|p| p["head"]["ref"] == branch && p["state"] == "open").cloned().collect();
            (200, Value::Array(found))
        }
        (Post, ["repos", o, r, "pulls"]) => {
            for key in ["title", "head", "base"] {
                if !input[key].is_string() {
                    return (422, json!({"message": format!("Validation Failed: {key} missing")}));
                }
            }
            if pulls.iter().any(|p| p["head"]["ref"] == input["head"] && p["state"] == "open") {
                return (422, json!({"message": "Validation Failed: A pull request already exists"}));
            }
            let number = pulls.len() as u64 + 1;
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
            pulls.push(pr.clone());
            (201, pr)
        }
        (Patch, ["repos", _, _, "pulls", n]) => {
            let Some(pr) = pulls.iter_mut().find(|p| p["number"].as_u64() == n.parse::<u64>().ok()) else {
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
