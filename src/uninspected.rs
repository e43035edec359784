//! The filter that runs until the inspection engine is configured: it accepts every message
//! and says, in the verdict header, that the message was not inspected — a milter must never
//! let a header imply a check that did not happen.

use crate::milter::{Action, EndOfMessage, Filter, FilterError, HeaderChange, Verdict};

pub struct Uninspected {
    pub header_prefix: String,
}

impl Filter for Uninspected {
    fn end_of_message(&self, message: &EndOfMessage) -> Result<Verdict, FilterError> {
        let why = if message.truncated { "not-inspected; truncated" } else { "not-inspected" };
        Ok(Verdict {
            headers: vec![HeaderChange::Add {
                name: format!("{}Verdict", self.header_prefix),
                value: format!("accept score=0 rules= ({why})"),
            }],
            action: Action::Accept,
        })
    }
}
