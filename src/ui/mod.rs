//! Human output (tables, narration) and JSON output. stdout carries the answer; stderr the
//! narration.

pub mod plan;
pub mod progress;
pub mod report;
pub mod run;

use std::io::Write;

/// Write the answer to stdout; a closed pipe surfaces as an io error that exits quietly.
pub fn out(text: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// Write a value as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    out(&s)?;
    Ok(())
}

/// Narration on stderr (never fails the command).
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Text from an agent made safe for a terminal: control characters (escape sequences that
/// could move the cursor, retitle the window or write the clipboard with OSC 52) are shown as
/// `\u{..}` escapes; newlines and tabs stay.
pub fn sanitize(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text.to_string();
    }
    text.chars()
        .map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// Minutes as a short human duration.
pub fn minutes(m: f64) -> String {
    if m <= 0.0 {
        "0m".into()
    } else if m < 1.0 {
        format!("{:.0}s", m * 60.0)
    } else if m < 90.0 {
        format!("{:.0}m", m)
    } else {
        format!("{}h{:02}m", (m / 60.0).floor() as u64, (m % 60.0).round() as u64)
    }
}

/// Time of day (UTC) of `secs` since the epoch, for "paused until 14:32:05 UTC".
pub fn clock(secs: f64) -> String {
    let secs = secs.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Milliseconds as a short human duration.
pub fn millis(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Left-aligned table with two-space gaps; widths from the content.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = String>| {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i + 1 == cols {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().map(|h| h.to_string()));
    for r in rows {
        out.push_str(&line(&mut r.iter().cloned()));
    }
    out
}

#[cfg(test)]
mod sanitize_tests {
    #[test]
    fn escapes_terminal_controls_but_keeps_lines() {
        assert_eq!(super::sanitize("a\tb\nc"), "a\tb\nc");
        let osc52 = "\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}done";
        let safe = super::sanitize(osc52);
        assert!(!safe.contains('\u{1b}') && !safe.contains('\u{7}'), "{safe}");
        assert!(safe.ends_with("done"));
        assert!(!super::sanitize("\u{9b}31m").contains('\u{9b}'), "C1 controls too");
    }
}
