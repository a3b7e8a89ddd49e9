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
//! Landed and green: merged into the integration branch, its check passed, and verify passes
//! on the result. Run: cargo bench --features test-fakes --bench landed

mod common;
use common::*;
use std::path::Path;
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
        // Writes the file plainK also writes; shown the conflict, keeps both sides.
        let both = format!("printf 'plain\\nconflict\\n' > shared{i}.txt");
        let body = if right {
            format!("write conflict{i}.txt ok\nsh {both}")
        } else {
            format!(
                "write conflict{i}.txt ok\nwrite shared{i}.txt conflict\n{}",
                on("conflicts with what was integrated", &both)
            )
        };
        // Serialized after plainK when right (no conflict to resolve), parallel otherwise.
        let front = if right { format!("---\ndepends_on: [plain{i}]\n---\n") } else { String::new() };
        write_prompt(dir, &format!("conflict{i}"), &front, &body);
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
    turns: u64,
    wall: f64,
}

fn run(root: &Path, home: &Path, run_no: usize, args: &[&str]) -> Row {
    let t = Instant::now();
    let mut full = vec!["run", "prompts", "-j", "4", "--allow-conflicts", "--verify", VERIFY];
    full.extend(args);
    let o = cmd(bin(), root, home).args(&full).env("NO_PROGRESS", "1").output().unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&o.stderr));
    let s = run_state(root, home, &run_no.to_string());
    let merged: Vec<&str> = s["integration"]["merged"]
        .as_array()
        .map(|m| m.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    let green = s["integration"]["verified"] != false;
    let tasks = s["tasks"].as_array().unwrap();
    let landed = tasks
        .iter()
        .filter(|t| merged.contains(&t["id"].as_str().unwrap()))
        // Succeeded: its check passed (its own, or the winning attempt's).
        .filter(|t| t["status"] == "succeeded")
        .count();
    let turns = tasks.iter().filter_map(|t| t["metrics"]["turns"].as_u64()).sum();
    let out = tasks
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
            format!("{} ({})", t["id"].as_str().unwrap(), why.unwrap_or_default().chars().take(60).collect::<String>())
        })
        .collect();
    Row { landed: if green { landed } else { 0 }, out, turns, wall }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    fake_agent_repo(&root, &home);
    std::fs::write(root.join(".git/info/exclude"), "prompts/\n").unwrap();
    let dir = root.join("prompts");
    prompts(&dir, true, false);
    let right = run(&root, &home, 1, &["--fix-rounds", "0"]);
    prompts(&dir, false, false);
    let none = run(&root, &home, 2, &["--fix-rounds", "0"]);
    let loops = run(&root, &home, 3, &["--fix-rounds", "2", "--resolve"]);
    prompts(&dir, false, true);
    let tries = run(&root, &home, 4, &["--fix-rounds", "2", "--resolve"]);
    println!("20 tasks: 6 fail their check until shown it, 4 conflict, 2 break verify, 3 pass their check 40% of the time; -j 4\n");
    println!("| run | landed and green | turns | turns vs all right first | wall | left out |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    for (name, r) in [
        ("every first result right", &right),
        ("no loops", &none),
        ("fix rounds + --resolve", &loops),
        ("the same + attempts: 3 on the flaky three", &tries),
    ] {
        println!(
            "| {name} | {} of 20 | {} | {:.2}x | {:.1} s | {} |",
            r.landed,
            r.turns,
            r.turns as f64 / right.turns.max(1) as f64,
            r.wall,
            r.out.join("; ")
        );
    }
}
