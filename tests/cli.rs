//! The command line as users run it: the real binary on fixtures, its output and exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary with the built-in defaults unless a test passes `--config`, also on a host where
/// the package installed /etc/inspect-milter/config.yaml.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inspect-milter"));
    c.env("INSPECT_MILTER_CONFIG", "");
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Golden diagnostics: each directory of `tests/fixtures/check/` holds broken rules (and maybe
/// a config) and the `check` output expected for them. `UPDATE_GOLDEN=1` rewrites the expected
/// files; a mismatch writes `expected.actual` and every case is reported at once.
#[test]
fn check_diagnostics_match_their_golden_files() {
    let dir = root().join("tests/fixtures/check");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 5);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let mut cmd = bin();
        cmd.current_dir(case).args(["check", "--color", "never"]);
        if case.join("config.yaml").exists() {
            cmd.args(["--config", "config.yaml"]);
        }
        let out = cmd.arg("rules").output().unwrap();
        let got = format!("{}exit {}\n", stdout(&out), out.status.code().unwrap_or(-1));
        let expected_path = case.join("expected.out");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            std::fs::write(case.join("expected.actual"), &got).unwrap();
            failures.push(format!("{}:\n--- expected\n{expected}--- got\n{got}", case.display()));
        } else {
            let _ = std::fs::remove_file(case.join("expected.actual"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn check_strict_turns_warnings_into_exit_1_and_json_has_codes() {
    let case = root().join("tests/fixtures/check/clean");
    let out = bin().current_dir(&case).args(["check", "rules"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = bin().current_dir(&case).args(["check", "--strict", "rules"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a stray file in the rules directory is a warning");
    let out = bin().current_dir(&case).args(["check", "--json", "rules"]).output().unwrap();
    let line: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(line["code"], "L002");
    assert_eq!(line["severity"], "warning");
}

#[test]
fn scan_exit_codes_follow_the_decision() {
    let dir = super::support::lab::TempDir::new("scan");
    let clean = dir.0.join("clean.eml");
    std::fs::write(&clean, "From: a@example.org\nSubject: lunch\n\nnoon?\n").unwrap();
    let eicar = dir.0.join("eicar.eml");
    std::fs::write(&eicar, super::pipeline::eicar_message()).unwrap();
    let out = bin().args(["scan"]).arg(&clean).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains(": accept"));
    let out = bin().args(["scan"]).arg(&clean).arg(&eicar).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "the worst code wins");
    assert!(stdout(&out).contains("eicar_test_file"), "{}", stdout(&out));
    let out = bin().args(["scan"]).arg(&clean).arg(dir.0.join("missing.eml")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).ends_with("2 message(s): accept=1 not scanned=1\n"), "{}", stdout(&out));
    let empty = dir.0.join("empty.eml");
    std::fs::write(&empty, "").unwrap();
    let out = bin().args(["scan"]).arg(&empty).output().unwrap();
    assert!(stdout(&out).contains("empty-message part=0: the message is empty"), "{}", stdout(&out));
    // A directory: every message file, not the test harness's expectations or hidden files.
    std::fs::write(dir.0.join("clean.expect.yaml"), "decision: accept\n").unwrap();
    std::fs::write(dir.0.join(".hidden"), "x").unwrap();
    let out = bin().args(["scan"]).arg(&dir.0).output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("\n3 message(s): "), "clean, eicar and empty: {text}");
    assert!(!text.contains("expect.yaml") && !text.contains(".hidden"), "{text}");
    let out = bin().args(["scan", "--rules", "/nonexistent/rules"]).arg(&clean).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "rules that cannot load are an error");
}

#[test]
fn test_command_reports_failures_with_why_and_exit_codes() {
    let dir = super::support::lab::TempDir::new("cases");
    let rules = dir.0.join("rules");
    std::fs::create_dir_all(rules.join("tests")).unwrap();
    std::fs::write(
        rules.join("r.yaml"),
        "rules:\n  - id: lunch\n    targets: [subject]\n    pattern: lunch\n    score: 5\n",
    )
    .unwrap();
    let case = |name: &str, subject: &str, expect: &str| {
        std::fs::write(rules.join("tests").join(format!("{name}.eml")), format!("Subject: {subject}\n\nx\n"))
            .unwrap();
        std::fs::write(rules.join("tests").join(format!("{name}.expect.yaml")), expect).unwrap();
    };
    case("hit", "lunch", "decision: tag\nhits: [lunch]\n");
    case("miss", "dinner", "decision: accept\nnot_hits: [lunch]\ncoverage: complete\n");
    let out = bin().current_dir(&dir.0).args(["test", "rules/tests", "--color", "never"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("2 passed, 0 failed\n"), "{}", stdout(&out));
    // From inside the rules directory too: the rules above `tests` (or `.`) are the ones tested.
    for (cwd, arg) in [(rules.clone(), "tests"), (rules.join("tests"), ".")] {
        let out = bin().current_dir(&cwd).args(["test", arg, "--color", "never"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{arg}: {}", stdout(&out));
        assert!(!stdout(&out).contains("shipped pack"), "{arg}: {}", stdout(&out));
    }
    case("wrong", "lunch", "decision: accept\nnot_hits: [lunch]\n");
    let junit = dir.0.join("junit.xml");
    let out = bin()
        .current_dir(&dir.0)
        .args(["test", "rules/tests", "--color", "never", "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL  wrong"), "{text}");
    assert!(text.contains("decision: expected accept, got tag (score 5)"), "{text}");
    assert!(text.contains("not_hits: `lunch` hit at part 0 (subject)"), "{text}");
    assert!(text.contains("hit lunch [Regex] score=5"), "{text}");
    assert!(text.ends_with("2 passed, 1 failed\n"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"3\" failures=\"1\"") && xml.contains("<failure"), "{xml}");
    let out = bin()
        .current_dir(&dir.0)
        .args(["test", "rules/tests", "--filter", "hit", "--json"])
        .output()
        .unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!((last["passed"].as_u64(), last["failed"].as_u64()), (Some(1), Some(0)));
    std::fs::write(rules.join("tests").join("typo.expect.yaml"), "decison: accept\n").unwrap();
    std::fs::write(rules.join("tests").join("typo.eml"), "Subject: x\n\ny\n").unwrap();
    let out = bin().current_dir(&dir.0).args(["test", "rules/tests", "--color", "never"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a broken expectation is an error");
    assert!(stdout(&out).contains("typo.expect.yaml:1:1: unknown field `decison`"), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("2 passed, 1 failed, 1 could not be run\n"), "{}", stdout(&out));
    std::fs::remove_file(rules.join("tests").join("typo.expect.yaml")).unwrap();
    std::fs::remove_file(rules.join("tests").join("typo.eml")).unwrap();
    // An expectation without its message, a filter that matches nothing and a rule name that
    // is not loaded are said, not passed over.
    std::fs::write(rules.join("tests").join("orphan.expect.yaml"), "decision: accept\n").unwrap();
    let out = bin().current_dir(&dir.0).args(["test", "rules/tests", "--color", "never"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("orphan.expect.yaml: no message orphan.eml beside it"), "{}", stdout(&out));
    std::fs::remove_file(rules.join("tests").join("orphan.expect.yaml")).unwrap();
    let out = bin().current_dir(&dir.0).args(["test", "rules/tests", "--filter", "zzz"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "nothing tested is not a pass: {}", stdout(&out));
    assert!(stdout(&out).contains("no case in rules/tests matches --filter \"zzz\""), "{}", stdout(&out));
    case("unknown", "lunch", "hits: [lunhc]\nnot_hits: [dinnr]\n");
    let out =
        bin().current_dir(&dir.0).args(["test", "rules/tests", "--filter", "unknown"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("expected `lunhc` to hit; it did not (no rule of that name is loaded)"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("not_hits: no rule `dinnr` is loaded"), "{}", stdout(&out));
}

/// `scan` says what the daemon would tell the MTA about a quarantined message, which depends
/// on who keeps it (`quarantine.mode`): with `store` the MTA discards its copy (no headers).
#[test]
fn scan_explains_a_quarantine_as_the_configured_mode_does() {
    let dir = super::support::lab::TempDir::new("scan-mode");
    let eml = root().join("tests/fixtures/mime/encrypted/zip-password.eml");
    let said = |mode: &str| {
        let conf = dir.0.join(format!("{mode}.yaml"));
        std::fs::write(&conf, format!("quarantine:\n  mode: {mode}\n")).unwrap();
        let out = bin().args(["scan", "--config"]).arg(&conf).arg(&eml).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let text = stdout(&out);
        text[text.find("the daemon would").expect("the daemon would")..].to_string()
    };
    let store = said("store");
    assert!(store.contains("keep the message in the quarantine store; the MTA discards its copy"), "{store}");
    assert!(!store.contains("header"), "the MTA's copy is discarded, so no headers: {store}");
    let hold = said("hold");
    assert!(hold.contains("hold the message in the MTA's queue (inspect-milter:"), "{hold}");
    assert!(hold.contains("X-Inspect-Verdict: quarantine"), "{hold}");
    let both = said("both");
    assert!(
        both.contains("keep the message in the quarantine store and hold it in the MTA's queue"),
        "{both}"
    );
}

/// Without --config, INSPECT_MILTER_CONFIG names the file (as /etc/inspect-milter/config.yaml
/// does on a packaged host): `check` says which file it checked, and the review commands find
/// the store it names.
#[test]
fn the_configuration_file_is_found_without_config() {
    let dir = super::support::lab::TempDir::new("found");
    let store = dir.0.join("quarantine");
    let conf = dir.0.join("site.yaml");
    std::fs::write(&conf, format!("quarantine:\n  dir: {}\n", store.display())).unwrap();
    let found = |args: &[&str]| bin().env("INSPECT_MILTER_CONFIG", &conf).args(args).output().unwrap();
    let out = found(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .starts_with(&format!("configuration: {} (from INSPECT_MILTER_CONFIG)\n", conf.display()))
    );
    let out = found(&["quarantine", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains(&format!("no quarantine store at {}", store.display())), "{err}");
    assert!(err.contains("quarantine.dir from ") && err.contains("site.yaml"), "{err}");
    std::fs::create_dir(&store).unwrap();
    let out = found(&["quarantine", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), "no quarantined messages match\n");
    // --config wins, and says nothing about where it came from: it was typed.
    let out = found(&["check", "--config", "/dev/null"]);
    assert_eq!(stdout(&out), "0 error(s), 0 warning(s)\n");
    // Set but empty: the built-in defaults.
    let out = bin().args(["check"]).output().unwrap();
    assert_eq!(stdout(&out), "0 error(s), 0 warning(s)\n");
}

/// The README's quick start (`serve` with the defaults, stopped with Ctrl-C) as an ordinary
/// user, who may not write /var/lib: it runs, and keeps its state in the user's own state
/// directory. As root the test becomes `nobody` for the run.
#[test]
fn the_quick_start_runs_as_an_ordinary_user() {
    use std::io::BufRead;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let home = super::support::lab::TempDir::new("home");
    let mut cmd = if root {
        std::os::unix::fs::chown(&home.0, Some(65534), Some(65534)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(env!("CARGO_BIN_EXE_inspect-milter"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_inspect-milter"))
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = cmd
        .args(["serve", "--listen", &format!("inet:127.0.0.1:{port}")])
        .env("INSPECT_MILTER_CONFIG", "")
        .env("HOME", &home.0)
        .env_remove("XDG_STATE_HOME")
        .current_dir(&home.0)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(120)) {
        let up = line.contains("listening");
        log.push(line);
        if up {
            break;
        }
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    log.extend(rx.try_iter());
    assert!(status.success(), "{status:?}: {}", log.join("\n"));
    let state = home.0.join(".local/state/inspect-milter");
    assert!(state.join("release.key").is_file(), "{}", log.join("\n"));
    assert!(state.join("quarantine/.lock").is_file(), "{}", log.join("\n"));
}

#[test]
fn serve_refuses_a_bad_config_with_exit_2() {
    let dir = super::support::lab::TempDir::new("serve");
    let conf = dir.0.join("c.yaml");
    std::fs::write(&conf, "listen: inet:127.0.0.1:1\ntimeouts:\n  idel: 5m\n").unwrap();
    let out = bin().args(["serve", "--config"]).arg(&conf).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c.yaml:3:3") && err.contains("idel"), "{err}");
}

/// The annotated sample configuration the package installs parses, and says what the defaults
/// are (so its comments cannot drift from the code).
#[test]
fn the_packaged_sample_config_parses_and_matches_the_defaults() {
    use inspect_milter::config::Config;
    let path = root().join("packaging/inspect-milter.yaml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let d = Config::default();
    assert_eq!(c.listen.len(), 2, "the package listens on a unix socket and on loopback");
    assert_eq!(c.rules.dirs.len(), 2);
    assert_eq!(
        (c.socket_mode, c.max_connections, c.max_message_size, c.on_error),
        (d.socket_mode, d.max_connections, d.max_message_size, d.on_error)
    );
    assert_eq!(c.timeouts, d.timeouts);
    assert_eq!(c.inspect, d.inspect);
    assert_eq!(c.policy.tag_at, d.policy.tag_at);
    assert_eq!(c.policy.quarantine_at, d.policy.quarantine_at);
    assert_eq!(c.policy.reject_at, d.policy.reject_at);
    for (reason, decision) in &c.policy.uninspectable {
        assert_eq!(*decision, d.policy.for_reason(*reason), "{reason}");
    }
    assert_eq!(c.policy.uninspectable.len(), 12, "every reason is listed");
    // The state is the packaged daemon's: the default for root and the package's user (others
    // get their own state directory by default).
    let state = std::path::Path::new(inspect_milter::config::state::SYSTEM_STATE_DIR);
    let dir = state.join("quarantine");
    assert_eq!(
        c.quarantine,
        inspect_milter::config::quarantine::QuarantineConfig { dir, ..d.quarantine.clone() }
    );
    let secret_file = state.join("release.key");
    assert_eq!(
        c.release,
        inspect_milter::config::release::ReleaseConfig { secret_file, ..d.release.clone() }
    );
    assert_eq!(c.log, d.log);
    assert_eq!(c.metrics, d.metrics);
}

/// `detection` over two small sets: the rates per source (directory and subdirectory), the
/// decisions, the tag-threshold table with the current threshold marked, and the same numbers
/// as JSON.
#[test]
fn detection_shows_rates_per_source_thresholds_and_json() {
    let dir = super::support::lab::TempDir::new("detection");
    let write = |path: &str, text: &str| {
        let path = dir.0.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "rules/r.yaml",
        "rules:\n  - id: lunch\n    targets: [subject]\n    pattern: lunch\n    score: 5\n  \
         - id: prize\n    targets: [subject]\n    pattern: prize\n    score: 12\n",
    );
    write("bad/lures/a.eml", "Subject: free lunch\n\nx\n");
    write("bad/lures/b.eml", "Subject: a prize\n\nx\n");
    write("bad/lures/c.eml", "Subject: hello\n\nx\n");
    write("good/notes/d.eml", "Subject: minutes\n\nx\n");
    write("good/notes/e.eml", "Subject: lunch at noon\n\nx\n");
    write("good/lists/f.eml", "Subject: release\n\nx\n");
    let run = |extra: &[&str]| {
        bin()
            .current_dir(&dir.0)
            .args(["detection", "--rules", "rules", "--bad", "bad", "--good", "good"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--verbose"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    let line = |start: &str| -> Vec<String> {
        let l = text
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("{start}: {text}"));
        l.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(line("detection")[1..4], ["2", "/", "3"], "{text}");
    assert_eq!(line("false positives")[2..5], ["1", "/", "3"], "{text}");
    assert!(text.contains("decisions bad   accept=1 tag=1 quarantine=1"), "{text}");
    assert_eq!(line("bad  bad/lures")[2..], ["3", "2", "66.67%"], "{text}");
    assert_eq!(line("good good/notes")[2..], ["2", "1", "50.00%"], "{text}");
    assert_eq!(line("good good/lists")[2..], ["1", "0", "0.00%"], "{text}");
    // Threshold 5 (the default) is marked; the score-5 rule stops counting at 6.
    assert_eq!(line("5 "), ["5", "2", "66.67%", "1", "33.33%", "<"], "{text}");
    assert_eq!(line("6 "), ["6", "1", "33.33%", "0", "0.00%"], "{text}");
    assert!(
        text.contains("bad/lures/c.eml") && text.contains("good/notes/e.eml"),
        "--verbose lists them: {text}"
    );

    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["bad"]["messages"].as_u64(), json["bad"]["flagged"].as_u64()), (Some(3), Some(2)));
    assert_eq!(json["good"]["flagged"], 1);
    let source = |side: &str, name: &str| {
        json[side]["sources"].as_array().unwrap().iter().find(|s| s["source"] == name).cloned().unwrap()
    };
    assert_eq!(
        (source("bad", "bad/lures")["messages"].as_u64(), source("bad", "bad/lures")["flagged"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(source("good", "good/lists")["flagged"], 0);
    assert_eq!(json["thresholds"][4], serde_json::json!({"tag_at": 5, "bad": 2, "good": 1}));
    assert_eq!(json["thresholds"][5], serde_json::json!({"tag_at": 6, "bad": 1, "good": 0}));
    assert_eq!(json["good"]["rules"]["lunch"], 1);

    // Halves by hash: together they cover every message once.
    let count = |i: &str| {
        let out = run(&["--json", "--sample", i]);
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        j["bad"]["messages"].as_u64().unwrap() + j["good"]["messages"].as_u64().unwrap()
    };
    assert_eq!(count("0/2") + count("1/2"), 6);
}
