//! Our own git on a task's worktree after (or between) its agent's attempts, reading what the
//! agent left as data, never as configuration.
//!
//! The agent can write its worktree, the `.git` link in it and (without `--sandbox`) the
//! worktree's git directory: `commondir`, `config.worktree`, nested repositories, attributes.
//! A git that discovers its repository from there would run whatever the agent configured
//! (`core.fsmonitor` is a shell command). So every git command here gets an explicit git
//! directory of ours (`TaskDir::shadow`: a HEAD, a minimal config with the user's safe `core`
//! settings, the user's `info/exclude`), our own index (`TaskDir::index`, copied when the
//! worktree was made), the repository's object store, no system or global configuration,
//! hooks and fsmonitor off, submodules ignored, and no filter drivers (none is configured in
//! there, whatever the agent's `.gitattributes` name). Files are read as files: symbolic links
//! are stored as links.

use super::taskdir::{self, TaskDir};
use crate::proc;
use crate::repo::Repo;
use anyhow::{Context, Result};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The file in our git directory that names the commit our index of an overlay worktree
/// matches.
const INDEX_AT: &str = "index-at";

/// `core` settings of the user's that change what a file's content is in git; copied into our
/// configuration (none of them runs anything).
const SAFE_CORE: &[&str] = &[
    "autocrlf",
    "eol",
    "safecrlf",
    "filemode",
    "symlinks",
    "ignorecase",
    "precomposeunicode",
    "checkroundtripencoding",
];

/// Git on one task's worktree, with a git directory and index of ours.
pub struct Shadow {
    dir: PathBuf,
    index: PathBuf,
    objects: PathBuf,
    worktree: PathBuf,
    /// The main working tree, where the user's identity is read.
    main: PathBuf,
    excludes: Option<String>,
    /// An overlay worktree (`exec::overlay`): read through a read-only view of its layers, and
    /// only where its upper layer (or the agent's commits) changed something.
    layers: Option<super::overlay::TaskLayers>,
    gix: gix::Repository,
}

impl Shadow {
    /// Make (or reuse) the task's git directory of ours; `admin` is the worktree's own git
    /// directory, whose index is copied as ours the first time (before any agent ran there).
    pub fn open(repo: &Repo, td: &TaskDir, worktree: &Path, admin: Option<&Path>) -> Result<Shadow> {
        let dir = td.shadow();
        if std::fs::symlink_metadata(dir.join("config")).is_err() {
            std::fs::create_dir_all(dir.join("refs"))?;
            std::fs::create_dir_all(dir.join("info"))?;
            std::fs::create_dir_all(dir.join("objects"))?;
            let mut config = String::from("[core]\n\trepositoryformatversion = 0\n\tbare = false\n");
            let snap = repo.gix.config_snapshot();
            for key in SAFE_CORE {
                if let Some(v) = snap.string(format!("core.{key}").as_str()) {
                    let v = v.to_string();
                    // Values are plain words; anything else is not copied.
                    if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                        config.push_str(&format!("\t{key} = {v}\n"));
                    }
                }
            }
            // A sparse worktree keeps its cone through our resets too.
            if let Some(cone) =
                admin.and_then(|a| taskdir::read_small(&a.join("info/sparse-checkout"), 1 << 20).ok().flatten())
            {
                taskdir::write_new(&dir.join("info/sparse-checkout"), &cone)?;
                config.push_str("\tsparseCheckout = true\n\tsparseCheckoutCone = true\n");
            }
            taskdir::write_new(&dir.join("HEAD"), b"0000000000000000000000000000000000000000\n")?;
            let exclude = std::fs::read(repo.common_dir.join("info/exclude")).unwrap_or_default();
            taskdir::write_new(&dir.join("info/exclude"), &exclude)?;
            taskdir::write_new(&dir.join("config"), config.as_bytes())?;
        }
        if std::fs::symlink_metadata(td.index()).is_err() {
            if let Some(index) = admin.and_then(|a| std::fs::read(a.join("index")).ok()) {
                taskdir::write_new(&td.index(), &index)?;
            }
            // Whatever commit the copy matches is not known here.
            taskdir::remove_entry(&dir.join(INDEX_AT))?;
        }
        let excludes = repo
            .gix
            .config_snapshot()
            .trusted_path("core.excludesFile")
            .ok()
            .flatten()
            .map(|p| p.to_string_lossy().into_owned());
        Ok(Shadow {
            dir,
            index: td.index(),
            objects: repo.common_dir.join("objects"),
            worktree: worktree.to_path_buf(),
            main: repo.workdir.clone(),
            excludes,
            layers: None,
            gix: repo.gix.clone(),
        })
    }

    /// Read the worktree through its overlay layers.
    pub fn with_layers(mut self, layers: Option<super::overlay::TaskLayers>) -> Shadow {
        self.layers = layers;
        self
    }

    /// An overlay worktree's content as a tree, built on `tip`'s tree from what can differ
    /// from it (O(changes), never O(tree)): what the upper layer holds and what the agent's
    /// commits changed since the start. Git itself decides, on a small index of those paths
    /// alone, what a file's content is (attributes, links as links, nested repositories) and
    /// which untracked ones the ignore rules leave out; `keep` stays as in `tip`.
    fn layered_tree(&self, l: &super::overlay::TaskLayers, tip: &str, keep: &[String]) -> Result<String> {
        let tip_tree = self.gix.find_commit(gix::ObjectId::from_hex(tip.as_bytes())?)?.tree_id()?.detach();
        let tree = self.gix.find_tree(tip_tree)?;
        let mut paths = l.changed()?;
        let start = l.start_commit()?;
        if start != tip {
            let changed = crate::store::objects::tree_changes(&self.gix, &start, tip)?;
            paths.extend(changed.into_iter().map(|(p, _)| (p, false)));
        }
        let keep: std::collections::HashSet<&[u8]> = keep.iter().map(|k| k.as_bytes()).collect();
        paths.retain(|(p, _)| !keep.contains(&p[..]));
        paths.sort();
        paths.dedup();
        let mut editor = tree.clone().edit()?;
        if !paths.is_empty() {
            // Ignore rules never apply to what `tip` tracks (a folder: anything below it).
            let ignored = self.ignored(&paths)?;
            // `git add` refuses a path named outright that is ignored, or that is neither in
            // the worktree nor in the index: those are left out, as a whole-tree `add -A` would.
            let mut chosen = Vec::new();
            let mut seed = Vec::new();
            for (p, _) in paths {
                let rel = Path::new(std::ffi::OsStr::from_bytes(&p));
                let entry = tree.lookup_entry_by_path(rel)?;
                let there = l.exists(rel);
                match (entry, there) {
                    // Tracked and gone: gone from the result too.
                    (Some(_), false) => {
                        editor.remove(gix::bstr::BStr::new(&p))?;
                    }
                    (Some(e), true) => {
                        tracked_below(&self.gix, &p, e.mode(), &e.object_id(), &mut seed)?;
                        chosen.push(p);
                    }
                    (None, true) if !ignored.contains(&p) => chosen.push(p),
                    (None, _) => {}
                }
            }
            if !chosen.is_empty() {
                let small = self.add_on_small_index(&chosen, &seed)?;
                for p in &chosen {
                    editor.remove(gix::bstr::BStr::new(p))?;
                }
                for (path, mode, id) in small {
                    editor.upsert(gix::bstr::BStr::new(&path), mode.kind(), id)?;
                }
            }
        }
        for k in keep {
            match tree.lookup_entry_by_path(Path::new(std::ffi::OsStr::from_bytes(k)))? {
                Some(e) => editor.upsert(gix::bstr::BStr::new(k), e.mode().kind(), e.object_id())?,
                None => editor.remove(gix::bstr::BStr::new(k))?,
            };
        }
        Ok(editor.write()?.to_string())
    }

    /// `git add -A` of `paths` on an index holding only `seed` (entries of the tip at and below
    /// them): the entries it ends with.
    fn add_on_small_index(
        &self,
        paths: &[Vec<u8>],
        seed: &[(Vec<u8>, gix::object::tree::EntryMode, gix::ObjectId)],
    ) -> Result<Vec<(Vec<u8>, gix::object::tree::EntryMode, gix::ObjectId)>> {
        let small = self.dir.join("index.small");
        taskdir::remove_entry(&small)?;
        let git = |args: &[&str], input: Vec<u8>| -> Result<()> {
            let out = proc::run_captured(self.expr_on(args, &small).stdin_bytes(input), "git")?;
            if !out.ok() {
                anyhow::bail!("git {} failed: {}", args.join(" "), out.stderr_str().trim());
            }
            Ok(())
        };
        let mut info = Vec::new();
        for (path, mode, id) in seed {
            info.extend_from_slice(format!("{:06o} {id}\t", mode.value()).as_bytes());
            info.extend_from_slice(path);
            info.push(0);
        }
        git(&["update-index", "-z", "--index-info"], info)?;
        // Names the agent chose are names, never patterns.
        git(
            &["--literal-pathspecs", "add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"],
            paths.iter().flat_map(|p| p.iter().copied().chain([0])).collect(),
        )?;
        let index = gix::index::File::at(&small, gix::hash::Kind::Sha1, true, Default::default())
            .context("the small index of the task's changes")?;
        let mut out = Vec::new();
        for e in index.entries() {
            let mode = e.mode.to_tree_entry_mode().context("an index entry of no known mode")?;
            out.push((e.path(&index).to_vec(), mode, e.id));
        }
        taskdir::remove_entry(&small)?;
        Ok(out)
    }

    /// Which of `paths` the worktree's ignore rules (as they are in the view, the agent's own
    /// `.gitignore` files included) match, tracked or not.
    fn ignored(&self, paths: &[(Vec<u8>, bool)]) -> Result<std::collections::HashSet<Vec<u8>>> {
        let mut input = Vec::new();
        for (p, dir) in paths {
            input.extend_from_slice(p);
            // A folder's own patterns (`target/`) match only a name given as a folder.
            if *dir {
                input.push(b'/');
            }
            input.push(0);
        }
        let out = self.run(&["check-ignore", "--no-index", "--stdin", "-z"], Some(&input))?;
        // 1: none is ignored.
        if !out.ok() && out.status.code() != Some(1) {
            anyhow::bail!("git check-ignore failed: {}", out.stderr_str().trim());
        }
        Ok(out
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| p.strip_suffix(b"/").unwrap_or(p).to_vec())
            .collect())
    }

    fn expr(&self, args: &[&str]) -> duct::Expression {
        self.expr_on(args, &self.index)
    }

    /// Git with `index` as its index.
    fn expr_on(&self, args: &[&str], index: &Path) -> duct::Expression {
        let mut full: Vec<String> = vec![
            "-c".into(),
            "core.hooksPath=/dev/null".into(),
            "-c".into(),
            "core.fsmonitor=false".into(),
            "-c".into(),
            "core.untrackedCache=false".into(),
            "-c".into(),
            "core.attributesFile=/dev/null".into(),
            "-c".into(),
            "submodule.recurse=false".into(),
            "-c".into(),
            "diff.ignoreSubmodules=all".into(),
            "-c".into(),
            "status.submoduleSummary=false".into(),
            "-c".into(),
            "protocol.allow=never".into(),
            // No checksum over the whole index at each write (nor, then, at each read): the
            // index is ours, rewritten per task, and large in a large repository.
            "-c".into(),
            "index.skipHash=true".into(),
        ];
        if let Some(x) = &self.excludes {
            full.extend(["-c".into(), format!("core.excludesFile={x}")]);
        }
        full.extend(args.iter().map(|s| s.to_string()));
        let view = self.layers.as_ref().map(|l| l.view(false).encode());
        proc::hardened_git(
            &full,
            &self.worktree,
            &[
                ("GIT_DIR", &self.dir),
                ("GIT_WORK_TREE", &self.worktree),
                ("GIT_INDEX_FILE", index),
                ("GIT_OBJECT_DIRECTORY", &self.objects),
            ],
            view.as_deref(),
        )
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<proc::Output> {
        let mut e = self.expr(args);
        if let Some(i) = input {
            e = e.stdin_bytes(i.to_vec());
        }
        proc::run_captured(e, "git")
    }

    /// Run git; its trimmed stdout, or an error with its stderr.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args, None)?;
        if !out.ok() {
            anyhow::bail!("git {} failed: {}", args.join(" "), out.stderr_str().trim());
        }
        Ok(out.stdout_str().trim_end().to_string())
    }

    fn set_head(&self, commit: &str) -> Result<()> {
        taskdir::write_new(&self.dir.join("HEAD"), format!("{commit}\n").as_bytes())
    }

    /// Whether the worktree differs from `commit` (tracked changes or untracked files that are
    /// not ignored).
    pub fn dirty(&self, commit: &str) -> Result<bool> {
        if self.layers.is_some() {
            // Limited to what the layers changed; ignored files do not count, as in status.
            let tree = self.tree(commit, &[])?;
            let id = self.gix.find_commit(gix::ObjectId::from_hex(commit.as_bytes())?)?.tree_id()?;
            return Ok(id != tree.as_str());
        }
        self.set_head(commit)?;
        self.git(&["update-index", "-q", "--refresh"]).ok();
        Ok(!self.git(&["status", "--porcelain", "--untracked-files=normal", "--ignore-submodules=all"])?.is_empty())
    }

    /// The worktree's content as a tree (what the agent left), with `keep` (files brought in
    /// by `parallel.copy`) as they are in `tip`. A full worktree updates our index to it on
    /// the way; an overlay worktree's index follows at `publish_index`.
    pub fn tree(&self, tip: &str, keep: &[String]) -> Result<String> {
        if let Some(l) = &self.layers {
            return self.layered_tree(l, tip, keep);
        }
        self.set_head(tip)?;
        if std::fs::symlink_metadata(&self.index).is_err() {
            // No index of ours (a worktree from an older version): every file is hashed.
            self.git(&["read-tree", tip])?;
        }
        self.git(&["add", "-A"])?;
        if !keep.is_empty() {
            let mut args = vec!["reset", "-q", tip, "--"];
            args.extend(keep.iter().map(String::as_str));
            self.git(&args)?;
        }
        self.git(&["write-tree"])
    }

    /// A commit of `tree` on `parent` with `message`, by the user's identity.
    pub fn commit(&self, tree: &str, parent: &str, message: &str) -> Result<String> {
        self.commit_parents(tree, &[parent], message)
    }

    /// A commit of `tree` on `parents` (a merge when several).
    pub fn commit_parents(&self, tree: &str, parents: &[&str], message: &str) -> Result<String> {
        let mut args = vec!["commit-tree", tree];
        for p in parents {
            args.extend(["-p", p]);
        }
        args.extend(["-F", "-"]);
        let mut e = self.expr(&args).stdin_bytes(message.as_bytes().to_vec());
        for (k, v) in identity(&self.main) {
            if std::env::var_os(k).is_none() {
                e = e.env(k, v);
            }
        }
        let out = proc::run_captured(e, "git")?;
        if !out.ok() {
            anyhow::bail!("cannot commit the task's changes: {}", out.stderr_str().trim());
        }
        Ok(out.stdout_str().trim().to_string())
    }

    /// Put the worktree and our index back to `commit`, removing what is not tracked there
    /// (ignored files stay: build caches survive a retry).
    pub fn reset_hard(&self, commit: &str) -> Result<()> {
        if let Some(l) = &self.layers {
            // The upper layer is all the agent wrote: dropping it is the reset (ignored files
            // go too; `parallel.warm` offers build caches again underneath).
            l.clear()?;
            l.fresh_index(&self.main, &self.index, commit)?;
            return taskdir::write_new(&self.dir.join(INDEX_AT), format!("{commit}\n").as_bytes());
        }
        self.set_head(commit)?;
        self.git(&["reset", "-q", "--hard", commit])?;
        self.git(&["clean", "-q", "-ffd"])?;
        Ok(())
    }

    /// Whether `rel` is tracked at `commit`.
    pub fn tracked(&self, commit: &str, rel: &str) -> Result<bool> {
        let tree = self.gix.find_commit(gix::ObjectId::from_hex(commit.as_bytes())?)?.tree()?;
        Ok(tree.lookup_entry_by_path(rel)?.is_some())
    }

    /// An overlay worktree whose index was just made for `commit` (by `TaskLayers::prepare`)
    /// gives ours the same.
    pub fn adopt_index(&self, admin: &Path, commit: &str) -> Result<()> {
        taskdir::copy_new(&admin.join("index"), &self.index).context("the worktree's index")?;
        taskdir::write_new(&self.dir.join(INDEX_AT), format!("{commit}\n").as_bytes())
    }

    /// Give the worktree's own git directory our index, brought to `head` (it matches the
    /// result), so `git status` there shows the result clean. Replaces the file, never writes
    /// through a link.
    pub fn publish_index(&self, admin: &Path, head: &str) -> Result<()> {
        if let Some(l) = &self.layers {
            self.index_to(l, head)?;
        }
        let tmp = admin.join(format!("index.parallel-{}", std::process::id()));
        taskdir::copy_new(&self.index, &tmp).context("our index of the worktree")?;
        std::fs::rename(&tmp, admin.join("index"))?;
        Ok(())
    }

    /// Before an agent works in an overlay worktree again: when a result was taken since its
    /// index was made, the worktree's index is brought to `head` (a result taken does not
    /// write it: most worktrees are removed right after, and it is O(index)).
    pub fn catch_up_index(&self, admin: &Path, head: &str) -> Result<()> {
        if self.layers.is_none() {
            return Ok(());
        }
        let at = taskdir::read_small(&self.dir.join(INDEX_AT), 100)?;
        if at.is_some_and(|b| String::from_utf8_lossy(&b).trim() == head) {
            return Ok(());
        }
        self.publish_index(admin, head)
    }

    /// Bring our index of an overlay worktree to `head`: only the entries that differ from the
    /// commit it was at change (their stat data is then looked at afresh); made anew from the
    /// run's base index when that commit is not known.
    fn index_to(&self, l: &super::overlay::TaskLayers, head: &str) -> Result<()> {
        let at_file = self.dir.join(INDEX_AT);
        let at = taskdir::read_small(&at_file, 100)?.map(|b| String::from_utf8_lossy(&b).trim().to_string());
        match at {
            Some(at) if at == head => return Ok(()),
            Some(at) if std::fs::symlink_metadata(&self.index).is_ok() => {
                let mut info = Vec::new();
                for (path, now) in crate::store::objects::tree_changes(&self.gix, &at, head)? {
                    let line = match now {
                        Some((mode, id)) => format!("{:06o} {id}\t", mode.value()),
                        // Mode 0 removes the entry.
                        None => format!("0 {}\t", gix::ObjectId::null(gix::hash::Kind::Sha1)),
                    };
                    info.extend_from_slice(line.as_bytes());
                    info.extend_from_slice(&path);
                    info.push(0);
                }
                if !info.is_empty() {
                    let out = proc::run_captured(
                        self.expr(&["update-index", "-z", "--index-info"]).stdin_bytes(info),
                        "git",
                    )?;
                    if !out.ok() {
                        anyhow::bail!("git update-index failed: {}", out.stderr_str().trim());
                    }
                }
            }
            _ => l.fresh_index(&self.main, &self.index, head)?,
        }
        taskdir::write_new(&at_file, format!("{head}\n").as_bytes())
    }
}

/// The entries of a tip's tree at and below `path` (a file: itself; a folder: every file in
/// it), as a small index is seeded with them. Submodules are left out: git would look inside
/// one it has no stat data for (running `status` there, in a repository the agent made);
/// `add` takes one found in the worktree afresh, reading only its HEAD.
fn tracked_below(
    repo: &gix::Repository,
    path: &[u8],
    mode: gix::object::tree::EntryMode,
    id: &gix::oid,
    out: &mut Vec<(Vec<u8>, gix::object::tree::EntryMode, gix::ObjectId)>,
) -> Result<()> {
    if mode.is_commit() {
        return Ok(());
    }
    if !mode.is_tree() {
        out.push((path.to_vec(), mode, id.to_owned()));
        return Ok(());
    }
    for e in repo.find_tree(id)?.iter() {
        let e = e?;
        let mut p = path.to_vec();
        p.push(b'/');
        p.extend_from_slice(e.filename());
        tracked_below(repo, &p, e.mode(), e.oid(), out)?;
    }
    Ok(())
}

/// The user's identity (name and e-mail of author and committer) as git gives it in the main
/// repository, read once: our commits carry it without reading any configuration of the agent's.
fn identity(dir: &Path) -> Vec<(&'static str, String)> {
    static ID: std::sync::OnceLock<Vec<(&'static str, String)>> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut v = Vec::new();
        for (var, names) in [
            ("GIT_AUTHOR_IDENT", ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"]),
            ("GIT_COMMITTER_IDENT", ["GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"]),
        ] {
            let ident = proc::git(dir, ["var", var]).unwrap_or_default();
            // `Name <email> time zone`
            if let (Some(lt), Some(gt)) = (ident.find('<'), ident.find('>')) {
                v.push((names[0], ident[..lt].trim().to_string()));
                v.push((names[1], ident[lt + 1..gt].to_string()));
            } else {
                v.push((names[0], "git-parallel".to_string()));
                v.push((names[1], "git-parallel@localhost".to_string()));
            }
        }
        v
    })
    .clone()
}
