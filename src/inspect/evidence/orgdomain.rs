//! Organisational domains (RFC 7489 §3.2), from the public-suffix list compiled into the
//! binary by the `psl` crate: nothing is fetched at run time, and a new list arrives with a
//! new release. The one place that knows about the list, so it can be swapped.

/// The organisational domain of `host`: its public suffix plus one label
/// (`mail.shop.example.co.uk` → `example.co.uk`). A name that is itself a public suffix, or
/// an address literal, is returned as it is, lower case.
pub fn org_domain(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return host;
    }
    match psl::domain(host.as_bytes()) {
        Some(d) => String::from_utf8_lossy(d.as_bytes()).into_owned(),
        None => host,
    }
}

/// Relaxed alignment: both names have the same organisational domain.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (org_domain(a), org_domain(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisational_domains_follow_the_public_suffix_list() {
        assert_eq!(org_domain("mail.shop.example.co.uk"), "example.co.uk");
        assert_eq!(org_domain("News.Example.COM."), "example.com");
        assert_eq!(org_domain("a.b.github.io"), "b.github.io", "private suffixes count too");
        assert_eq!(org_domain("192.0.2.7"), "192.0.2.7");
        assert!(aligned("bounce.example.com", "example.com"));
        assert!(!aligned("example.com.evil.example", "example.com"));
    }
}
