//! The daemon side: listeners, the connection limit, timeouts and shutdown, driving one
//! protocol [`Session`](crate::milter::session::Session) per connection over a socket.
//!
//! Shutdown comes from three small pieces: a watch channel says which [`Phase`] we are in, a
//! semaphore caps connections, and a task set tells when every connection has finished.
//! `Drain` (SIGTERM) stops accepting, closes idle connections and lets messages in flight
//! finish within the grace period; `Stop` (SIGINT, or the end of the grace period) cuts every
//! connection — the MTA then applies its `milter_default_action`, so nothing is lost.

mod addr;
pub mod budget;
mod connection;
pub mod listen;
pub mod pool;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

pub use addr::ListenAddr;
pub use listen::Listener;

use crate::milter::{Filter, Verdict};
use pool::Pool;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Stop accepting; finish messages in flight; close idle connections.
    Drain,
    /// Close everything now.
    Stop,
}

/// What the server needs to know, taken from the configuration.
#[derive(Clone)]
pub struct Options {
    pub max_connections: usize,
    pub max_message_size: usize,
    pub idle_timeout: Duration,
    pub message_timeout: Duration,
    pub progress_interval: Duration,
    pub shutdown_grace: Duration,
    /// The verdict used when the filter fails or panics.
    pub on_error: Verdict,
    pub filter_threads: usize,
    /// Message bytes all connections together may hold in memory; past it messages are
    /// spooled to `spool_dir` (see [`budget`]).
    pub inflight_bytes: usize,
    pub spool_dir: std::path::PathBuf,
}

/// The filter in force. A reload sends a new one; each message keeps the one that was current
/// when it began.
pub type FilterHandle = watch::Receiver<Arc<dyn Filter>>;

struct Shared {
    options: Options,
    pool: Arc<Pool>,
    filters: FilterHandle,
    budget: budget::Budget,
    /// Messages begun on every connection so far, so the server can tell when it is idle.
    begun: std::sync::atomic::AtomicU64,
}

/// Serves milter connections on `listeners` until `phase` says stop.
pub async fn run(
    listeners: Vec<Listener>,
    filters: FilterHandle,
    options: Options,
    mut phase: watch::Receiver<Phase>,
) {
    let pool = Pool::new(options.filter_threads, "filter");
    let budget = budget::Budget::new(options.inflight_bytes, options.spool_dir.clone());
    let shared = Arc::new(Shared {
        options: options.clone(),
        pool: Arc::clone(&pool),
        filters,
        budget,
        begun: std::sync::atomic::AtomicU64::new(0),
    });
    let limit = Arc::new(Semaphore::new(options.max_connections));
    let mut connections = JoinSet::new();
    let mut acceptors = JoinSet::new();
    let (conn_tx, mut conn_rx) =
        tokio::sync::mpsc::channel::<(listen::Stream, String, tokio::sync::OwnedSemaphorePermit)>(64);
    let listeners: Vec<Arc<Listener>> = listeners.into_iter().map(Arc::new).collect();
    for listener in &listeners {
        let listener = Arc::clone(listener);
        let limit = Arc::clone(&limit);
        let tx = conn_tx.clone();
        let max = options.max_connections;
        acceptors.spawn(async move {
            let mut warned = false;
            let mut backoff = listen::AcceptBackoff::default();
            loop {
                // Wait for a free slot before accepting: past the limit, clients wait in the
                // listen backlog instead of being accepted and starved.
                let permit = match Arc::clone(&limit).try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        if !warned {
                            warn!(limit = max, "connection limit reached; new connections wait");
                            warned = true;
                        }
                        match Arc::clone(&limit).acquire_owned().await {
                            Ok(p) => p,
                            Err(_) => return,
                        }
                    }
                };
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        warned = false;
                        backoff.succeeded();
                        if tx.send((stream, peer, permit)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => backoff.failed(&e, "milter").await,
                }
            }
        });
    }
    drop(conn_tx);
    for l in &listeners {
        info!(listen = %l.local_addr(), "listening");
    }
    let mut next_id: u64 = 0;
    // Memory left over from a burst goes back to the system: spare buffers once unused for
    // a while, and everything the allocator holds free once no message has begun for a tick.
    let mut trim = tokio::time::interval(crate::memory::SPARE_IDLE / 2);
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_begun = 0;
    let mut given_back = true;
    loop {
        tokio::select! {
            _ = trim.tick() => {
                let begun = shared.begun.load(std::sync::atomic::Ordering::Relaxed);
                if begun != last_begun || shared.budget.in_use() > 0 {
                    crate::memory::SPARES.trim(crate::memory::SPARE_IDLE);
                    given_back = false;
                } else if !given_back {
                    crate::memory::give_back_idle();
                    given_back = true;
                }
                last_begun = begun;
            }
            accepted = conn_rx.recv() => {
                let Some((stream, peer, permit)) = accepted else { break };
                next_id += 1;
                let span = info_span!("conn", id = next_id, peer = %peer);
                let shared = Arc::clone(&shared);
                let phase = phase.clone();
                connections.spawn(
                    async move {
                        connection::serve(stream, shared, phase).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() != Phase::Running {
                    break;
                }
            }
        }
    }
    acceptors.abort_all();
    for l in &listeners {
        l.cleanup();
    }
    let now = *phase.borrow();
    if now == Phase::Drain && !connections.is_empty() {
        info!(connections = connections.len(), grace = ?options.shutdown_grace, "draining");
        let drained = tokio::time::timeout(options.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(connections = connections.len(), "grace period over; closing connections");
        }
    }
    connections.shutdown().await;
    // Jobs still on the pool belong to connections that are gone; let them finish in the
    // background rather than block the exit.
    drop(shared);
    std::thread::spawn(move || pool.shutdown());
    info!("stopped");
}
