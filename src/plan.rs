//! The plan: prompts analysed into a DAG with estimates and a simulated schedule.
//! Built here from prompts and the repository; stored by `store::plans`.

use crate::analysis::{dag, estimate, imports};
use crate::error::usage;
use crate::prompt::{self, infer::TrackedFiles, Prompt, TaskType};
use crate::repo::Repo;
use crate::schedule::simulate;
use crate::store::layout;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlannedTask {
    pub id: String,
    pub title: String,
    /// The prompt file it came from, relative to the repository.
    pub source: String,
    #[serde(rename = "type")]
    pub kind: TaskType,
    /// Whether `type` came from front matter (true) or classification.
    pub type_from_front_matter: bool,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    pub files: Vec<String>,
    /// Explicit dependencies.
    pub depends_on: Vec<String>,
    /// Ordering edges added to serialize hard conflicts.
    pub after: Vec<String>,
    pub estimate_min: f64,
    pub estimate_source: estimate::Source,
    /// Simulated start and finish, minutes from the start of the run.
    pub start_min: f64,
    pub finish_min: f64,
}

impl PlannedTask {
    /// Every task this one waits for.
    pub fn preds(&self) -> impl Iterator<Item = &String> {
        self.depends_on.iter().chain(self.after.iter())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Schedule {
    pub workers: usize,
    pub sequential_min: f64,
    pub parallel_min: f64,
    pub speedup: f64,
    pub lower_bound_min: f64,
    pub critical_path: Vec<String>,
    pub critical_path_min: f64,
    /// For display only: the scheduler never waits for a wave.
    pub waves: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub version: u32,
    /// Stored plan id; empty for a dry run.
    #[serde(default)]
    pub id: String,
    /// The commit the tasks start from.
    pub base: String,
    pub allow_conflicts: bool,
    pub tasks: Vec<PlannedTask>,
    pub conflicts: Vec<dag::Conflict>,
    pub import_edges: usize,
    pub schedule: Schedule,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn task(&self, id: &str) -> Option<&PlannedTask> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// Predecessor index lists, in task order.
    pub fn pred_indices(&self) -> Vec<Vec<usize>> {
        let index: std::collections::HashMap<&str, usize> =
            self.tasks.iter().enumerate().map(|(i, t)| (t.id.as_str(), i)).collect();
        self.tasks.iter().map(|t| t.preds().filter_map(|p| index.get(p.as_str()).copied()).collect()).collect()
    }
}

/// Options of planning.
#[derive(Debug, Clone)]
pub struct Options {
    pub workers: usize,
    pub allow_conflicts: bool,
}

/// Collect prompt files from files and directories (`*.md` in the folder and its subfolders,
/// sorted, README.md left out), each checked to lie inside the repository.
pub fn collect_prompt_files(repo: &Repo, paths: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    for p in paths {
        let rel = repo.relative(p).ok_or_else(|| {
            usage(format!("{}: prompt path is outside the repository {}", p.display(), repo.workdir.display()))
        })?;
        let abs = repo.workdir.join(&rel);
        if abs.is_dir() {
            let mut found = Vec::new();
            walk_md(&abs, &mut found).with_context(|| format!("cannot read {}", p.display()))?;
            if found.is_empty() {
                return Err(usage(format!("{}: no prompt files (*.md) in this folder", p.display())));
            }
            found.sort();
            for f in found {
                let r = f.strip_prefix(&repo.workdir).unwrap_or(&f).to_path_buf();
                out.push((f, r));
            }
        } else if abs.is_file() {
            out.push((abs, rel));
        } else {
            return Err(usage(format!("{}: no such file or directory", p.display())));
        }
    }
    out.dedup();
    // A prompt goes to the model: one that leaves the repository through a symlink (say to
    // /etc/passwd or ~/.ssh) is refused, not read.
    let root = repo.workdir.canonicalize().unwrap_or_else(|_| repo.workdir.clone());
    for (abs, rel) in &out {
        let real = abs.canonicalize().with_context(|| format!("cannot read {}", rel.display()))?;
        if !real.starts_with(&root) {
            return Err(usage(format!(
                "{}: prompt file resolves outside the repository (to {})",
                rel.display(),
                real.display()
            )));
        }
    }
    Ok(out)
}

fn walk_md(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk_md(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            // README.md in a prompt folder describes the folder, it is not a task.
            if !name.eq_ignore_ascii_case("README.md") {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// Read and parse prompt files in parallel.
pub fn read_prompts(files: &[(PathBuf, PathBuf)]) -> Result<Vec<Prompt>> {
    files
        .par_iter()
        .map(|(abs, rel)| {
            let bytes = std::fs::read(abs).with_context(|| format!("cannot read {}", rel.display()))?;
            prompt::parse(&bytes, rel)
        })
        .collect()
}

/// The tracked files (from the index) and the contents the import graph needs, read in parallel.
pub fn repository_files(repo: &Repo) -> Result<(TrackedFiles, imports::ImportGraph)> {
    let index = repo.gix.index_or_load_from_head().context("cannot read the index")?;
    let mut paths = Vec::with_capacity(index.entries().len());
    let mut wanted = Vec::new();
    for e in index.entries() {
        if e.stage_raw() != 0 {
            continue;
        }
        let path = e.path(&index).to_string();
        if imports::wants(&path) {
            wanted.push((path.clone(), e.id));
        }
        paths.push(path);
    }
    let sync = repo.gix.clone().into_sync();
    let contents: Vec<(String, Vec<u8>)> = wanted
        .par_iter()
        .map_init(
            || sync.to_thread_local(),
            |r, (path, id)| r.find_object(*id).ok().map(|o| (path.clone(), o.detach().data)),
        )
        .flatten()
        .collect();
    let tracked = TrackedFiles::new(paths);
    let graph = imports::build(&tracked.paths, &contents);
    Ok((tracked, graph))
}

/// Build a plan from parsed prompts against the repository at `base`.
pub fn build(
    prompts: &[Prompt],
    tracked: &TrackedFiles,
    graph: &imports::ImportGraph,
    history: &estimate::History,
    base: &str,
    opts: &Options,
) -> Result<Plan> {
    if prompts.is_empty() {
        return Err(usage("no prompts to plan"));
    }
    let mut warnings: Vec<String> = prompts.iter().flat_map(|p| p.warnings.iter().cloned()).collect();
    for p in prompts {
        if p.id == layout::INTEGRATION {
            return Err(usage(format!(
                "{}: task id `integration` is reserved for the integration branch; set another `id:`",
                p.path.display()
            )));
        }
    }
    // Files per task: explicit `files:` win, else inferred from the text.
    let files: Vec<Vec<String>> = prompts
        .par_iter()
        .map(|p| {
            let shown = p.path.display().to_string();
            if p.files.is_empty() {
                prompt::infer::files_in_text(&p.body, tracked)
            } else {
                prompt::infer::explicit_files(&p.files, tracked, &shown)
            }
        })
        .collect::<Result<_>>()?;
    let nodes: Vec<dag::Node> = prompts
        .iter()
        .zip(&files)
        .map(|(p, f)| dag::Node {
            id: p.id.clone(),
            files: f.clone(),
            depends_on: p.depends_on.clone(),
            priority: p.priority,
            source: p.path.display().to_string(),
        })
        .collect();
    let dag = dag::build(&nodes, graph, opts.allow_conflicts)?;
    for c in dag.conflicts.iter().filter(|c| c.kind == dag::ConflictKind::Hard && !c.serialized && opts.allow_conflicts)
    {
        warnings.push(format!(
            "{} and {} both touch {} (not serialized: --allow-conflicts)",
            c.a,
            c.b,
            c.files.join(", ")
        ));
    }

    let mut tasks: Vec<PlannedTask> = prompts
        .iter()
        .zip(&files)
        .enumerate()
        .map(|(i, (p, f))| {
            let kind = p.kind.unwrap_or_else(|| prompt::classify::classify(&p.title, &p.body));
            let words = p.body.split_whitespace().count();
            let (estimate_min, estimate_source) = estimate::estimate(kind, f.len(), words, p.estimate_min, history);
            PlannedTask {
                id: p.id.clone(),
                title: p.title.clone(),
                source: p.path.display().to_string(),
                kind,
                type_from_front_matter: p.kind.is_some(),
                priority: p.priority,
                agent: p.agent.clone(),
                timeout_secs: p.timeout_secs,
                files: f.clone(),
                depends_on: dag.explicit[i].iter().map(|&j| dag.ids[j].clone()).collect(),
                after: dag.ordering[i].iter().map(|&j| dag.ids[j].clone()).collect(),
                estimate_min,
                estimate_source,
                start_min: 0.0,
                finish_min: 0.0,
            }
        })
        .collect();
    let durations: Vec<f64> = tasks.iter().map(|t| t.estimate_min).collect();
    let preds: Vec<Vec<usize>> = (0..tasks.len()).map(|i| dag.preds(i).collect()).collect();
    let sim = simulate::simulate(&durations, &preds, opts.workers);
    for (t, s) in tasks.iter_mut().zip(&sim.slots) {
        t.start_min = s.start;
        t.finish_min = s.finish;
    }
    let name = |i: &usize| dag.ids[*i].clone();
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let schedule = Schedule {
        workers: sim.workers,
        sequential_min: round(sim.sequential),
        parallel_min: round(sim.makespan),
        speedup: (sim.speedup() * 100.0).round() / 100.0,
        lower_bound_min: round(sim.lower_bound),
        critical_path: sim.critical_path.iter().map(name).collect(),
        critical_path_min: round(sim.critical_path_length),
        waves: sim.waves.iter().map(|w| w.iter().map(name).collect()).collect(),
    };
    Ok(Plan {
        version: VERSION,
        id: String::new(),
        base: base.to_string(),
        allow_conflicts: opts.allow_conflicts,
        tasks,
        conflicts: dag.conflicts,
        import_edges: graph.edge_count(),
        schedule,
        warnings,
    })
}
