//! `git parallel hooks install|uninstall`: our lines in the post-merge hook, between markers,
//! so a hook the user already has keeps working and uninstall removes only ours.

use super::Context;
use crate::cli::{HooksAction, HooksArgs};
use crate::ui;
use anyhow::{Context as _, Result};
use std::path::PathBuf;

const BEGIN: &str = "# >>> git-parallel >>>";
const END: &str = "# <<< git-parallel <<<";
/// The hook body, kept in the repository as hooks/post-merge.
const BODY: &str = "git parallel clean --merged --quiet || true";
/// Where a user's hook in another language goes, to be run by ours, unchanged.
const CHAINED: &str = "post-merge.before-git-parallel";

/// Whether a hook's first line runs it with a POSIX-style shell, where our lines can go in.
fn is_shell(first: &str) -> bool {
    let Some(cmd) = first.strip_prefix("#!") else { return false };
    let mut words = cmd.split_whitespace();
    let mut prog = words.next().unwrap_or("");
    if prog.ends_with("/env") {
        prog = words.find(|w| !w.starts_with('-')).unwrap_or("");
    }
    let name = prog.rsplit('/').next().unwrap_or(prog);
    matches!(name, "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash")
}

/// The post-merge hook path, honouring core.hooksPath.
fn hook_path(ctx: &Context) -> Result<PathBuf> {
    let dir = ctx.repo.git(["rev-parse", "--git-path", "hooks"])?;
    let dir = PathBuf::from(dir);
    let dir = if dir.is_absolute() { dir } else { ctx.repo.workdir.join(dir) };
    Ok(dir.join("post-merge"))
}

fn block() -> String {
    format!("{BEGIN}\n{BODY}\n{END}\n")
}

/// `text` without our block.
fn strip(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end();
        if l == BEGIN {
            inside = true;
        } else if l == END {
            inside = false;
        } else if !inside {
            out.push_str(line);
        }
    }
    out
}

pub fn run(ctx: &Context, args: HooksArgs) -> Result<i32> {
    let path = hook_path(ctx)?;
    let existing = std::fs::read_to_string(&path).ok();
    match args.action {
        HooksAction::Install => {
            let text = match &existing {
                Some(t) if t.contains(BEGIN) => {
                    ui::out(&format!("already installed in {}\n", path.display()))?;
                    return Ok(0);
                }
                // Right after the shebang, so a hook that ends with `exit` still runs our line.
                Some(t) if is_shell(t.lines().next().unwrap_or("")) => match t.split_once('\n') {
                    Some((first, rest)) => format!("{first}\n{}{rest}", block()),
                    None => format!("{t}\n{}", block()),
                },
                // Another language (Python, Node …): keep the user's hook as it is, beside
                // ours, and run it from ours with the same arguments.
                Some(_) => {
                    let chained = path.with_file_name(CHAINED);
                    std::fs::rename(&path, &chained)
                        .with_context(|| format!("cannot move {} aside", path.display()))?;
                    format!("#!/bin/sh\n{}exec \"$(dirname \"$0\")/{CHAINED}\" \"$@\"\n", block())
                }
                None => format!("#!/bin/sh\n{}", block()),
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            let mut perm = std::fs::metadata(&path)?.permissions();
            perm.set_mode(perm.mode() | 0o755);
            std::fs::set_permissions(&path, perm)?;
            ui::out(&format!("installed post-merge hook in {}\n", path.display()))?;
        }
        HooksAction::Uninstall => {
            let Some(t) = existing.filter(|t| t.contains(BEGIN)) else {
                ui::out("not installed\n")?;
                return Ok(0);
            };
            let rest = strip(&t);
            let chained = path.with_file_name(CHAINED);
            if chained.exists() && rest.contains(CHAINED) {
                std::fs::rename(&chained, &path)?;
                ui::out(&format!("restored the hook that was in {}\n", path.display()))?;
            } else if rest.trim().is_empty() || rest.trim() == "#!/bin/sh" {
                std::fs::remove_file(&path)?;
                ui::out(&format!("removed {}\n", path.display()))?;
            } else {
                std::fs::write(&path, rest)?;
                ui::out(&format!("removed our lines from {}\n", path.display()))?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_told_from_other_languages() {
        for sh in ["#!/bin/sh", "#!/usr/bin/env bash", "#!/bin/bash -e", "#!/usr/bin/env -S zsh"] {
            assert!(is_shell(sh), "{sh}");
        }
        for other in ["#!/usr/bin/env python3", "#!/usr/bin/node", "print('x')", ""] {
            assert!(!is_shell(other), "{other}");
        }
    }

    #[test]
    fn strip_removes_only_our_block() {
        let t = format!("#!/bin/sh\n{}echo mine\nexit 0\n", block());
        assert_eq!(strip(&t), "#!/bin/sh\necho mine\nexit 0\n");
    }

    #[test]
    fn body_matches_the_shipped_hook() {
        let shipped = include_str!("../../hooks/post-merge");
        assert!(shipped.lines().any(|l| l == BODY));
    }
}
