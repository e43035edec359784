//! Entry points shared by the fuzz targets (`fuzz/`) and the test that replays their seed
//! corpus, so both exercise exactly the same code.

use std::collections::HashSet;

use crate::inspect::{Limits, TargetKind, walk};
use crate::milter::codec;
use crate::milter::command::Command;
use crate::milter::session::{Session, Step};
use crate::milter::{Action, HeaderChange, Verdict};

/// Treats `data` as a byte stream from an MTA: frames, parses and feeds every packet to a
/// session, answering each end of message with a verdict that exercises every reply path.
/// Must never panic, whatever the input.
pub fn milter_stream(data: &[u8]) {
    let mut session = Session::new(64 * 1024);
    // A second session fed the same packets, its body chunks put straight into its buffer
    // where it takes them (as the server reads them): it must answer and end the same way.
    let mut in_place = Session::new(64 * 1024);
    let mut rest = data;
    let mut verdicts = 0usize;
    while let Ok(Some((packet, used))) = codec::decode(rest) {
        rest = &rest[used..];
        let Ok(command) = Command::parse(packet) else { return };
        let twin = match command {
            Command::Body(chunk) => match in_place.body_buffer(chunk.len()) {
                Some(buf) => {
                    buf.extend_from_slice(chunk);
                    in_place.body_appended(chunk.len()).map(Step::Reply)
                }
                None => in_place.handle(command.clone()),
            },
            _ => in_place.handle(command.clone()),
        };
        let mut out = Vec::new();
        let step = session.handle(command);
        match (&step, &twin) {
            (Ok(Step::Reply(a)), Ok(Step::Reply(b))) => assert_eq!(a, b, "replies differ"),
            (Ok(Step::Filter(a)), Ok(Step::Filter(b))) => {
                assert_eq!(a.message, b.message, "messages differ");
                assert_eq!((a.truncated, a.received_bytes), (b.truncated, b.received_bytes));
            }
            (Ok(Step::Close), Ok(Step::Close)) | (Err(_), Err(_)) => {}
            (a, b) => panic!("the sessions parted: {a:?} / {b:?}"),
        }
        if let Ok(Step::Filter(_)) = twin {
            let _ = in_place.finish(Verdict::accept());
        }
        match step {
            Ok(Step::Reply(replies)) => replies.iter().for_each(|r| r.encode(&mut out)),
            Ok(Step::Close) | Err(_) => return,
            Ok(Step::Filter(eom)) => {
                verdicts += 1;
                let action = match verdicts % 4 {
                    0 => Action::Accept,
                    1 => Action::Quarantine(String::from_utf8_lossy(&eom.message).chars().take(50).collect()),
                    2 => Action::Reject(None),
                    _ => Action::Discard,
                };
                let verdict = Verdict {
                    headers: vec![HeaderChange::Add {
                        name: "X-Fuzz".into(),
                        value: eom.envelope.sender.chars().take(100).collect(),
                    }],
                    action,
                };
                if let Ok(replies) = session.finish(verdict) {
                    replies.iter().for_each(|r| r.encode(&mut out));
                }
            }
        }
    }
}

/// Treats `data` as a regex rule file and a YARA rule file and compiles both: whatever the
/// text, the loader reports diagnostics and never panics.
pub fn rule_files(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let sources = [
        crate::rules::Source { origin: "fuzz.yaml".into(), text: text.clone().into_owned() },
        crate::rules::Source { origin: "fuzz.yar".into(), text: text.into_owned() },
    ];
    for source in sources {
        let (_, diags) = crate::rules::compile(std::slice::from_ref(&source), Default::default());
        for d in diags {
            let _ = d.to_string();
        }
    }
}

/// Treats `data` as a configuration file: it loads or is refused with an error naming a
/// place, never a panic; the section-by-section checker agrees it is a document.
pub fn config_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = std::path::Path::new("fuzz.yaml");
    if crate::config::Config::parse(&text, path).is_err() {
        let _ = crate::config::section_errors(&text, "fuzz.yaml");
    }
}

/// Treats `data` as a message and walks it under the default limits and under tight ones
/// (which reach the over-size, over-depth and over-parts paths), checking what holds for any
/// input: every target belongs to a listed part, our own code never panics (a panic in the
/// split or mail-parser's header parser is caught and recorded as designed; `walk-panic` would
/// be the walk's), coverage is complete exactly when nothing is uninspectable, the summary
/// serializes, and decoded content stays within the byte budget (twice it: HTML text is
/// charged after the HTML it comes from).
pub fn mime_walk(data: &[u8]) {
    let tight = Limits {
        max_depth: 3,
        max_parts: 4,
        max_part_bytes: 64,
        max_total_bytes: 256,
        max_expansion_ratio: 2,
        max_archive_members: 2,
        max_archive_depth: 1,
        max_urls: 2,
    };
    for limits in [&Limits::default(), &tight] {
        let walked = walk(data, limits);
        let paths: HashSet<&str> = walked.parts.iter().map(|p| p.part_path.as_str()).collect();
        for target in &walked.targets {
            assert!(
                paths.contains(target.part_path.as_str()),
                "target {:?} at {} has no part",
                target.kind,
                target.part_path
            );
        }
        assert!(!walked.anomalies.iter().any(|a| a.code == "walk-panic"), "the walk itself panicked");
        let summary = walked.summary();
        assert_eq!(summary.coverage.complete, walked.uninspectable.is_empty());
        serde_json::to_string(&summary).expect("summary serializes");
        let scanned: u64 = walked
            .targets
            .iter()
            .filter(|t| t.kind.yara_part_kind().is_some() && t.kind != TargetKind::RawHeaders)
            .map(|t| t.data.len() as u64)
            .sum();
        assert!(
            scanned <= 2 * limits.max_total_bytes,
            "{scanned} bytes scanned, budget {}",
            limits.max_total_bytes
        );
    }
}
