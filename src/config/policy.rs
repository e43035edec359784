//! The `policy:` section: score thresholds, what each uninspectable reason does, dry-run, and
//! the words we put in headers and SMTP replies.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::inspect::{Decision, Reason};
use crate::milter::SmtpReply;

/// The design's per-reason defaults, and why.
pub fn default_for(reason: Reason) -> Decision {
    match reason {
        // End-to-end encryption: the recipient's endpoint decrypts it and is the next layer of
        // defence; the coverage header says we could not look.
        Reason::SmimeEncrypted | Reason::PgpEncrypted => Decision::Accept,
        // A favourite wrapper for malware, the password often in the body.
        Reason::EncryptedArchive | Reason::EncryptedOffice | Reason::EncryptedPdf => Decision::Quarantine,
        // Hostile-looking structure, or something made us stop.
        Reason::OverDepth | Reason::OverParts | Reason::ExpansionRatio | Reason::ScanTimeout => {
            Decision::Quarantine
        }
        // Common in legitimate mail; the header tells the next layer.
        Reason::OverSize | Reason::UnsupportedArchive | Reason::ParseError => Decision::Tag,
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicy {
    pub thresholds: RawThresholds,
    /// What each uninspectable reason does: `accept`, `tag`, `quarantine`, `reject` or
    /// `tempfail`. Reasons not listed keep the design's defaults (see `default_for`).
    pub uninspectable: BTreeMap<Reason, Decision>,
    /// What a message truncated at `max_message_size` gets at least. Default `tag`: the part we
    /// did not see may hold anything, so it is never "clean"; `accept` is refused.
    pub truncated: Decision,
    /// Decide and log, but act only by adding headers (every message is accepted). Default
    /// false.
    pub dry_run: bool,
    /// Prefix of the headers we add. Default `X-Inspect-`.
    pub header_prefix: String,
    /// The SMTP reply for a rejected message. Default `550 5.7.1 Message rejected by content
    /// policy`. `{rules}` is replaced by the rules that decided (escaped).
    pub reject_reply: String,
    /// The SMTP reply for a tempfailed message. Default `451 4.7.1 Message could not be
    /// inspected, try again later`.
    pub tempfail_reply: String,
    /// Text put in front of the Subject of tagged messages, e.g. `[SUSPICIOUS]`. Default empty
    /// (off): rewriting the Subject breaks DKIM signatures that cover it.
    pub subject_tag: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawThresholds {
    /// Score at which a message is tagged. Default 5: two or three weak signals together.
    pub tag: i64,
    /// Score at which it is quarantined. Default 10: strong signals, or many weak ones.
    pub quarantine: i64,
    /// Score at which it is rejected. Default 20: only unambiguous malware or phishing.
    pub reject: i64,
}

impl Default for RawThresholds {
    fn default() -> RawThresholds {
        RawThresholds { tag: 5, quarantine: 10, reject: 20 }
    }
}

impl Default for RawPolicy {
    fn default() -> RawPolicy {
        RawPolicy {
            thresholds: RawThresholds::default(),
            uninspectable: BTreeMap::new(),
            truncated: Decision::Tag,
            dry_run: false,
            header_prefix: "X-Inspect-".to_string(),
            reject_reply: "550 5.7.1 Message rejected by content policy".to_string(),
            tempfail_reply: "451 4.7.1 Message could not be inspected, try again later".to_string(),
            subject_tag: String::new(),
        }
    }
}

/// The validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    pub tag_at: i64,
    pub quarantine_at: i64,
    pub reject_at: i64,
    pub uninspectable: BTreeMap<Reason, Decision>,
    pub truncated: Decision,
    pub dry_run: bool,
    pub header_prefix: String,
    pub reject_reply: String,
    pub tempfail_reply: String,
    pub subject_tag: String,
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        RawPolicy::default().validate().expect("the default policy is valid")
    }
}

impl PolicyConfig {
    pub fn for_reason(&self, reason: Reason) -> Decision {
        self.uninspectable.get(&reason).copied().unwrap_or_else(|| default_for(reason))
    }
}

impl RawPolicy {
    /// Checks the section; every problem, each naming its key.
    pub fn validate(self) -> Result<PolicyConfig, super::Problems> {
        let mut problems = super::Problems::new();
        let t = &self.thresholds;
        if !(t.tag <= t.quarantine && t.quarantine <= t.reject) {
            problems.push((
                "policy.thresholds",
                format!(
                    "must rise: tag ({}) <= quarantine ({}) <= reject ({})",
                    t.tag, t.quarantine, t.reject
                ),
            ));
        }
        if t.tag <= 0 {
            problems
                .push(("policy.thresholds.tag", "must be above 0, or every message would be tagged".into()));
        }
        for (reason, d) in &self.uninspectable {
            if matches!(d, Decision::Discard) {
                problems.push((
                    "policy.uninspectable",
                    format!("{reason}: discard would lose mail; use quarantine"),
                ));
            }
        }
        match self.truncated {
            Decision::Accept => problems
                .push(("policy.truncated", "a truncated message is never clean; use tag or stronger".into())),
            Decision::Discard => problems.push((
                "policy.truncated",
                "discard would lose mail; use tag, quarantine or tempfail".into(),
            )),
            _ => {}
        }
        let prefix_ok = !self.header_prefix.is_empty()
            && self.header_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok {
            problems.push((
                "policy.header_prefix",
                "must be letters, digits, `-` and `_`, like X-Inspect-".into(),
            ));
        }
        match SmtpReply::parse(&self.reject_reply) {
            Ok(r) if r.is_permanent() => {}
            Ok(_) => problems.push(("policy.reject_reply", "must be a 5xx reply".into())),
            Err(e) => problems.push(("policy.reject_reply", e.to_string())),
        }
        match SmtpReply::parse(&self.tempfail_reply) {
            Ok(r) if !r.is_permanent() => {}
            Ok(_) => problems.push(("policy.tempfail_reply", "must be a 4xx reply".into())),
            Err(e) => problems.push(("policy.tempfail_reply", e.to_string())),
        }
        if self.subject_tag.chars().any(char::is_control) {
            problems.push(("policy.subject_tag", "must not contain control characters".into()));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(PolicyConfig {
            tag_at: t.tag,
            quarantine_at: t.quarantine,
            reject_at: t.reject,
            uninspectable: self.uninspectable,
            truncated: self.truncated,
            dry_run: self.dry_run,
            header_prefix: self.header_prefix,
            reject_reply: self.reject_reply,
            tempfail_reply: self.tempfail_reply,
            subject_tag: self.subject_tag,
        })
    }
}
