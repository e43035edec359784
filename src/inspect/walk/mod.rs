//! The MIME walk: raw message bytes in, targets, coverage and anomalies out. `walker` holds the
//! result types and the bookkeeping every step shares (budgets, limits, the deadline);
//! `structure` finds the parts, `mime` walks the tree and header blocks (`headers`), `payload`
//! opens what attachments contain. May use `formats`, `text` and the public types.

pub(in crate::inspect) mod headers;
pub(in crate::inspect) mod mime;
pub(in crate::inspect) mod payload;
pub(in crate::inspect) mod structure;
pub(in crate::inspect) mod walker;
