//! Cost of containment, side by side in one run: starting a trivial command directly, under
//! the containment supervisor (PID namespace, and the subreaper fallback), and under the
//! bubblewrap sandbox as well; then whole runs of trivial tasks in each mode.
//! Run: cargo bench --features test-fakes --bench contain

mod common;
use common::*;
use std::process::Command;
use std::time::Instant;

const SPAWNS: usize = 200;
const TASKS: usize = 20;

/// Mean milliseconds to start and reap `program args` SPAWNS times.
fn spawn_ms(program: &str, args: &[&str], env: &[(&str, &str)]) -> f64 {
    let t = Instant::now();
    for _ in 0..SPAWNS {
        let st = Command::new(program).args(args).envs(env.iter().copied()).status().unwrap();
        assert!(st.success(), "{program} {args:?}");
    }
    t.elapsed().as_secs_f64() * 1e3 / SPAWNS as f64
}

fn main() {
    let exe = bin();
    let exe = exe.to_str().unwrap();
    let bwrap = git_parallel::proc::which("bwrap").is_some();
    println!("Starting `true` {SPAWNS} times, mean per start:\n");
    println!("| how | per start | added |");
    println!("| --- | ---: | ---: |");
    let direct = spawn_ms("true", &[], &[]);
    println!("| directly | {direct:.2} ms | |");
    let ns = spawn_ms(exe, &["__contain", "--", "true"], &[]);
    println!("| contained, PID namespace | {ns:.2} ms | {:.2} ms |", ns - direct);
    let sr = spawn_ms(exe, &["__contain", "--", "true"], &[("GIT_PARALLEL_CONTAIN", "subreaper")]);
    println!("| contained, subreaper | {sr:.2} ms | {:.2} ms |", sr - direct);
    if bwrap {
        let sb = spawn_ms(
            exe,
            &["__contain", "--", "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "true"],
            &[],
        );
        println!("| contained + bubblewrap, read-only root only | {sb:.2} ms | {:.2} ms |", sb - direct);
        // The namespaces, privileges and private mounts `--sandbox` adds (see exec::sandbox).
        let mut args = vec!["__contain", "--", "bwrap"];
        args.extend_from_slice(git_parallel::exec::sandbox::ISOLATION);
        for m in git_parallel::exec::sandbox::PRIVATE_MOUNTS.iter().filter(|m| std::path::Path::new(m).is_dir()) {
            args.extend(["--tmpfs", m]);
        }
        args.extend(["--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "true"]);
        let full = spawn_ms(exe, &args, &[]);
        println!("| contained + bubblewrap as `--sandbox` runs it | {full:.2} ms | {:.2} ms |", full - direct);
    }

    println!("\n{TASKS} trivial tasks, one at a time, wall time per task of `git parallel run`:\n");
    println!("| mode | per task |");
    println!("| --- | ---: |");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut modes =
        vec![("PID namespace", vec![], vec![]), ("subreaper", vec![], vec![("GIT_PARALLEL_CONTAIN", "subreaper")])];
    if bwrap {
        modes.push(("--sandbox", vec!["--sandbox"], vec![]));
    }
    for (name, extra, env) in modes {
        let root = tmp.path().join(name.replace([' ', '-'], ""));
        fake_agent_repo(&root, &home);
        let dir = root.join("prompts");
        for i in 0..TASKS {
            fake_prompt(&dir, &format!("t{i}"), &[], 1.0, &format!("write f{i}.txt {i}"));
        }
        git(&root, &home, &["add", "-A"]);
        git(&root, &home, &["commit", "-q", "-m", "prompts"]);
        let mut args = vec!["run", "prompts", "-j", "1", "--no-integrate"];
        args.extend(extra);
        let t = Instant::now();
        let o = cmd(bin(), &root, &home).args(&args).envs(env).env("NO_PROGRESS", "1").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        println!("| {name} | {:.0} ms |", t.elapsed().as_secs_f64() * 1e3 / TASKS as f64);
    }
}
