//! Binding the configured addresses: TCP (IPv4/IPv6) and unix-domain sockets.
//!
//! A unix socket left behind by a crashed instance is removed before binding — but only if it
//! is a socket and nothing answers on it, so a second instance cannot steal a live one's
//! address, and a typo in the path cannot delete a regular file.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use super::ListenAddr;

pub enum Listener {
    Tcp(TcpListener),
    Unix { listener: UnixListener, path: PathBuf },
}

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    pub async fn bind(addr: &ListenAddr, socket_mode: u32) -> io::Result<Listener> {
        match addr {
            ListenAddr::Inet { host, port } => {
                let l = TcpListener::bind((host.as_str(), *port))
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
                Ok(Listener::Tcp(l))
            }
            ListenAddr::Unix(path) => {
                remove_stale_socket(path).await?;
                let listener = UnixListener::bind(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket_mode)).map_err(
                    |e| io::Error::new(e.kind(), format!("cannot set the mode of {}: {e}", path.display())),
                )?;
                Ok(Listener::Unix { listener, path: path.clone() })
            }
        }
    }

    /// The address actually bound (the port chosen for port 0).
    pub fn local_addr(&self) -> ListenAddr {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => ListenAddr::Inet { host: a.ip().to_string(), port: a.port() },
                Err(_) => ListenAddr::Inet { host: "?".into(), port: 0 },
            },
            Listener::Unix { path, .. } => ListenAddr::Unix(path.clone()),
        }
    }

    pub async fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                // End-of-message replies go out in one write; without NODELAY a small write
                // waits for the peer's delayed ACK (~40 ms per message).
                s.set_nodelay(true)?;
                Ok((Stream::Tcp(s), peer.to_string()))
            }
            Listener::Unix { listener, path } => {
                let (s, _) = listener.accept().await?;
                Ok((Stream::Unix(s), format!("unix:{}", path.display())))
            }
        }
    }

    /// Removes our unix socket file on the way out.
    pub fn cleanup(&self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; refusing to replace it", path.display()),
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by a running process", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("im-listen-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn unix_socket_gets_the_configured_mode_and_a_stale_one_is_replaced() {
        let dir = tmp("mode");
        let path = dir.join("m.sock");
        // A stale socket: bound once, the listener dropped without removing the file.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let l = Listener::bind(&ListenAddr::Unix(path.clone()), 0o660).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        l.cleanup();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_live_socket_or_a_regular_file_is_never_replaced() {
        let dir = tmp("live");
        let path = dir.join("m.sock");
        let live = Listener::bind(&ListenAddr::Unix(path.clone()), 0o600).await.unwrap();
        let e = Listener::bind(&ListenAddr::Unix(path.clone()), 0o600).await.err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        live.cleanup();
        let file = dir.join("precious.txt");
        std::fs::write(&file, "data").unwrap();
        let e = Listener::bind(&ListenAddr::Unix(file.clone()), 0o600).await.err().unwrap();
        assert!(e.to_string().contains("not a socket"));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
    }

    #[tokio::test]
    async fn tcp_port_zero_reports_the_chosen_port() {
        let l = Listener::bind(&"inet:127.0.0.1:0".parse().unwrap(), 0).await.unwrap();
        let ListenAddr::Inet { port, .. } = l.local_addr() else { panic!() };
        assert_ne!(port, 0);
    }
}

/// What an accept loop does after a failed accept (out of file descriptors, out of memory):
/// wait, doubling from 10 ms to 1 s, so the loop cannot spin a core while the condition
/// lasts, and say so once per run of failures rather than on every try. A success starts over.
#[derive(Debug)]
pub struct AcceptBackoff {
    next: std::time::Duration,
    failing: bool,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff { next: AcceptBackoff::FIRST, failing: false }
    }
}

impl AcceptBackoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(10);
    const MOST: std::time::Duration = std::time::Duration::from_secs(1);

    pub fn succeeded(&mut self) {
        *self = AcceptBackoff::default();
    }

    /// The wait before the next accept, and whether this failure starts a run (to be logged).
    pub fn delay(&mut self) -> (std::time::Duration, bool) {
        let wait = self.next;
        self.next = (self.next * 2).min(AcceptBackoff::MOST);
        let first = !self.failing;
        self.failing = true;
        (wait, first)
    }

    /// Logs the first failure of a run, then waits.
    pub async fn failed(&mut self, error: &io::Error, what: &str) {
        let (wait, first) = self.delay();
        if first {
            tracing::warn!(error = %error, listener = what, "accept failed; retrying with backoff (said once until it works again)");
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod backoff_tests {
    use std::time::Duration;

    use super::AcceptBackoff;

    #[test]
    fn accept_failures_back_off_to_a_second_and_start_over_after_a_success() {
        let mut b = AcceptBackoff::default();
        let waits: Vec<(Duration, bool)> = (0..9).map(|_| b.delay()).collect();
        assert_eq!(waits[0], (Duration::from_millis(10), true));
        assert_eq!(waits[1], (Duration::from_millis(20), false));
        assert_eq!(waits[7].0, Duration::from_secs(1));
        assert_eq!(waits[8], (Duration::from_secs(1), false));
        b.succeeded();
        assert_eq!(b.delay(), (Duration::from_millis(10), true));
    }
}
