//! Diagnostics for rule files: every problem, each with a stable code, a place and a message,
//! renderable as text (for people) or JSON (for CI annotations).
//!
//! Codes of our own start with `R` (regex rule files) or `L` (loading); yara-x's own codes
//! (`E014` for errors, names such as `slow_pattern` for warnings) are passed through unchanged.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, e.g. `R004` or yara-x's `E009`.
    pub code: String,
    /// The file (as given, or `rules/x.yar` for the shipped pack).
    pub origin: String,
    /// 1-based; `None` when the problem concerns the whole file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// A longer rendering (yara-x's annotated source snippet), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &str,
        origin: &str,
        at: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code: code.to_string(),
            origin: origin.to_string(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            message: message.into(),
            detail: None,
        }
    }

    pub fn warning(
        code: &str,
        origin: &str,
        at: Option<(usize, usize)>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, origin, at, message) }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `origin:line:column: error[R004]: message`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {sev}[{}]: {}", self.code, self.message)
    }
}

/// The codes of our own diagnostics, in one place so they stay stable.
pub mod code {
    /// A rules directory or file cannot be read.
    pub const READ: &str = "L001";
    /// A file in the rules directory has an extension we do not load.
    pub const IGNORED_FILE: &str = "L002";
    /// The YAML does not parse.
    pub const YAML_SYNTAX: &str = "R001";
    /// A key we do not know.
    pub const UNKNOWN_KEY: &str = "R002";
    /// A value of the wrong type or out of range.
    pub const BAD_VALUE: &str = "R003";
    /// A target name that does not exist.
    pub const BAD_TARGET: &str = "R004";
    /// A pattern that is not a valid regular expression.
    pub const BAD_REGEX: &str = "R005";
    /// A rule id used twice (regex or YARA).
    pub const DUPLICATE_ID: &str = "R006";
    /// A required key is missing.
    pub const MISSING_KEY: &str = "R007";
    /// `requires` names a rule that does not exist.
    pub const UNKNOWN_RULE: &str = "R008";
    /// A YARA rule's `meta:` has a bad `score` or `action`.
    pub const BAD_META: &str = "R009";
    /// A rule can never match or never count (no score, no action, not required by any rule).
    pub const INERT_RULE: &str = "R010";
    /// Rules made only of requirements that require each other: none of them can ever hit.
    pub const REQUIRES_CYCLE: &str = "R011";
    /// A rule that scores end-to-end encryption (S/MIME, PGP), which is policy's to decide.
    pub const SCORES_E2E: &str = "R012";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_place_severity_and_code() {
        let d = Diagnostic::error(code::BAD_TARGET, "rules/x.yaml", Some((3, 7)), "unknown target `bodyy`");
        assert_eq!(d.to_string(), "rules/x.yaml:3:7: error[R004]: unknown target `bodyy`");
        let w = Diagnostic::warning("W001", "a.yar", None, "slow");
        assert_eq!(w.to_string(), "a.yar: warning[W001]: slow");
        assert!(d.is_error() && !w.is_error());
    }

    #[test]
    fn json_has_every_field() {
        let d = Diagnostic::error(code::BAD_REGEX, "r.yaml", Some((1, 2)), "bad");
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["severity"], "error");
        assert_eq!(v["code"], "R005");
        assert_eq!(v["line"], 1);
        assert_eq!(v["column"], 2);
    }
}
