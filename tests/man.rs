//! The committed man pages must match the clap definitions.
//! Regenerate with: GIT_PARALLEL_BLESS=1 cargo test --test man

#[test]
fn man_pages_are_fresh() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let bless = std::env::var_os("GIT_PARALLEL_BLESS").is_some();
    let pages = git_parallel::man::pages().unwrap();
    let mut stale = Vec::new();
    for (name, text) in &pages {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, text).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
            stale.push(name.clone());
        }
    }
    let expected: std::collections::BTreeSet<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".1"))
                .collect()
        })
        .unwrap_or_default();
    assert!(stale.is_empty(), "stale man pages {stale:?}: run GIT_PARALLEL_BLESS=1 cargo test --test man");
    if !bless {
        assert_eq!(on_disk, expected, "man/ has extra or missing pages");
    }
    let subcommands = <git_parallel::cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .count();
    assert_eq!(pages.len(), subcommands + 1, "one page for git-parallel and one per subcommand");
}

/// Installed as the README says (binary in ~/.cargo/bin, pages in ~/.cargo/share/man/man1),
/// `git help parallel` shows our page.
#[test]
fn git_help_finds_the_installed_page() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let bin = home.join(".cargo/bin");
    let man1 = home.join(".cargo/share/man/man1");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&man1).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_git-parallel"), bin.join("git-parallel")).unwrap();
    for (name, text) in git_parallel::man::pages().unwrap() {
        std::fs::write(man1.join(name), text).unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = std::process::Command::new("git")
        .args(["help", "parallel"])
        .env("HOME", home)
        .env("PATH", path)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env_remove("MANPATH")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("git-parallel - Plan, run and integrate"), "{text}");
}
