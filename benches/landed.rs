//! Work that lands: 20 scripted tasks (the fake agent), of which 6 give a result that fails
//! their check until shown the failure, 4 conflict with another task's result until shown the
//! conflict, 2 break verify on the integrated tree until shown its output, and 3 pass their
//! check only 40% of the time. Side by side in one run:
//!
//! - every first result right (the same 20 tasks, each agent doing the right thing at once):
//!   the turns a run needs at the least;
//! - no loops (`--fix-rounds 0`, no `--resolve`): what lands today;
//! - fix rounds and `--resolve` (`--fix-rounds 2`);
//! - the same with `attempts: 3` on the three flaky tasks.
//!
//! The agent is the fake agent as Claude Code (the default profile, `claude` on `PATH`): it
//! keeps a session, so a fix round or a handed-back conflict continues it with the news. A
//! resumed fake agent holds its context: it does not redo what it did that still stands (a
//! file it wrote that still holds what it wrote), it runs its script's other lines again,
//! which react to what it was told (see `src/bin/fake-agent.rs`). One more row runs the fix
//! rounds with the fake agent as a custom command, which keeps no session: each round starts
//! again from the task's prompt followed by the feedback.
//!
//! Turns are counted from the fake agent's own ledger (`FAKE_AGENT_LEDGER`: every turn of
//! every agent process, also one stopped before its final report), beside what the run
//! recorded; then where they went, per task: the first try (of the attempt that won), fix
//! rounds, resolve rounds (conflict or verify handed back), attempts that lost and ran to
//! their end, and attempts cut short when another won.
//!
//! Landed and green: merged into the integration branch, its check passed, and verify passes
//! on the result. Run: cargo bench --features test-fakes --bench landed

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const VERIFY: &str = "! ls broken-*.txt >/dev/null 2>&1 || { echo a broken file is in; exit 1; }";

/// The plan's prompts in `dir`; `right`: every agent does the right thing at once;
/// `attempts`: the flaky three get three attempts each.
fn prompts(dir: &Path, right: bool, attempts: bool) {
    let _ = std::fs::remove_dir_all(dir);
    let on = |marker: &str, then: &str| -> String {
        if right {
            format!("sh {then}")
        } else {
            // The marker as a pattern that does not match its own text in the prompt.
            let (head, last) = marker.split_at(marker.len() - 1);
            format!("sh if grep -q '{head}[{last}]' \"$GIT_PARALLEL_PROMPT_FILE\"; then {then}; fi")
        }
    };
    for i in 0..5 {
        fake_prompt(dir, &format!("plain{i}"), &[], 1.0, &format!("write plain{i}.txt ok\nwrite shared{i}.txt plain"));
    }
    for i in 0..6 {
        // Forgets fixed-checkK.txt until the check's failure says so.
        let fix = if right {
            format!("sh echo ok > fixed-check{i}.txt")
        } else {
            format!("sh [ -z \"$GIT_PARALLEL_FEEDBACK\" ] || echo ok > fixed-check{i}.txt")
        };
        let body = format!("write check{i}.txt ok\n{fix}");
        let front =
            format!("---\ncheck: test -f fixed-check{i}.txt || {{ echo needs fixed-check{i}.txt; exit 1; }}\n---\n");
        write_prompt(dir, &format!("check{i}"), &front, &body);
    }
    for i in 0..4 {
        // Writes the file plainK also writes; shown the conflict, keeps both sides. Named to
        // come after plainK in the plan, so that integration merges plainK first and hands
        // this one back.
        let both = format!("printf 'plain\\nconflict\\n' > shared{i}.txt");
        let body = if right {
            // The shared file written as every file is, a turn: the floor pays for each file
            // the agent writes, as the other rows do.
            format!("write conflict{i}.txt ok\nwrite shared{i}.txt plain\\nconflict\\n")
        } else {
            format!(
                "write conflict{i}.txt ok\nwrite shared{i}.txt conflict\n{}",
                on("conflicts with what was integrated", &both)
            )
        };
        // Serialized after plainK when right (no conflict to resolve), parallel otherwise.
        let front = if right { format!("---\ndepends_on: [plain{i}]\n---\n") } else { String::new() };
        write_prompt(dir, &format!("rival{i}"), &front, &body);
    }
    for i in 0..2 {
        // Leaves a stray file that breaks verify until shown verify's output.
        let body = if right {
            format!("write verify{i}.txt ok")
        } else {
            format!(
                "write verify{i}.txt ok\nwrite broken-{i}.txt oops\n{}",
                on("fails on the integrated result", &format!("rm -f broken-{i}.txt"))
            )
        };
        write_prompt(dir, &format!("verify{i}"), "", &body);
    }
    for i in 0..3 {
        // Its check passes 40% of the time (each try draws again: 102 of 256).
        let draw = if right {
            format!("sh echo ok > lucky{i}.txt")
        } else {
            format!(
                "sh rm -f lucky{i}.txt; [ $(od -An -N1 -tu1 /dev/urandom) -lt 102 ] && echo ok > lucky{i}.txt || true"
            )
        };
        let tries = if attempts { "attempts: 3\n" } else { "" };
        let front = format!("---\n{tries}check: test -f lucky{i}.txt || {{ echo unlucky; exit 1; }}\n---\n");
        write_prompt(dir, &format!("flaky{i}"), &front, &format!("write flaky{i}.txt ok\n{draw}"));
    }
}

fn write_prompt(dir: &Path, id: &str, front: &str, script: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{id}.md")), format!("{front}# Task {id}\n\n```fake-agent\n{script}\n```\n"))
        .unwrap();
}

struct Row {
    landed: usize,
    /// Tasks that did not land, with why.
    out: Vec<String>,
    /// Every turn the agents took (the fake agent's ledger).
    turns: u64,
    /// The turns the run recorded (`status --json`, all tasks and attempts).
    recorded: u64,
    wall: f64,
    /// Task -> turns by where they went (see [`KINDS`]).
    spent: BTreeMap<String, [u64; 5]>,
}

/// Where turns go.
const KINDS: [&str; 5] = ["first try", "fix rounds", "resolve rounds", "attempts that lost", "attempts cut short"];

fn run(root: &Path, home: &Path, path: &str, run_no: usize, args: &[&str]) -> Row {
    let ledger = home.join(format!("ledger-{run_no}.jsonl"));
    let t = Instant::now();
    let mut full = vec!["run", "prompts", "-j", "4", "--allow-conflicts", "--verify", VERIFY];
    full.extend(args);
    let o = cmd(bin(), root, home)
        .args(&full)
        .env("NO_PROGRESS", "1")
        .env("PATH", path)
        .env("FAKE_AGENT_LEDGER", &ledger)
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&o.stderr));
    let s = run_state(root, home, &run_no.to_string());
    let merged: Vec<&str> = s["integration"]["merged"]
        .as_array()
        .map(|m| m.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    let green = s["integration"]["verified"] != false;
    let tasks = s["tasks"].as_array().unwrap();
    // A resolution that drops one side of the conflict did not land both tasks' work.
    let both_sides = |id: &str| match id.strip_prefix("rival") {
        None => true,
        Some(i) => {
            let at = format!("parallel/{run_no}/integration:shared{i}.txt");
            let o = cmd("git", root, home).args(["show", &at]).output().unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            text.lines().any(|l| l == "plain") && text.lines().any(|l| l == "conflict")
        }
    };
    let mut out: Vec<String> = tasks
        .iter()
        .filter(|t| merged.contains(&t["id"].as_str().unwrap()) && !both_sides(t["id"].as_str().unwrap()))
        .map(|t| format!("{} (a side of its conflict lost)", t["id"].as_str().unwrap()))
        .collect();
    let landed = tasks
        .iter()
        .filter(|t| merged.contains(&t["id"].as_str().unwrap()) && both_sides(t["id"].as_str().unwrap()))
        // Succeeded: its check passed (its own, or the winning attempt's).
        .filter(|t| t["status"] == "succeeded")
        .count();
    let recorded = tasks.iter().filter_map(|t| t["metrics"]["turns"].as_u64()).sum();
    out.extend(
        tasks
            .iter()
            .filter(|t| !merged.contains(&t["id"].as_str().unwrap()) && !t["id"].as_str().unwrap().contains('@'))
            .map(|t| {
                let why = t["reason"].as_str().map(String::from).or_else(|| {
                    let id = &t["id"];
                    let i = &s["integration"];
                    i["conflicts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| c["task"] == *id)
                        .map(|_| "conflict".to_string())
                        .or_else(|| {
                            i["dropped"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .find(|d| d[0] == *id)
                                .map(|d| d[1].as_str().unwrap_or("").to_string())
                        })
                });
                format!(
                    "{} ({})",
                    t["id"].as_str().unwrap(),
                    why.unwrap_or_default().chars().take(60).collect::<String>()
                )
            }),
    );
    // The attempt whose result each task took.
    let winner = |task: &str| -> String {
        let t = tasks.iter().find(|t| t["id"] == task);
        let reason = t.and_then(|t| t["reason"].as_str()).unwrap_or("");
        reason
            .strip_prefix("attempt ")
            .and_then(|r| r.split_once(" won"))
            .map_or(task.to_string(), |(w, _)| w.to_string())
    };
    let spent = where_turns_went(&ledger, winner);
    let turns = spent.values().flatten().sum();
    Row { landed: if green { landed } else { 0 }, out, turns, recorded, wall, spent }
}

/// Each agent process of the ledger, by task, sorted into [`KINDS`]: a resolve round is a
/// `resolve-TASK` run (no session) or a session resumed without a check's feedback (this
/// benchmark interrupts nothing); a fix round has the check's feedback; an attempt other than
/// the winning one lost, or was cut short when it has no final report.
fn where_turns_went(ledger: &Path, winner: impl Fn(&str) -> String) -> BTreeMap<String, [u64; 5]> {
    #[derive(Default)]
    struct Proc {
        task: String,
        resumed: bool,
        feedback: bool,
        turns: u64,
        end: Option<u64>,
    }
    let mut procs: BTreeMap<String, Proc> = BTreeMap::new();
    for line in std::fs::read_to_string(ledger).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let p = procs.entry(v["proc"].as_str().unwrap().to_string()).or_default();
        if let Some(task) = v["start"].as_str() {
            *p = Proc {
                task: task.to_string(),
                resumed: v["resumed"] == true,
                feedback: v["feedback"] == true,
                ..Default::default()
            };
        } else if v["turn"].is_u64() {
            p.turns += 1;
        } else if let Some(n) = v["end"].as_u64() {
            p.end = Some(n);
        }
    }
    let mut by_task: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    for p in procs.values() {
        let resolve = p.task.starts_with("resolve-") || (p.resumed && !p.feedback);
        let attempt = p.task.strip_prefix("resolve-").unwrap_or(&p.task);
        let task = attempt.split('@').next().unwrap().to_string();
        let kind = if resolve {
            2
        } else if attempt != winner(&task) {
            if p.end.is_some() {
                3
            } else {
                4
            }
        } else if p.feedback {
            1
        } else {
            0
        };
        by_task.entry(task).or_default()[kind] += p.end.unwrap_or(p.turns);
    }
    by_task
}

/// A folder holding `claude`, the fake agent: the Claude Code profile, sessions and all.
fn fake_claude(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let claude = dir.join("claude");
    std::fs::write(&claude, format!("#!/bin/sh\nexec '{}' \"$@\"\n", fake_agent().display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&claude, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.to_path_buf()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    fake_agent_repo(&root, &home);
    let bin_dir = fake_claude(&tmp.path().join("bin"));
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    git(&root, &home, &["config", "parallel.agent", "claude"]);
    std::fs::write(root.join(".git/info/exclude"), "prompts/\n").unwrap();
    let dir = root.join("prompts");
    prompts(&dir, true, false);
    let right = run(&root, &home, &path, 1, &["--fix-rounds", "0"]);
    prompts(&dir, false, false);
    let none = run(&root, &home, &path, 2, &["--fix-rounds", "0"]);
    let loops = run(&root, &home, &path, 3, &["--fix-rounds", "2", "--resolve"]);
    prompts(&dir, false, true);
    let tries = run(&root, &home, &path, 4, &["--fix-rounds", "2", "--resolve"]);
    prompts(&dir, false, false);
    let custom = run(&root, &home, &path, 5, &["--fix-rounds", "2", "--resolve", "--agent", "custom"]);
    println!("20 tasks: 6 fail their check until shown it, 4 conflict, 2 break verify, 3 pass their check 40% of the time; -j 4\n");
    println!("| run | landed and green | turns | turns vs all right first | recorded turns | wall | left out |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    let rows = [
        ("every first result right", &right),
        ("no loops", &none),
        ("fix rounds + --resolve", &loops),
        ("the same + attempts: 3 on the flaky three", &tries),
        ("fix rounds + --resolve, an agent without a session (custom)", &custom),
    ];
    for (name, r) in rows {
        println!(
            "| {name} | {} of 20 | {} | {:.2}x | {} | {:.1} s | {} |",
            r.landed,
            r.turns,
            r.turns as f64 / right.turns.max(1) as f64,
            r.recorded,
            r.wall,
            r.out.join("; ")
        );
    }
    println!("\nWhere the turns went:\n");
    println!("| run | {} |", KINDS.join(" | "));
    println!("| --- |{}", " ---: |".repeat(KINDS.len()));
    for (name, r) in rows {
        let sum = |k: usize| r.spent.values().map(|v| v[k]).sum::<u64>().to_string();
        println!("| {name} | {} |", (0..KINDS.len()).map(sum).collect::<Vec<_>>().join(" | "));
    }
    for (name, r) in &rows[2..] {
        println!("\nPer task, {name} (right first: the same task's turns when every first result is right):\n");
        println!("| task | right first | {} | total |", KINDS.join(" | "));
        println!("| --- | ---: |{} ---: |", " ---: |".repeat(KINDS.len()));
        for (task, v) in &r.spent {
            let floor = right.spent.get(task).map_or(0, |v| v.iter().sum::<u64>());
            let total: u64 = v.iter().sum();
            if total == floor {
                continue;
            }
            let cols: Vec<String> = v.iter().map(|n| n.to_string()).collect();
            println!("| {task} | {floor} | {} | {total} |", cols.join(" | "));
        }
    }
}
