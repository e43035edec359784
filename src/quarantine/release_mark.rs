//! The release mark: a header on a released message that lets the milter deliver it without
//! quarantining it a second time — and that nobody without the secret can make, or move onto
//! another message.
//!
//! `X-Inspect-Release: v1; id=<entry id>; t=<unix time>; mac=<hex HMAC-SHA256>` where the MAC
//! covers the version, the id, the time and a digest of the message content. The digest is
//! taken over what survives a trip through an MTA: the body with line ends made CRLF and
//! trailing blank lines dropped, and the unfolded values of From, To, Cc, Subject, Date and
//! Message-ID — not over every header, because MTAs add their own (Received, Message-Id when
//! missing). A copy of a valid mark on a different body or subject fails; so does a mark made
//! with another secret, and one older than the configured age.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Id;

pub const HEADER: &str = "X-Inspect-Release";

/// The headers whose values the digest covers.
const COVERED: [&str; 6] = ["from", "to", "cc", "subject", "date", "message-id"];

/// The key of the release MACs: 32 random bytes in a file of mode 0600.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn from_bytes(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// Reads the secret, or `None` when the file does not exist.
    pub fn load(path: &Path) -> std::io::Result<Option<Secret>> {
        match std::fs::read(path) {
            Ok(b) if b.len() >= 16 => Ok(Some(Secret(b))),
            Ok(_) => {
                Err(std::io::Error::other(format!("{}: too short to be a release secret", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the secret, creating it (mode 0600, 32 random bytes) on first use. Two processes
    /// racing to create it agree: the loser of `create_new` reads the winner's. Created by root
    /// in a directory of another user (the daemon's), it is that user's (see `ownership`).
    pub fn load_or_create(path: &Path) -> std::io::Result<Secret> {
        if let Some(s) = Secret::load(path)? {
            return Ok(s);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut key = [0u8; 32];
        crate::random::fill(&mut key)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        if let Some(owner) = path.parent().and_then(super::ownership::inherited) {
            owner.give(&f)?;
        }
        f.write_all(&key)?;
        f.sync_all()?;
        drop(f);
        // link, not rename: an existing secret is never replaced.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Secret(key.to_vec())),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Secret::load(path)?.ok_or_else(|| std::io::Error::other("release secret vanished"))
            }
            Err(e) => Err(e),
        }
    }

    fn mac(&self, id: &str, t: u64, digest: &[u8]) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(format!("v1|{id}|{t}|").as_bytes());
        m.update(digest);
        crate::hex::encode(&m.finalize().into_bytes())
    }
}

/// The digest of what a release mark vouches for (see the module doc).
pub fn content_digest(raw: &[u8]) -> [u8; 32] {
    let (head, body) = split(raw);
    let mut h = Sha256::new();
    let headers = unfolded_headers(head);
    for name in COVERED {
        let value =
            headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()).unwrap_or("");
        h.update(name.as_bytes());
        h.update(b":");
        h.update(value.as_bytes());
        h.update(b"\n");
    }
    let mut lines: Vec<&[u8]> =
        body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for l in lines {
        h.update(l);
        h.update(b"\r\n");
    }
    h.finalize().into()
}

/// The header value that marks `raw` (without any mark) as released from entry `id`.
pub fn mark(secret: &Secret, id: &Id, at: SystemTime, raw: &[u8]) -> String {
    let t = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("v1; id={}; t={t}; mac={}", id.as_str(), secret.mac(id.as_str(), t, &content_digest(raw)))
}

/// Why a mark does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    Missing,
    Malformed,
    /// The MAC does not match: forged, made with another secret, or moved to other content.
    BadMac,
    Expired,
}

/// Checks the release mark in `raw` (the message as received, mark included). Returns the
/// entry id it vouches for.
pub fn verify(secret: &Secret, raw: &[u8], now: SystemTime, max_age: Duration) -> Result<String, Invalid> {
    let (head, _) = split(raw);
    let headers = unfolded_headers(head);
    let mut marks = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(HEADER));
    let (_, value) = marks.next().ok_or(Invalid::Missing)?;
    if marks.next().is_some() {
        return Err(Invalid::Malformed);
    }
    let mut id = None;
    let mut t = None;
    let mut mac = None;
    let mut parts = value.split(';').map(str::trim);
    if parts.next() != Some("v1") {
        return Err(Invalid::Malformed);
    }
    for p in parts {
        match p.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("mac", v)) => mac = Some(v.to_string()),
            _ => return Err(Invalid::Malformed),
        }
    }
    let (Some(id), Some(t), Some(mac)) = (id, t, mac) else { return Err(Invalid::Malformed) };
    let id = Id::parse(&id).map_err(|_| Invalid::Malformed)?;
    let without = remove_mark(raw);
    let want = secret.mac(id.as_str(), t, &content_digest(&without));
    if !constant_time_eq(want.as_bytes(), mac.as_bytes()) {
        return Err(Invalid::BadMac);
    }
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now.saturating_sub(t) > max_age.as_secs() || t > now + 300 {
        return Err(Invalid::Expired);
    }
    Ok(id.as_str().to_string())
}

/// `raw` with the mark put in front (the released copy).
pub fn apply(secret: &Secret, id: &Id, at: SystemTime, raw: &[u8]) -> Vec<u8> {
    let clean = remove_mark(raw);
    let mut out = format!("{HEADER}: {}\r\n", mark(secret, id, at, &clean)).into_bytes();
    out.extend_from_slice(&clean);
    out
}

/// The message without any release mark line (folded continuations included).
fn remove_mark(raw: &[u8]) -> Vec<u8> {
    let (head, body) = split(raw);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if !skipping {
                out.extend_from_slice(line);
            }
            continue;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or(b"");
        skipping = name.trim_ascii().eq_ignore_ascii_case(HEADER.as_bytes());
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[head.len()..head.len() + (raw.len() - head.len() - body.len())]);
    out.extend_from_slice(body);
    out
}

/// Header block (up to and including the last header line) and body (after the blank line).
fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        let end = raw[i..].iter().position(|&b| b == b'\n').map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..end];
        if line == b"\n" || line == b"\r\n" {
            return (&raw[..i], &raw[end..]);
        }
        i = end;
    }
    (raw, b"")
}

fn unfolded_headers(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: invoice\r\nMessage-ID: <m@x>\r\n\r\nbody line\r\n";

    fn id() -> Id {
        Id::parse("20261128T201502Z-3f9a1c2b4d5e").unwrap()
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_000_000)
    }

    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn a_valid_mark_verifies_after_an_mta_trip() {
        let s = Secret::from_bytes(&[7; 32]);
        let released = apply(&s, &id(), now(), MSG);
        assert!(released.starts_with(b"X-Inspect-Release: v1; id=20261128T201502Z-3f9a1c2b4d5e; t="));
        assert_eq!(verify(&s, &released, now(), DAY), Ok(id().as_str().to_string()));
        // An MTA adds headers, rewrites LF line ends and appends a blank line: still valid.
        let mut trip = b"Received: from relay\r\n\tby mx\r\n".to_vec();
        trip.extend_from_slice(&released);
        trip.extend_from_slice(b"\r\n");
        let lf: Vec<u8> = trip.iter().copied().filter(|&b| b != b'\r').collect();
        assert_eq!(verify(&s, &lf, now() + Duration::from_secs(60), DAY), Ok(id().as_str().to_string()));
    }

    #[test]
    fn a_forged_mark_fails() {
        let s = Secret::from_bytes(&[7; 32]);
        let mut forged =
            format!("{HEADER}: v1; id={}; t=1795000000; mac={}\r\n", id().as_str(), "0".repeat(64))
                .into_bytes();
        forged.extend_from_slice(MSG);
        assert_eq!(verify(&s, &forged, now(), DAY), Err(Invalid::BadMac));
        assert_eq!(verify(&s, MSG, now(), DAY), Err(Invalid::Missing));
        let mut junk = b"X-Inspect-Release: hello\r\n".to_vec();
        junk.extend_from_slice(MSG);
        assert_eq!(verify(&s, &junk, now(), DAY), Err(Invalid::Malformed));
    }

    #[test]
    fn a_mark_replayed_onto_other_content_fails() {
        let s = Secret::from_bytes(&[7; 32]);
        let released = apply(&s, &id(), now(), MSG);
        let mark_line = &released[..released.iter().position(|&b| b == b'\n').unwrap() + 1];
        for other in [
            &b"From: a@example.org\r\nTo: b@example.net\r\nSubject: invoice\r\nMessage-ID: <m@x>\r\n\r\nmalware\r\n"[..],
            &b"From: a@example.org\r\nTo: b@example.net\r\nSubject: other\r\nMessage-ID: <m@x>\r\n\r\nbody line\r\n"[..],
        ] {
            let mut moved = mark_line.to_vec();
            moved.extend_from_slice(other);
            assert_eq!(verify(&s, &moved, now(), DAY), Err(Invalid::BadMac));
        }
    }

    #[test]
    fn another_secret_or_an_old_mark_fails() {
        let old = Secret::from_bytes(&[7; 32]);
        let released = apply(&old, &id(), now(), MSG);
        assert_eq!(
            verify(&Secret::from_bytes(&[8; 32]), &released, now(), DAY),
            Err(Invalid::BadMac),
            "rotated secret"
        );
        assert_eq!(verify(&old, &released, now() + 2 * DAY, DAY), Err(Invalid::Expired));
    }

    #[test]
    fn two_marks_are_refused_and_a_mark_is_replaced_not_added() {
        let s = Secret::from_bytes(&[7; 32]);
        let once = apply(&s, &id(), now(), MSG);
        let twice = apply(&s, &id(), now(), &once);
        assert_eq!(twice.windows(HEADER.len()).filter(|w| *w == HEADER.as_bytes()).count(), 1);
        let mut doubled = once.clone();
        doubled.splice(0..0, once[..once.iter().position(|&b| b == b'\n').unwrap() + 1].iter().copied());
        assert_eq!(verify(&s, &doubled, now(), DAY), Err(Invalid::Malformed));
    }

    #[test]
    fn the_secret_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("im-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("release.key");
        let a = Secret::load_or_create(&path).unwrap();
        let b = Secret::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
