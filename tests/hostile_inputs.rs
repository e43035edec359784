//! Generators of hostile messages: the inputs of the bounded-time tests and
//! of the release-mode measurements (`examples/hostile.rs` writes them to
//! files). Everything is built in memory from scratch.

#![allow(dead_code)]

use std::io::Write;

/// A ZIP member for [`zip`]: name, content, deflated or stored.
pub struct Member<'m> {
    pub name: &'m str,
    pub data: &'m [u8],
    pub deflate: bool,
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

fn local_header(out: &mut Vec<u8>, name: &str, method: u16, crc: u32, csize: u32, usize_: u32) {
    out.extend_from_slice(b"PK\x03\x04");
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&csize.to_le_bytes());
    out.extend_from_slice(&usize_.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
}

fn central_entry(out: &mut Vec<u8>, name: &str, method: u16, crc: u32, csize: u32, usize_: u32, offset: u32) {
    out.extend_from_slice(b"PK\x01\x02");
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&method.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&csize.to_le_bytes());
    out.extend_from_slice(&usize_.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
}

fn end_record(out: &mut Vec<u8>, count: u16, cd_size: u32, cd_offset: u32) {
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
}

/// A well-formed ZIP archive.
pub fn zip(members: &[Member<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let body = if m.deflate { deflate(m.data) } else { m.data.to_vec() };
        let crc = crc32fast::hash(m.data);
        let method = if m.deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        local_header(&mut out, m.name, method, crc, body.len() as u32, m.data.len() as u32);
        out.extend_from_slice(&body);
        central_entry(&mut central, m.name, method, crc, body.len() as u32, m.data.len() as u32, offset);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    end_record(&mut out, members.len() as u16, cd_size, cd_offset);
    out
}

/// 42.zip-style recursive bomb: `levels` levels of archives, each holding
/// `fanout` copies of the level below; the leaves are `leaf_bytes` zeros.
pub fn recursive_bomb(levels: u32, fanout: usize, leaf_bytes: usize) -> Vec<u8> {
    let leaf = vec![0u8; leaf_bytes];
    let names: Vec<String> = (0..fanout).map(|i| format!("{i}.bin")).collect();
    let mut current =
        zip(&names.iter().map(|n| Member { name: n, data: &leaf, deflate: true }).collect::<Vec<_>>());
    for level in 1..levels {
        let names: Vec<String> = (0..fanout).map(|i| format!("lib{level}-{i}.zip")).collect();
        let members: Vec<Member<'_>> =
            names.iter().map(|n| Member { name: n, data: &current, deflate: true }).collect();
        current = zip(&members);
    }
    current
}

/// Overlapping-entry bomb (after David Fifield's "A better zip bomb"): one
/// deflated kernel of `kernel_bytes` zeros and `entries` central directory
/// entries that all point at it, so each entry re-inflates the same data.
pub fn overlapping_bomb(entries: u16, kernel_bytes: usize) -> Vec<u8> {
    let kernel = vec![0u8; kernel_bytes];
    let packed = deflate(&kernel);
    let crc = crc32fast::hash(&kernel);
    let mut out = Vec::new();
    local_header(&mut out, "0", 8, crc, packed.len() as u32, kernel.len() as u32);
    out.extend_from_slice(&packed);
    let mut central = Vec::new();
    for i in 0..entries {
        let name = format!("{i}");
        central_entry(&mut central, &name, 8, crc, packed.len() as u32, kernel.len() as u32, 0);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    end_record(&mut out, entries, cd_size, cd_offset);
    out
}

/// Base64 with 76-character lines.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for (i, c) in data.chunks(3).enumerate() {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
        if i % 19 == 18 {
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

/// A message with one base64 attachment.
pub fn with_attachment(name: &str, content_type: &str, data: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.org\nTo: b@example.org\nSubject: attachment\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nsee attached\n\
--b\nContent-Type: {content_type}; name=\"{name}\"\nContent-Disposition: attachment; filename=\"{name}\"\n\
Content-Transfer-Encoding: base64\n\n"
    )
    .into_bytes();
    m.extend_from_slice(base64(data).as_bytes());
    m.extend_from_slice(b"--b--\n");
    m
}

/// `depth` multiparts nested inside each other.
pub fn deep_multipart(depth: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\nSubject: deep\nMIME-Version: 1.0\n".to_vec();
    for i in 0..depth {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n").as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\n\ninnermost\n");
    for i in (0..depth).rev() {
        m.extend_from_slice(format!("--b{i}--\n").as_bytes());
    }
    m
}

/// `depth` message/rfc822 parts nested inside each other.
pub fn deep_messages(depth: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\nSubject: deep\nMIME-Version: 1.0\n".to_vec();
    for _ in 0..depth {
        m.extend_from_slice(b"Content-Type: message/rfc822\n\nSubject: inner\n");
    }
    m.extend_from_slice(b"\ninnermost\n");
    m
}

/// A base64 message/rfc822 part whose content nests `depth` messages.
pub fn encoded_deep_messages(depth: usize) -> Vec<u8> {
    let inner = deep_messages(depth);
    let mut m = b"From: a@example.org\nSubject: encoded\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: message/rfc822\n\
Content-Transfer-Encoding: base64\n\n"
        .to_vec();
    m.extend_from_slice(base64(&inner).as_bytes());
    m.extend_from_slice(b"--b--\n");
    m
}

/// A multipart with `parts` small text parts.
pub fn many_parts(parts: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\nSubject: many\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n".to_vec();
    for i in 0..parts {
        m.extend_from_slice(format!("--b\nContent-Type: text/plain\n\npart {i}\n").as_bytes());
    }
    m.extend_from_slice(b"--b--\n");
    m
}

/// A text/plain body of `bytes` bytes without a single line break.
pub fn single_line_body(bytes: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\nSubject: long line\n\n".to_vec();
    m.resize(m.len() + bytes, b'a');
    m.push(b'\n');
    m
}

/// A header field of `bytes` bytes on one line.
pub fn huge_header(bytes: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\nX-Long: ".to_vec();
    m.resize(m.len() + bytes, b'h');
    m.extend_from_slice(b"\nSubject: big header\n\nbody\n");
    m
}
