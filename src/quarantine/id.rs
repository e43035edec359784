//! Quarantine ids: `20261128T201502Z-3f9a1c2b4d5e`, the UTC second the message was received
//! and 48 random bits.
//!
//! Ids become file names, and they arrive from people (`quarantine show ID`) and, later, from
//! release links, so [`Id::parse`] accepts exactly that shape and nothing else: no `/`, no
//! `..`, no upper case, no other length, no impossible date. An [`Id`] can only be made by
//! parsing or generating, so every path built from one is inside the store. The time prefix
//! sorts ids chronologically as plain strings and names the date directory; the random part
//! (from the kernel's generator) keeps ids unguessable and unique within a second.

use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::StoreError;
use super::time::{Civil, Timestamp};

/// `YYYYMMDDTHHMMSSZ-` and 12 lower-case hex digits.
pub const ID_LEN: usize = 29;
const RANDOM_BYTES: usize = 6;

/// A validated quarantine id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

impl Id {
    /// Accepts exactly `YYYYMMDDTHHMMSSZ-xxxxxxxxxxxx` with a real date and time between 1970
    /// and 9999 and lower-case hex; anything else is [`StoreError::BadId`].
    pub fn parse(s: &str) -> Result<Id, StoreError> {
        if shape_ok(s) { Ok(Id(s.to_string())) } else { Err(StoreError::BadId(shown(s))) }
    }

    /// A new id for a message received at `at`.
    pub(super) fn generate(at: Timestamp) -> io::Result<Id> {
        let mut random = [0u8; RANDOM_BYTES];
        crate::random::fill(&mut random)?;
        let mut s = at.compact();
        s.push('-');
        s.push_str(&crate::hex::encode(&random));
        debug_assert!(shape_ok(&s), "{s}");
        Ok(Id(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The second the message was received.
    pub fn time(&self) -> Timestamp {
        parse_time(&self.0).expect("a valid id has a valid time")
    }

    /// The date directory (`20261128`).
    pub(super) fn day(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Id {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Id, StoreError> {
        Id::parse(s)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = String::deserialize(d)?;
        Id::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn shape_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == ID_LEN
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[17..].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && parse_time(s).is_some()
}

fn parse_time(s: &str) -> Option<Timestamp> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    Timestamp::from_civil(Civil {
        year: i64::from(n(0..4)?),
        month: n(4..6)?,
        day: n(6..8)?,
        hour: n(9..11)?,
        minute: n(11..13)?,
        second: n(13..15)?,
        millis: 0,
    })
}

/// What an error message shows of a rejected id: at most 64 characters of it, since it came
/// from outside and may be anything.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_the_documented_shape() {
        let id = Id::parse("20261128T201502Z-3f9a1c2b4d5e").unwrap();
        assert_eq!(id.as_str(), "20261128T201502Z-3f9a1c2b4d5e");
        assert_eq!(id.day(), "20261128");
        assert_eq!(id.time(), Timestamp::parse_rfc3339("2026-11-28T20:15:02Z").unwrap());
    }

    #[test]
    fn parse_rejects_paths_and_every_other_shape() {
        for s in [
            "",
            "../x",
            "a/b",
            "..",
            "/etc/passwd",
            "20261128T201502Z-3f9a1c2b4d5e/../../x",
            "20261128T201502Z-3f9a1c2b4d5",
            "20261128T201502Z-3f9a1c2b4d5e0",
            "20261128T201502Z-3f9a1c2b4d5e\n",
            " 20261128T201502Z-3f9a1c2b4d5e",
            "20261128T201502Z-3F9A1C2B4D5E",
            "20261128T201502Z-3f9a1c2b4d5g",
            "20261128t201502z-3f9a1c2b4d5e",
            "20261128T201502Z_3f9a1c2b4d5e",
            "20261128T201502Z-3f9a1c2b/d5e",
            "20261128T201502Z-3f9a1c2b.d5e",
            "20261328T201502Z-3f9a1c2b4d5e",
            "20260230T201502Z-3f9a1c2b4d5e",
            "20261128T241502Z-3f9a1c2b4d5e",
            "19691231T235959Z-3f9a1c2b4d5e",
            "2026112８T201502Z-3f9a1c2b4d5e",
            &"2".repeat(4096),
        ] {
            match Id::parse(s) {
                Err(StoreError::BadId(shown)) => assert!(shown.chars().count() <= 65),
                other => panic!("{s:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn generated_ids_parse_and_carry_the_second_received() {
        let at = Timestamp::parse_rfc3339("2026-11-28T20:15:02.999Z").unwrap();
        let a = Id::generate(at).unwrap();
        let b = Id::generate(at).unwrap();
        assert_ne!(a, b, "48 random bits repeated");
        assert_eq!(Id::parse(a.as_str()).unwrap(), a);
        assert!(a.as_str().starts_with("20261128T201502Z-"));
        assert_eq!(a.time(), Timestamp::parse_rfc3339("2026-11-28T20:15:02Z").unwrap());
    }

    #[test]
    fn ids_sort_by_time_received() {
        let early = Id::generate(Timestamp::parse_rfc3339("2026-11-28T09:00:00Z").unwrap()).unwrap();
        let late = Id::generate(Timestamp::parse_rfc3339("2026-11-28T10:00:00Z").unwrap()).unwrap();
        let next_year = Id::generate(Timestamp::parse_rfc3339("2027-01-01T00:00:00Z").unwrap()).unwrap();
        assert!(early < late && late < next_year);
    }

    #[test]
    fn serde_refuses_a_bad_id() {
        assert!(serde_json::from_str::<Id>("\"../../etc/passwd\"").is_err());
        let id: Id = serde_json::from_str("\"20261128T201502Z-3f9a1c2b4d5e\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"20261128T201502Z-3f9a1c2b4d5e\"");
    }
}
