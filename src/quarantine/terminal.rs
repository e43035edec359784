//! Making attacker-controlled text safe to print. Subjects, senders, header lines and snippets
//! come from whoever sent the mail; printed raw, an escape sequence in a subject can rewrite
//! the reviewer's screen (hide a line, fake a state, set the window title) and a bidi override
//! can make `exe.pdf` read as `fdp.exe`. So every such string goes through [`escape`] before a
//! human-readable line, and JSON output through [`json_safe`].
//!
//! The escaping is for safety, not round-tripping: backslashes are left alone, so snippets the
//! report already escaped (`\x1b`) print once, not as `\\x1b`.

/// `s` with every control character (C0, DEL, C1) and every invisible or direction-changing
/// format character written as an escape: `\n`, `\r`, `\t`, `\x1b`, `\u{202e}`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Bytes decoded as UTF-8 (invalid sequences as U+FFFD), then [`escape`]d.
pub fn escape_bytes(b: &[u8]) -> String {
    escape(&String::from_utf8_lossy(b))
}

/// [`escape`], then cut to at most `max` characters with `…` marking the cut.
pub fn escape_cut(s: &str, max: usize) -> String {
    let e = escape(s);
    if e.chars().count() <= max {
        return e;
    }
    let mut out: String = e.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// JSON text from serde_json with the characters it leaves raw but a terminal acts on (DEL,
/// C1 controls, bidi and invisible format characters) written as `\uXXXX`. Still the same
/// JSON: serde_json already escapes C0 controls in strings, and outside strings writes only
/// ASCII punctuation and whitespace, so every character replaced is inside a string, where
/// `\uXXXX` means exactly that character.
pub fn json_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (c.is_control() && c >= '\u{7f}') || is_hidden(c) {
            // All of them are in the Basic Multilingual Plane: one \u escape each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that change how the surrounding text is shown without being visible
/// themselves: bidi controls, zero-width characters, the byte-order mark, interlinear
/// annotation marks, and line and paragraph separators.
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_controls_are_neutralised() {
        assert_eq!(escape("a\x1b[31mred\x07"), "a\\x1b[31mred\\x07");
        assert_eq!(escape("two\r\nlines\tx"), "two\\r\\nlines\\tx");
        assert_eq!(escape("\u{9b}31m\u{7f}"), "\\x9b31m\\x7f");
        assert_eq!(escape("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(escape("zero\u{200b}width\u{feff}"), "zero\\u{200b}width\\u{feff}");
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for s in ["Rechnung März – 100 €", "日本語の件名", "a\\x1b stays as written", "<eve@example.net>"]
        {
            assert_eq!(escape(s), s);
        }
    }

    #[test]
    fn invalid_utf8_cannot_smuggle_controls() {
        assert_eq!(escape_bytes(b"ok\xff\x1b]0;title\x07"), "ok\u{fffd}\\x1b]0;title\\x07");
    }

    #[test]
    fn cutting_counts_characters_after_escaping() {
        assert_eq!(escape_cut("short", 10), "short");
        assert_eq!(escape_cut("äöüäöüäöüäöü", 5), "äöüä…");
        assert_eq!(escape_cut("\x1b\x1b\x1b", 6), "\\x1b\\…");
    }

    #[test]
    fn json_stays_json_without_raw_terminal_controls() {
        let v = serde_json::json!({"subject": "a\u{9b}b\u{202e}c\u{7f}\x1b"});
        for json in [serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap()] {
            let safe = json_safe(&json);
            assert!(safe.chars().all(|c| c == '\n' || !c.is_control() && !is_hidden(c)), "{safe}");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
        }
    }
}
