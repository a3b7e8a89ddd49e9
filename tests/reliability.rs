//! Reliability: agent faults, orchestrator crashes with resume, bad input, concurrent runs,
//! the resource governor under memory pressure, and the sandbox.

mod common;
use common::TestRepo;

fn count_lines(p: &std::path::Path) -> usize {
    std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn a_crashing_agent_is_retried_then_fails_clearly() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("boom", "", "write half.txt h\ncrash");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--retries", "1", "--no-integrate"]);
    o.code(1);
    let t = r.task_state("1", "boom");
    assert_eq!(t["status"], "failed");
    assert_eq!(t["attempts"], 2, "a crash is transient: retried once");
    assert!(t["reason"].as_str().unwrap().contains("signal 6"), "{t}");
    // A failed task's half work is not committed.
    assert_eq!(r.git_out(&["cat-file", "-e", "parallel/1/boom:half.txt"]).code, 128);
}

#[test]
fn garbage_and_floods_on_stdout_do_not_break_the_run() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("noisy", "", "print {\"type\": broken json\nprint plain words\nflood 40\nwrite n.txt n");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    assert_eq!(r.task_state("1", "noisy")["status"], "succeeded");
    let size: usize = r.task_log("1", "noisy", "jsonl").len() + 1;
    assert!(size <= 16 << 20, "transcript is capped: {size}");
    assert!(size > 1 << 20, "transcript kept what fits: {size}");
}

#[test]
fn an_agent_that_leaves_its_branch_or_moves_another_is_not_trusted() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("escape", "", "git checkout -q -b elsewhere\nwrite e.txt e");
    r.prompt("hijack", "", "write h.txt h\ncommit mine\ngit update-ref refs/heads/main HEAD");
    r.commit("prompts");
    let main_before = r.git(&["rev-parse", "main"]);
    let o = r.gp(&["run", "prompts", "-j", "2", "--no-integrate"]);
    o.code(1);
    let escape = r.task_state("1", "escape");
    assert_eq!(escape["status"], "failed");
    assert!(escape["reason"].as_str().unwrap().contains("moved the worktree off parallel/1/escape"), "{escape}");
    let hijack = r.task_state("1", "hijack");
    assert_eq!(hijack["status"], "failed");
    let reason = hijack["reason"].as_str().unwrap();
    assert!(reason.contains("moved branch main") && reason.contains(&main_before[..12]), "{reason}");
}

/// Kill the orchestrator at `fault`, then resume; every agent runs exactly once after its
/// last recorded success, and everything ends integrated.
fn crash_and_resume(fault: &str, expect_runs: &[(&str, usize)]) {
    let r = TestRepo::new();
    r.use_fake_agent();
    let stamp = |t: &str| r.scratch(&format!("runs-{t}"));
    r.prompt("a", "", &format!("stamp {}\nwrite a.txt a", stamp("a").display()));
    r.prompt("b", "depends_on: [a]", &format!("stamp {}\nwrite b.txt b", stamp("b").display()));
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts"], &[("GIT_PARALLEL_FAULT", fault)]);
    assert_eq!(o.code, -1, "killed by SIGKILL at {fault}: {}", o.stderr);
    let st = r.gp(&["status", "1"]);
    assert!(st.stdout.contains("interrupted"), "{}", st.stdout);
    r.gp(&["resume", "1"]).ok();
    for (t, n) in expect_runs {
        assert_eq!(count_lines(&stamp(t)), *n, "agent runs of {t} after a crash at {fault}");
        assert_eq!(r.task_state("1", t)["status"], "succeeded");
    }
    assert_eq!(r.run_state("1")["status"], "succeeded");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/integration:b.txt"]), "b");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/integration:a.txt"]), "a");
}

#[test]
fn sigkill_during_worktree_creation_then_resume() {
    // Killed before a's agent started: it runs once, on resume.
    crash_and_resume("worktree-created", &[("a", 1), ("b", 1)]);
}

#[test]
fn sigkill_after_a_commit_before_it_was_recorded_then_resume() {
    // a's result was committed but not recorded: resume recovers it without a second run.
    crash_and_resume("task-committed", &[("a", 1), ("b", 1)]);
}

#[test]
fn sigkill_mid_integration_then_resume() {
    crash_and_resume("mid-integration", &[("a", 1), ("b", 1)]);
}

#[test]
fn dirty_main_working_tree_is_refused_and_kept() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    r.write("README.md", "my unsaved work\n");
    let o = r.gp(&["run", "prompts"]);
    o.code(2);
    assert!(o.stderr.contains("uncommitted changes (README.md)") && o.stderr.contains("--allow-dirty"), "{}", o.stderr);
    assert_eq!(r.read("README.md"), "my unsaved work\n");
    assert_eq!(r.git(&["for-each-ref", "refs/parallel/runs/"]), "");
    r.gp(&["run", "prompts", "--allow-dirty"]).ok();
    assert_eq!(r.read("README.md"), "my unsaved work\n");
}

#[test]
fn detached_head_runs_from_the_commit() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    let head = r.commit("prompts");
    r.git(&["checkout", "-q", "--detach", &head]);
    r.gp(&["run", "prompts"]).ok();
    assert_eq!(r.git(&["rev-parse", "parallel/1/integration^1"]), head);
    assert_eq!(r.git(&["rev-parse", "HEAD"]), head);
}

#[test]
fn existing_branches_and_worktree_paths_are_never_clobbered() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    // A leftover branch of a run whose ref is gone: the new run takes another number.
    r.git(&["branch", "parallel/1/a"]);
    let leftover = r.git(&["rev-parse", "parallel/1/a"]);
    // And a folder in the way of the next run's worktree.
    let wt_root = r.tmp.path().join("repo.parallel");
    std::fs::create_dir_all(wt_root.join("2/a")).unwrap();
    std::fs::write(wt_root.join("2/a/precious.txt"), "mine").unwrap();
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.code(1);
    assert_eq!(r.git(&["rev-parse", "parallel/1/a"]), leftover);
    let t = r.task_state("2", "a");
    assert!(t["reason"].as_str().unwrap().contains("already exists and is not empty"), "{t}");
    assert_eq!(std::fs::read_to_string(wt_root.join("2/a/precious.txt")).unwrap(), "mine");
}

#[test]
fn unwritable_worktree_folder_is_refused_up_front() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    let file = r.scratch("a-file");
    std::fs::write(&file, "").unwrap();
    let dir = file.join("worktrees");
    let o = r.gp(&["run", "prompts", "--worktree-dir", dir.to_str().unwrap()]);
    o.code(2);
    assert!(o.stderr.contains("cannot create the worktree folder"), "{}", o.stderr);
    assert_eq!(r.git(&["for-each-ref", "refs/parallel/runs/"]), "");
}

#[test]
fn bad_plans_never_start_a_run() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "depends_on: [b]", "noop");
    r.prompt("b", "depends_on: [a]", "noop");
    r.commit("prompts");
    let o = r.gp(&["run", "prompts"]);
    o.code(2);
    assert!(o.stderr.contains("dependency cycle"), "{}", o.stderr);
    std::fs::create_dir_all(r.path("empty")).unwrap();
    r.gp(&["run", "empty"]).code(2);
    r.gp(&["run", "prompts", "--concurrency", "0"]).code(2);
    r.gp(&["run", "42"]).code(2);
    assert_eq!(r.git(&["for-each-ref", "refs/parallel/runs/"]), "");
}

#[test]
fn two_runs_at_once_keep_every_event_and_note() {
    let r = TestRepo::new();
    r.use_fake_agent();
    for d in ["one", "two"] {
        for i in 0..3 {
            let id = format!("{d}{i}");
            r.write(
                &format!("{d}/{id}.md"),
                &format!("# Task {id}\n\n```fake-agent\nwrite {id}.txt {id}\nsleep 100\n```\n"),
            );
        }
    }
    r.commit("prompts");
    let spawn = |dir: &str| {
        let mut c = r.command(common::bin());
        c.args(["run", dir, "-j", "2", "--no-integrate"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn("one"), spawn("two"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let repo = r.open();
    let mut tasks = 0;
    for run in ["1", "2"] {
        let records = git_parallel::store::runs::events(&repo, run).unwrap();
        let snapshot = git_parallel::store::runs::load(&repo, run).unwrap();
        assert_eq!(git_parallel::store::runs::replay(run, &records), snapshot);
        assert!(snapshot.tasks.iter().all(|t| t.status == git_parallel::store::runs::TaskStatus::Succeeded));
        tasks += snapshot.tasks.len();
    }
    assert_eq!(tasks, 6);
    assert_eq!(r.git(&["notes", "--ref=parallel", "list"]).lines().count(), 6, "no note lost");
}

#[test]
fn concurrent_writers_of_one_log_lose_nothing() {
    use git_parallel::prompt::TaskType;
    use git_parallel::store::runs::{Event, RunLog};
    let r = TestRepo::new();
    let repo = r.open();
    RunLog::create(
        &repo,
        Event::Planned {
            plan: "1".into(),
            base: "0".repeat(40),
            agent: "x".into(),
            workers: 1,
            tasks: vec![("t".into(), TaskType::Other)],
            sandbox: false,
        },
    )
    .unwrap();
    let threads: Vec<_> = (0..3)
        .map(|w| {
            let root = r.root.clone();
            std::thread::spawn(move || {
                let repo = git_parallel::repo::Repo::discover(&root).unwrap();
                let mut log = RunLog::open(&repo, "1").unwrap();
                for i in 0..20 {
                    log.append(
                        Event::Retried { task: "t".into(), attempt: i, reason: format!("writer {w}"), delay_ms: 0 },
                        &[],
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let records = git_parallel::store::runs::events(&repo, "1").unwrap();
    assert_eq!(records.len(), 61);
    let snapshot = git_parallel::store::runs::load(&repo, "1").unwrap();
    assert_eq!(snapshot.tasks[0].retries, 60);
    assert_eq!(git_parallel::store::runs::replay("1", &records), snapshot);
}

fn available_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = info
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn the_governor_keeps_memory_hungry_agents_within_budget() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Budget: room for one agent at a time, though three are asked for.
    let per_task = available_memory() * 2 / 3;
    r.git(&["config", "parallel.memoryPerTask", &per_task.to_string()]);
    let s = r.scratch("stamps");
    for id in ["a", "b", "c"] {
        r.prompt(id, "", &format!("stamp {0}\nalloc 200 300\nwrite {id}.txt {id}\nstamp-end {0}", s.display()));
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "3", "--no-integrate"]);
    o.ok();
    assert!(o.stderr.contains("up to 1 at once"), "{}", o.stderr);
    let mut spans: Vec<(u64, u64)> = Vec::new();
    let text = std::fs::read_to_string(&s).unwrap();
    for id in ["a", "b", "c"] {
        let t = |kind: &str| -> u64 {
            text.lines()
                .find(|l| l.starts_with(&format!("{id} {kind} ")))
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        spans.push((t("start"), t("end")));
    }
    spans.sort();
    let peak =
        (0..spans.len()).map(|i| spans.iter().filter(|o| o.0 < spans[i].1 && spans[i].0 < o.1).count()).max().unwrap();
    assert_eq!(peak, 1, "one 200 MiB agent at a time: {spans:?}");
}

#[test]
fn sandbox_confines_writes_to_the_worktree_and_git_dir() {
    if git_parallel::proc::which("bwrap").is_none() {
        panic!("bubblewrap (bwrap) is not installed; .ci/run installs it (apt-get install bubblewrap)");
    }
    let r = TestRepo::new();
    r.use_fake_agent();
    let main_file = r.path("escape.txt");
    let home_file = r.home.join("escape.txt");
    let other_wt = r.tmp.path().join("repo.parallel/1/inside/escape.txt");
    r.prompt(
        "inside",
        "",
        "write inside.txt ok\ncommit agent commit inside the sandbox\nwrite more.txt ok\nenv-to env.txt\nsleep 300",
    );
    r.prompt("main", "", &format!("write {} x", main_file.display()));
    r.prompt("home", "", &format!("write {} x", home_file.display()));
    r.prompt("other", "", &format!("sleep 100\nwrite {} x", other_wt.display()));
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2", "--sandbox", "--retries", "0", "--no-integrate"]);
    o.code(1);
    assert_eq!(r.task_state("1", "inside")["status"], "succeeded", "{}", o.stderr);
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/inside:inside.txt"]), "ok");
    for t in ["main", "other"] {
        assert_eq!(r.task_state("1", t)["status"], "failed", "{t}");
    }
    // The home is a private, empty folder in the sandbox: the write lands there and goes.
    assert_eq!(r.task_state("1", "home")["status"], "no-changes");
    assert!(!main_file.exists() && !home_file.exists() && !other_wt.exists());
    let stderr = r.task_log("1", "main", "stderr");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
}

#[test]
fn status_stays_correct_while_a_run_is_live() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("slow", "", "sleep 1500\nwrite s.txt s");
    r.commit("prompts");
    let mut c = r.command(common::bin());
    c.args(["run", "prompts", "--no-integrate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    common::wait_until("status to show the run live", 30, || {
        let o = r.gp(&["status", "--json"]);
        o.code == 0 && o.stdout.contains("\"effective_status\": \"running\"")
    });
    let o = r.gp(&["resume", "1"]);
    o.code(2);
    assert!(o.stderr.contains("still running"), "{}", o.stderr);
    // --watch follows the run to its end, then exits.
    let watch = r.gp(&["status", "1", "--watch"]);
    watch.ok();
    assert!(watch.stdout.contains("running") && watch.stdout.contains("run 1 (plan 1): succeeded"), "{}", watch.stdout);
    assert!(child.wait().unwrap().success());
}

/// Spans (start, end) in ms of each task's stamps, and the most that overlapped.
fn peak_overlap(stamps: &std::path::Path, ids: &[String]) -> usize {
    let text = std::fs::read_to_string(stamps).unwrap();
    let t = |id: &str, kind: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{id} {kind} ")))
            .unwrap_or_else(|| panic!("no {kind} stamp of {id}:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let spans: Vec<(u64, u64)> = ids.iter().map(|id| (t(id, "start"), t(id, "end"))).collect();
    spans.iter().map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count()).max().unwrap_or(0)
}

#[test]
fn an_underestimated_memory_footprint_slows_the_run_instead_of_overcommitting() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // Agents really take 300 MiB; the guess is 10 MiB; agents together may use 800 MiB.
    r.git(&["config", "parallel.memoryPerTask", "10m"]);
    r.git(&["config", "parallel.memoryLimit", "800m"]);
    let s = r.scratch("stamps");
    let ids: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    for id in &ids {
        r.prompt(id, "", &format!("stamp {0}\nalloc 300 2500\nwrite {id}.txt {id}\nstamp-end {0}", s.display()));
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "6", "--no-integrate"]);
    o.ok();
    let peak = peak_overlap(&s, &ids);
    assert!(peak <= 2, "{peak} agents of 300 MiB ran at once within an 800 MiB budget\n{}", o.stderr);
    assert!(o.stderr.contains("memory:"), "the narration says memory holds: {}", o.stderr);
}

#[test]
fn waiting_agents_run_all_at_once_by_default_on_a_small_machine() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // The defaults, not the test profile's generous limits.
    for k in ["parallel.reserveCpus", "parallel.memoryPerTask", "parallel.cpuLimit"] {
        r.git(&["config", "--unset", k]);
    }
    let s = r.scratch("stamps");
    let ids: Vec<String> = (0..6).map(|i| format!("w{i}")).collect();
    for id in &ids {
        r.prompt(id, "", &format!("stamp {0}\nsleep 5000\nwrite {id}.txt {id}\nstamp-end {0}", s.display()));
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    let peak = peak_overlap(&s, &ids);
    assert!(peak >= 5, "only {peak} of 6 waiting agents overlapped\n{}", o.stderr);
}

#[test]
fn cpu_heavy_agents_are_held_to_the_cpus() {
    let r = TestRepo::new();
    r.use_fake_agent();
    for k in ["parallel.reserveCpus", "parallel.memoryPerTask", "parallel.cpuLimit"] {
        r.git(&["config", "--unset", k]);
    }
    let cpus = std::thread::available_parallelism().unwrap().get();
    let s = r.scratch("stamps");
    let ids: Vec<String> = (0..(cpus * 3)).map(|i| format!("b{i}")).collect();
    for id in &ids {
        // Waiting first, so the first measurements see a light agent; then a long build.
        r.prompt(id, "", &format!("stamp {0}\nburn 4000\nwrite {id}.txt {id}\nstamp-end {0}", s.display()));
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    let peak = peak_overlap(&s, &ids);
    assert!(peak < ids.len(), "all {} CPU-bound agents ran at once on {cpus} CPUs\n{}", ids.len(), o.stderr);
    assert!(o.stderr.contains("CPU:"), "the narration says CPU holds: {}", o.stderr);
}

#[test]
fn rate_limits_slow_the_profile_down_and_never_fail_the_run() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.git(&["config", "parallel.retryDelay", "300ms"]);
    // The first four attempts, whichever tasks make them, hit HTTP 429.
    let counter = r.scratch("api-calls");
    let ids: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    for id in &ids {
        r.prompt(id, "", &format!("transient 4 {} 429\nsleep 200\nwrite {id}.txt {id}", counter.display()));
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "6", "--retries", "5", "--no-integrate"]);
    o.ok();
    for id in &ids {
        assert_eq!(r.task_state("1", id)["status"], "succeeded", "{id}");
    }
    assert!(o.stderr.contains("rate limited by the API"), "{}", o.stderr);
    assert!(o.stderr.contains("new starts wait until"), "the reset time is shown: {}", o.stderr);
}

#[test]
fn bad_run_options_are_refused_before_anything_is_stored() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    r.git(&["tag", "v1"]);
    let refused = |args: &[&str], what: &str| {
        let o = r.gp(args);
        o.code(2);
        assert!(o.stderr.contains(what), "{args:?}: {}", o.stderr);
    };
    refused(&["run", "prompts", "--into", "HEAD"], "not a branch name");
    refused(&["run", "prompts", "--into", "refs/tags/v1"], "is not one");
    refused(&["run", "prompts", "--into", "v1"], "there is a tag of that name");
    refused(&["run", "prompts", "--into", "bad..name"], "not a valid branch name");
    refused(&["run", "prompts", "--retries", "1000000"], "retries: at most 20");
    refused(&["run", "prompts", "--worktree-dir", "inside"], "inside the repository's working tree");
    refused(&["run", "prompts", "--worktree-dir", ".git/wt"], "inside the git directory");
    r.git(&["config", "parallel.retryDelay", "0s"]);
    refused(&["run", "prompts"], "parallel.retryDelay must be between");
    r.git(&["config", "parallel.agent", "claude"]);
    r.git(&["config", "--unset", "parallel.retryDelay"]);
    let o = r.gp_env(&["run", "prompts"], &[("PATH", "/usr/bin:/bin")]);
    o.code(2);
    assert_eq!(r.git_out(&["for-each-ref", "refs/parallel/"]).stdout, "", "a refused run stored nothing");
    // And integrate checks --into the same way.
    r.git(&["config", "parallel.agent", "custom"]);
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let o = r.gp(&["integrate", "1", "--into", "HEAD"]);
    o.code(2);
    assert_eq!(r.git_out(&["rev-parse", "-q", "--verify", "refs/heads/HEAD"]).code, 1);
}

#[test]
fn prompts_with_a_byte_order_mark_or_odd_front_matter_are_read_or_refused_clearly() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    // A byte-order mark before `---` (Windows editors): the front matter still counts.
    r.write("prompts/b.md", "\u{feff}---\ndepends_on: [a]\n---\n# B\n\n```fake-agent\nwrite b.txt b\n```\n");
    r.commit("prompts");
    let o = r.gp(&["plan", "prompts", "--json"]);
    o.ok();
    let plan = o.json();
    let b = plan["tasks"].as_array().unwrap().iter().find(|t| t["id"] == "b").unwrap().clone();
    assert_eq!(b["depends_on"], serde_json::json!(["a"]), "{b}");

    let bad = TestRepo::new();
    bad.use_fake_agent();
    bad.write("prompts/n.md", "---\ndepends_on: 5\n---\n# N\n\nwork\n");
    bad.write("prompts/5.md", "# five\n\nwork\n");
    bad.commit("prompts");
    bad.gp(&["plan", "prompts", "--dry-run"]).ok();
    bad.write("prompts/n.md", "---\ndepends_on: {x: y}\n---\n# N\n\nwork\n");
    let o = bad.gp(&["plan", "prompts", "--dry-run"]);
    o.code(2);
    assert!(
        o.stderr.contains("expected one name or a list of names") && !o.stderr.contains("untagged"),
        "{}",
        o.stderr
    );
    bad.write("prompts/n.md", "---\nagent: gpt-9\n---\n# N\n\nwork\n");
    let o = bad.gp(&["plan", "prompts", "--dry-run"]);
    o.code(2);
    assert!(o.stderr.contains("unknown agent `gpt-9`"), "{}", o.stderr);
}

#[test]
fn a_corrupt_run_ref_is_shown_as_such_and_stops_nothing_else() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    // Run 2 points at a plain commit, run 3 at a blob.
    r.git(&["update-ref", "refs/parallel/runs/2", "HEAD"]);
    let blob = r.git(&["hash-object", "-w", "README.md"]);
    r.git(&["update-ref", "refs/parallel/runs/3", &blob]);
    let o = r.gp(&["status"]);
    o.ok();
    assert!(o.stdout.contains("2  corrupt") && o.stdout.contains("3  corrupt"), "{}", o.stdout);
    assert!(o.stdout.lines().any(|l| l.starts_with("1 ")), "the good run is still listed: {}", o.stdout);
    let o = r.gp(&["status", "--json"]);
    assert!(o.stdout.contains("\"corrupt\""), "{}", o.stdout);
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    r.gp(&["clean", "--all"]).ok();
}

#[test]
fn a_submodules_worktrees_go_beside_its_superproject_not_inside_it() {
    let sub = TestRepo::new();
    sub.use_fake_agent();
    sub.prompt("a", "", "write a.txt a");
    sub.commit("prompts");
    let sup = TestRepo::new();
    let o =
        sup.git_out(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", sub.root.to_str().unwrap(), "sub"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    sup.commit("submodule");
    let inner = sup.path("sub");
    for (k, v) in [
        ("parallel.agent", "custom"),
        ("parallel.agentCommand", &format!("'{}' {{prompt_file}}", common::fake_agent().display())),
        ("parallel.retryDelay", "20ms"),
    ] {
        let mut c = sup.command("git");
        assert!(c.args(["config", k, v]).current_dir(&inner).status().unwrap().success());
    }
    let mut c = sup.command(common::bin());
    let o = c.args(["run", "prompts", "--no-integrate"]).current_dir(&inner).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status = sup.git(&["status", "--porcelain", "--ignore-submodules=none"]);
    assert!(!status.contains(".parallel"), "worktrees landed in the superproject's tree: {status}");
    let mut c = sup.command(common::bin());
    let o = c.args(["status", "1", "--json"]).current_dir(&inner).output().unwrap();
    let state: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let wt = state["tasks"][0]["worktree"].as_str().unwrap().to_string();
    let beside = sup.tmp.path().canonicalize().unwrap().join("repo.parallel/sub/1");
    assert!(std::path::Path::new(&wt).starts_with(&beside), "{wt} is not under {}", beside.display());
}

#[test]
fn what_a_task_used_is_recorded_and_seeds_the_next_run() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("hungry", "", "alloc 150 2500\nwrite h.txt h");
    r.commit("prompts");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let m = &r.task_state("1", "hungry")["metrics"];
    let rss = m["peak_rss"].as_u64().unwrap_or(0);
    assert!(rss >= 150 << 20, "the 150 MiB the agent held are in its record: {m}");
    assert!(m["cpu_cores"].as_f64().is_some(), "{m}");
    // The next run starts knowing what this agent's tasks of that kind need: six start at
    // once, without the slow start an unknown agent gets (four, then as many as measured).
    let fresh = TestRepo::new();
    fresh.use_fake_agent();
    for repo in [&r, &fresh] {
        for i in 0..6 {
            repo.prompt(&format!("w{i}"), "", "sleep 1500\nwrite w.txt w");
        }
        repo.commit("six");
    }
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    assert!(!o.stderr.contains("measuring what"), "{}", o.stderr);
    let o = fresh.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    assert!(o.stderr.contains("measuring what"), "an unknown agent is slow-started: {}", o.stderr);
}

#[test]
fn an_agent_profile_keeps_its_own_ceiling() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.git(&["config", "parallel.custom.concurrency", "1"]);
    let s = r.scratch("stamps");
    let ids: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
    for id in &ids {
        r.prompt(id, "", &format!("stamp {0}\nsleep 400\nwrite {id}.txt {id}\nstamp-end {0}", s.display()));
    }
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "3", "--no-integrate"]);
    o.ok();
    assert_eq!(peak_overlap(&s, &ids), 1, "{}", o.stderr);
    assert!(o.stderr.contains("parallel.custom.concurrency 1"), "{}", o.stderr);
}

#[test]
fn setup_runs_on_resume_when_the_crash_came_before_it() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let ran = r.scratch("setup-ran");
    r.git(&["config", "parallel.setup", &format!("echo x >> {}; echo ready > ready.txt", ran.display())]);
    r.prompt("a", "", "sh test -f ready.txt && echo ok > a.txt");
    r.commit("prompts");
    let o = r.gp_env(&["run", "prompts", "--no-integrate"], &[("GIT_PARALLEL_FAULT", "worktree-created")]);
    assert_eq!(o.code, -1, "{}", o.stderr);
    assert!(!ran.exists(), "killed before setup");
    r.gp(&["resume", "1"]).ok();
    assert_eq!(count_lines(&ran), 1, "setup ran once, on resume");
    assert_eq!(r.git(&["cat-file", "-p", "parallel/1/a:a.txt"]), "ok");
}

#[test]
fn worktrees_never_fill_the_disk_they_are_made_on() {
    // A 48 MiB file system (tmpfs, mounted in a user namespace of the test's own) for the
    // worktrees of a repository whose checkout is 8 MiB; 12 MiB is kept free. Six agents at
    // once would need 48 MiB: the run must hold them to what fits and lose none.
    let r = TestRepo::new();
    r.use_fake_agent();
    let mut big = vec![0u8; 8 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(r.path("blob.bin"), &big).unwrap();
    r.git(&["config", "parallel.minDisk", "12m"]);
    let s = r.scratch("stamps");
    let ids: Vec<String> = (0..6).map(|i| format!("d{i}")).collect();
    for id in &ids {
        r.prompt(id, "", &format!("stamp {0}\nsleep 1500\nwrite {id}.txt {id}\nstamp-end {0}", s.display()));
    }
    r.commit("blob and prompts");
    let wt = r.scratch("worktrees");
    std::fs::create_dir_all(&wt).unwrap();
    let mut c = r.command("unshare");
    c.args(["-r", "-m", "sh", "-c", r#"mount -t tmpfs -o size=48m tmpfs "$1" && shift && exec "$@""#, "sh"]);
    c.arg(&wt).arg(common::bin()).args(["run", "prompts", "--no-integrate", "-j", "6", "--worktree-dir"]).arg(&wt);
    let o = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("unshare failed") || stderr.contains("mount: ") && stderr.contains("permission denied") {
        panic!("this test needs unprivileged user namespaces (as the PID-namespace containment does): {stderr}");
    }
    assert!(o.status.success(), "{stderr}");
    let peak = peak_overlap(&s, &ids);
    assert!(peak <= 4, "{peak} worktrees of 8 MiB at once on 48 MiB keeping 12 MiB free\n{stderr}");
    assert!(stderr.contains("disk: "), "the narration says disk holds: {stderr}");
}
