//! Real MTAs in the loop: a private Postfix, a private Sendmail and miltertest, each driving
//! the milter (in process, with the scripted filter) on loopback. Run by `tests/run`, which
//! installs the MTAs; see `support/lab.rs`.

use std::sync::Arc;

use inspect_milter::server::ListenAddr;

use crate::support::lab::{Postfix, Sendmail, TempDir, exclusive, miltertest};
use crate::support::scripted::Scripted;
use crate::support::smtp::Smtp;
use crate::support::{TestServer, options};

fn inet(server: &TestServer) -> String {
    server.addr.to_string()
}

/// `inet:PORT@HOST`, the form Sendmail and miltertest take.
fn libmilter(server: &TestServer) -> String {
    match &server.addr {
        ListenAddr::Inet { host, port } => format!("inet:{port}@{host}"),
        ListenAddr::Unix(p) => format!("local:{}", p.display()),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn postfix_header_reject_hold_tempfail() {
    let _lock = exclusive().await;
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let milter = inet(&server);
    blocking(move || {
        let pf = Postfix::start(&milter, &[]);

        let (code, out) = pf.send(&["--header", "Subject: hello"]);
        assert_eq!(code, 0, "{out}");
        let inbox = pf.inbox();
        assert!(inbox.contains("X-Inspect-Verdict: accept scripted tls=none"), "{inbox}");

        let (code, out) = pf.send(&["--header", "Subject: please REJECT"]);
        assert_eq!(code, 26, "{out}");
        assert!(out.contains("550 5.7.1 Rejected by test filter"), "{out}");

        let (code, out) = pf.send(&["--header", "Subject: hold QUARANTINE"]);
        assert_eq!(code, 0, "quarantine is accepted into the hold queue: {out}");
        assert_eq!(pf.held_count(), 1);

        let (code, out) = pf.send(&["--header", "Subject: later TEMPFAIL"]);
        assert_eq!(code, 26, "{out}");
        assert!(out.contains("451 4.7.1 Try later"), "{out}");

        assert_eq!(pf.inbox_count(), 1, "only the accepted message was delivered");
        let log = pf.log();
        assert!(log.contains("milter-reject: END-OF-MESSAGE"), "{log}");
        assert!(log.contains("milter-hold: END-OF-MESSAGE"), "{log}");
    })
    .await;
    assert_eq!(filter.seen().len(), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn postfix_two_messages_on_one_smtp_connection() {
    let _lock = exclusive().await;
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let milter = inet(&server);
    blocking(move || {
        let pf = Postfix::start(&milter, &[]);
        let mut smtp = Smtp::connect(pf.port());
        assert!(smtp.cmd("EHLO client.example").starts_with("250"));
        let first = smtp.message("a@example.org", "b@example.net", "Subject: first REJECT\r\n\r\none\r\n");
        assert!(first.starts_with("550 5.7.1"), "{first}");
        let second = smtp.message("a@example.org", "b@example.net", "Subject: second\r\n\r\ntwo\r\n");
        assert!(second.starts_with("250"), "{second}");
        smtp.cmd("QUIT");
        let inbox = pf.inbox();
        assert!(inbox.contains("Subject: second") && !inbox.contains("Subject: first"), "{inbox}");
        assert!(inbox.contains("X-Inspect-Verdict: accept scripted"), "{inbox}");
    })
    .await;
    let seen = filter.seen();
    assert_eq!(seen.len(), 2);
    assert!(String::from_utf8_lossy(&seen[1].message).contains("\r\n\r\ntwo\r\n"));
    assert!(!String::from_utf8_lossy(&seen[1].message).contains("one"), "no state leaked between messages");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn postfix_twenty_megabytes_and_a_hundred_kib_header() {
    let _lock = exclusive().await;
    let filter = Arc::new(Scripted::default());
    let mut opts = options();
    opts.max_message_size = 64 << 20;
    let server = TestServer::start(filter.clone(), opts).await;
    let milter = inet(&server);
    let tmp = TempDir::new("big");
    let big = tmp.0.join("big.eml");
    let mut body = String::from("Subject: big\r\n\r\n");
    let line = format!("{}\r\n", "0123456789".repeat(7));
    while body.len() < 20 * 1024 * 1024 {
        body.push_str(&line);
    }
    std::fs::write(&big, &body).unwrap();
    let big_arg = format!("@{}", big.display());
    let long_header = format!("X-Long: {}", "h".repeat(100 * 1024 - 20));
    let delivered = blocking(move || {
        let pf = Postfix::start(&milter, &[("LAB_MESSAGE_SIZE_LIMIT", "50000000")]);
        let (code, out) = pf.send(&["--data", &big_arg]);
        assert_eq!(code, 0, "{}", &out[out.len().saturating_sub(2000)..]);
        let (code, out) = pf.send(&["--header", "Subject: long header", "--header", &long_header]);
        assert_eq!(code, 0, "{}", &out[out.len().saturating_sub(2000)..]);
        assert_eq!(pf.inbox_count(), 2);
        let inbox = pf.inbox();
        assert_eq!(inbox.matches("X-Inspect-Verdict: accept scripted").count(), 2);
        inbox.lines().find(|l| l.starts_with("X-Long:")).map_or(0, |l| l.matches('h').count())
    })
    .await;
    let seen = filter.seen();
    assert_eq!(seen.len(), 2);
    assert!(!seen[0].truncated && seen[0].received_bytes >= 20 * 1024 * 1024, "{}", seen[0].received_bytes);
    // The header as the filter got it, unfolded (the MTA may fold a line this long). Postfix
    // 3.7 with milters keeps at most 60000 bytes of one header line, in what it passes to the
    // milter and in what it delivers alike: the filter must see exactly what is delivered.
    let long = String::from_utf8_lossy(&seen[1].message).into_owned();
    let start = long.find("X-Long:").expect("the long header reached the filter");
    let mut value = String::new();
    for (i, line) in long[start..].split("\r\n").enumerate() {
        if i > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        value.push_str(line.trim_start());
    }
    let got = value.matches('h').count();
    assert!(got >= 59_000, "the header reached the filter with {got} bytes");
    assert_eq!(got, delivered, "the filter saw the header as delivered");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn postfix_with_the_milter_down_tempfails() {
    let _lock = exclusive().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    blocking(move || {
        let pf =
            Postfix::start(&format!("inet:127.0.0.1:{closed}"), &[("LAB_MILTER_DEFAULT_ACTION", "tempfail")]);
        let (code, out) = pf.send(&["--header", "Subject: nobody home"]);
        assert_eq!(code, 23, "{out}");
        assert!(out.contains("451 4.7.1"), "{out}");
        assert_eq!(pf.inbox_count(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn postfix_over_unix_socket_ipv4_and_ipv6() {
    let _lock = exclusive().await;
    let sockdir = TempDir::new("sock");
    let path = sockdir.0.join("milter.sock");
    let filter = Arc::new(Scripted::default());
    // The postfix user must be able to connect: 0666 here, a shared group in production.
    let unix =
        TestServer::start_with_mode(&ListenAddr::Unix(path.clone()), 0o666, filter.clone(), options()).await;
    let v4 = TestServer::start(filter.clone(), options()).await;
    let v6 = TestServer::start_on(&"inet:[::1]:0".parse().unwrap(), filter.clone(), options()).await;
    let milters = [format!("unix:{}", path.display()), inet(&v4), inet(&v6)];
    blocking(move || {
        let pf = Postfix::start(&milters[0], &[]);
        for (i, milter) in milters.iter().enumerate() {
            pf.set_milter(milter);
            let (code, out) = pf.send(&["--header", &format!("Subject: via {i}")]);
            assert_eq!(code, 0, "{milter}: {out}");
        }
        let inbox = pf.inbox();
        assert_eq!(inbox.matches("X-Inspect-Verdict: accept scripted").count(), 3, "{inbox}");
    })
    .await;
    let seen = filter.seen();
    assert_eq!(seen.len(), 3);
    unix.stop().await;
    v4.stop().await;
    v6.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn postfix_starttls_reaches_the_filter_as_tls_macros() {
    let _lock = exclusive().await;
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let milter = inet(&server);
    blocking(move || {
        let pf = Postfix::start(&milter, &[("LAB_TLS", "1")]);
        let (code, out) = pf.send(&["--tls", "--header", "Subject: over tls"]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = pf.send(&["--header", "Subject: in clear"]);
        assert_eq!(code, 0, "{out}");
        let inbox = pf.inbox();
        assert!(inbox.contains("X-Inspect-Verdict: accept scripted tls=TLSv1.3"), "{inbox}");
        assert!(inbox.contains("X-Inspect-Verdict: accept scripted tls=none"), "{inbox}");
    })
    .await;
    let seen = filter.seen();
    let tls = seen[0].envelope.tls.as_ref().expect("TLS context at end of message");
    assert!(tls.cipher.is_some() && tls.bits.is_some(), "{tls:?}");
    assert_eq!(seen[1].envelope.tls, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn sendmail_header_reject_quarantine_and_no_abort_after_a_decision() {
    let _lock = exclusive().await;
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let milter = libmilter(&server);
    blocking(move || {
        let sm = Sendmail::start(&milter);
        let (code, out) = sm.send(&["--header", "Subject: hello"]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = sm.send(&["--header", "Subject: please REJECT"]);
        assert_eq!(code, 26, "{out}");
        assert!(out.contains("550 5.7.1 Rejected by test filter"), "{out}");
        let (code, out) = sm.send(&["--header", "Subject: hold QUARANTINE"]);
        assert_eq!(code, 0, "{out}");
        let held = sm.held();
        assert!(held.contains("QUARANTINE: test quarantine"), "{held}");
        // Sendmail sends no ABORT after the milter's end-of-message decision: the next MAIL on
        // the same connection must still start a clean message.
        let mut smtp = Smtp::connect(sm.port());
        assert!(smtp.cmd("EHLO client.example").starts_with("250"));
        let first = smtp.message("a@example.org", "b@example.net", "Subject: one REJECT\r\n\r\none\r\n");
        assert!(first.starts_with("550"), "{first}");
        let second = smtp.message("a@example.org", "b@example.net", "Subject: two\r\n\r\ntwo\r\n");
        assert!(second.starts_with("250"), "{second}");
        smtp.cmd("QUIT");
        let inbox = sm.inbox();
        assert!(inbox.contains("X-Inspect-Verdict: accept scripted"), "{inbox}");
        assert!(inbox.contains("Subject: two"), "{inbox}");
    })
    .await;
    let seen = filter.seen();
    let last = String::from_utf8_lossy(&seen.last().unwrap().message).into_owned();
    assert!(last.contains("Subject: two") && !last.contains("one"), "{last}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn miltertest_scripts_pass() {
    let _lock = exclusive().await;
    let server = TestServer::start(Arc::new(Scripted::default()), options()).await;
    let socket = libmilter(&server);
    let negotiation = [
        ("REQUIRE_PROTO", "NR_CONN,NR_HELO,NR_MAIL,NR_RCPT,NR_DATA,NR_HDR,NR_EOH,HDR_LEADSPC"),
        ("FORBID_PROTO", "NR_BODY"),
    ];
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("accept.lua", vec![("EXPECT_VALUE", "accept scripted tls=none")]),
        ("reject.lua", vec![("SUBJECT", "x REJECT"), ("EXPECT_SMTP", "550 5.7.1 Rejected by test filter")]),
        (
            "quarantine.lua",
            vec![("SUBJECT", "x QUARANTINE"), ("EXPECT_QUARANTINE_REASON", "test quarantine")],
        ),
        ("tempfail.lua", vec![("SUBJECT", "x TEMPFAIL"), ("EXPECT_SMTP", "451 4.7.1 Try later")]),
        ("session.lua", vec![("EARLY_SUBJECT", "REJECT-ME"), ("TLS_VERSION", "TLSv1.3")]),
        ("session.lua", vec![("ABORT_AFTER_EOM", "0")]),
    ];
    blocking(move || {
        for (script, vars) in cases {
            let all: Vec<(&str, &str)> = negotiation.iter().copied().chain(vars.iter().copied()).collect();
            let (ok, out) = miltertest(script, &socket, &all);
            assert!(ok, "{script} {vars:?}:\n{out}");
        }
    })
    .await;
    server.stop().await;
}
