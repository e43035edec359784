//! A filter whose decision is written in the message: the Subject names it. It records what
//! it saw, so tests can check the message as the filter received it.

use std::sync::Mutex;
use std::time::Duration;

use inspect_milter::milter::{Action, EndOfMessage, Filter, FilterError, HeaderChange, SmtpReply, Verdict};

#[derive(Default)]
pub struct Scripted {
    pub seen: Mutex<Vec<EndOfMessage>>,
    /// Added to the verdict header, to tell two filter generations apart.
    pub tag: String,
}

impl Scripted {
    pub fn tagged(tag: &str) -> Scripted {
        Scripted { tag: tag.to_string(), ..Scripted::default() }
    }

    pub fn seen(&self) -> Vec<EndOfMessage> {
        self.seen.lock().unwrap().clone()
    }
}

fn subject(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines().find_map(|l| l.strip_prefix("Subject:")).map(|s| s.trim().to_string()).unwrap_or_default()
}

impl Filter for Scripted {
    fn end_of_message(&self, m: &EndOfMessage) -> Result<Verdict, FilterError> {
        self.seen.lock().unwrap().push(m.clone());
        let subject = subject(&m.message);
        let seen = HeaderChange::Add { name: "X-Test-Seen".into(), value: format!("yes{}", self.tag) };
        if let Some(ms) = subject.strip_prefix("SLOW ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(500)));
        }
        let action = match subject.split_whitespace().last().unwrap_or("") {
            "REJECT" => {
                Action::Reject(Some(SmtpReply::new(550, "5.7.1", "Rejected by test filter").unwrap()))
            }
            "TEMPFAIL" => Action::Tempfail(Some(SmtpReply::new(451, "4.7.1", "Try later").unwrap())),
            "DISCARD" => Action::Discard,
            "QUARANTINE" => Action::Quarantine("test quarantine".into()),
            "PANIC" => panic!("test filter panics on request"),
            "ERROR" => return Err("test filter fails on request".into()),
            _ => Action::Accept,
        };
        Ok(Verdict { headers: vec![seen], action })
    }
}
