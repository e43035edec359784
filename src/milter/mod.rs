//! The milter protocol (version 6, as Postfix and Sendmail speak it), and nothing else.
//!
//! Layers, bottom up: [`codec`] frames packets, [`command`] parses them, [`response`] encodes
//! replies ([`reply`] validates SMTP reply text), [`negotiate`] answers OPTNEG, and [`session`]
//! is the state machine that turns commands into replies and finished messages. None of it does
//! I/O; the server drives it over sockets. This module depends on nothing else in the crate, so
//! it could become a crate of its own; the rest of the crate meets it at the [`Filter`] trait.

pub mod codec;
pub mod command;
pub mod envelope;
pub mod negotiate;
pub mod reply;
pub mod response;
pub mod session;

pub use envelope::Envelope;
pub use reply::SmtpReply;

/// A finished message, handed to the [`Filter`] at end of message.
#[derive(Debug, Clone)]
pub struct EndOfMessage {
    pub envelope: Envelope,
    /// Headers and body as the MTA sent them (CRLF line ends), up to the size cap.
    pub message: Vec<u8>,
    /// The message was larger than the cap: `message` holds only its beginning. A filter must
    /// never call a truncated message clean.
    pub truncated: bool,
    /// Bytes the MTA sent for this message, including any past the cap.
    pub received_bytes: u64,
    /// When the end of the message arrived: the inspection's deadline counts from here, so
    /// time spent waiting for a filter thread is part of it and the MTA is answered in time.
    pub arrived: std::time::Instant,
}

/// A header change to apply at end of message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderChange {
    /// Append a header.
    Add { name: String, value: String },
    /// Insert at `index` among all headers (0 = top).
    Insert { index: u32, name: String, value: String },
    /// Change the `index`-th (1-based) header called `name`; an empty value deletes it.
    Change { index: u32, name: String, value: String },
}

/// The final action for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Permanent refusal; `None` lets the MTA choose its default text.
    Reject(Option<SmtpReply>),
    /// Temporary refusal; the client retries later.
    Tempfail(Option<SmtpReply>),
    /// Accept and silently drop.
    Discard,
    /// Accept into the MTA's hold queue, with a reason for its log.
    Quarantine(String),
}

/// What a filter decided, in protocol terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub headers: Vec<HeaderChange>,
    pub action: Action,
}

impl Verdict {
    pub fn accept() -> Verdict {
        Verdict { headers: Vec::new(), action: Action::Accept }
    }
}

pub type FilterError = Box<dyn std::error::Error + Send + Sync>;

/// The boundary between the protocol and everything that decides about a message.
///
/// Called on a blocking thread, never on the async runtime, so it may take its time (the
/// server keeps the MTA's timers alive meanwhile). An error or a panic becomes the configured
/// `on_error` action.
pub trait Filter: Send + Sync + 'static {
    fn end_of_message(&self, message: &EndOfMessage) -> Result<Verdict, FilterError>;
}
