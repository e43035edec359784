//! The one integration-test binary (one link of the whole crate instead of one per file).

mod support;

mod cli;
mod complexity_inputs;
mod fuzz_seeds;
mod golden;
mod hostile;
mod hostile_inputs;
mod mta;
mod ops;
mod pipeline;
mod release;
mod resilience;
mod rule_pack;
mod server;
