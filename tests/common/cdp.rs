//! A headless Chromium driven through the Chrome DevTools Protocol over
//! `--remote-debugging-pipe` (commands on its fd 3, answers and events on its fd 4, each a JSON
//! message ended by a NUL byte): a page's own timings and DOM read from outside, with no
//! WebSocket client. Shared by tests/dashboard.rs and benches/dashboard.rs.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Chromium, if installed.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// A browser, killed on drop.
pub struct Browser {
    child: Child,
    to: File,
    from: BufReader<File>,
    next: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two new descriptors we then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Start `exe` headless with a fresh profile in `profile`, its stderr into `err`; `cmd`
    /// carries the environment (a test's hermetic one).
    pub fn launch(mut cmd: Command, profile: &Path, err: File) -> Browser {
        let (cmd_r, cmd_w) = pipe();
        let (ev_r, ev_w) = pipe();
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
        let (a, b) = (std::os::fd::AsRawFd::as_raw_fd(&cmd_r), std::os::fd::AsRawFd::as_raw_fd(&ev_w));
        // SAFETY: dup2 and prctl only, between fork and exec. dup2 onto 3 and 4 clears
        // close-on-exec there; Chromium dies with its parent (a killed test leaves none).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                let (a2, b2) = (libc::dup(a), libc::dup(b));
                if a2 < 0 || b2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(b2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts");
        drop((cmd_r, ev_w));
        Browser { child, to: File::from(cmd_w), from: BufReader::new(File::from(ev_r)), next: 1 }
    }

    /// Call `method` (in `session`, or on the browser) and wait for its answer's result;
    /// events met on the way are dropped. A browser that does not answer within 120 s fails
    /// the caller instead of hanging it.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "Chromium did not answer {method}");
            let mut buf = Vec::new();
            let n = self.from.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "Chromium closed its pipe before answering {method}");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// A new tab on `about:blank`, attached: its session id.
    pub fn tab(&mut self) -> String {
        let t = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let s = self.call(None, "Target.attachToTarget", json!({"targetId": t["targetId"], "flatten": true}));
        s["sessionId"].as_str().unwrap().to_string()
    }

    /// The value of `expr` in the tab's page (a promise is awaited).
    pub fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["value"].clone()
    }

    /// Poll `expr` in the tab every 50 ms until it is true; fail after `secs` seconds.
    pub fn wait_for(&mut self, session: &str, what: &str, secs: u64, expr: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.eval(session, expr) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
