//! The walk itself: raw message bytes in, targets, coverage and anomalies
//! out. This file holds the result types and the bookkeeping every step
//! shares (budgets, limits, recording); `mime` walks the message tree and
//! `payload` opens what attachments contain.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use crate::inspect::coverage::{Anomaly, Reason, Uninspectable};
use crate::inspect::deadline::{Deadline, Stage};
use crate::inspect::limits::Limits;
use crate::inspect::target::{Target, TargetKind};

/// Everything the walk found in one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Walk<'a> {
    pub targets: Vec<Target<'a>>,
    pub uninspectable: Vec<Uninspectable>,
    pub anomalies: Vec<Anomaly>,
    pub parts: Vec<PartInfo>,
}

/// What a node of the message tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartKind {
    /// A message: the top level (`0`) or an embedded message/rfc822.
    Message,
    /// A multipart container.
    Multipart,
    /// A text part (text/plain and other text types).
    Text,
    /// A text/html part.
    Html,
    /// Any other leaf: an attachment or inline binary.
    Attachment,
    /// A member of an archive.
    ArchiveMember,
    /// Something only scanned as raw bytes (past a limit, unparsable).
    Raw,
}

/// One node of the message tree, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub part_path: String,
    pub kind: PartKind,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub disposition: Option<String>,
    /// Bytes as found in the message (still transfer-encoded), or the
    /// compressed size of an archive member.
    pub size: u64,
    /// Bytes after decoding, when the part was decoded.
    pub decoded_size: Option<u64>,
}

/// The serializable digest of a [`Walk`], for the report, `scan --json` and
/// the golden test fixtures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkSummary {
    pub parts: Vec<PartInfo>,
    pub targets: Vec<TargetSummary>,
    pub coverage: Coverage,
    pub anomalies: Vec<Anomaly>,
}

/// One target, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSummary {
    pub kind: TargetKind,
    pub part_path: String,
    pub bytes: u64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_text: Option<String>,
    /// The start of the content, for targets that are text (header values,
    /// names, URLs, body text); line ends shown as `\n`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// Whether everything was inspected, and if not, what was not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub complete: bool,
    pub uninspectable: Vec<Uninspectable>,
}

/// Characters of text shown in a target preview.
const PREVIEW_CHARS: usize = 80;

fn preview(kind: TargetKind, data: &[u8]) -> Option<String> {
    let textual = !matches!(
        kind,
        TargetKind::Attachment | TargetKind::ArchiveMember | TargetKind::RawPart | TargetKind::RawHeaders
    );
    if !textual {
        return None;
    }
    let text = crate::inspect::text::decode::lossy_text(data).replace("\r\n", "\n");
    Some(match text.char_indices().nth(PREVIEW_CHARS) {
        Some((i, _)) => text[..i].to_string(),
        None => text,
    })
}

impl Walk<'_> {
    /// The serializable summary of this walk.
    pub fn summary(&self) -> WalkSummary {
        WalkSummary {
            parts: self.parts.clone(),
            targets: self
                .targets
                .iter()
                .map(|t| TargetSummary {
                    kind: t.kind,
                    part_path: t.part_path.clone(),
                    bytes: t.data.len() as u64,
                    sha256: crate::hex::sha256(&t.data),
                    filename: t.filename.clone(),
                    header_name: t.header_name.clone(),
                    link_text: t.link_text.clone(),
                    preview: preview(t.kind, &t.data),
                })
                .collect(),
            coverage: Coverage {
                complete: self.uninspectable.is_empty(),
                uninspectable: self.uninspectable.clone(),
            },
            anomalies: self.anomalies.clone(),
        }
    }

    /// True when every part was inspected.
    pub fn is_complete(&self) -> bool {
        self.uninspectable.is_empty()
    }
}

/// Walks raw message bytes (header block + body, CRLF or LF line ends) into
/// inspection targets, the list of what could not be inspected, and
/// anomalies. Never fails and never panics: whatever goes wrong becomes an
/// `Uninspectable` entry and the raw bytes are scanned instead. No deadline:
/// for tools and tests; the engine uses [`walk_until`].
pub fn walk<'a>(raw: &'a [u8], limits: &Limits) -> Walk<'a> {
    walk_until(raw, limits, Deadline::never())
}

/// [`walk`] inside a deadline: past it, the part being walked is recorded
/// `scan-timeout` (with those after it) and the walk returns what it has.
pub fn walk_until<'a>(raw: &'a [u8], limits: &Limits, deadline: Deadline) -> Walk<'a> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut walker = Walker::new(raw, limits, deadline);
        walker.walk_top(raw);
        walker.out
    }));
    match result {
        Ok(walk) => walk,
        Err(_) => {
            // Last resort: a bug in the walk must not become a bypass.
            let mut walker = Walker::new(raw, limits, deadline);
            walker.anomaly("walk-panic", "0", "the MIME walk failed unexpectedly".to_string());
            walker.record(
                Reason::ParseError,
                "1",
                "the message could not be walked; scanned raw".to_string(),
            );
            walker.raw_fallback(Buf::Input(raw), "1", 1);
            walker.out
        }
    }
}

/// A buffer the walk reads from: the caller's message bytes (targets can
/// borrow from it), or bytes decoded during the walk (targets copy).
#[derive(Debug, Clone, Copy)]
pub(in crate::inspect) enum Buf<'a, 'b> {
    Input(&'a [u8]),
    Local(&'b [u8]),
}

impl<'a: 'b, 'b> Buf<'a, 'b> {
    pub fn bytes(self) -> &'b [u8] {
        match self {
            Buf::Input(b) => b,
            Buf::Local(b) => b,
        }
    }

    /// The sub-buffer `range`, clamped to the buffer.
    pub fn sub(self, range: Range<usize>) -> Buf<'a, 'b> {
        let range = clamp(range, self.bytes().len());
        match self {
            Buf::Input(b) => Buf::Input(&b[range]),
            Buf::Local(b) => Buf::Local(&b[range]),
        }
    }

    /// `range` as a target buffer: borrowed from the input when possible.
    pub fn cow(self, range: Range<usize>) -> Cow<'a, [u8]> {
        let range = clamp(range, self.bytes().len());
        match self {
            Buf::Input(b) => Cow::Borrowed(&b[range]),
            Buf::Local(b) => Cow::Owned(b[range].to_vec()),
        }
    }

    /// Turns bytes derived from this buffer into a target buffer, borrowing
    /// when `data` is an unmodified slice of the input.
    pub fn lift(self, data: Cow<'_, [u8]>) -> Cow<'a, [u8]> {
        match data {
            Cow::Owned(v) => Cow::Owned(v),
            Cow::Borrowed(slice) => {
                let base = self.bytes();
                let start = (slice.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
                if start <= base.len() && slice.len() <= base.len() - start {
                    self.cow(start..start + slice.len())
                } else {
                    Cow::Owned(slice.to_vec())
                }
            }
        }
    }
}

/// Clamps a range to `0..len` (start never past end).
pub(in crate::inspect) fn clamp(range: Range<usize>, len: usize) -> Range<usize> {
    let end = range.end.min(len);
    range.start.min(end)..end
}

/// The proper ancestors of `path` in the part tree: `0` (of every other path) and its
/// prefixes ending before a `.` or `!`.
pub(in crate::inspect) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let top = (path != "0").then_some("0");
    top.into_iter()
        .chain(path.char_indices().filter(|&(_, c)| matches!(c, '.' | '!')).map(move |(i, _)| &path[..i]))
}

/// Path of child `index` (1-based) of the node at `path`; the top-level
/// message `0` numbers its children `1`, `2`, … like IMAP.
pub(in crate::inspect) fn child_path(path: &str, index: usize) -> String {
    if path == "0" { index.to_string() } else { format!("{path}.{index}") }
}

/// Whether `bytes` uses CRLF line ends (judged by its first line end).
pub(in crate::inspect) fn uses_crlf(bytes: &[u8]) -> bool {
    memchr::memchr(b'\n', bytes).is_some_and(|i| i > 0 && bytes[i - 1] == b'\r')
}

/// Context of a leaf whose bytes become targets.
#[derive(Debug, Clone)]
pub(in crate::inspect) struct Place {
    pub path: String,
    pub depth: u32,
    pub in_archive: bool,
    /// Archive nesting level of the content (0 outside archives).
    pub archive_depth: u32,
}

/// The shared state of one walk.
pub(in crate::inspect) struct Walker<'a, 'l> {
    pub limits: &'l Limits,
    /// The message uses CRLF line ends (so a lone LF is an anomaly).
    pub crlf: bool,
    pub out: Walk<'a>,
    parts: u32,
    parts_exhausted: bool,
    total: u64,
    total_exhausted: bool,
    urls: u32,
    urls_exhausted: bool,
    pub members: u32,
    pub members_exhausted: bool,
    pub deadline: Deadline,
    timed_out: bool,
    /// What `out.uninspectable` holds, for duplicate checks.
    recorded: HashSet<(Reason, String, String)>,
    /// Parts recorded as end-to-end encrypted.
    encrypted: HashSet<(Reason, String)>,
    /// Password key-derivation rounds the message may still spend (Office files).
    pub kdf_budget: u64,
}

impl<'a, 'l> Walker<'a, 'l> {
    pub fn new(raw: &[u8], limits: &'l Limits, deadline: Deadline) -> Self {
        let crlf = uses_crlf(raw);
        Walker {
            limits,
            crlf,
            out: Walk::default(),
            parts: 0,
            parts_exhausted: false,
            total: 0,
            total_exhausted: false,
            urls: 0,
            urls_exhausted: false,
            members: 0,
            members_exhausted: false,
            deadline,
            timed_out: false,
            recorded: HashSet::new(),
            encrypted: HashSet::new(),
            kdf_budget: crate::inspect::formats::office::KDF_BUDGET,
        }
    }

    /// Whether the message's deadline has passed, asked by `stage` before a unit of work on
    /// `path`. The first time it has, `scan-timeout` is recorded there for this part and
    /// everything after it; from then on every unit of work is skipped.
    pub fn out_of_time(&mut self, stage: Stage, path: &str) -> bool {
        if self.timed_out {
            return true;
        }
        if self.deadline.passed(stage) {
            self.timed_out = true;
            self.record(
                Reason::ScanTimeout,
                path,
                format!(
                    "inspect.scan_timeout passed during {stage}; this part and those after it were not (fully) inspected"
                ),
            );
            return true;
        }
        false
    }

    /// Records `path` as uninspected. Duplicates and end-to-end encryption inside what is
    /// already recorded as such are dropped by set look-ups (the ancestors of a path are its
    /// prefixes at `.` and `!`), so a message with thousands of entries stays linear.
    pub fn record(&mut self, reason: Reason, path: &str, detail: String) {
        // Encrypted content inside something already recorded as encrypted
        // (the ciphertext part of a PGP/MIME multipart) adds nothing.
        let end_to_end = matches!(reason, Reason::PgpEncrypted | Reason::SmimeEncrypted);
        if end_to_end {
            if ancestors(path).any(|a| self.encrypted.contains(&(reason, a.to_string()))) {
                return;
            }
            self.encrypted.insert((reason, path.to_string()));
        }
        if self.recorded.insert((reason, path.to_string(), detail.clone())) {
            self.out.uninspectable.push(Uninspectable { reason, part_path: path.to_string(), detail });
        }
    }

    pub fn anomaly(&mut self, code: &str, path: &str, detail: String) {
        self.out.anomalies.push(Anomaly { code: code.to_string(), part_path: path.to_string(), detail });
    }

    pub fn part_info(&mut self, info: PartInfo) {
        self.out.parts.push(info);
    }

    /// Counts one more MIME part; false (and `over-parts` recorded once)
    /// when the limit is reached.
    pub fn admit_part(&mut self, path: &str) -> bool {
        if self.parts >= self.limits.max_parts {
            if !self.parts_exhausted {
                self.parts_exhausted = true;
                self.record(
                    Reason::OverParts,
                    path,
                    format!(
                        "more than {} parts; this part and those after it are scanned raw only",
                        self.limits.max_parts
                    ),
                );
            }
            return false;
        }
        self.parts += 1;
        true
    }

    /// Whether the part limit has been reached (and recorded).
    pub fn parts_exhausted(&self) -> bool {
        self.parts_exhausted
    }

    /// Counts one more archive member across the message.
    pub fn admit_member(&mut self, path: &str) -> bool {
        if self.members >= self.limits.max_archive_members {
            if !self.members_exhausted {
                self.members_exhausted = true;
                self.record(
                    Reason::OverParts,
                    path,
                    format!(
                        "more than {} archive members in the message; the rest is not opened",
                        self.limits.max_archive_members
                    ),
                );
            }
            return false;
        }
        self.members += 1;
        true
    }

    /// Bytes a part may still decode to: the per-part cap or what is left
    /// of the message budget, whichever is smaller.
    pub fn part_cap(&self) -> usize {
        let left = self.limits.max_total_bytes.saturating_sub(self.total);
        usize::try_from(left).unwrap_or(usize::MAX).min(self.limits.part_bytes())
    }

    /// Charges `n` decoded bytes to the message budget.
    pub fn charge(&mut self, n: usize) {
        self.total = self.total.saturating_add(n as u64);
    }

    /// Records that a decode stopped at `cap` bytes (which budget did it).
    pub fn record_truncation(&mut self, path: &str, cap: usize) {
        if cap >= self.limits.part_bytes() {
            self.record(
                Reason::OverSize,
                path,
                format!(
                    "larger than max_part_bytes ({}); the first {cap} bytes were scanned",
                    self.limits.max_part_bytes
                ),
            );
        } else {
            if !self.total_exhausted {
                self.total_exhausted = true;
            }
            self.record(
                Reason::OverSize,
                path,
                format!(
                    "max_total_bytes ({}) reached; the first {cap} bytes were scanned",
                    self.limits.max_total_bytes
                ),
            );
        }
    }

    /// URL targets the message may still take.
    pub fn urls_left(&self) -> usize {
        self.limits.max_urls.saturating_sub(self.urls) as usize
    }

    /// Admits one more URL target.
    pub fn admit_url(&mut self, path: &str) -> bool {
        if self.urls >= self.limits.max_urls {
            if !self.urls_exhausted {
                self.urls_exhausted = true;
                self.anomaly(
                    "too-many-urls",
                    path,
                    format!("more than {} URLs; the rest are only scanned as text", self.limits.max_urls),
                );
            }
            return false;
        }
        self.urls += 1;
        true
    }

    /// A target with the common fields filled in.
    pub fn target(&self, kind: TargetKind, place: &Place, data: Cow<'a, [u8]>) -> Target<'a> {
        Target {
            kind,
            part_path: place.path.clone(),
            data,
            content_type: None,
            filename: None,
            depth: place.depth,
            in_archive: place.in_archive,
            header_name: None,
            link_text: None,
        }
    }

    /// Scans `buf` as raw bytes (capped by the budget) because it could not
    /// be walked; records nothing by itself except a truncation.
    pub fn raw_fallback(&mut self, buf: Buf<'a, '_>, path: &str, depth: u32) {
        let cap = self.part_cap();
        let len = buf.bytes().len();
        let take = len.min(cap);
        if take < len {
            self.record_truncation(path, cap);
        }
        self.charge(take);
        let place = Place { path: path.to_string(), depth, in_archive: false, archive_depth: 0 };
        let target = self.target(TargetKind::RawPart, &place, buf.cow(0..take));
        self.out.targets.push(target);
        self.part_info(PartInfo {
            part_path: path.to_string(),
            kind: PartKind::Raw,
            content_type: None,
            filename: None,
            disposition: None,
            size: len as u64,
            decoded_size: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths_follow_imap_numbering() {
        assert_eq!(child_path("0", 1), "1");
        assert_eq!(child_path("2", 3), "2.3");
        assert_eq!(child_path("1.2", 1), "1.2.1");
    }

    #[test]
    fn lift_borrows_slices_of_the_input_and_copies_others() {
        let input = b"hello world".as_slice();
        let buf = Buf::Input(input);
        let lifted = buf.lift(Cow::Borrowed(&input[6..]));
        assert!(matches!(lifted, Cow::Borrowed(b"world")));
        let other = b"elsewhere".to_vec();
        assert!(matches!(buf.lift(Cow::Borrowed(&other[..])), Cow::Owned(_)));
    }

    #[test]
    fn ancestry_follows_path_separators() {
        assert_eq!(ancestors("1.2").collect::<Vec<_>>(), ["0", "1"]);
        assert_eq!(ancestors("1.2!a").collect::<Vec<_>>(), ["0", "1", "1.2"]);
        assert_eq!(ancestors("12").collect::<Vec<_>>(), ["0"]);
        assert_eq!(ancestors("0").count(), 0);
    }

    #[test]
    fn ranges_are_clamped() {
        assert_eq!(clamp(5..10, 7), 5..7);
        assert_eq!(clamp(9..10, 7), 7..7);
    }
}
