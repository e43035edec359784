//! HTML as a reader sees it. Phishing lives in HTML: the visible text and the
//! link targets (and the mismatch between a link's text and its href) are
//! what rules need, while the markup, scripts and style sheets only hide them.
//! This is a tolerant single-pass tokenizer, linear in the input, that never
//! fails on broken markup.

/// A link found in the markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::inspect) struct Link {
    pub url: String,
    /// The visible text of an `<a>` element, when the link is one.
    pub text: Option<String>,
}

/// Text and links of one HTML document.
#[derive(Debug, Default, PartialEq, Eq)]
pub(in crate::inspect) struct HtmlScan {
    pub text: String,
    pub links: Vec<Link>,
}

/// Longest URL kept from an attribute; longer values (inline data) are cut.
const MAX_URL: usize = 4096;
/// Longest anchor text kept for a link.
const MAX_LINK_TEXT: usize = 512;

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &["script", "style", "template", "noembed", "xml"];

/// Elements that start a new line in rendered text.
const BLOCK: &[&str] = &[
    "p",
    "div",
    "br",
    "tr",
    "li",
    "ul",
    "ol",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "dt",
    "dd",
    "title",
    "center",
    "form",
];

/// Attributes that carry a URL, per element (`*` for any element).
const URL_ATTRS: &[(&str, &str)] = &[
    ("a", "href"),
    ("area", "href"),
    ("img", "src"),
    ("iframe", "src"),
    ("frame", "src"),
    ("form", "action"),
    ("button", "formaction"),
    ("input", "formaction"),
    ("embed", "src"),
    ("object", "data"),
    ("*", "background"),
    ("meta", "content"),
];

/// Text and links of an HTML document: one forward pass. At most `max_links` links are kept
/// (the walk takes no more URL targets than that); the text is taken whole.
pub(in crate::inspect) fn scan(html: &str, max_links: usize) -> HtmlScan {
    let mut out = HtmlScan::default();
    let mut text = TextBuilder::default();
    let bytes = html.as_bytes();
    let mut pos = 0;
    // Index into out.links of the open <a>, and where its text started.
    let mut open_anchor: Option<(usize, usize)> = None;

    while pos < bytes.len() {
        let Some(rel) = memchr::memchr(b'<', &bytes[pos..]) else {
            text.push_text(&html[pos..]);
            break;
        };
        let lt = pos + rel;
        text.push_text(&html[pos..lt]);
        let rest = &bytes[lt..];
        if rest.starts_with(b"<!--") {
            pos = find(bytes, lt + 4, b"-->").map_or(bytes.len(), |i| i + 3);
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            pos = memchr::memchr(b'>', &bytes[lt..]).map_or(bytes.len(), |i| lt + i + 1);
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = lt + 1 + usize::from(closing);
        if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            text.push_text("<");
            pos = lt + 1;
            continue;
        }
        let tag = parse_tag(html, name_start);
        pos = tag.end;
        let name = tag.name.to_ascii_lowercase();

        if closing {
            if name == "a"
                && let Some((index, start)) = open_anchor.take()
            {
                out.links[index].text = Some(anchor_text(&text.buf[start..]));
            }
            if BLOCK.contains(&name.as_str()) {
                text.newline();
            }
            continue;
        }
        if HIDDEN.contains(&name.as_str()) && !tag.self_closing {
            pos = skip_raw_text(bytes, pos, &name);
            continue;
        }
        if BLOCK.contains(&name.as_str()) {
            text.newline();
        } else if matches!(name.as_str(), "td" | "th") {
            text.space();
        }
        for (attr, value) in &tag.attrs {
            let wanted =
                URL_ATTRS.iter().any(|(el, a)| (*el == name || *el == "*") && attr.eq_ignore_ascii_case(a));
            if !wanted {
                continue;
            }
            let value = decode_entities(value);
            let url = if name == "meta" {
                // <meta http-equiv="refresh" content="0; url=...">
                match value.to_ascii_lowercase().find("url=") {
                    Some(i) => value[i + 4..].trim().trim_matches(['\'', '"']).to_string(),
                    None => continue,
                }
            } else {
                value.trim().to_string()
            };
            if url.is_empty() || is_internal_reference(&url) {
                continue;
            }
            if out.links.len() >= max_links {
                if let Some((index, start)) = open_anchor.take() {
                    out.links[index].text = Some(anchor_text(&text.buf[start..]));
                }
                continue;
            }
            let url = truncate_chars(&url, MAX_URL);
            if name == "a" && attr.eq_ignore_ascii_case("href") {
                if let Some((index, start)) = open_anchor.take() {
                    out.links[index].text = Some(anchor_text(&text.buf[start..]));
                }
                open_anchor = Some((out.links.len(), text.buf.len()));
                out.links.push(Link { url, text: Some(String::new()) });
            } else {
                out.links.push(Link { url, text: None });
            }
        }
    }
    if let Some((index, start)) = open_anchor.take() {
        out.links[index].text = Some(anchor_text(&text.buf[start..]));
    }
    out.text = text.finish();
    out
}

fn is_internal_reference(url: &str) -> bool {
    let lower = url.get(..5).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("cid:") || lower.starts_with("data:") || lower.starts_with('#')
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

fn anchor_text(raw: &str) -> String {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&collapsed, MAX_LINK_TEXT)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay.get(from..)?, needle).map(|i| from + i)
}

/// Skips the content of a raw-text element up to its end tag.
fn skip_raw_text(bytes: &[u8], from: usize, name: &str) -> usize {
    let mut pos = from;
    while let Some(i) = find(bytes, pos, b"</") {
        let after = &bytes[i + 2..];
        if after.len() >= name.len() && after[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return memchr::memchr(b'>', &bytes[i..]).map_or(bytes.len(), |j| i + j + 1);
        }
        pos = i + 2;
    }
    bytes.len()
}

struct Tag<'h> {
    name: &'h str,
    attrs: Vec<(&'h str, &'h str)>,
    self_closing: bool,
    end: usize,
}

/// Parses a tag starting at its name; `end` is just past the closing `>`.
fn parse_tag(html: &str, name_start: usize) -> Tag<'_> {
    let bytes = html.as_bytes();
    let mut pos = name_start;
    while pos < bytes.len() && !is_tag_delim(bytes[pos]) {
        pos += 1;
    }
    let name = &html[name_start..pos];
    let mut attrs = Vec::new();
    let mut self_closing = false;
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'/') {
            self_closing = bytes[pos] == b'/';
            pos += 1;
        }
        if pos >= bytes.len() {
            break;
        }
        if bytes[pos] == b'>' {
            pos += 1;
            break;
        }
        self_closing = false;
        let attr_start = pos;
        while pos < bytes.len() && !is_tag_delim(bytes[pos]) && bytes[pos] != b'=' {
            pos += 1;
        }
        let attr = &html[attr_start..pos];
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let mut value = "";
        if bytes.get(pos) == Some(&b'=') {
            pos += 1;
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            match bytes.get(pos) {
                Some(&q @ (b'"' | b'\'')) => {
                    let start = pos + 1;
                    let end = memchr::memchr(q, &bytes[start..]).map_or(bytes.len(), |i| start + i);
                    value = &html[start..end];
                    pos = (end + 1).min(bytes.len());
                }
                _ => {
                    let start = pos;
                    while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                        pos += 1;
                    }
                    value = &html[start..pos];
                }
            }
        }
        if attr.is_empty() && value.is_empty() {
            // Stray '=' or quote: step over it so the loop always advances.
            pos += 1;
            continue;
        }
        attrs.push((attr, value));
    }
    Tag { name, attrs, self_closing, end: pos.min(bytes.len()) }
}

fn is_tag_delim(b: u8) -> bool {
    b.is_ascii_whitespace() || b == b'>' || b == b'/'
}

/// Accumulates rendered text, collapsing whitespace the way a browser does.
#[derive(Default)]
struct TextBuilder {
    buf: String,
    pending_space: bool,
    pending_newlines: u8,
}

impl TextBuilder {
    fn push_text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw);
        for word_or_space in split_keep_space(&decoded) {
            match word_or_space {
                Piece::Space => self.pending_space = true,
                Piece::Word(word) => {
                    if !self.buf.is_empty() {
                        if self.pending_newlines > 0 {
                            for _ in 0..self.pending_newlines.min(2) {
                                self.buf.push('\n');
                            }
                        } else if self.pending_space {
                            self.buf.push(' ');
                        }
                    }
                    self.pending_newlines = 0;
                    self.pending_space = false;
                    self.buf.push_str(word);
                }
            }
        }
    }

    fn space(&mut self) {
        self.pending_space = true;
    }

    fn newline(&mut self) {
        self.pending_newlines = self.pending_newlines.saturating_add(1);
    }

    fn finish(self) -> String {
        self.buf
    }
}

enum Piece<'s> {
    Space,
    Word(&'s str),
}

fn split_keep_space(s: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let first = rest.chars().next()?;
        if first.is_whitespace() {
            let end = rest.char_indices().find(|(_, c)| !c.is_whitespace()).map_or(rest.len(), |(i, _)| i);
            rest = &rest[end..];
            Some(Piece::Space)
        } else {
            let end = rest.char_indices().find(|(_, c)| c.is_whitespace()).map_or(rest.len(), |(i, _)| i);
            let word = &rest[..end];
            rest = &rest[end..];
            Some(Piece::Word(word))
        }
    })
}

/// Named character references common in mail. Others are left as written
/// (the full HTML table has over two thousand names, almost none used in
/// mail); numeric references are always decoded.
const ENTITIES: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("shy", '\u{ad}'),
    ("zwnj", '\u{200c}'),
    ("zwj", '\u{200d}'),
    ("lrm", '\u{200e}'),
    ("rlm", '\u{200f}'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("hellip", '…'),
    ("bull", '•'),
    ("middot", '·'),
    ("copy", '©'),
    ("reg", '®'),
    ("trade", '™'),
    ("euro", '€'),
    ("pound", '£'),
    ("yen", '¥'),
    ("cent", '¢'),
    ("sect", '§'),
    ("para", '¶'),
    ("deg", '°'),
    ("plusmn", '±'),
    ("times", '×'),
    ("divide", '÷'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("iexcl", '¡'),
    ("iquest", '¿'),
    ("auml", 'ä'),
    ("ouml", 'ö'),
    ("uuml", 'ü'),
    ("Auml", 'Ä'),
    ("Ouml", 'Ö'),
    ("Uuml", 'Ü'),
    ("szlig", 'ß'),
    ("eacute", 'é'),
    ("egrave", 'è'),
    ("ecirc", 'ê'),
    ("aacute", 'á'),
    ("agrave", 'à'),
    ("acirc", 'â'),
    ("ccedil", 'ç'),
    ("iacute", 'í'),
    ("oacute", 'ó'),
    ("uacute", 'ú'),
    ("ntilde", 'ñ'),
    ("Eacute", 'É'),
];

/// Decodes character references; returns the input unchanged (borrowed
/// would be nicer, but callers need owned text anyway) when there are none.
/// Linear: each reference is read once from where it starts, at most a few characters.
pub(in crate::inspect) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let (decoded, used) = decode_reference(after);
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes one reference after '&'; returns the char and bytes consumed.
fn decode_reference(after: &str) -> (Option<char>, usize) {
    let bytes = after.as_bytes();
    if bytes.first() == Some(&b'#') {
        let hex = matches!(bytes.get(1), Some(b'x' | b'X'));
        let start = if hex { 2 } else { 1 };
        let digits = bytes[start..]
            .iter()
            .take(8)
            .take_while(|b| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() })
            .count();
        if digits == 0 {
            return (None, 0);
        }
        let number = &after[start..start + digits];
        let value = u32::from_str_radix(number, if hex { 16 } else { 10 }).unwrap_or(0xFFFD);
        let c = char::from_u32(value).filter(|&c| c != '\0').unwrap_or('\u{FFFD}');
        let mut used = start + digits;
        if bytes.get(used) == Some(&b';') {
            used += 1;
        }
        return (Some(c), used);
    }
    let name_len = bytes.iter().take(10).take_while(|b| b.is_ascii_alphanumeric()).count();
    let name = &after[..name_len];
    match ENTITIES.iter().find(|(n, _)| *n == name) {
        Some(&(_, c)) => {
            let used = name_len + usize::from(bytes.get(name_len) == Some(&b';'));
            (Some(c), used)
        }
        None => (None, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_extracted_without_tags_scripts_or_styles() {
        let html = "<html><head><style>p{color:red}</style><script>var a='<p>x</p>';</script></head>\
                    <body><p>Hello&nbsp;<b>world</b> &amp; you</p><!-- hidden --><div>Next</div></body></html>";
        let scan = scan(html, usize::MAX);
        // No-break spaces read as spaces; a paragraph break as a blank line.
        assert_eq!(scan.text, "Hello world & you\n\nNext");
    }

    #[test]
    fn anchors_keep_their_link_text() {
        let html = r#"<a href="https://evil.example/login?a=1&amp;b=2">https://bank.example</a> and <a href='x'>second <i>one</i></a>"#;
        let scan = scan(html, usize::MAX);
        assert_eq!(
            scan.links,
            vec![
                Link {
                    url: "https://evil.example/login?a=1&b=2".into(),
                    text: Some("https://bank.example".into())
                },
                Link { url: "x".into(), text: Some("second one".into()) }
            ]
        );
    }

    #[test]
    fn image_form_and_refresh_urls_are_links_without_text() {
        let html = r#"<img src=http://t.example/p.gif><form action="https://f.example/post"></form>
            <meta http-equiv="refresh" content="0; URL='https://r.example/'"><img src="cid:logo">"#;
        let urls: Vec<_> = scan(html, usize::MAX).links.into_iter().map(|l| (l.url, l.text)).collect();
        assert_eq!(
            urls,
            vec![
                ("http://t.example/p.gif".to_string(), None),
                ("https://f.example/post".to_string(), None),
                ("https://r.example/".to_string(), None),
            ]
        );
    }

    #[test]
    fn numeric_references_decode_and_unknown_names_stay() {
        assert_eq!(decode_entities("&#72;&#x69;&unknown; &amp"), "Hi&unknown; &");
        assert_eq!(decode_entities("&#0;&#99999999;"), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn broken_markup_never_loops_or_panics() {
        for html in [
            "<",
            "<a",
            "<a href",
            "<a href=",
            "<a href='x",
            "<!--",
            "</",
            "<a =>",
            "<a '\">",
            "<script>",
            "<p/ / />t",
        ] {
            let _ = scan(html, usize::MAX);
        }
        assert_eq!(scan("a < b and 1<2", usize::MAX).text, "a < b and 1<2");
    }

    #[test]
    fn links_stop_at_the_cap_and_the_text_does_not() {
        let html = "<a href=\"http://a.example/\">one</a><a href=\"http://b.example/\">two</a><img src=\"http://c.example/i\">three";
        let capped = scan(html, 1);
        assert_eq!(capped.links.len(), 1);
        assert_eq!(capped.links[0].text.as_deref(), Some("one"));
        assert!(capped.text.contains("three"), "{}", capped.text);
    }
}
