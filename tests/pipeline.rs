//! The real filter (inspection + policy with the shipped rules) through the daemon, through
//! real Postfix, and through `scan`: the same message must get the same decision everywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use inspect_milter::config::Config;
use inspect_milter::config::quarantine::QuarantineMode;
use inspect_milter::milter::Filter;
use inspect_milter::milter::response::Response;
use inspect_milter::mta::{Message, Outcome};
use inspect_milter::pipeline::{InspectFilter, Pipeline};
use inspect_milter::quarantine::Store;

use crate::support::lab::{Postfix, TempDir, exclusive};
use crate::support::{TestServer, options};

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime").join(rel)).unwrap()
}

pub fn eicar_message() -> Vec<u8> {
    // Built at run time so no file in the repository trips a virus scanner.
    let eicar = concat!("X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");
    let b64 = base64(eicar.as_bytes());
    format!(
        "From: a@example.org\nTo: b@example.net\nSubject: invoice\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n\
         --b\nContent-Type: application/octet-stream; name=invoice.com\n\
         Content-Disposition: attachment; filename=invoice.com\nContent-Transfer-Encoding: base64\n\n{b64}\n--b--\n"
    )
    .into_bytes()
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const CLEAN: &str = "From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: lunch on friday\n\
                     Message-ID: <lunch@example.org>\n\nShall we meet at noon?\n";

/// The shipped rules, quarantining into `store` in `mode`.
fn shipped_with(store: &Path, mode: QuarantineMode) -> Arc<dyn Filter> {
    let (pipeline, _) = Pipeline::load(&Config::default()).expect("the shipped rules load");
    Arc::new(InspectFilter { pipeline, store: Some(Store::open(store).expect("store")), mode })
}

fn shipped(store: &TempDir) -> Arc<dyn Filter> {
    shipped_with(&store.0.join("q"), QuarantineMode::Store)
}

/// `inspect-milter quarantine list --json --store DIR`, one entry per line.
fn quarantine_list(store: &Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .args(["quarantine", "list", "--json", "--store"])
        .arg(store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn header<'a>(out: &'a Outcome, name: &str) -> &'a str {
    out.header(name).unwrap_or_else(|| panic!("no {name} in {out:?}"))
}

#[tokio::test]
async fn the_real_filter_through_the_daemon() {
    let store = TempDir::new("store");
    let server = TestServer::start(shipped(&store), options()).await;
    let mut c = server.client().await;

    let out = c.send(&Message::from_eml(CLEAN.as_bytes())).await.unwrap();
    assert_eq!(out.action, Some(Response::Accept));
    assert!(header(&out, "X-Inspect-Verdict").starts_with("accept score="), "{out:?}");
    assert_eq!(header(&out, "X-Inspect-Coverage"), "complete");
    assert_eq!(header(&out, "X-Inspect-Transport"), "tls=none");
    c.abort().await.unwrap();

    let out = c.send(&Message::from_eml(&eicar_message())).await.unwrap();
    assert!(matches!(&out.action, Some(Response::ReplyCode(r)) if r.code() == 550), "{out:?}");
    c.abort().await.unwrap();

    let out = c.send(&Message::from_eml(&fixture("encrypted/smime-enveloped.eml"))).await.unwrap();
    assert_eq!(out.action, Some(Response::Accept), "end-to-end encryption is accepted by default");
    assert!(header(&out, "X-Inspect-Coverage").starts_with("partial; smime-encrypted="), "{out:?}");
    c.abort().await.unwrap();

    let out = c.send(&Message::from_eml(&fixture("encrypted/zip-password.eml"))).await.unwrap();
    assert_eq!(out.action, Some(Response::Discard), "held in our store, discarded at the MTA: {out:?}");
    let held = quarantine_list(&store.0.join("q"));
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["decision"], "quarantine");
    assert!(held[0]["uninspected"].to_string().contains("encrypted-archive"), "{}", held[0]);
    server.stop().await;
}

#[tokio::test]
async fn forged_verdict_headers_are_removed() {
    let store = TempDir::new("store");
    let server = TestServer::start(shipped(&store), options()).await;
    let mut c = server.client().await;
    let forged = format!("X-Inspect-Verdict: accept score=0 rules=\nx-inspect-coverage: complete\n{CLEAN}");
    let out = c.send(&Message::from_eml(forged.as_bytes())).await.unwrap();
    let deletes: Vec<&Response> = out
        .modifications
        .iter()
        .filter(|m| matches!(m, Response::ChangeHeader { value, .. } if value.is_empty()))
        .collect();
    assert_eq!(deletes.len(), 2, "{out:?}");
    server.stop().await;
}

/// `scan --json` and the daemon give the same decision, hits and headers for every fixture.
#[tokio::test]
async fn scan_and_the_daemon_agree() {
    let store = TempDir::new("store");
    let server = TestServer::start(shipped_with(&store.0.join("q"), QuarantineMode::Both), options()).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["rfc", "encrypted", "archives", "malformed"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "eml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let tmp = TempDir::new("eicar");
    let eicar = tmp.0.join("eicar.eml");
    std::fs::write(&eicar, eicar_message()).unwrap();
    files.push(eicar);
    let scan = std::process::Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .env("INSPECT_MILTER_CONFIG", "") // the daemon's built-in rules, on a packaged host too
        .arg("scan")
        .arg("--json")
        .args(&files)
        .output()
        .unwrap();
    assert!(scan.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&scan.stderr));
    let reports: Vec<serde_json::Value> =
        String::from_utf8_lossy(&scan.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), files.len());
    let mut c = server.client().await;
    for (path, report) in files.iter().zip(&reports) {
        let raw = std::fs::read(path).unwrap();
        let msg = Message::from_eml(&raw);
        let out = c.send(&msg).await.unwrap();
        c.abort().await.unwrap();
        let name = path.display();
        let decision = report["decision"].as_str().unwrap();
        assert_eq!(report["file"].as_str(), Some(name.to_string().as_str()), "each line names its file");
        let verdict = header(&out, "X-Inspect-Verdict");
        assert!(
            verdict.starts_with(&format!("{decision} score={} ", report["score"])),
            "{name}: {verdict} vs {report}"
        );
        let rules: Vec<&str> = report["hits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["score"].as_i64() != Some(0) || h.get("action").is_some())
            .map(|h| h["rule"].as_str().unwrap())
            .collect();
        let mut unique = Vec::new();
        for r in rules {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        assert!(verdict.ends_with(&format!("rules={}", unique.join(","))), "{name}: {verdict} vs {unique:?}");
        let coverage = header(&out, "X-Inspect-Coverage");
        assert_eq!(
            coverage == "complete",
            report["coverage"]["complete"].as_bool().unwrap(),
            "{name}: {coverage}"
        );
        let expected_action = match decision {
            "reject" => "reply",
            "quarantine" => "hold",
            "tempfail" => "reply",
            _ => "accept",
        };
        let got = match (&out.action, out.quarantined()) {
            (Some(Response::ReplyCode(_)), _) => "reply",
            (Some(Response::Accept), true) => "hold",
            (Some(Response::Accept), false) => "accept",
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(got, expected_action, "{name}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn the_real_filter_through_postfix() {
    let _lock = exclusive().await;
    let store = TempDir::new("store");
    let store_dir = store.0.join("q");
    let server = TestServer::start(shipped_with(&store_dir, QuarantineMode::Store), options()).await;
    let milter = server.addr.to_string();
    let hold = TestServer::start(shipped_with(&store_dir, QuarantineMode::Hold), options()).await;
    let hold_milter = hold.addr.to_string();
    let tmp = TempDir::new("files");
    let write = |name: &str, data: &[u8]| {
        let p = tmp.0.join(name);
        std::fs::write(&p, data).unwrap();
        format!("@{}", p.display())
    };
    let eicar = write("eicar.eml", &eicar_message());
    let smime = write("smime.eml", &fixture("encrypted/smime-enveloped.eml"));
    let zip = write("zip.eml", &fixture("encrypted/zip-password.eml"));
    let clean = write("clean.eml", CLEAN.as_bytes());
    tokio::task::spawn_blocking(move || {
        let pf = Postfix::start(&milter, &[("LAB_TLS", "1")]);
        let (code, out) = pf.send(&["--data", &eicar]);
        assert_eq!(code, 26, "EICAR is rejected: {out}");
        assert!(out.contains("550 5.7.1"), "{out}");

        let (code, out) = pf.send(&["--data", &zip]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(pf.held_count(), 0, "store mode: our store keeps it, the MTA does not");

        let (code, out) = pf.send(&["--data", &smime]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = pf.send(&["--tls", "--data", &clean]);
        assert_eq!(code, 0, "{out}");

        let inbox = pf.inbox();
        assert_eq!(pf.inbox_count(), 2, "{inbox}");
        assert!(inbox.contains("X-Inspect-Coverage: partial; smime-encrypted="), "{inbox}");
        assert!(inbox.contains("X-Inspect-Verdict: accept score=0 rules="), "{inbox}");
        assert!(inbox.contains("X-Inspect-Coverage: complete"), "{inbox}");
        assert!(inbox.contains("X-Inspect-Transport: tls=TLSv1.3 cipher="), "{inbox}");
        assert!(inbox.contains("X-Inspect-Transport: tls=none"), "{inbox}");
        assert!(!inbox.contains("Subject: password zip"), "the quarantined message is not delivered");

        // hold mode: Postfix's hold queue keeps it; our store still lists it.
        pf.set_milter(&hold_milter);
        let (code, out) = pf.send(&["--data", &zip]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(pf.held_count(), 1, "hold mode puts it in Postfix's hold queue");
    })
    .await
    .unwrap();
    let held = quarantine_list(&store_dir);
    assert_eq!(held.len(), 2, "{held:?}");
    let locations: Vec<&str> = held.iter().map(|e| e["location"].as_str().unwrap_or("?")).collect();
    assert!(locations.contains(&"store") && locations.contains(&"mta"), "{locations:?}");
    assert!(held.iter().all(|e| e["uninspected"].to_string().contains("encrypted-archive")));
    assert!(held.iter().all(|e| e["queue_id"].is_string()), "the MTA's queue id is recorded");
    server.stop().await;
    hold.stop().await;
}

/// A tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs(TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new("tmpfs");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(&dir.0)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0.0).status();
    }
}

/// Root ignores permissions, so the store is made to fail for real: a 64 KiB tmpfs, filled.
#[tokio::test]
#[ignore = "needs root (mounts a tmpfs): run by tests/run as root"]
async fn a_full_quarantine_store_makes_the_daemon_tempfail() {
    let fs = Tmpfs::mount("64k").expect("mounting a tmpfs needs root: run the suite as root (tests/run)");
    let store = fs.0.0.join("q");
    let server = TestServer::start(shipped_with(&store, QuarantineMode::Store), options()).await;
    // Fill the file system to the last byte.
    let mut filler = std::fs::File::create(fs.0.0.join("filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    let mut c = server.client().await;
    let out = c.send(&Message::from_eml(&fixture("encrypted/zip-password.eml"))).await.unwrap();
    assert!(
        matches!(&out.action, Some(Response::ReplyCode(r)) if r.to_string().starts_with("451 4.3.0")),
        "a store that cannot keep the message must tempfail: {out:?}"
    );
    c.abort().await.unwrap();
    let out = c.send(&Message::from_eml(CLEAN.as_bytes())).await.unwrap();
    assert_eq!(out.action, Some(Response::Accept), "mail that needs no quarantine still flows");
    assert!(
        Store::open(&store).unwrap().list(&Default::default()).unwrap().entries.is_empty(),
        "no partial entry"
    );
    server.stop().await;
}
