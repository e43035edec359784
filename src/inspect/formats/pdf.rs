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

use crate::inspect::formats::rc4;

/// Whether a PDF needs a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) enum PdfSecurity {
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

/// Most `/Encrypt` values outside the trailer chain looked at; more is hostile.
const MAX_ENCRYPT_CANDIDATES: usize = 64;

/// Most cross-reference sections followed through `/Prev`.
const MAX_XREF_SECTIONS: usize = 64;

/// Whether the PDF needs a password. The encryption dictionary is the one the trailer names,
/// found as a reader finds it: from the last `startxref` through the cross-reference sections
/// and their `/Prev` chain. Every other non-null `/Encrypt` value in the file is checked too,
/// and the strictest answer wins, so neither a stray `/Encrypt null` nor a second `/Encrypt`
/// appended after the real trailer can hide a user password. When no trailer can be read,
/// an `/Encrypt` whose dictionary cannot be read counts as needing a password.
pub(in crate::inspect) fn check(bytes: &[u8]) -> PdfSecurity {
    let mut index = ObjectIndex::new();
    let trailer = trailer_chain(bytes);
    let id_of = |dict: &Dict| match get(dict, b"ID") {
        Some(Object::Array(items)) => match items.first() {
            Some(Object::Str(s)) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let fallback_id = || {
        find_key(bytes, b"/ID")
            .and_then(|at| parse_object(bytes, at, 0))
            .and_then(|(o, _)| match o {
                Object::Array(items) => items.into_iter().next(),
                _ => None,
            })
            .and_then(|o| match o {
                Object::Str(s) => Some(s),
                _ => None,
            })
            .unwrap_or_default()
    };
    let id = trailer.as_ref().and_then(|t| t.dicts.iter().find_map(id_of)).unwrap_or_else(fallback_id);

    let mut verdict = PdfSecurity::Plain;
    let mut seen: Vec<Object> = Vec::new();
    if let Some(value) = trailer.as_ref().and_then(|t| t.encrypt.clone()) {
        let found = match resolve_dict(&value, bytes, &mut index) {
            Some(dict) => check_standard(&dict, &id),
            None => unreadable("the dictionary the trailer names"),
        };
        verdict = stricter(verdict, found);
        seen.push(value);
    }
    // Every other /Encrypt in the file (linear: one forward search; each value parsed where it
    // stands, references through the one-pass object index).
    let mut candidates = 0;
    for at in encrypt_keys(bytes) {
        let Some((value, _)) = parse_object(bytes, at, 0) else {
            if trailer.is_none() {
                verdict = stricter(verdict, unreadable("value of /Encrypt"));
            }
            continue;
        };
        if value == Object::Null || seen.contains(&value) {
            continue;
        }
        candidates += 1;
        if candidates > MAX_ENCRYPT_CANDIDATES {
            return PdfSecurity::Encrypted(format!(
                "PDF with more than {MAX_ENCRYPT_CANDIDATES} /Encrypt entries; not checked"
            ));
        }
        let found = match resolve_dict(&value, bytes, &mut index) {
            Some(dict) => Some(check_standard(&dict, &id)),
            // Outside a readable trailer chain, an unreadable stray entry says nothing.
            None if trailer.is_some() => None,
            None => Some(unreadable("object not found")),
        };
        if let Some(found) = found {
            verdict = stricter(verdict, found);
        }
        seen.push(value);
    }
    verdict
}

fn unreadable(why: &str) -> PdfSecurity {
    PdfSecurity::Encrypted(format!("PDF encryption dictionary not readable ({why})"))
}

/// The answer that keeps more closed: needing a password over an owner password over none.
fn stricter(a: PdfSecurity, b: PdfSecurity) -> PdfSecurity {
    let rank = |s: &PdfSecurity| match s {
        PdfSecurity::Plain => 0,
        PdfSecurity::OwnerPasswordOnly(_) => 1,
        PdfSecurity::Encrypted(_) => 2,
    };
    if rank(&b) > rank(&a) { b } else { a }
}

type Dict = Vec<(Vec<u8>, Object)>;

fn get<'d>(dict: &'d Dict, key: &[u8]) -> Option<&'d Object> {
    dict.iter().find(|(name, _)| name == key).map(|(_, v)| v)
}

/// A dictionary, or the dictionary a reference points at.
fn resolve_dict(value: &Object, bytes: &[u8], index: &mut ObjectIndex) -> Option<Dict> {
    match value {
        Object::Dict(d) => Some(d.clone()),
        Object::Ref(num, gen_) => match index.resolve(bytes, *num, *gen_)? {
            Object::Dict(d) => Some(d),
            _ => None,
        },
        _ => None,
    }
}

/// What the trailer chain says: the trailer dictionaries newest first, and the `/Encrypt`
/// value of the newest that has one.
struct Trailer {
    dicts: Vec<Dict>,
    encrypt: Option<Object>,
}

/// Reads the trailer chain from the last `startxref`; `None` when it cannot be followed.
fn trailer_chain(bytes: &[u8]) -> Option<Trailer> {
    let after = memchr::memmem::rfind(bytes, b"startxref")? + b"startxref".len();
    let (Object::Num(first), _) = parse_number(bytes, skip_ws(bytes, after))? else { return None };
    // Offsets count from the file's start; files with bytes before the header count from it.
    let header = memchr::memmem::find(bytes, b"%PDF-").unwrap_or(0);
    let mut trailer = Trailer { dicts: Vec::new(), encrypt: None };
    let mut offset = first;
    let mut visited = Vec::new();
    for _ in 0..MAX_XREF_SECTIONS {
        if visited.contains(&offset) {
            break;
        }
        visited.push(offset);
        let dict = xref_section(bytes, usize::try_from(offset).ok()?)
            .or_else(|| xref_section(bytes, usize::try_from(offset).ok()?.checked_add(header)?))?;
        if trailer.encrypt.is_none()
            && let Some(value) = get(&dict, b"Encrypt")
        {
            trailer.encrypt = Some(value.clone());
        }
        let prev = match get(&dict, b"Prev") {
            Some(Object::Num(prev)) => Some(*prev),
            _ => None,
        };
        trailer.dicts.push(dict);
        match prev {
            Some(prev) => offset = prev,
            None => break,
        }
    }
    (!trailer.dicts.is_empty()).then_some(trailer)
}

/// The trailer dictionary of the cross-reference section at `at`: a classic `xref` table's
/// `trailer`, or a cross-reference stream's own dictionary.
fn xref_section(bytes: &[u8], at: usize) -> Option<Dict> {
    let at = skip_ws(bytes, at);
    let rest = bytes.get(at..)?;
    if rest.starts_with(b"xref") {
        let trailer = at + memchr::memmem::find(rest, b"trailer")? + b"trailer".len();
        return match parse_object(bytes, trailer, 0)? {
            (Object::Dict(d), _) => Some(d),
            _ => None,
        };
    }
    let dict_at = object_body(bytes, at)?;
    match parse_object(bytes, dict_at, 0)? {
        (Object::Dict(d), _) if matches!(get(&d, b"Type"), Some(Object::Name(n)) if n == b"XRef") => Some(d),
        _ => None,
    }
}

/// Where each `/Encrypt` key's value starts (whole names only).
fn encrypt_keys(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    const KEY: &[u8] = b"/Encrypt";
    memchr::memmem::find_iter(bytes, KEY)
        .map(|at| at + KEY.len())
        .filter(|&after| !matches!(bytes.get(after), Some(b) if is_name_char(*b)))
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'#' || b == b'_'
}

fn check_standard(dict: &Dict, id: &[u8]) -> PdfSecurity {
    let get = |k: &[u8]| get(dict, k);
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
pub(in crate::inspect) fn hash_r6(password: &[u8], salt: &[u8], udata: &[u8]) -> Vec<u8> {
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
    memchr::memmem::find_iter(bytes, key)
        .map(|at| at + key.len())
        .filter(|&after| !matches!(bytes.get(after), Some(b) if is_name_char(*b)))
        .last()
}

/// Where each object `num gen obj` is last defined, built in one pass over the file the first
/// time a reference is resolved (so resolving many references stays linear).
struct ObjectIndex {
    built: Option<std::collections::HashMap<(i64, i64), usize>>,
}

static OBJ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u)(\d+)\s+(\d+)\s+obj\b").expect("object pattern is valid"));

impl ObjectIndex {
    fn new() -> Self {
        ObjectIndex { built: None }
    }

    /// The last definition of object `num gen`.
    fn resolve(&mut self, bytes: &[u8], num: i64, gen_: i64) -> Option<Object> {
        let map = self.built.get_or_insert_with(|| {
            let mut map = std::collections::HashMap::new();
            for caps in OBJ.captures_iter(bytes) {
                let Some(whole) = caps.get(0) else { continue };
                if whole.start() > 0 && bytes[whole.start() - 1].is_ascii_digit() {
                    continue;
                }
                let number = |i: usize| std::str::from_utf8(&caps[i]).ok()?.parse::<i64>().ok();
                if let (Some(n), Some(g)) = (number(1), number(2)) {
                    map.insert((n, g), whole.end());
                }
            }
            map
        });
        let at = *map.get(&(num, gen_))?;
        parse_object(bytes, at, 0).map(|(o, _)| o)
    }
}

/// The position after `num gen obj` when an object starts exactly at `at`.
fn object_body(bytes: &[u8], at: usize) -> Option<usize> {
    let m = OBJ.find_at(bytes.get(..bytes.len().min(at + 64))?, at)?;
    (m.start() == at).then_some(m.end())
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

    /// An R5 standard-handler dictionary; `opens`: the empty user password opens it.
    fn r5_dict(opens: bool) -> String {
        let salt = [7u8; 8];
        let mut u = Sha256::digest(salt).to_vec();
        if !opens {
            u[0] ^= 1;
        }
        u.extend_from_slice(&salt);
        u.extend_from_slice(&[0; 8]);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        format!("<< /Filter /Standard /V 5 /R 5 /O <{}> /U <{}> /P -4 >>", hex(&[1; 48]), hex(&u))
    }

    /// A PDF whose trailer names object `named` (7 needs a password, 8 opens without one).
    fn pdf_with_trailer(named: u32) -> String {
        let body =
            format!("%PDF-1.7\n7 0 obj\n{}\nendobj\n8 0 obj\n{}\nendobj\n", r5_dict(false), r5_dict(true));
        let xref = body.len();
        format!(
            "{body}xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 9 /Encrypt {named} 0 R /ID [<01><01>] >>\nstartxref\n{xref}\n%%EOF\n"
        )
    }

    #[test]
    fn the_trailers_dictionary_decides() {
        assert!(matches!(check(pdf_with_trailer(7).as_bytes()), PdfSecurity::Encrypted(_)));
        assert!(matches!(check(pdf_with_trailer(8).as_bytes()), PdfSecurity::OwnerPasswordOnly(_)));
    }

    #[test]
    fn a_stray_or_appended_encrypt_cannot_hide_a_user_password() {
        for tail in [
            "trailer << /Encrypt null >>\n",
            "% /Encrypt null\n",
            "<< /Encrypt 8 0 R >>\n",
            "<< /Encrypt << /Filter /Standard >> >>\n",
        ] {
            let pdf = format!("{}{tail}", pdf_with_trailer(7));
            assert!(matches!(check(pdf.as_bytes()), PdfSecurity::Encrypted(_)), "{tail}");
        }
        // The other way round: a needs-password dictionary anywhere is not outvoted either.
        let pdf = format!("{}<< /Encrypt 7 0 R >>\n", pdf_with_trailer(8));
        assert!(matches!(check(pdf.as_bytes()), PdfSecurity::Encrypted(_)));
    }

    #[test]
    fn cross_reference_streams_and_prev_chains_are_followed() {
        let body = format!("%PDF-1.7\n7 0 obj\n{}\nendobj\n", r5_dict(false));
        let old = body.len();
        let mut pdf =
            format!("{body}9 0 obj\n<< /Type /XRef /Size 10 /Encrypt 7 0 R >>\nstream\nendstream\nendobj\n");
        let new = pdf.len();
        pdf.push_str(&format!(
            "xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 10 /Prev {old} >>\nstartxref\n{new}\n%%EOF\n"
        ));
        // Only the older section names the dictionary, through a cross-reference stream.
        let trailer = trailer_chain(pdf.as_bytes()).expect("a readable chain");
        assert_eq!(trailer.dicts.len(), 2);
        assert_eq!(trailer.encrypt, Some(Object::Ref(7, 0)));
        assert!(matches!(check(pdf.as_bytes()), PdfSecurity::Encrypted(_)));
        let looped = pdf.replace(&format!("/Prev {old}"), &format!("/Prev {new}"));
        let trailer = trailer_chain(looped.as_bytes()).expect("a readable chain");
        assert_eq!(trailer.dicts.len(), 1, "a /Prev loop ends");
    }

    #[test]
    fn many_encrypt_entries_stay_linear_and_are_refused() {
        let many = format!("%PDF-1.7\n{}", "<< /Encrypt << /Filter /Standard /R 5 >> >>\n".repeat(10_000));
        assert!(matches!(check(many.as_bytes()), PdfSecurity::Encrypted(_)));
        let nulls = format!("{}{}", pdf_with_trailer(8), "/Encrypt null\n".repeat(100_000));
        assert!(matches!(check(nulls.as_bytes()), PdfSecurity::OwnerPasswordOnly(_)));
    }
}
