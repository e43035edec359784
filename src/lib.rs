//! inspect-milter: an inspection-aware content filter for Postfix and Sendmail.
//!
//! It sits behind the MTA that terminated TLS, inspects the decrypted message (headers, every
//! decoded MIME part, attachments, archive members) with YARA and regex rules, and says exactly
//! what it could not inspect and why.
//!
//! # Layout
//! - [`milter`]: the milter protocol only — codec, commands, replies, negotiation, and the
//!   per-connection state machine; it meets the rest of the crate at the [`milter::Filter`] trait.
//! - [`server`]: listeners (unix and inet), connection limit, timeouts, shutdown; drives
//!   sessions over sockets and runs filters on blocking threads.
//! - [`config`]: the YAML configuration, parsed into raw structs and validated into [`config::Config`].
//! - [`mta`]: the MTA side of the protocol over a socket, for `check --connect`, the load
//!   generator and tests.
//! - [`yaml`]: the one place that parses YAML, with file:line:column in every error.
//! - [`inspect`]: the inspection engine in rooms — the MIME walk, file formats, text, evidence,
//!   the YARA and regex scans — under one deadline, and the report.
//! - [`rules`]: loading and compiling rule files, with diagnostics at file:line:column.
//! - [`policy`]: from findings to a decision, and from the decision to milter actions.
//! - [`quarantine`]: the store of held messages (atomic, shared by daemon and CLI) and the
//!   review commands.
//! - [`pipeline`]: bytes → report → verdict, the same for the daemon, `scan` and `test`.
//! - [`smtp`]: the SMTP client (STARTTLS) that delivers released mail to a relay.
//! - [`logline`]: the one summary line per message, escaped.
//! - [`metrics`]: counters and histograms, and the optional Prometheus listener.
//! - [`memory`]: glibc's allocator settings for the daemon, and pre-faulting of large buffers.
//! - [`hex`], [`random`]: the one hexadecimal encoder and the one source of random bytes.

pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod hex;
pub mod inspect;
pub mod logline;
pub mod memory;
pub mod metrics;
pub mod milter;
pub mod mta;
pub mod pipeline;
pub mod policy;
pub mod quarantine;
pub mod random;
pub mod rules;
pub mod server;
pub mod smtp;
pub mod yaml;
