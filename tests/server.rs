//! The daemon end to end over 127.0.0.1 (and a unix socket), driven by our own test MTA.

use std::sync::Arc;
use std::time::Duration;

use inspect_milter::milter::command::Command;
use inspect_milter::milter::response::Response;
use inspect_milter::milter::{Filter, SmtpReply};
use inspect_milter::mta::{Client, ClientError, Message, POSTFIX_OFFER};
use inspect_milter::server::{ListenAddr, Phase};

use crate::support::scripted::Scripted;
use crate::support::{TestServer, options};

fn msg(subject: &str, body: &str) -> Message {
    Message::from_eml(format!("From: a@example.org\nSubject: {subject}\n\n{body}").as_bytes())
}

#[tokio::test]
async fn every_decision_reaches_the_mta() {
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let mut c = server.client().await;
    let cases: [(&str, Response); 5] = [
        ("hello", Response::Accept),
        ("x REJECT", Response::ReplyCode(SmtpReply::new(550, "5.7.1", "Rejected by test filter").unwrap())),
        ("x TEMPFAIL", Response::ReplyCode(SmtpReply::new(451, "4.7.1", "Try later").unwrap())),
        ("x DISCARD", Response::Discard),
        ("x QUARANTINE", Response::Accept),
    ];
    for (subject, want) in cases {
        let out = c.send(&msg(subject, "body\n")).await.unwrap();
        assert_eq!(out.action, Some(want), "{subject}");
        let word = if subject == "hello" { "accept" } else { &subject[2..] };
        assert_eq!(
            out.header("X-Inspect-Verdict"),
            Some(format!("{} scripted tls=none", word.to_lowercase()).as_str()),
            "{subject}"
        );
        assert_eq!(out.quarantined(), subject.ends_with("QUARANTINE"), "{subject}");
        c.abort().await.unwrap();
    }
    assert_eq!(filter.seen().len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn several_messages_per_connection_each_seen_whole() {
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let mut c = server.client().await;
    for i in 0..10 {
        let out = c.send(&msg(&format!("n{i}"), &format!("body {i}\n"))).await.unwrap();
        assert_eq!(out.action, Some(Response::Accept));
        // Postfix sometimes sends ABORT twice.
        c.abort().await.unwrap();
        if i % 3 == 0 {
            c.abort().await.unwrap();
        }
    }
    let seen = filter.seen();
    assert_eq!(seen.len(), 10);
    for (i, m) in seen.iter().enumerate() {
        let want = format!("From: a@example.org\r\nSubject: n{i}\r\n\r\nbody {i}\r\n");
        assert_eq!(String::from_utf8_lossy(&m.message), want);
        assert_eq!(m.envelope.client.addr.as_deref(), Some("192.0.2.10"));
        assert_eq!(m.envelope.helo.as_deref(), Some("client.example"));
    }
    server.stop().await;
}

#[tokio::test]
async fn progress_is_sent_while_a_slow_filter_works() {
    let server = TestServer::start(Arc::new(Scripted::default()), options()).await;
    let mut c = server.client().await;
    let out = c.send(&msg("SLOW 700", "x\n")).await.unwrap();
    assert_eq!(out.action, Some(Response::Accept));
    // 100 ms interval over 700 ms of work.
    assert!(out.progress >= 3, "progress replies: {}", out.progress);
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_filter_becomes_on_error_and_the_server_lives_on() {
    let server = TestServer::start(Arc::new(Scripted::default()), options()).await;
    let mut c = server.client().await;
    let out = c.send(&msg("x PANIC", "x\n")).await.unwrap();
    assert!(matches!(out.action, Some(Response::ReplyCode(ref r)) if r.code() == 451), "{out:?}");
    c.abort().await.unwrap();
    let out = c.send(&msg("after", "x\n")).await.unwrap();
    assert_eq!(out.action, Some(Response::Accept), "same connection still served");
    c.abort().await.unwrap();
    let out = c.send(&msg("x ERROR", "x\n")).await.unwrap();
    assert!(matches!(out.action, Some(Response::ReplyCode(ref r)) if r.code() == 451), "{out:?}");
    let mut c2 = server.client().await;
    let out = c2.send(&msg("x PANIC", "x\n")).await.unwrap();
    assert!(matches!(out.action, Some(Response::ReplyCode(ref r)) if r.code() == 451), "{out:?}");
    server.stop().await;
}

#[tokio::test]
async fn past_the_size_cap_the_body_is_skipped_and_the_filter_told() {
    let filter = Arc::new(Scripted::default());
    let mut opts = options();
    opts.max_message_size = 4096;
    let server = TestServer::start(filter.clone(), opts).await;
    let mut c = server.client().await;
    c.chunk_size = 1000;
    let out = c.send(&msg("big", &"0123456789abcdef\n".repeat(1000))).await.unwrap();
    assert!(out.skipped, "SKIP expected once past the cap");
    assert_eq!(out.action, Some(Response::Accept));
    let seen = filter.seen();
    assert!(seen[0].truncated);
    assert_eq!(seen[0].message.len(), 4096);
    server.stop().await;
}

#[tokio::test]
async fn drain_lets_the_message_in_flight_finish_then_closes() {
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let mut busy = server.client().await;
    let mut idle = server.client().await;
    let sending = tokio::spawn(async move { busy.send(&msg("SLOW 800", "x\n")).await });
    // Wait until the filter has the message.
    for _ in 0..200 {
        if !filter.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.phase.send(Phase::Drain).unwrap();
    let out = sending.await.unwrap().unwrap();
    assert_eq!(out.action, Some(Response::Accept), "in-flight message got its verdict");
    assert!(matches!(idle.read().await, Err(ClientError::Closed)), "idle connection closed at once");
    let refused = Client::connect(&server.addr, Duration::from_secs(2)).await;
    assert!(refused.is_err(), "no new connections while draining");
    tokio::time::timeout(Duration::from_secs(5), server.task).await.expect("server exits").unwrap();
}

#[tokio::test]
async fn stop_cuts_a_message_in_flight() {
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let mut busy = server.client().await;
    let sending = tokio::spawn(async move { busy.send(&msg("SLOW 3000", "x\n")).await });
    for _ in 0..200 {
        if !filter.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.phase.send(Phase::Stop).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(2), sending).await.expect("cut quickly").unwrap();
    assert!(matches!(out, Err(ClientError::Closed)), "{out:?}");
}

#[tokio::test]
async fn garbage_closes_that_connection_only() {
    let server = TestServer::start(Arc::new(Scripted::default()), options()).await;
    let mut http = Client::connect(&server.addr, Duration::from_secs(5)).await.unwrap();
    http.write_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(matches!(http.read().await, Err(ClientError::Closed)));
    let mut truncated = Client::connect(&server.addr, Duration::from_secs(5)).await.unwrap();
    truncated.write_raw(&[0, 0, 0, 0]).await.unwrap();
    assert!(matches!(truncated.read().await, Err(ClientError::Closed)));
    let mut bad_command = Client::connect(&server.addr, Duration::from_secs(5)).await.unwrap();
    bad_command.negotiate(POSTFIX_OFFER).await.unwrap();
    bad_command.write_raw(b"\0\0\0\x01Z").await.unwrap();
    assert!(matches!(bad_command.read().await, Err(ClientError::Closed)));
    let mut c = server.client().await;
    assert_eq!(c.send(&msg("fine", "x\n")).await.unwrap().action, Some(Response::Accept));
    server.stop().await;
}

#[tokio::test]
async fn the_mta_closing_mid_body_leaves_the_server_serving() {
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let mut c = server.client().await;
    c.write(&Command::Mail(vec![b"<a@b>"])).await.unwrap();
    c.write(&Command::Rcpt(vec![b"<c@d>"])).await.unwrap();
    c.write(&Command::EndOfHeaders).await.unwrap();
    c.write(&Command::Body(b"half a bo")).await.unwrap();
    drop(c);
    let mut c = server.client().await;
    assert_eq!(c.send(&msg("next", "x\n")).await.unwrap().action, Some(Response::Accept));
    assert_eq!(filter.seen().len(), 1, "the cut message never reached the filter");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let mut opts = options();
    opts.idle_timeout = Duration::from_millis(300);
    let server = TestServer::start(Arc::new(Scripted::default()), opts).await;
    let mut c = server.client().await;
    let started = std::time::Instant::now();
    assert!(matches!(c.read().await, Err(ClientError::Closed)));
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.stop().await;
}

#[tokio::test]
async fn a_message_trickling_past_the_message_timeout_is_cut() {
    let mut opts = options();
    opts.message_timeout = Duration::from_millis(400);
    let server = TestServer::start(Arc::new(Scripted::default()), opts).await;
    let mut c = server.client().await;
    c.write(&Command::Mail(vec![b"<a@b>"])).await.unwrap();
    c.write(&Command::Rcpt(vec![b"<c@d>"])).await.unwrap();
    c.write(&Command::EndOfHeaders).await.unwrap();
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if c.write(&Command::Body(b"x")).await.is_err() {
            closed = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), c.read()).await {
            Ok(Ok(Response::Continue)) | Err(_) => {}
            Ok(Err(ClientError::Closed)) => {
                closed = true;
                break;
            }
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert!(closed, "a trickling message must not hold the connection forever");
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_limit_wait_for_a_slot() {
    let mut opts = options();
    opts.max_connections = 1;
    let server = TestServer::start(Arc::new(Scripted::default()), opts).await;
    let first = server.client().await;
    // The second connection is in the backlog: TCP connects, but nothing answers OPTNEG.
    let mut second = Client::connect(&server.addr, Duration::from_millis(500)).await.unwrap();
    second.write(&Command::OptNeg { version: 6, actions: 0x1ff, protocol: 0x1f_ffff }).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_millis(300), second.read()).await,
        Err(_) | Ok(Err(ClientError::Timeout))
    ));
    first.quit().await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), second.read()).await.unwrap().unwrap();
    assert!(matches!(reply, Response::OptNeg { .. }));
    server.stop().await;
}

#[tokio::test]
async fn unix_socket_listener_serves_with_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("im-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("milter.sock");
    let addr = ListenAddr::Unix(path.clone());
    let server = TestServer::start_on(&addr, Arc::new(Scripted::default()), options()).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let mut c = server.client().await;
    assert_eq!(c.send(&msg("over unix", "x\n")).await.unwrap().action, Some(Response::Accept));
    server.stop().await;
    assert!(!path.exists(), "socket removed on exit");
}

#[tokio::test]
async fn a_new_filter_applies_to_new_messages_not_to_one_in_flight() {
    let old = Arc::new(Scripted::tagged("-old"));
    let server = TestServer::start(old.clone(), options()).await;
    let mut c = server.client().await;
    // Start a message, swap the filter mid-message, finish it.
    c.write(&Command::Mail(vec![b"<a@b>"])).await.unwrap();
    c.write(&Command::Rcpt(vec![b"<c@d>"])).await.unwrap();
    // Let the server read MAIL before the swap.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let new: Arc<dyn Filter> = Arc::new(Scripted::tagged("-new"));
    server.filters.send(new).unwrap();
    c.write(&Command::Header { name: b"Subject", value: b" x" }).await.unwrap();
    c.write(&Command::EndOfHeaders).await.unwrap();
    c.write(&Command::EndOfMessage(b"")).await.unwrap();
    let mut header = None;
    loop {
        match c.read().await.unwrap() {
            Response::AddHeader { value, .. } => header = Some(value),
            Response::Progress => {}
            _ => break,
        }
    }
    assert_eq!(header.as_deref(), Some(" accept scripted-old tls=none"));
    c.abort().await.unwrap();
    let out = c.send(&msg("later", "x\n")).await.unwrap();
    assert_eq!(out.header("X-Inspect-Verdict"), Some("accept scripted-new tls=none"));
    server.stop().await;
}

#[tokio::test]
async fn a_hundred_kib_header_arrives_whole_over_the_socket() {
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), options()).await;
    let mut c = server.client().await;
    let value = "h".repeat(100 * 1024);
    let out = c.send(&msg(&format!("long\nX-Long: {value}"), "x\n")).await.unwrap();
    assert_eq!(out.action, Some(Response::Accept));
    let seen = String::from_utf8_lossy(&filter.seen()[0].message).into_owned();
    assert!(seen.contains(&format!("X-Long: {value}\r\n")), "{}", seen.len());
    server.stop().await;
}

/// Body chunks split across writes at every awkward place (inside the length, after the
/// command byte, mid-payload), two chunks in one write, a chunk followed at once by the end
/// of message, and a chunk that does not fit the size cap: the filter sees the message byte
/// for byte, and every chunk gets its reply.
#[tokio::test]
async fn body_chunks_in_pieces_or_together_arrive_whole() {
    let filter = Arc::new(Scripted::default());
    let mut opts = options();
    opts.max_message_size = 200_000;
    let server = TestServer::start(filter.clone(), opts).await;
    let mut c = server.client().await;
    let body: Vec<u8> = (0..150_000u32).map(|i| b"0123456789abcdef\r\n"[i as usize % 18]).collect();
    let chunks: Vec<&[u8]> = body.chunks(40_000).collect();
    let packet = |chunk: &[u8]| {
        let mut p = Vec::new();
        Command::Body(chunk).encode(&mut p);
        p
    };
    let pause = || tokio::time::sleep(Duration::from_millis(20));
    let continued = |r: Response| assert_eq!(r, Response::Continue);
    for round in 0..2 {
        c.write(&Command::Mail(vec![b"<a@example.org>", b"SIZE=150000"])).await.unwrap();
        c.write(&Command::Rcpt(vec![b"<b@example.net>"])).await.unwrap();
        c.write(&Command::Data).await.unwrap();
        c.write(&Command::Header { name: b"Subject", value: b" pieces" }).await.unwrap();
        c.write(&Command::EndOfHeaders).await.unwrap();
        // The first chunk in pieces: 3 bytes of the length, 2 more, a little payload, the rest.
        let first = packet(chunks[0]);
        for piece in [&first[..3], &first[3..5], &first[5..1005], &first[1005..]] {
            c.write_raw(piece).await.unwrap();
            pause().await;
        }
        continued(c.read().await.unwrap());
        // Two chunks in one write.
        c.write_raw(&[packet(chunks[1]), packet(chunks[2])].concat()).await.unwrap();
        continued(c.read().await.unwrap());
        continued(c.read().await.unwrap());
        // The last chunk and the end of message together.
        let mut tail = packet(chunks[3]);
        Command::EndOfMessage(b"").encode(&mut tail);
        c.write_raw(&tail).await.unwrap();
        continued(c.read().await.unwrap());
        let mut action = None;
        while action.is_none() {
            match c.read().await.unwrap() {
                r @ Response::Accept => action = Some(r),
                Response::Progress | Response::AddHeader { .. } | Response::InsertHeader { .. } => {}
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        c.abort().await.unwrap();
    }
    // A chunk past the cap, in pieces: it takes the ordinary path (truncation, SKIP).
    c.write(&Command::Mail(vec![b"<a@example.org>"])).await.unwrap();
    c.write(&Command::Rcpt(vec![b"<b@example.net>"])).await.unwrap();
    c.write(&Command::EndOfHeaders).await.unwrap();
    let big = packet(&[b'z'; 210_000]);
    for piece in [&big[..5], &big[5..100_000], &big[100_000..]] {
        c.write_raw(piece).await.unwrap();
        pause().await;
    }
    assert_eq!(c.read().await.unwrap(), Response::Skip);
    let seen = filter.seen();
    assert_eq!(seen.len(), 2);
    let want = [&b"Subject: pieces\r\n\r\n"[..], &body].concat();
    for m in &seen {
        assert!(m.message == want, "message differs (len {} vs {})", m.message.len(), want.len());
        assert_eq!(m.received_bytes, want.len() as u64);
        assert!(!m.truncated);
    }
    server.stop().await;
}
