//! Listen addresses in the forms administrators already write for Postfix and libmilter.
//!
//! Postfix: `inet:host:port`, `inet:[::1]:port`, `unix:/path`. libmilter (Sendmail's
//! `INPUT_MAIL_FILTER`): `inet:port@host`, `inet6:port@host`, `local:/path`, `unix:/path`.
//! A bare absolute path is a unix socket. A host is always required: listening on every
//! interface must be asked for explicitly (`inet:0.0.0.0:port`), never by omission.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// `host` is an IP literal or a name resolved from the hosts file at bind time.
    Inet {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        let s = s.trim();
        let bad = |why: &str| {
            format!(
                "invalid address {s:?}: {why} (expected inet:HOST:PORT, inet:[IPv6]:PORT, inet:PORT@HOST, inet6:PORT@HOST, unix:/PATH or local:/PATH)"
            )
        };
        if s.starts_with('/') {
            return Ok(ListenAddr::Unix(PathBuf::from(s)));
        }
        let (scheme, rest) = s.split_once(':').ok_or_else(|| bad("no scheme"))?;
        match scheme {
            "unix" | "local" => {
                if !rest.starts_with('/') {
                    return Err(bad("a unix socket path must be absolute"));
                }
                Ok(ListenAddr::Unix(PathBuf::from(rest)))
            }
            "inet" | "inet6" => {
                let (host, port) = if let Some((port, host)) = rest.split_once('@') {
                    (host.trim_start_matches('[').trim_end_matches(']'), port)
                } else if let Some(v6) = rest.strip_prefix('[') {
                    let (host, port) = v6.split_once("]:").ok_or_else(|| bad("expected [IPv6]:PORT"))?;
                    (host, port)
                } else {
                    match rest.rsplit_once(':') {
                        Some(hp) => hp,
                        None if rest.parse::<u16>().is_ok() => {
                            return Err(bad(&format!("no host; write inet:127.0.0.1:{rest}")));
                        }
                        None => return Err(bad(&format!("no port; write inet:{rest}:PORT"))),
                    }
                };
                if host.is_empty() {
                    return Err(bad("empty host"));
                }
                if scheme == "inet" && !rest.contains('[') && !rest.contains('@') && host.contains(':') {
                    return Err(bad("an IPv6 host must be in brackets"));
                }
                let port: u16 = port.parse().map_err(|_| bad("port must be a number 0-65535"))?;
                Ok(ListenAddr::Inet { host: host.to_string(), port })
            }
            _ => Err(bad("unknown scheme")),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Inet { host, port } if host.contains(':') => write!(f, "inet:[{host}]:{port}"),
            ListenAddr::Inet { host, port } => write!(f, "inet:{host}:{port}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ListenAddr, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(host: &str, port: u16) -> ListenAddr {
        ListenAddr::Inet { host: host.into(), port }
    }

    #[test]
    fn postfix_forms() {
        assert_eq!("inet:127.0.0.1:8897".parse(), Ok(inet("127.0.0.1", 8897)));
        assert_eq!("inet:[::1]:8897".parse(), Ok(inet("::1", 8897)));
        assert_eq!("inet:localhost:10025".parse(), Ok(inet("localhost", 10025)));
        assert_eq!(
            "unix:/run/inspect-milter/milter.sock".parse(),
            Ok(ListenAddr::Unix("/run/inspect-milter/milter.sock".into()))
        );
    }

    #[test]
    fn libmilter_forms() {
        assert_eq!("inet:8897@127.0.0.1".parse(), Ok(inet("127.0.0.1", 8897)));
        assert_eq!("inet6:8897@::1".parse(), Ok(inet("::1", 8897)));
        assert_eq!("inet6:8897@[::1]".parse(), Ok(inet("::1", 8897)));
        assert_eq!("local:/var/run/m.sock".parse(), Ok(ListenAddr::Unix("/var/run/m.sock".into())));
        assert_eq!("/var/run/m.sock".parse(), Ok(ListenAddr::Unix("/var/run/m.sock".into())));
    }

    #[test]
    fn display_round_trips() {
        for s in ["inet:127.0.0.1:8897", "inet:[::1]:1", "unix:/x/y.sock"] {
            assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn mistakes_are_explained() {
        for (s, why) in [
            ("inet:8897", "no host; write inet:127.0.0.1:8897"),
            ("inet:127.0.0.1", "no port; write inet:127.0.0.1:PORT"),
            ("inet:mx.example", "no port"),
            ("127.0.0.1:8897", "unknown scheme"),
            ("unix:relative.sock", "absolute"),
            ("inet:127.0.0.1:99999", "port"),
            ("inet:::1:25", "brackets"),
            ("tcp", "no scheme"),
            ("inet::25", "empty host"),
        ] {
            let e = s.parse::<ListenAddr>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
