//! Option negotiation (SMFIC_OPTNEG): what we ask of the MTA and what we promise it.
//!
//! A content filter decides only at end of message, so it asks for no reply at every stage
//! before that (one round trip saved per header and per command) — except body chunks: a reply
//! there is what lets us send SKIP once a message passes the size cap. It asks only for the
//! actions it may use, because the MTA refuses a milter whose request exceeds its offer and
//! because CHGBODY would make the MTA keep a body copy for nothing.

/// SMFIF_* action bits.
pub mod action {
    pub const ADD_HEADERS: u32 = 0x01;
    pub const CHANGE_BODY: u32 = 0x02;
    pub const ADD_RCPT: u32 = 0x04;
    pub const DEL_RCPT: u32 = 0x08;
    pub const CHANGE_HEADERS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
    pub const CHANGE_FROM: u32 = 0x40;
    pub const ADD_RCPT_PAR: u32 = 0x80;
    pub const SET_SYMLIST: u32 = 0x100;
}

/// SMFIP_* protocol bits.
pub mod proto {
    pub const NO_CONNECT: u32 = 0x01;
    pub const NO_HELO: u32 = 0x02;
    pub const NO_MAIL: u32 = 0x04;
    pub const NO_RCPT: u32 = 0x08;
    pub const NO_BODY: u32 = 0x10;
    pub const NO_HDRS: u32 = 0x20;
    pub const NO_EOH: u32 = 0x40;
    pub const NR_HDR: u32 = 0x80;
    pub const NO_UNKNOWN: u32 = 0x100;
    pub const NO_DATA: u32 = 0x200;
    pub const SKIP: u32 = 0x400;
    pub const RCPT_REJ: u32 = 0x800;
    pub const NR_CONN: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
    pub const NR_DATA: u32 = 0x1_0000;
    pub const NR_UNKN: u32 = 0x2_0000;
    pub const NR_EOH: u32 = 0x4_0000;
    pub const NR_BODY: u32 = 0x8_0000;
    pub const HDR_LEADSPC: u32 = 0x10_0000;
}

/// SMFIM_* macro stages for the symbol-list extension (note: EOM is 5, EOH is 6).
pub mod stage {
    pub const CONNECT: u32 = 0;
    pub const HELO: u32 = 1;
    pub const ENVFROM: u32 = 2;
    pub const ENVRCPT: u32 = 3;
    pub const DATA: u32 = 4;
    pub const EOM: u32 = 5;
    pub const EOH: u32 = 6;
}

/// The newest protocol version we speak.
pub const VERSION: u32 = 6;
/// The oldest MTA version we accept: version 2 is the first with the framing we implement.
pub const MIN_VERSION: u32 = 2;

/// The TLS macros, which Postfix sends at HELO, MAIL and DATA (never at end of message).
const TLS_MACROS: &str = "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer} {tls_sni}";

/// Actions we would like: add/insert our headers, change them (to replace a forged copy of our
/// own verdict header) and hold a message in the MTA's queue; plus the symbol list.
const WANTED_ACTIONS: u32 =
    action::ADD_HEADERS | action::CHANGE_HEADERS | action::QUARANTINE | action::SET_SYMLIST;

/// No reply at any stage before end of message except body chunks (see the module doc), no
/// unknown SMTP commands, header values byte-exact.
const WANTED_PROTOCOL: u32 = proto::NR_CONN
    | proto::NR_HELO
    | proto::NR_MAIL
    | proto::NR_RCPT
    | proto::NR_DATA
    | proto::NR_HDR
    | proto::NR_EOH
    | proto::NR_UNKN
    | proto::NO_UNKNOWN
    | proto::HDR_LEADSPC;

/// What both sides agreed on; the session consults it before every reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub version: u32,
    pub actions: u32,
    pub protocol: u32,
    /// The MTA offered SMFIP_SKIP (the protocol field we send back does not echo it).
    pub skip_offered: bool,
}

impl Negotiated {
    /// What we assume before (or without) negotiation: replies at every stage, no extras.
    pub const fn legacy() -> Negotiated {
        Negotiated { version: MIN_VERSION, actions: 0, protocol: 0, skip_offered: false }
    }

    pub fn no_reply_for(&self, bit: u32) -> bool {
        self.protocol & bit != 0
    }

    pub fn may(&self, action_bit: u32) -> bool {
        self.actions & action_bit != 0
    }

    pub fn leading_space(&self) -> bool {
        self.protocol & proto::HDR_LEADSPC != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationError(pub String);

impl std::fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Answers the MTA's offer: clamp the version, request the subset of what it offers, and name
/// the macros we need per stage (when it offers the symbol-list action).
pub fn negotiate(
    version: u32,
    offered_actions: u32,
    offered_protocol: u32,
) -> Result<(Negotiated, Vec<(u32, String)>), NegotiationError> {
    if version < MIN_VERSION {
        return Err(NegotiationError(format!(
            "MTA speaks milter protocol version {version}; at least {MIN_VERSION} is required"
        )));
    }
    let version = version.min(VERSION);
    let actions = WANTED_ACTIONS & offered_actions;
    let protocol = WANTED_PROTOCOL & offered_protocol;
    let negotiated =
        Negotiated { version, actions, protocol, skip_offered: offered_protocol & proto::SKIP != 0 };
    let macros =
        if actions & action::SET_SYMLIST != 0 && version >= 6 { wanted_macros() } else { Vec::new() };
    Ok((negotiated, macros))
}

/// The macros we ask for at each stage. Postfix falls back to its configured list for any stage
/// we do not name, so every stage we care about is listed in full.
fn wanted_macros() -> Vec<(u32, String)> {
    vec![
        (
            stage::CONNECT,
            "j _ v {daemon_name} {daemon_addr} {daemon_port} {client_addr} {client_name} {client_port} {client_ptr}"
                .to_string(),
        ),
        (stage::HELO, TLS_MACROS.to_string()),
        (
            stage::ENVFROM,
            format!("i {{auth_type}} {{auth_authen}} {{auth_author}} {{mail_addr}} {TLS_MACROS}"),
        ),
        (stage::DATA, format!("i {TLS_MACROS}")),
        (stage::EOM, "i {msg_id}".to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTFIX_ACTIONS: u32 = 0x1ff;
    const POSTFIX_PROTOCOL: u32 = 0x1f_ffff;

    #[test]
    fn postfix_offer_gets_our_subset_and_symbol_lists() {
        let (n, macros) = negotiate(6, POSTFIX_ACTIONS, POSTFIX_PROTOCOL).unwrap();
        assert_eq!(n.version, 6);
        assert_eq!(n.actions, WANTED_ACTIONS);
        assert_eq!(n.protocol, WANTED_PROTOCOL);
        assert!(n.skip_offered);
        assert!(n.leading_space());
        assert!(!n.no_reply_for(proto::NR_BODY), "body chunks must be answered so SKIP works");
        assert!(n.no_reply_for(proto::NR_HDR));
        let helo = macros.iter().find(|(s, _)| *s == stage::HELO).unwrap();
        assert!(helo.1.contains("{tls_version}") && helo.1.contains("{cipher}"));
        let from = macros.iter().find(|(s, _)| *s == stage::ENVFROM).unwrap();
        assert!(from.1.contains("{tls_version}") && from.1.contains("{auth_authen}"));
        for (_, names) in &macros {
            assert!(names.split(' ').count() <= 40, "Sendmail caps a list at 40 macros");
        }
    }

    #[test]
    fn request_never_exceeds_the_offer() {
        let (n, macros) = negotiate(6, action::ADD_HEADERS, proto::NR_HDR).unwrap();
        assert_eq!(n.actions, action::ADD_HEADERS);
        assert_eq!(n.protocol, proto::NR_HDR);
        assert!(!n.skip_offered);
        assert!(macros.is_empty(), "no symbol list without SETSYMLIST");
    }

    #[test]
    fn version_is_clamped_both_ways() {
        assert_eq!(negotiate(9, 0, 0).unwrap().0.version, 6);
        assert_eq!(negotiate(4, 0x3f, 0x7f).unwrap().0.version, 4);
        assert!(negotiate(1, 0, 0).is_err());
    }

    #[test]
    fn old_mta_gets_no_symbol_lists() {
        let (_, macros) = negotiate(4, POSTFIX_ACTIONS, 0x7f).unwrap();
        assert!(macros.is_empty());
    }
}
