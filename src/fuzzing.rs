//! Entry points shared by the fuzz targets (`fuzz/`) and the test that replays their seed
//! corpus, so both exercise exactly the same code.

use crate::milter::codec;
use crate::milter::command::Command;
use crate::milter::session::{Session, Step};
use crate::milter::{Action, HeaderChange, Verdict};

/// Treats `data` as a byte stream from an MTA: frames, parses and feeds every packet to a
/// session, answering each end of message with a verdict that exercises every reply path.
/// Must never panic, whatever the input.
pub fn milter_stream(data: &[u8]) {
    let mut session = Session::new(64 * 1024);
    let mut rest = data;
    let mut verdicts = 0usize;
    while let Ok(Some((packet, used))) = codec::decode(rest) {
        rest = &rest[used..];
        let Ok(command) = Command::parse(packet) else { return };
        let mut out = Vec::new();
        match session.handle(command) {
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
