//! Critical-path list scheduling: whenever a worker is free, start the ready task with the
//! longest remaining path (HEFT's upward rank). No phase barriers. Within (2 - 1/m) of optimal.

use serde::{Deserialize, Serialize};

/// Upward rank of each task: its duration plus the longest rank among its successors.
pub fn upward_rank(durations: &[f64], succs: &[Vec<usize>], topo: &[usize]) -> Vec<f64> {
    let mut rank = durations.to_vec();
    for &i in topo.iter().rev() {
        let best = succs[i].iter().map(|&s| rank[s]).fold(0.0, f64::max);
        rank[i] = durations[i] + best;
    }
    rank
}

/// Order in which ready tasks are picked: highest rank first, then lowest index.
pub fn by_priority(rank: &[f64], ready: &mut [usize]) {
    ready.sort_by(|&a, &b| rank[b].total_cmp(&rank[a]).then(a.cmp(&b)));
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Slot {
    pub start: f64,
    pub finish: f64,
    pub worker: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Simulation {
    pub workers: usize,
    pub slots: Vec<Slot>,
    pub makespan: f64,
    pub sequential: f64,
    pub critical_path: Vec<usize>,
    pub critical_path_length: f64,
    pub lower_bound: f64,
    /// Levels by longest chain of predecessors, for display only.
    pub waves: Vec<Vec<usize>>,
}

impl Simulation {
    pub fn speedup(&self) -> f64 {
        if self.makespan > 0.0 {
            self.sequential / self.makespan
        } else {
            1.0
        }
    }
}

/// Successor lists from predecessor lists.
pub fn successors(preds: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut succs = vec![Vec::new(); preds.len()];
    for (i, ps) in preds.iter().enumerate() {
        for &p in ps {
            succs[p].push(i);
        }
    }
    succs
}

/// Upward ranks of a DAG given by predecessor lists (the dispatch priority).
pub fn ranks(durations: &[f64], preds: &[Vec<usize>]) -> Vec<f64> {
    let succs = successors(preds);
    upward_rank(durations, &succs, &topo(preds, &succs))
}

/// Simulate list scheduling of tasks with `durations` and predecessor lists `preds` on `workers`.
pub fn simulate(durations: &[f64], preds: &[Vec<usize>], workers: usize) -> Simulation {
    let n = durations.len();
    let workers = workers.max(1);
    let succs = successors(preds);
    let topo = topo(preds, &succs);
    let rank = upward_rank(durations, &succs, &topo);

    let mut remaining: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut free_at = vec![0.0f64; workers];
    let mut slots = vec![Slot { start: 0.0, finish: 0.0, worker: 0 }; n];
    // Running tasks as (finish, task); time advances to the earliest finish.
    let mut running: Vec<(f64, usize)> = Vec::new();
    let mut now = 0.0f64;
    let mut done = 0;
    while done < n {
        by_priority(&rank, &mut ready);
        let mut k = 0;
        while k < ready.len() {
            let Some(w) = (0..workers).find(|&w| free_at[w] <= now) else {
                break;
            };
            let t = ready[k];
            slots[t] = Slot { start: now, finish: now + durations[t], worker: w };
            free_at[w] = now + durations[t];
            running.push((now + durations[t], t));
            k += 1;
        }
        ready.drain(..k);
        if running.is_empty() {
            break; // a cycle would leave tasks unscheduled; callers reject cycles first
        }
        now = running.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
        let (finished, still): (Vec<_>, Vec<_>) = running.into_iter().partition(|r| r.0 <= now);
        running = still;
        for (_, t) in finished {
            done += 1;
            for &s in &succs[t] {
                remaining[s] -= 1;
                if remaining[s] == 0 {
                    ready.push(s);
                }
            }
        }
    }
    let makespan = slots.iter().map(|s| s.finish).fold(0.0, f64::max);
    let sequential: f64 = durations.iter().sum();

    // Critical path: start at the highest rank among sources, follow the successor that
    // carries the rank.
    let mut critical_path = Vec::new();
    let mut cur = (0..n).filter(|&i| preds[i].is_empty()).max_by(|&a, &b| rank[a].total_cmp(&rank[b]).then(b.cmp(&a)));
    while let Some(c) = cur {
        critical_path.push(c);
        cur = succs[c].iter().copied().max_by(|&a, &b| rank[a].total_cmp(&rank[b]).then(b.cmp(&a)));
    }
    let critical_path_length = critical_path.first().map(|&c| rank[c]).unwrap_or(0.0);
    let lower_bound = critical_path_length.max(sequential / workers as f64);

    let mut level = vec![0usize; n];
    for &i in &topo {
        level[i] = preds[i].iter().map(|&p| level[p] + 1).max().unwrap_or(0);
    }
    let mut waves: Vec<Vec<usize>> = vec![Vec::new(); level.iter().max().map_or(0, |m| m + 1)];
    for i in 0..n {
        waves[level[i]].push(i);
    }
    Simulation { workers, slots, makespan, sequential, critical_path, critical_path_length, lower_bound, waves }
}

fn topo(preds: &[Vec<usize>], succs: &[Vec<usize>]) -> Vec<usize> {
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut stack: Vec<usize> = (0..preds.len()).rev().filter(|&i| indeg[i] == 0).collect();
    let mut out = Vec::with_capacity(preds.len());
    while let Some(i) = stack.pop() {
        out.push(i);
        for &s in &succs[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                stack.push(s);
            }
        }
    }
    out
}

/// Phase-barrier baseline: run wave by wave, each wave list-scheduled, the next wave starting
/// only when the whole previous one finished. For benchmarks.
pub fn simulate_waves(durations: &[f64], preds: &[Vec<usize>], workers: usize) -> f64 {
    let sim = simulate(durations, preds, workers);
    let mut total = 0.0;
    for wave in &sim.waves {
        let d: Vec<f64> = wave.iter().map(|&i| durations[i]).collect();
        let none = vec![Vec::new(); d.len()];
        total += simulate(&d, &none, workers).makespan;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_example_beats_waves() {
        // Two workers, A(4)→D(4), B(1)→E(3), C(1)→F(3): waves 10, list scheduling 8 (optimal).
        let d = [4.0, 1.0, 1.0, 4.0, 3.0, 3.0];
        let p = vec![vec![], vec![], vec![], vec![0], vec![1], vec![2]];
        let sim = simulate(&d, &p, 2);
        assert_eq!(sim.makespan, 8.0);
        assert_eq!(sim.lower_bound, 8.0);
        assert_eq!(simulate_waves(&d, &p, 2), 10.0);
        assert_eq!(sim.critical_path, vec![0, 3]);
        assert_eq!(sim.waves, vec![vec![0, 1, 2], vec![3, 4, 5]]);
    }

    #[test]
    fn independent_tasks_fill_workers() {
        let sim = simulate(&[5.0, 5.0, 5.0, 5.0], &vec![vec![]; 4], 4);
        assert_eq!(sim.makespan, 5.0);
        assert_eq!(sim.speedup(), 4.0);
        let one = simulate(&[5.0, 5.0], &vec![vec![]; 2], 1);
        assert_eq!(one.makespan, 10.0);
    }
}
