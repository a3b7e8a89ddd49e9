//! Task type classification measured on real task descriptions: commit subjects and issue titles
//! of public repositories, labelled by hand with the type a person gives them
//! (`tests/data/task-types.tsv`, each line naming its source, the header saying how the set was
//! sampled and labelled). Run with `--nocapture` to see the report:
//! `cargo test --test types -- --nocapture`.
//!
//! Every third issue title is held out: the rules are tuned on the rest, and the held-out part's
//! misses are printed only with `TYPES_SHOW_HELDOUT=1`. That part was looked at while tuning all
//! the same, so a first blind set (`tests/data/task-types-blind.tsv`) was labelled and committed
//! before the classifier first ran on it. After its one blind run it became tuning data (round 3:
//! its misses are printed like the tuning parts'), and a second blind set
//! (`tests/data/task-types-blind2.tsv`, sources in none of the other sets) was labelled and
//! committed before the round-3 classifier ran on it, measured blind once and tuned on in round 4
//! (`accuracy_on_the_second_blind_set`). A third blind set (`tests/data/task-types-blind3.tsv`,
//! sources in none of the others) was labelled and committed before the round-4 classifier ran on
//! it; its test, `accuracy_on_the_third_blind_set`, was not run while tuning round 4, and it is
//! tuning data since round 5 (its misses are printed with the others'). A fourth blind set
//! (`tests/data/task-types-blind4.tsv`) was labelled and committed before the round-6 classifier
//! ran on it (`accuracy_on_the_fourth_blind_set`, tuning data since its one run), and a second
//! annotator's labels of the third and fourth sets say how far the labels themselves agree
//! (`a_second_annotator_agrees`). A fifth blind set (`tests/data/task-types-blind5.tsv`) was
//! labelled and committed before the round-7 classifier ran on it
//! (`accuracy_on_the_fifth_blind_set`, run once at the end of round 7), and a sixth
//! (`tests/data/task-types-blind6.tsv`) before the round-8 classifier ran on it
//! (`accuracy_on_the_sixth_blind_set`, run once at the end of round 8).
//!
//! Since round 9 every set here is also what the learned combination (`src/prompt/combine.rs`)
//! was fitted to, with two sets labelled for that alone (`tests/data/task-types-fit-*.tsv`), so
//! the figures printed here are on fitted data: regression guards, not estimates. The estimate is
//! each set left out of the fit in turn (`benches/types/combine.py --cross`, docs/accuracy.md), and
//! the blind sets' one runs: the seventh (`tests/data/task-types-blind7.tsv`) ran once on round
//! 9's first fit (`accuracy_on_the_seventh_blind_set`) and has been fitted on since; the eighth
//! (`tests/data/task-types-blind8.tsv`) once on its final fit (`accuracy_on_the_eighth_blind_set`),
//! and is tuning data since; the ninth once in round 10 and the tenth once in round 11 (on the
//! first table with word vectors), the eleventh once in round 12 and the twelfth once in round 13.
//! Since round 12 every set up to the tenth is fitted on. The thirteenth
//! (`tests/data/task-types-blind13.tsv`) ran once in round 15, on a table frozen before it (not
//! shipped) and on the shipped one. The fourteenth (`-blind14.tsv`) and the second set of tasks
//! with a body (`tests/data/task-types-bodies2.tsv`, round 15) are read by no test: the next
//! round's measures.

use git_parallel::prompt::classify::{classify, classify_rules, classify_with_basis};
use git_parallel::prompt::TaskType;
use std::collections::BTreeMap;

/// The floor below which the classifier has regressed (measured 0.895 on the whole set with
/// the model: see docs/accuracy.md).
const MIN_ACCURACY: f64 = 0.89;

/// Floor for the first blind set, now tuning data (measured 0.878 in round 3; 0.805 in its blind
/// run).
const MIN_SEEN_BLIND_ACCURACY: f64 = 0.87;

/// Floors for the second blind set, tuning data since round 4 (measured 0.771 on all of it, 0.785
/// on its commit subjects, 0.761 on its issue titles in round 4; 0.751, 0.785 and 0.725 in its
/// blind run: see docs/accuracy.md): regression guards under the measured values, not goals.
const MIN_BLIND2_ACCURACY: f64 = 0.76;
const MIN_BLIND2_COMMIT_ACCURACY: f64 = 0.775;
const MIN_BLIND2_ISSUE_ACCURACY: f64 = 0.75;

/// Floors for the third blind set, set after its one blind run (0.745 on all of it, 0.800 on its
/// commit subjects, 0.704 on its issue titles: see docs/accuracy.md), tuning data since round 5
/// (which changed no classifier): regression guards under the measured values, not goals.
const MIN_BLIND3_ACCURACY: f64 = 0.735;
const MIN_BLIND3_COMMIT_ACCURACY: f64 = 0.79;
const MIN_BLIND3_ISSUE_ACCURACY: f64 = 0.695;
/// Floors for the fourth blind set, set after its one blind run (0.672 on all of it, 0.695 on its
/// commit subjects, 0.655 on its issue titles, round 6: see docs/accuracy.md): regression guards
/// under the measured values, not goals.
const MIN_BLIND4_ACCURACY: f64 = 0.66;
const MIN_BLIND4_COMMIT_ACCURACY: f64 = 0.685;
const MIN_BLIND4_ISSUE_ACCURACY: f64 = 0.645;
/// Floors for the fifth blind set, set after its one blind run (0.776 on all of it, 0.802 on its
/// commit subjects, 0.755 on its issue titles, round 7: see docs/accuracy.md): regression guards
/// under the measured values, not goals.
const MIN_BLIND5_ACCURACY: f64 = 0.765;
const MIN_BLIND5_COMMIT_ACCURACY: f64 = 0.79;
const MIN_BLIND5_ISSUE_ACCURACY: f64 = 0.745;
/// Floors for the sixth blind set, set after its one blind run (0.782 on all of it, 0.839 on its
/// commit subjects, 0.733 on its issue titles, round 8: see docs/accuracy.md): regression guards
/// under the measured values, not goals.
const MIN_BLIND6_ACCURACY: f64 = 0.77;
const MIN_BLIND6_COMMIT_ACCURACY: f64 = 0.83;
const MIN_BLIND6_ISSUE_ACCURACY: f64 = 0.72;

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

/// A blind set (`tests/data/task-types-blind*.tsv`): labelled and committed before the classifier
/// first ran on it.
fn blind(text: &str) -> Vec<Example> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.splitn(3, '\t');
            let (kind, source, subject) = (cols.next().unwrap(), cols.next().unwrap(), cols.next().unwrap());
            let want = TaskType::parse(kind).unwrap_or_else(|| panic!("bad type in line {l:?}"));
            assert!(source.contains(['#', '@']), "source is neither a commit nor an issue: {l:?}");
            Example { want, source: source.to_string(), text: subject.to_string(), part: Part::HeldOut }
        })
        .collect()
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

/// Accuracy of one part by the rules alone (before) and by rules and model (after): prints the
/// totals and, for after, per type; returns after's (right, total).
fn report(name: &str, set: &[&Example]) -> (usize, usize) {
    let mut per_type: BTreeMap<TaskType, (usize, usize)> = BTreeMap::new();
    let (mut right, mut before) = (0, 0);
    for e in set {
        let entry = per_type.entry(e.want).or_default();
        entry.1 += 1;
        if classify(&e.text, "") == e.want {
            right += 1;
            entry.0 += 1;
        }
        before += usize::from(classify_rules(&e.text, "") == e.want);
    }
    let share = |n: usize| if set.is_empty() { 0.0 } else { n as f64 / set.len() as f64 };
    println!(
        "{name}: {right}/{} correct, accuracy {:.3} (rules alone: {before}/{}, {:.3})",
        set.len(),
        share(right),
        set.len(),
        share(before)
    );
    let line: Vec<String> = per_type.iter().map(|(t, (r, n))| format!("{t} {r}/{n}")).collect();
    println!("    {}", line.join(", "));
    (right, set.len())
}

/// A markdown confusion table of a part: rows the label, columns what `classify` says.
fn confusion(name: &str, set: &[&Example]) {
    let types: Vec<TaskType> =
        git_parallel::prompt::classify::PRECEDENCE.into_iter().chain([TaskType::Other]).collect();
    let mut n: BTreeMap<(TaskType, TaskType), usize> = BTreeMap::new();
    for e in set {
        *n.entry((e.want, classify(&e.text, ""))).or_default() += 1;
    }
    println!("confusion, {name} (rows: label, columns: classified as):");
    let head: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
    println!("| label | {} |", head.join(" | "));
    println!("| --- |{}", " ---: |".repeat(types.len()));
    for &want in &types {
        let row: Vec<String> = types.iter().map(|got| n.get(&(want, *got)).copied().unwrap_or(0).to_string()).collect();
        println!("| {want} | {} |", row.join(" | "));
    }
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

    confusion("whole set", &all);
    confusion("issue titles, held out", &held_out);

    // The first blind set, seen since round 3: tuning data, its misses printed with the others'.
    let seen_blind = blind(include_str!("data/task-types-blind.tsv"));
    let seen_all: Vec<&Example> = seen_blind.iter().collect();
    let seen_commits: Vec<&Example> = seen_blind.iter().filter(|e| e.source.contains('@')).collect();
    let seen_issues: Vec<&Example> = seen_blind.iter().filter(|e| e.source.contains('#')).collect();
    assert!(seen_blind.len() >= 300, "the first blind set has {} entries", seen_blind.len());
    let (seen_right, seen_total) = report("first blind set (seen since round 3)", &seen_all);
    report("first blind set, commit subjects", &seen_commits);
    report("first blind set, issue titles", &seen_issues);
    confusion("first blind set", &seen_all);
    // The conventional-commit corpus's held-out tenth (benches/types/gather.py --held-out FILE),
    // when there is one: its labels are the commits' own prefixes, stripped from the text.
    if let Some(path) = std::env::var_os("TYPES_CORPUS") {
        let text = std::fs::read_to_string(path).expect("TYPES_CORPUS names a readable file");
        let corpus: Vec<Example> = text
            .lines()
            .filter_map(|l| {
                let mut cols = l.splitn(3, '\t');
                let (kind, source, subject) = (cols.next()?, cols.next()?, cols.next()?);
                Some(Example {
                    want: TaskType::parse(kind)?,
                    source: source.to_string(),
                    text: subject.to_string(),
                    part: Part::Commit,
                })
            })
            .collect();
        let corpus: Vec<&Example> = corpus.iter().collect();
        report("conventional-commit corpus, held out", &corpus);
        confusion("conventional-commit corpus, held out", &corpus);
    }

    let shown: Vec<&Example> = part(&[Part::Commit, Part::Issue]);
    println!("misses (want ≠ got), commit subjects and tuning issue titles:\n{}", misses(&shown).join("\n"));
    println!("misses, first blind set:\n{}", misses(&seen_all).join("\n"));
    if std::env::var_os("TYPES_SHOW_HELDOUT").is_some() {
        println!("held-out misses:\n{}", misses(&held_out).join("\n"));
    }
    let accuracy = right as f64 / total as f64;
    assert!(accuracy >= MIN_ACCURACY, "accuracy {accuracy:.3} is below {MIN_ACCURACY}");
    let seen_accuracy = seen_right as f64 / seen_total as f64;
    assert!(
        seen_accuracy >= MIN_SEEN_BLIND_ACCURACY,
        "first blind set accuracy {seen_accuracy:.3} is below {MIN_SEEN_BLIND_ACCURACY}"
    );
}

/// A blind set's report (whole, commit subjects, issue titles, per type, confusion tables; its
/// misses), and its floors checked.
fn blind_set(name: &str, text: &str, floors: [f64; 3]) {
    let set = blind(text);
    let all: Vec<&Example> = set.iter().collect();
    let commits: Vec<&Example> = set.iter().filter(|e| e.source.contains('@')).collect();
    let issues: Vec<&Example> = set.iter().filter(|e| e.source.contains('#')).collect();
    assert!(set.len() >= 200, "the {name} has {} entries", set.len());
    let (right, total) = report(name, &all);
    let (commit_right, commit_total) = report(&format!("{name}, commit subjects"), &commits);
    let (issue_right, issue_total) = report(&format!("{name}, issue titles"), &issues);
    confusion(name, &all);
    confusion(&format!("{name}, commit subjects"), &commits);
    confusion(&format!("{name}, issue titles"), &issues);
    println!("{name} misses:\n{}", misses(&all).join("\n"));
    by_basis(name, &all);
    for (part, right, total, floor) in [
        ("whole", right, total, floors[0]),
        ("commit subjects", commit_right, commit_total, floors[1]),
        ("issue titles", issue_right, issue_total, floors[2]),
    ] {
        let accuracy = right as f64 / total as f64;
        assert!(accuracy >= floor, "{name}, {part}: accuracy {accuracy:.3} is below {floor}");
    }
}

/// How often each basis `plan --json` reports (`type_basis`) was right: what a user can read into
/// a type shown as `feature?` (the rules did not choose it) against one the rules chose.
fn by_basis(name: &str, set: &[&Example]) {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for e in set {
        let (got, basis) = classify_with_basis(&e.text, "");
        let entry = counts.entry(format!("{basis:?}")).or_default();
        entry.0 += usize::from(got == e.want);
        entry.1 += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(b, (r, n))| format!("{b} {r}/{n}")).collect();
    println!("{name}, right by basis: {}", parts.join(", "));
}

/// The second blind set (`tests/data/task-types-blind2.tsv`): labelled and committed before the
/// round-3 classifier first ran on it, measured blind once, and tuning data since round 4 (its
/// misses are printed with the tuning parts').
#[test]
fn accuracy_on_the_second_blind_set() {
    let floors = [MIN_BLIND2_ACCURACY, MIN_BLIND2_COMMIT_ACCURACY, MIN_BLIND2_ISSUE_ACCURACY];
    blind_set("second blind set", include_str!("data/task-types-blind2.tsv"), floors);
}

/// The third blind set (`tests/data/task-types-blind3.tsv`): labelled and committed before the
/// round-4 classifier first ran on it, measured blind once at the end of round 4, and tuning data
/// since round 5 (its misses are printed with the tuning parts').
#[test]
fn accuracy_on_the_third_blind_set() {
    let floors = [MIN_BLIND3_ACCURACY, MIN_BLIND3_COMMIT_ACCURACY, MIN_BLIND3_ISSUE_ACCURACY];
    blind_set("third blind set", include_str!("data/task-types-blind3.tsv"), floors);
}

/// The fourth blind set (`tests/data/task-types-blind4.tsv`): labelled and committed before the
/// round-6 classifier first ran on it, measured blind once at the end of round 6, and tuning data
/// since (its misses are printed with the others'; the fifth blind set is the unseen one).
#[test]
fn accuracy_on_the_fourth_blind_set() {
    let floors = [MIN_BLIND4_ACCURACY, MIN_BLIND4_COMMIT_ACCURACY, MIN_BLIND4_ISSUE_ACCURACY];
    blind_set("fourth blind set", include_str!("data/task-types-blind4.tsv"), floors);
}

/// The fifth blind set (`tests/data/task-types-blind5.tsv`): labelled and committed before the
/// round-7 classifier first ran on it, and measured blind once at the end of round 7.
#[test]
fn accuracy_on_the_fifth_blind_set() {
    let floors = [MIN_BLIND5_ACCURACY, MIN_BLIND5_COMMIT_ACCURACY, MIN_BLIND5_ISSUE_ACCURACY];
    blind_set("fifth blind set", include_str!("data/task-types-blind5.tsv"), floors);
}

/// The sixth blind set (`tests/data/task-types-blind6.tsv`): labelled and committed before the
/// round-8 classifier first ran on it, and measured blind once at the end of round 8.
#[test]
fn accuracy_on_the_sixth_blind_set() {
    let floors = [MIN_BLIND6_ACCURACY, MIN_BLIND6_COMMIT_ACCURACY, MIN_BLIND6_ISSUE_ACCURACY];
    blind_set("sixth blind set", include_str!("data/task-types-blind6.tsv"), floors);
}

/// The seventh blind set (`tests/data/task-types-blind7.tsv`): labelled and committed before the
/// round-9 classifier first ran on it, measured blind once on round 9's first fit, and fitted on
/// since.
#[test]
fn accuracy_on_the_seventh_blind_set() {
    let floors = [MIN_BLIND7_ACCURACY, MIN_BLIND7_COMMIT_ACCURACY, MIN_BLIND7_ISSUE_ACCURACY];
    blind_set("seventh blind set", include_str!("data/task-types-blind7.tsv"), floors);
}

/// The eighth blind set (`tests/data/task-types-blind8.tsv`): labelled and committed before the
/// round-9 classifier's final fit ran on it, and measured blind once on it (c9ac781).
#[test]
fn accuracy_on_the_eighth_blind_set() {
    let floors = [MIN_BLIND8_ACCURACY, MIN_BLIND8_COMMIT_ACCURACY, MIN_BLIND8_ISSUE_ACCURACY];
    blind_set("eighth blind set", include_str!("data/task-types-blind8.tsv"), floors);
}

/// The ninth blind set (`tests/data/task-types-blind9.tsv`): labelled and committed alone
/// (ced470f) before any classifier ran on it, and measured once in round 10, on round 9's table
/// (shipped) and on round 10's refit (frozen in 5a235a2, not kept).
#[test]
fn accuracy_on_the_ninth_blind_set() {
    let floors = [MIN_BLIND9_ACCURACY, MIN_BLIND9_COMMIT_ACCURACY, MIN_BLIND9_ISSUE_ACCURACY];
    blind_set("ninth blind set", include_str!("data/task-types-blind9.tsv"), floors);
}

/// The tenth blind set (`tests/data/task-types-blind10.tsv`): labelled and committed alone
/// (859e02a) before any classifier ran on it, and measured once in round 11, on round 11's table
/// (frozen in a71cb60) and on round 9's (the table shipped before it).
#[test]
fn accuracy_on_the_tenth_blind_set() {
    let floors = [MIN_BLIND10_ACCURACY, MIN_BLIND10_COMMIT_ACCURACY, MIN_BLIND10_ISSUE_ACCURACY];
    blind_set("tenth blind set", include_str!("data/task-types-blind10.tsv"), floors);
}

/// Floors for the tenth blind set, set after its one blind run (round 11's table: 0.785 on all of
/// it, 0.793 on its commit subjects, 0.778 on its issue titles; round 9's 0.776, 0.775 and 0.778;
/// docs/accuracy.md): regression guards under the measured values, not goals.
const MIN_BLIND10_ACCURACY: f64 = 0.775;
const MIN_BLIND10_COMMIT_ACCURACY: f64 = 0.785;
const MIN_BLIND10_ISSUE_ACCURACY: f64 = 0.77;

/// Floors for the ninth blind set, set after its one blind run (round 9's table: 0.817 on all of
/// it, 0.802 on its commit subjects, 0.827 on its issue titles; round 10's refit 0.790, 0.758 and
/// 0.812; round 8's classifier 0.786, 0.780 and 0.789; docs/accuracy.md): regression guards under
/// the measured values, not goals.
const MIN_BLIND9_ACCURACY: f64 = 0.81;
const MIN_BLIND9_COMMIT_ACCURACY: f64 = 0.79;
const MIN_BLIND9_ISSUE_ACCURACY: f64 = 0.82;

/// Floors for the eighth blind set, set after its one blind run (round 9's final fit: 0.812 on all
/// of it, 0.761 on its commit subjects, 0.845 on its issue titles; round 8's classifier 0.765,
/// 0.761 and 0.768, as benches/types/compare.py decides it: see docs/accuracy.md): regression
/// guards under the measured values, not goals.
const MIN_BLIND8_ACCURACY: f64 = 0.8;
const MIN_BLIND8_COMMIT_ACCURACY: f64 = 0.75;
const MIN_BLIND8_ISSUE_ACCURACY: f64 = 0.835;

/// The eleventh blind set (`tests/data/task-types-blind11.tsv`): labelled and committed alone
/// (8a3a656) before any classifier ran on it, and measured once in round 12, on round 12's table
/// and on round 11's (the table shipped before it).
#[test]
fn accuracy_on_the_eleventh_blind_set() {
    let floors = [MIN_BLIND11_ACCURACY, MIN_BLIND11_COMMIT_ACCURACY, MIN_BLIND11_ISSUE_ACCURACY];
    blind_set("eleventh blind set", include_str!("data/task-types-blind11.tsv"), floors);
}

/// Floors for the eleventh blind set, set after its one blind run (round 12's table: 0.768 on all
/// of it, 0.819 on its commit subjects, 0.731 on its issue titles; round 11's 0.776, 0.819 and
/// 0.745; docs/accuracy.md): regression guards under the measured values, not goals.
const MIN_BLIND11_ACCURACY: f64 = 0.76;
const MIN_BLIND11_COMMIT_ACCURACY: f64 = 0.81;
const MIN_BLIND11_ISSUE_ACCURACY: f64 = 0.725;

/// The twelfth blind set (`tests/data/task-types-blind12.tsv`): labelled and committed alone
/// (0aef2c2) before any classifier ran on it, and measured once in round 13, on round 12's table
/// as shipped (round 13 shipped no change to it).
#[test]
fn accuracy_on_the_twelfth_blind_set() {
    let floors = [MIN_BLIND12_ACCURACY, MIN_BLIND12_COMMIT_ACCURACY, MIN_BLIND12_ISSUE_ACCURACY];
    blind_set("twelfth blind set", include_str!("data/task-types-blind12.tsv"), floors);
}

/// Floors for the twelfth blind set, set after its one blind run (round 12's table: 0.718 on all of
/// it, 0.725 on its commit subjects, 0.713 on its issue titles; docs/accuracy.md): regression
/// guards under the measured values, not goals.
const MIN_BLIND12_ACCURACY: f64 = 0.71;
const MIN_BLIND12_COMMIT_ACCURACY: f64 = 0.72;
const MIN_BLIND12_ISSUE_ACCURACY: f64 = 0.705;

/// The thirteenth blind set (`tests/data/task-types-blind13.tsv`): labelled and committed alone
/// (5aa9346) before any classifier ran on it, and measured once in round 15, on round 15's table
/// (the student of a fine-tuned model, frozen in 96acb12; not shipped, as it reads tasks with a
/// body worse) and on round 12's (shipped).
#[test]
fn accuracy_on_the_thirteenth_blind_set() {
    let floors = [MIN_BLIND13_ACCURACY, MIN_BLIND13_COMMIT_ACCURACY, MIN_BLIND13_ISSUE_ACCURACY];
    blind_set("thirteenth blind set", include_str!("data/task-types-blind13.tsv"), floors);
}

/// Floors for the thirteenth blind set, set after its one blind run (round 12's table, shipped:
/// 0.774 on all of it, 0.787 on its commit subjects, 0.765 on its issue titles; round 15's
/// student 0.810, 0.820 and 0.803; docs/accuracy.md): regression guards under the shipped
/// table's values, not goals.
const MIN_BLIND13_ACCURACY: f64 = 0.77;
const MIN_BLIND13_COMMIT_ACCURACY: f64 = 0.78;
const MIN_BLIND13_ISSUE_ACCURACY: f64 = 0.76;

/// Floors for the seventh blind set, set after its one blind run (round 9: 0.735 on all of it,
/// 0.755 on its commit subjects, 0.718 on its issue titles; round 8's classifier 0.697, 0.723
/// and 0.675, as benches/types/compare.py decides it: see
/// docs/accuracy.md): regression guards under the measured values, not goals.
const MIN_BLIND7_ACCURACY: f64 = 0.725;
const MIN_BLIND7_COMMIT_ACCURACY: f64 = 0.745;
const MIN_BLIND7_ISSUE_ACCURACY: f64 = 0.71;

/// Floors for the sets labelled to fit the learned combination: round 9's three (0.855, 0.861 and
/// 0.869 fitted) and round 10's three, which measured round 9's table on unseen text (0.773, 0.752
/// and 0.719) and are fitted on since round 11 (docs/accuracy.md). Regression guards under the
/// measured values, not goals.
const MIN_FIT_COMMIT_ACCURACY: f64 = 0.83;
const MIN_FIT_ISSUE_ACCURACY: f64 = 0.845;
const MIN_FIT_COMMIT2_ACCURACY: f64 = 0.765;
const MIN_FIT_COMMIT3_ACCURACY: f64 = 0.745;
const MIN_FIT_ISSUE3_ACCURACY: f64 = 0.71;

/// The sets labelled to fit the learned combination (`tests/data/task-types-fit-*.tsv`): 255,
/// 384 and 367 commit subjects of 8, 12 and 12 repositories, and 252, 267 and 299 titles of 32,
/// 38 and 42 searches.
#[test]
fn accuracy_on_the_sets_labelled_for_fitting() {
    for (name, text, floor) in [
        ("fitting set, commit subjects", include_str!("data/task-types-fit-commits.tsv"), MIN_FIT_COMMIT_ACCURACY),
        (
            "second fitting set, commit subjects",
            include_str!("data/task-types-fit-commits2.tsv"),
            MIN_FIT_COMMIT2_ACCURACY,
        ),
        (
            "third fitting set, commit subjects",
            include_str!("data/task-types-fit-commits3.tsv"),
            MIN_FIT_COMMIT3_ACCURACY,
        ),
        ("fitting set, issue titles", include_str!("data/task-types-fit-issues.tsv"), MIN_FIT_ISSUE_ACCURACY),
        ("second fitting set, issue titles", include_str!("data/task-types-fit-issues2.tsv"), MIN_FIT_ISSUE_ACCURACY),
        ("third fitting set, issue titles", include_str!("data/task-types-fit-issues3.tsv"), MIN_FIT_ISSUE3_ACCURACY),
    ] {
        let set = blind(text);
        assert!(set.len() >= 250, "the {name} has {} entries", set.len());
        let all: Vec<&Example> = set.iter().collect();
        let (right, total) = report(name, &all);
        confusion(name, &all);
        println!("{name} misses:\n{}", misses(&all).join("\n"));
        let accuracy = right as f64 / total as f64;
        assert!(accuracy >= floor, "{name}: accuracy {accuracy:.3} is below {floor}");
    }
}

/// Floor for issues with their bodies (`tests/data/task-types-bodies.tsv`): 0.675 with the body in
/// round 9, 0.739 (116) since round 12's table. Raised under that in round 15, whose student of a
/// fine-tuned model read titles better and these worse (107, 0.682; docs/accuracy.md): a table
/// that reads bodies worse must say so here. A regression guard, not a goal.
const MIN_BODIES_ACCURACY: f64 = 0.73;

/// Real issues with the opening text of their first post, labelled for the task title and body
/// describe together: every other set is titles only, and prompts have bodies. Prints each way of
/// reading them (title and body, title alone; with the rules alone) and the misses.
#[test]
fn accuracy_on_tasks_with_a_body() {
    let set = body_set(include_str!("data/task-types-bodies.tsv"));
    assert!(set.len() >= 150, "the set has {} entries", set.len());
    let with_body = body_report("tasks with a body", &set);
    let accuracy = with_body as f64 / set.len() as f64;
    assert!(accuracy >= MIN_BODIES_ACCURACY, "accuracy {accuracy:.3} is below {MIN_BODIES_ACCURACY}");
}

/// The labelled commit subjects with their commit's body, as `benches/types/bodies.py` writes them
/// (four columns, as `task-types-bodies.tsv`): how much a commit body tells the shipped classifier,
/// the data a fit that weighs bodies would learn from (docs/accuracy.md, round 15). Reads
/// TYPES_BODIES; without it, nothing.
#[test]
#[ignore]
fn accuracy_on_commits_with_a_body() {
    let Some(path) = std::env::var_os("TYPES_BODIES") else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    body_report("commits with a body", &body_set(&text));
}

/// A set of four columns: the type, the source, the title, the body.
fn body_set(text: &str) -> Vec<(&str, &str, &str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            assert_eq!(f.len(), 4, "a line of four fields: {l}");
            (f[0], f[1], f[2], f[3])
        })
        .collect()
}

/// Prints how many of a set each way of reading it gets right, and the misses; returns how many
/// reading title and body does.
fn body_report(name: &str, set: &[(&str, &str, &str, &str)]) -> usize {
    let score = |f: &dyn Fn(&str, &str) -> TaskType| {
        set.iter().filter(|(want, _, title, body)| f(title, body).as_str() == *want).count()
    };
    let with_body = score(&|t, b| classify(t, b));
    for (way, right) in [
        ("title and body", with_body),
        ("title alone", score(&|t, _| classify(t, ""))),
        ("rules alone, title and body", score(&|t, b| classify_rules(t, b))),
        ("rules alone, title alone", score(&|t, _| classify_rules(t, ""))),
    ] {
        println!("{name}, {way}: {right}/{} ({:.3})", set.len(), right as f64 / set.len() as f64);
    }
    for (want, source, title, body) in set {
        let got = classify(title, body);
        if got.as_str() != *want {
            println!("  want {want}, got {got} (title alone: {}): {source} {title}", classify(title, ""));
        }
    }
    with_body
}

/// A second annotator's labels of the third and fourth blind sets, line for line: how far two
/// readers of the written labelling rules agree, the ceiling the classifier's goals sit under
/// (docs/accuracy.md, round 6).
#[test]
fn a_second_annotator_agrees() {
    for (name, first, second) in [
        ("third", include_str!("data/task-types-blind3.tsv"), include_str!("data/task-types-blind3-second.tsv")),
        ("fourth", include_str!("data/task-types-blind4.tsv"), include_str!("data/task-types-blind4-second.tsv")),
    ] {
        let (first, second) = (blind(first), blind(second));
        assert_eq!(first.len(), second.len(), "the {name} set and its second labels differ in length");
        for part in ['@', '#'] {
            let pairs: Vec<(&Example, &Example)> =
                first.iter().zip(&second).filter(|(a, _)| a.source.contains(part)).collect();
            for (a, b) in &pairs {
                assert_eq!(
                    (&a.source, &a.text),
                    (&b.source, &b.text),
                    "the {name} set's second labels are out of step"
                );
            }
            let what = if part == '@' { "commit subjects" } else { "issue titles" };
            // Measured 0.952 to 0.993: labels that follow their rules, not a goal.
            agreement(&format!("the {name} blind set's {what}"), &pairs, 0.9);
        }
    }
}

/// How often the first and second labels of `pairs` agree, printed, and checked against `floor`.
fn agreement(what: &str, pairs: &[(&Example, &Example)], floor: f64) {
    let agree = pairs.iter().filter(|(a, b)| a.want == b.want).count();
    let share = agree as f64 / pairs.len() as f64;
    println!("{what}: a second annotator agrees on {agree}/{}, {share:.3}", pairs.len());
    assert!(share >= floor, "{what}: the annotators agree on only {share:.3}");
}

/// A second annotator's labels of 180 texts drawn from round 10's three labelled sets, compared
/// with the first labels by source (docs/accuracy.md, round 10).
#[test]
fn a_second_annotator_agrees_on_round_10s_sets() {
    let first: Vec<Example> = [
        include_str!("data/task-types-fit-commits2.tsv"),
        include_str!("data/task-types-fit-commits3.tsv"),
        include_str!("data/task-types-fit-issues3.tsv"),
    ]
    .into_iter()
    .flat_map(blind)
    .collect();
    let second = blind(include_str!("data/task-types-round10-second.tsv"));
    assert_eq!(second.len(), 180, "the second labels have {} lines", second.len());
    for (part, what, floor) in [('@', "commit subjects", 0.95), ('#', "issue titles", 0.85)] {
        let pairs: Vec<(&Example, &Example)> = second
            .iter()
            .filter(|b| b.source.contains(part))
            .map(|b| {
                let a = first.iter().find(|a| a.source == b.source).expect("a second label of a first-labelled text");
                assert_eq!(a.text, b.text, "the second label of {} is of another text", b.source);
                (a, b)
            })
            .collect();
        // Measured 0.983 and 0.867: labels that follow their rules, not a goal.
        agreement(&format!("round 10's sets' {what}"), &pairs, floor);
    }
}

/// The rule scores of every text in the file `TYPES_DUMP` names (lines: type, source, text, as in
/// the labelled set), written beside it as `<file>.scores` (one line per text: what the rules
/// decide, `-` where the model decides, the scores in `PRECEDENCE` order, then the model's
/// probabilities in that order). benches/types/gather.py reads them to choose how rules and model combine:
/// `TYPES_DUMP=/tmp/corpus.tsv cargo test --test types dump_rule_scores -- --ignored`.
#[test]
#[ignore]
fn dump_rule_scores() {
    use git_parallel::prompt::classify::{model_probabilities, rules_decision, scores, PRECEDENCE};
    use std::io::Write;
    let Some(path) = std::env::var_os("TYPES_DUMP") else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(format!("{}.scores", path.to_string_lossy())).unwrap());
    for line in text.lines() {
        let subject = line.splitn(3, '\t').nth(2).unwrap_or("");
        let s = scores(subject, "");
        let row: Vec<String> =
            PRECEDENCE.iter().map(|t| s.iter().find(|(u, _)| u == t).map_or(0, |(_, n)| *n).to_string()).collect();
        let p: Vec<String> = model_probabilities(subject).iter().map(|p| format!("{p:.4}")).collect();
        let decided = rules_decision(subject, "").map_or("-", |t| t.as_str());
        writeln!(out, "{decided} {} {}", row.join(" "), p.join(" ")).unwrap();
    }
}

/// What the learned combination weighs for each text, for benches/types/combine.py to fit its
/// table: `FILE.features` beside FILE (lines type<TAB>source<TAB>text), one line per text: the
/// type settled before the combination is asked (`-` where it is asked), the dense features, the
/// title's words and its first word. `TYPES_DUMP=FILE cargo test --test types dump_combination_features -- --ignored`.
#[test]
#[ignore]
fn dump_combination_features() {
    use git_parallel::prompt::classify::read;
    use git_parallel::prompt::combine::evidence;
    use std::io::Write;
    let Some(path) = std::env::var_os("TYPES_DUMP") else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(format!("{}.features", path.to_string_lossy())).unwrap());
    for line in text.lines() {
        let subject = line.splitn(3, '\t').nth(2).unwrap_or("");
        let reading = read(subject, "");
        let settled = reading.settled().map_or("-", |(t, _)| t.as_str());
        let e = evidence(&reading);
        let dense: Vec<String> = e.dense.iter().map(|x| format!("{x:.4}")).collect();
        let first = e.first.unwrap_or_default();
        writeln!(out, "{settled}\t{}\t{}\t{first}", dense.join(" "), e.words.join(" ")).unwrap();
    }
}

/// Round 8: words the corpus's features lack get a row from their nearest known words in vectors
/// learned from the repositories' commit messages, so a symptom no commit subject names still
/// leans the way its neighbours do.
#[test]
fn words_the_vectors_place() {
    use git_parallel::prompt::classify::{model_probabilities, PRECEDENCE};
    use TaskType::*;
    let model_type = |title: &str| {
        let p = model_probabilities(title);
        PRECEDENCE[(0..7).fold(0, |b, i| if p[i] > p[b] { i } else { b })]
    };
    // The model's own pick; the combination weighs it with the title's words ("game" leans to
    // feature in the hand-labelled titles), so "Game freezes" is a feature since round 9: a miss.
    assert_eq!(model_type("Game freezes"), BugFix);
    assert_eq!(model_type("csvsql Killed"), BugFix);
    assert_eq!(classify("csvsql Killed", ""), BugFix);
    // No word of any kind: still nothing.
    assert_eq!(classify("Zyxw qwfp", ""), Other);
}

/// The rule words of round 7: slowness as users report it, build tools by name, structure as
/// issue titles name it. Chosen knowing the tuning sets' misses; the fifth blind set measured them.
/// Round 11: the title's mean word vector, each word's from a sentence-embedding model, carries
/// meaning no rule word and no commit subject taught: a word the hand-labelled titles never had
/// leans the way the words it means the same as do.
#[test]
fn words_the_sentence_vectors_place() {
    use TaskType::*;
    for (title, want) in VECTOR_TITLES {
        assert_eq!(classify(title, ""), *want, "{title}");
    }
    // A prefix still settles the type, and a title without a word still says nothing.
    assert_eq!(classify("docs: unsubscribe link in the newsletter", ""), Documentation);
    assert_eq!(classify("", ""), Other);
    assert_eq!(classify("0 1 2", ""), Other);
}

/// Titles written for this test, none in a labelled set: round 9's table read each of them wrong
/// (documentation, bug-fix, feature, configuration, documentation). Still misses with the vectors:
/// "Add unsubscribe link to the newsletter" (documentation), "Intermittent frame drops in the
/// editor" (bug-fix), "Start-up time of the desktop app" (feature).
const VECTOR_TITLES: &[(&str, TaskType)] = &[
    ("Create a password reset link", TaskType::Feature),
    ("Improve the exception message", TaskType::Feature),
    ("Sort imports", TaskType::Refactor),
    ("Compiled executable is huge", TaskType::Performance),
    ("Add emoji reactions to comments", TaskType::Feature),
];

#[test]
fn words_of_round_seven() {
    use TaskType::*;
    assert_eq!(classify("[Bug] Stutters when scrolling through large list", ""), Performance);
    assert_eq!(classify("Import killed with OOM after 150GB", ""), Performance);
    assert_eq!(classify("Battery drain if app left open", ""), Performance);
    assert_eq!(classify("Low FPS in the editor", ""), Performance);
    assert_eq!(classify("Move the release to Gradle", ""), Configuration);
    assert_eq!(classify("cabal.project: drop an obsolete constraint", ""), Configuration);
    assert_eq!(classify("Replace global state with dependency injection", ""), Refactor);
    assert_eq!(classify("Break up the monolithic server module", ""), Refactor);
    // Not every battery, wheel or index is such work.
    assert_eq!(classify("Add a battery level indicator", ""), Feature);
    assert_eq!(classify("Mouse wheel scrolls the wrong way", ""), BugFix);
    assert_eq!(classify("Update all pypi.python.org URLs to pypi.org", ""), Documentation);
}

/// The rule words of round 3, from misses of the first blind set (seen since then).
#[test]
fn words_of_the_first_blind_sets_misses() {
    use TaskType::*;
    // A text about compiling is work on the build, whatever its problem words.
    assert_eq!(classify("Fix compilation with Clang on MacOS.", ""), Configuration);
    assert_eq!(classify("Compilation on macOS with Clang is failing", ""), Configuration);
    assert_eq!(classify("fixed compile error on mac", ""), Configuration);
    // Elsewhere those words are still a bug's.
    assert_eq!(classify("Fix crash when opening a file", ""), BugFix);
    // Lag is slowness.
    assert_eq!(classify("Landing page scroll lag", ""), Performance);
    assert_eq!(classify("Mobile: laggy scroll", ""), Performance);
    assert_eq!(classify("ui sluggish with large inputs", ""), Performance);
    // A submodule bump is configuration; a hyphenated reorganization a refactor.
    assert_eq!(classify("Updated haml submodule", ""), Configuration);
    assert_eq!(classify("Re-organizing lib directory", ""), Refactor);
    // Converting code from one form to another is a refactor.
    assert_eq!(classify("Convert React class components to React hooks", ""), Refactor);
    // Grammar and punctuation are the docs'.
    assert_eq!(classify("grammar: use; punctuation", ""), Documentation);
    // A cache is no performance word: seen texts with it were build or bug work.
    assert_eq!(classify("Disable Travis caching", ""), Configuration);
    assert_eq!(classify("Fix caching when reload and query change triggered by the same binding", ""), BugFix);
}
