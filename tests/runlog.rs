//! The run log at scale: what one event writes, reading runs of the first format, and ref
//! reads under a concurrent `git pack-refs`.

mod common;
use common::TestRepo;
use git_parallel::prompt::TaskType;
use git_parallel::store::runs::{self, Event, Metrics, Record, RunLog, RunState, TaskStatus};
use git_parallel::store::{layout, objects};
use std::collections::BTreeMap;

fn planned(n: usize) -> Event {
    Event::Planned {
        plan: "1".into(),
        base: "0".repeat(40),
        agent: "fake".into(),
        workers: 4,
        tasks: (0..n).map(|i| (format!("t{i}"), TaskType::Feature)).collect(),
        sandbox: false,
    }
}

fn finished(task: &str) -> Event {
    Event::Finished {
        task: task.into(),
        status: TaskStatus::Succeeded,
        commit: None,
        reason: None,
        exit_code: Some(0),
        metrics: Metrics { turns: Some(2), ..Default::default() },
        files_changed: vec![format!("{task}.txt")],
        wall_ms: 1500,
    }
}

fn started(task: &str) -> Event {
    Event::Started {
        task: task.into(),
        attempt: 1,
        worktree: format!("/wt/{task}"),
        branch: layout::task_branch("1", task),
        start_commit: "0".repeat(40),
        agent: None,
    }
}

/// `logs/<ab>/<task>.<ext>` or `tasks/<ab>/<task>.json` with `<ab>` from git's own hash.
fn fanned(r: &TestRepo, dir: &str, task: &str, ext: &str) -> String {
    let f = r.scratch("id");
    std::fs::write(&f, task).unwrap();
    let hash = r.git(&["hash-object", f.to_str().unwrap()]);
    format!("{dir}/{}/{task}.{ext}", &hash[..2])
}

#[test]
fn an_event_rewrites_its_task_and_the_summary_only() {
    let r = TestRepo::new();
    let repo = r.open();
    let mut log = RunLog::create(&repo, planned(600)).unwrap();
    let changed = || r.git(&["diff-tree", "-r", "--name-only", "--no-commit-id", "refs/parallel/runs/1"]);

    log.append(started("t7"), &[]).unwrap();
    assert_eq!(changed(), format!("summary.json\n{}", fanned(&r, "tasks", "t7", "json")));

    let logs = runs::write_task_logs(&repo, b"{\"type\":\"result\"}\n", b"oops\n").unwrap();
    log.append(finished("t7"), &logs).unwrap();
    let mut expected = [
        fanned(&r, "logs", "t7", "jsonl"),
        fanned(&r, "logs", "t7", "stderr"),
        "summary.json".to_string(),
        fanned(&r, "tasks", "t7", "json"),
    ];
    expected.sort();
    assert_eq!(changed(), expected.join("\n"));
    assert_eq!(runs::transcript(&repo, "1", "t7", "stderr").unwrap().unwrap(), b"oops\n");

    // No tree grows with the run: the widest holds the 256 buckets.
    let widest = r
        .git(&["ls-tree", "-r", "-t", "refs/parallel/runs/1"])
        .lines()
        .filter(|l| l.contains(" tree "))
        .map(|l| r.git(&["ls-tree", l.split_whitespace().nth(2).unwrap()]).lines().count())
        .max()
        .unwrap();
    assert!(widest <= 256, "a tree of {widest} entries");

    // The summary alone says how far the run is; the full state is what replay gives.
    let summary = runs::load_summary(&repo, "1").unwrap();
    assert!(summary.tasks.is_empty());
    assert_eq!(summary.counts(), (1, 600));
    assert_eq!(summary.counts.of(TaskStatus::Pending), 599);
    assert_eq!(summary.counts.work_ms, 1500);
    let full = runs::load(&repo, "1").unwrap();
    assert_eq!(full.tasks.len(), 600);
    assert_eq!(full.tasks[7].status, TaskStatus::Succeeded);
    assert_eq!(full.tasks.iter().map(|t| t.id.clone()).collect::<Vec<_>>()[..3], ["t0", "t1", "t2"]);
    assert_eq!(runs::replay("1", &runs::events(&repo, "1").unwrap()), full);
}

#[test]
fn another_writers_events_are_replayed_on_refresh() {
    let r = TestRepo::new();
    let repo = r.open();
    let mut mine = RunLog::create(&repo, planned(5)).unwrap();
    let mut theirs = RunLog::open(&repo, "1").unwrap();
    theirs.append(started("t1"), &[]).unwrap();
    theirs.append(Event::CancelRequested { pid: 1 }, &[]).unwrap();
    mine.refresh().unwrap();
    assert!(mine.state().cancel_requested);
    assert_eq!(mine.state().task("t1").unwrap().status, TaskStatus::Running);
    // Our next event goes on top of theirs.
    mine.append(finished("t2"), &[]).unwrap();
    let stored = runs::load(&repo, "1").unwrap();
    assert_eq!(runs::replay("1", &runs::events(&repo, "1").unwrap()), stored);
    assert_eq!(stored.counts, mine.state().counts);
    assert_eq!(stored.events, 4);
}

/// A run as the first format wrote it: every commit's tree holds `state.json`, the whole state.
fn first_format_run(repo: &git_parallel::repo::Repo, events: &[Event]) -> Vec<Record> {
    let mut records = Vec::new();
    let mut tip: Option<gix::ObjectId> = None;
    for (i, e) in events.iter().enumerate() {
        records.push(Record { at: 1000.0 + i as f64, event: e.clone() });
        let mut state: serde_json::Value = serde_json::to_value(runs::replay("1", &records)).unwrap();
        state.as_object_mut().unwrap().remove("counts");
        let blob = objects::write_blob(repo, &serde_json::to_vec(&state).unwrap()).unwrap();
        let mut files = BTreeMap::from([("state.json".to_string(), blob)]);
        if let Event::Finished { task, .. } = e {
            files.insert(format!("logs/{task}.jsonl"), objects::write_blob(repo, b"{}\n").unwrap());
        }
        let base = tip.map(|t| repo.gix.find_commit(t).unwrap().tree_id().unwrap().detach());
        let tree = objects::write_tree(repo, base, &files).unwrap();
        let message = format!("{}\n\n{}\n", e.summary(), serde_json::to_string(records.last().unwrap()).unwrap());
        let commit = objects::write_commit(repo, tree, &tip.into_iter().collect::<Vec<_>>(), &message).unwrap();
        objects::cas_update(repo, &layout::run_ref("1"), commit, tip, "test").unwrap();
        tip = Some(commit);
    }
    records
}

#[test]
fn runs_of_the_first_format_are_read_then_converted_on_append() {
    let r = TestRepo::new();
    let repo = r.open();
    let mut records = first_format_run(&repo, &[planned(3), started("t0"), finished("t0"), started("t1")]);
    let expected: RunState = runs::replay("1", &records);
    assert_eq!(runs::load(&repo, "1").unwrap(), expected);
    assert_eq!(runs::load_summary(&repo, "1").unwrap().counts(), (1, 3));
    assert_eq!(runs::transcript(&repo, "1", "t0", "jsonl").unwrap().unwrap(), b"{}\n");
    let listed = r.gp(&["status", "--json"]).ok().json();
    assert_eq!(listed[0]["counts"]["total"], 3);

    let mut log = RunLog::open(&repo, "1").unwrap();
    log.append(finished("t1"), &[]).unwrap();
    let names = r.git(&["ls-tree", "--name-only", "refs/parallel/runs/1"]);
    assert!(!names.lines().any(|n| n == "state.json"), "{names}");
    assert!(names.lines().any(|n| n == "summary.json"), "{names}");
    records = runs::events(&repo, "1").unwrap();
    let stored = runs::load(&repo, "1").unwrap();
    assert_eq!(runs::replay("1", &records), stored);
    assert_eq!(stored.counts(), (2, 3));
    // Transcripts written before the conversion are still found.
    assert_eq!(runs::transcript(&repo, "1", "t0", "jsonl").unwrap().unwrap(), b"{}\n");
}

#[test]
fn ref_reads_never_fail_while_refs_are_packed_concurrently() {
    let r = TestRepo::new();
    let head = r.git(&["rev-parse", "HEAD"]);
    let create: String = (0..300).map(|i| format!("create refs/heads/parallel/1/t{i} {head}\n")).collect();
    let delete: String = (0..300).map(|i| format!("delete refs/heads/parallel/1/t{i}\n")).collect();
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let rounds = std::sync::Arc::new(AtomicUsize::new(0));
    let packer = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        let (root, home) = (r.root.clone(), r.home.clone());
        std::thread::spawn(move || {
            let git = |args: &[&str], input: &str| {
                use std::io::Write;
                let mut c = std::process::Command::new("git");
                common::hermetic(&mut c, &home);
                c.current_dir(&root).args(args).stdin(std::process::Stdio::piped());
                let mut child = c.spawn().unwrap();
                child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
                assert!(child.wait().unwrap().success(), "git {args:?}");
            };
            while !stop.load(Ordering::SeqCst) {
                // Loose refs, then packed (their files pruned) under the reader, then gone.
                git(&["update-ref", "--stdin"], &create);
                git(&["pack-refs", "--all", "--prune"], "");
                git(&["update-ref", "--stdin"], &delete);
                rounds.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let repo = r.open();
    let mut sizes = std::collections::BTreeSet::new();
    while rounds.load(Ordering::SeqCst) < 20 {
        sizes.insert(objects::list_refs(&repo, layout::BRANCHES).unwrap().len());
        objects::read_ref(&repo, "refs/heads/parallel/1/t150").unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    packer.join().unwrap();
    assert!(sizes.len() > 1, "the refs never moved under the reader: {sizes:?}");
}

#[test]
fn listing_branches_outside_ours_matches_a_filtered_full_listing() {
    let r = TestRepo::new();
    for b in ["feature/x", "parallel/1/a", "parallel/1/b", "parallelism", "z"] {
        r.git(&["branch", b]);
    }
    r.git(&["pack-refs", "--all", "--prune"]);
    // Loose on top of packed: a moved packed branch, a new loose one, a new task branch.
    r.commit("second");
    for b in ["feature/y", "parallel/2/c"] {
        r.git(&["branch", b]);
    }
    r.git(&["branch", "-f", "z", "HEAD"]);
    let repo = r.open();
    let expected: Vec<_> = objects::list_refs(&repo, "refs/heads/")
        .unwrap()
        .into_iter()
        .filter(|(n, _)| !n.starts_with(layout::BRANCHES))
        .collect();
    let mut got = objects::list_refs_except(&repo, "refs/heads/", layout::BRANCHES).unwrap();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["refs/heads/feature/x", "refs/heads/feature/y", "refs/heads/main", "refs/heads/parallelism", "refs/heads/z"]
    );
    assert_eq!(got.last().unwrap().1.to_string(), r.git(&["rev-parse", "HEAD"]));
}

#[test]
fn no_automatic_gc_during_a_run_one_at_its_end() {
    let r = TestRepo::new();
    r.use_fake_agent();
    // The agent's own git sees the setting off, as do ours.
    r.prompt("a", "", "env-to env.txt\nwrite a.txt a");
    r.commit("prompts");
    // Two packs over a limit of one: any commit would start `gc --auto` (in the foreground, so
    // the test sees what it did).
    r.git(&["repack", "-q"]);
    r.commit("second");
    r.git(&["repack", "-q"]);
    r.git(&["config", "gc.autoPackLimit", "1"]);
    r.git(&["config", "gc.autoDetach", "false"]);
    let repo = r.open();
    let ours = git_parallel::proc::git(&repo.workdir, ["config", "gc.auto"]).unwrap();
    assert_eq!(ours, "0");
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let env = r.git(&["show", "parallel/1/a:env.txt"]);
    let key = env.lines().find(|l| l.ends_with("=gc.auto")).unwrap_or_else(|| panic!("{env}"));
    let value = key.replace("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_").replace("=gc.auto", "=0");
    assert!(env.lines().any(|l| l == value), "{env}");
    // The run's end did what the user's settings ask: everything is in one pack now.
    let counts = r.git(&["count-objects", "-v"]);
    assert!(counts.lines().any(|l| l == "count: 0") && counts.lines().any(|l| l == "packs: 1"), "{counts}");
}

#[test]
fn writers_beside_each_other_all_record_and_nothing_is_lost() {
    // Sixteen writers (threads with logs of their own, as cancel or a second process would
    // be) append to one run at once; each waits its turn.
    let r = TestRepo::new();
    let repo = r.open();
    RunLog::create(&repo, planned(16 * 25)).unwrap();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let repo = repo.clone();
            std::thread::spawn(move || {
                let mut log = RunLog::open(&repo, "1").unwrap();
                for i in 0..25 {
                    log.append(started(&format!("t{}", w * 25 + i)), &[]).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let state = runs::load(&repo, "1").unwrap();
    let running = state.tasks.iter().filter(|t| t.status == TaskStatus::Running).count();
    assert_eq!(running, 16 * 25, "every writer's every event is in the log");
    assert_eq!(runs::events(&repo, "1").unwrap().len(), 1 + 16 * 25);
}

#[test]
fn a_state_read_from_an_earlier_one_equals_the_state_read_in_full() {
    // A watcher's step: from the state at one tip, what changed by the next (one task, a run
    // event, several tasks at once) is read, and the result is the state read afresh.
    let r = TestRepo::new();
    let repo = r.open();
    let mut log = RunLog::create(&repo, planned(600)).unwrap();
    let tip = || runs::tip(&repo, "1").unwrap().unwrap();
    let (mut prev_tip, mut prev) = (tip(), runs::load(&repo, "1").unwrap());
    let steps: Vec<Vec<Event>> = vec![
        vec![started("t7")],
        vec![finished("t7")],
        vec![Event::Limited { running: 1, reason: "CPU".into() }],
        vec![
            started("t1"),
            started("t300"),
            finished("t1"),
            Event::Skipped { task: "t599".into(), reason: "x".into() },
        ],
        vec![Event::Reset { tasks: vec!["t1".into(), "t7".into()] }],
    ];
    for events in steps {
        for e in events {
            log.append(e, &[]).unwrap();
        }
        let now = tip();
        let stepped = runs::load_since(&repo, "1", &prev, prev_tip, now).unwrap();
        let fresh = runs::load_at(&repo, "1", now).unwrap();
        assert_eq!(stepped, fresh);
        (prev_tip, prev) = (now, stepped);
    }
    assert_eq!(prev.task("t300").unwrap().status, TaskStatus::Running);
    assert_eq!(prev.task("t7").unwrap().status, TaskStatus::Pending);
    // From a state of another run's shape (fewer tasks): read in full, the same.
    let small = RunLog::create(&repo, planned(3)).unwrap();
    let other = runs::load(&repo, &small.id).unwrap();
    let other_tip = runs::tip(&repo, &small.id).unwrap().unwrap();
    assert_eq!(runs::load_since(&repo, "1", &other, other_tip, prev_tip).unwrap(), prev);
}
