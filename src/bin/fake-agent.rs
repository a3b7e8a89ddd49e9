//! Fake coding agent for git-parallel's tests. It imitates the stdout of Claude
//! Code's headless `--output-format stream-json --verbose` mode and runs a tiny
//! script taken from its prompt, so tests can drive edits, commits, failures,
//! floods and hangs deterministically without a real model.
//!
//! Sessions, as Claude Code keeps them: every run is a session (`--session-id ID`, or a new
//! id), stored under `$HOME/.fake-agent/projects/<working folder>/<ID>.jsonl` with its script
//! and what it did. `--resume ID` continues it in the same folder (elsewhere, or unknown, it
//! fails as Claude does: "No conversation found"). A resumed session is an agent that holds
//! its context: the new message is what it is told (its own `fake-agent` block, if it has one,
//! is the next script), else it carries on with its session's script in the light of the
//! message: what it already did that still stands (a file it wrote that still holds what it
//! wrote, a file it deleted that is still gone, a commit with nothing new to commit) is not
//! done again and costs no turn; everything else (shell lines, which may react to the message
//! through `$GIT_PARALLEL_PROMPT_FILE`, writes whose file changed) runs again.
//!
//! `FAKE_AGENT_LEDGER=FILE`: each run appends its start, each turn and its end to FILE as JSON
//! lines, so a benchmark can count every turn taken, also those of an agent killed before its
//! final report, without relying on what git-parallel records.

use serde_json::{json, Value};
use std::env;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{exit, Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One parsed script line.
#[derive(Debug, PartialEq)]
enum Cmd {
    Write(String, String, bool), // path, text, append?
    Delete(String),
    Mkdir(String),
    Sleep(u64),
    Commit(String),
    Git(Vec<String>),
    Sh(String),
    Burn(u64),
    Tool(String, String),
    Print(String),
    Flood(u64),
    Stderr(String),
    Alloc(u64, u64),
    Stamp(String, &'static str),
    Transient(u64, String, u16),
    Fail(i32, String),
    Exit(i32),
    Crash,
    Hang,
    IgnoreTerm,
    SpawnChildHang,
    EnvTo(String),
    Noop,
}

/// Names that exist, so a malformed line can be told apart from an unknown one.
const KNOWN: &str = "write append delete mkdir sleep commit git tool print flood stderr alloc \
    stamp stamp-end transient fail result-error exit crash hang ignore-term spawn-child-hang env-to noop sh burn";

/// Turns the two-character escapes `\n`, `\t` and `\\` into the characters they name;
/// any other backslash is kept as is.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => out.extend(['\\', other]),
            None => out.push('\\'),
        }
    }
    out
}

/// Body lines of the first backtick-fenced block whose info string's first word is
/// `fake-agent`. Other fenced blocks are skipped whole, so a fence-looking line
/// inside them is not mistaken for ours.
fn extract_script(prompt: &str) -> Option<Vec<&str>> {
    let mut fence: Option<(usize, bool)> = None; // (backtick count, is ours)
    let mut body = Vec::new();
    for line in prompt.lines() {
        let t = line.trim();
        let ticks = t.chars().take_while(|&c| c == '`').count();
        match fence {
            None if ticks >= 3 => {
                let info = t[ticks..].split_whitespace().next().unwrap_or("");
                fence = Some((ticks, info == "fake-agent"));
            }
            None => {}
            // A closing fence: only backticks, at least as many as the opening one.
            Some((n, ours)) if ticks >= n && ticks == t.len() => {
                if ours {
                    return Some(body);
                }
                fence = None;
            }
            Some((_, true)) => body.push(line),
            Some(_) => {}
        }
    }
    // An unclosed block runs to the end of the document, as in CommonMark.
    matches!(fence, Some((_, true))).then_some(body)
}

fn parse_args(name: &str, rest: &str) -> Option<Cmd> {
    // `first` is a PATH/NAME/CODE argument; `tail` is the TEXT that follows it.
    let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    let words: Vec<&str> = rest.split(' ').filter(|w| !w.is_empty()).collect();
    let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
    let path = || (!first.is_empty()).then(|| first.to_string());
    Some(match (name, words.len()) {
        ("write", _) => Cmd::Write(path()?, unescape(tail), false),
        ("append", _) => Cmd::Write(path()?, unescape(tail) + "\n", true),
        ("delete", 1) => Cmd::Delete(path()?),
        ("mkdir", 1) => Cmd::Mkdir(path()?),
        ("sleep", 1) => Cmd::Sleep(num(0)?),
        ("commit", 1..) => Cmd::Commit(unescape(rest)),
        ("git", 1..) => Cmd::Git(words.iter().map(|w| w.to_string()).collect()),
        ("sh", 1..) => Cmd::Sh(unescape(rest)),
        ("burn", 1) => Cmd::Burn(num(0)?),
        ("tool", 2) => Cmd::Tool(words[0].to_string(), words[1].to_string()),
        ("print", _) => Cmd::Print(rest.to_string()), // verbatim: it may be JSON with `\n` in it
        ("flood", 1) => Cmd::Flood(num(0)?),
        ("stderr", _) => Cmd::Stderr(unescape(rest)),
        ("alloc", 2) => Cmd::Alloc(num(0)?, num(1)?),
        ("stamp", 1) => Cmd::Stamp(path()?, "start"),
        ("stamp-end", 1) => Cmd::Stamp(path()?, "end"),
        ("transient", 2 | 3) => {
            let status = words.get(2).map_or(Some(529), |s| s.parse().ok())?;
            Cmd::Transient(num(0)?, words[1].to_string(), status)
        }
        ("fail", 1..) => {
            let msg = if tail.is_empty() { "fake-agent failed" } else { tail };
            Cmd::Fail(first.parse().ok()?, unescape(msg))
        }
        ("result-error", _) => Cmd::Fail(1, unescape(rest)),
        ("exit", 1) => Cmd::Exit(words[0].parse().ok()?),
        ("crash", 0) => Cmd::Crash,
        ("hang", 0) => Cmd::Hang,
        ("ignore-term", 0) => Cmd::IgnoreTerm,
        ("spawn-child-hang", 0) => Cmd::SpawnChildHang,
        ("env-to", 1) => Cmd::EnvTo(path()?),
        ("noop", 0) => Cmd::Noop,
        _ => return None,
    })
}

fn parse_line(line: &str) -> Result<Cmd, String> {
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    parse_args(name, rest).ok_or_else(|| {
        let known = KNOWN.split_whitespace().any(|k| k == name);
        format!("{}: {line}", ["unknown command", "bad arguments"][known as usize])
    })
}

/// The whole script of a prompt.
#[cfg(test)]
fn parse_script(prompt: &str) -> Result<Vec<Cmd>, String> {
    parse_lines(&extract_script(prompt).unwrap_or_default())
}

/// A script, parsed up front so a typo fails before any side effect.
fn parse_lines(lines: &[&str]) -> Result<Vec<Cmd>, String> {
    lines
        .iter()
        .map(|l| l.trim_start())
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(parse_line)
        .collect()
}

fn die(code: i32, msg: &str) -> ! {
    eprintln!("fake-agent: {msg}");
    exit(code)
}

/// One stdout line, flushed at once so the supervisor sees events as they happen.
fn out_line(s: &str) {
    let mut o = io::stdout().lock();
    // A closed stdout means the reader went away: stop quietly.
    if writeln!(o, "{s}").and_then(|_| o.flush()).is_err() {
        exit(1);
    }
}

/// CPU time this process has used, in milliseconds.
fn cpu_time_ms() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // utime and stime (fields 14 and 15), in clock ticks of 10 ms.
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    ticks * 10
}

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// `git ARGS` in `dir`. Both of git's streams go to our stderr: stdout is for JSON only.
fn git<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> io::Result<()> {
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    let status = cmd.stdout(io::stderr()).status()?;
    match status.success() {
        true => Ok(()),
        false => Err(io::Error::other(format!("git {status}"))),
    }
}

fn write_file(path: &Path, text: &str, append: bool) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(path)?;
    // One write() call: on an O_APPEND file that keeps concurrent writers' lines whole.
    match f.write(text.as_bytes())? {
        n if n == text.len() => Ok(()),
        _ => Err(io::Error::other("short write")),
    }
}

struct Agent {
    sid: String,
    cwd: PathBuf,
    start: Instant,
    turns: u64,
    result_printed: bool,
    // Spawned children, never waited on: only a process-group kill should end them.
    children: Vec<Child>,
    /// `--max-turns`: the turns it may take.
    max_turns: Option<u64>,
    session: Session,
    /// `FAKE_AGENT_LEDGER` and this run's name in it.
    ledger: Option<(PathBuf, String)>,
}

/// A session's store (see the top of this file): its file, and what it did so far.
struct Session {
    file: Option<PathBuf>,
    /// Continued with `--resume`: what it did before is in its context.
    resumed: bool,
    /// Steps done in this session, as stored: `["write", path, text]`, `["delete", path]`,
    /// `["commit", message]`.
    done: Vec<Value>,
}

impl Session {
    /// Whether `step` was done in this session before.
    fn did(&self, step: &Value) -> bool {
        self.resumed && self.done.contains(step)
    }

    /// Remember `step`, in memory and in the session's file (a store it cannot write, say a
    /// read-only home, only makes the session one that cannot be resumed).
    fn record(&mut self, step: Value) {
        if let Some(f) = &self.file {
            let _ = write_file(f, &format!("{}\n", json!({ "done": step })), true);
        }
        self.done.push(step);
    }
}

/// Where the sessions of work done in `cwd` are kept (None without a `HOME`).
fn session_dir(cwd: &Path) -> Option<PathBuf> {
    let home = env::var_os("HOME").filter(|h| !h.is_empty())?;
    let folder: String =
        cwd.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    Some(Path::new(&home).join(".fake-agent/projects").join(folder))
}

/// A session id no other run of this machine gives.
fn new_session_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("fake-{}-{nanos}", std::process::id())
}

/// The stored session `id` of folder `dir`: its script's lines and the steps it did.
fn load_session(dir: &Path, id: &str) -> Option<(Vec<String>, Vec<Value>)> {
    let text = fs::read_to_string(dir.join(format!("{id}.jsonl"))).ok()?;
    let mut lines = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok());
    let script = lines.next()?["script"].as_array()?.iter().filter_map(|l| l.as_str().map(String::from)).collect();
    Some((script, lines.map(|v| v["done"].clone()).collect()))
}

/// Whether the worktree `dir` holds nothing to commit.
fn clean(dir: &Path) -> bool {
    let out = Command::new("git").args(["status", "--porcelain"]).current_dir(dir).stdin(Stdio::null()).output();
    out.is_ok_and(|o| o.status.success() && o.stdout.is_empty())
}

impl Agent {
    fn emit(&self, v: Value) {
        match v["type"].as_str() {
            Some("assistant") => self.ledger(json!({"turn": self.turns})),
            Some("result") => self.ledger(json!({"end": v["num_turns"]})),
            _ => {}
        }
        out_line(&v.to_string());
    }

    /// One line of `FAKE_AGENT_LEDGER`, tagged with this run (`proc`: a pid alone repeats
    /// across the tasks' PID namespaces).
    fn ledger(&self, mut v: Value) {
        let Some((file, me)) = &self.ledger else { return };
        v["proc"] = json!(me);
        write_file(file, &format!("{v}\n"), true).unwrap_or_else(|e| die(3, &format!("ledger: {e}")));
    }

    fn abs(&self, p: &str) -> PathBuf {
        self.cwd.join(p)
    }

    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The closing event; `num_turns` counts the final answer as a turn, like Claude.
    fn result(&self, is_error: bool, text: &str) -> Value {
        let n = self.turns + 1;
        json!({
            "type": "result",
            "subtype": if is_error { "error_during_execution" } else { "success" },
            "is_error": is_error,
            "num_turns": n,
            "duration_ms": self.ms(),
            "total_cost_usd": (n as f64 * 0.001 * 1e6).round() / 1e6,
            "usage": {"input_tokens": 100 * n, "output_tokens": 20 * n},
            "session_id": self.sid,
            "result": text,
        })
    }

    /// A tool_use/tool_result pair around `action`, counted as one turn.
    fn step(&mut self, name: &str, input: Value, action: impl FnOnce() -> io::Result<()>) {
        if let Some(most) = self.max_turns.filter(|&m| self.turns >= m) {
            let mut r = self.result(true, &format!("Reached maximum number of turns ({most})"));
            r["subtype"] = json!("error_max_turns");
            self.emit(r);
            exit(0);
        }
        self.turns += 1;
        let id = format!("toolu_{}", self.turns);
        let tool_use = json!({"type": "tool_use", "id": id, "name": name, "input": input});
        self.emit(json!({"type": "assistant",
            "message": {"role": "assistant", "content": [tool_use]}, "session_id": self.sid}));
        if let Err(e) = action() {
            die(3, &format!("{name} failed: {e}"));
        }
        let res = json!({"type": "tool_result", "tool_use_id": id, "content": "ok"});
        self.emit(json!({"type": "user",
            "message": {"role": "user", "content": [res]}, "session_id": self.sid}));
    }

    fn run(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Write(p, text, append) => {
                let path = self.abs(&p);
                let done = json!(["write", path, text]);
                // In its context and still standing: nothing to do again.
                if !append && self.session.did(&done) && fs::read(&path).is_ok_and(|b| b == text.as_bytes()) {
                    return;
                }
                let input = json!({"file_path": path});
                self.step("Write", input, || write_file(&path, &text, append));
                if !append {
                    self.session.record(done);
                }
            }
            Cmd::Delete(p) => {
                let path = self.abs(&p);
                let done = json!(["delete", path]);
                if self.session.did(&done) && path.symlink_metadata().is_err() {
                    return;
                }
                let input = json!({"command": format!("rm {p}"), "file_path": path});
                self.step("Bash", input, || fs::remove_file(&path));
                self.session.record(done);
            }
            Cmd::Mkdir(p) => fs::create_dir_all(self.abs(&p)).unwrap_or_else(|e| die(3, &format!("mkdir: {e}"))),
            Cmd::Sleep(ms) => sleep(Duration::from_millis(ms)),
            Cmd::Commit(msg) => {
                let done = json!(["commit", msg]);
                if self.session.did(&done) && clean(&self.cwd) {
                    return;
                }
                self.session.record(done);
                let cwd = self.cwd.clone();
                let input = json!({"command": format!("git add -A && git commit -q -m {msg:?}")});
                self.step("Bash", input, || {
                    git(&cwd, &["add", "-A"])?;
                    git(&cwd, &["commit", "-q", "-m", &msg])
                });
            }
            // Its exit status is ignored: tests use this to try forbidden things.
            Cmd::Git(args) => git(&self.cwd, &args).unwrap_or_else(|e| eprintln!("fake-agent: {e}")),
            // Busy CPU for MS milliseconds of CPU time (not wall time): a build or a test run.
            Cmd::Burn(ms) => {
                let start = cpu_time_ms();
                let mut x = 0u64;
                while cpu_time_ms() - start < ms {
                    for i in 0..100_000u64 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                    }
                    std::hint::black_box(x);
                }
            }
            // A shell line with the agent's own stdout: what it leaves running keeps that pipe,
            // as a real agent's daemon would. Its status is ignored, like `git`'s.
            Cmd::Sh(line) => {
                let status =
                    Command::new("sh").args(["-c", &line]).current_dir(&self.cwd).stdin(Stdio::null()).status();
                if let Err(e) = status {
                    eprintln!("fake-agent: sh: {e}");
                }
            }
            Cmd::Tool(name, p) => {
                let path = self.abs(&p);
                self.step(&name, json!({"file_path": path}), || Ok(()));
            }
            Cmd::Print(text) => {
                out_line(&text);
                // A hand-printed result event replaces the default one.
                let parsed = serde_json::from_str::<Value>(&text).ok();
                if parsed.is_some_and(|v| v["type"] == "result") {
                    self.result_printed = true;
                }
            }
            Cmd::Flood(mb) => {
                let line = format!("{}\n", "x".repeat(1023));
                let mut o = BufWriter::with_capacity(1 << 16, io::stdout().lock());
                let ok = (0..mb * 1024).all(|_| o.write_all(line.as_bytes()).is_ok());
                if !ok || o.flush().is_err() {
                    exit(1); // the reader went away
                }
            }
            Cmd::Stderr(text) => eprintln!("{text}"),
            Cmd::Alloc(mb, hold) => {
                // Zeroed pages are not resident until written, so touch one byte per page.
                let mut v = vec![0u8; (mb as usize) << 20];
                for i in (0..v.len()).step_by(4096) {
                    v[i] = 1;
                }
                std::hint::black_box(&mut v);
                sleep(Duration::from_millis(hold));
                drop(v);
            }
            Cmd::Stamp(file, which) => {
                let task = env::var("GIT_PARALLEL_TASK").unwrap_or_else(|_| "?".into());
                let line = format!("{task} {which} {}\n", unix_ms());
                write_file(&self.abs(&file), &line, true).unwrap_or_else(|e| die(3, &format!("stamp: {e}")));
            }
            Cmd::Transient(n, counter, status) => {
                let path = self.abs(&counter);
                // Atomic across concurrent agents: the count is the first free slot claimed with
                // create_new (a read-then-write of one file loses counts, or reads it empty).
                let slots = path.with_extension("slots");
                fs::create_dir_all(&slots).unwrap_or_else(|e| die(3, &format!("{}: {e}", slots.display())));
                let count = (1..)
                    .find(|i| OpenOptions::new().write(true).create_new(true).open(slots.join(i.to_string())).is_ok())
                    .unwrap_or(u64::MAX);
                fs::write(&path, format!("{count}\n")).unwrap_or_else(|e| die(3, &format!("{}: {e}", path.display())));
                if count <= n {
                    let reason = if status == 529 { "Overloaded" } else { "Error" };
                    self.emit(json!({
                        "type": "result", "subtype": "error_during_execution", "is_error": true,
                        "num_turns": 1, "duration_ms": self.ms(), "total_cost_usd": 0,
                        "api_error_status": status, "session_id": self.sid,
                        "result": format!("API Error: {status} {reason}"),
                    }));
                    exit(1);
                }
            }
            Cmd::Fail(code, msg) => {
                self.emit(self.result(true, &msg));
                exit(code);
            }
            Cmd::Exit(code) => exit(code),
            Cmd::Crash => std::process::abort(),
            Cmd::Hang => loop {
                sleep(Duration::from_secs(3600));
            },
            // SAFETY: signal() with SIG_IGN installs no handler code; nothing else touches
            // signal dispositions in this single-threaded program.
            Cmd::IgnoreTerm => unsafe {
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
            },
            Cmd::SpawnChildHang => {
                let child = Command::new("sleep").arg("100000").stdin(Stdio::null()).spawn();
                self.children.push(child.unwrap_or_else(|e| die(3, &format!("spawn sleep: {e}"))));
            }
            Cmd::EnvTo(file) => {
                let mut text: String = ["GIT_PARALLEL_RUN", "GIT_PARALLEL_TASK", "GIT_PARALLEL_WORKTREE"]
                    .iter()
                    .map(|k| format!("{k}={}\n", env::var(k).unwrap_or_default()))
                    .collect();
                // Settings handed to the agent's own git.
                let mut config: Vec<(String, String)> =
                    env::vars().filter(|(k, _)| k.starts_with("GIT_CONFIG_")).collect();
                config.sort();
                text.extend(config.iter().map(|(k, v)| format!("{k}={v}\n")));
                write_file(&self.abs(&file), &text, false).unwrap_or_else(|e| die(3, &format!("env-to: {e}")));
            }
            Cmd::Noop => {}
        }
    }
}

const USAGE: &str = "usage: fake-agent [--session-id ID] [--resume ID] (PROMPT_FILE | -p TEXT)";

/// The command line: `--session-id`, `--resume`, the prompt text, `--max-turns`.
struct Cli {
    session_id: Option<String>,
    resume: Option<String>,
    prompt: String,
    max_turns: Option<u64>,
}

/// Flags the real CLI takes are accepted and ignored so tests can hand the fake a realistic
/// command line.
fn parse_cli(args: &[String]) -> Result<Cli, String> {
    let (mut sid, mut resume, mut prompt, mut max_turns) = (None, None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--session-id" => sid = Some(val()?),
            "--resume" => resume = Some(val()?),
            "-p" => prompt = Some(val()?),
            "--output-format" | "--model" | "--permission-mode" => drop(val()?),
            // As Claude Code: the agent stops with `error_max_turns` once it took that many.
            "--max-turns" => max_turns = Some(val()?.parse().map_err(|_| "--max-turns needs a number".to_string())?),
            "--verbose" | "--dangerously-skip-permissions" => {}
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown flag {f}")),
            file => {
                let text = fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
                prompt = Some(text);
            }
        }
    }
    Ok(Cli { session_id: sid, resume, prompt: prompt.ok_or(USAGE)?, max_turns })
}

fn main() {
    let start = Instant::now();
    let args: Vec<String> = env::args().skip(1).collect();
    let cli = parse_cli(&args).unwrap_or_else(|e| die(2, &e));
    let cwd = env::current_dir().unwrap_or_else(|e| die(2, &format!("no cwd: {e}")));
    let store = session_dir(&cwd);
    let told = extract_script(&cli.prompt);
    // The script: the message's own, else (a session going on) the session's.
    let (sid, script, done) = match &cli.resume {
        Some(id) => {
            let Some((script, done)) = store.as_deref().and_then(|d| load_session(d, id)) else {
                die(1, &format!("No conversation found with session ID: {id}"))
            };
            let script = told.map(|t| t.iter().map(|l| l.to_string()).collect()).unwrap_or(script);
            (id.clone(), script, done)
        }
        None => {
            let script = told.unwrap_or_default().iter().map(|l| l.to_string()).collect();
            (cli.session_id.clone().unwrap_or_else(new_session_id), script, Vec::new())
        }
    };
    let cmds = parse_lines(&script.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_or_else(|e| die(2, &e));
    let mut file = store.map(|d| d.join(format!("{sid}.jsonl")));
    if let (Some(f), None) = (&file, &cli.resume) {
        // The session's first line: its script, for a later `--resume`.
        if write_file(f, &format!("{}\n", json!({ "script": script })), false).is_err() {
            file = None;
        }
    }
    let mut agent = Agent {
        sid,
        cwd,
        start,
        turns: 0,
        result_printed: false,
        children: Vec::new(),
        max_turns: cli.max_turns,
        session: Session { file, resumed: cli.resume.is_some(), done },
        ledger: env::var_os("FAKE_AGENT_LEDGER").map(|f| (PathBuf::from(f), new_session_id())),
    };
    agent.ledger(json!({
        "start": env::var("GIT_PARALLEL_TASK").unwrap_or_default(),
        "attempt": env::var("GIT_PARALLEL_ATTEMPT").ok(),
        "resumed": cli.resume.is_some(),
        "feedback": env::var_os("GIT_PARALLEL_FEEDBACK").is_some(),
    }));
    agent.emit(json!({"type": "system", "subtype": "init", "session_id": agent.sid,
        "model": "fake-model", "cwd": agent.cwd, "tools": ["Write", "Edit", "Bash"]}));
    for cmd in cmds {
        agent.run(cmd);
    }
    if !agent.result_printed {
        agent.emit(agent.result(false, "done"));
    }
    exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_first_fake_agent_block() {
        let p = "# Task\n```bash\n```fake-agent\nnot this\n```\ntext\n```fake-agent extra\n\
                 write a.txt hi\n\n# c\nsleep 5\n```\n```fake-agent\nnoop\n```\n";
        let want = vec!["write a.txt hi", "", "# c", "sleep 5"];
        assert_eq!(extract_script(p), Some(want));
        assert_eq!(extract_script("no block\n```rust\nfn x(){}\n```\n"), None);
        // Longer fences may hold shorter ones; an unclosed block runs to the end.
        let want = vec!["```", "noop"];
        assert_eq!(extract_script("````fake-agent\n```\nnoop"), Some(want));
    }

    #[test]
    fn unescapes_text() {
        assert_eq!(unescape(r"a\nb\tc\\n\q\"), "a\nb\tc\\n\\q\\");
    }

    #[test]
    fn parses_script_lines() {
        let p = "```fake-agent\nwrite src/a.txt hello\\nworld\n  # comment\n\nsleep 200\n\
                 append b x\ntransient 2 /tmp/c\nfail 4 bad  thing\nfail 5\n\
                 result-error oops\nprint {\"a\":\"x\\ny\"}\n```";
        let s = |x: &str| x.to_string();
        let want = vec![
            Cmd::Write(s("src/a.txt"), s("hello\nworld"), false),
            Cmd::Sleep(200),
            Cmd::Write(s("b"), s("x\n"), true),
            Cmd::Transient(2, s("/tmp/c"), 529),
            Cmd::Fail(4, s("bad  thing")),
            Cmd::Fail(5, s("fake-agent failed")),
            Cmd::Fail(1, s("oops")),
            Cmd::Print(s("{\"a\":\"x\\ny\"}")),
        ];
        assert_eq!(parse_script(p), Ok(want));
        assert_eq!(parse_line("stamp-end /f"), Ok(Cmd::Stamp(s("/f"), "end")));
        assert_eq!(parse_line("transient 1 c 429"), Ok(Cmd::Transient(1, s("c"), 429)));
        assert_eq!(parse_line("git log -1"), Ok(Cmd::Git(vec![s("log"), s("-1")])));
        assert_eq!(parse_line("frob x"), Err(s("unknown command: frob x")));
        assert_eq!(parse_line("sleep soon"), Err(s("bad arguments: sleep soon")));
        assert_eq!(parse_line("hang 5"), Err(s("bad arguments: hang 5")));
        assert_eq!(parse_script("nothing here"), Ok(vec![]));
    }
}
