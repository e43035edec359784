//! The one summary line per message: everything an administrator greps for, with every
//! attacker-controlled value escaped so a crafted Subject cannot forge a log line.

use tracing::info;

use crate::inspect::Report;
use crate::inspect::hit::escape_into;

/// Escapes a value for a `key=value` log line: quoted when it holds spaces or quotes, every
/// control or non-ASCII byte as `\xNN`, and cut at 200 bytes.
pub fn escape(value: &str) -> String {
    let bytes = value.as_bytes();
    let cut = &bytes[..bytes.len().min(200)];
    let mut out = String::new();
    escape_into(cut, &mut out);
    let out = out.replace('"', "\\\"");
    let needs_quotes = out.is_empty() || out.contains([' ', '=', '"']);
    let mut s = if needs_quotes { format!("\"{out}\"") } else { out };
    if bytes.len() > 200 {
        s.push('…');
    }
    s
}

/// `action` is what the MTA was told (`accept`, `hold`, `discard`, `reply 550`, …);
/// `quarantine_id` the store entry, when the message was quarantined.
pub fn message(r: &Report, action: &str, quarantine_id: Option<&str>) {
    let e = &r.envelope;
    let coverage = if r.coverage.complete {
        "complete".to_string()
    } else {
        r.coverage
            .uninspectable
            .iter()
            .map(|u| format!("{}={}", u.reason, u.part_path))
            .collect::<Vec<_>>()
            .join(",")
    };
    info!(
        target: "inspect_milter::message",
        queue_id = %escape(e.queue_id.as_deref().unwrap_or("-")),
        message_id = %escape(r.message.message_id.as_deref().unwrap_or("-")),
        client = %escape(&format!("{}[{}]", e.client.name, e.client.addr.as_deref().unwrap_or("?"))),
        from = %escape(&e.sender),
        rcpt = %escape(&e.recipients.join(",")),
        tls = %escape(e.tls.as_ref().map_or("none", |t| t.version.as_str())),
        cipher = %escape(e.tls.as_ref().and_then(|t| t.cipher.as_deref()).unwrap_or("-")),
        decision = %r.decision,
        dry_run = r.dry_run,
        score = r.score,
        rules = %escape(&r.deciding_rules().join(",")),
        coverage = %escape(&coverage),
        size = r.message.received_bytes,
        scan_ms = r.timings.total_us / 1000,
        action = %escape(action),
        quarantine_id = %quarantine_id.unwrap_or("-"),
        "message"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_cannot_forge_a_line() {
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("two words"), "\"two words\"");
        assert_eq!(escape("x\nqueue_id=FAKE decision=accept"), "\"x\\nqueue_id=FAKE decision=accept\"");
        assert_eq!(escape("a\"b"), "\"a\\\"b\"");
        assert_eq!(escape(""), "\"\"");
        assert_eq!(escape("caf\u{e9}"), "caf\\xc3\\xa9");
        assert!(escape(&"a".repeat(500)).ends_with('…'));
    }
}
