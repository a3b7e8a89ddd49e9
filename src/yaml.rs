//! The one place that touches serde_yaml (deprecated upstream; keep it swappable).

use serde::{de::DeserializeOwned, Serialize};

/// A YAML parse error with its 1-based line, when known.
#[derive(Debug)]
pub struct YamlError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn convert(e: serde_yaml::Error) -> YamlError {
    YamlError { line: e.location().map(|l| l.line()), message: e.to_string() }
}

/// Deeper than any document of ours: front matter nests two levels, plan.yaml five.
pub const MAX_DEPTH: usize = 32;

/// Parse a YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    check_depth(text)?;
    serde_yaml::from_str(text).map_err(convert)
}

/// Refuse documents nested deeper than [`MAX_DEPTH`] before libyaml reads them: its time grows
/// with the square of the depth (`files:` nested 100,000 deep took 40 s to reach serde_yaml's
/// recursion limit). A scan of the raw text: flow collections (`[`, `{`) outside quoted
/// scalars and comments, and block levels (strictly growing indentation, `- - x` included).
fn check_depth(text: &str) -> Result<(), YamlError> {
    let too_deep =
        |line: usize| YamlError { line: Some(line), message: format!("nested deeper than {MAX_DEPTH} levels") };
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    let mut block: Vec<usize> = Vec::new();
    // The indentation of the line that opened a block scalar (`|`, `>`): its text is not YAML.
    let mut block_scalar: Option<usize> = None;
    // The indentation and last character of the previous line with YAML on it.
    let mut prev: Option<(usize, char)> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        // Where the line's own node starts, after `- ` and `? ` indicators.
        let mut col = indent;
        if quote.is_none() && flow == 0 {
            if let Some(parent) = block_scalar {
                if rest.trim().is_empty() || indent > parent {
                    continue;
                }
                block_scalar = None;
            }
            if rest.trim().is_empty() || rest.starts_with('#') {
                continue;
            }
            while block.last().is_some_and(|&top| top >= indent) {
                block.pop();
            }
            block.push(indent);
            // Compact nested collections on one line: `- - x`, `- ? x`.
            let mut r = rest;
            while let Some(after) = ["- ", "? ", "-\t", "?\t"].iter().find_map(|p| r.strip_prefix(p)) {
                let skipped = r.len() - after.trim_start().len();
                col += skipped;
                r = &r[skipped..];
                block.push(col);
            }
            if block.len() > MAX_DEPTH {
                return Err(too_deep(i + 1));
            }
        }
        if rest.trim().is_empty() || (quote.is_none() && rest.starts_with('#')) {
            continue;
        }
        // A quote first on a line opens a scalar unless the line goes on the previous line's
        // plain scalar (`title: abc` then `  'x`).
        let line_start = prev.is_none_or(|(pi, pc)| indent <= pi || ":-?[{,".contains(pc));
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let mut code_end = line.len();
        let mut j = 0;
        while let Some(&(at, c)) = chars.get(j) {
            let next = chars.get(j + 1).map(|&(_, n)| n);
            match quote {
                // `''` is a quote inside a single-quoted scalar, `\"` one inside a double-quoted one.
                Some('\'') if c == '\'' && next == Some('\'') => j += 1,
                Some('"') if c == '\\' => j += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '#' if j == 0 || chars[j - 1].1.is_whitespace() => {
                        code_end = at;
                        break;
                    }
                    '\'' | '"' if starts_node(&line[..at], line_start, flow > 0) => quote = Some(c),
                    // In block context a bracket inside a plain scalar (`title: a[0]`) is text.
                    '[' | '{' if flow > 0 || starts_node(&line[..at], line_start, flow > 0) => {
                        flow += 1;
                        if flow + block.len() > MAX_DEPTH {
                            return Err(too_deep(i + 1));
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            j += 1;
        }
        if quote.is_none() && flow == 0 && opens_block_scalar(&line[..code_end]) {
            block_scalar = Some(col);
        }
        if let Some(last) = line[..code_end].trim_end().chars().last() {
            prev = Some((indent, last));
        }
    }
    Ok(())
}

/// Whether a quote after `before` (the line so far) starts a quoted scalar, not a plain one's
/// text; `line_start` says whether a node may start at the start of this line, `in_flow` whether
/// we are inside a flow collection (outside one, `[` and `,` in `before` were text).
fn starts_node(before: &str, line_start: bool, in_flow: bool) -> bool {
    let spaced = before.ends_with(char::is_whitespace);
    let trimmed = before.trim_end();
    let last_word = trimmed.rsplit([' ', '\t', '[', '{', ',']).next().unwrap_or("");
    // Properties (`&anchor`, `!tag`) come before the node they name.
    if spaced && last_word.starts_with(['&', '!']) {
        return starts_node(&trimmed[..trimmed.len() - last_word.len()], line_start, in_flow);
    }
    match trimmed.chars().last() {
        None => line_start,
        Some('[' | '{' | ',') => in_flow,
        // `key: 'v'`, and `{"key":'v'}` in JSON style.
        Some(':') => spaced || trimmed[..trimmed.len() - 1].ends_with(['"', '\'']),
        // `- 'x'` and `- - 'x'`, not the plain scalar `a - 'x'`.
        Some('-' | '?') => spaced && starts_node(&trimmed[..trimmed.len() - 1], line_start, in_flow),
        _ => false,
    }
}

/// Whether `code` (a line without its comment) ends with a block scalar header (`key: |-`).
fn opens_block_scalar(code: &str) -> bool {
    let code = code.trim_end();
    let Some(tok) = code.rsplit([' ', '\t']).next() else { return false };
    let before = code[..code.len() - tok.len()].trim_end();
    tok.starts_with(['|', '>'])
        && tok[1..].chars().all(|c| c == '-' || c == '+' || c.is_ascii_digit())
        && (before.is_empty() || before.ends_with([':', '-', '?']))
}

/// The top-level keys of a YAML mapping, with the 1-based line each appears on.
/// Used to warn about unknown front matter keys at their line.
pub fn top_level_keys(text: &str) -> Vec<(String, usize)> {
    let Ok(serde_yaml::Value::Mapping(map)) = from_str::<serde_yaml::Value>(text) else {
        return Vec::new();
    };
    map.keys()
        .filter_map(|k| k.as_str())
        .map(|k| {
            let line = text
                .lines()
                .position(|l| l.starts_with(k) && l[k.len()..].trim_start().starts_with(':'))
                .map(|i| i + 1)
                .unwrap_or(1);
            (k.to_string(), line)
        })
        .collect()
}

/// Serialize `value` as YAML.
pub fn to_string<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(serde_yaml::to_string(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(text: &str) -> bool {
        check_depth(text).is_ok()
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let n = 100_000;
        let flow = format!("files: {}{}\n", "[".repeat(n), "]".repeat(n));
        let start = std::time::Instant::now();
        let e = from_str::<serde_yaml::Value>(&flow).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "{:?}", start.elapsed());
        assert_eq!((e.line, e.message.as_str()), (Some(1), "nested deeper than 32 levels"));
        let mapping = format!("a: {}{}\n", "{a: ".repeat(n), "}".repeat(n));
        assert!(!depth_ok(&mapping));
        let compact = format!("files:\n{}x\n", "- ".repeat(n));
        assert!(!depth_ok(&compact));
        let indented: String = (0..100).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        assert_eq!(check_depth(&indented).unwrap_err().line, Some(33));
    }

    #[test]
    fn brackets_in_text_do_not_count() {
        let deep = "[".repeat(200);
        for text in [
            format!("title: '{deep}'\n"),
            format!("title: \"{deep}\"\nfiles: [\"a]]]]]\", 'b''{deep}']\n"),
            format!("title: x # {deep}\n"),
            format!("title: |\n  {deep}\n    {deep}\nfiles: [a]\n"),
            format!("title: a[{deep}\n"),
            format!("title: abc\n  {deep}\n"),
            format!("files:\n  - '{deep}'\n  - [&a '{deep}', {{\"k\":\"{deep}\"}}]\n"),
            format!("files: [\n  a,\n  '{deep}',\n]\n"),
        ] {
            assert!(depth_ok(&text), "{text}");
        }
    }

    #[test]
    fn text_cannot_hide_nesting() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        for text in [
            // Not quoted scalars: the quote is inside a plain scalar.
            format!("title: don't\nfiles: {deep}\n"),
            format!("title: a - 'x\nfiles: {deep}\n"),
            format!("title: a:'x\nfiles: {deep}\n"),
            // Flow collections after properties, in flow context, first on a line.
            format!("files: &a !t {deep}\n"),
            format!("files: [a, b{deep}]\n"),
            format!("files:\n  {deep}\n"),
            format!("- {deep}\n"),
            // Not a comment: `#` inside a word.
            format!("title: a#b\nfiles: {deep}\n"),
            // A sibling of a block scalar's key is YAML again.
            format!("- title: |\n    text\n  files: {deep}\n"),
            // A line going on a plain scalar: its quote opens nothing.
            format!("title: abc\n  'x\nfiles: {deep} # '\n"),
            // Quoted `]` after a property or a JSON-style key closes nothing.
            format!("files: {}\n", "[&a ']', !t ']', {\"k\":\"]\"}, ".repeat(40)),
        ] {
            assert!(!depth_ok(&text), "{text}");
        }
    }

    #[test]
    fn our_own_documents_pass() {
        let text = "version: 1\ntasks:\n- id: a\n  files:\n  - src/a.rs\n  depends_on: []\n  after: [b, c]\n  \
                    note: |-\n    line one\n    line two\n- id: b\n  files: [x, {y: [z]}]\nschedule:\n  waves:\n  - - a\n    - b\n";
        let v: serde_yaml::Value = from_str(text).unwrap();
        assert_eq!(v["tasks"][1]["id"].as_str(), Some("b"));
    }
}
