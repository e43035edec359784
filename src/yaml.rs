//! The one place that parses YAML (configuration and regex rule files).
//!
//! Every error names the file and the line:column it points at, because "invalid type" without
//! a place is useless in a 200-line config. Values that can be wrong on their own (an address,
//! a duration) are checked while deserializing, so their errors carry the position too.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub origin: PathBuf,
    /// 1-based; `None` when the parser could not tell.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for YamlError {}

/// Parses `text` (read from `origin`) into `T`. An empty document (or one holding only
/// comments) is read as an empty mapping, so an empty config file means "all defaults".
pub fn from_str<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T, YamlError> {
    let blank = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    });
    let text = if blank { "{}" } else { text };
    serde_yaml_ng::from_str(text).map_err(|e| {
        let full = e.to_string();
        let message = match full.rsplit_once(" at line ") {
            Some((msg, _)) if e.location().is_some() => msg.to_string(),
            _ => full,
        };
        let loc = e.location();
        YamlError {
            origin: origin.to_path_buf(),
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct T {
        a: u32,
        b: Vec<String>,
    }

    #[test]
    fn empty_or_comment_only_means_defaults() {
        assert_eq!(from_str::<T>("", Path::new("x.yaml")).unwrap(), T::default());
        assert_eq!(from_str::<T>("# only\n---\n", Path::new("x.yaml")).unwrap(), T::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let e = from_str::<T>("a: 1\nzz: 2\n", Path::new("conf.yaml")).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(1)));
        assert!(e.message.contains("unknown field `zz`"), "{e}");
        assert!(e.to_string().starts_with("conf.yaml:2:1: "), "{e}");
    }

    #[test]
    fn bad_value_points_at_the_value() {
        let e = from_str::<T>("b: []\na: lots\n", Path::new("c.yaml")).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(4)), "{e}");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = from_str::<T>("a: [1,\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.line.is_some(), "{e}");
    }
}
