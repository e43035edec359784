//! Every fuzz target's seed corpus, replayed as an ordinary test: the seeds cover the shapes
//! the fuzzers start from, and none of them may panic.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn mime_walk_seeds_walk_within_invariants() {
    assert!(replay("mime_walk", inspect_milter::fuzzing::mime_walk) >= 5);
}

#[test]
fn milter_stream_seeds_never_panic() {
    assert!(replay("milter_stream", inspect_milter::fuzzing::milter_stream) >= 5);
}

#[test]
fn rule_file_seeds_never_panic() {
    assert!(replay("rule_files", inspect_milter::fuzzing::rule_files) >= 4);
}

#[test]
fn config_file_seeds_never_panic() {
    assert!(replay("config_file", inspect_milter::fuzzing::config_file) >= 3);
}
