//! The one report type: what was inspected, what was found, what could not be looked at, and
//! what was decided. It feeds the log line, `scan --json`, the quarantine metadata and the
//! rule-test fixtures, so all of them always agree.

use serde::{Deserialize, Serialize};

use super::{Anomaly, PartInfo, Uninspectable};
use crate::inspect::engines::hit::Hit;
use crate::milter::Envelope;

/// What happens to a message, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Tag,
    Quarantine,
    /// Try again later: we could not finish, and the sender's server keeps the message.
    Tempfail,
    Reject,
    /// Accept and drop. Never chosen by default; only where configured explicitly.
    Discard,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Tag => "tag",
            Decision::Quarantine => "quarantine",
            Decision::Tempfail => "tempfail",
            Decision::Reject => "reject",
            Decision::Discard => "discard",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Decision, String> {
        Ok(match s {
            "accept" => Decision::Accept,
            "tag" => Decision::Tag,
            "quarantine" => Decision::Quarantine,
            "tempfail" => Decision::Tempfail,
            "reject" => Decision::Reject,
            "discard" => Decision::Discard,
            other => return Err(format!("unknown decision `{other}`")),
        })
    }
}

/// Facts about the message itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFacts {
    /// Bytes inspected (up to the size cap).
    pub size: u64,
    /// Bytes the MTA sent, including any past the cap.
    pub received_bytes: u64,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The message was larger than `max_message_size`; only its beginning was inspected.
    pub truncated: bool,
    /// Who sent it, as far as the site's trusted authentication results and the structure of
    /// bulk mail tell.
    #[serde(default, skip_serializing_if = "SenderFacts::is_empty")]
    pub sender: SenderFacts,
}

/// Sender authentication and bulk-mail structure (`inspect::sender`, `inspect::bulk`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderFacts {
    #[serde(default)]
    pub authentication: crate::inspect::evidence::sender::Authentication,
    #[serde(default)]
    pub bulk: crate::inspect::evidence::bulk::Bulk,
}

impl SenderFacts {
    /// Nothing worth showing: no results, no bulk structure.
    pub fn is_empty(&self) -> bool {
        self.authentication.results.is_empty()
            && self.authentication.untrusted_fields == 0
            && self.bulk == crate::inspect::evidence::bulk::Bulk::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub walk_us: u64,
    pub regex_us: u64,
    pub yara_us: u64,
    pub total_us: u64,
}

/// Whether everything was inspected, and if not, what was not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub complete: bool,
    pub uninspectable: Vec<Uninspectable>,
}

/// How many targets of one kind were scanned, and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCount {
    pub count: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Format version of this structure.
    pub version: u32,
    /// Which rule set made it (a hash of every rule file).
    pub rules: String,
    pub message: MessageFacts,
    pub envelope: Envelope,
    pub decision: Decision,
    /// The decision was only recorded, not acted on (`policy.dry_run`).
    pub dry_run: bool,
    /// The message carries a valid release mark for this quarantine entry: a reviewer released
    /// it, so it is delivered whatever the decision (and still scanned and logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<String>,
    pub score: i64,
    /// Why the decision is what it is, one line per cause.
    pub reasons: Vec<String>,
    pub hits: Vec<Hit>,
    pub coverage: CoverageReport,
    pub anomalies: Vec<Anomaly>,
    pub parts: Vec<PartInfo>,
    /// What was scanned, by target kind (`text`, `url`, `attachment`, …).
    #[serde(default)]
    pub targets: std::collections::BTreeMap<String, TargetCount>,
    pub timings: Timings,
}

pub const REPORT_VERSION: u32 = 1;

impl Report {
    /// Rules that count (a score or an action), deduplicated, in order of first hit.
    pub fn deciding_rules(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for h in &self.hits {
            if (h.score != 0 || h.action.is_some()) && !out.contains(&h.rule.as_str()) {
                out.push(&h.rule);
            }
        }
        out
    }
}
