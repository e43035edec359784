//! The shipped rule pack: it compiles without a warning, and every case in `rules/tests` passes
//! through the real binary, exactly as a rule author runs it.

use std::path::Path;

use inspect_milter::rules::{CompileOptions, compile, shipped_sources};

#[test]
fn the_shipped_pack_compiles_cleanly() {
    let sources = shipped_sources();
    assert!(sources.len() >= 2, "the pack is built in");
    let (set, diags) = compile(&sources, CompileOptions::default());
    let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert!(diags.is_empty(), "{}", shown.join("\n"));
    let set = set.expect("compiled");
    assert!(set.yara_count() > 0 && set.regex_count() > 0);
}

#[test]
fn every_rule_case_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .env("INSPECT_MILTER_CONFIG", "") // the cases expect the default policy, on a packaged host too
        .current_dir(root)
        .args(["test", "rules/tests", "--color", "never"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    let passed: usize = last.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(last.ends_with(" passed, 0 failed") && passed >= 20, "{last}");
}
