//! A deterministic corpus of realistic mail for benchmarks, so that every number (the
//! criterion benches, the load generator, the peer comparison) is measured on the same bytes
//! without downloading anything.
//!
//! The mix follows what a mail server sees: plain text (45%), HTML newsletters with a text
//! alternative (27%), messages with a base64 attachment of 100 KB to 2 MB (PDF-like, ZIP,
//! DOCX-like, PNG-like; 23%) and a few large ones of 1.4 to 5 MB (5%). That gives a median near
//! 20 KB, a mean near 270 KB and a maximum near 5 MB. About half carry trigger text for the
//! peer rule set (`benches/peers/rules.tsv`): phishing phrases in subject or body, suspicious
//! attachment names, and the EICAR test file stored inside some ZIP attachments (for the YARA
//! pack). The same seed gives byte-identical messages on every run.

// Each user (bench, load generator, corpus writer) uses part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

/// The seed the published numbers were measured with.
pub const DEFAULT_SEED: u64 = 20240601;

/// One generated message.
pub struct Generated {
    /// `msg-0001.eml`, …
    pub name: String,
    /// The message with LF line ends, as it would sit in a file.
    pub bytes: Vec<u8>,
    /// `plain`, `html`, `attach` or `large`.
    pub kind: &'static str,
    /// The peer rules (and `ZIP_WITH_EICAR`) this message should trigger.
    pub markers: Vec<&'static str>,
}

/// `count` messages from `seed`, generated one at a time.
pub fn generate(seed: u64, count: usize) -> impl Iterator<Item = Generated> {
    let mut rng = Rng::new(seed);
    (1..=count).map(move |i| {
        let (bytes, markers, kind) = make_message(&mut rng, i);
        Generated { name: format!("msg-{i:04}.eml"), bytes, kind, markers }
    })
}

/// Writes `count` messages and a `manifest.tsv` into `dir` (removing `*.eml` already there)
/// and returns a one-line summary.
pub fn write_dir(dir: &Path, seed: u64, count: usize) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "eml") {
            std::fs::remove_file(path)?;
        }
    }
    let mut manifest = String::from("file\tkind\tbytes\tmarkers\n");
    let mut sizes = Vec::new();
    for m in generate(seed, count) {
        std::fs::File::create(dir.join(&m.name))?.write_all(&m.bytes)?;
        let markers = if m.markers.is_empty() { "-".to_string() } else { m.markers.join(",") };
        manifest.push_str(&format!("{}\t{}\t{}\t{markers}\n", m.name, m.kind, m.bytes.len()));
        sizes.push(m.bytes.len());
    }
    std::fs::write(dir.join("manifest.tsv"), manifest)?;
    Ok(summary(&sizes))
}

/// Count, total, mean, median and maximum size of a corpus.
pub fn summary(sizes: &[usize]) -> String {
    let mut s = sizes.to_vec();
    s.sort_unstable();
    if s.is_empty() {
        return "no messages".to_string();
    }
    let total: usize = s.iter().sum();
    format!(
        "{} messages, {:.1} MB, mean {:.1} KiB, median {:.1} KiB, max {:.2} MB",
        s.len(),
        total as f64 / 1e6,
        total as f64 / s.len() as f64 / 1024.0,
        s[s.len() / 2] as f64 / 1024.0,
        s[s.len() - 1] as f64 / 1e6
    )
}

/// xoshiro256** seeded through splitmix64: small, fast, and the same everywhere.
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    pub fn u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    pub fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.u64() % items.len() as u64) as usize]
    }

    /// Log-normal with the given mean and sigma of the underlying normal (Box–Muller).
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        let u1 = self.f64().max(f64::MIN_POSITIVE);
        let u2 = self.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (mu + sigma * z).exp()
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

const WORDS: &str = "the of and to in is that for it as with was on be by this are from at or have an \
not they which one you were all we her she there been if more when will would who so no \
report meeting quarter budget project review update schedule team client order invoice \
delivery shipment account service customer support please thanks regards attached document \
draft version final approval request question answer issue ticket release deploy server \
network storage backup policy security training office travel expense lunch coffee agenda \
minutes notes summary figures revenue forecast sales marketing campaign product launch \
design feedback comments changes proposal contract terms price quote discount payment due \
monday tuesday wednesday thursday friday next week month year today tomorrow morning \
afternoon evening call conference room building floor desk laptop phone email message \
reply forward list group department manager director staff colleague partner vendor \
supplier warehouse inventory stock item quantity unit total amount balance statement \
bank transfer record file folder share link access permission login user password reset \
system upgrade maintenance window outage incident resolved pending open closed priority \
high low medium normal important urgent information details available information data \
analysis chart table slide presentation spreadsheet workbook template form signature";

/// Trigger text per peer rule; `{n}` is replaced by a number.
const SUBJECT_TRIGGERS: &[(&str, &str)] = &[
    ("SUBJ_URGENT_PAYMENT", "URGENT: outstanding payment for order {n}"),
    ("SUBJ_ACCOUNT_SUSPENDED", "Your account suspended - action needed"),
    ("SUBJ_VERIFY_IDENTITY", "Please verify your mailbox today"),
    ("SUBJ_PASSWORD_EXPIRE", "Your password will expire in 2 days"),
    ("SUBJ_WIRE_TRANSFER", "Wire transfer confirmation {n}"),
    ("SUBJ_LOTTERY", "Congratulations lottery winner"),
    ("SUBJ_GIFT_CARD", "Quick favour: gift cards for the team"),
    ("SUBJ_CRYPTO", "Double your Bitcoin in 24h"),
    ("SUBJ_DELIVERY_FAIL", "Shipment on hold: update address"),
    ("SUBJ_INVOICE_OVERDUE", "Invoice #{n} is overdue"),
    ("SUBJ_FREE_OFFER", "Free 30-day trial offer inside"),
    ("SUBJ_MANY_EXCLAIM", "Last chance!!! Sale ends tonight"),
    ("SUBJ_RE_FWD_CHAIN", "RE: Fwd: RE: quarterly numbers"),
    ("SUBJ_DOCUSIGN", "DocuSign: please review and sign"),
    ("SUBJ_TAX_REFUND", "Your tax refund is ready"),
];

const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

const BODY_TRIGGERS: &[(&str, &str)] = &[
    ("BODY_EICAR_TEXT", EICAR),
    ("BODY_PHISH_LOGIN_URL", "Sign in at https://mail.secure-login-verify.xyz/owa/ to keep access."),
    ("BODY_CLICK_HERE", "Click here to verify your details before Friday."),
    ("BODY_WIRE_INSTR", "Beneficiary IBAN: DE44500105175407324931 SWIFT code: DEUTDEFF500"),
    ("BODY_BTC_ADDR", "Send the fee to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT today."),
    ("BODY_PASSWORD_REQ", "Reply and confirm your password so we can restore service."),
    ("BODY_URGENT_ACTION", "Immediate action required on your mailbox quota."),
    ("BODY_ACCOUNT_CLOSE", "Your account will be suspended within 24 hours."),
    ("BODY_GIFTCARD_CODES", "Buy five Google Play gift cards and send me the codes."),
    ("BODY_CEO_FRAUD", "Are you at your desk? I need a quick favour."),
    ("BODY_UNSUB_LINK", "To stop receiving these emails unsubscribe here."),
    ("BODY_LOTTERY_WIN", "You have been selected as the winner of our draw."),
    ("BODY_INHERITANCE", "Contact me about the inheritance fund of my late client."),
    ("BODY_PHARMA", "Cheap viagra and cialis shipped overnight."),
    ("BODY_SHORTENER", "Details: https://bit.ly/3xQz9Lp"),
    ("BODY_IP_URL", "Portal: http://203.0.113.77/login/index.php"),
    ("BODY_CREDIT_CARD", "Card on file 4111 1111 1111 1111 exp 04/27"),
    ("BODY_SSN", "Employee SSN 078-05-1120 for the payroll form."),
    ("BODY_CONFIDENTIAL", "This matter is strictly confidential, tell nobody."),
    ("BODY_DOC_SHARED", "Anna shared a document with you via OneDrive."),
    ("BODY_MACRO_ENABLE", "If the text is unreadable please enable editing and content."),
    ("BODY_OFFICE365", "Office 365 password verification is needed."),
    ("BODY_DATA_URI", "Open: data:text/html;base64,PGgxPkxvZ2luPC9oMT4="),
    ("BODY_JS_EVAL", "Paste eval(atob('YWxlcnQoMSk=')) into the console."),
    ("BODY_BENCH_MARKER", "ref zz-bench-marker-{n}"),
];

const FILENAME_TRIGGERS: &[(&str, &str)] = &[
    ("FILE_EXE", "setup_update.exe"),
    ("FILE_DOUBLE_EXT", "scan_0042.pdf.exe"),
    ("FILE_SCRIPT", "order_details.js"),
    ("FILE_MACRO_DOC", "salary_review.xlsm"),
    ("FILE_ARCHIVE", "photos.zip"),
    ("FILE_ISO_IMG", "backup_disk.iso"),
    ("FILE_INVOICE_NAME", "invoice_20931.pdf"),
    ("FILE_LNK", "readme.lnk"),
    ("FILE_HTML_ATTACH", "secure_message.html"),
    ("FILE_LONG_SPACES", "statement.pdf          .scr"),
];

const FIRST: &[&str] = &[
    "anna", "ben", "carla", "david", "emma", "felix", "greta", "hugo", "ines", "jonas", "karin", "liam",
    "mia", "noah", "olga", "paul", "rosa", "sven", "tina", "uwe",
];
const DOMAINS: &[&str] =
    &["example.com", "example.org", "example.net", "corp.example", "mail.example", "shop.example"];

/// About `n` words of office prose in sentences and paragraphs, wrapped at 72 columns.
fn words(rng: &mut Rng, n: usize) -> String {
    let vocabulary: Vec<&str> = WORDS.split_whitespace().collect();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut line: Vec<String> = Vec::new();
    for _ in 0..n {
        let w = *rng.pick(&vocabulary);
        let mut w = w.to_string();
        if line.is_empty() {
            w[..1].make_ascii_uppercase();
        }
        line.push(w);
        if rng.f64() < 0.07 {
            let mut sentence = line.join(" ");
            sentence.push('.');
            paragraphs.push(sentence);
            line.clear();
            if rng.f64() < 0.15 {
                paragraphs.push(String::new());
            }
        }
    }
    if !line.is_empty() {
        paragraphs.push(line.join(" ") + ".");
    }
    let mut out = String::with_capacity(n * 7);
    for para in &paragraphs {
        let mut width = 0;
        for (i, w) in para.split(' ').enumerate() {
            if i > 0 && width + w.len() + 1 > 72 {
                out.push('\n');
                width = 0;
            } else if i > 0 {
                out.push(' ');
                width += 1;
            }
            out.push_str(w);
            width += w.len();
        }
        out.push('\n');
    }
    out.pop();
    out
}

fn text_of_size(rng: &mut Rng, n: usize) -> String {
    let mut t = words(rng, (n / 6).max(5));
    let mut cut = n.min(t.len());
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t.truncate(cut);
    t
}

/// Inserts each trigger line at a random line of `text`.
fn insert_lines(rng: &mut Rng, text: &str, extra: &[String]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for t in extra {
        let at = rng.range(0, lines.len());
        lines.insert(at, t.clone());
    }
    lines.join("\n")
}

pub fn base64_lines(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = Vec::with_capacity(data.len() / 3 * 4 + 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(ALPHABET[(v >> (18 - 6 * i)) as usize & 63]);
            } else {
                encoded.push(b'=');
            }
        }
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    for (i, line) in encoded.chunks(76).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
    }
    out
}

/// Quoted-printable with soft line breaks at 76 columns.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 20);
    for line in text.split('\n') {
        let mut width = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let piece = if b == b'=' || b >= 0x7f || (b < 0x20 && b != b'\t') || (last && b == b' ') {
                format!("={b:02X}")
            } else {
                (b as char).to_string()
            };
            if width + piece.len() > 75 {
                out.push_str("=\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        out.push('\n');
    }
    out.pop();
    out
}

fn pdf_like(rng: &mut Rng, n: usize) -> Vec<u8> {
    let head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n";
    let block = rng.bytes(n.min(4096));
    let mut out = head.to_vec();
    let body_len = n.saturating_sub(head.len() + 6);
    while out.len() < head.len() + body_len {
        let take = (head.len() + body_len - out.len()).min(block.len());
        out.extend_from_slice(&block[..take]);
    }
    out.extend_from_slice(b"\n%%EOF\n");
    out
}

fn png_like(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&rng.bytes(n.min(2048)));
    while out.len() < n {
        let take = (n - out.len()).min(out.len() - 8);
        out.extend_from_within(8..8 + take);
    }
    out.truncate(n);
    out
}

/// A ZIP archive of stored (uncompressed) members of random bytes, `n` bytes or a little more.
fn zip_bytes(rng: &mut Rng, n: usize, with_eicar: bool) -> Vec<u8> {
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    if with_eicar {
        members.push(("eicar.com".to_string(), EICAR.as_bytes().to_vec()));
    }
    let mut size = 0;
    let mut k = 0;
    while size < n && k <= 200 {
        let len = n.saturating_sub(size).clamp(1024, 65536);
        members.push((format!("data/part{k:03}.bin"), rng.bytes(len)));
        size += len + 76;
        k += 1;
    }
    zip_stored(&members)
}

/// Writes members as a ZIP file without compression (DOS time 2024-01-01 00:00).
fn zip_stored(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    const TIME: u16 = 0;
    const DATE: u16 = ((2024 - 1980) << 9) | (1 << 5) | 1;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let size = data.len() as u32;
        let fixed = |sig: u32, out: &mut Vec<u8>, central: bool| {
            out.extend_from_slice(&sig.to_le_bytes());
            if central {
                out.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            out.extend_from_slice(&20u16.to_le_bytes()); // needed to extract
            out.extend_from_slice(&0u16.to_le_bytes()); // flags
            out.extend_from_slice(&0u16.to_le_bytes()); // stored
            out.extend_from_slice(&TIME.to_le_bytes());
            out.extend_from_slice(&DATE.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // extra
        };
        fixed(0x0403_4b50, &mut out, false);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        fixed(0x0201_4b50, &mut central, true);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn title_case(name: &str) -> String {
    name.split('.')
        .map(|w| {
            let mut w = w.to_string();
            w[..1].make_ascii_uppercase();
            w
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn headers(rng: &mut Rng, i: usize, subject: &str, content_type: &str) -> String {
    let sender = format!("{}.{}@{}", rng.pick(FIRST), rng.pick(FIRST), rng.pick(DOMAINS));
    let (local, domain) = sender.split_once('@').expect("an address");
    let rcpt_count = *rng.pick(&[1, 1, 1, 2, 3]);
    let rcpts: Vec<String> =
        (0..rcpt_count).map(|_| format!("{}@{}", rng.pick(FIRST), rng.pick(DOMAINS))).collect();
    let day = 1 + i % 28;
    let mut h = Vec::new();
    for hop in 0..*rng.pick(&[2, 3, 4]) {
        h.push(format!(
            "Received: from relay{hop}.{} (relay{hop}.{} [198.51.100.{}])\n\tby mx{hop}.example.net (Postfix) with ESMTPS id 4T{:010X}\n\tfor <{}>; Mon, {day} Apr 2024 10:{hop:02}:{} +0000",
            rng.pick(DOMAINS),
            rng.pick(DOMAINS),
            rng.range(1, 254),
            rng.u64() & 0xff_ffff_ffff,
            rcpts[0],
            rng.range(10, 59)
        ));
    }
    let sig = base64_lines(&rng.bytes(256)).replace('\n', "");
    h.push(format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain};\n\ts=sel1; h=from:to:subject:date:message-id;\n\tbh={};\n\tb={}\n\t {}",
        &sig[..44],
        &sig[44..120],
        &sig[120..200]
    ));
    h.push(format!("Date: Mon, {day} Apr 2024 10:{}:{} +0000", rng.range(10, 59), rng.range(10, 59)));
    h.push(format!("From: \"{}\" <{sender}>", title_case(local)));
    h.push(format!("To: {}", rcpts.iter().map(|r| format!("<{r}>")).collect::<Vec<_>>().join(", ")));
    h.push(format!("Subject: {subject}"));
    h.push(format!("Message-ID: <{:016x}.{i}@{domain}>", rng.u64()));
    if rng.f64() < 0.5 {
        let mailer = rng.pick(&[
            "Microsoft Outlook 16.0",
            "Apple Mail (2.3731)",
            "Thunderbird 115.9",
            "Roundcube Webmail/1.6",
        ]);
        h.push(format!("X-Mailer: {mailer}"));
    }
    if rng.f64() < 0.3 {
        h.push(format!("List-Unsubscribe: <mailto:unsubscribe@{}>", rng.pick(DOMAINS)));
    }
    h.push("MIME-Version: 1.0".to_string());
    h.push(content_type.to_string());
    h.join("\n")
}

fn make_message(rng: &mut Rng, i: usize) -> (Vec<u8>, Vec<&'static str>, &'static str) {
    let n = rng.range(10000, 99999).to_string();
    let vocabulary: Vec<&str> = WORDS.split_whitespace().collect();
    let mut markers = Vec::new();
    let count = rng.range(3, 8);
    let mut subject = (0..count).map(|_| *rng.pick(&vocabulary)).collect::<Vec<_>>().join(" ");
    subject[..1].make_ascii_uppercase();
    let mut extra: Vec<String> = Vec::new();
    if rng.f64() < 0.12 {
        let (name, template) = *rng.pick(SUBJECT_TRIGGERS);
        subject = template.replace("{n}", &n);
        markers.push(name);
    }
    if rng.f64() < 0.25 {
        for _ in 0..*rng.pick(&[1, 1, 2, 3]) {
            let (name, template) = *rng.pick(BODY_TRIGGERS);
            if name == "BODY_EICAR_TEXT" && rng.f64() < 0.5 {
                continue;
            }
            extra.push(template.replace("{n}", &n[..4]));
            markers.push(name);
        }
    }
    if rng.f64() < 0.04 {
        extra.push(BODY_TRIGGERS[1].1.to_string());
        markers.push("BODY_PHISH_LOGIN_URL");
    }
    let kind = rng.f64();
    let boundary = format!("=_b{:012x}", rng.u64() & 0xffff_ffff_ffff);
    if kind < 0.45 {
        let size = rng.lognormal(9.0, 0.9).clamp(600.0, 60000.0) as usize;
        let prose = text_of_size(rng, size);
        let text = insert_lines(rng, &prose, &extra);
        let h = headers(
            rng,
            i,
            &subject,
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit",
        );
        return (format!("{h}\n\n{text}\n").into_bytes(), markers, "plain");
    }
    if kind < 0.72 {
        let size = rng.lognormal(9.9, 0.7).clamp(3000.0, 120000.0) as usize;
        let prose = text_of_size(rng, size / 2);
        let text = insert_lines(rng, &prose, &extra);
        let paras: String = text
            .split("\n\n")
            .map(|p| format!("<p style=\"margin:0 0 12px 0;font-family:Arial\">{p}</p>\n"))
            .collect();
        let html = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{{font:14px Arial}}</style></head><body>\n<table width=\"100%\"><tr><td>{paras}</td></tr></table>\n<a href=\"https://www.{}/newsletter?id={n}\">View online</a></body></html>",
            rng.pick(DOMAINS)
        );
        let html_part = if rng.f64() < 0.7 {
            format!(
                "--{boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}",
                quoted_printable(&html)
            )
        } else {
            format!(
                "--{boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{}",
                base64_lines(html.as_bytes())
            )
        };
        let body = format!(
            "This is a multi-part message in MIME format.\n\n--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}\n{html_part}\n--{boundary}--\n",
            quoted_printable(&text)
        );
        let h = headers(
            rng,
            i,
            &subject,
            &format!("Content-Type: multipart/alternative;\n\tboundary=\"{boundary}\""),
        );
        return (format!("{h}\n\n{body}").into_bytes(), markers, "html");
    }
    let (att_size, category) = if kind < 0.95 {
        (rng.lognormal(12.4, 0.8).clamp(100_000.0, 2_000_000.0) as usize, "attach")
    } else {
        (rng.range(1_000_000, 3_700_000), "large")
    };
    let t = rng.f64();
    let (mut filename, content_type, data) = if t < 0.45 {
        (format!("document_{n}.pdf"), "application/pdf", pdf_like(rng, att_size))
    } else if t < 0.70 {
        let eicar = rng.f64() < 0.15;
        if eicar {
            markers.push("ZIP_WITH_EICAR");
        }
        (format!("files_{n}.zip"), "application/zip", zip_bytes(rng, att_size, eicar))
    } else if t < 0.85 {
        (
            format!("report_{n}.docx"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            zip_bytes(rng, att_size, false),
        )
    } else {
        (format!("IMG_{n}.png"), "image/png", png_like(rng, att_size))
    };
    if rng.f64() < 0.25 {
        let (rule, name) = *rng.pick(FILENAME_TRIGGERS);
        markers.push(rule);
        filename = name.to_string();
    }
    let size = rng.lognormal(7.5, 0.8).max(400.0) as usize;
    let prose = text_of_size(rng, size);
    let text = insert_lines(rng, &prose, &extra);
    let body = format!(
        "This is a multi-part message in MIME format.\n\n--{boundary}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n{text}\n--{boundary}\nContent-Type: {content_type}; name=\"{filename}\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"{filename}\"\n\n{}\n--{boundary}--\n",
        base64_lines(&data)
    );
    let h = headers(rng, i, &subject, &format!("Content-Type: multipart/mixed;\n\tboundary=\"{boundary}\""));
    (format!("{h}\n\n{body}").into_bytes(), markers, category)
}
