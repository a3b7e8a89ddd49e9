//! Conflicts between tasks and the dependency DAG.
//!
//! - Hard conflict: two tasks touch the same file. Unless conflicts are allowed, an ordering edge
//!   serializes them: higher priority first, then the earlier prompt.
//! - Soft conflict: a file one task touches is imported by a file the other touches. Reported
//!   with a risk score, never serialized.
//! - Explicit `depends_on` edges; unknown ids, duplicate ids and cycles are errors naming the
//!   tasks involved.

use super::imports::ImportGraph;
use crate::error::usage;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// What the DAG needs to know about a task.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub files: Vec<String>,
    pub depends_on: Vec<String>,
    pub priority: i64,
    /// Where the prompt came from, for messages.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    Hard,
    Soft,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub a: String,
    pub b: String,
    pub kind: ConflictKind,
    /// Hard: the shared files. Soft: `importer -> imported` pairs.
    pub files: Vec<String>,
    /// 0..1; 1 for hard conflicts, grows with the number of import edges for soft ones.
    pub risk: f64,
    /// True when an ordering edge was added for it.
    pub serialized: bool,
}

/// The DAG: for each task (by index), the tasks it must wait for.
#[derive(Debug, Clone)]
pub struct Dag {
    pub ids: Vec<String>,
    /// Explicit dependencies.
    pub explicit: Vec<Vec<usize>>,
    /// Ordering edges added to serialize hard conflicts.
    pub ordering: Vec<Vec<usize>>,
    pub conflicts: Vec<Conflict>,
}

impl Dag {
    /// All predecessors of task `i`.
    pub fn preds(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.explicit[i].iter().chain(self.ordering[i].iter()).copied()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Risk of a soft conflict with `edges` import edges between the two tasks' files.
pub fn soft_risk(edges: usize) -> f64 {
    let r = 1.0 - 0.6f64.powi(edges as i32);
    (r * 100.0).round() / 100.0
}

/// Dense reachability, updated as edges are added, so ordering edges never close a cycle.
struct Reach {
    n: usize,
    words: usize,
    bits: Vec<u64>,
}

impl Reach {
    fn new(n: usize) -> Self {
        let words = n.div_ceil(64).max(1);
        let mut r = Reach { n, words, bits: vec![0; n * words] };
        for i in 0..n {
            r.set(i, i);
        }
        r
    }
    fn set(&mut self, from: usize, to: usize) {
        self.bits[from * self.words + to / 64] |= 1 << (to % 64);
    }
    fn get(&self, from: usize, to: usize) -> bool {
        self.bits[from * self.words + to / 64] & (1 << (to % 64)) != 0
    }
    /// Record edge `from → to` (from runs before to).
    fn add(&mut self, from: usize, to: usize) {
        let row: Vec<u64> = self.bits[to * self.words..(to + 1) * self.words].to_vec();
        for x in 0..self.n {
            if self.get(x, from) {
                for (w, bits) in row.iter().enumerate() {
                    self.bits[x * self.words + w] |= bits;
                }
            }
        }
    }
}

/// Build the DAG and the conflict list.
pub fn build(nodes: &[Node], graph: &ImportGraph, allow_conflicts: bool) -> Result<Dag> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(&j) = index.get(n.id.as_str()) {
            return Err(usage(format!("duplicate task id `{}`: {} and {}", n.id, nodes[j].source, n.source)));
        }
        index.insert(&n.id, i);
    }
    let mut explicit = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for d in &n.depends_on {
            match index.get(d.as_str()) {
                Some(&j) if j == i => {
                    return Err(usage(format!("dependency cycle: {} depends on itself ({})", n.id, n.source)))
                }
                Some(&j) => {
                    if !explicit[i].contains(&j) {
                        explicit[i].push(j)
                    }
                }
                None => {
                    let known: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
                    return Err(usage(format!(
                        "{}: task `{}` depends on unknown task `{d}` (known: {})",
                        n.source,
                        n.id,
                        known.join(", ")
                    )));
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&explicit) {
        let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].id.as_str()).collect();
        return Err(usage(format!("dependency cycle: {} → {}", names.join(" → "), names[0])));
    }

    let mut reach = Reach::new(nodes.len());
    for (i, ps) in explicit.iter().enumerate() {
        for &p in ps {
            reach.add(p, i);
        }
    }

    // Hard conflicts: tasks sharing files, found through a file → tasks map.
    let mut by_file: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for f in &n.files {
            by_file.entry(f.as_str()).or_default().push(i);
        }
    }
    let mut shared: std::collections::BTreeMap<(usize, usize), BTreeSet<String>> = Default::default();
    for (file, tasks) in &by_file {
        for (x, &a) in tasks.iter().enumerate() {
            for &b in &tasks[x + 1..] {
                shared.entry((a.min(b), a.max(b))).or_default().insert(file.to_string());
            }
        }
    }
    let mut ordering = vec![Vec::new(); nodes.len()];
    let mut conflicts = Vec::new();
    for ((a, b), files) in shared {
        let mut serialized = false;
        if !allow_conflicts && !reach.get(a, b) && !reach.get(b, a) {
            // Higher priority first, then the earlier prompt.
            let (first, second) = if nodes[b].priority > nodes[a].priority { (b, a) } else { (a, b) };
            ordering[second].push(first);
            reach.add(first, second);
            serialized = true;
        }
        conflicts.push(Conflict {
            a: nodes[a].id.clone(),
            b: nodes[b].id.clone(),
            kind: ConflictKind::Hard,
            files: files.into_iter().collect(),
            risk: 1.0,
            serialized,
        });
    }

    // Soft conflicts: a's files import b's files or the other way round.
    let importers = graph.importers();
    let mut soft: std::collections::BTreeMap<(usize, usize), BTreeSet<String>> = Default::default();
    for (b, n) in nodes.iter().enumerate() {
        for f in &n.files {
            for importer in importers.get(f.as_str()).into_iter().flatten() {
                for &a in by_file.get(importer).into_iter().flatten() {
                    if a != b {
                        soft.entry((a.min(b), a.max(b))).or_default().insert(format!("{importer} -> {f}"));
                    }
                }
            }
        }
    }
    for ((a, b), via) in soft {
        let hard = conflicts.iter().any(|c| c.a == nodes[a].id && c.b == nodes[b].id);
        if hard {
            continue;
        }
        conflicts.push(Conflict {
            a: nodes[a].id.clone(),
            b: nodes[b].id.clone(),
            kind: ConflictKind::Soft,
            risk: soft_risk(via.len()),
            files: via.into_iter().collect(),
            serialized: false,
        });
    }
    Ok(Dag { ids: nodes.iter().map(|n| n.id.clone()).collect(), explicit, ordering, conflicts })
}

/// A cycle in `preds` (as task indices in dependency order), if there is one.
fn find_cycle(preds: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let n = preds.len();
    let mut mark = vec![Mark::New; n];
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS along "depends on" edges, keeping the active path.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&p) = preds[node].get(*next) {
                *next += 1;
                match mark[p] {
                    Mark::New => {
                        mark[p] = Mark::Active;
                        stack.push((p, 0));
                    }
                    Mark::Active => {
                        let pos = stack.iter().position(|&(x, _)| x == p).unwrap_or(0);
                        // The path runs dependent → dependency; show it dependency first.
                        let mut cycle: Vec<usize> = stack[pos..].iter().map(|&(x, _)| x).collect();
                        cycle.reverse();
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, files: &[&str], deps: &[&str], priority: i64) -> Node {
        Node {
            id: id.into(),
            files: files.iter().map(|s| s.to_string()).collect(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            priority,
            source: format!("{id}.md"),
        }
    }

    #[test]
    fn cycle_is_named_whole() {
        let nodes = [node("a", &[], &["c"], 0), node("b", &[], &["a"], 0), node("c", &[], &["b"], 0)];
        let e = build(&nodes, &ImportGraph::default(), false).unwrap_err().to_string();
        assert!(e.contains("dependency cycle"), "{e}");
        for id in ["a", "b", "c"] {
            assert!(e.contains(id), "{e}");
        }
    }

    #[test]
    fn hard_conflicts_serialize_by_priority_without_cycles() {
        let nodes = [node("a", &["x.py"], &[], 0), node("b", &["x.py"], &[], 5), node("c", &["x.py"], &["a"], 0)];
        let dag = build(&nodes, &ImportGraph::default(), false).unwrap();
        // b has the higher priority: a waits for b. c already runs after a.
        assert_eq!(dag.ordering[0], vec![1]);
        assert!(dag.ordering[2].is_empty() || dag.ordering[2] == vec![1]);
        let allowed = build(&nodes, &ImportGraph::default(), true).unwrap();
        assert!(allowed.ordering.iter().all(Vec::is_empty));
        assert_eq!(allowed.conflicts.len(), 3);
    }
}
