//! `inspect-milter test [DIR]`: the rule-authoring harness. Runs every case in DIR (default
//! `rules/tests`) through the daemon's pipeline and checks it against its expectation.
//!
//! A case is `NAME.eml` with `NAME.expect.yaml` beside it, or an entry of a `*.cases.yaml` file
//! with the message written inline. Expectations: `decision`, `hits` (rules that must hit),
//! `not_hits` (rules that must not), `coverage` (`complete`, or reasons that must be listed),
//! and optionally `envelope` (sender, recipients, client, HELO, TLS) for transport-aware rules.
//! Exit code: 0 all passed, 1 a case failed, 2 a case or the rules could not be loaded.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::{EXIT_ERROR, EXIT_FOUND, EXIT_OK, RulesArgs};
use crate::config::ConfigSource;
use crate::inspect::{Decision, Report};
use crate::milter::Envelope;
use crate::milter::envelope::{Auth, Tls};
use crate::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Directory of cases, read recursively.
    #[arg(default_value = "rules/tests", value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Only cases whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Print one JSON object per case, then a summary object.
    #[arg(long)]
    pub json: bool,
    /// Also write the results as JUnit XML to FILE (for CI systems).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Colour the output: auto (only on a terminal), always, never.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// What a case expects. Every key is optional; an empty expectation only checks that the
/// message scans.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    pub decision: Option<Decision>,
    pub hits: Vec<String>,
    pub not_hits: Vec<String>,
    pub coverage: Option<ExpectCoverage>,
    pub envelope: Option<CaseEnvelope>,
    /// Authserv-ids whose `Authentication-Results` the case's site trusts, added to the
    /// configuration's `inspect.trusted_authserv_ids` for this case only.
    pub trusted_authserv_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExpectCoverage {
    /// `complete`
    Word(String),
    /// Reasons that must be listed, e.g. `[encrypted-archive]`.
    Reasons(Vec<String>),
}

/// The envelope and transport a case is delivered with.
/// Also built from `scan`'s flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseEnvelope {
    pub from: Option<String>,
    pub rcpt: Vec<String>,
    pub client: Option<String>,
    pub client_name: Option<String>,
    pub helo: Option<String>,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    pub authenticated: Option<String>,
}

impl CaseEnvelope {
    pub fn to_envelope(&self) -> Envelope {
        let mut e = Envelope::default();
        if let Some(f) = &self.from {
            e.sender = f.clone();
        }
        e.recipients = self.rcpt.clone();
        e.client.addr = self.client.clone();
        if let Some(n) = &self.client_name {
            e.client.name = n.clone();
        }
        e.helo = self.helo.clone();
        if let Some(v) = &self.tls_version {
            e.tls = Some(Tls { version: v.clone(), cipher: self.cipher.clone(), ..Tls::default() });
        }
        if let Some(user) = &self.authenticated {
            e.auth = Some(Auth { mechanism: "PLAIN".into(), authen: Some(user.clone()), author: None });
        }
        e
    }
}

/// A `*.cases.yaml` file: inline messages with their expectations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    cases: Vec<InlineCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InlineCase {
    name: String,
    message: String,
    #[serde(flatten)]
    expect: InlineExpect,
}

/// The same keys as [`Expect`], flattened into an inline case.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InlineExpect {
    decision: Option<Decision>,
    hits: Vec<String>,
    not_hits: Vec<String>,
    coverage: Option<ExpectCoverage>,
    envelope: Option<CaseEnvelope>,
    trusted_authserv_ids: Vec<String>,
}

struct Case {
    name: String,
    message: Vec<u8>,
    expect: Expect,
}

#[derive(Debug, Serialize)]
struct CaseResult {
    name: String,
    passed: bool,
    failures: Vec<String>,
    decision: Decision,
    score: i64,
    hits: Vec<String>,
    #[serde(skip)]
    report: Option<Report>,
}

pub fn run(args: TestArgs, config: &ConfigSource) -> u8 {
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal(),
    };
    let (mut pipeline, source) = match args.rules.pipeline(Some(&args.dir), config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut errors = Vec::new();
    let mut cases = Vec::new();
    collect(&args.dir, &args.dir, &mut cases, &mut errors);
    if let Some(f) = &args.filter {
        cases.retain(|c| c.name.contains(f.as_str()));
    }
    // A run that tests nothing must not pass: a mistyped directory or filter would turn a
    // rule pack's CI green without running a single case.
    if cases.is_empty() && errors.is_empty() {
        errors.push(match &args.filter {
            Some(f) => format!("no case in {} matches --filter {f:?}", args.dir.display()),
            None => {
                format!("{}: no cases (NAME.eml with NAME.expect.yaml, or *.cases.yaml)", args.dir.display())
            }
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    let results: Vec<CaseResult> = cases.iter().map(|c| check(&mut pipeline, c)).collect();
    let passed = results.iter().filter(|r| r.passed).count();
    let failed = results.len() - passed;
    let mut out = std::io::stdout().lock();
    if args.json {
        for r in &results {
            let _ = writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default());
        }
        let summary =
            serde_json::json!({"passed": passed, "failed": failed, "errors": errors, "rules": source});
        let _ = writeln!(out, "{summary}");
    } else {
        let paint =
            |code: &str, s: &str| if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() };
        let _ = writeln!(out, "rules: {source}");
        for r in &results {
            if r.passed {
                let _ = writeln!(out, "{}  {}", paint("32", "ok  "), r.name);
                continue;
            }
            let _ = writeln!(out, "{}  {}", paint("31;1", "FAIL"), r.name);
            for f in &r.failures {
                let _ = writeln!(out, "        {f}");
            }
            if let Some(report) = &r.report {
                let _ = writeln!(out, "        got: {} score={}", report.decision, report.score);
                for h in &report.hits {
                    let _ = writeln!(
                        out,
                        "          hit {} [{:?}] score={} part={} {}{}",
                        h.rule,
                        h.engine,
                        h.score,
                        h.part_path,
                        h.target,
                        if h.snippet.is_empty() { String::new() } else { format!(": {}", h.snippet) }
                    );
                }
                for u in &report.coverage.uninspectable {
                    let _ = writeln!(out, "          uninspected {} part={}", u.reason, u.part_path);
                }
            }
        }
        for e in &errors {
            let _ = writeln!(out, "{}  {e}", paint("31;1", "ERROR"));
        }
        match errors.len() {
            0 => writeln!(out, "{passed} passed, {failed} failed"),
            n => writeln!(out, "{passed} passed, {failed} failed, {n} could not be run"),
        }
        .ok();
    }
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, junit(&results, &errors))
    {
        eprintln!("inspect-milter: {}: {e}", path.display());
        return EXIT_ERROR;
    }
    if !errors.is_empty() {
        EXIT_ERROR
    } else if failed > 0 {
        EXIT_FOUND
    } else {
        EXIT_OK
    }
}

fn collect(root: &Path, dir: &Path, cases: &mut Vec<Case>, errors: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        if path.is_dir() {
            collect(root, &path, cases, errors);
        } else if let Some(stem) = name.strip_suffix(".eml") {
            let expect_path = path.with_file_name(format!("{stem}.expect.yaml"));
            let expect = match std::fs::read_to_string(&expect_path) {
                Ok(text) => match crate::yaml::from_str::<Expect>(&text, &expect_path) {
                    Ok(e) => e,
                    Err(e) => {
                        errors.push(e.to_string());
                        continue;
                    }
                },
                Err(_) => {
                    errors.push(format!("{}: no expectation file {}", path.display(), expect_path.display()));
                    continue;
                }
            };
            match std::fs::read(&path) {
                Ok(message) => {
                    cases.push(Case { name: rel.trim_end_matches(".eml").to_string(), message, expect })
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        } else if let Some(stem) = name.strip_suffix(".expect.yaml") {
            // An expectation whose message is missing would otherwise never run.
            if !path.with_file_name(format!("{stem}.eml")).is_file() {
                errors.push(format!("{}: no message {stem}.eml beside it", path.display()));
            }
        } else if name.ends_with(".cases.yaml") {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            match crate::yaml::from_str::<CasesFile>(&text, &path) {
                Ok(file) => {
                    let base = rel.trim_end_matches(".cases.yaml").to_string();
                    for c in file.cases {
                        let e = c.expect;
                        cases.push(Case {
                            name: format!("{base}:{}", c.name),
                            message: c.message.into_bytes(),
                            expect: Expect {
                                decision: e.decision,
                                hits: e.hits,
                                not_hits: e.not_hits,
                                coverage: e.coverage,
                                envelope: e.envelope,
                                trusted_authserv_ids: e.trusted_authserv_ids,
                            },
                        });
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
}

fn check(pipeline: &mut Pipeline, case: &Case) -> CaseResult {
    let envelope = case.expect.envelope.as_ref().map(CaseEnvelope::to_envelope).unwrap_or_default();
    let configured = pipeline.inspector.trusted_authserv_ids.clone();
    pipeline
        .inspector
        .trusted_authserv_ids
        .extend(case.expect.trusted_authserv_ids.iter().map(|id| id.to_ascii_lowercase()));
    let report = pipeline.run(&case.message, &envelope, false, case.message.len() as u64);
    pipeline.inspector.trusted_authserv_ids = configured;
    let hit_ids: Vec<&str> = report.hits.iter().map(|h| h.rule.as_str()).collect();
    let mut failures = Vec::new();
    if let Some(want) = case.expect.decision
        && want != report.decision
    {
        failures.push(format!("decision: expected {want}, got {} (score {})", report.decision, report.score));
    }
    for want in &case.expect.hits {
        if !hit_ids.contains(&want.as_str()) {
            let known = pipeline.inspector.rules.rule_info(want).is_some();
            let why = if known { "" } else { " (no rule of that name is loaded)" };
            failures.push(format!("hits: expected `{want}` to hit; it did not{why}"));
        }
    }
    for unwanted in &case.expect.not_hits {
        // A rule that is not loaded never hits: the expectation would hold forever, typo or not.
        if pipeline.inspector.rules.rule_info(unwanted).is_none() {
            failures.push(format!("not_hits: no rule `{unwanted}` is loaded"));
        }
        if let Some(h) = report.hits.iter().find(|h| &h.rule == unwanted) {
            failures.push(format!(
                "not_hits: `{unwanted}` hit at part {} ({}): {}",
                h.part_path, h.target, h.snippet
            ));
        }
    }
    match &case.expect.coverage {
        None => {}
        Some(ExpectCoverage::Word(w)) if w == "complete" && !report.coverage.complete => {
            let got: Vec<String> = report
                .coverage
                .uninspectable
                .iter()
                .map(|u| format!("{}={}", u.reason, u.part_path))
                .collect();
            failures.push(format!("coverage: expected complete, got partial: {}", got.join(", ")));
        }
        Some(ExpectCoverage::Word(w)) if w == "complete" => {}
        Some(ExpectCoverage::Word(w)) => {
            failures.push(format!("coverage: `{w}` is not `complete` or a list of reasons"))
        }
        Some(ExpectCoverage::Reasons(reasons)) => {
            for r in reasons {
                if !report.coverage.uninspectable.iter().any(|u| u.reason.as_str() == r) {
                    failures.push(format!("coverage: expected `{r}` among the uninspected parts; it is not"));
                }
            }
        }
    }
    CaseResult {
        name: case.name.clone(),
        passed: failures.is_empty(),
        failures,
        decision: report.decision,
        score: report.score,
        hits: hit_ids.iter().map(|s| s.to_string()).collect(),
        report: Some(report),
    }
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            // XML 1.0 cannot carry most control characters at all.
            c if c.is_control() && c != '\n' && c != '\t' => "?".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn junit(results: &[CaseResult], errors: &[String]) -> String {
    let failed = results.iter().filter(|r| !r.passed).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuite name=\"inspect-milter rules\" tests=\"{}\" failures=\"{failed}\" errors=\"{}\">\n",
        results.len(),
        errors.len()
    ));
    for r in results {
        x.push_str(&format!("  <testcase classname=\"rules\" name=\"{}\"", xml_escape(&r.name)));
        if r.passed {
            x.push_str("/>\n");
        } else {
            x.push_str(&format!(
                ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                xml_escape(r.failures.first().map_or("", String::as_str)),
                xml_escape(&format!(
                    "{}\ngot {} score={} hits={}",
                    r.failures.join("\n"),
                    r.decision,
                    r.score,
                    r.hits.join(",")
                ))
            ));
        }
    }
    for e in errors {
        x.push_str(&format!(
            "  <testcase classname=\"rules\" name=\"load\">\n    <error message=\"{}\"/>\n  </testcase>\n",
            xml_escape(e)
        ));
    }
    x.push_str("</testsuite>\n");
    x
}
