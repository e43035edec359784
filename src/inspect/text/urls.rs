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
pub(in crate::inspect) fn find_urls(text: &str) -> impl Iterator<Item = &str> {
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
///
/// Linear: the parentheses are counted once, and the counts follow each
/// character dropped (only `)` among them changes a count), so a URL followed
/// by a long run of `)` costs one pass, not one count per character.
fn trim_trailing(url: &str) -> &str {
    let opening = memchr::memchr_iter(b'(', url.as_bytes()).count();
    let mut closing = memchr::memchr_iter(b')', url.as_bytes()).count();
    let mut end = url.len();
    while let Some(last) = url[..end].chars().next_back() {
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '*' => true,
            ')' => opening < closing,
            _ => false,
        };
        if !drop {
            break;
        }
        if last == ')' {
            closing -= 1;
        }
        end -= last.len_utf8();
    }
    &url[..end]
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
    fn unbalanced_closing_parentheses_are_trimmed_in_one_pass() {
        let text = format!("see http://example.com/a(b){} and more", ")".repeat(100_000));
        assert_eq!(urls(&text), ["http://example.com/a(b)"]);
        assert_eq!(urls("x http://e.example/((a))).)"), ["http://e.example/((a))"]);
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
