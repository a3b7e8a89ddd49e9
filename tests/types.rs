//! Task type classification measured on real task descriptions: commit subjects of public
//! repositories, labelled by hand with the type a person gives them (`tests/data/task-types.tsv`,
//! each line naming its source commit). Run with `--nocapture` to see the report:
//! `cargo test --test types -- --nocapture`.

use git_parallel::prompt::classify::classify;
use git_parallel::prompt::TaskType;
use std::collections::BTreeMap;

/// The floor below which the classifier has regressed (measured: see the README).
const MIN_ACCURACY: f64 = 0.85;

fn labelled() -> Vec<(TaskType, String, String)> {
    let text = include_str!("data/task-types.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.splitn(3, '\t');
            let (kind, source, subject) = (cols.next().unwrap(), cols.next().unwrap(), cols.next().unwrap());
            let kind = TaskType::parse(kind).unwrap_or_else(|| panic!("bad type in line {l:?}"));
            (kind, source.to_string(), subject.to_string())
        })
        .collect()
}

#[test]
fn accuracy_on_real_task_descriptions() {
    let set = labelled();
    assert!(set.len() >= 150, "the labelled set has {} entries", set.len());
    let mut right = 0;
    let mut per_type: BTreeMap<TaskType, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (want, source, subject) in &set {
        let got = classify(subject, "");
        let e = per_type.entry(*want).or_default();
        e.1 += 1;
        if got == *want {
            right += 1;
            e.0 += 1;
        } else {
            misses.push(format!("  {want} ≠ {got}: {subject}  ({source})"));
        }
    }
    let accuracy = right as f64 / set.len() as f64;
    println!("task types: {right}/{} correct, accuracy {accuracy:.3}", set.len());
    for (t, (r, n)) in &per_type {
        println!("  {t:<14} {r:>3}/{n:<3}");
    }
    println!("misses (want ≠ got):\n{}", misses.join("\n"));
    assert!(accuracy >= MIN_ACCURACY, "accuracy {accuracy:.3} is below {MIN_ACCURACY}");
}
