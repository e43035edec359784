//! Policy: from what inspection found to what happens to the message, and from that decision
//! to milter actions.
//!
//! The decision is the strongest of: the score against the thresholds, any rule's explicit
//! action (a floor: the message gets at least that), the configured decision of each reason a
//! part went uninspected, and the floor for a truncated message. Each contributes a line to
//! the report's `reasons`, so a reviewer can always see why.

use crate::config::FailAction;
use crate::config::policy::PolicyConfig;
use crate::inspect::hit::Hit;
use crate::inspect::{Decision, Report, Uninspectable};
use crate::milter::{Action, HeaderChange, SmtpReply, Verdict};
use crate::rules::RuleAction;

/// The decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub score: i64,
    pub reasons: Vec<String>,
}

fn from_action(a: RuleAction) -> Decision {
    match a {
        RuleAction::Tag => Decision::Tag,
        RuleAction::Quarantine => Decision::Quarantine,
        RuleAction::Reject => Decision::Reject,
    }
}

/// Score = the sum over rules that hit, each rule counted once (its highest-scoring hit).
pub fn score(hits: &[Hit]) -> i64 {
    let mut best: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for h in hits {
        let e = best.entry(&h.rule).or_insert(h.score);
        *e = (*e).max(h.score);
    }
    best.values().sum()
}

pub fn decide(cfg: &PolicyConfig, hits: &[Hit], uninspectable: &[Uninspectable], truncated: bool) -> Outcome {
    let score = score(hits);
    let mut decision = Decision::Accept;
    let mut reasons = Vec::new();
    let by_score = if score >= cfg.reject_at {
        Some((Decision::Reject, cfg.reject_at))
    } else if score >= cfg.quarantine_at {
        Some((Decision::Quarantine, cfg.quarantine_at))
    } else if score >= cfg.tag_at {
        Some((Decision::Tag, cfg.tag_at))
    } else {
        None
    };
    if let Some((d, at)) = by_score {
        decision = decision.max(d);
        reasons.push(format!("score {score} >= {d} threshold {at}"));
    }
    let mut seen_actions = std::collections::HashSet::new();
    for h in hits {
        if let Some(a) = h.action
            && seen_actions.insert((&h.rule, a))
        {
            decision = decision.max(from_action(a));
            reasons.push(format!("rule {}: action {a}", h.rule));
        }
    }
    // A part can be uninspectable for one reason in two ways (an archive member that
    // declares too much and then inflates too far): one line says it. A set, so a message
    // with thousands of entries costs a look-up each, not a pass over the lines so far.
    let mut lines = std::collections::HashSet::new();
    for u in uninspectable {
        let d = cfg.for_reason(u.reason);
        if d != Decision::Accept && lines.insert((u.reason, u.part_path.as_str())) {
            reasons.push(format!("{} at {}: {d}", u.reason, u.part_path));
        }
        decision = decision.max(d);
    }
    if truncated {
        decision = decision.max(cfg.truncated);
        reasons.push(format!("message truncated at the size cap: at least {}", cfg.truncated));
    }
    Outcome { decision, score, reasons }
}

/// Header names we add, with the configured prefix.
pub struct HeaderNames {
    pub verdict: String,
    pub coverage: String,
    pub transport: String,
}

impl HeaderNames {
    pub fn new(prefix: &str) -> HeaderNames {
        HeaderNames {
            verdict: format!("{prefix}Verdict"),
            coverage: format!("{prefix}Coverage"),
            transport: format!("{prefix}Transport"),
        }
    }
}

/// Longest value we put in a header we add; past it, the list is cut with `+N more`.
const MAX_HEADER_VALUE: usize = 900;

/// `X-Inspect-Verdict: <decision> score=<n> rules=<id>,…`
pub fn verdict_header(report: &Report) -> String {
    let rules: Vec<&str> = report.deciding_rules();
    let mut v = format!("{} score={} rules={}", report.decision, report.score, join_capped(&rules, ","));
    if report.dry_run {
        v.push_str(" dry-run");
    }
    if let Some(id) = &report.released {
        v.push_str(&format!(" released={}", header_safe(id)));
    }
    v
}

/// `X-Inspect-Coverage: complete` or `partial; <reason>=<part path>,…`
pub fn coverage_header(report: &Report) -> String {
    if report.coverage.uninspectable.is_empty() {
        return "complete".to_string();
    }
    let mut items: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for u in &report.coverage.uninspectable {
        if seen.insert((u.reason, u.part_path.as_str())) {
            items.push(format!("{}={}", u.reason, header_safe(&u.part_path)));
        }
    }
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    format!("partial; {}", join_capped(&items, ", "))
}

/// `X-Inspect-Transport: tls=<version> cipher=<name> bits=<n>` or `tls=none`
pub fn transport_header(report: &Report) -> String {
    match &report.envelope.tls {
        None => "tls=none".to_string(),
        Some(t) => {
            let mut v = format!("tls={}", header_safe(&t.version));
            if let Some(c) = &t.cipher {
                v.push_str(&format!(" cipher={}", header_safe(c)));
            }
            if let Some(b) = t.bits {
                v.push_str(&format!(" bits={b}"));
            }
            v
        }
    }
}

/// Joins items, stopping before the value grows past [`MAX_HEADER_VALUE`].
fn join_capped(items: &[&str], sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if out.len() + item.len() + sep.len() > MAX_HEADER_VALUE {
            out.push_str(&format!("{sep}+{} more", items.len() - i));
            break;
        }
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item);
    }
    out
}

/// Text from the message (archive member names, TLS strings) made safe for a header value:
/// printable ASCII except the list separators, everything else percent-encoded.
pub fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && !matches!(b, b',' | b';' | b'=' | b'%' | b'"') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How many times each header name occurs in the top-level header block (case-insensitive).
fn count_headers(raw: &[u8], name: &str) -> u32 {
    let mut n = 0;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon].trim_ascii().eq_ignore_ascii_case(name.as_bytes())
        {
            n += 1;
        }
    }
    n
}

/// The value of the first header `name` in the top-level block, unfolded lines kept as sent.
fn first_header_value(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            return None;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            let mut value = v.trim_start().to_string();
            for cont in lines.by_ref() {
                if cont.starts_with([' ', '\t']) {
                    value.push('\n');
                    value.push_str(cont);
                } else {
                    break;
                }
            }
            return Some(value);
        }
    }
    None
}

/// The milter actions for a decided report. `raw` is the message as received (for the
/// forged-header clean-up and the subject tag).
pub fn verdict(cfg: &PolicyConfig, report: &Report, raw: &[u8]) -> Verdict {
    let names = HeaderNames::new(&cfg.header_prefix);
    let mut headers = Vec::new();
    // A sender can write our headers into the message to mislead whatever reads them after
    // us; every copy that came with the message is removed (last first, so indices hold).
    for name in [&names.verdict, &names.coverage, &names.transport] {
        for index in (1..=count_headers(raw, name)).rev() {
            headers.push(HeaderChange::Change { index, name: name.clone(), value: String::new() });
        }
    }
    headers.push(HeaderChange::Add { name: names.verdict.clone(), value: verdict_header(report) });
    headers.push(HeaderChange::Add { name: names.coverage.clone(), value: coverage_header(report) });
    headers.push(HeaderChange::Add { name: names.transport.clone(), value: transport_header(report) });
    let rules = report.deciding_rules().join(",");
    // A dry run only adds headers; a message a reviewer released is delivered.
    let decision =
        if report.dry_run || report.released.is_some() { Decision::Accept } else { report.decision };
    if decision == Decision::Tag
        && !cfg.subject_tag.is_empty()
        && let Some(subject) = first_header_value(raw, "Subject")
    {
        headers.push(HeaderChange::Change {
            index: 1,
            name: "Subject".into(),
            value: format!("{} {subject}", cfg.subject_tag),
        });
    }
    let action = match decision {
        Decision::Accept | Decision::Tag => Action::Accept,
        Decision::Quarantine => {
            let why = if rules.is_empty() {
                report.coverage.uninspectable.first().map(|u| u.reason.to_string()).unwrap_or_default()
            } else {
                rules.clone()
            };
            Action::Quarantine(format!("inspect-milter: {}", why.chars().take(80).collect::<String>()))
        }
        Decision::Tempfail => Action::Tempfail(SmtpReply::parse(&cfg.tempfail_reply).ok()),
        Decision::Reject => {
            let text = cfg.reject_reply.replace("{rules}", &header_safe(&rules));
            Action::Reject(SmtpReply::parse(&text).or_else(|_| SmtpReply::parse(&cfg.reject_reply)).ok())
        }
        Decision::Discard => Action::Discard,
    };
    Verdict { headers, action }
}

/// The verdict for a message we could not decide about. Every variant says so in a header.
pub fn on_error_verdict(action: FailAction, header_prefix: &str) -> Verdict {
    let header = |what: &str| HeaderChange::Add {
        name: HeaderNames::new(header_prefix).verdict,
        value: format!("{what} score=0 rules= (internal error; on_error)"),
    };
    match action {
        FailAction::Accept => Verdict { headers: vec![header("accept")], action: Action::Accept },
        FailAction::Quarantine => Verdict {
            headers: vec![header("quarantine")],
            action: Action::Quarantine("inspection failed".to_string()),
        },
        FailAction::Tempfail => Verdict {
            headers: vec![],
            action: Action::Tempfail(
                SmtpReply::new(451, "4.3.0", "Temporary content inspection failure, try again later").ok(),
            ),
        },
        FailAction::Reject => Verdict {
            headers: vec![],
            action: Action::Reject(SmtpReply::new(550, "5.7.0", "Message could not be inspected").ok()),
        },
    }
}

#[cfg(test)]
mod tests;
