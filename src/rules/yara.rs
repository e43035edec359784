//! YARA rule files (`*.yar`): compiled once with yara-x into one shared, immutable rule set.
//!
//! yara-x keeps compiling past an error and silently leaves the failing rule out of the set;
//! a rule set that quietly lost a rule is a detection gap nobody sees. So any error refuses the
//! whole set (a reload keeps the previous one), and every error and warning is reported with
//! its file:line. The external variables of the design are defined before any source is added,
//! so rules (ours and public packs) can use them.

use std::collections::HashMap;
use std::sync::Arc;

use super::RuleAction;
use super::diag::{Diagnostic, Severity, code};

/// Every external variable a rule may use, with the value it has until a scan sets it.
/// `filepath`, `filetype` and `owner` exist for public packs written for file scanners.
pub const GLOBALS: &[(&str, GlobalDefault)] = &[
    ("part_kind", GlobalDefault::Str),
    ("part_path", GlobalDefault::Str),
    ("filename", GlobalDefault::Str),
    ("extension", GlobalDefault::Str),
    ("content_type", GlobalDefault::Str),
    ("depth", GlobalDefault::Int),
    ("in_archive", GlobalDefault::Bool),
    ("tls_version", GlobalDefault::Str),
    ("tls_cipher", GlobalDefault::Str),
    ("client_addr", GlobalDefault::Str),
    ("authenticated", GlobalDefault::Bool),
    ("filepath", GlobalDefault::Str),
    ("filetype", GlobalDefault::Str),
    ("owner", GlobalDefault::Str),
];

#[derive(Debug, Clone, Copy)]
pub enum GlobalDefault {
    Str,
    Int,
    Bool,
}

/// What a rule's `meta:` says about scoring.
#[derive(Debug, Clone, Default)]
pub struct RuleMeta {
    pub score: i64,
    pub action: Option<RuleAction>,
    pub description: String,
    pub origin: String,
}

pub struct YaraRules {
    pub rules: Arc<yara_x::Rules>,
    /// By rule identifier.
    pub meta: HashMap<String, RuleMeta>,
}

impl std::fmt::Debug for YaraRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraRules").field("rules", &self.meta.len()).finish()
    }
}

pub struct YaraOptions {
    /// Accept YARA 4 regex syntax that yara-x rejects (unescaped `{`, unknown escapes), as
    /// public packs often need.
    pub relaxed_syntax: bool,
}

/// Compiles `(origin, text)` sources. `None` when any error was reported.
pub fn compile(
    sources: &[(&str, &str)],
    options: &YaraOptions,
    diags: &mut Vec<Diagnostic>,
) -> Option<YaraRules> {
    let mut compiler = yara_x::Compiler::new();
    compiler.relaxed_re_syntax(options.relaxed_syntax);
    // Rule files are the only code-like input; they may not pull in other files.
    compiler.enable_includes(false);
    for (name, default) in GLOBALS {
        let defined = match default {
            GlobalDefault::Str => compiler.define_global(name, "").map(|_| ()),
            GlobalDefault::Int => compiler.define_global(name, 0i64).map(|_| ()),
            GlobalDefault::Bool => compiler.define_global(name, false).map(|_| ()),
        };
        if let Err(e) = defined {
            diags.push(Diagnostic::error("L003", "(built-in)", None, format!("defining `{name}`: {e}")));
            return None;
        }
    }
    let mut origin_of_rule: HashMap<String, (String, usize)> = HashMap::new();
    for (origin, text) in sources {
        let before = compiler.errors().len();
        let _ = compiler.add_source(yara_x::SourceCode::from(*text).with_origin(*origin));
        let _ = before;
        // Rules defined by this source, to find their file again for meta diagnostics.
        for (ident, line) in rule_identifiers(text) {
            origin_of_rule.entry(ident).or_insert_with(|| (origin.to_string(), line));
        }
    }
    let mut failed = false;
    for e in compiler.errors() {
        failed = true;
        diags.push(yara_diagnostic(Severity::Error, serde_json::to_value(e).ok(), e.to_string()));
    }
    for w in compiler.warnings() {
        diags.push(yara_diagnostic(Severity::Warning, serde_json::to_value(w).ok(), w.to_string()));
    }
    if failed {
        return None;
    }
    let rules = compiler.build();
    let mut meta = HashMap::new();
    for rule in rules.iter() {
        let id = rule.identifier().to_string();
        let (origin, line) = origin_of_rule.get(&id).cloned().unwrap_or_default();
        let at = (line > 0).then_some((line, 1));
        let mut m = RuleMeta { origin: origin.clone(), ..RuleMeta::default() };
        for (key, value) in rule.metadata() {
            match (key, value) {
                ("score", yara_x::MetaValue::Integer(n)) => m.score = n,
                ("score", other) => {
                    failed = true;
                    diags.push(Diagnostic::error(
                        code::BAD_META,
                        &origin,
                        at,
                        format!("rule `{id}`: meta `score` must be an integer, not {}", meta_text(&other)),
                    ));
                }
                ("action", yara_x::MetaValue::String(s)) => match s.parse() {
                    Ok(a) => m.action = Some(a),
                    Err(e) => {
                        failed = true;
                        diags.push(Diagnostic::error(
                            code::BAD_META,
                            &origin,
                            at,
                            format!("rule `{id}`: {e}"),
                        ));
                    }
                },
                ("action", other) => {
                    failed = true;
                    diags.push(Diagnostic::error(
                        code::BAD_META,
                        &origin,
                        at,
                        format!("rule `{id}`: meta `action` must be a string, not {}", meta_text(&other)),
                    ));
                }
                ("description", yara_x::MetaValue::String(s)) => m.description = s.to_string(),
                _ => {}
            }
        }
        meta.insert(id, m);
    }
    if failed {
        return None;
    }
    Some(YaraRules { rules: Arc::new(rules), meta })
}

/// A meta value as it is written in the rule (`"high"`, `3.5`, `true`).
fn meta_text(v: &yara_x::MetaValue) -> String {
    match v {
        yara_x::MetaValue::Integer(n) => n.to_string(),
        yara_x::MetaValue::Float(f) => f.to_string(),
        yara_x::MetaValue::Bool(b) => b.to_string(),
        yara_x::MetaValue::String(s) => format!("{s:?}"),
        yara_x::MetaValue::Bytes(b) => format!("\"{}\"", b.escape_ascii()),
    }
}

/// Rule names declared in a source, found textually (`rule NAME`, with modifiers), only to map
/// a compiled rule back to its file.
/// The rules a source declares (`rule NAME`, `private rule NAME`, `global rule NAME`), each
/// with its 1-based line, read without compiling the source.
pub(super) fn rule_identifiers(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            match w {
                "private" | "global" => continue,
                "rule" => {
                    if let Some(name) = words.next() {
                        let name: String =
                            name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                        if !name.is_empty() {
                            out.push((name, n + 1));
                        }
                    }
                    break;
                }
                _ => break,
            }
        }
    }
    out
}

/// Builds our diagnostic from yara-x's serialized report: code, title, and the place of its
/// first label.
fn yara_diagnostic(severity: Severity, json: Option<serde_json::Value>, rendered: String) -> Diagnostic {
    let json = json.unwrap_or_default();
    let label = json.get("labels").and_then(|l| l.get(0));
    let origin =
        label.and_then(|l| l.get("code_origin")).and_then(|o| o.as_str()).unwrap_or("(unknown)").to_string();
    let num = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_u64()).map(|n| n as usize);
    let line = num(label.and_then(|l| l.get("line"))).or(num(json.get("line")));
    let column = num(label.and_then(|l| l.get("column"))).or(num(json.get("column")));
    let code = json.get("code").and_then(|c| c.as_str()).unwrap_or("E000").to_string();
    let title = json.get("title").and_then(|t| t.as_str()).unwrap_or("").to_string();
    let label_text = label.and_then(|l| l.get("text")).and_then(|t| t.as_str()).unwrap_or("");
    let message = if label_text.is_empty() || title.contains(label_text) {
        title
    } else {
        format!("{title}: {label_text}")
    };
    Diagnostic { severity, code, origin, line, column, message, detail: Some(rendered) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> YaraOptions {
        YaraOptions { relaxed_syntax: false }
    }

    #[test]
    fn compiles_with_meta_and_globals() {
        let src = r#"
rule exe_attachment {
  meta:
    score = 5
    action = "quarantine"
    description = "An executable attachment"
  strings:
    $mz = "MZ"
  condition:
    $mz at 0 and part_kind == "attachment" and extension == "exe"
}
"#;
        let mut diags = Vec::new();
        let y = compile(&[("rules/exe.yar", src)], &opts(), &mut diags).expect("compiles");
        assert!(diags.is_empty(), "{diags:?}");
        let m = &y.meta["exe_attachment"];
        assert_eq!(m.score, 5);
        assert_eq!(m.action, Some(RuleAction::Quarantine));
        assert_eq!(m.origin, "rules/exe.yar");
    }

    #[test]
    fn every_error_is_reported_with_file_and_line_and_the_set_refused() {
        let a = "rule ok { condition: true }\nrule broken { condition: nosuchvar }\n";
        let b = "\n\nrule also_broken { strings: $a = /abc{/ condition: $a }\n";
        let mut diags = Vec::new();
        assert!(compile(&[("a.yar", a), ("b.yar", b)], &opts(), &mut diags).is_none());
        let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 2, "{diags:#?}");
        assert_eq!((errors[0].origin.as_str(), errors[0].line), ("a.yar", Some(2)));
        assert_eq!((errors[1].origin.as_str(), errors[1].line), ("b.yar", Some(3)));
        assert!(errors.iter().all(|e| e.code.starts_with('E')), "{errors:?}");
    }

    #[test]
    fn relaxed_syntax_accepts_yara4_regexes() {
        let b = "rule r { strings: $a = /abc{/ condition: $a }\n";
        let mut diags = Vec::new();
        assert!(
            compile(&[("b.yar", b)], &YaraOptions { relaxed_syntax: true }, &mut diags).is_some(),
            "{diags:?}"
        );
    }

    #[test]
    fn bad_meta_action_refuses_the_set() {
        let src = "rule r { meta: action = \"explode\" condition: true }\n";
        let mut diags = Vec::new();
        assert!(compile(&[("r.yar", src)], &opts(), &mut diags).is_none());
        let bad = diags.iter().find(|d| d.code == code::BAD_META).expect("a meta diagnostic");
        assert!(bad.message.contains("explode") && bad.origin == "r.yar");
        assert_eq!(bad.line, Some(1), "at the rule's line");
        // Values are shown as they are written in the rule.
        let src = "rule r { meta: score = \"high\" action = 3 condition: true }\n";
        let mut diags = Vec::new();
        assert!(compile(&[("r.yar", src)], &opts(), &mut diags).is_none());
        let said: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(said.contains(&"rule `r`: meta `score` must be an integer, not \"high\""), "{said:?}");
        assert!(said.contains(&"rule `r`: meta `action` must be a string, not 3"), "{said:?}");
    }

    #[test]
    fn includes_are_refused() {
        let src = "include \"/etc/passwd\"\nrule r { condition: true }\n";
        let mut diags = Vec::new();
        assert!(compile(&[("r.yar", src)], &opts(), &mut diags).is_none());
    }

    #[test]
    fn public_pack_variables_exist() {
        let src = "rule r { condition: filename matches /\\.exe$/ and filepath != \"\" and filetype == \"\" and owner == \"\" }\n";
        let mut diags = Vec::new();
        assert!(compile(&[("r.yar", src)], &opts(), &mut diags).is_some(), "{diags:?}");
    }
}
