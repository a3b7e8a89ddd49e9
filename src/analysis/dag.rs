//! Conflicts between tasks and the dependency DAG.
//!
//! - Hard conflict: two tasks touch the same file. Unless conflicts are allowed, an ordering edge
//!   serializes them: higher priority first, then the earlier prompt.
//! - Soft conflict: a file one task touches depends on a file the other touches, directly or
//!   through one module in between (`MAX_HOPS`). Reported with a risk score, never
//!   serialized. Each link weighs 1 when direct, 0.35 through one module (0.12 through two, when
//!   `build_hops` is asked to go that far);
//!   times 0.5..1 by the fan-in of the depended-on file (how many files import it, relative to
//!   the repository's most imported); times, for each importer on the path, 0.6..1 by how much
//!   it relies on the next file (1 when that is its only import: `share`). Risk = 0.95 ×
//!   (1 − e^(−0.8 × total weight)), so it grows with every link and stays below a hard
//!   conflict's 1.0. Pairs joined only transitively are kept from `TRANSITIVE_FLOOR` up.
//!   Examples: `soft_risk_examples` below.
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

/// How far a soft conflict is followed through the import graph: a direct import (1) or through
/// one module (2). A third hop reached most of a 100,000-file repository from each task file
/// and cost 30% more planning time there (`cargo bench --bench plan`) for links weighing 0.12.
pub const MAX_HOPS: usize = 2;

/// A pair of tasks joined only through modules in between is reported when its risk reaches
/// this. Below it, nearly every pair of a large repository would be "in conflict" through some
/// widely imported module, and the list would tell the user nothing.
pub const TRANSITIVE_FLOOR: f64 = 0.15;

/// What joins two tasks through the import graph.
#[derive(Debug, Default)]
struct Link {
    /// Summed `link_weight` of every path found.
    weight: f64,
    /// Some file of one imports a file of the other directly.
    direct: bool,
    /// Paths to show: every direct one, and a few transitive ones.
    via: Vec<String>,
}

/// Soft links between tasks (index pairs, smaller first): for each task file, a breadth-first
/// walk over its importers up to `max_hops`, each importer counted once at its shortest
/// distance; a task touching an importer is linked to the task owning the imported file. Files
/// are numbered once and walks reuse one visited array, so the cost is the size of the walks,
/// not the number of pairs times the graph.
fn soft_links(
    nodes: &[Node],
    graph: &ImportGraph,
    max_hops: usize,
) -> std::collections::BTreeMap<(usize, usize), Link> {
    // Importing files are numbered in the graph's order, imported-only files after them: one
    // hash lookup per edge (millions in a large Go repository, where an import names every file
    // of a package), with a fast hasher.
    let mut ids: foldhash::HashMap<&str, u32> = foldhash::HashMap::default();
    ids.reserve(graph.imports.len() * 2);
    let mut names: Vec<&str> = Vec::with_capacity(graph.imports.len() * 2);
    for from in graph.imports.keys() {
        ids.insert(from.as_str(), names.len() as u32);
        names.push(from.as_str());
    }
    // Each importer with whether its edge only declares the module (a walk stops there).
    let mut importers: Vec<Vec<(u32, bool)>> = vec![Vec::new(); names.len()];
    for (from_id, (from, tos)) in graph.imports.iter().enumerate() {
        let declared = graph.declares.get(from);
        for to in tos {
            let only_declares = declared.is_some_and(|d| d.contains(to));
            let id = *ids.entry(to.as_str()).or_insert_with(|| {
                names.push(to.as_str());
                importers.push(Vec::new());
                (names.len() - 1) as u32
            });
            importers[id as usize].push((from_id as u32, only_declares));
        }
    }
    let max_fan_in = importers.iter().map(Vec::len).max().unwrap_or(0);
    let mut owners: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (i, n) in nodes.iter().enumerate() {
        for f in &n.files {
            if let Some(&id) = ids.get(f.as_str()) {
                if !owners[id as usize].contains(&i) {
                    owners[id as usize].push(i);
                }
            }
        }
    }
    let out_degree: Vec<usize> =
        names.iter().map(|n| graph.imports.get(*n).map_or(0, std::collections::BTreeSet::len)).collect();
    // Visited marks stamped per walk; the parent of each reached file, to show the path, and
    // how much the path relies on the walk's start.
    let mut stamp = vec![0u32; names.len()];
    let mut parent = vec![u32::MAX; names.len()];
    let mut reliance = vec![1.0f64; names.len()];
    let mut walk = 0u32;
    let mut links: std::collections::BTreeMap<(usize, usize), Link> = Default::default();
    for (b, n) in nodes.iter().enumerate() {
        for f in &n.files {
            let Some(&start) = ids.get(f.as_str()) else { continue };
            let fan_in = importers[start as usize].len();
            walk += 1;
            stamp[start as usize] = walk;
            reliance[start as usize] = 1.0;
            let mut frontier = vec![start];
            for hops in 1..=max_hops {
                let mut next = Vec::new();
                for &file in &frontier {
                    for &(importer, only_declares) in &importers[file as usize] {
                        if stamp[importer as usize] == walk {
                            continue;
                        }
                        stamp[importer as usize] = walk;
                        parent[importer as usize] = file;
                        reliance[importer as usize] = reliance[file as usize] * share(out_degree[importer as usize]);
                        if !only_declares {
                            next.push(importer);
                        }
                        // A file of b's own importing b's file links b to nothing.
                        if owners[importer as usize].contains(&b) {
                            continue;
                        }
                        for &a in &owners[importer as usize] {
                            let link = links.entry((a.min(b), a.max(b))).or_default();
                            link.weight += link_weight(hops, fan_in, max_fan_in) * reliance[importer as usize];
                            link.direct |= hops == 1;
                            // Every direct path is listed; transitive ones only a few (thousands
                            // would swamp the plan).
                            if hops > 1 && link.via.len() >= 4 {
                                continue;
                            }
                            let mut path = vec![names[importer as usize]];
                            let mut at = importer;
                            while at != start {
                                at = parent[at as usize];
                                path.push(names[at as usize]);
                            }
                            link.via.push(path.join(" -> "));
                        }
                    }
                }
                frontier = next;
            }
        }
    }
    for link in links.values_mut() {
        link.via.sort();
        link.via.dedup();
    }
    links
}

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

/// How much a file that imports `out_degree` files relies on any one of them: 1 for its only
/// import, down to 0.6 for one of very many.
pub fn share(out_degree: usize) -> f64 {
    0.6 + 0.4 / out_degree.max(1) as f64
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

    let hard: std::collections::HashSet<(usize, usize)> = conflicts
        .iter()
        .map(|c| (index[c.a.as_str()], index[c.b.as_str()]))
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    for ((a, b), link) in soft_links(nodes, graph, max_hops) {
        if hard.contains(&(a, b)) || (!link.direct && soft_risk(link.weight) < TRANSITIVE_FLOOR) {
            continue;
        }
        conflicts.push(Conflict {
            a: nodes[a].id.clone(),
            b: nodes[b].id.clone(),
            kind: ConflictKind::Soft,
            risk: soft_risk(link.weight),
            files: link.via,
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
        let dag = build(&nodes, &g, false).unwrap();
        let direct_wide = risk(&dag, "sessions", "utils").unwrap();
        let direct_narrow = risk(&dag, "models", "hooks").unwrap();
        let two_hops = risk(&dag, "api", "models").unwrap();
        // Direct beats transitive; a widely imported module beats a narrowly imported one.
        assert!(direct_wide > direct_narrow, "{direct_wide} vs {direct_narrow}");
        assert!(direct_narrow > two_hops && two_hops >= TRANSITIVE_FLOOR, "{direct_narrow} {two_hops}");
        // api reaches hooks only through sessions and models, and few files import hooks: below
        // the floor, not reported; followed, it still weighs less than the two-hop link.
        assert!(risk(&dag, "api", "hooks").is_none());
        let links = soft_links(&nodes, &g, 3);
        let three_hops = soft_risk(links[&(0, 4)].weight);
        assert!(three_hops < two_hops && three_hops > 0.0, "{three_hops}");
        assert_eq!(links[&(0, 4)].via, vec!["api.py -> sessions.py -> models.py -> hooks.py"]);
        // Unrelated modules stay unconnected: auth and hooks share nothing but utils' importers.
        assert!(risk(&dag, "auth", "hooks").is_none());
        assert!(dag.conflicts.iter().all(|c| c.risk < 1.0));
        let mut risks: Vec<f64> = dag.conflicts.iter().map(|c| c.risk).collect();
        risks.sort_by(f64::total_cmp);
        risks.dedup();
        assert!(risks.len() >= 5, "few distinct risks: {risks:?}");
    }

    #[test]
    fn transitive_links_add_to_direct_ones() {
        // Task x: x.py imports y.py directly, and q.py reaches it through z.py; task w: one
        // direct import only. Each importer counts once, at its shortest distance.
        let g = graph(&[("x.py", "y.py"), ("q.py", "z.py"), ("z.py", "y.py"), ("w.py", "v.py")]);
        let nodes = [
            node("x", &["x.py", "q.py"], &[], 0),
            node("y", &["y.py"], &[], 0),
            node("w", &["w.py"], &[], 0),
            node("v", &["v.py"], &[], 0),
        ];
        let dag = build(&nodes, &g, false).unwrap();
        let (both, direct) = (risk(&dag, "x", "y").unwrap(), risk(&dag, "w", "v").unwrap());
        assert!(both > direct, "{both} vs {direct}");
        let c = dag.conflicts.iter().find(|c| c.a == "x").unwrap();
        assert_eq!(c.files, vec!["q.py -> z.py -> y.py", "x.py -> y.py"]);
        // Many weak paths add up past the floor: a task on a module five files reach through
        // one module in between each.
        let mut edges = vec![("hub.py", "base.py")];
        let mids = ["m1.py", "m2.py", "m3.py", "m4.py", "m5.py"];
        for m in &mids {
            edges.push((m, "hub.py"));
        }
        let g = graph(&edges);
        let nodes = [node("mids", &mids, &[], 0), node("base", &["base.py"], &[], 0)];
        let dag = build(&nodes, &g, false).unwrap();
        assert!(risk(&dag, "mids", "base").unwrap() > TRANSITIVE_FLOOR);
    }

    #[test]
    fn walks_stop_at_module_declarations() {
        // A crate root declares every module and defines what they share: each module imports
        // the root, and the root only declares them. Two modules are not linked through it.
        let mut g = graph(&[
            ("src/lib.rs", "src/a.rs"),
            ("src/lib.rs", "src/b.rs"),
            ("src/a.rs", "src/lib.rs"),
            ("src/b.rs", "src/lib.rs"),
        ]);
        g.declares.insert("src/lib.rs".into(), ["src/a.rs".to_string(), "src/b.rs".to_string()].into());
        let nodes =
            [node("a", &["src/a.rs"], &[], 0), node("b", &["src/b.rs"], &[], 0), node("root", &["src/lib.rs"], &[], 0)];
        let dag = build(&nodes, &g, false).unwrap();
        assert!(risk(&dag, "a", "b").is_none(), "{:?}", dag.conflicts);
        // The declaration itself is still a direct link.
        assert!(risk(&dag, "a", "root").is_some() && risk(&dag, "b", "root").is_some());
        // Without it being only a declaration, the walk goes on: a reaches b through the root.
        g.declares.clear();
        assert!(links_between(&nodes, &g, "a", "b"));
    }

    fn links_between(nodes: &[Node], g: &ImportGraph, a: &str, b: &str) -> bool {
        let (i, j) = (nodes.iter().position(|n| n.id == a).unwrap(), nodes.iter().position(|n| n.id == b).unwrap());
        soft_links(nodes, g, MAX_HOPS).contains_key(&(i.min(j), i.max(j)))
    }

    #[test]
    fn a_file_that_relies_on_fewer_imports_relies_more_on_each() {
        // only.py imports lib.py alone; many.py imports lib.py and nine other modules.
        let mut edges = vec![("only.py", "lib.py"), ("many.py", "lib.py")];
        let others: Vec<String> = (0..9).map(|i| format!("o{i}.py")).collect();
        for o in &others {
            edges.push(("many.py", o.as_str()));
        }
        let g = graph(&edges);
        let nodes =
            [node("only", &["only.py"], &[], 0), node("many", &["many.py"], &[], 0), node("lib", &["lib.py"], &[], 0)];
        let dag = build(&nodes, &g, false).unwrap();
        let (heavy, light) = (risk(&dag, "only", "lib").unwrap(), risk(&dag, "many", "lib").unwrap());
        assert!(heavy > light, "{heavy} vs {light}");
        assert!((share(1) - 1.0).abs() < 1e-9 && share(10) > 0.6 && share(10) < share(2));
    }

    #[test]
    fn more_links_mean_more_risk() {
        let one = soft_risk(link_weight(1, 3, 10));
        let two = soft_risk(2.0 * link_weight(1, 3, 10));
        assert!(two > one && two < 1.0, "{one} {two}");
    }
}
