//! The complexity campaign's inputs: for every extractor of the walk and both rule engines, a
//! message built around one pathological pattern (long runs of one delimiter, unclosed
//! constructs, deep nesting, near-miss boundaries, many tiny parts, many URLs, attributes or
//! encoded words), generated at any size. `examples/complexity.rs` times each case at N and
//! 10·N bytes and prints the ratio (linear work gives about 10; above 15 is a bug); the tests
//! (`tests/complexity.rs`) check each case is what it claims and the worst ones under load.
//! Everything is built in memory from scratch.

#![allow(dead_code)]

use super::hostile_inputs::{Member, base64, with_attachment, zip};

/// One campaign case: a name saying the pattern, the stage of the inspection it aims at, and
/// its generator (`size` in bytes of the pathological content; the message is a little larger).
pub struct Case {
    pub name: &'static str,
    pub stage: &'static str,
    pub build: fn(usize) -> Vec<u8>,
}

/// `unit` repeated until `size` bytes.
fn run(unit: &str, size: usize) -> String {
    unit.repeat(size / unit.len().max(1) + 1)
}

/// A single-part message with `headers` (each line ending in `\n`) and `body`.
fn message(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut m =
        format!("From: a@example.org\nTo: b@example.org\nMIME-Version: 1.0\n{headers}\n").into_bytes();
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

fn text(body: &str) -> Vec<u8> {
    message("Subject: text\nContent-Type: text/plain; charset=utf-8\n", body.as_bytes())
}

fn html(body: &str) -> Vec<u8> {
    message("Subject: html\nContent-Type: text/html; charset=utf-8\n", body.as_bytes())
}

fn header(line: &str) -> Vec<u8> {
    message(&format!("{line}\nContent-Type: text/plain\n"), b"body")
}

/// A PDF attachment made of `body` after a PDF header.
fn pdf(body: &str) -> Vec<u8> {
    let mut data = b"%PDF-1.7\n".to_vec();
    data.extend_from_slice(body.as_bytes());
    with_attachment("doc.pdf", "application/pdf", &data)
}

/// A compound file (512-byte sectors) whose header, FAT and directory are all made to send a
/// reader round in long chains: every FAT entry points at the next sector, the directory
/// starts at sector 0 and so runs through every sector, each holding four garbage entries.
fn cfb_long_chains(size: usize) -> Vec<u8> {
    let sectors = (size / 512).max(4);
    let mut d = vec![0u8; 512 * (sectors + 1)];
    d[..8].copy_from_slice(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1");
    d[0x1a..0x1c].copy_from_slice(&3u16.to_le_bytes());
    d[0x1c..0x1e].copy_from_slice(&0xFFFEu16.to_le_bytes());
    d[0x1e..0x20].copy_from_slice(&9u16.to_le_bytes());
    d[0x20..0x22].copy_from_slice(&6u16.to_le_bytes());
    let fat_sectors = sectors.div_ceil(128).min(109);
    d[0x2c..0x30].copy_from_slice(&(fat_sectors as u32).to_le_bytes());
    d[0x30..0x34].copy_from_slice(&0u32.to_le_bytes());
    d[0x38..0x3c].copy_from_slice(&4096u32.to_le_bytes());
    d[0x3c..0x40].copy_from_slice(&0u32.to_le_bytes());
    d[0x44..0x48].copy_from_slice(&0xFFFF_FFFEu32.to_le_bytes());
    for i in 0..109 {
        let s: u32 = if i < fat_sectors { (sectors - fat_sectors + i) as u32 } else { 0xFFFF_FFFF };
        d[0x4c + i * 4..0x50 + i * 4].copy_from_slice(&s.to_le_bytes());
    }
    // FAT: sector i → i + 1, so every chain runs to the end.
    for i in 0..fat_sectors * 128 {
        let at = 512 * (sectors - fat_sectors + i / 128 + 1) + (i % 128) * 4;
        if at + 4 <= d.len() {
            d[at..at + 4].copy_from_slice(&((i + 1) as u32).to_le_bytes());
        }
    }
    // Directory entries named "EncryptionInfo" in every sector before the FAT.
    let name: Vec<u8> = "EncryptionInfo\0".encode_utf16().flat_map(u16::to_le_bytes).collect();
    for s in 0..sectors - fat_sectors {
        for e in 0..4 {
            let at = 512 * (s + 1) + e * 128;
            d[at..at + name.len()].copy_from_slice(&name);
            d[at + 64..at + 66].copy_from_slice(&(name.len() as u16).to_le_bytes());
            d[at + 66] = 2;
            d[at + 116..at + 120].copy_from_slice(&0u32.to_le_bytes());
            d[at + 120..at + 124].copy_from_slice(&4096u32.to_le_bytes());
        }
    }
    with_attachment("doc.doc", "application/msword", &d)
}

/// An OOXML package whose content-types part and relationships list `size` bytes of entries.
fn office_many_entries(size: usize) -> Vec<u8> {
    let types = format!(
        "<?xml version=\"1.0\"?><Types>{}</Types>",
        run(
            "<Override PartName=\"/word/x.xml\" ContentType=\"application/vnd.ms-office.vbaProject\"/>",
            size / 2
        )
    );
    let rels = format!(
        "<?xml version=\"1.0\"?><Relationships>{}</Relationships>",
        run(
            "<Relationship Id=\"r\" Type=\"t\" Target=\"http://x.example/\" TargetMode=\"External\"/>",
            size / 2
        )
    );
    let doc = zip(&[
        Member { name: "[Content_Types].xml", data: types.as_bytes(), deflate: false },
        Member { name: "word/_rels/document.xml.rels", data: rels.as_bytes(), deflate: false },
        Member { name: "word/document.xml", data: b"<w:document/>", deflate: true },
    ]);
    with_attachment("a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", &doc)
}

/// A ZIP with `size / 40` tiny stored members.
fn zip_many_members(size: usize) -> Vec<u8> {
    let names: Vec<String> = (0..size / 40).map(|i| format!("m{i}.txt")).collect();
    let members: Vec<Member<'_>> =
        names.iter().map(|n| Member { name: n, data: b"x", deflate: false }).collect();
    with_attachment("many.zip", "application/zip", &zip(&members))
}

/// Bytes that keep almost looking like a ZIP's records.
fn zip_near_miss(unit: &'static [u8], size: usize) -> Vec<u8> {
    let mut data = b"PK\x03\x04".to_vec();
    while data.len() < size {
        data.extend_from_slice(unit);
    }
    with_attachment("near.zip", "application/zip", &data)
}

/// A multipart whose body is full of lines that almost are its boundary.
fn near_miss_boundaries(size: usize) -> Vec<u8> {
    let boundary = "b".repeat(60);
    let near = format!("--{}\n", &boundary[..59]);
    let mut m = format!(
        "From: a@example.org\nSubject: near\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{boundary}\nContent-Type: text/plain\n\n"
    );
    m.push_str(&run(&near, size));
    m.push_str(&format!("--{boundary}--\n"));
    m.into_bytes()
}

/// A message/rfc822 part whose own header block carries `line`.
fn embedded(line: &str) -> Vec<u8> {
    let mut m = b"From: a@example.org\nSubject: fwd\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: message/rfc822\n\n".to_vec();
    m.extend_from_slice(format!("From: c@example.org\n{line}\n\ninner body\n--b--\n").as_bytes());
    m
}

/// A boundary of `size / 100` dashes (and an `x`) over a body of `size` dashes: every
/// position is a `--` that almost starts the boundary.
fn long_boundary_dashes(size: usize) -> Vec<u8> {
    let boundary = format!("{}x", "-".repeat((size / 100).min(60_000)));
    let mut m = format!(
        "From: a@example.org\nSubject: dashes\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{boundary}\nContent-Type: text/plain\n\n"
    );
    m.push_str(&"-".repeat(size));
    m.push('\n');
    m.into_bytes()
}

/// Many multiparts whose boundaries never appear, then one large part: each search for a
/// missing boundary would cross the rest of the message.
fn boundaries_never_found(size: usize) -> Vec<u8> {
    let mut m = "From: a@example.org\nSubject: missing\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n".to_string();
    for i in 0..(size / 1000).clamp(10, 900) {
        m.push_str(&format!("--b\nContent-Type: multipart/mixed; boundary=\"z{i}\"\n\n"));
    }
    m.push_str("--b\nContent-Type: text/plain\n\n");
    m.push_str(&run("a--", size));
    m.push_str("\n--b--\n");
    m.into_bytes()
}

/// A ZIP whose one member, named with thousands of characters, is a ZIP whose member also
/// is, around many tiny members: every nested path repeats both long names.
fn zip_long_nested_names(size: usize) -> Vec<u8> {
    let names: Vec<String> = (0..(size / 50).max(10)).map(|i| format!("{i}")).collect();
    let inner: Vec<Member<'_>> =
        names.iter().map(|n| Member { name: n, data: b"x", deflate: false }).collect();
    let inner = zip(&inner);
    let long_b = "b".repeat(60_000);
    let middle = zip(&[Member { name: &long_b, data: &inner, deflate: true }]);
    let long_a = "a".repeat(60_000);
    with_attachment(
        "n.zip",
        "application/zip",
        &zip(&[Member { name: &long_a, data: &middle, deflate: true }]),
    )
}

/// `size / 60` attachments each named with many RFC 2231 continuations, listed last first.
fn rfc2231_continuations(size: usize) -> Vec<u8> {
    let pieces = size / 24;
    let mut params = String::new();
    for i in (0..pieces).rev() {
        params.push_str(&format!(";\n filename*{i}*=a%41"));
    }
    message(
        &format!(
            "Subject: 2231\nContent-Type: application/octet-stream\nContent-Disposition: attachment{params}\n"
        ),
        b"x",
    )
}

fn qp(body: &str) -> Vec<u8> {
    message(
        "Subject: qp\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n",
        body.as_bytes(),
    )
}

fn b64(body: &str) -> Vec<u8> {
    message("Subject: b64\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n", body.as_bytes())
}

fn charset(label: &str, body: &[u8]) -> Vec<u8> {
    message(&format!("Subject: charset\nContent-Type: text/plain; charset={label}\n"), body)
}

/// DER with indefinite-length constructed values nested as deep as the bytes allow.
fn smime_nesting(size: usize) -> Vec<u8> {
    let data = b"\x30\x80".repeat(size / 2);
    let mut m = b"From: a@example.org\nSubject: smime\nMIME-Version: 1.0\n\
Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\n\
Content-Transfer-Encoding: base64\n\n"
        .to_vec();
    m.extend_from_slice(base64(&data).as_bytes());
    m
}

/// Every case of the campaign.
pub fn cases() -> Vec<Case> {
    vec![
        // URLs in text.
        Case {
            name: "url-closing-parens",
            stage: "urls",
            build: |n| text(&format!("see http://example.com/a{}", ")".repeat(n))),
        },
        Case {
            name: "url-opening-parens",
            stage: "urls",
            build: |n| text(&format!("see http://example.com/a{}.", "(".repeat(n))),
        },
        Case {
            name: "url-trailing-dots",
            stage: "urls",
            build: |n| text(&format!("see http://example.com/a{}", ".;:!?".repeat(n / 5))),
        },
        Case { name: "url-many", stage: "urls", build: |n| text(&run("http://a.example/x ", n)) },
        Case {
            name: "url-near-miss-schemes",
            stage: "urls",
            build: |n| text(&run("http:/ www hxxp:// ", n)),
        },
        Case {
            name: "url-one-huge",
            stage: "urls",
            build: |n| text(&format!("http://a.example/{}", "a".repeat(n))),
        },
        // HTML.
        Case { name: "html-unclosed-tag", stage: "html", build: |n| html(&format!("<a {}", "b".repeat(n))) },
        Case {
            name: "html-many-attributes",
            stage: "html",
            build: |n| html(&format!("<a {}>x</a>", run("x=1 ", n))),
        },
        Case {
            name: "html-unclosed-quote",
            stage: "html",
            build: |n| html(&format!("<a href=\"{}", "x".repeat(n))),
        },
        Case {
            name: "html-unclosed-comment",
            stage: "html",
            build: |n| html(&format!("<!--{}", "a-".repeat(n / 2))),
        },
        Case { name: "html-comment-starts", stage: "html", build: |n| html(&run("<!--", n)) },
        Case { name: "html-less-than-run", stage: "html", build: |n| html(&"<".repeat(n)) },
        Case { name: "html-deep-nesting", stage: "html", build: |n| html(&run("<div>", n)) },
        Case {
            name: "html-many-anchors",
            stage: "html",
            build: |n| html(&run("<a href=\"http://x.example/p\">http://y.example/</a>", n)),
        },
        Case {
            name: "html-unclosed-script",
            stage: "html",
            build: |n| html(&format!("<script>{}", run("</scrip <", n))),
        },
        Case { name: "html-style-starts", stage: "html", build: |n| html(&run("<style>", n)) },
        Case { name: "html-entities", stage: "html", build: |n| html(&run("&amp;&#x41&#65;&nosuch;&", n)) },
        Case {
            name: "html-hidden-text",
            stage: "signals",
            build: |n| html(&run("<span style=\"display:none;font-size:0\">x</span>", n)),
        },
        Case {
            name: "html-hidden-nesting",
            stage: "signals",
            build: |n| html(&run("<div style=\"font-size:0\"><span style=\"display:none\">x</span>", n)),
        },
        Case { name: "html-open-tags-with-text", stage: "signals", build: |n| html(&run("<td>a", n)) },
        // Sender evidence and bulk structure.
        Case {
            name: "auth-results-many",
            stage: "signals",
            build: |n| {
                header(&format!(
                    "Authentication-Results: mx.example.org; {}",
                    run("dkim=pass header.d=a.example.com;\n ", n)
                ))
            },
        },
        Case {
            name: "auth-results-fields",
            stage: "signals",
            build: |n| {
                header(&run(
                    "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a.example.com\n",
                    n,
                ))
            },
        },
        Case {
            name: "list-unsubscribe-long",
            stage: "signals",
            build: |n| header(&format!("List-Unsubscribe: {}", run("<https://u.example.com/x?a=b>,\n ", n))),
        },
        Case {
            name: "body-brands",
            stage: "signals",
            build: |n| text(&run("paypal microsoft docusign amazon ", n)),
        },
        Case {
            name: "tracked-links",
            stage: "signals",
            build: |n| {
                html(&run(
                    "<a href=\"https://click.example.net/r?url=https%3A%2F%2Fa.example.com%2F\">a.example.com</a>",
                    n,
                ))
            },
        },
        // Headers, encoded words, addresses, parameters.
        Case {
            name: "header-encoded-words",
            stage: "headers",
            build: |n| header(&format!("Subject: {}", run("=?utf-8?q?a=C3=A9?=\n ", n))),
        },
        Case {
            name: "header-unclosed-encoded-words",
            stage: "headers",
            build: |n| header(&format!("Subject: {}", run("=?utf-8?q?", n))),
        },
        Case {
            name: "header-q-word-rescans",
            stage: "headers",
            build: |n| header(&format!("Subject: {}", run("=?ab?q?x", n))),
        },
        Case {
            name: "header-q-word-rescans-embedded",
            stage: "headers",
            build: |n| embedded(&format!("Subject: {}", run("=?ab?q?x", n))),
        },
        Case {
            name: "param-q-word-rescans",
            stage: "headers",
            build: |n| {
                message(
                    &format!("Subject: p\nContent-Type: text/plain; name=\"{}\"\n", run(" =?ab?q?x", n)),
                    b"x",
                )
            },
        },
        Case {
            name: "param-many-continuations",
            stage: "headers",
            build: |n| {
                message(
                    &format!(
                        "Subject: p\nContent-Type: application/octet-stream\nContent-Disposition: attachment{}\n",
                        (1..n / 14).map(|i| format!("; filename*{i}=a")).collect::<String>()
                    ),
                    b"x",
                )
            },
        },
        Case {
            name: "header-many-folds",
            stage: "headers",
            build: |n| header(&format!("Subject: {}", run("a\n ", n))),
        },
        Case { name: "header-many-fields", stage: "headers", build: |n| header(&run("X-Field: value\n", n)) },
        Case {
            name: "header-non-utf8",
            stage: "headers",
            build: |n| {
                let mut m = b"From: a@example.org\nX-Bytes: ".to_vec();
                m.extend(std::iter::repeat_n(0xffu8, n));
                m.extend_from_slice(b"\nSubject: x\n\nbody\n");
                m
            },
        },
        Case {
            name: "address-many",
            stage: "headers",
            build: |n| header(&format!("Cc: {}", run("a@b.example, ", n))),
        },
        Case {
            name: "address-nested-comments",
            stage: "headers",
            build: |n| header(&format!("Reply-To: {}a@b.example", "(".repeat(n))),
        },
        Case {
            name: "address-unclosed-quotes",
            stage: "headers",
            build: |n| header(&format!("Reply-To: {}", run("\"a\\", n))),
        },
        Case {
            name: "address-angle-brackets",
            stage: "headers",
            build: |n| header(&format!("Reply-To: {}", "<".repeat(n))),
        },
        Case { name: "rfc2231-continuations", stage: "headers", build: rfc2231_continuations },
        Case {
            name: "params-many",
            stage: "headers",
            build: |n| message(&format!("Subject: p\nContent-Type: text/plain{}\n", run(";\n a=1", n)), b"x"),
        },
        // MIME structure.
        Case { name: "mime-near-miss-boundaries", stage: "mime", build: near_miss_boundaries },
        Case { name: "mime-long-boundary-dashes", stage: "mime", build: long_boundary_dashes },
        Case { name: "mime-boundaries-never-found", stage: "mime", build: boundaries_never_found },
        Case {
            name: "mime-many-tiny-parts",
            stage: "mime",
            build: |n| super::hostile_inputs::many_parts(n / 40),
        },
        Case {
            name: "mime-deep-multipart",
            stage: "mime",
            build: |n| super::hostile_inputs::deep_multipart(n / 60),
        },
        Case {
            name: "mime-deep-messages",
            stage: "mime",
            build: |n| super::hostile_inputs::deep_messages(n / 45),
        },
        Case {
            name: "mime-bare-line-ends",
            stage: "mime",
            build: |n| {
                let mut m = b"From: a@example.org\r\nSubject: lf\r\n\r\n".to_vec();
                m.extend(std::iter::repeat_n(b'\n', n));
                m
            },
        },
        // Transfer and charset decoding.
        Case { name: "base64-spaced", stage: "decode", build: |n| b64(&run("Q \r\n", n)) },
        Case { name: "base64-blank-lines", stage: "decode", build: |n| b64(&run("    \n", n)) },
        Case { name: "base64-refused-lines", stage: "decode", build: |n| b64(&run("AAAA****\n", n)) },
        Case { name: "base64-garbage", stage: "decode", build: |n| b64(&run("!*~", n)) },
        Case { name: "qp-soft-breaks", stage: "decode", build: |n| qp(&run("=\n", n)) },
        Case { name: "qp-equals-run", stage: "decode", build: |n| qp(&"=".repeat(n)) },
        Case {
            name: "qp-trailing-blanks",
            stage: "decode",
            build: |n| qp(&format!("a{}", " \t".repeat(n / 2))),
        },
        Case {
            name: "charset-utf16-odd",
            stage: "decode",
            build: |n| charset("utf-16", &vec![0xd8u8; n | 1]),
        },
        Case {
            name: "charset-iso-2022-jp-escapes",
            stage: "decode",
            build: |n| charset("iso-2022-jp", run("\x1b$B\x1b(B", n).as_bytes()),
        },
        Case { name: "charset-unknown", stage: "decode", build: |n| charset("x-nosuch", &vec![0xe9u8; n]) },
        // Archives and documents.
        Case { name: "zip-many-members", stage: "archive", build: zip_many_members },
        Case { name: "zip-long-nested-names", stage: "archive", build: zip_long_nested_names },
        Case {
            name: "zip-end-record-near-miss",
            stage: "archive",
            build: |n| zip_near_miss(b"PK\x05\x06", n),
        },
        Case { name: "zip-central-near-miss", stage: "archive", build: |n| zip_near_miss(b"PK\x01\x02", n) },
        Case { name: "office-many-entries", stage: "archive", build: office_many_entries },
        Case { name: "cfb-long-chains", stage: "document", build: cfb_long_chains },
        Case { name: "pdf-many-objects", stage: "document", build: |n| pdf(&run("1 0 obj<<>>endobj\n", n)) },
        Case {
            name: "pdf-many-encrypt-keys",
            stage: "document",
            build: |n| pdf(&run("/Encrypt 1 0 R\n", n)),
        },
        Case {
            name: "pdf-many-trailers",
            stage: "document",
            build: |n| pdf(&run("trailer<</Prev 9>>\nstartxref\n9\n", n)),
        },
        Case {
            name: "pdf-number-run",
            stage: "document",
            build: |n| pdf(&format!("/Encrypt 7 0 R\n{}", run("1 ", n))),
        },
        Case {
            name: "pdf-unclosed-dicts",
            stage: "document",
            build: |n| pdf(&format!("/Encrypt {}", "<<".repeat(n / 2))),
        },
        Case {
            name: "pdf-unclosed-string",
            stage: "document",
            build: |n| pdf(&format!("/Encrypt <</O ({}", "(".repeat(n))),
        },
        Case { name: "smime-deep-der", stage: "document", build: smime_nesting },
        Case {
            name: "pgp-armour-starts",
            stage: "document",
            build: |n| text(&run("-----BEGIN PGP MESSAGE-----\n", n)),
        },
        // The rule engines: text that keeps the regex pack's and YARA's patterns busy.
        Case {
            name: "rules-phrase-near-misses",
            stage: "regex",
            build: |n| text(&run("verify your accoun passwor urgen paymen invoic ", n)),
        },
        Case { name: "rules-long-line", stage: "regex", build: |n| text(&"a".repeat(n)) },
        Case {
            name: "rules-binary-attachment",
            stage: "yara",
            build: |n| {
                with_attachment(
                    "a.bin",
                    "application/octet-stream",
                    &run("MZ\u{90}\0PE\0\0This program", n).into_bytes(),
                )
            },
        },
    ]
}
