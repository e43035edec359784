//! The same pipeline everywhere: message bytes → inspection → decision → milter actions. The
//! daemon's filter, `scan` and `test` all go through [`Pipeline`], so a rule author sees
//! exactly what production does.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::config::policy::PolicyConfig;
use crate::config::quarantine::QuarantineMode;
use crate::inspect::engine::Inspector;
use crate::inspect::report::REPORT_VERSION;
use crate::inspect::{CoverageReport, Reason, Report, Uninspectable};
use crate::milter::{Action, EndOfMessage, Envelope, Filter, FilterError, SmtpReply, Verdict};
use crate::policy;
use crate::quarantine::ownership::access_hint;
use crate::quarantine::release_mark::{self, Secret};
use crate::quarantine::{Id, Location, NewEntry, Store, StoreError};
use crate::rules::diag::Diagnostic;
use crate::rules::{self, CompileOptions, RuleSet};

pub struct Pipeline {
    pub inspector: Inspector,
    pub policy: PolicyConfig,
    /// The secret and maximum age of release marks; `None` when no secret exists yet (then no
    /// message is treated as released).
    pub release: Option<(Secret, std::time::Duration)>,
    /// Who keeps a quarantined message (`quarantine.mode`), so that what `scan` says the
    /// daemon would do is what it does.
    pub quarantine_mode: QuarantineMode,
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
    let sources = if config.rules.dirs.is_empty() {
        rules::shipped_sources()
    } else {
        config.rules.dirs.iter().flat_map(|dir| rules::read_dir(dir, &mut diags)).collect()
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
        // Only read here: the daemon creates the secret at start-up (InspectFilter::open).
        let release = match Secret::load(&config.release.secret_file) {
            Ok(Some(s)) => Some((s, config.release.max_age)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(path = %config.release.secret_file.display(), error = %e, "cannot read the release secret; released messages will be inspected as new");
                None
            }
        };
        Pipeline {
            release,
            inspector: Inspector {
                rules,
                limits: config.inspect.limits.clone(),
                scan_timeout: config.inspect.scan_timeout,
                hash_message: true,
                trusted_authserv_ids: config.inspect.trusted_authserv_ids.clone(),
            },
            policy: config.policy.clone(),
            quarantine_mode: config.quarantine.mode,
        }
    }

    /// Inspects and decides. `truncated`: the message went past the size cap and `raw` is
    /// only its beginning; `received` counts every byte the MTA sent.
    pub fn run(&self, raw: &[u8], envelope: &Envelope, truncated: bool, received: u64) -> Report {
        self.run_since(raw, envelope, truncated, received, std::time::Instant::now())
    }

    /// [`Pipeline::run`] for a message that arrived at `arrived`: the deadline counts from then.
    pub fn run_since(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        truncated: bool,
        received: u64,
        arrived: std::time::Instant,
    ) -> Report {
        let mut f = self.inspector.inspect_since(raw, envelope, arrived);
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
        let mut outcome = policy::decide(&self.policy, &f.hits, &f.uninspectable, truncated);
        let checked = self.release.as_ref().map(|(secret, max_age)| {
            release_mark::verify(secret, raw, std::time::SystemTime::now(), *max_age)
        });
        let released = match checked {
            Some(Ok(id)) => Some(id),
            None | Some(Err(release_mark::Invalid::Missing)) => None,
            // Said, so that a release made with another key (two configurations, two secrets)
            // or a forged mark does not look like an ordinary message held again.
            Some(Err(why)) => {
                let why = match why {
                    release_mark::Invalid::BadMac => {
                        "not made with this release key (another key, a forgery, or other content)"
                    }
                    release_mark::Invalid::Expired => "older than release.max_age",
                    _ => "malformed",
                };
                tracing::warn!(
                    queue_id = %crate::logline::escape(envelope.queue_id.as_deref().unwrap_or("-")),
                    why,
                    "the message carries a release mark that does not count; inspected as new"
                );
                outcome.reasons.push(format!("release mark does not count ({why}): inspected as new"));
                None
            }
        };
        if let Some(id) = &released {
            outcome.reasons.push(format!("released from quarantine entry {id}: delivered, not held again"));
        }
        Report {
            version: REPORT_VERSION,
            rules: self.inspector.rules.identity.clone(),
            message: f.message,
            envelope: envelope.clone(),
            decision: outcome.decision,
            dry_run: self.policy.dry_run,
            released,
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

/// The daemon's filter: the pipeline, the quarantine store, and one summary log line per
/// message.
pub struct InspectFilter {
    pub pipeline: Pipeline,
    /// Where quarantined messages go; `None` only where no message may be held (tests that
    /// never quarantine). A quarantine decision without a store tempfails.
    pub store: Option<Store>,
    pub mode: QuarantineMode,
}

impl InspectFilter {
    /// A filter with the quarantine store of `config`, opened (and created) now: a daemon that
    /// cannot keep what it quarantines must not start. A refused permission is explained: who
    /// owns what could not be opened, and the `chown` that gives the state to this daemon.
    pub fn open(mut pipeline: Pipeline, config: &Config) -> Result<InspectFilter, String> {
        let (dir, key) = (&config.quarantine.dir, &config.release.secret_file);
        let store = Store::open(dir).map_err(|e| {
            let hint = match &e {
                StoreError::Io { path, source } => access_hint(source, path, state_to_fix(config, dir)),
                _ => String::new(),
            };
            format!("cannot open the quarantine store: {e}{hint}")
        })?;
        let secret = Secret::load_or_create(key).map_err(|e| {
            let hint = access_hint(&e, key, state_to_fix(config, key));
            format!("cannot read or create the release secret {}: {e}{hint}", key.display())
        })?;
        pipeline.release = Some((secret, config.release.max_age));
        // Only quarantined messages need their hash; it is added to their report below.
        pipeline.inspector.hash_message = false;
        Ok(InspectFilter { pipeline, store: Some(store), mode: config.quarantine.mode })
    }
}

/// What one `chown -R` must cover to give the daemon its state: the directory holding both the
/// store and the release key when there is one (`/var/lib/inspect-milter` by default and in
/// the package), else `path` alone.
fn state_to_fix<'a>(config: &'a Config, path: &'a Path) -> &'a Path {
    match config.release.secret_file.parent() {
        Some(dir) if dir.parent().is_some() && config.quarantine.dir.starts_with(dir) => dir,
        _ => path,
    }
}

impl Filter for InspectFilter {
    fn end_of_message(&self, m: &EndOfMessage) -> Result<Verdict, FilterError> {
        let mut report =
            self.pipeline.run_since(&m.message, &m.envelope, m.truncated, m.received_bytes, m.arrived);
        let mut verdict = self.pipeline.verdict(&report, &m.message);
        let mut held = None;
        if matches!(verdict.action, Action::Quarantine(_)) {
            let location = location(self.mode, m.truncated);
            let kept = match &self.store {
                None => Err("no quarantine store".to_string()),
                Some(store) => {
                    if report.message.sha256.is_empty() {
                        report.message.sha256 = crate::hex::sha256(&m.message);
                    }
                    let bytes: &[u8] = if location == Location::Mta { b"" } else { &m.message };
                    let mut entry = NewEntry::from_report(
                        serde_json::to_value(&report).unwrap_or_default(),
                        std::time::SystemTime::now(),
                    );
                    entry.location = location;
                    store.put(bytes, entry).map_err(|e| e.to_string())
                }
            };
            if let Err(e) = &kept {
                tracing::warn!(
                    queue_id = %crate::logline::escape(m.envelope.queue_id.as_deref().unwrap_or("-")),
                    error = %e,
                    "cannot quarantine; tempfailing so the sender keeps the message"
                );
            }
            verdict =
                quarantine_verdict(verdict, location, kept.as_ref().map_err(|_| ()).map(|id| id.as_str()));
            held = kept.ok();
        }
        crate::logline::message(&report, &describe(&verdict.action), held.as_ref().map(Id::as_str));
        count(&report);
        Ok(verdict)
    }
}

/// The data path's only contact with metrics: a few counter increments.
fn count(report: &Report) {
    use crate::metrics::{DecisionLabel, ReasonLabel, RuleLabel, get};
    let m = get();
    m.messages.get_or_create(&DecisionLabel { decision: report.decision.as_str().to_string() }).inc();
    let mut seen = std::collections::HashSet::new();
    for h in &report.hits {
        if seen.insert(h.rule.as_str()) {
            m.rule_hits.get_or_create(&RuleLabel { rule: h.rule.clone() }).inc();
        }
    }
    for u in &report.coverage.uninspectable {
        m.uninspected.get_or_create(&ReasonLabel { reason: u.reason.as_str().to_string() }).inc();
    }
    m.scan_seconds.observe(report.timings.total_us as f64 / 1e6);
    m.message_bytes.observe(report.message.received_bytes as f64);
}

/// Where a quarantined message goes. A truncated message is always also held at the MTA:
/// our copy is only its beginning.
pub fn location(mode: QuarantineMode, truncated: bool) -> Location {
    match mode {
        QuarantineMode::Hold => Location::Mta,
        QuarantineMode::Both => Location::Both,
        QuarantineMode::Store if truncated => Location::Both,
        QuarantineMode::Store => Location::Store,
    }
}

/// The MTA's part of a quarantine: discard when only our store keeps it, hold when the MTA
/// keeps it too, and tempfail when the store could not take it — a message is never accepted
/// into a quarantine that could not keep it.
pub fn quarantine_verdict(verdict: Verdict, location: Location, stored: Result<&str, ()>) -> Verdict {
    let Action::Quarantine(reason) = &verdict.action else { return verdict };
    match (stored, location) {
        (Err(()), _) => Verdict {
            headers: Vec::new(),
            action: Action::Tempfail(
                SmtpReply::new(451, "4.3.0", "Message could not be quarantined, try again later").ok(),
            ),
        },
        (Ok(_), Location::Store) => Verdict { headers: Vec::new(), action: Action::Discard },
        (Ok(id), Location::Mta | Location::Both) => {
            let reason = format!("{reason} id={id}");
            Verdict { headers: verdict.headers.clone(), action: Action::Quarantine(reason) }
        }
    }
}

/// What the MTA was told, for the log line.
fn describe(action: &Action) -> String {
    match action {
        Action::Accept => "accept".into(),
        Action::Discard => "discard".into(),
        Action::Quarantine(_) => "hold".into(),
        Action::Reject(Some(r)) | Action::Tempfail(Some(r)) => format!("reply {}", r.code()),
        Action::Reject(None) => "reject".into(),
        Action::Tempfail(None) => "tempfail".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::HeaderChange;

    fn held() -> Verdict {
        Verdict {
            headers: vec![HeaderChange::Add { name: "X-Inspect-Verdict".into(), value: "quarantine".into() }],
            action: Action::Quarantine("inspect-milter: r".into()),
        }
    }

    /// A release mark made with this store's key lets the message through; one made with
    /// another key is said in the report (and the log), not passed over in silence.
    #[test]
    fn a_release_mark_that_does_not_count_is_said() {
        use crate::quarantine::Id;
        let (mut pipeline, _) = Pipeline::load(&Config::default()).unwrap();
        let ours = Secret::from_bytes(&[1; 32]);
        pipeline.release = Some((ours.clone(), std::time::Duration::from_secs(3600)));
        let id = Id::parse("20261128T212201Z-3539c187f233").unwrap();
        let raw = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n";
        let now = std::time::SystemTime::now();
        let good = release_mark::apply(&ours, &id, now, raw);
        let report = pipeline.run(&good, &Envelope::default(), false, good.len() as u64);
        assert_eq!(report.released.as_deref(), Some(id.as_str()));
        let other = release_mark::apply(&Secret::from_bytes(&[2; 32]), &id, now, raw);
        let report = pipeline.run(&other, &Envelope::default(), false, other.len() as u64);
        assert_eq!(report.released, None);
        assert!(
            report
                .reasons
                .iter()
                .any(|r| r.contains("release mark does not count (not made with this release key")),
            "{:?}",
            report.reasons
        );
        let plain = pipeline.run(raw, &Envelope::default(), false, raw.len() as u64);
        assert!(!plain.reasons.iter().any(|r| r.contains("release mark")), "{:?}", plain.reasons);
    }

    #[test]
    fn quarantine_modes_decide_who_keeps_the_message() {
        assert_eq!(location(QuarantineMode::Store, false), Location::Store);
        assert_eq!(
            location(QuarantineMode::Store, true),
            Location::Both,
            "a truncated copy is never the only one"
        );
        assert_eq!(location(QuarantineMode::Hold, false), Location::Mta);
        assert_eq!(location(QuarantineMode::Both, false), Location::Both);
        assert_eq!(quarantine_verdict(held(), Location::Store, Ok("ID")).action, Action::Discard);
        let v = quarantine_verdict(held(), Location::Both, Ok("ID"));
        assert_eq!(v.action, Action::Quarantine("inspect-milter: r id=ID".into()));
        assert_eq!(v.headers.len(), 1);
    }

    #[test]
    fn a_store_that_cannot_keep_the_message_means_tempfail() {
        for loc in [Location::Store, Location::Mta, Location::Both] {
            let v = quarantine_verdict(held(), loc, Err(()));
            assert!(matches!(v.action, Action::Tempfail(Some(ref r)) if r.code() == 451), "{loc:?}");
        }
    }

    #[test]
    fn other_verdicts_pass_through() {
        let v = Verdict::accept();
        assert_eq!(quarantine_verdict(v.clone(), Location::Store, Err(())), v);
    }
}
