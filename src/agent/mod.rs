//! Agent profiles: how to start each agent headless, and how to read what it prints.
//!
//! Verified against the real CLIs (see the README's agent table for versions):
//! - `claude`: `claude -p <prompt> --output-format stream-json --verbose --permission-mode
//!   bypassPermissions`, resumable with `--resume <session>`.
//! - `codex`: `codex exec --json -s workspace-write ... <prompt>` (resumable with `codex exec ...
//!   resume <thread> <prompt>`), with a private `CODEX_HOME` seeded from the user's.
//! - `gemini`: `gemini --skip-trust --yolo -o stream-json -p <prompt>` (resumable with
//!   `--resume <session>`), with a private `GEMINI_CLI_HOME` seeded from the user's.
//! - `aider`: `aider --message <prompt> --yes-always --no-auto-commits ...`, plain text, with a
//!   private `HOME` seeded with the user's aider configuration.
//! - `custom`: a command template with `{prompt}`, `{prompt_file}`, `{worktree}`, `{task}`;
//!   its output is read as Claude stream-json when it prints that.
//!
//! Every profile but `claude` and `custom` gets a private home and `TMPDIR` per task, under the
//! worktree's own git directory: concurrent agents never share session stores, caches or
//! temporary files, and a resumed task finds its own sessions again.

pub mod parse;

use crate::error::usage;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub use parse::{Format, Parser, ResultInfo, Update};

pub const PROFILES: &[&str] = &["claude", "codex", "gemini", "aider", "custom"];

/// Prompts longer than this go to Claude Code on stdin rather than as an argument.
pub const LONG_PROMPT: usize = 100_000;

/// How to start one agent process.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: String,
    pub args: Vec<String>,
    pub format: Format,
    /// Environment for this agent on top of the inherited one (private home, `TMPDIR`).
    pub envs: Vec<(String, String)>,
    /// Directories to create before the agent starts.
    pub dirs: Vec<PathBuf>,
    /// Files to write before the agent starts (configuration seeded into the private home).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// Symbolic links to make before the agent starts (link, target): the user's credentials,
    /// shared rather than copied, so that a refreshed token reaches the user's own file and a
    /// rotated one does not leave it stale.
    pub links: Vec<(PathBuf, PathBuf)>,
    /// Paths (relative to the worktree) the agent leaves behind that are never its work,
    /// such as Aider's repository-map cache: removed before the result is committed, when
    /// the repository does not track them.
    pub leftovers: Vec<String>,
    /// A file to give the agent on stdin (long prompts; otherwise /dev/null).
    pub stdin: Option<PathBuf>,
    /// Git configuration for the agent's own git (passed as environment, never written).
    pub git_config: Vec<(String, String)>,
}

impl Invocation {
    fn new(program: &str, args: Vec<String>, format: Format) -> Self {
        Invocation {
            program: program.into(),
            args,
            format,
            envs: Vec::new(),
            dirs: Vec::new(),
            files: Vec::new(),
            links: Vec::new(),
            leftovers: Vec::new(),
            stdin: None,
            git_config: Vec::new(),
        }
    }

    /// Create the private directories and write the seeded configuration, inside `base` (the
    /// agent's own part of the task folder): a link an earlier attempt left in the way is
    /// replaced, never written through.
    pub fn prepare(&self, base: &Path) -> Result<()> {
        use crate::exec::taskdir;
        let inside = |p: &Path| -> Result<()> {
            anyhow::ensure!(p.starts_with(base), "{} is outside the agent's state {}", p.display(), base.display());
            Ok(())
        };
        std::fs::create_dir_all(base).with_context(|| format!("cannot create {}", base.display()))?;
        for d in &self.dirs {
            inside(d)?;
            taskdir::plain_dir(base, d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        for (path, bytes) in &self.files {
            inside(path)?;
            if let Some(parent) = path.parent() {
                taskdir::plain_dir(base, parent)?;
            }
            taskdir::write_new(path, bytes)?;
        }
        for (link, target) in &self.links {
            inside(link)?;
            if let Some(parent) = link.parent() {
                taskdir::plain_dir(base, parent)?;
            }
            taskdir::remove_entry(link)?;
            std::os::unix::fs::symlink(target, link).with_context(|| format!("cannot link {}", link.display()))?;
        }
        Ok(())
    }
}

/// What the invocation needs to know about the task.
pub struct TaskInput<'a> {
    pub prompt: &'a str,
    /// The prompt as a file, in the worktree's private git directory.
    pub prompt_file: &'a Path,
    pub worktree: &'a Path,
    pub task: &'a str,
    /// A session to continue (resume after an interruption), when the profile supports it.
    pub resume_session: Option<&'a str>,
    /// The task's private agent state (homes, temporary files), in the part of the task folder
    /// the agent may write: never committed, kept across retries and orchestrator restarts.
    pub state: &'a Path,
    /// Under `--sandbox`, where the user's home is read-only.
    pub sandboxed: bool,
    /// The most turns the agent may take (front matter `max_turns:`), for CLIs that take a
    /// limit (see [`takes_max_turns`]).
    pub max_turns: Option<u32>,
}

impl TaskInput<'_> {
    pub fn state_dir(&self) -> PathBuf {
        self.state.to_path_buf()
    }
}

/// Whether a profile's CLI takes a limit on its turns: Claude Code `--max-turns N`; Gemini
/// CLI the setting `model.maxSessionTurns` (in the private settings we give it); a custom
/// command `{max_turns}` or `$GIT_PARALLEL_MAX_TURNS`. Codex (`codex exec`) and Aider have none.
pub fn takes_max_turns(profile: &str) -> bool {
    matches!(profile, "claude" | "gemini" | "custom")
}

/// Whether a profile can continue a recorded session.
pub fn supports_resume(profile: &str) -> bool {
    matches!(profile, "claude" | "codex" | "gemini")
}

/// Build the command line for `profile`, reading the user's own agent configuration from
/// the current environment.
pub fn invocation(profile: &str, template: Option<&str>, t: &TaskInput) -> Result<Invocation> {
    invocation_in(profile, template, t, &|k| std::env::var_os(k).map(PathBuf::from))
}

/// `invocation` with the environment given (tests).
pub fn invocation_in(
    profile: &str,
    template: Option<&str>,
    t: &TaskInput,
    env: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<Invocation> {
    let home = env("HOME");
    let state = t.state_dir();
    let tmp = state.join("tmp");
    let mut inv = invocation_for(profile, template, t, env, home, &state, &tmp)?;
    if t.sandboxed {
        // The user's home is hidden in the sandbox: credentials are copied in, not linked.
        for (link, target) in std::mem::take(&mut inv.links) {
            if let Ok(bytes) = std::fs::read(&target) {
                inv.files.push((link, bytes));
            }
        }
    }
    Ok(inv)
}

fn invocation_for(
    profile: &str,
    template: Option<&str>,
    t: &TaskInput,
    env: &dyn Fn(&str) -> Option<PathBuf>,
    home: Option<PathBuf>,
    state: &Path,
    tmp: &Path,
) -> Result<Invocation> {
    let s = |x: &str| x.to_string();
    let tmp = tmp.to_path_buf();
    Ok(match profile {
        "claude" => {
            // One argument may hold at most 128 KiB (Linux's MAX_ARG_STRLEN): a longer prompt
            // goes on stdin, which `claude -p` reads when no prompt is given.
            let long = t.prompt.len() > LONG_PROMPT;
            let mut args = vec![s("-p")];
            if !long {
                args.push(s(t.prompt));
            }
            args.extend([s("--output-format"), s("stream-json"), s("--verbose")]);
            args.extend([s("--permission-mode"), s("bypassPermissions")]);
            if let Some(n) = t.max_turns {
                args.extend([s("--max-turns"), n.to_string()]);
            }
            if let Some(session) = t.resume_session {
                args.extend([s("--resume"), s(session)]);
            }
            let mut inv = Invocation::new("claude", args, Format::ClaudeStreamJson);
            if long {
                inv.stdin = Some(t.prompt_file.to_path_buf());
            }
            if t.sandboxed {
                // The home is read-only in the sandbox, and Claude Code writes under ~/.claude
                // before every Bash call: a private home, seeded with the user's settings and
                // sharing the login.
                let claude_home = state.join("claude-home");
                let dot = claude_home.join(".claude");
                inv.files = seed(home.as_deref(), &claude_home, &[".claude.json"]);
                inv.files.extend(seed(home.as_ref().map(|h| h.join(".claude")).as_deref(), &dot, &["settings.json"]));
                inv.links = share(home.as_ref().map(|h| h.join(".claude")).as_deref(), &dot, &[".credentials.json"]);
                inv.dirs = vec![claude_home.clone(), dot, tmp.clone()];
                inv.envs = vec![(s("HOME"), path(&claude_home)), (s("TMPDIR"), path(&tmp))];
            }
            inv
        }
        "codex" => {
            // Quiet and offline-safe: no analytics, feedback, update check or plugin fetches,
            // and a refused connection fails instead of retrying forever.
            let mut args = vec![s("exec"), s("--json"), s("-s"), s("workspace-write"), s("--skip-git-repo-check")];
            if t.sandboxed {
                // Its own bubblewrap would mount over /tmp/.git, which it cannot create in our
                // read-only root: every write would then fail.
                args.extend([s("-c"), s("sandbox_workspace_write.exclude_slash_tmp=true")]);
            }
            for c in ["analytics.enabled=false", "feedback.enabled=false", "check_for_update_on_startup=false"] {
                args.extend([s("-c"), s(c)]);
            }
            for f in ["plugins", "remote_plugin", "apps", "unbounded_connection_retries"] {
                args.extend([s("--disable"), s(f)]);
            }
            match t.resume_session {
                Some(session) => args.extend([s("resume"), s(session), s(t.prompt)]),
                None => args.push(s(t.prompt)),
            }
            let codex_home = state.join("codex-home");
            let user = env("CODEX_HOME").or_else(|| home.as_ref().map(|h| h.join(".codex")));
            let mut inv = Invocation::new("codex", args, Format::CodexJson);
            // The user's provider, model and login; sessions stay in the private home.
            inv.files = seed(user.as_deref(), &codex_home, &["config.toml"]);
            inv.links = share(user.as_deref(), &codex_home, &["auth.json"]);
            // Codex's sandbox fails every write silently when TMPDIR does not exist, or is
            // /tmp while CODEX_HOME is under /tmp: a private, existing TMPDIR avoids both.
            inv.dirs = vec![codex_home.clone(), tmp.clone()];
            inv.envs = vec![(s("CODEX_HOME"), path(&codex_home)), (s("TMPDIR"), path(&tmp))];
            inv
        }
        "gemini" => {
            let mut args = vec![s("--skip-trust"), s("--yolo"), s("--output-format"), s("stream-json")];
            if let Some(session) = t.resume_session {
                args.extend([s("--resume"), s(session)]);
            }
            args.extend([s("-p"), s(t.prompt)]);
            let gemini_home = state.join("gemini-home");
            let user = env("GEMINI_CLI_HOME").or(home.clone()).map(|h| h.join(".gemini"));
            let dot = gemini_home.join(".gemini");
            let mut inv = Invocation::new("gemini", args, Format::GeminiStreamJson);
            inv.files = seed(user.as_deref(), &dot, &[".env", "GEMINI.md"]);
            inv.links = share(user.as_deref(), &dot, &["oauth_creds.json", "google_accounts.json"]);
            let user_settings = user.as_ref().and_then(|u| std::fs::read(u.join("settings.json")).ok());
            let api_key = env("GEMINI_API_KEY").is_some();
            inv.files
                .push((dot.join("settings.json"), gemini_settings(user_settings.as_deref(), api_key, t.max_turns)?));
            inv.dirs = vec![tmp.clone()];
            inv.envs = vec![
                (s("GEMINI_CLI_HOME"), path(&gemini_home)),
                (s("TMPDIR"), path(&tmp)),
                // Run in this process rather than relaunching node with a bigger heap: half the
                // start-up time and memory.
                (s("GEMINI_CLI_NO_RELAUNCH"), s("true")),
                (s("GEMINI_TELEMETRY_ENABLED"), s("false")),
            ];
            inv
        }
        "aider" => {
            let aider_home = state.join("aider-home");
            let mut args = vec![s("--message"), s(t.prompt), s("--yes-always"), s("--no-auto-commits")];
            for a in [
                "--no-check-update",
                "--no-analytics",
                "--no-show-release-notes",
                "--no-show-model-warnings",
                "--no-gitignore",
                "--no-pretty",
                "--no-fancy-input",
                "--no-restore-chat-history",
            ] {
                args.push(s(a));
            }
            // Its histories would otherwise land in the worktree and be committed.
            args.extend([s("--chat-history-file"), path(&aider_home.join("chat-history.md"))]);
            args.extend([s("--input-history-file"), path(&aider_home.join("input-history"))]);
            let mut inv = Invocation::new("aider", args, Format::AiderText);
            inv.files = seed(
                home.as_deref(),
                &aider_home,
                &[
                    ".aider.conf.yml",
                    ".env",
                    ".aider.model.settings.yml",
                    ".aider.model.metadata.json",
                    // Its model list, fetched when missing: once per task otherwise.
                    ".aider/caches/model_prices_and_context_window.json",
                ],
            );
            inv.dirs = vec![aider_home.clone(), tmp.clone()];
            inv.envs = vec![
                (s("HOME"), path(&aider_home)),
                (s("TMPDIR"), path(&tmp)),
                // litellm fetches its model price list at every start unless told to use its own.
                (s("LITELLM_LOCAL_MODEL_COST_MAP"), s("True")),
            ];
            // With HOME private, git would lose the user's identity and settings.
            if env("GIT_CONFIG_GLOBAL").is_none() {
                let global = home.as_ref().map(|h| h.join(".gitconfig")).filter(|p| p.is_file());
                inv.envs.push((s("GIT_CONFIG_GLOBAL"), global.map_or_else(|| s("/dev/null"), |g| path(&g))));
            }
            // Aider writes a placeholder identity into the repository's config when `git config
            // user.name` finds none (identity from GIT_AUTHOR_* only): under --sandbox that
            // config is read-only, and it is not the agent's to change anyway. Give it the
            // identity git would use, as command-line configuration.
            if let Ok(ident) = crate::proc::git(t.worktree, ["var", "GIT_AUTHOR_IDENT"]) {
                if let Some((name, rest)) = ident.split_once(" <") {
                    let email = rest.split_once('>').map_or(rest, |(e, _)| e);
                    inv.git_config = vec![(s("user.name"), s(name)), (s("user.email"), s(email))];
                }
            }
            inv.leftovers = vec![s(".aider.tags.cache.v4")];
            inv
        }
        "custom" => {
            let template = template.ok_or_else(|| {
                usage("the custom agent needs a command template: --agent-command or `git config parallel.agentCommand`, e.g. 'my-agent --file {prompt_file}'")
            })?;
            let words = shell_words::split(template).map_err(|e| usage(format!("agent command template: {e}")))?;
            let fill = |w: &str| {
                w.replace("{prompt_file}", &t.prompt_file.to_string_lossy())
                    .replace("{worktree}", &t.worktree.to_string_lossy())
                    .replace("{task}", t.task)
                    .replace("{max_turns}", &t.max_turns.map(|n| n.to_string()).unwrap_or_default())
                    .replace("{prompt}", t.prompt)
            };
            let mut words = words.iter().map(|w| fill(w));
            let program = words.next().ok_or_else(|| usage("the agent command template is empty"))?;
            Invocation::new(&program, words.collect(), Format::ClaudeStreamJson)
        }
        other => return Err(usage(format!("unknown agent `{other}` (known: {})", PROFILES.join(", ")))),
    })
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Copies of the user's configuration files `names` from `from` into `to`, those that exist.
/// Links in `to` to the user's files `names` in `from`, those that exist.
fn share(from: Option<&Path>, to: &Path, names: &[&str]) -> Vec<(PathBuf, PathBuf)> {
    let Some(from) = from else { return Vec::new() };
    names.iter().filter(|n| from.join(n).is_file()).map(|n| (to.join(n), from.join(n))).collect()
}

fn seed(from: Option<&Path>, to: &Path, names: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    let Some(from) = from else { return Vec::new() };
    names.iter().filter_map(|n| Some((to.join(n), std::fs::read(from.join(n)).ok()?))).collect()
}

/// The user's Gemini CLI settings with telemetry and update checks off, and API-key
/// authentication chosen when a key is set and the user chose nothing (headless, the CLI
/// cannot ask).
fn gemini_settings(user: Option<&[u8]>, api_key: bool, max_turns: Option<u32>) -> Result<Vec<u8>> {
    let mut v: Value = match user {
        Some(bytes) => serde_json::from_slice(bytes).context("the user's Gemini CLI settings.json is not JSON")?,
        None => json!({}),
    };
    if !v.is_object() {
        v = json!({});
    }
    let mut set = |pointer: &str, value: Value, keep_user: bool| {
        let keys: Vec<&str> = pointer.split('/').collect();
        let mut cur = &mut v;
        for k in &keys[..keys.len() - 1] {
            if !cur[*k].is_object() {
                cur[*k] = json!({});
            }
            cur = &mut cur[*k];
        }
        let last = keys[keys.len() - 1];
        // The user's own choice stands where `keep_user`.
        if !keep_user || cur[last].is_null() {
            cur[last] = value;
        }
    };
    set("privacy/usageStatisticsEnabled", json!(false), false);
    set("telemetry/enabled", json!(false), false);
    set("general/enableAutoUpdate", json!(false), false);
    set("general/enableAutoUpdateNotification", json!(false), false);
    if api_key {
        set("security/auth/selectedType", json!("gemini-api-key"), true);
    }
    if let Some(n) = max_turns {
        set("model/maxSessionTurns", json!(n), false);
    }
    Ok(serde_json::to_vec_pretty(&v)?)
}

/// Remove the profile's leftovers from the worktree, those the repository does not track
/// (`tracked` tells, without reading the worktree's own git configuration).
pub fn remove_leftovers(inv: &Invocation, worktree: &Path, tracked: &dyn Fn(&str) -> Result<bool>) -> Result<()> {
    for rel in &inv.leftovers {
        let p = worktree.join(rel);
        if p.symlink_metadata().is_err() || tracked(rel)? {
            continue;
        }
        crate::exec::taskdir::remove_entry(&p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(prompt_file: &'a Path, resume: Option<&'a str>) -> TaskInput<'a> {
        let state: &'a Path = Box::leak(prompt_file.with_file_name("parallel-agent").into_boxed_path());
        TaskInput {
            prompt: "do it",
            prompt_file,
            worktree: Path::new("/w"),
            task: "t",
            resume_session: resume,
            state,
            sandboxed: false,
            max_turns: None,
        }
    }

    #[test]
    fn codex_gets_a_private_home_seeded_from_the_users() {
        let user = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(user.path().join(".codex")).unwrap();
        std::fs::write(user.path().join(".codex/config.toml"), "model = \"m\"\n").unwrap();
        std::fs::write(user.path().join(".codex/auth.json"), "{}").unwrap();
        let pf = Path::new("/g/wt/parallel-prompt.md");
        let home = user.path().to_path_buf();
        let env = move |k: &str| (k == "HOME").then(|| home.clone());
        let inv = invocation_in("codex", None, &input(pf, None), &env).unwrap();
        assert_eq!(&inv.args[..5], ["exec", "--json", "-s", "workspace-write", "--skip-git-repo-check"]);
        assert!(!inv.args.iter().any(|a| a == "--full-auto"));
        assert_eq!(inv.args.last().unwrap(), "do it");
        assert!(inv.envs.contains(&("CODEX_HOME".into(), "/g/wt/parallel-agent/codex-home".into())));
        assert!(inv.envs.contains(&("TMPDIR".into(), "/g/wt/parallel-agent/tmp".into())));
        assert!(inv.dirs.contains(&PathBuf::from("/g/wt/parallel-agent/tmp")));
        assert_eq!(
            inv.files,
            vec![(PathBuf::from("/g/wt/parallel-agent/codex-home/config.toml"), b"model = \"m\"\n".to_vec())]
        );
        let auth = user.path().join(".codex/auth.json");
        assert_eq!(inv.links, vec![(PathBuf::from("/g/wt/parallel-agent/codex-home/auth.json"), auth.clone())]);

        // Prepared for real: the login is the user's own file, shared.
        let git_dir = tempfile::tempdir().unwrap();
        let pf_real = git_dir.path().join("parallel-prompt.md");
        let inv = invocation_in("codex", None, &input(&pf_real, None), &env).unwrap();
        let state = git_dir.path().join("parallel-agent");
        inv.prepare(&state).unwrap();
        inv.prepare(&state).unwrap();
        let home = git_dir.path().join("parallel-agent/codex-home");
        std::fs::write(home.join("auth.json"), "{\"refreshed\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(&auth).unwrap(), "{\"refreshed\":1}");
        assert_eq!(std::fs::read_to_string(home.join("config.toml")).unwrap(), "model = \"m\"\n");
        assert!(git_dir.path().join("parallel-agent/tmp").is_dir());

        let resumed = invocation_in("codex", None, &input(pf, Some("th-1")), &env).unwrap();
        let n = resumed.args.len();
        assert_eq!(resumed.args[n - 3..], ["resume", "th-1", "do it"]);
    }

    #[test]
    fn gemini_settings_keep_the_users_and_turn_telemetry_off() {
        let user = br#"{"model":{"name":"gemini-x"},"security":{"auth":{"selectedType":"oauth-personal"}},"privacy":{"usageStatisticsEnabled":true}}"#;
        let v: Value = serde_json::from_slice(&gemini_settings(Some(user), true, None).unwrap()).unwrap();
        assert_eq!(v["model"]["name"], "gemini-x");
        assert_eq!(v["security"]["auth"]["selectedType"], "oauth-personal", "the user's choice stands");
        assert_eq!(v["privacy"]["usageStatisticsEnabled"], false);
        let v: Value = serde_json::from_slice(&gemini_settings(None, true, None).unwrap()).unwrap();
        assert_eq!(v["security"]["auth"]["selectedType"], "gemini-api-key");
        let v: Value = serde_json::from_slice(&gemini_settings(None, false, None).unwrap()).unwrap();
        assert!(v["security"]["auth"]["selectedType"].is_null());

        let pf = Path::new("/g/wt/parallel-prompt.md");
        let inv = invocation_in("gemini", None, &input(pf, Some("s-1")), &|_| None).unwrap();
        assert_eq!(
            inv.args,
            ["--skip-trust", "--yolo", "--output-format", "stream-json", "--resume", "s-1", "-p", "do it"]
        );
        assert!(inv.envs.contains(&("GEMINI_CLI_HOME".into(), "/g/wt/parallel-agent/gemini-home".into())));
    }

    #[test]
    fn aider_keeps_its_files_out_of_the_worktree_and_the_users_git_identity() {
        let user = tempfile::tempdir().unwrap();
        std::fs::write(user.path().join(".gitconfig"), "[user]\nname = U\n").unwrap();
        std::fs::write(user.path().join(".aider.conf.yml"), "model: x\n").unwrap();
        let home = user.path().to_path_buf();
        let env = move |k: &str| (k == "HOME").then(|| home.clone());
        let pf = Path::new("/g/wt/parallel-prompt.md");
        let inv = invocation_in("aider", None, &input(pf, None), &env).unwrap();
        let at = |flag: &str| inv.args[inv.args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(at("--message"), "do it");
        assert!(at("--chat-history-file").starts_with("/g/wt/parallel-agent/"));
        assert!(at("--input-history-file").starts_with("/g/wt/parallel-agent/"));
        assert!(inv.envs.contains(&("HOME".into(), "/g/wt/parallel-agent/aider-home".into())));
        let gitconfig = user.path().join(".gitconfig").to_string_lossy().into_owned();
        assert!(inv.envs.contains(&("GIT_CONFIG_GLOBAL".into(), gitconfig)));
        assert_eq!(inv.files.len(), 1);
        assert_eq!(inv.leftovers, [".aider.tags.cache.v4"]);
        assert!(!supports_resume("aider"));
    }

    #[test]
    fn max_turns_reaches_the_clis_that_take_a_limit() {
        let pf = Path::new("/g/wt/parallel-prompt.md");
        let with = |profile: &str, template: Option<&str>| {
            let mut i = input(pf, None);
            i.max_turns = Some(7);
            invocation_in(profile, template, &i, &|_| None).unwrap()
        };
        let claude = with("claude", None);
        let at = claude.args.iter().position(|a| a == "--max-turns").expect("--max-turns");
        assert_eq!(claude.args[at + 1], "7");
        assert!(!invocation_in("claude", None, &input(pf, None), &|_| None)
            .unwrap()
            .args
            .contains(&"--max-turns".into()));
        let gemini = with("gemini", None);
        let settings = gemini.files.iter().find(|(p, _)| p.ends_with("settings.json")).unwrap();
        let v: Value = serde_json::from_slice(&settings.1).unwrap();
        assert_eq!(v["model"]["maxSessionTurns"], 7);
        let custom = with("custom", Some("agent --turns {max_turns} {prompt_file}"));
        assert_eq!(custom.args[..2], ["--turns", "7"]);
        // Codex and Aider take no limit: nothing of it on their command lines.
        for p in ["codex", "aider"] {
            assert!(!takes_max_turns(p));
            assert!(!with(p, None).args.iter().any(|a| a.contains("turns") && !a.contains("history")), "{p}");
        }
    }
}
