//! Typed milter commands (MTA → milter), parsed from framed packets.
//!
//! Parsing borrows from the packet so a 64 KiB body chunk is copied once, into the message
//! buffer, and nowhere else. Every malformed payload is an error value naming the command; the
//! session decides what to do with it (close the connection; the MTA applies its default
//! action). Strings stay bytes: MTAs pass 8-bit header bytes through unchanged.

use std::fmt;

use super::codec::Packet;

/// Protocol version 6 stage codes used by the SETSYMLIST extension and macro packets.
pub mod code {
    pub const OPTNEG: u8 = b'O';
    pub const MACRO: u8 = b'D';
    pub const CONNECT: u8 = b'C';
    pub const HELO: u8 = b'H';
    pub const MAIL: u8 = b'M';
    pub const RCPT: u8 = b'R';
    pub const DATA: u8 = b'T';
    pub const HEADER: u8 = b'L';
    pub const EOH: u8 = b'N';
    pub const BODY: u8 = b'B';
    pub const EOM: u8 = b'E';
    pub const UNKNOWN: u8 = b'U';
    pub const ABORT: u8 = b'A';
    pub const QUIT: u8 = b'Q';
    pub const QUIT_NC: u8 = b'K';
}

/// The address family byte of SMFIC_CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `U`: no address (e.g. a local submission with no socket); port and address are absent.
    Unknown,
    /// `L`: a unix-domain socket; the address is a path and the port is 0.
    Local,
    /// `4`
    Inet,
    /// `6`
    Inet6,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// Macros for the command whose code is `stage`; name/value pairs, possibly none.
    Macro {
        stage: u8,
        pairs: Vec<(&'a [u8], &'a [u8])>,
    },
    Connect {
        hostname: &'a [u8],
        family: Family,
        port: u16,
        address: &'a [u8],
    },
    Helo(&'a [u8]),
    /// `args[0]` is the sender (`<a@b>`), the rest ESMTP parameters.
    Mail(Vec<&'a [u8]>),
    Rcpt(Vec<&'a [u8]>),
    Data,
    Header {
        name: &'a [u8],
        value: &'a [u8],
    },
    EndOfHeaders,
    Body(&'a [u8]),
    /// End of message; may carry a last body chunk (libmilter allows it, Postfix sends none).
    EndOfMessage(&'a [u8]),
    Unknown(&'a [u8]),
    Abort,
    Quit,
    QuitNewConnection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: u8,
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.code;
        if c.is_ascii_graphic() {
            write!(f, "malformed '{}' command: {}", c as char, self.reason)
        } else {
            write!(f, "malformed command 0x{c:02x}: {}", self.reason)
        }
    }
}

impl std::error::Error for ParseError {}

impl<'a> Command<'a> {
    pub fn parse(packet: Packet<'a>) -> Result<Command<'a>, ParseError> {
        let data = packet.data;
        let err = |reason| ParseError { code: packet.code, reason };
        Ok(match packet.code {
            code::OPTNEG => {
                let (Some(v), Some(a), Some(p)) = (be32(data, 0), be32(data, 4), be32(data, 8)) else {
                    return Err(err("needs three 32-bit fields"));
                };
                Command::OptNeg { version: v, actions: a, protocol: p }
            }
            code::MACRO => {
                let Some((&stage, rest)) = data.split_first() else {
                    return Err(err("missing the stage byte"));
                };
                let strings = c_strings(rest).ok_or_else(|| err("unterminated string"))?;
                // An odd count (a name with no value) is tolerated: the name gets "" so one
                // sloppy MTA macro never costs a message its inspection.
                let pairs =
                    strings.chunks(2).map(|pair| (pair[0], pair.get(1).copied().unwrap_or(b""))).collect();
                Command::Macro { stage, pairs }
            }
            code::CONNECT => parse_connect(data).ok_or_else(|| err("bad host/family/port/address"))?,
            code::HELO => Command::Helo(one_string(data).ok_or_else(|| err("unterminated string"))?),
            code::MAIL | code::RCPT => {
                let args = c_strings(data).ok_or_else(|| err("unterminated string"))?;
                if args.is_empty() {
                    return Err(err("no address"));
                }
                if packet.code == code::MAIL { Command::Mail(args) } else { Command::Rcpt(args) }
            }
            code::DATA => Command::Data,
            code::HEADER => {
                let strings = c_strings(data).ok_or_else(|| err("unterminated string"))?;
                let [name, value] = strings[..] else {
                    return Err(err("needs a name and a value"));
                };
                Command::Header { name, value }
            }
            code::EOH => Command::EndOfHeaders,
            code::BODY => Command::Body(data),
            code::EOM => Command::EndOfMessage(data),
            code::UNKNOWN => Command::Unknown(data.strip_suffix(b"\0").unwrap_or(data)),
            code::ABORT => Command::Abort,
            code::QUIT => Command::Quit,
            code::QUIT_NC => Command::QuitNewConnection,
            _ => return Err(err("unknown command")),
        })
    }
}

impl Command<'_> {
    /// Encodes the command as an MTA sends it (used by our own MTA-side client), straight
    /// into `out`: the payload is written once, the length put in front of it afterwards.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 5]);
        let data = &mut *out;
        let push = |data: &mut Vec<u8>, s: &[u8]| {
            data.extend_from_slice(s);
            data.push(0);
        };
        let code = match self {
            Command::OptNeg { version, actions, protocol } => {
                for v in [version, actions, protocol] {
                    data.extend_from_slice(&v.to_be_bytes());
                }
                code::OPTNEG
            }
            Command::Macro { stage, pairs } => {
                data.push(*stage);
                for (k, v) in pairs {
                    push(data, k);
                    push(data, v);
                }
                code::MACRO
            }
            Command::Connect { hostname, family, port, address } => {
                push(data, hostname);
                data.push(match family {
                    Family::Unknown => b'U',
                    Family::Local => b'L',
                    Family::Inet => b'4',
                    Family::Inet6 => b'6',
                });
                if *family != Family::Unknown {
                    data.extend_from_slice(&port.to_be_bytes());
                    push(data, address);
                }
                code::CONNECT
            }
            Command::Helo(h) => {
                push(data, h);
                code::HELO
            }
            Command::Mail(args) | Command::Rcpt(args) => {
                args.iter().for_each(|a| push(data, a));
                if matches!(self, Command::Mail(_)) { code::MAIL } else { code::RCPT }
            }
            Command::Data => code::DATA,
            Command::Header { name, value } => {
                push(data, name);
                push(data, value);
                code::HEADER
            }
            Command::EndOfHeaders => code::EOH,
            Command::Body(b) => {
                data.extend_from_slice(b);
                code::BODY
            }
            Command::EndOfMessage(b) => {
                data.extend_from_slice(b);
                code::EOM
            }
            Command::Unknown(u) => {
                push(data, u);
                code::UNKNOWN
            }
            Command::Abort => code::ABORT,
            Command::Quit => code::QUIT,
            Command::QuitNewConnection => code::QUIT_NC,
        };
        let len = out.len() - start - 4;
        // Commands we build are far below 4 GiB (body chunks are at most 64 KiB).
        out[start..start + 4].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        out[start + 4] = code;
    }

    /// The length and command byte of a BODY packet carrying `chunk`, for a caller that
    /// writes the chunk itself after them (without copying it).
    pub fn body_header(chunk: &[u8]) -> [u8; 5] {
        let len = u32::try_from(chunk.len() + 1).unwrap_or(u32::MAX).to_be_bytes();
        [len[0], len[1], len[2], len[3], code::BODY]
    }
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Splits NUL-terminated strings up to the end of the payload. `None` when the last string
/// has no terminating NUL.
fn c_strings(data: &[u8]) -> Option<Vec<&[u8]>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let body = data.strip_suffix(b"\0")?;
    Some(body.split(|&b| b == 0).collect())
}

fn one_string(data: &[u8]) -> Option<&[u8]> {
    let body = data.strip_suffix(b"\0")?;
    // Sendmail and Postfix send exactly one string; stop at an embedded NUL if one appears.
    Some(body.split(|&b| b == 0).next().unwrap_or(body))
}

fn parse_connect(data: &[u8]) -> Option<Command<'_>> {
    let nul = data.iter().position(|&b| b == 0)?;
    let hostname = &data[..nul];
    let rest = &data[nul + 1..];
    let (&family, rest) = rest.split_first()?;
    let family = match family {
        b'U' => return Some(Command::Connect { hostname, family: Family::Unknown, port: 0, address: b"" }),
        b'L' => Family::Local,
        b'4' => Family::Inet,
        b'6' => Family::Inet6,
        _ => return None,
    };
    let port = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
    let address = one_string(&rest[2..])?;
    Some(Command::Connect { hostname, family, port, address })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(code: u8, data: &[u8]) -> Result<Command<'_>, ParseError> {
        Command::parse(Packet { code, data })
    }

    #[test]
    fn optneg_reads_three_fields() {
        let data = [0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff];
        assert_eq!(
            parse(b'O', &data),
            Ok(Command::OptNeg { version: 6, actions: 0x1ff, protocol: 0x1f_ffff })
        );
        assert!(parse(b'O', &data[..11]).is_err());
    }

    #[test]
    fn macro_pairs_and_empty_list() {
        assert_eq!(
            parse(b'D', b"Cj\0mx.example\0{daemon_name}\0smtpd\0"),
            Ok(Command::Macro {
                stage: b'C',
                pairs: vec![(&b"j"[..], &b"mx.example"[..]), (b"{daemon_name}", b"smtpd")]
            })
        );
        assert_eq!(parse(b'D', b"E"), Ok(Command::Macro { stage: b'E', pairs: vec![] }));
        assert!(parse(b'D', b"").is_err());
        assert!(parse(b'D', b"Ci\0ABC").is_err());
    }

    #[test]
    fn macro_with_a_name_and_no_value_gets_empty_value() {
        assert_eq!(
            parse(b'D', b"Mi\0"),
            Ok(Command::Macro { stage: b'M', pairs: vec![(&b"i"[..], &b""[..])] })
        );
    }

    #[test]
    fn connect_inet4_inet6_local_and_unknown() {
        assert_eq!(
            parse(b'C', b"mail.example\x004\x00\x19192.0.2.1\0"),
            Ok(Command::Connect {
                hostname: b"mail.example",
                family: Family::Inet,
                port: 25,
                address: b"192.0.2.1"
            })
        );
        assert_eq!(
            parse(b'C', b"h\x006\x01\xbb::1\0"),
            Ok(Command::Connect { hostname: b"h", family: Family::Inet6, port: 443, address: b"::1" })
        );
        assert_eq!(
            parse(b'C', b"localhost\0L\0\0/run/sock\0"),
            Ok(Command::Connect {
                hostname: b"localhost",
                family: Family::Local,
                port: 0,
                address: b"/run/sock"
            })
        );
        assert_eq!(
            parse(b'C', b"unknown\0U"),
            Ok(Command::Connect { hostname: b"unknown", family: Family::Unknown, port: 0, address: b"" })
        );
        assert!(parse(b'C', b"h\0X\0\0a\0").is_err());
        assert!(parse(b'C', b"h\x004\x00").is_err());
        assert!(parse(b'C', b"no-nul").is_err());
    }

    #[test]
    fn helo_mail_rcpt() {
        assert_eq!(parse(b'H', b"client.example\0"), Ok(Command::Helo(b"client.example")));
        assert!(parse(b'H', b"client").is_err());
        assert_eq!(
            parse(b'M', b"<a@b.example>\0SIZE=100\0BODY=8BITMIME\0"),
            Ok(Command::Mail(vec![b"<a@b.example>", b"SIZE=100", b"BODY=8BITMIME"]))
        );
        assert_eq!(parse(b'R', b"<r@c.example>\0"), Ok(Command::Rcpt(vec![b"<r@c.example>"])));
        assert!(parse(b'M', b"").is_err());
        assert!(parse(b'R', b"<r@c").is_err());
    }

    #[test]
    fn header_needs_name_and_value() {
        assert_eq!(
            parse(b'L', b"Subject\0 hello\n\tworld\0"),
            Ok(Command::Header { name: b"Subject", value: b" hello\n\tworld" })
        );
        assert_eq!(parse(b'L', b"X-Empty\0\0"), Ok(Command::Header { name: b"X-Empty", value: b"" }));
        assert!(parse(b'L', b"Subject\0").is_err());
        assert!(parse(b'L', b"a\0b\0c\0").is_err());
    }

    #[test]
    fn bodies_keep_their_bytes_and_eom_may_carry_a_chunk() {
        assert_eq!(parse(b'B', b"line\r\n\0bin"), Ok(Command::Body(b"line\r\n\0bin")));
        assert_eq!(parse(b'E', b""), Ok(Command::EndOfMessage(b"")));
        assert_eq!(parse(b'E', b"tail"), Ok(Command::EndOfMessage(b"tail")));
    }

    #[test]
    fn payloadless_commands() {
        assert_eq!(parse(b'T', b""), Ok(Command::Data));
        assert_eq!(parse(b'N', b""), Ok(Command::EndOfHeaders));
        assert_eq!(parse(b'A', b""), Ok(Command::Abort));
        assert_eq!(parse(b'Q', b""), Ok(Command::Quit));
        assert_eq!(parse(b'K', b""), Ok(Command::QuitNewConnection));
        assert_eq!(parse(b'U', b"VRFY x\0"), Ok(Command::Unknown(b"VRFY x")));
    }

    #[test]
    fn every_command_round_trips_through_encode_and_parse() {
        let all = [
            Command::OptNeg { version: 6, actions: 0x1ff, protocol: 0x1f_ffff },
            Command::Macro { stage: b'C', pairs: vec![(&b"j"[..], &b"mx"[..])] },
            Command::Macro { stage: b'E', pairs: vec![] },
            Command::Connect { hostname: b"h", family: Family::Inet6, port: 25, address: b"::1" },
            Command::Connect { hostname: b"h", family: Family::Unknown, port: 0, address: b"" },
            Command::Helo(b"helo.example"),
            Command::Mail(vec![b"<a@b>", b"SIZE=1"]),
            Command::Rcpt(vec![b"<c@d>"]),
            Command::Data,
            Command::Header { name: b"Subject", value: b" hi" },
            Command::EndOfHeaders,
            Command::Body(b"body\r\n"),
            Command::EndOfMessage(b""),
            Command::Unknown(b"XYZZY"),
            Command::Abort,
            Command::Quit,
            Command::QuitNewConnection,
        ];
        for cmd in &all {
            let mut buf = Vec::new();
            cmd.encode(&mut buf);
            let (packet, used) = crate::milter::codec::decode(&buf).unwrap().unwrap();
            assert_eq!(used, buf.len());
            assert_eq!(&Command::parse(packet).unwrap(), cmd);
        }
        // One after another in one buffer, as a client batches them.
        let mut stream = Vec::new();
        all.iter().for_each(|c| c.encode(&mut stream));
        let mut at = 0;
        for cmd in &all {
            let (packet, used) = crate::milter::codec::decode(&stream[at..]).unwrap().unwrap();
            assert_eq!(&Command::parse(packet).unwrap(), cmd);
            at += used;
        }
        assert_eq!(at, stream.len());
    }

    #[test]
    fn body_header_is_what_encode_puts_before_the_chunk() {
        for chunk in [&b""[..], b"x", &[7u8; 65535]] {
            let mut encoded = Vec::new();
            Command::Body(chunk).encode(&mut encoded);
            assert_eq!(encoded, [&Command::body_header(chunk)[..], chunk].concat());
        }
    }

    #[test]
    fn unknown_code_is_an_error_naming_it() {
        let e = parse(b'Z', b"").unwrap_err();
        assert_eq!(e.to_string(), "malformed 'Z' command: unknown command");
        let e = parse(0x01, b"").unwrap_err();
        assert!(e.to_string().contains("0x01"));
    }
}
