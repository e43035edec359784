//! A filter whose decision is written in the message: a word of the Subject names it (REJECT,
//! TEMPFAIL, DISCARD, QUARANTINE, PANIC, ERROR; `SLOW <ms>` first to take time). It adds
//! `X-Inspect-Verdict: <decision> scripted<tag> tls=<version|none>` and records what it saw,
//! so tests can check the message as the filter received it.

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
        if let Some(ms) = subject.strip_prefix("SLOW ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(500)));
        }
        let has = |word: &str| subject.split(|c: char| !c.is_ascii_alphabetic()).any(|w| w == word);
        let (word, action) = if has("REJECT") {
            ("reject", Action::Reject(Some(SmtpReply::new(550, "5.7.1", "Rejected by test filter").unwrap())))
        } else if has("TEMPFAIL") {
            ("tempfail", Action::Tempfail(Some(SmtpReply::new(451, "4.7.1", "Try later").unwrap())))
        } else if has("DISCARD") {
            ("discard", Action::Discard)
        } else if has("QUARANTINE") {
            ("quarantine", Action::Quarantine("test quarantine".into()))
        } else if has("PANIC") {
            panic!("test filter panics on request")
        } else if has("ERROR") {
            return Err("test filter fails on request".into());
        } else {
            ("accept", Action::Accept)
        };
        let tls = m.envelope.tls.as_ref().map_or("none".to_string(), |t| t.version.clone());
        let seen = HeaderChange::Add {
            name: "X-Inspect-Verdict".into(),
            value: format!("{word} scripted{} tls={tls}", self.tag),
        };
        Ok(Verdict { headers: vec![seen], action })
    }
}
