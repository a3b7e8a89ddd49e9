//! Overlay worktrees: the same agent actions give the same result as a full checkout, and the
//! cases where the machine or the agent misbehave say what happened.

mod common;
use common::TestRepo;

/// A repository with a bit of everything a result can touch.
fn rich_repo() -> TestRepo {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write(".gitignore", "target/\n*.log\nbuild/\n");
    // Line endings normalized by git's own rules, as `git add` applies them.
    r.write(".gitattributes", "*.crlf text\n");
    r.write("src/lib.rs", "fn a() {}\n");
    r.write("src/old.rs", "old\n");
    r.write("src/gone/one.txt", "1\n");
    r.write("src/gone/two.txt", "2\n");
    r.write("redo/keep.txt", "k\n");
    r.write("redo/drop.txt", "d\n");
    r.write("run.sh", "#!/bin/sh\necho hi\n");
    r.write("plain.sh", "echo plain\n");
    r.write("docs/a.md", "a\n");
    r.write("was-file", "f\n");
    r.write("was-dir/x.txt", "x\n");
    // Tracked although its folder is ignored: `add -A` still updates it.
    r.write("build/tracked.txt", "t\n");
    r.git(&["add", "-f", "build/tracked.txt"]);
    std::os::unix::fs::symlink("docs/a.md", r.path("link")).unwrap();
    // A large file (8 MiB): read through the layers, never copied unless written.
    std::fs::write(r.path("big.bin"), vec![7u8; 8 << 20]).unwrap();
    let mut perms = std::fs::metadata(r.path("run.sh")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(r.path("run.sh"), perms).unwrap();
    r.commit("rich");
    r
}

/// Everything an agent does to a worktree, in one script.
const ACTIONS: &str = "write src/lib.rs fn a() { changed() }\\n
write src/new/deep/file.rs new\\n
delete src/old.rs
sh git mv docs/a.md docs/b.md 2>/dev/null || mv docs/a.md docs/b.md
sh rm -rf src/gone
sh rm -rf redo && mkdir redo && echo again > redo/fresh.txt
sh chmod -x run.sh && chmod +x plain.sh
sh rm link && ln -s src/lib.rs link && ln -s nowhere dangling
sh rm was-file && mkdir was-file && echo in > was-file/inside.txt
sh rm -rf was-dir && echo now-a-file > was-dir
sh mkdir -p target/debug && echo obj > target/debug/out.o && echo noise > run.log
sh echo more >> build/tracked.txt && echo new > build/untracked.txt
sh printf 'target/\\n' > .gitignore
sh mkdir -p nested && cd nested && git init -q && echo n > n.txt && git add n.txt && git -c user.name=n -c user.email=n@n commit -qm n
sh head -c 100 big.bin > /dev/null
sh printf 'pattern' > '*.rs'
sh printf 'a\\r\\nb\\r\\n' > eol.crlf";

/// Run `prompts` with `parallel.worktree = mode`; the result commits' trees by task.
fn run_in(r: &TestRepo, mode: &str) -> Vec<(String, String)> {
    r.git(&["config", "parallel.worktree", mode]);
    let o = r.gp(&["run", "prompts", "--no-integrate", "-j", "2"]);
    o.ok();
    let which = if mode == "overlay" { "worktrees: overlays" } else { "worktrees: full checkouts" };
    assert!(o.stderr.contains(which), "{}", o.stderr);
    let runs = r.git(&["for-each-ref", "--format=%(refname)", "refs/parallel/runs/"]);
    let run = runs.lines().filter_map(|l| l.rsplit('/').next()?.parse::<u32>().ok()).max().unwrap().to_string();
    let s = r.run_state(&run);
    s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap().to_string();
            assert_eq!(t["status"], "succeeded", "{mode}: {t}");
            let commit = t["commit"].as_str().unwrap();
            (id, r.git(&["rev-parse", &format!("{commit}^{{tree}}")]))
        })
        .collect()
}

#[test]
fn overlay_and_checkout_give_the_same_results() {
    let r = rich_repo();
    r.prompt("all", "", ACTIONS);
    // An agent that commits part of its work itself, then leaves more uncommitted.
    r.prompt("commits", "", "write c1.txt one\ncommit first part\nwrite c2.txt two\ndelete plain.sh");
    // A dependent task starts from the others' results, layered over the base.
    // A fix round: the agent, back in its worktree, finds its first round's work committed.
    r.prompt(
        "fix",
        "check: \"test -f fixed.txt || { echo needs fixed.txt; exit 3; }\"",
        "write a.txt alpha\nsh if [ -n \"$GIT_PARALLEL_FEEDBACK\" ]; then echo ok > fixed.txt; git status --porcelain > round2.txt; fi",
    );
    r.prompt(
        "after",
        "depends_on: [all, commits]",
        "append src/lib.rs // after\nsh cat redo/fresh.txt > seen.txt && git status --porcelain > status.txt",
    );
    r.commit("prompts");
    let checkout = run_in(&r, "checkout");
    let overlay = run_in(&r, "overlay");
    assert_eq!(checkout, overlay);
    // What the result holds, spelled out once.
    let (_, tree) = overlay.iter().find(|(t, _)| t == "all").unwrap();
    let files = r.git(&["ls-tree", "-r", "--name-only", tree]);
    // run.log is in: the agent's .gitignore no longer ignores it.
    for want in
        ["src/new/deep/file.rs", "docs/b.md", "redo/fresh.txt", "was-file/inside.txt", "was-dir", "*.rs", "run.log"]
    {
        assert!(files.lines().any(|f| f == want), "{want} missing from\n{files}");
    }
    for gone in ["src/old.rs", "docs/a.md", "src/gone/one.txt", "redo/keep.txt", "was-dir/x.txt"] {
        assert!(!files.lines().any(|f| f == gone), "{gone} still in\n{files}");
    }
    // The changed .gitignore no longer ignores build/: its new file is in.
    assert!(files.contains("build/untracked.txt"), "{files}");
    assert!(!files.contains("target/"), "{files}");
    let modes = r.git(&["ls-tree", "-r", tree]);
    assert!(modes.lines().any(|l| l.starts_with("100644") && l.ends_with("\trun.sh")), "{modes}");
    assert!(modes.lines().any(|l| l.starts_with("100755") && l.ends_with("\tplain.sh")), "{modes}");
    assert!(modes.lines().any(|l| l.starts_with("120000") && l.ends_with("\tdangling")), "{modes}");
    assert!(modes.lines().any(|l| l.starts_with("160000") && l.ends_with("\tnested")), "{modes}");
    assert_eq!(r.git(&["cat-file", "-p", &format!("{tree}:eol.crlf")]), "a\nb");
    let (_, fix) = overlay.iter().find(|(t, _)| t == "fix").unwrap();
    // Its first round is not committed before the check: the fix round sees it as new.
    assert_eq!(r.git(&["cat-file", "-p", &format!("{fix}:round2.txt")]), "?? a.txt\n?? fixed.txt\n?? round2.txt");
    // The dependent task saw its dependencies' work, and git in there saw only its own change.
    let (_, after) = overlay.iter().find(|(t, _)| t == "after").unwrap();
    assert_eq!(r.git(&["cat-file", "-p", &format!("{after}:seen.txt")]), "again");
    assert_eq!(r.git(&["cat-file", "-p", &format!("{after}:status.txt")]), " M src/lib.rs\n?? seen.txt\n?? status.txt");
    // Nothing of the run's layers is left once every task's result is taken; the shared base
    // checkout stays for the next run, until `clean --all`.
    assert!(!r.tmp.path().join("repo.parallel").join("2").exists());
    assert!(r.tmp.path().join("repo.parallel/.bases").exists());
    let o = r.gp(&["clean", "--all"]);
    o.ok();
    assert!(o.stdout.contains("removed shared base checkout"), "{}", o.stdout);
    assert!(!r.tmp.path().join("repo.parallel/.bases").exists());
}

#[test]
fn the_base_checkout_removed_under_a_live_run_fails_the_task_plainly() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let marker = r.scratch("started");
    r.prompt("slow", "", &format!("write a.txt a\nsh touch {}\nsleep 1500", marker.display()));
    r.commit("prompts");
    r.git(&["config", "parallel.worktree", "overlay"]);
    let mut child = r.command(common::bin()).args(["run", "prompts", "--no-integrate"]).spawn().unwrap();
    common::wait_until("the agent to start", 30, || marker.exists());
    // The shared checkout every run of this folder starts from.
    std::fs::remove_dir_all(r.tmp.path().join("repo.parallel/.bases")).unwrap();
    assert!(!child.wait().unwrap().success());
    let t = r.task_state("1", "slow");
    assert_eq!(t["status"], "failed", "{t}");
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains("base checkout") && reason.contains("is gone"), "{reason}");
}

#[test]
fn where_overlays_are_refused_the_run_uses_checkouts_and_says_why() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.prompt("a", "", "write a.txt a");
    r.commit("prompts");
    // Containment without namespaces cannot mount anything: what a kernel that refuses them gives.
    let no_ns = [("GIT_PARALLEL_CONTAIN", "subreaper")];
    let o = r.gp_env(&["run", "prompts", "--no-integrate"], &no_ns);
    o.ok();
    assert!(o.stderr.contains("worktrees: full checkouts (overlays refused here: "), "{}", o.stderr);
    assert_eq!(r.task_state("1", "a")["status"], "succeeded");
    // Asked for by name, a refusal is an error, before anything runs.
    r.git(&["config", "parallel.worktree", "overlay"]);
    let o = r.gp_env(&["run", "prompts", "--no-integrate"], &no_ns);
    o.code(2);
    assert!(o.stderr.contains("overlays cannot be mounted here"), "{}", o.stderr);
    r.git(&["config", "parallel.worktree", "sideways"]);
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.code(2);
    assert!(o.stderr.contains("parallel.worktree must be overlay, checkout or auto"), "{}", o.stderr);
}

#[test]
fn warm_folders_are_a_snapshot_the_agent_cannot_write_back() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write(".gitignore", "target/\n");
    r.write("target/cache/built.o", "compiled once\n");
    let marker = r.scratch("started");
    r.prompt(
        "build",
        "",
        &format!(
            "sh cat target/cache/built.o > seen.txt\nsh echo rebuilt > target/cache/built.o\nsh git status --porcelain > status.txt\nsh touch {}\nsleep 800\nsh cat target/cache/later.o > later.txt 2>/dev/null || echo absent > later.txt",
            marker.display()
        ),
    );
    r.commit("prompts");
    r.git(&["config", "parallel.warm", "target"]);
    let mut child = r.command(common::bin()).args(["run", "prompts", "--no-integrate"]).spawn().unwrap();
    common::wait_until("the agent to start", 30, || marker.exists());
    // The user's build goes on meanwhile: the running task does not see it.
    r.write("target/cache/later.o", "built during the run\n");
    assert!(child.wait().unwrap().success());
    let t = r.task_state("1", "build");
    let c = t["commit"].as_str().unwrap();
    assert_eq!(r.git(&["cat-file", "-p", &format!("{c}:seen.txt")]), "compiled once");
    assert_eq!(r.git(&["cat-file", "-p", &format!("{c}:later.txt")]), "absent");
    // The warm layer adds the folder and nothing else to the worktree.
    assert_eq!(r.git(&["cat-file", "-p", &format!("{c}:status.txt")]), "?? seen.txt\n?? status.txt");
    // The agent's rebuild stayed in its own layer.
    assert_eq!(r.read("target/cache/built.o"), "compiled once\n");
    // Only ignored folders can be offered: a tracked one is refused plainly.
    r.git(&["config", "parallel.warm", "prompts"]);
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.code(2);
    assert!(o.stderr.contains("parallel.warm: `prompts` is not ignored by git"), "{}", o.stderr);
}

/// With warm build caches, a task's files carry the main worktree's times where their content
/// is the same (cargo and make then judge the warm output fresh), and a newer time where it is
/// not (that output is rebuilt, never taken for the task's different source).
#[test]
fn warm_caches_see_the_users_file_times_where_the_content_is_the_same() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write(".gitignore", "target/\n");
    r.write("same.rs", "same\n");
    r.write("edited.rs", "committed\n");
    r.write("big/deep/lib.rs", "deep\n");
    r.write("target/out.o", "built\n");
    r.prompt("t", "", "sh stat -c '%n %Y' same.rs edited.rs big/deep/lib.rs > times.txt");
    r.commit("tree");
    let old = filetime::FileTime::from_unix_time(1_000_000_000, 0);
    for f in ["same.rs", "edited.rs", "big/deep/lib.rs"] {
        filetime::set_file_mtime(r.path(f), old).unwrap();
    }
    // The user's index learns the old times, then one file changes without being committed.
    r.git(&["update-index", "--refresh"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    r.write("edited.rs", "uncommitted\n");
    filetime::set_file_mtime(r.path("edited.rs"), old).unwrap();
    r.git(&["config", "parallel.warm", "target"]);
    r.gp(&["run", "prompts", "--no-integrate", "--allow-dirty"]).ok();
    let c = r.task_state("1", "t")["commit"].as_str().unwrap().to_string();
    let seen = r.git(&["cat-file", "-p", &format!("{c}:times.txt")]);
    let time =
        |f: &str| -> i64 { seen.lines().find_map(|l| l.strip_prefix(&format!("{f} "))).unwrap().parse().unwrap() };
    assert_eq!(time("same.rs"), 1_000_000_000, "{seen}");
    assert_eq!(time("big/deep/lib.rs"), 1_000_000_000, "{seen}");
    // Its size and time no longer match the index: its content is taken as different.
    assert!(time("edited.rs") > 1_700_000_000, "{seen}");
}

#[test]
fn an_interrupted_tasks_upper_layer_is_remounted_on_resume() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let marker = r.scratch("first-life");
    // First life: write, then wait to be killed. Second life (the marker exists): finish.
    r.prompt(
        "long",
        "",
        &format!(
            "sh test -e {m} || (echo kept > kept.txt && touch {m} && sleep 60)\nsh cat kept.txt > seen.txt",
            m = marker.display()
        ),
    );
    r.commit("prompts");
    r.git(&["config", "parallel.worktree", "overlay"]);
    let mut child = r.command(common::bin()).args(["run", "prompts", "--no-integrate"]).spawn().unwrap();
    common::wait_until("the first life to write", 30, || marker.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let upper = r.tmp.path().join("repo.parallel/1/.layers/long/upper/kept.txt");
    assert!(upper.exists(), "the upper layer keeps the interrupted work");
    r.gp(&["resume", "1"]).ok();
    let t = r.task_state("1", "long");
    assert_eq!(t["status"], "succeeded", "{t}");
    let c = t["commit"].as_str().unwrap();
    assert_eq!(r.git(&["cat-file", "-p", &format!("{c}:seen.txt")]), "kept");
}

#[test]
fn a_later_run_layers_its_base_over_an_earlier_runs_checkout() {
    let r = TestRepo::new();
    r.use_fake_agent();
    r.write("keep.txt", "k\n");
    r.write("edit.txt", "old\n");
    r.write("drop.txt", "d\n");
    r.prompt("look", "", "sh ls > seen.txt && cat edit.txt >> seen.txt && git status --porcelain > status.txt");
    r.commit("first");
    r.git(&["config", "parallel.worktree", "overlay"]);
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    assert!(o.stderr.contains("(a new shared checkout, "), "{}", o.stderr);
    r.write("edit.txt", "new\n");
    std::fs::remove_file(r.path("drop.txt")).unwrap();
    r.commit("second");
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    assert!(o.stderr.contains("and the 2 files changed since, "), "{}", o.stderr);
    let c = r.task_state("2", "look")["commit"].as_str().unwrap().to_string();
    let seen = r.git(&["cat-file", "-p", &format!("{c}:seen.txt")]);
    assert!(!seen.contains("drop.txt") && seen.ends_with("new"), "{seen}");
    // The index moved with the base: git in there sees only the agent's own files.
    assert_eq!(r.git(&["cat-file", "-p", &format!("{c}:status.txt")]), "?? seen.txt\n?? status.txt");
    // The same commit again: the shared checkout as it is.
    let o = r.gp(&["run", "prompts", "--no-integrate"]);
    o.ok();
    assert!(
        o.stderr.contains("(a shared checkout, ") || o.stderr.contains("and the 2 files changed since"),
        "{}",
        o.stderr
    );
}

/// A retry starts from a fresh upper layer whose `.git` link is the one git wrote, never the one
/// the failed attempt left there.
#[test]
fn a_retry_never_keeps_the_git_link_a_failed_attempt_rewrote() {
    let r = TestRepo::new();
    r.use_fake_agent();
    let counter = r.scratch("counter");
    let once = r.scratch("rewrote");
    // The first attempt points its link elsewhere, then fails in a way that is retried.
    let script = format!(
        "sh test -e {o} || (touch {o} && printf 'gitdir: /nowhere\\n' > .git)\ntransient 1 {c}\nsh git status --porcelain > status.txt",
        o = once.display(),
        c = counter.display()
    );
    r.prompt("flaky", "", &script);
    r.commit("prompts");
    r.git(&["config", "parallel.worktree", "overlay"]);
    r.gp(&["run", "prompts", "--no-integrate"]).ok();
    let c = r.task_state("1", "flaky")["commit"].as_str().unwrap().to_string();
    assert_eq!(r.git(&["cat-file", "-p", &format!("{c}:status.txt")]), "?? status.txt");
}
