//! The learned combination of the evidence about a task's type (round 9, docs/accuracy.md): the
//! rules' scores, the model's probabilities and the title's own words, weighed by a multinomial
//! logistic regression fitted to the hand-labelled sets (`types_combine.tsv`, written by
//! benches/types/combine.py). It replaced a hand-made order (the rules' best type, the model only
//! where they are silent or nearly tied): with each hand-labelled set left out of its fitting in
//! turn it is right on 2,375 of 2,881 texts against 2,286, and it gained on both blind sets.
//!
//! What it weighs is computed here and nowhere else: the dump that fits the table
//! (`tests/types.rs` `dump_combination_features`) and `classify` both call `evidence`.

use super::classify::{Reading, TaskType, PRECEDENCE};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The classes the combination chooses among: `PRECEDENCE`, then `other`.
const CLASSES: usize = 8;

/// How many dense (not word) features `evidence` gives, in the order of `dense_names`.
pub const DENSE: usize = 24;

/// A score above this says no more: a long body's keywords must not outweigh everything the
/// table learned from titles.
const SCORE_CAP: usize = 12;

/// What the combination weighs for one task.
pub struct Evidence {
    /// Per type (`PRECEDENCE` order): the rules' score (capped, in title words), whether it is
    /// the rules' best, the model's log-probability (0 where the model knows no word); then the
    /// rules silent, the model knowing a word, 1.
    pub dense: [f32; DENSE],
    /// The title's words as the model reads them, each once.
    pub words: Vec<String>,
    /// The title's first word as the model reads it (mostly the verb: "add", "fix", "crash").
    pub first: Option<String>,
}

/// The names of the dense features, as the table's rows call them.
pub fn dense_names() -> Vec<String> {
    let mut names = Vec::with_capacity(DENSE);
    for kind in ["SCORE", "BEST", "LOGP"] {
        names.extend(PRECEDENCE.iter().map(|t| format!("{kind} {t}")));
    }
    names.extend(["RULES-SILENT", "KNOWN", "BIAS"].map(String::from));
    names
}

/// The evidence about a task's type, from what the rules and the model read in it.
pub fn evidence(reading: &Reading) -> Evidence {
    let top = reading.scores.iter().map(|(_, s)| *s).max().unwrap_or(0);
    // Without a word it knows, the model's probabilities are its bias alone: not evidence.
    let p = reading.known.then(|| reading.probabilities());
    let mut dense = [0.0f32; DENSE];
    for (i, t) in PRECEDENCE.iter().enumerate() {
        let s = reading.scores.iter().find(|(u, _)| u == t).map_or(0, |(_, s)| *s);
        dense[i] = s.min(SCORE_CAP) as f32 / 3.0;
        dense[7 + i] = if s > 0 && s == top { 1.0 } else { 0.0 };
        dense[14 + i] = p.map_or(0.0, |p| p[i].max(1e-4).ln());
    }
    dense[21] = f32::from(u8::from(reading.decision.is_none()));
    dense[22] = f32::from(u8::from(reading.known));
    dense[23] = 1.0;
    let first = reading.words.first().cloned();
    let mut words = reading.words.clone();
    words.sort();
    words.dedup();
    Evidence { dense, words, first }
}

/// The fitted weights: a row of `CLASSES` per dense feature (`dense_names` order) and per word;
/// and per word of the vectors' vocabulary, its word vector times the vectors' weights (round 11:
/// a title's mean word vector, from a sentence-embedding model, is linear in its words, so the
/// vectors themselves need not ship), and the same for the vector of the title's first word
/// (round 12).
struct Table {
    dense: [[f32; CLASSES]; DENSE],
    words: HashMap<&'static str, [f32; CLASSES]>,
    /// The `v` rows as written (sorted by word), each parsed only when a title has its word:
    /// parsing all 8,805 up front cost 4.7 ms a plan, 14% of a small one.
    vectors: Vec<&'static str>,
    /// The `f` rows (the first word's vector times its weights), kept the same way.
    firsts: Vec<&'static str>,
    /// The `v` and `f` rows' scale (coarser than the other rows': they change no decision so).
    vector_scale: f32,
}

/// A row's numbers, as integers of 1/`scale`.
fn parse_row(values: &str, scale: f32) -> [f32; CLASSES] {
    let mut row = [0.0f32; CLASSES];
    for (w, v) in row.iter_mut().zip(values.split(' ')) {
        *w = v.parse::<f32>().expect("a number in the type combination's table") / scale;
    }
    row
}

/// The word of a `v` or `f` row (`v WORD<tab>numbers`).
fn vector_word(line: &str) -> &str {
    line[2..].split_once('\t').map_or("", |(w, _)| w)
}

impl Table {
    /// A word's row among `rows` (`vectors` or `firsts`), found by binary search.
    fn vector(&self, rows: &[&str], word: &str) -> Option<[f32; CLASSES]> {
        let i = rows.binary_search_by(|line| vector_word(line).cmp(word)).ok()?;
        let (_, values) = rows[i].split_once('\t')?;
        Some(parse_row(values, self.vector_scale))
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let names = dense_names();
        let lines = || include_str!("types_combine.tsv").lines().filter(|l| !l.starts_with('#'));
        let scale_of = |name: &str| {
            lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('\t'))
                .map(|v| v.parse::<f32>().expect("the type combination's scale"))
        };
        let scale = scale_of("SCALE").unwrap_or(1.0);
        let vector_scale = scale_of("VECTOR-SCALE").unwrap_or(scale);
        let mut dense = [[0.0f32; CLASSES]; DENSE];
        let mut words = HashMap::new();
        let mut vectors = Vec::new();
        let mut firsts = Vec::new();
        for line in lines() {
            if line.starts_with("v ") {
                vectors.push(line);
                continue;
            }
            if line.starts_with("f ") {
                firsts.push(line);
                continue;
            }
            let Some((name, values)) = line.split_once('\t') else { continue };
            if name == "SCALE" || name == "VECTOR-SCALE" {
                continue;
            }
            let row = parse_row(values, scale);
            if let Some(word) = name.strip_prefix("w ") {
                words.insert(word, row);
            } else {
                let i = names.iter().position(|n| n == name).expect("a feature combine.rs computes");
                dense[i] = row;
            }
        }
        Table { dense, words, vectors, firsts, vector_scale }
    })
}

/// The type the fitted weights give the evidence.
pub fn decide(e: &Evidence) -> TaskType {
    let t = table();
    let mut z = [0.0f32; CLASSES];
    let mut add = |row: &[f32; CLASSES], x: f32| z.iter_mut().zip(row).for_each(|(z, w)| *z += w * x);
    for (row, x) in t.dense.iter().zip(e.dense) {
        add(row, x);
    }
    for w in &e.words {
        if let Some(row) = t.words.get(w.as_str()) {
            add(row, WORD_VALUE);
        }
    }
    // The mean over all the title's words: one without a row counts as nothing.
    for w in &e.words {
        if let Some(row) = t.vector(&t.vectors, w) {
            add(&row, 1.0 / e.words.len() as f32);
        }
    }
    // The first word counts whole, however long the title: it is mostly the verb.
    if let Some(row) = e.first.as_deref().and_then(|w| t.vector(&t.firsts, w)) {
        add(&row, 1.0);
    }
    let best = (0..CLASSES).fold(0, |b, c| if z[c] > z[b] { c } else { b });
    PRECEDENCE.get(best).copied().unwrap_or(TaskType::Other)
}

/// A word's feature value: small, so that one word learned from a few titles moves a decision
/// less than the rules and the model do (chosen on the sets left out, docs/accuracy.md).
pub const WORD_VALUE: f32 = 0.3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_is_the_models_first_word() {
        use super::super::classify::read;
        let first = |title: &str| evidence(&read(title, "")).first;
        // After a conventional-commit prefix, lowercased; numbers are `0`, as the model reads them.
        assert_eq!(first("feat(ui): Add dark mode").as_deref(), Some("add"));
        assert_eq!(first("2FA codes expire too early").as_deref(), Some("0"));
        // Code spans and paths are not words; "task" names no type.
        assert_eq!(first("`cargo fmt` fails on CI").as_deref(), Some("fails"));
        assert_eq!(first("Task: fix the login").as_deref(), Some("fix"));
        // Nothing to read: no first word, and the decision still comes from the rest.
        for title in ["", "   ", "`x`", "src/main.rs", "—"] {
            assert_eq!(first(title), None, "{title:?}");
            decide(&evidence(&read(title, "")));
        }
        // A first word without an `f` row (made up) adds nothing and does not panic.
        assert!(table().vector(&table().firsts, "qwfpgjluy").is_none());
        decide(&evidence(&read("Qwfpgjluy the parser", "")));
    }

    #[test]
    fn vector_rows_are_sorted_whole_and_found() {
        let t = table();
        for (kind, rows) in [("v", &t.vectors), ("f", &t.firsts)] {
            assert!(rows.len() > 1000, "{} `{kind}` rows", rows.len());
            let words: Vec<&str> = rows.iter().map(|l| vector_word(l)).collect();
            // Binary search needs them strictly in order (combine.py writes them sorted).
            assert!(words.windows(2).all(|w| w[0] < w[1]), "`{kind}` rows out of order");
            for line in rows.iter() {
                assert_eq!(line.split_once('\t').unwrap().1.split(' ').count(), CLASSES, "{line}");
            }
            for w in [words[0], words[words.len() / 2], words[words.len() - 1]] {
                assert!(t.vector(rows, w).is_some(), "{kind} {w}");
            }
            assert!(t.vector(rows, "").is_none());
            assert!(t.vector(rows, "zzzzzzzzzzzzzzzzzzzzzzz").is_none());
        }
    }
}
