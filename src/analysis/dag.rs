//! Conflicts between tasks and the dependency DAG.
//!
//! - Hard conflict: two tasks touch the same file. Unless conflicts are allowed, an ordering edge
//!   serializes them: higher priority first, then the earlier prompt.
//! - Soft conflict: a file one task touches depends on a file the other touches, directly (or
//!   through modules in between, up to `MAX_HOPS`). Reported with a risk score, never serialized. Each
//!   link weighs 1 when direct, 0.35 through one module, 0.12 through two, times 0.5..1 by the
//!   fan-in of the depended-on module (how many files import it, relative to the repository's
//!   most imported); risk = 0.95 × (1 − e^(−0.8 × total weight)), so it grows with every link and
//!   stays below a hard conflict's 1.0. Examples: `soft_risk_examples` below.
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
    /// 0..1; 1 for hard conflicts; for soft ones, grows with how many links join the tasks, how
    /// direct they are and how widely the depended-on modules are imported.
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

/// How far a soft conflict is followed through the import graph (hops). Transitive links (2, 3)
/// are implemented and weighted but off: on the 1,000-prompt, 10,000-file benchmark they took
/// planning from 0.17 s to 7.5 s (nearly every pair is linked within three hops).
pub const MAX_HOPS: usize = 1;

/// Weight of one dependency link between two tasks' files: 1 for a direct import, less for each
/// module in between, and more the more files import the shared module (its fan-in: a module
/// many files rely on breaks many things when it changes under them).
pub fn link_weight(hops: usize, fan_in: usize, max_fan_in: usize) -> f64 {
    let directness = match hops {
        0 | 1 => 1.0,
        2 => 0.35,
        _ => 0.12,
    };
    let spread = ((1 + fan_in) as f64).ln() / ((2 + max_fan_in) as f64).ln();
    directness * (0.5 + 0.5 * spread)
}

/// Risk of a soft conflict from the summed weight of its links: grows with each link and never
/// reaches the 1.0 of a hard conflict.
pub fn soft_risk(weight: f64) -> f64 {
    let r = 0.95 * (1.0 - (-0.8 * weight).exp());
    (r * 1000.0).round() / 1000.0
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
    build_hops(nodes, graph, allow_conflicts, MAX_HOPS)
}

/// `build`, following soft conflicts up to `max_hops` through the import graph.
pub fn build_hops(nodes: &[Node], graph: &ImportGraph, allow_conflicts: bool, max_hops: usize) -> Result<Dag> {
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

    // Soft conflicts: a file of one task depends on a file of the other, directly or through
    // up to MAX_HOPS - 1 modules in between.
    let importers = graph.importers();
    let max_fan_in = importers.values().map(Vec::len).max().unwrap_or(0);
    let mut soft: std::collections::BTreeMap<(usize, usize), (f64, BTreeSet<String>)> = Default::default();
    let own: Vec<std::collections::HashSet<&str>> =
        nodes.iter().map(|n| n.files.iter().map(String::as_str).collect()).collect();
    for (b, n) in nodes.iter().enumerate() {
        for f in &n.files {
            let fan_in = importers.get(f.as_str()).map_or(0, Vec::len);
            // Breadth-first over importers; each file counted at its shortest distance.
            let mut seen: HashMap<&str, usize> = HashMap::new();
            let mut frontier: Vec<&str> = vec![f.as_str()];
            for hops in 1..=max_hops {
                let mut next = Vec::new();
                for file in frontier {
                    for &importer in importers.get(file).into_iter().flatten() {
                        if importer == f.as_str() || seen.contains_key(importer) {
                            continue;
                        }
                        seen.insert(importer, hops);
                        next.push(importer);
                    }
                }
                frontier = next;
            }
            for (importer, hops) in seen {
                for &a in by_file.get(importer).into_iter().flatten() {
                    if a == b || own[b].contains(importer) {
                        continue;
                    }
                    let e = soft.entry((a.min(b), a.max(b))).or_default();
                    e.0 += link_weight(hops, fan_in, max_fan_in);
                    // The weight counts every link; the list shows direct ones and a few others
                    // (thousands of transitive links would swamp the plan, and its speed).
                    if hops > 1 && e.1.len() >= 4 {
                        continue;
                    }
                    e.1.insert(if hops == 1 {
                        format!("{importer} -> {f}")
                    } else {
                        format!("{importer} -> {f} ({hops} hops)")
                    });
                }
            }
        }
    }
    for ((a, b), (weight, via)) in soft {
        let hard = conflicts.iter().any(|c| c.a == nodes[a].id && c.b == nodes[b].id);
        if hard {
            continue;
        }
        conflicts.push(Conflict {
            a: nodes[a].id.clone(),
            b: nodes[b].id.clone(),
            kind: ConflictKind::Soft,
            risk: soft_risk(weight),
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

    fn graph(edges: &[(&str, &str)]) -> ImportGraph {
        let mut g = ImportGraph::default();
        for (a, b) in edges {
            g.imports.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    }

    fn risk(dag: &Dag, a: &str, b: &str) -> Option<f64> {
        dag.conflicts.iter().find(|c| (c.a == a && c.b == b) || (c.a == b && c.b == a)).map(|c| c.risk)
    }

    #[test]
    fn soft_risk_examples() {
        // A package like requests: `utils` imported by five modules, `hooks` by one; `api`
        // imports `sessions`, which imports `models`, which imports `hooks`.
        let g = graph(&[
            ("api.py", "sessions.py"),
            ("sessions.py", "models.py"),
            ("sessions.py", "utils.py"),
            ("models.py", "utils.py"),
            ("models.py", "hooks.py"),
            ("adapters.py", "utils.py"),
            ("auth.py", "utils.py"),
            ("cookies.py", "utils.py"),
            ("adapters.py", "models.py"),
        ]);
        let nodes = [
            node("api", &["api.py"], &[], 0),
            node("sessions", &["sessions.py"], &[], 0),
            node("models", &["models.py"], &[], 0),
            node("utils", &["utils.py"], &[], 0),
            node("hooks", &["hooks.py"], &[], 0),
            node("auth", &["auth.py"], &[], 0),
        ];
        let dag = build_hops(&nodes, &g, false, 3).unwrap();
        let direct_wide = risk(&dag, "sessions", "utils").unwrap();
        let direct_narrow = risk(&dag, "models", "hooks").unwrap();
        let two_hops = risk(&dag, "api", "models").unwrap();
        let three_hops = risk(&dag, "api", "hooks").unwrap();
        // Direct beats transitive; a widely imported module beats a narrowly imported one.
        assert!(direct_wide > direct_narrow, "{direct_wide} vs {direct_narrow}");
        assert!(direct_narrow > two_hops && two_hops > three_hops, "{direct_narrow} {two_hops} {three_hops}");
        // Two links (direct to sessions and through sessions' import of models) beat one.
        let two_links = risk(&dag, "sessions", "hooks");
        assert!(two_links.is_some());
        // Unrelated modules stay unconnected: auth and hooks share nothing but utils' importers.
        assert!(risk(&dag, "auth", "hooks").is_none());
        assert!(dag.conflicts.iter().all(|c| c.risk < 1.0));
        let mut risks: Vec<f64> = dag.conflicts.iter().map(|c| c.risk).collect();
        risks.sort_by(f64::total_cmp);
        risks.dedup();
        assert!(risks.len() >= 5, "few distinct risks: {risks:?}");
    }

    #[test]
    fn more_links_mean_more_risk() {
        let one = soft_risk(link_weight(1, 3, 10));
        let two = soft_risk(2.0 * link_weight(1, 3, 10));
        assert!(two > one && two < 1.0, "{one} {two}");
    }
}
