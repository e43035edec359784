//! The regex engine: one multi-pattern set pass per buffer and target kind, then the exact
//! location only for patterns that matched.

use std::collections::HashMap;

use crate::inspect::engines::hit::{Engine, Hit, snippet};
use crate::inspect::target::{Target, TargetKind};
use crate::inspect::{Anomaly, Deadline, Stage, Uninspectable};
use crate::milter::Envelope;
use crate::rules::regex::{MatchMode, RegexRules, RegexTarget};

/// Where a pattern first matched.
struct Found {
    part_path: String,
    target: String,
    content_type: Option<String>,
    filename: Option<String>,
    offset: usize,
    snippet: String,
}

/// The regex key a walk target feeds, if any.
fn key(t: &Target<'_>) -> Option<RegexTarget> {
    Some(match t.kind {
        TargetKind::Subject => RegexTarget::Subject,
        // `header:<Name>` is the message's own header: the headers of an attached or quoted
        // message (a bounce, a forward) say nothing about who sent this one. They are still
        // searched through `headers` (each header block, raw).
        TargetKind::Header if t.part_path != "0" => return None,
        TargetKind::Header => RegexTarget::Header(t.header_name.as_deref()?.to_ascii_lowercase()),
        TargetKind::RawHeaders => RegexTarget::Headers,
        TargetKind::Text | TargetKind::HtmlText => RegexTarget::Body,
        TargetKind::Html => RegexTarget::Html,
        TargetKind::Url => RegexTarget::Url,
        TargetKind::AttachmentName => RegexTarget::AttachmentName,
        TargetKind::AttachmentType => RegexTarget::AttachmentType,
        TargetKind::Attachment | TargetKind::ArchiveMember | TargetKind::RawPart => return None,
    })
}

/// Runs every regex rule over the targets, the envelope, the anomalies (as `code detail`) and
/// the uninspected parts (as `reason`).
pub fn scan(
    rules: &RegexRules,
    targets: &[Target<'_>],
    envelope: &Envelope,
    anomalies: &[Anomaly],
    uninspected: &[Uninspectable],
) -> Vec<Hit> {
    scan_until(rules, targets, envelope, anomalies, uninspected, Deadline::never()).0
}

/// [`scan`] inside a deadline: the part paths of targets not reached before it come back
/// beside the hits (each once, in order). Each target is one pass of the set (linear in the
/// target: the regex crate's automata never backtrack) and at most one `find` per pattern
/// that matched, so the work is linear in the bytes scanned times the rule count.
pub fn scan_until(
    rules: &RegexRules,
    targets: &[Target<'_>],
    envelope: &Envelope,
    anomalies: &[Anomaly],
    uninspected: &[Uninspectable],
    deadline: Deadline,
) -> (Vec<Hit>, Vec<String>) {
    let mut unfinished: Vec<String> = Vec::new();
    if rules.rules.is_empty() {
        return (Vec::new(), unfinished);
    }
    let mut found: HashMap<(usize, usize), Found> = HashMap::new();
    let mut feed =
        |key: &RegexTarget, data: &[u8], part: &str, ct: Option<&String>, filename: Option<&String>| {
            let Some(ts) = rules.sets.get(key) else { return };
            for idx in ts.matches(data) {
                let (ri, pi) = ts.entries[idx];
                found.entry((ri, pi)).or_insert_with(|| {
                    let m = rules.rules[ri].patterns[pi].find(data);
                    let (s, e) = m.map_or((0, 0), |m| (m.start(), m.end()));
                    Found {
                        part_path: part.to_string(),
                        target: key.to_string(),
                        content_type: ct.cloned(),
                        filename: filename.cloned(),
                        offset: s,
                        snippet: snippet(data, s, e),
                    }
                });
            }
        };
    let mut late = false;
    for t in targets {
        if let Some(k) = key(t) {
            late = late || deadline.passed(Stage::Regex);
            if late {
                if unfinished.last() != Some(&t.part_path) {
                    unfinished.push(t.part_path.clone());
                }
                continue;
            }
            feed(&k, &t.data, &t.part_path, t.content_type.as_ref(), t.filename.as_ref());
        }
    }
    let env = "envelope";
    feed(&RegexTarget::EnvelopeFrom, envelope.sender.as_bytes(), env, None, None);
    for r in &envelope.recipients {
        feed(&RegexTarget::EnvelopeRcpt, r.as_bytes(), env, None, None);
    }
    if let Some(h) = &envelope.helo {
        feed(&RegexTarget::Helo, h.as_bytes(), env, None, None);
    }
    if let Some(a) = &envelope.client.addr {
        feed(&RegexTarget::ClientAddr, a.as_bytes(), env, None, None);
    }
    feed(&RegexTarget::ClientName, envelope.client.name.as_bytes(), env, None, None);
    for a in anomalies {
        feed(&RegexTarget::Anomaly, format!("{} {}", a.code, a.detail).as_bytes(), &a.part_path, None, None);
    }
    for u in uninspected {
        feed(&RegexTarget::Uninspected, u.reason.as_str().as_bytes(), &u.part_path, None, None);
    }

    let mut hits = Vec::new();
    for (ri, rule) in rules.rules.iter().enumerate() {
        if rule.patterns.is_empty() {
            continue;
        }
        let matched: Vec<&Found> = (0..rule.patterns.len()).filter_map(|pi| found.get(&(ri, pi))).collect();
        let hit = match rule.mode {
            MatchMode::Any => !matched.is_empty(),
            MatchMode::All => matched.len() == rule.patterns.len(),
        };
        if !hit {
            continue;
        }
        let first = matched[0];
        hits.push(Hit {
            rule: rule.id.clone(),
            engine: Engine::Regex,
            part_path: first.part_path.clone(),
            target: first.target.clone(),
            content_type: first.content_type.clone(),
            filename: first.filename.clone(),
            offset: Some(first.offset as u64),
            snippet: first.snippet.clone(),
            score: rule.score,
            action: rule.action,
            description: rule.description.clone(),
        });
    }
    (hits, unfinished)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::rules::{CompileOptions, Source, compile};

    fn rules(text: &str) -> RegexRules {
        let (set, diags) =
            compile(&[Source { origin: "t.yaml".into(), text: text.into() }], CompileOptions::default());
        assert!(!diags.iter().any(|d| d.is_error()), "{diags:?}");
        set.unwrap().regex
    }

    fn t(kind: TargetKind, path: &str, data: &'static [u8]) -> Target<'static> {
        Target {
            kind,
            part_path: path.into(),
            data: Cow::Borrowed(data),
            content_type: None,
            filename: None,
            depth: 1,
            in_archive: false,
            header_name: None,
            link_text: None,
        }
    }

    #[test]
    fn any_and_all_across_targets() {
        let r = rules(
            "rules:\n  - id: urgent\n    targets: [subject, body]\n    patterns: [urgent, 'wire transfer']\n    match: all\n    score: 3\n  - id: either\n    targets: [body]\n    patterns: [nomatch, transfer]\n    score: 1\n",
        );
        let targets = [
            t(TargetKind::Subject, "0", b"URGENT request"),
            t(TargetKind::Text, "1", b"please do a wire transfer today"),
        ];
        let hits = scan(&r, &targets, &Envelope::default(), &[], &[]);
        let ids: Vec<&str> = hits.iter().map(|h| h.rule.as_str()).collect();
        assert_eq!(ids, vec!["urgent", "either"]);
        assert_eq!(hits[0].part_path, "0");
        assert_eq!(hits[0].target, "subject");
        assert_eq!(hits[0].offset, Some(0));
        assert_eq!(hits[1].snippet, "…lease do a wire transfer today");
        assert_eq!(hits[1].offset, Some(17));
        // `all` fails when one pattern is missing.
        let hits = scan(&r, &[t(TargetKind::Subject, "0", b"urgent")], &Envelope::default(), &[], &[]);
        assert!(hits.is_empty());
    }

    #[test]
    fn header_targets_match_by_name_case_insensitively() {
        let r =
            rules("rules:\n  - id: rt\n    targets: ['header:Reply-To']\n    pattern: evil\n    score: 1\n");
        let mut h = t(TargetKind::Header, "0", b"x@evil.example");
        h.header_name = Some("REPLY-TO".into());
        let mut other = t(TargetKind::Header, "0", b"x@evil.example");
        other.header_name = Some("From".into());
        assert_eq!(scan(&r, &[other.clone()], &Envelope::default(), &[], &[]).len(), 0);
        assert_eq!(scan(&r, &[other, h.clone()], &Envelope::default(), &[], &[]).len(), 1);
        let mut quoted = h;
        quoted.part_path = "2".into();
        assert!(
            scan(&r, &[quoted], &Envelope::default(), &[], &[]).is_empty(),
            "an attached message's header"
        );
    }

    #[test]
    fn envelope_targets() {
        let r = rules(
            "rules:\n  - id: from\n    targets: [envelope.from]\n    pattern: '@bad\\.example$'\n    score: 1\n  - id: rcpt\n    targets: [envelope.rcpt]\n    pattern: '^ceo@'\n    score: 1\n  - id: helo\n    targets: [helo, client.addr]\n    pattern: '^192\\.0\\.2\\.'\n    score: 1\n",
        );
        let env = Envelope {
            sender: "x@bad.example".into(),
            recipients: vec!["a@ok".into(), "ceo@ok".into()],
            client: crate::milter::envelope::Client { addr: Some("192.0.2.9".into()), ..Default::default() },
            ..Envelope::default()
        };
        let hits = scan(&r, &[], &env, &[], &[]);
        assert_eq!(hits.iter().map(|h| h.rule.as_str()).collect::<Vec<_>>(), vec!["from", "rcpt", "helo"]);
        assert!(hits.iter().all(|h| h.part_path == "envelope"));
    }

    #[test]
    fn anomalies_and_uninspected_parts_are_targets_too() {
        let r = rules(
            "rules:\n  - id: pw_zip\n    targets: [uninspected]\n    pattern: '^encrypted-archive$'\n    score: 1\n  - id: brand\n    targets: [anomaly]\n    pattern: '^display-name-brand '\n    score: 1\n",
        );
        let anomalies = [Anomaly {
            code: "display-name-brand".into(),
            part_path: "0".into(),
            detail: "paypal from=x.example".into(),
        }];
        let un = [Uninspectable {
            reason: crate::inspect::Reason::EncryptedArchive,
            part_path: "2!a.exe".into(),
            detail: String::new(),
        }];
        let hits = scan(&r, &[], &Envelope::default(), &anomalies, &un);
        assert_eq!(
            hits.iter().map(|h| (h.rule.as_str(), h.part_path.as_str())).collect::<Vec<_>>(),
            vec![("pw_zip", "2!a.exe"), ("brand", "0")]
        );
    }

    #[test]
    fn binary_targets_are_not_fed_to_regex_rules() {
        let r = rules("rules:\n  - id: any\n    targets: [body]\n    pattern: MZ\n    score: 1\n");
        assert!(
            scan(&r, &[t(TargetKind::Attachment, "2", b"MZ\x90")], &Envelope::default(), &[], &[]).is_empty()
        );
    }
}
