//! The message tree. `structure` gives the MIME structure (boundaries,
//! nesting, header offsets) by mail-parser's splitting rules; everything
//! else is read from the raw bytes here, so that decoding is capped and
//! nothing a parser would hide or normalise is lost.
//!
//! Content-Transfer-Encoding plays no part in the split. Decoding while
//! splitting means decoding a base64 message/rfc822 part and splitting it by
//! a recursive call (mail-parser's way, whose result is deep-copied level by
//! level: a few thousand nested messages inside one encoded part cost
//! quadratic time and then overflow the stack, which no `catch_unwind` can
//! stop). Here the split never recurses; an encoded embedded message is
//! decoded here and walked with our own depth limit. The price is that the
//! split would read such a part's base64 text as an unencoded message and
//! misplace the boundaries after it, so the part's Content-Type is
//! neutralised in a copy of the buffer (same length, same offsets) and the
//! copy is split again.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use mail_parser::parsers::MessageStream;
use mail_parser::{HeaderName, HeaderValue, MessageParser};

use crate::inspect::coverage::Reason;
use crate::inspect::deadline::Stage;
use crate::inspect::target::TargetKind;
use crate::inspect::text::decode::{TransferEncoding, lossy_text, to_utf8, transfer_decode};
use crate::inspect::text::html;
use crate::inspect::text::urls::find_urls;
use crate::inspect::walk::headers::{
    HeaderBlock, bare_line_ends, parse_block, tame_mime_fields, tame_mime_value,
};
use crate::inspect::walk::payload::Declared;
use crate::inspect::walk::structure::{Body, Tree, TreePart, split};
use crate::inspect::walk::walker::{Buf, PartInfo, PartKind, Place, Walker, child_path, clamp, uses_crlf};

pub(in crate::inspect) static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_content_type(HeaderName::ContentType)
        .header_content_type(HeaderName::ContentDisposition)
        .ignore_header(HeaderName::ContentTransferEncoding)
});

/// Most re-parses spent neutralising encoded embedded messages in one
/// buffer; each costs one parse of the buffer. Real mail has one or none.
const MAX_REPARSES: usize = 8;

/// Most header fields turned into `Header` targets per header block; the
/// raw block is still scanned whole.
const MAX_HEADER_TARGETS: usize = 1000;

/// Embedded messages nested deeper than this are reported as an anomaly
/// (forwards of forwards rarely go past three).
const USUAL_MESSAGE_NESTING: u32 = 3;

/// Embedded-message content types (each can start a nested message for the
/// parser). A pure literal set, so the search runs at memory speed.
static MESSAGE_MARKER: LazyLock<regex::bytes::Regex> =
    LazyLock::new(|| regex::bytes::Regex::new(r"(?i-u)rfc822|global").expect("marker pattern is valid"));

/// Where to stop handing the buffer to the parser: at the line of the
/// `max`-th part marker (a delimiter line starting with `--`, or an
/// embedded-message content type), or `None` when there are fewer. The
/// parser keeps every part it finds in memory (a hundred thousand nested
/// messages cost it over 100 MB), so a message with far more structure than
/// `max_parts` is parsed only up to here and the rest is scanned raw.
fn parse_cut(bytes: &[u8], max: usize) -> Option<usize> {
    let mut delimiters = bytes
        .starts_with(b"--")
        .then_some(0)
        .into_iter()
        .chain(memchr::memmem::find_iter(bytes, b"\n--").map(|i| i + 1))
        .peekable();
    let mut messages = MESSAGE_MARKER.find_iter(bytes).map(|m| m.start()).peekable();
    let mut seen = 0;
    loop {
        let next = match (delimiters.peek().copied(), messages.peek().copied()) {
            (Some(d), Some(m)) if d <= m => delimiters.next(),
            (Some(_), Some(_)) => messages.next(),
            (Some(_), None) => delimiters.next(),
            (None, Some(_)) => messages.next(),
            (None, None) => return None,
        }?;
        if seen == max {
            let line_start = memchr::memrchr(b'\n', &bytes[..next]).map_or(0, |i| i + 1);
            return Some(line_start);
        }
        seen += 1;
    }
}

/// What parsing a buffer gave.
enum Parsed<'m, 'b> {
    Message(&'m Tree<'b>),
    /// Not even one header field.
    NoHeaders,
    /// The parser panicked.
    Panicked,
}

fn parse_guarded(data: &[u8]) -> Result<Option<Tree<'_>>, ()> {
    catch_unwind(AssertUnwindSafe(|| split(&PARSER, data))).map_err(|_| ())
}

/// Parses `data` and hands the result to `f`, re-parsing with encoded
/// embedded messages neutralised first (see the module documentation).
fn with_parsed<R>(data: &[u8], f: impl FnOnce(Parsed<'_, '_>) -> R) -> R {
    // The parser reads Content-Type and Content-Disposition values; pathological ones are
    // tamed first (same length, so every offset stays true of `data`).
    let mut patched: Option<Vec<u8>> = tame_mime_fields(data);
    let mut round = 0;
    loop {
        let bytes = patched.as_deref().unwrap_or(data);
        let message = match parse_guarded(bytes) {
            Err(()) => return f(Parsed::Panicked),
            Ok(None) => return f(Parsed::NoHeaders),
            Ok(Some(message)) => message,
        };
        let fix = if round < MAX_REPARSES { encoded_message_fix(&message, bytes) } else { None };
        match fix {
            None => {
                let result = f(Parsed::Message(&message));
                drop(message);
                return result;
            }
            Some(positions) => {
                drop(message);
                let copy = patched.get_or_insert_with(|| data.to_vec());
                for at in positions {
                    if let Some(b) = copy.get_mut(at) {
                        *b = b'x';
                    }
                }
                round += 1;
            }
        }
    }
}

/// The raw value of the last `name` header of a part (the one the parser
/// uses), as offsets into the parsed buffer.
fn last_header_range(part: &TreePart<'_>, name: &HeaderName<'_>) -> Option<(usize, usize)> {
    part.headers
        .iter()
        .rev()
        .find(|h| &h.name == name)
        .map(|h| (h.offset_start as usize, h.offset_end as usize))
}

/// Whether the parser treats `part` as an embedded message: Content-Type
/// message/rfc822 or message/global, or no Content-Type inside a digest.
fn parser_sees_message(part: &TreePart<'_>, parent_is_digest: bool) -> bool {
    match part.headers.iter().rev().find(|h| h.name == HeaderName::ContentType).map(|h| &h.value) {
        Some(HeaderValue::ContentType(ct)) => {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("rfc822") || s.eq_ignore_ascii_case("global"))
        }
        Some(_) => false,
        None => parent_is_digest,
    }
}

fn is_digest(part: &TreePart<'_>) -> bool {
    part.headers
        .iter()
        .rev()
        .find(|h| h.name == HeaderName::ContentType)
        .and_then(|h| match &h.value {
            HeaderValue::ContentType(ct) => ct.subtype(),
            _ => None,
        })
        .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
}

/// Byte positions to overwrite so that the first embedded message with a
/// base64/quoted-printable body stops being one for the parser, or `None`
/// when there is none (or it cannot be neutralised). Such a part may come
/// back from the parser as a (garbled) nested message or, when the parser
/// gave up on it, as text running to the end of the buffer.
fn encoded_message_fix(message: &Tree<'_>, bytes: &[u8]) -> Option<Vec<usize>> {
    // (tree, part, parent part, whether the parent is a digest: judged once per parent, not
    // once per child, as its header list can be long).
    let mut stack: Vec<(&Tree<'_>, usize, Option<usize>, bool)> = vec![(message, 0, None, false)];
    let mut seen = HashSet::new();
    while let Some((msg, id, parent, in_digest)) = stack.pop() {
        let part = msg.parts.get(id)?;
        if !seen.insert((msg as *const Tree<'_> as usize, id)) {
            continue;
        }
        let parent_part = parent.and_then(|p| msg.parts.get(p));
        if parser_sees_message(part, in_digest) {
            let encoded = last_header_range(part, &HeaderName::ContentTransferEncoding)
                .and_then(|(s, e)| bytes.get(s..e))
                .map(|v| TransferEncoding::from_header(Some(&String::from_utf8_lossy(v))))
                .is_some_and(|te| matches!(te, TransferEncoding::Base64 | TransferEncoding::QuotedPrintable));
            if encoded {
                // Neutralise "message" in its Content-Type, or "digest" in
                // the parent's when the part relies on the digest default.
                let (range, word) = match last_header_range(part, &HeaderName::ContentType) {
                    Some(range) => (range, b"message".as_slice()),
                    None => {
                        (last_header_range(parent_part?, &HeaderName::ContentType)?, b"digest".as_slice())
                    }
                };
                let value = bytes.get(range.0..range.1)?;
                let positions: Vec<usize> = value
                    .windows(word.len())
                    .enumerate()
                    .filter(|(_, w)| w.eq_ignore_ascii_case(word))
                    .map(|(i, _)| range.0 + i)
                    .collect();
                return (!positions.is_empty()).then_some(positions);
            }
        }
        match &part.body {
            Body::Multipart(children) => {
                let digest = is_digest(part);
                for &child in children.iter().rev() {
                    stack.push((msg, child as usize, Some(id), digest));
                }
            }
            Body::Message(inner) => stack.push((inner, 0, None, false)),
            _ => {}
        }
    }
    None
}

/// A parsed Content-Type or Content-Disposition value.
#[derive(Debug, Clone, Default)]
pub(in crate::inspect) struct MimeValue {
    /// `type/subtype` (or the disposition type), lower case.
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MimeValue {
    fn parse(raw: &[u8]) -> Option<MimeValue> {
        let mut buf = Vec::with_capacity(raw.len() + 1);
        buf.extend_from_slice(raw);
        buf.push(b'\n');
        tame_mime_value(&mut buf);
        let HeaderValue::ContentType(ct) = MessageStream::new(&buf).parse_content_type() else {
            return None;
        };
        let mut essence = ct.ctype().trim().to_ascii_lowercase();
        if let Some(sub) = ct.subtype() {
            essence.push('/');
            essence.push_str(&sub.trim().to_ascii_lowercase());
        }
        let params = ct
            .attributes()
            .unwrap_or_default()
            .iter()
            .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
            .collect();
        Some(MimeValue { essence, params })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn top(&self) -> &str {
        self.essence.split('/').next().unwrap_or("")
    }
}

/// What a part's header block says about it.
#[derive(Debug, Default)]
struct PartMeta {
    content_type: Option<MimeValue>,
    disposition: Option<MimeValue>,
    transfer_encoding: Option<String>,
    /// Inside a multipart/digest, where a part without Content-Type is a
    /// message.
    in_digest: bool,
}

impl PartMeta {
    fn from_block(block: &HeaderBlock<'_>, in_digest: bool) -> PartMeta {
        let last = |name: &str| block.fields.iter().rev().find(|f| f.is(name));
        PartMeta {
            content_type: last("Content-Type").and_then(|f| MimeValue::parse(f.value)),
            disposition: last("Content-Disposition").and_then(|f| MimeValue::parse(f.value)),
            transfer_encoding: last("Content-Transfer-Encoding")
                .map(|f| String::from_utf8_lossy(f.value).trim().to_string()),
            in_digest,
        }
    }

    fn essence(&self) -> Option<&str> {
        self.content_type.as_ref().map(|c| c.essence.as_str())
    }

    /// The type the part is treated as (RFC 2045 defaults applied).
    fn effective_type(&self) -> &str {
        match self.essence() {
            Some(e) if !e.is_empty() => e,
            _ if self.in_digest => "message/rfc822",
            _ => "text/plain",
        }
    }

    fn is_message(&self) -> bool {
        matches!(self.effective_type(), "message/rfc822" | "message/global")
    }

    fn filename(&self) -> Option<String> {
        clean_name(self.disposition.as_ref()?.param("filename"))
    }

    fn type_name(&self) -> Option<String> {
        clean_name(self.content_type.as_ref()?.param("name"))
    }

    fn is_attachment_disposition(&self) -> bool {
        self.disposition.as_ref().is_some_and(|d| d.essence == "attachment")
    }
}

fn clean_name(name: Option<&str>) -> Option<String> {
    let name = name?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Where in the tree a node sits.
enum Node<'m, 'x> {
    /// A message's header block and body: the top level or an embedded one.
    Root { msg: &'m Tree<'x>, path: String, depth: u32, nesting: u32 },
    /// A MIME part of `msg`.
    Part { msg: &'m Tree<'x>, id: usize, path: String, depth: u32, nesting: u32, in_digest: bool },
}

impl<'a> Walker<'a, '_> {
    /// Walks the top-level message.
    pub(in crate::inspect) fn walk_top(&mut self, raw: &'a [u8]) {
        self.part_info(PartInfo {
            part_path: "0".to_string(),
            kind: PartKind::Message,
            content_type: None,
            filename: None,
            disposition: None,
            size: raw.len() as u64,
            decoded_size: None,
        });
        self.walk_message(Buf::Input(raw), "0", 0, 0, false);
    }

    /// Walks a message (or MIME entity) held in `buf` whose node is `path`.
    pub(in crate::inspect) fn walk_message(
        &mut self,
        buf: Buf<'a, '_>,
        path: &str,
        depth: u32,
        nesting: u32,
        in_archive: bool,
    ) {
        // Decoded content has its own line ends, whatever the message uses.
        let outer_crlf = self.crlf;
        if let Buf::Local(bytes) = buf {
            self.crlf = uses_crlf(bytes);
        }
        let len = buf.bytes().len();
        let max_markers = (self.limits.max_parts as usize).saturating_mul(2).saturating_add(64);
        let cut = parse_cut(buf.bytes(), max_markers).unwrap_or(len);
        with_parsed(&buf.bytes()[..cut], |parsed| match parsed {
            Parsed::Message(message) => self.walk_tree(buf, message, path, depth, nesting, in_archive),
            Parsed::NoHeaders if buf.bytes().iter().all(u8::is_ascii_whitespace) => {
                let what = if path == "0" { "the message is empty" } else { "embedded message is empty" };
                self.anomaly("empty-message", path, what.to_string());
            }
            Parsed::NoHeaders => {
                self.anomaly("no-headers", path, "no header block could be parsed".to_string());
                let body = child_path(path, 1);
                self.record(
                    Reason::ParseError,
                    &body,
                    "not a MIME message; the bytes were scanned raw".to_string(),
                );
                self.raw_fallback(buf, &body, depth + 1);
            }
            Parsed::Panicked => {
                self.anomaly("mime-parser-panic", path, "the MIME parser failed on this message".to_string());
                let body = child_path(path, 1);
                self.record(
                    Reason::ParseError,
                    &body,
                    "the MIME parser failed; the bytes were scanned raw".to_string(),
                );
                self.raw_fallback(buf, &body, depth + 1);
            }
        });
        if cut < len && !self.parts_exhausted() {
            self.record(
                Reason::OverParts,
                path,
                format!(
                    "more than {max_markers} MIME boundaries or embedded messages; the rest is scanned raw"
                ),
            );
            self.raw_fallback(buf.sub(cut..len), path, depth + 1);
        }
        self.crlf = outer_crlf;
    }

    fn walk_tree(
        &mut self,
        buf: Buf<'a, '_>,
        message: &Tree<'_>,
        path: &str,
        depth: u32,
        nesting: u32,
        in_archive: bool,
    ) {
        let len = buf.bytes().len();
        if message.searches_exhausted {
            self.record(
                Reason::ParseError,
                path,
                "MIME boundary searches crossed the message many times over (hostile structure); later parts may be read as part of the one before them".to_string(),
            );
        }
        let mut stack = vec![Node::Root { msg: message, path: path.to_string(), depth, nesting }];
        let mut seen = HashSet::new();
        while let Some(node) = stack.pop() {
            let (Node::Root { path: at, .. } | Node::Part { path: at, .. }) = &node;
            if self.out_of_time(Stage::Mime, at) {
                break;
            }
            match node {
                Node::Root { msg, path, depth, nesting } => {
                    let Some(root) = msg.parts.first() else {
                        continue;
                    };
                    let range = clamp(root.offset_header as usize..root.offset_body as usize, len);
                    let place = Place { path: path.clone(), depth, in_archive, archive_depth: 0 };
                    let block = self.header_targets(buf, range, &place);
                    if path == "0" {
                        self.top_level_checks(&block);
                    }
                    if nesting > USUAL_MESSAGE_NESTING {
                        self.anomaly(
                            "deep-message-nesting",
                            &path,
                            format!("message nested {nesting} levels deep"),
                        );
                    }
                    let multipart = matches!(root.body, Body::Multipart(_));
                    stack.push(Node::Part {
                        msg,
                        id: 0,
                        path: if multipart { path.clone() } else { child_path(&path, 1) },
                        depth: if multipart { depth } else { depth + 1 },
                        nesting,
                        in_digest: false,
                    });
                }
                Node::Part { msg, id, path, depth, nesting, in_digest, .. } => {
                    let Some(part) = msg.parts.get(id) else {
                        continue;
                    };
                    if !seen.insert((msg as *const Tree<'_> as usize, id)) {
                        continue;
                    }
                    let whole = clamp(part.offset_header as usize..part.offset_end as usize, len);
                    if depth > self.limits.depth() {
                        self.record(
                            Reason::OverDepth,
                            &path,
                            format!("nested deeper than max_depth ({}); scanned raw", self.limits.max_depth),
                        );
                        self.raw_fallback(buf.sub(whole), &path, depth);
                        continue;
                    }
                    if !self.admit_part(&path) {
                        // Everything from here on is later in the buffer.
                        self.raw_fallback(buf.sub(whole.start..len), &path, depth);
                        break;
                    }
                    let header_range = clamp(part.offset_header as usize..part.offset_body as usize, len);
                    let block = parse_block(&buf.bytes()[header_range], self.crlf, false);
                    if id != 0 {
                        for (code, detail) in &block.issues {
                            self.anomaly(code, &path, detail.clone());
                        }
                    }
                    let meta = PartMeta::from_block(&block, in_digest);
                    match &part.body {
                        Body::Multipart(children) => {
                            self.multipart(buf, part, &meta, &path);
                            let digest = meta.essence() == Some("multipart/digest");
                            for (index, &child) in children.iter().enumerate().rev() {
                                stack.push(Node::Part {
                                    msg,
                                    id: child as usize,
                                    path: child_path(&path, index + 1),
                                    depth: depth + 1,
                                    nesting,
                                    in_digest: digest,
                                });
                            }
                        }
                        Body::Message(inner) => {
                            self.part_info(PartInfo {
                                part_path: path.clone(),
                                kind: PartKind::Message,
                                content_type: Some(meta.effective_type().to_string()),
                                filename: meta.filename().or_else(|| meta.type_name()),
                                disposition: meta.disposition.as_ref().map(|d| d.essence.clone()),
                                size: (part.offset_end.saturating_sub(part.offset_body)) as u64,
                                decoded_size: None,
                            });
                            stack.push(Node::Root { msg: inner, path, depth, nesting: nesting + 1 });
                        }
                        _ => {
                            let body = clamp(part.offset_body as usize..part.offset_end as usize, len);
                            let place = Place { path, depth, in_archive, archive_depth: 0 };
                            let leaf = Leaf { meta: &meta, body, whole, nesting };
                            self.leaf(buf, &leaf, &place);
                        }
                    }
                }
            }
        }
    }

    /// RawHeaders, Header and Subject targets of a message header block;
    /// returns the parsed block.
    fn header_targets<'b>(
        &mut self,
        buf: Buf<'a, 'b>,
        range: std::ops::Range<usize>,
        place: &Place,
    ) -> HeaderBlock<'b>
    where
        'a: 'b,
    {
        let bytes = &buf.bytes()[range.clone()];
        let block = parse_block(bytes, self.crlf, true);
        for (code, detail) in &block.issues {
            self.anomaly(code, &place.path, detail.clone());
        }
        let raw = self.target(TargetKind::RawHeaders, place, buf.cow(range));
        self.out.targets.push(raw);
        if block.fields.len() > MAX_HEADER_TARGETS {
            self.anomaly(
                "too-many-headers",
                &place.path,
                format!(
                    "{} header fields; the first {MAX_HEADER_TARGETS} are matched one by one",
                    block.fields.len()
                ),
            );
        }
        for field in block.fields.iter().take(MAX_HEADER_TARGETS) {
            if self.out_of_time(Stage::Mime, &place.path) {
                break;
            }
            let value = field.decoded_value_until(self.deadline);
            if field.is("Subject") {
                let subject = self.target(TargetKind::Subject, place, value.clone().into_bytes().into());
                self.out.targets.push(subject);
            }
            let mut target = self.target(TargetKind::Header, place, value.into_bytes().into());
            target.header_name = Some(field.name_lossy());
            self.out.targets.push(target);
        }
        block
    }

    fn top_level_checks(&mut self, block: &HeaderBlock<'_>) {
        if !block.fields.iter().any(|f| f.valid) {
            self.anomaly("no-headers", "0", "the message has no well-formed header field".to_string());
        }
        let multipart = block
            .fields
            .iter()
            .rev()
            .find(|f| f.is("Content-Type"))
            .and_then(|f| MimeValue::parse(f.value))
            .is_some_and(|ct| ct.top() == "multipart");
        if multipart && block.get("MIME-Version").is_none() {
            self.anomaly("missing-mime-version", "0", "multipart message without MIME-Version".to_string());
        }
    }

    fn multipart(&mut self, buf: Buf<'a, '_>, part: &TreePart<'_>, meta: &PartMeta, path: &str) {
        self.part_info(PartInfo {
            part_path: path.to_string(),
            kind: PartKind::Multipart,
            content_type: meta.essence().map(str::to_string),
            filename: None,
            disposition: None,
            size: (part.offset_end.saturating_sub(part.offset_body)) as u64,
            decoded_size: None,
        });
        let Some(ct) = &meta.content_type else {
            return;
        };
        if ct.essence == "multipart/encrypted" {
            let protocol = ct.param("protocol").unwrap_or("").to_ascii_lowercase();
            if protocol.contains("pkcs7") {
                self.record(
                    Reason::SmimeEncrypted,
                    path,
                    format!("multipart/encrypted with protocol {protocol}"),
                );
            } else {
                self.record(
                    Reason::PgpEncrypted,
                    path,
                    format!("multipart/encrypted with protocol {protocol}"),
                );
            }
        }
        if let Some(boundary) = ct.param("boundary") {
            let bytes = buf.bytes();
            let end = (part.offset_end as usize).saturating_add(boundary.len() + 8).min(bytes.len());
            let range = clamp(part.offset_body as usize..end, bytes.len());
            let mut closing = Vec::with_capacity(boundary.len() + 4);
            closing.extend_from_slice(b"--");
            closing.extend_from_slice(boundary.as_bytes());
            closing.extend_from_slice(b"--");
            if memchr::memmem::find(&bytes[range], &closing).is_none() {
                self.anomaly(
                    "missing-closing-boundary",
                    path,
                    format!("no closing boundary \"--{boundary}--\""),
                );
            }
        }
    }

    fn leaf(&mut self, buf: Buf<'a, '_>, leaf: &Leaf<'_>, place: &Place) {
        let meta = leaf.meta;
        let path = place.path.as_str();
        let body = &buf.bytes()[leaf.body.clone()];
        let (bare_cr, bare_lf) = bare_line_ends(body, self.crlf);
        if bare_cr > 0 {
            self.anomaly("bare-cr", path, format!("{bare_cr} CR without LF in the body"));
        }
        if bare_lf > 0 {
            self.anomaly("bare-lf", path, format!("{bare_lf} LF without CR in the body of a CRLF message"));
        }
        let encoding = TransferEncoding::from_header(meta.transfer_encoding.as_deref());
        if encoding == TransferEncoding::Unknown {
            self.anomaly(
                "unknown-transfer-encoding",
                path,
                format!(
                    "Content-Transfer-Encoding \"{}\" is not decoded",
                    meta.transfer_encoding.as_deref().unwrap_or("")
                ),
            );
        }
        let effective = meta.effective_type().to_string();
        if meta.is_message() {
            self.embedded_message(buf, leaf, place, encoding);
            return;
        }
        if effective.starts_with("multipart/") {
            self.anomaly(
                "multipart-without-boundary",
                path,
                format!("{effective} without a usable boundary; read as text"),
            );
        }

        if self.out_of_time(Stage::Decode, path) {
            return;
        }
        let cap = self.part_cap();
        let decoded = transfer_decode(body, encoding, cap);
        if decoded.truncated {
            self.record_truncation(path, cap);
        }
        if decoded.invalid {
            if encoding == TransferEncoding::Base64 {
                self.record(
                    Reason::ParseError,
                    path,
                    "base64 body contains invalid characters; decoded leniently and scanned raw too"
                        .to_string(),
                );
                let raw_cap = self.part_cap().saturating_sub(decoded.data.len());
                let raw_len = body.len().min(raw_cap);
                self.charge(raw_len);
                let raw = self.target(
                    TargetKind::RawPart,
                    place,
                    buf.cow(leaf.body.start..leaf.body.start + raw_len),
                );
                self.out.targets.push(raw);
            } else {
                self.anomaly(
                    "invalid-quoted-printable",
                    path,
                    "quoted-printable body has invalid escapes; kept literally".to_string(),
                );
            }
        }
        let mut data = buf.lift(decoded.data);
        self.charge(data.len());
        let decoded_size = data.len() as u64;

        let filename = meta.filename();
        let type_name = meta.type_name();
        let named = filename.is_some() || type_name.is_some() || meta.is_attachment_disposition();
        let is_html = effective == "text/html";
        let is_text = !is_html
            && (effective.starts_with("text/")
                || effective.starts_with("multipart/")
                || matches!(
                    effective.as_str(),
                    "message/delivery-status"
                        | "message/disposition-notification"
                        | "message/feedback-report"
                ));
        let kind = if is_html {
            PartKind::Html
        } else if is_text {
            PartKind::Text
        } else {
            PartKind::Attachment
        };
        self.part_info(PartInfo {
            part_path: path.to_string(),
            kind,
            content_type: Some(effective.clone()),
            filename: filename.clone().or_else(|| type_name.clone()),
            disposition: meta.disposition.as_ref().map(|d| d.essence.clone()),
            size: leaf.body.len() as u64,
            decoded_size: Some(decoded_size),
        });

        let charset = meta.content_type.as_ref().and_then(|c| c.param("charset"));
        let as_attachment = !(is_html || is_text) || named;
        if is_html || is_text {
            // Copied only when the bytes are an attachment too.
            let text = if as_attachment { data.clone() } else { std::mem::take(&mut data) };
            self.text_targets(text, charset, is_html, place);
        }
        if as_attachment {
            let declared = Declared {
                content_type: Some(effective.as_str()),
                smime_type: meta.content_type.as_ref().and_then(|c| c.param("smime-type")),
                filename: filename.as_deref().or(type_name.as_deref()),
            };
            self.attachment_names(place, filename.as_deref(), type_name.as_deref(), &effective);
            self.attachment(data, place, &declared);
        }
    }

    /// A message/rfc822 (or digest member) that the parser did not nest:
    /// decode it and walk it as a message of its own.
    fn embedded_message(
        &mut self,
        buf: Buf<'a, '_>,
        leaf: &Leaf<'_>,
        place: &Place,
        encoding: TransferEncoding,
    ) {
        let meta = leaf.meta;
        let path = place.path.as_str();
        self.part_info(PartInfo {
            part_path: path.to_string(),
            kind: PartKind::Message,
            content_type: Some(meta.effective_type().to_string()),
            filename: meta.filename().or_else(|| meta.type_name()),
            disposition: meta.disposition.as_ref().map(|d| d.essence.clone()),
            size: leaf.body.len() as u64,
            decoded_size: None,
        });
        match encoding {
            TransferEncoding::Base64 | TransferEncoding::QuotedPrintable => {
                self.anomaly(
                    "encoded-message",
                    path,
                    "embedded message with a base64/quoted-printable body (RFC 2046 forbids it)".to_string(),
                );
                if self.out_of_time(Stage::Decode, path) {
                    return;
                }
                let cap = self.part_cap();
                let decoded = transfer_decode(&buf.bytes()[leaf.body.clone()], encoding, cap);
                if decoded.truncated {
                    self.record_truncation(path, cap);
                }
                if decoded.invalid && encoding == TransferEncoding::Base64 {
                    self.record(
                        Reason::ParseError,
                        path,
                        "base64 body of an embedded message contains invalid characters".to_string(),
                    );
                }
                let data = decoded.data.into_owned();
                // The decoded copy lives through the nested walk: it counts like any decoded
                // part, so twenty nested encodings cannot hold twenty copies unaccounted.
                self.charge(data.len());
                self.walk_message(Buf::Local(&data), path, place.depth, leaf.nesting + 1, place.in_archive);
            }
            _ => {
                // A digest member without Content-Type: its header block is
                // the message's own.
                let range = if meta.content_type.is_none() { leaf.whole.clone() } else { leaf.body.clone() };
                self.walk_message(buf.sub(range), path, place.depth, leaf.nesting + 1, place.in_archive);
            }
        }
    }

    /// Text turned into UTF-8 can be up to three times its raw bytes (a legacy charset's
    /// letters, U+FFFD for each invalid byte), and the raw bytes were all the budget paid for.
    /// The growth is charged too, and cut where the budget ends (at a character boundary,
    /// recorded as over-size), so a part of invalid bytes cannot triple what is kept and
    /// scanned.
    fn charge_growth<'t>(
        &mut self,
        mut text: std::borrow::Cow<'t, [u8]>,
        raw_len: usize,
        path: &str,
    ) -> std::borrow::Cow<'t, [u8]> {
        let grown = text.len().saturating_sub(raw_len);
        if grown == 0 {
            return text;
        }
        let room = self.part_cap();
        let allowed = grown.min(room);
        self.charge(allowed);
        if allowed < grown {
            let mut keep = raw_len + allowed;
            while keep > 0 && text[keep] & 0xC0 == 0x80 {
                keep -= 1;
            }
            text.to_mut().truncate(keep);
            self.record_truncation(path, keep);
        }
        text
    }

    /// Text, HTML, HtmlText and Url targets of a text part.
    fn text_targets(
        &mut self,
        data: std::borrow::Cow<'a, [u8]>,
        charset: Option<&str>,
        is_html: bool,
        place: &Place,
    ) {
        let path = place.path.as_str();
        if self.out_of_time(Stage::Decode, path) {
            return;
        }
        let raw_len = data.len();
        let utf8 = to_utf8(data, charset);
        if utf8.charset_lie {
            self.anomaly(
                "charset-mismatch",
                path,
                format!("declared charset {} but the bytes are not", charset.unwrap_or("")),
            );
        }
        if utf8.unknown_charset {
            self.anomaly(
                "unknown-charset",
                path,
                format!("charset \"{}\" is unknown; read as UTF-8", charset.unwrap_or("")),
            );
        }
        let text_bytes = self.charge_growth(utf8.text, raw_len, path);
        if memchr::memmem::find(&text_bytes, b"-----BEGIN PGP MESSAGE-----").is_some() {
            self.record(Reason::PgpEncrypted, path, "inline PGP message in a text part".to_string());
        }
        let mut seen: HashSet<String> = HashSet::new();
        if is_html {
            // The raw HTML is a target whatever happens next.
            let max_links = self.urls_left().saturating_add(1);
            let scan = (!self.out_of_time(Stage::Html, path))
                .then(|| html::scan(&lossy_text(&text_bytes), max_links));
            let html_target = self.target(TargetKind::Html, place, text_bytes);
            self.out.targets.push(html_target);
            let Some(scan) = scan else { return };
            self.charge(scan.text.len());
            let anchors = scan.links.iter().filter(|l| l.text.is_some());
            let others = scan.links.iter().filter(|l| l.text.is_none());
            for link in anchors.chain(others) {
                if self.out_of_time(Stage::Urls, path) {
                    break;
                }
                self.url_target(&link.url, link.text.clone(), place, &mut seen);
            }
            for url in find_urls(&scan.text) {
                if self.out_of_time(Stage::Urls, path) {
                    break;
                }
                self.url_target(url, None, place, &mut seen);
            }
            let text = self.target(TargetKind::HtmlText, place, scan.text.into_bytes().into());
            self.out.targets.push(text);
        } else {
            // The text is UTF-8 already (see `to_utf8`), so this borrows; the URLs are cut
            // out before the bytes move into their target.
            // Distinct URLs, no more than the message may still take (and one more, so the
            // limit is recorded): a text of millions of URLs costs no more than its scan.
            let room = self.urls_left().saturating_add(1);
            let mut urls: Vec<String> = Vec::new();
            let mut distinct: HashSet<&str> = HashSet::new();
            let text = lossy_text(&text_bytes);
            for url in find_urls(&text) {
                if urls.len() >= room || self.out_of_time(Stage::Urls, path) {
                    break;
                }
                if distinct.insert(url) {
                    urls.push(url.to_string());
                }
            }
            let target = self.target(TargetKind::Text, place, text_bytes);
            self.out.targets.push(target);
            for url in &urls {
                self.url_target(url, None, place, &mut seen);
            }
        }
    }

    fn url_target(
        &mut self,
        url: &str,
        link_text: Option<String>,
        place: &Place,
        seen: &mut HashSet<String>,
    ) {
        if seen.contains(url) || !self.admit_url(&place.path) {
            return;
        }
        seen.insert(url.to_string());
        let mut target = self.target(TargetKind::Url, place, url.as_bytes().to_vec().into());
        target.link_text = link_text;
        self.out.targets.push(target);
    }

    /// AttachmentName and AttachmentType targets of a part.
    fn attachment_names(
        &mut self,
        place: &Place,
        filename: Option<&str>,
        type_name: Option<&str>,
        content_type: &str,
    ) {
        let mut names = Vec::new();
        names.extend(filename);
        if let Some(name) = type_name
            && filename != Some(name)
        {
            if let Some(filename) = filename {
                self.anomaly(
                    "filename-mismatch",
                    &place.path,
                    format!("Content-Disposition filename \"{filename}\" but Content-Type name \"{name}\""),
                );
            }
            names.push(name);
        }
        for name in names {
            let mut target = self.target(TargetKind::AttachmentName, place, name.as_bytes().to_vec().into());
            target.filename = Some(name.to_string());
            target.content_type = Some(content_type.to_string());
            self.out.targets.push(target);
        }
        let mut target =
            self.target(TargetKind::AttachmentType, place, content_type.as_bytes().to_vec().into());
        target.filename = filename.or(type_name).map(str::to_string);
        target.content_type = Some(content_type.to_string());
        self.out.targets.push(target);
    }
}

/// A leaf part's ranges in its buffer.
struct Leaf<'m> {
    meta: &'m PartMeta,
    body: std::ops::Range<usize>,
    whole: std::ops::Range<usize>,
    nesting: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_types(raw: &[u8]) -> Vec<String> {
        with_parsed(raw, |parsed| match parsed {
            Parsed::Message(m) => m
                .parts
                .iter()
                .map(|p| match &p.body {
                    Body::Multipart(_) => "multipart".to_string(),
                    Body::Message(_) => "message".to_string(),
                    Body::Leaf => "leaf".to_string(),
                })
                .collect(),
            _ => vec![],
        })
    }

    #[test]
    fn base64_embedded_message_does_not_swallow_its_siblings() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\
Content-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKaGkK\n--b\nContent-Type: application/x-evil\n\nPAYLOAD\n--b--\n";
        assert_eq!(parse_types(raw), ["multipart", "leaf", "leaf"]);
    }

    #[test]
    fn base64_embedded_message_as_last_part_keeps_its_boundary() {
        let raw =
            b"Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\
Content-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKaGkK\n--b--\n";
        let ends = with_parsed(raw, |parsed| match parsed {
            Parsed::Message(m) => m.parts.iter().map(|p| p.offset_end as usize).collect::<Vec<_>>(),
            _ => vec![],
        });
        assert_eq!(&raw[..ends[1]], &raw[..raw.len() - 7]);
    }

    #[test]
    fn deeply_nested_messages_are_dropped_without_recursion() {
        let mut raw = Vec::new();
        for _ in 0..200_000 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\n\n");
        }
        raw.extend_from_slice(b"Subject: x\n\nhi\n");
        let parts = parse_types(&raw);
        assert_eq!(parts, ["message"]);
    }

    #[test]
    fn parse_stops_after_the_allowed_number_of_part_markers() {
        let raw = b"Subject: x\n\n--a\nmessage/rfc822\nthe GLOBAL view\n--b\n";
        assert_eq!(parse_cut(raw, 3), Some(raw.len() - 4));
        assert_eq!(parse_cut(raw, 2), Some(raw.len() - 20));
        assert_eq!(parse_cut(raw, 4), None);
    }

    #[test]
    fn mime_values_parse_rfc2231_and_encoded_words() {
        let cd = MimeValue::parse(b" attachment; filename*=utf-8''invoice%2Epdf%2Eexe").unwrap();
        assert_eq!(cd.essence, "attachment");
        assert_eq!(cd.param("filename"), Some("invoice.pdf.exe"));
        let ct = MimeValue::parse(b" Application/PDF; name=\"=?utf-8?B?Zm9vLnBkZg==?=\"").unwrap();
        assert_eq!(ct.essence, "application/pdf");
        assert_eq!(ct.param("name"), Some("foo.pdf"));
    }
}
