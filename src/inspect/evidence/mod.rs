//! Facts across fields, computed over the walk's targets: signals (link text against its
//! link, display names, brands), trusted sender authentication, bulk-mail structure and the
//! organisational domain they compare. Each becomes anomalies rules can score.

pub mod bulk;
pub(in crate::inspect) mod orgdomain;
pub mod sender;
pub mod signals;
