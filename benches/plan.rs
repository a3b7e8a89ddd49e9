//! Planning speed: `git parallel plan --dry-run` over generated repositories and prompt sets.
//! Target: 1,000 prompts over a 10,000-file repository in under 1 s. Run: cargo bench --bench plan

mod common;
use common::*;

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    println!("| repository files | prompts | median wall time (5 runs) | hard conflicts | soft conflicts (transitive only) |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (files, prompts) in [(1_000, 100), (10_000, 100), (10_000, 1_000), (100_000, 1_000)] {
        if files == 100_000 && std::env::var_os("BENCH_QUICK").is_some() {
            continue;
        }
        let root = tmp.path().join(format!("repo-{files}-{prompts}"));
        let paths = generate_repo(&root, &home, files, 7);
        generate_prompts(&root.join("prompts"), &paths, prompts, 11);
        let mut out = Vec::new();
        let t = median(5, || {
            let o = cmd(bin(), &root, &home).args(["plan", "--dry-run", "--json", "-j", "4"]).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            out = o.stdout;
        });
        let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let conflicts = plan["conflicts"].as_array().cloned().unwrap_or_default();
        let hard = conflicts.iter().filter(|c| c["kind"] == "hard").count();
        // A transitive-only link shows only paths through a module in between (` -> ` twice).
        let transitive = conflicts
            .iter()
            .filter(|c| c["kind"] == "soft")
            .filter(|c| c["files"].as_array().unwrap().iter().all(|f| f.as_str().unwrap().matches(" -> ").count() > 1))
            .count();
        println!(
            "| {files} | {prompts} | {:.0} ms | {hard} | {} ({transitive}) |",
            t.as_secs_f64() * 1000.0,
            conflicts.len() - hard
        );
    }
    classify_speed();
}

/// The cost of classifying a title no rule matches (the rules, then the learned model), against
/// one the rules decide: the generated prompts above all match a rule, so they never reach the
/// model. The first calls compile the rules and read the model's table.
fn classify_speed() {
    use git_parallel::prompt::classify::{classify, classify_rules};
    use std::time::Instant;
    let t = Instant::now();
    std::hint::black_box(classify_rules("Fix a crash", ""));
    let rules_first = t.elapsed();
    let t = Instant::now();
    std::hint::black_box(classify("Turn callbacks into promises", ""));
    let model_first = t.elapsed();
    let per_call = |title: &str| {
        let t = Instant::now();
        for i in 0..10_000 {
            std::hint::black_box(classify(&format!("{title} {i}"), "Keep the API stable."));
        }
        t.elapsed().as_secs_f64() * 1e6 / 10_000.0
    };
    println!(
        "classify: first call of the rules (compiles them) {:.1} ms, of the model (reads its table) {:.1} ms; \
         a title the rules decide {:.1} µs, one only the model decides {:.1} µs",
        rules_first.as_secs_f64() * 1000.0,
        model_first.as_secs_f64() * 1000.0,
        per_call("Fix a crash in the parser"),
        per_call("Turn callbacks into promises in the parser")
    );
}
