use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clap::Parser;

use super::super::test_support::{TempDir, message, new_entry};
use super::*;

/// The arguments as `inspect-milter quarantine …` receives them.
#[derive(Debug, Parser)]
struct Cmd {
    #[command(flatten)]
    args: QuarantineArgs,
}

struct Run {
    code: u8,
    out: String,
    err: String,
    raw: Vec<u8>,
}

fn run_in(root: &Path, args: &[&str], terminal: bool) -> Run {
    let argv = ["quarantine", "--store", root.to_str().unwrap()].into_iter().chain(args.iter().copied());
    let cmd = Cmd::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        out_is_terminal: terminal,
        now: Timestamp::now(),
        user: "tester".into(),
    };
    let code = run_with(cmd.args, &ConfigSource::BuiltIn, &mut console);
    Run {
        code,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8(err).unwrap(),
        raw: out,
    }
}

fn run(root: &Path, args: &[&str]) -> Run {
    run_in(root, args, false)
}

fn ago(secs: u64) -> String {
    Timestamp::now().saturating_sub(Duration::from_secs(secs)).rfc3339()
}

fn put(store: &Store, received: &str, sender: &str, subject: &str) -> Id {
    store.put(&message(subject), new_entry(received, sender, subject)).unwrap()
}

#[test]
fn list_prints_an_aligned_table_newest_first() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let old = put(&store, &ago(7200), "eve@example.net", "Invoice overdue");
    let new = put(&store, &ago(60), "", "Ü");
    let r = run(dir.path(), &["list"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.out);
    assert!(lines[0].starts_with("ID ") && lines[0].contains("SUBJECT"), "{}", lines[0]);
    assert!(lines[1].starts_with(new.as_str()) && lines[2].starts_with(old.as_str()), "{}", r.out);
    assert!(lines[1].contains("<>"), "the null sender shows as <>: {}", lines[1]);
    assert!(lines[2].contains("invoice_lure,zip_with_exe"));
    // Columns line up: each header starts where its values start.
    for col in ["STATE", "SENDER", "SUBJECT", "RULES"] {
        let at = lines[0].find(col).unwrap();
        let chars_before = lines[0][..at].chars().count();
        for line in &lines[1..] {
            let cell: String = line.chars().skip(chars_before).take(1).collect();
            assert_ne!(cell, " ", "{col} misaligned in {line:?}");
            let prev: String = line.chars().skip(chars_before - 1).take(1).collect();
            assert_eq!(prev, " ", "{col} misaligned in {line:?}");
        }
    }
}

#[test]
fn list_escapes_what_the_sender_wrote() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    put(&store, &ago(60), "eve\x1b]0;owned\x07@example.net", "Hi\x1b[2J\u{9b}1m\u{202e}fdp.exe");
    let r = run(dir.path(), &["list"]);
    assert_eq!(r.code, EXIT_OK);
    assert!(!r.out.chars().any(|c| c.is_control() && c != '\n'), "{:?}", r.out);
    assert!(!r.out.contains('\u{202e}'));
    assert!(r.out.contains("eve\\x1b]0;owned\\x07@example.net"), "{}", r.out);
    assert!(r.out.contains("Hi\\x1b[2J\\x9b1m\\u{202e}fdp.exe"), "{}", r.out);

    let r = run(dir.path(), &["list", "--json"]);
    assert!(!r.out.chars().any(|c| c.is_control() && c != '\n' || c == '\u{202e}'), "{:?}", r.out);
}

#[test]
fn list_json_is_one_entry_per_line_without_the_report() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let a = put(&store, &ago(120), "a@x", "a");
    let b = put(&store, &ago(60), "b@x", "b");
    let r = run(dir.path(), &["list", "--json"]);
    assert_eq!(r.code, EXIT_OK);
    let rows: Vec<Value> = r.out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], b.as_str());
    assert_eq!(rows[1]["id"], a.as_str());
    assert_eq!(rows[0]["state"], "held");
    assert_eq!(rows[0]["envelope"]["sender"], "b@x");
    assert!(rows[0].get("report").is_none());
}

#[test]
fn list_filters_from_the_command_line() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let old = put(&store, &ago(3 * 86_400), "eve@example.net", "old");
    let new = put(&store, &ago(600), "bob@example.org", "new");
    store.delete(&new, "tester").unwrap();
    let ids_of = |args: &[&str]| -> Vec<String> {
        let r = run(dir.path(), &[&["list", "--json"], args].concat());
        assert_eq!(r.code, EXIT_OK, "{args:?}: {}", r.err);
        r.out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (old, new) = (old.as_str(), new.as_str());
    assert_eq!(ids_of(&["--since", "2h"]), [new]);
    assert_eq!(ids_of(&["--until", "1d"]), [old]);
    assert_eq!(ids_of(&["--since", "2000-01-01"]), [new, old]);
    assert_eq!(ids_of(&["--state", "deleted"]), [new]);
    assert_eq!(ids_of(&["--state", "held", "--sender", "EVE"]), [old]);
    assert_eq!(ids_of(&["--recipient", "alice@"]), [new, old]);
    assert_eq!(ids_of(&["--rule", "zip_with_exe", "--decision", "quarantine"]), [new, old]);
    assert!(ids_of(&["--decision", "reject"]).is_empty());
    assert_eq!(ids_of(&["--reason", "encrypted-archive", "--limit", "1"]), [new]);
    let r = run(dir.path(), &["list", "--rule", "nothing-hits-this"]);
    assert_eq!((r.code, r.out.as_str()), (EXIT_OK, "no quarantined messages match\n"));
}

#[test]
fn bad_times_and_values_are_usage_errors() {
    for args in [
        &["list", "--since", "yesterday"][..],
        &["list", "--since", "2026-11-28T20:00:00"],
        &["list", "--state", "gone"],
        &["list", "--decision", "maybe"],
        &["purge", "--older-than", "30"],
        &["purge"],
        &["show", "x", "--json", "--raw"],
        &["delete"],
    ] {
        let argv = ["quarantine"].iter().chain(args);
        assert!(Cmd::try_parse_from(argv).is_err(), "{args:?} was accepted");
    }
}

#[test]
fn a_missing_store_is_an_error_not_a_new_store() {
    let dir = TempDir::new();
    let missing = dir.path().join("typo");
    let r = run(&missing, &["list"]);
    assert_eq!(r.code, EXIT_ERROR);
    assert!(r.err.contains("no quarantine store at"), "{}", r.err);
    assert!(!missing.exists());
}

#[test]
fn show_explains_the_decision() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, &ago(60), "eve@example.net", "Invoice \x1b[31mnow");
    store
        .set_state(
            &id,
            State::Held,
            super::super::Change {
                who: "alice".into(),
                action: "release via smtp".into(),
                result: "421 4.3.0 try again\x1b[0m".into(),
            },
        )
        .unwrap();
    let r = run(dir.path(), &["show", id.as_str()]);
    assert_eq!(r.code, EXIT_OK, "{}", r.err);
    let o = &r.out;
    assert!(!o.chars().any(|c| c.is_control() && c != '\n'), "{o:?}");
    for want in [
        &format!("id          {id}")[..],
        "state       held",
        "decision    quarantine  score=70",
        "sender      eve@example.net",
        "recipients  alice@example.org, bob@example.org",
        "client      mail.example.net [192.0.2.7]  helo=mail.example.net",
        "tls         TLSv1.3 TLS_AES_256_GCM_SHA384 256 bits",
        "queue id    4F2A1C",
        "subject     Invoice \\x1b[31mnow",
        "  score 70 >= quarantine threshold 50",
        "  invoice_lure  [regex]  score=40  part=1  subject: Your \\x1b[31minvoice",
        "  zip_with_exe  [yara]  score=30  part=2  attachment \"invoice.zip\": PK\\x03\\x04",
        "coverage    partial",
        "  encrypted-archive  part=2!docs/a.exe: zip entry is encrypted",
        "  Subject: Invoice \\x1b[31mnow",
        "  From: Eve <eve@example.net>",
        "quarantine: held: quarantine score=70",
        "alice  release via smtp: 421 4.3.0 try again\\x1b[0m",
    ] {
        assert!(o.contains(want), "missing {want:?} in\n{o}");
    }
    assert!(!o.contains("Please see the attached"), "the body is not part of show");
}

#[test]
fn show_of_a_cleartext_message_says_there_was_no_tls() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let mut new = new_entry(&ago(60), "a@x", "plain");
    new.report["envelope"]["tls"] = Value::Null;
    new.report["coverage"] = serde_json::json!({"complete": true, "uninspectable": []});
    let id = store.put(&message("plain"), new).unwrap();
    let r = run(dir.path(), &["show", id.as_str()]);
    assert!(r.out.contains("tls         none"), "{}", r.out);
    assert!(r.out.contains("coverage    complete"), "{}", r.out);
}

#[test]
fn show_json_is_the_whole_entry() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, &ago(60), "a@x", "json");
    let r = run(dir.path(), &["show", id.as_str(), "--json"]);
    assert_eq!(r.code, EXIT_OK);
    let shown: Entry = serde_json::from_str(&r.out).unwrap();
    assert_eq!(shown, store.get(&id).unwrap());
}

#[test]
fn show_raw_writes_the_exact_bytes_but_never_to_a_terminal() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let bytes = b"Subject: \x1b]2;pwned\x07\r\n\r\n\xff\xfe binary\r\n".to_vec();
    let id = store.put(&bytes, new_entry(&ago(60), "a@x", "raw")).unwrap();
    let r = run(dir.path(), &["show", id.as_str(), "--raw"]);
    assert_eq!((r.code, &r.raw), (EXIT_OK, &bytes));

    let r = run_in(dir.path(), &["show", id.as_str(), "--raw"], true);
    assert_eq!(r.code, EXIT_ERROR);
    assert!(r.raw.is_empty());
    assert!(r.err.contains("refusing to write a raw message to a terminal"), "{}", r.err);
}

#[test]
fn show_output_writes_a_private_file_and_never_overwrites() {
    let dir = TempDir::new();
    let store = Store::open(dir.path().join("q").as_path()).unwrap();
    let id = put(&store, &ago(60), "a@x", "saved");
    let file = dir.path().join("saved.eml");
    let r = run(&dir.path().join("q"), &["show", id.as_str(), "--output", file.to_str().unwrap()]);
    assert_eq!(r.code, EXIT_OK, "{}", r.err);
    assert!(r.out.is_empty());
    assert_eq!(fs::read(&file).unwrap(), message("saved"));
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    fs::write(&file, b"keep me").unwrap();
    let r = run(&dir.path().join("q"), &["show", id.as_str(), "-o", file.to_str().unwrap()]);
    assert_eq!(r.code, EXIT_ERROR);
    assert_eq!(fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn show_of_an_unknown_or_invalid_id_exits_2() {
    let dir = TempDir::new();
    Store::open(dir.path()).unwrap();
    let r = run(dir.path(), &["show", "20261128T201502Z-000000000000"]);
    assert_eq!(r.code, EXIT_ERROR);
    assert!(r.err.contains("no quarantined message with id"), "{}", r.err);
    let r = run(dir.path(), &["show", "../../etc/passwd\x1b[2J"]);
    assert_eq!(r.code, EXIT_ERROR);
    assert!(r.err.contains("invalid quarantine id") && !r.err.contains('\x1b'), "{:?}", r.err);
}

#[test]
fn show_of_a_corrupt_message_shows_the_record_and_exits_2() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, &ago(60), "a@x", "tampered");
    fs::write(dir.path().join(id.day()).join(format!("{id}.eml")), b"Subject: other\r\n\r\n").unwrap();
    let r = run(dir.path(), &["show", id.as_str()]);
    assert_eq!(r.code, EXIT_ERROR);
    assert!(r.out.contains("(message unreadable)"), "{}", r.out);
    assert!(r.err.contains("corrupt"), "{}", r.err);
}

#[test]
fn delete_dry_run_changes_nothing_and_delete_keeps_a_record() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, &ago(60), "a@x", "unwanted");
    let r = run(dir.path(), &["delete", "--dry-run", id.as_str()]);
    assert_eq!(r.code, EXIT_OK);
    assert_eq!(r.out, format!("would delete {id} (held, subject: unwanted)\n"));
    assert_eq!(store.get(&id).unwrap().state, State::Held);
    assert!(store.message(&id).is_ok());

    let r = run(dir.path(), &["delete", id.as_str()]);
    assert_eq!((r.code, r.out.as_str()), (EXIT_OK, format!("deleted {id} (subject: unwanted)\n").as_str()));
    let e = store.get(&id).unwrap();
    assert_eq!(e.state, State::Deleted);
    assert_eq!(e.history.last().unwrap().who, "tester");

    let r = run(dir.path(), &["delete", id.as_str()]);
    assert_eq!((r.code, r.out.as_str()), (EXIT_OK, format!("{id}: already deleted\n").as_str()));
    let r = run(dir.path(), &["show", id.as_str()]);
    assert_eq!(r.code, EXIT_OK, "{}", r.err);
    assert!(r.out.contains("(message deleted)") && r.out.contains("deleted   tester  delete"), "{}", r.out);
}

#[test]
fn delete_goes_on_past_a_bad_id_and_exits_2() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let a = put(&store, &ago(60), "a@x", "a");
    let b = put(&store, &ago(30), "b@x", "b");
    let r = run(dir.path(), &["delete", a.as_str(), "a/b", "20261128T201502Z-000000000000", b.as_str()]);
    assert_eq!(r.code, EXIT_ERROR);
    assert_eq!(r.err.lines().count(), 2, "{}", r.err);
    assert_eq!(store.get(&a).unwrap().state, State::Deleted);
    assert_eq!(store.get(&b).unwrap().state, State::Deleted);
}

#[test]
fn purge_dry_run_lists_and_purge_removes_only_old_entries() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let old = put(&store, &ago(40 * 86_400), "a@x", "old");
    let young = put(&store, &ago(86_400), "b@x", "young");
    let r = run(dir.path(), &["purge", "--older-than", "30d", "--dry-run"]);
    assert_eq!(r.code, EXIT_OK);
    assert!(
        r.out.starts_with(&format!("would purge {old}\nwould purge 1 entries received before ")),
        "{}",
        r.out
    );
    assert!(store.get(&old).is_ok());

    let r = run(dir.path(), &["purge", "--older-than", "30d"]);
    assert_eq!(r.code, EXIT_OK);
    assert!(r.out.starts_with(&format!("purged {old}\npurged 1 entries received before ")), "{}", r.out);
    assert!(matches!(store.get(&old), Err(StoreError::NotFound(_))));
    assert!(store.get(&young).is_ok());
}

#[test]
fn show_bounds_a_huge_header_block() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let mut bytes = Vec::new();
    for n in 0..5000 {
        bytes.extend_from_slice(format!("X-Junk-{n}: {}\r\n", "y".repeat(n % 700)).as_bytes());
    }
    bytes.extend_from_slice(b"\r\nbody\r\n");
    let id = store.put(&bytes, new_entry(&ago(60), "a@x", "junk")).unwrap();
    let r = run(dir.path(), &["show", id.as_str()]);
    assert_eq!(r.code, EXIT_OK, "{}", r.err);
    let headers: Vec<&str> = r.out.lines().filter(|l| l.starts_with("  X-Junk-")).collect();
    assert_eq!(headers.len(), 100);
    assert!(headers.iter().all(|l| l.chars().count() <= 2 + 200));
    assert!(r.out.contains("more header lines; `show --raw` has them all"));
}

#[test]
fn the_bytes_of_a_deleted_message_cannot_be_written_out() {
    let dir = TempDir::new();
    let store = Store::open(dir.path()).unwrap();
    let id = put(&store, &ago(60), "a@x", "gone");
    store.delete(&id, "tester").unwrap();
    let r = run(dir.path(), &["show", id.as_str(), "--raw"]);
    assert_eq!(r.code, EXIT_ERROR);
    assert!(r.raw.is_empty());
    assert!(r.err.contains("the message was deleted"), "{}", r.err);
}

#[test]
fn release_to_refuses_addresses_it_would_have_to_change() {
    let parse = |to: &str| Cmd::try_parse_from(["quarantine", "release", "ID", "--to", to]);
    for good in ["sec@example.org", "a.b+tag@sub.example.org", "postmaster", "Postmaster"] {
        let cmd = parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        let QuarantineCommand::Release(r) = cmd.args.command else { panic!("not release") };
        assert_eq!(r.to, vec![good.to_string()]);
    }
    for bad in [
        "bad address",
        "evil@example.org>\r\nRCPT TO:<x@example.org",
        "<a@example.org>",
        "a@",
        "@b",
        "alice",
        "",
    ] {
        let e = parse(bad).expect_err(bad).to_string();
        assert!(e.contains("--to"), "{bad}: {e}");
    }
}

#[test]
fn list_reasons_are_the_uninspected_reasons() {
    let parse = |r: &str| Cmd::try_parse_from(["quarantine", "list", "--reason", r]);
    for reason in crate::inspect::Reason::ALL {
        assert!(parse(reason.as_str()).is_ok(), "{reason}");
    }
    assert!(parse("encrypted-archiv").unwrap_err().to_string().contains("encrypted-archive"));
}
