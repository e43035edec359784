//! The `release:` section: how a reviewer's `quarantine release` delivers a held message, and
//! the secret that keeps a released message from being quarantined again.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Span;
use crate::server::ListenAddr;
use crate::smtp::StartTls;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseMethod {
    /// Over SMTP to `relay`.
    Smtp,
    /// Through the MTA's `sendmail` program on this host.
    Sendmail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRelease {
    /// `smtp` (default) or `sendmail`.
    pub method: ReleaseMethod,
    /// The relay released mail is handed to. Default `inet:127.0.0.1:25`: the local MTA, which
    /// delivers it on; its milter sees the release mark and does not hold it again.
    pub relay: ListenAddr,
    /// `required` (default): never send a released message in clear or to an unverified
    /// server; `opportunistic`; or `off`.
    pub starttls: StartTls,
    /// The name the relay's certificate must carry. Default: the relay's host.
    pub tls_name: Option<String>,
    /// PEM file of CA certificates to trust for the relay. Default: the system roots.
    pub ca_file: Option<PathBuf>,
    /// Our EHLO name. Default: this host's name.
    pub helo: Option<String>,
    /// The MTA's sendmail program, for `method: sendmail`. Default `/usr/sbin/sendmail`.
    pub sendmail: PathBuf,
    /// The key of the release mark, generated (32 random bytes, mode 0600) on first use.
    /// Default `release.key` in the state directory (see `quarantine.dir`):
    /// `/var/lib/inspect-milter/release.key` for root and the package's user. The daemon and
    /// the CLI must share it.
    pub secret_file: PathBuf,
    /// How long a release mark is honoured. Default `7d`: long enough for a relay to retry,
    /// short enough that an old released copy cannot be replayed for ever.
    pub max_age: Span,
    /// Timeout for each exchange with the relay. Default `60s`.
    pub timeout: Span,
}

impl Default for RawRelease {
    fn default() -> RawRelease {
        RawRelease {
            method: ReleaseMethod::Smtp,
            relay: ListenAddr::Inet { host: "127.0.0.1".into(), port: 25 },
            starttls: StartTls::Required,
            tls_name: None,
            ca_file: None,
            helo: None,
            sendmail: PathBuf::from("/usr/sbin/sendmail"),
            secret_file: super::state::default_state_dir().join("release.key"),
            max_age: Span(Duration::from_secs(7 * 86400)),
            timeout: Span(Duration::from_secs(60)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseConfig {
    pub method: ReleaseMethod,
    pub host: String,
    pub port: u16,
    pub starttls: StartTls,
    pub tls_name: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub helo: String,
    pub sendmail: PathBuf,
    pub secret_file: PathBuf,
    pub max_age: Duration,
    pub timeout: Duration,
}

impl RawRelease {
    pub fn validate(self) -> Result<ReleaseConfig, super::Problems> {
        let mut problems = super::Problems::new();
        if !self.secret_file.is_absolute() {
            problems.push(("release.secret_file", "must be an absolute path".into()));
        }
        if self.timeout.0.is_zero() {
            problems.push(("release.timeout", "must be greater than zero".into()));
        }
        if self.max_age.0.is_zero() {
            problems.push(("release.max_age", "must be greater than zero".into()));
        }
        let ListenAddr::Inet { host, port } = self.relay else {
            problems.insert(0, ("release.relay", "must be an inet address (inet:HOST:PORT)".into()));
            return Err(problems);
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let helo = self.helo.unwrap_or_else(hostname);
        Ok(ReleaseConfig {
            method: self.method,
            host,
            port,
            starttls: self.starttls,
            tls_name: self.tls_name,
            ca_file: self.ca_file,
            helo,
            sendmail: self.sendmail,
            secret_file: self.secret_file,
            max_age: self.max_age.0,
            timeout: self.timeout.0,
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
