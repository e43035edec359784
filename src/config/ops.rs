//! The `log:` and `metrics:` sections.

use serde::Deserialize;

use crate::server::ListenAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `key=value` lines, for people and grep.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// `error`, `warn`, `info` (default: one summary line per message), `debug`, `trace` (every
    /// protocol packet), `off`, or tracing directives (`warn,inspect_milter::server=trace`).
    /// `--log-level` and `RUST_LOG` override it.
    pub level: String,
}

impl Default for RawLog {
    fn default() -> RawLog {
        RawLog { format: LogFormat::Text, level: "info".to_string() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    /// Where to serve Prometheus metrics (`GET /metrics`) and a health check (`GET /health`),
    /// e.g. `inet:127.0.0.1:9897`. Default: off — a second port is the administrator's choice.
    pub listen: Option<ListenAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: Option<ListenAddr>,
}

impl RawLog {
    pub fn validate(self) -> Result<LogConfig, super::Problems> {
        if let Err(e) = log_filter(&self.level) {
            return Err(vec![("log.level", e)]);
        }
        Ok(LogConfig { format: self.format, level: self.level })
    }
}

impl RawMetrics {
    pub fn validate(self) -> Result<MetricsConfig, super::Problems> {
        if let Some(ListenAddr::Unix(_)) = self.listen {
            return Err(vec![(
                "metrics.listen",
                "must be an inet address (Prometheus scrapes over TCP)".into(),
            )]);
        }
        Ok(MetricsConfig { listen: self.listen })
    }
}

const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// The tracing filter for a log level as configured. A bare level is about our own logs (the
/// engines' libraries log warnings: at `debug`, yara-x's code generator alone writes hundreds of
/// lines a scan); directives (`target=level`, comma-separated) are used as written. Anything
/// else is refused: a word that is not a level would be read as a target name and silence
/// every log line.
pub fn log_filter(level: &str) -> Result<String, String> {
    let level = level.trim();
    let is_level = |l: &str| LEVELS.contains(&l.to_ascii_lowercase().as_str());
    if level.is_empty() {
        return Err("must not be empty".into());
    }
    for part in level.split(',').map(str::trim) {
        let ok = match part.split_once('=') {
            Some((target, l)) => !target.is_empty() && is_level(l),
            None => is_level(part),
        };
        if !ok {
            return Err(format!(
                "`{part}` is not a level ({}) or a directive like inspect_milter=debug",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(match level.to_ascii_lowercase().as_str() {
        l @ ("info" | "debug" | "trace") => format!("warn,inspect_milter={l}"),
        _ => level.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn log_levels_are_levels_or_directives_and_a_bare_level_is_ours() {
        assert_eq!(log_filter("info").unwrap(), "warn,inspect_milter=info");
        assert_eq!(log_filter("DEBUG").unwrap(), "warn,inspect_milter=debug");
        assert_eq!(log_filter("warn").unwrap(), "warn");
        assert_eq!(log_filter("off").unwrap(), "off");
        assert_eq!(
            log_filter("info,inspect_milter::server=trace").unwrap(),
            "info,inspect_milter::server=trace"
        );
        for bad in ["verbose", "", "  ", "inspect_milter=loud", "=debug", "info,,debug"] {
            assert!(log_filter(bad).is_err(), "{bad:?}");
        }
    }
}
