//! Overlay worktrees: a task's worktree costs O(its changes), not O(the repository).
//!
//! A run checks its base commit out once, read-only (`<run>/.base/tree`, with the index that
//! checkout wrote). Each task's worktree is an overlay mount of that tree, made only inside
//! the task's own mount namespace by the containment supervisor (`exec::contain`), with an
//! upper layer of the task's own (`<run>/.layers/<task>/upper`): what the agent writes lands
//! there and nowhere else. Outside that namespace the worktree folder holds only its `.git`
//! link. Layers, from the top: the task's upper layer, the task's start layer (a dependent
//! task's start commit differs from the base: the files that differ, and whiteouts for those
//! deleted), the warm caches (`parallel.warm`: ignored folders of the main worktree, copied
//! once per run), the base checkout.
//!
//! The task's index is the base checkout's index (file stat data included, so `git status`
//! in there hashes nothing), moved to its start commit by a two-tree `read-tree -m`. The
//! result is read with our own git in a read-only view of the same layers, limited to the
//! paths the upper layer holds (and those the agent's commits changed): O(changes). The upper
//! layer is read as data only: entries are listed without following links, and paths reach
//! git as literal pathspecs.

use crate::proc;
use crate::repo::Repo;
use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Given to the containment supervisor: the overlay to mount at the command's working folder
/// (see `View::encode`).
pub const ENV: &str = "GIT_PARALLEL_OVERLAY";

/// How task worktrees are made (`parallel.worktree`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Overlays where the system allows them, full checkouts otherwise.
    #[default]
    Auto,
    Overlay,
    Checkout,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Mode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Mode::Auto),
            "overlay" => Ok(Mode::Overlay),
            "checkout" => Ok(Mode::Checkout),
            other => Err(format!("parallel.worktree must be overlay, checkout or auto (is `{other}`)")),
        }
    }
}

/// Remove the run's shared layers once no overlay worktree is left in `run_dir`.
pub fn remove_run_layers(run_dir: &Path) {
    let layers_left = std::fs::read_dir(layers_dir(run_dir)).into_iter().flatten().next().is_some();
    if !layers_left {
        for d in [layers_dir(run_dir), warm_dir(run_dir), base_dir(run_dir)] {
            let _ = remove_dir(&d);
        }
    }
}

/// An overlay to mount: `upper` and `work` absent make it read-only.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub target: PathBuf,
    pub upper: Option<(PathBuf, PathBuf)>,
    /// Lower layers, the topmost first.
    pub lowers: Vec<PathBuf>,
}

impl View {
    /// One line per path: target, upper, work (empty when read-only), then the lowers.
    pub fn encode(&self) -> String {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let (u, w) = self.upper.as_ref().map(|(u, w)| (s(u), s(w))).unwrap_or_default();
        let mut lines = vec![s(&self.target), u, w];
        lines.extend(self.lowers.iter().map(|p| s(p)));
        lines.join("\n")
    }

    pub fn decode(text: &str) -> Option<View> {
        let mut it = text.split('\n');
        let target = PathBuf::from(it.next()?);
        let (u, w) = (it.next()?, it.next()?);
        let upper = (!u.is_empty()).then(|| (PathBuf::from(u), PathBuf::from(w)));
        let lowers: Vec<PathBuf> = it.map(PathBuf::from).collect();
        (!lowers.is_empty()).then_some(View { target, upper, lowers })
    }

    /// Mount it (in a mount namespace of the caller's own). `userns`: the namespace's owner
    /// is an unprivileged user, whose overlay keeps its markers in `user.` attributes.
    pub fn mount(&self, userns: bool) -> std::result::Result<(), String> {
        for p in self.lowers.iter().chain(self.upper.iter().flat_map(|(u, w)| [u, w])) {
            if !p.is_dir() {
                return Err(format!("layer {} is not there", p.display()));
            }
        }
        let lowers: Vec<String> = self.lowers.iter().map(|p| escape(p)).collect();
        let mut opts = format!("lowerdir={}", lowers.join(":"));
        if let Some((u, w)) = &self.upper {
            opts.push_str(&format!(",upperdir={},workdir={}", escape(u), escape(w)));
        }
        // Copies up are whole files and renamed folders are copied: the upper layer is then
        // plain data, with nothing pointing back into a lower one.
        opts.push_str(",redirect_dir=off,metacopy=off,index=off");
        if userns {
            opts.push_str(",userxattr");
        }
        let c = |s: &[u8]| std::ffi::CString::new(s).map_err(|_| "a path holds a NUL byte".to_string());
        let (target, data) = (c(self.target.as_os_str().as_bytes())?, c(opts.as_bytes())?);
        // SAFETY: mount(2) reads the NUL-terminated strings we pass.
        let r =
            unsafe { libc::mount(c"overlay".as_ptr(), target.as_ptr(), c"overlay".as_ptr(), 0, data.as_ptr().cast()) };
        if r != 0 {
            return Err(format!(
                "cannot mount the overlay worktree at {}: {}",
                self.target.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}

/// A path as an overlay option value: `\`, `,` and `:` escaped.
fn escape(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, '\\' | ',' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Paths we can hand to the kernel and to the supervisor's variable.
fn usable(p: &Path) -> bool {
    p.is_absolute() && !p.as_os_str().as_bytes().iter().any(|b| matches!(b, b'\n' | 0))
}

/// The run's shared layers, beside its worktrees (task ids never start with a dot).
pub fn base_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(".base")
}
pub fn warm_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(".warm")
}
pub fn layers_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(".layers")
}

/// Whether overlay worktrees can be made here: mounted by the supervisor the way a task's
/// is, over a whiteout (a dependent task's start layer needs them). Err says why not.
pub fn probe(dir: &Path) -> std::result::Result<(), String> {
    if !usable(dir) {
        return Err(format!("the worktree folder {} holds a newline", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let t = tempfile::Builder::new()
        .prefix(".overlay-probe-")
        .tempdir_in(dir)
        .map_err(|e| format!("cannot make a folder in {}: {e}", dir.display()))?;
    let r = |p: &str| t.path().join(p);
    for d in ["lower", "upper", "work", "mnt"] {
        std::fs::create_dir(r(d)).map_err(|e| e.to_string())?;
    }
    std::fs::write(r("lower/kept"), b"").map_err(|e| e.to_string())?;
    whiteout(&r("lower/gone")).map_err(|e| format!("whiteouts cannot be made here: {e}"))?;
    let view = View { target: r("mnt"), upper: Some((r("upper"), r("work"))), lowers: vec![r("lower")] };
    let exe = proc::supervisor_exe().map_err(|e| format!("{e:#}"))?;
    let out = proc::run_captured(
        duct::cmd(exe, [super::contain::SUBCOMMAND, "--", "sh", "-c", "test -e kept && ! test -e gone && touch new"])
            .dir(r("mnt"))
            .env(ENV, view.encode()),
        "overlay probe",
    )
    .map_err(|e| format!("{e:#}"))?;
    let worked = out.ok() && r("upper/new").exists();
    let _ = make_removable(&r("work"));
    if worked {
        Ok(())
    } else {
        let said = out.stderr_str();
        Err(said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("the mount was refused").trim().to_string())
    }
}

/// A whiteout: the overlay's mark of a deleted path (a character device 0/0, which an
/// unprivileged user may make).
fn whiteout(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: mknod(2) on a NUL-terminated path.
    if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The overlay leaves a `work/work` folder with no permissions; an unprivileged owner must
/// open it up before it can be removed.
fn make_removable(work: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(work)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    Ok(())
}

/// Remove a layer folder whatever the overlay left in it.
pub fn remove_dir(dir: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    let _ = make_removable(&dir.join("work"));
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// Checkouts shared by the runs of one worktree folder: `<worktreeDir>/.bases/<commit>`,
/// each made once and never written again.
pub fn shared_bases(run_dir: &Path) -> PathBuf {
    run_dir.parent().unwrap_or(run_dir).join(".bases")
}

/// Give the run a read-only checkout of `commit`: a shared one of that commit, or a shared
/// one of a nearby commit under a layer of the difference (O(changes), where a checkout is
/// O(files)), or, failing both, a new shared checkout. Recorded in `<run>/.base`: the commit,
/// the shared checkout used (`from`), the difference layer (`delta/`) and the index every
/// task's index starts from. Returns how it was made, for the run's narration.
///
/// `same_times` (with `parallel.warm`): the shared checkout's files get the times of the main
/// worktree's where their content is the same (see `times_of_main_worktree`).
pub fn prepare_base(repo: &Repo, run_dir: &Path, commit: &str, same_times: bool) -> Result<String> {
    let base = base_dir(run_dir);
    let has = |p: &Path| {
        super::taskdir::read_small(p, 100).ok().flatten().map(|c| String::from_utf8_lossy(&c).trim().to_string())
    };
    if has(&base.join("commit")).as_deref() == Some(commit)
        && TaskLayers::shared_tree(run_dir).is_some_and(|t| t.is_dir())
    {
        return Ok("resumed".into());
    }
    remove_dir(&base)?;
    let shared = shared_bases(run_dir);
    std::fs::create_dir_all(&shared)?;
    // Complete shared checkouts (their `commit` file is written last).
    let mut known: Vec<(PathBuf, String)> = std::fs::read_dir(&shared)?
        .flatten()
        .filter_map(|e| Some((e.path(), has(&e.path().join("commit"))?)))
        .collect();
    known.sort();
    let tmp = run_dir.join(format!(".base-{}", std::process::id()));
    remove_dir(&tmp)?;
    std::fs::create_dir_all(&tmp)?;
    let index = tmp.join("index");
    let (from, how) = match known.iter().find(|(_, c)| c == commit) {
        Some((dir, _)) => {
            if same_times {
                times_of_main_worktree(repo, dir);
            }
            std::fs::copy(dir.join("index"), &index)?;
            (dir.clone(), "a shared checkout".to_string())
        }
        None => match nearest(repo, &known, commit)? {
            Some((dir, from_commit, changed)) => {
                if same_times {
                    times_of_main_worktree(repo, &dir);
                }
                std::fs::copy(dir.join("index"), &index)?;
                std::fs::create_dir(tmp.join("delta"))?;
                write_delta(repo, &from_commit, commit, &tmp.join("delta"))?;
                proc::git_with(
                    &repo.workdir,
                    ["-c", "index.skipHash=true", "read-tree", "-i", "-m", from_commit.as_str(), commit],
                    &[("GIT_INDEX_FILE", index.as_path())],
                )?;
                (
                    dir,
                    format!(
                        "a shared checkout of {} and the {changed} files changed since",
                        &from_commit[..12.min(from_commit.len())]
                    ),
                )
            }
            None => {
                let dir = checkout(repo, &shared, commit)?;
                if same_times {
                    times_of_main_worktree(repo, &dir);
                }
                std::fs::copy(dir.join("index"), &index)?;
                (dir, "a new shared checkout".to_string())
            }
        },
    };
    super::taskdir::write_new(&tmp.join("from"), from.as_os_str().as_bytes())?;
    super::taskdir::write_new(&tmp.join("commit"), format!("{commit}\n").as_bytes())?;
    std::fs::rename(&tmp, &base).with_context(|| format!("cannot move the run's base to {}", base.display()))?;
    Ok(how)
}

/// Give the files of the shared checkout `dir` the modification times their counterparts have
/// in the main worktree where the content is the same (the user's index says so: same blob,
/// stat data matching the file), and the present time elsewhere. Build tools that judge
/// freshness by times (cargo, make) then judge a task's sources as they judge the user's, so a
/// warm build cache (`parallel.warm`) is used, not rebuilt; a file that differs is newer than
/// any output and is built again. The checkout's index is refreshed after (its stat data would
/// otherwise make every git in a task hash every file). Best effort: a failure leaves times as
/// they were (builds are then merely slower).
fn times_of_main_worktree(repo: &Repo, dir: &Path) {
    if let Err(e) = sync_times(repo, dir) {
        crate::ui::note(&format!("note: build caches may rebuild: file times not matched ({e:#})"));
    }
}

fn sync_times(repo: &Repo, dir: &Path) -> Result<()> {
    let open = |p: &Path| gix::index::File::at(p, gix::hash::Kind::Sha1, false, Default::default());
    let ours = open(&dir.join("index"))?;
    let user_index = repo.gix.index_path();
    let theirs = match open(&user_index) {
        Ok(f) => f,
        // No index yet (nothing added): every file is simply new.
        Err(_) => return Ok(()),
    };
    // Entries written in the index's own second may have changed since without showing it.
    let racy = std::fs::metadata(&user_index)?.modified()?;
    let tree = dir.join("tree");
    let now = filetime::FileTime::now();
    let mut changed = 0usize;
    for e in ours.entries() {
        if !matches!(e.mode, gix::index::entry::Mode::FILE | gix::index::entry::Mode::FILE_EXECUTABLE) {
            continue;
        }
        let path = e.path(&ours);
        let rel = Path::new(std::ffi::OsStr::from_bytes(path));
        let file = tree.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&file) else { continue };
        let same = theirs.entry_by_path(path).filter(|t| t.id == e.id).and_then(|t| {
            let m = std::fs::symlink_metadata(repo.workdir.join(rel)).ok().filter(|m| m.is_file())?;
            let mtime = filetime::FileTime::from_last_modification_time(&m);
            let clean = t.stat.size == m.len() as u32
                && i64::from(t.stat.mtime.secs) == mtime.unix_seconds()
                && t.stat.mtime.nsecs == mtime.nanoseconds()
                && m.modified().ok().is_some_and(|t| t < racy);
            clean.then_some(mtime)
        });
        let want = same.unwrap_or(now);
        if filetime::FileTime::from_last_modification_time(&meta) != want {
            filetime::set_file_mtime(&file, want)?;
            changed += 1;
        }
    }
    if changed > 0 {
        let wt = tree.to_string_lossy().into_owned();
        let index = dir.join("index");
        proc::git_with(
            &repo.workdir,
            ["-c", "index.skipHash=true", "--work-tree", wt.as_str(), "update-index", "-q", "--refresh"],
            &[("GIT_INDEX_FILE", index.as_path())],
        )?;
    }
    Ok(())
}

/// The shared checkout closest to `commit`, if a layer of the difference is small enough to be
/// cheaper than a checkout: (its folder, its commit, files changed).
fn nearest(repo: &Repo, known: &[(PathBuf, String)], commit: &str) -> Result<Option<(PathBuf, String, usize)>> {
    let mut best: Option<(PathBuf, String, usize)> = None;
    for (dir, c) in known.iter().rev().take(4) {
        let Ok(out) =
            proc::git_bytes(&repo.workdir, ["diff-tree", "-r", "-z", "--no-renames", "--name-only", c, commit])
        else {
            continue;
        };
        let changed = out.split(|b| *b == 0).filter(|p| !p.is_empty()).count();
        let files = gix::index::File::at(dir.join("index"), gix::hash::Kind::Sha1, false, Default::default())
            .map(|f| f.entries().len())
            .unwrap_or(0);
        // A layer of more than a quarter of a large tree is no longer cheap to make or to look
        // through; a thousand files always are.
        if (changed <= 1000 || changed * 4 <= files) && best.as_ref().is_none_or(|b| changed < b.2) {
            best = Some((dir.clone(), c.clone(), changed));
        }
    }
    Ok(best)
}

/// Check `commit` out into a new shared folder under `shared` (as `git worktree add` would:
/// your filters apply), made under a temporary name and renamed into place whole.
fn checkout(repo: &Repo, shared: &Path, commit: &str) -> Result<PathBuf> {
    let dir = shared.join(commit);
    let tmp = shared.join(format!(".new-{commit}-{}", std::process::id()));
    remove_dir(&tmp)?;
    std::fs::create_dir_all(tmp.join("tree"))?;
    let index = tmp.join("index");
    // Every task's index is a copy of this one, read and rewritten when its result is made:
    // version 4 (path prefixes compressed, a fifth smaller) and no checksum to compute.
    let envs = [("GIT_INDEX_FILE", index.as_path()), ("GIT_INDEX_VERSION", Path::new("4"))];
    proc::git_with(&repo.workdir, ["-c", "index.skipHash=true", "read-tree", commit], &envs)?;
    let tree = tmp.join("tree");
    let wt = tree.to_string_lossy().into_owned();
    proc::git_with(
        &repo.workdir,
        ["-c", "index.skipHash=true", "--work-tree", wt.as_str(), "checkout-index", "-a", "-f", "-u"],
        &envs,
    )?;
    super::taskdir::write_new(&tmp.join("commit"), format!("{commit}\n").as_bytes())?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another run made it at the same moment: theirs is as good.
        remove_dir(&tmp)?;
    }
    Ok(dir)
}

/// Remove shared checkouts no run's folder under `root` (the worktree folder) uses.
pub fn sweep_bases(root: &Path) -> Vec<PathBuf> {
    let shared = root.join(".bases");
    let used: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| super::taskdir::read_small(&e.path().join(".base/from"), 4096).ok().flatten())
        .map(|b| PathBuf::from(OsStr::from_bytes(&b)))
        .collect();
    let mut removed = Vec::new();
    for e in std::fs::read_dir(&shared).into_iter().flatten().flatten() {
        if !used.contains(&e.path()) && remove_dir(&e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    let _ = std::fs::remove_dir(&shared);
    removed
}

/// Snapshot the ignored folders `names` of the main worktree for the run (copy-on-write where
/// the filesystem can): every task sees them as they were now, whatever happens to them later.
/// Returns the folders taken; a name that is not an ignored folder there is a usage error.
pub fn prepare_warm(repo: &Repo, run_dir: &Path, names: &[String]) -> Result<Vec<String>> {
    let warm = warm_dir(run_dir);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut taken = Vec::new();
    for name in names {
        let rel = name.trim_matches('/');
        let safe = !rel.is_empty() && Path::new(rel).components().all(|c| matches!(c, std::path::Component::Normal(_)));
        let src = repo.workdir.join(rel);
        let is_dir = std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_dir());
        if !safe || !is_dir {
            if safe && std::fs::symlink_metadata(&src).is_err() {
                // Not built yet: nothing to offer, not an error.
                continue;
            }
            return Err(crate::error::usage(format!("parallel.warm: `{name}` is not a folder of the main worktree")));
        }
        let ignored = proc::git_output(&repo.workdir, ["check-ignore", "-q", "--", rel])?.ok();
        if !ignored {
            return Err(crate::error::usage(format!(
                "parallel.warm: `{name}` is not ignored by git; only ignored folders (build output, installed packages) can be offered warm"
            )));
        }
        taken.push(rel.to_string());
    }
    if std::fs::symlink_metadata(warm.join("done")).is_ok() {
        return Ok(taken);
    }
    remove_dir(&warm)?;
    let tmp = run_dir.join(format!(".warm-{}", std::process::id()));
    remove_dir(&tmp)?;
    for rel in &taken {
        // The layer is `layer/`: the marker beside it must not show in every worktree.
        let to = tmp.join("layer").join(rel);
        std::fs::create_dir_all(to.parent().unwrap_or(&tmp))?;
        let (from, to) = (repo.workdir.join(rel).to_string_lossy().into_owned(), to.to_string_lossy().into_owned());
        let out = proc::tool("cp", &["-a".into(), "--reflink=auto".into(), from.clone(), to], None)?;
        if !out.ok() {
            anyhow::bail!("cannot copy {from} for parallel.warm: {}", out.stderr_str().trim());
        }
    }
    super::taskdir::write_new(&tmp.join("done"), b"")?;
    std::fs::rename(&tmp, &warm)?;
    Ok(taken)
}

/// One task's layers.
#[derive(Debug, Clone)]
pub struct TaskLayers {
    pub worktree: PathBuf,
    run_dir: PathBuf,
    dir: PathBuf,
}

impl TaskLayers {
    pub fn new(worktree: &Path) -> TaskLayers {
        let run_dir = worktree.parent().unwrap_or(worktree).to_path_buf();
        let name = worktree.file_name().unwrap_or(OsStr::new("task"));
        let dir = layers_dir(&run_dir).join(name);
        TaskLayers { worktree: worktree.to_path_buf(), run_dir, dir }
    }
    /// The layers of an overlay worktree at `worktree`, if it is one.
    pub fn existing(worktree: &Path) -> Option<TaskLayers> {
        let l = TaskLayers::new(worktree);
        std::fs::symlink_metadata(l.dir.join("start-commit")).is_ok().then_some(l)
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// A dependent task's start layer: its start commit over the base.
    fn start(&self) -> PathBuf {
        self.dir.join("start")
    }
    /// The shared checkout the run's base is made from.
    fn shared_tree(run_dir: &Path) -> Option<PathBuf> {
        let from = super::taskdir::read_small(&base_dir(run_dir).join("from"), 4096).ok().flatten()?;
        Some(PathBuf::from(OsStr::from_bytes(&from)).join("tree"))
    }

    /// The commit the run's base holds; Err when it (or the shared checkout under it) is gone.
    pub fn base_commit(&self) -> std::result::Result<String, String> {
        let base = base_dir(&self.run_dir);
        let tree = TaskLayers::shared_tree(&self.run_dir);
        match super::taskdir::read_small(&base.join("commit"), 100) {
            Ok(Some(c)) if tree.as_ref().is_some_and(|t| t.is_dir()) => {
                Ok(String::from_utf8_lossy(&c).trim().to_string())
            }
            _ => Err(format!(
                "the run's base checkout {} is gone (removed while the run went on?)",
                tree.unwrap_or(base).display()
            )),
        }
    }

    /// The layers under the upper one, topmost first.
    fn lowers(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if self.start().is_dir() {
            v.push(self.start());
        }
        let warm = warm_dir(&self.run_dir);
        if std::fs::symlink_metadata(warm.join("done")).is_ok() {
            v.push(warm.join("layer"));
        }
        let delta = base_dir(&self.run_dir).join("delta");
        if delta.is_dir() {
            v.push(delta);
        }
        // Missing, the mount fails and says which layer is not there.
        v.push(TaskLayers::shared_tree(&self.run_dir).unwrap_or_else(|| base_dir(&self.run_dir).join("tree")));
        v
    }

    /// The worktree as the agent sees it (writable) or as we read it.
    pub fn view(&self, writable: bool) -> View {
        let mut lowers = self.lowers();
        let upper = if writable {
            Some((self.upper(), self.work()))
        } else {
            lowers.insert(0, self.upper());
            None
        };
        View { target: self.worktree.clone(), upper, lowers }
    }

    /// Make the task's layers (kept as they are on resume) and give the worktree's git
    /// directory `admin` an index at `start` built from the base's (true when it was made now).
    pub fn prepare(&self, repo: &Repo, admin: &Path, start: &str) -> Result<bool> {
        if !usable(&self.dir) {
            anyhow::bail!("the worktree folder {} cannot hold an overlay", self.run_dir.display());
        }
        let base = self.base_commit().map_err(anyhow::Error::msg)?;
        if self.start_commit().ok().is_some_and(|s| s != start) {
            // Its dependencies' results changed since: the task starts over on the new start.
            self.clear()?;
            remove_dir(&self.start())?;
            super::taskdir::remove_entry(&admin.join("index"))?;
        }
        std::fs::create_dir_all(self.work())?;
        if std::fs::symlink_metadata(self.upper()).is_err() {
            std::fs::create_dir_all(self.upper())?;
        }
        // The agent finds its repository through this link, as in any worktree.
        let link =
            super::taskdir::read_small(&self.worktree.join(".git"), 4096)?.context("the worktree has no .git link")?;
        super::taskdir::remove_entry(&self.upper().join(".git"))?;
        super::taskdir::write_new(&self.upper().join(".git"), &link)?;
        if base != start && std::fs::symlink_metadata(self.start()).is_err() {
            let tmp = self.dir.join("start.tmp");
            remove_dir(&tmp)?;
            std::fs::create_dir(&tmp)?;
            write_delta(repo, &base, start, &tmp)?;
            std::fs::rename(&tmp, self.start())?;
        }
        super::taskdir::remove_entry(&self.dir.join("start-commit"))?;
        super::taskdir::write_new(&self.dir.join("start-commit"), format!("{start}\n").as_bytes())?;
        if std::fs::symlink_metadata(admin.join("index")).is_err() {
            self.fresh_index(&repo.workdir, &admin.join("index"), start)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The commit the lower layers hold (what the task started from).
    pub fn start_commit(&self) -> Result<String> {
        let c = super::taskdir::read_small(&self.dir.join("start-commit"), 100)?
            .with_context(|| format!("{} records no start commit", self.dir.display()))?;
        Ok(String::from_utf8_lossy(&c).trim().to_string())
    }

    /// Write the index of a fresh worktree at `start` to `to`.
    pub fn fresh_index(&self, main: &Path, to: &Path, start: &str) -> Result<()> {
        let base = self.base_commit().map_err(anyhow::Error::msg)?;
        let tmp = to.with_extension(format!("parallel-{}", std::process::id()));
        super::taskdir::copy_new(&base_dir(&self.run_dir).join("index"), &tmp)?;
        if base != start {
            // Entries that stay keep their stat data; the others are hashed once when looked at.
            proc::git_with(
                main,
                ["-c", "index.skipHash=true", "read-tree", "-i", "-m", &base, start],
                &[("GIT_INDEX_FILE", tmp.as_path())],
            )?;
        }
        std::fs::rename(&tmp, to)?;
        Ok(())
    }

    /// Drop what the agent wrote: the upper layer goes back to holding the `.git` link only.
    pub fn clear(&self) -> Result<()> {
        // From the worktree's own folder (git wrote it; no agent reaches it under the mount),
        // never from the upper layer, which the agent wrote.
        let link = super::taskdir::read_small(&self.worktree.join(".git"), 4096)?;
        remove_dir(&self.work())?;
        // The upper layer may be large: renamed away first, so that a crash leaves no half.
        let old = self.dir.join("upper.old");
        remove_dir(&old)?;
        if std::fs::symlink_metadata(self.upper()).is_ok() {
            std::fs::rename(self.upper(), &old)?;
        }
        std::fs::create_dir_all(self.upper())?;
        std::fs::create_dir_all(self.work())?;
        if let Some(l) = link {
            super::taskdir::write_new(&self.upper().join(".git"), &l)?;
        }
        remove_dir(&old)
    }

    /// Remove the task's layers.
    pub fn remove(&self) -> Result<()> {
        remove_dir(&self.dir)
    }

    /// Paths (relative, as bytes) the upper layer changed: each file, link or whiteout, and a
    /// folder whole where none was below it or it hides what was (opaque). The worktree's own
    /// `.git` link is not among them.
    pub fn changed(&self) -> Result<Vec<(Vec<u8>, bool)>> {
        let upper = self.upper();
        let lowers = self.lowers();
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = upper.join(&rel);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if rel.as_os_str().is_empty() && e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
            };
            for e in entries {
                let e = e?;
                let name = e.file_name();
                let path = rel.join(&name);
                if rel.as_os_str().is_empty() && name == ".git" {
                    continue;
                }
                // Not following links: file_type is the entry's own.
                let ty = e.file_type()?;
                if ty.is_dir() {
                    let below =
                        lowers.iter().any(|l| std::fs::symlink_metadata(l.join(&path)).is_ok_and(|m| m.is_dir()));
                    if !below || opaque(&e.path()) {
                        out.push((path.as_os_str().as_bytes().to_vec(), true));
                    } else {
                        stack.push(path);
                    }
                } else {
                    out.push((path.as_os_str().as_bytes().to_vec(), false));
                }
            }
        }
        Ok(out)
    }

    /// Whether `rel` is in the worktree as the overlay shows it: the topmost layer that says
    /// anything of it decides (a whiteout or a file on the way hides it; an opaque folder on
    /// the way hides the layers below).
    pub fn exists(&self, rel: &Path) -> bool {
        let mut layers = vec![self.upper()];
        layers.extend(self.lowers());
        let comps: Vec<_> = rel.components().collect();
        for layer in layers {
            let mut at = layer.clone();
            let mut hidden_below = false;
            for (i, c) in comps.iter().enumerate() {
                at.push(c);
                let last = i + 1 == comps.len();
                match std::fs::symlink_metadata(&at) {
                    Err(_) => break,
                    Ok(m) if is_whiteout(&m) => return false,
                    Ok(_) if last => return true,
                    Ok(m) if !m.is_dir() => return false,
                    Ok(_) => hidden_below |= opaque(&at),
                }
            }
            if hidden_below {
                return false;
            }
        }
        false
    }

    /// Bytes the upper layer holds (what this task costs on disk beyond the shared layers).
    pub fn upper_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let mut n = 0;
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => n += 4096 + walk(&e.path()),
                    Ok(_) => n += e.metadata().map(|m| m.len()).unwrap_or(0),
                    Err(_) => {}
                }
            }
            n
        }
        walk(&self.upper())
    }
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Whether an upper folder hides the lower ones' content (removed, then made again).
fn opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    [c"trusted.overlay.opaque", c"user.overlay.opaque"].iter().any(|name| {
        let mut v = [0u8; 4];
        // SAFETY: lgetxattr writes at most v.len() bytes into v.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        n > 0 && v[0] == b'y'
    })
}

/// Write into `to` the layer that turns a checkout of `from` into one of `to_commit`: changed
/// and added files as they are there, whiteouts for the deleted.
fn write_delta(repo: &Repo, from: &str, to_commit: &str, to: &Path) -> Result<()> {
    let raw = proc::git_bytes(&repo.workdir, ["diff-tree", "-r", "-z", "--no-renames", "--raw", from, to_commit])?;
    let mut fields = raw.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut deleted = Vec::new();
    let mut written = Vec::new();
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        // `:old_mode new_mode old_id new_id status`
        let meta = String::from_utf8_lossy(meta);
        let parts: Vec<&str> = meta.trim_start_matches(':').split_whitespace().collect();
        let (Some(mode), Some(id), Some(status)) = (parts.get(1), parts.get(3), parts.get(4)) else { continue };
        let rel = PathBuf::from(OsStr::from_bytes(path));
        if status.starts_with('D') {
            deleted.push(rel);
        } else {
            written.push((rel, mode.to_string(), id.to_string()));
        }
    }
    for rel in deleted {
        let at = to.join(&rel);
        plain_parents(to, &rel)?;
        whiteout(&at).with_context(|| format!("cannot mark {} deleted", rel.display()))?;
    }
    for (rel, mode, id) in written {
        let at = to.join(&rel);
        plain_parents(to, &rel)?;
        if let Ok(m) = std::fs::symlink_metadata(&at) {
            if m.is_dir() {
                std::fs::remove_dir_all(&at)?;
            } else {
                std::fs::remove_file(&at)?;
            }
        }
        match mode.as_str() {
            "160000" => std::fs::create_dir(&at)?,
            _ => {
                let oid = gix::ObjectId::from_hex(id.as_bytes())?;
                let data = repo.gix.find_object(oid)?.detach().data;
                if mode == "120000" {
                    std::os::unix::fs::symlink(OsStr::from_bytes(&data), &at)?;
                } else {
                    std::fs::write(&at, &data)?;
                    if mode == "100755" {
                        use std::os::unix::fs::PermissionsExt;
                        std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Make every folder on the way to `rel` under `root` a plain folder (a whiteout, file or link
/// in the way is replaced).
fn plain_parents(root: &Path, rel: &Path) -> Result<()> {
    match root.join(rel).parent() {
        Some(parent) if parent != root => super::taskdir::plain_dir(root, parent),
        _ => Ok(()),
    }
}

/// Turn the overlay worktree at `worktree` into a plain checkout holding what the agent left
/// (a failed task's worktree kept for the user to look at, or `--keep-worktrees`): its start
/// commit checked out as `git worktree add` would, the upper layer copied over it as data, the
/// index at the branch's tip. Its layers go; it is then a worktree like any other.
pub fn materialize(repo: &Repo, td: &super::taskdir::TaskDir, worktree: &Path, tip: &str) -> Result<()> {
    let Some(l) = TaskLayers::existing(worktree) else { return Ok(()) };
    let start = l.start_commit()?;
    let index = td.root.join(format!("index.materialize-{}", std::process::id()));
    super::taskdir::remove_entry(&index)?;
    let envs = [("GIT_INDEX_FILE", index.as_path())];
    proc::git_with(&repo.workdir, ["read-tree", start.as_str()], &envs)?;
    let wt = worktree.to_string_lossy().into_owned();
    proc::git_with(&repo.workdir, ["--work-tree", wt.as_str(), "checkout-index", "-a", "-f", "-u"], &envs)?;
    apply(&l.upper(), worktree, Path::new(""))?;
    if tip != start {
        proc::git_with(&repo.workdir, ["read-tree", "-i", "-m", start.as_str(), tip], &envs)?;
    }
    let admin = td.admin()?;
    for to in [admin.join("index"), td.index()] {
        super::taskdir::remove_entry(&to)?;
        std::fs::copy(&index, &to)?;
    }
    std::fs::remove_file(&index)?;
    // The run's shared layers stay: tasks not yet started need them (the run removes them).
    l.remove()
}

/// Copy the layer `from` over the folder `to` as data: files and links made fresh, whiteouts
/// removing what they name, an opaque folder replacing what was there. Nothing is followed.
fn apply(from: &Path, to: &Path, rel: &Path) -> Result<()> {
    for e in std::fs::read_dir(from.join(rel))? {
        let e = e?;
        let path = rel.join(e.file_name());
        if rel.as_os_str().is_empty() && e.file_name() == ".git" {
            continue;
        }
        let meta = std::fs::symlink_metadata(e.path())?;
        let dest = to.join(&path);
        plain_parents(to, &path)?;
        if is_whiteout(&meta) {
            super::taskdir::remove_entry(&dest)?;
        } else if meta.is_dir() {
            let keep = std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) && !opaque(&e.path());
            if !keep {
                super::taskdir::remove_entry(&dest)?;
                std::fs::create_dir(&dest)?;
            }
            apply(from, to, &path)?;
        } else {
            super::taskdir::remove_entry(&dest)?;
            if meta.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(e.path())?, &dest)?;
            } else if meta.is_file() {
                std::fs::copy(e.path(), &dest)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_survive_the_variable() {
        let v = View {
            target: "/w/t".into(),
            upper: Some(("/l/u".into(), "/l/w".into())),
            lowers: vec!["/s".into(), "/b, c:d".into()],
        };
        assert_eq!(View::decode(&v.encode()), Some(v.clone()));
        let ro = View { upper: None, ..v };
        assert_eq!(View::decode(&ro.encode()), Some(ro));
        assert_eq!(escape(Path::new("/a,b:c\\d")), "/a\\,b\\:c\\\\d");
    }
}
