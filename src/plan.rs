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
    /// What a classified type rests on: the rules, the learned model alone (a guess: set `type:`
    /// where it matters), or nothing (`other`). None for front matter, and in older plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_basis: Option<prompt::classify::Basis>,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// The task's own check command (front matter `check:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The forge issue it comes from (front matter `issue:`): its pull request closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<u64>,
    /// Independent attempts at it (front matter `attempts:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Agent profiles its attempts take in turn (front matter `agents:`): attempt i runs
    /// `agents[(i-1) % len]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// Every attempt finishes and the best result wins (front matter `attempts_all:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_all: Option<bool>,
    /// The most turns its agent may take (front matter `max_turns:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
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
/// sorted, README.md left out), each checked by [`prompt_file`]. Returns (the path to read,
/// the path relative to the working tree for messages).
pub fn collect_prompt_files(repo: &Repo, paths: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    for p in paths {
        let outside =
            || usage(format!("{}: prompt path is outside the repository {}", p.display(), repo.workdir.display()));
        let rel = repo.relative(p).ok_or_else(outside)?;
        let abs = repo.workdir.join(&rel);
        let meta = std::fs::symlink_metadata(&abs)
            .map_err(|_| usage(format!("{}: no such file or directory", p.display())))?;
        // A folder may be a symlink to another folder of the working tree.
        let dir = if meta.is_dir() {
            Some(abs.clone())
        } else if meta.file_type().is_symlink() && abs.is_dir() {
            let real = abs.canonicalize().with_context(|| format!("cannot read {}", p.display()))?;
            if !real.starts_with(&repo.workdir) {
                return Err(outside());
            }
            Some(real)
        } else {
            None
        };
        let Some(dir) = dir else {
            out.push((prompt_file(repo, &abs, p)?, rel));
            continue;
        };
        if in_git_dir(repo, &dir) {
            return Err(usage(format!("{}: prompt folder is inside the git directory", p.display())));
        }
        let mut found = Vec::new();
        walk_md(&dir, &mut found).with_context(|| format!("cannot read {}", p.display()))?;
        if found.is_empty() {
            return Err(usage(format!("{}: no prompt files (*.md) in this folder", p.display())));
        }
        found.sort();
        for f in found {
            let r = f.strip_prefix(&repo.workdir).unwrap_or(&f).to_path_buf();
            out.push((prompt_file(repo, &f, &r)?, r));
        }
    }
    out.dedup();
    Ok(out)
}

/// The path to read for the prompt at `abs`, checked before anything opens it: a prompt goes to
/// the model, so it must be a regular file of the working tree. A symlink may lead elsewhere in
/// the tree, never out of it (/etc/passwd, ~/.ssh) nor into `.git` (`.git/config` holds remote
/// URLs with their tokens); a FIFO would block the read forever, a device or socket is no text.
/// `shown` names the file in messages.
pub fn prompt_file(repo: &Repo, abs: &Path, shown: &Path) -> Result<PathBuf> {
    let shown = shown.display();
    let meta = std::fs::symlink_metadata(abs).with_context(|| format!("cannot read {shown}"))?;
    let (real, meta) = if meta.file_type().is_symlink() {
        let real = abs.canonicalize().map_err(|e| usage(format!("{shown}: broken symbolic link ({e})")))?;
        if !real.starts_with(&repo.workdir) {
            return Err(usage(format!("{shown}: prompt file resolves outside the repository (to {})", real.display())));
        }
        let meta = std::fs::metadata(&real).with_context(|| format!("cannot read {shown}"))?;
        (real, meta)
    } else {
        (abs.to_path_buf(), meta)
    };
    if in_git_dir(repo, &real) {
        return Err(usage(format!(
            "{shown}: prompt file is inside the git directory (resolves to {}); prompts must be files of the working tree",
            real.display()
        )));
    }
    if !meta.is_file() {
        return Err(usage(format!("{shown}: {}; prompts must be regular files", kind_of(&meta.file_type()))));
    }
    Ok(real)
}

/// Whether `real` (a path without symlinks) lies in a git directory: the repository's own, or
/// any `.git` inside the working tree (nested repositories, submodules).
fn in_git_dir(repo: &Repo, real: &Path) -> bool {
    let git_dir = repo.gix.git_dir();
    let git_dir = git_dir.canonicalize().unwrap_or_else(|_| git_dir.to_path_buf());
    real.starts_with(&repo.common_dir)
        || real.starts_with(&git_dir)
        || real
            .strip_prefix(&repo.workdir)
            .is_ok_and(|r| r.components().any(|c| c.as_os_str().eq_ignore_ascii_case(".git")))
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder, not a file"
    } else if t.is_fifo() {
        "a named pipe (FIFO), not a file"
    } else if t.is_socket() {
        "a socket, not a file"
    } else if t.is_block_device() || t.is_char_device() {
        "a device, not a file"
    } else {
        "not a regular file"
    }
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

/// Read a prompt file checked by [`prompt_file`]. It is opened without following a symlink and
/// without blocking, then checked again: it may have been swapped since the check.
fn read_prompt_file(real: &Path, rel: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(real)
        .with_context(|| format!("cannot read {}", rel.display()))?;
    let meta = f.metadata().with_context(|| format!("cannot read {}", rel.display()))?;
    if !meta.is_file() {
        return Err(usage(format!("{}: {}; prompts must be regular files", rel.display(), kind_of(&meta.file_type()))));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).with_context(|| format!("cannot read {}", rel.display()))?;
    Ok(bytes)
}

/// Read and parse prompt files in parallel.
pub fn read_prompts(files: &[(PathBuf, PathBuf)]) -> Result<Vec<Prompt>> {
    files
        .par_iter()
        .map(|(abs, rel)| {
            let bytes = read_prompt_file(abs, rel)?;
            prompt::parse(&bytes, rel)
        })
        .collect()
}

/// The tracked files (from the index) and the contents the import graph needs, read in parallel.
pub fn repository_files(repo: &Repo) -> Result<(TrackedFiles, imports::ImportGraph)> {
    let index = tracked_index(repo)?;
    let mut paths = Vec::with_capacity(index.entries().len());
    let mut wanted = Vec::new();
    for e in index.entries() {
        if e.stage_raw() != 0 {
            continue;
        }
        let path = String::from_utf8_lossy(e.path(&index)).into_owned();
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

/// The index as planning reads it: paths and blob ids only, so its checksum is not verified
/// (hashing a 50,000-file index costs more than the rest of reading it; git verifies it on its
/// own reads). Without an index, the tree at HEAD's.
fn tracked_index(repo: &Repo) -> Result<gix::index::State> {
    let path = repo.gix.index_path();
    if path.exists() {
        let options = gix::index::decode::Options::default();
        let file = gix::index::File::at(&path, repo.gix.object_hash(), true, options)
            .with_context(|| format!("cannot read the index {}", path.display()))?;
        return Ok(file.into());
    }
    let index = repo.gix.index_or_load_from_head().context("cannot read the index")?;
    Ok(gix::index::State::clone(&index))
}

/// Prompts' raw text by task id: what a stored plan keeps beside plan.yaml.
pub type RawPrompts = std::collections::BTreeMap<String, String>;

/// Plan the prompts at `paths` (the `default_dir` of prompts under the worktree when none is
/// given) against HEAD, without storing the plan: `run DIR` stores it only once the run can
/// start.
pub fn prepare(repo: &Repo, default_dir: &Path, paths: &[PathBuf], opts: &Options) -> Result<(Plan, RawPrompts)> {
    let base = repo.head_commit()?;
    let paths: Vec<PathBuf> = if paths.is_empty() { vec![repo.workdir.join(default_dir)] } else { paths.to_vec() };
    let files = collect_prompt_files(repo, &paths)?;
    let prompts = read_prompts(&files)?;
    let (tracked, graph) = repository_files(repo)?;
    let history = crate::store::runs::history(repo)?;
    let p = build(&prompts, &tracked, &graph, &history, &base.to_string(), opts)?;
    for w in &p.warnings {
        crate::ui::note(&format!("warning: {w}"));
    }
    // About 200,000 tokens at four bytes a token: past the context window of today's models.
    for pr in prompts.iter().filter(|pr| pr.body.len() > 800_000) {
        crate::ui::note(&format!(
            "warning: {}: the prompt is {} KB, more than any agent's model takes in one request",
            pr.path.display(),
            pr.body.len() / 1000
        ));
    }
    let raw: RawPrompts = prompts.iter().map(|p| (p.id.clone(), p.raw.clone())).collect();
    Ok((p, raw))
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
            let (kind, basis) = match p.kind {
                Some(kind) => (kind, None),
                None => {
                    let (kind, basis) = prompt::classify::classify_with_basis(&p.title, &p.body);
                    (kind, Some(basis))
                }
            };
            let words = p.body.split_whitespace().count();
            let (estimate_min, estimate_source) = estimate::estimate(kind, f.len(), words, p.estimate_min, history);
            PlannedTask {
                id: p.id.clone(),
                title: p.title.clone(),
                source: p.path.display().to_string(),
                kind,
                type_from_front_matter: p.kind.is_some(),
                type_basis: basis,
                priority: p.priority,
                agent: p.agent.clone(),
                timeout_secs: p.timeout_secs,
                check: p.check.clone(),
                issue: p.issue,
                attempts: p.attempts,
                agents: p.agents.clone(),
                attempts_all: p.attempts_all,
                max_turns: p.max_turns,
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

/// The task an attempt belongs to: `a@2` is attempt 2 of `a` (`@` is in no task id).
pub fn attempt_of(id: &str) -> (&str, u32) {
    match id.rsplit_once('@') {
        Some((base, n)) => (base, n.parse().unwrap_or(1)),
        None => (id, 1),
    }
}

impl Plan {
    /// The plan with each task of more than one attempt (its `attempts:`, else as many as its
    /// `agents:` name, else `default`, whichever is more) given its further attempts `task@2`,
    /// `task@3`, ... as tasks of their own: the same prompt, dependencies and settings, in
    /// worktrees and branches of their own, each with its agent from `agents:` in turn. Their
    /// dependents wait for the task itself, which takes the winning attempt's result. The same
    /// plan and options always give the same expansion (a resume makes it again).
    pub fn with_attempts(&self, default: u32) -> Plan {
        let mut p = self.clone();
        for (i, t) in self.tasks.iter().enumerate() {
            let n = t.attempts.unwrap_or(default.max(t.agents.len() as u32)).clamp(1, 10);
            let agent_of = |k: u32| t.agents.get((k as usize - 1) % t.agents.len().max(1)).cloned();
            if let Some(first) = agent_of(1) {
                p.tasks[i].agent = Some(first);
            }
            for k in 2..=n {
                let mut a = t.clone();
                a.id = format!("{}@{k}", t.id);
                a.title = format!("{} (attempt {k})", t.title);
                a.attempts = Some(1);
                a.agent = agent_of(k).or(a.agent);
                p.tasks.push(a);
            }
        }
        p
    }

    /// Every agent profile the plan's tasks name (`agent:` and `agents:`), `default` for those
    /// naming none, sorted and once each.
    pub fn profiles(&self, default: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .tasks
            .iter()
            .flat_map(|t| match (&t.agent, t.agents.is_empty()) {
                (_, false) => t.agents.clone(),
                (Some(a), true) => vec![a.clone()],
                (None, true) => vec![default.to_string()],
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}
