//! The `rules:` and `inspect:` sections: which rules, and how far inspection may go.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Span;
use crate::inspect::Limits;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRules {
    /// Directory (or list of directories) of rule files (`*.yar`, `*.yaml`), read in order, all
    /// compiled together. Default: the pack built into the binary, so `serve` with no
    /// configuration inspects with the shipped rules. The package uses the shipped pack in
    /// `/usr/share/inspect-milter/rules` and local rules in `/etc/inspect-milter/rules.d`.
    pub dir: Option<super::OneOrMany<PathBuf>>,
    /// Accept YARA 4 regular-expression syntax that yara-x refuses (unescaped `{`, unknown
    /// escapes). Default false; public packs sometimes need it.
    pub relaxed_yara_syntax: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawInspect {
    /// Limits of the MIME walk; each has its own documented default.
    pub limits: Limits,
    /// The scan budget of one message. Parts not scanned when it runs out are recorded as
    /// `scan-timeout`. Default `20s`: far above the milliseconds ordinary mail takes, far below
    /// Postfix's 300s content timeout. At least 2s (YARA's clock ticks once a second).
    pub scan_timeout: Span,
    /// Threads that inspect messages at once. Default 0: one per CPU.
    pub threads: usize,
    /// The authserv-ids (RFC 8601) of the site's own MTAs and verifiers, whose
    /// `Authentication-Results` are believed: SPF, DKIM, DMARC and ARC results from them become
    /// evidence (aligned with From or not); fields from any other id are ignored, since anyone
    /// can write one. Default empty: nothing is believed until the site says which verifier is
    /// its own, and that MTA must remove fields carrying its id from arriving mail.
    pub trusted_authserv_ids: Vec<String>,
}

impl Default for RawInspect {
    fn default() -> RawInspect {
        RawInspect {
            limits: Limits::default(),
            scan_timeout: Span(Duration::from_secs(20)),
            threads: 0,
            trusted_authserv_ids: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RulesConfig {
    /// Empty: the pack built into the binary.
    pub dirs: Vec<PathBuf>,
    pub relaxed_yara_syntax: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InspectConfig {
    pub limits: Limits,
    pub scan_timeout: Duration,
    pub threads: usize,
    /// Lower case, without surrounding spaces.
    pub trusted_authserv_ids: Vec<String>,
}

impl RawInspect {
    pub fn validate(self) -> Result<InspectConfig, super::Problems> {
        let mut problems = super::Problems::new();
        if self.scan_timeout.0 < Duration::from_secs(2) {
            problems.push((
                "inspect.scan_timeout",
                "must be at least 2s: YARA's timeout clock ticks once a second".into(),
            ));
        }
        // At 0 these hold every message as uninspectable (a limit of 0 is not "no limit").
        let l = &self.limits;
        for (key, value) in [
            ("inspect.limits.max_depth", u64::from(l.max_depth)),
            ("inspect.limits.max_parts", u64::from(l.max_parts)),
            ("inspect.limits.max_part_bytes", l.max_part_bytes),
            ("inspect.limits.max_total_bytes", l.max_total_bytes),
            ("inspect.limits.max_expansion_ratio", u64::from(l.max_expansion_ratio)),
        ] {
            if value == 0 {
                problems.push((
                    key,
                    "must be at least 1: at 0 every message would be held as uninspectable".into(),
                ));
            }
        }
        let mut trusted_authserv_ids = Vec::new();
        for id in &self.trusted_authserv_ids {
            let id = id.trim().to_ascii_lowercase();
            if id.is_empty() || id.contains([';', '=', ' ', '(', ')']) {
                problems.push((
                    "inspect.trusted_authserv_ids",
                    format!("`{id}` is not an authserv-id (a host name such as mx.example.org)"),
                ));
            } else if !trusted_authserv_ids.contains(&id) {
                trusted_authserv_ids.push(id);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.threads
        };
        Ok(InspectConfig {
            limits: self.limits,
            scan_timeout: self.scan_timeout.0,
            threads,
            trusted_authserv_ids,
        })
    }
}
