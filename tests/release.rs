//! Releasing quarantined mail end to end: through a Postfix that offers STARTTLS with a
//! self-signed certificate (trusted through `release.ca_file`), the released copy arrives
//! without being held again and its entry says `released`; the same message with a forged
//! release mark is held; `required` STARTTLS against a relay without TLS fails clearly and the
//! entry stays held.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use inspect_milter::config::Config;
use inspect_milter::config::quarantine::QuarantineMode;
use inspect_milter::milter::Filter;
use inspect_milter::pipeline::{InspectFilter, Pipeline};

use crate::support::lab::{Postfix, TempDir, exclusive};
use crate::support::{TestServer, options};

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime").join(rel)).unwrap()
}

fn cli(args: &[&str], config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn entries(config: &Path) -> Vec<serde_json::Value> {
    let (code, text) = cli(&["quarantine", "list", "--json"], config);
    assert_eq!(code, 0, "{text}");
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn release_over_starttls_is_not_held_again_and_a_forged_mark_is() {
    let _lock = exclusive().await;
    let dir = TempDir::new("release");
    let config_path = dir.0.join("config.yaml");
    let base = format!(
        "quarantine:\n  dir: {q}\nrelease:\n  secret_file: {k}\n  helo: release.example\n",
        q = dir.0.join("q").display(),
        k = dir.0.join("release.key").display()
    );
    std::fs::write(&config_path, &base).unwrap();
    let config = Config::load(&config_path).unwrap();
    let (pipeline, _) = Pipeline::load(&config).unwrap();
    let mut filter = InspectFilter::open(pipeline, &config).unwrap();
    filter.mode = QuarantineMode::Store;
    let filter: Arc<dyn Filter> = Arc::new(filter);
    let server = TestServer::start(filter, options()).await;
    let milter = server.addr.to_string();
    let zip = dir.0.join("zip.eml");
    std::fs::write(&zip, fixture("encrypted/zip-password.eml")).unwrap();
    let zip_arg = format!("@{}", zip.display());
    let dir_path = dir.0.clone();
    tokio::task::spawn_blocking(move || {
        let pf = Postfix::start(&milter, &[("LAB_TLS", "1")]);
        let config = dir_path.join("config.yaml");
        // Held twice: one to release over TLS, one for the relay without TLS.
        for _ in 0..2 {
            let (code, out) = pf.send(&["--data", &zip_arg]);
            assert_eq!(code, 0, "{out}");
        }
        let held = entries(&config);
        assert_eq!(held.len(), 2);
        let id = held[0]["id"].as_str().unwrap().to_string();
        let other = held[1]["id"].as_str().unwrap().to_string();

        // Release through the TLS relay, trusting its self-signed certificate.
        std::fs::write(
            &config,
            format!(
                "{base}  relay: inet:127.0.0.1:{}\n  starttls: required\n  ca_file: {}\n",
                pf.port(),
                pf.env("LAB_TLS_CERT")
            ),
        )
        .unwrap();
        let (code, out) = cli(&["quarantine", "release", "--dry-run", &id], &config);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("would release") && out.contains("starttls required"), "{out}");
        assert_eq!(pf.inbox_count(), 0, "a dry run sends nothing");
        let (code, out) = cli(&["quarantine", "release", &id], &config);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("released") && out.contains("TLSv1."), "{out}");
        let inbox = pf.inbox();
        assert_eq!(pf.inbox_count(), 1, "{inbox}");
        assert!(inbox.contains(&format!("released={id}")), "delivered, not held again: {inbox}");
        assert!(inbox.contains("X-Inspect-Release: v1; id="), "{inbox}");
        let after = entries(&config);
        let e = after.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(e["state"], "released");
        assert_eq!(after.len(), 2, "the released copy was not quarantined again");
        let (code, out) = cli(&["quarantine", "release", &id], &config);
        assert_eq!(code, 2, "a released entry cannot be released twice: {out}");

        // The same mark copied onto different content gains nothing.
        let mark = inbox.lines().find(|l| l.starts_with("X-Inspect-Release:")).unwrap().to_string();
        let forged = dir_path.join("forged.eml");
        let mut body = String::from_utf8(fixture("encrypted/zip-password.eml")).unwrap();
        body = body.replacen("Subject: password zip", "Subject: password zip again", 1);
        std::fs::write(&forged, format!("{mark}\n{body}")).unwrap();
        let (code, out) = pf.send(&["--data", &format!("@{}", forged.display())]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(entries(&config).len(), 3, "the forged copy was held");

        // `required` STARTTLS against a relay without TLS: a clear error, the entry stays held.
        let plain = Postfix::start("none", &[]);
        std::fs::write(
            &config,
            format!("{base}  relay: inet:127.0.0.1:{}\n  starttls: required\n", plain.port()),
        )
        .unwrap();
        let (code, out) = cli(&["quarantine", "release", &other], &config);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("does not offer STARTTLS"), "{out}");
        assert_eq!(plain.inbox_count(), 0);
        let e = entries(&config).into_iter().find(|e| e["id"] == other.as_str()).unwrap();
        assert_eq!(e["state"], "held");
        assert!(e["history"].to_string().contains("failed"), "the attempt is recorded: {e}");
    })
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root and a real MTA (Postfix, Sendmail, swaks, miltertest): run by tests/run as root"]
async fn release_from_the_mta_hold_queue_uses_postsuper() {
    let _lock = exclusive().await;
    let dir = TempDir::new("release-hold");
    let config_path = dir.0.join("config.yaml");
    std::fs::write(
        &config_path,
        format!(
            "quarantine:\n  dir: {}\n  mode: hold\nrelease:\n  secret_file: {}\n",
            dir.0.join("q").display(),
            dir.0.join("release.key").display()
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let (pipeline, _) = Pipeline::load(&config).unwrap();
    let filter: Arc<dyn Filter> = Arc::new(InspectFilter::open(pipeline, &config).unwrap());
    let server = TestServer::start(filter, options()).await;
    let milter = server.addr.to_string();
    let zip = dir.0.join("zip.eml");
    std::fs::write(&zip, fixture("encrypted/zip-password.eml")).unwrap();
    let zip_arg = format!("@{}", zip.display());
    tokio::task::spawn_blocking(move || {
        let pf = Postfix::start(&milter, &[]);
        let (code, out) = pf.send(&["--data", &zip_arg]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(pf.held_count(), 1);
        let id = entries(&config_path)[0]["id"].as_str().unwrap().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
            .args(["quarantine", "release", &id, "--config"])
            .arg(&config_path)
            .env("MAIL_CONFIG", pf.env("MAIL_CONFIG"))
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("postsuper -H"), "{text}");
        assert_eq!(pf.inbox_count(), 1, "released from the hold queue and delivered");
        assert_eq!(pf.held_count(), 0);
        assert_eq!(entries(&config_path)[0]["state"], "released");
    })
    .await
    .unwrap();
    server.stop().await;
}
