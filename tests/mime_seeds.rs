//! Runs every seed of the fuzz corpus through the walk, as an ordinary test,
//! and checks the invariants the fuzz target checks.

use std::collections::HashSet;
use std::path::Path;

use inspect_milter::inspect::{Limits, walk};

/// Invariants of any walk, whatever the input.
pub fn check_invariants(raw: &[u8], limits: &Limits) {
    let walked = walk(raw, limits);
    let paths: HashSet<&str> = walked.parts.iter().map(|p| p.part_path.as_str()).collect();
    for target in &walked.targets {
        assert!(
            paths.contains(target.part_path.as_str()),
            "target {:?} at {} has no part",
            target.kind,
            target.part_path
        );
    }
    let summary = walked.summary();
    assert_eq!(summary.coverage.complete, walked.uninspectable.is_empty());
    let scanned: u64 = walked
        .targets
        .iter()
        .filter(|t| {
            t.kind.yara_part_kind().is_some() && t.kind != inspect_milter::inspect::TargetKind::RawHeaders
        })
        .map(|t| t.data.len() as u64)
        .sum();
    // Decoded content stays within the budget (plus HTML text, which is
    // charged after the HTML it comes from).
    assert!(
        scanned <= 2 * limits.max_total_bytes,
        "{scanned} bytes scanned, budget {}",
        limits.max_total_bytes
    );
}

#[test]
fn every_fuzz_seed_walks_within_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mime_walk");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("seed corpus exists") {
        let raw = std::fs::read(entry.expect("readable entry").path()).expect("seed readable");
        check_invariants(&raw, &Limits::default());
        let tight = Limits {
            max_depth: 3,
            max_parts: 4,
            max_part_bytes: 64,
            max_total_bytes: 256,
            max_expansion_ratio: 2,
            max_archive_members: 2,
            max_archive_depth: 1,
            max_urls: 2,
        };
        check_invariants(&raw, &tight);
        count += 1;
    }
    assert!(count >= 5, "expected seeds in {}", dir.display());
}
