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
}
