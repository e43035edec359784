//! The same pipeline everywhere: message bytes → inspection → decision → milter actions. The
//! daemon's filter, `scan` and `test` all go through [`Pipeline`], so a rule author sees
//! exactly what production does.

use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::config::policy::PolicyConfig;
use crate::inspect::engine::Inspector;
use crate::inspect::report::REPORT_VERSION;
use crate::inspect::{CoverageReport, Reason, Report, Uninspectable};
use crate::milter::{EndOfMessage, Envelope, Filter, FilterError, Verdict};
use crate::policy;
use crate::rules::diag::Diagnostic;
use crate::rules::{self, CompileOptions, RuleSet};

pub struct Pipeline {
    pub inspector: Inspector,
    pub policy: PolicyConfig,
}

/// The rules could not be loaded; every problem is listed.
#[derive(Debug)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<&Diagnostic> = self.diagnostics.iter().filter(|d| d.is_error()).collect();
        write!(f, "the rules did not load ({} error(s))", errors.len())?;
        for d in errors {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Reads and compiles the configured rules (a directory, or the shipped pack).
pub fn load_rules(config: &Config) -> (Option<RuleSet>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let sources = match &config.rules.dir {
        Some(dir) => rules::read_dir(dir, &mut diags),
        None => rules::shipped_sources(),
    };
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags);
    }
    let (set, mut more) =
        rules::compile(&sources, CompileOptions { relaxed_yara_syntax: config.rules.relaxed_yara_syntax });
    diags.append(&mut more);
    (set, diags)
}

impl Pipeline {
    /// Builds the pipeline from the configuration; warnings come back beside it.
    pub fn load(config: &Config) -> Result<(Pipeline, Vec<Diagnostic>), LoadError> {
        let (set, diagnostics) = load_rules(config);
        let Some(set) = set else { return Err(LoadError { diagnostics }) };
        Ok((Pipeline::new(Arc::new(set), config), diagnostics))
    }

    pub fn new(rules: Arc<RuleSet>, config: &Config) -> Pipeline {
        Pipeline {
            inspector: Inspector {
                rules,
                limits: config.inspect.limits.clone(),
                scan_timeout: config.inspect.scan_timeout,
            },
            policy: config.policy.clone(),
        }
    }

    /// Inspects and decides. `truncated`: the message went past the size cap and `raw` is
    /// only its beginning; `received` counts every byte the MTA sent.
    pub fn run(&self, raw: &[u8], envelope: &Envelope, truncated: bool, received: u64) -> Report {
        let mut f = self.inspector.inspect(raw, envelope);
        f.message.truncated = truncated;
        f.message.received_bytes = received.max(raw.len() as u64);
        if truncated {
            f.uninspectable.push(Uninspectable {
                reason: Reason::OverSize,
                part_path: "0".into(),
                detail: format!(
                    "message truncated after {} of {} bytes",
                    raw.len(),
                    f.message.received_bytes
                ),
            });
        }
        let outcome = policy::decide(&self.policy, &f.hits, &f.uninspectable, truncated);
        Report {
            version: REPORT_VERSION,
            rules: self.inspector.rules.identity.clone(),
            message: f.message,
            envelope: envelope.clone(),
            decision: outcome.decision,
            dry_run: self.policy.dry_run,
            score: outcome.score,
            reasons: outcome.reasons,
            hits: f.hits,
            coverage: CoverageReport { complete: f.uninspectable.is_empty(), uninspectable: f.uninspectable },
            anomalies: f.anomalies,
            parts: f.parts,
            targets: f.targets,
            timings: f.timings,
        }
    }

    /// The milter actions for a report.
    pub fn verdict(&self, report: &Report, raw: &[u8]) -> Verdict {
        policy::verdict(&self.policy, report, raw)
    }
}

/// The daemon's filter: the pipeline, plus one summary log line per message.
pub struct InspectFilter {
    pub pipeline: Pipeline,
}

impl Filter for InspectFilter {
    fn end_of_message(&self, m: &EndOfMessage) -> Result<Verdict, FilterError> {
        let report = self.pipeline.run(&m.message, &m.envelope, m.truncated, m.received_bytes);
        crate::logline::message(&report);
        Ok(self.pipeline.verdict(&report, &m.message))
    }
}
