//! An SMTP client for delivering released mail to a relay, with STARTTLS through rustls.
//!
//! STARTTLS is `required` by default: a released message was held because it looked
//! dangerous, and a reviewer's decision to deliver it should not travel in clear text or to a
//! server that merely claims the relay's name. The certificate is verified against the system
//! roots or a configured CA file.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Refuse to deliver unless the relay offers STARTTLS and its certificate verifies.
    Required,
    /// Use STARTTLS when offered (still verifying the certificate), else send in clear.
    Opportunistic,
    /// Never use TLS.
    Off,
}

#[derive(Debug, Clone)]
pub struct SmtpOptions {
    pub host: String,
    pub port: u16,
    pub starttls: StartTls,
    /// The name the certificate must carry (default: `host`).
    pub tls_name: Option<String>,
    /// PEM file of trusted CA certificates (default: the system roots).
    pub ca_file: Option<PathBuf>,
    /// Our EHLO name.
    pub helo: String,
    /// For each read and write.
    pub timeout: Duration,
}

/// What the relay said when it took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The reply to the end of DATA, e.g. `250 2.0.0 Ok: queued as 4ABC`.
    pub reply: String,
    /// The TLS version used, when STARTTLS was.
    pub tls: Option<String>,
}

#[derive(Debug)]
pub enum SmtpError {
    Connect(String),
    /// The relay answered with an error; `stage` names the command.
    Refused {
        stage: &'static str,
        reply: String,
    },
    /// STARTTLS is required and the relay does not offer it.
    NoStartTls,
    Tls(String),
    /// The message or its envelope needs an SMTP extension the relay does not offer.
    Unsupported {
        extension: &'static str,
        why: &'static str,
    },
    Io(String),
    Timeout(&'static str),
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpError::Connect(e) => write!(f, "cannot connect to the relay: {e}"),
            SmtpError::Refused { stage, reply } => write!(f, "the relay refused {stage}: {reply}"),
            SmtpError::NoStartTls => {
                write!(
                    f,
                    "the relay does not offer STARTTLS, and release.starttls is `required`; nothing was sent"
                )
            }
            SmtpError::Tls(e) => write!(f, "TLS with the relay failed: {e}; nothing was sent"),
            SmtpError::Unsupported { extension, why } => write!(
                f,
                "the relay does not offer {extension}, which {why} needs; nothing was sent (choose a relay that offers it)"
            ),
            SmtpError::Io(e) => write!(f, "connection to the relay failed: {e}"),
            SmtpError::Timeout(stage) => write!(f, "the relay did not answer {stage} in time"),
        }
    }
}

impl std::error::Error for SmtpError {}

/// Delivers `message` from `sender` to `recipients` through the relay.
pub async fn deliver(
    opts: &SmtpOptions,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<Delivered, SmtpError> {
    let tcp = tokio::time::timeout(opts.timeout, TcpStream::connect((opts.host.as_str(), opts.port)))
        .await
        .map_err(|_| SmtpError::Timeout("the connection"))?
        .map_err(|e| SmtpError::Connect(format!("{}:{}: {e}", opts.host, opts.port)))?;
    let mut s = BufStream::new(tcp);
    expect(&mut s, opts, "the greeting", 220).await?;
    let caps = ehlo(&mut s, opts).await?;
    let offers_tls = offers(&caps, "STARTTLS");
    if opts.starttls == StartTls::Off || (!offers_tls && opts.starttls == StartTls::Opportunistic) {
        let reply = transact(&mut s, opts, &caps, sender, recipients, message).await?;
        return Ok(Delivered { reply, tls: None });
    }
    if !offers_tls {
        let _ = command(&mut s, opts, "QUIT", "QUIT").await;
        return Err(SmtpError::NoStartTls);
    }
    let reply = command(&mut s, opts, "STARTTLS", "STARTTLS").await?;
    if !reply.starts_with("220") {
        return Err(SmtpError::Refused { stage: "STARTTLS", reply });
    }
    let connector = TlsConnector::from(Arc::new(tls_config(opts)?));
    let name = opts.tls_name.clone().unwrap_or_else(|| opts.host.clone());
    let server_name = rustls_pki_types::ServerName::try_from(name.clone())
        .map_err(|e| SmtpError::Tls(format!("{name} is not a valid name: {e}")))?;
    let tls = tokio::time::timeout(opts.timeout, connector.connect(server_name, s.into_inner()))
        .await
        .map_err(|_| SmtpError::Timeout("the TLS handshake"))?
        .map_err(|e| SmtpError::Tls(e.to_string()))?;
    let version = tls.get_ref().1.protocol_version().map(|v| format!("{v:?}").replace("TLSv1_", "TLSv1."));
    let mut s = BufStream::new(tls);
    // What the relay offers inside TLS is what counts (RFC 3207: forget what was said before).
    let caps = ehlo(&mut s, opts).await?;
    let reply = transact(&mut s, opts, &caps, sender, recipients, message).await?;
    Ok(Delivered { reply, tls: version })
}

fn tls_config(opts: &SmtpOptions) -> Result<rustls::ClientConfig, SmtpError> {
    let mut roots = rustls::RootCertStore::empty();
    match &opts.ca_file {
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| SmtpError::Tls(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| SmtpError::Tls(format!("{}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| SmtpError::Tls(format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(SmtpError::Tls("no trusted CA certificates (set release.ca_file)".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SmtpError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn ehlo<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    opts: &SmtpOptions,
) -> Result<String, SmtpError> {
    let reply = command(s, opts, &format!("EHLO {}", opts.helo), "EHLO").await?;
    if !reply.starts_with("250") {
        return Err(SmtpError::Refused { stage: "EHLO", reply });
    }
    Ok(reply)
}

/// Whether the EHLO reply `caps` offers the extension `keyword` (its first word on a line).
fn offers(caps: &str, keyword: &str) -> bool {
    caps.lines().any(|l| {
        l.get(4..).and_then(|c| c.split_whitespace().next()).is_some_and(|c| c.eq_ignore_ascii_case(keyword))
    })
}

/// The MAIL parameters the message needs, refused before anything is sent when the relay
/// lacks them: `BODY=8BITMIME` for bytes above 127 anywhere (RFC 6152), `SMTPUTF8` for
/// addresses that are not ASCII (RFC 6531; a UTF-8 header block is 8-bit content, which
/// 8BITMIME covers for relays that take it).
fn mail_parameters(
    caps: &str,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<String, SmtpError> {
    let mut params = String::new();
    if !message.is_ascii() {
        if !offers(caps, "8BITMIME") {
            return Err(SmtpError::Unsupported { extension: "8BITMIME", why: "a message with 8-bit bytes" });
        }
        params.push_str(" BODY=8BITMIME");
    }
    if !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii()) {
        if !offers(caps, "SMTPUTF8") {
            return Err(SmtpError::Unsupported {
                extension: "SMTPUTF8",
                why: "an address that is not ASCII",
            });
        }
        params.push_str(" SMTPUTF8");
    }
    Ok(params)
}

async fn transact<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    opts: &SmtpOptions,
    caps: &str,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<String, SmtpError> {
    let ok = |stage: &'static str, reply: String, want: &[&str]| {
        if want.iter().any(|w| reply.starts_with(w)) {
            Ok(reply)
        } else {
            Err(SmtpError::Refused { stage, reply })
        }
    };
    let params = match mail_parameters(caps, sender, recipients, message) {
        Ok(params) => params,
        Err(e) => {
            let _ = command(s, opts, "QUIT", "QUIT").await;
            return Err(e);
        }
    };
    let mail = format!("MAIL FROM:<{}>{params}", clean(sender));
    ok("MAIL", command(s, opts, &mail, "MAIL").await?, &["250"])?;
    for r in recipients {
        // 251: "user not local; will forward" is an acceptance too (RFC 5321, 3.4).
        ok("RCPT", command(s, opts, &format!("RCPT TO:<{}>", clean(r)), "RCPT").await?, &["250", "251"])?;
    }
    ok("DATA", command(s, opts, "DATA", "DATA").await?, &["354"])?;
    let mut data = Vec::with_capacity(message.len() + 1024);
    for line in message.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(body);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    io(opts, "the message", s.write_all(&data)).await?;
    io(opts, "the message", s.flush()).await?;
    let reply = ok("the message", read_reply(s, opts, "the message").await?, &["250"])?;
    let _ = command(s, opts, "QUIT", "QUIT").await;
    Ok(reply)
}

/// Addresses go into SMTP commands verbatim; CR, LF and angle brackets must not.
fn clean(addr: &str) -> String {
    addr.chars().filter(|c| !matches!(c, '\r' | '\n' | '<' | '>' | '\0')).collect()
}

async fn io<T>(
    opts: &SmtpOptions,
    stage: &'static str,
    f: impl Future<Output = std::io::Result<T>>,
) -> Result<T, SmtpError> {
    tokio::time::timeout(opts.timeout, f)
        .await
        .map_err(|_| SmtpError::Timeout(stage))?
        .map_err(|e| SmtpError::Io(e.to_string()))
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    opts: &SmtpOptions,
    line: &str,
    stage: &'static str,
) -> Result<String, SmtpError> {
    io(opts, stage, s.write_all(format!("{line}\r\n").as_bytes())).await?;
    io(opts, stage, s.flush()).await?;
    read_reply(s, opts, stage).await
}

async fn expect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    opts: &SmtpOptions,
    stage: &'static str,
    code: u16,
) -> Result<String, SmtpError> {
    let reply = read_reply(s, opts, stage).await?;
    if reply.starts_with(&code.to_string()) { Ok(reply) } else { Err(SmtpError::Refused { stage, reply }) }
}

/// Longest reply line read, end included. RFC 5321 allows 512; relays that say more are
/// cut off here rather than read without bound.
const MAX_REPLY_LINE: u64 = 2048;

/// Most lines of one reply (an EHLO reply lists a dozen or two).
const MAX_REPLY_LINES: usize = 100;

/// One reply, all its lines joined with `\n`. Lines are bytes, not necessarily UTF-8 (shown
/// with U+FFFD where they are not), each at most [`MAX_REPLY_LINE`] long.
async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    opts: &SmtpOptions,
    stage: &'static str,
) -> Result<String, SmtpError> {
    let mut all = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..MAX_REPLY_LINES {
        raw.clear();
        let n = io(opts, stage, (&mut *s).take(MAX_REPLY_LINE).read_until(b'\n', &mut raw)).await?;
        if n == 0 {
            return Err(SmtpError::Io("the relay closed the connection".into()));
        }
        if raw.last() != Some(&b'\n') {
            return Err(SmtpError::Io(format!("a reply line longer than {MAX_REPLY_LINE} bytes")));
        }
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        let last = line.len() < 4 || line.as_bytes()[3] != b'-';
        all.push(line);
        if last {
            return Ok(all.join("\n"));
        }
    }
    Err(SmtpError::Io(format!("a reply of more than {MAX_REPLY_LINES} lines")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A scripted SMTP server: answers each command from the list, records what it got.
    async fn fake_relay(
        offer_tls: bool,
        data_reply: &'static str,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let ehlo = if offer_tls {
            "250-relay.example\r\n250-STARTTLS\r\n250 8BITMIME"
        } else {
            "250-relay.example\r\n250 8BITMIME"
        };
        scripted_relay(ehlo, "250 ok", data_reply).await
    }

    /// A relay with its own EHLO and RCPT replies (raw bytes: they need not be UTF-8).
    async fn scripted_relay(
        ehlo: &'static str,
        rcpt: &'static str,
        data_reply: &'static str,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let mut got = Vec::new();
            w.write_all(b"220 relay.example ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                let line = line.trim_end().to_string();
                got.push(line.clone());
                if in_data {
                    if line == "." {
                        in_data = false;
                        w.write_all(format!("{data_reply}\r\n").as_bytes()).await.unwrap();
                    }
                    continue;
                }
                let reply = match line.split(' ').next().unwrap() {
                    "EHLO" => ehlo,
                    "MAIL" => "250 ok",
                    "RCPT" => rcpt,
                    "DATA" => {
                        in_data = true;
                        "354 go ahead"
                    }
                    "QUIT" => {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    }
                    _ => "502 no",
                };
                w.write_all(format!("{reply}\r\n").as_bytes()).await.unwrap();
            }
            got
        });
        (port, task)
    }

    fn opts(port: u16, starttls: StartTls) -> SmtpOptions {
        SmtpOptions {
            host: "127.0.0.1".into(),
            port,
            starttls,
            tls_name: None,
            ca_file: None,
            helo: "release.example".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn delivers_in_clear_when_allowed_and_dot_stuffs() {
        let (port, relay) = fake_relay(false, "250 2.0.0 queued as X").await;
        let d = deliver(
            &opts(port, StartTls::Opportunistic),
            "a@b",
            &["c@d".into(), "e@f".into()],
            b"Subject: x\n\n.dot\nend\n",
        )
        .await
        .unwrap();
        assert_eq!(d, Delivered { reply: "250 2.0.0 queued as X".into(), tls: None });
        let got = relay.await.unwrap();
        assert!(got.contains(&"MAIL FROM:<a@b>".to_string()));
        assert!(got.contains(&"RCPT TO:<e@f>".to_string()));
        assert!(got.contains(&"..dot".to_string()), "{got:?}");
    }

    #[tokio::test]
    async fn required_starttls_refuses_a_relay_without_it() {
        let (port, relay) = fake_relay(false, "250 ok").await;
        let e = deliver(&opts(port, StartTls::Required), "a@b", &["c@d".into()], b"x\n").await.unwrap_err();
        assert!(matches!(e, SmtpError::NoStartTls), "{e}");
        assert!(e.to_string().contains("nothing was sent"));
        let got = relay.await.unwrap();
        assert!(!got.iter().any(|l| l.starts_with("MAIL")), "{got:?}");
    }

    #[tokio::test]
    async fn a_refusal_is_reported_with_the_relays_words() {
        let (port, _relay) = fake_relay(false, "554 5.7.1 no thanks").await;
        let e = deliver(&opts(port, StartTls::Off), "a@b", &["c@d".into()], b"x\n").await.unwrap_err();
        assert_eq!(e.to_string(), "the relay refused the message: 554 5.7.1 no thanks");
    }

    #[test]
    fn addresses_cannot_inject_commands() {
        assert_eq!(clean("a@b>\r\nRCPT TO:<evil@x"), "a@bRCPT TO:evil@x");
    }

    #[tokio::test]
    async fn a_forwarding_recipient_251_is_accepted() {
        let (port, _relay) =
            scripted_relay("250 relay.example", "251 2.1.5 will forward", "250 queued").await;
        let d = deliver(&opts(port, StartTls::Off), "a@b", &["c@d".into()], b"x\n").await.unwrap();
        assert_eq!(d.reply, "250 queued");
    }

    #[tokio::test]
    async fn eight_bit_and_utf8_addresses_ask_for_their_extensions() {
        let (port, relay) =
            scripted_relay("250-relay.example\r\n250-8BITMIME\r\n250 SMTPUTF8", "250 ok", "250 queued").await;
        let to = vec!["jos\u{e9}@d.example".to_string()];
        deliver(&opts(port, StartTls::Off), "a@b", &to, "Subject: caf\u{e9}\n\nna\u{ef}ve\n".as_bytes())
            .await
            .unwrap();
        let got = relay.await.unwrap();
        assert!(got.contains(&"MAIL FROM:<a@b> BODY=8BITMIME SMTPUTF8".to_string()), "{got:?}");

        let (port, relay) = scripted_relay("250 relay.example", "250 ok", "250 queued").await;
        deliver(&opts(port, StartTls::Off), "a@b", &["c@d".into()], b"plain\n").await.unwrap();
        assert!(relay.await.unwrap().contains(&"MAIL FROM:<a@b>".to_string()), "7-bit mail asks for nothing");
    }

    #[tokio::test]
    async fn a_relay_without_8bitmime_gets_nothing_of_an_8bit_message() {
        let (port, relay) = scripted_relay("250 relay.example", "250 ok", "250 queued").await;
        let e = deliver(&opts(port, StartTls::Off), "a@b", &["c@d".into()], "caf\u{e9}\n".as_bytes())
            .await
            .unwrap_err();
        assert!(matches!(e, SmtpError::Unsupported { extension: "8BITMIME", .. }), "{e}");
        assert!(e.to_string().contains("nothing was sent"), "{e}");
        let got = relay.await.unwrap();
        assert!(!got.iter().any(|l| l.starts_with("MAIL")), "{got:?}");

        let (port, _relay) = scripted_relay("250 relay.example", "250 ok", "250 queued").await;
        let e = deliver(&opts(port, StartTls::Off), "a@b", &["\u{e9}@d".into()], b"x\n").await.unwrap_err();
        assert!(matches!(e, SmtpError::Unsupported { extension: "SMTPUTF8", .. }), "{e}");
    }

    /// A relay that sends `greeting` raw, then answers nothing.
    async fn raw_greeting(greeting: Vec<u8>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.write_all(&greeting).await;
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut sink).await;
        });
        port
    }

    #[tokio::test]
    async fn reply_lines_are_bytes_and_bounded() {
        // Not UTF-8: shown, not refused.
        let port = raw_greeting(b"554 caf\xe9 closed\r\n".to_vec()).await;
        let e = deliver(&opts(port, StartTls::Off), "a@b", &["c@d".into()], b"x\n").await.unwrap_err();
        assert_eq!(e.to_string(), "the relay refused the greeting: 554 caf\u{fffd} closed");
        // An endless line is cut off at the bound, not read into memory.
        let mut long = b"220 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 1 << 20));
        let port = raw_greeting(long).await;
        let e = deliver(&opts(port, StartTls::Off), "a@b", &["c@d".into()], b"x\n").await.unwrap_err();
        assert!(e.to_string().contains("longer than 2048 bytes"), "{e}");
    }
}
