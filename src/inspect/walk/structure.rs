//! The part tree of a message: where each MIME part's header block, body and end are, and how
//! the parts nest.
//!
//! The split follows mail-parser's rules exactly (its header parser, its boundary matching —
//! a boundary is recognised wherever `--boundary` occurs, its recovery from a missing
//! boundary), so every offset is the one mail-parser reports; the property test below holds
//! the two to that on every fixture and on mutated messages. What differs is how bodies are
//! crossed: mail-parser reads a body one byte at a time to find the next boundary, and it turns
//! every text part into a `String` we never use; here a body is crossed with one SIMD substring
//! search for `--boundary` and the newline before it is found backwards. Bodies are most of a
//! message's bytes, so this was the larger part of the parse.
//!
//! Content-Transfer-Encoding is not looked at (as with the parser configured to ignore it):
//! an encoded embedded message is decoded and walked by the caller.

use mail_parser::parsers::MessageStream;
use mail_parser::{ContentType, GetHeader, Header, HeaderName, MessageParser};

/// A parsed message: `parts[0]` is the message itself.
#[derive(Debug, Default)]
pub(in crate::inspect) struct Tree<'x> {
    pub parts: Vec<TreePart<'x>>,
    /// The split's boundary searches ran out of budget (see `Delimiters`): parts after that
    /// point may be merged into the part before them.
    pub searches_exhausted: bool,
}

/// Dropped without recursion: embedded messages are taken out and dropped one by one, so a
/// million nested message/rfc822 parts cannot overflow the stack, whether the tree is dropped
/// after the walk or while a panic unwinds.
impl Drop for Tree<'_> {
    fn drop(&mut self) {
        let mut nested = Vec::new();
        take_nested(self, &mut nested);
        while let Some(mut tree) = nested.pop() {
            // `tree` has no embedded message left when it is dropped here.
            take_nested(&mut tree, &mut nested);
        }
    }
}

/// Moves the embedded messages of `tree`'s parts into `into`, leaving leaves.
fn take_nested<'x>(tree: &mut Tree<'x>, into: &mut Vec<Tree<'x>>) {
    for part in &mut tree.parts {
        if let Body::Message(inner) = std::mem::replace(&mut part.body, Body::Leaf) {
            into.push(inner);
        }
    }
}

/// One part: offsets into the parsed buffer.
#[derive(Debug)]
pub(in crate::inspect) struct TreePart<'x> {
    pub headers: Vec<Header<'x>>,
    pub offset_header: u32,
    pub offset_body: u32,
    pub offset_end: u32,
    pub body: Body<'x>,
}

/// What a part holds.
#[derive(Debug)]
pub(in crate::inspect) enum Body<'x> {
    /// A multipart: its children, as indexes into the same tree. A multipart or embedded
    /// message the split could not finish stays an empty multipart (as in mail-parser).
    Multipart(Vec<u32>),
    /// An embedded message with its own tree.
    Message(Tree<'x>),
    /// Anything else.
    Leaf,
}

impl Default for Body<'_> {
    fn default() -> Self {
        Body::Multipart(Vec::new())
    }
}

/// How a part's type steers the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    Digest,
    OtherMultipart,
    #[default]
    Message,
    Other,
}

/// `(is multipart, kind)` for a part's Content-Type, given the enclosing part's kind.
fn kind_of(content_type: Option<&ContentType<'_>>, parent: Kind) -> (bool, Kind) {
    match content_type {
        Some(ct) => match ct.ctype() {
            "multipart" => {
                (true, if ct.subtype() == Some("digest") { Kind::Digest } else { Kind::OtherMultipart })
            }
            "message" if matches!(ct.subtype(), Some("rfc822" | "global")) => (false, Kind::Message),
            _ => (false, Kind::Other),
        },
        // RFC 2046 5.1.5: inside a digest a part without Content-Type is a message.
        None if parent == Kind::Digest => (false, Kind::Message),
        None => (false, Kind::Other),
    }
}

/// The split's state for one multipart or message being read.
#[derive(Debug, Default)]
struct State {
    kind: Kind,
    boundary: Option<Vec<u8>>,
    part_id: usize,
    children: Vec<u32>,
    offset_header: usize,
    offset_body: usize,
}

impl State {
    fn top() -> State {
        State { kind: Kind::Message, ..State::default() }
    }

    /// The part whose header block was just read, its end not known yet.
    fn open_part<'x>(&self, headers: &mut Vec<Header<'x>>) -> TreePart<'x> {
        TreePart {
            headers: std::mem::take(headers),
            offset_header: self.offset_header as u32,
            offset_body: self.offset_body as u32,
            offset_end: 0,
            body: Body::default(),
        }
    }
}

/// Searches for `--boundary` delimiters, linear in the buffer: one substring searcher per
/// boundary (O(n + m), where comparing the boundary at every `--` was O(n·m) on a buffer of
/// dashes), each remembering its last answer (a boundary that never comes is looked for once,
/// not once per part that expects it), and a budget of bytes crossed for the whole split:
/// many distinct boundaries that never come would each cross the rest of the buffer. Past the
/// budget, searches find nothing and the tree says so.
struct Delimiters {
    searches: std::collections::HashMap<Vec<u8>, Search>,
    budget: usize,
    exhausted: bool,
}

struct Search {
    finder: memchr::memmem::Finder<'static>,
    /// The last search started here…
    from: usize,
    /// …and found this.
    found: Option<usize>,
}

/// Bytes a split's delimiter searches may cross: this many times the buffer (a message
/// nests a boundary search per multipart level, each crossing its part once), plus a floor.
const SEARCH_BUDGET_TIMES: usize = 24;
const SEARCH_BUDGET_FLOOR: usize = 1 << 20;

impl Delimiters {
    fn new(len: usize) -> Self {
        Delimiters {
            searches: std::collections::HashMap::new(),
            budget: len.saturating_mul(SEARCH_BUDGET_TIMES).saturating_add(SEARCH_BUDGET_FLOOR),
            exhausted: false,
        }
    }

    /// Position of the first `--boundary` at or after `from`: the index of its first dash.
    fn find(&mut self, data: &[u8], from: usize, boundary: &[u8]) -> Option<usize> {
        if boundary.is_empty() || from >= data.len() {
            return None;
        }
        let search = self.searches.entry(boundary.to_vec()).or_insert_with(|| Search {
            finder: memchr::memmem::Finder::new(&[b"--", boundary].concat()).into_owned(),
            from: usize::MAX,
            found: None,
        });
        // A search from no later than `from` whose answer is not before it holds for `from`.
        if search.from <= from && search.found.is_none_or(|f| f >= from) {
            return search.found;
        }
        if self.budget == 0 {
            self.exhausted = true;
            return None;
        }
        let found = search.finder.find(&data[from..]).map(|i| from + i);
        let crossed = found.map_or(data.len(), |f| f + search.finder.needle().len()) - from;
        self.budget = self.budget.saturating_sub(crossed);
        search.from = from;
        search.found = found;
        found
    }
}

/// Where the line before `dash` ends (its CR, or its LF when there is no CR), looking no
/// further back than `from`; `from` itself when no line ends in between.
fn line_end_before(data: &[u8], from: usize, dash: usize) -> usize {
    match memchr::memrchr(b'\n', &data[from..dash]) {
        Some(i) => {
            let lf = from + i;
            if lf > from && data[lf - 1] == b'\r' { lf - 1 } else { lf }
        }
        None => from,
    }
}

/// Moves `stream` forward to `to`.
fn seek(stream: &mut MessageStream<'_>, to: usize) {
    let at = stream.offset();
    if to > at {
        stream.skip_bytes(to - at);
    }
}

/// Skips past the next `--boundary` (mail-parser's `seek_next_part`); false, not moving,
/// when there is none.
fn skip_to_next_part(
    stream: &mut MessageStream<'_>,
    data: &[u8],
    boundary: &[u8],
    delimiters: &mut Delimiters,
) -> bool {
    match delimiters.find(data, stream.offset(), boundary) {
        Some(dash) => {
            seek(stream, dash + 2 + boundary.len());
            true
        }
        None => false,
    }
}

/// A leaf body from the stream's position: its end offset, leaving the stream after the
/// boundary that ends it (mail-parser's `mime_part`). `None`, not moving, when a boundary was
/// expected and never comes; with no boundary the body runs to the end.
fn leaf_end(
    stream: &mut MessageStream<'_>,
    data: &[u8],
    boundary: &[u8],
    delimiters: &mut Delimiters,
) -> Option<usize> {
    let start = stream.offset();
    if boundary.is_empty() {
        seek(stream, data.len());
        return Some(data.len());
    }
    let dash = delimiters.find(data, start, boundary)?;
    // The body ends where the boundary's line begins; a boundary in the middle of a line
    // ends it right there.
    let end =
        if dash == start || data[dash - 1] == b'\n' { line_end_before(data, start, dash) } else { dash };
    seek(stream, dash + 2 + boundary.len());
    Some(end)
}

/// After a nested multipart closes: the start of the line of the enclosing boundary's next
/// occurrence, leaving the stream after it (mail-parser's `seek_next_part_offset`).
fn next_part_offset(
    stream: &mut MessageStream<'_>,
    data: &[u8],
    boundary: &[u8],
    delimiters: &mut Delimiters,
) -> Option<usize> {
    let start = stream.offset();
    let dash = delimiters.find(data, start, boundary)?;
    let end = line_end_before(data, start, dash);
    seek(stream, dash + 2 + boundary.len());
    Some(end)
}

/// Splits `data` into its part tree with `parser`'s header rules; `None` when not even one
/// header field could be read.
pub(in crate::inspect) fn split<'x>(parser: &MessageParser, data: &'x [u8]) -> Option<Tree<'x>> {
    let mut stream = MessageStream::new(data);
    let mut tree = Tree::default();
    let mut state = State::top();
    let mut stack: Vec<(State, Option<Tree<'x>>)> = Vec::with_capacity(4);
    let mut headers: Vec<Header<'x>> = Vec::new();
    let mut delimiters = Delimiters::new(data.len());

    'outer: loop {
        state.offset_header = stream.offset();
        if !stream.parse_headers(parser, &mut headers) {
            break;
        }
        state.offset_body = stream.offset();
        state.children.push(tree.parts.len() as u32);

        let content_type = headers.header_value(&HeaderName::ContentType).and_then(|v| v.as_content_type());
        let (is_multipart, mut kind) = kind_of(content_type, state.kind);

        if is_multipart && let Some(boundary) = content_type.and_then(|ct| ct.attribute("boundary")) {
            if skip_to_next_part(&mut stream, data, boundary.as_bytes(), &mut delimiters) {
                let inner = State {
                    kind,
                    boundary: Some(boundary.as_bytes().to_vec()),
                    part_id: tree.parts.len(),
                    ..State::default()
                };
                tree.parts.push(state.open_part(&mut headers));
                stack.push((state, None));
                state = inner;
                stream.skip_crlf();
                continue;
            }
            // A multipart whose boundary never comes is read as text.
            kind = Kind::Other;
        }

        if kind == Kind::Message {
            let inner = State {
                kind: Kind::Message,
                boundary: state.boundary.take(),
                part_id: tree.parts.len(),
                ..State::default()
            };
            tree.parts.push(state.open_part(&mut headers));
            stack.push((state, Some(std::mem::take(&mut tree))));
            state = inner;
            continue;
        }

        let boundary = state.boundary.as_deref().unwrap_or(b"");
        let end = match leaf_end(&mut stream, data, boundary, &mut delimiters) {
            Some(end) => end,
            None => {
                // The boundary never comes: the part runs to the end, and the enclosing
                // multipart stops looking for it.
                seek(&mut stream, data.len());
                state.boundary = None;
                data.len()
            }
        };
        let mut leaf = state.open_part(&mut headers);
        leaf.offset_end = end as u32;
        leaf.body = Body::Leaf;
        tree.parts.push(leaf);

        if state.boundary.is_none() {
            if stream.offset() >= data.len() {
                break 'outer;
            }
            continue;
        }
        loop {
            if state.kind == Kind::Message {
                // An embedded message inside a multipart ends at the enclosing boundary.
                let Some((mut outer_state, Some(mut outer_tree))) = stack.pop() else {
                    break 'outer;
                };
                let end = match &state.boundary {
                    Some(b) => {
                        let pos = stream.offset().saturating_sub(b.len() + 2);
                        match pos.checked_sub(2).and_then(|i| data.get(i)) {
                            Some(b'\r') => pos - 2,
                            _ => pos.wrapping_sub(1),
                        }
                    }
                    None => stream.offset(),
                };
                let inner = std::mem::take(&mut tree);
                if let Some(part) = outer_tree.parts.get_mut(state.part_id) {
                    part.offset_end = end as u32;
                    part.body = if inner.parts.is_empty() { Body::Leaf } else { Body::Message(inner) };
                }
                tree = outer_tree;
                outer_state.boundary = state.boundary.take();
                state = outer_state;
            }

            if !stream.is_multipart_end() {
                // The next part's header block follows.
                break;
            }
            let part_id = state.part_id;
            if part_id >= tree.parts.len() {
                break 'outer;
            }
            let children = (state.children.as_slice() != [0]).then(|| std::mem::take(&mut state.children));
            let mut end = None;
            if let Some((outer_state, _)) = stack.pop() {
                state = outer_state;
                if let Some(b) = &state.boundary {
                    end = next_part_offset(&mut stream, data, b, &mut delimiters);
                }
            }
            let part = &mut tree.parts[part_id];
            if let Some(children) = children {
                part.body = Body::Multipart(children);
            }
            match end {
                Some(end) => part.offset_end = end as u32,
                None => {
                    part.offset_end = stream.offset() as u32;
                    break 'outer;
                }
            }
        }
    }

    // Whatever is still open ends where the split stopped.
    let stop = stream.offset();
    while let Some((outer_state, outer_tree)) = stack.pop() {
        match outer_tree {
            Some(mut outer_tree) => {
                let inner = std::mem::take(&mut tree);
                if let Some(part) = outer_tree.parts.get_mut(state.part_id) {
                    part.offset_end = stop as u32;
                    part.body = if inner.parts.is_empty() { Body::Leaf } else { Body::Message(inner) };
                }
                tree = outer_tree;
            }
            None => {
                if let Some(part) = tree.parts.get_mut(state.part_id) {
                    part.offset_end = stop as u32;
                    let children = std::mem::take(&mut state.children);
                    if children.as_slice() != [0] {
                        part.body = Body::Multipart(children);
                    }
                }
            }
        }
        state = outer_state;
    }

    tree.searches_exhausted = delimiters.exhausted;
    if let Some(first) = tree.parts.first_mut() {
        first.offset_end = data.len() as u32;
        Some(tree)
    } else if !headers.is_empty() {
        // Header fields and no body.
        tree.parts.push(TreePart {
            headers,
            offset_header: 0,
            offset_body: data.len() as u32,
            offset_end: data.len() as u32,
            body: Body::Leaf,
        });
        Some(tree)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::walk::mime::PARSER;
    use mail_parser::{Message, PartType};

    /// Where the split and mail-parser disagree on one buffer, if anywhere.
    fn compare(tree: &Tree<'_>, message: &Message<'_>, at: &str) -> Result<(), String> {
        if tree.parts.len() != message.parts.len() {
            return Err(format!("{at}: {} parts, mail-parser {}", tree.parts.len(), message.parts.len()));
        }
        for (i, (ours, theirs)) in tree.parts.iter().zip(&message.parts).enumerate() {
            let here = format!("{at}/{i}");
            let offsets = (ours.offset_header, ours.offset_body, ours.offset_end);
            let expected = (theirs.offset_header, theirs.offset_body, theirs.offset_end);
            if offsets != expected {
                return Err(format!("{here}: offsets {offsets:?}, mail-parser {expected:?}"));
            }
            if ours.headers.len() != theirs.headers.len() {
                return Err(format!(
                    "{here}: {} header fields, mail-parser {}",
                    ours.headers.len(),
                    theirs.headers.len()
                ));
            }
            match (&ours.body, &theirs.body) {
                (Body::Multipart(a), PartType::Multipart(b)) if a == b => {}
                (Body::Message(a), PartType::Message(b)) => compare(a, b, &here)?,
                (
                    Body::Leaf,
                    PartType::Text(_) | PartType::Html(_) | PartType::Binary(_) | PartType::InlineBinary(_),
                ) => {}
                (a, _) => return Err(format!("{here}: body {a:?} differs from mail-parser's")),
            }
        }
        Ok(())
    }

    fn agree(data: &[u8]) -> Result<(), String> {
        let ours = split(&PARSER, data);
        let theirs = PARSER.parse(data);
        match (&ours, &theirs) {
            (Some(t), Some(m)) => compare(t, m, "0"),
            (None, None) => Ok(()),
            _ => Err(format!("split gave a tree: {}, mail-parser: {}", ours.is_some(), theirs.is_some())),
        }
    }

    fn messages() -> Vec<(String, Vec<u8>)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        let mut dirs = vec![root.join("tests/fixtures"), root.join("fuzz/corpus/mime_walk")];
        // More mail to hold the split to, e.g. a local archive: INSPECT_SPLIT_CORPUS=dir:dir.
        if let Some(extra) = std::env::var_os("INSPECT_SPLIT_CORPUS") {
            dirs.extend(std::env::split_paths(&extra));
        }
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "eml" || e == "msg") {
                    let data = std::fs::read(&path).expect("fixture is readable");
                    out.push((path.display().to_string(), data));
                }
            }
        }
        out.sort();
        out
    }

    const SAMPLE: &[u8] = b"From: a@b.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\n\
hello --inner-not\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--inner--\r\n\r\n--outer\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n\
--d\r\n\r\nSubject: digested\r\n\r\nbody\r\n--d--\r\n--outer\r\nContent-Type: application/zip; name=a.zip\r\n\
Content-Transfer-Encoding: base64\r\n\r\nUEsDBAoAAAAAAA==\r\n--outer--\r\nepilogue\r\n";

    #[test]
    fn the_sample_splits_like_mail_parser() {
        agree(SAMPLE).unwrap();
        let tree = split(&PARSER, SAMPLE).unwrap();
        assert!(matches!(tree.parts[0].body, Body::Multipart(ref c) if c.len() == 3));
        assert!(tree.parts.iter().any(|p| matches!(p.body, Body::Message(_))));
    }

    #[test]
    fn every_fixture_splits_like_mail_parser() {
        let messages = messages();
        assert!(messages.len() > 40, "fixtures found: {}", messages.len());
        let failures: Vec<String> = messages
            .iter()
            .filter_map(|(name, data)| agree(data).err().map(|e| format!("{name}: {e}")))
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Deterministic xorshift, so a failure names a seed that reproduces it.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Cuts, duplicates and corrupts the structure-bearing bytes (dashes, line ends, boundary
    /// parameters, content types) of real messages, where a split goes wrong first.
    #[test]
    fn mutated_messages_split_like_mail_parser() {
        let mut inputs: Vec<Vec<u8>> =
            messages().into_iter().map(|(_, d)| d).filter(|d| d.len() < 200_000).collect();
        inputs.push(SAMPLE.to_vec());
        let pieces: [&[u8]; 12] = [
            b"--",
            b"\n",
            b"\r\n",
            b"\r",
            b"--outer",
            b"--inner--",
            b"\n\n",
            b"Content-Type: message/rfc822\n\n",
            b"Content-Type: multipart/mixed; boundary=\"x\"\n\n--x\n",
            b"--x--",
            b" ",
            b"-",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..5000 {
            let start = seed;
            let mut data = inputs[(next(&mut seed) as usize) % inputs.len()].clone();
            for _ in 0..1 + next(&mut seed) % 4 {
                let at = if data.is_empty() { 0 } else { (next(&mut seed) as usize) % (data.len() + 1) };
                match next(&mut seed) % 4 {
                    0 => data.truncate(at),
                    1 => {
                        let piece = pieces[(next(&mut seed) as usize) % pieces.len()];
                        data.splice(at..at, piece.iter().copied());
                    }
                    2 => {
                        let end = (at + 1 + (next(&mut seed) as usize) % 64).min(data.len());
                        data.drain(at.min(end)..end);
                    }
                    _ => {
                        if let Some(b) = data.get_mut(at) {
                            *b = [b'-', b'\n', b'\r', b'"', b';', 0][(next(&mut seed) as usize) % 6];
                        }
                    }
                }
            }
            if let Err(e) = agree(&data) {
                panic!("round {round} (seed {start:#x}): {e}");
            }
        }
    }
}
