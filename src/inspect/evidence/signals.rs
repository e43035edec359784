//! Signals that need more than one field compared, which no single-buffer regex can express:
//! link text naming another host than its link, a brand in the sender's display name but not
//! in its domain, a Reply-To in another domain than the From. Each is recorded as an anomaly
//! (stable code, detail) that regex rules can score through the `anomaly` target.
//!
//! Two comparisons take the sender's evidence into account ([`Evidence`]): a link through a
//! click-tracking redirect is judged by its destination (or not at all when the URL does not
//! carry it), and a brand in the display name of mail from the brand's own domain counts when
//! the site's trusted results say that domain did not authenticate.

use crate::inspect::evidence::bulk::{Bulk, MAX_TRACKED, tracking};
use crate::inspect::evidence::sender::Authentication;
use crate::inspect::{Anomaly, Deadline, Stage, Target, TargetKind};

/// What the sender proved, as the cross-field signals need it.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Organisational domains that passed a trusted check for this message (an aligned From,
    /// DKIM signing domains): links to their hosts are the sender's own.
    pub authenticated_orgs: Vec<String>,
    /// Trusted results exist for this message.
    pub has_trusted_results: bool,
    /// A trusted pass aligned with the From domain.
    pub from_aligned: bool,
}

impl Evidence {
    pub fn from_authentication(auth: &Authentication) -> Evidence {
        let mut orgs: Vec<String> = Vec::new();
        if auth.aligned
            && let Some(org) = &auth.from_org_domain
        {
            orgs.push(org.clone());
        }
        for r in auth.results.iter().filter(|r| r.result == "pass" && r.method == "dkim") {
            if let Some(d) = &r.domain {
                let org = crate::inspect::evidence::orgdomain::org_domain(d);
                if !orgs.contains(&org) {
                    orgs.push(org);
                }
            }
        }
        Evidence {
            authenticated_orgs: orgs,
            has_trusted_results: !auth.results.is_empty(),
            from_aligned: auth.aligned,
        }
    }
}

/// Brands phishing most often impersonates, with the registrable domains that legitimately
/// send as them. A display name naming the brand from any other domain is a signal (a weak
/// one alone: forwarding services and resellers do it too).
const BRANDS: &[(&str, &[&str])] = &[
    ("paypal", &["paypal.com", "paypal.de", "paypal.co.uk", "paypal-communication.com"]),
    (
        "microsoft",
        &["microsoft.com", "office.com", "outlook.com", "live.com", "microsoftonline.com", "sharepoint.com"],
    ),
    ("office 365", &["microsoft.com", "office.com", "office365.com"]),
    ("outlook", &["microsoft.com", "outlook.com", "office.com"]),
    ("onedrive", &["microsoft.com", "onedrive.com", "sharepoint.com"]),
    ("apple", &["apple.com", "icloud.com"]),
    ("icloud", &["apple.com", "icloud.com"]),
    ("amazon", &["amazon.com", "amazon.de", "amazon.co.uk", "amazon.fr", "amazonses.com", "aws.com"]),
    ("netflix", &["netflix.com"]),
    ("dhl", &["dhl.com", "dhl.de"]),
    ("fedex", &["fedex.com"]),
    ("ups", &["ups.com"]),
    ("docusign", &["docusign.com", "docusign.net"]),
    ("adobe", &["adobe.com"]),
    ("dropbox", &["dropbox.com"]),
    ("google", &["google.com", "gmail.com", "youtube.com"]),
    ("facebook", &["facebook.com", "facebookmail.com", "meta.com"]),
    ("instagram", &["instagram.com", "facebookmail.com"]),
    ("linkedin", &["linkedin.com"]),
    ("wells fargo", &["wellsfargo.com"]),
    ("chase", &["chase.com", "jpmorgan.com"]),
    ("bank of america", &["bankofamerica.com", "bofa.com"]),
    ("american express", &["americanexpress.com", "aexp.com"]),
    ("coinbase", &["coinbase.com"]),
    ("binance", &["binance.com"]),
    ("metamask", &["metamask.io"]),
    ("norton", &["norton.com", "nortonlifelock.com"]),
    ("mcafee", &["mcafee.com"]),
    ("webmail", &[]),
    ("mailbox", &[]),
    ("it support", &[]),
    ("helpdesk", &[]),
];

/// Adds the signals' anomalies to `out`, and the click-tracking redirects it meets to `bulk`;
/// false when the deadline stopped it before the end. Linear: each header is looked up once,
/// and each URL target (at most `max_urls`) is read once, bounded by its own length.
pub fn analyze(
    targets: &[Target<'_>],
    out: &mut Vec<Anomaly>,
    deadline: Deadline,
    evidence: &Evidence,
    bulk: &mut Bulk,
) -> bool {
    let header = |name: &str| {
        targets.iter().find(|t| {
            t.kind == TargetKind::Header
                && t.part_path == "0"
                && t.header_name.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(name))
        })
    };
    let from = header("From").map(|t| String::from_utf8_lossy(&t.data).into_owned());
    let from_domain = from.as_deref().and_then(address_domain);
    let list_id = header("List-Id").map(|t| String::from_utf8_lossy(&t.data).into_owned());
    let author = from_domain.as_deref().and_then(|fd| {
        let value = |name: &str| header(name).map(|t| String::from_utf8_lossy(&t.data).into_owned());
        list_author(fd, list_id.as_deref()?, value("X-Original-From"), value("Reply-To"))
    });
    if let (Some(from), Some(domain)) = (from.as_deref(), from_domain.as_deref()) {
        match author.as_deref() {
            // The list's authentication says nothing about the author's domain.
            Some(author) => display_name_checks(from, author, &Evidence::default(), out),
            None => display_name_checks(from, domain, evidence, out),
        }
        if !body_brands(targets, domain, evidence, deadline, out) {
            return false;
        }
    }
    // Mailing lists rewrite From (for DMARC) and point Reply-To at the author or the list:
    // there a different Reply-To domain is the norm, not a signal.
    let list = list_id.is_some();
    if let (false, Some(rt), Some(fd)) = (list, header("Reply-To"), from_domain.as_deref()) {
        let rt = String::from_utf8_lossy(&rt.data);
        if let Some(rd) = address_domain(&rt)
            && registrable(&rd) != registrable(fd)
        {
            out.push(Anomaly {
                code: "reply-to-domain-mismatch".into(),
                part_path: "0".into(),
                detail: format!("reply-to={} from={}", registrable(&rd), registrable(fd)),
            });
        }
    }
    let mut reported = 0;
    for t in targets.iter().filter(|t| t.kind == TargetKind::Url) {
        let Some(text) = t.link_text.as_deref() else { continue };
        if deadline.passed(Stage::Signals) {
            return false;
        }
        let href = String::from_utf8_lossy(&t.data);
        let (Some(text_host), Some(mut href_host)) = (host_in_text(text), url_host(&href)) else { continue };
        if registrable(&text_host) == registrable(&href_host) {
            continue;
        }
        // A redirect through a click tracker: what counts is where it leads.
        if let Some(mut tracked) = tracking(&href, &evidence.authenticated_orgs) {
            tracked.part_path = t.part_path.clone();
            let destination = tracked.destination.clone();
            if bulk.tracked_links.len() < MAX_TRACKED {
                out.push(Anomaly {
                    code: "tracked-link".into(),
                    part_path: t.part_path.clone(),
                    detail: format!(
                        "host={}{}",
                        tracked.host,
                        destination.as_deref().map(|d| format!(" dest={d}")).unwrap_or_default()
                    ),
                });
                bulk.tracked_links.push(tracked);
            }
            match destination {
                Some(d) => href_host = d,
                None => continue,
            }
        }
        if registrable(&text_host) != registrable(&href_host) {
            out.push(Anomaly {
                code: "link-text-host-mismatch".into(),
                part_path: t.part_path.clone(),
                detail: format!("text={} href={}", registrable(&text_host), registrable(&href_host)),
            });
            reported += 1;
            // A newsletter can hold hundreds; a few make the point.
            if reported == 5 {
                break;
            }
        }
    }
    true
}

fn display_name_checks(from: &str, domain: &str, evidence: &Evidence, out: &mut Vec<Anomaly>) {
    let display = display_name(from);
    if display.is_empty() {
        return;
    }
    let lower = display.to_lowercase();
    let base = registrable(domain);
    for (brand, domains) in BRANDS {
        if !contains_word(&lower, brand) {
            continue;
        }
        let own = domains.iter().any(|d| base == *d || base.ends_with(&format!(".{d}")));
        // The brand's own domain in From proves nothing by itself: when the site's verifier
        // checked it and it did not pass, the name is borrowed.
        let unauthenticated = own && evidence.has_trusted_results && !evidence.from_aligned;
        if !own || unauthenticated {
            out.push(Anomaly {
                code: "display-name-brand".into(),
                part_path: "0".into(),
                detail: format!(
                    "{brand} from={base}{}",
                    if unauthenticated { " unauthenticated" } else { "" }
                ),
            });
            break;
        }
    }
    // "support@bank.example" <x@elsewhere.example>: an address in the display name that is
    // not the sender's.
    if let Some(shown) = address_domain(&display)
        && display.contains('@')
        && registrable(&shown) != base
    {
        out.push(Anomaly {
            code: "display-name-address".into(),
            part_path: "0".into(),
            detail: format!("shown={} from={base}", registrable(&shown)),
        });
    }
}

/// The domain of the author of a message that a mailing list sent on with its own address in
/// From (`"'Ann (via Docs)' via Some List" <list@lists.example>`, as lists do so that DMARC
/// passes): the list copies the author to `X-Original-From` or `Reply-To`. `None` when From is
/// not the list's own address (its domain is not the `List-Id` domain) or no author is given.
fn list_author(
    from_domain: &str,
    list_id: &str,
    original_from: Option<String>,
    reply_to: Option<String>,
) -> Option<String> {
    let id = match (list_id.rfind('<'), list_id.rfind('>')) {
        (Some(a), Some(b)) if a < b => &list_id[a + 1..b],
        _ => list_id.trim(),
    };
    if registrable(&id.to_ascii_lowercase()) != registrable(from_domain) {
        return None;
    }
    original_from.or(reply_to).as_deref().and_then(address_domain)
}

/// Brand names that are also ordinary words ("apple pie", "ups and downs", "the outlook for
/// 2025", "chase the bus") or generic ones ("webmail"): in a display name they name the brand,
/// in running text mostly not.
const NOT_IN_BODY: &[&str] =
    &["apple", "outlook", "ups", "chase", "webmail", "mailbox", "it support", "helpdesk"];

/// At most this many bytes of each text are searched for brand names: a lure names its brand
/// near the top, and a long newsletter should not cost a pass over every brand.
const BODY_BRAND_WINDOW: usize = 16 * 1024;

/// A brand named in the visible text of the message (`body-brand`) is evidence only when the
/// message is not authenticated for that brand's domain: the brand's own mail names it all the
/// time. It counts when the From domain is another one, or is the brand's own but the site's
/// trusted results say it did not authenticate; without trusted results, mail from the brand's
/// own domain is not judged (as for the display name). Each brand is reported once, at most
/// three. False when the deadline stopped it.
fn body_brands(
    targets: &[Target<'_>],
    from_domain: &str,
    evidence: &Evidence,
    deadline: Deadline,
    out: &mut Vec<Anomaly>,
) -> bool {
    let base = registrable(from_domain);
    let mut found: Vec<&str> = Vec::new();
    let texts =
        targets.iter().filter(|t| matches!(t.kind, TargetKind::Text | TargetKind::HtmlText) && !t.in_archive);
    for t in texts {
        if deadline.passed(Stage::Signals) {
            return false;
        }
        let window = &t.data[..t.data.len().min(BODY_BRAND_WINDOW)];
        let lower = String::from_utf8_lossy(window).to_lowercase();
        for (brand, domains) in BRANDS {
            if found.len() == 3 {
                break;
            }
            if NOT_IN_BODY.contains(brand)
                || found.iter().any(|f| f == brand)
                || !contains_word(&lower, brand)
            {
                continue;
            }
            found.push(brand);
            let own = domains.iter().any(|d| base == *d || base.ends_with(&format!(".{d}")));
            let unauthenticated = own && evidence.has_trusted_results && !evidence.from_aligned;
            if !own || unauthenticated {
                out.push(Anomaly {
                    code: "body-brand".into(),
                    part_path: t.part_path.clone(),
                    detail: format!(
                        "{brand} from={base}{}",
                        if unauthenticated { " unauthenticated" } else { "" }
                    ),
                });
            }
        }
    }
    true
}

fn contains_word(hay: &str, word: &str) -> bool {
    hay.match_indices(word).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The display-name part of a From value (`"Name" <a@b>` → `Name`).
fn display_name(value: &str) -> String {
    match value.rfind('<') {
        Some(i) => value[..i].trim().trim_matches('"').trim().to_string(),
        None => String::new(),
    }
}

/// The domain of the (last) address in a header value, lower case.
pub fn address_domain(value: &str) -> Option<String> {
    let addr = match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value,
    };
    let at = addr.rfind('@')?;
    let domain: String = addr[at + 1..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-')
        .collect::<String>()
        .trim_end_matches('.')
        .to_lowercase();
    (domain.contains('.')).then_some(domain)
}

/// The host of an http(s) URL, lower case, without port or credentials.
pub fn url_host(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') { host } else { host.split(':').next()? };
    (!host.is_empty()).then(|| host.to_string())
}

/// A host name written in link text (`www.paypal.com`, `https://paypal.com/login`).
fn host_in_text(text: &str) -> Option<String> {
    let t = text.trim().to_lowercase();
    if let Some(h) = url_host(&t) {
        return Some(h);
    }
    // A bare host: one token, dotted, with a letters-only last label.
    let token = t.split_whitespace().next()?;
    if t.split_whitespace().count() != 1 {
        return None;
    }
    let token = token.trim_end_matches(['/', '.', ',']);
    let labels: Vec<&str> = token.split('.').collect();
    let tld = labels.last()?;
    let looks_like_host = labels.len() >= 2
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && labels.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    looks_like_host.then(|| token.to_string())
}

/// A rough registrable domain: the last two labels, or three under common two-level public
/// suffixes (`co.uk`, `com.au`, …). Good enough to compare two hosts; not a public-suffix list.
pub fn registrable(host: &str) -> String {
    let host = host.trim_end_matches('.');
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() <= 2 || host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_string();
    }
    let n = labels.len();
    let second = labels[n - 2];
    let two_level = matches!(second, "co" | "com" | "net" | "org" | "gov" | "ac" | "edu" | "ne" | "or")
        && labels[n - 1].len() == 2;
    let keep = if two_level { 3 } else { 2 };
    labels[n.saturating_sub(keep)..].join(".")
}

/// A top-level header target, for tests here and in `sender`.
#[cfg(test)]
pub(in crate::inspect) fn header(name: &str, value: &'static str) -> Target<'static> {
    Target {
        kind: TargetKind::Header,
        part_path: "0".into(),
        data: std::borrow::Cow::Borrowed(value.as_bytes()),
        content_type: None,
        filename: None,
        depth: 0,
        in_archive: false,
        header_name: Some(name.into()),
        link_text: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(href: &'static str, text: &str) -> Target<'static> {
        Target {
            kind: TargetKind::Url,
            part_path: "1".into(),
            link_text: Some(text.into()),
            header_name: None,
            ..header("x", href)
        }
    }

    fn codes(targets: &[Target<'_>]) -> Vec<String> {
        codes_with(targets, &Evidence::default())
    }

    fn codes_with(targets: &[Target<'_>], evidence: &Evidence) -> Vec<String> {
        let mut out = Vec::new();
        analyze(targets, &mut out, Deadline::never(), evidence, &mut Bulk::default());
        out.into_iter().map(|a| format!("{} {}", a.code, a.detail)).collect()
    }

    #[test]
    fn brand_in_display_name_from_another_domain() {
        assert_eq!(
            codes(&[header("From", "\"PayPal Service\" <no-reply@secure-pay.example>")]),
            vec!["display-name-brand paypal from=secure-pay.example"]
        );
        assert!(codes(&[header("From", "PayPal <service@mail.paypal.com>")]).is_empty());
        assert!(codes(&[header("From", "Upsilon Labs <a@upsilon.example>")]).is_empty(), "whole words only");
    }

    #[test]
    fn address_in_display_name() {
        assert_eq!(
            codes(&[header("From", "\"support@bank.example\" <x@other.example>")]),
            vec!["display-name-address shown=bank.example from=other.example"]
        );
    }

    #[test]
    fn reply_to_in_another_domain() {
        assert_eq!(
            codes(&[header("From", "a@shop.example"), header("Reply-To", "Claims <c@freemail.example>")]),
            vec!["reply-to-domain-mismatch reply-to=freemail.example from=shop.example"]
        );
        assert!(
            codes(&[header("From", "a@news.shop.example"), header("Reply-To", "b@shop.example")]).is_empty()
        );
    }

    #[test]
    fn link_text_naming_another_host() {
        assert_eq!(
            codes(&[url("http://198.51.100.7/login", "https://www.paypal.com/signin")]),
            vec!["link-text-host-mismatch text=paypal.com href=198.51.100.7"]
        );
        assert_eq!(
            codes(&[url("https://evil.example/x", "www.bank.co.uk")]),
            vec!["link-text-host-mismatch text=bank.co.uk href=evil.example"]
        );
        assert!(codes(&[url("https://click.bank.co.uk/x", "www.bank.co.uk")]).is_empty());
        assert!(codes(&[url("https://evil.example/x", "Click here to log in")]).is_empty());
    }

    #[test]
    fn tracked_links_are_judged_by_their_destination() {
        assert_eq!(
            codes(&[url(
                "https://click.esp.example/c?u=https%3A%2F%2Fwww.shop.example%2Fsale",
                "www.shop.example"
            )]),
            vec!["tracked-link host=click.esp.example dest=www.shop.example"]
        );
        assert_eq!(
            codes(&[url("https://t.esp.example/c?url=https://evil.example/", "www.bank.example")]),
            vec![
                "tracked-link host=t.esp.example dest=evil.example",
                "link-text-host-mismatch text=bank.example href=evil.example"
            ]
        );
        let own = Evidence { authenticated_orgs: vec!["shop.example".into()], ..Evidence::default() };
        assert_eq!(
            codes_with(
                &[url("https://links.shop.example/ls/click?upn=abc", "www.shop-partner.example")],
                &own
            ),
            vec!["tracked-link host=links.shop.example"]
        );
        // Without authentication the sender's own host is just another host.
        assert_eq!(
            codes(&[url("https://links.shop.example/ls/click?upn=abc", "www.shop-partner.example")]).len(),
            1
        );
    }

    #[test]
    fn a_brand_name_from_its_own_domain_counts_when_the_domain_did_not_authenticate() {
        let from = [header("From", "PayPal <service@paypal.com>")];
        let failed = Evidence { has_trusted_results: true, ..Evidence::default() };
        assert_eq!(
            codes_with(&from, &failed),
            vec!["display-name-brand paypal from=paypal.com unauthenticated"]
        );
        let passed = Evidence { has_trusted_results: true, from_aligned: true, ..Evidence::default() };
        assert!(codes_with(&from, &passed).is_empty());
        assert!(codes(&from).is_empty(), "no trusted results: nothing is known");
    }

    #[test]
    fn a_list_that_rewrote_from_is_judged_by_its_author() {
        let from = header("From", "\"'Ann (via Google Docs)' via Dev\" <dev@lists.example.org>");
        let list = header("List-Id", "Dev <dev.lists.example.org>");
        assert!(
            codes(&[from.clone(), list.clone(), header("X-Original-From", "Ann <ann@google.com>")])
                .is_empty()
        );
        assert_eq!(
            codes(&[from.clone(), list.clone(), header("Reply-To", "Ann <ann@elsewhere.example>")]),
            vec!["display-name-brand google from=elsewhere.example"]
        );
        // Not the list's own address: From is judged as it is.
        let other = header("List-Id", "<news.other.example>");
        assert_eq!(
            codes(&[from, other, header("X-Original-From", "ann@google.com")]),
            vec!["display-name-brand google from=example.org"]
        );
    }

    fn text(body: &'static str) -> Target<'static> {
        Target { kind: TargetKind::Text, part_path: "1".into(), header_name: None, ..header("x", body) }
    }

    #[test]
    fn a_brand_in_the_body_counts_unless_the_mail_is_authenticated_for_it() {
        let body = text("Your PayPal account is on hold. Apple pie and ups and downs.");
        assert_eq!(
            codes(&[header("From", "a@notice.example"), body.clone()]),
            vec!["body-brand paypal from=notice.example"]
        );
        let own = [header("From", "a@paypal.com"), body];
        assert!(codes(&own).is_empty(), "own domain, nothing known");
        let failed = Evidence { has_trusted_results: true, ..Evidence::default() };
        assert_eq!(codes_with(&own, &failed), vec!["body-brand paypal from=paypal.com unauthenticated"]);
        let passed = Evidence { has_trusted_results: true, from_aligned: true, ..Evidence::default() };
        assert!(codes_with(&own, &passed).is_empty());
    }

    #[test]
    fn hosts_and_domains() {
        assert_eq!(url_host("HTTPS://user@Example.COM:8443/p?q").as_deref(), Some("example.com"));
        assert_eq!(url_host("mailto:x@y"), None);
        assert_eq!(registrable("a.b.example.com"), "example.com");
        assert_eq!(registrable("www.bank.co.uk"), "bank.co.uk");
        assert_eq!(address_domain("Name <A@Mail.Example.ORG>").as_deref(), Some("mail.example.org"));
        assert_eq!(address_domain("no address"), None);
    }
}
