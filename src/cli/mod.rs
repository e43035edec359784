//! The command line: one file per subcommand, all sharing the exit codes of the design —
//! 0 success, 1 "the check found something", 2 error (cannot read, load or connect).

mod check;
mod detection;
mod manual;
mod scan;
mod serve;
mod test;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ConfigSource;

/// An inspection-aware content-filter milter for Postfix and Sendmail.
#[derive(Debug, Parser)]
#[command(name = "inspect-milter", version, about, long_about = None)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace, off: of inspect-milter's own logs), or
    /// tracing directives such as `inspect_milter::server=trace`; the RUST_LOG environment
    /// variable is used when this is absent.
    #[arg(long, global = true, value_name = "FILTER", value_parser = crate::config::ops::log_filter)]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the milter daemon.
    Serve(serve::ServeArgs),
    /// Inspect messages offline with the daemon's pipeline and print the decision and why.
    Scan(scan::ScanArgs),
    /// Measure detection and false-positive rates over directories of known-bad and known-good
    /// mail, with the rules behind them.
    Detection(detection::DetectionArgs),
    /// Run rule test cases (NAME.eml + NAME.expect.yaml, or inline *.cases.yaml) through the
    /// daemon's pipeline.
    Test(test::TestArgs),
    /// Validate the configuration and every rule file, reporting every problem with its place;
    /// or, with --connect, negotiate with a running milter and show what it offers.
    Check(check::CheckArgs),
    /// Review held messages: list, show, release, delete, purge.
    Quarantine(crate::quarantine::cli::QuarantineArgs),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    Manual(manual::ManualArgs),
}

/// Success.
pub const EXIT_OK: u8 = 0;
/// The check found something (for `scan`: a decision other than accept).
pub const EXIT_FOUND: u8 = 1;
/// An error: cannot read, cannot load, cannot connect.
pub const EXIT_ERROR: u8 = 2;

impl Command {
    /// `--config` as typed, for the subcommands that read a configuration.
    fn config_flag(&self) -> Option<&Path> {
        match self {
            Command::Serve(a) => a.config.as_deref(),
            Command::Scan(a) => a.rules.config.as_deref(),
            Command::Detection(a) => a.rules.config.as_deref(),
            Command::Test(a) => a.rules.config.as_deref(),
            Command::Check(a) => a.config.as_deref(),
            Command::Quarantine(a) => a.config.as_deref(),
            Command::Manual(_) => None,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = cli.log_level.as_deref();
    if !matches!(cli.command, Command::Serve(_)) {
        // The daemon sets up logging from its configuration; the other commands report to
        // people on standard error and only need warnings from the engine.
        init_logging(level, "warn", crate::config::ops::LogFormat::Text);
    }
    // The one place that decides which configuration file every subcommand reads.
    let config = ConfigSource::find(cli.command.config_flag());
    let code = match cli.command {
        Command::Serve(args) => serve::run(args, config, level),
        Command::Scan(args) => scan::run(args, &config),
        Command::Detection(args) => detection::run(args, &config),
        Command::Test(args) => test::run(args, &config),
        Command::Check(args) => check::run(args, &config),
        Command::Quarantine(args) => crate::quarantine::cli::run(args, &config),
        Command::Manual(args) => manual::run(args),
    };
    ExitCode::from(code)
}

/// Logs go to standard error (journald takes them from there). `--log-level` wins over
/// `RUST_LOG`, which wins over the configured level.
pub(crate) fn init_logging(flag: Option<&str>, configured: &str, format: crate::config::ops::LogFormat) {
    use tracing_subscriber::EnvFilter;
    // The flag arrives already turned into a filter (its value parser); the configured level
    // was checked when the configuration loaded.
    let configured = crate::config::ops::log_filter(configured).unwrap_or_else(|_| "info".to_string());
    let filter = match flag {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(configured)),
    };
    // Colour only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = match format {
        crate::config::ops::LogFormat::Text => builder.try_init(),
        crate::config::ops::LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(true).try_init()
        }
    };
}

/// Loads the configuration, or the defaults without a file; an error is printed and becomes
/// exit code 2.
pub(crate) fn load_config(source: &ConfigSource) -> Result<crate::config::Config, u8> {
    source.load().map_err(|e| {
        eprintln!("inspect-milter: {e}");
        EXIT_ERROR
    })
}

/// Where the rules come from, for the commands that inspect offline.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Configuration file (rules, limits, policy) [default: $INSPECT_MILTER_CONFIG, else
    /// /etc/inspect-milter/config.yaml when it exists, else the built-in defaults].
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Rules directory, overriding the configuration's `rules.dir`.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<std::path::PathBuf>,
}

impl RulesArgs {
    /// Loads the configuration and compiles the rules, printing warnings. The rules are, in
    /// order: `--rules`, the `rules.dir` of a configuration asked for (`--config` or
    /// `INSPECT_MILTER_CONFIG`), the directory above `tests_dir` when it holds rule files (so
    /// `test rules/tests` tests the rules being edited, on a host with the package too), the
    /// site configuration's `rules.dir`, else the pack built into the binary. Returns the
    /// pipeline and a description of where the rules came from; errors are printed and become
    /// exit code 2.
    pub fn pipeline(
        &self,
        tests_dir: Option<&std::path::Path>,
        from: &ConfigSource,
    ) -> Result<(crate::pipeline::Pipeline, String), u8> {
        let mut config = load_config(from)?;
        if let Some(dir) = &self.rules {
            config.rules.dirs = vec![dir.clone()];
        } else if (config.rules.dirs.is_empty() || from.is_site())
            // Made absolute first: the directory above `tests` or `.` is not in the path.
            && let Some(parent) = tests_dir
                .and_then(|d| std::fs::canonicalize(d).ok())
                .and_then(|d| d.parent().map(std::path::Path::to_path_buf))
                .filter(|p| has_rule_files(p))
        {
            config.rules.dirs = vec![parent];
        }
        let source = if config.rules.dirs.is_empty() {
            "the shipped pack (built in)".to_string()
        } else {
            config.rules.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        };
        match crate::pipeline::Pipeline::load(&config) {
            Ok((p, warnings)) => {
                for w in warnings {
                    eprintln!("{w}");
                }
                Ok((p, source))
            }
            Err(e) => {
                eprintln!("inspect-milter: {e}");
                Err(EXIT_ERROR)
            }
        }
    }
}

fn has_rule_files(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            let p = e.path();
            p.is_file()
                && matches!(p.extension().and_then(|x| x.to_str()), Some("yar" | "yara" | "yaml" | "yml"))
        })
    })
}
