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
        // Only on a message that carries a valid release mark: why it was let through.
        released = r.released.as_deref().map(|id| tracing::field::display(escape(id))),
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

    /// A released message's line says so (`released=ID`); any other has no such field.
    #[test]
    fn a_released_message_says_so() {
        use crate::inspect::report::*;
        let line = |released: Option<&str>| {
            let report = Report {
                version: REPORT_VERSION,
                rules: "test".into(),
                message: MessageFacts::default(),
                envelope: Default::default(),
                decision: crate::inspect::Decision::Quarantine,
                dry_run: false,
                released: released.map(str::to_string),
                score: 12,
                reasons: vec![],
                hits: vec![],
                coverage: CoverageReport { complete: true, uninspectable: vec![] },
                anomalies: vec![],
                parts: vec![],
                targets: Default::default(),
                timings: Timings::default(),
            };
            let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
            let sink = std::sync::Arc::clone(&out);
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || Sink(std::sync::Arc::clone(&sink)))
                .finish();
            tracing::subscriber::with_default(subscriber, || message(&report, "accept", None));
            String::from_utf8(out.lock().unwrap().clone()).unwrap()
        };
        let held = line(Some("20261128T212201Z-3539c187f233"));
        assert!(
            held.contains("action=accept quarantine_id=- released=20261128T212201Z-3539c187f233"),
            "{held}"
        );
        assert!(!line(None).contains("released"), "{}", line(None));
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
