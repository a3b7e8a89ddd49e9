//! `git parallel dashboard`: a live page of a run (or of every run) in the browser.
//!
//! It reads refs only (through `store::runs`): a watcher polls the run's tip, and on a change
//! loads the state at the new tip and sends the page, as a Server-Sent Event, the markup of the
//! tasks that changed, rendered by the same functions as the HTML report (`ui::report`).
//! Every request needs the access token (in the query, or the cookie the first visit sets);
//! the two actions (cancel, retry) are POSTs from the page's own origin and run the very
//! commands a user would type.

use super::Context;
use crate::cli::DashboardArgs;
use crate::error::{failed, usage};
use crate::plan::Plan;
use crate::repo::Repo;
use crate::store::plans;
use crate::store::runs::{self, RunState, RunStatus, TaskState, TaskStatus};
use crate::ui::{self, report};
use anyhow::Result;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response};

/// How often a watcher looks at the run's tip.
const POLL: Duration = Duration::from_millis(250);
/// How often a live run's running bars grow (and a quiet stream says it is alive).
const TICK: Duration = Duration::from_secs(2);

/// What every request handler shares.
struct Shared {
    token: String,
    /// The access cookie's name: per port, since browsers share cookies between ports.
    cookie: String,
    /// The run given on the command line (None: every run).
    run: Option<String>,
    repo: gix::ThreadSafeRepository,
    workdir: std::path::PathBuf,
    common_dir: std::path::PathBuf,
    cache: std::sync::Mutex<Cache>,
    /// Held while a state or plan is read: a page asked for while the run is being read (at
    /// start, or by a stream) waits for that reading instead of making a second beside it.
    reading: std::sync::Mutex<()>,
}

/// States and plans already read. A run's state at a given tip and a plan never change, and
/// reading a big run's costs most of its page's time (docs/benchmarks.md): a page, the rows
/// it fetches again and every stream following the run share one reading.
#[derive(Default)]
struct Cache {
    plans: HashMap<String, Arc<Plan>>,
    /// Per run, its state at the tip last read.
    states: HashMap<String, (gix::ObjectId, Arc<RunState>)>,
}

impl Shared {
    fn repo(&self) -> Repo {
        Repo { gix: self.repo.to_thread_local(), workdir: self.workdir.clone(), common_dir: self.common_dir.clone() }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `run`'s state at `tip`.
    fn state_at(&self, repo: &Repo, run: &str, tip: gix::ObjectId) -> Result<Arc<RunState>> {
        let cached = || self.cache().states.get(run).filter(|(t, _)| *t == tip).map(|(_, s)| s.clone());
        if let Some(s) = cached() {
            return Ok(s);
        }
        let _reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = cached() {
            return Ok(s);
        }
        // From the state last read, what changed since (a live run's next tip).
        let last = self.cache().states.get(run).cloned();
        let s = Arc::new(match last {
            Some((t, prev)) => runs::load_since(repo, run, &prev, t, tip)?,
            None => runs::load_at(repo, run, tip)?,
        });
        self.cache().states.insert(run.to_string(), (tip, s.clone()));
        Ok(s)
    }

    /// Run `run`'s state now.
    fn state(&self, repo: &Repo, run: &str) -> Result<Arc<RunState>> {
        let tip = runs::tip(repo, run)?.ok_or_else(|| usage(format!("no run `{run}`")))?;
        self.state_at(repo, run, tip)
    }

    fn plan(&self, repo: &Repo, id: &str) -> Result<Arc<Plan>> {
        let cached = || self.cache().plans.get(id).cloned();
        if let Some(p) = cached() {
            return Ok(p);
        }
        let _reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cached() {
            return Ok(p);
        }
        let p = Arc::new(plans::load(repo, id)?);
        self.cache().plans.insert(id.to_string(), p.clone());
        Ok(p)
    }
}

pub fn run(ctx: &Context, args: DashboardArgs) -> Result<i32> {
    let run = match &args.run {
        Some(r) => Some(runs::resolve(&ctx.repo, Some(r))?),
        None => None,
    };
    let server = tiny_http::Server::http((args.bind, args.port.unwrap_or(0)))
        .map_err(|e| usage(format!("cannot listen on {}:{}: {e}", args.bind, args.port.unwrap_or(0))))?;
    let port = server.server_addr().to_ip().map(|a| a.port()).ok_or_else(|| failed("the server has no address"))?;
    let token = format!("{:032x}", rand::random::<u128>());
    let host = if args.bind.is_unspecified() || args.bind.is_loopback() {
        "127.0.0.1".to_string()
    } else {
        std::net::SocketAddr::new(args.bind, port).to_string().rsplit_once(':').map(|(h, _)| h.to_string()).unwrap()
    };
    if !args.bind.is_loopback() {
        ui::note(&format!(
            "warning: listening on {} port {port}, not on loopback: whoever can reach it and has the address with its token sees every prompt, transcript, file name and check output of {}, and can cancel {} and retry its failed tasks",
            args.bind,
            run.as_ref().map(|r| format!("run {r}")).unwrap_or_else(|| "every run".into()),
            if run.is_some() { "it" } else { "them" },
        ));
    }
    ui::out(&format!("http://{host}:{port}/?token={token}\n"))?;
    ui::note(&format!(
        "serving the dashboard of {} until interrupted (Ctrl-C)",
        run.as_ref().map(|r| format!("run {r}")).unwrap_or_else(|| "every run".into())
    ));
    let shared = Arc::new(Shared {
        token,
        cookie: format!("git_parallel_{port}"),
        run,
        repo: ctx.repo.gix.clone().into_sync(),
        workdir: ctx.repo.workdir.clone(),
        common_dir: ctx.repo.common_dir.clone(),
        cache: Default::default(),
        reading: Default::default(),
    });
    if let Some(run) = shared.run.clone() {
        // Read the run while nobody waits yet: a big run's first page then comes from memory.
        let sh = shared.clone();
        std::thread::spawn(move || {
            let repo = sh.repo();
            let _ = sh.state(&repo, &run).and_then(|s| sh.plan(&repo, &s.plan));
        });
    }
    for req in server.incoming_requests() {
        let sh = shared.clone();
        std::thread::spawn(move || handle(&sh, req));
    }
    Ok(0)
}

/// A's and b's bytes are the same, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn header_of<'a>(req: &'a Request, name: &'static str) -> Option<&'a str> {
    req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str())
}

/// Headers every answer carries: nothing cached, nothing sniffed, no framing, and scripts
/// only the page's own (`nonce`).
fn common_headers(nonce: &str) -> Vec<Header> {
    vec![
        header("Cache-Control", "no-store"),
        header("X-Content-Type-Options", "nosniff"),
        header("Referrer-Policy", "same-origin"),
        header(
            "Content-Security-Policy",
            &format!("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
        ),
    ]
}

/// An answer of `kind` (a Content-Type) with the common headers; `nonce`: the scripts it may run.
fn respond_with(code: u16, kind: &str, body: String, nonce: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut r = Response::from_string(body).with_status_code(code).with_header(header("Content-Type", kind));
    for h in common_headers(nonce) {
        r.add_header(h);
    }
    r
}

/// A plain-text answer (errors, a task's transcript): shown as text, never run as markup.
fn text(req: Request, code: u16, body: impl Into<String>) {
    let _ = req.respond(respond_with(code, "text/plain; charset=utf-8", body.into(), "-"));
}

fn handle(sh: &Shared, req: Request) {
    let (path, query) = match req.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.url().to_string(), String::new()),
    };
    let q: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let by_query = q.get("token").is_some_and(|t| same(t, &sh.token));
    let by_cookie = header_of(&req, "Cookie").is_some_and(|c| {
        cookie::Cookie::split_parse(c).flatten().any(|c| c.name() == sh.cookie && same(c.value(), &sh.token))
    });
    if !by_query && !by_cookie {
        return text(req, 403, "forbidden: this dashboard needs the token its URL was printed with\n");
    }
    // The run asked for: the one the dashboard serves, or any with every run.
    let run = match (&sh.run, q.get("run")) {
        (Some(r), _) => Some(r.clone()),
        (None, Some(r)) if !r.is_empty() => Some(r.clone()),
        _ => None,
    };
    let repo = sh.repo();
    match (req.method(), path.as_str()) {
        (Method::Get, "/") => {
            let set = by_query.then(|| {
                cookie::Cookie::build((sh.cookie.clone(), sh.token.clone()))
                    .path("/")
                    .http_only(true)
                    .same_site(cookie::SameSite::Strict)
                    .build()
                    .to_string()
            });
            match page(sh, &repo, run.as_deref(), &View::of(&q)) {
                Ok((body, nonce)) => {
                    let mut r = respond_with(200, "text/html; charset=utf-8", body, &nonce);
                    if let Some(c) = set {
                        r.add_header(header("Set-Cookie", &c));
                    }
                    let _ = req.respond(r);
                }
                Err(e) => text(req, 404, format!("{e:#}\n")),
            }
        }
        (Method::Get, "/events") => {
            let tip = q.get("tip").cloned();
            let writer = sse_start(req);
            let _ = match run {
                Some(run) => watch_run(sh, &repo, &run, tip.as_deref(), View::of(&q).all, writer),
                None => watch_runs(&repo, writer),
            };
        }
        (Method::Get, "/rows") => {
            // The paged part of a big run's page, as the page asks for it again.
            let answer = match run.as_deref() {
                Some(run) => rows(sh, &repo, run, &View::of(&q)),
                None => Err(usage("rows need run=")),
            };
            match answer {
                Ok(html) => {
                    let _ = req.respond(respond_with(200, "text/html; charset=utf-8", html, "-"));
                }
                Err(e) => text(req, 404, format!("{e:#}\n")),
            }
        }
        (Method::Get, "/task") => {
            let answer = match (run.as_deref(), q.get("task")) {
                (Some(run), Some(task)) => task_text(sh, run, task),
                _ => Err(usage("a task view needs run= and task=")),
            };
            match answer {
                Ok(t) => text(req, 200, t),
                Err(e) => text(req, 404, format!("{e:#}\n")),
            }
        }
        (Method::Post, "/cancel" | "/retry") => {
            if !same_origin(&req) {
                return text(req, 403, "forbidden: actions come from the dashboard's own page only\n");
            }
            let Some(run) = run else { return text(req, 400, "which run? (run=)\n") };
            let answer = if path == "/cancel" { cancel(sh, &run) } else { retry(sh, &repo, &run, q.get("task")) };
            match answer {
                Ok(t) => text(req, 200, t),
                Err(e) => text(req, 409, format!("{e:#}\n")),
            }
        }
        (_, "/cancel" | "/retry") => text(req, 405, "actions are POST only\n"),
        _ => text(req, 404, "not found\n"),
    }
}

/// A POST from the page itself: its Origin (or, without one, its Referer) is the address the
/// request was sent to.
fn same_origin(req: &Request) -> bool {
    let Some(host) = header_of(req, "Host") else { return false };
    let me = format!("http://{host}");
    match (header_of(req, "Origin"), header_of(req, "Referer")) {
        (Some(o), _) => o == me,
        (None, Some(r)) => r == me || r.starts_with(&format!("{me}/")),
        (None, None) => false,
    }
}

/// The dashboard's own style, after the report's.
const STYLE: &str = "tr[data-task]{cursor:pointer}tr.sel{outline:2px solid #1565c0}#banner{background:#ffebee;color:#b71c1c;padding:4px 8px}#banner:empty{display:none}pre#log{background:#f6f6f6;padding:8px;max-height:40em;overflow:auto;white-space:pre-wrap}";

/// The page's script: follow the run's events and swap in the markup they carry.
const SCRIPT: &str = include_str!("dashboard.js");

/// Above this many tasks a run's page is drawn a page of rows at a time (the timeline of those
/// rows only), and its dependencies by wave: the whole page of 10,000 tasks is 6 MB that a
/// browser takes seconds to lay out (docs/benchmarks.md).
const PAGED: usize = report::UP_FRONT;
/// Rows on one page of a big run's table.
const PAGE_ROWS: usize = 100;
/// Above this many tasks the dependencies are drawn by wave, not one box per task.
const DAG_NODES: usize = report::DAG_NODES;

/// Which tasks a big run's page shows: those in one state (None: every task, those that need
/// attention first), one page of them; or (`all`) every task as the report draws them.
#[derive(Debug, Clone, Default)]
struct View {
    state: Option<TaskStatus>,
    page: usize,
    all: bool,
}

impl View {
    fn of(q: &HashMap<String, String>) -> View {
        View {
            state: q.get("state").and_then(|w| report::STATES.iter().copied().find(|s| s.as_str() == w)),
            page: q.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1),
            all: q.get("view").is_some_and(|v| v == "all"),
        }
    }

    /// The query that shows this view of `run` (on page `page`).
    fn query(&self, run: &str, page: usize) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("run", run);
        if let Some(st) = self.state {
            q.append_pair("state", st.as_str());
        }
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        q.finish()
    }
}

/// A big run's tasks as `view` shows them: filtered, in attention order then natural order;
/// the page's slice, the page (clamped), the number of pages and of tasks the filter kept.
fn select<'a>(s: &'a RunState, view: &View) -> (Vec<&'a TaskState>, usize, usize, usize) {
    let mut v: Vec<&TaskState> = s.tasks.iter().filter(|t| view.state.is_none_or(|st| t.status == st)).collect();
    v.sort_by_cached_key(|t| (report::attention(t.status), report::natural_key(&t.id)));
    let kept = v.len();
    let pages = kept.div_ceil(PAGE_ROWS).max(1);
    let page = view.page.min(pages);
    let rows = v.into_iter().skip((page - 1) * PAGE_ROWS).take(PAGE_ROWS).collect();
    (rows, page, pages, kept)
}

/// The paged part of a big run's page: the state filters and pages, one page of the table,
/// and the timeline of that page's tasks (the report's own fragments).
fn paged(s: &RunState, view: &View) -> String {
    let esc = report::escape;
    let (tasks, page, pages, kept) = select(s, view);
    let link = |label: String, st: Option<TaskStatus>, on: bool| {
        let q = View { state: st, page: 1, all: false }.query(&s.id, 1);
        if on {
            format!("<b>{label}</b>")
        } else {
            format!("<a href=\"/?{}\">{label}</a>", esc(&q))
        }
    };
    let mut filters = vec![link(format!("all {}", s.tasks.len()), None, view.state.is_none())];
    for st in report::STATES {
        let n = s.tasks.iter().filter(|t| t.status == st).count();
        if n > 0 || view.state == Some(st) {
            filters.push(link(format!("{} {n}", st.as_str()), Some(st), view.state == Some(st)));
        }
    }
    let first = (page - 1) * PAGE_ROWS;
    let mut nav = format!("tasks {}-{} of {kept}", first + tasks.len().min(1), first + tasks.len());
    if page > 1 {
        nav.push_str(&format!(" &middot; <a href=\"/?{}\">previous page</a>", esc(&view.query(&s.id, page - 1))));
    }
    if page < pages {
        nav.push_str(&format!(" &middot; <a href=\"/?{}\">next page</a>", esc(&view.query(&s.id, page + 1))));
    }
    nav.push_str(&format!(
        " &middot; page {page} of {pages} &middot; <a href=\"/?run={}&amp;view=all\">every task on one page</a> (as the report draws it)",
        esc(&s.id)
    ));
    format!(
        "<div id=\"paged\" data-state=\"{}\" data-page=\"{page}\">\n<p>{}</p>\n<p>{nav}</p>\n{}\n<h2>Timeline</h2>\n<p>The tasks of the table above. {}{}</p>\n{}\n</div>\n",
        view.state.map(|s| s.as_str()).unwrap_or(""),
        filters.join(" &middot; "),
        report::table_of(&tasks, &s.agent),
        report::legend(),
        report::FADED,
        report::gantt_of(s, &tasks),
    )
}

/// The paged part of a run's page, drawn again at the run's tip (the page asks for it when
/// tasks moved between states).
fn rows(sh: &Shared, repo: &Repo, run: &str, view: &View) -> Result<String> {
    let id = runs::resolve(repo, Some(run))?;
    Ok(paged(&*sh.state(repo, &id)?, view))
}

/// Whether `s` is drawn a page at a time.
fn is_paged(s: &RunState) -> bool {
    s.tasks.len() > PAGED
}

/// A run's page body: as the report draws it for a small run (or `view=all`); for a big one,
/// the headline, one page of the table and its timeline, and the dependencies by wave.
fn run_body(s: &RunState, plan: &Plan, view: &View) -> String {
    if view.all || !is_paged(s) {
        return report::body(s, plan);
    }
    format!(
        "<h1>git-parallel run {}</h1>\n{}\n{}{}<h2>Dependencies</h2>\n{}\n",
        report::escape(&s.id),
        report::headline(s),
        paged(s, view),
        report::compared(s),
        if s.tasks.len() > DAG_NODES { report::waves_summary(s, plan) } else { report::dag(s, plan) }
    )
}

/// The page for `run` (with the nonce its script runs under), or the list of every run.
fn page(sh: &Shared, repo: &Repo, run: Option<&str>, view: &View) -> Result<(String, String)> {
    let nonce = format!("{:032x}", rand::random::<u128>());
    let esc = report::escape;
    let (title, data, body) = match run {
        Some(id) => {
            let id = runs::resolve(repo, Some(id))?;
            let tip = runs::tip(repo, &id)?.ok_or_else(|| usage(format!("no run `{id}`")))?;
            let s = sh.state_at(repo, &id, tip)?;
            let plan = sh.plan(repo, &s.plan)?;
            (
                format!("git-parallel run {}", esc(&id)),
                format!(
                    " data-run=\"{}\" data-tip=\"{tip}\"{}",
                    esc(&id),
                    if view.all { " data-view=\"all\"" } else { "" }
                ),
                format!(
                    "<p><a href=\"/\">every run</a> &middot; <button id=\"cancel\">cancel the run</button> <span id=\"msg\"></span></p>\n{}<h2>Task <span id=\"sel\"></span></h2>\n<p>Click a task in the table to see its transcript and check output. <button id=\"retry\" hidden>retry this task</button></p>\n<pre id=\"log\"></pre>\n",
                    run_body(&s, &plan, view)
                ),
            )
        }
        None => (
            "git-parallel runs".to_string(),
            String::new(),
            format!("<h1>git-parallel runs</h1>\n{}", runs_table(repo)?),
        ),
    };
    Ok((
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>{}{STYLE}</style></head><body{data}>\n<div id=\"banner\"></div>\n{body}<script nonce=\"{nonce}\">{SCRIPT}</script>\n</body></html>\n",
            report::STYLE
        ),
        nonce,
    ))
}

/// Every run, newest first, each a link to its page.
fn runs_table(repo: &Repo) -> Result<String> {
    let esc = report::escape;
    let mut rows = String::new();
    for s in runs::summaries(repo)?.iter().rev() {
        let (done, total) = s.counts();
        rows.push_str(&format!(
            "<tr><td><a href=\"/?run={id}\">{id}</a></td><td>{}</td><td>{}</td><td>{done}/{total}</td><td>{}</td></tr>\n",
            esc(&s.plan),
            s.effective_status().as_str(),
            ui::millis(ui::run::wall_ms(s)),
            id = esc(&s.id),
        ));
    }
    Ok(format!(
        "<table data-part=\"runs\"><tr><th>run</th><th>plan</th><th>state</th><th>tasks</th><th>wall time</th></tr>\n{rows}</table>"
    ))
}

/// What `git parallel logs RUN TASK` prints for the task.
fn task_text(sh: &Shared, run: &str, task: &str) -> Result<String> {
    let ctx = Context { repo: sh.repo(), settings: crate::config::Settings::load(&sh.repo())? };
    super::logs::task_view(&ctx, run, task)
}

/// Cancel the run as `git parallel cancel RUN` does (it is that command).
fn cancel(sh: &Shared, run: &str) -> Result<String> {
    let out = crate::proc::ourselves(&sh.workdir, &["cancel", run])?;
    let said = format!("{}{}", out.stdout_str(), out.stderr_str());
    if out.ok() {
        Ok(said)
    } else {
        Err(failed(said.trim().to_string()))
    }
}

/// Retry a failed task of a run that no longer runs: `git parallel resume RUN --retry TASK`,
/// started in the background (it drives the run from then on, whatever becomes of us).
fn retry(sh: &Shared, repo: &Repo, run: &str, task: Option<&String>) -> Result<String> {
    let task = task.ok_or_else(|| usage("which task? (task=)"))?;
    let s = runs::load(repo, run)?;
    let t = s.task(task).ok_or_else(|| usage(format!("run {run} has no task `{task}`")))?;
    if !matches!(t.status, TaskStatus::Failed | TaskStatus::TimedOut) {
        return Err(usage(format!("task {task} {}: only a failed or timed-out task is retried", t.status.as_str())));
    }
    if s.effective_status() == RunStatus::Running {
        return Err(usage(format!("run {run} is still running: retry its task once it ends (or cancel it first)")));
    }
    let log = sh.common_dir.join(format!("parallel-dashboard-retry-{run}.log"));
    let pid = crate::proc::ourselves_detached(&sh.workdir, &["resume", run, "--retry", task], &log)?;
    ui::note(&format!(
        "retrying task {task} of run {run}: git parallel resume (pid {pid}), its output in {}",
        log.display()
    ));
    Ok(format!("resuming run {run} to retry task {task} (pid {pid})\n"))
}

/// Start an event stream: the answer's head, then the connection is ours to write events to
/// until the page goes away. (tiny_http's own responses buffer their body; an event must
/// reach the page when it happens.)
fn sse_start(req: Request) -> Box<dyn Write + Send> {
    let mut w = req.into_writer();
    let _ = w.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
    );
    let _ = w.flush();
    w
}

fn send(w: &mut dyn Write, event: &str, data: &serde_json::Value) -> std::io::Result<()> {
    // One line of JSON: newlines inside strings are escaped by the serializer.
    write!(w, "event: {event}\ndata: {}\n\n", serde_json::to_string(data).unwrap_or_default())?;
    w.flush()
}

/// The markup of one task's parts (table row, bars, DAG node) for a page to swap in.
fn task_parts(s: &RunState, i: usize, dag: &HashMap<String, (f64, f64)>, out: &mut Vec<serde_json::Value>) {
    let t = &s.tasks[i];
    out.push(serde_json::json!(["row", t.id, report::table_row(t, &s.agent)]));
    out.push(serde_json::json!(["bars", t.id, report::gantt_bars(s, t)]));
    if let Some(p) = dag.get(&t.id) {
        out.push(serde_json::json!(["node", t.id, report::dag_node(&t.id, t.status, *p)]));
    }
}

/// How a watcher draws what changed for the page it feeds.
struct Drawing {
    /// Where each task's DAG node is (empty: the page draws no node per task).
    dag: HashMap<String, (f64, f64)>,
    /// The plan, when the page draws the dependencies by wave.
    waves: Option<Arc<Plan>>,
}

impl Drawing {
    fn new(sh: &Shared, repo: &Repo, s: &RunState, all: bool) -> Drawing {
        let plan = sh.plan(repo, &s.plan).ok();
        match plan {
            Some(p) if !all && s.tasks.len() > DAG_NODES => Drawing { dag: HashMap::new(), waves: Some(p) },
            Some(p) => Drawing { dag: report::dag_positions(&p), waves: None },
            None => Drawing { dag: HashMap::new(), waves: None },
        }
    }
}

/// An update: the run's headline and axis, and the tasks in `changed` (their state and
/// markup); `moved`: some task changed state (a big run's page then fetches its rows again);
/// `waves`: with the dependencies by wave (a big run's, when tasks moved).
fn update(s: &RunState, tip: &str, changed: &[usize], moved: bool, waves: bool, draw: &Drawing) -> serde_json::Value {
    let mut parts = Vec::new();
    let mut states = serde_json::Map::new();
    for &i in changed {
        task_parts(s, i, &draw.dag, &mut parts);
        states.insert(s.tasks[i].id.clone(), s.tasks[i].status.as_str().into());
    }
    if let Some(plan) = draw.waves.as_ref().filter(|_| waves) {
        parts.push(serde_json::json!(["waves", null, report::waves(s, plan)]));
    }
    serde_json::json!({
        "tip": tip,
        "status": s.effective_status().as_str(),
        "done": format!("{}/{}", s.counts().0, s.counts().1),
        "head": report::headline(s),
        "axis": report::gantt_axis(s),
        "transform": report::gantt_transform(s),
        "moved": moved,
        "tasks": states,
        "parts": parts,
    })
}

/// Follow one run: every change of its tip becomes an update with the tasks that changed
/// since `since` (the tip the page was drawn at); a deleted run ends the stream saying so.
/// `all`: the page draws every task (`view=all`).
fn watch_run(
    sh: &Shared,
    repo: &Repo,
    run: &str,
    since: Option<&str>,
    all: bool,
    mut w: Box<dyn Write + Send>,
) -> std::io::Result<()> {
    let start = since.and_then(|t| gix::ObjectId::from_hex(t.as_bytes()).ok());
    let current = match runs::tip(repo, run) {
        Ok(Some(t)) => t,
        _ => return send(&mut w, "gone", &serde_json::json!({"message": format!("run {run} no longer exists")})),
    };
    // The page's own state, or (a tip we cannot read) the current one and a reload.
    let (mut tip, mut prev) = match start.and_then(|t| sh.state_at(repo, run, t).ok().map(|s| (t, s))) {
        Some(x) => x,
        None => match sh.state_at(repo, run, current) {
            Ok(s) => {
                if since.is_some() {
                    send(&mut w, "reload", &serde_json::json!({}))?;
                }
                (current, s)
            }
            Err(e) => return send(&mut w, "gone", &serde_json::json!({"message": format!("run {run}: {e:#}")})),
        },
    };
    let draw = Drawing::new(sh, repo, &prev, all);
    let mut last = Instant::now() - TICK;
    // The waves of a big run go out when tasks moved, at most once a tick (a run of many
    // waves has a table of 50 rows, and tasks may end several times a second).
    let (mut waves_due, mut waves_sent) = (false, Instant::now() - TICK);
    let mut waves_now = |moved: bool| {
        waves_due |= moved;
        let now = waves_due && waves_sent.elapsed() >= TICK;
        if now {
            (waves_due, waves_sent) = (false, Instant::now());
        }
        now
    };
    loop {
        let now_tip = match runs::tip(repo, run) {
            Ok(t) => t,
            // A ref being rewritten or packed under us: look again.
            Err(_) => {
                std::thread::sleep(POLL);
                continue;
            }
        };
        let Some(now_tip) = now_tip else {
            return send(
                &mut w,
                "gone",
                &serde_json::json!({"message": format!("run {run} was deleted (its ref is gone)")}),
            );
        };
        if now_tip != tip {
            if let Ok(cur) = sh.state_at(repo, run, now_tip) {
                let (changed, moved): (Vec<usize>, bool) = if cur.tasks.len() != prev.tasks.len() {
                    ((0..cur.tasks.len()).collect(), true)
                } else {
                    (
                        (0..cur.tasks.len())
                            .filter(|&i| cur.tasks[i] != prev.tasks[i] || cur.tasks[i].status == TaskStatus::Running)
                            .collect(),
                        (0..cur.tasks.len()).any(|i| cur.tasks[i].status != prev.tasks[i].status),
                    )
                };
                let waves = waves_now(moved);
                send(&mut w, "update", &update(&cur, &now_tip.to_string(), &changed, moved, waves, &draw))?;
                (tip, prev) = (now_tip, cur);
                last = Instant::now();
            }
        } else if last.elapsed() >= TICK {
            let waves = waves_now(false);
            if prev.effective_status() == RunStatus::Running || waves {
                // Running bars grow with the axis, with nothing new in the log (and waves held
                // back go out).
                let running: Vec<usize> =
                    (0..prev.tasks.len()).filter(|&i| prev.tasks[i].status == TaskStatus::Running).collect();
                send(&mut w, "update", &update(&prev, &tip.to_string(), &running, false, waves, &draw))?;
            } else {
                // Quiet: a comment, so that a page gone away is noticed.
                w.write_all(b": idle\n\n")?;
                w.flush()?;
            }
            last = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}

/// Follow the list of runs: a new run, or a run that moved, redraws the table.
fn watch_runs(repo: &Repo, mut w: Box<dyn Write + Send>) -> std::io::Result<()> {
    let mut seen = runs::tips(repo).unwrap_or_default();
    let mut last = Instant::now();
    loop {
        std::thread::sleep(POLL);
        let Ok(now) = runs::tips(repo) else { continue };
        if now != seen {
            if let Ok(table) = runs_table(repo) {
                send(&mut w, "runs", &serde_json::json!({ "html": table }))?;
                seen = now;
                last = Instant::now();
            }
        } else if last.elapsed() >= TICK {
            w.write_all(b": idle\n\n")?;
            w.flush()?;
            last = Instant::now();
        }
    }
}
