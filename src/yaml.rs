//! The one place that parses YAML (configuration, regex rule files, test expectations).
//!
//! Every error names the file and the line:column it points at, because "invalid type" without
//! a place is useless in a 200-line config. Values that can be wrong on their own (an address,
//! a duration) are checked while deserializing, so their errors carry the position too.
//!
//! Two readers sit behind this module: [`from_str`] deserializes a whole document (serde, first
//! error), and [`tree`] keeps every node's position so a checker can walk a document and report
//! *all* its problems (rule files, `check` on a config).

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

pub use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
pub use marked_yaml::{Node, Span};

/// 1-based line and column of a node's start.
pub fn position(span: &Span) -> Option<(usize, usize)> {
    span.start().map(|m| (m.line(), m.column()))
}

/// Parses a document into a tree of nodes that know their positions.
pub fn tree(text: &str) -> Result<Node, (Option<(usize, usize)>, String)> {
    use marked_yaml::LoadError::*;
    marked_yaml::parse_yaml(0, text).map_err(|e| {
        let (marker, msg) = match &e {
            TopLevelMustBeMapping(m) => (Some(*m), "the top level must be a mapping".to_string()),
            TopLevelMustBeSequence(m) => (Some(*m), "the top level must be a list".to_string()),
            UnexpectedAnchor(m) => (Some(*m), "anchors are not supported".to_string()),
            MappingKeyMustBeScalar(m) => (Some(*m), "mapping keys must be plain values".to_string()),
            UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".to_string()),
            ScanError(m, se) => (Some(*m), se.info().to_string()),
            DuplicateKey(inner) => {
                (inner.key.span().start().copied(), format!("duplicate key `{}`", inner.key.as_str()))
            }
            #[allow(unreachable_patterns)]
            other => (None, other.to_string()),
        };
        (marker.map(|m| (m.line(), m.column())), msg)
    })
}

/// Deserializes one node of a [`tree`] (serde), with the position of the first problem.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, (Option<(usize, usize)>, String)> {
    marked_yaml::from_node::<T>(node).map_err(|e| {
        let at = e.start_mark().map(|m| (m.line(), m.column()));
        (at, e.to_string())
    })
}

/// The entry `key` of a mapping node.
fn entry<'n>(node: &'n Node, key: &str) -> Option<(&'n MarkedScalarNode, &'n Node)> {
    node.as_mapping()?.iter().find(|(k, _)| k.as_str() == key)
}

/// Line and column of a dotted key (`policy.thresholds.tag`): of the deepest part of it the
/// document has (a default that is not written points at its section).
pub fn key_position(root: &Node, key: &str) -> Option<(usize, usize)> {
    let (mut node, mut at) = (root, None);
    for part in key.split('.') {
        let Some((k, v)) = entry(node, part) else { break };
        at = position(k.span()).or(at);
        node = v;
    }
    at
}

/// The dotted key whose key or value starts at `at`, for naming a problem found by position
/// only.
pub fn key_at(root: &Node, at: (usize, usize)) -> Option<String> {
    fn walk(node: &Node, at: (usize, usize), path: &mut Vec<String>) -> bool {
        let Some(map) = node.as_mapping() else { return false };
        for (k, v) in map.iter() {
            path.push(k.as_str().to_string());
            if position(k.span()) == Some(at) || position(v.span()) == Some(at) || walk(v, at, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    walk(root, at, &mut path).then(|| path.join("."))
}

/// The first key named `name` below the dotted key `within`, with its dotted path and
/// position.
pub fn find_key(root: &Node, within: &str, name: &str) -> Option<(String, (usize, usize))> {
    fn walk(node: &Node, name: &str, path: &mut Vec<String>) -> Option<(usize, usize)> {
        for (k, v) in node.as_mapping()?.iter() {
            path.push(k.as_str().to_string());
            if k.as_str() == name {
                return position(k.span());
            }
            if let Some(at) = walk(v, name, path) {
                return Some(at);
            }
            path.pop();
        }
        None
    }
    let node = within.split('.').try_fold(root, |node, part| entry(node, part).map(|(_, v)| v))?;
    let mut path: Vec<String> = within.split('.').map(str::to_string).collect();
    let at = walk(node, name, &mut path)?;
    Some((path.join("."), at))
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
