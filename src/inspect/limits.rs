//! The bounds every walk stays inside. Hostile mail is built to make a scanner
//! spend unbounded time or memory (deep nesting, thousands of parts, zip bombs);
//! these limits turn each of those into a recorded `Uninspectable` entry instead
//! of a hang or an out-of-memory kill. Each default says why it is what it is.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// Limits of one walk. Deserialized from the `inspect.limits` section of the
/// configuration; unknown keys are rejected so a typo does not silently fall
/// back to a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Deepest nesting of MIME multiparts, embedded messages and archives
    /// together. Default 20: real mail rarely nests beyond 6 (a forwarded
    /// forward inside an alternative inside a mixed); anything deeper is built
    /// to exhaust a parser.
    pub max_depth: u32,
    /// Most MIME parts (plus embedded message bodies) looked at in one
    /// message. Default 1000: newsletters with many inline images stay far
    /// below; ten thousand empty parts cost a scanner per-part setup time.
    pub max_parts: u32,
    /// Most decoded bytes taken from one part or archive member; the first
    /// `max_part_bytes` are scanned, the rest is recorded as `over-size`.
    /// Default 25 MiB: above the usual MTA message size limits, so only
    /// decompressed or decoded growth reaches it.
    pub max_part_bytes: u64,
    /// Most decoded bytes handed to the scanners across all targets of one
    /// message, archive members included. Default 100 MiB: four full-size
    /// parts; bounds memory per message whatever the structure.
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio accepted for an archive member
    /// and for a whole archive before it is treated as a decompression bomb
    /// (`expansion-ratio`). Default 100: text and office XML compress 5–30×;
    /// bombs reach 1000× and more.
    pub max_expansion_ratio: u32,
    /// Most members read from one archive. Default 1000: far above real
    /// attachments; the overlapping-entry bomb relies on tens of thousands.
    pub max_archive_members: u32,
    /// Deepest archive-in-archive nesting opened. Default 3: a zip inside a
    /// zip inside a zip is already unusual; 42.zip-style bombs go deeper.
    pub max_archive_depth: u32,
    /// Most URL targets taken from one message. Default 1000: newsletters
    /// carry a few hundred links; beyond that they only cost scan time (the
    /// text is still scanned as `body`).
    pub max_urls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 20,
            max_parts: 1000,
            max_part_bytes: 25 * MIB,
            max_total_bytes: 100 * MIB,
            max_expansion_ratio: 100,
            max_archive_members: 1000,
            max_archive_depth: 3,
            max_urls: 1000,
        }
    }
}

/// Hard ceiling on `max_depth` whatever the configuration says: the walk
/// recurses once per embedded message or archive level, so this bounds the
/// stack it can use.
pub(super) const HARD_MAX_DEPTH: u32 = 64;

impl Limits {
    /// The depth limit actually applied (configuration clamped to
    /// [`HARD_MAX_DEPTH`]).
    pub(super) fn depth(&self) -> u32 {
        self.max_depth.min(HARD_MAX_DEPTH)
    }

    /// Per-part byte cap as `usize`, saturating on 32-bit targets.
    pub(super) fn part_bytes(&self) -> usize {
        usize::try_from(self.max_part_bytes).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_section_gives_documented_defaults() {
        let limits: Limits = serde_json::from_str("{}").unwrap();
        assert_eq!(limits, Limits::default());
        assert_eq!(limits.max_depth, 20);
        assert_eq!(limits.max_part_bytes, 25 * MIB);
    }

    #[test]
    fn unknown_limit_key_is_rejected() {
        let err = serde_json::from_str::<Limits>(r#"{"max_dept": 3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn partial_section_keeps_other_defaults() {
        let limits: Limits = serde_json::from_str(r#"{"max_urls": 5}"#).unwrap();
        assert_eq!(limits.max_urls, 5);
        assert_eq!(limits.max_parts, 1000);
    }

    #[test]
    fn configured_depth_is_clamped_to_hard_ceiling() {
        let limits = Limits { max_depth: 100_000, ..Limits::default() };
        assert_eq!(limits.depth(), HARD_MAX_DEPTH);
    }
}
