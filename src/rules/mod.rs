//! Rule files: where they come from, and compiling them into a [`RuleSet`] with every problem
//! reported at once ([`diag`]).
//!
//! A rules directory holds YARA files (`*.yar`, `*.yara`) and regex rule files (`*.yaml`,
//! `*.yml`); subdirectories are not read (so `rules/tests/` can sit beside the rules). With no
//! directory configured, the pack shipped inside the binary is used. A set with any error is
//! refused as a whole.

pub mod diag;
pub mod regex;
pub mod yara;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use diag::{Diagnostic, code};

mod shipped {
    include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"));
}

/// What a rule asks for beyond its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Tag,
    Quarantine,
    Reject,
}

impl FromStr for RuleAction {
    type Err = String;
    fn from_str(s: &str) -> Result<RuleAction, String> {
        match s {
            "tag" => Ok(RuleAction::Tag),
            "quarantine" => Ok(RuleAction::Quarantine),
            "reject" => Ok(RuleAction::Reject),
            other => Err(format!("action must be tag, quarantine or reject, not `{other}`")),
        }
    }
}

impl fmt::Display for RuleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleAction::Tag => "tag",
            RuleAction::Quarantine => "quarantine",
            RuleAction::Reject => "reject",
        })
    }
}

/// One rule file's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Yara,
    Regex,
}

fn kind_of(name: &str) -> Option<Kind> {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("yar" | "yara") => Some(Kind::Yara),
        Some("yaml" | "yml") => Some(Kind::Regex),
        _ => None,
    }
}

/// The pack built into the binary.
pub fn shipped_sources() -> Vec<Source> {
    shipped::SHIPPED
        .iter()
        .map(|(origin, text)| Source { origin: origin.to_string(), text: text.to_string() })
        .collect()
}

/// Reads every rule file directly in `dir`, sorted by name.
pub fn read_dir(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<Source> {
    let shown = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::error(
                code::READ,
                &shown,
                None,
                format!("cannot read the rules directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let origin = path.display().to_string();
        if path.is_dir() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if kind_of(name).is_none() {
            if !name.starts_with('.') && !name.ends_with(".md") {
                diags.push(Diagnostic::warning(
                    code::IGNORED_FILE,
                    &origin,
                    None,
                    "not a rule file (*.yar, *.yara, *.yaml, *.yml); ignored",
                ));
            }
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => out.push(Source { origin, text }),
            Err(e) => diags.push(Diagnostic::error(code::READ, &origin, None, format!("cannot read: {e}"))),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CompileOptions {
    pub relaxed_yara_syntax: bool,
}

/// Every compiled rule, ready to scan with.
#[derive(Debug)]
pub struct RuleSet {
    pub yara: Option<yara::YaraRules>,
    pub regex: regex::RegexRules,
    /// A short hash of every source, in order: which rules a report was made with.
    pub identity: String,
}

impl RuleSet {
    pub fn yara_count(&self) -> usize {
        self.yara.as_ref().map_or(0, |y| y.meta.len())
    }

    pub fn regex_count(&self) -> usize {
        self.regex.rules.len()
    }

    /// Score, action and description of a rule of either engine.
    pub fn rule_info(&self, id: &str) -> Option<(i64, Option<RuleAction>, &str)> {
        if let Some(r) = self.regex.rules.iter().find(|r| r.id == id) {
            return Some((r.score, r.action, &r.description));
        }
        let m = self.yara.as_ref()?.meta.get(id)?;
        Some((m.score, m.action, &m.description))
    }
}

/// Compiles every source. Returns the set only if no error was reported; warnings are
/// returned either way.
pub fn compile(sources: &[Source], options: CompileOptions) -> (Option<RuleSet>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut regex_rules = Vec::new();
    let mut yara_sources = Vec::new();
    let mut hasher = Sha256::new();
    for s in sources {
        hasher.update(s.origin.as_bytes());
        hasher.update([0]);
        hasher.update(s.text.as_bytes());
        hasher.update([0]);
        match kind_of(&s.origin) {
            Some(Kind::Regex) => regex_rules.extend(regex::parse_file(&s.origin, &s.text, &mut diags)),
            Some(Kind::Yara) => yara_sources.push((s.origin.as_str(), s.text.as_str())),
            None => diags.push(Diagnostic::warning(
                code::IGNORED_FILE,
                &s.origin,
                None,
                "not a rule file; ignored",
            )),
        }
    }
    let yara = if yara_sources.is_empty() {
        None
    } else {
        yara::compile(
            &yara_sources,
            &yara::YaraOptions { relaxed_syntax: options.relaxed_yara_syntax },
            &mut diags,
        )
    };
    // Rule names for the checks across engines: from the compiled set, or, when YARA did not
    // compile, read from the sources, so that one YARA error does not make every regex rule
    // that requires a YARA rule look wrong too (or hide a name used in both).
    let yara_ids: Vec<String> = match &yara {
        Some(y) => y.meta.keys().cloned().collect(),
        None => yara_sources
            .iter()
            .flat_map(|(_, text)| yara::rule_identifiers(text))
            .map(|(name, _)| name)
            .collect(),
    };
    check_ids(&regex_rules, &yara_ids, &mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    let regex = match regex::compile(regex_rules) {
        Ok(r) => r,
        Err(e) => {
            diags.push(Diagnostic::error(code::BAD_REGEX, "(all regex rules)", None, e));
            return (None, diags);
        }
    };
    let digest = hasher.finalize();
    let identity = crate::hex::encode(&digest[..6]);
    (Some(RuleSet { yara, regex, identity }), diags)
}

/// Rule ids are one namespace across both engines; `requires` must name existing rules; a
/// rule that can never change a decision is worth a warning.
fn check_ids(regex_rules: &[regex::RegexRule], yara_ids: &[String], diags: &mut Vec<Diagnostic>) {
    use std::collections::{HashMap, HashSet};
    let mut seen: HashMap<&str, (&str, usize)> = HashMap::new();
    for r in regex_rules {
        if r.id.is_empty() {
            continue;
        }
        if let Some((origin, line)) = seen.get(r.id.as_str()) {
            diags.push(Diagnostic::error(
                code::DUPLICATE_ID,
                &r.origin,
                Some((r.line, 1)),
                format!("rule id `{}` is already used at {origin}:{line}", r.id),
            ));
        } else {
            seen.insert(&r.id, (&r.origin, r.line));
        }
    }
    let yara_ids: HashSet<&str> = yara_ids.iter().map(String::as_str).collect();
    for id in &yara_ids {
        if let Some((origin, line)) = seen.get(id) {
            diags.push(Diagnostic::error(
                code::DUPLICATE_ID,
                origin,
                Some((*line, 1)),
                format!("rule id `{id}` is also a YARA rule"),
            ));
        }
    }
    let exists = |id: &str| seen.contains_key(id) || yara_ids.contains(id);
    let mut required: HashSet<&str> = HashSet::new();
    for r in regex_rules {
        for dep in r.requires.iter().chain(&r.requires_any) {
            required.insert(dep);
            if !exists(dep) {
                diags.push(Diagnostic::error(
                    code::UNKNOWN_RULE,
                    &r.origin,
                    Some((r.line, 1)),
                    format!("rule `{}` requires `{dep}`, which is not a rule", r.id),
                ));
            }
        }
        for dep in &r.unless {
            required.insert(dep);
            if !exists(dep) || *dep == r.id {
                diags.push(Diagnostic::error(
                    code::UNKNOWN_RULE,
                    &r.origin,
                    Some((r.line, 1)),
                    format!("rule `{}` is `unless` `{dep}`, which is not another rule", r.id),
                ));
            }
        }
    }
    requirement_cycles(regex_rules, diags);
    // End-to-end encryption is the recipient's to undo and policy's to judge
    // (`policy.uninspectable`); a rule that scores it would hold every encrypted message.
    for r in regex_rules.iter().filter(|r| r.score > 0 || r.action.is_some()) {
        let e2e = ["smime-encrypted", "pgp-encrypted"].into_iter().find(|reason| {
            r.targets.contains(&regex::RegexTarget::Uninspected)
                && r.patterns.iter().any(|p| p.is_match(reason.as_bytes()))
        });
        if let Some(reason) = e2e {
            diags.push(Diagnostic::warning(
                code::SCORES_E2E,
                &r.origin,
                Some((r.line, 1)),
                format!("rule `{}` scores `{reason}`: end-to-end encryption is for `policy.uninspectable` to decide, not rules", r.id),
            ));
        }
    }
    // A rule with an error of its own (a score or action that did not parse, say) has that
    // error said; "it can never count" would only repeat it, wrongly.
    let has_error = |r: &regex::RegexRule| {
        let end = regex_rules
            .iter()
            .filter(|o| o.origin == r.origin && o.line > r.line)
            .map(|o| o.line)
            .min()
            .unwrap_or(usize::MAX);
        diags.iter().any(|d| {
            d.is_error() && d.origin == r.origin && d.line.is_some_and(|l| (r.line..end).contains(&l))
        })
    };
    let inert: Vec<&regex::RegexRule> = regex_rules
        .iter()
        .filter(|r| {
            r.score == 0 && r.action.is_none() && !required.contains(r.id.as_str()) && !r.id.is_empty()
        })
        .filter(|r| !has_error(r))
        .collect();
    for r in inert {
        diags.push(Diagnostic::warning(
            code::INERT_RULE,
            &r.origin,
            Some((r.line, 1)),
            format!("rule `{}` has no score, no action and no rule requires it: it can never count", r.id),
        ));
    }
}

/// Rules made only of requirements hit once everything they `requires` has hit, so a loop of
/// such rules through `requires` can never start: each is reported once, with its loop.
/// (Rules with patterns of their own can hit in a loop, when every pattern matches.)
fn requirement_cycles(regex_rules: &[regex::RegexRule], diags: &mut Vec<Diagnostic>) {
    use std::collections::{HashMap, HashSet};
    let meta: HashMap<&str, &regex::RegexRule> = regex_rules
        .iter()
        .filter(|r| r.patterns.is_empty() && !r.id.is_empty())
        .map(|r| (r.id.as_str(), r))
        .collect();
    let mut reported: HashSet<&str> = HashSet::new();
    let mut ids: Vec<&str> = meta.keys().copied().collect();
    ids.sort_unstable();
    for start in ids {
        if reported.contains(start) {
            continue;
        }
        // Depth-first along `requires` among meta rules, looking for the way back to `start`.
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(start, vec![start])];
        let mut seen: HashSet<&str> = HashSet::new();
        let mut found = None;
        while let Some((id, path)) = stack.pop() {
            for dep in meta.get(id).map(|r| r.requires.as_slice()).unwrap_or_default() {
                if dep == start {
                    found = Some(path.clone());
                    break;
                }
                if meta.contains_key(dep.as_str()) && seen.insert(dep.as_str()) {
                    let mut next = path.clone();
                    next.push(dep.as_str());
                    stack.push((dep.as_str(), next));
                }
            }
            if found.is_some() {
                break;
            }
        }
        let Some(path) = found else { continue };
        reported.extend(path.iter().copied());
        let r = meta[start];
        let mut shown: Vec<&str> = path.clone();
        shown.push(start);
        diags.push(Diagnostic::error(
            code::REQUIRES_CYCLE,
            &r.origin,
            Some((r.line, 1)),
            format!(
                "rules made only of requirements require each other ({}): none of them can ever hit",
                shown.join(" → ")
            ),
        ));
    }
}

#[cfg(test)]
mod tests;
