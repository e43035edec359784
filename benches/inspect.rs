//! The benchmarks: the milter codec and session, the MIME walk, each rule engine, the whole
//! inspection, the same work done by the libraries alone (mail-parser, base64, yara-x: the
//! floor the engine is measured against), and how scanning cost grows with the rule count.
//!
//! ```sh
//! cargo bench --bench inspect                       # everything
//! cargo bench --bench inspect -- 'walk|engine'      # a filter (regex over the names)
//! cargo bench --bench inspect -- scaling --sample-size 10
//! ```
//!
//! Every input comes from the deterministic corpus (`corpus.rs`, the same as the load
//! generator's) and the peer comparison's regex rules (`peers/inspect-milter/`), so numbers
//! can be compared across commits.

mod corpus;

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mail_parser::MimeHeaders as _;

use inspect_milter::config::Config;
use inspect_milter::inspect::yara::ScanContext;
use inspect_milter::inspect::{Limits, walk};
use inspect_milter::milter::codec;
use inspect_milter::milter::command::{Command, Family};
use inspect_milter::milter::session::{Session, Step};
use inspect_milter::milter::{Envelope, Verdict};
use inspect_milter::mta::Message;
use inspect_milter::pipeline::Pipeline;
use inspect_milter::rules::{CompileOptions, RuleSet, Source, compile};

/// Messages taken from the corpus for the per-message benches: enough for every kind.
const SAMPLE: usize = 60;

const PEER_RULES: &str = include_str!("peers/inspect-milter/peer-rules.yaml");
/// The shipped YARA pack, all of it (one source: each file's imports are repeated, which YARA
/// allows).
const SHIPPED_YARA: &str = concat!(
    include_str!("../rules/attachments.yar"),
    "\n",
    include_str!("../rules/html.yar"),
    "\n",
    include_str!("../rules/obfuscation.yar"),
    "\n",
    include_str!("../rules/office.yar"),
    "\n",
    include_str!("../rules/pdf.yar"),
    "\n",
    include_str!("../rules/test-signatures.yar"),
);
const SHIPPED_REGEX: &str = include_str!("../rules/test-signatures.yaml");

fn sources(yara: &str, regex: &[String]) -> Vec<Source> {
    let mut out = vec![Source { origin: "shipped.yar".into(), text: yara.into() }];
    out.push(Source { origin: "shipped.yaml".into(), text: SHIPPED_REGEX.into() });
    for (i, text) in regex.iter().enumerate() {
        out.push(Source { origin: format!("extra{i}.yaml"), text: text.clone() });
    }
    out
}

fn ruleset(yara: &str, regex: &[String]) -> Arc<RuleSet> {
    let (set, diags) = compile(&sources(yara, regex), CompileOptions::default());
    Arc::new(set.unwrap_or_else(|| panic!("rules do not compile: {diags:?}")))
}

/// The benchmark rules: the shipped pack plus the peers' regex rules.
fn bench_rules() -> Arc<RuleSet> {
    ruleset(SHIPPED_YARA, &[PEER_RULES.to_string()])
}

/// Raw messages as the daemon holds them at end of message (CRLF line ends).
fn sample() -> Vec<Vec<u8>> {
    corpus::generate(corpus::DEFAULT_SEED, SAMPLE)
        .map(|m| {
            let mut crlf = Vec::with_capacity(m.bytes.len() + m.bytes.len() / 40);
            for &b in &m.bytes {
                if b == b'\n' {
                    crlf.push(b'\r');
                }
                crlf.push(b);
            }
            crlf
        })
        .collect()
}

fn total_bytes(messages: &[Vec<u8>]) -> u64 {
    messages.iter().map(|m| m.len() as u64).sum()
}

fn envelope() -> Envelope {
    Envelope {
        sender: "sender@example.test".into(),
        recipients: vec!["rcpt@example.test".into()],
        helo: Some("load.example".into()),
        ..Envelope::default()
    }
}

/// One MTA conversation for a message, as the bytes on the wire.
fn conversation(raw: &[u8]) -> Vec<u8> {
    let m = Message::from_eml(raw);
    let mut out = Vec::new();
    Command::OptNeg { version: 6, actions: 0x1ff, protocol: 0 }.encode(&mut out);
    Command::Connect { hostname: b"unknown", family: Family::Inet, port: 4000, address: b"192.0.2.1" }
        .encode(&mut out);
    Command::Helo(b"load.example").encode(&mut out);
    Command::Mail(vec![&b"<sender@example.test>"[..]]).encode(&mut out);
    Command::Rcpt(vec![&b"<rcpt@example.test>"[..]]).encode(&mut out);
    Command::Data.encode(&mut out);
    for (name, value) in &m.headers {
        Command::Header { name: &name[..], value: &value[..] }.encode(&mut out);
    }
    Command::EndOfHeaders.encode(&mut out);
    for chunk in m.body.chunks(65535) {
        Command::Body(chunk).encode(&mut out);
    }
    Command::EndOfMessage(b"").encode(&mut out);
    out
}

fn codec(c: &mut Criterion) {
    let messages = sample();
    let streams: Vec<Vec<u8>> = messages.iter().map(|m| conversation(m)).collect();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(streams.iter().map(|s| s.len() as u64).sum()));
    g.bench_function("decode+parse", |b| {
        b.iter(|| {
            let mut packets = 0usize;
            for s in &streams {
                let mut at = 0;
                while let Ok(Some((packet, used))) = codec::decode(&s[at..]) {
                    packets += usize::from(Command::parse(packet).is_ok());
                    at += used;
                }
            }
            packets
        })
    });
    g.bench_function("session", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for s in &streams {
                let mut session = Session::new(64 << 20);
                let mut at = 0;
                while let Ok(Some((packet, used))) = codec::decode(&s[at..]) {
                    at += used;
                    let Ok(command) = Command::parse(packet) else { break };
                    if let Ok(Step::Filter(eom)) = session.handle(command) {
                        bytes += eom.message.len();
                        let _ = session.finish(Verdict::accept());
                    }
                }
            }
            bytes
        })
    });
    g.finish();
}

fn walk_bench(c: &mut Criterion) {
    let messages = sample();
    let limits = Limits::default();
    let mut g = c.benchmark_group("walk");
    g.throughput(Throughput::Bytes(total_bytes(&messages)));
    g.bench_function("corpus-sample", |b| {
        b.iter(|| messages.iter().map(|m| walk(m, &limits).targets.len()).sum::<usize>())
    });
    g.finish();
}

fn engines(c: &mut Criterion) {
    let messages = sample();
    let limits = Limits::default();
    let rules = bench_rules();
    let walks: Vec<_> = messages.iter().map(|m| walk(m, &limits)).collect();
    let env = envelope();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Bytes(total_bytes(&messages)));
    g.bench_function("regex", |b| {
        b.iter(|| {
            walks
                .iter()
                .map(|w| {
                    inspect_milter::inspect::regex::scan(
                        &rules.regex,
                        &w.targets,
                        &env,
                        &w.anomalies,
                        &w.uninspectable,
                    )
                    .len()
                })
                .sum::<usize>()
        })
    });
    let yara = rules.yara.as_ref().expect("the shipped pack has YARA rules");
    g.bench_function("yara", |b| {
        b.iter(|| {
            let far = inspect_milter::inspect::Deadline::after(Duration::from_secs(60));
            walks
                .iter()
                .map(|w| {
                    inspect_milter::inspect::yara::scan(yara, &w.targets, &ScanContext::default(), far)
                        .0
                        .len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

fn whole(c: &mut Criterion) {
    let messages = sample();
    let pipeline = Pipeline::new(bench_rules(), &Config::default());
    let env = envelope();
    let mut g = c.benchmark_group("inspection");
    g.throughput(Throughput::Bytes(total_bytes(&messages)));
    g.bench_function("pipeline", |b| {
        b.iter(|| {
            messages
                .iter()
                .map(|m| {
                    let report = pipeline.run(m, &env, false, m.len() as u64);
                    pipeline.verdict(&report, m).headers.len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

/// The same bytes through the libraries alone: mail-parser for the structure, the base64
/// crate for transfer decoding, yara-x over the header block and every decoded part, and the
/// peer rules' regex sets over subject, text and file names. No coverage, anomalies, HTML
/// text, URLs, archives or report: the floor under the engine's cost.
fn sum_of_parts(c: &mut Criterion) {
    use base64::Engine as _;
    let messages = sample();
    let rules = bench_rules();
    let yara = &rules.yara.as_ref().expect("YARA rules").rules;
    let sets = &rules.regex.sets;
    let set = |name: &str| sets.get(&name.parse().expect("a target name"));
    let (subject_set, body_set, name_set) = (set("subject"), set("body"), set("attachment.name"));
    let parser = mail_parser::MessageParser::new()
        .header_content_type(mail_parser::HeaderName::ContentType)
        .header_content_type(mail_parser::HeaderName::ContentDisposition)
        .ignore_header(mail_parser::HeaderName::ContentTransferEncoding);
    let mut g = c.benchmark_group("inspection");
    g.throughput(Throughput::Bytes(total_bytes(&messages)));
    g.bench_function("sum-of-parts", |b| {
        let mut scanner = yara_x::Scanner::new(yara);
        b.iter(|| {
            let mut found = 0usize;
            for raw in &messages {
                let Some(msg) = parser.parse(raw.as_slice()) else { continue };
                let header_end = msg.parts.first().map_or(0, |p| p.offset_body as usize);
                found += scanner.scan(&raw[..header_end]).map_or(0, |r| r.matching_rules().len());
                if let (Some(s), Some(subject)) = (subject_set, msg.subject()) {
                    found += s.matches(subject.as_bytes()).len();
                }
                for part in &msg.parts {
                    if matches!(part.body, mail_parser::PartType::Multipart(_)) {
                        continue;
                    }
                    let body = &raw[part.offset_body as usize..part.offset_end as usize];
                    let encoding = part
                        .headers
                        .iter()
                        .find(|h| h.name == mail_parser::HeaderName::ContentTransferEncoding)
                        .map(|h| raw[h.offset_start as usize..h.offset_end as usize].to_ascii_lowercase());
                    let decoded: Vec<u8> = if encoding.as_deref().is_some_and(|e| e.trim_ascii() == b"base64")
                    {
                        let compact: Vec<u8> =
                            body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
                        base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_default()
                    } else {
                        body.to_vec()
                    };
                    found += scanner.scan(&decoded).map_or(0, |r| r.matching_rules().len());
                    if let Some(name) = part.attachment_name() {
                        found += name_set.map_or(0, |s| s.matches(name.as_bytes()).len());
                    } else if let Some(s) = body_set {
                        found += s.matches(&decoded).len();
                    }
                }
            }
            found
        })
    });
    g.finish();
}

/// Regex rules that look like real ones: case-insensitive word sequences over the peers'
/// targets, deterministic for a count.
pub fn generated_regex_rules(count: usize) -> String {
    let mut rng = corpus::Rng::new(count as u64);
    let words: Vec<&str> = "account access action address alert amount approve balance bank billing \
        blocked bonus business cancel card cash check claim click code confirm contact credit \
        customer deadline delivery deposit document download email expire fax final free fund \
        gift immediately important invoice limited locked login lottery mailbox money notice \
        offer order package password payment pending personal prize profile purchase quota \
        receipt refund release renew request reset restore review reward secure security \
        shipment sign statement storage suspend tax transfer unlock update upgrade urgent \
        validate verify voicemail wallet warning winner wire"
        .split_whitespace()
        .collect();
    let targets = ["subject", "body", "body", "attachment.name"];
    let mut out = String::from("rules:\n");
    for i in 0..count {
        let target = *rng.pick(&targets);
        let pattern = if target == "attachment.name" {
            format!("^{}[-_ ]?[0-9]*\\.(pdf|zip|exe|html?)$", rng.pick(&words))
        } else {
            let n = rng.range(2, 3);
            let parts: Vec<&str> = (0..n).map(|_| *rng.pick(&words)).collect();
            format!("\\b{}\\b", parts.join("\\s+"))
        };
        out.push_str(&format!(
            "  - id: gen_regex_{i}\n    targets: [{target}]\n    pattern: '{pattern}'\n    score: 1\n"
        ));
    }
    out
}

/// YARA rules that look like real ones: a few text strings (some `nocase`, some `wide`) and a
/// hex string with a jump per rule, conditions over them and the external variables.
pub fn generated_yara_rules(count: usize) -> String {
    let mut rng = corpus::Rng::new(count as u64 + 7);
    let mut out = String::new();
    for i in 0..count {
        let word = |rng: &mut corpus::Rng| -> String {
            (0..rng.range(6, 12)).map(|_| (b'a' + (rng.u64() % 26) as u8) as char).collect()
        };
        let hex: Vec<String> = (0..6).map(|_| format!("{:02X}", rng.u64() % 256)).collect();
        let condition = match i % 4 {
            0 => "any of them",
            1 => "2 of them",
            2 => "($a or $b or $c) and part_kind == \"attachment\"",
            _ => "($a or $b or $c) and filesize < 10MB",
        };
        out.push_str(&format!(
            "rule gen_yara_{i} {{\n  meta:\n    score = 1\n  strings:\n    $a = \"{}\" nocase\n    $b = \"{}\" wide\n    $c = {{ {} {} [2-8] {} {} {} {} }}\n  condition:\n    {condition}\n}}\n",
            word(&mut rng),
            word(&mut rng),
            hex[0],
            hex[1],
            hex[2],
            hex[3],
            hex[4],
            hex[5]
        ));
    }
    out
}

/// Whole-inspection cost as the rule count grows, over the same sample.
fn scaling(c: &mut Criterion) {
    let messages: Vec<Vec<u8>> = sample().into_iter().take(30).collect();
    let env = envelope();
    let config = Config::default();
    let mut g = c.benchmark_group("scaling");
    g.throughput(Throughput::Bytes(total_bytes(&messages)));
    g.sample_size(10);
    // Run as a test (`cargo test --all-targets`, no `--bench`), each bench runs once: the two
    // ends of each curve show the rules compile and scan, in a fraction of the time.
    let full = std::env::args().any(|a| a == "--bench");
    let pick =
        |all: &[usize]| -> Vec<usize> { if full { all.to_vec() } else { vec![all[0], all[all.len() - 1]] } };
    for n in pick(&[10, 50, 100, 250, 500, 1000]) {
        let pipeline = Pipeline::new(ruleset(SHIPPED_YARA, &[generated_regex_rules(n)]), &config);
        g.bench_with_input(BenchmarkId::new("regex-rules", n), &n, |b, _| {
            b.iter(|| messages.iter().map(|m| pipeline.run(m, &env, false, 0).hits.len()).sum::<usize>())
        });
    }
    for n in pick(&[10, 50, 500, 1000, 2500, 5000]) {
        let yara = format!("{SHIPPED_YARA}\n{}", generated_yara_rules(n));
        let pipeline = Pipeline::new(ruleset(&yara, &[PEER_RULES.to_string()]), &config);
        g.bench_with_input(BenchmarkId::new("yara-rules", n), &n, |b, _| {
            b.iter(|| messages.iter().map(|m| pipeline.run(m, &env, false, 0).hits.len()).sum::<usize>())
        });
    }
    g.finish();
}

criterion_group!(benches, codec, walk_bench, engines, whole, sum_of_parts, scaling);
criterion_main!(benches);
