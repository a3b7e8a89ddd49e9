//! The forge where a team reviews: GitHub (and GitHub Enterprise) over REST v3, GitLab over
//! REST v4. Which one, where its API is and which repository, from the remote's URL unless
//! `parallel.forge`, `parallel.forgeApi` and `parallel.forgeRepo` say; the token from the
//! environment or the forge's own command-line tool. Every HTTP call of the tool goes through
//! here, and every refusal comes back as an error saying what to do.

mod github;
mod gitlab;

pub use github::GitHub;
pub use gitlab::GitLab;

use crate::error::Error;
use anyhow::Result;
use serde_json::Value;
use std::time::Duration;

/// A pull request (GitHub) or merge request (GitLab) as the forge shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PullRequest {
    /// Its number in the repository (GitLab's `iid`).
    pub number: u64,
    pub url: String,
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

/// An open issue (not a pull request).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
}

/// What `publish` and `plan --from-issues` need of a forge.
pub trait Forge {
    /// What it calls a pull request.
    fn noun(&self) -> &'static str;
    /// How a description refers to pull request `n` (`#7`, `!7`).
    fn pr_ref(&self, n: u64) -> String;
    /// The repository's default branch (what a pull request goes into unless told).
    fn default_branch(&self) -> Result<String>;
    /// The open pull request whose head is `branch` of this repository, if any.
    fn find_open(&self, branch: &str) -> Result<Option<PullRequest>>;
    /// Open one; `None` when the forge says one is already open for `head`.
    fn open(&self, head: &str, base: &str, title: &str, body: &str, draft: bool) -> Result<Option<PullRequest>>;
    fn update(&self, number: u64, base: &str, title: &str, body: &str) -> Result<PullRequest>;
    /// The CI of `sha`: check runs and commit statuses.
    fn checks(&self, sha: &str) -> Result<Checks>;
    /// Open an issue; its number.
    fn open_issue(&self, title: &str, body: &str) -> Result<u64>;
    fn update_issue(&self, number: u64, title: &str, body: &str) -> Result<()>;
    /// Open issues, with `label` if given (pull requests left out).
    fn open_issues(&self, label: Option<&str>) -> Result<Vec<Issue>>;
}

/// The open pull request of `head` updated, else a new one; and whether it is new. Never a
/// second one: when the forge says one exists that the search did not show (opened meanwhile,
/// or listed late), that one is found again and updated.
pub fn open_or_update(
    f: &dyn Forge,
    head: &str,
    base: &str,
    title: &str,
    body: &str,
    draft: bool,
) -> Result<(PullRequest, bool)> {
    if let Some(pr) = f.find_open(head)? {
        return Ok((f.update(pr.number, base, title, body)?, false));
    }
    if let Some(pr) = f.open(head, base, title, body, draft)? {
        return Ok((pr, true));
    }
    match f.find_open(head)? {
        Some(pr) => Ok((f.update(pr.number, base, title, body)?, false)),
        None => Err(Error::failed(format!("the forge says a {} from {head} exists, but lists no open one", f.noun()))
            .with_hint("look for it on the forge (it may be closed: reopen or delete it), then publish again")
            .into()),
    }
}

/// Which forge a repository is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GitHub,
    GitLab,
}

/// A repository on a forge: what kind, its API, its name there, the host its token is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub kind: Kind,
    pub api: String,
    /// `owner/name` (GitLab: `group/sub/name`).
    pub repo: String,
    pub host: String,
}

/// The host and path of a remote URL (`git@host:o/r.git`, `https://host/o/r`,
/// `ssh://git@host:22/o/r.git`); `None` for local paths and `file://`.
pub fn host_and_path(url: &str) -> Option<(String, String)> {
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if scheme == "file" {
            return None;
        }
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        (host.split(':').next()?.to_string(), path.to_string())
    } else {
        // scp-like: [user@]host:path, where the colon comes before any slash.
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') || authority.is_empty() {
            return None;
        }
        (authority.rsplit('@').next()?.to_string(), path.to_string())
    };
    let path = path.trim_matches('/').trim_end_matches(".git").trim_matches('/').to_string();
    (!host.is_empty() && path.contains('/') && !path.split('/').any(str::is_empty)).then_some((host, path))
}

/// Where the forge of a remote at `url` is, given the `parallel.forge*` overrides.
pub fn detect(url: &str, kind: Option<&str>, api: Option<&str>, repo: Option<&str>) -> Result<Target> {
    let parsed = host_and_path(url);
    let kind = match kind {
        Some("github") => Kind::GitHub,
        Some("gitlab") => Kind::GitLab,
        Some(other) => {
            return Err(Error::usage(format!("parallel.forge is `{other}`: I know github and gitlab"))
                .with_hint("git config parallel.forge github (or gitlab)")
                .into())
        }
        None if parsed.as_ref().is_some_and(|(h, _)| h.contains("gitlab")) => Kind::GitLab,
        None if api.is_some_and(|a| a.trim_end_matches('/').ends_with("/api/v4")) => Kind::GitLab,
        None => Kind::GitHub,
    };
    let repo = match (repo, &parsed) {
        (Some(r), _) => r.to_string(),
        (None, Some((_, path))) if kind == Kind::GitLab || path.matches('/').count() == 1 => path.clone(),
        _ => {
            return Err(Error::usage(format!("the remote's URL ({url}) names no repository on a forge"))
                .with_hint("name it: git config parallel.forgeRepo OWNER/NAME")
                .into())
        }
    };
    let api = match (api, &parsed) {
        (Some(a), _) => a.trim_end_matches('/').to_string(),
        (None, Some((host, _))) => match kind {
            Kind::GitHub if host == "github.com" => "https://api.github.com".to_string(),
            Kind::GitHub => format!("https://{host}/api/v3"),
            Kind::GitLab => format!("https://{host}/api/v4"),
        },
        (None, None) => {
            return Err(Error::usage(format!("the remote's URL ({url}) names no forge host"))
                .with_hint("name its API: git config parallel.forgeApi https://HOST/api/v3")
                .into())
        }
    };
    // A token sent in the clear goes to this machine only.
    if let Some(rest) = api.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        let loopback = matches!(host, "127.0.0.1" | "localhost") || rest.starts_with("[::1]");
        if !loopback {
            return Err(Error::usage(format!("parallel.forgeApi {api}: plain http only on this machine (127.0.0.1)"))
                .with_hint("use https://")
                .into());
        }
    }
    let host = match &parsed {
        Some((h, _)) => h.clone(),
        None => api.split("://").nth(1).and_then(|r| r.split(['/', ':']).next()).unwrap_or("").to_string(),
    };
    Ok(Target { kind, api, repo, host })
}

/// The forge client for `t`, with its token: `GITHUB_TOKEN`, `GH_TOKEN` (on an Enterprise host
/// also `GH_ENTERPRISE_TOKEN`), else `gh auth token`; `GITLAB_TOKEN`, else `glab`'s.
pub fn connect(t: &Target) -> Result<Box<dyn Forge>> {
    let env = |keys: &[&str]| keys.iter().find_map(|k| std::env::var(k).ok().filter(|t| !t.is_empty()));
    let cli = |program: &str, args: &[&str]| {
        crate::proc::which(program)?;
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = crate::proc::tool(program, &args, None).ok()?;
        Some(out.stdout_str().trim().to_string()).filter(|t| out.ok() && !t.is_empty())
    };
    match t.kind {
        Kind::GitHub => {
            let enterprise = t.host != "github.com" && t.api != "https://api.github.com";
            let token = env(&["GITHUB_TOKEN", "GH_TOKEN"])
                .or_else(|| if enterprise { env(&["GH_ENTERPRISE_TOKEN"]) } else { None })
                .or_else(|| {
                    if enterprise && !t.host.is_empty() {
                        cli("gh", &["auth", "token", "--hostname", &t.host])
                    } else {
                        cli("gh", &["auth", "token"])
                    }
                });
            let Some(token) = token else {
                return Err(Error::usage("the forge needs a token in GITHUB_TOKEN or GH_TOKEN (or `gh auth login`)")
                    .with_hint("export GITHUB_TOKEN=... (a token that may write pull requests and issues)")
                    .into());
            };
            Ok(Box::new(GitHub::new(&t.api, &t.repo, &token)))
        }
        Kind::GitLab => {
            let token = env(&["GITLAB_TOKEN"]).or_else(|| cli("glab", &["config", "get", "token", "--host", &t.host]));
            let Some(token) = token else {
                return Err(Error::usage("the forge needs a token in GITLAB_TOKEN (or `glab auth login`)")
                    .with_hint("export GITLAB_TOKEN=... (a token with the `api` scope)")
                    .into());
            };
            Ok(Box::new(GitLab::new(&t.api, &t.repo, &token)))
        }
    }
}

/// `s` for a path segment or a query value.
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// HTTP to a forge's API: JSON in and out, its refusals turned into errors that say what to do.
pub(crate) struct Http {
    api: String,
    headers: Vec<(&'static str, String)>,
    agent: ureq::Agent,
}

impl Http {
    pub(crate) fn new(api: &str, headers: Vec<(&'static str, String)>) -> Http {
        let agent = ureq::Agent::config_builder()
            // A refusal is an answer to read (its message says why), not a transport error.
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            // The system's roots (and SSL_CERT_FILE / SSL_CERT_DIR), as git and curl trust them.
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build())
            .build()
            .into();
        Http { api: api.trim_end_matches('/').to_string(), headers, agent }
    }

    /// `method path` (under the API base) with a JSON body; the status and the JSON answer.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.api);
        macro_rules! with_headers {
            ($r:expr) => {{
                let mut r = $r;
                for (k, v) in &self.headers {
                    r = r.header(*k, v.as_str());
                }
                r.header("User-Agent", "git-parallel")
            }};
        }
        let text = body.cloned().unwrap_or(Value::Null).to_string();
        let answer = match method {
            "GET" => with_headers!(self.agent.get(&url)).call(),
            "POST" => with_headers!(self.agent.post(&url)).content_type("application/json").send(text.as_str()),
            "PATCH" => with_headers!(self.agent.patch(&url)).content_type("application/json").send(text.as_str()),
            "PUT" => with_headers!(self.agent.put(&url)).content_type("application/json").send(text.as_str()),
            other => anyhow::bail!("no such forge call: {other}"),
        };
        let mut resp = answer.map_err(|e| {
            Error::failed(format!("cannot reach the forge at {}: {e}", self.api)).with_hint(
                "check the network (and parallel.forgeApi if it is set), then run the same command again; \
                 nothing was lost",
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// A call that must succeed: otherwise the forge's own message, and what to do about it.
    pub(crate) fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, v) = self.call(method, path, body)?;
        if !(200..300).contains(&status) {
            return Err(refused(method, path, status, &v).into());
        }
        Ok(v)
    }
}

/// The forge's own words in an error answer (GitHub: `message` and `errors[].message`;
/// GitLab: `message` as text, list or map, or `error`).
pub(crate) fn message(v: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    match &v["message"] {
        Value::String(s) => parts.push(s.clone()),
        Value::Array(a) => parts.extend(a.iter().map(|m| m.as_str().map(String::from).unwrap_or(m.to_string()))),
        Value::Object(_) => parts.push(v["message"].to_string()),
        _ => {}
    }
    for e in v["errors"].as_array().into_iter().flatten() {
        if let Some(m) = e["message"].as_str().or(e.as_str()) {
            parts.push(m.to_string());
        }
    }
    if let Some(e) = v["error"].as_str() {
        parts.push(e.to_string());
    }
    if parts.is_empty() {
        if let Value::String(s) = v {
            parts.push(s.chars().take(200).collect());
        }
    }
    parts.join(": ")
}

/// A refusal as an error: the forge's status and words, and a hint naming what to do.
pub(crate) fn refused(method: &str, path: &str, status: u16, v: &Value) -> Error {
    let hint = match status {
        401 => "the token was refused: set a valid one (GITHUB_TOKEN, GH_TOKEN or GITLAB_TOKEN), then run the same command again",
        403 => "the token may not do this (it needs write access to pull requests and issues, or a rate limit was reached): fix that, then run the same command again",
        404 => "check the repository's name (git config parallel.forgeRepo OWNER/NAME) and that the token can see it, then run the same command again",
        409 => "the forge changed meanwhile: run the same command again",
        400 | 422 => "the forge would not take it (a protected or missing branch, a closed pull request, a field it refuses): fix that on the forge, then run the same command again",
        500..=599 => "the forge failed: run the same command again later",
        _ => "run the same command again once the forge accepts it",
    };
    Error::failed(format!("the forge refused {method} {path}: {status} {}", message(v))).with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_name_their_host_and_repository() {
        for (url, host, path) in [
            ("git@github.com:o/r.git", "github.com", "o/r"),
            ("https://github.com/o/r", "github.com", "o/r"),
            ("https://github.com/o/r.git/", "github.com", "o/r"),
            ("ssh://git@github.com/o/r.git", "github.com", "o/r"),
            ("ssh://git@gitlab.example.org:2222/g/sub/r.git", "gitlab.example.org", "g/sub/r"),
            ("https://user@ghe.corp.example/o/r.git", "ghe.corp.example", "o/r"),
        ] {
            assert_eq!(host_and_path(url), Some((host.to_string(), path.to_string())), "{url}");
        }
        for url in ["/srv/git/r.git", "file:///srv/git/r.git", "https://github.com/o", "./r.git", "C:o"] {
            assert_eq!(host_and_path(url), None, "{url}");
        }
    }

    #[test]
    fn the_forge_is_detected_from_the_url_unless_configured() {
        let t = detect("git@github.com:o/r.git", None, None, None).unwrap();
        assert_eq!((t.kind, t.api.as_str(), t.repo.as_str()), (Kind::GitHub, "https://api.github.com", "o/r"));
        let t = detect("https://ghe.corp.example/o/r.git", None, None, None).unwrap();
        assert_eq!((t.kind, t.api.as_str()), (Kind::GitHub, "https://ghe.corp.example/api/v3"));
        let t = detect("git@gitlab.com:g/sub/r.git", None, None, None).unwrap();
        assert_eq!((t.kind, t.api.as_str(), t.repo.as_str()), (Kind::GitLab, "https://gitlab.com/api/v4", "g/sub/r"));
        let t = detect("https://code.corp.example/g/r", Some("gitlab"), None, None).unwrap();
        assert_eq!((t.kind, t.api.as_str()), (Kind::GitLab, "https://code.corp.example/api/v4"));
        let t = detect("/srv/r.git", None, Some("http://127.0.0.1:9/api/v4/"), Some("g/r")).unwrap();
        assert_eq!((t.kind, t.api.as_str(), t.host.as_str()), (Kind::GitLab, "http://127.0.0.1:9/api/v4", "127.0.0.1"));
        // A GitHub repository is exactly owner/name.
        assert!(detect("git@github.com:o/r/x", None, None, None).is_err());
        assert!(detect("/srv/r.git", None, None, Some("o/r")).is_err(), "no API for a local remote");
        assert!(detect("/srv/r.git", Some("bitbucket"), Some("https://x"), Some("o/r")).is_err());
        assert!(detect("/srv/r.git", None, Some("http://forge.example.com/api/v3"), Some("o/r")).is_err());
    }

    #[test]
    fn refusals_carry_the_forges_words() {
        let gh = serde_json::json!({"message": "Validation Failed", "errors": [{"message": "A pull request already exists for o:b."}]});
        assert_eq!(message(&gh), "Validation Failed: A pull request already exists for o:b.");
        let gl =
            serde_json::json!({"message": ["Another open merge request already exists for this source branch: !1"]});
        assert_eq!(message(&gl), "Another open merge request already exists for this source branch: !1");
        let e = refused("POST", "/pulls", 403, &serde_json::json!({"message": "Resource not accessible"}));
        assert!(e.message.contains("403 Resource not accessible") && e.hint.unwrap().contains("write access"));
    }
}
