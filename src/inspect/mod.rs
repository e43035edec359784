//! The inspection engine: turns the raw bytes of a message into
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
//! * `walk/` — the MIME walk: the walker and its budgets (`walker`), where the parts are
//!   (`structure`), the message tree (`mime`), header blocks (`headers`), and what
//!   attachments contain (`payload`).
//! * `formats/` — container and encryption formats, each on its own: `zip`, `cfb`, `office`,
//!   `pdf`, `smime`, `pgp`, `sniff` (file types), `rc4`.
//! * `text/` — transfer and charset decoding (`decode`), HTML to text and links (`html`), URLs
//!   in text (`urls`).
//! * `evidence/` — facts across fields: `signals` (link text, display names, brands),
//!   `sender` (trusted authentication results), `bulk` (bulk-mail structure), `orgdomain`.
//! * `engines/` — the two rule engines over targets: `scan_regex`, `scan_yara`; `hit` is what
//!   they find. (Compiling rules is `crate::rules`.)
//! * `engine` — walk, evidence, both engines and rule requirements in one call;
//!   `deadline` — the one time budget over all of it; `report` — the one report type;
//!   `target`, `coverage`, `limits` — the public types.
//!
//! Rooms use each other through `crate::inspect::…` paths; nothing here does I/O or uses
//! the server, the pipeline or the quarantine.

mod coverage;
mod deadline;
pub mod engine;
pub mod engines;
pub mod evidence;
mod formats;
mod limits;
pub mod report;
mod target;
mod text;
mod walk;

// Public paths kept from before the rooms: `inspect::regex`, `inspect::yara`, `inspect::hit`,
// `inspect::signals`, `inspect::sender`, `inspect::bulk`.
pub use engines::hit;
pub use engines::scan_regex as regex;
pub use engines::scan_yara as yara;
pub use evidence::{bulk, sender, signals};

pub use coverage::{Anomaly, Reason, Uninspectable};
pub use deadline::{Deadline, Stage};
pub use limits::Limits;
pub use report::{CoverageReport, Decision, Report};
pub use target::{Target, TargetKind};
pub use walk::walker::{Coverage, PartInfo, PartKind, TargetSummary, Walk, WalkSummary, walk, walk_until};
