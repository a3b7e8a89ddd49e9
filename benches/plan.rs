//! Planning speed: `git parallel plan --dry-run` over generated repositories and prompt sets.
//! Target: 1,000 prompts over a 10,000-file repository in under 1 s. Run: cargo bench --bench plan

mod common;
use common::*;

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    println!("| repository files | prompts | median wall time (5 runs) |");
    println!("| ---: | ---: | ---: |");
    for (files, prompts) in [(1_000, 100), (10_000, 100), (10_000, 1_000), (100_000, 1_000)] {
        if files == 100_000 && std::env::var_os("BENCH_QUICK").is_some() {
            continue;
        }
        let root = tmp.path().join(format!("repo-{files}-{prompts}"));
        let paths = generate_repo(&root, &home, files, 7);
        generate_prompts(&root.join("prompts"), &paths, prompts, 11);
        let t = median(5, || {
            let o = cmd(bin(), &root, &home).args(["plan", "--dry-run", "--json", "-j", "4"]).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        });
        println!("| {files} | {prompts} | {:.0} ms |", t.as_secs_f64() * 1000.0);
    }
}
