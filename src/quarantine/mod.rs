//! The quarantine: messages held for a person to review, each with the inspection report that
//! explains why, in a directory tree that the daemon and the review CLI share with no server,
//! and that survives a kill at any moment without a torn entry.
//!
//! The daemon calls [`Store::put`] before it answers the MTA, and tempfails when `put` fails:
//! a message is never accepted into a quarantine that could not keep it. Reviewers use
//! `inspect-milter quarantine list|show|delete|purge` ([`cli`]).
//!
//! # Layout
//!
//! - [`store`]: the store itself — on-disk layout, the atomicity argument, locking.
//! - `entry`: what is kept about a message, and the one function listing legal state changes.
//! - `id`: validated, time-sortable ids; the only way a name from outside reaches a path.
//! - `time`: UTC timestamps, RFC 3339, and the durations people type (`7d`).
//! - `durable`: exact permissions, fsync of files and directories, `flock`.
//! - [`ownership`]: what root creates in the daemon's directories stays the daemon's; what
//!   to say when the daemon cannot open its files.
//! - `error`: [`StoreError`].
//! - [`cli`]: the review commands (clap arguments and `run` functions).
//! - `terminal`: making attacker-controlled text safe to print.
//! - [`release_mark`]: the header that lets a released message through without a second
//!   quarantine, and that cannot be forged or moved.

pub mod cli;
mod durable;
mod entry;
mod error;
mod id;
pub mod ownership;
mod release;
pub mod release_mark;
pub mod store;
mod terminal;
mod time;

#[cfg(test)]
mod faults;
#[cfg(test)]
mod test_support;

pub use entry::{
    Change, DAEMON, ENTRY_VERSION, Entry, EntryEnvelope, HistoryEvent, Location, NewEntry, State,
};
pub use error::StoreError;
pub use id::Id;
pub use store::{Filter, Listing, Purged, Store};
pub use time::{Timestamp, parse_duration};
