//! The one integration-test binary (one link of the whole crate instead of one per file).

mod support;

mod fuzz_seeds;
mod mta;
mod server;
