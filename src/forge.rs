//! The forge where a team reviews: GitHub's REST API (or a server speaking it, e.g. GitHub
//! Enterprise at `parallel.forgeApi`), to open or update a run's pull request. Every HTTP call
//! of the tool goes through here.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// A repository on the forge, and how to reach it.
pub struct Forge {
    api: String,
    /// `owner/name`.
    repo: String,
    token: String,
    agent: ureq::Agent,
}

/// A pull request as the forge shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
}

impl Forge {
    pub fn new(api: &str, repo: &str, token: &str) -> Forge {
        let agent = ureq::Agent::config_builder()
            // A refusal is an answer to read (its message says why), not a transport error.
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Forge { api: api.trim_end_matches('/').to_string(), repo: repo.to_string(), token: token.to_string(), agent }
    }

    /// `method path` with a JSON body; the status and the JSON answer.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let url = format!("{}/repos/{}{path}", self.api, self.repo);
        let auth = format!("Bearer {}", self.token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/vnd.github+json"),
            ("X-GitHub-Api-Version", "2022-11-28"),
            ("User-Agent", "git-parallel"),
        ];
        let answer = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                for (k, v) in headers {
                    r = r.header(k, v);
                }
                r.call()
            }
            (m, b) => {
                let mut r = match m {
                    "POST" => self.agent.post(&url),
                    "PATCH" => self.agent.patch(&url),
                    other => bail!("no such forge call: {other}"),
                };
                for (k, v) in headers {
                    r = r.header(k, v);
                }
                let text = b.cloned().unwrap_or(Value::Null).to_string();
                r.content_type("application/json").send(text.as_str())
            }
        };
        let mut resp = answer.with_context(|| format!("cannot reach the forge at {}", self.api))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// A call that must succeed: otherwise the forge's own message says why.
    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, v) = self.call(method, path, body)?;
        if !(200..300).contains(&status) {
            let msg = v["message"].as_str().map(String::from).unwrap_or_else(|| v.to_string());
            bail!("the forge refused {method} {path}: {status} {msg}");
        }
        Ok(v)
    }

    /// The repository's default branch (what a pull request goes into unless told).
    pub fn default_branch(&self) -> Result<String> {
        let v = self.ok("GET", "", None)?;
        v["default_branch"].as_str().map(String::from).context("the forge named no default branch")
    }

    /// The open pull request whose head is `branch` (of this repository), if any.
    pub fn find_open(&self, branch: &str) -> Result<Option<PullRequest>> {
        let owner = self.repo.split('/').next().unwrap_or("");
        let v = self.ok("GET", &format!("/pulls?state=open&head={owner}:{branch}"), None)?;
        Ok(v.as_array().and_then(|a| a.first()).and_then(pull))
    }

    pub fn open(&self, head: &str, base: &str, title: &str, body: &str, draft: bool) -> Result<PullRequest> {
        let v = self.ok(
            "POST",
            "/pulls",
            Some(&json!({"title": title, "head": head, "base": base, "body": body, "draft": draft})),
        )?;
        pull(&v).context("the forge's answer names no pull request")
    }

    pub fn update(&self, number: u64, base: &str, title: &str, body: &str) -> Result<PullRequest> {
        let v =
            self.ok("PATCH", &format!("/pulls/{number}"), Some(&json!({"title": title, "body": body, "base": base})))?;
        pull(&v).context("the forge's answer names no pull request")
    }
}

/// Where a commit's CI stands: its check runs and commit statuses together.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checks {
    /// Every check and status has ended (and there is at least one).
    pub done: bool,
    /// Names of those that ended otherwise than success (neutral and skipped count as passed).
    pub failing: Vec<String>,
    /// Names of those still queued or running.
    pub pending: Vec<String>,
}

impl Forge {
    /// The check runs and commit statuses of `sha`.
    pub fn checks(&self, sha: &str) -> Result<Checks> {
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
}

impl Forge {
    /// Open an issue; its number.
    pub fn open_issue(&self, title: &str, body: &str) -> Result<u64> {
        let v = self.ok("POST", "/issues", Some(&json!({"title": title, "body": body})))?;
        v["number"].as_u64().context("the forge's answer names no issue")
    }

    pub fn update_issue(&self, number: u64, title: &str, body: &str) -> Result<()> {
        self.ok("PATCH", &format!("/issues/{number}"), Some(&json!({"title": title, "body": body}))).map(|_| ())
    }
}

/// An open issue (not a pull request).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
}

impl Forge {
    /// Open issues, with `label` if given (pull requests, which the API lists too, left out).
    pub fn open_issues(&self, label: Option<&str>) -> Result<Vec<Issue>> {
        let mut out = Vec::new();
        for page in 1..=50 {
            let mut path = format!("/issues?state=open&per_page=100&page={page}");
            if let Some(l) = label {
                path.push_str(&format!("&labels={}", l.replace(' ', "%20").replace(',', "%2C")));
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

fn pull(v: &Value) -> Option<PullRequest> {
    Some(PullRequest { number: v["number"].as_u64()?, url: v["html_url"].as_str()?.to_string() })
}

/// `owner/name` of a GitHub remote URL (`git@github.com:o/r.git`, `https://github.com/o/r`,
/// `ssh://git@github.com/o/r.git`); `None` for other hosts and local paths.
pub fn repo_of_url(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("git@github.com:")
        .or_else(|| url.strip_prefix("https://github.com/"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = rest.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && !owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_remotes_name_their_repository() {
        for url in [
            "git@github.com:o/r.git",
            "https://github.com/o/r",
            "https://github.com/o/r.git/",
            "ssh://git@github.com/o/r.git",
        ] {
            assert_eq!(repo_of_url(url).as_deref(), Some("o/r"), "{url}");
        }
        for url in ["/srv/git/r.git", "https://gitlab.com/o/r.git", "https://github.com/o", "git@github.com:o/r/x"] {
            assert_eq!(repo_of_url(url), None, "{url}");
        }
    }
}
