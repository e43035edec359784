//! Golden fixtures: every `tests/fixtures/mime/<provenance>/<name>.eml` is
//! walked and its summary compared with `<name>.expected.json` beside it.
//! On a mismatch the actual summary is written to `<name>.actual.json` and
//! the test goes on, so one run reports every failure. `UPDATE_GOLDEN=1`
//! rewrites the expected files instead (review the diff).
//!
//! Each fixture is stored with LF line ends. Fixtures without any CR are
//! also walked after converting every LF to CRLF, and the two summaries must
//! agree on everything but sizes, hashes and byte counts in details; files
//! that contain CR on purpose (bare-CR cases) are only walked as they are.

use std::path::{Path, PathBuf};

use inspect_milter::inspect::{Limits, WalkSummary, walk};
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fixture directory exists") {
        let dir = dir.expect("readable directory entry").path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("readable provenance directory") {
            let file = file.expect("readable directory entry").path();
            if file.extension().is_some_and(|e| e == "eml") {
                out.push(file);
            }
        }
    }
    out.sort();
    out
}

fn summary_json(raw: &[u8]) -> String {
    let summary: WalkSummary = walk(raw, &Limits::default()).summary();
    let mut json = serde_json::to_string_pretty(&summary).expect("summary serializes");
    json.push('\n');
    json
}

/// The summary with everything that depends on line ends removed.
fn line_end_neutral(json: &str) -> Value {
    let mut value: Value = serde_json::from_str(json).expect("summary is JSON");
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for key in ["bytes", "sha256", "size", "decoded_size"] {
                    map.remove(key);
                }
                if let Some(Value::String(detail)) = map.get_mut("detail") {
                    *detail = detail.chars().filter(|c| !c.is_ascii_digit()).collect();
                }
                for v in map.values_mut() {
                    strip(v);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().expect("fixture has a name").to_string_lossy();
    path.with_file_name(format!("{stem}{suffix}"))
}

#[test]
fn golden_fixtures_match_their_expected_summaries() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let files = fixtures();
    assert!(files.len() >= 20, "expected the fixture corpus, found {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let raw = std::fs::read(file).expect("fixture readable");
        let actual = summary_json(&raw);
        let expected_path = with_suffix(file, ".expected.json");
        let actual_path = with_suffix(file, ".actual.json");
        if update {
            std::fs::write(&expected_path, &actual).expect("write expected");
            let _ = std::fs::remove_file(&actual_path);
        } else {
            match std::fs::read_to_string(&expected_path) {
                Ok(expected) if expected == actual => {
                    let _ = std::fs::remove_file(&actual_path);
                }
                Ok(_) => {
                    std::fs::write(&actual_path, &actual).expect("write actual");
                    failures.push(format!("{}: differs, see {}", file.display(), actual_path.display()));
                }
                Err(_) => {
                    std::fs::write(&actual_path, &actual).expect("write actual");
                    failures.push(format!("{}: no expected file", file.display()));
                }
            }
        }
        if !raw.contains(&b'\r') {
            let crlf: Vec<u8> =
                raw.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
            let crlf_actual = summary_json(&crlf);
            if line_end_neutral(&crlf_actual) != line_end_neutral(&actual) {
                let path = with_suffix(file, ".crlf.actual.json");
                std::fs::write(&path, &crlf_actual).expect("write crlf actual");
                failures.push(format!("{}: CRLF variant differs, see {}", file.display(), path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// What the shipped rules decide about a fixture: decision, score, the rules that hit and the
/// reasons parts went uninspected — stable across runs (no timings, no hashes).
fn decision_json(pipeline: &inspect_milter::pipeline::Pipeline, raw: &[u8]) -> String {
    let r = pipeline.run(raw, &Default::default(), false, raw.len() as u64);
    let mut rules: Vec<&str> = r.hits.iter().map(|h| h.rule.as_str()).collect();
    rules.sort();
    rules.dedup();
    let v = serde_json::json!({
        "decision": r.decision,
        "score": r.score,
        "rules": rules,
        "uninspected": r.coverage.uninspectable.iter().map(|u| format!("{}={}", u.reason, u.part_path)).collect::<Vec<_>>(),
        "reasons": r.reasons,
    });
    let mut json = serde_json::to_string_pretty(&v).expect("serializes");
    json.push('\n');
    json
}

/// Every fixture's decision with the shipped rules, golden like the summaries:
/// `<name>.decision.json`; `UPDATE_GOLDEN=1` regenerates. A rule change that moves a fixture
/// shows up here as a diff to review.
#[test]
fn golden_fixtures_match_their_expected_decisions() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let config = inspect_milter::config::Config::default();
    let (pipeline, _) = inspect_milter::pipeline::Pipeline::load(&config).expect("the shipped rules load");
    let mut failures = Vec::new();
    for file in &fixtures() {
        let raw = std::fs::read(file).expect("fixture readable");
        let actual = decision_json(&pipeline, &raw);
        let expected_path = with_suffix(file, ".decision.json");
        let actual_path = with_suffix(file, ".decision.actual.json");
        if update {
            std::fs::write(&expected_path, &actual).expect("write expected");
            let _ = std::fs::remove_file(&actual_path);
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {
                let _ = std::fs::remove_file(&actual_path);
            }
            _ => {
                std::fs::write(&actual_path, &actual).expect("write actual");
                failures.push(format!("{}: decision differs, see {}", file.display(), actual_path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
