//! What the MTA told us about a message besides its bytes: client, HELO, sender, recipients,
//! queue id, authentication and the transport's TLS parameters.
//!
//! Macro names are stored without braces (`tls_version`, `i`). Every string is decoded lossily
//! from bytes: MTAs pass whatever the client sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::command::Family;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Envelope {
    pub client: Client,
    pub helo: Option<String>,
    /// The sender without angle brackets; empty for the null sender `<>`.
    pub sender: String,
    pub sender_args: Vec<String>,
    pub recipients: Vec<String>,
    pub queue_id: Option<String>,
    /// `None`: the hop to the MTA was cleartext, or the MTA was not configured to send the TLS
    /// macros (see [`Envelope::macros`] to tell which).
    pub tls: Option<Tls>,
    pub auth: Option<Auth>,
    /// Every connection- and message-scoped macro the MTA sent.
    pub macros: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Client {
    /// The client's host name as the MTA resolved it; often `unknown`.
    pub name: String,
    pub addr: Option<String>,
    pub port: u16,
    #[serde(skip_deserializing)]
    pub family: Option<Family>,
}

impl Default for Client {
    fn default() -> Client {
        Client { name: "unknown".to_string(), addr: None, port: 0, family: None }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tls {
    pub version: String,
    pub cipher: Option<String>,
    pub bits: Option<u32>,
    pub cert_subject: Option<String>,
    pub cert_issuer: Option<String>,
    pub sni: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Auth {
    /// SASL mechanism (`{auth_type}`).
    pub mechanism: String,
    pub authen: Option<String>,
    pub author: Option<String>,
}

impl Tls {
    /// Reads the TLS macros; `None` when `{tls_version}` is absent or empty.
    pub fn from_macros(macros: &BTreeMap<String, String>) -> Option<Tls> {
        let get = |k: &str| macros.get(k).filter(|v| !v.is_empty()).cloned();
        Some(Tls {
            version: get("tls_version")?,
            cipher: get("cipher"),
            bits: get("cipher_bits").and_then(|b| b.parse().ok()),
            cert_subject: get("cert_subject"),
            cert_issuer: get("cert_issuer"),
            sni: get("tls_sni"),
        })
    }
}

impl Auth {
    pub fn from_macros(macros: &BTreeMap<String, String>) -> Option<Auth> {
        let get = |k: &str| macros.get(k).filter(|v| !v.is_empty()).cloned();
        Some(Auth { mechanism: get("auth_type")?, authen: get("auth_authen"), author: get("auth_author") })
    }
}

/// `{tls_version}` → `tls_version`; `i` stays `i`.
pub fn macro_name(raw: &[u8]) -> String {
    let name = raw.strip_prefix(b"{").and_then(|n| n.strip_suffix(b"}")).unwrap_or(raw);
    String::from_utf8_lossy(name).into_owned()
}

/// `<a@b>` → `a@b`; `<>` → ``; anything else unchanged.
pub fn strip_brackets(addr: &[u8]) -> String {
    let s = String::from_utf8_lossy(addr);
    let t = s.trim();
    t.strip_prefix('<').and_then(|t| t.strip_suffix('>')).unwrap_or(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tls_needs_a_version() {
        assert_eq!(Tls::from_macros(&map(&[("cipher", "X")])), None);
        assert_eq!(Tls::from_macros(&map(&[("tls_version", "")])), None);
        let t = Tls::from_macros(&map(&[
            ("tls_version", "TLSv1.3"),
            ("cipher", "TLS_AES_256_GCM_SHA384"),
            ("cipher_bits", "256"),
        ]))
        .unwrap();
        assert_eq!(t.version, "TLSv1.3");
        assert_eq!(t.bits, Some(256));
        assert_eq!(t.cert_subject, None);
    }

    #[test]
    fn auth_needs_a_mechanism() {
        assert_eq!(Auth::from_macros(&map(&[("auth_authen", "bob")])), None);
        let a = Auth::from_macros(&map(&[("auth_type", "PLAIN"), ("auth_authen", "bob")])).unwrap();
        assert_eq!(a.authen.as_deref(), Some("bob"));
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(macro_name(b"{tls_version}"), "tls_version");
        assert_eq!(macro_name(b"i"), "i");
        assert_eq!(macro_name(b"{"), "{");
        assert_eq!(strip_brackets(b"<a@b.example>"), "a@b.example");
        assert_eq!(strip_brackets(b"<>"), "");
        assert_eq!(strip_brackets(b"bare@x"), "bare@x");
    }
}
