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
}

impl Default for RawInspect {
    fn default() -> RawInspect {
        RawInspect { limits: Limits::default(), scan_timeout: Span(Duration::from_secs(20)), threads: 0 }
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
}

impl RawInspect {
    pub fn validate(self) -> Result<InspectConfig, super::Problems> {
        if self.scan_timeout.0 < Duration::from_secs(2) {
            return Err(vec![(
                "inspect.scan_timeout",
                "must be at least 2s: YARA's timeout clock ticks once a second".into(),
            )]);
        }
        let threads = if self.threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            self.threads
        };
        Ok(InspectConfig { limits: self.limits, scan_timeout: self.scan_timeout.0, threads })
    }
}
