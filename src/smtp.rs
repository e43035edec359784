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

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufStream};
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
    let offers_tls =
        caps.lines().any(|l| l.get(4..).is_some_and(|c| c.trim().eq_ignore_ascii_case("STARTTLS")));
    if opts.starttls == StartTls::Off || (!offers_tls && opts.starttls == StartTls::Opportunistic) {
        let reply = transact(&mut s, opts, sender, recipients, message).await?;
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
    ehlo(&mut s, opts).await?;
    let reply = transact(&mut s, opts, sender, recipients, message).await?;
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

async fn transact<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    opts: &SmtpOptions,
    sender: &str,
    recipients: &[String],
    message: &[u8],
) -> Result<String, SmtpError> {
    let ok = |stage: &'static str, reply: String, want: &str| {
        if reply.starts_with(want) { Ok(reply) } else { Err(SmtpError::Refused { stage, reply }) }
    };
    ok("MAIL", command(s, opts, &format!("MAIL FROM:<{}>", clean(sender)), "MAIL").await?, "250")?;
    for r in recipients {
        ok("RCPT", command(s, opts, &format!("RCPT TO:<{}>", clean(r)), "RCPT").await?, "250")?;
    }
    ok("DATA", command(s, opts, "DATA", "DATA").await?, "354")?;
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
    let reply = ok("the message", read_reply(s, opts, "the message").await?, "250")?;
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

/// One reply, all its lines joined with `\n`, at most 100 lines.
async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    opts: &SmtpOptions,
    stage: &'static str,
) -> Result<String, SmtpError> {
    let mut all = Vec::new();
    for _ in 0..100 {
        let mut line = String::new();
        let n = io(opts, stage, s.read_line(&mut line)).await?;
        if n == 0 {
            return Err(SmtpError::Io("the relay closed the connection".into()));
        }
        let line = line.trim_end().to_string();
        let last = line.len() < 4 || line.as_bytes()[3] != b'-';
        all.push(line);
        if last {
            return Ok(all.join("\n"));
        }
    }
    Err(SmtpError::Io("reply too long".into()))
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
                    "EHLO" if offer_tls => "250-relay.example\r\n250-STARTTLS\r\n250 8BITMIME",
                    "EHLO" => "250-relay.example\r\n250 8BITMIME",
                    "MAIL" | "RCPT" => "250 ok",
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
}
