//! URLs written out in text. Links in plain-text mail and URLs shown as text
//! in HTML are as dangerous as anchors; rules match them one by one, so they
//! are cut out of the text with the trailing punctuation a reader would not
//! consider part of the link.

use std::sync::LazyLock;

use regex::Regex;

static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:(?:https?|ftps?|hxxps?)://|www\.)[^\s<>"'`{}|\\^\[\]\x00-\x1f\x7f]+"#)
        .expect("URL pattern is valid")
});

/// Longest URL taken from text; the rest of a longer run is ignored.
const MAX_URL: usize = 4096;

/// URLs found in `text`, in order of appearance (duplicates included).
pub(super) fn find_urls(text: &str) -> impl Iterator<Item = &str> {
    URL.find_iter(text).filter_map(|m| {
        let url = trim_trailing(m.as_str());
        let url = match url.char_indices().nth(MAX_URL) {
            Some((i, _)) => &url[..i],
            None => url,
        };
        // "www." alone, or a scheme with nothing after it, is not a link.
        let has_host = url.split_once("://").map_or(url.len() > 4, |(_, rest)| !rest.is_empty());
        has_host.then_some(url)
    })
}

/// Drops sentence punctuation after a URL, and a closing parenthesis that has
/// no opening one inside the URL ("(see https://x.example/a)").
fn trim_trailing(mut url: &str) -> &str {
    loop {
        let Some(last) = url.chars().last() else {
            return url;
        };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '*' => true,
            ')' => url.matches('(').count() < url.matches(')').count(),
            _ => false,
        };
        if !drop {
            return url;
        }
        url = &url[..url.len() - last.len_utf8()];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<&str> {
        find_urls(text).collect()
    }

    #[test]
    fn urls_are_cut_at_whitespace_and_trailing_punctuation() {
        assert_eq!(
            urls("Go to https://example.com/a?b=c. Or (see http://x.example/y_(z)) now, www.test.example!"),
            ["https://example.com/a?b=c", "http://x.example/y_(z)", "www.test.example"]
        );
    }

    #[test]
    fn defanged_and_upper_case_schemes_are_found() {
        assert_eq!(
            urls("HTTPS://A.EXAMPLE hxxp://bad.example/x"),
            ["HTTPS://A.EXAMPLE", "hxxp://bad.example/x"]
        );
    }

    #[test]
    fn bare_scheme_is_not_a_url() {
        assert!(urls("http:// and www. only").is_empty());
    }

    #[test]
    fn urls_stop_at_angle_brackets_and_quotes() {
        assert_eq!(
            urls("<https://a.example/x>\"http://b.example\""),
            ["https://a.example/x", "http://b.example"]
        );
    }
}
