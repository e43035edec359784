//! `inspect-milter scan FILE.eml…`: the full pipeline offline — the same code the daemon runs —
//! with the decision and why for each message, as text or `--json`.
//!
//! Exit code: 0 when every message is accepted, 1 when any gets `tag` or stronger, 2 when a
//! file cannot be read or the configuration or rules cannot be loaded.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_ERROR, EXIT_FOUND, EXIT_OK, RulesArgs};
use crate::inspect::{Decision, Report};
use crate::milter::Envelope;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Messages to scan (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Print the full report of each message as JSON (one object per line).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ScanArgs) -> u8 {
    let pipeline = match args.rules.pipeline(None) {
        Ok((p, _)) => p,
        Err(code) => return code,
    };
    let mut worst = EXIT_OK;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let raw = match read(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("inspect-milter: {}: {e}", path.display());
                worst = worst.max(EXIT_ERROR);
                continue;
            }
        };
        let report = pipeline.run(&raw, &Envelope::default(), false, raw.len() as u64);
        if report.decision != Decision::Accept {
            worst = worst.max(EXIT_FOUND);
        }
        let written = if args.json {
            serde_json::to_string(&report).map_err(std::io::Error::other).and_then(|j| writeln!(out, "{j}"))
        } else {
            write_human(&mut out, &path.display().to_string(), &report)
        };
        if written.is_err() {
            return EXIT_ERROR;
        }
    }
    worst
}

fn read(path: &PathBuf) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

fn write_human(out: &mut impl Write, name: &str, r: &Report) -> std::io::Result<()> {
    let dry = if r.dry_run { " (dry run)" } else { "" };
    writeln!(out, "{name}: {}{dry} score={}", r.decision, r.score)?;
    for reason in &r.reasons {
        writeln!(out, "  why        {reason}")?;
    }
    for h in &r.hits {
        let at = h.offset.map(|o| format!(" @{o}")).unwrap_or_default();
        let file = h.filename.as_deref().map(|f| format!(" {f:?}")).unwrap_or_default();
        writeln!(
            out,
            "  hit        {} [{:?}] score={} part={} {}{}{}{}",
            h.rule,
            h.engine,
            h.score,
            h.part_path,
            h.target,
            file,
            at,
            if h.snippet.is_empty() { String::new() } else { format!(": {}", h.snippet) }
        )?;
    }
    for u in &r.coverage.uninspectable {
        writeln!(out, "  uninspected {} part={}: {}", u.reason, u.part_path, u.detail)?;
    }
    for a in &r.anomalies {
        writeln!(out, "  anomaly    {} part={}: {}", a.code, a.part_path, a.detail)?;
    }
    Ok(())
}
