//! Shared test helpers: an in-process server on 127.0.0.1:0 and a scripted filter.

#![allow(dead_code)]

pub mod lab;
pub mod scripted;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use inspect_milter::milter::{Filter, Verdict};
use inspect_milter::mta::{Client, POSTFIX_OFFER};
use inspect_milter::server::{self, ListenAddr, Listener, Options, Phase};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub fn options() -> Options {
    Options {
        max_connections: 100,
        max_message_size: 1 << 20,
        idle_timeout: Duration::from_secs(30),
        message_timeout: Duration::from_secs(60),
        progress_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(10),
        on_error: inspect_milter::policy::on_error_verdict(
            inspect_milter::config::FailAction::Tempfail,
            "X-Inspect-",
        ),
        filter_threads: 2,
        inflight_bytes: 64 << 20,
        spool_dir: std::env::temp_dir(),
    }
}

pub struct TestServer {
    pub addr: ListenAddr,
    pub phase: watch::Sender<Phase>,
    pub filters: watch::Sender<Arc<dyn Filter>>,
    pub task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(filter: Arc<dyn Filter>, options: Options) -> TestServer {
        Self::start_on(&"inet:127.0.0.1:0".parse().unwrap(), filter, options).await
    }

    pub async fn start_on(addr: &ListenAddr, filter: Arc<dyn Filter>, options: Options) -> TestServer {
        Self::start_with_mode(addr, 0o660, filter, options).await
    }

    pub async fn start_with_mode(
        addr: &ListenAddr,
        mode: u32,
        filter: Arc<dyn Filter>,
        options: Options,
    ) -> TestServer {
        let listener = Listener::bind(addr, mode).await.expect("bind");
        let addr = listener.local_addr();
        let (filters, rx) = watch::channel(filter);
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let task = tokio::spawn(server::run(vec![listener], rx, options, phase_rx));
        TestServer { addr, phase, filters, task }
    }

    pub async fn client(&self) -> Client {
        let mut c = Client::connect(&self.addr, Duration::from_secs(10)).await.expect("connect");
        c.negotiate(POSTFIX_OFFER).await.expect("negotiate");
        c.open("192.0.2.10", "client.example").await.expect("connect+helo");
        c
    }

    pub async fn stop(self) {
        let _ = self.phase.send(Phase::Stop);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

pub fn accept_all() -> Verdict {
    Verdict::accept()
}
