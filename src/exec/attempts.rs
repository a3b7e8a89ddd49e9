//! Attempts: a task with `attempts: N` runs as itself and `task@2` .. `task@N`, each in a
//! worktree of its own (`Plan::with_attempts`). This module decides, as each ends, what the
//! run records: the first attempt whose result stands (its check passed) wins and gives the
//! task its result; the others are stopped; the task fails only once every attempt has.

use super::task::Outcome;
use crate::plan::{attempt_of, Plan};
use crate::store::runs::{RunState, TaskStatus};
use std::collections::HashMap;

/// What the orchestrator does with an ended attempt.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Outcomes to record, in order.
    pub record: Vec<Outcome>,
    /// Attempts to stop (running) or skip (not started), with why.
    pub stop: Vec<(String, String)>,
    /// The task's branch moves to the winning attempt's commit: (task, commit).
    pub branch: Option<(String, String)>,
}

#[derive(Debug, Default)]
pub struct Arbiter {
    /// Task → all its attempts, itself first.
    groups: HashMap<String, Vec<String>>,
    winner: HashMap<String, String>,
    /// The task's own attempt failed while others could still win.
    held: HashMap<String, Outcome>,
}

impl Arbiter {
    pub fn new(plan: &Plan, state: &RunState) -> Arbiter {
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for t in &plan.tasks {
            let (base, _) = attempt_of(&t.id);
            groups.entry(base.to_string()).or_default().push(t.id.clone());
        }
        groups.retain(|_, members| members.len() > 1);
        // A resumed run: a task already decided stays so.
        let winner = groups
            .keys()
            .filter(|g| state.task(g).is_some_and(|t| t.status.is_final()))
            .map(|g| (g.clone(), g.clone()))
            .collect();
        Arbiter { groups, winner, held: HashMap::new() }
    }

    /// `o` ended an attempt (or a task without attempts); `unfinished(id)`: that attempt may
    /// still end (running, or not started).
    pub fn arbitrate(&mut self, o: Outcome, unfinished: impl Fn(&str) -> bool) -> Verdict {
        let (base, _) = attempt_of(&o.task);
        let base = base.to_string();
        let Some(members) = self.groups.get(&base).cloned() else {
            return Verdict { record: vec![o], ..Default::default() };
        };
        let is_base = o.task == base;
        if self.winner.contains_key(&base) {
            // Decided already: the task's own late end (stopped for the winner) is not news.
            return Verdict { record: if is_base { vec![] } else { vec![o] }, ..Default::default() };
        }
        // The task's own attempt, once held, has ended whatever the log still says.
        let held = self.held.contains_key(&base);
        let others = |me: &str| {
            members
                .iter()
                .filter(|m| m.as_str() != me && !(held && **m == base) && unfinished(m))
                .cloned()
                .collect::<Vec<_>>()
        };
        if o.status == TaskStatus::Succeeded {
            self.winner.insert(base.clone(), o.task.clone());
            self.held.remove(&base);
            let why = format!("attempt {} won", o.task);
            let stop = others(&o.task).into_iter().map(|m| (m, why.clone())).collect();
            if is_base {
                return Verdict { record: vec![o], stop, branch: None };
            }
            let mut won = Outcome {
                task: base.clone(),
                status: o.status,
                commit: o.commit.clone(),
                reason: Some(format!("{why} (its result, on this task's branch)")),
                exit_code: o.exit_code,
                metrics: o.metrics.clone(),
                files_changed: o.files_changed.clone(),
                wall_ms: o.wall_ms,
                ..Default::default()
            };
            won.metrics.cost_usd = None;
            let branch = o.commit.clone().map(|c| (base.clone(), c));
            return Verdict { record: vec![o, won], stop, branch };
        }
        if !others(&o.task).is_empty() {
            // Others may still win: the task's own failure waits; an attempt's is recorded.
            if is_base {
                self.held.insert(base, o);
                return Verdict::default();
            }
            return Verdict { record: vec![o], ..Default::default() };
        }
        // The last attempt ended and none stood: the task fails, saying so.
        let n = members.len();
        let mut record = Vec::new();
        let mut last = match self.held.remove(&base) {
            Some(own) => {
                record.push(o);
                own
            }
            None if is_base => o,
            None => {
                record.push(o);
                Outcome { task: base.clone(), status: TaskStatus::Failed, ..Default::default() }
            }
        };
        last.reason = Some(format!("none of its {n} attempts succeeded; its own: {}", last.reason.unwrap_or_default()));
        record.push(last);
        Verdict { record, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(task: &str, status: TaskStatus) -> Outcome {
        Outcome { task: task.into(), status, commit: Some(format!("c-{task}")), ..Default::default() }
    }

    fn arbiter(members: &[&str]) -> Arbiter {
        Arbiter {
            groups: HashMap::from([("a".to_string(), members.iter().map(|s| s.to_string()).collect())]),
            ..Default::default()
        }
    }

    #[test]
    fn the_first_attempt_that_stands_wins_and_gives_the_task_its_result() {
        let mut a = arbiter(&["a", "a@2", "a@3"]);
        // a@2 fails first: recorded, nothing decided.
        let v = a.arbitrate(out("a@2", TaskStatus::Failed), |_| true);
        assert_eq!(v.record.len(), 1);
        // The task's own attempt fails while a@3 runs: held back.
        let v = a.arbitrate(out("a", TaskStatus::Failed), |m| m == "a@3");
        assert!(v.record.is_empty());
        // a@3 succeeds: it and the task are recorded, the task with a@3's commit.
        let v = a.arbitrate(out("a@3", TaskStatus::Succeeded), |_| false);
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a@3", "a"]);
        assert_eq!(v.record[1].commit.as_deref(), Some("c-a@3"));
        assert_eq!(v.branch, Some(("a".into(), "c-a@3".into())));
    }

    #[test]
    fn a_winner_stops_the_others_and_their_late_ends_change_nothing() {
        let mut a = arbiter(&["a", "a@2", "a@3"]);
        let v = a.arbitrate(out("a@2", TaskStatus::Succeeded), |m| m != "a@2");
        assert_eq!(v.stop.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(), ["a", "a@3"]);
        // The task's own attempt, stopped, ends: nothing to record for the task.
        assert!(a.arbitrate(out("a", TaskStatus::Failed), |_| false).record.is_empty());
        assert_eq!(a.arbitrate(out("a@3", TaskStatus::Failed), |_| false).record.len(), 1);
    }

    #[test]
    fn a_held_own_attempt_is_not_waited_for_though_the_log_says_running() {
        let mut a = arbiter(&["a", "a@2"]);
        // The task's own attempt fails first; the log still reads "running" for it.
        assert!(a.arbitrate(out("a", TaskStatus::Failed), |_| true).record.is_empty());
        let v = a.arbitrate(out("a@2", TaskStatus::Failed), |m| m == "a");
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a@2", "a"]);
    }

    #[test]
    fn the_task_fails_once_every_attempt_has() {
        let mut a = arbiter(&["a", "a@2"]);
        assert!(a.arbitrate(out("a", TaskStatus::Failed), |m| m == "a@2").record.is_empty());
        let v = a.arbitrate(out("a@2", TaskStatus::Failed), |_| false);
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a@2", "a"]);
        assert_eq!(v.record[1].status, TaskStatus::Failed);
        assert!(v.record[1].reason.as_deref().unwrap().starts_with("none of its 2 attempts succeeded"));
    }
}
