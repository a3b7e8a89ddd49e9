//! `git parallel dashboard`: the token, the page and its live event stream while a fake-agent
//! run progresses, a run deleted while watched, two dashboards at once, escaping of agents'
//! text, the actions' same-origin rule; and a real headless Chromium watching a task change
//! state without a reload (skipped, saying so, where Chromium is not installed).

#[path = "common/cdp.rs"]
mod cdp;
mod common;
use common::TestRepo;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

/// A dashboard process, stopped on drop.
struct Dashboard {
    child: Child,
    url: String,
    port: u16,
    token: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dashboard(r: &TestRepo, args: &[&str]) -> Dashboard {
    let mut c = r.command(common::bin());
    c.arg("dashboard").args(args).stdout(Stdio::piped()).stderr(std::fs::File::create(r.scratch("dash.err")).unwrap());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().to_string();
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap_or_else(|| panic!("bad URL {url:?}"));
    let (port, token) = rest.split_once("/?token=").unwrap();
    assert_eq!(token.len(), 32, "{url}");
    Dashboard { port: port.parse().unwrap(), token: token.to_string(), url, child }
}

/// A plain HTTP/1.1 exchange: (status, head, body). The body is read to the end (the server
/// closes the connection).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A server that never answers fails the test instead of hanging it.
    s.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (code, head.to_string(), body)
}

/// A chunked body's bytes (a big answer comes in chunks).
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

/// An event stream being read: its events one at a time.
struct Stream {
    r: BufReader<TcpStream>,
    /// A stream that only keeps itself alive (comments) for this long fails the test instead
    /// of hanging it.
    deadline: std::time::Instant,
}

impl Stream {
    fn open(port: u16, path: &str) -> Stream {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(120))).unwrap();
        // The connection ends with the stream (no next request on it).
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l == "\r\n" {
                break;
            }
            if l.to_ascii_lowercase().starts_with("content-type:") {
                assert!(l.contains("text/event-stream"), "{l}");
            }
        }
        Stream { r, deadline: std::time::Instant::now() + std::time::Duration::from_secs(120) }
    }

    /// The next event: (name, data as JSON); None when the server closed the stream.
    fn next(&mut self) -> Option<(String, serde_json::Value)> {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            assert!(std::time::Instant::now() < self.deadline, "gave up waiting for an event");
            let mut l = String::new();
            if self.r.read_line(&mut l).unwrap() == 0 {
                return None;
            }
            let l = l.trim_end_matches('\n');
            if l.is_empty() {
                if !name.is_empty() {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            if let Some(n) = l.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = l.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
    }

    /// Read events until one satisfies `f`; every event read is passed to `f`.
    fn until(&mut self, what: &str, mut f: impl FnMut(&str, &serde_json::Value) -> bool) {
        loop {
            let (name, data) = self.next().unwrap_or_else(|| panic!("stream closed before {what}"));
            if f(&name, &data) {
                return;
            }
        }
    }
}

/// A finished one-task run.
fn finished_run() -> TestRepo {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    r
}

#[test]
fn every_request_needs_the_token() {
    let r = finished_run();
    let d = dashboard(&r, &["1"]);
    let t = d.token.clone();
    let wrong = "0".repeat(32);
    assert_eq!(http(d.port, "GET", "/", &[]).0, 403);
    assert_eq!(http(d.port, "GET", &format!("/?token={wrong}"), &[]).0, 403);
    assert_eq!(http(d.port, "GET", "/events?run=1", &[]).0, 403);
    assert_eq!(http(d.port, "GET", "/task?run=1&task=a", &[]).0, 403);
    assert_eq!(http(d.port, "POST", "/cancel?run=1", &[("Origin", &format!("http://127.0.0.1:{}", d.port))]).0, 403);
    let cookie_name = format!("git_parallel_{}", d.port);
    assert_eq!(http(d.port, "GET", "/", &[("Cookie", &format!("{cookie_name}={wrong}"))]).0, 403);

    // The token: the page, and a cookie that stands for the token from then on.
    let (code, head, body) = http(d.port, "GET", &format!("/?token={t}"), &[]);
    assert_eq!(code, 200, "{head}");
    assert!(body.starts_with("<!doctype html>") && body.contains("git-parallel run 1"), "{body}");
    let set = head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect(&head).to_string();
    assert!(set.contains(&format!("{cookie_name}={t}")) && set.contains("HttpOnly") && set.contains("SameSite=Strict"));
    // Self-contained: no address outside the page's own.
    let outside = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!outside.contains("http://") && !outside.contains("https://") && !outside.contains("src="), "{body}");
    let (code, _, _) = http(d.port, "GET", "/", &[("Cookie", &format!("other=1; {cookie_name}={t}"))]);
    assert_eq!(code, 200);

    // Actions: POST only, and from the page's own origin.
    assert_eq!(http(d.port, "GET", &format!("/cancel?run=1&token={t}"), &[]).0, 405);
    assert_eq!(http(d.port, "POST", &format!("/cancel?run=1&token={t}"), &[]).0, 403);
    assert_eq!(http(d.port, "POST", &format!("/cancel?run=1&token={t}"), &[("Origin", "http://evil.example")]).0, 403);
    // Same origin, but the run is over: cancel says why (as `git parallel cancel` does).
    let (code, _, body) = http(
        d.port,
        "POST",
        &format!("/cancel?run=1&token={t}"),
        &[("Origin", &format!("http://127.0.0.1:{}", d.port))],
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("not running"), "{body}");
}

#[test]
fn a_task_goes_from_running_to_succeeded_on_the_stream_and_two_dashboards_follow_it() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let go = r.scratch("go");
    r.prompt("slow", "", &format!("sh while [ ! -e '{}' ]; do sleep 0.05; done\nwrite s.txt s", go.display()));
    r.prompt("quick", "", "write q.txt q");
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "-j", "2", "--no-integrate"]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut run = c.spawn().unwrap();
    common::wait_until("the task to run", 60, || {
        r.raw_state("1").is_some_and(|_| r.task_state("1", "slow")["status"] == "running")
    });
    let d1 = dashboard(&r, &["1"]);
    let d2 = dashboard(&r, &[]);
    assert_ne!(d1.token, d2.token);
    // One dashboard's token opens the other not.
    assert_eq!(http(d2.port, "GET", &format!("/?token={}", d1.token), &[]).0, 403);

    let mut streams = Vec::new();
    for d in [&d1, &d2] {
        let (code, _, page) = http(d.port, "GET", &format!("/?run=1&token={}", d.token), &[]);
        assert_eq!(code, 200);
        // The page as drawn: the task running, and the tip it was drawn at.
        assert!(page.contains("<td>slow</td><td>running</td>"), "{page}");
        let tip = page.split("data-tip=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        streams.push(Stream::open(d.port, &format!("/events?run=1&tip={tip}&token={}", d.token)));
    }
    std::fs::write(&go, "").unwrap();
    for s in &mut streams {
        s.until("slow to succeed", |name, u| {
            assert_eq!(name, "update", "{u}");
            let st = u["tasks"]["slow"].as_str();
            if st == Some("succeeded") {
                // Its markup came with it: the row, the bars, the node.
                let parts = u["parts"].as_array().unwrap();
                assert!(parts.iter().any(|p| p[0] == "row"
                    && p[1] == "slow"
                    && p[2].as_str().unwrap().contains("<td>slow</td><td>succeeded</td>")));
                assert!(parts.iter().any(|p| p[0] == "bars" && p[1] == "slow"));
                assert!(parts.iter().any(|p| p[0] == "node" && p[1] == "slow"));
                return true;
            }
            false
        });
    }
    assert!(run.wait().unwrap().success());
    // The task view: what `git parallel logs 1 slow` prints.
    let (code, head, body) = http(d1.port, "GET", &format!("/task?run=1&task=slow&token={}", d1.token), &[]);
    assert_eq!(code, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain"), "{head}");
    assert_eq!(body, r.gp(&["logs", "1", "slow"]).ok().stdout);
    // Every run: the list.
    let (code, _, list) = http(d2.port, "GET", &format!("/?token={}", d2.token), &[]);
    assert_eq!(code, 200);
    assert!(list.contains("<a href=\"/?run=1\">1</a>"), "{list}");
}

#[test]
fn a_run_deleted_while_watched_ends_the_stream_saying_so() {
    let r = finished_run();
    let d = dashboard(&r, &[]);
    // A page drawn one event ago: the stream's first update says the watcher is on the run.
    let before = r.git(&["rev-parse", "refs/parallel/runs/1~1"]);
    let mut s = Stream::open(d.port, &format!("/events?run=1&tip={before}&token={}", d.token));
    assert_eq!(s.next().unwrap().0, "update");
    r.git(&["update-ref", "-d", "refs/parallel/runs/1"]);
    let (name, data) = loop {
        let e = s.next().expect("an event before the end");
        if e.0 != "update" && e.0 != "reload" {
            break e;
        }
    };
    assert_eq!(name, "gone");
    assert!(data["message"].as_str().unwrap().contains("run 1 was deleted"), "{data}");
    assert!(s.next().is_none(), "the stream ends");
    // The dashboard goes on: the list (now empty) still answers.
    let (code, _, body) = http(d.port, "GET", &format!("/?token={}", d.token), &[]);
    assert_eq!(code, 200, "{body}");
}

#[test]
fn agents_text_is_escaped() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("evil", "", "print <script>alert('transcript')</script>\nfail 1 <script>alert('reason')</script>");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).code(1);
    let d = dashboard(&r, &["1"]);
    let (_, _, page) = http(d.port, "GET", &format!("/?token={}", d.token), &[]);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;"), "{page}");
    // The page's own script is the only one, and the policy runs no other.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    let (_, head, _) = http(d.port, "GET", &format!("/?token={}", d.token), &[]);
    assert!(head.contains("script-src 'nonce-"), "{head}");
    // The transcript is plain text the page puts in as text.
    let (_, head, body) = http(d.port, "GET", &format!("/task?run=1&task=evil&token={}", d.token), &[]);
    assert!(body.contains("<script>alert('reason')</script>"), "{body}");
    let h = head.to_ascii_lowercase();
    assert!(h.contains("content-type: text/plain") && h.contains("x-content-type-options: nosniff"), "{head}");
}

/// The page's own origin, as a browser sends it with a POST.
fn origin(d: &Dashboard) -> String {
    format!("http://127.0.0.1:{}", d.port)
}

#[test]
fn cancel_from_the_page_stops_a_live_run() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let never = r.scratch("never");
    r.prompt("wait", "", &format!("sh while [ ! -e '{}' ]; do sleep 0.05; done", never.display()));
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--no-integrate"]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut run = c.spawn().unwrap();
    common::wait_until("the task to run", 60, || {
        r.raw_state("1").is_some_and(|_| r.task_state("1", "wait")["status"] == "running")
    });
    let d = dashboard(&r, &["1"]);
    let mut s = Stream::open(d.port, &format!("/events?run=1&token={}", d.token));
    let (code, _, body) = http(d.port, "POST", &format!("/cancel?run=1&token={}", d.token), &[("Origin", &origin(&d))]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("run 1 cancelled"), "{body}");
    s.until("the run to be cancelled", |_, u| u["status"] == "cancelled");
    assert!(!run.wait().unwrap().success());
    assert_eq!(r.run_state("1")["status"], "cancelled");
}

#[test]
fn retry_from_the_page_runs_a_failed_task_again() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Fails once (a transient error, with no retries left), then succeeds.
    r.prompt("flaky", "", &format!("transient 1 {}\nwrite f.txt ok", r.scratch("counter").display()));
    r.prompt("fine", "", "write g.txt ok");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--retries", "0", "--no-integrate"]).code(1);
    assert_eq!(r.task_state("1", "flaky")["status"], "failed");
    let d = dashboard(&r, &["1"]);
    let t = &d.token;
    // Only a failed task, and only with the page's origin.
    let (code, _, body) =
        http(d.port, "POST", &format!("/retry?run=1&task=fine&token={t}"), &[("Origin", &origin(&d))]);
    assert_eq!(code, 409, "{body}");
    assert_eq!(http(d.port, "POST", &format!("/retry?run=1&task=flaky&token={t}"), &[]).0, 403);
    let mut s = Stream::open(d.port, &format!("/events?run=1&token={t}"));
    let (code, _, body) =
        http(d.port, "POST", &format!("/retry?run=1&task=flaky&token={t}"), &[("Origin", &origin(&d))]);
    assert_eq!(code, 200, "{body}");
    // It went through `git parallel resume 1 --retry flaky`: the task runs again, and succeeds.
    s.until("the task to succeed", |_, u| u["tasks"]["flaky"] == "succeeded");
    common::wait_until("the resumed run to end", 60, || r.run_state("1")["status"] == "succeeded");
    assert_eq!(r.task_state("1", "flaky")["attempts"], 2);
}

/// A headless Chromium (Debian's) on its own profile in the test's scratch folder, or None
/// (saying so) where it is not installed.
fn browser(r: &TestRepo, test: &str) -> Option<cdp::Browser> {
    let Some(exe) = cdp::chromium() else {
        eprintln!("SKIPPED {test}: chromium is not installed (apt-get install chromium)");
        return None;
    };
    let err = std::fs::File::create(r.scratch("chromium.err")).unwrap();
    Some(cdp::Browser::launch(r.command(exe), &r.scratch("chromium-profile"), err))
}

/// Open `url` in a new tab of `b`; its session. The window gets a mark that only a reload
/// would wipe out.
fn open_page(b: &mut cdp::Browser, url: &str, what: &str) -> String {
    let tab = b.tab();
    b.call(Some(&tab), "Page.navigate", serde_json::json!({ "url": url }));
    b.wait_for(&tab, what, 60, "document.readyState === 'complete' && document.title.startsWith('git-parallel run')");
    b.eval(&tab, "window.notReloaded = true");
    tab
}

/// The state a page's table shows for `task`.
fn shown(b: &mut cdp::Browser, tab: &str, task: &str) -> serde_json::Value {
    b.eval(
        tab,
        &format!("(document.querySelector('tr[data-task=\"{task}\"]') || {{cells: [0, {{}}]}}).cells[1].textContent"),
    )
}

#[test]
fn a_real_browser_follows_a_live_run_without_reloading() {
    let r = TestRepo::new();
    let Some(mut b) = browser(&r, "a_real_browser_follows_a_live_run_without_reloading") else { return };
    r.use_fake_agent();
    let go = r.scratch("go");
    let wait = format!("sh while [ ! -e '{}' ]; do sleep 0.05; done", go.display());
    // A small live run as the README shows it: done, failed, running, and waiting tasks.
    r.prompt("api-client", "", "write client.txt c");
    r.prompt("parser", "", "write parser.txt p");
    r.prompt("auth", "", &format!("{wait}\nwrite auth.txt a"));
    r.prompt("migrations", "", "fail 1 tests failed: 3 of 120 (db/migrate_test.py)");
    r.prompt("search", "", &format!("{wait}\nwrite search.txt s"));
    r.prompt("docs", "depends_on: [auth]", "write docs.txt d");
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "-j", "3", "--retries", "0", "--no-integrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut run = c.spawn().unwrap();
    common::wait_until("two tasks to wait and the others to end", 120, || {
        r.raw_state("1").is_some_and(|_| {
            let s = r.run_state("1");
            let st = |t: &str| s["tasks"].as_array().unwrap().iter().find(|x| x["id"] == t).unwrap()["status"].clone();
            st("auth") == "running" && st("search") == "running" && st("migrations") == "failed"
        })
    });
    let d = dashboard(&r, &["1"]);
    let tab = open_page(&mut b, &d.url, "the page to load");
    assert_eq!(shown(&mut b, &tab, "auth"), "running");
    // Only the page's script, applying an update from the stream, writes this title.
    b.wait_for(&tab, "an update", 60, "document.title.includes(': running, ')");
    // The run's log catches up: the machine as measured with agents running, and nothing
    // holds new starts back (the one task left waits for its dependency).
    b.wait_for(
        &tab,
        "the governor's reading",
        60,
        "document.body.textContent.includes('machine (read at') && document.body.textContent.includes('concurrency: 2 running, at most 3 (-j 3)') && !document.body.textContent.includes('new starts wait')",
    );
    b.eval(&tab, "document.querySelector('tr[data-task=\"migrations\"]').click()");
    b.wait_for(&tab, "the task view", 60, "document.getElementById('log').textContent.includes('tests failed')");
    // What the README shows (DASHBOARD_SCREENSHOT=docs/dashboard.png to write it there).
    let shot = b.call(Some(&tab), "Page.captureScreenshot", serde_json::json!({ "format": "png" }));
    let png =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, shot["data"].as_str().unwrap()).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
    if let Some(path) = std::env::var_os("DASHBOARD_SCREENSHOT") {
        std::fs::write(path, &png).unwrap();
    }
    std::fs::write(&go, "").unwrap();
    b.wait_for(&tab, "the run's end on the page", 120, "document.title === 'git-parallel run 1: failed, 6/6 done'");
    assert_eq!(shown(&mut b, &tab, "auth"), "succeeded");
    assert_eq!(shown(&mut b, &tab, "docs"), "succeeded");
    assert_eq!(b.eval(&tab, "window.notReloaded === true"), true, "the page was reloaded");
    assert!(!run.wait().unwrap().success());
}

#[test]
fn a_real_browser_keeps_a_big_runs_running_filter_current() {
    use git_parallel::store::runs::TaskStatus;
    let r = TestRepo::new();
    let Some(mut b) = browser(&r, "a_real_browser_keeps_a_big_runs_running_filter_current") else { return };
    let mut log = made_run(&r, 150, 0, 3);
    let d = dashboard(&r, &["1"]);
    let tab = open_page(&mut b, &format!("{}&run=1&state=running", d.url), "the page to load");
    let rows = "JSON.stringify([...document.querySelectorAll('#paged tr[data-task]')].map(r => r.dataset.task))";
    assert_eq!(b.eval(&tab, rows), r#"["t147","t148","t149"]"#);
    log.append(ended("t148", TaskStatus::Succeeded), &[]).unwrap();
    // The page fetches its rows again: the task that ended leaves the running ones.
    b.wait_for(&tab, "the rows to follow", 60, &format!("{rows} === '[\"t147\",\"t149\"]'"));
    assert_eq!(b.eval(&tab, "document.querySelector('#paged').textContent.includes('running 2')"), true);
    assert_eq!(b.eval(&tab, "window.notReloaded === true"), true, "the page was reloaded");
}

/// A run of `n` planned tasks written straight into the run's log (no agent runs): the last
/// `running` started and not ended, the `failed` before them failed, the rest succeeded.
/// Returns the log, to write more events as a live run would.
fn made_run(r: &TestRepo, n: usize, failed: usize, running: usize) -> git_parallel::store::runs::RunLog {
    use git_parallel::store::runs::*;
    for i in 0..n {
        r.write(&format!("prompts/t{i}.md"), &format!("---\nfiles: [t{i}.txt]\n---\nTask {i}\n"));
    }
    r.commit("prompts");
    r.gp(&["plan", "prompts", "-j", "8"]).ok();
    let repo = r.open();
    let plan_id = r.git(&["for-each-ref", "--format=%(refname:lstrip=3)", "refs/parallel/plans/"]);
    let plan = git_parallel::store::plans::load(&repo, &plan_id).unwrap();
    let tasks = plan.tasks.iter().map(|t| (t.id.clone(), t.kind)).collect();
    let base = r.git(&["rev-parse", "HEAD"]);
    let planned =
        Event::Planned { plan: plan.id.clone(), base, agent: "fake".into(), workers: 8, tasks, sandbox: false };
    let mut log = RunLog::create(&repo, planned).unwrap();
    for i in 0..n {
        let task = format!("t{i}");
        let started = Event::Started {
            task: task.clone(),
            attempt: 1,
            worktree: String::new(),
            branch: format!("parallel/1/{task}"),
            start_commit: "0".repeat(40),
            agent: None,
        };
        log.append(started, &[]).unwrap();
        if i < n - running {
            log.append(
                ended(&task, if i < n - running - failed { TaskStatus::Succeeded } else { TaskStatus::Failed }),
                &[],
            )
            .unwrap();
        }
    }
    log
}

fn ended(task: &str, status: git_parallel::store::runs::TaskStatus) -> git_parallel::store::runs::Event {
    git_parallel::store::runs::Event::Finished {
        task: task.into(),
        status,
        commit: None,
        reason: None,
        exit_code: Some(0),
        metrics: Default::default(),
        files_changed: vec![],
        wall_ms: 1000,
    }
}

/// The task ids of a page's table rows, in order.
fn row_ids(html: &str) -> Vec<String> {
    html.split("<tr data-part=\"row\" data-task=\"").skip(1).map(|r| r[..r.find('"').unwrap()].to_string()).collect()
}

#[test]
fn a_big_run_is_drawn_a_page_at_a_time_with_what_needs_a_look_first() {
    use git_parallel::store::runs::TaskStatus;
    let r = TestRepo::new();
    // 350 tasks: 340 succeeded, 5 failed (t340-t344), 5 running (t345-t349).
    let mut log = made_run(&r, 350, 5, 5);
    let d = dashboard(&r, &["1"]);
    let get = |q: &str| {
        let (code, _, body) = http(d.port, "GET", &format!("/?run=1&{q}&token={}", d.token), &[]);
        assert_eq!(code, 200, "{body}");
        body
    };
    let page = get("");
    let ids = row_ids(&page);
    assert_eq!(ids.len(), 100, "{page}");
    // Running first, then failed, then the rest, each in natural order.
    let want: Vec<String> = (345..350).chain(340..345).chain(0..90).map(|i| format!("t{i}")).collect();
    assert_eq!(ids, want);
    assert!(page.contains(">running 5</a>") && page.contains(">failed 5</a>") && page.contains(">succeeded 340</a>"));
    assert!(page.contains("tasks 1-100 of 350") && page.contains("page 1 of 4"), "{page}");
    // The timeline draws the page's tasks, and the dependencies are summarised by wave.
    assert_eq!(page.matches("<g data-part=\"bars\"").count(), 100);
    assert_eq!(page.matches("data-part=\"node\"").count(), 0);
    assert!(page.contains("data-part=\"waves\"") && page.contains("5 running"), "{page}");

    let failed = get("state=failed");
    assert_eq!(row_ids(&failed), (340..345).map(|i| format!("t{i}")).collect::<Vec<_>>());
    assert!(failed.contains("<b>failed 5</b>"), "{failed}");
    let last = get("page=4");
    assert_eq!(row_ids(&last), (240..340).map(|i| format!("t{i}")).collect::<Vec<_>>()[50..].to_vec());
    assert!(last.contains("previous page") && !last.contains("next page"), "{last}");
    // Every task on one page, as the report draws it.
    let all = get("view=all");
    assert_eq!(row_ids(&all).len(), 350);
    assert_eq!(all.matches("data-part=\"node\"").count(), 350);
    assert!(page.len() * 3 < all.len(), "paged {} bytes, whole {} bytes", page.len(), all.len());

    // A running task ends: the update says tasks moved, with the waves; the rows the page
    // fetches again show the running ones left.
    let tip = page.split("data-tip=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let mut s = Stream::open(d.port, &format!("/events?run=1&tip={tip}&token={}", d.token));
    log.append(ended("t347", TaskStatus::Succeeded), &[]).unwrap();
    s.until("t347 to end", |_, u| {
        if u["tasks"]["t347"] != "succeeded" {
            return false;
        }
        assert_eq!(u["moved"], true, "{u}");
        let parts = u["parts"].as_array().unwrap();
        assert!(parts.iter().any(|p| p[0] == "waves" && p[2].as_str().unwrap().contains("4 running")), "{u}");
        assert!(!parts.iter().any(|p| p[0] == "node"), "{u}");
        true
    });
    let (code, head, rows) = http(d.port, "GET", &format!("/rows?run=1&state=running&token={}", d.token), &[]);
    assert_eq!(code, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    assert!(rows.starts_with("<div id=\"paged\" data-state=\"running\""), "{rows}");
    assert_eq!(row_ids(&rows), ["t345", "t346", "t348", "t349"]);
}

#[test]
fn a_big_runs_report_shows_what_needs_a_look_first_and_folds_the_rest() {
    let r = TestRepo::new();
    // 350 tasks: 340 succeeded, 5 failed (t340-t344), 5 running (t345-t349).
    made_run(&r, 350, 5, 5);
    let html = r.gp(&["report", "1", "--format", "html"]).stdout;
    let (up_front, folded) = html.split_once("<details>").expect("the rest is folded");
    // Running, then failed, then the rest in natural order: 100 rows up front.
    let want: Vec<String> = (345..350).chain(340..345).chain(0..90).map(|i| format!("t{i}")).collect();
    assert_eq!(row_ids(up_front), want);
    assert!(up_front.contains("100 of 350 tasks, running and failed first"), "{up_front}");
    // Every task is in the report once: the others in a closed part, as are their timeline
    // and one box per task; the dependencies are summarised by wave up front.
    let mut all = row_ids(&html);
    assert_eq!(all.len(), 350);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 350);
    assert!(folded.contains("<summary>the other 250 tasks</summary>"), "{folded}");
    assert_eq!(html.matches("<g data-part=\"bars\"").count(), 350);
    let timeline = html.split("<summary>the timeline of the other 250 tasks</summary>").nth(1).unwrap();
    let timeline = timeline.split("</details>").next().unwrap();
    assert_eq!(timeline.matches("<g data-part=\"bars\"").count(), 250);
    assert!(html.contains("data-part=\"waves\""));
    let boxes = html.split("<summary>every task's box</summary>").nth(1).expect("the boxes are folded");
    assert_eq!(boxes.matches("data-part=\"node\"").count(), 350);
    assert!(!html.contains("<details open"), "a folded part is open");
}

#[test]
fn the_governor_and_rate_limits_are_in_the_run_log_and_on_the_page() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let go = r.scratch("go");
    let counter = r.scratch("api-calls");
    // `limited` meets a rate limit once, then runs until `go`; `next` waits for it under -j 1.
    r.prompt(
        "limited",
        "",
        &format!(
            "transient 1 {} 429\nsh while [ ! -e '{}' ]; do sleep 0.05; done\nwrite l.txt l",
            counter.display(),
            go.display()
        ),
    );
    r.prompt("next", "", "write n.txt n");
    r.commit("prompts");
    let started = std::time::Instant::now();
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "-j", "1", "--retries", "2", "--no-integrate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut run = c.spawn().unwrap();
    common::wait_until("the rate limit and a held start to be recorded", 60, || {
        r.raw_state("1").is_some_and(|_| {
            let s = r.run_state("1");
            s["rate_limits"]["custom"]["hits"] == 1
                && s["limit"].is_string()
                && s["governor"]["cpus"].is_u64()
                && r.task_state("1", "limited")["status"] == "running"
        })
    });
    // In the run's log, so in `status --json`: the machine, the ceiling and what holds.
    let s = r.run_state("1");
    let g = &s["governor"];
    assert!(g["cpus"].as_u64().unwrap() >= 1 && g["memory_total"].as_u64().unwrap() > 0, "{s}");
    assert!(g["memory_used"].as_u64().unwrap() <= g["memory_total"].as_u64().unwrap(), "{s}");
    assert_eq!((g["ceiling"].as_u64(), g["ceiling_reason"].as_str()), (Some(1), Some("-j 1")), "{s}");
    let rl = &s["rate_limits"]["custom"];
    assert_eq!((rl["task"].as_str(), rl["limit"].as_u64()), (Some("limited"), Some(1)), "{s}");
    assert!(rl["until"].as_f64().unwrap() >= rl["at"].as_f64().unwrap(), "{s}");
    let limit = s["limit"].as_str().unwrap().to_string();
    // `status` says the same in words (the page's lines).
    let text = r.gp(&["status", "1"]).ok().stdout.clone();
    assert!(text.contains(&format!("concurrency: 1 running, at most 1 (-j 1); new starts wait: {limit}")), "{text}");
    assert!(text.contains("machine (read at ") && text.contains("rate limits: custom: 1 rate limit"), "{text}");

    // On the page, and in the live updates' headline.
    let d = dashboard(&r, &["1"]);
    let (_, _, page) = http(d.port, "GET", &format!("/?token={}", d.token), &[]);
    let held = format!("concurrency: 1 running, at most 1 (-j 1); new starts wait: {}", escape(&limit));
    assert!(page.contains(&held), "{held}\n{page}");
    let cores = g["cpu_percent"].as_f64().unwrap() / 100.0 * g["cpus"].as_f64().unwrap();
    let machine = format!("): CPU demand {cores:.1} cores on {} CPUs", g["cpus"]);
    assert!(page.contains("<p>machine (read at "), "{page}");
    assert!(page.contains(&machine), "{machine}\n{page}");
    assert!(page.contains("rate limits: custom: 1 rate limit (the last at "), "{page}");
    assert!(page.contains(", task limited): at most 1 at once since, new starts paused until "), "{page}");
    let mut stream = Stream::open(d.port, &format!("/events?run=1&token={}", d.token));
    stream.until("an update", |name, u| {
        if name != "update" {
            return false;
        }
        let head = u["head"].as_str().unwrap();
        assert!(head.contains("machine (read at ") && head.contains("rate limits: custom: 1 rate limit"), "{head}");
        true
    });
    drop(stream);

    std::fs::write(&go, "").unwrap();
    assert!(run.wait().unwrap().success());
    let secs = started.elapsed().as_secs();
    // Readings are recorded sparingly: the first once an agent was measured, then at most one
    // per 15 s.
    let log = r.git(&["log", "--format=%s", "refs/parallel/runs/1"]);
    let readings = log.lines().filter(|l| l.starts_with("governor: ")).count();
    assert!(readings >= 1 && readings as u64 <= 1 + secs / 15, "{readings} readings in {secs} s:\n{log}");
    // Once the run ended: its rate limits still, no live concurrency.
    let (_, _, page) = http(d.port, "GET", &format!("/?token={}", d.token), &[]);
    assert!(page.contains("rate limits: custom: 1 rate limit") && !page.contains("concurrency:"), "{page}");
}

/// Text as the page escapes it (`ui::report::escape`).
fn escape(s: &str) -> String {
    git_parallel::ui::report::escape(s)
}
