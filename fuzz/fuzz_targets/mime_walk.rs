//! Fuzzes the MIME walk: any input must walk without a panic in our code,
//! with every target belonging to a listed part, under default and under
//! tight limits (tight limits reach the over-size, over-depth and over-parts
//! paths).
//!
//! mail-parser has `debug_assert!`s on some recovery paths; the walk catches
//! a parser panic and scans the message raw (`mime-parser-panic`), which is
//! the designed behaviour. libFuzzer's panic hook would abort on that caught
//! panic, so the hook is replaced by a silent one: a panic that escapes the
//! walk still aborts (libfuzzer-sys checks the closure), and a panic inside
//! our own code shows up as the `walk-panic` anomaly, which is asserted
//! against.

#![no_main]

use std::collections::HashSet;
use std::sync::Once;

use inspect_milter::inspect::{Limits, walk};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8], limits: &Limits) {
    let walked = walk(data, limits);
    let paths: HashSet<&str> = walked.parts.iter().map(|p| p.part_path.as_str()).collect();
    for target in &walked.targets {
        assert!(
            paths.contains(target.part_path.as_str()),
            "orphan target {}",
            target.part_path
        );
    }
    assert!(
        !walked.anomalies.iter().any(|a| a.code == "walk-panic"),
        "the walk itself panicked"
    );
    let summary = walked.summary();
    assert_eq!(summary.coverage.complete, walked.uninspectable.is_empty());
    serde_json::to_string(&summary).expect("summary serializes");
}

static QUIET_PANICS: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    check(data, &Limits::default());
    check(
        data,
        &Limits {
            max_depth: 3,
            max_parts: 4,
            max_part_bytes: 64,
            max_total_bytes: 256,
            max_expansion_ratio: 2,
            max_archive_members: 2,
            max_archive_depth: 1,
            max_urls: 2,
        },
    );
});
