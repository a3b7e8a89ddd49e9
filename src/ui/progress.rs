//! Live progress of a run: one line per running task and an overall bar on a terminal
//! (indicatif, on stderr), plain narration lines otherwise, JSON lines on stdout with --json.

use crate::exec::orchestrator::Observer;
use crate::store::runs::{now, Event, Record, RunState, TaskStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;

pub enum Mode {
    Terminal,
    Plain,
    Json,
}

pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
    overall: Option<ProgressBar>,
    bars: HashMap<String, ProgressBar>,
    /// Set by `finish`: later events (the run's end) print no bars.
    done: bool,
}

impl Progress {
    pub fn new(json: bool) -> Self {
        use is_terminal::IsTerminal;
        let mode = if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && std::env::var_os("NO_PROGRESS").is_none() {
            Mode::Terminal
        } else {
            Mode::Plain
        };
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Terminal => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        Progress { mode, multi, overall: None, bars: HashMap::new(), done: false }
    }

    /// A line of narration: task reasons, tool names and notes carry agents' text, so every
    /// line is made safe for the terminal here.
    fn line(&self, text: &str) {
        let text = crate::ui::sanitize(text);
        let text = text.as_str();
        match self.mode {
            Mode::Terminal => {
                let _ = self.multi.println(text);
            }
            Mode::Plain | Mode::Json => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn task_line(state: &RunState, id: &str) -> String {
        let Some(t) = state.task(id) else { return id.to_string() };
        let elapsed = t.started_at.map(|s| ((now() - s) * 1000.0) as u64).unwrap_or(0);
        let mut parts = vec![format!("{:<16}", t.id), crate::ui::millis(elapsed)];
        if let Some(turns) = t.metrics.turns {
            parts.push(format!("{turns} turns"));
        }
        if let Some(tool) = &t.last_tool {
            parts.push(format!("last: {tool}"));
        }
        if !t.files_touched.is_empty() {
            parts.push(format!("{} files", t.files_touched.len()));
        }
        if let Some(c) = t.metrics.cost_usd {
            parts.push(format!("${c:.4}"));
        }
        // The last tool's name is the agent's text.
        crate::ui::sanitize(&parts.join("  "))
    }

    /// Stop drawing (before the summary is printed).
    pub fn finish(&mut self) {
        self.done = true;
        for (_, b) in self.bars.drain() {
            b.finish_and_clear();
        }
        if let Some(o) = self.overall.take() {
            o.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn event(&mut self, event: &Event, state: &RunState) {
        if let Mode::Json = self.mode {
            let rec = Record { at: now(), event: event.clone() };
            let mut line = serde_json::json!({ "run": state.id });
            if let (Some(obj), Ok(serde_json::Value::Object(ev))) = (line.as_object_mut(), serde_json::to_value(&rec)) {
                obj.extend(ev);
            }
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        if let (Mode::Terminal, false) = (&self.mode, self.done) {
            if self.overall.is_none() {
                let bar = self.multi.add(ProgressBar::new(state.tasks.len() as u64));
                bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} tasks  {elapsed}  {msg}").unwrap());
                self.overall = Some(bar);
            }
        }
        match event {
            Event::Started { task, attempt, .. } => {
                if let Mode::Terminal = self.mode {
                    let bar = self.multi.insert(0, ProgressBar::new_spinner());
                    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap());
                    bar.enable_steady_tick(std::time::Duration::from_millis(200));
                    bar.set_message(Self::task_line(state, task));
                    if let Some(old) = self.bars.insert(task.clone(), bar) {
                        old.finish_and_clear();
                    }
                } else if !matches!(self.mode, Mode::Json) {
                    // A start after a failed check is a fix round; otherwise a later try is a
                    // retry or a resume (not one of the task's attempts, `task@N`).
                    let checks = state.task(task).map(|t| t.checks.as_slice()).unwrap_or_default();
                    let again = match checks.last() {
                        Some(c) if !c.passed => format!(": fix round {}", checks.iter().filter(|c| !c.passed).count()),
                        _ if *attempt > 1 => format!(" (try {attempt})"),
                        _ => String::new(),
                    };
                    self.line(&format!("[{task}] started{again}"));
                }
            }
            Event::Retried { task, reason, delay_ms, .. } => {
                self.line(&format!("[{task}] retrying in {}: {reason}", crate::ui::millis(*delay_ms)))
            }
            Event::Finished { task, status, reason, wall_ms, .. } => {
                if let Some(b) = self.bars.remove(task) {
                    b.finish_and_clear();
                }
                let why = reason
                    .as_deref()
                    .filter(|_| *status != TaskStatus::Succeeded)
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                self.line(&format!("[{task}] {} in {}{why}", status.as_str(), crate::ui::millis(*wall_ms)));
            }
            Event::Skipped { task, reason } => self.line(&format!("[{task}] skipped: {reason}")),
            Event::Checked(c) => self.line(&format!("[{}] {}", c.task, c.line())),
            Event::Compared { task, attempts } => {
                let each: Vec<String> = attempts.iter().map(|a| a.describe()).collect();
                self.line(&crate::ui::sanitize(&format!("[{task}] attempts compared: {}", each.join("; "))))
            }
            _ => {}
        }
        if let Some(o) = &self.overall {
            o.set_position(state.counts().0 as u64);
        }
    }

    fn tick(&mut self, state: &RunState) {
        for (id, bar) in &self.bars {
            bar.set_message(Self::task_line(state, id));
        }
    }

    fn note(&mut self, text: &str) {
        self.line(text);
    }
}
