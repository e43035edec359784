//! State-machine tests, one per quirk of the protocol reference and then some.

use super::*;
use crate::milter::command::Family;
use crate::milter::negotiate::action as act;

const POSTFIX_ACTIONS: u32 = 0x1ff;
const POSTFIX_PROTOCOL: u32 = 0x1f_ffff;

fn session() -> Session {
    let mut s = Session::new(1024 * 1024);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL);
    s
}

fn negotiate_with(s: &mut Session, actions: u32, protocol: u32) {
    let step = s.handle(Command::OptNeg { version: 6, actions, protocol }).unwrap();
    assert!(matches!(step, Step::Reply(ref r) if matches!(r[..], [Response::OptNeg { .. }])));
}

fn replies(step: Step) -> Vec<Response> {
    match step {
        Step::Reply(r) => r,
        other => panic!("expected replies, got {other:?}"),
    }
}

fn eom(step: Step) -> EndOfMessage {
    match step {
        Step::Filter(m) => *m,
        other => panic!("expected end of message, got {other:?}"),
    }
}

fn macro_cmd<'a>(stage: u8, pairs: &[(&'a str, &'a str)]) -> Command<'a> {
    Command::Macro { stage, pairs: pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect() }
}

/// CONNECT, HELO, MAIL, RCPT, DATA as Postfix sends them.
fn envelope_part(s: &mut Session) {
    for cmd in [
        Command::Connect {
            hostname: b"client.example",
            family: Family::Inet,
            port: 4000,
            address: b"192.0.2.7",
        },
        Command::Helo(b"client.example"),
        Command::Mail(vec![b"<sender@example.org>", b"SIZE=100"]),
        Command::Rcpt(vec![b"<rcpt@example.net>"]),
        Command::Data,
    ] {
        assert!(replies(s.handle(cmd).unwrap()).is_empty(), "NR_* bits: no replies before body");
    }
}

fn message(s: &mut Session, subject: &str, body: &[u8]) -> EndOfMessage {
    s.handle(Command::Mail(vec![b"<a@example.org>"])).unwrap();
    s.handle(Command::Rcpt(vec![b"<b@example.net>"])).unwrap();
    s.handle(Command::Header { name: b"Subject", value: subject.as_bytes() }).unwrap();
    s.handle(Command::EndOfHeaders).unwrap();
    if !body.is_empty() {
        s.handle(Command::Body(body)).unwrap();
    }
    eom(s.handle(Command::EndOfMessage(b"")).unwrap())
}

#[test]
fn full_transaction_rebuilds_the_message_byte_exact() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"From", value: b" Sender <sender@example.org>" }).unwrap();
    s.handle(Command::Header { name: b"Subject", value: b" folded\n\tline" }).unwrap();
    s.handle(Command::Header { name: b"X-Tight", value: b"no-space" }).unwrap();
    assert!(replies(s.handle(Command::EndOfHeaders).unwrap()).is_empty());
    assert_eq!(replies(s.handle(Command::Body(b"hello\r\n")).unwrap()), vec![Response::Continue]);
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(
        m.message,
        b"From: Sender <sender@example.org>\r\nSubject: folded\r\n\tline\r\nX-Tight:no-space\r\n\r\nhello\r\n"
    );
    assert!(!m.truncated);
    assert_eq!(m.envelope.sender, "sender@example.org");
    assert_eq!(m.envelope.sender_args, vec!["SIZE=100"]);
    assert_eq!(m.envelope.recipients, vec!["rcpt@example.net"]);
    assert_eq!(m.envelope.helo.as_deref(), Some("client.example"));
    assert_eq!(m.envelope.client.addr.as_deref(), Some("192.0.2.7"));
    assert_eq!(m.envelope.client.port, 4000);
}

#[test]
fn without_leading_space_negotiated_one_space_is_restored() {
    let mut s = Session::new(1 << 20);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL & !proto::HDR_LEADSPC);
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b"hi" }).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(m.message, b"Subject: hi\r\n\r\n");
}

#[test]
fn no_replies_before_body_when_mta_allows_but_replies_when_it_does_not() {
    let mut s = Session::new(1 << 20);
    negotiate_with(&mut s, POSTFIX_ACTIONS, 0);
    let r = replies(
        s.handle(Command::Connect { hostname: b"h", family: Family::Inet, port: 1, address: b"192.0.2.1" })
            .unwrap(),
    );
    assert_eq!(r, vec![Response::Continue]);
    assert_eq!(replies(s.handle(Command::Helo(b"h")).unwrap()), vec![Response::Continue]);
    assert_eq!(replies(s.handle(Command::Mail(vec![b"<a@b>"])).unwrap()), vec![Response::Continue]);
    assert_eq!(replies(s.handle(Command::Rcpt(vec![b"<c@d>"])).unwrap()), vec![Response::Continue]);
    assert_eq!(
        replies(s.handle(Command::Header { name: b"A", value: b"b" }).unwrap()),
        vec![Response::Continue]
    );
}

#[test]
fn double_abort_is_silent_and_harmless() {
    let mut s = session();
    envelope_part(&mut s);
    assert!(replies(s.handle(Command::Abort).unwrap()).is_empty());
    assert!(replies(s.handle(Command::Abort).unwrap()).is_empty());
    assert!(!s.in_message());
    let m = message(&mut s, " second", b"body\r\n");
    assert_eq!(m.envelope.sender, "a@example.org");
    assert_eq!(m.envelope.helo.as_deref(), Some("client.example"), "connection state survives ABORT");
}

#[test]
fn abort_resets_message_state() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b" first" }).unwrap();
    s.handle(Command::Abort).unwrap();
    let m = message(&mut s, " second", b"");
    assert_eq!(m.message, b"Subject: second\r\n\r\n");
    assert_eq!(m.envelope.recipients, vec!["b@example.net"]);
}

#[test]
fn several_messages_per_connection_with_abort_between() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::Abort).unwrap();
    for i in 0..5 {
        let m = message(&mut s, &format!(" n{i}"), b"x\r\n");
        assert_eq!(m.message, format!("Subject: n{i}\r\n\r\nx\r\n").as_bytes());
        let out = s.finish(Verdict::accept()).unwrap();
        assert_eq!(out, vec![Response::Accept]);
        s.handle(Command::Abort).unwrap();
    }
}

#[test]
fn mail_after_a_verdict_without_abort_starts_a_clean_message() {
    // Sendmail sends no ABORT after an early decision.
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b" one" }).unwrap();
    let first = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(first.envelope.recipients, vec!["rcpt@example.net"]);
    s.finish(Verdict { headers: vec![], action: Action::Reject(None) }).unwrap();
    let second = message(&mut s, " two", b"2\r\n");
    assert_eq!(second.envelope.recipients, vec!["b@example.net"]);
    assert_eq!(second.message, b"Subject: two\r\n\r\n2\r\n");
}

#[test]
fn mail_in_the_middle_of_a_message_restarts_it() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b" lost" }).unwrap();
    let m = message(&mut s, " kept", b"");
    assert_eq!(m.message, b"Subject: kept\r\n\r\n");
}

#[test]
fn connect_with_family_unknown_or_local() {
    let mut s = session();
    s.handle(Command::Connect { hostname: b"localhost", family: Family::Unknown, port: 0, address: b"" })
        .unwrap();
    let m = message(&mut s, " x", b"");
    assert_eq!(m.envelope.client.addr, None);
    assert_eq!(m.envelope.client.family, Some(Family::Unknown));

    let mut s = session();
    s.handle(Command::Connect { hostname: b"localhost", family: Family::Local, port: 0, address: b"/run/s" })
        .unwrap();
    let m = message(&mut s, " x", b"");
    assert_eq!(m.envelope.client.addr.as_deref(), Some("/run/s"));
}

#[test]
fn hundred_kib_header_is_kept_whole() {
    let mut s = session();
    envelope_part(&mut s);
    let value = format!(" {}", "a".repeat(100 * 1024));
    s.handle(Command::Header { name: b"X-Long", value: value.as_bytes() }).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(m.message.len(), "X-Long:".len() + value.len() + 4);
    assert!(!m.truncated);
}

#[test]
fn body_split_mid_line_is_joined_exactly() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::EndOfHeaders).unwrap();
    s.handle(Command::Body(b"first li")).unwrap();
    s.handle(Command::Body(b"ne\r")).unwrap();
    s.handle(Command::Body(b"\nsecond")).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b" tail")).unwrap());
    assert_eq!(m.message, b"\r\nfirst line\r\nsecond tail");
}

#[test]
fn empty_body_ends_with_the_header_separator() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b" x" }).unwrap();
    s.handle(Command::EndOfHeaders).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(m.message, b"Subject: x\r\n\r\n");
}

#[test]
fn body_without_eoh_still_gets_a_separator() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b" x" }).unwrap();
    s.handle(Command::Body(b"b")).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(m.message, b"Subject: x\r\n\r\nb");
}

#[test]
fn past_the_cap_the_message_is_truncated_and_skip_is_sent_when_offered() {
    let mut s = Session::new(64);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL);
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b" x" }).unwrap();
    s.handle(Command::EndOfHeaders).unwrap();
    assert_eq!(replies(s.handle(Command::Body(&[b'a'; 40])).unwrap()), vec![Response::Continue]);
    assert_eq!(replies(s.handle(Command::Body(&[b'b'; 40])).unwrap()), vec![Response::Skip]);
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert!(m.truncated);
    assert_eq!(m.message.len(), 64);
    assert_eq!(m.received_bytes, 12 + 2 + 80);
}

#[test]
fn skip_is_never_sent_when_not_offered() {
    let mut s = Session::new(16);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL & !proto::SKIP);
    envelope_part(&mut s);
    s.handle(Command::EndOfHeaders).unwrap();
    for _ in 0..3 {
        assert_eq!(replies(s.handle(Command::Body(&[b'a'; 40])).unwrap()), vec![Response::Continue]);
    }
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert!(m.truncated);
    assert_eq!(m.message.len(), 16);
}

#[test]
fn truncation_in_the_headers_is_recorded() {
    let mut s = Session::new(10);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL);
    envelope_part(&mut s);
    s.handle(Command::Header { name: b"Subject", value: b" a long subject" }).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert!(m.truncated);
    assert_eq!(m.message, b"Subject: a");
}

#[test]
fn tls_macros_from_helo_reach_end_of_message() {
    let mut s = session();
    s.handle(macro_cmd(b'C', &[("j", "mx.example"), ("{daemon_name}", "smtpd")])).unwrap();
    s.handle(Command::Connect { hostname: b"c", family: Family::Inet, port: 1, address: b"192.0.2.1" })
        .unwrap();
    // First EHLO: cleartext.
    s.handle(macro_cmd(b'H', &[])).unwrap();
    s.handle(Command::Helo(b"c")).unwrap();
    // STARTTLS, second EHLO carries the TLS macros.
    s.handle(macro_cmd(
        b'H',
        &[("{tls_version}", "TLSv1.3"), ("{cipher}", "TLS_AES_256_GCM_SHA384"), ("{cipher_bits}", "256")],
    ))
    .unwrap();
    s.handle(Command::Helo(b"c")).unwrap();
    s.handle(macro_cmd(b'M', &[("{auth_type}", "PLAIN"), ("{auth_authen}", "bob")])).unwrap();
    s.handle(Command::Mail(vec![b"<a@b>"])).unwrap();
    s.handle(Command::Rcpt(vec![b"<c@d>"])).unwrap();
    s.handle(macro_cmd(b'T', &[("i", "4ABC123")])).unwrap();
    s.handle(Command::Data).unwrap();
    s.handle(macro_cmd(b'E', &[("i", "4ABC123")])).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    let tls = m.envelope.tls.expect("TLS context kept from HELO");
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.bits, Some(256));
    assert_eq!(m.envelope.queue_id.as_deref(), Some("4ABC123"));
    assert_eq!(m.envelope.auth.unwrap().authen.as_deref(), Some("bob"));
    assert_eq!(m.envelope.macros.get("j").map(String::as_str), Some("mx.example"));
}

#[test]
fn a_new_helo_without_tls_macros_clears_the_tls_context() {
    let mut s = session();
    s.handle(Command::Connect { hostname: b"c", family: Family::Inet, port: 1, address: b"192.0.2.1" })
        .unwrap();
    s.handle(macro_cmd(b'H', &[("{tls_version}", "TLSv1.2")])).unwrap();
    s.handle(Command::Helo(b"c")).unwrap();
    s.handle(macro_cmd(b'H', &[])).unwrap();
    s.handle(Command::Helo(b"c")).unwrap();
    let m = message(&mut s, " x", b"");
    assert_eq!(m.envelope.tls, None);
}

#[test]
fn message_macros_do_not_leak_into_the_next_message() {
    let mut s = session();
    envelope_part(&mut s);
    s.handle(macro_cmd(b'E', &[("i", "QID1")])).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(m.envelope.queue_id.as_deref(), Some("QID1"));
    s.finish(Verdict::accept()).unwrap();
    s.handle(Command::Abort).unwrap();
    let m = message(&mut s, " x", b"");
    assert_eq!(m.envelope.queue_id, None);
}

#[test]
fn macros_are_accepted_before_negotiation_and_empty() {
    let mut s = Session::new(1 << 20);
    assert!(replies(s.handle(macro_cmd(b'C', &[])).unwrap()).is_empty());
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL);
}

#[test]
fn out_of_order_commands_are_protocol_errors() {
    let mut s = Session::new(1 << 20);
    assert!(matches!(
        s.handle(Command::Helo(b"x")),
        Err(ProtocolError::OutOfOrder { command: 'H', stage: Stage::Start })
    ));
    let mut s = session();
    s.handle(Command::Connect { hostname: b"c", family: Family::Inet, port: 1, address: b"192.0.2.1" })
        .unwrap();
    assert!(s.handle(Command::Header { name: b"a", value: b"b" }).is_err());
    assert!(s.handle(Command::Rcpt(vec![b"<a@b>"])).is_err());
    assert!(s.handle(Command::EndOfMessage(b"")).is_err());
    assert!(s.handle(Command::OptNeg { version: 6, actions: 0, protocol: 0 }).is_err());
}

#[test]
fn commands_while_filtering_are_protocol_errors() {
    let mut s = session();
    envelope_part(&mut s);
    eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert!(s.handle(Command::Body(b"x")).is_err());
    assert!(s.handle(Command::Mail(vec![b"<a@b>"])).is_err());
}

#[test]
fn quit_closes_and_quit_nc_starts_over() {
    let mut s = session();
    envelope_part(&mut s);
    assert!(matches!(s.handle(Command::Quit).unwrap(), Step::Close));
    let mut s = session();
    envelope_part(&mut s);
    assert!(replies(s.handle(Command::QuitNewConnection).unwrap()).is_empty());
    assert_eq!(s.stage(), Stage::Negotiated);
    s.handle(Command::Connect { hostname: b"second", family: Family::Inet, port: 2, address: b"192.0.2.2" })
        .unwrap();
    let m = message(&mut s, " x", b"");
    assert_eq!(m.envelope.client.name, "second");
    assert_eq!(m.envelope.helo, None);
}

#[test]
fn finish_turns_verdicts_into_replies() {
    let reply = SmtpReplyFor::reject();
    let cases = [
        (Action::Accept, vec![Response::Accept]),
        (Action::Discard, vec![Response::Discard]),
        (Action::Reject(None), vec![Response::Reject]),
        (Action::Tempfail(None), vec![Response::Tempfail]),
        (Action::Reject(Some(reply.clone())), vec![Response::ReplyCode(reply)]),
        (Action::Quarantine("eicar".into()), vec![Response::Quarantine("eicar".into()), Response::Accept]),
    ];
    for (action, want) in cases {
        let mut s = session();
        envelope_part(&mut s);
        eom(s.handle(Command::EndOfMessage(b"")).unwrap());
        assert_eq!(s.finish(Verdict { headers: vec![], action }).unwrap(), want);
        assert_eq!(s.stage(), Stage::Done);
    }
}

#[test]
fn added_headers_get_the_leading_space_when_leadspc_is_on() {
    let mut s = session();
    envelope_part(&mut s);
    eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    let out = s
        .finish(Verdict {
            headers: vec![HeaderChange::Add { name: "X-Inspect-Verdict".into(), value: "accept".into() }],
            action: Action::Accept,
        })
        .unwrap();
    assert_eq!(
        out,
        vec![
            Response::AddHeader { name: "X-Inspect-Verdict".into(), value: " accept".into() },
            Response::Accept
        ]
    );
}

#[test]
fn changes_the_mta_did_not_allow_are_dropped_and_hold_becomes_tempfail() {
    let mut s = Session::new(1 << 20);
    negotiate_with(&mut s, act::SET_SYMLIST, POSTFIX_PROTOCOL);
    envelope_part(&mut s);
    eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    let out = s
        .finish(Verdict {
            headers: vec![HeaderChange::Add { name: "X-A".into(), value: "b".into() }],
            action: Action::Quarantine("x".into()),
        })
        .unwrap();
    assert_eq!(out, vec![Response::Tempfail]);
}

#[test]
fn finish_without_a_message_is_an_error() {
    let mut s = session();
    assert_eq!(s.finish(Verdict::accept()), Err(ProtocolError::NoMessage));
}

struct SmtpReplyFor;
impl SmtpReplyFor {
    fn reject() -> crate::milter::SmtpReply {
        crate::milter::SmtpReply::new(550, "5.7.1", "no").unwrap()
    }
}

#[test]
fn bytes_taken_out_for_spooling_still_count_towards_the_cap() {
    let mut s = Session::new(100);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL);
    envelope_part(&mut s);
    let first = s.message_number();
    s.handle(Command::EndOfHeaders).unwrap();
    s.handle(Command::Body(&[b'a'; 60])).unwrap();
    assert_eq!(s.buffered(), 62, "the empty line ending the headers, then the body");
    let taken = s.take_buffered();
    assert_eq!((taken.len(), s.buffered()), (62, 0));
    s.handle(Command::Body(&[b'b'; 60])).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(m.message, vec![b'b'; 38], "only what came after the take, up to the cap");
    assert!(m.truncated);
    assert_eq!(m.received_bytes, 122);
    s.finish(Verdict::accept()).unwrap();
    s.handle(Command::Mail(vec![b"<a@example.org>"])).unwrap();
    assert_ne!(s.message_number(), first, "a new MAIL is a new message");
}

#[test]
fn declared_size_reserves_room_once_and_never_past_the_message_cap() {
    let mut s = session();
    envelope_part(&mut s);
    // SIZE=100 in envelope_part: room for it and the MTA's additions, no regrowth.
    s.handle(Command::Header { name: b"Subject", value: b" x" }).unwrap();
    s.handle(Command::EndOfHeaders).unwrap();
    s.handle(Command::Body(&[b'a'; 150])).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert_eq!(m.message.len(), b"Subject: x\r\n\r\n".len() + 150);
    assert!(m.message.capacity() >= 100 + 4096, "capacity {}", m.message.capacity());
    // A declared size far over the cap reserves the cap, not what the client claimed.
    s.handle(Command::Abort).unwrap();
    s.handle(Command::Mail(vec![b"<a@example.org>", b"SIZE=99999999999"])).unwrap();
    s.handle(Command::Rcpt(vec![b"<b@example.net>"])).unwrap();
    s.handle(Command::EndOfHeaders).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert!(m.message.capacity() <= 1024 * 1024, "capacity {}", m.message.capacity());
}

#[test]
fn a_declared_size_prepares_no_more_than_the_hint_cap() {
    let mut s = Session::new(64 << 20);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL);
    s.handle(Command::Connect {
        hostname: b"c.example",
        family: Family::Inet,
        port: 25,
        address: b"192.0.2.1",
    })
    .unwrap();
    s.handle(Command::Helo(b"c.example")).unwrap();
    s.handle(Command::Mail(vec![b"<a@example.org>", b"SIZE=60000000"])).unwrap();
    s.handle(Command::Rcpt(vec![b"<b@example.net>"])).unwrap();
    s.handle(Command::EndOfHeaders).unwrap();
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert!(m.message.capacity() <= SIZE_HINT_CAP, "capacity {}", m.message.capacity());
}

#[test]
fn body_chunks_read_in_place_give_the_same_message_as_handled_chunks() {
    let chunks: [&[u8]; 4] = [b"first line\r\n", &[b'x'; 70_000], b"", b"last\r\n"];
    let run = |direct: bool| {
        let mut s = session();
        envelope_part(&mut s);
        s.handle(Command::Header { name: b"Subject", value: b" hi" }).unwrap();
        assert!(s.body_buffer(10).is_none(), "headers not ended: the normal path adds the blank line");
        s.handle(Command::EndOfHeaders).unwrap();
        let mut steps = Vec::new();
        for chunk in chunks {
            if direct {
                let buf = s.body_buffer(chunk.len()).expect("in the body, under the cap");
                assert!(buf.capacity() - buf.len() >= chunk.len(), "room reserved");
                buf.extend_from_slice(chunk);
                steps.push(s.body_appended(chunk.len()).unwrap());
            } else {
                steps.push(replies(s.handle(Command::Body(chunk)).unwrap()));
            }
        }
        let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
        (steps, m.message, m.received_bytes, m.truncated)
    };
    let handled = run(false);
    assert_eq!(run(true), handled);
    assert_eq!(handled.0[0], vec![Response::Continue], "body chunks are answered (SKIP stays possible)");
}

#[test]
fn body_buffer_is_refused_outside_the_body_and_past_the_cap() {
    let mut s = Session::new(1000);
    negotiate_with(&mut s, POSTFIX_ACTIONS, POSTFIX_PROTOCOL);
    assert!(s.body_buffer(1).is_none(), "no message yet");
    envelope_part(&mut s);
    s.handle(Command::EndOfHeaders).unwrap();
    assert!(s.body_buffer(998).is_some());
    assert!(s.body_buffer(999).is_none(), "2 bytes of blank line + 999 pass the 1000-byte cap");
    // A chunk past the cap goes the normal way, which truncates and answers SKIP.
    assert_eq!(replies(s.handle(Command::Body(&[b'y'; 1200])).unwrap()), vec![Response::Skip]);
    assert!(s.body_buffer(1).is_none(), "a truncated message takes no more in place");
    let m = eom(s.handle(Command::EndOfMessage(b"")).unwrap());
    assert!(m.truncated);
    assert!(s.body_buffer(1).is_none(), "after end of message");
}
