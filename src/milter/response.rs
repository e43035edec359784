//! Milter replies (milter → MTA) and their encoding.
//!
//! Header names and values that reach this module may come from configuration or from what a
//! message contained (a rule name, a filename); they are cleaned here so no reply can break the
//! MTA's header parsing: names are reduced to printable ASCII without `:`, values lose CR and
//! NUL (a bare LF followed by a tab is how milters fold a header).

use super::codec;
use super::reply::SmtpReply;

pub mod code {
    pub const ACCEPT: u8 = b'a';
    pub const CONTINUE: u8 = b'c';
    pub const REJECT: u8 = b'r';
    pub const TEMPFAIL: u8 = b't';
    pub const DISCARD: u8 = b'd';
    pub const REPLYCODE: u8 = b'y';
    pub const SKIP: u8 = b's';
    pub const PROGRESS: u8 = b'p';
    pub const CONN_FAIL: u8 = b'f';
    pub const ADD_HEADER: u8 = b'h';
    pub const INSERT_HEADER: u8 = b'i';
    pub const CHANGE_HEADER: u8 = b'm';
    pub const ADD_RCPT: u8 = b'+';
    pub const ADD_RCPT_PAR: u8 = b'2';
    pub const DEL_RCPT: u8 = b'-';
    pub const CHANGE_FROM: u8 = b'e';
    pub const REPLACE_BODY: u8 = b'b';
    pub const QUARANTINE: u8 = b'q';
    pub const OPTNEG: u8 = b'O';
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
        macros: Vec<(u32, String)>,
    },
    Accept,
    Continue,
    Reject,
    Tempfail,
    Discard,
    ReplyCode(SmtpReply),
    Skip,
    Progress,
    ConnFail,
    AddHeader {
        name: String,
        value: String,
    },
    /// `index` counts all headers, 0 = first.
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// `index` is 1-based among headers of that name; an empty value deletes.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    AddRcpt(String),
    AddRcptPar {
        rcpt: String,
        args: String,
    },
    DelRcpt(String),
    ChangeFrom {
        sender: String,
        args: Option<String>,
    },
    ReplaceBody(Vec<u8>),
    Quarantine(String),
}

impl Response {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut data = Vec::new();
        let code = match self {
            Response::OptNeg { version, actions, protocol, macros } => {
                data.extend_from_slice(&version.to_be_bytes());
                data.extend_from_slice(&actions.to_be_bytes());
                data.extend_from_slice(&protocol.to_be_bytes());
                for (stage, names) in macros {
                    data.extend_from_slice(&stage.to_be_bytes());
                    push_c(&mut data, &clean_value(names));
                }
                code::OPTNEG
            }
            Response::Accept => code::ACCEPT,
            Response::Continue => code::CONTINUE,
            Response::Reject => code::REJECT,
            Response::Tempfail => code::TEMPFAIL,
            Response::Discard => code::DISCARD,
            Response::ReplyCode(reply) => {
                push_c(&mut data, &reply.to_wire());
                code::REPLYCODE
            }
            Response::Skip => code::SKIP,
            Response::Progress => code::PROGRESS,
            Response::ConnFail => code::CONN_FAIL,
            Response::AddHeader { name, value } => {
                push_c(&mut data, &clean_name(name));
                push_c(&mut data, &clean_value(value));
                code::ADD_HEADER
            }
            Response::InsertHeader { index, name, value } => {
                data.extend_from_slice(&index.to_be_bytes());
                push_c(&mut data, &clean_name(name));
                push_c(&mut data, &clean_value(value));
                code::INSERT_HEADER
            }
            Response::ChangeHeader { index, name, value } => {
                data.extend_from_slice(&index.to_be_bytes());
                push_c(&mut data, &clean_name(name));
                push_c(&mut data, &clean_value(value));
                code::CHANGE_HEADER
            }
            Response::AddRcpt(rcpt) => {
                push_c(&mut data, &clean_value(rcpt));
                code::ADD_RCPT
            }
            Response::AddRcptPar { rcpt, args } => {
                push_c(&mut data, &clean_value(rcpt));
                push_c(&mut data, &clean_value(args));
                code::ADD_RCPT_PAR
            }
            Response::DelRcpt(rcpt) => {
                push_c(&mut data, &clean_value(rcpt));
                code::DEL_RCPT
            }
            Response::ChangeFrom { sender, args } => {
                push_c(&mut data, &clean_value(sender));
                if let Some(args) = args {
                    push_c(&mut data, &clean_value(args));
                }
                code::CHANGE_FROM
            }
            Response::ReplaceBody(chunk) => {
                data.extend_from_slice(chunk);
                code::REPLACE_BODY
            }
            Response::Quarantine(reason) => {
                push_c(&mut data, &clean_value(reason));
                code::QUARANTINE
            }
        };
        codec::encode(code, &data, out);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A reply that does not parse, as seen from the MTA side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseError {
    pub code: u8,
    pub reason: &'static str,
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed reply 0x{:02x}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ResponseError {}

impl Response {
    /// Parses a reply as an MTA reads it (used by our own MTA-side client).
    pub fn parse(packet: codec::Packet<'_>) -> Result<Response, ResponseError> {
        let d = packet.data;
        let err = |reason| ResponseError { code: packet.code, reason };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let strings = || -> Result<Vec<String>, ResponseError> {
            let body = d.strip_suffix(b"\0").ok_or_else(|| err("unterminated string"))?;
            Ok(body.split(|&b| b == 0).map(text).collect())
        };
        let index =
            || d.first_chunk::<4>().map(|b| u32::from_be_bytes(*b)).ok_or_else(|| err("missing index"));
        let empty = |r: Response| if d.is_empty() { Ok(r) } else { Err(err("unexpected payload")) };
        match packet.code {
            code::OPTNEG => {
                let word = |i: usize| d.get(i..i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let (Some(version), Some(actions), Some(protocol)) = (word(0), word(4), word(8)) else {
                    return Err(err("needs three 32-bit fields"));
                };
                let mut macros = Vec::new();
                let mut rest = &d[12..];
                while let Some(stage) = rest.first_chunk::<4>().map(|b| u32::from_be_bytes(*b)) {
                    let tail = &rest[4..];
                    let nul =
                        tail.iter().position(|&b| b == 0).ok_or_else(|| err("unterminated macro list"))?;
                    macros.push((stage, text(&tail[..nul])));
                    rest = &tail[nul + 1..];
                }
                Ok(Response::OptNeg { version, actions, protocol, macros })
            }
            code::ACCEPT => empty(Response::Accept),
            code::CONTINUE => empty(Response::Continue),
            code::REJECT => empty(Response::Reject),
            code::TEMPFAIL => empty(Response::Tempfail),
            code::DISCARD => empty(Response::Discard),
            code::SKIP => empty(Response::Skip),
            code::PROGRESS => empty(Response::Progress),
            code::CONN_FAIL => empty(Response::ConnFail),
            code::REPLYCODE => {
                let s = strings()?.join("");
                let (code, rest) = s.split_at(s.len().min(3));
                let code: u16 = code.parse().map_err(|_| err("bad reply code"))?;
                // Re-validate through the same type; `%%` is undone first.
                let lines: Vec<&str> = rest.split("\r\n").collect();
                let mut enhanced = String::new();
                let mut texts = Vec::new();
                for (i, line) in lines.iter().enumerate() {
                    let line = if i == 0 { &line[1.min(line.len())..] } else { line.get(4..).unwrap_or("") };
                    let (first, tail) = line.split_once(' ').unwrap_or((line, ""));
                    if first.split('.').count() == 3 && first.starts_with(['4', '5']) {
                        enhanced = first.to_string();
                        texts.push(tail.replace("%%", "%"));
                    } else {
                        texts.push(line.replace("%%", "%"));
                    }
                }
                SmtpReply::new(code, &enhanced, &texts.join("\n"))
                    .map(Response::ReplyCode)
                    .map_err(|_| err("invalid SMTP reply"))
            }
            code::ADD_HEADER => match &strings()?[..] {
                [name, value] => Ok(Response::AddHeader { name: name.clone(), value: value.clone() }),
                _ => Err(err("needs a name and a value")),
            },
            code::INSERT_HEADER | code::CHANGE_HEADER => {
                let index = index()?;
                let body = d[4..].strip_suffix(b"\0").ok_or_else(|| err("unterminated string"))?;
                let parts: Vec<String> = body.split(|&b| b == 0).map(text).collect();
                let [name, value] = &parts[..] else { return Err(err("needs a name and a value")) };
                let (name, value) = (name.clone(), value.clone());
                Ok(if packet.code == code::INSERT_HEADER {
                    Response::InsertHeader { index, name, value }
                } else {
                    Response::ChangeHeader { index, name, value }
                })
            }
            code::ADD_RCPT => Ok(Response::AddRcpt(strings()?.concat())),
            code::DEL_RCPT => Ok(Response::DelRcpt(strings()?.concat())),
            code::ADD_RCPT_PAR => match &strings()?[..] {
                [rcpt, args] => Ok(Response::AddRcptPar { rcpt: rcpt.clone(), args: args.clone() }),
                _ => Err(err("needs a recipient and arguments")),
            },
            code::CHANGE_FROM => match &strings()?[..] {
                [sender] => Ok(Response::ChangeFrom { sender: sender.clone(), args: None }),
                [sender, args] => {
                    Ok(Response::ChangeFrom { sender: sender.clone(), args: Some(args.clone()) })
                }
                _ => Err(err("needs a sender")),
            },
            code::REPLACE_BODY => Ok(Response::ReplaceBody(d.to_vec())),
            code::QUARANTINE => Ok(Response::Quarantine(strings()?.concat())),
            _ => Err(err("unknown reply")),
        }
    }
}

fn push_c(data: &mut Vec<u8>, s: &str) {
    data.extend_from_slice(s.as_bytes());
    data.push(0);
}

/// A header name is printable ASCII without `:` (RFC 5322 field-name); anything else is
/// replaced with `-` so a hostile configured prefix cannot inject a second header.
fn clean_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_graphic() && c != ':' { c } else { '-' }).collect()
}

/// CR and NUL are removed (the MTA adds CR itself; NUL ends the C string); a LF not followed by
/// a space or tab would start a new header, so one is added.
fn clean_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\0' => {}
            '\n' => {
                out.push('\n');
                if !matches!(chars.peek(), Some(' ' | '\t')) {
                    out.push('\t');
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(r: Response) -> Vec<u8> {
        r.to_bytes()
    }

    #[test]
    fn single_byte_replies() {
        assert_eq!(bytes(Response::Accept), b"\0\0\0\x01a");
        assert_eq!(bytes(Response::Continue), b"\0\0\0\x01c");
        assert_eq!(bytes(Response::Reject), b"\0\0\0\x01r");
        assert_eq!(bytes(Response::Tempfail), b"\0\0\0\x01t");
        assert_eq!(bytes(Response::Discard), b"\0\0\0\x01d");
        assert_eq!(bytes(Response::Skip), b"\0\0\0\x01s");
        assert_eq!(bytes(Response::Progress), b"\0\0\0\x01p");
        assert_eq!(bytes(Response::ConnFail), b"\0\0\0\x01f");
    }

    #[test]
    fn optneg_with_symbol_lists() {
        let r = Response::OptNeg {
            version: 6,
            actions: 0x131,
            protocol: 0x1000,
            macros: vec![(1, "{tls_version} {cipher}".into())],
        };
        let mut want = vec![0, 0, 0, 13 + 4 + 23, b'O'];
        want.extend_from_slice(&[0, 0, 0, 6, 0, 0, 1, 0x31, 0, 0, 0x10, 0]);
        want.extend_from_slice(&[0, 0, 0, 1]);
        want.extend_from_slice(b"{tls_version} {cipher}\0");
        assert_eq!(bytes(r), want);
    }

    #[test]
    fn replycode_is_nul_terminated() {
        let r = Response::ReplyCode(SmtpReply::new(550, "5.7.1", "no").unwrap());
        assert_eq!(bytes(r), b"\0\0\0\x0ey550 5.7.1 no\0");
    }

    #[test]
    fn header_modifications() {
        assert_eq!(
            bytes(Response::AddHeader { name: "X-A".into(), value: "v".into() }),
            b"\0\0\0\x07hX-A\0v\0"
        );
        assert_eq!(
            bytes(Response::InsertHeader { index: 0, name: "X-A".into(), value: "v".into() }),
            b"\0\0\0\x0bi\0\0\0\0X-A\0v\0"
        );
        assert_eq!(
            bytes(Response::ChangeHeader { index: 2, name: "X-A".into(), value: "".into() }),
            b"\0\0\0\x0am\0\0\0\x02X-A\0\0"
        );
    }

    #[test]
    fn recipient_sender_body_quarantine() {
        assert_eq!(bytes(Response::AddRcpt("<a@b>".into())), b"\0\0\0\x07+<a@b>\0");
        assert_eq!(
            bytes(Response::AddRcptPar { rcpt: "<a@b>".into(), args: "NOTIFY=NEVER".into() }),
            b"\0\0\0\x142<a@b>\0NOTIFY=NEVER\0"
        );
        assert_eq!(bytes(Response::DelRcpt("<a@b>".into())), b"\0\0\0\x07-<a@b>\0");
        assert_eq!(bytes(Response::ChangeFrom { sender: "<s@b>".into(), args: None }), b"\0\0\0\x07e<s@b>\0");
        assert_eq!(
            bytes(Response::ChangeFrom { sender: "<s@b>".into(), args: Some("RET=HDRS".into()) }),
            b"\0\0\0\x10e<s@b>\0RET=HDRS\0"
        );
        assert_eq!(bytes(Response::ReplaceBody(b"new\r\n".to_vec())), b"\0\0\0\x06bnew\r\n");
        assert_eq!(bytes(Response::Quarantine("eicar".into())), b"\0\0\0\x07qeicar\0");
    }

    #[test]
    fn hostile_header_text_cannot_inject_headers() {
        let r =
            Response::AddHeader { name: "X-Bad: y\r\nZ".into(), value: "a\r\nInjected: yes\0tail".into() };
        let b = bytes(r);
        let payload = &b[5..];
        assert_eq!(payload, b"X-Bad--y--Z\0a\n\tInjected: yestail\0");
    }

    #[test]
    fn every_reply_round_trips_through_encode_and_parse() {
        let all = [
            Response::OptNeg {
                version: 6,
                actions: 0x131,
                protocol: 0x1000,
                macros: vec![(1, "{cipher}".into()), (5, "i".into())],
            },
            Response::Accept,
            Response::Continue,
            Response::Reject,
            Response::Tempfail,
            Response::Discard,
            Response::ReplyCode(SmtpReply::new(550, "5.7.1", "100% bad\nsecond line").unwrap()),
            Response::ReplyCode(SmtpReply::new(451, "", "later").unwrap()),
            Response::Skip,
            Response::Progress,
            Response::ConnFail,
            Response::AddHeader { name: "X-A".into(), value: " v".into() },
            Response::InsertHeader { index: 3, name: "X-B".into(), value: "w".into() },
            Response::ChangeHeader { index: 1, name: "X-C".into(), value: "".into() },
            Response::AddRcpt("<a@b>".into()),
            Response::AddRcptPar { rcpt: "<a@b>".into(), args: "NOTIFY=NEVER".into() },
            Response::DelRcpt("<a@b>".into()),
            Response::ChangeFrom { sender: "<s@b>".into(), args: None },
            Response::ChangeFrom { sender: "<s@b>".into(), args: Some("RET=FULL".into()) },
            Response::ReplaceBody(b"x\r\n".to_vec()),
            Response::Quarantine("held".into()),
        ];
        for r in all {
            let buf = r.to_bytes();
            let (packet, used) = codec::decode(&buf).unwrap().unwrap();
            assert_eq!(used, buf.len());
            assert_eq!(Response::parse(packet).unwrap(), r);
        }
    }

    #[test]
    fn folded_values_keep_their_fold() {
        assert_eq!(clean_value("a\n\tb\n c"), "a\n\tb\n c");
    }
}
