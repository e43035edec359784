//! `inspect-milter check`: validates the configuration and every rule file and reports every
//! problem at once, each with a stable code and file:line:column; with `--connect`, negotiates
//! with a running milter and reports what it offers (a misconfigured milter is otherwise
//! invisible until the first mail arrives).
//!
//! Exit code: 0 nothing wrong, 1 warnings with `--strict`, 2 errors (or cannot connect).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::test::Color;
use super::{EXIT_ERROR, EXIT_FOUND, EXIT_OK};
use crate::config::{Config, ConfigSource};
use crate::milter::negotiate::{action, proto, stage};
use crate::mta::{Client, POSTFIX_OFFER};
use crate::rules::diag::{Diagnostic, Severity};
use crate::server::ListenAddr;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rules directory to check (default: the configuration's `rules.dir`, else the shipped pack).
    #[arg(value_name = "RULES_DIR")]
    pub rules: Option<PathBuf>,
    /// Configuration file to check [default: $INSPECT_MILTER_CONFIG, else
    /// /etc/inspect-milter/config.yaml when it exists, else the built-in defaults; the file
    /// found is named in the output].
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Warnings count as failures (exit 1).
    #[arg(long)]
    pub strict: bool,
    /// Print the diagnostics as JSON (one object per line).
    #[arg(long)]
    pub json: bool,
    /// Connect to a running milter (e.g. inet:127.0.0.1:8897) and report what it negotiates;
    /// the configuration and rules are checked too when --config or RULES_DIR is given.
    #[arg(long, value_name = "ADDR")]
    pub connect: Option<ListenAddr>,
    /// How long to wait for the milter with --connect.
    #[arg(long, default_value = "5s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

pub fn run(args: CheckArgs, source: &ConfigSource) -> u8 {
    if let Some(addr) = &args.connect {
        let connected = connect(addr, args.timeout, args.json);
        if args.config.is_none() && args.rules.is_none() {
            return connected;
        }
        return connected.max(check_files(&args, source));
    }
    check_files(&args, source)
}

/// The configuration and every rule file.
fn check_files(args: &CheckArgs, source: &ConfigSource) -> u8 {
    // A file nobody named on the command line is named here, so that nobody takes a check of
    // the site's file for a check of the defaults (or the other way round).
    if !args.json && !source.is_given() && source.path().is_some() {
        println!("configuration: {source}");
    }
    let mut diags = Vec::new();
    let config = match source.path() {
        None => Some(Config::default()),
        Some(path) => match Config::load(path) {
            Ok(c) => Some(c),
            Err(first) => {
                diags.extend(config_diagnostics(path, &first));
                None
            }
        },
    };
    let dirs = match &args.rules {
        Some(dir) => vec![dir.clone()],
        None => config.as_ref().map(|c| c.rules.dirs.clone()).unwrap_or_default(),
    };
    let sources = if dirs.is_empty() {
        crate::rules::shipped_sources()
    } else {
        dirs.iter().flat_map(|dir| crate::rules::read_dir(dir, &mut diags)).collect()
    };
    let relaxed = config.as_ref().is_some_and(|c| c.rules.relaxed_yara_syntax);
    let (_, mut more) =
        crate::rules::compile(&sources, crate::rules::CompileOptions { relaxed_yara_syntax: relaxed });
    diags.append(&mut more);
    report(args, &diags)
}

fn report(args: &CheckArgs, diags: &[Diagnostic]) -> u8 {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    let mut out = std::io::stdout().lock();
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal(),
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by(|a, b| (&a.origin, a.line, a.column).cmp(&(&b.origin, b.line, b.column)));
    for d in sorted {
        if args.json {
            let _ = writeln!(out, "{}", serde_json::to_string(d).unwrap_or_default());
            continue;
        }
        let origin = relative(&d.origin, &cwd);
        let place = match (d.line, d.column) {
            (Some(l), Some(c)) => format!("{origin}:{l}:{c}"),
            (Some(l), None) => format!("{origin}:{l}"),
            _ => origin,
        };
        let (sev, code) = match d.severity {
            Severity::Error => ("error", "31;1"),
            Severity::Warning => ("warning", "33;1"),
        };
        let sev = if color { format!("\x1b[{code}m{sev}\x1b[0m") } else { sev.to_string() };
        let _ = writeln!(out, "{place}: {sev}[{}]: {}", d.code, d.message);
    }
    if !args.json {
        let _ = writeln!(out, "{errors} error(s), {warnings} warning(s)");
    }
    if errors > 0 {
        EXIT_ERROR
    } else if warnings > 0 && args.strict {
        EXIT_FOUND
    } else {
        EXIT_OK
    }
}

/// Paths under the current directory are shown relative to it.
fn relative(origin: &str, cwd: &Path) -> String {
    Path::new(origin).strip_prefix(cwd).map_or_else(|_| origin.to_string(), |p| p.display().to_string())
}

/// Every problem of the configuration at once: a file that does not parse is checked section
/// by section (each section's first problem, with its line and column); one that parses has
/// every value problem, each at the line of its key.
fn config_diagnostics(path: &Path, first: &crate::config::ConfigError) -> Vec<Diagnostic> {
    use crate::config::ConfigError;
    let origin = path.display().to_string();
    let text = match (first, std::fs::read_to_string(path)) {
        (ConfigError::Read { .. }, _) | (_, Err(_)) => {
            return vec![Diagnostic::error("C001", &origin, None, first.to_string())];
        }
        (_, Ok(text)) => text,
    };
    // Positions and key names come from one parse of the file (`None`: it does not parse).
    let tree = crate::yaml::tree(&text).ok();
    let tree = tree.as_ref();
    match first {
        ConfigError::Invalid { problems, .. } => problems
            .iter()
            .map(|(key, message)| {
                let at = tree.and_then(|t| crate::yaml::key_position(t, key));
                Diagnostic::error("C003", &origin, at, format!("{key}: {message}"))
            })
            .collect(),
        // The section pass places each problem where it is (the whole document's first error
        // can point at an enclosing line); the whole document's error stands when it finds none.
        _ => {
            let mut sections = crate::config::section_errors(&text, &origin);
            for d in &mut sections {
                let mut key = tree.zip(d.line.zip(d.column)).and_then(|(t, at)| crate::yaml::key_at(t, at));
                // An unknown map key (a reason under `policy.uninspectable`) is reported at its
                // map: point at the key itself, named by the map's path.
                if let (Some(within), Some(name)) = (&key, d.message.split("unknown variant `").nth(1))
                    && let Some(name) = name.split('`').next()
                    && let Some((path, at)) = tree.and_then(|t| crate::yaml::find_key(t, within, name))
                {
                    (d.line, d.column) = (Some(at.0), Some(at.1));
                    key = path.rsplit_once('.').map(|(parent, _)| parent.to_string());
                }
                if let Some(key) = key
                    && !d.message.starts_with(&format!("{key}: "))
                    && !d.message.contains(&format!("`{key}`"))
                {
                    d.message = format!("{key}: {}", d.message);
                }
            }
            match (sections.is_empty(), first) {
                (false, _) => sections,
                (true, ConfigError::Yaml(y)) => {
                    vec![Diagnostic::error("C002", &origin, y.line.zip(y.column), y.message.clone())]
                }
                (true, other) => vec![Diagnostic::error("C002", &origin, None, other.to_string())],
            }
        }
    }
}

fn connect(addr: &ListenAddr, timeout: Duration, json: bool) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("inspect-milter: {e}");
            return EXIT_ERROR;
        }
    };
    let result = rt.block_on(async {
        let mut c = Client::connect(addr, timeout).await?;
        let n = c.negotiate(POSTFIX_OFFER).await?;
        let _ = c.quit().await;
        Ok::<_, crate::mta::ClientError>(n)
    });
    let n = match result {
        Ok(n) => n,
        Err(e) => {
            eprintln!("inspect-milter: {addr}: {e}");
            return EXIT_ERROR;
        }
    };
    let actions = names(
        n.actions,
        &[
            (action::ADD_HEADERS, "add-headers"),
            (action::CHANGE_BODY, "change-body"),
            (action::ADD_RCPT, "add-rcpt"),
            (action::DEL_RCPT, "del-rcpt"),
            (action::CHANGE_HEADERS, "change-headers"),
            (action::QUARANTINE, "quarantine"),
            (action::CHANGE_FROM, "change-from"),
            (action::ADD_RCPT_PAR, "add-rcpt-par"),
            (action::SET_SYMLIST, "set-symlist"),
        ],
    );
    let protocol = names(
        n.protocol,
        &[
            (proto::NO_CONNECT, "no-connect"),
            (proto::NO_HELO, "no-helo"),
            (proto::NO_MAIL, "no-mail"),
            (proto::NO_RCPT, "no-rcpt"),
            (proto::NO_BODY, "no-body"),
            (proto::NO_HDRS, "no-headers"),
            (proto::NO_EOH, "no-eoh"),
            (proto::NR_HDR, "no-reply-header"),
            (proto::NO_UNKNOWN, "no-unknown"),
            (proto::NO_DATA, "no-data"),
            (proto::SKIP, "skip"),
            (proto::RCPT_REJ, "rcpt-rejected"),
            (proto::NR_CONN, "no-reply-connect"),
            (proto::NR_HELO, "no-reply-helo"),
            (proto::NR_MAIL, "no-reply-mail"),
            (proto::NR_RCPT, "no-reply-rcpt"),
            (proto::NR_DATA, "no-reply-data"),
            (proto::NR_UNKN, "no-reply-unknown"),
            (proto::NR_EOH, "no-reply-eoh"),
            (proto::NR_BODY, "no-reply-body"),
            (proto::HDR_LEADSPC, "header-leading-space"),
        ],
    );
    let stage_name = |s: u32| match s {
        stage::CONNECT => "connect",
        stage::HELO => "helo",
        stage::ENVFROM => "mail",
        stage::ENVRCPT => "rcpt",
        stage::DATA => "data",
        stage::EOM => "end-of-message",
        stage::EOH => "end-of-headers",
        _ => "?",
    };
    let mut out = std::io::stdout().lock();
    if json {
        let macros: serde_json::Map<String, serde_json::Value> =
            n.macros.iter().map(|(s, m)| (stage_name(*s).to_string(), m.clone().into())).collect();
        let v = serde_json::json!({
            "address": addr.to_string(), "version": n.version,
            "actions": actions, "protocol": protocol, "macros": macros,
        });
        let _ = writeln!(out, "{v}");
    } else {
        let _ = writeln!(out, "{addr}: milter protocol version {}", n.version);
        let _ = writeln!(out, "  actions   {}", actions.join(" "));
        let _ = writeln!(out, "  protocol  {}", protocol.join(" "));
        for (s, m) in &n.macros {
            let _ = writeln!(out, "  macros    {:<15} {m}", stage_name(*s));
        }
    }
    EXIT_OK
}

fn names(bits: u32, table: &[(u32, &'static str)]) -> Vec<&'static str> {
    table.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect()
}
