//! Fuzzes the MIME walk: `inspect_milter::fuzzing::mime_walk` checks its
//! invariants under default and tight limits.
//!
//! mail-parser has `debug_assert!`s on some recovery paths; the walk catches
//! a parser panic and scans the message raw (`mime-parser-panic`), which is
//! the designed behaviour. libFuzzer's panic hook would abort on that caught
//! panic, so the hook is replaced by a silent one: a panic that escapes the
//! walk still aborts (libfuzzer-sys checks the closure), and a panic inside
//! our own code shows up as the `walk-panic` anomaly, which is asserted
//! against.

#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;

static QUIET_PANICS: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    inspect_milter::fuzzing::mime_walk(data);
});
