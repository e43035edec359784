//! Inspection: from raw message bytes to targets, and from targets to hits.

pub mod hit;
pub mod regex;
pub mod target;
pub mod yara;
