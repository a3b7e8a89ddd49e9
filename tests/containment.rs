//! Agents are untrusted: each test is an attack by a hostile agent script that must fail —
//! daemons that outlive the task or hold its pipes, a leaked repository environment, moves of
//! other refs, escapes from the sandbox, two orchestrators on one run, hostile inputs.

mod common;
use common::{kill_all, processes_with, wait_until, TestRepo};
use std::process::Stdio;

/// A sleep whose command line is unique to this test, so survivors can be found.
fn unique_sleep(tag: u32) -> String {
    format!("{}.{}{tag}", 600 + tag, std::process::id())
}

/// Both mechanisms: the PID namespace (default here) and the subreaper fallback.
const MODES: [&str; 2] = ["pidns", "subreaper"];

#[test]
fn daemons_holding_the_pipe_neither_hang_the_run_nor_outlive_the_task() {
    for (i, mode) in MODES.iter().enumerate() {
        let r = TestRepo::new();
        r.use_fake_agent();
        let s1 = unique_sleep(10 + i as u32);
        let s2 = unique_sleep(20 + i as u32);
        let beat = r.scratch("heartbeat");
        // A setsid daemon keeping stdout open, and a double-forked one writing forever.
        r.prompt(
            "daemon",
            "",
            &format!(
                "write d.txt d\nsh setsid sleep {s1} &\nsh ( ( while :; do echo x >> {}; sleep 0.05; done ) & ) ; (sleep {s2} &)",
                beat.display()
            ),
        );
        r.commit("prompts");
        let o = r.gp_env(&["run", "prompts", "--no-integrate"], &[("GIT_PARALLEL_CONTAIN", mode)]);
        let survivors = [processes_with(&s1), processes_with(&s2)].concat();
        kill_all(&s1);
        kill_all(&s2);
        o.ok();
        assert_eq!(r.task_state("1", "daemon")["status"], "succeeded", "{mode}");
        assert!(survivors.is_empty(), "{mode}: processes outlived their task: {survivors:?}");
        let len = std::fs::metadata(&beat).map(|m| m.len()).unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let later = std::fs::metadata(&beat).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, later, "{mode}: a double-forked writer still runs after the task");
    }
}

#[test]
fn a_timeout_takes_effect_even_when_daemons_hold_the_pipe_and_ignore_term() {
    for (i, mode) in MODES.iter().enumerate() {
        let r = TestRepo::new();
        r.use_fake_agent();
        let s = unique_sleep(30 + i as u32);
        r.prompt("stuck", "", &format!("sh setsid sh -c 'trap \"\" TERM; exec sleep {s}' &\nignore-term\nhang"));
        r.commit("prompts");
        let o = r.gp_env(&["run", "prompts", "--no-integrate", "--timeout", "1s"], &[("GIT_PARALLEL_CONTAIN", mode)]);
        let survivors = processes_with(&s);
        kill_all(&s);
        o.code(1);
        assert_eq!(r.task_state("1", "stuck")["status"], "timed-out", "{mode}");
        assert!(survivors.is_empty(), "{mode}: survivors after a timeout: {survivors:?}");
    }
}

#[test]
fn kill_9_of_the_orchestrator_takes_every_agent_process_with_it() {
    for (i, mode) in MODES.iter().enumerate() {
        let r = TestRepo::new();
        r.use_fake_agent();
        let direct = unique_sleep(40 + i as u32);
        let daemon = unique_sleep(50 + i as u32);
        r.prompt("long", "", &format!("sh sleep {direct} &\nsh setsid sleep {daemon} &\nhang"));
        r.commit("prompts");
        let mut c = r.command(common::bin());
        c.args(["run", "prompts", "--no-integrate"]).env("GIT_PARALLEL_CONTAIN", mode);
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        wait_until("the agent's daemons to start", 20, || {
            !processes_with(&direct).is_empty() && !processes_with(&daemon).is_empty()
        });
        child.kill().unwrap();
        child.wait().unwrap();
        let gone = |m: &str| {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_secs(5) {
                if processes_with(m).is_empty() {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            false
        };
        let direct_gone = gone(&direct);
        let daemon_gone = gone(&daemon);
        kill_all(&direct);
        kill_all(&daemon);
        assert!(direct_gone, "{mode}: the agent's child outlived kill -9 of the orchestrator");
        assert!(daemon_gone, "{mode}: a setsid daemon outlived kill -9 of the orchestrator");
    }
}

#[test]
fn sigterm_to_the_orchestrator_stops_a_run_whose_agent_has_daemons() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let s = unique_sleep(60);
    r.prompt("busy", "", &format!("sh setsid sleep {s} &\nignore-term\nhang"));
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--no-integrate"]);
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    wait_until("the daemon", 20, || !processes_with(&s).is_empty());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let survivors = processes_with(&s);
    kill_all(&s);
    assert!(!status.success());
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    assert_eq!(r.task_state("1", "busy")["status"], "interrupted");
}

#[test]
fn a_repository_environment_from_a_hook_never_reaches_the_agent() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("env", "", "sh env | grep '^GIT_' | sort > seen-env.txt\nwrite e.txt e\ncommit agent work");
    r.commit("prompts");
    let main_before = r.git(&["rev-parse", "main"]);
    let git_dir = r.path(".git");
    let index = git_dir.join("index");
    // As inside a hook or `git rebase -x`: everything points at the main worktree.
    let o = r.gp_env(
        &["run", "prompts", "--no-integrate"],
        &[
            ("GIT_DIR", git_dir.to_str().unwrap()),
            ("GIT_WORK_TREE", r.root.to_str().unwrap()),
            ("GIT_INDEX_FILE", index.to_str().unwrap()),
            ("GIT_OBJECT_DIRECTORY", git_dir.join("objects").to_str().unwrap()),
            ("GIT_PREFIX", ""),
        ],
    );
    o.ok();
    assert_eq!(r.git(&["rev-parse", "main"]), main_before, "the agent's commit landed on main");
    assert_eq!(r.task_state("1", "env")["status"], "succeeded");
    let seen = r.git(&["cat-file", "-p", "parallel/1/env:seen-env.txt"]);
    for var in ["GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=", "GIT_OBJECT_DIRECTORY=", "GIT_PREFIX="] {
        assert!(!seen.lines().any(|l| l.starts_with(var)), "{var} reached the agent:\n{seen}");
    }
    assert!(r.git(&["log", "--format=%s", "main..parallel/1/env"]).lines().any(|l| l == "agent work"));
    assert_eq!(r.git(&["status", "--porcelain"]), "", "the main worktree changed");
}

#[test]
fn changes_outside_the_task_branch_are_undone_and_fail_the_task() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.git(&["tag", "v1"]);
    let root = r.root.display().to_string();
    r.prompt("deleter", "", "write a.txt a\ngit update-ref -d refs/heads/main");
    r.prompt("tagger", "", "write b.txt b\ncommit b\ngit tag -f v1 HEAD");
    r.prompt("rewinder", "", "write c.txt c\ngit update-ref refs/heads/main HEAD~1");
    r.prompt("switcher", "", &format!("write d.txt d\nsh git -C {root} checkout -q -b other"));
    r.prompt("stager", "", &format!("write e.txt e\nsh cd {root} && echo x > staged.txt && git add staged.txt"));
    r.prompt("resetter", "", "write f.txt f\ncommit f\ngit reset -q --hard HEAD~2");
    r.prompt("honest", "", "write g.txt g");
    r.commit("prompts");
    let main_before = r.git(&["rev-parse", "main"]);
    let v1 = r.git(&["rev-parse", "v1"]);
    // One at a time: without --sandbox a change is attributed to the task running when it happened.
    let o = r.gp(&["run", "prompts", "-j", "1"]);
    o.code(1);
    let reason = |t: &str| {
        let s = r.task_state("1", t);
        assert_eq!(s["status"], "failed", "{t}: {s}");
        s["reason"].as_str().unwrap().to_string()
    };
    assert!(reason("deleter").contains("deleted branch main"), "{}", reason("deleter"));
    assert!(reason("tagger").contains("moved tag v1"), "{}", reason("tagger"));
    assert!(reason("rewinder").contains("moved branch main"), "{}", reason("rewinder"));
    assert!(
        reason("switcher").contains("switched the main worktree's HEAD from main to other"),
        "{}",
        reason("switcher")
    );
    assert!(reason("stager").contains("changed the main worktree's index (restored)"), "{}", reason("stager"));
    assert!(reason("resetter").contains("no longer descends"), "{}", reason("resetter"));
    assert_eq!(r.task_state("1", "honest")["status"], "succeeded");
    // Everything is as it was, and integration holds the base and the honest task only.
    assert_eq!(r.git(&["rev-parse", "main"]), main_before);
    assert_eq!(r.git(&["rev-parse", "v1"]), v1);
    assert_eq!(r.git(&["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(r.git(&["diff", "--cached", "--name-only"]), "");
    let tree = r.git(&["ls-tree", "-r", "--name-only", "parallel/1/integration"]);
    assert!(tree.contains("g.txt") && tree.contains("prompts/honest.md") && tree.contains("README.md"), "{tree}");
    assert!(!tree.contains("f.txt"), "{tree}");
}

#[test]
fn the_users_own_commits_during_a_run_are_not_blamed_on_agents() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let go = r.scratch("go");
    let started = r.scratch("started");
    r.prompt(
        "slow",
        "",
        &format!("write s.txt s\nsh touch {}; while [ ! -e {} ]; do sleep 0.05; done", started.display(), go.display()),
    );
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--no-integrate"]);
    let child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_until("the agent to start", 20, || started.exists());
    // The user commits on main and stages a file while the agent works.
    r.write("user.txt", "mine");
    let mine = r.commit("user work");
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(r.git(&["rev-parse", "main"]), mine);
    assert_eq!(r.task_state("1", "slow")["status"], "succeeded");
}

#[test]
fn under_the_sandbox_nothing_the_agent_writes_runs_later_outside_it() {
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is needed; .ci/run installs it");
    let r = TestRepo::new();
    r.use_fake_agent();
    r.git(&["tag", "v1"]);
    let pwned = r.scratch("pwned");
    let p = pwned.display();
    let common = r.path(".git");
    let c = common.display();
    let config_before = std::fs::read_to_string(common.join("config")).unwrap();
    r.prompt(
        "attacker",
        "",
        &format!(
            "write ok.txt ok\ncommit own work\n\
             sh git config core.fsmonitor 'touch {p}'\n\
             sh mkdir -p {c}/hooks && printf '#!/bin/sh\\ntouch {p}\\n' > {c}/hooks/post-checkout && chmod +x {c}/hooks/post-checkout\n\
             sh mkdir -p {c}/info && echo '* filter=evil' > {c}/info/attributes\n\
             sh echo 'gitdir: /tmp' > .git\n\
             git update-ref -d refs/heads/main\n\
             git tag -f v1 HEAD\n\
             sh git -C {root} checkout -q -b other",
            root = r.root.display()
        ),
    );
    r.commit("prompts");
    let main_before = r.git(&["rev-parse", "main"]);
    let v1 = r.git(&["rev-parse", "v1"]);
    let o = r.gp(&["run", "prompts", "--sandbox", "--no-integrate"]);
    o.ok();
    // Its own commit landed; nothing else it tried did.
    assert_eq!(r.task_state("1", "attacker")["status"], "succeeded");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/attacker:ok.txt"]), "ok");
    assert_eq!(std::fs::read_to_string(common.join("config")).unwrap(), config_before);
    assert!(!common.join("hooks/post-checkout").exists());
    assert!(!common.join("info/attributes").exists());
    assert_eq!(r.git(&["rev-parse", "main"]), main_before);
    assert_eq!(r.git(&["rev-parse", "v1"]), v1);
    assert_eq!(r.git(&["symbolic-ref", "HEAD"]), "refs/heads/main");
    // The user's next git commands run nothing of the agent's.
    r.git(&["status"]);
    r.git(&["checkout", "-q", "-b", "after"]);
    assert!(!pwned.exists(), "the agent's command ran outside the sandbox");
}

#[test]
fn resume_keeps_the_sandbox() {
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is needed; .ci/run installs it");
    let r = TestRepo::new();
    r.use_fake_agent();
    let outside = r.scratch("outside.txt");
    r.prompt("a", "", "write a.txt a");
    r.prompt("b", "depends_on: [a]", &format!("write {} escaped\nwrite b.txt b", outside.display()));
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts", "--sandbox", "--no-integrate"], &[("GIT_PARALLEL_FAULT", "task-committed")]);
    assert_eq!(o.code, -1, "killed at the fault point: {}", o.stderr);
    let o = r.gp(&["resume", "1"]);
    assert!(o.stderr.contains("in the sandbox"), "{}", o.stderr);
    assert!(!outside.exists(), "resume ran the agent outside the sandbox");
    // Its write went to the sandbox's private /tmp, which goes with it.
    assert_eq!(r.task_state("1", "b")["status"], "succeeded");
    r.git(&["cat-file", "-e", "parallel/1/b:b.txt"]);
}

#[test]
fn two_resumes_started_at_once_never_both_go_ahead() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let stamp = r.scratch("stamps");
    let go = r.scratch("go");
    r.prompt(
        "a",
        "",
        &format!("stamp {}\nsh while [ ! -e {} ]; do sleep 0.05; done\nwrite a.txt a", stamp.display(), go.display()),
    );
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts"], &[("GIT_PARALLEL_FAULT", "worktree-created")]);
    assert_eq!(o.code, -1, "{}", o.stderr);
    let start = || {
        let mut c = r.command(common::bin());
        c.args(["resume", "1"]).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let (mut a, mut b) = (start(), start());
    // The loser refuses while the winner's agent waits; only then may the agent finish.
    wait_until("one resume to refuse", 30, || a.try_wait().unwrap().is_some() || b.try_wait().unwrap().is_some());
    std::fs::write(&go, "").unwrap();
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [oa.status.code(), ob.status.code()];
    let errs = [String::from_utf8_lossy(&oa.stderr).into_owned(), String::from_utf8_lossy(&ob.stderr).into_owned()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(2)), "{codes:?}\n{errs:?}");
    let loser = &errs[codes.iter().position(|c| *c == Some(2)).unwrap()];
    assert!(loser.contains("is being orchestrated by pid") || loser.contains("is still running (pid"), "{loser}");
    assert_eq!(std::fs::read_to_string(&stamp).unwrap().lines().count(), 1, "the agent ran once");
    assert_eq!(r.run_state("1")["status"], "succeeded");
    assert_eq!(r.git_out(&["rev-parse", "-q", "--verify", "refs/parallel/owners/1"]).code, 1, "the claim is released");
}

#[test]
fn a_prompt_that_leaves_the_repository_through_a_symlink_is_refused() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let secret = r.scratch("secret.md");
    std::fs::write(&secret, "the user's secret").unwrap();
    std::fs::create_dir_all(r.path("prompts")).unwrap();
    std::os::unix::fs::symlink(&secret, r.path("prompts/leak.md")).unwrap();
    std::os::unix::fs::symlink("/etc", r.path("prompts/etc.md")).unwrap();
    r.prompt("fine", "", "write f.txt f");
    for args in [&["plan", "prompts"][..], &["run", "prompts"], &["plan", "prompts/leak.md"]] {
        let o = r.gp(args);
        o.code(2);
        assert!(o.stderr.contains("outside the repository"), "{args:?}: {}", o.stderr);
    }
    assert_eq!(r.git_out(&["for-each-ref", "refs/parallel/"]).stdout, "", "nothing was stored");
}

#[test]
fn files_brought_in_by_parallel_copy_never_enter_a_commit() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write(".env", "TOKEN=secret\n");
    r.write("local.toml", "key = 1\n");
    r.git(&["config", "--add", "parallel.copy", ".env"]);
    r.git(&["config", "--add", "parallel.copy", "local.toml"]);
    r.prompt("edits", "", "write a.txt a\nappend local.toml key = 2");
    r.prompt("commits", "", "write b.txt b\ncommit everything, secrets included");
    std::fs::create_dir_all(r.path("prompts")).unwrap();
    r.git(&["add", "prompts", "README.md"]);
    r.git(&["commit", "-q", "-m", "prompts"]);
    let o = r.gp(&["run", "prompts", "--allow-dirty", "--no-integrate"]);
    let edits = r.task_state("1", "edits");
    assert_eq!(edits["status"], "succeeded", "{}", o.stderr);
    let tree = r.git(&["ls-tree", "-r", "--name-only", "parallel/1/edits"]);
    assert!(tree.contains("a.txt") && !tree.contains(".env") && !tree.contains("local.toml"), "{tree}");
    let commits = r.task_state("1", "commits");
    assert_eq!(commits["status"], "failed");
    assert!(commits["reason"].as_str().unwrap().contains(".env"), "{commits}");
}

#[test]
fn one_ctrl_c_delivered_twice_by_git_and_the_terminal_still_gives_the_grace_period() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.git(&["config", "parallel.killGrace", "5s"]);
    let graceful = r.scratch("graceful");
    let started = r.scratch("started");
    r.prompt(
        "polite",
        "",
        &format!(
            "sh trap 'echo term > {g}; exit 0' TERM; touch {s}; while :; do sleep 0.05; done",
            g = graceful.display(),
            s = started.display()
        ),
    );
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--no-integrate"]);
    let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_until("the agent", 20, || started.exists());
    // What git and the terminal do with one key press: two SIGINTs, milliseconds apart.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(std::time::Duration::from_millis(20));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait().unwrap();
    assert!(graceful.exists(), "the agent was killed without its SIGTERM and grace period");
    assert_eq!(r.task_state("1", "polite")["status"], "interrupted");
}

#[test]
fn an_agent_that_moves_another_tasks_branch_cannot_slip_commits_into_its_result() {
    // Without the sandbox one agent can point a running task's branch at a commit of its own;
    // the victim's worktree log shows the gap and its result is not taken. Under the sandbox
    // each agent sees only its own branch (a copy of ours): the move lands in the attacker's
    // view and the victim's result is its own.
    for sandbox in [false, true] {
        let r = TestRepo::new();
        r.use_fake_agent();
        r.prompt("victim", "", "write v.txt v\ncommit victim work\nsleep 3000\nwrite w.txt w\ncommit more victim work");
        r.prompt(
            "attacker",
            "",
            "sleep 1000\nwrite evil.txt evil\ncommit own work\n\
             sh git update-ref refs/heads/parallel/1/victim $(git commit-tree HEAD^{tree} -p HEAD -m injected)",
        );
        r.commit("prompts");
        let mut args = vec!["run", "prompts", "--no-integrate", "-j", "2"];
        if sandbox {
            args.push("--sandbox");
        }
        let o = r.gp(&args);
        if sandbox {
            o.ok();
            assert_eq!(r.task_state("1", "victim")["status"], "succeeded");
            let log = r.git(&["log", "--format=%s", "parallel/1/victim"]);
            assert!(log.contains("more victim work") && !log.contains("injected"), "{log}");
            assert_eq!(r.task_state("1", "attacker")["status"], "succeeded");
            continue;
        }
        assert_eq!(o.code, 1, "sandbox {sandbox}: {}", o.stderr);
        let victim = r.task_state("1", "victim");
        assert_eq!(victim["status"], "failed", "sandbox {sandbox}: {victim}");
        let reason = victim["reason"].as_str().unwrap();
        assert!(reason.contains("moved from outside its worktree"), "{reason}");
        assert!(victim["commit"].is_null(), "{victim}");
        // The attacker's own work is its own.
        assert_eq!(r.task_state("1", "attacker")["status"], "succeeded", "sandbox {sandbox}");
    }
}

#[test]
fn an_agents_own_resets_and_retries_are_not_taken_for_moves_from_outside() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Commits, rewinds one, moves its own branch with update-ref, commits again: all from its
    // worktree, all in its log.
    r.prompt(
        "busy",
        "",
        "write a.txt a\ncommit one\nwrite b.txt b\ncommit two\ngit reset -q --hard HEAD~1\n\
         sh git update-ref refs/heads/parallel/1/busy HEAD\nwrite c.txt c\ncommit three",
    );
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    assert_eq!(r.task_state("1", "busy")["status"], "succeeded");
}

#[test]
fn under_the_sandbox_the_agent_cannot_write_outside_its_worktree() {
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is needed; .ci/run installs it");
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write("src/app.py", "ok = True\n");
    r.commit("app");
    let outside = r.scratch("outside.txt");
    std::fs::write(&outside, "mine\n").unwrap();
    let home_rc = r.home.join(".bashrc");
    r.prompt(
        "attacker",
        "",
        &format!(
            "write own.txt own\n\
             sh (echo pwned >> {root}/src/app.py) 2>/dev/null; (echo pwned >> {out}) 2>/dev/null; (echo pwned >> {rc}) 2>/dev/null; true",
            root = r.root.display(),
            out = outside.display(),
            rc = home_rc.display()
        ),
    );
    r.commit("prompts");
    r.gp(&["run", "prompts", "--sandbox", "--no-integrate"]).ok();
    assert_eq!(r.task_state("1", "attacker")["status"], "succeeded");
    assert_eq!(std::fs::read_to_string(r.path("src/app.py")).unwrap(), "ok = True\n", "the main checkout");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "mine\n", "a file elsewhere");
    assert!(!home_rc.exists(), "the user's home");
}

#[test]
fn a_process_bomb_is_killed_whole_and_fails_its_task_without_retry() {
    for (i, mode) in MODES.iter().enumerate() {
        let r = TestRepo::new();
        r.use_fake_agent();
        r.git(&["config", "parallel.maxProcesses", "100"]);
        let marker = unique_sleep(40 + i as u32);
        // 300 processes, then it waits for them: a bounded fork bomb.
        r.prompt(
            "bomb",
            "",
            &format!("write b.txt b\nsh bash -c 'for i in $(seq 300); do sleep {marker} & done; wait' 2>/dev/null"),
        );
        r.prompt("calm", "", "write c.txt c");
        r.commit("prompts");
        let o = r.gp_env(&["run", "prompts", "--no-integrate", "--retries", "2"], &[("GIT_PARALLEL_CONTAIN", mode)]);
        let survivors = processes_with(&marker);
        kill_all(&marker);
        assert_eq!(o.code, 1, "{mode}: {}", o.stderr);
        let t = r.task_state("1", "bomb");
        assert_eq!(t["status"], "failed", "{mode}: {t}");
        let reason = t["reason"].as_str().unwrap();
        assert!(reason.contains("more than parallel.maxProcesses (100)"), "{mode}: {reason}");
        assert_eq!(t["attempts"], 1, "{mode}: a limit broken is not retried: {t}");
        assert!(survivors.is_empty(), "{mode}: {} processes outlived the task", survivors.len());
        assert_eq!(r.task_state("1", "calm")["status"], "succeeded", "{mode}");
    }
}

#[test]
fn an_agent_that_kills_its_supervisor_still_takes_its_daemons_with_it() {
    // Without namespaces (the subreaper mode, as where user namespaces are refused), the agent
    // can see and SIGKILL its supervisor; what it started then falls to the orchestrator,
    // which kills it, instead of to init.
    let r = TestRepo::new();
    r.use_fake_agent();
    let marker = unique_sleep(60);
    r.prompt(
        "escape",
        "",
        &format!(
            "write e.txt e\nsh setsid sleep {marker} & (sleep {marker} &) ; sleep 0.3; kill -9 $(ps -o ppid= -p $PPID)\nsleep 3000"
        ),
    );
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts", "--no-integrate", "--retries", "0"], &[("GIT_PARALLEL_CONTAIN", "subreaper")]);
    // The sweep runs every second; give the last one time to reap.
    wait_until("the escaped processes to be killed", 10, || processes_with(&marker).is_empty());
    let survivors = processes_with(&marker);
    kill_all(&marker);
    assert!(survivors.is_empty(), "{} processes escaped: {}", survivors.len(), o.stderr);
    assert_eq!(r.task_state("1", "escape")["status"], "failed", "{}", o.stderr);
}

#[test]
fn under_the_sandbox_the_object_store_is_out_of_reach_and_forged_objects_stay_out() {
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is needed; .ci/run installs it");
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write("src/app.py", "ok = True\n");
    r.commit("app");
    // Some history in a pack, and a loose object beside it.
    r.git(&["gc", "-q"]);
    r.write("notes.txt", "loose\n");
    r.commit("loose");
    let objects = r.path(".git/objects");
    let c = objects.display();
    // Deletes every object it can; then writes, in its own store, an object whose content is
    // not what its name says: the name of a blob the user will write later.
    let future = "the user's next file\n";
    let future_id = {
        let mut c = r.command("git");
        c.args(["hash-object", "--stdin"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(future.as_bytes()).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
    };
    let (sub, file) = future_id.split_at(2);
    r.prompt(
        "vandal",
        "",
        &format!(
            "write own.txt own\ncommit own work\n\
             sh rm -rf {c}/pack {c}/?? 2>/dev/null; true\n\
             sh d=$GIT_OBJECT_DIRECTORY/{sub}; mkdir -p $d; printf 'blob 5\\0evil\\n' | python3 -c 'import sys,zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))' > $d/{file}"
        ),
    );
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--sandbox", "--no-integrate"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let t = r.task_state("1", "vandal");
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["reason"].as_str().unwrap().contains("forged"), "{t}");
    // Nothing of the user's history went, and the forged object never entered the store.
    r.git(&["fsck", "--no-dangling"]);
    assert!(!objects.join(sub).join(file).exists(), "the forged object was taken in");
    assert!(r.git_out(&["cat-file", "-e", &future_id]).code != 0);
}

#[test]
fn a_sandboxed_agents_commits_are_taken_in_from_its_own_store() {
    assert!(git_parallel::proc::which("bwrap").is_some(), "bubblewrap is needed; .ci/run installs it");
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt alpha\ncommit first\nwrite b.txt beta\ncommit second\nwrite c.txt gamma");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--sandbox"]).ok();
    assert_eq!(r.task_state("1", "a")["status"], "succeeded");
    for f in ["a.txt", "b.txt", "c.txt"] {
        r.git(&["cat-file", "-e", &format!("parallel/1/integration:{f}")]);
    }
    r.git(&["fsck", "--no-dangling"]);
}

#[test]
fn a_fast_fork_bomb_is_held_by_the_kernel_not_only_by_the_count() {
    // Counting processes once a second lets a fast bomb reach thousands first; the supervisor
    // puts the task under a kernel limit (a cgroup's pids.max, or RLIMIT_NPROC in the task's own
    // user namespace) just above parallel.maxProcesses.
    for (i, mode) in MODES.iter().enumerate() {
        let r = TestRepo::new();
        r.use_fake_agent();
        r.git(&["config", "parallel.maxProcesses", "50"]);
        let marker = unique_sleep(80 + i as u32);
        r.prompt(
            "bomb",
            "",
            &format!(
                "write b.txt b\nsh echo $GIT_PARALLEL_PROCESS_LIMIT > {}\nsh bash -c 'while true; do sleep {marker} & done' 2>/dev/null",
                r.scratch("limit").display()
            ),
        );
        r.commit("prompts");
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (peak, done, marker) = (peak.clone(), done.clone(), marker.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    peak.fetch_max(processes_with(&marker).len(), std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            })
        };
        let o = r.gp_env(&["run", "prompts", "--no-integrate", "--retries", "0"], &[("GIT_PARALLEL_CONTAIN", mode)]);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watcher.join().unwrap();
        let survivors = processes_with(&marker);
        kill_all(&marker);
        let limit = std::fs::read_to_string(r.scratch("limit")).unwrap_or_default();
        let t = r.task_state("1", "bomb");
        assert_eq!(t["status"], "failed", "{mode}: {}", o.stderr);
        assert!(t["reason"].as_str().unwrap().contains("parallel.maxProcesses (50)"), "{mode}: {t}");
        assert!(survivors.is_empty(), "{mode}: {} survivors", survivors.len());
        // SAFETY: getuid has no arguments.
        let root = unsafe { libc::getuid() } == 0;
        // As root a cgroup is expected wherever the pids controller is mounted writable; as a
        // user, RLIMIT_NPROC in the task's user namespace (the PID namespace mode).
        let cgroups = std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists()
            || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").is_ok_and(|c| c.contains("pids"));
        let expected = if root && cgroups {
            Some("cgroup")
        } else if !root && *mode == "pidns" {
            Some("rlimit")
        } else {
            None
        };
        if let Some(e) = expected {
            assert_eq!(limit.trim(), e, "{mode}");
            let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
            assert!(peak <= 58, "{mode}: {peak} processes at once under a limit of 50 ({})", limit.trim());
        }
    }
    // No cgroup of ours outlives its supervisor (named by its pid; other tests' may be live).
    let left = std::fs::read_dir("/sys/fs/cgroup/pids/git-parallel")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| !git_parallel::proc::pid_alive(*pid))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(left, 0, "cgroups left behind");
}

/// The supervisor arms its own death signal, then checks the run that started it is still its
/// parent: one whose run is already gone never starts the command (nothing would stop it). The
/// variable that names the parent never reaches the command.
#[test]
fn a_supervisor_whose_run_is_gone_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let script = format!("test -z \"$GIT_PARALLEL_SUPERVISOR_PARENT\" && touch {}", marker.display());
    let run = |parent: u32| {
        std::process::Command::new(common::bin())
            .args(["__contain", "--", "sh", "-c", &script])
            .env("GIT_PARALLEL_SUPERVISOR_PARENT", parent.to_string())
            .stdin(Stdio::null())
            .status()
            .unwrap()
    };
    // pid 1 is never this test: as if the run died before the supervisor looked.
    let orphan = run(1);
    assert_eq!(orphan.code(), Some(137), "{orphan:?}");
    assert!(!marker.exists(), "the command ran though its run was gone");
    let ours = run(std::process::id());
    assert!(ours.success(), "{ours:?}");
    assert!(marker.exists(), "the command did not run, or saw the parent's variable");
}
