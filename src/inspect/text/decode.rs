//! Transfer and charset decoding of part bodies, done here rather than by the
//! MIME parser so that every decode is capped: a part never grows past the
//! byte budget left for it, and a body that does not decode cleanly is still
//! decoded the way a mail client would show it, with the problem reported.

use std::borrow::Cow;

use mail_parser::decoders::charsets::map::charset_decoder;

/// The Content-Transfer-Encoding of a part, as far as decoding is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::inspect) enum TransferEncoding {
    /// 7bit, 8bit, binary or absent: the body is the content.
    Identity,
    Base64,
    QuotedPrintable,
    /// A value we do not decode (x-uuencode, typos); treated as identity and
    /// reported as an anomaly.
    Unknown,
}

impl TransferEncoding {
    pub(in crate::inspect) fn from_header(value: Option<&str>) -> TransferEncoding {
        let Some(value) = value else {
            return TransferEncoding::Identity;
        };
        let token = value
            .split(|c: char| c == ';' || c == '(' || c.is_whitespace())
            .find(|t| !t.is_empty())
            .unwrap_or("");
        match token.to_ascii_lowercase().as_str() {
            "" | "7bit" | "8bit" | "binary" => TransferEncoding::Identity,
            "base64" => TransferEncoding::Base64,
            "quoted-printable" => TransferEncoding::QuotedPrintable,
            _ => TransferEncoding::Unknown,
        }
    }
}

/// Result of a capped transfer decode.
#[derive(Debug)]
pub(in crate::inspect) struct Decoded<'a> {
    pub data: Cow<'a, [u8]>,
    /// More decoded content existed past the cap.
    pub truncated: bool,
    /// The body contained bytes the encoding does not allow (skipped).
    pub invalid: bool,
}

/// Decodes `body` according to `encoding`, producing at most `cap` bytes.
pub(in crate::inspect) fn transfer_decode(
    body: &[u8],
    encoding: TransferEncoding,
    cap: usize,
) -> Decoded<'_> {
    match encoding {
        TransferEncoding::Identity | TransferEncoding::Unknown => Decoded {
            data: Cow::Borrowed(&body[..body.len().min(cap)]),
            truncated: body.len() > cap,
            invalid: false,
        },
        TransferEncoding::Base64 => base64_decode(body, cap),
        TransferEncoding::QuotedPrintable => quoted_printable_decode(body, cap),
    }
}

/// What a byte means to base64: its 6-bit value (below 64), or one of the markers below.
const B64_PAD: u8 = 0x40;
const B64_SPACE: u8 = 0x80;
const B64_OTHER: u8 = 0xff;

static BASE64_TABLE: [u8; 256] = {
    let mut t = [B64_OTHER; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    t[b'+' as usize] = 62;
    t[b'/' as usize] = 63;
    t[b'=' as usize] = B64_PAD;
    t[b' ' as usize] = B64_SPACE;
    t[b'\t' as usize] = B64_SPACE;
    t[b'\r' as usize] = B64_SPACE;
    t[b'\n' as usize] = B64_SPACE;
    t
};

/// Lenient base64: whitespace is ignored, `=` ends a group (so concatenated
/// padded blocks still decode), any other byte is skipped and reported, the
/// way mail clients display such attachments.
///
/// Three speeds, all with the same result: a whole line of complete groups
/// of alphabet characters (every line of a well-formed body but the last) is
/// decoded by a SIMD decoder straight into the output; other runs of whole
/// groups take a table-driven path, eight characters at a time; everything
/// else goes byte by byte.
fn base64_decode(body: &[u8], cap: usize) -> Decoded<'static> {
    base64_decode_batched(body, cap, LINE_BATCH)
}

/// Base64 characters gathered from whole lines for one SIMD call: a 76-character line alone
/// leaves the decoder a tail it does one byte at a time, and the call itself costs.
const LINE_BATCH: usize = 8192;

fn base64_decode_batched(body: &[u8], cap: usize, batch: usize) -> Decoded<'static> {
    let mut out = crate::memory::buffer((body.len() / 4 * 3).min(cap));
    let mut acc: u32 = 0;
    let mut count = 0u8;
    let mut invalid = false;
    let mut truncated = false;
    let mut index = 0;
    // The line fast path is not retried before this index once it has refused a line,
    // so a long line it cannot take costs one attempt, not one per byte.
    let mut no_line_path_before = 0;
    let table = &BASE64_TABLE;
    let mut scratch = Vec::new();
    while index < body.len() {
        if count == 0 && index >= no_line_path_before {
            // Lines gathered for a batch the fast path refused go the slow way, all of them:
            // gathering them again for every line would cost the batch size per line.
            let mut refused_end = 0;
            loop {
                let (taken, gathered) = decode_lines(&body[index..], &mut out, cap, &mut scratch, batch);
                if taken < gathered {
                    refused_end = index + gathered;
                }
                index += taken;
                if taken == 0 || taken < gathered {
                    break;
                }
            }
            let line_end = memchr::memchr(b'\n', &body[index..]).map_or(body.len(), |nl| index + nl + 1);
            no_line_path_before = line_end.max(refused_end);
            if index >= body.len() {
                break;
            }
        }
        if count == 0 {
            // Fast path: only while the group cannot reach the cap (the last group before it
            // goes the slow way, which decides about truncation).
            while let Some(chunk) = body.get(index..index + 8)
                && out.len() + 6 < cap
            {
                let values: [u8; 8] = std::array::from_fn(|k| table[chunk[k] as usize]);
                if values.iter().fold(0, |a, &v| a | v) >= 64 {
                    break;
                }
                let v = values.iter().fold(0u64, |a, &v| (a << 6) | u64::from(v));
                out.extend_from_slice(&v.to_be_bytes()[2..]);
                index += 8;
            }
            while let Some(chunk) = body.get(index..index + 4)
                && out.len() + 3 < cap
            {
                let values: [u8; 4] = std::array::from_fn(|k| table[chunk[k] as usize]);
                if values.iter().fold(0, |a, &v| a | v) >= 64 {
                    break;
                }
                let v = values.iter().fold(0u32, |a, &v| (a << 6) | u32::from(v));
                out.extend_from_slice(&v.to_be_bytes()[1..]);
                index += 4;
            }
            if index >= body.len() {
                break;
            }
        }
        let byte = body[index];
        let value = table[byte as usize];
        index += 1;
        if value < 64 {
            acc = (acc << 6) | u32::from(value);
            count += 1;
            if count == 4 {
                let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
                let room = cap - out.len();
                out.extend_from_slice(&bytes[..room.min(3)]);
                count = 0;
                acc = 0;
                if out.len() >= cap {
                    truncated = room < 3 || body[index..].iter().any(|&b| table[b as usize] < 64);
                    break;
                }
            }
        } else if value == B64_PAD {
            flush_partial(&mut out, acc, count, cap);
            acc = 0;
            count = 0;
        } else if value == B64_OTHER {
            invalid = true;
        }
    }
    if !truncated {
        flush_partial(&mut out, acc, count, cap);
    }
    Decoded { data: Cow::Owned(out), truncated, invalid }
}

/// The line at the start of `rest` (line end excluded) and the bytes it takes (line end
/// included), if the line fast path may take it: whole groups of characters (no padding),
/// ending in LF or CRLF or the end of the body, its output (`n` more bytes after `filled`)
/// staying below `cap` (the group that reaches the cap goes the slow way, which decides about
/// truncation). Whether the characters are all in the alphabet is the decoder's to say.
fn whole_line(rest: &[u8], filled: usize, cap: usize) -> Option<(&[u8], usize)> {
    if rest.is_empty() {
        return None;
    }
    let (line, taken) = match memchr::memchr(b'\n', rest) {
        Some(nl) => (rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]), nl + 1),
        None => (rest, rest.len()),
    };
    let n = line.len() / 4 * 3;
    if line.is_empty() || line.len() % 4 != 0 || line.ends_with(b"=") || filled + n >= cap {
        return None;
    }
    Some((line, taken))
}

/// Appends the SIMD decoding of `chars` (whole groups) to `out`; false, leaving `out` as it
/// was, when a character is outside the alphabet.
fn decode_simd(chars: &[u8], out: &mut Vec<u8>) -> bool {
    let n = chars.len() / 4 * 3;
    out.reserve(n);
    let at = out.len();
    let spare = &mut out.spare_capacity_mut()[..n];
    if base64_simd::STANDARD.decode(chars, base64_simd::Out::from_uninit_slice(spare)).is_err() {
        return false;
    }
    // SAFETY: the decoder wrote all `n` bytes of the slice it was given.
    unsafe { out.set_len(at + n) };
    true
}

/// Decodes the line at the start of `rest` if [`whole_line`] admits it and its characters
/// are all in the alphabet. Returns the bytes consumed; `None` leaves `out` as it was.
fn decode_line(rest: &[u8], out: &mut Vec<u8>, cap: usize) -> Option<usize> {
    let (line, taken) = whole_line(rest, out.len(), cap)?;
    decode_simd(line, out).then_some(taken)
}

/// Decodes as many lines at the start of `rest` as [`decode_line`] would one after the
/// other, gathering up to `batch` characters for each SIMD call. Returns the bytes consumed
/// (0 when the first line is not for the fast path) and the bytes gathered for the batch.
fn decode_lines(
    rest: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
    scratch: &mut Vec<u8>,
    batch: usize,
) -> (usize, usize) {
    scratch.clear();
    let mut consumed = 0;
    while scratch.len() < batch
        && let Some((line, taken)) = whole_line(&rest[consumed..], out.len() + scratch.len() / 4 * 3, cap)
    {
        scratch.extend_from_slice(line);
        consumed += taken;
    }
    if scratch.is_empty() || decode_simd(scratch, out) {
        return (consumed, consumed);
    }
    // A character outside the alphabet somewhere: line by line, up to the line that has it.
    let mut done = 0;
    while done < consumed
        && let Some(taken) = decode_line(&rest[done..consumed], out, cap)
    {
        done += taken;
    }
    (done, consumed)
}

fn flush_partial(out: &mut Vec<u8>, acc: u32, count: u8, cap: usize) {
    let bytes: &[u8] = match count {
        2 => &[(acc >> 4) as u8],
        3 => &[(acc >> 10) as u8, (acc >> 2) as u8],
        _ => &[],
    };
    let room = cap.saturating_sub(out.len());
    out.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// Quoted-printable: `=XX` escapes and soft line breaks are decoded,
/// trailing whitespace before a line break is dropped (RFC 2045), and an `=`
/// that starts no valid escape is kept literally, as mail clients do;
/// `invalid` reports it.
fn quoted_printable_decode(body: &[u8], cap: usize) -> Decoded<'static> {
    let mut out = crate::memory::buffer(body.len().min(cap));
    let mut invalid = false;
    // Bytes before this index came from escapes (`=20`) and are kept even
    // at the end of a line.
    let mut protected = 0;
    let mut i = 0;
    while i < body.len() {
        if out.len() >= cap {
            return Decoded { data: Cow::Owned(out), truncated: true, invalid };
        }
        let byte = body[i];
        match byte {
            b'=' => {
                let rest = &body[i + 1..];
                // Soft line break, possibly with trailing whitespace after '='.
                let ws = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
                let after = &rest[ws..];
                if after.starts_with(b"\r\n") {
                    i += 1 + ws + 2;
                } else if after.starts_with(b"\n") {
                    i += 1 + ws + 1;
                } else if after.is_empty() {
                    i = body.len();
                } else if let (Some(hi), Some(lo)) =
                    (rest.first().copied().and_then(hex_value), rest.get(1).copied().and_then(hex_value))
                {
                    out.push(hi << 4 | lo);
                    protected = out.len();
                    i += 3;
                } else {
                    invalid = true;
                    out.push(b'=');
                    i += 1;
                }
            }
            b'\n' => {
                strip_trailing_blanks(&mut out, protected);
                out.push(b'\n');
                i += 1;
            }
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                strip_trailing_blanks(&mut out, protected);
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out.truncate(cap);
    Decoded { data: Cow::Owned(out), truncated: false, invalid }
}

fn strip_trailing_blanks(out: &mut Vec<u8>, protected: usize) {
    while out.len() > protected && matches!(out.last(), Some(b' ' | b'\t')) {
        out.pop();
    }
}

/// `bytes` as text: borrowed when they are UTF-8 (checked with the standard library's
/// word-at-a-time validator, several times faster on ASCII than the lossy conversion's),
/// converted with U+FFFD replacements otherwise.
pub(in crate::inspect) fn lossy_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Result of turning a text body into UTF-8.
#[derive(Debug)]
pub(in crate::inspect) struct Utf8Text<'a> {
    pub text: Cow<'a, [u8]>,
    /// The declared charset was us-ascii or utf-8 but the bytes were not.
    pub charset_lie: bool,
    /// The declared charset is not one we know; the text was taken as UTF-8.
    pub unknown_charset: bool,
}

fn is_utf8_label(charset: &str) -> bool {
    matches!(
        charset.to_ascii_lowercase().as_str(),
        "utf-8" | "utf8" | "unicode-1-1-utf-8" | "x-unicode20utf8"
    )
}

fn is_ascii_label(charset: &str) -> bool {
    matches!(
        charset.to_ascii_lowercase().as_str(),
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us"
    )
}

/// Converts transfer-decoded text in `charset` to UTF-8. Text that is already
/// valid UTF-8 under a UTF-8/ASCII/absent label is passed through unchanged
/// (still borrowed when the input was). Undeclared or mislabelled 8-bit text
/// is read as windows-1252, the usual real-world meaning.
pub(in crate::inspect) fn to_utf8<'a>(bytes: Cow<'a, [u8]>, charset: Option<&str>) -> Utf8Text<'a> {
    let charset = charset.map(str::trim).filter(|c| !c.is_empty());
    let plain_label = charset.is_none_or(|c| is_utf8_label(c) || is_ascii_label(c));
    if plain_label {
        let valid = std::str::from_utf8(&bytes).is_ok();
        let declared_ascii = charset.is_some_and(is_ascii_label);
        let declared_utf8 = charset.is_some_and(is_utf8_label);
        let charset_lie = (declared_ascii && !bytes.is_ascii()) || (declared_utf8 && !valid);
        if valid {
            return Utf8Text { text: bytes, charset_lie, unknown_charset: false };
        }
        let text =
            if declared_utf8 { String::from_utf8_lossy(&bytes).into_owned() } else { windows_1252(&bytes) };
        return Utf8Text { text: Cow::Owned(text.into_bytes()), charset_lie, unknown_charset: false };
    }
    let label = charset.unwrap_or_default();
    match charset_decoder(label.as_bytes()) {
        Some(decode) => Utf8Text {
            text: Cow::Owned(decode(&bytes).into_bytes()),
            charset_lie: false,
            unknown_charset: false,
        },
        None => Utf8Text {
            text: Cow::Owned(String::from_utf8_lossy(&bytes).into_owned().into_bytes()),
            charset_lie: false,
            unknown_charset: true,
        },
    }
}

/// Bytes in windows-1252, the usual meaning of undeclared 8-bit text.
pub(in crate::inspect) fn windows_1252(bytes: &[u8]) -> String {
    match charset_decoder(b"windows-1252") {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(body: &str, cap: usize) -> Decoded<'_> {
        transfer_decode(body.as_bytes(), TransferEncoding::Base64, cap)
    }

    #[test]
    fn base64_with_line_breaks_decodes() {
        let d = b64("SGVs\r\nbG8g\nd29y bGQ=\n", 100);
        assert_eq!(&*d.data, b"Hello world");
        assert!(!d.invalid && !d.truncated);
    }

    #[test]
    fn base64_invalid_characters_are_skipped_and_reported() {
        let d = b64("SGVs*bG8=", 100);
        assert_eq!(&*d.data, b"Hello");
        assert!(d.invalid);
    }

    #[test]
    fn base64_concatenated_padded_blocks_decode() {
        let d = b64("aGk=aGk=", 100);
        assert_eq!(&*d.data, b"hihi");
    }

    #[test]
    fn base64_stops_at_cap_and_reports_truncation() {
        let d = b64("aGVsbG8gd29ybGQ=", 4);
        assert_eq!(&*d.data, b"hell");
        assert!(d.truncated);
        let exact = b64("aGVsbG8g", 6);
        assert_eq!(&*exact.data, b"hello ");
        assert!(!exact.truncated);
    }

    /// The byte-at-a-time decoder the fast path must agree with.
    fn reference(body: &[u8], cap: usize) -> (Vec<u8>, bool, bool) {
        let mut out = Vec::new();
        let (mut acc, mut count, mut invalid, mut truncated) = (0u32, 0u8, false, false);
        for (i, &b) in body.iter().enumerate() {
            let v = BASE64_TABLE[b as usize];
            if v < 64 {
                acc = (acc << 6) | u32::from(v);
                count += 1;
                if count == 4 {
                    let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
                    let room = cap - out.len();
                    out.extend_from_slice(&bytes[..room.min(3)]);
                    (acc, count) = (0, 0);
                    if out.len() >= cap {
                        truncated = room < 3 || body[i + 1..].iter().any(|&b| BASE64_TABLE[b as usize] < 64);
                        break;
                    }
                }
            } else if v == B64_PAD {
                flush_partial(&mut out, acc, count, cap);
                (acc, count) = (0, 0);
            } else if v == B64_OTHER {
                invalid = true;
            }
        }
        if !truncated {
            flush_partial(&mut out, acc, count, cap);
        }
        (out, truncated, invalid)
    }

    #[test]
    fn base64_fast_path_agrees_with_the_byte_at_a_time_decoder() {
        // Line lengths that are and are not multiples of four, padding in the middle, bad
        // bytes, and every cap around the end.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for round in 0..1000 {
            let len = (next() % 1200) as usize;
            // Lines of 76 characters ending in LF or CRLF, like real bodies, broken now and then.
            let crlf = round % 2 == 1;
            let period = if crlf { 78 } else { 77 };
            let body: Vec<u8> = (0..len)
                .map(|i| match next() % 200 {
                    0 if round % 3 == 0 => b'=',
                    1 if round % 5 == 0 => b'*',
                    2 if round % 7 == 0 => b' ',
                    3..=4 => b'\n',
                    _ if crlf && i % period == 76 => b'\r',
                    _ if i % period == period - 1 => b'\n',
                    _ => alphabet[(next() % 64) as usize],
                })
                .collect();
            for cap in [0, 1, 2, 3, 5, 6, 7, 64, len / 4 * 3, len / 4 * 3 + 1, usize::MAX / 2] {
                let (out, truncated, invalid) = reference(&body, cap);
                // Lines gathered into SIMD calls of every size: one line, a few, all of them.
                for batch in [1, 80, 300, LINE_BATCH] {
                    let d = base64_decode_batched(&body, cap, batch);
                    assert_eq!(
                        (&*d.data, d.truncated, d.invalid),
                        (&out[..], truncated, invalid),
                        "cap {cap} batch {batch}"
                    );
                }
            }
        }
    }

    #[test]
    fn quoted_printable_soft_breaks_and_escapes_decode() {
        let d =
            transfer_decode(b"caf=C3=A9 =\r\nau lait  \r\nend=3d", TransferEncoding::QuotedPrintable, 100);
        assert_eq!(&*d.data, "café au lait\r\nend=".as_bytes());
        assert!(!d.invalid);
    }

    #[test]
    fn quoted_printable_keeps_encoded_trailing_space() {
        let d = transfer_decode(b"a=20\nb \n", TransferEncoding::QuotedPrintable, 100);
        assert_eq!(&*d.data, b"a \nb\n");
    }

    #[test]
    fn quoted_printable_bad_escape_is_kept_literally() {
        let d = transfer_decode(b"50=% off=ZZ", TransferEncoding::QuotedPrintable, 100);
        assert_eq!(&*d.data, b"50=% off=ZZ");
        assert!(d.invalid);
    }

    #[test]
    fn identity_borrows_and_caps() {
        let body = b"abcdef";
        let d = transfer_decode(body, TransferEncoding::Identity, 3);
        assert!(matches!(d.data, Cow::Borrowed(b"abc")));
        assert!(d.truncated);
    }

    #[test]
    fn transfer_encoding_header_values_are_recognised() {
        assert_eq!(TransferEncoding::from_header(Some(" Base64 (comment)")), TransferEncoding::Base64);
        assert_eq!(
            TransferEncoding::from_header(Some("quoted-printable")),
            TransferEncoding::QuotedPrintable
        );
        assert_eq!(TransferEncoding::from_header(Some("8BIT")), TransferEncoding::Identity);
        assert_eq!(TransferEncoding::from_header(Some("x-uuencode")), TransferEncoding::Unknown);
    }

    #[test]
    fn valid_utf8_under_utf8_label_stays_borrowed() {
        let t = to_utf8(Cow::Borrowed("grüße".as_bytes()), Some("UTF-8"));
        assert!(matches!(t.text, Cow::Borrowed(_)));
        assert!(!t.charset_lie);
    }

    #[test]
    fn eight_bit_under_ascii_label_is_a_lie_read_as_windows_1252() {
        let t = to_utf8(Cow::Borrowed(b"caf\xe9"), Some("us-ascii"));
        assert!(t.charset_lie);
        assert_eq!(&*t.text, "café".as_bytes());
    }

    #[test]
    fn invalid_utf8_under_utf8_label_is_a_lie() {
        let t = to_utf8(Cow::Borrowed(b"caf\xe9"), Some("utf-8"));
        assert!(t.charset_lie);
    }

    #[test]
    fn legacy_charset_is_converted() {
        let t = to_utf8(Cow::Borrowed(b"\x82\xa0"), Some("shift_jis"));
        assert_eq!(std::str::from_utf8(&t.text).unwrap(), "あ");
        let unknown = to_utf8(Cow::Borrowed(b"abc"), Some("x-klingon"));
        assert!(unknown.unknown_charset);
    }
}
