//! The inspection engine: raw bytes → walk → YARA and regex hits → rules built from rules.
//! Synchronous and free of I/O, so the daemon, `scan` and `test` run exactly this.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::report::{MessageFacts, SenderFacts, TargetCount, Timings};
use super::{Anomaly, Deadline, Limits, PartInfo, Reason, Target, TargetKind, Uninspectable, walk_until};
use crate::inspect::engines::hit::{Engine, Hit};
use crate::inspect::engines::scan_yara::ScanContext;
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
    /// Lower-case authserv-ids whose `Authentication-Results` are believed
    /// (`inspect.trusted_authserv_ids`); results from any other id are ignored.
    pub trusted_authserv_ids: Vec<String>,
}

impl Inspector {
    pub fn inspect(&self, raw: &[u8], envelope: &Envelope) -> Findings {
        self.inspect_since(raw, envelope, Instant::now())
    }

    /// [`Inspector::inspect`] for a message that arrived at `arrived` (and may have waited for
    /// a filter thread since): the deadline is `arrived + scan_timeout`.
    pub fn inspect_since(&self, raw: &[u8], envelope: &Envelope, arrived: Instant) -> Findings {
        let started = Instant::now();
        // One deadline over every step (see `deadline` for what a check cannot interrupt).
        let deadline = Deadline::at(arrived + self.scan_timeout);
        let waited = started.saturating_duration_since(arrived);
        let mut walked = if waited >= self.scan_timeout {
            // Nothing left for this one: said as such, not as a walk that stopped.
            let mut late = super::Walk::default();
            late.uninspectable.push(Uninspectable {
                reason: Reason::ScanTimeout,
                part_path: "0".into(),
                detail: format!(
                    "waited {} ms for a filter thread, past inspect.scan_timeout; not inspected",
                    waited.as_millis()
                ),
            });
            late
        } else {
            walk_until(raw, &self.limits, deadline)
        };
        let mut uninspectable = walked.uninspectable;
        let timeout = |part_path: String, detail: String| Uninspectable {
            reason: Reason::ScanTimeout,
            part_path,
            detail,
        };
        let authentication = crate::inspect::evidence::sender::authenticate(
            &walked.targets,
            &self.trusted_authserv_ids,
            &mut walked.anomalies,
        );
        let (mut bulk, bulk_done) =
            crate::inspect::evidence::bulk::structure(&walked.targets, &mut walked.anomalies, deadline);
        let evidence = crate::inspect::evidence::signals::Evidence::from_authentication(&authentication);
        if !bulk_done
            || !crate::inspect::evidence::signals::analyze(
                &walked.targets,
                &mut walked.anomalies,
                deadline,
                &evidence,
                &mut bulk,
            )
        {
            uninspectable.push(timeout(
                "0".into(),
                "inspect.scan_timeout passed before the cross-field signals were all checked".into(),
            ));
        }
        let walk_done = Instant::now();
        let (mut hits, unfinished) = crate::inspect::engines::scan_regex::scan_until(
            &self.rules.regex,
            &walked.targets,
            envelope,
            &walked.anomalies,
            &uninspectable,
            deadline,
        );
        for part_path in unfinished {
            uninspectable
                .push(timeout(part_path, "inspect.scan_timeout passed before regex rules reached it".into()));
        }
        let regex_done = Instant::now();
        if let Some(yara) = &self.rules.yara {
            let (mut found, unfinished) = crate::inspect::engines::scan_yara::scan(
                yara,
                &walked.targets,
                &scan_context(envelope),
                deadline,
            );
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
        let mut message = facts(raw, &walked.targets, self.hash_message);
        message.sender = SenderFacts { authentication, bulk };
        let findings = Findings {
            message,
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
/// chain; each round can only remove or add whole rules, so it ends within the rule count. A
/// rule with `unless` is dropped while any rule it names hits.
fn resolve_requirements(rules: &RuleSet, hits: &mut Vec<Hit>) {
    let dependent: Vec<_> = rules
        .regex
        .rules
        .iter()
        .filter(|r| !r.requires.is_empty() || !r.requires_any.is_empty() || !r.unless.is_empty())
        .collect();
    if dependent.is_empty() {
        return;
    }
    for _ in 0..=dependent.len() {
        let present: HashSet<String> = hits.iter().map(|h| h.rule.clone()).collect();
        let mut changed = false;
        for rule in &dependent {
            let satisfied = rule.requires.iter().all(|d| present.contains(d))
                && (rule.requires_any.is_empty() || rule.requires_any.iter().any(|d| present.contains(d)))
                && !rule.unless.iter().any(|d| present.contains(d));
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
        sha256: if hash { crate::hex::sha256(raw) } else { String::new() },
        message_id: top_header("Message-ID"),
        subject,
        from: top_header("From"),
        truncated: false,
        sender: SenderFacts::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::Stage;
    use super::*;
    use crate::inspect::deadline::slow;
    use crate::inspect::formats::zip::testzip;
    use crate::rules::{CompileOptions, Source, compile};

    const UNITS: usize = 60;

    fn inspector(timeout: Duration) -> Inspector {
        let yara = "rule any_mz { strings: $a = \"MZ\" condition: $a }";
        let regex = "rules:\n  - id: word\n    targets: [body, url, subject]\n    pattern: nothing-here\n    score: 1\n";
        let (set, diags) = compile(
            &[
                Source { origin: "t.yar".into(), text: yara.into() },
                Source { origin: "t.yaml".into(), text: regex.into() },
            ],
            CompileOptions::default(),
        );
        assert!(!diags.iter().any(|d| d.is_error()), "{diags:?}");
        Inspector {
            rules: Arc::new(set.unwrap()),
            limits: Limits::default(),
            scan_timeout: timeout,
            hash_message: false,
            trusted_authserv_ids: Vec::new(),
        }
    }

    fn multipart(parts: impl Iterator<Item = String>) -> Vec<u8> {
        let mut m = "From: a@example.org\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n".to_string();
        for p in parts {
            m.push_str("--b\n");
            m.push_str(&p);
            m.push('\n');
        }
        m.push_str("--b--\n");
        m.into_bytes()
    }

    /// A message with at least `UNITS` units of work for `stage`.
    fn message_for(stage: Stage) -> Vec<u8> {
        let n = 0..UNITS;
        match stage {
            Stage::Mime | Stage::Regex | Stage::Yara => {
                multipart(n.map(|i| format!("Content-Type: text/plain\n\npart {i} MZ")))
            }
            Stage::Decode => multipart(n.map(|_| {
                "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8=".to_string()
            })),
            Stage::Html => multipart(n.map(|i| format!("Content-Type: text/html\n\n<p>part {i}</p>"))),
            Stage::Urls => multipart(std::iter::once(format!(
                "Content-Type: text/plain\n\n{}",
                (0..UNITS).map(|i| format!("http://u{i}.example/ ")).collect::<String>()
            ))),
            Stage::Signals => multipart(std::iter::once(format!(
                "Content-Type: text/html\n\n{}",
                (0..UNITS)
                    .map(|i| format!("<a href=\"http://a{i}.example/\">a{i}.example</a>"))
                    .collect::<String>()
            ))),
            Stage::Document => {
                multipart(n.map(|i| format!("Content-Type: application/pdf; name=\"{i}.pdf\"\n\n%PDF-1.4 x")))
            }
            Stage::Archive => {
                let names: Vec<String> = (0..UNITS).map(|i| format!("{i}.txt")).collect();
                let members: Vec<_> = names.iter().map(|n| testzip::Member::stored(n, b"member")).collect();
                let zip = testzip::build(&members);
                let mut out = b"From: a@example.org\nSubject: s\nMIME-Version: 1.0\nContent-Type: application/zip; name=\"a.zip\"\n\n".to_vec();
                out.extend_from_slice(&zip);
                out
            }
        }
    }

    #[test]
    fn every_stage_gives_the_thread_back_at_the_deadline() {
        let budget = Duration::from_millis(600);
        let each = Duration::from_millis(50);
        // Slack: the unit under way when the deadline passes, plus room for a loaded machine.
        let slack = each + Duration::from_millis(900);
        let engine = inspector(budget);
        for stage in [
            Stage::Mime,
            Stage::Decode,
            Stage::Html,
            Stage::Urls,
            Stage::Signals,
            Stage::Document,
            Stage::Archive,
            Stage::Regex,
            Stage::Yara,
        ] {
            let raw = message_for(stage);
            // Without the deadline, this stage alone would take UNITS × each = 3 s.
            let _slow = slow::stage(stage, each);
            let started = Instant::now();
            let found = engine.inspect(&raw, &Envelope::default());
            let took = started.elapsed();
            assert!(took < budget + slack, "{stage}: the thread came back after {took:?}");
            assert!(
                found.uninspectable.iter().any(|u| u.reason == Reason::ScanTimeout),
                "{stage}: nothing recorded scan-timeout: {:?}",
                found.uninspectable
            );
        }
    }

    #[test]
    fn without_slowness_the_same_messages_are_complete() {
        let engine = inspector(Duration::from_secs(20));
        for stage in [Stage::Mime, Stage::Html, Stage::Urls, Stage::Signals, Stage::Archive] {
            let found = engine.inspect(&message_for(stage), &Envelope::default());
            assert!(
                !found.uninspectable.iter().any(|u| u.reason == Reason::ScanTimeout),
                "{stage}: {:?}",
                found.uninspectable
            );
        }
    }

    #[test]
    fn a_message_that_waited_past_its_deadline_is_answered_as_not_inspected() {
        let engine = inspector(Duration::from_secs(2));
        let arrived = Instant::now() - Duration::from_secs(3);
        let found = engine.inspect_since(b"Subject: x\r\n\r\nbody MZ\r\n", &Envelope::default(), arrived);
        assert!(found.hits.is_empty(), "{:?}", found.hits);
        assert!(
            found
                .uninspectable
                .iter()
                .any(|u| u.reason == Reason::ScanTimeout && u.detail.starts_with("waited")),
            "{:?}",
            found.uninspectable
        );
    }
}
