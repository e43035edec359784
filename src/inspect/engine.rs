//! The inspection engine: raw bytes → walk → YARA and regex hits → rules built from rules.
//! Synchronous and free of I/O, so the daemon, `scan` and `test` run exactly this.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::hit::{Engine, Hit};
use super::report::{MessageFacts, TargetCount, Timings};
use super::yara::ScanContext;
use super::{Anomaly, Limits, PartInfo, Reason, Target, TargetKind, Uninspectable, walk};
use crate::milter::Envelope;
use crate::rules::RuleSet;

/// Everything inspection found, before policy decides.
#[derive(Debug, Clone)]
pub struct Findings {
    pub message: MessageFacts,
    pub targets: BTreeMap<String, TargetCount>,
    pub hits: Vec<Hit>,
    pub uninspectable: Vec<Uninspectable>,
    pub anomalies: Vec<Anomaly>,
    pub parts: Vec<PartInfo>,
    pub timings: Timings,
}

pub struct Inspector {
    pub rules: Arc<RuleSet>,
    pub limits: Limits,
    /// The whole message's scan budget; past it, parts not yet scanned are `scan-timeout`.
    pub scan_timeout: Duration,
    /// Put the message's SHA-256 in the report. A tenth of the daemon's work on ordinary mail,
    /// and only read when a report leaves the process, so the daemon turns it off and hashes
    /// the messages it keeps (see `InspectFilter`).
    pub hash_message: bool,
}

impl Inspector {
    pub fn inspect(&self, raw: &[u8], envelope: &Envelope) -> Findings {
        let started = Instant::now();
        let deadline = started + self.scan_timeout;
        let mut walked = walk(raw, &self.limits);
        super::signals::analyze(&walked.targets, &mut walked.anomalies);
        let walk_done = Instant::now();
        let mut hits = super::regex::scan(
            &self.rules.regex,
            &walked.targets,
            envelope,
            &walked.anomalies,
            &walked.uninspectable,
        );
        let regex_done = Instant::now();
        let mut uninspectable = walked.uninspectable;
        if let Some(yara) = &self.rules.yara {
            let (mut found, unfinished) =
                super::yara::scan(yara, &walked.targets, &scan_context(envelope), deadline);
            hits.append(&mut found);
            for u in unfinished {
                let reason = if u.why == "scan-timeout" { Reason::ScanTimeout } else { Reason::ParseError };
                uninspectable.push(Uninspectable {
                    reason,
                    part_path: u.part_path,
                    detail: format!("YARA could not finish: {}", u.why),
                });
            }
        }
        let yara_done = Instant::now();
        resolve_requirements(&self.rules, &mut hits);
        let micros = |d: Duration| d.as_micros().min(u128::from(u64::MAX)) as u64;
        let mut targets: BTreeMap<String, TargetCount> = BTreeMap::new();
        for t in &walked.targets {
            let name = serde_json::to_value(t.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let e = targets.entry(name).or_default();
            e.count += 1;
            e.bytes += t.data.len() as u64;
        }
        let findings = Findings {
            message: facts(raw, &walked.targets, self.hash_message),
            targets,
            hits,
            uninspectable,
            anomalies: walked.anomalies,
            parts: walked.parts,
            timings: Timings {
                walk_us: micros(walk_done - started),
                regex_us: micros(regex_done - walk_done),
                yara_us: micros(yara_done - regex_done),
                total_us: micros(yara_done - started),
            },
        };
        // Large decoded buffers go on to later parts and messages with their pages.
        for t in walked.targets {
            if let std::borrow::Cow::Owned(v) = t.data {
                crate::memory::recycle(v);
            }
        }
        findings
    }
}

fn scan_context(envelope: &Envelope) -> ScanContext {
    ScanContext {
        tls_version: envelope.tls.as_ref().map(|t| t.version.clone()).unwrap_or_default(),
        tls_cipher: envelope.tls.as_ref().and_then(|t| t.cipher.clone()).unwrap_or_default(),
        client_addr: envelope.client.addr.clone().unwrap_or_default(),
        authenticated: envelope.auth.is_some(),
    }
}

/// Rules with `requires`/`requires_any` hit only when the rules they name hit too; rules made
/// only of requirements hit as `meta`. Repeated until nothing changes, so requirements can
/// chain; each round can only remove or add whole rules, so it ends within the rule count.
fn resolve_requirements(rules: &RuleSet, hits: &mut Vec<Hit>) {
    let dependent: Vec<_> =
        rules.regex.rules.iter().filter(|r| !r.requires.is_empty() || !r.requires_any.is_empty()).collect();
    if dependent.is_empty() {
        return;
    }
    for _ in 0..=dependent.len() {
        let present: HashSet<String> = hits.iter().map(|h| h.rule.clone()).collect();
        let mut changed = false;
        for rule in &dependent {
            let satisfied = rule.requires.iter().all(|d| present.contains(d))
                && (rule.requires_any.is_empty() || rule.requires_any.iter().any(|d| present.contains(d)));
            let is_hit = present.contains(&rule.id);
            if rule.patterns.is_empty() {
                if satisfied && !is_hit {
                    hits.push(Hit {
                        rule: rule.id.clone(),
                        engine: Engine::Meta,
                        part_path: "0".into(),
                        target: "rules".into(),
                        content_type: None,
                        filename: None,
                        offset: None,
                        snippet: rule
                            .requires
                            .iter()
                            .chain(&rule.requires_any)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("+"),
                        score: rule.score,
                        action: rule.action,
                        description: rule.description.clone(),
                    });
                    changed = true;
                } else if !satisfied && is_hit {
                    hits.retain(|h| h.rule != rule.id);
                    changed = true;
                }
            } else if is_hit && !satisfied {
                hits.retain(|h| h.rule != rule.id);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// The SHA-256 of a message, as the report shows it.
pub fn sha256_hex(raw: &[u8]) -> String {
    Sha256::digest(raw).iter().map(|b| format!("{b:02x}")).collect()
}

/// Size, hash (empty when `hash` is false) and the few headers a reviewer recognises a message by.
fn facts(raw: &[u8], targets: &[Target<'_>], hash: bool) -> MessageFacts {
    let top_header = |name: &str| {
        targets
            .iter()
            .find(|t| {
                t.kind == TargetKind::Header
                    && t.part_path == "0"
                    && t.header_name.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(name))
            })
            .map(|t| String::from_utf8_lossy(&t.data).chars().take(200).collect::<String>())
    };
    let subject = targets
        .iter()
        .find(|t| t.kind == TargetKind::Subject && t.part_path == "0")
        .map(|t| String::from_utf8_lossy(&t.data).chars().take(200).collect());
    MessageFacts {
        size: raw.len() as u64,
        received_bytes: raw.len() as u64,
        sha256: if hash { sha256_hex(raw) } else { String::new() },
        message_id: top_header("Message-ID"),
        subject,
        from: top_header("From"),
        truncated: false,
    }
}
