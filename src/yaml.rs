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

/// Parse a YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(convert)
}

/// The top-level keys of a YAML mapping, with the 1-based line each appears on.
/// Used to warn about unknown front matter keys at their line.
pub fn top_level_keys(text: &str) -> Vec<(String, usize)> {
    let Ok(serde_yaml::Value::Mapping(map)) = serde_yaml::from_str::<serde_yaml::Value>(text) else {
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
