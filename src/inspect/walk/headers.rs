//! Header blocks read from the raw bytes. The MIME parser's own header list
//! drops fields that are not valid UTF-8 and hides syntax errors; rules need
//! every field as sent, and the oddities (missing colons, 8-bit bytes, bare
//! line ends, duplicated singleton fields) are themselves evidence.

use mail_parser::HeaderValue;

use crate::inspect::text::decode::windows_1252;
use crate::inspect::{Deadline, Stage};
use mail_parser::parsers::MessageStream;

/// One header field as it appears in the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) struct RawField<'b> {
    /// The field name, trimmed of surrounding whitespace.
    pub name: &'b [u8],
    /// Everything after the colon, folded lines included, without the final
    /// line break.
    pub value: &'b [u8],
    /// The name is a valid RFC 5322 field name (printable ASCII, no
    /// whitespace before the colon).
    pub valid: bool,
}

impl RawField<'_> {
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(self.name).into_owned()
    }

    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value unfolded, with RFC 2047 encoded words decoded.
    #[cfg(test)]
    pub fn decoded_value(&self) -> String {
        decode_unstructured(self.value, Deadline::never())
    }

    /// [`RawField::decoded_value`] inside a deadline: past it, the rest of the value is kept
    /// as it is (unfolded) rather than decoded, and the caller's next check records the
    /// timeout.
    pub fn decoded_value_until(&self, deadline: Deadline) -> String {
        decode_unstructured(self.value, deadline)
    }
}

/// Longest piece of a header value handed to mail-parser's RFC 2047 decoder at once.
///
/// Its decoder tries every `=?` as the start of an encoded word and, for a word that never
/// ends properly, reads on to the end of what it was given: a value made of thousands of
/// such starts costs the square of its length (a 200 KB Subject took 40 s). Pieces cut at
/// whitespace, which no encoded word contains, keep every real word whole and bound that
/// read to the piece: linear in the value.
const DECODE_PIECE: usize = 512;

/// Unfolds a raw header value and decodes RFC 2047 encoded words. Raw
/// 8-bit bytes that are not UTF-8 are read as windows-1252, as mail clients
/// show them.
pub(in crate::inspect) fn decode_unstructured(value: &[u8], deadline: Deadline) -> String {
    let text: std::borrow::Cow<'_, [u8]> = match std::str::from_utf8(value) {
        Ok(_) => value.into(),
        Err(_) => windows_1252(value).into_bytes().into(),
    };
    let mut out = String::with_capacity(text.len());
    let mut buf = Vec::with_capacity(DECODE_PIECE.min(text.len()) + 1);
    let mut rest: &[u8] = &text;
    let mut space_before = false;
    while !rest.is_empty() {
        if deadline.passed(Stage::Mime) {
            if space_before && !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&String::from_utf8_lossy(rest).replace(['\r', '\n'], ""));
            break;
        }
        let mut end = rest.len().min(DECODE_PIECE);
        let mut at_space = false;
        if end < rest.len() {
            // Cut after the last blank of the piece (the blank of a fold, after its line end);
            // a run longer than a piece without one is cut where it is.
            if let Some(ws) = rest[..end].iter().rposition(|b| matches!(b, b' ' | b'\t')) {
                end = ws + 1;
                at_space = true;
            }
            // Never inside a UTF-8 character.
            while end < rest.len() && rest[end] & 0xC0 == 0x80 {
                end += 1;
            }
        }
        buf.clear();
        buf.extend_from_slice(&rest[..end]);
        buf.push(b'\n');
        if let HeaderValue::Text(piece) = MessageStream::new(&buf).parse_unstructured() {
            if space_before && !out.is_empty() && !piece.is_empty() {
                out.push(' ');
            }
            out.push_str(&piece);
        }
        space_before = at_space;
        rest = &rest[end..];
    }
    out
}

/// Encoded words kept in a Content-Type or Content-Disposition value before mail-parser reads
/// it (parameters are RFC 2231-encoded; a few RFC 2047 words are a common mistake).
const MAX_PARAM_WORDS: usize = 8;

/// `*` characters (RFC 2231 continuations and charsets) kept in one such value; a long
/// file name takes a dozen.
const MAX_PARAM_STARS: usize = 64;

/// Makes a Content-Type or Content-Disposition value safe for mail-parser's parameter parser,
/// in place and without changing its length; true when anything was changed. That parser
/// reads to the end of the value for every encoded word that does not end (quadratic, see
/// [`DECODE_PIECE`]) and copies the joined value again for every RFC 2231 continuation
/// (quadratic in their number): past [`MAX_PARAM_WORDS`] words and [`MAX_PARAM_STARS`] stars,
/// `=?` becomes `=_` and `*` becomes `_`, which neither boundaries nor media types use.
pub(in crate::inspect) fn tame_mime_value(value: &mut [u8]) -> bool {
    let mut words = 0;
    let mut stars = 0;
    let mut changed = false;
    for i in 0..value.len() {
        match value[i] {
            b'?' if i > 0 && value[i - 1] == b'=' => {
                words += 1;
                if words > MAX_PARAM_WORDS {
                    value[i] = b'_';
                    changed = true;
                }
            }
            b'*' => {
                stars += 1;
                if stars > MAX_PARAM_STARS {
                    value[i] = b'_';
                    changed = true;
                }
            }
            _ => {}
        }
    }
    changed
}

/// Tames (see [`tame_mime_value`]) every Content-Type and Content-Disposition field found at a
/// line start anywhere in `bytes`, in a copy made only when one needs it. One forward pass.
pub(in crate::inspect) fn tame_mime_fields(bytes: &[u8]) -> Option<Vec<u8>> {
    static FIELD: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        regex::bytes::Regex::new(r"(?im-u)^content-(?:type|disposition)[ \t]*:")
            .expect("field pattern is valid")
    });
    let mut copy: Option<Vec<u8>> = None;
    let mut after = 0;
    for m in FIELD.find_iter(bytes) {
        if m.start() < after {
            continue;
        }
        // The field runs on through folded lines.
        let mut end = m.end();
        loop {
            match memchr::memchr(b'\n', &bytes[end..]) {
                Some(i) if matches!(bytes.get(end + i + 1), Some(b' ' | b'\t')) => end += i + 1,
                Some(i) => {
                    end += i;
                    break;
                }
                None => {
                    end = bytes.len();
                    break;
                }
            }
        }
        after = end;
        let value = &bytes[m.end()..end];
        let words = memchr::memmem::find_iter(value, b"=?").take(MAX_PARAM_WORDS + 1).count();
        let stars = memchr::memchr_iter(b'*', value).take(MAX_PARAM_STARS + 1).count();
        if words > MAX_PARAM_WORDS || stars > MAX_PARAM_STARS {
            let copy = copy.get_or_insert_with(|| bytes.to_vec());
            tame_mime_value(&mut copy[m.end()..end]);
        }
    }
    copy
}

/// A structural problem found in a header block: (anomaly code, detail).
pub(in crate::inspect) type Issue = (&'static str, String);

/// A parsed header block.
#[derive(Debug, Default)]
pub(in crate::inspect) struct HeaderBlock<'b> {
    pub fields: Vec<RawField<'b>>,
    pub issues: Vec<Issue>,
}

impl<'b> HeaderBlock<'b> {
    pub fn get(&self, name: &str) -> Option<&RawField<'b>> {
        self.fields.iter().find(|f| f.is(name))
    }

    pub fn count(&self, name: &str) -> usize {
        self.fields.iter().filter(|f| f.is(name)).count()
    }
}

/// Longest header line RFC 5322 allows (998 characters plus CRLF).
const MAX_LINE: usize = 998;

/// Fields a message may carry at most once (RFC 5322 section 3.6); a second
/// copy is how a sender shows one value to the filter and another to the
/// reader.
const SINGLETONS: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
];

/// MIME fields that must appear at most once per part; scanners and mail
/// clients disagree on which copy wins.
const MIME_SINGLETONS: &[&str] =
    &["Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version"];

fn escape(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(40)];
    cut.escape_ascii().to_string()
}

/// Splits a header block (everything up to and including the blank line)
/// into fields, recording syntax problems. `crlf` says whether the message
/// uses CRLF line ends, in which case a lone LF is an anomaly. Linear: one line-end search
/// per line; the per-field checks look at the field alone.
pub(in crate::inspect) fn parse_block(block: &[u8], crlf: bool, message_level: bool) -> HeaderBlock<'_> {
    let mut out = HeaderBlock::default();
    let mut malformed = 0usize;
    let mut first_malformed = String::new();
    let mut long_lines = 0usize;
    let mut current = None;
    let mut pos = 0usize;
    let mut value_end = 0usize;

    type Open = Option<(usize, usize, usize, bool)>; // name start/end, value start, valid
    fn finish<'b>(block: &'b [u8], out: &mut HeaderBlock<'b>, cur: Open, end: usize) {
        if let Some((ns, ne, vs, valid)) = cur {
            out.fields.push(RawField { name: &block[ns..ne], value: &block[vs..end.max(vs)], valid });
        }
    }

    while pos < block.len() {
        let line_end = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i);
        let mut content_end = line_end;
        if content_end > pos && block[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        let line = &block[pos..content_end];
        let next = (line_end + 1).min(block.len());
        if line.is_empty() {
            break;
        }
        if line.len() > MAX_LINE {
            long_lines += 1;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if current.is_some() {
                value_end = content_end;
            } else {
                out.issues
                    .push(("malformed-header", "header block starts with a continuation line".to_string()));
            }
            pos = next;
            continue;
        }
        finish(block, &mut out, current.take(), value_end);
        match memchr::memchr(b':', line) {
            Some(colon) => {
                let raw_name = &line[..colon];
                let name_end = raw_name.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
                let name = &raw_name[..name_end];
                let valid = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b));
                if !valid || name_end != raw_name.len() {
                    malformed += 1;
                    if first_malformed.is_empty() {
                        first_malformed = format!("invalid field name \"{}\"", escape(raw_name));
                    }
                }
                current = Some((pos, pos + name_end, pos + colon + 1, valid && name_end == raw_name.len()));
                value_end = content_end;
            }
            None => {
                malformed += 1;
                if first_malformed.is_empty() {
                    first_malformed = format!("line without colon \"{}\"", escape(line));
                }
            }
        }
        pos = next;
    }
    finish(block, &mut out, current.take(), value_end);

    if malformed > 0 {
        out.issues.push((
            "malformed-header",
            format!("{malformed} malformed header line(s), first: {first_malformed}"),
        ));
    }
    if long_lines > 0 {
        out.issues.push((
            "long-header-line",
            format!("{long_lines} header line(s) longer than {MAX_LINE} characters"),
        ));
    }
    if let Some(count) = count_non_ascii(block) {
        let utf8 = std::str::from_utf8(block).is_ok();
        out.issues.push((
            "8bit-header",
            format!(
                "{count} byte(s) above 0x7F in the header block ({})",
                if utf8 { "valid UTF-8" } else { "not UTF-8" }
            ),
        ));
    }
    if block.contains(&0) {
        out.issues.push(("nul-in-header", "NUL byte in the header block".to_string()));
    }
    push_line_end_issues(block, crlf, "header block", &mut out.issues);

    let singletons: &[&str] = if message_level { SINGLETONS } else { &[] };
    for name in singletons.iter().chain(MIME_SINGLETONS) {
        let n = out.count(name);
        if n > 1 {
            let code =
                if MIME_SINGLETONS.contains(name) { "duplicate-mime-header" } else { "duplicate-header" };
            out.issues.push((code, format!("{name} appears {n} times")));
        }
    }
    out
}

fn count_non_ascii(bytes: &[u8]) -> Option<usize> {
    let n = bytes.iter().filter(|b| !b.is_ascii()).count();
    (n > 0).then_some(n)
}

/// Counts CR not followed by LF, and (in a CRLF message) LF not preceded by
/// CR.
pub(in crate::inspect) fn bare_line_ends(bytes: &[u8], crlf: bool) -> (usize, usize) {
    let mut bare_cr = 0;
    let mut bare_lf = 0;
    for i in memchr::memchr2_iter(b'\r', b'\n', bytes) {
        if bytes[i] == b'\r' {
            if bytes.get(i + 1) != Some(&b'\n') {
                bare_cr += 1;
            }
        } else if crlf && (i == 0 || bytes[i - 1] != b'\r') {
            bare_lf += 1;
        }
    }
    (bare_cr, bare_lf)
}

/// Records bare CR / bare LF anomalies found in `bytes`.
pub(in crate::inspect) fn push_line_end_issues(
    bytes: &[u8],
    crlf: bool,
    what: &str,
    issues: &mut Vec<Issue>,
) {
    let (bare_cr, bare_lf) = bare_line_ends(bytes, crlf);
    if bare_cr > 0 {
        issues.push(("bare-cr", format!("{bare_cr} CR without LF in the {what}")));
    }
    if bare_lf > 0 {
        issues.push(("bare-lf", format!("{bare_lf} LF without CR in the {what} of a CRLF message")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(block: &HeaderBlock<'_>) -> Vec<&'static str> {
        block.issues.iter().map(|(c, _)| *c).collect()
    }

    #[test]
    fn folded_fields_are_joined_and_decoded() {
        let block = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n  au lait\r\nFrom: a@b\r\n\r\n";
        let parsed = parse_block(block, true, true);
        assert_eq!(parsed.fields.len(), 2);
        assert_eq!(parsed.fields[0].decoded_value(), "café au lait");
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
    }

    #[test]
    fn non_utf8_field_is_kept_and_reported() {
        let block = b"Subject: caf\xe9\nX-Other: ok\n\n";
        let parsed = parse_block(block, false, true);
        assert_eq!(parsed.fields.len(), 2);
        assert_eq!(parsed.fields[0].value, b" caf\xe9");
        assert_eq!(parsed.fields[0].decoded_value(), "café");
        assert_eq!(codes(&parsed), ["8bit-header"]);
    }

    #[test]
    fn line_without_colon_and_bad_name_are_malformed() {
        let block = b"From: a@b\nthis is not a header\nBad Name: x\n\n";
        let parsed = parse_block(block, false, true);
        assert_eq!(codes(&parsed), ["malformed-header"]);
        assert!(parsed.issues[0].1.starts_with("2 malformed"), "{:?}", parsed.issues);
    }

    #[test]
    fn duplicate_singletons_are_reported_only_at_message_level() {
        let block = b"Subject: a\nSubject: b\nContent-Type: text/plain\nContent-Type: text/html\n\n";
        let message = parse_block(block, false, true);
        assert_eq!(codes(&message), ["duplicate-header", "duplicate-mime-header"]);
        let part = parse_block(block, false, false);
        assert_eq!(codes(&part), ["duplicate-mime-header"]);
    }

    #[test]
    fn bare_line_ends_are_counted_by_message_style() {
        assert_eq!(bare_line_ends(b"a\r\nb\nc\rd", true), (1, 1));
        assert_eq!(bare_line_ends(b"a\nb\n", false), (0, 0));
        assert_eq!(bare_line_ends(b"\n\r\r\n\r", true), (2, 1));
        assert_eq!(bare_line_ends(b"\r\r\n", false), (1, 0));
        assert_eq!(bare_line_ends(b"", true), (0, 0));
    }

    #[test]
    fn bare_line_ends_agree_with_a_byte_at_a_time_count() {
        let reference = |bytes: &[u8], crlf: bool| {
            let (mut cr, mut lf) = (0, 0);
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'\r' && bytes.get(i + 1) != Some(&b'\n') {
                    cr += 1;
                }
                if b == b'\n' && crlf && (i == 0 || bytes[i - 1] != b'\r') {
                    lf += 1;
                }
            }
            (cr, lf)
        };
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..4000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Lengths across several 64-byte blocks; every fourth input mostly plain bytes,
            // so whole blocks hold no line end at all.
            let len = (seed % 300) as usize;
            let alphabet: &[u8] =
                if round % 4 == 0 { b"\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" } else { b"\r\na" };
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    alphabet[((seed.rotate_left(i as u32 % 64) ^ i as u64) % alphabet.len() as u64) as usize]
                })
                .collect();
            for crlf in [true, false] {
                assert_eq!(bare_line_ends(&bytes, crlf), reference(&bytes, crlf), "{bytes:?}");
            }
        }
    }

    #[test]
    fn header_block_ends_at_blank_line() {
        let parsed = parse_block(b"A: 1\n\nB: 2\n", false, true);
        assert_eq!(parsed.fields.len(), 1);
    }
}
