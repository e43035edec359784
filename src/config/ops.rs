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
    /// protocol packet), or a tracing directive. `--log-level` and `RUST_LOG` override it.
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
        if self.level.trim().is_empty() {
            return Err(vec![("log.level", "must not be empty".into())]);
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
