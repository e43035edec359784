//! `inspect-milter scan FILE.eml…`: the full pipeline offline — the same code the daemon runs —
//! with the decision and why for each message: every hit with its rule, engine, part, content
//! type, file name, offset and snippet; coverage; anomalies; the score against the thresholds;
//! and the headers and SMTP reply the daemon would produce. `--json` prints the report.
//!
//! One file (or `-` for standard input) gets the full explanation; several files or a
//! directory get one line each and a summary, scanned in parallel with rules compiled once.
//!
//! Exit code: 0 when every message is accepted, 1 when any gets `tag` or stronger, 2 when a
//! file cannot be read or the configuration or rules cannot be loaded.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;

use super::test::CaseEnvelope;
use super::{EXIT_ERROR, EXIT_FOUND, EXIT_OK, RulesArgs};
use crate::config::ConfigSource;
use crate::inspect::{Decision, Report};
use crate::milter::{Action, HeaderChange, Verdict};
use crate::pipeline::Pipeline;
use crate::quarantine::Location;

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Messages or directories to scan (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Print each message's full report as JSON (one object per line).
    #[arg(long)]
    pub json: bool,
    /// Envelope sender.
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Envelope recipient (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub rcpt: Vec<String>,
    /// Client IP address.
    #[arg(long, value_name = "IP")]
    pub client: Option<String>,
    /// Client host name as the MTA resolved it.
    #[arg(long, value_name = "NAME")]
    pub client_name: Option<String>,
    /// HELO/EHLO name.
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// TLS version of the hop, e.g. TLSv1.3 (absent: cleartext).
    #[arg(long, value_name = "VERSION")]
    pub tls_version: Option<String>,
    /// TLS cipher of the hop.
    #[arg(long, value_name = "NAME")]
    pub cipher: Option<String>,
    /// The client authenticated (SMTP AUTH) as USER.
    #[arg(long, value_name = "USER")]
    pub authenticated: Option<String>,
}

struct Scanned {
    name: String,
    result: Result<Report, String>,
    raw_len: usize,
    /// Kept only when one message is explained in full (the verdict needs its headers).
    raw: Option<Vec<u8>>,
}

pub fn run(args: ScanArgs, config: &ConfigSource) -> u8 {
    let (pipeline, _) = match args.rules.pipeline(None, config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let envelope = CaseEnvelope {
        from: args.from.clone(),
        rcpt: args.rcpt.clone(),
        client: args.client.clone(),
        client_name: args.client_name.clone(),
        helo: args.helo.clone(),
        tls_version: args.tls_version.clone(),
        cipher: args.cipher.clone(),
        authenticated: args.authenticated.clone(),
    }
    .to_envelope();
    let mut files = Vec::new();
    let mut worst = EXIT_OK;
    for f in &args.files {
        if f.is_dir() {
            if let Err(e) = collect(f, &mut files) {
                eprintln!("inspect-milter: {}: {e}", f.display());
                worst = EXIT_ERROR;
            }
        } else {
            files.push(f.clone());
        }
    }
    let detailed = files.len() == 1 && !args.files.iter().any(|f| f.is_dir());
    let results = scan_all(&pipeline, &files, &envelope, detailed);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut by: std::collections::BTreeMap<Decision, usize> = std::collections::BTreeMap::new();
    for s in &results {
        let report = match &s.result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("inspect-milter: {}: {e}", s.name);
                worst = worst.max(EXIT_ERROR);
                continue;
            }
        };
        *by.entry(report.decision).or_default() += 1;
        if report.decision != Decision::Accept {
            worst = worst.max(EXIT_FOUND);
        }
        let written = if args.json {
            // The report, and which file it is about (many files give many lines).
            let mut line = serde_json::to_value(report).unwrap_or_default();
            if let Some(fields) = line.as_object_mut() {
                fields.insert("file".to_string(), serde_json::Value::String(s.name.clone()));
            }
            writeln!(out, "{line}")
        } else if detailed {
            let raw = s.raw.as_deref().unwrap_or_default();
            write_detail(&mut out, &s.name, report, &pipeline.verdict(report, raw), &pipeline)
        } else {
            writeln!(
                out,
                "{:<10} score={:<4} {} {}",
                report.decision,
                report.score,
                s.name,
                summary_line(report, s.raw_len)
            )
        };
        if written.is_err() {
            return EXIT_ERROR;
        }
    }
    if !args.json && !detailed {
        let mut counts: Vec<String> = by.iter().map(|(d, n)| format!("{d}={n}")).collect();
        let unread = results.iter().filter(|s| s.result.is_err()).count();
        if unread > 0 {
            counts.push(format!("not scanned={unread}"));
        }
        let _ = writeln!(out, "{} message(s): {}", results.len(), counts.join(" "));
    }
    worst
}

/// Every file below `dir`, in name order, depth first: any name (maildir files have no
/// extension) but hidden files and the rule test harness's expectation files.
pub(super) fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.is_file() {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !(name.starts_with('.') || name.ends_with(".expect.yaml") || name.ends_with(".cases.yaml")) {
                out.push(p);
            }
        }
    }
    Ok(())
}

/// `work` over every file on `threads` threads; the results keep the order of `files`, and a
/// file `work` skips (`None`) leaves no result.
pub(super) fn par_map<T: Send>(
    files: &[PathBuf],
    threads: usize,
    work: impl Fn(&Path) -> Option<T> + Sync,
) -> Vec<T> {
    let results = Mutex::new(Vec::with_capacity(files.len()));
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, files.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    if let Some(result) = work(path) {
                        results.lock().expect("no thread panics while holding it").push((i, result));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Scans every file on one thread per CPU; results keep the order of `files`.
fn scan_all(
    pipeline: &Pipeline,
    files: &[PathBuf],
    envelope: &crate::milter::Envelope,
    keep_raw: bool,
) -> Vec<Scanned> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    par_map(files, threads, |path| {
        let name = path.display().to_string();
        Some(match read(path) {
            Ok(raw) => Scanned {
                name,
                raw_len: raw.len(),
                result: Ok(pipeline.run(&raw, envelope, false, raw.len() as u64)),
                raw: keep_raw.then_some(raw),
            },
            Err(e) => Scanned { name, raw_len: 0, result: Err(e.to_string()), raw: None },
        })
    })
}

fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

fn summary_line(r: &Report, size: usize) -> String {
    let rules = r.deciding_rules().join(",");
    let mut s = format!("size={size}");
    if !rules.is_empty() {
        s.push_str(&format!(" rules={rules}"));
    }
    if !r.coverage.complete {
        let reasons: Vec<String> = r.coverage.uninspectable.iter().map(|u| u.reason.to_string()).collect();
        s.push_str(&format!(" uninspected={}", reasons.join(",")));
    }
    s
}

fn write_detail(
    out: &mut impl Write,
    name: &str,
    r: &Report,
    v: &Verdict,
    p: &Pipeline,
) -> std::io::Result<()> {
    let pol = &p.policy;
    let dry = if r.dry_run { " (dry run: only headers are added)" } else { "" };
    writeln!(out, "{name}")?;
    writeln!(out, "  decision   {}{dry}", r.decision)?;
    writeln!(
        out,
        "  score      {} (tag at {}, quarantine at {}, reject at {})",
        r.score, pol.tag_at, pol.quarantine_at, pol.reject_at
    )?;
    for reason in &r.reasons {
        writeln!(out, "  why        {reason}")?;
    }
    if let Some(tls) = &r.envelope.tls {
        writeln!(out, "  transport  {} {}", tls.version, tls.cipher.as_deref().unwrap_or(""))?;
    }
    if !r.hits.is_empty() {
        writeln!(out, "  hits")?;
    }
    for h in &r.hits {
        let action = h.action.map(|a| format!(" action={a}")).unwrap_or_default();
        writeln!(out, "    {} [{:?}] score={}{action}", h.rule, h.engine, h.score)?;
        let ct = h.content_type.as_deref().map(|c| format!(" type={c}")).unwrap_or_default();
        let file =
            h.filename.as_deref().map(|f| format!(" file={}", crate::logline::escape(f))).unwrap_or_default();
        let at = h.offset.map(|o| format!(" offset={o}")).unwrap_or_default();
        writeln!(out, "      part={} target={}{ct}{file}{at}", h.part_path, h.target)?;
        if !h.snippet.is_empty() {
            writeln!(out, "      {}", h.snippet)?;
        }
    }
    writeln!(out, "  coverage   {}", if r.coverage.complete { "complete" } else { "partial" })?;
    for u in &r.coverage.uninspectable {
        writeln!(out, "    {} part={}: {}", u.reason, u.part_path, u.detail)?;
    }
    if !r.anomalies.is_empty() {
        writeln!(out, "  anomalies")?;
    }
    for a in &r.anomalies {
        writeln!(out, "    {} part={}: {}", a.code, a.part_path, a.detail)?;
    }
    writeln!(out, "  the daemon would")?;
    // A quarantine is the store's and the MTA's together: what the MTA is told depends on
    // `quarantine.mode` (with `store`, the MTA discards its copy and adds no headers).
    let location = crate::pipeline::location(p.quarantine_mode, r.message.truncated);
    let v = &crate::pipeline::quarantine_verdict(v.clone(), location, Ok("<id>"));
    for h in &v.headers {
        match h {
            HeaderChange::Add { name, value } => writeln!(out, "    add header     {name}: {value}")?,
            HeaderChange::Insert { name, value, .. } => writeln!(out, "    insert header  {name}: {value}")?,
            HeaderChange::Change { index, name, value } if value.is_empty() => {
                writeln!(out, "    delete header  {name} #{index} (a copy that came with the message)")?
            }
            HeaderChange::Change { index, name, value } => {
                writeln!(out, "    change header  {name} #{index}: {value}")?
            }
        }
    }
    match &v.action {
        Action::Accept => writeln!(out, "    accept the message")?,
        Action::Quarantine(why) if location == Location::Both => writeln!(
            out,
            "    keep the message in the quarantine store and hold it in the MTA's queue ({why})"
        )?,
        Action::Quarantine(why) => writeln!(
            out,
            "    hold the message in the MTA's queue ({why}); the quarantine store records why"
        )?,
        Action::Discard if location == Location::Store && r.decision == Decision::Quarantine => {
            writeln!(out, "    keep the message in the quarantine store; the MTA discards its copy")?
        }
        Action::Reject(Some(reply)) | Action::Tempfail(Some(reply)) => writeln!(out, "    reply {reply}")?,
        Action::Reject(None) => writeln!(out, "    reject with the MTA's default reply")?,
        Action::Tempfail(None) => writeln!(out, "    tempfail with the MTA's default reply")?,
        Action::Discard => writeln!(out, "    discard the message")?,
    }
    writeln!(out, "  scanned in {:.1} ms", r.timings.total_us as f64 / 1000.0)
}
