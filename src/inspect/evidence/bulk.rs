//! The structure of legitimate bulk mail, so that it is not read as evasion: an unsubscribe
//! link (RFC 2369, one-click RFC 8058), the headers an e-mail service provider adds for
//! feedback loops and campaigns, a preheader (the preview line newsletters hide at the top of
//! the body), and click-tracking redirects (a link whose host is the sender's tracker, and the
//! destination when the URL carries it). None of it is a verdict: phishing uses services and
//! unsubscribe links too. Rules combine it with trusted authentication (`sender`).
//!
//! Anomalies: `bulk-list-unsubscribe`, `bulk-esp`, `preheader`, `hidden-text` (text set in a
//! zero-size font that is not the preheader), `tracked-link` (see `signals`).

use serde::{Deserialize, Serialize};

use crate::inspect::evidence::orgdomain::org_domain;
use crate::inspect::{Anomaly, Deadline, Stage, Target, TargetKind};

/// Bulk-mail facts for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bulk {
    /// `List-Unsubscribe` is present.
    pub list_unsubscribe: bool,
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
    pub one_click: bool,
    /// Service-provider feedback and campaign headers present (lower-case names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub esp_headers: Vec<String>,
    /// The preheader's text, cut at 120 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    /// Links that go through a click-tracking redirect (at most [`MAX_TRACKED`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracked_links: Vec<TrackedLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedLink {
    pub part_path: String,
    /// The redirect's host.
    pub host: String,
    /// Where it leads, when the URL says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

pub const MAX_TRACKED: usize = 5;

/// Headers service providers add for feedback loops, bounces and campaign tracking. A name
/// ending in `-` is a prefix.
const ESP_HEADERS: &[&str] = &[
    "feedback-id",
    "x-feedback-id",
    "x-campaign-",
    "x-campaignid",
    "x-csa-complaints",
    "x-mailgun-",
    "x-sg-eid",
    "x-sg-id",
    "x-mc-user",
    "x-mandrill-user",
    "x-mailchimp-",
    "x-ses-outgoing",
    "x-kmail-",
    "x-sfmc-",
    "x-marketo-",
    "x-hubspot-",
    "x-pm-message-id",
    "x-postmark-",
    "x-sib-id",
    "x-mailjet-",
    "x-cmae-",
    "x-job",
];

/// Click-tracking redirect services (organisational domains): a link through one names the
/// service's host, not the site it leads to.
const TRACKERS: &[&str] = &[
    "list-manage.com",
    "sendgrid.net",
    "klclick.com",
    "klclick1.com",
    "klclick2.com",
    "klclick3.com",
    "exct.net",
    "rs6.net",
    "hubspotlinks.com",
    "hs-sites.com",
    "createsend.com",
    "cmail19.com",
    "cmail20.com",
    "mandrillapp.com",
    "sparkpostmail.com",
    "awstrack.me",
    "mailchi.mp",
    "mlsend.com",
    "sendibt2.com",
    "sendibt3.com",
    "sendibm1.com",
    "mjt.lu",
    "mailgun.org",
    "ct.sendgrid.net",
    "bnc3.mailjet.com",
    "emltrk.com",
    "clicks.mlsend.com",
    "postmarkapp.com",
    "pstmrk.it",
];

/// Query parameters that carry a redirect's destination.
const DESTINATION_PARAMS: &[&str] = &[
    "url",
    "u",
    "redirect",
    "redirect_url",
    "redirecturl",
    "target",
    "dest",
    "destination",
    "link",
    "goto",
    "to",
    "r",
];

/// Reads the top-level headers and the HTML parts; false when the deadline stopped it.
pub fn structure(targets: &[Target<'_>], out: &mut Vec<Anomaly>, deadline: Deadline) -> (Bulk, bool) {
    let mut bulk = Bulk::default();
    for t in targets.iter().filter(|t| t.kind == TargetKind::Header && t.part_path == "0") {
        let Some(name) = t.header_name.as_deref().map(str::to_ascii_lowercase) else { continue };
        if name == "list-unsubscribe" {
            bulk.list_unsubscribe = true;
        } else if name == "list-unsubscribe-post" {
            bulk.one_click |= String::from_utf8_lossy(&t.data).to_ascii_lowercase().contains("one-click");
        } else if ESP_HEADERS.iter().any(|h| if h.ends_with('-') { name.starts_with(h) } else { name == *h })
            && !bulk.esp_headers.contains(&name)
            && bulk.esp_headers.len() < 8
        {
            bulk.esp_headers.push(name);
        }
    }
    if bulk.list_unsubscribe {
        let detail = if bulk.one_click { "one-click" } else { "" };
        out.push(Anomaly {
            code: "bulk-list-unsubscribe".into(),
            part_path: "0".into(),
            detail: detail.into(),
        });
    }
    if !bulk.esp_headers.is_empty() {
        out.push(Anomaly {
            code: "bulk-esp".into(),
            part_path: "0".into(),
            detail: bulk.esp_headers.join(" "),
        });
    }
    let mut hidden = 0;
    for t in targets.iter().filter(|t| t.kind == TargetKind::Html) {
        if deadline.passed(Stage::Signals) {
            return (bulk, false);
        }
        let found = read_html(&String::from_utf8_lossy(&t.data));
        if let Some(p) = found.preheader
            && bulk.preheader.is_none()
        {
            out.push(Anomaly { code: "preheader".into(), part_path: t.part_path.clone(), detail: p.clone() });
            bulk.preheader = Some(p);
        }
        for text in found.hidden {
            if hidden < 3 {
                out.push(Anomaly {
                    code: "hidden-text".into(),
                    part_path: t.part_path.clone(),
                    detail: format!("font-size:0 {text}"),
                });
                hidden += 1;
            }
        }
    }
    (bulk, true)
}

#[derive(Debug, Default)]
struct HtmlFindings {
    preheader: Option<String>,
    /// Text in zero-size fonts, other than the preheader (cut).
    hidden: Vec<String>,
}

/// One pass over the HTML source with a stack of open elements: text hidden (by `display:none`,
/// a zero font size, zero height or opacity, `mso-hide`) before any visible text is the
/// preheader; later text whose nearest font size is zero is hidden text. Newsletter templates
/// set `font-size:0` on layout tables and size the text inside again, so only the font size
/// that applies to the text counts.
fn read_html(html: &str) -> HtmlFindings {
    let lower = html.to_ascii_lowercase();
    let mut found = HtmlFindings::default();
    let mut pos = lower.find("<body").unwrap_or(0);
    let mut seen_text = false;
    let mut preheader = String::new();
    // (element name, explicit font size is zero, hides its content)
    let mut open: Vec<(String, Option<bool>, bool)> = Vec::new();
    loop {
        let lt = lower[pos..].find('<').map_or(lower.len(), |i| pos + i);
        let text = visible_words(&html[pos..lt]);
        if !text.is_empty() {
            let zero = open.iter().rev().find_map(|e| e.1).unwrap_or(false);
            let hidden = zero || open.iter().any(|e| e.2);
            if !seen_text && hidden && preheader.len() + text.len() < 500 {
                preheader.push_str(if preheader.is_empty() { "" } else { " " });
                preheader.push_str(&text);
            } else if hidden && !seen_text {
                seen_text = true;
                if zero {
                    found.hidden.push(text.chars().take(60).collect());
                }
            } else if zero {
                found.hidden.push(text.chars().take(60).collect());
            } else if !hidden {
                seen_text = true;
            }
        }
        if lt >= lower.len() || found.hidden.len() >= 3 {
            break;
        }
        let Some(gt) = lower[lt..].find('>').map(|i| lt + i) else { break };
        let tag = &lower[lt + 1..gt];
        pos = gt + 1;
        if let Some(closing) = tag.strip_prefix('/') {
            let name: String = closing.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            if let Some(i) = open.iter().rposition(|e| e.0 == name) {
                open.truncate(i);
            }
            continue;
        }
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        if matches!(name.as_str(), "style" | "script" | "title" | "head") {
            pos = lower[pos..].find(&format!("</{name}")).map_or(lower.len(), |i| pos + i);
            continue;
        }
        if name.is_empty() || tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        let style =
            attribute(tag, "style").map(|s| s.replace([' ', '\t', '\r', '\n'], "")).unwrap_or_default();
        let font_zero = style.contains("font-size:").then(|| zero_font_size(&style));
        let hides = style.contains("display:none")
            || style.contains("visibility:hidden")
            || style.contains("max-height:0")
            || style.contains("opacity:0;")
            || style.ends_with("opacity:0")
            || style.contains("mso-hide:all")
            || attribute(tag, "class").is_some_and(|c| c.contains("preheader") || c.contains("preview"));
        if open.len() < 256 {
            open.push((name, font_zero, hides));
        }
    }
    if !preheader.is_empty() {
        found.preheader = Some(preheader.chars().take(120).collect());
    }
    found
}

/// Elements without content or closing tag.
const VOID: &[&str] =
    &["br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source", "embed", "track"];

/// The declarations (spaces removed) set `font-size` to zero (`0`, `0px`, `0.0em`).
fn zero_font_size(style: &str) -> bool {
    style.match_indices("font-size:").any(|(i, m)| {
        let value = &style[i + m.len()..];
        let number: String = value.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        !number.is_empty() && number.parse::<f64>().is_ok_and(|n| n == 0.0)
    })
}

/// The value of `name="…"` (or `'…'`) in a lower-case tag.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name).map(|i| from + i) {
        from = i + name.len();
        let before_ok = i == 0 || tag.as_bytes()[i - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if before_ok && let Some(rest) = rest.strip_prefix('=') {
            let rest = rest.trim_start();
            let quote = rest.chars().next()?;
            if quote == '"' || quote == '\'' {
                return rest[1..].split(quote).next();
            }
            return rest.split_whitespace().next();
        }
    }
    None
}

/// The text of an HTML fragment, tags and entities dropped, whitespace collapsed; empty when it
/// holds no letter or digit (spacers: `&nbsp;`, `&zwnj;`, `&#847;`).
fn visible_words(fragment: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    let mut in_entity = false;
    for c in fragment.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if in_tag => {}
            '&' => in_entity = true,
            ';' if in_entity => {
                in_entity = false;
                text.push(' ');
            }
            _ if in_entity && (c.is_ascii_alphanumeric() || c == '#') => {}
            _ => {
                in_entity = false;
                text.push(c);
            }
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.iter().any(|w| w.chars().any(char::is_alphanumeric)) {
        return String::new();
    }
    words.join(" ")
}

/// A click-tracking redirect: the redirect's host and, when the URL carries it, the
/// destination. `own` holds organisational domains that authenticated for this message (the
/// sender's own tracking host counts as a tracker).
pub fn tracking(href: &str, own: &[String]) -> Option<TrackedLink> {
    let host = crate::inspect::evidence::signals::url_host(href)?;
    let destination = destination_in_query(href);
    let org = org_domain(&host);
    let known = TRACKERS.iter().any(|t| host == *t || host.ends_with(&format!(".{t}")) || org == *t)
        || own.contains(&org);
    (known || destination.is_some()).then(|| TrackedLink { part_path: String::new(), host, destination })
}

/// The host of a URL carried in a query parameter (percent-decoded up to twice).
fn destination_in_query(href: &str) -> Option<String> {
    let query = href.split_once('?')?.1.split('#').next()?;
    for pair in query.split('&') {
        let Some((k, v)) = pair.split_once('=') else { continue };
        if !DESTINATION_PARAMS.contains(&k.to_ascii_lowercase().as_str()) {
            continue;
        }
        let mut value = percent_decode(v);
        if !value.contains("://") {
            value = percent_decode(&value);
        }
        if let Some(host) = crate::inspect::evidence::signals::url_host(&value) {
            return Some(host);
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hidden_line_before_any_visible_text_is_the_preheader() {
        let html = "<html><head><style>.p{font-size:0}</style></head><body>\
            <div style=\"display:none;max-height:0\">Our spring sale starts today&nbsp;&zwnj;</div>\
            <table><tr><td style=\"font-size:0;line-height:0\">&nbsp;</td></tr></table>\
            <p>Hello</p><span style=\"font-size: 0px\">invoice verify account password</span></body>";
        let f = read_html(html);
        assert_eq!(f.preheader.as_deref(), Some("Our spring sale starts today"));
        assert_eq!(f.hidden, vec!["invoice verify account password"]);
    }

    #[test]
    fn hidden_text_after_visible_text_is_not_a_preheader() {
        let f =
            read_html("<body><p>Dear customer</p><div style=\"font-size:0\">lorem ipsum filler</div></body>");
        assert_eq!(f.preheader, None);
        assert_eq!(f.hidden, vec!["lorem ipsum filler"]);
        let f = read_html("<body><p style=\"font-size:0.9em\">fine print</p></body>");
        assert!(f.preheader.is_none() && f.hidden.is_empty(), "{f:?}");
    }

    #[test]
    fn click_tracking_redirects_and_their_destinations() {
        let t = tracking("https://click.example.net/r?id=1&url=https%3A%2F%2Fshop.example.com%2Fsale", &[])
            .unwrap();
        assert_eq!(
            (t.host.as_str(), t.destination.as_deref()),
            ("click.example.net", Some("shop.example.com"))
        );
        let t = tracking("https://shop.us1.list-manage.com/track/click?u=abc&id=def", &[]).unwrap();
        assert_eq!(t.destination, None);
        assert!(
            tracking("https://links.shop.example.com/ls/click?upn=x", &["example.com".to_string()]).is_some()
        );
        assert!(tracking("https://evil.example/login", &[]).is_none());
    }

    #[test]
    fn attributes_are_found_whole() {
        assert_eq!(attribute("div data-style=\"x\" style='a:b'", "style"), Some("a:b"));
        assert_eq!(attribute("td class=preheader", "class"), Some("preheader"));
    }
}
