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
