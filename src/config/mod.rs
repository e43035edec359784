//! The configuration: one YAML file, read into raw serde structs (every key optional, with a
//! default documented at the field and the reason for it), then validated into [`Config`].
//!
//! Unknown keys are errors (a misspelt key silently ignored is a setting silently not applied),
//! and every error names the file and line:column. With no file at all, [`Config::default`] is
//! the documented quickstart: listen on `inet:127.0.0.1:8897`, fail closed with tempfail.
//! Which file a command reads when `--config` is not given is decided in `source`.

pub mod inspect;
pub mod ops;
pub mod policy;
pub mod quarantine;
pub mod release;
mod source;
pub mod state;
mod units;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

pub use source::{CONFIG_ENV, ConfigSource, SITE_CONFIG};
pub use units::{Bytes, Span, parse_bytes, parse_duration, parse_duration_with_unit};

use crate::server::ListenAddr;
use crate::yaml::{self, YamlError};

/// The address `serve` listens on with no configuration.
pub const DEFAULT_LISTEN: &str = "inet:127.0.0.1:8897";

/// What to do with a message when we cannot decide about it (an internal error, a panic in
/// inspection, a filter that failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailAction {
    /// Fail open: deliver uninspected.
    Accept,
    /// Fail closed but lose nothing: the client retries later.
    Tempfail,
    /// Refuse permanently.
    Reject,
    /// Accept into the MTA's hold queue for a person to look at.
    Quarantine,
}

/// The file as written. Every field has a default, so an empty file is a valid configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Addresses to listen on, in Postfix or libmilter form; one string or a list.
    /// Default `inet:127.0.0.1:8897`: loopback only, so a fresh install exposes nothing.
    pub listen: OneOrMany<ListenAddr>,
    /// Permissions of unix sockets we create. Default `0660`: the MTA reaches the socket
    /// through the group (add `postfix` to ours); nobody else can submit mail for inspection.
    pub socket_mode: Mode,
    /// Connections served at once; further ones wait in the listen backlog. Default 1000:
    /// Postfix opens one milter connection per SMTP connection (default process limit 100 per
    /// service), and an idle connection costs a few KiB.
    pub max_connections: usize,
    /// Bytes of one message we keep (headers and body). Past it the message is marked
    /// truncated, the rest is skipped, and policy decides — it is never called clean.
    /// Default 64MiB: above every common `message_size_limit` (Postfix ships 10 MB), so only
    /// messages the MTA was configured to accept beyond that are truncated.
    pub max_message_size: Bytes,
    /// Bytes of messages all connections together hold in memory while they arrive and while
    /// they are inspected. Past it a message arriving goes on in an unlinked file in
    /// `spool_dir`, and waits at its end for room to be read back, so memory is bounded by
    /// this setting (plus what inspection decodes, bounded by `inspect.limits` and
    /// `inspect.threads`), not by how many large messages arrive at once. Default 256MiB: room
    /// for dozens of ordinary messages at once and several at `max_message_size`; lower it on
    /// small machines, raise it if `spool_dir` is slow.
    pub max_inflight_bytes: Bytes,
    /// Where messages past `max_inflight_bytes` are spooled (files are unlinked as they are
    /// created, so nothing is left behind). Default `/var/tmp`: on disk on every common
    /// system (unlike `/tmp`, often in memory), and private and writable under the shipped
    /// systemd unit (`PrivateTmp=yes`).
    pub spool_dir: PathBuf,
    /// What an internal error does to the message. Default `tempfail`: nothing is delivered
    /// uninspected and nothing is lost; the client retries.
    pub on_error: FailAction,
    pub timeouts: RawTimeouts,
    pub rules: inspect::RawRules,
    pub inspect: inspect::RawInspect,
    pub policy: policy::RawPolicy,
    pub quarantine: quarantine::RawQuarantine,
    pub log: ops::RawLog,
    pub metrics: ops::RawMetrics,
    pub release: release::RawRelease,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    /// A connection with no packet for this long is closed. Default `2h`: longer than any
    /// MTA's wait between SMTP commands (Sendmail allows 1h), because closing a connection the
    /// MTA still holds turns its next message into a tempfail; libmilter uses about the same.
    pub idle: Span,
    /// From MAIL to end of message at most this long, however the bytes trickle in.
    /// Default `1h`: a slow client sending a large message legitimately needs minutes, and
    /// a connection that trickles forever must still be freed.
    pub message: Span,
    /// While the filter works, a PROGRESS reply is sent this often so the MTA's reply timer
    /// (Sendmail: 10s by default) does not fire. Default `5s`.
    pub progress: Span,
    /// On SIGTERM, messages in flight get this long to finish before connections are cut.
    /// Default `30s`: well inside systemd's default 90s stop timeout.
    pub shutdown_grace: Span,
}

impl Default for RawConfig {
    fn default() -> RawConfig {
        RawConfig {
            listen: OneOrMany(vec![DEFAULT_LISTEN.parse().expect("the default address parses")]),
            socket_mode: Mode(0o660),
            max_connections: 1000,
            max_message_size: Bytes(64 << 20),
            max_inflight_bytes: Bytes(256 << 20),
            spool_dir: PathBuf::from("/var/tmp"),
            on_error: FailAction::Tempfail,
            timeouts: RawTimeouts::default(),
            rules: inspect::RawRules::default(),
            inspect: inspect::RawInspect::default(),
            policy: policy::RawPolicy::default(),
            quarantine: quarantine::RawQuarantine::default(),
            log: ops::RawLog::default(),
            metrics: ops::RawMetrics::default(),
            release: release::RawRelease::default(),
        }
    }
}

impl Default for RawTimeouts {
    fn default() -> RawTimeouts {
        RawTimeouts {
            idle: Span(Duration::from_secs(2 * 3600)),
            message: Span(Duration::from_secs(3600)),
            progress: Span(Duration::from_secs(5)),
            shutdown_grace: Span(Duration::from_secs(30)),
        }
    }
}

/// One value or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OneOrMany<T>, D::Error> {
        // A visitor, not an untagged enum: that would replace the inner error (say, a bad
        // address) with "did not match any variant" and lose its position.
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one value or a list of values")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let one = T::deserialize(serde::de::value::StrDeserializer::<E>::new(v))?;
                Ok(OneOrMany(vec![one]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(item) = seq.next_element()? {
                    all.push(item);
                }
                Ok(OneOrMany(all))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A unix permission mode, written in octal (`"0660"`, or `660`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("octal permissions such as \"0660\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Mode, E> {
                let digits = v.trim().trim_start_matches("0o");
                match u32::from_str_radix(digits, 8) {
                    Ok(m) if m <= 0o777 => Ok(Mode(m)),
                    _ => Err(E::custom(format!(
                        "invalid socket mode {v:?}: expected octal permissions such as \"0660\""
                    ))),
                }
            }
        }
        // Asked for a string, the YAML parser hands over the scalar as written, so `0660`,
        // `660` and `0o660` all mean what they look like rather than a YAML integer.
        d.deserialize_str(V)
    }
}

/// The validated configuration the rest of the program uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the configuration came from (`None`: built-in defaults).
    pub origin: Option<PathBuf>,
    pub listen: Vec<ListenAddr>,
    pub socket_mode: u32,
    pub max_connections: usize,
    pub max_message_size: usize,
    pub max_inflight_bytes: usize,
    pub spool_dir: PathBuf,
    pub on_error: FailAction,
    pub timeouts: Timeouts,
    pub rules: inspect::RulesConfig,
    pub inspect: inspect::InspectConfig,
    pub policy: policy::PolicyConfig,
    pub quarantine: quarantine::QuarantineConfig,
    pub log: ops::LogConfig,
    pub metrics: ops::MetricsConfig,
    pub release: release::ReleaseConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub idle: Duration,
    pub message: Duration,
    pub progress: Duration,
    pub shutdown_grace: Duration,
}

#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Yaml(YamlError),
    /// Values that parsed but make no sense, or do not fit with another: every one found,
    /// each with its key (never empty).
    Invalid {
        origin: String,
        problems: Problems,
    },
}

/// What is wrong with a configuration's values: each with the key it is about.
pub type Problems = Vec<(&'static str, String)>;

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            ConfigError::Yaml(e) => write!(f, "{e}"),
            ConfigError::Invalid { origin, problems } => {
                let lines: Vec<String> =
                    problems.iter().map(|(key, message)| format!("{origin}: {key}: {message}")).collect();
                write!(f, "{}", lines.join("\n"))
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    fn default() -> Config {
        RawConfig::default().validate(None).expect("the built-in defaults are valid")
    }
}

impl Config {
    /// The keys a running daemon cannot change on reload, each with its value, for the warning
    /// that a restart is needed.
    pub fn restart_only(&self) -> Vec<(&'static str, String)> {
        vec![
            ("listen", format!("{:?}", self.listen)),
            ("socket_mode", format!("{:o}", self.socket_mode)),
            ("max_connections", self.max_connections.to_string()),
            ("max_message_size", self.max_message_size.to_string()),
            ("max_inflight_bytes", self.max_inflight_bytes.to_string()),
            ("spool_dir", self.spool_dir.display().to_string()),
            ("on_error", format!("{:?}", self.on_error)),
            ("timeouts", format!("{:?}", self.timeouts)),
            ("inspect.threads", self.inspect.threads.to_string()),
            ("log", format!("{:?}", self.log)),
            ("metrics.listen", format!("{:?}", self.metrics.listen)),
        ]
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = yaml::from_str(text, origin).map_err(ConfigError::Yaml)?;
        raw.validate(Some(origin))
    }
}

impl RawConfig {
    pub fn validate(self, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let name = origin.map_or_else(|| "built-in defaults".to_string(), |p| p.display().to_string());
        // Every problem is collected, so that one run of `check` or `serve` names them all.
        let mut problems = Problems::new();
        let mut invalid = |key, message: &str| problems.push((key, message.to_string()));
        if self.listen.0.is_empty() {
            invalid("listen", "at least one address is needed");
        }
        if self.max_connections == 0 {
            invalid("max_connections", "must be at least 1");
        }
        let max_message_size = usize::try_from(self.max_message_size.0).unwrap_or(usize::MAX);
        if max_message_size < 1024 {
            invalid("max_message_size", "must be at least 1KiB");
        }
        let max_inflight_bytes = usize::try_from(self.max_inflight_bytes.0).unwrap_or(usize::MAX);
        if max_inflight_bytes < 1 << 20 {
            invalid("max_inflight_bytes", "must be at least 1MiB");
        }
        if self.spool_dir.as_os_str().is_empty() {
            invalid("spool_dir", "must name a directory");
        }
        let t = &self.timeouts;
        for (key, span) in
            [("timeouts.idle", t.idle), ("timeouts.message", t.message), ("timeouts.progress", t.progress)]
        {
            if span.0.is_zero() {
                invalid(key, "must be greater than zero");
            }
        }
        if t.progress.0 >= Duration::from_secs(10) {
            invalid(
                "timeouts.progress",
                "must be under 10s: Sendmail's default reply timeout is 10s and PROGRESS is what keeps it from firing",
            );
        }
        fn section<T>(checked: Result<T, Problems>, problems: &mut Problems) -> Option<T> {
            checked.map_err(|mut p| problems.append(&mut p)).ok()
        }
        let inspect = section(self.inspect.validate(), &mut problems);
        let policy = section(self.policy.validate(), &mut problems);
        let quarantine = section(self.quarantine.validate(), &mut problems);
        let log = section(self.log.validate(), &mut problems);
        let metrics = section(self.metrics.validate(), &mut problems);
        let release = section(self.release.validate(), &mut problems);
        if let Some(addr) = metrics.as_ref().and_then(|m| m.listen.as_ref())
            && self.listen.0.contains(addr)
        {
            problems.push((
                "metrics.listen",
                format!("{addr} is also in `listen`: they need addresses of their own"),
            ));
        }
        let (Some(inspect), Some(policy), Some(quarantine), Some(log), Some(metrics), Some(release), true) =
            (inspect, policy, quarantine, log, metrics, release, problems.is_empty())
        else {
            return Err(ConfigError::Invalid { origin: name, problems });
        };
        let rules = inspect::RulesConfig {
            dirs: self.rules.dir.map(|d| d.0).unwrap_or_default(),
            relaxed_yara_syntax: self.rules.relaxed_yara_syntax,
        };
        Ok(Config {
            origin: origin.map(Path::to_path_buf),
            rules,
            inspect,
            policy,
            quarantine,
            log,
            metrics,
            release,
            listen: self.listen.0,
            socket_mode: self.socket_mode.0,
            max_connections: self.max_connections,
            max_message_size,
            max_inflight_bytes,
            spool_dir: self.spool_dir,
            on_error: self.on_error,
            timeouts: Timeouts {
                idle: t.idle.0,
                message: t.message.0,
                progress: t.progress.0,
                shutdown_grace: t.shutdown_grace.0,
            },
        })
    }
}

/// Every top-level key of the configuration.
const SECTIONS: &[&str] = &[
    "listen",
    "socket_mode",
    "max_connections",
    "max_message_size",
    "max_inflight_bytes",
    "spool_dir",
    "on_error",
    "timeouts",
    "rules",
    "inspect",
    "policy",
    "quarantine",
    "log",
    "metrics",
    "release",
];

/// Checks each top-level section of `text` on its own, so that one mistake does not hide the
/// next: an unknown section, and the first problem inside each section, all with line:column.
/// (Loading stops at the first problem; `check` uses this to report them all.)
pub fn section_errors(text: &str, origin: &str) -> Vec<crate::rules::diag::Diagnostic> {
    use crate::rules::diag::Diagnostic;
    let node = match yaml::tree(text) {
        Ok(n) => n,
        Err((at, msg)) => return vec![Diagnostic::error("C002", origin, at, msg)],
    };
    let Some(map) = node.as_mapping() else { return Vec::new() };
    let mut out = Vec::new();
    for (key, value) in map.iter() {
        let name = key.as_str();
        if !SECTIONS.contains(&name) {
            out.push(Diagnostic::error(
                "C002",
                origin,
                yaml::position(key.span()),
                format!("unknown field `{name}`, expected one of {}", SECTIONS.join(", ")),
            ));
            continue;
        }
        let single: yaml::MarkedMappingNode = std::iter::once((key.clone(), value.clone())).collect();
        if let Err((at, msg)) = yaml::from_node::<RawConfig>(&yaml::Node::Mapping(single)) {
            out.push(Diagnostic::error("C002", origin, at.or(yaml::position(value.span())), msg));
        }
    }
    out
}

#[cfg(test)]
mod tests;
