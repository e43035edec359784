//! The MTA side of the milter protocol, over a socket: what Postfix does, in a form our own
//! tools can drive — `check --connect` (is the milter there, and what does it offer?), the
//! load generator, and the tests. Unlike other client crates it reuses a connection after
//! ABORT, sends macros, honours the no-reply bits the milter asked for, and answers SKIP.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::milter::codec;
use crate::milter::command::{Command, Family, code};
use crate::milter::negotiate::proto;
use crate::milter::response::Response;
use crate::server::ListenAddr;

/// What Postfix 3.x offers: protocol version 6, every action, every protocol bit.
pub const POSTFIX_OFFER: Offer = Offer { version: 6, actions: 0x1ff, protocol: 0x1f_ffff };

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub version: u32,
    pub actions: u32,
    pub protocol: u32,
}

/// What the milter answered to our offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    pub version: u32,
    pub actions: u32,
    pub protocol: u32,
    pub macros: Vec<(u32, String)>,
}

#[derive(Debug)]
pub enum ClientError {
    Io(std::io::Error),
    /// The milter sent something we could not parse, or not what the protocol allows here.
    Protocol(String),
    /// The milter closed the connection.
    Closed,
    Timeout,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Protocol(e) => write!(f, "protocol error: {e}"),
            ClientError::Closed => write!(f, "the milter closed the connection"),
            ClientError::Timeout => write!(f, "timed out waiting for the milter"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> ClientError {
        ClientError::Io(e)
    }
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One message as an MTA would send it.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub sender: String,
    pub recipients: Vec<String>,
    /// Header name and value, the value without the space after the colon.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body with CRLF line ends, as the MTA sends it.
    pub body: Vec<u8>,
    /// Macros sent before each stage (stage code such as `b'M'`, then name/value pairs).
    pub macros: Vec<(u8, Vec<(String, String)>)>,
}

impl Message {
    /// Size of the message as sent in SMTP DATA (header lines, the blank line, the body).
    pub fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + 2 + v.len() + 2).sum();
        headers + 2 + self.body.len()
    }

    /// Splits raw message bytes into headers and body the way an MTA does: headers unfolded
    /// into name and value (folds kept as LF + whitespace), bare LF turned into CRLF.
    pub fn from_eml(raw: &[u8]) -> Message {
        let (head, body) = split_head_body(raw);
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for line in head.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if matches!(line[0], b' ' | b'\t') {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(b'\n');
                    value.extend_from_slice(line);
                }
                continue;
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (line, &b""[..]),
            };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            headers.push((name.to_vec(), value.to_vec()));
        }
        let mut crlf = Vec::with_capacity(body.len() + body.len() / 50);
        crate::milter::session::push_crlf_normalised(&mut crlf, body);
        Message {
            sender: "sender@example.test".to_string(),
            recipients: vec!["rcpt@example.test".to_string()],
            headers,
            body: crlf,
            macros: Vec::new(),
        }
    }
}

fn split_head_body(raw: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in raw.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&raw[..i + 1], &raw[i + 2..]);
        }
        if w == b"\n\r" && raw.get(i + 2) == Some(&b'\n') {
            return (&raw[..i + 1], &raw[i + 3..]);
        }
    }
    (raw, b"")
}

/// How the milter answered one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Modifications sent at end of message (headers, quarantine, …), in order.
    pub modifications: Vec<Response>,
    /// The final reply, at end of message or earlier.
    pub action: Option<Response>,
    /// The stage (command code) that drew the final reply.
    pub decided_at: u8,
    pub progress: usize,
    /// The milter sent SKIP during the body.
    pub skipped: bool,
}

impl Outcome {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.modifications.iter().find_map(|m| match m {
            Response::AddHeader { name: n, value } | Response::InsertHeader { name: n, value, .. }
                if n.eq_ignore_ascii_case(name) =>
            {
                Some(value.trim_start())
            }
            _ => None,
        })
    }

    pub fn quarantined(&self) -> bool {
        self.modifications.iter().any(|m| matches!(m, Response::Quarantine(_)))
    }
}

pub struct Client {
    conn: Conn,
    buf: Vec<u8>,
    /// The packet being written (kept between commands).
    out: Vec<u8>,
    /// Zero until negotiated.
    protocol: u32,
    timeout: Duration,
    /// Body chunk size; Postfix uses 65535.
    pub chunk_size: usize,
}

impl Client {
    pub async fn connect(addr: &ListenAddr, timeout: Duration) -> Result<Client, ClientError> {
        let conn = tokio::time::timeout(timeout, async {
            Ok::<_, std::io::Error>(match addr {
                ListenAddr::Inet { host, port } => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    Conn::Tcp(s)
                }
                ListenAddr::Unix(path) => Conn::Unix(UnixStream::connect(path).await?),
            })
        })
        .await
        .map_err(|_| ClientError::Timeout)??;
        Ok(Client {
            conn,
            buf: Vec::with_capacity(4096),
            out: Vec::new(),
            protocol: 0,
            timeout,
            chunk_size: 65535,
        })
    }

    pub async fn negotiate(&mut self, offer: Offer) -> Result<Negotiation, ClientError> {
        self.write(&Command::OptNeg {
            version: offer.version,
            actions: offer.actions,
            protocol: offer.protocol,
        })
        .await?;
        match self.read().await? {
            Response::OptNeg { version, actions, protocol, macros } => {
                self.protocol = protocol;
                Ok(Negotiation { version, actions, protocol, macros })
            }
            other => Err(ClientError::Protocol(format!("expected an OPTNEG reply, got {other:?}"))),
        }
    }

    /// CONNECT and HELO, as at the start of an SMTP session. Returns an early final reply.
    pub async fn open(&mut self, client_addr: &str, helo: &str) -> Result<Option<Response>, ClientError> {
        let family = if client_addr.contains(':') { Family::Inet6 } else { Family::Inet };
        let connect =
            Command::Connect { hostname: b"unknown", family, port: 40000, address: client_addr.as_bytes() };
        if let Some(r) = self.stage(connect, proto::NR_CONN).await? {
            return Ok(Some(r));
        }
        self.stage(Command::Helo(helo.as_bytes()), proto::NR_HELO).await
    }

    /// Sends one whole message and collects the milter's answer.
    pub async fn send(&mut self, msg: &Message) -> Result<Outcome, ClientError> {
        let mut outcome = Outcome::default();
        let macros_for = |stage: u8| msg.macros.iter().filter(move |(s, _)| *s == stage);
        macro_rules! step {
            ($stage:expr, $cmd:expr, $nr:expr) => {{
                for (_, pairs) in macros_for($stage) {
                    let pairs: Vec<(&[u8], &[u8])> =
                        pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
                    self.write(&Command::Macro { stage: $stage, pairs }).await?;
                }
                if let Some(r) = self.stage($cmd, $nr).await? {
                    if !matches!(r, Response::Continue) {
                        outcome.action = Some(r);
                        outcome.decided_at = $stage;
                        return Ok(outcome);
                    }
                }
            }};
        }
        let sender = format!("<{}>", msg.sender);
        // The client's SIZE= declaration, which Postfix and Sendmail pass on with MAIL.
        let size = format!("SIZE={}", msg.size());
        step!(code::MAIL, Command::Mail(vec![sender.as_bytes(), size.as_bytes()]), proto::NR_MAIL);
        for rcpt in &msg.recipients {
            let rcpt = format!("<{rcpt}>");
            step!(code::RCPT, Command::Rcpt(vec![rcpt.as_bytes()]), proto::NR_RCPT);
        }
        step!(code::DATA, Command::Data, proto::NR_DATA);
        let leading_space = self.protocol & proto::HDR_LEADSPC != 0;
        for (name, value) in &msg.headers {
            let mut v = Vec::with_capacity(value.len() + 1);
            if leading_space {
                v.push(b' ');
            }
            v.extend_from_slice(value);
            step!(code::HEADER, Command::Header { name, value: &v }, proto::NR_HDR);
        }
        step!(code::EOH, Command::EndOfHeaders, proto::NR_EOH);
        for chunk in msg.body.chunks(self.chunk_size.max(1)) {
            for (_, pairs) in macros_for(code::BODY) {
                let pairs: Vec<(&[u8], &[u8])> =
                    pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
                self.write(&Command::Macro { stage: code::BODY, pairs }).await?;
            }
            match self.body(chunk).await? {
                None | Some(Response::Continue) => {}
                Some(Response::Skip) => {
                    outcome.skipped = true;
                    break;
                }
                Some(r) => {
                    outcome.action = Some(r);
                    outcome.decided_at = code::BODY;
                    return Ok(outcome);
                }
            }
        }
        for (_, pairs) in macros_for(code::EOM) {
            let pairs: Vec<(&[u8], &[u8])> =
                pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
            self.write(&Command::Macro { stage: code::EOM, pairs }).await?;
        }
        self.write(&Command::EndOfMessage(b"")).await?;
        outcome.decided_at = code::EOM;
        loop {
            match self.read().await? {
                Response::Progress => outcome.progress += 1,
                r @ (Response::Accept
                | Response::Continue
                | Response::Reject
                | Response::Tempfail
                | Response::Discard
                | Response::ReplyCode(_)) => {
                    outcome.action = Some(r);
                    return Ok(outcome);
                }
                Response::Skip | Response::OptNeg { .. } | Response::ConnFail => {
                    return Err(ClientError::Protocol("unexpected reply at end of message".into()));
                }
                modification => outcome.modifications.push(modification),
            }
        }
    }

    pub async fn abort(&mut self) -> Result<(), ClientError> {
        self.write(&Command::Abort).await
    }

    pub async fn quit(mut self) -> Result<(), ClientError> {
        self.write(&Command::Quit).await
    }

    /// Sends any command without waiting for a reply (for tests of odd sequences).
    pub async fn write(&mut self, cmd: &Command<'_>) -> Result<(), ClientError> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        cmd.encode(&mut out);
        let written = self.write_raw(&out).await;
        self.out = out;
        written
    }

    /// Sends one body chunk and reads its reply unless the milter asked for none. The chunk is
    /// written from where it lies, behind its packet header, in one vectored write.
    async fn body(&mut self, chunk: &[u8]) -> Result<Option<Response>, ClientError> {
        let header = Command::body_header(chunk);
        let mut parts = [std::io::IoSlice::new(&header), std::io::IoSlice::new(chunk)];
        let mut parts = &mut parts[..];
        while !parts.is_empty() {
            let n = match &mut self.conn {
                Conn::Tcp(s) => s.write_vectored(parts).await?,
                Conn::Unix(s) => s.write_vectored(parts).await?,
            };
            if n == 0 {
                return Err(ClientError::Closed);
            }
            std::io::IoSlice::advance_slices(&mut parts, n);
        }
        self.reply_unless(proto::NR_BODY).await
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match &mut self.conn {
            Conn::Tcp(s) => s.write_all(bytes).await?,
            Conn::Unix(s) => s.write_all(bytes).await?,
        }
        Ok(())
    }

    /// Sends a command and reads its reply unless the milter asked for none (`nr_bit`).
    async fn stage(&mut self, cmd: Command<'_>, nr_bit: u32) -> Result<Option<Response>, ClientError> {
        self.write(&cmd).await?;
        self.reply_unless(nr_bit).await
    }

    /// Reads the reply to what was just sent, unless the milter asked for none (`nr_bit`).
    async fn reply_unless(&mut self, nr_bit: u32) -> Result<Option<Response>, ClientError> {
        if self.protocol & nr_bit != 0 {
            return Ok(None);
        }
        loop {
            match self.read().await? {
                Response::Progress => continue,
                r => return Ok(Some(r)),
            }
        }
    }

    /// Reads one reply.
    pub async fn read(&mut self) -> Result<Response, ClientError> {
        loop {
            if let Some((packet, used)) =
                codec::decode(&self.buf).map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                let r = Response::parse(packet).map_err(|e| ClientError::Protocol(e.to_string()));
                self.buf.drain(..used);
                return r;
            }
            let read = async {
                match &mut self.conn {
                    Conn::Tcp(s) => s.read_buf(&mut self.buf).await,
                    Conn::Unix(s) => s.read_buf(&mut self.buf).await,
                }
            };
            match tokio::time::timeout(self.timeout, read).await {
                Err(_) => return Err(ClientError::Timeout),
                Ok(Ok(0)) => return Err(ClientError::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(ClientError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_eml_splits_and_unfolds_like_an_mta() {
        let m = Message::from_eml(b"Subject: a\n\tfolded\nX-Tight:v\nNoColon\n\nline1\nline2\r\n");
        assert_eq!(
            m.headers,
            vec![
                (b"Subject".to_vec(), b"a\n\tfolded".to_vec()),
                (b"X-Tight".to_vec(), b"v".to_vec()),
                (b"NoColon".to_vec(), b"".to_vec()),
            ]
        );
        assert_eq!(m.body, b"line1\r\nline2\r\n");
    }

    #[test]
    fn from_eml_handles_crlf_and_no_body() {
        let m = Message::from_eml(b"A: 1\r\nB: 2\r\n\r\nbody");
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.body, b"body");
        let m = Message::from_eml(b"A: 1\n");
        assert_eq!(m.headers.len(), 1);
        assert!(m.body.is_empty());
    }
}
