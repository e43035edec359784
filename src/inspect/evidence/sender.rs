//! Sender authentication as the site's own MTA recorded it. Authentication is not done here
//! (that is the job of the SPF, DKIM and DMARC milters in front of us): this module reads the
//! `Authentication-Results` fields (RFC 8601) whose authserv-id the site configured as its own
//! (`inspect.trusted_authserv_ids`), ignores every other one, and says whether the domain that
//! passed aligns with the organisational domain of the From address. A `DKIM-Signature` field
//! alone proves nothing: anyone can write one, only a verifier's result counts.
//!
//! The result is a set of facts for the report and anomalies for rules: `auth-result` (one per
//! trusted method result), `auth-aligned` (a trusted pass aligned with From) or
//! `auth-unaligned` (trusted results, none aligned).

use serde::{Deserialize, Serialize};

use crate::inspect::evidence::orgdomain::{aligned, org_domain};
use crate::inspect::{Anomaly, Target, TargetKind};

/// One method's result from a trusted `Authentication-Results` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResult {
    pub authserv_id: String,
    /// `spf`, `dkim`, `dmarc`, `arc`.
    pub method: String,
    /// `pass`, `fail`, `softfail`, `none`, …, lower case.
    pub result: String,
    /// The domain that was checked: SPF's `smtp.mailfrom` (or `smtp.helo`), DKIM's `header.d`
    /// (the signing domain), DMARC's `header.from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The domain has the From address's organisational domain.
    pub aligned: bool,
}

/// What the trusted authentication results say about the From address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// The From address's domain and its organisational domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_org_domain: Option<String>,
    /// Results from fields whose authserv-id is trusted, in header order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<AuthResult>,
    /// A trusted DMARC pass, or an SPF or DKIM pass of an aligned domain.
    pub aligned: bool,
    /// `Authentication-Results` fields ignored because their authserv-id is not trusted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untrusted_fields: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The methods whose results are kept; others (`iprev`, `auth`, `bimi`, …) say nothing about
/// the From domain.
const METHODS: &[&str] = &["spf", "dkim", "dmarc", "arc"];

/// At most this many results are kept (a message can carry many fields, each with many).
const MAX_RESULTS: usize = 16;

/// Reads the top-level `From` and `Authentication-Results` header targets. `trusted` holds
/// lower-case authserv-ids.
pub fn authenticate(targets: &[Target<'_>], trusted: &[String], out: &mut Vec<Anomaly>) -> Authentication {
    let mut auth = Authentication::default();
    let top = |t: &&Target<'_>| t.kind == TargetKind::Header && t.part_path == "0";
    let from = targets
        .iter()
        .filter(top)
        .find(|t| t.header_name.as_deref().is_some_and(|h| h.eq_ignore_ascii_case("From")))
        .map(|t| String::from_utf8_lossy(&t.data).into_owned());
    auth.from_domain = from.as_deref().and_then(crate::inspect::evidence::signals::address_domain);
    auth.from_org_domain = auth.from_domain.as_deref().map(org_domain);
    for t in targets.iter().filter(top) {
        if !t.header_name.as_deref().is_some_and(|h| h.eq_ignore_ascii_case("Authentication-Results")) {
            continue;
        }
        let value = String::from_utf8_lossy(&t.data);
        let Some((id, results)) = parse_field(&value) else { continue };
        if !trusted.contains(&id) {
            auth.untrusted_fields = auth.untrusted_fields.saturating_add(1);
            continue;
        }
        for (method, result, domain) in results {
            if auth.results.len() == MAX_RESULTS {
                break;
            }
            let is_aligned = match (&domain, &auth.from_domain) {
                (Some(d), Some(f)) => aligned(d, f),
                // DMARC without header.from judged the From itself.
                (None, Some(_)) => method == "dmarc",
                _ => false,
            };
            auth.results.push(AuthResult {
                authserv_id: id.clone(),
                method,
                result,
                domain,
                aligned: is_aligned,
            });
        }
    }
    auth.aligned = auth.from_domain.is_some()
        && auth.results.iter().any(|r| r.result == "pass" && r.aligned && r.method != "arc");
    for r in &auth.results {
        out.push(Anomaly {
            code: "auth-result".into(),
            part_path: "0".into(),
            detail: format!(
                "{}={}{}{}",
                r.method,
                r.result,
                r.domain.as_deref().map(|d| format!(" domain={d}")).unwrap_or_default(),
                if r.aligned { " aligned" } else { "" }
            ),
        });
    }
    let from_org = auth.from_org_domain.clone().unwrap_or_default();
    if auth.aligned {
        let by: Vec<&str> = auth
            .results
            .iter()
            .filter(|r| r.result == "pass" && r.aligned && r.method != "arc")
            .map(|r| r.method.as_str())
            .collect();
        out.push(Anomaly {
            code: "auth-aligned".into(),
            part_path: "0".into(),
            detail: format!("from={from_org} by={}", dedup(by).join(",")),
        });
    } else if !auth.results.is_empty() {
        out.push(Anomaly {
            code: "auth-unaligned".into(),
            part_path: "0".into(),
            detail: format!("from={from_org}"),
        });
    }
    auth
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    let mut seen = Vec::new();
    v.retain(|m| {
        let new = !seen.contains(m);
        seen.push(*m);
        new
    });
    v
}

/// `(method, result, domain)` as one field states it.
type MethodResult = (String, String, Option<String>);

/// One `Authentication-Results` value: the authserv-id (lower case) and each kept
/// `method=result` with its domain. `None` when there is no authserv-id (a field that starts
/// with a result, as some providers write, cannot be attributed to anyone).
fn parse_field(value: &str) -> Option<(String, Vec<MethodResult>)> {
    let clean = strip_comments(value);
    let mut sections = clean.split(';');
    let id = sections.next()?.split_whitespace().next()?.to_ascii_lowercase();
    if id.is_empty() || id.contains('=') {
        return None;
    }
    let mut out = Vec::new();
    for section in sections {
        let mut words = section.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else { continue };
        let method = method.split('/').next().unwrap_or(method).to_ascii_lowercase();
        if !METHODS.contains(&method.as_str()) {
            continue;
        }
        let mut props: Vec<(String, String)> = Vec::new();
        for w in words {
            if let Some((k, v)) = w.split_once('=') {
                props.push((k.to_ascii_lowercase(), v.trim_matches('"').to_ascii_lowercase()));
            }
        }
        let prop = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
        let domain = match method.as_str() {
            "spf" => prop("smtp.mailfrom").or_else(|| prop("smtp.helo")),
            "dkim" => prop("header.d").or_else(|| prop("header.i")),
            "dmarc" => prop("header.from"),
            _ => None,
        }
        .map(|d| d.rsplit('@').next().unwrap_or(&d).trim_end_matches('.').to_string())
        .filter(|d| d.contains('.'));
        out.push((method, result.to_ascii_lowercase(), domain));
    }
    Some((id, out))
}

/// The value without RFC 5322 comments (nested parentheses, quoted pairs).
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut escaped, mut quoted) = (0u32, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth = depth.saturating_add(1),
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::evidence::signals::header;

    fn run(targets: &[Target<'_>]) -> (Authentication, Vec<String>) {
        let mut out = Vec::new();
        let auth = authenticate(targets, &["mx.example.org".to_string()], &mut out);
        (auth, out.into_iter().map(|a| format!("{} {}", a.code, a.detail)).collect())
    }

    #[test]
    fn a_trusted_aligned_dkim_pass_authenticates_the_from_domain() {
        let (auth, codes) = run(&[
            header("From", "Shop <news@shop.example.com>"),
            header(
                "Authentication-Results",
                "mx.example.org; dkim=pass (2048-bit key) header.d=mail.example.com header.s=s1; spf=pass smtp.mailfrom=bounce@esp.example.net",
            ),
        ]);
        assert!(auth.aligned);
        assert_eq!(auth.from_org_domain.as_deref(), Some("example.com"));
        assert_eq!(
            codes,
            vec![
                "auth-result dkim=pass domain=mail.example.com aligned",
                "auth-result spf=pass domain=esp.example.net",
                "auth-aligned from=example.com by=dkim",
            ]
        );
    }

    #[test]
    fn results_from_an_untrusted_authserv_id_are_ignored() {
        let (auth, codes) = run(&[
            header("From", "PayPal <service@paypal.example>"),
            header("Authentication-Results", "mx.attacker.example; dmarc=pass header.from=paypal.example"),
            header("DKIM-Signature", "v=1; d=paypal.example; s=x; b=abc"),
        ]);
        assert!(!auth.aligned);
        assert_eq!(auth.untrusted_fields, 1);
        assert!(codes.is_empty(), "{codes:?}");
    }

    #[test]
    fn a_pass_for_another_domain_is_not_alignment() {
        let (auth, codes) = run(&[
            header("From", "Bank <alerts@bank.example>"),
            header(
                "Authentication-Results",
                "MX.Example.Org; spf=pass smtp.mailfrom=x@bank-secure.example; dkim=none; dmarc=fail header.from=bank.example",
            ),
        ]);
        assert!(!auth.aligned);
        assert_eq!(codes.last().map(String::as_str), Some("auth-unaligned from=bank.example"));
    }

    #[test]
    fn fields_without_an_authserv_id_and_comments_are_handled() {
        assert_eq!(parse_field("spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=a.example"), None);
        let (id, r) = parse_field("mx.example.org (a comment; with ; semicolons) 1; arc=pass (i=1)").unwrap();
        assert_eq!(id, "mx.example.org");
        assert_eq!(r, vec![("arc".to_string(), "pass".to_string(), None)]);
        assert_eq!(strip_comments("a (b (c) d) e"), "a  e");
    }
}
