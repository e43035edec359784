//! The store's one error type: small, so callers can tell "no such message" (a person's typo)
//! from "the disk failed" (the daemon must tempfail) without parsing text.

use std::io;
use std::path::{Path, PathBuf};

use super::entry::State;
use super::id::Id;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed (full disk, permissions, I/O error).
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    /// No entry with this id.
    #[error("no quarantined message with id {0}")]
    NotFound(Id),
    /// The entry exists, but its message bytes were deleted.
    #[error("{0}: the message was deleted; only its record is kept")]
    Deleted(Id),
    /// Not an id (see [`Id::parse`]). Holds at most 64 characters of what was given.
    #[error("invalid quarantine id {0:?}: expected the form 20261128T201502Z-3f9a1c2b4d5e")]
    BadId(String),
    /// A file in the store is not what the store wrote: unreadable metadata, a message whose
    /// SHA-256 differs from its metadata, a message file missing under a held entry.
    #[error("{}: corrupt: {detail}", .path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// The change of state is not allowed (see [`State::can_become`]).
    #[error("{id}: cannot change state from {from} to {to}")]
    Transition { id: Id, from: State, to: State },
    /// `open_existing` was given a directory that is not there.
    #[error("no quarantine store at {}", .0.display())]
    NoStore(PathBuf),
    /// The caller passed something the store cannot record (a time outside 1970–9999).
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// The operating-system error behind an `Io` error (`ENOSPC`, `EACCES`, …).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            StoreError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// `.map_err(at(path))`: an I/O error with the path it happened on.
pub(super) fn at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}
