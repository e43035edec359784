//! The packet decoder, the command parser and the session state machine, driven by arbitrary
//! bytes as if an MTA (or anything else that connects) sent them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inspect_milter::fuzzing::milter_stream(data);
});
