//! Packet framing for the milter wire protocol, without any I/O.
//!
//! Every packet is a 32-bit big-endian length (which counts the command byte), one command byte
//! and `length - 1` bytes of payload. [`decode`] looks at a buffer and either yields one whole
//! packet, says more bytes are needed, or rejects the stream. It never allocates and never
//! panics, which makes it the natural fuzz target for everything an MTA (or anything else that
//! connects to our socket) can send.

use std::fmt;

/// Largest packet we accept, in bytes (length field value).
///
/// Postfix's `header_size_limit` defaults to 102400 bytes, so one `SMFIC_HEADER` packet can be
/// well past libmilter's historical 64 KiB; body chunks are at most 65535 bytes. 1 MiB leaves
/// room for both with a wide margin while keeping a hostile length from making us buffer
/// gigabytes. A packet beyond it closes the connection (the MTA applies its default action).
pub const MAX_PACKET: u32 = 1024 * 1024;

/// One framed packet borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub code: u8,
    pub data: &'a [u8],
}

/// Why a byte stream cannot be a milter conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length field is 0: there is not even a command byte.
    Empty,
    /// The length field exceeds the cap; `looks_like` names a recognisable other protocol.
    TooLarge { len: u32, looks_like: Option<&'static str> },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Empty => write!(f, "zero-length packet"),
            FrameError::TooLarge { len, looks_like: Some(proto) } => write!(
                f,
                "packet length {len} exceeds the {MAX_PACKET}-byte cap; the peer looks like {proto}, not an MTA speaking the milter protocol"
            ),
            FrameError::TooLarge { len, looks_like: None } => {
                write!(f, "packet length {len} exceeds the {MAX_PACKET}-byte cap")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Decodes the packet at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a packet (read more), or
/// `Ok(Some((packet, consumed)))`.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, FrameError> {
    let Some(head) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*head);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_PACKET {
        return Err(FrameError::TooLarge { len, looks_like: sniff_foreign(head) });
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let packet = Packet { code: buf[4], data: &buf[5..total] };
    Ok(Some((packet, total)))
}

/// Names the protocol whose first bytes someone sent us instead of a milter packet, so the log
/// line says "an HTTP client connected" rather than only "bad length".
fn sniff_foreign(head: &[u8; 4]) -> Option<&'static str> {
    const KNOWN: [(&[u8], &str); 9] = [
        (b"GET ", "HTTP"),
        (b"POST", "HTTP"),
        (b"HEAD", "HTTP"),
        (b"PUT ", "HTTP"),
        (b"EHLO", "SMTP"),
        (b"HELO", "SMTP"),
        (b"\x16\x03\x01", "TLS"),
        (b"\x16\x03\x03", "TLS"),
        (b"SSH-", "SSH"),
    ];
    KNOWN.iter().find(|(magic, _)| head.starts_with(magic)).map(|(_, name)| *name)
}

/// Encodes one packet: length, command byte, payload.
pub fn encode(code: u8, data: &[u8], out: &mut Vec<u8>) {
    // Replies we build are far below 4 GiB; the cap on what we send is the MTA's (Postfix:
    // INT_MAX/2), which our largest reply (an SMTP reply of a few hundred bytes) never nears.
    let len = u32::try_from(data.len() + 1).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(code);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_waits_for_the_length_field() {
        assert_eq!(decode(b""), Ok(None));
        assert_eq!(decode(b"\0\0\0"), Ok(None));
    }

    #[test]
    fn decode_waits_for_the_whole_payload() {
        assert_eq!(decode(b"\0\0\0\x04Hab"), Ok(None));
    }

    #[test]
    fn decode_yields_one_packet_and_its_length() {
        let buf = b"\0\0\0\x03Hab\0\0\0\x01A";
        let (p, used) = decode(buf).unwrap().unwrap();
        assert_eq!(p, Packet { code: b'H', data: b"ab" });
        assert_eq!(used, 7);
        let (p, used) = decode(&buf[7..]).unwrap().unwrap();
        assert_eq!(p, Packet { code: b'A', data: b"" });
        assert_eq!(used, 5);
    }

    #[test]
    fn zero_length_is_an_error() {
        assert_eq!(decode(b"\0\0\0\0"), Err(FrameError::Empty));
    }

    #[test]
    fn oversized_length_is_an_error_and_http_is_recognised() {
        let err = decode(b"GET / HTTP/1.1\r\n").unwrap_err();
        assert_eq!(err, FrameError::TooLarge { len: 0x4745_5420, looks_like: Some("HTTP") });
        assert!(err.to_string().contains("HTTP"));
        let err = decode(&[0x7f, 0, 0, 0, b'B']).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { looks_like: None, .. }));
    }

    #[test]
    fn cap_admits_a_hundred_kib_header_packet() {
        let mut buf = Vec::new();
        let payload = vec![b'x'; 100 * 1024 + 20];
        encode(b'L', &payload, &mut buf);
        let (p, used) = decode(&buf).unwrap().unwrap();
        assert_eq!(p.data.len(), payload.len());
        assert_eq!(used, buf.len());
    }

    #[test]
    fn largest_allowed_packet_decodes_and_one_more_byte_does_not() {
        let mut buf = (MAX_PACKET).to_be_bytes().to_vec();
        buf.resize(4 + MAX_PACKET as usize, b'B');
        assert!(decode(&buf).unwrap().is_some());
        let head = (MAX_PACKET + 1).to_be_bytes();
        assert!(decode(&head).is_err());
    }

    #[test]
    fn encode_writes_length_code_payload() {
        let mut out = Vec::new();
        encode(b'c', b"", &mut out);
        encode(b'q', b"why\0", &mut out);
        assert_eq!(out, b"\0\0\0\x01c\0\0\0\x05qwhy\0");
    }
}
