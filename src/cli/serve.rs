//! `inspect-milter serve`: load the configuration, bind, and serve until a signal says stop.
//!
//! SIGTERM drains (messages in flight finish within `timeouts.shutdown_grace`), SIGINT stops
//! at once, SIGHUP reloads: the configuration and rules are rebuilt aside and swapped in only
//! if everything loads; messages in flight finish with what they started with; any error keeps
//! what is in force and is logged in one line. With no `--config`, the site's file when the
//! package installed one (see `config::source`), else the built-in defaults:
//! `inet:127.0.0.1:8897` and the shipped rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{EXIT_ERROR, EXIT_OK};
use crate::config::{Config, ConfigSource};
use crate::metrics::{self, ResultLabel};
use crate::milter::Filter;
use crate::pipeline::{InspectFilter, Pipeline};
use crate::policy;
use crate::server::{self, ListenAddr, Listener, Phase};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (YAML) [default: $INSPECT_MILTER_CONFIG, else
    /// /etc/inspect-milter/config.yaml when it exists, else every setting has its documented
    /// default].
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen on ADDR instead of the configured addresses (repeatable): inet:HOST:PORT,
    /// inet:[IPv6]:PORT, inet:PORT@HOST, inet6:PORT@HOST, unix:/PATH or local:/PATH.
    #[arg(long, short = 'l', value_name = "ADDR")]
    pub listen: Vec<ListenAddr>,
}

pub fn run(args: ServeArgs, source: ConfigSource, log_flag: Option<&str>) -> u8 {
    crate::memory::tune_allocator();
    let mut config = match super::load_config(&source) {
        Ok(c) => c,
        Err(code) => return code,
    };
    super::init_logging(log_flag, &config.log.level, config.log.format);
    info!(config = %source, "configuration loaded");
    if !args.listen.is_empty() {
        config.listen = args.listen.clone();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("inspect-milter: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    runtime.block_on(serve(config, source.path().map(Path::to_path_buf), args))
}

/// Builds the filter a configuration describes: rules compiled, quarantine store open.
fn build(config: &Config) -> Result<(InspectFilter, Vec<String>), String> {
    let (pipeline, warnings) = Pipeline::load(config).map_err(|e| e.to_string())?;
    // Its errors say what could not be opened (the store, the release key) and why.
    let filter = InspectFilter::open(pipeline, config)?;
    Ok((filter, warnings.iter().map(ToString::to_string).collect()))
}

/// The rule set's identity and counts, for the log line and the metrics.
fn announce(filter: &InspectFilter) -> (String, usize, usize) {
    let rules = &filter.pipeline.inspector.rules;
    metrics::get().set_ruleset(&rules.identity, rules.yara_count() + rules.regex_count());
    (rules.identity.clone(), rules.yara_count(), rules.regex_count())
}

/// `path`: the configuration file that SIGHUP reads again (`None`: built-in defaults).
async fn serve(config: Config, path: Option<PathBuf>, args: ServeArgs) -> u8 {
    let fail = |listeners: &[Listener], msg: String| {
        error!("{msg}");
        eprintln!("inspect-milter: {msg}");
        listeners.iter().for_each(Listener::cleanup);
        EXIT_ERROR
    };
    let mut listeners = Vec::new();
    for addr in &config.listen {
        match Listener::bind(addr, config.socket_mode).await {
            Ok(l) => listeners.push(l),
            Err(e) => return fail(&listeners, e.to_string()),
        }
    }
    let filter = match build(&config) {
        Ok((filter, warnings)) => {
            warnings.iter().for_each(|w| warn!("{w}"));
            let (rules, yara, regex) = announce(&filter);
            info!(rules = %rules, yara, regex, "rules loaded");
            filter
        }
        Err(e) => return fail(&listeners, e),
    };
    let metrics_task = match &config.metrics.listen {
        Some(ListenAddr::Inet { host, port }) => {
            match tokio::net::TcpListener::bind((host.as_str(), *port)).await {
                Ok(l) => {
                    info!(listen = %config.metrics.listen.as_ref().map(ToString::to_string).unwrap_or_default(), "metrics listening");
                    Some(tokio::spawn(metrics::serve(l)))
                }
                Err(e) => {
                    return fail(&listeners, format!("cannot listen for metrics on inet:{host}:{port}: {e}"));
                }
            }
        }
        _ => None,
    };
    let filter: Arc<dyn Filter> = Arc::new(filter);
    let (filter_tx, filters) = watch::channel(filter);
    let (phase_tx, phase) = watch::channel(Phase::Running);
    let options = server_options(&config);
    let signals = signals(phase_tx, filter_tx, config, path, args.listen);
    let signal_task = tokio::spawn(signals);
    server::run(listeners, filters, options, phase).await;
    signal_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    EXIT_OK
}

/// TERM drains, INT (or a second TERM) stops, HUP reloads.
async fn signals(
    phase_tx: watch::Sender<Phase>,
    filter_tx: watch::Sender<Arc<dyn Filter>>,
    config: Config,
    path: Option<PathBuf>,
    listen: Vec<ListenAddr>,
) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        error!("cannot install signal handlers");
        let _ = phase_tx.send(Phase::Stop);
        return;
    };
    let mut running = config;
    let mut reloads = 0u64;
    loop {
        tokio::select! {
            _ = term.recv() => {
                if *phase_tx.borrow() == Phase::Drain {
                    let _ = phase_tx.send(Phase::Stop);
                    return;
                }
                info!("SIGTERM: draining messages in flight");
                let _ = phase_tx.send(Phase::Drain);
            }
            _ = int.recv() => {
                info!("SIGINT: stopping now");
                let _ = phase_tx.send(Phase::Stop);
                return;
            }
            _ = hup.recv() => {
                let Some(path) = path.clone() else {
                    // Without a file, only the rules can change: the built-in pack does not.
                    info!("SIGHUP: no configuration file; nothing to reload");
                    continue;
                };
                let listen = listen.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    let mut config = Config::load(&path).map_err(|e| e.to_string())?;
                    if !listen.is_empty() {
                        config.listen = listen;
                    }
                    let (filter, warnings) = build(&config)?;
                    Ok::<_, String>((config, filter, warnings))
                })
                .await
                .unwrap_or_else(|e| Err(format!("reload panicked: {e}")));
                match loaded {
                    Ok((config, filter, warnings)) => {
                        reloads += 1;
                        warnings.iter().for_each(|w| warn!("{w}"));
                        let old = running.restart_only();
                        for ((key, before), (_, after)) in old.iter().zip(config.restart_only()) {
                            if *before != after {
                                warn!(key, "changed in the configuration; it takes effect after a restart");
                            }
                        }
                        let (rules, yara, regex) = announce(&filter);
                        let _ = filter_tx.send(Arc::new(filter));
                        metrics::get().reloads.get_or_create(&ResultLabel { result: "ok".into() }).inc();
                        info!(rules = %rules, yara, regex, reloads, "reloaded");
                        running = config;
                    }
                    Err(e) => {
                        metrics::get().reloads.get_or_create(&ResultLabel { result: "failed".into() }).inc();
                        warn!(error = %e.lines().map(str::trim).collect::<Vec<_>>().join(" / "), "reload failed; the configuration and rules in force stay");
                    }
                }
            }
        }
    }
}

pub(crate) fn server_options(config: &Config) -> server::Options {
    server::Options {
        max_connections: config.max_connections,
        max_message_size: config.max_message_size,
        idle_timeout: config.timeouts.idle,
        message_timeout: config.timeouts.message,
        progress_interval: config.timeouts.progress,
        shutdown_grace: config.timeouts.shutdown_grace,
        on_error: policy::on_error_verdict(config.on_error, &config.policy.header_prefix),
        filter_threads: config.inspect.threads,
        inflight_bytes: config.max_inflight_bytes,
        spool_dir: config.spool_dir.clone(),
    }
}
