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
//! on the result.
//!
//! The flaky tasks' luck is dealt from a seed: try `t` of attempt `a` of `flakyI` passes when
//! the `t`-th draw of its own deck says so (each a 40% chance). Every row of one seed sees the
//! same luck, so the rows compare ways of working, not luck; the seeds (`LANDED_SEEDS`, a
//! count, 5 by default, or a list such as `3,7`) give the spread of luck.
//!
//! Run: cargo bench --features test-fakes --bench landed

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const VERIFY: &str = "! ls broken-*.txt >/dev/null 2>&1 || { echo a broken file is in; exit 1; }";

/// The plan's prompts in `dir`; `right`: every agent does the right thing at once;
/// `attempts`: the flaky three get three attempts each; `luck`: the flaky tasks' decks.
fn prompts(dir: &Path, right: bool, attempts: bool, luck: &Path) {
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
        // Its check passes 40% of the time: each try (a first try or a fix round, which runs the
        // script's shell lines again) takes the next card of its attempt's deck.
        let draw = if right {
            format!("sh echo ok > lucky{i}.txt")
        } else {
            let deck = luck.join(format!("flaky{i}"));
            let deck = deck.display();
            format!(
                "sh rm -f lucky{i}.txt; d='{deck}'-${{GIT_PARALLEL_ATTEMPT:-1}}; n=$(($(cat \"$d.n\" 2>/dev/null || echo 0) + 1)); echo $n > \"$d.n\"; [ \"$(sed -n ${{n}}p \"$d\")\" = pass ] && echo ok > lucky{i}.txt || true"
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

/// Deals the flaky tasks' decks for `seed` into `luck` (a fresh count of tries each): 20
/// cards per attempt, each `pass` with probability 0.4. Returns them: flaky task, attempt, try.
fn deal(luck: &Path, seed: u64) -> Vec<Vec<Vec<bool>>> {
    use rand::{Rng, SeedableRng};
    let _ = std::fs::remove_dir_all(luck);
    std::fs::create_dir_all(luck).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut decks = Vec::new();
    for i in 0..3 {
        let mut task = Vec::new();
        for a in 1..=3 {
            let cards: Vec<bool> = (0..20).map(|_| rng.random_bool(0.4)).collect();
            let text: Vec<&str> = cards.iter().map(|&c| if c { "pass" } else { "fail" }).collect();
            std::fs::write(luck.join(format!("flaky{i}-{a}")), text.join("\n") + "\n").unwrap();
            task.push(cards);
        }
        decks.push(task);
    }
    decks
}

/// The fewest turns a flaky task can take with this luck (`attempts`: its decks; `rounds` fix
/// rounds each): attempts one after another, each given its fix rounds first (a round, one
/// turn, is cheaper than a new attempt's first try, two). What running attempts at once costs
/// is the rest.
fn least_for(attempts: &[Vec<bool>], rounds: usize) -> u64 {
    let mut turns = 0;
    for deck in attempts {
        turns += 2;
        for (t, &pass) in deck.iter().take(rounds + 1).enumerate() {
            if pass {
                return turns;
            }
            if t < rounds {
                turns += 1;
            }
        }
    }
    turns
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
    let luck = tmp.path().join("luck");
    let seeds: Vec<u64> = match std::env::var("LANDED_SEEDS") {
        Ok(v) if v.contains(',') => v.split(',').map(|s| s.trim().parse().expect("LANDED_SEEDS: numbers")).collect(),
        Ok(v) => (1..=v.trim().parse::<u64>().expect("LANDED_SEEDS: a count or a list")).collect(),
        Err(_) => (1..=5).collect(),
    };
    let mut run_no = 0;
    let mut next = |right: bool, attempts: bool, seed: u64, args: &[&str]| {
        prompts(&dir, right, attempts, &luck);
        deal(&luck, seed);
        run_no += 1;
        run(&root, &home, &path, run_no, args)
    };
    // Every first result right: no luck involved, one run.
    let right = next(true, false, 0, &["--fix-rounds", "0"]);
    let names = [
        "no loops",
        "fix rounds + --resolve",
        "the same + attempts: 3 on the flaky three",
        "fix rounds + --resolve, an agent without a session (custom)",
    ];
    let mut by_seed: Vec<(u64, [Row; 4])> = Vec::new();
    // Per seed, the fewest turns the attempts row could take with its luck.
    let mut least: Vec<u64> = Vec::new();
    for &seed in &seeds {
        let none = next(false, false, seed, &["--fix-rounds", "0"]);
        let loops = next(false, false, seed, &["--fix-rounds", "2", "--resolve"]);
        let tries = next(false, true, seed, &["--fix-rounds", "2", "--resolve"]);
        let custom = next(false, false, seed, &["--fix-rounds", "2", "--resolve", "--agent", "custom"]);
        eprintln!("seed {seed}: {} / {} / {} / {} turns", none.turns, loops.turns, tries.turns, custom.turns);
        let decks = deal(&luck, seed);
        let flaky: u64 =
            tries.spent.iter().filter(|(t, _)| t.starts_with("flaky")).map(|(_, v)| v.iter().sum::<u64>()).sum();
        least.push(tries.turns - flaky + decks.iter().map(|d| least_for(d, 2)).sum::<u64>());
        by_seed.push((seed, [none, loops, tries, custom]));
    }
    let ratio = |r: &Row| r.turns as f64 / right.turns.max(1) as f64;
    println!("20 tasks: 6 fail their check until shown it, 4 conflict, 2 break verify, 3 pass their check 40% of the time; -j 4");
    println!("seeds of the flaky tasks' luck: {seeds:?}\n");
    println!("| run | seed | landed and green | turns | turns vs all right first | recorded turns | wall | left out |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let line = |name: &str, seed: &str, r: &Row| {
        println!(
            "| {name} | {seed} | {} of 20 | {} | {:.2}x | {} | {:.1} s | {} |",
            r.landed,
            r.turns,
            ratio(r),
            r.recorded,
            r.wall,
            r.out.join("; ")
        )
    };
    line("every first result right", "-", &right);
    for (k, name) in names.iter().enumerate() {
        for (seed, rows) in &by_seed {
            line(name, &seed.to_string(), &rows[k]);
        }
    }
    println!("\nOver the seeds:\n");
    println!("| run | landed and green (least) | turns vs all right first: mean | least | most | runs within 1.5x |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (k, name) in names.iter().enumerate() {
        let rs: Vec<f64> = by_seed.iter().map(|(_, rows)| ratio(&rows[k])).collect();
        let least = by_seed.iter().map(|(_, rows)| rows[k].landed).min().unwrap_or(0);
        let mean = rs.iter().sum::<f64>() / rs.len().max(1) as f64;
        let lo = rs.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = rs.iter().cloned().fold(0.0, f64::max);
        let within = rs.iter().filter(|r| **r <= 1.5).count();
        println!("| {name} | {least} of 20 | {mean:.2}x | {lo:.2}x | {hi:.2}x | {within} of {} |", rs.len());
    }
    {
        let rs: Vec<f64> = least.iter().map(|&t| t as f64 / right.turns.max(1) as f64).collect();
        let mean = rs.iter().sum::<f64>() / rs.len().max(1) as f64;
        let lo = rs.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = rs.iter().cloned().fold(0.0, f64::max);
        let within = rs.iter().filter(|r| **r <= 1.5).count();
        println!(
            "| the least the same luck allows with attempts: 3 (attempts one after another, fix rounds first) | - | {mean:.2}x | {lo:.2}x | {hi:.2}x | {within} of {} |",
            rs.len()
        );
    }
    println!("\nWhere the turns went (summed over the seeds):\n");
    println!("| run | {} |", KINDS.join(" | "));
    println!("| --- |{}", " ---: |".repeat(KINDS.len()));
    for (k, name) in names.iter().enumerate() {
        let sum = |kind: usize| {
            by_seed
                .iter()
                .map(|(_, rows)| rows[k].spent.values().map(|v| v[kind]).sum::<u64>())
                .sum::<u64>()
                .to_string()
        };
        println!("| {name} | {} |", (0..KINDS.len()).map(sum).collect::<Vec<_>>().join(" | "));
    }
    for (seed, rows) in &by_seed {
        for (name, r) in names.iter().zip(rows).skip(1) {
            println!("\nPer task, seed {seed}, {name} (right first: the same task's turns when every first result is right):\n");
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
    // LANDED_KEEP=1 keeps the repository, its runs and the decks, to look into.
    if std::env::var_os("LANDED_KEEP").is_some() {
        eprintln!("kept: {}", tmp.keep().display());
    }
}
