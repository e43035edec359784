//! Counters and histograms for Prometheus, and the optional listener that serves them.
//!
//! The data path only increments atomics in a process-wide registry; encoding happens when
//! the scraper asks, on the metrics listener's own task. The listener is off by default: it is
//! a second port an administrator must choose to open (`metrics.listen`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RulesetLabel {
    pub ruleset: String,
}

pub struct Metrics {
    pub messages: Family<DecisionLabel, Counter>,
    pub rule_hits: Family<RuleLabel, Counter>,
    pub uninspected: Family<ReasonLabel, Counter>,
    pub scan_seconds: Histogram,
    pub message_bytes: Histogram,
    pub connections: Gauge,
    pub protocol_errors: Counter,
    pub filter_errors: Counter,
    pub reloads: Family<ResultLabel, Counter>,
    pub rules_loaded: Gauge,
    pub ruleset: Family<RulesetLabel, Gauge>,
    registry: Registry,
    /// The identity currently set to 1 in `ruleset`, so a reload can zero it.
    current_ruleset: std::sync::Mutex<String>,
    pub started: AtomicU64,
}

pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("inspect_milter");
        let messages = Family::<DecisionLabel, Counter>::default();
        registry.register("messages", "Messages inspected, by decision", messages.clone());
        let rule_hits = Family::<RuleLabel, Counter>::default();
        registry.register("rule_hits", "Messages each rule hit", rule_hits.clone());
        let uninspected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "uninspected_parts",
            "Parts that could not be inspected, by reason",
            uninspected.clone(),
        );
        // 1 ms to ~33 s.
        let scan_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("scan_seconds", "Time to inspect one message", scan_seconds.clone());
        // 1 KiB to 64 MiB.
        let message_bytes = Histogram::new(exponential_buckets(1024.0, 2.0, 17));
        registry.register("message_bytes", "Size of inspected messages", message_bytes.clone());
        let connections = Gauge::default();
        registry.register("open_connections", "Milter connections open now", connections.clone());
        let protocol_errors = Counter::default();
        registry.register(
            "protocol_errors",
            "Connections closed for a protocol error",
            protocol_errors.clone(),
        );
        let filter_errors = Counter::default();
        registry.register("filter_errors", "Messages given the on_error action", filter_errors.clone());
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("reloads", "Configuration and rule reloads, by result", reloads.clone());
        let rules_loaded = Gauge::default();
        registry.register("rules_loaded", "Rules in the rule set in force", rules_loaded.clone());
        let ruleset = Family::<RulesetLabel, Gauge>::default();
        registry.register("ruleset", "The rule set in force (1 for its identity)", ruleset.clone());
        Metrics {
            messages,
            rule_hits,
            uninspected,
            scan_seconds,
            message_bytes,
            connections,
            protocol_errors,
            filter_errors,
            reloads,
            rules_loaded,
            ruleset,
            registry,
            current_ruleset: std::sync::Mutex::new(String::new()),
            started: AtomicU64::new(0),
        }
    }

    /// Records which rule set is in force.
    pub fn set_ruleset(&self, identity: &str, rules: usize) {
        if let Ok(mut current) = self.current_ruleset.lock() {
            if !current.is_empty() {
                self.ruleset.get_or_create(&RulesetLabel { ruleset: current.clone() }).set(0);
            }
            self.ruleset.get_or_create(&RulesetLabel { ruleset: identity.to_string() }).set(1);
            *current = identity.to_string();
        }
        self.rules_loaded.set(rules as i64);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn messages_total(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

/// Serves `GET /metrics` (and `GET /health`) on `listener` until the task is dropped. Each
/// request must arrive within 5 s and fit in 8 KiB; anything else is answered 404 or closed.
pub async fn serve(listener: TcpListener) {
    serve_at_most(listener, MAX_CONNECTIONS).await;
}

/// Scrapes served at once; more wait in the listen backlog (a scraper needs one or two).
const MAX_CONNECTIONS: usize = 16;

async fn serve_at_most(listener: TcpListener, max: usize) {
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(max));
    let mut backoff = crate::server::listen::AcceptBackoff::default();
    loop {
        let Ok(permit) = std::sync::Arc::clone(&limit).acquire_owned().await else { return };
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff.succeeded();
                stream
            }
            Err(e) => {
                backoff.failed(&e, "metrics").await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _permit = permit;
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    let n = stream.read(&mut buf[len..]).await?;
                    if n == 0 {
                        break;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match (head.starts_with("GET "), path) {
                (true, "/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", get().encode()),
                (true, "/health") => ("200 OK", "text/plain", "ok\n".to_string()),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_in_the_exposition() {
        let m = get();
        m.messages.get_or_create(&DecisionLabel { decision: "quarantine".into() }).inc();
        m.uninspected.get_or_create(&ReasonLabel { reason: "encrypted-archive".into() }).inc();
        m.set_ruleset("abc123", 7);
        m.set_ruleset("def456", 9);
        let text = m.encode();
        assert!(text.contains("inspect_milter_messages_total{decision=\"quarantine\"}"), "{text}");
        assert!(
            text.contains("inspect_milter_uninspected_parts_total{reason=\"encrypted-archive\"}"),
            "{text}"
        );
        assert!(text.contains("inspect_milter_ruleset{ruleset=\"def456\"} 1"), "{text}");
        assert!(text.contains("inspect_milter_ruleset{ruleset=\"abc123\"} 0"), "{text}");
        assert!(text.contains("inspect_milter_rules_loaded 9"), "{text}");
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_until_one_ends() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_at_most(listener, 2));
        // Two connections that say nothing hold both places.
        let idle1 = tokio::net::TcpStream::connect(addr).await.unwrap();
        let idle2 = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        third.write_all(b"GET /health HTTP/1.0\r\n\r\n").await.unwrap();
        let mut reply = Vec::new();
        let waited = tokio::time::timeout(Duration::from_millis(300), third.read_to_end(&mut reply)).await;
        assert!(waited.is_err(), "answered past the cap: {:?}", String::from_utf8_lossy(&reply));
        drop(idle1);
        drop(idle2);
        tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut reply)).await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&reply).contains("200 OK"), "{}", String::from_utf8_lossy(&reply));
    }
}
