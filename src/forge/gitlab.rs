//! GitLab's REST API (v4): merge requests, issues and commit statuses of a project, whose id in
//! a path is its full path (`group/sub/name`) percent-encoded.

use super::{encode, Checks, Forge, Http, Issue, PullRequest};
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// A project on GitLab.
pub struct GitLab {
    http: Http,
    /// `/projects/group%2Fname`.
    project: String,
}

impl GitLab {
    pub fn new(api: &str, repo: &str, token: &str) -> GitLab {
        GitLab {
            http: Http::new(api, vec![("PRIVATE-TOKEN", token.to_string())]),
            project: format!("/projects/{}", encode(repo)),
        }
    }

    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.http.ok(method, &format!("{}{path}", self.project), body)
    }
}

fn merge_request(v: &Value) -> Option<PullRequest> {
    Some(PullRequest { number: v["iid"].as_u64()?, url: v["web_url"].as_str()?.to_string() })
}

impl Forge for GitLab {
    fn noun(&self) -> &'static str {
        "merge request"
    }

    fn pr_ref(&self, n: u64) -> String {
        format!("!{n}")
    }

    fn default_branch(&self) -> Result<String> {
        let v = self.ok("GET", "", None)?;
        v["default_branch"].as_str().map(String::from).context("the forge named no default branch")
    }

    fn find_open(&self, branch: &str) -> Result<Option<PullRequest>> {
        let v = self.ok("GET", &format!("/merge_requests?state=opened&source_branch={}", encode(branch)), None)?;
        Ok(v.as_array().and_then(|a| a.first()).and_then(merge_request))
    }

    fn open(&self, head: &str, base: &str, title: &str, body: &str, draft: bool) -> Result<Option<PullRequest>> {
        let path = format!("{}/merge_requests", self.project);
        // A draft is a title that says so.
        let title = if draft { format!("Draft: {title}") } else { title.to_string() };
        let input = json!({"source_branch": head, "target_branch": base, "title": title, "description": body});
        let (status, v) = self.http.call("POST", &path, Some(&input))?;
        if status == 409 && super::message(&v).contains("already exists") {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(super::refused("POST", &path, status, &v).into());
        }
        merge_request(&v).context("the forge's answer names no merge request").map(Some)
    }

    fn update(&self, number: u64, base: &str, title: &str, body: &str) -> Result<PullRequest> {
        // A draft stays one: the title keeps its mark.
        let now = self.ok("GET", &format!("/merge_requests/{number}"), None)?;
        let draft = now["draft"].as_bool().unwrap_or(false) || now["work_in_progress"].as_bool().unwrap_or(false);
        let title = if draft && !title.starts_with("Draft:") { format!("Draft: {title}") } else { title.to_string() };
        let input = json!({"title": title, "description": body, "target_branch": base});
        let v = self.ok("PUT", &format!("/merge_requests/{number}"), Some(&input))?;
        merge_request(&v).context("the forge's answer names no merge request")
    }

    fn checks(&self, sha: &str) -> Result<Checks> {
        let v = self.ok("GET", &format!("/repository/commits/{sha}/statuses?per_page=100"), None)?;
        let mut c = Checks::default();
        let all = v.as_array().cloned().unwrap_or_default();
        for s in &all {
            let name = s["name"].as_str().unwrap_or("?").to_string();
            match s["status"].as_str() {
                // A manual job waits for a person, not for us.
                Some("success" | "skipped" | "manual") => {}
                Some("failed" | "canceled") => c.failing.push(name),
                _ => c.pending.push(name),
            }
        }
        c.done = !all.is_empty() && c.pending.is_empty();
        Ok(c)
    }

    fn open_issue(&self, title: &str, body: &str) -> Result<u64> {
        let v = self.ok("POST", "/issues", Some(&json!({"title": title, "description": body})))?;
        v["iid"].as_u64().context("the forge's answer names no issue")
    }

    fn update_issue(&self, number: u64, title: &str, body: &str) -> Result<()> {
        self.ok("PUT", &format!("/issues/{number}"), Some(&json!({"title": title, "description": body}))).map(|_| ())
    }

    fn open_issues(&self, label: Option<&str>) -> Result<Vec<Issue>> {
        let mut out = Vec::new();
        for page in 1..=50 {
            let mut path = format!("/issues?state=opened&per_page=100&page={page}");
            if let Some(l) = label {
                path.push_str(&format!("&labels={}", encode(l)));
            }
            let v = self.ok("GET", &path, None)?;
            let items = v.as_array().cloned().unwrap_or_default();
            for i in &items {
                let (Some(number), Some(title)) = (i["iid"].as_u64(), i["title"].as_str()) else { continue };
                out.push(Issue {
                    number,
                    title: title.to_string(),
                    body: i["description"].as_str().unwrap_or("").to_string(),
                });
            }
            if items.len() < 100 {
                break;
            }
        }
        Ok(out)
    }
}
