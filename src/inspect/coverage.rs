//! What the walk could not look at, and what looked odd. Coverage is explicit:
//! every part is either turned into targets or listed here with a reason, so a
//! policy can act on "we could not look" instead of silently passing it.
//! Anomalies are the structural oddities rules may score (hostile mail is
//! often malformed on purpose to split scanners from mail clients).

use serde::{Deserialize, Serialize};

/// Why (part of) a message could not be inspected. The kebab-case names are
/// the configuration keys of the per-reason policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// S/MIME enveloped (encrypted) data.
    SmimeEncrypted,
    /// PGP/MIME or inline PGP encrypted data.
    PgpEncrypted,
    /// An archive member protected by a password.
    EncryptedArchive,
    /// A PDF that needs a user password to open.
    EncryptedPdf,
    /// An Office document that needs a password (other than the well-known
    /// default one) to open.
    EncryptedOffice,
    /// A part larger than `max_part_bytes`, or past `max_total_bytes`; the
    /// first bytes were scanned.
    OverSize,
    /// Nesting deeper than `max_depth` or `max_archive_depth`.
    OverDepth,
    /// More parts than `max_parts`, or archive members than
    /// `max_archive_members`.
    OverParts,
    /// A decompression bomb: uncompressed/compressed beyond
    /// `max_expansion_ratio`, or archive entries sharing data.
    ExpansionRatio,
    /// An archive format that is recognised but not opened (RAR, 7z, ...).
    UnsupportedArchive,
    /// Content that could not be decoded or parsed; its raw bytes were
    /// scanned instead.
    ParseError,
    /// The scanner ran out of time (filled in by the scanner, not the walk).
    ScanTimeout,
}

impl Reason {
    /// Every reason, in the order of the table in the README.
    pub const ALL: [Reason; 12] = [
        Reason::SmimeEncrypted,
        Reason::PgpEncrypted,
        Reason::EncryptedArchive,
        Reason::EncryptedPdf,
        Reason::EncryptedOffice,
        Reason::OverSize,
        Reason::OverDepth,
        Reason::OverParts,
        Reason::ExpansionRatio,
        Reason::UnsupportedArchive,
        Reason::ParseError,
        Reason::ScanTimeout,
    ];

    /// The kebab-case name used in headers, logs and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SmimeEncrypted => "smime-encrypted",
            Reason::PgpEncrypted => "pgp-encrypted",
            Reason::EncryptedArchive => "encrypted-archive",
            Reason::EncryptedPdf => "encrypted-pdf",
            Reason::EncryptedOffice => "encrypted-office",
            Reason::OverSize => "over-size",
            Reason::OverDepth => "over-depth",
            Reason::OverParts => "over-parts",
            Reason::ExpansionRatio => "expansion-ratio",
            Reason::UnsupportedArchive => "unsupported-archive",
            Reason::ParseError => "parse-error",
            Reason::ScanTimeout => "scan-timeout",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A part (or a whole message) that was not, or not completely, inspected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uninspectable {
    pub reason: Reason,
    pub part_path: String,
    /// Human-readable explanation for logs and the quarantine report.
    pub detail: String,
}

/// Something structurally odd about the message. `code` is stable and
/// kebab-case so rules and policy can refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub code: String,
    pub part_path: String,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_serialize_as_their_config_names() {
        for reason in Reason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }
}
