//! Encrypted PDFs. A PDF with an /Encrypt dictionary is only a problem when
//! opening it needs a password: many are encrypted with an empty user
//! password (an owner password restricts printing or copying only) and open
//! without a prompt, so they are inspected like any other. The standard
//! security handler's own check is run with the empty password: revisions
//! 2–4 (RC4 or AES-128, MD5 key derivation) and 5–6 (AES-256, SHA-2).
//! Anything that cannot be checked (other security handlers, an unreadable
//! dictionary) is treated as needing a password: recorded, never passed
//! silently.

use std::sync::LazyLock;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use md5::Md5;
use regex::bytes::Regex;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::rc4;

/// Whether a PDF needs a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PdfSecurity {
    /// No encryption.
    Plain,
    /// Encrypted, but the empty user password opens it.
    OwnerPasswordOnly(String),
    /// Needs a password we do not have (or could not be checked).
    Encrypted(String),
}

/// Nesting of PDF objects followed when parsing the encryption dictionary.
const MAX_NESTING: u32 = 16;

/// Padding string of the standard security handler (ISO 32000-1, 7.6.3.3).
const PAD: [u8; 32] = [
    0x28, 0xbf, 0x4e, 0x5e, 0x4e, 0x75, 0x8a, 0x41, 0x64, 0x00, 0x4e, 0x56, 0xff, 0xfa, 0x01, 0x08, 0x2e,
    0x2e, 0x00, 0xb6, 0xd0, 0x68, 0x3e, 0x80, 0x2f, 0x0c, 0xa9, 0xfe, 0x64, 0x53, 0x69, 0x7a,
];

pub(super) fn check(bytes: &[u8]) -> PdfSecurity {
    let Some(value_at) = find_key(bytes, b"/Encrypt") else {
        return PdfSecurity::Plain;
    };
    let unreadable =
        |why: &str| PdfSecurity::Encrypted(format!("PDF encryption dictionary not readable ({why})"));
    let Some((value, _)) = parse_object(bytes, value_at, 0) else {
        return unreadable("value of /Encrypt");
    };
    let dict = match value {
        Object::Dict(d) => d,
        Object::Ref(num, gen_) => match resolve(bytes, num, gen_) {
            Some(Object::Dict(d)) => d,
            _ => return unreadable("object not found"),
        },
        Object::Null => return PdfSecurity::Plain,
        _ => return unreadable("unexpected value"),
    };
    let id = find_key(bytes, b"/ID")
        .and_then(|at| parse_object(bytes, at, 0))
        .and_then(|(o, _)| match o {
            Object::Array(items) => items.into_iter().next(),
            _ => None,
        })
        .and_then(|o| match o {
            Object::Str(s) => Some(s),
            _ => None,
        })
        .unwrap_or_default();
    check_standard(&dict, &id)
}

fn check_standard(dict: &[(Vec<u8>, Object)], id: &[u8]) -> PdfSecurity {
    let get = |k: &[u8]| dict.iter().find(|(name, _)| name == k).map(|(_, v)| v);
    let filter = match get(b"Filter") {
        Some(Object::Name(n)) => n.clone(),
        _ => Vec::new(),
    };
    if filter != b"Standard" {
        return PdfSecurity::Encrypted(format!(
            "PDF uses the {} security handler (certificate or plug-in)",
            String::from_utf8_lossy(&filter)
        ));
    }
    let int = |k: &[u8]| match get(k) {
        Some(Object::Num(n)) => Some(*n),
        _ => None,
    };
    let string = |k: &[u8]| match get(k) {
        Some(Object::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let (Some(r), Some(o), Some(u)) = (int(b"R"), string(b"O"), string(b"U")) else {
        return PdfSecurity::Encrypted("PDF standard security handler without R, O or U".to_string());
    };
    let p = int(b"P").unwrap_or(0);
    let encrypt_metadata = !matches!(get(b"EncryptMetadata"), Some(Object::Bool(false)));
    let length_bits = int(b"Length").unwrap_or(40);
    let opens = match r {
        2..=4 => {
            let key_len = if r == 2 { 5 } else { (length_bits / 8).clamp(5, 16) as usize };
            empty_password_opens_rc4_md5(r, &o, &u, p, id, key_len, encrypt_metadata)
        }
        5 => u.len() >= 40 && Sha256::digest(&u[32..40]).as_slice() == &u[..32],
        6 => u.len() >= 40 && hash_r6(b"", &u[32..40], b"") == u[..32],
        _ => {
            return PdfSecurity::Encrypted(format!("PDF standard security handler revision {r} not checked"));
        }
    };
    if opens {
        PdfSecurity::OwnerPasswordOnly(format!(
            "PDF encrypted (standard handler R{r}) with an empty user password; it opens without one"
        ))
    } else {
        PdfSecurity::Encrypted(format!("PDF needs a user password (standard handler R{r})"))
    }
}

/// ISO 32000-1 algorithms 2, 4 and 5 with the empty user password.
fn empty_password_opens_rc4_md5(
    r: i64,
    o: &[u8],
    u: &[u8],
    p: i64,
    id: &[u8],
    key_len: usize,
    encrypt_metadata: bool,
) -> bool {
    let mut hasher = Md5::new();
    hasher.update(PAD);
    hasher.update(&o[..o.len().min(32)]);
    hasher.update((p as i32).to_le_bytes());
    hasher.update(id);
    if r >= 4 && !encrypt_metadata {
        hasher.update([0xff; 4]);
    }
    let mut key = hasher.finalize().to_vec();
    if r >= 3 {
        for _ in 0..50 {
            key = Md5::digest(&key[..key_len]).to_vec();
        }
    }
    key.truncate(key_len);
    if r == 2 {
        let mut check = PAD;
        rc4::apply(&key, &mut check);
        return u.len() >= 32 && check[..] == u[..32];
    }
    let mut hasher = Md5::new();
    hasher.update(PAD);
    hasher.update(id);
    let mut check: Vec<u8> = hasher.finalize().to_vec();
    rc4::apply(&key, &mut check);
    for i in 1..=19u8 {
        let round_key: Vec<u8> = key.iter().map(|k| k ^ i).collect();
        rc4::apply(&round_key, &mut check);
    }
    u.len() >= 16 && check[..] == u[..16]
}

/// Rounds of the revision 6 hash allowed before giving up; the algorithm
/// ends after 64 to about 300 rounds.
const MAX_R6_ROUNDS: u32 = 2048;

/// ISO 32000-2 algorithm 2.B.
pub(super) fn hash_r6(password: &[u8], salt: &[u8], udata: &[u8]) -> Vec<u8> {
    let mut k: Vec<u8> = {
        let mut h = Sha256::new();
        h.update(password);
        h.update(salt);
        h.update(udata);
        h.finalize().to_vec()
    };
    let mut round: u32 = 0;
    loop {
        let mut block = Vec::with_capacity(password.len() + k.len() + udata.len());
        block.extend_from_slice(password);
        block.extend_from_slice(&k);
        block.extend_from_slice(udata);
        let k1 = block.repeat(64);
        let e = aes128_cbc_encrypt(&k[..16], &k[16..32], &k1);
        let modulo = e[..16].iter().map(|&b| u32::from(b)).sum::<u32>() % 3;
        k = match modulo {
            0 => Sha256::digest(&e).to_vec(),
            1 => Sha384::digest(&e).to_vec(),
            _ => Sha512::digest(&e).to_vec(),
        };
        round += 1;
        let last = u32::from(*e.last().unwrap_or(&0));
        if (round >= 64 && last + 32 <= round) || round >= MAX_R6_ROUNDS {
            break;
        }
    }
    k.truncate(32);
    k
}

fn aes128_cbc_encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    let cipher = Aes128::new(GenericArray::from_slice(key));
    let mut prev: [u8; 16] = iv.try_into().unwrap_or([0; 16]);
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(16) {
        let mut block = [0u8; 16];
        for i in 0..16 {
            block[i] = chunk[i] ^ prev[i];
        }
        let mut ga = GenericArray::from(block);
        cipher.encrypt_block(&mut ga);
        prev.copy_from_slice(&ga);
        out.extend_from_slice(&ga);
    }
    out
}

/// Position right after the last `key` name that is a whole name (so
/// `/Encrypt` does not match `/EncryptMetadata`).
fn find_key(bytes: &[u8], key: &[u8]) -> Option<usize> {
    // Forward: memmem's SIMD search is several times faster than its backward one.
    memchr::memmem::find_iter(bytes, key).map(|at| at + key.len()).filter(|&after| {
        !matches!(bytes.get(after), Some(b) if b.is_ascii_alphanumeric() || *b == b'#' || *b == b'_')
    })
    .last()
}

/// The last definition of object `num gen`.
fn resolve(bytes: &[u8], num: i64, gen_: i64) -> Option<Object> {
    static OBJ: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?-u)(\d+)\s+(\d+)\s+obj\b").expect("object pattern is valid"));
    let mut found = None;
    for caps in OBJ.captures_iter(bytes) {
        let n = std::str::from_utf8(&caps[1]).ok()?.parse::<i64>().ok();
        let g = std::str::from_utf8(&caps[2]).ok()?.parse::<i64>().ok();
        let preceded_by_digit =
            caps.get(0).is_some_and(|m| m.start() > 0 && bytes[m.start() - 1].is_ascii_digit());
        if n == Some(num) && g == Some(gen_) && !preceded_by_digit {
            found = caps.get(0).map(|m| m.end());
        }
    }
    parse_object(bytes, found?, 0).map(|(o, _)| o)
}

/// A PDF object, as far as the encryption dictionary needs.
#[derive(Debug, Clone, PartialEq)]
enum Object {
    Null,
    Bool(bool),
    Num(i64),
    Real,
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Object>),
    Dict(Vec<(Vec<u8>, Object)>),
    Ref(i64, i64),
    Other,
}

fn is_delim(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while let Some(&b) = bytes.get(at) {
        if b.is_ascii_whitespace() || b == 0 {
            at += 1;
        } else if b == b'%' {
            at = memchr::memchr2(b'\n', b'\r', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        } else {
            break;
        }
    }
    at
}

/// Parses one object at `at`; returns it and the position after it.
fn parse_object(bytes: &[u8], at: usize, nesting: u32) -> Option<(Object, usize)> {
    if nesting > MAX_NESTING {
        return None;
    }
    let at = skip_ws(bytes, at);
    let b = *bytes.get(at)?;
    match b {
        b'<' if bytes.get(at + 1) == Some(&b'<') => {
            let mut pos = at + 2;
            let mut entries = Vec::new();
            loop {
                pos = skip_ws(bytes, pos);
                if bytes.get(pos..pos + 2)? == b">>" {
                    return Some((Object::Dict(entries), pos + 2));
                }
                let (key, after) = parse_object(bytes, pos, nesting + 1)?;
                let Object::Name(key) = key else { return None };
                let (value, after) = parse_object(bytes, after, nesting + 1)?;
                entries.push((key, value));
                pos = after;
            }
        }
        b'<' => {
            let end = at + 1 + memchr::memchr(b'>', &bytes[at + 1..])?;
            let digits: Vec<u8> = bytes[at + 1..end].iter().copied().filter(u8::is_ascii_hexdigit).collect();
            let mut out = Vec::with_capacity(digits.len() / 2 + 1);
            for pair in digits.chunks(2) {
                let hi = hex(pair[0]);
                let lo = pair.get(1).map_or(0, |&c| hex(c));
                out.push(hi << 4 | lo);
            }
            Some((Object::Str(out), end + 1))
        }
        b'(' => parse_literal(bytes, at + 1).map(|(s, end)| (Object::Str(s), end)),
        b'[' => {
            let mut pos = at + 1;
            let mut items = Vec::new();
            loop {
                pos = skip_ws(bytes, pos);
                if *bytes.get(pos)? == b']' {
                    return Some((Object::Array(items), pos + 1));
                }
                let (item, after) = parse_object(bytes, pos, nesting + 1)?;
                items.push(item);
                pos = after;
            }
        }
        b'/' => {
            let end = bytes[at + 1..]
                .iter()
                .position(|&c| c.is_ascii_whitespace() || is_delim(c))
                .map_or(bytes.len(), |i| at + 1 + i);
            Some((Object::Name(bytes[at + 1..end].to_vec()), end))
        }
        b'0'..=b'9' | b'-' | b'+' | b'.' => {
            let (first, after) = parse_number(bytes, at)?;
            // "num gen R" is a reference.
            if let Object::Num(num) = first {
                let p1 = skip_ws(bytes, after);
                if let Some((Object::Num(gen_), p2)) = parse_number(bytes, p1) {
                    let p3 = skip_ws(bytes, p2);
                    if bytes.get(p3) == Some(&b'R') {
                        return Some((Object::Ref(num, gen_), p3 + 1));
                    }
                }
            }
            Some((first, after))
        }
        _ => {
            let end = bytes[at..]
                .iter()
                .position(|&c| c.is_ascii_whitespace() || is_delim(c))
                .map_or(bytes.len(), |i| at + i);
            let word = &bytes[at..end];
            let object = match word {
                b"true" => Object::Bool(true),
                b"false" => Object::Bool(false),
                b"null" => Object::Null,
                _ if word.is_empty() => return None,
                _ => Object::Other,
            };
            Some((object, end))
        }
    }
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn parse_number(bytes: &[u8], at: usize) -> Option<(Object, usize)> {
    let end = bytes[at..]
        .iter()
        .position(|&c| !(c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.')))
        .map_or(bytes.len(), |i| at + i);
    let text = std::str::from_utf8(&bytes[at..end]).ok()?;
    if text.contains('.') {
        return Some((Object::Real, end));
    }
    text.parse::<i64>().ok().map(|n| (Object::Num(n), end))
}

/// A literal string after its opening parenthesis.
fn parse_literal(bytes: &[u8], mut at: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut depth = 1u32;
    while let Some(&b) = bytes.get(at) {
        at += 1;
        match b {
            b'\\' => {
                let c = *bytes.get(at)?;
                at += 1;
                match c {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut value = u32::from(c - b'0');
                        for _ in 0..2 {
                            match bytes.get(at) {
                                Some(&d @ b'0'..=b'7') => {
                                    value = value * 8 + u32::from(d - b'0');
                                    at += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(value as u8);
                    }
                    b'\r' => {
                        if bytes.get(at) == Some(&b'\n') {
                            at += 1;
                        }
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
            }
            b'(' => {
                depth += 1;
                out.push(b);
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some((out, at));
                }
                out.push(b);
            }
            _ => out.push(b),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_without_encrypt_is_plain() {
        assert_eq!(
            check(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>"),
            PdfSecurity::Plain
        );
        // /EncryptMetadata alone is not an /Encrypt entry.
        assert_eq!(check(b"%PDF-1.7\n<< /EncryptMetadata false >>"), PdfSecurity::Plain);
    }

    #[test]
    fn other_security_handler_needs_a_password() {
        let pdf = b"%PDF-1.6\n7 0 obj\n<< /Filter /Adobe.PubSec /V 4 /R 4 >>\nendobj\ntrailer\n<< /Encrypt 7 0 R /ID [<01><01>] >>";
        assert!(matches!(check(pdf), PdfSecurity::Encrypted(d) if d.contains("Adobe.PubSec")));
    }

    #[test]
    fn unreadable_encryption_dictionary_is_treated_as_encrypted() {
        assert!(matches!(check(b"%PDF-1.4\ntrailer << /Encrypt 9 0 R >>"), PdfSecurity::Encrypted(_)));
    }

    #[test]
    fn r3_empty_user_password_is_recognised() {
        // Build U for an empty user password exactly as a writer would,
        // then check that a different U is rejected.
        let id = b"0123456789abcdef";
        let o = [0x11u8; 32];
        let p: i64 = -3904;
        let mut h = Md5::new();
        h.update(PAD);
        h.update(o);
        h.update((p as i32).to_le_bytes());
        h.update(id);
        let mut key = h.finalize().to_vec();
        for _ in 0..50 {
            key = Md5::digest(&key[..16]).to_vec();
        }
        let mut h = Md5::new();
        h.update(PAD);
        h.update(id);
        let mut u = h.finalize().to_vec();
        rc4::apply(&key, &mut u);
        for i in 1..=19u8 {
            let k: Vec<u8> = key.iter().map(|b| b ^ i).collect();
            rc4::apply(&k, &mut u);
        }
        u.extend_from_slice(&[0; 16]);
        assert!(empty_password_opens_rc4_md5(3, &o, &u, p, id, 16, true));
        u[0] ^= 1;
        assert!(!empty_password_opens_rc4_md5(3, &o, &u, p, id, 16, true));
    }

    #[test]
    fn literal_and_hex_strings_decode() {
        let (o, _) = parse_object(b"(a\\(b\\)\\101\\\n(c))", 0, 0).unwrap();
        assert_eq!(o, Object::Str(b"a(b)A(c)".to_vec()));
        let (o, _) = parse_object(b"<41 42 4>", 0, 0).unwrap();
        assert_eq!(o, Object::Str(b"AB@".to_vec()));
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let deep = b"[".repeat(100_000);
        assert!(parse_object(&deep, 0, 0).is_none());
    }
}
