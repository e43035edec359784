//! ZIP containers read from memory, by hand. The walk needs what a general
//! ZIP library does not hand out: the encryption flags before trying to read,
//! where each member's data really lies (overlapping members are how
//! "non-recursive" zip bombs reach petabytes), a member count it can stop at
//! before anything is allocated, and inflation that never goes past a cap.
//! Only stored and deflated members are decompressed; the central directory
//! is authoritative, as it is for the mail client that opens the archive.

use std::io::Read;
use std::ops::Range;

use thiserror::Error;

/// Why an archive (or a member) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(in crate::inspect) enum ZipError {
    #[error("no end of central directory record")]
    NoEndRecord,
    #[error("central directory is damaged: {0}")]
    BadDirectory(&'static str),
    #[error("local header of the member is missing or damaged")]
    BadLocalHeader,
    #[error("member data runs past the end of the archive")]
    Truncated,
    #[error("deflate stream is damaged: {0}")]
    BadDeflate(String),
}

/// One central directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) struct Entry {
    pub name: String,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    /// Offset of the local header in the buffer (prepended data accounted).
    pub header_offset: u64,
    /// Carries the WinZip AES extra field (0x9901).
    pub aes: bool,
}

impl Entry {
    /// Password-protected: traditional PKWARE encryption (flag bit 0), strong
    /// encryption (bit 6) or WinZip AES (method 99 / extra field 0x9901).
    pub fn encrypted(&self) -> bool {
        self.flags & 0x0001 != 0 || self.flags & 0x0040 != 0 || self.method == 99 || self.aes
    }

    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/') || self.name.ends_with('\\')
    }
}

/// The listing of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) struct Directory {
    pub entries: Vec<Entry>,
    /// Entry count the end record declares (may exceed `entries.len()`).
    pub declared: u64,
    /// Bytes in front of the archive proper (self-extractor stub, polyglot).
    pub prepended: u64,
    /// The central directory itself is encrypted (flag bit 13 on entries).
    pub encrypted_directory: bool,
    /// The listing stopped early on a damaged entry (what was wrong).
    pub damaged: Option<&'static str>,
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

const EOCD_SIG: &[u8] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
/// The end record sits within the last 64 KiB (its comment) + 22 bytes.
const EOCD_SEARCH: usize = 0xFFFF + EOCD_LEN;

/// Offset of the end-of-central-directory record, if `data` is a ZIP.
pub(in crate::inspect) fn find_end_record(data: &[u8]) -> Option<usize> {
    if data.len() < EOCD_LEN {
        return None;
    }
    let window_start = data.len().saturating_sub(EOCD_SEARCH);
    // The last signature whose comment fits; a forward SIMD search over the window is
    // several times faster than a backward one.
    memchr::memmem::find_iter(&data[window_start..], EOCD_SIG)
        .map(|i| window_start + i)
        .filter(|&at| {
            let comment = usize::from(u16_at(data, at + 20).unwrap_or(u16::MAX));
            at + EOCD_LEN + comment <= data.len()
        })
        .last()
}

/// Reads the central directory, keeping at most `max_entries` entries. Linear: entries are
/// read one after the other from the directory's start, each once.
pub(in crate::inspect) fn read_directory(data: &[u8], max_entries: usize) -> Result<Directory, ZipError> {
    let eocd = find_end_record(data).ok_or(ZipError::NoEndRecord)?;
    let bad = ZipError::BadDirectory;
    let mut declared = u64::from(u16_at(data, eocd + 10).ok_or(bad("short end record"))?);
    let mut cd_size = u64::from(u32_at(data, eocd + 12).ok_or(bad("short end record"))?);
    let mut cd_offset = u64::from(u32_at(data, eocd + 16).ok_or(bad("short end record"))?);
    let mut cd_end = eocd as u64;

    if declared == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        // ZIP64: the locator sits right before the end record.
        if eocd >= 20 && data.get(eocd - 20..eocd - 16) == Some(b"PK\x06\x07") {
            let z64 = u64_at(data, eocd - 20 + 8).ok_or(bad("short zip64 locator"))?;
            let z64 = usize::try_from(z64).map_err(|_| bad("zip64 record offset"))?;
            // Trust the record's position right before the locator if the
            // stated offset does not point at one (prepended data).
            let at = if data.get(z64..z64 + 4) == Some(b"PK\x06\x06") {
                z64
            } else {
                let guess = eocd.checked_sub(20 + 56).ok_or(bad("zip64 record"))?;
                if data.get(guess..guess + 4) != Some(b"PK\x06\x06") {
                    return Err(bad("zip64 record not found"));
                }
                guess
            };
            declared = u64_at(data, at + 32).ok_or(bad("short zip64 record"))?;
            cd_size = u64_at(data, at + 40).ok_or(bad("short zip64 record"))?;
            cd_offset = u64_at(data, at + 48).ok_or(bad("short zip64 record"))?;
            cd_end = at as u64;
        }
    }

    let is_cd = |at: u64| {
        usize::try_from(at).ok().and_then(|a| data.get(a..a.checked_add(4)?)) == Some(b"PK\x01\x02")
    };
    let (cd_start, prepended) = if declared == 0 || is_cd(cd_offset) {
        (cd_offset, 0)
    } else {
        let actual = cd_end.checked_sub(cd_size).ok_or(bad("directory size"))?;
        if !is_cd(actual) || actual < cd_offset {
            return Err(bad("directory not where the end record says"));
        }
        (actual, actual - cd_offset)
    };

    let mut entries = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(max_entries).min(1024));
    let mut pos = usize::try_from(cd_start).map_err(|_| bad("directory offset"))?;
    let mut encrypted_directory = false;
    let mut damaged = None;
    for _ in 0..declared.min(max_entries as u64) {
        match read_entry(data, pos, prepended) {
            Ok((entry, next)) => {
                encrypted_directory |= entry.flags & 0x2000 != 0;
                entries.push(entry);
                pos = next;
            }
            Err(ZipError::BadDirectory(why)) => {
                damaged = Some(why);
                break;
            }
            Err(_) => {
                damaged = Some("entry");
                break;
            }
        }
    }
    if entries.is_empty()
        && let Some(why) = damaged
    {
        return Err(ZipError::BadDirectory(why));
    }
    Ok(Directory { entries, declared, prepended, encrypted_directory, damaged })
}

/// Reads the central directory entry at `pos`; returns it and where the
/// next one starts.
fn read_entry(data: &[u8], pos: usize, prepended: u64) -> Result<(Entry, usize), ZipError> {
    let bad = ZipError::BadDirectory;
    if data.get(pos..pos + 4) != Some(b"PK\x01\x02") {
        return Err(bad("entry signature"));
    }
    let flags = u16_at(data, pos + 8).ok_or(bad("short entry"))?;
    let method = u16_at(data, pos + 10).ok_or(bad("short entry"))?;
    let crc32 = u32_at(data, pos + 16).ok_or(bad("short entry"))?;
    let mut compressed = u64::from(u32_at(data, pos + 20).ok_or(bad("short entry"))?);
    let mut uncompressed = u64::from(u32_at(data, pos + 24).ok_or(bad("short entry"))?);
    let name_len = usize::from(u16_at(data, pos + 28).ok_or(bad("short entry"))?);
    let extra_len = usize::from(u16_at(data, pos + 30).ok_or(bad("short entry"))?);
    let comment_len = usize::from(u16_at(data, pos + 32).ok_or(bad("short entry"))?);
    let mut offset = u64::from(u32_at(data, pos + 42).ok_or(bad("short entry"))?);
    let name_start = pos + 46;
    let name = data.get(name_start..name_start + name_len).ok_or(bad("entry name past end"))?;
    let extra = data
        .get(name_start + name_len..name_start + name_len + extra_len)
        .ok_or(bad("entry extra past end"))?;
    let mut aes = false;
    let mut e = 0;
    while e + 4 <= extra.len() {
        let id = u16_at(extra, e).unwrap_or(0);
        let size = usize::from(u16_at(extra, e + 2).unwrap_or(0));
        let body = extra.get(e + 4..e + 4 + size).unwrap_or(&[]);
        match id {
            0x0001 => {
                let mut k = 0;
                if uncompressed == 0xFFFF_FFFF {
                    uncompressed = u64_at(body, k).unwrap_or(uncompressed);
                    k += 8;
                }
                if compressed == 0xFFFF_FFFF {
                    compressed = u64_at(body, k).unwrap_or(compressed);
                    k += 8;
                }
                if offset == 0xFFFF_FFFF {
                    offset = u64_at(body, k).unwrap_or(offset);
                }
            }
            0x9901 => aes = true,
            _ => {}
        }
        e += 4 + size;
    }
    let entry = Entry {
        name: String::from_utf8_lossy(name).into_owned(),
        flags,
        method,
        crc32,
        compressed,
        uncompressed,
        header_offset: offset.saturating_add(prepended),
        aes,
    };
    Ok((entry, name_start + name_len + extra_len + comment_len))
}

/// Where a member's bytes lie: the whole span from its local header to the
/// end of its data (for overlap checks), and the data itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) struct Located {
    pub span: Range<usize>,
    pub data: Range<usize>,
    /// The local header names the member differently from the directory.
    pub name_differs: bool,
}

pub(in crate::inspect) fn locate(data: &[u8], entry: &Entry) -> Result<Located, ZipError> {
    let at = usize::try_from(entry.header_offset).map_err(|_| ZipError::BadLocalHeader)?;
    if data.get(at..at.saturating_add(4)) != Some(b"PK\x03\x04") {
        return Err(ZipError::BadLocalHeader);
    }
    let name_len = usize::from(u16_at(data, at + 26).ok_or(ZipError::BadLocalHeader)?);
    let extra_len = usize::from(u16_at(data, at + 28).ok_or(ZipError::BadLocalHeader)?);
    let start = at + 30 + name_len + extra_len;
    let local_name = data.get(at + 30..at + 30 + name_len).ok_or(ZipError::BadLocalHeader)?;
    let len = usize::try_from(entry.compressed).map_err(|_| ZipError::Truncated)?;
    let end = start.checked_add(len).ok_or(ZipError::Truncated)?;
    if end > data.len() {
        return Err(ZipError::Truncated);
    }
    Ok(Located {
        span: at..end,
        data: start..end,
        name_differs: String::from_utf8_lossy(local_name) != entry.name,
    })
}

/// Inflates a raw deflate stream, producing at most `cap` bytes; the flag
/// says whether more output was available.
pub(in crate::inspect) fn inflate(compressed: &[u8], cap: usize) -> Result<(Vec<u8>, bool), ZipError> {
    let mut out = crate::memory::buffer(compressed.len().saturating_mul(4).min(cap).min(1 << 20));
    let decoder = flate2::read::DeflateDecoder::new(compressed);
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    match decoder.take(limit).read_to_end(&mut out) {
        Ok(_) => {}
        // A damaged stream still yields what inflated before the damage.
        Err(err) if out.is_empty() => return Err(ZipError::BadDeflate(err.to_string())),
        Err(_) => {}
    }
    let truncated = out.len() > cap;
    out.truncate(cap);
    Ok((out, truncated))
}

#[cfg(test)]
pub(in crate::inspect) mod testzip {
    //! A minimal ZIP writer for tests: stored or deflated members, optional
    //! flags, and full control over offsets for hostile layouts.

    use std::io::Write;

    pub struct Member<'m> {
        pub name: &'m str,
        pub data: &'m [u8],
        pub deflate: bool,
        pub flags: u16,
    }

    impl<'m> Member<'m> {
        pub fn stored(name: &'m str, data: &'m [u8]) -> Self {
            Member { name, data, deflate: false, flags: 0 }
        }
        pub fn deflated(name: &'m str, data: &'m [u8]) -> Self {
            Member { name, data, deflate: true, flags: 0 }
        }
    }

    pub fn deflate(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    pub fn build(members: &[Member<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for m in members {
            let body = if m.deflate { deflate(m.data) } else { m.data.to_vec() };
            let crc = crc32fast::hash(m.data);
            let offset = out.len() as u32;
            let method: u16 = if m.deflate { 8 } else { 0 };
            local_header(&mut out, m.name, m.flags, method, crc, body.len() as u32, m.data.len() as u32);
            out.extend_from_slice(&body);
            central_entry(
                &mut central,
                m.name,
                m.flags,
                method,
                crc,
                body.len() as u32,
                m.data.len() as u32,
                offset,
            );
        }
        finish(out, &central, members.len() as u16)
    }

    pub fn local_header(
        out: &mut Vec<u8>,
        name: &str,
        flags: u16,
        method: u16,
        crc: u32,
        csize: u32,
        usize_: u32,
    ) {
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&usize_.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }

    #[allow(clippy::too_many_arguments)]
    pub fn central_entry(
        out: &mut Vec<u8>,
        name: &str,
        flags: u16,
        method: u16,
        crc: u32,
        csize: u32,
        usize_: u32,
        offset: u32,
    ) {
        out.extend_from_slice(b"PK\x01\x02");
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
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

    pub fn finish(mut out: Vec<u8>, central: &[u8], count: u16) -> Vec<u8> {
        let cd_offset = out.len() as u32;
        out.extend_from_slice(central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testzip::*;
    use super::*;

    #[test]
    fn stored_and_deflated_members_are_listed_and_located() {
        let zip = build(&[Member::stored("a.txt", b"hello"), Member::deflated("b/c.txt", &[b'x'; 1000])]);
        let dir = read_directory(&zip, 10).unwrap();
        assert_eq!(dir.declared, 2);
        assert_eq!(dir.entries[1].name, "b/c.txt");
        assert_eq!(dir.entries[1].method, 8);
        let loc = locate(&zip, &dir.entries[0]).unwrap();
        assert_eq!(&zip[loc.data.clone()], b"hello");
        let loc = locate(&zip, &dir.entries[1]).unwrap();
        let (out, truncated) = inflate(&zip[loc.data], 10_000).unwrap();
        assert_eq!(out, vec![b'x'; 1000]);
        assert!(!truncated);
    }

    #[test]
    fn prepended_data_is_accounted_for() {
        let mut zip = b"MZ stub of a self-extractor".to_vec();
        let stub = zip.len() as u64;
        zip.extend(build(&[Member::stored("a.txt", b"hello")]));
        let dir = read_directory(&zip, 10).unwrap();
        assert_eq!(dir.prepended, stub);
        let loc = locate(&zip, &dir.entries[0]).unwrap();
        assert_eq!(&zip[loc.data], b"hello");
    }

    #[test]
    fn listing_stops_at_max_entries() {
        let members: Vec<_> = (0..5).map(|_| Member::stored("x", b"")).collect();
        let dir = read_directory(&build(&members), 3).unwrap();
        assert_eq!(dir.entries.len(), 3);
        assert_eq!(dir.declared, 5);
    }

    #[test]
    fn encryption_flag_is_seen() {
        let mut m = Member::stored("secret.txt", b"xxxx");
        m.flags = 1;
        let dir = read_directory(&build(&[m]), 10).unwrap();
        assert!(dir.entries[0].encrypted());
    }

    #[test]
    fn inflate_stops_at_cap() {
        let packed = deflate(&vec![0u8; 1 << 20]);
        let (out, truncated) = inflate(&packed, 1000).unwrap();
        assert_eq!(out.len(), 1000);
        assert!(truncated);
    }

    #[test]
    fn garbage_is_not_a_zip() {
        assert_eq!(read_directory(b"PK\x03\x04 but nothing else", 10), Err(ZipError::NoEndRecord));
        let mut broken = build(&[Member::stored("a", b"1")]);
        let len = broken.len();
        broken[len - 6..len - 2].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        assert!(read_directory(&broken, 10).is_err());
    }
}
