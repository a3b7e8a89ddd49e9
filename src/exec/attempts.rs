//! Attempts: a task with `attempts: N` runs as itself and `task@2` .. `task@N`, each in a
//! worktree of its own (`Plan::with_attempts`). This module decides, as each ends, what the
//! run records. By default the first attempt whose result stands (its check passed) wins and
//! gives the task its result; the others are stopped. With `--attempts-all` every attempt
//! finishes, and then the best wins: it passes its check, then merges cleanly on what is
//! already integrated, then changes the fewest lines, then comes first. Either way the task
//! fails only once every attempt has.

use super::task::Outcome;
use crate::plan::{attempt_of, Plan};
use crate::store::runs::{AttemptScore, RunState, TaskStatus};
use std::collections::{HashMap, HashSet};

/// What the orchestrator does with an ended attempt.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Outcomes to record, in order.
    pub record: Vec<Outcome>,
    /// Attempts to stop (running) or skip (not started), with why.
    pub stop: Vec<(String, String)>,
    /// The task's branch moves to the winning attempt's commit: (task, commit).
    pub branch: Option<(String, String)>,
    /// Where the task's own attempt's result stays when another attempt's wins: (branch name
    /// of that attempt, as a task id, `task@1`; commit).
    pub keep: Option<(String, String)>,
    /// How the attempts compared (`--attempts-all`): (task, each attempt), recorded first.
    pub compared: Option<(String, Vec<AttemptScore>)>,
    /// The task's own attempt ended after another had won: what it took (task, turns, cost),
    /// to add to the task's record (which holds the winner's result).
    pub spent: Option<(String, u64, Option<f64>)>,
}

/// What the arbiter asks of the run to weigh attempts that all ended.
pub trait Judge {
    /// How attempt `task` ended, as the run's log has it (None: it has not ended).
    fn ended(&self, task: &str) -> Option<Outcome>;
    /// The attempt weighed: its agent and check, and, when it succeeded with a result,
    /// whether that merges cleanly on what is integrated and how many lines it changes.
    /// `passed` and `winner` are the arbiter's to set.
    fn score(&mut self, o: &Outcome) -> AttemptScore;
}

/// A judge for a run whose tasks all take the first attempt that stands (nothing to weigh).
pub struct NoJudge;

impl Judge for NoJudge {
    fn ended(&self, _: &str) -> Option<Outcome> {
        None
    }
    fn score(&mut self, o: &Outcome) -> AttemptScore {
        AttemptScore { attempt: o.task.clone(), ..Default::default() }
    }
}

/// The run's judge: what its log recorded, and its repository to measure results in.
pub struct RunJudge<'a> {
    pub repo: &'a crate::repo::Repo,
    pub plan: &'a Plan,
    pub state: &'a RunState,
    /// What is integrated so far, made once per weighing (None inside: it could not be).
    integrated: Option<Option<gix::ObjectId>>,
}

impl<'a> RunJudge<'a> {
    pub fn new(repo: &'a crate::repo::Repo, plan: &'a Plan, state: &'a RunState) -> Self {
        RunJudge { repo, plan, state, integrated: None }
    }

    /// What is already integrated: the integration target as it stands (the run's own branch
    /// or `--into`, else the plan's base) with every task that succeeded so far merged onto
    /// it, in plan order, those that conflict left out (as integration would).
    fn integrated(&mut self) -> Option<gix::ObjectId> {
        if let Some(tip) = self.integrated {
            return tip;
        }
        let tip = integrated_so_far(self.repo, self.plan, self.state).ok();
        self.integrated = Some(tip);
        tip
    }
}

/// See [`RunJudge::integrated`].
fn integrated_so_far(repo: &crate::repo::Repo, plan: &Plan, state: &RunState) -> anyhow::Result<gix::ObjectId> {
    use super::merge::{self, Merge};
    use crate::store::{layout, objects};
    let target = match &state.options.into {
        Some(into) => crate::integrate::target_branch(repo, into)?,
        None => layout::integration_branch(&state.id),
    };
    let mut cur = match objects::read_ref(repo, &target)? {
        Some(tip) => tip,
        None => merge::commit_id(repo, &plan.base)?,
    };
    for t in plan.tasks.iter().filter(|t| !t.id.contains('@')) {
        let Some(st) = state.task(&t.id).filter(|s| s.status == TaskStatus::Succeeded) else { continue };
        let (Some(commit), Some(from)) = (&st.commit, &st.start_commit) else { continue };
        let (commit, from) = (merge::commit_id(repo, commit)?, merge::commit_id(repo, from)?);
        if let Merge::Clean(tree) = merge::merge_onto(repo, from, cur, commit)? {
            cur = objects::write_commit(repo, tree, &[cur, commit], &format!("what is integrated so far: {}\n", t.id))?;
        }
    }
    Ok(cur)
}

/// Lines added plus removed from `from` to `to` (a binary file counts as one).
pub fn lines_changed(repo: &crate::repo::Repo, from: &str, to: &str) -> anyhow::Result<u64> {
    let out = repo.git([
        "diff",
        "--numstat",
        "--no-renames",
        "--no-textconv",
        "--no-ext-diff",
        "--end-of-options",
        from,
        to,
    ])?;
    Ok(out
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let mut n = |_| f.next().and_then(|v| v.parse::<u64>().ok());
            match (n(0), n(1)) {
                (Some(a), Some(d)) => a + d,
                _ => 1,
            }
        })
        .sum())
}

impl Judge for RunJudge<'_> {
    fn ended(&self, task: &str) -> Option<Outcome> {
        let t = self.state.task(task).filter(|t| t.status.is_final())?;
        Some(Outcome {
            task: t.id.clone(),
            status: t.status,
            commit: t.commit.clone(),
            reason: t.reason.clone(),
            exit_code: t.exit_code,
            metrics: t.metrics.clone(),
            files_changed: t.files_changed.clone(),
            wall_ms: t.wall_ms,
            ..Default::default()
        })
    }

    fn score(&mut self, o: &Outcome) -> AttemptScore {
        let st = self.state.task(&o.task);
        let mut s = AttemptScore {
            attempt: o.task.clone(),
            agent: st.and_then(|t| t.agent.clone()),
            check: st.and_then(|t| t.checks.last()).map(|c| c.passed),
            ..Default::default()
        };
        let from = st.and_then(|t| t.start_commit.clone());
        if let (TaskStatus::Succeeded, Some(commit), Some(from)) = (o.status, &o.commit, from) {
            s.lines = lines_changed(self.repo, &from, commit).ok();
            s.merges_cleanly = self.integrated().and_then(|tip| {
                let ids = (super::merge::commit_id(self.repo, &from), super::merge::commit_id(self.repo, commit));
                let (from, commit) = (ids.0.ok()?, ids.1.ok()?);
                let m = super::merge::merge_onto(self.repo, from, tip, commit).ok()?;
                Some(matches!(m, super::merge::Merge::Clean(_)))
            });
        }
        s
    }
}

#[derive(Debug, Default)]
pub struct Arbiter {
    /// Task → all its attempts, itself first.
    groups: HashMap<String, Vec<String>>,
    /// Tasks whose attempts all finish before one wins (`--attempts-all`, `attempts_all:`).
    all: HashSet<String>,
    winner: HashMap<String, String>,
    /// Task → its winning attempt's commit, when that was another attempt's.
    won_commit: HashMap<String, String>,
    /// The task's own attempt ended while others could still win.
    held: HashMap<String, Outcome>,
}

/// The attempt that wins among `scores` (in attempt order): it passed, then merges cleanly,
/// then changes the fewest lines, then comes first. None when none passed.
pub fn pick(scores: &[AttemptScore]) -> Option<usize> {
    scores
        .iter()
        .enumerate()
        .filter(|(_, s)| s.passed)
        .min_by_key(|(i, s)| (s.merges_cleanly == Some(false), s.lines.unwrap_or(u64::MAX), *i))
        .map(|(i, _)| i)
}

impl Arbiter {
    /// `attempts_all`: the run's default for tasks whose front matter does not say.
    pub fn new(plan: &Plan, state: &RunState, attempts_all: bool) -> Arbiter {
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for t in &plan.tasks {
            let (base, _) = attempt_of(&t.id);
            groups.entry(base.to_string()).or_default().push(t.id.clone());
        }
        groups.retain(|_, members| members.len() > 1);
        let all = groups
            .keys()
            .filter(|g| plan.task(g).and_then(|t| t.attempts_all).unwrap_or(attempts_all))
            .cloned()
            .collect();
        // A resumed run: a task already decided stays so.
        let winner = groups
            .keys()
            .filter(|g| state.task(g).is_some_and(|t| t.status.is_final()))
            .map(|g| (g.clone(), g.clone()))
            .collect();
        Arbiter { groups, all, winner, won_commit: HashMap::new(), held: HashMap::new() }
    }

    /// Whether `task` has several attempts and its result is decided: what its own attempt
    /// still reports (it is being stopped, or it started late) no longer describes the task.
    pub fn decided(&self, task: &str) -> bool {
        self.winner.contains_key(task)
    }

    /// `o` ended an attempt (or a task without attempts); `unfinished(id)`: that attempt may
    /// still end (running, or not started).
    pub fn arbitrate(&mut self, o: Outcome, unfinished: impl Fn(&str) -> bool, judge: &mut dyn Judge) -> Verdict {
        let (base, _) = attempt_of(&o.task);
        let base = base.to_string();
        let Some(members) = self.groups.get(&base).cloned() else {
            return Verdict { record: vec![o], ..Default::default() };
        };
        let is_base = o.task == base;
        if self.winner.contains_key(&base) {
            // Decided already: the task's own late end (stopped for the winner) is not news,
            // but what it committed on the task's branch on its way out is put aside for the
            // winner's result again.
            if !is_base {
                return Verdict { record: vec![o], ..Default::default() };
            }
            // What it took until it was stopped is still the task's.
            let spent = Some((base.clone(), o.metrics.turns.unwrap_or(0), o.metrics.cost_usd))
                .filter(|(_, turns, cost)| *turns > 0 || cost.is_some());
            let Some(won) = self.won_commit.get(&base).cloned() else { return Verdict { spent, ..Default::default() } };
            let keep = o.commit.filter(|c| *c != won).map(|c| (format!("{base}@1"), c));
            return Verdict { branch: Some((base, won)), keep, spent, ..Default::default() };
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
        let all = self.all.contains(&base);
        if o.status == TaskStatus::Succeeded && !all {
            self.winner.insert(base.clone(), o.task.clone());
            let own = self.held.remove(&base);
            let why = format!("attempt {} won", o.task);
            let stop = others(&o.task).into_iter().map(|m| (m, why.clone())).collect();
            if is_base {
                return Verdict { record: vec![o], stop, ..Default::default() };
            }
            let won = won_by(&base, &o, why, own.as_ref().map(|x| &x.metrics));
            let branch = o.commit.clone().map(|c| (base.clone(), c));
            if let Some(c) = &o.commit {
                self.won_commit.insert(base.clone(), c.clone());
            }
            return Verdict { record: vec![o, won], stop, branch, ..Default::default() };
        }
        if !others(&o.task).is_empty() {
            // Others may still end: the task's own end waits; an attempt's is recorded.
            if is_base {
                self.held.insert(base, o);
                return Verdict::default();
            }
            return Verdict { record: vec![o], ..Default::default() };
        }
        if all {
            return self.weigh(o, &base, &members, judge);
        }
        // The last attempt ended and none stood: the task fails, saying so.
        let n = members.len();
        let mut record = Vec::new();
        let own = self.held.remove(&base);
        let failed = failure(&base, n, own, o, &mut record);
        record.push(failed);
        Verdict { record, ..Default::default() }
    }

    /// Every attempt of `base` has ended (`o` last): weigh them, and give the task the best.
    fn weigh(&mut self, o: Outcome, base: &str, members: &[String], judge: &mut dyn Judge) -> Verdict {
        let is_base = o.task == base;
        let own = if is_base { None } else { self.held.remove(base) };
        let outcomes: Vec<Option<Outcome>> = members
            .iter()
            .map(|m| match m {
                m if *m == o.task => None,
                m if m == base => own.as_ref().map(copy),
                m => judge.ended(m),
            })
            .collect();
        let mut scores: Vec<AttemptScore> = members
            .iter()
            .zip(&outcomes)
            .map(|(m, x)| {
                let blank = Outcome { task: m.clone(), status: TaskStatus::Skipped, ..Default::default() };
                let x = if *m == o.task { &o } else { x.as_ref().unwrap_or(&blank) };
                let passed = x.status == TaskStatus::Succeeded && x.commit.is_some();
                let mut s = judge.score(x);
                s.attempt = m.clone();
                s.passed = passed;
                if !passed {
                    (s.merges_cleanly, s.lines) = (None, None);
                }
                s
            })
            .collect();
        let n = members.len();
        let Some(w) = pick(&scores) else {
            self.winner.insert(base.to_string(), base.to_string());
            let mut record = Vec::new();
            let failed = failure(base, n, own, o, &mut record);
            record.push(failed);
            return Verdict { record, compared: Some((base.to_string(), scores)), ..Default::default() };
        };
        scores[w].winner = true;
        let winner = members[w].clone();
        self.winner.insert(base.to_string(), winner.clone());
        let passing = scores.iter().filter(|s| s.passed).count();
        let why = format!(
            "attempt {winner} won ({} of {n} passed; the best: {})",
            passing,
            scores[w].describe().split_once(": ").map_or("", |(_, d)| d)
        );
        let compared = Some((base.to_string(), scores));
        // The task's own attempt: `o` when it ended last, else held.
        let (mut record, own) = if is_base { (Vec::new(), Some(o)) } else { (vec![o], own) };
        if winner == base {
            let mut own = own.unwrap_or_default();
            own.reason = Some(why);
            record.push(own);
            return Verdict { record, compared, ..Default::default() };
        }
        let won_outcome = match outcomes[w].as_ref() {
            Some(x) => copy(x),
            // The winner is the attempt that ended last: recorded above.
            None => copy(record.iter().find(|r| r.task == winner).expect("the last attempt is recorded")),
        };
        let keep = own.as_ref().and_then(|x| x.commit.clone()).map(|c| (format!("{base}@1"), c));
        let won = won_by(base, &won_outcome, why, own.as_ref().map(|x| &x.metrics));
        let branch = won_outcome.commit.clone().map(|c| (base.to_string(), c));
        record.push(won);
        Verdict { record, branch, keep, compared, ..Default::default() }
    }
}

/// An outcome's record, without its logs (those are stored once, with the attempt).
fn copy(o: &Outcome) -> Outcome {
    Outcome {
        task: o.task.clone(),
        status: o.status,
        commit: o.commit.clone(),
        reason: o.reason.clone(),
        exit_code: o.exit_code,
        metrics: o.metrics.clone(),
        files_changed: o.files_changed.clone(),
        wall_ms: o.wall_ms,
        ..Default::default()
    }
}

/// The task's outcome given by its winning attempt `o`. Its turns and cost are its own
/// attempt's (`own`; none yet when that has not ended: they come when it does, see
/// `Verdict::spent`): the winner's are counted with the winner, once.
fn won_by(base: &str, o: &Outcome, why: String, own: Option<&crate::store::runs::Metrics>) -> Outcome {
    let mut won = copy(o);
    won.task = base.to_string();
    won.reason = Some(format!("{why} (its result, on this task's branch)"));
    won.metrics.cost_usd = own.and_then(|m| m.cost_usd);
    won.metrics.turns = own.and_then(|m| m.turns);
    won
}

/// The task's failure once none of its `n` attempts stood: its own attempt's end (`own`, or
/// `o` when that is it), with why. Pushes `o` to `record` when it is another attempt's.
fn failure(base: &str, n: usize, own: Option<Outcome>, o: Outcome, record: &mut Vec<Outcome>) -> Outcome {
    let mut last = match own {
        Some(own) => {
            record.push(o);
            own
        }
        None if o.task == base => o,
        None => {
            record.push(o);
            Outcome { task: base.to_string(), status: TaskStatus::Failed, ..Default::default() }
        }
    };
    last.status = if last.status == TaskStatus::Succeeded { TaskStatus::Failed } else { last.status };
    last.reason = Some(format!("none of its {n} attempts succeeded; its own: {}", last.reason.unwrap_or_default()));
    last
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
        let v = a.arbitrate(out("a@2", TaskStatus::Failed), |_| true, &mut NoJudge);
        assert_eq!(v.record.len(), 1);
        // The task's own attempt fails while a@3 runs: held back.
        let v = a.arbitrate(out("a", TaskStatus::Failed), |m| m == "a@3", &mut NoJudge);
        assert!(v.record.is_empty());
        // a@3 succeeds: it and the task are recorded, the task with a@3's commit.
        let v = a.arbitrate(out("a@3", TaskStatus::Succeeded), |_| false, &mut NoJudge);
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a@3", "a"]);
        assert_eq!(v.record[1].commit.as_deref(), Some("c-a@3"));
        assert_eq!(v.branch, Some(("a".into(), "c-a@3".into())));
    }

    #[test]
    fn a_winner_stops_the_others_and_their_late_ends_change_nothing() {
        let mut a = arbiter(&["a", "a@2", "a@3"]);
        let v = a.arbitrate(out("a@2", TaskStatus::Succeeded), |m| m != "a@2", &mut NoJudge);
        assert_eq!(v.stop.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(), ["a", "a@3"]);
        // The task's own attempt, stopped, ends: nothing to record for the task, but what it
        // committed on the task's branch on its way out makes way for the winner's again.
        let v = a.arbitrate(out("a", TaskStatus::Failed), |_| false, &mut NoJudge);
        assert!(v.record.is_empty());
        assert_eq!(v.branch, Some(("a".into(), "c-a@2".into())));
        assert_eq!(v.keep, Some(("a@1".into(), "c-a".into())));
        assert!(a.decided("a") && !a.decided("a@3"));
        assert_eq!(a.arbitrate(out("a@3", TaskStatus::Failed), |_| false, &mut NoJudge).record.len(), 1);
    }

    #[test]
    fn a_held_own_attempt_is_not_waited_for_though_the_log_says_running() {
        let mut a = arbiter(&["a", "a@2"]);
        // The task's own attempt fails first; the log still reads "running" for it.
        assert!(a.arbitrate(out("a", TaskStatus::Failed), |_| true, &mut NoJudge).record.is_empty());
        let v = a.arbitrate(out("a@2", TaskStatus::Failed), |m| m == "a", &mut NoJudge);
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a@2", "a"]);
    }

    #[test]
    fn the_task_fails_once_every_attempt_has() {
        let mut a = arbiter(&["a", "a@2"]);
        assert!(a.arbitrate(out("a", TaskStatus::Failed), |m| m == "a@2", &mut NoJudge).record.is_empty());
        let v = a.arbitrate(out("a@2", TaskStatus::Failed), |_| false, &mut NoJudge);
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a@2", "a"]);
        assert_eq!(v.record[1].status, TaskStatus::Failed);
        assert!(v.record[1].reason.as_deref().unwrap().starts_with("none of its 2 attempts succeeded"));
    }

    /// Scores from a table: (task, lines, merges cleanly).
    struct Table(Vec<(&'static str, u64, bool)>, HashMap<String, Outcome>);

    impl Judge for Table {
        fn ended(&self, task: &str) -> Option<Outcome> {
            self.1.get(task).map(copy)
        }
        fn score(&mut self, o: &Outcome) -> AttemptScore {
            let (_, lines, clean) = self.0.iter().find(|(t, _, _)| *t == o.task).copied().unwrap_or(("", 0, true));
            AttemptScore {
                agent: Some("claude".into()),
                lines: Some(lines),
                merges_cleanly: Some(clean),
                ..Default::default()
            }
        }
    }

    fn all(members: &[&str]) -> Arbiter {
        let mut a = arbiter(members);
        a.all.insert("a".into());
        a
    }

    #[test]
    fn pick_prefers_passing_then_clean_then_small_then_first() {
        let s = |passed, clean, lines| AttemptScore {
            passed,
            merges_cleanly: Some(clean),
            lines: Some(lines),
            ..Default::default()
        };
        assert_eq!(pick(&[s(false, true, 1), s(true, true, 9), s(true, true, 5)]), Some(2));
        assert_eq!(pick(&[s(true, true, 9), s(true, false, 2), s(true, true, 9)]), Some(0));
        assert_eq!(pick(&[s(true, false, 9), s(true, false, 2)]), Some(1));
        assert_eq!(pick(&[s(false, true, 1)]), None);
    }

    #[test]
    fn with_attempts_all_every_attempt_ends_and_the_smallest_clean_one_wins() {
        let mut a = all(&["a", "a@2", "a@3"]);
        let mut j = Table(vec![("a", 30, true), ("a@2", 5, false), ("a@3", 12, true)], HashMap::new());
        // a@2 passes first: recorded, nobody stopped, nothing decided.
        let v = a.arbitrate(out("a@2", TaskStatus::Succeeded), |_| true, &mut j);
        assert_eq!((v.record.len(), v.stop.len(), v.compared.is_none()), (1, 0, true));
        j.1.insert("a@2".into(), out("a@2", TaskStatus::Succeeded));
        // The task's own attempt passes: held.
        assert!(a.arbitrate(out("a", TaskStatus::Succeeded), |m| m == "a@3", &mut j).record.is_empty());
        // a@3 ends last: a@2 is smaller but conflicts, so a@3 wins; the task's own result is kept.
        let v = a.arbitrate(out("a@3", TaskStatus::Succeeded), |_| false, &mut j);
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a@3", "a"]);
        assert_eq!(v.record[1].commit.as_deref(), Some("c-a@3"));
        assert!(
            v.record[1].reason.as_deref().unwrap().starts_with("attempt a@3 won (3 of 3 passed"),
            "{:?}",
            v.record[1].reason
        );
        assert_eq!(v.branch, Some(("a".into(), "c-a@3".into())));
        assert_eq!(v.keep, Some(("a@1".into(), "c-a".into())));
        let (task, scores) = v.compared.unwrap();
        assert_eq!(task, "a");
        assert_eq!(scores.iter().map(|s| s.winner).collect::<Vec<_>>(), [false, false, true]);
        assert_eq!(scores[1].describe(), "a@2 (claude): succeeded, conflicts, 5 lines");
    }

    #[test]
    fn with_attempts_all_the_tasks_own_attempt_can_win_and_failures_are_not_weighed() {
        let mut a = all(&["a", "a@2"]);
        let mut j = Table(vec![("a", 3, true), ("a@2", 1, true)], HashMap::new());
        assert_eq!(a.arbitrate(out("a@2", TaskStatus::Failed), |_| true, &mut j).record.len(), 1);
        j.1.insert("a@2".into(), out("a@2", TaskStatus::Failed));
        let v = a.arbitrate(out("a", TaskStatus::Succeeded), |_| false, &mut j);
        assert_eq!(v.record.iter().map(|o| o.task.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(v.record[0].status, TaskStatus::Succeeded);
        assert_eq!((v.branch, v.keep), (None, None));
        let scores = v.compared.unwrap().1;
        assert_eq!((scores[1].passed, scores[1].lines), (false, None));
        // None passes: the task fails, and the comparison says so.
        let mut a = all(&["a", "a@2"]);
        a.arbitrate(out("a", TaskStatus::Failed), |_| true, &mut j);
        let v = a.arbitrate(out("a@2", TaskStatus::Failed), |_| false, &mut j);
        assert_eq!(v.record.last().unwrap().status, TaskStatus::Failed);
        assert!(v.compared.unwrap().1.iter().all(|s| !s.winner));
    }
}
