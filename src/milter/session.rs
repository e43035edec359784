//! The per-connection protocol state machine, without sockets.
//!
//! The session takes one parsed command at a time and answers with what to send back, or with
//! the finished message for the filter. It keeps two scopes of state, so that several messages
//! per connection and ABORT are correct by construction: [`ConnectionState`] (client, HELO, TLS
//! macros — Postfix sends those at HELO/MAIL/DATA, never at end of message) lives as long as the
//! SMTP connection; [`MessageState`] (sender, recipients, raw bytes) is created at MAIL and
//! dropped at ABORT, at end of message, or when a new MAIL/HELO shows the MTA moved on without
//! an ABORT (Sendmail does that after an early decision).

use std::collections::BTreeMap;
use std::fmt;

/// Most bytes of message buffer prepared from a MAIL command's `SIZE=` before any arrive.
const SIZE_HINT_CAP: usize = 4 << 20;

use super::command::{Command, code};
use super::envelope::{Auth, Client, Envelope, Tls, macro_name, strip_brackets};
use super::negotiate::{Negotiated, action, negotiate, proto};
use super::response::Response;
use super::{Action, EndOfMessage, HeaderChange, Verdict};

/// Macro names (braces removed) that describe the TLS session.
const TLS_MACRO_NAMES: [&str; 6] =
    ["tls_version", "cipher", "cipher_bits", "cert_subject", "cert_issuer", "tls_sni"];

/// Where the conversation is. One function, [`Stage::after`], lists every legal transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing received yet: OPTNEG is expected.
    Start,
    /// Options agreed; waiting for CONNECT.
    Negotiated,
    Connected,
    Helo,
    Mail,
    Rcpt,
    Data,
    Header,
    EndOfHeaders,
    Body,
    /// End of message handed to the filter; its verdict has not been sent yet.
    Filtering,
    /// The verdict was sent; ABORT, MAIL or QUIT comes next.
    Done,
}

/// The kind of a command, for the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OptNeg,
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    Header,
    EndOfHeaders,
    Body,
    EndOfMessage,
}

impl Stage {
    /// The stage after a command of `kind`, or `None` if the command is out of order.
    /// Macros, UNKNOWN, ABORT, QUIT and QUIT_NC are legal at any time and handled apart.
    fn after(self, kind: Kind) -> Option<Stage> {
        use Stage::*;
        let in_connection = !matches!(self, Start | Negotiated | Filtering);
        let next = match kind {
            // QUIT_NC sends the session back to Negotiated; a new OPTNEG there is tolerated.
            Kind::OptNeg if matches!(self, Start | Negotiated) => Negotiated,
            Kind::Connect if self != Start && self != Filtering => Connected,
            // A new HELO (after STARTTLS, or RSET + EHLO) and a new MAIL may come at any point
            // of the connection; they end whatever message was in progress.
            Kind::Helo if in_connection => Helo,
            Kind::Mail if in_connection => Mail,
            Kind::Rcpt if matches!(self, Mail | Rcpt) => Rcpt,
            Kind::Data if matches!(self, Rcpt) => Data,
            Kind::Header if matches!(self, Rcpt | Data | Header) => Header,
            Kind::EndOfHeaders if matches!(self, Rcpt | Data | Header) => EndOfHeaders,
            Kind::Body if matches!(self, Rcpt | Data | Header | EndOfHeaders | Body) => Body,
            Kind::EndOfMessage if matches!(self, Rcpt | Data | Header | EndOfHeaders | Body) => Filtering,
            _ => return None,
        };
        Some(next)
    }

    fn in_message(self) -> bool {
        matches!(
            self,
            Stage::Mail
                | Stage::Rcpt
                | Stage::Data
                | Stage::Header
                | Stage::EndOfHeaders
                | Stage::Body
                | Stage::Filtering
        )
    }
}

/// What the caller must do after feeding a command.
#[derive(Debug)]
pub enum Step {
    /// Send these (possibly none) and read on.
    Reply(Vec<Response>),
    /// Run the filter on this message, then call [`Session::finish`].
    Filter(Box<EndOfMessage>),
    /// The MTA said QUIT: close the connection.
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    OutOfOrder {
        command: char,
        stage: Stage,
    },
    Negotiation(String),
    /// The filter's verdict was given when no message was waiting for one.
    NoMessage,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::OutOfOrder { command, stage } => {
                write!(f, "command '{command}' is not allowed at stage {stage:?}")
            }
            ProtocolError::Negotiation(e) => write!(f, "option negotiation failed: {e}"),
            ProtocolError::NoMessage => write!(f, "no message is waiting for a verdict"),
        }
    }
}

impl std::error::Error for ProtocolError {}

#[derive(Debug, Default)]
struct ConnectionState {
    client: Client,
    helo: Option<String>,
    macros: BTreeMap<String, String>,
    tls: Option<Tls>,
    /// MAIL-stage macros, which arrive before the MAIL command that creates the message.
    mail_macros: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct MessageState {
    sender: String,
    sender_args: Vec<String>,
    recipients: Vec<String>,
    macros: BTreeMap<String, String>,
    raw: Vec<u8>,
    /// Bytes of this message the caller took out of `raw` (to spool them); they still count
    /// towards the size cap.
    spilled: usize,
    headers_ended: bool,
    truncated: bool,
    /// Bytes the MTA sent, including those past the cap.
    received: u64,
}

pub struct Session {
    stage: Stage,
    negotiated: Negotiated,
    max_message: usize,
    conn: ConnectionState,
    msg: Option<MessageState>,
    /// Messages begun on this connection (MAIL commands), so the caller can tell one message's
    /// state from the next even when the MTA sends no ABORT between them.
    messages: u64,
}

impl Session {
    /// `max_message` caps the bytes of one message we keep (headers + body); past it the
    /// message is marked truncated and the rest is dropped (or skipped, if the MTA allows).
    pub fn new(max_message: usize) -> Session {
        Session {
            stage: Stage::Start,
            negotiated: Negotiated::legacy(),
            max_message,
            conn: ConnectionState::default(),
            msg: None,
            messages: 0,
        }
    }

    /// Counts the messages begun on this connection; changes at every MAIL.
    pub fn message_number(&self) -> u64 {
        self.messages
    }

    /// Bytes of the message in progress held in memory.
    pub fn buffered(&self) -> usize {
        self.msg.as_ref().map_or(0, |m| m.raw.len())
    }

    /// Takes the bytes of the message in progress held so far, for the caller to keep
    /// elsewhere (the server spools them to disk past its memory budget). They still count
    /// towards `max_message`; at end of message [`EndOfMessage::message`] holds only what came
    /// after the last take.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        match &mut self.msg {
            Some(m) => {
                m.spilled += m.raw.len();
                std::mem::take(&mut m.raw)
            }
            None => Vec::new(),
        }
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// True between MAIL and the verdict: a shutdown must wait for this message.
    pub fn in_message(&self) -> bool {
        self.stage.in_message()
    }

    /// The queue id, once the MTA has told us (Postfix: from DATA on).
    pub fn queue_id(&self) -> Option<&str> {
        self.msg.as_ref().and_then(|m| m.macros.get("i")).map(String::as_str)
    }

    pub fn handle(&mut self, command: Command<'_>) -> Result<Step, ProtocolError> {
        let reply_unless = |n: &Negotiated, bit: u32| -> Step {
            if n.no_reply_for(bit) { Step::Reply(vec![]) } else { Step::Reply(vec![Response::Continue]) }
        };
        match command {
            Command::Macro { stage, pairs } => {
                self.macros(stage, &pairs);
                Ok(Step::Reply(vec![]))
            }
            Command::Abort => {
                // Legal at any time, twice in a row too (Postfix does that), and never answered.
                self.msg = None;
                if self.stage.in_message() || self.stage == Stage::Done {
                    self.stage = if self.conn.helo.is_some() { Stage::Helo } else { Stage::Connected };
                }
                Ok(Step::Reply(vec![]))
            }
            Command::Quit => Ok(Step::Close),
            Command::QuitNewConnection => {
                self.conn = ConnectionState::default();
                self.msg = None;
                self.stage = Stage::Negotiated;
                Ok(Step::Reply(vec![]))
            }
            Command::Unknown(_) => {
                if matches!(self.stage, Stage::Start | Stage::Filtering) {
                    return Err(self.out_of_order(code::UNKNOWN));
                }
                Ok(reply_unless(&self.negotiated, proto::NR_UNKN))
            }
            Command::OptNeg { version, actions, protocol } => {
                self.advance(Kind::OptNeg, code::OPTNEG)?;
                let (n, macros) =
                    negotiate(version, actions, protocol).map_err(|e| ProtocolError::Negotiation(e.0))?;
                self.negotiated = n;
                Ok(Step::Reply(vec![Response::OptNeg {
                    version: n.version,
                    actions: n.actions,
                    protocol: n.protocol,
                    macros,
                }]))
            }
            Command::Connect { hostname, family, port, address } => {
                self.advance(Kind::Connect, code::CONNECT)?;
                // A new connection on this socket: keep macros the MTA sent just before.
                let macros = std::mem::take(&mut self.conn.macros);
                self.conn = ConnectionState { macros, ..ConnectionState::default() };
                self.msg = None;
                self.conn.client = Client {
                    name: String::from_utf8_lossy(hostname).into_owned(),
                    addr: (!address.is_empty()).then(|| String::from_utf8_lossy(address).into_owned()),
                    port,
                    family: Some(family),
                };
                Ok(reply_unless(&self.negotiated, proto::NR_CONN))
            }
            Command::Helo(name) => {
                self.advance(Kind::Helo, code::HELO)?;
                self.msg = None;
                self.conn.helo = Some(String::from_utf8_lossy(name).into_owned());
                Ok(reply_unless(&self.negotiated, proto::NR_HELO))
            }
            Command::Mail(args) => {
                self.advance(Kind::Mail, code::MAIL)?;
                // Message-scoped macros for this MAIL arrived just before it.
                let macros = std::mem::take(&mut self.conn.mail_macros);
                let sender_args: Vec<String> =
                    args[1..].iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                self.messages += 1;
                let raw = match declared_size(&sender_args) {
                    // The declared size, and room for what it leaves out: the MTA's own
                    // Received header, CRLF in folded header lines.
                    Some(size) => {
                        let room = size.saturating_add(size / 32).saturating_add(4096);
                        // The declaration is the client's word: at most SIZE_HINT_CAP is made
                        // ready on it (a MAIL/RSET loop declaring 64 MB each must not make us
                        // fault in 64 MB each time); a larger message grows the buffer.
                        crate::memory::buffer(room.min(self.max_message).min(SIZE_HINT_CAP))
                    }
                    None => Vec::new(),
                };
                self.msg = Some(MessageState {
                    sender: strip_brackets(args[0]),
                    sender_args,
                    macros,
                    raw,
                    recipients: Vec::new(),
                    spilled: 0,
                    headers_ended: false,
                    truncated: false,
                    received: 0,
                });
                Ok(reply_unless(&self.negotiated, proto::NR_MAIL))
            }
            Command::Rcpt(args) => {
                self.advance(Kind::Rcpt, code::RCPT)?;
                self.message().recipients.push(strip_brackets(args[0]));
                Ok(reply_unless(&self.negotiated, proto::NR_RCPT))
            }
            Command::Data => {
                self.advance(Kind::Data, code::DATA)?;
                Ok(reply_unless(&self.negotiated, proto::NR_DATA))
            }
            Command::Header { name, value } => {
                self.advance(Kind::Header, code::HEADER)?;
                let leading_space = self.negotiated.leading_space();
                let cap = self.max_message;
                let msg = self.message();
                let mut line = Vec::with_capacity(name.len() + value.len() + 4);
                line.extend_from_slice(name);
                line.push(b':');
                if !leading_space {
                    // Without HDR_LEADSPC the MTA removed exactly one space after the colon.
                    line.push(b' ');
                }
                push_crlf_normalised(&mut line, value);
                line.extend_from_slice(b"\r\n");
                msg.append(&line, cap);
                Ok(reply_unless(&self.negotiated, proto::NR_HDR))
            }
            Command::EndOfHeaders => {
                self.advance(Kind::EndOfHeaders, code::EOH)?;
                let cap = self.max_message;
                self.message().end_headers(cap);
                Ok(reply_unless(&self.negotiated, proto::NR_EOH))
            }
            Command::Body(chunk) => {
                self.advance(Kind::Body, code::BODY)?;
                let cap = self.max_message;
                let msg = self.message();
                msg.end_headers(cap);
                msg.append(chunk, cap);
                let past_cap = msg.truncated;
                let n = self.negotiated;
                if past_cap && n.skip_offered && n.version >= 6 {
                    // SKIP ends the body early: the rest would be dropped anyway.
                    Ok(Step::Reply(vec![Response::Skip]))
                } else {
                    Ok(reply_unless(&n, proto::NR_BODY))
                }
            }
            Command::EndOfMessage(last_chunk) => {
                self.advance(Kind::EndOfMessage, code::EOM)?;
                let cap = self.max_message;
                let msg = self.message();
                msg.end_headers(cap);
                msg.append(last_chunk, cap);
                let msg = self.msg.take().unwrap_or_default();
                Ok(Step::Filter(Box::new(self.end_of_message(msg))))
            }
        }
    }

    /// The message buffer, for a caller to read the payload of a BODY packet of `len` bytes
    /// straight into (appending to it), when the session would take that chunk whole: in
    /// the body (after end of headers), and with the chunk under the size cap. Room for
    /// `len` more bytes is reserved. After appending, the caller reports the chunk with
    /// [`Session::body_appended`]; anything else goes through [`Session::handle`].
    pub fn body_buffer(&mut self, len: usize) -> Option<&mut Vec<u8>> {
        if self.body_room()? < len {
            return None;
        }
        let msg = self.msg.as_mut()?;
        msg.reserve(len);
        Some(&mut msg.raw)
    }

    /// How many more bytes the message in progress takes before the size cap, when a body
    /// chunk could go straight into its buffer now (see [`Session::body_buffer`]).
    pub fn body_room(&self) -> Option<usize> {
        if !matches!(self.stage, Stage::EndOfHeaders | Stage::Body) {
            return None;
        }
        let msg = self.msg.as_ref().filter(|m| m.headers_ended && !m.truncated)?;
        Some(self.max_message.saturating_sub(msg.spilled + msg.raw.len()))
    }

    /// A BODY chunk of `len` bytes was appended to the buffer [`Session::body_buffer`] gave:
    /// the same step as `handle(Command::Body(chunk))`, without copying the chunk.
    pub fn body_appended(&mut self, len: usize) -> Result<Vec<Response>, ProtocolError> {
        self.advance(Kind::Body, code::BODY)?;
        self.message().received += len as u64;
        Ok(if self.negotiated.no_reply_for(proto::NR_BODY) { vec![] } else { vec![Response::Continue] })
    }

    /// Turns the filter's verdict into the end-of-message replies, all to be sent in one write.
    /// Modifications the MTA did not allow are dropped (a hold it did not allow becomes a
    /// tempfail: the message must not be delivered unheld, and must not be lost).
    pub fn finish(&mut self, verdict: Verdict) -> Result<Vec<Response>, ProtocolError> {
        if self.stage != Stage::Filtering {
            return Err(ProtocolError::NoMessage);
        }
        self.stage = Stage::Done;
        let n = self.negotiated;
        let mut out = Vec::new();
        // With HDR_LEADSPC the MTA stores our value verbatim, so we add the space it would add.
        let space = if n.leading_space() { " " } else { "" };
        for change in verdict.headers {
            match change {
                HeaderChange::Add { name, value } if n.may(action::ADD_HEADERS) => {
                    out.push(Response::AddHeader { name, value: format!("{space}{value}") })
                }
                HeaderChange::Insert { index, name, value } if n.may(action::ADD_HEADERS) => {
                    out.push(Response::InsertHeader { index, name, value: format!("{space}{value}") })
                }
                HeaderChange::Change { index, name, value } if n.may(action::CHANGE_HEADERS) => {
                    let value = if value.is_empty() { value } else { format!("{space}{value}") };
                    out.push(Response::ChangeHeader { index, name, value })
                }
                other => tracing::warn!(change = ?other, "MTA did not allow this header change; dropped"),
            }
        }
        match verdict.action {
            Action::Accept => out.push(Response::Accept),
            Action::Discard => out.push(Response::Discard),
            Action::Reject(Some(reply)) | Action::Tempfail(Some(reply)) => {
                out.push(Response::ReplyCode(reply))
            }
            Action::Reject(None) => out.push(Response::Reject),
            Action::Tempfail(None) => out.push(Response::Tempfail),
            Action::Quarantine(reason) => {
                if n.may(action::QUARANTINE) {
                    out.push(Response::Quarantine(reason));
                    out.push(Response::Accept);
                } else {
                    tracing::warn!("MTA did not allow quarantine; tempfailing instead");
                    out.retain(|r| {
                        !matches!(
                            r,
                            Response::AddHeader { .. }
                                | Response::InsertHeader { .. }
                                | Response::ChangeHeader { .. }
                        )
                    });
                    out.push(Response::Tempfail);
                }
            }
        }
        Ok(out)
    }

    fn message(&mut self) -> &mut MessageState {
        // `advance` guarantees a message exists in every stage that reaches here; a fresh one
        // is the safe fallback rather than a panic.
        self.msg.get_or_insert_with(MessageState::default)
    }

    fn advance(&mut self, kind: Kind, code: u8) -> Result<(), ProtocolError> {
        match self.stage.after(kind) {
            Some(next) => {
                self.stage = next;
                Ok(())
            }
            None => Err(self.out_of_order(code)),
        }
    }

    fn out_of_order(&self, code: u8) -> ProtocolError {
        ProtocolError::OutOfOrder { command: code as char, stage: self.stage }
    }

    fn macros(&mut self, stage: u8, pairs: &[(&[u8], &[u8])]) {
        let decoded = pairs.iter().map(|(k, v)| (macro_name(k), String::from_utf8_lossy(v).into_owned()));
        match stage {
            code::CONNECT | code::HELO => {
                if stage == code::HELO {
                    // A new EHLO (the second one, after STARTTLS) describes the transport anew.
                    self.conn.tls = None;
                    self.conn.macros.retain(|k, _| !TLS_MACRO_NAMES.contains(&k.as_str()));
                }
                self.conn.macros.extend(decoded);
                if let Some(tls) = Tls::from_macros(&self.conn.macros) {
                    self.conn.tls = Some(tls);
                }
            }
            // Recipient macros describe one recipient only; nothing of ours uses them.
            code::RCPT => {}
            _ => {
                let decoded: BTreeMap<String, String> = decoded.collect();
                if let Some(tls) = Tls::from_macros(&decoded) {
                    self.conn.tls = Some(tls);
                }
                match &mut self.msg {
                    Some(msg) if stage != code::MAIL => msg.macros.extend(decoded),
                    // MAIL macros come before the MAIL command that starts a new message.
                    _ => self.conn.mail_macros = decoded,
                }
            }
        }
    }

    fn end_of_message(&self, mut msg: MessageState) -> EndOfMessage {
        let mut macros = self.conn.macros.clone();
        macros.extend(msg.macros.iter().map(|(k, v)| (k.clone(), v.clone())));
        // TLS macros of the connection are not repeated in every packet; the latest stand.
        let envelope = Envelope {
            client: self.conn.client.clone(),
            helo: self.conn.helo.clone(),
            sender: std::mem::take(&mut msg.sender),
            sender_args: std::mem::take(&mut msg.sender_args),
            recipients: std::mem::take(&mut msg.recipients),
            queue_id: macros.get("i").filter(|i| !i.is_empty()).cloned(),
            tls: self.conn.tls.clone(),
            auth: Auth::from_macros(&macros),
            macros,
        };
        let message = std::mem::take(&mut msg.raw);
        EndOfMessage {
            envelope,
            message,
            truncated: msg.truncated,
            received_bytes: msg.received,
            arrived: std::time::Instant::now(),
        }
    }
}

impl Drop for MessageState {
    /// A message given up (ABORT, a new MAIL, the connection gone) hands its buffer on to the
    /// next one; a finished message's buffer went on in its [`EndOfMessage`].
    fn drop(&mut self) {
        crate::memory::recycle(std::mem::take(&mut self.raw));
    }
}

impl MessageState {
    fn append(&mut self, bytes: &[u8], cap: usize) {
        self.received += bytes.len() as u64;
        let room = cap.saturating_sub(self.spilled + self.raw.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        let take = &bytes[..bytes.len().min(room)];
        self.reserve(take.len());
        self.raw.extend_from_slice(take);
    }

    /// Room for `n` more bytes: grown as `extend_from_slice` would (doubling), with the next
    /// pages brought in at once (not all of the doubled end, which may never be written).
    fn reserve(&mut self, n: usize) {
        if self.raw.capacity() - self.raw.len() < n {
            self.raw.reserve(n);
            crate::memory::prefault_ahead(&mut self.raw, GROWTH_PREFAULT);
        }
    }

    fn end_headers(&mut self, cap: usize) {
        if !self.headers_ended {
            self.headers_ended = true;
            self.append(b"\r\n", cap);
        }
    }
}

/// Appends `value` with every bare LF made CRLF. Header values fold with a bare LF (`\n\t`) on
/// the milter wire; the rebuilt message uses CRLF throughout, like the body the MTA sends.
pub fn push_crlf_normalised(out: &mut Vec<u8>, value: &[u8]) {
    let mut prev = 0u8;
    for &b in value {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
}

/// How far ahead a message buffer growing past its declared size (or without one) is
/// pre-faulted: a few body chunks.
const GROWTH_PREFAULT: usize = 1 << 20;

/// The ESMTP `SIZE=` the client declared, used only as a capacity hint.
fn declared_size(args: &[String]) -> Option<usize> {
    args.iter()
        .find_map(|a| a.get(..5).filter(|p| p.eq_ignore_ascii_case("SIZE=")).map(|_| &a[5..]))
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests;
