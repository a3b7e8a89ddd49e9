//! Task type classification measured on real task descriptions: commit subjects and issue titles
//! of public repositories, labelled by hand with the type a person gives them
//! (`tests/data/task-types.tsv`, each line naming its source, the header saying how the set was
//! sampled and labelled). Run with `--nocapture` to see the report:
//! `cargo test --test types -- --nocapture`.
//!
//! Every third issue title is held out: the rules are tuned on the rest, and the held-out part's
//! misses are printed only with `TYPES_SHOW_HELDOUT=1`, so that its accuracy stays an honest
//! estimate of accuracy on unseen text.

use git_parallel::prompt::classify::classify;
use git_parallel::prompt::TaskType;
use std::collections::BTreeMap;

/// The floor below which the classifier has regressed (measured: see the README).
const MIN_ACCURACY: f64 = 0.85;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Commit,
    /// An issue (or pull-request) title the rules may be tuned on.
    Issue,
    /// An issue title never looked at while changing the rules.
    HeldOut,
}

struct Example {
    want: TaskType,
    source: String,
    text: String,
    part: Part,
}

fn labelled() -> Vec<Example> {
    let text = include_str!("data/task-types.tsv");
    let mut issues = 0;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.splitn(3, '\t');
            let (kind, source, subject) = (cols.next().unwrap(), cols.next().unwrap(), cols.next().unwrap());
            let want = TaskType::parse(kind).unwrap_or_else(|| panic!("bad type in line {l:?}"));
            let part = if source.contains('#') {
                issues += 1;
                if issues % 3 == 0 {
                    Part::HeldOut
                } else {
                    Part::Issue
                }
            } else {
                assert!(source.contains('@'), "source is neither a commit nor an issue: {l:?}");
                Part::Commit
            };
            Example { want, source: source.to_string(), text: subject.to_string(), part }
        })
        .collect()
}

/// Accuracy of one part: prints the total and per type, returns (right, total).
fn report(name: &str, set: &[&Example]) -> (usize, usize) {
    let mut per_type: BTreeMap<TaskType, (usize, usize)> = BTreeMap::new();
    let mut right = 0;
    for e in set {
        let entry = per_type.entry(e.want).or_default();
        entry.1 += 1;
        if classify(&e.text, "") == e.want {
            right += 1;
            entry.0 += 1;
        }
    }
    let accuracy = if set.is_empty() { 0.0 } else { right as f64 / set.len() as f64 };
    println!("{name}: {right}/{} correct, accuracy {accuracy:.3}", set.len());
    let line: Vec<String> = per_type.iter().map(|(t, (r, n))| format!("{t} {r}/{n}")).collect();
    println!("    {}", line.join(", "));
    (right, set.len())
}

fn misses(set: &[&Example]) -> Vec<String> {
    set.iter()
        .filter_map(|e| {
            let got = classify(&e.text, "");
            (got != e.want).then(|| format!("  {} ≠ {got}: {}  ({})", e.want, e.text, e.source))
        })
        .collect()
}

#[test]
fn accuracy_on_real_task_descriptions() {
    let set = labelled();
    let all: Vec<&Example> = set.iter().collect();
    let part = |p: &[Part]| -> Vec<&Example> { set.iter().filter(|e| p.contains(&e.part)).collect() };
    let (commits, issues, tuning, held_out) =
        (part(&[Part::Commit]), part(&[Part::Issue, Part::HeldOut]), part(&[Part::Issue]), part(&[Part::HeldOut]));
    assert!(set.len() >= 150, "the labelled set has {} entries", set.len());
    assert!(issues.len() >= 100, "the labelled set has {} issue titles", issues.len());

    let (right, total) = report("task types, whole set", &all);
    report("commit subjects", &commits);
    report("issue titles", &issues);
    report("issue titles, tuning part", &tuning);
    report("issue titles, held out", &held_out);

    let shown: Vec<&Example> = part(&[Part::Commit, Part::Issue]);
    println!("misses (want ≠ got), commit subjects and tuning issue titles:\n{}", misses(&shown).join("\n"));
    if std::env::var_os("TYPES_SHOW_HELDOUT").is_some() {
        println!("held-out misses:\n{}", misses(&held_out).join("\n"));
    }
    let accuracy = right as f64 / total as f64;
    assert!(accuracy >= MIN_ACCURACY, "accuracy {accuracy:.3} is below {MIN_ACCURACY}");
}
