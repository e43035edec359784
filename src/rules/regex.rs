//! Regex rule files (`*.yaml`): parsing with positions, validation that reports every problem,
//! and compilation into one multi-pattern set per target (a `regex-automata` meta regex), so a
//! thousand rules cost one pass over each buffer rather than a thousand.
//!
//! ```yaml
//! rules:
//!   - id: urgent_payment
//!     description: Urgency and payment language
//!     targets: [subject, body]
//!     patterns: ["\\burgent\\b", "\\bwire transfer\\b"]
//!     match: all          # any (default) | all
//!     case_sensitive: false
//!     score: 3            # and/or action: tag | quarantine | reject
//!     tags: [phishing]
//!     requires: [has_link]          # every named rule must hit too (regex or YARA)
//!     requires_any: [a, b]          # at least one must hit
//!     unless: [trusted_sender]      # does not hit when any of these hits
//! ```
//!
//! The `regex` crate matches in time linear in the input whatever the pattern, which is why no
//! rule can hang a scan.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::yaml::{self, MarkedMappingNode, MarkedScalarNode, Node, Span};
use regex::bytes::{Regex, RegexBuilder};
use regex_automata::{Input, MatchKind, PatternSet, meta, nfa::thompson::WhichCaptures, util::syntax};

use super::RuleAction;
use super::diag::{Diagnostic, code};

/// Compiled size cap per pattern and per set: generous for real rules, small enough that a
/// pathological `\w{1000}{1000}` is refused at load time instead of eating memory.
const REGEX_SIZE_LIMIT: usize = 8 << 20;
const SET_SIZE_LIMIT: usize = 256 << 20;
/// Lazy-DFA cache for the sets over long text (body, HTML, header block), per scan thread.
const TEXT_DFA_LIMIT: usize = 8 << 20;

/// Where a regex rule looks, by the design's names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegexTarget {
    Subject,
    /// One header by name (stored lower case; header names are case-insensitive).
    Header(String),
    /// The raw header block.
    Headers,
    /// Decoded text, including the text of HTML parts.
    Body,
    /// Raw HTML source.
    Html,
    Url,
    AttachmentName,
    AttachmentType,
    EnvelopeFrom,
    EnvelopeRcpt,
    Helo,
    ClientAddr,
    ClientName,
    /// Each anomaly as `code detail` (structure oddities and cross-field signals).
    Anomaly,
    /// Each uninspected part's reason (`encrypted-archive`, …).
    Uninspected,
}

pub const TARGET_NAMES: &str = "subject, header:<Name>, headers, body, html, url, attachment.name, attachment.type, envelope.from, envelope.rcpt, helo, client.addr, client.name, anomaly, uninspected";

impl FromStr for RegexTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<RegexTarget, String> {
        Ok(match s {
            "subject" => RegexTarget::Subject,
            "headers" => RegexTarget::Headers,
            "body" => RegexTarget::Body,
            "html" => RegexTarget::Html,
            "url" => RegexTarget::Url,
            "attachment.name" => RegexTarget::AttachmentName,
            "attachment.type" => RegexTarget::AttachmentType,
            "envelope.from" => RegexTarget::EnvelopeFrom,
            "envelope.rcpt" => RegexTarget::EnvelopeRcpt,
            "helo" => RegexTarget::Helo,
            "client.addr" => RegexTarget::ClientAddr,
            "client.name" => RegexTarget::ClientName,
            "anomaly" => RegexTarget::Anomaly,
            "uninspected" => RegexTarget::Uninspected,
            other => match other.strip_prefix("header:") {
                Some(name) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':') => {
                    RegexTarget::Header(name.to_ascii_lowercase())
                }
                _ => return Err(format!("unknown target `{other}` (targets are: {TARGET_NAMES})")),
            },
        })
    }
}

impl fmt::Display for RegexTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RegexTarget::Subject => "subject",
            RegexTarget::Header(name) => return write!(f, "header:{name}"),
            RegexTarget::Headers => "headers",
            RegexTarget::Body => "body",
            RegexTarget::Html => "html",
            RegexTarget::Url => "url",
            RegexTarget::AttachmentName => "attachment.name",
            RegexTarget::AttachmentType => "attachment.type",
            RegexTarget::EnvelopeFrom => "envelope.from",
            RegexTarget::EnvelopeRcpt => "envelope.rcpt",
            RegexTarget::Helo => "helo",
            RegexTarget::ClientAddr => "client.addr",
            RegexTarget::ClientName => "client.name",
            RegexTarget::Anomaly => "anomaly",
            RegexTarget::Uninspected => "uninspected",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    Any,
    All,
}

/// One regex rule as loaded and validated.
#[derive(Debug, Clone)]
pub struct RegexRule {
    pub id: String,
    pub description: String,
    pub origin: String,
    pub line: usize,
    pub targets: Vec<RegexTarget>,
    pub patterns: Vec<Regex>,
    pub mode: MatchMode,
    pub case_sensitive: bool,
    pub score: i64,
    pub action: Option<RuleAction>,
    pub tags: Vec<String>,
    pub requires: Vec<String>,
    pub requires_any: Vec<String>,
    /// The rule does not hit when any of these rules hits (evidence that outweighs it).
    pub unless: Vec<String>,
}

/// The patterns of every rule that looks at one target, as one set.
#[derive(Debug)]
pub struct TargetSet {
    /// Every pattern at once, overlapping matches (what `regex::bytes::RegexSet` builds),
    /// without a literal prefilter: see [`build_set`].
    set: meta::Regex,
    /// Set index → (rule index, pattern index within the rule).
    pub entries: Vec<(usize, usize)>,
}

impl TargetSet {
    /// The set indexes of the patterns that match somewhere in `data`, in order.
    pub fn matches(&self, data: &[u8]) -> Vec<usize> {
        let mut found = PatternSet::new(self.set.pattern_len());
        self.set.which_overlapping_matches(&Input::new(data), &mut found);
        found.iter().map(|p| p.as_usize()).collect()
    }

    pub fn is_match(&self, data: &[u8]) -> bool {
        self.set.is_match(data)
    }

    pub fn len(&self) -> usize {
        self.set.pattern_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One set of patterns, configured as `regex::bytes::RegexSetBuilder` does (same syntax, same
/// overlapping `All` semantics) except for the literal prefilter, which is off: when every
/// match must be found, the prefilter hands the lazy DFA one candidate at a time, and on the
/// peer comparison's 25 body rules that made the pass 3-4× slower than the DFA alone (5 MB of
/// body text: 45 ms with it, 13 ms without; big sets get no prefilter either way).
fn build_set(patterns: &[String], dfa_cache: usize) -> Result<meta::Regex, String> {
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::All)
                .utf8_empty(false)
                .which_captures(WhichCaptures::None)
                .auto_prefilter(false)
                .nfa_size_limit(Some(SET_SIZE_LIMIT))
                .hybrid_cache_capacity(dfa_cache),
        )
        .syntax(syntax::Config::new().utf8(false))
        .build_many(patterns)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Default)]
pub struct RegexRules {
    pub rules: Vec<RegexRule>,
    pub sets: HashMap<RegexTarget, TargetSet>,
}

const RULE_KEYS: &[&str] = &[
    "id",
    "description",
    "targets",
    "pattern",
    "patterns",
    "match",
    "case_sensitive",
    "score",
    "action",
    "tags",
    "requires",
    "requires_any",
    "unless",
];

fn at(span: &Span) -> Option<(usize, usize)> {
    yaml::position(span)
}

/// Parses one regex rule file, appending every problem to `diags`. The caller refuses the
/// whole set when any error was reported.
pub fn parse_file(origin: &str, text: &str, diags: &mut Vec<Diagnostic>) -> Vec<RegexRule> {
    let root = match yaml::tree(text) {
        Ok(n) => n,
        Err((pos, msg)) => {
            diags.push(Diagnostic::error(code::YAML_SYNTAX, origin, pos, msg));
            return Vec::new();
        }
    };
    let Some(map) = root.as_mapping() else {
        diags.push(Diagnostic::error(
            code::BAD_VALUE,
            origin,
            at(root.span()),
            "expected a mapping with `rules:`",
        ));
        return Vec::new();
    };
    for (key, _) in map.iter() {
        if key.as_str() != "rules" {
            diags.push(Diagnostic::error(
                code::UNKNOWN_KEY,
                origin,
                at(key.span()),
                format!("unknown key `{}` (a rule file has one key: `rules`)", key.as_str()),
            ));
        }
    }
    let Some(rules) = map.get_node("rules") else {
        if map.is_empty() {
            return Vec::new();
        }
        diags.push(Diagnostic::error(code::MISSING_KEY, origin, at(map.span()), "missing `rules:` list"));
        return Vec::new();
    };
    let Some(list) = rules.as_sequence() else {
        diags.push(Diagnostic::error(code::BAD_VALUE, origin, at(rules.span()), "`rules` must be a list"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for node in list.iter() {
        let Some(rule) = node.as_mapping() else {
            diags.push(Diagnostic::error(
                code::BAD_VALUE,
                origin,
                at(node.span()),
                "each rule must be a mapping",
            ));
            continue;
        };
        // Rules with problems are kept too, so later checks (duplicate ids, `requires`) see
        // them; any error refuses the whole set anyway.
        out.extend(parse_rule(origin, rule, diags));
    }
    out
}

fn parse_rule(origin: &str, rule: &MarkedMappingNode, diags: &mut Vec<Diagnostic>) -> Option<RegexRule> {
    for (key, _) in rule.iter() {
        if !RULE_KEYS.contains(&key.as_str()) {
            diags.push(Diagnostic::error(
                code::UNKNOWN_KEY,
                origin,
                at(key.span()),
                format!("unknown key `{}` (rule keys are: {})", key.as_str(), RULE_KEYS.join(", ")),
            ));
        }
    }
    let line = at(rule.span()).map_or(0, |p| p.0);
    let scalar = |key: &str, diags: &mut Vec<Diagnostic>| -> Option<&MarkedScalarNode> {
        let node = rule.get_node(key)?;
        match node.as_scalar() {
            Some(s) => Some(s),
            None => {
                diags.push(Diagnostic::error(
                    code::BAD_VALUE,
                    origin,
                    at(node.span()),
                    format!("`{key}` must be a single value"),
                ));
                None
            }
        }
    };
    let list = |key: &str, diags: &mut Vec<Diagnostic>| -> Vec<&MarkedScalarNode> {
        let Some(node) = rule.get_node(key) else { return Vec::new() };
        match node {
            Node::Scalar(s) => vec![s],
            Node::Sequence(seq) => seq
                .iter()
                .filter_map(|n| match n.as_scalar() {
                    Some(s) => Some(s),
                    None => {
                        diags.push(Diagnostic::error(
                            code::BAD_VALUE,
                            origin,
                            at(n.span()),
                            format!("`{key}` entries must be single values"),
                        ));
                        None
                    }
                })
                .collect(),
            Node::Mapping(m) => {
                diags.push(Diagnostic::error(
                    code::BAD_VALUE,
                    origin,
                    at(m.span()),
                    format!("`{key}` must be a list"),
                ));
                Vec::new()
            }
        }
    };

    let id = match scalar("id", diags) {
        Some(s) if valid_id(s.as_str()) => s.as_str().to_string(),
        Some(s) => {
            diags.push(Diagnostic::error(
                code::BAD_VALUE,
                origin,
                at(s.span()),
                format!(
                    "rule id `{}` must start with a letter or `_` and hold only letters, digits and `_`",
                    s.as_str()
                ),
            ));
            String::new()
        }
        None => {
            if rule.get_node("id").is_none() {
                diags.push(Diagnostic::error(
                    code::MISSING_KEY,
                    origin,
                    at(rule.span()),
                    "a rule needs an `id`",
                ));
            }
            String::new()
        }
    };
    let description = scalar("description", diags).map(|s| s.as_str().to_string()).unwrap_or_default();

    let mut targets = Vec::new();
    for t in list("targets", diags) {
        match t.as_str().parse::<RegexTarget>() {
            Ok(target) if !targets.contains(&target) => targets.push(target),
            Ok(_) => {}
            Err(e) => diags.push(Diagnostic::error(code::BAD_TARGET, origin, at(t.span()), e)),
        }
    }

    let case_sensitive = match scalar("case_sensitive", diags) {
        None => false,
        Some(s) => s.as_bool().unwrap_or_else(|| {
            diags.push(Diagnostic::error(
                code::BAD_VALUE,
                origin,
                at(s.span()),
                "`case_sensitive` must be true or false",
            ));
            false
        }),
    };
    let mut pattern_nodes = list("pattern", diags);
    pattern_nodes.extend(list("patterns", diags));
    let mut patterns = Vec::new();
    for p in &pattern_nodes {
        match RegexBuilder::new(p.as_str())
            .case_insensitive(!case_sensitive)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(r) => patterns.push(r),
            Err(e) => diags.push(Diagnostic::error(code::BAD_REGEX, origin, at(p.span()), regex_error(&e))),
        }
    }
    let mode = match scalar("match", diags).map(|s| (s.as_str(), s)) {
        None | Some(("any", _)) => MatchMode::Any,
        Some(("all", _)) => MatchMode::All,
        Some((other, s)) => {
            diags.push(Diagnostic::error(
                code::BAD_VALUE,
                origin,
                at(s.span()),
                format!("`match` must be `any` or `all`, not `{other}`"),
            ));
            MatchMode::Any
        }
    };
    let score = match scalar("score", diags) {
        None => 0,
        Some(s) => {
            s.as_str().trim().parse::<i64>().ok().filter(|n| n.abs() <= 1_000_000).unwrap_or_else(|| {
                diags.push(Diagnostic::error(
                    code::BAD_VALUE,
                    origin,
                    at(s.span()),
                    format!("`score` must be an integer, not `{}`", s.as_str()),
                ));
                0
            })
        }
    };
    let action = match scalar("action", diags) {
        None => None,
        Some(s) => match s.as_str().parse::<RuleAction>() {
            Ok(a) => Some(a),
            Err(e) => {
                diags.push(Diagnostic::error(code::BAD_VALUE, origin, at(s.span()), e));
                None
            }
        },
    };
    let tags = list("tags", diags).iter().map(|s| s.as_str().to_string()).collect();
    let requires: Vec<String> = list("requires", diags).iter().map(|s| s.as_str().to_string()).collect();
    let requires_any: Vec<String> =
        list("requires_any", diags).iter().map(|s| s.as_str().to_string()).collect();
    let unless: Vec<String> = list("unless", diags).iter().map(|s| s.as_str().to_string()).collect();

    let has_patterns = !pattern_nodes.is_empty();
    let is_meta = !requires.is_empty() || !requires_any.is_empty();
    if !has_patterns && !is_meta {
        diags.push(Diagnostic::error(
            code::MISSING_KEY,
            origin,
            at(rule.span()),
            format!(
                "rule `{id}` needs `pattern`/`patterns` (or `requires` for a rule built from other rules)"
            ),
        ));
    }
    if has_patterns && targets.is_empty() && rule.get_node("targets").is_none() {
        diags.push(Diagnostic::error(
            code::MISSING_KEY,
            origin,
            at(rule.span()),
            format!("rule `{id}` needs `targets` (one or more of: {TARGET_NAMES})"),
        ));
    }
    Some(RegexRule {
        id,
        description,
        origin: origin.to_string(),
        line,
        targets,
        patterns,
        mode,
        case_sensitive,
        score,
        action,
        tags,
        requires,
        requires_any,
        unless,
    })
}

/// The first line of the regex crate's message, and the caret line when it has one.
fn regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => {
            let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
            let what =
                lines.iter().rev().find(|l| l.starts_with("error:")).copied().unwrap_or("invalid regex");
            format!("invalid regular expression: {}", what.trim_start_matches("error:").trim())
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("regular expression too large once compiled (limit {limit} bytes)")
        }
        other => format!("invalid regular expression: {other}"),
    }
}

/// YARA identifiers and our rule ids share one namespace, so the same rules apply.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= 128
}

/// Builds one set per target from validated rules.
pub fn compile(rules: Vec<RegexRule>) -> Result<RegexRules, String> {
    /// Per target: the patterns, and for each the (rule, pattern) it came from.
    type Group = (Vec<String>, Vec<(usize, usize)>);
    let mut grouped: HashMap<RegexTarget, Group> = HashMap::new();
    for (ri, rule) in rules.iter().enumerate() {
        for target in &rule.targets {
            let entry = grouped.entry(target.clone()).or_default();
            for (pi, p) in rule.patterns.iter().enumerate() {
                // A set has one set of options for all its patterns, so each pattern carries
                // its rule's case flag in-line.
                let flag = if rule.case_sensitive { "" } else { "i" };
                entry.0.push(format!("(?{flag}:{})", p.as_str()));
                entry.1.push((ri, pi));
            }
        }
    }
    let mut sets = HashMap::new();
    for (target, (patterns, entries)) in grouped {
        // The lazy DFA of a big text set outgrows the default 2 MiB cache on ordinary mail,
        // and a cache that keeps filling up makes the engine fall back to its slow matcher for
        // good. Text targets get a larger cache (per scan thread); small targets keep the
        // default.
        let dfa = match target {
            RegexTarget::Body | RegexTarget::Html | RegexTarget::Headers => TEXT_DFA_LIMIT,
            _ => 2 << 20,
        };
        let set =
            build_set(&patterns, dfa).map_err(|e| format!("compiling the {target} rules together: {e}"))?;
        sets.insert(target, TargetSet { set, entries });
    }
    Ok(RegexRules { rules, sets })
}
