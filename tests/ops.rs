//! The daemon as an administrator runs it: the real binary with a configuration file, its log
//! lines, its metrics endpoint, reloads on SIGHUP, `check --connect`, and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use inspect_milter::milter::response::Response;
use inspect_milter::mta::{Client, Message, POSTFIX_OFFER};
use inspect_milter::server::ListenAddr;

use crate::support::lab::TempDir;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    addr: ListenAddr,
    metrics_port: u16,
}

impl Daemon {
    fn start(config: &Path, addr: ListenAddr, metrics_port: u16) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
            .args(["serve", "--config"])
            .arg(config)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let d = Daemon { child, log, addr, metrics_port };
        d.wait_for("listening");
        d
    }

    /// Waits (at most 30 s) for a log line containing `needle`; returns it.
    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_nth(needle, 1)
    }

    fn wait_for_nth(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found: Vec<String> =
                self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    fn metrics(&self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics_port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn message(subject: &str, queue_id: &str) -> Message {
    let mut m = Message::from_eml(
        format!("From: a@example.org\nSubject: {subject}\nMessage-ID: <{queue_id}@example.org>\n\nbody\n")
            .as_bytes(),
    );
    m.sender = "sender@example.org".into();
    m.recipients = vec!["one@example.net".into(), "two@example.net".into()];
    m.macros = vec![
        (
            b'M',
            vec![
                ("{tls_version}".into(), "TLSv1.3".into()),
                ("{cipher}".into(), "TLS_AES_256_GCM_SHA384".into()),
            ],
        ),
        (b'E', vec![("i".into(), queue_id.into())]),
    ];
    m
}

async fn send(addr: &ListenAddr, m: &Message) -> inspect_milter::mta::Outcome {
    let mut c = Client::connect(addr, Duration::from_secs(10)).await.unwrap();
    c.negotiate(POSTFIX_OFFER).await.unwrap();
    c.open("192.0.2.55", "client.example").await.unwrap();
    let out = c.send(m).await.unwrap();
    let _ = c.quit().await;
    out
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start =
        line.find(&format!(" {key}=")).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len() + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        &quoted[..quoted.find('"').unwrap()]
    } else {
        rest.split(' ').next().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_metrics_reload_and_health() {
    let dir = TempDir::new("ops");
    let rules = dir.0.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let rule = |id: &str, word: &str, extra: &str| {
        format!("rules:\n  - id: {id}\n    targets: [subject]\n    pattern: {word}\n    score: 12\n{extra}")
    };
    std::fs::write(rules.join("a.yaml"), rule("hold_word", "holdme", "")).unwrap();
    let (port, mport) = (free_port(), free_port());
    let config = dir.0.join("config.yaml");
    let write_config = |listen_port: u16| {
        std::fs::write(
            &config,
            format!(
                "listen: inet:127.0.0.1:{listen_port}\nrules:\n  dir: {}\nquarantine:\n  dir: {}\nmetrics:\n  listen: inet:127.0.0.1:{mport}\nrelease:\n  secret_file: {}\n",
                rules.display(),
                dir.0.join("q").display(),
                dir.0.join("release.key").display()
            ),
        )
        .unwrap();
    };
    write_config(port);
    let addr: ListenAddr = format!("inet:127.0.0.1:{port}").parse().unwrap();
    let d = Daemon::start(&config, addr.clone(), mport);
    d.wait_for("rules loaded");

    // The summary line of a quarantined message carries every field.
    let out = send(&d.addr, &message("please holdme", "QID1")).await;
    assert_eq!(out.action, Some(Response::Discard), "{out:?}");
    let line = d.wait_for("queue_id=QID1");
    assert_eq!(field(&line, "message_id"), "<QID1@example.org>");
    assert_eq!(field(&line, "client"), "unknown[192.0.2.55]");
    assert_eq!(field(&line, "from"), "sender@example.org");
    assert_eq!(field(&line, "rcpt"), "one@example.net,two@example.net");
    assert_eq!(field(&line, "tls"), "TLSv1.3");
    assert_eq!(field(&line, "cipher"), "TLS_AES_256_GCM_SHA384");
    assert_eq!(field(&line, "decision"), "quarantine");
    assert_eq!(field(&line, "score"), "12");
    assert_eq!(field(&line, "rules"), "hold_word");
    assert_eq!(field(&line, "coverage"), "complete");
    assert!(field(&line, "size").parse::<u64>().unwrap() > 50);
    assert!(field(&line, "scan_ms").parse::<u64>().is_ok());
    assert_eq!(field(&line, "action"), "discard");
    assert!(field(&line, "quarantine_id").len() == 29, "{line}");
    // A hostile subject cannot forge a line.
    send(&d.addr, &message("x\nqueue_id=FAKE decision=accept", "QID2")).await;
    let line = d.wait_for("queue_id=QID2");
    assert!(!d.log.lock().unwrap().iter().any(|l| l.starts_with("queue_id=FAKE")), "{line}");

    // Metrics count what happened.
    send(&d.addr, &message("plain", "QID3")).await;
    d.wait_for("queue_id=QID3");
    let m = d.metrics();
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(m.contains("inspect_milter_messages_total{decision=\"quarantine\"} 1"), "{m}");
    assert!(m.contains("inspect_milter_messages_total{decision=\"accept\"} 2"), "{m}");
    assert!(m.contains("inspect_milter_rule_hits_total{rule=\"hold_word\"} 1"), "{m}");
    assert!(m.contains("inspect_milter_rules_loaded 1"), "{m}");
    assert!(m.contains("inspect_milter_scan_seconds_count 3"), "{m}");

    // A valid change applies.
    std::fs::write(rules.join("b.yaml"), rule("second_word", "secondword", "")).unwrap();
    d.signal("HUP");
    d.wait_for("reloaded");
    let out = send(&d.addr, &message("secondword", "QID4")).await;
    assert_eq!(out.action, Some(Response::Discard), "the new rule applies: {out:?}");
    // A broken rule keeps the old set.
    std::fs::write(rules.join("c.yaml"), "rules:\n  - id: broken\n    targets: [bodyy]\n    pattern: x\n")
        .unwrap();
    d.signal("HUP");
    let failed = d.wait_for("reload failed");
    assert!(
        failed.contains("bodyy") && failed.contains("error(s)) / ") && !failed.contains("/  "),
        "{failed}"
    );
    let out = send(&d.addr, &message("secondword", "QID5")).await;
    assert_eq!(out.action, Some(Response::Discard), "the old rules stay in force: {out:?}");
    std::fs::remove_file(rules.join("c.yaml")).unwrap();
    // An invalid configuration keeps the old snapshot too, and the line names the key.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}policy:\n  treshold: 3\n")).unwrap();
    d.signal("HUP");
    let failed = d.wait_for_nth("reload failed", 2);
    assert!(failed.contains("treshold"), "{failed}");
    let out = send(&d.addr, &message("secondword", "QID6")).await;
    assert_eq!(out.action, Some(Response::Discard), "the old snapshot stays in force: {out:?}");
    // A restart-only key warns.
    write_config(free_port());
    d.signal("HUP");
    let warned = d.wait_for("takes effect after a restart");
    assert!(warned.contains("listen"), "{warned}");
    d.wait_for_nth("reloaded", 2);
    let m = d.metrics();
    assert!(m.contains("inspect_milter_reloads_total{result=\"ok\"} 2"), "{m}");
    assert!(m.contains("inspect_milter_reloads_total{result=\"failed\"} 2"), "{m}");

    // check --connect reports what the running milter offers; a closed port is an error.
    let out = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .args(["check", "--connect", &addr.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("version 6") && text.contains("add-headers") && text.contains("quarantine"),
        "{text}"
    );
    assert!(text.contains("header-leading-space") && !text.contains("no-reply-body"), "{text}");
    // With --config, the file is checked in the same run: a broken one is not passed over.
    let bad = std::env::temp_dir().join(format!("inspect-milter-check-{}.yaml", std::process::id()));
    std::fs::write(&bad, "timeouts:\n  idle: 0s\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .args(["check", "--connect", &addr.to_string(), "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("version 6") && text.contains("2:3: error[C003]: timeouts.idle"), "{text}");
    let closed = format!("inet:127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .args(["check", "--connect", &closed])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // SIGTERM: a clean exit.
    let mut d = d;
    d.signal("TERM");
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line() {
    let dir = TempDir::new("jsonlog");
    let port = free_port();
    let config = dir.0.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: inet:127.0.0.1:{port}\nquarantine:\n  dir: {}\nlog:\n  format: json\nrelease:\n  secret_file: {}\n",
            dir.0.join("q").display(),
            dir.0.join("release.key").display()
        ),
    )
    .unwrap();
    let addr: ListenAddr = format!("inet:127.0.0.1:{port}").parse().unwrap();
    let d = Daemon::start(&config, addr, 0);
    send(&d.addr, &message("hello", "QJSON")).await;
    let line = d.wait_for("QJSON");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["decision"], "accept");
    assert_eq!(v["queue_id"], "QJSON");
    assert_eq!(v["tls"], "TLSv1.3");
}

/// The campaign case the attack test sends: of the cases an MTA delivers at 1 MB, the slowest
/// at 10·N in the release-mode campaign (`cargo run --release --example complexity`). The
/// top-level header cases are slower still, but no MTA passes a 1 MB header line (Postfix
/// cuts headers at `header_size_limit`, and a milter packet is at most 1 MiB); the header of
/// an embedded message is body to the MTA.
const ATTACK_CASE: &str = "header-q-word-rescans-embedded";

/// CPU seconds (user + system) the process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Under attack, mail still flows: 32 connections each send the campaign's worst case at 1 MB
/// while a clean message goes through on a connection of its own. The clean message is
/// answered within the deadline plus 2 s (its deadline counts from its arrival, so waiting
/// behind the attack is part of it), every hostile message is answered, and afterwards the
/// daemon's CPU goes back to idle. Held mail stays in the MTA's queue (`quarantine.mode:
/// hold`), so what is measured is the filter's time, not the disk's: in `store` mode the
/// thirty-two 1 MB quarantine writes, each synced, queue before the clean message too.
#[tokio::test(flavor = "multi_thread")]
async fn under_attack_a_clean_message_is_answered_within_the_deadline() {
    let dir = TempDir::new("attack");
    let (port, mport) = (free_port(), free_port());
    let config = dir.0.join("config.yaml");
    let scan_timeout = Duration::from_secs(3);
    std::fs::write(
        &config,
        format!(
            "listen: inet:127.0.0.1:{port}\nmax_message_size: 4MiB\ninspect:\n  scan_timeout: 3s\n  threads: 2\nquarantine:\n  mode: hold\n  dir: {}\nmetrics:\n  listen: inet:127.0.0.1:{mport}\nrelease:\n  secret_file: {}\n",
            dir.0.join("q").display(),
            dir.0.join("release.key").display()
        ),
    )
    .unwrap();
    let addr: ListenAddr = format!("inet:127.0.0.1:{port}").parse().unwrap();
    let d = Daemon::start(&config, addr.clone(), mport);
    d.wait_for("rules loaded");

    let case = crate::complexity_inputs::cases().into_iter().find(|c| c.name == ATTACK_CASE).unwrap();
    let hostile = Message::from_eml(&(case.build)(1 << 20));
    let mut attack = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (addr, m) = (addr.clone(), hostile.clone());
        attack.spawn(async move { tokio::time::timeout(Duration::from_secs(120), send(&addr, &m)).await });
    }
    // The clean message comes a second into the attack, behind it in the queue.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let clean = send(&addr, &message("lunch on friday", "CLEAN1")).await;
    let took = started.elapsed();
    assert!(
        took < scan_timeout + Duration::from_secs(2),
        "the clean message was answered after {took:?} (deadline {scan_timeout:?}): {clean:?}"
    );
    assert!(clean.action.is_some(), "{clean:?}");
    let mut answered = 0;
    while let Some(done) = attack.join_next().await {
        let outcome = done.unwrap().expect("a hostile message was answered within 120 s");
        assert!(outcome.action.is_some(), "{outcome:?}");
        answered += 1;
    }
    assert_eq!(answered, 32);
    eprintln!("clean message answered in {took:?}: {}", d.wait_for("queue_id=CLEAN1"));
    // Back to idle: nothing left running once every message is answered.
    let pid = d.child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds(pid) - before;
    assert!(used < 0.2, "the daemon used {used:.2} s of CPU in 2 s after the attack");
}
