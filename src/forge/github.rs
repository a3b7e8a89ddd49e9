//! GitHub's REST API (v3, version 2022-11-28), and GitHub Enterprise's at `https://HOST/api/v3`.

use super::{encode, Checks, Forge, Http, Issue, PullRequest};
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// A repository on GitHub.
pub struct GitHub {
    http: Http,
    /// `owner/name`.
    repo: String,
}

impl GitHub {
    pub fn new(api: &str, repo: &str, token: &str) -> GitHub {
        let headers = vec![
            ("Authorization", format!("Bearer {token}")),
            ("Accept", "application/vnd.github+json".to_string()),
            ("X-GitHub-Api-Version", "2022-11-28".to_string()),
        ];
        GitHub { http: Http::new(api, headers), repo: repo.to_string() }
    }

    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.http.ok(method, &format!("/repos/{}{path}", self.repo), body)
    }
}

fn pull(v: &Value) -> Option<PullRequest> {
    Some(PullRequest { number: v["number"].as_u64()?, url: v["html_url"].as_str()?.to_string() })
}

impl Forge for GitHub {
    fn noun(&self) -> &'static str {
        "pull request"
    }

    fn pr_ref(&self, n: u64) -> String {
        format!("#{n}")
    }

    fn default_branch(&self) -> Result<String> {
        let v = self.ok("GET", "", None)?;
        v["default_branch"].as_str().map(String::from).context("the forge named no default branch")
    }

    fn find_open(&self, branch: &str) -> Result<Option<PullRequest>> {
        let owner = self.repo.split('/').next().unwrap_or("");
        let v = self.ok("GET", &format!("/pulls?state=open&head={}", encode(&format!("{owner}:{branch}"))), None)?;
        Ok(v.as_array().and_then(|a| a.first()).and_then(pull))
    }

    fn open(&self, head: &str, base: &str, title: &str, body: &str, draft: bool) -> Result<Option<PullRequest>> {
        let path = format!("/repos/{}/pulls", self.repo);
        let input = json!({"title": title, "head": head, "base": base, "body": body, "draft": draft});
        let (status, v) = self.http.call("POST", &path, Some(&input))?;
        if status == 422 && super::message(&v).contains("already exists") {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(super::refused("POST", &path, status, &v).into());
        }
        pull(&v).context("the forge's answer names no pull request").map(Some)
    }

    fn update(&self, number: u64, base: &str, title: &str, body: &str) -> Result<PullRequest> {
        let v =
            self.ok("PATCH", &format!("/pulls/{number}"), Some(&json!({"title": title, "body": body, "base": base})))?;
        pull(&v).context("the forge's answer names no pull request")
    }

    fn checks(&self, sha: &str) -> Result<Checks> {
        let runs = self.ok("GET", &format!("/commits/{sha}/check-runs?per_page=100"), None)?;
        let status = self.ok("GET", &format!("/commits/{sha}/status"), None)?;
        let mut c = Checks::default();
        for r in runs["check_runs"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or("?").to_string();
            match (r["status"].as_str(), r["conclusion"].as_str()) {
                (Some("completed"), Some("success" | "neutral" | "skipped")) => {}
                (Some("completed"), _) => c.failing.push(name),
                _ => c.pending.push(name),
            }
        }
        for s in status["statuses"].as_array().into_iter().flatten() {
            let name = s["context"].as_str().unwrap_or("?").to_string();
            match s["state"].as_str() {
                Some("success") => {}
                Some("pending") => c.pending.push(name),
                _ => c.failing.push(name),
            }
        }
        let seen = runs["check_runs"].as_array().is_some_and(|a| !a.is_empty())
            || status["statuses"].as_array().is_some_and(|a| !a.is_empty());
        c.done = seen && c.pending.is_empty();
        Ok(c)
    }

    fn open_issue(&self, title: &str, body: &str) -> Result<u64> {
        let v = self.ok("POST", "/issues", Some(&json!({"title": title, "body": body})))?;
        v["number"].as_u64().context("the forge's answer names no issue")
    }

    fn update_issue(&self, number: u64, title: &str, body: &str) -> Result<()> {
        self.ok("PATCH", &format!("/issues/{number}"), Some(&json!({"title": title, "body": body}))).map(|_| ())
    }

    fn open_issues(&self, label: Option<&str>) -> Result<Vec<Issue>> {
        let mut out = Vec::new();
        for page in 1..=50 {
            let mut path = format!("/issues?state=open&per_page=100&page={page}");
            if let Some(l) = label {
                path.push_str(&format!("&labels={}", encode(l)));
            }
            let v = self.ok("GET", &path, None)?;
            let items = v.as_array().cloned().unwrap_or_default();
            for i in &items {
                if i.get("pull_request").is_some() {
                    continue;
                }
                let (Some(number), Some(title)) = (i["number"].as_u64(), i["title"].as_str()) else { continue };
                out.push(Issue {
                    number,
                    title: title.to_string(),
                    body: i["body"].as_str().unwrap_or("").to_string(),
                });
            }
            if items.len() < 100 {
                break;
            }
        }
        Ok(out)
    }
}
