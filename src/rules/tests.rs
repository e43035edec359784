use super::regex::{MatchMode, RegexTarget};
use super::*;

fn src(origin: &str, text: &str) -> Source {
    Source { origin: origin.to_string(), text: text.to_string() }
}

fn compile_one(text: &str) -> (Option<RuleSet>, Vec<Diagnostic>) {
    compile(&[src("r.yaml", text)], CompileOptions::default())
}

#[test]
fn a_valid_rule_file_compiles_into_sets_per_target() {
    let (set, diags) = compile_one(
        r#"
rules:
  - id: urgent
    description: Urgency words
    targets: [subject, body]
    patterns: ["\\burgent\\b", "act now"]
    score: 2
    tags: [phishing]
  - id: bad_reply_to
    targets: header:Reply-To
    pattern: "@evil\\.example$"
    match: all
    case_sensitive: true
    action: quarantine
"#,
    );
    assert!(diags.is_empty(), "{diags:#?}");
    let set = set.unwrap();
    assert_eq!(set.regex_count(), 2);
    let r = &set.regex.rules[1];
    assert_eq!(r.targets, vec![RegexTarget::Header("reply-to".into())]);
    assert_eq!(r.mode, MatchMode::All);
    assert_eq!(r.action, Some(RuleAction::Quarantine));
    assert_eq!(set.regex.sets[&RegexTarget::Subject].entries, vec![(0, 0), (0, 1)]);
    assert_eq!(set.regex.sets[&RegexTarget::Body].len(), 2);
    assert!(set.regex.sets[&RegexTarget::Subject].is_match(b"URGENT: pay"), "case-insensitive by default");
    assert!(!set.regex.sets[&RegexTarget::Header("reply-to".into())].is_match(b"x@EVIL.EXAMPLE"));
    assert_eq!(set.identity.len(), 12);
}

#[test]
fn every_problem_is_reported_at_once_with_line_and_column() {
    let (set, diags) = compile_one(
        r#"rules:
  - id: one
    targets: [subject, bodyy]
    pattern: "ok"
    score: 1
    colour: red
  - id: two
    targets: [body]
    pattern: "(unclosed"
    score: lots
  - id: one
    targets: [url]
    pattern: "x"
    action: explode
"#,
    );
    assert!(set.is_none());
    let got: Vec<(String, Option<usize>, Option<usize>)> =
        diags.iter().filter(|d| d.is_error()).map(|d| (d.code.clone(), d.line, d.column)).collect();
    let want = [
        ("R004", 3, 24),
        ("R002", 6, 5),
        ("R005", 9, 14),
        ("R003", 10, 12),
        ("R003", 14, 13),
        ("R006", 11, 1),
    ];
    for (c, l, col) in want {
        assert!(got.contains(&(c.to_string(), Some(l), Some(col))), "missing {c} at {l}:{col}; got {got:?}");
    }
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let (set, diags) = compile_one("rules:\n  - id: x\n    targets: [subject\n");
    assert!(set.is_none());
    assert_eq!(diags[0].code, "R001");
    assert!(diags[0].line.is_some());
}

#[test]
fn missing_pieces_are_named() {
    let (_, diags) =
        compile_one("rules:\n  - description: nothing\n  - id: no_targets\n    pattern: x\n    score: 1\n");
    let msgs: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("needs an `id`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("needs `targets`")), "{msgs:?}");
}

#[test]
fn requires_must_name_existing_rules_and_meta_rules_need_no_patterns() {
    let (set, diags) = compile_one(
        "rules:\n  - id: a\n    targets: [body]\n    pattern: x\n  - id: both\n    requires: [a]\n    score: 3\n",
    );
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(set.unwrap().regex.rules[1].requires, vec!["a"]);
    let (set, diags) = compile_one("rules:\n  - id: both\n    requires: [nothing]\n    score: 3\n");
    assert!(set.is_none());
    assert_eq!(diags[0].code, "R008");
}

#[test]
fn a_rule_that_can_never_count_is_a_warning() {
    let (set, diags) = compile_one("rules:\n  - id: idle\n    targets: [body]\n    pattern: x\n");
    assert!(set.is_some());
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "R010");
    assert!(!diags[0].is_error());
    // A score or action that did not parse is its own error; "it can never count" is not
    // added to it, for that rule only.
    let (set, diags) = compile_one(
        "rules:\n  - id: bad\n    targets: [body]\n    pattern: x\n    action: drop\n  - id: idle\n    targets: [body]\n    pattern: y\n",
    );
    assert!(set.is_none());
    let codes: Vec<(&str, Option<usize>)> = diags.iter().map(|d| (d.code.as_str(), d.line)).collect();
    assert_eq!(codes, vec![("R003", Some(5)), ("R010", Some(6))], "{diags:?}");
}

#[test]
fn ids_are_one_namespace_across_engines() {
    let (set, diags) = compile(
        &[
            src("a.yar", "rule same { condition: true }\n"),
            src("b.yaml", "rules:\n  - id: same\n    targets: [body]\n    pattern: x\n    score: 1\n"),
        ],
        CompileOptions::default(),
    );
    assert!(set.is_none());
    assert!(diags.iter().any(|d| d.code == "R006"), "{diags:?}");
}

#[test]
fn targets_parse_by_their_design_names() {
    for name in [
        "subject",
        "header:X-Mailer",
        "headers",
        "body",
        "html",
        "url",
        "attachment.name",
        "attachment.type",
        "envelope.from",
        "envelope.rcpt",
        "helo",
        "client.addr",
        "client.name",
        "anomaly",
        "uninspected",
    ] {
        let t: RegexTarget = name.parse().unwrap();
        assert_eq!(t.to_string(), name.to_lowercase());
    }
    assert!("header:".parse::<RegexTarget>().is_err());
    assert!("bodyy".parse::<RegexTarget>().is_err());
}

#[test]
fn a_directory_is_read_sorted_and_other_files_are_warned_about() {
    let dir = std::env::temp_dir().join(format!("im-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(dir.join("b.yaml"), "rules: []\n").unwrap();
    std::fs::write(dir.join("a.yar"), "rule r { condition: true }\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    std::fs::write(dir.join("README.md"), "x").unwrap();
    let mut diags = Vec::new();
    let sources = read_dir(&dir, &mut diags);
    let names: Vec<_> = sources.iter().map(|s| s.origin.rsplit('/').next().unwrap().to_string()).collect();
    assert_eq!(names, vec!["a.yar", "b.yaml"]);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, "L002");
    let mut diags = Vec::new();
    assert!(read_dir(&dir.join("missing"), &mut diags).is_empty());
    assert_eq!(diags[0].code, "L001");
}

/// Rules made only of requirements that require each other can never hit: an error naming the
/// loop, once. Rules with patterns of their own may require each other (both patterns match).
#[test]
fn a_loop_of_requirement_only_rules_is_an_error() {
    let (set, diags) = compile_one(
        "rules:\n  - id: a\n    requires: [b]\n    score: 3\n  - id: b\n    requires: [c]\n    score: 3\n  - id: c\n    requires: [a]\n    score: 3\n  - id: own\n    requires: [own]\n    score: 1\n",
    );
    assert!(set.is_none());
    let loops: Vec<&str> = diags.iter().filter(|d| d.code == "R011").map(|d| d.message.as_str()).collect();
    assert_eq!(loops.len(), 2, "{diags:?}");
    assert!(loops[0].contains("a → b → c → a"), "{loops:?}");
    assert!(loops[1].contains("own → own"), "{loops:?}");
    let (set, diags) = compile_one(
        "rules:\n  - id: x\n    targets: [body]\n    pattern: x\n    requires: [y]\n    score: 3\n  - id: y\n    targets: [body]\n    pattern: y\n    requires: [x]\n    score: 3\n",
    );
    assert!(set.is_some() && diags.is_empty(), "{diags:?}");
}

/// Scoring S/MIME or PGP by rule is a warning (it is policy's to decide); other reasons are
/// evidence a rule may use, and an unscored rule scores nothing.
#[test]
fn a_rule_scoring_end_to_end_encryption_is_a_warning() {
    let (set, diags) = compile_one(
        "rules:\n  - id: e2e\n    targets: [uninspected]\n    pattern: '^(smime|pgp)-encrypted$'\n    score: 5\n",
    );
    assert!(set.is_some());
    assert_eq!(diags.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), vec!["R012"], "{diags:?}");
    assert!(!diags[0].is_error() && diags[0].message.contains("smime-encrypted"));
    let (_, diags) = compile_one(
        "rules:\n  - id: zip\n    targets: [uninspected]\n    pattern: encrypted-archive\n    score: 5\n  - id: seen\n    targets: [uninspected]\n    pattern: pgp\n    requires: [zip]\n",
    );
    assert!(diags.iter().all(|d| d.code != "R012"), "{diags:?}");
}

/// A YARA file that does not compile does not make the regex rules that require its rules look
/// wrong, nor hide a name used by both engines.
#[test]
fn a_yara_error_does_not_hide_or_invent_problems_across_engines() {
    let (set, diags) = compile(
        &[
            src("a.yar", "rule good_yara { condition: true }\nprivate rule both { condition: true }\n"),
            src("b.yar", "rule broken { condition: $x }\n"),
            src(
                "r.yaml",
                "rules:\n  - id: combo\n    requires: [good_yara]\n    score: 3\n  - id: both\n    targets: [body]\n    pattern: x\n    score: 1\n",
            ),
        ],
        CompileOptions::default(),
    );
    assert!(set.is_none());
    let codes: Vec<&str> = diags.iter().filter(|d| d.is_error()).map(|d| d.code.as_str()).collect();
    assert!(!codes.contains(&"R008"), "good_yara exists: {diags:?}");
    assert!(codes.contains(&"R006"), "`both` is in both engines: {diags:?}");
    assert!(codes.iter().any(|c| c.starts_with('E')), "the YARA error itself: {diags:?}");
}
