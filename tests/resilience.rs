//! Faults and load, each with a defined outcome and nothing acknowledged lost: a scan that
//! exceeds its budget, the daemon killed in the middle of a message, a thousand connections
//! at once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use inspect_milter::config::Config;
use inspect_milter::inspect::{Decision, Reason};
use inspect_milter::milter::response::Response;
use inspect_milter::mta::{Client, Message, POSTFIX_OFFER};
use inspect_milter::pipeline::Pipeline;

use crate::support::lab::{Postfix, TempDir, exclusive};
use crate::support::scripted::Scripted;
use crate::support::{TestServer, options};

/// A rule whose condition is quadratic in the input: on a few hundred KiB it runs for hours,
/// so only the scan budget can stop it.
const SLOW_RULE: &str = "import \"math\"\nrule endless { meta: score = 1 condition: part_kind == \"attachment\" and for all i in (0..filesize) : (math.entropy(0, i) >= 0) }\n";

fn slow_setup(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("slow.yar"), SLOW_RULE).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "rules:\n  dir: {}\ninspect:\n  scan_timeout: 2s\nquarantine:\n  dir: {}\nrelease:\n  secret_file: {}\n",
            rules.display(),
            dir.join("q").display(),
            dir.join("release.key").display()
        ),
    )
    .unwrap();
    let blob: String = (0..300_000u32).map(|i| char::from(b'A' + (i * 7 % 26) as u8)).collect();
    let message = format!(
        "From: a@example.org\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\
         Content-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/octet-stream; name=data.bin\n\
         Content-Disposition: attachment; filename=data.bin\n\n{blob}\n--b--\n"
    );
    (config, message.into_bytes())
}

#[test]
fn a_scan_past_its_budget_is_recorded_and_quarantined_not_passed() {
    let dir = TempDir::new("budget");
    let (config, message) = slow_setup(&dir.0);
    let config = Config::load(&config).unwrap();
    let (pipeline, _) = Pipeline::load(&config).unwrap();
    let report = pipeline.run(&message, &Default::default(), false, message.len() as u64);
    assert!(
        report.coverage.uninspectable.iter().any(|u| u.reason == Reason::ScanTimeout),
        "{:?}",
        report.coverage
    );
    assert_eq!(report.decision, Decision::Quarantine);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn the_daemon_killed_mid_message_makes_postfix_tempfail_and_the_store_stays_whole() {
    let _lock = exclusive().await;
    let dir = TempDir::new("sigkill");
    let (config, message) = slow_setup(&dir.0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("listen: inet:127.0.0.1:{port}\n"));
    std::fs::write(&config, text).unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let eml = dir.0.join("big.eml");
    std::fs::write(&eml, &message).unwrap();
    let pid = daemon.id();
    let config2 = config.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let pf = Postfix::start(&format!("inet:127.0.0.1:{port}"), &[]);
        let sending = pf
            .command(&["send", "--data", &format!("@{}", eml.display())])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The slow rule keeps the daemon busy at end of message; kill it there.
        std::thread::sleep(Duration::from_millis(1500));
        Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
        let out = sending.wait_with_output().unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text, pf.inbox_count(), config2)
    })
    .await
    .unwrap();
    let _ = daemon.wait();
    let (code, out, inbox, config) = outcome;
    assert_eq!(code, 26, "the client is told to retry: {out}");
    assert!(out.contains("451 4.7.1"), "{out}");
    assert_eq!(inbox, 0, "nothing was delivered uninspected");
    let list = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .args(["quarantine", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        list.status.code(),
        Some(0),
        "the store opens and lists: {}",
        String::from_utf8_lossy(&list.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_connections_at_once_are_all_served() {
    let mut opts = options();
    opts.max_connections = 1000;
    let filter = Arc::new(Scripted::default());
    let server = TestServer::start(filter.clone(), opts).await;
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let addr = server.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&addr, Duration::from_secs(60)).await.unwrap();
            c.negotiate(POSTFIX_OFFER).await.unwrap();
            c.open("192.0.2.1", "many.example").await.unwrap();
            let m = Message::from_eml(format!("Subject: n{i}\n\nbody {i}\n").as_bytes());
            let out = c.send(&m).await.unwrap();
            (c, out.action)
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        let (c, action) = t.await.unwrap();
        assert_eq!(action, Some(Response::Accept));
        open.push(c);
    }
    assert_eq!(filter.seen().len(), 1000);
    assert_eq!(open.len(), 1000, "all 1000 connections held open at once");
    drop(open);
    server.stop().await;
}
