//! Inspection engine, MIME-walk half: turns the raw bytes of a message into
//! the buffers YARA and regex rules scan ([`Target`]s), plus an explicit list
//! of what could not be inspected and why ([`Uninspectable`]) and of what
//! looked odd ([`Anomaly`]). It is synchronous, does no I/O, never panics and
//! stays inside [`Limits`] whatever the input, so the daemon, `scan` and the
//! rule test harness all run exactly the same code.
//!
//! # Part paths
//!
//! Paths number the message tree the way IMAP does:
//!
//! * `0` is the top-level message: its header block, and its body when the
//!   body is a multipart (the container has no number of its own).
//! * `1`, `2`, … are the top-level body parts; a single-part message has
//!   just `1`. Children of part `1.2` are `1.2.1`, `1.2.2`, …
//! * An embedded message (message/rfc822, a digest member, the signed
//!   content of an opaque S/MIME signature) keeps its part's path `P` for
//!   its header block and multipart body, and its parts continue below it:
//!   `P.1`, `P.2`, … (a single-part embedded message has `P.1`).
//! * Archive members append `!` and the member's name: `1.2!docs/a.exe`;
//!   nested archives chain: `1.2!a.zip!b.exe`. Office Open XML documents
//!   are archives too (`2!word/vbaProject.bin`), and the package decrypted
//!   from an Office file that uses the default password is the member
//!   `2!EncryptedPackage`.
//!
//! # Layout
//!
//! * `walk` — entry point, result types, budgets and limits bookkeeping.
//! * `structure` — where the MIME parts are (mail-parser's splitting rules,
//!   a vectorised boundary search); `mime` — the message tree walked from it,
//!   headers and text parts.
//! * `payload` — attachments: archives, encrypted formats, type mismatches.
//! * `headers`, `decode`, `html`, `urls` — header blocks, transfer/charset
//!   decoding, HTML to text and links, URLs in text.
//! * `zip`, `cfb`, `pdf`, `office`, `smime`, `pgp`, `sniff`, `rc4` — the
//!   container and encryption formats, each on its own.
//! * `target`, `coverage`, `limits` — the public types.
//! * `regex`, `yara` — the two rule engines over targets; `hit` — what they find.
//! * `sender`, `bulk`, `orgdomain` — evidence of who really sent a message: trusted
//!   authentication results and their alignment with From (on the public-suffix list), and
//!   the structure of bulk mail (unsubscribe, provider headers, preheader, click tracking).
//! * `engine` — walk, both engines and rule requirements, in one call.
//! * `report` — the one report type and the decision names.

pub mod bulk;
mod cfb;
mod coverage;
mod deadline;
mod decode;
pub mod engine;
mod headers;
pub mod hit;
mod html;
mod limits;
mod mime;
mod office;
mod orgdomain;
mod payload;
mod pdf;
mod pgp;
mod rc4;
pub mod regex;
pub mod report;
pub mod sender;
pub mod signals;
mod smime;
mod sniff;
mod structure;
mod target;
mod urls;
mod walk;
pub mod yara;
mod zip;

pub use coverage::{Anomaly, Reason, Uninspectable};
pub use deadline::{Deadline, Stage};
pub use limits::Limits;
pub use report::{CoverageReport, Decision, Report};
pub use target::{Target, TargetKind};
pub use walk::{Coverage, PartInfo, PartKind, TargetSummary, Walk, WalkSummary, walk, walk_until};
