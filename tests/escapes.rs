//! An agent's text never drives the user's terminal: escape sequences (OSC 52 writes the
//! clipboard, CSI moves the cursor, C1 controls do both on some terminals) in what it prints,
//! in its stderr, in its tool names, in the names of the files it writes and in its failure
//! reason are shown escaped by `run`, `status`, `logs` and `report`; `--json` keeps them.

mod common;
use common::TestRepo;

const OSC52: &str = "\u{1b}]52;c;cHduZWQ=\u{7}";
const CSI: &str = "\u{1b}[2J";
const C1: &str = "\u{9b}31m";

/// Characters that must not reach a terminal: C0 controls but newline and tab, DEL, C1.
fn controls(text: &str) -> Vec<char> {
    text.chars().filter(|&c| c.is_control() && c != '\n' && c != '\t').collect()
}

fn assert_clean(what: &str, o: &common::Out) {
    for (stream, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let bad = controls(text);
        assert!(bad.is_empty(), "{what} wrote {bad:?} on {stream}:\n{text}");
    }
}

fn hostile_run() -> (TestRepo, common::Out) {
    let r = TestRepo::new();
    r.use_fake_agent();
    let evil_file = format!("evil{OSC52}{C1}.txt");
    let evil_tool = format!("Bash{CSI}");
    // A transcript line that is not JSON, and one that is (its text with an escape in it).
    let plain = format!("print plain {OSC52} line {C1}");
    let json = r#"print {"type":"assistant","message":{"content":[{"type":"text","text":"said \u001b]52;c;dGV4dA==\u0007 this"},{"type":"tool_use","name":"Read\u001b[31m","input":{"file_path":"x\u009b2J"}}]}}"#;
    r.prompt(
        "evil",
        "",
        &format!("write {evil_file} x\ntool {evil_tool} {evil_file}\n{plain}\n{json}\nstderr err {OSC52} {CSI} {C1}"),
    );
    r.prompt("failing", "", &format!("stderr before {OSC52}\nfail 3 broke {OSC52} {CSI} {C1}"));
    // Two tasks writing one file of an escaped name: a conflict names it.
    let clash = format!("clash{OSC52}.txt");
    r.prompt("c1", "", &format!("write {clash} one"));
    r.prompt("c2", "", &format!("write {clash} two"));
    r.commit("prompts");
    let o = r.gp(&["run", "prompts", "-j", "2"]);
    (r, o)
}

#[test]
fn human_output_escapes_agents_terminal_controls() {
    let (r, run) = hostile_run();
    run.code(1);
    assert_clean("run", &run);
    // The escapes are there, shown as text.
    assert!(run.stderr.contains("broke \\u{1b}]52;c;"), "{}", run.stderr);
    let state = r.run_state("1");
    assert_eq!(state["tasks"].as_array().unwrap().len(), 4, "{state}");
    for args in [
        vec!["status"],
        vec!["status", "1"],
        vec!["logs", "1"],
        vec!["logs", "1", "evil"],
        vec!["logs", "1", "failing"],
        vec!["report", "1"],
        vec!["report", "1", "--format", "md"],
        vec!["report", "1", "--format", "html"],
        vec!["integrate", "1"],
    ] {
        let o = r.gp(&args);
        assert_clean(&args.join(" "), &o);
    }
    let logs = r.gp(&["logs", "1", "evil"]);
    assert!(logs.stdout.contains("plain \\u{1b}]52;c;"), "{}", logs.stdout);
    assert!(logs.stdout.contains("err \\u{1b}]52;c;"), "{}", logs.stdout);
    assert!(logs.stdout.contains("said \\u{1b}]52;c;dGV4dA==\\u{7} this"), "{}", logs.stdout);
    assert!(logs.stdout.contains("* Read\\u{1b}[31m x\\u{9b}2J"), "{}", logs.stdout);
    let html = r.gp(&["report", "1", "--format", "html"]);
    assert!(html.stdout.contains("broke \\u{1b}]52;c;"), "{}", html.stdout);
    let status = r.gp(&["status", "1"]);
    assert!(status.stdout.contains("conflict: clash\\u{1b}]52;c;"), "{}", status.stdout);
}

#[test]
fn json_and_raw_output_keep_the_text_as_it_was() {
    let (r, _) = hostile_run();
    let failing = r.task_state("1", "failing");
    let reason = failing["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("broke {OSC52} {CSI} {C1}")), "{reason:?}");
    let evil = r.task_state("1", "evil");
    assert_eq!(evil["last_tool"], format!("Read\u{1b}[31m"), "{evil}");
    let files: Vec<&str> = evil["files_changed"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert!(files.contains(&format!("evil{OSC52}{C1}.txt").as_str()), "{files:?}");
    let report = r.gp(&["report", "1", "--format", "json"]);
    report.ok();
    assert!(report.json()["tasks"].to_string().contains("broke \\u001b]52;c;"), "{}", report.stdout);
    // `--raw` into a pipe is what the agent wrote.
    let raw = r.gp(&["logs", "1", "evil", "--raw"]);
    assert!(raw.stdout.contains(&format!("plain {OSC52} line")), "{}", raw.stdout);
}
