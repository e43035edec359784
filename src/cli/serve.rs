//! `inspect-milter serve`: load the configuration, bind, and serve until a signal says stop.
//!
//! SIGTERM drains (messages in flight finish within `timeouts.shutdown_grace`), SIGINT stops
//! at once. With no `--config`, the built-in defaults apply: `inet:127.0.0.1:8897`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{EXIT_ERROR, EXIT_OK};
use crate::config::Config;
use crate::milter::Filter;
use crate::pipeline::{InspectFilter, Pipeline};
use crate::policy;
use crate::server::{self, ListenAddr, Listener, Phase};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (YAML). Without it, every setting has its documented default.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen on ADDR instead of the configured addresses (repeatable): inet:HOST:PORT,
    /// inet:[IPv6]:PORT, inet:PORT@HOST, inet6:PORT@HOST, unix:/PATH or local:/PATH.
    #[arg(long, short = 'l', value_name = "ADDR")]
    pub listen: Vec<ListenAddr>,
}

pub fn run(args: ServeArgs) -> u8 {
    let mut config = match super::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("inspect-milter: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> u8 {
    let mut listeners = Vec::new();
    for addr in &config.listen {
        match Listener::bind(addr, config.socket_mode).await {
            Ok(l) => listeners.push(l),
            Err(e) => {
                error!("{e}");
                eprintln!("inspect-milter: {e}");
                listeners.iter().for_each(Listener::cleanup);
                return EXIT_ERROR;
            }
        }
    }
    let filter: Arc<dyn Filter> = match Pipeline::load(&config) {
        Ok((pipeline, warnings)) => {
            for w in &warnings {
                warn!("{w}");
            }
            let rules = &pipeline.inspector.rules;
            info!(rules = %rules.identity, yara = rules.yara_count(), regex = rules.regex_count(), "rules loaded");
            match InspectFilter::open(pipeline, &config) {
                Ok(f) => Arc::new(f),
                Err(e) => {
                    error!("cannot open the quarantine store: {e}");
                    eprintln!("inspect-milter: cannot open the quarantine store: {e}");
                    listeners.iter().for_each(Listener::cleanup);
                    return EXIT_ERROR;
                }
            }
        }
        Err(e) => {
            error!("{e}");
            eprintln!("inspect-milter: {e}");
            listeners.iter().for_each(Listener::cleanup);
            return EXIT_ERROR;
        }
    };
    let (_filter_tx, filters) = watch::channel(filter);
    let (phase_tx, phase) = watch::channel(Phase::Running);
    let options = server_options(&config);
    let signals = async move {
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            error!("cannot install signal handlers");
            let _ = phase_tx.send(Phase::Stop);
            return;
        };
        tokio::select! {
            _ = term.recv() => {
                info!("SIGTERM: draining messages in flight");
                let _ = phase_tx.send(Phase::Drain);
            }
            _ = int.recv() => {
                info!("SIGINT: stopping now");
                let _ = phase_tx.send(Phase::Stop);
                return;
            }
        }
        // A second signal during the drain stops at once.
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = phase_tx.send(Phase::Stop);
    };
    let signal_task = tokio::spawn(signals);
    server::run(listeners, filters, options, phase).await;
    signal_task.abort();
    EXIT_OK
}

pub(crate) fn server_options(config: &Config) -> server::Options {
    server::Options {
        max_connections: config.max_connections,
        max_message_size: config.max_message_size,
        idle_timeout: config.timeouts.idle,
        message_timeout: config.timeouts.message,
        progress_interval: config.timeouts.progress,
        shutdown_grace: config.timeouts.shutdown_grace,
        on_error: policy::on_error_verdict(config.on_error),
        filter_threads: config.inspect.threads,
    }
}
