//! Which files a task touches: explicit `files:` (paths or globs) win; otherwise paths named in
//! the prompt's text, matched against the repository's tracked files.

use crate::error::usage;
use anyhow::Result;
use regex::Regex;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

/// The tracked files of the repository, indexed for lookups by path and basename.
pub struct TrackedFiles {
    /// Sorted paths, `/`-separated, relative to the top of the working tree.
    pub paths: Vec<String>,
    /// Built on the first lookup by basename: most plans never make one, and on a large
    /// repository building it costs more than the rest of planning.
    by_basename: OnceLock<HashMap<String, Vec<usize>>>,
}

impl TrackedFiles {
    pub fn new(mut paths: Vec<String>) -> Self {
        // The index's order is already sorted: then this is one pass.
        if !paths.is_sorted() {
            paths.sort();
        }
        paths.dedup();
        TrackedFiles { paths, by_basename: OnceLock::new() }
    }

    pub fn contains(&self, p: &str) -> bool {
        self.paths.binary_search_by(|q| q.as_str().cmp(p)).is_ok()
    }

    fn by_basename(&self) -> &HashMap<String, Vec<usize>> {
        self.by_basename.get_or_init(|| {
            let mut map: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, p) in self.paths.iter().enumerate() {
                map.entry(basename(p).to_string()).or_default().push(i);
            }
            map
        })
    }

    /// Tracked files matching a glob (`*` does not cross `/`; `**` does).
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>> {
        let g = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| usage(format!("bad glob `{pattern}`: {e}")))?
            .compile_matcher();
        Ok(self.paths.iter().filter(|p| g.is_match(p.as_str())).cloned().collect())
    }

    /// Files under a directory prefix such as `src/api/`.
    fn under(&self, dir: &str) -> Vec<String> {
        let dir = if dir.ends_with('/') { dir.to_string() } else { format!("{dir}/") };
        let start = self.paths.partition_point(|p| p.as_str() < dir.as_str());
        self.paths[start..].iter().take_while(|p| p.starts_with(&dir)).cloned().collect()
    }

    fn unique_basename(&self, name: &str) -> Option<&str> {
        match self.by_basename().get(name).map(Vec::as_slice) {
            Some([i]) => Some(&self.paths[*i]),
            _ => None,
        }
    }

    /// The one tracked file whose path ends with `/suffix`, if exactly one does.
    fn unique_suffix(&self, suffix: &str) -> Option<&str> {
        let ends = format!("/{suffix}");
        let mut hits =
            self.by_basename().get(basename(suffix))?.iter().map(|&i| &self.paths[i]).filter(|p| p.ends_with(&ends));
        let first = hits.next()?;
        hits.next().is_none().then_some(first.as_str())
    }
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Normalize a path written in a prompt or front matter to repository form; None when it
/// climbs out of the repository.
pub fn normalize_repo_path(p: &str) -> Option<String> {
    let p = p.trim().trim_start_matches("./");
    if p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Expand the `files:` of front matter: globs against the tracked files, plain paths as given
/// (a task may create a file that does not exist yet). A path outside the repository is an error.
pub fn explicit_files(entries: &[String], tracked: &TrackedFiles, prompt: &str) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for e in entries {
        let Some(norm) = normalize_repo_path(e) else {
            return Err(usage(format!("{prompt}: file `{e}` is outside the repository")));
        };
        if is_glob(&norm) {
            out.extend(tracked.glob(&norm)?);
        } else if e.ends_with('/') {
            out.extend(tracked.under(&norm));
        } else {
            out.insert(norm);
        }
    }
    Ok(out.into_iter().collect())
}

fn backticked() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"`([^`\s]+)`").unwrap())
}

fn bare_path() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // A token with an extension: letters, digits, `_`, `-`, `.`, `/`, ending in `.ext`.
    RE.get_or_init(|| {
        Regex::new(r"(?:^|[\s(\[,;:'\x22])((?:\.{0,2}/)?[A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z0-9]{1,10})\b").unwrap()
    })
}

/// Paths named in the text, resolved against the tracked files.
///
/// - an exact tracked path, or a directory prefix ending in `/`: taken;
/// - a glob: expanded against the tracked files;
/// - a bare name or partial path: taken when exactly one tracked file ends with it;
/// - a backticked path with a directory and an extension that is not tracked: taken as a file
///   the task will create.
pub fn files_in_text(text: &str, tracked: &TrackedFiles) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    let mut consider = |token: &str, quoted: bool| -> Result<()> {
        let token = token.trim_end_matches(['.', ',', ':', ';', ')']);
        let Some(norm) = normalize_repo_path(token) else {
            return Ok(());
        };
        if tracked.contains(&norm) {
            out.insert(norm);
        } else if is_glob(&norm) {
            if quoted {
                out.extend(tracked.glob(&norm)?);
            }
        } else if token.ends_with('/') {
            out.extend(tracked.under(&norm));
        } else if let Some(hit) =
            if norm.contains('/') { tracked.unique_suffix(&norm) } else { tracked.unique_basename(&norm) }
        {
            out.insert(hit.to_string());
        } else if quoted && norm.contains('/') && norm.rsplit('/').next().is_some_and(|b| b.contains('.')) {
            out.insert(norm);
        }
        Ok(())
    };
    for c in backticked().captures_iter(text) {
        consider(&c[1], true)?;
    }
    for c in bare_path().captures_iter(text) {
        consider(&c[1], false)?;
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> TrackedFiles {
        TrackedFiles::new(
            [
                "src/api/users.py",
                "src/api/orders.py",
                "src/db.py",
                "README.md",
                "web/index.ts",
                "lib/util.ts",
                "src/util.ts",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        )
    }

    #[test]
    fn names_in_text() {
        let t = repo();
        let f = files_in_text("Change `src/db.py` and users.py, see README.md. Also `src/api/*.py`.", &t).unwrap();
        assert_eq!(f, vec!["README.md", "src/api/orders.py", "src/api/users.py", "src/db.py"]);
        // util.ts is ambiguous by basename, unique by partial path.
        assert!(files_in_text("edit util.ts", &t).unwrap().is_empty());
        assert_eq!(files_in_text("edit lib/util.ts", &t).unwrap(), vec!["lib/util.ts"]);
        // A new file named with its directory.
        assert_eq!(files_in_text("create `src/api/items.py`", &t).unwrap(), vec!["src/api/items.py"]);
        // Prose with dots is not a file.
        assert!(files_in_text("e.g. this, i.e. that. Version 1.2 works.", &t).unwrap().is_empty());
    }

    #[test]
    fn explicit_globs_and_escapes() {
        let t = repo();
        assert_eq!(
            explicit_files(&["src/**/*.py".into()], &t, "p").unwrap(),
            vec!["src/api/orders.py", "src/api/users.py", "src/db.py"]
        );
        assert!(explicit_files(&["../outside.txt".into()], &t, "p").is_err());
        assert!(explicit_files(&["/etc/passwd".into()], &t, "p").is_err());
    }
}
