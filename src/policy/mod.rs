//! Policy: from what inspection found to what happens to the message.
//!
//! For now it holds the failure policy: what a message gets when we could not decide about it.

use crate::config::FailAction;
use crate::milter::{Action, HeaderChange, SmtpReply, Verdict};

/// The verdict for a message we could not decide about. Every variant says so in a header.
pub fn on_error_verdict(action: FailAction) -> Verdict {
    let header = |what: &str| HeaderChange::Add {
        name: "X-Inspect-Verdict".to_string(),
        value: format!("{what} score=0 rules= (internal error; on_error)"),
    };
    match action {
        FailAction::Accept => Verdict { headers: vec![header("accept")], action: Action::Accept },
        FailAction::Quarantine => Verdict {
            headers: vec![header("quarantine")],
            action: Action::Quarantine("inspection failed".to_string()),
        },
        FailAction::Tempfail => Verdict {
            headers: vec![],
            action: Action::Tempfail(
                SmtpReply::new(451, "4.3.0", "Temporary content inspection failure, try again later").ok(),
            ),
        },
        FailAction::Reject => Verdict {
            headers: vec![],
            action: Action::Reject(SmtpReply::new(550, "5.7.0", "Message could not be inspected").ok()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fail_action_has_a_verdict_and_none_passes_silently() {
        let accept = on_error_verdict(FailAction::Accept);
        assert_eq!(accept.action, Action::Accept);
        assert!(
            matches!(&accept.headers[..], [HeaderChange::Add { value, .. }] if value.contains("on_error"))
        );
        assert!(
            matches!(on_error_verdict(FailAction::Tempfail).action, Action::Tempfail(Some(r)) if r.code() == 451)
        );
        assert!(
            matches!(on_error_verdict(FailAction::Reject).action, Action::Reject(Some(r)) if r.code() == 550)
        );
        assert!(matches!(on_error_verdict(FailAction::Quarantine).action, Action::Quarantine(_)));
    }
}
