use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/inspect-milter/config.yaml"))
}

#[test]
fn every_documented_default() {
    let c = Config::default();
    assert_eq!(c.listen, vec![ListenAddr::Inet { host: "127.0.0.1".into(), port: 8897 }]);
    assert_eq!(c.socket_mode, 0o660);
    assert_eq!(c.max_connections, 1000);
    assert_eq!(c.max_message_size, 64 << 20);
    assert_eq!(c.max_inflight_bytes, 256 << 20);
    assert_eq!(c.spool_dir, PathBuf::from("/var/tmp"));
    assert_eq!(c.on_error, FailAction::Tempfail);
    assert_eq!(c.timeouts.idle, Duration::from_secs(7200));
    assert_eq!(c.timeouts.message, Duration::from_secs(3600));
    assert_eq!(c.timeouts.progress, Duration::from_secs(5));
    assert_eq!(c.timeouts.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.origin, None);
}

#[test]
fn empty_file_is_all_defaults() {
    let c = parse("# nothing\n").unwrap();
    assert_eq!(Config { origin: None, ..c }, Config::default());
}

#[test]
fn every_key_can_be_set() {
    let c = parse(
        "listen:\n  - unix:/run/im/milter.sock\n  - inet:8897@127.0.0.1\nsocket_mode: \"0600\"\n\
         max_connections: 50\nmax_message_size: 10MiB\non_error: accept\n\
         timeouts:\n  idle: 5m\n  message: 10m\n  progress: 2s\n  shutdown_grace: 1m\n",
    )
    .unwrap();
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.listen[0], ListenAddr::Unix("/run/im/milter.sock".into()));
    assert_eq!(c.socket_mode, 0o600);
    assert_eq!(c.max_connections, 50);
    assert_eq!(c.max_message_size, 10 << 20);
    assert_eq!(c.on_error, FailAction::Accept);
    assert_eq!(c.timeouts.idle, Duration::from_secs(300));
    assert_eq!(c.timeouts.progress, Duration::from_secs(2));
    assert_eq!(c.timeouts.shutdown_grace, Duration::from_secs(60));
}

#[test]
fn a_single_listen_address_needs_no_list() {
    let c = parse("listen: inet:[::1]:9000\n").unwrap();
    assert_eq!(c.listen, vec![ListenAddr::Inet { host: "::1".into(), port: 9000 }]);
}

#[test]
fn unknown_key_is_reported_with_line_and_column() {
    let e = parse("listen: inet:127.0.0.1:1\ntimeouts:\n  idel: 5m\n").unwrap_err();
    let ConfigError::Yaml(y) = &e else { panic!("{e}") };
    assert_eq!((y.line, y.column), (Some(3), Some(3)), "{e}");
    assert!(y.message.contains("unknown field `idel`"), "{e}");
    assert!(e.to_string().starts_with("/etc/inspect-milter/config.yaml:3:3: "), "{e}");
}

#[test]
fn bad_values_are_reported_with_line_and_column() {
    for (text, line, col, needle) in [
        ("on_error: maybe\n", 1, 11, "unknown variant `maybe`"),
        ("max_message_size: lots\n", 1, 19, "invalid size"),
        ("timeouts:\n  idle: 5 fortnights\n", 2, 9, "unknown unit"),
        ("socket_mode: \"0999\"\n", 1, 14, "octal"),
        ("max_connections: -1\n", 1, 18, "max_connections"),
        ("listen: inet:8897\n", 1, 9, "no host"),
    ] {
        let e = parse(text).unwrap_err();
        let ConfigError::Yaml(y) = &e else { panic!("{text}: {e}") };
        assert_eq!((y.line, y.column), (Some(line), Some(col)), "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

#[test]
fn cross_field_validation_names_the_key() {
    for (text, key) in [
        ("listen: []\n", "listen"),
        ("max_connections: 0\n", "max_connections"),
        ("max_message_size: 10\n", "max_message_size"),
        ("max_inflight_bytes: 1KiB\n", "max_inflight_bytes"),
        ("timeouts:\n  progress: 15s\n", "timeouts.progress"),
        ("timeouts:\n  idle: 0s\n", "timeouts.idle"),
        ("inspect:\n  limits:\n    max_depth: 0\n", "inspect.limits.max_depth"),
        ("inspect:\n  limits:\n    max_part_bytes: 0\n", "inspect.limits.max_part_bytes"),
    ] {
        let e = parse(text).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &e else { panic!("{text}: {e}") };
        assert_eq!(problems.iter().map(|p| p.0).collect::<Vec<_>>(), vec![key], "{text}: {e}");
    }
}

/// One run names every value problem, in every section, each with its key; `check` puts each
/// at its key's line.
#[test]
fn every_value_problem_is_reported_at_once_with_its_place() {
    let text = "listen: inet:127.0.0.1:9000\ntimeouts:\n  idle: 0s\n  progress: 15s\npolicy:\n  header_prefix: \"X Bad\"\n  reject_reply: \"451 4.7.1 no\"\nrelease:\n  max_age: 0s\nmetrics:\n  listen: inet:127.0.0.1:9000\n";
    let e = parse(text).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else { panic!("{e}") };
    let keys: Vec<&str> = problems.iter().map(|p| p.0).collect();
    for key in [
        "timeouts.idle",
        "timeouts.progress",
        "policy.header_prefix",
        "policy.reject_reply",
        "release.max_age",
        "metrics.listen",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert_eq!(e.to_string().lines().count(), 6, "one line each: {e}");
    let tree = crate::yaml::tree(text).unwrap();
    assert_eq!(crate::yaml::key_position(&tree, "timeouts.progress"), Some((4, 3)));
    assert_eq!(crate::yaml::key_position(&tree, "policy.reject_reply"), Some((7, 3)));
    assert_eq!(
        crate::yaml::key_position(&tree, "policy.thresholds.tag"),
        Some((5, 1)),
        "an unwritten key: its section"
    );
    assert_eq!(crate::yaml::key_position(&tree, "inspect.threads"), None);
}

#[test]
fn unquoted_octal_mode_is_read_as_octal() {
    assert_eq!(parse("socket_mode: 660\n").unwrap().socket_mode, 0o660);
    assert_eq!(parse("socket_mode: 0660\n").unwrap().socket_mode, 0o660);
    assert_eq!(parse("socket_mode: 0o600\n").unwrap().socket_mode, 0o600);
}

#[test]
fn missing_file_is_a_read_error() {
    let e = Config::load(Path::new("/nonexistent/inspect-milter.yaml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/inspect-milter.yaml"));
}

#[test]
fn rules_dir_takes_one_directory_or_a_list() {
    assert_eq!(parse("rules:\n  dir: /a\n").unwrap().rules.dirs, vec![std::path::PathBuf::from("/a")]);
    let c = parse("rules:\n  dir: [/usr/share/inspect-milter/rules, /etc/inspect-milter/rules.d]\n").unwrap();
    assert_eq!(c.rules.dirs.len(), 2);
    assert!(Config::default().rules.dirs.is_empty(), "no directory: the built-in pack");
}

#[test]
fn the_section_checker_knows_every_section() {
    // The packaged configuration sets every section; the checker must take each of them.
    let text = include_str!("../../packaging/inspect-milter.yaml");
    assert!(parse(text).is_ok());
    let errors = section_errors(text, "config.yaml");
    assert!(errors.is_empty(), "{errors:?}");
    let errors = section_errors("quarantine:\n  mode: sideways\nnosuch: 1\n", "c.yaml");
    let codes: Vec<_> = errors.iter().map(|e| (e.line, e.message.contains("nosuch"))).collect();
    assert_eq!(codes, vec![(Some(2), false), (Some(3), true)], "{errors:?}");
}
