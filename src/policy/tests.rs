// Each test changes one field of the default policy; that reads best as an assignment.
#![allow(clippy::field_reassign_with_default)]

use std::collections::BTreeMap;

use super::*;
use crate::config::policy::{RawPolicy, default_for};
use crate::inspect::Reason;
use crate::inspect::hit::Engine;
use crate::inspect::report::{CoverageReport, MessageFacts, REPORT_VERSION, Timings};
use crate::milter::envelope::Tls;

fn cfg() -> PolicyConfig {
    PolicyConfig::default()
}

fn hit(rule: &str, score: i64, action: Option<RuleAction>) -> Hit {
    Hit {
        rule: rule.into(),
        engine: Engine::Regex,
        part_path: "1".into(),
        target: "body".into(),
        content_type: None,
        filename: None,
        offset: Some(0),
        snippet: String::new(),
        score,
        action,
        description: String::new(),
    }
}

fn un(reason: Reason, path: &str) -> Uninspectable {
    Uninspectable { reason, part_path: path.into(), detail: String::new() }
}

fn report(outcome: &Outcome, hits: Vec<Hit>, uninspectable: Vec<Uninspectable>) -> Report {
    Report {
        version: REPORT_VERSION,
        rules: "test".into(),
        message: MessageFacts::default(),
        envelope: Default::default(),
        decision: outcome.decision,
        dry_run: false,
        released: None,
        score: outcome.score,
        reasons: outcome.reasons.clone(),
        hits,
        coverage: CoverageReport { complete: uninspectable.is_empty(), uninspectable },
        anomalies: vec![],
        parts: vec![],
        targets: Default::default(),
        timings: Timings::default(),
    }
}

#[test]
fn thresholds_map_scores_to_decisions() {
    for (score, want) in [
        (0, Decision::Accept),
        (4, Decision::Accept),
        (5, Decision::Tag),
        (9, Decision::Tag),
        (10, Decision::Quarantine),
        (20, Decision::Reject),
        (100, Decision::Reject),
    ] {
        let o = decide(&cfg(), &[hit("r", score, None)], &[], false);
        assert_eq!(o.decision, want, "score {score}");
        assert_eq!(o.score, score);
    }
}

#[test]
fn a_rule_counts_once_however_often_it_hits() {
    let hits = [hit("a", 3, None), hit("a", 3, None), hit("a", 4, None), hit("b", 2, None)];
    assert_eq!(score(&hits), 6);
}

#[test]
fn no_single_weak_signal_flags_but_several_do() {
    assert_eq!(decide(&cfg(), &[hit("weak", 2, None)], &[], false).decision, Decision::Accept);
    let three = [hit("a", 2, None), hit("b", 2, None), hit("c", 2, None)];
    assert_eq!(decide(&cfg(), &three, &[], false).decision, Decision::Tag);
}

#[test]
fn an_explicit_rule_action_is_a_floor() {
    let o = decide(&cfg(), &[hit("eicar", 0, Some(RuleAction::Reject))], &[], false);
    assert_eq!(o.decision, Decision::Reject);
    assert!(o.reasons.iter().any(|r| r == "rule eicar: action reject"), "{:?}", o.reasons);
    let o = decide(&cfg(), &[hit("t", 25, Some(RuleAction::Tag))], &[], false);
    assert_eq!(o.decision, Decision::Reject, "the score still counts");
}

#[test]
fn every_uninspectable_reason_gets_its_design_default() {
    let want = [
        (Reason::SmimeEncrypted, Decision::Accept),
        (Reason::PgpEncrypted, Decision::Accept),
        (Reason::EncryptedArchive, Decision::Quarantine),
        (Reason::EncryptedOffice, Decision::Quarantine),
        (Reason::EncryptedPdf, Decision::Quarantine),
        (Reason::OverDepth, Decision::Quarantine),
        (Reason::OverParts, Decision::Quarantine),
        (Reason::ExpansionRatio, Decision::Quarantine),
        (Reason::ScanTimeout, Decision::Quarantine),
        (Reason::OverSize, Decision::Tag),
        (Reason::UnsupportedArchive, Decision::Tag),
        (Reason::ParseError, Decision::Tag),
    ];
    for (reason, d) in want {
        assert_eq!(default_for(reason), d, "{reason}");
        let o = decide(&cfg(), &[], &[un(reason, "2")], false);
        assert_eq!(o.decision, d, "{reason}");
    }
}

#[test]
fn per_reason_policy_is_configurable() {
    let mut raw = RawPolicy::default();
    raw.uninspectable = BTreeMap::from([
        (Reason::SmimeEncrypted, Decision::Tag),
        (Reason::EncryptedArchive, Decision::Reject),
    ]);
    let c = raw.validate().unwrap();
    assert_eq!(decide(&c, &[], &[un(Reason::SmimeEncrypted, "1")], false).decision, Decision::Tag);
    assert_eq!(decide(&c, &[], &[un(Reason::EncryptedArchive, "1")], false).decision, Decision::Reject);
    assert_eq!(decide(&c, &[], &[un(Reason::EncryptedPdf, "1")], false).decision, Decision::Quarantine);
}

#[test]
fn a_truncated_message_is_never_clean() {
    let o = decide(&cfg(), &[], &[], true);
    assert_eq!(o.decision, Decision::Tag);
    let mut raw = RawPolicy::default();
    raw.truncated = Decision::Accept;
    assert_eq!(raw.validate().unwrap_err()[0].0, "policy.truncated");
}

#[test]
fn invalid_policies_name_their_key() {
    let mut raw = RawPolicy::default();
    raw.thresholds.quarantine = 30;
    assert_eq!(raw.validate().unwrap_err()[0].0, "policy.thresholds");
    let mut raw = RawPolicy::default();
    raw.reject_reply = "451 4.7.1 no".into();
    assert_eq!(raw.validate().unwrap_err()[0].0, "policy.reject_reply");
    let mut raw = RawPolicy::default();
    raw.header_prefix = "X-Bad: ".into();
    assert_eq!(raw.validate().unwrap_err()[0].0, "policy.header_prefix");
    let mut raw = RawPolicy::default();
    raw.uninspectable.insert(Reason::ParseError, Decision::Discard);
    assert_eq!(raw.validate().unwrap_err()[0].0, "policy.uninspectable");
}

#[test]
fn the_three_headers() {
    let hits = vec![hit("a", 6, None), hit("info", 0, None), hit("b", 5, Some(RuleAction::Quarantine))];
    let un = vec![un(Reason::EncryptedArchive, "2!a b,c.zip"), un(Reason::OverSize, "3")];
    let o = decide(&cfg(), &hits, &un, false);
    let mut r = report(&o, hits, un);
    r.envelope.tls = Some(Tls {
        version: "TLSv1.3".into(),
        cipher: Some("TLS_AES_256_GCM_SHA384".into()),
        bits: Some(256),
        ..Default::default()
    });
    assert_eq!(verdict_header(&r), "quarantine score=11 rules=a,b");
    assert_eq!(coverage_header(&r), "partial; encrypted-archive=2!a%20b%2Cc.zip, over-size=3");
    assert_eq!(transport_header(&r), "tls=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256");
    r.envelope.tls = None;
    assert_eq!(transport_header(&r), "tls=none");
    // One part uninspectable for one reason in two ways: one item, one reason line.
    let twice = vec![
        self::un(Reason::ParseError, "2"),
        self::un(Reason::ParseError, "2"),
        self::un(Reason::OverSize, "2"),
    ];
    let o = decide(&cfg(), &[], &twice, false);
    assert_eq!(o.reasons.iter().filter(|l| l.starts_with("parse-error at 2")).count(), 1, "{:?}", o.reasons);
    let r2 = report(&o, vec![], twice);
    assert_eq!(coverage_header(&r2), "partial; parse-error=2, over-size=2");
    r.coverage = CoverageReport { complete: true, uninspectable: vec![] };
    assert_eq!(coverage_header(&r), "complete");
}

#[test]
fn header_lists_are_capped() {
    let many: Vec<Uninspectable> = (0..500).map(|i| un(Reason::OverSize, &format!("1.{i}"))).collect();
    let o = decide(&cfg(), &[], &many, false);
    let r = report(&o, vec![], many);
    let v = coverage_header(&r);
    assert!(v.len() < 1000, "{}", v.len());
    assert!(v.contains("more"), "{v}");
}

#[test]
fn verdicts_per_decision() {
    let raw = b"Subject: hi\r\nX-Inspect-Verdict: accept forged\r\nx-inspect-verdict: again\r\n\r\nbody";
    let cases = [
        (vec![], Decision::Accept),
        (vec![hit("a", 5, None)], Decision::Tag),
        (vec![hit("a", 10, None)], Decision::Quarantine),
        (vec![hit("a", 20, None)], Decision::Reject),
    ];
    for (hits, want) in cases {
        let o = decide(&cfg(), &hits, &[], false);
        assert_eq!(o.decision, want);
        let v = verdict(&cfg(), &report(&o, hits, vec![]), raw);
        // Forged copies removed, last first.
        assert_eq!(
            &v.headers[..2],
            &[
                HeaderChange::Change { index: 2, name: "X-Inspect-Verdict".into(), value: String::new() },
                HeaderChange::Change { index: 1, name: "X-Inspect-Verdict".into(), value: String::new() },
            ]
        );
        let added: Vec<&str> = v
            .headers
            .iter()
            .filter_map(|h| match h {
                HeaderChange::Add { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(added, vec!["X-Inspect-Verdict", "X-Inspect-Coverage", "X-Inspect-Transport"]);
        match want {
            Decision::Accept | Decision::Tag => assert_eq!(v.action, Action::Accept),
            Decision::Quarantine => assert_eq!(v.action, Action::Quarantine("inspect-milter: a".into())),
            Decision::Reject => {
                assert!(
                    matches!(&v.action, Action::Reject(Some(r)) if r.to_string() == "550 5.7.1 Message rejected by content policy")
                )
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn dry_run_only_adds_headers() {
    let hits = vec![hit("a", 50, None)];
    let o = decide(&cfg(), &hits, &[], false);
    let mut r = report(&o, hits, vec![]);
    r.dry_run = true;
    let v = verdict(&cfg(), &r, b"Subject: x\r\n\r\n");
    assert_eq!(v.action, Action::Accept);
    assert_eq!(verdict_header(&r), "reject score=50 rules=a dry-run");
}

#[test]
fn reject_text_names_rules_escaped() {
    let mut raw = RawPolicy::default();
    raw.reject_reply = "550 5.7.1 Rejected: {rules}".into();
    let c = raw.validate().unwrap();
    let hits = vec![hit("evil_rule", 25, None)];
    let o = decide(&c, &hits, &[], false);
    let v = verdict(&c, &report(&o, hits, vec![]), b"\r\n");
    assert!(
        matches!(&v.action, Action::Reject(Some(r)) if r.to_string() == "550 5.7.1 Rejected: evil_rule"),
        "{:?}",
        v.action
    );
}

#[test]
fn subject_tag_only_when_configured_and_tagged() {
    let mut raw = RawPolicy::default();
    raw.subject_tag = "[SUSPICIOUS]".into();
    let c = raw.validate().unwrap();
    let hits = vec![hit("a", 5, None)];
    let o = decide(&c, &hits, &[], false);
    let v = verdict(&c, &report(&o, hits, vec![]), b"Subject: Invoice\r\n due\r\n\r\n");
    assert!(v.headers.contains(&HeaderChange::Change {
        index: 1,
        name: "Subject".into(),
        value: "[SUSPICIOUS] Invoice\n due".into()
    }));
    let v = verdict(&cfg(), &report(&o, vec![hit("a", 5, None)], vec![]), b"Subject: Invoice\r\n\r\n");
    assert!(!v.headers.iter().any(|h| matches!(h, HeaderChange::Change { name, .. } if name == "Subject")));
}

#[test]
fn every_fail_action_has_a_verdict_and_none_passes_silently() {
    let accept = on_error_verdict(FailAction::Accept, "X-Inspect-");
    assert_eq!(accept.action, Action::Accept);
    assert!(matches!(&accept.headers[..], [HeaderChange::Add { value, .. }] if value.contains("on_error")));
    assert!(
        matches!(on_error_verdict(FailAction::Tempfail, "X-Inspect-").action, Action::Tempfail(Some(r)) if r.code() == 451)
    );
    assert!(
        matches!(on_error_verdict(FailAction::Reject, "X-Inspect-").action, Action::Reject(Some(r)) if r.code() == 550)
    );
    assert!(matches!(on_error_verdict(FailAction::Quarantine, "X-Inspect-").action, Action::Quarantine(_)));
}

#[test]
fn the_on_error_header_carries_the_configured_prefix() {
    let v = on_error_verdict(FailAction::Accept, "X-Site-");
    assert!(
        matches!(&v.headers[..], [HeaderChange::Add { name, .. }] if name == "X-Site-Verdict"),
        "{:?}",
        v.headers
    );
}

#[test]
fn a_released_message_is_delivered_and_says_so() {
    let hits = vec![hit("a", 12, None)];
    let o = decide(&cfg(), &hits, &[un(Reason::EncryptedArchive, "2")], false);
    let mut r = report(&o, hits, vec![un(Reason::EncryptedArchive, "2")]);
    r.released = Some("20261128T201502Z-3f9a1c2b4d5e".into());
    let v = verdict(&cfg(), &r, b"Subject: x\r\n\r\n");
    assert_eq!(v.action, Action::Accept);
    assert_eq!(verdict_header(&r), "quarantine score=12 rules=a released=20261128T201502Z-3f9a1c2b4d5e");
}
