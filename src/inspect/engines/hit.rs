//! What a rule found: the rule, the engine, where, and a short escaped snippet for people.

use serde::{Deserialize, Serialize};

use crate::rules::RuleAction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Yara,
    Regex,
    /// A rule built from other rules (`requires`).
    Meta,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub rule: String,
    pub engine: Engine,
    /// Where it matched (`1.2`, `1.2!docs/a.exe`; `envelope` for envelope targets).
    pub part_path: String,
    /// The regex target or YARA part kind that matched (`subject`, `attachment`, …).
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Byte offset of the match in the target, when the rule matched a pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The matched bytes with a little context, escaped (never raw attacker bytes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub snippet: String,
    pub score: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// Bytes of context kept on each side of a match, and the most bytes of a match shown.
const CONTEXT: usize = 16;
const MAX_MATCH: usize = 48;

/// A short, printable rendering of `data[start..end]` with a little context: printable ASCII
/// as is, everything else as `\xNN` (or `\n`, `\r`, `\t`), `…` where something was cut.
pub fn snippet(data: &[u8], start: usize, end: usize) -> String {
    let start = start.min(data.len());
    let end = end.clamp(start, data.len());
    let from = start.saturating_sub(CONTEXT);
    let shown_end = end.min(start + MAX_MATCH);
    let to = (shown_end + CONTEXT).min(data.len());
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    escape_into(&data[from..to], &mut out);
    if to < data.len() {
        out.push('…');
    }
    out
}

pub fn escape_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_keeps_context_and_escapes() {
        let data = b"0123456789abcdefghijklmnopqrstuvwxyz\x00\xff\nEND";
        let s = snippet(data, 20, 24);
        assert_eq!(s, "…456789abcdefghijklmnopqrstuvwxyz\\x00\\xff\\nE…");
        assert_eq!(snippet(b"short", 0, 5), "short");
    }

    #[test]
    fn snippet_is_bounded_and_safe_with_bad_ranges() {
        let data = vec![b'a'; 10_000];
        assert!(snippet(&data, 100, 9_000).len() < 100);
        assert_eq!(snippet(b"abc", 10, 20), "…abc".chars().skip(1).collect::<String>());
        let mut s = String::new();
        escape_into(b"\x1b[31m\\", &mut s);
        assert_eq!(s, "\\x1b[31m\\\\");
    }
}
