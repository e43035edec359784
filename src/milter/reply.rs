//! SMTP replies a milter may ask the MTA to send, built only through a validated type.
//!
//! A malformed SMFIR_REPLYCODE is worse than useless: Postfix logs "malformed reply" and applies
//! its configuration-error action, silently turning a reject into a tempfail. So a reply can
//! only be built with a 4xx/5xx code, an enhanced status code whose class matches it, and text
//! that cannot break the framing: CR, LF and NUL are removed from any text, other control and
//! non-ASCII bytes are replaced, `%` is doubled (Sendmail treats the text as a format string),
//! and lines are capped in length.

use std::fmt;

/// Longest text per reply line, in bytes. RFC 5321 caps a reply line at 512 octets including
/// the code and CRLF; 400 leaves room for `550-5.7.1 ` and `%` doubling.
const MAX_LINE_TEXT: usize = 400;
/// libmilter's `smfi_setmlreply` accepts at most 32 lines.
const MAX_LINES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    code: u16,
    enhanced: Option<(u8, u16, u16)>,
    lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// Only 4xx and 5xx replies can come from a milter.
    Code(u16),
    /// The enhanced status code is malformed or its class does not match the reply code.
    Enhanced(String),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Code(c) => write!(f, "reply code {c} is not 4xx or 5xx"),
            ReplyError::Enhanced(e) => write!(
                f,
                "enhanced status code {e:?} must look like 5.7.1 and start with the reply code's class"
            ),
        }
    }
}

impl std::error::Error for ReplyError {}

impl SmtpReply {
    /// `code` is 400..=599; `enhanced` like "5.7.1" (or empty for none); `text` may contain
    /// newlines, each becomes one line of a multi-line reply.
    pub fn new(code: u16, enhanced: &str, text: &str) -> Result<SmtpReply, ReplyError> {
        if !(400..=599).contains(&code) || !(0..=99).contains(&(code % 100)) {
            return Err(ReplyError::Code(code));
        }
        let enhanced = if enhanced.is_empty() {
            None
        } else {
            let parsed = parse_enhanced(enhanced)
                .filter(|(class, _, _)| u16::from(*class) == code / 100)
                .ok_or_else(|| ReplyError::Enhanced(enhanced.to_string()))?;
            Some(parsed)
        };
        let mut lines: Vec<String> = text.split('\n').map(clean_line).take(MAX_LINES).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Ok(SmtpReply { code, enhanced, lines })
    }

    /// Parses the configured form `550 5.7.1 Message rejected`.
    pub fn parse(s: &str) -> Result<SmtpReply, ReplyError> {
        let s = s.trim();
        let (code, rest) = s.split_once(' ').unwrap_or((s, ""));
        let code: u16 = code.parse().map_err(|_| ReplyError::Code(0))?;
        let rest = rest.trim_start();
        let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        if parse_enhanced(first).is_some() {
            SmtpReply::new(code, first, tail.trim_start())
        } else {
            SmtpReply::new(code, "", rest)
        }
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The text of the SMFIR_REPLYCODE payload (without the trailing NUL): every line carries
    /// the code and the enhanced code; lines are joined with CRLF, the last has a space.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.push_str(&self.code.to_string());
            out.push(sep);
            if let Some((a, b, c)) = self.enhanced {
                out.push_str(&format!("{a}.{b}.{c}"));
                if !line.is_empty() {
                    out.push(' ');
                }
            }
            for ch in line.chars() {
                if ch == '%' {
                    out.push('%');
                }
                out.push(ch);
            }
            if i != last {
                out.push_str("\r\n");
            }
        }
        out
    }
}

impl fmt::Display for SmtpReply {
    /// The reply as the SMTP client sees it (`%` not doubled, lines joined with " / ").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some((a, b, c)) = self.enhanced {
            write!(f, " {a}.{b}.{c}")?;
        }
        let text = self.lines.join(" / ");
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

fn parse_enhanced(s: &str) -> Option<(u8, u16, u16)> {
    let mut it = s.split('.');
    let class: u8 = it.next()?.parse().ok()?;
    let subject = it.next()?;
    let detail = it.next()?;
    if it.next().is_some() || !(class == 4 || class == 5) {
        return None;
    }
    let ok = |p: &str, max: usize| !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit());
    if !ok(subject, 3) || !ok(detail, 3) {
        return None;
    }
    Some((class, subject.parse().ok()?, detail.parse().ok()?))
}

/// Makes one line safe for the wire: CR and NUL dropped (LF already split lines), other control
/// characters and non-ASCII replaced (SMTP replies are ASCII unless SMTPUTF8, which we cannot
/// know here), and the length capped at a character boundary.
fn clean_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_LINE_TEXT));
    for ch in line.chars() {
        if out.len() >= MAX_LINE_TEXT {
            break;
        }
        match ch {
            '\r' | '\0' => {}
            c if c.is_ascii_control() => out.push(' '),
            c if !c.is_ascii() => out.push('?'),
            c => out.push(c),
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_reply_on_the_wire() {
        let r = SmtpReply::new(550, "5.7.1", "Message rejected").unwrap();
        assert_eq!(r.to_wire(), "550 5.7.1 Message rejected");
        assert_eq!(r.to_string(), "550 5.7.1 Message rejected");
        assert!(r.is_permanent());
    }

    #[test]
    fn only_4xx_and_5xx() {
        assert_eq!(SmtpReply::new(250, "", "ok"), Err(ReplyError::Code(250)));
        assert_eq!(SmtpReply::new(354, "", "x"), Err(ReplyError::Code(354)));
        assert_eq!(SmtpReply::new(600, "", "x"), Err(ReplyError::Code(600)));
        assert!(SmtpReply::new(451, "4.7.1", "later").is_ok());
    }

    #[test]
    fn enhanced_class_must_match() {
        assert!(matches!(SmtpReply::new(550, "4.7.1", "x"), Err(ReplyError::Enhanced(_))));
        assert!(matches!(SmtpReply::new(451, "5.7.1", "x"), Err(ReplyError::Enhanced(_))));
        assert!(matches!(SmtpReply::new(550, "5.7", "x"), Err(ReplyError::Enhanced(_))));
        assert!(matches!(SmtpReply::new(550, "2.0.0", "x"), Err(ReplyError::Enhanced(_))));
        assert!(matches!(SmtpReply::new(550, "5.x.1", "x"), Err(ReplyError::Enhanced(_))));
    }

    #[test]
    fn multi_line_replies_use_hyphens_then_space() {
        let r = SmtpReply::new(550, "5.7.1", "first\nsecond\nthird").unwrap();
        assert_eq!(r.to_wire(), "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third");
    }

    #[test]
    fn percent_is_doubled_on_the_wire_only() {
        let r = SmtpReply::new(550, "5.7.1", "100% bad %s").unwrap();
        assert_eq!(r.to_wire(), "550 5.7.1 100%% bad %%s");
        assert_eq!(r.to_string(), "550 5.7.1 100% bad %s");
    }

    #[test]
    fn cr_nul_and_controls_are_stripped_from_text() {
        let r = SmtpReply::new(550, "5.7.1", "evil\r\0name\tx\x1b[31m\u{202e}exe").unwrap();
        let wire = r.to_wire();
        assert_eq!(wire, "550 5.7.1 evilname x [31m?exe");
        assert!(!wire.contains('\r') && !wire.contains('\0'));
    }

    #[test]
    fn long_text_is_capped() {
        let r = SmtpReply::new(550, "5.7.1", &"a".repeat(5000)).unwrap();
        assert!(r.to_wire().len() < 512);
        let many = "x\n".repeat(100);
        let r = SmtpReply::new(550, "", &many).unwrap();
        assert_eq!(r.to_wire().matches("\r\n").count(), MAX_LINES - 1);
    }

    #[test]
    fn no_enhanced_code_and_empty_text() {
        assert_eq!(SmtpReply::new(451, "", "").unwrap().to_wire(), "451 ");
        assert_eq!(SmtpReply::new(451, "4.3.0", "").unwrap().to_wire(), "451 4.3.0");
    }

    #[test]
    fn parse_configured_form() {
        let r = SmtpReply::parse("550 5.7.1 Rejected: policy").unwrap();
        assert_eq!(r.to_wire(), "550 5.7.1 Rejected: policy");
        let r = SmtpReply::parse("451 try later").unwrap();
        assert_eq!(r.to_wire(), "451 try later");
        assert!(SmtpReply::parse("250 ok").is_err());
        assert!(SmtpReply::parse("nope").is_err());
        assert!(SmtpReply::parse("550 4.7.1 wrong class").is_err());
    }
}
