//! The configuration loader on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inspect_milter::fuzzing::config_file(data);
});
