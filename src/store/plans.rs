//! Stored plans: `refs/parallel/plans/<id>` → a commit whose tree holds `plan.yaml` and
//! `prompts/<task>.md` (the prompt files as they were when planned).

use super::{layout, objects};
use crate::error::usage;
use crate::plan::Plan;
use crate::repo::Repo;
use anyhow::{Context, Result};
use gix::ObjectId;
use std::collections::BTreeMap;

/// Store `plan` with the raw prompt texts; returns the new plan id (also set in the plan).
pub fn save(repo: &Repo, plan: &mut Plan, prompts: &BTreeMap<String, String>) -> Result<String> {
    let mut files = BTreeMap::new();
    for (task, raw) in prompts {
        files.insert(format!("prompts/{task}.md"), objects::write_blob(repo, raw.as_bytes())?);
    }
    // A lost race for an id moves on to the next one.
    for _ in 0..100 {
        let id = objects::next_numeric_id(repo, layout::PLANS)?.to_string();
        plan.id = id.clone();
        let yaml = crate::yaml::to_string(&*plan)?;
        files.insert("plan.yaml".into(), objects::write_blob(repo, yaml.as_bytes())?);
        let tree = objects::write_tree(repo, None, &files)?;
        let message = format!(
            "plan {id}: {} tasks, est. {:.0} min sequential, {:.0} min at {} workers\n",
            plan.tasks.len(),
            plan.schedule.sequential_min,
            plan.schedule.parallel_min,
            plan.schedule.workers
        );
        let commit = objects::write_commit(repo, tree, &[], &message)?;
        match objects::cas_update(repo, &layout::plan_ref(&id), commit, None, "git parallel plan") {
            Ok(()) => return Ok(id),
            Err(e) if e.downcast_ref::<objects::Lost>().is_some() => continue,
            Err(e) => return Err(e),
        }
    }
    anyhow::bail!("could not find a free plan id after 100 tries")
}

/// The commit of a stored plan.
pub fn commit_of(repo: &Repo, id: &str) -> Result<ObjectId> {
    objects::read_ref(repo, &layout::plan_ref(id))?.ok_or_else(|| {
        let known: Vec<String> = list_ids(repo).unwrap_or_default();
        usage(format!(
            "no plan `{id}`{}",
            if known.is_empty() {
                " (no plans stored yet; run `git parallel plan`)".to_string()
            } else {
                format!(" (stored: {})", known.join(", "))
            }
        ))
    })
}

/// Load a stored plan.
pub fn load(repo: &Repo, id: &str) -> Result<Plan> {
    load_commit(repo, id, commit_of(repo, id)?)
}

fn load_commit(repo: &Repo, id: &str, commit: ObjectId) -> Result<Plan> {
    let yaml = objects::read_path(repo, commit, "plan.yaml")
        .with_context(|| format!("plan {id}: refs/parallel/plans/{id} does not point to a plan commit"))?
        .with_context(|| format!("plan {id} has no plan.yaml"))?;
    let text = String::from_utf8(yaml).with_context(|| format!("plan {id}: plan.yaml is not UTF-8"))?;
    crate::yaml::from_str(&text).map_err(|e| anyhow::anyhow!("plan {id}: plan.yaml is damaged: {e}"))
}

/// What [`load_all`] found.
pub struct Stored {
    /// (id, plan), sorted like [`list_ids`].
    pub plans: Vec<(String, Plan)>,
    /// Why each of the other refs under refs/parallel/plans/ cannot be read.
    pub unreadable: Vec<String>,
}

/// Every stored plan, each read on its own: one ref that cannot be read (pointing at a blob,
/// a commit without plan.yaml, damaged YAML, a ref file that is not a ref) must not hide the
/// others.
pub fn load_all(repo: &Repo) -> Result<Stored> {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for r in repo.gix.references()?.prefixed(layout::PLANS)? {
        let mut r = match r {
            Ok(r) => r,
            Err(e) => {
                unreadable.push(format!("unreadable plan ref: {e}"));
                continue;
            }
        };
        let name = r.name().as_bstr().to_string();
        let id = name.strip_prefix(layout::PLANS).unwrap_or(&name).to_string();
        let plan = match r.peel_to_id() {
            Ok(commit) => load_commit(repo, &id, commit.detach()),
            Err(e) => Err(anyhow::anyhow!("plan {id}: {name} cannot be read: {e}")),
        };
        match plan {
            Ok(p) => found.push((id, p)),
            Err(e) => unreadable.push(format!("{e:#}")),
        }
    }
    found.sort_by_key(|(i, _)| id_order(i));
    Ok(Stored { plans: found, unreadable })
}

/// The prompt text of a task in a stored plan.
/// A plan's prompts, indexed once: a run of 10,000 tasks reads its flat `prompts/` tree once,
/// not once per task.
pub struct Prompts {
    plan: String,
    blobs: std::collections::HashMap<String, ObjectId>,
}

impl Prompts {
    pub fn load(repo: &Repo, id: &str) -> Result<Prompts> {
        let tree = repo.gix.find_commit(commit_of(repo, id)?)?.tree()?;
        let mut blobs = std::collections::HashMap::new();
        if let Some(dir) = tree.find_entry("prompts") {
            for e in repo.gix.find_tree(dir.object_id())?.iter() {
                let e = e?;
                if let Some(task) = e.filename().to_string().strip_suffix(".md") {
                    blobs.insert(task.to_string(), e.object_id());
                }
            }
        }
        Ok(Prompts { plan: id.to_string(), blobs })
    }

    /// The prompt file of `task`, front matter included.
    pub fn get(&self, repo: &Repo, task: &str) -> Result<String> {
        let id = self.blobs.get(task).with_context(|| format!("plan {} has no prompt for task {task}", self.plan))?;
        Ok(String::from_utf8_lossy(&repo.gix.find_object(*id)?.data).into_owned())
    }
}

pub fn prompt(repo: &Repo, id: &str, task: &str) -> Result<String> {
    let commit = commit_of(repo, id)?;
    let bytes = objects::read_path(repo, commit, &format!("prompts/{task}.md"))?
        .with_context(|| format!("plan {id} has no prompt for task {task}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Stored plan ids, numerically sorted.
pub fn list_ids(repo: &Repo) -> Result<Vec<String>> {
    let mut ids: Vec<String> = objects::list_refs(repo, layout::PLANS)?
        .into_iter()
        .filter_map(|(n, _)| n.strip_prefix(layout::PLANS).map(str::to_string))
        .collect();
    ids.sort_by_key(|i| id_order(i));
    Ok(ids)
}

/// Numeric ids in numeric order, any other name after them.
fn id_order(id: &str) -> (u64, String) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}

/// The most recent plan id, if any.
pub fn latest(repo: &Repo) -> Result<Option<String>> {
    Ok(list_ids(repo)?.pop())
}
