//! One deadline over the whole inspection of a message (`inspect.scan_timeout`): decoding,
//! the MIME walk, archive and document readers, HTML and URL extraction, signals, regex and
//! YARA all ask the same [`Deadline`] before each unit of work (a part, a member, a document,
//! a URL, a target). Past it, what is not finished is recorded `scan-timeout` and the filter
//! thread is handed back.
//!
//! # What a deadline check cannot interrupt (the stated slack)
//!
//! Checks sit between units of work, so a unit already begun runs to its end. Every unit is
//! linear in its input and bounded by the limits (`max_part_bytes` for one decode, one HTML
//! scan, one regex pass over one target), which keeps it to a fraction of a second in a
//! release build. The exception is one YARA scan: yara-x times out in whole seconds, firing
//! 1–2 s after the timeout it is given, so it is given at least 2 s. The filter thread is
//! therefore free at most about 2 s after the deadline.

use std::fmt;
use std::time::{Duration, Instant};

/// The step of the inspection asking whether time is left; tests slow one stage down by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Transfer (base64, quoted-printable) and charset decoding of a part.
    Decode,
    /// The MIME tree: one part or embedded message.
    Mime,
    /// One archive member (ZIP, Office package).
    Archive,
    /// One document or encrypted format read (PDF, compound file, S/MIME, PGP).
    Document,
    /// One HTML part turned into text and links.
    Html,
    /// One URL cut out of text.
    Urls,
    /// The cross-field signals, one URL or header at a time.
    Signals,
    /// One regex pass over a target.
    Regex,
    /// One YARA scan of a target.
    Yara,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decoding",
            Stage::Mime => "the MIME walk",
            Stage::Archive => "archive members",
            Stage::Document => "documents",
            Stage::Html => "HTML",
            Stage::Urls => "URL extraction",
            Stage::Signals => "signals",
            Stage::Regex => "regex rules",
            Stage::Yara => "YARA rules",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the inspection of one message must stop; `Deadline::never()` for callers that bound
/// time otherwise (the walk alone in tools and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    pub fn at(when: Instant) -> Self {
        Deadline(Some(when))
    }

    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now().checked_add(budget))
    }

    pub fn never() -> Self {
        Deadline(None)
    }

    /// Whether the deadline has passed, asked by `stage` before a unit of work.
    #[inline]
    pub fn passed(&self, stage: Stage) -> bool {
        #[cfg(test)]
        slow::step(stage);
        #[cfg(not(test))]
        let _ = stage;
        self.0.is_some_and(|at| Instant::now() >= at)
    }

    /// Time left (zero once passed); `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.0.map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// Makes one stage slow on this thread, so tests can show every stage gives the thread back in
/// time: each deadline check of that stage sleeps first.
#[cfg(test)]
pub(crate) mod slow {
    use std::cell::Cell;
    use std::time::Duration;

    use super::Stage;

    thread_local! {
        static SLOW: Cell<Option<(Stage, Duration)>> = const { Cell::new(None) };
    }

    /// Every check of `stage` on this thread sleeps `each` until the guard is dropped.
    pub(crate) fn stage(stage: Stage, each: Duration) -> Guard {
        SLOW.with(|s| s.set(Some((stage, each))));
        Guard
    }

    pub(crate) struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            SLOW.with(|s| s.set(None));
        }
    }

    pub(super) fn step(stage: Stage) {
        if let Some((slow, each)) = SLOW.with(Cell::get)
            && slow == stage
        {
            std::thread::sleep(each);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_passes_and_never_does_not() {
        assert!(Deadline::at(Instant::now()).passed(Stage::Mime));
        assert!(!Deadline::after(Duration::from_secs(3600)).passed(Stage::Mime));
        assert!(!Deadline::never().passed(Stage::Mime));
        assert_eq!(Deadline::at(Instant::now()).remaining(), Some(Duration::ZERO));
        assert_eq!(Deadline::never().remaining(), None);
    }
}
