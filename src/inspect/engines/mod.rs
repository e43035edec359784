//! The two rule engines over targets: one regex set pass per target (`scan_regex`) and one
//! YARA scan per target (`scan_yara`), and what they find (`hit`). Rules are compiled in
//! `crate::rules`.

pub mod hit;
pub mod scan_regex;
pub mod scan_yara;
