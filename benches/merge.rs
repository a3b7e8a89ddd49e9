//! In-memory merge engines, side by side: `git merge-tree --write-tree` + `git commit-tree`
//! (subprocesses) against gix's `merge_commits` + tree write (in process), integrating 50 task
//! branches one after another onto a generated 10,000-file repository.
//! Run: cargo bench --bench merge

mod common;
use common::*;
use gix::ObjectId;
use std::collections::BTreeMap;
use std::path::Path;

const BRANCHES: usize = 50;

fn branches(root: &Path, paths: &[String]) -> (ObjectId, Vec<ObjectId>) {
    let repo = git_parallel::repo::Repo::discover(root).unwrap();
    let base = repo.head_commit().unwrap();
    let base_tree = repo.gix.find_commit(base).unwrap().tree_id().unwrap().detach();
    let tips = (0..BRANCHES)
        .map(|i| {
            let path = &paths[i * (paths.len() / BRANCHES)];
            let blob =
                git_parallel::store::objects::write_blob(&repo, format!("changed by task {i}\n").as_bytes()).unwrap();
            let tree = git_parallel::store::objects::write_tree(
                &repo,
                Some(base_tree),
                &BTreeMap::from([(path.clone(), blob)]),
            )
            .unwrap();
            git_parallel::store::objects::write_commit(&repo, tree, &[base], &format!("task {i}\n")).unwrap()
        })
        .collect();
    (base, tips)
}

fn with_git(root: &Path, home: &Path, base: ObjectId, tips: &[ObjectId]) -> String {
    let mut cur = base.to_string();
    for t in tips {
        let tree = git(root, home, &["merge-tree", "--write-tree", &cur, &t.to_string()]);
        cur = git(root, home, &["commit-tree", &tree, "-p", &cur, "-p", &t.to_string(), "-m", "merge"]);
    }
    git(root, home, &["rev-parse", &format!("{cur}^{{tree}}")])
}

fn with_gix(root: &Path, base: ObjectId, tips: &[ObjectId]) -> String {
    let repo = gix::open(root).unwrap();
    let sig = gix::actor::Signature {
        name: "Bench".into(),
        email: "bench@example.com".into(),
        time: gix::date::Time::now_utc(),
    };
    let mut cur = base;
    let mut tree_id = ObjectId::null(gix::hash::Kind::Sha1);
    for t in tips {
        let options: gix::merge::commit::Options = repo.tree_merge_options().unwrap().into();
        let mut out = repo.merge_commits(cur, *t, Default::default(), options).unwrap();
        assert!(!out.tree_merge.has_unresolved_conflicts(Default::default()));
        tree_id = out.tree_merge.tree.write().unwrap().detach();
        let commit = gix::objs::Commit {
            tree: tree_id,
            parents: [cur, *t].into_iter().collect(),
            author: sig.clone(),
            committer: sig.clone(),
            encoding: None,
            message: "merge".into(),
            extra_headers: Vec::new(),
        };
        cur = repo.write_object(&commit).unwrap().detach();
    }
    tree_id.to_string()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = tmp.path().join("repo");
    let paths = generate_repo(&root, &home, 10_000, 5);
    let (base, tips) = branches(&root, &paths);
    let mut tree_git = String::new();
    let mut tree_gix = String::new();
    let t_git = median(3, || tree_git = with_git(&root, &home, base, &tips));
    let t_gix = median(3, || tree_gix = with_gix(&root, base, &tips));
    assert_eq!(tree_git, tree_gix, "both engines give the same tree");
    println!("| engine | {BRANCHES} sequential merges, 10,000-file repository (median of 3) | per merge |");
    println!("| --- | ---: | ---: |");
    println!(
        "| git merge-tree + commit-tree (subprocesses) | {:.0} ms | {:.1} ms |",
        t_git.as_secs_f64() * 1e3,
        t_git.as_secs_f64() * 1e3 / BRANCHES as f64
    );
    println!(
        "| gix merge_commits + tree write (in process) | {:.0} ms | {:.1} ms |",
        t_gix.as_secs_f64() * 1e3,
        t_gix.as_secs_f64() * 1e3 / BRANCHES as f64
    );
}
