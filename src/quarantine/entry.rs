//! What the store keeps about a held message besides its bytes: the envelope, the facts a
//! reviewer filters on, the full inspection report, and the state with every change to it.
//!
//! The summary fields (sender, rules, uninspected reasons, …) are copies of what the report
//! says, kept flat so that `list` and its filters do not depend on the report's shape; the
//! report itself is kept whole as JSON so `show` explains the decision exactly as it was made.
//! The lifecycle is one small state machine ([`State::can_become`]): nothing leaves `deleted`,
//! and a released message is never held again.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::id::Id;
use super::time::Timestamp;

/// The metadata format written by this code.
pub const ENTRY_VERSION: u32 = 1;

/// Who records the first history event of every entry.
pub const DAEMON: &str = "inspect-milter";

/// Where a held message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Held for review: not delivered, bytes kept.
    Held,
    /// Delivered after review; bytes kept until purged, for the record.
    Released,
    /// Bytes removed; the metadata stays as the record of what was held and who deleted it.
    Deleted,
}

impl State {
    pub const ALL: [State; 3] = [State::Held, State::Released, State::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Held => "held",
            State::Released => "released",
            State::Deleted => "deleted",
        }
    }

    /// Every legal change of state, in one place:
    /// - `held → held`: an attempt that changed nothing (a release that failed), recorded;
    /// - `held → released`, `held → deleted`, `released → deleted`.
    ///
    /// Nothing leaves `deleted` (the bytes are gone), and `released` never goes back to
    /// `held` or is released again: a second release would deliver the message twice.
    pub fn can_become(self, next: State) -> bool {
        matches!(
            (self, next),
            (State::Held, State::Held | State::Released | State::Deleted) | (State::Released, State::Deleted)
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<State, String> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state `{s}` (use held, released or deleted)"))
    }
}

/// The SMTP envelope and client, as the MTA gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EntryEnvelope {
    /// Without angle brackets; empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<String>,
    pub client_addr: Option<String>,
    pub client_name: Option<String>,
    pub helo: Option<String>,
}

/// One change of state: when, to what, who did it, how, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub at: Timestamp,
    /// The state after this event.
    pub state: State,
    /// A person (`alice`) or a program (`inspect-milter`).
    pub who: String,
    /// What was done, and how (`quarantine`, `release via smtp:[127.0.0.1]:25`, `delete`).
    pub action: String,
    /// Free text: what came of it (`250 2.0.0 Ok: queued as 4F2A1`, `message bytes removed`).
    pub result: String,
}

/// What a caller records with [`Store::set_state`](super::Store::set_state); the store adds
/// the time and the new state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub who: String,
    pub action: String,
    pub result: String,
}

/// What the daemon hands to [`Store::put`](super::Store::put) with the message bytes. The
/// store adds the id, size, sha256, state and first history event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// When the message was received (end of message). Names the id and the date directory.
    pub received: SystemTime,
    /// Where the message itself is kept.
    pub location: Location,
    pub envelope: EntryEnvelope,
    pub queue_id: Option<String>,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// `accept`, `tag`, `quarantine`, `reject`, `tempfail` or `discard`.
    pub decision: String,
    pub score: i64,
    /// Every rule that hit, each once, in order of first hit.
    pub rules: Vec<String>,
    /// Every reason something was not inspected (`encrypted-archive`, …), each once.
    pub uninspected: Vec<String>,
    /// The full inspection report.
    pub report: Value,
}

impl NewEntry {
    /// Takes the summary fields from a serialized inspection report (its `envelope`,
    /// `message`, `decision`, `score`, `hits[].rule` and `coverage.uninspectable[].reason`),
    /// keeping the report itself whole. Absent fields stay empty: a report is never refused
    /// here, since refusing would lose the message.
    pub fn from_report(report: Value, received: SystemTime) -> NewEntry {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let distinct = |items: &Value, key: &str| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for item in items.as_array().into_iter().flatten() {
                if let Some(s) = item[key].as_str()
                    && !out.iter().any(|o| o == s)
                {
                    out.push(s.to_string());
                }
            }
            out
        };
        let env = &report["envelope"];
        NewEntry {
            received,
            location: Location::Store,
            envelope: EntryEnvelope {
                sender: text(&env["sender"]).unwrap_or_default(),
                recipients: env["recipients"].as_array().into_iter().flatten().filter_map(text).collect(),
                client_addr: text(&env["client"]["addr"]),
                client_name: text(&env["client"]["name"]),
                helo: text(&env["helo"]),
            },
            queue_id: text(&env["queue_id"]),
            message_id: text(&report["message"]["message_id"]),
            subject: text(&report["message"]["subject"]),
            decision: text(&report["decision"]).unwrap_or_default(),
            score: report["score"].as_i64().unwrap_or(0),
            rules: distinct(&report["hits"], "rule"),
            uninspected: distinct(&report["coverage"]["uninspectable"], "reason"),
            report,
        }
    }
}

/// Where a held message's bytes are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// Our copy only; the MTA discarded it.
    #[default]
    Store,
    /// The MTA's hold queue only (find it by queue id); our entry records the metadata.
    Mta,
    /// Both our copy and the MTA's hold queue (also every message truncated at the size cap:
    /// our copy is incomplete, so the MTA keeps the whole one).
    Both,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Store => "store",
            Location::Mta => "mta",
            Location::Both => "both",
        }
    }
}

/// One quarantined message's metadata, as stored in `<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u32,
    pub id: Id,
    pub received: Timestamp,
    #[serde(default)]
    pub queue_id: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub envelope: EntryEnvelope,
    /// Where the message itself is kept.
    #[serde(default)]
    pub location: Location,
    /// Bytes of the message file.
    pub size: u64,
    /// Lower-case hex SHA-256 of the message file, checked on every read.
    pub sha256: String,
    pub decision: String,
    pub score: i64,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub uninspected: Vec<String>,
    pub state: State,
    /// Every state change, oldest first; the first is the quarantine itself.
    pub history: Vec<HistoryEvent>,
    /// The full inspection report, as the daemon produced it.
    #[serde(default)]
    pub report: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_transitions_are_legal() {
        use State::*;
        let legal = [(Held, Held), (Held, Released), (Held, Deleted), (Released, Deleted)];
        for from in State::ALL {
            for to in State::ALL {
                assert_eq!(from.can_become(to), legal.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn states_read_and_write_their_names() {
        for s in State::ALL {
            assert_eq!(s.as_str().parse::<State>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), Value::String(s.as_str().into()));
        }
        assert!("Held".parse::<State>().is_err());
    }

    #[test]
    fn from_report_takes_the_summary_and_keeps_the_report() {
        let report = serde_json::json!({
            "message": {"message_id": "<a@b>", "subject": "Invoice"},
            "envelope": {
                "client": {"name": "mx.example", "addr": "192.0.2.7", "port": 25},
                "helo": "mx.example", "sender": "eve@example.net",
                "recipients": ["a@example.org", "b@example.org"], "queue_id": "4F2A1"
            },
            "decision": "quarantine", "score": 70,
            "hits": [{"rule": "r1"}, {"rule": "r2"}, {"rule": "r1"}],
            "coverage": {"complete": false, "uninspectable": [
                {"reason": "encrypted-archive", "part_path": "2"},
                {"reason": "encrypted-archive", "part_path": "3"}]}
        });
        let e = NewEntry::from_report(report.clone(), SystemTime::UNIX_EPOCH);
        assert_eq!(e.envelope.sender, "eve@example.net");
        assert_eq!(e.envelope.recipients, ["a@example.org", "b@example.org"]);
        assert_eq!(e.envelope.client_addr.as_deref(), Some("192.0.2.7"));
        assert_eq!(e.envelope.client_name.as_deref(), Some("mx.example"));
        assert_eq!(e.envelope.helo.as_deref(), Some("mx.example"));
        assert_eq!(e.queue_id.as_deref(), Some("4F2A1"));
        assert_eq!(e.message_id.as_deref(), Some("<a@b>"));
        assert_eq!(e.subject.as_deref(), Some("Invoice"));
        assert_eq!((e.decision.as_str(), e.score), ("quarantine", 70));
        assert_eq!(e.rules, ["r1", "r2"]);
        assert_eq!(e.uninspected, ["encrypted-archive"]);
        assert_eq!(e.report, report);
    }

    #[test]
    fn from_report_accepts_an_empty_report() {
        let e = NewEntry::from_report(Value::Null, SystemTime::UNIX_EPOCH);
        assert_eq!(e.envelope, EntryEnvelope::default());
        assert!(e.rules.is_empty() && e.decision.is_empty());
    }
}
