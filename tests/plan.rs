//! `git parallel plan` on real repositories.

mod common;
use common::TestRepo;
use serde_json::Value;

fn task<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap_or_else(|| panic!("no task {id} in {plan}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn conflict<'a>(plan: &'a Value, a: &str, b: &str) -> Option<&'a Value> {
    plan["conflicts"].as_array().unwrap().iter().find(|c| (c["a"] == a && c["b"] == b) || (c["a"] == b && c["b"] == a))
}

#[test]
fn classifies_and_front_matter_overrides() {
    let r = TestRepo::new();
    r.write("prompts/t.md", "# Add tests for the parser\nCover the edge cases.\n");
    r.write("prompts/b.md", "# Fix crash on empty input\nIt panics.\n");
    r.write("prompts/d.md", "# Document the CLI\nUpdate the README.\n");
    r.write("prompts/r.md", "# Refactor the storage layer\n");
    r.write("prompts/p.md", "# Make startup faster\n");
    r.write("prompts/c.md", "# Bump dependencies and update CI\n");
    r.write("prompts/f.md", "# Implement CSV export\n");
    r.write("prompts/o.md", "# Ponder\nThink about it.\n");
    r.write("prompts/x.md", "---\ntype: docs\n---\n# Fix crash\n");
    let plan = r.gp(&["plan", "--dry-run", "--json", "-j", "2"]).ok().json();
    let kinds: Vec<(String, String)> = ["t", "b", "d", "r", "p", "c", "f", "o", "x"]
        .iter()
        .map(|id| (id.to_string(), task(&plan, id)["type"].as_str().unwrap().to_string()))
        .collect();
    let expect = [
        ("t", "test-coverage"),
        ("b", "bug-fix"),
        ("d", "documentation"),
        ("r", "refactor"),
        ("p", "performance"),
        ("c", "configuration"),
        ("f", "feature"),
        ("o", "other"),
        ("x", "documentation"),
    ];
    for ((id, got), (eid, want)) in kinds.iter().zip(expect) {
        assert_eq!((id.as_str(), got.as_str()), (eid, want));
    }
    assert_eq!(task(&plan, "x")["type_from_front_matter"], true);
    assert_eq!(task(&plan, "b")["type_from_front_matter"], false);
}

#[test]
fn a_type_the_model_guessed_is_marked() {
    let r = TestRepo::new();
    // The rules decide the first; no rule fires on the second and the model picks feature; the
    // third has no word anything knows; the fourth's type is its front matter.
    r.write(
        "prompts/a.md",
        "# Fix crash in the parser
",
    );
    r.write(
        "prompts/b.md",
        "# Export to CSV
",
    );
    r.write(
        "prompts/c.md",
        "# Zzyzx
",
    );
    r.write("prompts/d.md", "---\ntype: feature\n---\n# Export to CSV\n");
    r.commit("prompts");
    let plan = r.gp(&["plan", "--dry-run", "--json"]).ok().json();
    let basis = |id: &str| task(&plan, id).get("type_basis").cloned().unwrap_or_default();
    assert_eq!((basis("a"), task(&plan, "a")["type"].clone()), ("rules".into(), "bug-fix".into()));
    assert_eq!((basis("b"), task(&plan, "b")["type"].clone()), ("model".into(), "feature".into()));
    assert_eq!((basis("c"), task(&plan, "c")["type"].clone()), ("nothing".into(), "other".into()));
    assert_eq!(basis("d"), serde_json::Value::Null);
    // A person reading the plan sees which type is a guess, and how to settle it.
    let out = r.gp(&["plan", "--dry-run"]).ok().stdout.clone();
    let row = |id: &str| out.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap_or("").to_string();
    assert!(row("b").contains("feature?") && !row("a").contains('?') && !row("d").contains('?'), "{out}");
    assert!(out.contains("`type:` in front matter settles it"), "{out}");
}

#[test]
fn infers_files_from_text_and_front_matter() {
    let r = TestRepo::new();
    r.write("src/app/users.py", "");
    r.write("src/app/orders.py", "");
    r.write("web/util.ts", "");
    r.write("lib/util.ts", "");
    r.write("docs/guide.md", "");
    r.commit("files");
    r.write("prompts/a.md", "Change `src/app/users.py` and orders.py; see docs/guide.md.\n");
    r.write("prompts/b.md", "Touch util.ts (ambiguous) and lib/util.ts, then create `src/app/items.py`.\n");
    r.write(
        "prompts/c.md",
        "---\nfiles: [\"src/app/*.py\"]\n---\nDo things to README.md (ignored: files are explicit).\n",
    );
    let plan = r.gp(&["plan", "--dry-run", "--json", "--allow-conflicts"]).ok().json();
    assert_eq!(strs(&task(&plan, "a")["files"]), ["docs/guide.md", "src/app/orders.py", "src/app/users.py"]);
    assert_eq!(strs(&task(&plan, "b")["files"]), ["lib/util.ts", "src/app/items.py"]);
    assert_eq!(strs(&task(&plan, "c")["files"]), ["src/app/orders.py", "src/app/users.py"]);
}

#[test]
fn hard_conflicts_are_serialized_by_priority_unless_allowed() {
    let r = TestRepo::new();
    r.write("src/db.py", "");
    r.commit("db");
    r.write("prompts/a.md", "Change `src/db.py`.\n");
    r.write("prompts/b.md", "---\npriority: 5\n---\nAlso change `src/db.py`.\n");
    let plan = r.gp(&["plan", "--dry-run", "--json", "-j", "2"]).ok().json();
    let c = conflict(&plan, "a", "b").expect("hard conflict");
    assert_eq!(c["kind"], "hard");
    assert_eq!(strs(&c["files"]), ["src/db.py"]);
    assert_eq!(c["serialized"], true);
    // b has the higher priority, so a waits for b.
    assert_eq!(strs(&task(&plan, "a")["after"]), ["b"]);
    assert!(strs(&task(&plan, "b")["after"]).is_empty());
    let allowed = r.gp(&["plan", "--dry-run", "--json", "--allow-conflicts"]).ok().json();
    assert!(strs(&task(&allowed, "a")["after"]).is_empty());
    assert_eq!(conflict(&allowed, "a", "b").unwrap()["serialized"], false);
}

/// A soft conflict through each language's imports: task `lib` touches the imported file,
/// task `user` the importing one.
fn soft_conflict_through(files: &[(&str, &str)], imported: &str, importer: &str) {
    let r = TestRepo::new();
    for (p, c) in files {
        r.write(p, c);
    }
    r.commit("code");
    r.write("prompts/lib.md", &format!("Change `{imported}`.\n"));
    r.write("prompts/user.md", &format!("Change `{importer}`.\n"));
    let plan = r.gp(&["plan", "--dry-run", "--json"]).ok().json();
    let c = conflict(&plan, "lib", "user").unwrap_or_else(|| panic!("no soft conflict: {plan}"));
    assert_eq!(c["kind"], "soft");
    assert_eq!(strs(&c["files"]), [format!("{importer} -> {imported}")]);
    let risk = c["risk"].as_f64().unwrap();
    assert!(risk > 0.0 && risk < 1.0, "{risk}");
    // Soft conflicts are reported, not serialized.
    assert!(strs(&task(&plan, "user")["after"]).is_empty());
}

#[test]
fn soft_conflict_python() {
    soft_conflict_through(
        &[("app/__init__.py", ""), ("app/models.py", "X = 1\n"), ("app/views.py", "from app.models import X\n")],
        "app/models.py",
        "app/views.py",
    );
}

#[test]
fn soft_conflict_rust() {
    soft_conflict_through(
        &[("Cargo.toml", "[package]\n"), ("src/main.rs", "mod store;\nfn main() {}\n"), ("src/store.rs", "")],
        "src/store.rs",
        "src/main.rs",
    );
}

#[test]
fn soft_conflict_rust_use_crate() {
    soft_conflict_through(
        &[
            ("src/lib.rs", "pub mod a;\npub mod b;\n"),
            ("src/a.rs", "use crate::b::Thing;\n"),
            ("src/b.rs", "pub struct Thing;\n"),
        ],
        "src/b.rs",
        "src/a.rs",
    );
}

#[test]
fn soft_conflict_typescript() {
    soft_conflict_through(
        &[("web/api.ts", "export const a = 1;\n"), ("web/page.tsx", "import { a } from './api';\n")],
        "web/api.ts",
        "web/page.tsx",
    );
}

#[test]
fn soft_conflict_javascript_require() {
    soft_conflict_through(
        &[("lib/db.js", "module.exports = {};\n"), ("lib/server.js", "const db = require('./db');\n")],
        "lib/db.js",
        "lib/server.js",
    );
}

#[test]
fn soft_conflict_go() {
    soft_conflict_through(
        &[
            ("go.mod", "module example.com/shop\n\ngo 1.22\n"),
            ("internal/store/store.go", "package store\n"),
            ("cmd/shop/main.go", "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/shop/internal/store\"\n)\n"),
        ],
        "internal/store/store.go",
        "cmd/shop/main.go",
    );
}

#[test]
fn dependencies_cycles_unknown_and_duplicates() {
    let r = TestRepo::new();
    r.write("prompts/a.md", "---\ndepends_on: [c]\n---\nA\n");
    r.write("prompts/b.md", "---\ndepends_on: a\n---\nB\n");
    r.write("prompts/c.md", "---\ndepends_on: [b]\n---\nC\n");
    let o = r.gp(&["plan", "--dry-run"]);
    o.code(2);
    assert!(o.stderr.contains("dependency cycle"), "{}", o.stderr);
    for id in ["a", "b", "c"] {
        assert!(o.stderr.contains(id), "cycle must name {id}: {}", o.stderr);
    }

    r.write("prompts/c.md", "---\ndepends_on: [nope]\n---\nC\n");
    let o = r.gp(&["plan", "--dry-run"]);
    o.code(2);
    assert!(o.stderr.contains("prompts/c.md") && o.stderr.contains("unknown task `nope`"), "{}", o.stderr);

    r.write("prompts/c.md", "---\nid: a\n---\nC\n");
    let o = r.gp(&["plan", "--dry-run"]);
    o.code(2);
    assert!(
        o.stderr.contains("duplicate task id `a`")
            && o.stderr.contains("prompts/a.md")
            && o.stderr.contains("prompts/c.md"),
        "{}",
        o.stderr
    );

    r.write("prompts/c.md", "---\ndepends_on: [b]\n---\nC\n");
    r.write("prompts/a.md", "A\n");
    let plan = r.gp(&["plan", "--dry-run", "--json", "-j", "4"]).ok().json();
    assert_eq!(strs(&plan["schedule"]["critical_path"]), ["a", "b", "c"]);
    assert_eq!(plan["schedule"]["waves"].as_array().unwrap().len(), 3);
}

#[test]
fn schedule_numbers_follow_estimates() {
    let r = TestRepo::new();
    // The design's example: two workers, A(4)->D(4), B(1)->E(3), C(1)->F(3).
    for (id, est, dep) in [("a", 4, ""), ("b", 1, ""), ("c", 1, ""), ("d", 4, "a"), ("e", 3, "b"), ("f", 3, "c")] {
        let deps = if dep.is_empty() { String::new() } else { format!("depends_on: [{dep}]\n") };
        r.write(&format!("prompts/{id}.md"), &format!("---\nestimate: {est}\n{deps}---\nTask {id}\n"));
    }
    let plan = r.gp(&["plan", "--dry-run", "--json", "-j", "2"]).ok().json();
    let s = &plan["schedule"];
    assert_eq!(s["workers"], 2);
    assert_eq!(s["sequential_min"], 16.0);
    assert_eq!(s["parallel_min"], 8.0);
    assert_eq!(s["lower_bound_min"], 8.0);
    assert_eq!(s["speedup"], 2.0);
    assert_eq!(task(&plan, "a")["estimate_source"], "front-matter");
    let human = r.gp(&["plan", "--dry-run", "-j", "2"]).ok().stdout.clone();
    assert!(human.contains("critical path: a -> d"), "{human}");
    assert!(human.contains("speed-up 2.00x"), "{human}");
    assert!(human.contains("lower bound 8m"), "{human}");
}

#[test]
fn estimates_from_heuristics_and_history() {
    let r = TestRepo::new();
    r.write("prompts/f.md", "# Implement export\nAdd an export command.\n");
    let plan = r.gp(&["plan", "--dry-run", "--json"]).ok().json();
    assert_eq!(task(&plan, "f")["estimate_source"], "heuristic");
    assert_eq!(task(&plan, "f")["estimate_min"], 40.0);

    // Record past runs with finished feature tasks of 3, 5 and 10 minutes.
    use git_parallel::prompt::TaskType;
    use git_parallel::store::runs::{Event, Metrics, RunLog, TaskStatus};
    let repo = r.open();
    for (i, minutes) in [3u64, 5, 10].iter().enumerate() {
        let task = format!("t{i}");
        let mut log = RunLog::create(
            &repo,
            Event::Planned {
                plan: "1".into(),
                base: "0".repeat(40),
                agent: "fake".into(),
                workers: 1,
                tasks: vec![(task.clone(), TaskType::Feature)],
                sandbox: false,
            },
        )
        .unwrap();
        log.append(
            Event::Finished {
                task,
                status: TaskStatus::Succeeded,
                commit: None,
                reason: None,
                exit_code: Some(0),
                metrics: Metrics::default(),
                files_changed: vec![],
                wall_ms: minutes * 60_000,
            },
            &[],
        )
        .unwrap();
    }
    let plan = r.gp(&["plan", "--dry-run", "--json"]).ok().json();
    assert_eq!(task(&plan, "f")["estimate_source"], "history");
    assert_eq!(task(&plan, "f")["estimate_min"], 5.0);
}

#[test]
fn stored_plan_is_readable_with_git() {
    let r = TestRepo::new();
    r.write("prompts/one.md", "---\ntitle: First\n---\nDo one.\n");
    r.write("prompts/two.md", "Do two.\n");
    let o = r.gp(&["plan", "-j", "2"]);
    o.ok();
    assert!(o.stdout.contains("plan 1: 2 tasks"), "{}", o.stdout);
    assert!(o.stderr.contains("git parallel run 1"), "{}", o.stderr);
    let tree = r.git(&["ls-tree", "-r", "--name-only", "refs/parallel/plans/1"]);
    assert_eq!(tree.lines().collect::<Vec<_>>(), ["plan.yaml", "prompts/one.md", "prompts/two.md"]);
    assert_eq!(r.git(&["cat-file", "-p", "refs/parallel/plans/1:prompts/one.md"]), "---\ntitle: First\n---\nDo one.");
    let yaml = r.git(&["cat-file", "-p", "refs/parallel/plans/1:plan.yaml"]);
    assert!(yaml.contains("id: '1'") || yaml.contains("id: \"1\""), "{yaml}");
    assert!(yaml.contains("title: First"), "{yaml}");
    // --show reads it back; a second plan gets the next id; --dry-run stores nothing.
    let shown = r.gp(&["plan", "--show", "1", "--json"]).ok().json();
    assert_eq!(shown["id"], "1");
    assert_eq!(shown["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(shown["base"], r.git(&["rev-parse", "HEAD"]));
    r.gp(&["plan"]).ok();
    r.gp(&["plan", "--dry-run"]).ok();
    assert_eq!(
        r.git(&["for-each-ref", "--format=%(refname)", "refs/parallel/plans/"]),
        "refs/parallel/plans/1\nrefs/parallel/plans/2"
    );
    let o = r.gp(&["plan", "--show", "9"]);
    o.code(2);
    assert!(o.stderr.contains("no plan `9`"), "{}", o.stderr);
}

#[test]
fn json_shape() {
    let r = TestRepo::new();
    r.write("prompts/a.md", "A task.\n");
    let plan = r.gp(&["plan", "--json", "-j", "3"]).ok().json();
    for key in ["version", "id", "base", "allow_conflicts", "tasks", "conflicts", "import_edges", "schedule"] {
        assert!(plan.get(key).is_some(), "missing {key}: {plan}");
    }
    for key in [
        "id",
        "title",
        "source",
        "type",
        "priority",
        "files",
        "depends_on",
        "after",
        "estimate_min",
        "estimate_source",
        "start_min",
        "finish_min",
    ] {
        assert!(plan["tasks"][0].get(key).is_some(), "missing tasks[].{key}");
    }
    for key in [
        "workers",
        "sequential_min",
        "parallel_min",
        "speedup",
        "lower_bound_min",
        "critical_path",
        "critical_path_min",
        "waves",
    ] {
        assert!(plan["schedule"].get(key).is_some(), "missing schedule.{key}");
    }
    assert_eq!(plan["schedule"]["workers"], 3);
}

#[test]
fn bad_input_names_file_and_line() {
    let r = TestRepo::new();
    r.write("prompts/bad.md", "---\nid: x\ndepends_on: [a\n---\nText\n");
    let o = r.gp(&["plan", "--dry-run"]);
    o.code(2);
    assert!(o.stderr.contains("prompts/bad.md:") && o.stderr.contains("malformed front matter"), "{}", o.stderr);

    r.write("prompts/bad.md", "---\nid: x\n---\n\n");
    let o = r.gp(&["plan", "--dry-run"]);
    o.code(2);
    assert!(o.stderr.contains("prompts/bad.md") && o.stderr.contains("empty prompt"), "{}", o.stderr);

    r.write("prompts/bad.md", "---\nid: x\nflavour: mint\n---\nText\n");
    let o = r.gp(&["plan", "--dry-run"]);
    o.ok();
    assert!(o.stderr.contains("prompts/bad.md:3: unknown front matter key `flavour`"), "{}", o.stderr);

    r.write("prompts/bad.md", "---\nfiles: [../../etc/passwd]\n---\nText\n");
    let o = r.gp(&["plan", "--dry-run"]);
    o.code(2);
    assert!(o.stderr.contains("outside the repository"), "{}", o.stderr);

    std::fs::write(r.path("prompts/bad.md"), b"caf\xe9\n").unwrap();
    let o = r.gp(&["plan", "--dry-run"]);
    o.code(2);
    assert!(o.stderr.contains("prompts/bad.md:1: not valid UTF-8"), "{}", o.stderr);
    std::fs::remove_file(r.path("prompts/bad.md")).unwrap();

    let outside = r.tmp.path().join("elsewhere.md");
    std::fs::write(&outside, "Text\n").unwrap();
    let o = r.gp(&["plan", "--dry-run", outside.to_str().unwrap()]);
    o.code(2);
    assert!(o.stderr.contains("outside the repository"), "{}", o.stderr);

    std::fs::create_dir_all(r.path("empty")).unwrap();
    let o = r.gp(&["plan", "--dry-run", "empty"]);
    o.code(2);
    assert!(o.stderr.contains("no prompt files"), "{}", o.stderr);

    let o = r.gp(&["plan", "--dry-run", "--concurrency", "0"]);
    o.code(2);
}

#[test]
fn repository_preconditions() {
    let r = TestRepo::empty();
    r.write("prompts/a.md", "A\n");
    let o = r.gp(&["plan"]);
    o.code(2);
    assert!(o.stderr.contains("no commits yet"), "{}", o.stderr);

    let bare = r.tmp.path().join("bare.git");
    r.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    let o = r.gp(&["-C", bare.to_str().unwrap(), "plan"]);
    o.code(2);
    assert!(o.stderr.contains("bare repository"), "{}", o.stderr);

    let plain = r.tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let mut c = r.command(common::bin());
    c.current_dir(&plain).env("GIT_CEILING_DIRECTORIES", r.tmp.path()).args(["plan"]);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a git repository"));
}

#[test]
fn runs_as_git_subcommand() {
    let r = TestRepo::new();
    r.write("prompts/a.md", "A\n");
    let dir = common::bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let mut c = r.command("git");
    c.env("PATH", path).args(["parallel", "plan", "--dry-run"]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("plan (dry run): 1 tasks"));
}

#[test]
fn broken_pipe_exits_quietly() {
    let r = TestRepo::new();
    // Enough output (> 64 KiB pipe buffer) that writing must hit the closed pipe.
    for i in 0..3000 {
        r.write(&format!("prompts/t{i}.md"), "Some task\n");
    }
    let mut c = r.command("bash");
    c.arg("-c").arg(format!("set -o pipefail; '{}' plan --dry-run -j 2 | head -1", common::bin().display()));
    let o = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1);
}

#[test]
fn transitive_soft_conflicts_through_a_widely_imported_module() {
    let r = TestRepo::new();
    // core.py is what everything imports; app/*.py reach it through util.py, and one of them
    // (views) imports it directly too.
    r.write("app/__init__.py", "");
    r.write("app/core.py", "X = 1\n");
    r.write("app/util.py", "from app.core import X\n");
    for i in 0..40 {
        r.write(&format!("app/m{i:02}.py"), "from app.util import X\n");
    }
    r.write("app/views.py", "from app.util import X\nfrom app.core import X\n");
    r.write("app/lonely.py", "Y = 2\n");
    r.commit("code");
    r.write("prompts/core.md", "Change `app/core.py`.\n");
    r.write("prompts/views.md", "Change `app/views.py`.\n");
    r.write("prompts/m07.md", "Change `app/m07.py`.\n");
    r.write("prompts/lonely.md", "Change `app/lonely.py`.\n");
    let plan = r.gp(&["plan", "--dry-run", "--json"]).ok().json();
    let direct = conflict(&plan, "core", "views").expect("direct soft conflict");
    let through = conflict(&plan, "core", "m07").unwrap_or_else(|| panic!("no transitive soft conflict: {plan}"));
    assert_eq!(strs(&through["files"]), ["app/m07.py -> app/util.py -> app/core.py"]);
    let (d, t) = (direct["risk"].as_f64().unwrap(), through["risk"].as_f64().unwrap());
    assert!(d > t && t > 0.0, "direct {d}, through util {t}");
    assert!(conflict(&plan, "lonely", "core").is_none());
    assert!(conflict(&plan, "views", "m07").is_none(), "siblings importing the same module are not linked");
}

#[test]
fn plan_report_shows_the_riskiest_soft_conflicts_and_counts_the_rest() {
    let r = TestRepo::new();
    r.write("app/__init__.py", "");
    r.write("app/core.py", "X = 1\n");
    for i in 0..40 {
        r.write(&format!("app/m{i:02}.py"), "from app.core import X\n");
        r.write(&format!("prompts/m{i:02}.md"), &format!("Change `app/m{i:02}.py`.\n"));
    }
    r.commit("code");
    r.write("prompts/core.md", "Change `app/core.py`.\n");
    let json = r.gp(&["plan", "--dry-run", "--json"]).ok().json();
    assert_eq!(json["conflicts"].as_array().unwrap().len(), 40);
    let text = r.gp(&["plan", "--dry-run"]).ok().stdout.clone();
    assert_eq!(text.lines().filter(|l| l.starts_with("  soft ")).count(), 30, "{text}");
    assert!(text.contains("... and 10 more soft conflicts, risk "), "{text}");
}

/// Run git-parallel with `env`, failing the test (and killing it) if it takes more than `secs`.
fn gp_within(r: &TestRepo, args: &[&str], env: &[(&str, &str)], secs: u64) -> (common::Out, std::time::Duration) {
    let mut c = r.command(common::bin());
    c.args(args).envs(env.iter().copied());
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let start = std::time::Instant::now();
    let mut child = c.spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("git parallel {args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let out = common::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    (out, start.elapsed())
}

#[test]
fn a_prompt_that_is_a_symlink_into_the_git_directory_is_refused() {
    let r = TestRepo::new();
    r.git(&["config", "remote.origin.url", "https://user:token@example.com/repo.git"]);
    r.write("docs/task.md", "# Shared task\nDo it.\n");
    std::fs::create_dir_all(r.path("prompts")).unwrap();
    // Within the repository root, but into .git: directly, and through a symlinked folder.
    std::os::unix::fs::symlink("../.git/config", r.path("prompts/config.md")).unwrap();
    std::os::unix::fs::symlink(".git", r.path("gitdir")).unwrap();
    std::os::unix::fs::symlink("../gitdir/HEAD", r.path("prompts/head.md")).unwrap();
    for (args, file) in [
        (&["plan", "prompts"][..], "prompts/config.md"),
        (&["run", "prompts"], "prompts/config.md"),
        (&["plan", "prompts/config.md"], "prompts/config.md"),
        (&["plan", "prompts/head.md"], "prompts/head.md"),
        (&["plan", ".git/config"], ".git/config"),
        (&["plan", "gitdir/config"], "gitdir/config"),
    ] {
        let o = r.gp(args);
        o.code(2);
        assert!(
            o.stderr.contains(&format!("{file}: prompt file is inside the git directory")),
            "{args:?}: {}",
            o.stderr
        );
        assert!(!o.stdout.contains("token") && !o.stderr.contains("token"), "{args:?}: {}", o.stderr);
    }
    let o = r.gp(&["plan", ".git"]);
    o.code(2);
    assert!(o.stderr.contains(".git: prompt folder is inside the git directory"), "{}", o.stderr);
    assert_eq!(r.git_out(&["for-each-ref", "refs/parallel/"]).stdout, "", "nothing was stored");

    // A symlink to another file of the working tree is a prompt like any other.
    std::fs::remove_file(r.path("prompts/config.md")).unwrap();
    std::fs::remove_file(r.path("prompts/head.md")).unwrap();
    std::os::unix::fs::symlink("../docs/task.md", r.path("prompts/shared.md")).unwrap();
    let plan = r.gp(&["plan", "--dry-run", "--json"]).ok().json();
    assert_eq!(task(&plan, "shared")["title"], "Shared task");
    assert_eq!(task(&plan, "shared")["source"], "prompts/shared.md");
}

#[test]
fn pipes_sockets_and_devices_in_the_prompt_folder_are_refused_without_blocking() {
    let r = TestRepo::new();
    r.write("prompts/fine.md", "# Fine\nText.\n");
    let fifo = r.path("prompts/pipe.md");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for args in
        [&["plan", "prompts"][..], &["plan", "--dry-run", "prompts"], &["run", "prompts"], &["plan", "prompts/pipe.md"]]
    {
        let (o, _) = gp_within(&r, args, &[], 20);
        o.code(2);
        assert!(o.stderr.contains("prompts/pipe.md: a named pipe (FIFO), not a file"), "{args:?}: {}", o.stderr);
    }
    std::fs::remove_file(&fifo).unwrap();

    let _socket = std::os::unix::net::UnixListener::bind(r.path("prompts/sock.md")).unwrap();
    let (o, _) = gp_within(&r, &["plan", "prompts"], &[], 20);
    o.code(2);
    assert!(o.stderr.contains("prompts/sock.md: a socket, not a file"), "{}", o.stderr);
    std::fs::remove_file(r.path("prompts/sock.md")).unwrap();

    // A device or a folder behind a prompt's name: refused the same way (a device outside
    // the repository is refused for that first).
    std::os::unix::fs::symlink("/dev/zero", r.path("prompts/zero.md")).unwrap();
    let (o, _) = gp_within(&r, &["plan", "prompts"], &[], 20);
    o.code(2);
    assert!(o.stderr.contains("prompts/zero.md: prompt file resolves outside the repository"), "{}", o.stderr);
    std::fs::remove_file(r.path("prompts/zero.md")).unwrap();
    std::fs::create_dir_all(r.path("docs")).unwrap();
    std::os::unix::fs::symlink("../docs", r.path("prompts/folder.md")).unwrap();
    let o = r.gp(&["plan", "prompts"]);
    o.code(2);
    assert!(o.stderr.contains("prompts/folder.md: a folder, not a file"), "{}", o.stderr);
    std::fs::remove_file(r.path("prompts/folder.md")).unwrap();
    std::os::unix::fs::symlink("nowhere.md", r.path("prompts/dangling.md")).unwrap();
    let o = r.gp(&["plan", "prompts"]);
    o.code(2);
    assert!(o.stderr.contains("prompts/dangling.md: broken symbolic link"), "{}", o.stderr);
    assert_eq!(r.git_out(&["for-each-ref", "refs/parallel/"]).stdout, "", "nothing was stored");
}

#[test]
fn deep_or_huge_front_matter_is_refused_fast() {
    let r = TestRepo::new();
    let n = 100_000;
    let cases = [
        // Over the size cap: refused before any parsing.
        (format!("files: {}{}", "[".repeat(n), "]".repeat(n)), "front matter is 195 KB, more than the 64 KB allowed"),
        // Under the cap: the depth scan refuses it before libyaml, whose time grows with the
        // square of the depth.
        (format!("files: {}{}", "[".repeat(30_000), "]".repeat(30_000)), "nested deeper than 32 levels"),
        (format!("files: {}{}", "{a: ".repeat(10_000), "}".repeat(10_000)), "nested deeper than 32 levels"),
        (format!("files:\n{}x", "- ".repeat(30_000)), "nested deeper than 32 levels"),
        (format!("title: abc\n  'x\nfiles: {}{} # '", "[".repeat(30_000), "]".repeat(30_000)), "nested deeper"),
    ];
    for (front, want) in cases {
        r.write("prompts/deep.md", &format!("---\n{front}\n---\n# Deep\n"));
        let (o, took) = gp_within(&r, &["plan", "--dry-run", "prompts/deep.md"], &[], 30);
        o.code(2);
        assert!(o.stderr.contains("prompts/deep.md:") && o.stderr.contains(want), "{want}: {}", o.stderr);
        assert!(took < std::time::Duration::from_secs(3), "{want}: took {took:?}");
    }
    // Ordinary nesting still parses.
    r.write("prompts/deep.md", "---\nfiles: [\"README.md\"]\ndepends_on:\n  - other\n---\n# Fine\n");
    r.write("prompts/other.md", "# Other\n");
    r.gp(&["plan", "--dry-run"]).ok();
}

#[test]
fn one_unreadable_plan_does_not_hide_the_others() {
    let r = TestRepo::new();
    r.write("prompts/a.md", "# A\n");
    r.gp(&["plan"]).ok();
    let blob = |text: &str| {
        let f = r.scratch("blob");
        std::fs::write(&f, text).unwrap();
        r.git(&["hash-object", "-w", f.to_str().unwrap()])
    };
    let commit_with = |entries: &str| {
        let f = r.scratch("tree");
        std::fs::write(&f, entries).unwrap();
        let mut c = r.command("git");
        c.args(["mktree"]).stdin(std::fs::File::open(&f).unwrap());
        let tree = String::from_utf8(c.output().unwrap().stdout).unwrap();
        r.git(&["commit-tree", tree.trim(), "-m", "not a plan"])
    };
    r.git(&["update-ref", "refs/parallel/plans/x", &blob("a blob\n")]);
    r.git(&["update-ref", "refs/parallel/plans/5", &commit_with("")]);
    let damaged = blob("version: [\n");
    r.git(&["update-ref", "refs/parallel/plans/6", &commit_with(&format!("100644 blob {damaged}\tplan.yaml\n"))]);
    let deep = blob(&format!("version: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)));
    r.git(&["update-ref", "refs/parallel/plans/7", &commit_with(&format!("100644 blob {deep}\tplan.yaml\n"))]);
    std::fs::write(r.path(".git/refs/parallel/plans/8"), "not a ref\n").unwrap();
    std::fs::write(r.path(".git/refs/parallel/plans/9"), "0000000000000000000000000000000000000001\n").unwrap();

    let (o, took) = gp_within(&r, &["plan", "--list"], &[], 20);
    o.ok();
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    let rows: Vec<&str> = o.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", o.stdout);
    assert!(rows[0].starts_with("1 "), "{}", o.stdout);
    for why in [
        "plan 5 has no plan.yaml",
        "plan 6: plan.yaml is damaged",
        "plan 7: plan.yaml is damaged: nested deeper than 32 levels",
        "refs/parallel/plans/8",
        "plan 9: refs/parallel/plans/9 cannot be read",
        "plan x: refs/parallel/plans/x does not point to a plan commit",
    ] {
        assert!(o.stderr.contains(why), "{why}: {}", o.stderr);
    }
    assert_eq!(gp_within(&r, &["plan", "--list", "--json"], &[], 20).0.ok().json(), serde_json::json!(["1"]));
    let o = r.gp(&["plan", "--show", "6"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("plan 6: plan.yaml is damaged"), "{}", o.stderr);
}

#[test]
fn variables_pointing_at_a_repository_do_not_move_our_refs() {
    // A hook or `git rebase -x` exports these; git-parallel works on the repository it is
    // started in, with its refs under refs/parallel/, whatever they say.
    let refs_after = |env: &[(&str, &str)]| {
        let r = TestRepo::new();
        r.use_fake_agent();
        r.prompt("a", "", "write a.txt a");
        r.prompt("b", "depends_on: a", "write b.txt b");
        r.commit("prompts");
        let other = TestRepo::new();
        let other_git = other.path(".git");
        let other_index = other.path(".git/index");
        let mut env: Vec<(&str, &str)> = env.to_vec();
        if !env.is_empty() {
            env.extend([
                ("GIT_DIR", other_git.to_str().unwrap()),
                ("GIT_WORK_TREE", other.root.to_str().unwrap()),
                ("GIT_INDEX_FILE", other_index.to_str().unwrap()),
            ]);
        }
        let (o, _) = gp_within(&r, &["plan", "prompts"], &env, 60);
        o.ok();
        assert!(o.stderr.contains("refs/parallel/plans/1"), "{}", o.stderr);
        let (o, _) = gp_within(&r, &["run", "1", "--no-integrate"], &env, 120);
        o.ok();
        let (o, _) = gp_within(&r, &["status", "1", "--json"], &env, 60);
        let tasks = o.ok().json()["tasks"].clone();
        assert!(tasks.as_array().unwrap().iter().all(|t| t["status"] == "succeeded"), "{tasks}");
        let (o, _) = gp_within(&r, &["plan", "--list", "--json"], &env, 60);
        assert_eq!(o.ok().json(), serde_json::json!(["1"]));
        assert_eq!(other.git(&["for-each-ref", "--format=%(refname)"]), "refs/heads/main", "the other repository");
        r.git(&["for-each-ref", "--format=%(refname)"])
    };
    let plain = refs_after(&[]);
    let namespaced = refs_after(&[("GIT_NAMESPACE", "foo")]);
    assert!(plain.contains("refs/parallel/plans/1") && plain.contains("refs/parallel/runs/1"), "{plain}");
    assert!(!namespaced.contains("refs/namespaces/"), "{namespaced}");
    assert_eq!(namespaced, plain);
}
